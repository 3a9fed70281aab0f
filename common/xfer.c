/* xfer.c: the bookkeeping of netlab's UDP transfer (see xfer.h): RTT
 * estimation (RFC 6298), AIMD congestion control in blocks, the sender's
 * scoreboard with RACK loss detection, its reordering timer and tail loss
 * probes (RFC 8985), and the receiver's window.
 *
 * Pure: no I/O, no clock reads, no logging.  What it trusts: nothing in an
 * ACK (xfer_sender_on_ack() checks every field against what was really sent
 * before it changes anything); the caller for seq numbers it got from
 * xfer_sender_next() and for a monotonic clock.
 *
 * Cost per operation (window W, blocks newly delivered N, ranges R <= 32):
 *   xfer_sender_next()      O(1): the lowest LOST block is kept exactly in
 *                           lost_lo, the next new one is next_new.
 *   xfer_sender_sent()      O(1) amortised (plus the lost_lo scan below).
 *   xfer_sender_on_ack()    O(N + R + L) amortised, L = blocks declared lost.
 *                           A SACK range is walked block by block only where
 *                           blocks are newly delivered: runs of delivered
 *                           blocks are jumped over with skip pointers
 *                           (run_end, path-compressed like union-find), so an
 *                           ACK repeating known ranges costs O(R).  RACK walks
 *                           the IN_FLIGHT blocks in send-time order (a doubly
 *                           linked list through the ring) and stops at the
 *                           first one that is recent enough, so it looks only
 *                           at blocks it declares lost, plus one.
 *   lost_lo upkeep          moves forward over the blocks between LOST ones;
 *                           it moves back only when a lower block is lost, so
 *                           the scanning is O(W) per such event at worst and
 *                           O(1) amortised when losses come in seq order.
 *   xfer_sender_deadline()  O(1): the three timers come from the ends of the
 *                           send-time list and a few fields.
 *   xfer_sender_on_timer()  reordering timer and probe: O(L) like an ACK;
 *                           RTO: O(in_flight).
 *   xfer_receiver_ready()/_sack() scan the bitmap 64 bits at a time.
 * Nothing scans the whole window per ACK. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

#define NONE UINT32_MAX /* end of the send-time list; never a block (seq < n_blocks <= UINT32_MAX) */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
        return a > b ? a : b;
}

/* ---- RTT ---- */

void xfer_rtt_init(struct xfer_rtt *r)
{
        *r = (struct xfer_rtt) {
                .rto_usec = XFER_RTO_INITIAL_USEC,
        };
}

void xfer_rtt_sample(struct xfer_rtt *r, uint64_t rtt_usec)
{
        /* A sample above 2^32 us (71 min) is nonsense; capping it keeps the
         * arithmetic below far from overflow. */
        uint64_t R = min_u64(rtt_usec, UINT32_MAX);

        if (!r->has_sample) {
                /* RFC 6298 2.2 */
                r->srtt_usec = R;
                r->rttvar_usec = R / 2;
                r->min_rtt_usec = R;
                r->has_sample = true;
        } else {
                /* RFC 6298 2.3: RTTVAR first, with the old SRTT. */
                uint64_t delta = r->srtt_usec > R ? r->srtt_usec - R : R - r->srtt_usec;

                r->rttvar_usec = (3 * r->rttvar_usec + delta) / 4;
                r->srtt_usec = (7 * r->srtt_usec + R) / 8;
                r->min_rtt_usec = min_u64(r->min_rtt_usec, R);
        }
        r->latest_usec = R;

        uint64_t rto = r->srtt_usec + max_u64(XFER_CLOCK_GRANULARITY_USEC, 4 * r->rttvar_usec);
        r->rto_usec = min_u64(max_u64(rto, XFER_RTO_MIN_USEC), XFER_RTO_MAX_USEC);
        r->backoff = 0; /* RFC 6298 5.7 ends the backoff with a new sample */
}

uint64_t xfer_rtt_timeout(const struct xfer_rtt *r)
{
        uint64_t t = r->rto_usec;

        for (unsigned i = 0; i < r->backoff && t < XFER_RTO_MAX_USEC; i++)
                t *= 2;
        return min_u64(t, XFER_RTO_MAX_USEC);
}

