/* test_rack.c - rack files: what is read, and errors that say where. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "json.h"
#include "rack.h"

static char dir[4096];

static void make_dir(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
}

static void remove_dir(void)
{
	cr_assert_eq(support_rmtree(dir), 0);
}

TestSuite(rack, .init = make_dir, .fini = remove_dir);

static const char *write_file(const char *name, const char *text)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char full_rack[] =
	"station: bench-3\n"
	"reference: {lat: 54.681297, lon: 25.274292, alt: 106}\n"
	"boards:\n"
	"  - {name: relays, driver: coil, transport: tcp://127.0.0.1:5030, unit: 2}\n"
	"slots:\n"
	"  - id: 1\n"
	"    console: {port: /dev/ttyUSB0, baud: 57600}\n"
	"    nmea: {port: /dev/ttyUSB1}\n"
	"    usb: 1-1.2\n"
	"    power: {driver: rd60xx, transport: 'rtu:/dev/ttyUSB9@115200', unit: 1, volts: 12.5, amps: 1.5, safe: on}\n"
	"    lines:\n"
	"      ignition: {board: relays, channel: 0}\n"
	"      gnss_antenna: {board: relays, channel: 1}\n"
	"    vendor: Teltonika\n"
	"    model: FMB920\n"
	"    expect: {imei: \"352094087230394\", iccid: \"89370030000000000005\", serial: \"1101234567\", vehicle: VAN-17}\n"
	"    tags: {model: FMB920, region: north, customer: acme}\n"
	"  - id: 7\n"
	"    console: {port: /dev/ttyUSB2}\n"
	"    lines: {main: {board: relays, channel: 5}}\n"
	"    power: {relay: main}\n";

Test(rack, reads_every_field)
{
	struct rack r;
	char err[512];
	const char *p = write_file("rack.yaml", full_rack);
	cr_assert_eq(rack_load(p, &r, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(r.station, "bench-3");
	cr_assert(r.has_reference);
	cr_assert_float_eq(r.ref_lat, 54.681297, 1e-9);
	cr_assert_eq(r.n_boards, 1);
	cr_assert_eq(r.boards[0].bus.unit, 2);
	cr_assert_eq(r.n_slots, 2);
	const struct rack_slot *s = rack_slot(&r, 1);
	cr_assert_not_null(s);
	cr_assert_str_eq(s->console.path, "/dev/ttyUSB0");
	cr_assert_eq(s->console.baud, 57600);
	cr_assert_eq(s->nmea.baud, 9600, "NMEA defaults to 9600 baud");
	cr_assert_str_eq(s->usb, "1-1.2");
	cr_assert_eq(s->power.kind, RACK_POWER_SUPPLY);
	cr_assert_str_eq(s->power.bus.transport, "rtu:/dev/ttyUSB9@115200");
	cr_assert(s->power.safe_on);
	cr_assert_float_eq(s->power.volts, 12.5, 1e-9);
	cr_assert_eq(s->n_lines, 2);
	cr_assert_str_eq(s->lines[1].name, "gnss_antenna");
	cr_assert_eq(s->lines[1].channel, 1);
	cr_assert_str_eq(s->expect.imei, "352094087230394");
	cr_assert_str_eq(s->expect.vehicle, "VAN-17");
	cr_assert_str_eq(rack_tag(s, "region"), "north");
	cr_assert_null(rack_tag(s, "colour"));
	cr_assert_str_eq(s->protocol, "teltonika");
	const struct rack_slot *s7 = rack_slot(&r, 7);
	cr_assert_eq(s7->console.baud, 115200);
	cr_assert_eq(s7->power.kind, RACK_POWER_RELAY);
	cr_assert_str_eq(s7->power.relay, "main");
	rack_free(&r);
	p = write_file("usb.yaml", "slots:\n  - {id: 2, console: {port: /a}, power: {usb: 1-1.2}}\n");
	cr_assert_eq(rack_load(p, &r, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.slots[0].power.kind, RACK_POWER_USB);
	cr_assert_str_eq(r.slots[0].power.usb, "1-1.2");
	rack_free(&r);
}

/* Loads TEXT and expects an error containing each of the given parts. */
static void expect_error(const char *text, const char *part1, const char *part2)
{
	struct rack r;
	char err[512] = "";
	const char *p = write_file("bad.yaml", text);
	cr_assert_eq(rack_load(p, &r, err, sizeof err), -1, "accepted: %s", text);
	cr_assert(strstr(err, part1), "error '%s' lacks '%s'", err, part1);
	if (part2)
		cr_assert(strstr(err, part2), "error '%s' lacks '%s'", err, part2);
	cr_assert(strstr(err, "bad.yaml:"), "error '%s' does not name the file", err);
	rack_free(&r);
}

Test(rack, unknown_key_names_line_column_and_known_keys)
{
	expect_error("slots:\n  - id: 1\n    consol: {port: /dev/x}\n", "bad.yaml:3:5:", "unknown key 'consol'");
	expect_error("slots:\n  - id: 1\n    console: {port: /dev/x, bauds: 9600}\n", "slots[0].console",
		     "known: port, baud");
}

