/*
 * ingest_cmd.c - one device's codec 12 command channel; the contract is in
 * ingest_cmd.h, what a user sees in docs/uplink.md.
 *
 * State is behind the channel's own mutex: the server thread and one
 * asking thread (a tracker link or ingest_send_command) meet here and
 * nowhere else. The eventfd is a semaphore counting the responses queued,
 * so it polls readable exactly while one waits; a response is counted off
 * only once the reader has taken all of it.
 */
#include "ingest_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "teltonika_codec.h"

#define CMD_QUEUE 8
/* One asker, one command at a time: more than two outcomes never wait. */
#define RESP_QUEUE 4
/* A response can be as long as a packet allows: the driver is told it is
 * over-long rather than handed a silently cut line. */
#define TEXT_MAX TLT_PACKET_MAX

enum resp_kind { R_TEXT, R_BAD, R_GONE };

struct resp {
	enum resp_kind kind;
	char text[TEXT_MAX + 3];   /* R_TEXT: "answer\r\n"; else the reason */
	size_t len, off;           /* R_TEXT: bytes, bytes already read */
	int64_t deadline;          /* its command's: stale from then on */
};

struct command {
	char text[TRACKER_LINE_MAX + 1];
	int64_t deadline;          /* clock ms: the asker stops waiting then */
};

struct ingest_cmd {
	char imei[16];
	rig_clock *clock;
	void (*wake)(void *);
	void *wake_ctx;
	int efd;                   /* readable while a response waits */
	pthread_mutex_t mu;
	/* all below under mu */
	bool connected;
	char peer[64];             /* "" until the first login */
	struct command cmds[CMD_QUEUE];
	int c_head, c_n;
	bool inflight;             /* a command went out and its asker waits */
	int64_t inflight_deadline;
	struct resp resps[RESP_QUEUE];
	int r_head, r_n;
	bool link_open;
};

/* A rig with 256 slots holds over 1024 fds and libmodbus select()s on its
 * sockets, which must stay below FD_SETSIZE: one eventfd per device goes
 * above it when the fd limit allows (as the ingest's other fds do). */
static int fd_high(int fd)
{
	int h = fd >= 0 && fd < FD_SETSIZE ? fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE) : -1;
	if (h < 0)
		return fd;
	close(fd);
	return h;
}

