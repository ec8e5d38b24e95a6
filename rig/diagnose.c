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

static bool power_loss_holds(const struct diag_evidence *ev, const struct diag_params *p)
{
	return console_not_answering(ev) && power_signs(ev, p).n > 0;
}

/* Only a live reading proves power is there now; a stale "power fine" could
 * have changed since. */
static bool unresponsive_holds(const struct diag_evidence *ev, const struct diag_params *p)
{
	return ev->console.state == DIAG_CH_SILENT && supply_live(ev) && power_signs(ev, p).n == 0;
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
			  : c->state == DIAG_CH_ANSWERED ? "console answered"
							 : "console not gathered";
	snprintf(buf, len, "%s (%s); last good answer %s", how, *c->detail ? c->detail : c->where, seen);
}

/* ---- the rules ---- */

static double assess_power_loss(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (!power_loss_holds(ev, p))
		return 0;
	const struct diag_supply *s = &ev->supply;
	struct power_signs g = power_signs(ev, p);
	/* Each supply sign that agrees adds; a console that was opened and
	 * stayed silent is a second, independent channel agreeing; a stale
	 * reading or a console the rig could not even open weigh less. */
	double c = 0.55 + 0.1 * g.n;
	if (ev->console.state == DIAG_CH_SILENT)
		c += 0.1;
	if (!supply_live(ev))
		c -= 0.25;
	char signs[160], con[DIAG_TEXT_MAX * 2], when[32];
	snprintf(signs, sizeof signs, "%s%s%s%s%s", g.off ? "output off" : "",
		 g.off && (g.low_v || g.no_i) ? ", " : "", g.low_v ? "V-OUT under brown-out" : "",
		 g.low_v && g.no_i ? ", " : "", g.no_i ? "I-OUT near zero" : "");
	console_text(&ev->console, con, sizeof con);
	diag_format_time(s->read_at_ms, when, sizeof when);
	snprintf(out, len, "supply %s: %s; V-OUT %.2f V (brown-out %.2f V), I-OUT %.3f A (near zero under %.3f A)%s%s%s; %s",
		 supply_live(ev) ? "now" : "last reading", signs, s->v_out, p->brownout_v, s->i_out, p->near_zero_a,
		 supply_live(ev) ? "" : " read ", supply_live(ev) ? "" : when,
		 supply_live(ev) ? "" : " (supply unreachable now)", con);
	return clamp(c);
}

static double assess_unresponsive(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (!unresponsive_holds(ev, p))
		return 0;
	const struct diag_supply *s = &ev->supply;
	/* A console that answered on this port before proves the cable and
	 * port; one that never did may be a wiring fault, not the unit. */
	double c = ev->console.last_seen_ms != DIAG_NEVER ? 0.85 : 0.65;
	char con[DIAG_TEXT_MAX * 2];
	console_text(&ev->console, con, sizeof con);
	snprintf(out, len, "supply now: output on, V-OUT %.2f V (brown-out %.2f V), I-OUT %.3f A: the unit is powered and drawing; %s",
		 s->v_out, p->brownout_v, s->i_out, con);
	return clamp(c);
}

/* Says which channel is missing, so the person knows which link to fix. */
static double assess_inconclusive(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	if (ev->console.state == DIAG_CH_ANSWERED || power_loss_holds(ev, p) || unresponsive_holds(ev, p))
		return 0;
	const struct diag_supply *s = &ev->supply;
	const struct diag_console *k = &ev->console;
	char con[DIAG_TEXT_MAX * 2], sup[DIAG_TEXT_MAX * 2], when[32], rd[160];
	console_text(k, con, sizeof con);
	if (k->state == DIAG_CH_UNKNOWN) {
		snprintf(out, len, "no console evidence (%s): the rig cannot see whether the device answers",
			 *k->detail ? k->detail : "not gathered");
		return 1.0;
	}
	if (s->state == DIAG_CH_ANSWERED) {
		/* Powered and drawing, but the rig's own console end failed. */
		reading_text(s, rd, sizeof rd);
		snprintf(out, len, "%s; supply now: %s: the rig cannot tell a hung device from a fault in its own console connection (%s)",
			 con, rd, k->where);
		return 1.0;
	}
	if (s->have_reading) {
		reading_text(s, rd, sizeof rd);
		diag_format_time(s->read_at_ms, when, sizeof when);
		snprintf(sup, sizeof sup, "supply %s (%s); its last reading (%s, %s) %s", s->state == DIAG_CH_UNREACHABLE ? "unreachable" : "not read",
			 *s->detail ? s->detail : s->where, when, rd,
			 reading_usable(ev) ? "showed power present, and may have changed since" : "predates the last good answer");
	} else {
		snprintf(sup, sizeof sup, "supply %s (%s), no earlier reading", s->state == DIAG_CH_UNREACHABLE ? "unreachable" : "not read",
			 *s->detail ? s->detail : "no supply for this slot");
	}
	snprintf(out, len, "%s; %s: the rig cannot tell a power loss at the device from a dead rig connection (supply link %s, console %s)",
		 con, sup, *s->where ? s->where : "none", k->where);
	return 1.0;
}

