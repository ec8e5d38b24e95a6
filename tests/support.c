/* support.c - shared helpers for the end-to-end tests (see support.h). */
#include "support.h"

#include <criterion/criterion.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <inttypes.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define RUN_TIMEOUT_MS 10000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* In a fresh child: die with the test (even if it crashes), start with a
 * clean signal mask, and exec. Never returns. */
static void exec_child(char *const argv[])
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	fprintf(stderr, "support: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* fork() whose child gets SIGKILL when the parent dies. Returns as fork(). */
static pid_t fork_tied(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)   /* the parent died before prctl */
			_exit(127);
	}
	return pid;
}

/* Waits up to TIMEOUT_MS for PID; SIGKILL after that. Returns the wait status,
 * or -1 when it had to be killed. */
static int reap(pid_t pid, int timeout_ms)
{
	int st;
	int64_t end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static const char *describe_status(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "did not exit in time (killed)");
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "died of signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

/* ---- files and programs ---- */

int support_tmpdir(char *buf, size_t len)
{
	if (snprintf(buf, len, "/tmp/trackrig-test-XXXXXX") >= (int)len) {
		fprintf(stderr, "support_tmpdir: buffer too small\n");
		return -1;
	}
	if (!mkdtemp(buf)) {
		fprintf(stderr, "support_tmpdir: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "support_rmtree: %s: %s\n", path, strerror(errno));
	return 0;
}

int support_rmtree(const char *path)
{
	if (!path || !*path || strcmp(path, "/") == 0)
		return -1;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return -1;
	return access(path, F_OK) == 0 ? -1 : 0;
}

const char *support_bin(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("TRACKRIG_BIN");
	snprintf(buf, len, "%s/%s", dir && *dir ? dir : "build/san", name);
	return buf;
}

char *support_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "support_read_file: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		len += fread(buf + len, 1, cap - len - 1, f);
		if (len < cap - 1)
			break;
		char *bigger = realloc(buf, cap * 2);
		if (!bigger) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = bigger;
		cap *= 2;
	}
	if (buf)
		buf[len] = '\0';
	fclose(f);
	return buf;
}

int support_run(char *const argv[], char *out, size_t outlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "support_run: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork_tied();
	if (pid < 0) {
		fprintf(stderr, "support_run: fork: %s\n", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		exec_child(argv);
	}
	close(pfd[1]);
	size_t used = 0;
	bool timed_out = false;
	int64_t end = now_ms() + RUN_TIMEOUT_MS;
	for (;;) {
		int left = (int)(end - now_ms());
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		if (left <= 0 || poll(&p, 1, left) == 0) {
			timed_out = true;
			break;
		}
		char chunk[512];
		ssize_t n = read(pfd[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && outlen > 1 && used < outlen - 1) {
			size_t take = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;
			memcpy(out + used, chunk, take);
			used += take;
		}
	}
	if (out && outlen)
		out[used] = '\0';
	close(pfd[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int st = reap(pid, RUN_TIMEOUT_MS);
	if (timed_out || st == -1 || !WIFEXITED(st)) {
		char why[64];
		fprintf(stderr, "support_run: %s %s\n", argv[0],
			timed_out ? "took too long (killed)" : describe_status(st, why, sizeof why));
		return -1;
	}
	return WEXITSTATUS(st);
}

/* ---- the simulated rack ---- */

const char *simrack_console(const struct simrack_proc *p, int slot, char *buf, size_t len)
{
	snprintf(buf, len, "%s/slot%d/console", p->dir, slot);
	return buf;
}

const char *simrack_rackfile(const struct simrack_proc *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/rack.yaml", p->dir);
	return buf;
}

int simrack_start(struct simrack_proc *p, int slots, const char *profiles, unsigned seed)
{
	const char *const extra[] = { profiles ? "--profiles" : NULL, profiles, NULL };
	return simrack_start_args(p, slots, seed, extra);
}

int simrack_start_args(struct simrack_proc *p, int slots, unsigned seed, const char *const *extra)
{
	char bin[PATH_MAX], yaml[PATH_MAX + 16], nslots[16], nseed[16];
	p->pid = 0;
	if (support_tmpdir(p->dir, sizeof p->dir) < 0)
		return -1;
	support_bin("simrack", bin, sizeof bin);
	if (access(bin, X_OK) < 0) {
		fprintf(stderr, "simrack_start: %s: %s (build it, or set TRACKRIG_BIN)\n", bin,
			strerror(errno));
		support_rmtree(p->dir);
		return -1;
	}
	snprintf(nslots, sizeof nslots, "%d", slots);
	snprintf(nseed, sizeof nseed, "%u", seed);
	char *argv[24] = { bin, "--slots", nslots, "--dir", p->dir, "--seed", nseed };
	for (int i = 0, k = 7; extra && extra[i] && k < 23; i++)
		argv[k++] = (char *)extra[i];

	pid_t pid = fork_tied();
	if (pid < 0) {
		fprintf(stderr, "simrack_start: fork: %s\n", strerror(errno));
		support_rmtree(p->dir);
		return -1;
	}
	if (pid == 0) {
		/* Its one stdout line ("ready") is noise in test logs; stderr
		 * (errors, sanitizer reports) stays. */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		exec_child(argv);
	}
	p->pid = pid;

	simrack_rackfile(p, yaml, sizeof yaml);
	int64_t end = now_ms() + START_TIMEOUT_MS;
	while (now_ms() < end) {
		if (access(yaml, F_OK) == 0)
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char why[64];
			fprintf(stderr, "simrack_start: simrack %s before writing %s\n",
				describe_status(st, why, sizeof why), yaml);
			p->pid = 0;
			simrack_stop(p);
			return -1;
		}
		sleep_ms(5);
	}
	fprintf(stderr, "simrack_start: no %s after %d ms\n", yaml, START_TIMEOUT_MS);
	simrack_kill(p);
	simrack_stop(p);
	return -1;
}

int simrack_stop(struct simrack_proc *p)
{
	int rc = 0;
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		int st = reap(p->pid, STOP_TIMEOUT_MS);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char why[64];
			fprintf(stderr, "simrack_stop: simrack %s on SIGTERM\n",
				describe_status(st, why, sizeof why));
			rc = -1;
		}
		p->pid = 0;
	}
	if (p->dir[0]) {
		support_rmtree(p->dir);
		p->dir[0] = '\0';
	}
	return rc;
}

void simrack_kill(struct simrack_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

/* ---- raw console lines ---- */

int support_tty_open(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "support_tty_open: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct termios t;
	if (tcgetattr(fd, &t) < 0) {
		fprintf(stderr, "support_tty_open: %s: tcgetattr: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	cfmakeraw(&t);
	/* TCSANOW, not TCSAFLUSH: an event line already queued (the @BOOT of
	 * a device that booted before we opened) must survive. */
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		fprintf(stderr, "support_tty_open: %s: tcsetattr: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* One line before the monotonic deadline END. */
static int readline_until(int fd, char *buf, size_t len, int64_t end)
{
	size_t n = 0;
	for (;;) {
		int left = (int)(end - now_ms());
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0)
			return -1;
		int r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || !(p.revents & POLLIN))
			return -1;
		char c;
		ssize_t got = read(fd, &c, 1);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return -1;
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (len)
		buf[n] = '\0';
	return (int)n;
}

int support_tty_readline(int fd, char *buf, size_t len, int timeout_ms)
{
	return readline_until(fd, buf, len, now_ms() + timeout_ms);
}

int support_tty_expect(int fd, const char *prefix, char *buf, size_t len, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int n = readline_until(fd, buf, len, end);
		if (n < 0 || strncmp(buf, prefix, strlen(prefix)) == 0)
			return n;
	}
}

int support_tty_command(int fd, const char *cmd, char *buf, size_t len, int timeout_ms,
			bool skip_events)
{
	int64_t end = now_ms() + timeout_ms;
	size_t clen = strlen(cmd);
	char *line = malloc(clen + 2);
	if (!line)
		return -1;
	memcpy(line, cmd, clen);
	memcpy(line + clen, "\r\n", 2);
	size_t off = 0;
	while (off < clen + 2) {
		ssize_t w = write(fd, line + off, clen + 2 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "support_tty_command: write '%s': %s\n", cmd, strerror(errno));
			free(line);
			return -1;
		}
		off += (size_t)w;
	}
	free(line);
	for (;;) {
		int n = readline_until(fd, buf, len, end);
		if (n < 0 || !skip_events || buf[0] != '@')
			return n;
	}
}

int support_console_up(int fd, char *buf, size_t len, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		if (support_tty_command(fd, "getver", buf, len, 500, false) < 0)
			continue;
		if (strncmp(buf, "Ver:", 4) == 0 || strncmp(buf, "@BOOT", 5) == 0)
			return 0;
	}
	return -1;
}

int support_console_booted(const struct simrack_proc *p, int slot, char *boot, size_t len)
{
	char path[PATH_MAX + 32];
	int fd = support_tty_open(simrack_console(p, slot, path, sizeof path));
	cr_assert_geq(fd, 0, "cannot open %s", path);
	/* An agent unit says it is up (@BOOT, queued since it booted). */
	if (support_tty_expect(fd, "@BOOT", boot, len, 300) >= 0)
		return fd;
	/* A Teltonika unit says nothing: it is up once it answers. */
	cr_assert_eq(support_console_up(fd, boot, len, SUPPORT_BOOT_MS), 0,
		     "slot %d: neither @BOOT nor an answer to getver within %d ms", slot, SUPPORT_BOOT_MS);
	return fd;
}

void support_console_command(int fd, const char *cmd, char *buf, size_t len)
{
	cr_assert_geq(support_tty_command(fd, cmd, buf, len, SUPPORT_ANSWER_MS, true), 0,
		      "no answer to '%s' within %d ms", cmd, SUPPORT_ANSWER_MS);
}

/* ---- simrack's control socket ---- */

int support_unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	cr_assert_lt(strlen(path), sizeof a.sun_path, "socket path too long: %s", path);
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect %s: %s", path, strerror(errno));
	return fd;
}

int simrack_control(const struct simrack_proc *p)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/control.sock", p->dir);
	return support_unix_connect(path);
}

const char *support_ctl(int fd, const char *req)
{
	static char reply[256];
	char line[256];
	int n = snprintf(line, sizeof line, "%s\n", req);
	cr_assert_eq(write(fd, line, (size_t)n), n, "control write: %s", strerror(errno));
	size_t len = 0;
	int64_t end = now_ms() + SUPPORT_CTL_MS;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int left = (int)(end - now_ms());
		cr_assert(left > 0 && poll(&pf, 1, left) == 1, "no reply to '%s'", req);
		char c;
		cr_assert_eq(read(fd, &c, 1), 1, "control socket closed after '%s'", req);
		if (c == '\n')
			break;
		cr_assert_lt(len, sizeof reply - 1, "over-long reply to '%s'", req);
		reply[len++] = c;
	}
	reply[len] = '\0';
	return reply;
}

