/*
 * test_reports.c - the HTML reports and gnuplot charts (reports/html.c,
 * reports/trends.c, reports/chart.c) over a store built by hand.
 *
 * The store holds what a hostile or broken device could say: quotes,
 * newlines, gnuplot's system("...") and backticks, <script>. Each test checks
 * the output as text (escaped, charts inline, no injected file), and the
 * browser test opens the pages in headless Chromium and reads back the DOM.
 * Every test works in its own temp dir, so Criterion may run them at once.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chart.h"
#include "diagnose.h"
#include "html.h"
#include "report.h"
#include "store.h"
#include "support.h"

static char dir[256];

static void make_dir(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0, "scratch dir");
}

/* TRACKRIG_KEEP_REPORTS=1 keeps each test's pages and screenshots to look at. */
static void remove_dir(void)
{
	if (getenv("TRACKRIG_KEEP_REPORTS"))
		fprintf(stderr, "reports: kept %s\n", dir);
	else
		support_rmtree(dir);
}

TestSuite(reports, .init = make_dir, .fini = remove_dir, .timeout = 180);

/* ---- helpers ---- */

static const char *in_dir(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* gnuplot payloads that would create DIR/NAME if they reached a script raw. */
static void payload_system(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "x\" ; system(\"touch %s/%s\") ; \"", dir, name);
}

static void payload_backtick(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "`touch %s/%s`", dir, name);
}

