/*
 * tracker_teltonika.c - the Teltonika SMS/GPRS command set over a line link.
 *
 * Answer formats are a real FMB9xx's (docs/console-protocol.md): nothing here
 * reads a field a real unit does not print. What a real unit cannot tell
 * (events, an update from a URL) has no hook, so the checks that need it are
 * skipped, never guessed. Every value the
 * rig relies on is checked, not just copied: a console that drops a
 * character turns "IMEI:352094087230394" into a number that fails its Luhn
 * check, and that must surface as an unreadable answer, never as a wrong
 * identity in the results.
 */
#include "tracker_teltonika.h"
#include "ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Command word -> prefix of its answer. */
static const struct {
	const char *cmd;
	const char *prefix;
} answers[] = {
	{ "getver", "Ver:" },
	{ "getimeiccid", "IMEI:" },
	{ "getinfo", "INI:" },
	{ "getstatus", "Data Link:" },
	{ "getgps", "GPS:" },
	{ "getio", "DI1:" },
	{ "readio", "IO ID:" },
	{ "setdigout", "DOUT1:" },
	{ "getparam", "Param ID:" },
	{ "setparam", "New value" },
	{ "cpureset", "Resetting" },
};

const char *teltonika_answer_prefix(const char *cmd)
{
	size_t n = strcspn(cmd, " ");
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
		if (strlen(answers[i].cmd) == n && strncmp(cmd, answers[i].cmd, n) == 0)
			return answers[i].prefix;
	return NULL; /* a command we don't know: its first line is the answer */
}

bool teltonika_is_refusal(const char *line)
{
	return strncmp(line, "ERROR", 5) == 0;
}

/* Copies field KEY of ANSWER into OUT or fails naming the key. */
static int need(tracker *t, const char *cmd, const char *answer, const char *key,
		char *out, size_t len)
{
	if (tracker_field(answer, key, out, len))
		return TRACKER_OK;
	return tracker_fail(t, TRACKER_ERR_PARSE, cmd, "answer has no readable '%s' field: '%.120s'",
			    key, answer);
}

static int need_long(tracker *t, const char *cmd, const char *answer, const char *key,
		     const char *suffix, long *out)
{
	if (tracker_field_long(answer, key, suffix, out))
		return TRACKER_OK;
	return tracker_fail(t, TRACKER_ERR_PARSE, cmd, "answer has no numeric '%s' field: '%.120s'",
			    key, answer);
}

/* getver's answer into ID (firmware, model, IMEI checked; the optional
 * fields when given): identify and ping both start here. */
static int teltonika_getver(tracker *t, struct tracker_identity *id, char *a, size_t alen, int timeout_ms)
{
	int rc = tracker_command(t, "getver", a, alen, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need(t, "getver", a, "Ver", id->firmware, sizeof id->firmware)) ||
	    (rc = need(t, "getver", a, "Hw", id->model, sizeof id->model)) ||
	    (rc = need(t, "getver", a, "IMEI", id->imei, sizeof id->imei)))
		return rc;
	if (!ident_imei_valid(id->imei))
		return tracker_fail(t, TRACKER_ERR_PARSE, "getver",
				    "IMEI '%s' is not 15 digits with a valid check digit (garbled answer?)", id->imei);
	/* Optional: not every firmware names its receiver's. */
	tracker_field(a, "GPS", id->gnss_firmware, sizeof id->gnss_firmware);
	return TRACKER_OK;
}

int teltonika_ping(tracker *t, char *imei, size_t len, int timeout_ms)
{
	struct tracker_identity id = { 0 };
	char a[TRACKER_LINE_MAX + 1];
	int rc = teltonika_getver(t, &id, a, sizeof a, timeout_ms);
	if (rc == TRACKER_OK)
		snprintf(imei, len, "%s", id.imei);
	return rc;
}

int teltonika_identify(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	return teltonika_identify_getver(t, id, a, sizeof a, timeout_ms);
}

