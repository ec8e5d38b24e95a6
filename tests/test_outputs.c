/*
 * test_outputs.c - output paths checked before anything runs (issue 15
 * item 7), and `rig audit` narrowed by slot and run.
 */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "store.h"
#include "support.h"

static char dir[4096];

static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(outputs, .init = make_dir, .fini = remove_dir, .timeout = 120);

static char *rig(void)
{
	static char buf[4096];
	return (char *)support_bin("rig", buf, sizeof buf);
}

static char *path_in(const char *name)
{
	static char bufs[4][4200];
	static int k;
	char *b = bufs[k++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
	return b;
}

/* Runs recorded in the store at PATH; 0 when there is no store. */
static int count_runs(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	sqlite3 *db;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *q;
	int n = -1;
	if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs", -1, &q, NULL) == SQLITE_OK) {
		n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
	return n;
}

Test(outputs, helper_names_the_path_and_why)
{
	char err[2048];
	cr_assert_eq(cli_output_writable(path_in("new.xml"), err, sizeof err), 0, "%s", err);
	cr_assert_eq(cli_output_writable(path_in("missing/x.xml"), err, sizeof err), -1);
	cr_assert(strstr(err, "missing/x.xml") && strstr(err, "does not exist"), "%s", err);
	cr_assert_eq(cli_output_writable(dir, err, sizeof err), -1);
	cr_assert(strstr(err, dir) && strstr(err, "is a directory"), "%s", err);
	/* Checked, not created. */
	struct stat st;
	cr_assert_neq(stat(path_in("new.xml"), &st), 0, "the check created the file");
}

/* Before: the whole run, then exit 3, and stdout claiming JUnit written. */
Test(outputs, run_with_junit_in_a_missing_folder_exits_2_before_any_run)
{
	static char out[65536];
	char *db = path_in("r.db");
	char *argv[] = { rig(), "run", "power-loss", "--junit", path_in("missing/x.xml"), "--db", db, NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 2, "exit %d:\n%s", rc, out);
	cr_assert(strstr(out, "--junit") && strstr(out, "missing/x.xml") && strstr(out, "does not exist"), "%s", out);
	cr_assert_eq(count_runs(db), 0, "a run was recorded:\n%s", out);
}

Test(outputs, every_command_checks_its_report_paths_first)
{
	static char out[65536];
	char db[4200]; /* path_in's buffers rotate: this one is used to the end */
	snprintf(db, sizeof db, "%s", path_in("r.db"));
	char *night[] = { rig(), "nightly", "--trends", path_in("missing/t.html"), "--db", db, NULL };
	cr_assert_eq(support_run(night, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "--trends") && strstr(out, "missing/t.html"), "%s", out);
	char *html_dir[] = { rig(), "run", "power-loss", "--html", dir, "--db", db, NULL };
	cr_assert_eq(support_run(html_dir, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "is a directory"), "%s", out);
	char *qual[] = { rig(), "qualify", "--html", path_in("missing/q.html"), "--db", db, NULL };
	cr_assert_eq(support_run(qual, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "missing/q.html"), "%s", out);
	char *acc[] = { rig(), "accept", "--port", "/dev/null", "--html", path_in("missing/a.html"), "--db", db, NULL };
	cr_assert_eq(support_run(acc, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "missing/a.html"), "%s", out);
	char *roll[] = { rig(), "rollout", "report", "--html", path_in("missing/r.html"), "--db", db, NULL };
	cr_assert_eq(support_run(roll, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "missing/r.html"), "%s", out);
	cr_assert_eq(count_runs(db), 0, "a run was recorded:\n%s", out);
}

static void audit(store *s, int64_t run, const char *slot, const char *command)
{
	struct store_audit a = { .run_id = run, .operator_ = "qa", .slot = slot, .imei = "356307042441013",
				 .command = command, .result = "ok" };
	cr_assert_gt(store_audit_add(s, &a), 0, "%s", store_error(s));
}

Test(outputs, audit_narrows_by_slot_and_by_run)
{
	char *db = path_in("a.db");
	char err[512];
	store *s;
	cr_assert_eq(store_open(db, &s, err, sizeof err), 0, "%s", err);
	struct store_run r = { .command = "run power-loss", .operator_ = "qa" };
	int64_t r1 = store_run_begin(s, &r), r2 = store_run_begin(s, &r);
	cr_assert(r1 > 0 && r2 > 0, "%s", store_error(s));
	audit(s, r1, "1", "cmd-r1-s1");
	audit(s, r1, "2", "cmd-r1-s2");
	audit(s, r2, "2", "cmd-r2-s2");
	audit(s, 0, "12", "cmd-none-s12");
	store_close(s);

	static char out[65536];
	char run[32];
	char *slot2[] = { rig(), "audit", "--db", db, "--slot", "2", NULL };
	cr_assert_eq(support_run(slot2, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "cmd-r1-s2") && strstr(out, "cmd-r2-s2"), "%s", out);
	cr_assert(!strstr(out, "cmd-r1-s1") && !strstr(out, "cmd-none-s12"), "slot 2 only:\n%s", out);

	snprintf(run, sizeof run, "%lld", (long long)r1);
	char *run1[] = { rig(), "audit", "--db", db, "--run", run, "--json", NULL };
	cr_assert_eq(support_run(run1, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "cmd-r1-s1") && strstr(out, "cmd-r1-s2"), "%s", out);
	cr_assert(!strstr(out, "cmd-r2-s2") && !strstr(out, "cmd-none-s12"), "run %s only:\n%s", run, out);

	char *both[] = { rig(), "audit", "--db", db, "--run", run, "--slot", "1", NULL };
	cr_assert_eq(support_run(both, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "cmd-r1-s1") && !strstr(out, "cmd-r1-s2"), "%s", out);

	char *none[] = { rig(), "audit", "--db", db, "--slot", "7", NULL };
	cr_assert_eq(support_run(none, out, sizeof out), 0, "%s", out);
	cr_assert(!strstr(out, "cmd-") && strstr(out, "for slot 7"), "%s", out);

	char *bad[] = { rig(), "audit", "--db", db, "--run", "x", NULL };
	cr_assert_eq(support_run(bad, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "--run 'x'"), "%s", out);
}
