/*
 * test_probe.c - end to end: simrack on ptys, `rig probe` and the driver over
 * both serial backends, faults on a real pty, a rack that dies mid-command.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "ident.h"
#include "rack.h"
#include "support.h"
#include "tracker.h"

/* Runs ARGV with extra environment ENV (NULL-terminated "K=V" list), captures
 * stdout and stderr (truncated to the buffers), returns the exit code. */
static int run(char *const argv[], char *const env[], char *out, size_t outlen, char *errbuf, size_t errlen)
{
	int po[2], pe[2];
	cr_assert_eq(pipe(po), 0);
	cr_assert_eq(pipe(pe), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		for (int i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	size_t no = 0, ne = 0;
	struct pollfd p[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
	int open_ = 2;
	while (open_ > 0) {
		cr_assert_gt(poll(p, 2, 60000), 0, "command hung: %s", argv[0]);
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			char tmp[4096];
			ssize_t n = read(p[i].fd, tmp, sizeof tmp);
			if (n <= 0) {
				p[i].fd = -1;
				open_--;
				continue;
			}
			char *dst = i == 0 ? out : errbuf;
			size_t *used = i == 0 ? &no : &ne, cap = i == 0 ? outlen : errlen;
			size_t k = (size_t)n < cap - 1 - *used ? (size_t)n : cap - 1 - *used;
			memcpy(dst + *used, tmp, k);
			*used += k;
		}
	}
	out[no] = '\0';
	errbuf[ne] = '\0';
	close(po[0]);
	close(pe[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *rig_bin(void)
{
	static char buf[4096];
	return support_bin("rig", buf, sizeof buf);
}

/* The value of "KEY": "..." in JSON text (first occurrence). */
static const char *json_value(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\": \"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	if (n >= len)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

Test(probe, slot1_json_has_luhn_valid_imei_matching_rack_file, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 4, "reference", 7), 0);
	char port[4200], db[4200], rackfile[4200];
	simrack_console(&sr, 1, port, sizeof port);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", sr.dir);
	char *argv[] = { (char *)rig_bin(), "probe", port, "--json", "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "rig probe exit %d: %s", rc, err);
	char imei[32], iccid[32], serial[40], model[40], fw[64];
	cr_assert_not_null(json_value(out, "imei", imei, sizeof imei), "%s", out);
	cr_assert(ident_imei_valid(imei), "IMEI %s fails Luhn", imei);
	cr_assert_not_null(json_value(out, "iccid", iccid, sizeof iccid), "%s", out);
	cr_assert(ident_iccid_valid(iccid), "ICCID %s fails Luhn", iccid);
	cr_assert_not_null(json_value(out, "serial", serial, sizeof serial));
	cr_assert_not_null(json_value(out, "model", model, sizeof model));
	cr_assert_not_null(json_value(out, "firmware", fw, sizeof fw));
	cr_assert_gt(strlen(fw), 0);

	struct rack r;
	char rerr[512];
	cr_assert_eq(rack_load(rackfile, &r, rerr, sizeof rerr), 0, "%s", rerr);
	cr_assert_str_eq(r.slots[0].expect.imei, imei, "device and rack file disagree");
	cr_assert_str_eq(r.slots[0].expect.iccid, iccid);
	cr_assert_str_eq(r.slots[0].expect.serial, serial);
	rack_free(&r);

	/* The probe left a run and an audit row per command. */
	char *audit[] = { (char *)rig_bin(), "audit", "--device", imei, "--db", db, "--json", NULL };
	rc = run(audit, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "rig audit exit %d: %s", rc, err);
	cr_assert(strstr(out, "getver"), "%s", out);
	cr_assert(strstr(out, "getimeiccid"), "%s", out);
	cr_assert(strstr(out, "getstatus"), "%s", out);
	simrack_stop(&sr);
}

Test(probe, whole_rack_table_all_ok, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 4, "reference", 3), 0);
	char db[4200], rackfile[4200];
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", sr.dir);
	char *argv[] = { (char *)rig_bin(), "probe", "--rack", rackfile, "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "exit %d\n%s\n%s", rc, out, err);
	int oks = 0;
	for (const char *p = out; (p = strstr(p, "  ok\n")); p++)
		oks++;
	cr_assert_eq(oks, 4, "%s", out);
	simrack_stop(&sr);
}

Test(probe, identity_drift_against_rack_file_fails_naming_both, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 5), 0);
	/* A work order that expects another unit in slot 2. */
	char rackfile[4200], edited[4200], db[4200], cmd[13000];
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", sr.dir);
	snprintf(edited, sizeof edited, "%s/drift.yaml", sr.dir);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	struct rack r;
	char rerr[512];
	cr_assert_eq(rack_load(rackfile, &r, rerr, sizeof rerr), 0, "%s", rerr);
	char real_imei[64];
	snprintf(real_imei, sizeof real_imei, "%s", r.slots[1].expect.imei);
	rack_free(&r);
	snprintf(cmd, sizeof cmd, "sed 's/%s/490154203237518/' '%s' > '%s'", real_imei, rackfile, edited);
	cr_assert_eq(system(cmd), 0);
	char *argv[] = { (char *)rig_bin(), "probe", "--rack", edited, "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "drift must fail the probe: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "slot 2: identity drift: IMEI: rack file expects 490154203237518, device says"), "%s", out);
	cr_assert(strstr(out, real_imei), "%s", out);
	simrack_stop(&sr);
}

Test(probe, flaky_console_is_caught_with_a_clear_error, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference,flaky_console", 11), 0);
	char port[4200], db[4200];
	simrack_console(&sr, 2, port, sizeof port);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	char *argv[] = { (char *)rig_bin(), "probe", port, "--timeout", "1000", "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert(rc == 1 || rc == 3, "the defective console must fail the probe (exit %d)\n%s", rc, out);
	cr_assert(strstr(err, port), "error must name the port: %s", err);
	cr_assert(strstr(err, ": get"), "error must name the command: %s", err);
	/* The reference unit on the same rack still probes fine. */
	simrack_console(&sr, 1, port, sizeof port);
	char *ok[] = { (char *)rig_bin(), "probe", port, "--db", db, NULL };
	cr_assert_eq(run(ok, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	simrack_stop(&sr);
}

/* ---- libserialport backend against a pty (shim + symlink recipe) ---- */

static void lsp_path(const struct simrack_proc *sr, char *path, size_t len)
{
	char port[4200], target[4200], link[4200];
	simrack_console(sr, 1, port, sizeof port);
	cr_assert_not_null(realpath(port, target), "realpath %s", port);
	cr_assert(strncmp(target, "/dev/pts/", 9) == 0, "%s", target);
	snprintf(link, sizeof link, "%s/dut0", sr->dir);
	cr_assert_eq(symlink(target, link), 0);
	/* The sysfs lookup libserialport does lands on the symlink this way. */
	snprintf(path, len, "/dev/../../..%s", link);
}

Test(probe, libserialport_backend_over_pty_with_shim, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 2), 0);
	char path[4400], db[4200], preload[4300], shim[4096];
	lsp_path(&sr, path, sizeof path);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	const char *s = getenv("TRACKRIG_SHIM");
	snprintf(shim, sizeof shim, "%s", s && *s ? s : "build/ptyshim.so");
	cr_assert_eq(access(shim, R_OK), 0, "shim %s missing", shim);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
	char *env[] = { preload, "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0", NULL };
	char *argv[] = { (char *)rig_bin(), "probe", path, "--backend", "libserialport", "--json", "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, env, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "exit %d: %s\n%s", rc, err, out);
	cr_assert(strstr(out, "(libserialport,"), "the libserialport backend must have carried it: %s", out);
	char imei[32];
	cr_assert_not_null(json_value(out, "imei", imei, sizeof imei));
	cr_assert(ident_imei_valid(imei));
	simrack_stop(&sr);
}

Test(probe, libserialport_backend_without_shim_fails_clearly, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 2), 0);
	char path[4400], db[4200];
	lsp_path(&sr, path, sizeof path);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	char *argv[] = { (char *)rig_bin(), "probe", path, "--backend", "libserialport", "--db", db, NULL };
	static char out[65536], err[65536];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, err);
	cr_assert(strstr(err, "libserialport"), "%s", err);
	cr_assert(strstr(err, "dut0"), "the error names the port: %s", err);
	simrack_stop(&sr);
}

