/* test-wire.c: the bounded cursor reader and writer (common/wire.c).
 *
 * Each getter at exactly its width and one byte short (-EBADMSG, position and
 * output unchanged), big-endian values with the high bit set, and each putter
 * at its width and one byte short (-ENOBUFS, nothing written). */
#include <stdint.h>
#include <string.h>

#include "test-util.h"
#include "util.h"
#include "wire.h"

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

/* Read one big-endian value of the given width (1, 2, 4 or 8 bytes). */
static int get_width(struct wire_reader *r, size_t width, uint64_t *ret)
{
        int k = -EINVAL;

        switch (width) {
        case 1: {
                uint8_t v = 0x5a;
                k = wire_get_u8(r, &v);
                *ret = k < 0 && v == 0x5a ? SENTINEL : v;
                break;
        }
        case 2: {
                uint16_t v = 0x5a5a;
                k = wire_get_u16be(r, &v);
                *ret = k < 0 && v == 0x5a5a ? SENTINEL : v;
                break;
        }
        case 4: {
                uint32_t v = 0x5a5a5a5a;
                k = wire_get_u32be(r, &v);
                *ret = k < 0 && v == 0x5a5a5a5a ? SENTINEL : v;
                break;
        }
        case 8: {
                uint64_t v = SENTINEL;
                k = wire_get_u64be(r, &v);
                *ret = v;
                break;
        }
        }
        return k;
}

static int put_width(struct wire_writer *w, size_t width, uint64_t v)
{
        switch (width) {
        case 1: return wire_put_u8(w, (uint8_t) v);
        case 2: return wire_put_u16be(w, (uint16_t) v);
        case 4: return wire_put_u32be(w, (uint32_t) v);
        case 8: return wire_put_u64be(w, v);
        }
        return -EINVAL;
}

static const size_t widths[] = { 1, 2, 4, 8 };

/* Bytes with the high bit set in every position, so a sign-extension or
 * byte-order mistake changes the value. */
static const uint8_t pattern[] = { 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09, 0x1a };

static uint64_t be_value(const uint8_t *p, size_t width)
{
        uint64_t v = 0;

        for (size_t i = 0; i < width; i++)
                v = v << 8 | p[i];
        return v;
}

static void test_getters(void)
{
        /* Starting at offset 0 and 1, with width - 1, width and width + 1
         * bytes remaining. */
        for (size_t wi = 0; wi < ELEMENTSOF(widths); wi++)
                for (size_t start = 0; start < 2; start++)
                        for (size_t extra = 0; extra < 3; extra++) {
                                size_t width = widths[wi];
                                size_t remaining = width - 1 + extra;
                                bool ok = remaining >= width;
                                struct wire_reader r;
                                uint64_t v = 0;

                                TEST_CASE("get u%zu with %zu bytes left at offset %zu", width * 8,
                                          remaining, start);
                                wire_reader_init(&r, pattern, start + remaining);
                                r.pos = start;
                                CHECK_ERR(get_width(&r, width, &v), ok ? 0 : -EBADMSG);
                                CHECK_U64(v, ok ? be_value(pattern + start, width) : SENTINEL);
                                CHECK_U64(r.pos, ok ? start + width : start);
                                CHECK_U64(wire_reader_remaining(&r), ok ? remaining - width : remaining);
                        }

        TEST_CASE("big-endian values");
        static const uint8_t be[] = { 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
                                      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80 };
        struct wire_reader r;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        wire_reader_init(&r, be, sizeof be);
        CHECK_ERR(wire_get_u16be(&r, &u16), 0);
        CHECK_U64(u16, 0x1234);
        CHECK_ERR(wire_get_u32be(&r, &u32), 0);
        CHECK_U64(u32, 0xdeadbeef);
        CHECK_ERR(wire_get_u64be(&r, &u64), 0);
        CHECK_U64(u64, UINT64_C(0x0102030405060708));
        CHECK_ERR(wire_get_u64be(&r, &u64), 0);
        CHECK_U64(u64, UINT64_MAX);
        CHECK_ERR(wire_get_u8(&r, &u8), 0);
        CHECK_U64(u8, 0x80);
        CHECK_U64(wire_reader_remaining(&r), 0);
        CHECK_ERR(wire_get_u8(&r, &u8), -EBADMSG);
        CHECK_U64(r.pos, sizeof be);

        /* u64 reads two halves: when the first half is there and the second
         * is not, the cursor must still not move. */
        for (size_t n = 0; n < 8; n++) {
                TEST_CASE("u64 with %zu of 8 bytes does not advance", n);
                uint64_t v = SENTINEL;
                wire_reader_init(&r, pattern, n);
                CHECK_ERR(wire_get_u64be(&r, &v), -EBADMSG);
                CHECK_U64(v, SENTINEL);
                CHECK_U64(r.pos, 0);
                CHECK_U64(wire_reader_remaining(&r), n);
        }

        TEST_CASE("u64 partial failure after a u8, then the u8s still read");
        wire_reader_init(&r, pattern, 8); /* u8 + 7 bytes */
        CHECK_ERR(wire_get_u8(&r, &u8), 0);
        CHECK_U64(u8, 0x81);
        u64 = SENTINEL;
        CHECK_ERR(wire_get_u64be(&r, &u64), -EBADMSG);
        CHECK_U64(u64, SENTINEL);
        CHECK_U64(r.pos, 1);
        for (size_t i = 1; i < 8; i++) {
                CHECK_ERR(wire_get_u8(&r, &u8), 0);
                CHECK_U64(u8, pattern[i]);
        }
        CHECK_ERR(wire_get_u8(&r, &u8), -EBADMSG);

        TEST_CASE("chained reads as in STYLE.md");
        static const uint8_t rec[] = { 0x07, 0, 0, 0, 0, 0, 0, 0x01, 0x00 };
        uint8_t op = 0;
        uint64_t offset = 0;
        wire_reader_init(&r, rec, sizeof rec);
        CHECK(!(wire_get_u8(&r, &op) < 0 || wire_get_u64be(&r, &offset) < 0));
        CHECK_U64(op, 7);
        CHECK_U64(offset, 256);
        wire_reader_init(&r, rec, sizeof rec - 1);
        CHECK(wire_get_u8(&r, &op) < 0 || wire_get_u64be(&r, &offset) < 0);
        CHECK_U64(r.pos, 1);
}

