/*
 * dispatch.c - the dispatch-safety verdict and the gnss_fix_stale test
 * (contract in dispatch.h).
 */
#include "dispatch.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>

const struct dispatch_limits dispatch_default_limits = {
	.safe_min_mode = 3,
	.safe_min_sats = 6,          /* a 3D fix with margin against one satellite dropping */
	.safe_max_hdop = 2.0,        /* "good" or better on the usual DOP scale */
	.safe_max_age_s = 5,         /* trackers report at 1 Hz; 5 missed epochs is already odd */
	.safe_max_error_m = 25,      /* a street-level position */
	.unsafe_below_mode = 2,
	.unsafe_below_sats = 0,
	.unsafe_above_hdop = 6,      /* "fair" ends at 5..10; past 6 positions wander by blocks */
	.unsafe_above_age_s = 60,    /* a vehicle moves a kilometre in a minute */
	.unsafe_above_error_m = 100,
	.stale_above_age_s = 10,
	.stale_below_sats = 4,       /* fewer than 4 cannot give a 3D fix */
	.stale_above_hdop = 5,
};

/* One row of the verdict table: where the value and its limits are, and
 * which way is better. Limits are read through offsets so that a caller's
 * own dispatch_limits changes every row. */
enum kind { K_INT, K_DOUBLE };

struct check {
	const char *name;
	const char *unit;           /* "" or " s", " m" */
	enum kind kind;
	size_t value;               /* offset in dispatch_reading */
	size_t safe, unsafe;        /* offsets in dispatch_limits */
	bool higher_is_better;
};

#define R(f) offsetof(struct dispatch_reading, f)
#define L(f) offsetof(struct dispatch_limits, f)

static const struct check checks[] = {
	{ "fix mode", "", K_INT, R(mode), L(safe_min_mode), L(unsafe_below_mode), true },
	{ "satellites used", "", K_INT, R(satellites_used), L(safe_min_sats), L(unsafe_below_sats), true },
	{ "hdop", "", K_DOUBLE, R(hdop), L(safe_max_hdop), L(unsafe_above_hdop), false },
	{ "fix age", " s", K_DOUBLE, R(fix_age_s), L(safe_max_age_s), L(unsafe_above_age_s), false },
	{ "position error", " m", K_DOUBLE, R(position_error_m), L(safe_max_error_m), L(unsafe_above_error_m), false },
};

static double field(const void *base, size_t off, enum kind k)
{
	const char *p = (const char *)base + off;
	return k == K_INT ? (double)*(const int *)p : *(const double *)p;
}

const char *dispatch_verdict_name(enum dispatch_verdict v)
{
	return v == DISPATCH_SAFE ? "safe" : v == DISPATCH_DEGRADED ? "degraded" : "unsafe";
}

static void add_reason(struct dispatch_result *out, const char *fmt_name, double v, const char *unit,
		       const char *rel, double lim, const char *which)
{
	if (out->n_reasons >= DISPATCH_MAX_REASONS)
		return;
	snprintf(out->reasons[out->n_reasons++], DISPATCH_REASON_MAX, "%s %.4g%s %s %.4g%s (%s limit)", fmt_name, v,
		 unit, rel, lim, unit, which);
}

/* Quantities the verdict cannot do without: a missing one is itself the
 * reason (never a fix, no satellite report, no DOP). */
static bool missing(const struct check *c, double v)
{
	if (c->kind == K_INT)
		return v < 0;
	return isnan(v);
}

enum dispatch_verdict dispatch_judge(const struct dispatch_reading *r, const struct dispatch_limits *l,
				     struct dispatch_result *out)
{
	if (!l)
		l = &dispatch_default_limits;
	out->verdict = DISPATCH_SAFE;
	out->n_reasons = 0;
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		const struct check *c = &checks[i];
		double v = field(r, c->value, c->kind);
		double safe = field(l, c->safe, c->kind), unsafe = field(l, c->unsafe, c->kind);
		enum dispatch_verdict here = DISPATCH_SAFE;
		if (missing(c, v)) {
			if (c->value == R(position_error_m))
				continue;   /* no reference position: not measured, not bad */
			/* Never a fix is unsafe; no DOP or satellite report is degraded. */
			here = c->value == R(fix_age_s) ? DISPATCH_UNSAFE : DISPATCH_DEGRADED;
			if (out->n_reasons < DISPATCH_MAX_REASONS)
				snprintf(out->reasons[out->n_reasons++], DISPATCH_REASON_MAX, "%s unknown (%s)", c->name,
					 c->value == R(fix_age_s) ? "never a fix" : "not reported");
		} else if (c->higher_is_better ? v < unsafe : v > unsafe) {
			here = DISPATCH_UNSAFE;
			add_reason(out, c->name, v, c->unit, c->higher_is_better ? "below" : "above", unsafe, "unsafe");
		} else if (c->higher_is_better ? v < safe : v > safe) {
			here = DISPATCH_DEGRADED;
			add_reason(out, c->name, v, c->unit, c->higher_is_better ? "below" : "above", safe, "safe");
		}
		if (here > out->verdict)
			out->verdict = here;
	}
	return out->verdict;
}

double dispatch_fix_stale(const struct dispatch_reading *r, const struct dispatch_limits *l, char *summary,
			  size_t len)
{
	if (!l)
		l = &dispatch_default_limits;
	if (r->mode <= 0)
		return 0;
	bool never = isnan(r->fix_age_s);
	bool old = never || r->fix_age_s > l->stale_above_age_s;
	bool few = r->satellites_used >= 0 && r->satellites_used < l->stale_below_sats;
	bool dop = !isnan(r->hdop) && r->hdop > l->stale_above_hdop;
	int signs = old + few + dop;
	if (!signs)
		return 0;
	char age[48];
	if (never)
		snprintf(age, sizeof age, "never a fix");
	else
		snprintf(age, sizeof age, "fix age %.1f s (limit %.0f s)", r->fix_age_s, l->stale_above_age_s);
	snprintf(summary, len, "%s%s; satellites used %d%s (fewer than %d is stale); hdop %.1f%s (above %.1f is stale); mode %d",
		 age, old ? " STALE" : "", r->satellites_used, few ? " TOO FEW" : "", l->stale_below_sats, r->hdop,
		 dop ? " TOO HIGH" : "", l->stale_above_hdop, r->mode);
	/* An old fix alone is sure (the receiver stopped solving); few
	 * satellites or a high DOP alone may be a passing obstruction; signs
	 * that agree raise it. */
	double c = old ? 0.8 : 0.6;
	c += 0.1 * (signs - 1);
	return c > 0.95 ? 0.95 : c;
}

double dispatch_distance_m(double lat1, double lon1, double lat2, double lon2)
{
	const double rad = M_PI / 180.0, earth = 6371008.8;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double a = sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
	return 2 * earth * atan2(sqrt(a), sqrt(1 - a));
}
