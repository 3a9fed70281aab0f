/* net.c: bounded TCP I/O for netlabctl: every wait has a timeout, every
 * socket is non-blocking and close-on-exec. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cli.h"
#include "util.h"

uint64_t mono_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int net_wait(int fd, short events, uint64_t timeout_ms)
{
        uint64_t until = mono_usec() + timeout_ms * 1000u;

        for (;;) {
                uint64_t now = mono_usec();
                if (now >= until)
                        return 0;

                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, (int) ((until - now + 999) / 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return 0;
                return p.revents;
        }
}

static int connect_one(const struct addrinfo *ai, uint64_t timeout_ms)
{
        _cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                                        ai->ai_protocol);
        int one = 1, err = 0;
        socklen_t len = sizeof err;

        if (fd < 0)
                return -errno;
        /* One small request and one reply: do not let Nagle hold them. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                int r = net_wait(fd, POLLOUT, timeout_ms);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        return TAKE_FD(fd);
}

int net_connect_tcp(const char *host, uint16_t port, uint64_t timeout_ms, char *err, size_t err_size)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *res = NULL;
        char service[8];
        int r, last = -EHOSTUNREACH;

        (void) xsnprintf(service, sizeof service, "%u", port);
        r = getaddrinfo(host, service, &hints, &res);
        if (r == EAI_NONAME && (hints.ai_flags & AI_ADDRCONFIG)) {
                /* A loopback-only machine has no "configured" address family. */
                hints.ai_flags = 0;
                r = getaddrinfo(host, service, &hints, &res);
        }
        if (r != 0) {
                (void) xsnprintf(err, err_size, "cannot resolve \"%s\": %s", host, gai_strerror(r));
                return -EHOSTUNREACH;
        }

        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = connect_one(ai, timeout_ms);
                if (fd >= 0) {
                        freeaddrinfo(res);
                        return fd;
                }
                last = fd;
        }
        freeaddrinfo(res);

        (void) xsnprintf(err, err_size, "cannot connect to %s port %u: %s%s", host, port,
                last == -ETIMEDOUT ? "timed out" : strerror(-last),
                last == -ECONNREFUSED ? " (is netlabd running and listening there?)" : "");
        return last;
}

ssize_t net_read(int fd, void *buf, size_t size, uint64_t timeout_ms)
{
        for (;;) {
                ssize_t n = recv(fd, buf, size, 0);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                int r = net_wait(fd, POLLIN, timeout_ms);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
}

int net_read_exact(int fd, void *buf, size_t n, uint64_t timeout_ms, size_t *ret_got)
{
        uint8_t *p = buf;
        size_t got = 0;
        int r = 0;

        while (got < n) {
                ssize_t k = net_read(fd, p + got, n - got, timeout_ms);
                if (k < 0) {
                        r = (int) k;
                        break;
                }
                if (k == 0) {
                        r = -EPIPE;
                        break;
                }
                got += (size_t) k;
        }
        if (ret_got)
                *ret_got = got;
        return r;
}

int net_write_all(int fd, const void *buf, size_t n, uint64_t timeout_ms)
{
        const uint8_t *p = buf;
        size_t done = 0;

        while (done < n) {
                int r = net_wait(fd, POLLOUT | POLLIN, timeout_ms);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                if (r & POLLIN)
                        return -EALREADY; /* the server answered early: read it */
                if (r & (POLLERR | POLLHUP)) {
                        int err = 0;
                        socklen_t len = sizeof err;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                                err = EPIPE;
                        return -err;
                }

                ssize_t k = send(fd, p + done, n - done, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        return 0;
}
