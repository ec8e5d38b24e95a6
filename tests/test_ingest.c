/*
 * test_ingest.c - the telemetry ingest server (rig/ingest.c) and `rig serve`,
 * driven over real loopback sockets by plain-socket "devices".
 *
 * Each test starts its own server on a free port (port 0) with its own
 * store in its own temp dir, so Criterion may run them in parallel. What was
 * stored is read back through a separate raw SQLite connection: the server
 * commits before it acks, so once a test holds the ack the row is there.
 * Timeouts only bound waits; nothing asserts how long anything took.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "ingest.h"
#include "support.h"
#include "teltonika_codec.h"
#include "tracker.h"

#define IMEI_A "356307042441013"
#define IMEI_B "356307042441021"
#define IMEI_STRANGER "352094080000001"
#define WAIT_MS 10000

/* Official vectors (shared/notes/hardware-facts.md). */
static const char VEC8_1[] =
	"000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
static const char VEC8_2[] =
	"000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C";
static const char VEC8E_1[] =
	"000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994";

static const char *backlog_imeis[8] = {
	"356307042441101", "356307042441102", "356307042441103", "356307042441104",
	"356307042441105", "356307042441106", "356307042441107", "356307042441108",
};

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 32];
static ingest *ing;

/* ---- fixture ---- */

static void start_server_opts(struct ingest_opts *o)
{
	static const char *allow[10];
	allow[0] = IMEI_A;
	allow[1] = IMEI_B;
	for (int i = 0; i < 8; i++)
		allow[2 + i] = backlog_imeis[i];
	o->host = "127.0.0.1";
	o->port = 0;
	o->db_path = db_path;
	o->allow = allow;
	o->n_allow = 10;
	char err[512];
	cr_assert_eq(ingest_start(o, &ing, err, sizeof err), 0, "ingest_start: %s", err);
	cr_assert_gt(ingest_port(ing), 0);
}

static void start_server(void)
{
	struct ingest_opts o = { .login_timeout_ms = 3000, .packet_timeout_ms = 1500, .idle_timeout_ms = 60000 };
	start_server_opts(&o);
}

static void setup(void)
{
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	snprintf(db_path, sizeof db_path, "%s/trackrig.db", dir);
	ing = NULL;
}

static void teardown(void)
{
	ingest_stop(ing);
	ing = NULL;
	support_rmtree(dir);
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 120);

/* ---- a plain-socket device ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	cr_assert_leq(n, cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static int dev_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
	return fd;
}

static void send_all(int fd, const void *buf, size_t n)
{
	cr_assert_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n, "send: %s", strerror(errno));
}

/* Reads exactly N bytes within WAIT_MS. Returns N, 0 on EOF/reset, -1 on timeout. */
static int recv_exact(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return (int)n;
}

/* Logs in; returns the server's answer byte, or -1 when none came. */
static int dev_login(int fd, const char *imei)
{
	uint8_t buf[40], ans;
	size_t n = tlt_login_encode(imei, buf, sizeof buf);
	cr_assert_gt(n, 0);
	send_all(fd, buf, n);
	return recv_exact(fd, &ans, 1, WAIT_MS) == 1 ? ans : -1;
}

static int dev_open(int port, const char *imei)
{
	int fd = dev_connect(port);
	cr_assert_eq(dev_login(fd, imei), 1, "login of %s not accepted", imei);
	return fd;
}

/* Sends a packet and returns the acked count, or -1 when no ack came. */
static long dev_packet(int fd, const uint8_t *pkt, size_t n)
{
	uint8_t ack[4];
	send_all(fd, pkt, n);
	if (recv_exact(fd, ack, 4, WAIT_MS) != 4)
		return -1;
	return (long)ack[0] << 24 | (long)ack[1] << 16 | (long)ack[2] << 8 | ack[3];
}

static long dev_hex(int fd, const char *hex)
{
	uint8_t pkt[1400];
	size_t n = unhex(hex, pkt, sizeof pkt);
	return dev_packet(fd, pkt, n);
}

/* True when the server closed FD (EOF or reset) within WAIT_MS. */
static bool dev_closed(int fd)
{
	uint8_t b[256];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, WAIT_MS) <= 0)
			return false;
		ssize_t r = recv(fd, b, sizeof b, 0);
		if (r <= 0)
			return true;
	}
}

