/* xfer-send.c: one UDP transfer, the sending side (see xfer-send.h).
 *
 * Runs in the child the udp file listener forks for a REQUEST whose cookie
 * proved the client's address.  The child owns one UDP socket, connected to
 * the client, and never touches the listener's.  It trusts nothing the
 * client sends: datagrams from any other address are dropped (one may land
 * here between bind() and connect(), when the socket is briefly an unconnected
 * member of the listener's SO_REUSEPORT group), every datagram goes through
 * the decoder, every ACK through the sender's scoreboard (common/xfer.c),
 * which refuses one that acknowledges blocks never sent.  The request
 * itself is checked exactly as over TCP (svc-file.c).
 *
 * The data path is built for speed without per-block allocation or
 * syscalls: a batch of blocks is chosen from the scoreboard, read with one
 * preadv() per run of consecutive blocks straight into datagram buffers (the
 * 16-byte header in front of each), and sent with one sendmmsg() for up to
 * SEND_BATCH datagrams, or, for small blocks, as UDP GSO super-datagrams of
 * up to GSO_SEGMENTS_MAX blocks each (the kernel cuts them).  ACKs are
 * drained with recvmmsg() between batches.  A full socket buffer is waited
 * out with poll(POLLOUT), never spun on. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "dgram.h"
#include "log.h"
#include "proto.h"
#include "svc-file.h"
#include "util.h"
#include "xfer-send.h"
#include "xfer.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103             /* linux/udp.h, since Linux 4.18 */
#endif

#define SEND_BATCH 64u              /* datagrams (or GSO super-datagrams) per sendmmsg */
#define RECV_BATCH 64u              /* datagrams per recvmmsg */
#define RECV_SLOT (NL_XFER_REQUEST_MAX + 1u)  /* the largest datagram a client sends, + 1: never cut */
#define ARENA_BYTES (4u * 1024u * 1024u)      /* datagram buffers of one batch */
#define SLOTS_MAX 512u              /* blocks per batch */
#define GSO_BLOCK_LIMIT 8192u       /* blocks below this go out as GSO super-datagrams */
#define GSO_SEGMENTS_MAX 64u        /* Linux's UDP_MAX_SEGMENTS in older kernels */
#define GSO_BYTES_MAX 65507u        /* one super-datagram is one IPv4 UDP payload at most */
#define SOCKET_SNDBUF (4 * 1024 * 1024)
#define SOCKET_RCVBUF (1024 * 1024)
#define END_TRIES 5u                /* END transmissions before giving up on DONE */
#define BAD_ACKS_MAX 100u           /* ACKs the scoreboard refused before we give up on the peer */
#define PUMP_BATCHES 4u             /* batches sent between two looks at the ACKs */
#define QUEUE_RETRY_USEC 1000u      /* after ENOBUFS, the next try */

enum phase {
        PHASE_ACCEPT,               /* ACCEPT sent, waiting for the first ACK */
        PHASE_DATA,
        PHASE_END,                  /* END sent, waiting for DONE */
};

/* Why the transfer stopped before its orderly end. */
enum stop {
        STOP_NONE,
        STOP_DONE,                  /* DONE arrived */
        STOP_CANCELLED,             /* the client sent ERROR */
        STOP_SUPERSEDED,            /* a REQUEST with another client_id from the same port */
        STOP_BAD_PEER,              /* too many ACKs the scoreboard refused */
};

struct xs {
        struct dgram_child *child;
        const struct xfer_send_request *rq;
        struct file_session s;
        struct conn peer_text;      /* remote_addr/remote_port, for the log */
        int sock;
        bool shared_port;
        bool v4;                    /* IPv4 on the wire (v4-mapped included) */
        int fd;                     /* the file */
        struct file_request freq;
        struct file_info info;

        uint32_t client_id, transfer_id;
        uint32_t block_size, window, n_blocks;
        struct xfer_sender snd;
        bool snd_ready;
        enum phase phase;
        enum stop stop;
        char cancel_text[NL_ERROR_TEXT_MAX * 4 + 8]; /* the client's ERROR text, escaped */
        unsigned cancel_status;

        /* Outgoing: slots [pending, built) of the arena are built, not sent. */
        uint8_t *arena;
        size_t stride;              /* NL_XFER_DATA_HEADER + block_size */
        unsigned n_slots;
        uint32_t *slot_seq;
        uint32_t *slot_len;         /* datagram bytes */
        struct iovec *read_iov;
        unsigned built, pending;
        bool gso;
        unsigned gso_segments;      /* per super-datagram */
        uint64_t n_datagrams;       /* DATA datagrams that left */
        uint64_t n_gso_fallbacks;

        /* Incoming. */
        uint8_t *rx;
        struct mmsghdr rx_msg[RECV_BATCH];
        struct iovec rx_iov[RECV_BATCH];
        struct sockaddr_storage rx_from[RECV_BATCH];

