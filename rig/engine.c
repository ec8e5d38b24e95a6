/* engine.c - scenarios on slots, one thread per slot (see engine.h). */
#include "engine.h"
#include "timefmt.h"
#include "diagnose.h"
#include "evidence.h"
#include "power.h"
#include "rackctl.h"
#include "slotdev.h"
#include "store_records.h"
#include "usb.h"
#include "relay.h"
#include "supply.h"
#include "tracker.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_EVERY_MS 1000   /* how often expect re-checks a state or a diagnosis */
#define CYCLE_OFF_MS 1000    /* how long a power cycle leaves the slot off */
#define GNSS_SETTLE_MS 1000  /* wall ms gpsd gets to report a rack second's NMEA */

/* Everything one slot's thread owns. */
struct slot_run {
	const struct rack *rack;
	const struct rack_slot *slot;
	const struct scenario *scenarios;
	int n_sc;
	const struct engine_opts *o;
	struct engine_result *results;   /* n_sc of them */
	pthread_mutex_t *db_lock;
	pthread_mutex_t *progress_lock;  /* guards status and done: the main thread reads them */
	pthread_t thread;
	char label[12];

	tracker *trk;
	char console_err[512];
	struct power_dev *supply;
	char supply_err[512];
	struct relay_dev *boards[RACK_MAX_BOARDS];

	struct engine_result *cur;       /* the scenario running now */
	int mark;                        /* events before this index predate the last action */
	int64_t last_power_on;           /* rack ms; -1 never */
	char last_answer[TRACKER_LINE_MAX + 1];
	int64_t cut_ms, restore_ms;      /* last coverage cut and return, Unix ms on the rig clock */
	uint64_t dups_at_cut;            /* the ingest's duplicate count when coverage went */
	struct flush_report flush;       /* the last backlog check */
	bool have_flush;
	/* What the running scenario changed, so that its end can put back what
	 * a failure left (a cut antenna, a spent data plan, power off) and the
	 * next scenario meets the slot as the one before found it. */
	struct { char line[RACK_NAME_MAX]; bool was_on; } touched[RACK_MAX_LINES];
	int n_touched;
	bool power_left_off, datacap_set;
	double tx_peak_a;                /* highest supply current while the backlog went out; NAN unread */
	/* the trace step's pacing: read the supply at trace_next while before trace_until */
	int64_t trace_start, trace_next, trace_until, trace_every;
	int trace_cap;
	struct tracker_clock trk_clock;  /* the rig clock, taking trace readings while the console waits */
	char tx_err[160];                /* why it is NAN */
	/* GNSS, by the receiver's own clock (Unix ms) so virtual time holds */
	int64_t gnss_mark_ms;            /* power on or antenna back: what a first fix is timed from */
	bool gnss_mark_is_power;         /* the mark was a power on (TTFF) or an antenna return */
	int64_t gnss_cut_ms, gnss_restore_ms; /* the last antenna cut */
	double ttff_s, reacq_s;          /* NAN until measured */
	/* the last GNSS read that was caught up: its rack second (Unix ms) and
	 * gpsd's report counts then (gnss_read) */
	int64_t gnss_at;
	unsigned gnss_tpvs, gnss_skys;
	/* A receiver that did not report a second it was waited for, and
	 * gpsd's message count then: not waited for again until it speaks or
	 * the rig switches something (what makes a simulated receiver start). */
	long restarts_before;            /* the restart counter read before the last power off, -1 none */
	int64_t restart_seen;            /* rack ms the unit was first seen restarted after a power on, -1 */
	int ota_boots;                   /* restarts during the last update, -1 not told */
	double ota_recovery_s;           /* NAN until an update ended */
	char status[160];                /* progress line (under progress_lock) */
	bool done;                       /* (under progress_lock) */
};

static struct ingest_device_stats uplink_stats(struct slot_run *sr);
static gnss_daemon *gps_of(const struct slot_run *sr);
static int gnss_read(struct slot_run *sr, struct gnss_reading *g);

const char *engine_outcome_name(enum engine_outcome o)
{
	static const char *const names[] = { "pass", "fail", "error", "timeout", "aborted", "skipped" };
	return names[o];
}

static int timeout_ms(const struct slot_run *sr)
{
	return sr->o->command_timeout_ms > 0 ? sr->o->command_timeout_ms : 5000;
}

static int64_t now(const struct slot_run *sr) { return clock_now(sr->o->clock); }

/* ---- recording ---- */

static void with_db(struct slot_run *sr, void (*fn)(struct slot_run *, void *), void *arg)
{
	if (!sr->o->db)
		return;
	pthread_mutex_lock(sr->db_lock);
	fn(sr, arg);
	pthread_mutex_unlock(sr->db_lock);
}

/* The progress line the main thread draws; DONE marks the slot finished. */
__attribute__((format(printf, 3, 4)))
static void set_status(struct slot_run *sr, bool done, const char *fmt, ...)
{
	pthread_mutex_lock(sr->progress_lock);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sr->status, sizeof sr->status, fmt, ap);
	va_end(ap);
	sr->done = done;
	pthread_mutex_unlock(sr->progress_lock);
}

struct audit_arg { const char *command, *result, *port; };

static void audit_fn(struct slot_run *sr, void *arg)
{
	struct audit_arg *a = arg;
	struct store_audit row = {
		.run_id = sr->o->run_id, .operator_ = sr->o->operator_, .station = sr->rack->station,
		.slot = sr->label, .port = a->port, .imei = *sr->cur->imei ? sr->cur->imei : NULL,
		.command = a->command, .result = a->result,
	};
	store_audit_add(sr->o->db, &row);
}

static void audit(struct slot_run *sr, const char *port, const char *command, const char *result)
{
	struct audit_arg a = { command, result, port };
	with_db(sr, audit_fn, &a);
}

/* Moves events the driver queued into the result, stamped on the rack clock. */
static void take_events(struct slot_run *sr)
{
	struct tracker_event ev;
	while (sr->trk && tracker_next_event(sr->trk, &ev)) {
		struct engine_result *r = sr->cur;
		if (r->n_events == ENGINE_MAX_EVENTS) { /* keep the newest */
			memmove(r->events, r->events + 1, sizeof r->events[0] * (ENGINE_MAX_EVENTS - 1));
			r->n_events--;
			if (sr->mark > 0)
				sr->mark--;
		}
		struct engine_event *e = &r->events[r->n_events++];
		e->at = now(sr);
		snprintf(e->kind, sizeof e->kind, "%s", ev.kind);
		snprintf(e->text, sizeof e->text, "%.159s", ev.text);
	}
}

/* Fails the current result with a message naming slot, scenario and step.
 * After Ctrl-C nothing is a verdict any more: whatever a step saw once the
 * clock was aborted (a wait cut short, a command not answered) is ABORTED. */
__attribute__((format(printf, 4, 5)))
static enum engine_outcome fail(struct slot_run *sr, const struct scenario_step *st, enum engine_outcome o,
				const char *fmt, ...)
{
	char *m = sr->cur->message;
	size_t len = sizeof sr->cur->message;
	bool stopped = o != OUTCOME_PASS && o != OUTCOME_ABORTED && clock_aborted(sr->o->clock);
	if (stopped)
		o = OUTCOME_ABORTED;
	int n = snprintf(m, len, "slot %s, %s:%d: %s", sr->label, sr->cur->scenario->file, st ? st->line : 0,
			 stopped ? "stopped: " : "");
	if (n < 0 || (size_t)n >= len)
		return o; /* the place alone fills the message: it says enough */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return o;
}

/* ---- whose fault: the device's (FAIL) or the rig's (ERROR) ---- */

/* A slot without a console port takes its commands over its uplink
 * (codec 12 through the rig's ingest). */
static bool over_uplink(const struct slot_run *sr) { return !*sr->slot->console.path; }

/* Where the slot's commands go, for the audit trail. */
static const char *cmd_where(const struct slot_run *sr)
{
	return sr->trk ? tracker_where(sr->trk) : sr->slot->console.path;
}

/* Why the last console call failed, in words naming the port. */
static const char *console_why(struct slot_run *sr, char *buf, size_t len)
{
	if (!sr->trk && over_uplink(sr))
		snprintf(buf, len, "no command link to IMEI %s through the rig's ingest", sr->slot->expect.imei);
	else if (!sr->trk)
		snprintf(buf, len, "console %s gone (hang-up or unplugged)", sr->slot->console.path);
	else
		snprintf(buf, len, "%s", tracker_error(sr->trk));
	return buf;
}

/* Whose a failed console call is. The rig's (ERROR) when its link to the
 * device failed: the port vanished or hung up (also when the node went while
 * a command waited for its answer), an I/O error, the rig's clock; nobody's
 * (ABORTED) after Ctrl-C; the device's (FAIL) when the port was there and
 * the device answered wrongly or not at all. */
static enum engine_outcome console_verdict(struct slot_run *sr, int rc)
{
	if (clock_aborted(sr->o->clock))
		return OUTCOME_ABORTED;
	/* Over the uplink the link is the device's own connection: one that is
	 * not there (GONE) is the device's doing; the rig's are a bad request
	 * (ARG), its clock or ingest (IO). */
	if (over_uplink(sr))
		return !sr->trk || rc == TRACKER_ERR_IO || rc == TRACKER_ERR_ARG ? OUTCOME_ERROR : OUTCOME_FAIL;
	if (!sr->trk || rc == TRACKER_ERR_GONE || rc == TRACKER_ERR_IO || rc == TRACKER_ERR_ARG)
		return OUTCOME_ERROR;
	if (access(sr->slot->console.path, F_OK) != 0)
		return OUTCOME_ERROR;
	return OUTCOME_FAIL;
}

/* Fails the step for a console call that returned RC, classified. */
static enum engine_outcome console_fail(struct slot_run *sr, const struct scenario_step *st, int rc, const char *what)
{
	enum engine_outcome o = console_verdict(sr, rc);
	char why[600], whose[300];
	console_why(sr, why, sizeof why);
	if (o != OUTCOME_ERROR)
		return fail(sr, st, o, "%s: %s", what, why);
	const char *clk = clock_error(sr->o->clock);
	if (sr->trk && !over_uplink(sr) && access(sr->slot->console.path, F_OK) != 0)
		snprintf(whose, sizeof whose, "the console port is gone: the rig's link, not the device");
	else if (*clk)
		snprintf(whose, sizeof whose, "the rig's clock: %.200s", clk);
	else
		snprintf(whose, sizeof whose, "the rig's link to the device failed, not the device");
	return fail(sr, st, o, "%s: %s; %s", what, why, whose);
}

