/*
 * relay_boards.c - the two Modbus relay board families.
 *
 * "coil": Waveshare "Modbus RTU Relay" and generic 4/8-channel boards.
 *   FC05 write coil CHANNEL (0xFF00 on, 0x0000 off), FC01 read it back.
 * "register": Eletechsup style. FC06 write holding register CHANNEL+1 with
 *   0x0100 (open: relay off) or 0x0200 (close: relay on).
 *   Read-back assumption (not confirmed on hardware): FC03 on the same
 *   register returns 0x0001 when closed and 0x0000 when open, as the
 *   Eletechsup manuals show; a board (or simulator) that simply stores the
 *   last command returns 0x0200 / 0x0100, so both spellings are accepted and
 *   anything else is an error naming the value, never a guess.
 */
#include "relay.h"
#include "modbus_link.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_CMD_OPEN 0x0100
#define REG_CMD_CLOSE 0x0200

const char *relay_strerror(int err)
{
	switch (err) {
	case RELAY_OK: return "ok";
	case RELAY_ERR_ARG: return "bad argument";
	case RELAY_ERR_CONNECT: return "cannot connect";
	case RELAY_ERR_TIMEOUT: return "timeout";
	case RELAY_ERR_EXCEPTION: return "exception";
	case RELAY_ERR_GONE: return "connection lost";
	case RELAY_ERR_IO: return "I/O error";
	}
	return "unknown error";
}

const char *relay_error(const struct relay_dev *d) { return d->error; }

static int from_link(int rc)
{
	switch (rc) {
	case MODBUS_LINK_OK: return RELAY_OK;
	case MODBUS_LINK_ERR_ARG: return RELAY_ERR_ARG;
	case MODBUS_LINK_ERR_CONNECT: return RELAY_ERR_CONNECT;
	case MODBUS_LINK_ERR_TIMEOUT: return RELAY_ERR_TIMEOUT;
	case MODBUS_LINK_ERR_EXCEPTION: return RELAY_ERR_EXCEPTION;
	case MODBUS_LINK_ERR_GONE: return RELAY_ERR_GONE;
	}
	return RELAY_ERR_IO;
}

static modbus_link *link_of(struct relay_dev *d) { return d->priv; }

static int link_fail(struct relay_dev *d, int rc)
{
	snprintf(d->error, sizeof d->error, "%s", modbus_link_error(link_of(d)));
	return from_link(rc);
}

static bool channel_ok(struct relay_dev *d, int channel)
{
	if (channel >= 0 && channel <= RELAY_CHANNEL_MAX)
		return true;
	snprintf(d->error, sizeof d->error, "%s: %s board: bad channel %d (0..%d)",
		 modbus_link_where(link_of(d)), d->driver->name, channel, RELAY_CHANNEL_MAX);
	return false;
}

/* Both families open the same way; DRV says which table the device uses. */
static int board_open(const struct relay_driver *drv, const char *transport, int unit,
		      int timeout_ms, struct relay_dev **out, char *err, size_t errlen)
{
	*out = NULL;
	modbus_link *link;
	int rc = modbus_link_open(transport, unit, &link, err, errlen);
	if (rc != MODBUS_LINK_OK)
		return from_link(rc);
	if (timeout_ms > 0)
		modbus_link_set_timeout(link, timeout_ms);
	struct relay_dev *d = calloc(1, sizeof *d);
	if (!d) {
		modbus_link_close(link);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", transport);
		return RELAY_ERR_IO;
	}
	d->driver = drv;
	d->priv = link;
	*out = d;
	return RELAY_OK;
}

static void board_close(struct relay_dev *d)
{
	if (!d)
		return;
	modbus_link_close(link_of(d));
	free(d);
}

/* ---- coil boards ---- */

static const struct relay_driver coil_driver;

static int coil_open(const char *transport, int unit, int timeout_ms, struct relay_dev **out,
		     char *err, size_t errlen)
{
	return board_open(&coil_driver, transport, unit, timeout_ms, out, err, errlen);
}

static int coil_set(struct relay_dev *d, int channel, bool on)
{
	if (!channel_ok(d, channel))
		return RELAY_ERR_ARG;
	int rc = modbus_link_write_coil(link_of(d), channel, on);
	return rc == MODBUS_LINK_OK ? RELAY_OK : link_fail(d, rc);
}

static int coil_get(struct relay_dev *d, int channel, bool *on)
{
	if (!channel_ok(d, channel))
		return RELAY_ERR_ARG;
	int rc = modbus_link_read_coils(link_of(d), channel, 1, on);
	return rc == MODBUS_LINK_OK ? RELAY_OK : link_fail(d, rc);
}

static const struct relay_driver coil_driver = {
	.name = "coil",
	.check_transport = modbus_link_check_transport,
	.open = coil_open,
	.set = coil_set,
	.get = coil_get,
	.close = board_close,
};

/* ---- register boards ---- */

static const struct relay_driver register_driver;

static int reg_open(const char *transport, int unit, int timeout_ms, struct relay_dev **out,
		    char *err, size_t errlen)
{
	return board_open(&register_driver, transport, unit, timeout_ms, out, err, errlen);
}

static int reg_set(struct relay_dev *d, int channel, bool on)
{
	if (!channel_ok(d, channel))
		return RELAY_ERR_ARG;
	int rc = modbus_link_write_register(link_of(d), channel + 1, on ? REG_CMD_CLOSE : REG_CMD_OPEN);
	return rc == MODBUS_LINK_OK ? RELAY_OK : link_fail(d, rc);
}

static int reg_get(struct relay_dev *d, int channel, bool *on)
{
	if (!channel_ok(d, channel))
		return RELAY_ERR_ARG;
	uint16_t v;
	int rc = modbus_link_read_registers(link_of(d), channel + 1, 1, &v);
	if (rc != MODBUS_LINK_OK)
		return link_fail(d, rc);
	switch (v) {
	case 0x0001:
	case REG_CMD_CLOSE:
		*on = true;
		return RELAY_OK;
	case 0x0000:
	case REG_CMD_OPEN:
		*on = false;
		return RELAY_OK;
	}
	snprintf(d->error, sizeof d->error,
		 "%s: read holding register %d: value 0x%04X is neither open (0x0000/0x0100) "
		 "nor closed (0x0001/0x0200)", modbus_link_where(link_of(d)), channel + 1, v);
	return RELAY_ERR_IO;
}

static const struct relay_driver register_driver = {
	.name = "register",
	.check_transport = modbus_link_check_transport,
	.open = reg_open,
	.set = reg_set,
	.get = reg_get,
	.close = board_close,
};

extern const struct relay_driver relay_numato;

const struct relay_driver *const relay_drivers[] = {
	&coil_driver,
	&register_driver,
	&relay_numato,
	NULL,
};

const struct relay_driver *relay_driver_find(const char *name)
{
	for (size_t i = 0; name && relay_drivers[i]; i++)
		if (strcmp(relay_drivers[i]->name, name) == 0)
			return relay_drivers[i];
	return NULL;
}

const char *relay_driver_names(char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; relay_drivers[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", relay_drivers[i]->name);
	return buf;
}
