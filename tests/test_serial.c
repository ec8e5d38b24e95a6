/*
 * test_serial.c - drivers/serial*.c against real pseudo-terminals.
 *
 * Each test makes its own pty pair: the test holds the master (it plays the
 * tracker), the code under test opens the slave path. The termios backend
 * runs in this process. The libserialport backend needs the ioctl shim
 * preloaded (see tests/shim/ptyshim.c), so it runs in tests/tools/
 * serial_peer, started with LD_PRELOAD=$TRACKRIG_SHIM from $TRACKRIG_BIN.
 *
 * No test measures time. Timeouts passed to the code are guards that only
 * matter when the code is broken (a GONE misread as silence would wait them
 * out and fail as TIMEOUT).
 */
#include "serial.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Long enough that only a broken implementation ever reaches it. */
#define GUARD_MS 10000

/* ---- the pty pair ---------------------------------------------------- */

struct pty {
	int master;
	/* The test keeps the slave open too, so that the master never sees
	 * "no slave" (EIO, POLLHUP) while the code under test reopens it. */
	int slave_fd;
	char slave[64];
};

static void pty_open(struct pty *t)
{
	t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert(t->master >= 0, "posix_openpt: %s", strerror(errno));
	cr_assert_eq(grantpt(t->master), 0, "grantpt: %s", strerror(errno));
	cr_assert_eq(unlockpt(t->master), 0, "unlockpt: %s", strerror(errno));
	cr_assert_eq(ptsname_r(t->master, t->slave, sizeof t->slave), 0, "ptsname_r failed");
	t->slave_fd = open(t->slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert(t->slave_fd >= 0, "open %s: %s", t->slave, strerror(errno));
}

static void pty_close_master(struct pty *t)
{
	if (t->master >= 0)
		close(t->master);
	t->master = -1;
}

static void pty_close(struct pty *t)
{
	pty_close_master(t);
	if (t->slave_fd >= 0)
		close(t->slave_fd);
	t->slave_fd = -1;
}

static void master_write(const struct pty *t, const void *buf, size_t n)
{
	const unsigned char *at = buf;
	while (n > 0) {
		ssize_t w = write(t->master, at, n);
		if (w < 0 && errno == EINTR)
			continue;
		cr_assert(w > 0, "write to pty master: %s", strerror(errno));
		at += w;
		n -= (size_t)w;
	}
}

/* Reads exactly N bytes from the master or fails the test. */
static void master_read(const struct pty *t, void *buf, size_t n)
{
	unsigned char *at = buf;
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = t->master, .events = POLLIN };
		int r = poll(&pfd, 1, GUARD_MS);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert(r > 0, "pty master: %zu of %zu bytes, then nothing", got, n);
		ssize_t rd = read(t->master, at + got, n - got);
		if (rd < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		cr_assert(rd > 0, "read from pty master: %s", rd < 0 ? strerror(errno) : "end of file");
		got += (size_t)rd;
	}
}

/* Reads exactly N bytes through the port under test or fails the test. */
static void port_read(serial_port *p, void *buf, size_t n)
{
	unsigned char *at = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t rd = serial_read(p, at + got, n - got, GUARD_MS);
		cr_assert(rd > 0, "serial_read after %zu of %zu bytes: %s", got, n, serial_last_error(p));
		got += (size_t)rd;
	}
}

static serial_port *open_ok(const char *path, const struct serial_config *cfg, enum serial_backend b)
{
	serial_port *p = NULL;
	int rc = serial_open(path, cfg, b, &p);
	cr_assert_eq(rc, SERIAL_OK, "serial_open %s: %s", path, serial_open_error());
	cr_assert_not_null(p);
	return p;
}

static void assert_contains(const char *text, const char *part)
{
	cr_assert(text && strstr(text, part), "expected \"%s\" in \"%s\"", part, text ? text : "(null)");
}

/* ---- a private temp dir per test ------------------------------------- */

