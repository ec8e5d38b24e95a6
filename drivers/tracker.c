/*
 * tracker.c - command/answer exchange with a tracker over any link.
 *
 * The hard part of a console is that it is shared: answers, unsolicited
 * event lines, late answers to earlier commands and line noise all arrive on
 * the same wire. Each line is therefore classified on arrival (event, the
 * answer we wait for, refusal, stray) instead of trusting "the next line is
 * the answer".
 */
#include "tracker.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENT_QUEUE 64

struct tracker {
	const struct tracker_proto *proto;
	const struct tracker_link_ops *ops;
	void *link;
	char buf[2 * TRACKER_LINE_MAX + 2]; /* bytes not yet split into lines */
	size_t len;
	bool skipping;          /* discarding the tail of an over-long line */
	struct tracker_event q[EVENT_QUEUE];
	unsigned q_head, q_count, q_dropped;
	tracker_observer obs;
	void *obs_ctx;
	const struct tracker_clock *clock; /* NULL: wall clock */
	char err[TRACKER_LINE_MAX + 256];
};

/* What arrived on the wire. */
enum line_kind { LINE_TEXT, LINE_GARBAGE, LINE_OVERLONG };

const char *tracker_strerror(int err)
{
	switch (err) {
	case TRACKER_OK: return "ok";
	case TRACKER_ERR_TIMEOUT: return "timeout";
	case TRACKER_ERR_PARTIAL: return "partial line";
	case TRACKER_ERR_GONE: return "device gone";
	case TRACKER_ERR_GARBAGE: return "garbage on the line";
	case TRACKER_ERR_OVERLONG: return "over-long line";
	case TRACKER_ERR_PARSE: return "unreadable answer";
	case TRACKER_ERR_REFUSED: return "refused";
	case TRACKER_ERR_IO: return "I/O error";
	case TRACKER_ERR_ARG: return "bad argument";
	}
	return "unknown error";
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const tracker *t)
{
	return t->clock ? t->clock->now_ms(t->clock->ctx) : wall_ms();
}

static int remaining(const tracker *t, int64_t deadline)
{
	int64_t left = deadline - now_ms(t);
	return left < 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
}