/* An escaper written independently of reports/html.c, for expected text. */
static void escape(const char *s, char *out, size_t len)
{
	size_t n = 0;
	for (; *s && n + 7 < len; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" :
				  *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
		if (rep) {
			memcpy(out + n, rep, strlen(rep));
			n += strlen(rep);
		} else
			out[n++] = *s;
	}
	out[n] = '\0';
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static store *open_store(void)
{
	char path[PATH_MAX + 16], err[512];
	store *s = NULL;
	cr_assert_eq(store_open(in_dir("trackrig.db", path, sizeof path), &s, err, sizeof err), 0, "%s", err);
	return s;
}

#define HOSTILE_MODEL "<script>alert(1)</script>"
#define HOSTILE_IMEI "35209408723039'<b>"

static const char *hostile_message(void)
{
	static char buf[600];
	char sys[400];
	payload_system("pwned", sys, sizeof sys);
	snprintf(buf, sizeof buf, "boot_time = 45 s outside 0..30\nconsole said: %s & <img src=x onerror=alert(2)>",
		 sys);
	return buf;
}

/* One run on two slots: slot 1 hostile (model, IMEI, message, event detail,
 * measurement name), slot 2 a plain device; supply current measured on both,
 * records over a few minutes with a gap and a late flush on slot 1. */
static int64_t hostile_run(store *s)
{
	char sys[400], tick[400];
	payload_system("pwned", sys, sizeof sys);
	payload_backtick("pwned2", tick, sizeof tick);
	struct store_run r = { .command = "run power-loss", .station = "bench \"A\" <1>", .rack = "/etc/rack.yaml",
			       .operator_ = "o'brien", .seed = 18446744073709551615ULL };
	int64_t run = store_run_begin(s, &r);
	cr_assert_gt(run, 0, "%s", store_error(s));
	const char *code = diag_rules[0].code;
	struct store_result r1 = { .run_id = run, .slot = "1", .scenario = "power-loss", .imei = HOSTILE_IMEI,
				   .vendor = sys, .model = HOSTILE_MODEL, .outcome = "fail",
				   .message = hostile_message(), .reasons = code,
				   .started_at = "2026-11-26T08:00:00.000Z", .finished_at = "2026-11-26T08:05:00.000Z" };
	int64_t res1 = store_result_add(s, &r1);
	struct store_result r2 = { .run_id = run, .slot = "2", .scenario = "power-loss", .imei = "352094087230395",
				   .vendor = "Teltonika", .model = "FMB920", .outcome = "pass", .marginal = true,
				   .started_at = "2026-11-26T08:00:00.000Z", .finished_at = "2026-11-26T08:05:00.000Z" };
	int64_t res2 = store_result_add(s, &r2);
	cr_assert(res1 > 0 && res2 > 0, "%s", store_error(s));
	const char *points[] = { "idle_current", tick, "booting_current" };
	double amps[] = { 0.045, 0.0, 0.180 };
	for (int slot = 0; slot < 2; slot++)
		for (int i = 0; i < 3; i++) {
			struct store_measurement m = { .run_id = run, .slot = slot ? "2" : "1", .name = points[i],
						       .value = amps[i] + slot * 0.01, .unit = "A", .low = 0.005,
						       .high = 0.5, .outcome = "pass", .result_id = slot ? res2 : res1 };
			cr_assert_gt(store_measurement_add(s, &m), 0, "%s", store_error(s));
		}
	struct store_measurement bt = { .run_id = run, .slot = "1", .name = "boot_time", .value = 45, .unit = "s",
					.low = 0, .high = 30, .outcome = "fail", .result_id = res1 };
	cr_assert_gt(store_measurement_add(s, &bt), 0, "%s", store_error(s));
	struct store_event e = { .run_id = run, .slot = "1", .imei = HOSTILE_IMEI, .at = "2026-11-26T08:01:00.000Z",
				 .source = "console", .kind = "boot", .detail = "@BOOT " HOSTILE_MODEL "\n\"quoted\"",
				 .result_id = res1 };
	cr_assert_gt(store_event_add(s, &e), 0, "%s", store_error(s));
	/* A supply trace across a cut and a boot: idle, off, booting, idle. */
	struct store_supply_sample trace[40];
	for (int i = 0; i < 40; i++)
		trace[i] = (struct store_supply_sample){ .t_ms = i * 100, .volts = i >= 10 && i < 25 ? 0 : 12,
							 .amps = i < 10 ? 0.045 : i < 25 ? 0 : i < 28 ? 0.18 : 0.045 };
	cr_assert_eq(store_supply_samples_add(s, run, res1, "1", trace, 40), 0, "%s", store_error(s));
	struct store_supply_sample bad = { .t_ms = -5 };
	cr_assert_eq(store_supply_samples_add(s, run, res1, "1", &bad, 1), -1, "a reading before its trace is refused");
	cr_assert(strstr(store_error(s), "before its trace began"), "%s", store_error(s));

	/* Telemetry: slot 1 sends each minute, goes quiet, then flushes late. */
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(store_db(s), "INSERT INTO records (run_id, imei, ts_device, ts_ms, arrival,"
					" arrival_ms, priority, lat_e7, lon_e7, altitude, angle, satellites, speed,"
					" event_io, io, late, packet_seq, content_hash) VALUES (?1, ?2, 'x', ?3, 'x', ?4,"
					" 0, 0, 0, 0, 0, 7, 0, 0, '{}', ?5, 1, ?3)", -1, &st, NULL), SQLITE_OK);
	const int64_t t0 = 1795000000000LL;
	for (int i = 0; i < 12; i++) {
		const char *imei = i % 2 ? "352094087230395" : HOSTILE_IMEI;
		bool late = i >= 8 && !(i % 2);
		int64_t ts = t0 + i * 30000, arrival = late ? t0 + 9 * 60000 : ts + 500;
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_text(st, 2, imei, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, ts);
		sqlite3_bind_int64(st, 4, arrival);
		sqlite3_bind_int(st, 5, late);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(store_db(s)));
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	cr_assert_eq(store_run_end(s, run, "fail"), 0, "%s", store_error(s));
	return run;
}

static char *render_run(store *s, int64_t run, char *path, size_t len)
{
	char err[512];
	in_dir("run.html", path, len);
	cr_assert_eq(report_html_run(s, run, path, err, sizeof err), 0, "report_html_run: %s", err);
	char *html = support_read_file(path);
	cr_assert_not_null(html, "read %s", path);
	return html;
}

/* Four runs: FLAKY_IMEI passes, fails, passes, fails power-loss on one
 * firmware; STEADY_IMEI always passes; DRIFT_IMEI fails on every run. */
#define FLAKY_IMEI "356307042441013"
#define STEADY_IMEI "356307042441021"
#define DRIFT_IMEI "356307042441039"

