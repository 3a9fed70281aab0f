/* dgram.c: see dgram.h.
 *
 * Every datagram is hostile: its source address is a claim anyone can forge,
 * so nothing is answered before the guard (guard.c) says so, and no reply
 * is sent that is larger than the service declared for a datagram of that
 * size (at most NL_GUESS_AMPLIFY times, RFC 9000 section 8's rule), whatever
 * the service's code did. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "daemon.h"
#include "dgram.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "util.h"

#define DGRAM_ROUNDS_PER_WAKEUP 8  /* batches per event-loop wakeup: others get their turn */
#define DGRAM_BUSY_MAX_USEC 2000u  /* busy polling: back to the event loop at least this often */

/* One set of receive buffers for every udp listener: the supervisor is
 * single-threaded and answers a batch completely before the next.  Pages are
 * only touched by datagrams that large, so small datagrams cost little RSS. */
static struct {
        unsigned users;
        uint8_t (*buf)[DGRAM_BUFFER_SIZE];
        struct mmsghdr rx[DGRAM_BATCH], tx[DGRAM_BATCH];
        struct iovec rx_iov[DGRAM_BATCH], tx_iov[DGRAM_BATCH];
        struct sockaddr_storage peer[DGRAM_BATCH];
} io;

static int io_ref(void)
{
        if (io.users == 0) {
                io.buf = malloc(sizeof *io.buf * DGRAM_BATCH);
                if (!io.buf)
                        return -ENOMEM;
        }
        io.users++;
        return 0;
}

static void io_unref(void)
{
        if (--io.users == 0) {
                free(io.buf);
                io.buf = NULL;
        }
}

static void report(struct dgram *dg, uint64_t now)
{
        const uint64_t *c = dg->counters;
        uint64_t secs = (now - dg->interval_start_usec + 500000u) / 1000000u;

        log_dgram_summary(&(struct dgram_summary) {
                .listener = dg->cfg->name, .service = dg->service->name,
                .interval_sec = secs ? secs : 1,
                .replies = c[DGRAM_REPLIES], .reply_bytes = c[DGRAM_REPLY_BYTES],
                .port_zero = c[DGRAM_DROP_PORT_ZERO], .blocked_port = c[DGRAM_DROP_BLOCKED_PORT],
                .source_rate = c[DGRAM_DROP_SOURCE_RATE], .total_rate = c[DGRAM_DROP_TOTAL_RATE],
                .other = c[DGRAM_DROP_OTHER], .suppressed = c[DGRAM_LOG_SUPPRESSED],
        });
        memset(dg->counters, 0, sizeof dg->counters);
        dg->interval_start_usec = now;
}

static int on_report_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct dgram *dg = userdata;

        report(dg, now_usec());
        /* Oneshot: the next drop arms it again. */
        return 0;
}

/* Something worth an aggregate entry happened: count it and make sure an
 * entry will be written within DGRAM_REPORT_USEC. */
static void want_report(struct dgram *dg, enum dgram_counter c, uint64_t now)
{
        int enabled = SD_EVENT_OFF;

        if (sd_event_source_get_enabled(dg->report_timer, &enabled) >= 0 && enabled == SD_EVENT_OFF) {
                /* The entry covers everything since the last one (or since
                 * the listener started), quiet time included. */
                if (sd_event_source_set_time(dg->report_timer, now + DGRAM_REPORT_USEC) < 0 ||
                    sd_event_source_set_enabled(dg->report_timer, SD_EVENT_ONESHOT) < 0) {
                        dg->counters[c]++;
                        report(dg, now); /* cannot wait: write it now rather than lose it */
                        return;
                }
        }
        dg->counters[c]++;
}

int dgram_new(struct daemon *d, const struct listener_config *lc, const struct dgram *old,
              struct dgram **ret)
{
        sd_event *event = d->event;
        const struct service *svc = lc->service;
        struct dgram *dg = calloc(1, sizeof *dg);
        int r;

        if (!dg)
                return log_error_errno(ENOMEM, "listener '%s': cannot set up", lc->name);
        dg->daemon = d;
        dg->event = event;
        dg->cfg = lc;
        dg->service = svc;
        dg->stats = d->stats;