        uint64_t last_heard_usec;   /* last valid datagram from the client */
        uint64_t idle_usec;
        uint64_t n_ignored;         /* datagrams that were not for us, or malformed */
        uint64_t n_bad_acks;
        bool end_unconfirmed;       /* END went out END_TRIES times, no DONE */
};

static volatile sig_atomic_t terminate;

static void on_sigterm(int sig)
{
        terminate = 1;
}

/* ---- sockets ---- */

static bool same_peer(const struct sockaddr_storage *a, socklen_t a_len, const struct sockaddr_storage *b,
                      socklen_t b_len)
{
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET) {
                const struct sockaddr_in *x = (const struct sockaddr_in *) a, *y = (const struct sockaddr_in *) b;
                return a_len >= sizeof *x && b_len >= sizeof *y && x->sin_port == y->sin_port &&
                       x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->ss_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const struct sockaddr_in6 *) a, *y = (const struct sockaddr_in6 *) b;
                return a_len >= sizeof *x && b_len >= sizeof *y && x->sin6_port == y->sin6_port &&
                       IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr);
        }
        return false;
}

/* The transfer's socket: the listener's address and port shared through
 * SO_REUSEPORT if the kernel lets us (same owner uid as the listener's
 * socket), else an ephemeral port on the same address; connected to the
 * client either way.  Return: the fd with *ret_shared; negative errno. */
