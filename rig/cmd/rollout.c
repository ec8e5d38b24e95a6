/*
 * cmd/rollout.c - `rig rollout`: a staged firmware rollout over a cohort of
 * slots, and its control from another terminal (rig/rollout.h,
 * docs/rollout.md).
 */
#include "cli.h"
#include "timefmt.h"
#include "clock.h"
#include "embedded.h"
#include "fwimage.h"
#include "fwserve.h"
#include "rack.h"
#include "report.h"
#include "rollout.h"
#include "store.h"
#include "store_rollout.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char cmd_rollout_usage[] =
	"usage: rig rollout start IMAGE --stages LIST [--rack FILE] [--tag KEY=VALUE] [options]\n"
	"       rig rollout start --resume ID [--rack FILE] [options]\n"
	"       rig rollout status [ID] [--json] [--db FILE]\n"
	"       rig rollout report [ID] --html FILE [--db FILE]  (FILE checked writable first)\n"
	"       rig rollout pause|resume|stop [ID] [--db FILE]\n\n"
	"A staged firmware rollout (hawkBit's model) over the rack's slots whose tag\n"
	"KEY is VALUE (the cohort; all slots without --tag). Stages are cumulative\n"
	"counts or percentages of the cohort, run one after another. Before each\n"
	"device: health gates (supply voltage, console, connectivity, ignition off,\n"
	"free storage, model). Each device is told to update (its driver's ota hook) and followed to\n"
	"committed, rolled back, rejected or its timeout. A stage must commit\n"
	"--success of its started devices to go on; --max-failures pauses at once.\n"
	"State is in the store: pause, resume and stop work from another terminal,\n"
	"SIGINT (or --stop-file) stops. After a stop no device starts an update;\n"
	"devices already installing are followed to their end. A second SIGINT\n"
	"leaves at once (status then says which devices were left updating).\n"
	"With no --rack, a simulated rack with OTA devices (simrack --mix ota\n"
	"--vendor-key KEY --virtual).\n\n"
	"options (start):\n"
	"  --stages LIST         e.g. 1,10%,50%,100% (cumulative)\n"
	"  --rack FILE           rack file (YAML)\n"
	"  --tag KEY=VALUE       the cohort\n"
	"  --success PCT         success threshold per stage (default 90%)\n"
	"  --max-failures N|PCT  failures (rolled back, rejected, failed) in a stage that\n"
	"                        pause the rollout (default 1)\n"
	"  --device-timeout D    per device, on the rig clock: 30m, 90s, 1500ms (default 30m)\n"
	"  --min-volts V         supply gate: output at least V (default 11.0; 0: off)\n"
	"  --stop-file PATH      stop when PATH exists\n"
	"  --poll-ms N           wall ms between reads of control requests (default 250)\n"
	"  --no-wait             return when paused instead of waiting for resume/stop\n"
	"  --resume ID           continue rollout ID (after a rig restart)\n"
	"  --slots N             embedded rack: slots (default 8)\n"
	"  --vendor-key FILE     embedded rack: vendor public key (default vendor.pub.pem\n"
	"                        beside IMAGE)\n"
	"  --seed N              embedded rack seed (default 1)\n"
	"  --db FILE             results store (default ./trackrig.db or $TRACKRIG_DB)\n"
	"  --operator NAME       who runs this (default $USER)\n\n"
	"exit: 0 finished (or stopped) with no failed device, 1 paused or a device failed,\n"
	"      2 usage or file error, 3 infrastructure error\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = interrupted ? 2 : 1;
}

static void progress(void *ctx, const char *line)
{
	(void)ctx;
	char t[16];
	printf("%s %s\n", time_hms(time_wall_ms(), t, sizeof t), line);
	fflush(stdout);
}