int teltonika_identify_getver(tracker *t, struct tracker_identity *id, char *getver, size_t glen, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = teltonika_getver(t, id, getver, glen, timeout_ms);
	if (rc)
		return rc;

	rc = tracker_command(t, "getimeiccid", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	char imei2[16];
	if ((rc = need(t, "getimeiccid", a, "IMEI", imei2, sizeof imei2)) ||
	    (rc = need(t, "getimeiccid", a, "ICCID", id->iccid, sizeof id->iccid)))
		return rc;
	if (strcmp(imei2, id->imei) != 0)
		return tracker_fail(t, TRACKER_ERR_PARSE, "getimeiccid",
				    "IMEI '%s' differs from getver's '%s' (garbled answer?)", imei2, id->imei);
	if (!ident_iccid_valid(id->iccid))
		return tracker_fail(t, TRACKER_ERR_PARSE, "getimeiccid",
				    "ICCID '%s' is not 19-20 digits with a valid check digit (garbled answer?)",
				    id->iccid);
	return TRACKER_OK;
}

/* getstatus's "OP:" when the unit is registered; empty when the field is
 * missing or blank (a real FMB prints "OP: " then the next field). */
static void operator_of(const char *a, char *out, size_t len)
{
	*out = '\0';
	char v[16];
	if (tracker_field(a, "OP", v, sizeof v) && !strchr(v, ':'))
		snprintf(out, len, "%s", v);
}

int teltonika_status(tracker *t, struct tracker_status *st, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	return teltonika_status_getinfo(t, st, a, sizeof a, timeout_ms);
}

int teltonika_status_getinfo(tracker *t, struct tracker_status *st, char *a, size_t alen, int timeout_ms)
{
	long v;
	int rc = tracker_command(t, "getstatus", a, alen, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need_long(t, "getstatus", a, "Data Link", NULL, &v)))
		return rc;
	st->data_link = (int)v;
	if ((rc = need_long(t, "getstatus", a, "GPRS", NULL, &v)))
		return rc;
	st->gprs = (int)v;
	if ((rc = need_long(t, "getstatus", a, "Signal", NULL, &v)))
		return rc;
	if (v < 0 || v > 5)
		return tracker_fail(t, TRACKER_ERR_PARSE, "getstatus", "Signal %ld outside 0..5", v);
	st->signal = (int)v;
	operator_of(a, st->operator_code, sizeof st->operator_code);
	if (tracker_field_long(a, "Roaming", NULL, &v))
		st->roaming = (int)v;
	if (tracker_field_long(a, "NetType", NULL, &v))
		st->net_type = (int)v;
	if (tracker_field_long(a, "FwUpd", NULL, &v))
		st->fw_update = (int)v;

	rc = tracker_command(t, "getinfo", a, alen, timeout_ms);
	if (rc)
		return rc;
	/* GPS: 0 off, 1 restarting, 2 on without fix, 3 on with fix, 4 sleep. */
	if ((rc = need_long(t, "getinfo", a, "GPS", NULL, &v)))
		return rc;
	st->gnss_on = v == 3;
	if (tracker_field_long(a, "SAT", NULL, &v))
		st->satellites = (int)v;
	return TRACKER_OK;
}

const char *teltonika_reset_name(long rs)
{
	static const char *const names[] = {
		[1] = "low_power", [2] = "watchdog", [3] = "watchdog", [4] = "software",
		[5] = "power_on", [6] = "pin",
	};
	return rs > 0 && rs < (long)(sizeof names / sizeof names[0]) ? names[rs] : "";
}

/* RST is the restart counter, RS the reset source; the uptime is getver's. */
int teltonika_restarts(tracker *t, struct tracker_restarts *r, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	long v;
	int rc = tracker_command(t, "getinfo", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need_long(t, "getinfo", a, "RST", NULL, &r->count)))
		return rc;
	if (tracker_field_long(a, "RS", NULL, &v)) {
		r->reset_code = (int)v;
		snprintf(r->reset_reason, sizeof r->reset_reason, "%s", teltonika_reset_name(v));
	}
	rc = tracker_command(t, "getver", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	return need_long(t, "getver", a, "Uptime", NULL, &r->uptime_s);
}

int teltonika_buffered(tracker *t, long *records, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "getinfo", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	return need_long(t, "getinfo", a, "RF", NULL, records);
}

