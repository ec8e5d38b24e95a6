/* scenario.c - reading and checking scenario files (see scenario.h). */
#include "scenario.h"
#include "cli.h"
#include "diagnose.h"
#include "duration.h"
#include "tracker.h"
#include "yamldoc.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const scenario_sources[] = {
	"boot_time",       /* s from power on to the first answer showing the restart (or the boot event) */
	"supply.current",  /* A drawn now, read from the supply */
	"supply.voltage",  /* V at the output now */
	"uptime",          /* s the device says it has been up */
	"flush.drain_time", /* s from coverage back to the last backlog record */
	"flush.rate",      /* backlog records per second while draining */
	"flush.records",   /* backlog records that arrived */
	"flush.tx_current", /* A, the supply's peak while the backlog went out (transmit current) */
	"gnss.ttff",       /* s from power on to the first 3D fix, by the receiver's clock */
	"gnss.reacquisition", /* s from the antenna's return to the first 3D fix */
	"ota.boots",       /* restarts the device took during the last update (its restart counter) */
	"ota.recovery_time", /* s from the update's start to its last word (committed, rolled back, ...) */
	NULL,
};

const struct scenario_state scenario_states[] = {
	{ "reset_reason", "restarts" },  /* the last reset's source: power_on, watchdog, ... */
	{ "restarts", "restarts" },      /* the restart counter */
	{ "bank", "ota" },               /* the firmware bank running: A or B */
	{ "ota_state", "ota" },          /* where an update stands: committed, deferred, ... */
	{ "data_session", "data_session" }, /* up, down or refused */
	{ "power_source", NULL },
	{ "data_link", NULL },
	{ "gprs", NULL },
	{ "signal", NULL },
	{ "operator", NULL },
	{ NULL, NULL },
};

/* "console" is a way to command the unit (its console port or its uplink);
 * "console_port" a console port itself: what a scenario needs when it asks
 * the unit while its uplink is down (a spent data plan, no coverage). */
const char *const scenario_rig_requires[] = { "console", "console_port", "power", "uplink", "gnss", "fault:datacap",
					      NULL };

static const char *const top_keys[] = { "name", "summary", "requires", "steps", NULL };
static const char *const relay_keys[] = { "line", "state", NULL };
static const char *const expect_keys[] = { "event", "state", "reason", "answer", "uplink", "flush", "gnss", "restart", "equals",
					   "within", "absent", "period", NULL };
static const char *const fault_keys[] = { "datacap", "period", NULL };
static const char *const update_keys[] = { "image", "expect", "within", "power_cut", NULL };
static const char *const measure_keys[] = { "name", "source", "unit", "low", "high", "marginal", NULL };
static const char *const trace_keys[] = { "source", "every", "for", NULL };

int scenario_duration(const char *text, int64_t *ms)
{
	return duration_parse(text, SCENARIO_DURATION_MAX_MS, ms) == DURATION_OK ? 0 : -1;
}

static int read_duration(struct ydoc *d, yaml_node_t *n, const char *path, int64_t *ms)
{
	const char *s = ydoc_scalar(n);
	if (!s)
		return ydoc_fail(d, n, path, "expected a duration such as 500ms, 30s, 10m, 2h or 1h30m, got a non-value");
	enum duration_status st = duration_parse(s, SCENARIO_DURATION_MAX_MS, ms);
	if (st == DURATION_RANGE)
		return ydoc_fail(d, n, path, "'%s' is longer than the %lld h a duration may be", s,
				 (long long)(SCENARIO_DURATION_MAX_MS / 3600000));
	if (st != DURATION_OK)
		return ydoc_fail(d, n, path, "%s, got '%s'", duration_why(st), s);
	return 0;
}

static size_t list_len(const char *const *list)
{
	size_t n = 0;
	while (list[n])
		n++;
	return n;
}

static bool listed(const char *const *list, const char *word)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], word))
			return true;
	return false;
}

/* "KNOWN1, KNOWN2, ..." into BUF. */
static const char *join(const char *const *words, size_t n, char *buf, size_t len)
{
	*buf = 0;
	for (size_t i = 0; i < n; i++) {
		strncat(buf, i ? ", " : "", len - strlen(buf) - 1);
		strncat(buf, words[i], len - strlen(buf) - 1);
	}
	return buf;
}

