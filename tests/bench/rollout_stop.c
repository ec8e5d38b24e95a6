/*
 * rollout_stop.c - how fast a rollout stops starting devices after a stop
 * is issued from another terminal (rig/rollout.c), with a fake device layer.
 *
 * Each trial: a 64-slot, one-stage rollout whose health gates take 5 ms of
 * wall time per device (a console round trip), so the loop is busy starting
 * devices. Another thread, on its own store connection, issues `stop` (as
 * `rig rollout stop` does) at a random moment. Latency = the moment the loop
 * saw the stop (and started nothing more) minus the moment the request was
 * committed. 20 trials, two ways of reading the request:
 *   every step : PRAGMA data_version checked before each device start (what
 *                `rig rollout start` does), the store read only when it moved
 *   baseline   : the store read every 250 ms of wall time only
 * Target: median and max under 100 ms.
 *
 * Then a stop that lands while devices are installing (every device of an
 * 8-slot stage started, each taking 1.5 s of wall time): the loop follows
 * them and must see the stop at once, A B A B over 10 trials each:
 *   event-driven : the in-flight wait ends when the store's -wal file (a
 *                  commit by another connection) or the stop file changes
 *                  (ops->wait_fd on an inotify fd)
 *   baseline     : the same loop without wait_fd: it sleeps the device poll
 *                  (1000 ms) between checks, as it did before
 * Target: event-driven median and max under 100 ms.
 *
 * Also the wall time of a whole good 64-slot rollout through the state
 * machine and the store (fake devices).
 */
#include "rollout.h"
#include "store.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 64
#define TRIALS 20

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct fake {
	int64_t now;
	int gate_us;
	int phase[SLOTS + 1];
	int64_t done_at[SLOTS + 1];
	int starts;
};

static int f_gate(void *ctx, int slot, char *imei, size_t imeilen, char *gate, size_t gatelen, char *detail,
		  size_t len)
{
	struct fake *f = ctx;
	(void)slot, (void)gate, (void)gatelen, (void)detail, (void)len;
	snprintf(imei, imeilen, "35209408723%04d", slot);
	if (f->gate_us)
		usleep((useconds_t)f->gate_us);
	return 0;
}

static int f_start(void *ctx, int slot, const char *url, char *detail, size_t len)
{
	struct fake *f = ctx;
	(void)url, (void)detail, (void)len;
	f->starts++;
	f->phase[slot] = 1;
	f->done_at[slot] = f->now + 5000;
	return 0;
}

static int f_poll(void *ctx, int slot, char *detail, size_t len)
{
	struct fake *f = ctx;
	(void)detail, (void)len;
	if (f->phase[slot] == 0)
		return RO_OUT_NOT_STARTED;
	return f->now >= f->done_at[slot] ? RO_OUT_COMMITTED : RO_OUT_PENDING;
}

static int64_t f_now(void *ctx)
{
	return 1795000000000LL + ((struct fake *)ctx)->now;
}

static int f_sleep(void *ctx, int ms)
{
	((struct fake *)ctx)->now += ms;
	return 0;
}

static const struct rollout_device_ops ops = { f_gate, f_start, f_poll, f_poll, f_now, f_sleep, NULL };

struct stopper {
	const char *db_path;
	int64_t id;
	int delay_ms;
	int64_t issued_ns;
};

static void *stopper(void *arg)
{
	struct stopper *s = arg;
	store *db;
	char err[300];
	if (store_open(s->db_path, &db, err, sizeof err)) {
		fprintf(stderr, "stopper: %s\n", err);
		return NULL;
	}
	usleep((useconds_t)s->delay_ms * 1000);
	if (rollout_request(db, s->id, "stop", "bench", err, sizeof err) < 0)
		fprintf(stderr, "stopper: %s\n", err);
	s->issued_ns = mono_ns(); /* committed: visible to the runner from now */
	store_close(db);
	return NULL;
}

