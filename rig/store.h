/*
 * store.h - the results store: one SQLite file (default ./trackrig.db).
 *
 * WAL journal and foreign keys on; the schema is versioned through
 * PRAGMA user_version and moved forward by an ordered list of migrations,
 * each run once inside its own transaction. A store written by a newer rig
 * (user_version above what this rig knows) is refused rather than damaged.
 *
 * Every function returns 0 (or a row id > 0) on success and -1 on failure,
 * with a message naming the file and the statement in store_error().
 * Timestamps are text, ISO 8601 UTC with milliseconds
 * ("2026-11-26T08:35:05.123Z"), so they sort and read well in sqlite3.
 */
#ifndef TRACKRIG_STORE_H
#define TRACKRIG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* Opens (creating if needed) and migrates the store at PATH. On failure
 * returns -1, *OUT is NULL and ERR holds the reason.
 * Every open run whose rig is gone (its process on this host has ended: the
 * rig was killed, or the machine went down) is marked 'interrupted' here;
 * what it recorded stays. */
int store_open(const char *path, store **out, char *err, size_t errlen);
/* For commands that only read: PATH must exist and be a store; it is opened
 * SQLITE_OPEN_READONLY and nothing in it changes (no migration, no sweep).
 * Writing calls on such a handle fail, naming the store. */
int store_open_readonly(const char *path, store **out, char *err, size_t errlen);
void store_close(store *s);
/* store_close for a command's end: returns -1 when a write on S had failed
 * (ERR: "results store: a write failed: <first failure>; not everything was
 * recorded"), else 0. The command then exits 3 (infrastructure). */
int store_close_checked(store *s, char *err, size_t errlen);
const char *store_error(const store *s);
const char *store_path(const store *s);

/* The first write on S that failed ("<path>: insert measurement: database
 * disk image is malformed"), or NULL when every write went in. Kept however
 * many calls follow, so a command that carried on can still tell, at its
 * end, that its record is not whole (exit 3). */
const char *store_write_failure(const store *s);
/* For a module writing through store_db() with statements of its own: keeps
 * WHAT ("<what failed>: <why>") as a failed write, unless one came first. */
void store_note_write_failure(store *s, const char *what);

/* How many open runs store_open marked 'interrupted'. */
int store_interrupted_at_open(const store *s);

/* Schema version this rig writes, and the version found in the file. */
int store_schema_latest(void);
int store_schema_version(store *s);

/* Writes the current UTC wall time in the store's format into BUF (>= 25 bytes). */
const char *store_now(char *buf, size_t len);

/* ---- runs ---- */
struct store_run {
	const char *command;   /* "probe", "run power-loss", ... */
	const char *station;   /* rack/station name, may be NULL */
	const char *rack;      /* rack file path, may be NULL */
	const char *operator_; /* who ran it */
	uint64_t seed;
};
/* Records this process (host, pid, start) as the run's owner, so a later
 * open can tell when it is gone. */
int64_t store_run_begin(store *s, const struct store_run *r);
/* OUTCOME: "pass", "fail", "error", "aborted" ("interrupted" is the store's
 * own: a run whose rig died before ending it). */
int store_run_end(store *s, int64_t run_id, const char *outcome);

/* ---- devices: identity as seen on the wire ---- */
struct store_device {
	const char *imei;      /* key; required */
	const char *iccid, *serial, *vendor, *model, *hw_rev, *firmware;
};
/* Inserts or updates the device keyed by IMEI, sets last_seen to now;
 * returns its id. NULL fields leave what was stored. */
int64_t store_device_seen(store *s, const struct store_device *d);

/* ---- steps, measurements, events ---- */
int64_t store_step_begin(store *s, int64_t run_id, const char *slot,
			 const char *scenario, int index, const char *kind,
			 const char *text);
/* OUTCOME: "pass", "fail", "error", "timeout", "aborted". */
int store_step_end(store *s, int64_t step_id, const char *outcome,
		   const char *message);

