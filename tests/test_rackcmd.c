/*
 * test_rackcmd.c - end to end: `rig rack check` and `rig relay` against
 * simrack, each test with its own rack in its own temp dir.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "modbus_link.h"
#include "rack.h"
#include "support.h"

#define OUT_MAX 65536

static const char *rig_bin(void)
{
	static char buf[4096];
	return support_bin("rig", buf, sizeof buf);
}

/* Runs rig with ARGV (argv[0] filled in here), stdout and stderr together
 * into OUT; fails the test if it could not run or hung. */
static int rig(char **argv, char *out)
{
	argv[0] = (char *)rig_bin();
	int rc = support_run(argv, out, OUT_MAX);
	cr_assert_geq(rc, 0, "%s %s did not run to completion: %s", argv[0], argv[1], out);
	return rc;
}

/* Copies DIR/rack.yaml to DIR/NAME with sed EXPR applied; the edit must
 * have changed something, or the test would prove nothing. */
static void edited_rack(const struct simrack_proc *sr, const char *name, const char *expr, char *path, size_t len)
{
	char orig[4200], cmd[13000];
	simrack_rackfile(sr, orig, sizeof orig);
	snprintf(path, len, "%s/%s", sr->dir, name);
	snprintf(cmd, sizeof cmd, "sed '%s' '%s' > '%s' && ! cmp -s '%s' '%s'", expr, orig, path, orig, path);
	cr_assert_eq(system(cmd), 0, "sed '%s' changed nothing in %s", expr, orig);
}

/* A loopback TCP port nobody listens on: bound, then released. */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The line of OUT starting with PREFIX, copied into BUF, or NULL. */
static const char *line_of(const char *out, const char *prefix, char *buf, size_t len)
{
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			size_t n = strcspn(p, "\n");
			snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
			return buf;
		}
	}
	return NULL;
}

/* ---- rig rack check ---- */

Test(rackcmd, check_two_slot_rack_all_ok, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 21), 0);
	char rackfile[4200], row[512];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	static char out[OUT_MAX];
	char *argv[] = { NULL, "rack", "check", "--rack", rackfile, NULL };
	int rc = rig(argv, out);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "SLOT  CONSOLE"), "%s", out);
	struct rack r;
	char err[512];
	cr_assert_eq(rack_load(rackfile, &r, err, sizeof err), 0, "%s", err);
	for (int s = 1; s <= 2; s++) {
		char prefix[16];
		snprintf(prefix, sizeof prefix, "%d  ", s);
		cr_assert_not_null(line_of(out, prefix, row, sizeof row), "no row for slot %d:\n%s", s, out);
		/* Console, IMEI from the device (equal to the rack file's), supply
		 * with its reading, lines and the verdict, all on the slot's row. */
		cr_assert(strstr(row, " ok "), "%s", row);
		cr_assert(strstr(row, r.slots[s - 1].expect.imei), "slot %d row lacks IMEI %s: %s", s,
			  r.slots[s - 1].expect.imei, row);
		cr_assert(strstr(row, "ok 12.00V "), "%s", row);
		cr_assert(strlen(row) > 2 && strcmp(row + strlen(row) - 2, "ok") == 0, "verdict not ok: %s", row);
	}
	rack_free(&r);
	cr_assert_null(line_of(out, "3  ", row, sizeof row), "a 2-slot rack has no slot 3:\n%s", out);

	/* The JSON form says the same. */
	char *json[] = { NULL, "rack", "check", "--rack", rackfile, "--json", NULL };
	cr_assert_eq(rig(json, out), 0, "%s", out);
	cr_assert(strstr(out, "\"result\": \"ok\""), "%s", out);
	cr_assert(strstr(out, "\"name\": \"ignition\""), "%s", out);
	simrack_stop(&sr);
}