/* A device check that found nothing: the device's failure, unless the
 * console the evidence comes through vanished on the way (the rig's). */
static enum engine_outcome device_or_link(struct slot_run *sr)
{
	return sr->trk ? OUTCOME_FAIL : OUTCOME_ERROR;
}

/* What a message adds when device_or_link() said ERROR. */
static const char *link_note(struct slot_run *sr)
{
	return sr->trk ? "" : "; the console port is gone (the rig's link, not the device): what the device said could not be seen";
}

/* A wait that came back negative: Ctrl-C (ABORTED) or the rig's clock link
 * (the rack's control socket) failed (ERROR). */
static enum engine_outcome cut_short(struct slot_run *sr, const struct scenario_step *st)
{
	if (clock_aborted(sr->o->clock))
		return OUTCOME_ABORTED;
	const char *clk = clock_error(sr->o->clock);
	return fail(sr, st, OUTCOME_ERROR, "the rig's clock failed: %s", *clk ? clk : "wait failed");
}

/* ---- waiting ---- */

/* Waits until DEADLINE on the rack clock, taking console events as they
 * come. Returns 0, -1 aborted. */
/* Reads the supply when a trace step's next reading is due. */
static void trace_due(struct slot_run *sr)
{
	if (now(sr) >= sr->trace_until || now(sr) < sr->trace_next)
		return;
	struct engine_result *r = sr->cur;
	if (r->n_trace == sr->trace_cap) {
		int cap = sr->trace_cap ? sr->trace_cap * 2 : 256;
		struct store_supply_sample *grown = realloc(r->trace, (size_t)cap * sizeof *grown);
		if (!grown) {
			sr->trace_until = 0;   /* out of memory: the trace ends, the scenario goes on */
			return;
		}
		r->trace = grown;
		sr->trace_cap = cap;
	}
	struct power_status ps;
	bool ok = sr->supply->driver->status(sr->supply, &ps) == 0;
	r->trace[r->n_trace++] = (struct store_supply_sample){ .t_ms = now(sr) - sr->trace_start,
							       .volts = ok ? ps.v_out : NAN, .amps = ok ? ps.i_out : NAN };
	/* the next reading on the pace's grid, past now */
	while (sr->trace_next <= now(sr))
		sr->trace_next += sr->trace_every;
}

/* clock_wait_fd for this slot: every wait, the console's own included, wakes
 * for a trace's readings on the way to DEADLINE. */
static int slot_wait(struct slot_run *sr, int fd, int64_t deadline)
{
	for (;;) {
		trace_due(sr);
		bool for_trace = sr->trace_next < deadline && sr->trace_next < sr->trace_until;
		int rc = clock_wait_fd(sr->o->clock, fd, for_trace ? sr->trace_next : deadline);
		if (rc != 0 || !for_trace) {
			trace_due(sr);
			return rc;
		}
	}
}

static int trk_wait(void *ctx, int fd, int64_t deadline) { return slot_wait(ctx, fd, deadline); }
static int64_t trk_now(void *ctx) { return now(ctx); }

static int pump_until(struct slot_run *sr, int64_t deadline, const char *want_kind, bool *found)
{
	int fd = sr->trk ? tracker_fd(sr->trk) : -1;
	for (;;) {
		if (want_kind) {
			for (int i = sr->mark; i < sr->cur->n_events; i++)
				if (strcmp(sr->cur->events[i].kind, want_kind) == 0) {
					*found = true;
					return 0;
				}
		}
		int rc = slot_wait(sr, fd, deadline);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return 0;
		if (tracker_poll(sr->trk, 0) < 0) {
			/* The console vanished: nothing more will come, wait out the time. */
			tracker_close(sr->trk);
			sr->trk = NULL;
			fd = -1;
		}
		take_events(sr);
	}
}

static int sleep_pumping(struct slot_run *sr, int64_t ms)
{
	return pump_until(sr, now(sr) + ms, NULL, NULL);
}

/* ---- channels: console, supply, relay lines ---- */

static int command(struct slot_run *sr, const char *text, char *answer, size_t len, int tmo)
{
	if (!sr->trk)
		return TRACKER_ERR_GONE;
	int rc = tracker_command(sr->trk, text, answer, len, tmo);
	take_events(sr);
	return rc;
}

/* Asks the unit its short identity question until it answers or DEADLINE
 * passes: a unit that answers has booted. Returns 0 answered, 1 silent, -1
 * stopped. */
static int wait_answering(struct slot_run *sr, int64_t deadline)
{
	char imei[16];
	for (;;) {
		if (sr->trk && tracker_ping(sr->trk, imei, sizeof imei, timeout_ms(sr)) == TRACKER_OK) {
			take_events(sr);
			return 0;
		}
		take_events(sr);
		if (now(sr) >= deadline)
			return 1;
		int64_t next = now(sr) + POLL_EVERY_MS;
		if (pump_until(sr, next < deadline ? next : deadline, NULL, NULL) < 0)
			return -1;
	}
}

/* The unit's restart counter, or -1 when it cannot tell (no such capability,
 * no answer). */
static long restart_count(struct slot_run *sr)
{
	struct tracker_restarts r;
	if (!sr->trk || !tracker_get_proto(sr->trk)->restarts || tracker_restarts(sr->trk, &r, timeout_ms(sr)))
		return -1;
	take_events(sr);
	return r.count;
}

/* Whether the unit restarted since the last power on, by its own account:
 * its uptime is shorter than the time since, or its restart counter moved
 * past the count read before the power went. 1 yes, 0 no, negative the
 * tracker's error. */
static int restarted_since_power_on(struct slot_run *sr)
{
	if (!sr->trk)
		return TRACKER_ERR_GONE;
	struct tracker_restarts r;
	int rc = tracker_restarts(sr->trk, &r, timeout_ms(sr));
	take_events(sr);
	if (rc)
		return rc;
	int64_t since_s = (now(sr) - sr->last_power_on) / 1000;
	if (r.uptime_s >= 0 && r.uptime_s <= since_s + 1)
		return 1;
	return sr->restarts_before >= 0 && r.count > sr->restarts_before;
}

static int supply_output(struct slot_run *sr, bool on)
{
	/* On: the rack file's set points first, read back (supply.h). */
	int rc = on ? supply_on(sr->slot, sr->supply) : sr->supply->driver->output(sr->supply, false);
	audit(sr, sr->slot->power.bus.transport, on ? "power on" : "power off",
	      rc ? power_error(sr->supply) : "ok");
	return rc;
}

static struct relay_dev *board_for(struct slot_run *sr, const struct rack_line *line, char *err, size_t len)
{
	for (int b = 0; b < sr->rack->n_boards; b++) {
		const struct rack_board *rb = &sr->rack->boards[b];
		if (strcmp(rb->name, line->board) != 0)
			continue;
		if (!sr->boards[b] && slotdev_board(sr->rack, b, 0, &sr->boards[b], err, len) != RELAY_OK)
			return NULL;
		return sr->boards[b];
	}
	snprintf(err, len, "no board named %s", line->board);
	return NULL;
}

static const struct rack_line *line_named(const struct rack_slot *s, const char *name)
{
	for (int i = 0; i < s->n_lines; i++)
		if (strcmp(s->lines[i].name, name) == 0)
			return &s->lines[i];
	return NULL;
}

static int set_line(struct slot_run *sr, const char *name, bool on, char *err, size_t len)
{
	const struct rack_line *line = line_named(sr->slot, name);
	if (!line) {
		snprintf(err, len, "slot has no relay line '%s' in %s", name, sr->rack->file);
		return -1;
	}
	struct relay_dev *b = board_for(sr, line, err, len);
	if (!b)
		return -1;
	int rc = b->driver->set(b, line->channel, on);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "relay %s %s", name, on ? "on" : "off");
	audit(sr, line->board, cmd, rc ? relay_error(b) : "ok");
	if (rc)
		snprintf(err, len, "%s", relay_error(b));
	return rc ? -1 : 0;
}

/* Power through the hub port a USB-powered slot hangs off. */
static int set_usb_power(struct slot_run *sr, bool on, char *err, size_t len)
{
	char hub[64];
	int port;
	if (usb_port_split(sr->slot->power.usb, hub, sizeof hub, &port) != USB_OK) {
		snprintf(err, len, "power usb '%s' is not a port path", sr->slot->power.usb);
		return -1;
	}
	int rc = usb_hub_port_power(hub, port, on, NULL, err, len);
	audit(sr, sr->slot->power.usb, on ? "usb power on" : "usb power off", rc ? err : "ok");
	return rc == USB_OK ? 0 : -1;
}

/* Power through the slot's supply, its power relay line or its hub port. */
static int set_power(struct slot_run *sr, bool on, char *err, size_t len)
{
	if (sr->slot->power.kind == RACK_POWER_RELAY)
		return set_line(sr, sr->slot->power.relay, on, err, len);
	if (sr->slot->power.kind == RACK_POWER_USB)
		return set_usb_power(sr, on, err, len);
	if (!sr->supply) {
		snprintf(err, len, "%s", *sr->supply_err ? sr->supply_err : "slot has no supply in the rack file");
		return -1;
	}
	if (supply_output(sr, on)) {
		snprintf(err, len, "%s", power_error(sr->supply));
		return -1;
	}
	return 0;
}

/* Remembers a line's state before the scenario first switches it. */
static void note_line(struct slot_run *sr, const char *name, bool to)
{
	for (int i = 0; i < sr->n_touched; i++)
		if (!strcmp(sr->touched[i].line, name))
			return;
	const struct rack_line *line = line_named(sr->slot, name);
	if (!line || sr->n_touched == RACK_MAX_LINES)
		return;
	char err[256];
	struct relay_dev *b = board_for(sr, line, err, sizeof err);
	bool on;
	if (!b || b->driver->get(b, line->channel, &on))
		on = !to;   /* unreadable: a switch is a change from the other state */
	snprintf(sr->touched[sr->n_touched].line, sizeof sr->touched[0].line, "%s", line->name);
	sr->touched[sr->n_touched++].was_on = on;
}