/* The modem's own account and the backend's, side by side. */
static void uplink_text(const struct diag_evidence *ev, char *buf, size_t len)
{
	const struct diag_uplink *u = &ev->uplink;
	char last[32];
	diag_format_time(u->last_record_ms, last, sizeof last);
	snprintf(buf, len, "modem: %s (operator %s, signal %d/5), data session %s%s; last record received %s",
		 u->registered ? "registered" : "not registered", *u->operator_code ? u->operator_code : "none",
		 u->signal, u->data_link ? "up" : "down", u->pdp_rejected ? " (PDP context rejected by the carrier)" : "",
		 last);
}

static bool uplink_silent(const struct diag_evidence *ev)
{
	const struct diag_uplink *u = &ev->uplink;
	int64_t after = u->silent_after_ms > 0 ? u->silent_after_ms : 600000;
	return u->last_record_ms == DIAG_NEVER || ev->now_ms - u->last_record_ms > after;
}

/* The device is alive (its console answers and told the modem state) but
 * has no network: the antenna or the place, not the unit. */
static double assess_coverage(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_uplink *u = &ev->uplink;
	if (ev->console.state != DIAG_CH_ANSWERED || u->state != DIAG_CH_ANSWERED || u->registered)
		return 0;
	char up[DIAG_TEXT_MAX];
	uplink_text(ev, up, sizeof up);
	snprintf(out, len, "%s; the unit is powered and answering, so power is not the cause", up);
	return uplink_silent(ev) ? 0.9 : 0.75;
}

/* Registered but the carrier refuses data: the SIM plan, not the antenna,
 * not the unit. The device's own PDP report is the strongest sign; a data
 * session down while registered with the uplink silent is the weaker one. */
static double assess_data_cap(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_uplink *u = &ev->uplink;
	if (ev->console.state != DIAG_CH_ANSWERED || u->state != DIAG_CH_ANSWERED || !u->registered || u->data_link)
		return 0;
	if (!u->pdp_rejected && !uplink_silent(ev))
		return 0;
	char up[DIAG_TEXT_MAX];
	uplink_text(ev, up, sizeof up);
	snprintf(out, len, "%s; powered, answering and registered, yet no data: the carrier is refusing the session", up);
	return u->pdp_rejected ? (uplink_silent(ev) ? 0.95 : 0.85) : 0.6;
}

/* Boot after boot, each ended by the watchdog or a crash: the firmware, not
 * the unit or its power. */
static double assess_crash_loop(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	if (ev->crash_boots < 3)
		return 0;
	snprintf(out, len, "%d boots ended by a watchdog or crash reset in the last 10 minutes", ev->crash_boots);
	return ev->crash_boots >= 5 ? 0.95 : 0.85;
}

/* The receiver as gpsd sees it: a fix too old, too few satellites or too
 * poor a geometry to dispatch on. */
