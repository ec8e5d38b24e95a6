/*
 * test_usb.c - `rig usb` against emulated USB hardware (umockdev).
 *
 * Listing runs the real rig binary under `umockdev-run --device FILE...`:
 * libusb sees the devices of the fixtures/usb device files and the strings come
 * from the testbed's sysfs. Port power needs a hub that answers control
 * transfers, which umockdev only allows from inside the process running
 * libusb: tests/usb/usb_testbed (under umockdev-wrapper) builds the
 * testbed, emulates a 4-port hub with per-port power switching, and runs
 * the rig's own `usb` command in process. See fixtures/usb/README.md.
 *
 * No test asserts on a duration: re-enumeration times are only checked to
 * be reported.
 */
#include "support.h"
#include "usb.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "fixtures/usb/"
#define HUB FIX "hub.umockdev"
#define FMB920 FIX "fmb920.umockdev"
#define FMC130 FIX "fmc130.umockdev"
#define FMC130_SWAPPED FIX "fmc130-swapped.umockdev"
#define UBLOX FIX "ublox-m8.umockdev"
#define BAD FIX "bad-descriptor.umockdev"

#define SERIAL_1 "FMB920-352093081234567"
#define SERIAL_2 "FMC130-864275041122334"
#define SERIAL_2_OTHER "FMC130-864275049999999"

static char dir[PATH_MAX], rackfile[PATH_MAX + 16], db[PATH_MAX + 16];
static char out[65536];

/* ASan must not insist on being first in the library list: umockdev's
 * preload library comes before it. */
static void setup(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char opts[512];
	snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", old ? old : "", old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	cr_assert_eq(access(HUB, R_OK), 0, "run the tests from the repository root (no %s)", HUB);
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(rackfile, sizeof rackfile, "%s/rack.yaml", dir);
	snprintf(db, sizeof db, "%s/trackrig.db", dir);
	FILE *f = fopen(rackfile, "w");
	cr_assert_not_null(f);
	fprintf(f, "station: usb-bench\n"
		   "slots:\n"
		   "  - id: 1\n    console: {port: /dev/null}\n    usb: 1-1.1\n    expect: {serial: \"" SERIAL_1 "\"}\n"
		   "  - id: 2\n    console: {port: /dev/null}\n    usb: 1-1.2\n    expect: {serial: \"" SERIAL_2 "\"}\n"
		   "  - id: 3\n    console: {port: /dev/null}\n    usb: 1-1.3\n");
	fclose(f);
}

static void teardown(void)
{
	support_rmtree(dir);
}

TestSuite(usb, .init = setup, .fini = teardown, .timeout = 60);

