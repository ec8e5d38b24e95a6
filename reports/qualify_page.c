/*
 * qualify_page.c - `rig qualify`'s comparison per model, read back from the
 * results store (never from hardware), and its printable HTML page.
 *
 * Models are vendor + model as the results recorded them. Everything read
 * from the store goes out through html_text(); chart categories pass
 * chart_sanitize() inside chart.c.
 */
#include "qualify.h"
#include "chart.h"
#include "html.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_KEY "(COALESCE(r.vendor,'') || ' ' || COALESCE(r.model,''))"
/* Verdicts on the device: TIMEOUT too (it never got through its scenario's
 * budget). ERROR and ABORTED are the rig's, SKIPPED a slot in quarantine:
 * counted apart, against no model (docs/reports.md). */
#define DEVICE_VERDICT "r.outcome IN ('pass', 'fail', 'timeout')"
#define RIG_FAULT "r.outcome IN ('error', 'aborted')"

static double one_double(sqlite3 *h, const char *sql, int64_t run, const char *key, const char *like)
{
	sqlite3_stmt *st;
	double v = NAN;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return NAN;
	sqlite3_bind_int64(st, 1, run);
	if (key)
		sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	if (like)
		sqlite3_bind_text(st, 3, like, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return v;
}

static double mean_measure(sqlite3 *h, int64_t run, const char *key, const char *like)
{
	return one_double(h,
			  "SELECT AVG(m.value) FROM measurements m JOIN results r ON r.id = m.result_id "
			  "WHERE r.run_id = ?1 AND " MODEL_KEY " = ?2 AND m.name LIKE ?3 AND m.value IS NOT NULL",
			  run, key, like);
}

/* Passes / device verdicts of SCENARIO for a model, 0..1; NaN when it never
 * came to one. A rig fault or a skipped slot counts neither way. */
static double pass_rate(sqlite3 *h, int64_t run, const char *key, const char *scenario)
{
	double runs = one_double(h, "SELECT COUNT(*) FROM results r WHERE r.run_id = ?1 AND " MODEL_KEY
				    " = ?2 AND r.scenario = ?3 AND " DEVICE_VERDICT, run, key, scenario);
	double ok = one_double(h, "SELECT SUM(r.outcome = 'pass') FROM results r WHERE r.run_id = ?1 AND " MODEL_KEY
				  " = ?2 AND r.scenario = ?3", run, key, scenario);
	return runs > 0 ? ok / runs : NAN;
}

static int cmp_model(const void *a, const void *b)
{
	const struct qualify_model *x = a, *y = b;
	double dx = x->units ? (double)x->defects / x->units : 0, dy = y->units ? (double)y->defects / y->units : 0;
	if (dx != dy)
		return dx < dy ? -1 : 1;
	double bx = isfinite(x->bytes_per_day) ? x->bytes_per_day : 1e18;
	double by = isfinite(y->bytes_per_day) ? y->bytes_per_day : 1e18;
	if (bx != by)
		return bx < by ? -1 : 1;
	double tx = isfinite(x->boot_s) ? x->boot_s : 1e18, ty = isfinite(y->boot_s) ? y->boot_s : 1e18;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(x->name, y->name);
}

int qualify_compute(store *db, int64_t run_id, double cap_mb, struct qualify_summary *q, char *err, size_t errlen)
{
	memset(q, 0, sizeof *q);
	q->run_id = run_id;
	q->cap_mb = cap_mb;
	sqlite3 *h = store_db(db);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h,
			       "SELECT " MODEL_KEY ", COUNT(DISTINCT r.slot), COUNT(*), SUM(r.outcome = 'pass'), "
			       "SUM(" DEVICE_VERDICT "), SUM(" RIG_FAULT "), SUM(r.outcome = 'skipped') "
			       "FROM results r WHERE r.run_id = ?1 GROUP BY 1 ORDER BY 1",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "results store: %s", sqlite3_errmsg(h));
		return -1;
	}
	sqlite3_bind_int64(st, 1, run_id);
	while (sqlite3_step(st) == SQLITE_ROW && q->n < QUALIFY_MAX_MODELS) {
		struct qualify_model *m = &q->m[q->n++];
		snprintf(m->name, sizeof m->name, "%s", (const char *)sqlite3_column_text(st, 0));
		m->units = sqlite3_column_int(st, 1);
		m->results = sqlite3_column_int(st, 2);
		m->passes = sqlite3_column_int(st, 3);
		m->verdicts = sqlite3_column_int(st, 4);
		m->rig_faults = sqlite3_column_int(st, 5);
		m->skipped = sqlite3_column_int(st, 6);
		m->failed = m->defects = m->verdicts - m->passes;
	}
	sqlite3_finalize(st);
	q->span_s = one_double(h,
			       "SELECT (julianday(MAX(finished_at)) - julianday(MIN(started_at))) * 86400 FROM results "
			       "WHERE run_id = ?1",
			       run_id, NULL, NULL);
	for (int i = 0; i < q->n; i++) {
		struct qualify_model *m = &q->m[i];
		m->boot_s = mean_measure(h, run_id, m->name, "boot_time");
		m->idle_a = mean_measure(h, run_id, m->name, "idle_current");
		m->booting_a = mean_measure(h, run_id, m->name, "booting_current");
		m->drain_s = mean_measure(h, run_id, m->name, "drain_%");
		m->tx_a = mean_measure(h, run_id, m->name, "tx_current%");
		m->ttff_s = mean_measure(h, run_id, m->name, "ttff_cold");
		m->reacq_s = mean_measure(h, run_id, m->name, "reacquisition");
		m->rollback_s = mean_measure(h, run_id, m->name, "%_recovery");
		m->flush_pass_rate = pass_rate(h, run_id, m->name, "offline-flush");
		m->rollback_pass_rate = pass_rate(h, run_id, m->name, "ota-rollback");
		double bytes = one_double(h,
					  "SELECT SUM(u.bytes_up + u.bytes_down) * 1.0 / COUNT(DISTINCT u.imei) FROM uplink_usage u "
					  "WHERE u.run_id = ?1 AND u.imei IN (SELECT r.imei FROM results r WHERE r.run_id = ?1 AND "
					  MODEL_KEY " = ?2)",
					  run_id, m->name, NULL);
		m->bytes_per_day = isfinite(bytes) && q->span_s > 0 ? bytes * 86400.0 / q->span_s : NAN;
	}
	qsort(q->m, (size_t)q->n, sizeof q->m[0], cmp_model);
	for (int i = 0; i < q->n; i++) {
		struct qualify_model *m = &q->m[i];
		m->rank = i + 1;
		char data[96] = "data use not measured";
		if (isfinite(m->bytes_per_day))
			snprintf(data, sizeof data, "%.2f MB/day, %s the %.0f MB cap", m->bytes_per_day / 1e6,
				 m->bytes_per_day / 1e6 > cap_mb ? "OVER" : "within", cap_mb);
		char boot[48] = "boot time not measured";
		if (isfinite(m->boot_s))
			snprintf(boot, sizeof boot, "boots in %.1f s", m->boot_s);
		char ota[96] = "";
		if (isfinite(m->rollback_pass_rate) && m->rollback_pass_rate < 1)
			snprintf(ota, sizeof ota, "; bad builds not always refused or rolled back");
		else if (isfinite(m->rollback_pass_rate) && isfinite(m->rollback_s))
			snprintf(ota, sizeof ota, "; bad builds refused or rolled back (in %.0f s on average)", m->rollback_s);
		else if (isfinite(m->rollback_pass_rate))
			snprintf(ota, sizeof ota, "; bad builds refused or rolled back");
		char tx[64] = "";
		if (isfinite(m->tx_a))
			snprintf(tx, sizeof tx, "; transmits at %.0f mA", m->tx_a * 1000);
		char aside[96] = "";
		if (m->rig_faults || m->skipped)
			snprintf(aside, sizeof aside, "; %d rig fault%s and %d skipped not counted", m->rig_faults,
				 m->rig_faults == 1 ? "" : "s", m->skipped);
		snprintf(m->reasons, sizeof m->reasons, "%s (%d of %d device verdicts failed over %d unit%s%s); %s; %s%s%s%s",
			 m->defects ? "defects found" : "no defects", m->failed, m->verdicts, m->units, m->units == 1 ? "" : "s",
			 aside, data, boot,
			 isfinite(m->flush_pass_rate) ? (m->flush_pass_rate < 1 ? "; offline flush lost or altered records"
								       : "; offline flush intact")
						      : "",
			 ota, tx);
	}
	return 0;
}