/* One parameter's value ("getparam ID" -> "Param ID:ID Value:V"). */
static int param_get(tracker *t, int id, char *out, size_t len, int timeout_ms)
{
	char cmd[32], a[TRACKER_LINE_MAX + 1];
	snprintf(cmd, sizeof cmd, "getparam %d", id);
	int rc = tracker_command(t, cmd, a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	const char *v = strstr(a, "Value:");
	if (!v)
		return tracker_fail(t, TRACKER_ERR_PARSE, cmd, "answer has no 'Value:': '%.120s'", a);
	snprintf(out, len, "%s", v + 6);
	return TRACKER_OK;
}

static int param_set(tracker *t, int id, const char *value, int timeout_ms)
{
	char cmd[300], a[TRACKER_LINE_MAX + 1];
	snprintf(cmd, sizeof cmd, "setparam %d:%s", id, value);
	return tracker_command(t, cmd, a, sizeof a, timeout_ms);
}

/* The server: parameters 2004 (domain), 2005 (port), 2006 (0 TCP, 1 UDP). */
int teltonika_server_get(tracker *t, struct tracker_server *srv, int timeout_ms)
{
	char port[16], proto[16];
	int rc;
	if ((rc = param_get(t, 2004, srv->host, sizeof srv->host, timeout_ms)) ||
	    (rc = param_get(t, 2005, port, sizeof port, timeout_ms)) ||
	    (rc = param_get(t, 2006, proto, sizeof proto, timeout_ms)))
		return rc;
	srv->port = atoi(port);
	srv->protocol = atoi(proto);
	return TRACKER_OK;
}

int teltonika_server_set(tracker *t, const struct tracker_server *srv, int timeout_ms)
{
	char port[16], proto[16];
	snprintf(port, sizeof port, "%d", srv->port);
	snprintf(proto, sizeof proto, "%d", srv->protocol);
	int rc;
	if ((rc = param_set(t, 2004, srv->host, timeout_ms)) || (rc = param_set(t, 2005, port, timeout_ms)) ||
	    (rc = param_set(t, 2006, proto, timeout_ms)))
		return rc;
	return TRACKER_OK;
}

/* Home network data acquisition: 10000 the period on stop, 10050 moving. */
int teltonika_report_period_set(tracker *t, int seconds, int timeout_ms)
{
	char v[16];
	snprintf(v, sizeof v, "%d", seconds);
	int rc = param_set(t, 10050, v, timeout_ms);
	return rc ? rc : param_set(t, 10000, v, timeout_ms);
}

int teltonika_input_get(tracker *t, int n, long *value, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1], key[8];
	if (n < 1 || n > 4)
		return tracker_fail(t, TRACKER_ERR_ARG, "getio", "input %d: Teltonika units have DI1..DI4", n);
	int rc = tracker_command(t, "getio", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	snprintf(key, sizeof key, "DI%d", n);
	return need_long(t, "getio", a, key, NULL, value);
}

/* setdigout takes one character per output: 1 on, 0 off, ? leave. */
int teltonika_output_set(tracker *t, int n, bool on, int timeout_ms)
{
	char cmd[32], a[TRACKER_LINE_MAX + 1];
	if (n < 1 || n > 2)
		return tracker_fail(t, TRACKER_ERR_ARG, "setdigout", "output %d: FMB units have DOUT1..DOUT2", n);
	snprintf(cmd, sizeof cmd, "setdigout %s", n == 1 ? (on ? "1?" : "0?") : (on ? "?1" : "?0"));
	return tracker_command(t, cmd, a, sizeof a, timeout_ms);
}

/* Ignition is DIN1 on a default-configured FMB. */
int teltonika_in_service(tracker *t, bool *in_service, int timeout_ms)
{
	long v;
	int rc = teltonika_input_get(t, 1, &v, timeout_ms);
	if (rc == TRACKER_OK)
		*in_service = v != 0;
	return rc;
}

/* A real FMB does not say why it has no data session; getstatus shows the
 * carrier's refusal as registered (an operator), attached to packet data
 * and in coverage, with no data link. */
int teltonika_data_session(tracker *t, enum tracker_data_session *s, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1], op[16];
	long link, gprs, signal;
	int rc = tracker_command(t, "getstatus", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need_long(t, "getstatus", a, "Data Link", NULL, &link)) ||
	    (rc = need_long(t, "getstatus", a, "GPRS", NULL, &gprs)) ||
	    (rc = need_long(t, "getstatus", a, "Signal", NULL, &signal)))
		return rc;
	operator_of(a, op, sizeof op);
	*s = link ? TRACKER_DATA_UP : gprs && signal > 0 && *op ? TRACKER_DATA_REFUSED : TRACKER_DATA_DOWN;
	return TRACKER_OK;
}

int teltonika_reboot(tracker *t, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	return tracker_command(t, "cpureset", a, sizeof a, timeout_ms);
}

const struct tracker_proto tracker_teltonika = {
	.name = "teltonika",
	.line_end = "\r\n",
	.answer_prefix = teltonika_answer_prefix,
	.is_refusal = teltonika_is_refusal,
	.identify = teltonika_identify,
	.status = teltonika_status,
	.ping = teltonika_ping,
	.restarts = teltonika_restarts,
	.buffered = teltonika_buffered,
	.server_get = teltonika_server_get,
	.server_set = teltonika_server_set,
	.report_period_set = teltonika_report_period_set,
	.input_get = teltonika_input_get,
	.output_set = teltonika_output_set,
	.in_service = teltonika_in_service,
	.data_session = teltonika_data_session,
	.reboot = teltonika_reboot,
};
