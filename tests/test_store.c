/*
 * test_store.c - the results store (rig/store.c) against a real SQLite file.
 *
 * Criterion runs each test in its own process, several at once, so each test
 * gets its own directory from mkdtemp() and removes it afterwards. What the
 * store wrote is checked through a second, raw SQLite connection where that
 * matters: reading back through the store alone would let a symmetric bug
 * (say, a column swapped on both insert and select) pass.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_health.h"
#include "store_records.h"
#include "store_rollout.h"

static char dir[256];
static char db_path[300];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/trackrig-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
	snprintf(db_path, sizeof db_path, "%s/trackrig.db", dir);
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static store *open_ok(const char *path)
{
	store *s = NULL;
	char err[512];
	cr_assert_eq(store_open(path, &s, err, sizeof err), 0, "store_open: %s", err);
	cr_assert_not_null(s);
	return s;
}

/* A raw connection of its own, as the sqlite3 shell or another process would
 * have. */
static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		     SQLITE_OK, "raw open %s", path);
	return db;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK, "raw exec %s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "prepare %s: %s", sql,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no row from %s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	int64_t v = db_int(db, sql);
	sqlite3_close(db);
	return v;
}

/* The text of the first column of the first row, malloc'ed; NULL for SQL NULL. */
static char *db_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "prepare %s: %s", sql,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no row from %s", sql);
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static char *raw_text(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *v = db_text(db, sql);
	sqlite3_close(db);
	return v;
}

static void assert_text(char *got, const char *want, const char *what)
{
	cr_assert_not_null(got, "%s is NULL", what);
	cr_assert_str_eq(got, want, "%s", what);
	free(got);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "create %s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	cr_assert_not_null(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Opens PATH expecting a refusal; returns the message (static). */
static const char *open_refused(const char *path)
{
	static char err[512];
	store *s = (store *)1;
	cr_assert_eq(store_open(path, &s, err, sizeof err), -1, "store_open accepted %s", path);
	cr_assert_null(s, "store_open failed but left *out set");
	cr_assert_not_null(strstr(err, path), "error does not name the file: %s", err);
	return err;
}

static bool is_store_time(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!t || strlen(t) != sizeof pat - 1)
		return false;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
			return false;
	return true;
}

static int64_t begin_run(store *s)
{
	struct store_run r = { .command = "run power-loss", .station = "bench-2",
			       .rack = "racks/bench2.yaml", .operator_ = "qa", .seed = 42 };
	int64_t id = store_run_begin(s, &r);
	cr_assert_gt(id, 0, "run begin: %s", store_error(s));
	return id;
}

/* Collects audit rows (copies, since a row lives only during the callback). */
struct collected {
	int n, stop_after;
	char at[16][32], imei[16][32], command[16][64];
};

static int collect(void *ctx, const struct store_audit_row *row)
{
	struct collected *c = ctx;
	cr_assert_lt(c->n, 16);
	snprintf(c->at[c->n], sizeof c->at[0], "%s", row->at);
	snprintf(c->imei[c->n], sizeof c->imei[0], "%s", row->imei ? row->imei : "(null)");
	snprintf(c->command[c->n], sizeof c->command[0], "%s", row->command);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static int64_t audit(store *s, const char *imei, const char *command)
{
	struct store_audit a = { .operator_ = "qa", .station = "bench-2", .slot = "3",
				 .port = "/dev/ttyUSB3", .imei = imei, .command = command,
				 .result = "ok" };
	int64_t id = store_audit_add(s, &a);
	cr_assert_gt(id, 0, "audit add: %s", store_error(s));
	return id;
}

/* ---- opening, schema, refusals ---- */

Test(store, fresh_store_is_latest_wal_with_foreign_keys)
{
	store *s = open_ok(db_path);
	char *mode;

	cr_assert_geq(store_schema_latest(), 1);
	cr_assert_eq(store_schema_version(s), store_schema_latest());
	cr_assert_eq(db_int(store_db(s), "PRAGMA foreign_keys"), 1);
	cr_assert_eq(db_int(store_db(s), "PRAGMA synchronous"), 1, "synchronous is not NORMAL");
	cr_assert_eq(db_int(store_db(s), "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
				      " AND name IN ('runs','devices','steps','measurements',"
				      "'events','audit')"), 6);
	store_close(s);

	/* What another process finds in the file, not what this handle says. */
	cr_assert_eq(raw_int(db_path, "PRAGMA user_version"), store_schema_latest());
	mode = raw_text(db_path, "PRAGMA journal_mode");
	assert_text(mode, "wal", "journal_mode");
}

Test(store, reopen_is_idempotent)
{
	store *s = open_ok(db_path);
	int64_t objects;

	audit(s, "352094087230394", "getver");
	objects = db_int(store_db(s), "SELECT count(*) FROM sqlite_schema");
	store_close(s);

	/* A second open that re-ran migration 1 would fail on CREATE TABLE. */
	for (int i = 0; i < 3; i++) {
		s = open_ok(db_path);
		cr_assert_eq(store_schema_version(s), store_schema_latest());
		cr_assert_eq(db_int(store_db(s), "SELECT count(*) FROM sqlite_schema"), objects);
		cr_assert_eq(db_int(store_db(s), "SELECT count(*) FROM audit"), 1);
		store_close(s);
	}
}

Test(store, empty_file_becomes_a_store)
{
	write_file(db_path, "", 0);
	store_close(open_ok(db_path));
	cr_assert_eq(raw_int(db_path, "PRAGMA user_version"), store_schema_latest());
}

Test(store, newer_schema_is_refused_and_left_untouched)
{
	char sql[64];
	size_t len_before, len_after;
	char *before, *after;
	const char *err;

	store_close(open_ok(db_path));
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest() + 1);
	raw_exec(db_path, sql);
	before = read_file(db_path, &len_before);

	err = open_refused(db_path);
	cr_assert_not_null(strstr(err, "newer rig"), "unclear refusal: %s", err);

	after = read_file(db_path, &len_after);
	cr_assert_eq(len_after, len_before, "file size changed");
	cr_assert_eq(memcmp(before, after, len_before), 0, "file content changed");
	cr_assert_eq(raw_int(db_path, "PRAGMA user_version"), store_schema_latest() + 1);
	free(before);
	free(after);
}

Test(store, non_database_is_refused_and_left_untouched)
{
	char text[2048];
	size_t len;
	char *after;
	const char *err;
	char wal[400];

	/* A rack file passed as --db by mistake: longer than a SQLite header. */
	for (size_t i = 0; i + 1 < sizeof text; i++)
		text[i] = "slots:\n  - port: /dev/ttyUSB0\n"[i % 30];
	text[sizeof text - 1] = '\n';
	write_file(db_path, text, sizeof text);

	err = open_refused(db_path);
	cr_assert_not_null(strstr(err, "not a SQLite database"), "unclear refusal: %s", err);

	after = read_file(db_path, &len);
	cr_assert_eq(len, sizeof text);
	cr_assert_eq(memcmp(after, text, len), 0, "file content changed");
	snprintf(wal, sizeof wal, "%s-wal", db_path);
	cr_assert_not(exists(wal), "a WAL file was created beside it");
	free(after);
}

