/*
 * rack.h - the rack file: what a test station holds and how to reach it.
 *
 * YAML, read with libyaml (never by hand). Every error names
 * file:line:column and the key path ("slots[2].console.baud"); unknown keys
 * are errors, because a misspelt key silently ignored is a slot tested with
 * the wrong settings. docs/rack-file.md describes every key.
 */
#ifndef TRACKRIG_RACK_H
#define TRACKRIG_RACK_H

#include <stdbool.h>
#include <stddef.h>

#define RACK_PATH_MAX 256
#define RACK_NAME_MAX 64
#define RACK_MAX_TAGS 8
#define RACK_MAX_LINES 8
#define RACK_MAX_BOARDS 16
#define RACK_MAX_SLOTS 1024

/* A serial port and its speed. */
struct rack_port {
	char path[RACK_PATH_MAX]; /* "" when absent */
	int baud;
};

/* A Modbus unit: "tcp://HOST:PORT" or "rtu:/dev/ttyUSB0@115200", and a unit id. */
struct rack_modbus {
	char transport[RACK_PATH_MAX];
	int unit;
};

enum rack_power_kind { RACK_POWER_NONE, RACK_POWER_SUPPLY, RACK_POWER_RELAY, RACK_POWER_USB };

struct rack_power {
	enum rack_power_kind kind;
	char driver[RACK_NAME_MAX];  /* supply driver: "rd60xx" */
	struct rack_modbus bus;
	double volts, amps;          /* set points written before each switch-on */
	double ovp, ocp;             /* protection limits; 0: not given */
	bool leave_limits;           /* `limits: leave`: the rig writes no set points */
	char relay[RACK_NAME_MAX];   /* RACK_POWER_RELAY: name of the slot's line */
	char usb[RACK_NAME_MAX];     /* RACK_POWER_USB: port path whose hub port feeds the slot */
	bool safe_on;                /* power state the rack is left in on abort */
};

/* A relay board, shared by slots. */
struct rack_board {
	char name[RACK_NAME_MAX];
	char driver[RACK_NAME_MAX];  /* "coil" or "register" */
	struct rack_modbus bus;
};

/* A named relay line of a slot: ignition, gnss_antenna, cell_antenna, ... */
struct rack_line {
	char name[RACK_NAME_MAX];
	char board[RACK_NAME_MAX];
	int channel;
};

struct rack_tag {
	char key[RACK_NAME_MAX];
	char value[RACK_NAME_MAX];
};

struct rack_slot {
	int id;
	struct rack_port console;
	struct rack_port nmea;
	char usb[RACK_NAME_MAX];       /* USB port path, "1-1.2" */
	char vendor[RACK_NAME_MAX];
	char model[RACK_NAME_MAX];
	char protocol[RACK_NAME_MAX];  /* tracker command set; default "teltonika" */
	struct {
		char imei[RACK_NAME_MAX], iccid[RACK_NAME_MAX], serial[RACK_NAME_MAX], vehicle[RACK_NAME_MAX];
	} expect;
	struct {
		bool given;
		int buffer_records;        /* offline buffer the datasheet promises */
		bool newest_first;         /* flush order the datasheet promises */
		int record_period_s;       /* default record period */
		int ttff_cold_s, ttff_warm_s; /* GNSS time to first fix; 0 when not declared */
	} declared;                        /* what the model's datasheet says */
	struct rack_power power;
	struct rack_line lines[RACK_MAX_LINES];
	int n_lines;
	struct rack_tag tags[RACK_MAX_TAGS];
	int n_tags;
	int line_no;                   /* where the slot starts in the file */
};

struct rack {
	char file[RACK_PATH_MAX];
	char station[RACK_NAME_MAX];
	char control[RACK_PATH_MAX];   /* simulated rack's control socket; "" on real racks */
	bool has_reference;
	/* Where the rig's ingest listens when the rack file fixes it (`uplink:`):
	 * the server its units are set to send to. 0: a free port, the rig
	 * points each unit at it over its console. */
	int uplink_port;
	char uplink_host[64];
	double ref_lat, ref_lon, ref_alt;
	struct rack_board boards[RACK_MAX_BOARDS];
	int n_boards;
	struct rack_slot *slots;
	int n_slots;
};

/* Reads and checks PATH. Returns 0, or -1 with "file:line:col: key: problem"
 * in ERR. The rack is freed with rack_free() either way. */
int rack_load(const char *path, struct rack *rack, char *err, size_t errlen);
void rack_free(struct rack *rack);

/* The slot with id ID, or NULL. */
const struct rack_slot *rack_slot(const struct rack *rack, int id);

/* Value of tag KEY on SLOT, or NULL. */
const char *rack_tag(const struct rack_slot *slot, const char *key);

/* Parses a slot list: "3", "1-4,7" or "all", against RACK. Sets SEL[i] for
 * each slot index i (0-based position in rack->slots) selected. Returns the
 * number selected, or -1 with the reason in ERR (unknown slot, bad range). */
int rack_select(const struct rack *rack, const char *spec, bool *sel, char *err, size_t errlen);

#endif
