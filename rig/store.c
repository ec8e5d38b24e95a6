/*
 * store.c - the results store on SQLite; the contract is in store.h, the
 * schema in store_schema.c, the tables and queries in docs/results-store.md.
 *
 * Several rig processes share one file (a nightly run writing, `rig audit`
 * reading in another terminal), hence WAL, which lets readers and the one
 * writer proceed together, and a busy timeout for writers that meet.
 * Every statement is prepared once at open and kept: later modules push a
 * million telemetry rows through here, and re-preparing would dominate.
 */
#include "store.h"
#include "store_impl.h"
#include "timefmt.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#ifndef TRACKRIG_VERSION
#error "TRACKRIG_VERSION must be defined (the Makefile passes -DTRACKRIG_VERSION=...)"
#endif

/* Defined in store_schema.c; migration N is store_migrations[N - 1] and there
 * are store_schema_latest() of them. */
extern const char *const store_migrations[];

/* 'TRKR' in the file header, stamped by every migration, so a file of ours
 * is told from someone else's SQLite file (file(1) shows it too). */
#define STORE_APPLICATION_ID 0x54524B52

/* Writers hold the lock for milliseconds (a row, a batch of telemetry); five
 * seconds rides over any of them yet still fails visibly when a hung process
 * keeps a transaction open. */
#define STORE_BUSY_MS 5000

/* "2026-11-26T08:35:05.123Z" and its NUL, with room to spare. */
#define STORE_TIME_LEN 32

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_USER_VERSION,
	ST_RUN_BEGIN,
	ST_RUN_END,
	ST_DEVICE_SEEN,
	ST_STEP_BEGIN,
	ST_STEP_END,
	ST_MEASUREMENT_ADD,
	ST_EVENT_ADD,
	ST_AUDIT_ADD,
	/* One per filter combination, so each query can use its index (a single
	 * "?1 IS NULL OR imei = ?1" statement cannot). ?1 is the IMEI, ?2 SINCE. */
	ST_AUDIT_ALL,
	ST_AUDIT_IMEI,
	ST_AUDIT_SINCE,
	ST_AUDIT_IMEI_SINCE,
	ST_RESULT_ADD,
	ST_SAMPLE_ADD,
	ST_COUNT
};

struct stmt_def {
	const char *what; /* names the statement in error messages */
	const char *sql;
};

#define AUDIT_COLUMNS \
	"SELECT id, run_id, at, operator, station, slot, port, imei, command, result FROM audit "
/* Slot (?3) and run (?4) narrow what the IMEI/time index found; NULL matches all. */
#define AUDIT_SLOT_RUN "(?3 IS NULL OR slot = ?3) AND (?4 IS NULL OR run_id = ?4)"

