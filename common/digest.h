/* digest.h: SHA-256 through OpenSSL's libcrypto (docs/ARCHITECTURE.md,
 * "Digests": SHA-NI/AVX2 code paths, and sha256sum(1) checks the same value).
 *
 * Used by both sides: the server's whole-file digest and tail-hash check, the
 * client's tail hash of its partial file and --verify.  No logging. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct digest;

/* Return: a new SHA-256 context, or NULL when out of memory. */
struct digest *digest_new(void);
/* Accepts NULL.  Return: NULL. */
struct digest *digest_free(struct digest *d);
/* Return: 0, or -EIO if libcrypto failed. */
int digest_update(struct digest *d, const void *buf, size_t n);
/* Finish into out; the context can then only be freed.  Return: 0 or -EIO. */
int digest_final(struct digest *d, uint8_t out[NL_DIGEST_SIZE]);

/* SHA-256 of bytes [offset, offset + len) of fd, read with pread() so the
 * file position is untouched.  Return: 0; -ENODATA if the file ends before
 * offset + len (it shrank); -ENOMEM; -EIO; negative errno of pread(). */
int digest_fd_range(int fd, uint64_t offset, uint64_t len, uint8_t out[NL_DIGEST_SIZE]);

/* Lowercase hex of a digest into buf (at least 2 * NL_DIGEST_SIZE + 1). */
void digest_hex(const uint8_t digest[NL_DIGEST_SIZE], char *buf, size_t size);
