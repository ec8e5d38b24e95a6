/* rack.c - reading and checking rack files (see rack.h, docs/rack-file.md). */
#include "rack.h"
#include "power.h"
#include "relay.h"
#include "yamldoc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(...) ydoc_keypath(path, sizeof path, __VA_ARGS__)

static const char *const top_keys[] = { "station", "control", "reference", "uplink", "boards", "slots", NULL };
static const char *const uplink_keys[] = { "host", "port", NULL };
static const char *const ref_keys[] = { "lat", "lon", "alt", NULL };
static const char *const board_keys[] = { "name", "driver", "transport", "unit", NULL };
static const char *const slot_keys[] = { "id", "console", "nmea", "usb", "power", "lines", "vendor",
					 "model", "protocol", "expect", "declared", "tags", NULL };
static const char *const declared_keys[] = { "buffer_records", "flush_order", "record_period_s", "ttff_cold_s",
					     "ttff_warm_s", NULL };
static const char *const port_keys[] = { "port", "baud", NULL };
static const char *const power_keys[] = { "driver", "transport", "unit", "volts", "amps", "ovp", "ocp",
					  "limits", "relay", "usb", "safe", NULL };
static const char *const line_keys[] = { "board", "channel", NULL };
static const char *const expect_keys[] = { "imei", "iccid", "serial", "vehicle", NULL };

/* Reads optional string KEY of mapping N into OUT (left as is when absent). */
static int opt_str(struct ydoc *d, yaml_node_t *n, const char *key, const char *base,
		   char *out, size_t len)
{
	yaml_node_t *v = ydoc_get(d, n, key);
	char path[160];
	return v ? ydoc_str(d, v, P("%s.%s", base, key), out, len) : 0;
}

static int opt_long(struct ydoc *d, yaml_node_t *n, const char *key, const char *base,
		    long min, long max, int *out)
{
	yaml_node_t *v = ydoc_get(d, n, key);
	char path[160];
	long x;
	if (!v)
		return 0;
	if (ydoc_long(d, v, P("%s.%s", base, key), min, max, &x))
		return -1;
	*out = (int)x;
	return 0;
}

/* What each number of a rack file may be (docs/rack-file.md, "Limits"):
 * an RD60xx sets at most 60 V and 18 A (RD6018). */
static const struct {
	const char *key;
	double min, max;
} double_limits[] = {
	{ "volts", 0, 60 }, { "amps", 0, 18 }, { "alt", -500, 9000 },
};

static int opt_double(struct ydoc *d, yaml_node_t *n, const char *key, const char *base, double *out)
{
	yaml_node_t *v = ydoc_get(d, n, key);
	char path[160];
	if (!v)
		return 0;
	if (ydoc_double(d, v, P("%s.%s", base, key), out))
		return -1;
	for (size_t i = 0; i < sizeof double_limits / sizeof double_limits[0]; i++)
		if (!strcmp(double_limits[i].key, key) && (*out < double_limits[i].min || *out > double_limits[i].max))
			return ydoc_fail(d, v, path, "%g is outside %g..%g", *out, double_limits[i].min,
					 double_limits[i].max);
	return 0;
}

/* Each driver judges its own transport (power.h, relay.h): checked here so
 * a typo is caught when the file is read, not when the first power cut is
 * due. */
static int check_transport(struct ydoc *d, yaml_node_t *at, const char *path,
			   int (*check)(const char *, char *, size_t), const char *t)
{
	char why[400];
	if (!check || check(t, why, sizeof why) == 0)
		return 0;
	return ydoc_fail(d, at, path, "%s", why);
}

static int read_port(struct ydoc *d, yaml_node_t *n, const char *base, struct rack_port *p,
		     int default_baud)
{
	char path[160];
	if (ydoc_map(d, n, base, port_keys))
		return -1;
	yaml_node_t *v = ydoc_get(d, n, "port");
	if (!v)
		return ydoc_fail(d, n, base, "missing 'port'");
	if (ydoc_str(d, v, P("%s.port", base), p->path, sizeof p->path))
		return -1;
	p->baud = default_baud;
	return opt_long(d, n, "baud", base, 50, 4000000, &p->baud);
}

