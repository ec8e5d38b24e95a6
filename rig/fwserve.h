/*
 * fwserve.h - the rig's firmware image server: one directory of images over
 * HTTP/1.1 (libmicrohttpd, its own polling thread), with Range requests so a
 * device resumes an interrupted download where it stopped.
 *
 * GET and HEAD of /NAME serve DIR/NAME, where NAME is a plain file name
 * (letters, digits, '.', '_', '-'; not starting with '.') or one folder and
 * such a name (MODEL/NAME: a model's own images): nothing outside DIR is
 * reachable. A single byte range (bytes=A-B, bytes=A-, bytes=-N) gets
 * 206 Partial Content with Content-Range; a range past the end or a
 * malformed one gets 416 with "Content-Range: bytes * /SIZE" (no space); a
 * multi-range request gets the whole file (200), which RFC 9110 allows.
 * Malformed ranges are refused rather than ignored on purpose: a device bug
 * should show up on the rack, not be papered over with the whole file.
 *
 * For tests and scenarios it counts requests and bytes per image, and can
 * cut the next response after N body bytes (the connection is dropped
 * mid-body, as a radio link does), so "resumes after an interruption" is
 * something a test can cause.
 *
 * Functions returning int give 0 or -1 with a message in ERR naming the
 * directory, address or image.
 */
#ifndef TRACKRIG_FWSERVE_H
#define TRACKRIG_FWSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fwserve;

/* Per-image counters (or totals over all images). */
struct fwserve_stats {
	uint64_t requests;   /* GET and HEAD requests, any status */
	uint64_t ranged;     /* of which answered 206 */
	uint64_t refused;    /* of which answered 416 (or 404 for the totals) */
	uint64_t cut;        /* responses cut by fwserve_cut_after */
	uint64_t bytes;      /* body bytes handed to the socket */
};

/* Serves DIR on HOST (an IPv4 literal; NULL: 127.0.0.1, loopback only) and
 * PORT (0: a free port, see fwserve_port). Returns 0 with *OUT running, or
 * -1 (DIR not a readable directory, address in use, ...). */
int fwserve_start(const char *dir, const char *host, uint16_t port, struct fwserve **out, char *err,
		  size_t errlen);

/* The port really bound (the one picked when 0 was asked for). */
uint16_t fwserve_port(const struct fwserve *s);

/* "http://HOST:PORT/NAME" into BUF; returns BUF. */
const char *fwserve_url(const struct fwserve *s, const char *name, char *buf, size_t len);

/* Whether NAME (as a request would name it) is a file the server would serve. */
bool fwserve_has(const struct fwserve *s, const char *name);

/* The next response for image NAME (NULL: for any image) stops after BYTES
 * body bytes and its connection is closed. One-shot: later requests are
 * whole again. A later call replaces an armed cut. */
void fwserve_cut_after(struct fwserve *s, const char *name, uint64_t bytes);

/* Counters of image NAME, or totals when NAME is NULL. Returns false when
 * NAME was never requested (OUT zeroed). */
bool fwserve_stats(struct fwserve *s, const char *name, struct fwserve_stats *out);

/* Stops the server (open connections are closed) and frees it; NULL is a no-op. */
void fwserve_stop(struct fwserve *s);

#endif
