/*
 * cmd_diagnose.c - `rig diagnose [SLOTS] --rack FILE`: gather each slot's
 * evidence over its independent channels (supply, console, results store),
 * run the reason-code rules (diagnose.h) and say what to do.
 *
 * Gathering is kept here and the judgement in diagnose.c, so the same rules
 * can later run on evidence from the ingest link without touching hardware.
 */
#include "cli.h"
#include "clock.h"
#include "diagnose.h"
#include "json.h"
#include "power.h"
#include "rack.h"
#include "store.h"
#include "tracker.h"

#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_diagnose_usage[] =
	"usage: rig diagnose [SLOTS] --rack FILE [options]\n\n"
	"Says why each slot's tracker in SLOTS (3, 1-4,7 or all; default all) is not\n"
	"answering, with a reason code, a confidence, the numbers behind it, an action for\n"
	"ops and one for the technician, and when each channel was last seen. Evidence:\n"
	"the slot's supply (read over Modbus), one getver on its console, and the results\n"
	"store (the console's last good answer, the supply's last reading). Each diagnosis\n"
	"is recorded as an event. Reason codes: docs/reason-codes.md.\n\n"
	"options:\n"
	"  --rack FILE        rack file (required; also $TRACKRIG_RACK)\n"
	"  --json             JSON instead of text\n"
	"  --timeout MS       console answer and Modbus timeout (default 1000)\n"
	"  --brownout V       device brown-out voltage (default 6.0)\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who does this, for the audit trail (default $USER)\n\n"
	"exit: 0 every slot healthy, 1 a finding on some slot, 2 usage or rack file error,\n"
	"      3 the rig could not gather enough evidence for a slot (insufficient_evidence)\n";

