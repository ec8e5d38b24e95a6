/*
 * accept_page.c - the printable HTML page of `rig accept`: the verdict,
 * identity against the work order, install context, GNSS and cellular
 * numbers, every check, and an actions section for what failed.
 *
 * Every string (device answers, work order, a person's answers) goes out
 * through html_text(); the chart's labels are fixed text and its data are
 * numbers (chart.h sanitises anyway).
 */
#include "accept.h"
#include "chart.h"
#include "html.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void row(FILE *f, const char *k, const char *v)
{
	fputs("<tr><th>", f);
	html_text(f, k);
	fputs("</th><td>", f);
	html_text(f, v && *v ? v : "-");
	fputs("</td></tr>\n", f);
}

static void row_cmp(FILE *f, const char *k, const char *want, const char *got)
{
	bool differ = want && *want && got && strcmp(want, got) != 0;
	fprintf(f, "<tr%s><th>", differ ? " class=\"o-fail\"" : "");
	html_text(f, k);
	fputs("</th><td>", f);
	html_text(f, want && *want ? want : "-");
	fputs("</td><td>", f);
	html_text(f, got && *got ? got : "-");
	fprintf(f, "</td><td>%s</td></tr>\n", !(want && *want) ? "not checked" : differ ? "DRIFT" : "match");
}

static void rowf(FILE *f, const char *k, const char *fmt, double v)
{
	char buf[64];
	if (isfinite(v))
		snprintf(buf, sizeof buf, fmt, v);
	else
		snprintf(buf, sizeof buf, "not measured");
	row(f, k, buf);
}

static void gnss_chart(FILE *f, const struct accept_result *r)
{
	if (r->n_samples < 2) {
		html_figure(f, NULL, "GNSS satellites used and HDOP during the watch", "fewer than two seconds of GNSS readings");
		return;
	}
	double *x = calloc((size_t)r->n_samples, sizeof *x), *sat = calloc((size_t)r->n_samples, sizeof *sat),
	       *hd = calloc((size_t)r->n_samples, sizeof *hd);
	char *svg = NULL, err[512] = "out of memory";
	if (x && sat && hd) {
		for (int i = 0; i < r->n_samples; i++) {
			x[i] = r->samples[i].t_s;
			sat[i] = r->samples[i].satellites_used >= 0 ? r->samples[i].satellites_used : NAN;
			hd[i] = r->samples[i].mode >= 2 ? r->samples[i].hdop : NAN;
		}
		struct chart_series s[2] = {
			{ .name = "satellites used", .x = x, .y = sat, .n = (size_t)r->n_samples },
			{ .name = "HDOP (with a fix)", .x = x, .y = hd, .n = (size_t)r->n_samples },
		};
		struct chart_line c = { .title = "GNSS during acceptance", .xlabel = "s since the watch began",
					.ylabel = "count / HDOP", .series = s, .n_series = 2, .y_from_zero = true };
		if (chart_line_svg(&c, &svg, err, sizeof err))
			svg = NULL;
	}
	html_figure(f, svg, "GNSS satellites used and HDOP during the watch", err);
	free(svg);
	free(x);
	free(sat);
	free(hd);
}

