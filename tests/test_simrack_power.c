/*
 * test_simrack_power.c - the simulated rack's Modbus side: an RD6006 supply
 * per slot whose output is the tracker's power, and a coil relay board per
 * rack switching each slot's ignition and antennas.
 *
 * Every test starts its own simrack (ports chosen by the kernel, named in
 * its rack.yaml). No timing is asserted: deadlines only bound how long a
 * test polls for a state change or waits for a line.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define SILENT_MS 1500    /* how long a dead console is given to (wrongly) answer */
#define STATE_MS 5000     /* poll bound for a register to show a new state */

#define REG_MODEL 0
#define REG_VSET 8
#define REG_ISET 9
#define REG_VOUT 10
#define REG_IOUT 11
#define REG_OUTPUT 18

static struct simrack_proc rack;
static modbus_t *mb[2];

static void stop_all(void)
{
	for (size_t i = 0; i < sizeof mb / sizeof mb[0]; i++)
		if (mb[i]) {
			modbus_close(mb[i]);
			modbus_free(mb[i]);
			mb[i] = NULL;
		}
	if (rack.pid > 0 || rack.dir[0])
		simrack_stop(&rack);
}

TestSuite(simrack_power, .fini = stop_all, .timeout = 90);

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(int slots, const char *profiles)
{
	cr_assert_eq(simrack_start(&rack, slots, profiles, 1), 0, "simrack did not start");
}

static char *rack_yaml(void)
{
	char path[PATH_MAX + 16];
	char *yaml = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	return yaml;
}

/* The TCP port in the first 'tcp://127.0.0.1:PORT' at or after AT. */
static int port_after(const char *at)
{
	const char *t = strstr(at, "tcp://127.0.0.1:");
	cr_assert_not_null(t, "no tcp transport after '%.40s'", at);
	int port = atoi(t + 16);
	cr_assert(port > 0 && port < 65536, "bad port in '%.40s'", t);
	return port;
}

/* Slot SLOT's supply port, from its power line in rack.yaml. */
static int supply_port(int slot)
{
	char *yaml = rack_yaml(), head[32];
	snprintf(head, sizeof head, "  - id: %d\n", slot);
	const char *at = strstr(yaml, head);
	cr_assert_not_null(at, "no slot %d in rack.yaml", slot);
	at = strstr(at, "    power: {driver: rd60xx, transport: ");
	cr_assert_not_null(at, "slot %d names no rd60xx supply", slot);
	int port = port_after(at);
	free(yaml);
	return port;
}

/* The relay board's port, from the 'boards:' list. */
static int board_port(void)
{
	char *yaml = rack_yaml();
	const char *at = strstr(yaml, "\nboards:\n  - name: relays\n    driver: coil\n");
	cr_assert_not_null(at, "no coil board 'relays' in:\n%s", yaml);
	int port = port_after(at);
	free(yaml);
	return port;
}

