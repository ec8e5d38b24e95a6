/* clock.c - wall and virtual time behind one interface (see clock.h). */
#include "clock.h"
#include "ctlsock.h"
#include "timefmt.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A waiter is one thread parked in clock_wait_fd() on a virtual clock. It
 * lives on that thread's stack and has its own condition variable: the
 * clock's poller wakes exactly the waiters whose fd is readable or whose
 * deadline has come, never all of them. */
struct waiter {
	int fd;           /* -1: a plain sleep */
	int64_t deadline;
	pthread_cond_t cv;
	int efd;          /* FD as registered in the poller's epoll set (a dup when
			   * another waiter has FD registered already); -1 none */
	bool done;        /* released by the poller; RC is the result */
	int rc;
	size_t idx;       /* position in rig_clock.w */
};

struct rig_clock {
	bool virtual_;
	int64_t start_wall;    /* CLOCK_MONOTONIC ms at open (wall mode) */
	int64_t epoch_unix;    /* Unix ms of clock time 0 */
	struct ctlsock ctl;    /* the rack's control socket; not connected on the wall clock */
	pthread_mutex_t m;
	int64_t now;           /* virtual time (atomic reads without the lock) */
	int joined;
	bool advancing;
	bool aborted;
	bool failed;           /* the control socket failed: time can never move again */
	/* The rack's output count (its `out=` in a time reply): while it has
	 * not changed since the last look at every parked fd, no pty can hold
	 * bytes the epoll set has not seen, and a step needs no such look. */
	long long rack_out;
	bool look_all;
	/* virtual clock: the parked waiters and the thread that watches them */
	struct waiter **w;
	size_t n_w, cap_w;
	uint64_t gen;          /* bumped whenever a waiter parks */
	int ep;                /* epoll: every parked waiter's fd, and the kick */
	int kick;              /* eventfd: the poller must look again */
	bool kicked;           /* a kick is pending (one is enough) */
	bool closing;
	bool poller_started;
	pthread_t poller;
	struct pollfd *pfd;    /* the poller's scratch for poll(): waiters' fds */
	struct waiter **pfd_w;
	size_t pfd_cap;
	char err[512];
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
	c->ctl.fd = -1;
	c->look_all = true;
	c->rack_out = -1;
	c->kick = -1;
	c->ep = -1;
	c->start_wall = mono_ms();
	c->epoch_unix = unix_ms();
	pthread_mutex_init(&c->m, NULL);
	c->trk = (struct tracker_clock){ .now_ms = trk_now, .wait_readable = trk_wait, .ctx = c };
	return c;
}

int clock_open_real(rig_clock **out)
{
	*out = alloc_clock();
	return *out ? 0 : -1;
}

/* One request, one "ok" reply line on the control socket; -1 with the
 * reason in c->err otherwise. Only one thread asks at a time: the opener,
 * then only the poller. A failed request leaves the socket closed, and
 * clock.c never asks again: a failed control socket fails every wait. */
static int ctl_request(rig_clock *c, const char *req, char *reply, size_t len)
{
	int rc = ctlsock_request(&c->ctl, req, CTLSOCK_REPLY_MS, reply, len, c->err, sizeof c->err);
	return rc == CTLSOCK_OK ? 0 : -1;
}

static void *poller_main(void *arg);

/* The virtual clock's poller: one thread that watches every parked waiter's
 * fd in one poll set and moves time when all are parked. */
static int start_poller(rig_clock *c, char *err, size_t errlen)
{
	c->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (c->kick < 0 || c->ep < 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, c->kick, &ev) < 0) {
		snprintf(err, errlen, "clock: epoll/eventfd: %s", strerror(errno));
		return -1;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	int rc = pthread_create(&c->poller, &attr, poller_main, c);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		snprintf(err, errlen, "clock: cannot start the poller thread: %s", strerror(rc));
		return -1;
	}
	c->poller_started = true;
	return 0;
}

