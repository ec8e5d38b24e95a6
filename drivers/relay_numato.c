/*
 * relay_numato.c - Numato Lab-class USB/serial relay modules (1 to 32
 * relays, a CDC serial port).
 *
 * Transport "serial:DEVICE@BAUD" (19200 when no @BAUD; a USB CDC module
 * ignores the rate). Commands are ASCII ending in CR
 * (shared/notes/hardware-facts.md, "Serial ... relay modules"):
 *   ver             firmware version, e.g. "00000008"
 *   relay on N      close relay N
 *   relay off N     open it
 *   relay read N    "on" or "off"
 * N is one character: 0-9, then A-V for relays 10-31. The module echoes
 * what it is sent, ends a line with "\n\r" and prints a '>' prompt when it
 * is ready again, so one exchange reads
 *   "relay read 2\n\ron\n\r>"
 * The driver reads up to the prompt, checks the echo is its own command,
 * and takes what lies between echo and prompt as the answer: an exchange
 * without the prompt is a timeout, one without the echo or with an answer
 * the command does not give is an I/O error quoting what came.
 */
#include "relay.h"
#include "serial.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NUMATO_BAUD 19200
#define NUMATO_TIMEOUT_MS 500
#define NUMATO_CHANNELS 32
#define NUMATO_ANSWER_MAX 128   /* echo, one answer line and the prompt */

struct numato {
	serial_port *port;
	int timeout_ms;
	char where[300];   /* the transport, as the rack file gives it */
};

extern const struct relay_driver relay_numato;

static int check_transport(const char *t, char *err, size_t errlen)
{
	return serial_transport_parse(t, NUMATO_BAUD, NULL, 0, NULL, err, errlen);
}

static int from_serial(int rc)
{
	switch (rc) {
	case SERIAL_ERR_TIMEOUT: return RELAY_ERR_TIMEOUT;
	case SERIAL_ERR_GONE: return RELAY_ERR_GONE;
	case SERIAL_ERR_ARG: return RELAY_ERR_ARG;
	}
	return RELAY_ERR_IO;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* TEXT as printable ("\r" and "\x8f" spelt out) for a message. */
static const char *printable(const char *text, size_t n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used + 5 < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\r' || c == '\n')
			used += (size_t)snprintf(buf + used, len - used, "\\%c", c == '\r' ? 'r' : 'n');
		else
			used += (size_t)snprintf(buf + used, len - used, isprint(c) ? "%c" : "\\x%02x", c);
	}
	return buf;
}

