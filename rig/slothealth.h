/*
 * slothealth.h - slot health checks and quarantine (LAVA's model).
 *
 * Before a nightly run each slot proves its rig side works: the console
 * answers and the supply (if any) answers. A slot that fails is put in
 * quarantine: skipped and reported on every run until a person has looked
 * at it and said `rig slot reset N`. A broken fixture must not make a
 * device look bad night after night.
 */
#ifndef TRACKRIG_SLOTHEALTH_H
#define TRACKRIG_SLOTHEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "rack.h"
#include "store.h"

/* Checks SLOT's console and supply: the rig's side of the slot. A device
 * that answers, even wrongly, passes (the scenarios judge it); silence, a
 * port gone or unreadable, a supply off or unreachable fail. Returns 0
 * healthy, or -1 with what failed and where in WHY. */
int slot_health(const struct rack_slot *slot, rig_clock *clock, char *why, size_t len);

/* The open quarantine of STATION/SLOT: true and its reason in WHY. */
bool slot_quarantined(store *db, const char *station, int slot, char *why, size_t len);

/* Puts STATION/SLOT in quarantine for REASON (RUN_ID may be 0). */
int slot_quarantine(store *db, const char *station, int slot, const char *reason, int64_t run_id);

/* Clears the quarantine of STATION/SLOT; returns how many were open, or -1. */
int slot_release(store *db, const char *station, int slot, const char *by);

/* Calls CB for every open quarantine of STATION (NULL: all stations). */
int slot_each_quarantined(store *db, const char *station,
			  void (*cb)(void *ctx, const char *station, const char *slot, const char *since,
				     const char *reason),
			  void *ctx);

#endif
