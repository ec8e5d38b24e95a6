/*
 * evidence.c - one gatherer of diagnosis evidence (contract in evidence.h).
 */
#include "evidence.h"
#include "store_health.h"
#include "store_records.h"

#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_WINDOW_MS 600000   /* crash resets count within 10 min */
#define LATE_ANSWER_MS 3000        /* a slow console's answer still counts as an answer */

/* ---- console ---- */

/* An intact identity answer: "Ver:... Hw:... IMEI:<15 digits> ...", its
 * IMEI into GOT. A console that drops characters fails this long before it
 * fails the prefix. */

void evidence_console(const struct evidence_source *src, struct diag_console *c)
{
	c->last_seen_ms = DIAG_NEVER;
	bool uplink = src->over_uplink && src->trk;
	if ((!src->console_path || !*src->console_path) && !uplink) {
		c->state = DIAG_CH_ABSENT;
		snprintf(c->detail, sizeof c->detail, "no console in the rack file");
		return;
	}
	snprintf(c->where, sizeof c->where, "%s", uplink ? tracker_where(src->trk) : src->console_path);
	if (!src->trk) {
		c->state = DIAG_CH_UNREACHABLE;
		snprintf(c->detail, sizeof c->detail, "%.300s", src->console_err ? src->console_err : "console not open");
		return;
	}
	/* Two pings (the driver's short identity question), a third when they
	 * disagree; a try after a silent one waits long enough for a slow
	 * console's answer to count. */
	bool timed_out = false, gone = false;
	char bad[DIAG_TEXT_MAX] = "", other[16] = "";
	for (int i = 0; i < 3; i++) {
		if (i == 2 && (c->good == 2 || (c->good == 0 && c->garbled == 0) || c->garbled == 2))
			break;
		int wait = timed_out && src->timeout_ms < LATE_ANSWER_MS ? LATE_ANSWER_MS : src->timeout_ms;
		char imei[32];
		int rc = tracker_ping(src->trk, imei, sizeof imei, wait);
		c->asked++;
		if (rc == TRACKER_OK) {
			/* Another unit on this slot's port (a swapped cable, a
			 * reused port) tells nothing about this slot's unit. */
			if (src->imei && *src->imei && strcmp(imei, src->imei) != 0) {
				snprintf(other, sizeof other, "%.15s", imei);
				continue;
			}
			c->good++;
			continue;
		}
		if ((rc == TRACKER_ERR_GONE && !uplink) || rc == TRACKER_ERR_IO) {
			gone = true;
			snprintf(bad, sizeof bad, "%.300s", tracker_error(src->trk));
			break;
		}
		if (rc == TRACKER_ERR_TIMEOUT || rc == TRACKER_ERR_GONE) {
			timed_out = rc == TRACKER_ERR_TIMEOUT;
			if (!*bad)
				snprintf(bad, sizeof bad, "%.300s", tracker_error(src->trk));
			continue;
		}
		c->garbled++;
		snprintf(bad, sizeof bad, "%.300s", tracker_error(src->trk));
	}
	if (*other && !c->good && !c->garbled) {
		c->state = DIAG_CH_UNREACHABLE;
		snprintf(bad, sizeof bad, "%.120s: answers as IMEI %s, not the slot's %.15s: console cable to another unit, "
			 "or another unit in the slot", c->where, other, src->imei);
	} else if (gone) {
		c->state = DIAG_CH_UNREACHABLE;
	} else if (c->garbled) {
		c->state = DIAG_CH_GARBLED;
	} else if (c->good) {
		c->state = DIAG_CH_ANSWERED;
		c->last_seen_ms = src->now_ms;
		*bad = '\0';
	} else {
		c->state = DIAG_CH_SILENT;
	}
	snprintf(c->detail, sizeof c->detail, "%s", bad);
}

/* ---- supply ---- */

void evidence_supply(const struct evidence_source *src, struct diag_supply *s)
{
	s->read_at_ms = DIAG_NEVER;
	if (!src->has_supply) {
		s->state = DIAG_CH_ABSENT;
		snprintf(s->detail, sizeof s->detail, "%s", src->supply_err && *src->supply_err ? src->supply_err
			 : "no supply in the rack file");
		return;
	}
	snprintf(s->where, sizeof s->where, "%s", src->supply_where ? src->supply_where : "");
	struct power_status st;
	if (!src->supply) {
		s->state = DIAG_CH_UNREACHABLE;
		snprintf(s->detail, sizeof s->detail, "%.300s", src->supply_err ? src->supply_err : "supply not open");
		return;
	}
	if (src->supply->driver->status(src->supply, &st) != POWER_OK) {
		s->state = DIAG_CH_UNREACHABLE;
		snprintf(s->detail, sizeof s->detail, "%.300s", power_error(src->supply));
		return;
	}
	diag_supply_reading(s, &st, src->now_ms);
}

