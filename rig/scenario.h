/*
 * scenario.h - scenario files: what a device must support and the steps
 * that test it.
 *
 * YAML through yamldoc, so every error reads "file:line:column: key: what".
 * A scenario is checked whole when it is loaded (unknown keys, bad
 * durations, unknown step kinds, limits the wrong way round, reason codes,
 * state names, measurement sources, requires: entries, and each step's need
 * declared in requires:), so a typo fails before the first slot is touched,
 * not two hours into a run, and a slot that lacks a need is SKIPPED.
 * Step types are one table in scenario.c (key, parse, help, needs).
 * docs/scenario-file.md describes the format.
 */
#ifndef TRACKRIG_SCENARIO_H
#define TRACKRIG_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCENARIO_TEXT_MAX 256
#define SCENARIO_NAME_MAX 64
#define SCENARIO_MAX_REQUIRES 8
/* Limits a scenario file is held to (docs/scenario-file.md, "Limits"):
 * steps per scenario, the longest single duration, and the most all of a
 * scenario's waits and time limits may add up to. */
#define SCENARIO_MAX_STEPS 1000
#define SCENARIO_DURATION_MAX_MS ((int64_t)7 * 24 * 3600 * 1000)
#define SCENARIO_TOTAL_MAX_MS ((int64_t)7 * 24 * 3600 * 1000)

enum scenario_step_kind {
	STEP_POWER,    /* power on|off|cycle */
	STEP_RELAY,    /* relay LINE on|off */
	STEP_WAIT,     /* wait DURATION */
	STEP_COMMAND,  /* command TEXT: sent to the tracker, answer kept */
	STEP_EXPECT,   /* expect an event, a state, a reason code or a value within a time */
	STEP_MEASURE,  /* measure a named quantity against limits */
	STEP_RECORD,   /* record a note in the results */
	STEP_FAULT,    /* a fault only a simulated rack can inject: a SIM data cap */
	STEP_UPDATE,   /* firmware update through the driver's ota hook, followed to its end */
	STEP_TRACE,    /* read the supply at a steady pace while the steps after it run */
	STEP_REPORT_PERIOD, /* report_period DURATION: how often the unit makes a record (period_ms) */
};
/* The last kind + 1: scenario.c's step table is checked against it at build time. */
#define SCENARIO_STEP_KINDS (STEP_REPORT_PERIOD + 1)

/* The step kind's key in a scenario file ("power", "report_period"), or "?"
 * for a value that is no kind. */
const char *scenario_step_name(enum scenario_step_kind k);

enum scenario_power { POWER_ON, POWER_OFF, POWER_CYCLE };

/* The most readings one trace step takes (for / every). */
#define SCENARIO_TRACE_MAX 6000

/* What an expect step waits for. */
enum scenario_expect_kind {
	EXPECT_EVENT,  /* an event line kind from the device: boot, ign, ... */
	EXPECT_STATE,  /* a device state field: "reset_reason == power_on" */
	EXPECT_REASON, /* a reason code from the diagnostics */
	EXPECT_ANSWER, /* the last command's answer contains text */
	EXPECT_UPLINK, /* telemetry reaching the rig's ingest: "flowing" */
	EXPECT_FLUSH,  /* the backlog of the last coverage cut arrived: "complete" */
	EXPECT_GNSS,   /* the receiver through gpsd: "fix"; or "honest": telemetry matched it */
	EXPECT_RESTART, /* the unit restarted since the last power on and answers: "seen" */
};

struct scenario_step {
	enum scenario_step_kind kind;
	int line;                        /* where the step is in the file */
	char text[SCENARIO_TEXT_MAX];    /* command text, record note, expect subject, relay line */
	enum scenario_power power;
	bool on;                         /* relay state */
	int64_t duration_ms;             /* wait, or expect's "within" (0: now) */
	enum scenario_expect_kind expect;
	char value[SCENARIO_TEXT_MAX];   /* expect state/answer value */
	bool negate;                     /* expect ... absent (e.g. no reason code) */
	/* measure */
	char name[SCENARIO_NAME_MAX];
	char source[SCENARIO_NAME_MAX];  /* boot_time, supply.current, supply.voltage, ... */
	char unit[16];
	double low, high;                /* NAN: no such limit */
	double marginal;                 /* fraction of the band, 0..0.5: near a limit is marginal */
	int64_t period_ms;               /* expect flush: the record period the scenario set; trace: every */
	int64_t fault_bytes;             /* fault datacap: bytes per period, -1 off */
	int64_t fault_period_ms;
	int64_t cut_min_ms, cut_max_ms;  /* update: a power cut at a seeded point in this span (0: none) */
};

struct scenario {
	char file[256];
	char name[SCENARIO_NAME_MAX];
	char summary[SCENARIO_TEXT_MAX];
	char requires[SCENARIO_MAX_REQUIRES][SCENARIO_NAME_MAX]; /* console, power, relay:ignition, ... */
	int n_requires;
	struct scenario_step *steps;
	int n_steps;
};

/* Measurement sources the engine can produce; a scenario naming another is
 * refused at load. NULL-terminated. */
extern const char *const scenario_sources[];

/* Device states `expect: {state: NAME, equals: VALUE}` may name (the engine's
 * read_state), each with the driver capability that tells it (NULL: the
 * status every driver has). Another name is refused at load. Ends with a
 * NULL name. */
struct scenario_state {
	const char *name;
	const char *needs;
};
extern const struct scenario_state scenario_states[];

/* What a slot can have that is not a driver capability, as `requires:`
 * spells it (besides relay:LINE and the capabilities in tracker_cap_names[]).
 * NULL-terminated. */
extern const char *const scenario_rig_requires[];

/* The shape of the step kind's value ("on|off|cycle"), for docs and help. */
const char *scenario_step_help(enum scenario_step_kind k);

/* What step ST needs in a scenario's `requires:` ("events", "ota",
 * "relay:ignition"; BUF holds it when it is built), or NULL for nothing.
 * scenario_load() refuses a step whose need is not declared. */
const char *scenario_step_needs(const struct scenario_step *st, char *buf, size_t len);

int scenario_load(const char *path, struct scenario *sc, char *err, size_t errlen);
void scenario_free(struct scenario *sc);

/* Parses "500ms", "5s", "10m", "2h", "1h30m" into milliseconds, at most
 * SCENARIO_DURATION_MAX_MS, through the rig's one grammar (duration.h).
 * Returns 0 or -1. */
int scenario_duration(const char *text, int64_t *ms);

#endif
