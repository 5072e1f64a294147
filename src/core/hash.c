/* SPDX-License-Identifier: MIT */
/*
 * hash.c: FNV-1a hashing and a per-thread xorshift64* generator (see
 * hash.h). Not for secrets.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/hash.h"
#include "core/str.h"

uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t hash_wide(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

uint64_t hash_bytes_lower(const void *p, size_t n)
{
	const char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)ascii_lower(s[i]);
		h *= 0x100000001b3ULL;
	}
	return h;
}

static __thread uint64_t rng_state;

uint64_t rand_u64(void)
{
	if (!rng_state) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) != sizeof(rng_state)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rng_state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)&ts;
		}
		if (!rng_state)
			rng_state = 0x9e3779b97f4a7c15ULL;
	}
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

uint32_t rand_below(uint32_t n)
{
	return (uint32_t)(((rand_u64() >> 32) * (uint64_t)n) >> 32);
}
