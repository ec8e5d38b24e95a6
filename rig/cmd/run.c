/*
 * cmd/run.c - `rig run`: scenarios on every selected slot, in parallel.
 */
#include "cli.h"
#include "clock.h"
#include "embedded.h"
#include "engine.h"
#include "ingest.h"
#include "rack.h"
#include "html.h"
#include "report.h"
#include "runner.h"
#include "slothealth.h"
#include "scenario.h"
#include "store.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_run_usage[] =
	"usage: rig run SCENARIO... [options]\n\n"
	"Runs each scenario on every selected slot, all slots in parallel, and records\n"
	"every step, measurement and event. SCENARIO is a file or a name in scenarios/\n"
	"(power-loss or scenarios/power-loss.yaml). With no --rack, a simulated 8-slot\n"
	"rack (reference and defective units mixed) is started on virtual time.\n\n"
	"options:\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --slots LIST       slots: 3, 1-4,7 or all (default all)\n"
	"  --tag KEY=VALUE    only slots with this tag (a cohort: model, region, customer)\n"
	"  --db FILE          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --junit FILE       JUnit XML for a CI system\n"
	"  --json FILE        JSON test record of the run\n"
	"  --html FILE        printable HTML report of the run, with charts\n"
	"  --images DIR       firmware images for update steps (default build/fixtures/fw,\n"
	"                     or $TRACKRIG_IMAGES)\n"
	"  --seed N           seed of the simulated rack (default 1)\n"
	"  --timeout MS       deadline per device command, in rack time (default 5000)\n"
	"  --operator NAME    who runs this, for the audit trail (default $USER)\n\n"
	"Every output file (--junit, --json, --html) is checked writable before the run\n"
	"starts: a missing folder, a read-only one or a directory is exit 2 at once.\n"
	"Ctrl-C stops cleanly: no new step starts, each slot is left in the rack's safe\n"
	"state, outcomes are ABORTED, and everything recorded stays recorded. Each slot's\n"
	"result is committed as it finishes: a killed rig keeps what it printed as finished,\n"
	"and the next rig marks its run interrupted.\n\n"
	"exit: 0 all passed, 1 a check failed, 2 usage, rack or scenario file error,\n"
	"      3 infrastructure error (a slot's console, supply or relay unreachable, or a\n"
	"        write to the results store failed: the run stops, nothing says recorded)\n";

#define MAX_SCENARIOS 16


/* SCENARIO as given, else NAME.yaml in ./scenarios, beside a build tree's
 * rig (build/../scenarios) or an installed one (PREFIX/share/trackrig). */
const char *rig_find_scenario(const char *arg, char buf[PATH_MAX])
{
	if (access(arg, R_OK) == 0 || strchr(arg, '/'))
		return arg;
	char bin[PATH_MAX / 2]; /* leaves room for the rest of the path */
	cli_sibling_program("..", bin, sizeof bin);
	const char *const dirs[] = { "scenarios", "/scenarios", "/share/trackrig/scenarios" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s%s/%.200s.yaml", i ? bin : "", dirs[i], arg);
		if (access(path, R_OK) == 0 && realpath(path, buf))
			return buf;
	}
	return arg;
}

int rig_load_suite(const char *command, const char *rack_file, const char *const *names, int n,
		   int required, struct scenario *scs, char *err, size_t errlen)
{
	struct rack rack;
	if (rack_load(rack_file, &rack, err, errlen)) {
		rack_free(&rack);
		return -1;
	}
	bool simulated = *rack.control;
	rack_free(&rack);
	int got = 0;
	for (int i = 0; i < n; i++) {
		char buf[PATH_MAX], why[768];
		const char *path = rig_find_scenario(names[i], buf);
		if (i >= required && access(path, R_OK) != 0)
			continue; /* optional scenario not shipped */
		if (scenario_load(path, &scs[got], why, sizeof why)) {
			scenario_free(&scs[got]);
			if (i >= required) {
				fprintf(stderr, "rig %s: %s left out: %s\n", command, names[i], why);
				continue;
			}
			for (int k = 0; k < got; k++)
				scenario_free(&scs[k]);
			snprintf(err, errlen, "%s", why);
			return -1;
		}
		bool needs_fault = false;
		for (int k = 0; k < scs[got].n_requires; k++)
			needs_fault |= strncmp(scs[got].requires[k], "fault:", 6) == 0;
		if (needs_fault && !simulated) {
			fprintf(stderr, "rig %s: %s left out: its fault can only be injected on a simulated rack\n",
				command, scs[got].name);
			scenario_free(&scs[got]);
			continue;
		}
		got++;
	}
	return got;
}

