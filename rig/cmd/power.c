/*
 * cmd/power.c - `rig power SLOTS on|off|cycle|status`: a slot's supply by hand.
 *
 * Every switching action goes to the audit trail: a tracker that lost power
 * at 03:12 must be traceable to the person who cut it.
 */
#include "cli.h"
#include "clock.h"
#include "power.h"
#include "rack.h"
#include "slotdev.h"
#include "slots.h"
#include "store.h"
#include "supply.h"
#include "usb.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_power_usage[] =
	"usage: rig power SLOTS on|off|cycle|status --rack FILE [options]\n\n"
	"Switches or reads the supply of each slot in SLOTS (3, 1-4,7 or all) through\n"
	"the supply named in the rack file (Modbus or serial). cycle is off, a pause,\n"
	"then on. Before switching on, the rack file's set points (volts, amps, and\n"
	"ovp/ocp when given) are written and read back; a supply that does not hold\n"
	"them is left off (exit 3). Switching actions are recorded in the audit trail.\n\n"
	"options:\n"
	"  --rack FILE        rack file (required; also $TRACKRIG_RACK)\n"
	"  --off-time MS      pause of a cycle (default 1000)\n"
	"  --timeout MS       supply response timeout (default 500)\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who does this, for the audit trail (default $USER)\n\n"
	"exit: 0 done, 2 usage or rack file error, 3 a supply unreachable or refusing\n";

enum action { ACT_ON, ACT_OFF, ACT_CYCLE, ACT_STATUS };

/* A slot powered from a hub port: the port's power bit is its supply. */
static int usb_slot(const struct rack_slot *s, enum action act, rig_clock *clk, int off_ms, char *result, size_t len)
{
	char hub[64], err[512];
	int port, rc = USB_OK;
	struct usb_port_status st;
	if (usb_port_split(s->power.usb, hub, sizeof hub, &port) != USB_OK) {
		snprintf(result, len, "slot %d: power usb '%s' is not a port path", s->id, s->power.usb);
		return RIG_EXIT_USAGE;
	}
	if (act == ACT_OFF || act == ACT_CYCLE)
		rc = usb_hub_port_power(hub, port, false, &st, err, sizeof err);
	if (rc == USB_OK && act == ACT_CYCLE)
		clock_sleep_until(clk, clock_now(clk) + off_ms);
	if (rc == USB_OK && (act == ACT_ON || act == ACT_CYCLE))
		rc = usb_hub_port_power(hub, port, true, &st, err, sizeof err);
	if (rc == USB_OK)
		rc = usb_hub_port_status(hub, port, &st, err, sizeof err);
	if (rc != USB_OK) {
		snprintf(result, len, "slot %d: %s", s->id, err);
		return RIG_EXIT_INFRA;
	}
	printf("%-4d  %-6s  %s port %d (USB hub port power)\n", s->id, st.powered ? "on" : "off", hub, port);
	snprintf(result, len, "ok: usb port %s %s", s->power.usb, st.powered ? "on" : "off");
	return RIG_EXIT_OK;
}

/* A slot powered through one of its relay lines, as the engine powers it:
 * the line's state is its supply's. */
