/*
 * test_simrack.c - the simulated rack as the rig sees it: files in the rack
 * dir and lines on each console (docs/console-protocol.md).
 *
 * Every test starts its own simrack in its own temp dir. No timing is
 * asserted: deadlines only bound how long a test waits for a line.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ident.h"
#include "support.h"

#define SLOW_MS 10000     /* flaky answers come up to 2.5 s late, queued */

#define TELTONIKA_TAC "35209408"
/* A real FMB's getver: no field padded, no serial number. */
#define VER_RE "^Ver:([^ ]+) GPS:[^ ]+ Hw:([^ ]+) Mod:[0-9]+ IMEI:([0-9]+) " \
	"Init:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2} Uptime:[0-9]+ BL:[^ ]+$"
/* An agent unit's: the same, then its extensions SN and Rev. */
#define AGENT_VER_RE "^Ver:([^ ]+) GPS:[^ ]+ Hw:([^ ]+) Mod:[0-9]+ IMEI:([0-9]+) " \
	"Init:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2} Uptime:[0-9]+ BL:[^ ]+ SN:([0-9]+) Rev:[^ ]+$"
/* A real FMB's getinfo, field for field (RST restart counter, RS reset source). */
#define INFO_RE "^INI:[0-9]{4}/[0-9]{1,2}/[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2} RTC:[0-9]{4}/[0-9]{1,2}/[0-9]{1,2} " \
	"[0-9]{1,2}:[0-9]{1,2} RST:([0-9]+) ERR:[0-9]+ SR:[0-9]+ BR:[0-9]+ CF:[0-9]+ FG:[0-9]+ FL:[0-9]+ UT:[0-9]+ " \
	"SMS:[0-9]+ NOGPS:[0-9]+:[0-9]+ GPS:[0-4] SAT:[0-9]+ RS:([0-6]) MD:[0-5] RF:[0-9]+$"
#define IMEICCID_RE "^IMEI: ([0-9]{15}) ICCID: ([0-9]{19,20})$"
#define BOOT_RE "^@BOOT bank=A reason=([a-z_]+) fw=[^ ]+$"

/* Racks of the running test, stopped by fini even when an assertion fails. */
static struct simrack_proc racks[3];

static void stop_all(void)
{
	for (size_t i = 0; i < sizeof racks / sizeof racks[0]; i++)
		if (racks[i].pid > 0 || racks[i].dir[0])
			simrack_stop(&racks[i]);
}

TestSuite(simrack, .fini = stop_all, .timeout = 90);

static struct simrack_proc *start(int i, int slots, const char *profiles, unsigned seed)
{
	cr_assert_eq(simrack_start(&racks[i], slots, profiles, seed), 0, "simrack did not start");
	return &racks[i];
}

/* Stops rack I and asserts it went cleanly (exit 0: no sanitizer report). */
static void stop(int i)
{
	cr_assert_eq(simrack_stop(&racks[i]), 0, "simrack did not stop cleanly");
}

/* Matches S against extended regex RE; on a match copies groups 1..GROUPS
 * into OUT. */
static bool match(const char *re, const char *s, char out[][64], size_t groups)
{
	regex_t rx;
	regmatch_t m[8];
	cr_assert_eq(regcomp(&rx, re, REG_EXTENDED), 0, "bad regex %s", re);
	bool ok = regexec(&rx, s, 8, m, 0) == 0;
	regfree(&rx);
	for (size_t g = 1; ok && g <= groups; g++) {
		int n = (int)(m[g].rm_eo - m[g].rm_so);
		snprintf(out[g - 1], 64, "%.*s", n, s + m[g].rm_so);
	}
	return ok;
}

/* Opens slot SLOT's console and waits for its @BOOT line (into BOOT). */
struct expect {
	char imei[16], iccid[21], serial[11];
};

