/*
 * test_gnss.c - GNSS through the rig's own gpsd, and the dispatch verdict.
 *
 * End to end: `rig gnss` starts a real gpsd (its own free port, its own temp
 * dir) and the test plays the receiver on a pty pair: NMEA it writes with
 * computed checksums for a known position, a real receiver capture replayed
 * line by line (fixtures/nmea/bu353s4.log, compared with the decode gpsd's
 * regression suite documents for it), garbage and bad checksums, gpsd killed
 * mid-run. Unit tests take the verdict table through each limit's two sides.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "support.h"

/* ---- the dispatch verdict over hand-built readings ---- */

/* Everything comfortably safe: 3D, 9 satellites, HDOP 0.9, 1 s old, 3 m off. */
static struct dispatch_reading good(void)
{
	return (struct dispatch_reading){ .mode = 3, .satellites_used = 9, .hdop = 0.9, .fix_age_s = 1,
					  .position_error_m = 3 };
}

static enum dispatch_verdict verdict_of(struct dispatch_reading r, struct dispatch_result *res)
{
	return dispatch_judge(&r, NULL, res);
}

/* Asserts verdict V and, unless V is safe, a reason mentioning WHAT. */
static void expect(struct dispatch_reading r, enum dispatch_verdict v, const char *what)
{
	struct dispatch_result res;
	enum dispatch_verdict got = verdict_of(r, &res);
	cr_assert_eq(got, v, "expected %s, got %s (%d reasons, first: %s)", dispatch_verdict_name(v),
		     dispatch_verdict_name(got), res.n_reasons, res.n_reasons ? res.reasons[0] : "-");
	if (v == DISPATCH_SAFE) {
		cr_assert_eq(res.n_reasons, 0);
		return;
	}
	bool found = false;
	for (int i = 0; i < res.n_reasons; i++)
		found |= strstr(res.reasons[i], what) != NULL;
	cr_assert(found, "no reason mentions '%s' (first: %s)", what, res.n_reasons ? res.reasons[0] : "-");
}

Test(gnss, dispatch_good_reading_is_safe)
{
	expect(good(), DISPATCH_SAFE, NULL);
}

Test(gnss, dispatch_mode_limits)
{
	struct dispatch_reading r = good();
	r.mode = 2;
	expect(r, DISPATCH_DEGRADED, "fix mode 2 below 3");
	r.mode = 1;
	expect(r, DISPATCH_UNSAFE, "fix mode 1 below 2");
}

Test(gnss, dispatch_satellite_limits)
{
	struct dispatch_reading r = good();
	r.satellites_used = 6;
	expect(r, DISPATCH_SAFE, NULL);
	r.satellites_used = 5;
	expect(r, DISPATCH_DEGRADED, "satellites used 5 below 6");
	r.satellites_used = -1;
	expect(r, DISPATCH_DEGRADED, "satellites used unknown");
}

Test(gnss, dispatch_hdop_limits)
{
	struct dispatch_reading r = good();
	r.hdop = 2.0;
	expect(r, DISPATCH_SAFE, NULL);
	r.hdop = 2.1;
	expect(r, DISPATCH_DEGRADED, "hdop 2.1 above 2");
	r.hdop = 6.0;
	expect(r, DISPATCH_DEGRADED, "hdop 6 above 2");
	r.hdop = 6.1;
	expect(r, DISPATCH_UNSAFE, "hdop 6.1 above 6 (unsafe limit)");
}

Test(gnss, dispatch_age_limits)
{
	struct dispatch_reading r = good();
	r.fix_age_s = 5;
	expect(r, DISPATCH_SAFE, NULL);
	r.fix_age_s = 5.5;
	expect(r, DISPATCH_DEGRADED, "fix age 5.5 s above 5 s");
	r.fix_age_s = 60;
	expect(r, DISPATCH_DEGRADED, "fix age 60 s");
	r.fix_age_s = 61;
	expect(r, DISPATCH_UNSAFE, "fix age 61 s above 60 s (unsafe limit)");
	r.fix_age_s = NAN;
	expect(r, DISPATCH_UNSAFE, "never a fix");
}

