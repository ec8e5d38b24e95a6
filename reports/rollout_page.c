/* rollout_page.c - the printable HTML page of a staged rollout: where each
 * stage (cohort) stands, with a chart of its progress, from the store. */
#include "report.h"

#include "chart.h"
#include "html.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a device's state means for its stage's progress. */
enum { P_COMMITTED, P_FAILED, P_UPDATING, P_NOT_STARTED, P_N };

static int progress_of(const char *state)
{
	if (!strcmp(state, "committed"))
		return P_COMMITTED;
	if (!strcmp(state, "rolled_back") || !strcmp(state, "rejected") || !strcmp(state, "failed"))
		return P_FAILED;
	if (!strcmp(state, "updating"))
		return P_UPDATING;
	return P_NOT_STARTED; /* waiting, gated_out, skipped_after_stop */
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

#define MAX_STAGES 64

int report_html_rollout(store *db, int64_t id, const char *path, char *err, size_t errlen)
{
	sqlite3 *h = store_db(db);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h, "SELECT image, version, model, stages, cohort, state, reason, operator, created_at, "
			       "updated_at FROM rollouts WHERE id = ?1", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "rollout %lld: %s", (long long)id, sqlite3_errmsg(h));
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		snprintf(err, errlen, "rollout %lld: not in the store", (long long)id);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		sqlite3_finalize(st);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char title[64];
	snprintf(title, sizeof title, "Rollout %lld", (long long)id);
	html_page_begin(f, title);
	fprintf(f, "<h1>%s: ", title);
	html_text(f, col(st, 5));
	fputs("</h1>\n<table id=\"rollout\">\n", f);
	static const char *const head[] = { "image", "version", "model", "stages", "cohort" };
	for (int i = 0; i < 5; i++) {
		fprintf(f, "<tr><th>%s</th><td>", head[i]);
		html_text(f, col(st, i));
		fputs("</td></tr>\n", f);
	}
	fputs("<tr><th>why it stands</th><td>", f);
	html_text(f, *col(st, 6) ? col(st, 6) : "-");
	fputs("</td></tr>\n<tr><th>operator</th><td>", f);
	html_text(f, col(st, 7));
	fputs("</td></tr>\n<tr><th>created, last change</th><td>", f);
	html_text(f, col(st, 8));
	fputs(", ", f);
	html_text(f, col(st, 9));
	fputs("</td></tr>\n</table>\n", f);
	sqlite3_finalize(st);

	/* Per stage: devices in each kind of progress. */
	int count[MAX_STAGES][P_N] = { { 0 } }, n_stages = 0;
	if (sqlite3_prepare_v2(h, "SELECT stage, state, count(*) FROM rollout_devices WHERE rollout_id = ?1 "
			       "GROUP BY stage, state ORDER BY stage", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int stage = sqlite3_column_int(st, 0);
			if (stage < 1 || stage > MAX_STAGES)
				continue;
			count[stage - 1][progress_of(col(st, 1))] += sqlite3_column_int(st, 2);
			if (stage > n_stages)
				n_stages = stage;
		}
		sqlite3_finalize(st);
	}
	static const char *const pname[P_N] = { "committed", "failed or rolled back", "updating", "not started" };
	fputs("<h2>Progress per stage</h2>\n<table id=\"stages\">\n<tr><th>stage</th>", f);
	for (int p = 0; p < P_N; p++)
		fprintf(f, "<th>%s</th>", pname[p]);
	fputs("</tr>\n", f);
	for (int s = 0; s < n_stages; s++) {
		fprintf(f, "<tr class=\"%s\"><td>%d</td>", html_outcome_class(count[s][P_FAILED] ? "fail" : "pass"), s + 1);
		for (int p = 0; p < P_N; p++)
			fprintf(f, "<td>%d</td>", count[s][p]);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);

	/* The chart: one line per kind of progress across the stages. */
	char *svg = NULL, why[512] = "no devices in this rollout";
	if (n_stages > 0) {
		static char names[MAX_STAGES][24];
		const char *xt[MAX_STAGES];
		double x[MAX_STAGES], y[P_N][MAX_STAGES];
		struct chart_series series[P_N];
		for (int s = 0; s < n_stages; s++) {
			snprintf(names[s], sizeof names[s], "stage %d", s + 1);
			xt[s] = names[s];
			x[s] = s;
			for (int p = 0; p < P_N; p++)
				y[p][s] = count[s][p];
		}
		for (int p = 0; p < P_N; p++)
			series[p] = (struct chart_series){ .name = pname[p], .x = x, .y = y[p], .n = (size_t)n_stages };
		struct chart_line c = { .title = "Rollout progress per stage", .xlabel = "stage", .ylabel = "devices",
					.series = series, .n_series = P_N, .xtics = xt, .n_xtics = (size_t)n_stages,
					.x_integer = true, .y_from_zero = true };
		if (chart_line_svg(&c, &svg, why, sizeof why))
			svg = NULL;
	}
	html_figure(f, svg, "Devices per stage by progress", why);
	free(svg);

	fputs("<h2>Devices</h2>\n<table id=\"devices\">\n<tr><th>stage</th><th>slot</th><th>IMEI</th><th>state</th>"
	      "<th>gate</th><th>started</th><th>finished</th><th>detail</th></tr>\n", f);
	if (sqlite3_prepare_v2(h, "SELECT stage, slot, imei, state, gate, started_at, finished_at, detail "
			       "FROM rollout_devices WHERE rollout_id = ?1 ORDER BY stage, seq", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int p = progress_of(col(st, 3));
			fprintf(f, "<tr class=\"%s\">", html_outcome_class(p == P_FAILED ? "fail" : p == P_COMMITTED ? "pass" : "skipped"));
			for (int c = 0; c < 8; c++) {
				fputs("<td>", f);
				html_text(f, col(st, c));
				fputs("</td>", f);
			}
			fputs("</tr>\n", f);
		}
		sqlite3_finalize(st);
	}
	fputs("</table>\n", f);
	html_page_end(f);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
