/*
 * test_simrack_clock.c - simrack's control socket and virtual time
 * (docs/simrack-control.md), the defective power profiles no_return and
 * no_reset_reason, and named profile mixes (--mix).
 *
 * Every test starts its own simrack. No timing is asserted: on a virtual
 * rack nothing happens until the test moves time, and the reply to a move
 * comes after every console line of it is written, so a test reads what it
 * expects at once; deadlines only bound a wait that should never be needed.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "rackctl.h"
#include "support.h"

#define WAIT_MS 10000     /* bound for a reply or a line that is already due */
#define REG_IOUT 11
#define REG_OUTPUT 18

static struct simrack_proc racks[2];
static int ctl_fds[2] = { -1, -1 };
static modbus_t *mb;

static void stop_all(void)
{
	if (mb) {
		modbus_close(mb);
		modbus_free(mb);
		mb = NULL;
	}
	for (int i = 0; i < 2; i++) {
		if (ctl_fds[i] >= 0)
			close(ctl_fds[i]);
		ctl_fds[i] = -1;
		if (racks[i].pid > 0 || racks[i].dir[0])
			simrack_stop(&racks[i]);
	}
}

TestSuite(simrack_clock, .fini = stop_all, .timeout = 120);

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* support.h's simrack_start() passes no options beyond --profiles; this one
 * passes ARGS (NULL-terminated) after --slots/--dir/--seed, with the same
 * guarantees: tied to the test process, ready once rack.yaml exists. */
