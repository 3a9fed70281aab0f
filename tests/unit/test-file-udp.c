/* test-file-udp.c: the udp file listener's supervisor half
 * (daemon/svc-file-udp.c) without sockets or forks: the address-validation
 * cookie with a synthetic clock (lifetime boundaries, every bound field,
 * tampering, IPv4 and v4-mapped IPv6 alike), the bounded transfer table and
 * its hand-over at a reload, and on_datagram() itself on crafted datagrams
 * (what is answered, with how many bytes, and what is dropped). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "config.h"
#include "dgram.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "svc-file-udp.h"
#include "svc-file.h"
#include "test-util.h"
#include "util.h"

#define SEC 1000000ull /* usec */

/* A numeric IPv4 or IPv6 address and a port, as recvmmsg() would fill it. */
static struct sockaddr_storage peer_at(const char *addr, uint16_t port)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

        if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
        } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
        } else
                abort();
        return ss;
}

#define SA(ss) ((const struct sockaddr *) &(ss))

static const struct file_udp_cookie_key key = {
        .k = { { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull },
               { 0x1716151413121110ull, 0x1f1e1d1c1b1a1918ull } },
};

static void test_cookie(void)
{
        struct sockaddr_storage a = peer_at("192.0.2.7", 40000);
        uint8_t c[FILE_UDP_COOKIE_SIZE];
        const uint64_t t0 = 1000 * SEC; /* made at exactly second 1000 */

        TEST_CASE("cookie: layout");
        file_udp_cookie_make(&key, t0 + 999999, 42, SA(a), c);
        CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0x03 && c[3] == 0xe8); /* 1000, big-endian */

        TEST_CASE("cookie: deterministic, and bound to its inputs");
        uint8_t again[FILE_UDP_COOKIE_SIZE], other[FILE_UDP_COOKIE_SIZE];
        file_udp_cookie_make(&key, t0, 42, SA(a), again);
        CHECK_MEM(again, sizeof again, c, sizeof c);
        file_udp_cookie_make(&key, t0, 43, SA(a), other);
        CHECK(memcmp(other + 4, c + 4, 16) != 0);

        TEST_CASE("cookie: valid from its second to 29 s later, expired at 30 s");
        static const struct { uint64_t at; enum file_udp_cookie_verdict want; } times[] = {
                { 1000 * SEC, FILE_UDP_COOKIE_VALID },
                { 1000 * SEC + 999999, FILE_UDP_COOKIE_VALID },
                { 1029 * SEC + 999999, FILE_UDP_COOKIE_VALID },
                { 1030 * SEC, FILE_UDP_COOKIE_EXPIRED },
                { 5000 * SEC, FILE_UDP_COOKIE_EXPIRED },
                { 999 * SEC + 999999, FILE_UDP_COOKIE_INVALID }, /* from the future */
        };
        for (size_t i = 0; i < ELEMENTSOF(times); i++)
                CHECK_INT(file_udp_cookie_check(&key, times[i].at, 42, SA(a), c, sizeof c), times[i].want);

        TEST_CASE("cookie: another client_id, port, address or key is invalid");
        struct sockaddr_storage port = peer_at("192.0.2.7", 40001), addr = peer_at("192.0.2.8", 40000);
        struct file_udp_cookie_key key2 = key;
        key2.k[1].k1 ^= 1;
        CHECK_INT(file_udp_cookie_check(&key, t0, 43, SA(a), c, sizeof c), FILE_UDP_COOKIE_INVALID);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(port), c, sizeof c), FILE_UDP_COOKIE_INVALID);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(addr), c, sizeof c), FILE_UDP_COOKIE_INVALID);
        CHECK_INT(file_udp_cookie_check(&key2, t0, 42, SA(a), c, sizeof c), FILE_UDP_COOKIE_INVALID);

        TEST_CASE("cookie: v4-mapped IPv6 is the same peer as IPv4");
        struct sockaddr_storage mapped = peer_at("::ffff:192.0.2.7", 40000);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(mapped), c, sizeof c), FILE_UDP_COOKIE_VALID);

        TEST_CASE("cookie: IPv6");
        struct sockaddr_storage b = peer_at("2001:db8::1", 5000), b2 = peer_at("2001:db8::2", 5000);
        file_udp_cookie_make(&key, t0, 7, SA(b), other);
        CHECK_INT(file_udp_cookie_check(&key, t0 + 5 * SEC, 7, SA(b), other, sizeof other), FILE_UDP_COOKIE_VALID);
        CHECK_INT(file_udp_cookie_check(&key, t0, 7, SA(b2), other, sizeof other), FILE_UDP_COOKIE_INVALID);

        TEST_CASE("cookie: every flipped bit is caught");
        unsigned caught = 0;
        for (size_t bit = 0; bit < 8 * sizeof c; bit++) {
                uint8_t t[FILE_UDP_COOKIE_SIZE];
                memcpy(t, c, sizeof t);
                t[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                caught += file_udp_cookie_check(&key, t0 + SEC, 42, SA(a), t, sizeof t) == FILE_UDP_COOKIE_INVALID;
        }
        CHECK_INT(caught, 8 * sizeof c);

        TEST_CASE("cookie: wrong lengths");
        uint8_t longer[FILE_UDP_COOKIE_SIZE + 1] = {};
        memcpy(longer, c, sizeof c);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(a), c, 0), FILE_UDP_COOKIE_INVALID);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(a), c, sizeof c - 1), FILE_UDP_COOKIE_INVALID);
        CHECK_INT(file_udp_cookie_check(&key, t0, 42, SA(a), longer, sizeof longer), FILE_UDP_COOKIE_INVALID);

        TEST_CASE("cookie: random keys");
        struct file_udp_cookie_key r1, r2;
        if (CHECK_ERR(file_udp_cookie_key_new(&r1), 0) && CHECK_ERR(file_udp_cookie_key_new(&r2), 0))
                CHECK(memcmp(&r1, &r2, sizeof r1) != 0);
}