struct ingest_cmd *ingest_cmd_new(const char *imei, rig_clock *clock, void (*wake)(void *), void *wake_ctx,
				  char *err, size_t errlen)
{
	struct ingest_cmd *ch = calloc(1, sizeof *ch);
	if (!ch) {
		snprintf(err, errlen, "ingest: out of memory");
		return NULL;
	}
	ch->efd = fd_high(eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
	if (ch->efd < 0) {
		snprintf(err, errlen, "ingest: eventfd for IMEI %s: %s", imei, strerror(errno));
		free(ch);
		return NULL;
	}
	snprintf(ch->imei, sizeof ch->imei, "%s", imei);
	ch->clock = clock;
	ch->wake = wake;
	ch->wake_ctx = wake_ctx;
	pthread_mutex_init(&ch->mu, NULL);
	return ch;
}

void ingest_cmd_free(struct ingest_cmd *ch)
{
	if (!ch)
		return;
	close(ch->efd);
	pthread_mutex_destroy(&ch->mu);
	free(ch);
}

/* ---- the response queue (mu held) ---- */

static void count_up(struct ingest_cmd *ch)
{
	uint64_t one = 1;
	if (write(ch->efd, &one, sizeof one) < 0) {
		/* cannot overflow: at most RESP_QUEUE are counted */
	}
}

static void count_down(struct ingest_cmd *ch)
{
	uint64_t v;
	if (read(ch->efd, &v, sizeof v) < 0) {
		/* counted up with every response: cannot be empty here */
	}
}

static void resp_pop(struct ingest_cmd *ch)
{
	ch->r_head = (ch->r_head + 1) % RESP_QUEUE;
	ch->r_n--;
	count_down(ch);
}

__attribute__((format(printf, 4, 5)))
static void post(struct ingest_cmd *ch, enum resp_kind kind, int64_t deadline, const char *fmt, ...)
{
	if (ch->r_n == RESP_QUEUE)
		resp_pop(ch); /* the oldest was stale long ago */
	struct resp *r = &ch->resps[(ch->r_head + ch->r_n) % RESP_QUEUE];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
	r->kind = kind;
	r->deadline = deadline;
	r->len = n < 0 ? 0 : (size_t)n < sizeof r->text ? (size_t)n : sizeof r->text - 1;
	r->off = 0;
	ch->r_n++;
	count_up(ch);
}

static void resp_clear(struct ingest_cmd *ch)
{
	while (ch->r_n)
		resp_pop(ch);
}

/* Drops responses whose asker's deadline has passed; true when one that
 * is still due waits. A deadline reached is a deadline missed: the asker
 * times out then, so an outcome arriving at that instant is stale too. */
static bool resp_due(struct ingest_cmd *ch)
{
	int64_t now = clock_now(ch->clock);
	while (ch->r_n && now >= ch->resps[ch->r_head].deadline)
		resp_pop(ch);
	return ch->r_n > 0;
}

/* The latest deadline of an asker still waiting (an in-flight or queued
 * command), or -1 when nobody waits. */
static int64_t waiting(struct ingest_cmd *ch, int64_t now)
{
	int64_t d = -1;
	if (ch->inflight && now < ch->inflight_deadline)
		d = ch->inflight_deadline;
	for (int i = 0; i < ch->c_n; i++) {
		int64_t c = ch->cmds[(ch->c_head + i) % CMD_QUEUE].deadline;
		if (now < c && c > d)
			d = c;
	}
	return d;
}

/* The asker gave up (its wait timed out): what it asked need not go out,
 * and whatever comes back for it is stale. */
static void abandon(struct ingest_cmd *ch)
{
	pthread_mutex_lock(&ch->mu);
	ch->inflight = false;
	ch->c_n = 0;
	resp_clear(ch);
	pthread_mutex_unlock(&ch->mu);
}

/* ---- server thread ---- */

void ingest_cmd_online(struct ingest_cmd *ch, const char *peer)
{
	pthread_mutex_lock(&ch->mu);
	ch->connected = true;
	snprintf(ch->peer, sizeof ch->peer, "%s", peer);
	ch->inflight = false;
	pthread_mutex_unlock(&ch->mu);
}

void ingest_cmd_offline(struct ingest_cmd *ch, const char *why)
{
	int64_t now = clock_now(ch->clock);
	pthread_mutex_lock(&ch->mu);
	int64_t until = waiting(ch, now);
	if (until >= 0)
		post(ch, R_GONE, until, "IMEI %s: its link to the ingest ended: %s", ch->imei, why);
	ch->connected = false;
	ch->inflight = false;
	ch->c_n = 0;
	pthread_mutex_unlock(&ch->mu);
}

bool ingest_cmd_take(struct ingest_cmd *ch, char *text, size_t cap)
{
	int64_t now = clock_now(ch->clock);
	bool got = false;
	pthread_mutex_lock(&ch->mu);
	while (ch->c_n > 0 && !got) {
		struct command *c = &ch->cmds[ch->c_head];
		ch->c_head = (ch->c_head + 1) % CMD_QUEUE;
		ch->c_n--;
		if (now >= c->deadline)
			continue; /* its asker gave up: the device need not hear it */
		snprintf(text, cap, "%s", c->text);
		ch->inflight = true;
		ch->inflight_deadline = c->deadline;
		got = true;
	}
	pthread_mutex_unlock(&ch->mu);
	return got;
}

enum ingest_cmd_result ingest_cmd_frame(struct ingest_cmd *ch, const uint8_t *frame, size_t len, char *why,
					size_t whylen)
{
	char text[TEXT_MAX + 1], err[200];
	uint8_t type = 0;
	int n = tlt_c12_decode(frame, len, &type, text, sizeof text, err, sizeof err);
	int64_t now = clock_now(ch->clock);
	if (n >= 0 && type != TLT_C12_RESPONSE) {
		snprintf(why, whylen, "codec 12 message of type %u from a device (only responses, type 6, expected)",
			 type);
		return INGEST_CMD_NOT_RESPONSE;
	}
	pthread_mutex_lock(&ch->mu);
	bool live = ch->inflight && now < ch->inflight_deadline;
	int64_t until = ch->inflight_deadline;
	ch->inflight = false;
	if (n < 0) {
		snprintf(why, whylen, "%s", err);
		if (live)
			post(ch, R_BAD, until, "IMEI %s: malformed codec 12 response: %s", ch->imei, err);
		pthread_mutex_unlock(&ch->mu);
		return INGEST_CMD_MALFORMED;
	}
	/* One line per answer for the tracker driver: line breaks inside the
	 * text would split it, so they become spaces. */
	for (int i = 0; i < n; i++)
		if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0')
			text[i] = ' ';
	if (live)
		post(ch, R_TEXT, until, "%s\r\n", text);
	pthread_mutex_unlock(&ch->mu);
	if (!live)
		snprintf(why, whylen, "%.200s", text);
	return live ? INGEST_CMD_ANSWER : INGEST_CMD_STALE;
}

/* ---- any thread ---- */

/* Queues TEXT with DEADLINE (clock ms). Returns 0 or a tracker_err, the
 * reason in WHY. */
static int queue(struct ingest_cmd *ch, const char *text, int64_t deadline, char *why, size_t whylen)
{
	if (strlen(text) > TRACKER_LINE_MAX) {
		snprintf(why, whylen, "IMEI %s: command longer than %d bytes", ch->imei, TRACKER_LINE_MAX);
		return TRACKER_ERR_ARG;
	}
	int rc = TRACKER_OK;
	pthread_mutex_lock(&ch->mu);
	if (!ch->connected) {
		snprintf(why, whylen, "IMEI %s: not connected to the ingest", ch->imei);
		rc = TRACKER_ERR_GONE;
	} else if (ch->c_n == CMD_QUEUE) {
		snprintf(why, whylen, "IMEI %s: %d codec 12 commands already wait to go out", ch->imei, CMD_QUEUE);
		rc = TRACKER_ERR_IO;
	} else {
		struct command *c = &ch->cmds[(ch->c_head + ch->c_n) % CMD_QUEUE];
		snprintf(c->text, sizeof c->text, "%s", text);
		c->deadline = deadline;
		ch->c_n++;
	}
	pthread_mutex_unlock(&ch->mu);
	if (rc == TRACKER_OK)
		ch->wake(ch->wake_ctx);
	return rc;
}

int ingest_cmd_ask(struct ingest_cmd *ch, const char *text, char *answer, size_t len, int timeout_ms)
{
	char why[256];
	int64_t deadline = clock_now(ch->clock) + (timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&ch->mu);
	resp_clear(ch); /* answers to earlier, abandoned commands */
	pthread_mutex_unlock(&ch->mu);
	int rc = queue(ch, text, deadline, why, sizeof why);
	if (rc < 0)
		return rc;
	for (;;) {
		pthread_mutex_lock(&ch->mu);
		if (resp_due(ch)) {
			struct resp *r = &ch->resps[ch->r_head];
			enum resp_kind kind = r->kind;
			size_t n = r->len >= 2 ? r->len - 2 : 0; /* without "\r\n" */
			if (kind == R_TEXT)
				snprintf(answer, len, "%.*s", (int)n, r->text);
			resp_pop(ch);
			pthread_mutex_unlock(&ch->mu);
			if (kind == R_GONE)
				return TRACKER_ERR_GONE;
			if (kind == R_BAD)
				return TRACKER_ERR_GARBAGE;
			return (int)strlen(answer);
		}
		pthread_mutex_unlock(&ch->mu);
		int w = clock_wait_fd(ch->clock, ch->efd, deadline);
		if (w < 0 || w == 0) {
			abandon(ch);
			return w < 0 ? TRACKER_ERR_IO : TRACKER_ERR_TIMEOUT;
		}
	}
}

/* ---- the tracker link ---- */

struct cmd_link {
	struct ingest_cmd *ch;
	char out[TRACKER_LINE_MAX + 8];   /* a command line being assembled */
	size_t out_len;
	bool asked;                       /* a command went out since the last give-up */
	char where[96];
	char detail[320];
};

/* Each line the driver sends is one command; its line end is the frame's
 * business, so "\r" and "\n" do not travel. */
static int link_send(void *ctx, const void *buf, size_t n, int timeout_ms)
{
	struct cmd_link *l = ctx;
	const char *p = buf;
	int64_t deadline = clock_now(l->ch->clock) + (timeout_ms < 0 ? 0 : timeout_ms);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			continue;
		if (p[i] != '\n') {
			if (l->out_len == sizeof l->out - 1) {
				l->out_len = 0;
				snprintf(l->detail, sizeof l->detail, "command longer than %d bytes", TRACKER_LINE_MAX);
				return TRACKER_ERR_ARG;
			}
			l->out[l->out_len++] = p[i];
			continue;
		}
		l->out[l->out_len] = '\0';
		l->out_len = 0;
		if (!l->out[0])
			continue;
		int rc = queue(l->ch, l->out, deadline, l->detail, sizeof l->detail);
		if (rc < 0)
			return rc;
		l->asked = true;
	}
	return TRACKER_OK;
}

