/* xfer-recv.c: the receiving side of netlab's reliable transfer over UDP
 * (`netlabctl fetch --udp`; docs/PROTOCOL.md, section 11).
 *
 * Handshake on an unconnected socket: REQUEST (padded to 1200 bytes), the
 * listener's RETRY with a cookie, the REQUEST again with the cookie, then
 * ACCEPT from the transfer's own socket, which may be another port of the
 * server's address (the fallback of the design).  The socket is then
 * connect()ed to the ACCEPT's source, so the kernel drops everything else
 * and an ICMP port unreachable (the transfer ended) comes back as
 * ECONNREFUSED.
 *
 * Data: recvmmsg() batches into buffers allocated once; blocks that arrive
 * in order are passed on straight from those buffers (one writev/pwritev for
 * a run of them, no copy), blocks ahead of a gap are copied into a store of
 * `window` slots and passed on when the gap fills.  So the output only ever
 * grows by a contiguous prefix and a partial file resumes exactly as over
 * TCP.  ACKs (cumulative + SACK ranges from xfer.c's receiver window) go out
 * after each batch, at once when a gap opens or fills, and every 16 blocks.
 *
 * The server is not trusted: only datagrams from its address are looked at,
 * each is decoded by proto-xfer.c, every DATA must carry our transfer_id, a
 * seq inside the transfer and the window, and exactly the block's length;
 * anything else from the connected server is a protocol error. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "cli.h"
#include "proto.h"
#include "util.h"
#include "xfer.h"

static_assert(XFER_RECV_TEXT_MAX == NL_ERROR_TEXT_MAX, "report text holds an error text");

#define HANDSHAKE_RTO_USEC (250u * 1000u)   /* first REQUEST resend; doubles */
#define COOKIE_RTO_MIN_USEC (50u * 1000u)   /* REQUEST with the cookie: at least this */
#define HANDSHAKE_RTO_MAX_USEC (4u * 1000u * 1000u)
#define RCVBUF_WANT (16 * 1024 * 1024)      /* SO_RCVBUF(FORCE): a burst of a big window */
#define BATCH_BYTES (4u * 1024u * 1024u)    /* receive buffers for one recvmmsg() */
#define BATCH_MIN 16u
#define BATCH_MAX 256u
#define ACK_EVERY 16u                       /* blocks between ACKs at most */
#define END_REACK_USEC (200u * 1000u)       /* nothing this long: ACK again (doubling) */
#define END_REACK_MAX_USEC (2u * 1000u * 1000u)
#define FIRST_REACK_USEC (50u * 1000u)      /* before the first DATA: the first ACK again */
#define LINGER_MAX_USEC (200u * 1000u)
#define LINGER_DEFAULT_USEC (50u * 1000u)   /* no RTT measured */
#define WAIT_TICK_USEC (250u * 1000u)       /* look at the signal flag at least this often */
/* The largest datagram the server sends on a transfer besides DATA: an ERROR
 * with a full text (END's OK body is 33 bytes, ACCEPT 92). */
#define CONTROL_MAX (13u + NL_ERROR_TEXT_MAX)
#define GRO_BUF 65536u                      /* a whole UDP payload (GRO receives) */
#define CONTROL_SIZE 64u                    /* >= CMSG_SPACE(sizeof(int)) */

struct xfer_recv {
        const struct xfer_recv_params *p;
        struct xfer_recv_report *rep;

        struct addrinfo *addrs;
        const struct addrinfo *cur;        /* the address being asked */
        int fd;                            /* handshake: unconnected; data: connected */
        uint32_t client_id;
        uint8_t cookie[NL_XFER_COOKIE_MAX];
        size_t cookie_len;

        /* From ACCEPT. */
        uint32_t transfer_id;
        uint32_t block_size, window, n_blocks;
        uint64_t length;
        struct xfer_rtt rtt;

        /* Data phase. */
        struct xfer_receiver r;
        bool receiver_ready;
        uint8_t *bufs;                     /* n_bufs receive buffers of buf_size */
        size_t buf_size;
        unsigned n_bufs;
        struct mmsghdr *msgs;
        struct iovec *msg_iov;
        uint8_t *msg_control;              /* n_bufs x CONTROL_SIZE, for UDP_GRO's cmsg */
        uint8_t *slots;                    /* window * block_size, mmap()ed on first use */
        size_t slots_size;
        struct iovec out[IOV_MAX];         /* passed on at the next flush */
        int n_out;
        size_t out_bytes;
        uint32_t out_first;                /* block of out[0] */
        uint32_t rwnd;                     /* what ACKs offer: see rwnd_init() */
        uint32_t echo;                     /* timestamp of the newest DATA */
        uint32_t since_ack;                /* blocks since the last ACK */
        bool ack_owed;

        bool got_end;
        uint64_t end_usec;
        uint8_t tx[NL_XFER_REQUEST_MAX];
};

/* ---- small helpers ---- */

