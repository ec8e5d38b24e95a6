/*
 * evidence.h - one gatherer of diagnosis evidence over every channel a slot
 * has: console, supply, the modem's own account, uplink records in the
 * results store, GNSS (gpsd where the rig runs one, else the device's own
 * report), and boot history (restart counter and reset source).
 *
 * `rig diagnose`, the run engine's closing diagnosis and `rig accept` all
 * fill struct diag_evidence through these functions, so the same unit gets
 * the same reading whoever asks. The judgement stays in diagnose.c.
 *
 * A channel the caller does not give stays DIAG_CH_UNKNOWN ("not read"),
 * which diag_run never counts as fine; a channel the rack does not have is
 * marked DIAG_CH_ABSENT by the caller.
 */
#ifndef TRACKRIG_EVIDENCE_H
#define TRACKRIG_EVIDENCE_H

#include "diagnose.h"
#include "gnss.h"
#include "power.h"
#include "store.h"
#include "tracker.h"

#include <pthread.h>

/* One reading of the device's restart counter, as kept in the audit trail
 * ("restarts" rows) between diagnoses. */
struct evidence_boot_reading {
	int boots;                /* -1: not told */
	char reset[24];           /* "" not told */
	long uptime_s;
	int64_t at_ms;            /* rack clock; DIAG_NEVER: no reading */
};

struct evidence_source {
	int64_t now_ms;           /* the rack clock, Unix ms */
	int timeout_ms;           /* per console command */
	/* console: an open tracker, or NULL with console_err saying why */
	tracker *trk;
	const char *console_path; /* NULL or "": the slot has no console */
	/* No console port, the unit's commands go over its uplink (codec 12
	 * through the ingest) on TRK: a unit not connected is silent, as a
	 * console that says nothing is, not a port that vanished. */
	bool over_uplink;
	const char *console_err;
	const char *imei;         /* the slot's IMEI: console answers must carry it, and its uplink
				   * records are read; NULL or "": none known */
	/* supply: an open driver, or NULL with supply_err; has_supply false: none in the rack */
	bool has_supply;
	struct power_dev *supply;
	const char *supply_where;
	const char *supply_err;
	/* GNSS: the rig's gpsd and the slot's NMEA path, or NULL */
	gnss_daemon *gps;
	const char *nmea_path;
	/* a reading the caller took already, caught up to rack time (the
	 * engine's, so a verdict never depends on how fast gpsd read); NULL:
	 * gpsd is read here */
	const struct gnss_reading *gps_reading;
	/* results store (NULL: uplink records not read), its lock (NULL: none) */
	store *db;
	pthread_mutex_t *db_lock;
	const char *slot_label, *station;
	int64_t silent_after_ms;  /* 0: 10 min */
	int64_t plan_bytes;       /* the SIM's data plan; 0 unknown */
	int64_t boot_window_ms;   /* restart counter readings older than this are ignored (0: 10 min) */
	/* how long to watch the restart counter when the last reset was a
	 * watchdog or crash and no earlier reading is in the window; 0: no
	 * watch (a caller that polls, like the engine, builds history itself) */
	int boot_watch_ms;
	const struct tracker_clock *clock; /* paces the watch (NULL: wall clock) */
};

/* Gathers every channel SRC gives into EV (diag_evidence_init first). The
 * boot reading taken is copied to *BOOT_NOW when given, for the caller to
 * audit as "restarts" (evidence_boot_text) so the next diagnosis has history. */
void evidence_gather(const struct evidence_source *src, struct diag_evidence *ev,
		     struct evidence_boot_reading *boot_now);

/* The channels one by one, for callers that read some of them their own way. */
void evidence_console(const struct evidence_source *src, struct diag_console *out);
void evidence_supply(const struct evidence_source *src, struct diag_supply *out);
/* The modem, device GNSS and a restart counter reading as the driver tells them. */
int evidence_device(const struct evidence_source *src, struct diag_evidence *ev, struct evidence_boot_reading *boot);
/* Uplink records of IMEI from the results store (SQLite's json functions on the io column). */
void evidence_records(store *db, const char *imei, int64_t now_ms, struct diag_uplink *out);
/* GNSS through gpsd; false when gpsd has nothing for the path. */
bool evidence_gpsd(gnss_daemon *g, const char *path, const struct gnss_reading *taken, int64_t now_ms,
		   struct diag_gnss *out);
/* Boot history from two restart counter readings: THEN (earlier, may be at DIAG_NEVER) and NOW. */
void evidence_boot(const struct evidence_boot_reading *then, const struct evidence_boot_reading *now,
		   int64_t window_ms, struct diag_boot *out);

/* "ok: boots=12 reset=watchdog uptime=4" and back. */
void evidence_boot_text(const struct evidence_boot_reading *r, char *buf, size_t len);
bool evidence_boot_parse(const char *text, struct evidence_boot_reading *r);

/* The latest "restarts" audit row of SLOT at STATION within WINDOW_MS of NOW_MS. */
bool evidence_boot_earlier(store *db, const char *slot, const char *station, int64_t now_ms, int64_t window_ms,
			   struct evidence_boot_reading *out);

#endif