/* Decision: a SQLite file with user_version 0 that already holds tables is
 * somebody else's database (a typo in --db), not a store to build in. */
Test(store, someone_elses_database_is_refused_and_left_untouched)
{
	size_t len_before, len_after;
	char *before, *after;
	const char *err;

	raw_exec(db_path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
			  "INSERT INTO customers (name) VALUES ('ACME');");
	before = read_file(db_path, &len_before);

	err = open_refused(db_path);
	cr_assert_not_null(strstr(err, "not a trackrig results store"), "unclear refusal: %s", err);

	after = read_file(db_path, &len_after);
	cr_assert_eq(len_after, len_before);
	cr_assert_eq(memcmp(before, after, len_before), 0, "file content changed");
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'"), 0);
	free(before);
	free(after);
}

Test(store, foreign_application_id_is_refused)
{
	const char *err;

	raw_exec(db_path, "PRAGMA application_id = 1196444237"); /* 'GPKG', a GeoPackage */
	err = open_refused(db_path);
	cr_assert_not_null(strstr(err, "not a trackrig results store"), "unclear refusal: %s", err);
	cr_assert_eq(raw_int(db_path, "PRAGMA user_version"), 0);
}

Test(store, open_failure_names_the_path)
{
	char path[400];
	const char *err;

	snprintf(path, sizeof path, "%s/no-such-dir/trackrig.db", dir);
	err = open_refused(path);
	cr_assert_not_null(strstr(err, "unable to open"), "%s", err);
}

/* ---- rows ---- */

/* One column of one run, through SQL (malloc'ed, NULL for SQL NULL). */
static char *run_col(sqlite3 *db, int64_t id, const char *col)
{
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT %s FROM runs WHERE id = %lld", col, (long long)id);
	return db_text(db, sql);
}

static void assert_time(char *t, const char *what)
{
	cr_assert(is_store_time(t), "%s: %s", what, t ? t : "NULL");
	free(t);
}

Test(store, run_begin_and_end)
{
	store *s = open_ok(db_path);
	struct store_run r = { .command = "run power-loss", .station = "bench-2",
			       .rack = "racks/bench2.yaml", .operator_ = "qa",
			       .seed = UINT64_MAX - 1 };
	int64_t id = store_run_begin(s, &r);
	sqlite3 *db = store_db(s);

	cr_assert_gt(id, 0, "%s", store_error(s));
	assert_text(run_col(db, id, "command"), "run power-loss", "command");
	assert_text(run_col(db, id, "station"), "bench-2", "station");
	assert_text(run_col(db, id, "rack"), "racks/bench2.yaml", "rack");
	assert_text(run_col(db, id, "operator"), "qa", "operator");
	/* A seed above INT64_MAX comes back as the number the operator typed. */
	assert_text(run_col(db, id, "printf('%llu', seed)"), "18446744073709551614", "seed");
	assert_text(run_col(db, id, "rig_version"), TRACKRIG_VERSION, "rig_version");
	assert_time(run_col(db, id, "started_at"), "started_at");
	cr_assert_null(run_col(db, id, "finished_at"));
	cr_assert_null(run_col(db, id, "outcome"));

	cr_assert_eq(store_run_end(s, id, "fail"), 0, "%s", store_error(s));
	assert_text(run_col(db, id, "outcome"), "fail", "outcome");
	assert_time(run_col(db, id, "finished_at"), "finished_at");

	cr_assert_eq(store_run_end(s, id, "maybe"), -1, "an outcome outside the CHECK passed");
	cr_assert_not_null(strstr(store_error(s), "CHECK"), "%s", store_error(s));
	assert_text(run_col(db, id, "outcome"), "fail", "outcome after a refused end");
	cr_assert_eq(store_run_end(s, id + 100, "pass"), -1, "ending a missing run passed");
	cr_assert_not_null(strstr(store_error(s), "no run"), "%s", store_error(s));
	store_close(s);
}

Test(store, device_upsert_keeps_one_row_per_imei)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);
	struct store_device d = { .imei = "352094087230394", .iccid = "89370030000000000005",
				  .serial = "1101234567", .vendor = "teltonika",
				  .model = "FMB920", .hw_rev = "1.2", .firmware = "03.28.07" };
	struct store_device again = { .imei = "352094087230394", .firmware = "03.29.01" };
	struct store_device other = { .imei = "356307042441013" };
	int64_t id, id2, id3;

	id = store_device_seen(s, &d);
	cr_assert_gt(id, 0, "%s", store_error(s));
	/* Backdate it, so "updated" needs no clock and no sleep. */
	cr_assert_eq(sqlite3_exec(db, "UPDATE devices SET first_seen = '2000-01-01T00:00:00.000Z',"
				      " last_seen = '2000-01-01T00:00:00.000Z'", NULL, NULL, NULL),
		     SQLITE_OK);

	id2 = store_device_seen(s, &again);
	cr_assert_eq(id2, id, "the same IMEI got a new id");
	cr_assert_eq(db_int(db, "SELECT count(*) FROM devices"), 1);
	assert_text(db_text(db, "SELECT firmware FROM devices"), "03.29.01", "firmware");
	assert_text(db_text(db, "SELECT vendor FROM devices"), "teltonika", "vendor kept");
	assert_text(db_text(db, "SELECT iccid FROM devices"), "89370030000000000005", "iccid kept");
	assert_text(db_text(db, "SELECT first_seen FROM devices"), "2000-01-01T00:00:00.000Z",
		    "first_seen");
	{
		char *t = db_text(db, "SELECT last_seen FROM devices");
		cr_assert(is_store_time(t) && strcmp(t, "2000-01-01T00:00:00.000Z") > 0,
			  "last_seen not updated: %s", t ? t : "NULL");
		free(t);
	}

	id3 = store_device_seen(s, &other);
	cr_assert_gt(id3, 0, "%s", store_error(s));
	cr_assert_neq(id3, id);
	cr_assert_eq(db_int(db, "SELECT count(*) FROM devices"), 2);

	cr_assert_eq(store_device_seen(s, &(struct store_device){ .imei = NULL }), -1);
	cr_assert_eq(store_device_seen(s, &(struct store_device){ .imei = "" }), -1);
	cr_assert_not_null(strstr(store_error(s), "IMEI"), "%s", store_error(s));
	store_close(s);
}