struct tmpdir {
	char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
	snprintf(d->path, sizeof d->path, "/tmp/trackrig-serial-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path), "mkdtemp: %s", strerror(errno));
}

/* Removes the files a test made (flat), then the dir. */
static void tmpdir_remove(struct tmpdir *d, const char *const *names)
{
	char file[PATH_MAX];
	for (; names && *names; names++) {
		snprintf(file, sizeof file, "%s/%s", d->path, *names);
		unlink(file);
	}
	rmdir(d->path);
}

/* ---- termios backend, in process -------------------------------------- */

Test(serial, termios_round_trip)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);
	cr_assert_str_eq(serial_backend_name(p), "termios");
	cr_assert_str_eq(serial_path(p), t.slave);

	cr_assert_eq(serial_write_all(p, "ping\n", 5, GUARD_MS), SERIAL_OK, "%s", serial_last_error(p));
	char got[8] = { 0 };
	/* Exactly "ping\n": output post-processing (ONLCR) is off. */
	master_read(&t, got, 5);
	cr_assert_eq(memcmp(got, "ping\n", 5), 0, "master got \"%.5s\"", got);

	/* Exactly "pong\r\n": no input translation (ICRNL) either. */
	master_write(&t, "pong\r\n", 6);
	memset(got, 0, sizeof got);
	port_read(p, got, 6);
	cr_assert_eq(memcmp(got, "pong\r\n", 6), 0);

	serial_close(p);
	pty_close(&t);
}

/* A fresh pty is in cooked mode (echo, line editing, ^C, XON/XOFF); only the
 * backend's own configuration can make every byte value pass. */
Test(serial, termios_every_byte_value_passes_both_ways)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);

	unsigned char all[256], got[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;

	master_write(&t, all, sizeof all);
	port_read(p, got, sizeof got);
	cr_assert_eq(memcmp(all, got, sizeof all), 0, "device-to-rig bytes altered");

	cr_assert_eq(serial_write_all(p, all, sizeof all, GUARD_MS), SERIAL_OK, "%s", serial_last_error(p));
	master_read(&t, got, sizeof got);
	cr_assert_eq(memcmp(all, got, sizeof all), 0, "rig-to-device bytes altered");

	/* Nothing extra (an echo) followed. */
	unsigned char extra;
	cr_assert_eq(serial_read(p, &extra, 1, 0), SERIAL_ERR_TIMEOUT);

	serial_close(p);
	pty_close(&t);
}

Test(serial, read_timeout_is_timeout_and_port_stays_usable)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);

	char buf[16];
	cr_assert_eq(serial_read(p, buf, sizeof buf, 50), SERIAL_ERR_TIMEOUT, "%s", serial_last_error(p));
	assert_contains(serial_last_error(p), t.slave);
	assert_contains(serial_last_error(p), "read: timed out");
	cr_assert_eq(serial_read(p, buf, sizeof buf, 0), SERIAL_ERR_TIMEOUT, "%s", serial_last_error(p));

	master_write(&t, "x", 1);
	cr_assert_eq(serial_read(p, buf, sizeof buf, GUARD_MS), 1, "%s", serial_last_error(p));
	cr_assert_eq(buf[0], 'x');

	serial_close(p);
	pty_close(&t);
}

Test(serial, master_closed_is_gone_not_timeout)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);

	pty_close_master(&t);
	char buf[16];
	cr_assert_eq(serial_read(p, buf, sizeof buf, GUARD_MS), SERIAL_ERR_GONE, "%s", serial_last_error(p));
	assert_contains(serial_last_error(p), t.slave);
	assert_contains(serial_last_error(p), "read: device gone");
	/* Still gone on the next call, and for every direction. */
	cr_assert_eq(serial_read(p, buf, sizeof buf, 0), SERIAL_ERR_GONE);
	cr_assert_eq(serial_write_all(p, "x", 1, GUARD_MS), SERIAL_ERR_GONE, "%s", serial_last_error(p));
	assert_contains(serial_last_error(p), "write: device gone (Input/output error)");
	cr_assert_eq(serial_drain(p), SERIAL_ERR_GONE, "%s", serial_last_error(p));
	cr_assert_eq(serial_flush(p, SERIAL_QUEUE_BOTH), SERIAL_ERR_GONE, "%s", serial_last_error(p));

	serial_close(p);
	pty_close(&t);
}

/* With "wait forever" a missed hang-up would hang; the Criterion timeout
 * turns that into a failure. */
Test(serial, gone_ends_an_endless_wait, .timeout = 20)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);
	pty_close_master(&t);
	char buf[16];
	cr_assert_eq(serial_read(p, buf, sizeof buf, -1), SERIAL_ERR_GONE, "%s", serial_last_error(p));
	serial_close(p);
	pty_close(&t);
}

static void *close_master_soon(void *arg)
{
	struct pty *t = arg;
	struct timespec pause = { .tv_nsec = 100 * 1000000L };
	nanosleep(&pause, NULL);
	close(t->master);
	return NULL;
}

