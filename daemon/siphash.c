/* siphash.c: SipHash-2-4 (see siphash.h), from the paper's specification.
 * Checked against the paper's reference vectors in tests/unit/test-dgram.c. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                  \
        do {                                                                      \
                v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);         \
                v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                            \
                v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                            \
                v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);         \
        } while (0)

static uint64_t load_le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

int siphash_key_random(struct siphash_key *key)
{
        uint8_t buf[16];
        ssize_t n;

        do
                n = getrandom(buf, sizeof buf, GRND_NONBLOCK);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t) n != sizeof buf)
                return -EAGAIN;
        key->k0 = load_le64(buf);
        key->k1 = load_le64(buf + 8);
        return 0;
}

uint64_t siphash24(const struct siphash_key *key, const void *data, size_t n)
{
        const uint8_t *in = data;
        uint64_t v0 = 0x736f6d6570736575ull ^ key->k0;
        uint64_t v1 = 0x646f72616e646f6dull ^ key->k1;
        uint64_t v2 = 0x6c7967656e657261ull ^ key->k0;
        uint64_t v3 = 0x7465646279746573ull ^ key->k1;
        size_t whole = n - n % 8;

        for (size_t i = 0; i < whole; i += 8) {
                uint64_t m = load_le64(in + i);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }

        /* The last block: the remaining bytes, and the length in the top byte. */
        uint64_t b = (uint64_t) n << 56;
        for (size_t i = 0; i < n % 8; i++)
                b |= (uint64_t) in[whole + i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;

        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}
