/*
 * test_simrack_gnss.c - simrack's GNSS receivers (fixtures/simrack/receiver.h)
 * seen from the NMEA port and the console of a --virtual rack.
 *
 * Each test starts its own rack, opens DIR/slotK/nmea (a receiver emits
 * only while its port is held open on a virtual rack), moves rack time on
 * the control socket and reads what was said up to then. No timing is
 * asserted: the times checked are the UTC fields of the sentences and rack
 * times; real-time waits only bound output that is already due.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <modbus.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "support.h"

#define WAIT_MS 10000       /* bound for output that is already due */
#define QUIET_MS 30         /* the pty idle this long: nothing more is coming */
#define GNSS_COIL 1         /* slot 1's GNSS antenna on the relay board */
#define MAX_SECS 400
#define M_PER_DEG 111320.0

static struct simrack_proc rack;
static int ctl_fd = -1, nmea_fd = -1;
static uint64_t now_ms;

/* One second of NMEA as the port said it. */
struct second {
	int n_rmc, n_gga, n_gsa, n_gsv, n_bad;   /* n_bad: bad checksum or format */
	long utc_s;          /* RMC time, seconds of day */
	char rmc_status;     /* 'A' or 'V' */
	char date[8];
	double lat, lon;     /* from RMC, when 'A' */
	int quality, used;   /* GGA */
	double hdop;
	int gsa_mode;
	int visible;         /* GSV's count */
	int max_snr;
};

static struct second secs[MAX_SECS];
static int n_secs;

static void teardown(void)
{
	if (nmea_fd >= 0)
		close(nmea_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	nmea_fd = ctl_fd = -1;
	simrack_stop(&rack);
}

/* ---- control socket ---- */

static const char *ctl(const char *req) { return support_ctl(ctl_fd, req); }

static void ctl_advance(uint64_t t) { now_ms = support_ctl_move(ctl_fd, "advance", t); }

static void start(int slots, const char *const *extra)
{
	cr_assert_eq(simrack_start_args(&rack, slots, 1, extra), 0, "simrack did not start");
	ctl_fd = simrack_control(&rack);
	now_ms = 0;
	n_secs = 0;
}

static void open_nmea(int slot)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/slot%d/nmea", rack.dir, slot);
	nmea_fd = support_tty_open(path);
	cr_assert_geq(nmea_fd, 0, "cannot open %s", path);
}

/* ---- NMEA ---- */

static bool checksum_ok(const char *s)
{
	if (s[0] != '$')
		return false;
	const char *star = strrchr(s, '*');
	if (!star || strlen(star) != 3)
		return false;
	unsigned cs = 0;
	for (const char *c = s + 1; c < star; c++)
		cs ^= (unsigned char)*c;
	return strtoul(star + 1, NULL, 16) == cs;
}

