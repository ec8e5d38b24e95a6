/* embedded.c - start and stop the embedded simulated rack (see embedded.h). */
#include "embedded.h"
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

int embedded_rack_start(struct embedded_rack *er, int slots, unsigned seed,
			const char *const *extra, char *err, size_t errlen)
{
	memset(er, 0, sizeof *er);
	er->dir_lock = -1;
	char prog[PATH_MAX];
	cli_sibling_program("simrack", prog, sizeof prog);
	if (access(prog, X_OK) != 0) {
		snprintf(err, errlen, "simulated rack: cannot run %s: %s (build it with `make`)", prog, strerror(errno));
		return -1;
	}
	const char *tmp = getenv("TMPDIR");
	int n_dir = snprintf(er->dir, sizeof er->dir, "%s/trackrig-rack-%d-XXXXXX", tmp && *tmp ? tmp : "/tmp",
			     (int)getpid());
	if (n_dir < 0 || (size_t)n_dir >= sizeof er->dir) {
		snprintf(err, errlen, "simulated rack: TMPDIR too long");
		er->dir[0] = '\0';
		return -1;
	}
	if (!mkdtemp(er->dir)) {
		snprintf(err, errlen, "simulated rack: mkdtemp %s: %s", er->dir, strerror(errno));
		er->dir[0] = '\0';
		return -1;
	}
	/* Held while the rack runs; the kernel lets go when the rig dies. */
	er->dir_lock = open(er->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (er->dir_lock >= 0)
		flock(er->dir_lock, LOCK_EX | LOCK_NB);
	snprintf(er->rack_file, sizeof er->rack_file, "%s/rack.yaml", er->dir);

	char n[16], s[16];
	snprintf(n, sizeof n, "%d", slots);
	snprintf(s, sizeof s, "%u", seed);
	const char *argv[32] = { prog, "--slots", n, "--dir", er->dir, "--seed", s };
	int argc = 7;
	for (int i = 0; extra && extra[i] && argc < 31; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t parent = getpid();
	er->pid = fork();
	if (er->pid < 0) {
		snprintf(err, errlen, "simulated rack: fork: %s", strerror(errno));
		return -1;
	}
	if (er->pid == 0) {
		/* The rack must not outlive the rig, even if the rig is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		execv(prog, (char *const *)argv);
		fprintf(stderr, "simulated rack: exec %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	for (int waited = 0; waited < 10000; waited += 10) {
		if (access(er->rack_file, R_OK) == 0)
			return 0;
		int status;
		if (waitpid(er->pid, &status, WNOHANG) == er->pid) {
			er->pid = 0;
			snprintf(err, errlen, "simulated rack: %s exited (%s %d) before writing %s", prog,
				 WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), er->rack_file);
			embedded_rack_stop(er);
			return -1;
		}
		sleep_ms(10);
	}
	snprintf(err, errlen, "simulated rack: no %s after 10 s", er->rack_file);
	embedded_rack_stop(er);
	return -1;
}

int embedded_rack_for(struct embedded_rack *er, const char *purpose, int slots, unsigned seed,
		      const char *vendor_key, char *err, size_t errlen)
{
	bool key = vendor_key && access(vendor_key, R_OK) == 0;
	const char *extra[] = { "--for", purpose, "--virtual", key ? "--vendor-key" : NULL, vendor_key, NULL };
	return embedded_rack_start(er, slots, seed, extra, err, errlen);
}

void embedded_rack_stop(struct embedded_rack *er)
{
	if (er->pid > 0) {
		kill(er->pid, SIGTERM);
		int status;
		for (int waited = 0; waited < 3000; waited += 10) {
			if (waitpid(er->pid, &status, WNOHANG) == er->pid) {
				er->pid = 0;
				break;
			}
			sleep_ms(10);
		}
		if (er->pid > 0) {
			kill(er->pid, SIGKILL);
			waitpid(er->pid, &status, 0);
			er->pid = 0;
		}
	}
	if (er->dir[0]) {
		nftw(er->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		er->dir[0] = '\0';
	}
	if (er->dir_lock >= 0) {
		close(er->dir_lock);
		er->dir_lock = -1;
	}
}

/* ---- leftovers of killed rigs ---- */

/* The pid in NAME when it is trackrig-WHAT-PID-XXXXXX, else 0. */
static pid_t leftover_pid(const char *name)
{
	if (strncmp(name, "trackrig-", 9) != 0)
		return 0;
	const char *p = name + 9;
	while (*p >= 'a' && *p <= 'z')
		p++;
	if (p == name + 9 || *p++ != '-')
		return 0;
	char *end;
	long pid = strtol(p, &end, 10);
	if (end == p || *end != '-' || pid <= 0 || pid > INT32_MAX || strlen(end + 1) != 6)
		return 0;
	return (pid_t)pid;
}

/* True when PID names no running process (gone, or a zombie waiting for
 * its parent). */
static bool pid_gone(pid_t pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return kill(pid, 0) != 0 && errno == ESRCH;
	size_t n = fread(stat, 1, sizeof stat - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *p = strrchr(stat, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Removes DIR/NAME when it is a leftover: ours (same owner), its rig gone,
 * and its lock free. The lock is what protects a dir whose pid only looks
 * gone (another pid namespace sharing /tmp); the pid protects one made a
 * moment ago and not locked yet. */
static bool sweep_one(const char *dir, const char *name)
{
	pid_t pid = leftover_pid(name);
	char path[PATH_MAX];
	struct stat sb;
	if (pid <= 0 || pid == getpid() || !pid_gone(pid))
		return false;
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
	    lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
		return false;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
	if (free_)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	close(fd);
	return free_;
}

static int sweep_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		removed += sweep_one(dir, e->d_name);
	closedir(d);
	return removed;
}

int embedded_sweep_leftovers(void)
{
	const char *tmp = getenv("TMPDIR");
	int removed = sweep_dir("/tmp");
	if (tmp && *tmp && strcmp(tmp, "/tmp") != 0)
		removed += sweep_dir(tmp);
	return removed;
}