static int open_socket(const struct listener_config *lc, const struct sockaddr *peer, socklen_t peer_len,
                       bool *ret_shared)
{
        static const int one = 1, zero = 0;

        for (int attempt = 0; attempt < 2; attempt++) {
                bool shared = attempt == 0;
                struct sockaddr_storage a;
                _cleanup_close_ int fd = -1;

                fd = socket(lc->sockaddr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return -errno;
                /* Like the listener: "::" serves IPv4 too, and a v4-mapped
                 * client must be reachable from here. */
                if (lc->sockaddr.ss_family == AF_INET6 &&
                    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
                        return -errno;
                if (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
                        continue;

                memcpy(&a, &lc->sockaddr, lc->sockaddr_len);
                if (!shared && a.ss_family == AF_INET)
                        ((struct sockaddr_in *) &a)->sin_port = 0;
                else if (!shared)
                        ((struct sockaddr_in6 *) &a)->sin6_port = 0;
                if (bind(fd, (const struct sockaddr *) &a, lc->sockaddr_len) < 0) {
                        /* EADDRINUSE: the listener's socket has another owner
                         * (systemd made it as root) or no SO_REUSEPORT. */
                        if (shared && (errno == EADDRINUSE || errno == EACCES || errno == EPERM))
                                continue;
                        return -errno;
                }
                if (connect(fd, peer, peer_len) < 0)
                        return -errno;
                *ret_shared = shared;
                return TAKE_FD(fd);
        }
        return -EADDRINUSE;
}

/* Buffers as large as the kernel allows us: a window of blocks is in the
 * socket buffer at once on a fast path.  Failures only cost speed. */
static void size_buffers(int sock)
{
        static const int snd = SOCKET_SNDBUF, rcv = SOCKET_RCVBUF;

        if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0)
                (void) setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
        if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
                (void) setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
}

/* The largest block the path takes without IP fragmentation: IP_MTU of the
 * connected socket minus the IP header, UDP header and DATA header
 * (docs/PROTOCOL.md 11).  Return: the bound, at least NL_XFER_BLOCK_MIN. */
static uint32_t path_block_bound(int sock, int family, bool v4)
{
        int mtu = 0;
        socklen_t len = sizeof mtu;
        int r = family == AF_INET6 ? getsockopt(sock, IPPROTO_IPV6, IPV6_MTU, &mtu, &len)
                                   : getsockopt(sock, IPPROTO_IP, IP_MTU, &mtu, &len);
        uint32_t overhead = (v4 ? 20u : 40u) + 8u + NL_XFER_DATA_HEADER;

        if (r < 0 || mtu <= 0)
                return NL_XFER_BLOCK_SAFE;
        if ((uint32_t) mtu <= overhead + NL_XFER_BLOCK_MIN)
                return NL_XFER_BLOCK_MIN;
        return (uint32_t) mtu - overhead;
}

/* ---- small datagrams: ACCEPT, END, ERROR ---- */

/* Send one encoded packet.  A full buffer or a vanished client loses it
 * like the network could: the retransmission timer covers it.
 * Return: 0; -ECONNREFUSED if the client's port is closed; negative errno. */
static int send_packet(struct xs *x, const struct xfer_packet *p)
{
        uint8_t buf[NL_XFER_ACCEPT_SIZE + NL_ERROR_TEXT_MAX + 64];
        int n = xfer_packet_encode(buf, sizeof buf, p);

        if (n < 0)
                return n;
        if (send(x->sock, buf, (size_t) n, MSG_DONTWAIT) < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EINTR)
                        return 0;
                return -errno;
        }
        return 0;
}

/* The refusal recorded in x->s, as an ERROR: best effort. */
static void send_error(struct xs *x)
{
        struct xfer_packet p = {
                .type = NL_XFER_ERROR, .client_id = x->client_id, .transfer_id = x->transfer_id,
                .status = (uint8_t) x->s.status, .body = (const uint8_t *) x->s.text,
                .body_len = strlen(x->s.text),
        };

        if (p.status == NL_STATUS_OK)
                p.status = NL_STATUS_INTERNAL;
        (void) send_packet(x, &p);
}

static void accept_packet(const struct xs *x, struct xfer_packet *ret)
{
        *ret = (struct xfer_packet) {
                .type = NL_XFER_ACCEPT, .client_id = x->client_id, .transfer_id = x->transfer_id,
                .block_size = (uint16_t) x->block_size, .window = x->window, .info = x->info,
        };
}

static int send_accept(struct xs *x, uint64_t now)
{
        struct xfer_packet p;

        accept_packet(x, &p);
        p.timestamp = xfer_timestamp(now);
        return send_packet(x, &p);
}

/* ---- the client's datagrams ---- */

static void set_cancelled(struct xs *x, const struct xfer_packet *p)
{
        x->stop = STOP_CANCELLED;
        x->cancel_status = p->status;
        text_escape(x->cancel_text, sizeof x->cancel_text, p->body, p->body_len);
}

static void handle(struct xs *x, const uint8_t *buf, size_t n, uint64_t now)
{
        struct xfer_packet p;

        if (xfer_packet_decode(buf, n, &p) < 0) {
                x->n_ignored++;
                return;
        }
        switch (p.type) {
        case NL_XFER_ACK: {
                if (p.transfer_id != x->transfer_id || !x->snd_ready) {
                        x->n_ignored++;
                        return;
                }
                uint64_t rtt = 0;
                if (!xfer_rtt_from_echo(now, p.echo, &rtt))
                        rtt = 0;
                else if (rtt == 0)
                        rtt = 1; /* 0 means "no sample" to the scoreboard */
                if (xfer_sender_on_ack(&x->snd, &p, rtt, now) < 0) {
                        if (++x->n_bad_acks >= BAD_ACKS_MAX)
                                x->stop = STOP_BAD_PEER;
                        return;
                }
                x->last_heard_usec = now;
                if (x->phase == PHASE_ACCEPT) {
                        /* The first ACK answers ACCEPT (its echo names the
                         * ACCEPT transmission, so a resent one measures
                         * right): the first RTT sample, which the
                         * scoreboard takes only from ACKs that deliver. */
                        if (rtt > 0)
                                xfer_rtt_sample(&x->snd.rtt, rtt);
                        x->phase = PHASE_DATA;
                }
                return;
        }
        case NL_XFER_DONE:
                if (p.transfer_id != x->transfer_id) {
                        x->n_ignored++;
                        return;
                }
                x->last_heard_usec = now;
                if (x->phase == PHASE_END)
                        x->stop = STOP_DONE;
                return;
        case NL_XFER_ERROR:
                if (p.transfer_id == x->transfer_id || (p.transfer_id == 0 && p.client_id == x->client_id)) {
                        set_cancelled(x, &p);
                        return;
                }
                x->n_ignored++;
                return;
        case NL_XFER_REQUEST:
                if (p.client_id != x->client_id) {
                        /* The client restarted on the same port: this
                         * transfer has nobody left to serve. */
                        x->stop = STOP_SUPERSEDED;
                        return;
                }
                x->last_heard_usec = now;
                if (x->phase == PHASE_ACCEPT)
                        (void) send_accept(x, now); /* our ACCEPT was lost: again, now */
                return;
        default:
                x->n_ignored++;
                return;
        }
}

/* Apply everything queued on the socket, a bounded number of batches.
 * Return: 0; -ECONNREFUSED (the client's port is closed); negative errno. */
static int drain(struct xs *x)
{
        for (unsigned round = 0; round < 16 && x->stop == STOP_NONE; round++) {
                for (unsigned i = 0; i < RECV_BATCH; i++) {
                        x->rx_msg[i].msg_hdr.msg_namelen = sizeof x->rx_from[i];
                        x->rx_msg[i].msg_hdr.msg_flags = 0;
                }
                int n = recvmmsg(x->sock, x->rx_msg, RECV_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR)
                                return 0; /* the caller looks at `terminate` */
                        return -errno;
                }

                uint64_t now = now_usec();
                for (unsigned i = 0; i < (unsigned) n && x->stop == STOP_NONE; i++) {
                        size_t len = x->rx_msg[i].msg_len;

                        x->child->bytes_in += len;
                        if ((x->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) ||
                            !same_peer(&x->rx_from[i], x->rx_msg[i].msg_hdr.msg_namelen, &x->rq->peer,
                                       x->rq->peer_len)) {
                                x->n_ignored++;
                                continue;
                        }
                        handle(x, x->rx_iov[i].iov_base, len, now);
                }
                if ((unsigned) n < RECV_BATCH)
                        return 0;
        }
        return 0;
}

