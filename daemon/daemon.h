/* daemon.h: the supervisor's state, shared by main.c and listener.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "children.h"
#include "config.h"

/* Counters children add to when they finish a request, in memory shared with
 * the supervisor (MAP_SHARED), so STATUS= can show bytes served without any
 * message passing. */
struct shared_stats {
        uint64_t requests;
        uint64_t bytes_in;
        uint64_t bytes_out;
};

struct listener {
        struct daemon *daemon;
        const struct listener_config *cfg;  /* points into daemon->config */
        int fd;
        bool activated;                     /* came from systemd (LISTEN_FDS) */
        sd_event_source *io;
        sd_event_source *retry;             /* re-enable after EMFILE */
        struct dgram *dg;                   /* udp listeners: the runtime (dgram.h) */
        struct dgram *dg_next;              /* ...made for the config being applied */
};

/* A socket systemd passed that no listener uses right now; kept for a reload
 * that brings its listener back (we could not bind its port ourselves). */
struct spare_fd {
        char *name;
        int fd;
};

struct refusal;
struct dgram;

struct daemon {
        sd_event *event;
        struct config *config;
        char *config_path;

        struct listener **listeners;
        size_t n_listeners;
        struct spare_fd *spares;
        size_t n_spares;

        struct children children;
        struct shared_stats *stats;

        struct refusal *refusals;           /* busy connections being answered */
        size_t n_refusals;

        /* Set between the lookup of the config's user and the drop
         * (privs.h): listening sockets netlabd makes itself get this owner
         * uid, the user's, so that the UDP transfer children, which run as
         * the user, may share their port (SO_REUSEPORT). */
        bool socket_owner_set;
        uid_t socket_owner;

        uint64_t n_accepted;
        uint64_t n_refused;
        bool stopping;
        bool status_dirty;
        sd_event_source *grace_timer;
        sd_event_source *status_timer;
};

/* listener.c */

/* Bring the listening sockets in line with config: keep sockets whose
 * transport, address and port did not change, adopt passed sockets by name,
 * bind the rest.  All or nothing: on failure nothing changed and the error was
 * logged.  On success d->config is NOT changed; the caller swaps it in.
 * Return: 0, or negative errno. */
int listeners_apply(struct daemon *d, struct config *config);

/* Take the sockets systemd passed (sd_listen_fds_with_names) into d->spares.
 * Return: how many, or negative errno. */
int listeners_collect_activated(struct daemon *d);

/* Close spare passed sockets that no listener adopted, with a log line each. */
void listeners_drop_unused_spares(struct daemon *d);

/* Stop accepting: close every listening socket. */
void listeners_close_all(struct daemon *d);

/* In a freshly forked child: close every listener fd without touching sd-event. */
void listeners_close_in_child(struct daemon *d);

/* A child was reaped (main.c's SIGCHLD handler): the datagram services that
 * fork (dgram_spawn(), dgram.h) forget it. */
void listeners_child_exited(struct daemon *d, pid_t pid);

/* Free refusals in flight (shutdown). */
void refusals_free_all(struct daemon *d);

/* Something STATUS= shows changed; the status timer sends it. */
static inline void daemon_status_changed(struct daemon *d)
{
        d->status_dirty = true;
}
