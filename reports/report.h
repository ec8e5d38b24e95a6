/*
 * report.h - reports written from the results store, never from hardware.
 *
 * Each writer reads one run back out of the store (results, measurements,
 * events) and writes it in the shape its reader wants: JUnit XML for a CI
 * system, a JSON test record for tools and archives. Whatever a device said
 * (model strings, answers, event lines) is escaped for the format.
 */
#ifndef TRACKRIG_REPORT_H
#define TRACKRIG_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* JUnit XML: one testsuite per scenario, one testcase per slot, measurements
 * as properties, failure messages that say what and where. */
int report_junit(store *db, int64_t run_id, const char *path, char *err, size_t errlen);

/* The JSON test record of a run: station, rack, seed, and per slot and
 * scenario the device identity, outcome, measurements with units and limits,
 * events and reason codes. */
int report_json(store *db, int64_t run_id, const char *path, char *err, size_t errlen);

/* The printable HTML page of rollout ID: its state and why, devices per stage
 * by progress (committed, failed or rolled back, updating, not started) with
 * a chart, and every device with its gate and detail. */
int report_html_rollout(store *db, int64_t id, const char *path, char *err, size_t errlen);

#endif
