/* rackctl.c - requests on a simulated rack's control socket, over one
 * persistent connection per rack (see rackctl.h), through ctlsock.c. */
#include "rackctl.h"
#include "ctlsock.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The connection kept open between requests: one for the last rack asked
 * (a rig talks to one rack at a time). Requests from every slot thread take
 * turns on it; the rack answers them one by one anyway. */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctlsock conn = { .fd = -1 };

int rackctl_request(const char *path, const char *request, char *reply, size_t len)
{
	if (!path || !*path) {
		snprintf(reply, len, "no control socket: only a simulated rack can do '%s'", request);
		return -1;
	}
	char err[512];
	pthread_mutex_lock(&conn_lock);
	int rc = CTLSOCK_OK;
	if (conn.fd < 0 || strcmp(conn.path, path) != 0) {
		ctlsock_close(&conn);
		rc = ctlsock_init(&conn, path, err, sizeof err);
		/* Fault requests are safe to send again on a fresh connection. */
		conn.reconnect = true;
	}
	if (rc == CTLSOCK_OK)
		rc = ctlsock_request(&conn, request, CTLSOCK_REPLY_MS, reply, len, err, sizeof err);
	pthread_mutex_unlock(&conn_lock);
	/* The rack's refusal is its own line ("error: ..."); any other failure
	 * is ours, naming the socket and the request. */
	if (rc != CTLSOCK_OK && rc != CTLSOCK_REFUSED)
		snprintf(reply, len, "%s", err);
	return rc == CTLSOCK_OK ? 0 : -1;
}

void rackctl_close(void)
{
	pthread_mutex_lock(&conn_lock);
	ctlsock_close(&conn);
	pthread_mutex_unlock(&conn_lock);
}
