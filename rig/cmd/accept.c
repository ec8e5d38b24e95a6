/*
 * cmd/accept.c - `rig accept`: a technician's install acceptance of ONE
 * device, in minutes (seconds on a virtual rack).
 *
 * Identity against the work order (a difference is metadata drift, named
 * with both values), firmware, supply voltage, GNSS through the rig's own
 * gpsd on the slot's nmea port (fix, satellites, HDOP, TTFF, dispatch
 * verdict), cellular (registered, signal, a record received by an ingest
 * this command starts), and the install context a person confirms by
 * looking. PASS or FAIL with reason codes and actions (diagnose.h's rules
 * where they apply), stored as a run "accept", reported as text, JSON and
 * printable HTML.
 *
 * One thread talks to the device, gpsd and the ingest; it joins the rack's
 * clock so that on a virtual rack every wait is rack time.
 */
#include "accept.h"
#include "cli.h"
#include "clock.h"
#include "diagnose.h"
#include "dispatch.h"
#include "embedded.h"
#include "gnss.h"
#include "ingest.h"
#include "power.h"
#include "rack.h"
#include "slotdev.h"
#include "store.h"
#include "tracker.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cmd_accept_usage[] =
	"usage: rig accept --port PORT | --slot N [options]\n\n"
	"Install acceptance of one device, for the technician: identity against the\n"
	"work order (IMEI, ICCID, serial, vehicle: a difference is metadata drift and\n"
	"fails naming both values), firmware as expected, supply voltage, GNSS through\n"
	"the rig's own gpsd on the slot's nmea port (fix, satellites, HDOP, TTFF,\n"
	"dispatch verdict), cellular (registered, signal, and a telemetry record\n"
	"received by an ingest this command starts, within a limit), and the install\n"
	"context a person confirms by looking (vehicle, mounting position, antenna\n"
	"placement, install time): asked on the terminal, or read from --answers.\n"
	"PASS or FAIL, with a reason code and an action for each failed check.\n"
	"With --slot and no --rack, a simulated rack on virtual time is started.\n\n"
	"options:\n"
	"  --port PORT        the device's console (a bare device, no rack)\n"
	"  --nmea PORT        its NMEA port, with --port (else GNSS is not measured)\n"
	"  --slot N           a slot of the rack file\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --work-order FILE  expected identity: imei, iccid, serial, vehicle, firmware\n"
	"                     (key: value or key=value lines); default: the rack file's\n"
	"  --answers FILE     install context (vehicle, mounting, antenna, install_time)\n"
	"  --db FILE          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --html FILE        printable HTML report\n"
	"  --text FILE        plain text report (it is always printed on stdout)\n"
	"  --json FILE        JSON record\n"
	"  --record-limit S   seconds for the first telemetry record (default 360: a\n"
	"                     parked unit sends every 300 s by default, param 10050)\n"
	"  --gnss-limit S     seconds for a GNSS fix (default 120)\n"
	"  --timeout MS       deadline per device command (default 3000)\n"
	"  --operator NAME    who accepts, for the record (default $USER)\n\n"
	"--html, --text and --json are checked writable before any check (exit 2 at once).\n"
	"exit: 0 PASS, 1 FAIL, 2 usage or file error, 3 console or rack unreachable\n";

struct opts {
	const char *port, *nmea, *rack, *work_order, *answers, *db, *html, *text, *json, *operator_;
	long slot;
	int timeout_ms;
	long record_limit_s, gnss_limit_s;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, 0, 'p' }, { "slot", required_argument, 0, 's' },
		{ "rack", required_argument, 0, 'r' }, { "work-order", required_argument, 0, 'w' },
		{ "answers", required_argument, 0, 'a' }, { "db", required_argument, 0, 'd' },
		{ "html", required_argument, 0, 'H' }, { "text", required_argument, 0, 'T' },
		{ "json", required_argument, 0, 'j' }, { "operator", required_argument, 0, 'o' },
		{ "timeout", required_argument, 0, 't' }, { "record-limit", required_argument, 0, 'R' },
		{ "gnss-limit", required_argument, 0, 'G' }, { "nmea", required_argument, 0, 'n' },
		{ 0, 0, 0, 0 },
	};
	*o = (struct opts){ .timeout_ms = 3000, .record_limit_s = 360, .gnss_limit_s = 120 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o->port = optarg; break;
		case 'n': o->nmea = optarg; break;
		case 'r': o->rack = optarg; break;
		case 'w': o->work_order = optarg; break;
		case 'a': o->answers = optarg; break;
		case 'd': o->db = optarg; break;
		case 'H': o->html = optarg; break;
		case 'T': o->text = optarg; break;
		case 'j': o->json = optarg; break;
		case 'o': o->operator_ = optarg; break;
		case 's':
			if (cli_long(optarg, 1, 9999, &o->slot))
				return cli_fail(RIG_EXIT_USAGE, "accept", "--slot '%s': expected a slot number", optarg);
			break;
		case 't':
			if (cli_ms(optarg, &o->timeout_ms))
				return cli_fail(RIG_EXIT_USAGE, "accept", "--timeout '%s': expected milliseconds", optarg);
			break;
		case 'R':
			if (cli_long(optarg, 1, 3600, &o->record_limit_s))
				return cli_fail(RIG_EXIT_USAGE, "accept", "--record-limit '%s': expected 1..3600 s", optarg);
			break;
		case 'G':
			if (cli_long(optarg, 1, 3600, &o->gnss_limit_s))
				return cli_fail(RIG_EXIT_USAGE, "accept", "--gnss-limit '%s': expected 1..3600 s", optarg);
			break;
		default: return cli_bad_option("accept", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "accept", "unexpected argument '%s'", argv[optind]);
	if (!o->port == !o->slot)
		return cli_fail(RIG_EXIT_USAGE, "accept", "give --port PORT or --slot N (one device)");
	if (o->port && o->rack)
		return cli_fail(RIG_EXIT_USAGE, "accept", "--port is a bare device: use --slot N with --rack");
	/* Every report path is checked now, not after the five minutes of checks. */
	const struct { const char *opt, *path; } out[] = {
		{ "--html", o->html }, { "--text", o->text }, { "--json", o->json },
	};
	char perr[1400];
	for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
		if (out[i].path && cli_output_writable(out[i].path, perr, sizeof perr))
			return cli_fail(RIG_EXIT_USAGE, "accept", "%s %s", out[i].opt, perr);
	return RIG_EXIT_OK;
}