/* The hang-up (most likely) arrives while the read sleeps in poll(). */
Test(serial, gone_while_waiting, .timeout = 20)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, close_master_soon, &t), 0);
	char buf[16];
	ssize_t rc = serial_read(p, buf, sizeof buf, -1);
	pthread_join(th, NULL);
	t.master = -1;
	cr_assert_eq(rc, SERIAL_ERR_GONE, "%s", serial_last_error(p));
	serial_close(p);
	pty_close(&t);
}

Test(serial, write_all_times_out_with_progress_when_nobody_reads)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);

	size_t n = 1 << 20;
	char *big = calloc(1, n);
	cr_assert_not_null(big);
	cr_assert_eq(serial_write_all(p, big, n, 200), SERIAL_ERR_TIMEOUT, "%s", serial_last_error(p));
	assert_contains(serial_last_error(p), "write: timed out");
	assert_contains(serial_last_error(p), "of 1048576 bytes written");
	free(big);

	serial_close(p);
	pty_close(&t);
}

Test(serial, drain_flush_and_fd)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);

	cr_assert_eq(serial_write_all(p, "abc", 3, GUARD_MS), SERIAL_OK);
	cr_assert_eq(serial_drain(p), SERIAL_OK, "%s", serial_last_error(p));
	char got[3];
	master_read(&t, got, 3);

	/* Stale input sits in the queue (the fd says readable), flush drops it. */
	master_write(&t, "stale", 5);
	struct pollfd pfd = { .fd = serial_fd(p), .events = POLLIN };
	cr_assert_geq(pfd.fd, 0);
	cr_assert_eq(poll(&pfd, 1, GUARD_MS), 1, "serial_fd never became readable");
	cr_assert_eq(serial_flush(p, SERIAL_QUEUE_INPUT), SERIAL_OK, "%s", serial_last_error(p));
	char buf[8];
	cr_assert_eq(serial_read(p, buf, sizeof buf, 0), SERIAL_ERR_TIMEOUT);

	cr_assert_eq(serial_flush(p, SERIAL_QUEUE_OUTPUT), SERIAL_OK);
	cr_assert_eq(serial_flush(p, SERIAL_QUEUE_BOTH), SERIAL_OK);
	cr_assert_eq(serial_flush(p, (enum serial_queue)7), SERIAL_ERR_ARG);
	assert_contains(serial_last_error(p), "flush");

	serial_close(p);
	pty_close(&t);
}

/* ---- backend choice ---------------------------------------------------- */

Test(serial, forced_libserialport_on_a_pty_fails_clearly)
{
	struct pty t;
	pty_open(&t);
	static char sentinel;
	serial_port *p = (serial_port *)&sentinel; /* serial_open must reset it */
	cr_assert_eq(serial_open(t.slave, NULL, SERIAL_BACKEND_LIBSERIALPORT, &p), SERIAL_ERR_OPEN);
	cr_assert_null(p);
	const char *msg = serial_open_error();
	assert_contains(msg, t.slave);
	assert_contains(msg, "open via libserialport: Device not found");
	assert_contains(msg, "cannot open a pty; use the termios backend");
	pty_close(&t);
}

Test(serial, auto_falls_back_to_termios_on_a_pty)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_AUTO);
	cr_assert_str_eq(serial_backend_name(p), "termios");
	char want[128];
	snprintf(want, sizeof want, "%s (termios, 115200 8N1)", t.slave);
	cr_assert_str_eq(serial_describe(p), want);
	cr_assert_str_eq(serial_last_error(p), "no error");

	master_write(&t, "hi", 2);
	char got[2];
	port_read(p, got, 2);
	cr_assert_eq(memcmp(got, "hi", 2), 0);
	serial_close(p);
	pty_close(&t);
}

Test(serial, describe_shows_the_frame)
{
	struct pty t;
	pty_open(&t);
	struct serial_config cfg = { .baud = 9600, .data_bits = 7, .parity = SERIAL_PARITY_EVEN,
				     .stop_bits = 2, .flow = SERIAL_FLOW_NONE };
	serial_port *p = open_ok(t.slave, &cfg, SERIAL_BACKEND_TERMIOS);
	char want[128];
	snprintf(want, sizeof want, "%s (termios, 9600 7E2)", t.slave);
	cr_assert_str_eq(serial_describe(p), want);
	serial_close(p);

	/* 0 data bits and 0 stop bits mean the usual 8 and 1. */
	struct serial_config zero = { .baud = 57600, .parity = SERIAL_PARITY_ODD,
				      .flow = SERIAL_FLOW_XONXOFF };
	p = open_ok(t.slave, &zero, SERIAL_BACKEND_TERMIOS);
	snprintf(want, sizeof want, "%s (termios, 57600 8O1, xonxoff)", t.slave);
	cr_assert_str_eq(serial_describe(p), want);
	serial_close(p);
	pty_close(&t);
}

