/*
 * slotdev.h - a slot's devices, opened the one way every command opens them.
 *
 * The rack file names each slot's console (port, baud, command set), its
 * supply (driver, transport, unit) and the boards its relay lines hang off.
 * Every command that touches a slot (run, power, relay, probe, accept,
 * diagnose, rollout, slot health, rack check) opens them here: a new way to
 * reach a device changes this file only, and a device that will not open is
 * described the same way wherever it is met.
 */
#ifndef TRACKRIG_SLOTDEV_H
#define TRACKRIG_SLOTDEV_H

#include <stddef.h>

#include "ingest.h"
#include "power.h"
#include "rack.h"
#include "relay.h"
#include "tracker.h"

/* The slot's command set (the rack file's `protocol:`, teltonika when it
 * names none), or NULL for a name no driver has. */
const struct tracker_proto *slotdev_proto(const struct rack_slot *s);

/* Opens the slot's console with its command set; its waits go through CLOCK
 * when not NULL. A slot without a console port takes its commands over its
 * uplink: codec 12 through the rig's ingest ING, found by the slot's IMEI
 * (ING NULL: the command has no ingest, an error for such a slot). Returns
 * TRACKER_OK or a tracker_err with the reason in ERR ("unknown tracker
 * protocol 'x' (known: teltonika, agent)", "PORT: ..."). */
int slotdev_console(const struct rack_slot *s, ingest *ing, const struct tracker_clock *clock, tracker **out,
		    char *err, size_t len);

/* Opens the slot's supply (TIMEOUT_MS <= 0: the driver's default). Returns
 * POWER_OK, POWER_ERR_ARG when the slot has none or names an unknown
 * driver, or the driver's error; the reason is in ERR. */
int slotdev_supply(const struct rack_slot *s, int timeout_ms, struct power_dev **out, char *err, size_t len);

/* Opens relay board B of RACK. Returns RELAY_OK or an error with the reason
 * in ERR ("board ign: ..."). */
int slotdev_board(const struct rack *rack, int b, int timeout_ms, struct relay_dev **out, char *err, size_t len);

/* Index of the board named NAME in RACK, or -1. */
int slotdev_board_index(const struct rack *rack, const char *name);

#endif