/* The expected identity of SLOT as rack.yaml states it. */
static struct expect rack_expect(const struct simrack_proc *p, int slot)
{
	char path[PATH_MAX + 16], head[32];
	char *yaml = support_read_file(simrack_rackfile(p, path, sizeof path));
	cr_assert_not_null(yaml);
	snprintf(head, sizeof head, "  - id: %d\n", slot);
	const char *at = strstr(yaml, head);
	cr_assert_not_null(at, "no slot %d in rack.yaml", slot);
	at = strstr(at, "expect: {");
	cr_assert_not_null(at, "no expect for slot %d", slot);
	struct expect e = { .serial = "" };
	/* The serial only for a unit whose console tells it (agent). */
	int n = sscanf(at, "expect: {imei: \"%15[0-9]\", iccid: \"%20[0-9]\", serial: \"%10[0-9]\"}",
		       e.imei, e.iccid, e.serial);
	free(yaml);
	cr_assert_geq(n, 2, "slot %d: expect line not parsed", slot);
	return e;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

Test(simrack, rack_file_names_consoles_not_profiles)
{
	struct simrack_proc *p = start(0, 4, "reference,flaky_console", 1);
	char path[PATH_MAX + 16], dir[PATH_MAX];
	cr_assert_not_null(realpath(p->dir, dir));
	char *yaml = support_read_file(simrack_rackfile(p, path, sizeof path));
	cr_assert_not_null(yaml);

	cr_expect(strncmp(yaml, "# Rack written by simrack (seed 1)", 34) == 0, "%s", yaml);
	cr_expect(strstr(yaml, "\nstation: simrack\n"));
	cr_expect(strstr(yaml, "\nreference: {lat: 54.681297, lon: 25.274292, alt: 106.0}\n"));
	cr_expect_eq(count(yaml, "\n  - id: "), 4, "%s", yaml);
	/* The rig must learn a unit's behaviour on the wire, never by name. */
	cr_expect_eq(count(yaml, "flaky_console"), 0, "%s", yaml);
	cr_expect_eq(count(yaml, "profile"), 0, "%s", yaml);
	cr_expect_eq(count(yaml, "reference"), 1, "only the station's reference key: %s", yaml);

	for (int k = 1; k <= 4; k++) {
		char want[3 * PATH_MAX], link[PATH_MAX + 32], target[64];
		snprintf(link, sizeof link, "%s/slot%d/console", dir, k);
		snprintf(want, sizeof want, "  - id: %d\n    console: {port: %s, baud: 115200}\n"
			 "    vendor: %s\n    model: %s\n    protocol: %s\n", k, link,
			 k == 1 ? "Teltonika" : "Acme", k == 1 ? "FMB920" : "AT-100", k == 1 ? "teltonika" : "agent");
		cr_expect(strstr(yaml, want), "slot %d block missing:\n%s\nin:\n%s", k, want, yaml);
		ssize_t n = readlink(link, target, sizeof target - 1);
		cr_assert_gt(n, 0, "%s is not a symlink", link);
		target[n] = '\0';
		cr_expect(strncmp(target, "/dev/pts/", 9) == 0, "%s -> %s", link, target);
		struct expect e = rack_expect(p, k);
		cr_expect(ident_imei_valid(e.imei), "slot %d imei %s", k, e.imei);
		cr_expect(ident_iccid_valid(e.iccid), "slot %d iccid %s", k, e.iccid);
		/* A Teltonika unit's serial is on its label, not its console. */
		cr_expect_eq(strlen(e.serial), k == 1 ? 0 : 10, "slot %d serial '%s'", k, e.serial);
	}
	free(yaml);
	stop(0);
}

Test(simrack, getver_gives_valid_imei_per_slot)
{
	struct simrack_proc *p = start(0, 4, NULL, 3);
	char imeis[4][64];
	for (int k = 1; k <= 4; k++) {
		char line[600], boot[600], g[4][64];
		int fd = support_console_booted(p, k, boot, sizeof boot);
		support_console_command(fd, "getver", line, sizeof line);
		close(fd);
		cr_assert(match(VER_RE, line, g, 3), "slot %d: getver answer '%s'", k, line);
		struct expect e = rack_expect(p, k);
		cr_expect_str_eq(g[1], "FMB920");
		cr_expect(ident_imei_valid(g[2]), "slot %d: IMEI %s fails Luhn", k, g[2]);
		cr_expect(strncmp(g[2], TELTONIKA_TAC, 8) == 0, "slot %d: IMEI %s, TAC not %s", k,
			  g[2], TELTONIKA_TAC);
		cr_expect_str_eq(g[2], e.imei, "slot %d: wire and rack.yaml disagree", k);
		snprintf(imeis[k - 1], sizeof imeis[0], "%s", g[2]);
	}
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			cr_expect_str_neq(imeis[a], imeis[b], "slots %d and %d share an IMEI", a + 1, b + 1);
	stop(0);
}

Test(simrack, getimeiccid_gives_valid_iccid)
{
	struct simrack_proc *p = start(0, 2, NULL, 5);
	for (int k = 1; k <= 2; k++) {
		char line[600], boot[600], g[2][64], v[4][64];
		int fd = support_console_booted(p, k, boot, sizeof boot);
		support_console_command(fd, "getimeiccid", line, sizeof line);
		cr_assert(match(IMEICCID_RE, line, g, 2), "slot %d: '%s'", k, line);
		cr_expect(ident_imei_valid(g[0]), "IMEI %s", g[0]);
		cr_expect(ident_iccid_valid(g[1]), "ICCID %s", g[1]);
		struct expect e = rack_expect(p, k);
		cr_expect_str_eq(g[1], e.iccid);
		support_console_command(fd, "getver", line, sizeof line);
		cr_assert(match(VER_RE, line, v, 3), "'%s'", line);
		cr_expect_str_eq(v[2], g[0], "getver and getimeiccid disagree on the IMEI");
		close(fd);
	}
	stop(0);
}

/* getimeiccid of SLOT on rack P. */
static void identity_of(const struct simrack_proc *p, int slot, char *out, size_t len)
{
	char boot[600];
	int fd = support_console_booted(p, slot, boot, sizeof boot);
	support_console_command(fd, "getimeiccid", out, len);
	close(fd);
}

Test(simrack, identities_stable_per_seed)
{
	struct simrack_proc *a = start(0, 2, NULL, 42);
	struct simrack_proc *b = start(1, 2, NULL, 42);
	struct simrack_proc *c = start(2, 2, NULL, 43);
	for (int k = 1; k <= 2; k++) {
		char ia[600], ib[600], ic[600], ga[2][64], gc[2][64];
		identity_of(a, k, ia, sizeof ia);
		identity_of(b, k, ib, sizeof ib);
		identity_of(c, k, ic, sizeof ic);
		cr_assert(match(IMEICCID_RE, ia, ga, 2), "'%s'", ia);
		cr_assert(match(IMEICCID_RE, ic, gc, 2), "'%s'", ic);
		cr_expect_str_eq(ia, ib, "slot %d: same seed, different identity", k);
		cr_expect_str_neq(ga[0], gc[0], "slot %d: seeds 42 and 43 give the same IMEI", k);
		cr_expect_str_neq(ga[1], gc[1], "slot %d: seeds 42 and 43 give the same ICCID", k);
		struct expect ea = rack_expect(a, k), eb = rack_expect(b, k);
		cr_expect_str_eq(ea.serial, eb.serial);
	}
	stop(0);
	stop(1);
	stop(2);
}

/* A real FMB prints nothing unasked: no boot line, no event line, ever. */
Test(simrack, teltonika_unit_says_nothing_unasked)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char path[PATH_MAX + 32], line[600], g[2][64];
	int fd = support_tty_open(simrack_console(p, 1, path, sizeof path));
	cr_assert_geq(fd, 0);
	/* Booted (rack.yaml is written after the boots), yet silent. */
	cr_expect_lt(support_tty_readline(fd, line, sizeof line, 1000), 0, "unasked line '%s'", line);
	cr_assert_geq(support_tty_command(fd, "getver", line, sizeof line, SUPPORT_ANSWER_MS, false), 0);
	cr_expect(match(VER_RE, line, g, 2), "'%s'", line);
	cr_expect_null(strstr(line, "SN:"), "a real FMB's getver has no serial: '%s'", line);
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_assert(match(INFO_RE, line, g, 2), "getinfo is not an FMB's: '%s'", line);
	cr_expect_str_eq(g[0], "1", "RST counts the first boot: '%s'", line);
	cr_expect_str_eq(g[1], "5", "RS 5: power on: '%s'", line);
	/* No extension commands: fota is unknown, as to a real FMB. */
	support_console_command(fd, "fota status", line, sizeof line);
	cr_expect_str_eq(line, "ERROR: unknown command");
	support_console_command(fd, "fota http://127.0.0.1:1/x.fw", line, sizeof line);
	cr_expect_str_eq(line, "ERROR: unknown command");
	/* Nothing after its answers either. */
	cr_expect_lt(support_tty_readline(fd, line, sizeof line, 300), 0, "unasked line '%s'", line);
	close(fd);
	stop(0);
}