/* A supply's set points: the rig writes them before every switch-on, so a
 * supply with none would be switched on at whatever it was last left at
 * (30 V from someone else's bench test). Leaving them is allowed only when
 * the file says so. */
static int read_limits(struct ydoc *d, yaml_node_t *n, const char *base, struct rack_power *pw)
{
	char path[160];
	yaml_node_t *lim = ydoc_get(d, n, "limits");
	if (lim) {
		const char *s = ydoc_scalar(lim);
		if (!s || strcmp(s, "leave") != 0)
			return ydoc_fail(d, lim, P("%s.limits", base),
					 "expected 'leave' (or no 'limits' key, and give volts and amps)");
		static const char *const set[] = { "volts", "amps", "ovp", "ocp" };
		for (size_t i = 0; i < 4; i++)
			if (ydoc_get(d, n, set[i]))
				return ydoc_fail(d, ydoc_get(d, n, set[i]), P("%s.%s", base, set[i]),
						 "'limits: leave' and a set point contradict each other");
		pw->leave_limits = true;
		return 0;
	}
	if (!ydoc_get(d, n, "volts") || !ydoc_get(d, n, "amps"))
		return ydoc_fail(d, n, base,
				 "a supply needs 'volts' and 'amps' (written and read back before every switch-on), "
				 "or 'limits: leave' to let the rig switch on at whatever the supply holds");
	if (!(pw->volts > 0 && isfinite(pw->volts)))
		return ydoc_fail(d, ydoc_get(d, n, "volts"), P("%s.volts", base), "expected more than 0 V");
	if (!(pw->amps > 0 && isfinite(pw->amps)))
		return ydoc_fail(d, ydoc_get(d, n, "amps"), P("%s.amps", base), "expected more than 0 A");
	if (ydoc_get(d, n, "ovp") && !(pw->ovp >= pw->volts))
		return ydoc_fail(d, ydoc_get(d, n, "ovp"), P("%s.ovp", base),
				 "over-voltage protection %g V is below volts %g V: the output would trip at once",
				 pw->ovp, pw->volts);
	if (ydoc_get(d, n, "ocp") && !(pw->ocp >= pw->amps))
		return ydoc_fail(d, ydoc_get(d, n, "ocp"), P("%s.ocp", base),
				 "over-current protection %g A is below amps %g A", pw->ocp, pw->amps);
	return 0;
}

