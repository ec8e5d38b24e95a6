/* tracker_console.c - the serial console as a tracker link. */
#include "tracker.h"

#include <stdio.h>
#include <stdlib.h>

static int map_err(int serr)
{
	switch (serr) {
	case SERIAL_ERR_TIMEOUT: return TRACKER_ERR_TIMEOUT;
	case SERIAL_ERR_GONE: return TRACKER_ERR_GONE;
	case SERIAL_ERR_ARG: return TRACKER_ERR_ARG;
	default: return TRACKER_ERR_IO;
	}
}

static int console_send(void *ctx, const void *buf, size_t n, int timeout_ms)
{
	int rc = serial_write_all(ctx, buf, n, timeout_ms);
	return rc == SERIAL_OK ? TRACKER_OK : map_err(rc);
}

static ssize_t console_recv(void *ctx, void *buf, size_t n, int timeout_ms)
{
	ssize_t rc = serial_read(ctx, buf, n, timeout_ms);
	return rc > 0 ? rc : map_err((int)rc);
}

static const char *console_where(void *ctx) { return serial_path(ctx); }
static const char *console_describe(void *ctx) { return serial_describe(ctx); }
static const char *console_detail(void *ctx) { return serial_last_error(ctx); }
static void console_close(void *ctx) { serial_close(ctx); }
static int console_fd(void *ctx) { return serial_fd(ctx); }

static const struct tracker_link_ops console_link = {
	.name = "console",
	.send = console_send,
	.recv = console_recv,
	.where = console_where,
	.describe = console_describe,
	.detail = console_detail,
	.close = console_close,
	.fd = console_fd,
};

int tracker_open_console(const char *path, int baud, enum serial_backend backend,
			 const struct tracker_proto *proto, tracker **out,
			 char *err, size_t errlen)
{
	*out = NULL;
	struct serial_config cfg = { .baud = baud > 0 ? baud : 115200 };
	serial_port *port;
	if (serial_open(path, &cfg, backend, &port) != SERIAL_OK) {
		snprintf(err, errlen, "%s", serial_open_error());
		return TRACKER_ERR_IO;
	}
	/* Bytes queued before we came are from nobody's command. */
	serial_flush(port, SERIAL_QUEUE_INPUT);
	int rc = tracker_open(proto, &console_link, port, out);
	if (rc != TRACKER_OK) {
		serial_close(port);
		snprintf(err, errlen, "%s: %s", path, tracker_strerror(rc));
	}
	return rc;
}
