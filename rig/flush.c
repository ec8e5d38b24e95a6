/* flush.c - checking an offline backlog against the device's schedule. */
#include "flush.h"
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *hms(int64_t ms, char *buf, size_t len)
{
	return time_hms(ms, buf, len);
}

/* The schedule point nearest T, and how far T is from it. */
static int64_t grid_dist(const struct flush_window *w, int64_t t, int64_t *point)
{
	int64_t k = (t - w->phase_ms) / w->period_ms;
	int64_t a = w->phase_ms + k * w->period_ms;
	if (t < a) /* negative division rounds toward zero */
		a -= w->period_ms;
	int64_t b = a + w->period_ms;
	*point = t - a <= b - t ? a : b;
	return llabs(t - *point);
}

int flush_check(const struct flush_window *w, const struct flush_record *recs, size_t n, int duplicates,
		struct flush_report *out)
{
	memset(out, 0, sizeof *out);
	if (w->period_ms <= 0 || w->restore_ms < w->cut_ms)
		return -1;
	/* A record is on schedule within 2 s (a quarter period for short ones):
	 * device clocks tick in whole seconds. */
	const int64_t tol = w->period_ms / 4 < 2000 ? w->period_ms / 4 : 2000;
	int64_t first;
	grid_dist(w, w->cut_ms, &first);
	if (first < w->cut_ms)
		first += w->period_ms;
	int expected = first < w->restore_ms ? (int)((w->restore_ms - 1 - first) / w->period_ms) + 1 : 0;
	if (expected > 100000)
		return -1;
	int *hits = calloc((size_t)(expected > 0 ? expected : 1), sizeof *hits);
	if (!hits)
		return -1;
	int64_t last_ts = 0, last_arrival = w->restore_ms;
	bool have_last = false;
	int backlog = 0;
	for (size_t i = 0; i < n; i++) {
		const struct flush_record *r = &recs[i];
		int64_t point;
		int64_t d = grid_dist(w, r->ts_ms, &point);
		/* Off the schedule, or stamped after coverage returned yet placed in
		 * the outage: a timestamp the device made up at send time. */
		if (d > tol || (r->ts_ms > w->restore_ms && point < w->restore_ms)) {
			out->rewritten++;
			if (r->arrival_ms > last_arrival)
				last_arrival = r->arrival_ms;
			continue;
		}
		if (point < first || point >= w->restore_ms)
			continue; /* a live record from after the outage */
		hits[(point - first) / w->period_ms]++;
		backlog++;
		int64_t late_ms = w->late_ms > 0 ? w->late_ms : 120000;
		if (!r->late && r->arrival_ms - r->ts_ms > late_ms)
			out->not_late++;
		if (r->arrival_ms > last_arrival)
			last_arrival = r->arrival_ms;
		if (have_last && (w->newest_first ? r->ts_ms > last_ts : r->ts_ms < last_ts))
			out->out_of_order++;
		last_ts = r->ts_ms;
		have_last = true;
	}
	out->expected = expected;
	out->duplicates = duplicates;
	char gaps[512] = "";
	size_t gl = 0;
	for (int k = 0; k < expected; k++) {
		if (hits[k] >= 1)
			out->arrived++;
		if (hits[k] > 1)
			out->duplicates += hits[k] - 1;
		if (hits[k] != 0)
			continue;
		int j = k;
		while (j + 1 < expected && hits[j + 1] == 0)
			j++;
		out->missing += j - k + 1;
		char a[16], b[16];
		if (gl < sizeof gaps - 64)
			gl += (size_t)snprintf(gaps + gl, sizeof gaps - gl, "%s%d missing %s..%s", gl ? ", " : "", j - k + 1,
					       hms(first + k * w->period_ms, a, sizeof a),
					       hms(first + j * w->period_ms, b, sizeof b));
		k = j;
	}
	free(hits);
	out->drain_ms = last_arrival - w->restore_ms;
	out->rate = out->drain_ms > 0 ? (double)backlog * 1000.0 / (double)out->drain_ms : (double)backlog;
	out->complete = !out->missing && !out->duplicates && !out->rewritten && !out->out_of_order && !out->not_late;
	char from[16], to[16];
	snprintf(out->summary, sizeof out->summary,
		 "outage %s..%s: %d records expected at %llds, %d arrived, %d missing%s%s%s, %d duplicated, "
		 "%d with rewritten timestamps, %d out of %s order, %d not flagged late; drained in %.1f s",
		 hms(w->cut_ms, from, sizeof from), hms(w->restore_ms, to, sizeof to), expected,
		 (long long)(w->period_ms / 1000), out->arrived, out->missing, *gaps ? " (" : "", gaps, *gaps ? ")" : "",
		 out->duplicates, out->rewritten, out->out_of_order, w->newest_first ? "newest-first" : "oldest-first",
		 out->not_late, (double)out->drain_ms / 1000.0);
	return 0;
}