/* "unknown WHAT 'WORD'; did you mean 'X'? (known: ...)": the guess from
 * GUESSES when one is close (cli_suggest), the KNOWN list always. */
static int refuse_guess(struct ydoc *d, const yaml_node_t *at, const char *path, const char *what, const char *word,
			const char *const *guesses, size_t n_guesses, const char *const *known, size_t n_known)
{
	char list[400], guess[96] = "";
	const char *g = cli_suggest(word, guesses, n_guesses);
	if (g)
		snprintf(guess, sizeof guess, "; did you mean '%s'?", g);
	return ydoc_fail(d, at, path, "unknown %s '%s'%s (known: %s)", what, word, guess,
			 join(known, n_known, list, sizeof list));
}

static int refuse_unknown(struct ydoc *d, const yaml_node_t *at, const char *path, const char *what, const char *word,
			  const char *const *known, size_t n)
{
	return refuse_guess(d, at, path, what, word, known, n, known, n);
}

static int read_on_off(struct ydoc *d, yaml_node_t *n, const char *path, bool *on)
{
	const char *s = ydoc_scalar(n);
	/* YAML 1.1 tools turn on/off into booleans; libyaml leaves the text. */
	if (s && (!strcmp(s, "on") || !strcmp(s, "true"))) return *on = true, 0;
	if (s && (!strcmp(s, "off") || !strcmp(s, "false"))) return *on = false, 0;
	return ydoc_fail(d, n, path, "expected on or off, got '%s'", s ? s : "a non-value");
}

static int read_limit(struct ydoc *d, yaml_node_t *map, const char *key, const char *base, double *out)
{
	char path[96];
	yaml_node_t *v = ydoc_get(d, map, key);
	*out = NAN;
	return v ? ydoc_double(d, v, ydoc_keypath(path, sizeof path, "%s.%s", base, key), out) : 0;
}

#define NAMES_MAX 32

