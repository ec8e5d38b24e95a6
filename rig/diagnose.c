/*
 * diagnose.c - the reason-code rules (contract in diagnose.h, the codes
 * explained for people in docs/reason-codes.md).
 *
 * The rules share a few predicates (is there a supply reading worth using,
 * does it show power missing) so that the codes partition the "console not
 * answering" cases instead of overlapping: a slot gets one cause, or the
 * honest "cannot tell", never two contradicting causes.
 */
#include "diagnose.h"
#include "timefmt.h"
#include "dispatch.h"
#include "power.h"

#include <math.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

const struct diag_params diag_default_params = {
	.brownout_v = 6.0,     /* FMB9xx-class trackers stop below about 6 V */
	.near_zero_a = 0.005,  /* a running tracker idles at tens of mA; 5 mA is leakage */
};

/* ---- shared predicates ---- */

static bool supply_live(const struct diag_evidence *ev)
{
	return ev->supply.state == DIAG_CH_ANSWERED && ev->supply.have_reading;
}

/* A reading older than the device's last good answer says nothing about why
 * it went silent afterwards: power was evidently there after that reading. */
static bool reading_usable(const struct diag_evidence *ev)
{
	const struct diag_supply *s = &ev->supply;
	if (!s->have_reading)
		return false;
	if (supply_live(ev))
		return true;
	return ev->console.last_seen_ms == DIAG_NEVER || s->read_at_ms >= ev->console.last_seen_ms;
}

static bool console_not_answering(const struct diag_evidence *ev)
{
	return ev->console.state == DIAG_CH_SILENT || ev->console.state == DIAG_CH_UNREACHABLE;
}

static int64_t silent_after(const struct diag_uplink *u)
{
	return u->silent_after_ms > 0 ? u->silent_after_ms : 600000;
}

/* The backend received a record recently: the unit is alive and its modem
 * works, whatever its console says. */
static bool uplink_alive(const struct diag_evidence *ev)
{
	const struct diag_uplink *u = &ev->uplink;
	return u->records == DIAG_CH_ANSWERED && u->last_record_ms != DIAG_NEVER &&
	       ev->now_ms - u->last_record_ms <= silent_after(u) &&
	       (ev->powered_on_ms == DIAG_NEVER || u->last_record_ms >= ev->powered_on_ms);
}

/* The store was read and holds nothing recent. */
static bool uplink_records_silent(const struct diag_evidence *ev)
{
	return ev->uplink.records == DIAG_CH_ANSWERED && !uplink_alive(ev);
}

/* The supply-side signs of missing power, counted so that agreeing signs
 * raise confidence. */
struct power_signs {
	bool off, low_v, no_i;
	int n;
};

static struct power_signs power_signs(const struct diag_evidence *ev, const struct diag_params *p)
{
	struct power_signs g = { 0 };
	if (!reading_usable(ev))
		return g;
	const struct diag_supply *s = &ev->supply;
	g.off = !s->output_on;
	g.low_v = s->v_out < p->brownout_v;
	g.no_i = s->i_out < p->near_zero_a;
	g.n = g.off + g.low_v + g.no_i;
	return g;
}

/* The unit's own external-voltage reports (IO 66) before it went quiet:
 * under the brown-out, or falling by 2 V or more over its last records. */
static bool telemetry_power_sign(const struct diag_evidence *ev, const struct diag_params *p)
{
	const struct diag_uplink *u = &ev->uplink;
	if (!uplink_records_silent(ev) || u->io_ext_mv < 0)
		return false;
	bool low = u->io_ext_mv < p->brownout_v * 1000.0;
	bool falling = u->io_ext_mv_before >= 0 && u->io_ext_mv_before - u->io_ext_mv >= 2000;
	return low || falling;
}

static double clamp(double c)
{
	return c < 0.05 ? 0.05 : c > 0.99 ? 0.99 : c;
}

static const char *prot_name(enum diag_protection p)
{
	return p == DIAG_PROT_OVP ? "OVP tripped" : p == DIAG_PROT_OCP ? "OCP tripped" : "none";
}

