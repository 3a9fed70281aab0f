/*
 * nfqdelay: hold every packet of an NFQUEUE for a fixed time, then accept it.
 * The delay element of bench-xfer.py's lossy link, on kernels without netem.
 *
 * "nfqdelay QUEUE DELAY_US MAXLEN"
 *
 * The bench sends the packets of one direction of a veth link to NFQUEUE
 * number QUEUE (iptables -j NFQUEUE in the receiving namespace's PREROUTING;
 * this program must run in that network namespace). The kernel keeps each
 * packet; only its metadata (NFQNL_COPY_META: the packet id, no payload) comes
 * up here. The program notes when each id arrived and, DELAY_US microseconds
 * later, accepts it. The delay is the same for every packet, so the packets
 * leave in the order they came (a FIFO): one batch verdict
 * (NFQNL_MSG_VERDICT_BATCH, "accept every id up to N") releases all the
 * packets that are due at once. Nothing is reordered, duplicated or altered, and TCP and UDP are
 * treated alike.
 *
 * Bounded: the kernel queue holds at most MAXLEN packets (nfq_set_queue_maxlen);
 * a packet that arrives while it is full is dropped by the kernel, like a full
 * router buffer (counted in /proc/net/netfilter/nfnetlink_queue; the bench
 * reads it). The ring here has the same size, so it cannot overflow. Should the
 * netlink socket ever overflow (ENOBUFS: ids lost on the way up), those packets
 * are still released by the next batch verdict, whose id is larger.
 *
 * Prints "ready" once the queue is bound. On SIGTERM or SIGINT it accepts
 * everything still held, prints one JSON line
 *   {"packets":N,"max_held":N,"enobufs":N,"early":N,"late_mean_us":N,
 *    "late_max_us":N,"late_over_1ms":N}
 * (late_*: how long packets were held beyond DELAY_US, from wake-up latency;
 * late_over_1ms counts the packets held more than 1 ms too long) and exits 0.
 *
 * It asks for SCHED_FIFO priority 10 (and goes on without it): on a 2-CPU
 * machine whose CPUs are busy with the transfer itself, a normal-priority
 * program wakes up late now and then, and the delay would vary by several
 * milliseconds. It uses little CPU (metadata only, one verdict per batch).
 *
 * Exit status 1 on a setup or runtime error, 2 on a usage error.
 *
 * Build: cc -O2 -o nfqdelay nfqdelay.c -lnetfilter_queue -lnfnetlink
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnetfilter_queue/linux_nfnetlink_queue.h>

struct held {
        uint32_t id;
        uint64_t due_ns;
};

static struct held *ring;
static size_t ring_size, ring_head, ring_count;
static uint64_t now_ns, delay_ns;
static uint64_t n_packets, n_enobufs, n_early, max_held, late_max_ns, late_sum_ns, n_late_1ms;
static uint32_t last_id;
static int have_last;
static volatile sig_atomic_t stop;

static uint64_t monotonic_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

/* Accept every packet up to and including id; returns 0 or -1. */
static int release_upto(struct nfq_q_handle *qh, uint32_t id)
{
        if (nfq_set_verdict_batch(qh, id, NF_ACCEPT) < 0) {
                perror("nfqdelay: verdict");
                return -1;
        }
        return 0;
}

/* Release the packets that are due; returns 0 or -1. */
static int release_due(struct nfq_q_handle *qh)
{
        uint32_t upto = 0;
        int any = 0;

        while (ring_count > 0 && ring[ring_head].due_ns <= now_ns) {
                uint64_t late = now_ns - ring[ring_head].due_ns;

                if (late > late_max_ns)
                        late_max_ns = late;
                late_sum_ns += late;
                if (late > 1000000u)
                        n_late_1ms++;
                upto = ring[ring_head].id;
                any = 1;
                ring_head = (ring_head + 1) % ring_size;
                ring_count--;
        }
        return any ? release_upto(qh, upto) : 0;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
        struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
        uint32_t id;

        (void)msg;
        (void)data;
        if (ph == NULL)
                return 0;
        id = ntohl(ph->packet_id);
        if (ring_count == ring_size) {
                /* Cannot happen while the kernel keeps to MAXLEN; if it did,
                 * the oldest packet leaves early rather than being lost. */
                n_early++;
                if (release_upto(qh, ring[ring_head].id) < 0)
                        return -1;
                ring_head = (ring_head + 1) % ring_size;
                ring_count--;
        }
        ring[(ring_head + ring_count) % ring_size] = (struct held){ .id = id, .due_ns = now_ns + delay_ns };
        ring_count++;
        if (ring_count > max_held)
                max_held = ring_count;
        n_packets++;
        last_id = id;
        have_last = 1;
        return 0;
}

