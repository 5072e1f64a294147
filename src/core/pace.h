/* SPDX-License-Identifier: MIT */
/*
 * pace.h: a token bucket that paces writes to rate per second, with bursts
 * of up to rate. Start it full with pace_init(); before each write call
 * pace_wait_ms(): 0 means go (and spend a token with pace_spend()), more
 * means try again after that many milliseconds.
 */
#ifndef WG_CORE_PACE_H
#define WG_CORE_PACE_H

#include <stdint.h>

struct pace {
	double tokens;
	uint64_t last_ms; /* when tokens was last brought up to date, 0 = never */
};

static inline void pace_init(struct pace *p, double rate) { *p = (struct pace){.tokens = rate}; }

/* Adds the tokens earned since the last call (at most rate in the bucket)
 * and returns 0 when one is there, or the milliseconds until one is. */
static inline uint64_t pace_wait_ms(struct pace *p, double rate, uint64_t now_ms)
{
	if (p->last_ms) {
		p->tokens += (double)(now_ms - p->last_ms) * rate / 1000.0;
		if (p->tokens > rate)
			p->tokens = rate;
	}
	p->last_ms = now_ms;
	return p->tokens >= 1.0 ? 0 : (uint64_t)((1.0 - p->tokens) * 1000.0 / rate) + 1;
}

static inline void pace_spend(struct pace *p) { p->tokens -= 1.0; }

#endif