/* "output off, V-OUT 0.00 V (set 12.00 V), I-OUT 0.000 A, protection none" */
static void reading_text(const struct diag_supply *s, char *buf, size_t len)
{
	snprintf(buf, len, "output %s, V-OUT %.2f V (set %.2f V), I-OUT %.3f A, protection %s",
		 s->output_on ? "on" : "off", s->v_out, s->v_set, s->i_out, prot_name(s->protection));
}

/* How the console failed, with its last good answer. */
static void console_text(const struct diag_console *c, char *buf, size_t len)
{
	char seen[32];
	diag_format_time(c->last_seen_ms, seen, sizeof seen);
	const char *how = c->state == DIAG_CH_UNREACHABLE ? "console port cannot be opened"
			  : c->state == DIAG_CH_SILENT   ? "console silent"
			  : c->state == DIAG_CH_GARBLED  ? "console garbled"
			  : c->state == DIAG_CH_ANSWERED ? "console answered"
			  : c->state == DIAG_CH_ABSENT   ? "no console"
							 : "console not read";
	snprintf(buf, len, "%s (%s); last good answer %s", how, *c->detail ? c->detail : c->where, seen);
}

/* What the backend received: "last record 2026-...Z (95 s ago), GSM signal 4/5, external 12.10 V". */
static void records_text(const struct diag_evidence *ev, char *buf, size_t len)
{
	const struct diag_uplink *u = &ev->uplink;
	if (u->records != DIAG_CH_ANSWERED) {
		snprintf(buf, len, "uplink records not read (%s)", *u->records_detail ? u->records_detail : "no store");
		return;
	}
	if (u->last_record_ms == DIAG_NEVER) {
		snprintf(buf, len, "no record received from this IMEI");
		return;
	}
	char last[32], io[200] = "";
	diag_format_time(u->last_record_ms, last, sizeof last);
	if (u->io_signal >= 0)
		snprintf(io + strlen(io), sizeof io - strlen(io), ", GSM signal %d/5 (IO 21)", u->io_signal);
	if (u->io_ext_mv >= 0)
		snprintf(io + strlen(io), sizeof io - strlen(io), ", external %.2f V (IO 66)", u->io_ext_mv / 1000.0);
	if (u->io_ext_mv_before >= 0 && u->io_ext_mv >= 0)
		snprintf(io + strlen(io), sizeof io - strlen(io), " from %.2f V a few records before",
			 u->io_ext_mv_before / 1000.0);
	if (u->io_gnss >= 0)
		snprintf(io + strlen(io), sizeof io - strlen(io), ", GNSS status %d (IO 69)", u->io_gnss);
	double age = (double)(ev->now_ms - u->last_record_ms) / 1000.0;
	char ago[64];
	if (age >= 0)
		snprintf(ago, sizeof ago, "%.0f s ago", age);
	else   /* stamped by a clock ahead of the rack's: counts as just now */
		snprintf(ago, sizeof ago, "stamped %.0f s ahead of the rack clock", -age);
	snprintf(buf, len, "last record received %s (%s, silent after %.0f s)%s", last, ago,
		 (double)silent_after(u) / 1000.0, io);
}

/* ---- the rules ---- */