static int relay_slot(const struct rack *rack, const struct rack_slot *s, enum action act, rig_clock *clk, int off_ms,
		      int timeout_ms, char *result, size_t len)
{
	const struct rack_line *line = NULL;
	for (int i = 0; i < s->n_lines; i++)
		if (!strcmp(s->lines[i].name, s->power.relay))
			line = &s->lines[i];
	int b = line ? slotdev_board_index(rack, line->board) : -1;
	if (b < 0) {
		snprintf(result, len, "slot %d: power line '%s' is not on a board of the rack file", s->id, s->power.relay);
		return RIG_EXIT_USAGE;
	}
	struct relay_dev *dev;
	char err[512];
	if (slotdev_board(rack, b, timeout_ms, &dev, err, sizeof err) != RELAY_OK) {
		snprintf(result, len, "slot %d: %s", s->id, err);
		return RIG_EXIT_INFRA;
	}
	int rc = RELAY_OK;
	bool on = false;
	if (act == ACT_OFF || act == ACT_CYCLE)
		rc = dev->driver->set(dev, line->channel, false);
	if (rc == RELAY_OK && act == ACT_CYCLE)
		clock_sleep_until(clk, clock_now(clk) + off_ms);
	if (rc == RELAY_OK && (act == ACT_ON || act == ACT_CYCLE))
		rc = dev->driver->set(dev, line->channel, true);
	if (rc == RELAY_OK)
		rc = dev->driver->get(dev, line->channel, &on);
	if (rc != RELAY_OK) {
		snprintf(result, len, "slot %d: board %s: %s", s->id, line->board, relay_error(dev));
		dev->driver->close(dev);
		return RIG_EXIT_INFRA;
	}
	dev->driver->close(dev);
	printf("%-4d  %-6s  line %s on board %s channel %d (power by relay line)\n", s->id, on ? "on" : "off",
	       line->name, line->board, line->channel);
	snprintf(result, len, "ok: relay line %s %s", line->name, on ? "on" : "off");
	return RIG_EXIT_OK;
}

/* Does ACT on one slot's supply; prints one table row. Returns an exit code. */
static int one_slot(const struct rack *rack, const struct rack_slot *s, enum action act, rig_clock *clk, int off_ms,
		    int timeout_ms, char *result, size_t len)
{
	if (s->power.kind == RACK_POWER_USB)
		return usb_slot(s, act, clk, off_ms, result, len);
	if (s->power.kind == RACK_POWER_RELAY)
		return relay_slot(rack, s, act, clk, off_ms, timeout_ms, result, len);
	if (s->power.kind != RACK_POWER_SUPPLY) {
		snprintf(result, len, "slot %d: no supply, power line or hub port in the rack file", s->id);
		return RIG_EXIT_USAGE;
	}
	struct power_dev *dev;
	char err[512];
	if (slotdev_supply(s, timeout_ms, &dev, err, sizeof err) != POWER_OK) {
		snprintf(result, len, "slot %d: %s", s->id, err);
		return RIG_EXIT_INFRA;
	}
	const struct power_driver *drv = dev->driver;
	int rc = POWER_OK;
	if (act == ACT_OFF || act == ACT_CYCLE)
		rc = drv->output(dev, false);
	if (rc == POWER_OK && act == ACT_CYCLE)
		clock_sleep_until(clk, clock_now(clk) + off_ms); /* rack time: a virtual rack sees the gap */
	if (rc == POWER_OK && (act == ACT_ON || act == ACT_CYCLE)) {
		/* The rack file's set points first, read back; on a mismatch
		 * the output stays off (supply.h). Its message names the slot. */
		rc = supply_on(s, dev);
		if (rc != POWER_OK) {
			snprintf(result, len, "%s", power_error(dev));
			drv->close(dev);
			return RIG_EXIT_INFRA;
		}
	}
	struct power_status st;
	if (rc == POWER_OK)
		rc = drv->status(dev, &st);
	if (rc != POWER_OK) {
		snprintf(result, len, "slot %d: %s", s->id, power_error(dev));
		drv->close(dev);
		return RIG_EXIT_INFRA;
	}
	printf("%-4d  %-6s  %6.2f  %6.2f  %7.3f  %7.3f  %-2s  %s\n", s->id, st.output_on ? "on" : "off", st.v_set,
	       st.v_out, st.i_set, st.i_out, st.mode == POWER_MODE_CC ? "CC" : "CV",
	       st.protection == POWER_PROT_OVP ? "OVP" : st.protection == POWER_PROT_OCP ? "OCP" : "-");
	snprintf(result, len, "ok: output %s, %.2f V, %.3f A", st.output_on ? "on" : "off", st.v_out, st.i_out);
	drv->close(dev);
	return RIG_EXIT_OK;
}

