/* guard.c: see guard.h.  Trusts nothing about the source address: it is the
 * attacker's choice, which is why the table is keyed (siphash.h), bounded and
 * never grows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "guard.h"
#include "util.h"

#define NSEC_PER_SEC 1000000000ull
#define GUARD_WAYS 8u

void guard_source_key(const struct sockaddr *sa, struct in6_addr *ret)
{
        children_source_key(sa, ret);
        /* One subscriber usually holds a whole /64: rate it as one source. */
        if (!IN6_IS_ADDR_V4MAPPED(ret))
                memset(&ret->s6_addr[8], 0, 8);
}

int guard_init(struct guard *g, const struct dgram_config *cfg)
{
        size_t n = (size_t) cfg->sources_max;
        int r;

        *g = (struct guard) { .cfg = cfg };
        r = siphash_key_random(&g->key);
        if (r < 0)
                return r;
        g->ways = n < GUARD_WAYS ? n : GUARD_WAYS;
        g->n_sets = (n + g->ways - 1) / g->ways;
        g->entries = calloc(g->n_sets * g->ways, sizeof *g->entries);
        if (!g->entries)
                return -ENOMEM;

        /* Rates are at most 10^8 per second, so intervals are >= 10 ns. */
        g->source_interval_ns = NSEC_PER_SEC / (uint64_t) cfg->rate_per_source;
        g->source_tolerance_ns = g->source_interval_ns * (uint64_t) (cfg->burst_per_source - 1);
        g->total_interval_ns = NSEC_PER_SEC / (uint64_t) cfg->rate_total;
        /* The listener as a whole may burst one second's worth. */
        g->total_tolerance_ns = NSEC_PER_SEC - g->total_interval_ns;
        g->bytes_tokens = (uint64_t) cfg->bytes_total;
        return 0;
}

void guard_done(struct guard *g)
{
        free(g->entries);
        g->entries = NULL;
}

static bool conforms(uint64_t tat, uint64_t tolerance, uint64_t now)
{
        return tat <= now || tat - now <= tolerance;
}

static uint64_t next_tat(uint64_t tat, uint64_t interval, uint64_t now)
{
        return (tat > now ? tat : now) + interval;
}

/* The entry for source, or the one to replace with it. */
static struct guard_entry *find_slot(struct guard *g, const struct in6_addr *source, uint64_t now,
                                     bool *ret_found)
{
        uint64_t h = siphash24(&g->key, source, sizeof *source);
        struct guard_entry *set = g->entries + (h % g->n_sets) * g->ways;
        struct guard_entry *victim = &set[0];

        for (size_t i = 0; i < g->ways; i++) {
                if (set[i].tat_ns != 0 && memcmp(&set[i].source, source, sizeof *source) == 0) {
                        *ret_found = true;
                        return &set[i];
                }
                /* Prefer an entry that is as good as fresh (its time has
                 * passed), else the one closest to it: evicting that source
                 * only forgets how little it was limited. */
                if (victim->tat_ns > now && set[i].tat_ns < victim->tat_ns)
                        victim = &set[i];
        }
        *ret_found = false;
        return victim;
}

static void refill_bytes(struct guard *g, uint64_t now)
{
        uint64_t cap = (uint64_t) g->cfg->bytes_total;

        if (now <= g->bytes_last_ns)
                return;
        uint64_t elapsed = now - g->bytes_last_ns;
        if (elapsed > NSEC_PER_SEC)
                elapsed = NSEC_PER_SEC; /* the bucket holds one second's worth */
        uint64_t add = (uint64_t) ((unsigned __int128) elapsed * cap / NSEC_PER_SEC);
        g->bytes_tokens = g->bytes_tokens + add > cap ? cap : g->bytes_tokens + add;
        /* Advance only by what was credited, so slow trickles add up. */
        g->bytes_last_ns = add == 0 ? g->bytes_last_ns
                                    : g->bytes_last_ns + (uint64_t) ((unsigned __int128) add * NSEC_PER_SEC / cap);
        if (g->bytes_tokens == cap)
                g->bytes_last_ns = now;
}

enum guard_verdict guard_admit(struct guard *g, const struct sockaddr *sa, uint16_t port,
                               size_t max_reply, uint64_t now_ns)
{
        struct in6_addr source;
        bool found;

        if (port == 0)
                return GUARD_PORT_ZERO;
        if (port_list_has(&g->cfg->blocked_source_ports, port))
                return GUARD_BLOCKED_PORT;

        /* Time 0 marks an empty entry; the monotonic clock is past it anyway. */
        if (now_ns == 0)
                now_ns = 1;
        guard_source_key(sa, &source);
        struct guard_entry *e = find_slot(g, &source, now_ns, &found);
        if (found && !conforms(e->tat_ns, g->source_tolerance_ns, now_ns))
                return GUARD_SOURCE_RATE;

        /* Check every budget before charging any. */
        if (!conforms(g->total_tat_ns, g->total_tolerance_ns, now_ns))
                return GUARD_TOTAL_RATE;
        refill_bytes(g, now_ns);
        if (g->bytes_tokens < max_reply)
                return GUARD_TOTAL_RATE;

        g->total_tat_ns = next_tat(g->total_tat_ns, g->total_interval_ns, now_ns);
        g->bytes_tokens -= max_reply;
        if (!found) {
                e->source = source;
                e->tat_ns = 0;
        }
        e->tat_ns = next_tat(e->tat_ns, g->source_interval_ns, now_ns);
        return GUARD_PASS;
}

void guard_refund(struct guard *g, size_t bytes)
{
        uint64_t cap = (uint64_t) g->cfg->bytes_total;

        g->bytes_tokens = g->bytes_tokens + bytes > cap ? cap : g->bytes_tokens + bytes;
}

const char *guard_verdict_name(enum guard_verdict v)
{
        static const char *const names[_GUARD_VERDICT_MAX] = {
                [GUARD_PASS] = "pass",
                [GUARD_PORT_ZERO] = "port-zero",
                [GUARD_BLOCKED_PORT] = "blocked-port",
                [GUARD_SOURCE_RATE] = "source-rate",
                [GUARD_TOTAL_RATE] = "total-rate",
        };
        return (unsigned) v < _GUARD_VERDICT_MAX ? names[v] : "unknown";
}
