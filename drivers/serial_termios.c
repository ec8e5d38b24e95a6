/*
 * serial_termios.c - serial backend on plain POSIX termios.
 *
 * For pseudo-terminals (simulated trackers) and anything libserialport
 * refuses. The descriptor stays non-blocking; every wait is a poll() against
 * the caller's deadline, so a read can tell silence (timeout) from a device
 * that went away (hang-up, EIO, end of file).
 */
#include "serial_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct termios_port {
	int fd;
};

static int port_fd(const struct serial_port *p)
{
	const struct termios_port *t = p->state;
	return t ? t->fd : -1;
}

static const struct { int baud; speed_t code; } bauds[] = {
	{ 50, B50 }, { 75, B75 }, { 110, B110 }, { 134, B134 }, { 150, B150 },
	{ 200, B200 }, { 300, B300 }, { 600, B600 }, { 1200, B1200 },
	{ 1800, B1800 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
	{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 },
	{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 },
	{ 500000, B500000 }, { 576000, B576000 }, { 921600, B921600 },
	{ 1000000, B1000000 }, { 1152000, B1152000 }, { 1500000, B1500000 },
	{ 2000000, B2000000 }, { 2500000, B2500000 }, { 3000000, B3000000 },
	{ 3500000, B3500000 }, { 4000000, B4000000 },
};

static bool baud_code(int baud, speed_t *code)
{
	for (size_t i = 0; i < sizeof bauds / sizeof bauds[0]; i++) {
		if (bauds[i].baud == baud) {
			*code = bauds[i].code;
			return true;
		}
	}
	return false;
}

static tcflag_t size_flag(int data_bits)
{
	switch (data_bits) {
	case 5: return CS5;
	case 6: return CS6;
	case 7: return CS7;
	default: return CS8;
	}
}

/* Raw mode plus the frame from CFG. CLOCAL: a tracker console has no
 * carrier line, and without it open/read would wait for DCD. */
static void build_termios(struct termios *tio, const struct serial_config *cfg, speed_t speed)
{
	cfmakeraw(tio);
	tio->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	tio->c_cflag |= CLOCAL | CREAD | size_flag(cfg->data_bits);
	tio->c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK | IGNPAR);
	if (cfg->parity != SERIAL_PARITY_NONE) {
		tio->c_cflag |= PARENB;
		if (cfg->parity == SERIAL_PARITY_ODD)
			tio->c_cflag |= PARODD;
		/* Drop bytes with parity errors, as libserialport does, so
		 * that both backends hand the caller the same stream. */
		tio->c_iflag |= INPCK | IGNPAR;
	}
	if (cfg->stop_bits == 2)
		tio->c_cflag |= CSTOPB;
	if (cfg->flow == SERIAL_FLOW_RTSCTS)
		tio->c_cflag |= CRTSCTS;
	else if (cfg->flow == SERIAL_FLOW_XONXOFF)
		tio->c_iflag |= IXON | IXOFF;
	/* Reads are gated by poll() and O_NONBLOCK, not by VMIN/VTIME. */
	tio->c_cc[VMIN] = 1;
	tio->c_cc[VTIME] = 0;
	cfsetispeed(tio, speed);
	cfsetospeed(tio, speed);
}

static int termios_open(struct serial_port *p)
{
	speed_t speed;
	if (!baud_code(p->cfg.baud, &speed))
		return serial_fail(p, SERIAL_ERR_ARG, "open via termios",
				   "baud rate %d not supported by the termios backend", p->cfg.baud);

	struct termios_port *t = malloc(sizeof *t);
	if (!t)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "out of memory");
	t->fd = -1;
	p->state = t;

	t->fd = open(p->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "%s", strerror(errno));
	/* In a program started with stderr closed the port would be fd 2,
	 * and every diagnostic written to stderr would go to the device. */
	if (t->fd <= STDERR_FILENO) {
		int moved = fcntl(t->fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		int err = errno;
		close(t->fd);
		t->fd = moved;
		if (moved < 0)
			return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "F_DUPFD: %s", strerror(err));
	}
	if (!isatty(t->fd))
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "not a terminal (%s)",
				   strerror(errno));

	struct termios tio;
	if (tcgetattr(t->fd, &tio) != 0)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "tcgetattr: %s", strerror(errno));
	build_termios(&tio, &p->cfg, speed);
	if (tcsetattr(t->fd, TCSANOW, &tio) != 0)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "tcsetattr: %s", strerror(errno));

	/* tcsetattr() succeeds when any one change took; read back the frame
	 * so that a driver silently refusing 7E2 fails here, not in the field.
	 * Not on a pty: it has no wire, and Linux forces CS8 and clears PARENB
	 * on it whatever was asked. */
	if (serial_fd_is_pty(t->fd))
		return SERIAL_OK;
	struct termios got;
	const tcflag_t frame = CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS;
	if (tcgetattr(t->fd, &got) != 0)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios", "tcgetattr: %s", strerror(errno));
	if ((got.c_cflag & frame) != (tio.c_cflag & frame) || cfgetospeed(&got) != speed)
		return serial_fail(p, SERIAL_ERR_OPEN, "open via termios",
				   "the driver did not accept %d %d data bits, parity %d, %d stop bits",
				   p->cfg.baud, p->cfg.data_bits, (int)p->cfg.parity, p->cfg.stop_bits);
	return SERIAL_OK;
}

