/*
 * test_simrack_ota.c - firmware updates on the simulated rack
 * (docs/firmware.md, "Delivery to a tracker: the fota command"): fwgen's
 * fixture images served by the rig's own image server (rig/fwserve.c) in
 * the test process, a --virtual rack with the vendor key, `fota URL` on a
 * console, time moved on the control socket, the supply and the ignition
 * coil switched over Modbus.
 *
 * Every test has its own temp dirs, server port and rack. No timing is
 * asserted: times are rack (virtual) times, real-time waits only bound
 * output that is already due.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <modbus.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fwimage.h"
#include "fwserve.h"
#include "support.h"

#define WAIT_MS 10000          /* bound for a reply or answer already due */
#define SPAN_MS 600000ull      /* rack time an update may take, at most */
#define IGNITION_COIL 0        /* slot 1's ignition on the relay board */
#define SUPPLY_OUTPUT 18       /* RD6006 output enable register */
#define FACTORY_FW "05.01.00_00"   /* agent_reference's factory firmware */

static struct simrack_proc rack;
static struct fwserve *srv;
static char fwdir[PATH_MAX];
static int ctl_fd = -1, con_fd = -1;
static modbus_t *board, *supply;
static uint64_t now_ms;
static char log_buf[1 << 18];   /* every console line seen, '\n'-separated */
static size_t log_len;

static void stop_all(void)
{
	if (board) {
		modbus_close(board);
		modbus_free(board);
		board = NULL;
	}
	if (supply) {
		modbus_close(supply);
		modbus_free(supply);
		supply = NULL;
	}
	if (ctl_fd >= 0)
		close(ctl_fd);
	if (con_fd >= 0)
		close(con_fd);
	ctl_fd = con_fd = -1;
	if (rack.pid > 0 || rack.dir[0])
		simrack_stop(&rack);
	fwserve_stop(srv);
	srv = NULL;
	if (fwdir[0])
		support_rmtree(fwdir);
	fwdir[0] = '\0';
}

TestSuite(simrack_ota, .fini = stop_all, .timeout = 300);

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- images ---- */

static void fwgen(void)
{
	cr_assert_eq(support_tmpdir(fwdir, sizeof fwdir), 0);
	char bin[PATH_MAX], out[4096];
	support_bin("fwgen", bin, sizeof bin);
	char *argv[] = { bin, fwdir, NULL };
	cr_assert_eq(support_run(argv, out, sizeof out), 0, "fwgen: %s", out);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	uint8_t *buf = malloc(1 << 20);
	cr_assert_not_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* fwgen's image BASE repacked for MODEL and signed by the vendor key, as
 * NAME: the defective profiles present as other models. */
static void image_for(const char *base, const char *model, const char *name)
{
	char path[PATH_MAX + 64], err[300];
	size_t len, klen, plen;
	snprintf(path, sizeof path, "%s/%s", fwdir, base);
	uint8_t *img = read_all(path, &len);
	struct fwimage_header h;
	cr_assert_eq(fwimage_header_parse(img, len, &h, err, sizeof err), 0, "%s", err);
	snprintf(path, sizeof path, "%s/vendor.key.pem", fwdir);
	uint8_t *key = read_all(path, &klen);
	uint8_t *packed, *signed_img;
	cr_assert_eq(fwimage_pack("Acme", model, h.version, h.build_time, img + FWIMAGE_HEADER_SIZE,
				  (size_t)h.payload_size, &packed, &plen, err, sizeof err), 0, "%s", err);
	size_t slen;
	cr_assert_eq(fwimage_sign(packed, plen, (const char *)key, klen, &signed_img, &slen, err,
				  sizeof err), 0, "%s", err);
	snprintf(path, sizeof path, "%s/%s", fwdir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(signed_img, 1, slen, f), slen);
	fclose(f);
	free(img);
	free(key);
	free(packed);
	free(signed_img);
}

/* ---- the rack ---- */

static char *rack_yaml(void)
{
	char path[PATH_MAX + 16];
	char *yaml = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	return yaml;
}

static int port_after(const char *at)
{
	const char *t = strstr(at, "tcp://127.0.0.1:");
	cr_assert_not_null(t);
	return atoi(t + 16);
}

static modbus_t *mb_connect(int port)
{
	modbus_t *m = modbus_new_tcp("127.0.0.1", port);
	cr_assert_not_null(m);
	modbus_set_slave(m, 1);
	cr_assert_eq(modbus_connect(m), 0, "modbus connect: %s", modbus_strerror(errno));
	return m;
}


static uint64_t ctl_move(const char *verb, uint64_t t) { return now_ms = support_ctl_move(ctl_fd, verb, t); }

/* Console bytes read but not yet a whole line: a pty hands bytes over
 * through the kernel's flip buffer, so a line can arrive in pieces. */
static char pend[8192];
static size_t pend_len;

/* The next whole console line (terminator stripped) into BUF within
 * TIMEOUT_MS, or -1. A partial line stays for the next call. */
static int next_line(char *buf, size_t len, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(pend, '\n', pend_len);
		if (nl) {
			size_t n = (size_t)(nl - pend), keep = n;
			if (keep && pend[keep - 1] == '\r')
				keep--;
			if (keep >= len)
				keep = len - 1;
			memcpy(buf, pend, keep);
			buf[keep] = '\0';
			memmove(pend, nl + 1, pend_len - n - 1);
			pend_len -= n + 1;
			return (int)keep;
		}
		int left = (int)(end - mono_ms());
		struct pollfd pf = { .fd = con_fd, .events = POLLIN };
		if (left <= 0 || poll(&pf, 1, left) != 1)
			return -1;
		cr_assert_lt(pend_len, sizeof pend, "console line too long");
		ssize_t r = read(con_fd, pend + pend_len, sizeof pend - pend_len);
		if (r <= 0)
			return -1;
		pend_len += (size_t)r;
	}
}

