/*
 * relay.h - relay boards and modules that switch tracker power, ignition
 * and inputs.
 *
 * Cheap Modbus boards come in two families with different maps (coils vs
 * holding registers, relay_boards.c); serial modules speak ASCII
 * (relay_numato.c). Each family is one const struct relay_driver, gathered
 * in relay_drivers[] (relay_boards.c) and picked by name from the rack
 * file. Channels are numbered from 0 as the rig counts them; the
 * driver maps them onto the board's coil or register.
 *
 * Calls return RELAY_OK (0) or a negative enum relay_err and leave a message
 * in relay_error() naming transport, unit, coil, register or command, and
 * reason.
 */
#ifndef TRACKRIG_RELAY_H
#define TRACKRIG_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#define RELAY_CHANNEL_MAX 255 /* highest channel any family accepts */

enum relay_err {
	RELAY_OK = 0,
	RELAY_ERR_ARG = -1,       /* bad transport, unit or channel */
	RELAY_ERR_CONNECT = -2,   /* cannot connect to the board */
	RELAY_ERR_TIMEOUT = -3,   /* no answer (absent board, wrong unit id) */
	RELAY_ERR_EXCEPTION = -4, /* the board refused with a Modbus exception */
	RELAY_ERR_GONE = -5,      /* connection lost and not regained */
	RELAY_ERR_IO = -6,        /* malformed answer, unexpected read-back value */
};

/* Short text for an error code. */
const char *relay_strerror(int err);

/* One open board. ERROR holds the last failure. */
struct relay_dev {
	const struct relay_driver *driver;
	void *priv;
	char error[512];
};

struct relay_driver {
	const char *name; /* "coil", "register", "numato" */
	/* Checks the shape of TRANSPORT for this family without opening
	 * anything (power.h has the same hook). Returns 0, or -1 with what was
	 * expected in ERR. NULL: open() judges. */
	int (*check_transport)(const char *transport, char *err, size_t errlen);
	/* Connects to UNIT on TRANSPORT (see modbus_link.h; serial modules
	 * ignore UNIT). TIMEOUT_MS <= 0 means the default (500 ms). Modbus
	 * boards send nothing (they have no id register to check); a serial
	 * module is asked its version. On failure *OUT is NULL, the reason in
	 * ERR. */
	int (*open)(const char *transport, int unit, int timeout_ms,
		    struct relay_dev **out, char *err, size_t errlen);
	/* Closes (ON) or opens channel CHANNEL (0..RELAY_CHANNEL_MAX). */
	int (*set)(struct relay_dev *d, int channel, bool on);
	/* Reads back whether CHANNEL is closed into *ON. */
	int (*get)(struct relay_dev *d, int channel, bool *on);
	void (*close)(struct relay_dev *d);
};

/* Every known board family; NULL-terminated. */
extern const struct relay_driver *const relay_drivers[];

/* The family named NAME ("coil", "register"), or NULL. */
const struct relay_driver *relay_driver_find(const char *name);

/* The known families' names, "coil, register, numato", into BUF. Returns BUF. */
const char *relay_driver_names(char *buf, size_t len);

/* D's last failure message, or "". */
const char *relay_error(const struct relay_dev *d);

#endif