int report_html_accept(const struct accept_result *r, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char title[160];
	snprintf(title, sizeof title, "Install acceptance: %s", r->pass ? "PASS" : "FAIL");
	html_page_begin(f, title);
	fputs("<h1>Install acceptance</h1>\n", f);
	fprintf(f, "<p class=\"%s\" id=\"verdict\"><strong>%s</strong></p>\n", html_outcome_class(r->pass ? "pass" : "fail"),
		r->pass ? "PASS" : "FAIL");

	fputs("<h2>Where and who</h2>\n<table>\n", f);
	row(f, "station", r->station);
	row(f, "slot", r->slot);
	row(f, "console", r->port);
	row(f, "operator", r->operator_);
	row(f, "started", r->started);
	row(f, "finished", r->finished);
	char run[32];
	snprintf(run, sizeof run, "%lld", (long long)r->run_id);
	row(f, "run", run);
	fputs("</table>\n", f);

	fputs("<h2>Identity</h2>\n<table>\n<tr><th></th><th>expected (", f);
	html_text(f, *r->wo.source ? r->wo.source : "none");
	fputs(")</th><th>found</th><th></th></tr>\n", f);
	row_cmp(f, "IMEI", r->wo.imei, r->imei);
	row_cmp(f, "ICCID", r->wo.iccid, r->iccid);
	row_cmp(f, "serial", r->wo.serial, r->serial);
	row_cmp(f, "vehicle", r->wo.vehicle, r->ans.vehicle);
	row_cmp(f, "firmware", r->wo.firmware, r->firmware);
	fputs("</table>\n<table>\n", f);
	row(f, "vendor", r->vendor);
	row(f, "model", r->model);
	fputs("</table>\n", f);

	fputs("<h2>Install context (confirmed by looking)</h2>\n<table>\n", f);
	row(f, "vehicle", r->ans.vehicle);
	row(f, "mounting position", r->ans.mounting);
	row(f, "antenna placement", r->ans.antenna);
	row(f, "install time", r->ans.install_time);
	fputs("</table>\n", f);

	fputs("<h2>Supply</h2>\n<table>\n", f);
	rowf(f, "voltage", "%.2f V", r->have_supply ? r->supply_v : NAN);
	rowf(f, "current", "%.3f A", r->have_supply ? r->supply_a : NAN);
	fputs("</table>\n", f);

	fputs("<h2>GNSS</h2>\n<table id=\"gnss\">\n", f);
	if (*r->gnss_error)
		row(f, "error", r->gnss_error);
	char buf[96];
	snprintf(buf, sizeof buf, "%s", !r->gnss_measured ? "not measured"
				    : r->gnss_mode == 3 ? "3D fix" : r->gnss_mode == 2 ? "2D fix"
				    : r->gnss_mode == 1 ? "no fix" : "no report");
	row(f, "fix", buf);
	rowf(f, "satellites used", "%.0f", r->gnss_measured && r->satellites_used >= 0 ? r->satellites_used : NAN);
	rowf(f, "satellites visible", "%.0f",
	     r->gnss_measured && r->satellites_visible >= 0 ? r->satellites_visible : NAN);
	rowf(f, "HDOP", "%.1f", r->gnss_measured ? r->hdop : NAN);
	rowf(f, "TTFF", "%.0f s", r->gnss_measured ? r->ttff_s : NAN);
	row(f, "TTFF source", r->ttff_source);
	rowf(f, "fix age", "%.1f s", r->gnss_measured ? r->fix_age_s : NAN);
	rowf(f, "position error", "%.1f m", r->gnss_measured ? r->position_error_m : NAN);
	row(f, "dispatch verdict", r->verdict);
	for (int i = 0; i < r->n_verdict_reasons; i++)
		row(f, "verdict reason", r->verdict_reasons[i]);
	fputs("</table>\n", f);
	gnss_chart(f, r);

	fputs("<h2>Cellular</h2>\n<table>\n", f);
	row(f, "registered", !r->have_status ? "not read" : r->registered ? "yes" : "NO");
	row(f, "operator", r->operator_code);
	rowf(f, "signal", "%.0f / 5", r->have_status ? r->signal : NAN);
	row(f, "data session", !r->have_status ? "not read" : r->data_link ? "up" : "down");
	rowf(f, "first record at the ingest", "%.0f s", r->record_received ? r->record_after_s : NAN);
	rowf(f, "limit", "%.0f s", r->record_limit_s);
	fputs("</table>\n", f);

	fputs("<h2>Checks</h2>\n<table id=\"checks\">\n<tr><th>check</th><th>result</th><th>reason code</th><th>detail</th></tr>\n", f);
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		fprintf(f, "<tr class=\"%s\"><td>", html_outcome_class(accept_status_name(c->status)));
		html_text(f, c->name);
		fputs("</td><td>", f);
		html_text(f, accept_status_name(c->status));
		fputs("</td><td>", f);
		html_text(f, c->code);
		fputs("</td><td>", f);
		html_text(f, c->detail);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);

	fputs("<h2 id=\"actions\">Actions</h2>\n", f);
	bool any = false;
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		if (c->status != ACCEPT_FAIL)
			continue;
		if (!any)
			fputs("<ul class=\"actions\">\n", f);
		any = true;
		fputs("<li><strong>", f);
		html_text(f, c->name);
		fputs("</strong> (<code>", f);
		html_text(f, c->code);
		fputs("</code>): technician: ", f);
		html_text(f, c->action);
		if (*c->action_ops) {
			fputs("<br>ops: ", f);
			html_text(f, c->action_ops);
		}
		fputs("</li>\n", f);
	}
	fputs(any ? "</ul>\n" : "<p>None: every check passed. Sign the install off.</p>\n", f);
	html_page_end(f);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
