/*
 * test_crash.c - what a killed rig and a failing store leave behind.
 *
 * A rig killed with SIGKILL mid-run keeps every result it had said was
 * finished, leaves a store that passes integrity_check and whose run the
 * next open marks 'interrupted', and leaves no process (simrack, gpsd) and,
 * after the next rig start, no temp dir behind. A store write that fails
 * (a corrupted file, a file that cannot grow) ends `rig run` and
 * `rig nightly` with exit 3 and a message naming the store, and nothing
 * claims "recorded".
 *
 * The rig runs as a real child process (the sanitizer build) on its own
 * embedded simulated rack; this process becomes the child subreaper, so the
 * rig's orphans are reparented here and can be counted and reaped.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "support.h"

static char dir[4096];

static void make_dir(void) { cr_assert_eq(support_tmpdir(dir, sizeof dir), 0); }
static void remove_dir(void) { support_rmtree(dir); }

TestSuite(crash, .init = make_dir, .fini = remove_dir, .timeout = 600);

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

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* xorshift64: the kill moments come from a seed the log names. */
static uint64_t rnd_state;
static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

/* ---- a rig child ---- */

struct child {
	pid_t pid;
	int err_fd;            /* its stderr (and stdout when asked) */
};

/* Starts ARGV in its own process group (pgid = pid), stderr into a pipe,
 * stdout there too when BOTH; FSIZE > 0 caps the size of any file it writes
 * (a store that cannot grow). */
static void child_start(struct child *c, char *const argv[], bool both, rlim_t fsize)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	c->pid = fork();
	cr_assert(c->pid >= 0);
	if (c->pid == 0) {
		setpgid(0, 0);
		int nul = open("/dev/null", O_WRONLY);
		dup2(both ? p[1] : nul, STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		if (fsize) {
			struct rlimit rl = { fsize, fsize };
			setrlimit(RLIMIT_FSIZE, &rl);
			signal(SIGXFSZ, SIG_IGN); /* a write past it fails (EFBIG) instead */
		}
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(c->pid, c->pid); /* both sides: whichever runs first */
	close(p[1]);
	c->err_fd = p[0];
}

/* Reads what C wrote into OUT until it closes its end or TIMEOUT_MS pass;
 * returns its exit status (-1: killed after the timeout). */
static int child_finish(struct child *c, char *out, size_t len, int timeout_ms)
{
	size_t used = strlen(out);
	int64_t end = mono_ms() + timeout_ms;
	for (;;) {
		int left = (int)(end - mono_ms());
		struct pollfd p = { .fd = c->err_fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, left) == 0)
			break;
		char chunk[1024];
		ssize_t n = read(c->err_fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + 1 < len) {
			size_t take = (size_t)n < len - 1 - used ? (size_t)n : len - 1 - used;
			memcpy(out + used, chunk, take);
			used += take;
			out[used] = '\0';
		}
	}
	close(c->err_fd);
	int st;
	if (waitpid(c->pid, &st, WNOHANG) != c->pid) {
		int64_t until = mono_ms() + 10000;
		while (waitpid(c->pid, &st, WNOHANG) != c->pid) {
			if (mono_ms() > until) {
				kill(c->pid, SIGKILL);
				waitpid(c->pid, &st, 0);
				return -1;
			}
			nap_ms(20);
		}
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs ARGV to its end (at most 300 s): output into OUT, exit code back. */
static int run_rig(char *const argv[], char *out, size_t len, rlim_t fsize)
{
	struct child c;
	out[0] = '\0';
	child_start(&c, argv, true, fsize);
	return child_finish(&c, out, len, 300000);
}

/* ---- processes of a process group ---- */

/* pids whose process group is PGID (zombies included: they still hold it),
 * up to MAX of them. */
static int group_members(pid_t pgid, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char path[64], stat[1024];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t k = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[k] = '\0';
		const char *p = strrchr(stat, ')');
		char state;
		int ppid, pgrp;
		if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid)
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

/* Reaps every zombie reparented to this process (the subreaper). */
static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Waits (at most 20 s: a liveness bound, not a timing) until no process of
 * group PGID is left; returns how many were still there. */
static int group_left(pid_t pgid, char *names, size_t len)
{
	pid_t left[64];
	int n = 0;
	for (int64_t end = mono_ms() + 20000; mono_ms() < end; nap_ms(50)) {
		reap_orphans();
		n = group_members(pgid, left, 64);
		if (n == 0)
			return 0;
	}
	names[0] = '\0';
	for (int i = 0; i < n; i++) {
		char path[64], comm[64] = "?";
		snprintf(path, sizeof path, "/proc/%d/comm", (int)left[i]);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof comm, f))
				snprintf(comm, sizeof comm, "?");
			fclose(f);
			comm[strcspn(comm, "\n")] = '\0';
		}
		size_t u = strlen(names);
		snprintf(names + u, len - u, "%s%s(%d)", u ? ", " : "", comm, (int)left[i]);
	}
	return n;
}

