/*
 * power_korad.c - Korad KA3005P-class bench supplies (also sold as Tenma
 * 72-2540, RND 320-KA3005P, Velleman PS3005D) over a serial line.
 *
 * Transport "serial:DEVICE@BAUD" (9600 when no @BAUD), 8N1. The protocol
 * (shared/notes/hardware-facts.md, "Serial bench supplies"): ASCII commands
 * with no line terminator, the unit framing a command by the pause after
 * it; answers are bare, unterminated too:
 *   *IDN?          "KORAD KA3005P V5.8 SN:03379314" (read until a pause)
 *   VSET1:12.00    set points, written as fixed-width numbers so a command
 *   ISET1:1.000    ends on its last digit as well as on the pause
 *   VSET1? ISET1?  "12.00", "1.000": five characters
 *   VOUT1? IOUT1?  the output as measured, five characters
 *   OUT1 / OUT0    output on / off
 *   STATUS?        one byte: bit 0 CH1 mode (1 CV, 0 CC), bit 6 output
 *                  (1 on), as the KA3005P manual's table gives it; bits
 *                  1-5 (CH2, tracking, beep, lock) are not used here.
 * The KA3005P has OVP and OCP only as switches (OVP1/OVP0, OCP1/OCP0) that
 * trip at the set points themselves: there is no limit to write or read, so
 * get_limits gives NAN for both and set_limits refuses a value for them.
 * The status byte has no bit for a trip, so protection always reads none.
 *
 * After a set command the driver leaves the line quiet for KORAD_GAP_MS
 * before the next one, or the unit reads two commands as one. A unit that
 * never answers is a timeout naming port and command; an answer that is
 * not what the command returns is an I/O error quoting it.
 */
#include "power.h"
#include "serial.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KORAD_BAUD 9600
#define KORAD_TIMEOUT_MS 500
#define KORAD_GAP_MS 50          /* the pause that ends a command or an answer */
#define KORAD_NUM_LEN 5          /* "12.00", "1.000" */
#define KORAD_STATUS_CV 0x01     /* bit 0: CH1 in constant voltage */
#define KORAD_STATUS_OUTPUT 0x40 /* bit 6: output on */

struct korad_model {
	const char *id;      /* as it appears in *IDN?, spaces removed */
	const char *name;
	double v_max, i_max;
};

static const struct korad_model korad_models[] = {
	{ "KA3005P", "KA3005P", 30, 5 },   { "KA3003P", "KA3003P", 30, 3 },
	{ "KA3010P", "KA3010P", 30, 10 },  { "KA6003P", "KA6003P", 60, 3 },
	{ "KA6005P", "KA6005P", 60, 5 },   { "72-2540", "Tenma 72-2540", 30, 5 },
	{ "72-2535", "Tenma 72-2535", 30, 3 }, { "72-2550", "Tenma 72-2550", 60, 3 },
	{ "PS3005D", "Velleman PS3005D", 30, 5 },
};

struct korad {
	serial_port *port;
	const struct korad_model *model;
	int timeout_ms;
	int64_t quiet_after_ms;  /* monotonic ms before which nothing may be sent */
	char where[300];         /* the transport, as the rack file gives it */
};

extern const struct power_driver power_korad;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int check_transport(const char *t, char *err, size_t errlen)
{
	return serial_transport_parse(t, KORAD_BAUD, NULL, 0, NULL, err, errlen);
}

static int from_serial(int rc)
{
	switch (rc) {
	case SERIAL_ERR_TIMEOUT: return POWER_ERR_TIMEOUT;
	case SERIAL_ERR_GONE: return POWER_ERR_GONE;
	case SERIAL_ERR_ARG: return POWER_ERR_ARG;
	}
	return POWER_ERR_IO;
}

/* ANSWER as printable text for a message: "\x8f" for what is not. */
static const char *printable(const char *answer, size_t n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used + 5 < len; i++) {
		unsigned char c = (unsigned char)answer[i];
		used += (size_t)snprintf(buf + used, len - used, isprint(c) ? "%c" : "\\x%02x", c);
	}
	return buf;
}