/* Wait until the socket is readable (or writable too, if want_out) or
 * until deadline (CLOCK_MONOTONIC usec; UINT64_MAX: none).
 * Return: 0 (something happened, or the time came); -EINTR on a signal;
 * negative errno. */
static int wait_socket(struct xs *x, bool want_out, uint64_t deadline)
{
        struct pollfd pfd = { .fd = x->sock, .events = POLLIN | (want_out ? POLLOUT : 0) };
        uint64_t now = now_usec();
        struct timespec ts, *tsp = NULL;

        if (deadline != UINT64_MAX) {
                uint64_t w = deadline > now ? deadline - now : 0;
                ts = (struct timespec) { .tv_sec = (time_t) (w / 1000000u), .tv_nsec = (long) (w % 1000000u) * 1000 };
                tsp = &ts;
        }
        if (ppoll(&pfd, 1, tsp, NULL) < 0)
                return -errno;
        return 0;
}

/* ---- the data ---- */

static uint32_t block_len(const struct xs *x, uint32_t seq)
{
        uint64_t start = (uint64_t) seq * x->block_size;
        uint64_t left = x->info.length - start;

        return left < x->block_size ? (uint32_t) left : x->block_size;
}

static uint8_t *slot(const struct xs *x, unsigned k)
{
        return x->arena + (size_t) k * x->stride;
}

/* Read the payloads of slots [i, j), consecutive blocks of the file, with
 * one preadv() (more only if the kernel returns less).
 * Return: 0; -ENODATA if the file ended early (it shrank); negative errno. */
static int read_run(struct xs *x, unsigned i, unsigned j)
{
        uint64_t offset = x->info.offset + (uint64_t) x->slot_seq[i] * x->block_size;
        unsigned n_iov = j - i;
        struct iovec *iov = x->read_iov;

        for (unsigned k = 0; k < n_iov; k++)
                iov[k] = (struct iovec) {
                        .iov_base = slot(x, i + k) + NL_XFER_DATA_HEADER,
                        .iov_len = block_len(x, x->slot_seq[i + k]),
                };
        while (n_iov > 0) {
                ssize_t got = preadv(x->fd, iov, (int) n_iov, (off_t) offset);
                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (got == 0)
                        return -ENODATA;
                offset += (uint64_t) got;
                while (n_iov > 0 && (size_t) got >= iov->iov_len) {
                        got -= (ssize_t) iov->iov_len;
                        iov++;
                        n_iov--;
                }
                if (n_iov > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + got;
                        iov->iov_len -= (size_t) got;
                }
        }
        return 0;
}

/* Choose the next batch from the scoreboard and build its datagrams.
 * Return: the number of datagrams built (0: nothing may be sent now);
 * -ENODATA (the file shrank); negative errno. */
static int build(struct xs *x, uint64_t now)
{
        uint32_t ts = xfer_timestamp(now);
        unsigned n = 0;
        uint32_t seq;

        while (n < x->n_slots && xfer_sender_next(&x->snd, &seq)) {
                x->slot_seq[n] = seq;
                x->slot_len[n] = NL_XFER_DATA_HEADER + block_len(x, seq);
                xfer_sender_sent(&x->snd, seq, now);
                xfer_data_header_put(slot(x, n), x->transfer_id, seq, ts);
                n++;
        }
        for (unsigned i = 0; i < n;) {
                unsigned j = i + 1;
                while (j < n && x->slot_seq[j] == x->slot_seq[j - 1] + 1)
                        j++;
                int r = read_run(x, i, j);
                if (r < 0)
                        return r;
                i = j;
        }
        x->pending = 0;
        x->built = n;
        return (int) n;
}

enum blocked {
        NOT_BLOCKED,
        BLOCKED_BUFFER,             /* the socket buffer is full: POLLOUT says when it has room */
        BLOCKED_QUEUE,              /* ENOBUFS: a queue below the socket is full; POLLOUT would not wait */
};

/* Send the built datagrams not sent yet.  *ret_blocked: why the rest has
 * to wait.  Return: 0; -ECONNREFUSED; negative errno. */
