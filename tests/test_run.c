/*
 * test_run.c - the scenario engine end to end: `rig run` on simulated racks.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static char dir[4096];

static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(run, .init = make_dir, .fini = remove_dir, .timeout = 120);

static const char *rig(void)
{
	static char buf[4096];
	return support_bin("rig", buf, sizeof buf);
}

static char *path_in(const char *name)
{
	static char bufs[4][4200];
	static int k;
	char *b = bufs[k++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
	return b;
}

/* The result block of SLOT in a JSON record (up to the next slot's). */
static char *slot_block(const char *json, int slot, char *out, size_t len)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\"slot\": %d,", slot);
	const char *p = strstr(json, pat);
	cr_assert_not_null(p, "no slot %d in the record", slot);
	const char *q = strstr(p + 1, "\"slot\": ");
	size_t n = q ? (size_t)(q - p) : strlen(p);
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/* The value of measurement NAME in a result block; NAN when absent. */
static double measure_value(const char *block, const char *name)
{
	char pat[96];
	snprintf(pat, sizeof pat, "\"name\": \"%s\"", name);
	const char *p = strstr(block, pat);
	const char *v = p ? strstr(p, "\"value\": ") : NULL;
	return v ? strtod(v + 9, NULL) : NAN;
}

/* One figure from a slot's supply trace in store DB: SQL is a query over
 * supply_samples with ?1 the slot; NAN when it gives nothing. */
static double trace_figure(const char *db, const char *sql, int slot)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	double v = NAN;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
	char s[12];
	snprintf(s, sizeof s, "%d", slot);
	sqlite3_bind_text(st, 1, s, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

/* The power-loss trace, read back: idle before the cut, nothing while it
 * lasts, booting current when power returns, then idle again; a unit whose
 * bootloader hangs stays at its booting current (fixtures/README.md draws). */
/* Slot SLOT's supply trace around the 5 s cut: IDLE amps before and after
 * (its profile's idle draw), BOOT amps when power returns (its booting
 * draw), and for a unit that HANGS, still booting current at the end.
 * Within 15 %: the readings are the supply's, rounded to its mA. */
static bool near(double v, double want)
{
	return v > want * 0.85 && v < want * 1.15;
}

static void check_power_trace(const char *db, int slot, bool hangs, double idle, double boot)
{
	double before = trace_figure(db, "SELECT max(amps) FROM supply_samples WHERE slot = ?1 AND t_ms < 1000", slot);
	double during = trace_figure(db, "SELECT max(amps) FROM supply_samples WHERE slot = ?1 AND t_ms BETWEEN 1200 AND 5900", slot);
	double back = trace_figure(db, "SELECT min(t_ms) FROM supply_samples WHERE slot = ?1 AND t_ms > 1200 AND amps > 0", slot);
	double first = trace_figure(db, "SELECT amps FROM supply_samples WHERE slot = ?1 AND t_ms > 1200 AND amps > 0"
				    " ORDER BY t_ms LIMIT 1", slot);
	double last = trace_figure(db, "SELECT amps FROM supply_samples WHERE slot = ?1 ORDER BY t_ms DESC LIMIT 1", slot);
	double n = trace_figure(db, "SELECT count(*) FROM supply_samples WHERE slot = ?1", slot);
	cr_assert(n >= 60, "slot %d: %g readings at 100 ms", slot, n);
	cr_assert(near(before, idle), "slot %d idle before the cut: %g A, not %g", slot, before, idle);
	cr_assert_float_eq(during, 0.0, 1e-9, "slot %d during the cut: %g A", slot, during);
	cr_assert(back > 5000, "slot %d: power back at %g ms, after the 5 s cut", slot, back);
	cr_assert(near(first, boot), "slot %d booting current when power returns: %g A, not %g", slot, first, boot);
	if (hangs)
		cr_assert(near(last, boot), "slot %d hangs in its bootloader: still %g A at the end", slot, last);
	else
		cr_assert(near(last, idle), "slot %d idle again after its boot: %g A, not %g", slot, last, idle);
}

Test(run, embedded_rack_reference_passes_each_defect_fails_for_its_reason)
{
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", "power-loss", "--db", path_in("r.db"), "--junit", path_in("j.xml"),
			 "--json", path_in("r.json"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 1, "defective units must fail the run (exit %d):\n%s", rc, out);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json);
	static char b[16384];
	/* The mix puts reference units in slots 1, 2, 4, 5 and 7. */
	int refs[] = { 1, 2, 4, 5, 7 };
	for (size_t i = 0; i < 5; i++) {
		slot_block(json, refs[i], b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\""), "reference slot %d:\n%s", refs[i], b);
		cr_assert(strstr(b, "\"name\": \"boot_time\""), "%s", b);
		/* A Teltonika unit prints no events: the restart was read from
		 * its restart counter and uptime, and no event was invented. */
		cr_assert(strstr(b, "\"events\": []"), "events recorded from a Teltonika unit: %s", b);
	}
	/* The reference FMB920: 24 mA idle (published), 100 mA booting
	 * (assumed); the no_return clone (AT-200): 55 and 200 mA. */
	check_power_trace(path_in("r.db"), 1, false, 0.024, 0.100);
	check_power_trace(path_in("r.db"), 3, true, 0.055, 0.200);
	slot_block(json, 3, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "no answer showing a restart"), "no_return:\n%s", b);
	cr_assert(strstr(b, "device_unresponsive"), "its diagnosis names it:\n%s", b);
	slot_block(json, 6, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "reset_reason") && strstr(b, "not reported"),
		  "no_reset_reason:\n%s", b);
	slot_block(json, 8, b, sizeof b);
	/* Its own reason: an answer that came damaged (characters lost). */
	cr_assert(strstr(b, "\"outcome\": \"fail\"") &&
		  (strstr(b, "unrecognised line") || strstr(b, "garbled") || strstr(b, "no readable") ||
		   strstr(b, "no numeric")), "flaky console:\n%s", b);
	free(json);

	char *junit = support_read_file(path_in("j.xml"));
	cr_assert_not_null(junit);
	cr_assert(strstr(junit, "<testsuite name=\"power-loss\" tests=\"8\" failures=\"3\" errors=\"0\""), "%s", junit);
	cr_assert(strstr(junit, "name=\"slot 1: Teltonika FMB920 "), "%s", junit);
	cr_assert(strstr(junit, "<property name=\"boot_time\""), "%s", junit);
	cr_assert(strstr(junit, "<failure type=\"fail\" message=\"slot 3, "), "%s", junit);
	free(junit);
	cr_assert(strstr(out, "PASS") && strstr(out, "FAIL"), "summary table:\n%s", out);
}

