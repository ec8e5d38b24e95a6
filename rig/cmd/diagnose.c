/*
 * cmd/diagnose.c - `rig diagnose [SLOTS] --rack FILE`: gather each slot's
 * evidence over its independent channels (supply, console, results store),
 * run the reason-code rules (diagnose.h) and say what to do.
 *
 * Gathering is kept here and the judgement in diagnose.c, so the same rules
 * can later run on evidence from the ingest link without touching hardware.
 */
#include "cli.h"
#include "clock.h"
#include "diagnose.h"
#include "evidence.h"
#include "json.h"
#include "power.h"
#include "rack.h"
#include "slotdev.h"
#include "store.h"
#include "store_health.h"
#include "tracker.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_diagnose_usage[] =
	"usage: rig diagnose [SLOTS] --rack FILE [options]\n\n"
	"Says what is wrong with each slot's tracker in SLOTS (3, 1-4,7 or all; default\n"
	"all), with a reason code, a confidence, the numbers behind it, an action for ops\n"
	"and one for the technician, and when each channel was last seen. Evidence, over\n"
	"every channel the slot has: its supply (Modbus), its console (the identity question, twice), the\n"
	"modem, GNSS and restart counter as the device tells them (through its driver), and\n"
	"the results store (uplink records of its IMEI, the console's last good answer, the\n"
	"supply's last reading, earlier restart counter readings). \"healthy\" only when\n"
	"every channel was read and is fine. Each diagnosis is recorded as an event.\n"
	"Reason codes: docs/reason-codes.md.\n\n"
	"options:\n"
	"  --rack FILE        rack file (required; also $TRACKRIG_RACK)\n"
	"  --json             JSON instead of text\n"
	"  --timeout MS       console answer and Modbus timeout (default 1000)\n"
	"  --brownout V       device brown-out voltage (default 6.0)\n"
	"  --boot-watch S     after a watchdog or crash reset with no earlier restart counter\n"
	"                     reading, watch the counter this long (default 20; 0 off)\n"
	"  --sim-plan BYTES   the SIM's data plan, to judge data used against it\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who does this, for the audit trail (default $USER)\n\n"
	"exit: 0 every slot healthy (every channel read and fine), 1 a finding on some slot,\n"
	"      2 usage or rack file error, 3 the rig could not gather enough evidence for a\n"
	"      slot (insufficient_evidence: a channel not read, named)\n";