int main(int argc, char **argv)
{
        static char buf[1 << 20];
        struct nfq_handle *h;
        struct nfq_q_handle *qh;
        struct sigaction sa;
        unsigned long queue, delay_us, maxlen;
        char *end;
        int fd, one = 1, bufsize = 64 << 20;

        if (argc != 4) {
                fprintf(stderr, "usage: nfqdelay QUEUE DELAY_US MAXLEN\n");
                return 2;
        }
        errno = 0;
        queue = strtoul(argv[1], &end, 10);
        if (errno || *end || queue > 65535) {
                fprintf(stderr, "nfqdelay: bad queue number '%s'\n", argv[1]);
                return 2;
        }
        delay_us = strtoul(argv[2], &end, 10);
        if (errno || *end || delay_us > 10000000) {
                fprintf(stderr, "nfqdelay: bad delay '%s' (microseconds, at most 10 s)\n", argv[2]);
                return 2;
        }
        maxlen = strtoul(argv[3], &end, 10);
        if (errno || *end || maxlen < 1 || maxlen > 1000000) {
                fprintf(stderr, "nfqdelay: bad queue length '%s' (1 to 1000000)\n", argv[3]);
                return 2;
        }
        delay_ns = (uint64_t)delay_us * 1000u;
        ring_size = maxlen;
        ring = calloc(ring_size, sizeof(*ring));
        if (ring == NULL) {
                perror("nfqdelay: calloc");
                return 1;
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
                perror("nfqdelay: sigaction");
                return 1;
        }
        {
                struct sched_param sp = { .sched_priority = 10 };

                if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
                        perror("nfqdelay: SCHED_FIFO (going on)");
        }
        /* Wake-ups on time: the default 50 us of timer slack would add up. */
        if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
                perror("nfqdelay: PR_SET_TIMERSLACK (going on)");

        h = nfq_open();
        if (h == NULL) {
                perror("nfqdelay: nfq_open");
                return 1;
        }
        qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
        if (qh == NULL) {
                perror("nfqdelay: nfq_create_queue (is another program bound to this queue?)");
                nfq_close(h);
                return 1;
        }
        if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
                perror("nfqdelay: nfq_set_mode");
                goto fail;
        }
        if (nfq_set_queue_maxlen(qh, (uint32_t)maxlen) < 0) {
                perror("nfqdelay: nfq_set_queue_maxlen");
                goto fail;
        }
        /* GSO packets stay whole: only their metadata comes up here. */
        if (nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0)
                perror("nfqdelay: NFQA_CFG_F_GSO (going on)");
        fd = nfq_fd(h);
        /* Room for every held packet's metadata (about 100 bytes each), so
         * the socket does not overflow; SO_RCVBUFFORCE (root) passes rmem_max. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) < 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize)) < 0)
                perror("nfqdelay: SO_RCVBUF (going on)");
        if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0)
                perror("nfqdelay: NETLINK_NO_ENOBUFS (going on)");

        printf("ready\n");
        fflush(stdout);

        while (!stop) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                struct timespec ts, *tsp = NULL;
                int r;

                now_ns = monotonic_ns();
                if (ring_count > 0) {
                        uint64_t due = ring[ring_head].due_ns;
                        uint64_t wait = due > now_ns ? due - now_ns : 0;

                        ts.tv_sec = (time_t)(wait / 1000000000u);
                        ts.tv_nsec = (long)(wait % 1000000000u);
                        tsp = &ts;
                }
                r = ppoll(&pfd, 1, tsp, NULL);
                if (r < 0 && errno != EINTR) {
                        perror("nfqdelay: ppoll");
                        goto fail;
                }
                if (r > 0) {
                        for (;;) {
                                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

                                if (n < 0) {
                                        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                                                break;
                                        if (errno == ENOBUFS) {
                                                n_enobufs++;
                                                continue;
                                        }
                                        perror("nfqdelay: recv");
                                        goto fail;
                                }
                                now_ns = monotonic_ns();
                                /* A failed verdict in on_packet() said so already. */
                                (void)nfq_handle_packet(h, buf, (int)n);
                        }
                }
                now_ns = monotonic_ns();
                if (release_due(qh) < 0)
                        goto fail;
        }

        /* Nothing stays in the kernel queue after we go. */
        if (have_last && release_upto(qh, last_id) < 0)
                goto fail;
        printf("{\"packets\":%llu,\"max_held\":%llu,\"enobufs\":%llu,\"early\":%llu,"
               "\"late_mean_us\":%llu,\"late_max_us\":%llu,\"late_over_1ms\":%llu}\n",
               (unsigned long long)n_packets, (unsigned long long)max_held,
               (unsigned long long)n_enobufs, (unsigned long long)n_early,
               (unsigned long long)(n_packets - ring_count ? late_sum_ns / 1000u / (n_packets - ring_count) : 0),
               (unsigned long long)(late_max_ns / 1000u), (unsigned long long)n_late_1ms);
        fflush(stdout);
        nfq_destroy_queue(qh);
        nfq_close(h);
        return 0;

fail:
        nfq_destroy_queue(qh);
        nfq_close(h);
        return 1;
}
