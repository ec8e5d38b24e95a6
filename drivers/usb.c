/*
 * usb.c - listing devices, finding one by port path, hub port power.
 *
 * Each call opens its own libusb context and closes it again: a rig command
 * lists once, and a wait after a power cycle must see a fresh enumeration
 * even where libusb keeps no hotplug-updated device list.
 */
#include "usb.h"

#include <libusb.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HUB_CLASS 9
#define PORT_POWER 8               /* hub class feature selector */
#define REQ_OUT_OTHER 0x23         /* class, host to device, recipient other (a port) */
#define REQ_IN_OTHER 0xa3
#define REQ_IN_DEVICE_CLASS 0xa0
#define HUB_DESC_USB2 0x29
#define HUB_DESC_USB3 0x2a
#define CTRL_TIMEOUT_MS 1000
#define POLL_MS 50

const char *usb_strerror(int err)
{
	switch (err) {
	case USB_OK: return "ok";
	case USB_ERR_ARG: return "invalid argument";
	case USB_ERR_NOT_FOUND: return "no device on that port";
	case USB_ERR_ACCESS: return "no permission";
	case USB_ERR_GONE: return "device gone";
	case USB_ERR_REFUSED: return "hub refused the request";
	case USB_ERR_NOT_HUB: return "not a power-switching hub";
	case USB_ERR_DESCRIPTOR: return "bad descriptor";
	case USB_ERR_TIMEOUT: return "timeout";
	default: return "I/O error";
	}
}

/* libusb's code to ours: the distinctions an operator acts on. */
static int from_libusb(int rc)
{
	switch (rc) {
	case LIBUSB_ERROR_NO_DEVICE: return USB_ERR_GONE;
	case LIBUSB_ERROR_PIPE: return USB_ERR_REFUSED;
	case LIBUSB_ERROR_ACCESS: return USB_ERR_ACCESS;
	case LIBUSB_ERROR_NOT_FOUND: return USB_ERR_NOT_FOUND;
	case LIBUSB_ERROR_TIMEOUT: return USB_ERR_TIMEOUT;
	case LIBUSB_ERROR_INVALID_PARAM: return USB_ERR_ARG;
	default: return USB_ERR_IO;
	}
}

