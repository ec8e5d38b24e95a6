/* store_health.c - quarantines and the newest audited readings of a slot (see store_health.h). */
#include "store_health.h"
#include "store_impl.h"

#include <stdio.h>

static const char *station_or_null(const char *station)
{
	return station && *station ? station : NULL;
}

static void copy(char *dst, size_t len, const char *src)
{
	if (dst && len)
		snprintf(dst, len, "%s", src ? src : "");
}

/* Steps ST once: 1 with a row, 0 at the end, -1 (store_error, WHAT) otherwise. */
static int step_one(store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_fail_db(s, what);
}

/* ---- quarantine ---- */

int store_quarantine_open(store *s, const char *station, const char *slot, char *reason, size_t reason_len,
			  char *since, size_t since_len)
{
	const char *what = "read quarantine";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT reason, since FROM quarantine WHERE station = ?1 AND slot = ?2"
					 " AND cleared_at IS NULL ORDER BY id DESC LIMIT 1");
	if (!st)
		return -1;
	store_bind_text(st, 1, station);
	store_bind_text(st, 2, slot);
	int rc = step_one(s, st, what);
	if (rc == 1) {
		copy(reason, reason_len, store_column_text(st, 0));
		copy(since, since_len, store_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return rc;
}

int store_quarantine_add(store *s, const char *station, const char *slot, const char *since, const char *reason,
			 int64_t run_id)
{
	const char *what = "insert quarantine";
	sqlite3_stmt *st = store_prepare(s, what,
					 "INSERT INTO quarantine (station, slot, since, reason, run_id)"
					 " VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!st)
		return -1;
	store_bind_text(st, 1, station);
	store_bind_text(st, 2, slot);
	store_bind_text(st, 3, since);
	store_bind_text(st, 4, reason);
	store_bind_id(st, 5, run_id > 0 ? run_id : 0);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail_db(s, what);
	sqlite3_finalize(st);
	return rc;
}

int store_quarantine_clear(store *s, const char *station, const char *slot, const char *at, const char *by)
{
	const char *what = "clear quarantine";
	sqlite3_stmt *st = store_prepare(s, what,
					 "UPDATE quarantine SET cleared_at = ?3, cleared_by = ?4"
					 " WHERE station = ?1 AND slot = ?2 AND cleared_at IS NULL");
	if (!st)
		return -1;
	store_bind_text(st, 1, station);
	store_bind_text(st, 2, slot);
	store_bind_text(st, 3, at);
	store_bind_text(st, 4, by);
	int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(sqlite3_db_handle(st)) : store_fail_db(s, what);
	sqlite3_finalize(st);
	return rc;
}

int store_quarantine_each(store *s, const char *station, store_quarantine_cb cb, void *ctx)
{
	const char *what = "read quarantines";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT station, slot, since, reason FROM quarantine WHERE cleared_at IS NULL"
					 " AND (?1 IS NULL OR station = ?1) ORDER BY station, CAST(slot AS INTEGER)");
	if (!st)
		return -1;
	store_bind_text(st, 1, station);
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cb(ctx, store_column_text(st, 0), store_column_text(st, 1), store_column_text(st, 2),
		   store_column_text(st, 3));
		n++;
	}
	/* Rows already handed out stay handed out; the count says how many. */
	if (rc != SQLITE_DONE)
		store_fail_db(s, what);
	sqlite3_finalize(st);
	return n;
}

/* ---- the newest readings in the audit trail ---- */

/* The newest audit row of SLOT and PORT matching SQL's own filter: ?1 slot,
 * ?2 port, ?3 station; its time and result. */
static int audit_latest(store *s, const char *what, const char *sql, const char *slot, const char *port,
			const char *station, char *at, size_t at_len, char *result, size_t result_len)
{
	sqlite3_stmt *st = store_prepare(s, what, sql);
	if (!st)
		return -1;
	store_bind_text(st, 1, slot);
	store_bind_text(st, 2, port);
	store_bind_text(st, 3, station_or_null(station));
	int rc = step_one(s, st, what);
	if (rc == 1) {
		copy(at, at_len, store_column_text(st, 0));
		copy(result, result_len, store_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return rc;
}

int store_boot_reading_latest(store *s, const char *slot, const char *station, char *result, size_t len)
{
	/* No port here: ?2 is not in the statement (binding it is harmless). */
	return audit_latest(s, "read restart counter",
			    "SELECT at, result FROM audit WHERE slot = ?1 AND (?3 IS NULL OR station = ?3)"
			    " AND command = 'restarts' AND result LIKE 'ok: boots=%' ORDER BY id DESC LIMIT 1",
			    slot, NULL, station, NULL, 0, result, len);
}

int store_console_answer_latest(store *s, const char *slot, const char *port, const char *station, char *at,
				size_t at_len)
{
	return audit_latest(s, "read console answers",
			    "SELECT at, result FROM audit WHERE slot = ?1 AND port = ?2 AND (?3 IS NULL OR station = ?3)"
			    " AND result LIKE 'ok%' ORDER BY at DESC, id DESC LIMIT 1",
			    slot, port, station, at, at_len, NULL, 0);
}

int store_supply_reading_latest(store *s, const char *slot, const char *transport, const char *station, char *at,
				size_t at_len, char *result, size_t result_len)
{
	return audit_latest(s, "read supply readings",
			    "SELECT at, result FROM audit WHERE slot = ?1 AND port = ?2 AND (?3 IS NULL OR station = ?3)"
			    " AND result LIKE 'ok: output %' ORDER BY at DESC, id DESC LIMIT 1",
			    slot, transport, station, at, at_len, result, result_len);
}