static void fill_record(struct tlt_record *r, uint64_t ts, int k)
{
	memset(r, 0, sizeof *r);
	r->timestamp_ms = ts;
	r->priority = 0;
	r->lat_e7 = 546870000 + k;
	r->lon_e7 = 253000000 - k;
	r->altitude_m = 120;
	r->angle = (uint16_t)(k % 360);
	r->satellites = 9;
	r->speed_kmh = (uint16_t)(k % 90);
	r->event_io = 0;
	r->n_io = 3;
	r->io[0] = (struct tlt_io){ .id = 239, .size = 1, .value = 1 };
	r->io[1] = (struct tlt_io){ .id = 66, .size = 2, .value = 12800 };
	r->io[2] = (struct tlt_io){ .id = 21, .size = 1, .value = 4 };
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One good 8E record at TS from a device: acked 1. */
static void dev_good(int fd, uint64_t ts)
{
	struct tlt_record r;
	uint8_t pkt[TLT_PACKET_MAX];
	fill_record(&r, ts, (int)(ts % 1000));
	int n = tlt_avl_encode(TLT_CODEC8E, &r, 1, pkt, sizeof pkt);
	cr_assert_gt(n, 0);
	cr_assert_eq(dev_packet(fd, pkt, (size_t)n), 1, "good packet not acked with 1");
}

/* ---- reading the store ---- */

static sqlite3 *raw_open(void)
{
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static long long q_int(const char *sql, const char *arg)
{
	sqlite3 *db = raw_open();
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void q_text(const char *sql, const char *arg, char *out, size_t len)
{
	sqlite3 *db = raw_open();
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
	const unsigned char *t = sqlite3_column_text(st, 0);
	snprintf(out, len, "%s", t ? (const char *)t : "(null)");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static long long records_of(const char *imei)
{
	return q_int("SELECT count(*) FROM records WHERE imei = ?1", imei);
}

/* ---- the official vectors ---- */

Test(ingest, official_vectors_acked_and_stored_field_by_field)
{
	start_server();
	int fd = dev_open(ingest_port(ing), IMEI_A);
	cr_expect_eq(dev_hex(fd, VEC8_1), 1);
	cr_expect_eq(dev_hex(fd, VEC8_2), 2);
	cr_expect_eq(dev_hex(fd, VEC8E_1), 1);
	close(fd);
	cr_assert_eq(records_of(IMEI_A), 4);

	char s[512];
	/* codec 8, 1 record: 2019-06-10T10:04:46Z, priority 1, IO 21=3 1=1 66=24079 241=24602 78=0 */
	long long ts1 = 0x16B40D8EA30LL;
	char arg[32];
	snprintf(arg, sizeof arg, "%lld", ts1);
	cr_expect_eq(q_int("SELECT count(*) FROM records WHERE ts_ms = ?1 AND priority = 1 AND lat_e7 = 0"
			   " AND lon_e7 = 0 AND altitude = 0 AND angle = 0 AND satellites = 0 AND speed = 0"
			   " AND event_io = 1 AND packet_seq = 1 AND run_id IS NULL", arg), 1);
	q_text("SELECT ts_device FROM records WHERE ts_ms = ?1", arg, s, sizeof s);
	cr_expect_str_eq(s, "2019-06-10T10:04:46.000Z");
	q_text("SELECT io FROM records WHERE ts_ms = ?1", arg, s, sizeof s);
	cr_expect_str_eq(s, "{\"21\":3,\"1\":1,\"66\":24079,\"241\":24602,\"78\":0}");
	/* Arrival is now, on the rig's clock: the 2019 record is late. */
	cr_expect_eq(q_int("SELECT late FROM records WHERE ts_ms = ?1", arg), 1);
	cr_expect_eq(q_int("SELECT out_of_order FROM records WHERE ts_ms = ?1", arg), 0);
	cr_expect_eq(q_int("SELECT arrival_ms > ts_ms + 120000 AND arrival LIKE '20%Z' FROM records WHERE ts_ms = ?1", arg), 1);

	/* codec 8, 2 records: older than the first packet's, so out of order. */
	cr_expect_eq(q_int("SELECT count(*) FROM records WHERE packet_seq = 2 AND out_of_order = 1 AND priority = 1"
			   " AND ts_ms IN (1560160861000, 1560160879000)", NULL), 2);
	q_text("SELECT group_concat(io, ' ') FROM (SELECT io FROM records WHERE packet_seq = 2 ORDER BY ts_ms)", NULL,
	       s, sizeof s);
	cr_expect_str_eq(s, "{\"1\":0} {\"1\":1}");

	/* codec 8E, 1 record: IO 1=1 17=29 16=22949000 11=893700218 14=500686954 */
	q_text("SELECT io FROM records WHERE packet_seq = 3", NULL, s, sizeof s);
	cr_expect_str_eq(s, "{\"1\":1,\"17\":29,\"16\":22949000,\"11\":893700218,\"14\":500686954}");
	cr_expect_eq(q_int("SELECT ts_ms FROM records WHERE packet_seq = 3", NULL), 0x16B412CEE00LL);

	/* Data usage counts every byte each way: login 17 + packets up,
	 * accept 1 + three 4-byte acks down. */
	size_t up = 17 + strlen(VEC8_1) / 2 + strlen(VEC8_2) / 2 + strlen(VEC8E_1) / 2;
	struct ingest_device_stats st[16];
	size_t n = ingest_stats(ing, st, 16);
	bool found = false;
	for (size_t i = 0; i < n && i < 16; i++)
		if (strcmp(st[i].imei, IMEI_A) == 0) {
			found = true;
			cr_expect_eq(st[i].records, 4);
			cr_expect_eq(st[i].packets, 3);
			cr_expect_eq(st[i].bytes_up, up);
			cr_expect_eq(st[i].bytes_down, 13);
			cr_expect_eq(st[i].out_of_order, 2);
			cr_expect_eq(st[i].late, 4);
		}
	cr_expect(found);
	ingest_stop(ing);
	ing = NULL;
	cr_expect_eq(q_int("SELECT bytes_up FROM uplink_usage WHERE imei = ?1", IMEI_A), (long long)up);
	cr_expect_eq(q_int("SELECT records FROM uplink_usage WHERE imei = ?1", IMEI_A), 4);
}

Test(ingest, stranger_imei_refused_and_nothing_stored)
{
	start_server();
	int fd = dev_connect(ingest_port(ing));
	cr_assert_eq(dev_login(fd, IMEI_STRANGER), 0, "a stranger's login must get 00");
	cr_expect(dev_closed(fd), "a refused device must be disconnected");
	close(fd);
	/* A good device right after is still served. */
	int good = dev_open(ingest_port(ing), IMEI_B);
	dev_good(good, (uint64_t)wall_ms());
	close(good);
	cr_expect_eq(records_of(IMEI_STRANGER), 0);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE source = 'ingest' AND kind = 'login_refused'"
			   " AND imei = ?1", IMEI_STRANGER), 1);
	cr_expect_eq(q_int("SELECT refused_logins FROM uplink_usage WHERE imei = ?1", IMEI_STRANGER), 1);
}

Test(ingest, resent_packet_stored_once_but_acked)
{
	start_server();
	int fd = dev_open(ingest_port(ing), IMEI_A);
	cr_expect_eq(dev_hex(fd, VEC8_2), 2);
	cr_expect_eq(dev_hex(fd, VEC8_2), 2, "a resend must be acked with its count");
	close(fd);
	/* A new connection resending it (the device never saw the ack). */
	fd = dev_open(ingest_port(ing), IMEI_A);
	cr_expect_eq(dev_hex(fd, VEC8_2), 2);
	close(fd);
	cr_expect_eq(records_of(IMEI_A), 2);
	struct ingest_device_stats st[16];
	size_t n = ingest_stats(ing, st, 16);
	for (size_t i = 0; i < n && i < 16; i++)
		if (strcmp(st[i].imei, IMEI_A) == 0) {
			cr_expect_eq(st[i].duplicates, 4);
			cr_expect_eq(st[i].records, 2);
		}
}

/* ---- bad input: only that connection goes ---- */

static void set_crc(uint8_t *pkt, size_t n)
{
	uint16_t crc = tlt_crc16(pkt + 8, n - 12);
	pkt[n - 4] = 0;
	pkt[n - 3] = 0;
	pkt[n - 2] = (uint8_t)(crc >> 8);
	pkt[n - 1] = (uint8_t)crc;
}

static void set_len(uint8_t *pkt, uint32_t v)
{
	pkt[4] = (uint8_t)(v >> 24);
	pkt[5] = (uint8_t)(v >> 16);
	pkt[6] = (uint8_t)(v >> 8);
	pkt[7] = (uint8_t)v;
}

enum bad { TRUNCATED, BAD_CRC, COUNT_MISMATCH, UNKNOWN_CODEC, LEN_SHORT, LEN_LONG, OVERSIZE, TRICKLE };

/* A good device B is logged in throughout. A logs in, stores one record,
 * then sends BAD: A must be dropped with a reason naming WANT, its record
 * kept, and B served during and after. */
static void bad_case(enum bad bad, const char *want)
{
	start_server();
	int port = ingest_port(ing);
	int64_t t0 = wall_ms();
	int b = dev_open(port, IMEI_B);
	dev_good(b, (uint64_t)t0);
	int a = dev_open(port, IMEI_A);
	dev_good(a, (uint64_t)t0);

	uint8_t pkt[1400];
	size_t n = unhex(VEC8_1, pkt, sizeof pkt);
	switch (bad) {
	case TRUNCATED:
		send_all(a, pkt, 20);
		shutdown(a, SHUT_WR);
		break;
	case BAD_CRC:
		pkt[n - 1] ^= 0x5A;
		send_all(a, pkt, n);
		break;
	case COUNT_MISMATCH:
		pkt[n - 5] = 2; /* number of data 2 */
		set_crc(pkt, n);
		send_all(a, pkt, n);
		break;
	case UNKNOWN_CODEC:
		pkt[8] = 0x10;
		set_crc(pkt, n);
		send_all(a, pkt, n);
		break;
	case LEN_SHORT:
		set_len(pkt, (uint32_t)(n - 12 - 6));
		send_all(a, pkt, n);
		break;
	case LEN_LONG:
		/* Says 100 bytes more than follow: the rest never comes. */
		set_len(pkt, (uint32_t)(n - 12 + 100));
		send_all(a, pkt, n);
		dev_good(b, (uint64_t)t0 + 1000); /* served while A hangs */
		break;
	case OVERSIZE:
		set_len(pkt, 2000);
		send_all(a, pkt, n);
		break;
	case TRICKLE:
		/* One byte every 200 ms: the packet cap (1.5 s) ends it. */
		for (size_t i = 0; i < n; i++) {
			if (send(a, pkt + i, 1, MSG_NOSIGNAL) != 1)
				break;
			if (i == 2)
				dev_good(b, (uint64_t)t0 + 2000);
			struct timespec ts = { 0, 200 * 1000000L };
			nanosleep(&ts, NULL);
		}
		break;
	}
	cr_expect(dev_closed(a), "the bad connection must be dropped");
	close(a);
	dev_good(b, (uint64_t)t0 + 3000);
	close(b);
	/* What A stored before stays; nothing of the bad packet was stored. */
	cr_expect_eq(records_of(IMEI_A), 1);
	cr_expect_eq(q_int("SELECT count(*) FROM records WHERE ts_ms = 1560161086000", NULL), 0);
	cr_expect_geq(records_of(IMEI_B), 2);
	char like[128];
	snprintf(like, sizeof like, "%%%s%%", want);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE source = 'ingest' AND kind = 'connection_dropped'"
			   " AND imei = '" IMEI_A "' AND detail LIKE '%" IMEI_A "%' AND detail LIKE ?1", like), 1,
		     "no connection_dropped event naming '%s'", want);
}