/* Undoes what the scenario left changed. Each switch is audited as usual,
 * and one entry says why ("scenario end, left as found: ..."). A stopped run is
 * left to safe_state: the rack file, not the scenario, says how it rests. */
static void leave_as_found(struct slot_run *sr)
{
	char err[256], req[64], reply[256], what[256] = "";
	if (clock_aborted(sr->o->clock))
		goto done;
	if (sr->datacap_set) {
		snprintf(req, sizeof req, "datacap %d off", sr->slot->id);
		int rc = rackctl_request(sr->rack->control, req, reply, sizeof reply);
		audit(sr, *sr->rack->control ? sr->rack->control : "(none)", req, rc ? reply : "ok");
		snprintf(what + strlen(what), sizeof what - strlen(what), ", datacap off");
	}
	for (int i = 0; i < sr->n_touched; i++) {
		const struct rack_line *line = line_named(sr->slot, sr->touched[i].line);
		struct relay_dev *b = line ? board_for(sr, line, err, sizeof err) : NULL;
		bool on;
		if (b && (b->driver->get(b, line->channel, &on) || on != sr->touched[i].was_on) &&
		    set_line(sr, sr->touched[i].line, sr->touched[i].was_on, err, sizeof err) == 0)
			snprintf(what + strlen(what), sizeof what - strlen(what), ", relay %.40s %s", sr->touched[i].line,
				 sr->touched[i].was_on ? "on" : "off");
	}
	if (sr->power_left_off && set_power(sr, true, err, sizeof err) == 0) {
		snprintf(what + strlen(what), sizeof what - strlen(what), ", power on");
		/* the next scenario expects a device that has booted */
		sr->last_power_on = now(sr);
		wait_answering(sr, now(sr) + 60000);
	}
	if (*what) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "scenario end, left as found:%s", what + 1);
		audit(sr, NULL, cmd, "ok");
	}
done:
	sr->n_touched = 0;
	sr->power_left_off = sr->datacap_set = false;
}

/* ---- diagnosis over the slot's channels ---- */

static const char *slot_imei(const struct slot_run *sr);

/* The slot's evidence through the one gatherer (evidence.h). WATCH_MS: how
 * long to watch the restart counter after a crash reset when no earlier
 * reading is on record (the closing diagnosis; a polling expect builds its
 * history from the readings it audits). */
static void gather(struct slot_run *sr, struct diag_evidence *ev, int watch_ms)
{
	diag_evidence_init(ev, clock_unix_ms(sr->o->clock, now(sr)));
	char where[300];
	snprintf(where, sizeof where, "%s unit %d", sr->slot->power.bus.transport, sr->slot->power.bus.unit);
	bool has_supply = sr->slot->power.kind == RACK_POWER_SUPPLY;
	struct evidence_source src = {
		.now_ms = ev->now_ms, .timeout_ms = 1000, /* a healthy console answers in milliseconds */
		.trk = sr->trk, .console_path = sr->slot->console.path, .over_uplink = over_uplink(sr),
		.console_err = sr->console_err,
		.imei = slot_imei(sr), .has_supply = has_supply, .supply = sr->supply, .supply_where = where,
		.supply_err = has_supply ? sr->supply_err : "power by relay line or none: the rig cannot measure it",
		.gps = gps_of(sr), .nmea_path = sr->slot->nmea.path, .db = sr->o->db, .db_lock = sr->db_lock,
		.slot_label = sr->label, .station = sr->rack->station,
		.silent_after_ms = sr->slot->declared.record_period_s > 0 ? 3LL * sr->slot->declared.record_period_s * 1000 : 0,
		.boot_watch_ms = watch_ms, .clock = clock_for_tracker(sr->o->clock),
	};
	/* The receiver as of this rack second (gnss_read), not as fast as gpsd read. */
	struct gnss_reading g;
	if (src.gps && gnss_read(sr, &g) == GNSS_OK)
		src.gps_reading = &g;
	struct evidence_boot_reading boot, then;
	evidence_gather(&src, ev, &boot);
	if (sr->last_power_on >= 0)
		ev->powered_on_ms = clock_unix_ms(sr->o->clock, sr->last_power_on);
	take_events(sr);
	/* The rig runs the ingest: its figures are fresher than the store's. */
	if (sr->o->ingest) {
		struct ingest_device_stats s = uplink_stats(sr);
		struct diag_uplink *u = &ev->uplink;
		if (u->records != DIAG_CH_ANSWERED) {
			u->records = DIAG_CH_ANSWERED;
			u->records_detail[0] = '\0';
		}
		if (s.last_arrival_ms && (u->last_record_ms == DIAG_NEVER || s.last_arrival_ms > u->last_record_ms))
			u->last_record_ms = s.last_arrival_ms;
	}
	if (boot.at_ms == DIAG_NEVER || boot.boots < 0)
		return;
	/* Audit a restart counter reading only when it says something new. */
	bool known = false;
	if (sr->o->db) {
		pthread_mutex_lock(sr->db_lock);
		known = evidence_boot_earlier(sr->o->db, sr->label, sr->rack->station, ev->now_ms, 0, &then) &&
			then.boots == boot.boots;
		pthread_mutex_unlock(sr->db_lock);
	}
	if (!known) {
		char b[128];
		evidence_boot_text(&boot, b, sizeof b);
		audit(sr, cmd_where(sr), "restarts", b);
	}
}

static void note_reason(struct slot_run *sr, const char *code)
{
	char *r = sr->cur->reasons;
	/* a comma-separated list: a code is there whole or not at all */
	size_t cl = strlen(code);
	for (const char *p = r; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == cl && !strncmp(p, code, cl))
			return;
	}
	size_t n = strlen(r);
	snprintf(r + n, sizeof sr->cur->reasons - n, "%s%s", n ? "," : "", code);
}

/* True when the diagnosis names CODE; SUMMARY gets what it said. */
static bool diagnosis_has(struct slot_run *sr, const char *code, char *summary, size_t len)
{
	struct diag_evidence ev;
	struct diag_report rep;
	gather(sr, &ev, *code ? 0 : 20000);
	diag_run(&ev, NULL, &rep);
	bool has = false;
	snprintf(summary, len, "%s", rep.n_findings ? "" : "healthy");
	for (int i = 0; i < rep.n_findings; i++) {
		note_reason(sr, rep.findings[i].rule->code);
		has |= strcmp(rep.findings[i].rule->code, code) == 0;
		size_t n = strlen(summary);
		snprintf(summary + n, len - n, "%s%s (%.0f%%): %s", n ? "; " : "", rep.findings[i].rule->code,
			 rep.findings[i].confidence * 100, rep.findings[i].summary);
	}
	return has;
}

/* ---- steps ---- */

/* A device state field by name (scenario_states[]), through the driver's
 * hook that tells it. Returns 0, -1 no answer (the tracker's error in *TRC),
 * -2 no such field, -3 the driver cannot tell it (*TRC names the capability). */
static int read_state(struct slot_run *sr, const char *name, char *out, size_t len, int *trc)
{
	*trc = TRACKER_ERR_GONE;
	if (!sr->trk)
		return -1;
	int rc;
	if (!strcmp(name, "reset_reason") || !strcmp(name, "restarts")) {
		if (!tracker_get_proto(sr->trk)->restarts)
			return *trc = TRACKER_ERR_ARG, -3;
		struct tracker_restarts r;
		rc = tracker_restarts(sr->trk, &r, timeout_ms(sr));
		if (!rc && !strcmp(name, "reset_reason"))
			snprintf(out, len, "%s", r.reset_reason);
		else if (!rc)
			snprintf(out, len, "%ld", r.count);
	} else if (!strcmp(name, "bank") || !strcmp(name, "ota_state")) {
		if (!tracker_get_proto(sr->trk)->ota_state)
			return *trc = TRACKER_ERR_ARG, -3;
		struct tracker_ota o;
		rc = tracker_ota_state(sr->trk, &o, timeout_ms(sr));
		if (!rc)
			snprintf(out, len, "%s", !strcmp(name, "bank") ? o.bank : o.state);
	} else if (!strcmp(name, "data_session")) {
		if (!tracker_get_proto(sr->trk)->data_session)
			return *trc = TRACKER_ERR_ARG, -3;
		enum tracker_data_session d;
		rc = tracker_data_session(sr->trk, &d, timeout_ms(sr));
		if (!rc)
			snprintf(out, len, "%s", d == TRACKER_DATA_UP ? "up" : d == TRACKER_DATA_REFUSED ? "refused" : "down");
	} else {
		struct tracker_status st;
		rc = tracker_status(sr->trk, &st, timeout_ms(sr));
		if (rc) {
		} else if (!strcmp(name, "power_source")) snprintf(out, len, "%s", st.power_source);
		else if (!strcmp(name, "data_link")) snprintf(out, len, "%d", st.data_link);
		else if (!strcmp(name, "gprs")) snprintf(out, len, "%d", st.gprs);
		else if (!strcmp(name, "signal")) snprintf(out, len, "%d", st.signal);
		else if (!strcmp(name, "operator")) snprintf(out, len, "%s", st.operator_code);
		else return -2;
	}
	take_events(sr);
	*trc = rc;
	return rc ? -1 : 0;
}

/* ---- telemetry, as the rig's ingest received it ---- */

static const char *slot_imei(const struct slot_run *sr)
{
	return *sr->cur->imei ? sr->cur->imei : sr->slot->expect.imei;
}

/* The ingest's figures for this slot's device; zeros before it ever spoke. */
static struct ingest_device_stats uplink_stats(struct slot_run *sr)
{
	struct ingest_device_stats all[256], none = { 0 };
	size_t n = ingest_stats(sr->o->ingest, all, 256);
	for (size_t i = 0; i < n && i < 256; i++)
		if (strcmp(all[i].imei, slot_imei(sr)) == 0)
			return all[i];
	return none;
}