static const struct stmt_def stmt_defs[ST_COUNT] = {
	[ST_BEGIN] = { "begin", "BEGIN IMMEDIATE" },
	[ST_COMMIT] = { "commit", "COMMIT" },
	[ST_ROLLBACK] = { "rollback", "ROLLBACK" },
	[ST_USER_VERSION] = { "read schema version", "PRAGMA user_version" },
	[ST_RUN_BEGIN] = { "insert run",
		"INSERT INTO runs (started_at, command, station, rack, operator, seed, rig_version,"
		"                  owner_host, owner_pid, owner_start)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)" },
	[ST_RUN_END] = { "end run",
		"UPDATE runs SET finished_at = ?1, outcome = ?2 WHERE id = ?3" },
	/* NULL fields keep what is stored; RETURNING gives the id on both the
	 * insert and the update path, which last_insert_rowid() would not. */
	[ST_DEVICE_SEEN] = { "upsert device",
		"INSERT INTO devices (imei, iccid, serial, vendor, model, hw_rev, firmware,"
		"                     first_seen, last_seen)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
		" ON CONFLICT (imei) DO UPDATE SET"
		"  iccid = coalesce(excluded.iccid, iccid),"
		"  serial = coalesce(excluded.serial, serial),"
		"  vendor = coalesce(excluded.vendor, vendor),"
		"  model = coalesce(excluded.model, model),"
		"  hw_rev = coalesce(excluded.hw_rev, hw_rev),"
		"  firmware = coalesce(excluded.firmware, firmware),"
		"  last_seen = excluded.last_seen"
		" RETURNING id" },
	[ST_STEP_BEGIN] = { "insert step",
		"INSERT INTO steps (run_id, slot, scenario, idx, kind, text, started_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	[ST_STEP_END] = { "end step",
		"UPDATE steps SET finished_at = ?1, outcome = ?2, message = ?3 WHERE id = ?4" },
	[ST_MEASUREMENT_ADD] = { "insert measurement",
		"INSERT INTO measurements (run_id, step_id, slot, name, value, unit, low, high,"
		"                          outcome, at, result_id)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)" },
	[ST_EVENT_ADD] = { "insert event",
		"INSERT INTO events (run_id, slot, imei, at, source, kind, detail, result_id)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" },
	[ST_AUDIT_ADD] = { "insert audit",
		"INSERT INTO audit (at, run_id, operator, station, slot, port, imei, command, result)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)" },
	[ST_AUDIT_ALL] = { "read audit",
		AUDIT_COLUMNS "WHERE " AUDIT_SLOT_RUN " ORDER BY at, id" },
	[ST_AUDIT_IMEI] = { "read audit",
		AUDIT_COLUMNS "WHERE imei = ?1 AND " AUDIT_SLOT_RUN " ORDER BY at, id" },
	[ST_AUDIT_SINCE] = { "read audit",
		AUDIT_COLUMNS "WHERE at >= ?2 AND " AUDIT_SLOT_RUN " ORDER BY at, id" },
	[ST_AUDIT_IMEI_SINCE] = { "read audit",
		AUDIT_COLUMNS "WHERE imei = ?1 AND at >= ?2 AND " AUDIT_SLOT_RUN " ORDER BY at, id" },
	[ST_RESULT_ADD] = { "insert result",
		"INSERT INTO results (run_id, slot, scenario, imei, vendor, model, outcome, marginal,"
		"                     message, reasons, started_at, finished_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)" },
	[ST_SAMPLE_ADD] = { "insert supply sample",
		"INSERT INTO supply_samples (run_id, result_id, slot, t_ms, volts, amps)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
};

/* Statements a read-only handle prepares; every other one writes. */
static bool stmt_reads(enum stmt id)
{
	return id == ST_USER_VERSION || id == ST_AUDIT_ALL || id == ST_AUDIT_IMEI ||
	       id == ST_AUDIT_SINCE || id == ST_AUDIT_IMEI_SINCE;
}

struct store {
	sqlite3 *db;
	char *path;
	bool readonly;
	sqlite3_stmt *stmt[ST_COUNT];
	char err[1024];
	/* The first write that failed, kept whatever fails after it: a caller
	 * that went on must still learn that the record is not whole. */
	char write_err[1024];
	int interrupted;          /* runs marked interrupted at open */
};

/* ---- errors: "<path>: <what failed>: <why>" ---- */

__attribute__((format(printf, 2, 3)))
static int failf(store *s, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(s->err, sizeof s->err, "%s: ", s->path);
	if (n < 0 || (size_t)n >= sizeof s->err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* failf for a write that did not happen: also kept as the first failed
 * write (store_write_failure). */
static int write_failed(store *s);
#define wfailf(s, ...) (failf((s), __VA_ARGS__), write_failed(s))

/* For a failed SQLite call: the message is read before anything else can
 * replace it. */
static int fail_db(store *s, const char *what)
{
	return failf(s, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- statement helpers ---- */

static const char *column_text(sqlite3_stmt *st, int i);

/* Leaves a kept statement ready for its next use and holding no pointer into
 * a caller's memory: text is bound SQLITE_STATIC (no copy), which is safe
 * only because every call steps and then clears before it returns. */
static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Row ids: 0 means "none" in store.h and is stored as NULL. */
static int bind_id(sqlite3_stmt *st, int i, int64_t id)
{
	return id ? sqlite3_bind_int64(st, i, id) : sqlite3_bind_null(st, i);
}

/* NaN means "no value" in store.h. SQLite would turn NaN into NULL itself,
 * but that is an implementation detail; this says it on purpose. */
static int bind_real(sqlite3_stmt *st, int i, double v)
{
	return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

/* Keeps the first failed write's message (already in s->err). */
static int write_failed(store *s)
{
	if (!s->write_err[0])
		snprintf(s->write_err, sizeof s->write_err, "%s", s->err);
	return -1;
}

static int bind_failed(store *s, enum stmt id)
{
	fail_db(s, stmt_defs[id].what);
	stmt_done(s->stmt[id]);
	return stmt_reads(id) ? -1 : write_failed(s);
}

/* False (with the reason) when ID cannot be used on this handle: a store
 * opened read-only prepared none of its writing statements. */
static bool stmt_ready(store *s, enum stmt id)
{
	if (s->stmt[id])
		return true;
	failf(s, "%s: the store is open read-only", stmt_defs[id].what);
	write_failed(s);
	return false;
}

/* Steps the bound statement ID to its end. */
static int stmt_run(store *s, enum stmt id)
{
	sqlite3_stmt *st = s->stmt[id];
	int ret = 0;
	if (!stmt_ready(s, id))
		return -1;
	if (sqlite3_step(st) != SQLITE_DONE) {
		ret = fail_db(s, stmt_defs[id].what);
		if (!stmt_reads(id))
			write_failed(s);
	}
	stmt_done(st);
	return ret;
}

static int64_t stmt_insert(store *s, enum stmt id)
{
	if (stmt_run(s, id) < 0)
		return -1;
	return sqlite3_last_insert_rowid(s->db);
}

/* An UPDATE of one row by id: touching none means the caller's id is wrong,
 * which must not pass silently. */
static int stmt_update_one(store *s, enum stmt id, const char *noun, int64_t row)
{
	if (stmt_run(s, id) < 0)
		return -1;
	if (sqlite3_changes(s->db) != 1) {
		failf(s, "%s: no %s with id %lld", stmt_defs[id].what, noun, (long long)row);
		return write_failed(s);
	}
	return 0;
}

/* A one-off PRAGMA or query returning one integer; used at open, before the
 * kept statements exist. */
static int query_int(store *s, const char *sql, const char *what, int *out)
{
	sqlite3_stmt *st;
	int ret = -1;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, what);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		ret = 0;
	} else {
		fail_db(s, what);
	}
	sqlite3_finalize(st);
	return ret;
}

static int exec(store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(s, what);
	return 0;
}

/* ---- who owns an open run (migration 8) ---- */

/* "<boot id>/<start time in clock ticks>" of process PID: with the pid it
 * names one process of one boot, so a reused pid or a reboot is told from
 * the rig that began a run. Returns 0, or -1 when there is no such process
 * (or it is a zombie: killed, waiting for its parent to reap it). */
static int process_identity(pid_t pid, char *buf, size_t len)
{
	char path[64], stat[1024], boot[64] = "";
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(stat, 1, sizeof stat - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* The command name may hold spaces and ')': fields follow the last ')'. */
	char *p = strrchr(stat, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return -1;
	p += 2; /* field 3, the state */
	for (int field = 3; field < 22 && p; field++)
		if ((p = strchr(p, ' ')))
			p++;
	if (!p)
		return -1;
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "r"))) {
		if (!fgets(boot, sizeof boot, f))
			boot[0] = '\0';
		fclose(f);
		boot[strcspn(boot, "\n")] = '\0';
	}
	snprintf(buf, len, "%s/%.*s", boot, (int)strcspn(p, " "), p);
	return 0;
}

static const char *host_name(char *buf, size_t len)
{
	if (gethostname(buf, len) != 0)
		snprintf(buf, len, "unknown");
	buf[len - 1] = '\0';
	return buf;
}

/* Binds owner_host, owner_pid, owner_start (this process) from index I on. */
static int bind_owner(sqlite3_stmt *st, int i)
{
	char host[256], start[128];
	if (process_identity(getpid(), start, sizeof start) < 0)
		snprintf(start, sizeof start, "unknown");
	host_name(host, sizeof host);
	/* Copied (TRANSIENT): the buffers end with this call. */
	return sqlite3_bind_text(st, i, host, -1, SQLITE_TRANSIENT) ||
	       sqlite3_bind_int64(st, i + 1, getpid()) ||
	       sqlite3_bind_text(st, i + 2, start, -1, SQLITE_TRANSIENT);
}

/* False when the rig that owns an open run is certainly gone: its process on
 * this host has ended (or the pid now names another process), or there is
 * no owner at all (a run begun before migration 8, which no rig now running
 * can close). A run owned by another host cannot be checked from here and
 * counts as alive. */
static bool owner_alive(const char *host, int64_t pid, const char *start)
{
	char me[256], now[128];
	if (!host || !start || pid <= 0 || pid > INT32_MAX)
		return false;
	if (strcmp(host, host_name(me, sizeof me)) != 0)
		return true;
	if (process_identity((pid_t)pid, now, sizeof now) == 0)
		return strcmp(now, start) == 0 || strcmp(start, "unknown") == 0;
	/* /proc may hide other users' processes: ask the kernel as well. */
	return kill((pid_t)pid, 0) == 0 ? strcmp(start, "unknown") == 0 : errno == EPERM;
}

#define SWEEP_MAX 256 /* open runs looked at per open: more is a store in trouble anyway */

/* Marks 'interrupted' every open run whose rig is gone; what those runs
 * recorded (results, steps, events) stays as it is. */
static int mark_interrupted(store *s)
{
	sqlite3_stmt *st;
	int64_t dead[SWEEP_MAX];
	int n = 0, rc = SQLITE_DONE;
	char now[STORE_TIME_LEN], sql[160];

	if (sqlite3_prepare_v2(s->db, "SELECT id, owner_host, owner_pid, owner_start FROM runs"
			       " WHERE finished_at IS NULL ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "look for interrupted runs");
	while (n < SWEEP_MAX && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if (!owner_alive(column_text(st, 1), sqlite3_column_int64(st, 2), column_text(st, 3)))
			dead[n++] = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_DONE)
		fail_db(s, "look for interrupted runs");
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	store_now(now, sizeof now);
	for (int i = 0; i < n; i++) {
		/* finished_at IS NULL again: its rig may be this one's twin that
		 * closed it meanwhile. */
		snprintf(sql, sizeof sql, "UPDATE runs SET finished_at = '%s', outcome = 'interrupted'"
			 " WHERE id = %lld AND finished_at IS NULL", now, (long long)dead[i]);
		if (exec(s, sql, "mark a run interrupted") < 0)
			return write_failed(s);
		s->interrupted += sqlite3_changes(s->db);
	}
	return 0;
}

/* ---- open: identify, configure, migrate, prepare ---- */

/* Decides from the header alone, reading and never writing, whether this
 * file may be touched: a file we refuse must be left exactly as found. */
static int check_identity(store *s, int *version)
{
	int app_id, objects;
	if (query_int(s, "PRAGMA application_id", "read header", &app_id) < 0) {
		if ((sqlite3_errcode(s->db) & 0xff) == SQLITE_NOTADB)
			return failf(s, "not a SQLite database; refusing to touch it");
		return -1;
	}
	if (query_int(s, "PRAGMA user_version", "read schema version", version) < 0)
		return -1;
	if (app_id != 0 && app_id != STORE_APPLICATION_ID)
		return failf(s, "not a trackrig results store (application_id 0x%08x)",
			     (unsigned)app_id);
	if (*version > store_schema_latest())
		return failf(s, "written by a newer rig (schema version %d, this rig knows "
			     "up to %d); refusing to open it: use a newer rig",
			     *version, store_schema_latest());
	if (app_id == STORE_APPLICATION_ID)
		return 0;
	/* No stamp: only an empty file is ours to build in. Anything else is
	 * somebody's database passed by mistake (a typo in --db). */
	if (query_int(s, "SELECT count(*) FROM sqlite_schema", "read schema", &objects) < 0)
		return -1;
	if (objects > 0 || *version != 0)
		return failf(s, "not a trackrig results store (schema version %d, %d tables "
			     "and indexes of something else); refusing to touch it",
			     *version, objects);
	return 0;
}

static int configure(store *s)
{
	sqlite3_stmt *st;
	const char *mode;
	int ret = 0;

	/* The pragma answers with the mode in force: a filesystem without
	 * shared memory (some network mounts) silently stays in "delete". */
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "set WAL journal");
	if (sqlite3_step(st) != SQLITE_ROW) {
		ret = fail_db(s, "set WAL journal");
	} else {
		mode = (const char *)sqlite3_column_text(st, 0);
		if (!mode || (strcasecmp(mode, "wal") && strcasecmp(mode, "memory")))
			ret = failf(s, "set WAL journal: journal mode stayed '%s' (network "
				    "filesystem?)", mode ? mode : "?");
	}
	sqlite3_finalize(st);
	if (ret < 0)
		return -1;
	/* In WAL, NORMAL loses at most the last commits on power loss, never
	 * consistency; FULL would sync on every telemetry batch. */
	return exec(s, "PRAGMA synchronous = NORMAL", "set synchronous");
}

/* Runs migration N, bringing the file from N-1 to N, inside the caller's
 * transaction. */
static int apply_migration(store *s, int n)
{
	sqlite3_stmt *st;
	char *msg = NULL;
	char stamp[128];
	int rc;

	if (sqlite3_exec(s->db, store_migrations[n - 1], NULL, NULL, &msg) != SQLITE_OK) {
		failf(s, "migration %d: %s", n, msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	/* Foreign keys are off while migrating (a table rebuild needs that),
	 * so check by hand what they would have enforced. */
	if (sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "migration foreign key check");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		failf(s, "migration %d leaves a foreign key violation in table %s", n,
		      (const char *)sqlite3_column_text(st, 0));
	else if (rc != SQLITE_DONE)
		fail_db(s, "migration foreign key check");
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	snprintf(stamp, sizeof stamp, "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 STORE_APPLICATION_ID, n);
	return exec(s, stamp, "stamp schema version");
}

/* Brings the file up to store_schema_latest(), one migration per
 * transaction. The version is read again under the write lock because
 * another rig may have migrated the file since check_identity() looked. */
static int migrate(store *s, int version)
{
	int latest = store_schema_latest();

	if (version >= latest)
		return 0;
	if (exec(s, "PRAGMA foreign_keys = OFF", "disable foreign keys for migration") < 0)
		return -1;
	while (version < latest) {
		if (exec(s, "BEGIN IMMEDIATE", "begin migration") < 0)
			return -1;
		if (query_int(s, "PRAGMA user_version", "read schema version", &version) < 0)
			goto fail;
		if (version > latest) {
			failf(s, "written by a newer rig while opening (schema version %d, "
			      "this rig knows up to %d)", version, latest);
			goto fail;
		}
		if (version < latest && apply_migration(s, ++version) < 0)
			goto fail;
		if (exec(s, "COMMIT", "commit migration") < 0)
			goto fail;
	}
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int enable_foreign_keys(store *s)
{
	int on = 0;
	if (exec(s, "PRAGMA foreign_keys = ON", "enable foreign keys") < 0 ||
	    query_int(s, "PRAGMA foreign_keys", "enable foreign keys", &on) < 0)
		return -1;
	if (on != 1)
		return failf(s, "enable foreign keys: this SQLite has no foreign key support");
	return 0;
}

static int prepare_all(store *s)
{
	for (int i = 0; i < ST_COUNT; i++)
		if ((!s->readonly || stmt_reads(i)) && sqlite3_prepare_v3(s->db, stmt_defs[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
				       &s->stmt[i], NULL) != SQLITE_OK)
			return failf(s, "prepare %s: %s", stmt_defs[i].what, sqlite3_errmsg(s->db));
	return 0;
}

/* Read-only: the file must exist and already be a store; nothing in it is
 * changed (no journal mode, no migration, no sweep of interrupted runs). */
static int open_readonly(store *s)
{
	struct stat sb;
	int version;
	if (stat(s->path, &sb) != 0)
		return failf(s, "open read-only: %s (nothing recorded here yet?)", strerror(errno));
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return s->db ? fail_db(s, "open read-only") : failf(s, "open: out of memory");
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (check_identity(s, &version) < 0)
		return -1;
	if (version == 0)
		return failf(s, "empty file: not a results store yet (nothing recorded)");
	return prepare_all(s);
}

static int open_db(store *s)
{
	int version;
	if (s->readonly)
		return open_readonly(s);
	/* sqlite3_open_v2 hands back a handle even on failure: it is kept so
	 * the message can be read, and store_close frees it. */
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK)
		return s->db ? fail_db(s, "open") : failf(s, "open: out of memory");
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (check_identity(s, &version) < 0 || configure(s) < 0 || migrate(s, version) < 0 ||
	    enable_foreign_keys(s) < 0 || prepare_all(s) < 0 || mark_interrupted(s) < 0)
		return -1;
	return 0;
}

static int open_store(const char *path, bool readonly, store **out, char *err, size_t errlen)
{
	store *s;

	if (err && errlen)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (!out || !path || !*path) {
		if (err && errlen)
			snprintf(err, errlen, "results store: %s", out ? "no path given" : "no handle to fill");
		return -1;
	}
	s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		if (err && errlen)
			snprintf(err, errlen, "%s: open: out of memory", path);
		return -1;
	}
	s->readonly = readonly;
	if (open_db(s) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s", s->err);
		store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

int store_open(const char *path, store **out, char *err, size_t errlen)
{
	return open_store(path, false, out, err, errlen);
}

int store_open_readonly(const char *path, store **out, char *err, size_t errlen)
{
	return open_store(path, true, out, err, errlen);
}

const char *store_path(const store *s)
{
	return s ? s->path : "results store";
}

const char *store_write_failure(const store *s)
{
	return s && s->write_err[0] ? s->write_err : NULL;
}

void store_note_write_failure(store *s, const char *what)
{
	if (!s)
		return;
	failf(s, "%s", what);
	write_failed(s);
}

int store_interrupted_at_open(const store *s)
{
	return s ? s->interrupted : 0;
}

int store_close_checked(store *s, char *err, size_t errlen)
{
	int rc = 0;
	if (store_write_failure(s)) {
		snprintf(err, errlen, "results store: a write failed: %s; not everything was recorded",
			 store_write_failure(s));
		rc = -1;
	}
	store_close(s);
	return rc;
}

void store_close(store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* close_v2: statements a later module prepared on store_db() and has
	 * not finalized yet keep the handle alive until they are, rather than
	 * making the close fail and leak. */
	sqlite3_close_v2(s->db);
	free(s->path);
	free(s);
}

const char *store_error(const store *s)
{
	return s ? s->err : "results store: no store";
}

int store_schema_version(store *s)
{
	sqlite3_stmt *st = s->stmt[ST_USER_VERSION];
	int version = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	else
		fail_db(s, stmt_defs[ST_USER_VERSION].what);
	stmt_done(st);
	return version;
}

const char *store_now(char *buf, size_t len)
{
	if (!buf || len < 25) {
		if (buf && len)
			buf[0] = '\0';
		return NULL;
	}
	return time_iso_ms(time_wall_ms(), buf, len);
}

/* ---- runs ---- */

int64_t store_run_begin(store *s, const struct store_run *r)
{
	sqlite3_stmt *st = s->stmt[ST_RUN_BEGIN];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_RUN_BEGIN))
		return -1;

	if (!r)
		return wfailf(s, "insert run: no run given");
	/* SQLite integers are signed: a seed above INT64_MAX is kept as its bit
	 * pattern (gcc converts modulo 2^64) and read back with a cast. */
	if (bind_text(st, 1, store_now(now, sizeof now)) || bind_text(st, 2, r->command) ||
	    bind_text(st, 3, r->station) || bind_text(st, 4, r->rack) ||
	    bind_text(st, 5, r->operator_) || sqlite3_bind_int64(st, 6, (sqlite3_int64)r->seed) ||
	    bind_text(st, 7, TRACKRIG_VERSION) || bind_owner(st, 8))
		return bind_failed(s, ST_RUN_BEGIN);
	return stmt_insert(s, ST_RUN_BEGIN);
}

int store_run_end(store *s, int64_t run_id, const char *outcome)
{
	sqlite3_stmt *st = s->stmt[ST_RUN_END];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_RUN_END))
		return -1;

	if (!outcome)
		return wfailf(s, "end run: run %lld: no outcome given", (long long)run_id);
	if (bind_text(st, 1, store_now(now, sizeof now)) || bind_text(st, 2, outcome) ||
	    sqlite3_bind_int64(st, 3, run_id))
		return bind_failed(s, ST_RUN_END);
	return stmt_update_one(s, ST_RUN_END, "run", run_id);
}

/* ---- devices ---- */

int64_t store_device_seen(store *s, const struct store_device *d)
{
	sqlite3_stmt *st = s->stmt[ST_DEVICE_SEEN];
	char now[STORE_TIME_LEN];
	int64_t id = -1;

	if (!stmt_ready(s, ST_DEVICE_SEEN))
		return -1;

	if (!d || !d->imei || !*d->imei)
		return wfailf(s, "upsert device: no IMEI given");
	if (bind_text(st, 1, d->imei) || bind_text(st, 2, d->iccid) ||
	    bind_text(st, 3, d->serial) || bind_text(st, 4, d->vendor) ||
	    bind_text(st, 5, d->model) || bind_text(st, 6, d->hw_rev) ||
	    bind_text(st, 7, d->firmware) || bind_text(st, 8, store_now(now, sizeof now)))
		return bind_failed(s, ST_DEVICE_SEEN);
	/* With RETURNING the whole change is made by the first step. */
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else
		fail_db(s, stmt_defs[ST_DEVICE_SEEN].what), write_failed(s);
	stmt_done(st);
	return id;
}

/* ---- steps, measurements, events ---- */

int64_t store_step_begin(store *s, int64_t run_id, const char *slot, const char *scenario,
			 int index, const char *kind, const char *text)
{
	sqlite3_stmt *st = s->stmt[ST_STEP_BEGIN];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_STEP_BEGIN))
		return -1;

	if (sqlite3_bind_int64(st, 1, run_id) || bind_text(st, 2, slot) ||
	    bind_text(st, 3, scenario) || sqlite3_bind_int(st, 4, index) ||
	    bind_text(st, 5, kind) || bind_text(st, 6, text) ||
	    bind_text(st, 7, store_now(now, sizeof now)))
		return bind_failed(s, ST_STEP_BEGIN);
	return stmt_insert(s, ST_STEP_BEGIN);
}

int store_step_end(store *s, int64_t step_id, const char *outcome, const char *message)
{
	sqlite3_stmt *st = s->stmt[ST_STEP_END];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_STEP_END))
		return -1;

	if (!outcome)
		return wfailf(s, "end step: step %lld: no outcome given", (long long)step_id);
	if (bind_text(st, 1, store_now(now, sizeof now)) || bind_text(st, 2, outcome) ||
	    bind_text(st, 3, message) || sqlite3_bind_int64(st, 4, step_id))
		return bind_failed(s, ST_STEP_END);
	return stmt_update_one(s, ST_STEP_END, "step", step_id);
}

int64_t store_measurement_add(store *s, const struct store_measurement *m)
{
	sqlite3_stmt *st = s->stmt[ST_MEASUREMENT_ADD];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_MEASUREMENT_ADD))
		return -1;

	if (!m)
		return wfailf(s, "insert measurement: no measurement given");
	if (sqlite3_bind_int64(st, 1, m->run_id) || bind_id(st, 2, m->step_id) ||
	    bind_text(st, 3, m->slot) || bind_text(st, 4, m->name) ||
	    bind_real(st, 5, m->value) || bind_text(st, 6, m->unit) ||
	    bind_real(st, 7, m->low) || bind_real(st, 8, m->high) ||
	    bind_text(st, 9, m->outcome) || bind_text(st, 10, m->at ? m->at : store_now(now, sizeof now)) ||
	    bind_id(st, 11, m->result_id))
		return bind_failed(s, ST_MEASUREMENT_ADD);
	return stmt_insert(s, ST_MEASUREMENT_ADD);
}

