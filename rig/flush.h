/*
 * flush.h - did an offline backlog arrive whole? Checked from what the
 * backend received, never from what the device says about itself.
 *
 * Pure logic over the records one device sent while and after its coverage
 * was cut. The rig knows the record period (it set it), when coverage went
 * and came back (it switched the antenna), and one record time from before
 * the cut (the phase of the device's schedule); from these alone it knows
 * which records must exist, and names every gap, duplicate, rewritten
 * timestamp and ordering fault with counts and time ranges.
 */
#ifndef TRACKRIG_FLUSH_H
#define TRACKRIG_FLUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct flush_record {
	int64_t ts_ms;       /* device timestamp, Unix ms */
	int64_t arrival_ms;  /* when the rig received it, Unix ms on the rig's clock */
	bool late;           /* the ingest flagged it late */
};

struct flush_window {
	int64_t cut_ms, restore_ms; /* coverage off and back on, Unix ms */
	int64_t period_ms;          /* the record period the rig configured */
	int64_t phase_ms;           /* the timestamp of a record from before the cut */
	bool newest_first;          /* the model declares newest-first flushing */
	int64_t late_ms;            /* the ingest's late threshold (0: 2 minutes) */
};

struct flush_report {
	int expected;         /* records the device had to make during the outage */
	int arrived;          /* of those, how many arrived (once) */
	int missing;
	int duplicates;       /* resends the ingest recognised (counted by the caller) */
	int rewritten;        /* records whose timestamp is off the device's schedule */
	int out_of_order;     /* neighbours in arrival order against the declared order */
	int not_late;         /* backlog records past the late threshold yet not flagged late */
	int64_t drain_ms;     /* coverage back to the last backlog record */
	double rate;          /* backlog records per second while draining */
	bool complete;        /* nothing missing, doubled, rewritten, misordered or unflagged */
	char summary[768];    /* counts, and gaps as time ranges */
};

/* Checks RECS (the device's records that arrived after the cut, in arrival
 * order) against W. DUPLICATES is the ingest's duplicate count over the same
 * span. Returns 0, or -1 when W makes no sense (period 0, restore before cut). */
int flush_check(const struct flush_window *w, const struct flush_record *recs, size_t n, int duplicates,
		struct flush_report *out);

#endif
