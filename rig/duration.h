/*
 * duration.h - the one duration grammar of the rig's files and options.
 *
 * A duration is one or more terms NUMBER UNIT with the units h, m, s, ms,
 * each at most once and largest first: "500ms", "30s", "10m", "2h",
 * "1h30m", "1m30s500ms". No sign, no spaces, no fractions. The sum is
 * checked against a ceiling as it is added up, so no spelling of a
 * duration can overflow (scenario waits, rollout timeouts, ...).
 */
#ifndef TRACKRIG_DURATION_H
#define TRACKRIG_DURATION_H

#include <stdint.h>

/* The longest duration any file or option may give: 7 days. A rig step
 * longer than a week is a typo, and 7 days in ms leaves int64 arithmetic
 * on the rig clock (unix ms + duration) far from overflow. */
#define DURATION_MAX_MS ((int64_t)7 * 24 * 3600 * 1000)

enum duration_status {
	DURATION_OK = 0,
	DURATION_SYNTAX = -1,  /* not NUMBER UNIT ...: empty, sign, space, bare number, unknown unit */
	DURATION_ORDER = -2,   /* a unit given twice or after a smaller one ("1h1h", "5s1m") */
	DURATION_RANGE = -3,   /* above MAX_MS (a term or the sum) */
};

/* Parses TEXT into *MS (untouched unless DURATION_OK). MAX_MS at most
 * DURATION_MAX_MS is the caller's own ceiling. */
enum duration_status duration_parse(const char *text, int64_t max_ms, int64_t *ms);

/* Why a parse failed, for an error message ("a unit given twice or out of
 * order"). */
const char *duration_why(enum duration_status st);

#endif