/* ---- Ctrl-C: a thread that turns the signal into clock_abort() ---- */

struct stopper {
	sigset_t set;
	rig_clock *clock;
	volatile int got;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;
	int sig;
	if (sigwait(&s->set, &sig) == 0 && sig != SIGUSR2) {
		s->got = sig;
		fprintf(stderr, "\nrig run: %s: stopping; slots go to their safe state\n", strsignal(sig));
		clock_abort(s->clock);
	}
	return NULL;
}

/* ---- recording and summary ---- */

/* Writes R with its measurements, events and supply trace; returns 0, or -1
 * at the first write that fails (store_error says which). */
static int record(store *db, int64_t run_id, rig_clock *clk, const struct engine_result *r)
{
	char slot[12], start[32], end[32];
	snprintf(slot, sizeof slot, "%d", r->slot);
	struct store_result row = {
		.run_id = run_id, .slot = slot, .scenario = r->scenario->name, .imei = *r->imei ? r->imei : NULL,
		.vendor = r->vendor, .model = r->model, .outcome = engine_outcome_name(r->outcome),
		.marginal = r->marginal, .message = *r->message ? r->message : NULL,
		.reasons = *r->reasons ? r->reasons : NULL,
		.started_at = clock_iso(clk, r->started, start, sizeof start),
		.finished_at = clock_iso(clk, r->finished, end, sizeof end),
	};
	int64_t id = store_result_add(db, &row);
	if (id < 0)
		return -1;
	for (int i = 0; i < r->n_measures; i++) {
		const struct engine_measure *m = &r->measures[i];
		struct store_measurement sm = { .run_id = run_id, .slot = slot, .name = m->name, .value = m->value,
						.unit = m->unit, .low = m->low, .high = m->high, .outcome = m->outcome,
						.at = end, .result_id = id };
		if (store_measurement_add(db, &sm) < 0)
			return -1;
	}
	for (int i = 0; i < r->n_events; i++) {
		char at[32];
		struct store_event ev = { .run_id = run_id, .slot = slot, .imei = row.imei,
					  .at = clock_iso(clk, r->events[i].at, at, sizeof at), .source = "console",
					  .kind = r->events[i].kind, .detail = r->events[i].text, .result_id = id };
		if (store_event_add(db, &ev) < 0)
			return -1;
	}
	if (r->n_trace && store_supply_samples_add(db, run_id, id, slot, r->trace, (size_t)r->n_trace))
		return -1;
	return 0;
}

/* Commits each result as its slot finishes it (engine_opts.on_result, under
 * the engine's store lock): one transaction per slot and scenario, so a rig
 * killed later loses nothing that had finished. The first write that fails
 * stops the run: a store that cannot record makes every further step moot. */
struct recorder {
	store *db;
	int64_t run_id;
	rig_clock *clk;
	const char *command;
	bool failed;
};

static void record_finished(void *ctx, const struct engine_result *r)
{
	struct recorder *rec = ctx;
	if (rec->failed)
		return;
	if (store_begin(rec->db) == 0) {
		if (record(rec->db, rec->run_id, rec->clk, r) == 0 && store_commit(rec->db) == 0 &&
		    !store_write_failure(rec->db))
			return;
	}
	rec->failed = true;
	fprintf(stderr, "rig %s: results store: %s; slot %d %s not recorded, stopping the run\n", rec->command,
		store_write_failure(rec->db) ? store_write_failure(rec->db) : store_error(rec->db), r->slot,
		r->scenario->name);
	store_rollback(rec->db);
	clock_abort(rec->clk);
}