static int read_power(struct ydoc *d, yaml_node_t *n, const char *base, struct rack_power *pw)
{
	if (ydoc_map(d, n, base, power_keys))
		return -1;
	pw->safe_on = false;
	yaml_node_t *safe = ydoc_get(d, n, "safe");
	char path[160];
	if (safe) {
		const char *s = ydoc_scalar(safe);
		if (!s || (strcmp(s, "on") && strcmp(s, "off")))
			return ydoc_fail(d, safe, P("%s.safe", base), "expected on or off");
		pw->safe_on = strcmp(s, "on") == 0;
	}
	if (ydoc_get(d, n, "usb")) {
		pw->kind = RACK_POWER_USB;
		if (ydoc_get(d, n, "relay") || ydoc_get(d, n, "driver") || ydoc_get(d, n, "transport"))
			return ydoc_fail(d, n, base, "give one power source: a USB port, a relay line or a supply");
		if (opt_str(d, n, "usb", base, pw->usb, sizeof pw->usb))
			return -1;
		/* "1-1.2": bus, dash, then dot-separated port numbers. */
		const char *u = pw->usb;
		bool ok = *u >= '0' && *u <= '9' && strchr(u, '-') && strlen(u) == strspn(u, "0123456789-.");
		if (!ok || u[strlen(u) - 1] == '.' || u[strlen(u) - 1] == '-')
			return ydoc_fail(d, ydoc_get(d, n, "usb"), P("%s.usb", base), "'%s': expected a port path such as 1-1.2",
					 pw->usb);
		return 0;
	}
	if (ydoc_get(d, n, "relay")) {
		pw->kind = RACK_POWER_RELAY;
		if (ydoc_get(d, n, "driver") || ydoc_get(d, n, "transport"))
			return ydoc_fail(d, n, base, "give either a relay line or a supply (driver, transport), not both");
		return opt_str(d, n, "relay", base, pw->relay, sizeof pw->relay);
	}
	pw->kind = RACK_POWER_SUPPLY;
	pw->bus.unit = 1;
	yaml_node_t *tr = ydoc_get(d, n, "transport");
	if (!ydoc_get(d, n, "driver") || !tr)
		return ydoc_fail(d, n, base, "a supply needs 'driver' and 'transport' (or give 'relay')");
	if (opt_str(d, n, "driver", base, pw->driver, sizeof pw->driver) ||
	    opt_str(d, n, "transport", base, pw->bus.transport, sizeof pw->bus.transport))
		return -1;
	const struct power_driver *drv = power_driver_find(pw->driver);
	char known[200];
	if (!drv)
		return ydoc_fail(d, ydoc_get(d, n, "driver"), P("%s.driver", base),
				 "unknown supply driver '%s' (known: %s)", pw->driver,
				 power_driver_names(known, sizeof known));
	if (check_transport(d, tr, P("%s.transport", base), drv->check_transport, pw->bus.transport) ||
	    opt_long(d, n, "unit", base, 1, 247, &pw->bus.unit) ||
	    opt_double(d, n, "volts", base, &pw->volts) ||
	    opt_double(d, n, "amps", base, &pw->amps) ||
	    opt_double(d, n, "ovp", base, &pw->ovp) ||
	    opt_double(d, n, "ocp", base, &pw->ocp))
		return -1;
	return read_limits(d, n, base, pw);
}

static int read_lines(struct ydoc *d, yaml_node_t *n, const char *base, const struct rack *rack,
		      struct rack_slot *s)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return ydoc_fail(d, n, base, "expected a mapping of line name to {board, channel}");
	yaml_node_t *v;
	const char *name;
	char path[160];
	for (int i = 0; (name = ydoc_pair(d, n, i, &v)) != NULL; i++) {
		if (s->n_lines == RACK_MAX_LINES)
			return ydoc_fail(d, v, base, "more than %d lines", RACK_MAX_LINES);
		struct rack_line *l = &s->lines[s->n_lines++];
		snprintf(l->name, sizeof l->name, "%s", name);
		char lb[160];
		ydoc_keypath(lb, sizeof lb, "%s.%s", base, name);
		if (ydoc_map(d, v, lb, line_keys))
			return -1;
		if (!ydoc_get(d, v, "board") || !ydoc_get(d, v, "channel"))
			return ydoc_fail(d, v, lb, "needs 'board' and 'channel'");
		if (opt_str(d, v, "board", lb, l->board, sizeof l->board) ||
		    opt_long(d, v, "channel", lb, 0, 255, &l->channel))
			return -1;
		bool known = false;
		for (int b = 0; b < rack->n_boards; b++)
			known |= strcmp(rack->boards[b].name, l->board) == 0;
		if (!known)
			return ydoc_fail(d, ydoc_get(d, v, "board"), P("%s.board", lb),
					 "no board named '%s' under 'boards'", l->board);
	}
	return 0;
}

