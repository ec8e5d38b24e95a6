/*
 * ctlsock.h - the rig's one client of a simulated rack's control socket
 * (docs/simrack-control.md): connecting to the socket's path, one request
 * line, one reply line within a deadline, and "ok ..." told from
 * "error: ...". Errors name the socket's path and the request.
 *
 * Its users keep one connection each: clock.c for time (mode, now, next),
 * rackctl.c for faults (datacap). A struct ctlsock is not locked: one
 * request at a time on it, its owner sees to that.
 */
#ifndef TRACKRIG_CTLSOCK_H
#define TRACKRIG_CTLSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

/* The deadline for a whole reply line, from the request's send. */
#define CTLSOCK_REPLY_MS 10000
/* simrack refuses requests over 255 bytes (and closes the connection). */
#define CTLSOCK_REQUEST_MAX 255

struct ctlsock {
	int fd;                                      /* -1: not connected */
	char path[sizeof ((struct sockaddr_un *)0)->sun_path];
	/* A kept connection the rack closed before any byte of the reply
	 * (a rack that restarted, or dropped an idle client) is reopened and
	 * the request sent once more. Only for requests that are safe to
	 * repeat; the clock's are not (a second `next` moves time again). */
	bool reconnect;
};

enum ctlsock_rc {
	CTLSOCK_OK = 0,        /* "ok ...": the reply line is in REPLY */
	CTLSOCK_REFUSED = 1,   /* the rack answered, but not "ok" ("error: ..."): its line is in REPLY */
	CTLSOCK_FAILED = -1,   /* no connection, or no whole reply line within the deadline */
};

/* Readies S for the socket at PATH, not yet connected. Returns 0, or -1
 * when PATH is empty or too long for a Unix socket (ERR says which). */
int ctlsock_init(struct ctlsock *s, const char *path, char *err, size_t errlen);

/* Connects S (a no-op when connected). Returns 0 or -1 (ERR). */
int ctlsock_connect(struct ctlsock *s, char *err, size_t errlen);

/* Sends REQUEST (one line, no "\n") and reads one reply line (without its
 * "\n") into REPLY within TIMEOUT_MS, connecting first when S is not
 * connected. Returns an enum ctlsock_rc; on anything but CTLSOCK_OK, ERR
 * says what went wrong, naming the socket and the request. After a failure
 * the connection is closed: a reply that comes late must never be read as
 * the answer to the next request. */
int ctlsock_request(struct ctlsock *s, const char *request, int timeout_ms, char *reply, size_t len, char *err,
		    size_t errlen);

/* Closes the connection (S may be connected again). */
void ctlsock_close(struct ctlsock *s);

/* The integer after " KEY=" in an "ok" reply line. Returns false when the
 * reply has no such pair or its value is not a decimal integer. */
bool ctlsock_value(const char *reply, const char *key, long long *out);

#endif
