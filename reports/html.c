/* html.c - the HTML page of one run, and the blocks every HTML report shares
 * (see html.h). */
#include "html.h"

#include "chart.h"
#include "diagnose.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Events listed per result before the rest are only counted: a chatty
 * console must not turn a printable page into a phone book. */
#define HTML_MAX_EVENTS 200
/* Buckets along the records-per-minute axis; longer runs get wider buckets. */
#define HTML_MAX_BUCKETS 720
#define HTML_MAX_SERIES 64

void html_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if (*p >= 0x20 || *p == '\t' || *p == '\n')
				fputc(*p, f);
		}
	}
}

static const char css[] =
	"body{font:14px/1.4 system-ui,sans-serif;color:#222;margin:24px;max-width:1100px}"
	"h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #ccc}"
	"h3{font-size:15px;margin:16px 0 4px}"
	"table{border-collapse:collapse;margin:4px 0 12px;width:100%}"
	"th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
	"th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
	".msg{white-space:pre-wrap;word-break:break-word}"
	".o-pass{background:#d9f2d9;color:#145214}.o-fail{background:#f8d0d0;color:#7a1010;font-weight:bold}"
	".o-error,.o-timeout{background:#fde3c0;color:#7a4300;font-weight:bold}"
	".o-aborted,.o-skipped,.o-other{background:#e6e6e6;color:#444}"
	".marginal{background:#fff3b0}.meta th{width:12em}.note{color:#666;font-style:italic}"
	"figure{margin:8px 0 16px}figcaption{color:#555;font-size:13px}"
	"svg{max-width:100%;height:auto}"
	"@media print{body{margin:0;max-width:none;font-size:11px}"
	"h2{break-after:avoid}tr,figure{break-inside:avoid}"
	"th,.o-pass,.o-fail,.o-error,.o-timeout,.o-aborted,.o-skipped,.marginal"
	"{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

void html_page_begin(FILE *f, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
	html_text(f, title);
	fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
}

void html_page_end(FILE *f)
{
	fputs("</body>\n</html>\n", f);
}

void html_figure(FILE *f, const char *svg, const char *caption, const char *why)
{
	fputs("<figure>\n", f);
	if (svg)
		fputs(svg, f); /* gnuplot's output; every label in it was sanitised */
	else {
		fputs("<p class=\"note\">chart not drawn: ", f);
		html_text(f, why);
		fputs("</p>", f);
	}
	fputs("\n<figcaption>", f);
	html_text(f, caption);
	fputs("</figcaption>\n</figure>\n", f);
}

const char *html_outcome_class(const char *o)
{
	static const char *const known[] = { "pass", "fail", "error", "timeout", "aborted", "skipped" };
	static const char *const cls[] = { "o-pass", "o-fail", "o-error", "o-timeout", "o-aborted", "o-skipped" };
	for (size_t i = 0; o && i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(o, known[i]))
			return cls[i];
	return "o-other";
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static void cell(FILE *f, const char *s)
{
	fputs("<td>", f);
	html_text(f, s);
	fputs("</td>", f);
}

static void meta_row(FILE *f, const char *name, const char *value)
{
	fprintf(f, "<tr><th>%s</th>", name);
	cell(f, *value ? value : "-");
	fputs("</tr>\n", f);
}

/* ---- per result: reasons, measurements, events ---- */

static void reasons(FILE *f, const char *list)
{
	if (!*list) {
		fputs("<td>-</td>", f);
		return;
	}
	fputs("<td><ul style=\"margin:0;padding-left:16px\">", f);
	while (*list) {
		size_t n = strcspn(list, ",");
		char code[64];
		snprintf(code, sizeof code, "%.*s", (int)(n < 63 ? n : 63), list);
		list += n + (list[n] == ',');
		const struct diag_rule *r = diag_rule_find(code);
		fputs("<li><code>", f);
		html_text(f, code);
		fputs("</code>", f);
		if (!r) {
			fputs(" (unknown reason code)</li>", f);
			continue;
		}
		fputs(": ", f);
		html_text(f, r->title);
		fputs("<br><b>ops:</b> ", f);
		html_text(f, r->action_ops);
		fputs("<br><b>technician:</b> ", f);
		html_text(f, r->action_technician);
		fputs("</li>", f);
	}
	fputs("</ul></td>", f);
}

static void num_cell(FILE *f, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		fputs("<td class=\"num\">-</td>", f);
	else
		fprintf(f, "<td class=\"num\">%.6g</td>", sqlite3_column_double(st, i));
}

static void measurements(FILE *f, sqlite3 *db, int64_t result_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT name, value, unit, low, high, outcome FROM measurements"
			       " WHERE result_id = ?1 ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, result_id);
	bool any = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!any)
			fputs("<table><tr><th>measurement</th><th>value</th><th>unit</th><th>low</th>"
			      "<th>high</th><th>outcome</th></tr>\n", f);
		any = true;
		const char *o = col(st, 5);
		fputs("<tr>", f);
		cell(f, col(st, 0));
		num_cell(f, st, 1);
		cell(f, col(st, 2));
		num_cell(f, st, 3);
		num_cell(f, st, 4);
		fprintf(f, "<td class=\"%s\">", !strcmp(o, "marginal") ? "marginal" : html_outcome_class(o));
		html_text(f, *o ? o : "-");
		fputs("</td></tr>\n", f);
	}
	if (any)
		fputs("</table>\n", f);
	sqlite3_finalize(st);
}

