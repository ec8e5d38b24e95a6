/* chart.c - gnuplot charts as SVG text (see chart.h). */
#include "chart.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* gnuplot renders a chart in well under a second; this only stops a hung one
 * from hanging a nightly job. */
#define CHART_TIMEOUT_MS 30000

static bool safe_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
	       c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
}

char *chart_sanitize(const char *in, char *out, size_t outlen)
{
	if (!outlen)
		return out;
	size_t max = outlen - 1 < CHART_LABEL_MAX ? outlen - 1 : CHART_LABEL_MAX, n = 0;
	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && n < max; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			out[n++] = ' ';
		else if (safe_char(*p))
			out[n++] = (char)*p;
	}
	out[n] = '\0';
	return out;
}

/* A path that goes into the script (inside single quotes) must itself be
 * inert: TMPDIR is used only when it is made of safe characters. */
static bool safe_path(const char *s)
{
	for (; *s; s++)
		if (!safe_char((unsigned char)*s) || *s == ' ' || *s == ':')
			return false;
	return true;
}

/* A quoted, sanitised string, or nothing when S is NULL. */
static void label(FILE *f, const char *cmd, const char *s)
{
	if (!s)
		return;
	char buf[CHART_LABEL_MAX + 1];
	fprintf(f, "%s \"%s\"\n", cmd, chart_sanitize(s, buf, sizeof buf));
}

static void preamble(FILE *f, const char *out, const char *title)
{
	/* noenhanced: '_' and '^' in a label are letters, not markup. */
	fputs("set terminal svg size 760,360 noenhanced font 'sans,11' background rgb 'white'\n", f);
	fprintf(f, "set output '%s'\n", out);
	fputs("set grid ytics lc rgb '#dddddd'\nset border 3\nset tics nomirror\nset key outside right top\n", f);
	label(f, "set title", title);
}

struct workdir {
	char dir[256], script[300], svg[300], log[300];
};

static int workdir_make(struct workdir *w, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || !safe_path(tmp) || strlen(tmp) > 200)
		tmp = "/tmp";
	/* The pid lets the next rig remove it if this one is killed mid-chart
	 * (embedded_sweep_leftovers). */
	snprintf(w->dir, sizeof w->dir, "%s/trackrig-chart-%d-XXXXXX", tmp, (int)getpid());
	if (!mkdtemp(w->dir)) {
		snprintf(err, errlen, "chart: mkdtemp %s: %s", w->dir, strerror(errno));
		return -1;
	}
	snprintf(w->script, sizeof w->script, "%s/chart.gp", w->dir);
	snprintf(w->svg, sizeof w->svg, "%s/chart.svg", w->dir);
	snprintf(w->log, sizeof w->log, "%s/gnuplot.log", w->dir);
	return 0;
}

static void workdir_remove(const struct workdir *w)
{
	unlink(w->script);
	unlink(w->svg);
	unlink(w->log);
	rmdir(w->dir);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		if (got < 4096)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* First line of gnuplot's complaint, for ERR. */
static void log_line(const char *path, char *out, size_t len)
{
	char *text = slurp(path, NULL);
	const char *p = text ? text : "";
	while (*p == '\n' || *p == ' ')
		p++;
	/* gnuplot prints the offending line, then a caret line, then the reason. */
	const char *why = strstr(p, "line ");
	const char *start = why ? why : p;
	snprintf(out, len, "%.*s", (int)strcspn(start, "\n"), start);
	free(text);
}

/* Runs gnuplot on the script, without a shell: the only input it reads is
 * the file this module wrote. */
static int run_gnuplot(const struct workdir *w, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, w->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *argv[] = { "gnuplot", (char *)w->script, NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		snprintf(err, errlen, "chart: cannot run gnuplot: %s (Debian package gnuplot-nox)", strerror(rc));
		return -1;
	}
	int status = 0;
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "chart: waiting for gnuplot: %s", strerror(errno));
			return -1;
		}
		if (waited >= CHART_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err, errlen, "chart: gnuplot took longer than %d s", CHART_TIMEOUT_MS / 1000);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[200];
		log_line(w->log, why, sizeof why);
		snprintf(err, errlen, "chart: gnuplot %s %d: %s", WIFEXITED(status) ? "exited" : "died of signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why);
		return -1;
	}
	return 0;
}

/* Writes the script with BODY, runs gnuplot and returns the SVG. */
typedef int (*script_body)(FILE *f, const void *chart, const char *out);

static int render(script_body body, const void *chart, char **svg, char *err, size_t errlen)
{
	*svg = NULL;
	struct workdir w;
	if (workdir_make(&w, err, errlen))
		return -1;
	int rc = -1;
	FILE *f = fopen(w.script, "w");
	if (!f) {
		snprintf(err, errlen, "chart: %s: %s", w.script, strerror(errno));
		goto out;
	}
	int brc = body(f, chart, w.svg);
	if (fclose(f) != 0 || brc != 0) {
		if (brc != 0)
			snprintf(err, errlen, "chart: nothing to draw (no finite data points)");
		else
			snprintf(err, errlen, "chart: %s: %s", w.script, strerror(errno));
		goto out;
	}
	if (run_gnuplot(&w, err, errlen))
		goto out;
	size_t len;
	char *text = slurp(w.svg, &len);
	char *start = text ? strstr(text, "<svg") : NULL;
	if (!start) {
		snprintf(err, errlen, "chart: gnuplot wrote no SVG to %s", w.svg);
		free(text);
		goto out;
	}
	/* Drop the XML declaration and DOCTYPE: inline SVG in HTML has none. */
	memmove(text, start, len - (size_t)(start - text) + 1);
	*svg = text;
	rc = 0;
out:
	workdir_remove(&w);
	return rc;
}