int clock_open_rack(const char *control_path, rig_clock **out, char *err, size_t errlen)
{
	*out = NULL;
	rig_clock *c = alloc_clock();
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Time requests are never sent twice: a repeated `next` would move
	 * time again (c->ctl.reconnect stays false). */
	if (ctlsock_init(&c->ctl, control_path, err, errlen) || ctlsock_connect(&c->ctl, err, errlen)) {
		clock_close(c);
		return -1;
	}
	char reply[256];
	long long epoch = 0, now = 0;
	if (ctl_request(c, "mode", reply, sizeof reply)) {
		snprintf(err, errlen, "%s", c->err);
		clock_close(c);
		return -1;
	}
	c->virtual_ = strstr(reply, " mode=virtual") != NULL;
	if (ctlsock_value(reply, "epoch", &epoch))
		c->epoch_unix = epoch;
	if (c->virtual_) {
		if (ctl_request(c, "now", reply, sizeof reply) || !ctlsock_value(reply, "now", &now)) {
			if (!*c->err)
				snprintf(c->err, sizeof c->err, "control socket %s: no time in the reply to 'now': '%.60s'",
					 c->ctl.path, reply);
			snprintf(err, errlen, "%s", c->err);
			clock_close(c);
			return -1;
		}
		c->now = now;
		if (start_poller(c, err, errlen)) {
			clock_close(c);
			return -1;
		}
	} else {
		ctlsock_close(&c->ctl);
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

/* Tells the poller to look again; called with the lock held. One pending
 * kick is enough, so a crowd of threads parking costs one write. */
static void kick_poller(rig_clock *c)
{
	if (c->kick < 0 || c->kicked)
		return;
	c->kicked = true;
	uint64_t one = 1;
	if (write(c->kick, &one, sizeof one) < 0) {
		/* the counter is already non-zero: the poller will wake anyway */
	}
}

void clock_close(rig_clock *c)
{
	if (!c)
		return;
	if (c->poller_started) {
		pthread_mutex_lock(&c->m);
		c->closing = true;
		kick_poller(c);
		pthread_mutex_unlock(&c->m);
		pthread_join(c->poller, NULL);
	}
	if (c->kick >= 0)
		close(c->kick);
	if (c->ep >= 0)
		close(c->ep);
	ctlsock_close(&c->ctl);
	pthread_mutex_destroy(&c->m);
	free(c->w);
	free(c->pfd);
	free(c->pfd_w);
	free(c);
}

bool clock_is_virtual(const rig_clock *c) { return c->virtual_; }
const char *clock_error(rig_clock *c) { return c->err; }
const struct tracker_clock *clock_for_tracker(rig_clock *c) { return &c->trk; }

int64_t clock_now(rig_clock *c)
{
	if (!c->virtual_)
		return mono_ms() - c->start_wall;
	/* Read often by every slot: no lock, the poller stores it atomically. */
	return __atomic_load_n(&c->now, __ATOMIC_ACQUIRE);
}

int64_t clock_unix_ms(rig_clock *c, int64_t t) { return c->epoch_unix + t; }

const char *clock_iso(rig_clock *c, int64_t t, char *buf, size_t len)
{
	return time_iso_ms(clock_unix_ms(c, t), buf, len);
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
	/* The ones left may all be waiting now: the poller may move time. */
	kick_poller(c);
	pthread_mutex_unlock(&c->m);
}

void clock_abort(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	c->aborted = true;
	kick_poller(c);
	pthread_mutex_unlock(&c->m);
}

bool clock_aborted(rig_clock *c)
{
	pthread_mutex_lock(&c->m);
	bool a = c->aborted;
	pthread_mutex_unlock(&c->m);
	return a;
}

/* A hang-up counts: the reader must learn that the device is gone. */
static bool shows_input(short revents)
{
	return revents & (POLLIN | POLLHUP | POLLERR);
}

static bool readable(int fd, int timeout_ms)
{
	if (fd < 0)
		return false;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, timeout_ms) > 0 && shows_input(p.revents);
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

/* ---- virtual clock ----
 *
 * Waiting threads only sleep on their own condition variable. The poller
 * thread holds every parked waiter's fd in one epoll set: in real time it
 * releases a waiter as soon as its fd shows input, at the cost of that one
 * waiter. When every joined thread is parked, it looks at every parked fd
 * once with poll() (which also makes a pty hand over bytes still in flight,
 * which epoll does not), and if none shows input asks the rack for the next
 * event or the earliest deadline, then releases only the waiters whose
 * deadline has come (with 1 when their fd shows input by then). */

/* Registers ME's fd in the poller's epoll set. Returns 0; 1 when the fd
 * cannot be watched because it is always ready (a regular file); -1 on a
 * failure (message in c->err). */
static int watch_fd(rig_clock *c, struct waiter *me)
{
	me->efd = -1;
	if (me->fd < 0)
		return 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = me };
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, me->fd, &ev) == 0) {
		me->efd = me->fd;
		return 0;
	}
	if (errno == EPERM)
		return 1;
	int e = errno;
	if (e == EEXIST) {
		/* Another waiter has this fd: a second descriptor for it. */
		int d = fcntl(me->fd, F_DUPFD_CLOEXEC, 0);
		if (d >= 0 && epoll_ctl(c->ep, EPOLL_CTL_ADD, d, &ev) == 0) {
			me->efd = d;
			return 0;
		}
		e = errno;
		if (d >= 0)
			close(d);
	}
	snprintf(c->err, sizeof c->err, "clock: cannot watch fd %d: %s", me->fd, strerror(e));
	return -1;
}