struct backlog {
	struct flush_record *recs;
	size_t n, cap;
};

static int backlog_add(void *ctx, const struct store_record_row *row)
{
	struct backlog *b = ctx;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct flush_record *grown = realloc(b->recs, cap * sizeof *b->recs);
		if (!grown)
			return 1;
		b->recs = grown;
		b->cap = cap;
	}
	b->recs[b->n++] = (struct flush_record){ .ts_ms = row->ts_ms, .arrival_ms = row->arrival_ms, .late = row->late };
	return 0;
}

/* The backlog of the last coverage cut, read back from the store. Returns
 * 0, -1 when the store could not be read (ERR; the rig's), -2 when the
 * device sent nothing before the cut (ERR; the device's). */
static int read_backlog(struct slot_run *sr, const struct scenario_step *st, struct flush_record **recs, size_t *n,
			int64_t *phase, char *err, size_t len)
{
	store *db;
	*recs = NULL;
	*n = 0;
	/* A read-only connection of its own: the telemetry the ingest wrote. */
	if (store_open_readonly(sr->o->db_path, &db, err, len))
		return -1;
	int rc = -1;
	*phase = -1;
	/* The device's schedule from a record made before the cut. A store
	 * that cannot be read is the rig's trouble, not a device that sent
	 * nothing. */
	int found = store_record_latest_before(db, sr->o->run_id, slot_imei(sr), sr->cut_ms, phase);
	if (found < 0) {
		snprintf(err, len, "%s: %s", sr->o->db_path, store_sqlite_message(db));
		goto out;
	}
	if (found == 0)
		*phase = -1;
	if (*phase < 0) {
		snprintf(err, len, "no record from before the cut: the device's schedule is unknown (period %llds)",
			 (long long)(st->period_ms / 1000));
		rc = -2; /* the device's: it sent nothing while it had coverage */
		goto out;
	}
	struct backlog b = { 0 };
	if (store_records_arrived_since(db, sr->o->run_id, slot_imei(sr), sr->cut_ms, backlog_add, &b) < 0 && !b.n) {
		snprintf(err, len, "%s: %s", sr->o->db_path, store_sqlite_message(db));
		free(b.recs);
		goto out;
	}
	*recs = b.recs;
	*n = b.n;
	rc = 0;
out:
	store_close(db);
	return rc;
}

/* A radio draws its transmit current only while a packet is in the air, a
 * fraction of a second at a time; a once-a-second look lands between packets.
 * While the backlog goes out the supply is read at this pace. */
#define TX_SAMPLE_MS 100
/* The flush is over for sampling once this long brings no new record. */
#define TX_QUIET_MS 1500
/* A device whose backlog has not begun by then (a modem still registering)
 * is not waited on at the fine pace any longer. */
#define TX_SAMPLE_FOR_MS 600000

/* Reads the slot's supply once; keeps the peak in sr->tx_peak_a. */
static void sample_tx_current(struct slot_run *sr)
{
	struct power_status ps;
	if (sr->supply->driver->status(sr->supply, &ps)) {
		snprintf(sr->tx_err, sizeof sr->tx_err, "supply unreadable during the flush: %.100s", power_error(sr->supply));
		return;
	}
	if (isnan(sr->tx_peak_a) || ps.i_out > sr->tx_peak_a)
		sr->tx_peak_a = ps.i_out;
}

static enum engine_outcome expect_flush(struct slot_run *sr, const struct scenario_step *st, int64_t deadline)
{
	if (sr->restore_ms <= sr->cut_ms)
		return fail(sr, st, OUTCOME_ERROR, "a flush check needs a cell_antenna cut and return before it");
	/* Drained when a record made after coverage returned has arrived and
	 * nothing more came in over half a period. Until the backlog has gone
	 * out, the supply is sampled finely for the transmit current. */
	struct ingest_device_stats at_start = uplink_stats(sr);
	uint64_t seen = UINT64_MAX, last_count = at_start.records;
	int64_t fine_until = now(sr) + TX_SAMPLE_FOR_MS, last_new = -1;
	bool sampling = sr->supply != NULL;
	sr->tx_peak_a = NAN;
	snprintf(sr->tx_err, sizeof sr->tx_err, "no supply reading during the flush");
	for (;;) {
		struct ingest_device_stats s = uplink_stats(sr);
		if (sampling) {
			sample_tx_current(sr);
			/* The quiet spell counts from backlog records (late by the
			 * ingest's measure), so one live record sent on reconnect
			 * before the backlog does not end the sampling early. */
			if (s.late > at_start.late && s.records != last_count)
				last_new = now(sr);
			last_count = s.records;
			if (last_new >= 0 && now(sr) - last_new >= TX_QUIET_MS)
				sampling = false;
			else if (last_new < 0 && now(sr) >= fine_until) {
				sampling = false;
				sr->tx_peak_a = NAN;
				snprintf(sr->tx_err, sizeof sr->tx_err,
					 "no backlog record arrived within %d s of coverage's return: transmit current not read",
					 TX_SAMPLE_FOR_MS / 1000);
			}
		}
		bool caught_up = s.last_record_ms >= sr->restore_ms + st->period_ms;
		if (caught_up && s.records == seen && !sampling)
			break;
		if (!sampling)
			seen = s.records;
		if (now(sr) >= deadline)
			break;
		int64_t next = now(sr) + (sampling ? TX_SAMPLE_MS : st->period_ms / 2);
		if (pump_until(sr, next < deadline ? next : deadline, NULL, NULL) < 0)
			return cut_short(sr, st);
	}
	if (!sr->supply)
		snprintf(sr->tx_err, sizeof sr->tx_err, "%.150s",
			 *sr->supply_err ? sr->supply_err : "the slot has no supply in the rack file");
	struct flush_record *recs;
	size_t n;
	int64_t phase;
	char err[256];
	int got = read_backlog(sr, st, &recs, &n, &phase, err, sizeof err);
	if (got)
		return fail(sr, st, got == -2 ? OUTCOME_FAIL : OUTCOME_ERROR, "%s", err);
	struct flush_window w = { .cut_ms = sr->cut_ms, .restore_ms = sr->restore_ms, .period_ms = st->period_ms,
				  .phase_ms = phase, .newest_first = sr->slot->declared.newest_first,
				  .late_ms = INGEST_LATE_MS_DEFAULT };
	struct ingest_device_stats s = uplink_stats(sr);
	/* Only packets sent twice unasked count against the device: a resend
	 * after a reconnect is its answer to an ack the cut swallowed. */
	int rc = flush_check(&w, recs, n, (int)(s.dup_unasked - sr->dups_at_cut), &sr->flush);
	free(recs);
	if (rc)
		return fail(sr, st, OUTCOME_ERROR, "flush check: the outage window makes no sense");
	sr->have_flush = true;
	if (sr->flush.complete)
		return OUTCOME_PASS;
	return fail(sr, st, OUTCOME_FAIL, "backlog incomplete: %s", sr->flush.summary);
}

static enum engine_outcome expect_uplink(struct slot_run *sr, const struct scenario_step *st)
{
	int64_t deadline = now(sr) + st->duration_ms;
	if (!sr->o->ingest)
		return fail(sr, st, OUTCOME_ERROR, "telemetry checks need the rig's ingest server");
	if (st->expect == EXPECT_FLUSH)
		return expect_flush(sr, st, deadline);
	uint64_t before = uplink_stats(sr).records;
	for (;;) {
		struct ingest_device_stats s = uplink_stats(sr);
		if (s.records > before)
			return OUTCOME_PASS;
		if (now(sr) >= deadline) {
			char last[32];
			diag_format_time(s.last_arrival_ms ? s.last_arrival_ms : DIAG_NEVER, last, sizeof last);
			return fail(sr, st, OUTCOME_FAIL, "no telemetry from %s within %lld s (last packet %s)", slot_imei(sr),
				    (long long)(st->duration_ms / 1000), last);
		}
		int64_t next = now(sr) + POLL_EVERY_MS;
		if (pump_until(sr, next < deadline ? next : deadline, NULL, NULL) < 0)
			return cut_short(sr, st);
	}
}

/* ---- GNSS, through the rig's gpsd ---- */

/* The gpsd that reads this slot's NMEA port, or NULL. */
static gnss_daemon *gps_of(const struct slot_run *sr)
{
	for (int i = 0; *sr->slot->nmea.path && i < sr->o->n_gnss; i++)
		if (gnss_has_device(sr->o->gnss[i], sr->slot->nmea.path))   /* quiet: slots ask at once */
			return sr->o->gnss[i];
	return NULL;
}

/* The receiver as of this rack second. gpsd is another process reading in
 * wall time: on a virtual rack the NMEA of a second is written at once and
 * read a moment later, so the latest reading depended on how busy the
 * machine was (a reacquisition of 5.1 s in one run, 6.1 s in the next).
 * While the slot thread runs rack time stands still, so the receiver has
 * said all it will say up to now; the read waits (bounded, wall time) until
 * gpsd has reported this very second:
 * - a TPV with a fix carries the receiver's time: that second or later;
 * - without a fix gpsd gives no time, but it reports each second with one
 *   TPV and one SKY: one second after a caught-up read, one more of each;
 * - otherwise (the first read, or after rack time jumped) the wait runs to
 *   its bound, which gives gpsd the time to report what came.
 * A receiver that cannot have spoken in this second (the slot is off, or
 * was switched on after the second began) is not waited for. */
static bool gnss_caught_up(const struct slot_run *sr, const struct gnss_reading *g, int64_t second)
{
	if (g->tpv_epoch_ms >= second)
		return true;
	if (sr->gnss_at == second)
		return true;   /* read already this second: nothing more can come */
	return sr->gnss_at == second - 1000 && g->tpv_count > sr->gnss_tpvs && g->sky_count > sr->gnss_skys;
}

