/* SPDX-License-Identifier: MIT */
/*
 * test_reconcile_delay.c: how long a change waits after a reconcile
 * (run_reconcile_delay): as long as that reconcile took, at most the cap,
 * nothing after a quiet spell.
 */
#include "check.h"
#include "cli/run.h"

TEST(run_reconcile_delay_follows_the_last_cost)
{
	/* a 2 ms reconcile ended 1 ms ago: 1 ms more */
	CHECK_EQ_INT(run_reconcile_delay(1000, 2, 1001, 20), 1);
	/* a cheap one no longer holds a change back once its cost has passed */
	CHECK_EQ_INT(run_reconcile_delay(1000, 2, 1002, 20), 0);
	CHECK_EQ_INT(run_reconcile_delay(1000, 2, 1500, 20), 0);
	/* a costly one (a whole pass) holds it at most the cap */
	CHECK_EQ_INT(run_reconcile_delay(1000, 90, 1000, 20), 20);
	CHECK_EQ_INT(run_reconcile_delay(1000, 90, 1015, 20), 5);
	/* right after start: nothing reconciled yet */
	CHECK_EQ_INT(run_reconcile_delay(0, 0, 5000, 20), 0);
}
