/*
 * serial_sp.c - serial backend on libserialport, for real UARTs and USB
 * serial adapters.
 *
 * libserialport does the opening, the configuration and the byte I/O. The
 * waiting for input is ours: in libserialport 0.1.1 sp_blocking_read_next()
 * on a hung-up tty (unplugged adapter, closed pty master) sees select()
 * report readable and read() return 0, loops on that at full CPU until the
 * timeout and then returns 0, exactly what it returns for silence; with
 * timeout 0 ("wait forever" there) it never returns. So a read polls the
 * descriptor itself, which reports the hang-up, and then takes the bytes with
 * sp_nonblocking_read().
 *
 * Errors are classified with poll() as well as sp_last_error_code(): the
 * latter is errno, and with LIBSERIALPORT_DEBUG set libserialport writes its
 * trace to stderr between the failing call and our look at errno; a closed
 * or full stderr then replaces EIO with EBADF or ENOSPC.
 */
#include "serial_backend.h"

#include <errno.h>
#include <libserialport.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lsp_state {
	struct sp_port *port;
	bool opened;
	int fd;
};

static struct sp_port *lsp_port_of(const struct serial_port *p)
{
	const struct lsp_state *s = p->state;
	return s ? s->port : NULL;
}

static int lsp_fd(const struct serial_port *p)
{
	const struct lsp_state *s = p->state;
	return s ? s->fd : -1;
}

/* True when the descriptor reports a hang-up or an error right now. */
static bool hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	int r;
	do
		r = poll(&pfd, 1, 0);
	while (r < 0 && errno == EINTR);
	return r > 0 && (pfd.revents & (POLLHUP | POLLERR));
}

/* Text for a libserialport failure. Call right after the failing call:
 * SP_ERR_FAIL's message and code are errno. */
static void lsp_reason(enum sp_return ret, char *buf, size_t size, int *os_errno)
{
	*os_errno = 0;
	switch (ret) {
	case SP_ERR_FAIL: {
		*os_errno = sp_last_error_code();
		char *msg = sp_last_error_message();
		snprintf(buf, size, "%s", msg ? msg : "failed");
		sp_free_error_message(msg);
		return;
	}
	case SP_ERR_ARG: snprintf(buf, size, "invalid argument"); return;
	case SP_ERR_MEM: snprintf(buf, size, "out of memory"); return;
	case SP_ERR_SUPP: snprintf(buf, size, "not supported"); return;
	case SP_OK: break;
	}
	snprintf(buf, size, "error %d", (int)ret);
}

/* Maps a failed I/O call to GONE or IO with a message naming OP. */
static int io_failure(struct serial_port *p, const char *op, enum sp_return ret)
{
	char reason[256];
	int os_errno;
	lsp_reason(ret, reason, sizeof reason, &os_errno);
	if ((ret == SP_ERR_FAIL && serial_errno_gone(os_errno)) || hung_up(lsp_fd(p)))
		return serial_fail(p, SERIAL_ERR_GONE, op, "device gone (%s)", reason);
	return serial_fail(p, SERIAL_ERR_IO, op, "%s", reason);
}

/* libserialport 0.1.1 finds a port through /sys/class/tty/NAME; say why a
 * path is unknown to it, since "Device not found" alone misleads when the
 * device node is right there. */
static const char *not_found_hint(const char *path)
{
	struct stat st;
	if (serial_path_is_pty(path))
		return "libserialport cannot open a pty; use the termios backend";
	if (stat(path, &st) != 0)
		return strerror(errno);
	return "no /sys/class/tty entry for it";
}