/* Drops the lines that may differ between two equal runs: wall-clock times
 * and the simulated rack's temp dir. */
static void normalise(char *json)
{
	char rackdir[256] = "";
	const char *r = strstr(json, "\"rack\": \"");
	if (r) {
		r += 9;
		const char *end = strstr(r, "/rack.yaml");
		if (end && (size_t)(end - r) < sizeof rackdir)
			snprintf(rackdir, sizeof rackdir, "%.*s", (int)(end - r), r);
	}
	char *w = strstr(json, "\"wall_clock\"");
	if (w) {
		char *close = strchr(w, '}');
		memset(w, ' ', (size_t)(close - w + 1));
	}
	for (char *p; *rackdir && (p = strstr(json, rackdir));)
		memset(p, 'X', strlen(rackdir));
}

Test(run, same_seed_same_record)
{
	static char out[65536];
	char *a[] = { (char *)rig(), "run", "power-loss", "--seed", "5", "--db", path_in("a.db"), "--json",
		      path_in("a.json"), NULL };
	char *b[] = { (char *)rig(), "run", "power-loss", "--seed", "5", "--db", path_in("b.db"), "--json",
		      path_in("b.json"), NULL };
	cr_assert_eq(support_run(a, out, sizeof out), 1, "%s", out);
	cr_assert_eq(support_run(b, out, sizeof out), 1, "%s", out);
	char *ja = support_read_file(path_in("a.json")), *jb = support_read_file(path_in("b.json"));
	cr_assert(ja && jb);
	cr_assert(strstr(ja, "\"at\": \"2026-01-01T00:00:"), "events stamped on rack time:\n%.2000s", ja);
	normalise(ja);
	normalise(jb);
	cr_assert_str_eq(ja, jb, "two runs with seed 5 differ");
	free(ja);
	free(jb);
}

static const char *const virtual_reference[] = { "--virtual", "--profiles", "reference", NULL };

Test(run, dead_slot_is_error_and_the_others_complete)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 3, 4, virtual_reference), 0);
	char rackfile[4200], cmd[13000];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	/* Slot 2's console points at a port that does not exist. */
	snprintf(cmd, sizeof cmd, "sed 's#%s/slot2/console#/dev/ttyUSB-gone#' '%s' > '%s'", sr.dir, rackfile,
		 path_in("dead.yaml"));
	cr_assert_eq(system(cmd), 0);
	char *text = support_read_file(path_in("dead.yaml"));
	cr_assert(text && strstr(text, "/dev/ttyUSB-gone"), "the edit took");
	free(text);
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", "power-loss", "--rack", path_in("dead.yaml"), "--db", path_in("r.db"),
			 "--json", path_in("r.json"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 3, "a dead slot is an infrastructure error (exit %d):\n%s", rc, out);
	char *json = support_read_file(path_in("r.json"));
	static char b[16384];
	slot_block(json, 2, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"error\"") && strstr(b, "/dev/ttyUSB-gone"), "%s", b);
	slot_block(json, 1, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"pass\""), "%s", b);
	slot_block(json, 3, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"pass\""), "%s", b);
	free(json);
	simrack_stop(&sr);
}