static int set_problem(struct xfer_recv *x, int result, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int set_problem(struct xfer_recv *x, int result, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(x->rep->problem, sizeof x->rep->problem, fmt, ap);
        va_end(ap);
        return result;
}

static void copy_text(struct xfer_recv *x, uint8_t status, const uint8_t *body, size_t n)
{
        if (n > sizeof x->rep->text)
                n = sizeof x->rep->text;
        x->rep->status = status;
        memcpy(x->rep->text, body, n);
        x->rep->text_len = n;
}

static bool interrupted(const struct xfer_recv *x)
{
        return x->p->interrupted && *x->p->interrupted;
}

/* Same IP address as the server's (any port)? */
static bool from_server(const struct xfer_recv *x, const struct sockaddr_storage *ss)
{
        const struct sockaddr *want = x->cur->ai_addr;

        if (ss->ss_family != want->sa_family)
                return false;
        if (ss->ss_family == AF_INET)
                return memcmp(&((const struct sockaddr_in *) ss)->sin_addr,
                              &((const struct sockaddr_in *) want)->sin_addr,
                              sizeof(struct in_addr)) == 0;
        if (ss->ss_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *) ss)->sin6_addr,
                              &((const struct sockaddr_in6 *) want)->sin6_addr,
                              sizeof(struct in6_addr)) == 0;
        return false;
}

/* Wait until fd is readable or until (mono_usec() time), waking at least
 * every WAIT_TICK_USEC so a signal that came just before the wait is seen.
 * Return: 1 readable (or an error to collect); 0 not yet; negative errno. */
static int wait_readable(int fd, uint64_t until)
{
        uint64_t now = mono_usec();

        if (now >= until)
                return 0;
        uint64_t left = until - now;
        if (left > WAIT_TICK_USEC)
                left = WAIT_TICK_USEC;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int) ((left + 999) / 1000));
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r > 0;
}

/* ICMP errors reported through IP_RECVERR also sit in the error queue, which
 * counts against the receive buffer: empty it. */
static void drain_errqueue(int fd)
{
        uint8_t buf[256], control[512];

        for (int i = 0; i < 64; i++) {
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                                     .msg_controllen = sizeof control };
                if (recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
                        return;
        }
}

static void set_recverr(int fd, int family, int on)
{
        if (family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
        else
                (void) setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
}

/* The largest block the path to ai allows: its MTU (IP_MTU of a connected
 * socket: the route's, or what path MTU discovery learnt) less the IP and
 * UDP headers and DATA's own; NL_XFER_BLOCK_SAFE if the MTU is unknown. */
static uint32_t path_block_max(const struct addrinfo *ai)
{
        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int mtu = 0;
        socklen_t len = sizeof mtu;

        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                return NL_XFER_BLOCK_SAFE;
        int r = ai->ai_family == AF_INET6 ? getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &len)
                                          : getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len);
        uint32_t ip = ai->ai_family == AF_INET6 ? 40u : 20u;
        if (r < 0 || mtu <= 0 || (uint32_t) mtu < ip + 8u + NL_XFER_DATA_HEADER + NL_XFER_BLOCK_MIN)
                return NL_XFER_BLOCK_SAFE;
        uint32_t b = (uint32_t) mtu - ip - 8u - NL_XFER_DATA_HEADER;
        return b > NL_XFER_BLOCK_MAX ? NL_XFER_BLOCK_MAX : b;
}

/* A fresh unconnected socket for the family of x->cur.  Return: 0; -errno. */
static int socket_open(struct xfer_recv *x)
{
        int family = x->cur->ai_family;
        int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int want = RCVBUF_WANT;

        if (fd < 0)
                return -errno;
        /* A window of blocks may arrive in one burst; the socket must hold
         * what the next recvmmsg() has not taken yet.  FORCE needs
         * CAP_NET_ADMIN; else the kernel caps at net.core.rmem_max. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
        /* Unconnected, a socket hears of ICMP errors only this way. */
        set_recverr(fd, family, 1);
        x->fd = safe_close(x->fd);
        x->fd = fd;
        if (getnameinfo(x->cur->ai_addr, x->cur->ai_addrlen, x->rep->addr, sizeof x->rep->addr,
                        NULL, 0, NI_NUMERICHOST) != 0)
                (void) xsnprintf(x->rep->addr, sizeof x->rep->addr, "?");
        return 0;
}

/* ---- life cycle ---- */

int xfer_recv_new(const struct xfer_recv_params *p, struct xfer_recv_report *rep,
                  struct xfer_recv **ret)
{
        struct xfer_recv *x = calloc(1, sizeof *x);

        if (!x)
                return -ENOMEM;
        *rep = (struct xfer_recv_report) {};
        x->p = p;
        x->rep = rep;
        x->fd = -1;
        xfer_rtt_init(&x->rtt);
        *ret = x;
        return 0;
}

struct xfer_recv *xfer_recv_free(struct xfer_recv *x)
{
        if (!x)
                return NULL;
        x->fd = safe_close(x->fd);
        if (x->addrs)
                freeaddrinfo(x->addrs);
        if (x->receiver_ready)
                xfer_receiver_done(&x->r);
        if (x->slots)
                (void) munmap(x->slots, x->slots_size);
        free(x->bufs);
        free(x->msgs);
        free(x->msg_iov);
        free(x->msg_control);
        free(x);
        return NULL;
}

/* ---- sending ---- */

/* Send n bytes of x->tx: to the connected peer, or to `to`.  A full send
 * buffer drops the datagram (they are all repeated on a timer).
 * Return: 0; -ECONNREFUSED and other ICMP errors; negative errno. */
static int send_tx(struct xfer_recv *x, size_t n, const struct sockaddr *to, socklen_t to_len)
{
        for (;;) {
                ssize_t k = sendto(x->fd, x->tx, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, to_len);
                if (k >= 0)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                        return 0;
                return -errno;
        }
}

