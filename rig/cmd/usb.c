/*
 * cmd/usb.c - `rig usb`: USB devices on the rack's hubs, which slot each
 * belongs to, and hub port power.
 *
 * The rack file names each slot's USB port path; the serial number on that
 * port says which unit is really there. A unit moved to another slot keeps
 * its serial and changes its port: that is the swap reported here.
 */
#include "cli.h"
#include "json.h"
#include "rack.h"
#include "store.h"
#include "usb.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_usb_usage[] =
	"usage: rig usb [--rack FILE] [--json]\n"
	"       rig usb power PORTPATH on|off|cycle|status [options]\n\n"
	"Lists USB devices (VID:PID, serial, manufacturer, product, port path, speed)\n"
	"and, with a rack file, the slot each belongs to (a slot's usb: key). A slot\n"
	"whose unit has another serial than its expect.serial is a swapped unit; a\n"
	"slot with nothing on its port is missing. Both fail the check (exit 1).\n\n"
	"power switches the hub port PORTPATH hangs off (the hub is the parent path,\n"
	"the port its last number: 1-1.2 is port 2 of hub 1-1) with hub-class\n"
	"SET/CLEAR_FEATURE PORT_POWER. on and cycle wait for the device to\n"
	"re-enumerate and print how long it took. Switching is recorded in the\n"
	"audit trail.\n\n"
	"options:\n"
	"  --rack FILE        rack file (also $TRACKRIG_RACK): slots and expected serials\n"
	"  --json             machine-readable output\n"
	"  --off-time MS      pause of a cycle (default 1000)\n"
	"  --timeout MS       wait for re-enumeration / disappearance (default 10000)\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who does this, for the audit trail (default $USER)\n\n"
	"exit: 0 ok, 1 a swapped or missing unit, or a unit that came back wrong,\n"
	"      2 usage or rack file error, 3 USB unusable, a hub refusing or no permission\n";

struct opts {
	const char *rack_file, *db_path, *operator_;
	bool json;
	int off_ms, timeout_ms;
};

static const struct rack_slot *slot_of_port(const struct rack *rack, const char *port_path)
{
	for (int i = 0; rack && i < rack->n_slots; i++)
		if (*rack->slots[i].usb && strcmp(rack->slots[i].usb, port_path) == 0)
			return &rack->slots[i];
	return NULL;
}

static const struct usb_device_info *device_on(const struct usb_device_info *v, size_t n, const char *port_path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].port_path, port_path) == 0)
			return &v[i];
	return NULL;
}

/* A slot's verdict: "ok", "swapped", "missing", or "unchecked" (no expected serial). */
static const char *slot_verdict(const struct rack_slot *s, const struct usb_device_info *d)
{
	if (!d)
		return "missing";
	if (!*s->expect.serial)
		return "unchecked";
	return strcmp(d->serial, s->expect.serial) == 0 ? "ok" : "swapped";
}

static void print_table(const struct usb_device_info *v, size_t n, const struct rack *rack)
{
	printf("%-10s  %-9s  %-11s  %-24s  %-14s  %-22s  %s\n", "PORT", "VID:PID", "SPEED", "SERIAL", "MANUFACTURER",
	       "PRODUCT", "SLOT");
	for (size_t i = 0; i < n; i++) {
		char speed[24], slot[16] = "-";
		const struct rack_slot *s = slot_of_port(rack, v[i].port_path);
		if (s)
			snprintf(slot, sizeof slot, "%d", s->id);
		printf("%-10s  %04x:%04x  %-11s  %-24s  %-14s  %-22s  %s\n", v[i].port_path, v[i].vid & 0xffff,
		       v[i].pid & 0xffff, usb_speed_text(v[i].speed_mbps10, speed, sizeof speed),
		       *v[i].serial ? v[i].serial : "-", *v[i].manufacturer ? v[i].manufacturer : "-",
		       *v[i].product ? v[i].product : "-", slot);
	}
}

