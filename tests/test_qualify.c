/*
 * test_qualify.c - `rig qualify` on a small mixed virtual rack, two units of
 * each model: the reference (Teltonika FMB920), flush_drops (Acme AT-400,
 * loses records while flushing) and no_reset_reason (Acme AT-300, newest
 * first, transmits at 130 mA where the reference draws 120 mA), and one
 * ota_no_rollback (Acme FMB920, its bootloader never rolls back).
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qualify.h"
#include "store.h"
#include "support.h"

static int run_long(char *const argv[], char *out, size_t outlen)
{
	char log[PATH_MAX];
	snprintf(log, sizeof log, "/tmp/qual-run-%d.log", (int)getpid());
	int code = support_run_logged(argv, log, 300); /* a never-ending run still ends */
	char *text = support_read_file(log);
	snprintf(out, outlen, "%s", text ? text : "");
	if (text)
		fprintf(stderr, "%s", text);
	free(text);
	unlink(log);
	return code;
}

/* The text of cell COL (0-based) in the comparison row of MODEL, or "". */
static const char *cell(const char *html, const char *model, int col, char *out, size_t len)
{
	*out = '\0';
	const char *t = strstr(html, "id=\"comparison\"");
	char pat[128];
	snprintf(pat, sizeof pat, "<td>%s</td>", model);
	const char *name = t ? strstr(t, pat) : NULL;
	if (!name)
		return out;
	const char *row = name;
	while (row > t && strncmp(row, "<tr", 3))
		row--;
	const char *c = row;
	for (int i = 0; i <= col && c; i++)
		if ((c = strstr(c + 1, "<td>")) && i == col) {
			const char *end = strstr(c, "</td>");
			snprintf(out, len, "%.*s", end ? (int)(end - c - 4) : 0, c + 4);
		}
	return out;
}

/* Columns of the comparison table (reports/qualify_page.c). */
enum { COL_TX = 6, COL_FLUSH = 7, COL_TTFF = 10, COL_REACQ = 11, COL_ROLLBACK = 12, COL_ROLLBACK_S = 13, COL_DEFECTS = 14,
       COL_RIG_FAULTS = 16 };

