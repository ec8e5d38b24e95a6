/*
 * test_engine.c - the scenario engine against a fake driver table.
 *
 * No simulated rack: the slot's command set is a table of this file's own
 * hooks (registered as "fake", and "fake_min" with only the identity hooks),
 * so each test says exactly what the unit tells and checks what the engine
 * makes of it. The console is a pty nobody speaks on: the hooks never use
 * the link, which is the point of asking through hooks.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "clock.h"
#include "engine.h"
#include "rack.h"
#include "scenario.h"
#include "tracker.h"

/* What the fake unit tells; the engine's slot thread reads it. */
static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int period_s, period_calls;
	long uptime_s, restarts;
	enum tracker_data_session session;
} fk;

static int fk_identify(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	snprintf(id->imei, sizeof id->imei, "352094087230394");
	snprintf(id->model, sizeof id->model, "FAKE-1");
	snprintf(id->firmware, sizeof id->firmware, "1.0");
	return TRACKER_OK;
}

static int fk_status(tracker *t, struct tracker_status *st, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	st->signal = 3;
	return TRACKER_OK;
}

static int fk_ping(tracker *t, char *imei, size_t len, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	snprintf(imei, len, "352094087230394");
	return TRACKER_OK;
}

static int fk_restarts(tracker *t, struct tracker_restarts *r, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	pthread_mutex_lock(&fk_lock);
	r->count = fk.restarts;
	r->uptime_s = fk.uptime_s;
	snprintf(r->reset_reason, sizeof r->reset_reason, "power_on");
	pthread_mutex_unlock(&fk_lock);
	return TRACKER_OK;
}

static int fk_period(tracker *t, int seconds, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	pthread_mutex_lock(&fk_lock);
	fk.period_s = seconds;
	fk.period_calls++;
	pthread_mutex_unlock(&fk_lock);
	return TRACKER_OK;
}

static int fk_session(tracker *t, enum tracker_data_session *s, int timeout_ms)
{
	(void)t, (void)timeout_ms;
	pthread_mutex_lock(&fk_lock);
	*s = fk.session;
	pthread_mutex_unlock(&fk_lock);
	return TRACKER_OK;
}

static const struct tracker_proto fake = {
	.name = "fake", .line_end = "\r\n", .identify = fk_identify, .status = fk_status, .ping = fk_ping,
	.restarts = fk_restarts, .report_period_set = fk_period, .data_session = fk_session,
};

/* Only what every command set has: identity and status. */
static const struct tracker_proto fake_min = {
	.name = "fake_min", .line_end = "\r\n", .identify = fk_identify, .status = fk_status, .ping = fk_ping,
};

static char dir[4096];
static int pty_master = -1, pty_slave = -1;
static char pty_path[256];

static void setup(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	cr_assert_eq(tracker_proto_register(&fake), 0);
	cr_assert_eq(tracker_proto_register(&fake_min), 0);
	cr_assert_eq(openpty(&pty_master, &pty_slave, pty_path, NULL, NULL), 0);
	memset(&fk, 0, sizeof fk);
}

static void teardown(void)
{
	close(pty_master);
	close(pty_slave);
	support_rmtree(dir);
}

TestSuite(engine, .init = setup, .fini = teardown);

