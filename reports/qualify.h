/*
 * qualify.h - `rig qualify`'s side-by-side comparison per model, computed
 * from one run in the results store, and its printable HTML page.
 */
#ifndef TRACKRIG_QUALIFY_H
#define TRACKRIG_QUALIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define QUALIFY_MAX_MODELS 32

struct qualify_model {
	char name[160];            /* "vendor model" */
	int units, results, passes, failed;
	int verdicts;              /* device verdicts: pass, fail, timeout (results less rig faults, skipped) */
	int rig_faults;            /* error and aborted: the rig's trouble, counted against no model */
	int skipped;               /* slots in quarantine, not run */
	double boot_s, idle_a, booting_a; /* means over units; NaN when not measured */
	double tx_a;               /* transmit current: mean of the peaks while backlogs went out */
	double flush_pass_rate;    /* offline-flush passes / device verdicts, 0..1; NaN when none */
	double drain_s;            /* mean drain time over the outages */
	double bytes_per_day;      /* mean per unit, up+down scaled to a day of rack time */
	double ttff_s;             /* cold start; NaN: not measured */
	double reacq_s;            /* first fix after the antenna's return (gnss-outage) */
	double rollback_pass_rate; /* ota-rollback passes / device verdicts, 0..1; NaN when none */
	double rollback_s;         /* mean time from a bad image's update start to the known-good bank again */
	int defects;               /* failed device verdicts (fail, timeout) */
	int rank;
	char reasons[512];         /* why it ranks where it does */
};

struct qualify_summary {
	int64_t run_id;
	double cap_mb;             /* the SIM plan's cap per day, MB (10^6 bytes) */
	double span_s;             /* rack time the run covered */
	struct qualify_model m[QUALIFY_MAX_MODELS];
	int n;
};

/* Computes the comparison of RUN_ID. Returns 0, or -1 with ERR. */
int qualify_compute(store *db, int64_t run_id, double cap_mb, struct qualify_summary *out, char *err, size_t errlen);

/* The HTML page: table per model, ranking with reasons, defects with their
 * evidence, charts. Returns 0, or -1 with ERR. */
int report_html_qualify(store *db, const struct qualify_summary *q, const char *path, char *err, size_t errlen);

#endif
