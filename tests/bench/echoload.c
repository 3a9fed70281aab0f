/*
 * echoload: the load generator of the UDP echo benchmark.
 *
 * "echoload [-w WARMUP] [-t TIMEOUT_MS] [-a CPU] HOST PORT CLIENTS SECONDS SIZE"
 *
 * CLIENTS independent clients, each with its own UDP socket (its own source
 * port) connect()ed to HOST:PORT, run a closed loop: each keeps exactly one
 * datagram of SIZE bytes in flight, and sends the next one only when the reply
 * to the current one came back. A datagram carries the client's index, a
 * sequence number and a filler derived from both, so every reply is checked:
 *
 *   ok       byte-identical to the datagram in flight: one round trip; the
 *            client sends the next sequence number
 *   stale    an intact echo of one of this client's earlier datagrams (a late
 *            or duplicated reply); it completes nothing
 *   altered  anything else (wrong size, wrong bytes, another client's
 *            datagram); it completes nothing
 *   lost     no ok reply within TIMEOUT_MS (default 200): the client gives up
 *            on that datagram and sends a fresh one with a new sequence number
 *   errors   a send or receive failed (an ICMP port unreachable comes back as
 *            ECONNREFUSED when nothing listens); the datagram then times out
 *
 * The run is WARMUP seconds (default 1) of load that is not counted, then a
 * measured window of SECONDS; round trips count when their reply arrives in
 * the window. After the window nothing new is sent, and the datagrams still in
 * flight get TIMEOUT_MS to come back: one that does not counts as lost, so
 * "lost" covers every datagram sent from the start of the window on. Losses
 * in the warm-up are reported apart (warmup_lost). It prints one JSON line:
 *
 *   {"clients":8,"size":64,"seconds":S,"round_trips":N,"rate":R,"lost":L,
 *    "stale":S,"altered":A,"errors":E,"warmup_lost":W,"client_min":N,
 *    "client_max":N,"cpu":C}
 *
 * rate is round_trips / seconds (the window, timed with CLOCK_MONOTONIC);
 * client_min and client_max are the fewest and most round trips one client
 * made in the window (a starved client shows there). -a CPU pins the
 * generator to that CPU (sched_setaffinity), for repeatable runs.
 *
 * Why one thread with epoll. Two designs were measured on the benchmark's
 * 2-CPU VM, 64-byte datagrams, against plainecho.c and against a batching
 * recvmmsg/sendmmsg server (tests/bench/README.md, "The load generator"):
 *
 *   one thread, every socket in one level-triggered epoll set (this file):
 *            one send and one recv per round trip, plus one epoll_wait for
 *            all the replies that arrived together. With 8 clients plainecho
 *            reached 250,000 to 300,000 round trips/s.
 *   one thread per client, blocking recv with SO_RCVTIMEO: one send and one
 *            recv per round trip and no epoll_wait, but with 8 clients 8
 *            threads sleep and wake on 2 CPUs, and those context switches
 *            cost more than the epoll_wait saves: plainecho reached only
 *            115,000 to 185,000, pinned or not.
 *
 * With 1 client both gave the same rate (about 19,000/s, bound by the
 * cross-CPU wake-ups, not by either program). So the epoll design is the
 * one that lets a server show what it can do. It uses at most one CPU,
 * which leaves the other to the server; it cannot be made much cheaper,
 * because on loopback each send also pays for the receiver's side of the
 * stack, so per round trip it does about as much kernel work as the server.
 *
 * Exit status: 0 when every datagram of the window came back ok; 1 when any
 * was lost, or a reply was stale or altered, or a send/receive failed; 2 on a
 * usage or setup error (no JSON is printed then). It trusts nothing the server
 * sends: a reply is only compared, never parsed beyond its header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS_MAX 1024
/* The header needs 12 bytes; 16 leaves room for some filler. */
#define SIZE_MIN 16
/* The largest UDP payload over IPv4. */
#define SIZE_MAX_UDP 65507
/* One byte more than any datagram, so a longer reply shows as altered, not truncated. */
#define RECV_BUF (SIZE_MAX_UDP + 1)
#define HEADER_LEN 12
#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_MSEC 1000000LL
#define EPOLL_EVENTS_MAX 64
/* Only the first few errors are described on stderr, so output stays bounded. */
#define ERROR_REPORT_MAX 5

enum verdict { REPLY_OK, REPLY_STALE, REPLY_ALTERED };

struct counts {
        uint64_t ok, lost, stale, altered, errors;
};