static void start(struct simrack_proc *p, int slots, unsigned seed, const char *const *args)
{
	char bin[PATH_MAX], yaml[PATH_MAX + 16], nslots[16], nseed[16];
	cr_assert_eq(support_tmpdir(p->dir, sizeof p->dir), 0);
	support_bin("simrack", bin, sizeof bin);
	cr_assert_eq(access(bin, X_OK), 0, "%s: %s", bin, strerror(errno));
	snprintf(nslots, sizeof nslots, "%d", slots);
	snprintf(nseed, sizeof nseed, "%u", seed);
	char *argv[24] = { bin, "--slots", nslots, "--dir", p->dir, "--seed", nseed };
	size_t n = 7;
	for (; args && *args && n < 23; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	p->pid = pid;
	simrack_rackfile(p, yaml, sizeof yaml);
	int64_t end = mono_ms() + WAIT_MS;
	while (access(yaml, F_OK) < 0) {
		int st;
		cr_assert_neq(waitpid(pid, &st, WNOHANG), pid, "simrack exited before writing %s", yaml);
		cr_assert_lt(mono_ms(), end, "no %s after %d ms", yaml, WAIT_MS);
		usleep(5000);
	}
}

static char *rack_yaml(const struct simrack_proc *p)
{
	char path[PATH_MAX + 16];
	char *yaml = support_read_file(simrack_rackfile(p, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	return yaml;
}

/* The rack file's `control:` path, into BUF. */
static void control_path(const struct simrack_proc *p, char *buf, size_t len)
{
	char *yaml = rack_yaml(p);
	const char *c = strstr(yaml, "\ncontrol: ");
	size_t n = c ? strcspn(c + 10, "\n") : 0;
	if (c && n < len) {
		memcpy(buf, c + 10, n);
		buf[n] = '\0';
	}
	free(yaml);
	cr_assert_not_null(c, "rack.yaml has no top-level control: key");
	cr_assert_lt(n, len);
}

static int ctl_connect(const struct simrack_proc *p)
{
	char path[PATH_MAX];
	control_path(p, path, sizeof path);   /* as rack.yaml names it, which this file checks */
	return support_unix_connect(path);
}

static const char *ctl(int fd, const char *req) { return support_ctl(fd, req); }

/* `now`, as a number. */
static uint64_t ctl_now(int fd)
{
	const char *r = ctl(fd, "now");
	cr_assert_eq(strncmp(r, "ok now=", 7), 0, "now: '%s'", r);
	return strtoull(r + 7, NULL, 10);
}

static uint64_t ctl_move(int fd, const char *verb, uint64_t t) { return support_ctl_move(fd, verb, t); }

static int console(const struct simrack_proc *p, int slot)
{
	char path[PATH_MAX + 32];
	int fd = support_tty_open(simrack_console(p, slot, path, sizeof path));
	cr_assert_geq(fd, 0, "cannot open %s", path);
	return fd;
}

/* True when FD has a byte to read right now (poll() also collects bytes
 * still in flight inside the pty). */
static bool readable_now(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	return poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN);
}

/* Appends every byte readable now on FD to BUF (LEN bytes, *USED so far). */
static void drain(int fd, char *buf, size_t len, size_t *used)
{
	while (readable_now(fd)) {
		char chunk[512];
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n <= 0)
			return;
		cr_assert_leq(*used + (size_t)n, len, "console output overflows the test buffer");
		memcpy(buf + *used, chunk, (size_t)n);
		*used += (size_t)n;
	}
}

static void write_line(int fd, const char *cmd)
{
	char line[128];
	int n = snprintf(line, sizeof line, "%s\r\n", cmd);
	cr_assert_eq(write(fd, line, (size_t)n), n, "console write: %s", strerror(errno));
}

/* The TCP port of slot SLOT's supply, from rack.yaml. */
static int supply_port(const struct simrack_proc *p, int slot)
{
	char *yaml = rack_yaml(p);
	char key[32];
	snprintf(key, sizeof key, "  - id: %d\n", slot);
	static const char power[] = "power: {driver: rd60xx, transport: \"tcp://127.0.0.1:";
	const char *s = strstr(yaml, key);
	const char *t = s ? strstr(s, power) : NULL;
	int port = t ? atoi(t + strlen(power)) : 0;
	free(yaml);
	cr_assert_not_null(t, "no slot %d with an rd60xx supply in rack.yaml", slot);
	cr_assert(port > 0 && port < 65536);
	return port;
}

static void supply_connect(const struct simrack_proc *p, int slot)
{
	mb = modbus_new_tcp("127.0.0.1", supply_port(p, slot));
	cr_assert_not_null(mb);
	modbus_set_slave(mb, 1);
	cr_assert_eq(modbus_connect(mb), 0, "modbus connect: %s", modbus_strerror(errno));
}

static void supply_output(int on)
{
	cr_assert_eq(modbus_write_register(mb, REG_OUTPUT, (uint16_t)on), 1, "write output: %s",
		     modbus_strerror(errno));
}

static uint16_t supply_reg(int reg)
{
	uint16_t v;
	cr_assert_eq(modbus_read_registers(mb, reg, 1, &v), 1, "read reg %d: %s", reg,
		     modbus_strerror(errno));
	return v;
}

static const char *const virtual_args[] = { "--virtual", NULL };
/* A healthy agent unit: it says when it has booted (@BOOT, 300 ms). */
static const char *const agent_args[] = { "--virtual", "--profiles", "agent_reference", NULL };

/* ---- the control socket ---- */

Test(simrack_clock, rackfile_names_control_socket_removed_on_exit)
{
	cr_assert_eq(simrack_start(&racks[0], 1, NULL, 1), 0);
	char *yaml = rack_yaml(&racks[0]);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof want, "station: simrack\ncontrol: %s/control.sock\n", racks[0].dir);
	bool found = strstr(yaml, want);
	free(yaml);
	cr_assert(found, "rack.yaml lacks '%s'", want);

	ctl_fds[0] = ctl_connect(&racks[0]);
	const char *r = ctl(ctl_fds[0], "mode");
	cr_assert_eq(strncmp(r, "ok mode=realtime epoch=", 23), 0, "mode: '%s'", r);
	cr_assert(strtoull(r + 23, NULL, 10) > 1600000000000ull, "epoch is not Unix ms: '%s'", r);

	/* Several clients at once, each answered on its own connection. */
	ctl_fds[1] = ctl_connect(&racks[0]);
	cr_assert_str_eq(ctl(ctl_fds[1], "bogus"), "error: unknown request 'bogus'");
	cr_assert_eq(strncmp(ctl(ctl_fds[0], "now"), "ok now=", 7), 0);

	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof sock, "%s/control.sock", racks[0].dir);
	kill(racks[0].pid, SIGTERM);
	int st;
	cr_assert_eq(waitpid(racks[0].pid, &st, 0), racks[0].pid);
	racks[0].pid = 0;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "simrack did not exit cleanly");
	cr_assert_neq(access(sock, F_OK), 0, "%s left behind", sock);
}

