/*
 * test_rollout.c - the staged rollout state machine (rig/rollout.c) against
 * a fake device layer and a real SQLite store.
 *
 * The fake devices live in shared memory (mmap MAP_SHARED), so they are the
 * "hardware": they outlive a rig process that is SIGKILLed mid-rollout, and
 * the rig that resumes from the store finds them where they really ended.
 * The fake clock moves only when the rollout sleeps, so every outcome is
 * decided by the order of events, never by timing.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rollout.h"
#include "store.h"
#include "support.h"

#define MAXS 65

enum plan { PLAN_COMMIT, PLAN_ROLLBACK, PLAN_REJECT, PLAN_HANG, PLAN_GATE_IGN };
enum stop_mode { STOP_NONE, STOP_DB, STOP_FILE, STOP_SIGINT, STOP_PAUSE };

struct fake_dev {
	int plan;
	int phase;        /* 0 idle, 1 installing, 2 done */
	int64_t done_at;
	int starts;       /* update starts received */
};

struct fake {
	struct fake_dev dev[MAXS]; /* by slot id */
	int64_t now;
	int install_ms;
	int starts;
	int order[4 * MAXS];
	int block_at_start;   /* that start never returns (the rig is killed there) */
	bool block_before_receive; /* ... and the device never got the command */
	volatile int blocked;
	int stop_after_starts;
	int stop_mode;
	int starts_at_stop;
	char db_path[300];
	char stop_file[300];
	int64_t id;
	volatile sig_atomic_t intr;
};

static char dir[256], db_path[300];
static struct fake *F;

