/* supply.c - set points before switch-on (see supply.h). */
#include "supply.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The rack file's set points as the driver takes them (NAN: not given). */
static struct power_limits wanted(const struct rack_slot *s)
{
	const struct rack_power *p = &s->power;
	return (struct power_limits){ .volts = p->volts, .amps = p->amps, .ovp = p->ovp > 0 ? p->ovp : NAN,
				      .ocp = p->ocp > 0 ? p->ocp : NAN };
}

/* Within half a register step: 12.004 V written to a V/100 model reads
 * 12.00 V and is what was asked for. */
static bool same(double got, double want, double res)
{
	return isnan(want) || fabs(got - want) <= res / 2 + 1e-9;
}

/* Appends to OUT each set point of GOT that differs from WANT, as "V-SET
 * reads 30.00 V after writing 12.00 V" (AFTER_WRITE) or "V-SET 30.00 V,
 * rack file says 12.00 V"; returns how many differ. */
static int differences(const struct power_limits *got, const struct power_limits *want, bool after_write,
		       char *out, size_t len)
{
	struct {
		const char *name, *unit, *fmt;
		double got, want, res;
	} v[] = {
		{ "V-SET", "V", "%.2f", got->volts, want->volts, got->v_res },
		{ "I-SET", "A", "%.3f", got->amps, want->amps, got->i_res },
		{ "OVP", "V", "%.2f", got->ovp, want->ovp, got->v_res },
		{ "OCP", "A", "%.3f", got->ocp, want->ocp, got->i_res },
	};
	int n = 0;
	size_t used = strlen(out);
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		if (same(v[i].got, v[i].want, v[i].res))
			continue;
		char g[64], w[32], num[24];
		snprintf(num, sizeof num, v[i].fmt, v[i].got);
		snprintf(g, sizeof g, "%s %s", num, v[i].unit);
		if (isnan(v[i].got))
			snprintf(g, sizeof g, "nothing (the model has no %s)", v[i].name);
		snprintf(num, sizeof num, v[i].fmt, v[i].want);
		snprintf(w, sizeof w, "%s %s", num, v[i].unit);
		if (used >= len)
			break;
		used += (size_t)snprintf(out + used, len - used,
					 after_write ? "%s%s reads %s after writing %s" : "%s%s %s, rack file says %s",
					 n ? "; " : "", v[i].name, g, w);
		n++;
	}
	return n;
}

static int no_hooks(const struct rack_slot *s, struct power_dev *dev)
{
	snprintf(dev->error, sizeof dev->error,
		 "slot %d supply %s: the %s driver cannot write or read set points; give 'limits: leave' in the "
		 "rack file to switch it on as it is; output left off",
		 s->id, s->power.bus.transport, dev->driver->name);
	return POWER_ERR_ARG;
}

/* The driver's message, prefixed with the slot so a log line says which. */
static int link_failed(const struct rack_slot *s, struct power_dev *dev, int rc)
{
	char why[sizeof dev->error];
	snprintf(why, sizeof why, "%s", dev->error);
	snprintf(dev->error, sizeof dev->error, "slot %d supply: set points: %.380s; output left off", s->id, why);
	return rc;
}

int supply_on(const struct rack_slot *s, struct power_dev *dev)
{
	const struct power_driver *drv = dev->driver;
	if (s->power.leave_limits)
		return drv->output(dev, true);
	if (!drv->set_limits || !drv->get_limits)
		return no_hooks(s, dev);
	struct power_limits want = wanted(s), got;
	int rc = drv->set_limits(dev, &want);
	if (rc == POWER_OK)
		rc = drv->get_limits(dev, &got);
	if (rc != POWER_OK)
		return link_failed(s, dev, rc);
	char diff[400] = "";
	if (differences(&got, &want, true, diff, sizeof diff)) {
		snprintf(dev->error, sizeof dev->error, "slot %d supply %.180s: %.280s; output left off", s->id,
			 s->power.bus.transport, diff);
		return POWER_ERR_IO;
	}
	return drv->output(dev, true);
}

int supply_compare(const struct rack_slot *s, struct power_dev *dev, char *diff, size_t len)
{
	if (len)
		*diff = '\0';
	if (s->power.leave_limits)
		return 0;
	if (!dev->driver->get_limits) {
		snprintf(diff, len, "the %s driver cannot read set points", dev->driver->name);
		return 1;
	}
	struct power_limits want = wanted(s), got;
	int rc = dev->driver->get_limits(dev, &got);
	if (rc != POWER_OK)
		return rc;
	return differences(&got, &want, false, diff, len) ? 1 : 0;
}