struct store_measurement {
	int64_t run_id;
	int64_t step_id;       /* 0 when not tied to a step */
	const char *slot;
	const char *name;
	double value;
	const char *unit;
	double low, high;      /* NAN when there is no such limit */
	const char *outcome;   /* "pass", "fail", "marginal", NULL */
	const char *at;        /* NULL: now */
	int64_t result_id;     /* 0 when not tied to a result */
};
int64_t store_measurement_add(store *s, const struct store_measurement *m);

struct store_event {
	int64_t run_id;        /* 0 when outside a run */
	const char *slot;
	const char *imei;
	const char *at;        /* NULL: now */
	const char *source;    /* "console", "supply", "ingest", ... */
	const char *kind;      /* "boot", "power_off", ... */
	const char *detail;
	int64_t result_id;     /* 0 when not tied to a result */
};
int64_t store_event_add(store *s, const struct store_event *e);

/* One reading of a slot's supply during a trace, T_MS after it began. */
struct store_supply_sample {
	int64_t t_ms;
	double volts, amps;
};
/* Adds N samples of SLOT's trace for RESULT_ID (0: none). Call it inside a
 * transaction (store_begin): otherwise each sample commits alone, and a
 * failure part-way leaves part of the trace. Returns 0, or -1 (store_error). */
int store_supply_samples_add(store *s, int64_t run_id, int64_t result_id, const char *slot,
			     const struct store_supply_sample *v, size_t n);

/* ---- results: one outcome per slot and scenario of a run ---- */
struct store_result {
	int64_t run_id;
	const char *slot, *scenario;
	const char *imei, *vendor, *model;   /* device as seen; may be NULL */
	const char *outcome;   /* "pass", "fail", "error", "timeout", "aborted", "skipped" */
	bool marginal;         /* passed, but a measurement sat near a limit */
	const char *message;   /* what failed and where */
	const char *reasons;   /* reason codes seen, comma separated, or NULL */
	const char *started_at, *finished_at; /* on the rack's clock */
};
int64_t store_result_add(store *s, const struct store_result *r);

/* ---- audit trail: every remote action ---- */
struct store_audit {
	int64_t run_id;        /* 0 when outside a run */
	const char *operator_;
	const char *station;
	const char *slot;      /* NULL when addressed by port only */
	const char *port;
	const char *imei;      /* device identity if known */
	const char *command;   /* what was sent */
	const char *result;    /* "ok", or the error text */
};
int64_t store_audit_add(store *s, const struct store_audit *a);

struct store_audit_row {
	int64_t id, run_id;
	const char *at, *operator_, *station, *slot, *port, *imei, *command, *result;
};
/* Calls CB for each audit row, oldest first, filtered by IMEI and by time
 * (rows at or after SINCE, an ISO 8601 prefix such as "2026-11-26" or
 * "2026-11-26T08:00"); NULL filters match all. CB returning non-zero stops
 * the walk. ROW and its strings are valid only during the call: copy what
 * you keep. Returns the number of rows visited, or -1. */
typedef int (*store_audit_cb)(void *ctx, const struct store_audit_row *row);
int store_audit_each(store *s, const char *imei, const char *since,
		     store_audit_cb cb, void *ctx);
/* store_audit_each, narrowed further to one SLOT (its label, e.g. "3") and
 * one RUN_ID; NULL and 0 match all. */
int store_audit_each_in(store *s, const char *imei, const char *since, const char *slot,
			int64_t run_id, store_audit_cb cb, void *ctx);

/* Runs BODY of statements inside one transaction (BEGIN IMMEDIATE ... COMMIT). */
int store_begin(store *s);
int store_commit(store *s);
int store_rollback(store *s);

/* The underlying handle, for reports/ (which may read the store with SQL
 * of its own). In rig/, SQL lives only in the store's files (rig/store*.c,
 * store_*.h): `make check-walls` refuses it anywhere else. */
struct sqlite3 *store_db(store *s);

/* SQLite's own message for the last failed call on S ("database is
 * locked"), without path or statement: for callers that word the error
 * themselves ("store: database is locked"). Read it right after the call
 * that failed. */
const char *store_sqlite_message(store *s);

/* PRAGMA data_version: moves when another connection commits, not on this
 * handle's own writes; a read of the WAL index, no I/O. -1 on failure. */
int store_data_version(store *s);

#endif