static void nightly_history(store *s)
{
	struct store_device devs[] = {
		{ .imei = FLAKY_IMEI, .vendor = "Teltonika", .model = "FMB920", .firmware = "03.28.07" },
		{ .imei = STEADY_IMEI, .vendor = "Queclink", .model = HOSTILE_MODEL, .firmware = "R12" },
		{ .imei = DRIFT_IMEI, .vendor = "Teltonika", .model = "FMC130", .firmware = "03.29.01" },
	};
	for (size_t i = 0; i < 3; i++)
		cr_assert_gt(store_device_seen(s, &devs[i]), 0, "%s", store_error(s));
	for (int n = 0; n < 4; n++) {
		struct store_run r = { .command = "nightly", .operator_ = "ci", .seed = (uint64_t)n };
		int64_t run = store_run_begin(s, &r);
		cr_assert_gt(run, 0, "%s", store_error(s));
		for (size_t i = 0; i < 3; i++) {
			const char *outcome = i == 0 ? (n % 2 ? "fail" : "pass") : i == 1 ? "pass" : "fail";
			const char *scen[] = { "power-loss", "offline-flush" };
			for (int k = 0; k < 2; k++) {
				char slot[8];
				snprintf(slot, sizeof slot, "%zu", i + 1);
				struct store_result res = { .run_id = run, .slot = slot, .scenario = scen[k],
							    .imei = devs[i].imei, .vendor = devs[i].vendor,
							    .model = devs[i].model,
							    .outcome = k == 1 && i == 0 ? "pass" : outcome,
							    .started_at = "2026-11-26T01:00:00.000Z",
							    .finished_at = "2026-11-26T01:10:00.000Z" };
				cr_assert_gt(store_result_add(s, &res), 0, "%s", store_error(s));
			}
		}
		cr_assert_eq(store_run_end(s, run, "fail"), 0, "%s", store_error(s));
	}
}

/* ---- charts ---- */

Test(reports, sanitize_keeps_only_the_safe_set)
{
	char out[CHART_LABEL_MAX + 1];
	chart_sanitize("x\" ; system(\"touch /tmp/pwned\") ; \"`id`$x@m\\\n'é", out, sizeof out);
	cr_assert_str_eq(out, "x  systemtouch /tmp/pwned  idxm ");
	chart_sanitize("slot 3: FMB920 v1.2_a/b-c", out, sizeof out);
	cr_assert_str_eq(out, "slot 3: FMB920 v1.2_a/b-c");
	chart_sanitize(NULL, out, sizeof out);
	cr_assert_str_eq(out, "");
}

/* The payloads are live: straight into a gnuplot script, they do create the
 * file. Without this, the next test could pass because the payload is dud. */
Test(reports, payloads_are_live_in_raw_gnuplot)
{
	char sys[400], tick[400], script[PATH_MAX + 16], p1[PATH_MAX + 16], p2[PATH_MAX + 16], out[4096];
	payload_system("raw1", sys, sizeof sys);
	payload_backtick("raw2", tick, sizeof tick);
	FILE *f = fopen(in_dir("raw.gp", script, sizeof script), "w");
	cr_assert_not_null(f);
	/* Backticks first: the system() line ends in an invalid command. */
	fprintf(f, "set terminal svg\nset output '/dev/null'\nset xlabel \"%s\"\nset title \"%s\"\nplot x\n", tick,
		sys);
	fclose(f);
	char *argv[] = { "/usr/bin/gnuplot", script, NULL };
	support_run(argv, out, sizeof out);
	cr_assert(exists(in_dir("raw1", p1, sizeof p1)), "system() payload did not run: %s", out);
	cr_assert(exists(in_dir("raw2", p2, sizeof p2)), "backtick payload did not run: %s", out);
}

