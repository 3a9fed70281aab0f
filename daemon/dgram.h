/* dgram.h: a udp listener's runtime in the supervisor.
 *
 * Datagrams are received in batches (recvmmsg), each passed through the
 * reflector guard (guard.h), answered in place by the service's on_datagram()
 * and sent back in batches (sendmmsg).  No allocation per datagram, no fork:
 * a datagram service must answer without blocking and keep bounded state.
 * Drops are counted and logged as one aggregate entry per listener at most
 * every DGRAM_REPORT_USEC. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "guard.h"

struct request_log;
struct shared_stats;

#define DGRAM_BATCH 32                      /* datagrams per recvmmsg/sendmmsg */
#define DGRAM_BUFFER_SIZE 65536u            /* > any UDP payload: nothing is ever cut */
#define DGRAM_REPORT_USEC (10u * 1000000u)  /* aggregate log entries at most this often */
#define DGRAM_LOG_PER_SEC 50u               /* request entries per listener per second */

/* What a service's on_datagram() learns about the datagram besides its bytes. */
struct dgram_ctx {
        struct dgram *dgram;
        const struct listener_config *listener;
        const struct sockaddr *peer;
        socklen_t peer_len;
        uint16_t peer_port;
        uint64_t now_usec;                  /* CLOCK_MONOTONIC, read once per batch */
};

enum dgram_counter {
        DGRAM_REPLIES,
        DGRAM_REPLY_BYTES,
        DGRAM_DROP_PORT_ZERO,
        DGRAM_DROP_BLOCKED_PORT,
        DGRAM_DROP_SOURCE_RATE,
        DGRAM_DROP_TOTAL_RATE,
        DGRAM_DROP_OTHER,                   /* cut, oversized reply, send failure */
        DGRAM_LOG_SUPPRESSED,
        _DGRAM_COUNTER_MAX,
};

struct dgram {
        sd_event *event;
        const struct listener_config *cfg;  /* the config this runtime was made for */
        const struct service *service;
        void *state;                        /* the service's */
        struct guard guard;
        uint64_t counters[_DGRAM_COUNTER_MAX];  /* since the last aggregate entry */
        uint64_t interval_start_usec;
        sd_event_source *report_timer;
        uint64_t log_second;                /* request entries: a budget per second */
        unsigned log_count;
        struct shared_stats *stats;
        bool io_held;                       /* holds a reference on the receive buffers */
};

/* Make the runtime of udp listener lc.  old: this listener's runtime before a
 * reload, or NULL; a service keeps what still fits the new config (guess
 * rounds in play).  old is only read.  Return: 0 and *ret; -ENOMEM; -EAGAIN
 * (no entropy yet); the error is logged. */
int dgram_new(sd_event *event, struct shared_stats *stats, const struct listener_config *lc,
              const struct dgram *old, struct dgram **ret);

/* Free a runtime (logging what its counters still hold).  Accepts NULL.
 * Return: NULL. */
struct dgram *dgram_free(struct dgram *dg);

/* Answer what is queued on fd, a bounded number of batches per call. */
void dgram_process(struct dgram *dg, int fd);

/* For services: write a request entry (listener, service and peer filled in
 * here), at most DGRAM_LOG_PER_SEC per second per listener; the rest are
 * counted as suppressed in the next aggregate entry. */
void dgram_log_request(struct dgram_ctx *ctx, struct request_log *entry);
