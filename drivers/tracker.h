/*
 * tracker.h - talking to a tracker: commands, answers, unsolicited events.
 *
 * Two tables keep the harness free of vendor and transport ifs:
 *  - struct tracker_link_ops carries bytes: the serial console today, the
 *    codec 12 channel of the ingest link later. The protocol code never
 *    knows which one it runs over.
 *  - struct tracker_proto is one vendor's command set: how to recognise the
 *    answer to a command, how to read identity and status out of answers.
 *    A new vendor is one new file and one line in tracker_protos[].
 *
 * Every call that talks to the device takes a deadline and never blocks past
 * it. Failures return a negative enum tracker_err and leave a message naming
 * the port and the command in tracker_error(): "/dev/pts/4: getver: no answer
 * within 1000 ms".
 */
#ifndef TRACKRIG_TRACKER_H
#define TRACKRIG_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "serial.h"

#define TRACKER_LINE_MAX 512   /* a longer console line is a fault */

enum tracker_err {
	TRACKER_OK = 0,
	TRACKER_ERR_TIMEOUT = -1,  /* silence: no answer within the deadline */
	TRACKER_ERR_PARTIAL = -2,  /* an answer began but its line never ended */
	TRACKER_ERR_GONE = -3,     /* the device vanished (hang-up, unplug, EIO) */
	TRACKER_ERR_GARBAGE = -4,  /* bytes that are not console text (NUL, binary) */
	TRACKER_ERR_OVERLONG = -5, /* a line longer than TRACKER_LINE_MAX */
	TRACKER_ERR_PARSE = -6,    /* the answer does not read as this command's answer */
	TRACKER_ERR_REFUSED = -7,  /* the device answered with an error */
	TRACKER_ERR_IO = -8,       /* any other I/O failure */
	TRACKER_ERR_ARG = -9,      /* bad argument */
};

/* Short name of an error: "timeout", "device gone", ... */
const char *tracker_strerror(int err);

/* ---- links: how bytes reach the device ---- */
struct tracker_link_ops {
	const char *name; /* "console", "codec12" */
	/* Sends N bytes within TIMEOUT_MS. Returns 0 or a tracker_err. */
	int (*send)(void *ctx, const void *buf, size_t n, int timeout_ms);
	/* Reads up to N bytes, waiting at most TIMEOUT_MS for the first one.
	 * Returns bytes read (> 0) or a tracker_err. */
	ssize_t (*recv)(void *ctx, void *buf, size_t n, int timeout_ms);
	/* Where the device is, for messages: a port path or "IMEI@host:port". */
	const char *(*where)(void *ctx);
	/* The link in full, for logs: "PATH (termios, 115200 8N1)". May be NULL. */
	const char *(*describe)(void *ctx);
	/* Detail of the link's last failure (OS reason), or "". */
	const char *(*detail)(void *ctx);
	/* Releases the link (closes the port). May be NULL. */
	void (*close)(void *ctx);
	/* File descriptor that polls readable when bytes wait, for a
	 * tracker_clock's waits. May be NULL (then the clock is not used). */
	int (*fd)(void *ctx);
};

/* Where a tracker's waits and deadlines go. By default the wall clock; a
 * harness on a simulated rack's virtual time passes its own, so a device's
 * late answer is late in rack time, not wall time. */
struct tracker_clock {
	int64_t (*now_ms)(void *ctx);
	/* Waits until FD is readable (1) or the clock reaches DEADLINE_MS (0);
	 * negative when the wait was aborted (the harness is stopping). */
	int (*wait_readable)(void *ctx, int fd, int64_t deadline_ms);
	void *ctx;
};

/* ---- what a tracker tells about itself ---- */
struct tracker_identity {
	char imei[16];
	char iccid[21];
	char serial[33];
	char model[33];
	char hw_rev[17];
	char firmware[49];
	char gnss_firmware[49];
};

/* The modem and receiver as the unit reports them (the status hook).
 * Restarts, buffered records and update state have hooks of their own. */
struct tracker_status {
	int data_link;          /* 1 data session up */
	int gprs;               /* 1 attached to packet data */
	int signal;             /* 0..5 bars */
	int roaming;
	int net_type;           /* 0 2G, 1 3G, 2 4G ... as the vendor codes it */
	char operator_code[16]; /* MCC+MNC, "" not registered */
	int fw_update;          /* vendor's FwUpd code, -1 none */
	char power_source[16];  /* "PwrVoltage" external, "BatVoltage" battery, "" not told */
	int gnss_on;            /* 1 the receiver has a fix */
	int satellites;
	int ttff_s;             /* the unit's own time to first fix, -1 not told */
};

/* What the unit says of its restarts (the restarts hook). */
struct tracker_restarts {
	long count;             /* restart counter since manufacture or reset of stats; -1 not told */
	long uptime_s;          /* seconds since the last restart; -1 not told */
	int reset_code;         /* the vendor's reset-source number; -1 not told */
	char reset_reason[24];  /* "power_on", "watchdog", "software", "low_power", "pin"; "" not told */
};

