/* record.c - the JSON test record of a run, from the results store. */
#include "json.h"
#include "report.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : NULL;
}

static void num_or_null(struct json *j, const char *key, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		json_null(j, key);
	else
		json_num(j, key, sqlite3_column_double(st, i));
}

static void measurements(struct json *j, sqlite3 *db, int64_t result_id)
{
	sqlite3_stmt *st;
	json_arr_begin(j, "measurements");
	if (sqlite3_prepare_v2(db, "SELECT name, value, unit, low, high, outcome FROM measurements"
			       " WHERE result_id = ?1 ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, result_id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_obj_begin(j, NULL);
			json_str(j, "name", col(st, 0));
			num_or_null(j, "value", st, 1);
			json_str(j, "unit", col(st, 2));
			num_or_null(j, "low", st, 3);
			num_or_null(j, "high", st, 4);
			json_str(j, "outcome", col(st, 5));
			json_obj_end(j);
		}
		sqlite3_finalize(st);
	}
	json_arr_end(j);
}

static void events(struct json *j, sqlite3 *db, int64_t result_id)
{
	sqlite3_stmt *st;
	json_arr_begin(j, "events");
	if (sqlite3_prepare_v2(db, "SELECT at, source, kind, detail FROM events WHERE result_id = ?1 ORDER BY id",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, result_id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_obj_begin(j, NULL);
			json_str(j, "at", col(st, 0));
			json_str(j, "source", col(st, 1));
			json_str(j, "kind", col(st, 2));
			json_str(j, "detail", col(st, 3));
			json_obj_end(j);
		}
		sqlite3_finalize(st);
	}
	json_arr_end(j);
}

static void reasons(struct json *j, const char *list)
{
	json_arr_begin(j, "reason_codes");
	while (list && *list) {
		size_t n = strcspn(list, ",");
		char code[64];
		snprintf(code, sizeof code, "%.*s", (int)(n < 63 ? n : 63), list);
		json_str(j, NULL, code);
		list += n + (list[n] == ',');
	}
	json_arr_end(j);
}

int report_json(store *s, int64_t run_id, const char *path, char *err, size_t errlen)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *run, *res;
	if (sqlite3_prepare_v2(db, "SELECT command, station, rack, operator, printf('%llu', seed), started_at,"
			       " finished_at, outcome, rig_version FROM runs WHERE id = ?1", -1, &run, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "json record: reading the store: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT id, slot, scenario, imei, vendor, model, outcome, marginal, message,"
			       " reasons, started_at, finished_at FROM results WHERE run_id = ?1"
			       " ORDER BY CAST(slot AS INTEGER), id", -1, &res, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "json record: reading the store: %s", sqlite3_errmsg(db));
		sqlite3_finalize(run);
		return -1;
	}
	sqlite3_bind_int64(run, 1, run_id);
	if (sqlite3_step(run) != SQLITE_ROW) {
		snprintf(err, errlen, "json record: no run %lld in the store", (long long)run_id);
		sqlite3_finalize(run);
		sqlite3_finalize(res);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "json record: %s: %s", path, strerror(errno));
		sqlite3_finalize(run);
		sqlite3_finalize(res);
		return -1;
	}
	struct json j;
	json_init(&j, f, true);
	json_obj_begin(&j, NULL);
	json_int(&j, "run", run_id);
	json_str(&j, "command", col(run, 0));
	json_str(&j, "station", col(run, 1));
	json_str(&j, "rack", col(run, 2));
	json_str(&j, "operator", col(run, 3));
	json_str(&j, "seed", col(run, 4));
	json_str(&j, "outcome", col(run, 7));
	json_str(&j, "rig_version", col(run, 8));
	json_obj_begin(&j, "wall_clock"); /* the only fields that differ between equal runs */
	json_str(&j, "started_at", col(run, 5));
	json_str(&j, "finished_at", col(run, 6));
	json_obj_end(&j);
	json_arr_begin(&j, "results");
	sqlite3_bind_int64(res, 1, run_id);
	while (sqlite3_step(res) == SQLITE_ROW) {
		json_obj_begin(&j, NULL);
		json_int(&j, "slot", sqlite3_column_int(res, 1));
		json_str(&j, "scenario", col(res, 2));
		json_obj_begin(&j, "device");
		json_str(&j, "imei", col(res, 3));
		json_str(&j, "vendor", col(res, 4));
		json_str(&j, "model", col(res, 5));
		json_obj_end(&j);
		json_str(&j, "outcome", col(res, 6));
		json_bool(&j, "marginal", sqlite3_column_int(res, 7));
		json_str(&j, "message", col(res, 8));
		reasons(&j, col(res, 9));
		json_str(&j, "started_at", col(res, 10));
		json_str(&j, "finished_at", col(res, 11));
		measurements(&j, db, sqlite3_column_int64(res, 0));
		events(&j, db, sqlite3_column_int64(res, 0));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
	sqlite3_finalize(run);
	sqlite3_finalize(res);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "json record: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
