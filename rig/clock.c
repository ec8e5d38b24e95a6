/* clock.c - wall and virtual time behind one interface (see clock.h). */
#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How often a waiting thread looks at its fd again in real time while the
 * virtual clock stands still (another slot is busy doing real I/O). */
#define POLL_SLICE_MS 2

#define MAX_WAITERS 256

struct waiter {
	bool used;
	int fd;           /* -1: a plain sleep */
	int64_t deadline;
};

struct rig_clock {
	bool virtual_;
	int64_t start_wall;    /* CLOCK_MONOTONIC ms at open (wall mode) */
	int64_t epoch_unix;    /* Unix ms of clock time 0 */
	int ctl;               /* control socket, -1 on the wall clock */
	pthread_mutex_t m;
	pthread_cond_t cv;
	int64_t now;           /* virtual time */
	int joined, waiting;
	bool advancing;
	bool aborted;
	bool failed;           /* the control socket failed: time can never move again */
	struct waiter w[MAX_WAITERS];
	char err[256];
	struct tracker_clock trk;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int trk_wait(void *ctx, int fd, int64_t deadline) { return clock_wait_fd(ctx, fd, deadline); }
static int64_t trk_now(void *ctx) { return clock_now(ctx); }

static rig_clock *alloc_clock(void)
{
	rig_clock *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->ctl = -1;
	c->start_wall = mono_ms();
	c->epoch_unix = unix_ms();
	pthread_mutex_init(&c->m, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->trk = (struct tracker_clock){ .now_ms = trk_now, .wait_readable = trk_wait, .ctx = c };
	return c;
}

int clock_open_real(rig_clock **out)
{
	*out = alloc_clock();
	return *out ? 0 : -1;
}

/* One request, one reply line on the control socket. */
static int ctl_request(rig_clock *c, const char *req, char *reply, size_t len)
{
	size_t n = strlen(req);
	if (write(c->ctl, req, n) != (ssize_t)n) {
		snprintf(c->err, sizeof c->err, "rack control socket: write: %s", strerror(errno));
		return -1;
	}
	size_t got = 0;
	while (got + 1 < len) {
		struct pollfd p = { .fd = c->ctl, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0) {
			snprintf(c->err, sizeof c->err, "rack control socket: no reply to '%.*s' within 10 s",
				 (int)strcspn(req, "\n"), req);
			return -1;
		}
		ssize_t r = read(c->ctl, reply + got, 1);
		if (r <= 0) {
			snprintf(c->err, sizeof c->err, "rack control socket: the rack went away");
			return -1;
		}
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	if (strncmp(reply, "ok", 2) != 0) {
		snprintf(c->err, sizeof c->err, "rack control socket: '%.*s' refused: %.150s",
			 (int)strcspn(req, "\n"), req, reply);
		return -1;
	}
	return 0;
}

static bool reply_value(const char *reply, const char *key, long long *out)
{
	char pat[32];
	snprintf(pat, sizeof pat, " %s=", key);
	const char *p = strstr(reply, pat);
	if (!p)
		return false;
	*out = strtoll(p + strlen(pat), NULL, 10);
	return true;
}

int clock_open_rack(const char *control_path, rig_clock **out, char *err, size_t errlen)
{
	*out = NULL;
	rig_clock *c = alloc_clock();
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(control_path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "%s: control socket path too long", control_path);
		clock_close(c);
		return -1;
	}
	strcpy(sa.sun_path, control_path);
	c->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->ctl < 0 || connect(c->ctl, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(err, errlen, "%s: cannot connect to the rack's control socket: %s", control_path, strerror(errno));
		clock_close(c);
		return -1;
	}
	char reply[256];
	long long epoch = 0, now = 0;
	if (ctl_request(c, "mode\n", reply, sizeof reply)) {
		snprintf(err, errlen, "%s", c->err);
		clock_close(c);
		return -1;
	}
	c->virtual_ = strstr(reply, "mode=virtual") != NULL;
	if (reply_value(reply, "epoch", &epoch))
		c->epoch_unix = epoch;
	if (c->virtual_) {
		if (ctl_request(c, "now\n", reply, sizeof reply) || !reply_value(reply, "now", &now)) {
			snprintf(err, errlen, "%s", *c->err ? c->err : "rack control socket: no time in 'now' reply");
			clock_close(c);
			return -1;
		}
		c->now = now;
	} else {
		close(c->ctl);
		c->ctl = -1;
	}
	*out = c;
	return 0;
}

int clock_open_for(const struct rack *rack, rig_clock **out, char *err, size_t errlen)
{
	if (*rack->control && clock_open_rack(rack->control, out, err, errlen) == 0)
		return 0;
	bool fell_back = *rack->control;
	if (clock_open_real(out) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return fell_back ? 1 : 0;
}

int clock_or_warn(const struct rack *rack, rig_clock **out, char *err, size_t errlen, const char *cmd)
{
	int rc = clock_open_for(rack, out, err, errlen);
	if (rc == 1)
		fprintf(stderr, "rig %s: %s; going on with the wall clock\n", cmd, err);
	return rc < 0 ? -1 : 0;
}

void clock_close(rig_clock *c)
{
	if (!c)
		return;
	if (c->ctl >= 0)
		close(c->ctl);
	pthread_mutex_destroy(&c->m);
	pthread_cond_destroy(&c->cv);
	free(c);
}

bool clock_is_virtual(const rig_clock *c) { return c->virtual_; }
const char *clock_error(rig_clock *c) { return c->err; }
const struct tracker_clock *clock_for_tracker(rig_clock *c) { return &c->trk; }

int64_t clock_now(rig_clock *c)
{
	if (!c->virtual_)
		return mono_ms() - c->start_wall;
	pthread_mutex_lock(&c->m);
	int64_t t = c->now;
	pthread_mutex_unlock(&c->m);
	return t;
}

int64_t clock_unix_ms(rig_clock *c, int64_t t) { return c->epoch_unix + t; }

const char *clock_iso(rig_clock *c, int64_t t, char *buf, size_t len)
{
	int64_t ms = clock_unix_ms(c, t);
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
	return buf;
}

void clock_join(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	c->joined++;
	pthread_mutex_unlock(&c->m);
}

void clock_leave(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	c->joined--;
	/* The ones left may all be waiting now: let one of them move time. */
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->m);
}

void clock_abort(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	c->aborted = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->m);
}

bool clock_aborted(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	bool a = c->aborted;
	pthread_mutex_unlock(&c->m);
	return a;
}

static bool readable(int fd, int timeout_ms)
{
	if (fd < 0)
		return false;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	/* A hang-up counts: the reader must learn that the device is gone. */
	return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* ---- wall clock ---- */

static int wall_wait(rig_clock *c, int fd, int64_t deadline)
{
	for (;;) {
		if (clock_aborted(c))
			return -1;
		int64_t left = deadline - clock_now(c);
		/* Short slices so an abort is seen promptly. */
		int slice = left <= 0 ? 0 : left > 100 ? 100 : (int)left;
		if (fd >= 0 && readable(fd, slice))
			return 1;
		if (fd < 0 && slice > 0) {
			struct timespec ts = { slice / 1000, (long)(slice % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (left <= 0)
			return 0;
	}
}

/* ---- virtual clock ---- */

static struct waiter *add_waiter(rig_clock *c, int fd, int64_t deadline)
{
	for (int i = 0; i < MAX_WAITERS; i++)
		if (!c->w[i].used) {
			c->w[i] = (struct waiter){ .used = true, .fd = fd, .deadline = deadline };
			return &c->w[i];
		}
	return NULL;
}

/* Called with the lock held by the thread that found everyone waiting. Moves
 * time to the earliest deadline or the rack's next event. Returns 0 when time
 * moved, 1 when it must not move yet (a waiter has input to take first), -1
 * on a control socket failure. */
static int advance(rig_clock *c)
{
	int64_t target = INT64_MAX;
	for (int i = 0; i < MAX_WAITERS; i++)
		if (c->w[i].used) {
			/* Something already arrived: whoever waits on it goes first. */
			if (readable(c->w[i].fd, 0)) {
				pthread_cond_broadcast(&c->cv);
				return 1;
			}
			if (c->w[i].deadline < target)
				target = c->w[i].deadline;
		}
	if (target == INT64_MAX || target <= c->now)
		return 1;
	c->advancing = true;
	pthread_mutex_unlock(&c->m);
	char req[64], reply[256];
	snprintf(req, sizeof req, "next %lld\n", (long long)target);
	long long now = 0;
	int rc = ctl_request(c, req, reply, sizeof reply);
	if (rc == 0 && !reply_value(reply, "now", &now)) {
		snprintf(c->err, sizeof c->err, "rack control socket: no time in reply '%.100s'", reply);
		rc = -1;
	}
	pthread_mutex_lock(&c->m);
	c->advancing = false;
	if (rc == 0 && now > c->now)
		c->now = now;
	/* Every waiter learns of it, not only this one: the others would
	 * otherwise wait for time that cannot move (issue 12). */
	if (rc < 0)
		c->failed = true;
	pthread_cond_broadcast(&c->cv);
	return rc;
}

static int virtual_wait(rig_clock *c, int fd, int64_t deadline)
{
	pthread_mutex_lock(&c->m);
	struct waiter *me = add_waiter(c, fd, deadline);
	if (!me) {
		pthread_mutex_unlock(&c->m);
		snprintf(c->err, sizeof c->err, "clock: more than %d waiters", MAX_WAITERS);
		return -1;
	}
	c->waiting++;
	int rc;
	for (;;) {
		if (c->aborted || c->failed) {
			rc = -1;
			break;
		}
		/* While time is moving, what a fd shows belongs to no definite
		 * time: look again once the move is done. */
		if (c->advancing) {
			pthread_cond_wait(&c->cv, &c->m);
			continue;
		}
		if (fd >= 0 && readable(fd, 0)) {
			rc = 1;
			break;
		}
		if (c->now >= deadline) {
			rc = 0;
			break;
		}
		if (c->waiting >= c->joined && !c->advancing) {
			int a = advance(c);
			if (a < 0) {
				rc = -1;
				break;
			}
			if (a == 0)
				continue;
			/* Not yet: let the one with input run (we give up the lock below). */
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += POLL_SLICE_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->m, &ts);
	}
	me->used = false;
	c->waiting--;
	pthread_mutex_unlock(&c->m);
	return rc;
}

int clock_wait_fd(rig_clock *c, int fd, int64_t deadline)
{
	return c->virtual_ ? virtual_wait(c, fd, deadline) : wall_wait(c, fd, deadline);
}

int clock_sleep_until(rig_clock *c, int64_t t)
{
	int rc = clock_wait_fd(c, -1, t);
	return rc < 0 ? -1 : 0;
}
