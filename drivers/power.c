/*
 * power.c - what every supply driver shares, and the list of drivers.
 * A new supply family is one file defining its struct power_driver and one
 * line in power_drivers[].
 */
#include "power.h"

#include <stdio.h>
#include <string.h>

extern const struct power_driver power_rd60xx;
extern const struct power_driver power_korad;

const char *power_strerror(int err)
{
	switch (err) {
	case POWER_OK: return "ok";
	case POWER_ERR_ARG: return "bad argument";
	case POWER_ERR_CONNECT: return "cannot connect";
	case POWER_ERR_TIMEOUT: return "timeout";
	case POWER_ERR_EXCEPTION: return "exception";
	case POWER_ERR_GONE: return "connection lost";
	case POWER_ERR_IO: return "I/O error";
	case POWER_ERR_MODEL: return "unknown model";
	}
	return "unknown error";
}

const char *power_error(const struct power_dev *d) { return d->error; }

const struct power_driver *const power_drivers[] = {
	&power_rd60xx,
	&power_korad,
	NULL,
};

const struct power_driver *power_driver_find(const char *name)
{
	for (size_t i = 0; name && power_drivers[i]; i++)
		if (strcmp(power_drivers[i]->name, name) == 0)
			return power_drivers[i];
	return NULL;
}

const char *power_driver_names(char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; power_drivers[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", power_drivers[i]->name);
	return buf;
}
