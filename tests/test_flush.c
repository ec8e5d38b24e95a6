/* test_flush.c - the backlog check, against each way a flush goes wrong. */
#include <criterion/criterion.h>
#include <string.h>

#include "flush.h"

#define MIN 60000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

/* A device recording every minute from T0; coverage cut at T0+10m for 30m.
 * Builds what a healthy device sends after the cut: the 30 backlog records
 * oldest first, then live ones, arriving from restore on. */
static size_t healthy(struct flush_record *r, struct flush_window *w)
{
	*w = (struct flush_window){ .cut_ms = T0 + 10 * MIN + 500, .restore_ms = T0 + 40 * MIN + 500,
				    .period_ms = MIN, .phase_ms = T0 + 5 * MIN };
	size_t n = 0;
	for (int k = 11; k <= 40; k++) /* made during the outage: 00:11..00:40 */
		r[n++] = (struct flush_record){ .ts_ms = T0 + k * MIN, .arrival_ms = w->restore_ms + 100 + (k - 11) * 50,
						.late = true };
	for (int k = 41; k <= 43; k++) /* live again */
		r[n++] = (struct flush_record){ .ts_ms = T0 + k * MIN, .arrival_ms = T0 + k * MIN + 20 };
	return n;
}

Test(flush, healthy_backlog_is_complete)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, r, n, 0, &rep), 0);
	cr_assert_eq(rep.expected, 30);
	cr_assert_eq(rep.arrived, 30);
	cr_assert(rep.complete, "%s", rep.summary);
	cr_assert_eq(rep.drain_ms, 100 + 29 * 50, "drain %lld ms: %s", (long long)rep.drain_ms, rep.summary);
	cr_assert_gt(rep.rate, 10);
}

Test(flush, silently_dropped_records_are_gaps_with_time_ranges)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	/* Drop 00:15, 00:16, 00:17 and 00:30. */
	struct flush_record kept[64];
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t min = (r[i].ts_ms - T0) / MIN;
		if (min == 15 || min == 16 || min == 17 || min == 30)
			continue;
		kept[m++] = r[i];
	}
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, kept, m, 0, &rep), 0);
	cr_assert_not(rep.complete);
	cr_assert_eq(rep.missing, 4);
	cr_assert(strstr(rep.summary, "3 missing 00:15:00..00:17:00"), "%s", rep.summary);
	cr_assert(strstr(rep.summary, "1 missing 00:30:00..00:30:00"), "%s", rep.summary);
}

Test(flush, rewritten_timestamps_are_named)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	/* The device stamps its backlog with the send time. */
	for (size_t i = 0; i < 30; i++)
		r[i].ts_ms = r[i].arrival_ms - 7;
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, r, n, 0, &rep), 0);
	cr_assert_not(rep.complete);
	cr_assert_geq(rep.rewritten, 20, "%s", rep.summary);
	cr_assert_geq(rep.missing, 20, "%s", rep.summary);
}

Test(flush, duplicates_count_whether_stored_or_recognised)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, r, n, 3, &rep), 0);
	cr_assert_eq(rep.duplicates, 3);
	cr_assert_not(rep.complete);
	r[n] = r[4]; /* one that got stored twice anyway */
	r[n].arrival_ms += 10000;
	cr_assert_eq(flush_check(&w, r, n + 1, 0, &rep), 0);
	cr_assert_eq(rep.duplicates, 1, "%s", rep.summary);
}

Test(flush, order_against_the_declared_one)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	struct flush_report rep;
	w.newest_first = true; /* the model declares newest first, sends oldest first */
	cr_assert_eq(flush_check(&w, r, n, 0, &rep), 0);
	cr_assert_eq(rep.out_of_order, 29, "%s", rep.summary);
	cr_assert(strstr(rep.summary, "out of newest-first order"), "%s", rep.summary);
	/* Reverse the backlog: now it matches. */
	for (size_t i = 0; i < 15; i++) {
		int64_t t = r[i].ts_ms;
		r[i].ts_ms = r[29 - i].ts_ms;
		r[29 - i].ts_ms = t;
	}
	cr_assert_eq(flush_check(&w, r, n, 0, &rep), 0);
	cr_assert_eq(rep.out_of_order, 0, "%s", rep.summary);
}

Test(flush, backlog_not_flagged_late_is_a_fault)
{
	struct flush_record r[64];
	struct flush_window w;
	size_t n = healthy(r, &w);
	r[3].late = r[9].late = false;
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, r, n, 0, &rep), 0);
	cr_assert_eq(rep.not_late, 2);
	cr_assert_not(rep.complete);
}

Test(flush, nonsense_windows_are_refused)
{
	struct flush_window w = { .cut_ms = T0, .restore_ms = T0 - 1, .period_ms = MIN, .phase_ms = T0 };
	struct flush_report rep;
	cr_assert_eq(flush_check(&w, NULL, 0, 0, &rep), -1);
	w.restore_ms = T0 + MIN;
	w.period_ms = 0;
	cr_assert_eq(flush_check(&w, NULL, 0, 0, &rep), -1);
	/* Nothing arrived at all: every expected record is missing. */
	w.period_ms = MIN;
	w.restore_ms = T0 + 10 * MIN;
	cr_assert_eq(flush_check(&w, NULL, 0, 0, &rep), 0);
	cr_assert_eq(rep.missing, rep.expected);
	cr_assert_eq(rep.expected, 10);
}
