/*
 * console_rtt.c - benchmark: `getver` round trip through the serial layer and
 * the tracker driver, against a bare write/read loop on the same pty, in the
 * same run, to the same simulated tracker.
 *
 * The bare loop is the floor: simrack's own answer time plus two pty hops.
 * Whatever the rig's layers add shows as the ratio of the two medians.
 * Run: make bench (or build/bench/console_rtt [N]).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "embedded.h"
#include "tracker.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void stats(const char *name, int64_t *v, int n, double *median_us)
{
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	*median_us = (double)v[n / 2] / 1000.0;
	printf("%-28s median %8.1f us   p99 %8.1f us   max %8.1f us   (n=%d)\n", name, *median_us,
	       (double)v[(int)(n * 0.99)] / 1000.0, (double)v[n - 1] / 1000.0, n);
}

/* One bare round trip: write the command, read until the answer's line end,
 * skipping event lines. Returns 0 or -1. */
static int bare_getver(int fd)
{
	static const char cmd[] = "getver\r\n";
	if (write(fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1))
		return -1;
	char buf[1024];
	size_t len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 2000) <= 0)
			return -1;
		ssize_t n = read(fd, buf + len, sizeof buf - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			bool answer = strncmp(buf, "Ver:", 4) == 0;
			size_t used = (size_t)(nl - buf) + 1;
			memmove(buf, buf + used, len - used);
			len -= used;
			if (answer)
				return 0;
		}
		if (len == sizeof buf)
			return -1;
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	if (n < 100)
		n = 100;
	struct embedded_rack er;
	char err[512];
	if (embedded_rack_start(&er, 1, 1, NULL, err, sizeof err)) {
		fprintf(stderr, "console_rtt: %s\n", err);
		return 3;
	}
	char port[4200];
	snprintf(port, sizeof port, "%s/slot1/console", er.dir);
	int64_t *bare = calloc((size_t)n, sizeof *bare), *drv = calloc((size_t)n, sizeof *drv);
	int rc = 1;

	/* Driver path: serial layer (termios backend: a pty) + tracker driver. */
	tracker *t;
	if (tracker_open_console(port, 115200, SERIAL_BACKEND_AUTO, tracker_proto_find("teltonika"), &t, err,
				 sizeof err)) {
		fprintf(stderr, "console_rtt: %s\n", err);
		goto out;
	}
	char answer[TRACKER_LINE_MAX + 1];
	/* Wait out the boot, then warm up both paths. */
	for (int i = 0; i < 50; i++)
		if (tracker_command(t, "getver", answer, sizeof answer, 3000)) {
			fprintf(stderr, "console_rtt: warm-up: %s\n", tracker_error(t));
			tracker_close(t);
			goto out;
		}
	int fd = open(port, O_RDWR | O_NOCTTY);
	struct termios tio;
	if (fd < 0 || tcgetattr(fd, &tio)) {
		perror("console_rtt: bare open");
		tracker_close(t);
		goto out;
	}
	cfmakeraw(&tio);
	tcsetattr(fd, TCSANOW, &tio);

	/* Interleave the two so drift in machine load hits both alike. */
	for (int i = 0; i < n; i++) {
		int64_t t0 = now_ns();
		if (bare_getver(fd)) {
			fprintf(stderr, "console_rtt: bare loop failed at %d\n", i);
			goto close_all;
		}
		int64_t t1 = now_ns();
		if (tracker_command(t, "getver", answer, sizeof answer, 2000)) {
			fprintf(stderr, "console_rtt: %s\n", tracker_error(t));
			goto close_all;
		}
		int64_t t2 = now_ns();
		bare[i] = t1 - t0;
		drv[i] = t2 - t1;
	}
	double mb, md;
	printf("getver round trip to simrack over a pty, %d commands each:\n", n);
	stats("bare write/read loop", bare, n, &mb);
	stats("serial layer + driver", drv, n, &md);
	printf("ratio of medians (driver / bare): %.2f   (target <= 1.50)\n", md / mb);
	rc = 0;
close_all:
	close(fd);
	tracker_close(t);
out:
	free(bare);
	free(drv);
	embedded_rack_stop(&er);
	return rc;
}