static int read_slot(struct ydoc *d, yaml_node_t *n, int idx, const struct rack *rack, struct rack_slot *s)
{
	char base[32], path[160];
	snprintf(base, sizeof base, "slots[%d]", idx);
	if (ydoc_map(d, n, base, slot_keys))
		return -1;
	s->line_no = (int)n->start_mark.line + 1;
	yaml_node_t *v = ydoc_get(d, n, "id");
	long id;
	if (!v)
		return ydoc_fail(d, n, base, "missing 'id'");
	if (ydoc_long(d, v, P("%s.id", base), 1, 9999, &id))
		return -1;
	s->id = (int)id;
	/* No console: the unit takes its commands over its uplink (codec 12
	 * through the rig's ingest), found there by its IMEI (checked below). */
	if ((v = ydoc_get(d, n, "console")) && read_port(d, v, P("%s.console", base), &s->console, 115200))
		return -1;
	if ((v = ydoc_get(d, n, "nmea")) && read_port(d, v, P("%s.nmea", base), &s->nmea, 9600))
		return -1;
	if (opt_str(d, n, "usb", base, s->usb, sizeof s->usb) ||
	    opt_str(d, n, "vendor", base, s->vendor, sizeof s->vendor) ||
	    opt_str(d, n, "model", base, s->model, sizeof s->model))
		return -1;
	snprintf(s->protocol, sizeof s->protocol, "teltonika");
	if (opt_str(d, n, "protocol", base, s->protocol, sizeof s->protocol))
		return -1;
	if ((v = ydoc_get(d, n, "expect"))) {
		char eb[64];
		ydoc_keypath(eb, sizeof eb, "%s.expect", base);
		if (ydoc_map(d, v, eb, expect_keys) ||
		    opt_str(d, v, "imei", eb, s->expect.imei, sizeof s->expect.imei) ||
		    opt_str(d, v, "iccid", eb, s->expect.iccid, sizeof s->expect.iccid) ||
		    opt_str(d, v, "serial", eb, s->expect.serial, sizeof s->expect.serial) ||
		    opt_str(d, v, "vehicle", eb, s->expect.vehicle, sizeof s->expect.vehicle))
			return -1;
	}
	if (!*s->console.path && !*s->expect.imei)
		return ydoc_fail(d, n, base, "a slot without a console takes its commands over the uplink: give its "
				 "IMEI (expect: {imei: ...}) so the rig knows which connection is its");
	if (!*s->console.path && !rack->uplink_port)
		return ydoc_fail(d, n, base, "a slot without a console takes its commands over the uplink: the rack "
				 "needs 'uplink: {port: N}', the port its units send to");
	if ((v = ydoc_get(d, n, "lines")) && read_lines(d, v, P("%s.lines", base), rack, s))
		return -1;
	if ((v = ydoc_get(d, n, "declared"))) {
		char db[64];
		ydoc_keypath(db, sizeof db, "%s.declared", base);
		s->declared.given = true;
		s->declared.record_period_s = 60;
		if (ydoc_map(d, v, db, declared_keys) ||
		    opt_long(d, v, "buffer_records", db, 0, 100000000, &s->declared.buffer_records) ||
		    opt_long(d, v, "record_period_s", db, 1, 86400, &s->declared.record_period_s) ||
		    opt_long(d, v, "ttff_cold_s", db, 0, 3600, &s->declared.ttff_cold_s) ||
		    opt_long(d, v, "ttff_warm_s", db, 0, 3600, &s->declared.ttff_warm_s))
			return -1;
		yaml_node_t *fo = ydoc_get(d, v, "flush_order");
		if (fo) {
			const char *o = ydoc_scalar(fo);
			if (!o || (strcmp(o, "oldest_first") && strcmp(o, "newest_first")))
				return ydoc_fail(d, fo, P("%s.flush_order", db), "expected oldest_first or newest_first");
			s->declared.newest_first = strcmp(o, "newest_first") == 0;
		}
	}
	if ((v = ydoc_get(d, n, "power"))) {
		if (read_power(d, v, P("%s.power", base), &s->power))
			return -1;
		if (s->power.kind == RACK_POWER_RELAY) {
			bool found = false;
			for (int i = 0; i < s->n_lines; i++)
				found |= strcmp(s->lines[i].name, s->power.relay) == 0;
			if (!found)
				return ydoc_fail(d, v, P("%s.power.relay", base),
						 "no line named '%s' under this slot's 'lines'", s->power.relay);
		}
	}
	if ((v = ydoc_get(d, n, "tags"))) {
		if (!v || v->type != YAML_MAPPING_NODE)
			return ydoc_fail(d, v, P("%s.tags", base), "expected a mapping such as {model: FMB920, region: north}");
		yaml_node_t *tv;
		const char *key;
		for (int i = 0; (key = ydoc_pair(d, v, i, &tv)) != NULL; i++) {
			if (s->n_tags == RACK_MAX_TAGS)
				return ydoc_fail(d, tv, P("%s.tags", base), "more than %d tags", RACK_MAX_TAGS);
			struct rack_tag *t = &s->tags[s->n_tags++];
			snprintf(t->key, sizeof t->key, "%s", key);
			if (ydoc_str(d, tv, P("%s.tags.%s", base, key), t->value, sizeof t->value))
				return -1;
		}
	}
	return 0;
}