Test(gnss, dispatch_error_limits)
{
	struct dispatch_reading r = good();
	r.position_error_m = 25;
	expect(r, DISPATCH_SAFE, NULL);
	r.position_error_m = 26;
	expect(r, DISPATCH_DEGRADED, "position error 26 m above 25 m");
	r.position_error_m = 100;
	expect(r, DISPATCH_DEGRADED, "position error 100 m");
	r.position_error_m = 150;
	expect(r, DISPATCH_UNSAFE, "position error 150 m above 100 m");
	r.position_error_m = NAN;   /* no reference: skipped, not bad */
	expect(r, DISPATCH_SAFE, NULL);
}

Test(gnss, dispatch_worst_check_wins_and_all_are_named)
{
	struct dispatch_reading r = good();
	r.hdop = 3;
	r.fix_age_s = 90;
	struct dispatch_result res;
	cr_assert_eq(verdict_of(r, &res), DISPATCH_UNSAFE);
	cr_assert_eq(res.n_reasons, 2, "reasons: %d", res.n_reasons);
	cr_assert_str_eq(dispatch_verdict_name(DISPATCH_DEGRADED), "degraded");
}

Test(gnss, dispatch_custom_limits_apply)
{
	struct dispatch_limits l = dispatch_default_limits;
	l.safe_max_hdop = 0.5;
	struct dispatch_reading r = good();
	struct dispatch_result res;
	cr_assert_eq(dispatch_judge(&r, &l, &res), DISPATCH_DEGRADED);
	cr_assert(strstr(res.reasons[0], "hdop 0.9 above 0.5"), "%s", res.reasons[0]);
}

Test(gnss, fix_stale_each_sign)
{
	char s[512];
	struct dispatch_reading r = good();
	cr_assert_eq(dispatch_fix_stale(&r, NULL, s, sizeof s), 0);
	r.fix_age_s = 10;
	cr_assert_eq(dispatch_fix_stale(&r, NULL, s, sizeof s), 0, "10 s is the limit, not past it");
	r.fix_age_s = 11;
	double old = dispatch_fix_stale(&r, NULL, s, sizeof s);
	cr_assert(old >= 0.8, "old fix: %.2f", old);
	cr_assert(strstr(s, "fix age 11.0 s (limit 10 s) STALE"), "%s", s);
	r = good();
	r.satellites_used = 3;
	double few = dispatch_fix_stale(&r, NULL, s, sizeof s);
	cr_assert(few > 0 && few < old, "few satellites alone: %.2f", few);
	cr_assert(strstr(s, "satellites used 3 TOO FEW"), "%s", s);
	r = good();
	r.hdop = 5.5;
	cr_assert_gt(dispatch_fix_stale(&r, NULL, s, sizeof s), 0);
	cr_assert(strstr(s, "hdop 5.5 TOO HIGH"), "%s", s);
	r.satellites_used = 3;
	r.fix_age_s = 30;
	cr_assert_gt(dispatch_fix_stale(&r, NULL, s, sizeof s), old, "three agreeing signs beat one");
	r = good();
	r.mode = 0;   /* nothing ever reported: not judged */
	r.fix_age_s = NAN;
	cr_assert_eq(dispatch_fix_stale(&r, NULL, s, sizeof s), 0);
}

Test(gnss, distance_is_haversine)
{
	/* One minute of latitude is one nautical mile, 1852 m (to 0.5 %). */
	double d = dispatch_distance_m(54.0, 25.0, 54.0 + 1.0 / 60, 25.0);
	cr_assert(fabs(d - 1852) < 10, "%.1f m", d);
	cr_assert_lt(dispatch_distance_m(-37.784795, 175.314901667, -37.784795, 175.314901667), 1e-6);
}

/* ---- NMEA on a pty ---- */

struct feed {
	int master;
	char link[PATH_MAX];
};

/* A pty pair with DIR/NAME linking to its slave; the test writes to the
 * master (non-blocking: nothing waits on a reader that has not opened yet). */
static void feed_open(const char *dir, const char *name, struct feed *f)
{
	f->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
	cr_assert_geq(f->master, 0, "posix_openpt: %s", strerror(errno));
	cr_assert_eq(grantpt(f->master), 0);
	cr_assert_eq(unlockpt(f->master), 0);
	snprintf(f->link, sizeof f->link, "%s/%s", dir, name);
	cr_assert_eq(symlink(ptsname(f->master), f->link), 0, "symlink %s: %s", f->link, strerror(errno));
}