static int gnss_read(struct slot_run *sr, struct gnss_reading *g)
{
	gnss_daemon *d = gps_of(sr);
	if (!d)
		return GNSS_ERR_ARG;
	int rc = gnss_get(d, sr->slot->nmea.path, g);
	if (rc != GNSS_OK || !clock_is_virtual(sr->o->clock) || sr->power_left_off)
		return rc;
	int64_t second = clock_unix_ms(sr->o->clock, now(sr)) / 1000 * 1000;
	int64_t on = sr->last_power_on >= 0 ? clock_unix_ms(sr->o->clock, sr->last_power_on) : INT64_MIN;
	if (second < on)
		return GNSS_OK;
	int64_t until = gnss_now_ms() + GNSS_SETTLE_MS;
	while (!gnss_caught_up(sr, g, second) && gnss_now_ms() < until)
		gnss_get_at(d, sr->slot->nmea.path, second, 5, g);
	sr->gnss_at = second;
	sr->gnss_tpvs = g->tpv_count;
	sr->gnss_skys = g->sky_count;
	return GNSS_OK;
}

/* Moves rack time on by a second and reads the receiver as of then. */
static int gnss_step(struct slot_run *sr, struct gnss_reading *g, int64_t deadline)
{
	int64_t next = now(sr) + 1000;
	if (pump_until(sr, next < deadline ? next : deadline, NULL, NULL) < 0)
		return -1;
	gnss_read(sr, g);
	return 0;
}

static enum engine_outcome expect_gnss_fix(struct slot_run *sr, const struct scenario_step *st, int64_t deadline)
{
	if (!gps_of(sr))
		return fail(sr, st, OUTCOME_ERROR, "GNSS checks need the slot's nmea port read by the rig's gpsd");
	struct gnss_reading g = { 0 };
	gnss_read(sr, &g);
	for (;;) {
		/* A fix counts when the receiver made it after the mark. */
		if (g.mode >= GNSS_MODE_3D && g.fix_time * 1000.0 >= (double)sr->gnss_mark_ms - 1000.0) {
			double s = (g.fix_time * 1000.0 - (double)sr->gnss_mark_ms) / 1000.0;
			if (s < 0)
				s = 0;
			if (sr->gnss_mark_is_power)
				sr->ttff_s = s;
			else
				sr->reacq_s = s;
			return OUTCOME_PASS;
		}
		if (now(sr) >= deadline && !gps_of(sr))
			return fail(sr, st, OUTCOME_ERROR, "the rig's gpsd no longer reads %s: no verdict on the fix",
				    sr->slot->nmea.path);
		if (now(sr) >= deadline)
			return fail(sr, st, OUTCOME_FAIL, "no 3D fix on %s within %lld s (mode %d, %d satellites used, HDOP %.1f)",
				    sr->slot->nmea.path, (long long)(st->duration_ms / 1000), g.mode, g.satellites_used,
				    g.hdop);
		if (gnss_step(sr, &g, deadline) < 0)
			return cut_short(sr, st);
	}
}

/* What the records made during an antenna cut claim. */
struct honesty {
	int claimed, moved, total;
	int64_t first, last, lat0, lon0;
};

static int honesty_add(void *ctx, const struct store_record_row *r)
{
	struct honesty *h = ctx;
	if (h->total++ == 0) {
		h->lat0 = r->lat_e7;
		h->lon0 = r->lon_e7;
	}
	if (r->io_gnss == 1) {
		if (!h->claimed++)
			h->first = r->ts_ms;
		h->last = r->ts_ms;
	}
	h->moved += r->lat_e7 != h->lat0 || r->lon_e7 != h->lon0;
	return 0;
}

/* The device's telemetry against its own receiver, during the last antenna
 * cut: a record that claims a fix (IO 69 = 1) while the receiver had none is
 * a stale fix reported as current or an invented position. */
static enum engine_outcome expect_gnss_honest(struct slot_run *sr, const struct scenario_step *st)
{
	if (!sr->o->ingest)
		return fail(sr, st, OUTCOME_ERROR, "the cross-check needs the rig's telemetry ingest");
	if (sr->gnss_restore_ms <= sr->gnss_cut_ms)
		return fail(sr, st, OUTCOME_ERROR, "the cross-check needs a gnss_antenna cut and return before it");
	store *db;
	char why[512];
	if (store_open_readonly(sr->o->db_path, &db, why, sizeof why))
		return fail(sr, st, OUTCOME_ERROR, "%s: cannot read the telemetry", sr->o->db_path);
	/* Records made during the cut, a few seconds inside it at both ends
	 * (the receiver needs a moment to notice); IO 69 (GNSS status) read
	 * with SQLite's JSON parser: 1 is a fix. */
	struct honesty h = { 0 };
	if (store_records_during(db, sr->o->run_id, slot_imei(sr), sr->gnss_cut_ms + 5000, sr->gnss_restore_ms,
				 honesty_add, &h) < 0) { /* no evidence is no pass */
		enum engine_outcome o = fail(sr, st, OUTCOME_ERROR, "%s: cannot read the telemetry: %s", sr->o->db_path,
					     store_sqlite_message(db));
		store_close(db);
		return o;
	}
	store_close(db);
	int claimed = h.claimed, moved = h.moved, total = h.total;
	int64_t first = h.first, last = h.last;
	if (!claimed && !moved)
		return OUTCOME_PASS;
	char a[16], b[16];
	time_hms(first, a, sizeof a);
	time_hms(last, b, sizeof b);
	if (moved)
		return fail(sr, st, OUTCOME_FAIL, "invented positions: %d of %d records made while the receiver had no sky "
			    "show a new position, %d of them flagged as a GNSS fix (%s..%s)", moved, total, claimed, a, b);
	return fail(sr, st, OUTCOME_FAIL, "stale fix reported as current: %d of %d records made while the receiver "
		    "had no sky claim a GNSS fix (IO 69 = 1), %s..%s", claimed, total, a, b);
}

/* ---- firmware updates ---- */

/* A seeded point in [MIN, MAX]: the same run cuts at the same moment. */
static int64_t cut_point(const struct slot_run *sr, const struct scenario_step *st)
{
	uint64_t x = (uint64_t)sr->slot->id * 0x9E3779B97F4A7C15ull ^ (uint64_t)st->line * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return st->cut_min_ms + (int64_t)(x % (uint64_t)(st->cut_max_ms - st->cut_min_ms + 1));
}

static bool ota_final(const char *state)
{
	return !strcmp(state, "committed") || !strcmp(state, "rolled_back") || !strcmp(state, "rejected") ||
	       !strcmp(state, "failed");
}

/* Starts an update through the driver's ota hook and follows the unit's
 * update state to its end: committed, rolled back, rejected or failed;
 * deferred when that is what the scenario expects. Restarts during the
 * update come from the restart counter. An optional power cut lands at a
 * seeded moment. */
static enum engine_outcome step_update(struct slot_run *sr, const struct scenario_step *st)
{
	char url[512], what[600], detail[TRACKER_LINE_MAX + 1], err[256];
	if (!sr->o->images)
		return fail(sr, st, OUTCOME_ERROR, "updates need the rig's image server, which did not start");
	if (!sr->trk)
		return console_fail(sr, st, TRACKER_ERR_GONE, "update");
	/* A model's own images, when the image folder has them (DIR/MODEL/NAME):
	 * a rack of several models updates each with its own build. */
	char own[2 * RACK_NAME_MAX + 256];
	snprintf(own, sizeof own, "%s/%s", sr->slot->model, st->text);
	fwserve_url(sr->o->images, fwserve_has(sr->o->images, own) ? own : st->text, url, sizeof url);
	long restarts0 = restart_count(sr);
	int64_t sent = now(sr), deadline = sent + st->duration_ms;
	int rc = tracker_ota_start(sr->trk, url, detail, sizeof detail, timeout_ms(sr));
	take_events(sr);
	snprintf(what, sizeof what, "ota start %s", url);
	audit(sr, tracker_where(sr->trk), what, rc < 0 ? tracker_error(sr->trk) : rc == 1 ? detail : "accepted");
	bool deferred = rc == 1;
	if (!strcmp(st->value, "deferred"))
		return deferred ? OUTCOME_PASS
				: rc < 0 && rc != TRACKER_ERR_REFUSED && rc != TRACKER_ERR_PARSE
				? console_fail(sr, st, rc, "update")
				: fail(sr, st, OUTCOME_FAIL, "expected the update deferred (in service), the unit %s",
				       rc == 0 ? "accepted it" : tracker_error(sr->trk));
	if (rc == TRACKER_ERR_REFUSED || rc == TRACKER_ERR_PARSE)
		return fail(sr, st, OUTCOME_FAIL, "update refused: %s", tracker_error(sr->trk));
	if (rc < 0)
		return console_fail(sr, st, rc, "update");
	if (deferred)
		return fail(sr, st, OUTCOME_FAIL, "%s: expected %s, the unit deferred it: %s", st->text, st->value, detail);
	int64_t cut_at = st->cut_max_ms ? sent + cut_point(sr, st) : -1;
	char state[32] = "";
	for (;;) {
		struct tracker_ota o;
		/* A unit mid-boot does not answer: that is part of an update. */
		if (sr->trk && tracker_ota_state(sr->trk, &o, timeout_ms(sr)) == TRACKER_OK) {
			take_events(sr);
			snprintf(state, sizeof state, "%s", o.state);
			if (ota_final(o.state)) {
				sr->ota_recovery_s = (double)(now(sr) - sent) / 1000.0;
				long restarts1 = restart_count(sr);
				sr->ota_boots = restarts0 >= 0 && restarts1 >= restarts0 ? (int)(restarts1 - restarts0) : -1;
				if (!strcmp(o.state, st->value))
					return OUTCOME_PASS;
				return fail(sr, st, OUTCOME_FAIL, "%s: expected %s, the unit says '%s'", st->text, st->value,
					    o.detail);
			}
		}
		if (now(sr) >= deadline)
			return fail(sr, st, device_or_link(sr), "%s: no end to the update within %lld s (last state '%s'%s)", st->text,
				    (long long)(st->duration_ms / 1000), *state ? state : "none", link_note(sr));
		int64_t until = now(sr) + POLL_EVERY_MS;
		if (cut_at > now(sr) && cut_at < until)
			until = cut_at;
		if (until > deadline)
			until = deadline;
		if (pump_until(sr, until, NULL, NULL) < 0)
			return cut_short(sr, st);
		if (cut_at >= 0 && now(sr) >= cut_at) {
			/* The field's worst moment: power gone mid-update. */
			cut_at = -1;
			if (set_power(sr, false, err, sizeof err) || sleep_pumping(sr, 5000) < 0 ||
			    set_power(sr, true, err, sizeof err))
				return fail(sr, st, OUTCOME_ERROR, "power cut during the update: %s", err);
			sr->last_power_on = now(sr);
		}
	}
}

