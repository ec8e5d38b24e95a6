/* store_records.c - telemetry records and uplink usage (see store_records.h). */
#include "store_records.h"
#include "store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

static int64_t column_or(sqlite3_stmt *st, int i, int64_t none)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? none : sqlite3_column_int64(st, i);
}

/* The columns every record walk reads, in struct store_record_row's order.
 * json_extract only on valid JSON: on anything else it would fail the
 * whole query. */
#define RECORD_COLUMNS \
	"SELECT ts_ms, arrival_ms, late, lat_e7, lon_e7," \
	" CASE WHEN json_valid(io) THEN json_extract(io, '$.\"69\"') END FROM records "

/* Walks ST (bound) through CB; the number of rows visited, or -1. */
static int walk_records(store *s, sqlite3_stmt *st, const char *what, store_record_cb cb, void *ctx)
{
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_record_row row = {
			.ts_ms = sqlite3_column_int64(st, 0),
			.arrival_ms = sqlite3_column_int64(st, 1),
			.late = sqlite3_column_int(st, 2) != 0,
			.lat_e7 = sqlite3_column_int64(st, 3),
			.lon_e7 = sqlite3_column_int64(st, 4),
			.io_gnss = column_or(st, 5, -1),
		};
		n++;
		if (cb(ctx, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		n = store_fail_db(s, what);
	sqlite3_finalize(st);
	return n;
}

/* run_id is written +run_id so the planner takes the (imei, ts_ms) index. */
int store_record_latest_before(store *s, int64_t run_id, const char *imei, int64_t before_ms, int64_t *ts_ms)
{
	const char *what = "read the newest record before";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT ts_ms FROM records WHERE +run_id = ?1 AND imei = ?2 AND ts_ms < ?3"
					 " ORDER BY ts_ms DESC LIMIT 1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	store_bind_text(st, 2, imei);
	sqlite3_bind_int64(st, 3, before_ms);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ts_ms = sqlite3_column_int64(st, 0);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail_db(s, what);
	sqlite3_finalize(st);
	return ret;
}

int store_records_during(store *s, int64_t run_id, const char *imei, int64_t after_ms, int64_t before_ms,
			 store_record_cb cb, void *ctx)
{
	const char *what = "read records made during";
	sqlite3_stmt *st = store_prepare(s, what,
					 RECORD_COLUMNS "WHERE +run_id = ?1 AND imei = ?2 AND ts_ms > ?3 AND ts_ms < ?4"
							" AND json_valid(io) ORDER BY ts_ms");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	store_bind_text(st, 2, imei);
	sqlite3_bind_int64(st, 3, after_ms);
	sqlite3_bind_int64(st, 4, before_ms);
	return walk_records(s, st, what, cb, ctx);
}

int store_records_arrived_since(store *s, int64_t run_id, const char *imei, int64_t since_ms, store_record_cb cb,
				void *ctx)
{
	const char *what = "read records arrived since";
	sqlite3_stmt *st = store_prepare(s, what,
					 RECORD_COLUMNS "WHERE +run_id = ?1 AND imei = ?2 AND arrival_ms >= ?3 ORDER BY id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	store_bind_text(st, 2, imei);
	sqlite3_bind_int64(st, 3, since_ms);
	return walk_records(s, st, what, cb, ctx);
}

int store_uplink_summary(store *s, const char *imei, struct store_uplink_summary *u)
{
	*u = (struct store_uplink_summary){ .last_arrival_ms = STORE_NONE, .last_ts_ms = STORE_NONE,
					    .io_signal = -1, .io_ext_mv = -1, .io_gnss = -1,
					    .io_ext_mv_before = -1, .bytes_used = -1 };
	/* Arrival decides "alive" (a late flush arriving now is the link
	 * working now); the device's own time orders the IO values. */
	const char *what = "read uplink records";
	sqlite3_stmt *st = store_prepare(s, what,
					 "SELECT count(*), max(arrival_ms), max(ts_ms) FROM records WHERE imei = ?1");
	if (!st)
		return -1;
	store_bind_text(st, 1, imei);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	u->n_records = sqlite3_column_int(st, 0);
	u->last_arrival_ms = column_or(st, 1, STORE_NONE);
	u->last_ts_ms = column_or(st, 2, STORE_NONE);
	sqlite3_finalize(st);
	what = "read uplink IO values";
	if (!(st = store_prepare(s, what,
				 "SELECT json_extract(io, '$.\"21\"'), json_extract(io, '$.\"66\"'),"
				 " json_extract(io, '$.\"69\"') FROM records WHERE imei = ?1"
				 " ORDER BY ts_ms DESC, id DESC LIMIT 5")))
		return -1;
	store_bind_text(st, 1, imei);
	int rc, row = 0;
	for (; (rc = sqlite3_step(st)) == SQLITE_ROW; row++) {
		if (row == 0) {
			u->io_signal = (int)column_or(st, 0, -1);
			u->io_ext_mv = (int)column_or(st, 1, -1);
			u->io_gnss = (int)column_or(st, 2, -1);
		} else {
			u->io_ext_mv_before = (int)column_or(st, 1, -1);
		}
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	what = "read uplink usage";
	if (!(st = store_prepare(s, what,
				 "SELECT sum(bytes_up + bytes_down), max(updated_at) FROM uplink_usage WHERE imei = ?1")))
		return -1;
	store_bind_text(st, 1, imei);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	u->bytes_used = column_or(st, 0, -1);
	snprintf(u->last_login, sizeof u->last_login, "%s",
		 store_column_text(st, 1) ? store_column_text(st, 1) : "");
	sqlite3_finalize(st);
	return 0;
fail:
	store_fail_db(s, what);
	sqlite3_finalize(st);
	return -1;
}

/* ---- writing: the ingest's kept statements ---- */

enum { W_INSERT, W_NEWEST, W_USAGE_UPD, W_USAGE_INS, W_EVENT_UPD, W_COUNT };

static const char *const writer_sql[W_COUNT] = {
	[W_INSERT] =
		"INSERT INTO records (run_id, imei, ts_device, ts_ms, arrival, arrival_ms, priority,"
		" lat_e7, lon_e7, altitude, angle, satellites, speed, event_io, io, late,"
		" out_of_order, packet_seq, content_hash)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
		" ?17, ?18, ?19)"
		" ON CONFLICT (coalesce(run_id, 0), imei, ts_ms, content_hash) DO NOTHING",
	[W_NEWEST] = "SELECT coalesce(max(ts_ms), 0), coalesce(max(packet_seq), 0) FROM records WHERE imei = ?1",
	/* Deltas, so two servers (or a restarted one) add up instead of
	 * overwriting each other. */
	[W_USAGE_UPD] =
		"UPDATE uplink_usage SET bytes_up = bytes_up + ?3, bytes_down = bytes_down + ?4,"
		" packets = packets + ?5, records = records + ?6, duplicates = duplicates + ?7,"
		" refused_logins = refused_logins + ?8, updated_at = ?9"
		" WHERE run_id IS ?1 AND imei = ?2",
	[W_USAGE_INS] =
		"INSERT INTO uplink_usage (run_id, imei, bytes_up, bytes_down, packets, records,"
		" duplicates, refused_logins, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[W_EVENT_UPD] = "UPDATE events SET detail = ?2 WHERE id = ?1",
};

struct store_records_writer {
	store *s;
	sqlite3 *db;
	sqlite3_stmt *st[W_COUNT];
};

int store_records_writer_open(store *s, store_records_writer **out, char *err, size_t errlen)
{
	*out = NULL;
	store_records_writer *w = calloc(1, sizeof *w);
	if (!w)
		return snprintf(err, errlen, "%s: prepare ingest statements: out of memory", store_path(s)), -1;
	w->s = s;
	w->db = store_db(s);
	/* Kept for the connection's life: a million telemetry rows go through them. */
	for (int i = 0; i < W_COUNT; i++)
		if (sqlite3_prepare_v3(w->db, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &w->st[i], NULL) !=
		    SQLITE_OK) {
			snprintf(err, errlen, "%s: prepare ingest statement %d: %s", store_path(s), i,
				 sqlite3_errmsg(w->db));
			store_records_writer_close(w);
			return -1;
		}
	*out = w;
	return 0;
}

void store_records_writer_close(store_records_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < W_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	free(w);
}

/* Text is bound SQLITE_STATIC (no copy): safe because every call steps,
 * then resets and clears before it returns. */
static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int store_records_newest(store_records_writer *w, const char *imei, int64_t *newest_ms, int64_t *seq)
{
	sqlite3_stmt *st = w->st[W_NEWEST];
	store_bind_text(st, 1, imei);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*newest_ms = sqlite3_column_int64(st, 0);
		*seq = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_ROW)
		store_fail_db(w->s, "read newest record");
	done(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_record_add(store_records_writer *w, const struct store_record *r)
{
	sqlite3_stmt *st = w->st[W_INSERT];
	store_bind_id(st, 1, r->run_id);
	store_bind_text(st, 2, r->imei);
	store_bind_text(st, 3, r->ts_device);
	sqlite3_bind_int64(st, 4, r->ts_ms);
	store_bind_text(st, 5, r->arrival);
	sqlite3_bind_int64(st, 6, r->arrival_ms);
	sqlite3_bind_int(st, 7, r->priority);
	sqlite3_bind_int(st, 8, r->lat_e7);
	sqlite3_bind_int(st, 9, r->lon_e7);
	sqlite3_bind_int(st, 10, r->altitude);
	sqlite3_bind_int(st, 11, r->angle);
	sqlite3_bind_int(st, 12, r->satellites);
	sqlite3_bind_int(st, 13, r->speed);
	sqlite3_bind_int(st, 14, r->event_io);
	store_bind_text(st, 15, r->io);
	sqlite3_bind_int(st, 16, r->late);
	sqlite3_bind_int(st, 17, r->out_of_order);
	sqlite3_bind_int64(st, 18, r->packet_seq);
	sqlite3_bind_int64(st, 19, r->content_hash);
	int rc = sqlite3_step(st);
	/* Read before the reset: ON CONFLICT DO NOTHING changes no row. */
	int changed = sqlite3_changes(w->db);
	if (rc != SQLITE_DONE)
		store_fail_db(w->s, "insert record");
	done(st);
	if (rc != SQLITE_DONE)
		return -1;
	return changed ? 1 : 0;
}

int store_uplink_usage_add(store_records_writer *w, int64_t run_id, const char *imei,
			   const int64_t delta[STORE_USAGE_FIELDS], const char *at)
{
	/* The run's row if there is one, else a new row. */
	for (int pass = 0; pass < 2; pass++) {
		sqlite3_stmt *st = w->st[pass ? W_USAGE_INS : W_USAGE_UPD];
		store_bind_id(st, 1, run_id);
		store_bind_text(st, 2, imei);
		for (int i = 0; i < STORE_USAGE_FIELDS; i++)
			sqlite3_bind_int64(st, 3 + i, delta[i]);
		store_bind_text(st, 9, at);
		int rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			store_fail_db(w->s, "add uplink usage");
		done(st);
		if (rc != SQLITE_DONE)
			return -1;
		if (pass == 0 && sqlite3_changes(w->db) > 0)
			break;
	}
	return 0;
}

int store_event_detail_set(store_records_writer *w, int64_t event_id, const char *detail)
{
	sqlite3_stmt *st = w->st[W_EVENT_UPD];
	sqlite3_bind_int64(st, 1, event_id);
	store_bind_text(st, 2, detail);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		store_fail_db(w->s, "update event detail");
	done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
