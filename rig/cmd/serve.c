/*
 * cmd/serve.c - `rig serve`: the ingest server (ingest.h) on its own, for
 * real racks whose trackers report to this host and for soak runs that
 * collect telemetry for days. Runs on the wall clock: a standalone server
 * has no scenario to keep virtual time for.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "timefmt.h"
#include "ingest.h"
#include "rack.h"

const char cmd_serve_usage[] =
	"usage: rig serve --listen HOST:PORT [--db PATH] [--rack FILE] [--allow-imei IMEI ...]\n"
	"                 [--late-after S] [--command IMEI:TEXT ...]\n"
	"\n"
	"Receives trackers' telemetry (Teltonika TCP: codec 8 / 8E records, codec 12)\n"
	"and stores every record in the results store, acking each packet only once it\n"
	"is stored. Prints a line per login and drop of an allowed device (strangers'\n"
	"refusals and drops: the first per IMEI or address and minute), and a stats\n"
	"line per device every minute and when stopped (SIGINT or SIGTERM).\n"
	"\n"
	"  --listen HOST:PORT  address to listen on (PORT 0: a free port, printed)\n"
	"  --db PATH           results store (default: $TRACKRIG_DB, else ./trackrig.db)\n"
	"  --rack FILE         allow the IMEIs the rack's slots expect\n"
	"  --allow-imei IMEI   allow this IMEI too (repeatable)\n"
	"  --late-after S      a record arriving more than S seconds after its own\n"
	"                      timestamp is flagged late (default 120)\n"
	"  --command IMEI:TEXT once IMEI is logged in and idle, send it TEXT as a\n"
	"                      codec 12 command and print its answer (or why there\n"
	"                      is none); repeatable, sent in order\n"
	"  -h, --help          this text\n"
	"\n"
	"At least one IMEI must be allowed (from --rack or --allow-imei); every other\n"
	"login is refused. Connections not logged in share a budget of 64 (8 per\n"
	"address); the oldest is evicted for a newcomer, never a logged-in tracker\n"
	"(docs/uplink.md).\n"
	"\n"
	"Exit status: 0 stopped by a signal, 2 usage error, 3 cannot listen or open\n"
	"the store.\n";

#define STATS_PERIOD_S 60
#define MAX_ALLOW 4096
#define MAX_COMMANDS 16
#define COMMAND_MS 10000   /* a device's answer time, on the wall clock */

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	char ts[32];
	printf("%s %s\n", time_iso_s(time_wall_ms() / 1000, ts, sizeof ts), line);
	fflush(stdout);
}

static void print_stats(ingest *ing)
{
	struct ingest_device_stats st[64];
	size_t n = ingest_stats(ing, st, 64);
	char line[512];
	for (size_t i = 0; i < n && i < 64; i++) {
		snprintf(line, sizeof line,
			 "stats IMEI %.15s: %s packets %llu records %llu duplicates %llu late %llu out_of_order %llu"
			 " bytes_up %llu bytes_down %llu refused %llu drops %llu",
			 st[i].imei, st[i].connected ? "connected" : "offline", (unsigned long long)st[i].packets,
			 (unsigned long long)st[i].records, (unsigned long long)st[i].duplicates,
			 (unsigned long long)st[i].late, (unsigned long long)st[i].out_of_order,
			 (unsigned long long)st[i].bytes_up, (unsigned long long)st[i].bytes_down,
			 (unsigned long long)st[i].refused_logins, (unsigned long long)st[i].drops);
		log_line(NULL, line);
	}
	if (n > 64)
		printf("stats: %zu more devices not shown\n", n - 64);
}

/* --command: each IMEI:TEXT in turn, on a thread of its own so the
 * server's stats and signals go on meanwhile. */
struct commands {
	ingest *ing;
	const char *arg[MAX_COMMANDS];
	int n;
	pthread_mutex_t mu;
	bool stop;                 /* mu */
};

static bool commands_stopping(struct commands *c)
{
	pthread_mutex_lock(&c->mu);
	bool s = c->stop;
	pthread_mutex_unlock(&c->mu);
	return s;
}

/* Waits until IMEI is logged in; false when serve is stopping first. */
static bool wait_logged_in(struct commands *c, const char *imei)
{
	while (!commands_stopping(c)) {
		struct ingest_device_stats st[64];
		size_t n = ingest_stats(c->ing, st, 64);
		for (size_t i = 0; i < n && i < 64; i++)
			if (strcmp(st[i].imei, imei) == 0 && st[i].connected)
				return true;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void *commands_main(void *arg)
{
	struct commands *c = arg;
	for (int i = 0; i < c->n; i++) {
		char imei[16], answer[1400], line[1600];
		const char *colon = strchr(c->arg[i], ':');
		snprintf(imei, sizeof imei, "%.*s", (int)(colon - c->arg[i]), c->arg[i]);
		const char *text = colon + 1;
		if (!wait_logged_in(c, imei))
			return NULL;
		int rc = ingest_send_command(c->ing, imei, text, answer, sizeof answer, COMMAND_MS);
		if (rc >= 0)
			snprintf(line, sizeof line, "codec 12 IMEI %s: '%s' answered '%s'", imei, text, answer);
		else
			snprintf(line, sizeof line, "codec 12 IMEI %s: '%s' failed: %s", imei, text, tracker_strerror(rc));
		log_line(NULL, line);
	}
	return NULL;
}

/* IMEI:TEXT with IMEI among ALLOW and some TEXT. */
static bool command_ok(const char *arg, const char *const *allow, size_t n_allow)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || !colon[1] || colon - arg > 15)
		return false;
	for (size_t i = 0; i < n_allow; i++)
		if (strlen(allow[i]) == (size_t)(colon - arg) && strncmp(allow[i], arg, (size_t)(colon - arg)) == 0)
			return true;
	return false;
}

