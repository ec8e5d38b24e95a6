/*
 * ingest.c - the telemetry server; the contract is in ingest.h, the design
 * in docs/uplink.md.
 *
 * Shape: one thread, one epoll fd over the listening socket, a wake-up
 * eventfd and every connection. Each connection reads into its own buffer
 * of one packet's size and is processed packet by packet: login, then AVL
 * packets (decoded, stored in one transaction, then acked) and codec 12
 * responses. Anything malformed drops that connection only, with the reason
 * on the log and as an event row; nothing of the bad packet is stored and
 * nothing stored earlier is touched.
 *
 * Locking: the device table's allowed entries are fixed at start; their
 * stats and the refused entries are guarded by ing->mu, their codec 12
 * command channels (rig/ingest_cmd.c) by the channel's own lock.
 * Connections, the store and its statements belong to the thread alone.
 */
#include "ingest.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "ingest_cmd.h"
#include "ingest_frame.h"
#include "store.h"
#include "store_records.h"
#include "teltonika_codec.h"

/* A packet, plus room for what a device sends right behind it. */
#define RX_CAP (TLT_PACKET_MAX + 256)
/* Acks are 4 bytes, a command at most ~530: a peer that lets this much
 * pile up is not reading, and is dropped. */
#define TX_CAP 4096
/* Refused IMEIs get a stats entry so an operator sees who knocks; a flood
 * of made-up ones must not grow memory without bound. */
#define MAX_REFUSED 256
/* Events caused by strangers (refused logins, links dropped before a
 * login) are aggregated: one row per kind, IMEI or address, and minute,
 * its count kept current; at most STRANGER_KEYS rows a minute (the rest
 * share one "(others)" row per kind) and STRANGER_ROWS_MAX in a server's
 * life, so nobody off the allow list can grow the store without bound. */
#define STRANGER_KEYS 32
#define STRANGER_ROWS_MAX 2000
#define EV_LISTEN 0
#define EV_WAKE 1
#define EV_CONN_BASE 2

struct conn;

struct device {
	char imei[16];
	bool allowed;
	struct ingest_device_stats st;      /* mu */
	struct ingest_device_stats flushed; /* thread: what uplink_usage holds */
	char peer[64];                      /* mu: where it is connected from */
	/* codec 12 commands and responses (its own lock); allowed IMEIs only */
	struct ingest_cmd *cmd;
	/* thread only */
	struct conn *conn;
	bool loaded;
	int64_t newest_ms, seq;
};

enum conn_state { C_FREE, C_LOGIN, C_DATA };

/* Packets stored in the open batch transaction but not yet acked: acks go
 * out only after the batch commits. */
/* A read brings at most RX_CAP bytes, ~34 minimal packets; a connection
 * stops being read at PENDING_READ_CAP, so MAX_PENDING is never reached. */
#define MAX_PENDING 80
#define PENDING_READ_CAP 32
struct pending {
	uint8_t acks[MAX_PENDING];  /* record counts, in packet order */
	int n;
	uint64_t packets, records, duplicates, late, out_of_order;
	uint64_t unasked;           /* packets sent twice on one link */
	int64_t newest, arrival;
};

struct conn {
	enum conn_state state;
	int fd;
	char peer[64];
	char host[48];                      /* peer address without the port */
	uint64_t accepted;                  /* accept order: the oldest is evicted first */
	struct device *dev;
	uint8_t rx[RX_CAP];
	size_t rx_len;
	uint8_t tx[TX_CAP];
	size_t tx_len;
	bool want_out;
	uint64_t pre_login_up;
	int64_t opened, last_rx, pkt_start; /* clock ms; pkt_start -1: none */
	bool acked_once;
	/* Logged in INGEST_C12_SETTLE_MS ago: a device with no records to
	 * send takes commands without a first ack. */
	bool settled;
	int64_t logged_in_at;
	bool cmd_outstanding;
	int64_t cmd_sent;
	struct pending pend;
	/* Packets this link already carried (CRC and length): the same packet
	 * again on the same link was sent unasked, whereas one sent again on a
	 * new link after a reconnect is a correct resend of a lost ack. */
	uint32_t carried[32];
	unsigned n_carried;
};

/* One aggregated stranger event row (thread only). */
struct stranger_row {
	char kind[24];
	char key[48];                       /* IMEI or address; "(others)" */
	int64_t row_id;
	uint64_t count;
	bool dirty;                         /* count not yet written */
	char latest[400];                   /* the latest detail */
};

struct ingest {
	struct ingest_opts o;
	rig_clock *clock;
	bool own_clock;
	store *db;
	store_records_writer *w;            /* the ingest's kept statements */
	/* Packets that arrive together share one transaction (one commit, one
	 * WAL write); each is acked only after it commits. */
	bool in_batch;
	uint64_t commits;           /* batches committed (under mu): what a commit holds, for benchmarks */
	int listen_fd, wake_fd, ep;
	int port;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	bool stop;                          /* mu */
	struct device *devs;                /* n_allow allowed, then refused */
	size_t n_allowed, n_devs, cap_devs;
	struct conn *conns;
	int n_conns;
	int n_slots;                        /* conns[]: allowed IMEIs + unauth budget + 1 */
	int n_unauth, unauth_budget;        /* connections not logged in, and their cap */
	uint64_t accept_seq;
	/* stranger events (thread only) */
	struct stranger_row agg[STRANGER_KEYS + 2];
	int n_agg;
	int64_t agg_minute;
	uint64_t stranger_rows, stranger_unrecorded;
	struct tlt_record *recs;            /* TLT_MAX_RECORDS, decode scratch */
	char *io_json;
};

/* ---- small helpers ---- */

__attribute__((format(printf, 2, 3)))
static void logf_(ingest *ing, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (ing->o.log)
		ing->o.log(ing->o.log_ctx, line);
	else
		fprintf(stderr, "rig ingest: %s\n", line);
}

static void iso_ms(int64_t ms, char *buf, size_t len)
{
	time_iso_ms(ms, buf, len);
}

static int64_t now_ms(ingest *ing) { return clock_now(ing->clock); }