static int fail(int code, char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(int code, char *err, size_t len, const char *fmt, ...)
{
	if (err && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return code;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int usb_port_split(const char *port_path, char *hub_path, size_t hub_len, int *port)
{
	const char *dash = port_path ? strchr(port_path, '-') : NULL;
	if (!dash || dash == port_path || strlen(port_path) >= USB_PATH_MAX)
		return USB_ERR_ARG;
	for (const char *p = port_path; p < dash; p++)
		if (!isdigit((unsigned char)*p))
			return USB_ERR_ARG;
	/* After the dash: numbers 1..255 separated by single dots. */
	const char *p = dash + 1, *last = p;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return USB_ERR_ARG;
		char *end;
		long n = strtol(p, &end, 10);
		if (n < 1 || n > 255)
			return USB_ERR_ARG;
		last = p;
		if (*end == '.' && end[1])
			end++;
		else if (*end)
			return USB_ERR_ARG;
		p = end;
	}
	if (last == dash + 1 && !*last)
		return USB_ERR_ARG;
	int n = atoi(last);
	if (hub_path) {
		size_t hl = last == dash + 1 ? (size_t)(dash - port_path) : (size_t)(last - 1 - port_path);
		if (hl + 3 > hub_len)
			return USB_ERR_ARG;
		memcpy(hub_path, port_path, hl);
		hub_path[hl] = 0;
		if (last == dash + 1)
			strcat(hub_path, "-0"); /* a port of the root hub */
	}
	if (port)
		*port = n;
	return USB_OK;
}

static void port_path_of(libusb_device *dev, char *buf, size_t len)
{
	uint8_t ports[8];
	int n = libusb_get_port_numbers(dev, ports, sizeof ports);
	int w = snprintf(buf, len, "%u-", libusb_get_bus_number(dev));
	if (n <= 0) {
		snprintf(buf + w, len - (size_t)w, "0");
		return;
	}
	for (int i = 0; i < n && (size_t)w < len; i++)
		w += snprintf(buf + w, len - (size_t)w, i ? ".%u" : "%u", ports[i]);
}

/* One sysfs attribute of the device at PORT_PATH, trailing newline cut. */
static bool sysfs_attr(const char *port_path, const char *name, char *out, size_t len)
{
	char path[128];
	snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/%s", port_path, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(out, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	out[strcspn(out, "\r\n")] = 0;
	return true;
}

/* Reads the three strings, by control transfer where the device can be
 * opened and answers, else from sysfs. */
static void read_strings(libusb_device *dev, const struct libusb_device_descriptor *dd, struct usb_device_info *d)
{
	const uint8_t idx[3] = { dd->iSerialNumber, dd->iManufacturer, dd->iProduct };
	char *dst[3] = { d->serial, d->manufacturer, d->product };
	static const char *const attr[3] = { "serial", "manufacturer", "product" };
	libusb_device_handle *h = NULL;
	bool any_usb = false, any_sysfs = false;
	if (idx[0] || idx[1] || idx[2])
		if (libusb_open(dev, &h) != 0)
			h = NULL;
	for (int i = 0; i < 3; i++) {
		unsigned char s[USB_STR_MAX];
		if (h && idx[i] && libusb_get_string_descriptor_ascii(h, idx[i], s, sizeof s) > 0) {
			snprintf(dst[i], USB_STR_MAX, "%s", (char *)s);
			any_usb = true;
		} else if (sysfs_attr(d->port_path, attr[i], dst[i], USB_STR_MAX)) {
			any_sysfs = true;
		}
	}
	if (h)
		libusb_close(h);
	snprintf(d->strings_from, sizeof d->strings_from, "%s", any_usb ? "usb" : any_sysfs ? "sysfs" : "");
}

static int speed_of(libusb_device *dev)
{
	switch (libusb_get_device_speed(dev)) {
	case LIBUSB_SPEED_LOW: return 15;
	case LIBUSB_SPEED_FULL: return 120;
	case LIBUSB_SPEED_HIGH: return 4800;
	case LIBUSB_SPEED_SUPER: return 50000;
	case LIBUSB_SPEED_SUPER_PLUS: return 100000;
	default: return 0;
	}
}

const char *usb_speed_text(int s, char *buf, size_t len)
{
	if (s <= 0)
		snprintf(buf, len, "unknown");
	else if (s % 10)
		snprintf(buf, len, "%d.%d Mbit/s", s / 10, s % 10);
	else
		snprintf(buf, len, "%d Mbit/s", s / 10);
	return buf;
}

/* Walks the raw descriptors sysfs keeps for the device (device descriptor,
 * then each configuration with everything in it): libusb quietly parses what
 * it can of a truncated configuration, and a unit whose descriptors lie is
 * worth naming before it confuses a driver. Returns false with the reason. */
static bool descriptors_sane(const char *port_path, char *why, size_t len)
{
	char path[128];
	snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/descriptors", port_path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return true; /* nothing to check against */
	uint8_t b[4096];
	size_t n = fread(b, 1, sizeof b, f);
	fclose(f);
	if (n < 18 || b[0] != 18 || b[1] != LIBUSB_DT_DEVICE) {
		snprintf(why, len, "bad descriptor: device descriptor is %zu bytes (bLength %u, type %u), expected 18",
			 n, n ? b[0] : 0, n > 1 ? b[1] : 0);
		return false;
	}
	size_t off = 18;
	for (int c = 1; off < n; c++) {
		if (n - off < 9 || b[off] != 9 || b[off + 1] != LIBUSB_DT_CONFIG) {
			snprintf(why, len, "bad descriptor: configuration %d header malformed at byte %zu", c, off);
			return false;
		}
		size_t total = (size_t)(b[off + 2] | b[off + 3] << 8);
		if (total < 9 || total > n - off) {
			snprintf(why, len, "bad descriptor: configuration %d claims %zu bytes, %zu present", c, total, n - off);
			return false;
		}
		for (size_t p = off + 9; p < off + total; p += b[p])
			if (b[p] < 2 || p + b[p] > off + total) {
				snprintf(why, len, "bad descriptor: configuration %d: descriptor at byte %zu has bLength %u",
					 c, p - off, b[p]);
				return false;
			}
		off += total;
	}
	return true;
}

static void describe(libusb_device *dev, struct usb_device_info *d)
{
	memset(d, 0, sizeof *d);
	port_path_of(dev, d->port_path, sizeof d->port_path);
	d->bus = libusb_get_bus_number(dev);
	d->address = libusb_get_device_address(dev);
	d->speed_mbps10 = speed_of(dev);
	d->vid = d->pid = -1;
	d->device_class = -1;
	struct libusb_device_descriptor dd;
	int rc = libusb_get_device_descriptor(dev, &dd);
	if (rc != 0) {
		snprintf(d->problem, sizeof d->problem, "bad descriptor: device descriptor unreadable (%s)",
			 libusb_error_name(rc));
		return;
	}
	d->vid = dd.idVendor;
	d->pid = dd.idProduct;
	d->device_class = dd.bDeviceClass;
	struct libusb_config_descriptor *cfg;
	rc = libusb_get_config_descriptor(dev, 0, &cfg);
	if (rc != 0) {
		snprintf(d->problem, sizeof d->problem, "bad descriptor: configuration 0 unreadable (%s)",
			 libusb_error_name(rc));
	} else {
		d->n_interfaces = cfg->bNumInterfaces;
		for (int i = 0; i < cfg->bNumInterfaces && i < 8; i++)
			d->interface_class[i] = cfg->interface[i].num_altsetting > 0
				? cfg->interface[i].altsetting[0].bInterfaceClass : -1;
		libusb_free_config_descriptor(cfg);
	}
	if (!*d->problem)
		descriptors_sane(d->port_path, d->problem, sizeof d->problem);
	read_strings(dev, &dd, d);
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct usb_device_info *)a)->port_path, ((const struct usb_device_info *)b)->port_path);
}