static int flush(struct xs *x, enum blocked *ret_blocked)
{
        struct mmsghdr msg[SEND_BATCH];
        struct iovec iov[SEND_BATCH];
        union {
                char buf[CMSG_SPACE(sizeof(uint16_t))];
                struct cmsghdr align;
        } control[SEND_BATCH];
        unsigned covers[SEND_BATCH];

        *ret_blocked = NOT_BLOCKED;
        while (x->pending < x->built) {
                unsigned nm = 0;

                for (unsigned k = x->pending; k < x->built && nm < SEND_BATCH; nm++) {
                        unsigned e = k + 1;
                        size_t bytes = x->slot_len[k];

                        /* A super-datagram: back-to-back slots, each a full
                         * block but the last (the file's short tail block). */
                        while (x->gso && e < x->built && e - k < x->gso_segments &&
                               x->slot_len[e - 1] == x->stride) {
                                bytes += x->slot_len[e];
                                e++;
                        }
                        iov[nm] = (struct iovec) { .iov_base = slot(x, k), .iov_len = bytes };
                        msg[nm] = (struct mmsghdr) {
                                .msg_hdr = { .msg_iov = &iov[nm], .msg_iovlen = 1 },
                        };
                        if (e - k > 1) {
                                msg[nm].msg_hdr.msg_control = control[nm].buf;
                                msg[nm].msg_hdr.msg_controllen = sizeof control[nm].buf;
                                struct cmsghdr *cm = CMSG_FIRSTHDR(&msg[nm].msg_hdr);
                                cm->cmsg_level = SOL_UDP;
                                cm->cmsg_type = UDP_SEGMENT;
                                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                                uint16_t segment = (uint16_t) x->stride;
                                memcpy(CMSG_DATA(cm), &segment, sizeof segment);
                        }
                        covers[nm] = e - k;
                        k = e;
                }

                int sent = sendmmsg(x->sock, msg, nm, MSG_DONTWAIT);
                if (sent < 0) {
                        if (errno == EINTR)
                                return 0;
                        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                                *ret_blocked = errno == ENOBUFS ? BLOCKED_QUEUE : BLOCKED_BUFFER;
                                return 0;
                        }
                        if (x->gso && (errno == EIO || errno == EINVAL)) {
                                /* No segmentation offload on this path (EIO:
                                 * no checksum offload): one datagram per
                                 * message from now on. */
                                x->gso = false;
                                x->n_gso_fallbacks++;
                                continue;
                        }
                        return -errno;
                }
                for (unsigned m = 0; m < (unsigned) sent; m++) {
                        for (unsigned k = x->pending; k < x->pending + covers[m]; k++)
                                x->child->bytes_out += x->slot_len[k] - NL_XFER_DATA_HEADER;
                        x->pending += covers[m];
                        x->n_datagrams += covers[m];
                }
        }
        return 0;
}

/* Send what the scoreboard allows, a few batches.  Return: 0; -ENODATA;
 * -ECONNREFUSED; negative errno.  *ret_blocked as for flush(). */
static int pump(struct xs *x, enum blocked *ret_blocked)
{
        *ret_blocked = NOT_BLOCKED;
        for (unsigned b = 0; b < PUMP_BATCHES; b++) {
                if (x->pending >= x->built) {
                        int r = build(x, now_usec());
                        if (r <= 0)
                                return r;
                }
                int r = flush(x, ret_blocked);
                if (r < 0 || *ret_blocked != NOT_BLOCKED)
                        return r;
        }
        return 0;
}

/* ---- the transfer ---- */

