/*
 * cmd/gnss.c - `rig gnss`: fix quality of NMEA ports through the rig's own
 * gpsd, and the dispatch-safety verdict for each.
 *
 *   rig gnss --port PATH [--port PATH ...]   any NMEA port(s)
 *   rig gnss [SLOTS] --rack FILE             the nmea ports of rack slots
 *
 * Every port goes through one private gpsd at once; a port that fails (will
 * not open, carries no valid NMEA) is named and the others go on.
 */
#include "cli.h"
#include "duration.h"
#include "dispatch.h"
#include "gnss.h"
#include "json.h"
#include "rack.h"

#include <getopt.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cmd_gnss_usage[] =
	"usage: rig gnss --port PATH [--port PATH ...] [options]\n"
	"       rig gnss [SLOTS] --rack FILE [options]\n\n"
	"Measures GNSS fix quality on NMEA ports through the rig's own gpsd (started\n"
	"on a free loopback port, read-only: -b) for --duration, then reports per port:\n"
	"fix mode, position, satellites used/visible, HDOP/PDOP, fix age, time to first\n"
	"fix from the start of measuring, position error against the rack's surveyed\n"
	"reference, and the dispatch verdict (safe, degraded, unsafe) with its reasons.\n"
	"SLOTS: 3, 1-4,7 or all (default all); each slot's nmea port is measured.\n\n"
	"options:\n"
	"  --port PATH        an NMEA port (tty, pty or a link to one); repeatable\n"
	"  --rack FILE        rack file (YAML): slots' nmea ports and the reference position\n"
	"  --duration D       how long to measure: 5s, 2s500ms, 800ms, 1m (default 5s)\n"
	"  --reference LAT,LON  surveyed position for position error (overrides the rack's)\n"
	"  --json             JSON on stdout instead of text\n"
	"  --gpsd PATH        gpsd program (default /usr/sbin/gpsd)\n"
	"  --gpsd-restarts N  restart gpsd at most N times if it dies (default 1)\n"
	"  --verbose          gpsd's steps on stderr\n\n"
	"exit: 0 every port safe, 1 a port degraded or unsafe, 2 usage or rack file error,\n"
	"      3 gpsd or a port unreachable (no valid NMEA, gpsd missing or died)\n";

#define MAX_TARGETS GNSS_MAX_DEVICES

struct opts {
	const char *rack, *slots, *gpsd;
	const char *ports[MAX_TARGETS];
	int n_ports;
	double duration_s;
	bool json, verbose, have_ref;
	double ref_lat, ref_lon;
	int restarts;
};

struct target {
	int slot;                     /* 0: a bare --port */
	char port[RACK_PATH_MAX];
	char error[GNSS_TEXT_MAX + RACK_PATH_MAX + 160]; /* "" when measured */
	struct gnss_reading r;
	bool have_reading;
	struct dispatch_reading in;
	struct dispatch_result verdict;
	double stale;
	char stale_summary[512];
};

/* "5s", "2s500ms", "800ms", "1m" (the rig's one duration grammar) into
 * seconds, 100 ms .. 1 h. */
static int parse_duration(const char *s, double *out)
{
	int64_t ms;
	if (duration_parse(s, 3600 * 1000, &ms) != DURATION_OK || ms < 100)
		return -1;
	*out = (double)ms / 1000.0;
	return 0;
}