/* Field I (0: the sentence id) of S into BUF. */
static const char *field(const char *s, int i, char *buf, size_t len)
{
	const char *p = s;
	for (int k = 0; k < i && p; k++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	buf[0] = '\0';
	if (!p)
		return buf;
	size_t n = strcspn(p, ",*");
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

/* ddmm.mmmm (DEG digits of degrees) and N/S/E/W into degrees; NAN when the
 * format is wrong. */
static double coord(const char *v, int deg, const char *hemi)
{
	size_t len = strlen(v);
	if (len != (size_t)deg + 7 || v[deg + 2] != '.')
		return NAN;
	for (size_t i = 0; i < len; i++)
		if (i != (size_t)deg + 2 && (v[i] < '0' || v[i] > '9'))
			return NAN;
	char d[4] = { 0 };
	memcpy(d, v, (size_t)deg);
	double r = atof(d) + atof(v + deg) / 60.0;
	return hemi[0] == 'S' || hemi[0] == 'W' ? -r : r;
}

static long hhmmss(const char *v)
{
	if (strlen(v) < 6)
		return -1;
	for (int i = 0; i < 6; i++)
		if (v[i] < '0' || v[i] > '9')
			return -1;
	return ((v[0] - '0') * 10 + v[1] - '0') * 3600L + ((v[2] - '0') * 10 + v[3] - '0') * 60L +
	       (v[4] - '0') * 10 + v[5] - '0';
}

/* Files one sentence into the second it belongs to: an RMC opens a new
 * second (the receiver starts every second with it). */
static void take(const char *s)
{
	char f[32], g[32];
	if (strncmp(s, "$GPRMC,", 7) == 0) {
		cr_assert_lt(n_secs, MAX_SECS);
		struct second *x = &secs[n_secs++];
		memset(x, 0, sizeof *x);
		x->lat = x->lon = NAN;
		x->n_rmc = 1;
		x->utc_s = hhmmss(field(s, 1, f, sizeof f));
		x->rmc_status = field(s, 2, f, sizeof f)[0];
		snprintf(x->date, sizeof x->date, "%s", field(s, 9, f, sizeof f));
		if (x->rmc_status == 'A') {
			x->lat = coord(field(s, 3, f, sizeof f), 2, field(s, 4, g, sizeof g));
			x->lon = coord(field(s, 5, f, sizeof f), 3, field(s, 6, g, sizeof g));
			if (isnan(x->lat) || isnan(x->lon))
				x->n_bad++;
		}
		if (!checksum_ok(s))
			x->n_bad++;
		return;
	}
	cr_assert_gt(n_secs, 0, "'%s' before any RMC", s);
	struct second *x = &secs[n_secs - 1];
	if (!checksum_ok(s))
		x->n_bad++;
	if (strncmp(s, "$GPGGA,", 7) == 0) {
		x->n_gga++;
		x->quality = atoi(field(s, 6, f, sizeof f));
		x->used = atoi(field(s, 7, f, sizeof f));
		x->hdop = atof(field(s, 8, f, sizeof f));
		if (hhmmss(field(s, 1, f, sizeof f)) != x->utc_s)
			x->n_bad++;
	} else if (strncmp(s, "$GPGSA,", 7) == 0) {
		x->n_gsa++;
		x->gsa_mode = atoi(field(s, 2, f, sizeof f));
	} else if (strncmp(s, "$GPGSV,", 7) == 0) {
		x->n_gsv++;
		x->visible = atoi(field(s, 3, f, sizeof f));
		for (int i = 7; i <= 19; i += 4) {
			int snr = atoi(field(s, i, f, sizeof f));
			if (snr > x->max_snr)
				x->max_snr = snr;
		}
	} else {
		x->n_bad++;
	}
}

/* Reads every line the port has said so far into secs[]. */
static void drain(void (*each)(const char *))
{
	static char part[512];
	static size_t plen;
	for (;;) {
		struct pollfd p = { .fd = nmea_fd, .events = POLLIN };
		if (poll(&p, 1, QUIET_MS) <= 0)
			return;
		char buf[4096];
		ssize_t n = read(nmea_fd, buf, sizeof buf);
		cr_assert_gt(n, 0, "nmea port: %s", strerror(errno));
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (plen && part[plen - 1] == '\r')
					plen--;
				part[plen] = '\0';
				if (plen)
					each(part);
				plen = 0;
			} else if (plen + 1 < sizeof part) {
				part[plen++] = buf[i];
			}
		}
	}
}

/* Moves rack time to T_MS in steps of STEP_MS, reading the port on the way. */
static void run_to_with(uint64_t t_ms, uint64_t step_ms, void (*each)(const char *))
{
	while (now_ms < t_ms) {
		uint64_t to = now_ms + step_ms < t_ms ? now_ms + step_ms : t_ms;
		ctl_advance(to);
		drain(each);
	}
}

static void run_to(uint64_t t_ms, uint64_t step_ms)
{
	run_to_with(t_ms, step_ms, take);
}

/* The first second (from FROM) whose RMC says A; -1 when none. */
static int first_fix(int from)
{
	for (int i = from; i < n_secs; i++)
		if (secs[i].rmc_status == 'A')
			return i;
	return -1;
}

static double distance_m(double lat1, double lon1, double lat2, double lon2)
{
	double dy = (lat1 - lat2) * M_PER_DEG;
	double dx = (lon1 - lon2) * M_PER_DEG * cos(lat2 * M_PI / 180.0);
	return sqrt(dx * dx + dy * dy);
}

static void reference(double *lat, double *lon)
{
	char path[PATH_MAX];
	char *y = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(y);
	const char *r = strstr(y, "reference: {lat: ");
	cr_assert_not_null(r);
	cr_assert_eq(sscanf(r, "reference: {lat: %lf, lon: %lf", lat, lon), 2);
	free(y);
}

/* Seconds since the epoch (2026-01-01T00:00:00Z: seconds of day = rack s). */
static long rack_s(int i)
{
	return secs[i].utc_s;
}

