/*
 * ingest_cmd.h - the codec 12 command channel of one device on the ingest:
 * commands other threads queue for the device, the responses the server
 * thread reads from its link, and the tracker link (`codec12`) built on
 * them. rig/ingest.c holds one per allowed IMEI and calls the server-side
 * hooks below; everything else goes through ingest.h.
 *
 * Why a channel of its own: the device's TCP link belongs to the server
 * thread, but the tracker driver runs on a slot's thread and must block
 * on its own deadline (in clock time). The channel is the meeting point:
 * one mutex, a queue each way, and an eventfd that polls readable while a
 * response waits, so a tracker_clock (or clock_wait_fd) can wait on it.
 *
 * Outcomes are delivered only to someone still waiting: a response or a
 * failure for a command whose deadline has been reached, or whose asker
 * has given up (its wait returned TIMEOUT), is stale and dropped, so it
 * can neither pass for the next command's answer nor fail it. Codec 12
 * carries no command id: an answer that comes after the next command
 * went out cannot be told from that command's (the driver's answer
 * prefixes catch a different command's answer).
 * docs/uplink.md ("Codec 12 over the uplink") has the rules a user sees.
 */
#ifndef TRACKRIG_INGEST_CMD_H
#define TRACKRIG_INGEST_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "tracker.h"

struct ingest_cmd;

/* A channel for device IMEI on CLOCK; WAKE(WAKE_CTX) tells the server
 * thread a command was queued. NULL when out of memory or fds (ERR). */
struct ingest_cmd *ingest_cmd_new(const char *imei, rig_clock *clock, void (*wake)(void *), void *wake_ctx,
				  char *err, size_t errlen);
void ingest_cmd_free(struct ingest_cmd *ch);

/* ---- server thread ---- */

/* The device logged in from PEER ("host:port"). */
void ingest_cmd_online(struct ingest_cmd *ch, const char *peer);

/* The device's link ended (WHY): whoever waits gets TRACKER_ERR_GONE, and
 * queued commands are dropped (they would reach a rebooted device). */
void ingest_cmd_offline(struct ingest_cmd *ch, const char *why);

/* Takes the next command whose asker still waits into TEXT (at most
 * CAP-1 bytes) and marks it in flight. False when there is none. */
bool ingest_cmd_take(struct ingest_cmd *ch, char *text, size_t cap);

enum ingest_cmd_result {
	INGEST_CMD_ANSWER,        /* a response, delivered to the asker */
	INGEST_CMD_STALE,         /* a response nobody waits for any more: dropped */
	INGEST_CMD_MALFORMED,     /* framed, but not a readable codec 12 response: the asker gets GARBAGE */
	INGEST_CMD_NOT_RESPONSE,  /* a well-formed codec 12 command (type 5) from a device */
};

/* One codec 12 frame of LEN bytes from the device (framed by
 * ingest_frame_next). WHY says what was wrong for MALFORMED and
 * NOT_RESPONSE, and the dropped text for STALE. */
enum ingest_cmd_result ingest_cmd_frame(struct ingest_cmd *ch, const uint8_t *frame, size_t len, char *why,
					size_t whylen);

/* ---- any thread ---- */

/* Sends TEXT and waits for its response until TIMEOUT_MS of clock time
 * have passed (see ingest_send_command). */
int ingest_cmd_ask(struct ingest_cmd *ch, const char *text, char *answer, size_t len, int timeout_ms);

/* A tracker link over the channel (see ingest_tracker_link). Returns 0, or
 * -1 when a link is already open. */
int ingest_cmd_link(struct ingest_cmd *ch, const struct tracker_link_ops **ops, void **ctx);

#endif