Test(store, steps_and_measurements_with_nan_limits)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);
	int64_t run = begin_run(s), step, m1, m2;
	char sql[200];

	step = store_step_begin(s, run, "3", "power-loss", 2, "measure", "supply current");
	cr_assert_gt(step, 0, "%s", store_error(s));
	m1 = store_measurement_add(s, &(struct store_measurement){
		.run_id = run, .step_id = step, .slot = "3", .name = "sleep current",
		.value = 0.0123, .unit = "A", .low = NAN, .high = 0.02, .outcome = "pass" });
	cr_assert_gt(m1, 0, "%s", store_error(s));
	m2 = store_measurement_add(s, &(struct store_measurement){
		.run_id = run, .step_id = 0, .slot = "3", .name = "boot time",
		.value = 31.5, .unit = "s", .low = NAN, .high = NAN, .outcome = NULL });
	cr_assert_gt(m2, 0, "%s", store_error(s));
	cr_assert_eq(store_step_end(s, step, "pass", NULL), 0, "%s", store_error(s));

	snprintf(sql, sizeof sql, "SELECT typeof(low) || ',' || high || ',' || value || ',' ||"
		 " step_id FROM measurements WHERE id = %lld", (long long)m1);
	assert_text(db_text(db, sql), "null,0.02,0.0123,1", "m1 low,high,value,step");
	snprintf(sql, sizeof sql, "SELECT typeof(low) || ',' || typeof(high) || ',' ||"
		 " typeof(step_id) || ',' || typeof(outcome) FROM measurements WHERE id = %lld",
		 (long long)m2);
	assert_text(db_text(db, sql), "null,null,null,null", "m2 NULLs");

	snprintf(sql, sizeof sql, "SELECT run_id || ',' || slot || ',' || scenario || ',' ||"
		 " idx || ',' || kind || ',' || text || ',' || outcome || ',' ||"
		 " typeof(message) FROM steps WHERE id = %lld", (long long)step);
	assert_text(db_text(db, sql), "1,3,power-loss,2,measure,supply current,pass,null", "step");
	cr_assert_eq(store_step_end(s, step + 9, "pass", NULL), -1);
	cr_assert_eq(store_step_end(s, step, "skipped", NULL), -1, "bad step outcome passed");
	store_close(s);
}

Test(store, foreign_keys_are_enforced)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);
	int64_t run = begin_run(s);

	cr_assert_eq(store_measurement_add(s, &(struct store_measurement){
		.run_id = run + 1000, .name = "v", .value = 1, .low = NAN, .high = NAN }), -1,
		"measurement for a missing run accepted");
	cr_assert_not_null(strstr(store_error(s), "FOREIGN KEY"), "%s", store_error(s));
	cr_assert_eq(store_measurement_add(s, &(struct store_measurement){
		.run_id = run, .step_id = 77, .name = "v", .value = 1, .low = NAN, .high = NAN }),
		-1, "measurement for a missing step accepted");
	cr_assert_eq(store_step_begin(s, run + 1000, "1", "x", 0, "k", "t"), -1);
	cr_assert_eq(store_audit_add(s, &(struct store_audit){
		.run_id = run + 1000, .operator_ = "qa", .command = "c", .result = "ok" }), -1);
	cr_assert_eq(db_int(db, "SELECT (SELECT count(*) FROM measurements) +"
				" (SELECT count(*) FROM steps) + (SELECT count(*) FROM audit)"), 0);
	store_close(s);
}

Test(store, events_default_to_now_and_reject_bad_times)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);
	int64_t id;

	id = store_event_add(s, &(struct store_event){ .slot = "3", .imei = "352094087230394",
		.source = "console", .kind = "boot", .detail = "Reset:power_on" });
	cr_assert_gt(id, 0, "%s", store_error(s));
	{
		char *t = db_text(db, "SELECT at FROM events");
		cr_assert(is_store_time(t), "at %s", t ? t : "NULL");
		free(t);
	}
	cr_assert_eq(db_int(db, "SELECT run_id IS NULL FROM events"), 1);
	cr_assert_gt(store_event_add(s, &(struct store_event){ .at = "2026-11-26T08:35:05.123Z",
		.source = "supply", .kind = "power_off" }), 0, "%s", store_error(s));
	cr_assert_eq(store_event_add(s, &(struct store_event){ .at = "yesterday",
		.source = "supply", .kind = "power_off" }), -1, "unsortable time accepted");
	store_close(s);
}

/* ---- audit ---- */

struct got {
	int n;
	struct store_audit_row r;
	char buf[512];
};

static int keep_row(void *ctx, const struct store_audit_row *row)
{
	struct got *g = ctx;
	g->n++;
	g->r = *row;
	snprintf(g->buf, sizeof g->buf, "%s|%s|%s|%s|%s|%s|%s", row->operator_, row->station,
		 row->slot ? row->slot : "(null)", row->port, row->imei, row->command,
		 row->result);
	cr_assert(is_store_time(row->at), "at %s", row->at);
	return 0;
}

Test(store, audit_round_trips_every_field)
{
	store *s = open_ok(db_path);
	int64_t run = begin_run(s);
	struct store_audit a = { .run_id = run, .operator_ = "qa", .station = "bench-2",
				 .slot = NULL, .port = "/dev/ttyUSB3", .imei = "352094087230394",
				 .command = "setdigout 1", .result = "timeout after 2000 ms" };
	struct got g = { 0 };
	int64_t id = store_audit_add(s, &a);

	cr_assert_gt(id, 0, "%s", store_error(s));
	cr_assert_eq(store_audit_each(s, NULL, NULL, keep_row, &g), 1, "%s", store_error(s));
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.r.id, id);
	cr_assert_eq(g.r.run_id, run);
	cr_assert_str_eq(g.buf, "qa|bench-2|(null)|/dev/ttyUSB3|352094087230394|setdigout 1|"
				"timeout after 2000 ms");

	/* Outside a run, run_id reads back as 0, as it went in. */
	audit(s, "356307042441013", "getver");
	memset(&g, 0, sizeof g);
	cr_assert_eq(store_audit_each(s, "356307042441013", NULL, keep_row, &g), 1);
	cr_assert_eq(g.r.run_id, 0);
	store_close(s);
}

Test(store, audit_filters_by_imei_and_since_oldest_first)
{
	store *s = open_ok(db_path);
	struct collected c;

	/* Times chosen, not taken from the clock; inserted out of order. */
	cr_assert_eq(sqlite3_exec(store_db(s),
		"INSERT INTO audit (at, operator, imei, command, result) VALUES"
		" ('2026-11-26T09:15:00.000Z', 'qa', 'A', 'a3', 'ok'),"
		" ('2026-11-25T23:59:59.999Z', 'qa', 'A', 'a1', 'ok'),"
		" ('2026-11-26T08:00:00.000Z', 'qa', 'B', 'b2', 'ok'),"
		" ('2026-11-26T08:00:00.000Z', 'qa', 'A', 'a2', 'ok'),"
		" ('2026-11-26T07:59:59.999Z', 'qa', 'B', 'b1', 'ok'),"
		" ('2026-11-27T00:00:00.000Z', 'qa', NULL, 'n1', 'ok')",
		NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(store_db(s)));

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, NULL, NULL, collect, &c), 6);
	cr_assert_str_eq(c.command[0], "a1");
	cr_assert_str_eq(c.command[1], "b1");
	cr_assert_str_eq(c.command[2], "b2", "same time: insertion order");
	cr_assert_str_eq(c.command[3], "a2");
	cr_assert_str_eq(c.command[4], "a3");
	cr_assert_str_eq(c.command[5], "n1");

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, "A", NULL, collect, &c), 3);
	cr_assert_str_eq(c.command[0], "a1");
	cr_assert_str_eq(c.command[2], "a3");

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, NULL, "2026-11-26", collect, &c), 5);
	cr_assert_str_eq(c.command[0], "b1");

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, NULL, "2026-11-26T08:00", collect, &c), 4);
	cr_assert_str_eq(c.command[0], "b2");

	/* A trailing Z means the same instant, and must not skip 08:00:00. */
	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, "A", "2026-11-26T08:00Z", collect, &c), 2);
	cr_assert_str_eq(c.command[0], "a2");
	cr_assert_str_eq(c.command[1], "a3");

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, "B", "2026-11-26T08:00:00.001", collect, &c), 0);
	cr_assert_eq(c.n, 0);

	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, "nobody", NULL, collect, &c), 0);
	store_close(s);
}

