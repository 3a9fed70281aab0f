/* xfer.h: the bookkeeping of netlab's UDP transfer (docs/PROTOCOL.md,
 * section 11), shared by the sender (netlabd's child) and the receiver
 * (netlabctl fetch --udp).  Pure: no I/O, no clock reads; callers pass the
 * time in microseconds (CLOCK_MONOTONIC) so every rule is unit-testable.
 *
 * Blocks are numbered 0..n_blocks-1 from the transfer's first byte.  Both
 * sides keep state only for a window of blocks starting at `cum` (the lowest
 * block not yet delivered), so memory is bounded by the negotiated window
 * whatever the file size.  ACK contents come from the network and are
 * checked here before they change anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* ---- retransmission timer: RFC 6298 ---- */

#define XFER_RTO_INITIAL_USEC (1000u * 1000u)     /* RFC 6298 2.1 */
#define XFER_RTO_MIN_USEC (200u * 1000u)          /* Linux's TCP_RTO_MIN, not RFC 6298's 1 s */
#define XFER_RTO_MAX_USEC (60u * 1000u * 1000u)   /* RFC 6298 2.5 */
#define XFER_CLOCK_GRANULARITY_USEC 1000u         /* G in RFC 6298 */

struct xfer_rtt {
        bool has_sample;
        uint64_t srtt_usec;
        uint64_t rttvar_usec;
        uint64_t min_rtt_usec;                    /* smallest sample seen (RACK's reordering window) */
        uint64_t latest_usec;
        uint64_t rto_usec;                        /* before backoff */
        unsigned backoff;                         /* doublings since the last sample (RFC 6298 5.5) */
};

void xfer_rtt_init(struct xfer_rtt *r);
/* A new measurement: RFC 6298 2.2 (first) or 2.3 (later), K = 4, alpha 1/8,
 * beta 1/4, RTO clamped to [XFER_RTO_MIN_USEC, XFER_RTO_MAX_USEC]; resets the
 * backoff. */
void xfer_rtt_sample(struct xfer_rtt *r, uint64_t rtt_usec);
/* The timeout to arm now: rto << backoff, at most XFER_RTO_MAX_USEC. */
uint64_t xfer_rtt_timeout(const struct xfer_rtt *r);
/* The timer expired: double the next timeout (RFC 6298 5.5). */
void xfer_rtt_backoff(struct xfer_rtt *r);

/* RTT of an echoed 32-bit microsecond timestamp: (now32 - echo) mod 2^32.
 * Return: true with *ret_usec if plausible (below XFER_RTO_MAX_USEC). */
bool xfer_rtt_from_echo(uint64_t now_usec, uint32_t echo, uint64_t *ret_usec);
/* The 32-bit timestamp put on the wire for now_usec. */
static inline uint32_t xfer_timestamp(uint64_t now_usec)
{
        return (uint32_t) now_usec;
}

/* ---- congestion control: AIMD in blocks (RFC 5681, with a gentler decrease,
 * cutting only for losses that signal congestion: xfer_cc_congested()) ---- */

#define XFER_CWND_INITIAL 10u                     /* RFC 6928's IW10 */
#define XFER_CWND_MIN 2u
#define XFER_BETA_NUM 7u                          /* cut cwnd to 7/10 on loss (RFC 9438's beta) */
#define XFER_BETA_DEN 10u
#define XFER_QUEUE_DELAY_MIN_USEC 1000u           /* queueing delay that means congestion, at least */
#define XFER_LOSS_THRESH_PERMILLE 50u             /* loss rate that means congestion: 5% */
#define XFER_LOSS_SAMPLE_MIN 50u                  /* blocks a loss rate needs to count */

struct xfer_cc {
        uint32_t cwnd;                            /* blocks that may be in flight */
        uint32_t ssthresh;
        uint32_t cwnd_max;                        /* the negotiated window */
        uint32_t acked_in_ca;                     /* congestion avoidance: deliveries toward +1 */
        bool in_recovery;
        uint32_t recovery_end;                    /* recovery ends when cum passes this block */
        /* Loss rate per round trip (xfer_cc_congested()): a round ends when
         * cum passes round_end, the highest block sent when it began. */
        uint32_t round_end;
        uint32_t round_delivered, round_lost;
        uint32_t prev_delivered, prev_lost;       /* the round before */
        bool every_loss_is_congestion;            /* classic AIMD: skip xfer_cc_congested()'s test */
        uint64_t n_loss_events;                   /* statistics: cuts */
        uint64_t n_random_losses;                 /* losses judged random: no cut */
        uint64_t n_timeouts;
};

