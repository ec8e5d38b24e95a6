/*
 * diagnose.h - reason codes: why a slot's tracker is not answering, and what
 * a person should do about it.
 *
 * Pure logic, no I/O: the caller (cmd_diagnose.c, later the scenario engine
 * and the fleet ingest) gathers evidence over independent channels and
 * diag_run() turns it into findings. A finding names a reason code, how sure
 * the rig is (0..1), the numbers behind it, one action for ops and one for
 * the technician. Channels disagree in the field (a supply reads fine while
 * the console is dead), so every channel says whether it was gathered at all,
 * and no rule treats "not gathered" as "bad".
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
	DIAG_CH_UNKNOWN = 0,   /* not gathered: the slot has no such channel, or the rig cannot read it yet */
	DIAG_CH_UNREACHABLE,   /* the rig's own end failed (port will not open, Modbus link down) */
	DIAG_CH_SILENT,        /* the rig's end works; the device gave no good answer */
	DIAG_CH_ANSWERED,      /* a good answer, now */
};

enum diag_protection { DIAG_PROT_NONE, DIAG_PROT_OVP, DIAG_PROT_OCP };

/* The bench supply feeding the tracker. A supply that answers now gives a
 * live reading; one that does not may still have an older reading (from the
 * results store), which rules weigh less and ignore once the device has
 * answered since. */
struct diag_supply {
	enum diag_channel state;      /* ANSWERED, UNREACHABLE or UNKNOWN (no supply in the rack) */
	char where[DIAG_WHERE_MAX];   /* "tcp://127.0.0.1:5020 unit 1" */
	char detail[DIAG_TEXT_MAX];   /* why UNREACHABLE or UNKNOWN; "" otherwise */
	bool have_reading;            /* the fields below hold a reading taken at read_at_ms */
	bool output_on;
	double v_out, i_out, v_set;   /* V, A, V */
	enum diag_protection protection;
	int64_t read_at_ms;           /* when the reading was taken; DIAG_NEVER without one */
};

/* The tracker's serial console. */
struct diag_console {
	enum diag_channel state;
	char where[DIAG_WHERE_MAX];   /* the port */
	char detail[DIAG_TEXT_MAX];   /* why SILENT or UNREACHABLE: "PORT: getver: no answer within 1000 ms" */
	int64_t last_seen_ms;         /* the last good answer (now when ANSWERED); DIAG_NEVER */
};

/* Room for the channels later issues gather; today always DIAG_CH_UNKNOWN
 * and read by no rule. */
struct diag_uplink {
	enum diag_channel state;      /* ANSWERED: the modem's state was read (getstatus/getinfo) */
	bool registered;              /* attached to the network (an operator, signal above 0) */
	bool data_link;               /* a data session is up */
	bool pdp_rejected;            /* the carrier refused the data session */
	int signal;                   /* 0..5 */
	char operator_code[16];
	int64_t last_record_ms;       /* last telemetry record the backend received; DIAG_NEVER */
	int64_t silent_after_ms;      /* no record for this long counts as silent (0: 10 min) */
};

struct diag_gnss {
	enum diag_channel state;      /* ANSWERED: the receiver was read (through gpsd) */
	bool fix;
	int mode;                     /* 1 no fix, 2 2D, 3 3D */
	int satellites_used;
	double hdop;
	int64_t last_fix_ms;
};

struct diag_evidence {
	int64_t now_ms;               /* when it was gathered */
	int crash_boots;              /* boots with reset reason watchdog or crash in the last 10 min */
	struct diag_supply supply;
	struct diag_console console;
	struct diag_uplink uplink;
	struct diag_gnss gnss;
};

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
