/*
 * usb_testbed - an emulated power-switching USB hub for `rig usb`, in process.
 *
 *   umockdev-wrapper usb_testbed [--fault stall|gone] [--enum-ms N]
 *       [--swap PORTPATH=FILE] --hub FILE [DEVICE_FILE...] -- USB_ARGS...
 *
 * Plain `umockdev-run` shows libusb the devices, but every control transfer
 * fails (usbdevfs SUBMITURB gives ENOTTY). Port power needs the hub to
 * answer, and umockdev only lets an ioctl handler answer from inside the
 * process that runs libusb (the preload library talks to the testbed's
 * worker thread). So this program builds the testbed, loads the device
 * files, attaches a handler to the hub's /dev/bus/usb node, and then runs
 * the rig's own `usb` command (cmd_usb) with USB_ARGS, e.g.
 * `power 1-1.2 cycle --json --db X`. Further "-- USB_ARGS" run more
 * commands on the same testbed, in order (`-- power 1-1.2 off -- --json`
 * switches a port off, then lists what is left).
 *
 * The hub handler answers the usbdevfs ioctls libusb sends for control
 * transfers (GET_CAPABILITIES, SUBMITURB, REAPURB/REAPURBNDELAY,
 * DISCARDURB) and, on endpoint 0, the hub-class requests uhubctl uses:
 *   GET_DESCRIPTOR(hub, 0x29)          USB 2.0 hub descriptor, 4 ports,
 *                                      wHubCharacteristics 0x0009: per-port power
 *   SET_FEATURE / CLEAR_FEATURE(PORT_POWER) on ports 1..4
 *   GET_STATUS(port)                   wPortStatus: bit 0 connected, bit 1
 *                                      enabled, bit 8 power; wPortChange 0
 * It keeps each port's power. Switching a port off removes its device from
 * the testbed (the sysfs dir and /dev node vanish, as they do when the
 * kernel sees a disconnect); switching it on adds it back after --enum-ms
 * (default 200) from another thread, so re-enumeration takes a measurable
 * time. --swap PORTPATH=FILE brings FILE back instead (another unit).
 * --fault stall answers every SET/CLEAR_FEATURE with a STALL (EPIPE);
 * --fault gone completes them with ENODEV, as a hub unplugged mid-transfer.
 *
 * Exit: the first non-zero exit code of the commands (else 0), or 4 when the testbed could not be built.
 */
#include <umockdev.h>

#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern int cmd_usb(int argc, char **argv);
extern int cmd_power(int argc, char **argv);

#define MAX_DEVS 8
#define HUB_PORTS 4
#define MAX_URBS 16

struct devfile {
	char *text;           /* the whole umockdev description */
	char syspath[256];    /* "/sys/devices/.../1-1.2" */
	char port_path[32];   /* "1-1.2" */
	char devname[64];     /* "/dev/bus/usb/001/004" */
};

struct pending {
	UMockdevIoctlData *urb, *buf;
	int status, actual;
	uint8_t reply[64];
	int reply_len;
};

static struct {
	UMockdevTestbed *tb;
	struct devfile hub, devs[MAX_DEVS], swaps[MAX_DEVS];
	int n_devs, n_swaps;
	bool powered[HUB_PORTS + 1];
	bool present[HUB_PORTS + 1];
	int enum_ms;
	const char *fault;
	struct pending q[MAX_URBS];
	int nq;
	pthread_mutex_t lock;
} bed = { .enum_ms = 200, .lock = PTHREAD_MUTEX_INITIALIZER };

static int load_devfile(const char *path, struct devfile *d)
{
	gsize len;
	GError *e = NULL;
	if (!g_file_get_contents(path, &d->text, &len, &e)) {
		fprintf(stderr, "usb_testbed: %s\n", e->message);
		g_error_free(e);
		return -1;
	}
	const char *p = strstr(d->text, "P: "), *n = strstr(d->text, "E: DEVNAME=");
	if (!p || !n || sscanf(p + 3, "%200s", d->syspath + 4) != 1 || sscanf(n + 11, "%63s", d->devname) != 1) {
		fprintf(stderr, "usb_testbed: %s: no P: line or DEVNAME\n", path);
		return -1;
	}
	memcpy(d->syspath, "/sys", 4);
	const char *base = strrchr(d->syspath, '/');
	snprintf(d->port_path, sizeof d->port_path, "%s", base + 1);
	return 0;
}