static void expect_config_error(const char *path, struct serial_config cfg, const char *part)
{
	serial_port *p = NULL;
	cr_assert_eq(serial_open(path, &cfg, SERIAL_BACKEND_TERMIOS, &p), SERIAL_ERR_ARG,
		     "config accepted, wanted an error with \"%s\"", part);
	cr_assert_null(p);
	assert_contains(serial_open_error(), path);
	assert_contains(serial_open_error(), part);
}

Test(serial, config_validation)
{
	struct pty t;
	pty_open(&t);
	const struct serial_config good = { .baud = 115200, .data_bits = 8, .stop_bits = 1 };
	struct serial_config c;

	c = good; c.baud = 0;
	expect_config_error(t.slave, c, "invalid baud rate 0");
	c = good; c.baud = -9600;
	expect_config_error(t.slave, c, "invalid baud rate -9600");
	c = good; c.data_bits = 9;
	expect_config_error(t.slave, c, "invalid data bits 9");
	c = good; c.data_bits = 4;
	expect_config_error(t.slave, c, "invalid data bits 4");
	c = good; c.stop_bits = 3;
	expect_config_error(t.slave, c, "invalid stop bits 3");
	c = good; c.parity = (enum serial_parity)9;
	expect_config_error(t.slave, c, "invalid parity 9");
	c = good; c.flow = (enum serial_flow)9;
	expect_config_error(t.slave, c, "invalid flow control 9");
	c = good; c.baud = 12345;
	expect_config_error(t.slave, c, "baud rate 12345 not supported by the termios backend");

	serial_port *p = NULL;
	cr_assert_eq(serial_open(t.slave, NULL, (enum serial_backend)9, &p), SERIAL_ERR_ARG);
	assert_contains(serial_open_error(), "invalid backend 9");
	cr_assert_eq(serial_open(NULL, NULL, SERIAL_BACKEND_AUTO, &p), SERIAL_ERR_ARG);
	cr_assert_eq(serial_open("", NULL, SERIAL_BACKEND_AUTO, &p), SERIAL_ERR_ARG);
	cr_assert_eq(serial_open(t.slave, NULL, SERIAL_BACKEND_AUTO, NULL), SERIAL_ERR_ARG);
	pty_close(&t);
}

Test(serial, missing_and_non_tty_paths)
{
	struct tmpdir d;
	tmpdir_make(&d);
	char missing[128], plain[128];
	snprintf(missing, sizeof missing, "%s/ttyUSB9", d.path);
	snprintf(plain, sizeof plain, "%s/notatty", d.path);
	FILE *f = fopen(plain, "w");
	cr_assert_not_null(f);
	fclose(f);

	serial_port *p = NULL;
	cr_assert_eq(serial_open(missing, NULL, SERIAL_BACKEND_TERMIOS, &p), SERIAL_ERR_OPEN);
	assert_contains(serial_open_error(), missing);
	assert_contains(serial_open_error(), "open via termios: No such file or directory");

	/* AUTO tells both attempts. */
	cr_assert_eq(serial_open(missing, NULL, SERIAL_BACKEND_AUTO, &p), SERIAL_ERR_OPEN);
	assert_contains(serial_open_error(), "open via termios: No such file or directory");
	assert_contains(serial_open_error(), "open via libserialport: Device not found");

	cr_assert_eq(serial_open(plain, NULL, SERIAL_BACKEND_TERMIOS, &p), SERIAL_ERR_OPEN);
	assert_contains(serial_open_error(), "not a terminal");
	cr_assert_eq(serial_open(plain, NULL, SERIAL_BACKEND_LIBSERIALPORT, &p), SERIAL_ERR_OPEN);
	assert_contains(serial_open_error(), "no /sys/class/tty entry");
	cr_assert_null(p);

	const char *names[] = { "notatty", NULL };
	tmpdir_remove(&d, names);
}

