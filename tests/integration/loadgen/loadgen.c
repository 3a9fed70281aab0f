/*
 * loadgen: the two parts of test_load.py that Python is too slow or too
 * jittery for on a 2-CPU machine.
 *
 *   loadgen flood HOST PORT SECONDS SIZE SOURCES
 *
 *      Sends SIZE-byte UDP datagrams to HOST:PORT as fast as one CPU can for
 *      SECONDS, in batches of sendmmsg(2), from SOURCES sockets bound to
 *      127.0.2.1, 127.0.2.2, ... (one source address each, taken in turn per
 *      batch), and drains the replies with recvmmsg(2) between batches.
 *      Nothing waits for a reply: this is an open-loop flood, the machine's
 *      rate. After SECONDS it keeps draining for 300 ms, then prints one JSON
 *      line:
 *
 *        {"seconds":S,"sent":N,"answered":M,"sent_per_s":R,"answered_per_s":A,
 *         "send_errors":E}
 *
 *      "answered" counts replies of exactly SIZE bytes that start with "LOAD"
 *      (an echo of ours).
 *
 *   loadgen probe HOST MSG_PORT GUESS_PORT ECHO_PORT INTERVAL_MS MAX_SECONDS
 *
 *      A well-behaved client that asks the daemon three things every
 *      INTERVAL_MS, until its standard input reaches end of file or
 *      MAX_SECONDS pass, and prints one line per round:
 *
 *        probe seq=N t=T tcp_ms=X tcp_status=S guess_ms=Y echo_ms=Z echo_sends=K
 *
 *      tcp: a fresh connection to the message listener, one netlab MSG_SEND
 *      frame, the whole MSG_REPLY frame back (tcp_status is its status byte:
 *      0 served, 3 busy); guess: a padded "play" from a fresh UDP socket, a
 *      "ROUND" or "ERR" line back; echo: a datagram to the (flooded) echo
 *      listener from a fresh socket, sent again every 100 ms until an echo
 *      of it comes back. Times are milliseconds from the first byte sent to
 *      the whole answer; -1 means no answer within 3 s (then tcp_status is
 *      -errno or -1 for a bad reply).
 *
 * Exit status: 0 done, 2 usage or setup error. It trusts nothing the daemon
 * sends: replies are compared or their header checked, never parsed further.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_MSEC 1000000LL
#define BATCH 64
#define SOURCES_MAX 250
/* "LOAD" and a 64-bit sequence number. */
#define SIZE_MIN 12
#define SIZE_MAX_UDP 65507
/* Each probe gets this long: long enough to measure an answer well past the
 * 1 s the test allows, short enough to keep the run bounded. */
#define PROBE_TIMEOUT_NS (3 * NSEC_PER_SEC)
#define ECHO_RESEND_NS (100 * NSEC_PER_MSEC)
#define DRAIN_NS (300 * NSEC_PER_MSEC)
/* netlab frame header (docs/PROTOCOL.md section 2). */
#define FRAME_HEADER 12
#define MSG_SEND 0x01
#define MSG_REPLY 0x02
/* A reply larger than this is not one the message service sends to a probe. */
#define REPLY_MAX 4096
/* netlabctl pads guess requests to this size (NL_GUESS_PAD), so a reply always fits. */
#define GUESS_PAD 176

static int64_t now_ns(void)
{
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail with a valid pointer; checked anyway. */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
                perror("loadgen: clock_gettime");
                exit(2);
        }
        return (int64_t) ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static int parse_num(const char *s, long min, long max, long *ret)
{
        char *end = NULL;

        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int make_addr(const char *host, long port, struct sockaddr_in *ret)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };

        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                return -EINVAL;
        *ret = a;
        return 0;
}

/* A non-blocking UDP socket bound to src (port 0) if not NULL, connected to dst.
 * Return: the fd, or -errno. */