static void test_bytes_and_views(void)
{
        struct wire_reader r;
        uint8_t dst[12];

        for (size_t n = 0; n <= sizeof pattern + 1; n++) {
                bool ok = n <= sizeof pattern;

                TEST_CASE("get_bytes(%zu) from %zu", n, sizeof pattern);
                memset(dst, 0x5a, sizeof dst);
                wire_reader_init(&r, pattern, sizeof pattern);
                CHECK_ERR(wire_get_bytes(&r, dst, n), ok ? 0 : -EBADMSG);
                CHECK_U64(r.pos, ok ? n : 0);
                if (ok)
                        CHECK_MEM(dst, n, pattern, n);
                for (size_t i = ok ? n : 0; i < sizeof dst; i++)
                        CHECK_INT(dst[i], 0x5a);
        }

        TEST_CASE("get_view points into the buffer");
        const uint8_t *view = NULL;
        wire_reader_init(&r, pattern, sizeof pattern);
        r.pos = 3;
        CHECK_ERR(wire_get_view(&r, 4, &view), 0);
        CHECK(view == pattern + 3);
        CHECK_U64(r.pos, 7);
        view = NULL;
        CHECK_ERR(wire_get_view(&r, 4, &view), -EBADMSG);
        CHECK(view == NULL);
        CHECK_U64(r.pos, 7);
        CHECK_ERR(wire_get_view(&r, 3, &view), 0);
        CHECK(view == pattern + 7);
        CHECK_ERR(wire_get_view(&r, 0, &view), 0);
        CHECK_U64(r.pos, sizeof pattern);
        CHECK_ERR(wire_get_view(&r, SIZE_MAX, &view), -EBADMSG);

        TEST_CASE("reader over NULL has nothing");
        uint8_t u8 = 0x5a;
        wire_reader_init(&r, NULL, 5);
        CHECK_U64(wire_reader_remaining(&r), 0);
        CHECK_ERR(wire_get_u8(&r, &u8), -EBADMSG);
        CHECK_U64(u8, 0x5a);
        CHECK_ERR(wire_get_bytes(&r, dst, 0), 0);
}

