/* slotdev.c - a slot's devices, opened the one way (see slotdev.h). */
#include "slotdev.h"

#include <stdio.h>
#include <string.h>

const struct tracker_proto *slotdev_proto(const struct rack_slot *s)
{
	return tracker_proto_find(*s->protocol ? s->protocol : "teltonika");
}

/* "teltonika, agent": the command sets there are, for messages. */
static void known_protos(char *buf, size_t len)
{
	size_t n = 0;
	*buf = '\0';
	for (size_t i = 0; tracker_protos[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", tracker_protos[i]->name);
}

/* The slot's commands over codec 12 through the ingest (slotdev.h). */
static int uplink_console(const struct rack_slot *s, const struct tracker_proto *proto, ingest *ing, tracker **out,
			  char *err, size_t len)
{
	if (!ing) {
		snprintf(err, len, "slot %d has no console: its commands go over the uplink, and this command runs no ingest",
			 s->id);
		return TRACKER_ERR_ARG;
	}
	const struct tracker_link_ops *ops;
	void *ctx;
	if (ingest_tracker_link(ing, s->expect.imei, &ops, &ctx)) {
		snprintf(err, len, "slot %d: IMEI %s: no command link through the ingest (not allowed, or one is open)",
			 s->id, s->expect.imei);
		return TRACKER_ERR_ARG;
	}
	int rc = tracker_open(proto, ops, ctx, out);
	if (rc != TRACKER_OK) {
		snprintf(err, len, "slot %d: IMEI %s: %s", s->id, s->expect.imei, tracker_strerror(rc));
		*out = NULL;
	}
	return rc;
}

int slotdev_console(const struct rack_slot *s, ingest *ing, const struct tracker_clock *clock, tracker **out,
		    char *err, size_t len)
{
	*out = NULL;
	const struct tracker_proto *proto = slotdev_proto(s);
	if (!proto) {
		char known[128];
		known_protos(known, sizeof known);
		snprintf(err, len, "unknown tracker protocol '%s' (known: %s)", s->protocol, known);
		return TRACKER_ERR_ARG;
	}
	int rc = *s->console.path
			 ? tracker_open_console(s->console.path, s->console.baud, SERIAL_BACKEND_AUTO, proto, out, err, len)
			 : uplink_console(s, proto, ing, out, err, len);
	if (rc != TRACKER_OK) {
		*out = NULL;
		return rc;
	}
	if (clock)
		tracker_set_clock(*out, clock);
	return TRACKER_OK;
}

int slotdev_supply(const struct rack_slot *s, int timeout_ms, struct power_dev **out, char *err, size_t len)
{
	*out = NULL;
	if (s->power.kind != RACK_POWER_SUPPLY) {
		snprintf(err, len, "slot %d has no supply in the rack file", s->id);
		return POWER_ERR_ARG;
	}
	const struct power_driver *drv = power_driver_find(s->power.driver);
	if (!drv) {
		/* rack_load() refuses unknown drivers; kept so a family missing
		 * from the driver table is an error, not a crash. */
		snprintf(err, len, "unknown supply driver '%s'", s->power.driver);
		return POWER_ERR_ARG;
	}
	int rc = drv->open(s->power.bus.transport, s->power.bus.unit, timeout_ms, out, err, len);
	if (rc != POWER_OK)
		*out = NULL;
	return rc;
}

int slotdev_board_index(const struct rack *rack, const char *name)
{
	for (int b = 0; b < rack->n_boards; b++)
		if (strcmp(rack->boards[b].name, name) == 0)
			return b;
	return -1;
}

int slotdev_board(const struct rack *rack, int b, int timeout_ms, struct relay_dev **out, char *err, size_t len)
{
	*out = NULL;
	const struct rack_board *rb = &rack->boards[b];
	const struct relay_driver *drv = relay_driver_find(rb->driver);
	if (!drv) {
		snprintf(err, len, "board %s: unknown relay board driver '%s'", rb->name, rb->driver);
		return RELAY_ERR_ARG;
	}
	char why[400];
	int rc = drv->open(rb->bus.transport, rb->bus.unit, timeout_ms, out, why, sizeof why);
	if (rc != RELAY_OK) {
		*out = NULL;
		snprintf(err, len, "board %s: %s", rb->name, why);
	}
	return rc;
}