static struct file_udp_transfer entry(pid_t pid, uint8_t last, uint16_t port, uint32_t client_id)
{
        struct file_udp_transfer e = { .pid = pid, .port = port, .client_id = client_id };

        e.addr.s6_addr[15] = last;
        return e;
}

static void test_table(void)
{
        struct file_udp_table t, next;

        TEST_CASE("table: capacity 0 is refused");
        CHECK_ERR(file_udp_table_init(&t, 0, NULL), -EINVAL);

        TEST_CASE("table: add up to the limit, find, count per source");
        if (!CHECK_ERR(file_udp_table_init(&t, 3, NULL), 0))
                return;
        struct file_udp_transfer a = entry(100, 1, 1000, 7), b = entry(101, 1, 1001, 7), c = entry(102, 2, 1000, 7);
        CHECK_ERR(file_udp_table_add(&t, &a), 0);
        CHECK_ERR(file_udp_table_add(&t, &b), 0);
        CHECK_ERR(file_udp_table_add(&t, &c), 0);
        struct file_udp_transfer d = entry(103, 3, 1, 1);
        CHECK_ERR(file_udp_table_add(&t, &d), -ENOSPC);
        CHECK_U64(t.n, 3);
        const struct file_udp_transfer *f = file_udp_table_find(&t, &a.addr, 1001, 7);
        CHECK(f && f->pid == 101);
        CHECK(file_udp_table_find(&t, &a.addr, 1001, 8) == NULL);  /* another client_id */
        CHECK(file_udp_table_find(&t, &a.addr, 1002, 7) == NULL);  /* another port */
        CHECK(file_udp_table_find(&t, &d.addr, 1000, 7) == NULL);  /* another address */
        CHECK_U64(file_udp_table_count_source(&t, &a.addr), 2);
        CHECK_U64(file_udp_table_count_source(&t, &c.addr), 1);
        CHECK_U64(file_udp_table_count_source(&t, &d.addr), 0);

        TEST_CASE("table: remove by pid");
        CHECK(file_udp_table_remove(&t, 100));
        CHECK(!file_udp_table_remove(&t, 100));
        CHECK(!file_udp_table_remove(&t, 999));
        CHECK_U64(t.n, 2);
        CHECK(file_udp_table_find(&t, &a.addr, 1000, 7) == NULL);
        f = file_udp_table_find(&t, &c.addr, 1000, 7);
        CHECK(f && f->pid == 102);
        CHECK_ERR(file_udp_table_add(&t, &d), 0);

        TEST_CASE("table: a reload with a lower limit keeps every running transfer");
        if (CHECK_ERR(file_udp_table_init(&next, 1, &t), 0)) {
                CHECK_U64(next.cap, 3);
                CHECK_U64(next.n, 3);
                CHECK(file_udp_table_find(&next, &d.addr, 1, 1) != NULL);
                CHECK(file_udp_table_find(&next, &b.addr, 1001, 7) != NULL);
                CHECK_ERR(file_udp_table_add(&next, &a), -ENOSPC);
                CHECK(file_udp_table_remove(&next, 101));
                CHECK_U64(t.n, 3); /* the old table is only read */
                file_udp_table_done(&next);
        }

        TEST_CASE("table: a reload with a higher limit");
        if (CHECK_ERR(file_udp_table_init(&next, 64, &t), 0)) {
                CHECK_U64(next.cap, 64);
                CHECK_U64(next.n, 3);
                CHECK_ERR(file_udp_table_add(&next, &a), 0);
                file_udp_table_done(&next);
        }
        file_udp_table_done(&t);
        CHECK(t.v == NULL && t.n == 0);
}