static int send_packet(struct xfer_recv *x, const struct xfer_packet *pk, bool connected)
{
        int n = xfer_packet_encode(x->tx, sizeof x->tx, pk);

        if (n < 0)
                return n;
        if (connected)
                return send_tx(x, (size_t) n, NULL, 0);
        return send_tx(x, (size_t) n, x->cur->ai_addr, x->cur->ai_addrlen);
}

static int send_request(struct xfer_recv *x)
{
        struct xfer_packet pk = {
                .type = NL_XFER_REQUEST,
                .client_id = x->client_id,
                .block_size = (uint16_t) x->rep->block_max,
                .window = x->rep->window_max,
                .cookie = x->cookie,
                .cookie_len = x->cookie_len,
                .body = x->p->get,
                .body_len = x->p->get_len,
        };
        int r = send_packet(x, &pk, false);

        if (r == 0)
                x->rep->n_requests++;
        return r;
}

void xfer_recv_abort(struct xfer_recv *x, uint8_t status, const char *text)
{
        struct xfer_packet pk = {
                .type = NL_XFER_ERROR,
                .client_id = x->client_id,
                .transfer_id = x->transfer_id,
                .status = status,
                .body = (const uint8_t *) text,
                .body_len = strlen(text),
        };

        if (x->fd < 0 || !x->cur || x->client_id == 0)
                return;
        (void) send_packet(x, &pk, x->transfer_id != 0);
}

static int send_ack(struct xfer_recv *x)
{
        struct xfer_packet pk = {
                .type = NL_XFER_ACK,
                .transfer_id = x->transfer_id,
                .cum = x->r.cum,
                .echo = x->echo,
                .rwnd = x->rwnd,
        };

        pk.n_ranges = xfer_receiver_sack(&x->r, pk.ranges, NL_XFER_SACK_MAX);
        x->since_ack = 0;
        x->ack_owed = false;
        x->rep->n_acks++;
        return send_packet(x, &pk, true);
}

static int send_done(struct xfer_recv *x)
{
        struct xfer_packet pk = { .type = NL_XFER_DONE, .transfer_id = x->transfer_id };

        return send_packet(x, &pk, true);
}

/* ---- handshake ---- */

/* Check an ACCEPT against what was asked, then talk only to its sender.
 * Return: XFER_RECV_OK; PROTOCOL; NET. */
static int take_accept(struct xfer_recv *x, const struct xfer_packet *pk,
                       const struct sockaddr_storage *from, socklen_t from_len)
{
        if (pk->block_size > x->rep->block_max)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server chose blocks of %u bytes, more than the %u "
                                   "asked for",
                                   pk->block_size, x->rep->block_max);
        if (pk->window > x->rep->window_max)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server chose a window of %u blocks, more than the %u "
                                   "asked for",
                                   pk->window, x->rep->window_max);
        if (xfer_block_count(pk->info.length, pk->block_size, &x->n_blocks) < 0)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server's %llu bytes in blocks of %u bytes are more than "
                                   "2^32 blocks",
                                   (unsigned long long) pk->info.length, pk->block_size);
        if (connect(x->fd, (const struct sockaddr *) from, from_len) < 0) {
                x->rep->err = errno;
                return XFER_RECV_NET;
        }
        /* Connected, ICMP errors come back as ECONNREFUSED anyway. */
        set_recverr(x->fd, x->cur->ai_family, 0);
        drain_errqueue(x->fd);
        /* What was queued before connect() may come from anyone, and no
         * DATA flows before our first ACK: drop it (bounded). */
        for (int i = 0; i < 1024; i++) {
                uint8_t junk[1];
                if (recv(x->fd, junk, sizeof junk, MSG_DONTWAIT | MSG_TRUNC) < 0 && errno != EINTR)
                        break;
        }

        x->transfer_id = pk->transfer_id;
        x->block_size = pk->block_size;
        x->window = pk->window;
        x->length = pk->info.length;
        x->echo = pk->timestamp;
        x->rep->block_size = pk->block_size;
        x->rep->window = pk->window;
        return XFER_RECV_OK;
}

/* Move on to the next address of the host.  Return: 0; -ENOENT (none left);
 * negative errno. */
static int next_address(struct xfer_recv *x)
{
        for (;;) {
                if (!x->cur->ai_next)
                        return -ENOENT;
                x->cur = x->cur->ai_next;
                if (socket_open(x) == 0)
                        return 0;
        }
}

