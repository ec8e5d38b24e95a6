/* trends.c - the nightly trends page: pass rate per scenario and per model
 * over the last runs, and flaky checks (see html.h). */
#include "html.h"

#include "chart.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TRENDS_MAX_SCENARIOS 32
#define TRENDS_MAX_RUNS 500
#define TRENDS_MAX_MODELS 64

/* The window: the last N runs that have results. */
#define WINDOW "(SELECT id FROM runs WHERE id IN (SELECT run_id FROM results) ORDER BY id DESC LIMIT ?1)"

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int prep(sqlite3 *db, const char *sql, int last_n, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "trends report: reading the store: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int(*st, 1, last_n);
	return 0;
}

/* What a rate counts (docs/reports.md, "Pass rates"). Rig faults (error,
 * aborted) are never in a rate: they are not the device's. TIMEOUT is: the
 * device never got through its scenario's budget. The per-scenario rate also
 * counts quarantined slots (skipped) as not passed, so setting a failing slot
 * aside cannot make a night look better; the per-model rate is a vendor's
 * and counts device verdicts only. Skipped and rig faults each have their
 * own column. */
#define DEVICE_VERDICT "outcome IN ('pass', 'fail', 'timeout')"
#define RIG_FAULT "outcome IN ('error', 'aborted')"

/* One row of a rate table. */
struct rate_row {
	int pass, counted, skipped, faults;
};

/* The table under a pass-rate chart: per row its name, passed of what the
 * rate counts, the rate, and beside it the skipped and the rig faults. */
static void rate_table(FILE *f, const char *heading, const char *counted, const char *const *names,
		       const struct rate_row *r, size_t n)
{
	fprintf(f, "<table><tr><th>%s</th><th>passed / %s</th><th>rate</th><th>skipped (quarantine)</th>"
		"<th>rig faults (error, aborted; not in the rate)</th></tr>\n", heading, counted);
	for (size_t i = 0; i < n; i++) {
		fputs("<tr><td>", f);
		html_text(f, names[i]);
		fprintf(f, "</td><td class=\"num\">%d / %d</td>", r[i].pass, r[i].counted);
		if (r[i].counted)
			fprintf(f, "<td class=\"num\">%.0f%%</td>", 100.0 * r[i].pass / r[i].counted);
		else
			fputs("<td class=\"num\">no verdict</td>", f);
		fprintf(f, "<td class=\"num\">%d</td><td class=\"num\">%d</td></tr>\n", r[i].skipped, r[i].faults);
	}
	fputs("</table>\n", f);
}

/* Pass rate of each scenario in each run of the window: a line per scenario. */
static int per_scenario(FILE *f, sqlite3 *db, int last_n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (prep(db, "SELECT scenario, run_id, sum(outcome = 'pass'), sum(" DEVICE_VERDICT " OR outcome = 'skipped'),"
		 " sum(outcome = 'skipped'), sum(" RIG_FAULT ") FROM results"
		 " WHERE run_id IN " WINDOW " GROUP BY scenario, run_id ORDER BY scenario, run_id", last_n, &st, err,
		 errlen))
		return -1;
	char names[TRENDS_MAX_SCENARIOS][80];
	struct chart_series series[TRENDS_MAX_SCENARIOS];
	double *x = malloc(TRENDS_MAX_SCENARIOS * TRENDS_MAX_RUNS * sizeof *x);
	double *y = malloc(TRENDS_MAX_SCENARIOS * TRENDS_MAX_RUNS * sizeof *y);
	struct rate_row rows[TRENDS_MAX_SCENARIOS] = { 0 };
	size_t ns = 0;
	while (x && y && sqlite3_step(st) == SQLITE_ROW) {
		if (ns == 0 || strcmp(names[ns - 1], col(st, 0))) {
			if (ns == TRENDS_MAX_SCENARIOS)
				break;
			snprintf(names[ns], sizeof names[ns], "%s", col(st, 0));
			series[ns] = (struct chart_series){ .name = names[ns], .x = x + ns * TRENDS_MAX_RUNS,
							    .y = y + ns * TRENDS_MAX_RUNS, .n = 0 };
			ns++;
		}
		struct chart_series *s = &series[ns - 1];
		int p = sqlite3_column_int(st, 2), t = sqlite3_column_int(st, 3);
		rows[ns - 1].pass += p;
		rows[ns - 1].counted += t;
		rows[ns - 1].skipped += sqlite3_column_int(st, 4);
		rows[ns - 1].faults += sqlite3_column_int(st, 5);
		if (s->n < TRENDS_MAX_RUNS) {
			x[(ns - 1) * TRENDS_MAX_RUNS + s->n] = (double)sqlite3_column_int64(st, 1);
			y[(ns - 1) * TRENDS_MAX_RUNS + s->n] = t ? 100.0 * p / t : NAN;
			s->n++;
		}
	}
	sqlite3_finalize(st);
	fputs("<h2>Pass rate per scenario</h2>\n", f);
	if (!ns) {
		fputs("<p class=\"note\">no results in the store yet</p>\n", f);
		free(x);
		free(y);
		return 0;
	}
	struct chart_line c = { .title = "pass rate per scenario", .xlabel = "run", .ylabel = "percent passed",
				.series = series, .n_series = ns, .x_integer = true, .y_from_zero = true, .y_max = 105 };
	char *svg = NULL, why[256];
	chart_line_svg(&c, &svg, why, sizeof why);
	html_figure(f, svg, "Share of slots that passed each scenario, per run: of the slots due to run it, quarantined"
		    " ones counted as not passed, rig faults (error, aborted) left out.", why);
	free(svg);
	const char *labels[TRENDS_MAX_SCENARIOS];
	for (size_t i = 0; i < ns; i++)
		labels[i] = names[i];
	rate_table(f, "scenario", "device verdicts + skipped", labels, rows, ns);
	free(x);
	free(y);
	return 0;
}

