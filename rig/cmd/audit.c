/*
 * cmd/audit.c - `rig audit`: who sent what to which device, and what came
 * back, read from the audit trail in the results store (store.h).
 *
 * A store that does not exist yet means nothing has been sent to any device
 * through it: that is an empty trail, not a failure, so the command says so
 * on stderr and exits 0 (printing "[]" under --json, so scripts always get a
 * document). It does not create the file: a read-only command must not leave
 * a new store behind, least of all at a mistyped --db path.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "json.h"
#include "store.h"

const char cmd_audit_usage[] =
	"usage: rig audit [--device IMEI] [--slot N] [--run ID] [--since TIME] [--db PATH] [--json]\n"
	"\n"
	"Shows the audit trail: every command the rig sent to a device, who sent it,\n"
	"from which station, slot and port, and the result. Oldest first.\n"
	"\n"
	"  --device IMEI  only entries for this device\n"
	"  --slot N       only entries for slot N of the rack\n"
	"  --run ID       only entries of run ID (as rig run and rig nightly print it)\n"
	"  --since TIME   only entries at or after TIME, in UTC: an ISO 8601 date or\n"
	"                 date-time prefix such as 2026-11-26, 2026-11-26T08:00 or\n"
	"                 2026-11-26T08:00:05.250Z\n"
	"  --db PATH      results store (default: $TRACKRIG_DB, else ./trackrig.db)\n"
	"  --json         print a JSON array of objects instead of a table\n"
	"  -h, --help     this text\n"
	"\n"
	"Exit status: 0 done (also when the store does not exist yet: nothing has been\n"
	"audited), 2 usage error, 3 the store cannot be opened or read.\n";

struct audit_opts {
	const char *device;
	const char *since;
	char slot[24];  /* "3": slots are stored by their number */
	int64_t run_id; /* 0: any */
	const char *db;
	bool json;
};

/* ---- --since ---- */

/* Reads exactly N digits at *P as a number in [LO, HI]. */
static bool take_number(const char **p, int n, int lo, int hi, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return v >= lo && v <= hi;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* True at the end of S, allowing one 'Z' (UTC) there when Z_OK. */
static bool at_end(const char *p, bool z_ok)
{
	return !*p || (z_ok && p[0] == 'Z' && !p[1]);
}

/* True when S is a UTC ISO 8601 date or date-time prefix in the store's own
 * layout: YYYY[-MM[-DD[Thh[:mm[:ss[.f{1,3}]]]]]][Z]. The store compares
 * times as text, so anything else (an offset, a space for T, a single-digit
 * month) would compare wrong rather than fail: it is refused here. */
static bool since_valid(const char *s)
{
	const char *p = s;
	int year, month, day, v;

	if (!take_number(&p, 4, 0, 9999, &year))
		return false;
	if (at_end(p, false))
		return true;
	if (*p++ != '-' || !take_number(&p, 2, 1, 12, &month))
		return false;
	if (at_end(p, false))
		return true;
	if (*p++ != '-' || !take_number(&p, 2, 1, days_in_month(year, month), &day))
		return false;
	if (at_end(p, false))
		return true;
	if (*p++ != 'T' || !take_number(&p, 2, 0, 23, &v))
		return false;
	if (at_end(p, true))
		return true;
	if (*p++ != ':' || !take_number(&p, 2, 0, 59, &v))
		return false;
	if (at_end(p, true))
		return true;
	if (*p++ != ':' || !take_number(&p, 2, 0, 60, &v)) /* 60: leap second */
		return false;
	if (at_end(p, true))
		return true;
	if (*p++ != '.')
		return false;
	/* Stored times have milliseconds: more digits would compare wrong. */
	for (int n = 0; n < 3 && *p >= '0' && *p <= '9'; n++)
		p++;
	return p[-1] != '.' && at_end(p, true);
}

/* ---- arguments ---- */

/* Returns -1 to go on, or the exit code to return now. */
static int parse_args(int argc, char **argv, struct audit_opts *o)
{
	enum { OPT_DEVICE = 256, OPT_SINCE, OPT_DB, OPT_JSON, OPT_HELP, OPT_SLOT, OPT_RUN };
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "slot", required_argument, NULL, OPT_SLOT },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "db", required_argument, NULL, OPT_DB },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	long v;

	memset(o, 0, sizeof *o);
	/* 0, not 1: GNU getopt then forgets any state left by an earlier
	 * parse in this process (main's, another command's, a test's). */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DEVICE:
			o->device = optarg;
			break;
		case OPT_SINCE:
			o->since = optarg;
			break;
		case OPT_SLOT:
			if (cli_long(optarg, 1, 100000, &v))
				return cli_fail(RIG_EXIT_USAGE, "audit", "--slot '%s': expected a slot number", optarg);
			snprintf(o->slot, sizeof o->slot, "%ld", v);
			break;
		case OPT_RUN:
			if (cli_long(optarg, 1, LONG_MAX, &v))
				return cli_fail(RIG_EXIT_USAGE, "audit", "--run '%s': expected a run id", optarg);
			o->run_id = v;
			break;
		case OPT_DB:
			o->db = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
		case OPT_HELP:
			fputs(cmd_audit_usage, stdout);
			return RIG_EXIT_OK;
		case ':':
			return cli_fail(RIG_EXIT_USAGE, "audit", "%s needs a value (see rig audit --help)",
					argv[optind - 1]);
		default:
			/* optopt is a long option's value when it was given an
			 * argument it takes none of ("--json=3"), the letter of
			 * a bad short option even inside a group ("-hx"), and 0
			 * for an unknown long one, which only argv names. */
			if (optopt >= OPT_DEVICE)
				return cli_fail(RIG_EXIT_USAGE, "audit", "'%s' takes no value",
						argv[optind - 1]);
			if (optopt)
				return cli_fail(RIG_EXIT_USAGE, "audit",
						"unknown option '-%c' (see rig audit --help)", optopt);
			return cli_bad_option("audit", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "audit", "unexpected argument '%s' (see rig audit --help)",
				argv[optind]);
	if (o->device && !*o->device)
		return cli_fail(RIG_EXIT_USAGE, "audit", "--device needs an IMEI");
	if (o->db && !*o->db)
		return cli_fail(RIG_EXIT_USAGE, "audit", "--db needs a path");
	if (o->since && !since_valid(o->since))
		return cli_fail(RIG_EXIT_USAGE, "audit",
				"--since '%s' is not a UTC ISO 8601 date or date-time "
				"(e.g. 2026-11-26, 2026-11-26T08:00, 2026-11-26T08:00:05Z)",
				o->since);
	return -1;
}