/* Temp dirs under /tmp and $TMPDIR whose name carries PID
 * (trackrig-WHAT-PID-XXXXXX), listed into OUT; returns how many. */
static int temp_dirs_of(pid_t pid, char *out, size_t len)
{
	const char *roots[] = { "/tmp", getenv("TMPDIR") };
	char tag[32];
	int n = 0;
	snprintf(tag, sizeof tag, "-%d-", (int)pid);
	out[0] = '\0';
	for (size_t r = 0; r < 2; r++) {
		if (!roots[r] || !*roots[r] || (r == 1 && !strcmp(roots[r], "/tmp")))
			continue;
		DIR *d = opendir(roots[r]);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, "trackrig-", 9) && strstr(e->d_name, tag)) {
				size_t u = strlen(out);
				snprintf(out + u, len - u, "%s%s/%s", u ? " " : "", roots[r], e->d_name);
				n++;
			}
		closedir(d);
	}
	return n;
}

/* ---- the store, read raw ---- */

static sqlite3 *raw(const char *db)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "open %s", db);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static long long one_int(sqlite3 *h, const char *sql, const char *a, const char *b, const char *c)
{
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
	const char *args[] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (args[i])
			sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
	long long v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void integrity_ok(const char *db)
{
	sqlite3 *h = raw(db);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok", "integrity_check of %s", db);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* ---- SIGKILL at random moments ---- */

#define MAX_LINES 128

struct finished {
	char slot[8], scenario[40], outcome[16];
};

/* Parses "slot N: SCENARIO OUTCOME[ (marginal)]" lines of LINE into F. */
static bool parse_finished(const char *line, struct finished *f)
{
	return sscanf(line, "slot %7[0-9]: %39s %15[a-z]", f->slot, f->scenario, f->outcome) == 3;
}

/* Lines read so far from a rig's stderr, and the finished outcomes in them. */
struct reader {
	char buf[8192];
	size_t used;
	struct finished seen[MAX_LINES];
	int n_seen;
};

/* Reads what is there on FD within WAIT_MS; false at end of file. */
static bool read_some(struct reader *r, int fd, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, wait_ms > 0 ? wait_ms : 0) <= 0)
		return true;
	ssize_t n = read(fd, r->buf + r->used, sizeof r->buf - 1 - r->used);
	if (n <= 0)
		return n < 0 && errno == EINTR;
	r->used += (size_t)n;
	r->buf[r->used] = '\0';
	char *nl;
	while ((nl = strchr(r->buf, '\n'))) {
		*nl = '\0';
		if (r->n_seen < MAX_LINES && parse_finished(r->buf, &r->seen[r->n_seen]))
			r->n_seen++;
		size_t line = (size_t)(nl + 1 - r->buf);
		memmove(r->buf, nl + 1, r->used - line + 1);
		r->used -= line;
	}
	if (r->used == sizeof r->buf - 1)
		r->used = 0; /* a line longer than the buffer: not one of ours */
	return true;
}