Test(run, sigint_aborts_leaves_safe_state_and_keeps_records)
{
	/* A wall-clock rack and a long wait, so the run is surely mid-way. */
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 6), 0);
	FILE *f = fopen(path_in("long.yaml"), "w");
	fputs("name: long\nrequires: [power]\nsteps:\n  - command: getver\n  - power: on\n  - wait: 10m\n"
	      "  - command: getver\n", f);
	fclose(f);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	int po[2];
	cr_assert_eq(pipe(po), 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(po[1], 2);
		dup2(po[1], 1);
		execl(rig(), rig(), "run", path_in("long.yaml"), "--rack", rackfile, "--db", path_in("r.db"), "--json",
		      path_in("r.json"), (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	/* Wait until the run has started its slots, then interrupt it. */
	char buf[4096];
	size_t got = 0;
	while (got < sizeof buf - 1 && !strstr(buf, "slots of")) {
		ssize_t n = read(po[0], buf + got, sizeof buf - 1 - got);
		cr_assert_gt(n, 0, "rig run ended before starting: %s", buf);
		got += (size_t)n;
		buf[got] = '\0';
	}
	usleep(300 * 1000);
	kill(pid, SIGINT);
	int status;
	waitpid(pid, &status, 0);
	close(po[0]);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "aborted run exit %d",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json, "the record is written even after a stop");
	cr_assert(strstr(json, "\"outcome\": \"aborted\""), "%s", json);
	free(json);
	/* The rack file's safe state: power off. */
	static char out[8192];
	char *st[] = { (char *)rig(), "power", "all", "status", "--rack", rackfile, NULL };
	cr_assert_eq(support_run(st, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\n1     off") && strstr(out, "\n2     off"), "%s", out);
	simrack_stop(&sr);
}

Test(run, tag_selection_and_file_errors)
{
	static char out[65536];
	FILE *f = fopen(path_in("bad.yaml"), "w");
	fputs("name: bad\nsteps:\n  - wait: forever\n", f);
	fclose(f);
	char *bad[] = { (char *)rig(), "run", path_in("bad.yaml"), "--db", path_in("r.db"), NULL };
	cr_assert_eq(support_run(bad, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "bad.yaml:3:11: steps[0].wait"), "%s", out);
	char *missing[] = { (char *)rig(), "run", "no-such-scenario", "--db", path_in("r.db"), NULL };
	cr_assert_eq(support_run(missing, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "no-such-scenario"), "%s", out);
	char *none[] = { (char *)rig(), "run", NULL };
	cr_assert_eq(support_run(none, out, sizeof out), 2, "%s", out);

	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 2, 8, virtual_reference), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	char *tag[] = { (char *)rig(), "run", "power-loss", "--rack", rackfile, "--tag", "region=mars", "--db",
			path_in("r.db"), NULL };
	cr_assert_eq(support_run(tag, out, sizeof out), 2, "%s", out);
	cr_assert(strstr(out, "no slot of") && strstr(out, "region=mars"), "%s", out);
	char *one[] = { (char *)rig(), "run", "power-loss", "--rack", rackfile, "--slots", "2", "--db", path_in("r.db"),
			"--json", path_in("one.json"), NULL };
	cr_assert_eq(support_run(one, out, sizeof out), 0, "%s", out);
	char *json = support_read_file(path_in("one.json"));
	cr_assert(strstr(json, "\"slot\": 2,") && !strstr(json, "\"slot\": 1,"), "%s", json);
	free(json);
	simrack_stop(&sr);
}

/* A scenario that fails with the antenna cut, the data plan spent and the
 * power off must not hand the next scenario a dead slot: its end puts back
 * what it changed (and audits it), so the next one passes. */
Test(run, a_failed_scenario_leaves_the_slot_as_it_found_it)
{
	FILE *f = fopen(path_in("breaks.yaml"), "w");
	fputs("name: breaks\nrequires: [console, uplink, power, report_period, relay:cell_antenna, fault:datacap]\n"
	      "steps:\n"
	      "  - report_period: 60s\n"
	      "  - expect: {uplink: flowing, within: 5m}\n"
	      "  - relay: {line: cell_antenna, state: off}\n"
	      "  - fault: {datacap: 100, period: 24h}\n"
	      "  - power: off\n"
	      "  - expect: {uplink: flowing, within: 1m}\n",
	      f);
	fclose(f);
	f = fopen(path_in("after.yaml"), "w");
	fputs("name: after\nrequires: [console, uplink]\nsteps:\n"
	      "  - command: \"setparam 10050:60\"\n"
	      "  - command: getver\n"
	      "  - expect: {answer: \"Ver:\"}\n"
	      "  - expect: {uplink: flowing, within: 5m}\n",
	      f);
	fclose(f);
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 4, virtual_reference), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", path_in("breaks.yaml"), path_in("after.yaml"), "--rack", rackfile, "--db",
			 path_in("r.db"), "--json", path_in("r.json"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 1, "breaks fails (exit %d):\n%s", rc, out);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json);
	const char *after = strstr(json, "\"scenario\": \"after\"");
	cr_assert(after, "%s", json);
	const char *breaks = strstr(json, "\"scenario\": \"breaks\"");
	cr_assert(breaks && strstr(breaks, "\"outcome\": \"fail\""), "breaks failed:\n%s", json);
	cr_assert(strstr(after, "\"outcome\": \"pass\""), "the next scenario found a working slot:\n%s", after);
	free(json);
	char *audit[] = { (char *)rig(), "audit", "--db", path_in("r.db"), NULL };
	cr_assert_eq(support_run(audit, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "datacap 1 off"), "the cap lifted, audited:\n%s", out);
	cr_assert(strstr(out, "relay cell_antenna on"), "the antenna back, audited:\n%s", out);
	cr_assert(strstr(out, "scenario end, left as found: datacap off, relay cell_antenna on, power on"),
		  "why, audited:\n%s", out);
	simrack_stop(&sr);
}

Test(run, power_loss_over_modbus_rtu_supplies)
{
	static const char *const rtu[] = { "--virtual", "--modbus", "rtu", "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 2, 3, rtu), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	char *text = support_read_file(rackfile);
	cr_assert(text && strstr(text, "rtu:"), "the rack's supplies are on RTU:\n%s", text);
	cr_assert_null(strstr(text, "tcp://"), "%s", text);
	free(text);
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", "power-loss", "--rack", rackfile, "--db", path_in("r.db"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 0, "power-loss through RTU supplies (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "boot_time="), "%s", out);
	simrack_stop(&sr);
}

