/*
 * gnss.h - GNSS receivers through a private gpsd.
 *
 * The rig starts its own gpsd (/usr/sbin/gpsd -N -n -b) on a free loopback
 * port, never the host's one on 2947: -b keeps gpsd from writing probe
 * strings into the device, -n makes it read without a client. Devices are
 * added through gpsd's control socket, one answer (OK/ERROR) per device, so
 * a port that will not open is named at once. A thread watches gpsd through
 * libgps (WATCH_ENABLE|WATCH_JSON) and keeps one reading per device, keyed
 * by the path the device was added with (gpsd reports that path in every
 * TPV and SKY).
 *
 * gpsd dying mid-run is detected by the watcher (its socket closes; the
 * process is reaped) and reported in gnss_status(); with restarts allowed
 * the watcher starts a new gpsd once per allowance, re-adds every device and
 * goes on: readings keep their last values and say how old they are.
 *
 * Every function returns GNSS_OK (0) or a negative enum gnss_err and leaves
 * a message naming the port, the gpsd and the failed step in
 * gnss_last_error() (gnss_start_error() before there is a handle).
 * Every wait takes a deadline. Times are milliseconds since the Unix epoch
 * on the rig's clock (CLOCK_REALTIME), GNSS_NEVER when a thing never happened.
 */
#ifndef TRACKRIG_GNSS_H
#define TRACKRIG_GNSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GNSS_PATH_MAX 128      /* gpsd's own limit on device paths (GPS_PATH_MAX) */
#define GNSS_TEXT_MAX 512
#define GNSS_MAX_DEVICES 64
#define GNSS_NEVER ((int64_t)-1)
#define GNSS_DEFAULT_GPSD "/usr/sbin/gpsd"

enum gnss_err {
	GNSS_OK = 0,
	GNSS_ERR_ARG = -1,       /* bad argument, too many devices, unknown device */
	GNSS_ERR_NO_GPSD = -2,   /* the gpsd program is not there or not executable */
	GNSS_ERR_START = -3,     /* gpsd exited or never accepted before the deadline */
	GNSS_ERR_DEVICE = -4,    /* gpsd could not open the device (control socket said ERROR) */
	GNSS_ERR_TIMEOUT = -5,   /* the deadline passed first */
	GNSS_ERR_DIED = -6,      /* gpsd died mid-run and was not (or could not be) restarted */
	GNSS_ERR_NO_NMEA = -7,   /* the device sent nothing gpsd could decode */
	GNSS_ERR_IO = -8,        /* any other OS or libgps error */
};

/* Fix modes, as gpsd's fix.mode. */
enum gnss_mode { GNSS_MODE_NOT_SEEN = 0, GNSS_MODE_NO_FIX = 1, GNSS_MODE_2D = 2, GNSS_MODE_3D = 3 };

/* What gpsd last said about one device. Doubles are NaN when unknown. */
struct gnss_reading {
	char device[GNSS_PATH_MAX];
	int mode;                   /* enum gnss_mode of the last TPV */
	double lat, lon;            /* degrees, from the last TPV with mode >= 2 */
	double alt;                 /* m, MSL, from the last TPV with mode 3 */
	double speed;               /* m/s over ground */
	double fix_time;            /* the receiver's UTC time of that fix, s since the epoch */
	int satellites_used;        /* from the last SKY; -1 before any */
	int satellites_visible;
	double hdop, pdop;
	int64_t last_report_ms;     /* last TPV or SKY for this device; GNSS_NEVER */
	int64_t last_fix_ms;        /* when the last TPV with mode >= 2 arrived; GNSS_NEVER */
	int64_t first_fix_ms;       /* first TPV with mode >= 2 after the start mark; GNSS_NEVER */
	int64_t ttff_ms;            /* first_fix_ms - start mark, or -1 */
	unsigned tpv_count, sky_count;
	/* The receiver's own UTC time (Unix ms) of the last TPV that carried
	 * one (gpsd 3.22 gives a time with a fix only) and of the last SKY that
	 * did; GNSS_NEVER before any. What a reading is "as of", by the
	 * receiver's clock rather than by its arrival. */
	int64_t tpv_epoch_ms, sky_epoch_ms;
};

