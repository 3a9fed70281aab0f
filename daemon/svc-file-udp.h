/* svc-file-udp.h: the pure parts of the udp file listener (svc-file-udp.c),
 * exported for the unit tests: the address-validation cookie and the table
 * of running transfers.  No I/O, no clock reads: the caller passes the time. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "siphash.h"

/* ---- cookies (docs/PROTOCOL.md, section 11: address validation) ----
 *
 * A cookie is u32 time (seconds of CLOCK_MONOTONIC, big-endian) and a 16-byte
 * MAC over (time, client_id, peer address, peer port): SipHash-2-4 under two
 * independent random keys, one 64-bit half each.  Nothing is stored: a
 * cookie proves that whoever sends it received our RETRY at that address
 * and port, within the lifetime. */

#define FILE_UDP_COOKIE_SIZE 20u
#define FILE_UDP_COOKIE_LIFETIME_SEC 30u

struct file_udp_cookie_key {
        struct siphash_key k[2];
};

enum file_udp_cookie_verdict {
        FILE_UDP_COOKIE_VALID,
        FILE_UDP_COOKIE_EXPIRED,    /* ours, but older than the lifetime: send a fresh one */
        FILE_UDP_COOKIE_INVALID,    /* wrong size, wrong MAC, or from the future: drop */
};

/* Fill key from getrandom(2).  Return: 0; -EAGAIN early in boot; negative errno. */
int file_udp_cookie_key_new(struct file_udp_cookie_key *key);

/* The cookie for a peer (AF_INET or AF_INET6; IPv4 and v4-mapped IPv6 give
 * the same cookie) at now_usec (CLOCK_MONOTONIC). */
void file_udp_cookie_make(const struct file_udp_cookie_key *key, uint64_t now_usec, uint32_t client_id,
                          const struct sockaddr *peer, uint8_t out[FILE_UDP_COOKIE_SIZE]);

/* Check a cookie a peer sent back.  Return: the verdict. */
enum file_udp_cookie_verdict file_udp_cookie_check(const struct file_udp_cookie_key *key, uint64_t now_usec,
                                                   uint32_t client_id, const struct sockaddr *peer,
                                                   const uint8_t *cookie, size_t len);

/* ---- the table of running transfers ---- */

struct file_udp_transfer {
        pid_t pid;
        struct in6_addr addr;       /* the peer, IPv4 as v4-mapped (children_source_key()) */
        uint16_t port;
        uint32_t client_id;
};

/* At most cap entries, allocated once; entries [0, n) are in use (a removal
 * moves the last one into the hole). */
struct file_udp_table {
        struct file_udp_transfer *v;
        size_t n, cap;
};

/* Allocate room for cap entries, and take over old's entries (a reload:
 * running transfers stay counted), growing cap to hold them all if the new
 * limit is lower.  old may be NULL; it is only read.
 * Return: 0; -ENOMEM; -EINVAL if cap is 0. */
int file_udp_table_init(struct file_udp_table *t, size_t cap, const struct file_udp_table *old);
void file_udp_table_done(struct file_udp_table *t);

/* The transfer for this peer and client_id, or NULL. */
const struct file_udp_transfer *file_udp_table_find(const struct file_udp_table *t, const struct in6_addr *addr,
                                                    uint16_t port, uint32_t client_id);
/* How many transfers run for this address (any port). */
size_t file_udp_table_count_source(const struct file_udp_table *t, const struct in6_addr *addr);
/* Return: 0; -ENOSPC if full. */
int file_udp_table_add(struct file_udp_table *t, const struct file_udp_transfer *e);
/* Return: true if pid was in the table (it is gone now). */
bool file_udp_table_remove(struct file_udp_table *t, pid_t pid);