void xfer_rtt_backoff(struct xfer_rtt *r)
{
        /* Stop counting once the cap is reached: backoff stays small. */
        if (xfer_rtt_timeout(r) < XFER_RTO_MAX_USEC)
                r->backoff++;
}

bool xfer_rtt_from_echo(uint64_t now_usec, uint32_t echo, uint64_t *ret_usec)
{
        uint32_t d = xfer_timestamp(now_usec) - echo; /* unsigned: wraps mod 2^32 */

        /* An echo from the future (a forged or very old timestamp) shows up
         * as a huge difference and is refused here. */
        if (d >= XFER_RTO_MAX_USEC)
                return false;
        *ret_usec = d;
        return true;
}

/* ---- congestion control ---- */

static uint32_t cc_clamp(const struct xfer_cc *cc, uint64_t cwnd)
{
        /* XFER_CWND_MIN yields to cwnd_max: a window of 1 means 1. */
        return (uint32_t) min_u64(max_u64(cwnd, XFER_CWND_MIN), cc->cwnd_max);
}

void xfer_cc_init(struct xfer_cc *cc, uint32_t cwnd_max)
{
        *cc = (struct xfer_cc) {
                .cwnd_max = cwnd_max > 0 ? cwnd_max : 1,
                .ssthresh = UINT32_MAX, /* RFC 5681 3.1: arbitrarily high */
        };
        cc->cwnd = (uint32_t) min_u64(XFER_CWND_INITIAL, cc->cwnd_max);
}

void xfer_cc_count_lost(struct xfer_cc *cc, uint32_t n)
{
        cc->round_lost = (uint32_t) min_u64((uint64_t) cc->round_lost + n, UINT32_MAX);
}

bool xfer_cc_congested(struct xfer_cc *cc, const struct xfer_rtt *rtt)
{
        if (!rtt->has_sample || cc->every_loss_is_congestion)
                return true;

        uint64_t queue_min = max_u64(XFER_QUEUE_DELAY_MIN_USEC, rtt->min_rtt_usec / 8);
        if (rtt->srtt_usec > rtt->min_rtt_usec && rtt->srtt_usec - rtt->min_rtt_usec > queue_min)
                return true;

        uint64_t lost = (uint64_t) cc->round_lost + cc->prev_lost;
        uint64_t total = lost + cc->round_delivered + cc->prev_delivered;
        if (total >= XFER_LOSS_SAMPLE_MIN && lost * 1000u > total * XFER_LOSS_THRESH_PERMILLE)
                return true;

        cc->n_random_losses++;
        return false;
}

void xfer_cc_on_delivered(struct xfer_cc *cc, uint32_t newly_delivered, uint32_t cum,
                          uint32_t highest_sent)
{
        cc->round_delivered = (uint32_t) min_u64((uint64_t) cc->round_delivered + newly_delivered,
                                                 UINT32_MAX);
        if (cum > cc->round_end) {
                cc->prev_delivered = cc->round_delivered;
                cc->prev_lost = cc->round_lost;
                cc->round_delivered = cc->round_lost = 0;
                cc->round_end = highest_sent > 0 ? highest_sent - 1 : 0;
        }

        if (cc->in_recovery) {
                /* The blocks that end recovery were sent before the cut: they
                 * do not grow the window either. */
                if (cum > cc->recovery_end)
                        cc->in_recovery = false;
                return;
        }

        uint32_t n = newly_delivered;

        /* Slow start: +1 per block up to ssthresh; the rest counts toward
         * congestion avoidance. */
        if (cc->cwnd < cc->ssthresh) {
                uint32_t room = (uint32_t) min_u64(cc->ssthresh, cc->cwnd_max) - cc->cwnd;
                uint32_t inc = n < room ? n : room;

                cc->cwnd += inc;
                n -= inc;
        }
        if (cc->cwnd >= cc->cwnd_max) {
                cc->cwnd = cc->cwnd_max;
                cc->acked_in_ca = 0;
                return;
        }
        if (cc->cwnd < cc->ssthresh)
                return;

        /* Congestion avoidance: +1 per cwnd blocks delivered. */
        uint64_t acked = (uint64_t) cc->acked_in_ca + n;
        while (acked >= cc->cwnd && cc->cwnd < cc->cwnd_max) {
                acked -= cc->cwnd;
                cc->cwnd++;
        }
        cc->acked_in_ca = cc->cwnd < cc->cwnd_max ? (uint32_t) acked : 0;
}

