/* fuzz_tracker.c - every tracker command set's answer parsers
 * (drivers/tracker.c, tracker_*.c): the input is what the device says,
 * handed out in pieces over an in-memory link, while the driver
 * identifies the device, reads its status, sends a command and polls its
 * events, for each command set in tracker_protos[]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "tracker.h"

struct fake {
	const uint8_t *data;
	size_t size, at;
};

static int fake_send(void *ctx, const void *buf, size_t n, int timeout_ms)
{
	(void)ctx, (void)buf, (void)timeout_ms;
	return (int)n;
}

/* Pieces of 1..16 bytes, the size from the byte before: answers split
 * across reads as a UART splits them. */
static ssize_t fake_recv(void *ctx, void *buf, size_t n, int timeout_ms)
{
	struct fake *f = ctx;
	(void)timeout_ms;
	if (f->at >= f->size)
		return TRACKER_ERR_TIMEOUT;
	size_t piece = (size_t)(f->data[f->at] % 16) + 1;
	f->at++;
	if (piece > f->size - f->at)
		piece = f->size - f->at;
	if (piece > n)
		piece = n;
	if (piece == 0)
		return TRACKER_ERR_TIMEOUT;
	memcpy(buf, f->data + f->at, piece);
	f->at += piece;
	return (ssize_t)piece;
}

static const char *fake_where(void *ctx)
{
	(void)ctx;
	return "fuzz";
}

static const char *fake_detail(void *ctx)
{
	(void)ctx;
	return "";
}

static const struct tracker_link_ops ops = {
	.send = fake_send, .recv = fake_recv, .where = fake_where, .detail = fake_detail,
};

/* A clock that never waits: every read is tried at once. */
static int64_t fake_now(void *ctx)
{
	return ++*(int64_t *)ctx;
}

static int fake_wait(void *ctx, int fd, int64_t deadline)
{
	(void)ctx, (void)fd, (void)deadline;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t p = 0; tracker_protos[p]; p++) {
		struct fake f = { data, size, 0 };
		tracker *t = NULL;
		if (tracker_open(tracker_protos[p], &ops, &f, &t) != 0)
			continue;
		int64_t now = 0;
		struct tracker_clock clk = { .now_ms = fake_now, .wait_readable = fake_wait, .ctx = &now };
		tracker_set_clock(t, &clk);
		struct tracker_identity id;
		struct tracker_status st;
		char answer[TRACKER_LINE_MAX + 1];
		tracker_identify(t, &id, 1000);
		tracker_status(t, &st, 1000);
		tracker_command(t, "getver", answer, sizeof answer, 1000);
		tracker_poll(t, 0);
		struct tracker_event ev;
		while (tracker_next_event(t, &ev))
			;
		tracker_close(t);
	}
	return 0;
}