static size_t finite_points(const struct chart_series *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += isfinite(s->x[i]) && isfinite(s->y[i]);
	return n;
}

static void xtics(FILE *f, const char *const *names, size_t n)
{
	fputs("set xtics (", f);
	for (size_t i = 0; i < n; i++) {
		char buf[CHART_LABEL_MAX + 1];
		fprintf(f, "%s\"%s\" %zu", i ? ", " : "", chart_sanitize(names[i], buf, sizeof buf), i);
	}
	fputs(")", f);
	size_t longest = 0;
	for (size_t i = 0; i < n; i++)
		longest = names[i] && strlen(names[i]) > longest ? strlen(names[i]) : longest;
	/* Long or many names would run into each other along the axis. */
	if (n > 6 || (n > 2 && longest > 12))
		fputs(" rotate by -30", f);
	fputs("\n", f);
}

static int line_body(FILE *f, const void *chart, const char *out)
{
	const struct chart_line *c = chart;
	preamble(f, out, c->title);
	label(f, "set xlabel", c->xlabel);
	label(f, "set ylabel", c->ylabel);
	if (c->xtics && c->n_xtics) {
		xtics(f, c->xtics, c->n_xtics);
		fprintf(f, "set xrange [-0.5:%zu.5]\n", c->n_xtics - 1);
	}
	if (c->x_integer) {
		double lo = INFINITY, hi = -INFINITY;
		for (size_t s = 0; s < c->n_series; s++)
			for (size_t i = 0; i < c->series[s].n; i++)
				if (isfinite(c->series[s].x[i])) {
					lo = fmin(lo, c->series[s].x[i]);
					hi = fmax(hi, c->series[s].x[i]);
				}
		fputs("set format x '%.0f'\n", f);
		if (hi - lo <= 30)
			fputs("set xtics 1\n", f);
	}
	if (c->y_max > 0)
		fprintf(f, "set yrange [%s:%.9g]\n", c->y_from_zero ? "0" : "*", c->y_max);
	else if (c->y_from_zero)
		fputs("set yrange [0:*]\n", f);
	size_t drawn = 0;
	for (size_t s = 0; s < c->n_series; s++) {
		if (!finite_points(&c->series[s]))
			continue;
		fprintf(f, "$d%zu << EOD\n", s);
		for (size_t i = 0; i < c->series[s].n; i++)
			if (isfinite(c->series[s].x[i]) && isfinite(c->series[s].y[i]))
				fprintf(f, "%.9g %.9g\n", c->series[s].x[i], c->series[s].y[i]);
		fputs("EOD\n", f);
		drawn++;
	}
	if (!drawn)
		return -1;
	fputs("plot", f);
	drawn = 0;
	for (size_t s = 0; s < c->n_series; s++) {
		if (!finite_points(&c->series[s]))
			continue;
		char buf[CHART_LABEL_MAX + 1];
		fprintf(f, "%s $d%zu using 1:2 with linespoints lw 2 pt 7 ps 0.6 title \"%s\"", drawn++ ? "," : "",
			s, chart_sanitize(c->series[s].name, buf, sizeof buf));
	}
	fputs("\nunset output\n", f);
	return 0;
}

static int bar_body(FILE *f, const void *chart, const char *out)
{
	const struct chart_bar *c = chart;
	size_t finite = 0;
	for (size_t i = 0; i < c->n; i++)
		finite += isfinite(c->values[i]);
	if (!finite)
		return -1;
	preamble(f, out, c->title);
	label(f, "set ylabel", c->ylabel);
	xtics(f, c->categories, c->n);
	fprintf(f, "set xrange [-0.5:%zu.5]\n", c->n - 1);
	if (c->y_max > 0)
		fprintf(f, "set yrange [0:%.9g]\n", c->y_max);
	else
		fputs("set yrange [0:*]\n", f);
	fputs("set style fill solid 0.85 border -1\nset boxwidth 0.6\nunset key\n$d0 << EOD\n", f);
	for (size_t i = 0; i < c->n; i++)
		if (isfinite(c->values[i]))
			fprintf(f, "%zu %.9g\n", i, c->values[i]);
	fputs("EOD\n", f);
	fputs("plot $d0 using 1:2 with boxes lc rgb '#4472c4',"
	      " $d0 using 1:2:(sprintf('%.3g', $2)) with labels offset 0,0.8\n", f);
	fputs("unset output\n", f);
	return 0;
}

int chart_line_svg(const struct chart_line *c, char **svg, char *err, size_t errlen)
{
	return render(line_body, c, svg, err, errlen);
}

int chart_bar_svg(const struct chart_bar *c, char **svg, char *err, size_t errlen)
{
	if (!c->n) {
		*svg = NULL;
		snprintf(err, errlen, "chart: no categories to draw");
		return -1;
	}
	return render(bar_body, c, svg, err, errlen);
}
