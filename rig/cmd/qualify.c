/*
 * cmd/qualify.c - `rig qualify`: the qualification suite across every model
 * on the rack (several units each), then a side-by-side comparison per model
 * read back from the store, a ranking with its reasons, defects with their
 * evidence, and charts. For procurement.
 */
#include "cli.h"
#include "embedded.h"
#include "qualify.h"
#include "rack.h"
#include "runner.h"
#include "store.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_qualify_usage[] =
	"usage: rig qualify [--rack FILE] [options]\n\n"
	"Runs the qualification suite (power-loss, offline-flush, data-cap; ota-rollback,\n"
	"gnss-outage and ttff when those scenario files exist) on every slot, all models\n"
	"at once, then compares the models (vendor + model; several units each) side by\n"
	"side from the results store: boot time; idle, booting and transmit current;\n"
	"flush integrity (offline-flush pass rate, drain time); data used per day against\n"
	"a SIM plan's cap (uplink bytes up+down scaled to a day of rack time); cold TTFF\n"
	"and reacquisition; rollback success (ota-rollback pass rate) and time; defects\n"
	"with their evidence; and a ranking with its reasons. A figure no scenario\n"
	"measured shows as \"-\" (\"not measured\" on the page).\n"
	"Rates and defects count device verdicts only (pass, fail, timeout): the rig's\n"
	"own faults (error, aborted) and slots in quarantine (skipped) are shown in\n"
	"their own columns and counted against no model.\n"
	"With no --rack, a simulated 8-slot rack of mixed models on virtual time.\n\n"
	"options:\n"
	"  --rack FILE        rack file (YAML)\n"
	"  --db FILE          results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --html FILE        printable HTML comparison with charts (checked writable\n"
	"                     before the run: exit 2 at once)\n"
	"  --sim-cap-mb N     the SIM plan's data cap per day in MB (default 50)\n"
	"  --seed N           seed of the simulated rack (default 1)\n"
	"  --operator NAME    who runs this (default $USER)\n\n"
	"exit: 0 no model had defects, 1 a model had defects, 2 usage or file error,\n"
	"      3 infrastructure error\n";

static const char *const suite[] = { "power-loss", "offline-flush", "data-cap", "ota-rollback", "gnss-outage", "ttff" };
#define SUITE_N (sizeof suite / sizeof suite[0])
#define SUITE_REQUIRED 3

struct qopts {
	struct run_opts run;
	const char *html;
	double cap_mb;
};

/* A column's figure, or "-" when it was not measured. */
static const char *num(char *buf, size_t len, const char *fmt, double v)
{
	if (isfinite(v))
		snprintf(buf, len, fmt, v);
	else
		snprintf(buf, len, "-");
	return buf;
}

static void print_summary(const struct qualify_summary *q)
{
	printf("\n%-4s  %-24s  %5s  %6s  %7s  %7s  %7s  %8s  %7s  %7s  %6s  %6s  %8s  %7s  %7s  %10s  %7s\n", "RANK", "MODEL",
	       "UNITS", "BOOT s", "IDLE mA", "BOOT mA", "TX mA", "FLUSH ok", "DRAIN s", "MB/DAY", "TTFF s", "REACQ s",
	       "ROLLBACK", "RB s", "DEFECTS", "RIG FAULTS", "SKIPPED");
	for (int i = 0; i < q->n; i++) {
		const struct qualify_model *m = &q->m[i];
		char b[12][24];
		printf("%-4d  %-24.24s  %5d  %6s  %7s  %7s  %7s  %8s  %7s  %7s  %6s  %6s  %8s  %7s  %7d  %10d  %7d\n", m->rank, m->name,
		       m->units, num(b[0], 24, "%.1f", m->boot_s), num(b[1], 24, "%.0f", m->idle_a * 1000),
		       num(b[2], 24, "%.0f", m->booting_a * 1000), num(b[3], 24, "%.0f", m->tx_a * 1000),
		       num(b[4], 24, "%.0f%%", m->flush_pass_rate * 100), num(b[5], 24, "%.1f", m->drain_s),
		       num(b[6], 24, "%.2f", m->bytes_per_day / 1e6), num(b[7], 24, "%.0f", m->ttff_s),
		       num(b[8], 24, "%.1f", m->reacq_s), num(b[9], 24, "%.0f%%", m->rollback_pass_rate * 100),
		       num(b[10], 24, "%.0f", m->rollback_s), m->defects, m->rig_faults, m->skipped);
	}
	printf("(- : not measured. Rates and DEFECTS count device verdicts only (pass, fail, timeout); RIG FAULTS\n"
	       " (error, aborted) are the rig's own trouble and SKIPPED slots in quarantine, counted against no model)\n"
	       "\nranking (SIM cap %.0f MB/day):\n", q->cap_mb);
	for (int i = 0; i < q->n; i++)
		printf("  %d. %s: %s\n", q->m[i].rank, q->m[i].name, q->m[i].reasons);
}

