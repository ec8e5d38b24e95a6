/*
 * test_determinism.c - the same seed on the embedded (virtual) rack gives
 * the same record: outcomes, messages, reason codes, measurements and
 * device events, compared field by field between two runs. Wall-clock
 * fields (started/finished, stamps, the ingest's connection events with
 * their ports) are left aside.
 *
 * The GNSS scenarios are the ones that flipped: gpsd reads the receiver in
 * wall time while the rack's clock jumps, so a reading used to land in a
 * rack second that depended on how busy the machine was (reacquisition
 * 5.1 s in one run, 6.1 s in the next; gnss_fix_stale found or not).
 * Left out: offline-flush and data-cap, whose drain rates and outage
 * moments are still stamped when the ingest reads a record (wall time), and
 * slot 8 (flaky_console), which loses characters drawn per byte sent, so
 * any answer whose text follows the uplink's state (a TCP connection made
 * in wall time) moves every later loss; see tests/README.md.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static char dir[4096];

static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(determinism, .init = make_dir, .fini = remove_dir, .timeout = 600);

/* The simulated rack's temp dir differs from run to run (mkdtemp): it is
 * where the rack is, not what it did. */
static void normalise(char *text)
{
	static const char tag[] = "trackrig-rack-";
	for (char *p = strstr(text, tag); p; p = strstr(p + 1, tag))
		for (size_t i = sizeof tag - 1; p[i] && p[i] != '/'; i++)   /* PID-XXXXXX */
			p[i] = 'X';
	/* likewise the ingest's ephemeral port, told to the device as param 2005 */
	for (char *p = strstr(text, "2005:"); p; p = strstr(p + 1, "2005:"))
		for (char *d = p + 5; *d >= '0' && *d <= '9'; d++)
			*d = 'P';
}

/* One line per row of the record, without wall-clock fields. */
static const char *const dump_sql[] = {
	"SELECT 'result', slot, scenario, imei, vendor, model, outcome, marginal, message, reasons"
	" FROM results ORDER BY slot, scenario",
	"SELECT 'measure', r.slot, r.scenario, m.name, m.value, m.unit, m.low, m.high, m.outcome"
	" FROM measurements m JOIN results r ON r.id = m.result_id ORDER BY r.slot, r.scenario, m.id",
	"SELECT 'event', r.slot, r.scenario, e.source, e.kind, e.detail"
	" FROM events e JOIN results r ON r.id = e.result_id WHERE e.source <> 'ingest'"
	" ORDER BY r.slot, r.scenario, e.id",
	"SELECT 'step', slot, scenario, idx, kind, text, outcome, message FROM steps ORDER BY slot, scenario, idx",
};

/* The record in store DB as text, one row a line (malloc'ed). */
static char *dump(const char *db, int *rows)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", db);
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap);
	cr_assert_not_null(out);
	*out = '\0';
	*rows = 0;
	for (size_t q = 0; q < sizeof dump_sql / sizeof dump_sql[0]; q++) {
		sqlite3_stmt *st;
		cr_assert_eq(sqlite3_prepare_v2(h, dump_sql[q], -1, &st, NULL), SQLITE_OK, "%s: %s", dump_sql[q],
			     sqlite3_errmsg(h));
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const char *v = (const char *)sqlite3_column_text(st, c);
				size_t need = strlen(v ? v : "NULL") + 3;
				if (len + need + 1 > cap) {
					cap *= 2;
					out = realloc(out, cap);
					cr_assert_not_null(out);
				}
				len += (size_t)sprintf(out + len, "%s%s", c ? " | " : "", v ? v : "NULL");
			}
			out[len++] = '\n';
			out[len] = '\0';
			(*rows)++;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	normalise(out);
	return out;
}

/* Line N (0-based) of TEXT into BUF. */
static const char *line_of(const char *text, int n, char *buf, size_t len)
{
	for (; n > 0 && text; n--) {
		text = strchr(text, '\n');
		text = text ? text + 1 : NULL;
	}
	snprintf(buf, len, "%.*s", text ? (int)strcspn(text, "\n") : 0, text ? text : "");
	return buf;
}

static void run_once(const char *db, const char *log)
{
	char rig[4096];
	support_bin("rig", rig, sizeof rig);
	char *argv[] = { rig, "run", "gnss-outage", "ttff", "power-loss", "--seed", "7", "--slots", "1-7", "--db",
			 (char *)db, NULL };
	int rc = support_run_logged(argv, log, 500);
	char *out = support_read_file(log);
	cr_assert(rc == 0 || rc == 1, "rig run: exit %d:\n%s", rc, out ? out : "");
	free(out);
}

Test(determinism, same_seed_same_record)
{
	char a[4200], b[4200], la[4200], lb[4200];
	snprintf(a, sizeof a, "%s/a.db", dir);
	snprintf(b, sizeof b, "%s/b.db", dir);
	snprintf(la, sizeof la, "%s/a.log", dir);
	snprintf(lb, sizeof lb, "%s/b.log", dir);
	run_once(a, la);
	run_once(b, lb);
	int na, nb;
	char *da = dump(a, &na), *db = dump(b, &nb);
	cr_assert_gt(na, 100, "a record worth comparing: %d rows", na);
	cr_expect(strstr(da, "reacquisition") && strstr(da, "ttff_cold"), "the GNSS figures are in the record");
	int lines = na > nb ? na : nb;
	for (int i = 0; i < lines; i++) {
		char ra[2048], rb[2048];
		line_of(da, i, ra, sizeof ra);
		line_of(db, i, rb, sizeof rb);
		cr_assert_str_eq(ra, rb, "seed 7, two runs, row %d differs:\n  first:  %s\n  second: %s", i, ra, rb);
	}
	cr_expect_eq(na, nb);
	free(da);
	free(db);
}