static void events(FILE *f, sqlite3 *db, int64_t result_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT at, source, kind, detail FROM events WHERE result_id = ?1 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, result_id);
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == 0)
			fputs("<table><tr><th>at</th><th>source</th><th>event</th><th>detail</th></tr>\n", f);
		if (n++ >= HTML_MAX_EVENTS)
			continue;
		fputs("<tr>", f);
		cell(f, col(st, 0));
		cell(f, col(st, 1));
		cell(f, col(st, 2));
		fputs("<td class=\"msg\">", f);
		html_text(f, col(st, 3));
		fputs("</td></tr>\n", f);
	}
	if (n > HTML_MAX_EVENTS)
		fprintf(f, "<tr><td colspan=\"4\" class=\"note\">%d more events in the store</td></tr>\n",
			n - HTML_MAX_EVENTS);
	if (n)
		fputs("</table>\n", f);
	sqlite3_finalize(st);
}

/* ---- charts ---- */

/* The span of a run's telemetry from the earliest FROM_COLUMN (arrival_ms or
 * ts_ms) to the last arrival, cut into at most HTML_MAX_BUCKETS buckets of
 * WIDTH whole minutes each. Returns false when the run has no records. */
static bool records_span(sqlite3 *db, int64_t run_id, const char *from_column, int64_t *t0, int64_t *width,
			 size_t *nb)
{
	char sql[160];
	sqlite3_stmt *st;
	snprintf(sql, sizeof sql, "SELECT min(%s), max(arrival_ms), count(*) FROM records WHERE run_id = ?1", from_column);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, run_id);
	bool any = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 2) > 0;
	int64_t t1 = any ? sqlite3_column_int64(st, 1) : 0;
	*t0 = any ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (!any || t1 < *t0)
		return false;
	int64_t minutes = (t1 - *t0) / 60000 + 1;
	*width = (minutes + HTML_MAX_BUCKETS - 1) / HTML_MAX_BUCKETS;
	*nb = (size_t)((minutes + *width - 1) / *width);
	return true;
}

/* A telemetry line's name from a row whose columns 0 and 1 are IMEI and slot. */
static void device_series_name(sqlite3_stmt *st, char *buf, size_t len)
{
	if (sqlite3_column_type(st, 1) != SQLITE_NULL)
		snprintf(buf, len, "slot %s %s", col(st, 1), col(st, 0));
	else
		snprintf(buf, len, "%s", col(st, 0));
}

/* Records arriving per minute (or per wider bucket on a long run), one line
 * per slot: an offline buffer flushing shows as a spike after a gap. */