        r = io_ref();
        if (r < 0) {
                free(dg);
                return log_error_errno(r, "listener '%s': cannot allocate receive buffers", lc->name);
        }
        dg->io_held = true;
        r = guard_init(&dg->guard, &lc->dgram);
        if (r < 0) {
                log_error_errno(r, "listener '%s': cannot set up the rate limits%s", lc->name,
                                r == -EAGAIN ? " (the kernel has no random bytes yet)" : "");
                dgram_free(dg);
                return r;
        }
        r = sd_event_add_time(event, &dg->report_timer, CLOCK_MONOTONIC, UINT64_MAX, 0,
                              on_report_timer, dg);
        if (r >= 0)
                r = sd_event_source_set_enabled(dg->report_timer, SD_EVENT_OFF);
        if (r < 0) {
                log_error_errno(r, "listener '%s': cannot add a timer", lc->name);
                dgram_free(dg);
                return r;
        }
        if (svc->dgram_state_new) {
                r = svc->dgram_state_new(lc, old && old->service == svc ? old->state : NULL, &dg->state);
                if (r < 0) {
                        log_error_errno(r, "listener '%s': cannot set up the %s service", lc->name,
                                        svc->name);
                        dgram_free(dg);
                        return r;
                }
        }
        dg->interval_start_usec = now_usec();
        *ret = dg;
        return 0;
}

struct dgram *dgram_free(struct dgram *dg)
{
        if (!dg)
                return NULL;
        bool pending = false;
        for (size_t i = DGRAM_DROP_PORT_ZERO; i < _DGRAM_COUNTER_MAX; i++)
                pending = pending || dg->counters[i] > 0;
        if (pending)
                report(dg, now_usec());
        if (dg->state && dg->service->dgram_state_free)
                dg->service->dgram_state_free(dg->state);
        sd_event_source_disable_unref(dg->report_timer);
        guard_done(&dg->guard);
        if (dg->io_held)
                io_unref();
        free(dg);
        return NULL;
}

static uint16_t peer_port(const struct sockaddr_storage *ss)
{
        if (ss->ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *) ss)->sin_port);
        if (ss->ss_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
        return 0;
}

