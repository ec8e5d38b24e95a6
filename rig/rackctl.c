/* rackctl.c - one request, one reply on a simulated rack's control socket. */
#include "rackctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int rackctl_request(const char *path, const char *request, char *reply, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path || !*path || strlen(path) >= sizeof sa.sun_path) {
		snprintf(reply, len, "no control socket: only a simulated rack can do '%s'", request);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(reply, len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char line[300];
	int n = snprintf(line, sizeof line, "%s\n", request);
	size_t got = 0;
	int rc = -1;
	if (n < 0 || (size_t)n >= sizeof line || write(fd, line, (size_t)n) != n) {
		snprintf(reply, len, "%s: cannot send '%s'", path, request);
		goto out;
	}
	while (got + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0 || read(fd, reply + got, 1) != 1) {
			snprintf(reply, len, "%s: no reply to '%s'", path, request);
			goto out;
		}
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	rc = strncmp(reply, "ok", 2) == 0 ? 0 : -1;
out:
	close(fd);
	return rc;
}