/* ---- output ---- */

/* The table's columns; the last (result) is never padded. */
enum { COL_TIME, COL_OPERATOR, COL_STATION, COL_WHERE, COL_IMEI, COL_COMMAND, COL_RESULT,
       NCOLS };
static const char *const col_names[NCOLS] = {
	"TIME", "OPERATOR", "STATION", "SLOT/PORT", "IMEI", "COMMAND", "RESULT",
};

/* Widths come from the first rows, held back until there are this many (or
 * the walk ends); later rows stream through, so a trail of a million rows
 * never sits in memory. A longer value later only shifts its own line. */
#define TABLE_SAMPLE 500
/* Beyond this a column stops widening: one long command in the sample should
 * not push every row off the screen. Port paths (/dev/serial/by-id/...) are
 * well under it. */
#define TABLE_MAX_WIDTH 80

struct table_row {
	char *f[NCOLS];
};

struct printer {
	FILE *out;
	struct json *json; /* NULL: table */
	int rows;
	bool out_of_memory;
	/* table only */
	int width[NCOLS];
	struct table_row held[TABLE_SAMPLE];
	int nheld;
	bool streaming;
};

/* Columns S takes on a terminal: UTF-8 continuation bytes take none. */
static int text_width(const char *s)
{
	int w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		w += (*p & 0xc0) != 0x80;
	return w;
}

/* S made safe for a terminal, malloc'ed: control characters become escapes,
 * so text from a device can neither break a row across lines nor send the
 * terminal escape sequences. NULL or empty shows as "-". */