int xfer_recv_handshake(struct xfer_recv *x, struct file_info *ret_info)
{
        const struct xfer_recv_params *p = x->p;
        uint8_t buf[NL_XFER_ACCEPT_SIZE + CONTROL_MAX];
        char err[512];
        int r;

        r = udp_resolve(p->host, p->port, &x->addrs, err, sizeof err);
        if (r < 0) {
                x->rep->err = EHOSTUNREACH;
                return set_problem(x, XFER_RECV_UNREACHABLE, "%s", err);
        }
        x->cur = x->addrs;
        while ((r = socket_open(x)) < 0) {
                if (!x->cur->ai_next) {
                        x->rep->err = -r;
                        return set_problem(x, XFER_RECV_UNREACHABLE,
                                           "cannot open a UDP socket for %s port %u: %s", p->host,
                                           p->port, strerror(-r));
                }
                x->cur = x->cur->ai_next;
        }
        do {
                if (getrandom(&x->client_id, sizeof x->client_id, 0) != sizeof x->client_id) {
                        x->rep->err = errno;
                        return XFER_RECV_NET;
                }
        } while (x->client_id == 0);

        uint64_t now = mono_usec();
        uint64_t deadline = now + p->timeout_usec;
        uint64_t next_send = now, interval = HANDSHAKE_RTO_USEC, last_send = 0;
        unsigned sends_since_answer = 0, n_foreign = 0;
        bool answered = false, extended = false;
        int last_icmp = 0;

        x->rep->block_max = p->block_max ? p->block_max : path_block_max(x->cur);
        x->rep->window_max = p->window;
        if (x->rep->window_max == 0) {
                uint32_t w = XFER_RECV_MEMORY / x->rep->block_max;
                x->rep->window_max = w > NL_XFER_WINDOW_MAX ? NL_XFER_WINDOW_MAX : w;
        }

        for (;;) {
                if (interrupted(x)) {
                        if (x->rep->n_requests > 0)
                                xfer_recv_abort(x, NL_STATUS_CANCELLED, "cancelled by the client");
                        return XFER_RECV_SIGNAL;
                }
                now = mono_usec();
                if (now >= deadline) {
                        /* The timeout, in the words of the TCP path's
                         * ("no data from the server for N s"). */
                        double secs = (double) p->timeout_usec / 1e6;
                        if (n_foreign > 0)
                                return set_problem(
                                        x, XFER_RECV_TIMEOUT,
                                        "timed out: no netlab transfer answer from %s port %u "
                                        "for %g s, %u requests sent (%u other datagrams came "
                                        "back: is it a UDP file service?)",
                                        p->host, p->port, secs, x->rep->n_requests, n_foreign);
                        return set_problem(x, XFER_RECV_TIMEOUT,
                                           "timed out: no answer from %s port %u for %g s, %u "
                                           "request%s sent",
                                           p->host, p->port, secs, x->rep->n_requests,
                                           x->rep->n_requests == 1 ? "" : "s");
                }
                if (now >= next_send) {
                        r = send_request(x);
                        if (r < 0) {
                                last_icmp = r;
                                goto unreachable;
                        }
                        sends_since_answer++;
                        last_send = now;
                        next_send = now + interval;
                        interval = interval * 2 > HANDSHAKE_RTO_MAX_USEC ? HANDSHAKE_RTO_MAX_USEC
                                                                         : interval * 2;
                }

                r = wait_readable(x->fd, next_send < deadline ? next_send : deadline);
                if (r < 0) {
                        x->rep->err = -r;
                        return XFER_RECV_NET;
                }
                if (r == 0)
                        continue;

                for (;;) {
                        struct sockaddr_storage from;
                        socklen_t from_len = sizeof from;
                        ssize_t k = recvfrom(x->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                                             (struct sockaddr *) &from, &from_len);
                        if (k < 0 && errno == EINTR)
                                break;
                        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                break;
                        if (k < 0) {
                                /* An ICMP error (IP_RECVERR): nothing listens there. */
                                last_icmp = -errno;
                                drain_errqueue(x->fd);
                                goto unreachable;
                        }
                        if (!from_server(x, &from))
                                continue; /* not even from the server: someone else's */

                        struct xfer_packet pk;
                        size_t got = (size_t) k < sizeof buf ? (size_t) k : sizeof buf;
                        r = xfer_packet_decode(buf, got, &pk);
                        if (r == -EPROTONOSUPPORT)
                                return set_problem(x, XFER_RECV_PROTOCOL,
                                                   "the server answered with transfer protocol "
                                                   "version %u; this netlabctl speaks %u",
                                                   buf[2], NL_XFER_VERSION);
                        if (r < 0 || (size_t) k > sizeof buf) {
                                n_foreign++;
                                continue;
                        }

                        switch (pk.type) {
                        case NL_XFER_RETRY:
                                if (pk.client_id != x->client_id)
                                        break;
                                now = mono_usec();
                                /* Karn: only an answer to a request sent once. */
                                if (sends_since_answer == 1 && now > last_send) {
                                        xfer_rtt_sample(&x->rtt, now - last_send);
                                        x->rep->rtt_usec = x->rtt.srtt_usec;
                                }
                                memcpy(x->cookie, pk.cookie, pk.cookie_len);
                                x->cookie_len = pk.cookie_len;
                                answered = true;
                                /* The server lives: give the cookie round the
                                 * whole timeout again, once. */
                                if (!extended) {
                                        extended = true;
                                        deadline = now + p->timeout_usec;
                                }
                                sends_since_answer = 0;
                                /* The RETRY measured the path: a lost
                                 * REQUEST with the cookie (or its ACCEPT)
                                 * shows after about 2 RTT plus the server's
                                 * fork and open (50 ms at least), not after
                                 * 250 ms.  A copy that was not needed costs
                                 * the server a cookie check and an ACCEPT. */
                                interval = HANDSHAKE_RTO_USEC;
                                if (x->rtt.has_sample) {
                                        interval = 2 * x->rtt.srtt_usec;
                                        if (interval < COOKIE_RTO_MIN_USEC)
                                                interval = COOKIE_RTO_MIN_USEC;
                                }
                                next_send = now;
                                break;

                        case NL_XFER_ERROR:
                                if (pk.client_id != x->client_id)
                                        break;
                                copy_text(x, pk.status, pk.body, pk.body_len);
                                return XFER_RECV_REFUSED;

                        case NL_XFER_ACCEPT:
                                if (pk.client_id != x->client_id)
                                        break;
                                r = take_accept(x, &pk, &from, from_len);
                                if (r != XFER_RECV_OK) {
                                        if (r == XFER_RECV_PROTOCOL) {
                                                x->transfer_id = pk.transfer_id;
                                                (void) connect(x->fd, (struct sockaddr *) &from,
                                                               from_len);
                                                xfer_recv_abort(x, NL_STATUS_BAD_REQUEST,
                                                                x->rep->problem);
                                        }
                                        return r;
                                }
                                *ret_info = pk.info;
                                return XFER_RECV_OK;

                        default:
                                n_foreign++;
                                break;
                        }
                }
                continue;

        unreachable:
                /* Until the server has answered here, a name with more
                 * addresses may be served on another one ("localhost" is ::1
                 * and 127.0.0.1, and a server may bind only one). */
                if (!answered && next_address(x) == 0) {
                        x->rep->block_max = p->block_max ? p->block_max : path_block_max(x->cur);
                        next_send = mono_usec();
                        interval = HANDSHAKE_RTO_USEC;
                        sends_since_answer = 0;
                        continue;
                }
                x->rep->err = -last_icmp;
                if (last_icmp == -ECONNREFUSED)
                        return set_problem(x, XFER_RECV_UNREACHABLE,
                                           "%s port %u: port unreachable (ICMP): no UDP file "
                                           "service listens there",
                                           p->host, p->port);
                return set_problem(x, XFER_RECV_UNREACHABLE, "cannot reach %s port %u: %s",
                                   p->host, p->port, strerror(-last_icmp));
        }
}

