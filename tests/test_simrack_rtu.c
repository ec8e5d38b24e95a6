/*
 * test_simrack_rtu.c - simrack --modbus rtu: every supply and the relay
 * board on Modbus RTU, each bus a socat pty pair that simrack starts, serves
 * from its event loop and stops.
 *
 * Clients are plain libmodbus RTU contexts on the device ends rack.yaml
 * names. Every test starts its own simrack in its own dir. No timing is
 * asserted: deadlines only bound how long a test waits for a state or line.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <modbus.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define SILENT_MS 1500    /* how long a dead console is given to (wrongly) answer */
#define STATE_MS 5000     /* poll bound for a register to show a new state */
#define STOP_MS 10000     /* bound for simrack to exit on SIGTERM */

#define REG_MODEL 0
#define REG_VSET 8
#define REG_IOUT 11
#define REG_OUTPUT 18

static struct simrack_proc rack;
static modbus_t *mb;

static void stop_all(void)
{
	if (mb) {
		modbus_close(mb);
		modbus_free(mb);
		mb = NULL;
	}
	if (rack.pid > 0 || rack.dir[0])
		simrack_stop(&rack);
}

TestSuite(simrack_rtu, .fini = stop_all, .timeout = 90);

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(int slots)
{
	static const char *const rtu[] = { "--modbus", "rtu", NULL };
	cr_assert_eq(simrack_start_args(&rack, slots, 1, rtu), 0, "simrack --modbus rtu did not start");
}

static char *rack_yaml(void)
{
	char path[PATH_MAX + 16];
	char *yaml = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	return yaml;
}

/* The device path and baud of the first `"rtu:PATH@BAUD"` at or after AT. */
static void rtu_after(const char *at, char *path, size_t len, int *baud)
{
	const char *t = strstr(at, "\"rtu:");
	cr_assert_not_null(t, "no rtu transport after '%.60s'", at);
	t += 5;
	const char *end = strchr(t, '"');
	const char *b = memchr(t, '@', end ? (size_t)(end - t) : 0);
	cr_assert(end && b && (size_t)(b - t) < len, "bad rtu transport '%.80s'", t);
	memcpy(path, t, (size_t)(b - t));
	path[b - t] = '\0';
	*baud = atoi(b + 1);
}

/* Slot SLOT's supply device path (and baud), from rack.yaml. */
static void supply_path(int slot, char *path, size_t len, int *baud)
{
	char *yaml = rack_yaml(), head[32];
	snprintf(head, sizeof head, "  - id: %d\n", slot);
	const char *at = strstr(yaml, head);
	cr_assert_not_null(at, "no slot %d in rack.yaml", slot);
	at = strstr(at, "    power: {driver: rd60xx, transport: ");
	cr_assert_not_null(at, "slot %d names no rd60xx supply", slot);
	rtu_after(at, path, len, baud);
	free(yaml);
}

static void board_path(char *path, size_t len, int *baud)
{
	char *yaml = rack_yaml();
	const char *at = strstr(yaml, "\nboards:\n  - name: relays\n    driver: coil\n");
	cr_assert_not_null(at, "no coil board 'relays' in:\n%s", yaml);
	rtu_after(at, path, len, baud);
	free(yaml);
}

/* An RTU client on PATH, slave 1, 1 s response timeout. */
static modbus_t *client(const char *path, int baud)
{
	mb = modbus_new_rtu(path, baud, 'N', 8, 1);
	cr_assert_not_null(mb, "modbus_new_rtu %s: %s", path, modbus_strerror(errno));
	cr_assert_eq(modbus_connect(mb), 0, "open %s: %s", path, modbus_strerror(errno));
	modbus_set_slave(mb, 1);
	modbus_set_response_timeout(mb, 1, 0);
	return mb;
}

static modbus_t *supply_client(int slot)
{
	char path[PATH_MAX];
	int baud;
	supply_path(slot, path, sizeof path, &baud);
	return client(path, baud);
}

static uint16_t reg(modbus_t *c, int addr)
{
	uint16_t v;
	cr_assert_eq(modbus_read_registers(c, addr, 1, &v), 1, "read register %d: %s", addr,
		     modbus_strerror(errno));
	return v;
}