Test(rackcmd, check_dead_supply_is_unreachable_naming_slot_and_transport, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 22), 0);
	char rackfile[4200], edited[4300], expr[700], dead[64], row[512];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	struct rack r;
	char err[512];
	cr_assert_eq(rack_load(rackfile, &r, err, sizeof err), 0, "%s", err);
	snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", dead_port());
	snprintf(expr, sizeof expr, "s|%s|%s|", r.slots[0].power.bus.transport, dead);
	rack_free(&r);
	edited_rack(&sr, "dead-supply.yaml", expr, edited, sizeof edited);

	static char out[OUT_MAX];
	char *argv[] = { NULL, "rack", "check", "--rack", edited, NULL };
	int rc = rig(argv, out);
	cr_assert_eq(rc, 3, "an unreachable supply is exit 3, got %d\n%s", rc, out);
	cr_assert_not_null(line_of(out, "slot 1: supply: ", row, sizeof row), "no message for slot 1's supply:\n%s", out);
	cr_assert(strstr(row, dead), "the message names the transport %s: %s", dead, row);
	cr_assert_not_null(line_of(out, "1  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, " error "), "slot 1's supply column says error: %s", row);
	/* The console and lines of slot 1, and all of slot 2, were still checked. */
	cr_assert(strncmp(row + 6, "ok", 2) == 0, "slot 1's console still checked: %s", row);
	cr_assert_not_null(line_of(out, "2  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, "ok 12.00V "), "%s", row);
	cr_assert(strlen(row) > 2 && strcmp(row + strlen(row) - 2, "ok") == 0, "slot 2 still ok: %s", row);
	cr_assert_null(strstr(out, "slot 2:"), "nothing wrong with slot 2:\n%s", out);
	simrack_stop(&sr);
}

Test(rackcmd, check_wrong_expected_imei_is_drift_exit_1, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 23), 0);
	char rackfile[4200], edited[4300], expr[300], real[64];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	struct rack r;
	char err[512];
	cr_assert_eq(rack_load(rackfile, &r, err, sizeof err), 0, "%s", err);
	snprintf(real, sizeof real, "%s", r.slots[1].expect.imei);
	rack_free(&r);
	snprintf(expr, sizeof expr, "s/%s/490154203237518/", real);
	edited_rack(&sr, "drift.yaml", expr, edited, sizeof edited);

	static char out[OUT_MAX];
	char *argv[] = { NULL, "rack", "check", "--rack", edited, NULL };
	int rc = rig(argv, out);
	cr_assert_eq(rc, 1, "identity drift is exit 1, got %d\n%s", rc, out);
	cr_assert(strstr(out, "slot 2: identity drift: IMEI: rack file expects 490154203237518, device says"), "%s", out);
	cr_assert(strstr(out, real), "%s", out);
	char row[512];
	cr_assert_not_null(line_of(out, "2  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, "drift"), "%s", row);
	simrack_stop(&sr);
}

Test(rackcmd, check_broken_rack_file_is_exit_2_with_position)
{
	char dir[4096], path[4200];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/rack.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("slots:\n  - id: 1\n    console: {port: /dev/x, speed: 9600}\n", f);
	fclose(f);
	static char out[OUT_MAX];
	char *argv[] = { NULL, "rack", "check", "--rack", path, NULL };
	int rc = rig(argv, out);
	cr_assert_eq(rc, 2, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "rig rack: ") && strstr(out, "rack.yaml:3:29: slots[0].console: unknown key 'speed'"), "%s",
		  out);
	/* Another subcommand, or none, is a usage error too. */
	char *other[] = { NULL, "rack", "frob", NULL };
	cr_assert_eq(rig(other, out), 2, "%s", out);
	cr_assert(strstr(out, "'frob'"), "%s", out);
	char *none[] = { NULL, "rack", NULL };
	cr_assert_eq(rig(none, out), 2, "%s", out);
	support_rmtree(dir);
}

/* ---- set points ---- */

/* Writes RAW to holding register REG of slot SLOT's supply, as another
 * Modbus client on the bench would (or reads it into *RAW when READ). */
static void other_client(const char *rackfile, int slot, int reg, uint16_t *raw, bool read)
{
	struct rack r;
	char err[512];
	cr_assert_eq(rack_load(rackfile, &r, err, sizeof err), 0, "%s", err);
	modbus_link *l;
	int rc = modbus_link_open(r.slots[slot - 1].power.bus.transport, 1, &l, err, sizeof err);
	rack_free(&r);
	cr_assert_eq(rc, MODBUS_LINK_OK, "%s", err);
	rc = read ? modbus_link_read_registers(l, reg, 1, raw) : modbus_link_write_register(l, reg, *raw);
	cr_assert_eq(rc, MODBUS_LINK_OK, "%s", modbus_link_error(l));
	modbus_link_close(l);
}

/* Another client set slot 1's V-SET to 30.00 V: rack check names the
 * difference (exit 1), and rig power on puts the rack file's 12.00 V back
 * before the output goes on. */
Test(rackcmd, set_point_changed_by_another_client_is_named_and_put_back, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 26), 0);
	char rackfile[4200], db[4200], row[512];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	/* Both consoles up first, so the check's only finding is the supply's. */
	char boot[512];
	for (int k = 1; k <= 2; k++)
		close(support_console_booted(&sr, k, boot, sizeof boot));
	uint16_t raw = 3000;
	other_client(rackfile, 1, 8, &raw, false);

	static char out[OUT_MAX];
	char *check[] = { NULL, "rack", "check", "--rack", rackfile, NULL };
	int rc = rig(check, out);
	cr_assert_eq(rc, 1, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "slot 1: supply tcp://127.0.0.1:") && strstr(out, "set points differ from"), "%s", out);
	cr_assert(strstr(out, "V-SET 30.00 V, rack file says 12.00 V"), "%s", out);
	cr_assert_not_null(line_of(out, "2  ", row, sizeof row), "%s", out);
	cr_assert(strcmp(row + strlen(row) - 2, "ok") == 0, "slot 2 untouched: %s", row);
	char *json[] = { NULL, "rack", "check", "--rack", rackfile, "--json", NULL };
	cr_assert_eq(rig(json, out), 1, "%s", out);
	cr_assert(strstr(out, "\"v_set\": 30"), "%s", out);

	/* Opened before the cycle. */
	char console[4200], line[512];
	int fd = support_tty_open(simrack_console(&sr, 1, console, sizeof console));
	cr_assert_geq(fd, 0, "%s", console);
	char *off[] = { NULL, "power", "1", "off", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(rig(off, out), 0, "%s", out);
	char *on[] = { NULL, "power", "1", "on", "--rack", rackfile, "--db", db, NULL };
	rc = rig(on, out);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	other_client(rackfile, 1, 8, &raw, true);
	cr_assert_eq(raw, 1200, "V-SET %u/100 V after rig power on: the rack file says 12.00 V", raw);
	/* A Teltonika unit prints no boot line: it answers once booted. */
	cr_assert_eq(support_console_up(fd, line, sizeof line, SUPPORT_BOOT_MS), 0, "slot 1 never booted");
	close(fd);
	cr_assert_eq(rig(check, out), 0, "%s", out);
	simrack_stop(&sr);
}