/* One kill: starts a multi-scenario run on the embedded rack, lets it print
 * TARGET finished outcomes (fewer if it ends first), waits EXTRA_MS more, then
 * SIGKILLs it and checks everything this file's header promises. */
static void kill_once(int round, unsigned target, unsigned extra_ms)
{
	char db[64];
	snprintf(db, sizeof db, "kill%d.db", round);
	char *dbp = path_in(db);
	char *argv[] = { (char *)rig(), "run", "power-loss", "ttff", "data-cap", "gnss-outage", "--db", dbp, NULL };
	struct child c;
	child_start(&c, argv, false, 0);

	static struct reader r;
	memset(&r, 0, sizeof r);
	bool open_ = true;
	int64_t kill_at = -1, end = mono_ms() + 300000;
	while (open_ && mono_ms() < end && (kill_at < 0 || mono_ms() < kill_at)) {
		open_ = read_some(&r, c.err_fd, kill_at < 0 ? 1000 : (int)(kill_at - mono_ms()));
		if (kill_at < 0 && (unsigned)r.n_seen >= target)
			kill_at = mono_ms() + extra_ms;
	}
	/* What the rig has in its group now: simrack, gpsd and gpsd's sentinel. */
	pid_t members[64];
	int n_members = group_members(c.pid, members, 64);
	char dirs[2048];
	temp_dirs_of(c.pid, dirs, sizeof dirs);
	kill(c.pid, SIGKILL);
	/* What it printed before the kill landed counts too. The pipe ends
	 * when the last process holding it (simrack) is gone: bounded, so a
	 * survivor fails below instead of hanging here. */
	for (int64_t until = mono_ms() + 20000; open_ && mono_ms() < until;)
		open_ = read_some(&r, c.err_fd, 200);
	int n_seen = r.n_seen;
	struct finished *seen = r.seen;
	close(c.err_fd);
	waitpid(c.pid, NULL, 0);
	cr_log_info("round %d: killed after %d finished outcomes (target %u, +%u ms), %d other processes "
		    "in its group, temp dirs: %s", round, n_seen, target, extra_ms, n_members - 1, dirs);

	/* No process of the killed rig survives it. */
	char names[1024] = "";
	int left = group_left(c.pid, names, sizeof names);
	cr_assert_eq(left, 0, "round %d: %d process%s of the killed rig (pid %d) still running: %s", round, left,
		     left == 1 ? "" : "es", (int)c.pid, names);

	/* The next rig start removes the killed rig's temp dirs. */
	char out[4096];
	char *next[] = { (char *)rig(), "audit", "--db", path_in("none.db"), NULL };
	cr_assert_eq(run_rig(next, out, sizeof out, 0), 0, "%s", out);
	cr_assert_eq(temp_dirs_of(c.pid, dirs, sizeof dirs), 0, "round %d: left behind: %s", round, dirs);

	/* Killed before it made its store (the rack was still starting):
	 * then it cannot have finished anything either. */
	if (access(dbp, F_OK) != 0) {
		cr_assert_eq(n_seen, 0, "round %d: outcomes printed and no store %s", round, dbp);
		return;
	}
	/* Every outcome it printed as finished is in the store, as printed. */
	integrity_ok(dbp);
	sqlite3 *h = raw(dbp);
	if (one_int(h, "SELECT count(*) FROM sqlite_schema WHERE name IN ('runs', 'results')", NULL, NULL, NULL) < 2) {
		sqlite3_close(h);
		cr_assert_eq(n_seen, 0, "round %d: outcomes printed and the store has no tables", round);
		return;
	}
	for (int i = 0; i < n_seen; i++)
		cr_assert_eq(one_int(h, "SELECT count(*) FROM results WHERE slot = ?1 AND scenario = ?2 AND outcome = ?3",
				     seen[i].slot, seen[i].scenario, seen[i].outcome), 1,
			     "round %d: slot %s %s %s was printed as finished and is not in the store", round,
			     seen[i].slot, seen[i].scenario, seen[i].outcome);
	long long open_runs = one_int(h, "SELECT count(*) FROM runs WHERE finished_at IS NULL", NULL, NULL, NULL);
	sqlite3_close(h);

	/* The next open marks the run interrupted; what finished stays. */
	if (open_runs > 0) {
		store *s;
		char err[512];
		cr_assert_eq(store_open(dbp, &s, err, sizeof err), 0, "%s", err);
		cr_assert_eq(store_interrupted_at_open(s), 1, "round %d", round);
		store_close(s);
		h = raw(dbp);
		cr_assert_eq(one_int(h, "SELECT count(*) FROM runs WHERE outcome = 'interrupted' AND finished_at IS NOT NULL",
				     NULL, NULL, NULL), 1, "round %d: the killed run is marked interrupted", round);
		cr_assert_eq(one_int(h, "SELECT count(*) FROM results", NULL, NULL, NULL) >= n_seen, 1);
		sqlite3_close(h);
		integrity_ok(dbp);
	}
}