static void set_reg(modbus_t *c, int addr, uint16_t v)
{
	cr_assert_eq(modbus_write_register(c, addr, v), 1, "write register %d: %s", addr,
		     modbus_strerror(errno));
}

static void wait_reg(modbus_t *c, int addr, uint16_t want)
{
	int64_t end = now_ms() + STATE_MS;
	uint16_t got;
	do {
		got = reg(c, addr);
		if (got == want)
			return;
		usleep(20000);
	} while (now_ms() < end);
	cr_assert_fail("register %d stayed %u (wanted %u)", addr, got, want);
}

/* Pids of socat processes whose command line or working directory names
 * DIR, into PIDS (at most MAX). Returns how many. */
static int socats_of(const char *dir, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	int n = 0;
	size_t dl = strlen(dir);
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid <= 0)
			continue;
		char p[64], cmd[4096], cwd[PATH_MAX];
		snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		size_t len = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
		for (size_t i = 0; i < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[len] = '\0';
		const char *base = strrchr(cmd, '/');
		bool is_socat = strncmp(cmd, "socat ", 6) == 0 ||
				(base && strncmp(base, "/socat ", 7) == 0 && base < strchr(cmd, ' '));
		if (!is_socat)
			continue;
		snprintf(p, sizeof p, "/proc/%d/cwd", (int)pid);
		ssize_t cl = readlink(p, cwd, sizeof cwd - 1);
		cwd[cl > 0 ? cl : 0] = '\0';
		if (strstr(cmd, dir) || strncmp(cwd, dir, dl) == 0)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

Test(simrack_rtu, rack_file_names_rtu_transports_that_exist)
{
	start(2);
	char *yaml = rack_yaml();
	cr_expect_null(strstr(yaml, "tcp://"), "a TCP transport left in:\n%s", yaml);
	free(yaml);
	char path[PATH_MAX], want[PATH_MAX + 32];
	int baud;
	struct stat st;
	board_path(path, sizeof path, &baud);
	snprintf(want, sizeof want, "%s/relays", rack.dir);
	cr_expect_str_eq(path, want);
	cr_expect_eq(baud, 9600);
	cr_expect_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_expect(S_ISCHR(st.st_mode), "%s is no tty", path);
	for (int k = 1; k <= 2; k++) {
		supply_path(k, path, sizeof path, &baud);
		snprintf(want, sizeof want, "%s/slot%d/supply", rack.dir, k);
		cr_expect_str_eq(path, want);
		cr_expect_eq(baud, 115200);
		cr_expect_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
		cr_expect(S_ISCHR(st.st_mode), "%s is no tty", path);
	}
}

Test(simrack_rtu, supply_reads_rd6006_over_rtu)
{
	start(2);
	modbus_t *c = supply_client(2);
	cr_expect_eq(reg(c, REG_MODEL), 60062);
	cr_expect_eq(reg(c, REG_VSET), 1200);
	uint16_t r[3];
	cr_assert_eq(modbus_read_registers(c, 0, 3, r), 3, "%s", modbus_strerror(errno));
	cr_expect_eq(r[2], 10002, "slot 2's serial");
}

Test(simrack_rtu, output_register_kills_and_reboots_tracker)
{
	start(1);
	char line[600];
	int fd = support_console_booted(&rack, 1, line, sizeof line);
	modbus_t *c = supply_client(1);
	cr_assert_neq(reg(c, REG_IOUT), 0, "a booted tracker draws nothing");

	set_reg(c, REG_OUTPUT, 0);
	wait_reg(c, REG_IOUT, 0);
	int n = support_tty_command(fd, "getver", line, sizeof line, SILENT_MS, false);
	cr_assert_lt(n, 0, "a dead tracker answered '%s'", line);

	set_reg(c, REG_OUTPUT, 1);
	cr_assert_eq(support_console_up(fd, line, sizeof line, SUPPORT_BOOT_MS), 0,
		     "no answer after the output came back");
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_expect(strstr(line, " RST:2 ") && strstr(line, " RS:5 "), "a second boot, on power: '%s'", line);
	close(fd);
}

Test(simrack_rtu, other_unit_gets_no_answer)
{
	start(1);
	modbus_t *c = supply_client(1);
	uint16_t v = 0;
	modbus_set_slave(c, 2);
	errno = 0;
	cr_expect_eq(modbus_read_registers(c, REG_MODEL, 1, &v), -1, "unit 2 answered (%u)", v);
	cr_expect_eq(errno, ETIMEDOUT, "unit 2: %s, not a timeout", modbus_strerror(errno));
	modbus_set_slave(c, 1);   /* the line still works for its own unit */
	cr_expect_eq(reg(c, REG_MODEL), 60062);
}

Test(simrack_rtu, coil_board_switches_ignition)
{
	start(1);
	char line[600];
	int fd = support_console_booted(&rack, 1, line, sizeof line);
	char path[PATH_MAX];
	int baud;
	board_path(path, sizeof path, &baud);
	modbus_t *c = client(path, baud);
	uint8_t coils[3];
	cr_assert_eq(modbus_read_bits(c, 0, 3, coils), 3, "%s", modbus_strerror(errno));
	cr_expect_eq(coils[0], 0, "ignition starts off");
	cr_expect_eq(coils[1], 1, "GNSS antenna starts connected");
	cr_assert_eq(modbus_write_bit(c, 0, 1), 1, "%s", modbus_strerror(errno));
	/* A Teltonika unit prints nothing: its ignition input tells. */
	support_console_command(fd, "readio 239", line, sizeof line);
	cr_expect_str_eq(line, "IO ID:239 Value:1");
	cr_assert_eq(modbus_read_bits(c, 0, 1, coils), 1, "%s", modbus_strerror(errno));
	cr_expect_eq(coils[0], 1);
	close(fd);
}

Test(simrack_rtu, sigterm_exits_zero_and_stops_every_socat)
{
	start(2);
	pid_t before[16];
	int n = socats_of(rack.dir, before, 16);
	cr_assert_eq(n, 3, "expected 3 socat buses (2 supplies, 1 board) of %s, found %d", rack.dir, n);

	cr_assert_eq(kill(rack.pid, SIGTERM), 0);
	int st = 0;
	int64_t end = now_ms() + STOP_MS;
	pid_t w;
	while ((w = waitpid(rack.pid, &st, WNOHANG)) == 0 && now_ms() < end)
		usleep(10000);
	cr_assert_eq(w, rack.pid, "simrack did not exit on SIGTERM");
	rack.pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "simrack exit status 0x%x", (unsigned)st);

	pid_t after[16];
	int m = socats_of(rack.dir, after, 16);
	cr_expect_eq(m, 0, "%d socat process(es) of %s outlived simrack (pid %d)", m, rack.dir,
		     m ? (int)after[0] : 0);
	char path[PATH_MAX + 32];
	struct stat st2;
	snprintf(path, sizeof path, "%s/relays", rack.dir);
	cr_expect_neq(lstat(path, &st2), 0, "%s left behind", path);
	snprintf(path, sizeof path, "%s/slot1", rack.dir);
	cr_expect_neq(lstat(path, &st2), 0, "%s left behind", path);
}

