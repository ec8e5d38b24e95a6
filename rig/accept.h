/*
 * accept.h - technician install acceptance (`rig accept`): one installed
 * device checked against its work order in minutes, and the result that
 * the text, JSON and HTML reports are written from.
 *
 * Self-contained on purpose (no driver headers): reports/accept_page.c
 * reads struct accept_result and lives behind the reports/ wall.
 *
 * Every string in here may come from a device, a work order or a person's
 * answer: each writer escapes it for its format (json_str, html_text).
 */
#ifndef TRACKRIG_ACCEPT_H
#define TRACKRIG_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ACCEPT_FIELD_MAX 128
#define ACCEPT_TEXT_MAX 640
#define ACCEPT_ACTION_MAX 640
#define ACCEPT_MAX_CHECKS 16
#define ACCEPT_MAX_SAMPLES 240
#define ACCEPT_MAX_REASONS 8

/* The work order: what the installed device should be. "" = not given. */
struct accept_work_order {
	char imei[ACCEPT_FIELD_MAX], iccid[ACCEPT_FIELD_MAX], serial[ACCEPT_FIELD_MAX];
	char vehicle[ACCEPT_FIELD_MAX], firmware[ACCEPT_FIELD_MAX];
	char source[ACCEPT_FIELD_MAX * 2]; /* "work order FILE", "rack file FILE slot N", "" */
};

/* Install context a person confirmed by looking. "" = not answered. */
struct accept_answers {
	char vehicle[ACCEPT_FIELD_MAX], mounting[ACCEPT_FIELD_MAX], antenna[ACCEPT_FIELD_MAX],
		install_time[ACCEPT_FIELD_MAX];
};

enum accept_status { ACCEPT_PASS = 0, ACCEPT_FAIL = 1, ACCEPT_SKIP = 2 };

/* One check: what was looked at, its outcome, and when it failed a reason
 * code with the action a person takes. */
struct accept_check {
	char name[32];                  /* "identity", "firmware", "supply", "gnss", "cellular", "install" */
	enum accept_status status;
	char detail[ACCEPT_TEXT_MAX];   /* the numbers or values behind it */
	char code[48];                  /* reason code when failed: "metadata_drift", "gnss_fix_stale" */
	char action[ACCEPT_ACTION_MAX]; /* the technician's action when failed */
	char action_ops[ACCEPT_ACTION_MAX];
};

/* One second of the GNSS watch (rack time since the watch began). */
struct accept_sample {
	double t_s;
	int satellites_used;
	double hdop;
	int mode;
};

struct accept_result {
	/* where */
	char slot[16];                  /* "" for a bare --port */
	char port[ACCEPT_FIELD_MAX * 2];
	char station[ACCEPT_FIELD_MAX];
	char operator_[ACCEPT_FIELD_MAX];
	char started[32], finished[32];
	int64_t run_id;
	/* the device as it told */
	bool identified;
	char imei[32], iccid[32], serial[48], model[48], vendor[ACCEPT_FIELD_MAX], firmware[64];
	struct accept_work_order wo;
	struct accept_answers ans;
	/* supply */
	bool have_supply;
	double supply_v, supply_a;
	/* cellular */
	bool have_status;
	bool registered, data_link;
	int signal;
	char operator_code[16];
	bool record_received;
	double record_after_s;          /* rack seconds from pointing to the first record */
	double record_limit_s;
	/* GNSS */
	bool gnss_measured;
	char gnss_error[ACCEPT_TEXT_MAX];
	int gnss_mode;
	int satellites_used, satellites_visible;
	double hdop, ttff_s, fix_age_s, position_error_m;
	char ttff_source[48];           /* "the unit's own TTFF", "measured", "" */
	char verdict[16];               /* dispatch verdict */
	char verdict_reasons[ACCEPT_MAX_REASONS][160];
	int n_verdict_reasons;
	struct accept_sample samples[ACCEPT_MAX_SAMPLES];
	int n_samples;
	/* the checks and the result */
	struct accept_check checks[ACCEPT_MAX_CHECKS];
	int n_checks;
	bool pass;
};

/* Reads a work order (YAML "key: value" or "key=value" lines; # comments;
 * keys imei, iccid, serial, vehicle, firmware). Returns 0, or -1 with
 * "FILE:LINE: problem" in ERR. */
int accept_read_work_order(const char *path, struct accept_work_order *wo, char *err, size_t errlen);

/* Reads answers ("key: value" lines: vehicle, mounting, antenna,
 * install_time). Returns 0, or -1 with the reason in ERR. */
int accept_read_answers(const char *path, struct accept_answers *a, char *err, size_t errlen);

/* Adds a check to R; returns it. */
struct accept_check *accept_add_check(struct accept_result *r, const char *name, enum accept_status st,
				      const char *code, const char *action_tech, const char *action_ops,
				      const char *fmt, ...) __attribute__((format(printf, 7, 8)));

const char *accept_status_name(enum accept_status s);

/* Plain text report (for a terminal or a printer). */
void accept_write_text(FILE *f, const struct accept_result *r);

/* JSON record of R into F. */
void accept_write_json(FILE *f, const struct accept_result *r);

/* Printable HTML page of R (reports/accept_page.c). Returns 0, or -1 with ERR. */
int report_html_accept(const struct accept_result *r, const char *path, char *err, size_t errlen);

#endif
