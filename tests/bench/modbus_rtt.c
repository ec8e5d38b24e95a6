/*
 * modbus_rtt.c - benchmark: a supply status read through the rd60xx driver
 * against a minimal libmodbus client loop reading the same 19 registers,
 * interleaved, from the same simulated supply in the same run.
 */
#include <errno.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embedded.h"
#include "power.h"
#include "rack.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double median_us(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return (double)v[n / 2] / 1000.0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	struct embedded_rack er;
	char err[512];
	if (embedded_rack_start(&er, 1, 1, NULL, err, sizeof err)) {
		fprintf(stderr, "modbus_rtt: %s\n", err);
		return 1;
	}
	struct rack rack;
	int rc = 1;
	if (rack_load(er.rack_file, &rack, err, sizeof err)) {
		fprintf(stderr, "modbus_rtt: %s\n", err);
		goto out;
	}
	const char *tr = rack.slots[0].power.bus.transport; /* tcp://127.0.0.1:PORT */
	int port = atoi(strrchr(tr, ':') + 1);
	struct power_dev *dev;
	const struct power_driver *drv = power_driver_find("rd60xx");
	if (drv->open(tr, 1, 0, &dev, err, sizeof err)) {
		fprintf(stderr, "modbus_rtt: %s\n", err);
		goto out_rack;
	}
	modbus_t *mb = modbus_new_tcp("127.0.0.1", port);
	modbus_set_slave(mb, 1);
	if (modbus_connect(mb) < 0) {
		fprintf(stderr, "modbus_rtt: connect: %s\n", modbus_strerror(errno));
		goto out_dev;
	}
	int64_t *bare = calloc((size_t)n, sizeof *bare), *drvt = calloc((size_t)n, sizeof *drvt);
	uint16_t regs[19];
	struct power_status st;
	for (int i = 0; i < n; i++) {
		int64_t t0 = now_ns();
		if (modbus_read_registers(mb, 0, 19, regs) != 19) {
			fprintf(stderr, "modbus_rtt: bare read: %s\n", modbus_strerror(errno));
			goto out_all;
		}
		int64_t t1 = now_ns();
		if (drv->status(dev, &st)) {
			fprintf(stderr, "modbus_rtt: %s\n", power_error(dev));
			goto out_all;
		}
		int64_t t2 = now_ns();
		bare[i] = t1 - t0;
		drvt[i] = t2 - t1;
	}
	double mb_us = median_us(bare, n), md_us = median_us(drvt, n);
	printf("supply status (19 holding registers) from a simulated RD6006, %d reads each:\n", n);
	printf("  minimal libmodbus loop   median %7.1f us\n", mb_us);
	printf("  rd60xx power driver      median %7.1f us\n", md_us);
	printf("  ratio driver / bare: %.2f\n", md_us / mb_us);
	rc = 0;
out_all:
	free(bare);
	free(drvt);
	modbus_close(mb);
	modbus_free(mb);
out_dev:
	drv->close(dev);
out_rack:
	rack_free(&rack);
out:
	embedded_rack_stop(&er);
	return rc;
}