static int64_t create(store *db)
{
	int slots[SLOTS];
	for (int i = 0; i < SLOTS; i++)
		slots[i] = i + 1;
	struct rollout_spec sp = { .image = "good-2.0.0.fw", .version = "2.0.0", .model = "FMB920", .stages = "100%",
				   .cohort = "all", .success_pct = 90, .device_timeout_ms = 1800000, .slots = slots,
				   .n_slots = SLOTS, .max_failures = { 1, false } };
	char err[300];
	int64_t id = rollout_create(db, &sp, "bench", err, sizeof err);
	if (id < 0)
		fprintf(stderr, "create: %s\n", err);
	return id;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Returns 0 with median and max latency in ms, and in LATE the trials in
 * which a device started after the loop had seen the stop (must be 0). */
static int trials(const char *dir, bool every_step, double *median, double *max, int *late)
{
	double lat[TRIALS];
	*late = 0;
	srand(42);
	for (int t = 0; t < TRIALS; t++) {
		char path[512];
		snprintf(path, sizeof path, "%s/stop-%d-%d.db", dir, every_step, t);
		store *db;
		char err[300], state[16];
		if (store_open(path, &db, err, sizeof err))
			return fprintf(stderr, "%s\n", err), -1;
		int64_t id = create(db);
		struct fake f = { .gate_us = 5000 };
		int64_t seen = 0, last_start = 0;
		struct rollout_opts o = { .url = "http://127.0.0.1:1/good-2.0.0.fw", .operator_ = "bench",
					  .db_poll_ms = 250, .db_poll_every_step = every_step, .device_poll_ms = 1000,
					  .stop_seen_ns = &seen, .last_start_ns = &last_start };
		struct stopper s = { .db_path = path, .id = id, .delay_ms = 20 + rand() % 60 };
		pthread_t th;
		pthread_create(&th, NULL, stopper, &s);
		int rc = rollout_run(db, id, &ops, &f, &o, state, sizeof state, err, sizeof err);
		pthread_join(th, NULL);
		struct rollout_counts c;
		rollout_counts(db, id, &c);
		store_close(db);
		if (rc || strcmp(state, "stopped") != 0 || !seen)
			return fprintf(stderr, "trial %d: %s %s\n", t, state, rc ? err : ""), -1;
		lat[t] = (double)(seen - s.issued_ns) / 1e6;
		if (lat[t] < 0)
			lat[t] = 0; /* seen between the commit and our clock read */
		if (last_start > seen)
			(*late)++;
		(void)c;
	}
	qsort(lat, TRIALS, sizeof lat[0], cmp);
	*median = (lat[TRIALS / 2 - 1] + lat[TRIALS / 2]) / 2;
	*max = lat[TRIALS - 1];
	return 0;
}

/* ---- a stop while devices install (wall-clock fake devices) ---- */

#define INST_SLOTS 8
#define INST_TRIALS 10
#define INSTALL_MS 1500

struct wall_fake {
	atomic_int started;
	int64_t done_at[INST_SLOTS + 1];
};

static int64_t wall_ms(void) { return mono_ns() / 1000000; }

static int w_gate(void *ctx, int slot, char *imei, size_t imeilen, char *gate, size_t gatelen, char *detail,
		  size_t len)
{
	(void)ctx, (void)gate, (void)gatelen, (void)detail, (void)len;
	snprintf(imei, imeilen, "35209408723%04d", slot);
	return 0;
}

static int w_start(void *ctx, int slot, const char *url, char *detail, size_t len)
{
	struct wall_fake *f = ctx;
	(void)url, (void)detail, (void)len;
	f->done_at[slot] = wall_ms() + INSTALL_MS;
	atomic_fetch_add(&f->started, 1);
	return 0;
}

static int w_poll(void *ctx, int slot, char *detail, size_t len)
{
	struct wall_fake *f = ctx;
	(void)detail, (void)len;
	if (!f->done_at[slot])
		return RO_OUT_NOT_STARTED;
	return wall_ms() >= f->done_at[slot] ? RO_OUT_COMMITTED : RO_OUT_PENDING;
}

static int64_t w_now(void *ctx)
{
	(void)ctx;
	return 1795000000000LL + wall_ms();
}

static int w_sleep(void *ctx, int ms)
{
	(void)ctx;
	usleep((useconds_t)ms * 1000);
	return 0;
}

static int w_wait_fd(void *ctx, int fd, int ms)
{
	(void)ctx;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, ms);
	return n < 0 ? -1 : n > 0;
}