int cmd_power(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "off-time", required_argument, 0, 'f' },
		{ "timeout", required_argument, 0, 't' }, { "db", required_argument, 0, 'd' },
		{ "operator", required_argument, 0, 'o' }, { 0, 0, 0, 0 },
	};
	const char *rack_file = getenv("TRACKRIG_RACK"), *db_path = NULL, *operator_ = NULL;
	int off_ms = 1000, timeout_ms = 500, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': rack_file = optarg; break;
		case 'd': db_path = optarg; break;
		case 'o': operator_ = optarg; break;
		case 'f':
			if (cli_ms(optarg, &off_ms))
				return cli_fail(RIG_EXIT_USAGE, "power", "--off-time '%s': expected milliseconds", optarg);
			break;
		case 't':
			if (cli_ms(optarg, &timeout_ms))
				return cli_fail(RIG_EXIT_USAGE, "power", "--timeout '%s': expected milliseconds", optarg);
			break;
		default:
			return cli_bad_option("power", longopts, argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_fail(RIG_EXIT_USAGE, "power", "expected SLOTS and one of on, off, cycle, status");
	static const char *const names[] = { "on", "off", "cycle", "status" };
	int act = -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(argv[optind + 1], names[i]) == 0)
			act = i;
	if (act < 0)
		return cli_fail(RIG_EXIT_USAGE, "power", "'%s': expected on, off, cycle or status", argv[optind + 1]);
	if (!rack_file)
		return cli_fail(RIG_EXIT_USAGE, "power", "which rack? give --rack FILE (or set TRACKRIG_RACK)");

	struct rack rack;
	bool *sel;
	int rc = slots_load(rack_file, argv[optind], "power", &rack, &sel, NULL);
	if (rc != RIG_EXIT_OK)
		return rc;
	char err[768];
	store *db = NULL;
	if (act != ACT_STATUS && store_open(cli_db_path(db_path), &db, err, sizeof err)) {
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "power", "results store: %s", err);
	}
	rig_clock *clk = NULL;
	if (clock_or_warn(&rack, &clk, err, sizeof err, "power")) {
		store_close(db);
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "power", "clock: %s", err);
	}
	printf("%-4s  %-6s  %6s  %6s  %7s  %7s  %-2s  %s\n", "SLOT", "OUTPUT", "V-SET", "V-OUT", "I-SET", "I-OUT", "  ", "PROT");
	int exit_code = RIG_EXIT_OK;
	for (int i = 0; i < rack.n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack.slots[i];
		char result[600], slot[12], command[32];
		/* One slot's failure is reported and the next slot still served. */
		int rc = one_slot(&rack, s, (enum action)act, clk, off_ms, timeout_ms, result, sizeof result);
		if (rc != RIG_EXIT_OK) {
			fprintf(stderr, "rig power: %s\n", result);
			if (exit_code == RIG_EXIT_OK || rc == RIG_EXIT_INFRA)
				exit_code = rc;
		}
		if (db) {
			snprintf(slot, sizeof slot, "%d", s->id);
			snprintf(command, sizeof command, "power %s", names[act]);
			struct store_audit a = { .operator_ = cli_operator(operator_), .station = rack.station, .slot = slot,
						 .port = s->power.kind == RACK_POWER_USB ? s->power.usb : s->power.bus.transport, .imei = *s->expect.imei ? s->expect.imei : NULL,
						 .command = command, .result = result };
			if (store_audit_add(db, &a) < 0) {
				fprintf(stderr, "rig power: results store: %s\n", store_error(db));
				exit_code = RIG_EXIT_INFRA;
			}
		}
	}
	clock_close(clk);
	store_close(db);
	slots_free(&rack, sel);
	return exit_code;
}
