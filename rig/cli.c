/* cli.c - helpers every rig command shares (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