static int configure(struct serial_port *p, struct sp_port *port)
{
	static const enum sp_parity parity[] = {
		[SERIAL_PARITY_NONE] = SP_PARITY_NONE, [SERIAL_PARITY_ODD] = SP_PARITY_ODD,
		[SERIAL_PARITY_EVEN] = SP_PARITY_EVEN,
	};
	static const enum sp_flowcontrol flow[] = {
		[SERIAL_FLOW_NONE] = SP_FLOWCONTROL_NONE, [SERIAL_FLOW_RTSCTS] = SP_FLOWCONTROL_RTSCTS,
		[SERIAL_FLOW_XONXOFF] = SP_FLOWCONTROL_XONXOFF,
	};
	struct sp_port_config *cfg = NULL;
	enum sp_return r = sp_new_config(&cfg);
	const char *step = "new config";

	/* Every field is set: a fresh sp_port_config means "leave as is",
	 * and sp_open leaves IXON on, which would eat 0x11/0x13 bytes. */
	if (r == SP_OK && (r = sp_set_config_baudrate(cfg, p->cfg.baud)) != SP_OK)
		step = "baud rate";
	if (r == SP_OK && (r = sp_set_config_bits(cfg, p->cfg.data_bits)) != SP_OK)
		step = "data bits";
	if (r == SP_OK && (r = sp_set_config_parity(cfg, parity[p->cfg.parity])) != SP_OK)
		step = "parity";
	if (r == SP_OK && (r = sp_set_config_stopbits(cfg, p->cfg.stop_bits)) != SP_OK)
		step = "stop bits";
	if (r == SP_OK && (r = sp_set_config_flowcontrol(cfg, flow[p->cfg.flow])) != SP_OK)
		step = "flow control";
	if (r == SP_OK && (r = sp_set_config(port, cfg)) != SP_OK)
		step = "set config";

	char reason[256];
	int os_errno;
	if (r != SP_OK)
		lsp_reason(r, reason, sizeof reason, &os_errno);
	sp_free_config(cfg);
	if (r == SP_OK)
		return SERIAL_OK;
	return serial_fail(p, r == SP_ERR_FAIL ? SERIAL_ERR_OPEN : SERIAL_ERR_ARG,
			   "configure via libserialport", "%s: %s (asked %d baud, %d data bits, %d stop bits)",
			   step, reason, p->cfg.baud, p->cfg.data_bits, p->cfg.stop_bits);
}

static int lsp_backend_open(struct serial_port *p)
{
	struct lsp_state *s = calloc(1, sizeof *s);
	if (!s)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport", "out of memory");
	s->fd = -1;
	p->state = s;

	enum sp_return r = sp_get_port_by_name(p->path, &s->port);
	if (r == SP_ERR_ARG)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport", "Device not found (%s)",
				   not_found_hint(p->path));
	char reason[256];
	int os_errno;
	if (r != SP_OK) {
		lsp_reason(r, reason, sizeof reason, &os_errno);
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport", "%s", reason);
	}

	r = sp_open(s->port, SP_MODE_READ_WRITE);
	if (r != SP_OK) {
		lsp_reason(r, reason, sizeof reason, &os_errno);
		bool pty = os_errno == ENOTTY && serial_path_is_pty(p->path);
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport", "%s%s", reason,
				   pty ? " (libserialport cannot open a pty: TIOCMGET fails on it;"
					 " use the termios backend)" : "");
	}
	s->opened = true;
	if (sp_get_port_handle(s->port, &s->fd) != SP_OK || s->fd < 0)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport", "no file descriptor");
	/* libserialport keeps its descriptor, so it cannot be moved as the
	 * termios backend does: refuse rather than let stderr output
	 * (LIBSERIALPORT_DEBUG's trace among it) go out to the device. */
	if (s->fd <= STDERR_FILENO)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via libserialport",
				   "the port got descriptor %d, a standard stream the program left closed;"
				   " output meant for it would go to the device", s->fd);
	return configure(p, s->port);
}

static ssize_t lsp_backend_read(struct serial_port *p, void *buf, size_t n,
			       const struct serial_deadline *dl)
{
	int fd = lsp_fd(p);
	for (;;) {
		short revents = 0;
		int rc = serial_wait(p, fd, POLLIN, dl, "read", &revents);
		if (rc != SERIAL_OK)
			return rc;

		errno = 0;
		int got = sp_nonblocking_read(lsp_port_of(p), buf, n > INT_MAX ? INT_MAX : n);
		if (got > 0)
			return got;
		if (got < 0)
			return io_failure(p, "read", (enum sp_return)got);
		/* 0 is both EAGAIN and end of file to sp_nonblocking_read. After
		 * poll() said readable, only EAGAIN without a hang-up means
		 * "try again"; end of file is a hung-up tty. */
		if (errno == EAGAIN && !(revents & (POLLHUP | POLLERR)))
			continue;
		return serial_fail(p, SERIAL_ERR_GONE, "read", "device gone (end of file%s)",
				   (revents & POLLHUP) ? ", hang-up" : "");
	}
}

