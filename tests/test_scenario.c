/* test_scenario.c - scenario files: every step kind, and errors that say where. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "scenario.h"

static char dir[4096];

static void make_dir(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
}

static void remove_dir(void)
{
	cr_assert_eq(support_rmtree(dir), 0);
}

TestSuite(scenario, .init = make_dir, .fini = remove_dir);

static const char *write_file(const char *text)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/s.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

Test(scenario, durations)
{
	int64_t ms;
	cr_assert_eq(scenario_duration("500ms", &ms), 0);
	cr_assert_eq(ms, 500);
	cr_assert_eq(scenario_duration("1h30m", &ms), 0);
	cr_assert_eq(ms, 5400000);
	cr_assert_eq(scenario_duration("2h", &ms), 0);
	cr_assert_eq(ms, 7200000);
	cr_assert_eq(scenario_duration("10", &ms), -1, "a bare number has no unit");
	cr_assert_eq(scenario_duration("5 s", &ms), -1);
	cr_assert_eq(scenario_duration("-5s", &ms), -1);
	cr_assert_eq(scenario_duration("", &ms), -1);
	cr_assert_eq(scenario_duration("99999999999999999h", &ms), -1);
}

Test(scenario, shipped_power_loss_reads)
{
	struct scenario sc;
	char err[512];
	cr_assert_eq(scenario_load("scenarios/power-loss.yaml", &sc, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(sc.name, "power-loss");
	cr_assert_eq(sc.n_requires, 3, "console, power, restarts");
	cr_assert_gt(sc.n_steps, 5);
	scenario_free(&sc);
}

Test(scenario, every_step_kind)
{
	struct scenario sc;
	char err[512];
	const char *p = write_file(
		"name: t\nsummary: all kinds\nrequires: [console, power, relay:ignition]\nsteps:\n"
		"  - power: cycle\n"
		"  - relay: {line: ignition, state: on}\n"
		"  - wait: 2h\n"
		"  - command: getparam 2001\n"
		"  - expect: {answer: internet}\n"
		"  - expect: {event: boot, within: 1m}\n"
		"  - expect: {state: reset_reason, equals: power_on}\n"
		"  - expect: {reason: power_loss_suspected, absent: true}\n"
		"  - measure: {name: i_idle, source: supply.current, unit: A, low: 0.01, high: 0.2, marginal: 0.1}\n"
		"  - record: done\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sc.n_steps, 10);
	cr_assert_eq(sc.steps[0].kind, STEP_POWER);
	cr_assert_eq(sc.steps[0].power, POWER_CYCLE);
	cr_assert_eq(sc.steps[1].kind, STEP_RELAY);
	cr_assert_str_eq(sc.steps[1].text, "ignition");
	cr_assert(sc.steps[1].on);
	cr_assert_eq(sc.steps[2].duration_ms, 7200000);
	cr_assert_str_eq(sc.steps[3].text, "getparam 2001");
	cr_assert_eq(sc.steps[4].expect, EXPECT_ANSWER);
	cr_assert_eq(sc.steps[5].expect, EXPECT_EVENT);
	cr_assert_eq(sc.steps[5].duration_ms, 60000);
	cr_assert_str_eq(sc.steps[6].value, "power_on");
	cr_assert(sc.steps[7].negate);
	cr_assert_str_eq(sc.steps[8].source, "supply.current");
	cr_assert_float_eq(sc.steps[8].high, 0.2, 1e-12);
	cr_assert_float_eq(sc.steps[8].marginal, 0.1, 1e-12);
	cr_assert_eq(sc.steps[9].kind, STEP_RECORD);
	cr_assert_eq(sc.steps[9].line, 14);
	scenario_free(&sc);
}

static void expect_error(const char *text, const char *part1, const char *part2)
{
	struct scenario sc;
	char err[512] = "";
	const char *p = write_file(text);
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), -1, "accepted: %s", text);
	cr_assert(strstr(err, part1), "error '%s' lacks '%s'", err, part1);
	if (part2)
		cr_assert(strstr(err, part2), "error '%s' lacks '%s'", err, part2);
	scenario_free(&sc);
}

Test(scenario, errors_name_line_column_and_key)
{
	expect_error("name: t\nsteps:\n  - wait: soon\n", "s.yaml:3:11: steps[0].wait", "expected a duration");
	expect_error("name: t\nsteps:\n  - reboot: now\n", "s.yaml:3:5: steps[0]", "unknown step 'reboot'");
	expect_error("name: t\nsteps:\n  - power: sideways\n", "steps[0].power", "expected on, off or cycle");
	expect_error("name: t\nsteps:\n  - power: off\n    wait: 5s\n", "one kind per step", NULL);
	expect_error("name: t\nsteps:\n  - expect: {event: boot, within: 1 minute}\n", "steps[0].expect.within", NULL);
	expect_error("name: t\nsteps:\n  - expect: {within: 1m}\n", "say what to expect", NULL);
	expect_error("name: t\nsteps:\n  - expect: {event: boot, reason: x}\n", "one thing per step", NULL);
	expect_error("name: t\nsteps:\n  - expect: {state: reset_reason}\n", "needs 'equals'", NULL);
	expect_error("name: t\nsteps:\n  - measure: {name: x, source: moon.phase, unit: A}\n", "unknown source 'moon.phase'",
		     "supply.current");
	expect_error("name: t\nsteps:\n  - measure: {name: x, source: boot_time, unit: s, low: 5, high: 1}\n",
		     "low limit 5 is above high limit 1", NULL);
	expect_error("name: t\nsteps:\n  - measure: {name: x, source: boot_time, unit: s, high: 1, marginal: 0.1}\n",
		     "needs both limits", NULL);
	expect_error("name: t\nsteps:\n  - relay: {line: ignition}\n", "needs 'line' and 'state'", NULL);
	expect_error("name: t\nsteps:\n  - relay: {line: ignition, state: maybe}\n", "expected on or off", NULL);
	expect_error("name: t\nsteps:\n  - command: \"\"\n", "one non-empty line", NULL);
	expect_error("name: t\nsteps: []\n", "at least one step", NULL);
	expect_error("steps:\n  - wait: 1s\n", "missing 'name'", NULL);
	expect_error("name: t\nstep:\n  - wait: 1s\n", "unknown key 'step'", NULL);
	expect_error("name: t\nsteps:\n  - wait: [1s\n", "YAML syntax", NULL);
	expect_error("name: t\nsteps:\n  - trace: {source: supply, every: 100ms}\n", "steps[0].trace",
		     "needs 'source', 'every' and 'for'");
	expect_error("name: t\nsteps:\n  - trace: {source: gpsd, every: 100ms, for: 5s}\n", "steps[0].trace.source",
		     "expected supply");
	expect_error("name: t\nsteps:\n  - trace: {source: supply, every: 10ms, for: 5s}\n", "at least 50ms", NULL);
	expect_error("name: t\nsteps:\n  - trace: {source: supply, every: 100ms, for: 2h}\n", "to 6000 readings", NULL);
	expect_error("name: t\nsteps:\n  - trace: {source: supply, every: 1s, for: 500ms}\n", "from one reading", NULL);
	expect_error("name: t\nsteps:\n  - trace: {source: supply, every: 1s, for: 5s, at: 3}\n", "unknown key 'at'", NULL);
}

Test(scenario, trace_step_reads)
{
	struct scenario sc;
	char err[512];
	const char *p = write_file("name: t\nsteps:\n  - trace: {source: supply, every: 250ms, for: 1m}\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sc.steps[0].kind, STEP_TRACE);
	cr_assert_str_eq(sc.steps[0].text, "supply");
	cr_assert_eq(sc.steps[0].period_ms, 250);
	cr_assert_eq(sc.steps[0].duration_ms, 60000);
	scenario_free(&sc);
}

/* Issue 12: terms whose sum overflowed int64 aborted the sanitizer build,
 * a wait of 2^62 ms passed at once, and "1h1h1h" was accepted. */