/* ---- a rack that dies mid-command ---- */

struct killer {
	struct simrack_proc *sr;
};

static void *kill_soon(void *arg)
{
	struct killer *k = arg;
	usleep(100 * 1000);
	simrack_kill(k->sr);
	return NULL;
}

Test(probe, rack_killed_mid_command_is_device_gone_not_timeout, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 4), 0);
	char port[4200], err[512];
	simrack_console(&sr, 1, port, sizeof port);
	tracker *t;
	cr_assert_eq(tracker_open_console(port, 115200, SERIAL_BACKEND_AUTO, tracker_proto_find("teltonika"), &t,
					  err, sizeof err), TRACKER_OK, "%s", err);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 5000), TRACKER_OK, "%s", tracker_error(t));
	/* Frozen, the rack cannot answer; then it dies while we wait. */
	cr_assert_eq(kill(sr.pid, SIGSTOP), 0);
	struct killer k = { &sr };
	pthread_t th;
	pthread_create(&th, NULL, kill_soon, &k);
	int rc = tracker_command(t, "getver", a, sizeof a, 20000);
	pthread_join(th, NULL);
	cr_assert_eq(rc, TRACKER_ERR_GONE, "got %s: %s", tracker_strerror(rc), tracker_error(t));
	cr_assert(strstr(tracker_error(t), port), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "getver"), "%s", tracker_error(t));
	tracker_close(t);
	simrack_stop(&sr);
}