Test(simrack, agent_boot_event_comes_before_answers)
{
	struct simrack_proc *p = start(0, 1, "agent_reference", 1);
	char path[PATH_MAX + 32], line[600], g[4][64];
	int fd = support_tty_open(simrack_console(p, 1, path, sizeof path));
	cr_assert_geq(fd, 0);
	/* The very first line the console ever says is the boot event. */
	cr_assert_geq(support_tty_readline(fd, line, sizeof line, SUPPORT_BOOT_MS), 0, "no line at all");
	cr_assert(match(BOOT_RE, line, g, 1), "first line '%s' is not @BOOT", line);
	cr_expect_str_eq(g[0], "power_on");
	cr_assert_geq(support_tty_command(fd, "getver", line, sizeof line, SUPPORT_ANSWER_MS, false), 0);
	cr_expect(match(AGENT_VER_RE, line, g, 4), "'%s'", line);
	struct expect e = rack_expect(p, 1);
	cr_expect_str_eq(g[3], e.serial, "getver SN: and rack.yaml disagree");
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_expect(strncmp(line, "INI:", 4) == 0, "'%s'", line);
	cr_expect(strstr(line, " RST:1 ") && strstr(line, " RS:5 ") && strstr(line, " TTFF:"), "'%s'", line);
	support_console_command(fd, "fota status", line, sizeof line);
	cr_expect_str_eq(line, "FOTA:idle bank=A pending=- bytes=0/0");
	close(fd);
	stop(0);
}

