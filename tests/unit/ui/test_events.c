/* SPDX-License-Identifier: MIT */
/*
 * test_events.c: the recent-events ring (src/ui/events.c): secret values are
 * redacted before a line is kept, the ring keeps the newest lines in order
 * and hands out only those after a sequence number.
 */
#include "check.h"
#include "ui/internal.h"

static const char *red(const char *in)
{
	static char b[UI_EVENT_LEN];

	snprintf(b, sizeof(b), "%s", in);
	ui_redact(b, sizeof(b));
	return b;
}

TEST(ui_redact_secret_keys)
{
	CHECK_EQ_STR(red("event=ui_first_start_password user=admin password=Xy7abc note=x"),
		     "event=ui_first_start_password user=admin password=[redacted] note=x");
	CHECK_EQ_STR(red("event=a token=\"a b c\" b=1"), "event=a token=[redacted] b=1");
	CHECK_EQ_STR(red("event=a bearer_token=abc client_key=k key=v"),
		     "event=a bearer_token=[redacted] client_key=[redacted] key=[redacted]");
	CHECK_EQ_STR(red("event=a detail=\"Authorization: Bearer abc.def\""),
		     "event=a detail=\"Authorization: Bearer [redacted]\"");
	CHECK_EQ_STR(red("event=a Secret=s PASSWD=p"),
		     "event=a Secret=[redacted] PASSWD=[redacted]");
	/* values that merely mention a word are kept; keys decide */
	CHECK_EQ_STR(red("event=ui_password_changed user=admin"),
		     "event=ui_password_changed user=admin");
	CHECK_EQ_STR(red("event=x monkey=1"), "event=x monkey=1");
}

TEST(ui_redact_grows_within_size)
{
	char b[40];

	snprintf(b, sizeof(b), "token=a token=b token=c token=d");
	CHECK(ui_redact(b, sizeof(b)));
	CHECK(strlen(b) < sizeof(b));
	CHECK(!strstr(b, "=a") && !strstr(b, "=b"));
	CHECK(strstr(b, "token=[redacted]"));
}

TEST(ui_events_ring)
{
	static struct ui_events ev;
	static struct ui_event out[UI_EVENTS];
	char line[64];
	size_t n;

	ui_events_init(&ev);
	CHECK_EQ_INT(ui_events_copy(&ev, 0, out, 10), 0);
	for (int i = 1; i <= UI_EVENTS + 10; i++) {
		snprintf(line, sizeof(line), "event=e n=%d password=pw%d", i, i);
		ui_events_sink(LOG_INFO, line, &ev);
	}
	n = ui_events_copy(&ev, 0, out, UI_EVENTS);
	CHECK_EQ_INT(n, UI_EVENTS);
	CHECK_EQ_INT(out[0].seq, 11);
	CHECK_EQ_INT(out[n - 1].seq, UI_EVENTS + 10);
	CHECK(!strstr(out[0].line, "pw11"));
	CHECK(strstr(out[0].line, "password=[redacted]"));
	n = ui_events_copy(&ev, UI_EVENTS + 8, out, 10);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(out[0].seq, UI_EVENTS + 9);
	/* at most max, the newest ones */
	n = ui_events_copy(&ev, 0, out, 3);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(out[2].seq, UI_EVENTS + 10);
	ui_events_fini(&ev);
}