Test(reports, hostile_labels_are_inert_in_charts)
{
	char sys[400], tick[400], err[512], p[PATH_MAX + 16];
	payload_system("pwned", sys, sizeof sys);
	payload_backtick("pwned2", tick, sizeof tick);
	double x[] = { 0, 1, 2, 3 }, y[] = { 1, 4, NAN, 2 };
	struct chart_series s[] = { { .name = sys, .x = x, .y = y, .n = 4 }, { .name = tick, .x = x, .y = x, .n = 4 } };
	const char *ticks[] = { sys, tick, "b", "c" };
	struct chart_line line = { .title = sys, .xlabel = tick, .ylabel = sys, .series = s, .n_series = 2,
				   .xtics = ticks, .n_xtics = 4 };
	char *svg = NULL;
	cr_assert_eq(chart_line_svg(&line, &svg, err, sizeof err), 0, "line: %s", err);
	cr_assert(!strncmp(svg, "<svg", 4), "starts with <svg: %.40s", svg);
	cr_assert_not_null(strstr(svg, "</svg>"));
	cr_assert_not_null(strstr(svg, "touch "), "the sanitised title is drawn");
	free(svg);

	const char *cats[] = { sys, tick, "FMB920" };
	double v[] = { 12.5, 30, 8 };
	struct chart_bar bar = { .title = tick, .ylabel = sys, .categories = cats, .values = v, .n = 3 };
	cr_assert_eq(chart_bar_svg(&bar, &svg, err, sizeof err), 0, "bar: %s", err);
	cr_assert(!strncmp(svg, "<svg", 4));
	cr_assert_not_null(strstr(svg, "FMB920"), "category names are drawn");
	free(svg);
	cr_assert(!exists(in_dir("pwned", p, sizeof p)), "system() payload ran");
	cr_assert(!exists(in_dir("pwned2", p, sizeof p)), "backtick payload ran");
}

Test(reports, chart_without_data_says_so)
{
	char err[256] = "";
	char *svg = (char *)1;
	double x[] = { NAN }, y[] = { 1 };
	struct chart_series s = { .name = "empty", .x = x, .y = y, .n = 1 };
	struct chart_line line = { .title = "t", .series = &s, .n_series = 1 };
	cr_assert_eq(chart_line_svg(&line, &svg, err, sizeof err), -1);
	cr_assert_null(svg);
	cr_assert_not_null(strstr(err, "nothing to draw"), "%s", err);
}

/* ---- the run page ---- */

/* A 30-minute outage with a record each minute, flushed at 31.5 min: the
 * depth climbs one a minute to 30, then falls to 0; a record that arrives
 * within its minute is never counted. */
Test(reports, buffer_depth_climbs_through_an_outage_and_falls_on_the_flush)
{
	enum { NB = 40 };
	double d[NB + 1] = { 0 };
	const int64_t min = 60000;
	for (int k = 1; k <= 30; k++)
		cr_assert(html_buffer_add(d, NB, min, k * min, 31 * min + 30000), "record %d buffered", k);
	cr_assert(!html_buffer_add(d, NB, min, 35 * min + 100, 35 * min + 600), "sent at once: never buffered");
	cr_assert(!html_buffer_add(d, NB, min, 50 * min, 51 * min), "made after the last bucket");
	html_buffer_sum(d, NB);
	for (int b = 0; b < NB; b++) {
		/* bucket b ends at (b+1) min: records made at 1..b+1 are waiting until 31.5 */
		double want = b + 1 <= 30 ? b + 1 : b + 1 == 31 ? 30 : 0;
		cr_assert_float_eq(d[b], want, 1e-9, "depth at the end of minute %d: %g, want %g", b + 1, d[b], want);
	}
}

