/* slothealth.c - slot health checks and quarantine (see slothealth.h). */
#include "slothealth.h"
#include "power.h"
#include "slotdev.h"
#include "tracker.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* The device answered, however badly: the rig's side of the slot works.
 * What it said is for the scenarios to judge (a garbled console is the
 * device's FAIL), never a reason to set the slot aside as SKIPPED. Silence,
 * a port gone and I/O errors are what the gate is for. */
static bool link_works(int rc)
{
	return rc == TRACKER_OK || rc == TRACKER_ERR_GARBAGE || rc == TRACKER_ERR_OVERLONG || rc == TRACKER_ERR_PARSE ||
	       rc == TRACKER_ERR_REFUSED || rc == TRACKER_ERR_PARTIAL;
}

int slot_health(const struct rack_slot *slot, rig_clock *clock, char *why, size_t len)
{
	tracker *t;
	char err[512], imei[16];
	if (slot->power.kind == RACK_POWER_SUPPLY) {
		struct power_dev *dev;
		struct power_status st;
		if (slotdev_supply(slot, 0, &dev, err, sizeof err)) {
			snprintf(why, len, "supply: %.400s", err);
			return -1;
		}
		int rc = dev->driver->status(dev, &st);
		if (rc)
			snprintf(why, len, "supply: %.400s", power_error(dev));
		dev->driver->close(dev);
		if (rc)
			return -1;
		if (!st.output_on) /* a nightly starts powered: the rack's job, not the device's */
			return snprintf(why, len, "supply %s: output is off", slot->power.bus.transport), -1;
	}
	/* Commands over the uplink: the unit is reached through the ingest the
	 * run starts, so its link is judged there, not before. */
	if (!*slot->console.path)
		return 0;
	if (slotdev_console(slot, NULL, clock ? clock_for_tracker(clock) : NULL, &t, err, sizeof err)) {
		snprintf(why, len, "console: %.400s", err);
		return -1;
	}
	/* A device may still be booting: a few tries over ten seconds of rack time. */
	int rc = -1;
	for (int i = 0; i < 3 && !link_works(rc); i++)
		rc = tracker_ping(t, imei, sizeof imei, 3500);
	if (!link_works(rc))
		snprintf(why, len, "console: %.400s", tracker_error(t));
	tracker_close(t);
	return link_works(rc) ? 0 : -1;
}

bool slot_quarantined(store *db, const char *station, int slot, char *why, size_t len)
{
	sqlite3_stmt *q;
	bool found = false;
	if (sqlite3_prepare_v2(store_db(db), "SELECT reason, since FROM quarantine WHERE station = ?1 AND slot = ?2"
			       " AND cleared_at IS NULL ORDER BY id DESC LIMIT 1", -1, &q, NULL) != SQLITE_OK)
		return false;
	char s[16];
	snprintf(s, sizeof s, "%d", slot);
	sqlite3_bind_text(q, 1, station, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, s, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		found = true;
		snprintf(why, len, "%s (since %s)", (const char *)sqlite3_column_text(q, 0),
			 (const char *)sqlite3_column_text(q, 1));
	}
	sqlite3_finalize(q);
	return found;
}

int slot_quarantine(store *db, const char *station, int slot, const char *reason, int64_t run_id)
{
	sqlite3_stmt *q;
	char now[32], s[16];
	if (sqlite3_prepare_v2(store_db(db), "INSERT INTO quarantine (station, slot, since, reason, run_id)"
			       " VALUES (?1, ?2, ?3, ?4, ?5)", -1, &q, NULL) != SQLITE_OK)
		return -1;
	snprintf(s, sizeof s, "%d", slot);
	sqlite3_bind_text(q, 1, station, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, s, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, store_now(now, sizeof now), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, reason, -1, SQLITE_STATIC);
	if (run_id > 0)
		sqlite3_bind_int64(q, 5, run_id);
	else
		sqlite3_bind_null(q, 5);
	int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(q);
	return rc;
}

int slot_release(store *db, const char *station, int slot, const char *by)
{
	sqlite3_stmt *q;
	char now[32], s[16];
	if (sqlite3_prepare_v2(store_db(db), "UPDATE quarantine SET cleared_at = ?3, cleared_by = ?4"
			       " WHERE station = ?1 AND slot = ?2 AND cleared_at IS NULL", -1, &q, NULL) != SQLITE_OK)
		return -1;
	snprintf(s, sizeof s, "%d", slot);
	sqlite3_bind_text(q, 1, station, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, s, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, store_now(now, sizeof now), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, by, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(store_db(db)) : -1;
	sqlite3_finalize(q);
	return rc;
}

int slot_each_quarantined(store *db, const char *station,
			  void (*cb)(void *ctx, const char *station, const char *slot, const char *since,
				     const char *reason),
			  void *ctx)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(store_db(db), "SELECT station, slot, since, reason FROM quarantine WHERE cleared_at IS NULL"
			       " AND (?1 IS NULL OR station = ?1) ORDER BY station, CAST(slot AS INTEGER)", -1, &q,
			       NULL) != SQLITE_OK)
		return -1;
	if (station)
		sqlite3_bind_text(q, 1, station, -1, SQLITE_STATIC);
	int n = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		cb(ctx, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
		   (const char *)sqlite3_column_text(q, 2), (const char *)sqlite3_column_text(q, 3));
		n++;
	}
	sqlite3_finalize(q);
	return n;
}