void xfer_cc_init(struct xfer_cc *cc, uint32_t cwnd_max);
/* newly_delivered blocks were acknowledged (cumulatively or selectively) and
 * cum is now the lowest undelivered block.  Slow start below ssthresh (+1
 * per block), else +1 per cwnd blocks; no growth during recovery; recovery
 * ends once cum > recovery_end.  Never above cwnd_max. */
void xfer_cc_on_delivered(struct xfer_cc *cc, uint32_t newly_delivered, uint32_t cum,
                          uint32_t highest_sent);
/* Round accounting: n blocks were just declared lost. */
void xfer_cc_count_lost(struct xfer_cc *cc, uint32_t n);
/* Does the loss just detected mean congestion?  A loss-based sender that
 * cuts for every loss cannot use a path with random (non-congestive) loss:
 * at 2% it settles near a dozen blocks per round trip whatever the path's
 * capacity.  So, like TCP Veno (Fu and Liew, 2003) and BBRv2's loss
 * threshold, a loss counts as congestion only when a queue is building or
 * the loss rate is high:
 *   - queueing delay: srtt - min_rtt over max(XFER_QUEUE_DELAY_MIN_USEC,
 *     min_rtt / 8) (a drop-tail bottleneck that overflows has a full queue
 *     in front of it, so its losses come with a longer RTT);
 *   - loss rate: over the current and the previous round, at least
 *     XFER_LOSS_SAMPLE_MIN blocks, more than XFER_LOSS_THRESH_PERMILLE;
 *   - no RTT sample yet, or every_loss_is_congestion: congestion.
 * Return: true if the caller should cut (xfer_cc_on_loss()); false counts
 * a random loss. */
bool xfer_cc_congested(struct xfer_cc *cc, const struct xfer_rtt *rtt);
/* Loss detected (not by timeout).  highest_sent: one past the highest block
 * sent so far.  Outside recovery: ssthresh = cwnd = max(cwnd * beta, MIN) and
 * recovery starts, lasting until highest_sent - 1 is delivered; inside
 * recovery nothing changes (one cut per window, RFC 6582). */
void xfer_cc_on_loss(struct xfer_cc *cc, uint32_t highest_sent);
/* The retransmission timer expired with in_flight blocks outstanding:
 * ssthresh = max(in_flight / 2, MIN), cwnd = 1, recovery ends (RFC 5681 3.1). */
void xfer_cc_on_timeout(struct xfer_cc *cc, uint32_t in_flight);

/* ---- the sender's scoreboard ---- */

enum xfer_block_state {
        XFER_BLOCK_UNSENT = 0,
        XFER_BLOCK_IN_FLIGHT,
        XFER_BLOCK_LOST,                          /* to be sent again */
        XFER_BLOCK_DELIVERED,                     /* selectively acknowledged */
};

struct xfer_block {
        uint64_t sent_usec;                       /* last transmission */
        uint64_t xmit;                            /* private to xfer.c: its number (s->n_sent then):
                                                   * RACK's "sent after" order */
        uint32_t run_end;                         /* private to xfer.c: DELIVERED: every block in
                                                   * [this, run_end) is delivered (skip pointer) */
        uint32_t prev, next;                      /* private to xfer.c: IN_FLIGHT: send-time list */
        uint8_t state;
        uint8_t n_sent;                           /* transmissions, saturating */
        bool rack_lost;                           /* private to xfer.c: RACK (not the RTO) last
                                                   * declared it lost */
};

/* RACK's reordering window (RFC 8985 6.2): min_rtt / 4 x a multiplier that
 * grows when reordering is seen, at most SRTT, at least this.  The floor
 * covers clock reads and the receiver's batching on a LAN with an RTT of
 * tens of microseconds; it is far below any RTO, so a loss is still repaired
 * within about an RTT. */
#define XFER_REO_WND_MIN_USEC 100u
#define XFER_REO_WND_MULT_MAX 64u
#define XFER_REO_WND_PERSIST 16u                  /* recoveries before the multiplier is 1 again */
/* The tail loss probe's allowance for the receiver's ACK delay, on top of
 * 2 x SRTT (RFC 8985 7.2).  netlabctl never holds an ACK back on purpose (it
 * ACKs every drained receive batch), so TCP's delayed-ACK allowance (200 ms)
 * does not apply; what remains is the time until the receiving process runs
 * and the sender's own wake-up, which on a busy machine is a scheduler tick
 * (1-4 ms).  1 ms keeps a tail loss on a LAN from costing more than a few
 * milliseconds; a probe that fires too early costs one block (usually a new
 * one), never a window cut. */