/* ---- install context: prompts on a terminal ---- */

static void ask(const char *question, char *out, size_t len)
{
	fprintf(stderr, "%s: ", question);
	fflush(stderr);
	char line[256];
	if (!fgets(line, sizeof line, stdin))
		return;
	size_t n = strcspn(line, "\r\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, line, n);
	out[n] = '\0';
}

static void prompt_answers(struct accept_answers *a)
{
	fprintf(stderr, "rig accept: look at the installation and answer (Enter leaves one unanswered)\n");
	ask("vehicle (plate or fleet number, as written on the vehicle)", a->vehicle, sizeof a->vehicle);
	ask("mounting position (e.g. behind the dashboard, left)", a->mounting, sizeof a->mounting);
	ask("GNSS antenna placement (e.g. under the windscreen, clear sky view)", a->antenna, sizeof a->antenna);
	ask("install time (e.g. 2026-11-26 08:30)", a->install_time, sizeof a->install_time);
}

/* ---- the device session ---- */

struct session {
	const struct opts *o;
	struct accept_result *r;
	rig_clock *clk;
	store *db;
	tracker *trk;
	const struct rack *rack;
	const struct rack_slot *slot;
	struct tracker_status st;
	struct diag_evidence ev;
	struct tracker_server server_was; /* the unit's own server, put back at the end */
	bool have_server_was;
};

static void audit(struct session *s, const char *cmd, const char *result)
{
	if (!s->db)
		return;
	struct store_audit a = { .run_id = s->r->run_id, .operator_ = s->r->operator_, .station = s->r->station,
				 .slot = *s->r->slot ? s->r->slot : NULL, .port = s->r->port,
				 .imei = *s->r->imei ? s->r->imei : NULL, .command = cmd, .result = result };
	store_audit_add(s->db, &a);
}

static const char *rule_action(const char *code, bool ops)
{
	const struct diag_rule *r = diag_rule_find(code);
	return r ? (ops ? r->action_ops : r->action_technician) : "";
}

static int identify(struct session *s)
{
	struct tracker_identity id;
	int64_t deadline = clock_now(s->clk) + 15000; /* a device just powered is still booting */
	int rc;
	do {
		rc = tracker_identify(s->trk, &id, s->o->timeout_ms);
	} while (rc != TRACKER_OK && rc != TRACKER_ERR_GONE && clock_now(s->clk) < deadline &&
		 !clock_aborted(s->clk));
	if (rc != TRACKER_OK)
		return rc;
	struct accept_result *r = s->r;
	r->identified = true;
	snprintf(r->imei, sizeof r->imei, "%s", id.imei);
	snprintf(r->iccid, sizeof r->iccid, "%s", id.iccid);
	snprintf(r->serial, sizeof r->serial, "%s", id.serial);
	snprintf(r->model, sizeof r->model, "%s", id.model);
	snprintf(r->firmware, sizeof r->firmware, "%s", id.firmware);
	if (tracker_status(s->trk, &s->st, s->o->timeout_ms) == TRACKER_OK)
		r->have_status = true;
	return TRACKER_OK;
}

static void check_identity(struct session *s)
{
	struct accept_result *r = s->r;
	const struct { const char *what, *want, *got; } f[] = {
		{ "IMEI", r->wo.imei, r->imei }, { "ICCID", r->wo.iccid, r->iccid }, { "serial", r->wo.serial, r->serial },
		{ "vehicle", r->wo.vehicle, r->ans.vehicle },
	};
	char drift[ACCEPT_TEXT_MAX] = "", checked[128] = "";
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		/* The vehicle only when the technician found one; the serial only
		 * when the unit tells one (a real FMB's is on its label only). */
		if (!*f[i].want || ((i == 2 || i == 3) && !*f[i].got))
			continue;
		snprintf(checked + strlen(checked), sizeof checked - strlen(checked), "%s%s", *checked ? ", " : "",
			 f[i].what);
		if (strcmp(f[i].want, f[i].got) != 0)
			snprintf(drift + strlen(drift), sizeof drift - strlen(drift), "%s%s: %s says %.40s, %s %.40s",
				 *drift ? "; " : "", f[i].what, i == 3 ? "work order" : "work order", f[i].want,
				 i == 3 ? "the technician found" : "the device says", *f[i].got ? f[i].got : "nothing");
	}
	if (*drift)
		accept_add_check(r, "identity", ACCEPT_FAIL, "metadata_drift",
				 "do not sign off: confirm which unit is installed in which vehicle; correct the work order or "
				 "swap the unit, then run rig accept again",
				 "metadata drift: fix the fleet record (IMEI/ICCID/serial/vehicle) before this unit goes live",
				 "metadata drift: %s", drift);
	else if (*checked)
		accept_add_check(r, "identity", ACCEPT_PASS, NULL, NULL, NULL, "%s as the %s says", checked, r->wo.source);
	else
		accept_add_check(r, "identity", ACCEPT_FAIL, "metadata_missing",
				 "give a work order (--work-order FILE) naming the unit's IMEI, ICCID, serial and vehicle",
				 "the install has no expected identity on record", "no expected identity to check against");
}

