/*
 * usb.h - USB devices on the rack's hubs, through libusb.
 *
 * A device is named by its port path "B-P.P.P" (bus, then the port on each
 * hub from the root down: "1-1.2" is port 2 of the hub on port 1 of bus 1),
 * because that is what stays put when a unit is swapped: the rack file
 * says which slot hangs off which port, and the serial number says which
 * unit is actually there.
 *
 * Strings (serial, manufacturer, product) are read by control transfer
 * first (libusb_get_string_descriptor_ascii) and from sysfs
 * (/sys/bus/usb/devices/PORTPATH/serial, ...) when the device cannot be
 * opened (no permission) or the transfer fails (an emulated device).
 *
 * Hub port power follows uhubctl: hub-class SET_FEATURE / CLEAR_FEATURE
 * PORT_POWER on the hub's port, GET_STATUS for the port's state. Only hubs
 * whose descriptor says they switch power (wHubCharacteristics bits 0-1 =
 * 00 ganged or 01 per port) are asked.
 *
 * Every function returns USB_OK (0) or a negative enum usb_err, with a
 * message naming the port path and the failed operation in ERR.
 */
#ifndef TRACKRIG_USB_H
#define TRACKRIG_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum usb_err {
	USB_OK = 0,
	USB_ERR_ARG = -1,        /* bad port path or argument */
	USB_ERR_NOT_FOUND = -2,  /* nothing on that port path */
	USB_ERR_ACCESS = -3,     /* no permission on /dev/bus/usb/BBB/DDD */
	USB_ERR_GONE = -4,       /* device vanished mid-transfer (LIBUSB_ERROR_NO_DEVICE) */
	USB_ERR_REFUSED = -5,    /* the hub stalled the request (LIBUSB_ERROR_PIPE) */
	USB_ERR_NOT_HUB = -6,    /* power asked of a device that is no hub, or one without power switching */
	USB_ERR_DESCRIPTOR = -7, /* a descriptor libusb could not parse */
	USB_ERR_TIMEOUT = -8,    /* deadline passed */
	USB_ERR_IO = -9,         /* libusb could not start, or any other failure */
};

#define USB_PATH_MAX 32   /* "B-P.P.P.P.P.P.P" */
#define USB_STR_MAX 128

/* One device as listed. Strings are "" when unknown. */
struct usb_device_info {
	char port_path[USB_PATH_MAX]; /* "1-1.2"; a root hub is "1-0" */
	int bus, address;
	int vid, pid;
	char serial[USB_STR_MAX];
	char manufacturer[USB_STR_MAX];
	char product[USB_STR_MAX];
	char strings_from[8];         /* "usb" (descriptor read), "sysfs" or "" */
	int speed_mbps10;             /* speed in 0.1 Mbit/s units: 15, 120, 4800, 50000; 0 unknown */
	int device_class;             /* bDeviceClass; 9 is a hub */
	int n_interfaces;
	int interface_class[8];       /* bInterfaceClass of the first 8 interfaces: 2 CDC, 10 CDC data */
	char problem[160];            /* "" or what is wrong with this device (bad descriptor) */
};

/* Lists every USB device into a malloc'ed array (*OUT, *COUNT), sorted by
 * port path. A device whose descriptors are broken is still listed, with
 * the reason in .problem. Returns USB_OK or USB_ERR_IO (libusb unusable). */
int usb_list(struct usb_device_info **out, size_t *count, char *err, size_t errlen);

/* The device on PORT_PATH into *OUT: USB_OK, USB_ERR_NOT_FOUND or an error. */
int usb_find(const char *port_path, struct usb_device_info *out, char *err, size_t errlen);

/* Checks PORT_PATH ("1-1.2") and splits it into the hub's path ("1-1"; "1-0"
 * for the root hub) and the port on that hub (2). Returns USB_OK or USB_ERR_ARG. */
int usb_port_split(const char *port_path, char *hub_path, size_t hub_len, int *port);

/* State of one hub port (USB 2.0 wPortStatus / wPortChange). */
struct usb_port_status {
	uint16_t status, change;
	bool connected;  /* bit 0 */
	bool enabled;    /* bit 1 */
	bool powered;    /* bit 8 PORT_POWER */
};

/* Switches power of PORT on the hub at HUB_PATH (SET_FEATURE or
 * CLEAR_FEATURE PORT_POWER) and reads the port's status back into *ST
 * (may be NULL). */
int usb_hub_port_power(const char *hub_path, int port, bool on, struct usb_port_status *st,
		       char *err, size_t errlen);

/* Reads the status of PORT on the hub at HUB_PATH (GET_STATUS). */
int usb_hub_port_status(const char *hub_path, int port, struct usb_port_status *st, char *err, size_t errlen);

/* What came back after a power cycle. */
struct usb_wait_result {
	bool appeared;           /* a device is on the port path again */
	int elapsed_ms;          /* from the call to its appearance (or to the deadline) */
	bool by_hotplug;         /* a hotplug event woke the wait (else polling found it) */
	bool other_serial;       /* the port holds a unit with another serial */
	bool other_path;         /* the expected serial turned up on another port path */
	char serial[USB_STR_MAX];      /* serial now on the port path */
	char found_path[USB_PATH_MAX]; /* where the expected serial was found */
};

/* Waits at most TIMEOUT_MS for a device on PORT_PATH. EXPECT_SERIAL (may
 * be NULL or ""): the unit that should come back; another serial on the
 * port, or this one on another path, is flagged in *R. Uses libusb hotplug
 * events to wake early where libusb has them, and polls every 50 ms in any
 * case. Returns USB_OK (appeared) or USB_ERR_TIMEOUT (R still filled). */
int usb_wait_port(const char *port_path, const char *expect_serial, int timeout_ms, struct usb_wait_result *r,
		  char *err, size_t errlen);

/* Waits at most TIMEOUT_MS until nothing is on PORT_PATH; *ELAPSED_MS may be NULL.
 * Returns USB_OK or USB_ERR_TIMEOUT. */
int usb_wait_gone(const char *port_path, int timeout_ms, int *elapsed_ms, char *err, size_t errlen);

/* "12 Mbit/s" style text of speed_mbps10 into BUF; returns BUF. */
const char *usb_speed_text(int speed_mbps10, char *buf, size_t len);

/* Short text for an error code ("hub refused", "device gone", ...). */
const char *usb_strerror(int err);

#endif
