/*
 * timefmt.h - the rig's one way to write a moment: UTC, ISO 8601.
 *
 * Results, audit rows, logs and pages all say when in the same spelling,
 * so a line in one can be found in another by its time. Durations have
 * their own one grammar (duration.h).
 */
#ifndef TRACKRIG_TIMEFMT_H
#define TRACKRIG_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* "2026-12-02T19:19:01.123Z" for Unix ms UNIX_MS; "(out of range)" for a
 * moment before 1970 or after 9999. Returns BUF. */
const char *time_iso_ms(int64_t unix_ms, char *buf, size_t len);

/* "2026-12-02T19:19:01Z": whole seconds, for what carries no ms. */
const char *time_iso_s(int64_t unix_s, char *buf, size_t len);

/* "19:19:01" (UTC): a time of day inside a run's messages. */
const char *time_hms(int64_t unix_ms, char *buf, size_t len);

/* The wall clock, Unix ms. */
int64_t time_wall_ms(void);

#endif
