/*
 * test_diagnose.c - the reason-code rules over hand-built evidence, and
 * `rig diagnose` end to end against simrack (power cut, hung unit, dead rack).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diagnose.h"
#include "evidence.h"
#include "store.h"
#include "support.h"

/* ---- hand-built evidence ---- */

#define T0 1795000000000LL   /* a fixed "now": no test reads the clock */

/* A healthy slot, every channel read: supply on at 12 V drawing 45 mA,
 * console answered now, modem registered with data up, records arriving,
 * a fresh 3D fix, one power-on boot. */
static struct diag_evidence healthy(void)
{
	struct diag_evidence ev;
	diag_evidence_init(&ev, T0);
	ev.supply = (struct diag_supply){ .state = DIAG_CH_ANSWERED, .where = "tcp://127.0.0.1:5020 unit 1",
					  .have_reading = true, .output_on = true, .v_out = 12.0, .i_out = 0.045,
					  .v_set = 12.0, .read_at_ms = T0 };
	ev.console = (struct diag_console){ .state = DIAG_CH_ANSWERED, .where = "/dev/ttyUSB3", .last_seen_ms = T0,
					    .asked = 2, .good = 2 };
	ev.uplink.state = DIAG_CH_ANSWERED;
	ev.uplink.registered = ev.uplink.data_link = true;
	ev.uplink.signal = 4;
	snprintf(ev.uplink.operator_code, sizeof ev.uplink.operator_code, "24602");
	ev.uplink.records = DIAG_CH_ANSWERED;
	ev.uplink.n_records = 40;
	ev.uplink.last_record_ms = ev.uplink.last_record_ts_ms = T0 - 30000;
	ev.uplink.io_signal = 4;
	ev.uplink.io_ext_mv = ev.uplink.io_ext_mv_before = 12000;
	ev.uplink.io_gnss = 1;
	ev.gnss = (struct diag_gnss){ .state = DIAG_CH_ANSWERED, .source = "gpsd", .fix = true, .mode = 3,
				      .satellites_used = 9, .hdop = 0.9, .last_fix_ms = T0 };
	ev.boot = (struct diag_boot){ .state = DIAG_CH_ANSWERED, .boots_then = 1, .boots_now = 1, .window_ms = 3600000,
				      .reset_reason = "power_on", .uptime_s = 3600 };
	return ev;
}

/* The backend has heard nothing for 20 minutes. */
static void uplink_quiet(struct diag_evidence *ev)
{
	ev->uplink.last_record_ms = ev->uplink.last_record_ts_ms = T0 - 20 * 60000;
}

/* The console stops answering; a silent unit tells nothing of its modem,
 * GNSS or boots, and the backend hears nothing either. */
static void silence(struct diag_evidence *ev)
{
	ev->uplink.state = DIAG_CH_UNKNOWN;
	ev->gnss.state = DIAG_CH_UNKNOWN;
	ev->boot.state = DIAG_CH_UNKNOWN;
	uplink_quiet(ev);
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
	const char *codes[] = { "power_loss_suspected", "device_unresponsive", "console_link_lost", "console_garbled",
				"coverage_loss", "sim_data_cap_exceeded", "gnss_fix_stale", "firmware_crash_loop",
				"insufficient_evidence" };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		cr_assert_not_null(diag_rule_find(codes[i]), "%s has no rule", codes[i]);
	cr_assert_eq(diag_rule_count, sizeof codes / sizeof codes[0]);
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
	cr_assert_str_eq(rep.verdict, "healthy: no fault seen on: console, supply, modem, uplink records, GNSS, boot history");
	/* Answering with the supply off means the unit runs on its backup
	 * battery: the console is the stronger evidence that it is alive. */
	cut_power(&ev);
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0);
}

/* Every channel the rack has must be read before "healthy": an unread one
 * is named, the verdict says what was seen and what was not, and the rig
 * says it cannot tell (exit 3), never healthy. A channel the rack does not
 * have (ABSENT) is no gap. */