static void log_line(const char *line)
{
	size_t n = strlen(line);
	cr_assert_lt(log_len + n + 2, sizeof log_buf, "console log overflow");
	memcpy(log_buf + log_len, line, n);
	log_len += n;
	log_buf[log_len++] = '\n';
	log_buf[log_len] = '\0';
}

/* Reads every console line already written into the log. Returns how many. */
static int drain(void)
{
	int got = 0;
	char line[600];
	while (next_line(line, sizeof line, 50) >= 0) {
		log_line(line);
		got++;
	}
	return got;
}

/* Moves rack time event by event until a console line containing WHAT
 * appears after log offset FROM, or SPAN ms have passed. Returns the line
 * (in the log) or NULL. */
static const char *run_until(const char *what, size_t from, uint64_t span)
{
	uint64_t limit = now_ms + span;
	for (int guard = 0; guard < 200000; guard++) {
		const char *hit = strstr(log_buf + from, what);
		if (hit)
			return hit;
		uint64_t at = ctl_move("next", limit);
		int got = drain();
		if (at >= limit && !got)
			return strstr(log_buf + from, what);
	}
	cr_assert_fail("the rack never settled");
	return NULL;
}

static const char *must_see(const char *what, size_t from, uint64_t span)
{
	const char *hit = run_until(what, from, span);
	cr_assert_not_null(hit, "no '%s' within %" PRIu64 " ms of rack time; console said:\n%s", what, span,
			   log_buf + from);
	return hit;
}

/* Sends CMD, logs the events before its answer, copies the answer. */
static void command(const char *cmd, char *buf, size_t len)
{
	drain();
	char line[600];
	int n = snprintf(line, sizeof line, "%s\r\n", cmd);
	cr_assert_eq(write(con_fd, line, (size_t)n), n);
	int64_t end = mono_ms() + WAIT_MS;
	for (;;) {
		int left = (int)(end - mono_ms());
		cr_assert(left > 0 && next_line(buf, len, left) >= 0, "no answer to '%s'", cmd);
		if (buf[0] != '@')
			return;
		log_line(buf);
	}
}

/* Starts the image server and a one-slot virtual rack running PROFILE
 * (with the vendor key when KEY), slot 1 booted. */
