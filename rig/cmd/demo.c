/*
 * cmd/demo.c - `rig demo`: the main job on a simulated rack, for a first look.
 *
 * The main job is the nightly suite: it is `rig nightly` with no rack file,
 * writing the HTML report and the trends page beside the results store.
 */
#include "cli.h"

#include <stdio.h>

extern int cmd_nightly(int argc, char **argv);

const char cmd_demo_usage[] =
	"usage: rig demo [--db PATH] [--seed N]\n\n"
	"The main job on a simulated rack, no hardware needed: starts an 8-slot\n"
	"simrack on virtual time (reference units and defective ones mixed), runs the\n"
	"nightly suite (power-loss, offline-flush, data-cap) on every slot in parallel,\n"
	"records everything, and writes trackrig-report.html (this run, with charts)\n"
	"and trackrig-trends.html (pass rates over runs, flaky checks). The defective\n"
	"units fail, each for its own reason: that is what the demo shows, so it exits\n"
	"0 unless the rig itself could not run.\n";

int cmd_demo(int argc, char **argv)
{
	char *args[20] = { "nightly", "--html", "trackrig-report.html", "--trends", "trackrig-trends.html",
			   "--junit", "trackrig-junit.xml" };
	int n = 7;
	for (int i = 1; i < argc && n < 19; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	fprintf(stderr, "trackrig demo: the nightly suite on a simulated 8-slot rack (virtual time)...\n");
	int rc = cmd_nightly(n, args);
	fflush(stdout);
	fprintf(stderr, "\nopen trackrig-report.html in a browser (or print it); `rig audit` shows every\n"
			"command, power and relay switch the run made.\n");
	/* Failing defective units are the point of the demo. */
	return rc == RIG_EXIT_FAIL ? RIG_EXIT_OK : rc;
}