int tracker_fail(tracker *t, int err, const char *cmd, const char *fmt, ...)
{
	char msg[TRACKER_LINE_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(t->err, sizeof t->err, "%s: %s: %s", tracker_where(t), cmd ? cmd : "(listening)", msg);
	return err;
}

int tracker_open(const struct tracker_proto *proto, const struct tracker_link_ops *ops,
		 void *link_ctx, tracker **out)
{
	*out = NULL;
	if (!proto || !ops || !ops->send || !ops->recv)
		return TRACKER_ERR_ARG;
	tracker *t = calloc(1, sizeof *t);
	if (!t)
		return TRACKER_ERR_IO;
	t->proto = proto;
	t->ops = ops;
	t->link = link_ctx;
	*out = t;
	return TRACKER_OK;
}

void tracker_close(tracker *t)
{
	if (!t)
		return;
	if (t->ops->close)
		t->ops->close(t->link);
	free(t);
}

int tracker_fd(const tracker *t) { return t->ops->fd ? t->ops->fd(t->link) : -1; }

void tracker_set_clock(tracker *t, const struct tracker_clock *clock)
{
	t->clock = clock && t->ops->fd ? clock : NULL;
}

void tracker_set_observer(tracker *t, tracker_observer fn, void *ctx)
{
	t->obs = fn;
	t->obs_ctx = ctx;
}

const char *tracker_error(const tracker *t) { return t->err; }
const char *tracker_where(const tracker *t) { return t->ops->where ? t->ops->where(t->link) : t->ops->name; }
const char *tracker_describe(const tracker *t) { return t->ops->describe ? t->ops->describe(t->link) : tracker_where(t); }
const struct tracker_proto *tracker_get_proto(const tracker *t) { return t->proto; }
unsigned tracker_events_dropped(const tracker *t) { return t->q_dropped; }

/* Queues LINE when the command set reads it as an event; false when it is
 * not one (a command set without events has none). */
static bool queue_event(tracker *t, const char *line)
{
	struct tracker_event parsed;
	if (!t->proto->event_line || !t->proto->event_line(line, &parsed))
		return false;
	if (t->q_count == EVENT_QUEUE) { /* keep the newest: drop the oldest */
		t->q_head = (t->q_head + 1) % EVENT_QUEUE;
		t->q_count--;
		t->q_dropped++;
	}
	t->q[(t->q_head + t->q_count) % EVENT_QUEUE] = parsed;
	t->q_count++;
	return true;
}

bool tracker_next_event(tracker *t, struct tracker_event *ev)
{
	if (t->q_count == 0)
		return false;
	*ev = t->q[t->q_head];
	t->q_head = (t->q_head + 1) % EVENT_QUEUE;
	t->q_count--;
	return true;
}

/* Console text is printable ASCII, tabs and UTF-8; NUL and other control
 * bytes mean a wrong baud rate, a floating line or a dying device. */
static bool is_clean(const char *line, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Copies the first 60 bytes of an over-long line, printable, for messages. */
static void snippet(char *dst, const char *src)
{
	for (int i = 0; i < 60; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	strcpy(dst + 60, "...");
}

/* Takes the next complete line out of the buffer into LINE (NUL-terminated,
 * control bytes replaced by '?' so messages stay printable). Returns 1 and
 * sets *KIND, or 0 when no complete line is buffered. */
static int take_line(tracker *t, char *line, enum line_kind *kind)
{
	for (;;) {
		char *nl = memchr(t->buf, '\n', t->len);
		if (!nl) {
			if (t->len <= TRACKER_LINE_MAX)
				return 0;
			/* No line end within the limit: report once, then skip the
			 * rest of this line whenever it ends. */
			bool was_skipping = t->skipping;
			snippet(line, t->buf);
			t->len = 0;
			t->skipping = true;
			if (was_skipping)
				continue;
			*kind = LINE_OVERLONG;
			return 1;
		}
		size_t n = (size_t)(nl - t->buf);
		size_t consumed = n + 1;
		if (n > 0 && t->buf[n - 1] == '\r')
			n--;
		if (t->skipping) { /* the tail of an over-long line */
			t->skipping = false;
			memmove(t->buf, t->buf + consumed, t->len - consumed);
			t->len -= consumed;
			continue;
		}
		bool clean = is_clean(t->buf, n);
		if (n > TRACKER_LINE_MAX) {
			snippet(line, t->buf);
			*kind = LINE_OVERLONG;
		} else {
			for (size_t i = 0; i < n; i++) {
				unsigned char c = (unsigned char)t->buf[i];
				line[i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
			}
			line[n] = '\0';
			*kind = clean ? LINE_TEXT : LINE_GARBAGE;
		}
		memmove(t->buf, t->buf + consumed, t->len - consumed);
		t->len -= consumed;
		if (n == 0 && clean)
			continue; /* blank line: nothing to say */
		return 1;
	}
}

/* Reads more bytes into the buffer, waiting until DEADLINE at the latest. */
static int fill(tracker *t, const char *cmd, int64_t deadline)
{
	int timeout_ms = remaining(t, deadline);
	if (t->clock) {
		/* Wait in the harness's time, then take what is there. */
		int w = t->clock->wait_readable(t->clock->ctx, t->ops->fd(t->link), deadline);
		if (w < 0)
			return tracker_fail(t, TRACKER_ERR_IO, cmd, "aborted: the harness is stopping");
		if (w == 0)
			return TRACKER_ERR_TIMEOUT;
		timeout_ms = 0;
	}
	ssize_t n = t->ops->recv(t->link, t->buf + t->len, sizeof t->buf - t->len, timeout_ms);
	if (n > 0) {
		t->len += (size_t)n;
		return TRACKER_OK;
	}
	if (n == TRACKER_ERR_TIMEOUT)
		return TRACKER_ERR_TIMEOUT;
	const char *why = t->ops->detail ? t->ops->detail(t->link) : "";
	if (n == TRACKER_ERR_GONE)
		return tracker_fail(t, TRACKER_ERR_GONE, cmd, "device vanished%s%s", *why ? ": " : "", why);
	return tracker_fail(t, (int)n, cmd, "read failed%s%s", *why ? ": " : "", why);
}

/* Reads for TIMEOUT_MS, queueing events and skipping everything else. */
static int listen_(tracker *t, const char *cmd, int timeout_ms)
{
	int64_t deadline = now_ms(t) + (timeout_ms < 0 ? 0 : timeout_ms);
	char line[TRACKER_LINE_MAX + 1];
	enum line_kind kind;
	for (;;) {
		while (take_line(t, line, &kind))
			if (kind == LINE_TEXT)
				queue_event(t, line);
			/* anything else outside a command is stale: skipped */
		int rc = fill(t, cmd, deadline);
		if (rc == TRACKER_ERR_TIMEOUT)
			return (int)t->q_count;
		if (rc < 0)
			return rc;
	}
}

int tracker_poll(tracker *t, int timeout_ms)
{
	return listen_(t, NULL, timeout_ms);
}

static void observe(tracker *t, const char *cmd, const char *answer, int rc)
{
	if (t->obs)
		t->obs(t->obs_ctx, tracker_where(t), cmd, rc == TRACKER_OK ? answer : NULL,
		       rc == TRACKER_OK ? NULL : t->err);
}

static int exchange(tracker *t, const char *cmd, char *answer, size_t len, int timeout_ms)
{
	int64_t deadline = now_ms(t) + timeout_ms;
	const char *prefix = t->proto->answer_prefix(cmd);
	char line[TRACKER_LINE_MAX + 1];
	enum line_kind kind;

	/* Whatever is buffered predates this command: keep its events, drop
	 * the rest, so a late answer to an earlier command is never taken as
	 * this one's. */
	int rc = listen_(t, cmd, 0);
	if (rc < 0)
		return rc;
	t->len = 0;
	t->skipping = false;

	char out[TRACKER_LINE_MAX + 8];
	int n = snprintf(out, sizeof out, "%s%s", cmd, t->proto->line_end);
	if (n < 0 || (size_t)n >= sizeof out)
		return tracker_fail(t, TRACKER_ERR_ARG, cmd, "command longer than %d bytes", TRACKER_LINE_MAX);
	/* Sending takes wall time only (a pty or UART buffer), so its deadline is
	 * the command's whole allowance in wall time. */
	rc = t->ops->send(t->link, out, (size_t)n, timeout_ms);
	if (rc < 0) {
		const char *why = t->ops->detail ? t->ops->detail(t->link) : "";
		return tracker_fail(t, rc, cmd, "%s%s%s",
				    rc == TRACKER_ERR_GONE ? "device vanished" :
				    rc == TRACKER_ERR_TIMEOUT ? "could not send within the deadline" : "send failed",
				    *why ? ": " : "", why);
	}

	/* The first line that is neither the answer nor an event, kept so a
	 * failure can show what the device said instead. */
	char stray[80] = "";
	int strays = 0;
	enum line_kind stray_kind = LINE_TEXT;
	for (;;) {
		while (take_line(t, line, &kind)) {
			bool ours = !prefix || strncmp(line, prefix, strlen(prefix)) == 0;
			if (kind == LINE_TEXT && queue_event(t, line))
				continue;
			if (ours && kind == LINE_GARBAGE)
				return tracker_fail(t, TRACKER_ERR_GARBAGE, cmd,
						    "answer holds control or NUL bytes: '%.80s'", line);
			if (ours && kind == LINE_OVERLONG)
				return tracker_fail(t, TRACKER_ERR_OVERLONG, cmd,
						    "answer longer than %d bytes: '%s'", TRACKER_LINE_MAX, line);
			if (ours) {
				if ((size_t)snprintf(answer, len, "%s", line) >= len)
					return tracker_fail(t, TRACKER_ERR_OVERLONG, cmd,
							    "answer does not fit %zu bytes", len);
				return TRACKER_OK;
			}
			if (kind == LINE_TEXT && t->proto->is_refusal && t->proto->is_refusal(line))
				return tracker_fail(t, TRACKER_ERR_REFUSED, cmd, "device answered '%.200s'", line);
			if (strays++ == 0) {
				snprintf(stray, sizeof stray, "%.72s", line);
				stray_kind = kind;
			}
		}
		rc = fill(t, cmd, deadline);
		if (rc == TRACKER_OK)
			continue;
		if (rc != TRACKER_ERR_TIMEOUT)
			return rc;
		/* Deadline: say the most specific thing we know. */
		if (t->len > 0 && !t->skipping) {
			char part[64];
			size_t k = t->len < 40 ? t->len : 40;
			for (size_t i = 0; i < k; i++)
				part[i] = isprint((unsigned char)t->buf[i]) ? t->buf[i] : '?';
			part[k] = '\0';
			return tracker_fail(t, TRACKER_ERR_PARTIAL, cmd,
					    "answer began ('%s%s') but its line did not end within %d ms",
					    part, t->len > k ? "..." : "", timeout_ms);
		}
		if (strays && stray_kind == LINE_OVERLONG)
			return tracker_fail(t, TRACKER_ERR_OVERLONG, cmd,
					    "no '%s' answer within %d ms; got a line longer than %d bytes: '%s'",
					    prefix ? prefix : "", timeout_ms, TRACKER_LINE_MAX, stray);
		if (strays)
			return tracker_fail(t, TRACKER_ERR_GARBAGE, cmd,
					    "no '%s' answer within %d ms; got %d unrecognised line%s instead, first: '%s'",
					    prefix ? prefix : "", timeout_ms, strays, strays == 1 ? "" : "s", stray);
		return tracker_fail(t, TRACKER_ERR_TIMEOUT, cmd, "no answer within %d ms", timeout_ms);
	}
}

int tracker_command(tracker *t, const char *cmd, char *answer, size_t len, int timeout_ms)
{
	if (!cmd || !*cmd || !answer || len == 0 || strpbrk(cmd, "\r\n"))
		return tracker_fail(t, TRACKER_ERR_ARG, cmd ? cmd : "(null)", "empty command or line end inside it");
	answer[0] = '\0';
	t->err[0] = '\0';
	int rc = exchange(t, cmd, answer, len, timeout_ms);
	observe(t, cmd, answer, rc);
	return rc;
}

int tracker_identify(tracker *t, struct tracker_identity *id, int timeout_ms)
{
	memset(id, 0, sizeof *id);
	return t->proto->identify(t, id, timeout_ms);
}

int tracker_ping(tracker *t, char *imei, size_t len, int timeout_ms)
{
	if (len)
		*imei = '\0';
	if (!t->proto->ping)
		return tracker_fail(t, TRACKER_ERR_ARG, "ping", "the %s command set has no short identity question",
				    t->proto->name);
	return t->proto->ping(t, imei, len, timeout_ms);
}

int tracker_status(tracker *t, struct tracker_status *st, int timeout_ms)
{
	memset(st, 0, sizeof *st);
	st->fw_update = -1;
	st->ttff_s = -1;
	return t->proto->status(t, st, timeout_ms);
}

/* ---- capabilities ---- */

const char *const tracker_cap_names[] = {
	"restarts", "buffered", "server", "report_period", "inputs", "outputs", "in_service",
	"data_session", "reboot", "ota", "events", NULL,
};

bool tracker_cap_known(const char *cap)
{
	for (size_t i = 0; tracker_cap_names[i]; i++)
		if (strcmp(tracker_cap_names[i], cap) == 0)
			return true;
	return false;
}

bool tracker_has(const struct tracker_proto *p, const char *cap)
{
	if (!p || !cap)
		return false;
	if (!strcmp(cap, "restarts")) return p->restarts;
	if (!strcmp(cap, "buffered")) return p->buffered;
	if (!strcmp(cap, "server")) return p->server_get && p->server_set;
	if (!strcmp(cap, "report_period")) return p->report_period_set;
	if (!strcmp(cap, "inputs")) return p->input_get;
	if (!strcmp(cap, "outputs")) return p->output_set;
	if (!strcmp(cap, "in_service")) return p->in_service;
	if (!strcmp(cap, "data_session")) return p->data_session;
	if (!strcmp(cap, "reboot")) return p->reboot;
	if (!strcmp(cap, "ota")) return p->ota_start && p->ota_state;
	if (!strcmp(cap, "events")) return p->event_line;
	return false;
}

/* Calls hook FN of T's command set, or fails naming capability CAP. */
#define CAP_CALL(t, fn, cap, ...)                                                                  \
	((t)->proto->fn ? (t)->proto->fn((t), __VA_ARGS__)                                         \
			: tracker_fail((t), TRACKER_ERR_ARG, cap, "the %s command set cannot tell or do '%s'", \
				       (t)->proto->name, cap))

int tracker_restarts(tracker *t, struct tracker_restarts *r, int timeout_ms)
{
	*r = (struct tracker_restarts){ .count = -1, .uptime_s = -1, .reset_code = -1 };
	return CAP_CALL(t, restarts, "restarts", r, timeout_ms);
}

int tracker_buffered(tracker *t, long *records, int timeout_ms)
{
	*records = -1;
	return CAP_CALL(t, buffered, "buffered", records, timeout_ms);
}

int tracker_server_get(tracker *t, struct tracker_server *srv, int timeout_ms)
{
	memset(srv, 0, sizeof *srv);
	return CAP_CALL(t, server_get, "server", srv, timeout_ms);
}

int tracker_server_set(tracker *t, const struct tracker_server *srv, int timeout_ms)
{
	return CAP_CALL(t, server_set, "server", srv, timeout_ms);
}

int tracker_report_period_set(tracker *t, int seconds, int timeout_ms)
{
	if (seconds <= 0)
		return tracker_fail(t, TRACKER_ERR_ARG, "report_period", "period %d s is not positive", seconds);
	return CAP_CALL(t, report_period_set, "report_period", seconds, timeout_ms);
}

int tracker_input_get(tracker *t, int n, long *value, int timeout_ms)
{
	return CAP_CALL(t, input_get, "inputs", n, value, timeout_ms);
}

int tracker_output_set(tracker *t, int n, bool on, int timeout_ms)
{
	return CAP_CALL(t, output_set, "outputs", n, on, timeout_ms);
}

int tracker_in_service(tracker *t, bool *in_service, int timeout_ms)
{
	*in_service = false;
	return CAP_CALL(t, in_service, "in_service", in_service, timeout_ms);
}

int tracker_data_session(tracker *t, enum tracker_data_session *s, int timeout_ms)
{
	*s = TRACKER_DATA_DOWN;
	return CAP_CALL(t, data_session, "data_session", s, timeout_ms);
}

int tracker_reboot(tracker *t, int timeout_ms)
{
	return CAP_CALL(t, reboot, "reboot", timeout_ms);
}

int tracker_ota_start(tracker *t, const char *url, char *detail, size_t len, int timeout_ms)
{
	if (len)
		*detail = '\0';
	return CAP_CALL(t, ota_start, "ota", url, detail, len, timeout_ms);
}

int tracker_ota_state(tracker *t, struct tracker_ota *o, int timeout_ms)
{
	memset(o, 0, sizeof *o);
	o->free_kb = -1;
	return CAP_CALL(t, ota_state, "ota", o, timeout_ms);
}

bool tracker_field(const char *line, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	for (const char *p = line; (p = strstr(p, key)) != NULL; p++) {
		if (p != line && p[-1] != ' ')
			continue;
		if (p[klen] != ':')
			continue;
		const char *v = p + klen + 1;
		while (*v == ' ')
			v++;
		size_t n = strcspn(v, " ");
		if (n == 0 || n >= len)
			return false;
		memcpy(out, v, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

bool tracker_field_long(const char *line, const char *key, const char *suffix, long *out)
{
	char v[32];
	if (!tracker_field(line, key, v, sizeof v))
		return false;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (end == v || errno)
		return false;
	if (*end && !(suffix && strcmp(end, suffix) == 0))
		return false;
	*out = x;
	return true;
}

static const struct tracker_proto *extra_protos[TRACKER_EXTRA_PROTOS];

int tracker_proto_register(const struct tracker_proto *proto)
{
	for (size_t i = 0; i < TRACKER_EXTRA_PROTOS; i++)
		if (!extra_protos[i] || extra_protos[i] == proto) {
			extra_protos[i] = proto;
			return 0;
		}
	return -1;
}

const struct tracker_proto *tracker_proto_find(const char *name)
{
	for (size_t i = 0; tracker_protos[i]; i++)
		if (strcasecmp(tracker_protos[i]->name, name) == 0)
			return tracker_protos[i];
	for (size_t i = 0; i < TRACKER_EXTRA_PROTOS && extra_protos[i]; i++)
		if (strcasecmp(extra_protos[i]->name, name) == 0)
			return extra_protos[i];
	return NULL;
}
