/* guard.h: the reflector guard of a udp listener (docs/PROTOCOL.md, 10).
 *
 * Decides, per datagram and before any service code runs, whether netlabd may
 * answer it at all: never to source port 0 or a blocked port, at most
 * rate_per_source replies per second (bursts of burst_per_source) to one
 * source, at most rate_total replies and bytes_total reply bytes per second
 * in all.  Pure bookkeeping over a fixed table: no syscalls after
 * guard_new(), no allocation per datagram, time passed in by the caller. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "siphash.h"

enum guard_verdict {
        GUARD_PASS,
        GUARD_PORT_ZERO,
        GUARD_BLOCKED_PORT,
        GUARD_SOURCE_RATE,
        GUARD_TOTAL_RATE,
        _GUARD_VERDICT_MAX,
};

/* Per source: GCRA (the "virtual scheduling" form of a token bucket, ITU-T
 * I.371): one theoretical arrival time per source.  An entry whose time has
 * passed behaves exactly like a fresh one, so it can be reused at no cost. */
struct guard_entry {
        struct in6_addr source;
        uint64_t tat_ns;       /* 0: empty */
};

struct guard {
        const struct dgram_config *cfg;
        struct siphash_key key;
        struct guard_entry *entries;
        size_t n_sets, ways;
        uint64_t source_interval_ns, source_tolerance_ns;
        uint64_t total_interval_ns, total_tolerance_ns, total_tat_ns;
        uint64_t bytes_tokens, bytes_last_ns;
};

/* Make a guard for cfg (which must outlive it).  Return: 0; -ENOMEM;
 * -EAGAIN if getrandom(2) has no entropy yet. */
int guard_init(struct guard *g, const struct dgram_config *cfg);
void guard_done(struct guard *g);

/* The table key of a source: an IPv4 address as ::ffff:a.b.c.d, an IPv6
 * address cut to its /64. */
void guard_source_key(const struct sockaddr *sa, struct in6_addr *ret);

/* May a datagram from sa get a reply of at most max_reply bytes, now?  On
 * GUARD_PASS the budgets are charged (max_reply bytes; see guard_refund).
 * Return: the verdict. */
enum guard_verdict guard_admit(struct guard *g, const struct sockaddr *sa, uint16_t port,
                               size_t max_reply, uint64_t now_ns);

/* Give back reply bytes charged by guard_admit() but not sent. */
void guard_refund(struct guard *g, size_t bytes);

const char *guard_verdict_name(enum guard_verdict v);