static void check_firmware(struct session *s)
{
	struct accept_result *r = s->r;
	if (!*r->wo.firmware)
		accept_add_check(r, "firmware", ACCEPT_SKIP, NULL, NULL, NULL, "device runs %s; no expected firmware given",
				 r->firmware);
	else if (strcmp(r->wo.firmware, r->firmware) != 0)
		accept_add_check(r, "firmware", ACCEPT_FAIL, "firmware_mismatch",
				 "update the unit to the expected firmware (rig fw / the vendor's tool), then accept again",
				 "schedule an OTA update to the expected firmware",
				 "work order expects %.60s, the device runs %.60s", r->wo.firmware, r->firmware);
	else
		accept_add_check(r, "firmware", ACCEPT_PASS, NULL, NULL, NULL, "%s as expected", r->firmware);
}

static void check_supply(struct session *s)
{
	struct accept_result *r = s->r;
	struct diag_supply *ds = &s->ev.supply;
	ds->state = DIAG_CH_UNKNOWN;
	ds->read_at_ms = DIAG_NEVER;
	if (!s->slot || s->slot->power.kind != RACK_POWER_SUPPLY) {
		ds->state = DIAG_CH_ABSENT;
		const char *src = s->r->have_status ? s->st.power_source : "";
		accept_add_check(r, "supply", ACCEPT_SKIP, NULL, NULL, NULL,
				 "no bench supply on this %s: the rig cannot measure it; device says its power source is %s",
				 s->slot ? "slot" : "port", *src ? src : "not told");
		return;
	}
	struct power_dev *dev = NULL;
	char err[512];
	struct power_status ps;
	if (slotdev_supply(s->slot, s->o->timeout_ms, &dev, err, sizeof err) != POWER_OK) {
		accept_add_check(r, "supply", ACCEPT_FAIL, "insufficient_evidence", rule_action("insufficient_evidence", false),
				 rule_action("insufficient_evidence", true), "supply %s unreachable: %.300s",
				 s->slot->power.bus.transport, err);
		return;
	}
	const struct power_driver *drv = dev->driver;
	int rc = drv->status(dev, &ps);
	if (rc != POWER_OK)
		snprintf(err, sizeof err, "%.500s", power_error(dev));
	drv->close(dev);
	if (rc != POWER_OK) {
		accept_add_check(r, "supply", ACCEPT_FAIL, "insufficient_evidence", rule_action("insufficient_evidence", false),
				 rule_action("insufficient_evidence", true), "supply status: %s", err);
		return;
	}
	diag_supply_reading(ds, &ps, clock_unix_ms(s->clk, clock_now(s->clk)));
	r->have_supply = true;
	r->supply_v = ps.v_out;
	r->supply_a = ps.i_out;
	if (!ps.output_on || ps.v_out < 9.0 || ps.v_out > 32.0)
		accept_add_check(r, "supply", ACCEPT_FAIL, "power_loss_suspected", rule_action("power_loss_suspected", false),
				 rule_action("power_loss_suspected", true),
				 "output %s, %.2f V (expected 9.0..32.0 V), %.3f A", ps.output_on ? "on" : "off", ps.v_out,
				 ps.i_out);
	else
		accept_add_check(r, "supply", ACCEPT_PASS, NULL, NULL, NULL, "%.2f V within 9.0..32.0 V, drawing %.3f A",
				 ps.v_out, ps.i_out);
}

/* Points the device at the rig's ingest, remembering its own server first:
 * an installed unit is left exactly as it was found. */
