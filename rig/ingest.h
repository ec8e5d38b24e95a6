/*
 * ingest.h - the rig's telemetry server: trackers log in over TCP with
 * their IMEI and send codec 8 / 8E packets; each packet is stored in one
 * transaction and only then acked, so an ack always means "on disk".
 * docs/uplink.md has the design; drivers/teltonika_codec.h the framing.
 *
 * One thread runs every connection (epoll, non-blocking sockets) and owns
 * its own SQLite connection to the store: connections are never shared
 * between threads. Other threads only read stats (behind the server's
 * mutex), queue codec 12 commands and read their answers (behind each
 * device's command channel, rig/ingest_cmd.c).
 *
 * On a virtual rack the thread joins the rig clock and waits only through
 * clock_wait_fd() on one epoll fd, so rack time does not move while a
 * device's bytes are waiting to be read, and every timeout is rack time.
 */
#ifndef TRACKRIG_INGEST_H
#define TRACKRIG_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "tracker.h"

#define INGEST_LATE_MS_DEFAULT 120000    /* docs/uplink.md: late after 2 minutes */
#define INGEST_MAX_CONNS_DEFAULT 256
#define INGEST_MAX_UNAUTH_DEFAULT 64     /* connections not logged in, at once */
#define INGEST_MAX_UNAUTH_PEER_DEFAULT 8 /* of those, from one address */
#define INGEST_LOGIN_MS_DEFAULT 10000    /* connect to login frame */
#define INGEST_IDLE_MS_DEFAULT 300000    /* silence on a logged-in link */
#define INGEST_PACKET_MS_DEFAULT 15000   /* first to last byte of one packet */
/* A device logged in this long (clock time) takes codec 12 commands
 * without a first ack, when nothing of it is half read: a device with
 * records sends them at once after its login, one without has none. */
#define INGEST_C12_SETTLE_MS 1000

typedef struct ingest ingest;

struct ingest_opts {
	const char *host;          /* listen address; NULL or "" = 127.0.0.1 */
	int port;                  /* 0: a free port, see ingest_port() */
	const char *db_path;       /* store file; the server opens its own handle */
	int64_t run_id;            /* 0: outside a run (stored as NULL) */
	rig_clock *clock;          /* NULL: the wall clock (one is opened) */
	/* IMEIs allowed to log in (the rack's plus --allow-imei); nothing else
	 * is accepted. Copied. */
	const char *const *allow;
	size_t n_allow;
	int64_t late_ms;           /* 0: INGEST_LATE_MS_DEFAULT */
	/* Connections that have not logged in yet share a small budget of
	 * their own: at most min(max_unauth, max_conns) at once and
	 * max_unauth_per_peer from one address. A newcomer beyond either
	 * evicts the oldest such connection (of that address first), never a
	 * logged-in one, so a tracker can always log in however many idle
	 * sockets strangers hold. Every allowed IMEI has room for its one
	 * logged-in link on top. */
	int max_conns;             /* 0: INGEST_MAX_CONNS_DEFAULT */
	int max_unauth;            /* 0: INGEST_MAX_UNAUTH_DEFAULT */
	int max_unauth_per_peer;   /* 0: INGEST_MAX_UNAUTH_PEER_DEFAULT */
	int login_timeout_ms;      /* 0: default; all in clock time */
	int idle_timeout_ms;
	int packet_timeout_ms;
	/* One line per login and drop of a known device (no newline);
	 * strangers' refusals and drops once per address or IMEI and minute.
	 * NULL: stderr as "rig ingest: ...". Called on the server thread. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Binds, opens the store and starts the server thread. Returns 0, or -1
 * with the reason (naming the address or the store file) in ERR. */
int ingest_start(const struct ingest_opts *o, ingest **out, char *err, size_t errlen);

/* The bound TCP port. */
int ingest_port(const ingest *ing);

/* Stops the thread, closes every connection and the store. Whatever was
 * acked is committed; a packet being read is dropped unacked (the device
 * sends it again). NULL is a no-op. */
void ingest_stop(ingest *ing);
/* ingest_stop, then -1 when a write to the store had failed while serving
 * (ERR: the first failure, naming the store), else 0. */
int ingest_stop_checked(ingest *ing, char *err, size_t errlen);

struct ingest_device_stats {
	char imei[16];
	uint64_t packets, records, duplicates, late, out_of_order;
	uint64_t dup_unasked;      /* packets sent again on the same link: never asked for */
	uint64_t bytes_up, bytes_down;
	uint64_t refused_logins;   /* logins refused (not on the list) */
	uint64_t drops;            /* connections dropped for bad input */
	int connected;             /* 1 while a connection is logged in */
	int64_t last_record_ms;    /* newest device timestamp (Unix ms), 0 none */
	int64_t last_arrival_ms;   /* rig clock (Unix ms) of the last packet */
};

/* Transactions committed so far (each holds every packet read in one turn
 * of the server loop): records / commits is what a commit really holds. */
uint64_t ingest_commits(ingest *ing);

/* Copies up to CAP devices' figures into OUT; returns how many devices
 * there are (may exceed CAP). Safe from any thread. */
size_t ingest_stats(ingest *ing, struct ingest_device_stats *out, size_t cap);

/* Sends TEXT to the device IMEI as a codec 12 command and waits up to
 * TIMEOUT_MS of clock time for its type-6 response, copied into ANSWER.
 * The command goes once the link is idle: its last packet acked (or,
 * before any ack, INGEST_C12_SETTLE_MS after the login), no packet half
 * read, no other command outstanding. Returns the answer
 * length, or a negative tracker_err: ARG; GONE (not connected, or the link
 * ended while waiting); GARBAGE (a response came but is malformed: bad
 * CRC, sizes; also stored as a `command_response_bad` event); TIMEOUT;
 * IO (the clock was aborted). A caller on a virtual rack must have joined
 * the clock. One caller per device at a time (this or a link). */
int ingest_send_command(ingest *ing, const char *imei, const char *text, char *answer,
			size_t len, int timeout_ms);

/* A tracker link (name "codec12") over the codec 12 channel of device
 * IMEI, for tracker_open() (which takes ownership of *CTX): each line the
 * driver sends becomes one command, sent as ingest_send_command describes;
 * each response comes back as one text line ending in "\r\n" (line breaks
 * inside it become spaces). send() fails with TRACKER_ERR_GONE and the
 * detail "IMEI N: not connected to the ingest" while the device is not
 * logged in; recv() gives GONE when the link ends under a command and
 * GARBAGE for a malformed response, the reason in the link's detail. A
 * response after its command's deadline is dropped, never taken as the
 * next command's. fd() polls readable while a response waits, so a
 * tracker_clock can wait on it. The link lives no longer than ING.
 * Returns 0, or -1 when IMEI is not on the allow list or a link to it is
 * already open. */
int ingest_tracker_link(ingest *ing, const char *imei, const struct tracker_link_ops **ops,
			void **ctx);

#endif
