/*
 * cmd/probe.c - `rig probe`: identity, firmware and status of trackers.
 *
 *   rig probe PORT          one tracker on a serial port
 *   rig probe --rack FILE   every (or --slots LIST) slot of a rack
 *   rig probe               every slot of a simulated rack started for the occasion
 */
#include "cli.h"
#include "embedded.h"
#include "json.h"
#include "probe.h"
#include "rack.h"
#include "store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_probe_usage[] =
	"usage: rig probe PORT [options]\n"
	"       rig probe [--rack FILE] [--slots LIST] [options]\n\n"
	"Reads identity (IMEI, ICCID, serial), model, firmware and status of a tracker\n"
	"through its console, and records them with an audit row per command sent.\n"
	"With --rack, probes each slot and checks the identity against the rack file\n"
	"(a difference is metadata drift: exit 1). With neither PORT nor --rack, it\n"
	"starts a simulated rack and probes that.\n\n"
	"options:\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --slots LIST       slots to probe: 3, 1-4,7 or all (default all)\n"
	"  --baud N           console speed for PORT (default 115200)\n"
	"  --backend NAME     auto, libserialport or termios (default auto)\n"
	"  --protocol NAME    tracker command set (default teltonika)\n"
	"  --timeout MS       deadline per command (default 2000)\n"
	"  --json             JSON on stdout instead of text\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who runs this, for the audit trail (default $USER)\n"
	"  --seed N           seed of the simulated rack (default 1)\n\n"
	"exit: 0 all probed, 1 a device misbehaved or its identity drifted,\n"
	"      2 usage or rack file error, 3 a port or device unreachable\n";

struct opts {
	const char *rack, *slots, *port, *protocol, *db, *operator_;
	int baud, timeout_ms;
	unsigned seed;
	bool json;
	enum serial_backend backend;
};

static void json_identity(struct json *j, const struct probe_result *r)
{
	json_str(j, "imei", r->id.imei);
	json_str(j, "iccid", r->id.iccid);
	json_str(j, "serial", r->id.serial);
	json_str(j, "model", r->id.model);
	json_str(j, "hw_rev", r->id.hw_rev);
	json_str(j, "firmware", r->id.firmware);
	json_str(j, "gnss_firmware", r->id.gnss_firmware);
}