/* ---- the device's own account: modem, GNSS, restart counter ---- */

int evidence_device(const struct evidence_source *src, struct diag_evidence *ev, struct evidence_boot_reading *boot)
{
	struct tracker_status ts;
	boot->at_ms = DIAG_NEVER;
	boot->boots = -1;
	if (!src->trk || tracker_status(src->trk, &ts, src->timeout_ms) != TRACKER_OK)
		return -1;
	struct diag_uplink *u = &ev->uplink;
	u->state = DIAG_CH_ANSWERED;
	u->registered = *ts.operator_code && ts.signal > 0;
	u->data_link = ts.data_link && ts.gprs;
	/* A refused data session, as far as the driver can tell it (a real
	 * unit only shows it as attached, registered and without a link). */
	enum tracker_data_session ds;
	u->pdp_rejected = tracker_get_proto(src->trk)->data_session &&
			  tracker_data_session(src->trk, &ds, src->timeout_ms) == TRACKER_OK && ds == TRACKER_DATA_REFUSED;
	u->signal = ts.signal;
	snprintf(u->operator_code, sizeof u->operator_code, "%s", ts.operator_code);
	/* The device's own GNSS report (its fix or not and satellite count):
	 * no HDOP, and a fix it reports is current. */
	if (ev->gnss.state != DIAG_CH_ANSWERED) {
		struct diag_gnss *g = &ev->gnss;
		g->state = DIAG_CH_ANSWERED;
		snprintf(g->source, sizeof g->source, "device");
		g->fix = ts.gnss_on == 1;
		g->mode = g->fix ? 3 : 1;
		g->satellites_used = ts.satellites;
		g->hdop = NAN;
		g->last_fix_ms = g->fix ? src->now_ms : DIAG_NEVER;
	}
	/* The restart counter, where the driver can tell it; without it the
	 * boot history stays unknown, never "no restarts". */
	struct tracker_restarts r;
	if (!tracker_get_proto(src->trk)->restarts || tracker_restarts(src->trk, &r, src->timeout_ms) != TRACKER_OK)
		return 0;
	boot->boots = r.count > INT_MAX ? INT_MAX : (int)r.count;
	snprintf(boot->reset, sizeof boot->reset, "%s", r.reset_reason);
	boot->uptime_s = r.uptime_s;
	boot->at_ms = src->now_ms;
	return 0;
}

/* ---- uplink records in the results store ---- */

static int64_t never_if_none(int64_t v)
{
	return v == STORE_NONE ? DIAG_NEVER : v;
}

void evidence_records(store *db, const char *imei, int64_t now_ms, struct diag_uplink *u)
{
	(void)now_ms;
	if (!db || !imei || !*imei) {
		u->records = DIAG_CH_ABSENT;
		snprintf(u->records_detail, sizeof u->records_detail, "%s", db ? "no IMEI known for the slot" : "no results store");
		return;
	}
	struct store_uplink_summary sum;
	if (store_uplink_summary(db, imei, &sum) < 0) {
		u->records = DIAG_CH_UNREACHABLE;
		snprintf(u->records_detail, sizeof u->records_detail, "results store: %.250s", store_sqlite_message(db));
		return;
	}
	u->n_records = sum.n_records;
	u->last_record_ms = never_if_none(sum.last_arrival_ms);
	u->last_record_ts_ms = never_if_none(sum.last_ts_ms);
	u->io_signal = sum.io_signal;
	u->io_ext_mv = sum.io_ext_mv;
	u->io_gnss = sum.io_gnss;
	u->io_ext_mv_before = sum.io_ext_mv_before;
	u->bytes_used = sum.bytes_used;
	u->last_login_ms = diag_parse_time(*sum.last_login ? sum.last_login : NULL);
	/* A unit that never reported to this rig's ingest has no uplink
	 * channel here: not a missing reading. */
	if (u->n_records == 0 && u->bytes_used < 0) {
		u->records = DIAG_CH_ABSENT;
		snprintf(u->records_detail, sizeof u->records_detail, "no record or link of IMEI %.15s in the store", imei);
		return;
	}
	u->records = DIAG_CH_ANSWERED;
}