static int qualify_on(const char *rack_file, struct qopts *o)
{
	struct scenario scs[SUITE_N];
	char err[768];
	int n = rig_load_suite("qualify", rack_file, suite, SUITE_N, SUITE_REQUIRED, scs, err, sizeof err);
	if (n < 0)
		return cli_fail(RIG_EXIT_USAGE, "qualify", "%s", err);
	int rc = rig_run_rack(rack_file, scs, n, &o->run);
	for (int k = 0; k < n; k++)
		scenario_free(&scs[k]);
	if (rc != RIG_EXIT_OK && rc != RIG_EXIT_FAIL && o->run.run_id <= 0)
		return rc;
	store *db;
	if (store_open(cli_db_path(o->run.db), &db, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "qualify", "results store: %s", err);
	struct qualify_summary *q = calloc(1, sizeof *q);
	if (!q || qualify_compute(db, o->run.run_id, o->cap_mb, q, err, sizeof err)) {
		store_close(db);
		free(q);
		return cli_fail(RIG_EXIT_INFRA, "qualify", "%s", q ? err : "out of memory");
	}
	print_summary(q);
	bool defects = false;
	for (int i = 0; i < q->n; i++)
		defects |= q->m[i].defects > 0;
	if (o->html) {
		if (report_html_qualify(db, q, o->html, err, sizeof err))
			rc = cli_fail(RIG_EXIT_INFRA, "qualify", "%s", err);
		else
			printf("report: %s\n", o->html);
	}
	store_close(db);
	free(q);
	if (rc == RIG_EXIT_INFRA || rc == RIG_EXIT_USAGE)
		return rc;
	return defects ? RIG_EXIT_FAIL : RIG_EXIT_OK;
}

int cmd_qualify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' }, { "db", required_argument, 0, 'd' },
		{ "html", required_argument, 0, 'H' }, { "sim-cap-mb", required_argument, 0, 'c' },
		{ "seed", required_argument, 0, 'S' }, { "operator", required_argument, 0, 'o' },
		{ 0, 0, 0, 0 },
	};
	struct qopts o = { .run = { .command = "qualify", .seed = 1 }, .cap_mb = 50 };
	long v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.run.rack = optarg; break;
		case 'd': o.run.db = optarg; break;
		case 'H': o.html = optarg; break;
		case 'o': o.run.operator_ = optarg; break;
		case 'c':
			if (cli_long(optarg, 1, 1000000, &v))
				return cli_fail(RIG_EXIT_USAGE, "qualify", "--sim-cap-mb '%s': expected 1..1000000", optarg);
			o.cap_mb = (double)v;
			break;
		case 'S':
			if (cli_long(optarg, 0, 0x7fffffff, &v))
				return cli_fail(RIG_EXIT_USAGE, "qualify", "--seed '%s': expected a whole number", optarg);
			o.run.seed = (unsigned)v;
			break;
		default:
			return cli_bad_option("qualify", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "qualify", "unexpected argument '%s'", argv[optind]);
	char perr[1400];
	if (o.html && cli_output_writable(o.html, perr, sizeof perr))
		return cli_fail(RIG_EXIT_USAGE, "qualify", "--html %s", perr);
	if (o.run.rack)
		return qualify_on(o.run.rack, &o);
	struct embedded_rack er;
	char err[512];
	/* Simulated units trust the test vendor key when the images are there. */
	char key[PATH_MAX + 32], dir[PATH_MAX];
	snprintf(key, sizeof key, "%s/vendor.pub.pem", rig_image_dir(&o.run, dir, sizeof dir));
	if (embedded_rack_for(&er, "qualify", 8, o.run.seed, key, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "qualify", "%s", err);
	int rc = qualify_on(er.rack_file, &o);
	embedded_rack_stop(&er);
	return rc;
}
