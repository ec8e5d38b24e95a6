/*
 * modbus_link.c - libmodbus behind a transport string, with errors that say
 * what and where. See modbus_link.h.
 */
#include "modbus_link.h"

#include <modbus.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum link_kind { LINK_TCP, LINK_RTU };

struct modbus_link {
	modbus_t *ctx;
	enum link_kind kind;
	int unit;
	int timeout_ms;
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

const char *modbus_link_error(const modbus_link *l) { return l->error; }
const char *modbus_link_where(const modbus_link *l) { return l->where; }
int modbus_link_exception(const modbus_link *l) { return l->exception; }

/* The peer closed or reset the connection: worth one reconnect over TCP
 * (gateways drop idle clients; the rack's supply may have been restarted). */
static bool is_lost(int e)
{
	return e == ECONNRESET || e == EPIPE || e == ENOTCONN || e == EBADF || e == ECONNABORTED;
}

/* Turns the errno of a failed libmodbus call into our code and message.
 * WHAT names the operation and its register or coil. */
static int fail(modbus_link *l, int e, const char *what)
{
	if (e == ETIMEDOUT) {
		/* A late answer would otherwise be read as the next one's. */
		modbus_flush(l->ctx);
		snprintf(l->error, sizeof l->error,
			 "%s: %s: no answer within %d ms (unit absent or wrong unit id?)",
			 l->where, what, l->timeout_ms);
		return MODBUS_LINK_ERR_TIMEOUT;
	}
	if (e > MODBUS_ENOBASE && e <= EMBXGTAR) {
		l->exception = e - MODBUS_ENOBASE;
		snprintf(l->error, sizeof l->error, "%s: %s: exception %02d %s", l->where, what,
			 l->exception, exception_name(l->exception));
		return MODBUS_LINK_ERR_EXCEPTION;
	}
	if (is_lost(e) || e == ECONNREFUSED) {
		snprintf(l->error, sizeof l->error, "%s: %s: connection lost: %s", l->where, what,
			 modbus_strerror(e));
		return MODBUS_LINK_ERR_GONE;
	}
	snprintf(l->error, sizeof l->error, "%s: %s: %s", l->where, what, modbus_strerror(e));
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

static int run(modbus_link *l, const struct request *r, const char *what)
{
	l->exception = 0;
	l->error[0] = '\0';
	if (call(l, r) != -1)
		return MODBUS_LINK_OK;
	int e = errno;
	if (l->kind == LINK_TCP && is_lost(e)) {
		/* Every request here is idempotent (reads, single writes), so
		 * sending it again after a reconnect is safe. */
		modbus_close(l->ctx);
		if (modbus_connect(l->ctx) == -1) {
			e = errno;
			snprintf(l->error, sizeof l->error, "%s: %s: connection lost, reconnect failed: %s",
				 l->where, what, modbus_strerror(e));
			return MODBUS_LINK_ERR_GONE;
		}
		if (call(l, r) != -1)
			return MODBUS_LINK_OK;
		e = errno;
	}
	return fail(l, e, what);
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