/* ---- data ---- */

static size_t block_len(const struct xfer_recv *x, uint32_t seq)
{
        if (seq + 1 < x->n_blocks)
                return x->block_size;
        return (size_t) (x->length - (uint64_t) seq * x->block_size);
}

static uint8_t *slot(const struct xfer_recv *x, uint32_t seq)
{
        return x->slots + (size_t) (seq % x->window) * x->block_size;
}

/* The window offered in ACKs.  Every block in [cum, cum + window) has a
 * slot here, but blocks wait in the socket's receive buffer until we read
 * them, and when we are slower than the sender (writing to a disk is slower
 * than reading from a page cache) a window larger than that buffer only
 * turns into drops and retransmissions: on loopback 25% of 64 KiB blocks
 * were sent twice.  So rwnd is also bounded by the datagrams the buffer
 * holds: the kernel charges each its "truesize", measured on loopback at
 * 2304 bytes for 1472, 16640 for 9000 and 66312 for 65480; the estimate
 * errs on the large side. */
static void rwnd_init(struct xfer_recv *x)
{
        size_t dgram = NL_XFER_DATA_HEADER + 8u + x->block_size;
        size_t truesize = dgram < 16384 ? (dgram + 1024 > 2 * dgram ? dgram + 1024 : 2 * dgram)
                                        : dgram + 1024;
        int rcvbuf = 0;
        socklen_t len = sizeof rcvbuf;

        x->rwnd = x->window;
        /* What the kernel uses (it doubles the value set). */
        if (getsockopt(x->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) < 0 || rcvbuf <= 0)
                return;
        /* Half: UDP uncharges what was read only in steps of a quarter
         * of the buffer (udp_rmem_release()), and bursts need slack. */
        size_t fits = (size_t) rcvbuf / 2 / truesize;
        if (fits < 2)
                fits = 2; /* a window of one block would stop at every loss */
        if (fits < x->rwnd)
                x->rwnd = (uint32_t) fits;
}

/* The segment size of a UDP_GRO receive (its cmsg), 0 if it holds one
 * datagram. */
static size_t gro_size(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int v;
                        memcpy(&v, CMSG_DATA(c), sizeof v);
                        return v > 0 ? (size_t) v : 0;
                }
        }
        return 0;
}

/* Allocate what the data phase needs once (the slot store waits for the
 * first block that arrives out of order). */