static int fail(struct power_dev *d, int rc, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "serial:/dev/pts/7@9600: VOUT1?: no answer within 500 ms" into D. */
static int fail(struct power_dev *d, int rc, const char *cmd, const char *fmt, ...)
{
	struct korad *k = d->priv;
	int n = snprintf(d->error, sizeof d->error, "%s: %s: ", k->where, cmd);
	if (n > 0 && (size_t)n < sizeof d->error) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->error + n, sizeof d->error - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Sends CMD after the quiet time the last one needs; the unit's stale
 * bytes (a late answer) are dropped first so they are never read as this
 * command's answer. */
static int send(struct power_dev *d, const char *cmd)
{
	struct korad *k = d->priv;
	int64_t wait = k->quiet_after_ms - mono_ms();
	if (wait > 0)
		sleep_ms(wait);
	serial_flush(k->port, SERIAL_QUEUE_INPUT);
	int rc = serial_write_all(k->port, cmd, strlen(cmd), k->timeout_ms);
	if (rc != SERIAL_OK)
		return fail(d, from_serial(rc), cmd, "write: %s", serial_last_error(k->port));
	return POWER_OK;
}

/* A set command: no answer; the pause after it is what ends it. */
static int set_cmd(struct power_dev *d, const char *cmd)
{
	struct korad *k = d->priv;
	int rc = send(d, cmd);
	serial_drain(k->port);
	k->quiet_after_ms = mono_ms() + KORAD_GAP_MS;
	return rc;
}

/* Sends CMD and reads its answer into BUF: WANT bytes (0: up to a pause of
 * KORAD_GAP_MS). Nothing within the timeout is TIMEOUT; fewer than WANT
 * bytes before a pause, or more than BUF holds, is IO. *N gets the count. */
static int ask(struct power_dev *d, const char *cmd, size_t want, char *buf, size_t len, size_t *n)
{
	struct korad *k = d->priv;
	int rc = send(d, cmd);
	if (rc != POWER_OK)
		return rc;
	*n = 0;
	int64_t deadline = mono_ms() + k->timeout_ms;
	while (want == 0 || *n < want) {
		if (*n + 1 >= len)
			return fail(d, POWER_ERR_IO, cmd, "answer longer than %zu bytes: '%s'", len - 1,
				    printable(buf, *n, (char[160]){ 0 }, 160));
		int tmo = *n ? KORAD_GAP_MS : (int)(deadline - mono_ms());
		ssize_t got = serial_read(k->port, buf + *n, (want ? want : len - 1) - *n, tmo > 0 ? tmo : 0);
		if (got == SERIAL_ERR_TIMEOUT && *n)
			break;
		if (got == SERIAL_ERR_TIMEOUT)
			return fail(d, POWER_ERR_TIMEOUT, cmd, "no answer within %d ms", k->timeout_ms);
		if (got < 0)
			return fail(d, from_serial((int)got), cmd, "read: %s", serial_last_error(k->port));
		*n += (size_t)got;
	}
	buf[*n] = '\0';
	if (want && *n < want)
		return fail(d, POWER_ERR_IO, cmd, "answer '%s' cut short (%zu of %zu bytes)",
			    printable(buf, *n, (char[160]){ 0 }, 160), *n, want);
	return POWER_OK;
}

/* A five-character number such as "12.00" or "0.024". */
static int ask_number(struct power_dev *d, const char *cmd, double *out)
{
	char buf[16];
	size_t n;
	int rc = ask(d, cmd, KORAD_NUM_LEN, buf, sizeof buf, &n);
	if (rc != POWER_OK)
		return rc;
	char *end;
	bool digits = strspn(buf, "0123456789.") == n && strchr(buf, '.');
	double v = digits ? strtod(buf, &end) : NAN;
	if (!digits || *end || !isfinite(v))
		return fail(d, POWER_ERR_IO, cmd, "answer '%s' is not a number such as 12.00",
			    printable(buf, n, (char[80]){ 0 }, 80));
	*out = v;
	return POWER_OK;
}

/* The model table entry whose id is in IDN (spaces ignored), or NULL. */
static const struct korad_model *find_model(const char *idn)
{
	char flat[128];
	size_t j = 0;
	for (size_t i = 0; idn[i] && j + 1 < sizeof flat; i++)
		if (idn[i] != ' ')
			flat[j++] = (char)toupper((unsigned char)idn[i]);
	flat[j] = '\0';
	for (size_t i = 0; i < sizeof korad_models / sizeof korad_models[0]; i++)
		if (strstr(flat, korad_models[i].id))
			return &korad_models[i];
	return NULL;
}

static void korad_close(struct power_dev *d)
{
	if (!d)
		return;
	struct korad *k = d->priv;
	serial_close(k->port);
	free(k);
	free(d);
}

static int open_fail(struct power_dev *d, int rc, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", d->error);
	korad_close(d);
	return rc;
}

static int korad_open(const char *transport, int unit, int timeout_ms, struct power_dev **out,
		      char *err, size_t errlen)
{
	(void)unit;   /* one supply per serial line */
	*out = NULL;
	char path[256];
	int baud;
	if (serial_transport_parse(transport, KORAD_BAUD, path, sizeof path, &baud, err, errlen) < 0)
		return POWER_ERR_ARG;
	struct power_dev *d = calloc(1, sizeof *d);
	struct korad *k = calloc(1, sizeof *k);
	if (!d || !k) {
		free(d);
		free(k);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", transport);
		return POWER_ERR_IO;
	}
	d->driver = &power_korad;
	d->priv = k;
	k->timeout_ms = timeout_ms > 0 ? timeout_ms : KORAD_TIMEOUT_MS;
	snprintf(k->where, sizeof k->where, "%s", transport);
	struct serial_config cfg = { .baud = baud };
	if (serial_open(path, &cfg, SERIAL_BACKEND_AUTO, &k->port) != SERIAL_OK) {
		snprintf(d->error, sizeof d->error, "%s: %s", transport, serial_open_error());
		return open_fail(d, POWER_ERR_CONNECT, err, errlen);
	}
	char idn[128];
	size_t n;
	int rc = ask(d, "*IDN?", 0, idn, sizeof idn, &n);
	if (rc != POWER_OK)
		return open_fail(d, rc, err, errlen);
	k->model = find_model(idn);
	if (!k->model) {
		char shown[200];
		fail(d, POWER_ERR_MODEL, "*IDN?", "'%s' is not a Korad KA3005P-class supply this driver knows "
		     "(KA3005P, KA3003P, KA3010P, KA6003P, KA6005P, Tenma 72-2535/2540/2550, Velleman PS3005D)",
		     printable(idn, n, shown, sizeof shown));
		return open_fail(d, POWER_ERR_MODEL, err, errlen);
	}
	*out = d;
	return POWER_OK;
}

/* "VSET1:12.00": refused, not clipped, when the model cannot hold it. */
static int set_point(struct power_dev *d, const char *cmd, const char *unit, const char *fmt, double value,
		     double max)
{
	struct korad *k = d->priv;
	if (!isfinite(value) || value < 0 || value > max)
		return fail(d, POWER_ERR_ARG, cmd, "%g %s is out of range for %s (0..%g)", value, unit, k->model->name,
			    max);
	char text[32];
	int n = snprintf(text, sizeof text, "%s:", cmd);
	snprintf(text + n, sizeof text - (size_t)n, fmt, value);
	return set_cmd(d, text);
}

static int korad_set_voltage(struct power_dev *d, double volts)
{
	struct korad *k = d->priv;
	return set_point(d, "VSET1", "V", "%05.2f", volts, k->model->v_max);
}

static int korad_set_current(struct power_dev *d, double amps)
{
	struct korad *k = d->priv;
	return set_point(d, "ISET1", "A", "%05.3f", amps, k->model->i_max);
}

static int korad_output(struct power_dev *d, bool on)
{
	return set_cmd(d, on ? "OUT1" : "OUT0");
}

static int korad_status(struct power_dev *d, struct power_status *st)
{
	struct korad *k = d->priv;
	struct power_status s = { .v_in = NAN, .protection = POWER_PROT_NONE };
	int rc = ask_number(d, "VSET1?", &s.v_set);
	if (rc == POWER_OK)
		rc = ask_number(d, "ISET1?", &s.i_set);
	if (rc == POWER_OK)
		rc = ask_number(d, "VOUT1?", &s.v_out);
	if (rc == POWER_OK)
		rc = ask_number(d, "IOUT1?", &s.i_out);
	char b[4];
	size_t n;
	if (rc == POWER_OK)
		rc = ask(d, "STATUS?", 1, b, sizeof b, &n);
	if (rc != POWER_OK)
		return rc;
	/* More than the one byte already waiting: not a status answer. */
	char extra[8];
	ssize_t more = serial_read(k->port, extra, sizeof extra, 0);
	if (more > 0) {
		memcpy(b + 1, extra, 1);
		return fail(d, POWER_ERR_IO, "STATUS?", "answer '%s...' is longer than the one status byte",
			    printable(b, 2, (char[32]){ 0 }, 32));
	}
	unsigned char byte = (unsigned char)b[0];
	s.output_on = (byte & KORAD_STATUS_OUTPUT) != 0;
	s.mode = byte & KORAD_STATUS_CV ? POWER_MODE_CV : POWER_MODE_CC;
	*st = s;
	return POWER_OK;
}

static int korad_set_limits(struct power_dev *d, const struct power_limits *want)
{
	struct korad *k = d->priv;
	if (!isnan(want->ovp) || !isnan(want->ocp))
		return fail(d, POWER_ERR_ARG, !isnan(want->ovp) ? "OVP" : "OCP",
			    "the %s has no protection level to set (OVP1/OCP1 only switch tripping at the set "
			    "points on): leave ovp and ocp out of the rack file", k->model->name);
	int rc = korad_set_voltage(d, want->volts);
	return rc == POWER_OK ? korad_set_current(d, want->amps) : rc;
}

static int korad_get_limits(struct power_dev *d, struct power_limits *got)
{
	struct power_limits l = { .ovp = NAN, .ocp = NAN, .v_res = 0.01, .i_res = 0.001 };
	int rc = ask_number(d, "VSET1?", &l.volts);
	if (rc == POWER_OK)
		rc = ask_number(d, "ISET1?", &l.amps);
	if (rc == POWER_OK)
		*got = l;
	return rc;
}

const struct power_driver power_korad = {
	.name = "korad",
	.check_transport = check_transport,
	.open = korad_open,
	.set_voltage = korad_set_voltage,
	.set_current = korad_set_current,
	.output = korad_output,
	.status = korad_status,
	.set_limits = korad_set_limits,
	.get_limits = korad_get_limits,
	.close = korad_close,
};
