/*
 * cmd/relay.c - `rig relay SLOTS LINE on|off|status`: a slot's relay line
 * (ignition, antennas, inputs) by hand.
 *
 * Like supply switching, every relay switching action goes to the audit
 * trail: an ignition that went on during a night test must be traceable to
 * the person who closed it.
 */
#include "cli.h"
#include "json.h"
#include "rack.h"
#include "relay.h"
#include "slotdev.h"
#include "slots.h"
#include "store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_relay_usage[] =
	"usage: rig relay SLOTS LINE on|off|status --rack FILE [options]\n\n"
	"Closes (on), opens (off) or reads (status) the relay line LINE (ignition,\n"
	"gnss_antenna, cell_antenna, ... as the rack file names them) of each slot in\n"
	"SLOTS (3, 1-4,7 or all), through the relay board or module the rack file gives\n"
	"the line. After switching, the channel is read back. Switching actions are\n"
	"recorded in the audit trail.\n\n"
	"options:\n"
	"  --rack FILE        rack file (required; also $TRACKRIG_RACK)\n"
	"  --timeout MS       board response timeout (default 500)\n"
	"  --json             JSON on stdout instead of a table\n"
	"  --db PATH          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME    who does this, for the audit trail (default $USER)\n\n"
	"exit: 0 done, 1 a channel read back wrong, 2 usage or rack file error\n"
	"      (a slot without LINE), 3 a board unreachable or refusing\n";

enum action { ACT_ON, ACT_OFF, ACT_STATUS };
static const char *const action_names[] = { "on", "off", "status" };

/* One open board per rack board, opened on first use: slots sharing a
 * board share its connection, and a board that would not open is tried
 * once, not once per slot (each try can cost a full timeout). */
struct board_cache {
	const struct relay_driver *drv[RACK_MAX_BOARDS];
	struct relay_dev *dev[RACK_MAX_BOARDS];
	bool tried[RACK_MAX_BOARDS];
	char error[RACK_MAX_BOARDS][512];
};

/* Result of one slot's line, for the table or JSON. */
struct row {
	const struct rack_slot *slot;
	const struct rack_line *line;
	bool known, on;          /* KNOWN: the state was read back */
	int exit_code;
	char result[640];        /* "ok", or the error naming slot, line, board */
};

static const struct rack_line *find_line(const struct rack_slot *s, const char *name)
{
	for (int i = 0; i < s->n_lines; i++)
		if (strcmp(s->lines[i].name, name) == 0)
			return &s->lines[i];
	return NULL;
}

/* The open board B, or NULL with the reason in bc->error[B]. */
static struct relay_dev *board_get(struct board_cache *bc, const struct rack *rack, int b, int timeout_ms)
{
	if (bc->tried[b])
		return bc->dev[b];
	bc->tried[b] = true;
	bc->drv[b] = relay_driver_find(rack->boards[b].driver);
	slotdev_board(rack, b, timeout_ms, &bc->dev[b], bc->error[b], sizeof bc->error[b]);
	return bc->dev[b];
}

static void board_close_all(struct board_cache *bc)
{
	for (int b = 0; b < RACK_MAX_BOARDS; b++)
		if (bc->dev[b])
			bc->drv[b]->close(bc->dev[b]);
}