static void json_result(struct json *j, const struct probe_target *t, const struct probe_result *r)
{
	if (t->slot)
		json_int(j, "slot", atoi(t->slot));
	json_str(j, "port", t->port);
	json_str(j, "link", r->link);
	json_str(j, "result", r->rc ? "error" : *r->drift ? "drift" : "ok");
	if (r->rc) {
		json_str(j, "error_kind", tracker_strerror(r->rc));
		json_str(j, "error", r->error);
	}
	if (r->identified)
		json_identity(j, r);
	if (*r->drift)
		json_str(j, "identity_drift", r->drift);
	if (r->have_status) {
		json_obj_begin(j, "status");
		if (r->restarts.uptime_s >= 0)
			json_int(j, "uptime_s", r->restarts.uptime_s);
		else
			json_null(j, "uptime_s");
		json_str(j, "reset_reason", r->restarts.reset_reason);
		json_int(j, "reset_code", r->restarts.reset_code);
		if (r->restarts.count >= 0)
			json_int(j, "restarts", r->restarts.count);
		else
			json_null(j, "restarts");
		json_str(j, "power_source", r->st.power_source);
		json_bool(j, "data_link", r->st.data_link);
		json_bool(j, "gprs", r->st.gprs);
		json_int(j, "signal", r->st.signal);
		json_str(j, "operator", r->st.operator_code);
		json_bool(j, "roaming", r->st.roaming);
		json_int(j, "satellites", r->st.satellites);
		if (r->records >= 0)
			json_int(j, "records_buffered", r->records);
		else
			json_null(j, "records_buffered");
		json_obj_end(j);
	}
	json_arr_begin(j, "events");
	for (int i = 0; i < r->n_events; i++) {
		json_obj_begin(j, NULL);
		json_str(j, "kind", r->events[i].kind);
		json_str(j, "line", r->events[i].text);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void print_one(const struct probe_target *t, const struct probe_result *r)
{
	printf("port      %s\n", *r->link ? r->link : t->port);
	if (r->identified) {
		printf("imei      %s\n", r->id.imei);
		printf("iccid     %s\n", r->id.iccid);
		printf("serial    %s\n", *r->id.serial ? r->id.serial : "(not told)");
		printf("model     %s%s%s\n", r->id.model, *r->id.hw_rev ? ", hardware rev " : "", r->id.hw_rev);
		printf("firmware  %s%s%s\n", r->id.firmware, *r->id.gnss_firmware ? ", GNSS " : "", r->id.gnss_firmware);
	}
	if (r->have_status) {
		if (r->restarts.uptime_s >= 0)
			printf("uptime    %ld s, last reset %s", r->restarts.uptime_s,
			       *r->restarts.reset_reason ? r->restarts.reset_reason : "(not told)");
		else
			printf("uptime    (not told)");
		if (r->restarts.count >= 0)
			printf(", restarts %ld", r->restarts.count);
		printf("\nmodem     data link %d, GPRS %d, signal %d/5, operator %s%s\n", r->st.data_link, r->st.gprs,
		       r->st.signal, r->st.operator_code, r->st.roaming ? ", roaming" : "");
	}
	for (int i = 0; i < r->n_events; i++)
		printf("event     %s\n", r->events[i].text);
	if (*r->drift)
		printf("drift     %s\n", r->drift);
	printf("result    %s\n", r->rc ? r->error : *r->drift ? "identity drift" : "ok");
}

static void print_table(const struct rack *rack, const struct probe_target *t, const struct probe_result *r, int n)
{
	printf("rack %s (%s)\n", rack->station, rack->file);
	printf("%-4s  %-15s  %-20s  %-10s  %-10s  %-14s  %-6s  %s\n", "SLOT", "IMEI", "ICCID", "SERIAL", "MODEL",
	       "FIRMWARE", "SIGNAL", "RESULT");
	for (int i = 0; i < n; i++) {
		char sig[8] = "-";
		if (r[i].have_status)
			snprintf(sig, sizeof sig, "%d/5", r[i].st.signal);
		printf("%-4s  %-15s  %-20s  %-10s  %-10s  %-14s  %-6s  %s\n", t[i].slot,
		       r[i].identified ? r[i].id.imei : "-", r[i].identified ? r[i].id.iccid : "-",
		       r[i].identified && *r[i].id.serial ? r[i].id.serial : "-",
		       r[i].identified ? r[i].id.model : "-", r[i].identified ? r[i].id.firmware : "-", sig,
		       probe_verdict(&r[i]));
	}
	for (int i = 0; i < n; i++) {
		if (r[i].rc)
			printf("slot %s: %s\n", t[i].slot, r[i].error);
		else if (*r[i].drift)
			printf("slot %s: identity drift: %s\n", t[i].slot, r[i].drift);
	}
}

/* Worst of two exit codes: infrastructure beats usage beats fail beats ok. */
static int worst(int a, int b)
{
	static const int rank[] = { [RIG_EXIT_OK] = 0, [RIG_EXIT_FAIL] = 1, [RIG_EXIT_USAGE] = 2, [RIG_EXIT_INFRA] = 3 };
	return rank[b] > rank[a] ? b : a;
}

static int open_store(const struct opts *o, const char *command, const char *station, const char *rack_file,
		      store **db, int64_t *run_id)
{
	char err[512];
	if (store_open(cli_db_path(o->db), db, err, sizeof err) != 0)
		return cli_fail(RIG_EXIT_INFRA, "probe", "results store: %s", err);
	struct store_run run = { .command = command, .station = station, .rack = rack_file,
				 .operator_ = cli_operator(o->operator_), .seed = o->seed };
	*run_id = store_run_begin(*db, &run);
	if (*run_id < 0) {
		int rc = cli_fail(RIG_EXIT_INFRA, "probe", "results store: %s", store_error(*db));
		store_close(*db);
		return rc;
	}
	return 0;
}

static const char *outcome_of(int exit_code)
{
	return exit_code == RIG_EXIT_OK ? "pass" : exit_code == RIG_EXIT_FAIL ? "fail" : "error";
}

static int probe_port(const struct opts *o)
{
	store *db;
	int64_t run_id;
	int rc = open_store(o, "probe", NULL, NULL, &db, &run_id);
	if (rc)
		return rc;
	struct probe_ctx ctx = { .db = db, .run_id = run_id, .operator_ = cli_operator(o->operator_),
				 .timeout_ms = o->timeout_ms, .backend = o->backend };
	struct probe_target t = { .port = o->port, .baud = o->baud, .protocol = o->protocol };
	struct probe_result r;
	probe_one(&ctx, &t, &r);
	store_run_end(db, run_id, outcome_of(r.exit_code));
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		r.exit_code = cli_fail(RIG_EXIT_INFRA, "probe", "%s", serr);
	if (o->json) {
		struct json j;
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_result(&j, &t, &r);
		json_obj_end(&j);
		json_end(&j);
	} else {
		print_one(&t, &r);
	}
	if (r.rc)
		fprintf(stderr, "rig probe: %s\n", r.error);
	return r.exit_code;
}

static int probe_rack_file(const char *rack_file, const char *slots, const struct opts *o)
{
	struct rack rack;
	char err[768];
	if (rack_load(rack_file, &rack, err, sizeof err) != 0) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "probe", "%s", err);
	}
	bool *sel = calloc((size_t)rack.n_slots, sizeof *sel);
	int n = sel ? rack_select(&rack, slots ? slots : "all", sel, err, sizeof err) : -1;
	if (n < 0) {
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "probe", "%s", sel ? err : "out of memory");
	}
	store *db;
	int64_t run_id;
	int rc = open_store(o, "probe", rack.station, rack_file, &db, &run_id);
	if (rc) {
		free(sel);
		rack_free(&rack);
		return rc;
	}
	rig_clock *clk = NULL;
	if (clock_or_warn(&rack, &clk, err, sizeof err, "probe")) {
		store_run_end(db, run_id, "error");
		store_close(db);
		free(sel);
		rack_free(&rack);
		return cli_fail(RIG_EXIT_INFRA, "probe", "clock: %s", err);
	}
	struct probe_ctx ctx = { .db = db, .run_id = run_id, .operator_ = cli_operator(o->operator_),
				 .station = rack.station, .timeout_ms = o->timeout_ms, .backend = o->backend,
				 .clock = clk };
	struct probe_target *t = calloc((size_t)n, sizeof *t);
	struct probe_result *r = calloc((size_t)n, sizeof *r);
	char (*labels)[12] = calloc((size_t)n, sizeof *labels);
	int k = 0, exit_code = RIG_EXIT_OK;
	for (int i = 0; t && r && labels && i < rack.n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack.slots[i];
		snprintf(labels[k], sizeof labels[k], "%d", s->id);
		t[k] = (struct probe_target){ .slot = labels[k], .port = s->console.path, .baud = s->console.baud,
					      .protocol = s->protocol, .expect = s };
		/* One slot's failure is recorded and the next slot still probed. */
		probe_one(&ctx, &t[k], &r[k]);
		exit_code = worst(exit_code, r[k].exit_code);
		k++;
	}
	store_run_end(db, run_id, outcome_of(exit_code));
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		exit_code = cli_fail(RIG_EXIT_INFRA, "probe", "%s", serr);
	clock_close(clk);
	if (o->json) {
		struct json j;
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_str(&j, "station", rack.station);
		json_str(&j, "rack", rack_file);
		json_arr_begin(&j, "slots");
		for (int i = 0; i < k; i++) {
			json_obj_begin(&j, NULL);
			json_result(&j, &t[i], &r[i]);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else {
		print_table(&rack, t, r, k);
	}
	free(labels);
	free(r);
	free(t);
	free(sel);
	rack_free(&rack);
	return exit_code;
}

static int parse_backend(const char *s, enum serial_backend *b)
{
	if (strcmp(s, "auto") == 0) *b = SERIAL_BACKEND_AUTO;
	else if (strcmp(s, "libserialport") == 0) *b = SERIAL_BACKEND_LIBSERIALPORT;
	else if (strcmp(s, "termios") == 0) *b = SERIAL_BACKEND_TERMIOS;
	else return -1;
	return 0;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "slots", required_argument, 0, 's' },
		{ "baud", required_argument, 0, 'b' }, { "backend", required_argument, 0, 'B' },
		{ "protocol", required_argument, 0, 'p' }, { "timeout", required_argument, 0, 't' },
		{ "json", no_argument, 0, 'j' }, { "db", required_argument, 0, 'd' },
		{ "operator", required_argument, 0, 'o' }, { "seed", required_argument, 0, 'S' },
		{ 0, 0, 0, 0 },
	};
	struct opts o = { .baud = 115200, .timeout_ms = 2000, .seed = 1, .backend = SERIAL_BACKEND_AUTO };
	long v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rack = optarg; break;
		case 's': o.slots = optarg; break;
		case 'p': o.protocol = optarg; break;
		case 'd': o.db = optarg; break;
		case 'o': o.operator_ = optarg; break;
		case 'j': o.json = true; break;
		case 'b':
			if (cli_long(optarg, 50, 4000000, &v))
				return cli_fail(RIG_EXIT_USAGE, "probe", "--baud '%s': expected a speed such as 115200", optarg);
			o.baud = (int)v;
			break;
		case 't':
			if (cli_long(optarg, 1, 600000, &v))
				return cli_fail(RIG_EXIT_USAGE, "probe", "--timeout '%s': expected milliseconds, 1..600000", optarg);
			o.timeout_ms = (int)v;
			break;
		case 'S':
			if (cli_long(optarg, 0, 0x7fffffff, &v))
				return cli_fail(RIG_EXIT_USAGE, "probe", "--seed '%s': expected a whole number", optarg);
			o.seed = (unsigned)v;
			break;
		case 'B':
			if (parse_backend(optarg, &o.backend))
				return cli_fail(RIG_EXIT_USAGE, "probe", "--backend '%s': expected auto, libserialport or termios", optarg);
			break;
		default:
			return cli_bad_option("probe", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "probe", "one PORT at a time (use --rack for many)");
	if (optind == argc - 1) {
		if (o.rack)
			return cli_fail(RIG_EXIT_USAGE, "probe", "give a PORT or --rack, not both");
		o.port = argv[optind];
		return probe_port(&o);
	}
	if (o.rack)
		return probe_rack_file(o.rack, o.slots, &o);

	struct embedded_rack er;
	char err[512];
	if (embedded_rack_start(&er, 4, o.seed, NULL, err, sizeof err) != 0)
		return cli_fail(RIG_EXIT_INFRA, "probe", "%s", err);
	int rc = probe_rack_file(er.rack_file, o.slots, &o);
	embedded_rack_stop(&er);
	return rc;
}