static void unwatch_fd(rig_clock *c, struct waiter *w)
{
	if (w->efd < 0)
		return;
	epoll_ctl(c->ep, EPOLL_CTL_DEL, w->efd, NULL);
	if (w->efd != w->fd)
		close(w->efd);
	w->efd = -1;
}

static int park(rig_clock *c, struct waiter *me)
{
	if (c->n_w == c->cap_w) {
		size_t cap = c->cap_w ? 2 * c->cap_w : 64;
		struct waiter **w = realloc(c->w, cap * sizeof *w);
		if (!w) {
			snprintf(c->err, sizeof c->err, "clock: out of memory for %zu waiters", c->n_w + 1);
			return -1;
		}
		c->w = w;
		c->cap_w = cap;
	}
	int rc = watch_fd(c, me);
	if (rc != 0)
		return rc;
	me->idx = c->n_w;
	c->w[c->n_w++] = me;
	c->gen++;
	return 0;
}

/* Called by the poller with the lock held: W leaves the parked set. */
static void release(rig_clock *c, struct waiter *w, int rc)
{
	unwatch_fd(c, w);
	struct waiter *last = c->w[--c->n_w];
	c->w[w->idx] = last;
	last->idx = w->idx;
	w->done = true;
	w->rc = rc;
	pthread_cond_signal(&w->cv);
}

static void release_all(rig_clock *c, int rc)
{
	while (c->n_w)
		release(c, c->w[c->n_w - 1], rc);
}

/* Every joined thread is parked (a thread that never joined counts while it
 * waits): time may move. */
static bool all_parked(const rig_clock *c)
{
	return c->n_w > 0 && (long)c->n_w >= (long)c->joined;
}

/* Time has somewhere to go: some parked waiter has a deadline. (Waiters that
 * all wait on input forever hold time where it is.) */
static bool may_advance(const rig_clock *c)
{
	if (!all_parked(c))
		return false;
	for (size_t i = 0; i < c->n_w; i++)
		if (c->w[i]->deadline < INT64_MAX)
			return true;
	return false;
}

static int grow_poll_set(rig_clock *c, size_t n)
{
	if (n <= c->pfd_cap)
		return 0;
	size_t cap = n * 2;
	struct pollfd *p = realloc(c->pfd, cap * sizeof *p);
	if (p)
		c->pfd = p;
	struct waiter **pw = realloc(c->pfd_w, cap * sizeof *pw);
	if (pw)
		c->pfd_w = pw;
	if (!p || !pw)
		return -1;
	c->pfd_cap = cap;
	return 0;
}

/* Fills the poll set with the fds of the parked waiters (only those whose
 * deadline has come when DUE_ONLY). Returns its length. */
static size_t build_poll_set(rig_clock *c, bool due_only)
{
	if (grow_poll_set(c, c->n_w) < 0)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < c->n_w; i++)
		if (c->w[i]->fd >= 0 && (!due_only || c->w[i]->deadline <= c->now)) {
			c->pfd[n] = (struct pollfd){ .fd = c->w[i]->fd, .events = POLLIN };
			c->pfd_w[n++] = c->w[i];
		}
	return n;
}

/* Releases, with 1, the waiters of the polled set whose fd shows input.
 * Only the poller releases, so the ones in the set are all still parked.
 * Returns how many. */
static int release_readable(rig_clock *c, size_t n)
{
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (shows_input(c->pfd[i].revents) && !c->pfd_w[i]->done) {
			release(c, c->pfd_w[i], 1);
			k++;
		}
	return k;
}

/* Releases, with 0, the waiters whose deadline has come. */
static void release_due(rig_clock *c)
{
	for (size_t i = 0; i < c->n_w;)
		if (c->w[i]->deadline <= c->now)
			release(c, c->w[i], 0);   /* the last one moved to I: look at I again */
		else
			i++;
}

/* After time moved: the waiters whose deadline has come leave, with 1 when
 * their fd shows input by now (what the devices said up to the new time is
 * out before the rack's reply), else with 0. The others stay parked: their
 * input, if any, wakes them through the epoll set. */
static void release_after_move(rig_clock *c)
{
	size_t n = build_poll_set(c, true);
	if (n && poll(c->pfd, n, 0) > 0)
		release_readable(c, n);
	release_due(c);
}

/* Called by the poller, lock held, when everyone is parked and no fd shows
 * input: moves time to the earliest deadline or the rack's next event.
 * Returns 0, or -1 on a control socket failure. */