static int point_at_ingest(struct session *s, int port, char *err, size_t errlen)
{
	char what[128];
	int rc = tracker_server_get(s->trk, &s->server_was, s->o->timeout_ms);
	snprintf(what, sizeof what, "server read");
	audit(s, what, rc ? tracker_error(s->trk) : s->server_was.host);
	if (rc) {
		snprintf(err, errlen, "cannot read the unit's own server, so it could not be put back: %s",
			 tracker_error(s->trk));
		return -1;
	}
	s->have_server_was = true;
	struct tracker_server srv = { .host = "127.0.0.1", .port = port, .protocol = 0 };
	rc = tracker_server_set(s->trk, &srv, s->o->timeout_ms);
	snprintf(what, sizeof what, "server %s:%d tcp", srv.host, srv.port);
	audit(s, what, rc ? tracker_error(s->trk) : "ok");
	if (rc)
		snprintf(err, errlen, "%s", tracker_error(s->trk));
	return rc ? -1 : 0;
}

/* Puts the unit's own server back (see point_at_ingest). */
static void restore_server(struct session *s)
{
	if (!s->have_server_was)
		return;
	char what[160];
	int rc = tracker_server_set(s->trk, &s->server_was, s->o->timeout_ms);
	snprintf(what, sizeof what, "server %.64s:%d put back", s->server_was.host, s->server_was.port);
	audit(s, what, rc ? tracker_error(s->trk) : "ok");
	if (rc)
		fprintf(stderr, "rig accept: could not put the unit's server back (%s:%d): %s\n", s->server_was.host,
			s->server_was.port, tracker_error(s->trk));
}

/* Waits for gpsd to have read what the rack wrote in the last second: on a
 * virtual rack, time does not move while this thread waits on the wall. */