/* ---- GNSS through gpsd ---- */

bool evidence_gpsd(gnss_daemon *gd, const char *path, const struct gnss_reading *taken, int64_t now_ms,
		   struct diag_gnss *g)
{
	struct gnss_reading r;
	if (taken)
		r = *taken;
	else if (!gd || !path || !*path || gnss_get(gd, path, &r) != GNSS_OK)
		return false;
	if (r.mode == GNSS_MODE_NOT_SEEN)
		return false;
	g->state = DIAG_CH_ANSWERED;
	snprintf(g->source, sizeof g->source, "gpsd");
	g->mode = r.mode;
	g->fix = r.mode >= GNSS_MODE_2D;
	g->satellites_used = r.satellites_used;
	g->hdop = r.hdop;
	/* Fix age by the receiver's own clock, against rack time. */
	g->last_fix_ms = r.last_fix_ms == GNSS_NEVER ? DIAG_NEVER
			 : r.mode >= GNSS_MODE_2D ? now_ms : (int64_t)(r.fix_time * 1000.0);
	return true;
}

/* ---- boot history ---- */

static bool abnormal(const char *reset)
{
	return !strcmp(reset, "watchdog") || !strcmp(reset, "crash") || !strcmp(reset, "exception");
}

void evidence_boot(const struct evidence_boot_reading *then, const struct evidence_boot_reading *now,
		   int64_t window_ms, struct diag_boot *out)
{
	memset(out, 0, sizeof *out);
	if (now->at_ms == DIAG_NEVER) {
		out->state = DIAG_CH_UNKNOWN;
		return;
	}
	if (now->boots < 0) {
		out->state = DIAG_CH_ABSENT;   /* the device does not tell its restart counter */
		return;
	}
	out->state = DIAG_CH_ANSWERED;
	out->boots_now = now->boots;
	out->uptime_s = now->uptime_s;
	snprintf(out->reset_reason, sizeof out->reset_reason, "%s", now->reset);
	bool usable = then && then->at_ms != DIAG_NEVER && then->boots >= 0 && then->boots <= now->boots &&
		      now->at_ms - then->at_ms <= (window_ms > 0 ? window_ms : DEFAULT_WINDOW_MS);
	if (!usable) {
		/* One reading: only the reset that started this boot. */
		out->boots_then = now->boots;
		out->window_ms = now->uptime_s * 1000;
		out->abnormal_resets = abnormal(now->reset) ? 1 : 0;
		return;
	}
	int delta = now->boots - then->boots;
	out->boots_then = then->boots;
	out->window_ms = now->at_ms - then->at_ms + then->uptime_s * 1000;
	/* The counter says how many resets; the source of the newest says
	 * what kind. With both ends abnormal the ones between count too. */
	if (!abnormal(now->reset))
		out->abnormal_resets = 0;
	else if (delta == 0)
		out->abnormal_resets = 1;
	else
		out->abnormal_resets = delta + (abnormal(then->reset) ? 1 : 0);
}

void evidence_boot_text(const struct evidence_boot_reading *r, char *buf, size_t len)
{
	/* The rack's time goes in the text: the audit row's own time is the
	 * wall clock, which is not the rack's on a virtual rack. */
	snprintf(buf, len, "ok: boots=%d reset=%s uptime=%ld rack_ms=%lld", r->boots, *r->reset ? r->reset : "-",
		 r->uptime_s, (long long)r->at_ms);
}

bool evidence_boot_parse(const char *text, struct evidence_boot_reading *r)
{
	char reset[24];
	long long at;
	if (!text || sscanf(text, "ok: boots=%d reset=%23s uptime=%ld rack_ms=%lld", &r->boots, reset, &r->uptime_s,
			    &at) != 4)
		return false;
	r->at_ms = at;
	snprintf(r->reset, sizeof r->reset, "%s", strcmp(reset, "-") ? reset : "");
	return true;
}

bool evidence_boot_earlier(store *db, const char *slot, const char *station, int64_t now_ms, int64_t window_ms,
			   struct evidence_boot_reading *out)
{
	out->at_ms = DIAG_NEVER;
	if (!db || !slot)
		return false;
	char result[256];
	if (store_boot_reading_latest(db, slot, station, result, sizeof result) != 1)
		return false;
	bool ok = evidence_boot_parse(result, out) && out->at_ms <= now_ms &&
		  now_ms - out->at_ms <= (window_ms > 0 ? window_ms : DEFAULT_WINDOW_MS);
	if (!ok)
		out->at_ms = DIAG_NEVER;
	return ok;
}