int usb_list(struct usb_device_info **out, size_t *count, char *err, size_t errlen)
{
	*out = NULL;
	*count = 0;
	libusb_context *ctx;
	int rc = libusb_init(&ctx);
	if (rc != 0)
		return fail(USB_ERR_IO, err, errlen, "libusb_init: %s", libusb_error_name(rc));
	libusb_device **list;
	ssize_t n = libusb_get_device_list(ctx, &list);
	if (n < 0) {
		libusb_exit(ctx);
		return fail(USB_ERR_IO, err, errlen, "libusb_get_device_list: %s", libusb_error_name((int)n));
	}
	struct usb_device_info *v = calloc((size_t)n + 1, sizeof *v);
	if (!v) {
		libusb_free_device_list(list, 1);
		libusb_exit(ctx);
		return fail(USB_ERR_IO, err, errlen, "out of memory");
	}
	for (ssize_t i = 0; i < n; i++)
		describe(list[i], &v[i]);
	libusb_free_device_list(list, 1);
	libusb_exit(ctx);
	qsort(v, (size_t)n, sizeof *v, cmp_info);
	*out = v;
	*count = (size_t)n;
	return USB_OK;
}

int usb_find(const char *port_path, struct usb_device_info *out, char *err, size_t errlen)
{
	if (usb_port_split(port_path, NULL, 0, NULL) != USB_OK && !(port_path && strstr(port_path, "-0")))
		return fail(USB_ERR_ARG, err, errlen, "'%s': not a USB port path (expected B-P.P, e.g. 1-1.2)",
			    port_path ? port_path : "(null)");
	struct usb_device_info *v;
	size_t n;
	int rc = usb_list(&v, &n, err, errlen);
	if (rc != USB_OK)
		return rc;
	rc = fail(USB_ERR_NOT_FOUND, err, errlen, "%s: no device on that port", port_path);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].port_path, port_path) == 0) {
			*out = v[i];
			rc = USB_OK;
			break;
		}
	free(v);
	return rc;
}

