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

struct tracker_status {
	/* getstatus: the modem */
	int data_link;          /* 1 data session up */
	int gprs;               /* 1 attached to packet data */
	int signal;             /* 0..5 bars */
	int roaming;
	int net_type;           /* 0 2G, 1 3G, 2 4G ... as the vendor codes it */
	char operator_code[16]; /* MCC+MNC */
	int fw_update;          /* vendor's FwUpd code, -1 none */
	/* getinfo: the unit */
	long uptime_s;
	int reset_code;         /* vendor's numeric reset cause */
	char reset_reason[24];  /* "power_on", "watchdog", ... ("" if not told) */
	int boots;              /* -1 if not told */
	char pdp[16];           /* data session as the carrier left it: "rejected", "" if not told */
	char bank[4];           /* firmware bank running ("A", "B"), "" if not told */
	char fota_state[24];    /* update state, "" if not told */
	char power_source[16];  /* "PwrVoltage" external, "BatVoltage" battery */
	int gnss_on;
	int satellites;
	int records;            /* records waiting in the buffer */
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
};

/* Every known command set; NULL-terminated. */
extern const struct tracker_proto *const tracker_protos[];

/* The command set named NAME ("teltonika"), or NULL. */
const struct tracker_proto *tracker_proto_find(const char *name);

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