static int fail(struct relay_dev *d, int rc, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "serial:/dev/pts/9@19200: relay read 2: no prompt within 500 ms" into D. */
static int fail(struct relay_dev *d, int rc, const char *cmd, const char *fmt, ...)
{
	struct numato *m = d->priv;
	int n = snprintf(d->error, sizeof d->error, "%s: %s: ", m->where, *cmd ? cmd : "(empty line)");
	if (n > 0 && (size_t)n < sizeof d->error) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->error + n, sizeof d->error - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Reads up to and including the prompt into BUF; *N gets the count. */
static int read_to_prompt(struct relay_dev *d, const char *cmd, char *buf, size_t len, size_t *n)
{
	struct numato *m = d->priv;
	long long deadline = mono_ms() + m->timeout_ms;
	*n = 0;
	for (;;) {
		long long left = deadline - mono_ms();
		if (left <= 0)
			return fail(d, RELAY_ERR_TIMEOUT, cmd, "no '>' prompt within %d ms (got '%s')", m->timeout_ms,
				    printable(buf, *n, (char[200]){ 0 }, 200));
		if (*n + 1 >= len)
			return fail(d, RELAY_ERR_IO, cmd, "no '>' prompt in %zu bytes: '%s'", *n,
				    printable(buf, *n, (char[200]){ 0 }, 200));
		ssize_t got = serial_read(m->port, buf + *n, 1, (int)left);
		if (got == SERIAL_ERR_TIMEOUT)
			continue;
		if (got < 0)
			return fail(d, from_serial((int)got), cmd, "read: %s", serial_last_error(m->port));
		if (buf[(*n)++] == '>') {
			buf[*n] = '\0';
			return RELAY_OK;
		}
	}
}

/* One exchange: CMD and CR out, echo and answer and prompt in. The answer
 * (between the echo and the prompt, line ends trimmed) goes to ANSWER. */
static int exchange(struct relay_dev *d, const char *cmd, char *answer, size_t len)
{
	struct numato *m = d->priv;
	char line[64], buf[NUMATO_ANSWER_MAX];
	size_t n;
	snprintf(line, sizeof line, "%s\r", cmd);
	serial_flush(m->port, SERIAL_QUEUE_INPUT);
	int rc = serial_write_all(m->port, line, strlen(line), m->timeout_ms);
	if (rc != SERIAL_OK)
		return fail(d, from_serial(rc), cmd, "write: %s", serial_last_error(m->port));
	if ((rc = read_to_prompt(d, cmd, buf, sizeof buf, &n)) != RELAY_OK)
		return rc;
	/* The echo: the command as sent (the module may leave out the CR). */
	const char *p = buf + strspn(buf, "\r\n");
	size_t cl = strlen(cmd);
	if (strncmp(p, cmd, cl) != 0)
		return fail(d, RELAY_ERR_IO, cmd, "no echo of the command in '%s'",
			    printable(buf, n, (char[200]){ 0 }, 200));
	p += cl;
	p += strspn(p, "\r\n");
	size_t al = (size_t)(buf + n - 1 - p);   /* up to the prompt */
	while (al && (p[al - 1] == '\r' || p[al - 1] == '\n'))
		al--;
	if (al >= len)
		return fail(d, RELAY_ERR_IO, cmd, "answer too long: '%s'", printable(p, al, (char[200]){ 0 }, 200));
	memcpy(answer, p, al);
	answer[al] = '\0';
	return RELAY_OK;
}

/* Relay N's one-character name, or 0 when the family has no relay N. */
static char channel_char(int channel)
{
	if (channel >= 0 && channel < 10)
		return (char)('0' + channel);
	if (channel >= 10 && channel < NUMATO_CHANNELS)
		return (char)('A' + channel - 10);
	return 0;
}

static void numato_close(struct relay_dev *d)
{
	if (!d)
		return;
	struct numato *m = d->priv;
	serial_close(m->port);
	free(m);
	free(d);
}

static int open_fail(struct relay_dev *d, int rc, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", d->error);
	numato_close(d);
	return rc;
}

static int numato_open(const char *transport, int unit, int timeout_ms, struct relay_dev **out, char *err,
		       size_t errlen)
{
	(void)unit;   /* one module per serial line */
	*out = NULL;
	char path[256];
	int baud;
	if (serial_transport_parse(transport, NUMATO_BAUD, path, sizeof path, &baud, err, errlen) < 0)
		return RELAY_ERR_ARG;
	struct relay_dev *d = calloc(1, sizeof *d);
	struct numato *m = calloc(1, sizeof *m);
	if (!d || !m) {
		free(d);
		free(m);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", transport);
		return RELAY_ERR_IO;
	}
	d->driver = &relay_numato;
	d->priv = m;
	m->timeout_ms = timeout_ms > 0 ? timeout_ms : NUMATO_TIMEOUT_MS;
	snprintf(m->where, sizeof m->where, "%s", transport);
	struct serial_config cfg = { .baud = baud };
	if (serial_open(path, &cfg, SERIAL_BACKEND_AUTO, &m->port) != SERIAL_OK) {
		snprintf(d->error, sizeof d->error, "%s: %s", transport, serial_open_error());
		return open_fail(d, RELAY_ERR_CONNECT, err, errlen);
	}
	/* An empty line first: it ends whatever half command someone left in
	 * the module, and its prompt shows the module is there. Then its
	 * version, which every model answers. */
	char ver[64];
	int rc = exchange(d, "", ver, sizeof ver);
	if (rc == RELAY_OK)
		rc = exchange(d, "ver", ver, sizeof ver);
	if (rc == RELAY_OK && (!*ver || strspn(ver, "0123456789ABCDEFabcdef.") != strlen(ver)))
		rc = fail(d, RELAY_ERR_IO, "ver", "answer '%s' is not a version such as 00000008",
			  printable(ver, strlen(ver), (char[100]){ 0 }, 100));
	if (rc != RELAY_OK)
		return open_fail(d, rc, err, errlen);
	*out = d;
	return RELAY_OK;
}

static int numato_set(struct relay_dev *d, int channel, bool on)
{
	char c = channel_char(channel), cmd[32], answer[64];
	snprintf(cmd, sizeof cmd, "relay %s %c", on ? "on" : "off", c ? c : '?');
	if (!c)
		return fail(d, RELAY_ERR_ARG, cmd, "bad channel %d (0..%d)", channel, NUMATO_CHANNELS - 1);
	int rc = exchange(d, cmd, answer, sizeof answer);
	if (rc == RELAY_OK && *answer)
		rc = fail(d, RELAY_ERR_IO, cmd, "unexpected answer '%s' (the module answers nothing)",
			  printable(answer, strlen(answer), (char[100]){ 0 }, 100));
	return rc;
}

static int numato_get(struct relay_dev *d, int channel, bool *on)
{
	char c = channel_char(channel), cmd[32], answer[64];
	snprintf(cmd, sizeof cmd, "relay read %c", c ? c : '?');
	if (!c)
		return fail(d, RELAY_ERR_ARG, cmd, "bad channel %d (0..%d)", channel, NUMATO_CHANNELS - 1);
	int rc = exchange(d, cmd, answer, sizeof answer);
	if (rc != RELAY_OK)
		return rc;
	if (strcmp(answer, "on") && strcmp(answer, "off"))
		return fail(d, RELAY_ERR_IO, cmd, "answer '%s' is neither on nor off",
			    printable(answer, strlen(answer), (char[100]){ 0 }, 100));
	*on = strcmp(answer, "on") == 0;
	return RELAY_OK;
}

const struct relay_driver relay_numato = {
	.name = "numato",
	.check_transport = check_transport,
	.open = numato_open,
	.set = numato_set,
	.get = numato_get,
	.close = numato_close,
};