Test(diagnose, never_healthy_on_a_channel_not_read)
{
	const char *names[] = { "console", "supply", "modem", "uplink records", "GNSS", "boot history" };
	for (int ch = 0; ch < 6; ch++) {
		struct diag_evidence ev = healthy();
		enum diag_channel *st[] = { &ev.console.state, &ev.supply.state, &ev.uplink.state, &ev.uplink.records,
					    &ev.gnss.state, &ev.boot.state };
		*st[ch] = DIAG_CH_UNKNOWN;
		if (ch == 1)
			snprintf(ev.supply.detail, sizeof ev.supply.detail, "Modbus link down");
		struct diag_report rep;
		int n = diag_run(&ev, NULL, &rep);
		cr_assert_eq(n, 1, "%s unread: %d findings, verdict %s", names[ch], n, rep.verdict);
		cr_assert_str_eq(rep.findings[0].rule->code, "insufficient_evidence", "%s unread", names[ch]);
		cr_assert(rep.inconclusive);
		char want[64];
		snprintf(want, sizeof want, "not read: %s", names[ch]);
		cr_assert(strstr(rep.verdict, want), "%s unread: %s", names[ch], rep.verdict);
		cr_assert(strstr(rep.findings[0].summary, want), "%s", rep.findings[0].summary);
		if (ch)
			cr_assert(strstr(rep.verdict, "no fault seen on: console"), "%s", rep.verdict);
		*st[ch] = DIAG_CH_ABSENT;
		cr_assert_eq(diag_run(&ev, NULL, &rep), 0, "%s absent from the rack: %s", names[ch], rep.verdict);
	}
	struct diag_evidence ev = healthy();
	ev.supply.state = DIAG_CH_UNKNOWN;
	ev.uplink.records = DIAG_CH_UNKNOWN;
	snprintf(ev.uplink.records_detail, sizeof ev.uplink.records_detail, "results store: locked");
	struct diag_report rep;
	diag_run(&ev, NULL, &rep);
	cr_assert_str_eq(rep.verdict, "inconclusive: no fault seen on: console, modem, GNSS, boot history; "
				      "not read: supply, uplink records (results store: locked)");
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
 * does not answer, none when it does and every channel was read, over a
 * grid of evidence. */
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
							/* answering and every channel read: nothing to say */
							bool clean = states[cs] == DIAG_CH_ANSWERED && states[ss] == DIAG_CH_ANSWERED;
							cr_assert_eq(n, clean ? 0 : 1,
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

/* A virtual rack whose units have run long enough for a first GNSS fix:
 * "healthy" needs every channel fine, the receiver's included. */
static void virtual_rack(struct simrack_proc *sr, int slots, const char *profiles, unsigned seed)
{
	const char *const args[] = { "--virtual", "--profiles", profiles, NULL };
	cr_assert_eq(simrack_start_args(sr, slots, seed, args), 0);
}

/* Moves the rack's time on by MS (the units boot, fix, send). */
static void rack_advance(const struct simrack_proc *sr, uint64_t ms)
{
	int fd = simrack_control(sr);
	uint64_t now = 0;
	cr_assert_eq(sscanf(support_ctl(fd, "now"), "ok now=%" SCNu64, &now), 1);
	support_ctl_move(fd, "advance", now + ms);
	close(fd);
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
	virtual_rack(&sr, 2, "reference", 21);
	rack_advance(&sr, 120000);
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
	rack_advance(&sr, 120000);   /* boot and a first fix after the power-on */
	rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 0, "every slot healthy must exit 0 (got %d): %s", rc, out);
	cr_assert_null(strstr(out, "\"code\""), "%s", out);
	simrack_stop(&sr);
}

Test(diagnose, e2e_unit_hung_after_power_cut_is_device_unresponsive, .timeout = 120)
{
	struct simrack_proc sr;
	virtual_rack(&sr, 2, "reference,no_return", 22);
	char rackfile[4200], db[4200], seg[16384];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536];
	rack_advance(&sr, 120000);
	cr_assert_eq(diagnose(rackfile, db, "2", out, sizeof out), 0, "no_return unit must boot on the rack's first power-on: %s", out);
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
	rack_advance(&sr, 120000);
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
	virtual_rack(&sr, 1, "reference", 24);
	rack_advance(&sr, 120000);
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
	struct diag_uplink *u = &ev->uplink;
	u->state = DIAG_CH_ANSWERED;
	u->registered = registered;
	u->data_link = data_link;
	u->pdp_rejected = pdp_rejected;
	u->signal = registered ? 4 : 0;
	snprintf(u->operator_code, sizeof u->operator_code, "%s", registered ? "24602" : "");
	u->records = DIAG_CH_ANSWERED;
	u->last_record_ms = u->last_record_ts_ms = last_record;
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

/* ---- console link, garbled console, crash loop, contradictions ---- */

/* A cut console cable with the unit still reporting: the cable, not the
 * unit. Without the uplink's word the unit is blamed, less surely. */
Test(diagnose, console_silent_with_live_uplink_is_console_link_lost)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.uplink.last_record_ms = T0 - 45000;   /* the backend heard it 45 s ago */
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "console_link_lost", "%s", f->summary);
	cr_assert(strstr(f->summary, "45 s ago") && strstr(f->summary, "uplink is alive"), "%s", f->summary);
	cr_assert(strstr(f->rule->action_ops, "no power-cycle, no swap"));
	/* The port itself gone (adapter unplugged): the same. */
	ev.console.state = DIAG_CH_UNREACHABLE;
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "console_link_lost");
	/* Near miss: the backend has heard nothing for 20 min: the unit. */
	ev.console.state = DIAG_CH_SILENT;
	uplink_quiet(&ev);
	double quiet = confidence_of(&ev, "device_unresponsive");
	/* Uplink not read at all: still the unit, but less sure. */
	ev.uplink.records = DIAG_CH_ABSENT;
	double unread = confidence_of(&ev, "device_unresponsive");
	cr_assert_gt(quiet, unread, "%.2f vs %.2f", quiet, unread);
	cr_assert(strstr(only(&ev, &rep)->summary, "console cable fault is not ruled out"), "%s", rep.findings[0].summary);
}