/* No receiver reading: the unit's own GNSS status in its newest record
 * (IO 69), while that record is recent. */
static void gnss_from_records(struct diag_evidence *ev)
{
	const struct diag_uplink *u = &ev->uplink;
	int64_t after = u->silent_after_ms > 0 ? u->silent_after_ms : 600000;
	if (ev->gnss.state == DIAG_CH_ANSWERED || u->records != DIAG_CH_ANSWERED || u->io_gnss < 0 ||
	    u->last_record_ms == DIAG_NEVER || ev->now_ms - u->last_record_ms > after)
		return;
	struct diag_gnss *g = &ev->gnss;
	g->state = DIAG_CH_ANSWERED;
	snprintf(g->source, sizeof g->source, "telemetry");
	g->fix = u->io_gnss == 1;
	g->mode = g->fix ? 3 : 1;
	g->satellites_used = -1;
	g->hdop = NAN;
	g->last_fix_ms = g->fix ? u->last_record_ts_ms : DIAG_NEVER;
}

/* Waits on the caller's clock (virtual time moves only through it). */
static int64_t pause_ms(const struct evidence_source *src, int64_t now, int ms)
{
	int fds[2];
	if (pipe(fds) != 0)
		return now + ms;
	if (src->clock) {
		src->clock->wait_readable(src->clock->ctx, fds[0], now + ms);
		now = src->clock->now_ms(src->clock->ctx);
	} else {
		poll(&(struct pollfd){ .fd = fds[0], .events = POLLIN }, 1, ms);
		now += ms;
	}
	close(fds[0]);
	close(fds[1]);
	return now;
}

/* The last reset was a watchdog or crash and nothing earlier is known:
 * watch the restart counter for a while. A unit in a crash loop resets
 * again within its loop period; a single crash does not. */
static void watch_boots(const struct evidence_source *src, const struct evidence_boot_reading *first,
			struct evidence_boot_reading *last, struct diag_evidence *ev)
{
	*last = *first;
	int64_t start = src->clock ? src->clock->now_ms(src->clock->ctx) : 0, t = start;
	while (t - start < src->boot_watch_ms) {
		t = pause_ms(src, t, 1000);
		struct evidence_source again = *src;
		again.now_ms = src->now_ms + (t - start);
		struct evidence_boot_reading r;
		struct diag_evidence scratch;
		diag_evidence_init(&scratch, again.now_ms);
		scratch.gnss = ev->gnss;
		if (evidence_device(&again, &scratch, &r) == 0 && r.boots > first->boots) {
			*last = r;
			return;
		}
	}
}

void evidence_gather(const struct evidence_source *src, struct diag_evidence *ev,
		     struct evidence_boot_reading *boot_now)
{
	evidence_supply(src, &ev->supply);
	evidence_gpsd(src->gps, src->nmea_path, src->gps_reading, src->now_ms, &ev->gnss);
	evidence_console(src, &ev->console);
	struct evidence_boot_reading first = { .at_ms = DIAG_NEVER, .boots = -1 }, last;
	bool answering = ev->console.state == DIAG_CH_ANSWERED;
	if (answering && evidence_device(src, ev, &first) < 0) {
		/* The console answered its identity question but not the status commands: the
		 * modem and boot history stay "not read". */
		first.at_ms = DIAG_NEVER;
	}
	if (src->db_lock)
		pthread_mutex_lock(src->db_lock);
	evidence_records(src->db, src->imei, src->now_ms, &ev->uplink);
	struct evidence_boot_reading then;
	bool have_then = evidence_boot_earlier(src->db, src->slot_label, src->station, src->now_ms, src->boot_window_ms,
					       &then);
	if (src->db_lock)
		pthread_mutex_unlock(src->db_lock);
	ev->uplink.silent_after_ms = src->silent_after_ms;
	ev->uplink.plan_bytes = src->plan_bytes;
	gnss_from_records(ev);
	last = first;
	if (first.at_ms != DIAG_NEVER && first.boots >= 0 && abnormal(first.reset) && src->boot_watch_ms > 0 &&
	    (!have_then || then.boots == first.boots)) {
		watch_boots(src, &first, &last, ev);
		then = first;
		have_then = true;
	}
	evidence_boot(have_then ? &then : NULL, &last, src->boot_window_ms, &ev->boot);
	if (ev->console.state == DIAG_CH_ABSENT)
		ev->boot.state = ev->uplink.state = DIAG_CH_ABSENT;
	if (boot_now)
		*boot_now = last;
}
