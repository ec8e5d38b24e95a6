/* serial.c - the public serial interface: validation, error text, dispatch. */
#include "serial_backend.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* serial_open() has no port to keep its message in, and several threads may
 * open ports at once. */
static _Thread_local char open_error[640];

static const struct serial_config default_config = {
	.baud = 115200, .data_bits = 8, .parity = SERIAL_PARITY_NONE,
	.stop_bits = 1, .flow = SERIAL_FLOW_NONE,
};

int serial_fail(struct serial_port *p, int code, const char *op, const char *fmt, ...)
{
	int len = snprintf(p->error, sizeof p->error, "%s: %s: ", p->path ? p->path : "(no path)", op);
	if (len < 0 || (size_t)len >= sizeof p->error)
		return code;

	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->error + len, sizeof p->error - (size_t)len, fmt, ap);
	va_end(ap);
	return code;
}

bool serial_errno_gone(int err)
{
	return err == EIO || err == ENODEV || err == ENXIO || err == EPIPE;
}

/* Unix98 pty slaves use majors 136..143 (linux/major.h,
 * UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT). */
static bool stat_is_pty(const struct stat *st)
{
	unsigned int maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) && maj >= 136 && maj < 144;
}

bool serial_path_is_pty(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && stat_is_pty(&st);
}

bool serial_fd_is_pty(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && stat_is_pty(&st);
}

static struct timespec now_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static struct serial_deadline deadline_in(int timeout_ms)
{
	struct serial_deadline dl = { .forever = timeout_ms < 0, .timeout_ms = timeout_ms };
	if (dl.forever)
		return dl;
	dl.at = now_monotonic();
	dl.at.tv_sec += timeout_ms / 1000;
	dl.at.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.at.tv_nsec >= 1000000000L) {
		dl.at.tv_sec++;
		dl.at.tv_nsec -= 1000000000L;
	}
	return dl;
}

/* Rounded up so that a wait never ends just before the deadline and spins
 * once more. */
int serial_deadline_left_ms(const struct serial_deadline *dl)
{
	if (dl->forever)
		return -1;
	struct timespec now = now_monotonic();
	long long ns = (long long)(dl->at.tv_sec - now.tv_sec) * 1000000000LL +
		       (dl->at.tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	long long ms = (ns + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int serial_wait(struct serial_port *p, int fd, short events, const struct serial_deadline *dl,
		const char *op, short *revents)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int r = poll(&pfd, 1, serial_deadline_left_ms(dl));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return serial_fail(p, SERIAL_ERR_IO, op, "poll failed (%s)", strerror(errno));
		}
		if (r == 0)
			return serial_fail(p, SERIAL_ERR_TIMEOUT, op, "timed out after %d ms", dl->timeout_ms);
		*revents = pfd.revents;
		if (pfd.revents & POLLNVAL)
			return serial_fail(p, SERIAL_ERR_IO, op, "poll: descriptor %d not open", fd);
		if (pfd.revents & events)
			return SERIAL_OK;
		return serial_fail(p, SERIAL_ERR_GONE, op, "device gone (%s)",
				   (pfd.revents & POLLHUP) ? "hang-up" : "poll reported an error");
	}
}

