/*
 * rollout.h - a staged firmware rollout over a cohort of rack slots
 * (hawkBit's model), with every bit of state in the results store.
 *
 * A rollout is created with its cohort split into stages (cumulative counts
 * or percentages: "1,10%,50%,100%"). Stages run one after another. Before a
 * device is told to update it passes health gates; then it is updated and
 * followed to an outcome. After each stage a success threshold must be met
 * to go on; a failure threshold pauses the rollout as soon as it is reached.
 * A stop (from another terminal through the store, a stop file, or SIGINT)
 * means no device STARTS an update any more; devices already installing are
 * followed to their end and recorded as such.
 *
 *   rollout:  created -> running -> paused | stopped | finished
 *             (paused -> running on resume, paused -> stopped on stop)
 *   device:   waiting -> gated_out | updating | skipped_after_stop
 *             updating -> committed | rolled_back | rejected | failed
 *
 * Everything is written as it happens, so a rig that dies mid-rollout leaves
 * a truthful record, and rollout_run() on a rollout found "running" first
 * asks each device left "updating" where it ended (ops->recover).
 *
 * Devices are reached through struct rollout_device_ops: the real one talks
 * to tracker consoles (rollout_console_ops), tests pass a fake.
 */
#ifndef TRACKRIG_ROLLOUT_H
#define TRACKRIG_ROLLOUT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define ROLLOUT_MAX_STAGES 16
#define ROLLOUT_DETAIL_MAX 256

/* What a device's update has come to, as the device layer sees it. */
enum rollout_outcome {
	RO_OUT_PENDING = 0,     /* still downloading / writing / on trial */
	RO_OUT_COMMITTED,       /* running the new image, committed */
	RO_OUT_ROLLED_BACK,     /* back on the old bank */
	RO_OUT_REJECTED,        /* refused the image before writing (hash, signature, model) */
	RO_OUT_FAILED,          /* unreachable, error answer, or no outcome */
	RO_OUT_NOT_STARTED,     /* recover(): the device never got the command */
};

/* The device layer. CTX is the layer's own; SLOT is the rack slot id.
 * Details are short human text ("gnss never came up", "DI1:1 ignition on"). */
struct rollout_device_ops {
	/* Health gates before the update. 0: pass (IMEI filled when known).
	 * -1: gated out; GATE names the gate ("supply", "storage",
	 * "connectivity", "in_service", "model", "console"), DETAIL says why. */
	int (*gate)(void *ctx, int slot, char *imei, size_t imeilen, char *gate, size_t gatelen,
		    char *detail, size_t len);
	/* Tells the device to update from URL. 0: accepted (updating), or an
	 * outcome (RO_OUT_REJECTED / RO_OUT_FAILED) with DETAIL. */
	int (*start)(void *ctx, int slot, const char *url, char *detail, size_t len);
	/* Where the update of SLOT stands now: an enum rollout_outcome. */
	int (*poll)(void *ctx, int slot, char *detail, size_t len);
	/* After a rig restart: where the update of SLOT ended, from the
	 * device's own account (its update state). Any outcome, NOT_STARTED included. */
	int (*recover)(void *ctx, int slot, char *detail, size_t len);
	/* The clock devices run on: Unix ms, and a wait of MS on it (returns
	 * -1 when the clock was aborted). */
	int64_t (*now_ms)(void *ctx);
	int (*sleep_ms)(void *ctx, int ms);
	/* May be NULL. A wait of at most MS on the same clock that ends as
	 * soon as FD is readable: 1 readable, 0 the time passed, -1 aborted.
	 * With it, a stop that lands while devices are installing is seen at
	 * once instead of after the device poll's sleep. */
	int (*wait_fd)(void *ctx, int fd, int ms);
};

/* A parsed stage list: cumulative targets, each a count or a percentage. */
struct rollout_stages {
	int n;
	int value[ROLLOUT_MAX_STAGES];
	bool percent[ROLLOUT_MAX_STAGES];
};

/* Parses "1,10%,50%,100%". Returns 0 or -1 with the reason in ERR. */
int rollout_stages_parse(const char *spec, struct rollout_stages *st, char *err, size_t errlen);

/* Sizes of each stage over a cohort of N devices into SIZES (st->n entries):
 * cumulative target = count, or ceil(pct * N / 100), at least one more than
 * the stage before while devices remain, at most N. Returns the number of
 * devices covered (N when the last stage is 100%). */
int rollout_stage_sizes(const struct rollout_stages *st, int n, int *sizes);

