/*
 * embedded.h - the simulated rack the rig starts when no rack file is given.
 *
 * The rig runs `simrack` as a separate process and then knows it only the way
 * it knows real hardware: through the rack.yaml simrack writes and the ports
 * it names. No simulator code is linked into the rig.
 */
#ifndef TRACKRIG_EMBEDDED_H
#define TRACKRIG_EMBEDDED_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct embedded_rack {
	pid_t pid;
	char dir[256];         /* TMPDIR is short: longer paths are refused */
	char rack_file[PATH_MAX];
};

/* Starts simrack with SLOTS slots and SEED in a fresh temp dir, and waits for
 * its rack.yaml. EXTRA (may be NULL) is a NULL-terminated list of further
 * simrack arguments. Returns 0, or -1 with the reason in ERR. */
int embedded_rack_start(struct embedded_rack *er, int slots, unsigned seed,
			const char *const *extra, char *err, size_t errlen);

/* Stops simrack (SIGTERM, then SIGKILL if it lingers) and removes the dir. */
void embedded_rack_stop(struct embedded_rack *er);

#endif