/* The run's results (RES, N), then the slots set aside (SKIPPED, N_SKIPPED). */
static void summary(const struct engine_result *res, int n, const struct engine_result *skipped, int n_skipped)
{
	/* 14: the longest shipped scenario name (ota-in-service) */
	printf("\n%-4s  %-14s  %-22s  %-9s  %s\n", "SLOT", "SCENARIO", "DEVICE", "OUTCOME", "MEASUREMENTS / WHY");
	for (int i = 0; i < n + n_skipped; i++) {
		const struct engine_result *r = i < n ? &res[i] : &skipped[i - n];
		char device[136], outcome[16], meas[640] = "";
		snprintf(device, sizeof device, "%s %s", r->vendor, r->model);
		snprintf(outcome, sizeof outcome, "%s%s", engine_outcome_name(r->outcome), r->marginal ? "*" : "");
		for (int k = 0; outcome[k]; k++)
			outcome[k] = (char)toupper((unsigned char)outcome[k]);
		for (int m = 0; m < r->n_measures; m++) {
			size_t len = strlen(meas);
			snprintf(meas + len, sizeof meas - len, "%s%s=%.3g %s", m ? ", " : "", r->measures[m].name,
				 r->measures[m].value, r->measures[m].unit);
		}
		printf("%-4d  %-14.14s  %-22.22s  %-9s  %s\n", r->slot, r->scenario->name, device, outcome, meas);
		if (r->outcome != OUTCOME_PASS)
			printf("      %s\n", r->message);
		if (*r->reasons)
			printf("      diagnosed during the run: %s\n", r->reasons);
	}
	bool any_marginal = false;
	for (int i = 0; i < n; i++)
		any_marginal |= res[i].marginal;
	if (any_marginal)
		printf("* marginal: passed, with a measurement near its limit\n");
	int count[OUTCOME_SKIPPED + 1] = { 0 };
	for (int i = 0; i < n + n_skipped; i++)
		count[i < n ? res[i].outcome : skipped[i - n].outcome]++;
	printf("device verdicts: %d pass, %d fail, %d timeout; the rig's: %d error, %d aborted; %d skipped (quarantine)\n",
	       count[OUTCOME_PASS], count[OUTCOME_FAIL], count[OUTCOME_TIMEOUT], count[OUTCOME_ERROR],
	       count[OUTCOME_ABORTED], count[OUTCOME_SKIPPED]);
}

/* 3 when the rig had trouble (ERROR), else 1 when a check failed (FAIL, or
 * TIMEOUT: the device never got through its scenario) or the run was
 * stopped, else 0. Skipped slots were said before the run and leave it as is. */
static int exit_code(const struct engine_result *res, int n)
{
	int code = RIG_EXIT_OK;
	for (int i = 0; i < n; i++) {
		if (res[i].outcome == OUTCOME_ERROR)
			code = RIG_EXIT_INFRA;
		else if ((res[i].outcome == OUTCOME_FAIL || res[i].outcome == OUTCOME_TIMEOUT ||
			  res[i].outcome == OUTCOME_ABORTED) && code == RIG_EXIT_OK)
			code = RIG_EXIT_FAIL;
	}
	return code;
}

static int select_slots(const struct rack *rack, const struct run_opts *o, bool *sel)
{
	char err[512];
	if (rack_select(rack, o->slots ? o->slots : "all", sel, err, sizeof err) < 0)
		return cli_fail(RIG_EXIT_USAGE, o->command, "%s", err);
	if (o->tag) {
		const char *eq = strchr(o->tag, '=');
		if (!eq || eq == o->tag)
			return cli_fail(RIG_EXIT_USAGE, o->command, "--tag '%s': expected KEY=VALUE", o->tag);
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(eq - o->tag), o->tag);
		int n = 0;
		for (int i = 0; i < rack->n_slots; i++) {
			const char *v = rack_tag(&rack->slots[i], key);
			sel[i] = sel[i] && v && strcmp(v, eq + 1) == 0;
			n += sel[i];
		}
		if (n == 0)
			return cli_fail(RIG_EXIT_USAGE, o->command, "no slot of %s has tag %s", rack->file, o->tag);
	}
	return 0;
}

const char *rig_image_dir(const struct run_opts *o, char *buf, size_t len)
{
	const char *env = getenv("TRACKRIG_IMAGES");
	if (o->images)
		snprintf(buf, len, "%s", o->images);
	else if (env && *env)
		snprintf(buf, len, "%s", env);
	else
		cli_sibling_program("fixtures/fw", buf, len); /* a build tree: build/fixtures/fw */
	return buf;
}

