/*
 * test_simrack_uplink.c - simrack's telemetry uplink (docs/uplink.md) seen
 * from the server side: a tiny ingest server in the test (Teltonika login,
 * codec 8E decode, acks, codec 12) receives what a --virtual rack's device
 * sends once params 2004/2005 point it there.
 *
 * The server runs on the test's own thread and is pumped after every
 * control-socket reply: a reply comes after every byte of the events run
 * was written, so what the device sent up to `now` is already in the
 * server's socket, and an ack written before the next request is read by
 * simrack at the same rack time (its `next` does not move time while a
 * device has just said something). No timing is asserted: times checked
 * are rack (virtual) times; real-time waits only bound what is already due.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define DRAIN_MS 10000 /* rack time a backlog of an outage takes to leave the radio */
#include "teltonika_codec.h"

#define WAIT_MS 10000     /* bound for a reply that is already due */
#define QUIET_MS 15       /* the server's socket is idle this long: nothing more is coming */
#define PERIOD_MS 60000u  /* the record period the tests set (10050: parked) */
#define CELL_COIL 2       /* slot 1's cell antenna on the relay board */
#define MAX_PKTS 1024
#define MAX_RECS 8192

/* ---- what the server saw ---- */

struct pkt {
	uint64_t at;            /* rack time (ms) of the reply before it was read */
	uint8_t codec;
	size_t len;
	uint8_t raw[TLT_PACKET_MAX];
	int first, n;           /* its records in recs[] */
};

struct rec {
	int pkt;
	uint64_t ts;            /* device timestamp, Unix ms */
	uint16_t event_io;
	uint64_t ign, ext_mv, signal, gnss, moving;
	int32_t lat_e7;
};

struct conn {
	int fd;
	bool logged_in;
	size_t len;
	uint8_t buf[8192];
};

static struct {
	int lfd;
	int port;
	struct conn c[4];
	bool no_ack;            /* swallow packets without acking */
	bool wrong_ack_once;    /* ack the next packet with a wrong count */
	int logins;
	char imei[16];
	int npkts, nrecs;
	struct pkt pkts[MAX_PKTS];
	struct rec recs[MAX_RECS];
	char c12[600];          /* the last codec 12 response */
	int c12_count;
	uint64_t bytes;         /* all bytes received */
} srv;

static struct simrack_proc rack;
static int ctl_fd = -1, con_fd = -1;
static modbus_t *board;
static uint64_t now_ms;     /* the rack's time at the last control reply */
static uint64_t epoch_ms;
static uint64_t boot_ms = 5000;  /* the profile's boot time: its record phase (reference: 5 s) */