static void let_gpsd_catch_up(gnss_daemon *g, const char *path, unsigned *seen, int *idle)
{
	int limit_ms = *idle >= 3 ? 50 : 500;
	for (int waited = 0; waited < limit_ms; waited += 10) {
		struct gnss_reading rd;
		if (gnss_get(g, path, &rd) == GNSS_OK && rd.tpv_count + rd.sky_count > *seen) {
			/* the GSV/GSA of the same second follow the RMC: a moment more */
			struct timespec ts = { 0, 30 * 1000000L };
			nanosleep(&ts, NULL);
			gnss_get(g, path, &rd);
			*seen = rd.tpv_count + rd.sky_count;
			*idle = 0;
			return;
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	(*idle)++;
}

/* Reads gpsd's fate and stops it. */
static void stop_gnss(gnss_daemon *g, bool have_rd, const struct gnss_reading *rd, const char *nmea, char *err,
		      size_t errlen)
{
	struct gnss_status gs;
	if (gnss_status(g, &gs) == GNSS_ERR_DIED)
		snprintf(err, errlen, "gpsd died: %.400s", gs.event);
	else if (!have_rd || (rd->tpv_count == 0 && rd->sky_count == 0))
		snprintf(err, errlen, "%.255s: no valid NMEA (gpsd decoded nothing: wrong port or speed, garbage)", nmea);
	gnss_stop(g);
}

/* GNSS and cellular together, each second of rack time: a fix (and a few
 * seconds of it), and a first record at the ingest. */
static void watch(struct session *s, const char *nmea)
{
	struct accept_result *r = s->r;
	char err[768];
	r->record_limit_s = (double)s->o->record_limit_s;
	r->ttff_s = r->fix_age_s = r->position_error_m = r->hdop = NAN;
	r->satellites_used = r->satellites_visible = -1;

	gnss_daemon *g = NULL;
	if (nmea) {
		if (gnss_start(NULL, &g) != GNSS_OK) {
			snprintf(r->gnss_error, sizeof r->gnss_error, "%.600s", gnss_start_error());
			g = NULL;
		} else if (gnss_add_device(g, nmea, 3000) != GNSS_OK) {
			snprintf(r->gnss_error, sizeof r->gnss_error, "%.600s", gnss_last_error(g));
			gnss_stop(g);
			g = NULL;
		}
	}
	ingest *ing = NULL;
	char ingest_err[768] = "";
	if (*r->imei) {
		const char *allow[1] = { r->imei };
		struct ingest_opts io = { .db_path = cli_db_path(s->o->db), .run_id = r->run_id, .clock = s->clk,
					  .allow = allow, .n_allow = 1 };
		if (ingest_start(&io, &ing, err, sizeof err)) {
			snprintf(ingest_err, sizeof ingest_err, "telemetry ingest: %.700s", err);
			ing = NULL;
		} else if (point_at_ingest(s, ingest_port(ing), err, sizeof err)) {
			snprintf(ingest_err, sizeof ingest_err, "the device would not take the server settings: %.600s", err);
		}
	}
	if (g)
		gnss_mark_start(g);
	int64_t t0 = clock_now(s->clk), first_fix = -1, last_fix = -1, record_at = -1;
	struct gnss_reading rd = { .mode = 0 };
	bool have_rd = false;
	unsigned seen = 0;
	int idle = 0;
	bool gnss_used = g != NULL;
	int64_t gnss_end = -1;
	for (;;) {
		int64_t now = clock_now(s->clk);
		bool gnss_done = !g || (first_fix >= 0 && now - first_fix >= 3000) ||
				 now - t0 >= s->o->gnss_limit_s * 1000;
		bool cell_done = !ing || *ingest_err || record_at >= 0 || now - t0 >= s->o->record_limit_s * 1000;
		if (g && gnss_done) {
			/* GNSS is judged as of now; closing the port lets a virtual
			 * rack's time run on past the receiver's seconds */
			stop_gnss(g, have_rd, &rd, nmea, r->gnss_error, sizeof r->gnss_error);
			g = NULL;
			gnss_end = now;
		}
		if ((gnss_done && cell_done) || clock_aborted(s->clk))
			break;
		if (clock_sleep_until(s->clk, now + 1000) < 0)
			break;
		now = clock_now(s->clk);
		if (g) {
			let_gpsd_catch_up(g, nmea, &seen, &idle);
			if (gnss_get(g, nmea, &rd) == GNSS_OK) {
				have_rd = true;
				if (rd.mode >= GNSS_MODE_2D) {
					if (first_fix < 0)
						first_fix = now;
					last_fix = now;
				}
				if (r->n_samples < ACCEPT_MAX_SAMPLES)
					r->samples[r->n_samples++] = (struct accept_sample){
						.t_s = (double)(now - t0) / 1000.0, .satellites_used = rd.satellites_used,
						.hdop = rd.hdop, .mode = rd.mode };
			}
		}
		if (ing && record_at < 0) {
			struct ingest_device_stats ds[1];
			if (ingest_stats(ing, ds, 1) >= 1 && ds[0].records > 0)
				record_at = now;
		}
	}
	int64_t now = clock_now(s->clk);
	ingest_stop(ing);
	if (g) {
		stop_gnss(g, have_rd, &rd, nmea, r->gnss_error, sizeof r->gnss_error);
		gnss_end = now;
	}

	/* GNSS figures, as of the end of the GNSS watch */
	if (gnss_used && !*r->gnss_error) {
		r->gnss_measured = true;
		r->gnss_mode = have_rd ? rd.mode : 0;
		r->satellites_used = have_rd ? rd.satellites_used : -1;
		r->satellites_visible = have_rd ? rd.satellites_visible : -1;
		r->hdop = have_rd ? rd.hdop : NAN;
		r->fix_age_s = last_fix >= 0 ? (double)(gnss_end - last_fix) / 1000.0 : NAN;
		if (first_fix >= 0 && s->rack && s->rack->has_reference)
			r->position_error_m = dispatch_distance_m(s->rack->ref_lat, s->rack->ref_lon, rd.lat, rd.lon);
		struct tracker_status ts;
		if (first_fix >= 0 && tracker_status(s->trk, &ts, s->o->timeout_ms) == TRACKER_OK && ts.ttff_s > 0) {
			r->ttff_s = (double)ts.ttff_s;
			snprintf(r->ttff_source, sizeof r->ttff_source, "the unit's own TTFF");
		} else if (first_fix >= 0) {
			r->ttff_s = (double)(first_fix - t0) / 1000.0;
			snprintf(r->ttff_source, sizeof r->ttff_source, "measured from the start of the watch");
		}
		struct dispatch_reading in = { .mode = r->gnss_mode, .satellites_used = r->satellites_used,
					       .hdop = r->hdop, .fix_age_s = r->fix_age_s,
					       .position_error_m = r->position_error_m };
		struct dispatch_result dr;
		dispatch_judge(&in, NULL, &dr);
		snprintf(r->verdict, sizeof r->verdict, "%s", dispatch_verdict_name(dr.verdict));
		for (int i = 0; i < dr.n_reasons && i < ACCEPT_MAX_REASONS; i++)
			snprintf(r->verdict_reasons[r->n_verdict_reasons++], sizeof r->verdict_reasons[0], "%s", dr.reasons[i]);
		struct diag_gnss *dg = &s->ev.gnss;
		dg->state = DIAG_CH_ANSWERED;
		dg->fix = r->gnss_mode >= 2;
		dg->mode = r->gnss_mode;
		dg->satellites_used = r->satellites_used;
		dg->hdop = r->hdop;
		/* judged at the end of its own watch, not at the end of the cellular one */
		dg->last_fix_ms = last_fix >= 0 ? clock_unix_ms(s->clk, last_fix + (now - gnss_end)) : DIAG_NEVER;
	}

	/* cellular figures: the modem now */
	struct tracker_status st;
	if (tracker_status(s->trk, &st, s->o->timeout_ms) == TRACKER_OK) {
		s->st = st;
		r->have_status = true;
	}
	if (r->have_status) {
		r->registered = *s->st.operator_code && s->st.signal > 0;
		r->data_link = s->st.data_link == 1;
		r->signal = s->st.signal;
		snprintf(r->operator_code, sizeof r->operator_code, "%s", s->st.operator_code);
		struct diag_uplink *u = &s->ev.uplink;
		u->state = DIAG_CH_ANSWERED;
		u->registered = r->registered;
		u->data_link = r->data_link;
		enum tracker_data_session ds;
		u->pdp_rejected = tracker_get_proto(s->trk)->data_session &&
				  tracker_data_session(s->trk, &ds, s->o->timeout_ms) == TRACKER_OK &&
				  ds == TRACKER_DATA_REFUSED;
		u->signal = r->signal;
		snprintf(u->operator_code, sizeof u->operator_code, "%s", r->operator_code);
		u->last_record_ms = record_at >= 0 ? clock_unix_ms(s->clk, record_at) : DIAG_NEVER;
		u->silent_after_ms = s->o->record_limit_s * 1000;
		/* this session runs its own ingest: the uplink records were read */
		u->records = DIAG_CH_ANSWERED;
	}
	r->record_received = record_at >= 0;
	r->record_after_s = record_at >= 0 ? (double)(record_at - t0) / 1000.0 : NAN;
	s->ev.now_ms = clock_unix_ms(s->clk, now);

	/* reason codes where diagnose.h has a rule */
	struct diag_report rep;
	diag_run(&s->ev, NULL, &rep);
	const struct diag_finding *stale = NULL, *cell = NULL;
	for (int i = 0; i < rep.n_findings; i++) {
		const char *code = rep.findings[i].rule->code;
		if (!strcmp(code, "gnss_fix_stale"))
			stale = &rep.findings[i];
		else if (!cell && (!strcmp(code, "coverage_loss") || !strcmp(code, "sim_data_cap_exceeded")))
			cell = &rep.findings[i];
	}

	/* the GNSS check */
	const struct diag_rule *gr = diag_rule_find("gnss_fix_stale");
	if (!nmea)
		accept_add_check(r, "gnss", ACCEPT_SKIP, NULL, NULL, NULL, "no NMEA port for this device: not measured");
	else if (!r->gnss_measured)
		accept_add_check(r, "gnss", ACCEPT_FAIL, "gnss_not_measured",
				 "check the NMEA cable and port named here; then run rig gnss --port PORT",
				 "the rig could not read the receiver: no verdict on its position", "%s", r->gnss_error);
	else if (stale || first_fix < 0 || !strcmp(r->verdict, "unsafe"))
		accept_add_check(r, "gnss", ACCEPT_FAIL, "gnss_fix_stale", gr->action_technician, gr->action_ops,
				 "%s%s; dispatch %s", first_fix < 0 ? "no fix within the limit; " : "",
				 stale ? stale->summary : "fix unusable", r->verdict);
	else
		accept_add_check(r, "gnss", ACCEPT_PASS, NULL, NULL, NULL,
				 "%s fix, %d satellites used of %d, hdop %.1f, ttff %.0f s, dispatch %s",
				 r->gnss_mode == 3 ? "3D" : "2D", r->satellites_used, r->satellites_visible, r->hdop,
				 r->ttff_s, r->verdict);

	/* the cellular check */
	if (!*r->imei)
		accept_add_check(r, "cellular", ACCEPT_FAIL, "device_unresponsive", rule_action("device_unresponsive", false),
				 rule_action("device_unresponsive", true), "no IMEI: cannot receive its telemetry");
	else if (cell)
		accept_add_check(r, "cellular", ACCEPT_FAIL, cell->rule->code, cell->rule->action_technician,
				 cell->rule->action_ops, "%s", cell->summary);
	else if (*ingest_err)
		accept_add_check(r, "cellular", ACCEPT_FAIL, "telemetry_not_received",
				 "check the unit's server settings (2004-2006) and APN, then run rig accept again",
				 "no record from this unit yet: check its server settings", "%s", ingest_err);
	else if (!r->registered)
		accept_add_check(r, "cellular", ACCEPT_FAIL, "coverage_loss", rule_action("coverage_loss", false),
				 rule_action("coverage_loss", true), "not registered (operator %s, signal %d/5)",
				 *r->operator_code ? r->operator_code : "none", r->signal);
	else if (!r->record_received)
		accept_add_check(r, "cellular", ACCEPT_FAIL, "telemetry_not_received",
				 "check the unit's server settings (2004-2006) and APN, then run rig accept again",
				 "no record from this unit: check its server settings and SIM",
				 "registered on %s, signal %d/5, but no record at the ingest within %ld s", r->operator_code,
				 r->signal, s->o->record_limit_s);
	else
		accept_add_check(r, "cellular", ACCEPT_PASS, NULL, NULL, NULL,
				 "registered on %s, signal %d/5, first record after %.0f s (limit %ld s)", r->operator_code,
				 r->signal, r->record_after_s, s->o->record_limit_s);
}

static void check_install(struct accept_result *r)
{
	const struct { const char *what, *v; } f[] = {
		{ "vehicle", r->ans.vehicle }, { "mounting position", r->ans.mounting },
		{ "antenna placement", r->ans.antenna }, { "install time", r->ans.install_time },
	};
	char missing[160] = "";
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!*f[i].v)
			snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s", *missing ? ", " : "",
				 f[i].what);
	if (*missing)
		accept_add_check(r, "install", ACCEPT_FAIL, "install_context_missing",
				 "look at the installation and answer the prompts (or give --answers FILE), then accept again",
				 "the install is not documented: ask the technician for the missing answers",
				 "not answered: %s", missing);
	else
		accept_add_check(r, "install", ACCEPT_PASS, NULL, NULL, NULL, "confirmed by %s: mounting %.60s, antenna %.60s",
				 r->operator_, r->ans.mounting, r->ans.antenna);
}