/* `umockdev-run --device F... -- rig ARGS...`; ARGV ends with NULL. */
static int rig_under_umockdev(const char *const *devices, const char *const *args)
{
	char rig[PATH_MAX];
	support_bin("rig", rig, sizeof rig);
	const char *argv[40];
	int n = 0;
	argv[n++] = "/usr/bin/umockdev-run";
	for (int i = 0; devices[i]; i++) {
		argv[n++] = "--device";
		argv[n++] = devices[i];
	}
	argv[n++] = "--";
	argv[n++] = rig;
	argv[n++] = "usb";
	for (int i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return support_run((char *const *)argv, out, sizeof out);
}

/* `umockdev-wrapper usb_testbed TESTBED_ARGS...` (with "--" and the commands). */
static int testbed(const char *const *args)
{
	char bed[PATH_MAX];
	support_bin("usb_testbed", bed, sizeof bed);
	cr_assert_eq(access(bed, X_OK), 0, "%s missing: build it (make test builds it)", bed);
	const char *argv[40];
	int n = 0;
	argv[n++] = "/usr/bin/umockdev-wrapper";
	argv[n++] = bed;
	for (int i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return support_run((char *const *)argv, out, sizeof out);
}

/* The line of OUT holding NEEDLE1, or NULL; copied into LINE. */
static const char *line_with(const char *text, const char *needle, char *line, size_t len)
{
	const char *hit = strstr(text, needle);
	if (!hit)
		return NULL;
	const char *b = hit;
	while (b > text && b[-1] != '\n')
		b--;
	size_t l = strcspn(b, "\n");
	snprintf(line, len, "%.*s", (int)(l < len ? l : len - 1), b);
	return line;
}

Test(usb, port_path_split)
{
	char hub[USB_PATH_MAX];
	int port = 0;
	cr_assert_eq(usb_port_split("1-1.2", hub, sizeof hub, &port), USB_OK);
	cr_assert_str_eq(hub, "1-1");
	cr_assert_eq(port, 2);
	cr_assert_eq(usb_port_split("3-4", hub, sizeof hub, &port), USB_OK);
	cr_assert_str_eq(hub, "3-0", "a port of the root hub");
	cr_assert_eq(port, 4);
	cr_assert_eq(usb_port_split("2-1.4.3", hub, sizeof hub, &port), USB_OK);
	cr_assert_str_eq(hub, "2-1.4");
	cr_assert_eq(port, 3);
	static const char *const bad[] = { "", "1", "1-", "-1", "1-1.", "1-0", "1-1..2", "a-1", "1-1.x", "1-256", NULL };
	for (int i = 0; bad[i]; i++)
		cr_expect_eq(usb_port_split(bad[i], hub, sizeof hub, &port), USB_ERR_ARG, "'%s' accepted", bad[i]);
}

Test(usb, lists_trackers_with_serials_and_slots)
{
	const char *devs[] = { HUB, FMB920, FMC130, UBLOX, NULL };
	const char *args[] = { "--json", "--rack", rackfile, NULL };
	int rc = rig_under_umockdev(devs, args);
	cr_assert_eq(rc, 0, "rig usb --json: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "\"port\":\"1-1.1\",\"bus\":1,\"address\":3,\"vid\":\"0483\",\"pid\":\"5740\",\"serial\":\""
			      SERIAL_1 "\",\"manufacturer\":\"Teltonika\",\"product\":\"FMB920\""), "%s", out);
	cr_assert(strstr(out, "\"serial\":\"" SERIAL_2 "\""), "%s", out);
	cr_assert(strstr(out, "\"vid\":\"1546\",\"pid\":\"01a8\",\"serial\":\"UBX-M8-0042\""), "%s", out);
	char line[4096];
	cr_assert(line_with(out, "\"devices\"", line, sizeof line));
	cr_assert(strstr(out, "\"product\":\"FMB920\",\"strings_from\":\"sysfs\",\"speed_mbps\":12,\"class\":2,"
			      "\"interfaces\":[2,10],\"slot\":1"), "FMB920 in slot 1 with its CDC-ACM interfaces:\n%s", out);
	cr_assert(strstr(out, "\"product\":\"USB2514B Hub\",\"strings_from\":\"sysfs\",\"speed_mbps\":480,\"class\":9,"
			      "\"interfaces\":[9],\"slot\":null"), "the hub belongs to no slot:\n%s", out);
	cr_assert(strstr(out, "{\"slot\":2,\"usb\":\"1-1.2\",\"expected_serial\":\"" SERIAL_2 "\",\"serial\":\"" SERIAL_2
			      "\",\"status\":\"ok\"}"), "%s", out);
	cr_assert(strstr(out, "{\"slot\":3,\"usb\":\"1-1.3\",\"expected_serial\":null,\"serial\":\"UBX-M8-0042\","
			      "\"status\":\"unchecked\"}"), "%s", out);
	cr_assert(strstr(out, "\"failed_slots\":0"), "%s", out);
}

Test(usb, table_names_slots)
{
	const char *devs[] = { HUB, FMB920, FMC130, NULL };
	const char *args[] = { "--rack", rackfile, NULL };
	cr_assert_eq(rig_under_umockdev(devs, args), 1, "slot 3 has nothing on 1-1.3:\n%s", out);
	char line[512];
	cr_assert(line_with(out, "1-1.2 ", line, sizeof line), "%s", out);
	cr_assert(strstr(line, "0483:5740") && strstr(line, SERIAL_2) && strstr(line, "12 Mbit/s"), "%s", line);
	cr_assert(line[strlen(line) - 1] == '2', "slot column: %s", line);
	cr_assert(strstr(out, "slot 3 (1-1.3): missing: no device on that port"), "%s", out);
}

Test(usb, swapped_unit_is_flagged)
{
	const char *devs[] = { HUB, FMB920, FMC130_SWAPPED, UBLOX, NULL };
	const char *args[] = { "--json", "--rack", rackfile, NULL };
	int rc = rig_under_umockdev(devs, args);
	cr_assert_eq(rc, 1, "a swapped unit fails the check: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "slot 2 (1-1.2): swapped unit: expected serial " SERIAL_2 ", found " SERIAL_2_OTHER),
		  "%s", out);
	cr_assert(strstr(out, "\"status\":\"swapped\""), "%s", out);
	cr_assert(strstr(out, "\"failed_slots\":1"), "only slot 2:\n%s", out);
}

Test(usb, no_devices_is_an_empty_list)
{
	const char *devs[] = { NULL };
	const char *args[] = { "--json", NULL };
	int rc = rig_under_umockdev(devs, args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "{\"devices\":[],\"slots\":[],\"failed_slots\":0}"), "%s", out);
}

