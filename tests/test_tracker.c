/*
 * test_tracker.c - the tracker driver against a scripted link.
 *
 * The link plays back what a device "says" chunk by chunk, so every console
 * fault (garbage, NUL bytes, over-long and partial lines, silence, a device
 * that vanishes mid-command, late answers, events in between) is reproduced
 * exactly, without timing luck.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ident.h"
#include "tracker.h"

#define MAX_CHUNKS 16

struct script {
	const char *chunk[MAX_CHUNKS]; /* what the device sends, in order */
	size_t len[MAX_CHUNKS];        /* 0: strlen */
	int n, next;
	bool vanish_at_end;            /* after the last chunk: gone, not silent */
	char sent[2048];               /* what the driver wrote */
	size_t sent_len;
	int sends;
	int release_after_send[MAX_CHUNKS]; /* chunk i is sent only after this many commands */
};

static int s_send(void *ctx, const void *buf, size_t n, int timeout_ms)
{
	(void)timeout_ms;
	struct script *s = ctx;
	if (s->sent_len + n < sizeof s->sent) {
		memcpy(s->sent + s->sent_len, buf, n);
		s->sent_len += n;
	}
	s->sends++;
	return TRACKER_OK;
}

static ssize_t s_recv(void *ctx, void *buf, size_t n, int timeout_ms)
{
	struct script *s = ctx;
	if (s->next < s->n && s->sends >= s->release_after_send[s->next]) {
		size_t len = s->len[s->next] ? s->len[s->next] : strlen(s->chunk[s->next]);
		cr_assert(len <= n, "test chunk larger than the driver's buffer");
		memcpy(buf, s->chunk[s->next], len);
		s->next++;
		return (ssize_t)len;
	}
	if (s->next >= s->n && s->vanish_at_end)
		return TRACKER_ERR_GONE;
	struct timespec ts = { 0, (long)(timeout_ms < 5 ? timeout_ms : 5) * 1000000L };
	nanosleep(&ts, NULL);
	return TRACKER_ERR_TIMEOUT;
}

static const char *s_where(void *ctx) { (void)ctx; return "/dev/ttyTEST0"; }

static const struct tracker_link_ops script_ops = {
	.name = "script", .send = s_send, .recv = s_recv, .where = s_where,
};

/* A tracker speaking command set PROTO ("teltonika", "agent") over S. */
static tracker *open_script_as(struct script *s, const char *proto)
{
	tracker *t;
	cr_assert_not_null(tracker_proto_find(proto), "no command set '%s'", proto);
	cr_assert_eq(tracker_open(tracker_proto_find(proto), &script_ops, s, &t), TRACKER_OK);
	return t;
}

static tracker *open_script(struct script *s)
{
	return open_script_as(s, "teltonika");
}

/* Every chunk available after the first command was sent. */
static void after_first_send(struct script *s)
{
	for (int i = 0; i < s->n; i++)
		s->release_after_send[i] = 1;
}

/* A real FMB's getver (no serial number, no hardware revision). */
#define GETVER "Ver:03.28.07_04 GPS:AXN_5.10_3333 Hw:FMB920 Mod:13 IMEI:352094087230394 Init:2026-11-26 8:35 Uptime:12 BL:1.10\r\n"
/* An agent unit's: the same, plus its declared extensions SN and Rev. */
#define AGENT_GETVER "Ver:05.01.00_00 GPS:AXN_5.10_3333 Hw:FMB920 Mod:13 IMEI:352094087230394 Init:2026-11-26 8:35 Uptime:12 BL:1.10 SN:7401234567 Rev:1.2\r\n"
#define IMEICCID "IMEI: 352094087230394 ICCID: 89370030000000000005\r\n"

Test(tracker, luhn_of_official_imei)
{
	cr_assert(ident_imei_valid("352094087230394"));
	cr_assert_not(ident_imei_valid("352094087230395"));
	cr_assert_not(ident_imei_valid("35209408723039"));
	cr_assert_eq(ident_luhn_digit("35209408723039"), '4');
	cr_assert(ident_iccid_valid("89370030000000000005"));
	cr_assert_not(ident_iccid_valid("89370030000000000006"));
	cr_assert_not(ident_iccid_valid("19370030000000000005"), "an ICCID starts with 89");
}