/* Pass rate per model over the whole window: one bar per model. */
static int per_model(FILE *f, sqlite3 *db, int last_n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (prep(db, "SELECT trim(coalesce(vendor, '') || ' ' || coalesce(model, '')), sum(outcome = 'pass'),"
		 " sum(" DEVICE_VERDICT "), sum(outcome = 'skipped'), sum(" RIG_FAULT ")"
		 " FROM results WHERE run_id IN " WINDOW " GROUP BY 1 ORDER BY 1", last_n, &st, err, errlen))
		return -1;
	char names[TRENDS_MAX_MODELS][128];
	const char *cats[TRENDS_MAX_MODELS];
	double rate[TRENDS_MAX_MODELS];
	struct rate_row rows[TRENDS_MAX_MODELS];
	size_t n = 0;
	while (n < TRENDS_MAX_MODELS && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(names[n], sizeof names[n], "%s", *col(st, 0) ? col(st, 0) : "unknown model");
		cats[n] = names[n];
		rows[n] = (struct rate_row){ .pass = sqlite3_column_int(st, 1), .counted = sqlite3_column_int(st, 2),
					     .skipped = sqlite3_column_int(st, 3), .faults = sqlite3_column_int(st, 4) };
		rate[n] = rows[n].counted ? 100.0 * rows[n].pass / rows[n].counted : NAN;
		n++;
	}
	sqlite3_finalize(st);
	if (!n)
		return 0;
	fputs("<h2>Pass rate per model</h2>\n", f);
	struct chart_bar c = { .title = "pass rate per model", .ylabel = "percent passed", .categories = cats,
			       .values = rate, .n = n, .y_max = 110 };
	char *svg = NULL, why[256];
	chart_bar_svg(&c, &svg, why, sizeof why);
	html_figure(f, svg, "Share of each model's device verdicts (pass, fail, timeout) that passed, over the runs in the"
		    " window; rig faults and skipped slots are not the device's and are counted beside it.", why);
	free(svg);
	rate_table(f, "model", "device verdicts", cats, rows, n);
	return 0;
}

/* One (IMEI, scenario, firmware) followed through the window. */
struct history {
	char imei[64], scenario[128], firmware[128], slot[32];
	int passes, fails, flips;
	char last[8];
	char seq[512]; /* "run 3 pass, run 4 fail" as plain text, escaped on output */
};