Test(store, audit_walk_stops_when_the_callback_says_so)
{
	store *s = open_ok(db_path);
	struct collected c = { .stop_after = 2 };

	for (int i = 0; i < 5; i++)
		audit(s, "352094087230394", "getver");
	cr_assert_eq(store_audit_each(s, NULL, NULL, collect, &c), 2);
	cr_assert_eq(c.n, 2);
	/* The statement was reset: the next walk starts from the top. */
	memset(&c, 0, sizeof c);
	cr_assert_eq(store_audit_each(s, NULL, NULL, collect, &c), 5, "%s", store_error(s));
	store_close(s);
}

struct nested { store *s; int inner; int outer; };

static int walk_again(void *ctx, const struct store_audit_row *row)
{
	struct nested *n = ctx;
	(void)row;
	n->outer++;
	n->inner = store_audit_each(n->s, NULL, NULL, collect, &(struct collected){ 0 });
	return 0;
}

/* Without the guard the inner walk resets the outer one, which then starts
 * over forever: the timeout turns that hang into a failure (it is no timing
 * assertion; a passing run takes milliseconds). */
Test(store, audit_walk_from_its_own_callback_is_refused, .timeout = 60)
{
	store *s = open_ok(db_path);
	struct nested n = { .s = s };

	audit(s, "1", "a");
	audit(s, "1", "b");
	cr_assert_eq(store_audit_each(s, NULL, NULL, walk_again, &n), 2, "%s", store_error(s));
	cr_assert_eq(n.outer, 2);
	cr_assert_eq(n.inner, -1, "a nested walk on the same statement was allowed");
	store_close(s);
}

Test(store, audit_trail_is_append_only)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);

	audit(s, "352094087230394", "getver");
	cr_assert_neq(sqlite3_exec(db, "UPDATE audit SET result = 'forged'", NULL, NULL, NULL),
		      SQLITE_OK, "audit row updated");
	cr_assert_neq(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK,
		      "audit row deleted");
	assert_text(db_text(db, "SELECT result FROM audit"), "ok", "result");
	store_close(s);
}

/* ---- transactions, sharing ---- */

Test(store, transaction_rollback_discards_and_commit_keeps)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);

	cr_assert_eq(store_begin(s), 0, "%s", store_error(s));
	audit(s, "1", "discarded");
	cr_assert_eq(store_rollback(s), 0, "%s", store_error(s));
	cr_assert_eq(db_int(db, "SELECT count(*) FROM audit"), 0);

	cr_assert_eq(store_begin(s), 0, "%s", store_error(s));
	audit(s, "1", "kept");
	audit(s, "1", "kept too");
	cr_assert_eq(store_commit(s), 0, "%s", store_error(s));
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM audit"), 2);
	cr_assert_eq(store_commit(s), -1, "commit without a transaction passed");
	store_close(s);
}

static int count_rows(void *ctx, const struct store_audit_row *row)
{
	(void)row;
	++*(int *)ctx;
	return 0;
}

static int audit_count(store *s)
{
	int n = 0;
	int visited = store_audit_each(s, NULL, NULL, count_rows, &n);
	cr_assert_eq(visited, n, "%s", store_error(s));
	return n;
}

Test(store, two_handles_share_one_file)
{
	store *a = open_ok(db_path), *b = open_ok(db_path);
	char want[400];

	audit(a, "352094087230394", "from a");
	audit(b, "352094087230394", "from b");
	cr_assert_eq(audit_count(a), 2);
	cr_assert_eq(audit_count(b), 2);

	/* WAL: a reader is not blocked by an open write transaction, and does
	 * not see it until it commits. */
	cr_assert_eq(store_begin(a), 0, "%s", store_error(a));
	audit(a, "352094087230394", "pending");
	cr_assert_eq(audit_count(b), 2, "b saw an uncommitted row");

	/* A second writer meets the lock; with no wait it fails at once, and
	 * says where and what. */
	sqlite3_busy_timeout(store_db(b), 0);
	cr_assert_eq(store_audit_add(b, &(struct store_audit){ .operator_ = "qa",
		.command = "c", .result = "ok" }), -1, "b wrote past a's lock");
	snprintf(want, sizeof want, "%s: insert audit: database is locked", db_path);
	cr_assert_str_eq(store_error(b), want);

	cr_assert_eq(store_commit(a), 0, "%s", store_error(a));
	cr_assert_eq(audit_count(b), 3);
	audit(b, "352094087230394", "after");
	cr_assert_eq(audit_count(a), 4);
	store_close(a);
	store_close(b);
}

/* ---- hostile text ---- */

static const char *const hostile[] = {
	"O'Brien said \"hi\"",
	"'); DROP TABLE audit; --",
	"line one\nline two\r\nthree",
	"%s%n%x%p %%",
	"back\\slash \\' \\\"",
	"\x1b[31mred\x1b[0m\a\b\t\v\f",
	"\xc5\xbd" "algiris \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac",
	"",
	"trailing space ",
};

static int check_hostile(void *ctx, const struct store_audit_row *row)
{
	int *i = ctx;
	const char *want = hostile[*i];
	cr_assert_str_eq(row->operator_, want, "operator %d", *i);
	cr_assert_str_eq(row->station, want, "station %d", *i);
	cr_assert_str_eq(row->slot, want);
	cr_assert_str_eq(row->port, want);
	cr_assert_str_eq(row->imei, want);
	cr_assert_str_eq(row->command, want);
	cr_assert_str_eq(row->result, want);
	++*i;
	return 0;
}