static int read_header(const char *path, struct fwimage_header *h, uint64_t *size, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return snprintf(err, errlen, "%.600s: %s", path, strerror(errno)), RIG_EXIT_INFRA;
	uint8_t buf[FWIMAGE_HEADER_SIZE];
	size_t n = fread(buf, 1, sizeof buf, f);
	struct stat sb;
	*size = fstat(fileno(f), &sb) == 0 ? (uint64_t)sb.st_size : 0;
	fclose(f);
	char e[300];
	if (fwimage_header_parse(buf, n, h, e, sizeof e))
		return snprintf(err, errlen, "%.600s: %.300s", path, e), RIG_EXIT_USAGE;
	return 0;
}

struct start_opts {
	const char *image, *rack, *tag, *stages, *db, *operator_, *stop_file, *vendor_key;
	const char *success, *max_failures, *device_timeout;
	double min_volts;
	int poll_ms, slots;
	unsigned seed;
	bool no_wait;
	int64_t resume;
};

static void image_copy(void *ctx, const struct store_rollout_row *row)
{
	struct { char *buf; size_t len; } *to = ctx;
	snprintf(to->buf, to->len, "%s", row->image);
}

static int image_of(store *db, int64_t id, char *image, size_t len, char *err, size_t errlen)
{
	struct { char *buf; size_t len; } to = { image, len };
	int found = store_rollout_get(db, id, image_copy, &to);
	if (found == 0)
		snprintf(err, errlen, "no rollout %lld in the store", (long long)id);
	else if (found < 0)
		snprintf(err, errlen, "store: %s", store_sqlite_message(db));
	return found == 1 ? 0 : -1;
}