Test(reports, run_page_escapes_everything_from_the_store)
{
	store *s = open_store();
	int64_t run = hostile_run(s);
	char path[PATH_MAX + 16], p[PATH_MAX + 16], want[2048];
	char *html = render_run(s, run, path, sizeof path);

	cr_assert_null(strcasestr(html, "<script"), "raw <script> in the page");
	cr_assert_null(strstr(html, "<img"), "raw <img> from a message");
	cr_assert_null(strstr(html, "039'<b>"), "raw <b> from an IMEI");
	escape(HOSTILE_MODEL, want, sizeof want);
	cr_assert_geq(count(html, want), 2, "escaped model (results and event) missing");
	escape(hostile_message(), want, sizeof want);
	cr_assert_not_null(strstr(html, want), "escaped message with its newline missing");
	escape(HOSTILE_IMEI, want, sizeof want);
	cr_assert_not_null(strstr(html, want), "escaped IMEI missing");
	cr_assert_not_null(strstr(html, "bench &quot;A&quot; &lt;1&gt;"), "escaped station missing");
	cr_assert_not_null(strstr(html, "o&#39;brien"), "escaped operator missing");
	cr_assert_not_null(strstr(html, "18446744073709551615"), "seed as typed");
	/* The reason code with both actions, from rig/diagnose.c. */
	cr_assert_not_null(strstr(html, diag_rules[0].code));
	escape(diag_rules[0].action_ops, want, sizeof want);
	cr_assert_not_null(strstr(html, want), "ops action missing");
	escape(diag_rules[0].action_technician, want, sizeof want);
	cr_assert_not_null(strstr(html, want), "technician action missing");
	/* Marginal flag, measurements with units and limits, outcome colours. */
	cr_assert_not_null(strstr(html, ">marginal<"));
	cr_assert_not_null(strstr(html, "<td>boot_time</td><td class=\"num\">45</td><td>s</td>"
				  "<td class=\"num\">0</td><td class=\"num\">30</td><td class=\"o-fail\">fail</td>"));
	cr_assert_not_null(strstr(html, "class=\"o-pass\""));
	/* Both charts inline, and printable. */
	cr_assert_eq(count(html, "<svg"), 4, "records, buffer depth, supply trace and supply current charts");
	cr_assert_not_null(strstr(html, "supply current trace"));
	cr_assert_not_null(strstr(html, "Supply current across a power cut and boot"));
	cr_assert_not_null(strstr(html, "records arriving"));
	cr_assert_not_null(strstr(html, "device buffer depth"));
	cr_assert_not_null(strstr(html, "supply current"));
	cr_assert_not_null(strstr(html, "@media print"));
	cr_assert_null(strstr(html, "chart not drawn"), "a chart failed");
	cr_assert(!exists(in_dir("pwned", p, sizeof p)), "system() payload ran");
	cr_assert(!exists(in_dir("pwned2", p, sizeof p)), "backtick payload ran");
	free(html);
	store_close(s);
}

Test(reports, run_page_without_telemetry_or_current_has_no_charts)
{
	store *s = open_store();
	struct store_run r = { .command = "probe", .operator_ = "tech", .seed = 1 };
	int64_t run = store_run_begin(s, &r);
	struct store_result res = { .run_id = run, .slot = "4", .scenario = "identity", .imei = "352094087230394",
				    .vendor = "Teltonika", .model = "FMB920", .outcome = "pass",
				    .started_at = "2026-11-26T08:00:00.000Z", .finished_at = "2026-11-26T08:00:05.000Z" };
	cr_assert_gt(store_result_add(s, &res), 0, "%s", store_error(s));
	char path[PATH_MAX + 16];
	char *html = render_run(s, run, path, sizeof path);
	cr_assert_eq(count(html, "<svg"), 0);
	cr_assert_not_null(strstr(html, "unfinished"), "a run without an end says so");
	cr_assert_not_null(strstr(html, "352094087230394"));
	free(html);
	store_close(s);
}

Test(reports, run_page_for_a_missing_run_fails_with_reason)
{
	store *s = open_store();
	char path[PATH_MAX + 16], err[256] = "";
	cr_assert_eq(report_html_run(s, 42, in_dir("x.html", path, sizeof path), err, sizeof err), -1);
	cr_assert_not_null(strstr(err, "no run 42"), "%s", err);
	cr_assert(!exists(path), "no page for a missing run");
	store_close(s);
}

/* ---- the trends page ---- */

Test(reports, trends_page_finds_the_flaky_device)
{
	store *s = open_store();
	nightly_history(s);
	char path[PATH_MAX + 16], err[512];
	cr_assert_eq(report_html_trends(s, in_dir("trends.html", path, sizeof path), 10, err, sizeof err), 0, "%s",
		     err);
	char *html = support_read_file(path);
	cr_assert_not_null(html);
	const char *flaky = strstr(html, "<h2>Flaky checks</h2>");
	cr_assert_not_null(flaky);
	cr_assert_not_null(strstr(flaky, "<td>" FLAKY_IMEI "</td><td>power-loss</td><td>03.28.07</td>"
				  "<td class=\"num\">3</td>"), "flaky device with its three flips");
	cr_assert_not_null(strstr(flaky, "run 1 pass, run 2 fail, run 3 pass, run 4 fail"));
	cr_assert_null(strstr(flaky, STEADY_IMEI), "a steady pass is not flaky");
	cr_assert_null(strstr(flaky, DRIFT_IMEI), "a steady fail is not flaky");
	cr_assert_null(strstr(flaky, "offline-flush"), "the flaky device's steady scenario is not flaky");
	cr_assert_eq(count(html, "<svg"), 2, "pass rate per scenario and per model");
	cr_assert_null(strcasestr(html, "<script"));
	cr_assert_not_null(strstr(html, "Queclink &lt;script&gt;alert(1)&lt;/script&gt;"));
	/* power-loss: 2 runs x (steady pass) + 2 flaky passes of 12 results. */
	cr_assert_not_null(strstr(html, "<td>power-loss</td><td class=\"num\">6 / 12</td><td class=\"num\">50%</td>"));
	free(html);

	/* The window: the last run alone has the flaky device failing only. */
	cr_assert_eq(report_html_trends(s, path, 1, err, sizeof err), 0, "%s", err);
	html = support_read_file(path);
	cr_assert_null(strstr(html, FLAKY_IMEI), "one run cannot show a flip");
	cr_assert_not_null(strstr(html, "no flaky checks in the window"));
	free(html);
	store_close(s);
}

