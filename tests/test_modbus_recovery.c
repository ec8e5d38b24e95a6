/*
 * test_modbus_recovery.c - a stalled Modbus server costs retries, never an
 * error (drivers/modbus_link.c).
 *
 * simrack is stopped with SIGSTOP and continued after 1.5 s or 5 s, as a
 * supply or gateway that hangs would be: its sockets and ttys stay open,
 * requests pile up unanswered, and when it runs again it answers every one
 * of them, late. Old replies must never be taken for the answers to newer
 * requests, and every request must in the end succeed.
 *
 * No test measures time: the stall length is the stimulus, and what is
 * checked is that every call returned OK with the right values.
 */
#include "power.h"
#include "relay.h"
#include "support.h"

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[PATH_MAX];
static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(mbstall, .init = make_dir, .fini = remove_dir, .timeout = 240);

/* The quoted transport after the first occurrence of KEY in the rack file. */
static void transport_after(const struct simrack_proc *sr, const char *key, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	simrack_rackfile(sr, path, sizeof path);
	char *text = support_read_file(path);
	cr_assert_not_null(text, "no rack file %s", path);
	const char *k = strstr(text, key);
	cr_assert_not_null(k, "no '%s' in %s", key, path);
	const char *t = strstr(k, "transport: \"");
	cr_assert_not_null(t, "no transport after '%s' in %s", key, path);
	t += strlen("transport: \"");
	const char *end = strchr(t, '"');
	cr_assert_not_null(end);
	snprintf(out, len, "%.*s", (int)(end - t), t);
	free(text);
}

/* Continues PID after MS: a thread, so the test's own calls run meanwhile. */
struct resume {
	pid_t pid;
	int ms;
	pthread_t thread;
};

static void *resume_later(void *arg)
{
	struct resume *r = arg;
	struct timespec ts = { .tv_sec = r->ms / 1000, .tv_nsec = (long)(r->ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	kill(r->pid, SIGCONT);
	return NULL;
}

static void stall(struct resume *r, pid_t pid, int ms)
{
	*r = (struct resume){ .pid = pid, .ms = ms };
	cr_assert_eq(kill(pid, SIGSTOP), 0, "SIGSTOP simrack: %s", strerror(errno));
	cr_assert_eq(pthread_create(&r->thread, NULL, resume_later, r), 0);
}

/* One round of everything the rig asks a supply, each answer checked
 * against what was written just before: a late reply taken for the answer
 * to the next request would show up as a wrong value or a failure. */
static void supply_round(struct power_dev *d, int round)
{
	struct power_status st;
	bool on = round % 2 == 0;
	double volts = 11.0 + (round % 3);
	cr_assert_eq(d->driver->set_voltage(d, volts), POWER_OK, "round %d: %s", round, power_error(d));
	cr_assert_eq(d->driver->output(d, on), POWER_OK, "round %d: %s", round, power_error(d));
	cr_assert_eq(d->driver->status(d, &st), POWER_OK, "round %d: %s", round, power_error(d));
	cr_assert_eq(st.output_on, on, "round %d: output %d after writing %d", round, st.output_on, on);
	cr_assert_float_eq(st.v_set, volts, 1e-9, "round %d: V-SET %g after writing %g", round, st.v_set, volts);
}

static void relay_round(struct relay_dev *b, int round)
{
	bool on = round % 2 == 1, got = !on;
	cr_assert_eq(b->driver->set(b, 0, on), RELAY_OK, "round %d: %s", round, relay_error(b));
	cr_assert_eq(b->driver->get(b, 0, &got), RELAY_OK, "round %d: %s", round, relay_error(b));
	cr_assert_eq(got, on, "round %d: channel 0 reads %d after writing %d", round, got, on);
}

/* Stalls simrack for STALL_MS while a supply and a relay board are driven
 * over MODBUS (tcp or rtu), and for a few rounds after it resumes. */
static void driver_loop_survives(const char *modbus, int stall_ms)
{
	const char *const extra[] = { "--virtual", "--modbus", modbus, "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 5, extra), 0);
	char supply[512], board[512], err[512];
	transport_after(&sr, "power:", supply, sizeof supply);
	transport_after(&sr, "boards:", board, sizeof board);

	struct power_dev *d = NULL;
	cr_assert_eq(power_driver_find("rd60xx")->open(supply, 1, 0, &d, err, sizeof err), POWER_OK, "%s", err);
	struct relay_dev *b = NULL;
	cr_assert_eq(relay_driver_find("coil")->open(board, 1, 0, &b, err, sizeof err), RELAY_OK, "%s", err);
	supply_round(d, 0);
	relay_round(b, 0);

	struct resume r;
	stall(&r, sr.pid, stall_ms);
	/* The first calls of this round are certainly made while simrack is
	 * stopped; the later rounds meet the late replies it then sends. */
	for (int round = 1; round <= 6; round++) {
		supply_round(d, round);
		relay_round(b, round);
	}
	pthread_join(r.thread, NULL);
	d->driver->close(d);
	b->driver->close(b);
	simrack_stop(&sr);
}

Test(mbstall, tcp_supply_and_board_ride_out_a_1500ms_stall) { driver_loop_survives("tcp", 1500); }
Test(mbstall, tcp_supply_and_board_ride_out_a_5s_stall) { driver_loop_survives("tcp", 5000); }
Test(mbstall, rtu_supply_and_board_ride_out_a_1500ms_stall) { driver_loop_survives("rtu", 1500); }
Test(mbstall, rtu_supply_and_board_ride_out_a_5s_stall) { driver_loop_survives("rtu", 5000); }

/* ---- a whole run ---- */

static char *path_in(const char *name)
{
	static char bufs[4][PATH_MAX + 64];
	static int k;
	char *b = bufs[k++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
	return b;
}

/* Starts ARGV with stdout and stderr into LOG; returns its pid. */
static pid_t spawn(char *const argv[], const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "%s: %s", log, strerror(errno));
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

/* Whether the store DB has audited COMMAND yet (false while it cannot be
 * read: not created yet, or busy). */
static bool audited(const char *db, const char *command)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	bool seen = false;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "SELECT count(*) FROM audit WHERE command = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, command, -1, SQLITE_STATIC);
		seen = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return seen;
}

/* Waits (a guard, not a measurement: 120 s) until the store DB has audited
 * COMMAND or PID has exited; true when it was seen. */
static bool wait_for_audit(const char *db, const char *command, pid_t pid)
{
	for (int i = 0; i < 12000; i++) {
		if (audited(db, command))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(10000);
	}
	return false;
}

/* FILE's text in a static buffer (so a failing assertion leaks nothing). */
static const char *slurp(const char *file)
{
	static char buf[2][1 << 16];
	static int k;
	char *b = buf[k++ % 2];
	char *got = support_read_file(file);
	snprintf(b, sizeof buf[0], "%s", got ? got : "");
	free(got);
	return b;
}

static int count(const char *text, const char *part)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, part)); p++)
		n++;
	return n;
}