static void stop_all(void)
{
	if (board) {
		modbus_close(board);
		modbus_free(board);
		board = NULL;
	}
	for (int i = 0; i < 4; i++)
		if (srv.c[i].fd > 0)
			close(srv.c[i].fd);
	if (srv.lfd > 0)
		close(srv.lfd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	if (con_fd >= 0)
		close(con_fd);
	ctl_fd = con_fd = -1;
	if (rack.pid > 0 || rack.dir[0])
		simrack_stop(&rack);
}

TestSuite(simrack_uplink, .fini = stop_all, .timeout = 180);

/* ---- the ingest server ---- */

static void server_start(void)
{
	srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_geq(srv.lfd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(srv.lfd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(srv.lfd, 8), 0);
	socklen_t al = sizeof a;
	cr_assert_eq(getsockname(srv.lfd, (struct sockaddr *)&a, &al), 0);
	srv.port = ntohs(a.sin_port);
	for (int i = 0; i < 4; i++)
		srv.c[i].fd = -1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->logged_in = false;
}

/* Handles every complete frame in C's buffer. */
static void conn_frames(struct conn *c)
{
	size_t at = 0;
	for (;;) {
		uint8_t *b = c->buf + at;
		size_t have = c->len - at;
		char err[160];
		if (!c->logged_in) {
			size_t used;
			char imei[16];
			int rc = tlt_login_parse(b, have, imei, &used, err, sizeof err);
			if (rc == TLT_NEED_MORE)
				break;
			cr_assert_eq(rc, TLT_OK, "bad login: %s", err);
			at += used;
			c->logged_in = true;
			srv.logins++;
			strcpy(srv.imei, imei);
			uint8_t ok = 1;
			cr_assert_eq(write(c->fd, &ok, 1), 1);
			continue;
		}
		size_t total;
		int rc = tlt_packet_size(b, have, &total, err, sizeof err);
		if (rc == TLT_NEED_MORE)
			break;
		cr_assert_eq(rc, TLT_OK, "bad packet: %s", err);
		at += total;
		cr_assert_gt(total, 8);
		if (b[8] == TLT_CODEC12) {
			uint8_t type;
			int n = tlt_c12_decode(b, total, &type, srv.c12, sizeof srv.c12, err, sizeof err);
			cr_assert_geq(n, 0, "bad codec 12: %s", err);
			cr_assert_eq(type, TLT_C12_RESPONSE);
			srv.c12_count++;
			continue;
		}
		static struct tlt_record r[TLT_MAX_RECORDS];
		uint8_t codec;
		int n = tlt_avl_decode(b, total, r, TLT_MAX_RECORDS, &codec, err, sizeof err);
		cr_assert_gt(n, 0, "bad AVL packet: %s", err);
		cr_assert_lt(srv.npkts, MAX_PKTS);
		cr_assert_leq(srv.nrecs + n, MAX_RECS);
		struct pkt *p = &srv.pkts[srv.npkts];
		*p = (struct pkt){ .at = now_ms, .codec = codec, .len = total, .first = srv.nrecs, .n = n };
		memcpy(p->raw, b, total);
		for (int i = 0; i < n; i++) {
			struct rec *q = &srv.recs[srv.nrecs++];
			*q = (struct rec){ .pkt = srv.npkts, .ts = r[i].timestamp_ms, .event_io = r[i].event_io,
					   .lat_e7 = r[i].lat_e7 };
			tlt_record_io(&r[i], 239, &q->ign);
			tlt_record_io(&r[i], 66, &q->ext_mv);
			tlt_record_io(&r[i], 21, &q->signal);
			tlt_record_io(&r[i], 69, &q->gnss);
			tlt_record_io(&r[i], 240, &q->moving);
		}
		srv.npkts++;
		if (srv.no_ack)
			continue;
		uint8_t ack[4];
		put_be32(ack, srv.wrong_ack_once ? (uint32_t)n + 1 : (uint32_t)n);
		srv.wrong_ack_once = false;
		cr_assert_eq(write(c->fd, ack, 4), 4);
	}
	memmove(c->buf, c->buf + at, c->len - at);
	c->len -= at;
}

/* Serves until the sockets have been quiet for QUIET_MS. Returns how many
 * bytes arrived (0: the device said nothing). */
static uint64_t pump(void)
{
	uint64_t before = srv.bytes;
	int accepted = 0;
	for (;;) {
		struct pollfd pf[5];
		int n = 0;
		pf[n++] = (struct pollfd){ .fd = srv.lfd, .events = POLLIN };
		for (int i = 0; i < 4; i++)
			if (srv.c[i].fd >= 0)
				pf[n++] = (struct pollfd){ .fd = srv.c[i].fd, .events = POLLIN };
		if (poll(pf, (nfds_t)n, QUIET_MS) <= 0)
			break;
		if (pf[0].revents & POLLIN) {
			int s = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
			if (s >= 0) {
				int i = 0;
				while (i < 4 && srv.c[i].fd >= 0)
					i++;
				cr_assert_lt(i, 4, "more than 4 connections at once");
				srv.c[i] = (struct conn){ .fd = s };
				accepted++;
			}
		}
		for (int i = 0; i < 4; i++) {
			struct conn *c = &srv.c[i];
			if (c->fd < 0)
				continue;
			struct pollfd q = { .fd = c->fd, .events = POLLIN };
			if (poll(&q, 1, 0) != 1)
				continue;
			ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
			if (r <= 0) {
				conn_close(c);   /* the device dropped the link */
				continue;
			}
			c->len += (size_t)r;
			srv.bytes += (uint64_t)r;
			conn_frames(c);
		}
	}
	return srv.bytes - before + (uint64_t)accepted;
}

/* Sends a codec 12 command on the device's (only) connection. */
static void server_command(const char *text)
{
	uint8_t out[600];
	int n = tlt_c12_encode(TLT_C12_COMMAND, text, strlen(text), out, sizeof out);
	cr_assert_gt(n, 0);
	int k = 0;
	while (k < 4 && srv.c[k].fd < 0)
		k++;
	cr_assert_lt(k, 4, "no device connected");
	cr_assert_eq(write(srv.c[k].fd, out, (size_t)n), n);
}

/* ---- the rack ---- */

static char *rack_yaml(void)
{
	char path[PATH_MAX + 16];
	char *yaml = support_read_file(simrack_rackfile(&rack, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	return yaml;
}

/* The quoted value after KEY in slot SLOT's part of rack.yaml. */
static void slot_value(int slot, const char *key, char *buf, size_t len)
{
	char *yaml = rack_yaml();
	char head[32];
	snprintf(head, sizeof head, "  - id: %d\n", slot);
	const char *s = strstr(yaml, head);
	const char *v = s ? strstr(s, key) : NULL;
	size_t n = v ? strcspn(v + strlen(key), "\",}\n") : 0;
	if (v && n < len) {
		memcpy(buf, v + strlen(key), n);
		buf[n] = '\0';
	}
	free(yaml);
	cr_assert_not_null(v, "no %s for slot %d", key, slot);
	cr_assert_lt(n, len);
}

static const char *ctl(const char *req) { return support_ctl(ctl_fd, req); }

static uint64_t ctl_move(const char *verb, uint64_t t) { return now_ms = support_ctl_move(ctl_fd, verb, t); }

/* Moves rack time to T event by event, serving the device on the way,
 * until at T nothing more is said. */
static void run_to(uint64_t t)
{
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t at = ctl_move("next", t);
		uint64_t got = pump();
		if (at == t && !got)
			return;
	}
	cr_assert_fail("the rack never settled at %" PRIu64, t);
}

static void console_cmd(const char *cmd, char *buf, size_t len)
{
	cr_assert_geq(support_tty_command(con_fd, cmd, buf, len, WAIT_MS, true), 0, "no answer to '%s'",
		      cmd);
}

static void board_connect(void)
{
	char *yaml = rack_yaml();
	static const char key[] = "  - name: relays\n    driver: coil\n    transport: \"tcp://127.0.0.1:";
	const char *at = strstr(yaml, key);
	int port = at ? atoi(at + strlen(key)) : 0;
	free(yaml);
	cr_assert_gt(port, 0, "no relay board in rack.yaml");
	board = modbus_new_tcp("127.0.0.1", port);
	cr_assert_not_null(board);
	modbus_set_slave(board, 1);
	cr_assert_eq(modbus_connect(board), 0, "modbus connect: %s", modbus_strerror(errno));
}

/* The relay write is handled when it arrives, at the rack's current time. */
static void coil(int addr, bool on)
{
	cr_assert_eq(modbus_write_bit(board, addr, on), 1, "write coil %d: %s", addr,
		     modbus_strerror(errno));
}

/* A virtual rack of SLOTS slots (ARGS extra), slot 1 booted, pointed at the
 * test's server with a 60 s parked period. Returns the time it was set up. */
static uint64_t setup(int slots, const char *const *args, bool point)
{
	const char *extra[12] = { "--virtual" };
	size_t n = 1;
	for (; args && *args && n < 11; args++)
		extra[n++] = *args;
	extra[n] = NULL;
	cr_assert_eq(simrack_start_args(&rack, slots, 7, extra), 0);
	server_start();
	char path[PATH_MAX + 32];
	ctl_fd = simrack_control(&rack);
	const char *m = ctl("mode");
	const char *e = strstr(m, "epoch=");
	cr_assert_not_null(e, "%s", m);
	epoch_ms = strtoull(e + 6, NULL, 10);
	con_fd = support_tty_open(simrack_console(&rack, 1, path, sizeof path));
	cr_assert_geq(con_fd, 0);
	uint64_t up = boot_ms + 700;
	ctl_move("advance", up);
	char line[600];
	/* An agent unit says it booted; a Teltonika unit says nothing and answers. */
	if (support_tty_expect(con_fd, "@BOOT", line, sizeof line, 300) < 0) {
		console_cmd("getver", line, sizeof line);
		cr_assert_eq(strncmp(line, "Ver:", 4), 0, "not booted at %" PRIu64 " ms: '%s'", up, line);
	}
	board_connect();
	console_cmd("setparam 10050:60", line, sizeof line);
	cr_assert_str_eq(line, "New value 10050:60;");
	if (point) {
		char cmd[64];
		console_cmd("setparam 2004:127.0.0.1", line, sizeof line);
		snprintf(cmd, sizeof cmd, "setparam 2005:%d", srv.port);
		console_cmd(cmd, line, sizeof line);
	}
	run_to(up);
	return up;
}

/* Records with timestamp TS received so far. */
static int times_received(uint64_t ts)
{
	int k = 0;
	for (int i = 0; i < srv.nrecs; i++)
		k += srv.recs[i].ts == ts;
	return k;
}

/* Periodic record times (Unix ms) a device booted at BOOT_MS makes in
 * (FROM, TO] of rack time. */
static int periodic_between(uint64_t boot_ms, uint64_t from, uint64_t to, uint64_t *out, int cap)
{
	int n = 0;
	for (uint64_t t = boot_ms + PERIOD_MS; t <= to; t += PERIOD_MS)
		if (t > from) {
			cr_assert_lt(n, cap);
			out[n++] = epoch_ms + t;
		}
	return n;
}

/* ---- tests ---- */

Test(simrack_uplink, logs_in_and_sends_a_record_every_period)
{
	setup(1, NULL, true);
	char imei[32];
	slot_value(1, "expect: {imei: \"", imei, sizeof imei);
	cr_assert_eq(srv.logins, 1, "no login after pointing the device at the server");
	cr_assert_str_eq(srv.imei, imei);
	run_to(boot_ms + 10 * 60000 + 1000);
	/* Booted at 5 s: records at 65 s, 125 s, ... each sent as made. */
	cr_assert_geq(srv.nrecs, 10, "%d records in 10 min at a 60 s period", srv.nrecs);
	for (int i = 0; i < srv.nrecs; i++) {
		const struct rec *r = &srv.recs[i];
		const struct pkt *p = &srv.pkts[r->pkt];
		cr_expect_eq(r->ts, epoch_ms + p->at, "record %d: timestamp %" PRIu64 " sent at rack time %" PRIu64,
			     i, r->ts - epoch_ms, p->at);
		cr_expect_eq((r->ts - epoch_ms) % PERIOD_MS, boot_ms, "record %d at %" PRIu64, i, r->ts - epoch_ms);
		cr_expect_eq(p->codec, TLT_CODEC8E);
		cr_expect_eq(r->ign, 0u);
		cr_expect_eq(r->moving, 0u);
		cr_expect_eq(r->ext_mv, 12000u);
		cr_expect_eq(r->signal, 5u);
		cr_expect_eq(r->gnss, 1u);
		cr_expect(r->lat_e7 > 546800000 && r->lat_e7 < 546830000, "lat %d", r->lat_e7);
		if (i)
			cr_expect_eq(r->ts - srv.recs[i - 1].ts, PERIOD_MS);
	}
	/* Ignition on: an event record (IO 239) at once, then the moving period. */
	int before = srv.nrecs;
	coil(0, true);
	run_to(now_ms);
	cr_assert_eq(srv.nrecs, before + 1, "no event record on ignition on");
	cr_expect_eq(srv.recs[before].event_io, 239);
	cr_expect_eq(srv.recs[before].ign, 1u);
	cr_expect_eq(srv.recs[before].ts, epoch_ms + now_ms);
}

/* Slot 1's cell antenna off for 30 min: no packets, not registered; back
 * on: the backlog arrives in order, each record once, original times.
 * Returns the record times made during the outage. */
static int outage(uint64_t *made, int cap, uint64_t *off_at, uint64_t *on_at)
{
	run_to(5 * 60000 + 1000);
	cr_assert_geq(srv.nrecs, 4, "no live records before the outage");
	coil(CELL_COIL, false);
	*off_at = now_ms;
	char line[600];
	console_cmd("getstatus", line, sizeof line);
	cr_expect(strstr(line, "Data Link: 0 GPRS: 0 ") == line, "%s", line);
	cr_expect(strstr(line, " OP:  Signal: 0 "), "not deregistered: %s", line);
	int pkts = srv.npkts;
	run_to(*off_at + 30 * 60000);
	cr_assert_eq(srv.npkts, pkts, "packets arrived without coverage");
	int n = periodic_between(boot_ms, *off_at, now_ms, made, cap);
	cr_assert_eq(n, 30);
	/* The unit's own count of records held (getinfo RF): the outage's,
	 * or fewer when its buffer is smaller. */
	console_cmd("getinfo", line, sizeof line);
	const char *rf = strstr(line, " RF:");
	cr_expect(rf && atol(rf + 4) > 0 && atol(rf + 4) <= n, "%s", line);
	coil(CELL_COIL, true);
	*on_at = now_ms;
	/* The radio pushes the backlog out packet by packet (about 20 kbit/s):
	 * give it the seconds of rack time that takes. */
	run_to(now_ms + DRAIN_MS);
	console_cmd("getstatus", line, sizeof line);
	cr_expect(strstr(line, "Data Link: 1 GPRS: 1 ") == line, "%s", line);
	cr_expect(strstr(line, " OP: 24602 Signal: 5 "), "%s", line);
	return n;
}

Test(simrack_uplink, coverage_loss_buffers_then_flushes_the_backlog)
{
	setup(1, NULL, true);
	uint64_t made[64], off, on;
	int first_pkt = srv.npkts;
	int n = outage(made, 64, &off, &on);
	(void)first_pkt;
	cr_assert_geq(srv.logins, 2, "no new login after coverage returned");
	int last = -1, backlog_pkts = 0;
	for (int i = 0; i < srv.npkts; i++) {
		cr_expect_leq(srv.pkts[i].len, (size_t)TLT_PACKET_MAX);
		backlog_pkts += srv.pkts[i].at >= on && srv.pkts[i].at < on + DRAIN_MS;
	}
	cr_expect_geq(backlog_pkts, 2, "30 records fit one 1280-byte packet?");
	for (int k = 0; k < n; k++) {
		cr_expect_eq(times_received(made[k]), 1, "record of %" PRIu64 " arrived %d times", made[k] - epoch_ms,
			     times_received(made[k]));
		for (int i = 0; i < srv.nrecs; i++)
			if (srv.recs[i].ts == made[k]) {
				cr_expect_gt(i, last, "backlog out of order at %" PRIu64, made[k] - epoch_ms);
				last = i;
				cr_expect(srv.pkts[srv.recs[i].pkt].at >= on && srv.pkts[srv.recs[i].pkt].at < on + DRAIN_MS,
					  "sent at %" PRIu64 ", coverage back at %" PRIu64, srv.pkts[srv.recs[i].pkt].at, on);
			}
	}
}

Test(simrack_uplink, unacked_packet_is_sent_again)
{
	setup(1, NULL, true);
	srv.no_ack = true;
	const uint64_t first = boot_ms + 60000;   /* the first record */
	run_to(first);
	cr_assert_eq(srv.npkts, 1, "no first record at %" PRIu64 " ms", first);
	run_to(first + 29000);
	cr_expect_eq(srv.npkts, 1, "resent before the open-link timeout");
	run_to(first + 31000);
	cr_assert_eq(srv.npkts, 2, "not resent after the open-link timeout");
	cr_expect_eq(srv.pkts[1].len, srv.pkts[0].len);
	cr_expect_eq(memcmp(srv.pkts[1].raw, srv.pkts[0].raw, srv.pkts[0].len), 0, "resend differs");
	cr_expect_eq(srv.pkts[1].at, first + 30000);
	/* Acks again; a wrong count is answered by sending it again at once. */
	srv.no_ack = false;
	srv.wrong_ack_once = true;
	run_to(first + 61000);
	cr_assert_geq(srv.npkts, 4);
	cr_expect_eq(memcmp(srv.pkts[2].raw, srv.pkts[0].raw, srv.pkts[0].len), 0);
	cr_expect_eq(srv.pkts[3].at, srv.pkts[2].at, "no immediate resend after a wrong ack");
	cr_expect_eq(memcmp(srv.pkts[3].raw, srv.pkts[0].raw, srv.pkts[0].len), 0);
}

Test(simrack_uplink, codec12_answers_like_the_console)
{
	setup(1, NULL, true);
	run_to(120300);
	char want[600];
	console_cmd("getver", want, sizeof want);
	cr_assert_eq(strncmp(want, "Ver:", 4), 0, "%s", want);
	server_command("getver");
	run_to(now_ms);
	cr_assert_eq(srv.c12_count, 1, "no codec 12 response");
	cr_expect_str_eq(srv.c12, want);
	server_command("getparam 2005");
	run_to(now_ms);
	char port[64];
	snprintf(port, sizeof port, "Param ID:2005 Value:%d", srv.port);
	cr_expect_str_eq(srv.c12, port);
}

/* A command frame that arrives whole but with a wrong CRC is ignored, as
 * an FMB ignores it: no answer, no dropped link; the next good command is
 * answered on the same link. (A stream that cannot be framed at all, e.g.
 * a bad preamble, closes the link and the unit reconnects after its
 * open-link timeout.) */
Test(simrack_uplink, codec12_bad_crc_command_is_ignored)
{
	setup(1, NULL, true);
	run_to(120300);
	uint8_t out[600];
	int n = tlt_c12_encode(TLT_C12_COMMAND, "getver", 6, out, sizeof out);
	cr_assert_gt(n, 0);
	out[n - 1] ^= 0x5A;
	int k = 0;
	while (k < 4 && srv.c[k].fd < 0)
		k++;
	cr_assert_lt(k, 4, "no device connected");
	cr_assert_eq(write(srv.c[k].fd, out, (size_t)n), n);
	int logins = srv.logins;
	run_to(now_ms + 1000);
	cr_expect_eq(srv.c12_count, 0, "answered a command with a bad CRC: '%s'", srv.c12);
	cr_expect_geq(srv.c[k].fd, 0, "the link was dropped");
	server_command("getver");
	run_to(now_ms);
	cr_expect_eq(srv.c12_count, 1, "no answer to the good command after the bad one");
	cr_expect_eq(strncmp(srv.c12, "Ver:", 4), 0, "%s", srv.c12);
	cr_expect_eq(srv.logins, logins, "the unit logged in again");
}

/* A spent SIM data cap: the carrier refuses the data session. Every unit
 * shows it as a real FMB does (registered, attached, in coverage, Data
 * Link 0); an agent unit also says PDP:rejected, a Teltonika unit never. */
static void datacap(bool agent)
{
	setup(1, agent ? (const char *const[]){ "--profiles", "agent_reference", NULL } : NULL, true);
	run_to(boot_ms + 60000);
	cr_assert_eq(srv.nrecs, 1);
	const char *r = ctl("datacap 1 600 86400");
	cr_assert_eq(strncmp(r, "ok", 2), 0, "%s", r);
	cr_expect_eq(strncmp(ctl("datacap 9 600 60"), "error:", 6), 0);
	cr_expect_eq(strncmp(ctl("datacap 1 x 60"), "error:", 6), 0);
	uint64_t before = srv.bytes;
	run_to(boot_ms + 60000 + 30 * 60000);
	char line[600];
	console_cmd("getinfo", line, sizeof line);
	if (agent)
		cr_expect(strstr(line, " PDP:rejected"), "%s", line);
	else
		cr_expect_null(strstr(line, "PDP"), "a real FMB does not say: %s", line);
	console_cmd("getstatus", line, sizeof line);
	cr_expect(strstr(line, "Data Link: 0 GPRS: 1 ") == line, "attached, no session: %s", line);
	cr_expect(strstr(line, " OP: 24602 Signal: 5 "), "deregistered: %s", line);
	cr_expect(strstr(line, "FwUpd:-1"), "%s", line);
	cr_expect_lt(srv.bytes - before, 600u + TLT_PACKET_MAX, "%" PRIu64 " bytes past a 600-byte cap",
		     srv.bytes - before);
	/* Silent from then on. */
	uint64_t silent = srv.bytes;
	int recs = srv.nrecs;
	cr_expect_lt(recs, 30, "every record went through a 600-byte cap");
	run_to(now_ms + 10 * 60000);
	cr_expect_eq(srv.bytes, silent, "uplink not silent with the session refused");
	/* Cap lifted: the session comes back and the backlog goes out. */
	r = ctl("datacap 1 off");
	cr_assert_eq(strncmp(r, "ok", 2), 0, "%s", r);
	run_to(now_ms);
	console_cmd("getinfo", line, sizeof line);
	cr_expect(!strstr(line, "PDP:rejected"), "%s", line);
	console_cmd("getstatus", line, sizeof line);
	cr_expect(strstr(line, "Data Link: 1 GPRS: 1 ") == line, "%s", line);
	cr_expect_gt(srv.nrecs, recs + 10, "no backlog after the cap was lifted");
}

Test(simrack_uplink, datacap_rejects_the_data_session)
{
	datacap(false);
}

Test(simrack_uplink, datacap_agent_says_pdp_rejected)
{
	boot_ms = 300;   /* agent_reference */
	datacap(true);
}

/* A profile that flushes newest first, 10 records a packet (presents as
 * Acme AT-300): the backlog arrives newest first, each record once. */
Test(simrack_uplink, newest_first_profile_sends_the_backlog_newest_first)
{
	const char *args[] = { "--profiles", "no_reset_reason", NULL };
	boot_ms = 400;
	setup(1, args, true);
	uint64_t made[64], off, on;
	int n = outage(made, 64, &off, &on);
	int prev = INT32_MAX;
	for (int k = 0; k < n; k++) {
		cr_expect_eq(times_received(made[k]), 1, "record of %" PRIu64 " arrived %d times",
			     made[k] - epoch_ms, times_received(made[k]));
		for (int i = 0; i < srv.nrecs; i++)
			if (srv.recs[i].ts == made[k]) {
				cr_expect_lt(i, prev, "an older record arrived after a newer one");
				prev = i;
			}
	}
	for (int i = 0; i < srv.npkts; i++)
		cr_expect_leq(srv.pkts[i].n, 10, "packet %d holds %d records", i, srv.pkts[i].n);
	char *yaml = rack_yaml();
	cr_expect_not_null(strstr(yaml, "flush_order: newest_first"), "the datasheet says newest first: %s", yaml);
	free(yaml);
}

/* What the server got (rack time of arrival, bytes of every packet),
 * hashed (FNV-1a). */
static uint64_t wire_digest(void)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < srv.npkts; i++) {
		const struct pkt *p = &srv.pkts[i];
		uint8_t at[8];
		for (int b = 0; b < 8; b++)
			at[b] = (uint8_t)(p->at >> (8 * b));
		for (int b = 0; b < 8; b++)
			h = (h ^ at[b]) * 1099511628211ull;
		for (size_t b = 0; b < p->len; b++)
			h = (h ^ p->raw[b]) * 1099511628211ull;
	}
	return h;
}

/* Equal seeds and equal inputs on a virtual rack: the same bytes at the
 * same rack times, outage and backlog included. */
Test(simrack_uplink, virtual_runs_are_repeatable_on_the_wire)
{
	uint64_t digest[2];
	int pkts[2];
	for (int run = 0; run < 2; run++) {
		setup(1, NULL, true);
		uint64_t made[64], off, on;
		outage(made, 64, &off, &on);
		run_to(now_ms + 5 * 60000);
		digest[run] = wire_digest();
		pkts[run] = srv.npkts;
		stop_all();
		memset(&srv, 0, sizeof srv);
		memset(&rack, 0, sizeof rack);
	}
	cr_assert_gt(pkts[0], 10);
	cr_expect_eq(pkts[0], pkts[1]);
	cr_expect_eq(digest[0], digest[1], "two equal runs differ on the wire");
}

/* ---- defective profiles: each shows its defect on the wire ---- */

static void defect_run(const char *profile, uint64_t *made, int *n, uint64_t *off, uint64_t *on)
{
	const char *args[] = { "--profiles", profile, NULL };
	boot_ms = 400;   /* the Acme clones */
	setup(1, args, true);
	*n = outage(made, 64, off, on);
	run_to(now_ms + 5 * 60000);
}

Test(simrack_uplink, flush_drops_loses_records)
{
	uint64_t made[64], off, on;
	int n;
	defect_run("flush_drops", made, &n, &off, &on);
	int missing = 0;
	for (int k = 0; k < n; k++)
		missing += times_received(made[k]) == 0;
	cr_expect_gt(missing, 0, "every buffered record arrived");
	cr_expect_lt(missing, n, "nothing arrived");
}

Test(simrack_uplink, flush_rewrites_time_stamps_the_backlog_with_send_time)
{
	uint64_t made[64], off, on;
	int n;
	defect_run("flush_rewrites_time", made, &n, &off, &on);
	int at_on = 0;
	for (int i = 0; i < srv.nrecs; i++)
		if (srv.pkts[srv.recs[i].pkt].at >= on && srv.pkts[srv.recs[i].pkt].at < on + DRAIN_MS) {
			at_on++;
			cr_expect_eq(srv.recs[i].ts, epoch_ms + srv.pkts[srv.recs[i].pkt].at,
				     "backlog record keeps its time %" PRIu64, srv.recs[i].ts - epoch_ms);
		}
	cr_expect_geq(at_on, n, "backlog of %d, %d records at %" PRIu64, n, at_on, on);
	for (int k = 0; k < n; k++)
		cr_expect_eq(times_received(made[k]), 0);
}

Test(simrack_uplink, flush_duplicates_sends_packets_twice)
{
	uint64_t made[64], off, on;
	int n;
	defect_run("flush_duplicates", made, &n, &off, &on);
	int dups = 0;
	for (int i = 1; i < srv.npkts; i++)
		for (int j = 0; j < i; j++)
			if (srv.pkts[i].len == srv.pkts[j].len &&
			    memcmp(srv.pkts[i].raw, srv.pkts[j].raw, srv.pkts[i].len) == 0) {
				dups++;
				break;
			}
	cr_expect_gt(dups, 0, "no packet repeated in %d", srv.npkts);
	/* Still every record got through. */
	for (int k = 0; k < n; k++)
		cr_expect_geq(times_received(made[k]), 1);
}

Test(simrack_uplink, small_buffer_loses_the_oldest_of_a_long_outage)
{
	uint64_t made[64], off, on;
	int n;
	defect_run("small_buffer", made, &n, &off, &on);
	int got = 0;
	for (int k = 0; k < n; k++)
		got += times_received(made[k]) == 1;
	cr_expect_lt(got, n, "a 30-record backlog survived");
	cr_expect_gt(got, 0);
	cr_expect_eq(times_received(made[n - 1]), 1, "the newest record was lost");
	cr_expect_eq(times_received(made[0]), 0, "the oldest record survived");
}

Test(simrack_uplink, flush_mix_and_declared_rack_file)
{
	const char *args[] = { "--mix", "flush", NULL };
	setup(8, args, false);
	char *yaml = rack_yaml();
	static const char *const models[] = { "FMB920", "FMB920", "AT-400", "AT-500",
					      "FMB920", "AT-600", "AT-700", "FMB920" };
	for (int k = 1; k <= 8; k++) {
		char head[32], model[64];
		snprintf(head, sizeof head, "  - id: %d\n", k);
		snprintf(model, sizeof model, "    model: %s\n", models[k - 1]);
		const char *s = strstr(yaml, head);
		cr_assert_not_null(s, "no slot %d", k);
		const char *next = strstr(s + 1, "  - id: ");
		const char *m = strstr(s, model);
		cr_expect(m && (!next || m < next), "slot %d is not %s", k, models[k - 1]);
		/* The reference FMB920's published figures; Acme's clones' own. */
		const char *d = strstr(s, models[k - 1][0] == 'F' && k != 8
					  ? "    declared: {buffer_records: 422400, flush_order: oldest_first, "
					    "record_period_s: 60, ttff_cold_s: 35, ttff_warm_s: 1}\n"
					  : "    declared: {buffer_records: 2000, flush_order: oldest_first, "
					    "record_period_s: 60, ttff_cold_s: 35, ttff_warm_s: 5}\n");
		cr_expect(d && (!next || d < next), "slot %d: no declared: line", k);
	}
	cr_expect_null(strstr(yaml, "flush_drops"), "a profile name in rack.yaml");
	cr_expect_null(strstr(yaml, "small_buffer"), "a profile name in rack.yaml");
	free(yaml);
}

Test(simrack_uplink, no_connection_without_a_server)
{
	setup(1, NULL, false);
	char *yaml = rack_yaml();
	cr_expect_not_null(strstr(yaml, "declared: {buffer_records:"), "the datasheet figures: %s", yaml);
	free(yaml);
	/* No server set: the device never connects. */
	run_to(3 * 60000);
	cr_expect_eq(srv.logins, 0);
}