static void detail_append(struct xs *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail_append(struct xs *x, const char *fmt, ...)
{
        char more[256], old[sizeof x->s.detail];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(more, sizeof more, fmt, ap);
        va_end(ap);
        if (x->s.entry.detail && x->s.detail[0]) {
                (void) xsnprintf(old, sizeof old, "%s", x->s.detail);
                (void) xsnprintf(x->s.detail, sizeof x->s.detail, "%s; %s", old, more);
        } else
                (void) xsnprintf(x->s.detail, sizeof x->s.detail, "%s", more);
        x->s.entry.detail = x->s.detail;
}

/* What the log says about the transfer's mechanics. */
static void detail_stats(struct xs *x)
{
        if (!x->snd_ready) {
                detail_append(x, "%s port", x->shared_port ? "shared" : "own");
                return;
        }
        uint64_t srtt = x->snd.rtt.has_sample ? x->snd.rtt.srtt_usec : 0;
        detail_append(x, "block %u, window %u, %llu of %u blocks retransmitted, %llu timeouts, "
                      "%llu probes, %llu congestion cuts, %llu random losses, srtt %llu.%03llu ms, "
                      "%s port%s%s",
                      x->block_size, x->window, (unsigned long long) x->snd.n_retransmitted, x->n_blocks,
                      (unsigned long long) x->snd.cc.n_timeouts, (unsigned long long) x->snd.n_probes,
                      (unsigned long long) x->snd.cc.n_loss_events,
                      (unsigned long long) x->snd.cc.n_random_losses,
                      (unsigned long long) (srtt / 1000u), (unsigned long long) (srtt % 1000u),
                      x->shared_port ? "shared" : "own", x->gso ? ", gso" : "",
                      x->n_gso_fallbacks ? ", gso refused by the kernel" : "");
        if (x->n_ignored > 0)
                detail_append(x, "%llu datagrams ignored", (unsigned long long) x->n_ignored);
}

/* ECONNREFUSED (an ICMP port unreachable) is reported before datagrams
 * already queued: the client's last words (ERROR, DONE) may still wait
 * there.  Read them before concluding anything. */
static void drain_after_refused(struct xs *x)
{
        for (unsigned i = 0; i < 4 && x->stop == STOP_NONE; i++)
                if (drain(x) != -ECONNREFUSED)
                        return;
}

/* The client vanished, cancelled, went silent, or restarted: record why. */
static bool stopped_early(struct xs *x, int r)
{
        if (r == -ECONNREFUSED)
                drain_after_refused(x);

        if (x->stop == STOP_CANCELLED) {
                file_session_result(&x->s, "cancelled", LOG_NOTICE, "the client gave up (%s): \"%s\"",
                                    nl_status_name(x->cancel_status), x->cancel_text);
                return true;
        }
        if (x->stop == STOP_SUPERSEDED) {
                file_session_result(&x->s, "superseded", LOG_NOTICE,
                                    "a new request came from the client's port");
                return true;
        }
        if (x->stop == STOP_BAD_PEER) {
                file_session_refuse(&x->s, NL_STATUS_BAD_REQUEST,
                                    "too many acknowledgements of blocks never sent");
                send_error(x);
                return true;
        }
        if (r == -ECONNREFUSED) {
                file_session_result(&x->s, "client-gone", LOG_NOTICE, "the client's port is closed");
                return true;
        }
        if (terminate) {
                file_session_refuse(&x->s, NL_STATUS_BUSY, "server busy: shutting down");
                file_session_result(&x->s, "shutdown", LOG_NOTICE, "the server is shutting down");
                send_error(x);
                return true;
        }
        if (r == -ETIMEDOUT) {
                file_session_refuse(&x->s, NL_STATUS_TIMEOUT, "no acknowledgement from the client for %llu s",
                                    (unsigned long long) (x->idle_usec / 1000000u));
                file_session_result(&x->s, "timeout", LOG_NOTICE, NULL);
                send_error(x);
                return true;
        }
        if (r < 0) {
                file_session_result(&x->s, "send-failed", LOG_NOTICE, "%s", strerror(-r));
                return true;
        }
        return false;
}

/* Send p on the retransmission timer (RFC 6298, with backoff) while the
 * transfer stays in `phase` and nothing stopped it: until the first ACK
 * (ACCEPT), until DONE (END).  stamp: put the send time in p->timestamp
 * each time (ACCEPT: its echo gives the first RTT sample).  probe: the
 * second transmission comes after the tail loss probe's timeout (2 SRTT +
 * XFER_PTO_ACK_DELAY_USEC) rather than the RTO, when there is an RTT
 * sample: END is the tail of the transfer, and the client answers it at
 * once.
 * Return: 0 once the phase moved on or the transfer stopped; 1 when
 * max_tries transmissions (0: no limit) went unanswered; -ETIMEDOUT after
 * the idle timeout; -ECONNREFUSED; negative errno. */
static int retransmit(struct xs *x, struct xfer_packet *p, bool stamp, bool probe, unsigned max_tries,
                      enum phase phase)
{
        uint64_t next = 0;
        unsigned tries = 0;
        bool use_probe = probe && x->snd.rtt.has_sample;

        while (x->phase == phase && x->stop == STOP_NONE && !terminate) {
                uint64_t now = now_usec();
                uint64_t idle_end = x->last_heard_usec + x->idle_usec;

                if (now >= idle_end)
                        return -ETIMEDOUT;
                if (now >= next) {
                        if (max_tries > 0 && tries >= max_tries)
                                return 1;
                        if (stamp)
                                p->timestamp = xfer_timestamp(now);
                        int r = send_packet(x, p);
                        if (r < 0)
                                return r;
                        tries++;
                        if (use_probe && tries == 1)
                                next = now + 2 * x->snd.rtt.srtt_usec + XFER_PTO_ACK_DELAY_USEC;
                        else {
                                /* RFC 6298 5.5: doubling from the second
                                 * timeout on (the probe's does not count). */
                                if (tries > (use_probe ? 2u : 1u))
                                        xfer_rtt_backoff(&x->snd.rtt);
                                next = now + xfer_rtt_timeout(&x->snd.rtt);
                        }
                }
                int r = wait_socket(x, false, next < idle_end ? next : idle_end);
                if (r < 0 && r != -EINTR)
                        return r;
                r = drain(x);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Until the first ACK: ACCEPT.  Return: 0 once in the data phase (or
 * stopped); -ETIMEDOUT; negative errno. */
static int run_accept(struct xs *x)
{
        struct xfer_packet accept;

        accept_packet(x, &accept);
        return retransmit(x, &accept, true, false, 0, PHASE_ACCEPT);
}

static int run_data(struct xs *x)
{
        while (x->stop == STOP_NONE && !terminate) {
                int r = drain(x);
                if (r < 0)
                        return r;
                if (x->stop != STOP_NONE)
                        return 0;
                if (xfer_sender_complete(&x->snd))
                        return 0;

                uint64_t now = now_usec();
                uint64_t idle_end = x->last_heard_usec + x->idle_usec;
                if (now >= idle_end)
                        return -ETIMEDOUT;
                if (now >= xfer_sender_deadline(&x->snd))
                        xfer_sender_on_timer(&x->snd, now);

                enum blocked blocked;
                uint64_t before = x->n_datagrams;
                r = pump(x, &blocked);
                if (r < 0)
                        return r;
                if (x->n_datagrams != before && blocked == NOT_BLOCKED)
                        continue; /* look at the ACKs, then send more */

                /* Nothing may go now (window full, or the socket buffer):
                 * sleep until an ACK, room in the buffer, or the timer.  A
                 * full device queue (ENOBUFS) gives no wakeup: try again
                 * in a millisecond. */
                uint64_t deadline = xfer_sender_deadline(&x->snd);
                if (deadline > idle_end)
                        deadline = idle_end;
                if (blocked == BLOCKED_QUEUE && deadline > now + QUEUE_RETRY_USEC)
                        deadline = now + QUEUE_RETRY_USEC;
                r = wait_socket(x, blocked == BLOCKED_BUFFER, deadline);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* After the data: check the file again (unless it already failed: the
 * refusal recorded in x->s), END, wait for DONE.  Return: 0; -ECONNREFUSED;
 * negative errno. */
static int run_end(struct xs *x, bool verify)
{
        uint8_t digest[NL_DIGEST_SIZE], body[1 + NL_DIGEST_SIZE];
        struct xfer_packet end = { .type = NL_XFER_END, .transfer_id = x->transfer_id };

        int r = verify ? file_get_verify(&x->s, x->fd, &x->freq, &x->info, x->child->bytes_out, digest)
                       : -ESTALE;
        if (r < 0) {
                end.status = (uint8_t) x->s.status;
                end.body = (const uint8_t *) x->s.text;
                end.body_len = strlen(x->s.text);
        } else {
                int n = file_end_encode(body, sizeof body, (x->freq.flags & FILE_GET_DIGEST) ? digest : NULL);
                if (n < 0)
                        return n;
                end.status = NL_STATUS_OK;
                end.body = body;
                end.body_len = (size_t) n;
                file_session_result(&x->s, "ok", LOG_INFO, NULL);
        }

        x->phase = PHASE_END;
        r = retransmit(x, &end, false, true, END_TRIES, PHASE_END);
        if (r == -ECONNREFUSED)
                drain_after_refused(x);
        if (x->stop == STOP_DONE)
                return 0;
        if (r == 1 || r == -ETIMEDOUT || r == -ECONNREFUSED) {
                /* Every block was delivered: the client has the file, and
                 * may well have closed its port already. */
                x->end_unconfirmed = true;
                return 0;
        }
        return r;
}

static int setup_data(struct xs *x)
{
        x->stride = NL_XFER_DATA_HEADER + x->block_size;
        x->n_slots = (unsigned) (ARENA_BYTES / x->stride);
        if (x->n_slots > SLOTS_MAX)
                x->n_slots = SLOTS_MAX;
        if (x->n_slots > x->window)
                x->n_slots = x->window;
        if (x->n_slots < 1)
                x->n_slots = 1;
        x->gso_segments = (unsigned) (GSO_BYTES_MAX / x->stride);
        if (x->gso_segments > GSO_SEGMENTS_MAX)
                x->gso_segments = GSO_SEGMENTS_MAX;
        x->gso = x->block_size < GSO_BLOCK_LIMIT && x->gso_segments >= 2;

        x->arena = malloc((size_t) x->n_slots * x->stride);
        x->slot_seq = calloc(x->n_slots, sizeof *x->slot_seq);
        x->slot_len = calloc(x->n_slots, sizeof *x->slot_len);
        x->read_iov = calloc(x->n_slots, sizeof *x->read_iov);
        x->rx = malloc((size_t) RECV_BATCH * RECV_SLOT);
        if (!x->arena || !x->slot_seq || !x->slot_len || !x->read_iov || !x->rx)
                return -ENOMEM;
        for (unsigned i = 0; i < RECV_BATCH; i++) {
                x->rx_iov[i] = (struct iovec) { .iov_base = x->rx + (size_t) i * RECV_SLOT, .iov_len = RECV_SLOT };
                x->rx_msg[i].msg_hdr = (struct msghdr) {
                        .msg_name = &x->rx_from[i], .msg_namelen = sizeof x->rx_from[i],
                        .msg_iov = &x->rx_iov[i], .msg_iovlen = 1,
                };
        }
        return 0;
}

static void xs_done(struct xs *x)
{
        if (x->snd_ready)
                xfer_sender_done(&x->snd);
        free(x->arena);
        free(x->slot_seq);
        free(x->slot_len);
        free(x->read_iov);
        free(x->rx);
        x->sock = safe_close(x->sock);
        x->fd = safe_close(x->fd);
}

/* Check the request and open the file.  Return: 0; negative errno with a
 * refusal recorded in x->s (already sent if the socket exists). */
static int prepare(struct xs *x)
{
        const struct xfer_packet *p = &x->rq->req;
        int r = file_request_decode(NL_TYPE_FILE_GET, p->body, p->body_len, &x->freq);

        if (r < 0) {
                file_session_refuse(&x->s, nl_status_from_errno(r), "%s",
                                    x->freq.problem ? x->freq.problem : "bad request");
                return r;
        }
        r = file_session_check_path(&x->s, &x->freq);
        if (r < 0)
                return r;
        r = file_get_prepare(&x->s, &x->freq, &x->info);
        if (r < 0)
                return r;
        x->fd = r;

        uint32_t bound = path_block_bound(x->sock, x->child->listener->sockaddr.ss_family, x->v4);
        uint32_t bs = p->block_size;
        if ((int64_t) bs > x->rq->o->block_size_max)
                bs = (uint32_t) x->rq->o->block_size_max;
        if (bs > bound)
                bs = bound;
        if (bs < NL_XFER_BLOCK_MIN)
                bs = NL_XFER_BLOCK_MIN;
        x->block_size = bs;
        x->window = p->window < (uint64_t) x->rq->o->window_max ? p->window : (uint32_t) x->rq->o->window_max;

        r = xfer_block_count(x->info.length, x->block_size, &x->n_blocks);
        if (r < 0) {
                file_session_refuse(&x->s, NL_STATUS_TOO_LONG,
                                    "%llu bytes are more blocks of %u bytes than a transfer can count",
                                    (unsigned long long) x->info.length, x->block_size);
                return r;
        }

        do
                if (getrandom(&x->transfer_id, sizeof x->transfer_id, GRND_NONBLOCK) != sizeof x->transfer_id) {
                        if (errno == EINTR)
                                continue;
                        file_session_refuse(&x->s, NL_STATUS_INTERNAL, "no random numbers yet, try again");
                        return -EAGAIN;
                }
        while (x->transfer_id == 0);
        return 0;
}

int xfer_send_run(struct dgram_child *c, void *userdata)
{
        const struct xfer_send_request *rq = userdata;
        const struct listener_config *lc = c->listener;
        struct xs x = {
                .child = c,
                .rq = rq,
                .sock = -1,
                .fd = -1,
                .client_id = rq->req.client_id,
                .idle_usec = (uint64_t) c->limits->idle_timeout * 1000000u,
                .last_heard_usec = c->start_usec,
        };
        int r;

        /* SIGTERM (the supervisor's shutdown after its grace period): tell
         * the client rather than vanish. */
        struct sigaction sa = { .sa_handler = on_sigterm };
        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGTERM, &sa, NULL);

        conn_set_peer(&x.peer_text, (const struct sockaddr *) &rq->peer, rq->peer_len);
        x.s = (struct file_session) {
                .o = rq->o,
                .entry = {
                        .listener = lc->name,
                        .service = "file",
                        .remote_addr = x.peer_text.remote_addr,
                        .remote_port = x.peer_text.remote_port,
                },
        };
        x.v4 = rq->peer.ss_family == AF_INET ||
               (rq->peer.ss_family == AF_INET6 &&
                IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *) &rq->peer)->sin6_addr));

        r = open_socket(lc, (const struct sockaddr *) &rq->peer, rq->peer_len, &x.shared_port);
        if (r < 0) {
                /* Nothing to answer from: the client retries or times out. */
                file_session_result(&x.s, "internal-error", LOG_ERR, "cannot open the transfer's socket: %s",
                                    strerror(-r));
                goto finish;
        }
        x.sock = r;
        size_buffers(x.sock);

        r = prepare(&x);
        if (r < 0) {
                send_error(&x);
                goto finish;
        }

        r = setup_data(&x);
        if (r >= 0)
                r = xfer_sender_init(&x.snd, x.n_blocks, x.window, now_usec());
        if (r < 0) {
                file_session_refuse(&x.s, NL_STATUS_INTERNAL, "out of memory");
                file_session_result(&x.s, "internal-error", LOG_ERR, "setting up the transfer: %s", strerror(-r));
                send_error(&x);
                goto finish;
        }
        x.snd_ready = true;

        r = run_accept(&x);
        if (r >= 0 && x.stop == STOP_NONE && !terminate)
                r = run_data(&x);
        if (r == -ENODATA) {
                /* The file shrank: the client counts on `length` bytes, so
                 * it hears why they will not come, in an END like any
                 * other change. */
                file_session_shrank(&x.s, c->bytes_out, x.info.length);
                r = run_end(&x, false);
        } else if (stopped_early(&x, r))
                goto stats;
        else
                r = run_end(&x, true);
        if (stopped_early(&x, r))
                goto stats;
        if (x.end_unconfirmed)
                detail_append(&x, "no DONE from the client");
stats:
        detail_stats(&x);
finish:
        x.s.entry.bytes_in = c->bytes_in;
        x.s.entry.bytes_out = c->bytes_out;
        x.s.entry.duration_usec = now_usec() - c->start_usec;
        if (!x.s.entry.result)
                file_session_result(&x.s, "internal-error", LOG_ERR, NULL);
        log_request(&x.s.entry);
        xs_done(&x);
        return r == -ENOMEM ? r : 0;
}