/* A unit that hangs at power-on (seen on the lab rack's no_return clone in a
 * run with the ingest up): its last records are from before the cut, so
 * they prove nothing about the cable now. */
Test(diagnose, records_from_before_the_power_on_are_no_sign_of_life)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.uplink.last_record_ms = T0 - 45000;   /* recent, but ... */
	ev.powered_on_ms = T0 - 20000;           /* ... from before the rig switched it on */
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "device_unresponsive", "%s", f->summary);
	/* A record since the power-on: the unit lives, the console link does not. */
	ev.uplink.last_record_ms = T0 - 5000;
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "console_link_lost");
}

Test(diagnose, garbled_console_is_console_garbled_not_unresponsive)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.console.state = DIAG_CH_GARBLED;
	ev.console.asked = 3;
	ev.console.garbled = 2;
	ev.console.good = 1;
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "console_garbled", "%s", f->summary);
	cr_assert(strstr(f->summary, "2 of 3 identity answers damaged"), "%s", f->summary);
	double some_good = f->confidence;
	ev.console.good = 0;
	ev.console.garbled = 3;
	cr_assert_gt(confidence_of(&ev, "console_garbled"), some_good);
	cr_assert_not(rep.inconclusive);
}

static void crash_boots(struct diag_evidence *ev, int then, int now, const char *reset)
{
	ev->boot = (struct diag_boot){ .state = DIAG_CH_ANSWERED, .boots_then = then, .boots_now = now,
				       .window_ms = 60000, .uptime_s = 3 };
	snprintf(ev->boot.reset_reason, sizeof ev->boot.reset_reason, "%s", reset);
	ev->boot.abnormal_resets = strcmp(reset, "power_on") ? now - then + 1 : 0;
}

Test(diagnose, crash_loop_from_restart_counter_and_reset_source)
{
	struct diag_evidence ev = healthy();
	crash_boots(&ev, 10, 12, "watchdog");   /* 3 watchdog resets in a minute */
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "firmware_crash_loop", "%s", f->summary);
	cr_assert(strstr(f->summary, "3 resets in 60 s by the restart counter (10 then, 12 now), the last by watchdog"),
		  "%s", f->summary);
	cr_assert(strstr(f->rule->action_ops, "pause the rollout, roll back"));
	double three = f->confidence;
	crash_boots(&ev, 10, 11, "crash");
	double two = confidence_of(&ev, "firmware_crash_loop");
	cr_assert_gt(three, two);
	/* One crash is not a loop; power-on resets are not crashes. */
	crash_boots(&ev, 12, 12, "watchdog");
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0, "%s", rep.verdict);
	crash_boots(&ev, 10, 14, "power_on");
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0, "%s", rep.verdict);
}

/* The restart counter read twice gives the window's resets; one reading
 * gives only the reset that began this boot. */
