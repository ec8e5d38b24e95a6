/*
 * gnss.c - a private gpsd and a libgps watcher (contract in gnss.h).
 *
 * One mutex guards the device table and the daemon's state; the watcher
 * thread is the only user of the libgps handle, and after gnss_start() the
 * only one that reaps gpsd, until gnss_stop() has joined it.
 */
#include "gnss.h"

#include <gps.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TRIES 8            /* free ports tried when another process takes ours first */
#define WATCH_POLL_US 200000     /* how often the watcher looks at gpsd and the stop flag */
#define STOP_GRACE_MS 2000

_Static_assert(96 <= sizeof ((struct sockaddr_un *)0)->sun_path, "control socket path must fit sun_path");

struct gnss_daemon {
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* signalled on every reading and on gpsd's death */
	char gpsd[PATH_MAX];
	int start_timeout_ms;
	bool verbose;
	char dir[64];                /* private temp dir: control socket and gpsd's log */
	int dir_lock;                /* flock'ed fd on dir while it is ours: a sweep leaves it */
	int keep[2];                 /* pipe: its write end open only in this process (see keep_watch) */
	char ctl[96];                /* fits sun_path */
	char log[96];
	struct gnss_status st;
	int restarts_left;
	struct gnss_reading dev[GNSS_MAX_DEVICES];
	int n_dev;
	int64_t start_mark_ms;
	bool stopping;
	pthread_t watcher;
	bool watcher_running;
	char err[GNSS_TEXT_MAX];
};

static __thread char start_err[GNSS_TEXT_MAX];

int64_t gnss_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies SRC into DST of size N, cut to fit (callers check lengths first). */
static void copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
}

__attribute__((format(printf, 3, 4)))
static int fail(gnss_daemon *g, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(g ? g->err : start_err, GNSS_TEXT_MAX, fmt, ap);
	va_end(ap);
	if (g && g->verbose)
		fprintf(stderr, "gnss: %s\n", g->err);
	return code;
}

const char *gnss_start_error(void)
{
	return start_err;
}

const char *gnss_last_error(gnss_daemon *g)
{
	return g ? g->err : start_err;
}

const char *gnss_strerror(int err)
{
	switch (err) {
	case GNSS_OK: return "ok";
	case GNSS_ERR_ARG: return "bad argument";
	case GNSS_ERR_NO_GPSD: return "gpsd not found";
	case GNSS_ERR_START: return "gpsd did not start";
	case GNSS_ERR_DEVICE: return "gpsd cannot open the port";
	case GNSS_ERR_TIMEOUT: return "timeout";
	case GNSS_ERR_DIED: return "gpsd died";
	case GNSS_ERR_NO_NMEA: return "no valid NMEA";
	default: return "I/O error";
	}
}

/* ---- starting gpsd ---- */

/* A loopback port nobody holds right now. Another process may take it
 * before gpsd binds: the caller retries on "Address already in use". */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool tcp_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* The last line of gpsd's log, for error messages. */
static void log_tail(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f))
		if (line[0] != '\n')
			copy(buf, len, line);
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
}

static bool log_has(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "stopped (status 0x%x)", status);
}

/* In the gpsd child, just before exec: leaves behind a sentinel process that
 * kills gpsd when the rig is gone, however it died. A death signal cannot do
 * it: gpsd runs with real uid nobody and effective uid root (below), so its
 * exec is a privilege change and the kernel clears the death signal there.
 * The sentinel waits for end-of-file on WATCH, the read end of a pipe whose
 * write end only the rig holds (close-on-exec everywhere else): EOF means
 * the rig closed it (gnss_stop) or died. The sentinel itself dies with gpsd
 * (its parent), so a gpsd that ends normally leaves nothing behind. */
