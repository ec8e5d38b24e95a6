/* rollout.c - staged firmware rollouts, state in the store (see rollout.h, docs/rollout.md). */
#include "rollout.h"
#include "timefmt.h"
#include "duration.h"
#include "json.h"
#include "slotdev.h"
#include "store_rollout.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* ---- parsing ---- */

int rollout_stages_parse(const char *spec, struct rollout_stages *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	if (!spec || !*spec)
		return snprintf(err, errlen, "--stages: empty"), -1;
	const char *p = spec;
	for (;;) {
		if (st->n == ROLLOUT_MAX_STAGES)
			return snprintf(err, errlen, "--stages '%s': at most %d stages", spec, ROLLOUT_MAX_STAGES), -1;
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < 1 || v > 1000000 || (*p < '0' || *p > '9'))
			return snprintf(err, errlen, "--stages '%s': '%.20s' is not a count or a percentage", spec, p), -1;
		bool pct = *end == '%';
		if (pct) {
			end++;
			if (v > 100)
				return snprintf(err, errlen, "--stages '%s': %ld%% is over 100%%", spec, v), -1;
		}
		if (st->n > 0 && st->percent[st->n - 1] == pct && v <= st->value[st->n - 1])
			return snprintf(err, errlen, "--stages '%s': stages are cumulative and must grow (%ld%s after %d%s)",
					spec, v, pct ? "%" : "", st->value[st->n - 1], pct ? "%" : ""), -1;
		st->value[st->n] = (int)v;
		st->percent[st->n] = pct;
		st->n++;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return snprintf(err, errlen, "--stages '%s': expected ',' at '%.20s'", spec, end), -1;
		p = end + 1;
	}
}

int rollout_stage_sizes(const struct rollout_stages *st, int n, int *sizes)
{
	int prev = 0;
	for (int i = 0; i < st->n; i++) {
		long target = st->percent[i] ? ((long)st->value[i] * n + 99) / 100 : st->value[i];
		if (target < prev)
			target = prev;
		if (target == prev && prev < n)
			target = prev + 1; /* a stage always adds a device while there are any */
		if (target > n)
			target = n;
		sizes[i] = (int)target - prev;
		prev = (int)target;
	}
	return prev;
}

int rollout_threshold_parse(const char *s, struct rollout_threshold *t, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || errno || v < 0 || *s < '0' || *s > '9')
		return snprintf(err, errlen, "'%s': expected a count (1) or a percentage (20%%)", s), -1;
	t->percent = *end == '%';
	if (t->percent)
		end++;
	if (*end || (t->percent && v > 100) || v > 1000000)
		return snprintf(err, errlen, "'%s': expected a count (1) or a percentage (20%%)", s), -1;
	t->value = (int)v;
	return 0;
}

int rollout_duration_parse(const char *s, int64_t *ms)
{
	int64_t v;
	char secs[32];
	/* A bare number on the command line is seconds (--device-timeout 90). */
	if (*s && strspn(s, "0123456789") == strlen(s) && snprintf(secs, sizeof secs, "%ss", s) < (int)sizeof secs)
		s = secs;
	if (duration_parse(s, DURATION_MAX_MS, &v) != DURATION_OK || v <= 0)
		return -1;
	*ms = v;
	return 0;
}

static const char *fmt_threshold(const struct rollout_threshold *t, char *buf, size_t len)
{
	snprintf(buf, len, "%d%s", t->value, t->percent ? "%" : "");
	return buf;
}

/* ---- small store helpers ---- */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *iso_ms(int64_t unix_ms, char *buf, size_t len)
{
	return time_iso_ms(unix_ms, buf, len);
}

/* RC from a store call: -1 leaves "store: <SQLite's message>" in ERR. */
static int stored(store *db, int rc, char *err, size_t errlen)
{
	if (rc < 0)
		snprintf(err, errlen, "store: %s", store_sqlite_message(db));
	return rc < 0 ? -1 : 0;
}

/* ---- create ---- */

int64_t rollout_create(store *db, const struct rollout_spec *sp, const char *operator_, char *err, size_t errlen)
{
	struct rollout_stages st;
	int sizes[ROLLOUT_MAX_STAGES];
	if (rollout_stages_parse(sp->stages, &st, err, errlen))
		return -1;
	if (sp->n_slots <= 0)
		return snprintf(err, errlen, "cohort %s holds no slot", sp->cohort), -1;
	if (sp->success_pct < 0 || sp->success_pct > 100 || sp->device_timeout_ms <= 0)
		return snprintf(err, errlen, "bad thresholds"), -1;
	int covered = rollout_stage_sizes(&st, sp->n_slots, sizes);
	char now[32], thr[16];
	store_now(now, sizeof now);
	if (store_begin(db))
		return snprintf(err, errlen, "%s", store_error(db)), -1;
	const struct store_rollout_new row = {
		.image = sp->image, .version = sp->version, .model = sp->model, .stages = sp->stages,
		.cohort = sp->cohort, .created_at = now, .station = sp->station, .operator_ = operator_,
		.success_pct = sp->success_pct, .max_failures = fmt_threshold(&sp->max_failures, thr, sizeof thr),
		.device_timeout_ms = sp->device_timeout_ms, .n_stages = st.n,
	};
	int64_t id = store_rollout_add(db, &row);
	if (stored(db, id < 0 ? -1 : 0, err, errlen)) {
		store_rollback(db);
		return -1;
	}
	int k = 0;
	for (int s = 0; s < st.n; s++)
		for (int j = 0; j < sizes[s]; j++, k++)
			if (stored(db,
				   store_rollout_device_add(db, id, sp->slots[k], sp->imeis ? sp->imeis[k] : NULL, s + 1,
							    k),
				   err, errlen)) {
				store_rollback(db);
				return -1;
			}
	if (store_commit(db))
		return snprintf(err, errlen, "%s", store_error(db)), -1;
	(void)covered;
	char what[160];
	snprintf(what, sizeof what, "rollout %lld create %s over %s stages %s", (long long)id, sp->version, sp->cohort,
		 sp->stages);
	store_audit_add(db, &(struct store_audit){ .operator_ = operator_, .station = sp->station, .command = what,
						   .result = "ok" });
	return id;
}

int64_t rollout_latest(store *db)
{
	return store_rollout_latest(db);
}

