/*
 * test_accept.c - `rig accept` end to end on a virtual simulated rack: each
 * test starts its own simrack in its own temp dir and runs the sanitizer
 * build of rig as a child.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chart.h"
#include "support.h"

/* Runs ARGV with stdin from /dev/null, stdout+stderr into OUT; a generous
 * deadline (sanitizers, parallel tests) but never a hang. Returns the exit
 * code or -1. */
static int run_rig(char *const argv[], char *out, size_t outlen)
{
	char log[PATH_MAX];
	snprintf(log, sizeof log, "/tmp/acc-run-%d-%ld.log", (int)getpid(), (long)random());
	pid_t pid = fork();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0, code = -1;
	for (int i = 0; i < 1200; i++) { /* 120 s */
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			break;
		}
		usleep(100000);
	}
	if (code == -1 && waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	char *text = support_read_file(log);
	if (out && outlen) {
		snprintf(out, outlen, "%s", text ? text : "");
	}
	if (text)
		fprintf(stderr, "%s", text);
	free(text);
	unlink(log);
	return code;
}

/* The value of KEY ("imei") in slot ID's expect: line of rack.yaml. */
static void rack_expect(const char *rack_file, int id, const char *key, char *out, size_t len)
{
	char *y = support_read_file(rack_file);
	cr_assert(y, "rack file %s", rack_file);
	char want[32];
	snprintf(want, sizeof want, "- id: %d\n", id);
	char *p = strstr(y, want);
	cr_assert(p, "slot %d in rack.yaml", id);
	p = strstr(p, "expect: {");
	cr_assert(p);
	char k[32];
	snprintf(k, sizeof k, "%s: \"", key);
	p = strstr(p, k);
	cr_assert(p, "%s in slot %d's expect", key, id);
	p += strlen(k);
	size_t n = strcspn(p, "\"");
	snprintf(out, len, "%.*s", (int)n, p);
	free(y);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

struct fx {
	struct simrack_proc rack;
	char tmp[PATH_MAX], rackfile[PATH_MAX], rig[PATH_MAX], db[PATH_MAX + 16], html[PATH_MAX + 16],
		json[PATH_MAX + 16], text[PATH_MAX + 16], wo[PATH_MAX + 16], ans[PATH_MAX + 16];
	char out[65536];
};

/* A 2-slot virtual simrack whose profiles come from simrack's option OPT
 * ("--mix" or "--profiles") with VALUE, and the paths of a run against it. */
static void fx_start_with(struct fx *f, const char *opt, const char *value)
{
	memset(f, 0, sizeof *f);
	const char *const extra[] = { "--virtual", opt, value, NULL };
	cr_assert_eq(simrack_start_args(&f->rack, 2, 7, extra), 0, "simrack");
	cr_assert_eq(support_tmpdir(f->tmp, sizeof f->tmp), 0);
	simrack_rackfile(&f->rack, f->rackfile, sizeof f->rackfile);
	support_bin("rig", f->rig, sizeof f->rig);
	snprintf(f->db, sizeof f->db, "%s/t.db", f->tmp);
	snprintf(f->html, sizeof f->html, "%s/accept.html", f->tmp);
	snprintf(f->json, sizeof f->json, "%s/accept.json", f->tmp);
	snprintf(f->text, sizeof f->text, "%s/accept.txt", f->tmp);
	snprintf(f->wo, sizeof f->wo, "%s/work-order.yaml", f->tmp);
	snprintf(f->ans, sizeof f->ans, "%s/answers.txt", f->tmp);
}

static void fx_start(struct fx *f, const char *mix)
{
	fx_start_with(f, "--mix", mix);
}

static void fx_stop(struct fx *f)
{
	simrack_stop(&f->rack);
	support_rmtree(f->tmp);
}

/* True when slot ID's expect: line in rack.yaml has KEY. */
static bool rack_expects(const char *rack_file, int id, const char *key)
{
	char *y = support_read_file(rack_file);
	cr_assert(y, "rack file %s", rack_file);
	char want[32], k[32];
	snprintf(want, sizeof want, "- id: %d\n", id);
	snprintf(k, sizeof k, "%s: \"", key);
	char *p = strstr(y, want);
	char *e = p ? strstr(p, "expect: {") : NULL;
	char *end = e ? strchr(e, '}') : NULL;
	char *at = e ? strstr(e, k) : NULL;
	bool has = at && end && at < end;
	free(y);
	return has;
}

/* A work order matching slot ID, with VEHICLE. The serial is rack.yaml's
 * where the unit tells one (agent), else a label's, which a Teltonika unit
 * cannot be checked against. */
static void matching_work_order(struct fx *f, int id, const char *vehicle, const char *imei_override)
{
	char imei[32], iccid[32], serial[48] = "1100000001", text[512];
	rack_expect(f->rackfile, id, "imei", imei, sizeof imei);
	rack_expect(f->rackfile, id, "iccid", iccid, sizeof iccid);
	if (rack_expects(f->rackfile, id, "serial"))
		rack_expect(f->rackfile, id, "serial", serial, sizeof serial);
	snprintf(text, sizeof text, "# work order 4711\nimei: \"%s\"\niccid: %s\nserial=%s\nvehicle: %s\nfirmware: 03.28.07_04\n",
		 imei_override ? imei_override : imei, iccid, serial, vehicle);
	write_file(f->wo, text);
}

static int accept_slot(struct fx *f, int slot, const char *extra_opt, const char *extra_val)
{
	char slot_s[8];
	snprintf(slot_s, sizeof slot_s, "%d", slot);
	char *argv[24] = { f->rig, "accept", "--slot", slot_s, "--rack", f->rackfile, "--db", f->db, "--work-order", f->wo,
			   "--answers", f->ans, "--html", f->html, "--json", f->json, "--text", f->text };
	int n = 18;
	if (extra_opt) {
		argv[n++] = (char *)extra_opt;
		argv[n++] = (char *)extra_val;
	}
	argv[n] = NULL;
	return run_rig(argv, f->out, sizeof f->out);
}

/* The page in headless Chromium through tests/browser/check-html: it loads,
 * has at least MIN_SVG charts in the DOM the browser built, and no <script>
 * element. Returns the script's exit code; its lines land in OUT. */
static int in_browser(const char *page, const char *min_svg, char *out, size_t outlen)
{
	char *argv[] = { "/bin/sh", "tests/browser/check-html", "--min-svg", (char *)min_svg, (char *)page, NULL };
	return support_run(argv, out, outlen);
}

Test(accept, reference_slot_passes_with_reports)
{
	struct fx *f = calloc(1, sizeof *f);
	fx_start(f, "lab");
	matching_work_order(f, 1, "VAN-12", NULL);
	write_file(f->ans, "vehicle: VAN-12\nmounting: behind the dashboard, left\nantenna: under the windscreen\n"
			   "install_time: 2026-11-26 08:30\n");
	int rc = accept_slot(f, 1, NULL, NULL);
	cr_expect_eq(rc, 0, "rig accept on a reference slot: exit %d", rc);
	cr_expect(strstr(f->out, "result: PASS"), "PASS in the text report");
	char *html = support_read_file(f->html), *json = support_read_file(f->json), *text = support_read_file(f->text);
	cr_assert(html && json && text, "HTML, JSON and text reports written");
	char imei[32];
	rack_expect(f->rackfile, 1, "imei", imei, sizeof imei);
	cr_expect(strstr(html, imei), "HTML names the IMEI");
	cr_expect(strstr(html, "satellites used"), "HTML has the GNSS numbers");
	cr_expect(strstr(html, "HDOP"), "HTML has HDOP");
	cr_expect(strstr(html, "TTFF"), "HTML has TTFF");
	cr_expect(strstr(html, "id=\"actions\""), "HTML has the actions section");
	cr_expect(strstr(html, "<svg"), "HTML has the GNSS chart");
	cr_expect(strstr(json, "\"result\": \"pass\""), "JSON result pass");
	cr_expect(strstr(json, "\"dispatch_verdict\": \"safe\""), "dispatch safe on open sky");
	cr_expect(strstr(text, "result: PASS"));
	char br[4096] = "";
	cr_expect_eq(in_browser(f->html, "1", br, sizeof br), 0, "the accept page in headless Chromium: %s", br);
	/* stored: a run "accept" with a pass result and measurements */
	char *argv[] = { "/usr/bin/sqlite3", f->db,
			 "select r.command || ':' || x.outcome || ':' || (select count(*) from measurements m where m.run_id = r.id) "
			 "from runs r join results x on x.run_id = r.id where r.command = 'accept';",
			 NULL };
	char out[512] = "";
	cr_expect_eq(support_run(argv, out, sizeof out), 0, "sqlite3: %s", out);
	cr_expect(strncmp(out, "accept:pass:", 12) == 0 && atoi(out + 12) >= 4, "stored run/result/measurements: %s", out);
	free(html);
	free(json);
	free(text);
	fx_stop(f);
	free(f);
}

Test(accept, other_imei_is_metadata_drift_naming_both)
{
	struct fx *f = calloc(1, sizeof *f);
	fx_start(f, "lab");
	matching_work_order(f, 2, "VAN-12", "359999999999999");
	write_file(f->ans, "vehicle: VAN-12\nmounting: dash\nantenna: windscreen\ninstall_time: 08:30\n");
	char imei[32];
	rack_expect(f->rackfile, 2, "imei", imei, sizeof imei);
	int rc = accept_slot(f, 2, "--gnss-limit", "5");
	cr_expect_eq(rc, 1, "drift fails: exit %d", rc);
	const char *d = strstr(f->out, "metadata drift");
	cr_assert(d, "says metadata drift");
	cr_expect(strstr(d, "359999999999999"), "names the work order's IMEI");
	cr_expect(strstr(d, imei), "names the device's IMEI %s", imei);
	cr_expect(strstr(f->out, "result: FAIL"));
	fx_stop(f);
	free(f);
}

Test(accept, gnss_antenna_cut_is_gnss_fix_stale_with_actions)
{
	struct fx *f = calloc(1, sizeof *f);
	fx_start(f, "lab");
	matching_work_order(f, 1, "VAN-12", NULL);
	write_file(f->ans, "vehicle: VAN-12\nmounting: dash\nantenna: windscreen\ninstall_time: 08:30\n");
	char *relay[] = { f->rig, "relay", "1", "gnss_antenna", "off", "--rack", f->rackfile, "--db", f->db, NULL };
	char out[4096];
	cr_assert_eq(support_run(relay, out, sizeof out), 0, "cut the GNSS antenna: %s", out);
	int rc = accept_slot(f, 1, "--gnss-limit", "45");
	cr_expect_eq(rc, 1, "antenna cut fails: exit %d", rc);
	cr_expect(strstr(f->out, "gnss_fix_stale"), "reason code gnss_fix_stale");
	cr_expect(strstr(f->out, "check the GNSS antenna"), "the technician's action");
	char *html = support_read_file(f->html);
	cr_assert(html);
	const char *a = strstr(html, "id=\"actions\"");
	cr_assert(a, "actions section");
	cr_expect(strstr(a, "gnss_fix_stale") && strstr(a, "check the GNSS antenna"), "action in the HTML");
	free(html);
	fx_stop(f);
	free(f);
}

Test(accept, hostile_strings_are_escaped_and_never_run)
{
	struct fx *f = calloc(1, sizeof *f);
	fx_start(f, "lab");
	char marker[PATH_MAX + 8], wo_vehicle[PATH_MAX + 64], ans[PATH_MAX * 4];
	snprintf(marker, sizeof marker, "%s/X", f->tmp);
	snprintf(wo_vehicle, sizeof wo_vehicle, "<script>alert(1)</script>");
	matching_work_order(f, 1, wo_vehicle, NULL);
	snprintf(ans, sizeof ans,
		 "vehicle: \"; system(\"touch %s\")\nmounting: <img src=x onerror=alert(2)>\nantenna: `touch %s`\n"
		 "install_time: $(touch %s)\n",
		 marker, marker, marker);
	write_file(f->ans, ans);
	int rc = accept_slot(f, 1, "--gnss-limit", "5");
	cr_expect_eq(rc, 1, "the vehicles differ: FAIL, exit %d", rc);
	char *html = support_read_file(f->html), *json = support_read_file(f->json);
	cr_assert(html && json);
	cr_expect(!strstr(html, "<script"), "no live script tag");
	cr_expect(!strstr(html, "<img"), "no live img tag");
	cr_expect(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"), "the work order's vehicle escaped");
	cr_expect(strstr(html, "&quot;; system(&quot;touch "), "the answer escaped");
	cr_expect(strstr(json, "\\\"; system(\\\"touch "), "JSON escapes the quotes");
	/* What the browser built: the hostile strings stayed text. */
	char br[4096] = "";
	cr_expect_eq(in_browser(f->html, "0", br, sizeof br), 0, "the hostile accept page in headless Chromium: %s", br);
	struct stat st;
	cr_expect(stat(marker, &st) != 0, "nothing ran: %s does not exist", marker);
	free(html);
	free(json);
	fx_stop(f);
	free(f);
}

/* The hostile strings come from the device itself this time: the
 * hostile_strings clone reports markup, quotes and a gnuplot system() call as
 * its firmware, hardware revision and GNSS firmware over the console, and
 * its boot events carry them. Every report of accept and of a scenario run
 * must show them as text. */
Test(accept, hostile_device_answers_come_out_escaped)
{
	struct fx *f = calloc(1, sizeof *f);
	fx_start_with(f, "--profiles", "hostile_strings");
	matching_work_order(f, 1, "VAN-12", NULL);
	write_file(f->ans, "vehicle: VAN-12\nmounting: dash\nantenna: windscreen\ninstall_time: now\n");
	int rc = accept_slot(f, 1, "--gnss-limit", "5");
	cr_expect_eq(rc, 1, "the firmware is not the work order's: FAIL, exit %d", rc);
	char *html = support_read_file(f->html), *json = support_read_file(f->json), *text = support_read_file(f->text);
	cr_assert(html && json && text, "accept reports written");
	cr_expect(strstr(html, "9&quot;&lt;script&gt;alert(1)&lt;/script&gt;"), "the device's firmware escaped in HTML");
	cr_expect(!strstr(html, "<script") && !strstr(html, "<img"), "no live tag in the accept page");
	cr_expect(strstr(json, "\"9\\\""), "the firmware's quote escaped in JSON");
	cr_expect(strstr(text, "9\"<script>alert(1)</script>"), "plain text keeps the device's words");
	char br[4096] = "";
	cr_expect_eq(in_browser(f->html, "0", br, sizeof br), 0, "the accept page in headless Chromium: %s", br);
	free(html);
	free(json);
	free(text);

	/* What probe says of the device, as JSON. */
	char *probe[] = { f->rig, "probe", "--rack", f->rackfile, "--slots", "1", "--json", "--db", f->db, NULL };
	char *out = calloc(1, 65536);
	cr_expect_eq(run_rig(probe, out, 65536), 0, "rig probe: %s", out);
	cr_expect(strstr(out, "\"hw_rev\": \"\\u003cimg/src=x>\""), "hw_rev escaped in JSON: %s", out);
	cr_expect(strstr(out, "\"gnss_firmware\": \"';system(\\\"id\\\")#\""), "GNSS firmware escaped in JSON");

	/* A scenario run: the boot events carry the firmware into the run page. */
	char page[PATH_MAX + 16], junit[PATH_MAX + 16];
	snprintf(page, sizeof page, "%s/run.html", f->tmp);
	snprintf(junit, sizeof junit, "%s/junit.xml", f->tmp);
	char *run[] = { f->rig, "run", "scenarios/power-loss.yaml", "--rack", f->rackfile, "--slots", "1", "--db", f->db,
			"--html", page, "--junit", junit, NULL };
	rc = run_rig(run, out, 65536);
	cr_expect(rc == 0 || rc == 1, "rig run power-loss: exit %d: %s", rc, out);
	free(out);
	html = support_read_file(page);
	char *xml = support_read_file(junit);
	cr_assert(html && xml, "run page and JUnit written");
	cr_expect(strstr(html, "fw=9&quot;&lt;script&gt;alert(1)&lt;/script&gt;"), "the boot event's firmware escaped");
	cr_expect(!strstr(html, "<script") && !strstr(html, "<img"), "no live tag in the run page");
	cr_expect(!strstr(xml, "<script"), "no markup from the device in JUnit");
	cr_expect_eq(in_browser(page, "1", br, sizeof br), 0, "the run page in headless Chromium: %s", br);
	/* Whether a device's words can run in gnuplot is checked below
	 * (hostile_words_never_run_in_a_chart), with payloads that would leave a
	 * file behind if they ran. */
	free(html);
	free(xml);
	fx_stop(f);
	free(f);
}

/* gnuplot is a scripting language with system() and backticks, and every
 * chart's words (titles, legends, categories) can come from a device or a
 * store. Each payload here would create MARKER if gnuplot ran it, so the
 * check can fail: with chart_sanitize() passing text through, it does. */
Test(accept, hostile_words_never_run_in_a_chart)
{
	char dir[PATH_MAX], marker[PATH_MAX + 8];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(marker, sizeof marker, "%s/ran", dir);
	char p1[PATH_MAX + 64], p2[PATH_MAX + 64], p3[PATH_MAX + 64], p4[PATH_MAX + 64];
	/* closes the label's quote, runs a command, comments the rest out */
	snprintf(p1, sizeof p1, "\";system(\"touch %s\")#", marker);
	/* the same from a single-quoted context (hostile_strings' gnss firmware) */
	snprintf(p2, sizeof p2, "';system(\"touch %s\")#", marker);
	/* gnuplot's command substitution, which it expands inside double quotes */
	snprintf(p3, sizeof p3, "`touch %s`", marker);
	/* a new line: a second command of its own */
	snprintf(p4, sizeof p4, "x\"\nsystem(\"touch %s\")\n#", marker);
	const char *words[] = { p1, p2, p3, p4 };
	double x[] = { 0, 1 }, y[] = { 1, 2 };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		char *svg = NULL, err[256] = "";
		struct chart_series s = { .name = words[i], .x = x, .y = y, .n = 2 };
		struct chart_line l = { .title = words[i], .xlabel = words[i], .ylabel = words[i], .series = &s,
					.n_series = 1, .xtics = words, .n_xtics = 1 };
		int rc = chart_line_svg(&l, &svg, err, sizeof err);
		cr_expect_eq(rc, 0, "line chart with payload %zu: %s", i, err);
		free(svg);
		svg = NULL;
		const char *cats[] = { words[i], "FMB920" };
		struct chart_bar b = { .title = words[i], .ylabel = words[i], .categories = cats, .values = y, .n = 2 };
		rc = chart_bar_svg(&b, &svg, err, sizeof err);
		cr_expect_eq(rc, 0, "bar chart with payload %zu: %s", i, err);
		free(svg);
		struct stat st;
		cr_expect(stat(marker, &st) != 0, "payload %zu ran in gnuplot: %s", i, words[i]);
		unlink(marker);
	}
	support_rmtree(dir);
}
