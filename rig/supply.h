/*
 * supply.h - a slot's bench supply switched on only at the rack file's set
 * points.
 *
 * Every place the rig switches a supply on (rig power, the scenario engine)
 * goes through supply_on(): it writes the rack file's volts and amps (and
 * ovp/ocp when given), reads them back, and switches the output on only
 * when every value reads as written. A supply someone left at 30 V is thus
 * either put back to the rack file's 12 V or, when it will not take the
 * value, left off with both values named. One place, so no caller can
 * forget a check.
 */
#ifndef TRACKRIG_SUPPLY_H
#define TRACKRIG_SUPPLY_H

#include <stddef.h>

#include "power.h"
#include "rack.h"

/* Writes SLOT's set points to DEV, reads them back and switches the output
 * on. Returns POWER_OK, or a power_err with the reason in DEV's error
 * (power_error(DEV)): a link failure as the driver said it, or a mismatch
 * as "slot 3 supply tcp://...: V-SET reads 30.00 V after writing 12.00 V;
 * output left off". The output is never switched on after a failure.
 * With `limits: leave` in the rack file it only switches on. */
int supply_on(const struct rack_slot *slot, struct power_dev *dev);

/* Compares DEV's set points with SLOT's rack file values, writing nothing.
 * Returns 0 when they agree (or the rack file leaves them), 1 when they
 * differ (each difference in DIFF: "V-SET 30.00 V, rack file says
 * 12.00 V"), or a negative power_err when they cannot be read (reason in
 * power_error(DEV)). */
int supply_compare(const struct rack_slot *slot, struct power_dev *dev, char *diff, size_t len);

#endif
