/* rackctl.c - requests on a simulated rack's control socket, over one
 * persistent connection per rack (see rackctl.h). */
#include "rackctl.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_TIMEOUT_MS 10000

/* The connection kept open between requests: one for the last rack asked
 * (a rig talks to one rack at a time). Requests from every slot thread take
 * turns on it; the rack answers them one by one anyway. */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static int conn_fd = -1;
static char conn_path[sizeof ((struct sockaddr_un *)0)->sun_path];

static void conn_close(void)
{
	if (conn_fd >= 0)
		close(conn_fd);
	conn_fd = -1;
	conn_path[0] = '\0';
}

static int conn_open(const char *path, char *reply, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(reply, len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	conn_fd = fd;
	strcpy(conn_path, path);
	return 0;
}

/* Sends LINE and reads one reply line. Returns 0 with the line in REPLY;
 * 1 when the connection was found closed before any reply byte (a rack that
 * restarted, or dropped an idle client): worth one retry on a fresh one;
 * -1 on a failure with the reason in REPLY. */
static int exchange(const char *path, const char *request, const char *line, size_t n, char *reply,
		    size_t len)
{
	if (send(conn_fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
		return 1;
	size_t got = 0;
	while (got + 1 < len) {
		struct pollfd p = { .fd = conn_fd, .events = POLLIN };
		if (poll(&p, 1, REPLY_TIMEOUT_MS) <= 0) {
			snprintf(reply, len, "%s: no reply to '%s' within %d s", path, request,
				 REPLY_TIMEOUT_MS / 1000);
			return -1;
		}
		ssize_t r = recv(conn_fd, reply + got, len - 1 - got, 0);
		if (r <= 0) {
			if (got == 0)
				return 1;
			snprintf(reply, len, "%s: the rack closed the connection during '%s'", path, request);
			return -1;
		}
		char *nl = memchr(reply + got, '\n', (size_t)r);
		got += (size_t)r;
		if (nl) {
			got = (size_t)(nl - reply);
			break;
		}
	}
	reply[got] = '\0';
	return 0;
}

int rackctl_request(const char *path, const char *request, char *reply, size_t len)
{
	if (!path || !*path || strlen(path) >= sizeof conn_path) {
		snprintf(reply, len, "no control socket: only a simulated rack can do '%s'", request);
		return -1;
	}
	char line[300];
	int n = snprintf(line, sizeof line, "%s\n", request);
	if (n < 0 || (size_t)n >= sizeof line) {
		snprintf(reply, len, "%s: request too long: '%.60s...'", path, request);
		return -1;
	}
	pthread_mutex_lock(&conn_lock);
	if (conn_fd >= 0 && strcmp(conn_path, path) != 0)
		conn_close();
	int rc = 1;
	/* A kept connection may have been closed by a rack that restarted:
	 * one retry on a fresh connection, never a second send on a live one. */
	for (int attempt = 0; attempt < 2 && rc == 1; attempt++) {
		bool fresh = conn_fd < 0;
		if (fresh && conn_open(path, reply, len) < 0) {
			rc = -1;
			break;
		}
		rc = exchange(path, request, line, (size_t)n, reply, len);
		if (rc != 0)
			conn_close();   /* a late reply must not answer the next request */
		if (rc == 1 && fresh) {
			snprintf(reply, len, "%s: no reply to '%s' (the rack closed the connection)", path, request);
			rc = -1;
		}
	}
	pthread_mutex_unlock(&conn_lock);
	if (rc != 0)
		return -1;
	return strncmp(reply, "ok", 2) == 0 ? 0 : -1;
}

void rackctl_close(void)
{
	pthread_mutex_lock(&conn_lock);
	conn_close();
	pthread_mutex_unlock(&conn_lock);
}
