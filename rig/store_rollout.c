/* store_rollout.c - staged firmware rollouts in the store (see store_rollout.h). */
#include "store_rollout.h"
#include "store_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Binds "t" text and "i" int64 arguments in order, from ?1. */
static void bind_args(sqlite3_stmt *st, const char *types, va_list ap)
{
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			store_bind_text(st, i + 1, va_arg(ap, const char *));
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
}

/* Runs one statement that returns no rows (text bound without a copy: the
 * statement is finalized before the call returns). 0 or -1. */
static int run(store *s, const char *what, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = store_prepare(s, what, sql);
	if (!st)
		return -1;
	va_list ap;
	va_start(ap, types);
	bind_args(st, types, ap);
	va_end(ap);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail_db(s, what);
	sqlite3_finalize(st);
	return ret;
}

/* A one-integer query: its value (DEFAULT for no row or NULL), or -1. */
static int64_t query_int(store *s, const char *what, int64_t none, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = store_prepare(s, what, sql);
	if (!st)
		return -1;
	va_list ap;
	va_start(ap, types);
	bind_args(st, types, ap);
	va_end(ap);
	int rc = sqlite3_step(st);
	int64_t v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0) : none;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		v = store_fail_db(s, what);
	sqlite3_finalize(st);
	return v;
}

/* ---- rollouts ---- */

int64_t store_rollout_add(store *s, const struct store_rollout_new *r)
{
	if (run(s, "insert rollout",
		"INSERT INTO rollouts (image, version, model, stages, cohort, state, created_at, updated_at,"
		" station, operator, success_pct, max_failures, device_timeout_ms, n_stages)"
		" VALUES (?1, ?2, ?3, ?4, ?5, 'created', ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
		"ttttttttitii", r->image, r->version, r->model, r->stages, r->cohort, r->created_at, r->station,
		r->operator_, (int64_t)r->success_pct, r->max_failures, r->device_timeout_ms, (int64_t)r->n_stages))
		return -1;
	return sqlite3_last_insert_rowid(store_db(s));
}

int64_t store_rollout_latest(store *s)
{
	return query_int(s, "read newest rollout", 0, "SELECT max(id) FROM rollouts", "");
}

int store_rollout_get(store *s, int64_t id, store_rollout_cb cb, void *ctx)
{
	const char *what = "read rollout";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT image, version, model, stages, cohort, state, created_at, updated_at,"
					 " reason, station, operator, success_pct, max_failures, device_timeout_ms,"
					 " n_stages, stage, request, requested_at, coalesce(runner_pid, 0), stopped_at"
					 " FROM rollouts WHERE id = ?1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		const struct store_rollout_row row = {
			.id = id,
			.image = store_column_text(st, 0),
			.version = store_column_text(st, 1),
			.model = store_column_text(st, 2),
			.stages = store_column_text(st, 3),
			.cohort = store_column_text(st, 4),
			.state = store_column_text(st, 5),
			.created_at = store_column_text(st, 6),
			.updated_at = store_column_text(st, 7),
			.reason = store_column_text(st, 8),
			.station = store_column_text(st, 9),
			.operator_ = store_column_text(st, 10),
			.success_pct = sqlite3_column_int(st, 11),
			.max_failures = store_column_text(st, 12),
			.device_timeout_ms = sqlite3_column_int64(st, 13),
			.n_stages = sqlite3_column_int(st, 14),
			.stage = sqlite3_column_int(st, 15),
			.request = store_column_text(st, 16),
			.requested_at = store_column_text(st, 17),
			.runner_pid = sqlite3_column_int64(st, 18),
			.stopped_at = store_column_text(st, 19),
		};
		cb(ctx, &row);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store_fail_db(s, what);
	}
	sqlite3_finalize(st);
	return ret;
}

int store_rollout_set_state(store *s, int64_t id, const char *state, const char *reason, const char *at,
			    int stage)
{
	int rc = run(s, "set rollout state",
		     "UPDATE rollouts SET state = ?1, reason = coalesce(?2, reason), updated_at = ?3, stage = ?4"
		     " WHERE id = ?5",
		     "tttii", state, reason, at, (int64_t)stage, id);
	/* After a failed first update SQLite's message must stay the first's. */
	if (rc == 0 && strcmp(state, "stopped") == 0)
		rc = run(s, "set rollout stop time", "UPDATE rollouts SET stopped_at = ?1 WHERE id = ?2", "ti", at, id);
	return rc;
}

int store_rollout_set_runner(store *s, int64_t id, int64_t pid)
{
	if (pid <= 0)
		return run(s, "clear rollout runner", "UPDATE rollouts SET runner_pid = NULL WHERE id = ?1", "i", id);
	return run(s, "set rollout runner", "UPDATE rollouts SET runner_pid = ?1 WHERE id = ?2", "ii", pid, id);
}

int store_rollout_request_set(store *s, int64_t id, const char *what, const char *at)
{
	return run(s, "request rollout change",
		   "UPDATE rollouts SET request = ?1, requested_at = ?2, updated_at = ?2 WHERE id = ?3", "tti", what, at,
		   id);
}

int store_rollout_request_take(store *s, int64_t id, char *what, size_t what_len, char *at, size_t at_len)
{
	const char *w = "read rollout request";
	sqlite3_stmt *st = store_prepare(s, w, "SELECT request, requested_at FROM rollouts WHERE id = ?1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW && store_column_text(st, 0)) {
		snprintf(what, what_len, "%s", store_column_text(st, 0));
		snprintf(at, at_len, "%s", store_column_text(st, 1) ? store_column_text(st, 1) : "?");
		found = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		found = store_fail_db(s, w);
	}
	sqlite3_finalize(st);
	/* Taken once: the runner acts on it, a second read must not. A failed
	 * clear is the runner's to report; the request was still read. */
	if (found == 1)
		run(s, "clear rollout request", "UPDATE rollouts SET request = NULL WHERE id = ?1", "i", id);
	return found;
}