Test(ingest, bad_truncated) { bad_case(TRUNCATED, "mid-packet"); }
Test(ingest, bad_crc) { bad_case(BAD_CRC, "CRC"); }
Test(ingest, bad_record_counts) { bad_case(COUNT_MISMATCH, "malformed"); }
Test(ingest, bad_unknown_codec) { bad_case(UNKNOWN_CODEC, "unknown codec"); }
Test(ingest, bad_length_short) { bad_case(LEN_SHORT, "CRC"); }
Test(ingest, bad_length_long) { bad_case(LEN_LONG, "not complete"); }
Test(ingest, bad_oversize) { bad_case(OVERSIZE, "oversize"); }
Test(ingest, bad_trickle) { bad_case(TRICKLE, "trickling"); }

Test(ingest, bad_non_numeric_imei)
{
	start_server();
	int port = ingest_port(ing);
	int b = dev_open(port, IMEI_B);
	int a = dev_connect(port);
	static const uint8_t login[] = "\x00\x0f" "35630704244101X";
	send_all(a, login, 17);
	cr_expect(dev_closed(a));
	close(a);
	dev_good(b, (uint64_t)wall_ms());
	close(b);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'connection_dropped' AND detail LIKE '%bad login%'",
			   NULL), 1);
}

Test(ingest, never_logging_in_is_closed)
{
	start_server();
	int port = ingest_port(ing);
	int a = dev_connect(port);
	int b = dev_open(port, IMEI_B);
	dev_good(b, (uint64_t)wall_ms());
	cr_expect(dev_closed(a), "a silent connection must be closed after the login timeout");
	close(a);
	dev_good(b, (uint64_t)wall_ms() + 1);
	close(b);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'connection_dropped' AND detail LIKE '%no login%'",
			   NULL), 1);
}

Test(ingest, connection_flood_capped)
{
	struct ingest_opts o = { .max_conns = 8, .login_timeout_ms = 2000, .packet_timeout_ms = 1500,
				 .idle_timeout_ms = 60000 };
	start_server_opts(&o);
	int port = ingest_port(ing);
	int b = dev_open(port, IMEI_B);
	int flood[40];
	for (int i = 0; i < 40; i++)
		flood[i] = dev_connect(port);
	dev_good(b, (uint64_t)wall_ms());
	for (int i = 0; i < 40; i++) {
		cr_expect(dev_closed(flood[i]), "flood connection %d left open", i);
		close(flood[i]);
	}
	dev_good(b, (uint64_t)wall_ms() + 1);
	/* 8 may wait for a login at once (all from one address: its share);
	 * each newcomer beyond evicted the oldest, so at most 8 timed out. */
	cr_expect_leq(q_int("SELECT count(*) FROM events WHERE detail LIKE '%no login%'", NULL), 1,
		      "one aggregated row for the timeouts");
	cr_expect_leq(q_int("SELECT sum(CAST(substr(detail, 7, instr(substr(detail, 7), ' ') - 1) AS INTEGER))"
			    " FROM events WHERE kind = 'connection_dropped' AND imei IS NULL", NULL), 40);
	int a = dev_open(port, IMEI_A);
	dev_good(a, (uint64_t)wall_ms());
	close(a);
	close(b);
}

/* The fd limit for a test that holds a thousand sockets. */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max;
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	cr_assert_geq(rl.rlim_cur, want, "RLIMIT_NOFILE hard limit %llu is below %llu", (unsigned long long)rl.rlim_max,
		      (unsigned long long)want);
}

/* A connection from 127.0.0.X (any 127/8 address is loopback on Linux):
 * strangers from many addresses. */
static int dev_connect_from(int port, int x)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in me = { .sin_family = AF_INET };
	me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)x);
	cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0, "bind 127.0.0.%d: %s", x, strerror(errno));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
	return fd;
}

/* Issue 12: 256 idle sockets locked a tracker out for the login timeout.
 * 1000 idle sockets from 125 addresses (8 each, within the per-address
 * share, so the global budget does the work) and 200 more from the
 * tracker's own address: the tracker still logs in at once and its
 * records are stored. The login timeout is far beyond the test, so only
 * the budget can make room. */
