/* cli.c - helpers every rig command shares (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_output_writable(const char *path, char *err, size_t len)
{
	struct stat st;
	if (!path || !*path)
		return snprintf(err, len, "empty output path"), -1;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return snprintf(err, len, "%.600s: is a directory, expected a file", path), -1;
		if (access(path, W_OK) != 0)
			return snprintf(err, len, "%.600s: not writable (%s)", path, strerror(errno)), -1;
		return 0;
	}
	/* The file may not exist yet: its folder must, and must take a new file. */
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof dir)
		return snprintf(err, len, "%.600s: path too long", path), -1;
	if (slash && n == 0)
		n = 1; /* "/x": the root folder */
	memcpy(dir, slash ? path : ".", slash ? n : 1);
	dir[slash ? n : 1] = '\0';
	if (stat(dir, &st) != 0)
		return snprintf(err, len, "%.600s: folder %.600s does not exist", path, dir), -1;
	if (!S_ISDIR(st.st_mode))
		return snprintf(err, len, "%.600s: %.600s is not a folder", path, dir), -1;
	if (access(dir, W_OK | X_OK) != 0)
		return snprintf(err, len, "%.600s: folder %.600s is not writable (%s)", path, dir, strerror(errno)), -1;
	return 0;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int cli_fail(int code, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "rig %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_ms(const char *s, int *out)
{
	long v;
	if (cli_long(s, 1, 600000, &v))
		return -1;
	*out = (int)v;
	return 0;
}

const char *cli_operator(const char *from_option)
{
	if (from_option && *from_option)
		return from_option;
	const char *user = getenv("USER");
	return user && *user ? user : "unknown";
}

const char *cli_db_path(const char *from_option)
{
	if (from_option && *from_option)
		return from_option;
	const char *env = getenv("TRACKRIG_DB");
	return env && *env ? env : "trackrig.db";
}

const char *cli_sibling_program(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("TRACKRIG_BIN");
	if (dir && *dir) {
		snprintf(buf, len, "%s/%s", dir, name);
		return buf;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		snprintf(buf, len, "%s", name); /* fall back to $PATH */
		return buf;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, len, "%s/%s", self, name);
	return buf;
}