Test(diagnose, boot_history_from_two_counter_readings)
{
	struct evidence_boot_reading then = { .boots = 7, .reset = "watchdog", .uptime_s = 4, .at_ms = T0 - 20000 };
	struct evidence_boot_reading now = { .boots = 10, .reset = "watchdog", .uptime_s = 2, .at_ms = T0 };
	struct diag_boot b;
	evidence_boot(&then, &now, 0, &b);
	cr_assert_eq(b.state, DIAG_CH_ANSWERED);
	cr_assert_eq(b.abnormal_resets, 4, "%d", b.abnormal_resets);
	cr_assert_eq(b.window_ms, 24000);
	evidence_boot(NULL, &now, 0, &b);
	cr_assert_eq(b.abnormal_resets, 1);
	snprintf(now.reset, sizeof now.reset, "power_on");
	evidence_boot(&then, &now, 0, &b);
	cr_assert_eq(b.abnormal_resets, 0);
	/* Too old an earlier reading is not history. */
	snprintf(now.reset, sizeof now.reset, "watchdog");
	then.at_ms = T0 - 3600000;
	evidence_boot(&then, &now, 600000, &b);
	cr_assert_eq(b.abnormal_resets, 1);
	/* A device that does not tell its counter has no boot channel. */
	now.boots = -1;
	evidence_boot(&then, &now, 0, &b);
	cr_assert_eq(b.state, DIAG_CH_ABSENT);
	char text[128];
	struct evidence_boot_reading back;
	now.boots = 10;
	evidence_boot_text(&now, text, sizeof text);
	cr_assert(evidence_boot_parse(text, &back), "%s", text);
	cr_assert(back.boots == 10 && back.at_ms == T0 && !strcmp(back.reset, "watchdog") && back.uptime_s == 2, "%s", text);
}

/* One cause never gets two contradicting codes: over a grid of console,
 * supply, uplink and boot evidence, at most one cause-of-silence code. */
Test(diagnose, one_cause_per_unit_over_a_grid)
{
	const enum diag_channel cons[] = { DIAG_CH_ANSWERED, DIAG_CH_GARBLED, DIAG_CH_SILENT, DIAG_CH_UNREACHABLE };
	const char *cause[] = { "power_loss_suspected", "device_unresponsive", "console_link_lost", "console_garbled",
				"firmware_crash_loop" };
	int crash_and_silent = 0;
	for (int c = 0; c < 4; c++)
		for (int pw = 0; pw < 3; pw++)
			for (int up = 0; up < 3; up++)
				for (int boot = 0; boot < 2; boot++) {
					struct diag_evidence ev = healthy();
					ev.console.state = cons[c];
					if (pw == 1)
						cut_power(&ev);
					if (pw == 2)
						ev.supply.state = DIAG_CH_UNREACHABLE;
					if (up == 1)
						uplink_quiet(&ev);
					if (up == 2)
						ev.uplink.records = DIAG_CH_ABSENT;
					if (boot)
						crash_boots(&ev, 3, 6, "watchdog");
					struct diag_report rep;
					int n = diag_run(&ev, NULL, &rep), causes = 0;
					for (int i = 0; i < n; i++)
						for (size_t k = 0; k < sizeof cause / sizeof cause[0]; k++)
							causes += !strcmp(rep.findings[i].rule->code, cause[k]);
					cr_assert_leq(causes, 1, "console %d power %d uplink %d boot %d: %d causes (%s, %s)", c,
						      pw, up, boot, causes, rep.findings[0].rule->code,
						      n > 1 ? rep.findings[1].rule->code : "");
					crash_and_silent += boot && c == 2 && pw == 0 && up == 1;
				}
	/* The case from the field: crash resets counted, console silent now
	 * while powered and drawing, uplink quiet: a crash loop, only. */
	struct diag_evidence ev = healthy();
	silence(&ev);
	crash_boots(&ev, 3, 6, "watchdog");
	struct diag_report rep;
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "firmware_crash_loop");
	cr_assert_eq(crash_and_silent, 1);
}

/* Independent findings stand together: no GNSS fix and no network. */
Test(diagnose, independent_findings_stand_together)
{
	struct diag_evidence ev = healthy();
	modem(&ev, false, false, false, T0 - 20 * 60000);
	ev.gnss.fix = false;
	ev.gnss.mode = 1;
	ev.gnss.satellites_used = 0;
	ev.gnss.last_fix_ms = T0 - 66 * 60000;
	struct diag_report rep;
	cr_assert_eq(diag_run(&ev, NULL, &rep), 2, "%s", rep.verdict);
	cr_assert_str_eq(rep.findings[0].rule->code, "coverage_loss");
	cr_assert_str_eq(rep.findings[1].rule->code, "gnss_fix_stale");
	cr_assert(strstr(rep.findings[1].summary, "(from gpsd)"), "%s", rep.findings[1].summary);
}

/* No supply in the rack: the unit's own IO 66 reports before silence say
 * power; steady volts before silence leave the rig unable to tell. */
Test(diagnose, power_loss_from_the_units_own_voltage_before_silence)
{
	struct diag_evidence ev = healthy();
	silence(&ev);
	ev.supply = (struct diag_supply){ .state = DIAG_CH_ABSENT, .read_at_ms = DIAG_NEVER, .detail = "power by relay line" };
	ev.uplink.io_ext_mv_before = 12100;
	ev.uplink.io_ext_mv = 5400;
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "power_loss_suspected", "%s", f->summary);
	cr_assert(strstr(f->summary, "external 5.40 V (IO 66) from 12.10 V"), "%s", f->summary);
	ev.uplink.io_ext_mv = 11900;
	cr_assert_str_eq(only(&ev, &rep)->rule->code, "insufficient_evidence");
}