struct opts {
	const char *rack, *slots, *db, *operator_;
	bool json;
	int timeout_ms;
	struct diag_params params;
	rig_clock *clock;       /* the rack's clock, for the console's deadlines */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the results store: what earlier commands saw ---- */

/* Time of the latest audit row matching SQL's ?1 slot, ?2 port, ?3 station;
 * the row's result into RESULT when given. store.c keeps its statements to
 * itself, so this module prepares its own (rarely run, not worth caching). */
static int64_t latest_row(store *db, const char *sql, const char *slot, const char *port, const char *station,
			  char *result, size_t len)
{
	sqlite3_stmt *st;
	int64_t at = DIAG_NEVER;
	if (sqlite3_prepare_v2(store_db(db), sql, -1, &st, NULL) != SQLITE_OK)
		return DIAG_NEVER;
	sqlite3_bind_text(st, 1, slot, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, port, -1, SQLITE_STATIC);
	if (station && *station)
		sqlite3_bind_text(st, 3, station, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		at = diag_parse_time((const char *)sqlite3_column_text(st, 0));
		if (result)
			snprintf(result, len, "%s", sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
	}
	sqlite3_finalize(st);
	return at;
}

/* The console's last good answer: an audited console command that came
 * back "ok" on this slot's console port. Matching the port keeps supply
 * actions (audited against the Modbus transport) out. */
static int64_t console_last_seen(store *db, const char *slot, const char *port, const char *station)
{
	return latest_row(db,
			  "SELECT at, result FROM audit WHERE slot = ?1 AND port = ?2 AND (?3 IS NULL OR station = ?3)"
			  " AND result LIKE 'ok%' ORDER BY at DESC, id DESC LIMIT 1",
			  slot, port, station, NULL, 0);
}

/* The supply's last reading when it cannot be read now: `rig power` and
 * `rig diagnose` audit "ok: output off, 0.00 V, 0.000 A" against the
 * transport. */
static void supply_last_reading(store *db, const char *slot, const char *transport, const char *station,
				struct diag_supply *s)
{
	char result[256];
	int64_t at = latest_row(db,
				"SELECT at, result FROM audit WHERE slot = ?1 AND port = ?2 AND (?3 IS NULL OR station = ?3)"
				" AND result LIKE 'ok: output %' ORDER BY at DESC, id DESC LIMIT 1",
				slot, transport, station, result, sizeof result);
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

static void gather_supply(const struct rack_slot *s, const struct opts *o, struct diag_supply *out, char *result,
			  size_t rlen)
{
	*result = '\0';
	if (s->power.kind != RACK_POWER_SUPPLY) {
		out->state = DIAG_CH_UNKNOWN;
		snprintf(out->detail, sizeof out->detail, "%s", s->power.kind == RACK_POWER_RELAY
			 ? "power by relay line: the rig cannot measure it" : "no supply in the rack file");
		return;
	}
	snprintf(out->where, sizeof out->where, "%s unit %d", s->power.bus.transport, s->power.bus.unit);
	const struct power_driver *drv = power_driver_find(s->power.driver);
	struct power_dev *dev;
	char err[512];
	if (!drv) {
		out->state = DIAG_CH_UNREACHABLE;
		snprintf(out->detail, sizeof out->detail, "unknown supply driver '%s'", s->power.driver);
		return;
	}
	if (drv->open(s->power.bus.transport, s->power.bus.unit, o->timeout_ms, &dev, err, sizeof err) != POWER_OK) {
		out->state = DIAG_CH_UNREACHABLE;
		snprintf(out->detail, sizeof out->detail, "%.300s", err);
		return;
	}
	struct power_status st;
	if (drv->status(dev, &st) != POWER_OK) {
		out->state = DIAG_CH_UNREACHABLE;
		snprintf(out->detail, sizeof out->detail, "%.300s", power_error(dev));
		drv->close(dev);
		return;
	}
	drv->close(dev);
	diag_supply_reading(out, &st, now_ms());
	snprintf(result, rlen, "ok: output %s, %.2f V, %.3f A", st.output_on ? "on" : "off", st.v_out, st.i_out);
}

/* One getver under a short deadline: enough to tell answering from silent
 * without the cost of a full probe. */
static void gather_console(const struct rack_slot *s, const struct opts *o, struct diag_console *out, char *result,
			   size_t rlen)
{
	*result = '\0';
	if (!*s->console.path) {
		out->state = DIAG_CH_UNKNOWN;
		snprintf(out->detail, sizeof out->detail, "no console in the rack file");
		return;
	}
	snprintf(out->where, sizeof out->where, "%s", s->console.path);
	const struct tracker_proto *proto = tracker_proto_find(*s->protocol ? s->protocol : "teltonika");
	if (!proto) {
		out->state = DIAG_CH_UNKNOWN;
		snprintf(out->detail, sizeof out->detail, "unknown tracker protocol '%s'", s->protocol);
		return;
	}
	tracker *t;
	char err[512], answer[TRACKER_LINE_MAX + 1];
	if (tracker_open_console(s->console.path, s->console.baud, SERIAL_BACKEND_AUTO, proto, &t, err, sizeof err)) {
		out->state = DIAG_CH_UNREACHABLE;
		snprintf(out->detail, sizeof out->detail, "%.300s", err);
		snprintf(result, rlen, "%.250s", err);
		return;
	}
	if (o->clock)
		tracker_set_clock(t, clock_for_tracker(o->clock));
	int rc = tracker_command(t, "getver", answer, sizeof answer, o->timeout_ms);
	if (rc == TRACKER_OK) {
		out->state = DIAG_CH_ANSWERED;
		out->last_seen_ms = now_ms();
		snprintf(result, rlen, "ok");
	} else {
		/* A vanished port is the rig's end failing; anything else the
		 * device did (silence, garbage, refusal) is no good answer. */
		out->state = rc == TRACKER_ERR_GONE ? DIAG_CH_UNREACHABLE : DIAG_CH_SILENT;
		snprintf(out->detail, sizeof out->detail, "%.300s", tracker_error(t));
		snprintf(result, rlen, "%.250s", tracker_error(t));
	}
	tracker_close(t);
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
				 .source = "diagnose", .kind = "healthy", .detail = "console answered getver" };
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
	struct diag_evidence ev = { .now_ms = now_ms() };
	ev.console.last_seen_ms = DIAG_NEVER;
	ev.supply.read_at_ms = DIAG_NEVER;
	ev.uplink.last_record_ms = DIAG_NEVER;
	ev.gnss.last_fix_ms = DIAG_NEVER;
	char slot[12], sres[256], cres[256];
	snprintf(slot, sizeof slot, "%d", s->id);

	gather_supply(s, o, &ev.supply, sres, sizeof sres);
	if (ev.supply.state == DIAG_CH_UNREACHABLE)
		supply_last_reading(db, slot, s->power.bus.transport, rack->station, &ev.supply);
	gather_console(s, o, &ev.console, cres, sizeof cres);
	if (ev.console.state != DIAG_CH_ANSWERED && *s->console.path)
		ev.console.last_seen_ms = console_last_seen(db, slot, s->console.path, rack->station);

	/* Audited after the look-ups, so this run's failures never count as
	 * the "last" anything; its successes do for the next run. */
	if (ev.supply.state == DIAG_CH_ANSWERED)
		audit(db, run_id, o, rack, s, s->power.bus.transport, "power status", sres);
	if (*cres)
		audit(db, run_id, o, rack, s, s->console.path, "getver", cres);

	r->id = s->id;
	diag_run(&ev, &o->params, &r->report);
	record_diagnosis(db, run_id, s, &r->report);
}

/* ---- output ---- */

static void print_text(const struct slot_result *r)
{
	const struct diag_report *rep = &r->report;
	if (!rep->n_findings)
		printf("slot %d: healthy (console answered)\n", r->id);
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
		{ "db", required_argument, 0, 'd' }, { "operator", required_argument, 0, 'o' }, { 0, 0, 0, 0 },
	};
	*o = (struct opts){ .rack = getenv("TRACKRIG_RACK"), .timeout_ms = 1000, .params = diag_default_params };
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
		case 'b':
			o->params.brownout_v = strtod(optarg, &end);
			if (end == optarg || *end || !(o->params.brownout_v > 0 && o->params.brownout_v < 100))
				return cli_fail(RIG_EXIT_USAGE, "diagnose", "--brownout '%s': expected volts", optarg);
			break;
		default:
			return cli_fail(RIG_EXIT_USAGE, "diagnose", "see rig diagnose --help");
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