static double assess_power_loss(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (!console_not_answering(ev))
		return 0;
	const struct diag_supply *s = &ev->supply;
	struct power_signs g = power_signs(ev, p);
	char con[DIAG_TEXT_MAX * 2];
	console_text(&ev->console, con, sizeof con);
	if (g.n == 0) {
		/* No supply sign: the unit's own voltage reports may still say it. */
		if (reading_usable(ev) || !telemetry_power_sign(ev, p))
			return 0;
		char rec[400];
		records_text(ev, rec, sizeof rec);
		snprintf(out, len, "no live supply reading; the unit's own reports before silence: %s (brown-out %.2f V); %s",
			 rec, p->brownout_v, con);
		return ev->uplink.io_ext_mv < p->brownout_v * 1000.0 ? 0.7 : 0.55;
	}
	/* Each supply sign that agrees adds; a console that was opened and
	 * stayed silent is a second, independent channel agreeing; a stale
	 * reading or a console the rig could not even open weigh less. */
	double c = 0.55 + 0.1 * g.n;
	if (ev->console.state == DIAG_CH_SILENT)
		c += 0.1;
	if (!supply_live(ev))
		c -= 0.25;
	char signs[160], when[32];
	snprintf(signs, sizeof signs, "%s%s%s%s%s", g.off ? "output off" : "",
		 g.off && (g.low_v || g.no_i) ? ", " : "", g.low_v ? "V-OUT under brown-out" : "",
		 g.low_v && g.no_i ? ", " : "", g.no_i ? "I-OUT near zero" : "");
	diag_format_time(s->read_at_ms, when, sizeof when);
	snprintf(out, len, "supply %s: %s; V-OUT %.2f V (brown-out %.2f V), I-OUT %.3f A (near zero under %.3f A)%s%s%s; %s",
		 supply_live(ev) ? "now" : "last reading", signs, s->v_out, p->brownout_v, s->i_out, p->near_zero_a,
		 supply_live(ev) ? "" : " read ", supply_live(ev) ? "" : when,
		 supply_live(ev) ? "" : " (supply unreachable now)", con);
	return clamp(c);
}

static bool abnormal_reset(const char *reason)
{
	return !strcmp(reason, "watchdog") || !strcmp(reason, "crash") || !strcmp(reason, "exception");
}

/* Resets by the watchdog or an exception, counted by the device's own
 * restart counter over a window: the firmware, not the unit or its power. */
static double assess_crash_loop(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_boot *b = &ev->boot;
	if (b->state != DIAG_CH_ANSWERED || !abnormal_reset(b->reset_reason) || b->abnormal_resets < 2)
		return 0;
	snprintf(out, len, "%d resets in %.0f s by the restart counter (%d then, %d now), the last by %s, up %ld s since",
		 b->abnormal_resets, (double)b->window_ms / 1000.0, b->boots_then, b->boots_now, b->reset_reason,
		 b->uptime_s);
	return b->abnormal_resets >= 4 ? 0.95 : b->abnormal_resets == 3 ? 0.9 : 0.8;
}

/* It answered, but not in readable text: line noise, a wrong baud rate or
 * a failing adapter, not a dead unit. */
static double assess_console_garbled(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_console *c = &ev->console;
	if (c->state != DIAG_CH_GARBLED)
		return 0;
	snprintf(out, len, "%d of %d identity answers damaged, %d intact (%s); the unit is answering, so it is powered and running",
		 c->garbled, c->asked, c->good, *c->detail ? c->detail : c->where);
	return c->good == 0 ? 0.9 : 0.75;
}

/* Console silent but the backend keeps receiving records: the cable or the
 * adapter, not the unit. */
static double assess_console_link_lost(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (!console_not_answering(ev) || !uplink_alive(ev))
		return 0;
	char con[DIAG_TEXT_MAX * 2], rec[400];
	console_text(&ev->console, con, sizeof con);
	records_text(ev, rec, sizeof rec);
	bool powered = supply_live(ev) && power_signs(ev, p).n == 0;
	snprintf(out, len, "%s; yet the uplink is alive: %s%s", con, rec,
		 powered ? "; supply now on and drawing" : "");
	return powered ? 0.9 : 0.8;
}

/* Only a live reading proves power is there now; a stale "power fine" could
 * have changed since. Silent on the uplink too, or the cable is as likely. */
static double assess_unresponsive(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (ev->console.state != DIAG_CH_SILENT || !supply_live(ev) || power_signs(ev, p).n || uplink_alive(ev))
		return 0;
	const struct diag_supply *s = &ev->supply;
	/* A console that answered on this port before proves the cable and
	 * port; one that never did may be a wiring fault, not the unit. */
	bool seen = ev->console.last_seen_ms != DIAG_NEVER;
	bool up_silent = uplink_records_silent(ev);
	double c = up_silent ? (seen ? 0.9 : 0.75) : (seen ? 0.6 : 0.5);
	char con[DIAG_TEXT_MAX * 2], rec[400];
	console_text(&ev->console, con, sizeof con);
	records_text(ev, rec, sizeof rec);
	snprintf(out, len, "supply now: output on, V-OUT %.2f V (brown-out %.2f V), I-OUT %.3f A: the unit is powered and drawing; %s; %s%s",
		 s->v_out, p->brownout_v, s->i_out, con, rec,
		 up_silent ? ": silent on the uplink too" : ": a console cable fault is not ruled out");
	return clamp(c);
}

