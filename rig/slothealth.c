/* slothealth.c - slot health checks and quarantine (see slothealth.h). */
#include "slothealth.h"
#include "power.h"
#include "slotdev.h"
#include "store_health.h"
#include "tracker.h"

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

/* Slots are kept by their label, as the rack file and the audit trail write them. */
static const char *slot_label(int slot, char *buf, size_t len)
{
	snprintf(buf, len, "%d", slot);
	return buf;
}

bool slot_quarantined(store *db, const char *station, int slot, char *why, size_t len)
{
	char s[16], reason[512], since[64];
	if (store_quarantine_open(db, station, slot_label(slot, s, sizeof s), reason, sizeof reason, since,
				  sizeof since) != 1)
		return false;
	snprintf(why, len, "%s (since %s)", reason, since);
	return true;
}

int slot_quarantine(store *db, const char *station, int slot, const char *reason, int64_t run_id)
{
	char now[32], s[16];
	return store_quarantine_add(db, station, slot_label(slot, s, sizeof s), store_now(now, sizeof now), reason,
				    run_id);
}

int slot_release(store *db, const char *station, int slot, const char *by)
{
	char now[32], s[16];
	return store_quarantine_clear(db, station, slot_label(slot, s, sizeof s), store_now(now, sizeof now), by);
}

int slot_each_quarantined(store *db, const char *station,
			  void (*cb)(void *ctx, const char *station, const char *slot, const char *since,
				     const char *reason),
			  void *ctx)
{
	return store_quarantine_each(db, station, cb, ctx);
}
