/* digest.c: SHA-256 over libcrypto's EVP interface (see digest.h). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

/* 256 KiB: large enough that the syscall count does not matter, small enough
 * to stay in L2 while it is hashed. */
#define DIGEST_READ_CHUNK (256u * 1024u)

struct digest {
        EVP_MD_CTX *ctx;
};

struct digest *digest_new(void)
{
        struct digest *d = calloc(1, sizeof *d);

        if (!d)
                return NULL;
        d->ctx = EVP_MD_CTX_new();
        if (!d->ctx || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1)
                return digest_free(d);
        return d;
}

struct digest *digest_free(struct digest *d)
{
        if (!d)
                return NULL;
        EVP_MD_CTX_free(d->ctx);
        free(d);
        return NULL;
}

int digest_update(struct digest *d, const void *buf, size_t n)
{
        return EVP_DigestUpdate(d->ctx, buf, n) == 1 ? 0 : -EIO;
}

int digest_final(struct digest *d, uint8_t out[NL_DIGEST_SIZE])
{
        unsigned len = 0;

        if (EVP_DigestFinal_ex(d->ctx, out, &len) != 1 || len != NL_DIGEST_SIZE)
                return -EIO;
        return 0;
}

int digest_fd_range(int fd, uint64_t offset, uint64_t len, uint8_t out[NL_DIGEST_SIZE])
{
        _cleanup_free_ uint8_t *buf = NULL;
        struct digest *d = NULL;
        int r = 0;

        if (offset > INT64_MAX || len > (uint64_t) INT64_MAX - offset)
                return -EINVAL;
        buf = malloc(DIGEST_READ_CHUNK);
        d = digest_new();
        if (!buf || !d) {
                digest_free(d);
                return -ENOMEM;
        }

        while (len > 0) {
                size_t want = len < DIGEST_READ_CHUNK ? (size_t) len : DIGEST_READ_CHUNK;
                ssize_t k = pread(fd, buf, want, (off_t) offset);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (k == 0) {
                        r = -ENODATA;
                        break;
                }
                r = digest_update(d, buf, (size_t) k);
                if (r < 0)
                        break;
                offset += (uint64_t) k;
                len -= (uint64_t) k;
        }
        if (r >= 0)
                r = digest_final(d, out);
        digest_free(d);
        return r;
}

void digest_hex(const uint8_t digest[NL_DIGEST_SIZE], char *buf, size_t size)
{
        static const char hex[] = "0123456789abcdef";

        if (size == 0)
                return;
        size_t n = 0;
        for (size_t i = 0; i < NL_DIGEST_SIZE && n + 2 < size; i++) {
                buf[n++] = hex[digest[i] >> 4];
                buf[n++] = hex[digest[i] & 15];
        }
        buf[n] = '\0';
}