/* The modem's own account and the backend's, side by side. */
static void uplink_text(const struct diag_evidence *ev, char *buf, size_t len)
{
	const struct diag_uplink *u = &ev->uplink;
	char rec[400];
	records_text(ev, rec, sizeof rec);
	snprintf(buf, len, "modem: %s (operator %s, signal %d/5), data session %s%s; %s",
		 u->registered ? "registered" : "not registered", u->registered && *u->operator_code ? u->operator_code : "none",
		 u->signal, u->data_link ? "up" : "down", u->pdp_rejected ? " (PDP context rejected by the carrier)" : "",
		 rec);
}

/* The device is alive (its console answers and told the modem state) but
 * has no network: the antenna or the place, not the unit. */
static double assess_coverage(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_uplink *u = &ev->uplink;
	if (u->state != DIAG_CH_ANSWERED || u->registered)
		return 0;
	char up[DIAG_LINE_MAX];
	uplink_text(ev, up, sizeof up);
	snprintf(out, len, "%s; the unit is powered and answering, so power is not the cause", up);
	/* The backend agreeing (nothing received lately) adds; a record just
	 * received says the loss is fresh. */
	return uplink_records_silent(ev) ? 0.9 : uplink_alive(ev) ? 0.7 : 0.8;
}

/* Registered but the carrier refuses data: the SIM plan, not the antenna,
 * not the unit. The device's own PDP report is the strongest sign; usage at
 * or over a known plan is another; a data session down while registered
 * with the uplink silent is the weakest. */
static double assess_data_cap(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_uplink *u = &ev->uplink;
	if (u->state != DIAG_CH_ANSWERED || !u->registered || u->data_link)
		return 0;
	bool over = u->plan_bytes > 0 && u->bytes_used >= u->plan_bytes;
	if (!u->pdp_rejected && !over && !uplink_records_silent(ev))
		return 0;
	char up[DIAG_LINE_MAX], use[96] = "";
	uplink_text(ev, up, sizeof up);
	if (u->bytes_used >= 0)
		snprintf(use, sizeof use, "; data used %lld bytes%s", (long long)u->bytes_used,
			 over ? " (at or over the plan)" : "");
	snprintf(out, len, "%s%s; powered, answering and registered, yet no data: the carrier is refusing the session",
		 up, use);
	double c = u->pdp_rejected ? (uplink_records_silent(ev) ? 0.95 : 0.85) : over ? 0.8 : 0.6;
	return c;
}

/* The receiver as gpsd (or the device itself) sees it: a fix too old, too
 * few satellites or too poor a geometry to dispatch on. */
static double assess_gnss_fix_stale(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_gnss *g = &ev->gnss;
	if (g->state != DIAG_CH_ANSWERED)
		return 0;
	struct dispatch_reading r = {
		.mode = g->mode, .satellites_used = g->satellites_used, .hdop = g->hdop,
		.fix_age_s = g->last_fix_ms == DIAG_NEVER ? NAN : (double)(ev->now_ms - g->last_fix_ms) / 1000.0,
		.position_error_m = NAN,
	};
	char why[DIAG_TEXT_MAX];
	double c = dispatch_fix_stale(&r, NULL, why, sizeof why);
	if (c > 0)
		snprintf(out, len, "%s (from %s)", why, *g->source ? g->source : "gpsd");
	return c;
}

/* ---- which channels were read ---- */

struct channel_view {
	const char *name;
	enum diag_channel state;
	const char *why;   /* why not read */
};

