/* siphash.h: SipHash-2-4, the keyed hash for the supervisor's tables.
 *
 * The per-source rate table and the guess rounds are indexed by a hash of the
 * client's claimed address.  Anyone can choose that address, so the hash is
 * keyed with a secret from getrandom(2): without the key, an attacker cannot
 * aim a flood at one set of the table (Aumasson and Bernstein, "SipHash: a
 * fast short-input PRF", 2012; the same reason the Linux kernel and every
 * scripting language key their hash tables with it). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
        uint64_t k0, k1;
};

/* Fill key from getrandom(2) without blocking.  Return: 0; negative errno
 * (-EAGAIN early in boot, before the kernel's pool is ready). */
int siphash_key_random(struct siphash_key *key);

/* SipHash-2-4 of data[0..n) under key. */
uint64_t siphash24(const struct siphash_key *key, const void *data, size_t n);
