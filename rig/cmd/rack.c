/*
 * cmd/rack.c - `rig rack check`: is every part of the station answering?
 *
 * Before a night of tests, one command says whether the rack file still
 * matches the bench: each slot's console (and the identity behind it), each
 * slot's supply, each relay board and each line's channel. Read-only: it
 * switches nothing, so it records nothing in the audit trail. One dead part
 * never stops the others being checked: the point is the full list of what
 * to fix, not the first thing wrong.
 */
#include "cli.h"
#include "embedded.h"
#include "json.h"
#include "power.h"
#include "probe.h"
#include "rack.h"
#include "relay.h"
#include "slotdev.h"
#include "slots.h"
#include "supply.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_rack_usage[] =
	"usage: rig rack check [--rack FILE] [options]\n\n"
	"Checks a rack file, then pings every part it names: each slot's console\n"
	"(identity read and compared with the rack file), each slot's supply (status\n"
	"over its link, and its set points against the rack file's volts, amps, ovp\n"
	"and ocp), each relay board and each slot's relay line channels. Nothing\n"
	"is switched. With no --rack, it starts a simulated rack and checks that.\n\n"
	"options:\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --timeout MS       deadline per console command and per Modbus request\n"
	"                     (default 2000 for consoles, 500 for Modbus)\n"
	"  --json             JSON on stdout instead of a table\n"
	"  --seed N           seed of the simulated rack (default 1)\n\n"
	"exit: 0 every part answers, 1 a part answers wrongly (identity drift, a\n"
	"      supply's set points differ from the rack file),\n"
	"      2 usage or rack file error, 3 a part unreachable\n";

#define MSG_MAX 768

/* A relay board pinged once, before the slots that share it. */
struct board_check {
	const struct relay_driver *drv;
	struct relay_dev *dev;   /* NULL when it did not answer */
	int exit_code;
	char error[MSG_MAX];
};

struct line_check {
	bool on;
	bool board_dead;         /* failed because its board did not answer */
	int exit_code;
	char error[MSG_MAX];
};

struct slot_check {
	const struct rack_slot *slot;
	struct probe_result console;
	int supply_exit;
	bool have_supply;            /* a supply in the rack file */
	struct power_status supply;
	char supply_error[MSG_MAX];
	bool set_points_differ;      /* answers, but not at the rack file's set points */
	const char *rack_file;
	struct line_check lines[RACK_MAX_LINES];
	int lines_exit;
	int exit_code;
};

struct check_opts {
	int console_ms, modbus_ms;
	bool json;
};

/* Worst of two exit codes: infrastructure beats usage beats fail beats ok. */
static int worst(int a, int b)
{
	static const int rank[] = { [RIG_EXIT_OK] = 0, [RIG_EXIT_FAIL] = 1, [RIG_EXIT_USAGE] = 2, [RIG_EXIT_INFRA] = 3 };
	return rank[b] > rank[a] ? b : a;
}

static const char *verdict(int exit_code)
{
	switch (exit_code) {
	case RIG_EXIT_OK: return "ok";
	case RIG_EXIT_FAIL: return "fail";
	case RIG_EXIT_USAGE: return "config";
	default: return "unreachable";
	}
}

/* Opens board B and reads channel 0: a board answers or it does not. The
 * board stays open for the slots' line reads. */
static void check_board(const struct rack *rack, int b, int modbus_ms, struct board_check *bc)
{
	const struct rack_board *rb = &rack->boards[b];
	bc->drv = relay_driver_find(rb->driver);
	if (slotdev_board(rack, b, modbus_ms, &bc->dev, bc->error, sizeof bc->error) != RELAY_OK) {
		/* an unknown driver is the rack file's fault, a dead link the rig's */
		bc->exit_code = bc->drv ? RIG_EXIT_INFRA : RIG_EXIT_USAGE;
		return;
	}
	bool on;
	int rc = bc->drv->get(bc->dev, 0, &on);
	if (rc != RELAY_OK) {
		snprintf(bc->error, sizeof bc->error, "board %s: %s", rb->name, relay_error(bc->dev));
		bc->exit_code = rc == RELAY_ERR_IO ? RIG_EXIT_FAIL : RIG_EXIT_INFRA;
		/* Not asked again per line: every request to a dead board costs
		 * a full timeout, and the board's own error says it all. */
		bc->drv->close(bc->dev);
		bc->dev = NULL;
	}
}

