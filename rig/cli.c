/* cli.c - helpers every rig command shares (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
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

/* ---- "did you mean ..." ---- */

/* Optimal-string-alignment distance (Levenshtein plus swapped neighbours:
 * "nihgtly" is one slip, not two). Words longer than 63 are never close. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return SIZE_MAX;
	size_t d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *cli_suggest(const char *word, const char *const *candidates, size_t n)
{
	/* One slip in a short word, up to three in a long one: further than
	 * that the guess is more likely wrong than helpful. */
	size_t len = strlen(word), limit = (len + 2) / 3;
	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	const char *best = NULL;
	size_t best_d = limit + 1;
	for (size_t i = 0; i < n; i++) {
		size_t dist = edit_distance(word, candidates[i]);
		if (dist < best_d) {
			best_d = dist;
			best = candidates[i];
		}
	}
	return best;
}

/* The long option WORD (no dashes, up to any '=') names exactly or as the
 * only prefix, as getopt_long matches it; NULL when none or ambiguous. */
static const struct option *long_match(const struct option *opts, const char *word, size_t len,
				       int *n_prefix)
{
	const struct option *found = NULL;
	*n_prefix = 0;
	for (const struct option *o = opts; o->name; o++) {
		if (strncmp(o->name, word, len) != 0)
			continue;
		if (strlen(o->name) == len)
			return *n_prefix = 1, o;
		++*n_prefix;
		found = o;
	}
	return *n_prefix == 1 ? found : NULL;
}

/* "fw pack" has its help under "rig fw --help". */
#define HELP(cmd) (int)strcspn((cmd), " "), (cmd)

static int bad_short_option(const char *cmd, const struct option *opts)
{
	for (const struct option *o = opts; o->name; o++)
		if (o->val == optopt && o->has_arg == required_argument)
			return cli_fail(RIG_EXIT_USAGE, cmd, "option '-%c' needs a value (see rig %.*s --help)",
					optopt, HELP(cmd));
	return cli_fail(RIG_EXIT_USAGE, cmd, "unknown option '-%c' (see rig %.*s --help)", optopt, HELP(cmd));
}

int cli_bad_option(const char *cmd, const struct option *opts, const char *arg)
{
	if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 128)
		return bad_short_option(cmd, opts);
	const char *word = arg + strspn(arg, "-");
	const char *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) : strlen(word);
	int n_prefix;
	const struct option *o = long_match(opts, word, len, &n_prefix);
	if (o && eq && o->has_arg == no_argument)
		return cli_fail(RIG_EXIT_USAGE, cmd, "option '--%s' takes no value", o->name);
	if (o)
		return cli_fail(RIG_EXIT_USAGE, cmd, "option '--%s' needs a value (see rig %.*s --help)",
				o->name, HELP(cmd));
	if (n_prefix > 1)
		return cli_fail(RIG_EXIT_USAGE, cmd, "option '--%.*s' is ambiguous (see rig %.*s --help)",
				(int)len, word, HELP(cmd));
	const char *names[128];
	size_t n = 0;
	for (const struct option *p = opts; p->name && n < sizeof names / sizeof names[0]; p++)
		names[n++] = p->name;
	char typed[64];
	snprintf(typed, sizeof typed, "%.*s", (int)len, word);
	const char *guess = cli_suggest(typed, names, n);
	if (guess)
		return cli_fail(RIG_EXIT_USAGE, cmd, "unknown option '--%s'; did you mean '--%s'?", typed, guess);
	return cli_fail(RIG_EXIT_USAGE, cmd, "unknown option '--%s' (see rig %.*s --help)", typed, HELP(cmd));
}