static const struct scenario_state *state_find(const char *name)
{
	for (const struct scenario_state *s = scenario_states; s->name; s++)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

/* A state the engine cannot read would only be found once the rack runs. */
static int check_state(struct ydoc *d, yaml_node_t *n, const char *path, const char *value)
{
	if (state_find(value))
		return 0;
	const char *names[NAMES_MAX];
	size_t k = 0;
	for (const struct scenario_state *s = scenario_states; s->name && k < NAMES_MAX; s++)
		names[k++] = s->name;
	return refuse_unknown(d, n, path, "state", value, names, k);
}

/* A misspelt reason code is never diagnosed: with 'absent: true' the step
 * would pass whatever the unit did. */
static int check_reason(struct ydoc *d, yaml_node_t *n, const char *path, const char *value)
{
	if (diag_rule_find(value))
		return 0;
	const char *codes[NAMES_MAX];
	size_t k = 0;
	for (size_t i = 0; i < diag_rule_count && k < NAMES_MAX; i++)
		codes[k++] = diag_rules[i].code;
	return refuse_unknown(d, n, path, "reason code", value, codes, k);
}

/* What an expect step can wait for: one entry per subject, indexed by its
 * kind. VALUES lists the allowed values ("fix|honest"); NULL: the value is
 * free (an event kind, an answer) or checked by CHECK. */
struct expect_subject {
	const char *key;
	const char *values;
	int (*check)(struct ydoc *d, yaml_node_t *n, const char *path, const char *value);
	const char *needs;  /* in `requires:`; NULL: nothing (a state: the state's own) */
};

static const struct expect_subject expect_subjects[] = {
	[EXPECT_EVENT] = { .key = "event", .needs = "events" },
	[EXPECT_STATE] = { .key = "state", .check = check_state },
	[EXPECT_REASON] = { .key = "reason", .check = check_reason },
	[EXPECT_ANSWER] = { .key = "answer" },
	[EXPECT_UPLINK] = { .key = "uplink", .values = "flowing", .needs = "uplink" },
	[EXPECT_FLUSH] = { .key = "flush", .values = "complete", .needs = "uplink" },
	[EXPECT_GNSS] = { .key = "gnss", .values = "fix|honest", .needs = "gnss" },
	[EXPECT_RESTART] = { .key = "restart", .values = "seen", .needs = "restarts" },
};

#define N_EXPECT_SUBJECTS (sizeof expect_subjects / sizeof expect_subjects[0])

/* True when VALUE is one of the '|'-separated VALUES. */
static bool value_allowed(const char *values, const char *value)
{
	size_t n = strlen(value);
	for (const char *p = values; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
		if (!strncmp(p, value, n) && (p[n] == '|' || !p[n]))
			return true;
	return false;
}

/* "fix or honest" for "fix|honest". */
static const char *values_text(const char *values, char *buf, size_t len)
{
	size_t at = 0;
	*buf = 0;
	for (const char *p = values; *p && at < len;) {
		size_t n = strcspn(p, "|");
		const char *sep = p == values ? "" : strchr(p, '|') ? ", " : " or ";
		at += (size_t)snprintf(buf + at, len - at, "%s%.*s", sep, (int)n, p);
		p += n + (p[n] == '|');
	}
	return buf;
}

static const char *subject_list(char *buf, size_t len)
{
	const char *keys[N_EXPECT_SUBJECTS];
	for (size_t i = 0; i < N_EXPECT_SUBJECTS; i++)
		keys[i] = expect_subjects[i].key;
	return join(keys, N_EXPECT_SUBJECTS, buf, len);
}

/* The one subject of an expect step (its kind and text), checked against
 * its allowed values or its CHECK. */
static int read_subject(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96], list[128];
	yaml_node_t *at = NULL;
	for (size_t i = 0; i < N_EXPECT_SUBJECTS; i++) {
		yaml_node_t *s = ydoc_get(d, v, expect_subjects[i].key);
		if (!s)
			continue;
		if (at)
			return ydoc_fail(d, s, base, "expect one thing per step: %s", subject_list(list, sizeof list));
		at = s;
		st->expect = (enum scenario_expect_kind)i;
		ydoc_keypath(path, sizeof path, "%s.%s", base, expect_subjects[i].key);
		if (ydoc_str(d, s, path, st->text, sizeof st->text))
			return -1;
	}
	if (!at)
		return ydoc_fail(d, v, base, "say what to expect: %s", subject_list(list, sizeof list));
	const struct expect_subject *sub = &expect_subjects[st->expect];
	char want[96];
	if (sub->values && !value_allowed(sub->values, st->text))
		return ydoc_fail(d, at, path, "expected %s, got '%s'", values_text(sub->values, want, sizeof want), st->text);
	return sub->check ? sub->check(d, at, path, st->text) : 0;
}

static int read_expect(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, expect_keys) || read_subject(d, v, base, st))
		return -1;
	yaml_node_t *eq = ydoc_get(d, v, "equals");
	if (eq && st->expect != EXPECT_STATE)
		return ydoc_fail(d, eq, base, "'equals' goes with 'state'");
	if (st->expect == EXPECT_STATE && !eq)
		return ydoc_fail(d, v, base, "a state expectation needs 'equals'");
	if (eq && ydoc_str(d, eq, ydoc_keypath(path, sizeof path, "%s.equals", base), st->value, sizeof st->value))
		return -1;
	yaml_node_t *w = ydoc_get(d, v, "within");
	if (w && read_duration(d, w, ydoc_keypath(path, sizeof path, "%s.within", base), &st->duration_ms))
		return -1;
	yaml_node_t *per = ydoc_get(d, v, "period");
	if (per && st->expect != EXPECT_FLUSH)
		return ydoc_fail(d, per, base, "'period' goes with 'flush'");
	if (st->expect == EXPECT_FLUSH && !per)
		return ydoc_fail(d, v, base, "a flush check needs the record 'period' the scenario set");
	if (per && read_duration(d, per, ydoc_keypath(path, sizeof path, "%s.period", base), &st->period_ms))
		return -1;
	if (per && st->period_ms <= 0)
		return ydoc_fail(d, per, base, "the period must be above zero");
	yaml_node_t *a = ydoc_get(d, v, "absent");
	if (a && ydoc_bool(d, a, ydoc_keypath(path, sizeof path, "%s.absent", base), &st->negate))
		return -1;
	return 0;
}