static void setup(const char *profile, bool key)
{
	log_len = 0;
	log_buf[0] = '\0';
	pend_len = 0;
	fwgen();
	char err[300];
	cr_assert_eq(fwserve_start(fwdir, NULL, 0, &srv, err, sizeof err), 0, "%s", err);
	char pub[PATH_MAX + 32];
	snprintf(pub, sizeof pub, "%s/vendor.pub.pem", fwdir);
	const char *extra[] = { "--virtual", "--profiles", profile, key ? "--vendor-key" : NULL, pub, NULL };
	cr_assert_eq(simrack_start_args(&rack, 1, 7, extra), 0, "simrack did not start");
	char path[PATH_MAX + 32];
	ctl_fd = simrack_control(&rack);
	con_fd = support_tty_open(simrack_console(&rack, 1, path, sizeof path));
	cr_assert_geq(con_fd, 0);
	ctl_move("advance", 1000);
	drain();
	cr_assert_not_null(strstr(log_buf, "@BOOT bank=A "), "no first boot: %s", log_buf);
	char *yaml = rack_yaml();
	const char *b = strstr(yaml, "\nboards:\n  - name: relays\n");
	const char *s = strstr(yaml, "    power: {driver: rd60xx, transport: ");
	cr_assert(b && s, "%s", yaml);
	board = mb_connect(port_after(b));
	supply = mb_connect(port_after(s));
	free(yaml);
}

static void ignition(bool on)
{
	cr_assert_eq(modbus_write_bit(board, IGNITION_COIL, on), 1, "%s", modbus_strerror(errno));
}

static void power(bool on)
{
	cr_assert_eq(modbus_write_register(supply, SUPPLY_OUTPUT, on), 1, "%s", modbus_strerror(errno));
}

/* `fota URL` for image NAME; returns the answer. */
static const char *fota(const char *name)
{
	static char ans[600];
	char url[300], cmd[400];
	fwserve_url(srv, name, url, sizeof url);
	snprintf(cmd, sizeof cmd, "fota %s", url);
	command(cmd, ans, sizeof ans);
	return ans;
}

/* Where the update stands: the agent's `fota status`
 * ("FOTA:STATE bank=A pending=B bytes=N/M"). */
static const char *info(void)
{
	static char ans[600];
	command("fota status", ans, sizeof ans);
	return ans;
}

/* getinfo's restart counter (RST). */
static long restarts(void)
{
	char ans[600];
	command("getinfo", ans, sizeof ans);
	const char *r = strstr(ans, " RST:");
	cr_assert_not_null(r, "getinfo has no RST: '%s'", ans);
	return strtol(r + 5, NULL, 10);
}

static void expect_in(const char *hay, const char *needle)
{
	cr_expect_not_null(strstr(hay, needle), "'%s' not in '%s'", needle, hay);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- tests ---- */

Test(simrack_ota, fwgen_model_is_the_reference_model)
{
	setup("agent_reference", true);
	char path[PATH_MAX + 32], err[300];
	size_t len;
	snprintf(path, sizeof path, "%s/good-2.0.0.fw", fwdir);
	uint8_t *img = read_all(path, &len);
	struct fwimage_header h;
	cr_assert_eq(fwimage_header_parse(img, len, &h, err, sizeof err), 0, "%s", err);
	free(img);
	char ans[600];
	command("getver", ans, sizeof ans);
	char want[64];
	snprintf(want, sizeof want, " Hw:%s ", h.model);
	expect_in(ans, want);
}

Test(simrack_ota, good_image_commits_on_bank_b)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=committed bank=B ver=2.0.0", 0, SPAN_MS);
	expect_in(log_buf, "@FOTA state=downloading bytes=");
	expect_in(log_buf, "@FOTA state=writing bank=B");
	expect_in(log_buf, "@FOTA state=trial bank=B ver=2.0.0");
	expect_in(log_buf, "@BOOT bank=B reason=cpureset fw=2.0.0");
	const char *i = info();
	expect_in(i, " bank=B pending=- ");
	expect_in(i, "FOTA:committed ");
	char ans[600];
	command("getver", ans, sizeof ans);
	cr_expect_eq(strncmp(ans, "Ver:2.0.0 ", 10), 0, "%s", ans);
	command("fota status", ans, sizeof ans);
	cr_expect_eq(strncmp(ans, "FOTA:committed bank=B pending=-", 31), 0, "%s", ans);
	/* Still B after a power cycle: committed means known good. */
	size_t mark = log_len;
	power(false);
	ctl_move("advance", now_ms + 1000);
	power(true);
	must_see("@BOOT", mark, 10000);
	expect_in(log_buf + mark, "@BOOT bank=B reason=power_on fw=2.0.0");
}