/* Where the unit sends its records (server_get / server_set). */
struct tracker_server {
	char host[64];
	int port;
	int protocol;           /* 0 TCP, 1 UDP */
};

/* The data session as the unit reports it (the data_session hook). */
enum tracker_data_session {
	TRACKER_DATA_DOWN = 0,    /* no data session, no reason known (no coverage, not attached) */
	TRACKER_DATA_UP = 1,
	TRACKER_DATA_REFUSED = 2, /* registered and attached, the carrier refuses the session */
};

/* A firmware update as the unit reports it (the ota_state hook). */
struct tracker_ota {
	char state[24];   /* "idle", "downloading", "verifying", "trial", "committed",
			   * "rolled_back", "rejected", "failed", "deferred" */
	char bank[4];     /* bank running ("A", "B"), "" not told */
	char pending[8];  /* bank waiting for its trial boot, "" none */
	long free_kb;     /* storage free for an image, -1 not told */
	char detail[TRACKER_LINE_MAX + 1]; /* the unit's own words, for the record */
};

struct tracker_event {
	char kind[24];                 /* lower case: "boot", "ign", ... */
	char text[TRACKER_LINE_MAX + 1]; /* the whole line, for the record */
};

typedef struct tracker tracker;

/* ---- one vendor's command set ---- */
struct tracker_proto {
	const char *name;       /* "teltonika" */
	const char *line_end;   /* appended to each command: "\r\n" */
	/* Prefix that marks the answer to CMD (e.g. "Ver:" for getver). */
	const char *(*answer_prefix)(const char *cmd);
	/* True when an answer line means the device refused the command. */
	bool (*is_refusal)(const char *line);
	/* Fills ID from the device's answers (several commands). */
	int (*identify)(tracker *t, struct tracker_identity *id, int timeout_ms);
	/* Fills ST from the device's answers. */
	int (*status)(tracker *t, struct tracker_status *st, int timeout_ms);
	/* One short question that shows the unit is there and names it: its
	 * IMEI (checked) into IMEI, or TRACKER_ERR_PARSE for an answer that
	 * came damaged. NULL: the command set has none (tracker_ping then
	 * answers TRACKER_ERR_ARG). */
	int (*ping)(tracker *t, char *imei, size_t len, int timeout_ms);

	/* ---- capabilities: each NULL when the command set has none ----
	 * The rig asks for a capability only through these hooks, never by
	 * writing a command word: tracker_caps() names what a command set can
	 * do, a scenario's `requires:` lists what it needs, and a slot whose
	 * driver lacks one is SKIPPED with that reason, never failed. */

	/* Restart counter, uptime and reset source ("restarts"). */
	int (*restarts)(tracker *t, struct tracker_restarts *r, int timeout_ms);
	/* Records held in the unit's memory, not yet sent ("buffered"). */
	int (*buffered)(tracker *t, long *records, int timeout_ms);
	/* The server the unit sends records to ("server"): read, and set
	 * (a rig sets it to its own ingest and puts the old one back). */
	int (*server_get)(tracker *t, struct tracker_server *srv, int timeout_ms);
	int (*server_set)(tracker *t, const struct tracker_server *srv, int timeout_ms);
	/* How often the unit makes a record, parked and moving ("report_period"). */
	int (*report_period_set)(tracker *t, int seconds, int timeout_ms);
	/* Digital input N (1-based) and output N ("inputs", "outputs"). */
	int (*input_get)(tracker *t, int n, long *value, int timeout_ms);
	int (*output_set)(tracker *t, int n, bool on, int timeout_ms);
	/* True when the vehicle is in service (ignition on) ("in_service"). */
	int (*in_service)(tracker *t, bool *in_service, int timeout_ms);
	/* The data session as the unit sees it ("data_session"). */
	int (*data_session)(tracker *t, enum tracker_data_session *s, int timeout_ms);
	/* Restarts the unit ("reboot"). */
	int (*reboot)(tracker *t, int timeout_ms);
	/* Starts an update from URL ("ota"): TRACKER_OK accepted, 1 deferred by
	 * the unit (DETAIL says why), TRACKER_ERR_REFUSED refused. */
	int (*ota_start)(tracker *t, const char *url, char *detail, size_t len, int timeout_ms);
	/* Where an update stands ("ota"). */
	int (*ota_state)(tracker *t, struct tracker_ota *o, int timeout_ms);
	/* Reads an unsolicited line as an event ("events"): true and EV filled
	 * when LINE is one. NULL: the unit prints no events. */
	bool (*event_line)(const char *line, struct tracker_event *ev);
};

/* Capability names, as scenarios' `requires:` and reports spell them. */
#define TRACKER_CAPS_MAX 16
extern const char *const tracker_cap_names[]; /* NULL-terminated */

/* True when PROTO has capability CAP ("restarts", "ota", "events", ...);
 * false for a name that is not a capability. */