Test(store, hostile_text_round_trips_unchanged)
{
	store *s = open_ok(db_path);
	sqlite3 *db = store_db(s);
	size_t n = sizeof hostile / sizeof hostile[0];
	char *big = malloc(100001);
	int seen = 0;
	sqlite3_stmt *st;

	cr_assert_not_null(big);
	for (size_t i = 0; i < 100000; i++)
		big[i] = "'\"\n;%\\"[i % 6];
	big[100000] = '\0';

	for (size_t i = 0; i < n; i++) {
		const char *h = hostile[i];
		struct store_audit a = { .operator_ = h, .station = h, .slot = h, .port = h,
					 .imei = h, .command = h, .result = h };
		int64_t run;
		cr_assert_gt(store_audit_add(s, &a), 0, "%s", store_error(s));
		run = store_run_begin(s, &(struct store_run){ .command = h, .station = h,
							      .rack = h, .operator_ = h });
		cr_assert_gt(run, 0, "%s", store_error(s));
		cr_assert_gt(store_step_begin(s, run, h, h, (int)i, h, h), 0, "%s", store_error(s));
		cr_assert_gt(store_event_add(s, &(struct store_event){ .slot = h, .imei = h,
			.source = h, .kind = h, .detail = h }), 0, "%s", store_error(s));
		cr_assert_gt(store_device_seen(s, &(struct store_device){ .imei = *h ? h : "empty",
			.iccid = h, .serial = h, .vendor = h, .model = h, .hw_rev = h,
			.firmware = h }), 0, "%s", store_error(s));
	}
	cr_assert_eq(store_audit_each(s, hostile[0], NULL, check_hostile, &seen), 1);
	seen = 0;
	cr_assert_eq(store_audit_each(s, NULL, NULL, check_hostile, &seen), (int)n,
		     "%s", store_error(s));
	cr_assert_eq(seen, (int)n);

	/* The other tables, through a raw query: every text column equals the
	 * string that went in. */
	cr_assert_eq(sqlite3_prepare_v2(db,
		"SELECT r.command, r.operator, r.rack, t.slot, t.scenario, t.kind, t.text,"
		"       e.slot, e.source, e.kind, e.detail, d.firmware, d.vendor"
		" FROM runs r JOIN steps t ON t.run_id = r.id JOIN events e ON e.id = r.id"
		" JOIN devices d ON d.id = r.id ORDER BY r.id", -1, &st, NULL), SQLITE_OK);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "row %zu missing", i);
		for (int c = 0; c < sqlite3_column_count(st); c++)
			cr_assert_str_eq((const char *)sqlite3_column_text(st, c), hostile[i],
					 "row %zu column %d", i, c);
	}
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);

	/* Long text, quotes and all, survives whole. */
	audit(s, "big", big);
	{
		char *got = db_text(db, "SELECT command FROM audit WHERE imei = 'big'");
		cr_assert_not_null(got);
		cr_assert_eq(strlen(got), 100000u);
		cr_assert_eq(strcmp(got, big), 0);
		free(got);
	}
	cr_assert_eq(db_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit'"), 1);
	free(big);
	store_close(s);
}

/* ---- errors and time ---- */

Test(store, errors_name_the_file_and_the_statement)
{
	store *s = open_ok(db_path);
	char want[400];

	cr_assert_eq(store_audit_add(s, &(struct store_audit){ .operator_ = "qa",
		.command = NULL, .result = "ok" }), -1, "audit without a command accepted");
	snprintf(want, sizeof want, "%s: insert audit: ", db_path);
	cr_assert_eq(strncmp(store_error(s), want, strlen(want)), 0, "got: %s", store_error(s));
	cr_assert_not_null(strstr(store_error(s), "NOT NULL"), "%s", store_error(s));
	store_close(s);
}

Test(store, now_is_iso8601_utc_with_milliseconds)
{
	char buf[25], small[24] = "unchanged";

	cr_assert_eq(store_now(buf, sizeof buf), buf);
	cr_assert(is_store_time(buf), "%s", buf);
	cr_assert_null(store_now(small, sizeof small));
	cr_assert_str_empty(small);
}

/* ---- runs whose rig is gone (crash safety) ---- */

/* In a child process: opens PATH, begins a run, records one result, and dies
 * by SIGKILL without ending the run, as a killed rig would. */
static void run_and_die(const char *path)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		store *s = NULL;
		char err[512];
		if (store_open(path, &s, err, sizeof err))
			_exit(2);
		int64_t id = begin_run(s);
		struct store_result r = { .run_id = id, .slot = "1", .scenario = "power-loss", .outcome = "pass",
					  .started_at = "2026-01-01T00:00:00.000Z",
					  .finished_at = "2026-01-01T00:01:00.000Z" };
		if (store_result_add(s, &r) < 0)
			_exit(3);
		raise(SIGKILL);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child failed before dying: status %#x", st);
}

Test(store, runs_of_dead_rigs_are_marked_interrupted_at_open_and_keep_their_results)
{
	run_and_die(db_path);
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM runs WHERE finished_at IS NULL"), 1);
	store *s = open_ok(db_path);
	/* A run of this (living) process and one on another host stay open. */
	int64_t mine = begin_run(s);
	raw_exec(db_path, "INSERT INTO runs (started_at, command, operator, seed, rig_version, owner_host,"
			  " owner_pid, owner_start) VALUES ('2026-01-01T00:00:00.000Z', 'run', 'qa', 1, '0',"
			  " 'some-other-host', 1, 'x/1')");
	cr_assert_eq(store_interrupted_at_open(s), 1);
	store_close(s);
	assert_text(raw_text(db_path, "SELECT outcome FROM runs WHERE id = 1"), "interrupted", "killed run");
	char *at = raw_text(db_path, "SELECT finished_at FROM runs WHERE id = 1");
	cr_assert(is_store_time(at), "finished_at %s", at ? at : "NULL");
	free(at);
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM results WHERE run_id = 1"), 1, "what finished stays");

	s = open_ok(db_path);
	cr_assert_eq(store_interrupted_at_open(s), 0, "only the dead rig's run is marked");
	store_close(s);
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM runs WHERE finished_at IS NULL"), 2);
	char q[128];
	snprintf(q, sizeof q, "SELECT owner_pid FROM runs WHERE id = %lld", (long long)mine);
	cr_assert_eq(raw_int(db_path, q), getpid());
}

/* ---- failed writes ---- */

Test(store, a_store_out_of_room_keeps_the_first_failed_write)
{
	store *s = open_ok(db_path);
	int64_t run = begin_run(s);
	cr_assert_null(store_write_failure(s));
	/* The file may not grow any more: the next new page fails. */
	int64_t pages = db_int(store_db(s), "PRAGMA page_count");
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
	cr_assert_eq(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
	char detail[2000];
	memset(detail, 'x', sizeof detail - 1);
	detail[sizeof detail - 1] = '\0';
	int failed_at = -1;
	for (int i = 0; i < 500 && failed_at < 0; i++) {
		struct store_event e = { .run_id = run, .source = "test", .kind = "fill", .detail = detail };
		if (store_event_add(s, &e) < 0)
			failed_at = i;
	}
	cr_assert_geq(failed_at, 0, "the store never ran out of room");
	const char *why = store_write_failure(s);
	cr_assert_not_null(why);
	cr_assert(strstr(why, db_path) && strstr(why, "insert event") && strstr(why, "full"), "%s", why);
	/* A later failure of another kind does not replace the first. */
	cr_assert_eq(store_run_end(s, run + 100, "pass"), -1);
	cr_assert(strstr(store_write_failure(s), "insert event"), "%s", store_write_failure(s));
	char err[1200];
	cr_assert_eq(store_close_checked(s, err, sizeof err), -1);
	cr_assert(strstr(err, "a write failed") && strstr(err, db_path), "%s", err);
}

/* ---- read-only opens ---- */

Test(store, read_only_open_reads_and_changes_nothing)
{
	run_and_die(db_path);
	store *s = open_ok(db_path);
	/* Made open again by hand: a read-only open must not sweep it. */
	raw_exec(db_path, "UPDATE runs SET finished_at = NULL, outcome = NULL WHERE id = 1");
	audit(s, "356307042441013", "getver");
	store_close(s);
	raw_exec(db_path, "PRAGMA wal_checkpoint(TRUNCATE)");
	cr_assert_eq(chmod(db_path, 0444), 0);
	size_t before_len, after_len;
	char *before = read_file(db_path, &before_len);

	char err[512];
	cr_assert_eq(store_open_readonly(db_path, &s, err, sizeof err), 0, "%s", err);
	struct collected c = { 0 };
	cr_assert_eq(store_audit_each(s, NULL, NULL, collect, &c), 1, "%s", store_error(s));
	cr_assert_str_eq(c.command[0], "getver");
	cr_assert_eq(store_interrupted_at_open(s), 0);
	struct store_audit a = { .operator_ = "qa", .command = "x", .result = "ok" };
	cr_assert_eq(store_audit_add(s, &a), -1, "a write passed on a read-only handle");
	cr_assert(strstr(store_error(s), db_path) && strstr(store_error(s), "read-only"), "%s", store_error(s));
	store_close(s);

	char *after = read_file(db_path, &after_len);
	cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0, "the file changed");
	free(before);
	free(after);
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM runs WHERE finished_at IS NULL"), 1, "nothing swept");
	chmod(db_path, 0644);
}