Test(serial, list_never_shows_a_pty)
{
	struct pty t;
	pty_open(&t);
	struct serial_port_info *ports = NULL;
	size_t n = 99;
	cr_assert_eq(serial_list(&ports, &n), SERIAL_OK, "%s", serial_open_error());
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_neq(ports[i].path, t.slave);
		cr_assert_neq(ports[i].path[0], '\0');
		bool usb = strcmp(ports[i].transport, "usb") == 0;
		if (!usb)
			cr_assert(ports[i].usb_vid == -1 && ports[i].usb_bus == -1, "%s: USB ids on a %s port",
				  ports[i].path, ports[i].transport);
	}
	free(ports);
	cr_assert_eq(serial_list(NULL, &n), SERIAL_ERR_ARG);
	pty_close(&t);
}

struct open_race {
	pthread_barrier_t *barrier;
	char path[64];
	bool own_message;
};

static void *fail_open_in_thread(void *arg)
{
	struct open_race *r = arg;
	serial_port *p = NULL;
	serial_open(r->path, NULL, SERIAL_BACKEND_TERMIOS, &p);
	/* Both threads have failed before either reads its message. */
	pthread_barrier_wait(r->barrier);
	r->own_message = strstr(serial_open_error(), r->path) != NULL;
	return NULL;
}

Test(serial, open_error_is_per_thread)
{
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, 2);
	struct open_race a = { .barrier = &barrier, .path = "/nonexistent/trackrig-a" };
	struct open_race b = { .barrier = &barrier, .path = "/nonexistent/trackrig-b" };
	pthread_t ta, tb;
	cr_assert_eq(pthread_create(&ta, NULL, fail_open_in_thread, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, fail_open_in_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&barrier);
	cr_assert(a.own_message && b.own_message, "a thread saw the other's open error");
}

Test(serial, bad_arguments)
{
	struct pty t;
	pty_open(&t);
	serial_port *p = open_ok(t.slave, NULL, SERIAL_BACKEND_TERMIOS);
	char buf[4];
	cr_assert_eq(serial_read(NULL, buf, sizeof buf, 0), SERIAL_ERR_ARG);
	cr_assert_eq(serial_read(p, buf, 0, 0), SERIAL_ERR_ARG);
	cr_assert_eq(serial_read(p, NULL, 4, 0), SERIAL_ERR_ARG);
	cr_assert_eq(serial_read(p, buf, sizeof buf, -2), SERIAL_ERR_ARG);
	assert_contains(serial_last_error(p), "read: invalid argument");
	cr_assert_eq(serial_write_all(p, NULL, 0, 0), SERIAL_OK);
	cr_assert_eq(serial_write_all(p, NULL, 1, 0), SERIAL_ERR_ARG);
	cr_assert_eq(serial_drain(NULL), SERIAL_ERR_ARG);
	cr_assert_eq(serial_fd(NULL), -1);
	serial_close(NULL);
	serial_close(p);

	int codes[] = { SERIAL_OK, SERIAL_ERR_ARG, SERIAL_ERR_OPEN, SERIAL_ERR_TIMEOUT,
			SERIAL_ERR_GONE, SERIAL_ERR_IO, 42 };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		for (size_t j = i + 1; j < sizeof codes / sizeof codes[0]; j++)
			cr_assert_str_neq(serial_strerror(codes[i]), serial_strerror(codes[j]));
	cr_assert_str_eq(serial_strerror(SERIAL_ERR_GONE), "device gone");
	cr_assert_str_eq(serial_strerror(SERIAL_ERR_TIMEOUT), "timeout");
	pty_close(&t);
}

/* ---- libserialport backend, through serial_peer ------------------------ */

struct peer {
	pid_t pid;
	int out;          /* its stdout */
	int in;           /* its stdin */
	char buf[2048];
	size_t len;
	char line[1024];
};

/* An absolute path from $VAR/NAME (NAME may be NULL), or a test failure
 * that says what to build. */
static void env_path(const char *var, const char *name, char out[PATH_MAX])
{
	const char *dir = getenv(var);
	cr_assert(dir && *dir, "$%s is not set (make test sets it)", var);
	char joined[PATH_MAX];
	snprintf(joined, sizeof joined, name ? "%s/%s" : "%s", dir, name ? name : "");
	cr_assert_not_null(realpath(joined, out), "%s: %s (build it; see tests/tools/serial_peer.c)",
			   joined, strerror(errno));
}