static int advance(rig_clock *c)
{
	int64_t target = INT64_MAX;
	for (size_t i = 0; i < c->n_w; i++)
		if (c->w[i]->deadline < target)
			target = c->w[i]->deadline;
	if (target <= c->now) {
		release_due(c);
		return 0;
	}
	c->advancing = true;
	pthread_mutex_unlock(&c->m);
	char req[64], reply[256];
	snprintf(req, sizeof req, "next %lld", (long long)target);
	long long now = 0, out = -1;
	int rc = ctl_request(c, req, reply, sizeof reply);
	if (rc == 0 && !ctlsock_value(reply, "now", &now)) {
		snprintf(c->err, sizeof c->err, "control socket %s: no time in the reply to '%s': '%.100s'", c->ctl.path,
			 req, reply);
		rc = -1;
	}
	pthread_mutex_lock(&c->m);
	/* The rack said something since the last reply (or does not tell):
	 * the next step looks at every parked fd first. */
	if (rc != 0 || !ctlsock_value(reply, "out", &out) || out != c->rack_out)
		c->look_all = true;
	c->rack_out = out;
	c->advancing = false;
	if (rc == 0 && now > c->now)
		__atomic_store_n(&c->now, (int64_t)now, __ATOMIC_RELEASE);
	return rc;
}

static int wait_events(rig_clock *c, int timeout);

/* Everyone is parked: one look at every parked fd at the current time, and
 * if none shows input, time moves. */
static void step(rig_clock *c)
{
	uint64_t gen = c->gen;
	if (c->look_all) {
		/* poll() makes every pty hand over what is still in flight;
		 * after it, what arrives shows in the epoll set. */
		size_t n = build_poll_set(c, false);
		pthread_mutex_unlock(&c->m);
		int r = n ? poll(c->pfd, n, 0) : 0;
		pthread_mutex_lock(&c->m);
		if (c->closing || c->aborted)
			return;
		if (r >= 0)
			c->look_all = false;
		if (r > 0 && release_readable(c, n) > 0)
			return;
	} else if (wait_events(c, 0) > 0 || c->closing || c->aborted) {
		return;
	}
	/* The look must have covered exactly who is parked now. */
	if (!may_advance(c) || c->gen != gen)
		return;
	if (advance(c) < 0) {
		/* Every wait fails with the clock's error (clock_error()), now
		 * and later: the others would otherwise wait for time that
		 * cannot move (issue 12). */
		c->failed = true;
		release_all(c, -1);
		return;
	}
	if (!c->closing && !c->aborted)
		release_after_move(c);
}

#define EVENTS_MAX 64

/* In real time: waits for input on a parked fd or a kick, and releases the
 * waiters with input. The lock is dropped meanwhile; only the poller
 * releases, so every waiter an event names is still parked. */
static int wait_events(rig_clock *c, int timeout)
{
	struct epoll_event ev[EVENTS_MAX];
	pthread_mutex_unlock(&c->m);
	int n = epoll_wait(c->ep, ev, EVENTS_MAX, timeout);
	pthread_mutex_lock(&c->m);
	int released = 0;
	for (int i = 0; i < n; i++) {
		struct waiter *w = ev[i].data.ptr;
		if (!w) {
			uint64_t v;
			if (read(c->kick, &v, sizeof v) < 0) {
				/* already drained */
			}
			c->kicked = false;
			continue;
		}
		if (!w->done && !c->advancing) {
			release(c, w, 1);
			released++;
		}
	}
	return released;
}

static void *poller_main(void *arg)
{
	rig_clock *c = arg;
	pthread_mutex_lock(&c->m);
	while (!c->closing) {
		if (c->aborted) {
			release_all(c, -1);
			wait_events(c, -1);   /* until closed (later waits fail at once) */
			continue;
		}
		if (may_advance(c))
			step(c);
		else
			wait_events(c, -1);
	}
	release_all(c, -1);
	pthread_mutex_unlock(&c->m);
	return NULL;
}

static int virtual_wait(rig_clock *c, int fd, int64_t deadline)
{
	pthread_mutex_lock(&c->m);
	if (c->aborted || c->failed) {
		pthread_mutex_unlock(&c->m);
		return -1;
	}
	/* While time is moving, what a fd shows belongs to no definite time:
	 * park, and the poller looks once the move is done. */
	if (!c->advancing) {
		if (fd >= 0 && readable(fd, 0)) {
			pthread_mutex_unlock(&c->m);
			return 1;
		}
		if (c->now >= deadline) {
			pthread_mutex_unlock(&c->m);
			return 0;
		}
	}
	struct waiter me = { .fd = fd, .deadline = deadline };
	pthread_cond_init(&me.cv, NULL);
	int rc = park(c, &me);
	if (rc != 0) {
		pthread_mutex_unlock(&c->m);
		pthread_cond_destroy(&me.cv);
		return rc < 0 ? -1 : 1;   /* 1: a regular file, always readable */
	}
	/* The last one to park wakes the poller to move time; input on the fd
	 * wakes it through the epoll set. */
	if (all_parked(c))
		kick_poller(c);
	while (!me.done)
		pthread_cond_wait(&me.cv, &c->m);
	pthread_mutex_unlock(&c->m);
	pthread_cond_destroy(&me.cv);
	return me.rc;
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
