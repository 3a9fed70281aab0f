/* udp.c: the UDP side of netlabctl: a socket connected to the server, and
 * request/reply exchanges with per-attempt waits and resends.
 *
 * The socket is connect()ed, so the kernel delivers only datagrams from the
 * server's address and port, and an ICMP port unreachable comes back as
 * ECONNREFUSED on the next send or recv.  Replies are still untrusted: each
 * is received into a buffer larger than any UDP payload, so nothing is cut
 * without us knowing, and the caller's accept() hook checks it. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

static int connect_one(struct udp_peer *p, const struct addrinfo *ai)
{
        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                                        ai->ai_protocol);

        if (fd < 0)
                return -errno;
        /* Fixes the peer and picks the source address; for UDP nothing is sent. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                return -errno;

        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, p->addr, sizeof p->addr, NULL, 0, NI_NUMERICHOST) != 0)
                (void) xsnprintf(p->addr, sizeof p->addr, "?");
        p->payload_max = ai->ai_family == AF_INET ? UDP_PAYLOAD_MAX_IPV4 : NL_UDP_PAYLOAD_MAX;
        return TAKE_FD(fd);
}

/* Connect to the first address from `from` on that works.  Return: 0 with
 * p->fd and p->cur set; the last error. */
static int connect_from(struct udp_peer *p, struct addrinfo *from)
{
        int last = -EHOSTUNREACH;

        for (struct addrinfo *ai = from; ai; ai = ai->ai_next) {
                int fd = connect_one(p, ai);
                if (fd >= 0) {
                        p->fd = safe_close(p->fd);
                        p->fd = fd;
                        p->cur = ai;
                        return 0;
                }
                last = fd;
        }
        return last;
}

