/* service.h: how a service plugs into netlabd.
 *
 * Each svc-*.c exports exactly one const struct service.  listener.c holds the
 * only table of them.  A stream service's serve_stream() runs in the forked
 * child, one per connection; refuse_stream() runs in the supervisor and must
 * not block. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct conn;

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
};

/* listener.c: the table of services. */

/* The usual refuse_stream() body: a frame of frame_type carrying status and
 * text (cut to NL_ERROR_TEXT_MAX) if the client's first byte starts a netlab
 * frame, else the line "error: <text>\n".  Never blocks.
 * Return: 0, or negative errno. */
int service_refuse_in_form(int fd, const uint8_t *first, size_t n_first, uint8_t frame_type,
                           unsigned status, const char *text);

const struct service *service_find(const char *name);
const struct service *const *service_table(size_t *ret_n);