static int channels(const struct diag_evidence *ev, struct channel_view *out)
{
	int n = 0;
	out[n++] = (struct channel_view){ "console", ev->console.state, ev->console.detail };
	out[n++] = (struct channel_view){ "supply", ev->supply.state, ev->supply.detail };
	out[n++] = (struct channel_view){ "modem", ev->uplink.state,
					  ev->uplink.state == DIAG_CH_UNKNOWN ? "console not answering" : "" };
	out[n++] = (struct channel_view){ "uplink records", ev->uplink.records, ev->uplink.records_detail };
	out[n++] = (struct channel_view){ "GNSS", ev->gnss.state, "" };
	out[n++] = (struct channel_view){ "boot history", ev->boot.state, "" };
	return n;
}

/* The rig's end worked and the device's side was seen (well or badly). */
static bool channel_read(enum diag_channel s)
{
	return s == DIAG_CH_ANSWERED || s == DIAG_CH_GARBLED || s == DIAG_CH_SILENT;
}

/* "no fault seen on: console, supply; not read: uplink records (why)". */
static bool read_and_unread(const struct diag_evidence *ev, const char *lead, char *out, size_t len)
{
	struct channel_view ch[8];
	int n = channels(ev, ch);
	char fine[200] = "", unread[DIAG_LINE_MAX] = "";
	for (int i = 0; i < n; i++) {
		if (ch[i].state == DIAG_CH_ABSENT)
			continue;
		if (channel_read(ch[i].state)) {
			snprintf(fine + strlen(fine), sizeof fine - strlen(fine), "%s%s", *fine ? ", " : "", ch[i].name);
			continue;
		}
		size_t k = strlen(unread);
		snprintf(unread + k, sizeof unread - k, "%s%s%s%.120s%s", *unread ? ", " : "", ch[i].name,
			 ch[i].why && *ch[i].why ? " (" : "", ch[i].why ? ch[i].why : "", ch[i].why && *ch[i].why ? ")" : "");
	}
	snprintf(out, len, "%s: %s%s%s", lead, *fine ? fine : "nothing", *unread ? "; not read: " : "", unread);
	return *unread != '\0';
}

/* Says which channel is missing, so the person knows which link to fix.
 * diag_run calls it only when no other rule explains the slot: the console
 * is not answering and nothing says why, or nothing is wrong on what was
 * read but a channel the rack has was not read. */
static double assess_inconclusive(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_supply *s = &ev->supply;
	const struct diag_console *k = &ev->console;
	if (k->state == DIAG_CH_ANSWERED || k->state == DIAG_CH_GARBLED || k->state == DIAG_CH_ABSENT)
		return read_and_unread(ev, "no fault seen on", out, len) ? 1.0 : 0;
	/* a silent console with nothing else known: say what is missing */
	char con[DIAG_TEXT_MAX * 2], sup[DIAG_TEXT_MAX * 2], when[32], rd[160], rec[400];
	console_text(k, con, sizeof con);
	records_text(ev, rec, sizeof rec);
	if (k->state == DIAG_CH_UNKNOWN) {
		snprintf(out, len, "not read: console (%s): the rig cannot see whether the device answers; %s",
			 *k->detail ? k->detail : "no reading", rec);
		return 1.0;
	}
	if (s->state == DIAG_CH_ANSWERED) {
		/* Powered and drawing, but the rig's own console end failed. */
		reading_text(s, rd, sizeof rd);
		snprintf(out, len, "%s; supply now: %s; %s: the rig cannot tell a hung device from a fault in its own console connection (%s)",
			 con, rd, rec, k->where);
		return 1.0;
	}
	if (s->have_reading) {
		reading_text(s, rd, sizeof rd);
		diag_format_time(s->read_at_ms, when, sizeof when);
		snprintf(sup, sizeof sup, "supply %s (%s); its last reading (%s, %s) %s",
			 s->state == DIAG_CH_UNREACHABLE ? "unreachable" : "not read", *s->detail ? s->detail : s->where, when, rd,
			 reading_usable(ev) ? "showed power present, and may have changed since" : "predates the last good answer");
	} else {
		snprintf(sup, sizeof sup, "supply %s (%s), no earlier reading",
			 s->state == DIAG_CH_UNREACHABLE ? "unreachable" : "not read", *s->detail ? s->detail : "no supply for this slot");
	}
	snprintf(out, len, "%s; %s; %s: the rig cannot tell a power loss at the device from a dead rig connection (supply link %s, console %s)",
		 con, sup, rec, *s->where ? s->where : "none", k->where);
	return 1.0;
}

