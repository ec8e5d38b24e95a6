/*
 * modbus_link.c - libmodbus behind a transport string, with errors that say
 * what and where. See modbus_link.h.
 */
#include "modbus_link.h"

#include <modbus.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum link_kind { LINK_TCP, LINK_RTU };

struct modbus_link {
	modbus_t *ctx;
	enum link_kind kind;
	int unit;
	int timeout_ms;
	int retry_ms;        /* budget for retrying one request after a failure */
	int exception;       /* code of the last exception answer, 0 if none */
	char where[300];     /* "TRANSPORT unit N" */
	char error[512];
};

const char *modbus_link_strerror(int err)
{
	switch (err) {
	case MODBUS_LINK_OK: return "ok";
	case MODBUS_LINK_ERR_ARG: return "bad argument";
	case MODBUS_LINK_ERR_CONNECT: return "cannot connect";
	case MODBUS_LINK_ERR_TIMEOUT: return "timeout";
	case MODBUS_LINK_ERR_EXCEPTION: return "exception";
	case MODBUS_LINK_ERR_GONE: return "connection lost";
	case MODBUS_LINK_ERR_IO: return "I/O error";
	}
	return "unknown error";
}

/* Names as in the Modbus application protocol spec, so a message can be
 * matched against a device manual. */
static const char *exception_name(int code)
{
	switch (code) {
	case MODBUS_EXCEPTION_ILLEGAL_FUNCTION: return "illegal function";
	case MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS: return "illegal data address";
	case MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE: return "illegal data value";
	case MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE: return "slave device failure";
	case MODBUS_EXCEPTION_ACKNOWLEDGE: return "acknowledge";
	case MODBUS_EXCEPTION_SLAVE_OR_SERVER_BUSY: return "slave device busy";
	case MODBUS_EXCEPTION_NEGATIVE_ACKNOWLEDGE: return "negative acknowledge";
	case MODBUS_EXCEPTION_MEMORY_PARITY: return "memory parity error";
	case MODBUS_EXCEPTION_GATEWAY_PATH: return "gateway path unavailable";
	case MODBUS_EXCEPTION_GATEWAY_TARGET: return "gateway target failed to respond";
	}
	return "unknown exception";
}