/* ---- tests ---- */

static const char *const ref_args[] = { "--virtual", "--profiles", "reference", NULL };

Test(simrack_gnss, once_a_second_rmc_gga_gsa_gsv_with_valid_checksums, .fini = teardown)
{
	start(1, ref_args);
	char path[PATH_MAX];
	char *y = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(y);
	cr_expect_not_null(strstr(y, "/slot1/nmea, baud: 9600}"), "rack.yaml names no nmea port");
	free(y);
	open_nmea(1);
	run_to(40000, 1000);
	/* Rack seconds 0..40, each told once, in order. */
	cr_assert_eq(n_secs, 41, "%d seconds of NMEA in 41", n_secs);
	for (int i = 0; i < n_secs; i++) {
		const struct second *x = &secs[i];
		cr_expect_eq(x->utc_s, i, "second %d stamped %ld", i, x->utc_s);
		cr_expect_str_eq(x->date, "010126");
		cr_expect_eq(x->n_bad, 0, "second %d: %d bad sentences", i, x->n_bad);
		cr_expect_eq(x->n_gga, 1, "second %d", i);
		cr_expect_eq(x->n_gsa, 1, "second %d", i);
		cr_expect_geq(x->n_gsv, 1, "second %d", i);
	}
}

Test(simrack_gnss, open_sky_fixes_near_the_reference_after_a_cold_start, .fini = teardown)
{
	start(1, ref_args);
	open_nmea(1);
	run_to(60000, 2000);
	cr_assert_geq(n_secs, 50);
	int ff = first_fix(0);
	cr_assert_geq(ff, 0, "no fix in 60 s of open sky");
	/* reference: cold TTFF 30 s after power-on at rack time 0. */
	cr_expect(rack_s(ff) >= 30 && rack_s(ff) <= 31, "first fix at %ld s", rack_s(ff));
	for (int i = 0; i < ff; i++) {
		cr_expect_eq(secs[i].rmc_status, 'V');
		cr_expect_eq(secs[i].quality, 0);
		cr_expect_eq(secs[i].gsa_mode, 1);
		cr_expect_gt(secs[i].visible, 0, "the search sees satellites");
	}
	double rlat, rlon;
	reference(&rlat, &rlon);
	for (int i = ff; i < n_secs; i++) {
		const struct second *x = &secs[i];
		cr_expect_eq(x->rmc_status, 'A');
		cr_expect_eq(x->quality, 1);
		cr_expect_eq(x->gsa_mode, 3);
		cr_expect(x->used >= 8 && x->used <= 10, "%d used", x->used);
		cr_expect(x->hdop >= 0.7 && x->hdop <= 1.1, "hdop %.1f", x->hdop);
		double d = distance_m(x->lat, x->lon, rlat, rlon);
		cr_expect_lt(d, 10.0, "second %d: %.1f m from the reference", i, d);
	}
}

/* Sets a coil on the rack's relay board. */
static void coil(int addr, bool on)
{
	char path[PATH_MAX];
	char *y = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(y);
	const char *t = strstr(y, "transport: \"tcp://127.0.0.1:");
	cr_assert_not_null(t);
	int port = atoi(t + strlen("transport: \"tcp://127.0.0.1:"));
	free(y);
	modbus_t *mb = modbus_new_tcp("127.0.0.1", port);
	cr_assert_not_null(mb);
	modbus_set_slave(mb, 1);
	cr_assert_eq(modbus_connect(mb), 0, "relay board: %s", modbus_strerror(errno));
	cr_assert_eq(modbus_write_bit(mb, addr, on), 1, "coil %d: %s", addr, modbus_strerror(errno));
	modbus_close(mb);
	modbus_free(mb);
}