/* Hands over the oldest response (mu held, one queued): text in pieces
 * as BUF allows, a failure as its tracker_err with the reason in detail. */
static ssize_t take_resp(struct cmd_link *l, char *buf, size_t n)
{
	struct ingest_cmd *ch = l->ch;
	struct resp *r = &ch->resps[ch->r_head];
	if (r->kind != R_TEXT) {
		snprintf(l->detail, sizeof l->detail, "%s", r->text);
		enum resp_kind kind = r->kind;
		resp_pop(ch);
		return kind == R_GONE ? TRACKER_ERR_GONE : TRACKER_ERR_GARBAGE;
	}
	size_t k = r->len - r->off < n ? r->len - r->off : n;
	memcpy(buf, r->text + r->off, k);
	r->off += k;
	if (r->off == r->len)
		resp_pop(ch);
	return (ssize_t)k;
}

/* A TIMEOUT from here ends the driver's wait for good (tracker.c treats
 * it so, with or without a clock), so it is also where the link learns
 * that its command was abandoned. */
static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t link_recv(void *ctx, void *buf, size_t n, int timeout_ms)
{
	struct cmd_link *l = ctx;
	struct ingest_cmd *ch = l->ch;
	if (n == 0)
		return TRACKER_ERR_ARG;
	int64_t end = mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		pthread_mutex_lock(&ch->mu);
		if (resp_due(ch)) {
			ssize_t r = take_resp(l, buf, n);
			pthread_mutex_unlock(&ch->mu);
			return r;
		}
		pthread_mutex_unlock(&ch->mu);
		int64_t left = end - mono_ms();
		struct pollfd p = { .fd = ch->efd, .events = POLLIN };
		if (left < 0 || poll(&p, 1, (int)left) <= 0)
			break;
	}
	if (l->asked) {
		l->asked = false;
		abandon(ch);
	}
	return TRACKER_ERR_TIMEOUT;
}