static void cell_num(FILE *f, double v, const char *fmt)
{
	fputs("<td>", f);
	if (isfinite(v))
		fprintf(f, fmt, v);
	else
		fputs("not measured", f);
	fputs("</td>", f);
}

/* The figures the page charts, each a model's value in the chart's unit. */
enum figure { FIG_BOOT, FIG_IDLE, FIG_BOOTING, FIG_TX, FIG_TTFF, FIG_REACQ, FIG_ROLLBACK, FIG_DATA };

static double figure(const struct qualify_model *m, enum figure which)
{
	switch (which) {
	case FIG_BOOT: return m->boot_s;
	case FIG_IDLE: return m->idle_a * 1000;
	case FIG_BOOTING: return m->booting_a * 1000;
	case FIG_TX: return m->tx_a * 1000;
	case FIG_TTFF: return m->ttff_s;
	case FIG_REACQ: return m->reacq_s;
	case FIG_ROLLBACK: return m->rollback_s;
	case FIG_DATA: return m->bytes_per_day / 1e6;
	}
	return NAN;
}

static void bar(FILE *f, const struct qualify_summary *q, const char *title, const char *ylabel, enum figure which)
{
	const char **cats = calloc((size_t)(q->n ? q->n : 1), sizeof *cats);
	double *vals = calloc((size_t)(q->n ? q->n : 1), sizeof *vals);
	char *svg = NULL, err[512] = "out of memory";
	bool any = false;
	if (cats && vals) {
		for (int i = 0; i < q->n; i++) {
			const struct qualify_model *m = &q->m[i];
			cats[i] = m->name;
			vals[i] = figure(m, which);
			any |= isfinite(vals[i]);
		}
		struct chart_bar c = { .title = title, .ylabel = ylabel, .categories = cats, .values = vals,
				       .n = (size_t)q->n };
		if (!any)
			snprintf(err, sizeof err, "not measured on any model");
		else if (chart_bar_svg(&c, &svg, err, sizeof err))
			svg = NULL;
	}
	html_figure(f, svg, title, err);
	free(svg);
	free(cats);
	free(vals);
}

