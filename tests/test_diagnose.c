/*
 * test_diagnose.c - the reason-code rules over hand-built evidence, and
 * `rig diagnose` end to end against simrack (power cut, hung unit, dead rack).
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diagnose.h"
#include "store.h"
#include "support.h"

/* ---- hand-built evidence ---- */

#define T0 1795000000000LL   /* a fixed "now": no test reads the clock */

/* A healthy slot: supply on at 12 V drawing 45 mA, console answered now. */
static struct diag_evidence healthy(void)
{
	struct diag_evidence ev = { .now_ms = T0 };
	ev.supply = (struct diag_supply){ .state = DIAG_CH_ANSWERED, .where = "tcp://127.0.0.1:5020 unit 1",
					  .have_reading = true, .output_on = true, .v_out = 12.0, .i_out = 0.045,
					  .v_set = 12.0, .read_at_ms = T0 };
	ev.console = (struct diag_console){ .state = DIAG_CH_ANSWERED, .where = "/dev/ttyUSB3", .last_seen_ms = T0 };
	ev.uplink.last_record_ms = DIAG_NEVER;
	ev.gnss.last_fix_ms = DIAG_NEVER;
	return ev;
}

static void silence(struct diag_evidence *ev)
{
	ev->console.state = DIAG_CH_SILENT;
	ev->console.last_seen_ms = T0 - 60000;
	snprintf(ev->console.detail, sizeof ev->console.detail, "/dev/ttyUSB3: getver: no answer within 1000 ms");
}

static void cut_power(struct diag_evidence *ev)
{
	ev->supply.output_on = false;
	ev->supply.v_out = 0;
	ev->supply.i_out = 0;
}

/* Runs the rules; asserts exactly one finding and returns it. */
static const struct diag_finding *only(const struct diag_evidence *ev, struct diag_report *rep)
{
	int n = diag_run(ev, NULL, rep);
	cr_assert_eq(n, 1, "expected one finding, got %d%s%s", n, n ? ": " : "", n ? rep->findings[0].rule->code : "");
	return &rep->findings[0];
}

static double confidence_of(const struct diag_evidence *ev, const char *code)
{
	struct diag_report rep;
	const struct diag_finding *f = only(ev, &rep);
	cr_assert_str_eq(f->rule->code, code, "summary: %s", f->summary);
	return f->confidence;
}

Test(diagnose, rule_table_is_complete_and_codes_unique)
{
	cr_assert_geq(diag_rule_count, 3);
	for (size_t i = 0; i < diag_rule_count; i++) {
		const struct diag_rule *r = &diag_rules[i];
		cr_assert(r->code && *r->code && r->title && *r->title, "rule %zu", i);
		cr_assert(r->action_ops && strlen(r->action_ops) > 20, "%s: ops action", r->code);
		cr_assert(r->action_technician && strlen(r->action_technician) > 20, "%s: technician action", r->code);
		cr_assert_not_null(r->assess, "%s", r->code);
		cr_assert_eq(diag_rule_find(r->code), r, "%s: duplicate or unfindable code", r->code);
	}
	cr_assert_null(diag_rule_find("no_such_code"));
	cr_assert_str_eq(diag_rule_find("power_loss_suspected")->action_ops,
			 "power loss suspected: check the vehicle's supply, fuse and harness; "
			 "the device cannot report until power returns");
	cr_assert_str_eq(diag_rule_find("device_unresponsive")->action_technician,
			 "power-cycle; if still silent, check the console cable, then swap the unit");
}

Test(diagnose, healthy_console_gives_no_finding_even_on_battery)
{
	struct diag_evidence ev = healthy();
	struct diag_report rep;
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0, "%s", rep.findings[0].summary);
	cr_assert_not(rep.inconclusive);
	/* Answering with the supply off means the unit runs on its backup
	 * battery: the console is the stronger evidence that it is alive. */
	cut_power(&ev);
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0);
	ev.supply.state = DIAG_CH_UNREACHABLE;
	ev.supply.have_reading = false;
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0);
}