/* Waits until the unit on FD answers again after a reset (into LINE). */
static void answers_again(int fd, char *line, size_t len)
{
	cr_assert_eq(support_console_up(fd, line, len, SUPPORT_BOOT_MS), 0, "no answer after the reset");
}

Test(simrack, cpureset_counts_a_restart_with_its_source)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char line[600], boot[600], g[2][64];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	support_console_command(fd, "cpureset", line, sizeof line);
	cr_expect_str_eq(line, "Resetting");
	answers_again(fd, line, sizeof line);
	cr_expect(strncmp(line, "Ver:", 4) == 0, "a Teltonika unit prints no boot line: '%s'", line);
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_assert(match(INFO_RE, line, g, 2), "'%s'", line);
	cr_expect_str_eq(g[0], "2", "the restart counter counts the reset: '%s'", line);
	cr_expect_str_eq(g[1], "4", "RS 4: software reset: '%s'", line);
	close(fd);
	stop(0);
}

Test(simrack, agent_cpureset_reboots_with_reason)
{
	struct simrack_proc *p = start(0, 1, "agent_reference", 1);
	char line[600], boot[600], g[1][64];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	support_console_command(fd, "cpureset", line, sizeof line);
	cr_expect_str_eq(line, "Resetting");
	cr_assert_geq(support_tty_readline(fd, line, sizeof line, SUPPORT_BOOT_MS), 0, "no @BOOT after reset");
	cr_assert(match(BOOT_RE, line, g, 1), "'%s'", line);
	cr_expect_str_eq(g[0], "cpureset");
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_expect(strstr(line, " RST:2 ") && strstr(line, " RS:4 "), "'%s'", line);
	close(fd);
	stop(0);
}

Test(simrack, readio_and_setdigout)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char line[600], boot[600];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	support_console_command(fd, "readio 239", line, sizeof line);
	cr_expect_str_eq(line, "IO ID:239 Value:0", "ignition off");
	support_console_command(fd, "setdigout 1?", line, sizeof line);
	cr_expect_str_eq(line, "DOUT1:1 Timeout:INFINITY DOUT2:IGNORED");
	support_console_command(fd, "readio 179", line, sizeof line);
	cr_expect_str_eq(line, "IO ID:179 Value:1");
	support_console_command(fd, "getio", line, sizeof line);
	cr_expect(strstr(line, " DO1:1 DO2:0"), "'%s'", line);
	support_console_command(fd, "setdigout 2", line, sizeof line);
	cr_expect(strncmp(line, "ERROR", 5) == 0, "'%s'", line);
	support_console_command(fd, "readio x", line, sizeof line);
	cr_expect(strncmp(line, "ERROR", 5) == 0, "'%s'", line);
	close(fd);
	stop(0);
}

