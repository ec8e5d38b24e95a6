/*
 * store_rollout.h - staged firmware rollouts in the store (tables rollouts
 * and rollout_devices; rig/rollout.c drives them, docs/rollout.md).
 *
 * Every state change is written as it happens, so a rig that dies
 * mid-rollout can be resumed, and another terminal's request (pause,
 * resume, stop) reaches the runner through the store. Functions return 0
 * (or a row id, a count, 1 found / 0 none) on success and -1 on failure,
 * with the reason in store_error() and SQLite's own in
 * store_sqlite_message(). Times are the store's ISO 8601 text.
 */
#ifndef TRACKRIG_STORE_ROLLOUT_H
#define TRACKRIG_STORE_ROLLOUT_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- rollouts ---- */

struct store_rollout_new {
	const char *image, *version, *model, *stages, *cohort;
	const char *station;          /* may be NULL */
	const char *operator_;
	const char *created_at;
	int success_pct;
	const char *max_failures;     /* "1" or "20%" */
	int64_t device_timeout_ms;
	int n_stages;
};
/* A new rollout in state 'created': its id, or -1. */
int64_t store_rollout_add(store *s, const struct store_rollout_new *r);

/* The newest rollout's id; 0 when there is none, -1 on failure. */
int64_t store_rollout_latest(store *s);

/* A rollout as stored; NULL strings are SQL NULL. */
struct store_rollout_row {
	int64_t id;
	const char *image, *version, *model, *stages, *cohort, *state;
	const char *created_at, *updated_at, *reason, *station, *operator_;
	int success_pct;
	const char *max_failures;
	int64_t device_timeout_ms;
	int n_stages, stage;          /* stage: 1-based, 0 before the first */
	const char *request, *requested_at; /* a pending pause, resume or stop */
	int64_t runner_pid;           /* 0: no rig runs it */
	const char *stopped_at;
};
/* CB with rollout ID; ROW and its strings live only during the call.
 * 1 when it exists, 0 when not, -1 on failure. */
typedef void (*store_rollout_cb)(void *ctx, const struct store_rollout_row *row);
int store_rollout_get(store *s, int64_t id, store_rollout_cb cb, void *ctx);

/* STATE, REASON (NULL keeps the one stored) and STAGE at AT; stopped_at
 * too when STATE is "stopped". */
int store_rollout_set_state(store *s, int64_t id, const char *state, const char *reason, const char *at,
			    int stage);
/* The process that runs rollout ID (0: none). */
int store_rollout_set_runner(store *s, int64_t id, int64_t pid);

/* Leaves a request ("pause", "resume", "stop") for the runner. */
int store_rollout_request_set(store *s, int64_t id, const char *what, const char *at);
/* Takes the pending request of ID, if any: 1 with it in WHAT and when it
 * was made in AT ("?" when not known), and it is cleared; 0 when none. */
int store_rollout_request_take(store *s, int64_t id, char *what, size_t what_len, char *at, size_t at_len);
/* A request that takes effect with no rig running the rollout: STATE and
 * REASON set, the request cleared, stopped_at when STATE is "stopped". */
int store_rollout_request_apply(store *s, int64_t id, const char *state, const char *reason, const char *at);

/* ---- the devices of a rollout ---- */

/* Device SLOT of rollout ID, 'waiting' in STAGE, started SEQ-th. */
int store_rollout_device_add(store *s, int64_t id, int slot, const char *imei, int stage, int seq);

struct store_rollout_device_change {
	const char *state;
	const char *imei;             /* NULL or "": keep the stored one */
	const char *gate;             /* NULL: keep the stored one */
	const char *detail;
	const char *at;
	bool started, finished;       /* set started_at / finished_at to AT */
};
int store_rollout_device_set(store *s, int64_t id, int slot, const struct store_rollout_device_change *c);
/* Marks SLOT as installing when the rollout was stopped. */
int store_rollout_device_in_flight(store *s, int64_t id, int slot);
/* SLOT back to 'waiting' (never started) with DETAIL. */
int store_rollout_device_rewait(store *s, int64_t id, int slot, const char *detail);
/* Every device still 'waiting' becomes 'skipped_after_stop'. */
int store_rollout_skip_waiting(store *s, int64_t id);

/* The next waiting device of STAGE by its order of starting: its slot (and
 * IMEI, "" when not known), 0 when none, -1 on failure. */
int store_rollout_next_waiting(store *s, int64_t id, int stage, char *imei, size_t len);
/* How many devices of ID are in STATE, or -1. */
int store_rollout_device_count(store *s, int64_t id, const char *state);

/* CB once per device state of ID in STAGE (0: every stage): how many
 * devices, and how many of them were installing at a stop. 0 or -1. */
typedef void (*store_rollout_count_cb)(void *ctx, const char *state, int n, int in_flight_at_stop);
int store_rollout_state_counts(store *s, int64_t id, int stage, store_rollout_count_cb cb, void *ctx);

struct store_rollout_device_row {
	int slot, stage;
	const char *state, *imei, *gate, *started_at, *finished_at, *detail; /* NULL: SQL NULL */
	bool in_flight_at_stop;
};
/* CB for each device of ID in STATE (NULL: all), by order of starting.
 * Returns how many, or -1. */
typedef void (*store_rollout_device_cb)(void *ctx, const struct store_rollout_device_row *row);
int store_rollout_devices_each(store *s, int64_t id, const char *state, store_rollout_device_cb cb, void *ctx);

#endif