/* A fault the rack itself must make: only a simulated rack can. */
static enum engine_outcome step_fault(struct slot_run *sr, const struct scenario_step *st)
{
	char req[96], reply[256];
	if (st->fault_bytes < 0)
		snprintf(req, sizeof req, "datacap %d off", sr->slot->id);
	else
		snprintf(req, sizeof req, "datacap %d %lld %lld", sr->slot->id, (long long)st->fault_bytes,
			 (long long)(st->fault_period_ms / 1000));
	int rc = rackctl_request(sr->rack->control, req, reply, sizeof reply);
	audit(sr, *sr->rack->control ? sr->rack->control : "(none)", req, rc ? reply : "ok");
	if (rc)
		return fail(sr, st, OUTCOME_ERROR, "fault %s: %s", req, reply);
	sr->datacap_set = st->fault_bytes >= 0;
	return OUTCOME_PASS;
}

static enum engine_outcome step_expect(struct slot_run *sr, const struct scenario_step *st)
{
	int64_t deadline = now(sr) + st->duration_ms;
	char seen[400] = "";
	for (;;) {
		switch (st->expect) {
		case EXPECT_ANSWER:
			if (strstr(sr->last_answer, st->text))
				return OUTCOME_PASS;
			return fail(sr, st, OUTCOME_FAIL, "expected the answer to contain '%s', got '%.200s'", st->text,
				    sr->last_answer);
		case EXPECT_EVENT: {
			bool found = false;
			if (pump_until(sr, deadline, st->text, &found) < 0)
				return cut_short(sr, st);
			if (found != st->negate)
				return OUTCOME_PASS;
			if (st->negate)
				return fail(sr, st, OUTCOME_FAIL, "event '%s' came, expected none within %lld s", st->text,
					    (long long)(st->duration_ms / 1000));
			return fail(sr, st, device_or_link(sr), "no '%s' event within %lld s%s", st->text,
				    (long long)(st->duration_ms / 1000), link_note(sr));
		}
		case EXPECT_STATE: {
			int trc = TRACKER_OK;
			int rc = read_state(sr, st->text, seen, sizeof seen, &trc);
			if (rc == -2)
				return fail(sr, st, OUTCOME_ERROR, "unknown state field '%s'", st->text);
			if (rc == -3)
				return fail(sr, st, OUTCOME_SKIPPED, "the slot's driver cannot tell '%s'", st->text);
			if (rc == 0 && (strcmp(seen, st->value) == 0) != st->negate)
				return OUTCOME_PASS;
			if (now(sr) >= deadline) {
				if (rc < 0) {
					char what[2 * SCENARIO_NAME_MAX + 600];
					snprintf(what, sizeof what, "expected %s = %s; no answer", st->text, st->value);
					return console_fail(sr, st, trc, what);
				}
				return fail(sr, st, OUTCOME_FAIL, "expected %s = %s, device says %s", st->text, st->value,
					    *seen ? seen : "nothing (field not reported)");
			}
			break;
		}
		case EXPECT_RESTART: {
			if (sr->last_power_on < 0)
				return fail(sr, st, OUTCOME_ERROR, "restart: the scenario has no power on step before it");
			int rc = restarted_since_power_on(sr);
			if (rc == 1) {
				if (sr->restart_seen < 0)
					sr->restart_seen = now(sr);
				return OUTCOME_PASS;
			}
			if (rc == TRACKER_ERR_ARG)
				return fail(sr, st, OUTCOME_SKIPPED, "the slot's driver cannot tell its restarts");
			if (now(sr) >= deadline) {
				if (rc < 0)
					return console_fail(sr, st, rc, "no answer showing a restart since the power on");
				return fail(sr, st, OUTCOME_FAIL, "the unit answers but says it has not restarted since the power "
					    "on %lld s ago", (long long)((now(sr) - sr->last_power_on) / 1000));
			}
			break;
		}
		case EXPECT_UPLINK:
		case EXPECT_FLUSH:
			return expect_uplink(sr, st);
		case EXPECT_GNSS:
			return strcmp(st->text, "fix") ? expect_gnss_honest(sr, st) : expect_gnss_fix(sr, st, deadline);
		case EXPECT_REASON: {
			bool has = diagnosis_has(sr, st->text, seen, sizeof seen);
			if (has != st->negate)
				return OUTCOME_PASS;
			if (now(sr) >= deadline && st->negate)
				return fail(sr, st, device_or_link(sr), "reason %s still diagnosed: %s%s", st->text, seen,
					    link_note(sr));
			if (now(sr) >= deadline)
				return fail(sr, st, device_or_link(sr), "expected reason %s within %lld s; diagnosis: %s%s",
					    st->text, (long long)(st->duration_ms / 1000), seen, link_note(sr));
			break;
		}
		}
		int64_t next = now(sr) + POLL_EVERY_MS;
		if (pump_until(sr, next < deadline ? next : deadline, NULL, NULL) < 0)
			return cut_short(sr, st);
	}
}

static enum engine_outcome step_measure(struct slot_run *sr, const struct scenario_step *st)
{
	double v = NAN;
	if (!strcmp(st->source, "boot_time")) {
		if (sr->last_power_on < 0)
			return fail(sr, st, OUTCOME_ERROR, "boot_time: the scenario has no power on step before it");
		/* From the power on to the first answer showing the restart (an
		 * expect: {restart: seen} step), or to the unit's boot event. */
		if (sr->restart_seen >= 0)
			v = (double)(sr->restart_seen - sr->last_power_on) / 1000.0;
		for (int i = 0; isnan(v) && i < sr->cur->n_events; i++)
			if (!strcmp(sr->cur->events[i].kind, "boot") && sr->cur->events[i].at >= sr->last_power_on)
				v = (double)(sr->cur->events[i].at - sr->last_power_on) / 1000.0;
		if (isnan(v))
			return fail(sr, st, device_or_link(sr), "boot_time: no restart seen after the last power on%s",
				    link_note(sr));
	} else if (!strncmp(st->source, "supply.", 7)) {
		struct power_status ps;
		if (!sr->supply || sr->supply->driver->status(sr->supply, &ps))
			return fail(sr, st, OUTCOME_ERROR, "%s: supply unreadable: %s", st->source,
				    sr->supply ? power_error(sr->supply) : sr->supply_err);
		v = !strcmp(st->source, "supply.current") ? ps.i_out : ps.v_out;
	} else if (!strncmp(st->source, "ota.", 4)) {
		v = !strcmp(st->source, "ota.boots") ? (double)sr->ota_boots : sr->ota_recovery_s;
		if (isnan(sr->ota_recovery_s))
			return fail(sr, st, OUTCOME_ERROR, "%s: the scenario has no update step before it", st->source);
		if (v < 0)
			return fail(sr, st, OUTCOME_SKIPPED, "%s: the slot's driver cannot tell its restarts", st->source);
	} else if (!strncmp(st->source, "gnss.", 5)) {
		v = !strcmp(st->source, "gnss.ttff") ? sr->ttff_s : sr->reacq_s;
		if (isnan(v))
			return fail(sr, st, OUTCOME_ERROR, "%s: the scenario measured no fix before it (an 'expect: {gnss: fix}' step after %s)",
				    st->source, !strcmp(st->source, "gnss.ttff") ? "a power on" : "the antenna's return");
	} else if (!strcmp(st->source, "flush.tx_current")) {
		if (!sr->have_flush)
			return fail(sr, st, OUTCOME_ERROR, "%s: the scenario has no flush check before it", st->source);
		v = sr->tx_peak_a;
		if (isnan(v))
			return fail(sr, st, OUTCOME_ERROR, "%s: %s", st->source, sr->tx_err);
	} else if (!strncmp(st->source, "flush.", 6)) {
		if (!sr->have_flush)
			return fail(sr, st, OUTCOME_ERROR, "%s: the scenario has no flush check before it", st->source);
		v = !strcmp(st->source, "flush.drain_time") ? (double)sr->flush.drain_ms / 1000.0
		    : !strcmp(st->source, "flush.rate")      ? sr->flush.rate
							     : (double)sr->flush.arrived;
	} else if (!strcmp(st->source, "uptime")) {
		struct tracker_restarts rs;
		int trc = sr->trk ? tracker_restarts(sr->trk, &rs, timeout_ms(sr)) : TRACKER_ERR_GONE;
		if (trc)
			return console_fail(sr, st, trc, "uptime: no answer");
		if (rs.uptime_s < 0)
			return fail(sr, st, OUTCOME_SKIPPED, "uptime: the slot's driver cannot tell it");
		v = (double)rs.uptime_s;
	}
	struct engine_result *r = sr->cur;
	const char *outcome = "pass";
	if ((!isnan(st->low) && v < st->low) || (!isnan(st->high) && v > st->high))
		outcome = "fail";
	else if (st->marginal > 0 && !isnan(st->low) && !isnan(st->high)) {
		double band = (st->high - st->low) * st->marginal;
		if (v < st->low + band || v > st->high - band)
			outcome = "marginal";
	}
	if (r->n_measures < ENGINE_MAX_MEASURES)
		r->measures[r->n_measures++] = (struct engine_measure){ .value = v, .low = st->low, .high = st->high,
									 .outcome = outcome };
	struct engine_measure *m = &r->measures[r->n_measures - 1];
	snprintf(m->name, sizeof m->name, "%s", st->name);
	snprintf(m->unit, sizeof m->unit, "%s", st->unit);
	if (!strcmp(outcome, "marginal"))
		r->marginal = true;
	if (!strcmp(outcome, "fail"))
		return fail(sr, st, OUTCOME_FAIL, "%s = %.3g %s outside %g..%g", st->name, v, st->unit, st->low,
			    st->high);
	return OUTCOME_PASS;
}