/* Usage at or over a known plan, registered, data down: the data cap even
 * without the device's PDP report. */
Test(diagnose, data_cap_from_usage_against_the_plan)
{
	struct diag_evidence ev = healthy();
	modem(&ev, true, false, false, T0 - 60000);   /* records just arrived: the silence rule does not hold */
	ev.uplink.bytes_used = 52000;
	ev.uplink.plan_bytes = 50000;
	struct diag_report rep;
	const struct diag_finding *f = only(&ev, &rep);
	cr_assert_str_eq(f->rule->code, "sim_data_cap_exceeded");
	cr_assert(strstr(f->summary, "data used 52000 bytes (at or over the plan)"), "%s", f->summary);
	ev.uplink.plan_bytes = 60000;
	cr_assert_eq(diag_run(&ev, NULL, &rep), 0, "%s", rep.verdict);
}

/* The store's records read with SQLite's json functions: the newest by the
 * device's time gives IO 21/66/69, an earlier one the voltage trend. */
Test(diagnose, uplink_records_read_from_the_store)
{
	char dir[4096], path[4200], err[512];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/r.db", dir);
	store *db;
	cr_assert_eq(store_open(path, &db, err, sizeof err), 0, "%s", err);
	for (int i = 0; i < 6; i++) {
		char sql[600];
		snprintf(sql, sizeof sql,
			 "INSERT INTO records (imei, ts_device, ts_ms, arrival, arrival_ms, priority, lat_e7, lon_e7,"
			 " altitude, angle, satellites, speed, event_io, io, packet_seq, content_hash) VALUES"
			 " ('352094080000001', 'x', %lld, 'x', %lld, 0, 0, 0, 0, 0, 7, 0, 0,"
			 " '{\"21\":%d,\"69\":%d,\"66\":%d}', %d, %d)",
			 (long long)(T0 - (6 - i) * 60000), (long long)(T0 - (6 - i) * 60000 + 500), i < 5 ? 4 : 0,
			 i < 5 ? 1 : 2, 12000 - i * 1300, i, i);
		cr_assert_eq(sqlite3_exec(store_db(db), sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(store_db(db)));
	}
	struct diag_evidence ev;
	diag_evidence_init(&ev, T0);
	evidence_records(db, "352094080000001", T0, &ev.uplink);
	cr_assert_eq(ev.uplink.records, DIAG_CH_ANSWERED, "%s", ev.uplink.records_detail);
	cr_assert_eq(ev.uplink.n_records, 6);
	cr_assert_eq(ev.uplink.last_record_ms, T0 - 60000 + 500);
	cr_assert_eq(ev.uplink.io_signal, 0);
	cr_assert_eq(ev.uplink.io_gnss, 2);
	cr_assert_eq(ev.uplink.io_ext_mv, 12000 - 5 * 1300);
	cr_assert_eq(ev.uplink.io_ext_mv_before, 12000 - 1 * 1300);
	/* An IMEI the store never heard of: no uplink channel here. */
	diag_evidence_init(&ev, T0);
	evidence_records(db, "352094080000002", T0, &ev.uplink);
	cr_assert_eq(ev.uplink.records, DIAG_CH_ABSENT);
	store_close(db);
	support_rmtree(dir);
}

/* ---- end to end: faults through public interfaces, never healthy ---- */

static int relay(const char *rackfile, const char *db, const char *slot, const char *line, const char *what)
{
	static char out[16384];
	char *argv[] = { (char *)rig_bin(), "relay", (char *)slot, (char *)line, (char *)what, "--rack", (char *)rackfile,
			 "--db", (char *)db, NULL };
	return support_run(argv, out, sizeof out);
}

/* Before: both called healthy, exit 0 (uplink and GNSS "unknown" counted as fine). */
Test(diagnose, e2e_cell_antenna_cut_and_sky_outage_are_findings_not_healthy, .timeout = 120)
{
	struct simrack_proc sr;
	virtual_rack(&sr, 2, "reference", 31);
	rack_advance(&sr, 120000);
	char rackfile[4200], db[4200], seg[16384];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536];
	cr_assert_eq(diagnose(rackfile, db, NULL, out, sizeof out), 0, "%s", out);
	cr_assert_eq(relay(rackfile, db, "1", "cell_antenna", "off"), 0);
	int fd = simrack_control(&sr);
	cr_assert_str_eq(support_ctl(fd, "sky 2 outage"), "ok slot=2 sky=outage");
	close(fd);
	rack_advance(&sr, 60000);
	int rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert_null(strstr(out, "\"verdict\": \"healthy\""), "%s", out);
	slot_json(out, 1, seg, sizeof seg);
	cr_assert(strstr(seg, "\"code\": \"coverage_loss\"") && strstr(seg, "not registered"), "%s", seg);
	slot_json(out, 2, seg, sizeof seg);
	cr_assert(strstr(seg, "\"code\": \"gnss_fix_stale\"") && strstr(seg, "(from device)"), "%s", seg);
	cr_assert_null(strstr(seg, "coverage_loss"), "%s", seg);
	simrack_stop(&sr);
}