Test(simrack_gnss, antenna_cut_means_no_fix_and_back_after_the_warm_start, .fini = teardown)
{
	start(1, ref_args);
	open_nmea(1);
	run_to(40000, 2000);
	cr_assert_eq(secs[n_secs - 1].rmc_status, 'A', "no fix at 40 s");
	coil(GNSS_COIL, false);
	int cut = n_secs;
	run_to(100000, 2000);
	for (int i = cut; i < n_secs; i++) {
		const struct second *x = &secs[i];
		cr_expect_eq(x->rmc_status, 'V', "second %ld: a fix without antenna", rack_s(i));
		cr_expect_eq(x->quality, 0);
		cr_expect_eq(x->gsa_mode, 1);
		cr_expect_eq(x->n_bad, 0);
		cr_expect_gt(x->visible, 0, "GSV still lists some satellites");
		cr_expect_leq(x->max_snr, 20, "low SNR without antenna");
	}
	coil(GNSS_COIL, true);
	int back = n_secs;
	run_to(130000, 2000);
	int ff = first_fix(back);
	cr_assert_geq(ff, 0, "no fix 30 s after the antenna came back");
	/* reference: a 60 s outage is a hot start, under 1 s on an FM-series
	 * unit (published), 1 s in the receiver's whole-second model. */
	long ttff = rack_s(ff) - 100;
	cr_expect(ttff >= 1 && ttff <= 2, "fix back %ld s after the antenna", ttff);
}

Test(simrack_gnss, urban_canyon_fewer_satellites_higher_hdop_tens_of_metres, .fini = teardown)
{
	start(1, ref_args);
	open_nmea(1);
	run_to(40000, 2000);
	cr_assert_str_eq(ctl("sky 1 urban"), "ok slot=1 sky=urban");
	cr_assert_str_eq(ctl("sky 1 cloudy"), "error: usage: sky SLOT open|urban|outage");
	cr_assert_str_eq(ctl("sky 9 open"), "error: no slot 9 (1..1)");
	int from = n_secs;
	run_to(80000, 2000);
	double rlat, rlon;
	reference(&rlat, &rlon);
	double worst = 0;
	for (int i = from; i < n_secs; i++) {
		const struct second *x = &secs[i];
		cr_expect_eq(x->rmc_status, 'A', "urban keeps a fix");
		cr_expect(x->used >= 4 && x->used <= 5, "%d used", x->used);
		cr_expect(x->hdop >= 3.0 && x->hdop <= 6.0, "hdop %.1f", x->hdop);
		double d = distance_m(x->lat, x->lon, rlat, rlon);
		cr_expect_lt(d, 60.0);
		worst = d > worst ? d : worst;
	}
	cr_expect_gt(worst, 15.0, "urban errors reach tens of metres (worst %.1f m)", worst);
	cr_assert_str_eq(ctl("sky 1 outage"), "ok slot=1 sky=outage");
	from = n_secs;
	run_to(90000, 2000);
	for (int i = from; i < n_secs; i++)
		cr_expect_eq(secs[i].rmc_status, 'V');
}

static const char *const slow_args[] = { "--virtual", "--profiles", "gnss_slow_ttff", NULL };

Test(simrack_gnss, slow_ttff_profile_fixes_late, .fini = teardown)
{
	start(1, slow_args);
	open_nmea(1);
	run_to(200000, 5000);
	int ff = first_fix(0);
	cr_assert_geq(ff, 0, "no fix in 200 s");
	cr_expect(rack_s(ff) >= 180 && rack_s(ff) <= 181, "first fix at %ld s, profile says 180",
		  rack_s(ff));
}

/* ---- what the tracker says: getgps ---- */

struct gps {
	int fix, sat;
	double lat, lon;
	unsigned speed;
};

static struct gps getgps(int con)
{
	char buf[512];
	cr_assert_geq(support_tty_command(con, "getgps", buf, sizeof buf, WAIT_MS, true), 0, "no getgps answer");
	struct gps g;
	cr_assert_eq(sscanf(buf, "GPS:%d Sat:%d Lat:%lf Long:%lf Alt:%*f Speed:%u", &g.fix, &g.sat, &g.lat,
			    &g.lon, &g.speed), 5, "getgps: '%s'", buf);
	return g;
}

static int console_at(int slot)
{
	char path[PATH_MAX];
	int con = support_tty_open(simrack_console(&rack, slot, path, sizeof path));
	cr_assert_geq(con, 0);
	return con;
}

static const char *const mix_args[] = { "--virtual", "--mix", "gnss", NULL };

