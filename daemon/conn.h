/* conn.h: one client connection, as seen by the forked child that serves it.
 *
 * Wraps the socket with the deadlines every request has: an idle timeout (no
 * progress for that long ends the request), a header deadline (the complete
 * request must be in header_timeout seconds after the accept, Apache's
 * RequestReadTimeout idea) and a total deadline; trickling bytes extend
 * neither deadline.  All I/O is poll()-bounded; the socket is non-blocking. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct request_log;

/* Which limit ended a wait with -ETIMEDOUT (struct conn's timed_out). */
enum conn_timeout {
        CONN_TIMEOUT_NONE,
        CONN_TIMEOUT_IDLE,      /* idle_timeout without progress */
        CONN_TIMEOUT_HEADER,    /* the request was not complete by the header deadline */
        CONN_TIMEOUT_TOTAL,     /* deadline_usec passed */
};

struct conn {
        int fd;
        const struct listener_config *listener;
        const struct limits_config *limits;
        char remote_addr[64];      /* numeric, no brackets; IPv4-mapped shown as IPv4 */
        unsigned remote_port;
        uint64_t start_usec;       /* CLOCK_MONOTONIC */
        uint64_t deadline_usec;    /* start + total_timeout */
        /* Until the service calls conn_header_done(), every wait also ends at
         * start + header_timeout (or the total deadline, if that is sooner).
         * false when the struct is zeroed: the header deadline runs from the
         * accept without the caller doing anything. */
        bool header_done;
        enum conn_timeout timed_out; /* set whenever a call returns -ETIMEDOUT */
        uint64_t bytes_in;
        uint64_t bytes_out;
};

uint64_t now_usec(void);

/* Fill remote_addr/remote_port from a peer address. */
void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len);

/* The whole request (message, file request frame, lab preamble) is in: the
 * header deadline no longer applies, only the idle timeout and deadline_usec. */
void conn_header_done(struct conn *c);

/* Describe c->timed_out for a log entry's DETAIL ("header deadline: ...",
 * "idle for 30 s (idle_timeout)", ...) into buf.  Return: buf. */
const char *conn_timeout_text(const struct conn *c, char *buf, size_t size);

/* Wait until fd is readable, for at most wait_usec (or the idle timeout if
 * wait_usec is 0), never past the header or total deadline.
 * Return: 1 readable; 0 if wait_usec (not a limit) passed; -ETIMEDOUT if the
 * idle timeout or a deadline passed (c->timed_out says which); negative
 * errno on error. */
int conn_wait_readable(struct conn *c, uint64_t wait_usec);

/* Read what is available, waiting (bounded as above) if nothing is.
 * Return: bytes read (> 0); 0 on EOF; -ETIMEDOUT; negative errno. */
ssize_t conn_read(struct conn *c, void *buf, size_t size);

/* Write all n bytes, bounded by the idle timeout per step and the deadlines.
 * Return: 0; -ETIMEDOUT if the client stopped reading; negative errno. */
int conn_write_all(struct conn *c, const void *buf, size_t n);

/* End the connection without losing the last reply: shut down our side, then
 * read and discard what the client still sends for at most linger_usec (so
 * the kernel does not answer unread data with a reset that can destroy the
 * reply in flight), then close. */
void conn_close_lingering(struct conn *c, uint64_t linger_usec);

/* Send bytes [offset, offset + len) of file fd with sendfile(2): no copy
 * through user space.  Each step is bounded by the idle timeout and the
 * deadlines.  *ret_sent (always written) counts the bytes that left.
 * Return: 0; -ENODATA if the file ended early (it shrank under us);
 * -ETIMEDOUT if the client stopped reading; negative errno. */
int conn_sendfile(struct conn *c, int fd, uint64_t offset, uint64_t len, uint64_t *ret_sent);

/* End the request: conn_close_lingering(), then fill the entry's byte counts
 * and duration from c and write it with log_request(). */
void conn_end_request(struct conn *c, struct request_log *entry, uint64_t linger_usec);