#define XFER_PTO_ACK_DELAY_USEC 1000u
/* Probes before the RTO, the second after twice the PTO.  RFC 8985 sends
 * one and leaves the rest to the RTO; with a 200 ms RTO floor that turns a
 * lost probe (or its lost ACK: 4% of probes at 2% loss each way) into a
 * stall of thousands of round trips on a LAN.  QUIC probes repeatedly with
 * a doubling PTO instead (RFC 9002 6.2.4); two probes and then the RTO keep
 * that gain and the RTO's collapse for paths that answer nothing. */
#define XFER_PROBES_MAX 2u

struct xfer_sender {
        uint32_t n_blocks;                        /* in the whole transfer */
        uint32_t window;                          /* negotiated: ring size */
        struct xfer_block *ring;                  /* block b at ring[b % window], b in [cum, cum + window) */
        uint32_t cum;                             /* every block below is delivered */
        uint32_t next_new;                        /* lowest block never sent */
        uint32_t rwnd;                            /* the receiver's latest window from cum */
        uint32_t in_flight;                       /* IN_FLIGHT blocks */
        uint32_t n_lost;                          /* LOST blocks */
        uint64_t rack_sent_usec;                  /* RACK.xmit_ts: send time of the most recently
                                                   * sent delivered block */
        uint64_t rack_rtt_usec;                   /* RACK.rtt: its round trip */
        uint64_t last_progress_usec;              /* last time an ACK delivered something */
        struct xfer_rtt rtt;
        struct xfer_cc cc;
        uint64_t n_sent, n_retransmitted;         /* statistics */
        uint64_t n_probes;                        /* statistics: tail loss probes */
        uint64_t n_reo_timeouts;                  /* statistics: reordering timer expiries */
        uint64_t n_spurious;                      /* statistics: blocks RACK declared lost that
                                                   * had arrived after all */
        /* private to xfer.c */
        uint64_t rack_xmit;                       /* xmit of the RACK block: candidates are below */
        uint64_t reo_grown_usec;                  /* when reo_wnd_mult last grew */
        uint32_t reo_wnd_mult;                    /* reo_wnd = min_rtt / 4 x this (RFC 8985 6.2) */
        uint32_t reo_wnd_persist;                 /* recoveries left before it is 1 again */
        uint64_t probe_sent_usec;                 /* the latest probe's transmission */
        uint8_t n_probes_out;                     /* probes since the last progress (MAX after an RTO) */
        bool probe_due;                           /* the next transmission is a probe */
        uint32_t lost_lo;                         /* n_lost > 0: the lowest LOST block */
        uint32_t sent_head, sent_tail;            /* IN_FLIGHT blocks, oldest transmission first */
};

/* Set up for n_blocks blocks (0 is fine: nothing to send) and a window of
 * 1..NL_XFER_WINDOW_MAX blocks.  rwnd starts at window.
 * Return: 0; -ENOMEM; -EINVAL. */
int xfer_sender_init(struct xfer_sender *s, uint32_t n_blocks, uint32_t window, uint64_t now_usec);
void xfer_sender_done(struct xfer_sender *s);

/* The next block to transmit now: the lowest LOST one first, else the next
 * new one, as long as in_flight < cwnd and the block is below
 * cum + min(rwnd, window).  When a tail loss probe is due (see
 * xfer_sender_on_timer()), one block goes whatever cwnd says: the lowest
 * LOST one, else a new one if rwnd and the window allow, else the most
 * recently sent block still in flight again.  Return: true with *ret_seq;
 * false if nothing may be sent now. */
bool xfer_sender_next(const struct xfer_sender *s, uint32_t *ret_seq);
/* Block seq (as returned by xfer_sender_next()) left at now_usec.  The first
 * transmission after a probe fell due is the probe. */
void xfer_sender_sent(struct xfer_sender *s, uint32_t seq, uint64_t now_usec);

/* Apply an ACK.  rtt_usec: a sample from its echo (0: none); it is used only
 * if the ACK delivers something new: a repeated ACK echoes an old DATA's
 * timestamp and would inflate the estimate (RFC 7323 4.3's rule).  Marks
 * blocks below ack->cum and inside its ranges delivered, takes ack->rwnd,
 * then detects loss with RACK (RFC 8985 6.2): of the IN_FLIGHT blocks sent
 * before the most recently sent delivered block (the RACK block), one is
 * lost once it has been out for RACK.rtt + reo_wnd; the younger ones wait
 * for the reordering timer (xfer_sender_deadline()).  reo_wnd = min_rtt / 4
 * x a multiplier, at most SRTT, at least XFER_REO_WND_MIN_USEC; the
 * multiplier grows by one (once per SRTT) when a block RACK declared lost
 * turns out to have arrived (acknowledged before it was resent, or sooner
 * than min_rtt after: RFC 8985 learns this from DSACK, which this protocol
 * does not have), and returns to 1 after XFER_REO_WND_PERSIST recoveries.
 * A loss calls xfer_cc_on_loss().  An ACK older than what is known (cum
 * below s->cum) is not an error: its ranges still count, its rwnd is
 * ignored.
 * Return: the number of blocks newly delivered (>= 0); -EBADMSG if the ACK
 * acknowledges a block never sent (cum or a range end above next_new) or
 * beyond n_blocks: the peer is broken or hostile. */
