/*
 * ingest_rate.c - benchmark: codec 8E records per second through the ingest
 * server (loopback TCP, decode, CRC, store, ack), from 8 concurrent senders
 * each waiting for its ack like a real device, against a raw SQLite insert
 * of the same rows (same schema, same statement, same pragmas) with as many
 * records per transaction as the ingest really committed in that round
 * (records / ingest_commits(): the server commits every packet read in one
 * turn of its loop together), plus decode-only.
 *
 * Rounds alternate A B A B (ingest, raw, ingest, raw, ...), each on a fresh
 * store, so both sides meet the same machine load; the figure is the median
 * round. The raw insert is the floor a store-backed server cannot beat; the
 * ratio says what sockets, framing, decoding and bookkeeping cost on top.
 * Target: ingest >= 0.7 x raw; exits 1 when missed.
 * Run: make bench (or build/bench/ingest_rate [N records per round]).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ingest.h"
#include "store.h"
#include "teltonika_codec.h"

#define SENDERS 8

struct packet {
	uint8_t *buf;
	int len;
	int n;
};

struct sender {
	char imei[16];
	int port;
	struct packet *pk;
	int n_pk;
	long acked;
	int failed;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill(struct tlt_record *r, uint64_t ts, int k)
{
	memset(r, 0, sizeof *r);
	r->timestamp_ms = ts;
	r->lat_e7 = 546870000 + k;
	r->lon_e7 = 253000000 - k;
	r->altitude_m = 120;
	r->angle = (uint16_t)(k % 360);
	r->satellites = 9;
	r->speed_kmh = (uint16_t)(k % 90);
	r->n_io = 5;
	r->io[0] = (struct tlt_io){ .id = 239, .size = 1, .value = 1 };
	r->io[1] = (struct tlt_io){ .id = 240, .size = 1, .value = 1 };
	r->io[2] = (struct tlt_io){ .id = 21, .size = 1, .value = 4 };
	r->io[3] = (struct tlt_io){ .id = 66, .size = 2, .value = 12800 + (uint64_t)(k % 100) };
	r->io[4] = (struct tlt_io){ .id = 69, .size = 1, .value = 1 };
}

/* Encodes PER records of device D as packets of at most 1280 bytes. */
static struct packet *build(int d, long per, uint64_t t0, int *n_pk)
{
	struct tlt_record *recs = calloc((size_t)per, sizeof *recs);
	struct packet *pk = calloc((size_t)per, sizeof *pk);
	if (!recs || !pk)
		exit(1);
	for (long k = 0; k < per; k++)
		fill(&recs[k], t0 + (uint64_t)k * 1000, (int)(k + d));
	long off = 0;
	int n = 0;
	while (off < per) {
		size_t fit = tlt_avl_fit(TLT_CODEC8E, recs + off, (size_t)(per - off), TLT_PACKET_MAX);
		pk[n].buf = malloc(TLT_PACKET_MAX);
		pk[n].len = tlt_avl_encode(TLT_CODEC8E, recs + off, fit, pk[n].buf, TLT_PACKET_MAX);
		pk[n].n = (int)fit;
		if (!fit || pk[n].len <= 0) {
			fprintf(stderr, "ingest_rate: cannot encode\n");
			exit(1);
		}
		off += (long)fit;
		n++;
	}
	free(recs);
	*n_pk = n;
	return pk;
}

static int recv_all(int fd, uint8_t *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, b + got, n - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void *send_main(void *arg)
{
	struct sender *s = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	uint8_t login[32], ans;
	size_t ln = tlt_login_encode(s->imei, login, sizeof login);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || send(fd, login, ln, 0) != (ssize_t)ln ||
	    recv_all(fd, &ans, 1) < 0 || ans != 1) {
		s->failed = 1;
		close(fd);
		return NULL;
	}
	for (int i = 0; i < s->n_pk; i++) {
		uint8_t ack[4];
		if (send(fd, s->pk[i].buf, (size_t)s->pk[i].len, MSG_NOSIGNAL) != s->pk[i].len ||
		    recv_all(fd, ack, 4) < 0 || ack[3] != s->pk[i].n) {
			s->failed = 1;
			break;
		}
		s->acked += ack[3];
	}
	close(fd);
	return NULL;
}

/* The same rows straight into SQLite, PER_TX records a transaction (across
 * packets and devices, in the order the senders' packets were built). */
