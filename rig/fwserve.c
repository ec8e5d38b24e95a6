/*
 * fwserve.c - HTTP image server with Range requests (see fwserve.h).
 *
 * Bodies are streamed from the file with pread through a content reader
 * callback, so an image is never held in memory and a cut is exact: the
 * reader stops handing out bytes at the cut and reports an error, and
 * libmicrohttpd drops the connection after sending what it already had.
 * Counters and the armed cut are shared with the daemon's thread, behind
 * one mutex.
 */
#include "fwserve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 128
#define MAX_IMAGES 256    /* counters kept for this many distinct names */
#define READ_BLOCK (32 * 1024)

struct image_count {
	char name[NAME_MAX_LEN];
	struct fwserve_stats st;
};

struct fwserve {
	struct MHD_Daemon *daemon;
	char dir[PATH_MAX];
	char host[INET_ADDRSTRLEN];
	uint16_t port;
	pthread_mutex_t lock;       /* guards everything below */
	struct image_count images[MAX_IMAGES];
	int n_images;
	struct fwserve_stats total;
	bool cut_armed;
	bool cut_any;               /* armed for any image */
	char cut_name[NAME_MAX_LEN];
	uint64_t cut_bytes;
};

/* One response body being streamed. */
struct body {
	struct fwserve *srv;
	int fd;
	uint64_t start, len;        /* the byte range of the file served */
	uint64_t cut;               /* stop after this many bytes; UINT64_MAX: never */
	char name[NAME_MAX_LEN];
};

/* ---- counters (lock held by callers) ---- */

static struct fwserve_stats *counts_of(struct fwserve *s, const char *name)
{
	for (int i = 0; i < s->n_images; i++)
		if (strcmp(s->images[i].name, name) == 0)
			return &s->images[i].st;
	if (s->n_images == MAX_IMAGES)
		return NULL;  /* totals still count; per-image counters are full */
	struct image_count *c = &s->images[s->n_images++];
	snprintf(c->name, sizeof c->name, "%s", name);
	memset(&c->st, 0, sizeof c->st);
	return &c->st;
}

enum outcome { OUT_FULL, OUT_RANGED, OUT_REFUSED };

static void count_request(struct fwserve *s, const char *name, enum outcome o)
{
	pthread_mutex_lock(&s->lock);
	struct fwserve_stats *c = name ? counts_of(s, name) : NULL;
	struct fwserve_stats *both[2] = { &s->total, c };
	for (int i = 0; i < 2; i++) {
		if (!both[i])
			continue;
		both[i]->requests++;
		both[i]->ranged += o == OUT_RANGED;
		both[i]->refused += o == OUT_REFUSED;
	}
	pthread_mutex_unlock(&s->lock);
}

static void count_body(struct fwserve *s, const char *name, uint64_t bytes, bool cut)
{
	pthread_mutex_lock(&s->lock);
	struct fwserve_stats *c = counts_of(s, name);
	s->total.bytes += bytes;
	s->total.cut += cut;
	if (c) {
		c->bytes += bytes;
		c->cut += cut;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Takes the armed cut if it applies to NAME: one-shot. */
static uint64_t take_cut(struct fwserve *s, const char *name)
{
	uint64_t cut = UINT64_MAX;
	pthread_mutex_lock(&s->lock);
	if (s->cut_armed && (s->cut_any || strcmp(s->cut_name, name) == 0)) {
		cut = s->cut_bytes;
		s->cut_armed = false;
	}
	pthread_mutex_unlock(&s->lock);
	return cut;
}

/* ---- request parsing ---- */

/* One plain path component of N bytes: no hidden files, no "..". */
static bool valid_part(const char *p, size_t n)
{
	if (n == 0 || p[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("._-", p[i]))
			return false;
	return true;
}

/* NAME or MODEL/NAME, each a plain component: nothing to escape DIR with. */
static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n >= NAME_MAX_LEN)
		return false;
	const char *slash = strchr(name, '/');
	if (!slash)
		return valid_part(name, n);
	return valid_part(name, (size_t)(slash - name)) && valid_part(slash + 1, strlen(slash + 1));
}

/* Decimal digits only (no sign, no spaces), without overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

enum range_kind { RANGE_NONE, RANGE_ONE, RANGE_BAD };

/* Reads a Range header against a file of SIZE bytes: RANGE_NONE (serve it
 * all: no header, another unit, or several ranges), RANGE_ONE with
 * [*START, *START + *LEN), or RANGE_BAD (malformed or unsatisfiable: 416). */
static enum range_kind parse_range(const char *v, uint64_t size, uint64_t *start, uint64_t *len)
{
	if (!v)
		return RANGE_NONE;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "bytes", 5) != 0)
		return RANGE_NONE;
	v += 5;
	while (*v == ' ')
		v++;
	if (*v != '=')
		return RANGE_BAD;
	v++;
	if (strchr(v, ','))
		return RANGE_NONE;
	while (*v == ' ')
		v++;
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	const char *dash = memchr(v, '-', n);
	if (!dash)
		return RANGE_BAD;
	size_t a_len = (size_t)(dash - v), b_len = n - a_len - 1;
	uint64_t a, b;
	if (a_len == 0) {  /* suffix: the last B bytes */
		if (!parse_u64(dash + 1, b_len, &b) || b == 0 || size == 0)
			return RANGE_BAD;
		*start = b >= size ? 0 : size - b;
		*len = size - *start;
		return RANGE_ONE;
	}
	if (!parse_u64(v, a_len, &a) || a >= size)
		return RANGE_BAD;
	if (b_len == 0) {
		b = size - 1;
	} else if (!parse_u64(dash + 1, b_len, &b) || b < a) {
		return RANGE_BAD;
	}
	if (b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return RANGE_ONE;
}

