/* probe.c - one tracker probed and recorded (see probe.h). */
#include "probe.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define MAX_AUDIT 16

/* Commands are audited once the device's identity is known, so every row of
 * a probe carries the IMEI, even the identity answer that told it. */
struct audit_buf {
	int n;
	struct {
		char cmd[64];
		char result[256];
	} rows[MAX_AUDIT];
};

static void on_command(void *ctx, const char *where, const char *cmd, const char *answer, const char *error)
{
	(void)where;
	(void)answer;
	struct audit_buf *a = ctx;
	if (a->n == MAX_AUDIT)
		return;
	snprintf(a->rows[a->n].cmd, sizeof a->rows[a->n].cmd, "%s", cmd);
	snprintf(a->rows[a->n].result, sizeof a->rows[a->n].result, "%s", error ? error : "ok");
	a->n++;
}

static int exit_for(int rc)
{
	switch (rc) {
	case TRACKER_OK: return RIG_EXIT_OK;
	case TRACKER_ERR_TIMEOUT:
	case TRACKER_ERR_GONE:
	case TRACKER_ERR_IO: return RIG_EXIT_INFRA; /* unreachable */
	case TRACKER_ERR_ARG: return RIG_EXIT_USAGE;
	default: return RIG_EXIT_FAIL;             /* reachable, but misbehaving */
	}
}

/* Compares what the device says with what the rack file expects. */
static void check_drift(const struct probe_target *t, struct probe_result *r)
{
	const struct rack_slot *e = t->expect;
	if (!e || !r->identified)
		return;
	const struct { const char *what, *want, *got; } f[] = {
		{ "IMEI", e->expect.imei, r->id.imei },
		{ "ICCID", e->expect.iccid, r->id.iccid },
		{ "serial", e->expect.serial, r->id.serial },
	};
	size_t off = 0;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (*f[i].want && strcmp(f[i].want, f[i].got) != 0 && off < sizeof r->drift)
			off += (size_t)snprintf(r->drift + off, sizeof r->drift - off, "%s%s: rack file expects %s, device says %s",
						off ? "; " : "", f[i].what, f[i].want, *f[i].got ? f[i].got : "(nothing)");
}

/* Writes the probe to the store. A row that cannot be written is said on
 * stderr and makes the probe an infrastructure error: an audit trail with
 * silent holes is worse than none. */
static void record(const struct probe_ctx *ctx, const struct probe_target *t, struct probe_result *r,
		   const struct audit_buf *a)
{
	if (!ctx->db)
		return;
	int failed = 0;
	const char *imei = r->identified ? r->id.imei : NULL;
	if (r->identified) {
		struct store_device d = {
			.imei = r->id.imei, .iccid = r->id.iccid, .serial = r->id.serial,
			.vendor = t->expect && *t->expect->vendor ? t->expect->vendor : NULL,
			.model = r->id.model, .hw_rev = r->id.hw_rev, .firmware = r->id.firmware,
		};
		failed |= store_device_seen(ctx->db, &d) < 0;
	}
	for (int i = 0; i < a->n; i++) {
		struct store_audit row = {
			.run_id = ctx->run_id, .operator_ = ctx->operator_, .station = ctx->station,
			.slot = t->slot, .port = t->port, .imei = imei,
			.command = a->rows[i].cmd, .result = a->rows[i].result,
		};
		failed |= store_audit_add(ctx->db, &row) < 0;
	}
	for (int i = 0; i < r->n_events; i++) {
		struct store_event ev = {
			.run_id = ctx->run_id, .slot = t->slot, .imei = imei, .source = "console",
			.kind = r->events[i].kind, .detail = r->events[i].text,
		};
		failed |= store_event_add(ctx->db, &ev) < 0;
	}
	struct store_event outcome = {
		.run_id = ctx->run_id, .slot = t->slot, .imei = imei, .source = "probe",
		.kind = r->rc ? "probe_failed" : *r->drift ? "identity_drift" : "probed",
		.detail = r->rc ? r->error : *r->drift ? r->drift : t->port,
	};
	failed |= store_event_add(ctx->db, &outcome) < 0;
	if (failed) {
		fprintf(stderr, "rig: results store: %s\n", store_error(ctx->db));
		r->exit_code = RIG_EXIT_INFRA;
	}
}

void probe_one(const struct probe_ctx *ctx, const struct probe_target *t, struct probe_result *r)
{
	memset(r, 0, sizeof *r);
	const struct tracker_proto *proto = tracker_proto_find(t->protocol ? t->protocol : "teltonika");
	if (!proto) {
		r->rc = TRACKER_ERR_ARG;
		r->exit_code = RIG_EXIT_USAGE;
		snprintf(r->error, sizeof r->error, "%s: unknown tracker protocol '%s'", t->port, t->protocol);
		return;
	}
	tracker *trk;
	r->rc = tracker_open_console(t->port, t->baud, ctx->backend, proto, &trk, r->error, sizeof r->error);
	if (r->rc) {
		r->exit_code = RIG_EXIT_INFRA;
		struct audit_buf a = { .n = 1 };
		snprintf(a.rows[0].cmd, sizeof a.rows[0].cmd, "open");
		snprintf(a.rows[0].result, sizeof a.rows[0].result, "%.250s", r->error);
		record(ctx, t, r, &a);
		return;
	}
	if (ctx->clock)
		tracker_set_clock(trk, clock_for_tracker(ctx->clock));
	snprintf(r->link, sizeof r->link, "%s", tracker_describe(trk));
	struct audit_buf audit = { 0 };
	tracker_set_observer(trk, on_command, &audit);

	r->rc = tracker_identify(trk, &r->id, ctx->timeout_ms);
	r->identified = r->rc == TRACKER_OK;
	if (r->rc == TRACKER_OK) {
		r->rc = tracker_status(trk, &r->st, ctx->timeout_ms);
		r->have_status = r->rc == TRACKER_OK;
	}
	/* Restarts and the buffer as far as the command set tells them: a
	 * driver without the capability leaves them unknown, not zero. */
	r->restarts = (struct tracker_restarts){ .count = -1, .uptime_s = -1, .reset_code = -1 };
	r->records = -1;
	const struct tracker_proto *p = tracker_get_proto(trk);
	if (r->rc == TRACKER_OK && p->restarts)
		r->rc = tracker_restarts(trk, &r->restarts, ctx->timeout_ms);
	if (r->rc == TRACKER_OK && p->buffered)
		r->rc = tracker_buffered(trk, &r->records, ctx->timeout_ms);
	if (r->rc)
		snprintf(r->error, sizeof r->error, "%s", tracker_error(trk));
	struct tracker_event ev;
	while (tracker_next_event(trk, &ev))
		if (r->n_events < PROBE_MAX_EVENTS)
			r->events[r->n_events++] = ev;
	check_drift(t, r);
	r->exit_code = r->rc ? exit_for(r->rc) : *r->drift ? RIG_EXIT_FAIL : RIG_EXIT_OK;
	record(ctx, t, r, &audit);
	tracker_close(trk);
}

const char *probe_verdict(const struct probe_result *r)
{
	if (r->rc)
		return tracker_strerror(r->rc);
	return *r->drift ? "identity drift" : "ok";
}