static int start_on(const char *rack_file, struct start_opts *so)
{
	char err[1024];
	struct rack rack;
	if (rack_load(rack_file, &rack, err, sizeof err)) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
	}
	store *db;
	if (store_open(cli_db_path(so->db), &db, err, sizeof err)) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
	}
	int rc = RIG_EXIT_OK;
	struct fwserve *srv = NULL;
	struct rollout_console *con = NULL;
	rig_clock *clk = NULL;
	int *slots = NULL;
	const char **imeis = NULL;
	char image[PATH_MAX];
	int64_t id = so->resume;
	if (id > 0) {
		if (image_of(db, id, image, sizeof image, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
			goto out;
		}
	} else {
		snprintf(image, sizeof image, "%s", so->image);
	}
	struct fwimage_header h;
	uint64_t size;
	if ((rc = read_header(image, &h, &size, err, sizeof err))) {
		cli_fail(rc, "rollout", "%s", err);
		goto out;
	}
	if (id <= 0) {
		/* The cohort: slots whose tag KEY is VALUE, in slot order. */
		char key[RACK_NAME_MAX] = "", val[RACK_NAME_MAX] = "";
		if (so->tag) {
			const char *eq = strchr(so->tag, '=');
			if (!eq || eq == so->tag || (size_t)(eq - so->tag) >= sizeof key) {
				rc = cli_fail(RIG_EXIT_USAGE, "rollout", "--tag '%s': expected KEY=VALUE", so->tag);
				goto out;
			}
			snprintf(key, sizeof key, "%.*s", (int)(eq - so->tag), so->tag);
			snprintf(val, sizeof val, "%s", eq + 1);
		}
		slots = calloc((size_t)rack.n_slots + 1, sizeof *slots);
		imeis = calloc((size_t)rack.n_slots + 1, sizeof *imeis);
		int n = 0;
		for (int i = 0; slots && imeis && i < rack.n_slots; i++) {
			const char *v = *key ? rack_tag(&rack.slots[i], key) : "";
			if (v && strcmp(v, val) == 0) {
				imeis[n] = *rack.slots[i].expect.imei ? rack.slots[i].expect.imei : NULL;
				slots[n++] = rack.slots[i].id;
			}
		}
		struct rollout_spec sp = { .image = image, .version = h.version, .model = h.model,
					   .stages = so->stages, .cohort = so->tag ? so->tag : "all",
					   .station = *rack.station ? rack.station : NULL, .slots = slots,
					   .imeis = imeis, .n_slots = n };
		long v;
		struct rollout_stages st;
		char s2[32];
		snprintf(s2, sizeof s2, "%s", so->success);
		size_t l = strlen(s2);
		if (l && s2[l - 1] == '%')
			s2[l - 1] = '\0';
		if (cli_long(s2, 0, 100, &v)) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "--success '%s': expected 0..100%%", so->success);
			goto out;
		}
		sp.success_pct = (int)v;
		if (rollout_threshold_parse(so->max_failures, &sp.max_failures, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "--max-failures %s", err);
			goto out;
		}
		if (rollout_duration_parse(so->device_timeout, &sp.device_timeout_ms)) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "--device-timeout '%s': expected 30m, 90s, 1500ms",
				      so->device_timeout);
			goto out;
		}
		if (rollout_stages_parse(so->stages, &st, err, sizeof err)) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
			goto out;
		}
		if (n == 0) {
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "no slot of %s has tag %s", rack_file,
				      so->tag ? so->tag : "(any)");
			goto out;
		}
		if ((id = rollout_create(db, &sp, cli_operator(so->operator_), err, sizeof err)) < 0) {
			rc = cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
			goto out;
		}
		printf("rollout %lld: %s %s (%s) over %d slot%s of %s, stages %s\n", (long long)id, image, h.version,
		       h.model, n, n == 1 ? "" : "s", sp.cohort, so->stages);
	}
	/* Serve the image's directory; devices fetch http://127.0.0.1:PORT/NAME. */
	char dirbuf[PATH_MAX], basebuf[PATH_MAX], url[PATH_MAX + 64];
	snprintf(dirbuf, sizeof dirbuf, "%s", image);
	snprintf(basebuf, sizeof basebuf, "%s", image);
	if (fwserve_start(dirname(dirbuf), NULL, 0, &srv, err, sizeof err)) {
		rc = cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
		goto out;
	}
	fwserve_url(srv, basename(basebuf), url, sizeof url);
	if (clock_or_warn(&rack, &clk, err, sizeof err, "rollout")) {
		rc = RIG_EXIT_INFRA;
		goto out;
	}
	if (rollout_console_open(&rack, clk, h.model, h.version, size, so->min_volts, &con, err, sizeof err)) {
		rc = cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("serving %s; stop with Ctrl-C, `rig rollout stop %lld` or %s\n", url, (long long)id,
	       so->stop_file ? so->stop_file : "(no stop file)");
	struct rollout_opts o = { .url = url, .operator_ = cli_operator(so->operator_),
				  .station = *rack.station ? rack.station : NULL, .stop_file = so->stop_file,
				  .interrupt = &interrupted, .db_poll_ms = so->poll_ms, .db_poll_every_step = true,
				  .device_poll_ms = 1000, .wait_when_paused = !so->no_wait, .pause_wait_poll_ms = so->poll_ms,
				  .progress = progress };
	char state[16];
	if (rollout_run(db, id, &rollout_console_ops, con, &o, state, sizeof state, err, sizeof err)) {
		fprintf(stderr, "rig rollout: %s\n", err);
		rc = RIG_EXIT_FAIL;
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	rollout_status(db, id, false, stdout, err, sizeof err);
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	if (rc == RIG_EXIT_OK && (strcmp(state, "paused") == 0 || c.failed + c.rolled_back + c.rejected > 0))
		rc = RIG_EXIT_FAIL;
out:
	rollout_console_close(con);
	if (clk)
		clock_close(clk);
	fwserve_stop(srv);
	free(slots);
	free(imeis);
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "rollout", "%s", serr);
	rack_free(&rack);
	return rc;
}