Test(rack, wrong_types_name_the_key_path)
{
	expect_error("slots:\n  - id: 1\n    console: {port: /dev/x, baud: fast}\n", "bad.yaml:3:35:",
		     "slots[0].console.baud: expected a whole number, got 'fast'");
	expect_error("slots:\n  - id: one\n    console: {port: /dev/x}\n", "slots[0].id", "got 'one'");
	expect_error("reference: {lat: 95, lon: 0}\nslots:\n  - {id: 1, console: {port: /x}}\n", "reference",
		     "outside");
}

Test(rack, syntax_error_has_position)
{
	expect_error("slots:\n  - id: 1\n    console: {port: /dev/x\n", "YAML syntax", "bad.yaml:");
}

Test(rack, structure_errors)
{
	expect_error("station: x\n", "missing 'slots'", NULL);
	expect_error("slots: []\n", "no slots", NULL);
	/* No console: commands over the uplink, which needs the unit's IMEI
	 * and the rack's uplink port. */
	expect_error("slots:\n  - id: 1\n", "give its IMEI", NULL);
	expect_error("slots:\n  - id: 1\n    expect: {imei: \"352094087230394\"}\n", "needs 'uplink: {port: N}'", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}}\n  - {id: 1, console: {port: /b}}\n",
		     "slot 1 is also defined on line 2", "bad.yaml:3:");
	expect_error("slots:\n  - id: 1\n    id: 2\n    console: {port: /a}\n", "given twice", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {driver: rd60xx, transport: 'tcp://host'}}\n",
		     "expected tcp://HOST:PORT", "slots[0].power.transport");
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {driver: hp6632, transport: 'tcp://h:1'}}\n",
		     "unknown supply driver 'hp6632'", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}, lines: {ignition: {board: nope, channel: 0}}}\n",
		     "no board named 'nope'", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {relay: main}}\n", "no line named 'main'", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {usb: 'hub two'}}\n", "expected a port path", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {usb: 1-1.2, relay: x}}\n", "one power source", NULL);
	expect_error("", "empty", NULL);
}

Test(rack, missing_file_is_named)
{
	struct rack r;
	char err[512];
	cr_assert_eq(rack_load("/nonexistent/rack.yaml", &r, err, sizeof err), -1);
	cr_assert(strstr(err, "/nonexistent/rack.yaml: cannot open"), "%s", err);
	rack_free(&r);
}

Test(rack, slot_selection)
{
	struct rack r;
	char err[512];
	const char *p = write_file("rack.yaml",
				   "slots:\n  - {id: 1, console: {port: /a}}\n  - {id: 2, console: {port: /b}}\n"
				   "  - {id: 3, console: {port: /c}}\n  - {id: 7, console: {port: /d}}\n");
	cr_assert_eq(rack_load(p, &r, err, sizeof err), 0, "%s", err);
	bool sel[4];
	cr_assert_eq(rack_select(&r, "all", sel, err, sizeof err), 4);
	cr_assert_eq(rack_select(&r, "2", sel, err, sizeof err), 1);
	cr_assert(sel[1] && !sel[0] && !sel[2]);
	cr_assert_eq(rack_select(&r, "1-3,7", sel, err, sizeof err), 4);
	cr_assert_eq(rack_select(&r, "1-2,2,7", sel, err, sizeof err), 3, "a slot named twice counts once");
	cr_assert_eq(rack_select(&r, "4", sel, err, sizeof err), -1);
	cr_assert(strstr(err, "slot 4 is not in"), "%s", err);
	cr_assert_eq(rack_select(&r, "3-1", sel, err, sizeof err), -1);
	cr_assert_eq(rack_select(&r, "1,,2", sel, err, sizeof err), -1);
	cr_assert_eq(rack_select(&r, "x", sel, err, sizeof err), -1);
	cr_assert(strstr(err, "bad slot list 'x'"), "%s", err);
	rack_free(&r);
}

Test(json, escapes_hostile_strings)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;
	json_init(&j, f, false);
	json_obj_begin(&j, NULL);
	json_str(&j, "model", "FM\"B\\9\n20</script><b>");
	json_num(&j, "nan", 0.0 / 0.0);
	json_arr_begin(&j, "e");
	json_int(&j, NULL, -3);
	json_bool(&j, NULL, true);
	json_arr_end(&j);
	json_obj_end(&j);
	fclose(f);
	cr_assert_str_eq(buf, "{\"model\":\"FM\\\"B\\\\9\\n20\\u003c/script>\\u003cb>\",\"nan\":null,\"e\":[-3,true]}");
	free(buf);
}

/* Limits on numbers (docs/rack-file.md, "Limits"): a supply set point an
 * RD60xx cannot take is a typo that would reach a tracker's input. */