static void feed_write(struct feed *f, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(f->master, s, n);
		if (w <= 0)
			return;   /* full: nobody reads yet; drop like a receiver would */
		s += w;
		n -= (size_t)w;
	}
}

/* "$BODY*CS\r\n" with BODY's XOR checksum (BAD: a wrong one). */
static void sentence(char *out, size_t len, const char *body, bool bad)
{
	unsigned cs = 0;
	for (const char *p = body; *p; p++)
		cs ^= (unsigned char)*p;
	snprintf(out, len, "$%s*%02X\r\n", body, bad ? cs ^ 0x5a : cs);
}

/* Degrees as NMEA "ddmm.mmmm" (lat) or "dddmm.mmmm" (lon), and back. */
static void nmea_angle(double deg, bool lon, char *buf, size_t len)
{
	long m = lround(fabs(deg) * 60 * 10000);   /* ten-thousandths of a minute */
	int d = (int)(m / 600000), min = (int)(m / 10000 % 60), frac = (int)(m % 10000);
	snprintf(buf, len, lon ? "%03d%02d.%04d" : "%02d%02d.%04d", d, min, frac);
}

static double nmea_back(const char *s, bool lon)
{
	int dlen = lon ? 3 : 2;
	char d[4] = { 0 };
	memcpy(d, s, (size_t)dlen);
	return atoi(d) + atof(s + dlen) / 60;
}

/* The known position: the rack reference of docs/rack-file.md, moved 0.0001'. */
#define KNOWN_LAT 54.681297
#define KNOWN_LON 25.274292

/* One epoch of RMC, GGA, GSA and three GSV (8 used, 10 visible, HDOP 0.9)
 * at LAT/LON with the current UTC time. */
static void epoch(char *out, size_t len, double lat, double lon, bool bad)
{
	char la[48], lo[48], hms[16], dmy[16], body[200], s[240];
	nmea_angle(lat, false, la, sizeof la);
	nmea_angle(lon, true, lo, sizeof lo);
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(hms, sizeof hms, "%H%M%S.00", &tm);
	strftime(dmy, sizeof dmy, "%d%m%y", &tm);
	out[0] = '\0';
	const char *ns = lat < 0 ? "S" : "N", *ew = lon < 0 ? "W" : "E";
	snprintf(body, sizeof body, "GPRMC,%s,A,%s,%s,%s,%s,0.0,84.4,%s,,,A", hms, la, ns, lo, ew, dmy);
	sentence(s, sizeof s, body, bad);
	strncat(out, s, len - strlen(out) - 1);
	snprintf(body, sizeof body, "GPGGA,%s,%s,%s,%s,%s,1,08,0.9,112.0,M,28.0,M,,", hms, la, ns, lo, ew);
	sentence(s, sizeof s, body, bad);
	strncat(out, s, len - strlen(out) - 1);
	static const char *const rest[] = {
		"GPGSA,A,3,04,05,09,12,17,24,25,29,,,,,1.8,0.9,1.5",
		"GPGSV,3,1,10,04,40,083,46,05,17,308,41,09,60,180,45,12,07,344,39",
		"GPGSV,3,2,10,17,30,250,40,24,50,120,44,25,22,050,38,29,70,270,47",
		"GPGSV,3,3,10,31,05,010,20,32,03,200,18",
	};
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
		sentence(s, sizeof s, rest[i], bad);
		strncat(out, s, len - strlen(out) - 1);
	}
}

/* ---- running `rig gnss` ---- */

struct rig_run {
	pid_t pid;
	int status;
	char out[PATH_MAX], err[PATH_MAX];
};