static char *escape_field(const char *s)
{
	char *out, *o;

	if (!s || !*s)
		return strdup("-");
	out = malloc(4 * strlen(s) + 1);
	if (!out)
		return NULL;
	o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n')
			o += sprintf(o, "\\n");
		else if (*p == '\r')
			o += sprintf(o, "\\r");
		else if (*p == '\t')
			o += sprintf(o, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

static void table_row_free(struct table_row *r)
{
	for (int i = 0; i < NCOLS; i++)
		free(r->f[i]);
}

/* Fills R from ROW; false when memory ran out (R is then freed). */
static bool table_row_make(struct table_row *r, const struct store_audit_row *row)
{
	char where[512];
	bool ok = true;

	if (row->slot && row->port)
		snprintf(where, sizeof where, "%s (%s)", row->slot, row->port);
	else
		snprintf(where, sizeof where, "%s", row->slot ? row->slot : row->port ? row->port : "");
	r->f[COL_TIME] = escape_field(row->at);
	r->f[COL_OPERATOR] = escape_field(row->operator_);
	r->f[COL_STATION] = escape_field(row->station);
	r->f[COL_WHERE] = escape_field(where);
	r->f[COL_IMEI] = escape_field(row->imei);
	r->f[COL_COMMAND] = escape_field(row->command);
	r->f[COL_RESULT] = escape_field(row->result);
	for (int i = 0; i < NCOLS; i++)
		ok = ok && r->f[i];
	if (!ok)
		table_row_free(r);
	return ok;
}

static void table_print(struct printer *p, char *const f[NCOLS])
{
	for (int i = 0; i < NCOLS - 1; i++) {
		int pad = p->width[i] - text_width(f[i]);
		fprintf(p->out, "%s%*s ", f[i], pad > 0 ? pad : 0, "");
	}
	fprintf(p->out, "%s\n", f[NCOLS - 1]);
}

/* Sizes the columns from the held rows, prints header and rows, and lets
 * the rest stream. */
static void table_flush(struct printer *p)
{
	if (p->streaming)
		return;
	p->streaming = true;
	if (p->nheld == 0)
		return;
	for (int i = 0; i < NCOLS; i++) {
		p->width[i] = text_width(col_names[i]);
		for (int r = 0; r < p->nheld; r++) {
			int w = text_width(p->held[r].f[i]);
			if (w > p->width[i])
				p->width[i] = w < TABLE_MAX_WIDTH ? w : TABLE_MAX_WIDTH;
		}
	}
	table_print(p, (char *const *)col_names);
	for (int r = 0; r < p->nheld; r++) {
		table_print(p, p->held[r].f);
		table_row_free(&p->held[r]);
	}
	p->nheld = 0;
}

static int table_row(void *ctx, const struct store_audit_row *row)
{
	struct printer *p = ctx;
	struct table_row r;

	if (!table_row_make(&r, row)) {
		p->out_of_memory = true;
		return 1;
	}
	p->rows++;
	if (p->streaming) {
		table_print(p, r.f);
		table_row_free(&r);
		return 0;
	}
	p->held[p->nheld++] = r;
	if (p->nheld == TABLE_SAMPLE)
		table_flush(p);
	return 0;
}

static int json_row(void *ctx, const struct store_audit_row *row)
{
	struct printer *p = ctx;
	struct json *j = p->json;

	p->rows++;
	json_obj_begin(j, NULL);
	json_int(j, "id", row->id);
	json_str(j, "at", row->at);
	if (row->run_id)
		json_int(j, "run_id", row->run_id);
	else
		json_null(j, "run_id");
	json_str(j, "operator", row->operator_);
	json_str(j, "station", row->station);
	json_str(j, "slot", row->slot);
	json_str(j, "port", row->port);
	json_str(j, "imei", row->imei);
	json_str(j, "command", row->command);
	json_str(j, "result", row->result);
	json_obj_end(j);
	return 0;
}

/* Says what matched nothing, so an empty answer is not mistaken for a
 * mistyped filter. */
static void report_empty(const struct audit_opts *o, const char *path)
{
	char run[40] = "";
	if (o->run_id)
		snprintf(run, sizeof run, " in run %lld", (long long)o->run_id);
	fprintf(stderr, "rig audit: no audit entries%s%s%s%s%s%s%s in %s\n",
		o->device ? " for device " : "", o->device ? o->device : "",
		*o->slot ? " for slot " : "", o->slot, run,
		o->since ? " since " : "", o->since ? o->since : "", path);
}

static int finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_fail(RIG_EXIT_INFRA, "audit", "writing output: %s", strerror(errno));
	return RIG_EXIT_OK;
}

static bool store_exists(const char *path)
{
	struct stat st;
	/* Only a clear "not there" counts; anything else (no permission, say) is
	 * for store_open to explain. */
	return stat(path, &st) == 0 || errno != ENOENT;
}

int cmd_audit(int argc, char **argv)
{
	static struct printer p; /* holds the table sample: too big for the stack */
	struct audit_opts o;
	struct json j;
	const char *path;
	store *s;
	char err[512];
	int rc, status = RIG_EXIT_OK;

	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	path = cli_db_path(o.db);
	if (!store_exists(path)) {
		fprintf(stderr, "rig audit: no audit trail yet: %s does not exist\n", path);
		if (o.json) {
			json_init(&j, stdout, false);
			json_arr_begin(&j, NULL);
			json_arr_end(&j);
			json_end(&j);
		}
		return finish_output();
	}
	/* Read-only: reading the trail neither migrates nor sweeps the store,
	 * and works on a file this user may only read. */
	if (store_open_readonly(path, &s, err, sizeof err) < 0)
		return cli_fail(RIG_EXIT_INFRA, "audit", "%s", err);

	memset(&p, 0, sizeof p);
	p.out = stdout;
	/* Begun only now, so a store that cannot be opened leaves no half
	 * document on stdout. */
	if (o.json) {
		json_init(&j, stdout, false);
		json_arr_begin(&j, NULL);
		p.json = &j;
	}
	if (store_audit_each_in(s, o.device, o.since, *o.slot ? o.slot : NULL, o.run_id, o.json ? json_row : table_row, &p) < 0)
		status = cli_fail(RIG_EXIT_INFRA, "audit", "%s", store_error(s));
	else if (p.out_of_memory)
		status = cli_fail(RIG_EXIT_INFRA, "audit", "out of memory");
	else if (p.rows == 0)
		report_empty(&o, path);
	store_close(s);
	/* Finished even after an error, so what was printed is a whole table
	 * or document; the exit code says it is not the whole trail. */
	if (o.json) {
		json_arr_end(&j);
		json_end(&j);
	} else {
		table_flush(&p);
	}
	rc = finish_output();
	return status != RIG_EXIT_OK ? status : rc;
}