struct peer_env {
	bool shim;
	bool debug;
	const char *stderr_path; /* a file to create, or NULL: inherit */
	bool stderr_full;        /* stderr on /dev/full: every write fails */
	bool stderr_closed;      /* started with no fd 2 at all */
};

/* The environment for the child, built before fork so that the child only
 * calls async-signal-safe functions. */
static char **peer_environ(const struct peer_env *pe, const char *shim)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 4, sizeof *env);
	cr_assert_not_null(env);
	size_t k = 0;
	const char *asan = "";
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
		    strncmp(environ[i], "LIBSERIALPORT_DEBUG=", 20) == 0)
			continue;
		if (strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0) {
			asan = environ[i] + 13;
			continue;
		}
		env[k++] = strdup(environ[i]);
	}
	/* The shim comes before the ASan runtime in the library list, which
	 * ASan refuses unless told not to check. */
	char *a = NULL;
	cr_assert_geq(asprintf(&a, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", asan, *asan ? ":" : ""), 0);
	env[k++] = a;
	if (pe->shim) {
		char *l = NULL;
		cr_assert_geq(asprintf(&l, "LD_PRELOAD=%s", shim), 0);
		env[k++] = l;
	}
	if (pe->debug)
		env[k++] = strdup("LIBSERIALPORT_DEBUG=1");
	env[k] = NULL;
	return env;
}

static void free_environ(char **env)
{
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}

static void peer_start(struct peer *pr, const struct peer_env *pe, char *const argv[])
{
	char exe[PATH_MAX], shim[PATH_MAX] = "";
	env_path("TRACKRIG_BIN", "serial_peer", exe);
	if (pe->shim)
		env_path("TRACKRIG_SHIM", NULL, shim);
	char **env = peer_environ(pe, shim);

	int out[2], in[2];
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	int err_fd = -1;
	if (pe->stderr_path) {
		err_fd = open(pe->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		cr_assert_geq(err_fd, 0, "%s: %s", pe->stderr_path, strerror(errno));
	} else if (pe->stderr_full) {
		err_fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
		cr_assert_geq(err_fd, 0, "/dev/full: %s", strerror(errno));
	}

	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Dies with the test, even when the test crashes. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(in[0], STDIN_FILENO) < 0)
			_exit(127);
		if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
			_exit(127);
		if (pe->stderr_closed)
			close(STDERR_FILENO);
		execve(exe, argv, env);
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	if (err_fd >= 0)
		close(err_fd);
	free_environ(env);
	pr->pid = pid;
	pr->out = out[0];
	pr->in = in[1];
	pr->len = 0;
}

/* Next line of the peer's stdout, or NULL at its end. */
static const char *peer_line(struct peer *pr)
{
	for (;;) {
		char *nl = memchr(pr->buf, '\n', pr->len);
		if (nl) {
			size_t n = (size_t)(nl - pr->buf);
			snprintf(pr->line, sizeof pr->line, "%.*s", (int)n, pr->buf);
			pr->len -= n + 1;
			memmove(pr->buf, nl + 1, pr->len);
			return pr->line;
		}
		cr_assert_lt(pr->len, sizeof pr->buf, "serial_peer line too long");
		struct pollfd pfd = { .fd = pr->out, .events = POLLIN };
		int r = poll(&pfd, 1, GUARD_MS);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_gt(r, 0, "serial_peer said nothing");
		ssize_t rd = read(pr->out, pr->buf + pr->len, sizeof pr->buf - pr->len);
		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0)
			return NULL;
		pr->len += (size_t)rd;
	}
}

static void peer_expect_prefix(struct peer *pr, const char *prefix)
{
	const char *line = peer_line(pr);
	cr_assert(line && strncmp(line, prefix, strlen(prefix)) == 0,
		  "serial_peer: expected \"%s...\", got \"%s\"", prefix, line ? line : "(end)");
}

/* Exit code of the peer; kills it if it outlives the guard. */
static int peer_wait(struct peer *pr)
{
	int status = 0;
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pr->pid, &status, WNOHANG);
		if (r == pr->pid)
			break;
		if (r < 0 && errno != EINTR)
			cr_assert_fail("waitpid: %s", strerror(errno));
		if (waited >= GUARD_MS) {
			kill(pr->pid, SIGKILL);
			waitpid(pr->pid, &status, 0);
			cr_assert_fail("serial_peer did not exit");
		}
		struct timespec tick = { .tv_nsec = 10 * 1000000L };
		nanosleep(&tick, NULL);
	}
	close(pr->out);
	close(pr->in);
	cr_assert(WIFEXITED(status), "serial_peer died (status %#x)", status);
	return WEXITSTATUS(status);
}