static const struct rollout_device_ops wall_event_ops = { w_gate, w_start, w_poll, w_poll, w_now, w_sleep, w_wait_fd };
static const struct rollout_device_ops wall_sleep_ops = { w_gate, w_start, w_poll, w_poll, w_now, w_sleep, NULL };

struct inst_stopper {
	const char *db_path;
	int64_t id;
	struct wall_fake *f;
	int delay_ms;
	int64_t issued_ns;
};

/* Waits until every device is installing, then a moment more, then stops. */
static void *inst_stopper(void *arg)
{
	struct inst_stopper *s = arg;
	store *db;
	char err[300];
	if (store_open(s->db_path, &db, err, sizeof err)) {
		fprintf(stderr, "stopper: %s\n", err);
		return NULL;
	}
	while (atomic_load(&s->f->started) < INST_SLOTS)
		usleep(1000);
	usleep((useconds_t)s->delay_ms * 1000);
	if (rollout_request(db, s->id, "stop", "bench", err, sizeof err) < 0)
		fprintf(stderr, "stopper: %s\n", err);
	s->issued_ns = mono_ns();
	store_close(db);
	return NULL;
}

/* One trial; latency in ms into *LAT, or -1 on failure. */
static int inst_trial(const char *dir, int t, bool event, double *lat)
{
	char path[512], err[300], state[16];
	snprintf(path, sizeof path, "%s/inst-%d-%d.db", dir, event, t);
	store *db;
	if (store_open(path, &db, err, sizeof err))
		return fprintf(stderr, "%s\n", err), -1;
	int slots[INST_SLOTS];
	for (int i = 0; i < INST_SLOTS; i++)
		slots[i] = i + 1;
	struct rollout_spec sp = { .image = "good-2.0.0.fw", .version = "2.0.0", .model = "FMB920", .stages = "100%",
				   .cohort = "all", .success_pct = 90, .device_timeout_ms = 1800000, .slots = slots,
				   .n_slots = INST_SLOTS, .max_failures = { 1, false } };
	int64_t id = rollout_create(db, &sp, "bench", err, sizeof err);
	struct wall_fake f = { 0 };
	int64_t seen = 0;
	struct rollout_opts o = { .url = "http://127.0.0.1:1/good-2.0.0.fw", .operator_ = "bench", .db_poll_ms = 250,
				  .db_poll_every_step = true, .device_poll_ms = 1000, .stop_seen_ns = &seen };
	struct inst_stopper s = { .db_path = path, .id = id, .f = &f, .delay_ms = 50 + rand() % 350 };
	pthread_t th;
	pthread_create(&th, NULL, inst_stopper, &s);
	int rc = rollout_run(db, id, event ? &wall_event_ops : &wall_sleep_ops, &f, &o, state, sizeof state, err,
			     sizeof err);
	pthread_join(th, NULL);
	store_close(db);
	if (rc || strcmp(state, "stopped") != 0 || !seen || !s.issued_ns)
		return fprintf(stderr, "installing trial %d: %s %s\n", t, state, rc ? err : ""), -1;
	*lat = (double)(seen - s.issued_ns) / 1e6;
	if (*lat < 0)
		*lat = 0;
	return 0;
}