/* Port number on our hub of a device at "1-1.N", or 0. */
static int hub_port_of(const struct devfile *d)
{
	size_t hl = strlen(bed.hub.port_path);
	if (strncmp(d->port_path, bed.hub.port_path, hl) != 0 || d->port_path[hl] != '.')
		return 0;
	int p = atoi(d->port_path + hl + 1);
	return p >= 1 && p <= HUB_PORTS ? p : 0;
}

static const struct devfile *device_on_port(int port, bool prefer_swap)
{
	for (int i = 0; prefer_swap && i < bed.n_swaps; i++)
		if (hub_port_of(&bed.swaps[i]) == port)
			return &bed.swaps[i];
	for (int i = 0; i < bed.n_devs; i++)
		if (hub_port_of(&bed.devs[i]) == port)
			return &bed.devs[i];
	return NULL;
}

static void *enumerate_later(void *arg)
{
	int port = (int)(intptr_t)arg;
	struct timespec ts = { bed.enum_ms / 1000, (bed.enum_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&bed.lock);
	const struct devfile *d = device_on_port(port, true);
	if (bed.powered[port] && !bed.present[port] && d) {
		GError *e = NULL;
		if (umockdev_testbed_add_from_string(bed.tb, d->text, &e)) {
			umockdev_testbed_uevent(bed.tb, d->syspath, "add");
			bed.present[port] = true;
		} else {
			fprintf(stderr, "usb_testbed: re-adding %s: %s\n", d->port_path, e->message);
			g_error_free(e);
		}
	}
	pthread_mutex_unlock(&bed.lock);
	return NULL;
}

static void port_power(int port, bool on)
{
	if (on && !bed.powered[port]) {
		bed.powered[port] = true;
		pthread_t t;
		if (pthread_create(&t, NULL, enumerate_later, (void *)(intptr_t)port) == 0)
			pthread_detach(t);
	} else if (!on && bed.powered[port]) {
		bed.powered[port] = false;
		const struct devfile *d = device_on_port(port, false);
		if (bed.present[port] && d) {
			umockdev_testbed_uevent(bed.tb, d->syspath, "remove");
			umockdev_testbed_remove_device(bed.tb, d->syspath);
		}
		bed.present[port] = false;
	}
}

/* Answers one control request on endpoint 0 (SETUP S, data stage in P). */
static void control(const uint8_t *s, struct pending *p)
{
	int type = s[0], req = s[1], value = s[2] | s[3] << 8, index = s[4] | s[5] << 8, len = s[6] | s[7] << 8;
	p->status = 0;
	p->actual = 0;
	p->reply_len = 0;
	pthread_mutex_lock(&bed.lock);
	if (type == 0xa0 && req == 6 && value >> 8 == 0x29) {
		static const uint8_t hubdesc[9] = { 9, 0x29, HUB_PORTS, 0x09, 0x00, 50, 100, 0x00, 0xff };
		p->reply_len = len < 9 ? len : 9;
		memcpy(p->reply, hubdesc, (size_t)p->reply_len);
	} else if (type == 0x23 && (req == 1 || req == 3) && value == 8 && index >= 1 && index <= HUB_PORTS) {
		if (bed.fault && strcmp(bed.fault, "stall") == 0)
			p->status = -EPIPE;
		else if (bed.fault && strcmp(bed.fault, "gone") == 0)
			p->status = -ENODEV;
		else
			port_power(index, req == 3);
	} else if (type == 0xa3 && req == 0 && index >= 1 && index <= HUB_PORTS && len >= 4) {
		unsigned st = (bed.powered[index] ? 0x0100 : 0) | (bed.present[index] ? 0x0003 : 0);
		p->reply[0] = st & 0xff, p->reply[1] = st >> 8, p->reply[2] = 0, p->reply[3] = 0;
		p->reply_len = 4;
	} else {
		p->status = -EPIPE; /* what a hub does with a request it does not know */
	}
	pthread_mutex_unlock(&bed.lock);
	p->actual = p->reply_len;
}

static gboolean on_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user)
{
	(void)base, (void)user;
	gulong request = umockdev_ioctl_client_get_request(client);
	gsize size = (request >> _IOC_SIZESHIFT) & ((1u << _IOC_SIZEBITS) - 1);
	GError *e = NULL;
	UMockdevIoctlData *data = NULL;
	if (size) {
		data = umockdev_ioctl_data_resolve(umockdev_ioctl_client_get_arg(client), 0, size, &e);
		if (!data) {
			fprintf(stderr, "usb_testbed: resolving ioctl data: %s\n", e->message);
			g_error_free(e);
			return FALSE;
		}
	}
	gboolean handled = TRUE;
	if (request == (gulong)USBDEVFS_GET_CAPABILITIES) {
		uint32_t caps = USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
		umockdev_ioctl_data_update(data, 0, (guint8 *)&caps, sizeof caps);
		umockdev_ioctl_client_complete(client, 0, 0);
	} else if (request == (gulong)USBDEVFS_CLAIMINTERFACE || request == (gulong)USBDEVFS_RELEASEINTERFACE ||
		   request == (gulong)USBDEVFS_RESET || request == (gulong)USBDEVFS_CLEAR_HALT) {
		umockdev_ioctl_client_complete(client, 0, 0);
	} else if (request == (gulong)USBDEVFS_SUBMITURB) {
		const struct usbdevfs_urb *urb = (const struct usbdevfs_urb *)data->data;
		if (urb->type != USBDEVFS_URB_TYPE_CONTROL || urb->buffer_length < 8 || bed.nq == MAX_URBS) {
			umockdev_ioctl_client_complete(client, -1, EINVAL);
		} else {
			UMockdevIoctlData *buf = umockdev_ioctl_data_resolve(data, offsetof(struct usbdevfs_urb, buffer),
									   (gsize)urb->buffer_length, &e);
			if (!buf) {
				fprintf(stderr, "usb_testbed: resolving URB buffer: %s\n", e->message);
				g_error_free(e);
				umockdev_ioctl_client_complete(client, -1, EFAULT);
			} else {
				struct pending *p = &bed.q[bed.nq++];
				p->urb = umockdev_ioctl_data_ref(data);
				p->buf = buf;
				control(buf->data, p);
				if (p->reply_len > urb->buffer_length - 8)
					p->reply_len = p->actual = urb->buffer_length - 8;
				umockdev_ioctl_client_complete(client, 0, 0);
			}
		}
	} else if (request == (gulong)USBDEVFS_REAPURB || request == (gulong)USBDEVFS_REAPURBNDELAY) {
		if (bed.nq == 0) {
			umockdev_ioctl_client_complete(client, -1, EAGAIN);
		} else {
			struct pending p = bed.q[0];
			memmove(bed.q, bed.q + 1, (size_t)--bed.nq * sizeof bed.q[0]);
			if (p.reply_len > 0)
				umockdev_ioctl_data_update(p.buf, 8, p.reply, p.reply_len);
			int st[2] = { p.status, p.actual };
			umockdev_ioctl_data_update(p.urb, offsetof(struct usbdevfs_urb, status), (guint8 *)&st[0], sizeof st[0]);
			umockdev_ioctl_data_update(p.urb, offsetof(struct usbdevfs_urb, actual_length), (guint8 *)&st[1],
						   sizeof st[1]);
			umockdev_ioctl_data_set_ptr(data, 0, p.urb);
			umockdev_ioctl_client_complete(client, 0, 0);
			umockdev_ioctl_data_unref(p.buf);
			umockdev_ioctl_data_unref(p.urb);
		}
	} else if (request == (gulong)USBDEVFS_DISCARDURB) {
		umockdev_ioctl_client_complete(client, -1, EINVAL); /* everything completes at once */
	} else {
		umockdev_ioctl_client_complete(client, -1, ENOTTY);
	}
	if (data)
		umockdev_ioctl_data_unref(data);
	return handled;
}

