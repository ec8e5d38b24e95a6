/* cmd/slot.c - `rig slot list|reset`: the quarantine of slots that failed a
 * health check. */
#include "cli.h"
#include "rack.h"
#include "slothealth.h"
#include "store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_slot_usage[] =
	"usage: rig slot list [--rack FILE] [--db FILE]\n"
	"       rig slot reset N --rack FILE [--db FILE] [--operator NAME]\n\n"
	"A slot that fails its health check before a nightly run is quarantined:\n"
	"skipped and reported until a person has looked at it. `list` shows the\n"
	"quarantined slots; `reset N` brings slot N back (audited).\n";

static void show(void *ctx, const char *station, const char *slot, const char *since, const char *reason)
{
	(void)ctx;
	printf("%-12s  slot %-4s  since %s  %s\n", station, slot, since, reason);
}

int cmd_slot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "db", required_argument, 0, 'd' },
		{ "operator", required_argument, 0, 'o' }, { 0, 0, 0, 0 },
	};
	const char *rack_file = getenv("TRACKRIG_RACK"), *db_path = NULL, *operator_ = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': rack_file = optarg; break;
		case 'd': db_path = optarg; break;
		case 'o': operator_ = optarg; break;
		default: return cli_bad_option("slot", longopts, argv[optind - 1]);
		}
	}
	const char *what = optind < argc ? argv[optind] : NULL;
	bool reset = what && !strcmp(what, "reset"), list = what && !strcmp(what, "list");
	if (!reset && !list)
		return cli_fail(RIG_EXIT_USAGE, "slot", "expected 'list' or 'reset N'");
	long id = 0;
	if (reset && (optind + 2 != argc || cli_long(argv[optind + 1], 1, 9999, &id)))
		return cli_fail(RIG_EXIT_USAGE, "slot", "expected: rig slot reset N --rack FILE");
	if (list && optind + 1 != argc)
		return cli_fail(RIG_EXIT_USAGE, "slot", "unexpected argument '%s'", argv[optind + 1]);
	char station[RACK_NAME_MAX] = "", err[768];
	if (rack_file) {
		struct rack rack;
		if (rack_load(rack_file, &rack, err, sizeof err)) {
			rack_free(&rack);
			return cli_fail(RIG_EXIT_USAGE, "slot", "%s", err);
		}
		snprintf(station, sizeof station, "%s", rack.station);
		bool known = rack_slot(&rack, (int)id) != NULL;
		rack_free(&rack);
		if (reset && !known)
			return cli_fail(RIG_EXIT_USAGE, "slot", "slot %ld is not in %s", id, rack_file);
	} else if (reset) {
		return cli_fail(RIG_EXIT_USAGE, "slot", "which rack? give --rack FILE (or set TRACKRIG_RACK)");
	}
	store *db;
	if (list && access(cli_db_path(db_path), F_OK) != 0 && errno == ENOENT) {
		printf("no slot in quarantine (no results store at %s yet)\n", cli_db_path(db_path));
		return RIG_EXIT_OK;
	}
	/* Listing only reads: the store is opened read-only. */
	if ((list ? store_open_readonly : store_open)(cli_db_path(db_path), &db, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "slot", "results store: %s", err);
	int rc = RIG_EXIT_OK;
	if (list) {
		if (slot_each_quarantined(db, *station ? station : NULL, show, NULL) == 0)
			printf("no slot in quarantine\n");
	} else {
		int n = slot_release(db, station, (int)id, cli_operator(operator_));
		char label[12], result[64];
		snprintf(label, sizeof label, "%ld", id);
		snprintf(result, sizeof result, n > 0 ? "ok: released" : n == 0 ? "ok: was not in quarantine" : "failed");
		struct store_audit a = { .operator_ = cli_operator(operator_), .station = station, .slot = label,
					 .command = "slot reset", .result = result };
		store_audit_add(db, &a);
		if (n < 0)
			rc = cli_fail(RIG_EXIT_INFRA, "slot", "results store: %s", store_error(db));
		else
			printf("slot %ld: %s\n", id, n > 0 ? "out of quarantine" : "was not in quarantine");
	}
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "slot", "%s", serr);
	return rc;
}
