/*
 * chart.h - charts drawn by gnuplot, returned as SVG text for embedding in
 * an HTML report.
 *
 * gnuplot runs as a child (popen "gnuplot", script on its stdin, output to a
 * file in a fresh temp dir that is read back and removed). It is a full
 * scripting language with system() and backticks, so nothing from the store
 * enters a script as is: every title, label and category name passes through
 * chart_sanitize() (letters, digits, space and - _ . : / only, inside double
 * quotes), and data values are written as numbers by printf, never as text.
 *
 * Functions return 0 with *SVG a malloc'ed, NUL-terminated string starting
 * at "<svg" (caller frees), or -1 with ERR saying what failed.
 */
#ifndef TRACKRIG_CHART_H
#define TRACKRIG_CHART_H

#include <stdbool.h>
#include <stddef.h>

/* Longest label kept, in bytes, after sanitising. */
#define CHART_LABEL_MAX 80

/* Copies IN (NULL reads as "") into OUT keeping only the safe set: ASCII
 * letters and digits, space, '-', '_', '.', ':', '/'. Newlines and tabs
 * become spaces; every other byte is dropped. Truncates to OUTLEN - 1 and
 * CHART_LABEL_MAX. Returns OUT. */
char *chart_sanitize(const char *in, char *out, size_t outlen);

/* One line of a line chart: N points (X[i], Y[i]). Non-finite values are
 * left out (a gap, not a zero). */
struct chart_series {
	const char *name;           /* legend entry; sanitised */
	const double *x, *y;
	size_t n;
};

struct chart_line {
	const char *title, *xlabel, *ylabel; /* sanitised; NULL: none */
	const struct chart_series *series;
	size_t n_series;
	/* Optional names for x = 0, 1, ... N_XTICS-1 (e.g. measurement names
	 * along a power cycle); sanitised. NULL: numeric x axis. */
	const char *const *xtics;
	size_t n_xtics;
	bool x_integer;             /* x are whole numbers (run ids): no 1.5 ticks */
	bool y_from_zero;           /* start the y axis at 0 (counts, rates) */
	double y_max;               /* > 0: fixed top of the y axis (100 for %) */
};

/* A line chart of one or more series (supply current over a power cycle,
 * records arriving per minute, pass rate over runs). */
int chart_line_svg(const struct chart_line *c, char **svg, char *err, size_t errlen);

/* One bar per category (TTFF per model, rollout progress per cohort). */
struct chart_bar {
	const char *title, *ylabel;       /* sanitised; NULL: none */
	const char *const *categories;    /* N names; sanitised */
	const double *values;             /* N values; non-finite: no bar */
	size_t n;
	double y_max;                     /* > 0: fixed top of the y axis */
};

int chart_bar_svg(const struct chart_bar *c, char **svg, char *err, size_t errlen);

#endif