Test(ingest, tracker_logs_in_while_1000_idle_sockets_are_held)
{
	raise_nofile(1400);
	struct ingest_opts o = { .login_timeout_ms = 600000, .packet_timeout_ms = 600000, .idle_timeout_ms = 600000 };
	start_server_opts(&o);
	int port = ingest_port(ing);
	static int idle[1200];
	for (int i = 0; i < 1000; i++)
		idle[i] = dev_connect_from(port, 2 + i / 8);
	for (int i = 1000; i < 1200; i++)
		idle[i] = dev_connect(port);
	int a = dev_connect(port);
	cr_assert_eq(dev_login(a, IMEI_A), 1, "a tracker could not log in while 1200 idle sockets were held");
	dev_good(a, (uint64_t)wall_ms());
	dev_good(a, (uint64_t)wall_ms() + 1);
	cr_expect_eq(records_of(IMEI_A), 2);
	close(a);
	for (int i = 0; i < 1200; i++)
		close(idle[i]);
	/* Their evictions are counted in a bounded number of rows. */
	cr_expect_leq(q_int("SELECT count(*) FROM events", NULL), 2 * (32 + 1));
}

/* Issue 12: each refused login added an event row, without bound. 2000
 * refused logins with different IMEIs add a bounded number of rows, and
 * their counts add up to 2000: nothing is lost, it is aggregated. */
Test(ingest, refused_logins_are_aggregated_and_bounded)
{
	raise_nofile(256);
	start_server();
	int port = ingest_port(ing);
	for (int i = 0; i < 2000; i++) {
		char imei[24];
		snprintf(imei, sizeof imei, "3500000%08u", (unsigned)i % 100000000u);
		int fd = dev_connect(port);
		cr_assert_eq(dev_login(fd, imei), 0, "refused login %d must get 00", i);
		close(fd);
	}
	int b = dev_open(port, IMEI_B);
	dev_good(b, (uint64_t)wall_ms());
	close(b);
	ingest_stop(ing);
	ing = NULL;
	long long rows = q_int("SELECT count(*) FROM events WHERE kind = 'login_refused'", NULL);
	cr_expect_leq(rows, 2 * (32 + 1), "2000 refused logins made %lld event rows", rows);
	cr_expect_eq(q_int("SELECT sum(CAST(substr(detail, 7, instr(substr(detail, 7), ' ') - 1) AS INTEGER))"
			   " FROM events WHERE kind = 'login_refused'", NULL), 2000);
	cr_expect_leq(q_int("SELECT count(*) FROM uplink_usage", NULL), 256 + 1);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'login_refused' AND detail LIKE '%IMEI 350000000000000 %'",
			   NULL), 1, "the first refused IMEI is named");
}

/* ---- codec 12 ---- */

struct c12_device {
	int fd;
	int answered;
	char got[4][64];
};