/* ---- skipped slots and rig faults ---- */

#define QUARANTINE_WHY "slot 8 in quarantine, not run: console: /dev/ttyUSB7: No such file or directory"

/* One run of power-loss on 8 slots of the reference model: OUTCOMES[i] is
 * slot i+1's; a skipped slot gets the quarantine reason, an error a rig
 * fault's message. Returns the run. */
static int64_t eight_slots(store *s, const char *const outcomes[8])
{
	struct store_run r = { .command = "nightly", .operator_ = "ci", .seed = 1 };
	int64_t run = store_run_begin(s, &r);
	cr_assert_gt(run, 0, "%s", store_error(s));
	for (int i = 0; i < 8; i++) {
		char slot[16], imei[32];
		snprintf(slot, sizeof slot, "%d", i + 1);
		snprintf(imei, sizeof imei, "35209408000000%d", i + 1);
		const char *msg = !strcmp(outcomes[i], "skipped") ? QUARANTINE_WHY
				  : !strcmp(outcomes[i], "error") ? "rack control socket: no reply to 'datacap 3 off'"
				  : !strcmp(outcomes[i], "fail") ? "boot_time = 45 s outside 0..30" : NULL;
		struct store_result res = { .run_id = run, .slot = slot, .scenario = "power-loss", .imei = imei,
					    .vendor = "Teltonika", .model = "FMB920", .outcome = outcomes[i], .message = msg,
					    .started_at = "2026-11-26T01:00:00.000Z", .finished_at = "2026-11-26T01:10:00.000Z" };
		cr_assert_gt(store_result_add(s, &res), 0, "%s", store_error(s));
	}
	cr_assert_eq(store_run_end(s, run, "fail"), 0, "%s", store_error(s));
	return run;
}

/* The trends table row of NAME, from its cell to the end of the row. */
static const char *trend_row(const char *html, const char *h2, const char *name, char *out, size_t len)
{
	const char *sec = strstr(html, h2);
	cr_assert_not_null(sec, "no section %s", h2);
	char pat[128];
	snprintf(pat, sizeof pat, "<tr><td>%s</td>", name);
	const char *row = strstr(sec, pat);
	cr_assert_not_null(row, "no row %s under %s", name, h2);
	const char *end = strstr(row, "</tr>");
	snprintf(out, len, "%.*s", end ? (int)(end - row) : 0, row);
	return out;
}

/* A night with one slot of 8 in quarantine: 8 test cases in JUnit, the
 * quarantined one <skipped> with its reason; SKIPPED in the JSON and on the
 * run page; and the trend's rate for the scenario does not rise (6 of 8
 * before, 6 of 8 with the eighth slot set aside, not 6 of 7). */