/* ---- hub port power ---- */

struct hub {
	libusb_context *ctx;
	libusb_device_handle *h;
	int n_ports;
};

static void hub_close(struct hub *hub)
{
	if (hub->h)
		libusb_close(hub->h);
	if (hub->ctx)
		libusb_exit(hub->ctx);
	memset(hub, 0, sizeof *hub);
}

/* Opens the hub at HUB_PATH, checks that it is a hub that switches port
 * power and that PORT exists on it. */
static int hub_open(const char *hub_path, int port, struct hub *hub, char *err, size_t errlen)
{
	memset(hub, 0, sizeof *hub);
	int rc = libusb_init(&hub->ctx);
	if (rc != 0)
		return fail(USB_ERR_IO, err, errlen, "libusb_init: %s", libusb_error_name(rc));
	libusb_device **list;
	ssize_t n = libusb_get_device_list(hub->ctx, &list);
	if (n < 0) {
		hub_close(hub);
		return fail(USB_ERR_IO, err, errlen, "libusb_get_device_list: %s", libusb_error_name((int)n));
	}
	libusb_device *dev = NULL;
	for (ssize_t i = 0; i < n && !dev; i++) {
		char p[USB_PATH_MAX];
		port_path_of(list[i], p, sizeof p);
		if (strcmp(p, hub_path) == 0)
			dev = list[i];
	}
	struct libusb_device_descriptor dd;
	rc = USB_OK;
	if (!dev)
		rc = fail(USB_ERR_NOT_FOUND, err, errlen, "hub %s: no device on that port path", hub_path);
	else if (libusb_get_device_descriptor(dev, &dd) != 0)
		rc = fail(USB_ERR_DESCRIPTOR, err, errlen, "hub %s: device descriptor unreadable", hub_path);
	else if (dd.bDeviceClass != HUB_CLASS)
		rc = fail(USB_ERR_NOT_HUB, err, errlen, "%s (%04x:%04x, class %u) is not a hub", hub_path,
			  dd.idVendor, dd.idProduct, dd.bDeviceClass);
	else if ((rc = libusb_open(dev, &hub->h)) != 0) {
		hub->h = NULL;
		rc = rc == LIBUSB_ERROR_ACCESS
			? fail(USB_ERR_ACCESS, err, errlen, "hub %s: no permission on /dev/bus/usb/%03u/%03u "
			       "(a udev rule giving the rig's user access, or run as root)", hub_path,
			       libusb_get_bus_number(dev), libusb_get_device_address(dev))
			: fail(from_libusb(rc), err, errlen, "hub %s: open: %s", hub_path, libusb_error_name(rc));
	}
	libusb_free_device_list(list, 1);
	if (rc != USB_OK) {
		hub_close(hub);
		return rc;
	}
	/* The hub descriptor says whether ports can be switched at all. */
	uint8_t desc[16];
	uint16_t type = dd.bcdUSB >= 0x0300 ? HUB_DESC_USB3 : HUB_DESC_USB2;
	int got = libusb_control_transfer(hub->h, REQ_IN_DEVICE_CLASS, LIBUSB_REQUEST_GET_DESCRIPTOR,
					  (uint16_t)(type << 8), 0, desc, sizeof desc, CTRL_TIMEOUT_MS);
	if (got < 0) {
		hub_close(hub);
		return fail(from_libusb(got), err, errlen, "hub %s: GET_DESCRIPTOR(hub): %s", hub_path,
			    libusb_error_name(got));
	}
	if (got < 7 || desc[1] != type || desc[0] < 7) {
		hub_close(hub);
		return fail(USB_ERR_DESCRIPTOR, err, errlen, "hub %s: bad hub descriptor (%d bytes, type 0x%02x)",
			    hub_path, got, got > 1 ? desc[1] : 0);
	}
	hub->n_ports = desc[2];
	unsigned lpsm = desc[3] & 3;
	if (lpsm >= 2) {
		hub_close(hub);
		return fail(USB_ERR_NOT_HUB, err, errlen,
			    "hub %s: no port power switching (wHubCharacteristics 0x%02x%02x)", hub_path, desc[4], desc[3]);
	}
	if (port < 1 || port > hub->n_ports) {
		int np = hub->n_ports;
		hub_close(hub);
		return fail(USB_ERR_ARG, err, errlen, "hub %s has ports 1..%d, not %d", hub_path, np, port);
	}
	return USB_OK;
}