struct opts {
	const char *rack, *slots, *db, *operator_;
	bool json;
	int timeout_ms;
	struct diag_params params;
	int64_t plan_bytes;     /* the SIM's data plan, 0 unknown */
	int boot_watch_ms;      /* how long to watch the restart counter after a crash reset */
	rig_clock *clock;       /* the rack's clock, for the console's deadlines */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the results store: what earlier commands saw ---- */

/* The console's last good answer: an audited console command that came
 * back "ok" on this slot's console port. */
static int64_t console_last_seen(store *db, const char *slot, const char *port, const char *station)
{
	char at[64];
	if (store_console_answer_latest(db, slot, port, station, at, sizeof at) != 1)
		return DIAG_NEVER;
	return diag_parse_time(at);
}

/* The supply's last reading when it cannot be read now: `rig power` and
 * `rig diagnose` audit "ok: output off, 0.00 V, 0.000 A" against the
 * transport. */
static void supply_last_reading(store *db, const char *slot, const char *transport, const char *station,
				struct diag_supply *s)
{
	char at_text[64], result[256];
	if (store_supply_reading_latest(db, slot, transport, station, at_text, sizeof at_text, result,
					sizeof result) != 1)
		return;
	int64_t at = diag_parse_time(at_text);
	char onoff[4];
	double v, i;
	if (at == DIAG_NEVER || sscanf(result, "ok: output %3[onf], %lf V, %lf A", onoff, &v, &i) != 3)
		return;
	s->have_reading = true;
	s->output_on = strcmp(onoff, "on") == 0;
	s->v_out = v;
	s->i_out = i;
	s->read_at_ms = at;
}

/* ---- live channels ---- */

static void audit(store *db, int64_t run_id, const struct opts *o, const struct rack *rack, const struct rack_slot *s,
		  const char *port, const char *command, const char *result)
{
	char slot[12];
	snprintf(slot, sizeof slot, "%d", s->id);
	struct store_audit a = { .run_id = run_id, .operator_ = cli_operator(o->operator_), .station = rack->station,
				 .slot = slot, .port = port, .imei = *s->expect.imei ? s->expect.imei : NULL,
				 .command = command, .result = result };
	if (store_audit_add(db, &a) < 0)
		fprintf(stderr, "rig diagnose: results store: %s\n", store_error(db));
}

/* Opens the slot's supply for evidence_supply(): *DEV NULL with ERR on failure. */
static void open_supply(const struct rack_slot *s, const struct opts *o, struct power_dev **dev, char *err, size_t len)
{
	slotdev_supply(s, o->timeout_ms, dev, err, len);
}

/* Opens the slot's console: *T NULL with ERR when the port is missing or will not open. */
static void open_console(const struct rack_slot *s, const struct opts *o, tracker **t, char *err, size_t len)
{
	slotdev_console(s, NULL, o->clock ? clock_for_tracker(o->clock) : NULL, t, err, len);
}

/* A virtual rack's time; on a real-time rack the wall clock, which is what
 * `rig serve` and earlier commands stamped their rows with. */
static int64_t rack_now_ms(const struct opts *o)
{
	return o->clock && clock_is_virtual(o->clock) ? clock_unix_ms(o->clock, clock_now(o->clock)) : now_ms();
}

struct slot_result {
	int id;
	struct diag_report report;
};

/* One event per finding (kind = reason code), or one "healthy": the
 * diagnosis history of a slot reads from the events table alone. */
static void record_diagnosis(store *db, int64_t run_id, const struct rack_slot *s, const struct diag_report *rep)
{
	char slot[12], detail[DIAG_LINE_MAX + 32];
	snprintf(slot, sizeof slot, "%d", s->id);
	struct store_event e = { .run_id = run_id, .slot = slot, .imei = *s->expect.imei ? s->expect.imei : NULL,
				 .source = "diagnose", .kind = "healthy", .detail = rep->verdict };
	if (!rep->n_findings && store_event_add(db, &e) < 0)
		fprintf(stderr, "rig diagnose: results store: %s\n", store_error(db));
	for (int i = 0; i < rep->n_findings; i++) {
		const struct diag_finding *f = &rep->findings[i];
		snprintf(detail, sizeof detail, "confidence %.2f: %s", f->confidence, f->summary);
		e.kind = f->rule->code;
		e.detail = detail;
		if (store_event_add(db, &e) < 0)
			fprintf(stderr, "rig diagnose: results store: %s\n", store_error(db));
	}
}

/* Gathers, judges and records one slot. */
static void diagnose_slot(const struct opts *o, const struct rack *rack, const struct rack_slot *s, store *db,
			  int64_t run_id, struct slot_result *r)
{
	struct diag_evidence ev;
	diag_evidence_init(&ev, rack_now_ms(o));
	char slot[12], sres[256] = "", cres[256] = "", supply_err[512] = "", console_err[512] = "", where[300];
	snprintf(slot, sizeof slot, "%d", s->id);
	bool has_supply = s->power.kind == RACK_POWER_SUPPLY;
	struct power_dev *dev = NULL;
	tracker *t = NULL;
	if (has_supply) {
		snprintf(where, sizeof where, "%s unit %d", s->power.bus.transport, s->power.bus.unit);
		open_supply(s, o, &dev, supply_err, sizeof supply_err);
	} else {
		snprintf(supply_err, sizeof supply_err, "%s", s->power.kind == RACK_POWER_RELAY
			 ? "power by relay line: the rig cannot measure it" : "no supply in the rack file");
	}
	if (*s->console.path)
		open_console(s, o, &t, console_err, sizeof console_err);
	struct evidence_source src = {
		.now_ms = ev.now_ms, .timeout_ms = o->timeout_ms, .trk = t, .console_path = s->console.path,
		.console_err = console_err, .imei = s->expect.imei, .has_supply = has_supply, .supply = dev,
		.supply_where = where, .supply_err = supply_err, .db = db, .slot_label = slot, .station = rack->station,
		.silent_after_ms = s->declared.record_period_s > 0 ? 3LL * s->declared.record_period_s * 1000 : 0,
		.plan_bytes = o->plan_bytes, .boot_watch_ms = o->boot_watch_ms,
		.clock = o->clock ? clock_for_tracker(o->clock) : NULL,
	};
	struct evidence_boot_reading boot;
	evidence_gather(&src, &ev, &boot);
	if (dev)
		dev->driver->close(dev);
	if (t)
		tracker_close(t);

	if (ev.supply.state == DIAG_CH_UNREACHABLE)
		supply_last_reading(db, slot, s->power.bus.transport, rack->station, &ev.supply);
	if (ev.console.state != DIAG_CH_ANSWERED && *s->console.path)
		ev.console.last_seen_ms = console_last_seen(db, slot, s->console.path, rack->station);

	/* Audited after the look-ups, so this run's failures never count as
	 * the "last" anything; its successes do for the next run. */
	if (ev.supply.state == DIAG_CH_ANSWERED) {
		snprintf(sres, sizeof sres, "ok: output %s, %.2f V, %.3f A", ev.supply.output_on ? "on" : "off",
			 ev.supply.v_out, ev.supply.i_out);
		audit(db, run_id, o, rack, s, s->power.bus.transport, "power status", sres);
	}
	if (ev.console.state == DIAG_CH_ANSWERED)
		snprintf(cres, sizeof cres, "ok");
	else if (ev.console.state != DIAG_CH_ABSENT)
		snprintf(cres, sizeof cres, "%.250s", ev.console.detail);
	if (*cres)
		audit(db, run_id, o, rack, s, s->console.path, "ping", cres);
	if (boot.at_ms != DIAG_NEVER && boot.boots >= 0) {
		char b[128];
		evidence_boot_text(&boot, b, sizeof b);
		audit(db, run_id, o, rack, s, s->console.path, "restarts", b);
	}

	r->id = s->id;
	diag_run(&ev, &o->params, &r->report);
	record_diagnosis(db, run_id, s, &r->report);
}

/* ---- output ---- */

static void print_text(const struct slot_result *r)
{
	const struct diag_report *rep = &r->report;
	printf("slot %d: %s\n", r->id, rep->verdict);
	for (int i = 0; i < rep->n_findings; i++) {
		const struct diag_finding *f = &rep->findings[i];
		printf("slot %d: %s: %s (confidence %.2f)\n", r->id, f->rule->code, f->rule->title, f->confidence);
		printf("  why:         %s\n", f->summary);
		printf("  ops:         %s\n", f->rule->action_ops);
		printf("  technician:  %s\n", f->rule->action_technician);
		for (int k = 0; k < f->n_evidence; k++)
			printf("  %-12s %s\n", k ? "" : "evidence:", f->evidence[k]);
	}
	printf("  last seen:   console %s, supply read %s\n", rep->console_last_seen, rep->supply_last_read);
}

static void print_json(struct json *j, const struct slot_result *r)
{
	const struct diag_report *rep = &r->report;
	json_obj_begin(j, NULL);
	json_int(j, "slot", r->id);
	json_str(j, "verdict", !rep->n_findings ? "healthy" : rep->inconclusive ? "inconclusive" : "finding");
	json_str(j, "channels", rep->verdict);
	json_arr_begin(j, "findings");
	for (int i = 0; i < rep->n_findings; i++) {
		const struct diag_finding *f = &rep->findings[i];
		json_obj_begin(j, NULL);
		json_str(j, "code", f->rule->code);
		json_num(j, "confidence", f->confidence);
		json_str(j, "summary", f->summary);
		json_str(j, "action_ops", f->rule->action_ops);
		json_str(j, "action_technician", f->rule->action_technician);
		json_arr_begin(j, "evidence");
		for (int k = 0; k < f->n_evidence; k++)
			json_str(j, NULL, f->evidence[k]);
		json_arr_end(j);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_begin(j, "last_seen");
	json_str(j, "console", rep->console_last_seen);
	json_str(j, "supply", rep->supply_last_read);
	json_obj_end(j);
	json_obj_end(j);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "json", no_argument, 0, 'j' },
		{ "timeout", required_argument, 0, 't' }, { "brownout", required_argument, 0, 'b' },
		{ "db", required_argument, 0, 'd' }, { "operator", required_argument, 0, 'o' },
		{ "boot-watch", required_argument, 0, 'w' }, { "sim-plan", required_argument, 0, 'p' }, { 0, 0, 0, 0 },
	};
	*o = (struct opts){ .rack = getenv("TRACKRIG_RACK"), .timeout_ms = 1000, .params = diag_default_params,
			    .boot_watch_ms = 20000 };
	int c;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->rack = optarg; break;
		case 'j': o->json = true; break;
		case 'd': o->db = optarg; break;
		case 'o': o->operator_ = optarg; break;
		case 't': {
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || v < 1 || v > 600000)
				return cli_fail(RIG_EXIT_USAGE, "diagnose", "--timeout '%s': expected milliseconds", optarg);
			o->timeout_ms = (int)v;
			break;
		}
		case 'w': {
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || v < 0 || v > 600)
				return cli_fail(RIG_EXIT_USAGE, "diagnose", "--boot-watch '%s': expected seconds 0..600", optarg);
			o->boot_watch_ms = (int)v * 1000;
			break;
		}
		case 'p': {
			long long v = strtoll(optarg, &end, 10);
			if (end == optarg || *end || v < 1)
				return cli_fail(RIG_EXIT_USAGE, "diagnose", "--sim-plan '%s': expected bytes", optarg);
			o->plan_bytes = v;
			break;
		}
		case 'b':
			o->params.brownout_v = strtod(optarg, &end);
			if (end == optarg || *end || !(o->params.brownout_v > 0 && o->params.brownout_v < 100))
				return cli_fail(RIG_EXIT_USAGE, "diagnose", "--brownout '%s': expected volts", optarg);
			break;
		default:
			return cli_bad_option("diagnose", longopts, argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return cli_fail(RIG_EXIT_USAGE, "diagnose", "expected at most one SLOTS list, got '%s' too", argv[optind + 1]);
	o->slots = argc - optind == 1 ? argv[optind] : "all";
	if (!o->rack)
		return cli_fail(RIG_EXIT_USAGE, "diagnose", "which rack? give --rack FILE (or set TRACKRIG_RACK)");
	return RIG_EXIT_OK;
}