static void chart_records(FILE *f, sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st;
	int64_t t0, width;
	size_t nb;
	if (!records_span(db, run_id, "arrival_ms", &t0, &width, &nb))
		return;

	if (sqlite3_prepare_v2(db, "SELECT r.imei, (SELECT slot FROM results WHERE run_id = ?1 AND imei = r.imei"
			       " ORDER BY id LIMIT 1), r.arrival_ms, r.late FROM records r WHERE r.run_id = ?1"
			       " ORDER BY r.imei, r.arrival_ms", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	struct chart_series series[HTML_MAX_SERIES + 1];
	char names[HTML_MAX_SERIES + 1][96];
	double *xs = calloc(nb, sizeof *xs), *ys = calloc((HTML_MAX_SERIES + 1) * nb, sizeof *ys);
	size_t ns = 0;
	bool any_late = false;
	char cur[64] = "";
	for (size_t i = 0; xs && i < nb; i++)
		xs[i] = (double)(i * (size_t)width);
	while (xs && ys && sqlite3_step(st) == SQLITE_ROW) {
		if (ns == 0 || strcmp(cur, col(st, 0))) {
			if (ns == HTML_MAX_SERIES)
				break;
			snprintf(cur, sizeof cur, "%s", col(st, 0));
			device_series_name(st, names[ns], sizeof names[ns]);
			series[ns] = (struct chart_series){ .name = names[ns], .x = xs, .y = ys + ns * nb, .n = nb };
			ns++;
		}
		size_t b = (size_t)((sqlite3_column_int64(st, 2) - t0) / 60000 / width);
		if (b < nb) {
			ys[(ns - 1) * nb + b] += 1;
			if (sqlite3_column_int(st, 3)) {
				ys[HTML_MAX_SERIES * nb + b] += 1;
				any_late = true;
			}
		}
	}
	sqlite3_finalize(st);
	if (any_late) {
		series[ns] = (struct chart_series){ .name = "late records (all slots)", .x = xs,
						    .y = ys + HTML_MAX_SERIES * nb, .n = nb };
		ns++;
	}
	char xlabel[64], cap[160], err[256] = "out of memory";
	snprintf(xlabel, sizeof xlabel, "minutes since the first record%s", width > 1 ? " (bucketed)" : "");
	snprintf(cap, sizeof cap, "Records arriving at the ingest per %lld min, per slot. A gap then a spike is an"
		 " offline buffer flushing.", (long long)width);
	struct chart_line c = { .title = "records arriving", .xlabel = xlabel, .ylabel = "records",
				.series = series, .n_series = ns, .x_integer = true, .y_from_zero = true };
	char *svg = NULL;
	if (xs && ys)
		chart_line_svg(&c, &svg, err, sizeof err);
	fputs("<h2>Telemetry</h2>\n", f);
	html_figure(f, svg, cap, err);
	free(svg);
	free(xs);
	free(ys);
}

bool html_buffer_add(double *diff, size_t nb, int64_t bucket_ms, int64_t made, int64_t got)
{
	/* Buffered at the end of bucket b, (b+1)*w after t0, when made <= it < got:
	 * for b in [ceil(made/w) - 1, ceil(got/w) - 1). */
	int64_t first = (made + bucket_ms - 1) / bucket_ms - 1, last = (got + bucket_ms - 1) / bucket_ms - 1;
	if (first < 0)
		first = 0;
	if (first >= (int64_t)nb || last <= first)
		return false;
	diff[first] += 1;
	diff[last < (int64_t)nb ? last : (int64_t)nb] -= 1;
	return true;
}

void html_buffer_sum(double *diff, size_t nb)
{
	for (size_t b = 1; b < nb; b++)
		diff[b] += diff[b - 1];
}

/* The device's buffer depth over time as the wire shows it: at the end of
 * each minute (or wider bucket), the records a slot had made and the ingest
 * had not yet received. It climbs through an outage and drops to zero as the
 * backlog flushes. Only records that arrived count: one the device lost is
 * invisible here (the flush check names those as gaps). */
static void chart_buffer(FILE *f, sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st;
	int64_t t0, width;
	size_t nb;
	if (!records_span(db, run_id, "ts_ms", &t0, &width, &nb))
		return;
	int64_t bucket_ms = width * 60000;
	if (sqlite3_prepare_v2(db, "SELECT r.imei, (SELECT slot FROM results WHERE run_id = ?1 AND imei = r.imei"
			       " ORDER BY id LIMIT 1), r.ts_ms, r.arrival_ms FROM records r WHERE r.run_id = ?1"
			       " ORDER BY r.imei", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	struct chart_series series[HTML_MAX_SERIES];
	char names[HTML_MAX_SERIES][96];
	/* one difference array per slot, summed into depths once read */
	double *xs = calloc(nb, sizeof *xs), *ys = calloc(HTML_MAX_SERIES * (nb + 1), sizeof *ys);
	size_t ns = 0;
	char cur[64] = "";
	bool any = false;
	for (size_t i = 0; xs && i < nb; i++)
		xs[i] = (double)((int64_t)(i + 1) * width);
	while (xs && ys && sqlite3_step(st) == SQLITE_ROW) {
		if (ns == 0 || strcmp(cur, col(st, 0))) {
			if (ns == HTML_MAX_SERIES)
				break;
			snprintf(cur, sizeof cur, "%s", col(st, 0));
			device_series_name(st, names[ns], sizeof names[ns]);
			series[ns] = (struct chart_series){ .name = names[ns], .x = xs, .y = ys + ns * (nb + 1), .n = nb };
			ns++;
		}
		any |= html_buffer_add(ys + (ns - 1) * (nb + 1), nb, bucket_ms, sqlite3_column_int64(st, 2) - t0,
				       sqlite3_column_int64(st, 3) - t0);
	}
	sqlite3_finalize(st);
	for (size_t k = 0; xs && ys && k < ns; k++)
		html_buffer_sum(ys + k * (nb + 1), nb);
	if (any) {
		char xlabel[64], cap[200], err[256] = "out of memory";
		snprintf(xlabel, sizeof xlabel, "minutes since the first record was made%s", width > 1 ? " (bucketed)" : "");
		snprintf(cap, sizeof cap, "Records each device had made and the ingest had not yet received, at the end of"
			 " each %lld min: it climbs through an outage and falls to zero as the buffer flushes.",
			 (long long)width);
		struct chart_line c = { .title = "device buffer depth", .xlabel = xlabel, .ylabel = "records buffered",
					.series = series, .n_series = ns, .x_integer = true, .y_from_zero = true };
		char *svg = NULL;
		chart_line_svg(&c, &svg, err, sizeof err);
		html_figure(f, svg, cap, err);
		free(svg);
	}
	free(xs);
	free(ys);
}

/* The supply read at a steady pace by scenarios' trace steps: current over
 * seconds, one line per slot and scenario. A power cut shows as a drop to
 * zero, the boot after it as a step up to booting current, then idle. */
static void supply_heading(FILE *f, bool *done)
{
	if (!*done)
		fputs("<h2>Supply current</h2>\n", f);
	*done = true;
}

static void chart_trace(FILE *f, sqlite3 *db, int64_t run_id, bool *heading)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM supply_samples WHERE run_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	int64_t rows = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rows <= 0 || sqlite3_prepare_v2(db, "SELECT coalesce(s.result_id, 0), s.slot, coalesce(r.scenario, ''),"
					    " s.t_ms, s.amps FROM supply_samples s LEFT JOIN results r ON r.id = s.result_id"
					    " WHERE s.run_id = ?1 ORDER BY CAST(s.slot AS INTEGER), s.result_id, s.t_ms",
					    -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	double *xs = malloc((size_t)rows * sizeof *xs), *ys = malloc((size_t)rows * sizeof *ys);
	struct chart_series series[HTML_MAX_SERIES];
	char names[HTML_MAX_SERIES][96];
	size_t ns = 0, k = 0;
	int64_t cur = -1;
	while (xs && ys && k < (size_t)rows && sqlite3_step(st) == SQLITE_ROW) {
		if (ns == 0 || sqlite3_column_int64(st, 0) != cur) {
			if (ns == HTML_MAX_SERIES)
				break;
			cur = sqlite3_column_int64(st, 0);
			snprintf(names[ns], sizeof names[ns], "slot %s %s", col(st, 1), col(st, 2));
			series[ns] = (struct chart_series){ .name = names[ns], .x = xs + k, .y = ys + k, .n = 0 };
			ns++;
		}
		xs[k] = (double)sqlite3_column_int64(st, 3) / 1000.0;
		ys[k] = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 4) * 1000.0;
		series[ns - 1].n++;
		k++;
	}
	sqlite3_finalize(st);
	if (ns) {
		struct chart_line c = { .title = "supply current trace", .xlabel = "s since the trace began",
					.ylabel = "mA", .series = series, .n_series = ns, .y_from_zero = true };
		char *svg = NULL, err[256];
		chart_line_svg(&c, &svg, err, sizeof err);
		supply_heading(f, heading);
		html_figure(f, svg, "Supply current across a power cut and boot, read at the pace of each scenario's trace"
			    " step: a cut drops to 0, the boot after it draws booting current, then idle; a unit stuck"
			    " in its bootloader stays at booting current.", err);
		free(svg);
	}
	free(xs);
	free(ys);
}

/* Supply current at each measuring point of the run (idle, cut, booting,
 * ...), one line per slot, in mA. */
static void chart_current(FILE *f, sqlite3 *db, int64_t run_id, bool *heading)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(m.slot, r.slot, ''), m.name, m.value * (CASE m.unit WHEN 'A'"
			       " THEN 1000.0 ELSE 1.0 END) FROM measurements m LEFT JOIN results r ON r.id = m.result_id"
			       " WHERE m.run_id = ?1 AND m.unit IN ('A', 'mA') AND m.value IS NOT NULL"
			       " ORDER BY CAST(coalesce(m.slot, r.slot) AS INTEGER), m.id", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	enum { MAX_POINTS = 64 };
	char points[MAX_POINTS][64];
	const char *ticks[MAX_POINTS];
	size_t np = 0, ns = 0;
	char names[HTML_MAX_SERIES][80];
	double (*ys)[MAX_POINTS] = malloc(HTML_MAX_SERIES * sizeof *ys);
	double *xs = malloc(MAX_POINTS * sizeof *xs);
	struct chart_series series[HTML_MAX_SERIES];
	char cur[32] = "";
	while (ys && xs && sqlite3_step(st) == SQLITE_ROW) {
		const char *slot = col(st, 0), *name = col(st, 1);
		if (ns == 0 || strcmp(cur, slot)) {
			if (ns == HTML_MAX_SERIES)
				break;
			snprintf(cur, sizeof cur, "%s", slot);
			snprintf(names[ns], sizeof names[ns], "slot %s", slot);
			for (size_t i = 0; i < MAX_POINTS; i++)
				ys[ns][i] = NAN;
			series[ns] = (struct chart_series){ .name = names[ns], .x = xs, .y = ys[ns], .n = MAX_POINTS };
			ns++;
		}
		size_t p = 0;
		while (p < np && strcmp(points[p], name))
			p++;
		if (p == np) {
			if (np == MAX_POINTS)
				continue;
			snprintf(points[np], sizeof points[np], "%s", name);
			ticks[np] = points[np];
			np++;
		}
		ys[ns - 1][p] = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	if (ns && xs && ys) {
		for (size_t i = 0; i < MAX_POINTS; i++)
			xs[i] = i < np ? (double)i : NAN;
		for (size_t s = 0; s < ns; s++)
			series[s].n = np;
		struct chart_line c = { .title = "supply current", .xlabel = "measuring point", .ylabel = "mA",
					.series = series, .n_series = ns, .xtics = ticks, .n_xtics = np,
					.y_from_zero = true };
		char *svg = NULL, err[256];
		chart_line_svg(&c, &svg, err, sizeof err);
		supply_heading(f, heading);
		html_figure(f, svg, "Supply current at each measuring point of the run (idle, power cut, boot, transmitting), per slot.",
			    err);
		free(svg);
	}
	free(ys);
	free(xs);
}

/* ---- the page ---- */

/* The run's outcomes counted, device verdicts apart from the rig's faults. */
static void outcome_counts(FILE *f, sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT sum(outcome = 'pass'), sum(outcome = 'fail'), sum(outcome = 'timeout'),"
			       " sum(outcome = 'error'), sum(outcome = 'aborted'), sum(outcome = 'skipped')"
			       " FROM results WHERE run_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		fprintf(f, "<p id=\"counts\">Device verdicts: %d pass, %d fail, %d timeout. Rig faults (not the devices'):"
			" %d error, %d aborted. Skipped (slot in quarantine, not run): %d.</p>\n",
			sqlite3_column_int(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int(st, 2),
			sqlite3_column_int(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5));
	sqlite3_finalize(st);
}

static void results_table(FILE *f, sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT id, slot, scenario, imei, vendor, model, outcome, marginal, message,"
			       " reasons, started_at, finished_at FROM results WHERE run_id = ?1"
			       " ORDER BY CAST(slot AS INTEGER), id", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, run_id);
	fputs("<h2>Results</h2>\n", f);
	outcome_counts(f, db, run_id);
	fputs("<table><tr><th>slot</th><th>scenario</th><th>device</th><th>outcome</th>"
	      "<th>message</th><th>reason codes and actions</th></tr>\n", f);
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		n++;
		const char *o = col(st, 6);
		fputs("<tr>", f);
		cell(f, col(st, 1));
		cell(f, col(st, 2));
		fputs("<td>", f);
		html_text(f, col(st, 4));
		fputs(" ", f);
		html_text(f, col(st, 5));
		fputs("<br><code>", f);
		html_text(f, *col(st, 3) ? col(st, 3) : "IMEI unknown");
		fprintf(f, "</code></td><td class=\"%s\">", html_outcome_class(o));
		html_text(f, o);
		if (sqlite3_column_int(st, 7))
			fputs(" <span class=\"marginal\">marginal</span>", f);
		fputs("</td><td class=\"msg\">", f);
		html_text(f, col(st, 8));
		fputs("</td>", f);
		reasons(f, col(st, 9));
		fputs("</tr>\n", f);
	}
	if (!n)
		fputs("<tr><td colspan=\"6\" class=\"note\">no results stored for this run</td></tr>\n", f);
	fputs("</table>\n", f);

	/* Details per slot and scenario: what was measured and what was seen. */
	sqlite3_reset(st);
	while (sqlite3_step(st) == SQLITE_ROW) {
		fputs("<h3>slot ", f);
		html_text(f, col(st, 1));
		fputs(": ", f);
		html_text(f, col(st, 2));
		fprintf(f, " <span class=\"%s\">", html_outcome_class(col(st, 6)));
		html_text(f, col(st, 6));
		fputs("</span></h3>\n<p>", f);
		html_text(f, col(st, 10));
		fputs(" to ", f);
		html_text(f, col(st, 11));
		fputs("</p>\n", f);
		measurements(f, db, sqlite3_column_int64(st, 0));
		events(f, db, sqlite3_column_int64(st, 0));
	}
	sqlite3_finalize(st);
}

int report_html_run(store *s, int64_t run_id, const char *path, char *err, size_t errlen)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *run;
	if (sqlite3_prepare_v2(db, "SELECT command, station, rack, operator, printf('%llu', seed), started_at,"
			       " finished_at, outcome, rig_version FROM runs WHERE id = ?1", -1, &run, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "html report: reading the store: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(run, 1, run_id);
	if (sqlite3_step(run) != SQLITE_ROW) {
		snprintf(err, errlen, "html report: no run %lld in the store", (long long)run_id);
		sqlite3_finalize(run);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "html report: %s: %s", path, strerror(errno));
		sqlite3_finalize(run);
		return -1;
	}
	char title[64];
	snprintf(title, sizeof title, "trackrig run %lld", (long long)run_id);
	html_page_begin(f, title);
	fputs("<h1>", f);
	html_text(f, title);
	fputs(": ", f);
	html_text(f, col(run, 0));
	const char *outcome = sqlite3_column_type(run, 7) == SQLITE_NULL ? "unfinished" : col(run, 7);
	fprintf(f, " <span class=\"%s\">", html_outcome_class(outcome));
	html_text(f, outcome);
	fputs("</span></h1>\n<table class=\"meta\">\n", f);
	meta_row(f, "station", col(run, 1));
	meta_row(f, "rack", col(run, 2));
	meta_row(f, "operator", col(run, 3));
	meta_row(f, "seed", col(run, 4));
	meta_row(f, "started", col(run, 5));
	meta_row(f, "finished", col(run, 6));
	meta_row(f, "rig version", col(run, 8));
	fputs("</table>\n", f);
	sqlite3_finalize(run);

	results_table(f, db, run_id);
	chart_records(f, db, run_id);
	chart_buffer(f, db, run_id);
	bool heading = false;   /* "Supply current" once, over whichever of its charts apply */
	chart_trace(f, db, run_id, &heading);
	chart_current(f, db, run_id, &heading);
	html_page_end(f);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "html report: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
