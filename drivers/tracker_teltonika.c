/*
 * tracker_teltonika.c - the Teltonika SMS/GPRS command set over a line link.
 *
 * Answer formats are Teltonika's (docs/console-protocol.md). Every value the
 * rig relies on is checked, not just copied: a console that drops a
 * character turns "IMEI:352094087230394" into a number that fails its Luhn
 * check, and that must surface as an unreadable answer, never as a wrong
 * identity in the results.
 */
#include "tracker.h"
#include "ident.h"

#include <stdio.h>
#include <string.h>

/* Command word -> prefix of its answer. */
static const struct {
	const char *cmd;
	const char *prefix;
} answers[] = {
	{ "getver", "Ver:" },
	{ "getimeiccid", "IMEI:" },
	{ "getinfo", "RTC:" },
	{ "getstatus", "Data Link:" },
	{ "getgps", "GPS:" },
	{ "getio", "DI1:" },
	{ "getparam", "Param ID:" },
	{ "setparam", "New value" },
	{ "cpureset", "Resetting" },
};

static const char *teltonika_answer_prefix(const char *cmd)
{
	size_t n = strcspn(cmd, " ");
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
		if (strlen(answers[i].cmd) == n && strncmp(cmd, answers[i].cmd, n) == 0)
			return answers[i].prefix;
	return NULL; /* a command we don't know: its first line is the answer */
}

static bool teltonika_is_refusal(const char *line)
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
static int teltonika_getver(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "getver", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need(t, "getver", a, "Ver", id->firmware, sizeof id->firmware)) ||
	    (rc = need(t, "getver", a, "Hw", id->model, sizeof id->model)) ||
	    (rc = need(t, "getver", a, "IMEI", id->imei, sizeof id->imei)))
		return rc;
	if (!ident_imei_valid(id->imei))
		return tracker_fail(t, TRACKER_ERR_PARSE, "getver",
				    "IMEI '%s' is not 15 digits with a valid check digit (garbled answer?)", id->imei);
	/* Optional: a real device may not tell these. */
	tracker_field(a, "GPS", id->gnss_firmware, sizeof id->gnss_firmware);
	tracker_field(a, "SN", id->serial, sizeof id->serial);
	tracker_field(a, "Rev", id->hw_rev, sizeof id->hw_rev);
	return TRACKER_OK;
}

static int teltonika_ping(tracker *t, char *imei, size_t len, int timeout_ms)
{
	struct tracker_identity id = { 0 };
	int rc = teltonika_getver(t, &id, timeout_ms);
	if (rc == TRACKER_OK)
		snprintf(imei, len, "%s", id.imei);
	return rc;
}

static int teltonika_identify(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = teltonika_getver(t, id, timeout_ms);
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

static int teltonika_status(tracker *t, struct tracker_status *st, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	long v;
	int rc = tracker_command(t, "getstatus", a, sizeof a, timeout_ms);
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
	if ((rc = need(t, "getstatus", a, "OP", st->operator_code, sizeof st->operator_code)))
		return rc;
	if (tracker_field_long(a, "Roaming", NULL, &v))
		st->roaming = (int)v;
	if (tracker_field_long(a, "NetType", NULL, &v))
		st->net_type = (int)v;
	if (tracker_field_long(a, "FwUpd", NULL, &v))
		st->fw_update = (int)v;

	rc = tracker_command(t, "getinfo", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if ((rc = need_long(t, "getinfo", a, "UpTime", "s", &v)))
		return rc;
	st->uptime_s = v;
	if ((rc = need_long(t, "getinfo", a, "RST", NULL, &v)))
		return rc;
	st->reset_code = (int)v;
	if ((rc = need(t, "getinfo", a, "PWR", st->power_source, sizeof st->power_source)))
		return rc;
	if (tracker_field_long(a, "GPS", NULL, &v))
		st->gnss_on = (int)v;
	if (tracker_field_long(a, "SAT", NULL, &v))
		st->satellites = (int)v;
	if (tracker_field_long(a, "REC", NULL, &v))
		st->records = (int)v;
	tracker_field(a, "Reset", st->reset_reason, sizeof st->reset_reason);
	tracker_field(a, "PDP", st->pdp, sizeof st->pdp);
	tracker_field(a, "Bank", st->bank, sizeof st->bank);
	tracker_field(a, "FotaState", st->fota_state, sizeof st->fota_state);
	if (tracker_field_long(a, "Boots", NULL, &v))
		st->boots = (int)v;
	return TRACKER_OK;
}

const struct tracker_proto tracker_teltonika = {
	.name = "teltonika",
	.line_end = "\r\n",
	.answer_prefix = teltonika_answer_prefix,
	.is_refusal = teltonika_is_refusal,
	.identify = teltonika_identify,
	.status = teltonika_status,
	.ping = teltonika_ping,
};