static int read_measure(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, measure_keys))
		return -1;
	yaml_node_t *name = ydoc_get(d, v, "name"), *src = ydoc_get(d, v, "source"), *unit = ydoc_get(d, v, "unit");
	if (!name || !src || !unit)
		return ydoc_fail(d, v, base, "a measurement needs 'name', 'source' and 'unit'");
	if (ydoc_str(d, name, ydoc_keypath(path, sizeof path, "%s.name", base), st->name, sizeof st->name) ||
	    ydoc_str(d, src, ydoc_keypath(path, sizeof path, "%s.source", base), st->source, sizeof st->source) ||
	    ydoc_str(d, unit, ydoc_keypath(path, sizeof path, "%s.unit", base), st->unit, sizeof st->unit) ||
	    read_limit(d, v, "low", base, &st->low) || read_limit(d, v, "high", base, &st->high))
		return -1;
	if (!listed(scenario_sources, st->source))
		return refuse_unknown(d, src, ydoc_keypath(path, sizeof path, "%s.source", base), "source", st->source,
				      scenario_sources, list_len(scenario_sources));
	if (!isnan(st->low) && !isnan(st->high) && st->low > st->high)
		return ydoc_fail(d, v, base, "low limit %g is above high limit %g", st->low, st->high);
	yaml_node_t *m = ydoc_get(d, v, "marginal");
	if (m) {
		if (ydoc_double(d, m, ydoc_keypath(path, sizeof path, "%s.marginal", base), &st->marginal))
			return -1;
		if (st->marginal < 0 || st->marginal > 0.5)
			return ydoc_fail(d, m, path, "a fraction of the band between 0 and 0.5, got %g", st->marginal);
		if (isnan(st->low) || isnan(st->high))
			return ydoc_fail(d, m, path, "a marginal band needs both limits");
	}
	return 0;
}

/* fault: {datacap: BYTES, period: DURATION} or {datacap: off} */
static int read_fault(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, fault_keys))
		return -1;
	yaml_node_t *cap = ydoc_get(d, v, "datacap"), *per = ydoc_get(d, v, "period");
	if (!cap)
		return ydoc_fail(d, v, base, "say which fault: datacap");
	snprintf(st->text, sizeof st->text, "datacap");
	const char *s = ydoc_scalar(cap);
	if (s && !strcmp(s, "off")) {
		if (per)
			return ydoc_fail(d, per, base, "'datacap: off' takes no period");
		st->fault_bytes = -1;
		return 0;
	}
	long bytes;
	if (ydoc_long(d, cap, ydoc_keypath(path, sizeof path, "%s.datacap", base), 1, 0x7fffffffL, &bytes))
		return -1;
	st->fault_bytes = bytes;
	if (!per)
		return ydoc_fail(d, v, base, "a data cap needs its 'period' (e.g. 24h)");
	if (read_duration(d, per, ydoc_keypath(path, sizeof path, "%s.period", base), &st->fault_period_ms))
		return -1;
	if (st->fault_period_ms < 1000)
		return ydoc_fail(d, per, base, "the period must be at least 1s");
	return 0;
}

/* update: {image: NAME.fw, expect: committed|rolled_back|rejected|deferred,
 *          within: DURATION, power_cut: "10s..4m"} */