/* Does ACT on one slot's line and reads the channel back into R. */
static void one_slot(struct board_cache *bc, const struct rack *rack, enum action act, int timeout_ms, struct row *r)
{
	const struct rack_line *l = r->line;
	int b = slotdev_board_index(rack, l->board);
	struct relay_dev *dev = b < 0 ? NULL : board_get(bc, rack, b, timeout_ms);
	if (!dev) {
		snprintf(r->result, sizeof r->result, "slot %d: line %s: %s", r->slot->id, l->name,
			 b < 0 ? "board not in the rack file" : bc->error[b]);
		r->exit_code = b < 0 ? RIG_EXIT_USAGE : RIG_EXIT_INFRA;
		return;
	}
	const struct relay_driver *drv = bc->drv[b];
	int rc = RELAY_OK;
	if (act != ACT_STATUS)
		rc = drv->set(dev, l->channel, act == ACT_ON);
	if (rc == RELAY_OK)
		rc = drv->get(dev, l->channel, &r->on);
	if (rc != RELAY_OK) {
		snprintf(r->result, sizeof r->result, "slot %d: line %s: board %s: %s", r->slot->id, l->name, l->board,
			 relay_error(dev));
		/* A malformed read-back is a board answering wrongly; anything
		 * else (connect, timeout, exception, lost) is unreachable or
		 * refusing, as for supplies. */
		r->exit_code = rc == RELAY_ERR_IO ? RIG_EXIT_FAIL : RIG_EXIT_INFRA;
		return;
	}
	r->known = true;
	if (act != ACT_STATUS && r->on != (act == ACT_ON)) {
		snprintf(r->result, sizeof r->result, "slot %d: line %s: board %s channel %d reads %s after switching %s",
			 r->slot->id, l->name, l->board, l->channel, r->on ? "on" : "off", action_names[act]);
		r->exit_code = RIG_EXIT_FAIL;
		return;
	}
	snprintf(r->result, sizeof r->result, "ok");
	r->exit_code = RIG_EXIT_OK;
}

/* Worst of two exit codes: infrastructure beats usage beats fail beats ok. */
static int worst(int a, int b)
{
	static const int rank[] = { [RIG_EXIT_OK] = 0, [RIG_EXIT_FAIL] = 1, [RIG_EXIT_USAGE] = 2, [RIG_EXIT_INFRA] = 3 };
	return rank[b] > rank[a] ? b : a;
}

static void print_json(const struct rack *rack, const char *line, const char *act, const struct row *rows, int n)
{
	struct json j;
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "station", rack->station);
	json_str(&j, "rack", rack->file);
	json_str(&j, "line", line);
	json_str(&j, "action", act);
	json_arr_begin(&j, "slots");
	for (int i = 0; i < n; i++) {
		json_obj_begin(&j, NULL);
		json_int(&j, "slot", rows[i].slot->id);
		json_str(&j, "board", rows[i].line->board);
		json_int(&j, "channel", rows[i].line->channel);
		if (rows[i].known)
			json_str(&j, "state", rows[i].on ? "on" : "off");
		else
			json_null(&j, "state");
		json_str(&j, "result", rows[i].exit_code == RIG_EXIT_OK ? "ok" : "error");
		if (rows[i].exit_code != RIG_EXIT_OK)
			json_str(&j, "error", rows[i].result);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
}