int store_rollout_request_apply(store *s, int64_t id, const char *state, const char *reason, const char *at)
{
	return run(s, "apply rollout request",
		   "UPDATE rollouts SET state = ?1, reason = ?2, request = NULL, updated_at = ?3,"
		   " stopped_at = CASE WHEN ?1 = 'stopped' THEN ?3 ELSE stopped_at END WHERE id = ?4",
		   "ttti", state, reason, at, id);
}

/* ---- the devices of a rollout ---- */

int store_rollout_device_add(store *s, int64_t id, int slot, const char *imei, int stage, int seq)
{
	return run(s, "insert rollout device",
		   "INSERT INTO rollout_devices (rollout_id, slot, imei, stage, seq, state)"
		   " VALUES (?1, ?2, ?3, ?4, ?5, 'waiting')",
		   "iitii", id, (int64_t)slot, imei, (int64_t)stage, (int64_t)seq);
}

int store_rollout_device_set(store *s, int64_t id, int slot, const struct store_rollout_device_change *c)
{
	return run(s, "set rollout device",
		   "UPDATE rollout_devices SET state = ?1, imei = coalesce(?2, imei), gate = coalesce(?3, gate),"
		   " detail = ?4, started_at = CASE WHEN ?5 THEN ?7 ELSE started_at END,"
		   " finished_at = CASE WHEN ?6 THEN ?7 ELSE finished_at END"
		   " WHERE rollout_id = ?8 AND slot = ?9",
		   "ttttiitii", c->state, c->imei && *c->imei ? c->imei : NULL, c->gate, c->detail,
		   (int64_t)c->started, (int64_t)c->finished, c->at, id, (int64_t)slot);
}

int store_rollout_device_in_flight(store *s, int64_t id, int slot)
{
	return run(s, "mark rollout device in flight",
		   "UPDATE rollout_devices SET in_flight_at_stop = 1 WHERE rollout_id = ?1 AND slot = ?2", "ii", id,
		   (int64_t)slot);
}

int store_rollout_device_rewait(store *s, int64_t id, int slot, const char *detail)
{
	return run(s, "set rollout device waiting",
		   "UPDATE rollout_devices SET state = 'waiting', started_at = NULL, detail = ?1"
		   " WHERE rollout_id = ?2 AND slot = ?3",
		   "tii", detail, id, (int64_t)slot);
}

int store_rollout_skip_waiting(store *s, int64_t id)
{
	return run(s, "skip waiting rollout devices",
		   "UPDATE rollout_devices SET state = 'skipped_after_stop', detail = 'not started: rollout stopped'"
		   " WHERE rollout_id = ?1 AND state = 'waiting'",
		   "i", id);
}

int store_rollout_next_waiting(store *s, int64_t id, int stage, char *imei, size_t len)
{
	const char *what = "read next waiting rollout device";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT slot, imei FROM rollout_devices WHERE rollout_id = ?1 AND stage = ?2"
					 " AND state = 'waiting' ORDER BY seq LIMIT 1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, stage);
	int rc = sqlite3_step(st), slot = 0;
	if (rc == SQLITE_ROW) {
		slot = sqlite3_column_int(st, 0);
		snprintf(imei, len, "%s", store_column_text(st, 1) ? store_column_text(st, 1) : "");
	} else if (rc != SQLITE_DONE) {
		slot = store_fail_db(s, what);
	}
	sqlite3_finalize(st);
	return slot;
}

int store_rollout_device_count(store *s, int64_t id, const char *state)
{
	return (int)query_int(s, "count rollout devices", 0,
			      "SELECT count(*) FROM rollout_devices WHERE rollout_id = ?1 AND state = ?2", "it", id,
			      state);
}

int store_rollout_state_counts(store *s, int64_t id, int stage, store_rollout_count_cb cb, void *ctx)
{
	const char *what = "count rollout devices by state";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT state, count(*), sum(in_flight_at_stop) FROM rollout_devices"
					 " WHERE rollout_id = ?1 AND (?2 = 0 OR stage = ?2) GROUP BY state");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, stage);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb(ctx, store_column_text(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int(st, 2));
	int ret = rc == SQLITE_DONE ? 0 : store_fail_db(s, what);
	sqlite3_finalize(st);
	return ret;
}

int store_rollout_devices_each(store *s, int64_t id, const char *state, store_rollout_device_cb cb, void *ctx)
{
	const char *what = "read rollout devices";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT slot, stage, state, imei, gate, started_at, finished_at, detail,"
					 " in_flight_at_stop FROM rollout_devices WHERE rollout_id = ?1"
					 " AND (?2 IS NULL OR state = ?2) ORDER BY seq");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, state);
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const struct store_rollout_device_row row = {
			.slot = sqlite3_column_int(st, 0),
			.stage = sqlite3_column_int(st, 1),
			.state = store_column_text(st, 2),
			.imei = store_column_text(st, 3),
			.gate = store_column_text(st, 4),
			.started_at = store_column_text(st, 5),
			.finished_at = store_column_text(st, 6),
			.detail = store_column_text(st, 7),
			.in_flight_at_stop = sqlite3_column_int(st, 8) != 0,
		};
		cb(ctx, &row);
		n++;
	}
	if (rc != SQLITE_DONE)
		n = store_fail_db(s, what);
	sqlite3_finalize(st);
	return n;
}
