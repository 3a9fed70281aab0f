/* log.h: netlabd's logging, to journald's native protocol or to stderr.
 *
 * Log at the boundary, once (STYLE.md 3).  Every request ends in exactly one
 * log_request() summary entry with structured fields.  Peer-supplied strings
 * are escaped before they reach stderr. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "config.h"

/* Choose where entries go.  AUTO picks journald when its socket exists and
 * stderr is not a terminal. */
void log_setup(enum log_target target, int max_level);

/* The target actually in use (never AUTO). */
enum log_target log_get_target(void);

/* The journal relay (see log.c): with the journal as target, the supervisor
 * opens it before forking anything and watches the returned fd, calling
 * log_relay_dispatch() when it is readable; each child calls
 * log_relay_child() first thing. Return: the fd, or negative errno
 * (-EOPNOTSUPP when logging to stderr: nothing to relay). */
int log_relay_open(void);
int log_relay_dispatch(int fd);
void log_relay_child(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log a failing syscall/function with its error and return -abs(err). */
int log_error_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One request's summary entry. */
struct request_log {
        const char *listener;
        const char *service;
        const char *remote_addr;
        unsigned remote_port;
        uint64_t bytes_in;
        uint64_t bytes_out;
        uint64_t duration_usec;
        const char *result;        /* "ok", "busy", "timeout", "bad-request", ... */
        const char *detail;        /* human text on failure, or NULL */
        const uint8_t *text;       /* message service: the message, or NULL */
        size_t text_len;
        const uint8_t *file;       /* file service: the requested path, or NULL */
        size_t file_len;
        bool has_offset;           /* file service: OFFSET= is meaningful */
        uint64_t offset;
        int priority;              /* LOG_INFO for served, LOG_NOTICE/WARNING for refusals */
};

void log_request(const struct request_log *r);

/* One udp listener's aggregate entry (docs/PROTOCOL.md, 10.3). */
struct dgram_summary {
        const char *listener;
        const char *service;
        uint64_t interval_sec;
        uint64_t replies, reply_bytes;
        uint64_t port_zero, blocked_port, source_rate, total_rate, other;
        uint64_t suppressed;               /* request entries not written */
};

void log_dgram_summary(const struct dgram_summary *s);
