/*
 * support.h - shared helpers for the end-to-end tests.
 *
 * A test starts its own simulated rack (simrack) in its own temp dir, talks
 * to consoles over their ptys, and stops the rack; nothing is shared between
 * tests, so Criterion can run them in parallel. Programs come from
 * $TRACKRIG_BIN (the sanitizer build; default build/san).
 *
 * Functions returning int give 0 (or a count / fd) on success and -1 on
 * failure, with a message on stderr saying what failed: a test then asserts
 * on the return value and the log tells why.
 */
#ifndef TRACKRIG_TEST_SUPPORT_H
#define TRACKRIG_TEST_SUPPORT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the simulated rack ---- */

struct simrack_proc {
	pid_t pid;             /* 0 once reaped (simrack_kill, or by the test) */
	char dir[PATH_MAX];    /* the rack dir: DIR/rack.yaml, DIR/slotK/console */
};

/* Starts simrack with SLOTS slots, PROFILES (NULL: simrack's default) and
 * SEED in a fresh temp dir, and waits (at most 10 s) until DIR/rack.yaml is
 * there, i.e. every console exists. simrack gets SIGKILL if the test process
 * dies. Returns 0, or -1 (nothing left running, dir removed). */
int simrack_start(struct simrack_proc *p, int slots, const char *profiles, unsigned seed);

/* As simrack_start, with further simrack arguments EXTRA (NULL-terminated;
 * may be NULL), e.g. { "--virtual", "--mix", "lab", NULL }. A --virtual rack
 * writes rack.yaml at time 0, before any device has booted. */
int simrack_start_args(struct simrack_proc *p, int slots, unsigned seed, const char *const *extra);

/* SIGTERM, waits for the exit (SIGKILL after 5 s), removes the temp dir.
 * Returns 0 when simrack exited 0 (a clean stop: no sanitizer report), else
 * -1 with the reason on stderr; callers may ignore it.
 * Also just removes the dir after simrack_kill() or when pid is 0. */
int simrack_stop(struct simrack_proc *p);

/* SIGKILL and reap: the rack vanishes without cleaning up, like a pulled
 * cable. The dir stays until simrack_stop(). */
void simrack_kill(struct simrack_proc *p);

/* DIR/slotSLOT/console into BUF; returns BUF. */
const char *simrack_console(const struct simrack_proc *p, int slot, char *buf, size_t len);

/* DIR/rack.yaml into BUF; returns BUF. */
const char *simrack_rackfile(const struct simrack_proc *p, char *buf, size_t len);

/* ---- files and programs ---- */

/* Makes a fresh scratch dir under /tmp into BUF; remove it with support_rmtree(). */
int support_tmpdir(char *buf, size_t len);

/* Removes PATH and everything under it, never following symlinks. */
int support_rmtree(const char *path);

/* $TRACKRIG_BIN/NAME (default build/san/NAME) into BUF; returns BUF. */
const char *support_bin(const char *name, char *buf, size_t len);

/* The whole file at PATH, NUL-terminated, malloc'ed (caller frees), or NULL. */
char *support_read_file(const char *path);

/* Runs ARGV (argv[0] a path) to completion, its stdout and stderr together
 * into OUT (NUL-terminated, may be NULL). Returns the exit code, or -1 when
 * it could not run, died of a signal or took longer than 10 s. */
int support_run(char *const argv[], char *out, size_t outlen);

/* Runs ARGV with stdin from /dev/null and stdout+stderr into the file LOG,
 * killed after SECONDS (a long run on a loaded machine, but never a hang).
 * Returns the exit code, or -1 when it was killed or died of a signal. */
int support_run_logged(char *const argv[], const char *log, int seconds);

/* ---- raw console lines ---- */

/* Opens a tty (pty slave or its symlink) O_RDWR|O_NOCTTY and puts it in raw
 * mode without flushing what is queued. Returns the fd or -1. */
int support_tty_open(const char *path);

/* Reads one line (terminator stripped, "\r\n" or "\n") into BUF within
 * TIMEOUT_MS. An over-long line is truncated to fit BUF. Returns the length,
 * or -1 on timeout, hang-up or error. Reads byte by byte: nothing past the
 * line is consumed, so calls can be mixed freely. */
int support_tty_readline(int fd, char *buf, size_t len, int timeout_ms);

/* Reads lines until one starts with PREFIX ("" matches any); the others are
 * skipped. Returns its length or -1 when TIMEOUT_MS passes first. */
int support_tty_expect(int fd, const char *prefix, char *buf, size_t len, int timeout_ms);

/* Sends CMD + "\r\n" and reads the next line into BUF within TIMEOUT_MS,
 * skipping event lines (starting with '@') when SKIP_EVENTS. Returns the
 * length or -1. */
int support_tty_command(int fd, const char *cmd, char *buf, size_t len, int timeout_ms,
			bool skip_events);

/* ---- asserting console helpers (Criterion tests only) ---- */

#define SUPPORT_BOOT_MS 10000   /* wait for a boot (a reference FMB920 takes 5 s, ASan is slow) */
#define SUPPORT_ANSWER_MS 5000  /* wait for an answer from a healthy console */

/* Opens SLOT's console and waits until the unit is up: an agent unit's
 * @BOOT line, or a Teltonika unit's first answer to getver (it prints
 * nothing unasked), copied into BOOT; fails the test if neither comes.
 * Returns the fd. */
int support_console_booted(const struct simrack_proc *p, int slot, char *boot, size_t len);

/* Asks getver on console FD every 500 ms until the unit answers (a booting
 * unit is deaf, so no answer is owed from the tries before) or an agent
 * unit's @BOOT arrives, that line into BUF: 0, or -1 after TIMEOUT_MS.
 * How a test sees a Teltonika unit back after a reset: it prints nothing. */
int support_console_up(int fd, char *buf, size_t len, int timeout_ms);

/* Sends CMD and fails the test unless an answer (events skipped) arrives. */
void support_console_command(int fd, const char *cmd, char *buf, size_t len);

/* ---- simrack's control socket (docs/simrack-control.md; Criterion only) ---- */

#define SUPPORT_CTL_MS 60000    /* bound for a control reply: a reply is due at once */

/* Connects to the Unix socket PATH; fails the test if it cannot. */
int support_unix_connect(const char *path);

/* Connects to P's control socket (DIR/control.sock). */
int simrack_control(const struct simrack_proc *p);

/* Sends REQ on FD and returns its one-line reply (static buffer, "\n"
 * stripped); fails the test without a reply within SUPPORT_CTL_MS. */
const char *support_ctl(int fd, const char *req);

/* "advance T" or "next T" (VERB): fails the test unless the reply is
 * "ok now=..."; returns the rack time it names. */
uint64_t support_ctl_move(int fd, const char *verb, uint64_t t);

/* The result block of SLOT for SCENARIO in a `rig run --json` record, into
 * OUT; fails the test when there is none. */
char *support_result_block(const char *json, int slot, const char *scenario, char *out, size_t len);

#endif