static double assess_gnss_fix_stale(const struct diag_evidence *ev, const struct diag_params *p, char *out, size_t len)
{
	(void)p;
	const struct diag_gnss *g = &ev->gnss;
	if (g->state != DIAG_CH_ANSWERED)
		return 0; /* not gathered is not bad */
	struct dispatch_reading r = {
		.mode = g->mode, .satellites_used = g->satellites_used, .hdop = g->hdop,
		.fix_age_s = g->last_fix_ms == DIAG_NEVER ? NAN : (double)(ev->now_ms - g->last_fix_ms) / 1000.0,
		.position_error_m = NAN,
	};
	return dispatch_fix_stale(&r, NULL, out, len);
}

const struct diag_rule diag_rules[] = {
	{
		.code = "power_loss_suspected",
		.title = "power loss suspected",
		.action_ops = "power loss suspected: check the vehicle's supply, fuse and harness; "
			      "the device cannot report until power returns",
		.action_technician = "measure the supply at the tracker connector; check fuse and harness, then power-cycle",
		.assess = assess_power_loss,
	},
	{
		.code = "device_unresponsive",
		.title = "device powered but not answering",
		.action_ops = "device powered but not answering: power-cycle it remotely; if it does not come back, replace the unit",
		.action_technician = "power-cycle; if still silent, check the console cable, then swap the unit",
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
		.code = "firmware_crash_loop",
		.title = "firmware crash loop",
		.action_ops = "firmware crash loop: pause the rollout, roll back to the known-good version",
		.action_technician = "no site visit needed for the hardware: the firmware is at fault; once the rollout is "
				     "paused, roll the unit back (or let its bootloader do it) and report the build",
		.assess = assess_crash_loop,
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
				     "cable or port), then run rig diagnose again",
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

/* ---- evidence lines, the same for every finding of a slot ---- */

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
			snprintf(lines[n++], len, "supply: not gathered: %s", *s->detail ? s->detail : "no supply for this slot");
	}
	const struct diag_console *k = &ev->console;
	diag_format_time(k->last_seen_ms, when, sizeof when);
	static const char *const how[] = {
		[DIAG_CH_UNKNOWN] = "not gathered", [DIAG_CH_UNREACHABLE] = "cannot be opened",
		[DIAG_CH_SILENT] = "silent", [DIAG_CH_ANSWERED] = "answered now",
	};
	if (n < max)
		snprintf(lines[n++], len, "console %s: %s%s%s; last good answer %s", *k->where ? k->where : "(none)", how[k->state],
			 *k->detail ? ": " : "", k->detail, when);
	if (n < max && ev->uplink.state == DIAG_CH_ANSWERED) {
		char up[DIAG_TEXT_MAX];
		uplink_text(ev, up, sizeof up);
		snprintf(lines[n++], len, "uplink: %s", up);
	}
	if (n < max && ev->uplink.state == DIAG_CH_UNKNOWN && ev->gnss.state == DIAG_CH_UNKNOWN)
		snprintf(lines[n++], len, "uplink, GNSS: not gathered (unknown)");
	return n;
}

int diag_run(const struct diag_evidence *ev, const struct diag_params *p, struct diag_report *out)
{
	memset(out, 0, sizeof *out);
	if (!p)
		p = &diag_default_params;
	diag_format_time(ev->console.last_seen_ms, out->console_last_seen, sizeof out->console_last_seen);
	diag_format_time(ev->supply.have_reading ? ev->supply.read_at_ms : DIAG_NEVER, out->supply_last_read,
			 sizeof out->supply_last_read);
	for (size_t i = 0; i < diag_rule_count && out->n_findings < DIAG_MAX_FINDINGS; i++) {
		struct diag_finding *f = &out->findings[out->n_findings];
		double c = diag_rules[i].assess(ev, p, f->summary, sizeof f->summary);
		if (c <= 0) {
			f->summary[0] = '\0';
			continue;
		}
		f->rule = &diag_rules[i];
		f->confidence = c;
		f->n_evidence = evidence_lines(ev, f->evidence, DIAG_MAX_EVIDENCE);
		out->inconclusive |= diag_rules[i].inconclusive;
		out->n_findings++;
	}
	return out->n_findings;
}

/* ---- times ---- */

const char *diag_format_time(int64_t ms, char *buf, size_t len)
{
	if (ms == DIAG_NEVER || ms < 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char day[24];
	if (!gmtime_r(&sec, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "never");
		return buf;
	}
	snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
	return buf;
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