/* rig run on a rack of reference units; simrack stalls for STALL_MS once
 * power-loss has cut a slot's power: from then on the rig reads every
 * slot's supply at each step of its trace, so the stall meets requests in
 * flight on several supplies. */
static void run_survives(const char *modbus, int stall_ms)
{
	const char *const extra[] = { "--virtual", "--modbus", modbus, "--profiles", "reference", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 4, 11, extra), 0);
	char rackfile[PATH_MAX + 16], bin[PATH_MAX];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	support_bin("rig", bin, sizeof bin);
	char *argv[] = { bin, "run", "power-loss", "offline-flush", "--rack", rackfile, "--db", path_in("r.db"),
			 "--json", path_in("r.json"), NULL };
	pid_t pid = spawn(argv, path_in("run.log"));
	bool seen = wait_for_audit(path_in("r.db"), "power off", pid);
	cr_assert(seen, "the run ended before power-loss cut power:\n%s", slurp(path_in("run.log")));
	struct resume r;
	stall(&r, sr.pid, stall_ms);
	pthread_join(r.thread, NULL);
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	const char *log = slurp(path_in("run.log"));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d:\n%s", status, log);
	char *json = support_read_file(path_in("r.json"));
	cr_assert_not_null(json);
	int results = count(json, "\"scenario\": \""), errors = count(json, "\"outcome\": \"error\""),
	    fails = count(json, "\"outcome\": \"fail\""), passes = count(json, "},\n      \"outcome\": \"pass\"");
	free(json);
	/* 4 reference slots x 2 scenarios, every one PASS. */
	cr_assert(results == 8 && passes == 8 && errors == 0 && fails == 0,
		  "%d results, %d PASS, %d ERROR, %d FAIL (record %s):\n%s", results, passes, errors, fails,
		  path_in("r.json"), log);
	simrack_stop(&sr);
}

Test(mbstall, run_of_reference_units_rides_out_a_1500ms_stall) { run_survives("tcp", 1500); }
Test(mbstall, run_of_reference_units_rides_out_a_5s_stall) { run_survives("tcp", 5000); }
Test(mbstall, run_over_rtu_rides_out_a_1500ms_stall) { run_survives("rtu", 1500); }
Test(mbstall, run_over_rtu_rides_out_a_5s_stall) { run_survives("rtu", 5000); }