static void keep_watch(int watch)
{
	pid_t gpsd = getpid();
	if (watch < 0 || fork() != 0)
		return; /* gpsd (a failed fork leaves it unwatched, as before) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != gpsd)
		_exit(0);
	/* Only WATCH stays: any other write end held here would keep the pipe
	 * open after the rig died. */
	for (int fd = 0; fd < 3; fd++)
		if (fd != watch)
			close(fd);
#ifdef SYS_close_range
	if (watch > 3)
		syscall(SYS_close_range, 3u, (unsigned)watch - 1, 0u);
	syscall(SYS_close_range, (unsigned)watch + 1, ~0u, 0u);
#else
	for (int fd = 3; fd < 4096; fd++)
		if (fd != watch)
			close(fd);
#endif
	char c;
	while (read(watch, &c, 1) < 0 && errno == EINTR)
		;
	if (getppid() == gpsd) /* else gpsd is gone already and the pid may be another's */
		kill(gpsd, SIGKILL);
	_exit(0);
}

/* In the child: die with the rig that started us, log to G->log, exec. */
static void exec_gpsd(const gnss_daemon *g, int port, pid_t parent)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* gpsd whose real uid is 0 drops to user gpsd, group dialout, and
	 * cannot read a pty (root:tty 0620) any more. This gpsd is private,
	 * read-only (-b) and loopback-only: keep it root in effect by giving it
	 * a non-zero real uid (nobody), which gpsd takes as "not root". */
	if (getuid() == 0 && geteuid() == 0 && setresuid(65534, 0, 0) != 0)
		fprintf(stderr, "setresuid: %s\n", strerror(errno));
	/* Armed after the uid change (which clears it) for the moments
	 * before exec; the exec clears it again, hence keep_watch. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	keep_watch(g->keep[0]);
	int in = open("/dev/null", O_RDONLY);
	int out = open(g->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in >= 0)
		dup2(in, 0);
	if (out >= 0) {
		dup2(out, 1);
		dup2(out, 2);
	}
	char ports[16];
	snprintf(ports, sizeof ports, "%d", port);
	char *argv[] = { (char *)g->gpsd, "-N", "-n", "-b", "-S", ports, "-F", (char *)g->ctl, NULL };
	execv(g->gpsd, argv);
	fprintf(stderr, "exec %s: %s\n", g->gpsd, strerror(errno));
	_exit(127);
}

/* One attempt on one port. Returns GNSS_OK with st.pid/st.port set,
 * GNSS_ERR_TIMEOUT when the port was taken (retry), or another error. */
static int spawn_once(gnss_daemon *g, int port, int64_t deadline)
{
	unlink(g->ctl);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return fail(g, GNSS_ERR_IO, "gpsd: fork: %s", strerror(errno));
	if (pid == 0)
		exec_gpsd(g, port, parent);
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char how[96], tail[256];
			describe_exit(status, how, sizeof how);
			if (log_has(g->log, "Address already in use"))
				return fail(g, GNSS_ERR_TIMEOUT, "gpsd on port %d: address already in use", port);
			log_tail(g->log, tail, sizeof tail);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
				return fail(g, GNSS_ERR_NO_GPSD, "%s: cannot run (%s)", g->gpsd, tail);
			return fail(g, GNSS_ERR_START, "%s on port %d %s before accepting: %s", g->gpsd, port, how,
				    *tail ? tail : "(no message)");
		}
		struct stat sb;
		if (stat(g->ctl, &sb) == 0 && tcp_accepts(port)) {
			g->st.pid = pid;
			g->st.port = port;
			return GNSS_OK;
		}
		if (gnss_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return fail(g, GNSS_ERR_START, "%s on port %d: not accepting within %d ms", g->gpsd, port,
				    g->start_timeout_ms);
		}
		sleep_ms(20);
	}
}

static int spawn_gpsd(gnss_daemon *g)
{
	int64_t deadline = gnss_now_ms() + g->start_timeout_ms;
	int rc = GNSS_ERR_START;
	for (int i = 0; i < START_TRIES; i++) {
		int port = free_port();
		if (port < 0)
			return fail(g, GNSS_ERR_IO, "no free loopback port: %s", strerror(errno));
		rc = spawn_once(g, port, deadline);
		if (rc != GNSS_ERR_TIMEOUT)
			return rc;
	}
	return fail(g, GNSS_ERR_START, "%s: every port tried was taken (%d tries)", g->gpsd, START_TRIES);
}