/* How the private gpsd is doing. */
struct gnss_status {
	pid_t pid;                  /* the gpsd now running; 0 after it died for good */
	int port;                   /* its TCP port on 127.0.0.1 */
	int deaths;                 /* times it died mid-run */
	int restarts;               /* times the watcher started a new one */
	bool dead;                  /* died and not restarted: readings are frozen */
	char event[GNSS_TEXT_MAX];  /* the last death or restart, for people; "" when none */
};

struct gnss_options {
	const char *gpsd;           /* program; NULL: GNSS_DEFAULT_GPSD */
	int start_timeout_ms;       /* until gpsd accepts; 0: 5000 */
	int restarts;               /* new gpsds the watcher may start after deaths (0: none) */
	bool verbose;               /* gpsd's log and each step on stderr */
};

typedef struct gnss_daemon gnss_daemon;

/* Starts a private gpsd with OPT (NULL: defaults) on a free loopback port
 * (retrying on "Address already in use"), waits until it accepts, and starts
 * the watcher. gpsd gets SIGKILL if the rig dies. On failure *OUT is NULL
 * and the message is in gnss_start_error(). */
int gnss_start(const struct gnss_options *opt, gnss_daemon **out);

/* Message of the last gnss_start() failure in this thread. */
const char *gnss_start_error(void);

/* Adds the device at PATH (a tty, a pty or a symlink to one; relative paths
 * are made absolute, symlinks kept so readings carry the name given),
 * waiting at most TIMEOUT_MS for gpsd's answer. GNSS_ERR_DEVICE when gpsd
 * cannot open it. */
int gnss_add_device(gnss_daemon *g, const char *path, int timeout_ms);

/* Sets the start mark for time to first fix: now. Readings' first fix and
 * ttff are cleared. */
void gnss_mark_start(gnss_daemon *g);

/* Copies the reading of the device added as PATH into *OUT. GNSS_ERR_ARG
 * when no such device was added. */
int gnss_get(gnss_daemon *g, const char *path, struct gnss_reading *out);

/* Whether PATH was added to G. Quiet: sets no error, so any number of
 * threads may ask any number of gpsds which one reads a port. */
bool gnss_has_device(gnss_daemon *g, const char *path);

/* Like gnss_get(), as of the receiver's second EPOCH_MS (Unix ms, whole
 * seconds), for a caller that knows the receiver cannot have spoken past it
 * (a virtual rack whose time stands still): waits, at most WAIT_MS of wall
 * time, until gpsd has reported that second (its TPV, and its SKY when SKYs
 * carry a time). On a virtual rack the NMEA of a rack second is written at
 * once and gpsd reads it a wall-time moment later; waiting for it makes the
 * reading depend on rack time only. GNSS_OK when the second is in;
 * GNSS_ERR_TIMEOUT when it did not come (a receiver that says nothing, or
 * says no time: no fix): *OUT is the last reading all the same.
 * GNSS_ERR_ARG for an unknown device. */
int gnss_get_at(gnss_daemon *g, const char *path, int64_t epoch_ms, int wait_ms, struct gnss_reading *out);

/* Waits until PATH has a TPV with mode >= MIN_MODE (GNSS_MODE_NO_FIX: any
 * report at all) or DEADLINE_MS (epoch ms) passes. Returns GNSS_OK,
 * GNSS_ERR_NO_NMEA (nothing at all came from the device), GNSS_ERR_TIMEOUT
 * (reports, but no such fix) or GNSS_ERR_DIED. */
int gnss_wait_fix(gnss_daemon *g, const char *path, int min_mode, int64_t deadline_ms);

/* Copies gpsd's state into *OUT. Returns GNSS_ERR_DIED when gpsd is dead for
 * good, else GNSS_OK. */
int gnss_status(gnss_daemon *g, struct gnss_status *out);

/* Kills gpsd (SIGTERM, then SIGKILL), stops the watcher, removes the control
 * socket, frees G. NULL is a no-op. */
void gnss_stop(gnss_daemon *g);

/* Message for the last failed call on G. */
const char *gnss_last_error(gnss_daemon *g);

/* Short text for an error code ("gpsd died", "no valid NMEA", ...). */
const char *gnss_strerror(int err);

/* The rig's clock in epoch ms. */
int64_t gnss_now_ms(void);

#endif