int cmd_relay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "timeout", required_argument, 0, 't' },
		{ "json", no_argument, 0, 'j' }, { "db", required_argument, 0, 'd' },
		{ "operator", required_argument, 0, 'o' }, { 0, 0, 0, 0 },
	};
	const char *rack_file = getenv("TRACKRIG_RACK"), *db_path = NULL, *operator_ = NULL;
	int timeout_ms = 500, c;
	bool json = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': rack_file = optarg; break;
		case 'd': db_path = optarg; break;
		case 'o': operator_ = optarg; break;
		case 'j': json = true; break;
		case 't':
			if (cli_ms(optarg, &timeout_ms))
				return cli_fail(RIG_EXIT_USAGE, "relay", "--timeout '%s': expected milliseconds", optarg);
			break;
		default:
			return cli_bad_option("relay", longopts, argv[optind - 1]);
		}
	}
	if (argc - optind != 3)
		return cli_fail(RIG_EXIT_USAGE, "relay", "expected SLOTS, LINE and one of on, off, status");
	const char *spec = argv[optind], *line = argv[optind + 1];
	int act = -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(argv[optind + 2], action_names[i]) == 0)
			act = i;
	if (act < 0)
		return cli_fail(RIG_EXIT_USAGE, "relay", "'%s': expected on, off or status", argv[optind + 2]);
	if (!rack_file)
		return cli_fail(RIG_EXIT_USAGE, "relay", "which rack? give --rack FILE (or set TRACKRIG_RACK)");

	struct rack rack;
	bool *sel;
	int n;
	int rc = slots_load(rack_file, spec, "relay", &rack, &sel, &n);
	if (rc != RIG_EXIT_OK)
		return rc;

	/* Every selected slot must have LINE before anything is switched: a
	 * misspelt line is a configuration error, and switching half of the
	 * slots before saying so leaves the rack in a state nobody asked for. */
	struct row *rows = calloc((size_t)n + 1, sizeof *rows);
	if (!rows) {
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "relay", "out of memory");
	}
	int k = 0, missing = 0;
	for (int i = 0; i < rack.n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack.slots[i];
		const struct rack_line *l = find_line(s, line);
		if (!l) {
			char known[RACK_MAX_LINES * (RACK_NAME_MAX + 2)] = "";
			size_t off = 0;
			for (int j = 0; j < s->n_lines && off < sizeof known; j++)
				off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", j ? ", " : "", s->lines[j].name);
			fprintf(stderr, "rig relay: slot %d has no line '%s' in %s (its lines: %s)\n", s->id, line, rack.file,
				s->n_lines ? known : "none");
			missing++;
			continue;
		}
		rows[k++] = (struct row){ .slot = s, .line = l };
	}
	if (missing) {
		free(rows);
		slots_free(&rack, sel);
		return RIG_EXIT_USAGE;
	}

	char err[768];
	store *db = NULL;
	if (act != ACT_STATUS && store_open(cli_db_path(db_path), &db, err, sizeof err)) {
		free(rows);
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "relay", "results store: %s", err);
	}
	struct board_cache *bc = calloc(1, sizeof *bc);
	if (!bc) {
		store_close(db);
		free(rows);
		slots_free(&rack, sel);
		return cli_fail(RIG_EXIT_INFRA, "relay", "out of memory");
	}
	char command[RACK_NAME_MAX + 16];
	snprintf(command, sizeof command, "relay %s %s", line, action_names[act]);
	int exit_code = RIG_EXIT_OK;
	for (int i = 0; i < k; i++) {
		struct row *r = &rows[i];
		/* One slot's failure is reported and the next slot still served. */
		one_slot(bc, &rack, (enum action)act, timeout_ms, r);
		if (r->exit_code != RIG_EXIT_OK) {
			fprintf(stderr, "rig relay: %s\n", r->result);
			exit_code = worst(exit_code, r->exit_code);
		}
		if (db) {
			char slot[12], result[700];
			snprintf(slot, sizeof slot, "%d", r->slot->id);
			if (r->exit_code == RIG_EXIT_OK)
				snprintf(result, sizeof result, "ok: %s %s (board %s channel %d)", line, r->on ? "on" : "off",
					 r->line->board, r->line->channel);
			else
				snprintf(result, sizeof result, "%s", r->result);
			int b = slotdev_board_index(&rack, r->line->board);
			struct store_audit a = { .operator_ = cli_operator(operator_), .station = rack.station, .slot = slot,
						 .port = b >= 0 ? rack.boards[b].bus.transport : NULL,
						 .imei = *r->slot->expect.imei ? r->slot->expect.imei : NULL,
						 .command = command, .result = result };
			if (store_audit_add(db, &a) < 0) {
				fprintf(stderr, "rig relay: results store: %s\n", store_error(db));
				exit_code = RIG_EXIT_INFRA;
			}
		}
	}
	board_close_all(bc);
	free(bc);
	store_close(db);

	if (json) {
		print_json(&rack, line, action_names[act], rows, k);
	} else {
		printf("%-4s  %-14s  %-10s  %-7s  %s\n", "SLOT", "LINE", "BOARD", "CHANNEL", "STATE");
		for (int i = 0; i < k; i++)
			printf("%-4d  %-14s  %-10s  %-7d  %s\n", rows[i].slot->id, rows[i].line->name, rows[i].line->board,
			       rows[i].line->channel, rows[i].known ? (rows[i].on ? "on" : "off") : "error");
	}
	free(rows);
	slots_free(&rack, sel);
	return exit_code;
}
