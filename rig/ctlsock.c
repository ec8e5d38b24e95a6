/* ctlsock.c - one request, one reply line on a simulated rack's control
 * socket (see ctlsock.h). */
#include "ctlsock.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Internal to an exchange: the connection was found closed before any byte
 * of the reply (or when sending). */
#define GONE 2

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "10 s" or "250 ms", for the deadline in messages. */
static const char *span(int ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%d s", ms / 1000);
	else
		snprintf(buf, len, "%d ms", ms);
	return buf;
}

int ctlsock_init(struct ctlsock *s, const char *path, char *err, size_t errlen)
{
	*s = (struct ctlsock){ .fd = -1 };
	if (!path || !*path) {
		snprintf(err, errlen, "no control socket (only a simulated rack has one)");
		return -1;
	}
	if (strlen(path) >= sizeof s->path) {
		snprintf(err, errlen, "control socket %s: path too long (at most %zu bytes)", path, sizeof s->path - 1);
		return -1;
	}
	strcpy(s->path, path);
	return 0;
}

int ctlsock_connect(struct ctlsock *s, char *err, size_t errlen)
{
	if (s->fd >= 0)
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, s->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		snprintf(err, errlen, "control socket %s: cannot connect: %s", s->path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	s->fd = fd;
	return 0;
}

void ctlsock_close(struct ctlsock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Reads one reply line to REQUEST into REPLY by the deadline END. Returns
 * 0 with the line (its "\n" cut) in REPLY, GONE when the connection closed
 * before any byte of it, CTLSOCK_FAILED otherwise (ERR). */
static int read_line(struct ctlsock *s, const char *request, int64_t end, int timeout_ms, char *reply, size_t len,
		     char *err, size_t errlen)
{
	char sp[32];
	size_t got = 0;
	for (;;) {
		int64_t left = end - mono_ms();
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int pr = poll(&p, 1, left < 0 ? 0 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			if (got == 0)
				snprintf(err, errlen, "control socket %s: no reply to '%s' within %s", s->path, request,
					 span(timeout_ms, sp, sizeof sp));
			else
				snprintf(err, errlen, "control socket %s: the reply to '%s' did not end within %s: '%.*s'",
					 s->path, request, span(timeout_ms, sp, sizeof sp), (int)(got < 60 ? got : 60), reply);
			return CTLSOCK_FAILED;
		}
		ssize_t r = recv(s->fd, reply + got, len - 1 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 && got == 0)
			return GONE;
		if (r <= 0) {
			snprintf(err, errlen, "control socket %s: the rack closed the connection in its reply to '%s'",
				 s->path, request);
			return CTLSOCK_FAILED;
		}
		char *nl = memchr(reply + got, '\n', (size_t)r);
		got += (size_t)r;
		if (nl) {
			/* One request in flight at a time: nothing follows the '\n'. */
			*nl = '\0';
			return 0;
		}
		if (got + 1 >= len) {
			snprintf(err, errlen, "control socket %s: the reply to '%s' is longer than %zu bytes: '%.*s...'",
				 s->path, request, len - 1, (int)(got < 60 ? got : 60), reply);
			return CTLSOCK_FAILED;
		}
	}
}

/* Sends LINE (REQUEST and its "\n", N bytes) and reads the reply line. */
static int exchange(struct ctlsock *s, const char *request, const char *line, size_t n, int timeout_ms, char *reply,
		    size_t len, char *err, size_t errlen)
{
	ssize_t w = send(s->fd, line, n, MSG_NOSIGNAL);
	if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
		return GONE;
	if (w != (ssize_t)n) {
		snprintf(err, errlen, "control socket %s: sending '%s': %s", s->path, request,
			 w < 0 ? strerror(errno) : "short write");
		return CTLSOCK_FAILED;
	}
	return read_line(s, request, mono_ms() + timeout_ms, timeout_ms, reply, len, err, errlen);
}

int ctlsock_request(struct ctlsock *s, const char *request, int timeout_ms, char *reply, size_t len, char *err,
		    size_t errlen)
{
	reply[0] = '\0';
	size_t n = strcspn(request, "\n");
	if (request[n] || n > CTLSOCK_REQUEST_MAX || len < 2) {
		snprintf(err, errlen, "control socket %s: not one request line of at most %d bytes: '%.60s'", s->path,
			 CTLSOCK_REQUEST_MAX, request);
		return CTLSOCK_FAILED;
	}
	char line[CTLSOCK_REQUEST_MAX + 1];
	memcpy(line, request, n);
	line[n] = '\n';
	bool fresh = s->fd < 0;
	char cerr[256];
	if (ctlsock_connect(s, cerr, sizeof cerr) < 0) {
		snprintf(err, errlen, "%s (request '%s')", cerr, request);
		return CTLSOCK_FAILED;
	}
	int rc = exchange(s, request, line, n + 1, timeout_ms, reply, len, err, errlen);
	if (rc == GONE && s->reconnect && !fresh) {
		/* Never a second send on a live connection: only on a fresh one. */
		ctlsock_close(s);
		if (ctlsock_connect(s, cerr, sizeof cerr) < 0) {
			snprintf(err, errlen, "%s (request '%s')", cerr, request);
			return CTLSOCK_FAILED;
		}
		rc = exchange(s, request, line, n + 1, timeout_ms, reply, len, err, errlen);
	}
	if (rc == GONE)
		snprintf(err, errlen, "control socket %s: the rack closed the connection before replying to '%s'",
			 s->path, request);
	if (rc != 0) {
		ctlsock_close(s);   /* a late reply must not answer the next request */
		return CTLSOCK_FAILED;
	}
	if (strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' '))
		return CTLSOCK_OK;
	snprintf(err, errlen, "control socket %s: '%s' refused: %.150s", s->path, request, reply);
	return CTLSOCK_REFUSED;
}

bool ctlsock_value(const char *reply, const char *key, long long *out)
{
	char pat[40];
	if (snprintf(pat, sizeof pat, " %s=", key) >= (int)sizeof pat)
		return false;
	const char *p = strstr(reply, pat);
	if (!p)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(p + strlen(pat), &end, 10);
	if (end == p + strlen(pat) || errno || (*end && *end != ' '))
		return false;
	*out = v;
	return true;
}