static void put(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void put(char *buf, size_t len, const char *fmt, ...)
{
	if (!buf || len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Whole decimal number in [MIN, MAX], nothing else. */
static bool parse_int(const char *s, long min, long max, long *out)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Builds the libmodbus context for TRANSPORT; on a bad string, says which
 * part is wrong and what is expected. */
static modbus_t *make_ctx(const char *transport, enum link_kind *kind, char *err, size_t errlen)
{
	static const char expect[] = "expected \"tcp://HOST:PORT\" or \"rtu:/dev/DEVICE@BAUD\"";
	modbus_t *ctx = NULL;

	if (strncmp(transport, "tcp://", 6) == 0) {
		const char *hp = transport + 6;
		const char *colon = strrchr(hp, ':');
		long port;
		if (!colon || colon == hp) {
			put(err, errlen, "%s: bad transport: missing host or port, %s", transport, expect);
			return NULL;
		}
		if (!parse_int(colon + 1, 1, 65535, &port)) {
			put(err, errlen, "%s: bad transport: port \"%s\" is not 1..65535", transport, colon + 1);
			return NULL;
		}
		char host[256], service[8];
		size_t hl = (size_t)(colon - hp);
		if (hl >= sizeof host) {
			put(err, errlen, "%s: bad transport: host name too long", transport);
			return NULL;
		}
		memcpy(host, hp, hl);
		host[hl] = '\0';
		snprintf(service, sizeof service, "%ld", port);
		/* The _pi variant resolves names and IPv6; plain modbus_new_tcp
		 * takes dotted IPv4 only. */
		ctx = modbus_new_tcp_pi(host, service);
		*kind = LINK_TCP;
	} else if (strncmp(transport, "rtu:", 4) == 0) {
		const char *path = transport + 4;
		const char *at = strrchr(path, '@');
		long baud;
		if (!at || at == path) {
			put(err, errlen, "%s: bad transport: missing device or \"@BAUD\", %s", transport, expect);
			return NULL;
		}
		if (!parse_int(at + 1, 1, 4000000, &baud)) {
			put(err, errlen, "%s: bad transport: baud \"%s\" is not a positive number", transport, at + 1);
			return NULL;
		}
		char dev[PATH_MAX];
		size_t dl = (size_t)(at - path);
		if (dl >= sizeof dev) {
			put(err, errlen, "%s: bad transport: device path too long", transport);
			return NULL;
		}
		memcpy(dev, path, dl);
		dev[dl] = '\0';
		ctx = modbus_new_rtu(dev, (int)baud, 'N', 8, 1);
		*kind = LINK_RTU;
	} else {
		put(err, errlen, "%s: bad transport: unknown scheme, %s", transport, expect);
		return NULL;
	}
	if (!ctx)
		put(err, errlen, "%s: cannot create Modbus context: %s", transport, modbus_strerror(errno));
	return ctx;
}

int modbus_link_check_transport(const char *t, char *err, size_t errlen)
{
	if (strncmp(t, "tcp://", 6) == 0) {
		const char *colon = strrchr(t + 6, ':');
		long port;
		if (!colon || colon == t + 6 || !parse_int(colon + 1, 1, 65535, &port)) {
			put(err, errlen, "'%s': expected tcp://HOST:PORT", t);
			return -1;
		}
		return 0;
	}
	if (strncmp(t, "rtu:", 4) == 0) {
		const char *at = strrchr(t, '@');
		long baud;
		if (!at || at == t + 4 || !parse_int(at + 1, 1, 4000000, &baud)) {
			put(err, errlen, "'%s': expected rtu:DEVICE@BAUD", t);
			return -1;
		}
		return 0;
	}
	put(err, errlen, "'%s': expected tcp://HOST:PORT or rtu:DEVICE@BAUD", t);
	return -1;
}

static void apply_timeout(modbus_link *l)
{
	modbus_set_response_timeout(l->ctx, (uint32_t)(l->timeout_ms / 1000),
				    (uint32_t)(l->timeout_ms % 1000) * 1000);
}

int modbus_link_open(const char *transport, int unit, modbus_link **out, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	put(err, errlen, "%s", "");
	if (!transport || !out) {
		put(err, errlen, "modbus_link_open: transport and out are required");
		return MODBUS_LINK_ERR_ARG;
	}
	enum link_kind kind = LINK_TCP;
	modbus_t *ctx = make_ctx(transport, &kind, err, errlen);
	if (!ctx)
		return MODBUS_LINK_ERR_ARG;
	/* RTU unit 0 is broadcast: nothing ever answers it. TCP gateways use 0
	 * or 255 for "the gateway itself", so allow the full byte there. */
	int lo = kind == LINK_RTU ? 1 : 0, hi = kind == LINK_RTU ? 247 : 255;
	if (unit < lo || unit > hi) {
		put(err, errlen, "%s: bad unit id %d (%d..%d)", transport, unit, lo, hi);
		modbus_free(ctx);
		return MODBUS_LINK_ERR_ARG;
	}
	modbus_link *l = calloc(1, sizeof *l);
	if (!l) {
		put(err, errlen, "%s: out of memory", transport);
		modbus_free(ctx);
		return MODBUS_LINK_ERR_IO;
	}
	l->ctx = ctx;
	l->kind = kind;
	l->unit = unit;
	l->timeout_ms = MODBUS_LINK_DEFAULT_TIMEOUT_MS;
	l->retry_ms = MODBUS_LINK_DEFAULT_RETRY_MS;
	snprintf(l->where, sizeof l->where, "%s unit %d", transport, unit);
	modbus_set_slave(ctx, unit);
	apply_timeout(l);
	if (modbus_connect(ctx) == -1) {
		put(err, errlen, "%s: connect: %s", transport, modbus_strerror(errno));
		modbus_free(ctx);
		free(l);
		return MODBUS_LINK_ERR_CONNECT;
	}
	*out = l;
	return MODBUS_LINK_OK;
}

void modbus_link_close(modbus_link *l)
{
	if (!l)
		return;
	modbus_close(l->ctx);
	modbus_free(l->ctx);
	free(l);
}

int modbus_link_set_timeout(modbus_link *l, int ms)
{
	if (ms <= 0) {
		snprintf(l->error, sizeof l->error, "%s: bad timeout %d ms", l->where, ms);
		return MODBUS_LINK_ERR_ARG;
	}
	l->timeout_ms = ms;
	apply_timeout(l);
	return MODBUS_LINK_OK;
}

int modbus_link_set_retry_budget(modbus_link *l, int ms)
{
	if (ms < 0) {
		snprintf(l->error, sizeof l->error, "%s: bad retry budget %d ms", l->where, ms);
		return MODBUS_LINK_ERR_ARG;
	}
	l->retry_ms = ms;
	return MODBUS_LINK_OK;
}

const char *modbus_link_error(const modbus_link *l) { return l->error; }
const char *modbus_link_where(const modbus_link *l) { return l->where; }
int modbus_link_exception(const modbus_link *l) { return l->exception; }

/* The peer closed or reset the connection: worth a reconnect over TCP
 * (gateways drop idle clients; the rack's supply may have been restarted). */
static bool is_lost(int e)
{
	return e == ECONNRESET || e == EPIPE || e == ENOTCONN || e == EBADF || e == ECONNABORTED;
}

/* An answer that is not the answer to this request: a late reply to an
 * earlier one (wrong transaction id, function or length), or line noise. */
static bool is_garbled(int e)
{
	return e == EMBBADDATA || e == EMBBADCRC || e == EMBBADEXC || e == EMBUNKEXC || e == EMBMDATA ||
	       e == EMBBADSLAVE;
}

/* Exceptions that say "not now" rather than "no": a busy unit, or a TCP
 * gateway whose serial device did not answer it (a stalled supply behind a
 * gateway looks exactly like this). */
static bool is_transient_exception(int e)
{
	return e == EMBXSBUSY || e == EMBXACK || e == EMBXGPATH || e == EMBXGTAR;
}

/* Worth sending the same request again within the retry budget. EAGAIN:
 * the line's output buffer is full because the unit stopped reading (a
 * stalled RTU bus shared by several clients). */
static bool is_retryable(int e)
{
	return e == ETIMEDOUT || is_lost(e) || e == ECONNREFUSED || e == EIO || e == EAGAIN ||
	       e == EINTR || is_garbled(e) || is_transient_exception(e);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads and drops whatever arrives until the line has been quiet for
 * QUIET_MS (at most MAX_MS in all): late replies to requests already given
 * up on, which would otherwise be read as the answers to the next ones. */
static void drain(modbus_link *l, int quiet_ms, int max_ms)
{
	modbus_flush(l->ctx);
	int fd = modbus_get_socket(l->ctx);
	if (fd < 0)
		return;
	int64_t end = mono_ms() + max_ms;
	uint8_t junk[256];
	while (mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, quiet_ms) <= 0 || !(p.revents & POLLIN))
			return;
		if (read(fd, junk, sizeof junk) <= 0)
			return;
	}
}

/* Puts the link back in a state where the next answer read belongs to the
 * next request sent. TCP: a fresh connection, so late replies die with the
 * old socket (matching by transaction id alone is not enough: libmodbus
 * reads the late reply, reports EMBBADDATA and leaves the real one behind).
 * RTU has no connection and no transaction id: drain the line until quiet,
 * and reopen the port only when it failed. Returns 0 or the errno of a
 * failed reconnect. */
static int recover(modbus_link *l, int e)
{
	if (l->kind == LINK_TCP) {
		modbus_close(l->ctx);
		return modbus_connect(l->ctx) == -1 ? errno : 0;
	}
	if (is_lost(e) || e == EIO) {
		modbus_close(l->ctx);
		return modbus_connect(l->ctx) == -1 ? errno : 0;
	}
	drain(l, MODBUS_LINK_DRAIN_QUIET_MS, l->timeout_ms + MODBUS_LINK_DRAIN_QUIET_MS);
	return 0;
}

/* Turns the errno of a failed libmodbus call into our code and message.
 * WHAT names the operation and its register or coil; TRIES and SPENT_MS
 * say how hard the link tried before giving up. */
static int fail(modbus_link *l, int e, const char *what, int tries, int64_t spent_ms)
{
	char retried[96] = "";
	if (tries > 1)
		snprintf(retried, sizeof retried, " (%d attempts over %.1f s)", tries, (double)spent_ms / 1000.0);
	if (e == ETIMEDOUT) {
		snprintf(l->error, sizeof l->error,
			 "%s: %s: no answer within %d ms%s (unit absent, wrong unit id, or the link stalled?)",
			 l->where, what, l->timeout_ms, retried);
		return MODBUS_LINK_ERR_TIMEOUT;
	}
	if (e > MODBUS_ENOBASE && e <= EMBXGTAR) {
		l->exception = e - MODBUS_ENOBASE;
		snprintf(l->error, sizeof l->error, "%s: %s: exception %02d %s%s", l->where, what,
			 l->exception, exception_name(l->exception), retried);
		return MODBUS_LINK_ERR_EXCEPTION;
	}
	if (is_lost(e) || e == ECONNREFUSED) {
		snprintf(l->error, sizeof l->error, "%s: %s: connection lost, not regained: %s%s", l->where,
			 what, modbus_strerror(e), retried);
		return MODBUS_LINK_ERR_GONE;
	}
	snprintf(l->error, sizeof l->error, "%s: %s: %s%s", l->where, what, modbus_strerror(e), retried);
	return MODBUS_LINK_ERR_IO;
}

/* One request as a libmodbus call, so retry logic is written once. */
enum op { OP_READ_REGS, OP_WRITE_REG, OP_WRITE_COIL, OP_READ_COILS };

struct request {
	enum op op;
	int addr, n;
	uint16_t value;
	uint16_t *regs;
	uint8_t *bits;
};

static int call(modbus_link *l, const struct request *r)
{
	switch (r->op) {
	case OP_READ_REGS: return modbus_read_registers(l->ctx, r->addr, r->n, r->regs);
	case OP_WRITE_REG: return modbus_write_register(l->ctx, r->addr, r->value);
	case OP_WRITE_COIL: return modbus_write_bit(l->ctx, r->addr, r->value);
	case OP_READ_COILS: return modbus_read_bits(l->ctx, r->addr, r->n, r->bits);
	}
	errno = EINVAL;
	return -1;
}

/* Sends R until it is answered, the unit gives a real answer (an exception
 * that means "no"), or the retry budget is spent. Every request here is
 * idempotent (reads, single writes of a value), so sending it again is safe.
 * After each failed attempt the link is recovered first, so a late reply is
 * never taken for the answer to the retry. */
static int run(modbus_link *l, const struct request *r, const char *what)
{
	l->exception = 0;
	l->error[0] = '\0';
	int64_t start = mono_ms(), deadline = start + l->retry_ms;
	int tries = 0, e;
	for (;;) {
		tries++;
		if (call(l, r) != -1) {
			/* RTU: the replies to earlier tries may still be coming
			 * (a unit that stalled answers every request it queued). */
			if (tries > 1 && l->kind == LINK_RTU)
				drain(l, MODBUS_LINK_DRAIN_QUIET_MS, l->timeout_ms + MODBUS_LINK_DRAIN_QUIET_MS);
			return MODBUS_LINK_OK;
		}
		e = errno;
		if (!is_retryable(e) || mono_ms() >= deadline)
			break;
		if (is_transient_exception(e)) {
			poll(NULL, 0, MODBUS_LINK_RECONNECT_PAUSE_MS);   /* the answer was real: no recovery */
			continue;
		}
		int re = recover(l, e);
		/* A refused or failed reconnect: the unit may be restarting.
		 * Pause briefly instead of spinning through the budget. */
		while (re && mono_ms() < deadline) {
			e = re;
			poll(NULL, 0, MODBUS_LINK_RECONNECT_PAUSE_MS);
			re = modbus_connect(l->ctx) == -1 ? errno : 0;
		}
		if (re)
			break;
	}
	return fail(l, e, what, tries, mono_ms() - start);
}

static bool check_range(modbus_link *l, int addr, int n, int max, const char *what)
{
	if (addr < 0 || n < 1 || n > max || addr + n - 1 > 0xFFFF) {
		snprintf(l->error, sizeof l->error, "%s: %s: bad address %d or count %d (1..%d)",
			 l->where, what, addr, n, max);
		return false;
	}
	return true;
}

int modbus_link_read_registers(modbus_link *l, int addr, int n, uint16_t *dest)
{
	char what[64];
	if (n == 1)
		snprintf(what, sizeof what, "read holding register %d", addr);
	else
		snprintf(what, sizeof what, "read holding registers %d..%d", addr, addr + n - 1);
	if (!dest || !check_range(l, addr, n, MODBUS_MAX_READ_REGISTERS, what))
		return MODBUS_LINK_ERR_ARG;
	struct request r = { .op = OP_READ_REGS, .addr = addr, .n = n, .regs = dest };
	return run(l, &r, what);
}

int modbus_link_write_register(modbus_link *l, int addr, uint16_t value)
{
	char what[64];
	snprintf(what, sizeof what, "write register %d = 0x%04X", addr, value);
	if (!check_range(l, addr, 1, 1, what))
		return MODBUS_LINK_ERR_ARG;
	struct request r = { .op = OP_WRITE_REG, .addr = addr, .value = value };
	return run(l, &r, what);
}

int modbus_link_write_coil(modbus_link *l, int addr, bool on)
{
	char what[64];
	snprintf(what, sizeof what, "write coil %d %s", addr, on ? "on" : "off");
	if (!check_range(l, addr, 1, 1, what))
		return MODBUS_LINK_ERR_ARG;
	/* libmodbus sends 0xFF00 for TRUE and 0x0000 for FALSE. */
	struct request r = { .op = OP_WRITE_COIL, .addr = addr, .value = on ? TRUE : FALSE };
	return run(l, &r, what);
}

int modbus_link_read_coils(modbus_link *l, int addr, int n, bool *dest)
{
	char what[64];
	if (n == 1)
		snprintf(what, sizeof what, "read coil %d", addr);
	else
		snprintf(what, sizeof what, "read coils %d..%d", addr, addr + n - 1);
	if (!dest || !check_range(l, addr, n, MODBUS_MAX_READ_BITS, what))
		return MODBUS_LINK_ERR_ARG;
	uint8_t *bits = calloc((size_t)n, 1);
	if (!bits) {
		snprintf(l->error, sizeof l->error, "%s: %s: out of memory", l->where, what);
		return MODBUS_LINK_ERR_IO;
	}
	struct request r = { .op = OP_READ_COILS, .addr = addr, .n = n, .bits = bits };
	int rc = run(l, &r, what);
	if (rc == MODBUS_LINK_OK)
		for (int i = 0; i < n; i++)
			dest[i] = bits[i] != 0;
	free(bits);
	return rc;
}
