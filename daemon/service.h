/* service.h: how a service plugs into netlabd.
 *
 * Each svc-*.c exports exactly one const struct service.  listener.c holds the
 * only table of them.  A stream service's serve_stream() runs in the forked
 * child, one per connection; refuse_stream() runs in the supervisor and must
 * not block.  A datagram service's on_datagram() runs in the supervisor for
 * each datagram the guard (guard.h) let through, must not block, allocates
 * nothing and keeps bounded state (dgram.h).  A datagram service may hand a
 * validated peer to a forked child of its own (dgram_spawn(), dgram.h: the
 * udp file service's transfers) and then hears of that child's end through
 * dgram_child_exited().
 *
 * A service name may appear twice, once per transport ("file" over tcp and
 * over udp): the config's (service, transport) pair picks the descriptor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct conn;
struct dgram_ctx;

struct service {
        const char *name;               /* the config's `service` value */
        int socktype;                   /* SOCK_STREAM or SOCK_DGRAM */
        const char *summary;            /* one line for --help and docs */

        /* The service's own keys in a listener block, and the struct they fill. */
        const struct config_key *keys;
        size_t options_size;
        /* Cross-key checks after the keys were read; NULL if none.
         * Return: NULL if fine, else a problem (static or in buf). */
        const char *(*options_check)(void *options, char *buf, size_t size);

        /* Serve one accepted connection in the child.  The result string is
         * recorded in the request's journal entry by the caller.
         * Return: 0 if served, negative errno on failure (already answered). */
        int (*serve_stream)(struct conn *c);

        /* Write a refusal (busy, shutting down) to a connection the supervisor
         * will not serve, given the first bytes the client already sent (maybe
         * none).  Must not block: fd is non-blocking.
         * Return: 0, or negative errno. */
        int (*refuse_stream)(int fd, const uint8_t *first, size_t n_first, unsigned status,
                             const char *text);
        /* refuse_stream() wants to see the client's first byte to pick a format. */
        bool refuse_wants_first_byte;

        /* Datagram services.  A reply is at most dgram_amplify times the size
         * of its request (never more than NL_GUESS_AMPLIFY) and at most
         * dgram_reply_max bytes; dgram.c enforces both. */
        unsigned dgram_amplify;
        size_t dgram_reply_max;

        /* Make the per-listener state from lc->options (which outlives it).
         * old_state: the same service's state on this listener before a
         * reload, or NULL; only read.  NULL hooks: the service is stateless.
         * Return: 0 and *ret_state; -ENOMEM; -EAGAIN (no entropy yet). */
        int (*dgram_state_new)(const struct listener_config *lc, const void *old_state, void **ret_state);
        void (*dgram_state_free)(void *state);

        /* Answer one datagram in place: buf holds its len bytes and has room
         * for cap.  Return: the reply's size (in buf), or -1 for no reply. */
        ssize_t (*on_datagram)(void *state, struct dgram_ctx *ctx, uint8_t *buf, size_t len, size_t cap);

        /* A child this service started with dgram_spawn() on this listener
         * (or on the listener whose state was handed over at a reload) was
         * reaped.  Called for every reaped child on every udp listener of
         * the service: a pid the state does not know is not its own.  NULL:
         * the service never forks. */
        void (*dgram_child_exited)(void *state, pid_t pid);

        /* The listening socket gets SO_REUSEPORT, so a child can bind a
         * socket of its own to the same address and port (listener.c). */
        bool dgram_reuseport;
};

/* listener.c: the table of services. */

/* The usual refuse_stream() body: a frame of frame_type carrying status and
 * text (cut to NL_ERROR_TEXT_MAX) if the client's first byte starts a netlab
 * frame, else the line "error: <text>\n".  Never blocks.
 * Return: 0, or negative errno. */
int service_refuse_in_form(int fd, const uint8_t *first, size_t n_first, uint8_t frame_type,
                           unsigned status, const char *text);

/* The service called name over socktype (SOCK_STREAM or SOCK_DGRAM), or,
 * with socktype 0, the first service called name whatever its transport.
 * Return: the descriptor, or NULL. */
const struct service *service_find(const char *name, int socktype);
const struct service *const *service_table(size_t *ret_n);