Test(rack, numbers_outside_their_limits_name_file_line_column)
{
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {driver: rd60xx, transport: 'tcp://h:1', "
		     "volts: 120, amps: 1}}\n",
		     "bad.yaml:2:89: slots[0].power.volts", "120 is outside 0..60");
	expect_error("slots:\n  - {id: 1, console: {port: /a}, power: {driver: rd60xx, transport: 'tcp://h:1', "
		     "volts: 12, amps: -1}}\n",
		     "slots[0].power.amps", "-1 is outside 0..18");
	expect_error("reference: {lat: 1, lon: 2, alt: 1e9}\nslots:\n  - {id: 1, console: {port: /a}}\n",
		     "bad.yaml:1:34: reference.alt", "outside -500..9000");
}

Test(rack, slot_count_is_limited)
{
	char *text = malloc(40 * 1030 + 16);
	cr_assert_not_null(text);
	strcpy(text, "slots:\n");
	for (int i = 1; i <= 1025; i++)
		sprintf(text + strlen(text), "  - {id: %d, console: {port: /a}}\n", i);
	expect_error(text, "bad.yaml:2:3: slots", "at most 1024");
	free(text);
}

/* A rack refused at its second slot had allocated the slots: the loader
 * frees them itself (it leaked them, found by fuzzing rack_load). */
Test(rack, refused_rack_frees_what_it_allocated)
{
	struct rack rack;
	char err[512];
	const char *p = write_file("bad.yaml", "slots:\n  - {id: 1, console: {port: /a}}\n  - {id: x, console: {port: /b}}\n");
	cr_assert_eq(rack_load(p, &rack, err, sizeof err), -1);
	cr_assert_null(rack.slots, "a refused rack keeps no slots: %s", err);
	cr_assert_eq(rack.n_slots, 0);
}

/* Supplies and relay boards come from the drivers' tables: a name not in
 * them is refused where it stands, with the names that would do. */
Test(rack, unknown_driver_lists_the_tables_names)
{
	expect_error("slots:\n  - {id: 1, console: {port: /a},\n     power: {driver: hp6632, transport: 'tcp://h:1'}}\n",
		     "bad.yaml:3:22: slots[0].power.driver: unknown supply driver 'hp6632' (known: rd60xx, korad)",
		     NULL);
	expect_error("boards:\n  - {name: b, driver: sainsmart, transport: 'serial:/dev/ttyACM0'}\n"
		     "slots:\n  - {id: 1, console: {port: /a}}\n",
		     "bad.yaml:2:23: boards[0].driver: unknown relay board driver 'sainsmart' (known: coil, register, numato)",
		     NULL);
}

/* Each driver judges its own transport: a Modbus one for the RD60xx and
 * the coil boards, serial:DEVICE@BAUD for the serial families. */
Test(rack, each_driver_checks_its_own_transport)
{
	expect_error("slots:\n  - {id: 1, console: {port: /a},\n     power: {driver: korad, transport: 'tcp://h:1', volts: 12, amps: 1}}\n",
		     "bad.yaml:3:40: slots[0].power.transport: 'tcp://h:1': expected serial:DEVICE@BAUD", NULL);
	expect_error("slots:\n  - {id: 1, console: {port: /a},\n     power: {driver: korad, transport: 'serial:/dev/x@fast', volts: 12, amps: 1}}\n",
		     "expected serial:DEVICE@BAUD", "bad.yaml:3:40:");
	expect_error("slots:\n  - {id: 1, console: {port: /a},\n     power: {driver: rd60xx, transport: 'serial:/dev/ttyUSB0'}}\n",
		     "bad.yaml:3:41: slots[0].power.transport: 'serial:/dev/ttyUSB0': expected tcp://HOST:PORT or rtu:DEVICE@BAUD",
		     NULL);
	expect_error("boards:\n  - {name: b, driver: numato, transport: 'rtu:/dev/ttyACM0@9600'}\n"
		     "slots:\n  - {id: 1, console: {port: /a}}\n",
		     "boards[0].transport: 'rtu:/dev/ttyACM0@9600': expected serial:DEVICE@BAUD", "bad.yaml:2:");
	expect_error("boards:\n  - {name: b, driver: coil, transport: 'serial:/dev/ttyACM0'}\n"
		     "slots:\n  - {id: 1, console: {port: /a}}\n",
		     "boards[0].transport", "expected tcp://HOST:PORT or rtu:DEVICE@BAUD");

	struct rack r;
	char err[512];
	const char *p = write_file("serial.yaml",
				   "boards:\n  - {name: m, driver: numato, transport: 'serial:/dev/ttyACM0'}\n"
				   "slots:\n  - id: 1\n    console: {port: /a}\n"
				   "    power: {driver: korad, transport: 'serial:/dev/ttyUSB3@9600', volts: 12, amps: 1}\n"
				   "    lines: {ignition: {board: m, channel: 0}}\n");
	cr_assert_eq(rack_load(p, &r, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(r.slots[0].power.driver, "korad");
	cr_assert_str_eq(r.slots[0].power.bus.transport, "serial:/dev/ttyUSB3@9600");
	cr_assert_str_eq(r.boards[0].driver, "numato");
	rack_free(&r);
}
