/* timefmt.c - the rig's one way to write a moment (see timefmt.h). */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

#define LAST_SECOND 253402300799LL /* 9999-12-31T23:59:59Z */

static int utc(int64_t unix_s, struct tm *tm)
{
	if (unix_s < 0 || unix_s > LAST_SECOND)
		return -1;
	time_t t = (time_t)unix_s;
	return gmtime_r(&t, tm) ? 0 : -1;
}

const char *time_iso_ms(int64_t unix_ms, char *buf, size_t len)
{
	struct tm tm;
	if (unix_ms < 0 || utc(unix_ms / 1000, &tm)) {
		snprintf(buf, len, "(out of range)");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
	return buf;
}

const char *time_iso_s(int64_t unix_s, char *buf, size_t len)
{
	struct tm tm;
	if (utc(unix_s, &tm)) {
		snprintf(buf, len, "(out of range)");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
	return buf;
}

const char *time_hms(int64_t unix_ms, char *buf, size_t len)
{
	struct tm tm;
	if (unix_ms < 0 || utc(unix_ms / 1000, &tm)) {
		snprintf(buf, len, "(out of range)");
		return buf;
	}
	snprintf(buf, len, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

int64_t time_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
