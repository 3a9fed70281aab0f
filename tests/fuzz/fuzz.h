/* fuzz.h: what every libFuzzer target in tests/fuzz/ shares.
 *
 * A target checks invariants, not only "no crash": a broken invariant
 * prints what was wrong and aborts, which libFuzzer reports as a crash and
 * saves the input.  Decoders are always fed exactly-sized heap copies so
 * AddressSanitizer sees any read past the end of the input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_check(cond, ...)                                                                     \
        do {                                                                                      \
                if (!(cond)) {                                                                    \
                        fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,      \
                                #cond);                                                           \
                        fprintf(stderr, __VA_ARGS__);                                             \
                        fputc('\n', stderr);                                                      \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

/* An exactly-sized heap copy of buf[0..n) (a valid pointer even for n == 0).
 * Aborts on allocation failure: the fuzzer's inputs are small. */
static inline uint8_t *fuzz_dup(const uint8_t *buf, size_t n)
{
        uint8_t *p = malloc(n > 0 ? n : 1);

        if (!p)
                abort();
        if (n > 0)
                memcpy(p, buf, n);
        return p;
}

/* Is ret one of the n values in allowed? */
static inline bool fuzz_rc_in(int ret, const int *allowed, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (ret == allowed[i])
                        return true;
        return false;
}

#define FUZZ_RC_IN(ret, ...)                                                                      \
        fuzz_rc_in((ret), (const int[]) { __VA_ARGS__ },                                          \
                   sizeof((const int[]) { __VA_ARGS__ }) / sizeof(int))

/* A view inside [base, base + n)? */
static inline bool fuzz_inside(const void *p, size_t len, const void *base, size_t n)
{
        const uint8_t *q = p, *b = base;

        if (len == 0)
                return true;
        return q >= b && q <= b + n && len <= (size_t) (b + n - q);
}