uint64_t support_ctl_move(int fd, const char *verb, uint64_t t)
{
	char req[64];
	snprintf(req, sizeof req, "%s %" PRIu64, verb, t);
	const char *r = support_ctl(fd, req);
	cr_assert_eq(strncmp(r, "ok now=", 7), 0, "'%s' -> '%s'", req, r);
	return strtoull(r + 7, NULL, 10);
}

int support_run_logged(char *const argv[], const char *log, int seconds)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	for (int i = 0; i < seconds * 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The result block of SLOT for SCENARIO in a JSON record. */
char *support_result_block(const char *json, int slot, const char *scenario, char *out, size_t len)
{
	char pat[32], sc[96];
	snprintf(pat, sizeof pat, "\"slot\": %d,", slot);
	snprintf(sc, sizeof sc, "\"scenario\": \"%s\"", scenario);
	for (const char *p = strstr(json, pat); p; p = strstr(p + 1, pat)) {
		const char *q = strstr(p + 1, "\"slot\": ");
		const char *hit = strstr(p, sc);
		if (!hit || (q && hit > q))
			continue;
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (n >= len)
			n = len - 1;
		memcpy(out, p, n);
		out[n] = '\0';
		return out;
	}
	cr_assert_fail("no %s result for slot %d", scenario, slot);
	return NULL;
}