/* Before: device_unresponsive ("swap the unit") although it answered, garbled. */
Test(diagnose, e2e_flaky_console_is_console_garbled, .timeout = 120)
{
	struct simrack_proc sr;
	virtual_rack(&sr, 1, "flaky_console", 32);
	rack_advance(&sr, 120000);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536];
	int rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "\"code\": \"console_garbled\""), "%s", out);
	cr_assert_null(strstr(out, "device_unresponsive"), "%s", out);
	simrack_stop(&sr);
}

/* `rig serve` in the background, its log in LOG; returns its pid and port. */
static pid_t start_serve(const char *rackfile, const char *db, const char *log, int *port)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, STDOUT_FILENO);
		dup2(o, STDERR_FILENO);
		execl(rig_bin(), rig_bin(), "serve", "--listen", "127.0.0.1:0", "--rack", rackfile, "--db", db, (char *)NULL);
		_exit(127);
	}
	*port = 0;
	for (int i = 0; i < 200 && !*port; i++) {
		usleep(50000);
		char *text = support_read_file(log);
		const char *p = text ? strstr(text, "listening on 127.0.0.1:") : NULL;
		if (p)
			*port = atoi(p + strlen("listening on 127.0.0.1:"));
		free(text);
	}
	cr_assert_gt(*port, 0, "rig serve never said where it listens");
	return pid;
}

static int records_of(const char *db, const char *imei)
{
	sqlite3 *s;
	int n = 0;
	if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(s, "SELECT count(*) FROM records WHERE imei = ?1", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, imei, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW)
				n = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(s);
	return n;
}

/* RACKFILE with its first WHAT replaced by WITH, written to OUT (e.g. a
 * console moved to a port that opens and never answers: a cut cable). */
static void rack_replace(const char *rackfile, const char *what, const char *with, const char *out)
{
	char *text = support_read_file(rackfile);
	cr_assert_not_null(text);
	char *at = strstr(text, what);
	cr_assert_not_null(at, "no %s in %s", what, rackfile);
	FILE *f = fopen(out, "w");
	cr_assert_not_null(f);
	fprintf(f, "%.*s%s%s", (int)(at - text), text, with, at + strlen(what));
	fclose(f);
	free(text);
}

/* Before: device_unresponsive ("power-cycle, swap the unit") in 31 of 31
 * trials although rig serve kept receiving the unit's records. */
Test(diagnose, e2e_cut_console_with_live_uplink_is_console_link_lost, .timeout = 180)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 33), 0);
	char rackfile[4200], db[4200], log[4200], cut[4200], console[4200], boot[512], a[512];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	simrack_console(&sr, 1, console, sizeof console);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	snprintf(log, sizeof log, "%s/serve.log", sr.dir);
	snprintf(cut, sizeof cut, "%s/cut.yaml", sr.dir);
	int port;
	pid_t serve = start_serve(rackfile, db, log, &port);
	/* Point the unit at the rig's ingest, as rig run does. */
	int fd = support_console_booted(&sr, 1, boot, sizeof boot);
	char cmd[64];
	support_console_command(fd, "setparam 2004:127.0.0.1", a, sizeof a);
	snprintf(cmd, sizeof cmd, "setparam 2005:%d", port);
	support_console_command(fd, cmd, a, sizeof a);
	support_console_command(fd, "setparam 2006:0", a, sizeof a);
	close(fd);
	/* An ignition change makes a record at once: no wait for the period. */
	cr_assert_eq(relay(rackfile, db, "1", "ignition", "on"), 0);
	char *text = support_read_file(rackfile);
	char imei[16] = "";
	const char *p = strstr(text, "imei: \"");
	cr_assert_not_null(p);
	snprintf(imei, sizeof imei, "%.15s", p + 7);
	free(text);
	int tries = 0;
	while (records_of(db, imei) == 0 && tries++ < 600)
		usleep(100000);
	cr_assert_gt(records_of(db, imei), 0, "no record from %s reached rig serve", imei);

	int master, slave;
	char dead[256];
	cr_assert_eq(openpty(&master, &slave, dead, NULL, NULL), 0);
	rack_replace(rackfile, console, dead, cut);
	static char out[65536];
	int rc = diagnose(cut, db, "1", out, sizeof out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "\"code\": \"console_link_lost\""), "%s", out);
	cr_assert(strstr(out, "uplink is alive"), "%s", out);
	cr_assert_null(strstr(out, "device_unresponsive"), "%s", out);
	close(master);
	close(slave);
	kill(serve, SIGTERM);
	waitpid(serve, NULL, 0);
	simrack_stop(&sr);
}