void xfer_cc_on_loss(struct xfer_cc *cc, uint32_t highest_sent)
{
        if (cc->in_recovery)
                return; /* one cut per window of data (RFC 6582) */

        uint32_t cut = cc_clamp(cc, (uint64_t) cc->cwnd * XFER_BETA_NUM / XFER_BETA_DEN);

        cc->ssthresh = cut;
        cc->cwnd = cut;
        cc->acked_in_ca = 0;
        cc->in_recovery = true;
        cc->recovery_end = highest_sent > 0 ? highest_sent - 1 : 0;
        cc->n_loss_events++;
}

void xfer_cc_on_timeout(struct xfer_cc *cc, uint32_t in_flight)
{
        cc->ssthresh = (uint32_t) max_u64(in_flight / 2, XFER_CWND_MIN);
        cc->cwnd = 1;
        cc->acked_in_ca = 0;
        cc->in_recovery = false;
        cc->n_timeouts++;
}

/* ---- sender ---- */

/* Blocks below n_blocks only ever use ring[seq % window] with seq <
 * n_blocks, so a transfer shorter than its window needs only n_blocks
 * entries (seq % window == seq there). */
static uint32_t ring_size(uint32_t n_blocks, uint32_t window)
{
        return (uint32_t) max_u64(min_u64(window, n_blocks), 1);
}

static struct xfer_block *blk(const struct xfer_sender *s, uint32_t seq)
{
        return &s->ring[seq % s->window];
}

static void list_append(struct xfer_sender *s, uint32_t seq)
{
        struct xfer_block *e = blk(s, seq);

        e->prev = s->sent_tail;
        e->next = NONE;
        if (s->sent_tail != NONE)
                blk(s, s->sent_tail)->next = seq;
        else
                s->sent_head = seq;
        s->sent_tail = seq;
}

static void list_unlink(struct xfer_sender *s, uint32_t seq)
{
        struct xfer_block *e = blk(s, seq);

        if (e->prev != NONE)
                blk(s, e->prev)->next = e->next;
        else
                s->sent_head = e->next;
        if (e->next != NONE)
                blk(s, e->next)->prev = e->prev;
        else
                s->sent_tail = e->prev;
        e->prev = e->next = NONE;
}

static void mark_lost(struct xfer_sender *s, uint32_t seq, bool by_rack)
{
        struct xfer_block *e = blk(s, seq);

        list_unlink(s, seq);
        e->state = XFER_BLOCK_LOST;
        e->rack_lost = by_rack;
        s->in_flight--;
        xfer_cc_count_lost(&s->cc, 1);
        if (s->n_lost == 0 || seq < s->lost_lo)
                s->lost_lo = seq;
        s->n_lost++;
}