const struct diag_rule diag_rules[] = {
	{
		.code = "power_loss_suspected",
		.title = "power loss suspected",
		.action_ops = "power loss suspected: check the vehicle's supply, fuse and harness; "
			      "the device cannot report until power returns",
		.action_technician = "measure the supply at the tracker connector; check fuse and harness, then power-cycle",
		.exclusive = true,
		.assess = assess_power_loss,
	},
	{
		.code = "firmware_crash_loop",
		.title = "firmware crash loop",
		.action_ops = "firmware crash loop: pause the rollout, roll back to the known-good version",
		.action_technician = "no site visit needed for the hardware: the firmware is at fault; once the rollout is "
				     "paused, roll the unit back (or let its bootloader do it) and report the build",
		.exclusive = true,
		.assess = assess_crash_loop,
	},
	{
		.code = "console_garbled",
		.title = "console answers garbled",
		.action_ops = "the unit is alive but its service console is unreadable: no action on the vehicle; "
			      "do not trust console readings until it is fixed",
		.action_technician = "check the console cable and USB-serial adapter (loose pin, noise, wrong baud rate); "
				     "swap the adapter, then run rig diagnose again",
		.exclusive = true,
		.assess = assess_console_garbled,
	},
	{
		.code = "console_link_lost",
		.title = "console link lost, unit alive",
		.action_ops = "the unit is alive and reporting: no power-cycle, no swap; the rig's console link to it is down",
		.action_technician = "check the console cable and USB-serial adapter (plugged in, port present, not cut), "
				     "then run rig diagnose again; the unit itself needs nothing",
		.exclusive = true,
		.assess = assess_console_link_lost,
	},
	{
		.code = "device_unresponsive",
		.title = "device powered but not answering",
		.action_ops = "device powered but not answering: power-cycle it remotely; if it does not come back, replace the unit",
		.action_technician = "power-cycle; if still silent, check the console cable, then swap the unit",
		.exclusive = true,
		.assess = assess_unresponsive,
	},
	{
		.code = "coverage_loss",
		.title = "no network coverage",
		.action_ops = "coverage lost: the device is not registered on the network; check the antenna or move the vehicle",
		.action_technician = "check the cellular antenna, its cable and placement; move the vehicle to known coverage, "
				     "then run rig diagnose again",
		.assess = assess_coverage,
	},
	{
		.code = "sim_data_cap_exceeded",
		.title = "SIM data cap exceeded",
		.action_ops = "SIM data cap exceeded: check the SIM plan with the provider; no truck roll",
		.action_technician = "no site visit needed: the unit and antenna are fine; the SIM's data plan is spent",
		.assess = assess_data_cap,
	},
	{
		.code = "gnss_fix_stale",
		.title = "GNSS fix stale or weak",
		.action_ops = "do not dispatch off this unit's position until a fresh 3D fix returns; use the last known "
			      "position with its age",
		.action_technician = "check the GNSS antenna: placement (roof, clear sky view, away from metal and tinted "
				     "glass), cable and connector (crushed, loose, wet), and that the gnss_antenna line is "
				     "closed; then run rig gnss and expect a 3D fix, 6+ satellites, HDOP <= 2",
		.assess = assess_gnss_fix_stale,
	},
	{
		.code = "insufficient_evidence",
		.title = "cannot tell: evidence missing",
		.action_ops = "no verdict yet: the rig lost a channel it needs (named in the summary); "
			      "do not dispatch on this alone, have the rig's link restored and diagnose again",
		.action_technician = "restore the rig connection named in the summary (supply Modbus link, console "
				     "cable or port, uplink ingest), then run rig diagnose again",
		.inconclusive = true,
		.assess = assess_inconclusive,
	},
};

const size_t diag_rule_count = sizeof diag_rules / sizeof diag_rules[0];

const struct diag_rule *diag_rule_find(const char *code)
{
	for (size_t i = 0; code && i < diag_rule_count; i++)
		if (strcmp(diag_rules[i].code, code) == 0)
			return &diag_rules[i];
	return NULL;
}