/* ---- adding devices ---- */

/* Sends "+PATH\n" on gpsd's control socket; gpsd answers OK or ERROR. */
static int control_add(gnss_daemon *g, const char *path, int timeout_ms)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(g, GNSS_ERR_IO, "%s: control socket: %s", path, strerror(errno));
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, g->ctl, sizeof g->ctl);   /* NUL-terminated, shorter than sun_path */
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		return fail(g, GNSS_ERR_DIED, "%s: gpsd control socket %s: %s", path, g->ctl, strerror(e));
	}
	char cmd[GNSS_PATH_MAX + 4];
	int n = snprintf(cmd, sizeof cmd, "+%s\n", path);
	if (write(fd, cmd, (size_t)n) != n) {
		int e = errno;
		close(fd);
		return fail(g, GNSS_ERR_IO, "%s: writing to gpsd's control socket: %s", path, strerror(e));
	}
	char ans[64] = "";
	size_t got = 0;
	int64_t deadline = gnss_now_ms() + timeout_ms;
	while (got < sizeof ans - 1 && !memchr(ans, '\n', got)) {
		int left = (int)(deadline - gnss_now_ms());
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, ans + got, sizeof ans - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		ans[got] = '\0';
	}
	close(fd);
	if (strncmp(ans, "OK", 2) == 0)
		return GNSS_OK;
	if (strncmp(ans, "ERROR", 5) == 0)
		return fail(g, GNSS_ERR_DEVICE, "%s: gpsd cannot open the port (does it exist, is it readable?)", path);
	return fail(g, GNSS_ERR_TIMEOUT, "%s: no answer from gpsd's control socket within %d ms", path, timeout_ms);
}

static struct gnss_reading *find_dev(gnss_daemon *g, const char *path)
{
	for (int i = 0; i < g->n_dev; i++)
		if (strcmp(g->dev[i].device, path) == 0)
			return &g->dev[i];
	return NULL;
}

static void reading_clear(struct gnss_reading *r, const char *path)
{
	memset(r, 0, sizeof *r);
	copy(r->device, sizeof r->device, path);
	r->lat = r->lon = r->alt = r->speed = r->fix_time = r->hdop = r->pdop = NAN;
	r->satellites_used = r->satellites_visible = -1;
	r->last_report_ms = r->last_fix_ms = r->first_fix_ms = GNSS_NEVER;
	r->tpv_epoch_ms = r->sky_epoch_ms = GNSS_NEVER;
	r->ttff_ms = -1;
}

