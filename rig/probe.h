/*
 * probe.h - read a tracker's identity, firmware and status, and record it.
 *
 * Shared by `rig probe`, `rig demo` and (later) rack checks: one place that
 * decides what a probe asks, what it checks against the rack's expected
 * identity, and what goes into the results store and audit trail.
 */
#ifndef TRACKRIG_PROBE_H
#define TRACKRIG_PROBE_H

#include <stdint.h>

#include "clock.h"
#include "rack.h"
#include "store.h"
#include "tracker.h"

#define PROBE_MAX_EVENTS 8

struct probe_ctx {
	store *db;              /* NULL: record nothing */
	int64_t run_id;
	const char *operator_;
	const char *station;
	int timeout_ms;         /* per command */
	enum serial_backend backend;
	rig_clock *clock;       /* the rack's clock; NULL: the wall clock */
};

struct probe_target {
	const char *slot;       /* "3", or NULL for a bare port */
	const char *port;
	int baud;
	const char *protocol;   /* command set; NULL: teltonika */
	const struct rack_slot *expect; /* expected identity, or NULL */
};

struct probe_result {
	int rc;                 /* TRACKER_OK or a tracker_err */
	int exit_code;          /* enum rig_exit for this slot */
	char error[768];        /* what went wrong, naming port and command */
	char link[320];         /* the port as opened: "PATH (termios, 115200 8N1)" */
	struct tracker_identity id;
	struct tracker_status st;
	struct tracker_restarts restarts; /* count/uptime -1 when the driver cannot tell */
	long records;                     /* buffered records, -1 not told */
	bool identified, have_status;
	char drift[512];        /* identity differs from the rack file: both values */
	struct tracker_event events[PROBE_MAX_EVENTS];
	int n_events;
};

void probe_one(const struct probe_ctx *ctx, const struct probe_target *t, struct probe_result *r);

/* "ok", "drift", or the error kind, for tables. */
const char *probe_verdict(const struct probe_result *r);

#endif