void diag_evidence_init(struct diag_evidence *ev, int64_t now_ms)
{
	memset(ev, 0, sizeof *ev);
	ev->now_ms = now_ms;
	ev->supply.read_at_ms = DIAG_NEVER;
	ev->console.last_seen_ms = DIAG_NEVER;
	ev->uplink.last_record_ms = DIAG_NEVER;
	ev->uplink.last_record_ts_ms = DIAG_NEVER;
	ev->uplink.last_login_ms = DIAG_NEVER;
	ev->uplink.io_signal = ev->uplink.io_ext_mv = ev->uplink.io_ext_mv_before = ev->uplink.io_gnss = -1;
	ev->uplink.bytes_used = -1;
	ev->gnss.hdop = NAN;
	ev->gnss.last_fix_ms = DIAG_NEVER;
	ev->powered_on_ms = DIAG_NEVER;
}

/* ---- evidence lines, the same for every finding of a slot ---- */

static const char *state_name(enum diag_channel s)
{
	static const char *const names[] = {
		[DIAG_CH_UNKNOWN] = "not read", [DIAG_CH_UNREACHABLE] = "cannot be opened",
		[DIAG_CH_SILENT] = "silent", [DIAG_CH_ANSWERED] = "answered now", [DIAG_CH_GARBLED] = "garbled",
		[DIAG_CH_ABSENT] = "not in this rack",
	};
	return names[s];
}

static const char *hdop_text(double h, char *buf, size_t len)
{
	if (isnan(h))
		snprintf(buf, len, "not told");
	else
		snprintf(buf, len, "%.1f", h);
	return buf;
}

static int evidence_lines(const struct diag_evidence *ev, char lines[][DIAG_LINE_MAX], int max)
{
	const size_t len = DIAG_LINE_MAX;
	const struct diag_supply *s = &ev->supply;
	char rd[160], when[32];
	int n = 0;
	reading_text(s, rd, sizeof rd);
	diag_format_time(s->read_at_ms, when, sizeof when);
	if (n < max) {
		if (s->state == DIAG_CH_ANSWERED)
			snprintf(lines[n++], len, "supply %s: %s; read %s", s->where, rd, when);
		else if (s->state == DIAG_CH_UNREACHABLE && s->have_reading)
			snprintf(lines[n++], len, "supply %s: unreachable: %s; last reading %s: %s", s->where, s->detail, when, rd);
		else if (s->state == DIAG_CH_UNREACHABLE)
			snprintf(lines[n++], len, "supply %s: unreachable: %s; no earlier reading", s->where, s->detail);
		else
			snprintf(lines[n++], len, "supply: %s: %s", state_name(s->state), *s->detail ? s->detail : "no supply for this slot");
	}
	const struct diag_console *k = &ev->console;
	diag_format_time(k->last_seen_ms, when, sizeof when);
	if (n < max)
		snprintf(lines[n++], len, "console %s: %s%s%s; last good answer %s", *k->where ? k->where : "(none)",
			 state_name(k->state), *k->detail ? ": " : "", k->detail, when);
	if (n < max) {
		char up[DIAG_LINE_MAX - 40];
		if (ev->uplink.state == DIAG_CH_ANSWERED)
			uplink_text(ev, up, sizeof up);
		else
			records_text(ev, up, sizeof up);
		snprintf(lines[n++], len, "uplink: %s%s", ev->uplink.state == DIAG_CH_ANSWERED ? "" : "modem not read; ", up);
	}
	const struct diag_gnss *g = &ev->gnss;
	char hd[16];
	if (n < max && g->state == DIAG_CH_ANSWERED)
		snprintf(lines[n++], len, "GNSS (%s): %s, mode %d, %d satellites used, hdop %s", g->source,
			 g->fix ? "fix" : "no fix", g->mode, g->satellites_used, hdop_text(g->hdop, hd, sizeof hd));
	else if (n < max)
		snprintf(lines[n++], len, "GNSS: %s", state_name(g->state));
	const struct diag_boot *b = &ev->boot;
	if (n < max && b->state == DIAG_CH_ANSWERED)
		snprintf(lines[n++], len, "boot history: restart counter %d (was %d %.0f s before), last reset %s, up %ld s",
			 b->boots_now, b->boots_then, (double)b->window_ms / 1000.0, *b->reset_reason ? b->reset_reason : "not told",
			 b->uptime_s);
	else if (n < max)
		snprintf(lines[n++], len, "boot history: %s", state_name(b->state));
	return n;
}