Test(reports, a_quarantined_slot_is_skipped_in_every_report_and_the_rate_does_not_rise)
{
	store *s = open_store();
	const char *night1[8] = { "pass", "pass", "pass", "pass", "pass", "pass", "fail", "fail" };
	const char *night2[8] = { "pass", "pass", "pass", "pass", "pass", "pass", "fail", "skipped" };
	eight_slots(s, night1);
	int64_t run = eight_slots(s, night2);
	char path[PATH_MAX + 16], err[512];

	cr_assert_eq(report_junit(s, run, in_dir("n.xml", path, sizeof path), err, sizeof err), 0, "%s", err);
	char *x = support_read_file(path);
	cr_assert_not_null(x);
	cr_assert_eq(count(x, "<testcase "), 8, "every slot is a test case:\n%s", x);
	cr_assert_eq(count(x, "<skipped "), 1, "%s", x);
	cr_assert_not_null(strstr(x, "<skipped message=\"skipped: " QUARANTINE_WHY "\"/>"), "%s", x);
	cr_assert_not_null(strstr(x, "tests=\"8\" failures=\"1\" errors=\"0\" skipped=\"1\""), "%s", x);
	free(x);

	cr_assert_eq(report_json(s, run, in_dir("n.json", path, sizeof path), err, sizeof err), 0, "%s", err);
	char *j = support_read_file(path);
	cr_assert_not_null(j);
	cr_assert_eq(count(j, "\"outcome\": \"skipped\""), 1, "%s", j);
	cr_assert_not_null(strstr(j, QUARANTINE_WHY), "%s", j);
	free(j);

	cr_assert_eq(report_html_run(s, run, in_dir("n.html", path, sizeof path), err, sizeof err), 0, "%s", err);
	char *h = support_read_file(path);
	cr_assert_not_null(h);
	cr_assert_not_null(strstr(h, "<td class=\"o-skipped\">skipped</td><td class=\"msg\">" QUARANTINE_WHY), "%s", h);
	cr_assert_not_null(strstr(h, "Skipped (slot in quarantine, not run): 1."), "%s", h);
	free(h);

	char row[1024];
	cr_assert_eq(report_html_trends(s, in_dir("t.html", path, sizeof path), 1, err, sizeof err), 0, "%s", err);
	h = support_read_file(path);
	trend_row(h, "Pass rate per scenario", "power-loss", row, sizeof row);
	cr_assert_not_null(strstr(row, "6 / 8</td><td class=\"num\">75%</td><td class=\"num\">1</td>"),
			   "the night with a slot set aside: %s", row);
	free(h);
	cr_assert_eq(report_html_trends(s, path, 2, err, sizeof err), 0, "%s", err);
	h = support_read_file(path);
	trend_row(h, "Pass rate per scenario", "power-loss", row, sizeof row);
	cr_assert_not_null(strstr(row, "12 / 16</td><td class=\"num\">75%</td>"), "both nights: %s", row);
	free(h);
	store_close(s);
}

/* Rig faults injected on the reference model (control-socket errors, a stop)
 * are counted against nobody: its rate stays 100 % and the faults show in
 * their own column. */
Test(reports, rig_faults_stay_out_of_the_trend_rates_and_show_in_their_own_column)
{
	store *s = open_store();
	const char *night[8] = { "pass", "pass", "error", "pass", "error", "pass", "aborted", "pass" };
	int64_t run = eight_slots(s, night);
	char path[PATH_MAX + 16], err[512], row[1024];
	cr_assert_eq(report_junit(s, run, in_dir("n.xml", path, sizeof path), err, sizeof err), 0, "%s", err);
	char *x = support_read_file(path);
	cr_assert_not_null(strstr(x, "tests=\"8\" failures=\"0\" errors=\"2\" skipped=\"1\""), "%s", x);
	cr_assert_eq(count(x, "<error type=\"error\""), 2, "%s", x);
	cr_assert_null(strstr(x, "<failure"), "%s", x);
	free(x);
	cr_assert_eq(report_html_trends(s, in_dir("t.html", path, sizeof path), 10, err, sizeof err), 0, "%s", err);
	char *h = support_read_file(path);
	cr_assert_not_null(h);
	trend_row(h, "Pass rate per model", "Teltonika FMB920", row, sizeof row);
	cr_assert_not_null(strstr(row, "5 / 5</td><td class=\"num\">100%</td><td class=\"num\">0</td>"
				   "<td class=\"num\">3</td>"), "%s", row);
	trend_row(h, "Pass rate per scenario", "power-loss", row, sizeof row);
	cr_assert_not_null(strstr(row, "5 / 5</td><td class=\"num\">100%</td><td class=\"num\">0</td>"
				   "<td class=\"num\">3</td>"), "%s", row);
	free(h);
	store_close(s);
}

/* ---- in a real browser ---- */

/* Runs ARGV with stdout to OUT and stderr to LOG, in its own process group,
 * killed after TIMEOUT_S. Returns the exit code, or -1. */