Test(simrack_clock, realtime_rack_refuses_to_move_time)
{
	cr_assert_eq(simrack_start(&racks[0], 1, NULL, 1), 0);
	ctl_fds[0] = ctl_connect(&racks[0]);
	cr_assert_str_eq(ctl(ctl_fds[0], "advance 5"), "error: realtime rack: time moves by itself");
	cr_assert_str_eq(ctl(ctl_fds[0], "next 5"), "error: realtime rack: time moves by itself");
}

Test(simrack_clock, virtual_rack_boots_only_when_time_moves)
{
	start(&racks[0], 1, 1, agent_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	const char *r = ctl(ctl_fds[0], "mode");
	cr_assert_eq(strncmp(r, "ok mode=virtual epoch=", 22), 0, "mode: '%s'", r);
	int con = console(&racks[0], 1);
	cr_assert_eq(ctl_now(ctl_fds[0]), 0);
	cr_assert_not(readable_now(con), "the console spoke at virtual time 0");
	cr_assert_eq(ctl_now(ctl_fds[0]), 0, "virtual time moved by itself");

	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 1000), 1000);
	char line[600];
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0, "no @BOOT after advance");
	cr_assert_str_eq(line, "@BOOT bank=A reason=power_on fw=05.01.00_00");
	close(con);
}

/* A Teltonika unit prints no boot line: it is deaf until its boot (5 s,
 * assumed) is over in rack time, then it answers. */
Test(simrack_clock, teltonika_unit_answers_only_once_booted_in_rack_time)
{
	start(&racks[0], 1, 1, virtual_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	int con = console(&racks[0], 1);
	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 4900), 4900);
	write_line(con, "getver");
	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 4950), 4950);
	cr_assert_not(readable_now(con), "the unit answered while booting");
	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 5000), 5000);
	cr_assert_not(readable_now(con), "the unit spoke unasked at its boot");
	char line[600];
	support_console_command(con, "getver", line, sizeof line);
	cr_assert_eq(strncmp(line, "Ver:03.28.07_04 ", 16), 0, "'%s'", line);
	close(con);
}

Test(simrack_clock, next_stops_at_the_next_event)
{
	start(&racks[0], 1, 1, agent_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	int con = console(&racks[0], 1);
	/* agent_reference boots in 300 ms and says so: the only output due. */
	cr_assert_eq(ctl_move(ctl_fds[0], "next", 600000), 300);
	char line[600];
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0, "no @BOOT at 300");
	cr_assert_eq(strncmp(line, "@BOOT ", 6), 0, "'%s'", line);
	/* Nothing else is due: next goes all the way to its limit. */
	cr_assert_eq(ctl_move(ctl_fds[0], "next", 600000), 600000);
	cr_assert_eq(ctl_now(ctl_fds[0]), 600000);
	close(con);
}

