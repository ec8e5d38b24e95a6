/*
 * runner.h - running scenarios on a rack: what `rig run` and `rig nightly`
 * share (rack and slot selection, clock, ingest, engine, store, reports).
 */
#ifndef TRACKRIG_RUNNER_H
#define TRACKRIG_RUNNER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"

struct run_opts {
	const char *command;     /* "run", "nightly": messages and the run's record */
	const char *rack, *slots, *tag, *db, *junit, *json, *html, *trends, *operator_;
	const char *images;      /* firmware image directory (NULL: the default) */
	unsigned seed;
	int timeout_ms;
	bool health_gate;        /* check each slot first; quarantine those that fail */
	int64_t run_id;          /* out: the run recorded (0 when none) */
};

/* SCENARIO as a file, or NAME.yaml in ./scenarios, beside a build tree's rig
 * or an installed one. Returns a path (ARG itself or BUF). */
const char *rig_find_scenario(const char *arg, char buf[PATH_MAX]);

/* Loads the suite NAMES (N of them) for a run on RACK_FILE into SCS, which
 * holds N. The first REQUIRED must load; a later one that is not shipped is
 * skipped and one that does not load is left out with a line on stderr.
 * Scenarios needing an injected fault are left out on a real rack, said on
 * stderr under COMMAND. Returns how many loaded, or -1 with ERR (the rack
 * file or a required scenario) and nothing left to free. */
int rig_load_suite(const char *command, const char *rack_file, const char *const *names, int n,
		   int required, struct scenario *scs, char *err, size_t errlen);

/* The firmware image directory: --images, $TRACKRIG_IMAGES, or the build
 * tree's fixtures beside the rig. */
const char *rig_image_dir(const struct run_opts *o, char *buf, size_t len);

/* Runs SCS on the slots of RACK_FILE O selects. Returns an enum rig_exit. */
/* Checks every output path of O (--junit, --json, --html, --trends) can be
 * written, before anything runs. Returns 0, or RIG_EXIT_USAGE after a line on
 * stderr naming the option, the path and why. */
int rig_check_outputs(const struct run_opts *o);

int rig_run_rack(const char *rack_file, struct scenario *scs, int n_sc, struct run_opts *o);

#endif