static int read_update(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, update_keys))
		return -1;
	yaml_node_t *img = ydoc_get(d, v, "image"), *ex = ydoc_get(d, v, "expect");
	if (!img || !ex)
		return ydoc_fail(d, v, base, "an update needs 'image' and 'expect'");
	if (ydoc_str(d, img, ydoc_keypath(path, sizeof path, "%s.image", base), st->text, sizeof st->text) ||
	    ydoc_str(d, ex, ydoc_keypath(path, sizeof path, "%s.expect", base), st->value, sizeof st->value))
		return -1;
	if (strchr(st->text, '/'))
		return ydoc_fail(d, img, path, "an image is a file name in the rig's image directory, not a path");
	static const char *const ends[] = { "committed", "rolled_back", "rejected", "deferred", NULL };
	bool ok = false;
	for (int i = 0; ends[i]; i++)
		ok |= !strcmp(st->value, ends[i]);
	if (!ok)
		return ydoc_fail(d, ex, ydoc_keypath(path, sizeof path, "%s.expect", base),
				 "expected committed, rolled_back, rejected or deferred, got '%s'", st->value);
	st->duration_ms = 30 * 60000;
	yaml_node_t *w = ydoc_get(d, v, "within");
	if (w && read_duration(d, w, ydoc_keypath(path, sizeof path, "%s.within", base), &st->duration_ms))
		return -1;
	yaml_node_t *pc = ydoc_get(d, v, "power_cut");
	if (pc) {
		const char *s = ydoc_scalar(pc), *dots = s ? strstr(s, "..") : NULL;
		char a[32];
		if (!dots || (size_t)(dots - s) >= sizeof a)
			return ydoc_fail(d, pc, base, "power_cut: expected a span such as 10s..4m");
		snprintf(a, sizeof a, "%.*s", (int)(dots - s), s);
		if (scenario_duration(a, &st->cut_min_ms) || scenario_duration(dots + 2, &st->cut_max_ms) ||
		    st->cut_max_ms < st->cut_min_ms || st->cut_max_ms == 0)
			return ydoc_fail(d, pc, base, "power_cut: expected a span such as 10s..4m, got '%s'", s);
	}
	return 0;
}

/* trace: {source: supply, every: 100ms, for: 20s}. A supply answers in a few
 * ms over Modbus; faster than 50 ms it would be read faster than it updates. */
static int read_trace(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, trace_keys))
		return -1;
	yaml_node_t *src = ydoc_get(d, v, "source"), *every = ydoc_get(d, v, "every"), *span = ydoc_get(d, v, "for");
	if (!src || !every || !span)
		return ydoc_fail(d, v, base, "a trace needs 'source', 'every' and 'for'");
	if (ydoc_str(d, src, ydoc_keypath(path, sizeof path, "%s.source", base), st->text, sizeof st->text))
		return -1;
	if (strcmp(st->text, "supply"))
		return ydoc_fail(d, src, path, "expected supply (the one source traced), got '%s'", st->text);
	if (read_duration(d, every, ydoc_keypath(path, sizeof path, "%s.every", base), &st->period_ms) ||
	    read_duration(d, span, ydoc_keypath(path, sizeof path, "%s.for", base), &st->duration_ms))
		return -1;
	if (st->period_ms < 50)
		return ydoc_fail(d, every, base, "every: at least 50ms (a supply updates its readings no faster)");
	if (st->duration_ms < st->period_ms || st->duration_ms / st->period_ms > SCENARIO_TRACE_MAX)
		return ydoc_fail(d, span, base, "for: from one reading to %d readings (every %lld ms)",
				 SCENARIO_TRACE_MAX, (long long)st->period_ms);
	return 0;
}

static int read_power(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st)
{
	const char *s = ydoc_scalar(v);
	if (s && !strcmp(s, "on")) st->power = POWER_ON;
	else if (s && !strcmp(s, "off")) st->power = POWER_OFF;
	else if (s && !strcmp(s, "cycle")) st->power = POWER_CYCLE;
	else return ydoc_fail(d, v, path, "expected on, off or cycle, got '%s'", s ? s : "a non-value");
	return 0;
}

static int read_relay(struct ydoc *d, yaml_node_t *v, const char *base, struct scenario_step *st)
{
	char path[96];
	if (ydoc_map(d, v, base, relay_keys))
		return -1;
	if (!ydoc_get(d, v, "line") || !ydoc_get(d, v, "state"))
		return ydoc_fail(d, v, base, "a relay step needs 'line' and 'state'");
	if (ydoc_str(d, ydoc_get(d, v, "line"), ydoc_keypath(path, sizeof path, "%s.line", base), st->text, sizeof st->text))
		return -1;
	return read_on_off(d, ydoc_get(d, v, "state"), ydoc_keypath(path, sizeof path, "%s.state", base), &st->on);
}

static int read_wait(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st)
{
	return read_duration(d, v, path, &st->duration_ms);
}

static int read_command(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st)
{
	if (ydoc_str(d, v, path, st->text, sizeof st->text))
		return -1;
	if (!*st->text || strpbrk(st->text, "\r\n"))
		return ydoc_fail(d, v, path, "a command is one non-empty line");
	return 0;
}

static int read_record(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st)
{
	return ydoc_str(d, v, path, st->text, sizeof st->text);
}