Test(crash, sigkill_at_random_moments_loses_nothing_that_finished)
{
	/* The rig's orphans (simrack, gpsd) come here, to be counted and reaped. */
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	const char *env = getenv("TRACKRIG_KILL_SEED");
	rnd_state = env && *env ? strtoull(env, NULL, 10) : 20261202;
	cr_log_info("kill seed %llu (TRACKRIG_KILL_SEED repeats it)", (unsigned long long)rnd_state);
	/* Early (rack starting, nothing finished), then with results in. */
	kill_once(0, 0, rnd(1500));
	for (int round = 1; round < 4; round++)
		kill_once(round, 1 + rnd(24), rnd(400));
}

/* ---- store failures ---- */

/* Writes random bytes over the pages of the measurements table and its
 * indexes in DB (checkpointed first, so the pages are in the main file). */
static void corrupt_measurements(const char *db)
{
	sqlite3 *h = raw(db);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'measurements'"
				    " AND rootpage > 0", -1, &st, NULL), SQLITE_OK);
	long pages[16];
	int n = 0;
	while (n < 16 && sqlite3_step(st) == SQLITE_ROW)
		pages[n++] = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	long page_size = one_int(h, "PRAGMA page_size", NULL, NULL, NULL);
	sqlite3_close(h);
	cr_assert(n > 0);
	int fd = open(db, O_WRONLY);
	cr_assert(fd >= 0);
	char junk[65536];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof junk; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		junk[i] = (char)x;
	}
	for (int i = 0; i < n; i++)
		cr_assert_eq(pwrite(fd, junk, (size_t)page_size, (off_t)(pages[i] - 1) * page_size), page_size);
	close(fd);
}

/* `rig CMD... --db DB` must end with exit 3, a message naming DB and what
 * failed (WHY), and no "recorded". */
static void expect_store_failure(char *const argv[], const char *db, const char *why, rlim_t fsize)
{
	static char out[262144];
	int rc = run_rig(argv, out, sizeof out, fsize);
	cr_assert_eq(rc, 3, "%s %s: exit %d, expected 3 (infrastructure):\n%s", argv[1], db, rc, out);
	cr_assert(strstr(out, "results store") && strstr(out, db) && strstr(out, why),
		  "%s: the message names the store and what failed (%s):\n%s", argv[1], why, out);
	cr_assert_null(strstr(out, "recorded in"), "%s: nothing claims recorded:\n%s", argv[1], out);
}