static const char *write_file(const char *name, const char *text)
{
	static char path[2][4200];
	static int k;
	char *p = path[k++ % 2];
	snprintf(p, sizeof path[0], "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* Runs the scenario TEXT on one slot driven by command set PROTO; R gets
 * the result. */
static void run_one(const char *proto, const char *text, struct engine_result *r)
{
	char rack_text[600], err[512];
	snprintf(rack_text, sizeof rack_text,
		 "station: engine-test\nslots:\n  - id: 1\n    console: {port: %s}\n    protocol: %s\n", pty_path, proto);
	struct rack rack;
	cr_assert_eq(rack_load(write_file("rack.yaml", rack_text), &rack, err, sizeof err), 0, "%s", err);
	struct scenario sc;
	cr_assert_eq(scenario_load(write_file("s.yaml", text), &sc, err, sizeof err), 0, "%s", err);
	rig_clock *clk;
	cr_assert_eq(clock_open_real(&clk), 0);
	struct engine_opts o = { .clock = clk, .command_timeout_ms = 500 };
	bool sel[1] = { true };
	memset(r, 0, sizeof *r);
	cr_assert_eq(engine_run(&rack, sel, &sc, 1, &o, r), 0);
	engine_results_free(r, 1);
	r->scenario = NULL; /* freed below */
	scenario_free(&sc);
	clock_close(clk);
	rack_free(&rack);
}

Test(engine, report_period_goes_through_the_hook)
{
	struct engine_result r;
	run_one("fake", "name: p\nrequires: [console, report_period]\nsteps:\n  - report_period: 90s\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_PASS, "%s", r.message);
	cr_assert_eq(fk.period_calls, 1);
	cr_assert_eq(fk.period_s, 90, "the driver is asked for the scenario's period in seconds");
}

Test(engine, a_capability_the_driver_lacks_is_skipped_not_failed)
{
	struct engine_result r;
	run_one("fake_min", "name: p\nrequires: [console, report_period]\nsteps:\n  - report_period: 90s\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_SKIPPED, "%s: %s", engine_outcome_name(r.outcome), r.message);
	cr_assert(strstr(r.message, "report_period") && strstr(r.message, "fake_min"), "%s", r.message);
	cr_assert_eq(fk.period_calls, 0, "nothing was asked of the unit");
}

Test(engine, state_is_read_through_its_hook)
{
	struct engine_result r;
	fk.session = TRACKER_DATA_REFUSED;
	run_one("fake", "name: s\nrequires: [console, data_session]\nsteps:\n"
		"  - expect: {state: data_session, equals: refused}\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_PASS, "%s", r.message);

	fk.session = TRACKER_DATA_UP;
	run_one("fake", "name: s\nrequires: [console, data_session]\nsteps:\n"
		"  - expect: {state: data_session, equals: refused, within: 2s}\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_FAIL, "%s", r.message);
	cr_assert(strstr(r.message, "device says up"), "%s", r.message);
}

Test(engine, a_state_the_driver_cannot_tell_is_skipped)
{
	struct engine_result r;
	run_one("fake_min",
		"name: s\nrequires: [console, restarts]\nsteps:\n  - expect: {state: reset_reason, equals: power_on}\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_SKIPPED, "%s: %s", engine_outcome_name(r.outcome), r.message);
	cr_assert(strstr(r.message, "restarts"), "%s", r.message);
}

Test(engine, a_slot_without_a_console_and_no_ingest_is_the_rigs_error)
{
	/* commands over the uplink, but nothing in this run serves it */
	char rack_text[600], err[512];
	snprintf(rack_text, sizeof rack_text,
		 "station: engine-test\nuplink: {port: 5027}\nslots:\n  - id: 1\n    protocol: fake\n"
		 "    expect: {imei: \"352094087230394\"}\n");
	struct rack rack;
	cr_assert_eq(rack_load(write_file("rack.yaml", rack_text), &rack, err, sizeof err), 0, "%s", err);
	struct scenario sc;
	cr_assert_eq(scenario_load(write_file("s.yaml", "name: p\nrequires: [console, report_period]\nsteps:\n"
						   "  - report_period: 90s\n"), &sc, err, sizeof err), 0, "%s", err);
	rig_clock *clk;
	cr_assert_eq(clock_open_real(&clk), 0);
	struct engine_opts o = { .clock = clk, .command_timeout_ms = 500 };
	bool sel[1] = { true };
	struct engine_result r;
	memset(&r, 0, sizeof r);
	cr_assert_eq(engine_run(&rack, sel, &sc, 1, &o, &r), 0);
	cr_assert_eq(r.outcome, OUTCOME_ERROR, "%s: %s", engine_outcome_name(r.outcome), r.message);
	cr_assert(strstr(r.message, "over the uplink"), "%s", r.message);
	cr_assert_eq(fk.period_calls, 0);
	engine_results_free(&r, 1);
	scenario_free(&sc);
	clock_close(clk);
	rack_free(&rack);
}

Test(engine, uptime_is_the_units_own)
{
	struct engine_result r;
	fk.uptime_s = 1234;
	const char *sc = "name: u\nrequires: [console, restarts]\nsteps:\n"
			 "  - measure: {name: up, source: uptime, unit: s, low: 1000, high: 2000}\n";
	run_one("fake", sc, &r);
	cr_assert_eq(r.outcome, OUTCOME_PASS, "%s", r.message);
	cr_assert_eq(r.n_measures, 1);
	cr_assert_float_eq(r.measures[0].value, 1234.0, 1e-9);
	fk.uptime_s = 5;
	run_one("fake", sc, &r);
	cr_assert_eq(r.outcome, OUTCOME_FAIL, "%s", r.message);
	cr_assert(strstr(r.message, "outside"), "%s", r.message);
}

Test(engine, restart_without_a_power_on_is_the_scenarios_error)
{
	struct engine_result r;
	run_one("fake", "name: r\nrequires: [console, restarts]\nsteps:\n  - expect: {restart: seen, within: 2s}\n", &r);
	cr_assert_eq(r.outcome, OUTCOME_ERROR, "%s: %s", engine_outcome_name(r.outcome), r.message);
	cr_assert(strstr(r.message, "no power on step"), "%s", r.message);
}