static int64_t resolve_id(store *db, int64_t id, char *err, size_t errlen)
{
	if (id > 0)
		return id;
	id = rollout_latest(db);
	if (id <= 0)
		snprintf(err, errlen, id == 0 ? "no rollout in the store" : "store: %s", store_sqlite_message(db));
	return id > 0 ? id : -1;
}

/* ---- the runner ---- */

struct flight {
	int slot;
	int stage;
	int64_t started_ms;
	char imei[32];
};

struct ro {
	store *db;
	int64_t id;
	const struct rollout_device_ops *ops;
	void *ctx;
	const struct rollout_opts *o;
	char *err;
	size_t errlen;
	/* the rollout */
	char state[16];
	char version[64];
	int success_pct;
	struct rollout_threshold maxf;
	int64_t timeout_ms;
	int n_stages, stage;
	/* control */
	int64_t last_db_poll;
	int data_version;
	/* devices in flight */
	struct flight *fl;
	int nfl, capfl;
	int64_t last_dev_poll;
	/* what wakes the in-flight wait: inotify on the store's and the stop
	 * file's folders (-1: none, the wait is a sleep) */
	int wake_fd;
	char wake_names[3][NAME_MAX + 1];
	/* an operator's resume accepts what paused the stage */
	int ack_stage, ack_failures;
};

static void say(struct ro *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct ro *r, const char *fmt, ...)
{
	if (!r->o->progress)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	r->o->progress(r->o->progress_ctx, line);
}