static const char *const flush_mix[] = { "--virtual", "--mix", "flush", NULL };

Test(run, offline_flush_reference_passes_each_flush_defect_fails_for_its_reason)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 8, 2, flush_mix), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", "offline-flush", "--rack", rackfile, "--db", path_in("r.db"), "--json",
			 path_in("r.json"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, out);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json);
	static char b[32768];
	int refs[] = { 1, 2, 5 };
	for (size_t i = 0; i < 3; i++) {
		slot_block(json, refs[i], b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\""), "reference slot %d:\n%s", refs[i], b);
		cr_assert(strstr(b, "\"name\": \"drain_120m\"") && strstr(b, "\"name\": \"rate_120m\""), "%s", b);
		cr_assert(strstr(b, "coverage_loss"), "the outage was diagnosed as coverage: %s", b);
		/* The reference FMB920 draws 63 mA rms with GPRS active and 24 mA
		 * nominal (published; fixtures/README.md): a reading between
		 * packets would be 0.024. */
		double tx = measure_value(b, "tx_current_30m");
		cr_assert(tx > 0.058 && tx < 0.068, "transmit current %.3f A, the reference draws 0.063 A:\n%s", tx, b);
	}
	/* The mix: 3 drops records, 4 rewrites timestamps, 6 sends duplicates,
	 * 7 has a smaller buffer than its datasheet says. */
	slot_block(json, 3, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "4 missing"), "drops:\n%s", b);
	slot_block(json, 4, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "with rewritten timestamps") &&
		  !strstr(b, "0 with rewritten timestamps"), "rewrites:\n%s", b);
	slot_block(json, 6, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "duplicated") && !strstr(b, " 0 duplicated"),
		  "duplicates:\n%s", b);
	slot_block(json, 7, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "10 missing 00:02:00..00:11:00"), "small buffer:\n%s", b);
	/* 8's modem transmits at full power: its backlog arrives whole, its draw fails. */
	slot_block(json, 8, b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "tx_current_30m = 0.65 A outside 0.005..0.5"),
		  "power-hungry transmitter:\n%s", b);
	cr_assert(strstr(b, "\"name\": \"drain_30m\""), "its flush itself passed its checks:\n%s", b);
	free(json);
	simrack_stop(&sr);
}