int64_t store_event_add(store *s, const struct store_event *e)
{
	sqlite3_stmt *st = s->stmt[ST_EVENT_ADD];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_EVENT_ADD))
		return -1;

	if (!e)
		return wfailf(s, "insert event: no event given");
	if (bind_id(st, 1, e->run_id) || bind_text(st, 2, e->slot) ||
	    bind_text(st, 3, e->imei) ||
	    bind_text(st, 4, e->at ? e->at : store_now(now, sizeof now)) ||
	    bind_text(st, 5, e->source) || bind_text(st, 6, e->kind) ||
	    bind_text(st, 7, e->detail) || bind_id(st, 8, e->result_id))
		return bind_failed(s, ST_EVENT_ADD);
	return stmt_insert(s, ST_EVENT_ADD);
}

int64_t store_result_add(store *s, const struct store_result *r)
{
	sqlite3_stmt *st = s->stmt[ST_RESULT_ADD];

	if (!stmt_ready(s, ST_RESULT_ADD))
		return -1;

	if (!r)
		return wfailf(s, "insert result: no result given");
	if (sqlite3_bind_int64(st, 1, r->run_id) || bind_text(st, 2, r->slot) ||
	    bind_text(st, 3, r->scenario) || bind_text(st, 4, r->imei) ||
	    bind_text(st, 5, r->vendor) || bind_text(st, 6, r->model) ||
	    bind_text(st, 7, r->outcome) || sqlite3_bind_int(st, 8, r->marginal ? 1 : 0) ||
	    bind_text(st, 9, r->message) || bind_text(st, 10, r->reasons) ||
	    bind_text(st, 11, r->started_at) || bind_text(st, 12, r->finished_at))
		return bind_failed(s, ST_RESULT_ADD);
	return stmt_insert(s, ST_RESULT_ADD);
}