Test(usb, bad_descriptor_is_named_not_a_crash)
{
	const char *devs[] = { HUB, BAD, FMB920, NULL };
	const char *args[] = { "--json", NULL };
	int rc = rig_under_umockdev(devs, args);
	cr_assert_eq(rc, 0, "the listing goes on: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "rig usb: 1-1.4 (1234:0001): bad descriptor: configuration 1 claims 67 bytes, 20 present"),
		  "%s", out);
	cr_assert(strstr(out, "\"problem\":\"bad descriptor: configuration 1 claims 67 bytes, 20 present\""), "%s", out);
	cr_assert(strstr(out, "\"serial\":\"" SERIAL_1 "\""), "the healthy device is still listed:\n%s", out);
	cr_assert_null(strstr(out, "Sanitizer"), "%s", out);
}

Test(usb, port_status_reads_the_hub)
{
	const char *args[] = { "--hub", HUB, FMB920, FMC130, "--", "power", "1-1.2", "status", "--json", NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "{\"port\":\"1-1.2\",\"hub\":\"1-1\",\"hub_port\":2,\"action\":\"status\",\"ok\":true,"
			      "\"result\":\"ok: power on, connected\",\"powered\":true,\"connected\":true,"
			      "\"port_status\":\"0103\"}"), "%s", out);
}

Test(usb, port_power_off_and_on_reenumerates)
{
	const char *args[] = { "--hub", HUB, FMB920, FMC130, "--enum-ms", "150", "--",
			       "power", "1-1.2", "off", "--json", "--db", db, "--operator", "tester", "--", "--json",
			       "--", "power", "1-1.2", "on", "--json", "--db", db, "--", "--json", NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	/* Four documents, one a line: off, list, on, list. */
	char *l[4] = { 0 };
	char *save = NULL, *p = out;
	int n = 0;
	for (char *t; n < 4 && (t = strtok_r(p, "\n", &save)); p = NULL)
		if (t[0] == '{')
			l[n++] = t;
	cr_assert_eq(n, 4, "four JSON lines expected:\n%s", out);
	cr_assert(strstr(l[0], "\"action\":\"off\",\"ok\":true") && strstr(l[0], "\"powered\":false")
			  && strstr(l[0], "\"port_status\":\"0000\"") && strstr(l[0], "\"gone_ms\":"), "%s", l[0]);
	cr_assert_null(strstr(l[1], "\"port\":\"1-1.2\""), "1-1.2 is gone while off: %s", l[1]);
	cr_assert(strstr(l[1], "\"port\":\"1-1.1\""), "1-1.1 stays: %s", l[1]);
	cr_assert(strstr(l[2], "\"action\":\"on\",\"ok\":true") && strstr(l[2], "\"powered\":true")
			  && strstr(l[2], "\"reenumerated\":true,\"reenum_ms\":")
			  && strstr(l[2], "\"serial\":\"" SERIAL_2 "\",\"other_serial\":false,\"other_path\":false"),
		  "%s", l[2]);
	cr_assert(strstr(l[3], "\"port\":\"1-1.2\""), "1-1.2 is back: %s", l[3]);

	char rig[PATH_MAX];
	support_bin("rig", rig, sizeof rig);
	char *audit[] = { rig, "audit", "--db", db, NULL };
	cr_assert_eq(support_run(audit, out, sizeof out), 0, "%s", out);
	char line[512];
	cr_assert(line_with(out, "usb power off", line, sizeof line), "audit row for off:\n%s", out);
	cr_assert(strstr(line, "tester") && strstr(line, "1-1.2") && strstr(line, "ok: power off"), "%s", line);
	cr_assert(line_with(out, "usb power on", line, sizeof line), "audit row for on:\n%s", out);
	cr_assert(strstr(line, "re-enumerated after"), "%s", line);
}

Test(usb, cycle_measures_reenumeration)
{
	const char *args[] = { "--hub", HUB, FMC130, "--", "power", "1-1.2", "cycle", "--off-time", "50", "--rack",
			       rackfile, "--db", db, NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "1-1.2: port 2 of hub 1-1: ok: power on, re-enumerated after "), "%s", out);
	cr_assert(strstr(out, " ms\n"), "%s", out);
}