Test(run, data_cap_is_named_apart_from_coverage_and_power)
{
	static const char *const two[] = { "--virtual", "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 2, 3, two), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	static char out[65536];
	char *argv[] = { (char *)rig(), "run", "data-cap", "--rack", rackfile, "--db", path_in("r.db"), "--json",
			 path_in("r.json"), NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
	char *json = support_read_file(path_in("r.json"));
	cr_assert(json && strstr(json, "\"sim_data_cap_exceeded\""), "%s", json);
	cr_assert_null(strstr(json, "\"coverage_loss\""), "%s", json);
	cr_assert_null(strstr(json, "\"power_loss_suspected\""), "%s", json);
	free(json);
	/* A real rack cannot cap a SIM: the scenario says so instead of passing. */
	char *bad = support_read_file(rackfile), path[4300];
	char *ctl = strstr(bad, "control:");
	cr_assert_not_null(ctl);
	memset(ctl, ' ', strcspn(ctl, "\n"));
	snprintf(path, sizeof path, "%s/real.yaml", dir);
	FILE *f = fopen(path, "w");
	fputs(bad, f);
	fclose(f);
	free(bad);
	char *real[] = { (char *)rig(), "run", "data-cap", "--rack", path, "--db", path_in("r2.db"), NULL };
	rc = support_run(real, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d:\n%s", rc, out);
	cr_assert(strstr(out, "only a simulated rack"), "%s", out);
	simrack_stop(&sr);
}

Test(run, nightly_quarantines_a_broken_slot_until_reset)
{
	static const char *const two[] = { "--virtual", "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 2, 4, two), 0);
	char rackfile[4200], cmd[13000];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	/* Slot 2's console cable is "unplugged": its port does not exist. */
	snprintf(cmd, sizeof cmd, "sed 's#%s/slot2/console#/dev/ttyUSB-unplugged#' '%s' > '%s'", sr.dir, rackfile,
		 path_in("bench.yaml"));
	cr_assert_eq(system(cmd), 0);
	static char out[65536];
	char *night[] = { (char *)rig(), "nightly", "--rack", path_in("bench.yaml"), "--db", path_in("n.db"), "--junit",
			  path_in("n.xml"), NULL };
	int rc = support_run(night, out, sizeof out);
	cr_assert(rc == 0 || rc == 1, "exit %d:\n%s", rc, out);
	cr_assert(strstr(out, "slot 2 failed its health check and is quarantined: console:"), "%s", out);
	cr_assert(strstr(out, "/dev/ttyUSB-unplugged"), "%s", out);
	/* It did not run, and every report says so: SKIPPED with the reason. */
	cr_assert(strstr(out, "SKIPPED") && strstr(out, "slot 2 in quarantine, not run"), "%s", out);
	char *junit = support_read_file(path_in("n.xml"));
	cr_assert(junit && strstr(junit, "slot 1: ") && strstr(junit, "slot 2: "), "both slots are test cases:\n%s", junit);
	const char *sk = strstr(junit, "<skipped message=\"skipped: slot 2 in quarantine, not run: console:");
	cr_assert(sk && strstr(sk, "/dev/ttyUSB-unplugged"), "slot 2 skipped, with why:\n%s", junit);
	free(junit);
	/* The next night skips it without trying. */
	rc = support_run(night, out, sizeof out);
	cr_assert(strstr(out, "slot 2 is in quarantine, skipped"), "%s", out);
	cr_assert(strstr(out, "SKIPPED") && strstr(out, "slot 2 in quarantine, not run"), "in the summary too:\n%s", out);
	char *list[] = { (char *)rig(), "slot", "list", "--rack", path_in("bench.yaml"), "--db", path_in("n.db"), NULL };
	cr_assert_eq(support_run(list, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "slot 2 ") && strstr(out, "ttyUSB-unplugged"), "%s", out);
	char *reset[] = { (char *)rig(), "slot", "reset", "2", "--rack", path_in("bench.yaml"), "--db", path_in("n.db"),
			  "--operator", "qa3", NULL };
	cr_assert_eq(support_run(reset, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "slot 2: out of quarantine"), "%s", out);
	cr_assert_eq(support_run(list, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "no slot in quarantine"), "%s", out);
	char *audit[] = { (char *)rig(), "audit", "--db", path_in("n.db"), NULL };
	cr_assert_eq(support_run(audit, out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "slot reset") && strstr(out, "qa3"), "%s", out);
	simrack_stop(&sr);
}


Test(run, gnss_scenarios_catch_each_receiver_defect)
{
	static const char *const gnss_mix[] = { "--virtual", "--mix", "gnss", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 8, 6, gnss_mix), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	/* Longer than support_run's 10 s under the sanitizers: gpsd reads every
	 * second of NMEA the rack produces. */
	char cmd[16000];
	snprintf(cmd, sizeof cmd, "'%s' run ttff gnss-outage --rack '%s' --db '%s' --json '%s' > '%s' 2>&1", rig(),
		 rackfile, path_in("g.db"), path_in("g.json"), path_in("g.out"));
	int st = system(cmd);
	char *out = support_read_file(path_in("g.out"));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d:\n%s", WEXITSTATUS(st), out);
	free(out);
	char *json = support_read_file(path_in("g.json"));
	cr_assert_not_null(json);
	static char b[32768];
	int refs[] = { 1, 2, 5, 7, 8 };
	for (size_t i = 0; i < 5; i++) {
		support_result_block(json, refs[i], "ttff", b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\"") && strstr(b, "\"name\": \"ttff_cold\""), "slot %d:\n%s",
			  refs[i], b);
		support_result_block(json, refs[i], "gnss-outage", b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\"") && strstr(b, "\"name\": \"reacquisition\""), "slot %d:\n%s",
			  refs[i], b);
		cr_assert(strstr(b, "gnss_fix_stale"), "the outage was diagnosed: %s", b);
	}
	support_result_block(json, 3, "gnss-outage", b, sizeof b);
	cr_assert(strstr(b, "stale fix reported as current"), "stale:\n%s", b);
	support_result_block(json, 4, "gnss-outage", b, sizeof b);
	cr_assert(strstr(b, "invented positions"), "invents:\n%s", b);
	support_result_block(json, 6, "ttff", b, sizeof b);
	cr_assert(strstr(b, "ttff_cold = 180 s outside 0..60"), "slow TTFF:\n%s", b);
	free(json);
	simrack_stop(&sr);
}

/* The rack: faithful Teltonika FMB920s (no console extensions, no
 * event lines), reference units and one of each field defect. Every
 * reference unit passes power-loss, offline-flush, data-cap, gnss-outage
 * and ttff on what a real FMB tells; each defective unit fails for its own
 * reason and passes what its defect does not touch. */
/* A suite of its own, outside TSAN_SUITES' run/: under ThreadSanitizer
 * eight slots through five scenarios with gpsd take about 9 minutes, past
 * any sane timeout; the same rig paths (8-slot offline-flush, gnss-outage,
 * ttff, power-loss) run under TSan in run/ already. */
TestSuite(teltonika_rack, .init = make_dir, .fini = remove_dir, .timeout = 300);

Test(teltonika_rack, reference_passes_each_defect_fails_for_its_reason)
{
	static const char *const tel_mix[] = { "--virtual", "--mix", "teltonika", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 8, 3, tel_mix), 0);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	char *yaml = support_read_file(rackfile);
	cr_assert(yaml && !strstr(yaml, "protocol: agent"), "every slot speaks Teltonika: %s", yaml);
	free(yaml);
	/* Longer than support_run's 10 s under the sanitizers (gpsd, 4 h of rack time). */
	char cmd[16000];
	snprintf(cmd, sizeof cmd,
		 "'%s' run power-loss offline-flush data-cap gnss-outage ttff --rack '%s' --db '%s' --json '%s' > '%s' 2>&1",
		 rig(), rackfile, path_in("t.db"), path_in("t.json"), path_in("t.out"));
	int st = system(cmd);
	char *out = support_read_file(path_in("t.out"));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "defective units fail the run (exit %d):\n%s", WEXITSTATUS(st), out);
	free(out);
	char *json = support_read_file(path_in("t.json"));
	cr_assert_not_null(json);
	cr_assert_null(strstr(json, "\"source\": \"console\""), "an event from a Teltonika unit:\n%.2000s", json);
	static char b[32768];
	static const char *const all[] = { "power-loss", "offline-flush", "data-cap", "gnss-outage", "ttff" };
	/* Reference units in slots 1, 2 and 5. */
	int refs[] = { 1, 2, 5 };
	for (size_t i = 0; i < 3; i++)
		for (size_t k = 0; k < 5; k++) {
			support_result_block(json, refs[i], all[k], b, sizeof b);
			cr_assert(strstr(b, "\"outcome\": \"pass\""), "reference slot %d %s:\n%s", refs[i], all[k], b);
		}
	support_result_block(json, 1, "power-loss", b, sizeof b);
	cr_assert(strstr(b, "\"name\": \"boot_time\"") && strstr(b, "\"marginal\": false"), "%s", b);
	support_result_block(json, 1, "data-cap", b, sizeof b);
	cr_assert(strstr(b, "sim_data_cap_exceeded"), "the cap named on a unit that tells only getstatus:\n%s", b);
	/* 3: its bootloader hangs after the power cut: no restart, unresponsive. */
	support_result_block(json, 3, "power-loss", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "no answer showing a restart") &&
		  strstr(b, "device_unresponsive"), "fmb920_no_return:\n%s", b);
	/* 4: loses every 7th record of a flush; the rest of its life is healthy. */
	support_result_block(json, 4, "offline-flush", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "4 missing"), "fmb920_flush_drops:\n%s", b);
	/* 6: keeps 20 records of a 30-record outage. */
	support_result_block(json, 6, "offline-flush", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "10 missing"), "fmb920_small_buffer:\n%s", b);
	/* 7: reports its last fix as current without sky. */
	support_result_block(json, 7, "gnss-outage", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "stale fix reported as current"),
		  "fmb920_gnss_stale:\n%s", b);
	/* 8: a slow receiver: cold TTFF over the limit. */
	support_result_block(json, 8, "ttff", b, sizeof b);
	cr_assert(strstr(b, "\"outcome\": \"fail\"") && strstr(b, "ttff_cold = 18") && strstr(b, "outside 0..60"),
		  "fmb920_slow_ttff:\n%s", b);
	/* Each defect touches only its own checks. */
	static const struct { int slot; const char *scenario; } healthy[] = {
		{ 4, "power-loss" }, { 4, "data-cap" }, { 4, "gnss-outage" }, { 4, "ttff" },
		{ 6, "power-loss" }, { 6, "data-cap" }, { 6, "gnss-outage" }, { 6, "ttff" },
		{ 7, "power-loss" }, { 7, "offline-flush" }, { 7, "data-cap" }, { 7, "ttff" },
		{ 8, "power-loss" }, { 8, "offline-flush" }, { 8, "data-cap" },
	};
	for (size_t i = 0; i < sizeof healthy / sizeof healthy[0]; i++) {
		support_result_block(json, healthy[i].slot, healthy[i].scenario, b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"pass\""), "slot %d %s:\n%s", healthy[i].slot, healthy[i].scenario, b);
	}
	free(json);
	simrack_stop(&sr);
}