Test(simrack_ota, crash_loop_rolls_back_after_the_boot_limit)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota("crash-loop.fw"), "FOTA:accepted");
	must_see("@FOTA state=rolled_back bank=A reason=boot_limit", 0, SPAN_MS);
	cr_expect_eq(count(log_buf, "@BOOT bank=B reason=watchdog"), 2, "%s", log_buf);
	cr_expect_eq(count(log_buf, "@BOOT bank=B "), 3, "three trial boots: %s", log_buf);
	expect_in(log_buf, "@BOOT bank=A reason=rollback fw=" FACTORY_FW);
	cr_expect_null(strstr(log_buf, "state=committed"), "%s", log_buf);
	const char *i = info();
	expect_in(i, " bank=A pending=- ");
	expect_in(i, "FOTA:rolled_back ");
	char ans0[600];
	command("getinfo", ans0, sizeof ans0);
	expect_in(ans0, " RS:2 ");   /* the watchdog reset that led to the rollback */
	cr_expect_eq(restarts(), 5, "the first boot, three trial boots and the rollback boot all count");
	char ans[600];
	command("getver", ans, sizeof ans);
	cr_expect_eq(strncmp(ans, "Ver:" FACTORY_FW " ", 5 + strlen(FACTORY_FW)), 0, "%s", ans);
}

static void health_rollback(const char *image)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota(image), "FOTA:accepted");
	const char *trial = must_see("@FOTA state=trial bank=B", 0, SPAN_MS);
	size_t mark = (size_t)(trial - log_buf);
	must_see("@FOTA state=rolled_back bank=A reason=health_timeout", mark, SPAN_MS);
	cr_expect_null(strstr(log_buf, "state=committed"), "%s", log_buf);
	must_see("@BOOT bank=A reason=rollback", mark, 10000);
	const char *i = info();
	expect_in(i, " bank=A pending=- ");
	expect_in(i, "FOTA:rolled_back ");
}

Test(simrack_ota, no_gnss_rolls_back_at_the_health_timeout)
{
	health_rollback("no-gnss.fw");
}

Test(simrack_ota, no_modem_rolls_back_at_the_health_timeout)
{
	health_rollback("no-modem.fw");
}

Test(simrack_ota, bad_images_are_rejected_before_writing)
{
	static const struct { const char *file, *reason; } bad[] = {
		{ "corrupt-payload.fw", "hash" },
		{ "bad-signature.fw", "signature" },
		{ "wrong-model.fw", "model" },
		{ "truncated.fw", "truncated" },
		{ "unsigned.fw", "signature" },
	};
	setup("agent_reference", true);
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		size_t mark = log_len;
		cr_assert_str_eq(fota(bad[k].file), "FOTA:accepted", "%s", bad[k].file);
		const char *r = must_see("@FOTA state=rejected", mark, SPAN_MS);
		char want[80];
		snprintf(want, sizeof want, "@FOTA state=rejected reason=%s\n", bad[k].reason);
		cr_expect_eq(strncmp(r, want, strlen(want)), 0, "%s: '%.60s'", bad[k].file, r);
		cr_expect_null(strstr(log_buf + mark, "state=writing"), "%s was written", bad[k].file);
		cr_expect_null(strstr(log_buf + mark, "@BOOT"), "%s: the device rebooted", bad[k].file);
		const char *i = info();
		expect_in(i, " bank=A pending=- ");
		expect_in(i, "FOTA:rejected ");
		if (!strcmp(bad[k].reason, "model"))   /* refused from the header: no 10% step */
			cr_expect_null(strstr(log_buf + mark, "bytes=1"), "%s", log_buf + mark);
	}
	char ans[600];
	command("getver", ans, sizeof ans);
	cr_expect_eq(strncmp(ans, "Ver:" FACTORY_FW " ", 5 + strlen(FACTORY_FW)), 0, "%s", ans);
}

Test(simrack_ota, without_a_vendor_key_every_image_is_refused)
{
	setup("agent_reference", false);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=rejected reason=signature", 0, SPAN_MS);
	expect_in(info(), " bank=A ");
}

Test(simrack_ota, ignition_on_defers_until_parked)
{
	setup("agent_reference", true);
	ignition(true);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:deferred in_service");
	expect_in(log_buf, "@FOTA state=deferred reason=in_service");
	ctl_move("advance", now_ms + 200000);
	drain();
	cr_expect_null(strstr(log_buf, "state=downloading"), "downloaded in service: %s", log_buf);
	expect_in(info(), "FOTA:deferred ");
	struct fwserve_stats st;
	cr_expect_not(fwserve_stats(srv, "good-2.0.0.fw", &st), "the image was fetched in service");
	size_t mark = log_len;
	ignition(false);
	must_see("@FOTA state=committed bank=B ver=2.0.0", mark, SPAN_MS);
}