static void check_supply(const struct rack_slot *s, int modbus_ms, struct slot_check *sc)
{
	if (s->power.kind != RACK_POWER_SUPPLY)
		return;   /* no supply, or power through a relay line: checked with the lines */
	sc->have_supply = true;
	struct power_dev *dev;
	char err[512];
	int orc = slotdev_supply(s, modbus_ms, &dev, err, sizeof err);
	if (orc != POWER_OK) {
		snprintf(sc->supply_error, sizeof sc->supply_error, "slot %d: supply: %s", s->id, err);
		/* an unknown driver is the rack file's fault, a dead link the rig's */
		sc->supply_exit = power_driver_find(s->power.driver) ? RIG_EXIT_INFRA : RIG_EXIT_USAGE;
		return;
	}
	const struct power_driver *drv = dev->driver;
	int rc = drv->status(dev, &sc->supply);
	if (rc != POWER_OK) {
		snprintf(sc->supply_error, sizeof sc->supply_error, "slot %d: supply: %s", s->id, power_error(dev));
		sc->supply_exit = RIG_EXIT_INFRA;
		drv->close(dev);
		return;
	}
	/* Set points someone changed since: the next switch-on puts them
	 * back (or refuses), but the bench should know now. */
	char diff[400];
	rc = supply_compare(s, dev, diff, sizeof diff);
	if (rc < 0) {
		snprintf(sc->supply_error, sizeof sc->supply_error, "slot %d: supply: set points: %s", s->id,
			 power_error(dev));
		sc->supply_exit = RIG_EXIT_INFRA;
	} else if (rc > 0) {
		snprintf(sc->supply_error, sizeof sc->supply_error, "slot %d: supply %s: set points differ from %s: %s",
			 s->id, s->power.bus.transport, sc->rack_file, diff);
		sc->supply_exit = RIG_EXIT_FAIL;
		sc->set_points_differ = true;
	}
	drv->close(dev);
}

static void check_lines(const struct rack *rack, struct board_check *boards, const struct rack_slot *s,
			struct slot_check *sc)
{
	for (int i = 0; i < s->n_lines; i++) {
		const struct rack_line *l = &s->lines[i];
		struct line_check *lc = &sc->lines[i];
		int b = slotdev_board_index(rack, l->board);
		if (b < 0) {
			snprintf(lc->error, sizeof lc->error, "slot %d: line %s: no board '%s' in the rack file", s->id,
				 l->name, l->board);
			lc->exit_code = RIG_EXIT_USAGE;
		} else if (!boards[b].dev) {
			snprintf(lc->error, sizeof lc->error, "slot %d: line %s: %.600s", s->id, l->name, boards[b].error);
			lc->exit_code = boards[b].exit_code;
			lc->board_dead = true;
		} else if (boards[b].drv->get(boards[b].dev, l->channel, &lc->on) != RELAY_OK) {
			snprintf(lc->error, sizeof lc->error, "slot %d: line %s: board %s: %s", s->id, l->name, l->board,
				 relay_error(boards[b].dev));
			lc->exit_code = RIG_EXIT_INFRA;
		}
		sc->lines_exit = worst(sc->lines_exit, lc->exit_code);
	}
}

static void print_table(const struct rack *rack, const struct board_check *boards, const struct slot_check *sc, int n)
{
	printf("rack %s (%s)\n", rack->station, rack->file);
	printf("%-4s  %-14s  %-15s  %-22s  %-8s  %s\n", "SLOT", "CONSOLE", "IMEI", "SUPPLY", "LINES", "RESULT");
	for (int i = 0; i < n; i++) {
		const struct slot_check *c = &sc[i];
		char supply[64] = "-";
		if (c->have_supply && (c->supply_exit == RIG_EXIT_OK || c->set_points_differ))
			snprintf(supply, sizeof supply, "%s %.2fV %.3fA%s", c->set_points_differ ? "set pts" : "ok",
				 c->supply.v_out, c->supply.i_out, c->supply.output_on ? "" : " off");
		else if (c->have_supply)
			snprintf(supply, sizeof supply, "error");
		const char *console = c->console.rc ? tracker_strerror(c->console.rc) : "ok";
		printf("%-4d  %-14s  %-15s  %-22s  %-8s  %s\n", c->slot->id, console,
		       c->console.identified ? c->console.id.imei : "-", supply,
		       c->slot->n_lines == 0 ? "-" : c->lines_exit == RIG_EXIT_OK ? "ok" : "error",
		       *c->console.drift && c->exit_code == RIG_EXIT_FAIL ? "drift" : verdict(c->exit_code));
	}
	/* The messages after the table: each names slot (or board), transport,
	 * unit and register, so the person at the bench knows what to fix. */
	for (int b = 0; b < rack->n_boards; b++)
		if (boards[b].exit_code != RIG_EXIT_OK)
			printf("%s\n", boards[b].error);
	for (int i = 0; i < n; i++) {
		const struct slot_check *c = &sc[i];
		if (c->console.rc)
			printf("slot %d: console: %s\n", c->slot->id, c->console.error);
		else if (*c->console.drift)
			printf("slot %d: identity drift: %s\n", c->slot->id, c->console.drift);
		if (c->supply_exit != RIG_EXIT_OK)
			printf("%s\n", c->supply_error);
		/* A dead board was said once above; repeating it for each of
		 * its lines would bury the other messages. */
		for (int l = 0; l < c->slot->n_lines; l++)
			if (c->lines[l].exit_code != RIG_EXIT_OK && !c->lines[l].board_dead)
				printf("%s\n", c->lines[l].error);
	}
}