/* Send tx[0..n): a batch at a time; a datagram the kernel refuses is skipped. */
static void send_batch(struct dgram *dg, int fd, unsigned n, uint64_t now)
{
        unsigned next = 0;

        for (unsigned tries = 0; next < n && tries < 2 * DGRAM_BATCH; tries++) {
                int k = sendmmsg(fd, io.tx + next, n - next, MSG_DONTWAIT);
                if (k > 0) {
                        for (unsigned i = next; i < next + (unsigned) k; i++) {
                                dg->counters[DGRAM_REPLIES]++;
                                dg->counters[DGRAM_REPLY_BYTES] += io.tx[i].msg_len;
                        }
                        next += (unsigned) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
                        break; /* the send buffer is full: a datagram service drops, never waits */
                /* This one datagram was refused (unreachable, a firewall,
                 * ...): skip it, send the rest. */
                want_report(dg, DGRAM_DROP_OTHER, now);
                next++;
        }
        for (; next < n; next++)
                want_report(dg, DGRAM_DROP_OTHER, now);
}

static const enum dgram_counter verdict_counter[_GUARD_VERDICT_MAX] = {
        [GUARD_PORT_ZERO] = DGRAM_DROP_PORT_ZERO,
        [GUARD_BLOCKED_PORT] = DGRAM_DROP_BLOCKED_PORT,
        [GUARD_SOURCE_RATE] = DGRAM_DROP_SOURCE_RATE,
        [GUARD_TOTAL_RATE] = DGRAM_DROP_TOTAL_RATE,
};

void dgram_process(struct dgram *dg, int fd)
{
        const struct service *svc = dg->service;
        uint64_t n_replies = 0, n_bytes = 0, n_in = 0;

        const uint64_t busy = (uint64_t) dg->cfg->dgram.busy_poll_usec;
        uint64_t start = busy ? now_usec() : 0, last = start;

        for (int round = 0; round < DGRAM_ROUNDS_PER_WAKEUP || busy;) {
                for (unsigned i = 0; i < DGRAM_BATCH; i++) {
                        io.rx_iov[i] = (struct iovec) { .iov_base = io.buf[i], .iov_len = DGRAM_BUFFER_SIZE };
                        io.rx[i].msg_hdr = (struct msghdr) {
                                .msg_name = &io.peer[i], .msg_namelen = sizeof io.peer[i],
                                .msg_iov = &io.rx_iov[i], .msg_iovlen = 1,
                        };
                }
                int n = recvmmsg(fd, io.rx, DGRAM_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0 && busy && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                        /* Busy polling: a client in a request-reply loop
                         * answers within microseconds; waiting for it here
                         * spares both sides a sleep and a cross-CPU wake-up.
                         * Bounded, so timers and other listeners wait at most
                         * DGRAM_BUSY_MAX_USEC. */
                        uint64_t t = now_usec();
                        if (t - last < busy && t - start < DGRAM_BUSY_MAX_USEC)
                                continue;
                        break;
                }
                if (n < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                                want_report(dg, DGRAM_DROP_OTHER, now_usec());
                        break;
                }

                uint64_t now = now_usec();
                last = now;
                round++;
                unsigned ntx = 0;
                for (unsigned i = 0; i < (unsigned) n; i++) {
                        size_t len = io.rx[i].msg_len;
                        uint16_t port = peer_port(&io.peer[i]);

                        n_in += len;
                        if (io.rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
                                want_report(dg, DGRAM_DROP_OTHER, now);
                                continue;
                        }
                        /* The most this datagram may get back. */
                        size_t max_reply = len * svc->dgram_amplify;
                        if (max_reply > svc->dgram_reply_max)
                                max_reply = svc->dgram_reply_max;

                        enum guard_verdict v = guard_admit(&dg->guard, (const struct sockaddr *) &io.peer[i],
                                                           port, max_reply, now * 1000u);
                        if (v != GUARD_PASS) {
                                want_report(dg, verdict_counter[v], now);
                                continue;
                        }

                        struct dgram_ctx ctx = {
                                .dgram = dg, .listener = dg->cfg,
                                .peer = (const struct sockaddr *) &io.peer[i],
                                .peer_len = io.rx[i].msg_hdr.msg_namelen, .peer_port = port,
                                .now_usec = now,
                        };
                        ssize_t r = svc->on_datagram(dg->state, &ctx, io.buf[i], len, DGRAM_BUFFER_SIZE);
                        if (r < 0) {
                                guard_refund(&dg->guard, max_reply);
                                continue;
                        }
                        if ((size_t) r > max_reply) {
                                /* A service bug; the rule holds anyway. */
                                log_msg(LOG_ERR, "listener '%s': %s reply of %zd bytes to a %zu-byte "
                                        "datagram is over its limit of %zu, not sent",
                                        dg->cfg->name, svc->name, r, len, max_reply);
                                guard_refund(&dg->guard, max_reply);
                                want_report(dg, DGRAM_DROP_OTHER, now);
                                continue;
                        }
                        guard_refund(&dg->guard, max_reply - (size_t) r);
                        io.tx_iov[ntx] = (struct iovec) { .iov_base = io.buf[i], .iov_len = (size_t) r };
                        io.tx[ntx].msg_hdr = (struct msghdr) {
                                .msg_name = &io.peer[i], .msg_namelen = io.rx[i].msg_hdr.msg_namelen,
                                .msg_iov = &io.tx_iov[ntx], .msg_iovlen = 1,
                        };
                        io.tx[ntx].msg_len = 0;
                        ntx++;
                        n_replies++;
                        n_bytes += (size_t) r;
                }
                if (ntx > 0)
                        send_batch(dg, fd, ntx, now);
                if (busy && now - start >= DGRAM_BUSY_MAX_USEC)
                        break;
                if (n < DGRAM_BATCH && !busy)
                        break; /* the queue is empty: back to the event loop */
        }

        if (n_replies > 0 && dg->stats) {
                __atomic_add_fetch(&dg->stats->requests, n_replies, __ATOMIC_RELAXED);
                __atomic_add_fetch(&dg->stats->bytes_in, n_in, __ATOMIC_RELAXED);
                __atomic_add_fetch(&dg->stats->bytes_out, n_bytes, __ATOMIC_RELAXED);
        }
}

void dgram_log_request(struct dgram_ctx *ctx, struct request_log *entry)
{
        struct dgram *dg = ctx->dgram;
        uint64_t second = ctx->now_usec / 1000000u;
        struct conn peer = {};

        if (second != dg->log_second) {
                dg->log_second = second;
                dg->log_count = 0;
        }
        if (dg->log_count >= DGRAM_LOG_PER_SEC) {
                want_report(dg, DGRAM_LOG_SUPPRESSED, ctx->now_usec);
                return;
        }
        dg->log_count++;

        conn_set_peer(&peer, ctx->peer, ctx->peer_len);
        entry->listener = ctx->listener->name;
        entry->service = dg->service->name;
        entry->remote_addr = peer.remote_addr;
        entry->remote_port = peer.remote_port;
        log_request(entry);
}

void dgram_count_drop(struct dgram_ctx *ctx)
{
        want_report(ctx->dgram, DGRAM_DROP_OTHER, ctx->now_usec);
}

void dgram_child_exited(struct dgram *dg, pid_t pid)
{
        if (dg && dg->state && dg->service->dgram_child_exited)
                dg->service->dgram_child_exited(dg->state, pid);
}