Test(run, ota_scenarios_reference_passes_each_update_defect_fails_for_its_reason)
{
	char fw[4096], key[4200];
	support_bin("fwgen", fw, sizeof fw);
	char cmd[9000];
	snprintf(cmd, sizeof cmd, "'%s' '%s/fw' > /dev/null", fw, dir);
	cr_assert_eq(system(cmd), 0, "fwgen");
	snprintf(key, sizeof key, "%s/fw/vendor.pub.pem", dir);
	const char *const ota_mix[] = { "--virtual", "--mix", "ota", "--vendor-key", key, NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 8, 9, ota_mix), 0);
	char rackfile[4200], images[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(images, sizeof images, "%s/fw", dir);
	snprintf(cmd, sizeof cmd, "'%s' run ota-rollback ota-in-service ota-power-cut --rack '%s' --images '%s' --db '%s' "
		 "--json '%s' > '%s' 2>&1", rig(), rackfile, images, path_in("o.db"), path_in("o.json"), path_in("o.out"));
	int st = system(cmd);
	char *out = support_read_file(path_in("o.out"));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d:\n%s", WEXITSTATUS(st), out);
	free(out);
	char *json = support_read_file(path_in("o.json"));
	static char b[32768];
	/* Healthy agent units in slots 1, 2 and 5 pass; slot 8 is a Teltonika
	 * unit, which takes no update from a rig: skipped, with the reason. */
	int refs[] = { 1, 2, 5 };
	const char *sc[] = { "ota-rollback", "ota-in-service", "ota-power-cut" };
	for (size_t i = 0; i < 3; i++) {
		for (int k = 0; k < 3; k++) {
			support_result_block(json, refs[i], sc[k], b, sizeof b);
			cr_assert(strstr(b, "\"outcome\": \"pass\""), "reference slot %d %s:\n%s", refs[i], sc[k], b);
		}
	}
	for (int k = 0; k < 3; k++) {
		support_result_block(json, 8, sc[k], b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"skipped\"") && strstr(b, "needs 'ota'") && strstr(b, "teltonika"),
			  "Teltonika slot 8 %s:\n%s", sc[k], b);
	}
	support_result_block(json, 1, "ota-rollback", b, sizeof b);
	cr_assert(strstr(b, "\"name\": \"crash_loop_boots\"") && strstr(b, "\"name\": \"crash_loop_recovery\""), "%s", b);
	/* no_rollback stays in its crash loop, and the diagnosis says so. */
	support_result_block(json, 3, "ota-rollback", b, sizeof b);
	cr_assert(strstr(b, "crash-loop.fw: no end to the update") && strstr(b, "firmware_crash_loop"), "%s", b);
	/* early_success reports committed where it must roll back. */
	support_result_block(json, 4, "ota-rollback", b, sizeof b);
	cr_assert(strstr(b, "expected rolled_back, the unit says 'FOTA:committed"), "%s", b);
	/* ignores_service installs with ignition on. */
	support_result_block(json, 6, "ota-in-service", b, sizeof b);
	cr_assert(strstr(b, "expected the update deferred (in service)"), "%s", b);
	/* accepts_unsigned installs an image with a bad signature. */
	support_result_block(json, 7, "ota-rollback", b, sizeof b);
	cr_assert(strstr(b, "bad-signature.fw: expected rejected"), "%s", b);
	free(json);
	simrack_stop(&sr);
}

