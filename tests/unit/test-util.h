/* test-util.h: the unit tests' tiny assertion kit.
 *
 * A test is a sequence of cases.  TEST_CASE("fmt", ...) starts one (and ends
 * the previous one); every CHECK_* inside it that fails prints file:line, the
 * case name and the expected and actual values, and marks the case failed.
 * test_finish() ends the last case, prints "N passed, M failed" (counting
 * cases) and returns the exit status for main(): non-zero on any failure, and
 * also when no case ran at all, so a test that silently does nothing fails. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_state {
        unsigned n_passed;
        unsigned n_failed;
        bool open;
        bool failed;
        char name[256];
};

static struct test_state test_state __attribute__((unused));

static inline void test_case_end(void)
{
        if (!test_state.open)
                return;
        if (test_state.failed)
                test_state.n_failed++;
        else
                test_state.n_passed++;
        test_state.open = false;
}

static inline __attribute__((format(printf, 1, 2))) void test_case(const char *fmt, ...)
{
        va_list ap;

        test_case_end();
        va_start(ap, fmt);
        int r = vsnprintf(test_state.name, sizeof test_state.name, fmt, ap);
        va_end(ap);
        if (r < 0)
                test_state.name[0] = '\0';
        /* A longer name is cut; it only labels failure messages. */
        test_state.open = true;
        test_state.failed = false;
}

/* Record one check.  Return: ok, so callers can skip dependent checks. */
static inline __attribute__((format(printf, 4, 5))) bool test_check(bool ok, const char *file, int line,
                                                                     const char *fmt, ...)
{
        va_list ap;

        if (!test_state.open)
                test_case("(outside any case)");
        if (ok)
                return true;

        test_state.failed = true;
        fprintf(stderr, "%s:%d: FAIL [%s]: ", file, line, test_state.name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return false;
}

static inline int test_finish(void)
{
        test_case_end();
        printf("%u passed, %u failed\n", test_state.n_passed, test_state.n_failed);
        if (test_state.n_passed + test_state.n_failed == 0) {
                fprintf(stderr, "no test case ran\n");
                return EXIT_FAILURE;
        }
        return test_state.n_failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Escape bytes for a failure message: printable ASCII as is, the rest \xHH. */
static inline const char *test_escape(char *dst, size_t size, const void *p, size_t n)
{
        const uint8_t *b = p;
        size_t o = 0;

        if (!p) {
                int r = snprintf(dst, size, "(null)");
                return r < 0 ? "" : dst;
        }
        for (size_t i = 0; i < n && o + 5 < size; i++) {
                if (b[i] >= 0x20 && b[i] < 0x7F && b[i] != '\\') {
                        dst[o++] = (char) b[i];
                } else {
                        int r = snprintf(dst + o, size - o, "\\x%02x", b[i]);
                        if (r < 0 || (size_t) r >= size - o)
                                break;
                        o += (size_t) r;
                }
        }
        dst[o] = '\0';
        return dst;
}

/* An exactly-sized heap copy of n bytes (never NULL; exits when out of
 * memory), so ASan catches a parser reading one byte past its input. */
static inline uint8_t *test_dup_exact(const void *p, size_t n)
{
        uint8_t *q = malloc(n ? n : 1);

        if (!q) {
                fprintf(stderr, "out of memory\n");
                exit(EXIT_FAILURE);
        }
        if (n)
                memcpy(q, p, n);
        return q;
}

/* "EBADMSG" for -EBADMSG, "ok" for 0 or more. */
static inline const char *test_errname(int r)
{
        const char *name = r >= 0 ? "ok" : r > -4096 ? strerrorname_np(-r) : NULL;

        return name ? name : "unknown errno";
}

#define TEST_CASE(...) test_case(__VA_ARGS__)

#define CHECK(expr) test_check(!!(expr), __FILE__, __LINE__, "%s", #expr)

#define CHECK_INT(got, want)                                                                      \
        ({                                                                                        \
                long long _g = (long long) (got), _w = (long long) (want);                        \
                test_check(_g == _w, __FILE__, __LINE__, "%s: got %lld, want %lld (%s)", #got,    \
                           _g, _w, #want);                                                        \
        })

#define CHECK_U64(got, want)                                                                      \
        ({                                                                                        \
                unsigned long long _g = (unsigned long long) (got);                               \
                unsigned long long _w = (unsigned long long) (want);                              \
                test_check(_g == _w, __FILE__, __LINE__, "%s: got %llu (0x%llx), want %llu (0x%llx)", \
                           #got, _g, _g, _w, _w);                                                 \
        })

/* Compare negative-errno results, printing the error names. */
#define CHECK_ERR(got, want)                                                                      \
        ({                                                                                        \
                int _g = (int) (got), _w = (int) (want);                                          \
                test_check(_g == _w, __FILE__, __LINE__, "%s: got %d (%s), want %d (%s)", #got,   \
                           _g, test_errname(_g), _w, test_errname(_w));                           \
        })

#define CHECK_STR(got, want)                                                                      \
        ({                                                                                        \
                const char *_g = (got), *_w = (want);                                             \
                test_check(_g && _w ? strcmp(_g, _w) == 0 : _g == _w, __FILE__, __LINE__,         \
                           "%s: got \"%s\", want \"%s\"", #got, _g ? _g : "(null)",               \
                           _w ? _w : "(null)");                                                   \
        })

/* got contains want (for messages whose exact wording is checked elsewhere). */
#define CHECK_CONTAINS(got, want)                                                                 \
        ({                                                                                        \
                const char *_g = (got), *_w = (want);                                             \
                test_check(_g && strstr(_g, _w), __FILE__, __LINE__,                              \
                           "%s: got \"%s\", want it to contain \"%s\"", #got,                     \
                           _g ? _g : "(null)", _w);                                               \
        })

#define CHECK_MEM(got, got_len, want, want_len)                                                   \
        ({                                                                                        \
                const void *_g = (got), *_w = (want);                                             \
                size_t _gl = (got_len), _wl = (want_len);                                         \
                char _ge[512], _we[512];                                                          \
                test_check(_gl == _wl && (_gl == 0 || memcmp(_g, _w, _gl) == 0), __FILE__,        \
                           __LINE__, "%s: got %zu bytes \"%s\", want %zu bytes \"%s\"", #got,     \
                           _gl, test_escape(_ge, sizeof _ge, _g, _gl), _wl,                       \
                           test_escape(_we, sizeof _we, _w, _wl));                                \
        })
