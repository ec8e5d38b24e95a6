/* duration.c - the rig's one duration grammar (see duration.h). */
#include "duration.h"

#include <string.h>

static const struct {
	const char *name;
	int64_t ms;
} units[] = { { "h", 3600000 }, { "ms", 1 }, { "m", 60000 }, { "s", 1000 } };

/* Rank of a unit, largest first: h 0, m 1, s 2, ms 3. */
static int unit_rank(int64_t ms)
{
	return ms == 3600000 ? 0 : ms == 60000 ? 1 : ms == 1000 ? 2 : 3;
}

/* Reads one unit at *P ("ms" before "m"); returns its ms or 0. */
static int64_t read_unit(const char **p)
{
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t n = strlen(units[i].name);
		if (strncmp(*p, units[i].name, n) == 0) {
			*p += n;
			return units[i].ms;
		}
	}
	return 0;
}

enum duration_status duration_parse(const char *text, int64_t max_ms, int64_t *ms)
{
	if (max_ms > DURATION_MAX_MS || max_ms < 0)
		max_ms = DURATION_MAX_MS;
	const char *p = text;
	int64_t total = 0;
	int last_rank = -1;
	if (!p || !*p)
		return DURATION_SYNTAX;
	while (*p) {
		if (*p < '0' || *p > '9')
			return DURATION_SYNTAX;
		/* Digits by hand: the value is capped as it grows, so even
		 * a thousand-digit number cannot overflow. */
		int64_t n = 0;
		int too_big = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (!too_big && n > (max_ms - (*p - '0')) / 10)
				too_big = 1;
			if (!too_big)
				n = n * 10 + (*p - '0');
		}
		int64_t unit = read_unit(&p);
		if (!unit)
			return DURATION_SYNTAX;
		int rank = unit_rank(unit);
		if (rank <= last_rank)
			return DURATION_ORDER;
		last_rank = rank;
		if (too_big || n > (max_ms - total) / unit)
			return DURATION_RANGE;
		total += n * unit;
	}
	*ms = total;
	return DURATION_OK;
}

const char *duration_why(enum duration_status st)
{
	switch (st) {
	case DURATION_OK: return "ok";
	case DURATION_SYNTAX: return "expected a duration such as 500ms, 30s, 10m, 2h or 1h30m";
	case DURATION_ORDER: return "each unit at most once, largest first (1h30m, not 30m1h or 1h1h)";
	case DURATION_RANGE: return "too long";
	}
	return "bad duration";
}
