/*
 * scale.c - benchmark: `rig nightly` (the suite it runs: power-loss,
 * offline-flush, data-cap) on simulated racks of 8 to 256 slots on virtual
 * time, the curve of wall time, the rig's peak RSS and ERROR results.
 *
 * Each size is its own baseline for the next: the ratio of one doubling's
 * wall time to the last is the figure, measured in the same run. Goals
 * (issue 12, item 6), checked at the end; exit 1 when one is missed:
 *   - 256 slots in under 60 s wall;
 *   - each doubling from 8 to 256 slots costs at most 2.2x wall;
 *   - rig peak RSS at most 16 MB + 0.5 MB per slot;
 *   - no ERROR result on a reference unit at any size.
 *
 * usage: scale [MAX_SLOTS]   (default 256; a smaller one for a quick look,
 *                             the 256-slot goal is then not judged)
 */
#include <signal.h>
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

#define WALL_256_MAX_S 60.0
#define DOUBLING_MAX 2.2
#define RSS_BASE_MB 16.0
#define RSS_PER_SLOT_MB 0.5
#define RUN_TIMEOUT_S 600   /* a size that takes longer has missed its goals anyway */

struct point {
	int slots;
	int rc;            /* the rig's exit code, -1: did not finish */
	double wall_s, rss_mb;
	int errors, ref_errors, results, ref_results;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The lab mix (fixtures/simrack/profiles.c, lab_slots) repeats 8 profiles:
 * slots 1, 2, 4, 5 and 7 of each 8 are the healthy reference unit. By slot
 * rather than by the model in the result, so an ERROR before the device
 * could even be identified still counts. */
static bool is_reference_slot(int slot)
{
	static const bool ref[8] = { true, true, false, true, true, false, true, false };
	return slot >= 1 && ref[(slot - 1) % 8];
}

static void count_errors(const char *db, struct point *p)
{
	sqlite3 *h;
	sqlite3_stmt *q;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return;
	}
	if (sqlite3_prepare_v2(h, "SELECT slot, outcome FROM results", -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			int slot = atoi((const char *)sqlite3_column_text(q, 0));
			bool error = strcmp((const char *)sqlite3_column_text(q, 1), "error") == 0;
			p->results++;
			p->errors += error;
			p->ref_errors += error && is_reference_slot(slot);
			p->ref_results += is_reference_slot(slot);
		}
		sqlite3_finalize(q);
	}
	sqlite3_close(h);
}

/* Kills the rig if it runs past RUN_TIMEOUT_S. Returns its wait status. */
static int wait_rig(pid_t pid, struct rusage *ru, double t0)
{
	int status;
	for (;;) {
		pid_t r = wait4(pid, &status, WNOHANG, ru);
		if (r == pid)
			return status;
		if (now_s() - t0 > RUN_TIMEOUT_S) {
			kill(pid, SIGKILL);
			wait4(pid, &status, 0, ru);
			return -1;
		}
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static int run_nightly(struct point *p)
{
	const char *const extra[] = { "--virtual", "--mix", "lab", NULL };
	struct embedded_rack er;
	char err[512], rig[4096], db[512];
	if (embedded_rack_start(&er, p->slots, 1, extra, err, sizeof err)) {
		fprintf(stderr, "scale: %d slots: %s\n", p->slots, err);
		return -1;
	}
	cli_sibling_program("rig", rig, sizeof rig);
	snprintf(db, sizeof db, "%s/bench.db", er.dir);
	fflush(stdout);   /* else the child's freopen writes our buffered lines out a second time */
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(rig, rig, "nightly", "--rack", er.rack_file, "--db", db, (char *)NULL);
		_exit(127);
	}
	struct rusage ru = { 0 };
	int status = pid > 0 ? wait_rig(pid, &ru, t0) : -1;
	p->wall_s = now_s() - t0;
	p->rss_mb = (double)ru.ru_maxrss / 1024.0;
	p->rc = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	count_errors(db, p);
	embedded_rack_stop(&er);
	return 0;
}

static double rss_goal(int slots) { return RSS_BASE_MB + RSS_PER_SLOT_MB * slots; }

int main(int argc, char **argv)
{
	int max = argc > 1 ? atoi(argv[1]) : 256;
	struct point pts[8];
	int n = 0;
	printf("rig nightly (power-loss, offline-flush, data-cap) on a virtual lab rack:\n");
	printf("%6s %9s %7s %9s %8s %7s %9s %5s\n", "slots", "wall s", "ratio", "RSS MB", "goal MB", "ERRORs",
	       "ref ERR", "exit");
	for (int slots = 8; slots <= max && n < 8; slots *= 2) {
		struct point *p = &pts[n];
		*p = (struct point){ .slots = slots };
		if (run_nightly(p) < 0)
			return 3;
		n++;
		char ratio[16] = "-";
		if (n > 1)
			snprintf(ratio, sizeof ratio, "%.2fx", p->wall_s / pts[n - 2].wall_s);
		printf("%6d %9.2f %7s %9.1f %8.1f %7d %9d %5d\n", slots, p->wall_s, ratio, p->rss_mb,
		       rss_goal(slots), p->errors, p->ref_errors, p->rc);
		fflush(stdout);
		if (p->rc < 0)
			break;   /* timed out or killed: larger racks would too */
	}
	bool ok = true;
	for (int i = 0; i < n; i++) {
		const struct point *p = &pts[i];
		if (p->rc < 0 || p->rc > 1) {
			printf("goal missed: %d slots: the rig exited %d (0 or 1 expected)\n", p->slots, p->rc);
			ok = false;
		}
		int ref_slots = 0;
		for (int s = 1; s <= p->slots; s++)
			ref_slots += is_reference_slot(s);
		/* A reference unit's result missing (its slot quarantined, the
		 * run cut short) is as bad as an ERROR. */
		if (p->ref_results != 3 * ref_slots) {
			printf("goal missed: %d slots: %d results of reference units recorded, %d expected\n", p->slots,
			       p->ref_results, 3 * ref_slots);
			ok = false;
		}
		if (p->ref_errors) {
			printf("goal missed: %d slots: %d ERROR results on reference units (goal 0)\n", p->slots,
			       p->ref_errors);
			ok = false;
		}
		if (p->rss_mb > rss_goal(p->slots)) {
			printf("goal missed: %d slots: rig RSS %.1f MB > %.1f MB\n", p->slots, p->rss_mb,
			       rss_goal(p->slots));
			ok = false;
		}
		if (i > 0 && p->wall_s > DOUBLING_MAX * pts[i - 1].wall_s) {
			printf("goal missed: %d -> %d slots cost %.2fx wall (goal <= %.1fx)\n", pts[i - 1].slots,
			       p->slots, p->wall_s / pts[i - 1].wall_s, DOUBLING_MAX);
			ok = false;
		}
	}
	if (max >= 256) {
		const struct point *last = &pts[n - 1];
		if (last->slots != 256 || last->wall_s >= WALL_256_MAX_S) {
			printf("goal missed: 256 slots: %s%.2f s wall (goal < %.0f s)\n",
			       last->slots != 256 ? "not reached; last run " : "", last->wall_s, WALL_256_MAX_S);
			ok = false;
		}
	} else {
		printf("(up to %d slots only: the 256-slot goal is not judged)\n", max);
	}
	printf(ok ? "scale: every goal met\n" : "scale: goals missed\n");
	return ok ? 0 : 1;
}