static int read_report_period(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st)
{
	if (read_duration(d, v, path, &st->period_ms))
		return -1;
	if (st->period_ms < 1000 || st->period_ms % 1000)
		return ydoc_fail(d, v, path, "a report period is whole seconds, at least 1s");
	return 0;
}

static const char *expect_needs(const struct scenario_step *st, char *buf, size_t len)
{
	(void)buf, (void)len;
	if (st->expect == EXPECT_STATE) {
		const struct scenario_state *s = state_find(st->text);
		return s ? s->needs : NULL;
	}
	return (size_t)st->expect < N_EXPECT_SUBJECTS ? expect_subjects[st->expect].needs : NULL;
}

static const char *relay_needs(const struct scenario_step *st, char *buf, size_t len)
{
	snprintf(buf, len, "relay:%s", st->text);
	return buf;
}

/* Every step type: a new one is one entry here (and its parse function).
 * HELP is the value's shape (docs/scenario-file.md shows it). NEEDS is
 * what the step needs in `requires:`, or NEEDS_OF works it out from the
 * step (from the value under NEEDS_KEY, where an error about it points);
 * neither: nothing. */
struct step_type {
	const char *key;
	int (*parse)(struct ydoc *d, yaml_node_t *v, const char *path, struct scenario_step *st);
	const char *help;
	const char *needs;
	const char *(*needs_of)(const struct scenario_step *st, char *buf, size_t len);
	const char *needs_key;
};

static const struct step_type step_types[] = {
	[STEP_POWER] = { .key = "power", .parse = read_power, .help = "on|off|cycle", .needs = "power" },
	[STEP_RELAY] = { .key = "relay", .parse = read_relay, .help = "{line: NAME, state: on|off}", .needs_of = relay_needs,
			 .needs_key = "line" },
	[STEP_WAIT] = { .key = "wait", .parse = read_wait, .help = "DURATION" },
	[STEP_COMMAND] = { .key = "command", .parse = read_command, .help = "TEXT (one line)" },
	[STEP_EXPECT] = { .key = "expect", .parse = read_expect, .help = "{SUBJECT: VALUE, within: DURATION, ...}",
			  .needs_of = expect_needs },
	[STEP_MEASURE] = { .key = "measure", .parse = read_measure,
			   .help = "{name: N, source: SOURCE, unit: U, low: X, high: Y, marginal: F}" },
	[STEP_RECORD] = { .key = "record", .parse = read_record, .help = "TEXT" },
	[STEP_FAULT] = { .key = "fault", .parse = read_fault, .help = "{datacap: BYTES, period: DURATION} | {datacap: off}",
			 .needs = "fault:datacap" },
	[STEP_UPDATE] = { .key = "update", .parse = read_update,
			  .help = "{image: NAME.fw, expect: committed|rolled_back|rejected|deferred, within: D, power_cut: D..D}",
			  .needs = "ota" },
	[STEP_TRACE] = { .key = "trace", .parse = read_trace, .help = "{source: supply, every: DURATION, for: DURATION}" },
	[STEP_REPORT_PERIOD] = { .key = "report_period", .parse = read_report_period, .help = "DURATION (whole seconds)",
				 .needs = "report_period" },
};

#define N_STEP_TYPES (sizeof step_types / sizeof step_types[0])
_Static_assert(N_STEP_TYPES == SCENARIO_STEP_KINDS, "one step_types[] entry per enum scenario_step_kind");

const char *scenario_step_name(enum scenario_step_kind k)
{
	return (size_t)k < N_STEP_TYPES && step_types[k].key ? step_types[k].key : "?";
}

const char *scenario_step_help(enum scenario_step_kind k)
{
	return (size_t)k < N_STEP_TYPES && step_types[k].help ? step_types[k].help : "?";
}

const char *scenario_step_needs(const struct scenario_step *st, char *buf, size_t len)
{
	if ((size_t)st->kind >= N_STEP_TYPES)
		return NULL;
	const struct step_type *t = &step_types[st->kind];
	return t->needs_of ? t->needs_of(st, buf, len) : t->needs;
}

static bool required(const struct scenario *sc, const char *what)
{
	for (int i = 0; i < sc->n_requires; i++)
		if (!strcmp(sc->requires[i], what))
			return true;
	return false;
}