Test(diagnose, power_loss_fires_on_output_off_and_silence_with_numbers)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	cut_power(&ev);
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "power_loss_suspected");
	cr_assert_geq(f->confidence, 0.9, "off + 0 V + 0 A + silent must be high: %.2f", f->confidence);
	cr_assert(strstr(f->summary, "output off"), "%s", f->summary);
	cr_assert(strstr(f->summary, "V-OUT 0.00 V (brown-out 6.00 V)"), "%s", f->summary);
	cr_assert(strstr(f->summary, "I-OUT 0.000 A"), "%s", f->summary);
	cr_assert(strstr(f->summary, "no answer within 1000 ms"), "%s", f->summary);
	cr_assert_not(rep.inconclusive);
	cr_assert_geq(f->n_evidence, 2);
	cr_assert(strstr(f->evidence[0], "supply tcp://127.0.0.1:5020 unit 1: output off"), "%s", f->evidence[0]);
	cr_assert(strstr(f->evidence[1], "console /dev/ttyUSB3: silent"), "%s", f->evidence[1]);
	cr_assert_str_eq(rep.console_last_seen, "2026-11-18T11:05:40.000Z");
	cr_assert_str_eq(rep.supply_last_read, "2026-11-18T11:06:40.000Z");
}

Test(diagnose, brownout_and_near_zero_current_thresholds_and_their_near_misses)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.supply.v_out = 5.99;
	cr_assert_gt(confidence_of(&ev, "power_loss_suspected"), 0);
	ev.supply.v_out = 6.00;   /* at the threshold the unit runs: not a brown-out */
	confidence_of(&ev, "device_unresponsive");
	ev.supply.i_out = 0.0049;
	confidence_of(&ev, "power_loss_suspected");
	ev.supply.i_out = 0.005;
	confidence_of(&ev, "device_unresponsive");
	/* The brown-out threshold is the device's, given by the caller. */
	struct diag_params p = diag_default_params;
	p.brownout_v = 7.5;
	ev.supply.v_out = 7.0;
	struct diag_report rep;
	cr_assert_eq(diag_run(&ev, &p, &rep), 1);
	cr_assert_str_eq(rep.findings[0].rule->code, "power_loss_suspected");
	cr_assert(strstr(rep.findings[0].summary, "brown-out 7.50 V"), "%s", rep.findings[0].summary);
	cr_assert_eq(diag_run(&ev, NULL, &rep), 1);
	cr_assert_str_eq(rep.findings[0].rule->code, "device_unresponsive");
}

Test(diagnose, power_loss_confidence_orders_by_agreeing_channels)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	cut_power(&ev);
	double all_agree = confidence_of(&ev, "power_loss_suspected");
	/* Only one supply sign: output on at 12 V, nothing drawn (cut after the supply). */
	struct diag_evidence one = healthy();
	silence(&one);
	one.supply.i_out = 0;
	double one_sign = confidence_of(&one, "power_loss_suspected");
	/* The same 0 A, but from an earlier reading: supply unreachable now. */
	struct diag_evidence stale = one;
	stale.supply.state = DIAG_CH_UNREACHABLE;
	stale.supply.read_at_ms = T0 - 30000;   /* after the last good answer */
	double stale_sign = confidence_of(&stale, "power_loss_suspected");
	/* All signs, but the rig could not even open the console port. */
	struct diag_evidence noport = ev;
	noport.console.state = DIAG_CH_UNREACHABLE;
	double no_port = confidence_of(&noport, "power_loss_suspected");
	cr_assert_gt(all_agree, one_sign, "%.2f vs %.2f", all_agree, one_sign);
	cr_assert_gt(one_sign, stale_sign, "%.2f vs %.2f", one_sign, stale_sign);
	cr_assert_gt(all_agree, no_port, "%.2f vs %.2f", all_agree, no_port);
	cr_assert(all_agree <= 1.0 && stale_sign > 0);
}

Test(diagnose, unresponsive_fires_when_powered_and_drawing_but_silent)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "device_unresponsive");
	cr_assert(strstr(f->summary, "V-OUT 12.00 V") && strstr(f->summary, "I-OUT 0.045 A"), "%s", f->summary);
	cr_assert_str_eq(f->rule->action_ops,
			 "device powered but not answering: power-cycle it remotely; if it does not come back, replace the unit");
	/* A console that answered before on this port is surer than one never seen. */
	double seen = f->confidence;
	ev.console.last_seen_ms = DIAG_NEVER;
	double never = confidence_of(&ev, "device_unresponsive");
	cr_assert_gt(seen, never, "%.2f vs %.2f", seen, never);
	cr_assert_str_eq((diag_run(&ev, NULL, &rep), rep.console_last_seen), "never");
}