/* Protection limits: the simulated RD6006 trips its OVP when another
 * client sets it below V-SET (output off, PROT OVP); rig power on writes the
 * rack file's ovp back first, so the output comes on and stays on. */
Test(rackcmd, ovp_from_the_rack_file_is_written_before_switch_on, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 28), 0);
	char rackfile[4200], db[4200], row[512];
	edited_rack(&sr, "ovp.yaml", "s/, amps: \\([0-9.]*\\)/, amps: \\1, ovp: 13.2, ocp: 1.5/", rackfile,
		    sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	uint16_t raw = 1000;   /* 10.00 V, below the 12.00 V set */
	other_client(rackfile, 1, 82, &raw, false);
	static char out[OUT_MAX];
	char *st[] = { NULL, "power", "1", "status", "--rack", rackfile, NULL };
	cr_assert_eq(rig(st, out), 0, "%s", out);
	cr_assert_not_null(line_of(out, "1  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, " off ") && strstr(row, "OVP"), "the OVP tripped: %s", row);
	char *check[] = { NULL, "rack", "check", "--rack", rackfile, NULL };
	/* 3: the tracker lost its power with the trip, so its console is
	 * silent too; the supply's line names the limit that differs. */
	cr_assert_eq(rig(check, out), 3, "%s", out);
	cr_assert(strstr(out, "OVP 10.00 V, rack file says 13.20 V"), "%s", out);

	char *on[] = { NULL, "power", "1", "on", "--rack", rackfile, "--db", db, NULL };
	int rc = rig(on, out);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert_not_null(line_of(out, "1  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, " on ") && !strstr(row, "OVP"), "%s", row);
	other_client(rackfile, 1, 82, &raw, true);
	cr_assert_eq(raw, 1320, "OVP %u/100 V: the rack file says 13.20 V", raw);
	other_client(rackfile, 1, 83, &raw, true);
	cr_assert_eq(raw, 1500, "OCP %u/1000 A: the rack file says 1.500 A", raw);
	simrack_stop(&sr);
}

/* A supply without volts and amps is a configuration error naming where,
 * unless the file says the rig may leave them. */
Test(rackcmd, supply_without_set_points_is_exit_2_unless_left_explicitly, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 27), 0);
	char bare[4200], leave[4200];
	edited_rack(&sr, "bare.yaml", "s/, volts: [0-9.]*, amps: [0-9.]*//", bare, sizeof bare);
	static char out[OUT_MAX];
	char *check[] = { NULL, "rack", "check", "--rack", bare, NULL };
	int rc = rig(check, out);
	cr_assert_eq(rc, 2, "exit %d\n%s", rc, out);
	/* file:line:col of slot 1's power mapping ("    power: {" : column 12). */
	char *text = support_read_file(bare), want[4400];
	cr_assert_not_null(text);
	int line = 1;
	for (const char *p = text; p < strstr(text, "    power: {"); p++)
		line += *p == '\n';
	free(text);
	snprintf(want, sizeof want, "%s:%d:12: slots[0].power: a supply needs 'volts' and 'amps'", bare, line);
	cr_assert(strstr(out, want), "expected \"%s\" in:\n%s", want, out);
	char *on[] = { NULL, "power", "1", "on", "--rack", bare, NULL };
	cr_assert_eq(rig(on, out), 2, "%s", out);

	edited_rack(&sr, "leave.yaml", "s/, volts: [0-9.]*, amps: [0-9.]*/, limits: leave/", leave, sizeof leave);
	check[4] = leave;
	rc = rig(check, out);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	simrack_stop(&sr);
}

/* ---- rig relay ---- */

Test(rackcmd, relay_ignition_on_reaches_the_tracker_and_is_audited, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 24), 0);
	char rackfile[4200], db[4200], line[512], boot[512], row[512];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	/* Opened (and booted) before switching. */
	int fd = support_console_booted(&sr, 2, boot, sizeof boot);

	static char out[OUT_MAX];
	char *on[] = { NULL, "relay", "2", "ignition", "on", "--rack", rackfile, "--db", db, "--operator", "qa2", NULL };
	int rc = rig(on, out);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert_not_null(line_of(out, "2  ", row, sizeof row), "%s", out);
	cr_assert(strstr(row, "ignition") && strstr(row, "relays") && strcmp(row + strlen(row) - 2, "on") == 0, "%s", row);
	/* A Teltonika unit prints nothing: its ignition input (IO 239) tells. */
	support_console_command(fd, "readio 239", line, sizeof line);
	cr_assert_str_eq(line, "IO ID:239 Value:1", "slot 2's tracker never saw its ignition go on");
	close(fd);

	char *st[] = { NULL, "relay", "all", "ignition", "status", "--rack", rackfile, NULL };
	cr_assert_eq(rig(st, out), 0, "%s", out);
	cr_assert_not_null(line_of(out, "2  ", row, sizeof row), "%s", out);
	cr_assert(strcmp(row + strlen(row) - 2, "on") == 0, "slot 2 reads on: %s", row);
	cr_assert_not_null(line_of(out, "1  ", row, sizeof row), "%s", out);
	cr_assert(strcmp(row + strlen(row) - 3, "off") == 0, "slot 1 was not touched: %s", row);

	char *audit[] = { NULL, "audit", "--db", db, "--json", NULL };
	cr_assert_eq(rig(audit, out), 0, "%s", out);
	cr_assert(strstr(out, "\"relay ignition on\"") && strstr(out, "\"qa2\""), "%s", out);
	simrack_stop(&sr);
}

Test(rackcmd, relay_unknown_line_and_bad_slots_are_exit_2, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 25), 0);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/results.db", sr.dir);
	static char out[OUT_MAX];
	char *horn[] = { NULL, "relay", "1", "horn", "on", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(rig(horn, out), 2, "%s", out);
	cr_assert(strstr(out, "slot 1 has no line 'horn'"), "%s", out);
	char *nine[] = { NULL, "relay", "9", "ignition", "on", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(rig(nine, out), 2, "%s", out);
	cr_assert(strstr(out, "slot 9 is not in"), "%s", out);
	char *junk[] = { NULL, "relay", "2-x", "ignition", "on", "--rack", rackfile, "--db", db, NULL };
	cr_assert_eq(rig(junk, out), 2, "%s", out);
	cr_assert(strstr(out, "bad slot list '2-x'"), "%s", out);
	/* Nothing was switched, so nothing was audited. */
	char *audit[] = { NULL, "audit", "--db", db, "--json", NULL };
	int rc = rig(audit, out);
	cr_assert(rc != 0 || !strstr(out, "relay "), "exit %d: %s", rc, out);
	simrack_stop(&sr);
}