static int run_logged(char *const argv[], const char *out, const char *log, int timeout_s)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		if (!freopen(out, "w", stdout) || !freopen(log, "w", stderr))
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	struct timespec nap = { 0, 50 * 1000 * 1000 };
	for (int ms = 0; ms < timeout_s * 1000; ms += 50) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		nanosleep(&nap, NULL);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* Opens PAGE in headless Chromium; returns the serialised DOM (malloc'ed). */
static char *browser_dom(const char *page, const char *tag)
{
	char profile[PATH_MAX + 32], out[PATH_MAX + 32], log[PATH_MAX + 32], png[PATH_MAX + 32];
	char url[PATH_MAX + 16], udd[PATH_MAX + 48], shot[PATH_MAX + 48];
	snprintf(profile, sizeof profile, "%s/chromium-%s", dir, tag);
	snprintf(out, sizeof out, "%s/%s.dom", dir, tag);
	snprintf(log, sizeof log, "%s/%s.log", dir, tag);
	snprintf(png, sizeof png, "%s/%s.png", dir, tag);
	snprintf(url, sizeof url, "file://%s", page);
	snprintf(udd, sizeof udd, "--user-data-dir=%s", profile);
	snprintf(shot, sizeof shot, "--screenshot=%s", png);
	cr_assert_eq(access("/usr/bin/chromium", X_OK), 0,
		     "headless Chromium is needed: apt-get install chromium (make deps installs it)");
	char *common[] = { "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			   "--no-first-run", "--disable-background-networking", "--disable-component-update",
			   "--disable-sync", "--disable-dev-shm-usage", udd };
	enum { NC = sizeof common / sizeof common[0] };
	char *argv[NC + 4];
	memcpy(argv, common, sizeof common);
	argv[NC] = "--dump-dom";
	argv[NC + 1] = url;
	argv[NC + 2] = NULL;
	int rc = run_logged(argv, out, log, 120);
	char *dom = support_read_file(out), *errs = support_read_file(log);
	cr_assert_eq(rc, 0, "chromium --dump-dom %s exited %d: %s", page, rc, errs ? errs : "");
	cr_assert_not_null(dom);
	cr_assert_null(strstr(errs ? errs : "", "ERR_FILE_NOT_FOUND"), "%s", errs);
	free(errs);

	argv[NC] = shot;
	argv[NC + 1] = "--window-size=1100,1400";
	argv[NC + 2] = url;
	argv[NC + 3] = NULL;
	rc = run_logged(argv, "/dev/null", log, 120);
	errs = support_read_file(log);
	struct stat st;
	cr_assert(rc == 0 && stat(png, &st) == 0 && st.st_size > 1000, "chromium --screenshot %s: rc %d: %s", page,
		  rc, errs ? errs : "");
	free(errs);
	return dom;
}

Test(reports, pages_render_in_headless_chromium)
{
	store *s = open_store();
	int64_t run = hostile_run(s);
	nightly_history(s);
	char path[PATH_MAX + 16], trends[PATH_MAX + 16], err[512], p[PATH_MAX + 16];
	free(render_run(s, run, path, sizeof path));
	cr_assert_eq(report_html_trends(s, in_dir("trends.html", trends, sizeof trends), 0, err, sizeof err), 0,
		     "%s", err);
	store_close(s);

	char *dom = browser_dom(path, "run");
	/* The DOM is what the browser built: charts as elements, hostile text
	 * as text (serialised back escaped), no element the data asked for. */
	cr_assert_eq(count(dom, "<svg"), 4, "charts in the run page's DOM");
	cr_assert_geq(count(dom, "<path"), 2, "chart lines drawn");
	cr_assert_null(strcasestr(dom, "<script"), "a script element in the DOM");
	cr_assert_null(strstr(dom, "<img"), "an img element in the DOM");
	cr_assert_not_null(strstr(dom, "&lt;script&gt;alert(1)&lt;/script&gt;"), "hostile model as text");
	cr_assert_not_null(strstr(dom, "Results</h2>"));
	free(dom);

	dom = browser_dom(trends, "trends");
	cr_assert_eq(count(dom, "<svg"), 2, "charts in the trends page's DOM");
	cr_assert_not_null(strstr(dom, FLAKY_IMEI));
	cr_assert_null(strcasestr(dom, "<script"));
	free(dom);
	cr_assert(!exists(in_dir("pwned", p, sizeof p)), "system() payload ran");
}