/* The port libserialport will accept for a pty: it looks ports up as
 * /sys/class/tty/<path minus "/dev/">, so "/dev/../../../tmp/D/dut0" leads
 * it (through /sys/class/tty/../../..) to the symlink D/dut0 -> /dev/pts/N. */
struct sp_pty {
	struct pty t;
	struct tmpdir d;
	char path[160];
};

static void sp_pty_open(struct sp_pty *s)
{
	pty_open(&s->t);
	tmpdir_make(&s->d);
	char link[128];
	snprintf(link, sizeof link, "%s/dut0", s->d.path);
	cr_assert_eq(symlink(s->t.slave, link), 0, "symlink: %s", strerror(errno));
	snprintf(s->path, sizeof s->path, "/dev/../../..%s", link);
}

static void sp_pty_close(struct sp_pty *s)
{
	pty_close(&s->t);
	const char *names[] = { "dut0", "stderr.txt", NULL };
	tmpdir_remove(&s->d, names);
}

Test(serial_sp, libserialport_does_the_io_and_sees_the_device_go, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "libserialport", s.path, "10000", "recv", "send=pong", "recv", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true }, argv);

	char want[256];
	snprintf(want, sizeof want, "open libserialport %s (libserialport, 115200 8N1)", s.path);
	peer_expect_prefix(&pr, want);

	master_write(&s.t, "ping\n", 5);
	peer_expect_prefix(&pr, "recv ping");
	peer_expect_prefix(&pr, "sent 5");
	char got[5];
	master_read(&s.t, got, 5);
	cr_assert_eq(memcmp(got, "pong\n", 5), 0);

	/* The simulator dies: the peer's second recv must say so at once,
	 * not wait 10 s and call it a timeout. */
	pty_close_master(&s.t);
	const char *line = peer_line(&pr);
	cr_assert_not_null(line);
	assert_contains(line, "error device gone: ");
	assert_contains(line, s.path);
	assert_contains(line, ": read: device gone");
	cr_assert_eq(peer_wait(&pr), 10 - SERIAL_ERR_GONE);
	sp_pty_close(&s);
}

Test(serial_sp, every_byte_value_passes_through_libserialport, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "libserialport", s.path, "10000", "echo=256", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true }, argv);
	peer_expect_prefix(&pr, "open libserialport ");

	unsigned char all[256], got[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	master_write(&s.t, all, sizeof all);
	master_read(&s.t, got, sizeof got);
	cr_assert_eq(memcmp(all, got, sizeof all), 0, "bytes altered on the way through libserialport");
	peer_expect_prefix(&pr, "echo 256");
	cr_assert_eq(peer_wait(&pr), 0);
	sp_pty_close(&s);
}

Test(serial_sp, without_the_shim_libserialport_refuses_the_pty, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "libserialport", s.path, "1000", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = false }, argv);
	const char *line = peer_line(&pr);
	cr_assert_not_null(line);
	assert_contains(line, "error open failed: ");
	assert_contains(line, "open via libserialport: Inappropriate ioctl for device");
	assert_contains(line, "cannot open a pty");
	cr_assert_eq(peer_wait(&pr), 10 - SERIAL_ERR_OPEN);
	sp_pty_close(&s);
}

Test(serial_sp, auto_prefers_libserialport_when_it_opens, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "auto", s.path, "10000", "send=hi", "drain", "pause", "flush", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true }, argv);
	peer_expect_prefix(&pr, "open libserialport ");
	peer_expect_prefix(&pr, "sent 3");
	peer_expect_prefix(&pr, "drained");
	/* Read before the peer flushes: a pty has no wire, so "drained" bytes
	 * wait in the kernel for the master, and an output flush on the slave
	 * discards them there. */
	char got[3];
	master_read(&s.t, got, 3);
	cr_assert_eq(memcmp(got, "hi\n", 3), 0);
	cr_assert_eq(write(pr.in, "go\n", 3), 3);
	peer_expect_prefix(&pr, "resumed");
	peer_expect_prefix(&pr, "flushed");
	cr_assert_eq(peer_wait(&pr), 0);
	sp_pty_close(&s);
}

/* Here libserialport finds the port but sp_open fails (TIOCMGET): AUTO must
 * fall back at that stage too, not only when the lookup fails. */