/* docs/scenario-file.md: a failed scenario still gets a diagnosis. Before,
 * one whose setup failed (here: the rack file gives the slot no NMEA port
 * for a GNSS scenario) returned first and its result named no reason code. */
Test(diagnose, e2e_run_setup_failure_still_gets_its_closing_diagnosis, .timeout = 120)
{
	struct simrack_proc sr;
	virtual_rack(&sr, 1, "reference", 34);
	char rackfile[4200], nonmea[4200], db[4200], line[4300];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(nonmea, sizeof nonmea, "%s/nonmea.yaml", sr.dir);
	snprintf(db, sizeof db, "%s/r.db", sr.dir);
	snprintf(line, sizeof line, "    nmea: {port: %s/slot1/nmea, baud: 9600}\n", sr.dir);
	rack_replace(rackfile, line, "", nonmea);
	static char out[65536];
	char *argv[] = { (char *)rig_bin(), "run", "gnss-outage", "--rack", nonmea, "--db", db, NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "needs the slot's GNSS output"), "%s", out);
	sqlite3 *s;
	cr_assert_eq(sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT outcome, coalesce(reasons, '') FROM results WHERE slot = '1'", -1, &st,
					NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "error");
	const char *reasons = (const char *)sqlite3_column_text(st, 1);
	char first[64];
	snprintf(first, sizeof first, "%.*s", (int)strcspn(reasons, ","), reasons);
	cr_assert_not_null(diag_rule_find(first), "the result names no reason code: '%s'\n%s", reasons, out);
	sqlite3_finalize(st);
	sqlite3_close(s);
	simrack_stop(&sr);
}

/* ---- seeded single faults through public interfaces: exact codes ---- */

enum fault { F_NONE, F_POWER_OFF, F_CELL_ANTENNA, F_SKY_OUTAGE, F_GNSS_ANTENNA, F_HUNG, F_GARBLED, F_NODE_GONE, F_KINDS };

static const char *const fault_name[F_KINDS] = { "none", "power off", "cell antenna cut", "sky outage",
						 "GNSS antenna cut", "unit hung after a power cycle",
						 "garbled console", "console node removed" };
/* What the diagnosis must say, exactly (NULL: healthy). Without an ingest
 * for these units a removed console node cannot be told from a dead rig
 * link: the honest answer is insufficient_evidence, never healthy. */
static const char *const fault_code[F_KINDS] = { NULL, "power_loss_suspected", "coverage_loss", "gnss_fix_stale",
						 "gnss_fix_stale", "device_unresponsive", "console_garbled",
						 "insufficient_evidence" };

static uint32_t next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* One rack of 8 slots, each with a random single fault (or none), aged a
 * random 1..120 min of rack time, then diagnosed. Counts exact answers and
 * faulted units called healthy. */