/* A quarantined slot's results: one SKIPPED per scenario, with the reason,
 * recorded at once so that every report shows the slot that did not run. */
static void skip_slot(const struct rack_slot *s, const char *why, const struct scenario *scs, int n_sc,
		      rig_clock *clk, store *db, int64_t run_id, struct engine_result *out)
{
	for (int k = 0; k < n_sc; k++) {
		struct engine_result *r = &out[k];
		*r = (struct engine_result){ .slot = s->id, .scenario = &scs[k], .outcome = OUTCOME_SKIPPED };
		r->started = r->finished = clock_now(clk);
		snprintf(r->vendor, sizeof r->vendor, "%s", s->vendor);
		snprintf(r->model, sizeof r->model, "%s", s->model);
		snprintf(r->imei, sizeof r->imei, "%.15s", s->expect.imei);
		snprintf(r->message, sizeof r->message, "slot %d in quarantine, not run: %.400s; `rig slot reset %d` brings it back",
			 s->id, why, s->id);
		record(db, run_id, clk, r);
	}
}

/* Sets aside slots in quarantine and slots that fail their health check
 * now: a broken fixture is reported (SKIPPED, with why), not as a failing
 * device. SKIPPED gets n_sc results per slot set aside; returns how many
 * results it holds. */
static int health_gate(const struct rack *rack, bool *sel, rig_clock *clk, store *db, int64_t run_id,
		       const char *cmd, const struct scenario *scs, int n_sc, struct engine_result *skipped)
{
	int n = 0;
	for (int i = 0; i < rack->n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack->slots[i];
		char why[600];
		if (slot_quarantined(db, rack->station, s->id, why, sizeof why)) {
			sel[i] = false;
			fprintf(stderr, "rig %s: slot %d is in quarantine, skipped: %s; `rig slot reset %d` brings it back\n",
				cmd, s->id, why, s->id);
			skip_slot(s, why, scs, n_sc, clk, db, run_id, skipped + n);
			n += n_sc;
			continue;
		}
		if (slot_health(s, clk, why, sizeof why) == 0)
			continue;
		sel[i] = false;
		slot_quarantine(db, rack->station, s->id, why, run_id);
		char label[12];
		snprintf(label, sizeof label, "%d", s->id);
		struct store_event ev = { .run_id = run_id, .slot = label, .source = "health", .kind = "quarantined",
					  .detail = why };
		store_event_add(db, &ev);
		fprintf(stderr, "rig %s: slot %d failed its health check and is quarantined: %s\n", cmd, s->id, why);
		skip_slot(s, why, scs, n_sc, clk, db, run_id, skipped + n);
		n += n_sc;
	}
	return n;
}

int rig_check_outputs(const struct run_opts *o)
{
	const struct { const char *opt, *path; } out[] = {
		{ "--junit", o->junit }, { "--json", o->json }, { "--html", o->html }, { "--trends", o->trends },
	};
	char err[1400];
	for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
		if (out[i].path && cli_output_writable(out[i].path, err, sizeof err))
			return cli_fail(RIG_EXIT_USAGE, o->command, "%s %s", out[i].opt, err);
	return 0;
}