/* A scenario declares what it needs, so a slot without it is SKIPPED with
 * that reason instead of failing at the step: "expect: {event: boot} needs
 * 'events' in requires", at the value the need comes from. */
static int check_needs(struct ydoc *d, yaml_node_t *v, const char *path, const struct scenario *sc,
		       const struct scenario_step *st)
{
	char buf[SCENARIO_TEXT_MAX + 8];
	const char *need = scenario_step_needs(st, buf, sizeof buf);
	if (!need || required(sc, need))
		return 0;
	const char *key = scenario_step_name(st->kind);
	const char *sub = st->kind == STEP_EXPECT ? expect_subjects[st->expect].key : step_types[st->kind].needs_key;
	if (sub)
		return ydoc_fail(d, ydoc_get(d, v, sub), path, "%s: {%s: %s} needs '%s' in requires", key, sub, st->text, need);
	const char *text = ydoc_scalar(v);
	return ydoc_fail(d, v, path, "%s: %s needs '%s' in requires", key, text ? text : "{...}", need);
}

static int refuse_step(struct ydoc *d, yaml_node_t *n, const char *base, const char *key)
{
	const char *names[N_STEP_TYPES];
	size_t n_names = 0;
	for (size_t i = 0; i < N_STEP_TYPES; i++)
		if (step_types[i].key)
			names[n_names++] = step_types[i].key;
	return refuse_unknown(d, n, base, "step", key, names, n_names);
}

static int read_step(struct ydoc *d, yaml_node_t *n, int idx, const struct scenario *sc, struct scenario_step *st)
{
	char base[32], path[96];
	ydoc_keypath(base, sizeof base, "steps[%d]", idx);
	st->line = (int)n->start_mark.line + 1;
	st->low = st->high = NAN;
	yaml_node_t *v;
	const char *key = ydoc_pair(d, n, 0, &v);
	if (!key)
		return ydoc_fail(d, n, base, "a step is one 'kind: value' pair, e.g. '- wait: 30s'");
	yaml_node_t *extra;
	if (ydoc_pair(d, n, 1, &extra))
		return ydoc_fail(d, extra, base, "one kind per step ('%s' given with more keys): indent the details under it", key);
	size_t k = 0;
	while (k < N_STEP_TYPES && (!step_types[k].key || strcmp(step_types[k].key, key)))
		k++;
	if (k == N_STEP_TYPES)
		return refuse_step(d, n, base, key);
	st->kind = (enum scenario_step_kind)k;
	ydoc_keypath(path, sizeof path, "%s.%s", base, key);
	if (step_types[k].parse(d, v, path, st))
		return -1;
	return check_needs(d, v, path, sc, st);
}

/* Each duration is capped, and so is their sum (steps at most
 * SCENARIO_MAX_STEPS, so the sum cannot overflow): a scenario that could
 * never finish is refused at the step that tips it over. */
static int check_total(struct ydoc *d, yaml_node_t *steps, const struct scenario *sc)
{
	int64_t total = 0;
	for (int i = 0; i < sc->n_steps; i++) {
		total += sc->steps[i].duration_ms;
		if (total <= SCENARIO_TOTAL_MAX_MS)
			continue;
		char path[32];
		return ydoc_fail(d, ydoc_item(d, steps, i), ydoc_keypath(path, sizeof path, "steps[%d]", i),
				 "the scenario's waits and time limits add up to more than %lld h",
				 (long long)(SCENARIO_TOTAL_MAX_MS / 3600000));
	}
	return 0;
}

static bool requirement_known(const char *r)
{
	if (!strncmp(r, "relay:", 6))
		return r[6] && !strpbrk(r + 6, " \t,:");
	return listed(scenario_rig_requires, r) || tracker_cap_known(r);
}

/* The requirements a scenario may name, for errors: REL stands for
 * relay:LINE (the line as typed, so "realy:ignition" finds "relay:ignition"). */