Test(qualify, mixed_rack_compares_models_ranks_and_charts)
{
	struct simrack_proc rack;
	char key[PATH_MAX];
	const char *imgs = getenv("TRACKRIG_IMAGES");
	snprintf(key, sizeof key, "%s/vendor.pub.pem", imgs && *imgs ? imgs : "build/fixtures/fw");
	const char *const extra[] = { "--virtual", "--profiles",
				      "reference,flush_drops,no_reset_reason,reference,flush_drops,no_reset_reason,"
				      "ota_no_rollback",
				      "--vendor-key", key, NULL };
	cr_assert_eq(simrack_start_args(&rack, 7, 3, extra), 0);
	char tmp[PATH_MAX], rackfile[PATH_MAX], rig[PATH_MAX], db[PATH_MAX + 8], html[PATH_MAX + 16];
	cr_assert_eq(support_tmpdir(tmp, sizeof tmp), 0);
	simrack_rackfile(&rack, rackfile, sizeof rackfile);
	support_bin("rig", rig, sizeof rig);
	snprintf(db, sizeof db, "%s/t.db", tmp);
	snprintf(html, sizeof html, "%s/qualify.html", tmp);
	char *argv[] = { rig, "qualify", "--rack", rackfile, "--db", db, "--html", html, NULL };
	char *out = calloc(1, 1 << 20);
	int rc = run_long(argv, out, 1 << 20);
	cr_expect_eq(rc, 1, "a model with defects: exit 1, got %d", rc);
	cr_expect(strstr(out, "ranking"), "prints a ranking");
	cr_expect(strstr(out, "Teltonika FMB920"), "the reference model in the table");
	cr_expect(strstr(out, "Acme AT-400"), "the defective model in the table");
	char *h = support_read_file(html);
	free(out);
	cr_assert(h, "HTML written");
	cr_expect(strstr(h, "id=\"comparison\""), "comparison table");
	cr_expect(strstr(h, "id=\"ranking\""), "ranking");
	cr_expect(strstr(h, "<svg"), "charts embedded");
	const char *rank = strstr(h, "id=\"ranking\"");
	cr_assert(rank);
	const char *ref = strstr(rank, "Teltonika FMB920"), *bad = strstr(rank, "Acme AT-400");
	cr_expect(ref && bad && ref < bad, "the reference model ranks above the defective one");
	/* Transmit current, sampled while backlogs went out: each model's own draw. */
	char c[64];
	cr_expect_str_eq(cell(h, "Teltonika FMB920", COL_TX, c, sizeof c), "63",
			 "reference transmits at 63 mA (the FMB920's published rms with GPRS)");
	cr_expect_str_eq(cell(h, "Acme AT-300", COL_TX, c, sizeof c), "130", "AT-300 transmits at 130 mA");
	cr_expect_str_eq(cell(h, "Acme AT-400", COL_FLUSH, c, sizeof c), "0 %", "AT-400's flush loses records");
	/* Every agent model updates with its own build: all refuse or roll
	 * back bad ones. A Teltonika unit takes no update from a rig: its
	 * update scenarios are skipped, so its rollback is not measured (never
	 * a rate made up from nothing). */
	const char *models[] = { "Teltonika FMB920", "Acme AT-300", "Acme AT-400" };
	for (int i = 0; i < 3; i++) {
		if (i == 0) {
			cr_expect_str_eq(cell(h, models[i], COL_ROLLBACK, c, sizeof c), "not measured", "%s rollback", models[i]);
			cr_expect_str_eq(cell(h, models[i], COL_ROLLBACK_S, c, sizeof c), "not measured", "%s", models[i]);
		} else {
			cr_expect_str_eq(cell(h, models[i], COL_ROLLBACK, c, sizeof c), "100 %", "%s rollback pass rate",
					 models[i]);
			double rb = atof(cell(h, models[i], COL_ROLLBACK_S, c, sizeof c));
			cr_expect(rb > 0 && rb < 900, "%s rollback time %s", models[i], c);
		}
		double ttff = atof(cell(h, models[i], COL_TTFF, c, sizeof c));
		cr_expect(ttff >= 25 && ttff <= 40, "%s cold TTFF %s (simulated: 30 s)", models[i], c);
		double re = atof(cell(h, models[i], COL_REACQ, c, sizeof c));
		cr_expect(re > 0 && re < 15, "%s reacquisition %s (simulated: 1 s FMB920, 5 s Acme)", models[i], c);
	}
	cr_expect_str_eq(cell(h, "Acme FMB920", COL_ROLLBACK, c, sizeof c), "0 %",
			 "a bootloader that never rolls back fails the rollback comparison");
	const char *def = strstr(h, "id=\"defects\"");
	cr_expect(def && strstr(def, "offline-flush"), "defects with their evidence (offline-flush failed)");
	/* In headless Chromium (tests/browser/check-html): loads, charts in the DOM, no script. */
	char *chk[] = { "/bin/sh", "tests/browser/check-html", "--min-svg", "8", html, NULL };
	char br[4096] = "";
	cr_expect_eq(support_run(chk, br, sizeof br), 0, "the qualify page in headless Chromium: %s", br);
	free(h);
	simrack_stop(&rack);
	support_rmtree(tmp);
}

/* Rig faults on the reference model (the image server missing: every
 * ota-rollback an ERROR; a stop) are no defects of it: its rates stay
 * 100 %, it has no defects, and the faults show in their own column and
 * table. A model that failed keeps its defect. */