struct client {
        int fd;
        uint32_t id;
        uint64_t seq;         /* sequence number of the datagram in flight */
        int64_t deadline;     /* CLOCK_MONOTONIC ns after which it counts as lost */
        bool in_flight;
        unsigned char *msg;   /* the datagram in flight, SIZE bytes */
        struct counts n;      /* since the start of the run */
        struct counts start;  /* n when the window opened */
        uint64_t end_ok;      /* n.ok when the window closed */
};

static size_t arg_size;
static int64_t arg_timeout_ns = 200 * NSEC_PER_MSEC;
static unsigned n_errors_reported;

static int64_t now_ns(void) {
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail with a valid pointer; checked anyway. */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
                perror("echoload: clock_gettime");
                exit(2);
        }
        return (int64_t) ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void put_be(unsigned char *p, uint64_t v, int n) {
        for (int i = n - 1; i >= 0; i--) {
                p[i] = (unsigned char) (v & 0xff);
                v >>= 8;
        }
}

static uint64_t get_be(const unsigned char *p, int n) {
        uint64_t v = 0;

        for (int i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

/* The filler byte at offset i of client id's datagram number seq. */
static unsigned char filler(uint32_t id, uint64_t seq, size_t i) {
        return (unsigned char) (seq * 131u + id * 29u + i * 7u + 1u);
}

/* Writes datagram (id, seq) into msg: id (u32be), seq (u64be), then the filler. */
static void make_datagram(unsigned char *msg, uint32_t id, uint64_t seq) {
        put_be(msg, id, 4);
        put_be(msg + 4, seq, 8);
        for (size_t i = HEADER_LEN; i < arg_size; i++)
                msg[i] = filler(id, seq, i);
}

static enum verdict classify(const struct client *c, const unsigned char *buf, ssize_t n) {
        uint64_t seq;

        if ((size_t) n != arg_size)
                return REPLY_ALTERED;
        if (c->in_flight && memcmp(buf, c->msg, arg_size) == 0)
                return REPLY_OK;
        /* Not the one in flight: an intact echo of an earlier one of ours is stale. */
        if (get_be(buf, 4) != c->id)
                return REPLY_ALTERED;
        seq = get_be(buf + 4, 8);
        if (seq > c->seq || (seq == c->seq && c->in_flight))
                return REPLY_ALTERED;
        for (size_t i = HEADER_LEN; i < arg_size; i++)
                if (buf[i] != filler(c->id, seq, i))
                        return REPLY_ALTERED;
        return REPLY_STALE;
}

static void count_error(struct client *c, const char *what, int err) {
        c->n.errors++;
        if (n_errors_reported++ < ERROR_REPORT_MAX)
                fprintf(stderr, "echoload: client %u: %s: %s\n", c->id, what, strerror(err));
}

/* Sends the next datagram, with a new sequence number. A failed send still arms the deadline. */
static void send_next(struct client *c, int64_t now) {
        c->seq++;
        make_datagram(c->msg, c->id, c->seq);
        c->in_flight = true;
        c->deadline = now + arg_timeout_ns;
        for (;;) {
                if (send(c->fd, c->msg, arg_size, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
                        return;
                if (errno == EINTR)
                        continue;
                /* Most likely ECONNREFUSED from an earlier ICMP port unreachable. */
                count_error(c, "send", errno);
                return;
        }
}

/* Counts one received datagram. Returns true when it completed the round trip in flight. */
static bool on_reply(struct client *c, const unsigned char *buf, ssize_t n) {
        switch (classify(c, buf, n)) {
        case REPLY_OK:
                c->in_flight = false;
                c->n.ok++;
                return true;
        case REPLY_STALE:
                c->n.stale++;
                return false;
        case REPLY_ALTERED:
        default:
                c->n.altered++;
                return false;
        }
}

/*
 * Runs the clients from t0: warm-up until t_measure, the window until t_end,
 * then the drain. Returns the window's length in seconds, or -1 after saying
 * on stderr what failed.
 */
static double run(struct client *clients, long n_clients, int64_t t_measure, int64_t t_end) {
        struct epoll_event events[EPOLL_EVENTS_MAX];
        static unsigned char buf[RECV_BUF];
        int64_t now, next_scan, measured_at = 0, ended_at = 0;
        bool measuring = false, draining = false;
        long n_in_flight = 0;
        int ep = epoll_create1(EPOLL_CLOEXEC);

        if (ep < 0) {
                perror("echoload: epoll_create1");
                return -1;
        }
        for (long i = 0; i < n_clients; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t) i };

                if (epoll_ctl(ep, EPOLL_CTL_ADD, clients[i].fd, &ev) < 0) {
                        perror("echoload: epoll_ctl");
                        (void) close(ep);
                        return -1;
                }
        }

        now = now_ns();
        for (long i = 0; i < n_clients; i++)
                send_next(&clients[i], now);
        next_scan = now + arg_timeout_ns;

        for (;;) {
                int64_t next = next_scan;
                int timeout_ms, n;

                if (!measuring && t_measure < next)
                        next = t_measure;
                else if (measuring && !draining && t_end < next)
                        next = t_end;
                timeout_ms = next <= now ? 0
                                         : (int) ((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);

                n = epoll_wait(ep, events, EPOLL_EVENTS_MAX, timeout_ms);
                if (n < 0) {
                        if (errno != EINTR) {
                                perror("echoload: epoll_wait");
                                (void) close(ep);
                                return -1;
                        }
                        n = 0;
                }
                /* Read after the wait: a deadline set from a stale clock would expire early. */
                now = now_ns();

                for (int k = 0; k < n; k++) {
                        struct client *c = &clients[events[k].data.u64];
                        /*
                         * One recv per readiness event, without looping to
                         * EAGAIN: that extra recv would cost a syscall per round
                         * trip. Level-triggered epoll reports what is left.
                         */
                        ssize_t got = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

                        if (got < 0) {
                                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                                        count_error(c, "recv", errno);
                                continue;
                        }
                        if (!on_reply(c, buf, got))
                                continue;
                        if (draining)
                                n_in_flight--;
                        else
                                send_next(c, now);
                }

                if (!measuring && now >= t_measure) {
                        for (long i = 0; i < n_clients; i++)
                                clients[i].start = clients[i].n;
                        measured_at = now;
                        measuring = true;
                }
                if (measuring && !draining && now >= t_end) {
                        for (long i = 0; i < n_clients; i++) {
                                clients[i].end_ok = clients[i].n.ok;
                                n_in_flight += clients[i].in_flight;
                        }
                        ended_at = now;
                        draining = true;
                }
                if (now >= next_scan) {
                        /*
                         * Deadlines only ever move later, so the earliest one
                         * found here is a safe time for the next scan: O(CLIENTS)
                         * work once per timeout, not per round trip.
                         */
                        next_scan = now + arg_timeout_ns;
                        for (long i = 0; i < n_clients; i++) {
                                struct client *c = &clients[i];

                                if (!c->in_flight)
                                        continue;
                                if (now >= c->deadline) {
                                        c->n.lost++;
                                        c->in_flight = false;
                                        if (draining) {
                                                n_in_flight--;
                                                continue;
                                        }
                                        send_next(c, now);
                                }
                                if (c->deadline < next_scan)
                                        next_scan = c->deadline;
                        }
                }
                if (draining && n_in_flight == 0)
                        break;
        }
        (void) close(ep);
        return (double) (ended_at - measured_at) / NSEC_PER_SEC;
}

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

static int parse_seconds(const char *s, double min, double max, double *ret) {
        char *end = NULL;
        double v;

        if ((s[0] < '0' || s[0] > '9') && s[0] != '.')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v))
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static void usage(void) {
        fprintf(stderr, "usage: echoload [-w WARMUP_SEC] [-t TIMEOUT_MS] [-a CPU] "
                        "HOST PORT CLIENTS SECONDS SIZE\n");
}

int main(int argc, char *argv[]) {
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_DGRAM,
                .ai_protocol = IPPROTO_UDP,
                .ai_flags = AI_NUMERICSERV,
        };
        struct addrinfo *ai = NULL;
        double warmup = 1.0, seconds = 0, window;
        long n_clients = 0, size = 0, port = 0, timeout_ms = 200, cpu = -1;
        struct client *clients = NULL;
        struct counts sum = { 0 };
        uint64_t cmin = UINT64_MAX, cmax = 0, warmup_lost = 0;
        const char *host, *port_arg;
        int64_t t0;
        int opt, r;

        while ((opt = getopt(argc, argv, "w:t:a:")) != -1) {
                switch (opt) {
                case 'w':
                        if (parse_seconds(optarg, 0, 3600, &warmup) < 0) {
                                fprintf(stderr, "echoload: -w \"%s\": want seconds from 0 to "
                                                "3600\n", optarg);
                                return 2;
                        }
                        break;
                case 't':
                        if (parse_long(optarg, 1, 60000, &timeout_ms) < 0) {
                                fprintf(stderr, "echoload: -t \"%s\": want milliseconds from 1 to "
                                                "60000\n", optarg);
                                return 2;
                        }
                        break;
                case 'a':
                        if (parse_long(optarg, 0, CPU_SETSIZE - 1, &cpu) < 0) {
                                fprintf(stderr, "echoload: -a \"%s\": want a CPU number\n", optarg);
                                return 2;
                        }
                        break;
                default:
                        usage();
                        return 2;
                }
        }
        if (argc - optind != 5) {
                usage();
                return 2;
        }
        host = argv[optind];
        port_arg = argv[optind + 1];
        if (parse_long(port_arg, 1, 65535, &port) < 0) {
                fprintf(stderr, "echoload: PORT \"%s\" is not a number in 1-65535\n", port_arg);
                return 2;
        }
        if (parse_long(argv[optind + 2], 1, CLIENTS_MAX, &n_clients) < 0) {
                fprintf(stderr, "echoload: CLIENTS \"%s\" is not a number in 1-%d\n",
                        argv[optind + 2], CLIENTS_MAX);
                return 2;
        }
        if (parse_seconds(argv[optind + 3], 0.01, 3600, &seconds) < 0) {
                fprintf(stderr, "echoload: SECONDS \"%s\" is not a number from 0.01 to 3600\n",
                        argv[optind + 3]);
                return 2;
        }
        if (parse_long(argv[optind + 4], SIZE_MIN, SIZE_MAX_UDP, &size) < 0) {
                fprintf(stderr, "echoload: SIZE \"%s\" is not a number in %d-%d\n",
                        argv[optind + 4], SIZE_MIN, SIZE_MAX_UDP);
                return 2;
        }
        arg_size = (size_t) size;
        arg_timeout_ns = timeout_ms * NSEC_PER_MSEC;

        if (cpu >= 0) {
                cpu_set_t set;

                CPU_ZERO(&set);
                CPU_SET((int) cpu, &set);
                if (sched_setaffinity(0, sizeof(set), &set) < 0) {
                        fprintf(stderr, "echoload: -a %ld: sched_setaffinity: %s\n", cpu,
                                strerror(errno));
                        return 2;
                }
        }

        r = getaddrinfo(host, port_arg, &hints, &ai);
        if (r != 0) {
                fprintf(stderr, "echoload: cannot resolve \"%s\": %s\n", host, gai_strerror(r));
                return 2;
        }
        clients = calloc((size_t) n_clients, sizeof(*clients));
        if (clients == NULL) {
                fprintf(stderr, "echoload: out of memory\n");
                return 2;
        }
        for (long i = 0; i < n_clients; i++) {
                struct client *c = &clients[i];

                c->id = (uint32_t) i;
                c->msg = malloc(arg_size);
                if (c->msg == NULL) {
                        fprintf(stderr, "echoload: out of memory\n");
                        return 2;
                }
                c->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
                if (c->fd < 0) {
                        perror("echoload: socket");
                        return 2;
                }
                /* connect() binds an ephemeral source port and filters replies by source. */
                if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        fprintf(stderr, "echoload: connect %s:%ld: %s\n", host, port,
                                strerror(errno));
                        return 2;
                }
        }
        freeaddrinfo(ai);

        t0 = now_ns();
        window = run(clients, n_clients, t0 + (int64_t) (warmup * NSEC_PER_SEC),
                     t0 + (int64_t) ((warmup + seconds) * NSEC_PER_SEC));
        if (window < 0)
                return 2;

        for (long i = 0; i < n_clients; i++) {
                struct client *c = &clients[i];
                uint64_t ok = c->end_ok - c->start.ok;

                /* The ok count stops at the window's end; the rest count the drain too. */
                sum.ok += ok;
                sum.lost += c->n.lost - c->start.lost;
                sum.stale += c->n.stale - c->start.stale;
                sum.altered += c->n.altered - c->start.altered;
                sum.errors += c->n.errors - c->start.errors;
                warmup_lost += c->start.lost;
                if (ok < cmin)
                        cmin = ok;
                if (ok > cmax)
                        cmax = ok;
                (void) close(c->fd);
                free(c->msg);
        }
        free(clients);

        if (n_errors_reported > ERROR_REPORT_MAX)
                fprintf(stderr, "echoload: %u errors in all\n", n_errors_reported);
        if (printf("{\"clients\":%ld,\"size\":%zu,\"seconds\":%.6f,\"round_trips\":%" PRIu64
                   ",\"rate\":%.1f,\"lost\":%" PRIu64 ",\"stale\":%" PRIu64 ",\"altered\":%" PRIu64
                   ",\"errors\":%" PRIu64 ",\"warmup_lost\":%" PRIu64 ",\"client_min\":%" PRIu64
                   ",\"client_max\":%" PRIu64 ",\"cpu\":%ld}\n",
                   n_clients, arg_size, window, sum.ok, window > 0 ? (double) sum.ok / window : 0.0,
                   sum.lost, sum.stale, sum.altered, sum.errors, warmup_lost, cmin, cmax,
                   cpu) < 0 ||
            fflush(stdout) != 0) {
                perror("echoload: writing the result");
                return 2;
        }
        return sum.lost || sum.stale || sum.altered || sum.errors ? 1 : 0;
}