static void print_json(const struct rack *rack, const struct board_check *boards, const struct slot_check *sc, int n,
		       int exit_code)
{
	struct json j;
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "station", rack->station);
	json_str(&j, "rack", rack->file);
	json_str(&j, "result", verdict(exit_code));
	json_arr_begin(&j, "boards");
	for (int b = 0; b < rack->n_boards; b++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "name", rack->boards[b].name);
		json_str(&j, "driver", rack->boards[b].driver);
		json_str(&j, "transport", rack->boards[b].bus.transport);
		json_int(&j, "unit", rack->boards[b].bus.unit);
		json_str(&j, "result", verdict(boards[b].exit_code));
		if (boards[b].exit_code != RIG_EXIT_OK)
			json_str(&j, "error", boards[b].error);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "slots");
	for (int i = 0; i < n; i++) {
		const struct slot_check *c = &sc[i];
		json_obj_begin(&j, NULL);
		json_int(&j, "slot", c->slot->id);
		json_obj_begin(&j, "console");
		json_str(&j, "port", c->slot->console.path);
		json_str(&j, "result", c->console.rc ? tracker_strerror(c->console.rc) : "ok");
		if (c->console.rc)
			json_str(&j, "error", c->console.error);
		json_str(&j, "imei", c->console.identified ? c->console.id.imei : NULL);
		if (*c->console.drift)
			json_str(&j, "identity_drift", c->console.drift);
		json_obj_end(&j);
		if (c->have_supply) {
			json_obj_begin(&j, "supply");
			json_str(&j, "transport", c->slot->power.bus.transport);
			json_int(&j, "unit", c->slot->power.bus.unit);
			json_str(&j, "result", verdict(c->supply_exit));
			if (c->supply_exit == RIG_EXIT_OK || c->set_points_differ) {
				json_bool(&j, "output_on", c->supply.output_on);
				json_num(&j, "v_out", c->supply.v_out);
				json_num(&j, "i_out", c->supply.i_out);
				json_num(&j, "v_set", c->supply.v_set);
				json_num(&j, "i_set", c->supply.i_set);
			}
			if (c->supply_exit != RIG_EXIT_OK)
				json_str(&j, "error", c->supply_error);
			json_obj_end(&j);
		} else {
			json_null(&j, "supply");
		}
		json_arr_begin(&j, "lines");
		for (int l = 0; l < c->slot->n_lines; l++) {
			const struct rack_line *rl = &c->slot->lines[l];
			json_obj_begin(&j, NULL);
			json_str(&j, "name", rl->name);
			json_str(&j, "board", rl->board);
			json_int(&j, "channel", rl->channel);
			if (c->lines[l].exit_code == RIG_EXIT_OK) {
				json_str(&j, "state", c->lines[l].on ? "on" : "off");
			} else {
				json_null(&j, "state");
				json_str(&j, "error", c->lines[l].error);
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_str(&j, "result", *c->console.drift && c->exit_code == RIG_EXIT_FAIL ? "drift" : verdict(c->exit_code));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
}

static int check_rack(const char *rack_file, const struct check_opts *o)
{
	struct rack rack;
	bool *sel;
	int n;
	int rc = slots_load(rack_file, "all", "rack", &rack, &sel, &n);
	if (rc != RIG_EXIT_OK)
		return rc;
	struct board_check *boards = calloc(RACK_MAX_BOARDS, sizeof *boards);
	struct slot_check *sc = calloc((size_t)n + 1, sizeof *sc);
	if (!boards || !sc) {
		free(boards);
		free(sc);
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "rack", "out of memory");
	}
	int exit_code = RIG_EXIT_OK;
	for (int b = 0; b < rack.n_boards; b++) {
		check_board(&rack, b, o->modbus_ms, &boards[b]);
		exit_code = worst(exit_code, boards[b].exit_code);
	}
	/* Nothing recorded: a check changes nothing on the bench, and the
	 * consoles are only asked for identity and status. */
	rig_clock *clk = NULL;
	char cerr[512];
	if (clock_or_warn(&rack, &clk, cerr, sizeof cerr, "rack")) {
		free(boards);
		free(sc);
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "rack", "clock: %s", cerr);
	}
	struct probe_ctx ctx = { .db = NULL, .timeout_ms = o->console_ms, .backend = SERIAL_BACKEND_AUTO,
				 .clock = clk };
	int k = 0;
	for (int i = 0; i < rack.n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack.slots[i];
		struct slot_check *c = &sc[k++];
		char label[12];
		snprintf(label, sizeof label, "%d", s->id);
		c->slot = s;
		c->rack_file = rack.file;
		struct probe_target t = { .slot = label, .port = s->console.path, .baud = s->console.baud,
					  .protocol = *s->protocol ? s->protocol : NULL, .expect = s };
		if (*s->console.path) {
			probe_one(&ctx, &t, &c->console);
		} else {
			/* A slot without a console is a rack file problem, and the
			 * message says so instead of an empty port name. */
			memset(&c->console, 0, sizeof c->console);
			c->console.rc = TRACKER_ERR_ARG;
			c->console.exit_code = RIG_EXIT_USAGE;
			snprintf(c->console.error, sizeof c->console.error, "no console port in %s", rack.file);
		}
		check_supply(s, o->modbus_ms, c);
		check_lines(&rack, boards, s, c);
		c->exit_code = worst(worst(c->console.exit_code, c->supply_exit), c->lines_exit);
		exit_code = worst(exit_code, c->exit_code);
	}
	for (int b = 0; b < rack.n_boards; b++)
		if (boards[b].dev)
			boards[b].drv->close(boards[b].dev);
	if (o->json)
		print_json(&rack, boards, sc, k, exit_code);
	else
		print_table(&rack, boards, sc, k);
	free(sc);
	clock_close(clk);
	free(boards);
	slots_free(&rack, sel);
	return exit_code;
}

