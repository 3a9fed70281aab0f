/* test-text.c: text_check() and text_escape() (common/text.c).
 *
 * text_check: every class of refused byte with the exact offset reported, and
 * the edges of every UTF-8 range (RFC 3629 section 4).  text_escape: every
 * escape, truncation at each buffer size, and the NUL terminator. */
#include <stdint.h>
#include <string.h>

#include "test-util.h"
#include "util.h"

#define SENTINEL ((size_t) 0xdead)

/* A byte string literal and its length (it may contain NULs). */
#define B(s) (const uint8_t *) (s), sizeof(s) - 1

struct check_case {
        const char *name;
        const uint8_t *buf;
        size_t n;
        int ret;
        size_t bad; /* when ret < 0 */
};

static const struct check_case check_cases[] = {
        /* ASCII */
        { "empty", B(""), 0, 0 },
        { "word", B("hello"), 0, 0 },
        { "space and tilde", B(" ~"), 0, 0 },
        { "TAB allowed", B("a\tb"), 0, 0 },
        { "only TAB", B("\t"), 0, 0 },
        { "LF", B("ab\ncd"), -EBADMSG, 2 },
        { "CR", B("\r"), -EBADMSG, 0 },
        { "CR LF", B("abc\r\n"), -EBADMSG, 3 },
        { "NUL", B("ab\0c"), -EBADMSG, 2 },
        { "NUL first", B("\0"), -EBADMSG, 0 },
        { "DEL", B("\x7f"), -EBADMSG, 0 },
        { "DEL after text", B("abc\x7f"), -EBADMSG, 3 },
        { "0x1F", B("a\x1f"), -EBADMSG, 1 },
        { "0x01", B("\x01"), -EBADMSG, 0 },
        { "ESC", B("x\x1b[31m"), -EBADMSG, 1 },
        { "VT", B("\v"), -EBADMSG, 0 },
        { "first of two bad", B("a\x01\x02"), -EBADMSG, 1 },

        /* valid UTF-8: the lowest and highest of each length */
        { "U+00A0 (lowest 2-byte after C1)", B("\xc2\xa0"), 0, 0 },
        { "U+00E9", B("caf\xc3\xa9"), 0, 0 },
        { "U+07FF", B("\xdf\xbf"), 0, 0 },
        { "U+0800", B("\xe0\xa0\x80"), 0, 0 },
        { "U+20AC", B("\xe2\x82\xac"), 0, 0 },
        { "U+D7FF", B("\xed\x9f\xbf"), 0, 0 },
        { "U+E000", B("\xee\x80\x80"), 0, 0 },
        { "U+FFFF", B("\xef\xbf\xbf"), 0, 0 },
        { "U+10000", B("\xf0\x90\x80\x80"), 0, 0 },
        { "U+1F600", B("\xf0\x9f\x98\x80"), 0, 0 },
        { "U+10FFFF", B("\xf4\x8f\xbf\xbf"), 0, 0 },
        { "mixed", B("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 0, 0 },

        /* overlong forms */
        { "C0 80", B("\xc0\x80"), -EBADMSG, 0 },
        { "C1 BF", B("\xc1\xbf"), -EBADMSG, 0 },
        { "E0 80 80", B("\xe0\x80\x80"), -EBADMSG, 0 },
        { "E0 9F BF", B("\xe0\x9f\xbf"), -EBADMSG, 0 },
        { "F0 80 80 80", B("\xf0\x80\x80\x80"), -EBADMSG, 0 },
        { "F0 8F BF BF", B("\xf0\x8f\xbf\xbf"), -EBADMSG, 0 },
        { "overlong after text", B("ab\xc0\xaf"), -EBADMSG, 2 },

        /* UTF-16 surrogates */
        { "ED A0 80 (U+D800)", B("\xed\xa0\x80"), -EBADMSG, 0 },
        { "ED BF BF (U+DFFF)", B("\xed\xbf\xbf"), -EBADMSG, 0 },
        { "surrogate after text", B("ok\xed\xa0\x80"), -EBADMSG, 2 },

        /* above U+10FFFF and bytes never used */
        { "F4 90 80 80 (U+110000)", B("\xf4\x90\x80\x80"), -EBADMSG, 0 },
        { "F5 80 80 80", B("\xf5\x80\x80\x80"), -EBADMSG, 0 },
        { "F7 BF BF BF", B("\xf7\xbf\xbf\xbf"), -EBADMSG, 0 },
        { "F8 (5-byte lead)", B("\xf8\x88\x80\x80\x80"), -EBADMSG, 0 },
        { "FE", B("\xfe"), -EBADMSG, 0 },
        { "FF", B("a\xff"), -EBADMSG, 1 },

        /* C1 controls */
        { "C2 80 (U+0080)", B("\xc2\x80"), -EBADMSG, 0 },
        { "C2 85 (NEL)", B("x\xc2\x85"), -EBADMSG, 1 },
        { "C2 9F (U+009F)", B("\xc2\x9f"), -EBADMSG, 0 },

        /* truncated sequences */
        { "2-byte lead alone", B("\xc3"), -EBADMSG, 0 },
        { "3-byte lead + 1", B("a\xe2\x82"), -EBADMSG, 1 },
        { "3-byte lead alone", B("\xe2"), -EBADMSG, 0 },
        { "4-byte lead + 2", B("\xf0\x9f\x98"), -EBADMSG, 0 },
        { "4-byte lead alone", B("ab\xf0"), -EBADMSG, 2 },

        /* continuation bytes out of place */
        { "lone continuation", B("\x80"), -EBADMSG, 0 },
        { "continuation after ASCII", B("a\xbf"), -EBADMSG, 1 },
        { "2-byte with ASCII second", B("\xc3\x28"), -EBADMSG, 0 },
        { "3-byte with ASCII second", B("\xe2\x28\xa1"), -EBADMSG, 0 },
        { "3-byte with ASCII third", B("\xe2\x82\x28"), -EBADMSG, 0 },
        { "4-byte with ASCII fourth", B("\xf0\x9f\x98\x28"), -EBADMSG, 0 },
        { "extra continuation", B("\xc3\xa9\xa9"), -EBADMSG, 2 },

        /* the offset counts whole earlier sequences */
        { "LF after 2-byte", B("\xc3\xa9\n"), -EBADMSG, 2 },
        { "DEL after 3-byte", B("\xe2\x82\xac\x7f"), -EBADMSG, 3 },
        { "0x01 after 4-byte", B("\xf0\x9f\x98\x80\x01"), -EBADMSG, 4 },
};

static void test_text_check(void)
{
        for (size_t i = 0; i < ELEMENTSOF(check_cases); i++) {
                const struct check_case *c = &check_cases[i];
                size_t bad = SENTINEL;

                TEST_CASE("text_check(%s)", c->name);
                CHECK_ERR(text_check(c->buf, c->n, &bad), c->ret);
                CHECK_U64(bad, c->ret < 0 ? c->bad : SENTINEL);
                /* ret_bad_offset may be NULL. */
                CHECK_ERR(text_check(c->buf, c->n, NULL), c->ret);
        }

        /* Every single byte: exactly TAB and 0x20..0x7E pass alone. */
        TEST_CASE("text_check() on each single byte");
        for (unsigned b = 0; b < 256; b++) {
                uint8_t byte = (uint8_t) b;
                bool ok = b == '\t' || (b >= 0x20 && b <= 0x7E);
                size_t bad = SENTINEL;

                if (!CHECK_ERR(text_check(&byte, 1, &bad), ok ? 0 : -EBADMSG))
                        fprintf(stderr, "  (byte 0x%02x)\n", b);
                CHECK_U64(bad, ok ? SENTINEL : 0);
        }

        /* Every 2-byte lead with a valid continuation: C2..DF only, minus C1. */
        TEST_CASE("text_check() on each 2-byte sequence X 0xA0");
        for (unsigned b = 0x80; b < 256; b++) {
                uint8_t seq[2] = { (uint8_t) b, 0xA0 };
                bool ok = b >= 0xC2 && b <= 0xDF;

                if (!CHECK_ERR(text_check(seq, 2, NULL), ok ? 0 : -EBADMSG))
                        fprintf(stderr, "  (lead 0x%02x)\n", b);
        }

        /* Every C1 control, U+0080..U+009F, and the code point right after. */
        TEST_CASE("text_check() on U+0080..U+00A0");
        for (unsigned cp = 0x80; cp <= 0xA0; cp++) {
                uint8_t seq[2] = { (uint8_t) (0xC0 | cp >> 6), (uint8_t) (0x80 | (cp & 0x3F)) };

                if (!CHECK_ERR(text_check(seq, 2, NULL), cp == 0xA0 ? 0 : -EBADMSG))
                        fprintf(stderr, "  (U+%04X)\n", cp);
        }
}

struct escape_case {
        const char *name;
        const uint8_t *buf;
        size_t n;
        size_t dst_size;
        const char *out;
        bool tight; /* the escaped text fits dst with under 3 bytes to spare */
};

/* The tight rows guard a past bug: room for "..." was kept before every
 * unit, so text whose escaped form just fit dst was still cut. */
static const struct escape_case escape_cases[] = {
        { "plain", B("hello"), 64, "hello", false },
        { "empty", B(""), 64, "", false },
        { "LF", B("a\nb"), 64, "a\\nb", false },
        { "TAB CR backslash quote", B("\t\r\\\""), 64, "\\t\\r\\\\\\\"", false },
        { "single quote stays", B("it's"), 64, "it's", false },
        { "NUL", B("\0"), 64, "\\x00", false },
        { "0x01 0x1F", B("\x01\x1f"), 64, "\\x01\\x1f", false },
        { "DEL", B("\x7f"), 64, "\\x7f", false },
        { "ESC", B("\x1b[0m"), 64, "\\x1b[0m", false },
        { "UTF-8 bytes", B("caf\xc3\xa9"), 64, "caf\\xc3\\xa9", false },
        { "0xFF", B("\xff"), 64, "\\xff", false },
        { "space and tilde", B(" ~"), 64, " ~", false },

        /* truncation: the longest prefix of whole units, then "..." */
        { "cut plain", B("abcdefghij"), 8, "abcd...", false },
        { "cut plain one over", B("abcdefgh"), 8, "abcd...", false },
        { "cut does not split \\xHH", B("\x01\x02\x03"), 10, "\\x01...", false },
        { "cut before \\xHH", B("a\x01" "bcd"), 8, "a...", false },
        { "cut does not split \\n", B("abc\n\n"), 7, "abc...", false },
        { "size 4: only ...", B("abcd"), 4, "...", false },
        { "size 4: escape only ...", B("\n\n"), 4, "...", false },
        { "size 5", B("abcde"), 5, "a...", false },

        /* exactly fits: documented as not truncated */
        { "fits exactly (7 + NUL in 8)", B("abcdefg"), 8, "abcdefg", true },
        { "fits exactly with \\xHH", B("a\x01" "bc"), 8, "a\\x01bc", true },
        { "size 4, one byte", B("a"), 4, "a", true },
        { "size 4, three bytes", B("abc"), 4, "abc", true },
        { "fits with one spare", B("abcdef"), 8, "abcdef", true },
        { "fits with two spare", B("abcde"), 8, "abcde", true },
        { "fits with three spare", B("abcd"), 8, "abcd", false },
};

static void test_text_escape(void)
{
        for (size_t i = 0; i < ELEMENTSOF(escape_cases); i++) {
                const struct escape_case *c = &escape_cases[i];
                char dst[128];

                TEST_CASE("text_escape(%s, dst_size %zu)%s", c->name, c->dst_size,
                          c->tight ? " [fits tightly]" : "");
                memset(dst, 'X', sizeof dst);
                size_t r = text_escape(dst, c->dst_size, c->buf, c->n);
                CHECK_STR(dst, c->out);
                CHECK_U64(r, strlen(c->out));
                CHECK_INT(dst[c->dst_size], 'X'); /* nothing written past dst_size */
        }

        /* dst_size < 4: nothing fits, not even "...": an empty string. */
        for (size_t size = 1; size < 4; size++) {
                char dst[8];

                TEST_CASE("text_escape(dst_size %zu)", size);
                memset(dst, 'X', sizeof dst);
                CHECK_U64(text_escape(dst, size, B("abcdef")), 0);
                CHECK_INT(dst[0], '\0');
                CHECK_INT(dst[size], 'X');
        }

        TEST_CASE("text_escape(dst_size 0) writes nothing");
        char none[2] = { 'X', 'X' };
        CHECK_U64(text_escape(none, 0, B("abc")), 0);
        CHECK_INT(none[0], 'X');

        /* At every size the result is NUL-terminated at the returned length,
         * stays inside dst, and is either the whole escape or the longest
         * prefix of whole units (one unit per input byte) that leaves room
         * for "..." and the NUL, followed by "...". */
        static const uint8_t in[] = "he said \"hi\"\n\x01\xc3\xa9 ok\\";
        static const size_t unit_len[] = { 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 4, 4, 4, 1, 1, 1, 2 };
        const char *full = "he said \\\"hi\\\"\\n\\x01\\xc3\\xa9 ok\\\\";
        size_t full_len = strlen(full);

        TEST_CASE("text_escape() sweep: the expected units add up");
        size_t sum = 0;
        for (size_t u = 0; u < ELEMENTSOF(unit_len); u++)
                sum += unit_len[u];
        CHECK_U64(ELEMENTSOF(unit_len), sizeof in - 1);
        CHECK_U64(sum, full_len);

        for (size_t size = 4; size <= full_len + 8; size++) {
                char dst[128];

                TEST_CASE("text_escape() sweep, dst_size %zu", size);
                memset(dst, 'X', sizeof dst);
                size_t r = text_escape(dst, size, in, sizeof in - 1);
                if (!CHECK(r < size))
                        continue;
                CHECK_INT(dst[r], '\0');
                CHECK_U64(strlen(dst), r);
                CHECK_INT(dst[size], 'X');
                if (strcmp(dst, full) == 0) {
                        CHECK_U64(r, full_len);
                        continue;
                }

                /* Truncated: longest whole-unit prefix p with p + 3 + 1 <= size. */
                size_t p = 0;
                for (size_t u = 0; u < ELEMENTSOF(unit_len) && p + unit_len[u] + 4 <= size; u++)
                        p += unit_len[u];
                CHECK_U64(r, p + 3);
                CHECK_MEM(dst, p, full, p);
                CHECK_STR(dst + p, "...");
        }
}

int main(void)
{
        test_text_check();
        test_text_escape();
        return test_finish();
}