Test(store, read_only_open_of_a_missing_or_empty_file_says_so_and_creates_nothing)
{
	store *s = (store *)1;
	char err[512];
	cr_assert_eq(store_open_readonly(db_path, &s, err, sizeof err), -1);
	cr_assert_null(s);
	cr_assert(strstr(err, db_path) && strstr(err, "No such file"), "%s", err);
	cr_assert(!exists(db_path), "a read-only open created the file");
	write_file(db_path, "", 0);
	cr_assert_eq(store_open_readonly(db_path, &s, err, sizeof err), -1);
	cr_assert(strstr(err, db_path) && strstr(err, "not a results store yet"), "%s", err);
	size_t len;
	free(read_file(db_path, &len));
	cr_assert_eq(len, 0, "a read-only open wrote into an empty file");
}

/* ---- the store's own queries (store_health.c, store_records.c, store_rollout.c) ---- */

static void audit_row(store *s, const char *station, const char *slot, const char *port, const char *command,
		  const char *result)
{
	struct store_audit a = { .operator_ = "qa", .station = station, .slot = slot, .port = port,
				 .command = command, .result = result };
	cr_assert_gt(store_audit_add(s, &a), 0, "audit: %s", store_error(s));
}

Test(store, the_newest_restart_counter_is_the_last_written_good_reading_of_the_slot)
{
	store *s = open_ok(db_path);
	char r[128];
	cr_assert_eq(store_boot_reading_latest(s, "1", NULL, r, sizeof r), 0, "found a reading in an empty store");
	audit_row(s, "A", "1", "/dev/a", "restarts", "ok: boots=3 reset=power uptime=10 rack_ms=1000");
	audit_row(s, "B", "1", "/dev/b", "restarts", "ok: boots=7 reset=watchdog uptime=5 rack_ms=2000");
	/* Neither a failed read, nor another command's answer, nor another slot's reading counts. */
	audit_row(s, "A", "1", "/dev/a", "restarts", "timeout: no answer");
	audit_row(s, "A", "1", "/dev/a", "getver", "ok: boots=99 reset=x uptime=1 rack_ms=3000");
	audit_row(s, "A", "2", "/dev/c", "restarts", "ok: boots=42 reset=power uptime=1 rack_ms=4000");
	cr_assert_eq(store_boot_reading_latest(s, "1", "A", r, sizeof r), 1);
	cr_assert_str_eq(r, "ok: boots=3 reset=power uptime=10 rack_ms=1000");
	cr_assert_eq(store_boot_reading_latest(s, "1", NULL, r, sizeof r), 1);
	cr_assert_str_eq(r, "ok: boots=7 reset=watchdog uptime=5 rack_ms=2000", "any station: the newest");
	cr_assert_eq(store_boot_reading_latest(s, "1", "", r, sizeof r), 1, "\"\" is any station");
	cr_assert_str_eq(r, "ok: boots=7 reset=watchdog uptime=5 rack_ms=2000");
	cr_assert_eq(store_boot_reading_latest(s, "1", "C", r, sizeof r), 0);
	store_close(s);
}

Test(store, the_newest_console_answer_and_supply_reading_go_by_their_time_and_port)
{
	store *s = open_ok(db_path);
	store_close(s);
	/* Written out of time order (a clock stepped back, a merged store): the
	 * time decides, not the row. */
	raw_exec(db_path,
		 "INSERT INTO audit (at, operator, station, slot, port, command, result) VALUES"
		 " ('2026-11-26T08:00:05.000Z', 'qa', 'A', '1', '/dev/ttyS1', 'getver', 'ok'),"
		 " ('2026-11-26T08:00:01.000Z', 'qa', 'A', '1', '/dev/ttyS1', 'getver', 'ok'),"
		 " ('2026-11-26T08:00:09.000Z', 'qa', 'A', '1', '/dev/ttyS1', 'getver', 'timeout'),"
		 " ('2026-11-26T08:00:08.000Z', 'qa', 'A', '1', 'tcp://psu:502', 'power status',"
		 "  'ok: output on, 12.00 V, 0.045 A'),"
		 " ('2026-11-26T08:00:07.000Z', 'qa', 'A', '1', 'tcp://psu:502', 'power status',"
		 "  'ok: output off, 0.00 V, 0.000 A'),"
		 " ('2026-11-26T08:00:09.500Z', 'qa', 'A', '1', 'tcp://psu:502', 'power on', 'ok'),"
		 " ('2026-11-26T08:00:06.000Z', 'qa', 'B', '1', '/dev/ttyS1', 'getver', 'ok')");
	s = open_ok(db_path);
	char at[64], result[128];
	cr_assert_eq(store_console_answer_latest(s, "1", "/dev/ttyS1", "A", at, sizeof at), 1);
	cr_assert_str_eq(at, "2026-11-26T08:00:05.000Z", "the newest good answer on the console port");
	cr_assert_eq(store_console_answer_latest(s, "1", "/dev/ttyS1", NULL, at, sizeof at), 1);
	cr_assert_str_eq(at, "2026-11-26T08:00:06.000Z", "any station");
	cr_assert_eq(store_console_answer_latest(s, "1", "/dev/ttyS9", "A", at, sizeof at), 0, "another port");
	cr_assert_eq(store_supply_reading_latest(s, "1", "tcp://psu:502", "A", at, sizeof at, result, sizeof result), 1);
	cr_assert_str_eq(at, "2026-11-26T08:00:08.000Z");
	cr_assert_str_eq(result, "ok: output on, 12.00 V, 0.045 A", "a switch's bare \"ok\" is no reading");
	cr_assert_eq(store_supply_reading_latest(s, "2", "tcp://psu:502", "A", at, sizeof at, result, sizeof result), 0);
	store_close(s);
}

struct quarantined {
	char list[256];
};

static void quarantined_add(void *ctx, const char *station, const char *slot, const char *since, const char *reason)
{
	struct quarantined *q = ctx;
	(void)since;
	(void)reason;
	snprintf(q->list + strlen(q->list), sizeof q->list - strlen(q->list), "%s/%s ", station, slot);
}

