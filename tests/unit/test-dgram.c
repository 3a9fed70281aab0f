/* test-dgram.c: SipHash-2-4 (daemon/siphash.c) against reference outputs,
 * and the reflector guard (daemon/guard.c) with a synthetic clock: port
 * rules, per-source buckets (IPv4, IPv6 /64, v4-mapped), the total budgets,
 * refunds, and a bounded table under a flood of sources. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "siphash.h"
#include "test-util.h"
#include "util.h"

#define MS 1000000ull /* ns */

static void test_siphash(void)
{
        /* Key 00..0f, message 00 01 02 ... of each length: the paper's
         * vectors, cross-checked with `openssl mac ... SIPHASH`. */
        static const struct { size_t n; uint64_t want; } cases[] = {
                { 0, 0x726fdb47dd0e0e31ull }, { 1, 0x74f839c593dc67fdull },
                { 7, 0xab0200f58b01d137ull }, { 8, 0x93f5f5799a932462ull },
                { 15, 0xa129ca6149be45e5ull }, { 16, 0x3f2acc7f57c29bdbull },
                { 63, 0x958a324ceb064572ull },
        };
        struct siphash_key key = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };
        uint8_t msg[64];

        for (size_t i = 0; i < sizeof msg; i++)
                msg[i] = (uint8_t) i;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("siphash24, %zu bytes", cases[i].n);
                uint8_t *copy = test_dup_exact(msg, cases[i].n);
                CHECK_U64(siphash24(&key, copy, cases[i].n), cases[i].want);
                free(copy);
        }

        TEST_CASE("random keys differ");
        struct siphash_key a, b;
        if (CHECK_ERR(siphash_key_random(&a), 0) && CHECK_ERR(siphash_key_random(&b), 0))
                CHECK(a.k0 != b.k0 || a.k1 != b.k1);
}

static uint16_t blocked[] = { 7, 19 };

static struct dgram_config config(int64_t rate, int64_t burst, int64_t total, int64_t bytes, int64_t sources)
{
        return (struct dgram_config) {
                .rate_per_source = rate, .burst_per_source = burst, .rate_total = total,
                .bytes_total = bytes, .sources_max = sources,
                .blocked_source_ports = { .ports = blocked, .n = ELEMENTSOF(blocked) },
        };
}

static struct sockaddr_storage v4(const char *addr, uint16_t port)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
                abort();
        return ss;
}

static struct sockaddr_storage v6(const char *addr, uint16_t port)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
                abort();
        return ss;
}

static enum guard_verdict admit(struct guard *g, const struct sockaddr_storage *ss, size_t bytes, uint64_t now)
{
        uint16_t port = ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *) ss)->sin_port)
                                                 : ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
        return guard_admit(g, (const struct sockaddr *) ss, port, bytes, now);
}

/* How many of n datagrams at time now pass. */
static unsigned burst(struct guard *g, const struct sockaddr_storage *ss, unsigned n, uint64_t now)
{
        unsigned pass = 0;

        for (unsigned i = 0; i < n; i++)
                pass += admit(g, ss, 10, now) == GUARD_PASS;
        return pass;
}