static int read_rack(struct ydoc *d, struct rack *rack)
{
	yaml_node_t *root = ydoc_root(d), *v;
	char path[64];
	if (ydoc_map(d, root, "", top_keys))
		return -1;
	snprintf(rack->station, sizeof rack->station, "station");
	if (opt_str(d, root, "station", "", rack->station, sizeof rack->station) ||
	    opt_str(d, root, "control", "", rack->control, sizeof rack->control))
		return -1;
	if ((v = ydoc_get(d, root, "reference"))) {
		if (ydoc_map(d, v, "reference", ref_keys))
			return -1;
		if (!ydoc_get(d, v, "lat") || !ydoc_get(d, v, "lon"))
			return ydoc_fail(d, v, "reference", "needs 'lat' and 'lon'");
		if (opt_double(d, v, "lat", "reference", &rack->ref_lat) ||
		    opt_double(d, v, "lon", "reference", &rack->ref_lon) ||
		    opt_double(d, v, "alt", "reference", &rack->ref_alt))
			return -1;
		if (rack->ref_lat < -90 || rack->ref_lat > 90 || rack->ref_lon < -180 || rack->ref_lon > 180)
			return ydoc_fail(d, v, "reference", "lat/lon outside -90..90 / -180..180");
		rack->has_reference = true;
	}
	if ((v = ydoc_get(d, root, "uplink"))) {
		if (ydoc_map(d, v, "uplink", uplink_keys))
			return -1;
		if (!ydoc_get(d, v, "port"))
			return ydoc_fail(d, v, "uplink", "needs 'port': the rig's ingest port the units are set to send to");
		snprintf(rack->uplink_host, sizeof rack->uplink_host, "127.0.0.1");
		if (opt_long(d, v, "port", "uplink", 1, 65535, &rack->uplink_port) ||
		    opt_str(d, v, "host", "uplink", rack->uplink_host, sizeof rack->uplink_host))
			return -1;
	}
	if ((v = ydoc_get(d, root, "boards"))) {
		int n = ydoc_seq(d, v, "boards");
		if (n < 0)
			return -1;
		if (n > RACK_MAX_BOARDS)
			return ydoc_fail(d, v, "boards", "more than %d boards", RACK_MAX_BOARDS);
		for (int i = 0; i < n; i++) {
			yaml_node_t *b = ydoc_item(d, v, i);
			struct rack_board *rb = &rack->boards[rack->n_boards++];
			char bb[32];
			snprintf(bb, sizeof bb, "boards[%d]", i);
			rb->bus.unit = 1;
			if (ydoc_map(d, b, bb, board_keys))
				return -1;
			if (!ydoc_get(d, b, "name") || !ydoc_get(d, b, "driver") || !ydoc_get(d, b, "transport"))
				return ydoc_fail(d, b, bb, "a board needs 'name', 'driver' and 'transport'");
			if (opt_str(d, b, "name", bb, rb->name, sizeof rb->name) ||
			    opt_str(d, b, "driver", bb, rb->driver, sizeof rb->driver) ||
			    opt_str(d, b, "transport", bb, rb->bus.transport, sizeof rb->bus.transport))
				return -1;
			const struct relay_driver *drv = relay_driver_find(rb->driver);
			char known[200];
			if (!drv)
				return ydoc_fail(d, ydoc_get(d, b, "driver"), P("%s.driver", bb),
						 "unknown relay board driver '%s' (known: %s)", rb->driver,
						 relay_driver_names(known, sizeof known));
			if (check_transport(d, ydoc_get(d, b, "transport"), P("%s.transport", bb), drv->check_transport,
					    rb->bus.transport) ||
			    opt_long(d, b, "unit", bb, 1, 247, &rb->bus.unit))
				return -1;
			for (int j = 0; j < i; j++)
				if (strcmp(rack->boards[j].name, rb->name) == 0)
					return ydoc_fail(d, b, bb, "board name '%s' used twice", rb->name);
		}
	}
	v = ydoc_get(d, root, "slots");
	if (!v)
		return ydoc_fail(d, root, "", "missing 'slots'");
	int n = ydoc_seq(d, v, "slots");
	if (n < 0)
		return -1;
	if (n == 0)
		return ydoc_fail(d, v, "slots", "the rack has no slots");
	if (n > RACK_MAX_SLOTS)
		return ydoc_fail(d, v, "slots", "%d slots: at most %d", n, RACK_MAX_SLOTS);
	rack->slots = calloc((size_t)n, sizeof *rack->slots);
	if (!rack->slots)
		return ydoc_fail(d, v, "slots", "out of memory");
	for (int i = 0; i < n; i++) {
		yaml_node_t *sn = ydoc_item(d, v, i);
		if (read_slot(d, sn, i, rack, &rack->slots[i]))
			return -1;
		rack->n_slots++;
		for (int j = 0; j < i; j++)
			if (rack->slots[j].id == rack->slots[i].id)
				return ydoc_fail(d, ydoc_get(d, sn, "id"), P("slots[%d].id", i),
						 "slot %d is also defined on line %d", rack->slots[i].id,
						 rack->slots[j].line_no);
	}
	return 0;
}