Test(tracker, field_parsing)
{
	char v[32];
	long x;
	const char *st = "Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: 5 Cell ID: 3055 FwUpd:-1";
	cr_assert(tracker_field(st, "OP", v, sizeof v));
	cr_assert_str_eq(v, "24602");
	cr_assert(tracker_field_long(st, "Data Link", NULL, &x));
	cr_assert_eq(x, 1);
	cr_assert(tracker_field_long(st, "FwUpd", NULL, &x));
	cr_assert_eq(x, -1);
	cr_assert(tracker_field_long(st, "Cell ID", NULL, &x));
	cr_assert_eq(x, 3055);
	cr_assert_not(tracker_field("XIMEI:1 SIMEI:2", "IMEI", v, sizeof v), "a key matches only at a word start");
	cr_assert_not(tracker_field("IMEI 352094087230394", "IMEI", v, sizeof v), "a key needs its colon");
	cr_assert(tracker_field_long("UpTime:2335s RST:2", "UpTime", "s", &x));
	cr_assert_eq(x, 2335);
	cr_assert_not(tracker_field_long("UpTime:23x5s", "UpTime", "s", &x));
	cr_assert_not(tracker_field("Sig: 5", "Signal", v, sizeof v));
}

Test(tracker, identify_reads_getver_and_getimeiccid)
{
	struct script s = { .chunk = { GETVER, IMEICCID }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_identity id;
	cr_assert_eq(tracker_identify(t, &id, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(id.imei, "352094087230394");
	cr_assert_str_eq(id.iccid, "89370030000000000005");
	cr_assert_str_eq(id.model, "FMB920");
	cr_assert_str_eq(id.firmware, "03.28.07_04");
	cr_assert_str_eq(id.gnss_firmware, "AXN_5.10_3333");
	cr_assert_str_eq(id.serial, "", "a real FMB does not tell its serial: not guessed");
	cr_assert_str_eq(id.hw_rev, "");
	cr_assert_str_eq(s.sent, "getver\r\ngetimeiccid\r\n");
	tracker_close(t);
}

/* Even if a unit driven as Teltonika printed them, SN and Rev are not read:
 * the Teltonika command set reads only what a real FMB prints. */
Test(tracker, teltonika_reads_no_agent_fields)
{
	struct script s = { .chunk = { AGENT_GETVER, IMEICCID }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_identity id;
	cr_assert_eq(tracker_identify(t, &id, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(id.serial, "");
	cr_assert_str_eq(id.hw_rev, "");
	tracker_close(t);
}

Test(tracker, agent_identify_reads_serial_and_revision)
{
	struct script s = { .chunk = { AGENT_GETVER, IMEICCID }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script_as(&s, "agent");
	struct tracker_identity id;
	cr_assert_eq(tracker_identify(t, &id, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(id.imei, "352094087230394");
	cr_assert_str_eq(id.firmware, "05.01.00_00");
	cr_assert_str_eq(id.serial, "7401234567");
	cr_assert_str_eq(id.hw_rev, "1.2");
	tracker_close(t);
}

Test(tracker, events_between_answers_are_queued_not_taken_as_answers)
{
	struct script s = { .chunk = { "@BOOT bank=A reason=power_on fw=03.28.07_04\r\n", "@IGN state=on\r\n", GETVER },
			    .n = 3 };
	after_first_send(&s);
	tracker *t = open_script_as(&s, "agent");
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert(strncmp(a, "Ver:", 4) == 0);
	struct tracker_event ev;
	cr_assert(tracker_next_event(t, &ev));
	cr_assert_str_eq(ev.kind, "boot");
	cr_assert(strstr(ev.text, "reason=power_on"));
	cr_assert(tracker_next_event(t, &ev));
	cr_assert_str_eq(ev.kind, "ign");
	cr_assert_not(tracker_next_event(t, &ev));
	tracker_close(t);
}

/* A real FMB prints no event lines; a line that looks like one, on a unit
 * driven as Teltonika, is a stray line, never an event. */
Test(tracker, teltonika_never_yields_an_event)
{
	struct script s = { .chunk = { "@BOOT bank=A reason=power_on fw=03.28.07_04\r\n", "@IGN state=on\r\n", GETVER },
			    .n = 3 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert(strncmp(a, "Ver:", 4) == 0, "%s", a);
	struct tracker_event ev;
	cr_assert_not(tracker_next_event(t, &ev), "a Teltonika unit yielded the event '%s'", ev.text);
	cr_assert_eq(tracker_poll(t, 20), 0);
	cr_assert_not(tracker_has(tracker_get_proto(t), "events"));
	cr_assert_not(tracker_has(tracker_get_proto(t), "ota"));
	tracker_close(t);
}

Test(tracker, answer_split_across_reads)
{
	struct script s = { .chunk = { "Ver:03.28", ".07_04 Hw:FMB920 IMEI:3520940", "87230394\r", "\n" }, .n = 4 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(a, "Ver:03.28.07_04 Hw:FMB920 IMEI:352094087230394");
	tracker_close(t);
}

Test(tracker, stale_answer_before_command_is_skipped)
{
	/* A late answer to an earlier getver is already waiting when getstatus is sent. */
	struct script s = { .chunk = { GETVER, "Data Link: 1 GPRS: 1 OP: 24602 Signal: 4\r\n" }, .n = 2 };
	s.release_after_send[0] = 0;
	s.release_after_send[1] = 1;
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getstatus", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert(strncmp(a, "Data Link:", 10) == 0);
	tracker_close(t);
}

Test(tracker, silence_is_a_timeout_naming_port_and_command)
{
	struct script s = { .n = 0 };
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 60), TRACKER_ERR_TIMEOUT);
	cr_assert(strstr(tracker_error(t), "/dev/ttyTEST0"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "getver"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "no answer within 60 ms"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, vanished_device_is_not_a_timeout)
{
	struct script s = { .chunk = { "Ver:03.2" }, .n = 1, .vanish_at_end = true };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 5000), TRACKER_ERR_GONE);
	cr_assert(strstr(tracker_error(t), "getver"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "vanished"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, nul_bytes_in_answer_are_garbage)
{
	static const char bad[] = "Ver:03.28\0\0.07 Hw:FMB920\r\n";
	struct script s = { .chunk = { bad }, .len = { sizeof bad - 1 }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_ERR_GARBAGE);
	cr_assert(strstr(tracker_error(t), "NUL"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "/dev/ttyTEST0: getver"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, binary_noise_then_no_answer_is_garbage_not_silence)
{
	static const char noise[] = "\xff\xfe\x01\x02\x80 xq\r\n";
	struct script s = { .chunk = { noise }, .len = { sizeof noise - 1 }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 60), TRACKER_ERR_GARBAGE);
	cr_assert(strstr(tracker_error(t), "unrecognised"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, noise_then_real_answer_succeeds)
{
	static const char noise[] = "\x01\x02garbage\r\n";
	struct script s = { .chunk = { noise, GETVER }, .len = { sizeof noise - 1, 0 }, .n = 2 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, overlong_line_is_named_and_console_recovers)
{
	static char longline[700];
	memset(longline, 'V', sizeof longline - 1);
	memcpy(longline, "Ver:", 4);
	struct script s = { .chunk = { longline, "\r\n", GETVER }, .n = 3 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 1;
	s.release_after_send[2] = 2;
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_ERR_OVERLONG);
	cr_assert(strstr(tracker_error(t), "longer than 512"), "%s", tracker_error(t));
	/* The tail of the over-long line must not be taken for the next answer. */
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert(strncmp(a, "Ver:03.28", 9) == 0);
	tracker_close(t);
}

Test(tracker, partial_line_at_deadline)
{
	struct script s = { .chunk = { "Ver:03.28.07_04 Hw:FM" }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 60), TRACKER_ERR_PARTIAL);
	cr_assert(strstr(tracker_error(t), "did not end"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "Ver:03.28"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, dropped_digit_in_imei_is_a_parse_error)
{
	/* A console that drops characters: the IMEI loses a digit. */
	struct script s = { .chunk = { "Ver:03.28.07_04 Hw:FMB920 IMEI:35209408723094 SN:1\r\n" }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	struct tracker_identity id;
	cr_assert_eq(tracker_identify(t, &id, 200), TRACKER_ERR_PARSE);
	cr_assert(strstr(tracker_error(t), "35209408723094"), "%s", tracker_error(t));
	cr_assert(strstr(tracker_error(t), "getver"), "%s", tracker_error(t));
	tracker_close(t);
}

Test(tracker, refusal_is_reported)
{
	struct script s = { .chunk = { "ERROR: unknown command\r\n" }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	char a[600];
	cr_assert_eq(tracker_command(t, "getver", a, sizeof a, 200), TRACKER_ERR_REFUSED);
	cr_assert(strstr(tracker_error(t), "ERROR: unknown command"), "%s", tracker_error(t));
	tracker_close(t);
}

/* The answers a real FMB gives (Teltonika's SMS/GPRS command documentation):
 * getinfo's RST is the restart counter, RS the reset source, RF the records
 * held; the uptime is getver's. */
#define FMB_GETINFO "INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:2 ERR:1 SR:182 BR:0 CF:0 FG:0 FL:0 UT:0 SMS:2 NOGPS:0:30 GPS:3 SAT:7 RS:3 MD:4 RF:11\r\n"
#define FMB_GETVER "Ver:03.25.14_04 GPS:AXN_5.10_3333 Hw:FMB920 Mod:13 IMEI:352094087230394 Init:2019-7-22 8:9 Uptime:17347 BL:1.10\r\n"

Test(tracker, status_reads_getstatus_and_getinfo)
{
	struct script s = {
		.chunk = { "Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: 4 NewSMS: 0 Roaming: 1 SMSFull: 0 LAC: 1 Cell ID: 3055 NetType: 2 FwUpd:-1\r\n",
			   FMB_GETINFO },
		.n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_status st;
	cr_assert_eq(tracker_status(t, &st, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(st.data_link, 1);
	cr_assert_eq(st.signal, 4);
	cr_assert_eq(st.roaming, 1);
	cr_assert_eq(st.net_type, 2);
	cr_assert_str_eq(st.operator_code, "24602");
	cr_assert_eq(st.gnss_on, 1, "GPS:3 is on with a fix");
	cr_assert_eq(st.satellites, 7);
	cr_assert_str_eq(st.power_source, "", "a real getinfo does not say it");
	tracker_close(t);
}

Test(tracker, restarts_read_the_counter_source_and_uptime)
{
	struct script s = { .chunk = { FMB_GETINFO, FMB_GETVER }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_restarts r;
	cr_assert_eq(tracker_restarts(t, &r, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(r.count, 2, "RST is the restart counter");
	cr_assert_eq(r.reset_code, 3);
	cr_assert_str_eq(r.reset_reason, "watchdog", "RS:3 is the independent watchdog");
	cr_assert_eq(r.uptime_s, 17347);
	tracker_close(t);
}

Test(tracker, empty_operator_is_not_the_next_field)
{
	struct script s = { .chunk = { "Data Link: 0 GPRS: 0 Phone: 0 SIM: 0 OP: Signal: 0 NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 0 Cell ID: 0 NetType: 1 FwUpd:-1\r\n",
				       FMB_GETINFO }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_status st;
	cr_assert_eq(tracker_status(t, &st, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(st.operator_code, "", "not registered: no operator");
	tracker_close(t);
}

Test(tracker, command_with_line_end_inside_is_refused)
{
	struct script s = { .n = 0 };
	tracker *t = open_script(&s);
	char a[64];
	cr_assert_eq(tracker_command(t, "getver\r\ncpureset", a, sizeof a, 50), TRACKER_ERR_ARG);
	cr_assert_eq(s.sends, 0, "nothing may reach the device");
	tracker_close(t);
}

Test(tracker, event_queue_keeps_newest_when_full)
{
	struct script s = { .n = 0 };
	/* Build 70 event lines into 14 chunks of 5. */
	static char chunks[14][200];
	for (int c = 0; c < 14; c++) {
		chunks[c][0] = '\0';
		for (int k = 0; k < 5; k++) {
			char line[40];
			snprintf(line, sizeof line, "@TICK n=%d\r\n", c * 5 + k);
			strcat(chunks[c], line);
		}
		s.chunk[c] = chunks[c];
	}
	s.n = 14;
	tracker *t = open_script_as(&s, "agent");
	cr_assert_eq(tracker_poll(t, 100), 64);
	cr_assert_eq(tracker_events_dropped(t), 6);
	struct tracker_event ev;
	cr_assert(tracker_next_event(t, &ev));
	cr_assert_str_eq(ev.text, "@TICK n=6");
	tracker_close(t);
}

/* ---- the faithful Teltonika parse and the agent dialect's extensions ---- */

#define STATUS_UP "Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: 5 NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 1 Cell ID: 3055 NetType: 1 FwUpd:-1\r\n"
/* A spent data cap as a real FMB shows it: registered, attached, in
 * coverage, and no data link. */
#define STATUS_REFUSED "Data Link: 0 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: 5 NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 1 Cell ID: 3055 NetType: 1 FwUpd:-1\r\n"
/* Coverage gone: not registered, no signal, not attached. */
#define STATUS_NO_COVERAGE "Data Link: 0 GPRS: 0 Phone: 0 SIM: 0 OP: Signal: 0 NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 1 Cell ID: 3055 NetType: 1 FwUpd:-1\r\n"

static enum tracker_data_session session_of(const char *proto, const char *a0, const char *a1)
{
	struct script s = { .chunk = { a0, a1 }, .n = a1 ? 2 : 1 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script_as(&s, proto);
	enum tracker_data_session ds;
	cr_assert_eq(tracker_data_session(t, &ds, 200), TRACKER_OK, "%s", tracker_error(t));
	tracker_close(t);
	return ds;
}

Test(tracker, teltonika_data_session_from_getstatus)
{
	cr_assert_eq(session_of("teltonika", STATUS_UP, NULL), TRACKER_DATA_UP);
	cr_assert_eq(session_of("teltonika", STATUS_REFUSED, NULL), TRACKER_DATA_REFUSED,
		     "registered, attached, in coverage, no link: the carrier refuses");
	cr_assert_eq(session_of("teltonika", STATUS_NO_COVERAGE, NULL), TRACKER_DATA_DOWN,
		     "no coverage is not a refusal");
}

Test(tracker, agent_data_session_reads_pdp_rejected)
{
	cr_assert_eq(session_of("agent",
				"INI:2026/1/1 0:0 RTC:2026/1/1 0:30 RST:1 ERR:0 SR:0 BR:0 CF:0 FG:0 FL:0 UT:0 SMS:0 NOGPS:0:0 "
				"GPS:3 SAT:7 RS:5 MD:0 RF:3 TTFF:30 PDP:rejected\r\n", NULL),
		     TRACKER_DATA_REFUSED);
	/* Without the extension the agent reads getstatus as Teltonika does. */
	cr_assert_eq(session_of("agent", FMB_GETINFO, STATUS_NO_COVERAGE), TRACKER_DATA_DOWN);
	cr_assert_eq(session_of("agent", FMB_GETINFO, STATUS_UP), TRACKER_DATA_UP);
}

Test(tracker, buffered_records_are_getinfo_rf)
{
	struct script s = { .chunk = { FMB_GETINFO }, .n = 1 };
	after_first_send(&s);
	tracker *t = open_script(&s);
	long n;
	cr_assert_eq(tracker_buffered(t, &n, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(n, 11, "RF is the records held in memory");
	tracker_close(t);
}

Test(tracker, teltonika_status_tells_no_ttff_agent_does)
{
	struct script s = { .chunk = { STATUS_UP, FMB_GETINFO }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	struct tracker_status st;
	cr_assert_eq(tracker_status(t, &st, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(st.ttff_s, -1, "a real FMB does not tell its TTFF");
	tracker_close(t);

	struct script a = { .chunk = { STATUS_UP,
				       "INI:2026/1/1 0:0 RTC:2026/1/1 0:30 RST:1 ERR:0 SR:0 BR:0 CF:0 FG:0 FL:0 UT:0 SMS:0 "
				       "NOGPS:0:0 GPS:3 SAT:7 RS:5 MD:0 RF:3 TTFF:28\r\n" }, .n = 2 };
	a.release_after_send[0] = 1;
	a.release_after_send[1] = 2;
	t = open_script_as(&a, "agent");
	cr_assert_eq(tracker_status(t, &st, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(st.ttff_s, 28);
	cr_assert_eq(st.gnss_on, 1);
	tracker_close(t);
}

/* RS, Teltonika's reset source: 1 low power, 2 W watchdog, 3 I watchdog,
 * 4 software, 5 power on, 6 pin; 0 the unit does not know. */
Test(tracker, reset_source_numbers_are_teltonikas)
{
	static const char *const names[] = { "", "low_power", "watchdog", "watchdog", "software", "power_on", "pin" };
	for (int rs = 0; rs <= 6; rs++) {
		char info[300];
		snprintf(info, sizeof info,
			 "INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:9 ERR:1 SR:182 BR:0 CF:0 FG:0 FL:0 UT:0 SMS:2 "
			 "NOGPS:0:30 GPS:3 SAT:7 RS:%d MD:4 RF:11\r\n", rs);
		struct script s = { .chunk = { info, FMB_GETVER }, .n = 2 };
		s.release_after_send[0] = 1;
		s.release_after_send[1] = 2;
		tracker *t = open_script(&s);
		struct tracker_restarts r;
		cr_assert_eq(tracker_restarts(t, &r, 200), TRACKER_OK, "%s", tracker_error(t));
		cr_assert_eq(r.count, 9);
		cr_assert_str_eq(r.reset_reason, names[rs], "RS:%d", rs);
		tracker_close(t);
	}
}

Test(tracker, output_set_is_setdigout)
{
	struct script s = { .chunk = { "DOUT1:1 Timeout:INFINITY DOUT2:IGNORED\r\n", "DOUT1:IGNORED DOUT2:0 Timeout:INFINITY\r\n" },
			    .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script(&s);
	cr_assert_eq(tracker_output_set(t, 1, true, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_eq(tracker_output_set(t, 2, false, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(s.sent, "setdigout 1?\r\nsetdigout ?0\r\n");
	tracker_close(t);
}

Test(tracker, agent_ota_start_accepted_deferred_refused)
{
	struct script s = { .chunk = { "FOTA:accepted\r\n", "FOTA:deferred in_service\r\n", "ERROR: update in progress\r\n" },
			    .n = 3 };
	for (int i = 0; i < 3; i++)
		s.release_after_send[i] = i + 1;
	tracker *t = open_script_as(&s, "agent");
	char detail[128];
	cr_assert_eq(tracker_ota_start(t, "http://127.0.0.1:8080/a.fw", detail, sizeof detail, 200), TRACKER_OK,
		     "%s", tracker_error(t));
	cr_assert_eq(tracker_ota_start(t, "http://127.0.0.1:8080/a.fw", detail, sizeof detail, 200), 1);
	cr_assert(strstr(detail, "in_service"), "%s", detail);
	cr_assert_eq(tracker_ota_start(t, "http://127.0.0.1:8080/a.fw", detail, sizeof detail, 200),
		     TRACKER_ERR_REFUSED);
	cr_assert(strncmp(s.sent, "fota http://127.0.0.1:8080/a.fw\r\n", 33) == 0, "%s", s.sent);
	tracker_close(t);
}

Test(tracker, agent_ota_state_reads_fota_status)
{
	struct script s = { .chunk = { "FOTA:trial bank=A pending=B bytes=4096/4096\r\n", FMB_GETINFO }, .n = 2 };
	s.release_after_send[0] = 1;
	s.release_after_send[1] = 2;
	tracker *t = open_script_as(&s, "agent");
	struct tracker_ota o;
	cr_assert_eq(tracker_ota_state(t, &o, 200), TRACKER_OK, "%s", tracker_error(t));
	cr_assert_str_eq(o.state, "trial");
	cr_assert_str_eq(o.bank, "A");
	cr_assert_str_eq(o.pending, "B");
	cr_assert_eq(o.free_kb, -1, "no Free: field, not told");
	tracker_close(t);
}

/* What each command set can do: Teltonika's has no events and no update a
 * rig can start; the agent's has both. */
Test(tracker, capabilities_of_each_command_set)
{
	const struct tracker_proto *tel = tracker_proto_find("teltonika"), *ag = tracker_proto_find("agent");
	static const char *const both[] = { "restarts", "buffered", "server", "report_period", "inputs",
					    "outputs", "in_service", "data_session", "reboot" };
	for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
		cr_expect(tracker_has(tel, both[i]), "teltonika lacks %s", both[i]);
		cr_expect(tracker_has(ag, both[i]), "agent lacks %s", both[i]);
	}
	cr_assert_not(tracker_has(tel, "events"));
	cr_assert_not(tracker_has(tel, "ota"));
	cr_assert(tracker_has(ag, "events"));
	cr_assert(tracker_has(ag, "ota"));
	cr_assert_null(tel->event_line, "a Teltonika unit prints no events");
}
