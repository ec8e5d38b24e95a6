/*
 * cmd/nightly.c - `rig nightly`: the whole suite on every slot, for QA.
 *
 * Each slot first proves its rig side works (health gate); slots that fail
 * are quarantined and reported instead of failing devices. Scenarios a rack
 * cannot run (a SIM data cap needs a simulated rack) are left out and said.
 * JUnit for the CI system, the JSON record, and the results in the store
 * for trends.
 */
#include "cli.h"
#include "embedded.h"
#include "rack.h"
#include "runner.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_nightly_usage[] =
	"usage: rig nightly [--rack FILE] [options]\n\n"
	"Runs the suite (power-loss, offline-flush, data-cap) on every slot in\n"
	"parallel. Each slot is health-checked first (console and supply answer); a\n"
	"slot that fails is quarantined: skipped and reported on every night until\n"
	"`rig slot reset N`. Scenarios the rack cannot run are left out, with the\n"
	"reason. With no --rack, a simulated 8-slot rack on virtual time.\n\n"
	"options:\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --db FILE          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --junit FILE       JUnit XML for the CI system\n"
	"  --json FILE        JSON test record\n"
	"  --html FILE        printable HTML report of this night, with charts\n"
	"  --trends FILE      HTML page of pass rates over earlier nights and flaky checks\n"
	"  --seed N           seed of the simulated rack (default 1)\n"
	"  --operator NAME    who runs this (default $USER)\n\n"
	"Every output file is checked writable before the night starts (exit 2 at once).\n"
	"exit: 0 all passed, 1 a check failed, 2 usage or file error, 3 infrastructure error\n";

static const char *const suite[] = { "power-loss", "offline-flush", "data-cap" };
#define SUITE_N (sizeof suite / sizeof suite[0])

static int nightly_on(const char *rack_file, struct run_opts *o)
{
	struct scenario scs[SUITE_N];
	char err[768];
	int n = rig_load_suite("nightly", rack_file, suite, SUITE_N, SUITE_N, scs, err, sizeof err);
	if (n < 0)
		return cli_fail(RIG_EXIT_USAGE, "nightly", "%s", err);
	int rc = rig_run_rack(rack_file, scs, n, o);
	for (int k = 0; k < n; k++)
		scenario_free(&scs[k]);
	return rc;
}

int cmd_nightly(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "db", required_argument, 0, 'd' },
		{ "junit", required_argument, 0, 'J' }, { "json", required_argument, 0, 'j' },
		{ "seed", required_argument, 0, 'S' }, { "operator", required_argument, 0, 'o' },
		{ "html", required_argument, 0, 'H' }, { "trends", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	struct run_opts o = { .command = "nightly", .seed = 1, .health_gate = true };
	long v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rack = optarg; break;
		case 'd': o.db = optarg; break;
		case 'J': o.junit = optarg; break;
		case 'j': o.json = optarg; break;
		case 'H': o.html = optarg; break;
		case 'T': o.trends = optarg; break;
		case 'o': o.operator_ = optarg; break;
		case 'S':
			if (cli_long(optarg, 0, 0x7fffffff, &v))
				return cli_fail(RIG_EXIT_USAGE, "nightly", "--seed '%s': expected a whole number", optarg);
			o.seed = (unsigned)v;
			break;
		default:
			return cli_bad_option("nightly", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "nightly", "unexpected argument '%s'", argv[optind]);
	if (rig_check_outputs(&o))
		return RIG_EXIT_USAGE;
	if (o.rack)
		return nightly_on(o.rack, &o);
	struct embedded_rack er;
	char err[512];
	if (embedded_rack_for(&er, "nightly", 8, o.seed, NULL, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "nightly", "%s", err);
	int rc = nightly_on(er.rack_file, &o);
	embedded_rack_stop(&er);
	return rc;
}