Test(simrack_clock, two_hours_pass_and_the_rtc_follows)
{
	start(&racks[0], 1, 1, virtual_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	const char *r = ctl(ctl_fds[0], "mode");
	const char *e = strstr(r, "epoch=");
	cr_assert_not_null(e, "mode: '%s'", r);
	uint64_t epoch = strtoull(e + 6, NULL, 10);
	int con = console(&racks[0], 1);
	ctl_move(ctl_fds[0], "advance", 6000);
	char line[600];
	support_console_command(con, "getver", line, sizeof line);
	cr_assert_eq(strncmp(line, "Ver:", 4), 0, "'%s'", line);

	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 7200000), 7200000);
	support_console_command(con, "getver", line, sizeof line);
	cr_assert_not_null(strstr(line, " Uptime:7200 "), "getver: '%s'", line);
	support_console_command(con, "getinfo", line, sizeof line);
	cr_assert_not_null(strstr(line, " RST:1 "), "one boot in two hours: '%s'", line);

	/* The RTC reads epoch + virtual time, to the second. */
	time_t t = (time_t)((epoch + 7200000) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char want[64];
	snprintf(want, sizeof want, "Date: %04d/%02d/%02d Time: %02d:%02d:%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	support_console_command(con, "getgps", line, sizeof line);
	cr_assert_not_null(strstr(line, want), "getgps '%s' lacks '%s'", line, want);
	close(con);
}

Test(simrack_clock, time_cannot_go_back)
{
	start(&racks[0], 1, 1, virtual_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	ctl_move(ctl_fds[0], "advance", 5000);
	const char *r = ctl(ctl_fds[0], "advance 4999");
	cr_assert_eq(strncmp(r, "error: time cannot go back", 26), 0, "'%s'", r);
	r = ctl(ctl_fds[0], "next 10");
	cr_assert_eq(strncmp(r, "error: time cannot go back", 26), 0, "'%s'", r);
	cr_assert_eq(ctl_now(ctl_fds[0]), 5000);
	/* Standing still is allowed. */
	cr_assert_eq(ctl_move(ctl_fds[0], "advance", 5000), 5000);
}

/* One scripted session on a fresh virtual rack of flaky consoles: commands
 * sent in bursts, time moved by advance and next. Returns every byte the
 * consoles said, slot 1's then slot 2's, in OUT. */
static size_t scripted_session(int i, char *out, size_t len)
{
	static const char *const profiles[] = { "--virtual", "--profiles", "flaky_console", NULL };
	static const char *const burst[] = { "getimeiccid", "getstatus", "getio", "getparam 2001",
					     "setparam 2001:apn.example", "getparam 2001", "nosuch" };
	start(&racks[i], 2, 7, profiles);
	ctl_fds[i] = ctl_connect(&racks[i]);
	int con[2] = { console(&racks[i], 1), console(&racks[i], 2) };
	char said[2][8192];
	size_t used[2] = { 0, 0 };
	uint64_t now = ctl_move(ctl_fds[i], "advance", 1000);
	for (int round = 0; round < 6; round++) {
		for (size_t c = 0; c < sizeof burst / sizeof burst[0]; c++)
			for (int s = 0; s < 2; s++)
				write_line(con[s], burst[c]);
		if (round == 3)
			write_line(con[1], "cpureset");
		/* Step by step through the answers, then a plain advance. */
		for (int step = 0; step < 5; step++)
			now = ctl_move(ctl_fds[i], "next", now + 60000);
		now = ctl_move(ctl_fds[i], "advance", now + 30000);
		for (int s = 0; s < 2; s++)
			drain(con[s], said[s], sizeof said[s], &used[s]);
	}
	cr_assert_leq(used[0] + used[1], len);
	memcpy(out, said[0], used[0]);
	memcpy(out + used[0], said[1], used[1]);
	close(con[0]);
	close(con[1]);
	return used[0] + used[1];
}

Test(simrack_clock, same_seed_same_script_same_bytes)
{
	static char a[16384], b[16384];
	size_t na = scripted_session(0, a, sizeof a);
	size_t nb = scripted_session(1, b, sizeof b);
	/* The script must have made the consoles talk, faults and all. */
	cr_assert_not_null(memmem(a, na, "@BOOT bank=A reason=power_on", 28), "no boot line");
	cr_assert_not_null(memmem(a, na, "@BOOT bank=A reason=cpureset", 28), "no cpureset boot");
	cr_assert_gt(na, 2000, "too little console output (%zu bytes)", na);
	cr_assert_eq(na, nb, "the two racks said %zu and %zu bytes", na, nb);
	size_t i = 0;
	while (i < na && a[i] == b[i])
		i++;
	cr_assert_eq(i, na, "the racks' output differs at byte %zu: '%.40s' vs '%.40s'", i, a + i,
		     b + i);
}

/* ---- defective power profiles ---- */

Test(simrack_clock, no_return_hangs_after_a_power_cut_until_cycled_again)
{
	static const char *const args[] = { "--virtual", "--profiles", "no_return", NULL };
	start(&racks[0], 1, 1, args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	int con = console(&racks[0], 1);
	char line[600];
	uint64_t now = ctl_move(ctl_fds[0], "advance", 2000);
	cr_assert_geq(support_tty_expect(con, "@BOOT", line, sizeof line, WAIT_MS), 0,
		      "no first boot");
	supply_connect(&racks[0], 1);

	supply_output(0);
	supply_output(1);
	now = ctl_move(ctl_fds[0], "advance", now + 60000);
	cr_assert_not(readable_now(con), "the unit spoke after the first power cut");
	cr_assert_gt(supply_reg(REG_IOUT), 0, "a hung unit still draws current");
	write_line(con, "getver");
	now = ctl_move(ctl_fds[0], "advance", now + 5000);
	cr_assert_not(readable_now(con), "a hung unit answered");

	supply_output(0);
	cr_assert_eq(supply_reg(REG_IOUT), 0, "output off, yet current flows");
	supply_output(1);
	ctl_move(ctl_fds[0], "advance", now + 60000);
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0,
		      "no @BOOT after the second power cycle");
	cr_assert_eq(strncmp(line, "@BOOT bank=A reason=power_on ", 29), 0, "'%s'", line);
	close(con);
}

Test(simrack_clock, no_reset_reason_never_says_why)
{
	static const char *const args[] = { "--virtual", "--profiles", "no_reset_reason", NULL };
	start(&racks[0], 1, 1, args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	int con = console(&racks[0], 1);
	char line[600];
	ctl_move(ctl_fds[0], "advance", 2000);
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0, "no @BOOT");
	cr_assert_eq(strncmp(line, "@BOOT ", 6), 0, "'%s'", line);
	cr_assert_null(strstr(line, "reason="), "'%s'", line);
	cr_assert_not_null(strstr(line, " fw="), "'%s'", line);
	support_console_command(con, "getinfo", line, sizeof line);
	cr_assert_eq(strncmp(line, "INI:", 4), 0, "'%s'", line);
	cr_assert_not_null(strstr(line, " RS:0 "), "RS 0: it does not know why: '%s'", line);
	cr_assert_not_null(strstr(line, " RST:1 "), "yet it counts its restarts: '%s'", line);
}

/* ---- mixes ---- */

Test(simrack_clock, mix_lab_fills_eight_slots_without_naming_profiles)
{
	static const char *const args[] = { "--virtual", "--mix", "lab", NULL };
	start(&racks[0], 8, 1, args);
	char *yaml = rack_yaml(&racks[0]);
	int slots = 0;
	for (const char *s = yaml; (s = strstr(s, "\n  - id: ")); s++)
		slots++;
	/* A profile name anywhere but as a key at the start of a line (the
	 * top-level `reference:` position is not the profile). */
	static const char *const names[] = { "reference", "no_return", "no_reset_reason",
					     "flaky_console" };
	const char *named = NULL;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !named; i++)
		for (const char *s = yaml; (s = strstr(s, names[i])) && !named; s++)
			if (s == yaml || s[-1] != '\n')
				named = names[i];
	/* The pattern shows through what the units say they are. */
	bool at200 = strstr(yaml, "model: AT-200"), at300 = strstr(yaml, "model: AT-300"),
	     at100 = strstr(yaml, "model: AT-100");
	free(yaml);
	cr_assert_eq(slots, 8, "rack.yaml has %d slots", slots);
	cr_assert_null(named, "rack.yaml names profile '%s'", named);
	cr_assert(at200, "no no_return unit (AT-200)");
	cr_assert(at300, "no no_reset_reason unit (AT-300)");
	cr_assert(at100, "no flaky_console unit (AT-100)");

	ctl_fds[0] = ctl_connect(&racks[0]);
	ctl_move(ctl_fds[0], "advance", 2000);
	char line[600];
	int con = console(&racks[0], 6);
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0, "slot 6 silent");
	cr_assert_null(strstr(line, "reason="), "slot 6 should be no_reset_reason: '%s'", line);
	close(con);
}