int cmd_rack(int argc, char **argv)
{
	/* Subcommand first: `rig rack check ...`; others may follow (rack
	 * diff, rack write) and must not be mistaken for options. */
	if (argc < 2)
		return cli_fail(RIG_EXIT_USAGE, "rack", "expected a subcommand: rig rack check [--rack FILE] (see rig rack --help)");
	if (strcmp(argv[1], "check") != 0)
		return cli_fail(RIG_EXIT_USAGE, "rack", "unknown subcommand '%s': expected rig rack check (see rig rack --help)",
				argv[1]);
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "timeout", required_argument, 0, 't' },
		{ "json", no_argument, 0, 'j' }, { "seed", required_argument, 0, 'S' },
		{ 0, 0, 0, 0 },
	};
	const char *rack_file = NULL;
	struct check_opts o = { .console_ms = 2000, .modbus_ms = 500 };
	unsigned seed = 1;
	long v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': rack_file = optarg; break;
		case 'j': o.json = true; break;
		case 't':
			if (cli_long(optarg, 1, 600000, &v))
				return cli_fail(RIG_EXIT_USAGE, "rack", "--timeout '%s': expected milliseconds, 1..600000", optarg);
			o.console_ms = o.modbus_ms = (int)v;
			break;
		case 'S':
			if (cli_long(optarg, 0, 0x7fffffff, &v))
				return cli_fail(RIG_EXIT_USAGE, "rack", "--seed '%s': expected a whole number", optarg);
			seed = (unsigned)v;
			break;
		default:
			return cli_bad_option("rack", longopts, argv[optind]);  /* argv + 1 was parsed */
		}
	}
	if (optind != argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "rack", "rack check takes no arguments besides options");
	if (rack_file)
		return check_rack(rack_file, &o);

	struct embedded_rack er;
	char err[512];
	if (embedded_rack_start(&er, 4, seed, NULL, err, sizeof err) != 0)
		return cli_fail(RIG_EXIT_INFRA, "rack", "%s", err);
	int rc = check_rack(er.rack_file, &o);
	embedded_rack_stop(&er);
	return rc;
}
