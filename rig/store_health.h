/*
 * store_health.h - what the store holds about a slot's health: its
 * quarantine (LAVA's model, see slothealth.h) and the newest readings the
 * rig's own commands left in the audit trail (console answers, supply
 * readings, restart counters), which `rig diagnose` falls back on when a
 * channel cannot be read now.
 *
 * SLOT is the slot's label ("3"); STATION NULL or "" matches every station.
 * Functions return 1 when a row was found, 0 when none, -1 on failure
 * (store_error(), store_sqlite_message()).
 */
#ifndef TRACKRIG_STORE_HEALTH_H
#define TRACKRIG_STORE_HEALTH_H

#include "store.h"

/* ---- quarantine ---- */

/* The newest open quarantine of STATION/SLOT: its REASON and SINCE. */
int store_quarantine_open(store *s, const char *station, const char *slot, char *reason, size_t reason_len,
			  char *since, size_t since_len);
/* Opens a quarantine of STATION/SLOT from SINCE for REASON (RUN_ID 0: none). */
int store_quarantine_add(store *s, const char *station, const char *slot, const char *since, const char *reason,
			 int64_t run_id);
/* Clears every open quarantine of STATION/SLOT at AT, by BY: how many, or -1. */
int store_quarantine_clear(store *s, const char *station, const char *slot, const char *at, const char *by);
/* CB for every open quarantine of STATION (NULL: all), by station and slot
 * number; the strings live only during the call. Returns the count, or -1. */
typedef void (*store_quarantine_cb)(void *ctx, const char *station, const char *slot, const char *since,
				    const char *reason);
int store_quarantine_each(store *s, const char *station, store_quarantine_cb cb, void *ctx);

/* ---- the newest readings in the audit trail ---- */

/* The newest restart counter read on SLOT ("restarts" audited "ok:
 * boots=..."): its result text into RESULT. Newest by row, i.e. by when it
 * was written. */
int store_boot_reading_latest(store *s, const char *slot, const char *station, char *result, size_t len);
/* The newest good answer ("ok...") audited on SLOT's console PORT: its time
 * (ISO 8601, as stored) into AT. Matching the port keeps supply actions,
 * audited against the supply's transport, out. */
int store_console_answer_latest(store *s, const char *slot, const char *port, const char *station, char *at,
				size_t at_len);
/* The newest supply reading ("ok: output on, 12.00 V, 0.045 A") audited on
 * SLOT against the supply's TRANSPORT: its time into AT, its text into RESULT. */
int store_supply_reading_latest(store *s, const char *slot, const char *transport, const char *station, char *at,
				size_t at_len, char *result, size_t result_len);

#endif