Test(simrack_rtu, missing_socat_exits_1_with_message)
{
	char dir[PATH_MAX], bin[PATH_MAX], out[4096] = "";
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	char rackdir[PATH_MAX + 8];
	snprintf(rackdir, sizeof rackdir, "%s/rack", dir);
	support_bin("simrack", bin, sizeof bin);
	char *abs = realpath(bin, NULL);
	cr_assert_not_null(abs, "%s: %s", bin, strerror(errno));
	setenv("PATH", dir, 1);   /* an empty dir: no socat on PATH */
	char *argv[] = { abs, "--slots", "1", "--dir", rackdir, "--modbus", "rtu", NULL };
	int rc = support_run(argv, out, sizeof out);
	free(abs);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "socat"), "no word of socat in: %s", out);
	struct stat st;
	cr_expect_neq(stat(rackdir, &st), 0, "rack dir made anyway");
	support_rmtree(dir);
}

Test(simrack_rtu, bad_modbus_value_is_usage_error)
{
	char bin[PATH_MAX], out[4096] = "";
	support_bin("simrack", bin, sizeof bin);
	char *argv[] = { bin, "--slots", "1", "--dir", "/nonexistent/x", "--modbus", "serial", NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_expect_eq(rc, 2, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "--modbus"), "%s", out);
}