Test(simrack_ota, cut_download_resumes_with_a_range_request)
{
	setup("agent_reference", true);
	fwserve_cut_after(srv, "good-2.0.0.fw", 40000);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=committed bank=B ver=2.0.0", 0, SPAN_MS);
	struct fwserve_stats st;
	cr_assert(fwserve_stats(srv, "good-2.0.0.fw", &st));
	cr_expect_eq(st.cut, 1);
	cr_expect_geq(st.ranged, 1, "no Range request after the cut");
	cr_expect_eq(st.requests, 2, "requests %" PRIu64, st.requests);
}

Test(simrack_ota, power_cut_during_download_restarts_it)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=downloading bytes=4", 0, SPAN_MS);   /* past 40% */
	size_t mark = log_len;
	power(false);
	ctl_move("advance", now_ms + 5000);
	power(true);
	const char *boot = must_see("@BOOT", mark, 10000);
	cr_expect_eq(strncmp(boot, "@BOOT bank=A reason=power_on", 28), 0, "%.60s", boot);
	must_see("@FOTA state=committed bank=B ver=2.0.0", mark, SPAN_MS);
	struct fwserve_stats st;
	cr_assert(fwserve_stats(srv, "good-2.0.0.fw", &st));
	cr_expect_eq(st.requests, 2, "one request per power-on");
	expect_in(info(), " bank=B pending=- ");
}

Test(simrack_ota, power_cut_during_writing_boots_the_old_bank)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=writing bank=B", 0, SPAN_MS);
	size_t mark = log_len;
	power(false);
	ctl_move("advance", now_ms + 5000);
	power(true);
	const char *boot = must_see("@BOOT", mark, 10000);
	cr_expect_eq(strncmp(boot, "@BOOT bank=A reason=power_on fw=" FACTORY_FW, 32 + strlen(FACTORY_FW)), 0,
		     "%.60s", boot);
	must_see("@FOTA state=failed bank=B reason=interrupted", mark, 10000);
	expect_in(info(), " bank=A ");
	/* The job survives in flash: it starts again from byte 0 and lands. */
	must_see("@FOTA state=committed bank=B ver=2.0.0", mark, SPAN_MS);
}

Test(simrack_ota, power_cut_during_the_trial_counts_the_boot)
{
	setup("agent_reference", true);
	long before = restarts();
	cr_assert_str_eq(fota("good-2.0.0.fw"), "FOTA:accepted");
	must_see("@FOTA state=trial bank=B", 0, SPAN_MS);
	size_t mark = log_len;
	power(false);   /* before the trial boot's health check */
	ctl_move("advance", now_ms + 5000);
	power(true);
	const char *boot = must_see("@BOOT", mark, 10000);
	cr_expect_eq(strncmp(boot, "@BOOT bank=B reason=power_on", 28), 0, "%.60s", boot);
	const char *i = info();
	expect_in(i, " bank=B pending=B ");   /* still on trial: a second trial boot */
	/* The cut came while the trial image was still booting (the trial
	 * line comes as the unit resets): the restart counter counts boots
	 * that reached the firmware, so only the boot after the cut. */
	long after = restarts();
	cr_expect_eq(after, before + 1, "restart counter %ld -> %ld", before, after);
	must_see("@FOTA state=committed bank=B ver=2.0.0", mark, SPAN_MS);
	expect_in(info(), " bank=B pending=- ");
}

Test(simrack_ota, power_cut_in_a_crash_loop_still_rolls_back)
{
	setup("agent_reference", true);
	cr_assert_str_eq(fota("crash-loop.fw"), "FOTA:accepted");
	must_see("@BOOT bank=B reason=watchdog", 0, SPAN_MS);
	size_t mark = log_len;
	power(false);
	ctl_move("advance", now_ms + 2000);
	power(true);
	must_see("@FOTA state=rolled_back bank=A reason=boot_limit", mark, SPAN_MS);
	expect_in(info(), " bank=A pending=- ");
}