static void fault_round(uint32_t *seed, int *trials, int *exact, int *healthy_on_fault, char *log, size_t loglen)
{
	enum fault f[8];
	char profiles[256] = "";
	for (int i = 0; i < 8; i++) {
		f[i] = (enum fault)(next_rand(seed) % F_KINDS);
		snprintf(profiles + strlen(profiles), sizeof profiles - strlen(profiles), "%s%s", i ? "," : "",
			 f[i] == F_HUNG ? "no_return" : f[i] == F_GARBLED ? "flaky_console" : "reference");
	}
	struct simrack_proc sr;
	virtual_rack(&sr, 8, profiles, *seed % 1000 + 100);
	rack_advance(&sr, 180000);   /* booted, first fixes */
	char rackfile[4200], db[4200], slot[16], path[4300];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[262144];
	int ctl = simrack_control(&sr);
	for (int i = 0; i < 8; i++) {
		snprintf(slot, sizeof slot, "%d", i + 1);
		char req[64];
		switch (f[i]) {
		case F_POWER_OFF:
			cr_assert_eq(power(rackfile, db, slot, "off", out, sizeof out), 0, "%s", out);
			break;
		case F_CELL_ANTENNA:
			cr_assert_eq(relay(rackfile, db, slot, "cell_antenna", "off"), 0);
			break;
		case F_GNSS_ANTENNA:
			cr_assert_eq(relay(rackfile, db, slot, "gnss_antenna", "off"), 0);
			break;
		case F_SKY_OUTAGE:
			snprintf(req, sizeof req, "sky %d outage", i + 1);
			cr_assert(!strncmp(support_ctl(ctl, req), "ok", 2));
			break;
		case F_HUNG:
			cr_assert_eq(power(rackfile, db, slot, "cycle", out, sizeof out), 0, "%s", out);
			break;
		case F_NODE_GONE:
			snprintf(path, sizeof path, "%s/slot%d/console", sr.dir, i + 1);
			cr_assert_eq(unlink(path), 0, "%s", path);
			break;
		default:
			break;
		}
	}
	close(ctl);
	rack_advance(&sr, (60 + next_rand(seed) % 7140) * 1000ULL);   /* aged 1..120 min */
	int rc = diagnose(rackfile, db, NULL, out, sizeof out);
	cr_assert(rc == 0 || rc == 1 || rc == 3, "exit %d: %s", rc, out);
	for (int i = 0; i < 8; i++) {
		static char seg[65536];
		slot_json(out, i + 1, seg, sizeof seg);
		bool healthy = strstr(seg, "\"verdict\": \"healthy\"") != NULL;
		int codes = 0;
		for (const char *p = seg; (p = strstr(p, "\"code\": \"")) != NULL; p++)
			codes++;
		char want[64] = "";
		if (fault_code[f[i]])
			snprintf(want, sizeof want, "\"code\": \"%s\"", fault_code[f[i]]);
		bool ok = fault_code[f[i]] ? codes == 1 && strstr(seg, want) : healthy && codes == 0;
		(*trials)++;
		*exact += ok;
		fprintf(stderr, "diag fault: slot %d %-30s %s\n", i + 1, fault_name[f[i]], ok ? "exact" : "WRONG");
		*healthy_on_fault += healthy && f[i] != F_NONE;
		if (!ok)
			snprintf(log + strlen(log), loglen - strlen(log), "slot %d %s: %.600s\n", i + 1, fault_name[f[i]], seg);
	}
	simrack_stop(&sr);
}

/* The small seeded version of the diag_truth: 40 random single
 * faults, at least 95 % exact, no faulted unit called healthy. */
Test(diagnose, e2e_forty_seeded_single_faults_exact_and_never_healthy, .timeout = 600)
{
	uint32_t seed = 13;
	int trials = 0, exact = 0, healthy_on_fault = 0;
	static char log[65536];
	log[0] = '\0';
	for (int round = 0; round < 5; round++)
		fault_round(&seed, &trials, &exact, &healthy_on_fault, log, sizeof log);
	fprintf(stderr, "diag faults: %d trials, %d exact (%.1f %%), %d healthy on a fault\n", trials, exact,
		100.0 * exact / trials, healthy_on_fault);
	cr_assert_eq(trials, 40);
	cr_assert_eq(healthy_on_fault, 0, "faulted units called healthy:\n%s", log);
	cr_assert_geq(exact * 100, trials * 95, "%d of %d exact:\n%s", exact, trials, log);
}

/* A console cable to another unit (slot 1's port answers as slot 2's unit)
 * says nothing about slot 1's unit: never healthy on its word. */
Test(diagnose, e2e_console_of_another_unit_is_not_this_units_answer, .timeout = 120)
{
	struct simrack_proc sr;
	virtual_rack(&sr, 2, "reference", 35);
	rack_advance(&sr, 120000);
	char rackfile[4200], swapped[4200], db[4200], one[4200], two[4200], seg[16384];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	simrack_console(&sr, 1, one, sizeof one);
	simrack_console(&sr, 2, two, sizeof two);
	snprintf(swapped, sizeof swapped, "%s/swapped.yaml", sr.dir);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	rack_replace(rackfile, one, two, swapped);
	static char out[65536];
	int rc = diagnose(swapped, db, NULL, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, out);
	slot_json(out, 1, seg, sizeof seg);
	cr_assert(strstr(seg, "\"code\": \"insufficient_evidence\"") && strstr(seg, "answers as IMEI"), "%s", seg);
	slot_json(out, 2, seg, sizeof seg);
	cr_assert(strstr(seg, "\"verdict\": \"healthy\""), "%s", seg);
	simrack_stop(&sr);
}