static void audit(struct ro *r, int slot, const char *imei, const char *result, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void audit(struct ro *r, int slot, const char *imei, const char *result, const char *fmt, ...)
{
	char cmd[512], s[16];
	int n = snprintf(cmd, sizeof cmd, "rollout %lld ", (long long)r->id);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(s, sizeof s, "%d", slot);
	store_audit_add(r->db, &(struct store_audit){ .operator_ = r->o->operator_ ? r->o->operator_ : "unknown",
						      .station = r->o->station, .slot = slot > 0 ? s : NULL,
						      .imei = imei && *imei ? imei : NULL, .command = cmd,
						      .result = result });
}

static int set_state(struct ro *r, const char *state, const char *reason)
{
	char now[32];
	store_now(now, sizeof now);
	snprintf(r->state, sizeof r->state, "%s", state);
	int rc = stored(r->db, store_rollout_set_state(r->db, r->id, state, reason, now, r->stage), r->err, r->errlen);
	say(r, "rollout %lld: %s%s%s", (long long)r->id, state, reason ? ": " : "", reason ? reason : "");
	return rc;
}

static int dev_set(struct ro *r, int slot, const char *state, const char *imei, const char *gate, const char *detail,
		   bool started, bool finished)
{
	char t[40];
	iso_ms(r->ops->now_ms(r->ctx), t, sizeof t);
	const struct store_rollout_device_change c = { .state = state, .imei = imei, .gate = gate, .detail = detail,
						       .at = t, .started = started, .finished = finished };
	return stored(r->db, store_rollout_device_set(r->db, r->id, slot, &c), r->err, r->errlen);
}

static const char *outcome_state(int out)
{
	switch (out) {
	case RO_OUT_COMMITTED: return "committed";
	case RO_OUT_ROLLED_BACK: return "rolled_back";
	case RO_OUT_REJECTED: return "rejected";
	case RO_OUT_NOT_STARTED: return "waiting";
	case RO_OUT_PENDING: return "updating";
	default: return "failed";
	}
}

enum ctl { CTL_NONE, CTL_PAUSE, CTL_RESUME, CTL_STOP, CTL_LEAVE };

/* Reads (and consumes) a control request: SIGINT, the stop file, the store. */
static enum ctl check_control(struct ro *r, bool force, char *why, size_t len)
{
	if (r->o->interrupt && *r->o->interrupt >= 2)
		return CTL_LEAVE;
	if (r->o->interrupt && *r->o->interrupt == 1) {
		snprintf(why, len, "stop by SIGINT");
		return CTL_STOP;
	}
	if (r->o->stop_file && access(r->o->stop_file, F_OK) == 0 && strcmp(r->state, "stopped") != 0) {
		snprintf(why, len, "stop file %s", r->o->stop_file);
		return CTL_STOP;
	}
	int64_t now = mono_ns();
	bool due = force || now - r->last_db_poll >= (int64_t)r->o->db_poll_ms * 1000000;
	if (!due && r->o->db_poll_every_step) {
		/* data_version moves when another connection commits: a read of
		 * shared memory, cheap enough for every step. */
		int dv = store_data_version(r->db);
		due = dv != r->data_version;
		r->data_version = dv;
	}
	if (!due)
		return CTL_NONE;
	r->last_db_poll = now;
	enum ctl c = CTL_NONE;
	char w[16], at[40];
	int got = store_rollout_request_take(r->db, r->id, w, sizeof w, at, sizeof at);
	if (got < 0)
		return CTL_NONE;
	if (got == 1) {
		c = strcmp(w, "stop") == 0 ? CTL_STOP : strcmp(w, "pause") == 0 ? CTL_PAUSE : CTL_RESUME;
		snprintf(why, len, "%s requested at %s", w, at);
	}
	r->data_version = store_data_version(r->db);
	return c;
}

struct stage_count {
	int started, committed, failures;
};

static void stage_count_add(void *ctx, const char *s, int n, int in_flight_at_stop)
{
	struct stage_count *c = ctx;
	(void)in_flight_at_stop;
	if (strcmp(s, "committed") == 0)
		c->committed += n, c->started += n;
	else if (strcmp(s, "updating") == 0)
		c->started += n;
	else if (strcmp(s, "rolled_back") == 0 || strcmp(s, "rejected") == 0 || strcmp(s, "failed") == 0)
		c->failures += n, c->started += n;
}

static int stage_counts(struct ro *r, int stage, int *started, int *committed, int *failures)
{
	struct stage_count c = { 0 };
	*started = *committed = *failures = 0;
	if (stage <= 0) /* no stage under way: nothing started (0 would mean every stage) */
		return 0;
	int rc = store_rollout_state_counts(r->db, r->id, stage, stage_count_add, &c);
	*started = c.started;
	*committed = c.committed;
	*failures = c.failures;
	return rc < 0 ? -1 : 0;
}

/* The failure threshold of STAGE reached? Says why into WHY. */
static bool failure_threshold(struct ro *r, int stage, char *why, size_t len)
{
	int started, committed, failures;
	if (stage <= 0 || stage_counts(r, stage, &started, &committed, &failures))
		return false;
	if (stage == r->ack_stage)
		failures -= r->ack_failures;
	bool hit = r->maxf.percent ? failures > 0 && failures * 100 >= r->maxf.value * started
				   : failures >= r->maxf.value && failures > 0;
	if (hit)
		snprintf(why, len, "failure threshold: %d of %d started in stage %d failed or rolled back (max %d%s)",
			 failures, started, stage, r->maxf.value, r->maxf.percent ? "%" : "");
	return hit;
}

static void drop_flight(struct ro *r, int i)
{
	r->fl[i] = r->fl[--r->nfl];
}

static int add_flight(struct ro *r, int slot, int stage, const char *imei)
{
	if (r->nfl == r->capfl) {
		int cap = r->capfl ? r->capfl * 2 : 16;
		struct flight *f = realloc(r->fl, (size_t)cap * sizeof *f);
		if (!f)
			return -1;
		r->fl = f;
		r->capfl = cap;
	}
	struct flight *f = &r->fl[r->nfl++];
	f->slot = slot;
	f->stage = stage;
	f->started_ms = r->ops->now_ms(r->ctx);
	snprintf(f->imei, sizeof f->imei, "%s", imei ? imei : "");
	return 0;
}

/* Polls every device in flight once; records the ones that ended. */
static void poll_flights(struct ro *r)
{
	r->last_dev_poll = r->ops->now_ms(r->ctx);
	for (int i = 0; i < r->nfl;) {
		struct flight *f = &r->fl[i];
		char detail[ROLLOUT_DETAIL_MAX] = "";
		int out = r->ops->poll(r->ctx, f->slot, detail, sizeof detail);
		if (out == RO_OUT_PENDING && r->ops->now_ms(r->ctx) - f->started_ms >= r->timeout_ms) {
			out = RO_OUT_FAILED;
			snprintf(detail, sizeof detail, "no outcome within %lld s (per-device timeout)",
				 (long long)(r->timeout_ms / 1000));
		}
		if (out == RO_OUT_PENDING || out == RO_OUT_NOT_STARTED) {
			i++;
			continue;
		}
		const char *st = outcome_state(out);
		dev_set(r, f->slot, st, NULL, NULL, detail, false, true);
		audit(r, f->slot, f->imei, st, "slot %d update ended", f->slot);
		say(r, "stage %d: slot %d %s%s%s", f->stage, f->slot, st, *detail ? ": " : "", detail);
		drop_flight(r, i);
	}
}

static int do_stop(struct ro *r, const char *why)
{
	for (int i = 0; i < r->nfl; i++)
		stored(r->db, store_rollout_device_in_flight(r->db, r->id, r->fl[i].slot), r->err, r->errlen);
	stored(r->db, store_rollout_skip_waiting(r->db, r->id), r->err, r->errlen);
	char reason[300];
	snprintf(reason, sizeof reason, "%s; %d device%s still installing", why, r->nfl, r->nfl == 1 ? "" : "s");
	audit(r, 0, NULL, "ok", "stop (%s)", why);
	return set_state(r, "stopped", reason);
}

static int do_pause(struct ro *r, const char *why)
{
	audit(r, 0, NULL, "ok", "pause (%s)", why);
	return set_state(r, "paused", why);
}

/* Acts on a control request. Returns 1 when the caller must leave now. */
static int act(struct ro *r, enum ctl c, const char *why)
{
	switch (c) {
	case CTL_LEAVE:
		return 1;
	case CTL_STOP:
		if (r->o->stop_seen_ns && strcmp(r->state, "stopped") != 0)
			*r->o->stop_seen_ns = mono_ns();
		if (strcmp(r->state, "stopped") != 0)
			do_stop(r, why);
		return 0;
	case CTL_PAUSE:
		if (strcmp(r->state, "running") == 0)
			do_pause(r, why);
		return 0;
	case CTL_RESUME:
		if (strcmp(r->state, "paused") == 0) {
			int started, committed, failures;
			stage_counts(r, r->stage, &started, &committed, &failures);
			r->ack_stage = r->stage;
			r->ack_failures = failures;
			audit(r, 0, NULL, "ok", "resume (%s)", why);
			set_state(r, "running", why);
		}
		return 0;
	default:
		return 0;
	}
}

/* The next waiting device of STAGE: its slot, or 0 when none. */
static int next_waiting(struct ro *r, int stage, char *imei, size_t len)
{
	int slot = store_rollout_next_waiting(r->db, r->id, stage, imei, len);
	return slot < 0 ? -1 : slot;
}

/* Gates, then starts the update of SLOT. */
static void start_device(struct ro *r, int slot, const char *known_imei)
{
	char imei[32], gate[32] = "", detail[ROLLOUT_DETAIL_MAX] = "";
	snprintf(imei, sizeof imei, "%s", known_imei);
	if (r->ops->gate(r->ctx, slot, imei, sizeof imei, gate, sizeof gate, detail, sizeof detail)) {
		dev_set(r, slot, "gated_out", imei, *gate ? gate : "unknown", detail, false, true);
		audit(r, slot, imei, detail, "slot %d gated out (%s)", slot, gate);
		say(r, "stage %d: slot %d gated out by %s: %s", r->stage, slot, gate, detail);
		return;
	}
	/* Written before the command goes out: a rig that dies now leaves
	 * "updating", and recovery asks the device whether it got it. */
	dev_set(r, slot, "updating", imei, NULL, "update sent", true, false);
	if (r->o->last_start_ns)
		*r->o->last_start_ns = mono_ns();
	audit(r, slot, imei, "sent", "slot %d update %s", slot, r->o->url);
	int rc = r->ops->start(r->ctx, slot, r->o->url, detail, sizeof detail);
	if (rc != 0) {
		audit(r, slot, imei, detail, "slot %d update refused", slot);
		const char *st = outcome_state(rc == RO_OUT_REJECTED ? RO_OUT_REJECTED : RO_OUT_FAILED);
		dev_set(r, slot, st, NULL, NULL, detail, false, true);
		say(r, "stage %d: slot %d %s at start: %s", r->stage, slot, st, detail);
		return;
	}
	say(r, "stage %d: slot %d updating", r->stage, slot);
	add_flight(r, slot, r->stage, imei);
}

/* After a rig restart: where did the devices left "updating" end? */
struct updating {
	struct updating_dev {
		int slot, stage;
		char imei[32];
	} *v;
	int n;
	bool short_of_memory;
};

/* Kept aside: the devices are asked (and the store written) once the walk is over. */
static void updating_add(void *ctx, const struct store_rollout_device_row *d)
{
	struct updating *u = ctx;
	void *nv = u->short_of_memory ? NULL : realloc(u->v, (size_t)(u->n + 1) * sizeof *u->v);
	if (!nv) {
		u->short_of_memory = true;
		return;
	}
	u->v = nv;
	u->v[u->n].slot = d->slot;
	u->v[u->n].stage = d->stage;
	snprintf(u->v[u->n].imei, sizeof u->v[u->n].imei, "%s", d->imei ? d->imei : "");
	u->n++;
}

static int recover(struct ro *r)
{
	struct updating u = { 0 };
	if (store_rollout_devices_each(r->db, r->id, "updating", updating_add, &u) < 0 && u.n == 0) {
		free(u.v);
		return stored(r->db, -1, r->err, r->errlen);
	}
	struct updating_dev *v = u.v;
	int n = u.n;
	for (int i = 0; i < n; i++) {
		char detail[ROLLOUT_DETAIL_MAX] = "", d2[ROLLOUT_DETAIL_MAX + 40];
		int out = r->ops->recover(r->ctx, v[i].slot, detail, sizeof detail);
		const char *st = outcome_state(out);
		snprintf(d2, sizeof d2, "after rig restart: %s", *detail ? detail : st);
		if (out == RO_OUT_PENDING) {
			dev_set(r, v[i].slot, "updating", NULL, NULL, d2, false, false);
			add_flight(r, v[i].slot, v[i].stage, v[i].imei);
		} else if (out == RO_OUT_NOT_STARTED) {
			stored(r->db,
			       store_rollout_device_rewait(r->db, r->id, v[i].slot,
							   "after rig restart: the device never got the update; will start again"),
			       r->err, r->errlen);
		} else {
			dev_set(r, v[i].slot, st, NULL, NULL, d2, false, true);
		}
		audit(r, v[i].slot, v[i].imei, st, "slot %d recovered after rig restart", v[i].slot);
		say(r, "recovered slot %d: %s", v[i].slot, d2);
	}
	free(v);
	return 0;
}

struct loaded {
	struct ro *r;
	int rc;
};

static void load_row(void *ctx, const struct store_rollout_row *row)
{
	struct loaded *l = ctx;
	struct ro *r = l->r;
	snprintf(r->state, sizeof r->state, "%s", row->state);
	snprintf(r->version, sizeof r->version, "%s", row->version);
	r->success_pct = row->success_pct;
	l->rc = rollout_threshold_parse(row->max_failures, &r->maxf, r->err, r->errlen);
	r->timeout_ms = row->device_timeout_ms;
	r->n_stages = row->n_stages;
	r->stage = row->stage;
}

static int load(struct ro *r)
{
	struct loaded l = { .r = r, .rc = -1 };
	int found = store_rollout_get(r->db, r->id, load_row, &l);
	if (found < 0)
		return stored(r->db, -1, r->err, r->errlen);
	if (found == 0)
		snprintf(r->err, r->errlen, "no rollout %lld in the store", (long long)r->id);
	return l.rc;
}

static bool is(const struct ro *r, const char *s)
{
	return strcmp(r->state, s) == 0;
}

static void wall_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

/* A control request arrives as another connection's commit (it writes the
 * store's -wal file), as the stop file appearing, or as SIGINT (which ends
 * any wait with EINTR). inotify on the two folders turns the first two into
 * a readable fd, so the in-flight wait wakes on them at once. */
static void wake_watch(struct ro *r, int slot, const char *path, const char *suffix)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof copy, "%s", path);
	char *slash = strrchr(copy, '/');
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
	snprintf(r->wake_names[slot], sizeof r->wake_names[slot], "%s%s", slash ? slash + 1 : path, suffix);
	if (slash && slash != copy)
		*slash = '\0';
	inotify_add_watch(r->wake_fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
}