static const char *link_where(void *ctx)
{
	struct cmd_link *l = ctx;
	pthread_mutex_lock(&l->ch->mu);
	snprintf(l->where, sizeof l->where, "%s@%s", l->ch->imei, l->ch->peer[0] ? l->ch->peer : "ingest");
	pthread_mutex_unlock(&l->ch->mu);
	return l->where;
}

static const char *link_detail(void *ctx) { return ((struct cmd_link *)ctx)->detail; }
static int link_fd(void *ctx) { return ((struct cmd_link *)ctx)->ch->efd; }

static void link_close(void *ctx)
{
	struct cmd_link *l = ctx;
	pthread_mutex_lock(&l->ch->mu);
	l->ch->link_open = false;
	pthread_mutex_unlock(&l->ch->mu);
	free(l);
}

static const struct tracker_link_ops link_ops = {
	.name = "codec12",
	.send = link_send,
	.recv = link_recv,
	.where = link_where,
	.describe = NULL,
	.detail = link_detail,
	.close = link_close,
	.fd = link_fd,
};

int ingest_cmd_link(struct ingest_cmd *ch, const struct tracker_link_ops **ops, void **ctx)
{
	struct cmd_link *l = calloc(1, sizeof *l);
	if (!l)
		return -1;
	pthread_mutex_lock(&ch->mu);
	bool busy = ch->link_open;
	if (!busy) {
		ch->link_open = true;
		resp_clear(ch); /* outcomes meant for an earlier asker */
	}
	pthread_mutex_unlock(&ch->mu);
	if (busy) {
		free(l);
		return -1;
	}
	l->ch = ch;
	*ops = &link_ops;
	*ctx = l;
	return 0;
}