Test(simrack, setparam_getparam_round_trip)
{
	struct simrack_proc *p = start(0, 2, NULL, 1);
	char line[600], boot[600];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	support_console_command(fd, "getparam 2001", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2001 Value:internet");
	support_console_command(fd, "setparam 2001:iot.example", line, sizeof line);
	cr_expect_str_eq(line, "New value 2001:iot.example;");
	support_console_command(fd, "getparam 2001", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2001 Value:iot.example");
	support_console_command(fd, "setparam 2004:host:5027", line, sizeof line);
	cr_expect_str_eq(line, "New value 2004:host:5027;");
	support_console_command(fd, "getparam 2004", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2004 Value:host:5027");
	support_console_command(fd, "getparam x1", line, sizeof line);
	cr_expect(strncmp(line, "ERROR", 5) == 0, "'%s'", line);
	support_console_command(fd, "setparam 2001", line, sizeof line);
	cr_expect(strncmp(line, "ERROR", 5) == 0, "'%s'", line);

	/* Parameters live in flash: a reset keeps them... */
	support_console_command(fd, "cpureset", line, sizeof line);
	answers_again(fd, line, sizeof line);
	support_console_command(fd, "getparam 2001", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2001 Value:iot.example");
	close(fd);

	/* ...and they are the device's own, not the rack's. */
	fd = support_console_booted(p, 2, boot, sizeof boot);
	support_console_command(fd, "getparam 2001", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2001 Value:internet");
	close(fd);
	stop(0);
}

Test(simrack, unknown_command_is_error)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char line[600], boot[600];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	const char *bad[] = { "bogus", "GETVER", "getver now", "get ver" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		support_console_command(fd, bad[i], line, sizeof line);
		cr_expect_str_eq(line, "ERROR: unknown command", "'%s' gave '%s'", bad[i], line);
	}
	support_console_command(fd, "getio", line, sizeof line);
	cr_expect(strncmp(line, "DI1:", 4) == 0, "'%s'", line);
	close(fd);
	stop(0);
}

/* Sends N bytes of C then END ("\r\n" or "\n") and returns the answer line in BUF. */
static void send_run(int fd, char c, size_t n, const char *end, char *buf, size_t len)
{
	size_t elen = strlen(end);
	char *s = malloc(n + elen);
	cr_assert_not_null(s);
	memset(s, c, n);
	memcpy(s + n, end, elen);
	cr_assert_eq(write(fd, s, n + elen), (ssize_t)(n + elen));
	free(s);
	cr_assert_geq(support_tty_readline(fd, buf, len, SUPPORT_ANSWER_MS), 0, "no answer to %zu bytes", n);
}

Test(simrack, over_long_line_is_error_and_console_survives)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char line[600], boot[600];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	send_run(fd, 'x', 1000, "\r\n", line, sizeof line);
	cr_expect(strncmp(line, "ERROR", 5) == 0, "1000-byte line gave '%s'", line);
	/* The limit is 512 bytes of text, whichever terminator follows:
	 * 512 is a line, 513 is a fault. */
	const char *ends[] = { "\r\n", "\n" };
	for (size_t i = 0; i < 2; i++) {
		send_run(fd, 'x', 512, ends[i], line, sizeof line);
		cr_expect_str_eq(line, "ERROR: unknown command");
		send_run(fd, 'x', 513, ends[i], line, sizeof line);
		cr_expect_str_eq(line, "ERROR: line too long");
	}
	support_console_command(fd, "getver", line, sizeof line);
	cr_expect(strncmp(line, "Ver:", 4) == 0, "console dead after a long line: '%s'", line);
	close(fd);
	stop(0);
}

Test(simrack, garbage_and_nul_bytes_do_not_crash)
{
	struct simrack_proc *p = start(0, 1, NULL, 1);
	char line[600], boot[600];
	int fd = support_console_booted(p, 1, boot, sizeof boot);
	char junk[4096];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof junk; i++) {
		x = x * 1103515245u + 12345u;   /* fixed noise: the test is repeatable */
		junk[i] = (char)(x >> 16);
	}
	memcpy(junk + 100, "\0getver\0\r\n", 10);
	memset(junk + 200, 0, 600);
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	cr_assert_eq(write(fd, "\r\n", 2), 2);
	cr_assert_eq(write(fd, "\n\r\n\r\n", 5), 5);
	/* Whatever the noise earned, the console answers the next real command. */
	cr_assert_eq(write(fd, "getimeiccid\r\n", 13), 13);
	cr_assert_geq(support_tty_expect(fd, "IMEI: ", line, sizeof line, SUPPORT_ANSWER_MS), 0,
		      "console dead after garbage");
	cr_expect(strstr(line, "ICCID: "), "'%s'", line);
	cr_expect_eq(waitpid(p->pid, NULL, WNOHANG), 0, "simrack died");
	close(fd);
	stop(0);
}

Test(simrack, sigterm_removes_links)
{
	struct simrack_proc *p = start(0, 3, NULL, 1);
	char path[PATH_MAX + 32];
	for (int k = 1; k <= 3; k++) {
		struct stat st;
		cr_assert_eq(lstat(simrack_console(p, k, path, sizeof path), &st), 0);
		cr_assert(S_ISLNK(st.st_mode));
	}
	cr_assert_eq(kill(p->pid, SIGTERM), 0);
	int st;
	cr_assert_eq(waitpid(p->pid, &st, 0), p->pid);
	p->pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %#x", st);
	for (int k = 1; k <= 3; k++) {
		struct stat sb;
		cr_expect_neq(lstat(simrack_console(p, k, path, sizeof path), &sb), 0, "%s left", path);
		snprintf(path, sizeof path, "%s/slot%d", p->dir, k);
		cr_expect_neq(lstat(path, &sb), 0, "%s left", path);
	}
	struct stat sb;
	cr_expect_neq(lstat(simrack_rackfile(p, path, sizeof path), &sb), 0, "rack.yaml left");
	cr_expect_eq(lstat(p->dir, &sb), 0, "simrack removed a dir it did not make");
	stop(0);
}

/* Runs simrack with ARGS (NULL-terminated, after argv[0]) into OUT; returns
 * the exit code. */
static int run_simrack(const char *const *args, char *out, size_t len)
{
	char bin[PATH_MAX];
	char *argv[16] = { (char *)support_bin("simrack", bin, sizeof bin) };
	for (size_t i = 0; args[i]; i++) {
		cr_assert_lt(i + 2, sizeof argv / sizeof argv[0]);
		argv[i + 1] = (char *)args[i];
	}
	return support_run(argv, out, len);
}

Test(simrack, bad_args_exit_2)
{
	char dir[PATH_MAX], out[4096];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(racks[0].dir, sizeof racks[0].dir, "%s", dir);   /* fini removes it */
	struct { const char *args[10]; const char *says; } cases[] = {
		{ { NULL }, "--slots" },
		{ { "--slots", "0", "--dir", dir, NULL }, "--slots" },
		{ { "--slots", "abc", "--dir", dir, NULL }, "abc" },
		{ { "--slots", "2x", "--dir", dir, NULL }, "2x" },
		{ { "--slots", "2", NULL }, "--dir" },
		{ { "--slots", "2", "--dir", dir, "--bogus", NULL }, "--bogus" },
		{ { "--slots", "2", "--dir", dir, "stray", NULL }, "stray" },
		{ { "--slots", "2", "--dir", dir, "--seed", "-1", NULL }, "--seed" },
		{ { "--slots", "2", "--dir", dir, "--profiles", "", NULL }, "--profiles" },
		{ { "--slots", "1", "--dir", dir, "--profiles", "reference,reference", NULL },
		  "more profiles than slots" },
		{ { "--dir", dir, "--slots", NULL }, "--slots" },
		{ { "--slots", "2", "--dir", dir, "--supplies", "rd60xx,hp6632", NULL },
		  "--supplies: unknown kind 'hp6632' (known: rd60xx, korad)" },
		{ { "--slots", "1", "--dir", dir, "--relays", "coil,numato", NULL },
		  "--relays: more kinds than slots" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = run_simrack(cases[i].args, out, sizeof out);
		cr_expect_eq(rc, 2, "case %zu: exit %d, said: %s", i, rc, out);
		cr_expect(strstr(out, cases[i].says), "case %zu: message does not name '%s': %s", i,
			  cases[i].says, out);
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/slot1", dir);
	cr_expect_neq(access(path, F_OK), 0, "a refused run left %s", path);
	const char *help[] = { "--help", NULL };
	cr_expect_eq(run_simrack(help, out, sizeof out), 0);
	cr_expect(strstr(out, "usage: simrack"), "%s", out);
}

/* simrack --list: each profile's dialect and where its figures come from. */
Test(simrack, list_names_dialects_and_figures)
{
	char out[16384];
	const char *args[] = { "--list", NULL };
	cr_assert_eq(run_simrack(args, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "reference ") && strstr(out, "published: 24 mA nominal, 63 mA rms GPRS"), "%s", out);
	cr_expect(strstr(out, "agent_reference        Acme      FMB920  agent"), "%s", out);
	cr_expect(strstr(out, "fmb920_no_return       Teltonika FMB920  teltonika"), "%s", out);
	cr_expect(strstr(out, "mix teltonika"), "%s", out);
	/* Every Acme profile speaks agent, every Teltonika one teltonika. */
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "mix ", 4))
			continue;
		if (strstr(line, " Acme "))
			cr_expect(strstr(line, " agent "), "%s", line);
		else
			cr_expect(strstr(line, " Teltonika ") && strstr(line, " teltonika "), "%s", line);
	}
}

Test(simrack, unknown_profile_exit_2)
{
	char dir[PATH_MAX], out[4096];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(racks[0].dir, sizeof racks[0].dir, "%s", dir);
	const char *args[] = { "--slots", "2", "--dir", dir, "--profiles", "reference,nosuch", NULL };
	cr_expect_eq(run_simrack(args, out, sizeof out), 2, "%s", out);
	cr_expect(strstr(out, "nosuch"), "%s", out);
	cr_expect(strstr(out, "reference") && strstr(out, "flaky_console"),
		  "known profiles not listed: %s", out);
	char path[PATH_MAX + 16];
	cr_expect_neq(access(simrack_rackfile(&racks[0], path, sizeof path), F_OK), 0);
}

/* True when S can be had from FULL by deleting characters. */
static bool subsequence(const char *s, const char *full)
{
	for (; *s; s++) {
		full = strchr(full, *s);
		if (!full)
			return false;
		full++;
	}
	return true;
}

Test(simrack, flaky_console_drops_characters_reproducibly)
{
	enum { N = 5 };
	struct simrack_proc *a = start(0, 1, "flaky_console", 7);
	struct simrack_proc *b = start(1, 1, "flaky_console", 7);
	struct expect e = rack_expect(a, 1);
	char full[128], boot[600];
	snprintf(full, sizeof full, "IMEI: %s ICCID: %s", e.imei, e.iccid);
	int fa = support_console_booted(a, 1, boot, sizeof boot);
	int fb = support_console_booted(b, 1, boot, sizeof boot);
	char la[N][600], lb[N][600];
	int garbled = 0;
	for (int i = 0; i < N; i++) {
		/* Both units work at once: the test waits for the slower one only. */
		cr_assert_eq(write(fa, "getimeiccid\r\n", 13), 13);
		cr_assert_eq(write(fb, "getimeiccid\r\n", 13), 13);
		cr_assert_geq(support_tty_expect(fa, "", la[i], sizeof la[i], SLOW_MS), 0,
			      "answer %d never came", i);
		cr_assert_geq(support_tty_expect(fb, "", lb[i], sizeof lb[i], SLOW_MS), 0);
		cr_expect_str_eq(la[i], lb[i], "same seed, different faults");
		cr_expect(subsequence(la[i], full), "'%s' is not '%s' with characters lost",
			  la[i], full);
		char g[2][64];
		if (!match(IMEICCID_RE, la[i], g, 2) || strcmp(la[i], full) != 0)
			garbled++;
	}
	cr_expect_geq(garbled, 1, "%d answers, none garbled", N);
	close(fa);
	close(fb);
	stop(0);
	stop(1);
}
