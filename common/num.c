/* num.c: the one way netlab turns untrusted text into numbers.
 *
 * Config values, lab offsets and command-line options all pass through here,
 * so "12abc", "-1", " 5", "" and 2^64 are refused the same way everywhere. */
#include <stdarg.h>
#include <string.h>

#include "util.h"

int num_parse_u64_n(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *ret_value)
{
        uint64_t v = 0;

        if (!s || n == 0)
                return -EINVAL;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned digit = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                v = v * 10 + digit;
        }

        if (v < min || v > max)
                return -ERANGE;

        *ret_value = v;
        return 0;
}

int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret_value)
{
        if (!s)
                return -EINVAL;
        return num_parse_u64_n(s, strlen(s), min, max, ret_value);
}

int xsnprintf(char *dst, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        int r = vsnprintf(dst, size, fmt, ap);
        va_end(ap);

        if (r < 0)
                return -EINVAL;
        if ((size_t) r >= size)
                return -ENOBUFS;
        return r;
}