int store_supply_samples_add(store *s, int64_t run_id, int64_t result_id, const char *slot,
			     const struct store_supply_sample *v, size_t n)
{
	sqlite3_stmt *st = s->stmt[ST_SAMPLE_ADD];

	if (!stmt_ready(s, ST_SAMPLE_ADD))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].t_ms < 0)
			return wfailf(s, "insert supply sample: time %lld ms before its trace began", (long long)v[i].t_ms);
		if (sqlite3_bind_int64(st, 1, run_id) || bind_id(st, 2, result_id) || bind_text(st, 3, slot) ||
		    sqlite3_bind_int64(st, 4, v[i].t_ms) || bind_real(st, 5, v[i].volts) || bind_real(st, 6, v[i].amps))
			return bind_failed(s, ST_SAMPLE_ADD);
		if (stmt_insert(s, ST_SAMPLE_ADD) < 0)
			return -1;
	}
	return 0;
}

/* ---- audit trail ---- */

int64_t store_audit_add(store *s, const struct store_audit *a)
{
	sqlite3_stmt *st = s->stmt[ST_AUDIT_ADD];
	char now[STORE_TIME_LEN];

	if (!stmt_ready(s, ST_AUDIT_ADD))
		return -1;

	if (!a)
		return wfailf(s, "insert audit: no entry given");
	if (bind_text(st, 1, store_now(now, sizeof now)) || bind_id(st, 2, a->run_id) ||
	    bind_text(st, 3, a->operator_) || bind_text(st, 4, a->station) ||
	    bind_text(st, 5, a->slot) || bind_text(st, 6, a->port) ||
	    bind_text(st, 7, a->imei) || bind_text(st, 8, a->command) ||
	    bind_text(st, 9, a->result))
		return bind_failed(s, ST_AUDIT_ADD);
	return stmt_insert(s, ST_AUDIT_ADD);
}