Test(serial_sp, auto_falls_back_when_sp_open_refuses, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "auto", s.path, "10000", "send=hi", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = false }, argv);
	peer_expect_prefix(&pr, "open termios ");
	peer_expect_prefix(&pr, "sent 3");
	char got[3];
	master_read(&s.t, got, 3);
	cr_assert_eq(memcmp(got, "hi\n", 3), 0);
	cr_assert_eq(peer_wait(&pr), 0);
	sp_pty_close(&s);
}

Test(serial_sp, debug_env_traces_every_call_to_stderr, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char err_path[PATH_MAX];
	snprintf(err_path, sizeof err_path, "%s/stderr.txt", s.d.path);
	char *argv[] = { "serial_peer", "libserialport", s.path, "10000", "send=hi", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true, .debug = true, .stderr_path = err_path }, argv);
	peer_expect_prefix(&pr, "open libserialport ");
	peer_expect_prefix(&pr, "sent 3");
	char got[3];
	master_read(&s.t, got, 3);
	cr_assert_eq(peer_wait(&pr), 0);

	FILE *f = fopen(err_path, "r");
	cr_assert_not_null(f);
	char text[1 << 14] = { 0 };
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	cr_assert_gt(n, 0, "LIBSERIALPORT_DEBUG=1 printed nothing");
	assert_contains(text, "sp: sp_open(");
	assert_contains(text, "sp: sp_blocking_write(");
	sp_pty_close(&s);
}

/* With LIBSERIALPORT_DEBUG=1 libserialport writes its trace between the
 * failed write() and our sp_last_error_code(); to a full stderr that turns
 * EIO into ENOSPC. The device must still be reported gone. */
Test(serial_sp, gone_survives_debug_trace_clobbering_errno, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "libserialport", s.path, "10000", "pause", "send=late", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true, .debug = true, .stderr_full = true }, argv);
	peer_expect_prefix(&pr, "open libserialport ");

	pty_close_master(&s.t);
	cr_assert_eq(write(pr.in, "go\n", 3), 3);
	peer_expect_prefix(&pr, "resumed");
	const char *line = peer_line(&pr);
	cr_assert_not_null(line);
	assert_contains(line, "error device gone: ");
	assert_contains(line, ": write: device gone");
	cr_assert_eq(peer_wait(&pr), 10 - SERIAL_ERR_GONE);
	sp_pty_close(&s);
}

/* A program started with stderr closed: the port would land on fd 2 and the
 * program's diagnostics (and with LIBSERIALPORT_DEBUG libserialport's trace)
 * would go to the device. termios moves its
 * descriptor; libserialport's cannot be moved, so it is refused and AUTO
 * falls back. The device must see exactly what was sent. */
Test(serial_sp, closed_stderr_never_leaks_onto_the_line, .timeout = 60)
{
	struct sp_pty s;
	sp_pty_open(&s);
	char *argv[] = { "serial_peer", "auto", s.path, "10000", "send=hi",
			 "note=this diagnostic must not reach the device", "drain", NULL };
	struct peer pr;
	peer_start(&pr, &(struct peer_env){ .shim = true, .stderr_closed = true }, argv);
	peer_expect_prefix(&pr, "open termios ");
	peer_expect_prefix(&pr, "sent 3");
	peer_expect_prefix(&pr, "noted");
	peer_expect_prefix(&pr, "drained");
	cr_assert_eq(peer_wait(&pr), 0);
	char got[3];
	master_read(&s.t, got, 3);
	cr_assert_eq(memcmp(got, "hi\n", 3), 0);
	struct pollfd pfd = { .fd = s.t.master, .events = POLLIN };
	if (poll(&pfd, 1, 0) > 0) {
		char extra[128];
		ssize_t n = read(s.t.master, extra, sizeof extra);
		cr_assert_fail("more than \"hi\\n\" reached the device: %.*s", (int)(n > 0 ? n : 0), extra);
	}

	char *forced[] = { "serial_peer", "libserialport", s.path, "10000", NULL };
	peer_start(&pr, &(struct peer_env){ .shim = true, .stderr_closed = true }, forced);
	const char *line = peer_line(&pr);
	cr_assert_not_null(line);
	assert_contains(line, "open via libserialport: the port got descriptor 2");
	cr_assert_eq(peer_wait(&pr), 10 - SERIAL_ERR_OPEN);
	sp_pty_close(&s);
}