Test(store, a_quarantine_is_open_until_cleared_and_the_newest_one_tells_why)
{
	store *s = open_ok(db_path);
	char reason[128], since[64];
	cr_assert_eq(store_quarantine_open(s, "A", "3", reason, sizeof reason, since, sizeof since), 0);
	cr_assert_eq(store_quarantine_add(s, "A", "3", "2026-11-26T08:00:00.000Z", "console: silent", 0), 0);
	cr_assert_eq(store_quarantine_add(s, "A", "3", "2026-11-26T09:00:00.000Z", "supply: output is off", 0), 0);
	cr_assert_eq(store_quarantine_add(s, "A", "12", "2026-11-26T09:00:00.000Z", "console: gone", 0), 0);
	cr_assert_eq(store_quarantine_add(s, "B", "3", "2026-11-26T09:30:00.000Z", "console: gone", 0), 0);
	cr_assert_eq(store_quarantine_open(s, "A", "3", reason, sizeof reason, since, sizeof since), 1);
	cr_assert_str_eq(reason, "supply: output is off");
	cr_assert_str_eq(since, "2026-11-26T09:00:00.000Z");
	struct quarantined seen = { 0 };
	cr_assert_eq(store_quarantine_each(s, "A", quarantined_add, &seen), 3);
	cr_assert_str_eq(seen.list, "A/3 A/3 A/12 ", "by slot number, not text: %s", seen.list);
	cr_assert_eq(store_quarantine_clear(s, "A", "3", "2026-11-26T10:00:00.000Z", "qa"), 2, "both open ones");
	cr_assert_eq(store_quarantine_open(s, "A", "3", reason, sizeof reason, since, sizeof since), 0,
		     "cleared yet still open");
	cr_assert_eq(store_quarantine_clear(s, "A", "3", "2026-11-26T10:00:00.000Z", "qa"), 0);
	memset(&seen, 0, sizeof seen);
	cr_assert_eq(store_quarantine_each(s, NULL, quarantined_add, &seen), 2);
	cr_assert_str_eq(seen.list, "A/12 B/3 ", "%s", seen.list);
	store_close(s);
}

/* ---- telemetry records ---- */

#define IMEI_A "356307042441013"
#define IMEI_B "356307042441021"

/* One record of IMEI in RUN made at TS, arrived at ARRIVAL, with IO text IO. */
static int add_record(store_records_writer *w, int64_t run, const char *imei, int64_t ts, int64_t arrival,
		      int lat, const char *io)
{
	const struct store_record r = { .run_id = run, .imei = imei, .ts_device = "2026-11-26T08:00:00.000Z",
					.ts_ms = ts, .arrival = "2026-11-26T08:00:00.000Z", .arrival_ms = arrival,
					.lat_e7 = lat, .lon_e7 = 1, .io = io, .late = arrival - ts > 60000,
					.packet_seq = 1, .content_hash = ts * 7 + lat };
	return store_record_add(w, &r);
}

struct walked {
	int n;
	int64_t ts[16], gnss[16];
	bool late[16];
};

static int walked_add(void *ctx, const struct store_record_row *r)
{
	struct walked *w = ctx;
	if (w->n < 16) {
		w->ts[w->n] = r->ts_ms;
		w->gnss[w->n] = r->io_gnss;
		w->late[w->n] = r->late;
	}
	w->n++;
	return 0;
}

static store_records_writer *writer_ok(store *s)
{
	store_records_writer *w;
	char err[512];
	cr_assert_eq(store_records_writer_open(s, &w, err, sizeof err), 0, "%s", err);
	return w;
}

Test(store, records_are_read_by_their_window_run_and_imei)
{
	store *s = open_ok(db_path);
	struct store_run run = { .command = "run", .operator_ = "qa" };
	int64_t r1 = store_run_begin(s, &run), r2 = store_run_begin(s, &run);
	store_records_writer *w = writer_ok(s);
	/* Stored out of the device's order: a flush sends the backlog late. */
	cr_assert_eq(add_record(w, r1, IMEI_A, 30000, 31000, 1, "{\"69\":1}"), 1);
	cr_assert_eq(add_record(w, r1, IMEI_A, 10000, 11000, 1, "{\"69\":2}"), 1);
	cr_assert_eq(add_record(w, r1, IMEI_A, 20000, 95000, 1, "{\"21\":3}"), 1);
	cr_assert_eq(add_record(w, r1, IMEI_A, 40000, 96000, 1, "not json"), 1);
	cr_assert_eq(add_record(w, r1, IMEI_A, 50000, 97000, 1, "{\"69\":1}"), 1);
	cr_assert_eq(add_record(w, r1, IMEI_A, 50000, 98000, 1, "{\"69\":1}"), 0, "a duplicate stored again");
	cr_assert_eq(add_record(w, r2, IMEI_A, 25000, 26000, 1, "{\"69\":1}"), 1, "another run's is its own");
	cr_assert_eq(add_record(w, r1, IMEI_B, 25000, 26000, 1, "{\"69\":1}"), 1);

	int64_t ts = -1;
	cr_assert_eq(store_record_latest_before(s, r1, IMEI_A, 30000, &ts), 1);
	cr_assert_eq(ts, 20000, "made before 30000, strictly: %lld", (long long)ts);
	cr_assert_eq(store_record_latest_before(s, r1, IMEI_A, 10000, &ts), 0, "nothing before the first");
	cr_assert_eq(store_record_latest_before(s, r2, IMEI_A, 100000, &ts), 1);
	cr_assert_eq(ts, 25000, "run 2 has its own");

	struct walked d = { 0 };
	cr_assert_eq(store_records_during(s, r1, IMEI_A, 10000, 50000, walked_add, &d), 2);
	cr_assert_eq(d.ts[0], 20000, "oldest first, ends excluded: %lld", (long long)d.ts[0]);
	cr_assert_eq(d.ts[1], 30000);
	cr_assert_eq(d.gnss[0], -1, "no IO 69 in the record");
	cr_assert_eq(d.gnss[1], 1, "IO 69 read from the JSON");
	memset(&d, 0, sizeof d);
	cr_assert_eq(store_records_during(s, r1, IMEI_A, 0, 60000, walked_add, &d), 4, "invalid JSON left out");

	memset(&d, 0, sizeof d);
	cr_assert_eq(store_records_arrived_since(s, r1, IMEI_A, 95000, walked_add, &d), 3);
	cr_assert_eq(d.ts[0], 20000, "in the order stored");
	cr_assert_eq(d.ts[1], 40000);
	cr_assert_eq(d.ts[2], 50000);
	cr_assert(d.late[0] && !d.late[1] && !d.late[2], "the late flag as stored");
	cr_assert_eq(d.gnss[1], -1, "invalid JSON is no GNSS status, and no failure");

	int64_t newest, seq;
	cr_assert_eq(store_records_newest(w, IMEI_A, &newest, &seq), 0);
	cr_assert_eq(newest, 50000, "over every run");
	store_records_writer_close(w);
	store_close(s);
}