/* A table (id ID) of RUN's results WHERE says, with their evidence. Returns
 * how many rows it wrote. */
static int result_rows(FILE *f, store *db, int64_t run, const char *id, const char *where)
{
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT " MODEL_KEY ", r.slot, r.imei, r.scenario, r.outcome, r.message, r.reasons "
		 "FROM results r WHERE r.run_id = ?1 AND %s ORDER BY 1, CAST(r.slot AS INTEGER), r.id", where);
	fprintf(f, "<table id=\"%s\">\n<tr><th>model</th><th>slot</th><th>IMEI</th><th>scenario</th><th>outcome</th>"
		"<th>evidence</th><th>reason codes</th></tr>\n", id);
	sqlite3_stmt *st;
	int n = 0;
	if (sqlite3_prepare_v2(store_db(db), sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, run);
		while (sqlite3_step(st) == SQLITE_ROW) {
			fprintf(f, "<tr class=\"%s\">", html_outcome_class((const char *)sqlite3_column_text(st, 4)));
			for (int c = 0; c < 7; c++) {
				fputs("<td>", f);
				html_text(f, (const char *)sqlite3_column_text(st, c));
				fputs("</td>", f);
			}
			fputs("</tr>\n", f);
			n++;
		}
		sqlite3_finalize(st);
	}
	fputs("</table>\n", f);
	return n;
}