static void wake_open(struct ro *r)
{
	r->wake_fd = -1;
	const char *db = store_path(r->db);
	if (!db || !*db || (r->wake_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return;
	wake_watch(r, 0, db, "-wal");
	wake_watch(r, 1, db, "");
	if (r->o->stop_file)
		wake_watch(r, 2, r->o->stop_file, "");
}

/* Reads what inotify has; true when it names one of our files. */
static bool wake_drain(struct ro *r)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;
	while ((n = read(r->wake_fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			for (int i = 0; i < 3 && e->len; i++)
				ours |= *r->wake_names[i] && strcmp(e->name, r->wake_names[i]) == 0;
		}
	}
	return ours;
}

/* Follows the devices in flight: waits until the next device poll is due,
 * or until a control request may have come (1: read it now). 0: poll the
 * devices; -1: the clock was aborted. Our own writes wake it too: it reads
 * what woke it and goes back to waiting for the rest of the time. */
static int wait_flights(struct ro *r, int dpoll)
{
	for (;;) {
		int64_t left = dpoll - (r->ops->now_ms(r->ctx) - r->last_dev_poll);
		if (left <= 0)
			return 0;
		if (!r->ops->wait_fd || r->wake_fd < 0)
			return r->ops->sleep_ms(r->ctx, (int)left) < 0 ? -1 : 0;
		int w = r->ops->wait_fd(r->ctx, r->wake_fd, (int)left);
		if (w <= 0)
			return w < 0 ? -1 : 0;
		if (wake_drain(r) || (r->o->interrupt && *r->o->interrupt))
			return 1;
	}
}

int rollout_run(store *db, int64_t id, const struct rollout_device_ops *ops, void *ops_ctx,
		const struct rollout_opts *o, char *state, size_t statelen, char *err, size_t errlen)
{
	struct ro r = { .db = db, .ops = ops, .ctx = ops_ctx, .o = o, .err = err,
			.errlen = errlen, .wake_fd = -1 };
	if ((r.id = resolve_id(db, id, err, errlen)) < 0 || load(&r))
		return -1;
	int dpoll = o->device_poll_ms > 0 ? o->device_poll_ms : 1000;
	int wpoll = o->pause_wait_poll_ms > 0 ? o->pause_wait_poll_ms : 250;
	int rc = 0;
	if (is(&r, "finished")) {
		snprintf(state, statelen, "%s", r.state);
		return 0;
	}
	stored(db, store_rollout_set_runner(db, r.id, getpid()), err, errlen);
	if (recover(&r)) {
		rc = -1;
		goto out;
	}
	if (is(&r, "created")) {
		r.stage = 1;
		audit(&r, 0, NULL, "ok", "start %s", o->url ? o->url : "");
		set_state(&r, "running", NULL);
	} else if (!is(&r, "stopped")) {
		audit(&r, 0, NULL, "ok", "resume runner (found %s)", r.state);
	}
	r.last_dev_poll = ops->now_ms(ops_ctx);
	wake_open(&r);
	char why[200];
	bool woken = false;
	for (bool first = true;; first = false) {
		enum ctl c = check_control(&r, first || woken, why, sizeof why);
		woken = false;
		if (act(&r, c, why)) {
			snprintf(err, errlen, "left at once (second SIGINT): %d device%s still updating", r.nfl,
				 r.nfl == 1 ? "" : "s");
			rc = -1;
			goto out;
		}
		if (r.nfl > 0 && ops->now_ms(ops_ctx) - r.last_dev_poll >= dpoll)
			poll_flights(&r);
		if (is(&r, "running") && failure_threshold(&r, r.stage, why, sizeof why))
			do_pause(&r, why);
		if (is(&r, "running")) {
			char imei[32];
			int slot = next_waiting(&r, r.stage, imei, sizeof imei);
			if (slot > 0) {
				start_device(&r, slot, imei);
				continue;
			}
			if (r.nfl == 0) { /* stage done: the success threshold */
				int started, committed, failures;
				stage_counts(&r, r.stage, &started, &committed, &failures);
				bool acked = r.ack_stage == r.stage; /* resumed by an operator: go on */
				if (!acked && (started == 0 || committed * 100 < r.success_pct * started)) {
					snprintf(why, sizeof why,
						 "success threshold: stage %d committed %d of %d started (needs %d%%)",
						 r.stage, committed, started, r.success_pct);
					do_pause(&r, why);
				} else if (r.stage < r.n_stages) {
					r.stage++;
					audit(&r, 0, NULL, "ok", "stage %d of %d", r.stage, r.n_stages);
					snprintf(why, sizeof why, "stage %d of %d", r.stage, r.n_stages);
					set_state(&r, "running", why);
				} else {
					audit(&r, 0, NULL, "ok", "finished");
					set_state(&r, "finished", NULL);
				}
				continue;
			}
		}
		if (r.nfl > 0) { /* follow the devices in flight */
			int w = wait_flights(&r, dpoll);
			if (w < 0) {
				snprintf(err, errlen, "clock aborted: %d device%s still updating", r.nfl,
					 r.nfl == 1 ? "" : "s");
				rc = -1;
				goto out;
			}
			if (w == 0)
				poll_flights(&r);
			woken = w == 1;
			continue;
		}
		if (is(&r, "stopped") || is(&r, "finished"))
			break;
		if (is(&r, "paused")) {
			if (!o->wait_when_paused)
				break;
			wall_sleep_ms(wpoll);
			r.last_db_poll = 0; /* read the store on the next turn */
		}
	}
out:
	stored(db, store_rollout_set_runner(db, r.id, 0), err, errlen);
	if (r.wake_fd >= 0)
		close(r.wake_fd);
	free(r.fl);
	snprintf(state, statelen, "%s", r.state);
	return rc;
}

/* ---- control from another terminal ---- */

static void runner_of(void *ctx, const struct store_rollout_row *row)
{
	*(int64_t *)ctx = row->runner_pid;
}

static bool pid_alive(int64_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static bool runner_alive(store *db, int64_t id)
{
	int64_t pid = 0;
	store_rollout_get(db, id, runner_of, &pid);
	return pid_alive(pid);
}

static void state_of(void *ctx, const struct store_rollout_row *row)
{
	snprintf(ctx, 16, "%s", row->state);
}

int rollout_request(store *db, int64_t id, const char *what, const char *operator_, char *err, size_t errlen)
{
	if (strcmp(what, "pause") && strcmp(what, "resume") && strcmp(what, "stop"))
		return snprintf(err, errlen, "unknown request '%s'", what), -1;
	if ((id = resolve_id(db, id, err, errlen)) < 0)
		return -1;
	char st[16] = "";
	if (store_rollout_get(db, id, state_of, st) < 0)
		return stored(db, -1, err, errlen);
	if (!*st)
		return snprintf(err, errlen, "no rollout %lld in the store", (long long)id), -1;
	if (strcmp(st, "finished") == 0 || strcmp(st, "stopped") == 0)
		return snprintf(err, errlen, "rollout %lld is already %s", (long long)id, st), -1;
	if (strcmp(what, "resume") == 0 && strcmp(st, "paused") != 0)
		return snprintf(err, errlen, "rollout %lld is %s, not paused", (long long)id, st), -1;
	if (strcmp(what, "pause") == 0 && strcmp(st, "paused") == 0)
		return snprintf(err, errlen, "rollout %lld is already paused", (long long)id), -1;
	char now[32];
	store_now(now, sizeof now);
	if (stored(db, store_rollout_request_set(db, id, what, now), err, errlen))
		return -1;
	char cmd[80];
	snprintf(cmd, sizeof cmd, "rollout %lld %s", (long long)id, what);
	store_audit_add(db, &(struct store_audit){ .operator_ = operator_, .command = cmd, .result = "requested" });
	/* Nobody running it and no device installing: a stop or pause needs no
	 * runner, so it takes effect here (a resume needs `start --resume`). */
	if (strcmp(what, "resume") != 0 && !runner_alive(db, id) && store_rollout_device_count(db, id, "updating") == 0) {
		const char *to = strcmp(what, "stop") == 0 ? "stopped" : "paused";
		char reason[120];
		snprintf(reason, sizeof reason, "%s requested by %s (no rig running it)", what, operator_);
		if (stored(db, store_rollout_request_apply(db, id, to, reason, now), err, errlen) ||
		    (strcmp(to, "stopped") == 0 && stored(db, store_rollout_skip_waiting(db, id), err, errlen)))
			return -1;
		store_audit_add(db, &(struct store_audit){ .operator_ = operator_, .command = cmd, .result = to });
		return 1;
	}
	return 0;
}

/* ---- reading it back ---- */

static void count_add(void *ctx, const char *s, int n, int in_flight_at_stop)
{
	struct rollout_counts *c = ctx;
	c->in_flight_at_stop += in_flight_at_stop;
	int *slot = strcmp(s, "waiting") == 0		  ? &c->waiting
			    : strcmp(s, "gated_out") == 0	  ? &c->gated_out
			    : strcmp(s, "updating") == 0	  ? &c->updating
			    : strcmp(s, "committed") == 0	  ? &c->committed
			    : strcmp(s, "rolled_back") == 0	  ? &c->rolled_back
			    : strcmp(s, "rejected") == 0	  ? &c->rejected
			    : strcmp(s, "failed") == 0		  ? &c->failed
								  : &c->skipped_after_stop;
	*slot += n;
}

int rollout_counts(store *db, int64_t id, struct rollout_counts *c)
{
	memset(c, 0, sizeof *c);
	return store_rollout_state_counts(db, id, 0, count_add, c) < 0 ? -1 : 0;
}

/* "2026-11-26T08:35:05.123Z" -> "08:35:05". */
static const char *hms(const char *iso, char *buf, size_t len)
{
	if (iso && strlen(iso) >= 19)
		snprintf(buf, len, "%.8s", iso + 11);
	else
		snprintf(buf, len, "?");
	return buf;
}

struct status {
	store *db;
	bool json;
	FILE *out;
	struct json j;
	/* the devices installing when stopped, printed after the table */
	int stop_lines;
	char stopbuf[2048];
	size_t sl;
};

static void status_rollout(void *ctx, const struct store_rollout_row *q)
{
	struct status *s = ctx;
	FILE *out = s->out;
	struct json *j = &s->j;
	struct rollout_counts c;
	rollout_counts(s->db, q->id, &c);
	bool runner_alive = pid_alive(q->runner_pid);
	if (s->json) {
		json_init(j, out, true);
		json_obj_begin(j, NULL);
		json_int(j, "id", q->id);
		const char *const keys[] = { "image", "version", "model", "stages", "cohort", "state",
					     "created_at", "updated_at", "reason" };
		const char *const vals[] = { q->image, q->version, q->model, q->stages, q->cohort, q->state,
					     q->created_at, q->updated_at, q->reason };
		for (int i = 0; i < 9; i++)
			json_str(j, keys[i], vals[i]);
		json_int(j, "success_pct", q->success_pct);
		json_str(j, "max_failures", q->max_failures);
		json_int(j, "device_timeout_ms", q->device_timeout_ms);
		json_int(j, "n_stages", q->n_stages);
		json_int(j, "stage", q->stage);
		json_str(j, "request", q->request);
		json_bool(j, "runner_alive", runner_alive);
		json_str(j, "stopped_at", q->stopped_at);
		json_obj_begin(j, "counts");
		json_int(j, "waiting", c.waiting);
		json_int(j, "gated_out", c.gated_out);
		json_int(j, "updating", c.updating);
		json_int(j, "committed", c.committed);
		json_int(j, "rolled_back", c.rolled_back);
		json_int(j, "rejected", c.rejected);
		json_int(j, "failed", c.failed);
		json_int(j, "skipped_after_stop", c.skipped_after_stop);
		json_int(j, "in_flight_at_stop", c.in_flight_at_stop);
		json_obj_end(j);
		return;
	}
	fprintf(out, "rollout %lld: %s %s (model %s) over %s, stages %s\n", (long long)q->id, q->image, q->version,
		q->model, q->cohort, q->stages);
	fprintf(out, "state: %s, stage %d of %d", q->state, q->stage, q->n_stages);
	if (q->reason)
		fprintf(out, " (%s)", q->reason);
	fprintf(out, "\n");
	if (q->request)
		fprintf(out, "request pending: %s%s\n", q->request,
			runner_alive ? "" : " (no runner: `rig rollout start --resume ID` acts on it)");
	else if ((strcmp(q->state, "running") == 0 || c.updating > 0) && !runner_alive)
		fprintf(out, "no rig is running this rollout: `rig rollout start --resume %lld` continues it"
			     " and asks updating devices where they ended\n", (long long)q->id);
	fprintf(out, "created %s by %s, updated %s; success >= %d%%, pause at %s failed, device timeout %llds\n",
		q->created_at, q->operator_, q->updated_at, q->success_pct, q->max_failures,
		(long long)(q->device_timeout_ms / 1000));
	fprintf(out,
		"devices: %d committed, %d rolled back, %d rejected, %d failed, %d updating, %d gated out, %d "
		"waiting, %d skipped after stop\n",
		c.committed, c.rolled_back, c.rejected, c.failed, c.updating, c.gated_out, c.waiting,
		c.skipped_after_stop);
}

static void status_device(void *ctx, const struct store_rollout_device_row *d)
{
	struct status *s = ctx;
	const char *st = d->state;
	bool at_stop = d->in_flight_at_stop;
	if (s->json) {
		struct json *j = &s->j;
		json_obj_begin(j, NULL);
		json_int(j, "slot", d->slot);
		json_int(j, "stage", d->stage);
		json_str(j, "state", st);
		json_str(j, "imei", d->imei);
		json_str(j, "gate", d->gate);
		json_str(j, "started_at", d->started_at);
		json_str(j, "finished_at", d->finished_at);
		json_str(j, "detail", d->detail);
		json_bool(j, "in_flight_at_stop", at_stop);
		json_obj_end(j);
		return;
	}
	char stbuf[40], b1[16], b2[16];
	snprintf(stbuf, sizeof stbuf, "%s%s", st, at_stop ? "*" : "");
	fprintf(s->out, "%-5d %-5d %-18s %-16s %-9s %-9s %s%s%s\n", d->slot, d->stage, stbuf, d->imei ? d->imei : "-",
		d->started_at ? hms(d->started_at, b1, sizeof b1) : "-",
		d->finished_at ? hms(d->finished_at, b2, sizeof b2) : "-", d->gate ? d->gate : "", d->gate ? ": " : "",
		d->detail ? d->detail : "");
	if (at_stop && s->sl < sizeof s->stopbuf - 100) {
		s->stop_lines++;
		if (strcmp(st, "updating") == 0)
			s->sl += (size_t)snprintf(s->stopbuf + s->sl, sizeof s->stopbuf - s->sl,
						  "  slot %d: still installing\n", d->slot);
		else
			s->sl += (size_t)snprintf(s->stopbuf + s->sl, sizeof s->stopbuf - s->sl,
						  "  slot %d: -> %s at %s\n", d->slot, st, hms(d->finished_at, b2, sizeof b2));
	}
}

int rollout_status(store *db, int64_t id, bool json, FILE *out, char *err, size_t errlen)
{
	if ((id = resolve_id(db, id, err, errlen)) < 0)
		return -1;
	struct status s = { .db = db, .json = json, .out = out };
	int found = store_rollout_get(db, id, status_rollout, &s);
	if (found < 0)
		return stored(db, -1, err, errlen);
	if (found == 0)
		return snprintf(err, errlen, "no rollout %lld in the store", (long long)id), -1;
	if (json)
		json_arr_begin(&s.j, "devices");
	else
		fprintf(out, "%-5s %-5s %-18s %-16s %-9s %-9s %s\n", "slot", "stage", "state", "imei", "started",
			"finished", "detail");
	if (store_rollout_devices_each(db, id, NULL, status_device, &s) < 0)
		return stored(db, -1, err, errlen);
	if (json) {
		json_arr_end(&s.j);
		json_obj_end(&s.j);
		json_end(&s.j);
	} else if (s.stop_lines) {
		fprintf(out, "%d device%s installing when stopped (*):\n%s", s.stop_lines,
			s.stop_lines == 1 ? " was" : "s were", s.stopbuf);
	}
	return 0;
}

/* ---- the real device layer: tracker consoles (the drivers' ota hooks) ---- */

#include "clock.h"
#include "power.h"
#include "rack.h"
#include "tracker.h"

#define CONSOLE_MS 3000

struct rollout_console {
	const struct rack *rack;
	rig_clock *clock;
	char model[64], version[64];
	uint64_t size;
	double min_volts;
	tracker **t; /* per slot index, opened when first needed */
};

static int slot_index(struct rollout_console *rc, int slot)
{
	for (int i = 0; i < rc->rack->n_slots; i++)
		if (rc->rack->slots[i].id == slot)
			return i;
	return -1;
}

static tracker *console_of(struct rollout_console *rc, int slot, char *detail, size_t len)
{
	int i = slot_index(rc, slot);
	if (i < 0) {
		snprintf(detail, len, "slot %d is not in the rack", slot);
		return NULL;
	}
	if (rc->t[i])
		return rc->t[i];
	const struct rack_slot *s = &rc->rack->slots[i];
	char err[400];
	if (slotdev_console(s, NULL, rc->clock ? clock_for_tracker(rc->clock) : NULL, &rc->t[i], err, sizeof err)) {
		snprintf(detail, len, "console: %.200s", err);
		return NULL;
	}
	return rc->t[i];
}

static void console_drop(struct rollout_console *rc, int slot)
{
	int i = slot_index(rc, slot);
	if (i >= 0 && rc->t[i]) {
		tracker_close(rc->t[i]);
		rc->t[i] = NULL;
	}
}

int rollout_console_open(const struct rack *rack, struct rig_clock *clock, const char *image_model,
			 const char *image_version, uint64_t image_size, double min_volts,
			 struct rollout_console **out, char *err, size_t errlen)
{
	struct rollout_console *rc = calloc(1, sizeof *rc);
	if (!rc || !(rc->t = calloc((size_t)(rack->n_slots ? rack->n_slots : 1), sizeof *rc->t))) {
		free(rc);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	rc->rack = rack;
	rc->clock = clock;
	snprintf(rc->model, sizeof rc->model, "%s", image_model);
	snprintf(rc->version, sizeof rc->version, "%s", image_version);
	rc->size = image_size;
	rc->min_volts = min_volts;
	if (clock)
		clock_join(clock);
	*out = rc;
	return 0;
}

void rollout_console_close(struct rollout_console *rc)
{
	if (!rc)
		return;
	for (int i = 0; i < rc->rack->n_slots; i++)
		if (rc->t[i])
			tracker_close(rc->t[i]);
	if (rc->clock)
		clock_leave(rc->clock);
	free(rc->t);
	free(rc);
}

static int con_gate(void *ctx, int slot, char *imei, size_t imeilen, char *gate, size_t gatelen, char *detail,
		    size_t len)
{
	struct rollout_console *rc = ctx;
	int i = slot_index(rc, slot);
	if (i < 0)
		return snprintf(gate, gatelen, "console"), snprintf(detail, len, "slot %d is not in the rack", slot), -1;
	const struct rack_slot *s = &rc->rack->slots[i];
	if (*s->model && strcmp(s->model, rc->model) != 0)
		return snprintf(gate, gatelen, "model"),
		       snprintf(detail, len, "slot holds a %s, the image is for %s", s->model, rc->model), -1;
	if (s->power.kind == RACK_POWER_SUPPLY && rc->min_volts > 0) {
		struct power_dev *dev;
		struct power_status st;
		char e[300];
		snprintf(gate, gatelen, "supply");
		if (slotdev_supply(s, 0, &dev, e, sizeof e))
			return snprintf(detail, len, "supply does not answer: %.200s", e), -1;
		const struct power_driver *drv = dev->driver;
		int r = drv->status(dev, &st);
		if (r)
			snprintf(detail, len, "supply: %.200s", power_error(dev));
		drv->close(dev);
		if (r)
			return -1;
		if (!st.output_on || st.v_out < rc->min_volts)
			return snprintf(detail, len, "supply %.2f V (output %s), needs >= %.2f V", st.v_out,
					st.output_on ? "on" : "off", rc->min_volts), -1;
	}
	snprintf(gate, gatelen, "console");
	tracker *t = console_of(rc, slot, detail, len);
	if (!t)
		return -1;
	/* A device may still be booting (a virtual rack starts at time 0): a
	 * few tries over ten seconds of rig-clock time, as slot_health does. */
	char ping[16];
	int r = -1;
	for (int k = 0; k < 3 && r; k++)
		r = tracker_ping(t, ping, sizeof ping, 3500);
	struct tracker_identity id;
	if (r || tracker_identify(t, &id, CONSOLE_MS))
		return snprintf(detail, len, "%.200s", tracker_error(t)), console_drop(rc, slot), -1;
	snprintf(imei, imeilen, "%s", id.imei);
	if (*id.model && strcmp(id.model, rc->model) != 0)
		return snprintf(gate, gatelen, "model"),
		       snprintf(detail, len, "device says model %s, the image is for %s", id.model, rc->model), -1;
	struct tracker_status st;
	if (tracker_status(t, &st, CONSOLE_MS))
		return snprintf(detail, len, "%.200s", tracker_error(t)), -1;
	if (!st.data_link || !st.gprs || st.signal <= 0)
		return snprintf(gate, gatelen, "connectivity"),
		       snprintf(detail, len, "Data Link:%d GPRS:%d Signal:%d", st.data_link, st.gprs, st.signal), -1;
	bool in_service;
	if (tracker_in_service(t, &in_service, CONSOLE_MS))
		return snprintf(gate, gatelen, "in_service"), snprintf(detail, len, "%.200s", tracker_error(t)), -1;
	if (in_service)
		return snprintf(gate, gatelen, "in_service"), snprintf(detail, len, "ignition on: in service"), -1;
	/* Free storage, when the unit tells it; otherwise the A/B bank is its
	 * own space and the unit checks the size itself. */
	struct tracker_ota o;
	if (tracker_ota_state(t, &o, CONSOLE_MS))
		return snprintf(detail, len, "%.200s", tracker_error(t)), -1;
	if (o.free_kb >= 0 && (uint64_t)o.free_kb * 1024 < rc->size)
		return snprintf(gate, gatelen, "storage"),
		       snprintf(detail, len, "%ld KB free, the image needs %llu KB", o.free_kb,
				(unsigned long long)((rc->size + 1023) / 1024)), -1;
	*gate = '\0';
	return 0;
}

static int outcome_of(const char *st)
{
	if (strcmp(st, "committed") == 0)
		return RO_OUT_COMMITTED;
	if (strcmp(st, "rolled_back") == 0)
		return RO_OUT_ROLLED_BACK;
	if (strcmp(st, "rejected") == 0)
		return RO_OUT_REJECTED;
	if (strcmp(st, "failed") == 0) /* download failed: nothing written */
		return RO_OUT_FAILED;
	return RO_OUT_PENDING;
}

static int con_start(void *ctx, int slot, const char *url, char *detail, size_t len)
{
	struct rollout_console *rc = ctx;
	tracker *t = console_of(rc, slot, detail, len);
	if (!t)
		return RO_OUT_FAILED;
	char why[TRACKER_LINE_MAX + 1];
	int r = tracker_ota_start(t, url, why, sizeof why, CONSOLE_MS);
	if (r == 1) /* deferred by the unit (in service): it installs later */
		return snprintf(detail, len, "%.200s", why), 0;
	if (r == TRACKER_ERR_REFUSED || r == TRACKER_ERR_PARSE) {
		/* the unit refused ("update in progress", bad URL); an image it
		 * refuses shows later as the update state "rejected" */
		snprintf(detail, len, "update refused: %.200s", tracker_error(t));
		return RO_OUT_FAILED;
	}
	if (r)
		return snprintf(detail, len, "%.200s", tracker_error(t)), RO_OUT_FAILED;
	return snprintf(detail, len, "accepted"), 0;
}

static int con_poll(void *ctx, int slot, char *detail, size_t len)
{
	struct rollout_console *rc = ctx;
	tracker *t = console_of(rc, slot, detail, len);
	if (!t)
		return RO_OUT_PENDING; /* the console may come back after the trial boot */
	struct tracker_ota o;
	int r = tracker_ota_state(t, &o, CONSOLE_MS);
	if (r == TRACKER_ERR_GONE) {
		console_drop(rc, slot);
		return RO_OUT_PENDING;
	}
	if (r)
		return RO_OUT_PENDING; /* mid-boot: asked again on the next poll */
	snprintf(detail, len, "%.200s", o.detail);
	return outcome_of(o.state);
}

static int con_recover(void *ctx, int slot, char *detail, size_t len)
{
	struct rollout_console *rc = ctx;
	tracker *t = console_of(rc, slot, detail, len);
	if (!t)
		return RO_OUT_FAILED;
	struct tracker_identity id;
	struct tracker_ota o;
	if (tracker_ota_state(t, &o, CONSOLE_MS) || tracker_identify(t, &id, CONSOLE_MS))
		return snprintf(detail, len, "%.200s", tracker_error(t)), RO_OUT_FAILED;
	snprintf(detail, len, "update state %s, bank %s, pending %s, firmware %.60s", o.state, *o.bank ? o.bank : "-",
		 *o.pending ? o.pending : "-", id.firmware);
	int out = outcome_of(o.state);
	if (out != RO_OUT_PENDING)
		return out;
	bool on_new = strstr(id.firmware, rc->version) != NULL;
	if (!strcmp(o.state, "idle") || !strcmp(o.state, "none"))
		return on_new && !*o.pending ? RO_OUT_COMMITTED : RO_OUT_NOT_STARTED;
	return RO_OUT_PENDING; /* downloading, writing, trial, deferred */
}

static int64_t con_now(void *ctx)
{
	struct rollout_console *rc = ctx;
	if (!rc->clock) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	return clock_unix_ms(rc->clock, clock_now(rc->clock));
}

static int con_sleep(void *ctx, int ms)
{
	struct rollout_console *rc = ctx;
	if (!rc->clock)
		return wall_sleep_ms(ms), 0;
	return clock_sleep_until(rc->clock, clock_now(rc->clock) + ms);
}

static int con_wait_fd(void *ctx, int fd, int ms)
{
	struct rollout_console *rc = ctx;
	if (rc->clock)
		return clock_wait_fd(rc->clock, fd, clock_now(rc->clock) + ms);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, ms);
	return n < 0 ? (errno == EINTR ? 1 : -1) : n > 0; /* a signal (SIGINT) is news too */
}

const struct rollout_device_ops rollout_console_ops = {
	.gate = con_gate,
	.start = con_start,
	.poll = con_poll,
	.recover = con_recover,
	.now_ms = con_now,
	.sleep_ms = con_sleep,
	.wait_fd = con_wait_fd,
};