/* Block seq (in [cum, next_new), not DELIVERED) was acknowledged. */
static void mark_delivered(struct xfer_sender *s, uint32_t seq, uint64_t now_usec)
{
        struct xfer_block *e = blk(s, seq);

        if (e->state == XFER_BLOCK_IN_FLIGHT) {
                list_unlink(s, seq);
                s->in_flight--;
        } else if (e->state == XFER_BLOCK_LOST)
                s->n_lost--;

        /* RFC 8985 6.2 step 2: a retransmitted block acknowledged sooner
         * than min_rtt after its last transmission was most likely
         * delivered by an earlier one; its send time says nothing. */
        bool ambiguous = e->n_sent > 1 && s->rtt.has_sample && now_usec >= e->sent_usec &&
                         now_usec - e->sent_usec < s->rtt.min_rtt_usec;

        /* RACK called it lost, yet it arrived: before its resend, or by
         * the earlier copy.  That is reordering beyond reo_wnd (RFC 8985
         * 6.2 step 4 learns it from DSACK): widen the window, at most once
         * per round trip. */
        if (e->rack_lost && (e->state == XFER_BLOCK_LOST || ambiguous)) {
                s->n_spurious++;
                if (now_usec >= s->reo_grown_usec + s->rtt.srtt_usec) {
                        if (s->reo_wnd_mult < XFER_REO_WND_MULT_MAX)
                                s->reo_wnd_mult++;
                        s->reo_wnd_persist = XFER_REO_WND_PERSIST;
                        s->reo_grown_usec = now_usec;
                }
        }

        if (!ambiguous && e->xmit >= s->rack_xmit) {
                /* The most recently sent delivered block so far: RACK's
                 * reference (RACK.xmit_ts, RACK.rtt). */
                s->rack_xmit = e->xmit;
                s->rack_sent_usec = e->sent_usec;
                s->rack_rtt_usec = now_usec > e->sent_usec ? now_usec - e->sent_usec : 0;
        }

        e->state = XFER_BLOCK_DELIVERED;
        e->run_end = seq + 1;
}

/* b is DELIVERED and in [cum, next_new): the first block at or after b that
 * is not delivered (or next_new), compressing the skip pointers on the way
 * so the next walk over the same run is one step. */
static uint32_t run_end_find(struct xfer_sender *s, uint32_t b)
{
        uint32_t c = b;

        while (c < s->next_new && blk(s, c)->state == XFER_BLOCK_DELIVERED)
                c = blk(s, c)->run_end;
        while (b < c) {
                struct xfer_block *e = blk(s, b);
                uint32_t n = e->run_end;

                e->run_end = c;
                b = n;
        }
        return c;
}

/* n_lost > 0: make lost_lo (a lower bound) the lowest LOST block again. */
static void lost_fix(struct xfer_sender *s)
{
        if (s->n_lost == 0)
                return;

        uint32_t b = s->lost_lo > s->cum ? s->lost_lo : s->cum;
        while (b < s->next_new) {
                uint8_t st = blk(s, b)->state;

                if (st == XFER_BLOCK_LOST)
                        break;
                b = st == XFER_BLOCK_DELIVERED ? run_end_find(s, b) : b + 1;
        }
        s->lost_lo = b; /* n_lost > 0 guarantees b < next_new */
}

int xfer_sender_init(struct xfer_sender *s, uint32_t n_blocks, uint32_t window, uint64_t now_usec)
{
        if (window == 0 || window > NL_XFER_WINDOW_MAX)
                return -EINVAL;

        struct xfer_block *ring = calloc(ring_size(n_blocks, window), sizeof *ring);
        if (!ring)
                return -ENOMEM;

        *s = (struct xfer_sender) {
                .n_blocks = n_blocks,
                .window = window,
                .ring = ring,
                .rwnd = window,
                .last_progress_usec = now_usec,
                .reo_wnd_mult = 1,
                .sent_head = NONE,
                .sent_tail = NONE,
        };
        xfer_rtt_init(&s->rtt);
        xfer_cc_init(&s->cc, window);
        return 0;
}

void xfer_sender_done(struct xfer_sender *s)
{
        free(s->ring);
        s->ring = NULL;
}

/* Is the next new block inside what the receiver and the window allow? */
static bool new_allowed(const struct xfer_sender *s)
{
        uint64_t limit = (uint64_t) s->cum + min_u64(s->rwnd, s->window);

        return s->next_new < s->n_blocks && s->next_new < limit;
}