static int ctrl_error(int rc, const char *hub_path, int port, const char *what, char *err, size_t errlen)
{
	if (rc == LIBUSB_ERROR_PIPE)
		return fail(USB_ERR_REFUSED, err, errlen, "hub %s port %d: %s: hub refused (STALL)", hub_path, port, what);
	if (rc == LIBUSB_ERROR_NO_DEVICE)
		return fail(USB_ERR_GONE, err, errlen, "hub %s port %d: %s: hub gone mid-transfer", hub_path, port, what);
	return fail(from_libusb(rc), err, errlen, "hub %s port %d: %s: %s", hub_path, port, what, libusb_error_name(rc));
}

static int port_status(struct hub *hub, const char *hub_path, int port, struct usb_port_status *st, char *err,
		       size_t errlen)
{
	uint8_t b[4];
	int rc = libusb_control_transfer(hub->h, REQ_IN_OTHER, LIBUSB_REQUEST_GET_STATUS, 0, (uint16_t)port, b,
					 sizeof b, CTRL_TIMEOUT_MS);
	if (rc < 0)
		return ctrl_error(rc, hub_path, port, "GET_STATUS", err, errlen);
	if (rc != 4)
		return fail(USB_ERR_DESCRIPTOR, err, errlen, "hub %s port %d: GET_STATUS gave %d bytes, not 4",
			    hub_path, port, rc);
	st->status = (uint16_t)(b[0] | b[1] << 8);
	st->change = (uint16_t)(b[2] | b[3] << 8);
	st->connected = st->status & 0x0001;
	st->enabled = st->status & 0x0002;
	st->powered = st->status & 0x0100;
	return USB_OK;
}

int usb_hub_port_status(const char *hub_path, int port, struct usb_port_status *st, char *err, size_t errlen)
{
	struct hub hub;
	int rc = hub_open(hub_path, port, &hub, err, errlen);
	if (rc != USB_OK)
		return rc;
	rc = port_status(&hub, hub_path, port, st, err, errlen);
	hub_close(&hub);
	return rc;
}

int usb_hub_port_power(const char *hub_path, int port, bool on, struct usb_port_status *st, char *err,
		       size_t errlen)
{
	struct hub hub;
	int rc = hub_open(hub_path, port, &hub, err, errlen);
	if (rc != USB_OK)
		return rc;
	rc = libusb_control_transfer(hub.h, REQ_OUT_OTHER, on ? LIBUSB_REQUEST_SET_FEATURE : LIBUSB_REQUEST_CLEAR_FEATURE,
				     PORT_POWER, (uint16_t)port, NULL, 0, CTRL_TIMEOUT_MS);
	if (rc < 0)
		rc = ctrl_error(rc, hub_path, port, on ? "SET_FEATURE(PORT_POWER)" : "CLEAR_FEATURE(PORT_POWER)", err,
				errlen);
	else
		rc = USB_OK;
	struct usb_port_status tmp;
	if (rc == USB_OK)
		rc = port_status(&hub, hub_path, port, st ? st : &tmp, err, errlen);
	hub_close(&hub);
	return rc;
}

/* ---- waiting for re-enumeration ---- */

struct hotplug {
	libusb_context *ctx;
	libusb_hotplug_callback_handle cb;
	volatile int arrived;
};

static int on_arrival(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event ev, void *user)
{
	(void)ctx, (void)dev, (void)ev;
	((struct hotplug *)user)->arrived = 1;
	return 0;
}