static ssize_t termios_read(struct serial_port *p, void *buf, size_t n, const struct serial_deadline *dl)
{
	int fd = port_fd(p);
	for (;;) {
		short revents = 0;
		int rc = serial_wait(p, fd, POLLIN, dl, "read", &revents);
		if (rc != SERIAL_OK)
			return rc;

		ssize_t got = read(fd, buf, n);
		if (got > 0)
			return got;
		/* poll() said readable and there is nothing: the tty was hung
		 * up (a pty slave reads 0 once its master closed). */
		if (got == 0)
			return serial_fail(p, SERIAL_ERR_GONE, "read", "device gone (end of file%s)",
					   (revents & POLLHUP) ? ", hang-up" : "");
		if (errno == EINTR || errno == EAGAIN)
			continue;
		if (serial_errno_gone(errno))
			return serial_fail(p, SERIAL_ERR_GONE, "read", "device gone (%s)", strerror(errno));
		return serial_fail(p, SERIAL_ERR_IO, "read", "%s", strerror(errno));
	}
}

static ssize_t termios_write(struct serial_port *p, const void *buf, size_t n,
			     const struct serial_deadline *dl)
{
	int fd = port_fd(p);
	for (;;) {
		ssize_t put = write(fd, buf, n);
		if (put > 0)
			return put;
		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && errno != EAGAIN) {
			if (serial_errno_gone(errno))
				return serial_fail(p, SERIAL_ERR_GONE, "write", "device gone (%s)", strerror(errno));
			return serial_fail(p, SERIAL_ERR_IO, "write", "%s", strerror(errno));
		}
		short revents = 0;
		int rc = serial_wait(p, fd, POLLOUT, dl, "write", &revents);
		if (rc != SERIAL_OK)
			return rc;
	}
}

static int termios_drain(struct serial_port *p)
{
	int fd = port_fd(p);
	while (tcdrain(fd) != 0) {
		if (errno == EINTR)
			continue;
		if (serial_errno_gone(errno))
			return serial_fail(p, SERIAL_ERR_GONE, "drain", "device gone (%s)", strerror(errno));
		return serial_fail(p, SERIAL_ERR_IO, "drain", "%s", strerror(errno));
	}
	return SERIAL_OK;
}

static int termios_flush(struct serial_port *p, enum serial_queue which)
{
	int queue = which == SERIAL_QUEUE_INPUT ? TCIFLUSH
		  : which == SERIAL_QUEUE_OUTPUT ? TCOFLUSH : TCIOFLUSH;
	if (tcflush(port_fd(p), queue) == 0)
		return SERIAL_OK;
	if (serial_errno_gone(errno))
		return serial_fail(p, SERIAL_ERR_GONE, "flush", "device gone (%s)", strerror(errno));
	return serial_fail(p, SERIAL_ERR_IO, "flush", "%s", strerror(errno));
}

static void termios_close(struct serial_port *p)
{
	struct termios_port *t = p->state;
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t);
	p->state = NULL;
}

static int termios_fd(const struct serial_port *p)
{
	return port_fd(p);
}

const struct serial_backend_ops serial_backend_termios = {
	.name = "termios",
	.open = termios_open,
	.read = termios_read,
	.write = termios_write,
	.drain = termios_drain,
	.flush = termios_flush,
	.close = termios_close,
	.fd = termios_fd,
};
