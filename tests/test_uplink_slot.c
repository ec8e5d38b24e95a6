/*
 * test_uplink_slot.c - a rack with its consoles removed: every command goes
 * over codec 12 through the rig's ingest (docs/rack-file.md, "Slots
 * without a console").
 *
 * A simulated FMB920 is set once, over its console as an installer would
 * through the vendor's configurator, to send to a fixed port; then the rack
 * file loses the console and names that port as its uplink, and `rig run`
 * drives the unit only through its TCP link.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static char dir[4096];

static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(uplink_slot, .init = make_dir, .fini = remove_dir, .timeout = 300);

static char *path_in(const char *name)
{
	static char p[4][4200];
	static int k;
	char *s = p[k++ % 4];
	snprintf(s, sizeof p[0], "%s/%s", dir, name);
	return s;
}


/* A loopback port nobody listens on now. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* RACK's text without slot 1's console line, with `uplink: {port: PORT}`. */
static void without_console(const char *rack, const char *out, int port)
{
	char *text = support_read_file(rack);
	cr_assert_not_null(text);
	char *c = strstr(text, "    console: {port: ");
	cr_assert_not_null(c, "%s", text);
	char *end = strchr(c, '\n');
	memmove(c, end + 1, strlen(end + 1) + 1);
	FILE *f = fopen(out, "w");
	cr_assert_not_null(f);
	fprintf(f, "uplink: {port: %d}\n%s", port, text);
	fclose(f);
	free(text);
}

Test(uplink_slot, a_console_less_teltonika_runs_over_codec12)
{
	static const char *const args[] = { "--virtual", "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 5, args), 0);
	int ctl = simrack_control(&sr);
	support_ctl_move(ctl, "advance", 10000); /* booted: a reference FMB920 takes 5 s */
	int port = free_port();
	char con[4200], line[600], cmd[64];
	int fd = support_tty_open(simrack_console(&sr, 1, con, sizeof con));
	support_console_command(fd, "setparam 2004:127.0.0.1", line, sizeof line);
	snprintf(cmd, sizeof cmd, "setparam 2005:%d", port);
	support_console_command(fd, cmd, line, sizeof line);
	support_console_command(fd, "setparam 2006:0", line, sizeof line);
	close(fd);
	close(ctl);

	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	without_console(rackfile, path_in("rack.yaml"), port);
	char sh[16000];
	snprintf(sh, sizeof sh, "'%s' run power-loss data-cap gnss-outage ttff --rack '%s' --db '%s' --json '%s' > '%s' 2>&1",
		 support_bin("rig", (char[4096]){ 0 }, 4096), path_in("rack.yaml"), path_in("u.db"), path_in("u.json"),
		 path_in("u.out"));
	int st = system(sh);
	char *out = support_read_file(path_in("u.out"));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d:\n%s", WEXITSTATUS(st), out);
	char *json = support_read_file(path_in("u.json"));
	cr_assert_not_null(json);
	static char b[32768];
	static const char *const pass[] = { "power-loss", "gnss-outage", "ttff" };
	for (size_t i = 0; i < 3; i++) {
		support_result_block(json, 1, pass[i], b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\""), "%s over codec 12:\n%s", pass[i], b);
	}
	/* With its data plan spent the unit's uplink is gone, and every
	 * command with it: the cap can be named only from a console port. */
	support_result_block(json, 1, "data-cap", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"skipped\"") && strstr(b, "console port"), "%s", b);
	free(json);
	free(out);
	/* Every command of the run went over the uplink: the audit says where. */
	char *audit_argv[] = { (char *)support_bin("rig", (char[4096]){ 0 }, 4096), "audit", "--db", path_in("u.db"),
			       NULL };
	static char aud[262144];
	support_run(audit_argv, aud, sizeof aud);
	cr_assert(strstr(aud, "IMEI") || strstr(aud, "@"), "%s", aud);
	cr_assert_null(strstr(aud, con), "the console was used:\n%s", aud);
	simrack_stop(&sr);
}