/* A threshold: "1" (count) or "20%" (of the stage's attempted devices). */
struct rollout_threshold {
	int value;
	bool percent;
};
int rollout_threshold_parse(const char *s, struct rollout_threshold *t, char *err, size_t errlen);

/* "30m", "90s", "1500ms", "2h", "1h30m" into ms: the rig's one duration
 * grammar (duration.h; a bare number is seconds), above zero, at most 7 days. */
int rollout_duration_parse(const char *s, int64_t *ms);

struct rollout_spec {
	const char *image;      /* path, as given */
	const char *version;    /* from the image header */
	const char *model;
	const char *stages;     /* the spec as given */
	const char *cohort;     /* "KEY=VALUE" or "all" */
	const char *station;
	int success_pct;        /* a stage must commit at least this % of its attempted devices */
	struct rollout_threshold max_failures; /* reached: pause */
	int64_t device_timeout_ms;
	const int *slots;       /* cohort slot ids, in rollout order */
	const char *const *imeis; /* expected IMEIs or NULL entries; may be NULL */
	int n_slots;
};

/* Creates the rollout (state "created") with its devices split into stages.
 * Returns its id (> 0), or -1 with the reason in ERR. */
int64_t rollout_create(store *db, const struct rollout_spec *spec, const char *operator_, char *err,
		       size_t errlen);

struct rollout_opts {
	const char *url;             /* what devices are told to fetch */
	const char *operator_;       /* for the audit trail */
	const char *station;
	const char *stop_file;       /* its existence means stop; may be NULL */
	volatile sig_atomic_t *interrupt; /* 1: stop (SIGINT); 2: leave now; may be NULL */
	int db_poll_ms;              /* wall ms between reads of the control request (250) */
	bool db_poll_every_step;     /* also check the store's data_version at every step (cheap) */
	int device_poll_ms;          /* device-clock ms between polls of updating devices (1000) */
	bool wait_when_paused;       /* true: wait for resume/stop; false: return "paused" */
	int pause_wait_poll_ms;      /* wall ms between reads while paused (250) */
	/* Called (may be NULL) on every state change, for the terminal. */
	void (*progress)(void *ctx, const char *line);
	void *progress_ctx;
	/* For the benchmark: wall time (CLOCK_MONOTONIC ns) the stop was seen
	 * and of the last device start; filled when not NULL. */
	int64_t *stop_seen_ns, *last_start_ns;
};

/* Runs (or resumes) rollout ID against OPS until it is finished, stopped,
 * or paused (when !wait_when_paused). A rollout found "running" (its rig
 * died) first recovers devices left "updating". Returns 0 with the final
 * state in STATE (>= 16 bytes), or -1 with the reason in ERR. */
int rollout_run(store *db, int64_t id, const struct rollout_device_ops *ops, void *ops_ctx,
		const struct rollout_opts *o, char *state, size_t statelen, char *err, size_t errlen);

/* Records a control request ("pause", "resume", "stop") for rollout ID
 * (0: the newest), audited. The running rollout acts on it. When no rig is
 * running the rollout and no device is updating, a stop or pause takes
 * effect at once (returns 1). Returns 0 (left for the runner), 1 (done), or
 * -1 with the reason (no such rollout, already finished) in ERR. */
int rollout_request(store *db, int64_t id, const char *what, const char *operator_, char *err,
		    size_t errlen);

/* The newest rollout's id, 0 when there is none, -1 on error. */
int64_t rollout_latest(store *db);

/* Prints rollout ID (0: newest) to OUT: text, or JSON when JSON. Returns 0,
 * or -1 with the reason in ERR. */
int rollout_status(store *db, int64_t id, bool json, FILE *out, char *err, size_t errlen);

/* Counts of devices of rollout ID by state, for tests and summaries. */
struct rollout_counts {
	int waiting, gated_out, updating, committed, rolled_back, rejected, failed, skipped_after_stop;
	int in_flight_at_stop;       /* devices that were installing when the stop came */
};
int rollout_counts(store *db, int64_t id, struct rollout_counts *c);

/* The real device layer: tracker consoles of a rack, supplies for the
 * supply gate, and the rig clock. */
struct rack;
struct rig_clock;
struct rollout_console;
int rollout_console_open(const struct rack *rack, struct rig_clock *clock, const char *image_model,
			 const char *image_version, uint64_t image_size, double min_volts,
			 struct rollout_console **out, char *err, size_t errlen);
void rollout_console_close(struct rollout_console *rc);
extern const struct rollout_device_ops rollout_console_ops;

#endif