static int usage(void)
{
	fprintf(stderr, "usage: umockdev-wrapper usb_testbed [--fault stall|gone] [--enum-ms N] "
			"[--swap PORTPATH=FILE] --hub FILE [DEVICE_FILE...] -- USB_ARGS...\n");
	return 2;
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *hub_file = NULL;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--hub") == 0 && i + 1 < argc)
			hub_file = argv[++i];
		else if (strcmp(argv[i], "--fault") == 0 && i + 1 < argc)
			bed.fault = argv[++i];
		else if (strcmp(argv[i], "--enum-ms") == 0 && i + 1 < argc)
			bed.enum_ms = atoi(argv[++i]);
		else if (strcmp(argv[i], "--swap") == 0 && i + 1 < argc && bed.n_swaps < MAX_DEVS) {
			const char *eq = strchr(argv[++i], '=');
			if (!eq || load_devfile(eq + 1, &bed.swaps[bed.n_swaps++]))
				return usage();
		} else if (argv[i][0] != '-' && bed.n_devs < MAX_DEVS) {
			if (load_devfile(argv[i], &bed.devs[bed.n_devs++]))
				return 4;
		} else {
			return usage();
		}
	}
	if (!hub_file || i == argc)
		return usage();
	if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "libumockdev-preload")) {
		fprintf(stderr, "usb_testbed: not under umockdev: run it through umockdev-wrapper\n");
		return 4;
	}
	if (load_devfile(hub_file, &bed.hub))
		return 4;
	bed.tb = umockdev_testbed_new();
	GError *e = NULL;
	if (!umockdev_testbed_add_from_string(bed.tb, bed.hub.text, &e)) {
		fprintf(stderr, "usb_testbed: %s: %s\n", hub_file, e->message);
		return 4;
	}
	for (int k = 0; k < bed.n_devs; k++) {
		if (!umockdev_testbed_add_from_string(bed.tb, bed.devs[k].text, &e)) {
			fprintf(stderr, "usb_testbed: %s: %s\n", bed.devs[k].port_path, e->message);
			return 4;
		}
		int port = hub_port_of(&bed.devs[k]);
		if (port)
			bed.present[port] = true;
	}
	for (int p = 1; p <= HUB_PORTS; p++)
		bed.powered[p] = true;
	UMockdevIoctlBase *handler = umockdev_ioctl_base_new();
	g_signal_connect(handler, "handle-ioctl", G_CALLBACK(on_ioctl), NULL);
	if (!umockdev_testbed_attach_ioctl(bed.tb, bed.hub.devname, handler, &e)) {
		fprintf(stderr, "usb_testbed: attaching the hub handler to %s: %s\n", bed.hub.devname, e->message);
		return 4;
	}
	/* Each "--" starts one `usb` command; cmd_usb sees argv[0] "usb". They
	 * run in order on the same testbed, so a port switched off by one is
	 * still off for the next. The exit code is the first non-zero one. */
	int rc = 0;
	while (i < argc) {
		int end = i + 1;
		while (end < argc && strcmp(argv[end], "--") != 0)
			end++;
		char *saved = end < argc ? argv[end] : NULL;
		argv[i] = (char *)"usb";
		if (end < argc)
			argv[end] = NULL;
		/* "-- rig-power SLOTS on --rack R" runs `rig power` instead: a
		 * slot powered from a hub port, through the rack file. */
		int one;
		if (end > i + 1 && strcmp(argv[i + 1], "rig-power") == 0) {
			argv[i + 1] = (char *)"power";
			one = cmd_power(end - i - 1, argv + i + 1);
		} else {
			one = cmd_usb(end - i, argv + i);
		}
		fflush(stdout);
		fflush(stderr);
		if (rc == 0)
			rc = one;
		if (saved)
			argv[end] = saved;
		i = end;
	}
	pthread_mutex_lock(&bed.lock); /* no re-enumeration thread mid-add when the testbed goes */
	umockdev_testbed_detach_ioctl(bed.tb, bed.hub.devname, NULL);
	g_object_unref(handler);
	g_object_unref(bed.tb);
	pthread_mutex_unlock(&bed.lock);
	return rc;
}