Test(store, the_uplink_summary_reads_the_newest_records_by_the_devices_time)
{
	store *s = open_ok(db_path);
	struct store_uplink_summary u;
	cr_assert_eq(store_uplink_summary(s, IMEI_A, &u), 0, "%s", store_error(s));
	cr_assert_eq(u.n_records, 0);
	cr_assert_eq(u.last_arrival_ms, STORE_NONE);
	cr_assert_eq(u.bytes_used, -1);
	cr_assert_eq(u.io_gnss, -1);
	store_records_writer *w = writer_ok(s);
	char io[64];
	/* Six records; the newest by the device's time is stored first. */
	for (int k = 0; k < 6; k++) {
		int i = (k + 5) % 6;
		snprintf(io, sizeof io, "{\"21\":%d,\"66\":%d,\"69\":%d}", i % 5, 12000 + i * 100, i == 5 ? 1 : 2);
		cr_assert_eq(add_record(w, 0, IMEI_A, i == 5 ? 90000 : 10000 + i * 1000, 100000 + (5 - i) * 10, i, io), 1);
	}
	const int64_t delta[STORE_USAGE_FIELDS] = { 100, 20, 1, 6, 0, 0 };
	cr_assert_eq(store_uplink_usage_add(w, 0, IMEI_A, delta, "2026-11-26T08:00:00.000Z"), 0);
	cr_assert_eq(store_uplink_usage_add(w, 0, IMEI_A, delta, "2026-11-26T08:01:00.000Z"), 0);
	cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM uplink_usage"), 1, "deltas add to one row");
	cr_assert_eq(store_uplink_summary(s, IMEI_A, &u), 0);
	cr_assert_eq(u.n_records, 6);
	cr_assert_eq(u.last_arrival_ms, 100050);
	cr_assert_eq(u.last_ts_ms, 90000);
	cr_assert_eq(u.io_signal, 0, "IO 21 of the newest by device time");
	cr_assert_eq(u.io_ext_mv, 12500);
	cr_assert_eq(u.io_gnss, 1);
	cr_assert_eq(u.io_ext_mv_before, 12100, "IO 66 four records before the newest: %d", u.io_ext_mv_before);
	cr_assert_eq(u.bytes_used, 240);
	cr_assert_str_eq(u.last_login, "2026-11-26T08:01:00.000Z");
	cr_assert_eq(store_uplink_summary(s, IMEI_B, &u), 0);
	cr_assert_eq(u.n_records, 0, "another IMEI's");
	store_records_writer_close(w);
	store_close(s);
}

/* ---- rollouts ---- */

static void count_into(void *ctx, const char *state, int n, int in_flight_at_stop)
{
	char *buf = ctx;
	snprintf(buf + strlen(buf), 256 - strlen(buf), "%s=%d/%d ", state, n, in_flight_at_stop);
}

static void request_seen(void *ctx, const struct store_rollout_row *row)
{
	snprintf(ctx, 64, "%s", row->request ? row->request : "(none)");
}

Test(store, a_rollout_starts_devices_by_stage_and_order_and_takes_a_request_once)
{
	store *s = open_ok(db_path);
	const struct store_rollout_new r = { .image = "/fw/good.fw", .version = "2.0.0", .model = "FMB920",
					     .stages = "1,100%", .cohort = "all", .operator_ = "qa",
					     .created_at = "2026-11-26T08:00:00.000Z", .success_pct = 90,
					     .max_failures = "1", .device_timeout_ms = 60000, .n_stages = 2 };
	cr_assert_eq(store_rollout_latest(s), 0, "a rollout in an empty store");
	int64_t id = store_rollout_add(s, &r);
	cr_assert_gt(id, 0, "%s", store_error(s));
	cr_assert_eq(store_rollout_latest(s), id);
	/* Slot numbers against the order of starting: the order decides. */
	cr_assert_eq(store_rollout_device_add(s, id, 7, "352094080222422", 1, 0), 0);
	cr_assert_eq(store_rollout_device_add(s, id, 3, "352094086831630", 2, 2), 0);
	cr_assert_eq(store_rollout_device_add(s, id, 9, NULL, 2, 1), 0);
	char imei[32] = "x";
	cr_assert_eq(store_rollout_next_waiting(s, id, 2, imei, sizeof imei), 9, "stage 2 starts with seq 1");
	cr_assert_str_eq(imei, "", "no IMEI known yet");
	cr_assert_eq(store_rollout_next_waiting(s, id, 1, imei, sizeof imei), 7);
	const struct store_rollout_device_change up = { .state = "updating", .detail = "update sent",
							.at = "2026-11-26T08:00:01.000Z", .started = true };
	cr_assert_eq(store_rollout_device_set(s, id, 7, &up), 0);
	cr_assert_eq(store_rollout_next_waiting(s, id, 1, imei, sizeof imei), 0, "a started device is not waiting");
	cr_assert_eq(store_rollout_device_set(s, id, 9, &up), 0);
	cr_assert_eq(store_rollout_next_waiting(s, id, 2, imei, sizeof imei), 3);
	cr_assert_str_eq(imei, "352094086831630");
	cr_assert_eq(store_rollout_device_count(s, id, "updating"), 2);

	char counts[256] = "";
	cr_assert_eq(store_rollout_state_counts(s, id, 2, count_into, counts), 0);
	cr_assert_str_eq(counts, "updating=1/0 waiting=1/0 ", "stage 2 alone: %s", counts);
	cr_assert_eq(store_rollout_device_in_flight(s, id, 7), 0);
	cr_assert_eq(store_rollout_skip_waiting(s, id), 0);
	counts[0] = '\0';
	cr_assert_eq(store_rollout_state_counts(s, id, 0, count_into, counts), 0);
	cr_assert_str_eq(counts, "skipped_after_stop=1/0 updating=2/1 ", "every stage: %s", counts);

	char what[16], at[40];
	cr_assert_eq(store_rollout_request_take(s, id, what, sizeof what, at, sizeof at), 0, "no request yet");
	cr_assert_eq(store_rollout_request_set(s, id, "pause", "2026-11-26T08:00:02.000Z"), 0);
	cr_assert_eq(store_rollout_request_take(s, id, what, sizeof what, at, sizeof at), 1);
	cr_assert_str_eq(what, "pause");
	cr_assert_str_eq(at, "2026-11-26T08:00:02.000Z");
	cr_assert_eq(store_rollout_request_take(s, id, what, sizeof what, at, sizeof at), 0, "taken twice");
	char seen[64];
	cr_assert_eq(store_rollout_get(s, id, request_seen, seen), 1);
	cr_assert_str_eq(seen, "(none)");
	cr_assert_eq(store_rollout_get(s, id + 1, request_seen, seen), 0, "a rollout that does not exist");

	cr_assert_eq(store_rollout_set_state(s, id, "stopped", "stop by SIGINT", "2026-11-26T08:00:03.000Z", 2), 0);
	char *stopped = raw_text(db_path, "SELECT stopped_at || ' ' || state || ' ' || stage FROM rollouts");
	assert_text(stopped, "2026-11-26T08:00:03.000Z stopped 2", "a stop keeps its time");
	store_close(s);
}
