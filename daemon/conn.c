/* conn.c: bounded blocking I/O for the child (see conn.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <time.h>

#include "conn.h"
#include "log.h"
#include "util.h"

uint64_t now_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid clock id */
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
        c->remote_addr[0] = '\0';
        c->remote_port = 0;

        if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                (void) inet_ntop(AF_INET, &in->sin_addr, c->remote_addr, sizeof c->remote_addr);
                c->remote_port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
                        (void) inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], c->remote_addr,
                                         sizeof c->remote_addr);
                else
                        (void) inet_ntop(AF_INET6, &in6->sin6_addr, c->remote_addr, sizeof c->remote_addr);
                c->remote_port = ntohs(in6->sin6_port);
        }
        if (c->remote_addr[0] == '\0')
                (void) xsnprintf(c->remote_addr, sizeof c->remote_addr, "unknown");
}

void conn_header_done(struct conn *c)
{
        c->header_done = true;
}

/* Seconds of the header deadline: header_timeout, or total_timeout when that
 * is shorter (both run from the accept; docs/netlabd.conf.5). */
static int64_t header_seconds(const struct conn *c)
{
        return c->limits->header_timeout < c->limits->total_timeout ? c->limits->header_timeout
                                                                    : c->limits->total_timeout;
}

/* The deadline that applies now, and which limit it is. */
static uint64_t current_deadline(const struct conn *c, enum conn_timeout *ret_which)
{
        if (!c->header_done) {
                uint64_t h = c->start_usec + (uint64_t) header_seconds(c) * 1000000u;
                if (h <= c->deadline_usec) {
                        *ret_which = CONN_TIMEOUT_HEADER;
                        return h;
                }
        }
        *ret_which = CONN_TIMEOUT_TOTAL;
        return c->deadline_usec;
}

const char *conn_timeout_text(const struct conn *c, char *buf, size_t size)
{
        switch (c->timed_out) {
        case CONN_TIMEOUT_HEADER:
                (void) xsnprintf(buf, size, "header deadline: no complete request %lld s after the accept "
                                 "(header_timeout)", (long long) header_seconds(c));
                break;
        case CONN_TIMEOUT_IDLE:
                (void) xsnprintf(buf, size, "idle for %lld s (idle_timeout)",
                                 (long long) c->limits->idle_timeout);
                break;
        case CONN_TIMEOUT_TOTAL:
                (void) xsnprintf(buf, size, "total deadline: %lld s after the accept (total_timeout)",
                                 (long long) c->limits->total_timeout);
                break;
        default:
                (void) xsnprintf(buf, size, "no timeout");
                break;
        }
        return buf;
}

/* Milliseconds to wait: the smaller of `want` (0: the idle timeout), the idle
 * timeout and what the current deadline leaves.  *ret_limit: the limit that
 * ends the wait (CONN_TIMEOUT_NONE: `want`, which is no limit).
 * Return: -1 if the deadline already passed. */
static int wait_ms(const struct conn *c, uint64_t want_usec, enum conn_timeout *ret_limit)
{
        uint64_t now = now_usec();
        uint64_t idle = (uint64_t) c->limits->idle_timeout * 1000000u;
        uint64_t w = want_usec ? want_usec : idle;
        enum conn_timeout limit = want_usec == 0 || want_usec >= idle ? CONN_TIMEOUT_IDLE : CONN_TIMEOUT_NONE;
        enum conn_timeout which;
        uint64_t deadline = current_deadline(c, &which);

        if (w > idle)
                w = idle;
        if (now >= deadline) {
                *ret_limit = which;
                return -1;
        }
        if (deadline - now <= w) {
                w = deadline - now;
                limit = which;
        }
        *ret_limit = limit;
        /* Round up so we never wake a hair early and spin. */
        return (int) ((w + 999) / 1000);
}

static int wait_for(struct conn *c, short events, uint64_t want_usec)
{
        for (;;) {
                enum conn_timeout limit;
                int ms = wait_ms(c, want_usec, &limit);
                if (ms < 0) {
                        c->timed_out = limit;
                        return -ETIMEDOUT;
                }

                struct pollfd p = { .fd = c->fd, .events = events };
                int r = poll(&p, 1, ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 1;
                if (limit == CONN_TIMEOUT_NONE)
                        return 0;
                c->timed_out = limit;
                return -ETIMEDOUT;
        }
}

int conn_wait_readable(struct conn *c, uint64_t wait_usec)
{
        return wait_for(c, POLLIN, wait_usec);
}

ssize_t conn_read(struct conn *c, void *buf, size_t size)
{
        for (;;) {
                ssize_t n = recv(c->fd, buf, size, 0);
                if (n >= 0) {
                        c->bytes_in += (uint64_t) n;
                        return n;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                int r = wait_for(c, POLLIN, 0);
                if (r < 0)
                        return r;
        }
}

int conn_write_all(struct conn *c, const void *buf, size_t n)
{
        const uint8_t *p = buf;
        size_t done = 0;

        while (done < n) {
                ssize_t k = send(c->fd, p + done, n - done, MSG_NOSIGNAL);
                if (k >= 0) {
                        done += (size_t) k;
                        c->bytes_out += (uint64_t) k;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                int r = wait_for(c, POLLOUT, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Large enough that a fast link needs few calls per second, small enough
 * that the 2 GiB sendfile() cap is never near. */
#define SENDFILE_CHUNK (64u * 1024u * 1024u)

int conn_sendfile(struct conn *c, int fd, uint64_t offset, uint64_t len, uint64_t *ret_sent)
{
        off_t pos = (off_t) offset;
        uint64_t sent = 0;
        int r = 0;

        while (sent < len) {
                size_t want = len - sent < SENDFILE_CHUNK ? (size_t) (len - sent) : SENDFILE_CHUNK;
                ssize_t k = sendfile(c->fd, fd, &pos, want);

                if (k > 0) {
                        sent += (uint64_t) k;
                        c->bytes_out += (uint64_t) k;
                        continue;
                }
                if (k == 0) {
                        r = -ENODATA; /* EOF before len: the file shrank */
                        break;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        r = -errno;
                        break;
                }
                r = wait_for(c, POLLOUT, 0);
                if (r < 0)
                        break;
                r = 0;
        }
        *ret_sent = sent;
        return r;
}

void conn_close_lingering(struct conn *c, uint64_t linger_usec)
{
        uint8_t sink[1024];
        uint64_t until;
        int unread = 0;

        if (c->fd < 0)
                return;

        /* Nothing unread: a plain close sends FIN after the reply, no reset,
         * and the child can go at once (the common case, and the fast one). */
        if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0) {
                c->fd = safe_close(c->fd);
                return;
        }

        if (shutdown(c->fd, SHUT_WR) < 0) {
                c->fd = safe_close(c->fd);
                return;
        }
        until = now_usec() + linger_usec;

        for (;;) {
                uint64_t now = now_usec();
                if (now >= until)
                        break;

                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int r = poll(&p, 1, (int) ((until - now + 999) / 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;

                ssize_t k = recv(c->fd, sink, sizeof sink, 0);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        break; /* EOF: the client closed after reading our reply */
        }
        c->fd = safe_close(c->fd);
}

void conn_end_request(struct conn *c, struct request_log *entry, uint64_t linger_usec)
{
        conn_close_lingering(c, linger_usec);
        entry->bytes_in = c->bytes_in;
        entry->bytes_out = c->bytes_out;
        entry->duration_usec = now_usec() - c->start_usec;
        log_request(entry);
}