static void rig_spawn(struct rig_run *r, const char *dir, const char *const *args)
{
	char rig[PATH_MAX];
	support_bin("rig", rig, sizeof rig);
	const char *argv[32] = { rig, "gnss" };
	int n = 2;
	for (; args[n - 2] && n < 31; n++)
		argv[n] = args[n - 2];
	argv[n] = NULL;
	snprintf(r->out, sizeof r->out, "%s/out", dir);
	snprintf(r->err, sizeof r->err, "%s/err", dir);
	/* Made before the fork, so that readers never race the child's open. */
	close(open(r->out, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	close(open(r->err, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	pid_t parent = getpid();
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int o = open(r->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(r->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(rig, (char *const *)argv);
		_exit(127);
	}
}

/* True once the rig exited (status kept). */
static bool rig_done(struct rig_run *r)
{
	if (r->pid <= 0)
		return true;
	if (waitpid(r->pid, &r->status, WNOHANG) != r->pid)
		return false;
	r->pid = 0;
	return true;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exit code once done (killing it after LIMIT_MS: a hang fails the test). */
static int rig_exit(struct rig_run *r, int limit_ms)
{
	int64_t until = mono_ms() + limit_ms;
	while (!rig_done(r)) {
		if (mono_ms() > until) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, &r->status, 0);
			r->pid = 0;
			cr_assert_fail("rig gnss did not finish within %d ms", limit_ms);
		}
		sleep_ms(20);
	}
	cr_assert(WIFEXITED(r->status), "rig gnss died of signal %d", WTERMSIG(r->status));
	return WEXITSTATUS(r->status);
}

/* Waits for the verbose "measuring" line: gpsd has the ports open. Returns
 * gpsd's pid from it. */
static pid_t rig_measuring(struct rig_run *r)
{
	int64_t until = mono_ms() + 15000;
	while (mono_ms() < until) {
		char *e = support_read_file(r->err);
		const char *m = e ? strstr(e, "rig gnss: gpsd pid ") : NULL;
		if (m && strstr(m, "measuring")) {
			pid_t pid = (pid_t)atoi(m + strlen("rig gnss: gpsd pid "));
			free(e);
			return pid;
		}
		free(e);
		cr_assert(!rig_done(r), "rig gnss exited before measuring");
		sleep_ms(20);
	}
	cr_assert_fail("rig gnss never said it was measuring");
	return 0;
}

/* Writes an epoch every 100 ms to each feed (BAD: bad checksums for that
 * feed) until the rig exits. */
static int feed_until_done(struct rig_run *r, struct feed *f, const bool *bad, int n, double lat, double lon)
{
	char buf[1024];
	int64_t until = mono_ms() + 30000;
	while (!rig_done(r) && mono_ms() < until) {
		for (int i = 0; i < n; i++) {
			epoch(buf, sizeof buf, lat, lon, bad && bad[i]);
			feed_write(&f[i], buf);
		}
		sleep_ms(100);
	}
	return rig_exit(r, 1000);
}

/* The number after "KEY": in S, or NaN (null or absent). */
static double json_number(const char *s, const char *key)
{
	char k[64];
	snprintf(k, sizeof k, "\"%s\":", key);
	const char *p = s ? strstr(s, k) : NULL;
	if (!p)
		return NAN;
	p += strlen(k);
	char *end;
	double v = strtod(p, &end);
	return end == p ? NAN : v;
}

/* The JSON object of port PATH within OUT (up to the next port). */
static char *port_json(char *out, const char *path)
{
	char k[PATH_MAX + 16];
	snprintf(k, sizeof k, "\"port\":\"%s\"", path);
	char *p = strstr(out, k);
	cr_assert(p, "no port %s in: %s", path, out);
	char *next = strstr(p + 1, "\"port\":\"");
	if (next)
		*next = '\0';
	return p;
}

struct scene {
	char dir[PATH_MAX];
};

static void scene_init(struct scene *s)
{
	cr_assert_eq(support_tmpdir(s->dir, sizeof s->dir), 0);
}

static void scene_done(struct scene *s)
{
	support_rmtree(s->dir);
}

/* ---- end to end ---- */

Test(gnss, pty_known_position_measured, .timeout = 60)
{
	struct scene sc;
	scene_init(&sc);
	struct feed f;
	feed_open(sc.dir, "nmea", &f);
	char ref[64];
	snprintf(ref, sizeof ref, "%.6f,%.6f", KNOWN_LAT, KNOWN_LON);
	const char *args[] = { "--port", f.link, "--json", "--duration", "3s", "--reference", ref, NULL };
	struct rig_run r;
	rig_spawn(&r, sc.dir, args);
	int rc = feed_until_done(&r, &f, NULL, 1, KNOWN_LAT, KNOWN_LON);
	char *out = support_read_file(r.out), *err = support_read_file(r.err);
	cr_assert(out, "no output");
	char la[48], lo[48];
	nmea_angle(KNOWN_LAT, false, la, sizeof la);
	nmea_angle(KNOWN_LON, true, lo, sizeof lo);
	double want_lat = nmea_back(la, false), want_lon = nmea_back(lo, true);
	cr_assert_eq(rc, 0, "exit %d: %s %s", rc, out, err ? err : "");
	cr_assert_eq(json_number(out, "mode"), 3, "%s", out);
	cr_assert(fabs(json_number(out, "lat") - want_lat) < 1e-6, "lat %.7f, wrote %.7f", json_number(out, "lat"), want_lat);
	cr_assert(fabs(json_number(out, "lon") - want_lon) < 1e-6, "lon %.7f, wrote %.7f", json_number(out, "lon"), want_lon);
	cr_assert_eq(json_number(out, "satellites_used"), 8, "%s", out);
	cr_assert_eq(json_number(out, "satellites_visible"), 10, "%s", out);
	cr_assert(fabs(json_number(out, "hdop") - 0.9) < 1e-9, "%s", out);
	cr_assert(fabs(json_number(out, "pdop") - 1.8) < 1e-9, "%s", out);
	cr_assert_lt(json_number(out, "position_error_m"), 1.0, "%s", out);
	cr_assert_geq(json_number(out, "ttff_s"), 0, "%s", out);
	cr_assert_geq(json_number(out, "fix_age_s"), 0, "%s", out);
	cr_assert(strstr(out, "\"verdict\":\"safe\""), "%s", out);
	free(out);
	free(err);
	close(f.master);
	scene_done(&sc);
}

/* gpsd's regression suite documents the decode of this capture
 * (test/daemon/bu353s4.log.chk, BSD-2-Clause): its last TPV is
 * lat -37.784795000, lon 175.314901667, mode 3, altMSL 60.2; its last
 * SKY with a satellite list has 12 seen, 7 used; HDOP 1.10, PDOP 1.90. */
#define CAPTURE "fixtures/nmea/bu353s4.log"

Test(gnss, replayed_capture_matches_documented_decode, .timeout = 60)
{
	char *cap = support_read_file(CAPTURE);
	cr_assert(cap, "%s missing: the recorded capture this test replays", CAPTURE);
	struct scene sc;
	scene_init(&sc);
	struct feed f;
	feed_open(sc.dir, "nmea", &f);
	const char *args[] = { "--port", f.link, "--json", "--duration", "5s", "--verbose", NULL };
	struct rig_run r;
	rig_spawn(&r, sc.dir, args);
	rig_measuring(&r);
	int lines = 0;
	char *save = NULL;
	for (char *line = strtok_r(cap, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != '$')
			continue;   /* '#' header lines describe the capture */
		char buf[256];
		line[strcspn(line, "\r")] = '\0';
		snprintf(buf, sizeof buf, "%s\r\n", line);
		feed_write(&f, buf);
		lines++;
		sleep_ms(20);
	}
	cr_assert_gt(lines, 50);
	int rc = rig_exit(&r, 20000);
	char *out = support_read_file(r.out), *err = support_read_file(r.err);
	cr_assert_neq(rc, 3, "exit %d: %s %s", rc, out ? out : "", err ? err : "");
	cr_assert_eq(json_number(out, "mode"), 3, "%s", out);
	cr_assert(fabs(json_number(out, "lat") - -37.784795000) < 1e-6, "lat %.9f", json_number(out, "lat"));
	cr_assert(fabs(json_number(out, "lon") - 175.314901667) < 1e-6, "lon %.9f", json_number(out, "lon"));
	cr_assert(fabs(json_number(out, "alt") - 60.2) < 1e-6, "alt %.3f", json_number(out, "alt"));
	cr_assert_eq(json_number(out, "satellites_used"), 7, "%s", out);
	cr_assert_eq(json_number(out, "satellites_visible"), 12, "%s", out);
	cr_assert(fabs(json_number(out, "hdop") - 1.1) < 1e-9, "%s", out);
	cr_assert(fabs(json_number(out, "pdop") - 1.9) < 1e-9, "%s", out);
	free(out);
	free(err);
	free(cap);
	close(f.master);
	scene_done(&sc);
}

Test(gnss, garbage_and_bad_checksums_give_no_fix, .timeout = 60)
{
	struct scene sc;
	scene_init(&sc);
	struct feed f;
	feed_open(sc.dir, "nmea", &f);
	const char *args[] = { "--port", f.link, "--json", "--duration", "3s", NULL };
	struct rig_run r;
	rig_spawn(&r, sc.dir, args);
	char buf[1024];
	unsigned seed = 7;
	int64_t until = mono_ms() + 30000;
	while (!rig_done(&r) && mono_ms() < until) {
		epoch(buf, sizeof buf, KNOWN_LAT, KNOWN_LON, true);   /* every checksum wrong */
		feed_write(&f, buf);
		for (int i = 0; i < 200; i++)   /* line noise, with '$' and '*' among it */
			buf[i] = (char)(rand_r(&seed) % 2 ? rand_r(&seed) % 256 : "$GP,*\r\n"[rand_r(&seed) % 7]);
		buf[200] = '\0';
		feed_write(&f, buf);
		feed_write(&f, "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n");
		sleep_ms(100);
	}
	int rc = rig_exit(&r, 1000);
	char *out = support_read_file(r.out), *err = support_read_file(r.err);
	cr_assert_eq(rc, 3, "exit %d: %s %s", rc, out, err ? err : "");
	cr_assert(strstr(out, "no valid NMEA"), "%s", out);
	cr_assert(strstr(err, f.link) && strstr(err, "no valid NMEA"), "stderr names the port: %s", err);
	cr_assert(json_number(out, "mode") < 2, "%s", out);
	cr_assert(isnan(json_number(out, "lat")), "no position invented: %s", out);
	cr_assert(strstr(out, "\"verdict\":\"unsafe\""), "%s", out);
	free(out);
	free(err);
	close(f.master);
	scene_done(&sc);
}

Test(gnss, rack_slots_one_gpsd_bad_slot_named_others_go_on, .timeout = 60)
{
	struct scene sc;
	scene_init(&sc);
	struct feed f[2];
	feed_open(sc.dir, "slot1-nmea", &f[0]);
	feed_open(sc.dir, "slot2-nmea", &f[1]);
	char rackfile[PATH_MAX + 16];
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", sc.dir);
	FILE *y = fopen(rackfile, "w");
	cr_assert(y);
	fprintf(y, "station: gnss-test\nreference: {lat: %.6f, lon: %.6f, alt: 106}\nslots:\n", KNOWN_LAT, KNOWN_LON);
	for (int i = 0; i < 2; i++)
		fprintf(y, "  - id: %d\n    console: {port: %s/console%d}\n    nmea: {port: %s}\n", i + 1, sc.dir, i + 1,
			f[i].link);
	fclose(y);
	const char *args[] = { "all", "--rack", rackfile, "--json", "--duration", "3s", NULL };
	struct rig_run r;
	rig_spawn(&r, sc.dir, args);
	bool bad[2] = { false, true };
	int rc = feed_until_done(&r, f, bad, 2, KNOWN_LAT + 0.001, KNOWN_LON);   /* ~111 m north */
	char *out = support_read_file(r.out), *err = support_read_file(r.err);
	cr_assert_eq(rc, 3, "exit %d: %s %s", rc, out, err ? err : "");
	cr_assert(strstr(out, "\"restarts\":0"), "one gpsd for both: %s", out);
	char *copy = strdup(out);
	char *s1 = port_json(out, f[0].link);
	cr_assert(strstr(s1, "\"slot\":1") || strstr(copy, "\"slot\":1,\"port\""), "%s", copy);
	cr_assert_eq(json_number(s1, "mode"), 3, "slot 1 measured: %s", s1);
	double e = json_number(s1, "position_error_m");
	cr_assert(e > 100 && e < 125, "slot 1 is ~111 m from the rack reference: %.1f", e);
	cr_assert(strstr(s1, "\"verdict\":\"unsafe\""), "over 100 m off is unsafe: %s", s1);
	char *s2 = port_json(copy, f[1].link);
	cr_assert(strstr(s2, "no valid NMEA"), "slot 2 named: %s", s2);
	free(copy);
	free(out);
	free(err);
	close(f[0].master);
	close(f[1].master);
	scene_done(&sc);
}

/* Kills the gpsd the rig reports, once it measures; feeds until the end. */
static int kill_gpsd_midrun(struct scene *sc, const char *restarts, char **out, char **err)
{
	struct feed f;
	feed_open(sc->dir, "nmea", &f);
	const char *args[] = { "--port", f.link, "--json", "--duration", "4s", "--verbose", "--gpsd-restarts", restarts, NULL };
	struct rig_run r;
	rig_spawn(&r, sc->dir, args);
	pid_t gpsd = rig_measuring(&r);
	cr_assert_gt(gpsd, 1);
	char buf[1024];
	for (int i = 0; i < 5; i++) {   /* a few epochs first: the fix exists before the death */
		epoch(buf, sizeof buf, KNOWN_LAT, KNOWN_LON, false);
		feed_write(&f, buf);
		sleep_ms(100);
	}
	cr_assert_eq(kill(gpsd, SIGKILL), 0, "kill gpsd %d: %s", (int)gpsd, strerror(errno));
	int rc = feed_until_done(&r, &f, NULL, 1, KNOWN_LAT, KNOWN_LON);
	*out = support_read_file(r.out);
	*err = support_read_file(r.err);
	close(f.master);
	return rc;
}

Test(gnss, gpsd_killed_midrun_is_reported, .timeout = 60)
{
	struct scene sc;
	scene_init(&sc);
	char *out, *err;
	int rc = kill_gpsd_midrun(&sc, "0", &out, &err);
	cr_assert_eq(rc, 3, "exit %d: %s %s", rc, out, err);
	cr_assert(strstr(out, "killed by signal 9") && strstr(out, "mid-run"), "%s", out);
	cr_assert(strstr(out, "\"deaths\":1"), "%s", out);
	cr_assert(strstr(out, "\"verdict\":\"unsafe\""), "a reading not followed to the end is unsafe: %s", out);
	cr_assert(strstr(err, "gpsd (pid"), "stderr says it: %s", err);
	free(out);
	free(err);
	scene_done(&sc);
}

Test(gnss, gpsd_killed_midrun_is_restarted_once, .timeout = 60)
{
	struct scene sc;
	scene_init(&sc);
	char *out, *err;
	int rc = kill_gpsd_midrun(&sc, "1", &out, &err);
	cr_assert_eq(rc, 0, "exit %d: %s %s", rc, out, err);
	cr_assert(strstr(out, "\"deaths\":1") && strstr(out, "\"restarts\":1"), "%s", out);
	cr_assert(strstr(out, "restarted as pid"), "%s", out);
	cr_assert_eq(json_number(out, "mode"), 3, "measuring went on: %s", out);
	free(out);
	free(err);
	scene_done(&sc);
}

Test(gnss, gpsd_missing_is_infra_error)
{
	char rig[PATH_MAX], out[4096];
	support_bin("rig", rig, sizeof rig);
	char *const argv[] = { rig, "gnss", "--port", "/dev/null", "--gpsd", "/nonexistent/sbin/gpsd", "--duration", "1s", NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "/nonexistent/sbin/gpsd not found"), "%s", out);
}

Test(gnss, missing_port_is_named)
{
	char rig[PATH_MAX], out[4096];
	support_bin("rig", rig, sizeof rig);
	char *const argv[] = { rig, "gnss", "--port", "/nonexistent/ttyGNSS9", "--duration", "1s", NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "/nonexistent/ttyGNSS9: No such file"), "%s", out);
}

Test(gnss, usage_errors)
{
	char rig[PATH_MAX], out[4096];
	support_bin("rig", rig, sizeof rig);
	char *const none[] = { rig, "gnss", NULL };
	cr_assert_eq(support_run(none, out, sizeof out), 2, "%s", out);
	char *const both[] = { rig, "gnss", "--port", "/dev/null", "--rack", "x.yaml", NULL };
	cr_assert_eq(support_run(both, out, sizeof out), 2, "%s", out);
	char *const dur[] = { rig, "gnss", "--port", "/dev/null", "--duration", "forever", NULL };
	cr_assert_eq(support_run(dur, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "--duration 'forever'"), "%s", out);
	char *const ref[] = { rig, "gnss", "--port", "/dev/null", "--reference", "91,0", NULL };
	cr_assert_eq(support_run(ref, out, sizeof out), 2, "%s", out);
}