Test(qualify, rig_faults_on_the_reference_are_not_its_defects)
{
	char tmp[PATH_MAX], db[PATH_MAX + 8], html[PATH_MAX + 16], err[512];
	cr_assert_eq(support_tmpdir(tmp, sizeof tmp), 0);
	snprintf(db, sizeof db, "%s/q.db", tmp);
	snprintf(html, sizeof html, "%s/q.html", tmp);
	store *s;
	cr_assert_eq(store_open(db, &s, err, sizeof err), 0, "%s", err);
	struct store_run r = { .command = "qualify", .operator_ = "ci", .seed = 1 };
	int64_t run = store_run_begin(s, &r);
	cr_assert_gt(run, 0);
	const struct { const char *slot, *model, *scenario, *outcome, *message; } rows[] = {
		{ "1", "FMB920", "offline-flush", "pass", NULL },
		{ "1", "FMB920", "ota-rollback", "error", "the scenario updates firmware and the rig's image server did not start" },
		{ "2", "FMB920", "offline-flush", "pass", NULL },
		{ "2", "FMB920", "ota-rollback", "error", "the scenario updates firmware and the rig's image server did not start" },
		{ "3", "FMB920", "offline-flush", "aborted", "stopped during step 4" },
		{ "3", "FMB920", "ota-rollback", "pass", NULL },
		{ "4", "AT-400", "offline-flush", "fail", "backlog incomplete" },
		{ "4", "AT-400", "ota-rollback", "pass", NULL },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct store_result res = { .run_id = run, .slot = rows[i].slot, .scenario = rows[i].scenario,
					    .vendor = !strcmp(rows[i].model, "FMB920") ? "Teltonika" : "Acme",
					    .model = rows[i].model, .outcome = rows[i].outcome, .message = rows[i].message,
					    .started_at = "2026-01-01T00:00:00.000Z", .finished_at = "2026-01-01T01:00:00.000Z" };
		cr_assert_gt(store_result_add(s, &res), 0, "%s", store_error(s));
	}
	cr_assert_eq(store_run_end(s, run, "error"), 0);
	struct qualify_summary *q = calloc(1, sizeof *q);
	cr_assert_eq(qualify_compute(s, run, 50, q, err, sizeof err), 0, "%s", err);
	const struct qualify_model *ref = NULL, *bad = NULL;
	for (int i = 0; i < q->n; i++) {
		if (!strcmp(q->m[i].name, "Teltonika FMB920"))
			ref = &q->m[i];
		if (!strcmp(q->m[i].name, "Acme AT-400"))
			bad = &q->m[i];
	}
	cr_assert(ref && bad);
	cr_expect_eq(ref->defects, 0, "rig faults are no defects of the reference");
	cr_expect_eq(ref->rig_faults, 3);
	cr_expect_eq(ref->verdicts, 3);
	cr_expect_eq(ref->flush_pass_rate, 1.0, "flush rate of device verdicts only: %g", ref->flush_pass_rate);
	cr_expect_eq(ref->rollback_pass_rate, 1.0, "rollback rate of device verdicts only: %g", ref->rollback_pass_rate);
	cr_expect(strstr(ref->reasons, "no defects") && strstr(ref->reasons, "3 rig faults"), "%s", ref->reasons);
	cr_expect_eq(bad->defects, 1);
	cr_expect_eq(bad->rig_faults, 0);
	cr_assert_eq(report_html_qualify(s, q, html, err, sizeof err), 0, "%s", err);
	char *h = support_read_file(html);
	cr_assert(h);
	char c[64];
	cr_expect_str_eq(cell(h, "Teltonika FMB920", COL_FLUSH, c, sizeof c), "100 %");
	cr_expect_str_eq(cell(h, "Teltonika FMB920", COL_DEFECTS, c, sizeof c), "0");
	cr_expect_str_eq(cell(h, "Teltonika FMB920", COL_RIG_FAULTS, c, sizeof c), "3");
	const char *def = strstr(h, "id=\"defects\""), *rig = strstr(h, "id=\"rig-faults\"");
	cr_assert(def && rig && def < rig);
	char *between = strndup(def, (size_t)(rig - def));
	cr_expect(!strstr(between, "did not start") && strstr(between, "backlog incomplete"), "defects: device verdicts only");
	free(between);
	cr_expect(strstr(rig, "image server did not start") && strstr(rig, "stopped during step 4"), "rig faults listed apart");
	free(h);
	free(q);
	store_close(s);
	support_rmtree(tmp);
}