static int run_slots(const struct opts *o, const struct rack *rack, const bool *sel, store *db)
{
	struct store_run run = { .command = "diagnose", .station = rack->station, .rack = rack->file,
				 .operator_ = cli_operator(o->operator_) };
	int64_t run_id = store_run_begin(db, &run);
	if (run_id < 0) {
		fprintf(stderr, "rig diagnose: results store: %s\n", store_error(db));
		run_id = 0;
	}
	struct json j;
	if (o->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_str(&j, "station", rack->station);
		json_str(&j, "rack", rack->file);
		json_arr_begin(&j, "slots");
	}
	int exit_code = RIG_EXIT_OK;
	for (int i = 0; i < rack->n_slots; i++) {
		if (!sel[i])
			continue;
		struct slot_result r;
		diagnose_slot(o, rack, &rack->slots[i], db, run_id, &r);
		if (o->json)
			print_json(&j, &r);
		else
			print_text(&r);
		/* "Could not tell" outranks a finding: the rack needs fixing first. */
		int rc = r.report.inconclusive ? RIG_EXIT_INFRA : r.report.n_findings ? RIG_EXIT_FAIL : RIG_EXIT_OK;
		if (rc == RIG_EXIT_INFRA || exit_code == RIG_EXIT_OK)
			exit_code = rc;
	}
	if (o->json) {
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	}
	if (run_id > 0 && store_run_end(db, run_id, exit_code == RIG_EXIT_OK ? "pass"
					    : exit_code == RIG_EXIT_FAIL ? "fail" : "error") < 0)
		fprintf(stderr, "rig diagnose: results store: %s\n", store_error(db));
	return exit_code;
}

int cmd_diagnose(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc != RIG_EXIT_OK)
		return rc;
	struct rack rack;
	char err[768];
	if (rack_load(o.rack, &rack, err, sizeof err)) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "diagnose", "%s", err);
	}
	bool *sel = calloc((size_t)rack.n_slots + 1, sizeof *sel);
	if (!sel)
		snprintf(err, sizeof err, "out of memory");
	if (!sel || rack_select(&rack, o.slots, sel, err, sizeof err) < 0) {
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "diagnose", "%s", err);
	}
	store *db = NULL;
	if (store_open(cli_db_path(o.db), &db, err, sizeof err)) {
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_INFRA, "diagnose", "results store: %s", err);
	}
	if (clock_or_warn(&rack, &o.clock, err, sizeof err, "diagnose")) {
		store_close(db);
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_INFRA, "diagnose", "clock: %s", err);
	}
	rc = run_slots(&o, &rack, sel, db);
	clock_close(o.clock);
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "diagnose", "%s", serr);
	free(sel);
	rack_free(&rack);
	return rc;
}
