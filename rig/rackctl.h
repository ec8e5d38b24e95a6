/*
 * rackctl.h - requests to a simulated rack's control socket other than time
 * (docs/simrack-control.md): the faults real rack hardware cannot make, such
 * as a carrier's data cap. Time requests go through clock.c; both through
 * the one client, ctlsock.c.
 */
#ifndef TRACKRIG_RACKCTL_H
#define TRACKRIG_RACKCTL_H

#include <stddef.h>

/* Sends REQUEST (one line, no "\n") to the control socket at PATH and puts
 * the reply line in REPLY. Returns 0 on an "ok" reply, -1 otherwise with the
 * reason in REPLY: the rack's own "error: ..." line, or ours (no socket,
 * no reply within the deadline, ...) naming the socket and the request.
 * Thread-safe. The connection stays open for the next request (one per
 * process, to the last PATH asked), so 256 slots asking at once cost one
 * connection, not 256. */
int rackctl_request(const char *path, const char *request, char *reply, size_t len);

/* Closes the kept connection (it is reopened on the next request). */
void rackctl_close(void);

#endif
