/* junit.c - JUnit XML of a run, from the results store (see report.h). */
#include "report.h"

#include "html.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* XML text or attribute value. HTML's escaper serves: it writes only
 * references XML 1.0 knows (&#39; included) and drops the control bytes XML
 * does not allow at all. One escaper means one place to get it right. */
static void xml(FILE *f, const char *s)
{
	html_text(f, s);
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "junit: reading the store: %s", sqlite3_errmsg(db));
	return -1;
}

static void properties(FILE *f, sqlite3 *db, int64_t result_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT name, value, unit, low, high, outcome FROM measurements"
			       " WHERE result_id = ?1 ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, result_id);
	bool any = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!any)
			fputs("      <properties>\n", f);
		any = true;
		char value[160];
		snprintf(value, sizeof value, "%.6g %s", sqlite3_column_double(st, 1), col(st, 2));
		if (sqlite3_column_type(st, 3) != SQLITE_NULL || sqlite3_column_type(st, 4) != SQLITE_NULL) {
			size_t n = strlen(value);
			snprintf(value + n, sizeof value - n, " (limits %s..%s, %s)",
				 sqlite3_column_type(st, 3) == SQLITE_NULL ? "" : col(st, 3),
				 sqlite3_column_type(st, 4) == SQLITE_NULL ? "" : col(st, 4), col(st, 5));
		}
		fputs("        <property name=\"", f);
		xml(f, col(st, 0));
		fputs("\" value=\"", f);
		xml(f, value);
		fputs("\"/>\n", f);
	}
	if (any)
		fputs("      </properties>\n", f);
	sqlite3_finalize(st);
}

int report_junit(store *s, int64_t run_id, const char *path, char *err, size_t errlen)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *suites, *cases;
	if (prep(db, "SELECT scenario, count(*), sum(outcome IN ('fail','timeout')), sum(outcome = 'error'),"
		 " sum(outcome IN ('aborted','skipped')), min(started_at) FROM results WHERE run_id = ?1"
		 " GROUP BY scenario ORDER BY min(id)", &suites, err, errlen))
		return -1;
	if (prep(db, "SELECT id, slot, imei, vendor, model, outcome, marginal, message, reasons, started_at,"
		 " finished_at FROM results WHERE run_id = ?1 AND scenario = ?2 ORDER BY CAST(slot AS INTEGER), id",
		 &cases, err, errlen)) {
		sqlite3_finalize(suites);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "junit: %s: %s", path, strerror(errno));
		sqlite3_finalize(suites);
		sqlite3_finalize(cases);
		return -1;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"trackrig run %lld\">\n",
		(long long)run_id);
	sqlite3_bind_int64(suites, 1, run_id);
	while (sqlite3_step(suites) == SQLITE_ROW) {
		const char *scenario = col(suites, 0);
		fputs("  <testsuite name=\"", f);
		xml(f, scenario);
		fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" timestamp=\"",
			sqlite3_column_int(suites, 1), sqlite3_column_int(suites, 2), sqlite3_column_int(suites, 3),
			sqlite3_column_int(suites, 4));
		xml(f, col(suites, 5));
		fputs("\">\n", f);
		sqlite3_reset(cases);
		sqlite3_bind_int64(cases, 1, run_id);
		sqlite3_bind_text(cases, 2, scenario, -1, SQLITE_TRANSIENT);
		while (sqlite3_step(cases) == SQLITE_ROW) {
			/* "slot 3: Teltonika FMB920 352094087230394" reads well on a CI page. */
			char name[256];
			snprintf(name, sizeof name, "slot %s: %s %s %s", col(cases, 1), col(cases, 3), col(cases, 4),
				 col(cases, 2));
			fputs("    <testcase classname=\"", f);
			xml(f, scenario);
			fputs("\" name=\"", f);
			xml(f, name);
			fputs("\">\n", f);
			properties(f, db, sqlite3_column_int64(cases, 0));
			const char *outcome = col(cases, 5);
			if (!strcmp(outcome, "fail") || !strcmp(outcome, "error") || !strcmp(outcome, "timeout")) {
				/* A timeout is the device's (it never got through its
				 * scenario): a failure; an error is the rig's. */
				const char *tag = strcmp(outcome, "error") ? "failure" : "error";
				fprintf(f, "      <%s type=\"%s\" message=\"", tag, outcome);
				xml(f, col(cases, 7));
				fputs("\">", f);
				xml(f, col(cases, 7));
				if (*col(cases, 8)) {
					fputs("\nreason codes: ", f);
					xml(f, col(cases, 8));
				}
				fprintf(f, "</%s>\n", tag);
			} else if (!strcmp(outcome, "aborted") || !strcmp(outcome, "skipped")) {
				/* Not run to the end: a stop, or a slot in quarantine
				 * (its reason in the message). */
				fprintf(f, "      <skipped message=\"%s: ", outcome);
				xml(f, col(cases, 7));
				fputs("\"/>\n", f);
			}
			if (sqlite3_column_int(cases, 6))
				fputs("      <system-out>marginal: a measurement sat near its limit</system-out>\n", f);
			fputs("    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	sqlite3_finalize(suites);
	sqlite3_finalize(cases);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "junit: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