static enum engine_outcome step_run(struct slot_run *sr, const struct scenario_step *st)
{
	char err[512];
	switch (st->kind) {
	case STEP_POWER:
		if (st->power != POWER_ON)
			sr->restarts_before = restart_count(sr);
		if (st->power != POWER_ON && set_power(sr, false, err, sizeof err))
			return fail(sr, st, OUTCOME_ERROR, "power off: %s", err);
		sr->power_left_off = st->power != POWER_ON;
		if (st->power == POWER_CYCLE && sleep_pumping(sr, CYCLE_OFF_MS) < 0)
			return cut_short(sr, st);
		sr->mark = sr->cur->n_events;
		if (st->power != POWER_OFF) {
			if (set_power(sr, true, err, sizeof err))
				return fail(sr, st, OUTCOME_ERROR, "power on: %s", err);
			sr->power_left_off = false;
			sr->last_power_on = now(sr);
			sr->restart_seen = -1;
			sr->gnss_mark_ms = clock_unix_ms(sr->o->clock, sr->last_power_on);
			sr->gnss_mark_is_power = true;
		}
		return OUTCOME_PASS;
	case STEP_RELAY:
		sr->mark = sr->cur->n_events;
		note_line(sr, st->text, st->on);
		if (set_line(sr, st->text, st->on, err, sizeof err))
			return fail(sr, st, OUTCOME_ERROR, "relay %s: %s", st->text, err);
		if (!strcmp(st->text, "gnss_antenna")) { /* the sky a GNSS check looks at */
			int64_t t = clock_unix_ms(sr->o->clock, now(sr));
			if (!st->on) {
				sr->gnss_cut_ms = t + 1;
			} else {
				sr->gnss_restore_ms = t;
				sr->gnss_mark_ms = t;
				sr->gnss_mark_is_power = false;
			}
		}
		if (!strcmp(st->text, "cell_antenna")) { /* the outage a flush check looks at */
			int64_t t = clock_unix_ms(sr->o->clock, now(sr));
			if (!st->on) {
				/* Whatever happened at this very instant (the record that
				 * made "flowing" true) happened with coverage still on. */
				sr->cut_ms = t + 1;
				sr->dups_at_cut = sr->o->ingest ? uplink_stats(sr).dup_unasked : 0;
			} else {
				sr->restore_ms = t;
			}
		}
		return OUTCOME_PASS;
	case STEP_WAIT:
		return sleep_pumping(sr, st->duration_ms) < 0 ? cut_short(sr, st) : OUTCOME_PASS;
	case STEP_COMMAND: {
		sr->mark = sr->cur->n_events;
		int rc = command(sr, st->text, sr->last_answer, sizeof sr->last_answer, timeout_ms(sr));
		audit(sr, cmd_where(sr), st->text, rc ? (sr->trk ? tracker_error(sr->trk) : "console gone") : "ok");
		if (rc == TRACKER_OK)
			return OUTCOME_PASS;
		char what[TRACKER_LINE_MAX + 16];
		snprintf(what, sizeof what, "command '%s'", st->text);
		return console_fail(sr, st, rc, what);
	}
	case STEP_EXPECT:
		return step_expect(sr, st);
	case STEP_MEASURE:
		return step_measure(sr, st);
	case STEP_RECORD:
		return OUTCOME_PASS;
	case STEP_FAULT:
		return step_fault(sr, st);
	case STEP_UPDATE:
		return step_update(sr, st);
	case STEP_TRACE:
		if (!sr->supply)
			return fail(sr, st, OUTCOME_ERROR, "trace: %s",
				    *sr->supply_err ? sr->supply_err : "the slot has no supply in the rack file");
		if (!sr->cur->n_trace)
			sr->trace_start = now(sr);
		sr->trace_every = st->period_ms;
		sr->trace_next = now(sr);
		sr->trace_until = now(sr) + st->duration_ms;
		trace_due(sr);
		return OUTCOME_PASS;
	case STEP_REPORT_PERIOD: {
		if (!sr->trk)
			return console_fail(sr, st, TRACKER_ERR_GONE, "report_period");
		int sec = (int)(st->period_ms / 1000);
		int rc = tracker_report_period_set(sr->trk, sec, timeout_ms(sr));
		take_events(sr);
		char what[64];
		snprintf(what, sizeof what, "report_period %d s", sec);
		audit(sr, tracker_where(sr->trk), what, rc ? tracker_error(sr->trk) : "ok");
		return rc ? console_fail(sr, st, rc, what) : OUTCOME_PASS;
	}
	}
	return OUTCOME_PASS;
}


/* ---- one scenario on one slot ---- */

/* Whatever a scenario needs that the slot lacks, or NULL. */
static const char *missing(struct slot_run *sr, const struct scenario *sc, char *buf, size_t len)
{
	for (int i = 0; i < sc->n_requires; i++) {
		const char *r = sc->requires[i];
		if (!strcmp(r, "power") && sr->slot->power.kind == RACK_POWER_NONE)
			return snprintf(buf, len, "the scenario needs power switching; the slot has no supply or power line"), buf;
		if (!strcmp(r, "ota") && !sr->o->images)
			return snprintf(buf, len, "the scenario updates firmware and the rig's image server did not start"), buf;
		if (!strcmp(r, "gnss") && !gps_of(sr))
			return snprintf(buf, len, "the scenario needs the slot's GNSS output through the rig's gpsd (an nmea "
					"port in the rack file)"), buf;
		if (!strcmp(r, "uplink") && !sr->o->ingest)
			return snprintf(buf, len, "the scenario needs the rig's telemetry ingest, which did not start"), buf;
		if (!strncmp(r, "fault:", 6) && !*sr->rack->control)
			return snprintf(buf, len, "the scenario needs a %s fault, which only a simulated rack (with a control "
					"socket) can inject", r + 6), buf;
		if (!strncmp(r, "relay:", 6) && !line_named(sr->slot, r + 6))
			return snprintf(buf, len, "the scenario needs relay line '%s'; the slot has none", r + 6), buf;
	}
	return NULL;
}

/* The first capability the scenario needs that the slot's driver lacks, or
 * NULL: such a slot is SKIPPED with that reason, never failed. */
static const char *lacks(const struct slot_run *sr, const struct scenario *sc, char *buf, size_t len)
{
	const struct tracker_proto *p = slotdev_proto(sr->slot);
	for (int i = 0; i < sc->n_requires; i++)
		if (!strcmp(sc->requires[i], "console_port") && over_uplink(sr))
			return snprintf(buf, len, "needs a console port: it asks the unit while its uplink is down, and the "
					"slot's commands go over that uplink"), buf;
	for (int i = 0; i < sc->n_requires; i++)
		if (tracker_cap_known(sc->requires[i]) && !tracker_has(p, sc->requires[i]))
			return snprintf(buf, len, "needs '%s', which the slot's %s driver cannot tell or do", sc->requires[i],
					p ? p->name : sr->slot->protocol), buf;
	return NULL;
}

static bool needs(const struct scenario *sc, const char *what)
{
	for (int i = 0; i < sc->n_requires; i++)
		if (!strcmp(sc->requires[i], what))
			return true;
	return false;
}

/* Tells the tracker where its backend is, as a fleet would configure it
 * (docs/uplink.md): server, port, TCP. Returns 0 or the console's error. */
static int point_at_ingest(struct slot_run *sr)
{
	if (!sr->trk)
		return TRACKER_ERR_GONE;
	if (over_uplink(sr))
		return TRACKER_OK; /* it sends to the rack file's uplink already: how it is reached at all */
	struct tracker_server srv = { .port = ingest_port(sr->o->ingest), .protocol = 0 };
	snprintf(srv.host, sizeof srv.host, "%s", sr->o->ingest_host ? sr->o->ingest_host : "127.0.0.1");
	int rc = tracker_server_set(sr->trk, &srv, timeout_ms(sr));
	take_events(sr);
	char what[128];
	snprintf(what, sizeof what, "server %s:%d tcp", srv.host, srv.port);
	audit(sr, tracker_where(sr->trk), what, rc ? tracker_error(sr->trk) : "ok");
	return rc;
}

/* A budget on the rack clock: a scenario that overruns it is TIMEOUT, so one
 * wedged slot ends in a bounded time whatever happens inside it. */
static int64_t budget_ms(const struct slot_run *sr, const struct scenario *sc)
{
	int64_t b = 60000;
	for (int i = 0; i < sc->n_steps; i++)
		b += sc->steps[i].duration_ms + 4 * (int64_t)timeout_ms(sr) + CYCLE_OFF_MS;
	return b;
}

struct step_rec { const struct scenario_step *st; int idx; int64_t id; const char *outcome; const char *msg; };

static void step_begin_fn(struct slot_run *sr, void *arg)
{
	struct step_rec *s = arg;
	s->id = store_step_begin(sr->o->db, sr->o->run_id, sr->label, sr->cur->scenario->name, s->idx,
				 scenario_step_name(s->st->kind), s->st->text);
}

static void step_end_fn(struct slot_run *sr, void *arg)
{
	struct step_rec *s = arg;
	if (s->id > 0)
		store_step_end(sr->o->db, s->id, s->outcome, s->msg);
}

