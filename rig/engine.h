/*
 * engine.h - the scenario engine: scenarios run on rack slots in parallel.
 *
 * One thread per slot runs the scenarios one after another on its slot. All
 * waits go through the rig clock (wall or the rack's virtual time) and every
 * device call has a deadline, so a slow, hung or dead slot never delays
 * another. The engine sees a slot only through its drivers (console,
 * supply, relay board): it cannot tell a real slot from a simulated one.
 */
#ifndef TRACKRIG_ENGINE_H
#define TRACKRIG_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "flush.h"
#include "fwserve.h"
#include "gnss.h"
#include "ingest.h"
#include "rack.h"
#include "scenario.h"
#include "store.h"

/* PASS and FAIL are verdicts on the device (so is TIMEOUT: the scenario
 * overran its budget, the device never got there). ERROR is the rig's own
 * trouble (a console port gone, a supply or relay link, the image server, the
 * control socket, the ingest, the store), ABORTED a step not finished at
 * Ctrl-C, SKIPPED a slot in quarantine that was not run at all, or a
 * scenario needing a capability the slot's driver lacks (it says which). */
enum engine_outcome { OUTCOME_PASS, OUTCOME_FAIL, OUTCOME_ERROR, OUTCOME_TIMEOUT, OUTCOME_ABORTED, OUTCOME_SKIPPED };

/* "pass", "fail", ... as the store and reports spell them. */
const char *engine_outcome_name(enum engine_outcome o);

#define ENGINE_MAX_MEASURES 16
#define ENGINE_MAX_EVENTS 32

struct engine_measure {
	char name[SCENARIO_NAME_MAX];
	char unit[16];
	double value, low, high;
	const char *outcome;   /* "pass", "fail", "marginal" */
};

struct engine_event {
	int64_t at;            /* rack clock, ms */
	char kind[24];
	char text[160];
};

/* One slot's result for one scenario. */
struct engine_result {
	int slot;
	const struct scenario *scenario;
	enum engine_outcome outcome;
	bool marginal;
	char message[512];     /* what failed and where: step, line, numbers */
	char reasons[160];     /* reason codes the diagnosis named, comma separated */
	char imei[16], vendor[64], model[64], firmware[49];
	int64_t started, finished; /* rack clock, ms */
	struct engine_measure measures[ENGINE_MAX_MEASURES];
	int n_measures;
	struct engine_event events[ENGINE_MAX_EVENTS];
	int n_events;
	/* The supply read by the scenario's trace steps, ms from the first
	 * (malloc'ed; engine_results_free releases it). */
	struct store_supply_sample *trace;
	int n_trace;
};

struct engine_opts {
	rig_clock *clock;
	store *db;               /* results go here (with run_id); NULL: nowhere */
	int64_t run_id;
	const char *operator_;
	int command_timeout_ms;  /* per device command (rack time); 0: 5000 */
	ingest *ingest;          /* the rig's telemetry server; NULL when no scenario needs it */
	/* The rig's gpsds, every selected slot's NMEA port added to one of them
	 * (a stock gpsd serves at most 4 devices); NULL/0: none. */
	gnss_daemon **gnss;
	int n_gnss;
	const char *ingest_host; /* what trackers are told to connect to */
	const char *db_path;     /* the store file, for reading telemetry back */
	struct fwserve *images;  /* the rig's firmware image server; NULL when no scenario updates */
	FILE *progress;          /* live progress; NULL: none */
	bool progress_tty;       /* redraw one line per slot instead of printing lines */
	/* Called as each slot finishes each scenario (R final), before its
	 * progress line, with the engine's store lock held: the caller commits
	 * R there, so a rig killed later loses nothing that finished. NULL: none. */
	void (*on_result)(void *ctx, const struct engine_result *r);
	void *on_result_ctx;
};

/* Runs SCENARIOS (N_SC of them) on the slots of RACK selected in SEL.
 * Fills RESULTS, an array of n_selected * N_SC entries in slot order, each
 * slot's scenarios in the order given. Returns 0, or -1 when the engine
 * itself could not start (threads). Stops early, leaving slots in the rack's
 * safe state and outcomes ABORTED, once clock_abort() is called. */
int engine_run(const struct rack *rack, const bool *sel, const struct scenario *scenarios, int n_sc,
	       const struct engine_opts *o, struct engine_result *results);

/* Frees what engine_run allocated inside N results (not the array). */
void engine_results_free(struct engine_result *results, int n);

#endif