Test(diagnose, unresponsive_needs_a_live_reading_and_an_open_console)
{
	/* Near miss 1: the supply read fine earlier but cannot be read now. */
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.supply.state = DIAG_CH_UNREACHABLE;
	ev.supply.read_at_ms = T0 - 30000;
	confidence_of(&ev, "insufficient_evidence");
	/* Near miss 2: live power, but the rig could not open the console port. */
	ev = healthy();
	silence(&ev);
	ev.console.state = DIAG_CH_UNREACHABLE;
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "insufficient_evidence");
	cr_assert(strstr(f->summary, "console connection") && strstr(f->summary, "/dev/ttyUSB3"), "%s", f->summary);
}

Test(diagnose, supply_unreachable_and_console_silent_cannot_tell_naming_both)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.supply = (struct diag_supply){ .state = DIAG_CH_UNREACHABLE, .where = "tcp://10.0.0.5:502 unit 1",
					  .detail = "tcp://10.0.0.5:502 unit 1: connect: Connection refused",
					  .read_at_ms = DIAG_NEVER };
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "insufficient_evidence");
	cr_assert(rep.inconclusive);
	cr_assert(strstr(f->summary, "cannot tell a power loss at the device from a dead rig connection"), "%s", f->summary);
	cr_assert(strstr(f->summary, "Connection refused"), "names the supply failure: %s", f->summary);
	cr_assert(strstr(f->summary, "/dev/ttyUSB3"), "names the console: %s", f->summary);
	cr_assert_str_eq(rep.supply_last_read, "never");
	/* No supply in the rack at all: still cannot tell. */
	ev.supply = (struct diag_supply){ .state = DIAG_CH_UNKNOWN, .read_at_ms = DIAG_NEVER };
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "insufficient_evidence");
}

Test(diagnose, stale_reading_older_than_last_good_answer_is_not_used)
{
	struct diag_evidence ev = healthy();
	silence(&ev);                        /* last good answer T0 - 60 s */
	cut_power(&ev);
	ev.supply.state = DIAG_CH_UNREACHABLE;
	ev.supply.read_at_ms = T0 - 120000;  /* "off" before the device answered: stale */
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "insufficient_evidence", "%s", f->summary);
	cr_assert(strstr(f->summary, "predates the last good answer"), "%s", f->summary);
	ev.supply.read_at_ms = T0 - 30000;   /* after it: usable */
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "power_loss_suspected");
}

/* Codes partition the silent cases: exactly one finding whenever the console
 * does not answer, none when it does, over a grid of evidence. */
Test(diagnose, exactly_one_finding_per_silent_slot_over_a_grid)
{
	const enum diag_channel states[] = { DIAG_CH_UNKNOWN, DIAG_CH_UNREACHABLE, DIAG_CH_SILENT, DIAG_CH_ANSWERED };
	const double volts[] = { 0, 5.9, 6.0, 12.0 }, amps[] = { 0, 0.0049, 0.005, 0.2 };
	const int64_t reads[] = { DIAG_NEVER, T0 - 120000, T0 };
	int cases = 0;
	for (int cs = 0; cs < 4; cs++)
		for (int ss = 0; ss < 4; ss++)
			for (int on = 0; on < 2; on++)
				for (int v = 0; v < 4; v++)
					for (int a = 0; a < 4; a++)
						for (int r = 0; r < 3; r++) {
							struct diag_evidence ev = healthy();
							ev.console.state = states[cs];
							ev.console.last_seen_ms = states[cs] == DIAG_CH_ANSWERED ? T0 : T0 - 60000;
							ev.supply.state = states[ss] == DIAG_CH_SILENT ? DIAG_CH_UNREACHABLE : states[ss];
							ev.supply.output_on = on;
							ev.supply.v_out = volts[v];
							ev.supply.i_out = amps[a];
							ev.supply.read_at_ms = reads[r];
							ev.supply.have_reading = reads[r] != DIAG_NEVER;
							struct diag_report rep;
							int n = diag_run(&ev, NULL, &rep);
							cr_assert_eq(n, states[cs] == DIAG_CH_ANSWERED ? 0 : 1,
								     "console %d supply %d on %d V %.2f I %.4f read %d: %d findings",
								     cs, ss, on, volts[v], amps[a], r, n);
							for (int i = 0; i < n; i++)
								cr_assert(rep.findings[i].confidence > 0 && rep.findings[i].confidence <= 1);
							cases++;
						}
	cr_assert_eq(cases, 4 * 4 * 2 * 4 * 4 * 3);
}