static ssize_t lsp_backend_write(struct serial_port *p, const void *buf, size_t n,
				const struct serial_deadline *dl)
{
	struct sp_port *port = lsp_port_of(p);
	int left = serial_deadline_left_ms(dl);
	/* libserialport returns byte counts as int. */
	if (n > INT_MAX)
		n = INT_MAX;
	int put;
	/* libserialport takes timeout 0 as "wait forever". */
	if (left < 0)
		put = sp_blocking_write(port, buf, n, 0);
	else if (left == 0)
		put = sp_nonblocking_write(port, buf, n);
	else
		put = sp_blocking_write(port, buf, n, (unsigned int)left);
	if (put > 0)
		return put;
	if (put < 0)
		return io_failure(p, "write", (enum sp_return)put);
	if (hung_up(lsp_fd(p)))
		return serial_fail(p, SERIAL_ERR_GONE, "write", "device gone (hang-up)");
	return SERIAL_ERR_TIMEOUT;
}

static int lsp_backend_drain(struct serial_port *p)
{
	enum sp_return r = sp_drain(lsp_port_of(p));
	return r == SP_OK ? SERIAL_OK : io_failure(p, "drain", r);
}

static int lsp_backend_flush(struct serial_port *p, enum serial_queue which)
{
	enum sp_buffer buffers = which == SERIAL_QUEUE_INPUT ? SP_BUF_INPUT
			       : which == SERIAL_QUEUE_OUTPUT ? SP_BUF_OUTPUT : SP_BUF_BOTH;
	enum sp_return r = sp_flush(lsp_port_of(p), buffers);
	return r == SP_OK ? SERIAL_OK : io_failure(p, "flush", r);
}

static void lsp_backend_close(struct serial_port *p)
{
	struct lsp_state *s = p->state;
	if (!s)
		return;
	if (s->port) {
		if (s->opened)
			sp_close(s->port);
		sp_free_port(s->port);
	}
	free(s);
	p->state = NULL;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void fill_info(struct serial_port_info *info, const struct sp_port *port)
{
	copy_str(info->path, sizeof info->path, sp_get_port_name(port));
	copy_str(info->description, sizeof info->description, sp_get_port_description(port));
	info->usb_vid = info->usb_pid = info->usb_bus = info->usb_address = -1;

	enum sp_transport transport = sp_get_port_transport(port);
	copy_str(info->transport, sizeof info->transport,
		 transport == SP_TRANSPORT_USB ? "usb"
		 : transport == SP_TRANSPORT_BLUETOOTH ? "bluetooth" : "native");
	if (transport != SP_TRANSPORT_USB)
		return;

	if (sp_get_port_usb_vid_pid(port, &info->usb_vid, &info->usb_pid) != SP_OK)
		info->usb_vid = info->usb_pid = -1;
	if (sp_get_port_usb_bus_address(port, &info->usb_bus, &info->usb_address) != SP_OK)
		info->usb_bus = info->usb_address = -1;
	copy_str(info->usb_serial, sizeof info->usb_serial, sp_get_port_usb_serial(port));
	copy_str(info->usb_manufacturer, sizeof info->usb_manufacturer, sp_get_port_usb_manufacturer(port));
	copy_str(info->usb_product, sizeof info->usb_product, sp_get_port_usb_product(port));
}

/* termios has no notion of "all ports"; listing is libserialport's. */
int serial_lsp_list(struct serial_port_info **out, size_t *count, char *err, size_t errlen)
{
	struct sp_port **ports = NULL;
	enum sp_return r = sp_list_ports(&ports);
	if (r != SP_OK) {
		char reason[256];
		int os_errno;
		lsp_reason(r, reason, sizeof reason, &os_errno);
		snprintf(err, errlen, "serial ports: list via libserialport: %s", reason);
		return SERIAL_ERR_IO;
	}

	size_t n = 0;
	while (ports[n])
		n++;
	struct serial_port_info *infos = n ? calloc(n, sizeof *infos) : NULL;
	if (n && !infos) {
		sp_free_port_list(ports);
		snprintf(err, errlen, "serial ports: list: out of memory");
		return SERIAL_ERR_IO;
	}
	for (size_t i = 0; i < n; i++)
		fill_info(&infos[i], ports[i]);
	sp_free_port_list(ports);
	*out = infos;
	*count = n;
	return SERIAL_OK;
}

const struct serial_backend_ops serial_backend_libserialport = {
	.name = "libserialport",
	.open = lsp_backend_open,
	.read = lsp_backend_read,
	.write = lsp_backend_write,
	.drain = lsp_backend_drain,
	.flush = lsp_backend_flush,
	.close = lsp_backend_close,
	.fd = lsp_fd,
};
