/* SPDX-License-Identifier: MIT */
/*
 * test_traffic.c: the per-second sampler (src/ui/traffic.c) over a fake
 * counter source: each sample holds the difference to the previous second,
 * percentiles come from the histogram's difference, the ring keeps the
 * newest five minutes in order; and the listen-address parser of front.c
 * (through ui_front_open) accepts and refuses what it should.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "core/loop.h"
#include "ui/internal.h"

static struct ui_stats fake;

static void fake_stats(void *arg, struct ui_stats *out)
{
	(void)arg;
	*out = fake;
}

TEST(ui_traffic_samples_are_deltas)
{
	struct ui *ui = calloc(1, sizeof(*ui));
	struct timer t = {0};
	struct ui_sample *s = calloc(UI_SAMPLES, sizeof(*s));
	size_t n;

	ui->loop = loop_new();
	pthread_mutex_init(&ui->traffic_mu, NULL);
	ui->cb.get_stats = fake_stats;
	t.arg = ui;
	memset(&fake, 0, sizeof(fake));
	fake.requests = 1000; /* counters before the UI started */
	ui_traffic_tick(&t);  /* the first tick only takes the base */
	CHECK_EQ_INT(ui_samples_copy(ui, s, UI_SAMPLES), 0);
	fake.requests += 50;
	fake.responses_by_class[2] += 45;
	fake.responses_by_class[5] += 5;
	fake.latency_buckets[0] += 49; /* <= 1 ms */
	fake.latency_buckets[7] += 1;  /* <= 500 ms */
	fake.bytes_out += 4096;
	fake.active_connections = 7;
	ui_traffic_tick(&t);
	n = ui_samples_copy(ui, s, UI_SAMPLES);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(s[0].rps, 50);
	CHECK_EQ_INT(s[0].by_class[2], 45);
	CHECK_EQ_INT(s[0].by_class[5], 5);
	CHECK_EQ_INT(s[0].p50_ms, 1);
	CHECK_EQ_INT(s[0].p99_ms, 500);
	CHECK_EQ_INT(s[0].bytes_out, 4096);
	CHECK_EQ_INT(s[0].active, 7);
	/* a counter that went backwards (a restart) counts as zero */
	fake.requests = 10;
	ui_traffic_tick(&t);
	n = ui_samples_copy(ui, s, UI_SAMPLES);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(s[1].rps, 0);
	/* the ring keeps the newest UI_SAMPLES, oldest first */
	for (int i = 0; i < UI_SAMPLES + 20; i++) {
		fake.requests += (uint64_t)i;
		ui_traffic_tick(&t);
	}
	n = ui_samples_copy(ui, s, UI_SAMPLES);
	CHECK_EQ_INT(n, UI_SAMPLES);
	CHECK_EQ_INT(s[n - 1].rps, UI_SAMPLES + 19);
	CHECK_EQ_INT(s[0].rps, 20);
	n = ui_samples_copy(ui, s, 3);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(s[2].rps, UI_SAMPLES + 19);
	timer_cancel(ui->loop, &t);
	loop_free(ui->loop);
	pthread_mutex_destroy(&ui->traffic_mu);
	free(ui);
	free(s);
}

TEST(ui_listen_addresses)
{
	static const struct {
		const char *listen;
		bool ok;
	} cases[] = {
		{"127.0.0.1:0", true},     {"[::1]:0", true},         {"0.0.0.0", false},
		{":9443", false},          {"127.0.0.1:", false},     {"127.0.0.1:65536", false},
		{"127.0.0.1:94a3", false}, {"localhost:9443", false}, {"[::1]", false},
		{"::1:9443", false},       {"[::1]9443", false},      {"", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ui *ui = calloc(1, sizeof(*ui));
		struct diag d = {0};
		char line[512];
		int rc;

		ui->listen = strdup(cases[i].listen);
		ui->lfd = -1;
		rc = ui_front_open(ui, &d);
		if ((rc == 0) != cases[i].ok)
			CHECK_FAIL_("listen \"%s\": rc %d", cases[i].listen, rc);
		if (rc == 0) {
			CHECK(ui->port != 0);
			CHECK(strstr(ui->bound, ":") != NULL);
			close(ui->lfd);
		} else {
			CHECK(d.n == 1 && strstr(diag_format(&d.v[0], line, sizeof(line)),
						 "--ui-listen") != NULL);
		}
		ui_hosts_fini(&ui->hosts);
		diag_fini(&d);
		free(ui->listen);
		free(ui);
	}
}
