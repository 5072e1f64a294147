/* SPDX-License-Identifier: MIT */
/*
 * routestats.c: traffic per route for the Routes page, the API and
 * /metrics. Takes every route rule's counters through the get_route_stats
 * callback (sorted by route, then rule, for lookups), and keeps the rates:
 * every UI_RATE_WINDOW_MS the UI thread's sampler takes the counters and
 * keeps, per rule id, how many requests, responses and 5xx responses the
 * window saw; requests per second and the error share of a route are
 * computed from those when asked. Ids are stable while waygate runs, so
 * a new snapshot does not restart a rule's window.
 *
 * Threads: ui_rates_update runs on the UI thread (the sampler), the
 * readers on libmicrohttpd's, both under ui->traffic_mu (the ui_ wrappers
 * take it). The pure functions take the state as an argument (unit tests).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ui/internal.h"

static int stats_cmp(const void *a, const void *b)
{
	const struct ui_route_stats *x = a, *y = b;
	int c = strcmp(x->route, y->route);

	return c ? c : (x->rule > y->rule) - (x->rule < y->rule);
}

struct ui_route_stats *ui_route_stats_all(struct ui *ui, size_t *n)
{
	struct ui_route_stats *v = NULL;
	size_t cap = 64, got;

	*n = 0;
	if (!ui->cb.get_route_stats)
		return NULL;
	/* the served snapshot may grow between two calls: retry a few times */
	for (int tries = 0; tries < 4; tries++) {
		struct ui_route_stats *nv = realloc(v, cap * sizeof(*v));

		if (!nv)
			break;
		v = nv;
		got = ui->cb.get_route_stats(ui->cb_arg, v, cap);
		if (got <= cap) {
			size_t k = 0;

			for (size_t i = 0; i < got; i++)
				if (v[i].route)
					v[k++] = v[i];
			qsort(v, k, sizeof(*v), stats_cmp);
			*n = k;
			if (!k) {
				free(v);
				v = NULL;
			}
			return v;
		}
		cap = got + got / 8 + 16;
	}
	free(v);
	return NULL;
}

const struct ui_route_stats *ui_route_stats_find(const struct ui_route_stats *v, size_t n,
						 const char *route, uint32_t rule)
{
	struct ui_route_stats key = {.route = route, .rule = rule};

	return n && route ? bsearch(&key, v, n, sizeof(*v), stats_cmp) : NULL;
}

size_t ui_route_stats_range(const struct ui_route_stats *v, size_t n, const char *route,
			    size_t *first)
{
	size_t lo = 0, hi = n, count = 0;

	/* lower bound of (route, rule 0) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].route, route) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (lo + count < n && !strcmp(v[lo + count].route, route))
		count++;
	return count;
}

static uint64_t responses(const struct ui_route_stats *s)
{
	uint64_t t = 0;

	for (int k = 0; k < 6; k++)
		t += s->responses_by_class[k];
	return t;
}

int ui_rates_update(struct ui_rates *r, const struct ui_route_stats *s, size_t n, uint64_t now_ms)
{
	uint32_t max_id = 0;
	bool closes = r->window_start_ms && now_ms - r->window_start_ms >= UI_RATE_WINDOW_MS;

	if (r->window_start_ms && !closes)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].id > max_id)
			max_id = s[i].id;
	if (max_id >= r->cap) {
		size_t cap = max_id + 1 + max_id / 4;
		struct ui_rule_rate *nv = realloc(r->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		memset(nv + r->cap, 0, (cap - r->cap) * sizeof(*nv));
		r->v = nv;
		r->cap = cap;
	}
	/* rules not in s (no longer served) keep their base: their counters
	 * resume from it when they come back */
	for (size_t i = 0; i < n; i++) {
		struct ui_rule_rate *e = &r->v[s[i].id];
		uint64_t resp = responses(&s[i]), r5 = s[i].responses_by_class[5];

		if (e->has_base && closes) {
			e->d_requests = s[i].requests - e->base_requests;
			e->d_responses = resp - e->base_responses;
			e->d_5xx = r5 - e->base_5xx;
			e->window = r->windows + 1;
		}
		e->base_requests = s[i].requests;
		e->base_responses = resp;
		e->base_5xx = r5;
		e->has_base = true;
	}
	if (closes) {
		r->window_ms = now_ms - r->window_start_ms;
		r->windows++;
	}
	r->window_start_ms = now_ms;
	return 0;
}

bool ui_rates_sum(const struct ui_rates *r, const struct ui_route_stats *s, size_t n,
		  struct ui_route_rate *out)
{
	uint64_t req = 0, resp = 0, r5 = 0;
	bool any = false;

	memset(out, 0, sizeof(*out));
	if (!r->windows || !r->window_ms)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct ui_rule_rate *e = s[i].id < r->cap ? &r->v[s[i].id] : NULL;

		/* only rules whose last window is the newest one */
		if (!e || e->window != r->windows)
			continue;
		any = true;
		req += e->d_requests;
		resp += e->d_responses;
		r5 += e->d_5xx;
	}
	if (!any)
		return false;
	out->rps = (double)req * 1000.0 / (double)r->window_ms;
	out->error_share = resp ? (double)r5 / (double)resp : 0.0;
	out->window_s = (double)r->window_ms / 1000.0;
	return true;
}

void ui_rates_fini(struct ui_rates *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void ui_route_rates_tick(struct ui *ui, uint64_t now_ms)
{
	struct ui_route_stats *s;
	size_t n;

	if (!ui->cb.get_route_stats)
		return;
	pthread_mutex_lock(&ui->traffic_mu);
	bool due = !ui->rates.window_start_ms ||
		   now_ms - ui->rates.window_start_ms >= UI_RATE_WINDOW_MS;
	pthread_mutex_unlock(&ui->traffic_mu);
	if (!due)
		return;
	s = ui_route_stats_all(ui, &n);
	pthread_mutex_lock(&ui->traffic_mu);
	ui_rates_update(&ui->rates, s, n, now_ms);
	pthread_mutex_unlock(&ui->traffic_mu);
	free(s);
}