int report_html_qualify(store *db, const struct qualify_summary *q, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	html_page_begin(f, "Vendor qualification");
	fprintf(f, "<h1>Vendor qualification</h1>\n<p>Run %lld, %.0f s of rack time; SIM plan cap %.0f MB per day.</p>\n",
		(long long)q->run_id, isfinite(q->span_s) ? q->span_s : 0.0, q->cap_mb);

	fputs("<h2>Ranking</h2>\n<ol id=\"ranking\">\n", f);
	for (int i = 0; i < q->n; i++) {
		fputs("<li><strong>", f);
		html_text(f, q->m[i].name);
		fputs("</strong>: ", f);
		html_text(f, q->m[i].reasons);
		fputs("</li>\n", f);
	}
	fputs("</ol>\n", f);

	fputs("<h2>Side by side</h2>\n<table id=\"comparison\">\n<tr><th>rank</th><th>model</th><th>units</th>"
	      "<th>boot time (s)</th><th>idle current (mA)</th><th>booting current (mA)</th><th>transmit current (mA)</th>"
	      "<th>offline-flush pass rate</th><th>flush drain (s)</th><th>data per day (MB)</th><th>TTFF cold (s)</th>"
	      "<th>reacquisition (s)</th><th>rollback pass rate</th><th>rollback time (s)</th>"
	      "<th>defects</th><th>device verdicts</th><th>rig faults (error, aborted; not counted)</th>"
	      "<th>skipped (quarantine)</th></tr>\n", f);
	for (int i = 0; i < q->n; i++) {
		const struct qualify_model *m = &q->m[i];
		fprintf(f, "<tr class=\"%s\"><td>%d</td><td>", html_outcome_class(m->defects ? "fail" : "pass"), m->rank);
		html_text(f, m->name);
		fprintf(f, "</td><td>%d</td>", m->units);
		cell_num(f, m->boot_s, "%.1f");
		cell_num(f, m->idle_a * 1000, "%.0f");
		cell_num(f, m->booting_a * 1000, "%.0f");
		cell_num(f, m->tx_a * 1000, "%.0f");
		cell_num(f, m->flush_pass_rate * 100, "%.0f %%");
		cell_num(f, m->drain_s, "%.1f");
		cell_num(f, m->bytes_per_day / 1e6, "%.2f");
		cell_num(f, m->ttff_s, "%.0f");
		cell_num(f, m->reacq_s, "%.1f");
		cell_num(f, m->rollback_pass_rate * 100, "%.0f %%");
		cell_num(f, m->rollback_s, "%.0f");
		fprintf(f, "<td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr>\n", m->defects, m->verdicts, m->rig_faults,
			m->skipped);
	}
	fputs("</table>\n", f);

	bar(f, q, "Boot time per model", "s", FIG_BOOT);
	bar(f, q, "Idle current per model", "mA", FIG_IDLE);
	bar(f, q, "Booting current per model", "mA", FIG_BOOTING);
	bar(f, q, "Transmit current per model", "mA", FIG_TX);
	bar(f, q, "TTFF (cold) per model", "s", FIG_TTFF);
	bar(f, q, "GNSS reacquisition per model", "s", FIG_REACQ);
	bar(f, q, "Rollback time per model", "s", FIG_ROLLBACK);
	bar(f, q, "Data per day per model", "MB", FIG_DATA);

	fputs("<h2>Defects and their evidence</h2>\n", f);
	if (!result_rows(f, db, q->run_id, "defects", "r.outcome IN ('fail', 'timeout')"))
		fputs("<p>No defects found.</p>\n", f);
	fputs("<h2>Rig faults and skipped slots</h2>\n<p>The rig's own trouble (error: a console port, a supply or relay"
	      " link, the image server, the control socket, the ingest, the store; aborted: stopped) and slots in"
	      " quarantine. Counted against no model.</p>\n", f);
	if (!result_rows(f, db, q->run_id, "rig-faults", "r.outcome IN ('error', 'aborted', 'skipped')"))
		fputs("<p>No rig faults.</p>\n", f);
	html_page_end(f);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
