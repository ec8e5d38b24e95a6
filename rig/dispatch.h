/*
 * dispatch.h - is a tracker's location safe to dispatch off? Pure logic.
 *
 * From one GNSS reading (fix mode, satellites used, HDOP, fix age, position
 * error against the rack's surveyed reference) to a verdict `safe`,
 * `degraded` or `unsafe`, with one reason line per check that kept it from
 * being safe, numbers and limits included. The checks are one table
 * (dispatch.c), each with a safe limit and an unsafe limit: safe needs every
 * check inside its safe limit, one check past its unsafe limit makes the
 * whole reading unsafe, anything else is degraded. A quantity the rig could
 * not measure (no reference position) is skipped, never counted as bad.
 *
 * Also the `gnss_fix_stale` reason code's test: the fix is old, or too few
 * satellites, or HDOP too high; dispatch_fix_stale() gives its confidence
 * and summary for diagnose.c's rule table.
 */
#ifndef TRACKRIG_DISPATCH_H
#define TRACKRIG_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#define DISPATCH_MAX_REASONS 8
#define DISPATCH_REASON_MAX 160

enum dispatch_verdict { DISPATCH_SAFE = 0, DISPATCH_DEGRADED = 1, DISPATCH_UNSAFE = 2 };

/* One reading. Doubles are NaN when unknown: fix_age_s NaN means never a
 * fix; position_error_m NaN means no reference (the check is skipped). */
struct dispatch_reading {
	int mode;                  /* 0 not seen, 1 no fix, 2 2D, 3 3D (gpsd's fix.mode) */
	int satellites_used;       /* -1 unknown */
	double hdop;
	double fix_age_s;
	double position_error_m;
};

/* The limits. Safe limits are inclusive (hdop 2.0 with max 2.0 is safe);
 * unsafe limits are strict (hdop 6.0 with unsafe 6.0 is degraded). */
struct dispatch_limits {
	int safe_min_mode;          /* 3 */
	int safe_min_sats;          /* 6 */
	double safe_max_hdop;       /* 2.0 */
	double safe_max_age_s;      /* 5 */
	double safe_max_error_m;    /* 25 */
	int unsafe_below_mode;      /* 2: no fix */
	int unsafe_below_sats;      /* 0: the count alone never makes it unsafe */
	double unsafe_above_hdop;   /* 6 */
	double unsafe_above_age_s;  /* 60 */
	double unsafe_above_error_m; /* 100 */
	/* gnss_fix_stale */
	double stale_above_age_s;   /* 10 */
	int stale_below_sats;       /* 4 */
	double stale_above_hdop;    /* 5 */
};

extern const struct dispatch_limits dispatch_default_limits;

struct dispatch_result {
	enum dispatch_verdict verdict;
	/* "hdop 3.4 above 2.0 (safe limit)": one per check short of safe */
	char reasons[DISPATCH_MAX_REASONS][DISPATCH_REASON_MAX];
	int n_reasons;
};

/* Judges R against L (NULL: dispatch_default_limits) into OUT. Returns the verdict. */
enum dispatch_verdict dispatch_judge(const struct dispatch_reading *r, const struct dispatch_limits *l,
				     struct dispatch_result *out);

/* "safe", "degraded", "unsafe". */
const char *dispatch_verdict_name(enum dispatch_verdict v);

/* gnss_fix_stale: returns a confidence in (0, 1] and a one-line summary
 * with the numbers, or 0 when the fix is fresh, well-covered and precise.
 * A reading with no report at all (mode 0) is not judged: 0. */
double dispatch_fix_stale(const struct dispatch_reading *r, const struct dispatch_limits *l, char *summary,
			  size_t len);

/* Great-circle distance in metres between two WGS84 points (haversine on
 * the mean Earth radius: under 0.5 % off, plenty for 25 m / 100 m limits). */
double dispatch_distance_m(double lat1, double lon1, double lat2, double lon2);

#endif
