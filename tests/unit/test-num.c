/* test-num.c: num_parse_u64(), num_parse_u64_n() and xsnprintf() (common/num.c).
 *
 * Every refusal the STYLE.md number helper promises (empty, signs, spaces,
 * junk, overflow, outside [min, max]) and both sides of every boundary. */
#include <stdint.h>
#include <string.h>

#include "test-util.h"
#include "util.h"

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

struct num_case {
        const char *s;
        uint64_t min, max;
        int ret;
        uint64_t value; /* when ret == 0 */
};

static const struct num_case num_cases[] = {
        /* good values */
        { "0", 0, UINT64_MAX, 0, 0 },
        { "1", 0, UINT64_MAX, 0, 1 },
        { "9", 0, UINT64_MAX, 0, 9 },
        { "10", 0, UINT64_MAX, 0, 10 },
        { "12345", 0, UINT64_MAX, 0, 12345 },
        { "007", 0, UINT64_MAX, 0, 7 },
        { "4294967295", 0, UINT64_MAX, 0, UINT32_MAX },
        { "4294967296", 0, UINT64_MAX, 0, UINT64_C(4294967296) },
        { "18446744073709551614", 0, UINT64_MAX, 0, UINT64_MAX - 1 },
        { "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
        { "000000000000000000000018446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },

        /* overflow: UINT64_MAX + 1 and beyond */
        { "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
        { "18446744073709551619", 0, UINT64_MAX, -ERANGE, 0 },
        { "18446744073709551620", 0, UINT64_MAX, -ERANGE, 0 },
        { "99999999999999999999", 0, UINT64_MAX, -ERANGE, 0 },
        { "184467440737095516150", 0, UINT64_MAX, -ERANGE, 0 },
        { "100000000000000000000000000000", 0, UINT64_MAX, -ERANGE, 0 },

        /* [min, max]: both ends, one past each */
        { "10", 10, 20, 0, 10 },
        { "20", 10, 20, 0, 20 },
        { "9", 10, 20, -ERANGE, 0 },
        { "21", 10, 20, -ERANGE, 0 },
        { "0", 1, 65535, -ERANGE, 0 },
        { "1", 1, 65535, 0, 1 },
        { "65535", 1, 65535, 0, 65535 },
        { "65536", 1, 65535, -ERANGE, 0 },
        { "5", 5, 5, 0, 5 },
        { "4", 5, 5, -ERANGE, 0 },
        { "6", 5, 5, -ERANGE, 0 },
        { "18446744073709551615", 0, UINT64_MAX - 1, -ERANGE, 0 },
        { "0", 0, 0, 0, 0 },
        { "1", 0, 0, -ERANGE, 0 },

        /* not a plain decimal number */
        { "", 0, UINT64_MAX, -EINVAL, 0 },
        { "-1", 0, UINT64_MAX, -EINVAL, 0 },
        { "-0", 0, UINT64_MAX, -EINVAL, 0 },
        { "+1", 0, UINT64_MAX, -EINVAL, 0 },
        { " 1", 0, UINT64_MAX, -EINVAL, 0 },
        { "1 ", 0, UINT64_MAX, -EINVAL, 0 },
        { "\t1", 0, UINT64_MAX, -EINVAL, 0 },
        { "1\n", 0, UINT64_MAX, -EINVAL, 0 },
        { " ", 0, UINT64_MAX, -EINVAL, 0 },
        { "12abc", 0, UINT64_MAX, -EINVAL, 0 },
        { "abc", 0, UINT64_MAX, -EINVAL, 0 },
        { "0x10", 0, UINT64_MAX, -EINVAL, 0 },
        { "1.5", 0, UINT64_MAX, -EINVAL, 0 },
        { "1e3", 0, UINT64_MAX, -EINVAL, 0 },
        { "1,000", 0, UINT64_MAX, -EINVAL, 0 },
        { "1_000", 0, UINT64_MAX, -EINVAL, 0 },
        { "\xd9\xa1", 0, UINT64_MAX, -EINVAL, 0 }, /* ARABIC-INDIC DIGIT ONE */
        { "/", 0, UINT64_MAX, -EINVAL, 0 },         /* '0' - 1 */
        { ":", 0, UINT64_MAX, -EINVAL, 0 },         /* '9' + 1 */
};

/* The _n variant with explicit lengths, including bytes past n and NULs. */
struct num_n_case {
        const char *s;
        size_t n;
        uint64_t min, max;
        int ret;
        uint64_t value;
};

static const struct num_n_case num_n_cases[] = {
        { "12", 2, 0, UINT64_MAX, 0, 12 },
        { "123", 2, 0, UINT64_MAX, 0, 12 },     /* bytes past n are not looked at */
        { "12abc", 2, 0, UINT64_MAX, 0, 12 },
        { "12abc", 3, 0, UINT64_MAX, -EINVAL, 0 },
        { "7", 0, 0, UINT64_MAX, -EINVAL, 0 },  /* empty */
        { "", 0, 0, UINT64_MAX, -EINVAL, 0 },
        { "\0", 1, 0, UINT64_MAX, -EINVAL, 0 },
        { "1\0002", 3, 0, UINT64_MAX, -EINVAL, 0 }, /* NUL in the middle */
        { "12\0", 3, 0, UINT64_MAX, -EINVAL, 0 },   /* NUL at the end */
        { "\0001", 2, 0, UINT64_MAX, -EINVAL, 0 },  /* NUL at the start */
        { "1\0002", 1, 0, UINT64_MAX, 0, 1 },
        { "18446744073709551615", 20, 0, UINT64_MAX, 0, UINT64_MAX },
        { "18446744073709551616", 20, 0, UINT64_MAX, -ERANGE, 0 },
        { "184467440737095516169", 20, 0, UINT64_MAX, -ERANGE, 0 },
        { "184467440737095516159", 20, 0, UINT64_MAX, 0, UINT64_MAX },
        { "65536", 4, 1, 65535, 0, 6553 },
        { "65536", 5, 1, 65535, -ERANGE, 0 },
        { "-1", 2, 0, UINT64_MAX, -EINVAL, 0 },
        { "+1", 2, 0, UINT64_MAX, -EINVAL, 0 },
};

static void test_num_parse_u64(void)
{
        for (size_t i = 0; i < ELEMENTSOF(num_cases); i++) {
                const struct num_case *c = &num_cases[i];
                char esc[128];
                uint64_t v = SENTINEL;

                TEST_CASE("num_parse_u64(\"%s\", %llu, %llu)",
                          test_escape(esc, sizeof esc, c->s, strlen(c->s)),
                          (unsigned long long) c->min, (unsigned long long) c->max);
                CHECK_ERR(num_parse_u64(c->s, c->min, c->max, &v), c->ret);
                /* ret_value is written only on success. */
                CHECK_U64(v, c->ret == 0 ? c->value : SENTINEL);

                /* The _n variant agrees when given the whole string. */
                v = SENTINEL;
                CHECK_ERR(num_parse_u64_n(c->s, strlen(c->s), c->min, c->max, &v), c->ret);
                CHECK_U64(v, c->ret == 0 ? c->value : SENTINEL);
        }

        TEST_CASE("num_parse_u64(NULL)");
        uint64_t v = SENTINEL;
        CHECK_ERR(num_parse_u64(NULL, 0, UINT64_MAX, &v), -EINVAL);
        CHECK_ERR(num_parse_u64_n(NULL, 3, 0, UINT64_MAX, &v), -EINVAL);
        CHECK_U64(v, SENTINEL);
}

static void test_num_parse_u64_n(void)
{
        for (size_t i = 0; i < ELEMENTSOF(num_n_cases); i++) {
                const struct num_n_case *c = &num_n_cases[i];
                char esc[128];
                uint64_t v = SENTINEL;

                TEST_CASE("num_parse_u64_n(\"%s\", %zu, %llu, %llu)",
                          test_escape(esc, sizeof esc, c->s, c->n), c->n,
                          (unsigned long long) c->min, (unsigned long long) c->max);
                CHECK_ERR(num_parse_u64_n(c->s, c->n, c->min, c->max, &v), c->ret);
                CHECK_U64(v, c->ret == 0 ? c->value : SENTINEL);
        }

        /* No NUL terminator at all: the buffer ends exactly at n. */
        TEST_CASE("num_parse_u64_n() on an unterminated buffer");
        char *buf = malloc(3);
        if (CHECK(buf)) {
                uint64_t v = SENTINEL;

                memcpy(buf, "427", 3);
                CHECK_ERR(num_parse_u64_n(buf, 3, 0, UINT64_MAX, &v), 0);
                CHECK_U64(v, 427);
        }
        free(buf);
}

struct xsnprintf_case {
        size_t size;
        const char *arg;
        int ret;
        const char *out;
};

static const struct xsnprintf_case xsnprintf_cases[] = {
        { 8, "abc", 3, "abc" },
        { 4, "abc", 3, "abc" },      /* exactly fits with its NUL */
        { 3, "abc", -ENOBUFS, "ab" }, /* one short */
        { 4, "abcd", -ENOBUFS, "abc" },
        { 2, "abcdef", -ENOBUFS, "a" },
        { 1, "a", -ENOBUFS, "" },
        { 1, "", 0, "" },
        { 16, "", 0, "" },
};

static void test_xsnprintf(void)
{
        for (size_t i = 0; i < ELEMENTSOF(xsnprintf_cases); i++) {
                const struct xsnprintf_case *c = &xsnprintf_cases[i];
                char buf[32];

                TEST_CASE("xsnprintf(size %zu, \"%s\")", c->size, c->arg);
                memset(buf, 'X', sizeof buf);
                CHECK_ERR(xsnprintf(buf, c->size, "%s", c->arg), c->ret);
                CHECK_STR(buf, c->out);
                CHECK_INT(buf[c->size], 'X'); /* nothing written past size */
        }

        TEST_CASE("xsnprintf() with a number at the boundary");
        char buf[8];
        CHECK_ERR(xsnprintf(buf, 6, "%d", 12345), 5);
        CHECK_STR(buf, "12345");
        CHECK_ERR(xsnprintf(buf, 5, "%d", 12345), -ENOBUFS);
        CHECK_STR(buf, "1234");
        CHECK_ERR(xsnprintf(buf, sizeof buf, "%s:%u", "ab", 12345u), -ENOBUFS);
        CHECK_STR(buf, "ab:1234");
        CHECK_ERR(xsnprintf(buf, sizeof buf, "%s:%u", "ab", 1234u), 7);
        CHECK_STR(buf, "ab:1234");
}

int main(void)
{
        test_num_parse_u64();
        test_num_parse_u64_n();
        test_xsnprintf();
        return test_finish();
}