static double raw_rate(const char *path, struct sender *s, long total, long per_tx)
{
	store *st = NULL;
	char err[512];
	if (store_open(path, &st, err, sizeof err) < 0) {
		fprintf(stderr, "ingest_rate: %s\n", err);
		exit(1);
	}
	sqlite3 *db = store_db(st);
	sqlite3_stmt *ins, *begin, *commit;
	sqlite3_prepare_v2(db,
			   "INSERT INTO records (run_id, imei, ts_device, ts_ms, arrival, arrival_ms, priority,"
			   " lat_e7, lon_e7, altitude, angle, satellites, speed, event_io, io, late,"
			   " out_of_order, packet_seq, content_hash)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
			   " ?17, ?18, ?19) ON CONFLICT (coalesce(run_id, 0), imei, ts_ms, content_hash) DO NOTHING",
			   -1, &ins, NULL);
	sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
	sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
	/* Rows decoded and formatted before the clock starts: this side pays
	 * for SQLite alone. */
	struct tlt_record *recs = calloc(TLT_MAX_RECORDS, sizeof *recs);
	int64_t spent = 0;
	long done = 0;
	for (int d = 0; d < SENDERS; d++)
		for (int p = 0; p < s[d].n_pk; p++) {
			uint8_t codec;
			int n = tlt_avl_decode(s[d].pk[p].buf, (size_t)s[d].pk[p].len, recs, TLT_MAX_RECORDS, &codec,
					       err, sizeof err);
			static char iso[TLT_MAX_RECORDS][32], io[TLT_MAX_RECORDS][128];
			for (int i = 0; i < n; i++) {
				snprintf(iso[i], sizeof iso[i], "2026-11-26T08:00:00.%03dZ", i);
				snprintf(io[i], sizeof io[i], "{\"239\":1,\"240\":1,\"21\":4,\"66\":%d,\"69\":1}", 12800 + i);
			}
			int64_t t = now_ns();
			for (int i = 0; i < n; i++) {
				if (done % per_tx == 0) {
					sqlite3_step(begin);
					sqlite3_reset(begin);
				}
				sqlite3_bind_null(ins, 1);
				sqlite3_bind_text(ins, 2, s[d].imei, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins, 3, iso[i], -1, SQLITE_STATIC);
				sqlite3_bind_int64(ins, 4, (int64_t)recs[i].timestamp_ms);
				sqlite3_bind_text(ins, 5, iso[i], -1, SQLITE_STATIC);
				sqlite3_bind_int64(ins, 6, (int64_t)recs[i].timestamp_ms + 5000);
				sqlite3_bind_int(ins, 7, recs[i].priority);
				sqlite3_bind_int(ins, 8, recs[i].lat_e7);
				sqlite3_bind_int(ins, 9, recs[i].lon_e7);
				sqlite3_bind_int(ins, 10, recs[i].altitude_m);
				sqlite3_bind_int(ins, 11, recs[i].angle);
				sqlite3_bind_int(ins, 12, recs[i].satellites);
				sqlite3_bind_int(ins, 13, recs[i].speed_kmh);
				sqlite3_bind_int(ins, 14, recs[i].event_io);
				sqlite3_bind_text(ins, 15, io[i], -1, SQLITE_STATIC);
				sqlite3_bind_int(ins, 16, 0);
				sqlite3_bind_int(ins, 17, 0);
				sqlite3_bind_int64(ins, 18, p + 1);
				sqlite3_bind_int64(ins, 19, (int64_t)recs[i].timestamp_ms * 31 + i);
				if (sqlite3_step(ins) != SQLITE_DONE) {
					fprintf(stderr, "ingest_rate: raw insert: %s\n", sqlite3_errmsg(db));
					exit(1);
				}
				sqlite3_reset(ins);
				if (++done % per_tx == 0 || done == total) {
					sqlite3_step(commit);
					sqlite3_reset(commit);
				}
			}
			spent += now_ns() - t;
		}
	free(recs);
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	store_close(st);
	if (done != total)
		fprintf(stderr, "ingest_rate: raw stored %ld of %ld\n", done, total);
	return (double)done / ((double)spent / 1e9);
}

static double decode_rate(struct sender *s, long total)
{
	struct tlt_record *recs = calloc(TLT_MAX_RECORDS, sizeof *recs);
	char err[256];
	long n = 0;
	int64_t t = now_ns();
	for (int d = 0; d < SENDERS; d++)
		for (int p = 0; p < s[d].n_pk; p++) {
			uint8_t codec;
			int k = tlt_avl_decode(s[d].pk[p].buf, (size_t)s[d].pk[p].len, recs, TLT_MAX_RECORDS, &codec,
					       err, sizeof err);
			if (k > 0)
				n += k;
		}
	double rate = (double)n / ((double)(now_ns() - t) / 1e9);
	free(recs);
	if (n != total)
		fprintf(stderr, "ingest_rate: decoded %ld of %ld\n", n, total);
	return rate;
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx;
	(void)line;
}