Test(scenario, durations_are_checked_as_sums)
{
	int64_t ms = -7;
	cr_assert_eq(scenario_duration("1281023894007h1281023894007h1281023894007h", &ms), -1,
		     "terms whose sum overflows int64");
	cr_assert_eq(scenario_duration("1281023894007h", &ms), -1, "about 2^62 ms");
	cr_assert_eq(scenario_duration("1h1h1h", &ms), -1, "a unit repeated");
	cr_assert_eq(scenario_duration("30m1h", &ms), -1, "units out of order");
	cr_assert_eq(scenario_duration("5s5ms5s", &ms), -1, "a unit after a smaller one");
	cr_assert_eq(scenario_duration("99999999999999999999999999999999ms", &ms), -1, "digits past int64");
	cr_assert_eq(ms, -7, "a refused duration leaves the output alone");
	cr_assert_eq(scenario_duration("168h", &ms), 0, "7 days is the ceiling, included");
	cr_assert_eq(ms, (int64_t)7 * 24 * 3600 * 1000);
	cr_assert_eq(scenario_duration("167h59m59s1000ms", &ms), 0);
	cr_assert_eq(ms, (int64_t)7 * 24 * 3600 * 1000);
	cr_assert_eq(scenario_duration("168h1ms", &ms), -1, "one ms past the ceiling");
	cr_assert_eq(scenario_duration("1h30m15s250ms", &ms), 0);
	cr_assert_eq(ms, 5415250);
}

Test(scenario, duration_limits_name_file_line_column)
{
	expect_error("name: t\nsteps:\n  - wait: 1281023894007h1281023894007h1281023894007h\n",
		     "s.yaml:3:11: steps[0].wait", "longer than the 168 h");
	expect_error("name: t\nsteps:\n  - wait: 1h1h1h\n", "s.yaml:3:11: steps[0].wait", "each unit at most once");
	expect_error("name: t\nsteps:\n  - expect: {event: boot, within: 10m1h}\n", "s.yaml:3:35: steps[0].expect.within",
		     "largest first");
	expect_error("name: t\nsteps:\n  - update: {image: a.fw, expect: committed, power_cut: 1h1h..2h}\n",
		     "s.yaml:3:57: steps[0].update", "power_cut");
	/* Each step within its ceiling, the sum above it. */
	expect_error("name: t\nsteps:\n  - wait: 100h\n  - wait: 60h\n  - wait: 9h\n", "s.yaml:5:5: steps[2]",
		     "add up to more than 168 h");
}

Test(scenario, step_count_is_limited)
{
	char *text = malloc(16 * 1100 + 64);
	cr_assert_not_null(text);
	strcpy(text, "name: t\nsteps:\n");
	for (int i = 0; i < 1001; i++)
		strcat(text, "  - wait: 1s\n");
	expect_error(text, "s.yaml:3:3: steps", "at most 1000");
	free(text);
}

/* A scenario refused at its third step had allocated the steps: the loader
 * frees them itself (it leaked them, found by fuzzing scenario_load). */
Test(scenario, refused_scenario_frees_what_it_allocated)
{
	struct scenario sc;
	char err[512];
	const char *p = write_file("name: t\nsteps:\n  - wait: 1s\n  - wait: 2s\n  - wait: soon\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), -1);
	cr_assert_null(sc.steps, "a refused scenario keeps no steps: %s", err);
	cr_assert_eq(sc.n_steps, 0);
}
