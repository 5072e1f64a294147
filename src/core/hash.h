/* SPDX-License-Identifier: MIT */
/*
 * hash.h: non-cryptographic hashing for tables (FNV-1a 64 and a case-folded
 * variant for host names) and a fast per-thread PRNG (xorshift64*) for load
 * balancing and jitter. Not for secrets: key material uses mbedTLS's CTR-DRBG
 * in tls/.
 */
#ifndef WG_CORE_HASH_H
#define WG_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *p, size_t n);
/* For large inputs (megabytes of configuration): eight bytes a step,
 * several times faster than hash_bytes; a different function. */
uint64_t hash_wide(const void *p, size_t n);
uint64_t hash_bytes_lower(const void *p, size_t n);
static inline uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}
/* Per-thread PRNG, seeded from getrandom() on first use. */
uint64_t rand_u64(void);
/* Uniform in [0, n); n > 0. */
uint32_t rand_below(uint32_t n);

#endif
