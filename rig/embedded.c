/* embedded.c - start and stop the embedded simulated rack (see embedded.h). */
#include "embedded.h"
#include "cli.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	char prog[PATH_MAX];
	cli_sibling_program("simrack", prog, sizeof prog);
	if (access(prog, X_OK) != 0) {
		snprintf(err, errlen, "simulated rack: cannot run %s: %s (build it with `make`)", prog, strerror(errno));
		return -1;
	}
	const char *tmp = getenv("TMPDIR");
	int n_dir = snprintf(er->dir, sizeof er->dir, "%s/trackrig-rack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n_dir < 0 || (size_t)n_dir >= sizeof er->dir) {
		snprintf(err, errlen, "simulated rack: TMPDIR too long");
		er->dir[0] = '\0';
		return -1;
	}
	if (!mkdtemp(er->dir)) {
		snprintf(err, errlen, "simulated rack: mkdtemp %s: %s", er->dir, strerror(errno));
		return -1;
	}
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
}