/* Hotplug where libusb has it; a context without a callback otherwise. */
static bool hotplug_start(struct hotplug *hp)
{
	memset(hp, 0, sizeof *hp);
	if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) || libusb_init(&hp->ctx) != 0) {
		hp->ctx = NULL;
		return false;
	}
	if (libusb_hotplug_register_callback(hp->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, 0, LIBUSB_HOTPLUG_MATCH_ANY,
					     LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_arrival, hp,
					     &hp->cb) != 0) {
		libusb_exit(hp->ctx);
		hp->ctx = NULL;
		return false;
	}
	return true;
}

/* Sleeps one poll period, woken early by a hotplug arrival. */
static void hotplug_pause(struct hotplug *hp)
{
	if (!hp->ctx) {
		sleep_ms(POLL_MS);
		return;
	}
	struct timeval tv = { 0, POLL_MS * 1000 };
	long until = now_ms() + POLL_MS;
	while (!hp->arrived && now_ms() < until)
		libusb_handle_events_timeout_completed(hp->ctx, &tv, NULL);
}

static void hotplug_stop(struct hotplug *hp)
{
	if (!hp->ctx)
		return;
	libusb_hotplug_deregister_callback(hp->ctx, hp->cb);
	libusb_exit(hp->ctx);
	hp->ctx = NULL;
}

int usb_wait_port(const char *port_path, const char *expect_serial, int timeout_ms, struct usb_wait_result *r,
		  char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	if (usb_port_split(port_path, NULL, 0, NULL) != USB_OK)
		return fail(USB_ERR_ARG, err, errlen, "'%s': not a USB port path", port_path ? port_path : "(null)");
	struct hotplug hp;
	hotplug_start(&hp);
	long t0 = now_ms();
	int rc = USB_ERR_TIMEOUT;
	for (;;) {
		bool woken = hp.arrived;
		hp.arrived = 0;
		struct usb_device_info *v;
		size_t n;
		rc = usb_list(&v, &n, err, errlen);
		if (rc != USB_OK)
			break;
		rc = USB_ERR_TIMEOUT;
		r->found_path[0] = 0;
		for (size_t i = 0; i < n; i++) {
			if (expect_serial && *expect_serial && strcmp(v[i].serial, expect_serial) == 0)
				snprintf(r->found_path, sizeof r->found_path, "%s", v[i].port_path);
			if (strcmp(v[i].port_path, port_path) == 0) {
				r->appeared = true;
				snprintf(r->serial, sizeof r->serial, "%s", v[i].serial);
			}
		}
		free(v);
		r->elapsed_ms = (int)(now_ms() - t0);
		if (r->appeared) {
			r->by_hotplug = woken;
			if (expect_serial && *expect_serial) {
				r->other_serial = strcmp(r->serial, expect_serial) != 0;
				r->other_path = r->found_path[0] && strcmp(r->found_path, port_path) != 0;
			}
			rc = USB_OK;
			break;
		}
		/* The expected unit back, but on another port: no use waiting further. */
		if (r->found_path[0]) {
			r->other_path = true;
			rc = fail(USB_ERR_NOT_FOUND, err, errlen, "%s: serial %s came back on %s instead", port_path,
				  expect_serial, r->found_path);
			break;
		}
		if (r->elapsed_ms >= timeout_ms) {
			rc = fail(USB_ERR_TIMEOUT, err, errlen, "%s: nothing re-enumerated within %d ms", port_path,
				  timeout_ms);
			break;
		}
		hotplug_pause(&hp);
	}
	hotplug_stop(&hp);
	return rc;
}

int usb_wait_gone(const char *port_path, int timeout_ms, int *elapsed_ms, char *err, size_t errlen)
{
	long t0 = now_ms();
	for (;;) {
		struct usb_device_info d;
		int rc = usb_find(port_path, &d, err, errlen);
		int el = (int)(now_ms() - t0);
		if (elapsed_ms)
			*elapsed_ms = el;
		if (rc == USB_ERR_NOT_FOUND)
			return USB_OK;
		if (rc != USB_OK)
			return rc;
		if (el >= timeout_ms)
			return fail(USB_ERR_TIMEOUT, err, errlen, "%s: device still there after %d ms", port_path,
				    timeout_ms);
		sleep_ms(POLL_MS);
	}
}
