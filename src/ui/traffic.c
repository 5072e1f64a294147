/* SPDX-License-Identifier: MIT */
/*
 * traffic.c: the live figures behind the Traffic page. Once a second the
 * UI thread's loop takes the data plane's counters (through the get_stats
 * callback) and keeps the difference to the previous second as one sample
 * (requests, status classes, p50/p99 from the latency histogram, bytes,
 * connections) in a ring of five minutes; once a minute it adds that
 * minute's figures to the store's traffic rollups (24 hours kept there).
 * The ring is read by libmicrohttpd's thread under traffic_mu.
 */
#include <string.h>

#include "core/loop.h"
#include "store/store.h"
#include "ui/internal.h"

static void stats_delta(const struct ui_stats *now, const struct ui_stats *then,
			struct ui_stats *out)
{
	const uint64_t *a = (const uint64_t *)now, *b = (const uint64_t *)then;
	uint64_t *o = (uint64_t *)out;

	/* every field is a uint64_t counter; active_connections is a gauge and
	 * is copied as is below */
	_Static_assert(sizeof(*now) % sizeof(uint64_t) == 0, "ui_stats holds only uint64_t");
	for (size_t i = 0; i < sizeof(*now) / sizeof(uint64_t); i++)
		o[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
	out->active_connections = now->active_connections;
}

static void roll_minute(struct ui *ui, const struct ui_stats *now, uint64_t minute)
{
	struct ui_stats d;
	struct store_traffic t;

	stats_delta(now, &ui->minute_base, &d);
	t = (struct store_traffic){
		.minute = ui->minute,
		.requests = d.requests,
		.errors = d.responses_by_class[5] + d.upstream_errors,
		.p50_ms = ui_percentile_ms(d.latency_buckets, 50),
		.p99_ms = ui_percentile_ms(d.latency_buckets, 99),
		.bytes = d.bytes_out,
	};
	if (ui->store && d.requests) {
		pthread_mutex_lock(&ui->store_mu);
		store_traffic_add(ui->store, &t);
		pthread_mutex_unlock(&ui->store_mu);
	}
	ui->minute_base = *now;
	ui->minute = minute;
}

void ui_traffic_tick(struct timer *t)
{
	struct ui *ui = t->arg;
	struct ui_stats now = {0}, d;
	struct ui_sample s = {0};
	uint64_t wall = clock_wall_ms(), minute = wall / 60000;

	timer_add(ui->loop, t, 1000, ui_traffic_tick, ui);
	ui_route_rates_tick(ui, clock_mono_ms());
	if (!ui->cb.get_stats)
		return;
	ui->cb.get_stats(ui->cb_arg, &now);
	if (!ui->have_last) {
		ui->last_stats = now;
		ui->minute_base = now;
		ui->minute = minute;
		ui->have_last = true;
		return;
	}
	stats_delta(&now, &ui->last_stats, &d);
	s.t_ms = wall;
	s.rps = (uint32_t)d.requests;
	s.p50_ms = ui_percentile_ms(d.latency_buckets, 50);
	s.p99_ms = ui_percentile_ms(d.latency_buckets, 99);
	for (int i = 0; i < 6; i++)
		s.by_class[i] = (uint32_t)d.responses_by_class[i];
	s.bytes_out = d.bytes_out;
	s.active = now.active_connections;
	pthread_mutex_lock(&ui->traffic_mu);
	ui->samples[ui->n_samples % UI_SAMPLES] = s;
	ui->n_samples++;
	pthread_mutex_unlock(&ui->traffic_mu);
	ui->last_stats = now;
	if (minute != ui->minute)
		roll_minute(ui, &now, minute);
}

size_t ui_samples_copy(struct ui *ui, struct ui_sample *out, size_t max)
{
	size_t n = 0;
	uint64_t first;

	pthread_mutex_lock(&ui->traffic_mu);
	first = ui->n_samples > UI_SAMPLES ? ui->n_samples - UI_SAMPLES : 0;
	if (max && ui->n_samples - first > max)
		first = ui->n_samples - max;
	for (uint64_t i = first; i < ui->n_samples; i++)
		out[n++] = ui->samples[i % UI_SAMPLES];
	pthread_mutex_unlock(&ui->traffic_mu);
	return n;
}