/* ---- responses ---- */

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	if (pos >= b->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (pos >= b->cut) {
		count_body(b->srv, b->name, 0, true);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	uint64_t want = b->len - pos;
	if (want > b->cut - pos)
		want = b->cut - pos;
	if (want > max)
		want = max;
	ssize_t got;
	do
		got = pread(b->fd, buf, (size_t)want, (off_t)(b->start + pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {  /* the file shrank or failed under us: end the connection */
		fprintf(stderr, "fwserve: %s/%s: read at %" PRIu64 ": %s\n", b->srv->dir, b->name, b->start + pos,
			got ? strerror(errno) : "file shorter than when the request started");
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	count_body(b->srv, b->name, (uint64_t)got, false);
	return got;
}

static void free_body(void *cls)
{
	struct body *b = cls;
	close(b->fd);
	free(b);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text,
				 const char *header, const char *value)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (header)
		MHD_add_response_header(r, header, value);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **req)
{
	(void)version;
	(void)upload;
	(void)req;
	struct fwserve *s = cls;
	if (*upload_size)  /* GET and HEAD have no body; drop anything sent */
		*upload_size = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", MHD_HTTP_HEADER_ALLOW,
				 "GET, HEAD");
	const char *name = url[0] == '/' ? url + 1 : url;
	if (!valid_name(name)) {
		count_request(s, NULL, OUT_REFUSED);
		return send_text(c, MHD_HTTP_NOT_FOUND, "no such image\n", NULL, NULL);
	}
	char path[PATH_MAX + NAME_MAX_LEN];
	snprintf(path, sizeof path, "%s/%s", s->dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		count_request(s, NULL, OUT_REFUSED);
		return send_text(c, MHD_HTTP_NOT_FOUND, "no such image\n", NULL, NULL);
	}
	uint64_t size = (uint64_t)st.st_size, start = 0, len = size;
	enum range_kind rk = parse_range(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE),
					 size, &start, &len);
	char crange[96];
	if (rk == RANGE_BAD) {
		close(fd);
		count_request(s, name, OUT_REFUSED);
		snprintf(crange, sizeof crange, "bytes */%" PRIu64, size);
		return send_text(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, "range not satisfiable\n",
				 MHD_HTTP_HEADER_CONTENT_RANGE, crange);
	}
	struct body *b = malloc(sizeof *b);
	if (!b) {
		close(fd);
		return MHD_NO;
	}
	*b = (struct body){ .srv = s, .fd = fd, .start = start, .len = len, .cut = UINT64_MAX };
	snprintf(b->name, sizeof b->name, "%s", name);
	/* A HEAD has no body to cut; only a GET takes the armed cut. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		b->cut = take_cut(s, name);
	struct MHD_Response *r = MHD_create_response_from_callback(len, READ_BLOCK, read_body, b, free_body);
	if (!r) {
		free_body(b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	unsigned status = MHD_HTTP_OK;
	if (rk == RANGE_ONE) {
		status = MHD_HTTP_PARTIAL_CONTENT;
		snprintf(crange, sizeof crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1, size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
	}
	count_request(s, name, rk == RANGE_ONE ? OUT_RANGED : OUT_FULL);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* libmicrohttpd's own messages (a cut connection, a client gone) go to
 * stderr with our prefix, so they are told apart from the rig's. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("fwserve: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* ---- lifecycle ---- */

int fwserve_start(const char *dir, const char *host, uint16_t port, struct fwserve **out, char *err,
		  size_t errlen)
{
	*out = NULL;
	if (!host)
		host = "127.0.0.1";
	struct stat st;
	errno = 0;
	if (!dir || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(dir, R_OK | X_OK) < 0) {
		snprintf(err, errlen, "image directory %s: %s", dir ? dir : "(null)",
			 errno ? strerror(errno) : "not a directory");
		return -1;
	}
	if (strlen(dir) >= PATH_MAX) {
		snprintf(err, errlen, "image directory path too long");
		return -1;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "listen address '%s' is not an IPv4 address", host);
		return -1;
	}
	struct fwserve *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	snprintf(s->host, sizeof s->host, "%s", host);
	pthread_mutex_init(&s->lock, NULL);
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL,
				     on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned)60, MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(err, errlen, "cannot serve on %s:%u (address in use, or no permission)", host, port);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info && info->port ? info->port : port;
	*out = s;
	return 0;
}

uint16_t fwserve_port(const struct fwserve *s)
{
	return s->port;
}

const char *fwserve_url(const struct fwserve *s, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "http://%s:%u/%s", s->host, s->port, name ? name : "");
	return buf;
}

bool fwserve_has(const struct fwserve *s, const char *name)
{
	char path[PATH_MAX + NAME_MAX_LEN];
	struct stat st;
	if (!valid_name(name))
		return false;
	snprintf(path, sizeof path, "%s/%s", s->dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void fwserve_cut_after(struct fwserve *s, const char *name, uint64_t bytes)
{
	pthread_mutex_lock(&s->lock);
	s->cut_armed = true;
	s->cut_any = name == NULL;
	snprintf(s->cut_name, sizeof s->cut_name, "%s", name ? name : "");
	s->cut_bytes = bytes;
	pthread_mutex_unlock(&s->lock);
}

bool fwserve_stats(struct fwserve *s, const char *name, struct fwserve_stats *out)
{
	bool found = false;
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&s->lock);
	if (!name) {
		*out = s->total;
		found = true;
	}
	for (int i = 0; name && i < s->n_images; i++)
		if (strcmp(s->images[i].name, name) == 0) {
			*out = s->images[i].st;
			found = true;
		}
	pthread_mutex_unlock(&s->lock);
	return found;
}

void fwserve_stop(struct fwserve *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