static void setup(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(db_path, sizeof db_path, "%s/trackrig.db", dir);
	F = mmap(NULL, sizeof *F, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(F, MAP_FAILED);
	memset(F, 0, sizeof *F);
	F->install_ms = 5000;
	snprintf(F->db_path, sizeof F->db_path, "%s", db_path);
}

static void teardown(void)
{
	munmap(F, sizeof *F);
	support_rmtree(dir);
}

TestSuite(rollout, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the fake device layer ---- */

static int f_gate(void *ctx, int slot, char *imei, size_t imeilen, char *gate, size_t gatelen, char *detail,
		  size_t len)
{
	struct fake *f = ctx;
	snprintf(imei, imeilen, "3520940872300%02d", slot);
	if (f->dev[slot].plan == PLAN_GATE_IGN) {
		snprintf(gate, gatelen, "in_service");
		snprintf(detail, len, "ignition on (DI1:1)");
		return -1;
	}
	return 0;
}

static void issue_stop(struct fake *f)
{
	f->starts_at_stop = f->starts;
	if (f->stop_mode == STOP_DB || f->stop_mode == STOP_PAUSE) {
		/* Another terminal: its own connection to the store. */
		store *db;
		char err[300];
		cr_assert_eq(store_open(f->db_path, &db, err, sizeof err), 0, "%s", err);
		cr_assert_eq(rollout_request(db, f->id, f->stop_mode == STOP_DB ? "stop" : "pause", "tester", err,
					     sizeof err),
			     0, "%s", err);
		store_close(db);
	} else if (f->stop_mode == STOP_FILE) {
		FILE *fp = fopen(f->stop_file, "w");
		cr_assert_not_null(fp);
		fclose(fp);
	} else if (f->stop_mode == STOP_SIGINT) {
		f->intr = 1; /* what the SIGINT handler does */
	}
}

static int f_start(void *ctx, int slot, const char *url, char *detail, size_t len)
{
	struct fake *f = ctx;
	(void)url;
	f->starts++;
	f->order[f->starts - 1] = slot;
	if (f->block_at_start == f->starts && f->block_before_receive) {
		f->blocked = 1;
		for (;;)
			pause();
	}
	struct fake_dev *d = &f->dev[slot];
	d->starts++;
	if (d->plan == PLAN_REJECT) {
		snprintf(detail, len, "rejected reason=signature");
		return RO_OUT_REJECTED;
	}
	d->phase = 1;
	d->done_at = f->now + f->install_ms;
	if (f->block_at_start == f->starts) {
		f->blocked = 1;
		for (;;)
			pause();
	}
	if (f->stop_after_starts == f->starts)
		issue_stop(f);
	snprintf(detail, len, "FOTA:accepted");
	return 0;
}

static int outcome(struct fake *f, int slot, char *detail, size_t len)
{
	struct fake_dev *d = &f->dev[slot];
	if (d->phase == 0)
		return RO_OUT_NOT_STARTED;
	if (d->phase == 1 && (f->now < d->done_at || d->plan == PLAN_HANG))
		return RO_OUT_PENDING;
	d->phase = 2;
	if (d->plan == PLAN_ROLLBACK) {
		snprintf(detail, len, "@FOTA state=rolled_back bank=A reason=boot_limit");
		return RO_OUT_ROLLED_BACK;
	}
	snprintf(detail, len, "@FOTA state=committed bank=B ver=2.0.0");
	return RO_OUT_COMMITTED;
}

static int f_poll(void *ctx, int slot, char *detail, size_t len)
{
	return outcome(ctx, slot, detail, len);
}

static int f_recover(void *ctx, int slot, char *detail, size_t len)
{
	return outcome(ctx, slot, detail, len);
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

static const struct rollout_device_ops fake_ops = { f_gate, f_start, f_poll, f_recover, f_now, f_sleep, NULL };

/* ---- helpers ---- */

static store *open_db(void)
{
	store *db;
	char err[300];
	cr_assert_eq(store_open(db_path, &db, err, sizeof err), 0, "%s", err);
	return db;
}

static int64_t create(store *db, int n, const char *stages, const char *maxf, int success)
{
	int slots[MAXS];
	for (int i = 0; i < n; i++)
		slots[i] = i + 1;
	struct rollout_spec sp = { .image = "/fw/good-2.0.0.fw", .version = "2.0.0", .model = "FMB920",
				   .stages = stages, .cohort = "group=a", .success_pct = success,
				   .device_timeout_ms = 1800000, .slots = slots, .n_slots = n };
	char err[300];
	cr_assert_eq(rollout_threshold_parse(maxf, &sp.max_failures, err, sizeof err), 0);
	int64_t id = rollout_create(db, &sp, "tester", err, sizeof err);
	cr_assert_gt(id, 0, "%s", err);
	F->id = id;
	return id;
}

static struct rollout_opts opts(void)
{
	struct rollout_opts o = { .url = "http://127.0.0.1:8080/good-2.0.0.fw", .operator_ = "tester",
				  .db_poll_ms = 250, .db_poll_every_step = true, .device_poll_ms = 1000,
				  .wait_when_paused = false, .interrupt = &F->intr };
	return o;
}

static void run(store *db, int64_t id, const struct rollout_opts *o, const char *want_state)
{
	char state[16], err[300];
	cr_assert_eq(rollout_run(db, id, &fake_ops, F, o, state, sizeof state, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(state, want_state);
}

static char *status_text(store *db, int64_t id, bool json)
{
	char *buf = NULL, err[300];
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_eq(rollout_status(db, id, json, m, err, sizeof err), 0, "%s", err);
	fclose(m);
	return buf;
}

static const char *dev_state(store *db, int64_t id, int slot, char *buf, size_t len, char *detail, size_t dlen)
{
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(store_db(db),
					"SELECT state, coalesce(detail, ''), coalesce(gate, '') FROM rollout_devices"
					" WHERE rollout_id = ?1 AND slot = ?2",
					-1, &q, NULL),
		     SQLITE_OK);
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, slot);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(q, 0));
	if (detail)
		snprintf(detail, dlen, "%s|%s", (const char *)sqlite3_column_text(q, 1),
			 (const char *)sqlite3_column_text(q, 2));
	sqlite3_finalize(q);
	return buf;
}

static int audit_count(store *db, const char *needle)
{
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(store_db(db), "SELECT count(*) FROM audit WHERE instr(command, ?1) > 0", -1,
					&q, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(q, 1, needle, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	int n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return n;
}

/* ---- stage sizes and parsing ---- */

Test(rollout, stage_sizes_over_8_and_64)
{
	struct rollout_stages st;
	char err[200];
	int sz[ROLLOUT_MAX_STAGES];
	cr_assert_eq(rollout_stages_parse("1,10%,50%,100%", &st, err, sizeof err), 0, "%s", err);
	cr_assert_eq(st.n, 4);
	/* 8: 1, ceil(0.8)=1 -> at least one more = 2, 4, 8 */
	cr_assert_eq(rollout_stage_sizes(&st, 8, sz), 8);
	int want8[] = { 1, 1, 2, 4 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sz[i], want8[i], "8 slots, stage %d: %d", i + 1, sz[i]);
	/* 64: 1, ceil(6.4)=7, 32, 64 */
	cr_assert_eq(rollout_stage_sizes(&st, 64, sz), 64);
	int want64[] = { 1, 6, 25, 32 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sz[i], want64[i], "64 slots, stage %d: %d", i + 1, sz[i]);
	/* Fewer devices than stages: no empty stage until the cohort is used up. */
	cr_assert_eq(rollout_stage_sizes(&st, 2, sz), 2);
	cr_assert(sz[0] == 1 && sz[1] == 1 && sz[2] == 0 && sz[3] == 0);
	/* A canary spec that does not reach 100% covers only its stages. */
	cr_assert_eq(rollout_stages_parse("2,5", &st, err, sizeof err), 0);
	cr_assert_eq(rollout_stage_sizes(&st, 64, sz), 5);
}

Test(rollout, bad_specs_are_refused)
{
	struct rollout_stages st;
	struct rollout_threshold t;
	char err[200];
	const char *bad[] = { "", "0", "abc", "150%", "10%,5%", "1,,2", "1;2", "-1", "5,3" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(rollout_stages_parse(bad[i], &st, err, sizeof err), -1, "'%s' accepted", bad[i]);
	cr_assert_eq(rollout_threshold_parse("20%", &t, err, sizeof err), 0);
	cr_assert(t.percent && t.value == 20);
	cr_assert_eq(rollout_threshold_parse("1", &t, err, sizeof err), 0);
	cr_assert(!t.percent && t.value == 1);
	cr_assert_eq(rollout_threshold_parse("x", &t, err, sizeof err), -1);
	cr_assert_eq(rollout_threshold_parse("101%", &t, err, sizeof err), -1);
	int64_t ms;
	cr_assert_eq(rollout_duration_parse("30m", &ms), 0);
	cr_assert_eq(ms, 1800000);
	cr_assert_eq(rollout_duration_parse("1500ms", &ms), 0);
	cr_assert_eq(ms, 1500);
	cr_assert_eq(rollout_duration_parse("90", &ms), 0);
	cr_assert_eq(ms, 90000);
	cr_assert_eq(rollout_duration_parse("5x", &ms), -1);
	cr_assert_eq(rollout_duration_parse("0s", &ms), -1);
}

/* ---- the state machine ---- */

Test(rollout, good_image_over_64_slots_finishes_in_stage_order)
{
	store *db = open_db();
	int64_t id = create(db, 64, "1,10%,50%,100%", "1", 90);
	struct rollout_opts o = opts();
	run(db, id, &o, "finished");
	struct rollout_counts c;
	cr_assert_eq(rollout_counts(db, id, &c), 0);
	cr_assert_eq(c.committed, 64);
	cr_assert_eq(F->starts, 64);
	/* Stages one after another: slot order, every device once. */
	for (int i = 0; i < 64; i++)
		cr_assert_eq(F->order[i], i + 1);
	cr_assert_eq(audit_count(db, " update http"), 64);
	cr_assert_eq(audit_count(db, " stage 4 of 4"), 1);
	cr_assert_eq(audit_count(db, " finished"), 1);
	/* A finished rollout takes no more requests. */
	char err[200];
	cr_assert_eq(rollout_request(db, id, "stop", "tester", err, sizeof err), -1);
	store_close(db);
}

Test(rollout, gated_out_device_is_skipped_with_its_gate)
{
	store *db = open_db();
	F->dev[6].plan = PLAN_GATE_IGN; /* stage 4 of 8 */
	int64_t id = create(db, 8, "1,10%,50%,100%", "1", 90);
	struct rollout_opts o = opts();
	run(db, id, &o, "finished");
	char st[32], detail[400];
	cr_assert_str_eq(dev_state(db, id, 6, st, sizeof st, detail, sizeof detail), "gated_out");
	cr_assert(strstr(detail, "|in_service"), "%s", detail);
	cr_assert_eq(F->dev[6].starts, 0, "a gated-out device was told to update");
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	cr_assert_eq(c.committed, 7);
	cr_assert_eq(audit_count(db, "gated out (in_service)"), 1);
	store_close(db);
}

Test(rollout, failure_threshold_pauses_then_resume_goes_on)
{
	store *db = open_db();
	F->dev[3].plan = PLAN_ROLLBACK; /* stage 3 of 8: slots 3, 4 */
	int64_t id = create(db, 8, "1,10%,50%,100%", "1", 50);
	struct rollout_opts o = opts();
	run(db, id, &o, "paused");
	char st[32];
	cr_assert_str_eq(dev_state(db, id, 3, st, sizeof st, NULL, 0), "rolled_back");
	/* The stage-3 device already installing was followed to its end ... */
	cr_assert_str_eq(dev_state(db, id, 4, st, sizeof st, NULL, 0), "committed");
	/* ... and no stage-4 device started. */
	cr_assert_eq(F->starts, 4);
	for (int s = 5; s <= 8; s++)
		cr_assert_str_eq(dev_state(db, id, s, st, sizeof st, NULL, 0), "waiting");
	char *txt = status_text(db, id, false);
	cr_assert(strstr(txt, "state: paused") && strstr(txt, "failure threshold"), "%s", txt);
	free(txt);
	/* An operator looks and resumes: the failures so far are accepted. */
	char err[200];
	cr_assert_eq(rollout_request(db, id, "resume", "tester", err, sizeof err), 0, "%s", err);
	run(db, id, &o, "finished");
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	cr_assert_eq(c.committed, 7);
	cr_assert_eq(c.rolled_back, 1);
	cr_assert_eq(audit_count(db, " pause ("), 1);
	cr_assert_eq(audit_count(db, " resume ("), 1);
	store_close(db);
}

Test(rollout, percent_failure_threshold_over_64)
{
	store *db = open_db();
	/* Stage 3 of 64 is slots 8..32 (25 devices): 4 rollbacks = 16% < 20%. */
	for (int s = 8; s < 12; s++)
		F->dev[s].plan = PLAN_ROLLBACK;
	int64_t id = create(db, 64, "1,10%,50%,100%", "20%", 80);
	struct rollout_opts o = opts();
	run(db, id, &o, "finished");
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	cr_assert_eq(c.rolled_back, 4);
	cr_assert_eq(c.committed, 60);
	store_close(db);
	/* 5 of 25 = 20%: reached, pauses before stage 4. */
	teardown();
	setup();
	db = open_db();
	for (int s = 8; s < 13; s++)
		F->dev[s].plan = PLAN_ROLLBACK;
	id = create(db, 64, "1,10%,50%,100%", "20%", 80);
	o = opts();
	run(db, id, &o, "paused");
	cr_assert_eq(F->starts, 32);
	store_close(db);
}

Test(rollout, success_threshold_holds_the_next_stage)
{
	store *db = open_db();
	/* Stage 4 of 8 (slots 5..8) would be the last; use 16 slots so it is not. */
	F->dev[5].plan = PLAN_REJECT;
	int64_t id = create(db, 16, "1,2,4,8,100%", "100", 90);
	struct rollout_opts o = opts();
	run(db, id, &o, "paused");
	/* Stage 4 = slots 5..8: 3 of 4 committed = 75% < 90%. */
	cr_assert_eq(F->starts, 8);
	char st[32], detail[400];
	cr_assert_str_eq(dev_state(db, id, 5, st, sizeof st, detail, sizeof detail), "rejected");
	cr_assert(strstr(detail, "signature"), "%s", detail);
	char *txt = status_text(db, id, false);
	cr_assert(strstr(txt, "success threshold: stage 4 committed 3 of 4"), "%s", txt);
	free(txt);
	store_close(db);
}

Test(rollout, device_timeout_fails_the_device)
{
	store *db = open_db();
	F->dev[1].plan = PLAN_HANG;
	int slots[] = { 1, 2 };
	struct rollout_spec sp = { .image = "x.fw", .version = "2.0.0", .model = "FMB920", .stages = "1,100%",
				   .cohort = "all", .success_pct = 90, .device_timeout_ms = 60000, .slots = slots,
				   .n_slots = 2, .max_failures = { 1, false } };
	char err[200];
	int64_t id = rollout_create(db, &sp, "tester", err, sizeof err);
	cr_assert_gt(id, 0, "%s", err);
	struct rollout_opts o = opts();
	run(db, id, &o, "paused");
	char st[32], detail[400];
	cr_assert_str_eq(dev_state(db, id, 1, st, sizeof st, detail, sizeof detail), "failed");
	cr_assert(strstr(detail, "per-device timeout"), "%s", detail);
	cr_assert_geq(F->now, 60000);
	cr_assert_eq(F->dev[2].starts, 0);
	store_close(db);
}

/* Stop in each stage, by each route: no device starts after the stop, the
 * one installing is followed to its end and reported as such. */
static void stop_in_every_stage(int mode)
{
	int first_start[] = { 1, 2, 3, 5 }; /* first start of each stage over 8: sizes 1,1,2,4 */
	for (int stage = 0; stage < 4; stage++) {
		if (stage)
			setup();
		store *db = open_db();
		int64_t id = create(db, 8, "1,10%,50%,100%", "1", 90);
		snprintf(F->stop_file, sizeof F->stop_file, "%s/STOP", dir);
		F->stop_mode = mode;
		F->stop_after_starts = first_start[stage];
		struct rollout_opts o = opts();
		o.stop_file = F->stop_file;
		run(db, id, &o, "stopped");
		cr_assert_eq(F->starts, F->starts_at_stop, "stage %d: %d starts, stop came after %d", stage + 1,
			     F->starts, F->starts_at_stop);
		struct rollout_counts c;
		rollout_counts(db, id, &c);
		cr_assert_eq(c.in_flight_at_stop, 1, "stage %d", stage + 1);
		cr_assert_eq(c.committed, F->starts, "stage %d: the in-flight device ended committed", stage + 1);
		cr_assert_eq(c.skipped_after_stop, 8 - F->starts);
		cr_assert_eq(c.updating + c.waiting, 0);
		char st[32];
		cr_assert_str_eq(dev_state(db, id, F->starts, st, sizeof st, NULL, 0), "committed");
		char *txt = status_text(db, id, false);
		char want[80];
		snprintf(want, sizeof want, "slot %d: -> committed at", F->starts);
		cr_assert(strstr(txt, "1 device was installing when stopped") && strstr(txt, want), "%s", txt);
		free(txt);
		cr_assert_eq(audit_count(db, " stop ("), 1);
		store_close(db);
		teardown();
	}
	setup(); /* for the suite's fini */
}

Test(rollout, stop_via_store_in_every_stage)
{
	stop_in_every_stage(STOP_DB);
}

Test(rollout, stop_file_in_every_stage)
{
	stop_in_every_stage(STOP_FILE);
}

Test(rollout, sigint_in_every_stage)
{
	stop_in_every_stage(STOP_SIGINT);
}

Test(rollout, pause_request_then_stop_while_paused)
{
	store *db = open_db();
	int64_t id = create(db, 8, "1,10%,50%,100%", "1", 90);
	F->stop_mode = STOP_PAUSE;
	F->stop_after_starts = 3;
	struct rollout_opts o = opts();
	run(db, id, &o, "paused");
	cr_assert_eq(F->starts, 3);
	char st[32], err[200];
	cr_assert_str_eq(dev_state(db, id, 3, st, sizeof st, NULL, 0), "committed");
	/* Nobody runs it any more and nothing is installing: the stop takes
	 * effect at once, and a later runner finds it stopped. */
	cr_assert_eq(rollout_request(db, id, "stop", "tester", err, sizeof err), 1, "%s", err);
	char *txt = status_text(db, id, false);
	cr_assert(strstr(txt, "state: stopped") && strstr(txt, "5 skipped after stop"), "%s", txt);
	free(txt);
	run(db, id, &o, "stopped");
	cr_assert_eq(F->starts, 3);
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	cr_assert_eq(c.skipped_after_stop, 5);
	cr_assert_eq(rollout_request(db, id, "resume", "tester", err, sizeof err), -1);
	store_close(db);
}

Test(rollout, status_json_and_text)
{
	store *db = open_db();
	F->dev[2].plan = PLAN_GATE_IGN;
	int64_t id = create(db, 4, "1,100%", "5", 50);
	struct rollout_opts o = opts();
	run(db, id, &o, "finished");
	char *js = status_text(db, id, true);
	cr_assert(strstr(js, "\"state\": \"finished\""), "%s", js);
	cr_assert(strstr(js, "\"committed\": 3"), "%s", js);
	cr_assert(strstr(js, "\"gate\": \"in_service\""), "%s", js);
	free(js);
	char *txt = status_text(db, 0, false); /* 0: the newest */
	cr_assert(strstr(txt, "devices: 3 committed, 0 rolled back"), "%s", txt);
	cr_assert(strstr(txt, "352094087230002"), "%s", txt);
	free(txt);
	char err[200];
	cr_assert_eq(rollout_status(db, 999, false, stdout, err, sizeof err), -1);
	store_close(db);
}

/* ---- the rig killed mid-rollout and restarted ---- */

static void killed_mid_stage(bool received)
{
	store *db = open_db();
	int64_t id = create(db, 8, "1,10%,50%,100%", "1", 90);
	store_close(db);
	F->block_at_start = 6; /* stage 4: slot 5 in flight, slot 6 being told */
	F->block_before_receive = !received;
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		store *cdb;
		char err[300], state[16];
		if (store_open(db_path, &cdb, err, sizeof err))
			_exit(3);
		struct rollout_opts o = opts();
		rollout_run(cdb, id, &fake_ops, F, &o, state, sizeof state, err, sizeof err);
		_exit(4); /* never reached: start 6 blocks */
	}
	for (int i = 0; i < 1000 && !F->blocked; i++)
		usleep(10000);
	cr_assert(F->blocked, "the rollout never reached start 6");
	kill(pid, SIGKILL);
	int ws;
	waitpid(pid, &ws, 0);
	cr_assert(WIFSIGNALED(ws));
	/* What the store says right after the crash. */
	db = open_db();
	char st[32], detail[400];
	char *txt = status_text(db, id, false);
	cr_assert(strstr(txt, "state: running"), "%s", txt);
	cr_assert(strstr(txt, "no rig is running this rollout"), "%s", txt);
	free(txt);
	cr_assert_str_eq(dev_state(db, id, 5, st, sizeof st, NULL, 0), "updating");
	cr_assert_str_eq(dev_state(db, id, 6, st, sizeof st, NULL, 0), "updating");
	/* While the rig was dead, the devices went on: slot 5 finished. */
	F->now += F->install_ms;
	F->block_at_start = 0;
	struct rollout_opts o = opts();
	run(db, id, &o, "finished");
	cr_assert_str_eq(dev_state(db, id, 5, st, sizeof st, detail, sizeof detail), "committed");
	cr_assert(strstr(detail, "after rig restart"), "%s", detail);
	cr_assert_str_eq(dev_state(db, id, 6, st, sizeof st, detail, sizeof detail), "committed");
	cr_assert_eq(F->dev[6].starts, 1, "slot 6 told to update %d times", F->dev[6].starts);
	/* The update sent before the crash is in the audit trail; a device that
	 * never got it is told again. */
	cr_assert_eq(audit_count(db, "slot 6 update http"), received ? 1 : 2);
	struct rollout_counts c;
	rollout_counts(db, id, &c);
	cr_assert_eq(c.committed, 8);
	cr_assert_eq(audit_count(db, "recovered after rig restart"), 2);
	store_close(db);
}

Test(rollout, killed_mid_stage_resumes_truthfully)
{
	killed_mid_stage(true);
}

Test(rollout, killed_before_the_device_got_the_command)
{
	killed_mid_stage(false);
}

Test(rollout, killed_then_device_rolled_back_while_rig_was_dead)
{
	store *db = open_db();
	F->dev[5].plan = PLAN_ROLLBACK;
	int64_t id = create(db, 8, "1,10%,50%,100%", "1", 90);
	store_close(db);
	F->block_at_start = 6;
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		store *cdb;
		char err[300], state[16];
		if (store_open(db_path, &cdb, err, sizeof err))
			_exit(3);
		struct rollout_opts o = opts();
		rollout_run(cdb, id, &fake_ops, F, &o, state, sizeof state, err, sizeof err);
		_exit(4);
	}
	for (int i = 0; i < 1000 && !F->blocked; i++)
		usleep(10000);
	cr_assert(F->blocked);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	F->now += F->install_ms;
	F->block_at_start = 0;
	db = open_db();
	struct rollout_opts o = opts();
	run(db, id, &o, "paused"); /* the rollback found on restart reaches the failure threshold */
	char st[32], detail[400];
	cr_assert_str_eq(dev_state(db, id, 5, st, sizeof st, detail, sizeof detail), "rolled_back");
	cr_assert(strstr(detail, "after rig restart") && strstr(detail, "rolled_back"), "%s", detail);
	cr_assert_str_eq(dev_state(db, id, 6, st, sizeof st, NULL, 0), "committed");
	cr_assert_eq(F->starts, 6);
	store_close(db);
}

/* ---- end to end: `rig rollout` on a virtual simulated rack with OTA ---- */

static int e2e(const char *image, const char *stages, char *out, size_t outlen, struct simrack_proc *p)
{
	char fwdir[400], key[450], bin[PATH_MAX], fwgen[PATH_MAX], rackfile[PATH_MAX], img[450], db[350];
	snprintf(fwdir, sizeof fwdir, "%s/fw", dir);
	snprintf(key, sizeof key, "%s/vendor.pub.pem", fwdir);
	snprintf(img, sizeof img, "%s/%s", fwdir, image);
	snprintf(db, sizeof db, "%s/e2e.db", dir);
	char *gen[] = { (char *)support_bin("fwgen", fwgen, sizeof fwgen), fwdir, NULL };
	cr_assert_eq(support_run(gen, out, outlen), 0, "fwgen: %s", out);
	/* Agent units: a Teltonika unit takes no update from a rig. */
	const char *extra[] = { "--vendor-key", key, "--virtual", "--profiles", "agent_reference", NULL };
	cr_assert_eq(simrack_start_args(p, 4, 1, extra), 0);
	char *argv[] = { (char *)support_bin("rig", bin, sizeof bin), "rollout", "start", img, "--rack",
			 (char *)simrack_rackfile(p, rackfile, sizeof rackfile), "--stages", (char *)stages, "--db", db,
			 "--no-wait", "--operator", "e2e", NULL };
	return support_run(argv, out, outlen);
}

Test(rollout, e2e_good_image_on_virtual_rack)
{
	char out[16384];
	struct simrack_proc p;
	int rc = e2e("good-2.0.0.fw", "1,50%,100%", out, sizeof out, &p);
	simrack_stop(&p);
	cr_assert_eq(rc, 0, "rig rollout: %d\n%s", rc, out);
	cr_assert(strstr(out, "state: finished"), "%s", out);
	cr_assert(strstr(out, "devices: 4 committed"), "%s", out);
	cr_assert(strstr(out, "committed: FOTA:committed bank=B pending=-"), "the unit's own word: %s", out);
}

Test(rollout, e2e_crash_loop_image_pauses_after_the_canary)
{
	char out[16384];
	struct simrack_proc p;
	int rc = e2e("crash-loop.fw", "1,50%,100%", out, sizeof out, &p);
	simrack_stop(&p);
	cr_assert_eq(rc, 1, "rig rollout: %d\n%s", rc, out);
	cr_assert(strstr(out, "state: paused") && strstr(out, "failure threshold"), "%s", out);
	cr_assert(strstr(out, "devices: 0 committed, 1 rolled back"), "%s", out);
	cr_assert(strstr(out, "3 waiting"), "the canary's failure must hold the other slots: %s", out);
}

/* The rollout's page: where each stage stands after the canary crash-looped
 * (stage 1: one rolled back; stages 2 and 3: not started), with its chart,
 * opened in headless Chromium (tests/browser/check-html). */
Test(rollout, e2e_report_shows_progress_per_stage)
{
	char out[16384];
	struct simrack_proc p;
	int rc = e2e("crash-loop.fw", "1,50%,100%", out, sizeof out, &p);
	simrack_stop(&p);
	cr_assert_eq(rc, 1, "rig rollout: %d\n%s", rc, out);
	char bin[PATH_MAX], db[350], page[400];
	snprintf(db, sizeof db, "%s/e2e.db", dir);
	snprintf(page, sizeof page, "%s/rollout.html", dir);
	char *argv[] = { (char *)support_bin("rig", bin, sizeof bin), "rollout", "report", "--db", db, "--html", page, NULL };
	cr_assert_eq(support_run(argv, out, sizeof out), 0, "rig rollout report: %s", out);
	char *html = support_read_file(page);
	cr_assert(html, "page written");
	cr_expect(strstr(html, "Rollout 1: paused"), "the rollout's state in the title");
	cr_expect(strstr(html, "failure threshold"), "why it stands");
	const char *stages = strstr(html, "id=\"stages\"");
	cr_assert(stages);
	cr_expect(strstr(stages, "<td>1</td><td>0</td><td>1</td><td>0</td><td>0</td>"),
		  "stage 1: 0 committed, 1 failed, 0 updating, 0 not started");
	cr_expect(strstr(stages, "<td>2</td><td>0</td><td>0</td><td>0</td><td>1</td>"), "stage 2: 1 not started");
	cr_expect(strstr(stages, "<td>3</td><td>0</td><td>0</td><td>0</td><td>2</td>"), "stage 3: 2 not started");
	cr_expect(strstr(html, "<svg"), "the progress chart");
	cr_expect(strstr(html, "rolled_back"), "the canary's state among the devices");
	free(html);
	char *chk[] = { "/bin/sh", "tests/browser/check-html", "--min-svg", "1", page, NULL };
	cr_expect_eq(support_run(chk, out, sizeof out), 0, "the rollout page in headless Chromium: %s", out);
	char *none[] = { bin, "rollout", "report", "7", "--db", db, "--html", page, NULL };
	cr_expect_eq(support_run(none, out, sizeof out), 2, "an unknown rollout: exit 2");
	cr_expect(strstr(out, "rollout 7: not in the store"), "%s", out);
}