Test(simrack_clock, mix_and_profiles_exclude_each_other)
{
	char dir[PATH_MAX], bin[PATH_MAX], out[2048];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	support_bin("simrack", bin, sizeof bin);
	char *argv[] = { bin, "--slots", "2", "--dir", dir, "--mix", "lab", "--profiles",
			 "reference", NULL };
	int rc = support_run(argv, out, sizeof out);
	char *bad[] = { bin, "--slots", "2", "--dir", dir, "--mix", "nosuch", NULL };
	int rc_bad = support_run(bad, out + strlen(out), sizeof out - strlen(out));
	support_rmtree(dir);
	cr_assert_eq(rc, 2, "--mix with --profiles: exit %d, output: %s", rc, out);
	cr_assert_eq(rc_bad, 2, "unknown mix: exit %d, output: %s", rc_bad, out);
}

/* ---- Modbus framing ---- */

/* Reads exactly LEN bytes from FD within WAIT_MS; returns how many came. */
static size_t read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	int64_t end = mono_ms() + WAIT_MS;
	while (got < len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int left = (int)(end - mono_ms());
		if (left <= 0 || poll(&pf, 1, left) != 1)
			break;
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

Test(simrack_clock, modbus_client_stalling_mid_frame_holds_nobody)
{
	cr_assert_eq(simrack_start(&racks[0], 1, NULL, 1), 0);
	int port = supply_port(&racks[0], 1);
	/* Read holding register 0 (model id), transaction 0x0102, unit 1. */
	static const uint8_t req[] = { 0x01, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01,
				       0x03, 0x00, 0x00, 0x00, 0x01 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	ctl_fds[1] = fd;   /* closed by stop_all */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
	cr_assert_eq(send(fd, req, 5, MSG_NOSIGNAL), 5);   /* half a header, then silence */

	/* Another client is served while the first one stalls... */
	supply_connect(&racks[0], 1);
	cr_assert_eq(supply_reg(0), 60062, "the supply's model id");
	cr_assert_eq(supply_reg(0), 60062, "a second request");

	/* ...and the staller, still connected, gets its answer once it ends
	 * its frame (sent in two more pieces). */
	cr_assert_eq(send(fd, req + 5, 3, MSG_NOSIGNAL), 3, "the staller was dropped");
	cr_assert_eq(supply_reg(REG_OUTPUT), 1, "output on");
	cr_assert_eq(send(fd, req + 8, sizeof req - 8, MSG_NOSIGNAL), (ssize_t)(sizeof req - 8),
		     "the staller was dropped");
	uint8_t rsp[11];
	cr_assert_eq(read_exact(fd, rsp, sizeof rsp), sizeof rsp, "no whole reply for the staller");
	static const uint8_t want[] = { 0x01, 0x02, 0x00, 0x00, 0x00, 0x05, 0x01, 0x03, 0x02,
					0xEA, 0x9E };
	cr_assert_arr_eq(rsp, want, sizeof want, "reply to the stalled request");
}

/* ---- many clients, many waiters (256 slots and the rig's own threads) ---- */

#define MANY_CLIENTS 64

Test(simrack_clock, control_socket_serves_every_client_that_connects)
{
	start(&racks[0], 1, 1, virtual_args);
	signal(SIGPIPE, SIG_IGN);   /* a client turned away fails its assertion, not the process */
	int fds[MANY_CLIENTS];
	for (int i = 0; i < MANY_CLIENTS; i++)
		fds[i] = ctl_connect(&racks[0]);
	/* Every one of them answered, the last connected first. */
	for (int i = MANY_CLIENTS - 1; i >= 0; i--) {
		const char *r = ctl(fds[i], "now");
		cr_assert_eq(strncmp(r, "ok now=", 7), 0, "client %d of %d: '%s'", i + 1, MANY_CLIENTS, r);
	}
	for (int i = 0; i < MANY_CLIENTS; i++)
		close(fds[i]);
}

/* Open sockets of this process (the kept control connection is one). */
static int open_sockets(void)
{
	int n = 0;
	char fdpath[64], target[128];
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
		ssize_t k = readlink(fdpath, target, sizeof target - 1);
		if (k > 0) {
			target[k] = '\0';
			n += strncmp(target, "socket:", 7) == 0;
		}
	}
	return n;
}

struct asker {
	const char *path;
	int slot, failed;
	char reply[200];
};

static void *asker_main(void *arg)
{
	struct asker *a = arg;
	for (int i = 0; i < 6; i++) {
		char req[64];
		snprintf(req, sizeof req, "datacap %d %d 86400", a->slot, 4000 + i);
		if (rackctl_request(a->path, req, a->reply, sizeof a->reply) != 0 ||
		    strncmp(a->reply, "ok slot=", 8) != 0) {
			a->failed = i + 1;
			break;
		}
	}
	return NULL;
}

Test(simrack_clock, rackctl_from_many_threads_on_one_kept_connection)
{
	start(&racks[0], 4, 1, virtual_args);
	char path[PATH_MAX];
	control_path(&racks[0], path, sizeof path);
	int before = open_sockets();
	static struct asker a[MANY_CLIENTS];
	pthread_t th[MANY_CLIENTS];
	for (int i = 0; i < MANY_CLIENTS; i++) {
		a[i] = (struct asker){ .path = path, .slot = i % 4 + 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, asker_main, &a[i]), 0);
	}
	for (int i = 0; i < MANY_CLIENTS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < MANY_CLIENTS; i++)
		cr_assert_eq(a[i].failed, 0, "thread %d, request %d: %s", i + 1, a[i].failed, a[i].reply);
	/* 384 requests, one connection, still open for the next. */
	cr_assert_eq(open_sockets(), before + 1, "%d sockets open after the requests, %d before", open_sockets(),
		     before);
	/* The rack's refusal is its answer, not a lost connection. */
	char reply[200];
	cr_assert_eq(rackctl_request(path, "datacap 9 1 1", reply, sizeof reply), -1);
	cr_assert_str_eq(reply, "error: no slot 9 (1..4)");
	cr_assert_eq(rackctl_request(path, "datacap 1 off", reply, sizeof reply), 0, "%s", reply);
	rackctl_close();
	cr_assert_eq(open_sockets(), before);
}