/* Client I connected to PORT, unit 1. */
static modbus_t *client(int i, int port)
{
	mb[i] = modbus_new_tcp("127.0.0.1", port);
	cr_assert_not_null(mb[i]);
	cr_assert_eq(modbus_connect(mb[i]), 0, "connect to port %d: %s", port, modbus_strerror(errno));
	modbus_set_slave(mb[i], 1);
	modbus_set_response_timeout(mb[i], 3, 0);   /* ASan-slow server, never a real wait */
	return mb[i];
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

/* Polls register ADDR until its value satisfies WANT (== V, or != V when
 * !EQUAL); asserts it does within STATE_MS. Returns the value seen. */
static uint16_t wait_reg(modbus_t *c, int addr, uint16_t v, bool equal)
{
	int64_t end = now_ms() + STATE_MS;
	uint16_t got;
	do {
		got = reg(c, addr);
		if ((got == v) == equal)
			return got;
		usleep(20000);
	} while (now_ms() < end);
	cr_assert_fail("register %d stayed %u (wanted %s %u)", addr, got, equal ? "==" : "!=", v);
	return got;
}

/* The restart counter (getinfo RST). */
static unsigned boots(int fd)
{
	char line[600];
	support_console_command(fd, "getinfo", line, sizeof line);
	const char *b = strstr(line, " RST:");
	cr_assert_not_null(b, "getinfo without RST: '%s'", line);
	return (unsigned)atoi(b + 5);
}

/* The device is dead: I-OUT reads 0 and a command gets no answer. */
static void assert_dead(modbus_t *c, int fd)
{
	wait_reg(c, REG_IOUT, 0, true);
	char line[600];
	int n = support_tty_command(fd, "getver", line, sizeof line, SILENT_MS, false);
	cr_assert_lt(n, 0, "a dead device answered '%s'", line);
}

/* Power came back: answers again, one more restart, reset source power on. */
static void assert_reboots(int fd, unsigned boots_before)
{
	char line[600];
	cr_assert_eq(support_console_up(fd, line, sizeof line, SUPPORT_BOOT_MS), 0, "no answer after power returned");
	support_console_command(fd, "getinfo", line, sizeof line);
	cr_expect(strstr(line, " RS:5 "), "RS 5, power on: '%s'", line);
	cr_expect_eq(boots(fd), boots_before + 1);
}

Test(simrack_power, rack_file_names_supply_and_lines_per_slot)
{
	start(2, NULL);
	char *yaml = rack_yaml();
	cr_expect(strstr(yaml, "\nboards:\n  - name: relays\n    driver: coil\n    transport: \"tcp://127.0.0.1:"),
		  "%s", yaml);
	cr_expect(strstr(yaml, "\n    unit: 1\nslots:\n"), "boards above slots: %s", yaml);
	for (int k = 1; k <= 2; k++) {
		char want[200], head[32];
		snprintf(head, sizeof head, "  - id: %d\n", k);
		const char *at = strstr(yaml, head);
		cr_assert_not_null(at);
		snprintf(want, sizeof want,
			 "    lines:\n      ignition: {board: relays, channel: %d}\n"
			 "      gnss_antenna: {board: relays, channel: %d}\n"
			 "      cell_antenna: {board: relays, channel: %d}\n",
			 3 * (k - 1), 3 * (k - 1) + 1, 3 * (k - 1) + 2);
		cr_expect(strstr(at, want), "slot %d lines missing in:\n%s", k, yaml);
		cr_expect(strstr(at, "\", unit: 1, volts: 12.00, amps: 1.000}\n"), "slot %d power unit and set points", k);
	}
	free(yaml);
	cr_expect_neq(supply_port(1), supply_port(2), "two supplies on one port");
}

Test(simrack_power, supply_reads_as_rd6006_powered_at_start)
{
	start(1, NULL);
	modbus_t *c = client(0, supply_port(1));
	uint16_t r[19];
	cr_assert_eq(modbus_read_registers(c, 0, 19, r), 19, "%s", modbus_strerror(errno));
	cr_expect_eq(r[REG_MODEL], 60062);
	cr_expect_eq(r[REG_VSET], 1200);
	cr_expect_eq(r[REG_ISET], 1000);
	cr_expect_eq(r[REG_OUTPUT], 1);
	cr_expect_eq(r[REG_VOUT], 1200, "V-OUT follows V-SET while on");
	cr_expect_eq(r[14], 2400, "V-IN");
	/* Booted (rack.yaml is written after every first boot): idle draw,
	 * the FMB920's published 24 mA nominal at 12 V. */
	cr_expect_eq(wait_reg(c, REG_IOUT, 24, true), 24);
}

Test(simrack_power, output_off_kills_and_on_reboots)
{
	start(1, NULL);
	char boot[600];
	int fd = support_console_booted(&rack, 1, boot, sizeof boot);
	unsigned before = boots(fd);
	modbus_t *c = client(0, supply_port(1));
	set_reg(c, REG_OUTPUT, 0);
	cr_expect_eq(reg(c, REG_VOUT), 0);
	assert_dead(c, fd);
	set_reg(c, REG_OUTPUT, 1);
	assert_reboots(fd, before);
	cr_expect_neq(wait_reg(c, REG_IOUT, 0, false), 0);
	close(fd);
	cr_expect_eq(simrack_stop(&rack), 0, "simrack did not stop cleanly");
}

Test(simrack_power, vset_below_brownout_kills_too)
{
	start(1, NULL);
	char boot[600];
	int fd = support_console_booted(&rack, 1, boot, sizeof boot);
	unsigned before = boots(fd);
	modbus_t *c = client(0, supply_port(1));
	set_reg(c, REG_VSET, 700);    /* 7 V: still above the 6 V brown-out */
	char line[600];
	support_console_command(fd, "getver", line, sizeof line);
	set_reg(c, REG_VSET, 500);    /* 5 V: below it */
	cr_expect_eq(reg(c, REG_OUTPUT), 1, "the output itself stays on");
	assert_dead(c, fd);
	set_reg(c, REG_VSET, 1200);
	assert_reboots(fd, before);
	close(fd);
}

Test(simrack_power, power_cut_keeps_flash_params_on_reference)
{
	start(1, NULL);
	char boot[600], line[600];
	int fd = support_console_booted(&rack, 1, boot, sizeof boot);
	support_console_command(fd, "setparam 2001:iot.example", line, sizeof line);
	modbus_t *c = client(0, supply_port(1));
	set_reg(c, REG_OUTPUT, 0);
	wait_reg(c, REG_IOUT, 0, true);
	set_reg(c, REG_OUTPUT, 1);
	cr_assert_eq(support_console_up(fd, line, sizeof line, SUPPORT_BOOT_MS), 0, "no answer after power returned");
	support_console_command(fd, "getparam 2001", line, sizeof line);
	cr_expect_str_eq(line, "Param ID:2001 Value:iot.example");
	close(fd);
}

Test(simrack_power, other_unit_id_gets_no_answer)
{
	start(1, NULL);
	modbus_t *c = client(0, supply_port(1));
	modbus_set_slave(c, 2);
	modbus_set_response_timeout(c, 0, 500000);
	uint16_t v;
	errno = 0;
	cr_expect_eq(modbus_read_registers(c, REG_MODEL, 1, &v), -1, "unit 2 answered %u", v);
	cr_expect_eq(errno, ETIMEDOUT, "%s", modbus_strerror(errno));
	modbus_set_slave(c, 1);
	modbus_set_response_timeout(c, 3, 0);
	cr_expect_eq(reg(c, REG_MODEL), 60062);
}

Test(simrack_power, several_clients_and_a_hangup)
{
	start(1, NULL);
	int port = supply_port(1);
	modbus_t *a = client(0, port), *b = client(1, port);
	cr_expect_eq(reg(a, REG_MODEL), 60062);
	cr_expect_eq(reg(b, REG_VSET), 1200);
	modbus_close(a);                 /* the server meets ECONNRESET / EOF */
	modbus_free(a);
	mb[0] = NULL;
	cr_expect_eq(reg(b, REG_MODEL), 60062);
	a = client(0, port);
	cr_expect_eq(reg(a, REG_OUTPUT), 1);
	/* Clients still connected: the rack closes them and exits clean
	 * (exit 0: no sanitizer or leak report). */
	cr_expect_eq(simrack_stop(&rack), 0, "simrack did not stop cleanly");
}

/* The ignition coil is DI1 on every unit; only an agent unit also prints
 * @IGN (a real FMB prints nothing unasked). */
Test(simrack_power, ignition_coil_prints_ign)
{
	cr_assert_eq(simrack_start(&rack, 2, "reference,agent_reference", 1), 0, "simrack did not start");
	char boot[600], line[600];
	int fd = support_console_booted(&rack, 2, boot, sizeof boot);
	int tf = support_console_booted(&rack, 1, boot, sizeof boot);
	modbus_t *c = client(0, board_port());
	uint8_t coils[6];
	cr_assert_eq(modbus_read_bits(c, 0, 6, coils), 6, "%s", modbus_strerror(errno));
	for (int k = 0; k < 2; k++) {
		cr_expect_eq(coils[3 * k], 0, "slot %d ignition starts off", k + 1);
		cr_expect_eq(coils[3 * k + 1], 1, "slot %d GNSS antenna starts connected", k + 1);
		cr_expect_eq(coils[3 * k + 2], 1, "slot %d cell antenna starts connected", k + 1);
	}
	support_console_command(fd, "getio", line, sizeof line);
	cr_expect(strncmp(line, "DI1:0 ", 6) == 0, "'%s'", line);
	cr_assert_eq(modbus_write_bit(c, 3, 1), 1, "%s", modbus_strerror(errno));   /* slot 2 */
	cr_assert_geq(support_tty_readline(fd, line, sizeof line, SUPPORT_ANSWER_MS), 0, "no @IGN");
	cr_expect_str_eq(line, "@IGN state=on");
	support_console_command(fd, "getio", line, sizeof line);
	cr_expect(strncmp(line, "DI1:1 ", 6) == 0, "'%s'", line);
	cr_assert_eq(modbus_write_bit(c, 3, 0), 1);
	cr_assert_geq(support_tty_readline(fd, line, sizeof line, SUPPORT_ANSWER_MS), 0, "no @IGN");
	cr_expect_str_eq(line, "@IGN state=off");
	close(fd);

	/* Slot 1, a Teltonika unit: DI1 and IO 239 follow, nothing is printed. */
	cr_assert_eq(modbus_write_bit(c, 0, 1), 1, "%s", modbus_strerror(errno));
	cr_expect_lt(support_tty_readline(tf, line, sizeof line, 500), 0, "a Teltonika unit said '%s'", line);
	support_console_command(tf, "getio", line, sizeof line);
	cr_expect(strncmp(line, "DI1:1 ", 6) == 0, "'%s'", line);
	support_console_command(tf, "readio 239", line, sizeof line);
	cr_expect_str_eq(line, "IO ID:239 Value:1");
	close(tf);
}

Test(simrack_power, mbpoll_reads_model_id)
{
	const char *mbpoll = "/usr/bin/mbpoll";
	if (access(mbpoll, X_OK) != 0)
		cr_skip_test("mbpoll is not installed");
	start(1, NULL);
	char port[16], out[4096];
	snprintf(port, sizeof port, "%d", supply_port(1));
	char *argv[] = { (char *)mbpoll, "-m", "tcp", "-p", port, "-a", "1", "-r", "1", "-c", "1",
			 "-1", "127.0.0.1", NULL };
	cr_expect_eq(support_run(argv, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "[1]: \t60062"), "%s", out);
}