static int fail_open(int code, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_open(int code, const char *path, const char *fmt, ...)
{
	int len = snprintf(open_error, sizeof open_error, "%s: open: ", path ? path : "(no path)");
	if (len < 0 || (size_t)len >= sizeof open_error)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(open_error + len, sizeof open_error - (size_t)len, fmt, ap);
	va_end(ap);
	return code;
}

/* Fills in the documented defaults (0 data bits means 8, 0 stop bits 1)
 * and rejects what no backend could do, before any device is touched. */
static int check_config(const char *path, const struct serial_config *in, struct serial_config *out)
{
	*out = in ? *in : default_config;
	if (out->data_bits == 0)
		out->data_bits = 8;
	if (out->stop_bits == 0)
		out->stop_bits = 1;

	if (out->baud <= 0)
		return fail_open(SERIAL_ERR_ARG, path, "invalid baud rate %d", out->baud);
	if (out->data_bits < 5 || out->data_bits > 8)
		return fail_open(SERIAL_ERR_ARG, path, "invalid data bits %d (5..8)", out->data_bits);
	if (out->stop_bits != 1 && out->stop_bits != 2)
		return fail_open(SERIAL_ERR_ARG, path, "invalid stop bits %d (1 or 2)", out->stop_bits);
	if (out->parity != SERIAL_PARITY_NONE && out->parity != SERIAL_PARITY_ODD &&
	    out->parity != SERIAL_PARITY_EVEN)
		return fail_open(SERIAL_ERR_ARG, path, "invalid parity %d", (int)out->parity);
	if (out->flow != SERIAL_FLOW_NONE && out->flow != SERIAL_FLOW_RTSCTS &&
	    out->flow != SERIAL_FLOW_XONXOFF)
		return fail_open(SERIAL_ERR_ARG, path, "invalid flow control %d", (int)out->flow);
	return SERIAL_OK;
}

static void set_describe(struct serial_port *p)
{
	static const char parity[] = { [SERIAL_PARITY_NONE] = 'N', [SERIAL_PARITY_ODD] = 'O',
				       [SERIAL_PARITY_EVEN] = 'E' };
	const char *flow = p->cfg.flow == SERIAL_FLOW_RTSCTS ? ", rtscts"
			 : p->cfg.flow == SERIAL_FLOW_XONXOFF ? ", xonxoff" : "";
	snprintf(p->describe, sizeof p->describe, "%s (%s, %d %d%c%d%s)", p->path, p->ops->name,
		 p->cfg.baud, p->cfg.data_bits, parity[p->cfg.parity], p->cfg.stop_bits, flow);
}

/* Runs one backend's open; on failure the backend's message is in p->error. */
static int try_backend(struct serial_port *p, const struct serial_backend_ops *ops)
{
	p->ops = ops;
	p->state = NULL;
	p->error[0] = '\0';
	int rc = ops->open(p);
	if (rc != SERIAL_OK)
		ops->close(p);
	return rc;
}

static int open_with(struct serial_port *p, enum serial_backend backend)
{
	if (backend == SERIAL_BACKEND_TERMIOS)
		return try_backend(p, &serial_backend_termios);
	if (backend == SERIAL_BACKEND_LIBSERIALPORT)
		return try_backend(p, &serial_backend_libserialport);

	if (try_backend(p, &serial_backend_libserialport) == SERIAL_OK)
		return SERIAL_OK;
	/* Keep libserialport's reason (without the path): if termios fails
	 * too, the user sees both attempts. */
	char refused[sizeof p->error];
	size_t skip = strlen(p->path) + 2;
	snprintf(refused, sizeof refused, "%s", strlen(p->error) > skip ? p->error + skip : p->error);

	int rc = try_backend(p, &serial_backend_termios);
	if (rc != SERIAL_OK) {
		size_t len = strlen(p->error);
		snprintf(p->error + len, sizeof p->error - len, "; before that, %s", refused);
	}
	return rc;
}

int serial_open(const char *path, const struct serial_config *cfg,
		enum serial_backend backend, serial_port **out)
{
	if (!out)
		return fail_open(SERIAL_ERR_ARG, path, "no result pointer");
	*out = NULL;
	if (!path || !*path)
		return fail_open(SERIAL_ERR_ARG, path, "empty path");
	if (backend != SERIAL_BACKEND_AUTO && backend != SERIAL_BACKEND_LIBSERIALPORT &&
	    backend != SERIAL_BACKEND_TERMIOS)
		return fail_open(SERIAL_ERR_ARG, path, "invalid backend %d", (int)backend);

	struct serial_config checked;
	int rc = check_config(path, cfg, &checked);
	if (rc != SERIAL_OK)
		return rc;

	struct serial_port *p = calloc(1, sizeof *p);
	char *copy = strdup(path);
	if (!p || !copy) {
		free(p);
		free(copy);
		return fail_open(SERIAL_ERR_IO, path, "out of memory");
	}
	p->path = copy;
	p->cfg = checked;

	rc = open_with(p, backend);
	if (rc != SERIAL_OK) {
		snprintf(open_error, sizeof open_error, "%s", p->error);
		free(p->path);
		free(p);
		return rc;
	}
	set_describe(p);
	p->error[0] = '\0';
	*out = p;
	return SERIAL_OK;
}

const char *serial_open_error(void)
{
	return open_error;
}

ssize_t serial_read(serial_port *p, void *buf, size_t n, int timeout_ms)
{
	if (!p)
		return SERIAL_ERR_ARG;
	if (!buf || n == 0 || timeout_ms < -1)
		return serial_fail(p, SERIAL_ERR_ARG, "read", "invalid argument (buffer %p, %zu bytes, timeout %d ms)",
				   buf, n, timeout_ms);
	struct serial_deadline dl = deadline_in(timeout_ms);
	return p->ops->read(p, buf, n, &dl);
}

int serial_write_all(serial_port *p, const void *buf, size_t n, int timeout_ms)
{
	if (!p)
		return SERIAL_ERR_ARG;
	if ((!buf && n > 0) || timeout_ms < -1)
		return serial_fail(p, SERIAL_ERR_ARG, "write", "invalid argument (buffer %p, %zu bytes, timeout %d ms)",
				   buf, n, timeout_ms);
	struct serial_deadline dl = deadline_in(timeout_ms);
	const unsigned char *at = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t w = p->ops->write(p, at + done, n - done, &dl);
		if (w == SERIAL_ERR_TIMEOUT)
			return serial_fail(p, SERIAL_ERR_TIMEOUT, "write",
					   "timed out after %d ms with %zu of %zu bytes written",
					   timeout_ms, done, n);
		if (w < 0)
			return (int)w;
		done += (size_t)w;
	}
	return SERIAL_OK;
}

