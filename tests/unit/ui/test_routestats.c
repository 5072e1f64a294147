/* SPDX-License-Identifier: MIT */
/*
 * Tests of ui/routestats.c: the per-route rates over a window (requests
 * per second and 5xx share, summed over a route's rules), nothing before
 * the first window closes, no update before the window is over, a rule that
 * leaves and comes back resumes from its base, and the lookups in the
 * sorted counters.
 */
#include "../check.h"
#include "ui/internal.h"

static struct ui_route_stats rule(uint32_t id, const char *route, uint32_t r, uint64_t req,
				  uint64_t ok, uint64_t r5)
{
	struct ui_route_stats s = {.id = id, .route = route, .rule = r, .requests = req};

	s.responses_by_class[2] = ok;
	s.responses_by_class[5] = r5;
	return s;
}

TEST(ui_rates_over_a_window_per_route)
{
	struct ui_rates r = {0};
	struct ui_route_rate rate;
	struct ui_route_stats s[3] = {rule(1, "a/web", 0, 100, 100, 0),
				      rule(2, "a/web", 1, 10, 10, 0),
				      rule(3, "b/shop", 0, 0, 0, 0)};

	CHECK_EQ_INT(ui_rates_update(&r, s, 3, 1000), 0);
	CHECK(!ui_rates_sum(&r, s, 2, &rate)); /* no window closed yet */

	/* 2 s later: too early, nothing changes */
	s[0] = rule(1, "a/web", 0, 150, 150, 0);
	CHECK_EQ_INT(ui_rates_update(&r, s, 3, 3000), 0);
	CHECK(!ui_rates_sum(&r, s, 2, &rate));

	/* the window closes at 6 s: web rule 0 +200 (20 of them 5xx), rule 1
	 * +50 (all fine), shop +25 with 5 errors */
	s[0] = rule(1, "a/web", 0, 300, 280, 20);
	s[1] = rule(2, "a/web", 1, 60, 60, 0);
	s[2] = rule(3, "b/shop", 0, 25, 20, 5);
	CHECK_EQ_INT(ui_rates_update(&r, s, 3, 6000), 0);
	CHECK(ui_rates_sum(&r, s, 2, &rate));
	CHECK_EQ_INT((int)(rate.rps * 10 + 0.5), 500);          /* 250 in 5 s */
	CHECK_EQ_INT((int)(rate.error_share * 1000 + 0.5), 80); /* 20 of 250 */
	CHECK_EQ_INT((int)(rate.window_s * 10 + 0.5), 50);
	CHECK(ui_rates_sum(&r, s + 2, 1, &rate));
	CHECK_EQ_INT((int)(rate.rps * 10 + 0.5), 50);
	CHECK_EQ_INT((int)(rate.error_share * 100 + 0.5), 20);

	/* shop is not served for a window: it has no rate of the newest one;
	 * back in the next, its counters resume from its base */
	CHECK_EQ_INT(ui_rates_update(&r, s, 2, 11000), 0);
	CHECK(!ui_rates_sum(&r, s + 2, 1, &rate));
	CHECK(ui_rates_sum(&r, s, 1, &rate));
	CHECK_EQ_INT((int)(rate.rps * 10 + 0.5), 0); /* web was idle */
	s[2] = rule(3, "b/shop", 0, 35, 30, 5);
	CHECK_EQ_INT(ui_rates_update(&r, s, 3, 16000), 0);
	CHECK(ui_rates_sum(&r, s + 2, 1, &rate));
	CHECK_EQ_INT((int)(rate.rps * 10 + 0.5), 20); /* 10 since its base, in 5 s */
	CHECK_EQ_INT((int)(rate.error_share * 100 + 0.5), 0);
	ui_rates_fini(&r);
}

TEST(ui_route_stats_sorted_lookups)
{
	struct ui_route_stats s[4] = {rule(4, "a/api", 0, 1, 0, 0), rule(1, "a/web", 0, 2, 0, 0),
				      rule(2, "a/web", 1, 3, 0, 0), rule(3, "b/web", 0, 4, 0, 0)};
	size_t first = 99;

	CHECK_EQ_INT(ui_route_stats_range(s, 4, "a/web", &first), 2);
	CHECK_EQ_INT(first, 1);
	CHECK_EQ_INT(ui_route_stats_range(s, 4, "a/nothing", &first), 0);
	CHECK_EQ_INT(ui_route_stats_range(s, 4, "b/web", &first), 1);
	CHECK_EQ_INT(first, 3);
	CHECK(ui_route_stats_find(s, 4, "a/web", 1) == &s[2]);
	CHECK(ui_route_stats_find(s, 4, "a/web", 2) == NULL);
	CHECK(ui_route_stats_find(s, 0, "a/web", 0) == NULL);
}