int rig_run_rack(const char *rack_file, struct scenario *scs, int n_sc, struct run_opts *o)
{
	struct rack rack;
	char err[768];
	if (rack_load(rack_file, &rack, err, sizeof err)) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, o->command, "%s", err);
	}
	bool *sel = calloc((size_t)rack.n_slots, sizeof *sel);
	int rc = sel ? select_slots(&rack, o, sel) : RIG_EXIT_INFRA;
	rig_clock *clk = NULL;
	store *db = NULL;
	if (rc == 0 && clock_or_warn(&rack, &clk, err, sizeof err, o->command))
		rc = cli_fail(RIG_EXIT_INFRA, o->command, "clock: %s", err);
	if (rc == 0 && store_open(cli_db_path(o->db), &db, err, sizeof err))
		rc = cli_fail(RIG_EXIT_INFRA, o->command, "results store: %s", err);
	if (rc == 0 && store_interrupted_at_open(db))
		fprintf(stderr, "rig %s: %s: %d earlier run%s whose rig is gone marked interrupted (what they "
			"finished stays)\n", o->command, store_path(db), store_interrupted_at_open(db),
			store_interrupted_at_open(db) == 1 ? "" : "s");
	int64_t run_id = -1;
	if (rc == 0) {
		char command[256];
		snprintf(command, sizeof command, "%s", o->command);
		for (int i = 0; i < n_sc; i++)
			snprintf(command + strlen(command), sizeof command - strlen(command), " %s", scs[i].name);
		struct store_run run = { .command = command, .station = rack.station, .rack = rack_file,
					 .operator_ = cli_operator(o->operator_), .seed = o->seed };
		run_id = store_run_begin(db, &run);
		if (run_id < 0)
			rc = cli_fail(RIG_EXIT_INFRA, o->command, "results store: %s", store_error(db));
	}
	if (rc) {
		store_close(db);
		clock_close(clk);
		free(sel);
		rack_free(&rack);
		return rc;
	}
	/* Quarantined slots' SKIPPED results, for the summary. */
	struct engine_result *skipped = calloc((size_t)(rack.n_slots * n_sc), sizeof *skipped);
	int n_skipped = 0;
	if (o->health_gate && skipped)
		n_skipped = health_gate(&rack, sel, clk, db, run_id, o->command, scs, n_sc, skipped);
	o->run_id = run_id;
	int n_sel = 0;
	for (int i = 0; i < rack.n_slots; i++)
		n_sel += sel[i];
	if (n_sel == 0) {
		summary(skipped, n_skipped, NULL, 0);
		free(skipped);
		store_run_end(db, run_id, "error");
		store_close(db);
		clock_close(clk);
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_INFRA, o->command, "no healthy slot left to run on");
	}
	struct engine_result *res = calloc((size_t)(n_sel * n_sc), sizeof *res);

	/* Signals go to the stopper thread only; the slot threads inherit the mask. */
	struct stopper stop = { .clock = clk };
	sigemptyset(&stop.set);
	sigaddset(&stop.set, SIGINT);
	sigaddset(&stop.set, SIGTERM);
	sigaddset(&stop.set, SIGUSR2); /* ends the stopper after a normal run */
	sigset_t old;
	pthread_sigmask(SIG_BLOCK, &stop.set, &old);
	pthread_t stopper;
	pthread_create(&stopper, NULL, stop_thread, &stop);

	fprintf(stderr, "rig %s: %d slot%s of %s on %s time\n", o->command, n_sel, n_sel == 1 ? "" : "s", rack.station,
		clock_is_virtual(clk) ? "virtual" : "wall");
	/* The rig plays the trackers' backend when a scenario needs telemetry:
	 * only the rack's own IMEIs may log in. */
	ingest *ing = NULL;
	bool uplink = false;
	for (int i = 0; i < n_sc; i++)
		for (int k = 0; k < scs[i].n_requires; k++)
			uplink |= !strcmp(scs[i].requires[k], "uplink");
	/* A slot without a console takes every command over its uplink. */
	for (int i = 0; i < rack.n_slots; i++)
		uplink |= sel[i] && !*rack.slots[i].console.path;
	if (uplink) {
		const char **allow = calloc((size_t)(rack.n_slots > 0 ? rack.n_slots : 1), sizeof *allow);
		size_t n_allow = 0;
		for (int i = 0; allow && i < rack.n_slots; i++)
			if (*rack.slots[i].expect.imei)
				allow[n_allow++] = rack.slots[i].expect.imei;
		/* On the port the rack file fixes, if it does: its units are set
		 * to send there. */
		struct ingest_opts io = { .db_path = cli_db_path(o->db), .run_id = run_id, .clock = clk,
					  .allow = allow, .n_allow = n_allow, .port = rack.uplink_port,
					  .host = rack.uplink_port ? rack.uplink_host : NULL };
		if (!allow || ingest_start(&io, &ing, err, sizeof err)) {
			fprintf(stderr, "rig %s: telemetry ingest: %s\n", o->command, allow ? err : "out of memory");
			ing = NULL;
		}
		free(allow);
	}
	/* The rig's own gpsd reads every selected slot's GNSS output. */
	/* Firmware images for update steps, served over HTTP with Range. */
	struct fwserve *images = NULL;
	bool ota = false;
	for (int i = 0; i < n_sc; i++)
		for (int k = 0; k < scs[i].n_requires; k++)
			ota |= !strcmp(scs[i].requires[k], "ota");
	if (ota) {
		char dir[PATH_MAX];
		rig_image_dir(o, dir, sizeof dir);
		if (fwserve_start(dir, NULL, 0, &images, err, sizeof err)) {
			fprintf(stderr, "rig %s: image server on %s: %s\n", o->command, dir, err);
			images = NULL;
		}
	}
	/* A stock gpsd reads at most 4 devices: one per 4 slots. */
	enum { PER_GPSD = 4 };
	gnss_daemon **gps = NULL;
	int n_gps = 0;
	bool gnss = false;
	for (int i = 0; i < n_sc; i++)
		for (int k = 0; k < scs[i].n_requires; k++)
			gnss |= !strcmp(scs[i].requires[k], "gnss");
	if (gnss)
		gps = calloc((size_t)rack.n_slots / PER_GPSD + 1, sizeof *gps);
	for (int i = 0, used = PER_GPSD; gps && i < rack.n_slots; i++) {
		if (!sel[i] || !*rack.slots[i].nmea.path)
			continue;
		if (used == PER_GPSD) {
			struct gnss_options go = { .restarts = 1 };
			if (gnss_start(&go, &gps[n_gps]) != GNSS_OK) {
				fprintf(stderr, "rig %s: gpsd: %s\n", o->command, gnss_start_error());
				break;
			}
			n_gps++;
			used = 0;
		}
		if (gnss_add_device(gps[n_gps - 1], rack.slots[i].nmea.path, 5000) != GNSS_OK)
			fprintf(stderr, "rig %s: slot %d: %s\n", o->command, rack.slots[i].id, gnss_last_error(gps[n_gps - 1]));
		used++;
	}
	struct recorder rec = { .db = db, .run_id = run_id, .clk = clk, .command = o->command };
	struct engine_opts eo = { .clock = clk, .db = db, .run_id = run_id, .operator_ = cli_operator(o->operator_),
				  .gnss = gps, .n_gnss = n_gps, .images = images,
				  .command_timeout_ms = o->timeout_ms, .progress = stderr,
				  .progress_tty = isatty(STDERR_FILENO), .ingest = ing, .db_path = cli_db_path(o->db),
				  .on_result = record_finished, .on_result_ctx = &rec };
	if (!res || engine_run(&rack, sel, scs, n_sc, &eo, res) != 0)
		rc = cli_fail(RIG_EXIT_INFRA, o->command, "the engine could not start");

	/* Telemetry the ingest could not store is a store failure as well. */
	char ing_err[1100] = "";
	if (ingest_stop_checked(ing, ing_err, sizeof ing_err) < 0)
		fprintf(stderr, "rig %s: telemetry ingest: results store: %s\n", o->command, ing_err);
	for (int i = 0; i < n_gps; i++)
		gnss_stop(gps[i]);
	fwserve_stop(images);
	free(gps);
	pthread_kill(stopper, SIGUSR2);
	pthread_join(stopper, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	bool ran = rc == 0;
	if (ran) {
		int n = n_sel * n_sc;
		rc = exit_code(res, n);
		/* The results are in already (record_finished). A write that failed
		 * anywhere (a result, a step, the audit trail) makes the run an
		 * infrastructure error, and nothing below claims it recorded. */
		store_run_end(db, run_id, rec.failed || store_write_failure(db) || *ing_err ? "error" : stop.got ? "aborted"
				  : rc == 0 ? "pass" : rc == RIG_EXIT_FAIL ? "fail" : "error");
		summary(res, n, skipped, n_skipped);
	} else {
		store_run_end(db, run_id, "error");
	}
	if (store_write_failure(db) || *ing_err) {
		rc = cli_fail(RIG_EXIT_INFRA, o->command, "results store: a write failed: %s; run %lld is "
			      "incomplete in %s, no report written",
			      store_write_failure(db) ? store_write_failure(db) : ing_err, (long long)run_id,
			      store_path(db));
	} else if (ran) {
		if (o->junit && report_junit(db, run_id, o->junit, err, sizeof err))
			rc = cli_fail(RIG_EXIT_INFRA, o->command, "%s", err);
		if (o->json && report_json(db, run_id, o->json, err, sizeof err))
			rc = cli_fail(RIG_EXIT_INFRA, o->command, "%s", err);
		if (o->html && report_html_run(db, run_id, o->html, err, sizeof err))
			rc = cli_fail(RIG_EXIT_INFRA, o->command, "%s", err);
		if (o->trends && report_html_trends(db, o->trends, 30, err, sizeof err))
			rc = cli_fail(RIG_EXIT_INFRA, o->command, "%s", err);
		printf("run %lld recorded in %s%s%s%s%s\n", (long long)run_id, cli_db_path(o->db),
		       o->junit ? ", JUnit " : "", o->junit ? o->junit : "", o->json ? ", JSON " : "", o->json ? o->json : "");
		if (o->html)
			printf("report: %s\n", o->html);
		if (o->trends)
			printf("trends: %s\n", o->trends);
	}
	engine_results_free(res, n_sel * n_sc);
	free(res);
	free(skipped);
	store_close(db);
	clock_close(clk);
	free(sel);
	rack_free(&rack);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "slots", required_argument, 0, 's' },
		{ "tag", required_argument, 0, 'T' }, { "db", required_argument, 0, 'd' },
		{ "junit", required_argument, 0, 'J' }, { "json", required_argument, 0, 'j' },
		{ "seed", required_argument, 0, 'S' }, { "timeout", required_argument, 0, 't' },
		{ "operator", required_argument, 0, 'o' }, { "html", required_argument, 0, 'H' },
		{ "images", required_argument, 0, 'I' },
		{ 0, 0, 0, 0 },
	};
	struct run_opts o = { .seed = 1, .command = "run" };
	int c;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rack = optarg; break;
		case 's': o.slots = optarg; break;
		case 'T': o.tag = optarg; break;
		case 'd': o.db = optarg; break;
		case 'J': o.junit = optarg; break;
		case 'j': o.json = optarg; break;
		case 'H': o.html = optarg; break;
		case 'I': o.images = optarg; break;
		case 'o': o.operator_ = optarg; break;
		case 'S':
			o.seed = (unsigned)strtoul(optarg, &end, 10);
			if (end == optarg || *end)
				return cli_fail(RIG_EXIT_USAGE, "run", "--seed '%s': expected a whole number", optarg);
			break;
		case 't':
			o.timeout_ms = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end || o.timeout_ms < 1)
				return cli_fail(RIG_EXIT_USAGE, "run", "--timeout '%s': expected milliseconds", optarg);
			break;
		default:
			return cli_bad_option("run", longopts, argv[optind - 1]);
		}
	}
	int n_sc = argc - optind;
	if (n_sc < 1)
		return cli_fail(RIG_EXIT_USAGE, "run", "which scenario? e.g. rig run power-loss");
	if (rig_check_outputs(&o))
		return RIG_EXIT_USAGE;
	if (n_sc > MAX_SCENARIOS)
		return cli_fail(RIG_EXIT_USAGE, "run", "at most %d scenarios per run", MAX_SCENARIOS);
	struct scenario scs[MAX_SCENARIOS];
	char err[768];
	for (int i = 0; i < n_sc; i++) {
		char buf[PATH_MAX] = "";
		if (scenario_load(rig_find_scenario(argv[optind + i], buf), &scs[i], err, sizeof err)) {
			scenario_free(&scs[i]);
			for (int k = 0; k < i; k++)
				scenario_free(&scs[k]);
			return cli_fail(RIG_EXIT_USAGE, "run", "%s", err);
		}
	}
	int rc;
	if (o.rack) {
		rc = rig_run_rack(o.rack, scs, n_sc, &o);
	} else {
		struct embedded_rack er;
		/* Simulated trackers trust the test vendor key, as real ones are
		 * provisioned with their vendor's. */
		char key[PATH_MAX + 32], dir[PATH_MAX];
		snprintf(key, sizeof key, "%s/vendor.pub.pem", rig_image_dir(&o, dir, sizeof dir));
		if (embedded_rack_for(&er, "run", 8, o.seed, key, err, sizeof err) != 0) {
			rc = cli_fail(RIG_EXIT_INFRA, "run", "%s", err);
		} else {
			rc = rig_run_rack(er.rack_file, scs, n_sc, &o);
			embedded_rack_stop(&er);
		}
	}
	for (int i = 0; i < n_sc; i++)
		scenario_free(&scs[i]);
	return rc;
}