/* ---- on_datagram() ---- */

static size_t request(uint8_t *buf, size_t size, uint32_t client_id, const uint8_t *cookie, size_t cookie_len,
                      const char *path)
{
        uint8_t body[64];
        struct file_request get = {
                .type = NL_TYPE_FILE_GET, .path = (const uint8_t *) path, .path_len = strlen(path),
        };
        uint8_t frame[NL_HEADER_SIZE + sizeof body];
        int n = file_request_encode(frame, sizeof frame, &get);
        if (n < NL_HEADER_SIZE)
                abort();
        memcpy(body, frame + NL_HEADER_SIZE, (size_t) n - NL_HEADER_SIZE);

        struct xfer_packet p = {
                .type = NL_XFER_REQUEST, .client_id = client_id, .block_size = 65464, .window = 4096,
                .cookie = cookie, .cookie_len = cookie_len, .body = body, .body_len = (size_t) n - NL_HEADER_SIZE,
        };
        int k = xfer_packet_encode(buf, size, &p);
        if (k < 0)
                abort();
        return (size_t) k;
}

static void test_on_datagram(void)
{
        const struct service *svc = service_find("file", SOCK_DGRAM);
        struct file_options o = {
                .root = (char *) "/tmp", .block_size_max = 65464, .window_max = 4096,
                .max_transfers = 2, .max_transfers_per_source = 1,
        };
        struct listener_config lc = { .name = (char *) "fu", .options = &o, .service = svc };
        struct dgram dg = { .cfg = &lc, .service = svc }; /* no daemon: dgram_spawn() says -EOPNOTSUPP */
        struct sockaddr_storage peer = peer_at("192.0.2.7", 40000);
        struct dgram_ctx ctx = {
                .dgram = &dg, .listener = &lc, .peer = SA(peer), .peer_len = sizeof(struct sockaddr_in),
                .peer_port = 40000, .now_usec = 500 * SEC,
        };
        static uint8_t buf[DGRAM_BUFFER_SIZE];
        void *state = NULL;
        struct xfer_packet p;

        TEST_CASE("on_datagram: the service's declared limits");
        if (!CHECK(svc != NULL) || !CHECK_ERR(svc->dgram_state_new(&lc, NULL, &state), 0))
                return;
        CHECK_INT(svc->dgram_amplify, NL_XFER_AMPLIFY);
        CHECK(svc->dgram_reply_max >= 13 + NL_ERROR_TEXT_MAX);

        TEST_CASE("on_datagram: a REQUEST without a cookie gets a RETRY of 29 bytes");
        size_t n = request(buf, sizeof buf, 42, NULL, 0, "a.txt");
        CHECK_U64(n, NL_XFER_REQUEST_MIN);
        ssize_t k = svc->on_datagram(state, &ctx, buf, n, sizeof buf);
        uint8_t cookie[NL_XFER_COOKIE_MAX];
        size_t cookie_len = 0;
        if (CHECK_INT(k, 29) && CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0)) {
                CHECK_INT(p.type, NL_XFER_RETRY);
                CHECK_INT(p.client_id, 42);
                CHECK_U64(p.cookie_len, FILE_UDP_COOKIE_SIZE);
                memcpy(cookie, p.cookie, p.cookie_len);
                cookie_len = p.cookie_len;
        }

        TEST_CASE("on_datagram: a forged cookie is dropped silently");
        uint8_t forged[FILE_UDP_COOKIE_SIZE] = { 0, 0, 1, 0xf4 };
        n = request(buf, sizeof buf, 42, forged, sizeof forged, "a.txt");
        CHECK_INT(svc->on_datagram(state, &ctx, buf, n, sizeof buf), -1);

        TEST_CASE("on_datagram: the cookie from another port is dropped");
        struct sockaddr_storage other = peer_at("192.0.2.7", 40001);
        struct dgram_ctx ctx2 = ctx;
        ctx2.peer = SA(other);
        ctx2.peer_port = 40001;
        n = request(buf, sizeof buf, 42, cookie, cookie_len, "a.txt");
        CHECK_INT(svc->on_datagram(state, &ctx2, buf, n, sizeof buf), -1);

        TEST_CASE("on_datagram: an expired cookie gets a fresh RETRY");
        ctx2 = ctx;
        ctx2.now_usec += 31 * SEC;
        n = request(buf, sizeof buf, 42, cookie, cookie_len, "a.txt");
        k = svc->on_datagram(state, &ctx2, buf, n, sizeof buf);
        if (CHECK_INT(k, 29) && CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0))
                CHECK(memcmp(p.cookie, cookie, 4) != 0); /* a later time */

        TEST_CASE("on_datagram: a valid cookie, but no worker can start: ERROR busy");
        n = request(buf, sizeof buf, 42, cookie, cookie_len, "a.txt");
        k = svc->on_datagram(state, &ctx, buf, n, sizeof buf);
        if (CHECK(k > 13 && (size_t) k <= n * NL_XFER_AMPLIFY) &&
            CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0)) {
                CHECK_INT(p.type, NL_XFER_ERROR);
                CHECK_INT(p.client_id, 42);
                CHECK_INT(p.transfer_id, 0);
                CHECK_INT(p.status, NL_STATUS_BUSY);
                CHECK_MEM(p.body, p.body_len, "server busy: cannot start a worker, try again later",
                          strlen("server busy: cannot start a worker, try again later"));
        }

        TEST_CASE("on_datagram: a short REQUEST hears why, within 3x its size");
        n = request(buf, sizeof buf, 42, NULL, 0, "a.txt");
        size_t short_len = 60;
        k = svc->on_datagram(state, &ctx, buf, short_len, sizeof buf);
        if (CHECK(k > 13 && (size_t) k <= short_len * NL_XFER_AMPLIFY) &&
            CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0)) {
                CHECK_INT(p.type, NL_XFER_ERROR);
                CHECK_INT(p.status, NL_STATUS_BAD_REQUEST);
        }

        TEST_CASE("on_datagram: another version of the protocol: UNSUPPORTED");
        n = request(buf, sizeof buf, 42, NULL, 0, "a.txt");
        buf[2] = 2;
        k = svc->on_datagram(state, &ctx, buf, n, sizeof buf);
        if (CHECK(k > 13) && CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0)) {
                CHECK_INT(p.status, NL_STATUS_UNSUPPORTED);
                CHECK_CONTAINS((const char *) p.body, "version 2");
        }

        TEST_CASE("on_datagram: a transfer's datagrams and junk get nothing");
        static const uint8_t done[] = { 0x00, 'X', 1, NL_XFER_DONE, 0, 0, 0, 9 };
        memcpy(buf, done, sizeof done);
        CHECK_INT(svc->on_datagram(state, &ctx, buf, sizeof done, sizeof buf), -1);
        memcpy(buf, "hello\n", 6);
        CHECK_INT(svc->on_datagram(state, &ctx, buf, 6, sizeof buf), -1);
        static const uint8_t tiny[] = { 0x00, 'X', 1, NL_XFER_REQUEST, 0, 0 };
        memcpy(buf, tiny, sizeof tiny);
        CHECK_INT(svc->on_datagram(state, &ctx, buf, sizeof tiny, sizeof buf), -1);

        TEST_CASE("on_datagram: a reload keeps the cookie key");
        void *next = NULL;
        if (CHECK_ERR(svc->dgram_state_new(&lc, state, &next), 0)) {
                n = request(buf, sizeof buf, 42, cookie, cookie_len, "a.txt");
                k = svc->on_datagram(next, &ctx, buf, n, sizeof buf);
                if (CHECK(k > 0) && CHECK_ERR(xfer_packet_decode(buf, (size_t) k, &p), 0))
                        CHECK_INT(p.type, NL_XFER_ERROR); /* got past the cookie: busy, no worker */
                svc->dgram_child_exited(next, 12345); /* unknown pid: nothing happens */
                svc->dgram_state_free(next);
        }
        svc->dgram_state_free(state);
}

int main(void)
{
        /* on_datagram() logs refusals; the tests look at replies. */
        log_setup(LOG_TARGET_STDERR, LOG_CRIT);

        test_cookie();
        test_table();
        test_on_datagram();
        return test_finish();
}