static int udp_socket(const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if ((src && bind(fd, (const struct sockaddr *) src, sizeof *src) < 0) ||
            connect(fd, (const struct sockaddr *) dst, sizeof *dst) < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        return fd;
}

/* Waits for events on fd until deadline (CLOCK_MONOTONIC ns).
 * Return: > 0 ready, 0 deadline passed, -errno on failure. */
static int wait_fd(int fd, short events, int64_t deadline)
{
        for (;;) {
                int64_t left = deadline - now_ns();
                if (left <= 0)
                        return 0;
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, (int) ((left + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
                if (r > 0)
                        return r;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

/* ---- flood ---- */

struct flood {
        int fds[SOURCES_MAX];
        size_t n_fds;
        size_t size;
        uint64_t sent, answered, send_errors;
        unsigned char (*out)[SIZE_MAX_UDP + 1];
        unsigned char (*in)[SIZE_MAX_UDP + 1];
};

/* Receives every reply waiting on every socket, without blocking. */
static void flood_drain(struct flood *f)
{
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];

        for (size_t s = 0; s < f->n_fds; s++)
                for (;;) {
                        memset(msgs, 0, sizeof msgs);
                        for (size_t i = 0; i < BATCH; i++) {
                                iov[i] = (struct iovec) { f->in[i], SIZE_MAX_UDP + 1 };
                                msgs[i].msg_hdr.msg_iov = &iov[i];
                                msgs[i].msg_hdr.msg_iovlen = 1;
                        }
                        int n = recvmmsg(f->fds[s], msgs, BATCH, MSG_DONTWAIT, NULL);
                        if (n <= 0)
                                break; /* EAGAIN (drained), or an ICMP error: counted by sends */
                        for (int i = 0; i < n; i++)
                                if (msgs[i].msg_len == f->size &&
                                    memcmp(f->in[i], f->out[0], 4) == 0)
                                        f->answered++;
                }
}

static int flood_batch(struct flood *f, int fd)
{
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];

        memset(msgs, 0, sizeof msgs);
        for (size_t i = 0; i < BATCH; i++) {
                uint64_t seq = f->sent + i;
                memcpy(f->out[i] + 4, &seq, sizeof seq);
                iov[i] = (struct iovec) { f->out[i], f->size };
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = sendmmsg(fd, msgs, BATCH, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                f->send_errors++; /* ECONNREFUSED from an ICMP port unreachable */
                return 0;
        }
        f->sent += (uint64_t) n;
        return n;
}

static int cmd_flood(int argc, char **argv)
{
        long port, seconds, size, sources;
        struct sockaddr_in dst;

        if (argc != 6 || make_addr(argv[1], 0, &dst) < 0 ||
            parse_num(argv[2], 1, 65535, &port) < 0 || parse_num(argv[3], 1, 60, &seconds) < 0 ||
            parse_num(argv[4], SIZE_MIN, 1400, &size) < 0 ||
            parse_num(argv[5], 1, SOURCES_MAX, &sources) < 0) {
                fprintf(stderr, "usage: loadgen flood HOST PORT SECONDS(1-60) SIZE(%d-1400) "
                        "SOURCES(1-%d)\n", SIZE_MIN, SOURCES_MAX);
                return 2;
        }
        dst.sin_port = htons((uint16_t) port);

        struct flood f = { .size = (size_t) size };
        f.out = calloc(BATCH, sizeof *f.out);
        f.in = calloc(BATCH, sizeof *f.in);
        if (!f.out || !f.in) {
                fprintf(stderr, "loadgen: out of memory\n");
                return 2;
        }
        /* Bytes 0-3 mark our datagrams, 4-11 carry a sequence number. */
        for (size_t i = 0; i < BATCH; i++) {
                memcpy(f.out[i], "LOAD", 4);
                memset(f.out[i] + 12, 'x', (size_t) size - 12);
        }
        for (long s = 0; s < sources; s++) {
                char host[32];
                struct sockaddr_in src;
                int k = snprintf(host, sizeof host, "127.0.2.%ld", s + 1);
                if (k < 0 || (size_t) k >= sizeof host || make_addr(host, 0, &src) < 0) {
                        fprintf(stderr, "loadgen: bad source address\n");
                        return 2;
                }
                int fd = udp_socket(&src, &dst);
                if (fd < 0) {
                        fprintf(stderr, "loadgen: socket from %s: %s\n", host, strerror(-fd));
                        return 2;
                }
                f.fds[f.n_fds++] = fd;
        }

        int64_t start = now_ns(), end = start + seconds * NSEC_PER_SEC;
        for (size_t turn = 0; now_ns() < end; turn++) {
                int fd = f.fds[turn % f.n_fds];
                if (flood_batch(&f, fd) == 0) {
                        /* The socket's send buffer is full: wait a little for room. */
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        if (poll(&p, 1, 1) < 0 && errno != EINTR) {
                                perror("loadgen: poll");
                                return 2;
                        }
                }
                if (turn % 4 == 0)
                        flood_drain(&f);
        }
        double elapsed = (double) (now_ns() - start) / NSEC_PER_SEC;
        int64_t drain_end = now_ns() + DRAIN_NS;
        while (now_ns() < drain_end) {
                flood_drain(&f);
                struct timespec ts = { 0, 5 * NSEC_PER_MSEC };
                (void) nanosleep(&ts, NULL); /* an early wake-up only drains sooner */
        }
        printf("{\"seconds\":%.3f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
               ",\"sent_per_s\":%.0f,\"answered_per_s\":%.0f,\"send_errors\":%" PRIu64 "}\n",
               elapsed, f.sent, f.answered, (double) f.sent / elapsed,
               (double) f.answered / elapsed, f.send_errors);
        for (size_t s = 0; s < f.n_fds; s++)
                (void) close(f.fds[s]);
        free(f.out);
        free(f.in);
        return 0;
}

/* ---- probe ---- */

static double ms_since(int64_t t0)
{
        return (double) (now_ns() - t0) / NSEC_PER_MSEC;
}

/* One netlab MSG_SEND over a fresh connection.
 * Return: the reply's status byte (>= 0) with *ret_ms set, -ETIMEDOUT,
 * -EBADMSG for a reply that is not one whole MSG_REPLY frame, or -errno. */
static int probe_tcp(const struct sockaddr_in *dst, unsigned seq, double *ret_ms)
{
        unsigned char req[64], reply[REPLY_MAX];
        char body[32];
        int k = snprintf(body, sizeof body, "probe %u", seq);
        if (k < 0 || (size_t) k >= sizeof body)
                return -EINVAL;

        memcpy(req, "\0NL\x01\x01\0\0\0", 8);
        uint32_t len = htonl((uint32_t) k);
        memcpy(req + 8, &len, 4);
        memcpy(req + FRAME_HEADER, body, (size_t) k);
        size_t req_len = FRAME_HEADER + (size_t) k;

        int64_t t0 = now_ns(), deadline = t0 + PROBE_TIMEOUT_NS;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        int r;
        if (connect(fd, (const struct sockaddr *) dst, sizeof *dst) < 0 && errno != EINPROGRESS) {
                r = -errno;
                goto out;
        }
        r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0) {
                r = r == 0 ? -ETIMEDOUT : r;
                goto out;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
                r = soerr != 0 ? -soerr : -errno;
                goto out;
        }
        /* 12 + a few bytes always fit an empty send buffer. */
        if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t) req_len) {
                r = -EIO;
                goto out;
        }
        size_t got = 0;
        for (;;) {
                if (got >= FRAME_HEADER) {
                        uint32_t blen;
                        memcpy(&blen, reply + 8, 4);
                        blen = ntohl(blen);
                        if (memcmp(reply, "\0NL\x01\x02", 5) != 0 ||
                            blen > REPLY_MAX - FRAME_HEADER) {
                                r = -EBADMSG;
                                goto out;
                        }
                        if (got == FRAME_HEADER + blen) {
                                *ret_ms = ms_since(t0);
                                r = reply[5];
                                goto out;
                        }
                }
                r = wait_fd(fd, POLLIN, deadline);
                if (r <= 0) {
                        r = r == 0 ? -ETIMEDOUT : r;
                        goto out;
                }
                ssize_t n = recv(fd, reply + got, sizeof reply - got, 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0) {
                        r = -EBADMSG; /* closed before the whole frame */
                        goto out;
                }
                got += (size_t) n;
        }
out:
        (void) close(fd);
        return r;
}

/* Sends req from a fresh socket (again every resend_ns, if not 0) until a
 * reply that accept() likes arrives. *ret_sends is always set (the datagrams
 * sent), *ret_ms only on success.
 * Return: 0, -ETIMEDOUT, or -errno. */
static int probe_udp(const struct sockaddr_in *dst, const unsigned char *req, size_t req_len,
                     int64_t resend_ns, bool (*accept)(const unsigned char *, size_t,
                                                       const unsigned char *, size_t),
                     double *ret_ms, int *ret_sends)
{
        static unsigned char buf[SIZE_MAX_UDP + 1];
        int fd = udp_socket(NULL, dst);
        if (fd < 0)
                return fd;

        int64_t t0 = now_ns(), deadline = t0 + PROBE_TIMEOUT_NS, next_send = t0;
        int sends = 0, r;
        for (;;) {
                int64_t now = now_ns();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (now >= next_send) {
                        /* A failed send (e.g. a full buffer) is retried at the next resend. */
                        if (send(fd, req, req_len, MSG_NOSIGNAL) == (ssize_t) req_len)
                                sends++;
                        next_send = resend_ns > 0 ? now + resend_ns : deadline;
                }
                r = wait_fd(fd, POLLIN, next_send < deadline ? next_send : deadline);
                if (r < 0)
                        break;
                if (r == 0)
                        continue;
                ssize_t n = recv(fd, buf, sizeof buf, 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
                                continue;
                        r = -errno;
                        break;
                }
                if (accept(req, req_len, buf, (size_t) n)) {
                        *ret_ms = ms_since(t0);
                        r = 0;
                        break;
                }
        }
        *ret_sends = sends;
        (void) close(fd);
        return r;
}

static bool accept_guess(const unsigned char *req, size_t req_len, const unsigned char *buf,
                         size_t n)
{
        (void) req;
        (void) req_len;
        return (n >= 6 && memcmp(buf, "ROUND ", 6) == 0) || (n >= 4 && memcmp(buf, "ERR ", 4) == 0);
}

static bool accept_echo(const unsigned char *req, size_t req_len, const unsigned char *buf,
                        size_t n)
{
        return n == req_len && memcmp(req, buf, n) == 0;
}

static bool stdin_closed(void)
{
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        if (poll(&p, 1, 0) <= 0)
                return false;
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static int cmd_probe(int argc, char **argv)
{
        long msg_port, guess_port, echo_port, interval, max_seconds;
        struct sockaddr_in msg, guess, echo;

        if (argc != 7 || make_addr(argv[1], 0, &msg) < 0 ||
            parse_num(argv[2], 1, 65535, &msg_port) < 0 ||
            parse_num(argv[3], 1, 65535, &guess_port) < 0 ||
            parse_num(argv[4], 1, 65535, &echo_port) < 0 ||
            parse_num(argv[5], 10, 10000, &interval) < 0 ||
            parse_num(argv[6], 1, 600, &max_seconds) < 0) {
                fprintf(stderr, "usage: loadgen probe HOST MSG_PORT GUESS_PORT ECHO_PORT "
                        "INTERVAL_MS(10-10000) MAX_SECONDS(1-600)\n");
                return 2;
        }
        guess = echo = msg;
        msg.sin_port = htons((uint16_t) msg_port);
        guess.sin_port = htons((uint16_t) guess_port);
        echo.sin_port = htons((uint16_t) echo_port);

        /* Line-buffered: the test may read the lines while we run. */
        if (setvbuf(stdout, NULL, _IOLBF, 0) != 0) {
                perror("loadgen: setvbuf");
                return 2;
        }
        int64_t start = now_ns(), end = start + max_seconds * NSEC_PER_SEC;
        for (unsigned seq = 0; now_ns() < end && !stdin_closed(); seq++) {
                int64_t round = now_ns();
                double tcp_ms = -1, guess_ms = -1, echo_ms = -1;
                int echo_sends = 0, guess_sends = 0;

                int tcp_status = probe_tcp(&msg, seq, &tcp_ms);

                unsigned char greq[GUESS_PAD];
                memset(greq, '.', sizeof greq);
                int k = snprintf((char *) greq, sizeof greq, "play nonce=%08x #", seq);
                if (k < 0 || (size_t) k >= sizeof greq)
                        return 2;
                greq[k] = '.'; /* padding after '#' is never read */
                if (probe_udp(&guess, greq, sizeof greq, 0, accept_guess, &guess_ms,
                              &guess_sends) < 0)
                        guess_ms = -1;

                unsigned char ereq[64];
                k = snprintf((char *) ereq, sizeof ereq, "probe echo %u", seq);
                if (k < 0 || (size_t) k >= sizeof ereq)
                        return 2;
                if (probe_udp(&echo, ereq, (size_t) k, ECHO_RESEND_NS, accept_echo, &echo_ms,
                              &echo_sends) < 0)
                        echo_ms = -1;

                printf("probe seq=%u t=%.3f tcp_ms=%.3f tcp_status=%d guess_ms=%.3f echo_ms=%.3f "
                       "echo_sends=%d\n", seq, (double) (round - start) / NSEC_PER_SEC, tcp_ms,
                       tcp_status, guess_ms, echo_ms, echo_sends);

                int64_t next = round + interval * NSEC_PER_MSEC;
                int64_t left = next - now_ns();
                if (left > 0) {
                        struct timespec ts = { left / NSEC_PER_SEC, left % NSEC_PER_SEC };
                        (void) nanosleep(&ts, NULL); /* an early wake-up only probes sooner */
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "flood") == 0)
                return cmd_flood(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "probe") == 0)
                return cmd_probe(argc - 1, argv + 1);
        fprintf(stderr, "usage: loadgen flood ... | loadgen probe ... "
                "(see the comment in loadgen.c)\n");
        return 2;
}