/* ---- whose fault: the device's, the rig's, nobody's ---- */

/* Ctrl-C mid-run: the scenario under way and those that never started are
 * ABORTED, none FAIL (a scenario that needs the ingest used to fail with
 * "could not point the device at the rig's ingest: aborted"). */
Test(run, sigint_leaves_no_fail_for_scenarios_not_finished)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 2, "reference", 6), 0);
	FILE *f = fopen(path_in("long.yaml"), "w");
	fputs("name: long\nrequires: [console]\nsteps:\n  - command: getver\n  - wait: 10m\n", f);
	fclose(f);
	f = fopen(path_in("later.yaml"), "w");
	fputs("name: later\nrequires: [console, uplink]\nsteps:\n  - command: getver\n", f);
	fclose(f);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	int po[2];
	cr_assert_eq(pipe(po), 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(po[1], 2);
		dup2(po[1], 1);
		execl(rig(), rig(), "run", path_in("long.yaml"), path_in("later.yaml"), "--rack", rackfile, "--db",
		      path_in("r.db"), "--json", path_in("r.json"), (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	/* Wait until the run has started its slots, then interrupt it. */
	static char buf[65536];
	size_t got = 0;
	while (got < sizeof buf - 1 && !strstr(buf, "slots of")) {
		ssize_t n = read(po[0], buf + got, sizeof buf - 1 - got);
		cr_assert_gt(n, 0, "rig run ended before starting: %s", buf);
		got += (size_t)n;
		buf[got] = '\0';
	}
	usleep(300 * 1000);
	kill(pid, SIGINT);
	while (read(po[0], buf, sizeof buf - 1) > 0)
		;
	int status;
	waitpid(pid, &status, 0);
	close(po[0]);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json, "the record is written even after a stop");
	static char b[16384];
	for (int slot = 1; slot <= 2; slot++) {
		support_result_block(json, slot, "later", b, sizeof b);
		cr_assert(strstr(b, "\"outcome\": \"aborted\""), "a scenario that never started is ABORTED:\n%s", b);
	}
	cr_assert_null(strstr(json, "\"outcome\": \"fail\""), "no FAIL after Ctrl-C on reference units:\n%s", json);
	free(json);
	simrack_stop(&sr);
}

/* Runs a one-slot scenario (a wait, then a command) on a pty of the test's
 * own whose port goes away once the rig has written to it: the other end
 * closed (a hang-up, as a pulled USB cable gives) or, with UNLINK, the port's
 * node removed while the device stays silent. Returns the result's JSON
 * block in B; the exit code in *CODE. */
static void console_goes_away(bool unlink_node, char *b, size_t len, int *code, char *port, size_t plen)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	char pts[256];
	cr_assert_eq(ptsname_r(master, pts, sizeof pts), 0);
	snprintf(port, plen, "%s", unlink_node ? path_in("console") : pts);
	if (unlink_node)
		cr_assert_eq(symlink(pts, port), 0);
	FILE *f = fopen(path_in("rack.yaml"), "w");
	fprintf(f, "station: vanish\nslots:\n  - id: 1\n    console: {port: %s}\n    vendor: Teltonika\n"
		"    model: FMB920\n    expect: {imei: \"352094087230394\"}\n", port);
	fclose(f);
	f = fopen(path_in("two.yaml"), "w");
	fputs("name: two\nrequires: [console]\nsteps:\n  - wait: 1s\n  - command: getver\n", f);
	fclose(f);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(master); /* only the test holds the port's other end */
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(rig(), rig(), "run", path_in("two.yaml"), "--rack", path_in("rack.yaml"), "--db", path_in("r.db"),
		      "--json", path_in("r.json"), "--timeout", "500", (char *)NULL);
		_exit(127);
	}
	/* The rig has the port open once its first command arrives: then the
	 * port goes away under it. */
	char c;
	cr_assert_eq(read(master, &c, 1), 1, "the rig never wrote to its console");
	if (unlink_node)
		cr_assert_eq(unlink(port), 0);
	else
		close(master);
	int status;
	waitpid(pid, &status, 0);
	if (unlink_node)
		close(master);
	*code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json);
	support_result_block(json, 1, "two", b, len);
	free(json);
}

/* A console port that hangs up mid-run is the rig's link failing: ERROR
 * (exit 3), not FAIL. */
