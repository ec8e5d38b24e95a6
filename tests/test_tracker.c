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

static tracker *open_script(struct script *s)
{
	tracker *t;
	cr_assert_eq(tracker_open(tracker_proto_find("teltonika"), &script_ops, s, &t), TRACKER_OK);
	return t;
}

/* Every chunk available after the first command was sent. */
static void after_first_send(struct script *s)
{
	for (int i = 0; i < s->n; i++)
		s->release_after_send[i] = 1;
}

#define GETVER "Ver:03.28.07_04 GPS:AXN_5.10_3333 Hw:FMB920 Mod:13 IMEI:352094087230394 Init:2026-11-26 8:35 Uptime:12 SN:1101234567 Rev:1.2\r\n"
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
	cr_assert_str_eq(id.serial, "1101234567");
	cr_assert_str_eq(id.hw_rev, "1.2");
	cr_assert_str_eq(s.sent, "getver\r\ngetimeiccid\r\n");
	tracker_close(t);
}

Test(tracker, events_between_answers_are_queued_not_taken_as_answers)
{
	struct script s = { .chunk = { "@BOOT bank=A reason=power_on fw=03.28.07_04\r\n", "@IGN state=on\r\n", GETVER },
			    .n = 3 };
	after_first_send(&s);
	tracker *t = open_script(&s);
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
	tracker *t = open_script(&s);
	cr_assert_eq(tracker_poll(t, 100), 64);
	cr_assert_eq(tracker_events_dropped(t), 6);
	struct tracker_event ev;
	cr_assert(tracker_next_event(t, &ev));
	cr_assert_str_eq(ev.text, "@TICK n=6");
	tracker_close(t);
}