Test(crash, corrupted_store_ends_run_and_nightly_with_exit_3)
{
	static char out[262144];
	char *db = path_in("c.db");
	char *first[] = { (char *)rig(), "run", "power-loss", "--slots", "1", "--db", db, NULL };
	for (int i = 0; i < 2; i++)
		cr_assert_eq(run_rig(first, out, sizeof out, 0), 0, "%s", out);
	corrupt_measurements(db);
	expect_store_failure(first, db, "malformed", 0);
	char *night[] = { (char *)rig(), "nightly", "--db", db, NULL };
	expect_store_failure(night, db, "malformed", 0);
}

Test(crash, store_that_cannot_grow_ends_run_and_nightly_with_exit_3)
{
	static char out[262144];
	char *db = path_in("full.db");
	char *first[] = { (char *)rig(), "run", "power-loss", "--slots", "1", "--db", db, NULL };
	cr_assert_eq(run_rig(first, out, sizeof out, 0), 0, "%s", out);
	sqlite3 *h = raw(db);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	/* No file the rig writes may grow past 160 KB (the store's WAL fills
	 * up within the run); a write past it fails like a full disk. */
	char *night[] = { (char *)rig(), "nightly", "--db", db, NULL };
	expect_store_failure(night, db, "a write failed", 160 * 1024);
	char *run[] = { (char *)rig(), "run", "power-loss", "data-cap", "--db", db, NULL };
	expect_store_failure(run, db, "a write failed", 160 * 1024);
	integrity_ok(db);
}

/* ---- commands that only read ---- */

Test(crash, audit_opens_the_store_read_only)
{
	static char out[65536];
	char *db = path_in("ro.db");
	/* A missing store: said, and not created. */
	char *audit[] = { (char *)rig(), "audit", "--db", db, NULL };
	cr_assert_eq(run_rig(audit, out, sizeof out, 0), 0, "%s", out);
	cr_assert(strstr(out, "does not exist") && strstr(out, db), "%s", out);
	cr_assert_neq(access(db, F_OK), 0, "rig audit created %s", db);

	/* A store one schema version behind, read-only on disk, with a run
	 * nobody closed: audit reads it and neither migrates nor sweeps it. */
	store *s;
	char err[512];
	cr_assert_eq(store_open(db, &s, err, sizeof err), 0, "%s", err);
	struct store_audit a = { .operator_ = "qa", .command = "getver", .result = "ok", .imei = "356307042441013" };
	cr_assert_gt(store_audit_add(s, &a), 0);
	store_close(s);
	sqlite3 *h = raw(db);
	char sql[512];
	snprintf(sql, sizeof sql, "INSERT INTO runs (started_at, command, operator, seed, rig_version)"
		 " VALUES ('2026-01-01T00:00:00.000Z', 'run', 'qa', 1, '0'); PRAGMA user_version = %d;"
		 " PRAGMA wal_checkpoint(TRUNCATE);", store_schema_latest() - 1);
	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
	cr_assert_eq(chmod(db, 0444), 0);
	cr_assert_eq(run_rig(audit, out, sizeof out, 0), 0, "%s", out);
	cr_assert(strstr(out, "getver"), "%s", out);
	h = raw(db);
	cr_assert_eq(one_int(h, "PRAGMA user_version", NULL, NULL, NULL), store_schema_latest() - 1,
		     "rig audit migrated the store");
	cr_assert_eq(one_int(h, "SELECT count(*) FROM runs WHERE finished_at IS NULL", NULL, NULL, NULL), 1,
		     "rig audit swept the store");
	sqlite3_close(h);

	/* An empty file is no store: a clear refusal, and it stays empty. */
	char *empty = path_in("empty.db");
	int fd = open(empty, O_CREAT | O_WRONLY, 0644);
	close(fd);
	char *audit2[] = { (char *)rig(), "audit", "--db", empty, NULL };
	cr_assert_eq(run_rig(audit2, out, sizeof out, 0), 3, "%s", out);
	cr_assert(strstr(out, empty) && strstr(out, "not a results store yet"), "%s", out);
	struct stat sb;
	cr_assert(stat(empty, &sb) == 0 && sb.st_size == 0, "rig audit wrote into an empty file");
}