static void run_scenario(struct slot_run *sr, const struct scenario *sc, struct engine_result *r)
{
	sr->cur = r;
	sr->mark = 0;
	sr->trace_until = sr->trace_cap = 0;   /* a trace lasts no longer than its scenario */
	r->started = now(sr);
	if (clock_aborted(sr->o->clock)) { /* Ctrl-C before it began: not a verdict on anything */
		r->outcome = fail(sr, NULL, OUTCOME_ABORTED, "stopped before the scenario started");
		r->finished = now(sr);
		return;
	}
	char why[256];
	char seen[400];
	if (lacks(sr, sc, why, sizeof why)) {
		r->outcome = fail(sr, NULL, OUTCOME_SKIPPED, "%s", why);
		r->finished = now(sr);
		return;
	}
	if (missing(sr, sc, why, sizeof why)) {
		r->outcome = fail(sr, NULL, OUTCOME_ERROR, "%s", why);
		diagnosis_has(sr, "", seen, sizeof seen);   /* a failed setup gets its closing diagnosis too */
		r->finished = now(sr);
		return;
	}
	int64_t budget = budget_ms(sr, sc);
	r->outcome = OUTCOME_PASS;
	int prc = needs(sc, "uplink") ? point_at_ingest(sr) : TRACKER_OK;
	if (prc) {
		/* The device would not take its server settings: its failure,
		 * unless the rig's link to it failed or Ctrl-C came first. */
		r->outcome = console_fail(sr, NULL, prc, "could not point the device at the rig's ingest");
		if (r->outcome != OUTCOME_ABORTED)
			diagnosis_has(sr, "", seen, sizeof seen);
		r->finished = now(sr);
		return;
	}
	for (int i = 0; i < sc->n_steps && r->outcome == OUTCOME_PASS; i++) {
		const struct scenario_step *st = &sc->steps[i];
		if (clock_aborted(sr->o->clock)) {
			r->outcome = fail(sr, st, OUTCOME_ABORTED, "stopped before step %d", i + 1);
			break;
		}
		if (now(sr) - r->started > budget) {
			r->outcome = fail(sr, st, OUTCOME_TIMEOUT, "the scenario overran its %lld s budget before step %d",
					  (long long)(budget / 1000), i + 1);
			break;
		}
		set_status(sr, false, "%.40s %d/%d %s %.60s", sc->name, i + 1, sc->n_steps, scenario_step_name(st->kind),
			   st->text);
		struct step_rec rec = { .st = st, .idx = i };
		with_db(sr, step_begin_fn, &rec);
		r->outcome = step_run(sr, st);
		if (r->outcome == OUTCOME_ABORTED && !*r->message)
			fail(sr, st, OUTCOME_ABORTED, "stopped during step %d", i + 1);
		rec.outcome = engine_outcome_name(r->outcome);
		rec.msg = r->outcome == OUTCOME_PASS ? NULL : r->message;
		with_db(sr, step_end_fn, &rec);
	}
	/* Every finding maps to a reason code: a failed scenario says what the
	 * diagnosis makes of the slot as it was left. */
	if (r->outcome == OUTCOME_FAIL || r->outcome == OUTCOME_ERROR)
		diagnosis_has(sr, "", seen, sizeof seen);
	leave_as_found(sr);
	r->finished = now(sr);
}

/* R is final: handed to the caller to record, then said on the progress. */
static void slot_finished(struct slot_run *sr, const struct engine_result *r)
{
	if (sr->o->on_result) {
		pthread_mutex_lock(sr->db_lock);
		sr->o->on_result(sr->o->on_result_ctx, r);
		pthread_mutex_unlock(sr->db_lock);
	}
	if (sr->o->progress && !sr->o->progress_tty) /* plain lines for logs */
		fprintf(sr->o->progress, "slot %s: %s %s%s\n", sr->label, r->scenario->name,
			engine_outcome_name(r->outcome), r->marginal ? " (marginal)" : "");
}

/* ---- the slot thread ---- */

static void identify(struct slot_run *sr, struct engine_result *r)
{
	snprintf(r->vendor, sizeof r->vendor, "%s", sr->slot->vendor);
	snprintf(r->model, sizeof r->model, "%s", sr->slot->model);
	struct tracker_identity id;
	if (sr->trk && tracker_identify(sr->trk, &id, timeout_ms(sr)) == TRACKER_OK) {
		snprintf(r->imei, sizeof r->imei, "%s", id.imei);
		snprintf(r->firmware, sizeof r->firmware, "%s", id.firmware);
	} else {
		/* Unknown now; the rack file says what should be there. */
		snprintf(r->imei, sizeof r->imei, "%.15s", sr->slot->expect.imei);
	}
	take_events(sr);
}

static void open_channels(struct slot_run *sr)
{
	sr->trk_clock = (struct tracker_clock){ .now_ms = trk_now, .wait_readable = trk_wait, .ctx = sr };
	slotdev_console(sr->slot, sr->o->ingest, &sr->trk_clock, &sr->trk, sr->console_err, sizeof sr->console_err);
	if (sr->slot->power.kind == RACK_POWER_SUPPLY)
		slotdev_supply(sr->slot, 0, &sr->supply, sr->supply_err, sizeof sr->supply_err);
}

/* Leaves the slot as the rack file says a stopped rack should be. */
static void safe_state(struct slot_run *sr)
{
	char err[256];
	if (sr->slot->power.kind != RACK_POWER_NONE)
		set_power(sr, sr->slot->power.safe_on, err, sizeof err);
}

/* What identify() found, for the slot's later scenarios: field by field, so
 * a new field between them cannot be overrun or left out silently. */
static void copy_identity(struct engine_result *to, const struct engine_result *from)
{
	memcpy(to->imei, from->imei, sizeof to->imei);
	memcpy(to->vendor, from->vendor, sizeof to->vendor);
	memcpy(to->model, from->model, sizeof to->model);
	memcpy(to->firmware, from->firmware, sizeof to->firmware);
}

static void *slot_main(void *arg)
{
	struct slot_run *sr = arg;
	open_channels(sr);
	sr->cur = &sr->results[0];
	if (!sr->trk) {
		for (int i = 0; i < sr->n_sc; i++) {
			sr->cur = &sr->results[i];
			sr->cur->outcome = fail(sr, NULL, OUTCOME_ERROR, "console %s: %s", sr->slot->console.path,
						sr->console_err);
			snprintf(sr->cur->vendor, sizeof sr->cur->vendor, "%s", sr->slot->vendor);
			snprintf(sr->cur->model, sizeof sr->cur->model, "%s", sr->slot->model);
			slot_finished(sr, sr->cur);
		}
	} else {
		identify(sr, &sr->results[0]);
		for (int i = 0; i < sr->n_sc; i++) {
			struct engine_result *r = &sr->results[i];
			if (i > 0)
				copy_identity(r, &sr->results[0]);
			run_scenario(sr, &sr->scenarios[i], r);
			slot_finished(sr, r);
		}
	}
	if (clock_aborted(sr->o->clock))
		safe_state(sr);
	set_status(sr, true, "done");
	clock_leave(sr->o->clock);
	return NULL;
}

static void close_channels(struct slot_run *sr)
{
	tracker_close(sr->trk);
	if (sr->supply)
		sr->supply->driver->close(sr->supply);
	for (int b = 0; b < RACK_MAX_BOARDS; b++)
		if (sr->boards[b])
			sr->boards[b]->driver->close(sr->boards[b]);
}

/* ---- progress ---- */

static void show_progress(struct slot_run *runs, int n, const struct engine_opts *o, bool final)
{
	if (!o->progress || !o->progress_tty)
		return;
	static int drawn;
	if (drawn)
		fprintf(o->progress, "\033[%dA", drawn);
	for (int i = 0; i < n; i++) {
		char line[sizeof runs[i].status];
		pthread_mutex_lock(runs[i].progress_lock);
		snprintf(line, sizeof line, "%s", runs[i].done ? "done" : runs[i].status);
		pthread_mutex_unlock(runs[i].progress_lock);
		fprintf(o->progress, "\033[2Kslot %-4s %s\n", runs[i].label, line);
	}
	drawn = final ? 0 : n;
	fflush(o->progress);
}

int engine_run(const struct rack *rack, const bool *sel, const struct scenario *scenarios, int n_sc,
	       const struct engine_opts *o, struct engine_result *results)
{
	int n = 0;
	for (int i = 0; i < rack->n_slots; i++)
		n += sel[i];
	struct slot_run *runs = calloc((size_t)n, sizeof *runs);
	if (!runs)
		return -1;
	pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER, progress_lock = PTHREAD_MUTEX_INITIALIZER;
	int k = 0;
	for (int i = 0; i < rack->n_slots; i++) {
		if (!sel[i])
			continue;
		struct slot_run *sr = &runs[k];
		*sr = (struct slot_run){ .rack = rack, .slot = &rack->slots[i], .scenarios = scenarios, .n_sc = n_sc,
					 .o = o, .results = &results[k * n_sc], .db_lock = &db_lock,
					 .progress_lock = &progress_lock,
					 .last_power_on = -1, .restarts_before = -1, .restart_seen = -1, .ttff_s = NAN, .reacq_s = NAN, .ota_recovery_s = NAN, .tx_peak_a = NAN };
		snprintf(sr->label, sizeof sr->label, "%d", rack->slots[i].id);
		snprintf(sr->status, sizeof sr->status, "starting");
		for (int s = 0; s < n_sc; s++) {
			sr->results[s].slot = rack->slots[i].id;
			sr->results[s].scenario = &scenarios[s];
		}
		k++;
	}
	/* Everyone joins before anyone waits, so time cannot move while some
	 * slot has not started yet. */
	for (int i = 0; i < n; i++)
		clock_join(o->clock);
	int started = 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024); /* 64 slots on a small machine */
	for (int i = 0; i < n; i++) {
		if (pthread_create(&runs[i].thread, &attr, slot_main, &runs[i]) != 0)
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
	for (int i = started; i < n; i++) {
		clock_leave(o->clock);
		set_status(&runs[i], true, "not started");
		for (int s = 0; s < n_sc; s++) {
			runs[i].results[s].outcome = OUTCOME_ERROR;
			snprintf(runs[i].results[s].message, sizeof runs[i].results[s].message,
				 "slot %s: the rig could not start a thread for it", runs[i].label);
			slot_finished(&runs[i], &runs[i].results[s]);
		}
	}
	for (;;) {
		int done = 0;
		pthread_mutex_lock(&progress_lock);
		for (int i = 0; i < n; i++)
			done += runs[i].done;
		pthread_mutex_unlock(&progress_lock);
		if (done == n)
			break;
		show_progress(runs, n, o, false);
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	show_progress(runs, n, o, true);
	for (int i = 0; i < started; i++)
		pthread_join(runs[i].thread, NULL);
	for (int i = 0; i < n; i++)
		close_channels(&runs[i]);
	free(runs);
	return 0;
}

void engine_results_free(struct engine_result *results, int n)
{
	for (int i = 0; results && i < n; i++) {
		free(results[i].trace);
		results[i].trace = NULL;
		results[i].n_trace = 0;
	}
}