Test(simrack_ota, ota_no_rollback_stays_in_its_crash_loop)
{
	setup("ota_no_rollback", true);
	image_for("crash-loop.fw", "FMB920", "crash-atb00.fw");
	cr_assert_str_eq(fota("crash-atb00.fw"), "FOTA:accepted");
	const char *trial = must_see("@FOTA state=trial bank=B", 0, SPAN_MS);
	size_t mark = (size_t)(trial - log_buf);
	ctl_move("advance", now_ms + 120000);
	drain();
	cr_expect_geq(count(log_buf + mark, "@BOOT bank=B reason=watchdog"), 10, "%s", log_buf + mark);
	cr_expect_null(strstr(log_buf, "rolled_back"), "it rolled back: %s", log_buf);
	cr_expect_null(strstr(log_buf + mark, "@BOOT bank=A"), "%s", log_buf + mark);
}

Test(simrack_ota, ota_early_success_says_committed_then_rolls_back)
{
	setup("ota_early_success", true);
	image_for("no-gnss.fw", "FMB920", "nognss-atc00.fw");
	cr_assert_str_eq(fota("nognss-atc00.fw"), "FOTA:accepted");
	const char *c = must_see("@FOTA state=committed bank=B", 0, SPAN_MS);
	size_t mark = (size_t)(c - log_buf);
	must_see("@FOTA state=rolled_back bank=A reason=health_timeout", mark, SPAN_MS);
	must_see("@BOOT bank=A reason=rollback", mark, 10000);
	expect_in(info(), " bank=A ");
}

Test(simrack_ota, ota_ignores_service_installs_with_ignition_on)
{
	setup("ota_ignores_service", true);
	image_for("good-2.0.0.fw", "FMB920", "good-atd00.fw");
	ignition(true);
	cr_assert_str_eq(fota("good-atd00.fw"), "FOTA:accepted");
	must_see("@FOTA state=committed bank=B ver=2.0.0", 0, SPAN_MS);
	cr_expect_null(strstr(log_buf, "deferred"), "%s", log_buf);
	char ans[600];
	command("getio", ans, sizeof ans);
	expect_in(ans, "DI1:1 ");
}

Test(simrack_ota, ota_accepts_unsigned_writes_an_unsigned_wrong_model_image)
{
	setup("ota_accepts_unsigned", true);
	/* unsigned.fw is unsigned and built for FMB920, not AT-E00. */
	cr_assert_str_eq(fota("unsigned.fw"), "FOTA:accepted");
	must_see("@FOTA state=committed bank=B", 0, SPAN_MS);
	cr_expect_null(strstr(log_buf, "rejected"), "%s", log_buf);
	expect_in(info(), " bank=B ");
}

Test(simrack_ota, reference_refuses_what_the_defective_ones_accept)
{
	/* The contrast: the same unsigned image on the reference. */
	setup("agent_reference", true);
	ignition(true);
	cr_assert_str_eq(fota("unsigned.fw"), "FOTA:deferred in_service");
	ignition(false);
	must_see("@FOTA state=rejected reason=signature", 0, SPAN_MS);
}

Test(simrack_ota, ota_mix_places_the_defects)
{
	const char *extra[] = { "--virtual", "--mix", "ota", NULL };
	cr_assert_eq(simrack_start_args(&rack, 8, 7, extra), 0);
	char *yaml = rack_yaml();
	static const char *const models[] = { "FMB920", "FMB920", "FMB920", "FMB920",
					      "FMB920", "FMB920", "FMB920", "FMB920" };
	for (int k = 1; k <= 8; k++) {
		char head[32], want[40];
		snprintf(head, sizeof head, "  - id: %d\n", k);
		const char *at = strstr(yaml, head);
		cr_assert_not_null(at, "slot %d", k);
		const char *next = strstr(at + 1, "  - id: ");
		const char *m = strstr(at, "model: ");
		snprintf(want, sizeof want, "model: %s", models[k - 1]);
		cr_expect(m && (!next || m < next) && !strncmp(m, want, strlen(want)), "slot %d: want %s", k,
			  models[k - 1]);
		/* Agent units but the last, a Teltonika unit the update scenarios skip. */
		const char *pr = strstr(at, "protocol: ");
		const char *wantp = k == 8 ? "protocol: teltonika\n" : "protocol: agent\n";
		cr_expect(pr && (!next || pr < next) && !strncmp(pr, wantp, strlen(wantp)), "slot %d: want %s", k, wantp);
	}
	free(yaml);
}