static void print_json(const struct usb_device_info *v, size_t n, const struct rack *rack, int bad)
{
	struct json j;
	json_init(&j, stdout, false);
	json_obj_begin(&j, NULL);
	json_arr_begin(&j, "devices");
	for (size_t i = 0; i < n; i++) {
		char hex[8];
		const struct rack_slot *s = slot_of_port(rack, v[i].port_path);
		json_obj_begin(&j, NULL);
		json_str(&j, "port", v[i].port_path);
		json_int(&j, "bus", v[i].bus);
		json_int(&j, "address", v[i].address);
		snprintf(hex, sizeof hex, "%04x", v[i].vid & 0xffff);
		json_str(&j, "vid", hex);
		snprintf(hex, sizeof hex, "%04x", v[i].pid & 0xffff);
		json_str(&j, "pid", hex);
		json_str(&j, "serial", v[i].serial);
		json_str(&j, "manufacturer", v[i].manufacturer);
		json_str(&j, "product", v[i].product);
		json_str(&j, "strings_from", v[i].strings_from);
		json_num(&j, "speed_mbps", v[i].speed_mbps10 / 10.0);
		json_int(&j, "class", v[i].device_class);
		json_arr_begin(&j, "interfaces");
		for (int k = 0; k < v[i].n_interfaces && k < 8; k++)
			json_int(&j, NULL, v[i].interface_class[k]);
		json_arr_end(&j);
		if (s)
			json_int(&j, "slot", s->id);
		else
			json_null(&j, "slot");
		json_str(&j, "problem", *v[i].problem ? v[i].problem : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "slots");
	for (int i = 0; rack && i < rack->n_slots; i++) {
		const struct rack_slot *s = &rack->slots[i];
		if (!*s->usb)
			continue;
		const struct usb_device_info *d = device_on(v, n, s->usb);
		json_obj_begin(&j, NULL);
		json_int(&j, "slot", s->id);
		json_str(&j, "usb", s->usb);
		json_str(&j, "expected_serial", *s->expect.serial ? s->expect.serial : NULL);
		json_str(&j, "serial", d ? d->serial : NULL);
		json_str(&j, "status", slot_verdict(s, d));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_int(&j, "failed_slots", bad);
	json_obj_end(&j);
	json_end(&j);
}

static int list_devices(const struct opts *o)
{
	struct rack rack, *rp = NULL;
	char err[768];
	if (o->rack_file) {
		if (rack_load(o->rack_file, &rack, err, sizeof err)) {
			rack_free(&rack);
			return cli_fail(RIG_EXIT_USAGE, "usb", "%s", err);
		}
		rp = &rack;
	}
	struct usb_device_info *v;
	size_t n;
	int rc = usb_list(&v, &n, err, sizeof err);
	if (rc != USB_OK) {
		if (rp)
			rack_free(rp);
		return cli_fail(RIG_EXIT_INFRA, "usb", "%s", err);
	}
	for (size_t i = 0; i < n; i++)
		if (*v[i].problem)
			fprintf(stderr, "rig usb: %s (%04x:%04x): %s\n", v[i].port_path, v[i].vid & 0xffff,
				v[i].pid & 0xffff, v[i].problem);
	int bad = 0;
	for (int i = 0; rp && i < rp->n_slots; i++) {
		const struct rack_slot *s = &rp->slots[i];
		if (!*s->usb)
			continue;
		const struct usb_device_info *d = device_on(v, n, s->usb);
		const char *verdict = slot_verdict(s, d);
		if (strcmp(verdict, "swapped") == 0) {
			fprintf(stderr, "rig usb: slot %d (%s): swapped unit: expected serial %s, found %s\n", s->id,
				s->usb, s->expect.serial, *d->serial ? d->serial : "(none)");
			bad++;
		} else if (strcmp(verdict, "missing") == 0) {
			fprintf(stderr, "rig usb: slot %d (%s): missing: no device on that port\n", s->id, s->usb);
			bad++;
		}
	}
	if (o->json)
		print_json(v, n, rp, bad);
	else
		print_table(v, n, rp);
	free(v);
	if (rp)
		rack_free(rp);
	return bad ? RIG_EXIT_FAIL : RIG_EXIT_OK;
}

/* ---- power ---- */

enum action { ACT_ON, ACT_OFF, ACT_CYCLE, ACT_STATUS };
static const char *const action_names[] = { "on", "off", "cycle", "status" };

static int exit_of(int usb_rc)
{
	switch (usb_rc) {
	case USB_OK: return RIG_EXIT_OK;
	case USB_ERR_ARG: return RIG_EXIT_USAGE;
	default: return RIG_EXIT_INFRA;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

struct power_outcome {
	struct usb_port_status st;
	bool waited, back;
	struct usb_wait_result w;
	int gone_ms;
};

/* Does ACT; RESULT gets the audit text. Returns an exit code. */
static int do_power(const char *port_path, const char *hub, int port, enum action act, const char *expect_serial,
		    const struct opts *o, struct power_outcome *out, char *result, size_t len)
{
	char err[512];
	memset(out, 0, sizeof *out);
	out->gone_ms = -1;
	int rc = USB_OK;
	if (act == ACT_STATUS)
		rc = usb_hub_port_status(hub, port, &out->st, err, sizeof err);
	if (act == ACT_OFF || act == ACT_CYCLE) {
		rc = usb_hub_port_power(hub, port, false, &out->st, err, sizeof err);
		if (rc == USB_OK && usb_wait_gone(port_path, o->timeout_ms, &out->gone_ms, err, sizeof err) != USB_OK)
			fprintf(stderr, "rig usb: %s\n", err); /* a port that stays: worth saying, not fatal */
	}
	if (rc == USB_OK && act == ACT_CYCLE)
		sleep_ms(o->off_ms);
	if (rc == USB_OK && (act == ACT_ON || act == ACT_CYCLE)) {
		rc = usb_hub_port_power(hub, port, true, &out->st, err, sizeof err);
		if (rc == USB_OK) {
			out->waited = true;
			int wrc = usb_wait_port(port_path, expect_serial, o->timeout_ms, &out->w, err, sizeof err);
			out->back = wrc == USB_OK;
			if (wrc != USB_OK) {
				snprintf(result, len, "power on, but %s", err);
				return RIG_EXIT_FAIL;
			}
		}
	}
	if (rc != USB_OK) {
		snprintf(result, len, "%s", err);
		return exit_of(rc);
	}
	if (out->waited && out->w.other_serial) {
		snprintf(result, len, "came back after %d ms with serial %s, expected %s", out->w.elapsed_ms,
			 out->w.serial, expect_serial);
		return RIG_EXIT_FAIL;
	}
	if (out->waited)
		snprintf(result, len, "ok: power %s, re-enumerated after %d ms", out->st.powered ? "on" : "off",
			 out->w.elapsed_ms);
	else
		snprintf(result, len, "ok: power %s%s", out->st.powered ? "on" : "off",
			 out->st.connected ? ", connected" : "");
	return RIG_EXIT_OK;
}

static void print_power(const char *port_path, const char *hub, int port, enum action act,
			const struct power_outcome *p, int code, const char *result, bool json)
{
	if (!json) {
		if (code == RIG_EXIT_OK || p->waited)
			printf("%s: port %d of hub %s: %s\n", port_path, port, hub, result);
		return;
	}
	struct json j;
	json_init(&j, stdout, false);
	json_obj_begin(&j, NULL);
	json_str(&j, "port", port_path);
	json_str(&j, "hub", hub);
	json_int(&j, "hub_port", port);
	json_str(&j, "action", action_names[act]);
	json_bool(&j, "ok", code == RIG_EXIT_OK);
	json_str(&j, "result", result);
	json_bool(&j, "powered", p->st.powered);
	json_bool(&j, "connected", p->st.connected);
	char hex[8];
	snprintf(hex, sizeof hex, "%04x", p->st.status);
	json_str(&j, "port_status", hex);
	if (p->gone_ms >= 0)
		json_int(&j, "gone_ms", p->gone_ms);
	if (p->waited) {
		json_bool(&j, "reenumerated", p->back);
		json_int(&j, "reenum_ms", p->w.elapsed_ms);
		json_bool(&j, "by_hotplug", p->w.by_hotplug);
		json_str(&j, "serial", p->w.serial);
		json_bool(&j, "other_serial", p->w.other_serial);
		json_bool(&j, "other_path", p->w.other_path);
		json_str(&j, "found_path", *p->w.found_path ? p->w.found_path : NULL);
	}
	json_obj_end(&j);
	json_end(&j);
}

static int power(const struct opts *o, const char *port_path, const char *what)
{
	int act = -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(what, action_names[i]) == 0)
			act = i;
	if (act < 0)
		return cli_fail(RIG_EXIT_USAGE, "usb", "'%s': expected on, off, cycle or status", what);
	char hub[USB_PATH_MAX], err[768];
	int port;
	if (usb_port_split(port_path, hub, sizeof hub, &port) != USB_OK)
		return cli_fail(RIG_EXIT_USAGE, "usb", "'%s': not a USB port path (expected B-P.P, e.g. 1-1.2)", port_path);
	struct rack rack, *rp = NULL;
	if (o->rack_file) {
		if (rack_load(o->rack_file, &rack, err, sizeof err)) {
			rack_free(&rack);
			return cli_fail(RIG_EXIT_USAGE, "usb", "%s", err);
		}
		rp = &rack;
	}
	const struct rack_slot *s = slot_of_port(rp, port_path);
	store *db = NULL;
	if (act != ACT_STATUS && store_open(cli_db_path(o->db_path), &db, err, sizeof err)) {
		if (rp)
			rack_free(rp);
		return cli_fail(RIG_EXIT_INFRA, "usb", "results store: %s", err);
	}
	struct power_outcome p;
	char result[768];
	int code = do_power(port_path, hub, port, (enum action)act, s ? s->expect.serial : NULL, o, &p, result,
			    sizeof result);
	if (code != RIG_EXIT_OK)
		fprintf(stderr, "rig usb: %s\n", result);
	print_power(port_path, hub, port, (enum action)act, &p, code, result, o->json);
	if (db) {
		char slot[12], command[32];
		snprintf(slot, sizeof slot, "%d", s ? s->id : 0);
		snprintf(command, sizeof command, "usb power %s", action_names[act]);
		struct store_audit a = { .operator_ = cli_operator(o->operator_), .station = rp ? rp->station : NULL,
					 .slot = s ? slot : NULL, .port = port_path,
					 .imei = s && *s->expect.imei ? s->expect.imei : NULL, .command = command,
					 .result = result };
		if (store_audit_add(db, &a) < 0) {
			fprintf(stderr, "rig usb: results store: %s\n", store_error(db));
			code = RIG_EXIT_INFRA;
		}
		store_close(db);
	}
	if (rp)
		rack_free(rp);
	return code;
}

int cmd_usb(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "json", no_argument, 0, 'j' },
		{ "off-time", required_argument, 0, 'f' }, { "timeout", required_argument, 0, 't' },
		{ "db", required_argument, 0, 'd' }, { "operator", required_argument, 0, 'o' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	struct opts o = { .rack_file = getenv("TRACKRIG_RACK"), .off_ms = 1000, .timeout_ms = 10000 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rack_file = optarg; break;
		case 'j': o.json = true; break;
		case 'd': o.db_path = optarg; break;
		case 'o': o.operator_ = optarg; break;
		case 'h': fputs(cmd_usb_usage, stdout); return RIG_EXIT_OK;
		case 'f':
			if (cli_ms(optarg, &o.off_ms))
				return cli_fail(RIG_EXIT_USAGE, "usb", "--off-time '%s': expected milliseconds", optarg);
			break;
		case 't':
			if (cli_ms(optarg, &o.timeout_ms))
				return cli_fail(RIG_EXIT_USAGE, "usb", "--timeout '%s': expected milliseconds", optarg);
			break;
		default:
			return cli_bad_option("usb", longopts, argv[optind - 1]);
		}
	}
	if (optind == argc)
		return list_devices(&o);
	if (strcmp(argv[optind], "power") != 0)
		return cli_fail(RIG_EXIT_USAGE, "usb", "'%s': unknown; expected power or nothing", argv[optind]);
	if (argc - optind != 3)
		return cli_fail(RIG_EXIT_USAGE, "usb", "expected: power PORTPATH on|off|cycle|status");
	return power(&o, argv[optind + 1], argv[optind + 2]);
}