bool xfer_sender_next(const struct xfer_sender *s, uint32_t *ret_seq)
{
        /* A LOST block lies in [cum, next_new), inside the window already
         * granted: it goes whatever rwnd says now. */
        if (s->in_flight < s->cc.cwnd) {
                if (s->n_lost > 0) {
                        *ret_seq = s->lost_lo;
                        return true;
                }
                if (new_allowed(s)) {
                        *ret_seq = s->next_new;
                        return true;
                }
        }

        /* A probe goes beyond cwnd (RFC 8985 7.3).  A LOST block is the
         * best one: it has to go anyway.  Else new data; else the latest
         * transmission again (RFC 8985 sends the highest block; the latest
         * sent is the same one in a plain flight, and is found in O(1)): an
         * ACK of it, or its SACK, tells RACK what became of the others. */
        if (s->probe_due) {
                if (s->n_lost > 0)
                        *ret_seq = s->lost_lo;
                else if (new_allowed(s))
                        *ret_seq = s->next_new;
                else if (s->sent_tail != NONE)
                        *ret_seq = s->sent_tail;
                else
                        return false;
                return true;
        }
        return false;
}

void xfer_sender_sent(struct xfer_sender *s, uint32_t seq, uint64_t now_usec)
{
        if (seq == s->next_new) {
                /* Refuse what would overwrite a live ring entry. */
                if (seq >= s->n_blocks || (uint64_t) seq >= (uint64_t) s->cum + s->window)
                        return;
                struct xfer_block *e = blk(s, seq);
                *e = (struct xfer_block) {
                        .sent_usec = now_usec,
                        .xmit = s->n_sent,
                        .state = XFER_BLOCK_IN_FLIGHT,
                        .n_sent = 1,
                };
                list_append(s, seq);
                s->in_flight++;
                s->next_new++;
                s->n_sent++;
                goto sent;
        }

        if (seq < s->cum || seq > s->next_new)
                return; /* not a block we could send: ignore */

        struct xfer_block *e = blk(s, seq);
        if (e->state == XFER_BLOCK_LOST) {
                s->n_lost--;
                s->in_flight++;
                e->state = XFER_BLOCK_IN_FLIGHT;
        } else if (e->state == XFER_BLOCK_IN_FLIGHT) {
                /* Sent again before being declared lost: a probe.  Its ACK
                 * can no longer tell which copy arrived. */
                list_unlink(s, seq);
                e->rack_lost = false;
        } else
                return; /* DELIVERED: nothing to do */

        e->sent_usec = now_usec;
        e->xmit = s->n_sent;
        if (e->n_sent < UINT8_MAX)
                e->n_sent++;
        list_append(s, seq);
        s->n_sent++;
        s->n_retransmitted++;
        if (seq == s->lost_lo)
                lost_fix(s);
sent:
        if (s->probe_due) {
                s->probe_due = false;
                s->n_probes_out++;
                s->probe_sent_usec = now_usec;
        }
}

static int ack_check(const struct xfer_sender *s, const struct xfer_packet *ack)
{
        if (ack->cum > s->next_new || ack->cum > s->n_blocks)
                return -EBADMSG;
        if (ack->n_ranges > NL_XFER_SACK_MAX)
                return -EBADMSG;
        for (unsigned i = 0; i < ack->n_ranges; i++) {
                const struct xfer_range *rg = &ack->ranges[i];

                /* The decoder already refuses these; a direct caller gets
                 * the same rules. */
                if (rg->start >= rg->end || rg->end > s->next_new || rg->end > s->n_blocks)
                        return -EBADMSG;
        }
        return 0;
}

/* RFC 8985 6.2 step 4, without its "no reordering seen yet" special case
 * (reo_wnd 0 during recovery), which would turn any reordering into
 * retransmissions before the first evidence of it. */
static uint64_t reo_wnd(const struct xfer_sender *s)
{
        uint64_t w = s->rtt.min_rtt_usec / 4 * s->reo_wnd_mult;

        if (s->rtt.has_sample)
                w = min_u64(w, s->rtt.srtt_usec);
        return max_u64(w, XFER_REO_WND_MIN_USEC);
}

