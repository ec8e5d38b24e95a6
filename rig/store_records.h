/*
 * store_records.h - the telemetry the rig's ingest keeps: records as the
 * devices sent them (table records, the io column a JSON object
 * {"69":1,...} read with SQLite's json functions) and each device's use of
 * its link (uplink_usage).
 *
 * Readers (the engine's checks, diagnose) and the one writer (the ingest,
 * on a connection of its own) are here; see docs/results-store.md.
 */
#ifndef TRACKRIG_STORE_RECORDS_H
#define TRACKRIG_STORE_RECORDS_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

/* A time or count the store does not have (no such row, or SQL NULL). */
#define STORE_NONE INT64_MIN

/* ---- reading ---- */

/* One record as the checks read it. IO 69 (GNSS status: 0 off, 1 fix,
 * 2 no fix, 3 sleep) is -1 when the record does not carry it. */
struct store_record_row {
	int64_t ts_ms;          /* the device's time */
	int64_t arrival_ms;     /* when the ingest stored it */
	bool late;              /* arrived later than the ingest's late limit */
	int64_t lat_e7, lon_e7;
	int64_t io_gnss;
};
/* Returns non-zero to stop the walk. ROW lives only during the call. */
typedef int (*store_record_cb)(void *ctx, const struct store_record_row *row);

/* The device's time of IMEI's newest record in RUN_ID made before
 * BEFORE_MS (the device's time) into *TS_MS. 1 found, 0 none, -1 failed. */
int store_record_latest_before(store *s, int64_t run_id, const char *imei, int64_t before_ms, int64_t *ts_ms);

/* IMEI's records in RUN_ID made strictly between AFTER_MS and BEFORE_MS
 * (the device's time), oldest first; records whose io is not valid JSON
 * are left out. Returns the number visited, or -1. */
int store_records_during(store *s, int64_t run_id, const char *imei, int64_t after_ms, int64_t before_ms,
			 store_record_cb cb, void *ctx);

/* IMEI's records in RUN_ID that arrived at or after SINCE_MS, in the order
 * they were stored. Returns the number visited, or -1. */
int store_records_arrived_since(store *s, int64_t run_id, const char *imei, int64_t since_ms, store_record_cb cb,
				void *ctx);

/* What the store holds of IMEI's uplink over every run: for `rig diagnose`. */
struct store_uplink_summary {
	int n_records;
	int64_t last_arrival_ms;  /* arrival of the newest record; STORE_NONE */
	int64_t last_ts_ms;       /* the device's time of its newest record; STORE_NONE */
	/* From the newest record by the device's time: IO 21 (GSM signal),
	 * 66 (external mV), 69 (GNSS); -1 when absent. */
	int io_signal, io_ext_mv, io_gnss;
	int io_ext_mv_before;     /* IO 66 four records earlier (or the oldest of fewer); -1 */
	int64_t bytes_used;       /* up + down over the link; -1 without a usage row */
	char last_login[40];      /* when the usage row was last updated; "" without one */
};
/* Returns 0, or -1 (store_error(), store_sqlite_message()). */
int store_uplink_summary(store *s, const char *imei, struct store_uplink_summary *u);

/* ---- writing: the ingest's connection ---- */

/* The ingest's kept statements on its own store handle. */
typedef struct store_records_writer store_records_writer;

/* Prepares the writer's statements on S (which must stay open until
 * store_records_writer_close). -1 with "<path>: prepare ingest statement
 * N: <why>" in ERR. */
int store_records_writer_open(store *s, store_records_writer **out, char *err, size_t errlen);
void store_records_writer_close(store_records_writer *w);

/* IMEI's newest device time and packet sequence over every run (0 and 0
 * without a record). 0, or -1 (store_sqlite_message). */
int store_records_newest(store_records_writer *w, const char *imei, int64_t *newest_ms, int64_t *seq);

struct store_record {
	int64_t run_id;               /* 0: none */
	const char *imei;
	const char *ts_device;        /* ISO 8601 of ts_ms */
	int64_t ts_ms;
	const char *arrival;          /* ISO 8601 of arrival_ms */
	int64_t arrival_ms;
	int priority, lat_e7, lon_e7, altitude, angle, satellites, speed, event_io;
	const char *io;               /* {"21":3,"66":24079} */
	bool late, out_of_order;
	int64_t packet_seq;
	int64_t content_hash;         /* two records alike in IMEI and time but not in content are both kept */
};
/* 1 stored, 0 a duplicate (same run, IMEI, time and content: not stored
 * again), -1 failed (store_sqlite_message). */
int store_record_add(store_records_writer *w, const struct store_record *r);

/* The use of IMEI's link in RUN_ID, added as deltas so two servers (or a
 * restarted one) add up instead of overwriting: bytes up, bytes down,
 * packets, records, duplicates, refused logins. Creates the row on first
 * use. 0, or -1 (store_sqlite_message). */
enum { STORE_USAGE_FIELDS = 6 };
int store_uplink_usage_add(store_records_writer *w, int64_t run_id, const char *imei,
			   const int64_t delta[STORE_USAGE_FIELDS], const char *at);

/* Rewrites the detail of event EVENT_ID (the ingest's counted events). */
int store_event_detail_set(store_records_writer *w, int64_t event_id, const char *detail);

#endif