int xfer_sender_on_ack(struct xfer_sender *s, const struct xfer_packet *ack, uint64_t rtt_usec,
                       uint64_t now_usec);

/* The sender's one timer: when xfer_sender_on_timer() must run next, the
 * earliest of
 *   - the reordering timer (RFC 8985 6.2): the oldest IN_FLIGHT block sent
 *     before the RACK block, at its send time + RACK.rtt + reo_wnd;
 *   - the tail loss probe (RFC 8985 7.2): the later of the last progress and
 *     the latest transmission + PTO, PTO = 2 x SRTT + XFER_PTO_ACK_DELAY_USEC,
 *     doubled for the second probe, never later than the RTO; only with an
 *     RTT sample, blocks in flight, and fewer than XFER_PROBES_MAX probes
 *     since the last progress;
 *   - the retransmission timeout (RFC 6298), the last resort: the latest of
 *     the last progress, the oldest IN_FLIGHT block's transmission and the
 *     latest probe's, + xfer_rtt_timeout().
 * Return: CLOCK_MONOTONIC microseconds; UINT64_MAX if nothing is in flight
 * or lost. */
uint64_t xfer_sender_deadline(const struct xfer_sender *s);
/* The timer fired (call it when now_usec >= xfer_sender_deadline()):
 *   - reordering timer: the blocks whose time is up are LOST,
 *     xfer_cc_on_loss() (a beta cut, once per recovery), no backoff;
 *   - probe: one probe falls due, cwnd unchanged (xfer_sender_next()
 *     offers it; its ACK brings the SACK state RACK needs); an ACK that
 *     delivers something ends the probing;
 *   - RTO: every IN_FLIGHT block becomes LOST, xfer_cc_on_timeout() (cwnd
 *     1), xfer_rtt_backoff(), and no probe until an ACK delivers something.
 * Early or spurious calls change nothing that is not due. */
void xfer_sender_on_timer(struct xfer_sender *s, uint64_t now_usec);

static inline bool xfer_sender_complete(const struct xfer_sender *s)
{
        return s->cum >= s->n_blocks;
}

/* ---- the receiver's window ---- */

struct xfer_receiver {
        uint32_t n_blocks;
        uint32_t window;                          /* blocks it can hold from cum on */
        uint8_t *have;                            /* bitmap: block b at bit b % window, b in [cum, cum + window) */
        uint32_t cum;                             /* every block below has arrived (and was passed on) */
        uint32_t highest;                         /* one past the highest block that arrived */
        uint64_t n_duplicates;                    /* statistics */
};

/* Return: 0; -ENOMEM; -EINVAL (window 0 or over NL_XFER_WINDOW_MAX). */
int xfer_receiver_init(struct xfer_receiver *r, uint32_t n_blocks, uint32_t window);
void xfer_receiver_done(struct xfer_receiver *r);

/* Block seq arrived.  Return: 1 if new (the caller keeps its data); 0 if a
 * duplicate (below cum or already held); -ERANGE if at or past n_blocks or
 * at or beyond cum + window (the sender broke the window). */
int xfer_receiver_mark(struct xfer_receiver *r, uint32_t seq);
/* How many blocks from cum on have arrived without a gap: the caller passes
 * them on in order (blocks cum .. cum + k - 1) and then calls
 * xfer_receiver_advance(r, k). */
uint32_t xfer_receiver_ready(const struct xfer_receiver *r);
void xfer_receiver_advance(struct xfer_receiver *r, uint32_t k);
/* Is block seq held (cum <= seq < cum + window and arrived)? */
bool xfer_receiver_has(const struct xfer_receiver *r, uint32_t seq);
/* Fill up to max SACK ranges of held blocks above cum, lowest first
 * (every range starts above cum, as the wire wants).  Return: how many. */
unsigned xfer_receiver_sack(const struct xfer_receiver *r, struct xfer_range *ranges, unsigned max);

static inline bool xfer_receiver_complete(const struct xfer_receiver *r)
{
        return r->cum >= r->n_blocks;
}

/* Number of blocks of a transfer of length bytes in blocks of block_size.
 * Return: 0 with *ret; -EFBIG if more than UINT32_MAX blocks; -EINVAL if
 * block_size is 0. */
int xfer_block_count(uint64_t length, uint32_t block_size, uint32_t *ret);