Test(diagnose, times_format_and_parse_in_the_store_format)
{
	char buf[32];
	cr_assert_str_eq(diag_format_time(DIAG_NEVER, buf, sizeof buf), "never");
	cr_assert_str_eq(diag_format_time(T0 + 123, buf, sizeof buf), "2026-11-18T11:06:40.123Z");
	cr_assert_eq(diag_parse_time("2026-11-18T11:06:40.123Z"), T0 + 123);
	cr_assert_eq(diag_parse_time("2026-11-18T11:06:40Z"), T0);
	cr_assert_eq(diag_parse_time("2026-11-18T11:06:40.1Z"), T0 + 100);
	cr_assert_eq(diag_parse_time("yesterday"), DIAG_NEVER);
	cr_assert_eq(diag_parse_time("2026-11-18T11:06:40.123"), DIAG_NEVER);
	cr_assert_eq(diag_parse_time(NULL), DIAG_NEVER);
	char now[32];
	store_now(now, sizeof now);
	cr_assert_str_eq(diag_format_time(diag_parse_time(now), buf, sizeof buf), now);
}

/* ---- end to end: rig diagnose against simrack ---- */

static const char *rig_bin(void)
{
	static char buf[4096];
	return support_bin("rig", buf, sizeof buf);
}

/* The text of slot SLOT's object in rig diagnose's JSON (up to the next slot). */
static char *slot_json(const char *json, int slot, char *out, size_t len)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\"slot\": %d,", slot);
	const char *p = strstr(json, pat);
	cr_assert_not_null(p, "no slot %d in: %s", slot, json);
	const char *end = strstr(p + 1, "\"slot\": ");
	size_t n = end ? (size_t)(end - p) : strlen(p);
	cr_assert_lt(n, len);
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static int diagnose(const char *rackfile, const char *db, const char *slots, char *out, size_t len)
{
	char *argv[] = { (char *)rig_bin(), "diagnose", (char *)slots, "--rack", (char *)rackfile, "--json", "--db",
			 (char *)db, "--timeout", "1000", NULL };
	if (!slots)
		memmove(&argv[2], &argv[3], 8 * sizeof argv[0]);
	return support_run(argv, out, len);
}

static int power(const char *rackfile, const char *db, const char *slot, const char *what, char *out, size_t len)
{
	char *argv[] = { (char *)rig_bin(), "power", (char *)slot, (char *)what, "--rack", (char *)rackfile, "--db",
			 (char *)db, "--off-time", "300", NULL };
	return support_run(argv, out, len);
}

/* Polls `rig probe` on SLOT's console a bounded number of times until the
 * device answers; no assumption on how long a boot takes. */
static bool answers_within_tries(const struct simrack_proc *sr, int slot, const char *db, int tries)
{
	char port[4200];
	static char out[65536];
	simrack_console(sr, slot, port, sizeof port);
	char *argv[] = { (char *)rig_bin(), "probe", port, "--timeout", "1000", "--db", (char *)db, NULL };
	for (int i = 0; i < tries; i++)
		if (support_run(argv, out, sizeof out) == 0)
			return true;
	return false;
}

