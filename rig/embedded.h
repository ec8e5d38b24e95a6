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
	int dir_lock;          /* flock'ed fd on dir while the rack runs (see below) */
};

/* Starts simrack with SLOTS slots and SEED in a fresh temp dir, and waits for
 * its rack.yaml. EXTRA (may be NULL) is a NULL-terminated list of further
 * simrack arguments. Returns 0, or -1 with the reason in ERR. */
int embedded_rack_start(struct embedded_rack *er, int slots, unsigned seed,
			const char *const *extra, char *err, size_t errlen);

/* Starts the simulated rack a rig command runs on when it has no rack file:
 * SLOTS slots on virtual time, holding the units simrack keeps for PURPOSE
 * (the command's name: "run", "nightly", "accept", "qualify", "rollout"),
 * trusting VENDOR_KEY (a public key file; ignored when NULL or unreadable)
 * as provisioned units trust their vendor's. The rig never names a unit. */
int embedded_rack_for(struct embedded_rack *er, const char *purpose, int slots, unsigned seed,
		      const char *vendor_key, char *err, size_t errlen);

/* Stops simrack (SIGTERM, then SIGKILL if it lingers) and removes the dir. */
void embedded_rack_stop(struct embedded_rack *er);

/* A rig's temp dirs are named trackrig-WHAT-PID-XXXXXX (the rack's here,
 * gpsd's in drivers/gnss.c, charts' in reports/chart.c) and the long-lived
 * ones are held flock'ed while in use. simrack and gpsd
 * die with the rig (death signal), but a rig killed by SIGKILL cannot remove
 * its dirs: this removes, from $TMPDIR and /tmp, every such dir of ours
 * whose rig has ended (its pid gone and nobody holding the lock). Called as
 * each rig starts. Returns how many it removed. */
int embedded_sweep_leftovers(void);

#endif
