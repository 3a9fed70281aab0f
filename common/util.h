/* util.h: small helpers shared by every netlab program.
 *
 * Cleanup attributes for single-owner locals, ownership hand-off macros, safe
 * number parsing and text checks/escaping for strings that came from a peer or
 * a config file.  Nothing here logs, exits or touches the network. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
        free(*(void **) p);
}

static inline void closep(const int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd); /* nothing useful to do on a failed close of a read side */
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                (void) fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership out of a cleanup-managed local. */
#define TAKE_PTR(p) ({ __typeof__(p) _took = (p); (p) = NULL; _took; })
#define TAKE_FD(fd) ({ int _took = (fd); (fd) = -1; _took; })

/* Close fd if it is valid; always returns -1 so `fd = safe_close(fd);` works. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

/* num.c */

/* Parse a whole decimal string into an unsigned 64-bit number in [min, max].
 * Rejects empty input, signs, leading/trailing spaces, trailing junk and
 * overflow.
 * Return: 0 and *ret_value on success; -EINVAL if not a plain decimal number;
 * -ERANGE if it does not fit or lies outside [min, max]. */
int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret_value);

/* Same, for a length-delimited buffer of n bytes (no NUL terminator needed). */
int num_parse_u64_n(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *ret_value);

/* text.c */

/* Check that buf[0..n) is printable UTF-8 text: no C0 controls except TAB, no
 * DEL, no C1 controls, no overlong forms, no surrogates, nothing above U+10FFFF.
 * Return: 0 if it is; -EBADMSG otherwise, with *ret_bad_offset (if not NULL) set
 * to the offset of the first offending byte. */
int text_check(const uint8_t *buf, size_t n, size_t *ret_bad_offset);

/* Write buf[0..n) into dst as a C-style escaped string (\n, \t, \\, \", \xHH for
 * anything not printable ASCII), always NUL-terminated, truncated with "..."
 * when dst is too small.  dst_size must be at least 4.
 * Return: the number of bytes written, excluding the NUL. */
size_t text_escape(char *dst, size_t dst_size, const uint8_t *buf, size_t n);

/* snprintf that reports truncation.
 * Return: the length written, or -ENOBUFS if the result did not fit (dst is
 * then still NUL-terminated). */
int xsnprintf(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