static void wake(ingest *ing)
{
	uint64_t one = 1;
	if (write(ing->wake_fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is already non-zero, the thread will wake. */
	}
}

static void wake_cb(void *ing) { wake(ing); }

static struct device *find_allowed(ingest *ing, const char *imei)
{
	for (size_t i = 0; i < ing->n_allowed; i++)
		if (strcmp(ing->devs[i].imei, imei) == 0)
			return &ing->devs[i];
	return NULL;
}

/* Entry for a refused IMEI, created on first sight; NULL beyond MAX_REFUSED.
 * Called with mu held. */
static struct device *refused_entry(ingest *ing, const char *imei)
{
	for (size_t i = ing->n_allowed; i < ing->n_devs; i++)
		if (strcmp(ing->devs[i].imei, imei) == 0)
			return &ing->devs[i];
	if (ing->n_devs == ing->cap_devs)
		return NULL;
	struct device *d = &ing->devs[ing->n_devs++];
	memset(d, 0, sizeof *d);
	snprintf(d->imei, sizeof d->imei, "%s", imei);
	snprintf(d->st.imei, sizeof d->st.imei, "%s", imei);
	return d;
}

/* ---- store ---- */

static int prepare(ingest *ing, char *err, size_t errlen)
{
	return store_records_writer_open(ing->db, &ing->w, err, errlen);
}

/* FNV-1a over every decoded field: two records with the same IMEI and
 * timestamp but different content are both kept. */
static uint64_t record_hash(const struct tlt_record *r)
{
	uint64_t h = 1469598103934665603ULL;
#define MIX(v)                                                                  \
	do {                                                                    \
		uint64_t x_ = (uint64_t)(v);                                    \
		for (int k_ = 0; k_ < 8; k_++) {                                \
			h ^= (x_ >> (8 * k_)) & 0xff;                           \
			h *= 1099511628211ULL;                                  \
		}                                                               \
	} while (0)
	MIX(r->timestamp_ms);
	MIX(r->priority);
	MIX((uint32_t)r->lon_e7);
	MIX((uint32_t)r->lat_e7);
	MIX((uint16_t)r->altitude_m);
	MIX(r->angle);
	MIX(r->satellites);
	MIX(r->speed_kmh);
	MIX(r->event_io);
	MIX(r->n_io);
	for (unsigned i = 0; i < r->n_io && i < TLT_MAX_IO; i++) {
		MIX(r->io[i].id);
		MIX(r->io[i].size);
		MIX(r->io[i].value);
		MIX(r->io[i].nx_len);
	}
#undef MIX
	return h;
}

/* {"21":3,"66":24079}; NX values are not kept by the codec, only noted. */
static const char *io_json(const struct tlt_record *r, char *buf, size_t len)
{
	size_t n = 0;
	buf[n++] = '{';
	for (unsigned i = 0; i < r->n_io && i < TLT_MAX_IO; i++) {
		int w = r->io[i].size ? snprintf(buf + n, len - n, "%s\"%u\":%" PRIu64, i ? "," : "",
						 r->io[i].id, r->io[i].value)
				      : snprintf(buf + n, len - n, "%s\"%u\":null", i ? "," : "", r->io[i].id);
		if (w < 0 || (size_t)w >= len - n - 2)
			break;
		n += (size_t)w;
	}
	buf[n++] = '}';
	buf[n] = '\0';
	return buf;
}

static int load_device(ingest *ing, struct device *d)
{
	if (d->loaded)
		return 0;
	if (store_records_newest(ing->w, d->imei, &d->newest_ms, &d->seq) < 0)
		return -1;
	d->loaded = true;
	return 0;
}

/* Adds CUR minus what uplink_usage already holds for D to its row. The
 * caller moves d->flushed to CUR once the write is committed. */
static int write_usage_vals(ingest *ing, struct device *d, const struct ingest_device_stats *cur, const char *at)
{
	const struct ingest_device_stats *f = &d->flushed;
	int64_t delta[STORE_USAGE_FIELDS] = {
		(int64_t)(cur->bytes_up - f->bytes_up), (int64_t)(cur->bytes_down - f->bytes_down),
		(int64_t)(cur->packets - f->packets), (int64_t)(cur->records - f->records),
		(int64_t)(cur->duplicates - f->duplicates), (int64_t)(cur->refused_logins - f->refused_logins),
	};
	bool any = false;
	for (int i = 0; i < 6; i++)
		any |= delta[i] != 0;
	if (!any)
		return 0;
	return store_uplink_usage_add(ing->w, ing->o.run_id, d->imei, delta, at);
}

/* The device's usage row brought up to its current figures, on its own
 * (or inside the open batch). */
static int write_usage(ingest *ing, struct device *d, const char *at)
{
	pthread_mutex_lock(&ing->mu);
	struct ingest_device_stats cur = d->st;
	pthread_mutex_unlock(&ing->mu);
	if (write_usage_vals(ing, d, &cur, at) < 0)
		return -1;
	/* Inside a batch that later rolls back this undercounts usage a
	 * little; it never counts twice. */
	d->flushed = cur;
	return 0;
}

/* Stores N records of device D inside the open batch transaction and adds
 * the outcome to P. Returns 0, or -1 with the reason in WHY (the batch is
 * then rolled back by the caller). */
static int store_records(ingest *ing, struct device *d, const struct tlt_record *recs, int n,
			 int64_t arrival_unix, const char *arrival_iso, struct pending *p, char *why,
			 size_t whylen)
{
	if (load_device(ing, d) < 0) {
		snprintf(why, whylen, "store: read newest record: %s", store_sqlite_message(ing->db));
		return -1;
	}
	int64_t seq = d->seq + 1;
	/* Out of order is judged against earlier packets only: the order inside
	 * a packet is the device's sort setting (newest first is legal). */
	int64_t newest_before = d->newest_ms, newest = d->newest_ms;
	char ts_iso[40];
	for (int i = 0; i < n; i++) {
		const struct tlt_record *r = &recs[i];
		int64_t ts = (int64_t)r->timestamp_ms;
		bool late = arrival_unix - ts > ing->o.late_ms;
		bool ooo = ts < newest_before;
		iso_ms(ts, ts_iso, sizeof ts_iso);
		const struct store_record row = {
			.run_id = ing->o.run_id, .imei = d->imei, .ts_device = ts_iso, .ts_ms = ts,
			.arrival = arrival_iso, .arrival_ms = arrival_unix, .priority = r->priority,
			.lat_e7 = r->lat_e7, .lon_e7 = r->lon_e7, .altitude = r->altitude_m, .angle = r->angle,
			.satellites = r->satellites, .speed = r->speed_kmh, .event_io = r->event_io,
			.io = io_json(r, ing->io_json, 4096), .late = late, .out_of_order = ooo, .packet_seq = seq,
			.content_hash = (int64_t)record_hash(r),
		};
		int rc = store_record_add(ing->w, &row);
		if (rc < 0) {
			snprintf(why, whylen, "store: insert record %d: %s", i, store_sqlite_message(ing->db));
			return -1;
		}
		if (rc == 0) {
			p->duplicates++;
			continue;
		}
		p->records++;
		p->late += late;
		p->out_of_order += ooo;
		if (ts > newest)
			newest = ts;
	}
	/* Moved now so the next packet in the same batch is judged right; a
	 * rolled-back batch re-reads them (loaded = false). */
	d->seq = seq;
	d->newest_ms = newest;
	p->packets++;
	p->newest = newest;
	p->arrival = arrival_unix;
	return 0;
}

static void store_ingest_event(ingest *ing, const char *imei, const char *kind, const char *detail)
{
	char at[40];
	clock_iso(ing->clock, now_ms(ing), at, sizeof at);
	struct store_event e = {
		.run_id = ing->o.run_id, .imei = imei, .at = at, .source = "ingest", .kind = kind,
		.detail = detail,
	};
	if (store_event_add(ing->db, &e) < 0)
		logf_(ing, "cannot store event %s: %s", kind, store_error(ing->db));
}

static int batch_begin(ingest *ing, char *why, size_t whylen);

static struct stranger_row *stranger_find(ingest *ing, const char *kind, const char *key)
{
	for (int i = 0; i < ing->n_agg; i++)
		if (!strcmp(ing->agg[i].kind, kind) && !strcmp(ing->agg[i].key, key))
			return &ing->agg[i];
	return NULL;
}

/* A new aggregate row for KIND/KEY this minute, or NULL when the minute's
 * or the server's share of rows is used up. */
static struct stranger_row *stranger_new(ingest *ing, const char *kind, const char *key, const char *imei,
					 const char *detail)
{
	if (ing->n_agg >= (int)(sizeof ing->agg / sizeof ing->agg[0]) || ing->stranger_rows >= STRANGER_ROWS_MAX)
		return NULL;
	char at[40], from[40], text[700];
	clock_iso(ing->clock, now_ms(ing), at, sizeof at);
	clock_iso(ing->clock, ing->agg_minute * 60000, from, sizeof from);
	snprintf(text, sizeof text, "count 1 in the minute from %s: %s", from, detail);
	struct store_event e = {
		.run_id = ing->o.run_id, .imei = imei, .at = at, .source = "ingest", .kind = kind, .detail = text,
	};
	int64_t id = store_event_add(ing->db, &e);
	if (id < 0) {
		logf_(ing, "cannot store event %s: %s", kind, store_error(ing->db));
		return NULL;
	}
	ing->stranger_rows++;
	struct stranger_row *r = &ing->agg[ing->n_agg++];
	snprintf(r->kind, sizeof r->kind, "%s", kind);
	snprintf(r->key, sizeof r->key, "%s", key);
	r->row_id = id;
	r->count = 1;
	logf_(ing, "%s (more of the same this minute are counted, not logged)", detail);
	return r;
}

/* Counted in memory; strangers_flush() writes the counts, once per turn
 * of the server loop, so a flood costs one transaction per turn, not one
 * per connection. */
static void stranger_count(struct stranger_row *r, const char *detail)
{
	r->count++;
	r->dirty = true;
	snprintf(r->latest, sizeof r->latest, "%s", detail);
}

static void strangers_flush(ingest *ing)
{
	bool any = false;
	for (int i = 0; i < ing->n_agg; i++)
		any |= ing->agg[i].dirty;
	char why[300], from[40], text[700];
	if (!any)
		return;
	if (batch_begin(ing, why, sizeof why) < 0) {
		logf_(ing, "cannot count strangers' events: %s", why);
		return;
	}
	clock_iso(ing->clock, ing->agg_minute * 60000, from, sizeof from);
	for (int i = 0; i < ing->n_agg; i++) {
		struct stranger_row *r = &ing->agg[i];
		if (!r->dirty)
			continue;
		r->dirty = false;
		snprintf(text, sizeof text, "count %" PRIu64 " in the minute from %s, the latest: %s", r->count, from,
			 r->latest);
		if (store_event_detail_set(ing->w, r->row_id, text) < 0)
			logf_(ing, "cannot count event %s: %s", r->kind, store_sqlite_message(ing->db));
	}
}

/* Records an event caused by a stranger (KEY: the IMEI it gave or its
 * address): one row per KEY and minute with a count, bounded. */
static void stranger_event(ingest *ing, const char *kind, const char *key, const char *imei, const char *detail)
{
	int64_t minute = now_ms(ing) / 60000;
	if (minute != ing->agg_minute) {
		strangers_flush(ing);
		ing->n_agg = 0;
		ing->agg_minute = minute;
	}
	struct stranger_row *r = stranger_find(ing, kind, key);
	if (!r && ing->n_agg < STRANGER_KEYS && stranger_new(ing, kind, key, imei, detail))
		return;
	if (!r)
		r = stranger_find(ing, kind, "(others)");
	if (!r && stranger_new(ing, kind, "(others)", NULL, detail))
		return;
	if (!r) {
		ing->stranger_unrecorded++;
		return;
	}
	stranger_count(r, detail);
}

/* ---- connections ---- */

static void add_pending(struct ingest_device_stats *st, const struct pending *p)
{
	st->packets += p->packets;
	st->records += p->records;
	st->duplicates += p->duplicates;
	st->dup_unasked += p->unasked;
	st->late += p->late;
	st->out_of_order += p->out_of_order;
	st->bytes_down += 4 * (uint64_t)p->n;
	if (p->records && p->newest > st->last_record_ms)
		st->last_record_ms = p->newest;
	if (p->arrival)
		st->last_arrival_ms = p->arrival;
}

/* WHY: how the link ended, for a command still waiting on it. */
static void conn_close(ingest *ing, struct conn *c, const char *why)
{
	epoll_ctl(ing->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	struct device *d = c->dev;
	if (d && c->pend.n > 0) {
		/* Stored in the open batch but never acked (the device will send
		 * them again as duplicates): still counted once committed. */
		c->pend.n = 0;
		pthread_mutex_lock(&ing->mu);
		add_pending(&d->st, &c->pend);
		pthread_mutex_unlock(&ing->mu);
	}
	memset(&c->pend, 0, sizeof c->pend);
	if (d && d->conn == c) {
		d->conn = NULL;
		pthread_mutex_lock(&ing->mu);
		d->st.connected = 0;
		pthread_mutex_unlock(&ing->mu);
		/* A waiting command will never be answered now: tell its asker. */
		if (d->cmd)
			ingest_cmd_offline(d->cmd, why ? why : "closed");
		char at[40];
		clock_iso(ing->clock, now_ms(ing), at, sizeof at);
		write_usage(ing, d, at);
	}
	if (c->state == C_LOGIN)
		ing->n_unauth--;
	c->state = C_FREE;
	c->fd = -1;
	c->dev = NULL;
	c->n_carried = 0;
	ing->n_conns--;
}

__attribute__((format(printf, 3, 4)))
static void conn_drop(ingest *ing, struct conn *c, const char *fmt, ...)
{
	char why[400], detail[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	const char *imei = c->dev ? c->dev->imei : NULL;
	snprintf(detail, sizeof detail, "peer %s IMEI %s: %s", c->peer, imei ? imei : "(none)", why);
	if (!c->dev) {
		/* Never logged in: a stranger, aggregated by address. */
		stranger_event(ing, "connection_dropped", c->host, NULL, detail);
		conn_close(ing, c, why);
		return;
	}
	logf_(ing, "dropped %s IMEI %s: %s", c->peer, imei ? imei : "(none)", why);
	pthread_mutex_lock(&ing->mu);
	if (c->dev)
		c->dev->st.drops++;
	pthread_mutex_unlock(&ing->mu);
	store_ingest_event(ing, imei, "connection_dropped", detail);
	conn_close(ing, c, why);
}

static void set_out_interest(ingest *ing, struct conn *c, bool want)
{
	if (c->want_out == want)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
				  .data.u64 = EV_CONN_BASE + (uint64_t)(c - ing->conns) };
	epoll_ctl(ing->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

/* Writes what is queued. Returns 0, or -1 when the peer is gone. */
static int conn_flush(ingest *ing, struct conn *c)
{
	while (c->tx_len > 0) {
		ssize_t w = send(c->fd, c->tx, c->tx_len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return -1;
		memmove(c->tx, c->tx + w, c->tx_len - (size_t)w);
		c->tx_len -= (size_t)w;
	}
	set_out_interest(ing, c, c->tx_len > 0);
	return 0;
}

/* Queues and sends N bytes; COUNT adds them to the device's bytes down
 * (acks are counted inside their packet's transaction instead). Returns 0,
 * or -1 after dropping C. */
static int conn_send(ingest *ing, struct conn *c, const void *buf, size_t n, bool count)
{
	if (n > sizeof c->tx - c->tx_len) {
		conn_drop(ing, c, "not reading what the server sends (%zu bytes queued)", c->tx_len);
		return -1;
	}
	memcpy(c->tx + c->tx_len, buf, n);
	c->tx_len += n;
	if (c->dev && count) {
		pthread_mutex_lock(&ing->mu);
		c->dev->st.bytes_down += n;
		pthread_mutex_unlock(&ing->mu);
	}
	if (conn_flush(ing, c) < 0) {
		conn_drop(ing, c, "send failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static const char *tlt_err_name(int rc)
{
	switch (rc) {
	case TLT_ERR_CRC: return "bad CRC";
	case TLT_ERR_CODEC: return "unknown codec";
	case TLT_ERR_TOO_BIG: return "oversize packet";
	case TLT_ERR_SPACE: return "too many records";
	default: return "malformed packet";
	}
}

/* A login frame for IMEI. Returns 0, or -1 when C is gone. */
static int handle_login(ingest *ing, struct conn *c, const char *imei)
{
	struct device *d = find_allowed(ing, imei);
	if (!d) {
		pthread_mutex_lock(&ing->mu);
		struct device *r = refused_entry(ing, imei);
		if (r) {
			r->st.refused_logins++;
			r->st.bytes_up += c->pre_login_up;
			r->st.bytes_down += 1;
		}
		pthread_mutex_unlock(&ing->mu);
		char detail[200];
		snprintf(detail, sizeof detail, "refused IMEI %s from %s: not on the rack or allow list", imei, c->peer);
		stranger_event(ing, "login_refused", imei, imei, detail);
		if (r) {
			char at[40];
			clock_iso(ing->clock, now_ms(ing), at, sizeof at);
			write_usage(ing, r, at);
		}
		uint8_t no = 0x00;
		if (send(c->fd, &no, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* closing anyway */
		}
		conn_close(ing, c, "login refused");
		return -1;
	}
	if (d->conn) {
		/* The device reconnected while its old link looked alive: the
		 * old one is dead on its side (NAT timeout, modem reset). */
		conn_drop(ing, d->conn, "replaced by a new login of the same IMEI from %s", c->peer);
	}
	c->dev = d;
	d->conn = c;
	c->state = C_DATA;
	ing->n_unauth--;
	c->last_rx = c->logged_in_at = now_ms(ing);
	c->settled = false;
	/* Before the stats say connected: whoever sees that can ask at once. */
	ingest_cmd_online(d->cmd, c->peer);
	pthread_mutex_lock(&ing->mu);
	d->st.connected = 1;
	d->st.bytes_up += c->pre_login_up;
	snprintf(d->peer, sizeof d->peer, "%s", c->peer);
	pthread_mutex_unlock(&ing->mu);
	logf_(ing, "IMEI %s logged in from %s", imei, c->peer);
	uint8_t yes = 0x01;
	return conn_send(ing, c, &yes, 1, true);
}

/* A codec 12 message from the device: the answer to our command. A
 * response that is framed but unreadable (CRC, sizes) leaves the stream in
 * step, so the link stays up: the asker gets the error and the store an
 * event. Only a device sending commands itself is dropped. */
static int handle_c12(ingest *ing, struct conn *c, size_t total)
{
	char why[300];
	c->cmd_outstanding = false;
	struct device *d = c->dev;
	switch (ingest_cmd_frame(d->cmd, c->rx, total, why, sizeof why)) {
	case INGEST_CMD_ANSWER:
		return 0;
	case INGEST_CMD_STALE:
		logf_(ing, "IMEI %s: codec 12 answer nobody waits for any more (dropped): %s", d->imei, why);
		return 0;
	case INGEST_CMD_MALFORMED: {
		char detail[420];
		snprintf(detail, sizeof detail, "peer %.60s IMEI %s: malformed codec 12 response: %.300s", c->peer, d->imei,
			 why);
		logf_(ing, "%s", detail);
		store_ingest_event(ing, d->imei, "command_response_bad", detail);
		return 0;
	}
	case INGEST_CMD_NOT_RESPONSE:
		break;
	}
	conn_drop(ing, c, "%s", why);
	return -1;
}

/* The batch could not be stored: nothing of it is acked, and every
 * connection that had a packet in it is dropped (its device sends again). */
static void batch_fail(ingest *ing, const char *why)
{
	store_note_write_failure(ing->db, why); /* the run that started us ends in exit 3 */
	for (int i = 0; i < ing->n_slots; i++) {
		struct conn *c = &ing->conns[i];
		if (c->dev)
			c->dev->loaded = false; /* newest and seq re-read from the store */
		if (c->state == C_FREE || c->pend.n == 0)
			continue;
		memset(&c->pend, 0, sizeof c->pend);
		conn_drop(ing, c, "%s", why);
	}
	for (size_t i = 0; i < ing->n_devs; i++)
		ing->devs[i].loaded = false;
}

static int batch_begin(ingest *ing, char *why, size_t whylen)
{
	if (ing->in_batch)
		return 0;
	if (store_begin(ing->db) < 0) {
		snprintf(why, whylen, "store: %s", store_error(ing->db));
		return -1;
	}
	ing->in_batch = true;
	return 0;
}

/* Commits the open batch with every device's usage, then acks each packet
 * in it: an ack always means "committed". */
static void batch_end(ingest *ing)
{
	if (!ing->in_batch)
		return;
	char at[40];
	clock_iso(ing->clock, now_ms(ing), at, sizeof at);
	bool ok = true;
	for (int i = 0; i < ing->n_slots && ok; i++) {
		struct conn *c = &ing->conns[i];
		if (c->state == C_FREE || c->pend.n == 0 || !c->dev)
			continue;
		pthread_mutex_lock(&ing->mu);
		struct ingest_device_stats cur = c->dev->st;
		pthread_mutex_unlock(&ing->mu);
		add_pending(&cur, &c->pend);
		ok = write_usage_vals(ing, c->dev, &cur, at) == 0;
	}
	ing->in_batch = false;
	if (!ok || store_commit(ing->db) < 0) {
		char why[300];
		snprintf(why, sizeof why, "store: commit: %s", store_sqlite_message(ing->db));
		store_rollback(ing->db);
		batch_fail(ing, why);
		return;
	}
	pthread_mutex_lock(&ing->mu);
	ing->commits++;
	pthread_mutex_unlock(&ing->mu);
	for (int i = 0; i < ing->n_slots; i++) {
		struct conn *c = &ing->conns[i];
		if (c->state == C_FREE || c->pend.n == 0 || !c->dev)
			continue;
		pthread_mutex_lock(&ing->mu);
		add_pending(&c->dev->st, &c->pend);
		c->dev->flushed = c->dev->st;
		pthread_mutex_unlock(&ing->mu);
		uint8_t acks[MAX_PENDING * 4] = { 0 };
		int n = c->pend.n;
		for (int k = 0; k < n; k++)
			acks[4 * k + 3] = c->pend.acks[k];
		memset(&c->pend, 0, sizeof c->pend);
		if (conn_send(ing, c, acks, 4 * (size_t)n, false) == 0)
			c->acked_once = true;
	}
}

static int handle_avl(ingest *ing, struct conn *c, size_t total)
{
	char err[200];
	uint8_t codec = 0;
	int n = tlt_avl_decode(c->rx, total, ing->recs, TLT_MAX_RECORDS, &codec, err, sizeof err);
	if (n < 0) {
		conn_drop(ing, c, "%s: %s", tlt_err_name(n), err);
		return -1;
	}
	uint32_t key = (uint32_t)c->rx[total - 2] << 24 | (uint32_t)c->rx[total - 1] << 16 | (uint32_t)(total & 0xffff);
	bool again = false;
	for (unsigned i = 0; i < c->n_carried && i < 32; i++)
		again |= c->carried[i] == key;
	c->carried[c->n_carried++ % 32] = key;
	int64_t t = now_ms(ing);
	int64_t arrival_unix = clock_unix_ms(ing->clock, t);
	char arrival[40], why[300];
	clock_iso(ing->clock, t, arrival, sizeof arrival);
	if (batch_begin(ing, why, sizeof why) < 0 ||
	    store_records(ing, c->dev, ing->recs, n, arrival_unix, arrival, &c->pend, why, sizeof why) < 0) {
		/* Not acked: the device keeps the packet and sends it again. */
		if (ing->in_batch) {
			ing->in_batch = false;
			store_rollback(ing->db);
			batch_fail(ing, why);
		}
		if (c->state != C_FREE)
			conn_drop(ing, c, "%s", why);
		return -1;
	}
	c->pend.acks[c->pend.n++] = (uint8_t)n;
	c->pend.unasked += again;
	return 0;
}

/* Handles every complete frame in C's buffer, as ingest_frame_next()
 * splits them. Returns 0, or -1 when C is gone. */
static int process(ingest *ing, struct conn *c)
{
	while (c->rx_len > 0) {
		struct ingest_frame f;
		ingest_frame_next(c->rx, c->rx_len, c->state == C_DATA, &f);
		int h = 0;
		switch (f.kind) {
		case INGEST_FRAME_MORE:
			if (c->state == C_DATA && c->pkt_start < 0)
				c->pkt_start = now_ms(ing);
			return 0;
		case INGEST_FRAME_BAD:
			if (c->state == C_LOGIN)
				conn_drop(ing, c, "bad login: %s", f.why);
			else
				conn_drop(ing, c, "%s: %s", tlt_err_name(f.tlt_err), f.why);
			return -1;
		case INGEST_FRAME_LOGIN: h = handle_login(ing, c, f.imei); break;
		case INGEST_FRAME_C12: h = handle_c12(ing, c, f.len); break;
		case INGEST_FRAME_AVL: h = handle_avl(ing, c, f.len); break;
		}
		if (h < 0)
			return -1;
		memmove(c->rx, c->rx + f.len, c->rx_len - f.len);
		c->rx_len -= f.len;
		c->pkt_start = c->rx_len ? now_ms(ing) : -1;
	}
	return 0;
}

static void conn_readable(ingest *ing, struct conn *c)
{
	for (;;) {
		if (c->pend.n >= PENDING_READ_CAP)
			return; /* the rest after this batch's commit (epoll is level-triggered) */
		size_t room = sizeof c->rx - c->rx_len;
		if (room == 0) {
			/* Cannot happen with a sane length check; guard anyway. */
			conn_drop(ing, c, "receive buffer full without a complete packet");
			return;
		}
		ssize_t r = recv(c->fd, c->rx + c->rx_len, room, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			if (r < 0)
				conn_drop(ing, c, "read failed: %s", strerror(errno));
			else if (c->rx_len > 0)
				conn_drop(ing, c, "peer closed mid-%s (%zu bytes of it received)",
					  c->state == C_LOGIN ? "login" : "packet", c->rx_len);
			else {
				/* A stranger's quiet goodbye is not worth a line each. */
				if (c->dev)
					logf_(ing, "IMEI %s from %s disconnected", c->dev->imei, c->peer);
				conn_close(ing, c, "the device closed it");
			}
			return;
		}
		c->rx_len += (size_t)r;
		c->last_rx = now_ms(ing);
		if (c->dev) {
			pthread_mutex_lock(&ing->mu);
			c->dev->st.bytes_up += (uint64_t)r;
			pthread_mutex_unlock(&ing->mu);
		} else {
			c->pre_login_up += (uint64_t)r;
		}
		if (process(ing, c) < 0)
			return;
	}
}

/* A rig with 256 slots holds over 1024 fds, and libmodbus select()s on its
 * sockets, which must stay below FD_SETSIZE: the ingest's own fds (one per
 * connection; each device's command eventfd, rig/ingest_cmd.c) go above it
 * when the fd limit allows. */
static int fd_high(int fd)
{
	int h = fd >= 0 && fd < FD_SETSIZE ? fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE) : -1;
	if (h < 0)
		return fd;
	close(fd);
	return h;
}

/* The oldest connection not logged in, from HOST (NULL: from anyone); its
 * count from HOST in *N. */
static struct conn *oldest_unauth(ingest *ing, const char *host, int *n)
{
	struct conn *old = NULL;
	*n = 0;
	for (int i = 0; i < ing->n_slots; i++) {
		struct conn *c = &ing->conns[i];
		if (c->state != C_LOGIN || (host && strcmp(c->host, host)))
			continue;
		++*n;
		if (!old || c->accepted < old->accepted)
			old = c;
	}
	return old;
}

/* Makes room in the budget of connections not logged in for one more from
 * HOST: the oldest of HOST's goes when HOST has its share, else the oldest
 * of all when the budget is full. Logged-in links are never touched. */
static void make_unauth_room(ingest *ing, const char *host)
{
	int n;
	struct conn *old = oldest_unauth(ing, host, &n);
	if (old && n >= ing->o.max_unauth_per_peer) {
		conn_drop(ing, old, "evicted: the oldest of %d connections from %s not logged in (%d per address)", n,
			  host, ing->o.max_unauth_per_peer);
		return;
	}
	if (ing->n_unauth < ing->unauth_budget)
		return;
	old = oldest_unauth(ing, NULL, &n);
	if (old)
		conn_drop(ing, old, "evicted: the oldest of %d connections not logged in (the budget)", n);
}

static void peer_name(const struct sockaddr_storage *sa, char *host, size_t hlen, char *peer, size_t plen)
{
	int pport = 0;
	snprintf(host, hlen, "?");
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hlen);
		pport = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hlen);
		pport = ntohs(in6->sin6_port);
	}
	snprintf(peer, plen, "%s:%d", host, pport);
}

static void accept_all(ingest *ing)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof sa;
		int fd = fd_high(accept4(ing->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: the backlog keeps them for later */
		char host[48], peer[64];
		peer_name(&sa, host, sizeof host, peer, sizeof peer);
		make_unauth_room(ing, host);
		struct conn *c = NULL;
		for (int i = 0; i < ing->n_slots && !c; i++)
			if (ing->conns[i].state == C_FREE)
				c = &ing->conns[i];
		if (!c) {
			/* Cannot happen: logged-in links are at most one per
			 * allowed IMEI and the rest is the budget. */
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->state = C_LOGIN;
		c->fd = fd;
		snprintf(c->peer, sizeof c->peer, "%s", peer);
		snprintf(c->host, sizeof c->host, "%s", host);
		c->accepted = ++ing->accept_seq;
		c->dev = NULL;
		c->rx_len = c->tx_len = 0;
		c->want_out = false;
		c->pre_login_up = 0;
		c->opened = c->last_rx = now_ms(ing);
		c->pkt_start = -1;
		c->acked_once = c->cmd_outstanding = false;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_CONN_BASE + (uint64_t)(c - ing->conns) };
		if (epoll_ctl(ing->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			c->state = C_FREE;
			continue;
		}
		ing->n_conns++;
		ing->n_unauth++;
	}
}

static int64_t conn_deadline(ingest *ing, const struct conn *c)
{
	if (c->state == C_LOGIN)
		return c->opened + ing->o.login_timeout_ms;
	int64_t d = c->last_rx + ing->o.idle_timeout_ms;
	if (c->pkt_start >= 0 && c->pkt_start + ing->o.packet_timeout_ms < d)
		d = c->pkt_start + ing->o.packet_timeout_ms;
	if (c->cmd_outstanding && c->cmd_sent + ing->o.packet_timeout_ms < d)
		d = c->cmd_sent + ing->o.packet_timeout_ms;
	if (!c->settled && c->logged_in_at + INGEST_C12_SETTLE_MS < d)
		d = c->logged_in_at + INGEST_C12_SETTLE_MS;
	return d;
}

static void expire(ingest *ing)
{
	int64_t now = now_ms(ing);
	for (int i = 0; i < ing->n_slots; i++) {
		struct conn *c = &ing->conns[i];
		if (c->state == C_FREE)
			continue;
		if (c->state == C_LOGIN && now >= c->opened + ing->o.login_timeout_ms)
			conn_drop(ing, c, "no login within %d ms", ing->o.login_timeout_ms);
		else if (c->state == C_DATA && c->pkt_start >= 0 && now >= c->pkt_start + ing->o.packet_timeout_ms)
			conn_drop(ing, c, "packet not complete within %d ms (%zu bytes received): trickling sender",
				  ing->o.packet_timeout_ms, c->rx_len);
		else if (c->state == C_DATA && now >= c->last_rx + ing->o.idle_timeout_ms)
			conn_drop(ing, c, "idle for %d ms", ing->o.idle_timeout_ms);
		else if (c->state == C_DATA && c->cmd_outstanding && now >= c->cmd_sent + ing->o.packet_timeout_ms)
			c->cmd_outstanding = false; /* unanswered: let the next command go */
		if (c->state == C_DATA && !c->settled && now >= c->logged_in_at + INGEST_C12_SETTLE_MS)
			c->settled = true;
	}
}

/* Sends queued codec 12 commands to devices whose link is idle: logged in,
 * its records acked (or its login INGEST_C12_SETTLE_MS ago), nothing
 * half read or waiting for its ack, no command outstanding. */
static void pump_commands(ingest *ing)
{
	for (size_t i = 0; i < ing->n_allowed; i++) {
		struct device *d = &ing->devs[i];
		struct conn *c = d->conn;
		if (!c || c->state != C_DATA || c->rx_len || c->cmd_outstanding || c->pend.n)
			continue;
		if (!c->acked_once && !c->settled)
			continue;
		char text[TRACKER_LINE_MAX + 1];
		if (!ingest_cmd_take(d->cmd, text, sizeof text))
			continue;
		uint8_t buf[TRACKER_LINE_MAX + 32];
		int n = tlt_c12_encode(TLT_C12_COMMAND, text, strlen(text), buf, sizeof buf);
		if (n < 0)
			continue; /* cannot happen: the channel refuses longer text */
		if (conn_send(ing, c, buf, (size_t)n, true) < 0)
			continue;
		c->cmd_outstanding = true;
		c->cmd_sent = now_ms(ing);
	}
}

static bool stopping(ingest *ing)
{
	pthread_mutex_lock(&ing->mu);
	bool s = ing->stop;
	pthread_mutex_unlock(&ing->mu);
	return s;
}

static void *serve(void *arg)
{
	ingest *ing = arg;
	struct epoll_event evs[64];
	while (!stopping(ing)) {
		int64_t deadline = INT64_MAX;
		for (int i = 0; i < ing->n_slots; i++)
			if (ing->conns[i].state != C_FREE) {
				int64_t d = conn_deadline(ing, &ing->conns[i]);
				if (d < deadline)
					deadline = d;
			}
		/* Through the clock, so virtual time waits for our input; once
		 * the clock is aborted (the harness stops) keep serving on
		 * epoll alone until ingest_stop, so nothing acked is lost. */
		int w = clock_wait_fd(ing->clock, ing->ep, deadline);
		int n = epoll_wait(ing->ep, evs, 64, w < 0 ? 100 : 0);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == EV_LISTEN) {
				accept_all(ing);
			} else if (tag == EV_WAKE) {
				uint64_t v;
				if (read(ing->wake_fd, &v, sizeof v) < 0) {
					/* already drained */
				}
			} else {
				struct conn *c = &ing->conns[tag - EV_CONN_BASE];
				if (c->state == C_FREE)
					continue;
				if ((evs[i].events & EPOLLOUT) && conn_flush(ing, c) < 0) {
					conn_drop(ing, c, "send failed: %s", strerror(errno));
					continue;
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_readable(ing, c);
			}
		}
		strangers_flush(ing);
		batch_end(ing);
		expire(ing);
		pump_commands(ing);
	}
	for (int i = 0; i < ing->n_slots; i++)
		if (ing->conns[i].state != C_FREE) {
			struct conn *c = &ing->conns[i];
			logf_(ing, "closing %s%s%s%s: server stopping", c->dev ? "IMEI " : "",
			      c->dev ? c->dev->imei : "", c->dev ? " from " : "", c->peer);
			conn_close(ing, c, "the ingest server is stopping");
		}
	strangers_flush(ing);
	batch_end(ing);
	char at[40];
	clock_iso(ing->clock, now_ms(ing), at, sizeof at);
	for (size_t i = 0; i < ing->n_devs; i++)
		write_usage(ing, &ing->devs[i], at);
	if (ing->stranger_unrecorded) {
		char detail[200];
		snprintf(detail, sizeof detail, "%" PRIu64 " more refusals and drops of strangers not recorded one by one: "
			 "the server's %d rows for them were used", ing->stranger_unrecorded, STRANGER_ROWS_MAX);
		store_ingest_event(ing, NULL, "strangers_unrecorded", detail);
	}
	clock_leave(ing->clock);
	return NULL;
}

/* ---- start / stop ---- */

static int listen_on(ingest *ing, char *err, size_t errlen)
{
	const char *host = ing->o.host && *ing->o.host ? ing->o.host : "127.0.0.1";
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", ing->o.port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", host, ing->o.port, gai_strerror(rc));
		return -1;
	}
	int fd = -1, saved = 0;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", host, ing->o.port, strerror(saved));
		return -1;
	}
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	ing->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
					      : ntohs(((struct sockaddr_in *)&sa)->sin_port);
	ing->listen_fd = fd;
	return 0;
}

static bool imei_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static void free_ingest(ingest *ing)
{
	store_records_writer_close(ing->w);
	if (ing->db)
		store_close(ing->db);
	for (size_t i = 0; i < ing->n_devs; i++)
		ingest_cmd_free(ing->devs[i].cmd);
	if (ing->listen_fd >= 0)
		close(ing->listen_fd);
	if (ing->wake_fd >= 0)
		close(ing->wake_fd);
	if (ing->ep >= 0)
		close(ing->ep);
	if (ing->own_clock)
		clock_close(ing->clock);
	pthread_mutex_destroy(&ing->mu);
	free(ing->devs);
	free(ing->conns);
	free(ing->recs);
	free(ing->io_json);
	free(ing);
}

int ingest_start(const struct ingest_opts *o, ingest **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!o || !o->db_path) {
		snprintf(err, errlen, "ingest: no store path");
		return -1;
	}
	if (o->n_allow == 0) {
		snprintf(err, errlen, "ingest: no IMEI allowed (give the rack's or --allow-imei)");
		return -1;
	}
	for (size_t i = 0; i < o->n_allow; i++)
		if (!imei_ok(o->allow[i])) {
			snprintf(err, errlen, "ingest: allowed IMEI '%s' is not 1 to 15 digits", o->allow[i]);
			return -1;
		}
	ingest *ing = calloc(1, sizeof *ing);
	if (!ing) {
		snprintf(err, errlen, "ingest: out of memory");
		return -1;
	}
	ing->o = *o;
	ing->o.allow = NULL;
	ing->listen_fd = ing->wake_fd = ing->ep = -1;
	pthread_mutex_init(&ing->mu, NULL);
	if (!ing->o.late_ms)
		ing->o.late_ms = INGEST_LATE_MS_DEFAULT;
	if (ing->o.max_conns <= 0)
		ing->o.max_conns = INGEST_MAX_CONNS_DEFAULT;
	if (ing->o.login_timeout_ms <= 0)
		ing->o.login_timeout_ms = INGEST_LOGIN_MS_DEFAULT;
	if (ing->o.idle_timeout_ms <= 0)
		ing->o.idle_timeout_ms = INGEST_IDLE_MS_DEFAULT;
	if (ing->o.packet_timeout_ms <= 0)
		ing->o.packet_timeout_ms = INGEST_PACKET_MS_DEFAULT;
	ing->cap_devs = o->n_allow + MAX_REFUSED;
	ing->devs = calloc(ing->cap_devs, sizeof *ing->devs);
	if (ing->o.max_unauth <= 0)
		ing->o.max_unauth = INGEST_MAX_UNAUTH_DEFAULT;
	if (ing->o.max_unauth_per_peer <= 0)
		ing->o.max_unauth_per_peer = INGEST_MAX_UNAUTH_PEER_DEFAULT;
	ing->unauth_budget = ing->o.max_unauth < ing->o.max_conns ? ing->o.max_unauth : ing->o.max_conns;
	ing->n_slots = (int)o->n_allow + ing->unauth_budget + 1;
	ing->conns = calloc((size_t)ing->n_slots, sizeof *ing->conns);
	ing->recs = calloc(TLT_MAX_RECORDS, sizeof *ing->recs);
	ing->io_json = malloc(4096);
	if (!ing->devs || !ing->conns || !ing->recs || !ing->io_json) {
		snprintf(err, errlen, "ingest: out of memory");
		free_ingest(ing);
		return -1;
	}
	for (size_t i = 0; i < o->n_allow; i++) {
		struct device *d = NULL;
		for (size_t k = 0; k < ing->n_devs; k++)
			if (strcmp(ing->devs[k].imei, o->allow[i]) == 0)
				d = &ing->devs[k];
		if (d)
			continue; /* listed twice (rack and --allow-imei) */
		d = &ing->devs[ing->n_devs++];
		snprintf(d->imei, sizeof d->imei, "%s", o->allow[i]);
		snprintf(d->st.imei, sizeof d->st.imei, "%s", o->allow[i]);
		d->allowed = true;
	}
	ing->n_allowed = ing->n_devs;
	if (!ing->o.clock) {
		if (clock_open_real(&ing->o.clock) < 0) {
			snprintf(err, errlen, "ingest: cannot open the wall clock");
			free_ingest(ing);
			return -1;
		}
		ing->own_clock = true;
	}
	ing->clock = ing->o.clock;
	for (size_t i = 0; i < ing->n_allowed; i++) {
		struct device *d = &ing->devs[i];
		d->cmd = ingest_cmd_new(d->imei, ing->clock, wake_cb, ing, err, errlen);
		if (!d->cmd) {
			free_ingest(ing);
			return -1;
		}
	}
	char serr[512];
	if (store_open(o->db_path, &ing->db, serr, sizeof serr) < 0) {
		snprintf(err, errlen, "ingest: %s", serr);
		free_ingest(ing);
		return -1;
	}
	if (prepare(ing, err, errlen) < 0 || listen_on(ing, err, errlen) < 0) {
		free_ingest(ing);
		return -1;
	}
	ing->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ing->ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event el = { .events = EPOLLIN, .data.u64 = EV_LISTEN };
	struct epoll_event ew = { .events = EPOLLIN, .data.u64 = EV_WAKE };
	if (ing->wake_fd < 0 || ing->ep < 0 || epoll_ctl(ing->ep, EPOLL_CTL_ADD, ing->listen_fd, &el) < 0 ||
	    epoll_ctl(ing->ep, EPOLL_CTL_ADD, ing->wake_fd, &ew) < 0) {
		snprintf(err, errlen, "ingest: epoll: %s", strerror(errno));
		free_ingest(ing);
		return -1;
	}
	/* Joined before the thread exists, so virtual time cannot move between
	 * now and the thread's first wait. */
	clock_join(ing->clock);
	if (pthread_create(&ing->thread, NULL, serve, ing) != 0) {
		clock_leave(ing->clock);
		snprintf(err, errlen, "ingest: cannot start the server thread");
		free_ingest(ing);
		return -1;
	}
	ing->started = true;
	*out = ing;
	return 0;
}

int ingest_port(const ingest *ing) { return ing->port; }

uint64_t ingest_commits(ingest *ing)
{
	pthread_mutex_lock(&ing->mu);
	uint64_t n = ing->commits;
	pthread_mutex_unlock(&ing->mu);
	return n;
}

void ingest_stop(ingest *ing)
{
	if (!ing)
		return;
	pthread_mutex_lock(&ing->mu);
	ing->stop = true;
	pthread_mutex_unlock(&ing->mu);
	wake(ing);
	if (ing->started)
		pthread_join(ing->thread, NULL);
	free_ingest(ing);
}

int ingest_stop_checked(ingest *ing, char *err, size_t errlen)
{
	if (!ing)
		return 0;
	pthread_mutex_lock(&ing->mu);
	ing->stop = true;
	pthread_mutex_unlock(&ing->mu);
	wake(ing);
	if (ing->started)
		pthread_join(ing->thread, NULL);
	const char *why = ing->db ? store_write_failure(ing->db) : NULL;
	if (why)
		snprintf(err, errlen, "%s", why);
	free_ingest(ing);
	return why ? -1 : 0;
}

size_t ingest_stats(ingest *ing, struct ingest_device_stats *out, size_t cap)
{
	pthread_mutex_lock(&ing->mu);
	size_t n = ing->n_devs;
	for (size_t i = 0; i < n && i < cap; i++)
		out[i] = ing->devs[i].st;
	pthread_mutex_unlock(&ing->mu);
	return n;
}

/* ---- codec 12 for other threads (rig/ingest_cmd.c) ---- */

int ingest_send_command(ingest *ing, const char *imei, const char *text, char *answer, size_t len,
			int timeout_ms)
{
	struct device *d = imei ? find_allowed(ing, imei) : NULL;
	if (!d || !text || !answer || len == 0)
		return TRACKER_ERR_ARG;
	return ingest_cmd_ask(d->cmd, text, answer, len, timeout_ms);
}

int ingest_tracker_link(ingest *ing, const char *imei, const struct tracker_link_ops **ops, void **ctx)
{
	struct device *d = imei ? find_allowed(ing, imei) : NULL;
	if (!d)
		return -1;
	return ingest_cmd_link(d->cmd, ops, ctx);
}