/* ---- faults on a real pty: the test plays a broken device ---- */

struct fake_device {
	int master, slave;
	char path[128];
};

static void fake_open(struct fake_device *d)
{
	cr_assert_eq(openpty(&d->master, &d->slave, d->path, NULL, NULL), 0);
	struct termios tio;
	tcgetattr(d->master, &tio);
	cfmakeraw(&tio);
	tcsetattr(d->master, TCSANOW, &tio);
	/* The test keeps the slave open too, so the pair outlives the driver's close. */
}

/* Reads the command the driver sent, then writes REPLY (LEN bytes). */
static void *answer_once(void *arg)
{
	struct fake_device *d = ((void **)arg)[0];
	const char *reply = ((void **)arg)[1];
	size_t len = (size_t)((void **)arg)[2];
	char buf[256];
	struct pollfd p = { .fd = d->master, .events = POLLIN };
	if (poll(&p, 1, 10000) > 0 && read(d->master, buf, sizeof buf) > 0 && len)
		(void)!write(d->master, reply, len);
	return NULL;
}

static int exchange_with(const char *reply, size_t len, int timeout_ms, char *errbuf, size_t errlen)
{
	struct fake_device d;
	fake_open(&d);
	tracker *t;
	char err[512];
	cr_assert_eq(tracker_open_console(d.path, 115200, SERIAL_BACKEND_TERMIOS, tracker_proto_find("teltonika"), &t,
					  err, sizeof err), TRACKER_OK, "%s", err);
	void *args[3] = { &d, (void *)reply, (void *)len };
	pthread_t th;
	pthread_create(&th, NULL, answer_once, args);
	char a[600];
	int rc = tracker_command(t, "getver", a, sizeof a, timeout_ms);
	pthread_join(th, NULL);
	snprintf(errbuf, errlen, "%s", tracker_error(t));
	cr_assert(rc != TRACKER_OK ? strstr(errbuf, d.path) != NULL : true, "error must name %s: %s", d.path, errbuf);
	tracker_close(t);
	close(d.master);
	close(d.slave);
	return rc;
}

Test(probe, pty_nul_bytes_garbage_overlong_partial_silence)
{
	char err[1024];
	static const char nul[] = "Ver:1\0\0 Hw:X IMEI:352094087230394\r\n";
	cr_assert_eq(exchange_with(nul, sizeof nul - 1, 500, err, sizeof err), TRACKER_ERR_GARBAGE, "%s", err);
	static const char noise[] = "\x13\x37\xff\xfe~~~\r\n";
	cr_assert_eq(exchange_with(noise, sizeof noise - 1, 200, err, sizeof err), TRACKER_ERR_GARBAGE, "%s", err);
	static char longline[3000];
	memset(longline, 'A', sizeof longline);
	memcpy(longline, "Ver:", 4);
	longline[sizeof longline - 1] = '\n';
	cr_assert_eq(exchange_with(longline, sizeof longline, 500, err, sizeof err), TRACKER_ERR_OVERLONG, "%s", err);
	static const char partial[] = "Ver:03.28.07 Hw:FMB9";
	cr_assert_eq(exchange_with(partial, sizeof partial - 1, 200, err, sizeof err), TRACKER_ERR_PARTIAL, "%s", err);
	cr_assert_eq(exchange_with("", 0, 200, err, sizeof err), TRACKER_ERR_TIMEOUT, "%s", err);
	static const char good[] = "Ver:03.28.07 Hw:FMB920 IMEI:352094087230394\r\n";
	cr_assert_eq(exchange_with(good, sizeof good - 1, 2000, err, sizeof err), TRACKER_OK, "%s", err);
}

