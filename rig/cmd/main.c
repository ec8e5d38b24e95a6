/*
 * cmd/main.c - the `rig` command: one table of subcommands.
 */
#include "cli.h"
#include "embedded.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern int cmd_probe(int argc, char **argv);
extern int cmd_ports(int argc, char **argv);
extern int cmd_audit(int argc, char **argv);
extern int cmd_demo(int argc, char **argv);
extern int cmd_power(int argc, char **argv);
extern int cmd_run(int argc, char **argv);
extern int cmd_nightly(int argc, char **argv); extern const char cmd_nightly_usage[];
extern int cmd_slot(int argc, char **argv); extern const char cmd_slot_usage[];
extern int cmd_rack(int argc, char **argv);
extern int cmd_relay(int argc, char **argv);
extern int cmd_diagnose(int argc, char **argv); extern const char cmd_diagnose_usage[];
extern int cmd_serve(int argc, char **argv); extern const char cmd_serve_usage[];
extern int cmd_usb(int argc, char **argv); extern const char cmd_usb_usage[];
extern int cmd_fw(int argc, char **argv); extern const char cmd_fw_usage[];
extern int cmd_gnss(int argc, char **argv); extern const char cmd_gnss_usage[];
extern int cmd_rollout(int argc, char **argv); extern const char cmd_rollout_usage[];
extern int cmd_accept(int argc, char **argv); extern const char cmd_accept_usage[];
extern int cmd_qualify(int argc, char **argv); extern const char cmd_qualify_usage[];
extern const char cmd_probe_usage[], cmd_ports_usage[], cmd_audit_usage[], cmd_demo_usage[],
	cmd_power_usage[], cmd_rack_usage[], cmd_relay_usage[], cmd_run_usage[];

static const struct rig_command commands[] = {
	{ "run", "run scenarios on every selected slot in parallel", cmd_run_usage, cmd_run },
	{ "nightly", "power-loss, offline-flush and data-cap; quarantines unhealthy slots", cmd_nightly_usage, cmd_nightly },
	{ "slot", "list quarantined slots, or bring one back (reset N)", cmd_slot_usage, cmd_slot },
	{ "probe", "identity, firmware and status of a port's or a rack's trackers", cmd_probe_usage, cmd_probe },
	{ "power", "switch or read slots' supplies (on, off, cycle, status)", cmd_power_usage, cmd_power },
	{ "relay", "switch or read slots' relay lines (ignition, antennas, inputs)", cmd_relay_usage, cmd_relay },
	{ "rack", "check a rack file and that every console, supply and relay answers", cmd_rack_usage, cmd_rack },
	{ "ports", "list serial ports with their USB identity", cmd_ports_usage, cmd_ports },
	{ "usb", "USB devices by port path and slot; swapped units fail; hub port power", cmd_usb_usage, cmd_usb },
	{ "gnss", "GNSS fix quality of NMEA ports through gpsd, and the dispatch verdict", cmd_gnss_usage, cmd_gnss },
	{ "diagnose", "what is wrong with each slot's tracker: reason, confidence, actions", cmd_diagnose_usage, cmd_diagnose },
	{ "audit", "the audit trail: each command sent to a device, who, where, result", cmd_audit_usage, cmd_audit },
	{ "serve", "receive and store trackers' telemetry (Teltonika TCP ingest)", cmd_serve_usage, cmd_serve },
	{ "fw", "firmware images: pack, sign, inspect, verify, serve over HTTP", cmd_fw_usage, cmd_fw },
	{ "rollout", "staged firmware rollout over a cohort, with health gates and a stop button", cmd_rollout_usage, cmd_rollout },
	{ "accept", "install acceptance of one device against its work order: PASS or FAIL with actions", cmd_accept_usage, cmd_accept },
	{ "qualify", "qualification suite, then models compared and ranked (HTML, charts)", cmd_qualify_usage, cmd_qualify },
	{ "demo", "nightly suite on a simulated 8-slot rack; writes run and trends pages", cmd_demo_usage, cmd_demo },
};

const struct rig_command *cli_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rig COMMAND [OPTIONS]\n"
		"       rig COMMAND --help\n"
		"       rig --version\n\n"
		"trackrig: hardware-in-the-loop tests for GPS/telematics trackers.\n"
		"With no rack file, run, nightly, qualify, rollout, probe, rack check,\n"
		"accept --slot and demo start a simulated rack on virtual time; power,\n"
		"relay and diagnose need a rack file, gnss a rack file or --port.\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\nexit codes: 0 ok/pass, 1 a check failed, 2 usage or configuration error,\n"
		"            3 infrastructure error (device, port or service unreachable)\n");
}

static int unknown_command(const char *word)
{
	const char *names[sizeof commands / sizeof commands[0]];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		names[i] = commands[i].name;
	const char *guess = cli_suggest(word, names, sizeof names / sizeof names[0]);
	if (guess)
		fprintf(stderr, "rig: unknown command '%s'; did you mean '%s'?\n", word, guess);
	else
		fprintf(stderr, "rig: unknown command '%s' (see rig --help)\n", word);
	return RIG_EXIT_USAGE;
}

/* A port opened while fd 0, 1 or 2 is closed would become stdin/stdout/
 * stderr, and log or trace output would go out on the serial line. */
static void keep_std_fds_open(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
			break;
}

int main(int argc, char **argv)
{
	keep_std_fds_open();
	/* A peer that dies (a simulated rack's control socket, a tracker's
	 * link) is an error on that write, reported as the rig's, never a
	 * signal that kills the rig before it records anything. */
	signal(SIGPIPE, SIG_IGN);
	/* Temp dirs of rigs that were killed (their simrack and gpsd died
	 * with them; the dirs could not). */
	embedded_sweep_leftovers();
	if (argc < 2) {
		usage(stderr);
		return RIG_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return RIG_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("rig (trackrig) %s\n", TRACKRIG_VERSION);
		return RIG_EXIT_OK;
	}
	const struct rig_command *c = cli_find(argv[1]);
	if (!c)
		return unknown_command(argv[1]);
	opterr = 0;  /* cli_bad_option says it once, with a suggestion */
	if (cli_wants_help(argc - 1, argv + 1)) {
		fputs(c->usage, stdout);
		return RIG_EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