static void test_guard(void)
{
        const uint64_t t0 = 1000000 * MS;
        struct dgram_config cfg = config(10, 20, 1000000, 1000000000, 1024);
        struct guard g;

        TEST_CASE("guard: init");
        if (!CHECK_ERR(guard_init(&g, &cfg), 0))
                return;

        struct sockaddr_storage a = v4("192.0.2.1", 40000), b = v4("192.0.2.2", 40000);
        TEST_CASE("guard: port 0 and blocked ports");
        struct sockaddr_storage p0 = v4("192.0.2.9", 0), p7 = v4("192.0.2.9", 7), p19 = v6("2001:db8::9", 19);
        CHECK_INT(admit(&g, &p0, 10, t0), GUARD_PORT_ZERO);
        CHECK_INT(admit(&g, &p7, 10, t0), GUARD_BLOCKED_PORT);
        CHECK_INT(admit(&g, &p19, 10, t0), GUARD_BLOCKED_PORT);

        TEST_CASE("guard: a burst of 20, then the 21st is refused");
        CHECK_INT(burst(&g, &a, 20, t0), 20);
        CHECK_INT(admit(&g, &a, 10, t0), GUARD_SOURCE_RATE);
        TEST_CASE("guard: another source is not affected");
        CHECK_INT(burst(&g, &b, 20, t0), 20);
        TEST_CASE("guard: one more after 100 ms (10 per second), not two");
        CHECK_INT(burst(&g, &a, 2, t0 + 100 * MS), 1);
        TEST_CASE("guard: the whole burst again after 2 s");
        CHECK_INT(burst(&g, &a, 25, t0 + 2100 * MS), 20);
        TEST_CASE("guard: another port of the same address shares the bucket");
        struct sockaddr_storage a2 = v4("192.0.2.1", 50000);
        CHECK_INT(admit(&g, &a2, 10, t0 + 2100 * MS), GUARD_SOURCE_RATE);

        TEST_CASE("guard: IPv6 /64 is one source, v4-mapped is IPv4");
        struct sockaddr_storage x1 = v6("2001:db8:1:2::1", 1000), x2 = v6("2001:db8:1:2:ffff::2", 1001);
        struct sockaddr_storage y = v6("2001:db8:1:3::1", 1000), m = v6("::ffff:192.0.2.1", 1000);
        const uint64_t t1 = t0 + 2100 * MS; /* the clock never goes back */
        CHECK_INT(burst(&g, &x1, 20, t1), 20);
        CHECK_INT(admit(&g, &x2, 10, t1), GUARD_SOURCE_RATE);
        CHECK_INT(admit(&g, &y, 10, t1), GUARD_PASS);
        CHECK_INT(admit(&g, &m, 10, t1), GUARD_SOURCE_RATE);
        guard_done(&g);

        TEST_CASE("guard: the total rate, a second's worth of burst");
        cfg = config(1000, 1000, 5, 1000000000, 1024);
        if (CHECK_ERR(guard_init(&g, &cfg), 0)) {
                unsigned pass = 0;
                for (int i = 0; i < 10; i++) {
                        char addr[32];
                        (void) xsnprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
                        struct sockaddr_storage s = v4(addr, 40000);
                        pass += admit(&g, &s, 10, t0) == GUARD_PASS;
                }
                CHECK_INT(pass, 5);
                CHECK_INT(admit(&g, &a, 10, t0), GUARD_TOTAL_RATE);
                CHECK_INT(admit(&g, &a, 10, t0 + 200 * MS), GUARD_PASS);
                guard_done(&g);
        }

        TEST_CASE("guard: the byte budget and refunds");
        cfg = config(1000, 1000, 1000, 2048, 1024);
        if (CHECK_ERR(guard_init(&g, &cfg), 0)) {
                CHECK_INT(admit(&g, &a, 1000, t0), GUARD_PASS);
                CHECK_INT(admit(&g, &a, 1000, t0), GUARD_PASS);
                CHECK_INT(admit(&g, &a, 1000, t0), GUARD_TOTAL_RATE);
                guard_refund(&g, 1000);
                CHECK_INT(admit(&g, &a, 1000, t0), GUARD_PASS);
                /* 2048 bytes per second: 1000 more after about half a second. */
                CHECK_INT(admit(&g, &a, 1000, t0 + 400 * MS), GUARD_TOTAL_RATE);
                CHECK_INT(admit(&g, &a, 1000, t0 + 600 * MS), GUARD_PASS);
                guard_done(&g);
        }

        TEST_CASE("guard: a flood of sources stays in a table of 16");
        cfg = config(1, 1, 100000000, 100000000000, 16);
        if (CHECK_ERR(guard_init(&g, &cfg), 0)) {
                CHECK_U64(g.n_sets * g.ways, 16);
                unsigned pass = 0;
                for (unsigned i = 0; i < 100000; i++) {
                        struct sockaddr_storage s = {};
                        struct sockaddr_in *in = (struct sockaddr_in *) &s;
                        in->sin_family = AF_INET;
                        in->sin_port = htons(40000);
                        in->sin_addr.s_addr = htonl(0x0a000000u + i);
                        pass += admit(&g, &s, 10, t0) == GUARD_PASS;
                }
                /* Each new source passes once (a fresh bucket of 1). */
                CHECK_INT(pass, 100000);
                guard_done(&g);
        }

        TEST_CASE("guard: verdict names");
        CHECK_STR(guard_verdict_name(GUARD_SOURCE_RATE), "source-rate");
        CHECK_STR(guard_verdict_name(_GUARD_VERDICT_MAX), "unknown");
}

int main(void)
{
        test_siphash();
        test_guard();
        return test_finish();
}