static void record(struct session *s)
{
	struct accept_result *r = s->r;
	if (!s->db)
		return;
	char fail_msg[1024] = "", codes[256] = "";
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		if (c->status != ACCEPT_FAIL)
			continue;
		snprintf(fail_msg + strlen(fail_msg), sizeof fail_msg - strlen(fail_msg), "%s%s: %.300s", *fail_msg ? "; " : "",
			 c->name, c->detail);
		snprintf(codes + strlen(codes), sizeof codes - strlen(codes), "%s%s", *codes ? "," : "", c->code);
	}
	const char *label = *r->slot ? r->slot : r->port;
	store_begin(s->db);
	if (*r->imei) {
		struct store_device d = { .imei = r->imei, .iccid = r->iccid, .serial = r->serial,
					  .vendor = *r->vendor ? r->vendor : NULL, .model = r->model, .firmware = r->firmware };
		store_device_seen(s->db, &d);
	}
	struct store_result row = { .run_id = r->run_id, .slot = label, .scenario = "accept",
				    .imei = *r->imei ? r->imei : NULL, .vendor = *r->vendor ? r->vendor : NULL,
				    .model = *r->model ? r->model : NULL, .outcome = r->pass ? "pass" : "fail",
				    .message = *fail_msg ? fail_msg : NULL, .reasons = *codes ? codes : NULL,
				    .started_at = r->started, .finished_at = r->finished };
	int64_t id = store_result_add(s->db, &row);
	if (id < 0)
		fprintf(stderr, "rig accept: results store: %s\n", store_error(s->db));
	const struct { const char *name; double v; const char *unit; bool have; double lo, hi; } m[] = {
		{ "supply_v", r->supply_v, "V", r->have_supply, 9.0, 32.0 },
		{ "supply_a", r->supply_a, "A", r->have_supply, NAN, NAN },
		{ "satellites_used", r->satellites_used, "", r->gnss_measured && r->satellites_used >= 0, 6, NAN },
		{ "hdop", r->hdop, "", r->gnss_measured && isfinite(r->hdop), NAN, 2.0 },
		{ "ttff", r->ttff_s, "s", r->gnss_measured && isfinite(r->ttff_s), NAN, NAN },
		{ "signal", r->signal, "bars", r->have_status, 1, 5 },
		{ "first_record", r->record_after_s, "s", r->record_received, NAN, r->record_limit_s },
	};
	for (size_t i = 0; id > 0 && i < sizeof m / sizeof m[0]; i++) {
		if (!m[i].have)
			continue;
		struct store_measurement sm = { .run_id = r->run_id, .slot = label, .name = m[i].name, .value = m[i].v,
						.unit = m[i].unit, .low = m[i].lo, .high = m[i].hi, .at = r->finished,
						.result_id = id };
		store_measurement_add(s->db, &sm);
	}
	store_commit(s->db);
	store_run_end(s->db, r->run_id, r->pass ? "pass" : "fail");
}

