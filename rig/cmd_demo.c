/*
 * cmd_demo.c - `rig demo`: the main job on a simulated rack, for a first look.
 *
 * Today the main job is probing every slot; later it grows into the nightly
 * suite. It is `rig probe` with no rack file, plus a few words of context.
 */
#include "cli.h"

#include <stdio.h>

extern int cmd_probe(int argc, char **argv);

const char cmd_demo_usage[] =
	"usage: rig demo [--db PATH] [--seed N] [--json]\n\n"
	"Starts a simulated 4-slot rack (simrack), probes every tracker on it through\n"
	"its serial console, records the results and the audit trail, and prints a\n"
	"table. No hardware needed. Options are those of rig probe.\n";

int cmd_demo(int argc, char **argv)
{
	char *args[16] = { "probe" };
	int n = 1;
	for (int i = 1; i < argc && n < 15; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	fprintf(stderr, "trackrig demo: starting a simulated 4-slot rack and probing each slot...\n");
	int rc = cmd_probe(n, args);
	fflush(stdout);
	fprintf(stderr, "\nrecorded in %s; `rig audit` shows every command sent.\n", cli_db_path(NULL));
	return rc;
}
