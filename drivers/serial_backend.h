/*
 * serial_backend.h - private to drivers/serial*.c: the backend table and
 * the helpers the backends share with serial.c.
 *
 * serial.c validates arguments, keeps the port record and the error text,
 * and calls one const table of backend functions; a backend only talks to
 * the OS (or to libserialport) and classifies what went wrong. Adding a
 * backend is one new file and one table, never an if scattered through
 * serial.c.
 */
#ifndef TRACKRIG_SERIAL_BACKEND_H
#define TRACKRIG_SERIAL_BACKEND_H

#include "serial.h"

#include <stdbool.h>
#include <time.h>

/* When a read or write must give up. Built once per public call, so that a
 * call looping over EINTR, EAGAIN or short writes never waits longer than
 * the caller asked. */
struct serial_deadline {
	bool forever;        /* timeout_ms was -1 */
	int timeout_ms;      /* as asked, for messages */
	struct timespec at;  /* CLOCK_MONOTONIC */
};

struct serial_port {
	const struct serial_backend_ops *ops;
	void *state;                /* the backend's own, set by ops->open */
	char *path;
	struct serial_config cfg;   /* defaults filled in, validated */
	char describe[320];
	char error[640];
};

struct serial_backend_ops {
	/* "termios" or "libserialport", as serial_backend_name() reports. */
	const char *name;
	/* Opens and configures p->path per p->cfg and sets p->state. On
	 * failure leaves p->state NULL, the reason in p->error and returns
	 * SERIAL_ERR_OPEN (or SERIAL_ERR_ARG for a setting it cannot do). */
	int (*open)(struct serial_port *p);
	/* Reads 1..N bytes, waiting until DL. Returns the count or
	 * SERIAL_ERR_TIMEOUT, SERIAL_ERR_GONE, SERIAL_ERR_IO. */
	ssize_t (*read)(struct serial_port *p, void *buf, size_t n, const struct serial_deadline *dl);
	/* Writes 1..N bytes, waiting until DL for room. Same returns. A short
	 * count is normal; serial.c loops. */
	ssize_t (*write)(struct serial_port *p, const void *buf, size_t n, const struct serial_deadline *dl);
	int (*drain)(struct serial_port *p);
	int (*flush)(struct serial_port *p, enum serial_queue which);
	/* Releases everything; p->state may be NULL after a failed open. */
	void (*close)(struct serial_port *p);
	int (*fd)(const struct serial_port *p);
};

extern const struct serial_backend_ops serial_backend_termios;
extern const struct serial_backend_ops serial_backend_libserialport;

/* Lists ports through libserialport (the termios backend cannot). On
 * failure writes the reason into ERR and returns SERIAL_ERR_IO. */
int serial_lsp_list(struct serial_port_info **out, size_t *count, char *err, size_t errlen);

/* Milliseconds left until DL for poll(): -1 forever, 0 once passed. */
int serial_deadline_left_ms(const struct serial_deadline *dl);

/* Sets p->error to "PATH: OP: <printf text>" and returns CODE, so that a
 * backend fails in one line: return serial_fail(p, SERIAL_ERR_GONE, ...). */
int serial_fail(struct serial_port *p, int code, const char *op, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Waits with poll() until FD reports one of EVENTS or DL passes, retrying
 * EINTR against the same deadline. Returns SERIAL_OK with *REVENTS set
 * (POLLHUP and POLLERR may come along with EVENTS: the caller decides),
 * SERIAL_ERR_TIMEOUT, SERIAL_ERR_GONE (hang-up or error without EVENTS) or
 * SERIAL_ERR_IO, with the message in p->error naming OP. */
int serial_wait(struct serial_port *p, int fd, short events, const struct serial_deadline *dl,
		const char *op, short *revents);

/* Whether ERR, an errno from read, write or tcdrain, means the device is
 * no longer there (unplugged adapter, hung-up tty, closed pty master). */
bool serial_errno_gone(int err);

/* Whether PATH (after symlinks) is a pseudo-terminal slave: used to tell
 * the user why libserialport refused it. */
bool serial_path_is_pty(const char *path);
bool serial_fd_is_pty(int fd);

#endif