bool tracker_has(const struct tracker_proto *proto, const char *cap);
/* True when CAP names a capability at all (for checks at load). */
bool tracker_cap_known(const char *cap);

/* Every known command set; NULL-terminated. */
extern const struct tracker_proto *const tracker_protos[];

/* The command set named NAME ("teltonika"), or NULL. */
const struct tracker_proto *tracker_proto_find(const char *name);

/* Adds a command set of the program's own (a vendor's in-house build, a
 * test's fake), found by tracker_proto_find() after the built-in ones. Call
 * before any thread looks one up. Returns 0, or -1 when TRACKER_EXTRA_PROTOS
 * are registered already. */
#define TRACKER_EXTRA_PROTOS 4
int tracker_proto_register(const struct tracker_proto *proto);

/* Called after every command with its outcome, so the rig can keep an
 * audit trail without the driver knowing about it. ANSWER is NULL on error,
 * ERROR NULL on success. */
typedef void (*tracker_observer)(void *ctx, const char *where, const char *cmd,
				 const char *answer, const char *error);

/* Opens a tracker over LINK (its ops must outlive the tracker). Takes
 * ownership of the link: tracker_close() closes it. */
int tracker_open(const struct tracker_proto *proto, const struct tracker_link_ops *ops,
		 void *link_ctx, tracker **out);

/* Opens PATH as a serial console (BAUD 8N1, BACKEND) and a tracker on it.
 * On failure returns a tracker_err and writes the reason into ERR. */
int tracker_open_console(const char *path, int baud, enum serial_backend backend,
			 const struct tracker_proto *proto, tracker **out,
			 char *err, size_t errlen);

void tracker_close(tracker *t);

void tracker_set_observer(tracker *t, tracker_observer fn, void *ctx);

/* Makes every wait of T go through CLOCK (which must outlive T); NULL
 * returns to the wall clock. */
void tracker_set_clock(tracker *t, const struct tracker_clock *clock);

/* Sends CMD and waits for its answer line (recognised by the command set's
 * prefix). Event lines that arrive meanwhile are queued, stale or stray
 * lines skipped. Writes the answer (without line end) into ANSWER. */
int tracker_command(tracker *t, const char *cmd, char *answer, size_t len, int timeout_ms);

int tracker_identify(tracker *t, struct tracker_identity *id, int timeout_ms);
/* The proto's ping: the unit's IMEI from one short question (see struct tracker_proto). */
int tracker_ping(tracker *t, char *imei, size_t len, int timeout_ms);
int tracker_status(tracker *t, struct tracker_status *st, int timeout_ms);

/* The capability hooks, each TRACKER_ERR_ARG (with a message naming the
 * capability) when the command set has none. */
int tracker_restarts(tracker *t, struct tracker_restarts *r, int timeout_ms);
int tracker_buffered(tracker *t, long *records, int timeout_ms);
int tracker_server_get(tracker *t, struct tracker_server *srv, int timeout_ms);
int tracker_server_set(tracker *t, const struct tracker_server *srv, int timeout_ms);
int tracker_report_period_set(tracker *t, int seconds, int timeout_ms);
int tracker_input_get(tracker *t, int n, long *value, int timeout_ms);
int tracker_output_set(tracker *t, int n, bool on, int timeout_ms);
int tracker_in_service(tracker *t, bool *in_service, int timeout_ms);
int tracker_data_session(tracker *t, enum tracker_data_session *s, int timeout_ms);
int tracker_reboot(tracker *t, int timeout_ms);
int tracker_ota_start(tracker *t, const char *url, char *detail, size_t len, int timeout_ms);
int tracker_ota_state(tracker *t, struct tracker_ota *o, int timeout_ms);

/* Reads whatever arrives within TIMEOUT_MS, queueing event lines. Returns
 * the number of events queued so far, or a tracker_err (GONE ...). */
int tracker_poll(tracker *t, int timeout_ms);

/* Pops the oldest queued event into EV; false when none. */
bool tracker_next_event(tracker *t, struct tracker_event *ev);

/* Events dropped because the queue was full (oldest go first). */
unsigned tracker_events_dropped(const tracker *t);

const char *tracker_error(const tracker *t);
const char *tracker_where(const tracker *t);
const char *tracker_describe(const tracker *t);

/* The link's file descriptor to poll for input, or -1. */
int tracker_fd(const tracker *t);
const struct tracker_proto *tracker_get_proto(const tracker *t);

/* ---- answer parsing helpers for command sets ---- */

/* Finds "KEY:" in LINE at the start or after a space, skips spaces after the
 * colon, and copies the value up to the next space into OUT. False when the
 * key is missing or the value empty or does not fit. */
bool tracker_field(const char *line, const char *key, char *out, size_t len);

/* As tracker_field, then a whole decimal integer (optional SUFFIX such as "s"
 * allowed after the digits). */
bool tracker_field_long(const char *line, const char *key, const char *suffix, long *out);

/* Sets the tracker's error message (for command sets); returns ERR. */
int tracker_fail(tracker *t, int err, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
