/* test_scenario.c - scenario files: every step kind, and errors that say where. */
#include <criterion/criterion.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "diagnose.h"
#include "scenario.h"
#include "tracker.h"

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

/* The shipped scenarios obey every check at load (their requires: lines
 * declare what their steps need). */
Test(scenario, every_shipped_scenario_loads)
{
	glob_t g;
	cr_assert_eq(glob("scenarios/*.yaml", 0, NULL, &g), 0, "no scenarios/*.yaml (run from the source tree)");
	cr_assert_geq(g.gl_pathc, 8, "%zu scenario files", g.gl_pathc);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct scenario sc;
		char err[768] = "";
		cr_expect_eq(scenario_load(g.gl_pathv[i], &sc, err, sizeof err), 0, "%s", err);
		scenario_free(&sc);
	}
	globfree(&g);
}

Test(scenario, every_step_kind)
{
	struct scenario sc;
	char err[512];
	const char *p = write_file(
		"name: t\nsummary: all kinds\nrequires: [console, power, relay:ignition, events, restarts]\nsteps:\n"
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
	int rc = scenario_load(p, &sc, err, sizeof err);
	if (rc == 0)
		scenario_free(&sc); /* a wrongly accepted file fails the test below, not the leak check */
	cr_assert_eq(rc, -1, "accepted: %s", text);
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

/* The step table is the one list of step types: the error for an unknown
 * one names every type, and each type's name is the key that loads it. */
Test(scenario, unknown_step_lists_every_step_type)
{
	struct scenario sc;
	char err[512] = "";
	const char *p = write_file("name: t\nsteps:\n  - reboot: now\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), -1);
	char *known = strstr(err, "(known: ");
	cr_assert_not_null(known, "%s", err);
	known += strlen("(known: ");
	known[strcspn(known, ")")] = 0;
	int listed = 0;
	for (char *w = strtok(known, ", "); w; w = strtok(NULL, ", "), listed++)
		cr_assert_str_eq(w, scenario_step_name((enum scenario_step_kind)listed), "known list out of step with the table");
	cr_assert_eq(listed, SCENARIO_STEP_KINDS, "the list names %d of %d step types", listed, SCENARIO_STEP_KINDS);
	for (int k = 0; k < SCENARIO_STEP_KINDS; k++)
		cr_assert_str_neq(scenario_step_name((enum scenario_step_kind)k), "?", "step kind %d has no table entry", k);
	cr_assert_str_eq(scenario_step_name(STEP_REPORT_PERIOD), "report_period");
	cr_assert_str_eq(scenario_step_name((enum scenario_step_kind)SCENARIO_STEP_KINDS), "?");
	expect_error("name: t\nsteps:\n  - wiat: 5s\n", "s.yaml:3:5: steps[0]: unknown step 'wiat'", "did you mean 'wait'?");
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

/* Issue 14: 'expect: {reason: power_los_suspected, absent: true}' loaded
 * and passed whatever the unit did (the misspelt code is never diagnosed). */
Test(scenario, misspelt_reason_code_refused_at_load)
{
	expect_error("name: t\nsteps:\n  - expect: {reason: power_los_suspected, absent: true}\n",
		     "s.yaml:3:22: steps[0].expect.reason: unknown reason code 'power_los_suspected'",
		     "; did you mean 'power_loss_suspected'?");
	expect_error("name: t\nsteps:\n  - expect: {reason: tyre_pressure}\n", "s.yaml:3:22: steps[0].expect.reason",
		     "(known: power_loss_suspected, ");
	/* Every code the diagnosis has is accepted. */
	for (size_t i = 0; i < diag_rule_count; i++) {
		char text[256], err[768] = "";
		snprintf(text, sizeof text, "name: t\nsteps:\n  - expect: {reason: %s, within: 1m}\n", diag_rules[i].code);
		struct scenario sc;
		cr_assert_eq(scenario_load(write_file(text), &sc, err, sizeof err), 0, "%s", err);
		scenario_free(&sc);
	}
}

/* Issue 14: 'state: resett_reason' loaded and errored only once the rack ran. */
Test(scenario, misspelt_state_refused_at_load)
{
	expect_error("name: t\nrequires: [restarts]\nsteps:\n  - expect: {state: resett_reason, equals: power_on}\n",
		     "s.yaml:4:21: steps[0].expect.state: unknown state 'resett_reason'", "; did you mean 'reset_reason'?");
	expect_error("name: t\nsteps:\n  - expect: {state: mood, equals: calm}\n", "s.yaml:3:21: steps[0].expect.state",
		     "(known: reset_reason, restarts, bank, ota_state, data_session, power_source, data_link, gprs, signal, operator)");
	/* Every state the list has is accepted, with the capability it needs. */
	for (const struct scenario_state *s = scenario_states; s->name; s++) {
		char text[256], err[768] = "";
		snprintf(text, sizeof text, "name: t\nrequires: [%s]\nsteps:\n  - expect: {state: %s, equals: x}\n",
			 s->needs ? s->needs : "console", s->name);
		struct scenario sc;
		cr_assert_eq(scenario_load(write_file(text), &sc, err, sizeof err), 0, "%s", err);
		scenario_free(&sc);
	}
}

Test(scenario, misspelt_source_gets_a_guess)
{
	expect_error("name: t\nsteps:\n  - measure: {name: x, source: supply.curent, unit: A}\n",
		     "s.yaml:3:32: steps[0].measure.source: unknown source 'supply.curent'", "; did you mean 'supply.current'?");
}

Test(scenario, unknown_requirement_refused_at_load)
{
	expect_error("name: t\nrequires: [console, evnts]\nsteps:\n  - wait: 1s\n",
		     "s.yaml:2:21: requires[1]: unknown requirement 'evnts'", "; did you mean 'events'?");
	expect_error("name: t\nrequires: [console, realy:ignition]\nsteps:\n  - wait: 1s\n",
		     "s.yaml:2:21: requires[1]: unknown requirement 'realy:ignition'", "; did you mean 'relay:ignition'?");
	expect_error("name: t\nrequires: [teleport]\nsteps:\n  - wait: 1s\n", "s.yaml:2:12: requires[0]",
		     "(known: console, console_port, power, uplink, gnss, fault:datacap, relay:NAME, restarts, ");
	expect_error("name: t\nrequires: [\"relay:\"]\nsteps:\n  - wait: 1s\n", "requires[0]: unknown requirement 'relay:'", NULL);
	expect_error("name: t\nrequires: [fault:meteor]\nsteps:\n  - wait: 1s\n", "unknown requirement 'fault:meteor'", NULL);
	expect_error("name: t\nrequires: [power, power]\nsteps:\n  - wait: 1s\n", "s.yaml:2:19: requires[1]",
		     "'power' listed twice");
	/* Every capability a driver can have, and every rig-side need, is accepted. */
	for (size_t i = 0; tracker_cap_names[i]; i++) {
		char text[256], err[768] = "";
		snprintf(text, sizeof text, "name: t\nrequires: [%s]\nsteps:\n  - wait: 1s\n", tracker_cap_names[i]);
		struct scenario sc;
		cr_assert_eq(scenario_load(write_file(text), &sc, err, sizeof err), 0, "%s", err);
		scenario_free(&sc);
	}
	struct scenario sc;
	char err[768] = "";
	const char *p = write_file("name: t\nrequires: [console, power, uplink, gnss, fault:datacap, relay:cell_antenna]\n"
				   "steps:\n  - wait: 1s\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sc.n_requires, 6);
	scenario_free(&sc);
}

/* A step that needs what requires: does not declare is refused where the
 * need comes from, so the engine can SKIP a slot that lacks it instead of
 * failing the step. */
Test(scenario, step_needs_its_requirement)
{
	static const struct {
		const char *step;   /* one step line */
		const char *needs;  /* what requires: must hold */
		const char *where;  /* file:line:col key path */
	} cases[] = {
		{ "  - expect: {event: boot}\n", "events", "s.yaml:4:21: steps[0].expect: expect: {event: boot}" },
		{ "  - expect: {restart: seen, within: 60s}\n", "restarts", "s.yaml:4:23: steps[0].expect: expect: {restart: seen}" },
		{ "  - expect: {state: bank, equals: A}\n", "ota", "s.yaml:4:21: steps[0].expect: expect: {state: bank}" },
		{ "  - expect: {state: reset_reason, equals: power_on}\n", "restarts", "s.yaml:4:21: steps[0].expect" },
		{ "  - expect: {state: data_session, equals: up}\n", "data_session", "s.yaml:4:21: steps[0].expect" },
		{ "  - expect: {uplink: flowing}\n", "uplink", "s.yaml:4:22: steps[0].expect" },
		{ "  - expect: {flush: complete, period: 60s}\n", "uplink", "s.yaml:4:21: steps[0].expect" },
		{ "  - expect: {gnss: fix}\n", "gnss", "s.yaml:4:20: steps[0].expect" },
		{ "  - update: {image: good-2.0.0.fw, expect: committed}\n", "ota", "s.yaml:4:13: steps[0].update: update: {...}" },
		{ "  - report_period: 60s\n", "report_period", "s.yaml:4:20: steps[0].report_period: report_period: 60s" },
		{ "  - fault: {datacap: 2000, period: 24h}\n", "fault:datacap", "s.yaml:4:12: steps[0].fault" },
		{ "  - power: off\n", "power", "s.yaml:4:12: steps[0].power: power: off" },
		{ "  - relay: {line: ignition, state: on}\n", "relay:ignition",
		  "s.yaml:4:19: steps[0].relay: relay: {line: ignition}" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[512], want[128];
		snprintf(text, sizeof text, "name: t\nrequires: [console]\nsteps:\n%s", cases[i].step);
		snprintf(want, sizeof want, "needs '%s' in requires", cases[i].needs);
		expect_error(text, cases[i].where, want);
		/* Declared, the same step loads. */
		struct scenario sc;
		char err[768] = "";
		snprintf(text, sizeof text, "name: t\nrequires: [console, %s]\nsteps:\n%s", cases[i].needs, cases[i].step);
		cr_assert_eq(scenario_load(write_file(text), &sc, err, sizeof err), 0, "%s", err);
		char buf[SCENARIO_TEXT_MAX + 8];
		cr_assert_str_eq(scenario_step_needs(&sc.steps[0], buf, sizeof buf), cases[i].needs);
		scenario_free(&sc);
	}
	/* Steps that need nothing. */
	struct scenario sc;
	char err[768] = "";
	const char *p = write_file("name: t\nsteps:\n  - wait: 1s\n  - command: getver\n  - expect: {answer: Ver}\n"
				   "  - expect: {reason: coverage_loss, absent: true}\n  - expect: {state: signal, equals: \"5\"}\n"
				   "  - measure: {name: v, source: supply.voltage, unit: V}\n  - record: x\n"
				   "  - trace: {source: supply, every: 1s, for: 5s}\n");
	cr_assert_eq(scenario_load(p, &sc, err, sizeof err), 0, "%s", err);
	for (int i = 0; i < sc.n_steps; i++) {
		char buf[SCENARIO_TEXT_MAX + 8];
		cr_assert_null(scenario_step_needs(&sc.steps[i], buf, sizeof buf), "step %d", i);
	}
	scenario_free(&sc);
}

/* TEXT with every '|' written as markdown's '\|' (inside a table cell). */
static void md_cell(const char *text, char *out, size_t len)
{
	size_t k = 0;
	for (const char *p = text; *p && k + 2 < len; p++) {
		if (*p == '|')
			out[k++] = '\\';
		out[k++] = *p;
	}
	out[k] = 0;
}

/* docs/scenario-file.md follows the tables: its example loads, its step
 * table has every step type with its value's shape, and it names
 * every state and capability. */
Test(scenario, docs_follow_the_tables)
{
	char *doc = support_read_file("docs/scenario-file.md");
	cr_assert_not_null(doc);
	const char *y = strstr(doc, "```yaml\n");
	cr_assert_not_null(y);
	y += strlen("```yaml\n");
	const char *end = strstr(y, "```");
	cr_assert_not_null(end);
	char *example = strndup(y, (size_t)(end - y));
	struct scenario sc;
	char err[768] = "";
	cr_assert_eq(scenario_load(write_file(example), &sc, err, sizeof err), 0, "the docs' example: %s", err);
	free(example);
	for (int k = 0; k < SCENARIO_STEP_KINDS; k++) {
		char help[256], row[400];
		md_cell(scenario_step_help((enum scenario_step_kind)k), help, sizeof help);
		snprintf(row, sizeof row, "| `%s` | `%s`", scenario_step_name((enum scenario_step_kind)k), help);
		cr_expect(strstr(doc, row), "docs/scenario-file.md lacks the row '%s'", row);
	}
	scenario_free(&sc);
	for (const struct scenario_state *s = scenario_states; s->name; s++) {
		char cell[64];
		snprintf(cell, sizeof cell, "`%s`", s->name);
		cr_expect(strstr(doc, cell), "docs lack the state %s", cell);
	}
	for (size_t i = 0; tracker_cap_names[i]; i++) {
		char cell[64];
		snprintf(cell, sizeof cell, "`%s`", tracker_cap_names[i]);
		cr_expect(strstr(doc, cell), "docs lack the capability %s", cell);
	}
	free(doc);
}