/* "HOST:PORT" or "[V6]:PORT" into HOST and PORT. */
static int split_listen(const char *s, char *host, size_t hlen, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return -1;
	long p;
	if (cli_long(colon + 1, 0, 65535, &p) < 0)
		return -1;
	const char *h = s;
	size_t n = (size_t)(colon - s);
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' }, { "db", required_argument, NULL, 'd' },
		{ "rack", required_argument, NULL, 'r' },   { "allow-imei", required_argument, NULL, 'a' },
		{ "late-after", required_argument, NULL, 'L' }, { "help", no_argument, NULL, 'h' },
		{ "command", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = NULL, *db = NULL, *rackfile = NULL;
	static const char *allow[MAX_ALLOW];
	size_t n_allow = 0;
	long late_s = INGEST_LATE_MS_DEFAULT / 1000;
	static struct commands cmds = { .mu = PTHREAD_MUTEX_INITIALIZER };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 'd': db = optarg; break;
		case 'r': rackfile = optarg; break;
		case 'a':
			if (n_allow == MAX_ALLOW)
				return cli_fail(RIG_EXIT_USAGE, "serve", "more than %d IMEIs", MAX_ALLOW);
			allow[n_allow++] = optarg;
			break;
		case 'L':
			if (cli_long(optarg, 1, 86400 * 30, &late_s) < 0)
				return cli_fail(RIG_EXIT_USAGE, "serve", "--late-after: '%s' is not 1..2592000 seconds",
						optarg);
			break;
		case 'c':
			if (cmds.n == MAX_COMMANDS)
				return cli_fail(RIG_EXIT_USAGE, "serve", "more than %d --command", MAX_COMMANDS);
			cmds.arg[cmds.n++] = optarg;
			break;
		case 'h': fputs(cmd_serve_usage, stdout); return RIG_EXIT_OK;
		default: return cli_bad_option("serve", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "serve", "unexpected argument '%s'", argv[optind]);
	char host[256];
	int port = 0;
	if (!listen)
		return cli_fail(RIG_EXIT_USAGE, "serve", "--listen HOST:PORT is required");
	if (split_listen(listen, host, sizeof host, &port) < 0)
		return cli_fail(RIG_EXIT_USAGE, "serve", "--listen: '%s' is not HOST:PORT", listen);

	struct rack rack;
	bool have_rack = false;
	char err[1024];
	if (rackfile) {
		if (rack_load(rackfile, &rack, err, sizeof err) < 0) {
			rack_free(&rack);
			return cli_fail(RIG_EXIT_USAGE, "serve", "%s", err);
		}
		have_rack = true;
		for (int i = 0; i < rack.n_slots && n_allow < MAX_ALLOW; i++)
			if (rack.slots[i].expect.imei[0])
				allow[n_allow++] = rack.slots[i].expect.imei;
	}
	int rc = RIG_EXIT_OK;
	if (n_allow == 0) {
		rc = cli_fail(RIG_EXIT_USAGE, "serve", "no IMEI allowed: give --rack with expected IMEIs or --allow-imei");
		goto out;
	}
	for (int i = 0; i < cmds.n; i++)
		if (!command_ok(cmds.arg[i], allow, n_allow)) {
			rc = cli_fail(RIG_EXIT_USAGE, "serve", "--command '%s' is not IMEI:TEXT with an allowed IMEI",
				      cmds.arg[i]);
			goto out;
		}

	/* The connection budget keeps the server's own sockets few, but a
	 * burst waits in the listen backlog: the soft fd limit goes to the hard. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Signals are taken with sigtimedwait below; the server thread inherits
	 * the mask and never sees them. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);

	struct ingest_opts o = {
		.host = host, .port = port, .db_path = cli_db_path(db), .allow = allow, .n_allow = n_allow,
		.late_ms = late_s * 1000, .log = log_line,
	};
	ingest *ing = NULL;
	if (ingest_start(&o, &ing, err, sizeof err) < 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		bool usage = strstr(err, "not 1 to 15 digits") != NULL;
		rc = cli_fail(usage ? RIG_EXIT_USAGE : RIG_EXIT_INFRA, "serve", "%s", err);
		goto out;
	}
	char line[512];
	snprintf(line, sizeof line, "listening on %s:%d, %zu IMEI%s allowed, store %s", host, ingest_port(ing),
		 n_allow, n_allow == 1 ? "" : "s", o.db_path);
	log_line(NULL, line);
	cmds.ing = ing;
	pthread_t cmd_thread;
	bool cmd_started = cmds.n > 0 && pthread_create(&cmd_thread, NULL, commands_main, &cmds) == 0;
	if (cmds.n > 0 && !cmd_started)
		log_line(NULL, "--command: cannot start a thread; no command sent");
	for (;;) {
		struct timespec ts = { STATS_PERIOD_S, 0 };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			snprintf(line, sizeof line, "stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
			log_line(NULL, line);
			break;
		}
		if (sig < 0 && errno == EINTR)
			continue;
		print_stats(ing);
	}
	if (cmd_started) {
		/* A command on its way ends within COMMAND_MS; the rest are not sent. */
		pthread_mutex_lock(&cmds.mu);
		cmds.stop = true;
		pthread_mutex_unlock(&cmds.mu);
		pthread_join(cmd_thread, NULL);
	}
	print_stats(ing);
	char serr[1100];
	if (ingest_stop_checked(ing, serr, sizeof serr) < 0)
		rc = cli_fail(RIG_EXIT_INFRA, "serve", "results store: a write failed: %s; packets that could not "
			      "be stored were not acked (their devices send them again)", serr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
	if (have_rack)
		rack_free(&rack);
	return rc;
}