/* PATH made absolute without resolving links, as gpsd will report it. */
static int absolute(gnss_daemon *g, const char *path, char *abs, size_t len)
{
	if (path[0] == '/') {
		snprintf(abs, len, "%s", path);
		return GNSS_OK;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return fail(g, GNSS_ERR_IO, "%s: getcwd: %s", path, strerror(errno));
	if ((size_t)snprintf(abs, len, "%s/%s", cwd, path) >= len)
		return fail(g, GNSS_ERR_ARG, "%s: path too long", path);
	return GNSS_OK;
}

int gnss_add_device(gnss_daemon *g, const char *path, int timeout_ms)
{
	if (!g || !path || !*path)
		return GNSS_ERR_ARG;
	char abs[PATH_MAX];
	if (absolute(g, path, abs, sizeof abs))
		return g->st.dead ? GNSS_ERR_DIED : GNSS_ERR_ARG;
	if (strlen(abs) >= GNSS_PATH_MAX)
		return fail(g, GNSS_ERR_ARG, "%s: path longer than gpsd accepts (%d)", abs, GNSS_PATH_MAX - 1);
	if (access(abs, R_OK) != 0)
		return fail(g, GNSS_ERR_DEVICE, "%s: %s", abs, strerror(errno));
	pthread_mutex_lock(&g->mu);
	int rc = GNSS_OK;
	if (g->st.dead)
		rc = fail(g, GNSS_ERR_DIED, "%s: gpsd is dead (%s)", abs, g->st.event);
	else if (find_dev(g, abs))
		rc = GNSS_OK;
	else if (g->n_dev >= GNSS_MAX_DEVICES)
		rc = fail(g, GNSS_ERR_ARG, "%s: more than %d devices", abs, GNSS_MAX_DEVICES);
	else if ((rc = control_add(g, abs, timeout_ms)) == GNSS_OK)
		reading_clear(&g->dev[g->n_dev++], abs);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* ---- the watcher ---- */

static bool msg_is(const char *msg, const char *cls)
{
	char key[32];
	snprintf(key, sizeof key, "\"class\":\"%s\"", cls);
	return strstr(msg, key) != NULL;
}

static void take_tpv(gnss_daemon *g, struct gnss_reading *r, const struct gps_data_t *d, int64_t now)
{
	r->tpv_count++;
	r->last_report_ms = now;
	r->mode = d->fix.mode;
	if (d->set & TIME_SET)   /* a receiver without a fix still says its time */
		r->tpv_epoch_ms = (int64_t)d->fix.time.tv_sec * 1000 + d->fix.time.tv_nsec / 1000000;
	if (d->fix.mode < MODE_2D)
		return;
	r->lat = d->fix.latitude;
	r->lon = d->fix.longitude;
	if (d->fix.mode == MODE_3D)
		r->alt = isfinite(d->fix.altMSL) ? d->fix.altMSL : d->fix.altHAE;
	r->speed = d->fix.speed;
	r->fix_time = (double)d->fix.time.tv_sec + d->fix.time.tv_nsec / 1e9;
	r->last_fix_ms = now;
	if (r->first_fix_ms == GNSS_NEVER && g->start_mark_ms != GNSS_NEVER) {
		r->first_fix_ms = now;
		r->ttff_ms = now - g->start_mark_ms;
	}
}

/* gpsd sends SKY from GSA alone too (DOPs, no satellite list): only a list
 * changes the counts. */
static void take_sky(struct gnss_reading *r, const struct gps_data_t *d, const char *msg, int64_t now)
{
	r->sky_count++;
	r->last_report_ms = now;
	if (d->skyview_time.tv_sec > 0)
		r->sky_epoch_ms = (int64_t)d->skyview_time.tv_sec * 1000 + d->skyview_time.tv_nsec / 1000000;
	if (strstr(msg, "\"satellites\":")) {
		r->satellites_used = d->satellites_used;
		r->satellites_visible = d->satellites_visible;
	}
	if (strstr(msg, "\"hdop\":"))
		r->hdop = d->dop.hdop;
	if (strstr(msg, "\"pdop\":"))
		r->pdop = d->dop.pdop;
}

static void take_message(gnss_daemon *g, const struct gps_data_t *d, const char *msg)
{
	bool tpv = msg_is(msg, "TPV"), sky = msg_is(msg, "SKY");
	if (!tpv && !sky)
		return;
	int64_t now = gnss_now_ms();
	pthread_mutex_lock(&g->mu);
	struct gnss_reading *r = find_dev(g, d->dev.path);
	if (r && tpv)
		take_tpv(g, r, d, now);
	else if (r)
		take_sky(r, d, msg, now);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* libgps keeps static buffers (its strlcat into a global races under
 * ThreadSanitizer when two watchers read at once): one call into it at a
 * time in this process, whatever the number of gpsds. */
static pthread_mutex_t libgps_mu = PTHREAD_MUTEX_INITIALIZER;

static int lib_read(struct gps_data_t *d, char *msg, size_t len)
{
	pthread_mutex_lock(&libgps_mu);
	int rc = gps_read(d, msg, (int)len);
	pthread_mutex_unlock(&libgps_mu);
	return rc;
}

static void lib_close(struct gps_data_t *d)
{
	pthread_mutex_lock(&libgps_mu);
	gps_close(d);
	pthread_mutex_unlock(&libgps_mu);
}

static int watch_open(gnss_daemon *g, struct gps_data_t *d)
{
	char port[16];
	snprintf(port, sizeof port, "%d", g->st.port);
	memset(d, 0, sizeof *d);
	pthread_mutex_lock(&libgps_mu);
	int rc = GNSS_OK;
	if (gps_open("127.0.0.1", port, d) != 0) {
		rc = fail(g, GNSS_ERR_START, "libgps: gps_open 127.0.0.1:%s: %s", port, gps_errstr(errno));
	} else if (gps_stream(d, WATCH_ENABLE | WATCH_JSON, NULL) != 0) {
		rc = fail(g, GNSS_ERR_IO, "libgps: gps_stream on 127.0.0.1:%s: %s", port, gps_errstr(errno));
		gps_close(d);
	}
	pthread_mutex_unlock(&libgps_mu);
	return rc;
}

/* gpsd is gone (or its socket is): reap it, then restart it once per
 * allowance and re-add every device. Called and returns with the lock held.
 * Returns true when a new gpsd runs. */
static bool after_death(gnss_daemon *g)
{
	int status = 0;
	pid_t old = g->st.pid;
	int old_port = g->st.port;
	/* The socket closes a moment before the process is gone; one that
	 * stays after a second is hung and not to be trusted. */
	int64_t until = gnss_now_ms() + 1000;
	while (waitpid(old, &status, WNOHANG) == 0) {
		if (gnss_now_ms() > until) {
			kill(old, SIGKILL);
			waitpid(old, &status, 0);
			break;
		}
		sleep_ms(10);
	}
	char how[96];
	describe_exit(status, how, sizeof how);
	g->st.deaths++;
	g->st.pid = 0;
	snprintf(g->st.event, sizeof g->st.event, "gpsd (pid %d, port %d) %s mid-run", (int)old, old_port, how);
	if (g->restarts_left <= 0 || g->stopping) {
		g->st.dead = true;
		fail(g, GNSS_ERR_DIED, "%s", g->st.event);
		return false;
	}
	g->restarts_left--;
	if (spawn_gpsd(g) != GNSS_OK) {
		size_t n = strlen(g->st.event);
		snprintf(g->st.event + n, sizeof g->st.event - n, "; restart failed: %.200s", g->err);
		g->st.dead = true;
		return false;
	}
	g->st.restarts++;
	for (int i = 0; i < g->n_dev; i++)
		if (control_add(g, g->dev[i].device, 2000) != GNSS_OK)
			fprintf(stderr, "gnss: after restart: %s\n", g->err);
	size_t n = strlen(g->st.event);
	snprintf(g->st.event + n, sizeof g->st.event - n, "; restarted as pid %d on port %d", (int)g->st.pid,
		 g->st.port);
	return true;
}

/* True once PID has exited; it stays unreaped for after_death(). */
static bool exited(pid_t pid)
{
	siginfo_t si = { 0 };
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static void *watch(void *arg)
{
	gnss_daemon *g = arg;
	struct gps_data_t d;
	char msg[8192];
	bool open = watch_open(g, &d) == GNSS_OK;
	for (;;) {
		pthread_mutex_lock(&g->mu);
		bool stop = g->stopping || g->st.dead;
		pthread_mutex_unlock(&g->mu);
		if (stop)
			break;
		bool lost = !open;
		if (open && gps_waiting(&d, WATCH_POLL_US)) {
			msg[0] = '\0';
			if (lib_read(&d, msg, sizeof msg) < 0)
				lost = true;
			else
				take_message(g, &d, msg);
		} else if (open && exited(g->st.pid)) {
			lost = true;
		}
		if (!lost)
			continue;
		if (open)
			lib_close(&d);
		open = false;
		pthread_mutex_lock(&g->mu);
		bool again = !g->stopping && after_death(g);
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		if (again)
			open = watch_open(g, &d) == GNSS_OK;
	}
	if (open)
		lib_close(&d);
	return NULL;
}

/* ---- the public face ---- */

int gnss_start(const struct gnss_options *opt, gnss_daemon **out)
{
	static const struct gnss_options defaults = { 0 };
	*out = NULL;
	start_err[0] = '\0';
	if (!opt)
		opt = &defaults;
	const char *prog = opt->gpsd ? opt->gpsd : GNSS_DEFAULT_GPSD;
	if (access(prog, X_OK) != 0)
		return fail(NULL, GNSS_ERR_NO_GPSD, "%s not found or not executable (%s): install gpsd (make deps)",
			    prog, strerror(errno));
	gnss_daemon *g = calloc(1, sizeof *g);
	if (!g)
		return fail(NULL, GNSS_ERR_IO, "out of memory");
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	snprintf(g->gpsd, sizeof g->gpsd, "%s", prog);
	g->start_timeout_ms = opt->start_timeout_ms > 0 ? opt->start_timeout_ms : 5000;
	g->restarts_left = opt->restarts;
	g->verbose = opt->verbose;
	g->start_mark_ms = GNSS_NEVER;
	/* The pid in the name lets the next rig remove the dir of a rig that
	 * was killed (trackrig-<what>-<pid>-XXXXXX, see rig/embedded.c). */
	snprintf(g->dir, sizeof g->dir, "/tmp/trackrig-gpsd-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(g->dir)) {
		fail(NULL, GNSS_ERR_IO, "mkdtemp %s: %s", g->dir, strerror(errno));
		free(g);
		return GNSS_ERR_IO;
	}
	/* Held until gnss_stop; the kernel drops it when this process dies,
	 * which is how a sweep knows the dir is left over. */
	g->dir_lock = open(g->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->dir_lock >= 0)
		flock(g->dir_lock, LOCK_EX | LOCK_NB);
	if (pipe2(g->keep, O_CLOEXEC) != 0)
		g->keep[0] = g->keep[1] = -1;
	snprintf(g->ctl, sizeof g->ctl, "%s/control", g->dir);
	snprintf(g->log, sizeof g->log, "%s/gpsd.log", g->dir);
	int rc = spawn_gpsd(g);
	if (rc == GNSS_OK) {
		if (pthread_create(&g->watcher, NULL, watch, g) == 0)
			g->watcher_running = true;
		else
			rc = fail(g, GNSS_ERR_IO, "watcher thread: %s", strerror(errno));
	}
	if (rc != GNSS_OK) {
		snprintf(start_err, sizeof start_err, "%s", g->err);
		gnss_stop(g);
		return rc;
	}
	*out = g;
	return GNSS_OK;
}

void gnss_mark_start(gnss_daemon *g)
{
	pthread_mutex_lock(&g->mu);
	g->start_mark_ms = gnss_now_ms();
	for (int i = 0; i < g->n_dev; i++) {
		g->dev[i].first_fix_ms = GNSS_NEVER;
		g->dev[i].ttff_ms = -1;
	}
	pthread_mutex_unlock(&g->mu);
}

bool gnss_has_device(gnss_daemon *g, const char *given)
{
	char path[PATH_MAX];
	if (given[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd) || (size_t)snprintf(path, sizeof path, "%s/%s", cwd, given) >= sizeof path)
			return false;
	} else {
		snprintf(path, sizeof path, "%s", given);
	}
	pthread_mutex_lock(&g->mu);
	bool found = find_dev(g, path) != NULL;
	pthread_mutex_unlock(&g->mu);
	return found;
}

int gnss_get(gnss_daemon *g, const char *given, struct gnss_reading *out)
{
	char path[PATH_MAX];
	if (absolute(g, given, path, sizeof path))
		return GNSS_ERR_ARG;
	pthread_mutex_lock(&g->mu);
	const struct gnss_reading *r = find_dev(g, path);
	if (r)
		*out = *r;
	pthread_mutex_unlock(&g->mu);
	return r ? GNSS_OK : fail(g, GNSS_ERR_ARG, "%s: not a device of this gpsd", path);
}

/* The reading R is as of EPOCH: its TPV is (and its SKY, when SKYs carry
 * a time). */
static bool reached(const struct gnss_reading *r, int64_t epoch)
{
	return r->tpv_epoch_ms != GNSS_NEVER && r->tpv_epoch_ms >= epoch &&
	       (r->sky_epoch_ms == GNSS_NEVER || r->sky_epoch_ms >= epoch);
}

int gnss_get_at(gnss_daemon *g, const char *given, int64_t epoch_ms, int wait_ms, struct gnss_reading *out)
{
	char path[PATH_MAX];
	if (absolute(g, given, path, sizeof path))
		return GNSS_ERR_ARG;
	int64_t deadline = gnss_now_ms() + wait_ms;
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = (long)(deadline % 1000) * 1000000L };
	pthread_mutex_lock(&g->mu);
	const struct gnss_reading *r = find_dev(g, path);
	while (r && !reached(r, epoch_ms) && !g->st.dead && gnss_now_ms() < deadline) {
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		r = find_dev(g, path);
	}
	int rc = !r ? GNSS_ERR_ARG : reached(r, epoch_ms) ? GNSS_OK : GNSS_ERR_TIMEOUT;
	if (r)
		*out = *r;
	pthread_mutex_unlock(&g->mu);
	if (!r)
		return fail(g, GNSS_ERR_ARG, "%s: not a device of this gpsd", path);
	return rc;
}

int gnss_wait_fix(gnss_daemon *g, const char *given, int min_mode, int64_t deadline_ms)
{
	char path[PATH_MAX];
	if (absolute(g, given, path, sizeof path))
		return GNSS_ERR_ARG;
	pthread_mutex_lock(&g->mu);
	int rc = GNSS_ERR_ARG;
	for (;;) {
		const struct gnss_reading *r = find_dev(g, path);
		if (!r) {
			rc = fail(g, GNSS_ERR_ARG, "%s: not a device of this gpsd", path);
			break;
		}
		if (r->tpv_count > 0 && r->mode >= min_mode) {
			rc = GNSS_OK;
			break;
		}
		if (g->st.dead) {
			rc = fail(g, GNSS_ERR_DIED, "%s: %s", path, g->st.event);
			break;
		}
		if (gnss_now_ms() >= deadline_ms) {
			if (r->tpv_count == 0 && r->sky_count == 0)
				rc = fail(g, GNSS_ERR_NO_NMEA, "%s: no valid NMEA from the port (gpsd decoded nothing)", path);
			else
				rc = fail(g, GNSS_ERR_TIMEOUT, "%s: no fix of mode %d (last mode %d)", path, min_mode, r->mode);
			break;
		}
		struct timespec ts = { .tv_sec = deadline_ms / 1000, .tv_nsec = (long)(deadline_ms % 1000) * 1000000L };
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

int gnss_status(gnss_daemon *g, struct gnss_status *out)
{
	pthread_mutex_lock(&g->mu);
	*out = g->st;
	pthread_mutex_unlock(&g->mu);
	return out->dead ? GNSS_ERR_DIED : GNSS_OK;
}

void gnss_stop(gnss_daemon *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stopping = true;
	pthread_mutex_unlock(&g->mu);
	if (g->watcher_running)
		pthread_join(g->watcher, NULL);
	if (g->st.pid > 0) {
		kill(g->st.pid, SIGTERM);
		int64_t until = gnss_now_ms() + STOP_GRACE_MS;
		while (waitpid(g->st.pid, NULL, WNOHANG) == 0) {
			if (gnss_now_ms() > until) {
				kill(g->st.pid, SIGKILL);
				waitpid(g->st.pid, NULL, 0);
				break;
			}
			sleep_ms(10);
		}
	}
	if (g->verbose) {
		char tail[256];
		log_tail(g->log, tail, sizeof tail);
		if (*tail)
			fprintf(stderr, "gnss: gpsd's last log line: %s\n", tail);
	}
	unlink(g->ctl);
	unlink(g->log);
	if (*g->dir)
		rmdir(g->dir);
	if (g->dir_lock > 0)
		close(g->dir_lock);
	/* gpsd is reaped: its sentinel died with it. */
	if (g->keep[0] > 0) {
		close(g->keep[0]);
		close(g->keep[1]);
	}
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