static bool add_finding(const struct diag_evidence *ev, const struct diag_params *p, const struct diag_rule *r,
			struct diag_report *out)
{
	if (out->n_findings >= DIAG_MAX_FINDINGS)
		return false;
	struct diag_finding *f = &out->findings[out->n_findings];
	double c = r->assess(ev, p, f->summary, sizeof f->summary);
	if (c <= 0) {
		f->summary[0] = '\0';
		return false;
	}
	f->rule = r;
	f->confidence = c;
	f->n_evidence = evidence_lines(ev, f->evidence, DIAG_MAX_EVIDENCE);
	out->inconclusive |= r->inconclusive;
	out->n_findings++;
	return true;
}

int diag_run(const struct diag_evidence *ev, const struct diag_params *p, struct diag_report *out)
{
	memset(out, 0, sizeof *out);
	if (!p)
		p = &diag_default_params;
	diag_format_time(ev->console.last_seen_ms, out->console_last_seen, sizeof out->console_last_seen);
	diag_format_time(ev->supply.have_reading ? ev->supply.read_at_ms : DIAG_NEVER, out->supply_last_read,
			 sizeof out->supply_last_read);
	bool have_cause = false;   /* an exclusive code already given: one cause per unit */
	const struct diag_rule *unsure = NULL;
	for (size_t i = 0; i < diag_rule_count; i++) {
		const struct diag_rule *r = &diag_rules[i];
		if (r->inconclusive) {
			unsure = r;
			continue;
		}
		if (r->exclusive && have_cause)
			continue;
		if (add_finding(ev, p, r, out) && r->exclusive)
			have_cause = true;
	}
	/* "Cannot tell" only where nothing explains the unit: a console that
	 * does not answer with no cause, or no finding while a channel the rack
	 * has went unread (never "healthy" on missing evidence). */
	enum diag_channel con = ev->console.state;
	bool silent_unexplained = !have_cause && (con == DIAG_CH_SILENT || con == DIAG_CH_UNREACHABLE || con == DIAG_CH_UNKNOWN);
	if (unsure && (silent_unexplained || out->n_findings == 0))
		add_finding(ev, p, unsure, out);
	char seen[DIAG_LINE_MAX - 64];
	bool clean = out->n_findings == 0 || (out->n_findings == 1 && out->inconclusive && !silent_unexplained);
	read_and_unread(ev, clean ? "no fault seen on" : "read", seen, sizeof seen);
	if (out->n_findings == 0)
		snprintf(out->verdict, sizeof out->verdict, "healthy: %s", seen);
	else
		snprintf(out->verdict, sizeof out->verdict, "%s: %s", out->inconclusive ? "inconclusive" : "finding", seen);
	return out->n_findings;
}

/* ---- times ---- */

const char *diag_format_time(int64_t ms, char *buf, size_t len)
{
	if (ms == DIAG_NEVER || ms < 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	return time_iso_ms(ms, buf, len);
}

int64_t diag_parse_time(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0, used = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			 &tm.tm_sec, &used) != 6)
		return DIAG_NEVER;
	s += used;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*s != 'Z' || s[1])
		return DIAG_NEVER;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return DIAG_NEVER;
	return (int64_t)t * 1000 + ms;
}

void diag_supply_reading(struct diag_supply *s, const struct power_status *st, int64_t at_ms)
{
	s->state = DIAG_CH_ANSWERED;
	s->have_reading = true;
	s->output_on = st->output_on;
	s->v_out = st->v_out;
	s->i_out = st->i_out;
	s->v_set = st->v_set;
	s->protection = st->protection == POWER_PROT_OVP ? DIAG_PROT_OVP
			: st->protection == POWER_PROT_OCP ? DIAG_PROT_OCP : DIAG_PROT_NONE;
	s->read_at_ms = at_ms;
}