static int count_events(const char *db, const char *slot, const char *kind)
{
	store *s;
	char err[512];
	cr_assert_eq(store_open(db, &s, err, sizeof err), 0, "%s", err);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(store_db(s),
					"SELECT count(*) FROM events WHERE source = 'diagnose' AND slot = ?1 AND kind = ?2",
					-1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, slot, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	store_close(s);
	return n;
}

Test(diagnose, e2e_power_off_is_power_loss_with_both_actions_then_healthy, .timeout = 120)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 21), 0);
	char rackfile[4200], db[4200], seg[16384];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536];
	/* A first look while all is well gives the console a last-seen time. */
	cr_assert_eq(diagnose(rackfile, db, NULL, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"verdict\": \"healthy\""), "%s", out);

	cr_assert_eq(power(rackfile, db, "2", "off", out, sizeof out), 0, "%s", out);
	int rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 1, "a finding must exit 1 (got %d): %s", rc, out);
	slot_json(out, 2, seg, sizeof seg);
	cr_assert(strstr(seg, "\"code\": \"power_loss_suspected\""), "%s", seg);
	cr_assert(strstr(seg, "\"action_ops\": \"power loss suspected: check the vehicle's supply, fuse and harness; "
			      "the device cannot report until power returns\""), "%s", seg);
	cr_assert(strstr(seg, "\"action_technician\": \"measure the supply at the tracker connector"), "%s", seg);
	cr_assert(strstr(seg, "output off"), "%s", seg);
	cr_assert(strstr(seg, "\"console\": \"20"), "console last seen is the earlier answer, not never: %s", seg);
	cr_assert(strstr(seg, "\"supply\": \"20"), "%s", seg);
	cr_assert_null(strstr(seg, "device_unresponsive"), "%s", seg);
	slot_json(out, 1, seg, sizeof seg);
	cr_assert(strstr(seg, "\"verdict\": \"healthy\"") && strstr(seg, "\"findings\": []"), "%s", seg);
	cr_assert_eq(count_events(db, "2", "power_loss_suspected"), 1);
	cr_assert_eq(count_events(db, "1", "healthy"), 2);

	cr_assert_eq(power(rackfile, db, "2", "on", out, sizeof out), 0, "%s", out);
	cr_assert(answers_within_tries(&sr, 2, db, 20), "slot 2 never answered after power on");
	rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 0, "every slot healthy must exit 0 (got %d): %s", rc, out);
	cr_assert_null(strstr(out, "\"code\""), "%s", out);
	simrack_stop(&sr);
}

Test(diagnose, e2e_unit_hung_after_power_cut_is_device_unresponsive, .timeout = 120)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference,no_return", 22), 0);
	char rackfile[4200], db[4200], seg[16384];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536];
	cr_assert(answers_within_tries(&sr, 2, db, 20), "no_return unit must boot on the rack's first power-on");
	cr_assert_eq(power(rackfile, db, "2", "cycle", out, sizeof out), 0, "%s", out);
	int rc = diagnose(rackfile, db, "2", out, sizeof out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	slot_json(out, 2, seg, sizeof seg);
	cr_assert(strstr(seg, "\"code\": \"device_unresponsive\""), "%s", seg);
	cr_assert(strstr(seg, "\"action_ops\": \"device powered but not answering: power-cycle it remotely"), "%s", seg);
	cr_assert(strstr(seg, "\"action_technician\": \"power-cycle; if still silent"), "%s", seg);
	cr_assert(strstr(seg, "output on"), "%s", seg);
	cr_assert_null(strstr(seg, "power_loss_suspected"), "%s", seg);
	cr_assert_null(strstr(out, "\"slot\": 1,"), "only the selected slot: %s", out);
	/* The ops action works on this unit: a second cycle brings it back. */
	cr_assert_eq(power(rackfile, db, "2", "cycle", out, sizeof out), 0, "%s", out);
	cr_assert(answers_within_tries(&sr, 2, db, 20), "slot 2 never came back after the second cycle");
	cr_assert_eq(diagnose(rackfile, db, "2", out, sizeof out), 0, "%s", out);
	simrack_stop(&sr);
}

Test(diagnose, e2e_dead_rack_is_insufficient_evidence_exit_3, .timeout = 120)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 23), 0);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	/* Supply link and console both gone with the rack: the rig cannot tell
	 * a powerless vehicle from its own dead connections. */
	simrack_kill(&sr);
	static char out[65536];
	int rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "\"code\": \"insufficient_evidence\""), "%s", out);
	cr_assert(strstr(out, "\"verdict\": \"inconclusive\""), "%s", out);
	cr_assert(strstr(out, "supply unreachable") && strstr(out, "console port cannot be opened"), "%s", out);
	cr_assert(strstr(out, "\"console\": \"never\""), "%s", out);
	simrack_stop(&sr);
}