int udp_resolve(const char *host, uint16_t port, struct addrinfo **ret, char *err, size_t err_size)
{
        struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *res = NULL;
        char service[8];
        int r;

        (void) xsnprintf(service, sizeof service, "%u", port);
        r = getaddrinfo(host, service, &hints, &res);
        if (r == EAI_NONAME) {
                /* A loopback-only machine has no "configured" address family. */
                hints.ai_flags = 0;
                r = getaddrinfo(host, service, &hints, &res);
        }
        if (r != 0) {
                (void) xsnprintf(err, err_size, "cannot resolve \"%s\": %s", host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        *ret = res;
        return 0;
}

int udp_peer_open(struct udp_peer *p, const char *host, uint16_t port, char *err, size_t err_size)
{
        int r;

        *p = (struct udp_peer) { .fd = -1, .host = host, .port = port };

        r = udp_resolve(host, port, &p->addrs, err, err_size);
        if (r < 0) {
                p->addrs = NULL;
                return r;
        }

        r = connect_from(p, p->addrs);
        if (r < 0) {
                (void) xsnprintf(err, err_size, "cannot reach %s port %u: %s", host, port, strerror(-r));
                udp_peer_done(p);
                return r;
        }
        return 0;
}

void udp_peer_done(struct udp_peer *p)
{
        p->fd = safe_close(p->fd);
        if (p->addrs)
                freeaddrinfo(p->addrs);
        p->addrs = NULL;
        p->cur = NULL;
}

/* The server refused on the current address (ICMP port unreachable).  Until
 * it has answered there, a name with several addresses may be served on
 * another one ("localhost" is ::1 and 127.0.0.1; a lab server binds only
 * IPv4): move on.  Return: 0 if connected to a next address; -ECONNREFUSED. */
static int udp_peer_next(struct udp_peer *p)
{
        if (p->confirmed || !p->cur || !p->cur->ai_next)
                return -ECONNREFUSED;
        return connect_from(p, p->cur->ai_next) < 0 ? -ECONNREFUSED : 0;
}

int udp_wait(const struct udp_peer *p, short events, uint64_t until_usec)
{
        for (;;) {
                uint64_t now = mono_usec();
                if (now >= until_usec)
                        return 0;

                uint64_t left = until_usec - now;
                struct timespec ts = { .tv_sec = (time_t) (left / 1000000u),
                                       .tv_nsec = (long) (left % 1000000u) * 1000 };
                /* No events: just sleep (a negative fd is ignored by poll). */
                struct pollfd pfd = { .fd = events ? p->fd : -1, .events = events };
                /* With wait_mask, the caller keeps its signals blocked except
                 * here, so one that arrives just before the wait still ends it
                 * (ppoll(2) applies the mask atomically). */
                int r = ppoll(&pfd, 1, &ts, p->wait_mask);
                if (r < 0 && errno == EINTR) {
                        if (p->wait_mask)
                                return -EINTR;
                        continue;
                }
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return 0;
                return pfd.revents;
        }
}

int udp_send(struct udp_peer *p, const void *buf, size_t n, uint64_t until_usec)
{
        for (;;) {
                ssize_t k = send(p->fd, buf, n, MSG_NOSIGNAL);
                if (k >= 0)
                        return (size_t) k == n ? 0 : -EMSGSIZE;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                /* The socket's send buffer is full: rare for one datagram. */
                int r = udp_wait(p, POLLOUT, until_usec);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
}

ssize_t udp_recv(struct udp_peer *p, uint8_t *buf, size_t size, uint64_t until_usec)
{
        for (;;) {
                /* MSG_TRUNC: the real size even if it is larger than buf. */
                ssize_t k = recv(p->fd, buf, size, MSG_TRUNC);
                if (k >= 0) {
                        p->confirmed = true;
                        return k;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                int r = udp_wait(p, POLLIN, until_usec);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
}

int udp_exchange(struct udp_peer *p, struct udp_exchange *x, uint8_t *reply, size_t reply_size,
                 size_t *ret_n)
{
        uint64_t start = mono_usec();
        uint64_t cap = start + x->cap_usec;
        unsigned attempts = 0;
        int r;

        x->n_attempts = 0;
        x->first_send_usec = start;
        while (attempts <= x->retries) {
                /* Stamped before send(): on loopback the server may run and
                 * answer before send() returns to us. */
                uint64_t sent_at = mono_usec();
                if (sent_at >= cap)
                        break;

                r = udp_send(p, x->req, x->req_len, cap);
                if (r == -ECONNREFUSED) {
                        /* An ICMP error left by an earlier datagram: this
                         * one may still have gone; try again on the next
                         * address, if any. */
                        if (udp_peer_next(p) < 0)
                                return -ECONNREFUSED;
                        attempts = 0;
                        continue;
                }
                if (r == -ETIMEDOUT)
                        break;
                if (r < 0)
                        return r;
                attempts++;
                if (x->n_attempts++ == 0)
                        x->first_send_usec = sent_at;
                x->last_send_usec = sent_at;

                uint64_t until = x->last_send_usec + x->wait_usec;
                if (until > cap)
                        until = cap;
                for (;;) {
                        ssize_t k = udp_recv(p, reply, reply_size, until);
                        if (k == -ETIMEDOUT)
                                break;
                        if (k == -ECONNREFUSED) {
                                if (udp_peer_next(p) < 0)
                                        return -ECONNREFUSED;
                                attempts = 0;
                                break;
                        }
                        if (k < 0)
                                return (int) k;

                        size_t n = (size_t) k;
                        r = x->accept ? x->accept(reply, n < reply_size ? n : reply_size, n, x->userdata) : 1;
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                x->reply_usec = mono_usec();
                                *ret_n = n;
                                return 0;
                        }
                        /* 0: a stale datagram; keep waiting for ours. */
                }
        }
        return -ETIMEDOUT;
}

int udp_drain(struct udp_peer *p, uint8_t *buf, size_t size)
{
        int n = 0;

        /* Bounded: a server that keeps sending must not keep us here. */
        while (n < UDP_DRAIN_MAX) {
                ssize_t k = recv(p->fd, buf, size, MSG_DONTWAIT | MSG_TRUNC);
                if (k >= 0) {
                        n++;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return n;
                return -errno;
        }
        return n;
}

int parse_seconds(const char *opt, const char *arg, uint64_t min_usec, uint64_t max_usec,
                  uint64_t *ret_usec)
{
        const char *dot = strchr(arg, '.');
        size_t int_len = dot ? (size_t) (dot - arg) : strlen(arg);
        uint64_t whole, frac = 0;

        /* Decimal seconds with at most 6 decimals, "1", "0.5", "2.25"; no
         * signs, exponents or locale (strtod accepts "inf" and "1e3"). */
        if (num_parse_u64_n(arg, int_len, 0, max_usec / 1000000u, &whole) < 0)
                goto bad;
        if (dot) {
                size_t frac_len = strlen(dot + 1);
                if (frac_len == 0 || frac_len > 6 || num_parse_u64_n(dot + 1, frac_len, 0, 999999, &frac) < 0)
                        goto bad;
                for (size_t i = frac_len; i < 6; i++)
                        frac *= 10;
        }

        uint64_t usec = whole * 1000000u + frac;
        if (usec < min_usec || usec > max_usec)
                goto bad;
        *ret_usec = usec;
        return 0;

bad:;
        char lo[32], hi[32];
        format_seconds(lo, sizeof lo, min_usec);
        format_seconds(hi, sizeof hi, max_usec);
        usage_error("%s: \"%s\" is not seconds from %s to %s (at most 6 decimals)", opt, arg, lo, hi);
        return -EINVAL;
}

void format_seconds(char *buf, size_t size, uint64_t usec)
{
        int r = xsnprintf(buf, size, "%llu.%06llu", (unsigned long long) (usec / 1000000u),
                          (unsigned long long) (usec % 1000000u));
        if (r < 0)
                return;

        /* Drop trailing zeros and a bare dot: "1.500000" -> "1.5", "2.000000" -> "2". */
        size_t n = (size_t) r;
        while (n > 0 && buf[n - 1] == '0')
                n--;
        if (n > 0 && buf[n - 1] == '.')
                n--;
        buf[n] = '\0';
}

int udp_exchange_failed(const char *command, const struct udp_peer *p, int r, unsigned attempts)
{
        if (r == -ETIMEDOUT)
                return fail(command, EXIT_TIMEOUT, "timeout", "no reply from %s port %u after %u attempt%s",
                            p->host, p->port, attempts, attempts == 1 ? "" : "s");
        if (r == -ECONNREFUSED)
                return fail(command, EXIT_CONNECT, "port-unreachable",
                            "%s port %u: port unreachable (ICMP): nothing listens there", p->host, p->port);
        return fail(command, EXIT_CONNECT, "connection-error", "exchange with %s port %u failed: %s",
                    p->host, p->port, strerror(-r));
}