Test(usb, unit_that_returns_with_another_serial_is_flagged)
{
	const char *args[] = { "--hub", HUB, FMC130, "--swap", "1-1.2=" FMC130_SWAPPED, "--", "power", "1-1.2", "cycle",
			       "--off-time", "50", "--rack", rackfile, "--db", db, "--json", NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 1, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "with serial " SERIAL_2_OTHER ", expected " SERIAL_2), "%s", out);
	cr_assert(strstr(out, "\"other_serial\":true"), "%s", out);
}

Test(usb, hub_that_stalls_is_a_clear_error)
{
	const char *args[] = { "--fault", "stall", "--hub", HUB, FMC130, "--", "power", "1-1.2", "off", "--db", db, NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 3, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "rig usb: hub 1-1 port 2: CLEAR_FEATURE(PORT_POWER): hub refused (STALL)"), "%s", out);
	cr_assert_null(strstr(out, "Sanitizer"), "%s", out);
}

Test(usb, hub_gone_mid_transfer_is_a_clear_error)
{
	const char *args[] = { "--fault", "gone", "--hub", HUB, FMC130, "--", "power", "1-1.2", "on", "--db", db, NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 3, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "rig usb: hub 1-1 port 2: SET_FEATURE(PORT_POWER): hub gone mid-transfer"), "%s", out);
}

Test(usb, power_on_a_device_that_is_no_hub)
{
	const char *args[] = { "--hub", HUB, FMC130, "--", "power", "1-1.2.1", "status", NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 3, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "1-1.2 (0483:5740, class 2) is not a hub"), "%s", out);
}

Test(usb, port_beyond_the_hub)
{
	const char *args[] = { "--hub", HUB, "--", "power", "1-1.7", "status", NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 2, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "hub 1-1 has ports 1..4, not 7"), "%s", out);
}

Test(usb, bad_arguments_are_usage_errors)
{
	const char *devs[] = { NULL };
	const char *a1[] = { "power", "1-1.x", "off", NULL };
	cr_assert_eq(rig_under_umockdev(devs, a1), 2, "%s", out);
	cr_assert(strstr(out, "'1-1.x': not a USB port path"), "%s", out);
	const char *a2[] = { "power", "1-1.2", "sideways", NULL };
	cr_assert_eq(rig_under_umockdev(devs, a2), 2, "%s", out);
	cr_assert(strstr(out, "'sideways': expected on, off, cycle or status"), "%s", out);
}

Test(usb, rack_slot_powered_from_a_hub_port)
{
	/* A rack file whose slot 1 takes its power from hub port 1-1.2. */
	char rack[PATH_MAX + 32];
	snprintf(rack, sizeof rack, "%s/usbpower.yaml", dir);
	FILE *f = fopen(rack, "w");
	cr_assert_not_null(f);
	fputs("slots:\n  - id: 1\n    console: {port: /dev/ttyACM0}\n    power: {usb: 1-1.2}\n", f);
	fclose(f);
	const char *args[] = { "--hub", HUB, FMB920, FMC130, "--enum-ms", "150", "--",
			       "rig-power", "1", "off", "--rack", rack, "--db", db, "--", "--json",
			       "--", "rig-power", "1", "on", "--rack", rack, "--db", db, NULL };
	int rc = testbed(args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "1     off     1-1 port 2 (USB hub port power)"), "%s", out);
	cr_assert(strstr(out, "1     on      1-1 port 2 (USB hub port power)"), "%s", out);
	const char *list = strstr(out, "\n{");
	cr_assert_not_null(list, "%s", out);
	cr_assert_null(strstr(list, "\"port\":\"1-1.2\""), "the slot's unit is gone while its port is off: %s", out);
}
