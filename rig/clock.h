/*
 * clock.h - the one clock behind every wait and deadline in the rig.
 *
 * On real hardware it is the wall clock. On a simulated rack started with
 * --virtual it is the rack's virtual clock, moved only by the rig through
 * the rack's control socket (docs/simrack-control.md): time jumps forward
 * whenever every slot is waiting, so a scenario that waits two hours ends in
 * well under a second and a seed gives the same results every time. Scenario
 * code calls the same functions either way and cannot tell which it has.
 *
 * Threads that wait on the clock (one per slot) join it; virtual time moves
 * only when every joined thread is parked in clock_sleep_until() or
 * clock_wait_fd(), and then only to the earliest of their deadlines or the
 * rack's next event that makes output, whichever comes first, so timestamps
 * stay exact. Any number of threads may wait. On a virtual clock one poller
 * thread watches every waiting fd and wakes only the waiter whose input came
 * or whose deadline passed, so a step costs about what is due, not what
 * waits (256 slots: docs/simrack-control.md, tests/bench/scale.c).
 */
#ifndef TRACKRIG_CLOCK_H
#define TRACKRIG_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rack.h"
#include "tracker.h"

typedef struct rig_clock rig_clock;

/* The wall clock. */
int clock_open_real(rig_clock **out);

/* The clock of a simulated rack with control socket PATH: virtual when the
 * rack runs virtual time, the wall clock otherwise. Returns 0 or -1 (ERR). */
int clock_open_rack(const char *control_path, rig_clock **out, char *err, size_t errlen);

/* The clock RACK runs on: its control socket's (virtual or wall) when the
 * rack file names one, the wall clock otherwise. Returns 0; 1 when the rack
 * names a control socket that does not answer (a dead simulated rack): the
 * wall clock is used and ERR says why, so diagnosing a dead rack still works;
 * -1 when no clock could be made. */
int clock_open_for(const struct rack *rack, rig_clock **out, char *err, size_t errlen);

/* clock_open_for, saying on stderr ("rig CMD: ...") when it fell back to
 * the wall clock. Returns 0, or -1 when there is no clock at all. */
int clock_or_warn(const struct rack *rack, rig_clock **out, char *err, size_t errlen, const char *cmd);

void clock_close(rig_clock *c);

bool clock_is_virtual(const rig_clock *c);

/* Milliseconds since the clock was opened (rack time on a virtual rack). */
int64_t clock_now(rig_clock *c);

/* Unix milliseconds of clock time T, for timestamps. */
int64_t clock_unix_ms(rig_clock *c, int64_t t);

/* Writes clock time T as ISO 8601 UTC with milliseconds into BUF. */
const char *clock_iso(rig_clock *c, int64_t t, char *buf, size_t len);

/* A thread that will wait on the clock joins first and leaves when done. */
void clock_join(rig_clock *c);
void clock_leave(rig_clock *c);

/* Waits until time T. Returns 0, or -1 when the clock was aborted. */
int clock_sleep_until(rig_clock *c, int64_t t);

/* Waits until FD is readable (1) or time reaches DEADLINE (0); -1 when
 * aborted or on a clock failure (message in clock_error()). */
int clock_wait_fd(rig_clock *c, int fd, int64_t deadline);

/* Wakes every waiter with -1 and makes later waits fail at once: the
 * harness is stopping (SIGINT). Safe to call from any thread. */
void clock_abort(rig_clock *c);
bool clock_aborted(rig_clock *c);

/* The last failure of the rack's control socket, or "". */
const char *clock_error(rig_clock *c);

/* A tracker_clock view of C, for tracker_set_clock(). */
const struct tracker_clock *clock_for_tracker(rig_clock *c);

#endif
