/*
 * store_schema.c - the results store's schema, written as the ordered list of
 * migrations that builds it. This array is the one place the schema lives.
 *
 * Migration N (counting from 1) brings a file from user_version N-1 to N.
 * store.c runs each missing one once, in its own transaction, with foreign
 * keys off (so a migration may rebuild a table the SQLite way: create new,
 * copy, drop old, rename) and a foreign_key_check before it commits; it also
 * stamps user_version and the application_id, so entries hold only schema.
 *
 * To change the schema, append one entry at the end, headed by a comment
 * "N: what it adds". Never edit, reorder or remove an entry once it has been
 * committed: stores in the field have already run it and would never see the
 * change. docs/results-store.md has the rules and an example.
 */
#include "store.h"

/* Read by store.c, which declares it; its length is store_schema_latest(). */
const char *const store_migrations[] = {
	/* 1: runs, devices, steps, measurements, events, audit. */
	"CREATE TABLE runs ("
	"  id          INTEGER PRIMARY KEY,"
	"  started_at  TEXT NOT NULL,"
	"  finished_at TEXT,"
	"  command     TEXT NOT NULL,"
	"  station     TEXT,"
	"  rack        TEXT,"
	"  operator    TEXT NOT NULL,"
	/* uint64 seeds are stored as their int64 bit pattern;
	 * printf('%llu', seed) shows the one the operator typed. */
	"  seed        INTEGER NOT NULL,"
	"  outcome     TEXT CHECK (outcome IN ('pass','fail','error','aborted')),"
	"  rig_version TEXT NOT NULL,"
	/* A finished run always says how it ended, and only a finished one. */
	"  CHECK ((finished_at IS NULL) = (outcome IS NULL))"
	");"

	"CREATE TABLE devices ("
	"  id         INTEGER PRIMARY KEY,"
	"  imei       TEXT NOT NULL UNIQUE CHECK (imei <> ''),"
	"  iccid      TEXT,"
	"  serial     TEXT,"
	"  vendor     TEXT,"
	"  model      TEXT,"
	"  hw_rev     TEXT,"
	"  firmware   TEXT,"
	"  first_seen TEXT NOT NULL,"
	"  last_seen  TEXT NOT NULL"
	");"

	"CREATE TABLE steps ("
	"  id          INTEGER PRIMARY KEY,"
	"  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  slot        TEXT,"
	"  scenario    TEXT,"
	"  idx         INTEGER NOT NULL,"
	"  kind        TEXT,"
	"  text        TEXT,"
	"  started_at  TEXT NOT NULL,"
	"  finished_at TEXT,"
	"  outcome     TEXT CHECK (outcome IN"
	"                ('pass','fail','error','timeout','aborted')),"
	"  message     TEXT,"
	"  CHECK ((finished_at IS NULL) = (outcome IS NULL))"
	");"
	"CREATE INDEX steps_run ON steps(run_id);"

	"CREATE TABLE measurements ("
	"  id      INTEGER PRIMARY KEY,"
	"  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  step_id INTEGER REFERENCES steps(id) ON DELETE CASCADE,"
	"  slot    TEXT,"
	"  name    TEXT NOT NULL,"
	"  value   REAL,"              /* NULL: no reading (NaN) */
	"  unit    TEXT,"
	"  low     REAL,"              /* NULL: no lower limit */
	"  high    REAL,"              /* NULL: no upper limit */
	"  outcome TEXT CHECK (outcome IN ('pass','fail','marginal')),"
	"  at      TEXT NOT NULL"
	");"
	"CREATE INDEX measurements_run ON measurements(run_id);"
	/* Without it, deleting a step scans every measurement. */
	"CREATE INDEX measurements_step ON measurements(step_id);"

	"CREATE TABLE events ("
	"  id     INTEGER PRIMARY KEY,"
	/* A device's history outlives the run that happened to see it. */
	"  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
	"  slot   TEXT,"
	"  imei   TEXT,"
	/* Callers may pass their own time: keep the text sortable. */
	"  at     TEXT NOT NULL CHECK (at GLOB"
	"    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*Z'),"
	"  source TEXT NOT NULL,"
	"  kind   TEXT NOT NULL,"
	"  detail TEXT"
	");"
	"CREATE INDEX events_run ON events(run_id);"
	"CREATE INDEX events_imei_at ON events(imei, at);"

	"CREATE TABLE audit ("
	"  id       INTEGER PRIMARY KEY,"
	"  at       TEXT NOT NULL,"
	/* No ON DELETE action: a run with an audit trail cannot be deleted. */
	"  run_id   INTEGER REFERENCES runs(id),"
	"  operator TEXT NOT NULL,"
	"  station  TEXT,"
	"  slot     TEXT,"
	"  port     TEXT,"
	"  imei     TEXT,"
	"  command  TEXT NOT NULL,"
	"  result   TEXT NOT NULL"
	");"
	"CREATE INDEX audit_imei_at ON audit(imei, at);"
	"CREATE INDEX audit_at ON audit(at);"
	"CREATE INDEX audit_run ON audit(run_id);"
	/* A trail that can be edited proves nothing: rows are append-only. A
	 * retention policy, if one is ever wanted, is a migration that drops
	 * these triggers on purpose. */
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;",

	/* 2: one outcome per slot and scenario of a run (rig run). Times are on
	 * the rack's clock, so a virtual run reads the same every time. */
	"CREATE TABLE results ("
	"  id          INTEGER PRIMARY KEY,"
	"  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  slot        TEXT NOT NULL,"
	"  scenario    TEXT NOT NULL,"
	"  imei        TEXT,"
	"  vendor      TEXT,"
	"  model       TEXT,"
	"  outcome     TEXT NOT NULL CHECK (outcome IN"
	"                ('pass','fail','error','timeout','aborted')),"
	"  marginal    INTEGER NOT NULL DEFAULT 0 CHECK (marginal IN (0, 1)),"
	"  message     TEXT,"
	"  reasons     TEXT,"
	"  started_at  TEXT NOT NULL,"
	"  finished_at TEXT NOT NULL"
	");"
	"CREATE INDEX results_run ON results(run_id);"
	"CREATE INDEX results_scenario ON results(scenario, model);"
	/* Measurements and events of a result, so reports need not guess which
	 * scenario a value belongs to. */
	"ALTER TABLE measurements ADD COLUMN result_id INTEGER REFERENCES results(id) ON DELETE CASCADE;"
	"ALTER TABLE events ADD COLUMN result_id INTEGER REFERENCES results(id) ON DELETE SET NULL;"
	"CREATE INDEX measurements_result ON measurements(result_id);"
	"CREATE INDEX events_result ON events(result_id);",

	/* 3: telemetry from trackers over the uplink (rig/ingest.c). A record is
	 * the device's own account; arrival is on the rig's clock. content_hash
	 * covers every decoded field, so a resent packet (the device did not see
	 * our ack) hits the unique index instead of being stored twice. */
	"CREATE TABLE records ("
	"  id           INTEGER PRIMARY KEY,"
	"  run_id       INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
	"  imei         TEXT NOT NULL CHECK (imei <> ''),"
	"  ts_device    TEXT NOT NULL,"
	"  ts_ms        INTEGER NOT NULL,"
	"  arrival      TEXT NOT NULL,"
	"  arrival_ms   INTEGER NOT NULL,"
	"  priority     INTEGER NOT NULL,"
	"  lat_e7       INTEGER NOT NULL,"
	"  lon_e7       INTEGER NOT NULL,"
	"  altitude     INTEGER NOT NULL,"
	"  angle        INTEGER NOT NULL,"
	"  satellites   INTEGER NOT NULL,"
	"  speed        INTEGER NOT NULL,"
	"  event_io     INTEGER NOT NULL,"
	"  io           TEXT NOT NULL,"             /* {"id":value,...} */
	"  late         INTEGER NOT NULL DEFAULT 0 CHECK (late IN (0, 1)),"
	"  out_of_order INTEGER NOT NULL DEFAULT 0 CHECK (out_of_order IN (0, 1)),"
	"  packet_seq   INTEGER NOT NULL,"
	"  content_hash INTEGER NOT NULL"
	");"
	"CREATE INDEX records_imei_ts ON records(imei, ts_ms);"
	/* Per run: a second run on a virtual rack with the same seed sends the
	 * same records again, and they are that run's, not duplicates. */
	"CREATE UNIQUE INDEX records_dedup ON records(coalesce(run_id, 0), imei, ts_ms, content_hash);"
	"CREATE INDEX records_run ON records(run_id);"
	/* Data usage per device and run: what a SIM's data cap is measured in.
	 * run_id is NULL for a standalone `rig serve`. */
	"CREATE TABLE uplink_usage ("
	"  id             INTEGER PRIMARY KEY,"
	"  run_id         INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
	"  imei           TEXT NOT NULL,"
	"  bytes_up       INTEGER NOT NULL DEFAULT 0,"
	"  bytes_down     INTEGER NOT NULL DEFAULT 0,"
	"  packets        INTEGER NOT NULL DEFAULT 0,"
	"  records        INTEGER NOT NULL DEFAULT 0,"
	"  duplicates     INTEGER NOT NULL DEFAULT 0,"
	"  refused_logins INTEGER NOT NULL DEFAULT 0,"
	"  updated_at     TEXT NOT NULL"
	");"
	"CREATE INDEX uplink_usage_imei ON uplink_usage(imei, run_id);",

	/* 4: slots set aside because they failed their health check before a
	 * nightly run (LAVA's model): skipped and reported until someone
	 * clears them with `rig slot reset`. */
	"CREATE TABLE quarantine ("
	"  id         INTEGER PRIMARY KEY,"
	"  station    TEXT NOT NULL,"
	"  slot       TEXT NOT NULL,"
	"  since      TEXT NOT NULL,"
	"  reason     TEXT NOT NULL,"
	"  run_id     INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
	"  cleared_at TEXT,"
	"  cleared_by TEXT"
	");"
	"CREATE INDEX quarantine_slot ON quarantine(station, slot, cleared_at);",

	/* 5: staged firmware rollouts (rig/rollout.c, docs/rollout.md). Every
	 * state change is written as it happens, so a rig that dies mid-rollout
	 * leaves a truthful record. request is a control request from another
	 * terminal (pause, resume, stop) the running rollout acts on. Device
	 * times are on the rig clock (the rack's on a virtual rack). */
	"CREATE TABLE rollouts ("
	"  id          INTEGER PRIMARY KEY,"
	"  image       TEXT NOT NULL,"
	"  version     TEXT NOT NULL,"
	"  model       TEXT NOT NULL,"
	"  stages      TEXT NOT NULL,"
	"  cohort      TEXT NOT NULL,"
	"  state       TEXT NOT NULL CHECK (state IN"
	"                ('created','running','paused','stopped','finished')),"
	"  created_at  TEXT NOT NULL,"
	"  updated_at  TEXT NOT NULL,"
	"  reason      TEXT,"
	"  station     TEXT,"
	"  operator    TEXT NOT NULL,"
	"  success_pct INTEGER NOT NULL CHECK (success_pct BETWEEN 0 AND 100),"
	"  max_failures TEXT NOT NULL,"               /* "1" or "20%" */
	"  device_timeout_ms INTEGER NOT NULL CHECK (device_timeout_ms > 0),"
	"  n_stages    INTEGER NOT NULL CHECK (n_stages > 0),"
	"  stage       INTEGER NOT NULL DEFAULT 0,"   /* 1-based stage under way; 0 before */
	"  request     TEXT CHECK (request IN ('pause','resume','stop')),"
	"  requested_at TEXT,"
	"  runner_pid  INTEGER,"
	"  stopped_at  TEXT"
	");"
	"CREATE TABLE rollout_devices ("
	"  rollout_id  INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,"
	"  slot        INTEGER NOT NULL,"
	"  imei        TEXT,"
	"  stage       INTEGER NOT NULL CHECK (stage > 0),"
	"  seq         INTEGER NOT NULL,"             /* order of starting */
	"  state       TEXT NOT NULL CHECK (state IN ('waiting','gated_out','updating','committed',"
	"                'rolled_back','rejected','failed','skipped_after_stop')),"
	"  gate        TEXT,"                         /* the gate a gated_out device failed */
	"  started_at  TEXT,"
	"  finished_at TEXT,"
	"  detail      TEXT,"
	"  in_flight_at_stop INTEGER NOT NULL DEFAULT 0 CHECK (in_flight_at_stop IN (0, 1)),"
	"  PRIMARY KEY (rollout_id, slot)"
	");"
	"CREATE INDEX rollout_devices_state ON rollout_devices(rollout_id, state);",

	/* 6: a slot's supply read at a steady pace for a span of a scenario (its
	 * trace step): the current across a power cut and the boot after it.
	 * Times are ms since the trace began. */
	"CREATE TABLE supply_samples ("
	"  id        INTEGER PRIMARY KEY,"
	"  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  result_id INTEGER REFERENCES results(id) ON DELETE CASCADE,"
	"  slot      TEXT NOT NULL,"
	"  t_ms      INTEGER NOT NULL CHECK (t_ms >= 0),"
	"  volts     REAL,"
	"  amps      REAL"
	");"
	"CREATE INDEX supply_samples_result ON supply_samples(result_id);",

	/* 7: 'skipped', the outcome of a slot in quarantine that a run set
	 * aside (its reason in message), so reports show it instead of losing
	 * it. A CHECK cannot be altered: the table is rebuilt the SQLite way
	 * (the foreign keys that point at results keep pointing at it). */
	"CREATE TABLE results_v7 ("
	"  id          INTEGER PRIMARY KEY,"
	"  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  slot        TEXT NOT NULL,"
	"  scenario    TEXT NOT NULL,"
	"  imei        TEXT,"
	"  vendor      TEXT,"
	"  model       TEXT,"
	"  outcome     TEXT NOT NULL CHECK (outcome IN"
	"                ('pass','fail','error','timeout','aborted','skipped')),"
	"  marginal    INTEGER NOT NULL DEFAULT 0 CHECK (marginal IN (0, 1)),"
	"  message     TEXT,"
	"  reasons     TEXT,"
	"  started_at  TEXT NOT NULL,"
	"  finished_at TEXT NOT NULL"
	");"
	"INSERT INTO results_v7 SELECT id, run_id, slot, scenario, imei, vendor, model, outcome, marginal, message,"
	"  reasons, started_at, finished_at FROM results;"
	"DROP TABLE results;"
	"ALTER TABLE results_v7 RENAME TO results;"
	"CREATE INDEX results_run ON results(run_id);"
	"CREATE INDEX results_scenario ON results(scenario, model);",

	/* 8: who owns an open run, so the next rig can tell a run whose rig was
	 * killed (pid dead, or the machine rebooted) from one still going, and
	 * mark it 'interrupted'. owner_start is "<boot id>/<start time in clock
	 * ticks>" of the owning process: a pid reused by another process does
	 * not keep a dead run open. The CHECK on outcome gains 'interrupted',
	 * hence the rebuild (foreign keys are off while migrating; the other
	 * tables' REFERENCES runs(id) name the new table once it is renamed). */
	"CREATE TABLE runs_8 ("
	"  id          INTEGER PRIMARY KEY,"
	"  started_at  TEXT NOT NULL,"
	"  finished_at TEXT,"
	"  command     TEXT NOT NULL,"
	"  station     TEXT,"
	"  rack        TEXT,"
	"  operator    TEXT NOT NULL,"
	"  seed        INTEGER NOT NULL,"
	"  outcome     TEXT CHECK (outcome IN ('pass','fail','error','aborted','interrupted')),"
	"  rig_version TEXT NOT NULL,"
	"  owner_host  TEXT,"
	"  owner_pid   INTEGER,"
	"  owner_start TEXT,"
	"  CHECK ((finished_at IS NULL) = (outcome IS NULL))"
	");"
	"INSERT INTO runs_8 (id, started_at, finished_at, command, station, rack, operator, seed, outcome,"
	"                    rig_version)"
	"  SELECT id, started_at, finished_at, command, station, rack, operator, seed, outcome, rig_version"
	"  FROM runs;"
	"DROP TABLE runs;"
	"ALTER TABLE runs_8 RENAME TO runs;"
	/* The sweep at open looks only at runs nobody has closed. */
	"CREATE INDEX runs_open ON runs(id) WHERE finished_at IS NULL;",
};

int store_schema_latest(void)
{
	return (int)(sizeof store_migrations / sizeof store_migrations[0]);
}