/* A B A B: event-driven, then baseline, each trial. */
static int installing(const char *dir, double *med, double *max, double *bmed, double *bmax)
{
	double a[INST_TRIALS], b[INST_TRIALS];
	srand(7);
	for (int t = 0; t < INST_TRIALS; t++)
		if (inst_trial(dir, t, true, &a[t]) || inst_trial(dir, t, false, &b[t]))
			return -1;
	qsort(a, INST_TRIALS, sizeof a[0], cmp);
	qsort(b, INST_TRIALS, sizeof b[0], cmp);
	*med = (a[INST_TRIALS / 2 - 1] + a[INST_TRIALS / 2]) / 2;
	*max = a[INST_TRIALS - 1];
	*bmed = (b[INST_TRIALS / 2 - 1] + b[INST_TRIALS / 2]) / 2;
	*bmax = b[INST_TRIALS - 1];
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/trackrig-bench-rollout-XXXXXX";
	if (!mkdtemp(dir))
		return perror("mkdtemp"), 3;
	double med, max, bmed, bmax;
	int late, blate;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (trials(dir, true, &med, &max, &late) || trials(dir, false, &bmed, &bmax, &blate)) {
		if (system(cmd)) {
		}
		return 1;
	}
	printf("rollout stop latency over %d trials (stop issued from another store connection ->\n"
	       "rollout loop stops starting devices; gates take 5 ms per device):\n", TRIALS);
	printf("  every step (data_version) : median %7.2f ms  max %7.2f ms  starts after the stop was seen: %d\n", med,
	       max, late);
	printf("  baseline (DB poll 250 ms) : median %7.2f ms  max %7.2f ms  starts after the stop was seen: %d\n",
	       bmed, bmax, blate);
	printf("  target < 100 ms: %s; every step is %.1fx faster than the baseline at the median\n",
	       max < 100 ? "met" : "MISSED", med > 0 ? bmed / med : 0.0);
	double imed, imax, ibmed, ibmax;
	if (installing(dir, &imed, &imax, &ibmed, &ibmax)) {
		if (system(cmd)) {
		}
		return 1;
	}
	printf("stop while %d devices install (%d trials each, A B A B; devices take %d ms):\n", INST_SLOTS,
	       INST_TRIALS, INSTALL_MS);
	printf("  event-driven (inotify)    : median %7.2f ms  max %7.2f ms\n", imed, imax);
	printf("  baseline (sleep 1000 ms)  : median %7.2f ms  max %7.2f ms\n", ibmed, ibmax);
	printf("  target < 100 ms: %s\n", imax < 100 ? "met" : "MISSED");
	/* A good image over 64 slots through the state machine and the store. */
	char path[512], err[300], state[16];
	snprintf(path, sizeof path, "%s/whole.db", dir);
	store *db;
	if (store_open(path, &db, err, sizeof err))
		return fprintf(stderr, "%s\n", err), 3;
	int slots[SLOTS];
	for (int i = 0; i < SLOTS; i++)
		slots[i] = i + 1;
	struct rollout_spec sp = { .image = "good-2.0.0.fw", .version = "2.0.0", .model = "FMB920",
				   .stages = "1,10%,50%,100%", .cohort = "all", .success_pct = 90,
				   .device_timeout_ms = 1800000, .slots = slots, .n_slots = SLOTS,
				   .max_failures = { 1, false } };
	int64_t id = rollout_create(db, &sp, "bench", err, sizeof err);
	struct fake f = { 0 };
	struct rollout_opts o = { .url = "http://127.0.0.1:1/good-2.0.0.fw", .operator_ = "bench", .db_poll_ms = 250,
				  .db_poll_every_step = true, .device_poll_ms = 1000 };
	int64_t t0 = mono_ns();
	int rc = rollout_run(db, id, &ops, &f, &o, state, sizeof state, err, sizeof err);
	double wall = (double)(mono_ns() - t0) / 1e6;
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	store_close(db);
	printf("good image over %d fake slots, stages 1,10%%,50%%,100%%: %s, %d committed, wall %.1f ms"
	       " (state machine + store only; no simulated OTA devices)\n",
	       SLOTS, rc ? err : state, c.committed, wall);
	if (system(cmd)) {
	}
	return max < 100 && late == 0 && imax < 100 ? 0 : 1;
}