Test(simrack_gnss, getgps_follows_the_receiver_as_each_profile_says, .fini = teardown)
{
	start(4, mix_args);
	int con[5];
	for (int s = 1; s <= 4; s++)
		con[s] = console_at(s);
	ctl_advance(40000);   /* booted, fixed (cold 30 s) */
	struct gps fixd[5];
	for (int s = 1; s <= 4; s++) {
		fixd[s] = getgps(con[s]);
		cr_expect_eq(fixd[s].fix, 1, "slot %d not fixed at 40 s", s);
		cr_expect_geq(fixd[s].sat, 8, "slot %d", s);
	}
	for (int s = 1; s <= 4; s++) {
		char req[32];
		snprintf(req, sizeof req, "sky %d outage", s);
		cr_assert_eq(strncmp(ctl(req), "ok ", 3), 0);
	}
	ctl_advance(50000);
	struct gps a[5], b[5];
	for (int s = 1; s <= 4; s++)
		a[s] = getgps(con[s]);
	ctl_advance(80000);
	for (int s = 1; s <= 4; s++)
		b[s] = getgps(con[s]);
	/* Slot 1 (reference): no fix said plainly, the last position repeated. */
	cr_expect_eq(b[1].fix, 0, "reference claims a fix in an outage");
	cr_expect_eq(b[1].sat, 0);
	cr_expect_eq(b[1].speed, 0u);
	cr_expect_eq(a[1].lat, b[1].lat, "reference's last fix moved");
	cr_expect_eq(a[1].lon, b[1].lon);
	/* Slot 3 (gnss_stale_as_current): the last fix as current. */
	cr_expect_eq(b[3].fix, 1, "stale: no fix claimed");
	cr_expect_gt(b[3].sat, 0);
	cr_expect_gt(b[3].speed, 0u);
	cr_expect_eq(a[3].lat, b[3].lat);
	/* Slot 4 (gnss_invents): a fix claimed, and the position runs away. */
	cr_expect_eq(b[4].fix, 1, "invents: no fix claimed");
	double moved = distance_m(a[4].lat, a[4].lon, b[4].lat, b[4].lon);
	cr_expect_gt(moved, 100.0, "invented position moved only %.1f m in 30 s", moved);
	/* rack.yaml: the datasheet's TTFF on every slot. */
	char path[PATH_MAX];
	char *y = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(y);
	cr_expect_not_null(strstr(y, "record_period_s: 60, ttff_cold_s: 35, ttff_warm_s: 5}"), "Acme's: %s", y);
	cr_expect_not_null(strstr(y, "{buffer_records: 422400, flush_order: oldest_first, record_period_s: 60, "
				     "ttff_cold_s: 35, ttff_warm_s: 1}"), "the FMB920's published figures: %s", y);
	free(y);
	for (int s = 1; s <= 4; s++)
		close(con[s]);
}

/* ---- replay ---- */

static char capture[64][128];
static int n_capture, n_heard, n_mismatch;

static void heard(const char *s)
{
	if (n_heard < n_capture && strcmp(s, capture[n_heard]) != 0)
		n_mismatch++;
	n_heard++;
}

Test(simrack_gnss, replay_plays_a_committed_capture_in_order, .fini = teardown)
{
	char file[PATH_MAX];
	cr_assert_not_null(realpath("fixtures/nmea/bu353s4.log", file), "run from the repository root");
	FILE *f = fopen(file, "r");
	cr_assert_not_null(f);
	char line[120];
	n_capture = n_heard = n_mismatch = 0;
	/* The first 60 lines: the capture's first 20 seconds or so. */
	while (fgets(line, sizeof line, f) && n_capture < 64) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '$')
			snprintf(capture[n_capture++], sizeof capture[0], "%s", line);
	}
	fclose(f);
	cr_assert_eq(n_capture, 64);
	char arg[PATH_MAX + 8];
	snprintf(arg, sizeof arg, "1:%s", file);
	const char *const args[] = { "--virtual", "--nmea-replay", arg, NULL };
	start(1, args);
	open_nmea(1);
	run_to_with(30000, 1000, heard);
	cr_expect_geq(n_heard, n_capture, "heard %d lines", n_heard);
	cr_expect_eq(n_mismatch, 0, "%d lines differ from the capture", n_mismatch);
	/* gpsd's decode of the first RMC (bu353s4.log.chk): lat -37.784788333,
	 * lon 175.314896667, mode 3. */
	char fld[32], h[4];
	double lat = coord(field(capture[2], 3, fld, sizeof fld), 2, field(capture[2], 4, h, sizeof h));
	double lon = coord(field(capture[2], 5, fld, sizeof fld), 3, field(capture[2], 6, h, sizeof h));
	cr_expect(fabs(lat - -37.784788333) < 1e-8 && fabs(lon - 175.314896667) < 1e-8, "%.9f %.9f", lat, lon);
}