#define SLEEPERS 300   /* more than 256 slots' threads */

struct sleeper {
	rig_clock *clk;
	int64_t at[2];     /* two deadlines, one after the other */
	int64_t woke[2];   /* clock_now() when each sleep returned */
	int rc[2];
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	for (int k = 0; k < 2; k++) {
		s->rc[k] = clock_sleep_until(s->clk, s->at[k]);
		s->woke[k] = clock_now(s->clk);
	}
	clock_leave(s->clk);
	return NULL;
}

Test(simrack_clock, three_hundred_sleepers_each_wake_at_their_own_time)
{
	start(&racks[0], 1, 1, virtual_args);
	char path[PATH_MAX], err[300];
	control_path(&racks[0], path, sizeof path);
	rig_clock *clk;
	cr_assert_eq(clock_open_rack(path, &clk, err, sizeof err), 0, "%s", err);
	cr_assert(clock_is_virtual(clk));
	int64_t t0 = clock_now(clk);
	static struct sleeper s[SLEEPERS];
	static pthread_t th[SLEEPERS];
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* Everyone joins before anyone waits, as the engine does. */
	for (int i = 0; i < SLEEPERS; i++)
		clock_join(clk);
	for (int i = 0; i < SLEEPERS; i++) {
		/* Deadlines shared by several threads and spread over an hour. */
		s[i] = (struct sleeper){ .clk = clk, .at = { t0 + 1000 + (i % 37) * 977, t0 + 3600000 - (i % 11) * 60000 } };
		cr_assert_eq(pthread_create(&th[i], &attr, sleeper_main, &s[i]), 0);
	}
	pthread_attr_destroy(&attr);
	for (int i = 0; i < SLEEPERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SLEEPERS; i++)
		for (int k = 0; k < 2; k++) {
			cr_assert_eq(s[i].rc[k], 0, "sleeper %d, sleep %d: %s", i, k + 1, clock_error(clk));
			/* Time moves only to a deadline: each wakes exactly at its own. */
			cr_assert_eq(s[i].woke[k], s[i].at[k], "sleeper %d, sleep %d: woke at %" PRId64 ", not %" PRId64,
				     i, k + 1, s[i].woke[k], s[i].at[k]);
		}
	cr_assert_eq(ctl_now(ctl_fds[0] = ctl_connect(&racks[0])), (uint64_t)(t0 + 3600000),
		     "the rack's time is not the last deadline");
	clock_close(clk);
}

/* The count of output in a time reply ("out=K"). */
static long long reply_out(const char *r)
{
	const char *p = strstr(r, " out=");
	cr_assert_not_null(p, "no out= in '%s'", r);
	return strtoll(p + 5, NULL, 10);
}

Test(simrack_clock, time_replies_count_the_output_the_rig_can_see)
{
	start(&racks[0], 1, 1, agent_args);
	ctl_fds[0] = ctl_connect(&racks[0]);
	int con = console(&racks[0], 1);
	/* Before the boot (at 300 ms) nothing is said: the count stays. */
	long long k0 = reply_out(ctl(ctl_fds[0], "advance 100"));
	cr_assert_eq(reply_out(ctl(ctl_fds[0], "advance 200")), k0, "output counted while the unit is silent");
	/* next stops at the boot line, and the count says there was output. */
	const char *r = ctl(ctl_fds[0], "next 600000");
	cr_assert_eq(strncmp(r, "ok now=300 ", 11), 0, "'%s'", r);
	cr_assert_gt(reply_out(r), k0, "the @BOOT line is not counted: '%s'", r);
	char line[600];
	cr_assert_geq(support_tty_readline(con, line, sizeof line, WAIT_MS), 0, "no @BOOT at 300");
	close(con);
}