static int buffers_init(struct xfer_recv *x)
{
        size_t size = NL_XFER_DATA_HEADER + x->block_size;
        int one = 1;

        if (size < CONTROL_MAX)
                size = CONTROL_MAX;
        /* UDP_GRO: the server sends small blocks as GSO super-datagrams;
         * taken whole (loopback and veth keep them whole; a NIC's GRO builds
         * them), one receive carries up to 64 blocks instead of one, which
         * is most of the cost of small blocks.  Needs room for a whole UDP
         * payload.  Linux >= 5.0; without it, blocks come one by one. */
        if (size < GRO_BUF && setsockopt(x->fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0)
                size = GRO_BUF;
        /* +1 and MSG_TRUNC: a datagram longer than any the server may send
         * shows up as such instead of being cut to fit. */
        x->buf_size = (size + 1 + 63) & ~(size_t) 63;
        x->n_bufs = BATCH_BYTES / x->buf_size;
        if (x->n_bufs < BATCH_MIN)
                x->n_bufs = BATCH_MIN;
        if (x->n_bufs > BATCH_MAX)
                x->n_bufs = BATCH_MAX;
        x->bufs = malloc(x->buf_size * x->n_bufs);
        x->msgs = calloc(x->n_bufs, sizeof *x->msgs);
        x->msg_iov = calloc(x->n_bufs, sizeof *x->msg_iov);
        x->msg_control = calloc(x->n_bufs, CONTROL_SIZE);
        if (!x->bufs || !x->msgs || !x->msg_iov || !x->msg_control)
                return -ENOMEM;
        for (unsigned i = 0; i < x->n_bufs; i++) {
                x->msg_iov[i] = (struct iovec) { .iov_base = x->bufs + (size_t) i * x->buf_size,
                                                 .iov_len = x->buf_size };
                x->msgs[i].msg_hdr = (struct msghdr) {
                        .msg_iov = &x->msg_iov[i],
                        .msg_iovlen = 1,
                        .msg_control = x->msg_control + (size_t) i * CONTROL_SIZE,
                        .msg_controllen = CONTROL_SIZE,
                };
        }

        int r = xfer_receiver_init(&x->r, x->n_blocks, x->window);
        if (r < 0)
                return r;
        x->receiver_ready = true;
        rwnd_init(x);
        x->rep->rwnd = x->rwnd;
        return 0;
}

static int slots_init(struct xfer_recv *x)
{
        /* Reserved, not touched: only the slots used take memory. */
        x->slots_size = (size_t) x->window * x->block_size;
        void *m = mmap(NULL, x->slots_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
                return -ENOMEM;
        x->slots = m;
        return 0;
}

/* Pass on what is queued in x->out.  Return: XFER_RECV_OK; LOCAL; SIGNAL. */
static int flush(struct xfer_recv *x)
{
        if (x->out_bytes == 0)
                return XFER_RECV_OK;

        int r = x->p->deliver(x->p->userdata, x->p->discard ? NULL : x->out,
                              x->p->discard ? 0 : x->n_out, x->out_bytes);
        x->n_out = 0;
        x->out_bytes = 0;
        if (r == -EINTR)
                return XFER_RECV_SIGNAL;
        if (r < 0) {
                x->rep->err = -r;
                return XFER_RECV_LOCAL;
        }
        return XFER_RECV_OK;
}

/* Queue block seq's bytes to be passed on.  Return: as flush(). */
static int queue_out(struct xfer_recv *x, uint32_t seq, const uint8_t *data, size_t n)
{
        if (x->p->discard) {
                x->out_bytes += n;
                return XFER_RECV_OK;
        }
        if (x->n_out == IOV_MAX) {
                int r = flush(x);
                if (r != XFER_RECV_OK)
                        return r;
        }
        if (x->n_out == 0)
                x->out_first = seq;
        x->out[x->n_out++] = (struct iovec) { .iov_base = (void *) data, .iov_len = n };
        x->out_bytes += n;
        return XFER_RECV_OK;
}

/* One DATA datagram.  Return: XFER_RECV_OK; PROTOCOL; LOCAL; SIGNAL; NOMEM. */
static int on_data(struct xfer_recv *x, const struct xfer_packet *pk, bool *ack_now)
{
        uint32_t seq = pk->seq;
        int r;

        if (seq >= x->n_blocks)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server sent block %u of a transfer of %u blocks", seq,
                                   x->n_blocks);
        size_t want = block_len(x, seq);
        if (pk->payload_len != want)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server sent %zu bytes in block %u, which has %zu",
                                   pk->payload_len, seq, want);

        x->echo = pk->timestamp;
        uint32_t highest = x->r.highest;
        r = xfer_receiver_mark(&x->r, seq);
        if (r < 0)
                return set_problem(x, XFER_RECV_PROTOCOL,
                                   "the server sent block %u outside the window of %u blocks from "
                                   "block %u",
                                   seq, x->window, x->r.cum);
        if (r == 0) {
                /* A retransmission of something we have: our ACK may be lost. */
                x->rep->n_duplicates++;
                x->ack_owed = true;
                return XFER_RECV_OK;
        }
        x->since_ack++;

        if (seq != x->r.cum) {
                x->rep->n_out_of_order++;
                /* A new gap: tell the sender now (RFC 5681, 4.2). */
                if (seq > highest)
                        *ack_now = true;
                if (x->p->discard)
                        return XFER_RECV_OK;
                /* Its slot may still be queued for the block one window
                 * earlier: pass that on first. */
                if (x->n_out > 0 && seq >= x->window && seq - x->window >= x->out_first) {
                        r = flush(x);
                        if (r != XFER_RECV_OK)
                                return r;
                }
                if (!x->slots && slots_init(x) < 0)
                        return XFER_RECV_NOMEM;
                memcpy(slot(x, seq), pk->payload, want);
                return XFER_RECV_OK;
        }

        /* In order: this block straight from the receive buffer, then the
         * ones it joins up with from the slot store. */
        uint32_t k = xfer_receiver_ready(&x->r);
        r = queue_out(x, seq, pk->payload, want);
        for (uint32_t i = 1; r == XFER_RECV_OK && i < k; i++)
                r = queue_out(x, seq + i, x->p->discard ? NULL : slot(x, seq + i),
                              block_len(x, seq + i));
        xfer_receiver_advance(&x->r, k);
        if (k > 1)
                *ack_now = true; /* a gap filled */
        return r;
}

/* A datagram that is not DATA.  Return: XFER_RECV_OK (1 in *ret_end when
 * the END came); REFUSED; NET; GONE; PROTOCOL. */