static size_t requirement_names(const char **out, size_t max, const char *rel)
{
	size_t k = 0;
	for (size_t i = 0; scenario_rig_requires[i] && k < max; i++)
		out[k++] = scenario_rig_requires[i];
	if (k < max)
		out[k++] = rel;
	for (size_t i = 0; tracker_cap_names[i] && k < max; i++)
		if (!listed(scenario_rig_requires, tracker_cap_names[i]))
			out[k++] = tracker_cap_names[i];
	return k;
}

static int refuse_requirement(struct ydoc *d, yaml_node_t *n, const char *path, const char *r)
{
	const char *names[NAMES_MAX], *guesses[NAMES_MAX];
	char rel[SCENARIO_NAME_MAX + 8];
	const char *colon = strchr(r, ':');
	snprintf(rel, sizeof rel, "relay:%s", colon && colon[1] ? colon + 1 : "NAME");
	size_t n_names = requirement_names(names, NAMES_MAX, "relay:NAME");
	size_t n_guesses = requirement_names(guesses, NAMES_MAX, rel);
	return refuse_guess(d, n, path, "requirement", r, guesses, n_guesses, names, n_names);
}

/* requires: [console, power, relay:ignition, events, ...], each known and once. */
static int read_requires(struct ydoc *d, yaml_node_t *v, struct scenario *sc)
{
	int n = ydoc_seq(d, v, "requires");
	if (n < 0)
		return -1;
	if (n > SCENARIO_MAX_REQUIRES)
		return ydoc_fail(d, v, "requires", "more than %d requirements", SCENARIO_MAX_REQUIRES);
	for (int i = 0; i < n; i++) {
		char path[32];
		yaml_node_t *item = ydoc_item(d, v, i);
		char *r = sc->requires[sc->n_requires];
		ydoc_keypath(path, sizeof path, "requires[%d]", i);
		if (ydoc_str(d, item, path, r, sizeof sc->requires[0]))
			return -1;
		if (!requirement_known(r))
			return refuse_requirement(d, item, path, r);
		for (int k = 0; k < sc->n_requires; k++)
			if (!strcmp(sc->requires[k], r))
				return ydoc_fail(d, item, path, "'%s' listed twice", r);
		sc->n_requires++;
	}
	return 0;
}

static int read_scenario(struct ydoc *d, struct scenario *sc)
{
	yaml_node_t *root = ydoc_root(d), *v;
	if (ydoc_map(d, root, "", top_keys))
		return -1;
	if (!(v = ydoc_get(d, root, "name")))
		return ydoc_fail(d, root, "", "missing 'name'");
	if (ydoc_str(d, v, "name", sc->name, sizeof sc->name))
		return -1;
	if ((v = ydoc_get(d, root, "summary")) && ydoc_str(d, v, "summary", sc->summary, sizeof sc->summary))
		return -1;
	if ((v = ydoc_get(d, root, "requires")) && read_requires(d, v, sc))
		return -1;
	if (!(v = ydoc_get(d, root, "steps")))
		return ydoc_fail(d, root, "", "missing 'steps'");
	int n = ydoc_seq(d, v, "steps");
	if (n < 0)
		return -1;
	if (n == 0)
		return ydoc_fail(d, v, "steps", "a scenario needs at least one step");
	if (n > SCENARIO_MAX_STEPS)
		return ydoc_fail(d, v, "steps", "%d steps: at most %d", n, SCENARIO_MAX_STEPS);
	sc->steps = calloc((size_t)n, sizeof *sc->steps);
	if (!sc->steps)
		return ydoc_fail(d, v, "steps", "out of memory");
	for (int i = 0; i < n; i++) {
		if (read_step(d, ydoc_item(d, v, i), i, sc, &sc->steps[i]))
			return -1;
		sc->n_steps++;
	}
	return check_total(d, v, sc);
}

int scenario_load(const char *path, struct scenario *sc, char *err, size_t errlen)
{
	memset(sc, 0, sizeof *sc);
	snprintf(sc->file, sizeof sc->file, "%s", path);
	struct ydoc d;
	int rc = ydoc_load(&d, path, err, errlen);
	if (rc == 0)
		rc = read_scenario(&d, sc);
	ydoc_free(&d);
	if (rc)
		scenario_free(sc); /* what a half-read scenario allocated */
	return rc;
}

void scenario_free(struct scenario *sc)
{
	free(sc->steps);
	sc->steps = NULL;
	sc->n_steps = 0;
}