Test(diagnose, e2e_usage_errors_exit_2_and_text_output, .timeout = 60)
{
	static char out[65536];
	char *none[] = { (char *)rig_bin(), "diagnose", "--db", "/tmp/trackrig-diag-usage.db", NULL };
	cr_assert_eq(support_run(none, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "--rack"), "%s", out);
	char *help[] = { (char *)rig_bin(), "diagnose", "--help", NULL };
	cr_assert_eq(support_run(help, out, sizeof out), 0);
	cr_assert(strstr(out, "usage: rig diagnose"), "%s", out);

	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 24), 0);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	char *bad[] = { (char *)rig_bin(), "diagnose", "9", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(support_run(bad, out, sizeof out), 2, "%s", out);
	char *badt[] = { (char *)rig_bin(), "diagnose", "--rack", rackfile, "--timeout", "soon", "--db", db, NULL };
	cr_assert_eq(support_run(badt, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "--timeout 'soon'"), "%s", out);
	char *text[] = { (char *)rig_bin(), "diagnose", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(support_run(text, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "slot 1: healthy") && strstr(out, "last seen:   console 20"), "%s", out);
	simrack_stop(&sr);
	unlink("/tmp/trackrig-diag-usage.db");
}

/* ---- network: coverage versus a spent data plan ---- */

static void modem(struct diag_evidence *ev, bool registered, bool data_link, bool pdp_rejected, int64_t last_record)
{
	ev->uplink = (struct diag_uplink){ .state = DIAG_CH_ANSWERED, .registered = registered, .data_link = data_link,
					   .pdp_rejected = pdp_rejected, .signal = registered ? 4 : 0,
					   .last_record_ms = last_record };
	if (registered)
		snprintf(ev->uplink.operator_code, sizeof ev->uplink.operator_code, "24602");
}

Test(diagnose, coverage_loss_when_answering_but_not_registered)
{
	struct diag_evidence ev = healthy();
	modem(&ev, false, false, false, T0 - 20 * 60000);
	const struct diag_finding *f = only(&ev, &(struct diag_report){ 0 });
	cr_assert_str_eq(f->rule->code, "coverage_loss");
	cr_assert(strstr(f->rule->action_ops, "check the antenna or move the vehicle"));
	cr_assert(strstr(f->summary, "not registered"), "%s", f->summary);
	double silent = f->confidence;
	/* A record arrived a minute ago: coverage is just lost, less certain. */
	modem(&ev, false, false, false, T0 - 60000);
	cr_assert_lt(confidence_of(&ev, "coverage_loss"), silent);
}

Test(diagnose, data_cap_when_registered_but_carrier_rejects)
{
	struct diag_evidence ev = healthy();
	modem(&ev, true, false, true, T0 - 20 * 60000);
	const struct diag_finding *f = only(&ev, &(struct diag_report){ 0 });
	cr_assert_str_eq(f->rule->code, "sim_data_cap_exceeded");
	cr_assert(strstr(f->rule->action_ops, "check the SIM plan with the provider; no truck roll"));
	cr_assert(strstr(f->summary, "PDP context rejected"), "%s", f->summary);
	double strong = f->confidence;
	/* Without the device's PDP report, the same picture is weaker evidence. */
	modem(&ev, true, false, false, T0 - 20 * 60000);
	cr_assert_lt(confidence_of(&ev, "sim_data_cap_exceeded"), strong);
	cr_assert_gt(confidence_of(&ev, "sim_data_cap_exceeded"), 0);
}

Test(diagnose, network_codes_stay_apart_from_power_and_health)
{
	struct diag_evidence ev = healthy();
	/* Registered, data up, records flowing: nothing to say. */
	modem(&ev, true, true, false, T0 - 60000);
	struct diag_report rep;
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0);
	/* Data down but records just arrived and no PDP report: not yet a cap. */
	modem(&ev, true, false, false, T0 - 60000);
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0);
	/* Power cut: the console is silent, so it is power, not the network. */
	ev = healthy();
	modem(&ev, false, false, false, T0 - 20 * 60000);
	silence(&ev);
	cut_power(&ev);
	cr_assert_eq(diag_run(&ev, NULL, &rep), 1);
	cr_assert_str_eq(rep.findings[0].rule->code, "power_loss_suspected");
}