/* RACK's loss detection (RFC 8985 6.2 step 5): an IN_FLIGHT block sent
 * before the RACK block is lost once now is RACK.rtt + reo_wnd past its
 * transmission.  The send-time list is in transmission order, so the
 * candidates are a prefix of it and the ones whose time is up a prefix of
 * that: the walk looks at the blocks it declares lost, plus one.
 * An ACK holds at most NL_XFER_SACK_MAX ranges, the lowest ones: with more
 * holes than that, blocks that arrived above the last range are unknown
 * here and may be resent needlessly once a later-sent (say, retransmitted
 * low) block is acknowledged.  That costs duplicates, never correctness,
 * and only with over 32 holes in one window.
 * Return: whether a block was declared lost. */
static bool rack_detect(struct xfer_sender *s, uint64_t now_usec)
{
        uint64_t wait = s->rack_rtt_usec + reo_wnd(s);
        bool lost = false;

        while (s->sent_head != NONE) {
                const struct xfer_block *e = blk(s, s->sent_head);

                if (e->xmit >= s->rack_xmit || e->sent_usec + wait > now_usec)
                        break;
                mark_lost(s, s->sent_head, true);
                lost = true;
        }
        if (lost) {
                uint64_t episodes = s->cc.n_loss_events;

                if (s->cc.in_recovery || xfer_cc_congested(&s->cc, &s->rtt))
                        xfer_cc_on_loss(&s->cc, s->next_new);
                if (s->cc.n_loss_events != episodes && s->reo_wnd_persist > 0 &&
                    --s->reo_wnd_persist == 0)
                        s->reo_wnd_mult = 1;
        }
        return lost;
}

int xfer_sender_on_ack(struct xfer_sender *s, const struct xfer_packet *ack, uint64_t rtt_usec,
                       uint64_t now_usec)
{
        int r = ack_check(s, ack);
        if (r < 0)
                return r;

        uint32_t old_cum = s->cum, newly = 0;

        /* Cumulative part: each block leaves the window here, once. */
        for (uint32_t b = s->cum; b < ack->cum; b++) {
                struct xfer_block *e = blk(s, b);

                if (e->state != XFER_BLOCK_DELIVERED) {
                        mark_delivered(s, b, now_usec);
                        newly++;
                }
                *e = (struct xfer_block) {};
        }
        if (ack->cum > s->cum)
                s->cum = ack->cum;

        /* Selective part: only what lies above cum counts (a stale ACK may
         * still carry news there). */
        for (unsigned i = 0; i < ack->n_ranges; i++) {
                uint32_t b = ack->ranges[i].start > s->cum ? ack->ranges[i].start : s->cum;
                uint32_t end = ack->ranges[i].end;

                while (b < end) {
                        if (blk(s, b)->state == XFER_BLOCK_DELIVERED) {
                                b = run_end_find(s, b);
                                continue;
                        }
                        mark_delivered(s, b, now_usec);
                        newly++;
                        b++;
                }
        }

        /* Slide cum over delivered blocks, clearing their entries. */
        if (s->cum < s->next_new && blk(s, s->cum)->state == XFER_BLOCK_DELIVERED) {
                uint32_t end = run_end_find(s, s->cum);

                for (uint32_t b = s->cum; b < end; b++)
                        *blk(s, b) = (struct xfer_block) {};
                s->cum = end;
        }

        /* rwnd counts from the ACK's cum; an ACK older than one already
         * applied must not shrink or widen the window (TCP's SND.WL1 rule). */
        if (ack->cum >= old_cum) {
                uint64_t edge = (uint64_t) ack->cum + ack->rwnd;

                s->rwnd = edge > s->cum ? (uint32_t) min_u64(edge - s->cum, UINT32_MAX) : 0;
        }

        if (newly > 0) {
                /* Only an ACK with news measures the path: the receiver
                 * repeats its last echo in ACKs it sends on a timer, after
                 * a duplicate or a repeated ACCEPT, and those would add the
                 * time it waited to the sample. */
                if (rtt_usec > 0)
                        xfer_rtt_sample(&s->rtt, rtt_usec);
                s->last_progress_usec = now_usec;
                /* The probes' job is done, or no longer needed. */
                s->probe_due = false;
                s->n_probes_out = 0;
                xfer_cc_on_delivered(&s->cc, newly, s->cum, s->next_new);
        }

        (void) rack_detect(s, now_usec);
        lost_fix(s);
        return (int) newly;
}