static int parse_reference(const char *s, double *lat, double *lon)
{
	char *end;
	*lat = strtod(s, &end);
	if (end == s || *end != ',')
		return -1;
	const char *p = end + 1;
	*lon = strtod(p, &end);
	if (end == p || *end || *lat < -90 || *lat > 90 || *lon < -180 || *lon > 180)
		return -1;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' }, { "rack", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' }, { "reference", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' }, { "gpsd", required_argument, NULL, 'g' },
		{ "gpsd-restarts", required_argument, NULL, 'n' }, { "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	*o = (struct opts){ .duration_s = 5, .restarts = 1 };
	long n;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (o->n_ports >= MAX_TARGETS)
				return cli_fail(RIG_EXIT_USAGE, "gnss", "more than %d ports", MAX_TARGETS);
			o->ports[o->n_ports++] = optarg;
			break;
		case 'r': o->rack = optarg; break;
		case 'd':
			if (parse_duration(optarg, &o->duration_s))
				return cli_fail(RIG_EXIT_USAGE, "gnss", "--duration '%s': expected 100ms..1h (5s, 2s500ms, 800ms, 1m)", optarg);
			break;
		case 'R':
			if (parse_reference(optarg, &o->ref_lat, &o->ref_lon))
				return cli_fail(RIG_EXIT_USAGE, "gnss", "--reference '%s': expected LAT,LON in degrees", optarg);
			o->have_ref = true;
			break;
		case 'j': o->json = true; break;
		case 'g': o->gpsd = optarg; break;
		case 'n':
			if (cli_long(optarg, 0, 10, &n))
				return cli_fail(RIG_EXIT_USAGE, "gnss", "--gpsd-restarts '%s': expected 0..10", optarg);
			o->restarts = (int)n;
			break;
		case 'v': o->verbose = true; break;
		default: return cli_bad_option("gnss", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		o->slots = argv[optind++];
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "gnss", "unexpected argument '%s'", argv[optind]);
	if (!o->rack == !o->n_ports)
		return cli_fail(RIG_EXIT_USAGE, "gnss", "give --port PATH or SLOTS --rack FILE (see rig gnss --help)");
	if (o->slots && !o->rack)
		return cli_fail(RIG_EXIT_USAGE, "gnss", "slots '%s' need --rack FILE", o->slots);
	return RIG_EXIT_OK;
}

/* The rack's selected slots with an nmea port into T. */
static int rack_targets(struct opts *o, struct target *t, int *n)
{
	struct rack rack;
	char err[512];
	if (rack_load(o->rack, &rack, err, sizeof err)) {
		rack_free(&rack);
		return cli_fail(RIG_EXIT_USAGE, "gnss", "%s", err);
	}
	bool *sel = calloc((size_t)(rack.n_slots ? rack.n_slots : 1), sizeof *sel);
	int rc = RIG_EXIT_OK;
	if (!sel || rack_select(&rack, o->slots ? o->slots : "all", sel, err, sizeof err) < 0) {
		rc = cli_fail(RIG_EXIT_USAGE, "gnss", "%s", sel ? err : "out of memory");
		goto out;
	}
	for (int i = 0; i < rack.n_slots; i++) {
		if (!sel[i])
			continue;
		const struct rack_slot *s = &rack.slots[i];
		if (!*s->nmea.path) {
			rc = cli_fail(RIG_EXIT_USAGE, "gnss", "%s: slot %d has no nmea port in the rack file", o->rack, s->id);
			goto out;
		}
		if (*n >= MAX_TARGETS) {
			rc = cli_fail(RIG_EXIT_USAGE, "gnss", "more than %d slots", MAX_TARGETS);
			goto out;
		}
		t[*n].slot = s->id;
		snprintf(t[*n].port, sizeof t[*n].port, "%s", s->nmea.path);
		(*n)++;
	}
	if (!o->have_ref && rack.has_reference) {
		o->have_ref = true;
		o->ref_lat = rack.ref_lat;
		o->ref_lon = rack.ref_lon;
	}
out:
	free(sel);
	rack_free(&rack);
	return rc;
}

static void judge(const struct opts *o, struct target *t, int64_t now)
{
	const struct gnss_reading *r = &t->r;
	struct dispatch_reading *in = &t->in;
	in->mode = t->have_reading ? r->mode : 0;
	in->satellites_used = t->have_reading ? r->satellites_used : -1;
	in->hdop = t->have_reading ? r->hdop : NAN;
	in->fix_age_s = t->have_reading && r->last_fix_ms != GNSS_NEVER ? (now - r->last_fix_ms) / 1000.0 : NAN;
	in->position_error_m = NAN;
	if (o->have_ref && t->have_reading && r->last_fix_ms != GNSS_NEVER)
		in->position_error_m = dispatch_distance_m(o->ref_lat, o->ref_lon, r->lat, r->lon);
	dispatch_judge(in, NULL, &t->verdict);
	t->stale = dispatch_fix_stale(in, NULL, t->stale_summary, sizeof t->stale_summary);
	/* A reading the rig could not follow to the end is not one to
	 * dispatch off, whatever its last numbers said. */
	if (*t->error) {
		t->verdict.verdict = DISPATCH_UNSAFE;
		if (t->verdict.n_reasons < DISPATCH_MAX_REASONS)
			snprintf(t->verdict.reasons[t->verdict.n_reasons++], DISPATCH_REASON_MAX, "not measured: %.130s",
				 t->error);
	}
}

/* Measures every target through one gpsd. Returns the gpsd's fate for the
 * report (status->event) and fills each target. */
static void measure(const struct opts *o, struct target *t, int n, struct gnss_status *st, char *gpsd_err,
		    size_t errlen)
{
	struct gnss_options go = { .gpsd = o->gpsd, .restarts = o->restarts, .verbose = o->verbose };
	gnss_daemon *g;
	memset(st, 0, sizeof *st);
	if (gnss_start(&go, &g) != GNSS_OK) {
		snprintf(gpsd_err, errlen, "%s", gnss_start_error());
		for (int i = 0; i < n; i++)
			snprintf(t[i].error, sizeof t[i].error, "%s", gpsd_err);
		return;
	}
	bool added[MAX_TARGETS] = { 0 };
	for (int i = 0; i < n; i++) {
		if (gnss_add_device(g, t[i].port, 3000) == GNSS_OK)
			added[i] = true;
		else
			snprintf(t[i].error, sizeof t[i].error, "%s", gnss_last_error(g));
	}
	if (o->verbose) {
		struct gnss_status s;
		gnss_status(g, &s);
		fprintf(stderr, "rig gnss: gpsd pid %d on 127.0.0.1:%d, measuring %d port(s) for %.1f s\n", (int)s.pid,
			s.port, n, o->duration_s);
	}
	gnss_mark_start(g);
	bool any = false;
	for (int i = 0; i < n; i++)
		any |= added[i];
	int64_t deadline = gnss_now_ms() + (any ? (int64_t)(o->duration_s * 1000) : 0);
	while (gnss_now_ms() < deadline) {
		struct gnss_status s;
		if (gnss_status(g, &s) == GNSS_ERR_DIED)
			break;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	bool dead = gnss_status(g, st) == GNSS_ERR_DIED;
	for (int i = 0; i < n; i++) {
		if (!added[i])
			continue;
		t[i].have_reading = gnss_get(g, t[i].port, &t[i].r) == GNSS_OK;
		if (dead)
			snprintf(t[i].error, sizeof t[i].error, "%s: %s", t[i].port, st->event);
		else if (t[i].have_reading && t[i].r.tpv_count == 0 && t[i].r.sky_count == 0)
			snprintf(t[i].error, sizeof t[i].error,
				 "%.255s: no valid NMEA within %.1f s (gpsd decoded nothing: wrong port or speed, garbage, bad checksums)",
				 t[i].port, o->duration_s);
	}
	gnss_stop(g);
}

/* A stock gpsd reads at most 4 devices, so ports are measured in groups of
 * four, each through its own gpsd, all at once. */
#define PORTS_PER_GPSD 4

struct group {
	const struct opts *o;
	struct target *t;
	int n;
	struct gnss_status st;
	char err[GNSS_TEXT_MAX];
};

static void *measure_group(void *arg)
{
	struct group *g = arg;
	measure(g->o, g->t, g->n, &g->st, g->err, sizeof g->err);
	return NULL;
}

static void measure_all(const struct opts *o, struct target *t, int n, struct gnss_status *st, char *gpsd_err,
			size_t errlen)
{
	int ng = (n + PORTS_PER_GPSD - 1) / PORTS_PER_GPSD;
	struct group *g = calloc((size_t)ng, sizeof *g);
	pthread_t *th = calloc((size_t)ng, sizeof *th);
	if (!g || !th) {
		free(g);
		free(th);
		measure(o, t, n, st, gpsd_err, errlen);
		return;
	}
	for (int i = 0; i < ng; i++) {
		g[i] = (struct group){ .o = o, .t = t + i * PORTS_PER_GPSD,
				       .n = n - i * PORTS_PER_GPSD < PORTS_PER_GPSD ? n - i * PORTS_PER_GPSD : PORTS_PER_GPSD };
		pthread_create(&th[i], NULL, measure_group, &g[i]);
	}
	for (int i = 0; i < ng; i++)
		pthread_join(th[i], NULL);
	/* One line of gpsd fate for the report: the first group's, deaths summed. */
	*st = g[0].st;
	for (int i = 1; i < ng; i++) {
		st->deaths += g[i].st.deaths;
		st->restarts += g[i].st.restarts;
		if (!*st->event && *g[i].st.event)
			snprintf(st->event, sizeof st->event, "%s", g[i].st.event);
	}
	for (int i = 0; i < ng && !*gpsd_err; i++)
		snprintf(gpsd_err, errlen, "%s", g[i].err);
	free(g);
	free(th);
}

static const char *mode_name(int mode)
{
	return mode == 3 ? "3D fix" : mode == 2 ? "2D fix" : mode == 1 ? "no fix" : "no report";
}

static void json_target(struct json *j, const struct opts *o, const struct target *t)
{
	const struct gnss_reading *r = &t->r;
	json_obj_begin(j, NULL);
	if (t->slot)
		json_int(j, "slot", t->slot);
	json_str(j, "port", t->port);
	json_str(j, "result", *t->error ? "error" : "measured");
	if (*t->error)
		json_str(j, "error", t->error);
	json_int(j, "mode", t->in.mode);
	json_num(j, "lat", r->last_fix_ms != GNSS_NEVER && t->have_reading ? r->lat : NAN);
	json_num(j, "lon", r->last_fix_ms != GNSS_NEVER && t->have_reading ? r->lon : NAN);
	json_num(j, "alt", t->have_reading ? r->alt : NAN);
	json_num(j, "speed_mps", t->have_reading ? r->speed : NAN);
	if (t->in.satellites_used >= 0)
		json_int(j, "satellites_used", t->in.satellites_used);
	else
		json_null(j, "satellites_used");
	if (t->have_reading && r->satellites_visible >= 0)
		json_int(j, "satellites_visible", r->satellites_visible);
	else
		json_null(j, "satellites_visible");
	json_num(j, "hdop", t->in.hdop);
	json_num(j, "pdop", t->have_reading ? r->pdop : NAN);
	json_num(j, "fix_time", t->have_reading ? r->fix_time : NAN);
	json_num(j, "fix_age_s", t->in.fix_age_s);
	json_num(j, "ttff_s", t->have_reading && r->ttff_ms >= 0 ? r->ttff_ms / 1000.0 : NAN);
	if (o->have_ref)
		json_num(j, "position_error_m", t->in.position_error_m);
	json_int(j, "tpv_reports", t->have_reading ? r->tpv_count : 0);
	json_int(j, "sky_reports", t->have_reading ? r->sky_count : 0);
	json_str(j, "verdict", dispatch_verdict_name(t->verdict.verdict));
	json_arr_begin(j, "verdict_reasons");
	for (int i = 0; i < t->verdict.n_reasons; i++)
		json_str(j, NULL, t->verdict.reasons[i]);
	json_arr_end(j);
	json_obj_begin(j, "gnss_fix_stale");
	json_bool(j, "holds", t->stale > 0);
	if (t->stale > 0) {
		json_num(j, "confidence", t->stale);
		json_str(j, "summary", t->stale_summary);
	}
	json_obj_end(j);
	json_obj_end(j);
}

static void print_target(const struct opts *o, const struct target *t)
{
	const struct gnss_reading *r = &t->r;
	if (t->slot)
		printf("slot %d  %s\n", t->slot, t->port);
	else
		printf("port %s\n", t->port);
	if (*t->error)
		printf("  error     %s\n", t->error);
	if (t->have_reading && r->last_fix_ms != GNSS_NEVER)
		printf("  fix       %s, lat %.6f, lon %.6f, alt %.1f m, speed %.1f m/s\n", mode_name(t->in.mode), r->lat,
		       r->lon, r->alt, r->speed);
	else
		printf("  fix       %s\n", mode_name(t->in.mode));
	printf("  sky       satellites %d used / %d visible, hdop %.1f, pdop %.1f\n", t->in.satellites_used,
	       t->have_reading ? r->satellites_visible : -1, t->in.hdop, t->have_reading ? r->pdop : NAN);
	printf("  timing    fix age %.1f s, ttff %.1f s", t->in.fix_age_s,
	       t->have_reading && r->ttff_ms >= 0 ? r->ttff_ms / 1000.0 : NAN);
	if (o->have_ref)
		printf(", position error %.1f m", t->in.position_error_m);
	printf("\n  verdict   %s\n", dispatch_verdict_name(t->verdict.verdict));
	for (int i = 0; i < t->verdict.n_reasons; i++)
		printf("            %s\n", t->verdict.reasons[i]);
	if (t->stale > 0)
		printf("  reason    gnss_fix_stale (confidence %.2f): %s\n", t->stale, t->stale_summary);
}

int cmd_gnss(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o);
	if (rc != RIG_EXIT_OK)
		return rc;
	struct target *t = calloc(MAX_TARGETS, sizeof *t);
	if (!t)
		return cli_fail(RIG_EXIT_INFRA, "gnss", "out of memory");
	int n = 0;
	if (o.rack) {
		rc = rack_targets(&o, t, &n);
	} else {
		for (int i = 0; i < o.n_ports; i++)
			snprintf(t[n++].port, sizeof t[0].port, "%s", o.ports[i]);
	}
	if (rc != RIG_EXIT_OK || n == 0) {
		free(t);
		return rc != RIG_EXIT_OK ? rc : cli_fail(RIG_EXIT_USAGE, "gnss", "no slot selected");
	}
	struct gnss_status st;
	char gpsd_err[GNSS_TEXT_MAX] = "";
	measure_all(&o, t, n, &st, gpsd_err, sizeof gpsd_err);
	int64_t now = gnss_now_ms();
	bool infra = false, unsafe = false;
	for (int i = 0; i < n; i++) {
		judge(&o, &t[i], now);
		infra |= *t[i].error != '\0';
		unsafe |= t[i].verdict.verdict != DISPATCH_SAFE;
	}
	if (o.json) {
		struct json j;
		json_init(&j, stdout, false);
		json_obj_begin(&j, NULL);
		json_obj_begin(&j, "gpsd");
		json_str(&j, "program", o.gpsd ? o.gpsd : GNSS_DEFAULT_GPSD);
		if (*gpsd_err)
			json_str(&j, "error", gpsd_err);
		else
			json_int(&j, "port", st.port);
		json_int(&j, "deaths", st.deaths);
		json_int(&j, "restarts", st.restarts);
		json_str(&j, "event", st.event);
		json_obj_end(&j);
		json_num(&j, "duration_s", o.duration_s);
		json_arr_begin(&j, "ports");
		for (int i = 0; i < n; i++)
			json_target(&j, &o, &t[i]);
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else {
		if (*gpsd_err)
			printf("gpsd      %s\n", gpsd_err);
		else if (*st.event)
			printf("gpsd      %s\n", st.event);
		for (int i = 0; i < n; i++)
			print_target(&o, &t[i]);
	}
	for (int i = 0; i < n; i++)
		if (*t[i].error)
			fprintf(stderr, "rig gnss: %s\n", t[i].error);
	free(t);
	return infra ? RIG_EXIT_INFRA : unsafe ? RIG_EXIT_FAIL : RIG_EXIT_OK;
}
