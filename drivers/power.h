/*
 * power.h - programmable bench supplies that feed the trackers.
 *
 * One const struct power_driver per device family (power_rd60xx.c for the
 * Riden RD60xx over Modbus, power_korad.c for Korad KA3005P-class supplies
 * over a serial line), gathered in power_drivers[]: the rig picks a family by
 * name from its rack file and never tests a model anywhere else. Scaling
 * between volts/amps and raw registers is the driver's business.
 *
 * Calls return POWER_OK (0) or a negative enum power_err and leave a message
 * in power_error() naming the transport, unit, register (or command) and
 * reason: "tcp://10.0.0.5:502 unit 1: write register 8 = 0x04B0: exception
 * 02 illegal data address", "serial:/dev/ttyUSB3@9600: VOUT1?: no answer
 * within 500 ms".
 */
#ifndef TRACKRIG_POWER_H
#define TRACKRIG_POWER_H

#include <stdbool.h>
#include <stddef.h>

enum power_err {
	POWER_OK = 0,
	POWER_ERR_ARG = -1,       /* bad transport, unit, or value out of range */
	POWER_ERR_CONNECT = -2,   /* cannot connect to the supply */
	POWER_ERR_TIMEOUT = -3,   /* no answer (absent supply, wrong unit id) */
	POWER_ERR_EXCEPTION = -4, /* the supply refused with a Modbus exception */
	POWER_ERR_GONE = -5,      /* connection lost and not regained */
	POWER_ERR_IO = -6,        /* malformed answer, other I/O failure */
	POWER_ERR_MODEL = -7,     /* the device is not a model this driver knows */
};

/* Short text for an error code ("timeout", "unknown model", ...). */
const char *power_strerror(int err);

enum power_mode { POWER_MODE_CV, POWER_MODE_CC };
enum power_protection { POWER_PROT_NONE, POWER_PROT_OVP, POWER_PROT_OCP };

struct power_status {
	double v_out, i_out;   /* measured at the output, V and A */
	double v_set, i_set;   /* set points, V and A */
	double v_in;           /* supply input, V */
	bool output_on;
	enum power_mode mode;
	enum power_protection protection; /* tripped protection, if any */
	unsigned model_id;     /* as the device reports it, e.g. 60062 */
};

/* The set points a supply is told to hold. Resolution: the smallest step
 * its registers can hold, so a caller can compare a read-back value with
 * what it asked for (12.004 V is written as 12.00 V on a V/100 model). */
struct power_limits {
	double volts, amps;    /* V-SET, I-SET */
	double ovp, ocp;       /* protection limits, V and A; NAN: not given /
	                          the model has none */
	double v_res, i_res;   /* register resolution, V and A (read side only) */
};

/* One open supply. The driver owns PRIV; ERROR holds the last failure. */
struct power_dev {
	const struct power_driver *driver;
	void *priv;
	char error[512];
};

struct power_driver {
	const char *name; /* "rd60xx", "korad" */
	/* Checks the shape of TRANSPORT for this family without opening
	 * anything, so a rack file's typo is refused when it is read. Returns
	 * 0, or -1 with what was expected in ERR ("'tcp://h': expected
	 * tcp://HOST:PORT"). NULL: any string is taken and open() judges. */
	int (*check_transport)(const char *transport, char *err, size_t errlen);
	/* Connects to UNIT on TRANSPORT (see modbus_link.h; serial families
	 * ignore UNIT), identifies the model and picks its scaling. TIMEOUT_MS <= 0 means the default
	 * (500 ms). On failure *OUT is NULL and the reason is in ERR. */
	int (*open)(const char *transport, int unit, int timeout_ms,
		    struct power_dev **out, char *err, size_t errlen);
	int (*set_voltage)(struct power_dev *d, double volts);
	int (*set_current)(struct power_dev *d, double amps);
	int (*output)(struct power_dev *d, bool on);
	int (*status)(struct power_dev *d, struct power_status *st);
	/* Writes WANT's V-SET and I-SET, and its OVP and OCP where they are
	 * not NAN (POWER_ERR_ARG when the model has no such limit). Nothing is
	 * read back here: the caller does that with get_limits. NULL when the
	 * family cannot set its limits over the wire. */
	int (*set_limits)(struct power_dev *d, const struct power_limits *want);
	/* Reads the set points and protection limits (NAN for a limit the
	 * model lacks) and the resolution. NULL when the family cannot. */
	int (*get_limits)(struct power_dev *d, struct power_limits *got);
	void (*close)(struct power_dev *d);
};

/* Every known family; NULL-terminated. */
extern const struct power_driver *const power_drivers[];

/* The family named NAME ("rd60xx"), or NULL. */
const struct power_driver *power_driver_find(const char *name);

/* The known families' names, "rd60xx, korad", into BUF: for an error that
 * says what would have been accepted. Returns BUF. */
const char *power_driver_names(char *buf, size_t len);

/* D's last failure message, or "". */
const char *power_error(const struct power_dev *d);

#endif