struct timers {
        uint64_t rto, reo, pto; /* UINT64_MAX: not armed */
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void timers_get(const struct xfer_sender *s, struct timers *ret)
{
        *ret = (struct timers) { UINT64_MAX, UINT64_MAX, UINT64_MAX };
        if (s->in_flight == 0 && s->n_lost == 0)
                return;

        /* RFC 6298 5.1 and 5.3: the timer runs from the last ACK that
         * delivered something, or from the oldest transmission still out if
         * that is later (the sender was idle before it); a probe restarts
         * it (RFC 8985 7.3). */
        uint64_t base = max_u64(s->last_progress_usec, s->probe_sent_usec);
        if (s->sent_head != NONE)
                base = max_u64(base, blk(s, s->sent_head)->sent_usec);
        ret->rto = add_sat(base, xfer_rtt_timeout(&s->rtt));

        if (s->sent_head != NONE) {
                const struct xfer_block *head = blk(s, s->sent_head);

                if (head->xmit < s->rack_xmit)
                        ret->reo = add_sat(head->sent_usec, s->rack_rtt_usec + reo_wnd(s));

                /* RFC 8985 7.2: 2 SRTT after the latest transmission (a
                 * probe is one) or progress, whichever is later, doubled
                 * for the second probe; never after the RTO, which it then
                 * stands in for. */
                if (!s->probe_due && s->n_probes_out < XFER_PROBES_MAX && s->rtt.has_sample) {
                        uint64_t last = max_u64(s->last_progress_usec,
                                                blk(s, s->sent_tail)->sent_usec);
                        uint64_t pto = 2 * s->rtt.srtt_usec + XFER_PTO_ACK_DELAY_USEC;

                        pto <<= s->n_probes_out;

                        ret->pto = min_u64(add_sat(last, pto), ret->rto);
                }
        }
}

uint64_t xfer_sender_deadline(const struct xfer_sender *s)
{
        struct timers t;

        timers_get(s, &t);
        return min_u64(t.rto, min_u64(t.reo, t.pto));
}

/* The retransmission timeout: go back and start over from cwnd 1. */
static void rto_fire(struct xfer_sender *s)
{
        uint32_t flight = s->in_flight;

        while (s->sent_head != NONE)
                mark_lost(s, s->sent_head, false);
        xfer_cc_on_timeout(&s->cc, flight);
        xfer_rtt_backoff(&s->rtt);
        /* Probing again before an ACK shows the path works would only
         * double what a dead path gets. */
        s->probe_due = false;
        s->n_probes_out = XFER_PROBES_MAX;
        lost_fix(s);
}

void xfer_sender_on_timer(struct xfer_sender *s, uint64_t now_usec)
{
        struct timers t;

        timers_get(s, &t);
        if (t.reo <= now_usec) {
                /* Losses first: the repairs go out next, and restart the
                 * probe and retransmission timers. */
                if (rack_detect(s, now_usec))
                        s->n_reo_timeouts++;
                lost_fix(s);
                return;
        }
        if (t.pto <= now_usec) {
                s->probe_due = true;
                s->n_probes++;
        } else if (t.rto <= now_usec)
                rto_fire(s);
}

/* ---- receiver ---- */

static bool bit_get(const struct xfer_receiver *r, uint32_t seq)
{
        uint32_t i = seq % r->window;

        return r->have[i / 8] & (1u << (i % 8));
}

/* The first block in [from, to) whose bit equals set, or to.  Whole bytes
 * and 64-bit words are skipped where they lie inside the ring without
 * wrapping; to <= cum + window and to <= n_blocks keep every index inside
 * the allocation (see ring_size()). */
static uint32_t bits_find(const struct xfer_receiver *r, uint32_t from, uint32_t to, bool set)
{
        while (from < to) {
                uint32_t i = from % r->window;

                if (i % 64 == 0 && i + 64 <= r->window && to - from >= 64) {
                        uint64_t w;

                        memcpy(&w, r->have + i / 8, sizeof w);
                        if (w == (set ? 0 : UINT64_MAX)) {
                                from += 64;
                                continue;
                        }
                }
                if (i % 8 == 0 && i + 8 <= r->window && to - from >= 8 &&
                    r->have[i / 8] == (set ? 0x00 : 0xff)) {
                        from += 8;
                        continue;
                }
                if (!!(r->have[i / 8] & (1u << (i % 8))) == set)
                        return from;
                from++;
        }
        return to;
}

/* One past the last block worth looking at: nothing at or above highest
 * has arrived, and nothing at or above cum + window or n_blocks is held. */
static uint32_t receiver_limit(const struct xfer_receiver *r)
{
        uint64_t lim = min_u64((uint64_t) r->cum + r->window, r->n_blocks);

        return (uint32_t) min_u64(lim, r->highest);
}

int xfer_receiver_init(struct xfer_receiver *r, uint32_t n_blocks, uint32_t window)
{
        if (window == 0 || window > NL_XFER_WINDOW_MAX)
                return -EINVAL;

        uint8_t *have = calloc(((size_t) ring_size(n_blocks, window) + 7) / 8, 1);
        if (!have)
                return -ENOMEM;

        *r = (struct xfer_receiver) {
                .n_blocks = n_blocks,
                .window = window,
                .have = have,
        };
        return 0;
}

void xfer_receiver_done(struct xfer_receiver *r)
{
        free(r->have);
        r->have = NULL;
}

int xfer_receiver_mark(struct xfer_receiver *r, uint32_t seq)
{
        if (seq >= r->n_blocks)
                return -ERANGE;
        if (seq < r->cum) {
                r->n_duplicates++;
                return 0;
        }
        if ((uint64_t) seq >= (uint64_t) r->cum + r->window)
                return -ERANGE;
        if (bit_get(r, seq)) {
                r->n_duplicates++;
                return 0;
        }

        uint32_t i = seq % r->window;
        r->have[i / 8] |= (uint8_t) (1u << (i % 8));
        if (seq >= r->highest)
                r->highest = seq + 1;
        return 1;
}

uint32_t xfer_receiver_ready(const struct xfer_receiver *r)
{
        return bits_find(r, r->cum, receiver_limit(r), false) - r->cum;
}

void xfer_receiver_advance(struct xfer_receiver *r, uint32_t k)
{
        k = (uint32_t) min_u64(k, r->n_blocks - r->cum);

        /* Clearing more than a window's worth would only repeat itself. */
        for (uint32_t j = 0; j < k && j < r->window; j++) {
                uint32_t i = (r->cum + j) % r->window;

                r->have[i / 8] &= (uint8_t) ~(1u << (i % 8));
        }
        r->cum += k;
        if (r->highest < r->cum)
                r->highest = r->cum;
}

bool xfer_receiver_has(const struct xfer_receiver *r, uint32_t seq)
{
        if (seq < r->cum || seq >= r->n_blocks || (uint64_t) seq >= (uint64_t) r->cum + r->window)
                return false;
        return bit_get(r, seq);
}

unsigned xfer_receiver_sack(const struct xfer_receiver *r, struct xfer_range *ranges, unsigned max)
{
        uint32_t lim = receiver_limit(r);
        unsigned n = 0;

        if (r->cum >= lim)
                return 0; /* also keeps cum + 1 below from wrapping */

        /* Strictly above cum: the wire wants start > cum. */
        for (uint32_t b = r->cum + 1; n < max && b < lim;) {
                uint32_t start = bits_find(r, b, lim, true);

                if (start >= lim)
                        break;
                uint32_t end = bits_find(r, start, lim, false);
                ranges[n++] = (struct xfer_range) { .start = start, .end = end };
                b = end;
        }
        return n;
}

/* ---- sizes ---- */

int xfer_block_count(uint64_t length, uint32_t block_size, uint32_t *ret)
{
        if (block_size == 0)
                return -EINVAL;

        uint64_t n = length / block_size + (length % block_size != 0);
        if (n > UINT32_MAX)
                return -EFBIG;
        *ret = (uint32_t) n;
        return 0;
}
