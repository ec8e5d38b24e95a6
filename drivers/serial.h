/*
 * serial.h - one serial port interface, two backends.
 *
 * Real UARTs and USB serial adapters (/dev/ttyUSB*, ttyACM*, ttyS*) go through
 * libserialport. Pseudo-terminals (simulated trackers) and anything
 * libserialport refuses go through plain termios: libserialport 0.1.1 cannot
 * open a pty (no sysfs entry, TIOCMGET fails with ENOTTY).
 *
 * Every function returns SERIAL_OK (0) or a negative enum serial_err, and
 * leaves a message naming the port and the failed operation in
 * serial_last_error(). A device that vanished (hang-up, EIO, ENODEV: an
 * unplugged adapter or a dead simulator) is SERIAL_ERR_GONE, never confused
 * with SERIAL_ERR_TIMEOUT (the device is there but said nothing in time).
 */
#ifndef TRACKRIG_SERIAL_H
#define TRACKRIG_SERIAL_H

#include <stddef.h>
#include <sys/types.h>

enum serial_err {
	SERIAL_OK = 0,
	SERIAL_ERR_ARG = -1,     /* bad argument or configuration */
	SERIAL_ERR_OPEN = -2,    /* port could not be opened or configured */
	SERIAL_ERR_TIMEOUT = -3, /* deadline passed with nothing (or not all) done */
	SERIAL_ERR_GONE = -4,    /* device vanished: hang-up, EIO, ENODEV */
	SERIAL_ERR_IO = -5,      /* any other OS error */
};

enum serial_parity { SERIAL_PARITY_NONE, SERIAL_PARITY_ODD, SERIAL_PARITY_EVEN };
enum serial_flow { SERIAL_FLOW_NONE, SERIAL_FLOW_RTSCTS, SERIAL_FLOW_XONXOFF };

/* Which backend opens the port. AUTO picks libserialport for ports it can
 * open and falls back to termios for the rest (ptys among them). */
enum serial_backend { SERIAL_BACKEND_AUTO, SERIAL_BACKEND_LIBSERIALPORT, SERIAL_BACKEND_TERMIOS };

struct serial_config {
	int baud;                 /* e.g. 115200 */
	int data_bits;            /* 5..8; 0 means 8 */
	enum serial_parity parity;
	int stop_bits;            /* 1 or 2; 0 means 1 */
	enum serial_flow flow;
};

/* Flush selectors for serial_flush(). */
enum serial_queue { SERIAL_QUEUE_INPUT = 1, SERIAL_QUEUE_OUTPUT = 2, SERIAL_QUEUE_BOTH = 3 };

typedef struct serial_port serial_port;

/* Opens PATH with CFG (NULL: 115200 8N1, no flow control) through BACKEND.
 * On failure *OUT is NULL and the message is in serial_open_error(). */
int serial_open(const char *path, const struct serial_config *cfg,
		enum serial_backend backend, serial_port **out);

/* Message of the last serial_open() failure in this thread. */
const char *serial_open_error(void);

/* Reads up to N bytes: returns as soon as at least one byte is there, waiting
 * at most TIMEOUT_MS (0: do not wait, -1: wait forever). Returns the number of
 * bytes read (> 0), SERIAL_ERR_TIMEOUT, SERIAL_ERR_GONE or SERIAL_ERR_IO. */
ssize_t serial_read(serial_port *p, void *buf, size_t n, int timeout_ms);

/* Writes all N bytes within TIMEOUT_MS, or fails. */
int serial_write_all(serial_port *p, const void *buf, size_t n, int timeout_ms);

/* Waits until everything written has left the transmitter. */
int serial_drain(serial_port *p);

/* Discards queued bytes in the given direction(s). */
int serial_flush(serial_port *p, enum serial_queue which);

/* Closes the port and frees it; NULL is a no-op. */
void serial_close(serial_port *p);

/* "PATH (backend, 115200 8N1)": for logs and error messages. */
const char *serial_describe(const serial_port *p);

/* The path the port was opened with. */
const char *serial_path(const serial_port *p);

/* Name of the backend in use: "libserialport" or "termios". */
const char *serial_backend_name(const serial_port *p);

/* Message for the last failed call on P, naming port and operation. */
const char *serial_last_error(const serial_port *p);

/* File descriptor to poll() for readability (for event loops). */
int serial_fd(const serial_port *p);

/* Short text for an error code ("timeout", "device gone", ...). */
const char *serial_strerror(int err);

/* Reads the transport string of a serial-line instrument (bench supplies,
 * relay modules): "serial:DEVICE@BAUD", or "serial:DEVICE" for
 * DEFAULT_BAUD. DEVICE into PATH (PATHLEN bytes), the rate into *BAUD (both
 * may be NULL: a shape check). Returns 0, or -1 with
 * "'serial:': expected serial:DEVICE@BAUD" in ERR. */
int serial_transport_parse(const char *transport, int default_baud, char *path, size_t pathlen,
			   int *baud, char *err, size_t errlen);

/* One port as listed by libserialport. Strings are "" when unknown. */
struct serial_port_info {
	char path[256];
	char transport[16];     /* "usb", "native", "bluetooth" */
	char description[128];
	int usb_vid, usb_pid;   /* -1 when not USB */
	char usb_serial[64];
	char usb_manufacturer[128];
	char usb_product[128];
	int usb_bus, usb_address; /* -1 when not USB */
};

/* Lists ports through libserialport into a malloc'ed array (*OUT, *COUNT).
 * Returns SERIAL_OK or an error (message in serial_open_error()). */
int serial_list(struct serial_port_info **out, size_t *count);

#endif
