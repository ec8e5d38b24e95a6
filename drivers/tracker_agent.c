/*
 * tracker_agent.c - trackrig's agent dialect (docs/agent-protocol.md).
 *
 * What no real tracker tells a rig (event lines, an update from a URL with
 * A/B banks, the carrier's refusal of a data session) is declared once, as
 * the agent dialect: Teltonika's command set, answered exactly as an FMB
 * answers it, plus these extensions. A vendor's test firmware or an on-device
 * agent that speaks them gets the scenarios that need them; a unit that does
 * not is driven as "teltonika" and those scenarios are skipped.
 */
#include "tracker_teltonika.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int agent_identify(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = teltonika_identify_getver(t, id, a, sizeof a, timeout_ms);
	if (rc == TRACKER_OK) {
		/* extensions: serial number and hardware revision */
		tracker_field(a, "SN", id->serial, sizeof id->serial);
		tracker_field(a, "Rev", id->hw_rev, sizeof id->hw_rev);
	}
	return rc;
}

static int agent_status(tracker *t, struct tracker_status *st, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	long v;
	int rc = teltonika_status_getinfo(t, st, a, sizeof a, timeout_ms);
	if (rc == TRACKER_OK && tracker_field_long(a, "TTFF", NULL, &v))
		st->ttff_s = (int)v; /* extension: the receiver's time to first fix */
	return rc;
}

/* Extension: getinfo's PDP:rejected says the carrier refused the session. */
static int agent_data_session(tracker *t, enum tracker_data_session *s, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1], pdp[16];
	int rc = tracker_command(t, "getinfo", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if (tracker_field(a, "PDP", pdp, sizeof pdp) && strcmp(pdp, "rejected") == 0) {
		*s = TRACKER_DATA_REFUSED;
		return TRACKER_OK;
	}
	return teltonika_data_session(t, s, timeout_ms);
}

/* "fota URL" -> "FOTA:accepted", "FOTA:deferred REASON" or "ERROR: why". */
static int agent_ota_start(tracker *t, const char *url, char *detail, size_t len, int timeout_ms)
{
	char cmd[400], a[TRACKER_LINE_MAX + 1];
	if (strlen(url) > 300 || strpbrk(url, " \r\n"))
		return tracker_fail(t, TRACKER_ERR_ARG, "fota", "URL '%.80s' is too long or has spaces", url);
	snprintf(cmd, sizeof cmd, "fota %s", url);
	int rc = tracker_command(t, cmd, a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if (strcmp(a, "FOTA:accepted") == 0)
		return TRACKER_OK;
	if (strncmp(a, "FOTA:deferred", 13) == 0) {
		snprintf(detail, len, "%s", a + 5);
		return 1;
	}
	return tracker_fail(t, TRACKER_ERR_PARSE, "fota", "unexpected answer: '%.120s'", a);
}

/* Copies the word after KEY in S ("bank=" -> "A"), or leaves OUT empty. */
static void word_after(const char *s, const char *key, char *out, size_t len)
{
	*out = '\0';
	const char *p = strstr(s, key);
	if (!p)
		return;
	p += strlen(key);
	size_t n = strcspn(p, " ");
	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

/* "fota status" -> "FOTA:STATE bank=A pending=B bytes=N/M". */
static int agent_ota_state(tracker *t, struct tracker_ota *o, int timeout_ms)
{
	char a[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "fota status", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	if (strncmp(a, "FOTA:", 5) != 0)
		return tracker_fail(t, TRACKER_ERR_PARSE, "fota status", "unexpected answer: '%.120s'", a);
	word_after(a, "FOTA:", o->state, sizeof o->state);
	word_after(a, "bank=", o->bank, sizeof o->bank);
	word_after(a, "pending=", o->pending, sizeof o->pending);
	if (!strcmp(o->pending, "-"))
		*o->pending = '\0';
	if (!*o->state)
		return tracker_fail(t, TRACKER_ERR_PARSE, "fota status", "no state in '%.120s'", a);
	snprintf(o->detail, sizeof o->detail, "%s", a);
	rc = tracker_command(t, "getinfo", a, sizeof a, timeout_ms);
	if (rc)
		return rc;
	long v;
	if (tracker_field_long(a, "Free", "KB", &v))
		o->free_kb = v;
	return TRACKER_OK;
}

/* "@KIND key=value ...": the kind in lower case, the whole line kept. */
static bool agent_event_line(const char *line, struct tracker_event *ev)
{
	if (line[0] != '@' || !isalpha((unsigned char)line[1]))
		return false;
	size_t k = 0;
	for (const char *p = line + 1; *p && *p != ' ' && k + 1 < sizeof ev->kind; p++)
		ev->kind[k++] = (char)tolower((unsigned char)*p);
	ev->kind[k] = '\0';
	snprintf(ev->text, sizeof ev->text, "%s", line);
	return true;
}

static const char *agent_answer_prefix(const char *cmd)
{
	if (strncmp(cmd, "fota", 4) == 0 && (cmd[4] == ' ' || cmd[4] == '\0'))
		return "FOTA:";
	return teltonika_answer_prefix(cmd);
}

const struct tracker_proto tracker_agent = {
	.name = "agent",
	.line_end = "\r\n",
	.answer_prefix = agent_answer_prefix,
	.is_refusal = teltonika_is_refusal,
	.identify = agent_identify,
	.status = agent_status,
	.ping = teltonika_ping,
	.restarts = teltonika_restarts,
	.buffered = teltonika_buffered,
	.server_get = teltonika_server_get,
	.server_set = teltonika_server_set,
	.report_period_set = teltonika_report_period_set,
	.input_get = teltonika_input_get,
	.output_set = teltonika_output_set,
	.in_service = teltonika_in_service,
	.data_session = agent_data_session,
	.reboot = teltonika_reboot,
	.ota_start = agent_ota_start,
	.ota_state = agent_ota_state,
	.event_line = agent_event_line,
};