/* One ingest round into DB: records per second and per commit. */
static int ingest_round(const char *db, struct sender *s, const char **allow, long total, double *rate,
			double *per_commit)
{
	struct ingest_opts o = { .host = "127.0.0.1", .db_path = db, .allow = allow, .n_allow = SENDERS,
				 .log = quiet };
	ingest *ing = NULL;
	char err[512];
	if (ingest_start(&o, &ing, err, sizeof err) < 0) {
		fprintf(stderr, "ingest_rate: %s\n", err);
		return -1;
	}
	pthread_t th[SENDERS];
	int64_t t = now_ns();
	for (int d = 0; d < SENDERS; d++) {
		s[d].port = ingest_port(ing);
		s[d].acked = 0;
		s[d].failed = 0;
		pthread_create(&th[d], NULL, send_main, &s[d]);
	}
	long acked = 0;
	int failed = 0;
	for (int d = 0; d < SENDERS; d++) {
		pthread_join(th[d], NULL);
		acked += s[d].acked;
		failed += s[d].failed;
	}
	double secs = (double)(now_ns() - t) / 1e9;
	uint64_t commits = ingest_commits(ing);
	ingest_stop(ing);
	if (failed || acked != total || !commits) {
		fprintf(stderr, "ingest_rate: %d senders failed, %ld of %ld acked\n", failed, acked, total);
		return -1;
	}
	*rate = (double)total / secs;
	*per_commit = (double)total / (double)commits;
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define ROUNDS 3

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 120000;
	long per = total / SENDERS;
	total = per * SENDERS;
	char dir[] = "/tmp/trackrig-bench-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct sender s[SENDERS];
	const char *allow[SENDERS];
	uint64_t t0 = 1764144000000ULL; /* 2025-11-26 */
	for (int d = 0; d < SENDERS; d++) {
		memset(&s[d], 0, sizeof s[d]);
		snprintf(s[d].imei, sizeof s[d].imei, "3563070424420%02d", d);
		allow[d] = s[d].imei;
		s[d].pk = build(d, per, t0, &s[d].n_pk);
	}
	printf("ingest_rate: %ld codec 8E records a round, %d senders, %d records per packet, %d rounds A B A B\n",
	       total, SENDERS, s[0].pk[0].n, ROUNDS);
	double ing[ROUNDS], raw[ROUNDS], ratio[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		char db_ingest[64], db_raw[64];
		snprintf(db_ingest, sizeof db_ingest, "%s/ingest-%d.db", dir, r);
		snprintf(db_raw, sizeof db_raw, "%s/raw-%d.db", dir, r);
		double per_commit;
		if (ingest_round(db_ingest, s, allow, total, &ing[r], &per_commit) < 0)
			return 1;
		long per_tx = (long)(per_commit + 0.5) > 0 ? (long)(per_commit + 0.5) : 1;
		raw[r] = raw_rate(db_raw, s, total, per_tx);
		ratio[r] = ing[r] / raw[r];
		printf("  round %d: ingest %10.0f records/s (%.1f records per commit)   raw, %ld per commit %10.0f"
		       " records/s   ratio %.2f\n", r + 1, ing[r], per_commit, per_tx, raw[r], ratio[r]);
	}
	double dec = decode_rate(s, total);
	qsort(ing, ROUNDS, sizeof ing[0], cmp_d);
	qsort(raw, ROUNDS, sizeof raw[0], cmp_d);
	qsort(ratio, ROUNDS, sizeof ratio[0], cmp_d);
	double med = ratio[ROUNDS / 2];
	printf("%-34s %12.0f records/s (median round)\n", "ingest (TCP+decode+CRC+store+ack)", ing[ROUNDS / 2]);
	printf("%-34s %12.0f records/s (median round)\n", "raw SQLite insert, same commits", raw[ROUNDS / 2]);
	printf("%-34s %12.0f records/s\n", "decode only (CRC included)", dec);
	printf("ratio ingest/raw, median round %.2f (target >= 0.70): %s\n", med, med >= 0.7 ? "met" : "MISSED");

	for (int d = 0; d < SENDERS; d++) {
		for (int p = 0; p < s[d].n_pk; p++)
			free(s[d].pk[p].buf);
		free(s[d].pk);
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "ingest_rate: could not remove %s\n", dir);
	return med >= 0.7 ? 0 : 1;
}