Test(probe, missing_port_is_infrastructure_error)
{
	char *argv[] = { (char *)rig_bin(), "probe", "/dev/ttyUSB-does-not-exist", "--db", "/tmp/trackrig-missing-port.db", NULL };
	static char out[4096], err[4096];
	int rc = run(argv, NULL, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 3, "exit %d: %s", rc, err);
	cr_assert(strstr(err, "/dev/ttyUSB-does-not-exist"), "%s", err);
	unlink("/tmp/trackrig-missing-port.db");
	unlink("/tmp/trackrig-missing-port.db-wal");
	unlink("/tmp/trackrig-missing-port.db-shm");
}

Test(cli, help_version_and_usage_errors)
{
	static char out[65536], err[65536];
	char *v[] = { (char *)rig_bin(), "--version", NULL };
	cr_assert_eq(run(v, NULL, out, sizeof out, err, sizeof err), 0);
	cr_assert(strstr(out, "rig (trackrig) "), "%s", out);
	char *h[] = { (char *)rig_bin(), "--help", NULL };
	cr_assert_eq(run(h, NULL, out, sizeof out, err, sizeof err), 0);
	cr_assert(strstr(out, "probe") && strstr(out, "audit") && strstr(out, "exit codes"), "%s", out);
	char *ph[] = { (char *)rig_bin(), "probe", "--help", NULL };
	cr_assert_eq(run(ph, NULL, out, sizeof out, err, sizeof err), 0);
	cr_assert(strstr(out, "usage: rig probe"), "%s", out);
	char *bad[] = { (char *)rig_bin(), "frobnicate", NULL };
	cr_assert_eq(run(bad, NULL, out, sizeof out, err, sizeof err), 2);
	cr_assert(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	char *badopt[] = { (char *)rig_bin(), "probe", "--backend", "usb", "/dev/x", NULL };
	cr_assert_eq(run(badopt, NULL, out, sizeof out, err, sizeof err), 2);
	cr_assert(strstr(err, "--backend 'usb'"), "%s", err);
	char *none[] = { (char *)rig_bin(), NULL };
	cr_assert_eq(run(none, NULL, out, sizeof out, err, sizeof err), 2);
}

/* A slip of the keyboard gets the right word back, once, with exit 2. */
Test(cli, mistyped_command_gets_a_suggestion)
{
	static char out[4096], err[4096];
	char *argv[] = { (char *)rig_bin(), "nighty", NULL };
	cr_assert_eq(run(argv, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "rig: unknown command 'nighty'; did you mean 'nightly'?"), "%s", err);
	char *swapped[] = { (char *)rig_bin(), "pbore", NULL };
	cr_assert_eq(run(swapped, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "did you mean 'probe'?"), "%s", err);
}

Test(cli, mistyped_option_gets_a_suggestion_from_the_commands_own_options)
{
	static char out[4096], err[4096];
	char *argv[] = { (char *)rig_bin(), "run", "--junt", "x", NULL };
	cr_assert_eq(run(argv, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "rig run: unknown option '--junt'; did you mean '--junit'?"), "%s", err);
	cr_assert_null(strstr(err, "unrecognized"), "getopt's own message is not repeated: %s", err);
	/* rack parses argv + 1 (after "check"): the word must still be the typed one */
	char *rack[] = { (char *)rig_bin(), "rack", "check", "--tiemout", "5", NULL };
	cr_assert_eq(run(rack, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "rig rack: unknown option '--tiemout'; did you mean '--timeout'?"), "%s", err);
	char *noval[] = { (char *)rig_bin(), "run", "--junit", NULL };
	cr_assert_eq(run(noval, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "option '--junit' needs a value"), "%s", err);
}

Test(cli, a_word_far_from_every_command_or_option_gets_no_guess)
{
	static char out[4096], err[4096];
	char *argv[] = { (char *)rig_bin(), "frobnicate", NULL };
	cr_assert_eq(run(argv, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "unknown command 'frobnicate' (see rig --help)"), "%s", err);
	cr_assert_null(strstr(err, "did you mean"), "%s", err);
	char *opt[] = { (char *)rig_bin(), "run", "--xyzzy", NULL };
	cr_assert_eq(run(opt, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "unknown option '--xyzzy' (see rig run --help)"), "%s", err);
	cr_assert_null(strstr(err, "did you mean"), "%s", err);
}

/* `rig --help` names every command, each answers its own --help, and demo's
 * line says what demo does (it runs the nightly suite; it once said "probe"). */
Test(cli, help_lists_every_command_and_says_what_it_does)
{
	static char out[65536], err[65536], sub[65536];
	char *h[] = { (char *)rig_bin(), "--help", NULL };
	cr_assert_eq(run(h, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	char *cmds = strstr(out, "commands:\n");
	cr_assert_not_null(cmds, "%s", out);
	int n = 0;
	for (char *line = strchr(cmds, '\n') + 1; strncmp(line, "  ", 2) == 0; line = strchr(line, '\n') + 1) {
		char name[32], want[64];
		cr_assert_eq(sscanf(line, " %31s", name), 1, "%s", line);
		char *hv[] = { (char *)rig_bin(), name, "--help", NULL };
		cr_assert_eq(run(hv, NULL, sub, sizeof sub, err, sizeof err), 0, "%s: %s", name, err);
		snprintf(want, sizeof want, "usage: rig %s", name);
		cr_assert(strstr(sub, want), "rig %s --help: %s", name, sub);
		if (strcmp(name, "demo") == 0) {
			cr_assert(strstr(line, "nightly suite") && !strstr(line, "probe"), "demo: %.*s",
				  (int)(strchr(line, '\n') - line), line);
			cr_assert(strstr(sub, "nightly suite"), "demo usage: %s", sub);
		}
		n++;
	}
	cr_assert_geq(n, 18, "%d commands listed: %s", n, out);
}

Test(cli, ports_lists_through_libserialport)
{
	static char out[65536], err[65536];
	char *argv[] = { (char *)rig_bin(), "ports", "--json", NULL };
	cr_assert_eq(run(argv, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(out[0] == '[' && strstr(out, "]"), "a JSON array: %s", out);
	cr_assert_null(strstr(out, "/dev/pts/"), "ptys are no ports to libserialport: %s", out);
	char *table[] = { (char *)rig_bin(), "ports", NULL };
	cr_assert_eq(run(table, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "PORT") || strstr(out, "no serial ports found"), "%s", out);
	char *bad[] = { (char *)rig_bin(), "ports", "extra", NULL };
	cr_assert_eq(run(bad, NULL, out, sizeof out, err, sizeof err), 2);
}

Test(cli, broken_rack_file_is_a_configuration_error_with_position)
{
	char dir[] = "/tmp/trackrig-cli-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128], db[128];
	snprintf(path, sizeof path, "%s/rack.yaml", dir);
	snprintf(db, sizeof db, "%s/t.db", dir);
	FILE *f = fopen(path, "w");
	fputs("slots:\n  - id: 1\n    console: {port: /dev/x, speed: 9600}\n", f);
	fclose(f);
	char *argv[] = { (char *)rig_bin(), "probe", "--rack", path, "--db", db, NULL };
	static char out[4096], err[4096];
	cr_assert_eq(run(argv, NULL, out, sizeof out, err, sizeof err), 2, "%s", err);
	cr_assert(strstr(err, "rack.yaml:3:29: slots[0].console: unknown key 'speed'"), "%s", err);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(power, off_on_status_through_the_rack_supply_and_audited, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 9), 0);
	char rackfile[4200], db[4200];
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", sr.dir);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[65536], err[65536];
	char *off[] = { (char *)rig_bin(), "power", "2", "off", "--rack", rackfile, "--db", db, "--operator", "qa1", NULL };
	cr_assert_eq(run(off, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	char *st[] = { (char *)rig_bin(), "power", "all", "status", "--rack", rackfile, NULL };
	cr_assert_eq(run(st, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "\n1     on "), "%s", out);
	cr_assert(strstr(out, "\n2     off "), "%s", out);
	/* The tracker behind the supply really lost power: its console is silent. */
	char port[4200];
	simrack_console(&sr, 2, port, sizeof port);
	char *probe[] = { (char *)rig_bin(), "probe", port, "--timeout", "300", "--db", db, NULL };
	cr_assert_eq(run(probe, NULL, out, sizeof out, err, sizeof err), 3, "%s", out);
	char *on[] = { (char *)rig_bin(), "power", "2", "on", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(run(on, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "\n2     on "), "%s", out);
	char *audit[] = { (char *)rig_bin(), "audit", "--db", db, "--json", NULL };
	cr_assert_eq(run(audit, NULL, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "\"power off\"") && strstr(out, "\"power on\"") && strstr(out, "\"qa1\""), "%s", out);
	char *bad[] = { (char *)rig_bin(), "power", "9", "off", "--rack", rackfile, NULL };
	cr_assert_eq(run(bad, NULL, out, sizeof out, err, sizeof err), 2);
	cr_assert(strstr(err, "slot 9 is not in"), "%s", err);
	simrack_stop(&sr);
}