int serial_drain(serial_port *p)
{
	return p ? p->ops->drain(p) : SERIAL_ERR_ARG;
}

int serial_flush(serial_port *p, enum serial_queue which)
{
	if (!p)
		return SERIAL_ERR_ARG;
	if (which != SERIAL_QUEUE_INPUT && which != SERIAL_QUEUE_OUTPUT && which != SERIAL_QUEUE_BOTH)
		return serial_fail(p, SERIAL_ERR_ARG, "flush", "invalid queue selector %d", (int)which);
	return p->ops->flush(p, which);
}

void serial_close(serial_port *p)
{
	if (!p)
		return;
	p->ops->close(p);
	free(p->path);
	free(p);
}

const char *serial_describe(const serial_port *p)
{
	return p ? p->describe : "(no port)";
}

const char *serial_path(const serial_port *p)
{
	return p ? p->path : "(no port)";
}

const char *serial_backend_name(const serial_port *p)
{
	return p ? p->ops->name : "(no port)";
}

const char *serial_last_error(const serial_port *p)
{
	if (!p)
		return "(no port)";
	return p->error[0] ? p->error : "no error";
}

int serial_fd(const serial_port *p)
{
	return p ? p->ops->fd(p) : -1;
}

const char *serial_strerror(int err)
{
	switch (err) {
	case SERIAL_OK: return "ok";
	case SERIAL_ERR_ARG: return "invalid argument";
	case SERIAL_ERR_OPEN: return "open failed";
	case SERIAL_ERR_TIMEOUT: return "timeout";
	case SERIAL_ERR_GONE: return "device gone";
	case SERIAL_ERR_IO: return "I/O error";
	}
	return "unknown error";
}

int serial_list(struct serial_port_info **out, size_t *count)
{
	if (!out || !count) {
		snprintf(open_error, sizeof open_error, "serial ports: list: no result pointer");
		return SERIAL_ERR_ARG;
	}
	*out = NULL;
	*count = 0;
	return serial_lsp_list(out, count, open_error, sizeof open_error);
}

int serial_transport_parse(const char *t, int default_baud, char *path, size_t pathlen,
			   int *baud, char *err, size_t errlen)
{
	const char *dev = strncmp(t, "serial:", 7) == 0 ? t + 7 : NULL;
	const char *at = dev ? strrchr(dev, '@') : NULL;
	size_t n = dev ? (at ? (size_t)(at - dev) : strlen(dev)) : 0;
	long rate = default_baud;
	if (at) {
		char *end;
		errno = 0;
		rate = at[1] >= '0' && at[1] <= '9' ? strtol(at + 1, &end, 10) : 0;
		if (rate && (errno || *end))
			rate = 0;
	}
	if (!dev || n == 0 || rate < 50 || rate > 4000000 || (path && n >= pathlen)) {
		if (err && errlen)
			snprintf(err, errlen, "'%s': expected serial:DEVICE@BAUD", t);
		return -1;
	}
	if (path)
		snprintf(path, pathlen, "%.*s", (int)n, dev);
	if (baud)
		*baud = (int)rate;
	return 0;
}