static int cmd_start(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rack", required_argument, 0, 'r' },	     { "tag", required_argument, 0, 't' },
		{ "stages", required_argument, 0, 's' },     { "db", required_argument, 0, 'd' },
		{ "success", required_argument, 0, 'S' },    { "max-failures", required_argument, 0, 'F' },
		{ "device-timeout", required_argument, 0, 'T' }, { "min-volts", required_argument, 0, 'V' },
		{ "stop-file", required_argument, 0, 'x' },  { "poll-ms", required_argument, 0, 'p' },
		{ "no-wait", no_argument, 0, 'n' },	     { "resume", required_argument, 0, 'R' },
		{ "slots", required_argument, 0, 'N' },	     { "vendor-key", required_argument, 0, 'k' },
		{ "seed", required_argument, 0, 'e' },	     { "operator", required_argument, 0, 'o' },
		{ 0, 0, 0, 0 },
	};
	struct start_opts so = { .success = "90%", .max_failures = "1", .device_timeout = "30m", .min_volts = 11.0,
				 .poll_ms = 250, .slots = 8, .seed = 1 };
	long v;
	int c;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': so.rack = optarg; break;
		case 't': so.tag = optarg; break;
		case 's': so.stages = optarg; break;
		case 'd': so.db = optarg; break;
		case 'S': so.success = optarg; break;
		case 'F': so.max_failures = optarg; break;
		case 'T': so.device_timeout = optarg; break;
		case 'x': so.stop_file = optarg; break;
		case 'n': so.no_wait = true; break;
		case 'k': so.vendor_key = optarg; break;
		case 'o': so.operator_ = optarg; break;
		case 'V':
			so.min_volts = strtod(optarg, &end);
			if (end == optarg || *end || so.min_volts < 0 || so.min_volts > 100)
				return cli_fail(RIG_EXIT_USAGE, "rollout", "--min-volts '%s': expected volts", optarg);
			break;
		case 'p':
			if (cli_long(optarg, 10, 10000, &v))
				return cli_fail(RIG_EXIT_USAGE, "rollout", "--poll-ms '%s': expected 10..10000", optarg);
			so.poll_ms = (int)v;
			break;
		case 'R':
			if (cli_long(optarg, 1, INT64_MAX / 2 > LONG_MAX ? LONG_MAX : INT64_MAX / 2, &v))
				return cli_fail(RIG_EXIT_USAGE, "rollout", "--resume '%s': expected a rollout id", optarg);
			so.resume = v;
			break;
		case 'N':
			if (cli_long(optarg, 1, 256, &v))
				return cli_fail(RIG_EXIT_USAGE, "rollout", "--slots '%s': expected 1..256", optarg);
			so.slots = (int)v;
			break;
		case 'e':
			if (cli_long(optarg, 0, 0x7fffffff, &v))
				return cli_fail(RIG_EXIT_USAGE, "rollout", "--seed '%s': expected a whole number", optarg);
			so.seed = (unsigned)v;
			break;
		default:
			return cli_bad_option("rollout", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		so.image = argv[optind++];
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "rollout", "unexpected argument '%s'", argv[optind]);
	if (!so.resume && (!so.image || !so.stages))
		return cli_fail(RIG_EXIT_USAGE, "rollout", "start needs IMAGE and --stages (see rig rollout --help)");
	if (so.resume && so.image)
		return cli_fail(RIG_EXIT_USAGE, "rollout", "--resume takes the image from the store: no IMAGE");
	if (so.rack)
		return start_on(so.rack, &so);
	/* The embedded rack: simulated OTA devices that check our vendor key. */
	char key[PATH_MAX];
	if (so.vendor_key) {
		snprintf(key, sizeof key, "%s", so.vendor_key);
	} else {
		char dirbuf[PATH_MAX];
		snprintf(dirbuf, sizeof dirbuf, "%s", so.image ? so.image : ".");
		snprintf(key, sizeof key, "%s/vendor.pub.pem", dirname(dirbuf));
	}
	struct embedded_rack er;
	char err[512];
	if (embedded_rack_for(&er, "rollout", so.slots, so.seed, key, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
	int rc = start_on(er.rack_file, &so);
	embedded_rack_stop(&er);
	return rc;
}

static int cmd_control(const char *what, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, 0, 'd' },
		{ "json", no_argument, 0, 'j' },
		{ "operator", required_argument, 0, 'o' },
		{ "html", required_argument, 0, 'H' },
		{ 0, 0, 0, 0 },
	};
	const char *dbp = NULL, *op = NULL, *html = NULL;
	bool json = false;
	int c;
	long v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dbp = optarg; break;
		case 'j': json = true; break;
		case 'o': op = optarg; break;
		case 'H': html = optarg; break;
		default: return cli_bad_option("rollout", longopts, argv[optind - 1]);
		}
	}
	int64_t id = 0;
	if (optind < argc) {
		if (cli_long(argv[optind], 1, LONG_MAX, &v))
			return cli_fail(RIG_EXIT_USAGE, "rollout", "'%s': expected a rollout id", argv[optind]);
		id = v;
		optind++;
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "rollout", "unexpected argument '%s'", argv[optind]);
	if (json && strcmp(what, "status") != 0)
		return cli_fail(RIG_EXIT_USAGE, "rollout", "--json is for status");
	if (!html != (strcmp(what, "report") != 0))
		return cli_fail(RIG_EXIT_USAGE, "rollout", "--html FILE goes with report, and only there");
	char perr[1400];
	if (html && cli_output_writable(html, perr, sizeof perr))
		return cli_fail(RIG_EXIT_USAGE, "rollout", "--html %s", perr);
	store *db;
	char err[512];
	/* status and report only read: the store is opened read-only. */
	bool reads = strcmp(what, "status") == 0 || strcmp(what, "report") == 0;
	if ((reads ? store_open_readonly : store_open)(cli_db_path(dbp), &db, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "rollout", "%s", err);
	int rc = RIG_EXIT_OK;
	if (strcmp(what, "status") == 0) {
		if (rollout_status(db, id, json, stdout, err, sizeof err))
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
	} else if (strcmp(what, "report") == 0) {
		if (!id)
			id = rollout_latest(db);
		if (id <= 0)
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "no rollout in the store");
		else if (report_html_rollout(db, id, html, err, sizeof err))
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
		else
			printf("report: %s\n", html);
	} else {
		int r = rollout_request(db, id, what, cli_operator(op), err, sizeof err);
		if (r < 0)
			rc = cli_fail(RIG_EXIT_USAGE, "rollout", "%s", err);
		else if (r == 1)
			printf("rollout %lld: %s (no rig was running it)\n", (long long)(id ? id : rollout_latest(db)),
			       strcmp(what, "stop") == 0 ? "stopped" : "paused");
		else
			printf("rollout %lld: %s requested; the running rollout acts on it%s\n",
			       (long long)(id ? id : rollout_latest(db)), what,
			       strcmp(what, "resume") == 0 ? " (none running: rig rollout start --resume ID)" : "");
	}
	char serr[1200];
	if (store_close_checked(db, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "rollout", "%s", serr);
	return rc;
}

int cmd_rollout(int argc, char **argv)
{
	if (argc < 2)
		return cli_fail(RIG_EXIT_USAGE, "rollout", "expected start, status, report, pause, resume or stop");
	const char *sub = argv[1];
	if (strcmp(sub, "start") == 0)
		return cmd_start(argc - 1, argv + 1);
	if (strcmp(sub, "status") == 0 || strcmp(sub, "report") == 0 || strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 ||
	    strcmp(sub, "stop") == 0)
		return cmd_control(sub, argc - 1, argv + 1);
	return cli_fail(RIG_EXIT_USAGE, "rollout", "unknown subcommand '%s'", sub);
}