static const char *column_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int store_audit_each(store *s, const char *imei, const char *since, store_audit_cb cb,
		     void *ctx)
{
	return store_audit_each_in(s, imei, since, NULL, 0, cb, ctx);
}

int store_audit_each_in(store *s, const char *imei, const char *since, const char *slot,
			int64_t run_id, store_audit_cb cb, void *ctx)
{
	enum stmt id = imei ? (since ? ST_AUDIT_IMEI_SINCE : ST_AUDIT_IMEI)
			    : (since ? ST_AUDIT_SINCE : ST_AUDIT_ALL);
	sqlite3_stmt *st = s->stmt[id];
	int rc, visited = 0;

	if (!cb)
		return failf(s, "read audit: no callback given");
	/* The statement is shared by the handle: a callback walking the same
	 * query again would reset it under our feet. */
	if (sqlite3_stmt_busy(st))
		return failf(s, "read audit: a walk with the same filters is already in "
			     "progress on this handle");
	if (imei && bind_text(st, 1, imei))
		return bind_failed(s, id);
	if (bind_text(st, 3, slot) || bind_id(st, 4, run_id))
		return bind_failed(s, id);
	/* Stored times end in 'Z'; a SINCE ending in 'Z' would sort after every
	 * time in its own minute ("08:00:00.000Z" < "08:00Z"), so it is dropped. */
	if (since) {
		size_t n = strlen(since);
		if (n && since[n - 1] == 'Z')
			n--;
		if (sqlite3_bind_text(st, 2, since, (int)n, SQLITE_STATIC))
			return bind_failed(s, id);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_audit_row row = {
			.id = sqlite3_column_int64(st, 0),
			.run_id = sqlite3_column_int64(st, 1),
			.at = column_text(st, 2),
			.operator_ = column_text(st, 3),
			.station = column_text(st, 4),
			.slot = column_text(st, 5),
			.port = column_text(st, 6),
			.imei = column_text(st, 7),
			.command = column_text(st, 8),
			.result = column_text(st, 9),
		};
		visited++;
		if (cb(ctx, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		visited = fail_db(s, stmt_defs[id].what);
	stmt_done(st);
	return visited;
}

/* ---- transactions ---- */

int store_begin(store *s)
{
	return stmt_run(s, ST_BEGIN);
}

int store_commit(store *s)
{
	return stmt_run(s, ST_COMMIT);
}

int store_rollback(store *s)
{
	return stmt_run(s, ST_ROLLBACK);
}

struct sqlite3 *store_db(store *s)
{
	return s->db;
}

const char *store_sqlite_message(store *s)
{
	return s && s->db ? sqlite3_errmsg(s->db) : "no store";
}

int store_data_version(store *s)
{
	int v = -1;
	return query_int(s, "PRAGMA data_version", "read data version", &v) < 0 ? -1 : v;
}

/* ---- for the store's own files (store_impl.h) ---- */

int store_fail_db(store *s, const char *what)
{
	return fail_db(s, what);
}

sqlite3_stmt *store_prepare(store *s, const char *what, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail_db(s, what);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return bind_text(st, i, v);
}

int store_bind_id(sqlite3_stmt *st, int i, int64_t id)
{
	return bind_id(st, i, id);
}

const char *store_column_text(sqlite3_stmt *st, int i)
{
	return column_text(st, i);
}