Test(run, a_console_that_vanishes_mid_run_is_error_not_fail)
{
	static char b[16384];
	char port[4200];
	int code;
	console_goes_away(false, b, sizeof b, &code, port, sizeof port);
	cr_assert(strstr(b, "\"outcome\": \"error\""), "%s", b);
	cr_assert(strstr(b, port) && strstr(b, "the rig's link"), "the message names the port and whose it is:\n%s", b);
	cr_assert_eq(code, 3, "a vanished console is an infrastructure error (exit %d)", code);
}

/* A console whose node is removed mid-run (the fd still open, nothing
 * answering): the command times out, and with its port gone that silence is
 * the rig's link, not the device: ERROR. */
Test(run, a_console_node_removed_mid_run_is_error_not_fail)
{
	static char b[16384];
	char port[4200];
	int code;
	console_goes_away(true, b, sizeof b, &code, port, sizeof port);
	cr_assert(strstr(b, "\"outcome\": \"error\""), "%s", b);
	cr_assert(strstr(b, port) && strstr(b, "the console port is gone"), "the message names the port and why:\n%s", b);
	cr_assert_eq(code, 3, "exit %d", code);
}

/* A simulated rack that dies mid-run takes the rig's clock (its control
 * socket) with it: the waits cut short are the rig's trouble, ERROR naming
 * the clock, not ABORTED (nobody pressed Ctrl-C) and not FAIL. */
Test(run, a_rack_clock_that_dies_mid_run_is_error_not_aborted)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 4, virtual_reference), 0);
	FILE *f = fopen(path_in("long.yaml"), "w");
	/* The uplink's records make virtual time move in steps: a day is long. */
	fputs("name: long\nrequires: [console, uplink]\nsteps:\n  - command: getver\n  - wait: 24h\n", f);
	fclose(f);
	char rackfile[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	int po[2];
	cr_assert_eq(pipe(po), 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(po[1], 2);
		dup2(po[1], 1);
		execl(rig(), rig(), "run", path_in("long.yaml"), "--rack", rackfile, "--db", path_in("r.db"), "--json",
		      path_in("r.json"), (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	/* Once the wait is under way (its step begun in the store), the rack dies. */
	bool waiting = false;
	for (int i = 0; i < 6000 && !waiting; i++) {
		sqlite3 *db;
		if (sqlite3_open_v2(path_in("r.db"), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
			sqlite3_stmt *q;
			if (sqlite3_prepare_v2(db, "SELECT count(*) FROM steps WHERE kind = 'wait'", -1, &q, NULL) == SQLITE_OK) {
				waiting = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) > 0;
				sqlite3_finalize(q);
			}
		}
		sqlite3_close(db);
		if (!waiting)
			usleep(10 * 1000);
	}
	cr_assert(waiting, "the wait step never began");
	simrack_kill(&sr);
	static char buf[65536];
	size_t got = 0;
	for (ssize_t n; got < sizeof buf - 1 && (n = read(po[0], buf + got, sizeof buf - 1 - got)) > 0;)
		got += (size_t)n;
	buf[got] = '\0';
	close(po[0]);
	int status;
	waitpid(pid, &status, 0);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json, "no record:\n%s", buf);
	static char b[16384];
	support_result_block(json, 1, "long", b, sizeof b);
	free(json);
	cr_assert(strstr(b, "\"outcome\": \"error\""), "%s", b);
	/* The clock or the console, whichever the rig met first: the rack's. */
	cr_assert(strstr(b, "the rig's clock") || strstr(b, "gone"), "the message says whose: %s", b);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3, "exit %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	simrack_stop(&sr);
}

/* A device that answers its console, however wrongly, is not a broken slot:
 * the health gate lets it run (its scenarios judge it) instead of hiding a
 * device defect as SKIPPED. The test's own pty answers every line with
 * garbage, as a unit with a garbling UART does. */
Test(run, a_garbling_device_is_not_quarantined)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	char pts[256];
	cr_assert_eq(ptsname_r(master, pts, sizeof pts), 0);
	FILE *f = fopen(path_in("rack.yaml"), "w");
	fprintf(f, "station: garble\nslots:\n  - id: 1\n    console: {port: %s}\n    vendor: Acme\n"
		"    model: AT-100\n    expect: {imei: \"352094087230394\"}\n", pts);
	fclose(f);
	pid_t answerer = fork();
	if (answerer == 0) { /* every line the rig sends gets one garbled line back */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char c;
		while (read(master, &c, 1) == 1)
			if (c == '\n' && write(master, "Vr:01.0_00 Hw:AT00\r\n", 20) != 20)
				break;
		_exit(0);
	}
	/* Every command waits out its deadline for a proper answer: longer
	 * than support_run allows, so run it to its end here. */
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(master);
		int fd = open(path_in("out.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(rig(), rig(), "nightly", "--rack", path_in("rack.yaml"), "--db", path_in("n.db"), (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	kill(answerer, SIGKILL);
	waitpid(answerer, NULL, 0);
	close(master);
	char *out = support_read_file(path_in("out.txt"));
	cr_assert_not_null(out);
	cr_assert(strstr(out, "1 slot of garble"), "the run went ahead:\n%s", out);
	cr_assert_null(strstr(out, "quarantined"), "a device that answers is the scenarios' to judge:\n%s", out);
	cr_assert_null(strstr(out, "SKIPPED"), "%s", out);
	free(out);
}