int rack_load(const char *path, struct rack *rack, char *err, size_t errlen)
{
	memset(rack, 0, sizeof *rack);
	snprintf(rack->file, sizeof rack->file, "%s", path);
	struct ydoc d;
	int rc = ydoc_load(&d, path, err, errlen);
	if (rc == 0)
		rc = read_rack(&d, rack);
	ydoc_free(&d);
	if (rc)
		rack_free(rack); /* what a half-read rack allocated */
	return rc;
}

void rack_free(struct rack *rack)
{
	free(rack->slots);
	rack->slots = NULL;
	rack->n_slots = 0;
}

const struct rack_slot *rack_slot(const struct rack *rack, int id)
{
	for (int i = 0; i < rack->n_slots; i++)
		if (rack->slots[i].id == id)
			return &rack->slots[i];
	return NULL;
}

const char *rack_tag(const struct rack_slot *slot, const char *key)
{
	for (int i = 0; i < slot->n_tags; i++)
		if (strcmp(slot->tags[i].key, key) == 0)
			return slot->tags[i].value;
	return NULL;
}

static int index_of(const struct rack *rack, long id)
{
	for (int i = 0; i < rack->n_slots; i++)
		if (rack->slots[i].id == id)
			return i;
	return -1;
}

int rack_select(const struct rack *rack, const char *spec, bool *sel, char *err, size_t errlen)
{
	memset(sel, 0, (size_t)rack->n_slots * sizeof *sel);
	if (strcmp(spec, "all") == 0) {
		for (int i = 0; i < rack->n_slots; i++)
			sel[i] = true;
		return rack->n_slots;
	}
	int count = 0;
	const char *p = spec;
	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b;
		if (end == p)
			goto bad;
		b = a;
		if (*end == '-') {
			const char *q = end + 1;
			b = strtol(q, &end, 10);
			if (end == q || b < a)
				goto bad;
		}
		if (*end && *end != ',')
			goto bad;
		for (long id = a; id <= b; id++) {
			int i = index_of(rack, id);
			if (i < 0) {
				snprintf(err, errlen, "slot %ld is not in %s", id, rack->file);
				return -1;
			}
			count += !sel[i];
			sel[i] = true;
		}
		p = *end ? end + 1 : end;
	}
	if (count == 0)
		goto bad;
	return count;
bad:
	snprintf(err, errlen, "bad slot list '%s': expected e.g. 3, 1-4,7 or all", spec);
	return -1;
}