static void test_putters(void)
{
        for (size_t wi = 0; wi < ELEMENTSOF(widths); wi++)
                for (size_t start = 0; start < 2; start++)
                        for (size_t extra = 0; extra < 3; extra++) {
                                size_t width = widths[wi];
                                size_t room = width - 1 + extra;
                                bool ok = room >= width;
                                uint64_t v = be_value(pattern, width);
                                uint8_t buf[16];
                                struct wire_writer w;

                                TEST_CASE("put u%zu with %zu bytes of room at offset %zu", width * 8,
                                          room, start);
                                memset(buf, 0x5a, sizeof buf);
                                wire_writer_init(&w, buf, start + room);
                                w.pos = start;
                                CHECK_ERR(put_width(&w, width, v), ok ? 0 : -ENOBUFS);
                                CHECK_U64(w.pos, ok ? start + width : start);
                                if (ok)
                                        CHECK_MEM(buf + start, width, pattern, width);
                                /* Nothing else touched (everything, on failure). */
                                for (size_t i = 0; i < sizeof buf; i++)
                                        if (!ok || i < start || i >= start + width)
                                                CHECK_INT(buf[i], 0x5a);
                        }

        TEST_CASE("big-endian encodings");
        uint8_t buf[32];
        struct wire_writer w;
        wire_writer_init(&w, buf, sizeof buf);
        CHECK_ERR(wire_put_u8(&w, 0xab), 0);
        CHECK_ERR(wire_put_u16be(&w, 0x1234), 0);
        CHECK_ERR(wire_put_u32be(&w, 0xdeadbeef), 0);
        CHECK_ERR(wire_put_u64be(&w, UINT64_C(0x0102030405060708)), 0);
        CHECK_ERR(wire_put_bytes(&w, "xyz", 3), 0);
        static const uint8_t want[] = { 0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8,
                                        'x', 'y', 'z' };
        CHECK_MEM(buf, w.pos, want, sizeof want);

        TEST_CASE("put_bytes: exact fit, one over, zero bytes when full");
        memset(buf, 0x5a, sizeof buf);
        wire_writer_init(&w, buf, 4);
        CHECK_ERR(wire_put_bytes(&w, "abcde", 5), -ENOBUFS);
        CHECK_U64(w.pos, 0);
        CHECK_INT(buf[0], 0x5a);
        CHECK_ERR(wire_put_bytes(&w, "abcd", 4), 0);
        CHECK_MEM(buf, 4, "abcd", 4);
        CHECK_ERR(wire_put_bytes(&w, "", 0), 0);
        CHECK_ERR(wire_put_u8(&w, 1), -ENOBUFS);
        CHECK_U64(w.pos, 4);
        CHECK_INT(buf[4], 0x5a);
        CHECK_ERR(wire_put_bytes(&w, "a", SIZE_MAX), -ENOBUFS);

        TEST_CASE("writer over NULL has no room");
        wire_writer_init(&w, NULL, 8);
        CHECK_ERR(wire_put_u8(&w, 1), -ENOBUFS);
        CHECK_ERR(wire_put_bytes(&w, NULL, 0), 0);
        CHECK_U64(w.pos, 0);
}

static void test_round_trip(void)
{
        static const uint64_t values[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
                                           0x80000000u, 0xffffffffu, UINT64_C(0x100000000),
                                           UINT64_C(0x8000000000000000), UINT64_MAX };

        for (size_t wi = 0; wi < ELEMENTSOF(widths); wi++)
                for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                        size_t width = widths[wi];
                        uint64_t mask = width == 8 ? UINT64_MAX : (UINT64_C(1) << (width * 8)) - 1;
                        uint64_t v = values[i] & mask;
                        uint8_t buf[8];
                        struct wire_writer w;
                        struct wire_reader r;
                        uint64_t got = 0;

                        TEST_CASE("round trip u%zu 0x%llx", width * 8, (unsigned long long) v);
                        wire_writer_init(&w, buf, width);
                        CHECK_ERR(put_width(&w, width, v), 0);
                        CHECK_U64(be_value(buf, width), v);
                        wire_reader_init(&r, buf, w.pos);
                        CHECK_ERR(get_width(&r, width, &got), 0);
                        CHECK_U64(got, v);
                        CHECK_U64(wire_reader_remaining(&r), 0);
                }
}

int main(void)
{
        test_getters();
        test_bytes_and_views();
        test_putters();
        test_round_trip();
        return test_finish();
}