static int on_control(struct xfer_recv *x, const struct xfer_packet *pk, bool *ret_end)
{
        switch (pk->type) {
        case NL_XFER_ACCEPT:
                /* Our first ACK was lost: the child sends ACCEPT again. */
                if (pk->client_id == x->client_id && pk->transfer_id == x->transfer_id) {
                        if (x->r.cum == 0 && x->r.highest == 0)
                                x->echo = pk->timestamp;
                        x->ack_owed = true;
                } else
                        x->rep->n_ignored++;
                return XFER_RECV_OK;

        case NL_XFER_END:
                if (pk->transfer_id != x->transfer_id) {
                        x->rep->n_ignored++;
                        return XFER_RECV_OK;
                }
                if (pk->status == NL_STATUS_OK && !xfer_receiver_complete(&x->r))
                        return set_problem(
                                x, XFER_RECV_PROTOCOL,
                                "the server ended the transfer with %u of its %u blocks missing",
                                x->n_blocks - x->r.cum, x->n_blocks);
                if (pk->body_len > sizeof x->rep->text)
                        return set_problem(x, XFER_RECV_PROTOCOL,
                                           "the server sent a malformed END");
                if (!x->got_end) {
                        copy_text(x, pk->status, pk->body, pk->body_len);
                        x->got_end = true;
                        x->end_usec = mono_usec();
                }
                *ret_end = true;
                /* A lost DONE only costs the child a few END resends. */
                (void) send_done(x);
                return XFER_RECV_OK;

        case NL_XFER_ERROR:
                if (pk->transfer_id != x->transfer_id &&
                    !(pk->transfer_id == 0 && pk->client_id == x->client_id)) {
                        x->rep->n_ignored++;
                        return XFER_RECV_OK;
                }
                copy_text(x, pk->status, pk->body, pk->body_len);
                return XFER_RECV_REFUSED;

        default:
                /* RETRYs late from the listener and the like. */
                x->rep->n_ignored++;
                return XFER_RECV_OK;
        }
}

/* Map a socket error of the connected socket.  Return: GONE; NET. */
static int socket_failed(struct xfer_recv *x, int err)
{
        x->rep->err = err;
        return err == ECONNREFUSED ? XFER_RECV_GONE : XFER_RECV_NET;
}

static int ack_or_fail(struct xfer_recv *x)
{
        int r = send_ack(x);

        return r < 0 ? socket_failed(x, -r) : XFER_RECV_OK;
}

/* Process the batch of n datagrams just received.  Return: XFER_RECV_OK
 * (*ret_end when END came, *ret_valid when anything was for us); another
 * result to end with. */
static int on_batch(struct xfer_recv *x, unsigned n, bool *ret_valid, bool *ret_end)
{
        size_t most = NL_XFER_DATA_HEADER + x->block_size;
        int r = XFER_RECV_OK;

        if (most < CONTROL_MAX)
                most = CONTROL_MAX;
        for (unsigned i = 0; i < n && r == XFER_RECV_OK && !*ret_end; i++) {
                const uint8_t *buf = x->msg_iov[i].iov_base;
                size_t len = x->msgs[i].msg_len;
                size_t seg = gro_size(&x->msgs[i].msg_hdr);

                if (len >= x->buf_size || (x->msgs[i].msg_hdr.msg_flags & MSG_TRUNC))
                        return set_problem(x, XFER_RECV_PROTOCOL,
                                           "the server sent a %zu-byte datagram, longer than any "
                                           "it may send with blocks of %u bytes",
                                           len, x->block_size);
                if (seg == 0 || seg > len)
                        seg = len;
                /* With UDP_GRO, one receive may hold several datagrams of
                 * seg bytes each (the last one shorter). */
                for (size_t off = 0; off < len && r == XFER_RECV_OK && !*ret_end; off += seg) {
                        size_t k = len - off < seg ? len - off : seg;
                        struct xfer_packet pk;
                        bool ack_now = false;

                        x->rep->n_datagrams++;
                        if (k > most)
                                return set_problem(x, XFER_RECV_PROTOCOL,
                                                   "the server sent a %zu-byte datagram, longer "
                                                   "than any it may send with blocks of %u bytes",
                                                   k, x->block_size);
                        if (xfer_packet_decode(buf + off, k, &pk) < 0) {
                                x->rep->n_ignored++;
                                continue;
                        }
                        if (pk.type == NL_XFER_DATA) {
                                if (pk.transfer_id != x->transfer_id) {
                                        x->rep->n_ignored++;
                                        continue;
                                }
                                *ret_valid = true;
                                r = on_data(x, &pk, &ack_now);
                        } else {
                                uint64_t ignored = x->rep->n_ignored;
                                r = on_control(x, &pk, ret_end);
                                if (x->rep->n_ignored == ignored)
                                        *ret_valid = true;
                        }
                        if (r == XFER_RECV_OK && !*ret_end &&
                            (ack_now || x->since_ack >= ACK_EVERY))
                                r = ack_or_fail(x);
                }
        }
        if (r != XFER_RECV_OK)
                return r;
        return flush(x);
}

