/*
 * msgclient: the load client of the message-service connection-rate benchmark.
 *
 * "msgclient HOST PORT COUNT" makes COUNT sequential round trips against a TCP
 * message server. Each one connects (TCP_NODELAY), sends the 16 bytes of
 * BENCH_MSG, reads until the server closes, and closes. It then prints one JSON
 * line: {"count":N,"ok":N,"failed":N,"seconds":S,"conn_per_sec":R}.
 *
 * A round trip is ok only if at least one reply byte arrived and the reply ended
 * with a clean EOF. A refused connect, a reset, a timeout or an empty reply is a
 * failure. conn_per_sec counts only the ok round trips. Every socket operation
 * is bounded by a 5 s timeout, so a stuck server shows up as failures, never as
 * a hang. After FAIL_STREAK_MAX failures in a row the run stops early, and
 * "count" is then the number of round trips attempted. The client trusts nothing
 * the server sends: it only counts the bytes, up to REPLY_MAX per connection.
 *
 * Exit status: 0 if every round trip was ok, 1 if any failed, 2 on a usage or
 * setup error (no JSON is printed in that case).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* 15 printable characters and a LF: the message every bench peer receives. */
#define BENCH_MSG "netlab-bench-01\n"
#define BENCH_MSG_LEN 16
#define IO_TIMEOUT_SEC 5
#define COUNT_MAX 10000000L
/* A reply longer than this is a server bug; stop reading and call it a failure. */
#define REPLY_MAX (64 * 1024)
/* Enough to ride out a hiccup, few enough that a dead server ends the run fast. */
#define FAIL_STREAK_MAX 20
/* Only the first few failures are described on stderr, so output stays bounded. */
#define FAIL_REPORT_MAX 5

_Static_assert(sizeof(BENCH_MSG) - 1 == BENCH_MSG_LEN, "bench message must be 16 bytes");

static int parse_long(const char *s, long min, long max, long *ret) {
        char *end = NULL;
        long v;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static double now_seconds(void) {
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail with a valid pointer; checked anyway. */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
                perror("msgclient: clock_gettime");
                exit(2);
        }
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * One round trip. Returns 0 when a non-empty reply ended with EOF, otherwise a
 * negative errno; *ret_step names the step that failed.
 */
static int round_trip(const struct addrinfo *ai, const char **ret_step) {
        static const struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC, .tv_usec = 0 };
        static const int one = 1;
        char buf[4096];
        size_t sent = 0, got = 0;
        int fd = -1, r = 0;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
                *ret_step = "socket";
                return -errno;
        }
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                *ret_step = "setsockopt";
                r = -errno;
                goto out;
        }
        /* SO_SNDTIMEO also bounds a blocking connect() (socket(7)). */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                *ret_step = "connect";
                r = -errno;
                goto out;
        }

        while (sent < BENCH_MSG_LEN) {
                ssize_t n = send(fd, BENCH_MSG + sent, BENCH_MSG_LEN - sent, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_step = "send";
                        r = -errno;
                        goto out;
                }
                sent += (size_t) n;
        }

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_step = "recv";
                        /* SO_RCVTIMEO expiry shows up as EAGAIN. */
                        r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
                if (got > REPLY_MAX) {
                        *ret_step = "recv (reply too long)";
                        r = -EMSGSIZE;
                        goto out;
                }
        }
        if (got == 0) {
                *ret_step = "recv (empty reply)";
                r = -ENODATA;
        }

out:
        /* The server closed first, so close() has nothing left to report. */
        (void) close(fd);
        return r;
}

int main(int argc, char *argv[]) {
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
                .ai_flags = AI_NUMERICSERV,
        };
        struct addrinfo *ai = NULL;
        long port = 0, count = 0, ok = 0, failed = 0, attempted = 0;
        unsigned streak = 0;
        double start, seconds;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: msgclient HOST PORT COUNT\n");
                return 2;
        }
        if (parse_long(argv[2], 1, 65535, &port) < 0) {
                fprintf(stderr, "msgclient: PORT \"%s\" is not a number in 1-65535\n", argv[2]);
                return 2;
        }
        if (parse_long(argv[3], 1, COUNT_MAX, &count) < 0) {
                fprintf(stderr, "msgclient: COUNT \"%s\" is not a number in 1-%ld\n", argv[3],
                        COUNT_MAX);
                return 2;
        }
        r = getaddrinfo(argv[1], argv[2], &hints, &ai);
        if (r != 0) {
                fprintf(stderr, "msgclient: cannot resolve \"%s\": %s\n", argv[1], gai_strerror(r));
                return 2;
        }

        start = now_seconds();
        for (long i = 0; i < count; i++) {
                const char *step = "?";

                attempted++;
                r = round_trip(ai, &step);
                if (r == 0) {
                        ok++;
                        streak = 0;
                        continue;
                }
                failed++;
                streak++;
                if (failed <= FAIL_REPORT_MAX)
                        fprintf(stderr, "msgclient: round trip %ld failed at %s: %s\n", i + 1, step,
                                strerror(-r));
                if (streak >= FAIL_STREAK_MAX) {
                        fprintf(stderr, "msgclient: %u failures in a row, stopping after %ld of %ld\n",
                                streak, attempted, count);
                        break;
                }
        }
        seconds = now_seconds() - start;
        freeaddrinfo(ai);

        if (failed > FAIL_REPORT_MAX)
                fprintf(stderr, "msgclient: %ld failures in all\n", failed);
        if (printf("{\"count\":%ld,\"ok\":%ld,\"failed\":%ld,\"seconds\":%.6f,\"conn_per_sec\":%.1f}\n",
                   attempted, ok, failed, seconds, seconds > 0 ? (double) ok / seconds : 0.0) < 0 ||
            fflush(stdout) != 0) {
                perror("msgclient: writing the result");
                return 2;
        }
        return failed == 0 ? 0 : 1;
}