/* Answers each codec 12 command with a type-6 response, like a tracker. */
static void *c12_device_main(void *arg)
{
	struct c12_device *d = arg;
	for (int k = 0; k < 2; k++) {
		uint8_t buf[1400];
		if (recv_exact(d->fd, buf, 8, WAIT_MS) != 8)
			return NULL;
		size_t len = (size_t)buf[4] << 24 | (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
		if (len + 12 > sizeof buf || recv_exact(d->fd, buf + 8, len + 4, WAIT_MS) != (int)(len + 4))
			return NULL;
		uint8_t type;
		char err[200];
		if (tlt_c12_decode(buf, len + 12, &type, d->got[k], sizeof d->got[k], err, sizeof err) < 0 ||
		    type != TLT_C12_COMMAND)
			return NULL;
		const char *ans = strcmp(d->got[k], "getver") == 0
			? "Ver:03.28.07_04 GPS:AXN_5.10 Hw:FMB920 Mod:12 IMEI:" IMEI_A " Init:2026-11-26 0:0 Uptime:42"
			: "?";
		uint8_t out[600];
		int n = tlt_c12_encode(TLT_C12_RESPONSE, ans, strlen(ans), out, sizeof out);
		if (n < 0 || send(d->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
			return NULL;
		d->answered++;
	}
	return NULL;
}

Test(ingest, codec12_command_and_tracker_driver_over_the_link)
{
	start_server();
	struct c12_device d = { .fd = dev_open(ingest_port(ing), IMEI_A) };
	/* Commands go only once a packet has been acked. */
	cr_assert_eq(dev_hex(d.fd, VEC8_1), 1);
	pthread_t th;
	pthread_create(&th, NULL, c12_device_main, &d);

	char answer[TRACKER_LINE_MAX + 1];
	int n = ingest_send_command(ing, IMEI_A, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_gt(n, 0, "ingest_send_command: %s", n < 0 ? tracker_strerror(n) : "");
	cr_expect(strncmp(answer, "Ver:03.28.07_04", 15) == 0, "answer '%s'", answer);

	const struct tracker_link_ops *ops;
	void *ctx;
	cr_assert_eq(ingest_tracker_link(ing, IMEI_A, &ops, &ctx), 0);
	tracker *t = NULL;
	cr_assert_eq(tracker_open(tracker_proto_find("teltonika"), ops, ctx, &t), TRACKER_OK);
	int rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_OK, "tracker_command: %s", tracker_error(t));
	cr_expect(strstr(answer, "Hw:FMB920") != NULL, "answer '%s'", answer);
	cr_expect(strstr(tracker_where(t), IMEI_A "@127.0.0.1:") == tracker_where(t), "where '%s'", tracker_where(t));
	tracker_close(t);
	pthread_join(th, NULL);
	cr_expect_eq(d.answered, 2);
	cr_expect_str_eq(d.got[0], "getver");
	cr_expect_str_eq(d.got[1], "getver");
	close(d.fd);
	/* Not connected any more: an error, not a hang. */
	for (int i = 0; i < 100 && ingest_send_command(ing, IMEI_A, "getver", answer, sizeof answer, 1) != TRACKER_ERR_GONE;
	     i++) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	cr_expect_eq(ingest_send_command(ing, IMEI_A, "getver", answer, sizeof answer, 100), TRACKER_ERR_GONE);
}

/* A scripted device for the codec 12 link: answers its commands in turn,
 * with the CRC of answer K broken when BAD_CRC[K]. */
struct c12_script {
	int fd;
	int n;                  /* commands to answer */
	bool bad_crc[4];
	bool hold[4];           /* answer K only once a byte arrives on HOLD_FD */
	int hold_fd;
	const char *answer[4];  /* NULL: a getver answer */
	int answered;
	char got[4][64];
};

/* Reads one codec 12 command into TEXT; -1 when none came or it is bad. */
static int c12_read_command(int fd, char *text, size_t cap)
{
	uint8_t buf[1400];
	if (recv_exact(fd, buf, 8, WAIT_MS) != 8)
		return -1;
	size_t len = (size_t)buf[4] << 24 | (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
	if (len + 12 > sizeof buf || recv_exact(fd, buf + 8, len + 4, WAIT_MS) != (int)(len + 4))
		return -1;
	uint8_t type;
	char err[200];
	int n = tlt_c12_decode(buf, len + 12, &type, text, cap, err, sizeof err);
	return n < 0 || type != TLT_C12_COMMAND ? -1 : n;
}

static void *c12_script_main(void *arg)
{
	struct c12_script *d = arg;
	for (int k = 0; k < d->n; k++) {
		if (c12_read_command(d->fd, d->got[k], sizeof d->got[k]) < 0)
			return NULL;
		char go;
		if (d->hold[k] && read(d->hold_fd, &go, 1) != 1)
			return NULL;
		const char *ans = d->answer[k] ? d->answer[k]
			: "Ver:03.28.07_04 GPS:AXN_5.10 Hw:FMB920 Mod:12 IMEI:" IMEI_A " Init:2026-11-26 0:0 Uptime:42";
		uint8_t out[600];
		int n = tlt_c12_encode(TLT_C12_RESPONSE, ans, strlen(ans), out, sizeof out);
		if (n < 0)
			return NULL;
		if (d->bad_crc[k])
			out[n - 1] ^= 0x5A; /* the CRC's low byte: the text itself is intact */
		if (send(d->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
			return NULL;
		d->answered++;
	}
	return NULL;
}

/* Reads one codec 12 command on *ARG and closes the socket. */
static void *hangup_main(void *arg)
{
	int fd = *(int *)arg;
	char text[64];
	c12_read_command(fd, text, sizeof text);
	close(fd);
	return NULL;
}

static tracker *c12_tracker(const char *imei)
{
	const struct tracker_link_ops *ops;
	void *ctx;
	cr_assert_eq(ingest_tracker_link(ing, imei, &ops, &ctx), 0);
	cr_assert_str_eq(ops->name, "codec12");
	tracker *t = NULL;
	cr_assert_eq(tracker_open(tracker_proto_find("teltonika"), ops, ctx, &t), TRACKER_OK);
	return t;
}

/* A device that logs in with nothing to send (no packet, so no ack) still
 * takes commands once its link has been quiet a moment: a Teltonika with
 * an empty buffer, or simrack's unit right after boot. */
Test(ingest, codec12_to_a_device_with_nothing_to_send)
{
	start_server();
	struct c12_script d = { .fd = dev_open(ingest_port(ing), IMEI_A), .n = 1 };
	pthread_t th;
	pthread_create(&th, NULL, c12_script_main, &d);
	char answer[TRACKER_LINE_MAX + 1];
	int n = ingest_send_command(ing, IMEI_A, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_gt(n, 0, "ingest_send_command: %s", n < 0 ? tracker_strerror(n) : "");
	pthread_join(th, NULL);
	cr_expect_eq(d.answered, 1);
	cr_expect_str_eq(d.got[0], "getver");
	close(d.fd);
}

/* A response whose CRC is wrong is the device's fault, named as such: the
 * driver gets GARBAGE with the CRC in the message, the store an event, and
 * the link (still in step: the frame's length was right) stays up for the
 * next command. */
Test(ingest, codec12_bad_crc_response_is_a_clear_error)
{
	start_server();
	struct c12_script d = { .fd = dev_open(ingest_port(ing), IMEI_A), .n = 2, .bad_crc = { true, false } };
	cr_assert_eq(dev_hex(d.fd, VEC8_1), 1);
	pthread_t th;
	pthread_create(&th, NULL, c12_script_main, &d);
	tracker *t = c12_tracker(IMEI_A);
	char answer[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_ERR_GARBAGE, "bad CRC gave %s: %s", tracker_strerror(rc), tracker_error(t));
	cr_expect(strstr(tracker_error(t), "malformed codec 12 response: CRC") != NULL, "error: %s", tracker_error(t));
	cr_expect(strstr(tracker_error(t), "IMEI " IMEI_A) != NULL, "error: %s", tracker_error(t));
	rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_OK, "the next command: %s", tracker_error(t));
	cr_expect(strstr(answer, "Hw:FMB920") != NULL, "answer '%s'", answer);
	tracker_close(t);
	pthread_join(th, NULL);
	cr_expect_eq(d.answered, 2);
	close(d.fd);
	ingest_stop(ing);
	ing = NULL;
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'command_response_bad' AND imei = ?1"
			   " AND detail LIKE '%CRC%'", IMEI_A), 1);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'connection_dropped'", NULL), 0);
}

/* The server's log lines, for a test to wait on what the server did. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void log_keep(void *ctx, const char *line)
{
	(void)ctx;
	pthread_mutex_lock(&log_mu);
	size_t n = strlen(log_text);
	snprintf(log_text + n, sizeof log_text - n, "%s\n", line);
	pthread_mutex_unlock(&log_mu);
}

static bool wait_log(const char *what)
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		pthread_mutex_lock(&log_mu);
		bool seen = strstr(log_text, what) != NULL;
		pthread_mutex_unlock(&log_mu);
		if (seen)
			return true;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* An answer that comes after its command's deadline reaches nobody: a
 * damaged late answer to an abandoned command must not fail the next
 * command, nor a late good one pass for its answer. */
Test(ingest, codec12_late_answer_reaches_nobody)
{
	struct ingest_opts o = { .login_timeout_ms = 3000, .packet_timeout_ms = 60000, .idle_timeout_ms = 60000,
				 .log = log_keep };
	start_server_opts(&o);
	int hold[2];
	cr_assert_eq(pipe(hold), 0);
	struct c12_script d = { .fd = dev_open(ingest_port(ing), IMEI_A), .n = 2, .hold_fd = hold[0],
				.hold = { true, false }, .bad_crc = { true, false },
				.answer = { "Ver:LATE", "Ver:FRESH Hw:FMB920" } };
	cr_assert_eq(dev_hex(d.fd, VEC8_1), 1);
	pthread_t th;
	pthread_create(&th, NULL, c12_script_main, &d);
	tracker *t = c12_tracker(IMEI_A);
	char answer[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "getver", answer, sizeof answer, 300);
	cr_assert_eq(rc, TRACKER_ERR_TIMEOUT, "%s: %s", tracker_strerror(rc), tracker_error(t));
	cr_assert_eq(write(hold[1], "g", 1), 1); /* now the late, damaged answer */
	cr_assert(wait_log("malformed codec 12 response"), "the server never read the late answer");
	rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_OK, "the next command: %s", tracker_error(t));
	cr_expect_str_eq(answer, "Ver:FRESH Hw:FMB920");
	tracker_close(t);
	pthread_join(th, NULL);
	close(hold[0]);
	close(hold[1]);
	close(d.fd);
}

/* The device takes the command and hangs up: the driver hears GONE with
 * how the link ended, not a timeout at its deadline. */
Test(ingest, codec12_link_ends_under_a_command)
{
	start_server();
	int fd = dev_open(ingest_port(ing), IMEI_A);
	cr_assert_eq(dev_hex(fd, VEC8_1), 1);
	tracker *t = c12_tracker(IMEI_A);
	char answer[TRACKER_LINE_MAX + 1];
	pthread_t th;
	/* Hang up once the command is read (a thread: tracker_command blocks). */
	pthread_create(&th, NULL, hangup_main, &fd);
	int rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	pthread_join(th, NULL);
	cr_expect_eq(rc, TRACKER_ERR_GONE, "%s: %s", tracker_strerror(rc), tracker_error(t));
	cr_expect(strstr(tracker_error(t), "IMEI " IMEI_A ": its link to the ingest ended: the device closed it") != NULL,
		  "error: %s", tracker_error(t));
	tracker_close(t);
}

/* An allowed device that is not logged in: the command fails at once with
 * GONE, naming the IMEI, instead of waiting out its deadline. */
Test(ingest, codec12_not_connected_is_gone_naming_the_imei)
{
	start_server();
	tracker *t = c12_tracker(IMEI_B);
	char answer[TRACKER_LINE_MAX + 1];
	int rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_ERR_GONE, "%s: %s", tracker_strerror(rc), tracker_error(t));
	cr_expect(strstr(tracker_error(t), "IMEI " IMEI_B ": not connected to the ingest") != NULL, "error: %s",
		  tracker_error(t));
	struct tracker_identity id;
	cr_expect_eq(tracker_identify(t, &id, WAIT_MS), TRACKER_ERR_GONE);
	/* One link per device at a time; none for an IMEI the rack does not know. */
	const struct tracker_link_ops *ops;
	void *ctx;
	cr_expect_eq(ingest_tracker_link(ing, IMEI_B, &ops, &ctx), -1);
	cr_expect_eq(ingest_tracker_link(ing, IMEI_STRANGER, &ops, &ctx), -1);
	tracker_close(t);
	cr_expect_eq(ingest_tracker_link(ing, IMEI_B, &ops, &ctx), 0);
	ops->close(ctx);
}

/* Slot SLOT's IMEI from the rack file simrack wrote. */
static void rack_imei(const struct simrack_proc *rack, int slot, char *imei, size_t len)
{
	char path[PATH_MAX + 16], head[32];
	char *yaml = support_read_file(simrack_rackfile(rack, path, sizeof path));
	cr_assert_not_null(yaml, "cannot read %s", path);
	snprintf(head, sizeof head, "  - id: %d\n", slot);
	const char *at = strstr(yaml, head);
	const char *v = at ? strstr(at, "imei: \"") : NULL;
	size_t n = v ? strcspn(v + 7, "\"") : 0;
	cr_assert(v && n > 0 && n < len, "no IMEI for slot %d in %s", slot, path);
	memcpy(imei, v + 7, n);
	imei[n] = '\0';
	free(yaml);
}

/* Waits (wall time, bounded) until the server sees IMEI logged in or out:
 * it reads a login at the rack time it came, so no rack time need pass. */
static bool wait_connected(const char *imei, int want)
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		struct ingest_device_stats st[4];
		size_t n = ingest_stats(ing, st, 4);
		for (size_t k = 0; k < n && k < 4; k++)
			if (strcmp(st[k].imei, imei) == 0 && st[k].connected == want)
				return true;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The field path end to end on rack time: a simulated Teltonika pointed
 * at the rig's own ingest (setparam 2004/2005 over its console, as an
 * installer would by SMS) takes the driver's commands as codec 12 over
 * its TCP link and answers what its console answers; moved to another
 * server, it is GONE from the ingest, named. */
Test(ingest, codec12_link_to_a_simulated_teltonika)
{
	struct simrack_proc rack;
	static const char *const args[] = { "--virtual", NULL };
	cr_assert_eq(simrack_start_args(&rack, 1, 3, args), 0);
	char imei[16], sock[PATH_MAX + 32], console[PATH_MAX + 32], err[512];
	rack_imei(&rack, 1, imei, sizeof imei);
	snprintf(sock, sizeof sock, "%s/control.sock", rack.dir);
	rig_clock *clk = NULL;
	cr_assert_eq(clock_open_rack(sock, &clk, err, sizeof err), 0, "%s", err);
	clock_join(clk);
	const char *allow[] = { imei };
	struct ingest_opts o = { .host = "127.0.0.1", .db_path = db_path, .clock = clk, .allow = allow, .n_allow = 1 };
	cr_assert_eq(ingest_start(&o, &ing, err, sizeof err), 0, "ingest_start: %s", err);

	const struct tracker_proto *tlt = tracker_proto_find("teltonika");
	tracker *con = NULL;
	cr_assert_eq(tracker_open_console(simrack_console(&rack, 1, console, sizeof console), 115200,
					  SERIAL_BACKEND_TERMIOS, tlt, &con, err, sizeof err), TRACKER_OK, "%s", err);
	tracker_set_clock(con, clock_for_tracker(clk));
	cr_assert_eq(clock_sleep_until(clk, clock_now(clk) + 60000), 0); /* booted, whatever the model's boot time */
	char answer[TRACKER_LINE_MAX + 1], cmd[64];
	cr_assert_eq(tracker_command(con, "setparam 2004:127.0.0.1", answer, sizeof answer, WAIT_MS), TRACKER_OK,
		     "%s", tracker_error(con));
	snprintf(cmd, sizeof cmd, "setparam 2005:%d", ingest_port(ing));
	cr_assert_eq(tracker_command(con, cmd, answer, sizeof answer, WAIT_MS), TRACKER_OK, "%s", tracker_error(con));

	cr_assert(wait_connected(imei, 1), "IMEI %s did not log in to the ingest", imei);
	tracker *t = c12_tracker(imei);
	tracker_set_clock(t, clock_for_tracker(clk));
	int rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_assert_eq(rc, TRACKER_OK, "getver over codec 12: %s", tracker_error(t));
	cr_expect(strncmp(answer, "Ver:", 4) == 0, "answer '%s'", answer);
	cr_expect(strstr(answer, imei) != NULL, "answer '%s' does not name IMEI %s", answer, imei);
	cr_expect(strncmp(tracker_where(t), imei, strlen(imei)) == 0, "where '%s'", tracker_where(t));
	struct tracker_identity up, local;
	cr_assert_eq(tracker_identify(t, &up, WAIT_MS), TRACKER_OK, "identify over codec 12: %s", tracker_error(t));
	cr_assert_eq(tracker_identify(con, &local, WAIT_MS), TRACKER_OK, "identify on the console: %s",
		     tracker_error(con));
	cr_expect_str_eq(up.imei, imei);
	cr_expect_str_eq(up.imei, local.imei);
	cr_expect_str_eq(up.model, local.model);
	cr_expect_str_eq(up.firmware, local.firmware);
	cr_expect_str_eq(up.iccid, local.iccid);

	/* Pointed elsewhere (a closed port): it leaves the ingest. */
	cr_assert_eq(tracker_command(con, "setparam 2005:1", answer, sizeof answer, WAIT_MS), TRACKER_OK, "%s",
		     tracker_error(con));
	rc = tracker_command(t, "getver", answer, sizeof answer, WAIT_MS);
	cr_expect_eq(rc, TRACKER_ERR_GONE, "%s: %s", tracker_strerror(rc), tracker_error(t));
	cr_expect(strstr(tracker_error(t), imei) != NULL, "error: %s", tracker_error(t));

	tracker_close(t);
	tracker_close(con);
	clock_leave(clk);
	ingest_stop(ing);
	ing = NULL;
	clock_close(clk);
	simrack_stop(&rack);
}

/* ---- an offline backlog from 8 devices at once ---- */

struct backlog {
	int port;
	const char *imei;
	int64_t newest;
	int packets;
	int acked;
	bool ok;
};

static void *backlog_main(void *arg)
{
	struct backlog *b = arg;
	int fd = dev_connect(b->port);
	if (dev_login(fd, b->imei) != 1) {
		close(fd);
		return NULL;
	}
	struct tlt_record *recs = calloc(120, sizeof *recs);
	if (!recs) {
		close(fd);
		return NULL;
	}
	/* 1 record a minute for 2 hours, the newest stamped "now". */
	for (int k = 0; k < 120; k++)
		fill_record(&recs[k], (uint64_t)(b->newest - (int64_t)(119 - k) * 60000), k);
	size_t off = 0;
	b->ok = true;
	while (off < 120) {
		size_t n = tlt_avl_fit(TLT_CODEC8E, recs + off, 120 - off, TLT_PACKET_MAX);
		uint8_t pkt[TLT_PACKET_MAX];
		int len = n ? tlt_avl_encode(TLT_CODEC8E, recs + off, n, pkt, sizeof pkt) : -1;
		if (len <= 0 || len > TLT_PACKET_MAX) {
			b->ok = false;
			break;
		}
		uint8_t ack[4];
		if (send(fd, pkt, (size_t)len, MSG_NOSIGNAL) != len || recv_exact(fd, ack, 4, WAIT_MS) != 4 ||
		    ack[3] != n) {
			b->ok = false;
			break;
		}
		b->packets++;
		b->acked += ack[3];
		off += n;
	}
	free(recs);
	close(fd);
	return NULL;
}

Test(ingest, backlog_of_8_devices_stored_exactly_once)
{
	start_server();
	struct backlog b[8];
	pthread_t th[8];
	int64_t now = wall_ms();
	for (int i = 0; i < 8; i++) {
		b[i] = (struct backlog){ .port = ingest_port(ing), .imei = backlog_imeis[i], .newest = now };
		pthread_create(&th[i], NULL, backlog_main, &b[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++) {
		cr_expect(b[i].ok, "device %s: a packet was not acked with its count", b[i].imei);
		cr_expect_eq(b[i].acked, 120);
		cr_expect_gt(b[i].packets, 1, "a 2-hour backlog must need several packets");
		cr_expect_eq(records_of(b[i].imei), 120);
		/* Stamped hours ago: late. Stamped just now: not late. */
		char ts[32];
		snprintf(ts, sizeof ts, "%lld", (long long)(now - 119 * 60000));
		cr_expect_eq(q_int("SELECT late FROM records WHERE ts_ms = ?1 LIMIT 1", ts), 1);
		cr_expect_geq(q_int("SELECT sum(late) FROM records WHERE imei = ?1", b[i].imei), 100);
	}
	char ts[32];
	snprintf(ts, sizeof ts, "%lld", (long long)now);
	cr_expect_eq(q_int("SELECT sum(late) FROM records WHERE ts_ms = ?1", ts), 0);
	cr_expect_eq(q_int("SELECT count(*) FROM records", NULL), 960);
	cr_expect_eq(q_int("SELECT count(*) FROM (SELECT DISTINCT imei, ts_ms FROM records)", NULL), 960);
	cr_expect_eq(q_int("SELECT sum(out_of_order) FROM records", NULL), 0, "oldest-first is in order");
}

/* ---- rig serve ---- */

struct serve_proc {
	pid_t pid;
	int out;  /* its stdout */
	int port;
};

/* rig serve for IMEI_A; COMMAND (may be NULL) as its --command. */
static void serve_start_cmd(struct serve_proc *p, const char *command)
{
	char bin[PATH_MAX];
	support_bin("rig", bin, sizeof bin);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (command)
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--db", db_path, "--allow-imei", IMEI_A,
			      "--command", command, (char *)NULL);
		else
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--db", db_path, "--allow-imei", IMEI_A,
			      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	p->pid = pid;
	p->out = fds[0];
	/* "... listening on 127.0.0.1:PORT, ..." */
	char buf[4096];
	size_t n = 0;
	p->port = 0;
	while (n < sizeof buf - 1) {
		struct pollfd pf = { .fd = p->out, .events = POLLIN };
		if (poll(&pf, 1, WAIT_MS) <= 0)
			break;
		ssize_t r = read(p->out, buf + n, sizeof buf - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		char *l = strstr(buf, "listening on 127.0.0.1:");
		if (l && strchr(l, ',')) {
			p->port = atoi(l + strlen("listening on 127.0.0.1:"));
			break;
		}
	}
	cr_assert_gt(p->port, 0, "rig serve did not say where it listens: %s", buf);
}

static void serve_start(struct serve_proc *p) { serve_start_cmd(p, NULL); }

/* Reads P's output until it holds WHAT (or WAIT_MS of silence); true when seen. */
static bool serve_expect(struct serve_proc *p, const char *what, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	while (n < len - 1 && !strstr(buf, what)) {
		struct pollfd pf = { .fd = p->out, .events = POLLIN };
		if (poll(&pf, 1, WAIT_MS) <= 0)
			return false;
		ssize_t r = read(p->out, buf + n, len - 1 - n);
		if (r <= 0)
			return false;
		n += (size_t)r;
		buf[n] = '\0';
	}
	return strstr(buf, what) != NULL;
}

/* `rig serve --command`: the codec 12 path from the command line, in the
 * rig binary (so `make test-tsan` runs the channel's threads under TSan). */
Test(ingest, rig_serve_sends_a_codec12_command)
{
	struct serve_proc p;
	serve_start_cmd(&p, IMEI_A ":getver");
	struct c12_script d = { .fd = dev_open(p.port, IMEI_A), .n = 1 };
	pthread_t th;
	pthread_create(&th, NULL, c12_script_main, &d);
	char out[8192];
	bool seen = serve_expect(&p, "codec 12 IMEI " IMEI_A ": 'getver' answered 'Ver:03.28.07_04 ", out, sizeof out);
	pthread_join(th, NULL);
	cr_expect(seen, "output: %s", out);
	cr_expect_str_eq(d.got[0], "getver");
	close(d.fd);
	kill(p.pid, SIGTERM);
	int status = 0;
	cr_assert_eq(waitpid(p.pid, &status, 0), p.pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rig serve must stop cleanly on SIGTERM");
	close(p.out);
}

Test(ingest, rig_serve_acks_real_frames_and_refuses_malformed)
{
	struct serve_proc p;
	serve_start(&p);
	int fd = dev_open(p.port, IMEI_A);
	cr_expect_eq(dev_hex(fd, VEC8E_1), 1);
	uint8_t pkt[200];
	size_t n = unhex(VEC8_1, pkt, sizeof pkt);
	pkt[n - 1] ^= 1;
	send_all(fd, pkt, n);
	cr_expect(dev_closed(fd), "a bad CRC must drop the connection");
	close(fd);
	fd = dev_connect(p.port);
	cr_expect_eq(dev_login(fd, IMEI_STRANGER), 0);
	close(fd);
	kill(p.pid, SIGTERM);
	int status = 0;
	cr_assert_eq(waitpid(p.pid, &status, 0), p.pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rig serve must stop cleanly on SIGTERM");
	char out[8192];
	ssize_t r = read(p.out, out, sizeof out - 1);
	out[r > 0 ? r : 0] = '\0';
	close(p.out);
	cr_expect(strstr(out, "refused IMEI " IMEI_STRANGER) != NULL, "output: %s", out);
	cr_expect(strstr(out, "stats IMEI " IMEI_A) != NULL, "output: %s", out);
	cr_expect_eq(records_of(IMEI_A), 1);
	cr_expect_eq(q_int("SELECT count(*) FROM events WHERE kind = 'connection_dropped' AND detail LIKE '%CRC%'", NULL), 1);
}

Test(ingest, rig_serve_usage_and_listen_errors)
{
	char bin[PATH_MAX], out[4096];
	support_bin("rig", bin, sizeof bin);
	char *const no_imei[] = { bin, "serve", "--listen", "127.0.0.1:0", "--db", db_path, NULL };
	cr_expect_eq(support_run(no_imei, out, sizeof out), 2, "%s", out);
	char *const bad_addr[] = { bin, "serve", "--listen", "203.0.113.254:1", "--db", db_path, "--allow-imei", IMEI_A, NULL };
	cr_expect_eq(support_run(bad_addr, out, sizeof out), 3, "%s", out);
	cr_expect(strstr(out, "203.0.113.254:1") != NULL, "the error must name the address: %s", out);
	char *const bad_cmd[] = { bin, "serve", "--listen", "127.0.0.1:0", "--db", db_path, "--allow-imei", IMEI_A,
				  "--command", IMEI_B ":getver", NULL };
	cr_expect_eq(support_run(bad_cmd, out, sizeof out), 2, "%s", out);
	cr_expect(strstr(out, IMEI_B ":getver") != NULL, "the error must name the command: %s", out);
}

/* ---- rack time ---- */

/* On a virtual rack, arrival times and every timeout are rack time: a
 * connection idle for 30 rack minutes is dropped at exactly that rack time,
 * in well under a wall second, and the server's thread holds time still
 * while it has input (the login and packet below are not overtaken). */
Test(ingest, virtual_rack_time_for_arrival_and_timeouts)
{
	struct simrack_proc rack;
	static const char *const args[] = { "--virtual", NULL };
	cr_assert_eq(simrack_start_args(&rack, 1, 1, args), 0);
	char sock[PATH_MAX + 32], err[512];
	snprintf(sock, sizeof sock, "%s/control.sock", rack.dir);
	rig_clock *clk = NULL;
	cr_assert_eq(clock_open_rack(sock, &clk, err, sizeof err), 0, "%s", err);
	cr_assert(clock_is_virtual(clk));
	/* This thread plays a device in rack time: joined, it waits only
	 * through the clock. */
	clock_join(clk);
	struct ingest_opts o = { .clock = clk, .login_timeout_ms = 10000, .packet_timeout_ms = 10000,
				 .idle_timeout_ms = 30 * 60000 };
	start_server_opts(&o);
	int64_t t0 = clock_now(clk);
	int fd = dev_connect(ingest_port(ing));
	uint8_t login[32], ans = 0, ack[4];
	size_t ln = tlt_login_encode(IMEI_A, login, sizeof login);
	send_all(fd, login, ln);
	cr_assert_eq(clock_wait_fd(clk, fd, t0 + 5000), 1, "no login answer within 5 rack seconds");
	cr_assert_eq(recv_exact(fd, &ans, 1, WAIT_MS), 1);
	cr_assert_eq(ans, 1);

	struct tlt_record r;
	uint8_t pkt[TLT_PACKET_MAX];
	int64_t ts = clock_unix_ms(clk, t0) - 60000; /* a minute old: not late */
	fill_record(&r, (uint64_t)ts, 1);
	int n = tlt_avl_encode(TLT_CODEC8E, &r, 1, pkt, sizeof pkt);
	send_all(fd, pkt, (size_t)n);
	cr_assert_eq(clock_wait_fd(clk, fd, t0 + 5000), 1, "no ack within 5 rack seconds");
	cr_assert_eq(recv_exact(fd, ack, 4, WAIT_MS), 4);
	cr_assert_eq(ack[3], 1);

	/* Two rack hours of silence: the idle timeout ends the link first. */
	cr_expect_eq(clock_wait_fd(clk, fd, t0 + 2 * 3600 * 1000), 1, "the idle link was not dropped");
	cr_expect(dev_closed(fd));
	close(fd);
	clock_leave(clk);
	ingest_stop(ing);
	ing = NULL;

	char s[64], want[64];
	snprintf(s, sizeof s, "%lld", (long long)ts);
	cr_expect_eq(q_int("SELECT arrival_ms - ts_ms FROM records WHERE ts_ms = ?1", s), 60000,
		     "arrival must be the rack time the packet came in");
	cr_expect_eq(q_int("SELECT late FROM records WHERE ts_ms = ?1", s), 0);
	clock_iso(clk, t0 + 30 * 60000, want, sizeof want);
	q_text("SELECT at FROM events WHERE kind = 'connection_dropped' AND detail LIKE '%idle for 1800000 ms%'", NULL,
	       s, sizeof s);
	cr_expect_str_eq(s, want, "dropped at rack time %s, expected %s", s, want);
	clock_close(clk);
	simrack_stop(&rack);
}