int xfer_recv_data(struct xfer_recv *x)
{
        const struct xfer_recv_params *p = x->p;
        int r;

        if (buffers_init(x) < 0)
                return XFER_RECV_NOMEM;

        /* The first ACK says "go" (and gives the child its first RTT). */
        r = ack_or_fail(x);
        if (r != XFER_RECV_OK)
                return r;

        /* Quiet for a while (the END does not come, or under heavy loss
         * our ACKs were lost and the sender waits out a backed-off RTO):
         * ACK again, less and less often.  Until the first DATA, sooner:
         * a lost first ACK would otherwise wait for the child's next ACCEPT,
         * 1 s and more after the first (it has no RTT sample yet), while
         * a repeated ACK costs 21 bytes.  2 SRTT (from the handshake) is
         * when the first DATA is overdue; 50 ms at least, as a server
         * opening a cold file may well take that long. */
        uint64_t reack_base = END_REACK_USEC;
        if (x->rtt.has_sample && 2 * x->rtt.srtt_usec > reack_base)
                reack_base = 2 * x->rtt.srtt_usec;
        uint64_t first_base = FIRST_REACK_USEC;
        if (x->rtt.has_sample && 2 * x->rtt.srtt_usec > first_base)
                first_base = 2 * x->rtt.srtt_usec;
        uint64_t now = mono_usec();
        uint64_t deadline = now + p->timeout_usec;
        uint64_t reack_interval = first_base, reack_at = now + reack_interval;
        unsigned n_used = 0;

        for (;;) {
                if (interrupted(x)) {
                        xfer_recv_abort(x, NL_STATUS_CANCELLED, "cancelled by the client");
                        return XFER_RECV_SIGNAL;
                }

                /* The kernel writes back how much control data came. */
                for (unsigned i = 0; i < n_used; i++)
                        x->msgs[i].msg_hdr.msg_controllen = CONTROL_SIZE;
                int n = recvmmsg(x->fd, x->msgs, x->n_bufs, MSG_DONTWAIT | MSG_TRUNC, NULL);
                n_used = n > 0 ? (unsigned) n : 0;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                        return socket_failed(x, errno);

                if (n > 0) {
                        bool valid = false, end = false;

                        r = on_batch(x, (unsigned) n, &valid, &end);
                        if (r == XFER_RECV_PROTOCOL)
                                xfer_recv_abort(x, NL_STATUS_BAD_REQUEST, x->rep->problem);
                        else if (r == XFER_RECV_LOCAL)
                                xfer_recv_abort(x, NL_STATUS_CANCELLED,
                                                "the client cannot write the data");
                        else if (r == XFER_RECV_SIGNAL)
                                xfer_recv_abort(x, NL_STATUS_CANCELLED, "cancelled by the client");
                        if (r != XFER_RECV_OK)
                                return r;
                        if (end)
                                return XFER_RECV_OK;
                        if (valid) {
                                bool data_seen = x->r.highest > 0 || x->r.cum > 0;

                                now = mono_usec();
                                deadline = now + p->timeout_usec;
                                reack_interval = data_seen ? reack_base : first_base;
                                reack_at = now + reack_interval;
                        }
                        /* A full batch: more is probably queued; ACK what
                         * is owed once the socket is drained. */
                        if ((unsigned) n == x->n_bufs && x->since_ack < ACK_EVERY)
                                continue;
                        if (x->since_ack > 0 || x->ack_owed) {
                                r = ack_or_fail(x);
                                if (r != XFER_RECV_OK)
                                        return r;
                        }
                        continue;
                }

                /* Drained. */
                if (x->since_ack > 0 || x->ack_owed) {
                        r = ack_or_fail(x);
                        if (r != XFER_RECV_OK)
                                return r;
                }
                now = mono_usec();
                if (now >= deadline) {
                        xfer_recv_abort(x, NL_STATUS_TIMEOUT, "the client got no data in time");
                        return XFER_RECV_TIMEOUT;
                }
                if (now >= reack_at) {
                        r = ack_or_fail(x);
                        if (r != XFER_RECV_OK)
                                return r;
                        reack_interval = reack_interval * 2 > END_REACK_MAX_USEC
                                                 ? END_REACK_MAX_USEC
                                                 : reack_interval * 2;
                        reack_at = now + reack_interval;
                }
                r = wait_readable(x->fd, reack_at < deadline ? reack_at : deadline);
                if (r < 0)
                        return socket_failed(x, -r);
        }
}

void xfer_recv_linger(struct xfer_recv *x)
{
        uint64_t linger = LINGER_DEFAULT_USEC;

        if (!x->got_end || x->fd < 0)
                return;
        if (x->rtt.has_sample)
                linger = 3 * x->rtt.srtt_usec;
        if (linger > LINGER_MAX_USEC)
                linger = LINGER_MAX_USEC;

        /* Verifying may have taken a while: answer the ENDs queued
         * meanwhile, then wait out the rest of the linger. */
        uint64_t until = x->end_usec + linger;
        for (;;) {
                uint8_t buf[CONTROL_MAX + 1];
                ssize_t k = recv(x->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (interrupted(x) || mono_usec() >= until ||
                            wait_readable(x->fd, until) < 0)
                                return;
                        continue;
                }
                if (k < 0)
                        return; /* the child is gone: nothing more to answer */

                struct xfer_packet pk;
                if (xfer_packet_decode(buf, (size_t) k, &pk) == 0 && pk.type == NL_XFER_END &&
                    pk.transfer_id == x->transfer_id && send_done(x) < 0)
                        return;
        }
}