static int write_reports(const struct opts *o, const struct accept_result *r)
{
	int rc = 0;
	char err[768];
	accept_write_text(stdout, r);
	if (o->text) {
		FILE *f = fopen(o->text, "w");
		if (!f)
			rc = cli_fail(RIG_EXIT_INFRA, "accept", "%s: %m", o->text);
		else {
			accept_write_text(f, r);
			fclose(f);
		}
	}
	if (o->json) {
		FILE *f = fopen(o->json, "w");
		if (!f)
			rc = cli_fail(RIG_EXIT_INFRA, "accept", "%s: %m", o->json);
		else {
			accept_write_json(f, r);
			fclose(f);
		}
	}
	if (o->html && report_html_accept(r, o->html, err, sizeof err))
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "%s", err);
	else if (o->html)
		printf("report: %s\n", o->html);
	return rc;
}

static int accept_on(const struct opts *o, const char *rack_file)
{
	struct accept_result *r = calloc(1, sizeof *r);
	struct rack rack = { 0 };
	char err[768];
	int rc = RIG_EXIT_OK;
	if (!r)
		return cli_fail(RIG_EXIT_INFRA, "accept", "out of memory");
	struct session s = { .o = o, .r = r };
	const char *nmea = o->nmea;
	int baud = 115200;
	const char *proto_name = NULL;
	if (rack_file) {
		if (rack_load(rack_file, &rack, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "accept", "%s", err);
			goto out;
		}
		s.rack = &rack;
		s.slot = rack_slot(&rack, (int)o->slot);
		if (!s.slot) {
			rc = cli_fail(RIG_EXIT_USAGE, "accept", "%s: no slot %ld", rack_file, o->slot);
			goto out;
		}
		snprintf(r->slot, sizeof r->slot, "%d", s.slot->id);
		snprintf(r->port, sizeof r->port, "%s", s.slot->console.path);
		snprintf(r->station, sizeof r->station, "%s", rack.station);
		snprintf(r->vendor, sizeof r->vendor, "%s", s.slot->vendor);
		nmea = *s.slot->nmea.path ? s.slot->nmea.path : NULL;
		baud = s.slot->console.baud ? s.slot->console.baud : baud;
		proto_name = *s.slot->protocol ? s.slot->protocol : NULL;
		snprintf(r->wo.imei, sizeof r->wo.imei, "%s", s.slot->expect.imei);
		snprintf(r->wo.iccid, sizeof r->wo.iccid, "%s", s.slot->expect.iccid);
		snprintf(r->wo.serial, sizeof r->wo.serial, "%s", s.slot->expect.serial);
		snprintf(r->wo.vehicle, sizeof r->wo.vehicle, "%s", s.slot->expect.vehicle);
		snprintf(r->wo.source, sizeof r->wo.source, "rack file %.100s slot %d", rack_file, s.slot->id);
	} else {
		snprintf(r->port, sizeof r->port, "%s", o->port);
	}
	if (o->work_order) {
		struct accept_work_order wo;
		if (accept_read_work_order(o->work_order, &wo, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "accept", "%s", err);
			goto out;
		}
		r->wo = wo; /* the work order is the authority: what it leaves out is not checked */
	}
	if (o->answers) {
		if (accept_read_answers(o->answers, &r->ans, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "accept", "%s", err);
			goto out;
		}
	} else if (isatty(STDIN_FILENO)) {
		prompt_answers(&r->ans);
	}
	snprintf(r->operator_, sizeof r->operator_, "%s", cli_operator(o->operator_));
	const struct tracker_proto *proto = tracker_proto_find(proto_name ? proto_name : "teltonika");
	if (!proto) {
		rc = cli_fail(RIG_EXIT_USAGE, "accept", "unknown console protocol '%s'", proto_name);
		goto out;
	}
	if (rack_file) {
		if (clock_or_warn(&rack, &s.clk, err, sizeof err, "accept")) {
			rc = cli_fail(RIG_EXIT_INFRA, "accept", "clock: %s", err);
			goto out;
		}
	} else if (clock_open_real(&s.clk)) {
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "clock: out of memory");
		goto out;
	}
	if (store_open(cli_db_path(o->db), &s.db, err, sizeof err)) {
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "results store: %s", err);
		goto out;
	}
	struct store_run run = { .command = "accept", .station = *r->station ? r->station : NULL, .rack = rack_file,
				 .operator_ = r->operator_ };
	r->run_id = store_run_begin(s.db, &run);
	if (r->run_id < 0) {
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "results store: %s", store_error(s.db));
		goto out;
	}
	clock_join(s.clk);
	clock_iso(s.clk, clock_now(s.clk), r->started, sizeof r->started);
	/* Every channel "not read" until this session reads it (diagnose.h). */
	diag_evidence_init(&s.ev, clock_unix_ms(s.clk, clock_now(s.clk)));
	snprintf(s.ev.console.where, sizeof s.ev.console.where, "%.250s", r->port);
	int trc = tracker_open_console(r->port, baud, SERIAL_BACKEND_AUTO, proto, &s.trk, err, sizeof err);
	if (trc != TRACKER_OK) {
		clock_leave(s.clk);
		store_run_end(s.db, r->run_id, "error");
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "%s", err);
		goto out;
	}
	tracker_set_clock(s.trk, clock_for_tracker(s.clk));
	fprintf(stderr, "rig accept: %s%s%s on %s time\n", *r->slot ? "slot " : "", *r->slot ? r->slot : r->port,
		*r->slot ? "" : "", clock_is_virtual(s.clk) ? "virtual" : "wall");
	trc = identify(&s);
	if (trc == TRACKER_OK) {
		s.ev.console.state = DIAG_CH_ANSWERED;
		s.ev.console.last_seen_ms = clock_unix_ms(s.clk, clock_now(s.clk));
		check_identity(&s);
		check_firmware(&s);
		check_supply(&s);
		watch(&s, nmea);
	} else {
		s.ev.console.state = DIAG_CH_SILENT;
		snprintf(s.ev.console.detail, sizeof s.ev.console.detail, "%.300s", tracker_error(s.trk));
		check_supply(&s);
		accept_add_check(r, "console", ACCEPT_FAIL, "device_unresponsive", rule_action("device_unresponsive", false),
				 rule_action("device_unresponsive", true), "%s", tracker_error(s.trk));
	}
	check_install(r);
	restore_server(&s);
	tracker_close(s.trk);
	clock_iso(s.clk, clock_now(s.clk), r->finished, sizeof r->finished);
	clock_leave(s.clk);
	r->pass = true;
	for (int i = 0; i < r->n_checks; i++)
		r->pass &= r->checks[i].status != ACCEPT_FAIL;
	record(&s);
	rc = write_reports(o, r);
	if (rc == RIG_EXIT_OK)
		rc = r->pass ? RIG_EXIT_OK : RIG_EXIT_FAIL;
out:;
	char serr[1200];
	if (s.db && store_close_checked(s.db, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "accept", "%s", serr);
	clock_close(s.clk);
	if (rack_file)
		rack_free(&rack);
	free(r);
	return rc;
}

int cmd_accept(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o);
	if (rc != RIG_EXIT_OK)
		return rc;
	if (o.port || o.rack)
		return accept_on(&o, o.rack);
	struct embedded_rack er;
	char err[512];
	if (embedded_rack_for(&er, "accept", 8, 1, NULL, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "accept", "%s", err);
	rc = accept_on(&o, er.rack_file);
	embedded_rack_stop(&er);
	return rc;
}
