/*
 * diagnose.h - reason codes: what is wrong with a slot's tracker, and what a
 * person should do about it.
 *
 * Pure logic, no I/O: evidence.c gathers evidence over independent channels
 * (for rig diagnose, the scenario engine and rig accept) and diag_run()
 * turns it into findings. A finding names a reason code, how sure the rig is
 * (0..1), the numbers behind it, one action for ops and one for the
 * technician. Channels disagree in the field (a supply reads fine while the
 * console is dead), so every channel says whether it was read at all: no
 * rule treats "not read" as "bad", and diag_run never calls a unit healthy
 * while a channel the rack has was not read (insufficient_evidence names it).
 *
 * Each reason code is one entry of diag_rules[]: adding a code is adding one
 * entry (and its paragraph in docs/reason-codes.md), never an if elsewhere.
 */
#ifndef TRACKRIG_DIAGNOSE_H
#define TRACKRIG_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Times are milliseconds since the Unix epoch on the rig's clock; DIAG_NEVER
 * means the thing never happened (or the rig never learnt of it). */
#define DIAG_NEVER ((int64_t)-1)

#define DIAG_TEXT_MAX 320      /* a summary, a detail or an evidence line */
#define DIAG_WHERE_MAX 264     /* a port path or a Modbus transport */
#define DIAG_MAX_FINDINGS 8
#define DIAG_MAX_EVIDENCE 6
#define DIAG_LINE_MAX 1024     /* a finding's summary or evidence line: holds the texts above */

/* What the rig knows about one channel right now. */
enum diag_channel {
	DIAG_CH_UNKNOWN = 0,   /* the rack has the channel but the rig did not read it: never "fine" */
	DIAG_CH_UNREACHABLE,   /* the rig's own end failed (port missing or will not open, Modbus link down) */
	DIAG_CH_SILENT,        /* the rig's end works; the device gave no answer at all */
	DIAG_CH_ANSWERED,      /* a good answer, now */
	DIAG_CH_GARBLED,       /* the device answered, but with damaged or unreadable text */
	DIAG_CH_ABSENT,        /* the rack has no such channel for this slot: nothing to read */
};

enum diag_protection { DIAG_PROT_NONE, DIAG_PROT_OVP, DIAG_PROT_OCP };

/* The bench supply feeding the tracker. A supply that answers now gives a
 * live reading; one that does not may still have an older reading (from the
 * results store), which rules weigh less and ignore once the device has
 * answered since. */
struct diag_supply {
	enum diag_channel state;      /* ANSWERED, UNREACHABLE, ABSENT (no supply in the rack) or UNKNOWN */
	char where[DIAG_WHERE_MAX];   /* "tcp://127.0.0.1:5020 unit 1" */
	char detail[DIAG_TEXT_MAX];   /* why UNREACHABLE or ABSENT; "" otherwise */
	bool have_reading;            /* the fields below hold a reading taken at read_at_ms */
	bool output_on;
	double v_out, i_out, v_set;   /* V, A, V */
	enum diag_protection protection;
	int64_t read_at_ms;           /* when the reading was taken; DIAG_NEVER without one */
};

/* The tracker's serial console. */
struct diag_console {
	enum diag_channel state;      /* ANSWERED, GARBLED, SILENT, UNREACHABLE (port missing), ABSENT */
	char where[DIAG_WHERE_MAX];   /* the port */
	char detail[DIAG_TEXT_MAX];   /* why not ANSWERED: "PORT: CMD: no answer within 1000 ms" (the driver's words) */
	int64_t last_seen_ms;         /* the last good answer (now when ANSWERED); DIAG_NEVER */
	int asked, good, garbled;     /* pings (the driver's identity question), intact answers, damaged answers */
};

/* The cellular side, from two places: the modem's own account over the
 * console (state), and what the backend received, from the results store
 * (records). Times are on the rack's clock. */
struct diag_uplink {
	enum diag_channel state;      /* ANSWERED: the modem's state was read (through the driver) */
	bool registered;              /* attached to the network (an operator, signal above 0) */
	bool data_link;               /* a data session is up */
	bool pdp_rejected;            /* the carrier refused the data session */
	int signal;                   /* 0..5 */
	char operator_code[16];
	/* the backend: records of this IMEI in the results store */
	enum diag_channel records;    /* ANSWERED: the store was read; ABSENT: no IMEI or no store */
	char records_detail[DIAG_TEXT_MAX]; /* why not ANSWERED */
	int n_records;                /* records of this IMEI in the store */
	int64_t last_record_ms;       /* arrival of the newest record; DIAG_NEVER */
	int64_t last_record_ts_ms;    /* the device's timestamp of the newest record; DIAG_NEVER */
	int64_t last_login_ms;        /* the last time the link was up (usage row updated); DIAG_NEVER */
	int io_signal;                /* IO 21, GSM signal 0..5, of the newest record; -1 unknown */
	int io_ext_mv;                /* IO 66, external voltage (mV), newest record; -1 unknown */
	int io_ext_mv_before;         /* IO 66 a few records earlier: its trend before silence; -1 */
	int io_gnss;                  /* IO 69, GNSS status (0 off, 1 fix, 2 no fix, 3 sleep); -1 */
	int64_t bytes_used;           /* up + down over the link, from the store; -1 unknown */
	int64_t plan_bytes;           /* the SIM's data plan; 0 not known to the rig */
	int64_t silent_after_ms;      /* no record for this long counts as silent (0: 10 min) */
};