static void flaky_row(FILE *f, const struct history *h, int *shown)
{
	if (!h->passes || !h->fails)
		return;
	if (!(*shown)++)
		fputs("<table><tr><th>slot</th><th>IMEI</th><th>scenario</th><th>firmware</th><th>flips</th>"
		      "<th>history (oldest first)</th></tr>\n", f);
	fputs("<tr>", f);
	const char *cols[] = { h->slot, h->imei, h->scenario, *h->firmware ? h->firmware : "unknown" };
	for (size_t i = 0; i < 4; i++) {
		fputs("<td>", f);
		html_text(f, cols[i]);
		fputs("</td>", f);
	}
	fprintf(f, "<td class=\"num\">%d</td><td class=\"msg\">", h->flips);
	html_text(f, h->seq);
	fputs("</td></tr>\n", f);
}

/* Flaky checks: the same device, scenario and firmware, both passed and
 * failed in the window. Results carry no firmware of their own, so the
 * device's firmware as last seen stands for it (see docs/reports.md). */
static int flaky(FILE *f, sqlite3 *db, int last_n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (prep(db, "SELECT r.imei, r.scenario, coalesce(d.firmware, ''), r.run_id, r.outcome, r.slot FROM results r"
		 " LEFT JOIN devices d ON d.imei = r.imei WHERE r.run_id IN " WINDOW " AND r.imei IS NOT NULL"
		 " AND r.imei <> '' AND r.outcome IN ('pass', 'fail') ORDER BY 1, 2, 3, r.run_id, r.id", last_n, &st,
		 err, errlen))
		return -1;
	fputs("<h2>Flaky checks</h2>\n<p>A device and scenario whose outcome went both ways on unchanged firmware:"
	      " suspect the slot, the cabling or the test before the device.</p>\n", f);
	struct history *h = calloc(1, sizeof *h);
	int shown = 0;
	bool have = false;
	while (h && sqlite3_step(st) == SQLITE_ROW) {
		const char *imei = col(st, 0), *sc = col(st, 1), *fw = col(st, 2), *o = col(st, 4);
		if (!have || strcmp(h->imei, imei) || strcmp(h->scenario, sc) || strcmp(h->firmware, fw)) {
			if (have)
				flaky_row(f, h, &shown);
			memset(h, 0, sizeof *h);
			snprintf(h->imei, sizeof h->imei, "%s", imei);
			snprintf(h->scenario, sizeof h->scenario, "%s", sc);
			snprintf(h->firmware, sizeof h->firmware, "%s", fw);
			have = true;
		}
		snprintf(h->slot, sizeof h->slot, "%s", col(st, 5));
		bool pass = !strcmp(o, "pass");
		h->passes += pass;
		h->fails += !pass;
		if (*h->last && strcmp(h->last, o))
			h->flips++;
		snprintf(h->last, sizeof h->last, "%s", o);
		size_t n = strlen(h->seq);
		snprintf(h->seq + n, sizeof h->seq - n, "%srun %lld %s", n ? ", " : "",
			 (long long)sqlite3_column_int64(st, 3), o);
	}
	if (h && have)
		flaky_row(f, h, &shown);
	sqlite3_finalize(st);
	free(h);
	if (shown)
		fputs("</table>\n", f);
	else
		fputs("<p class=\"note\">no flaky checks in the window</p>\n", f);
	return 0;
}

int report_html_trends(store *s, const char *path, int last_n, char *err, size_t errlen)
{
	sqlite3 *db = store_db(s);
	if (last_n <= 0)
		last_n = -1; /* LIMIT -1: no limit */
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "trends report: %s: %s", path, strerror(errno));
		return -1;
	}
	html_page_begin(f, "trackrig trends");
	fputs("<h1>trackrig trends</h1>\n", f);
	sqlite3_stmt *st;
	if (!prep(db, "SELECT count(*), min(id), max(id) FROM " WINDOW, last_n, &st, err, errlen)) {
		if (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "<p>%d runs with results, run %lld to run %lld.</p>\n", sqlite3_column_int(st, 0),
				(long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2));
		sqlite3_finalize(st);
	}
	int rc = per_scenario(f, db, last_n, err, errlen);
	if (!rc)
		rc = per_model(f, db, last_n, err, errlen);
	if (!rc)
		rc = flaky(f, db, last_n, err, errlen);
	html_page_end(f);
	if (fclose(f) != 0 && !rc) {
		snprintf(err, errlen, "trends report: %s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}
