/*
 * rack64.c - benchmark: scenarios on a 64-slot simulated rack (virtual
 * time), wall time and the rig's peak RSS, against the same run on 1 slot,
 * and the full nightly suite (power-loss, offline-flush, data-cap) on 64
 * slots. Goals (issue), checked, exit 1 when one is missed:
 *   power-loss and offline-flush on 64 slots each under 10 s wall;
 *   the full nightly on 64 slots: the rig under 64 MB peak RSS (the suite
 *   whose memory matters: every scenario's results and traces at once).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "embedded.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `rig run SCENARIO` on an N-slot virtual rack of MIX; wall seconds and
 * the rig's peak RSS in MB. Returns the rig's exit code or -1. */
static double last_cpu_s, last_rack_s; /* of the last run: rig CPU (with its gpsds), rack seconds run */

/* SCENARIO "nightly" runs `rig nightly`, anything else `rig run SCENARIO`. */
static int run_rack(int n, const char *scenario, const char *mix, double *wall, double *rss_mb)
{
	const char *const extra[] = { "--virtual", "--mix", mix, NULL };
	struct embedded_rack er;
	char err[512], rig[4096], db[512];
	if (embedded_rack_start(&er, n, 1, extra, err, sizeof err)) {
		fprintf(stderr, "rack64: %s\n", err);
		return -1;
	}
	cli_sibling_program("rig", rig, sizeof rig);
	snprintf(db, sizeof db, "%s/bench.db", er.dir);
	double t0 = now_s();
	fflush(stdout);   /* else the child's freopen writes our buffered lines out a second time */
	pid_t pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		if (!strcmp(scenario, "nightly"))
			execl(rig, rig, "nightly", "--rack", er.rack_file, "--db", db, (char *)NULL);
		else
			execl(rig, rig, "run", scenario, "--rack", er.rack_file, "--db", db, (char *)NULL);
		_exit(127);
	}
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	*wall = now_s() - t0;
	*rss_mb = (double)ru.ru_maxrss / 1024.0;
	last_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		     (double)ru.ru_stime.tv_usec / 1e6;
	last_rack_s = 0;
	sqlite3 *h;
	sqlite3_stmt *q;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "SELECT (julianday(max(finished_at)) - julianday(min(started_at))) * 86400 FROM results",
			       -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			last_rack_s = sqlite3_column_double(q, 0);
		sqlite3_finalize(q);
	}
	sqlite3_close(h);
	embedded_rack_stop(&er);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
	double w1, r1, w64, r64, f1, fr1, f64, fr64;
	int rc1 = run_rack(1, "power-loss", "lab", &w1, &r1), rc64 = run_rack(64, "power-loss", "lab", &w64, &r64);
	int fc1 = run_rack(1, "offline-flush", "flush", &f1, &fr1), fc64 = run_rack(64, "offline-flush", "flush", &f64, &fr64);
	if (rc1 < 0 || rc1 > 1 || rc64 < 0 || rc64 > 1 || fc1 < 0 || fc1 > 1 || fc64 < 0 || fc64 > 1) {
		fprintf(stderr, "rack64: rig run failed (exit %d / %d / %d / %d)\n", rc1, rc64, fc1, fc64);
		return 1;
	}
	printf("power-loss on a virtual rack (reference and defective units mixed):\n");
	printf("  1 slot:   wall %6.2f s   rig peak RSS %6.1f MB\n", w1, r1);
	printf("  64 slots: wall %6.2f s   rig peak RSS %6.1f MB   (goal: < 10 s)\n", w64, r64);
	printf("  ratio 64/1: wall %.2fx, RSS %.2fx\n", w64 / w1, r64 / r1);
	printf("offline-flush (30, 60 and 120 min outages; 64 devices flushing at once) on a virtual rack:\n");
	printf("  1 slot:   wall %6.2f s   rig peak RSS %6.1f MB\n", f1, fr1);
	printf("  64 slots: wall %6.2f s   rig peak RSS %6.1f MB   (target: < 10 s)\n", f64, fr64);
	printf("  ratio 64/1: wall %.2fx\n", f64 / f1);
	double g1, gr1, g64, gr64;
	int gc1 = run_rack(1, "gnss-outage", "gnss", &g1, &gr1);
	double cpu1 = last_cpu_s, rack1 = last_rack_s;
	int gc64 = run_rack(64, "gnss-outage", "gnss", &g64, &gr64);
	double cpu64 = last_cpu_s, rack64 = last_rack_s;
	if (gc1 < 0 || gc1 > 1 || gc64 < 0 || gc64 > 1) {
		fprintf(stderr, "rack64: gnss-outage failed (exit %d / %d)\n", gc1, gc64);
		return 1;
	}
	printf("gnss-outage (NMEA at 1 Hz of rack time through the rig's gpsds) on a virtual rack:\n");
	printf("  1 slot:   wall %6.2f s   rig+gpsd CPU %6.2f s over %.0f rack s: %.3f ms per slot-second\n", g1, cpu1,
	       rack1, rack1 > 0 ? cpu1 * 1000.0 / rack1 : 0.0);
	printf("  64 slots: wall %6.2f s   rig+gpsd CPU %6.2f s over %.0f rack s: %.3f ms per slot-second\n", g64, cpu64,
	       rack64, rack64 > 0 ? cpu64 * 1000.0 / (64.0 * rack64) : 0.0);
	printf("  ratio 64/1: wall %.2fx, CPU per slot-second %.2fx\n", g64 / g1,
	       rack1 > 0 && rack64 > 0 ? (cpu64 / (64.0 * rack64)) / (cpu1 / rack1) : 0.0);
	double n64, nr64;
	int nc64 = run_rack(64, "nightly", "lab", &n64, &nr64);
	if (nc64 < 0) {
		fprintf(stderr, "rack64: rig nightly did not run\n");
		return 1;
	}
	printf("the full nightly suite (power-loss, offline-flush, data-cap) on a virtual rack:\n");
	printf("  64 slots: wall %6.2f s   rig peak RSS %6.1f MB   exit %d   (goals: < 64 MB, no rig fault)\n", n64,
	       nr64, nc64);
	struct { const char *what; bool met; } goals[] = {
		{ "power-loss on 64 slots under 10 s", w64 < 10.0 },
		{ "offline-flush on 64 slots under 10 s", f64 < 10.0 },
		{ "full nightly on 64 slots under 64 MB RSS", nr64 < 64.0 },
		{ "full nightly on 64 slots without rig faults", nc64 == 0 || nc64 == 1 },
	};
	int missed = 0;
	for (size_t i = 0; i < sizeof goals / sizeof goals[0]; i++) {
		printf("goal %-42s %s\n", goals[i].what, goals[i].met ? "met" : "MISSED");
		missed += !goals[i].met;
	}
	return missed ? 1 : 0;
}