struct diag_gnss {
	enum diag_channel state;      /* ANSWERED: the receiver was read */
	char source[24];              /* "gpsd", "device" (its own fix report), "telemetry" (IO 69) */
	bool fix;
	int mode;                     /* 1 no fix, 2 2D, 3 3D */
	int satellites_used;
	double hdop;                  /* NAN when the source does not tell */
	int64_t last_fix_ms;
};

/* Boot history from the device's restart counter and reset source, two
 * readings apart (never from a boot the rig happened to see). */
struct diag_boot {
	enum diag_channel state;      /* ANSWERED: the counter was read now */
	int boots_then, boots_now;    /* the restart counter at the window's start and now */
	int64_t window_ms;            /* from the earlier reading (or the last reset) to now */
	char reset_reason[24];        /* the last reset's source: "watchdog", "crash", "power_on"; "" not told */
	long uptime_s;                /* since the last reset */
	int abnormal_resets;          /* watchdog or crash resets counted in the window */
};

struct diag_evidence {
	int64_t now_ms;               /* when it was gathered, on the rack's clock */
	struct diag_supply supply;
	struct diag_console console;
	struct diag_uplink uplink;
	struct diag_gnss gnss;
	struct diag_boot boot;
	/* When the rig last switched the unit on (DIAG_NEVER: unknown). A
	 * record from before it is no sign of life now: a unit that hangs at
	 * power-on still has the records it sent before the cut. */
	int64_t powered_on_ms;
};

/* Marks every channel of EV "not read" with no times: a gatherer's start. */
void diag_evidence_init(struct diag_evidence *ev, int64_t now_ms);

/* Thresholds that depend on the device, not on the rig. */
struct diag_params {
	double brownout_v;            /* under this at V-OUT the tracker cannot run; default 6.0 */
	double near_zero_a;           /* under this at I-OUT nothing is drawing; default 0.005 */
};

extern const struct diag_params diag_default_params;

/* One reason code. ASSESS returns the confidence (0 < c <= 1) and writes a
 * one-line summary with the numbers behind it, or returns 0 when the code
 * does not hold for EV. */
struct diag_rule {
	const char *code;              /* stable, machine-read: "power_loss_suspected" */
	const char *title;             /* for people: "power loss suspected" */
	const char *action_ops;        /* what ops does, from a desk */
	const char *action_technician; /* what the technician does, at the vehicle or bench */
	bool inconclusive;             /* the rig could not tell: evidence missing, not a device fault */
	bool exclusive;                /* a cause of silence: at most one such code per unit (the first in
					* table order wins), so one cause never gets two contradicting codes */
	double (*assess)(const struct diag_evidence *ev, const struct diag_params *p,
			 char *summary, size_t len);
};

/* Every reason code, in the order findings are listed. */
extern const struct diag_rule diag_rules[];
extern const size_t diag_rule_count;

/* The rule for CODE, or NULL. */
const struct diag_rule *diag_rule_find(const char *code);

struct diag_finding {
	const struct diag_rule *rule;
	double confidence;
	char summary[DIAG_LINE_MAX];
	char evidence[DIAG_MAX_EVIDENCE][DIAG_LINE_MAX]; /* one line per channel */
	int n_evidence;
};

struct diag_report {
	struct diag_finding findings[DIAG_MAX_FINDINGS];
	int n_findings;                /* 0: healthy */
	bool inconclusive;             /* some finding says the rig could not tell */
	char verdict[DIAG_LINE_MAX];   /* "healthy: ..." or "no fault seen on: console, supply; not read: uplink records" */
	char console_last_seen[32];    /* ISO 8601 UTC, or "never" */
	char supply_last_read[32];
};

struct power_status;

/* Fills S's reading from a supply's status ST taken at AT_MS, and marks the
 * channel ANSWERED: one translation for every caller that reads supplies. */
void diag_supply_reading(struct diag_supply *s, const struct power_status *st, int64_t at_ms);

/* Runs every rule over EV (P NULL: diag_default_params) into OUT. Returns
 * the number of findings; 0 means healthy. */
int diag_run(const struct diag_evidence *ev, const struct diag_params *p, struct diag_report *out);

/* MS as "2026-11-26T08:35:05.123Z" (the results store's format), or "never"
 * for DIAG_NEVER. Returns BUF (>= 25 bytes). */
const char *diag_format_time(int64_t ms, char *buf, size_t len);

/* Reverse of diag_format_time for the store's timestamps; DIAG_NEVER when S
 * is NULL or does not read as one. */
int64_t diag_parse_time(const char *s);

#endif
