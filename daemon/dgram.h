/* dgram.h: a udp listener's runtime in the supervisor.
 *
 * Datagrams are received in batches (recvmmsg), each passed through the
 * reflector guard (guard.h), answered in place by the service's on_datagram()
 * and sent back in batches (sendmmsg).  No allocation per datagram, no fork:
 * a datagram service must answer without blocking and keep bounded state.
 * Drops are counted and logged as one aggregate entry per listener at most
 * every DGRAM_REPORT_USEC.  A service that needs more than one datagram's
 * work for a validated peer asks for a child with dgram_spawn(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "guard.h"

struct daemon;
struct limits_config;
struct request_log;
struct shared_stats;

#define DGRAM_BATCH 32                      /* datagrams per recvmmsg/sendmmsg */
#define DGRAM_BUFFER_SIZE 65536u            /* > any UDP payload: nothing is ever cut */
#define DGRAM_REPORT_USEC (10u * 1000000u)  /* aggregate log entries at most this often */
#define DGRAM_LOG_PER_SEC 50u               /* request entries per listener per second */

/* What a service's on_datagram() learns about the datagram besides its bytes. */
struct dgram_ctx {
        struct dgram *dgram;
        const struct listener_config *listener;
        const struct sockaddr *peer;
        socklen_t peer_len;
        uint16_t peer_port;
        uint64_t now_usec;                  /* CLOCK_MONOTONIC, read once per batch */
};

enum dgram_counter {
        DGRAM_REPLIES,
        DGRAM_REPLY_BYTES,
        DGRAM_DROP_PORT_ZERO,
        DGRAM_DROP_BLOCKED_PORT,
        DGRAM_DROP_SOURCE_RATE,
        DGRAM_DROP_TOTAL_RATE,
        DGRAM_DROP_OTHER,                   /* cut, oversized reply, send failure */
        DGRAM_LOG_SUPPRESSED,
        _DGRAM_COUNTER_MAX,
};

struct dgram {
        struct daemon *daemon;              /* NULL in unit tests: no dgram_spawn() */
        sd_event *event;
        const struct listener_config *cfg;  /* the config this runtime was made for */
        const struct service *service;
        void *state;                        /* the service's */
        struct guard guard;
        uint64_t counters[_DGRAM_COUNTER_MAX];  /* since the last aggregate entry */
        uint64_t interval_start_usec;
        sd_event_source *report_timer;
        uint64_t log_second;                /* request entries: a budget per second */
        unsigned log_count;
        struct shared_stats *stats;
        bool io_held;                       /* holds a reference on the receive buffers */
};

/* Make the runtime of udp listener lc for daemon d (its event loop, shared
 * stats and children).  old: this listener's runtime before a reload, or
 * NULL; a service keeps what still fits the new config (guess rounds in play,
 * running transfers).  old is only read.  Return: 0 and *ret; -ENOMEM;
 * -EAGAIN (no entropy yet); the error is logged. */
int dgram_new(struct daemon *d, const struct listener_config *lc, const struct dgram *old,
              struct dgram **ret);

/* Free a runtime (logging what its counters still hold).  Accepts NULL.
 * Return: NULL. */
struct dgram *dgram_free(struct dgram *dg);

/* Answer what is queued on fd, a bounded number of batches per call. */
void dgram_process(struct dgram *dg, int fd);

/* For services: write a request entry (listener, service and peer filled in
 * here), at most DGRAM_LOG_PER_SEC per second per listener; the rest are
 * counted as suppressed in the next aggregate entry. */
void dgram_log_request(struct dgram_ctx *ctx, struct request_log *entry);

/* For services: count a datagram dropped without a reply in the listener's
 * next aggregate entry (as "other"). */
void dgram_count_drop(struct dgram_ctx *ctx);

/* What a child started by dgram_spawn() gets.  It adds the bytes it moved
 * to bytes_in/bytes_out; they reach the shared stats when it returns. */
struct dgram_child {
        const struct listener_config *listener;
        const struct limits_config *limits;
        uint64_t start_usec;                /* CLOCK_MONOTONIC, right after the fork */
        uint64_t bytes_in;
        uint64_t bytes_out;
};

/* The child's work.  Return: 0, or negative errno (-ENOMEM makes the child
 * exit with status 1, as for a stream child). */
typedef int (*dgram_child_fn)(struct dgram_child *c, void *userdata);

/* Fork a child for ctx's peer (listener.c implements it: the supervisor owns
 * children).  First the global limits (limits.max_children, and
 * max_per_source for the peer's address): over one, text[0..text_size) gets
 * the refusal a stream client over that limit gets ("server busy: ...").
 * Then fork; the child is recorded under the peer's address
 * (children_add), so it counts like a stream child, is signalled at
 * shutdown and reaped by the supervisor, which then calls the service's
 * dgram_child_exited().  In the child: signals are reset, every listening
 * socket is closed (like a stream child), fn(&child, userdata) runs
 * (userdata and everything it points to is the child's copy of the
 * supervisor's memory), its byte counts go to the shared stats and the
 * child _exit()s: dgram_spawn() never returns there.
 * Return: the child's pid (> 0) in the supervisor; -EBUSY if max_children
 * are running; -EUSERS if max_per_source run for this address (both with
 * text written); -ENOMEM (could not record it: it was killed); -EOPNOTSUPP
 * without a daemon (unit tests); or fork()'s negative errno. */
pid_t dgram_spawn(struct dgram_ctx *ctx, dgram_child_fn fn, void *userdata, char *text, size_t text_size);

/* A child of the supervisor was reaped: tell dg's service if it forks. */
void dgram_child_exited(struct dgram *dg, pid_t pid);
