/*
 * power_rd60xx.c - Riden RD60xx supplies over Modbus (holding registers).
 *
 * Register map and scaling: shared/notes/hardware-facts.md. The model id in
 * register 0 decides the scaling, so it is read once at open; a model we do
 * not know is refused rather than driven with a guessed scale (a 10x error
 * on V-SET would burn a tracker).
 */
#include "power.h"
#include "modbus_link.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	REG_MODEL = 0,
	REG_V_SET = 8,
	REG_I_SET = 9,
	REG_V_OUT = 10,
	REG_I_OUT = 11,
	REG_V_IN = 14,
	REG_PROTECTION = 16,
	REG_CV_CC = 17,
	REG_OUTPUT = 18,
	REG_COUNT = 19, /* status reads 0..18 in one request */
	/* Memory M0 (80-83: V, A, OVP, OCP) holds the working protection
	 * limits, scaled as V-SET and I-SET. */
	REG_M0_OVP = 82,
	REG_M0_OCP = 83,
};

struct rd_model {
	const char *name;
	unsigned id_lo, id_hi;
	double v_scale, i_scale; /* raw = value * scale */
};

static const struct rd_model rd_models[] = {
	{ "RD6012", 60120, 60129, 100.0, 100.0 },
	{ "RD6006", 60060, 60064, 100.0, 1000.0 },
	{ "RD6006P", 60065, 60065, 1000.0, 10000.0 },
};

/* V-IN is in 1/100 V on every model in the map above. */
#define RD_V_IN_SCALE 100.0

struct rd {
	modbus_link *link;
	const struct rd_model *model;
	unsigned model_id;
};


static int from_link(int rc)
{
	switch (rc) {
	case MODBUS_LINK_OK: return POWER_OK;
	case MODBUS_LINK_ERR_ARG: return POWER_ERR_ARG;
	case MODBUS_LINK_ERR_CONNECT: return POWER_ERR_CONNECT;
	case MODBUS_LINK_ERR_TIMEOUT: return POWER_ERR_TIMEOUT;
	case MODBUS_LINK_ERR_EXCEPTION: return POWER_ERR_EXCEPTION;
	case MODBUS_LINK_ERR_GONE: return POWER_ERR_GONE;
	}
	return POWER_ERR_IO;
}

/* Copies the link's message into D and returns the power code. */
static int link_fail(struct power_dev *d, int rc)
{
	struct rd *rd = d->priv;
	snprintf(d->error, sizeof d->error, "%s", modbus_link_error(rd->link));
	return from_link(rc);
}

static const struct rd_model *find_model(unsigned id)
{
	for (size_t i = 0; i < sizeof rd_models / sizeof rd_models[0]; i++)
		if (id >= rd_models[i].id_lo && id <= rd_models[i].id_hi)
			return &rd_models[i];
	return NULL;
}

extern const struct power_driver power_rd60xx;

static int rd_open(const char *transport, int unit, int timeout_ms, struct power_dev **out,
		   char *err, size_t errlen)
{
	*out = NULL;
	modbus_link *link;
	int rc = modbus_link_open(transport, unit, &link, err, errlen);
	if (rc != MODBUS_LINK_OK)
		return from_link(rc);
	if (timeout_ms > 0)
		modbus_link_set_timeout(link, timeout_ms);

	uint16_t id;
	rc = modbus_link_read_registers(link, REG_MODEL, 1, &id);
	if (rc != MODBUS_LINK_OK) {
		if (err && errlen)
			snprintf(err, errlen, "%s", modbus_link_error(link));
		modbus_link_close(link);
		return from_link(rc);
	}
	const struct rd_model *model = find_model(id);
	if (!model) {
		if (err && errlen)
			snprintf(err, errlen,
				 "%s: model id %u in register 0 is not a known Riden RD60xx "
				 "(RD6012 60120-60129, RD6006 60060-60064, RD6006P 60065)",
				 modbus_link_where(link), id);
		modbus_link_close(link);
		return POWER_ERR_MODEL;
	}
	struct power_dev *d = calloc(1, sizeof *d);
	struct rd *rd = calloc(1, sizeof *rd);
	if (!d || !rd) {
		free(d);
		free(rd);
		modbus_link_close(link);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", transport);
		return POWER_ERR_IO;
	}
	rd->link = link;
	rd->model = model;
	rd->model_id = id;
	d->driver = &power_rd60xx;
	d->priv = rd;
	*out = d;
	return POWER_OK;
}

static void rd_close(struct power_dev *d)
{
	if (!d)
		return;
	struct rd *rd = d->priv;
	modbus_link_close(rd->link);
	free(rd);
	free(d);
}

/* Scales VALUE to a raw register, refusing what the register cannot hold
 * instead of letting it wrap to a small (or huge) set point. */
static int write_scaled(struct power_dev *d, int reg, const char *what, const char *unit,
			double value, double scale)
{
	struct rd *rd = d->priv;
	double raw = round(value * scale);
	if (!isfinite(value) || value < 0 || raw > 65535) {
		snprintf(d->error, sizeof d->error, "%s: %s: %g %s is out of range for %s (0..%g)",
			 modbus_link_where(rd->link), what, value, unit, rd->model->name, 65535 / scale);
		return POWER_ERR_ARG;
	}
	int rc = modbus_link_write_register(rd->link, reg, (uint16_t)raw);
	return rc == MODBUS_LINK_OK ? POWER_OK : link_fail(d, rc);
}

static int rd_set_voltage(struct power_dev *d, double volts)
{
	struct rd *rd = d->priv;
	return write_scaled(d, REG_V_SET, "set voltage", "V", volts, rd->model->v_scale);
}

static int rd_set_current(struct power_dev *d, double amps)
{
	struct rd *rd = d->priv;
	return write_scaled(d, REG_I_SET, "set current", "A", amps, rd->model->i_scale);
}

static int rd_output(struct power_dev *d, bool on)
{
	struct rd *rd = d->priv;
	int rc = modbus_link_write_register(rd->link, REG_OUTPUT, on ? 1 : 0);
	return rc == MODBUS_LINK_OK ? POWER_OK : link_fail(d, rc);
}

static int rd_status(struct power_dev *d, struct power_status *st)
{
	struct rd *rd = d->priv;
	uint16_t r[REG_COUNT];
	int rc = modbus_link_read_registers(rd->link, 0, REG_COUNT, r);
	if (rc != MODBUS_LINK_OK)
		return link_fail(d, rc);
	/* A different model id now means the unit id points at another
	 * supply than the one opened: its values would be mis-scaled. */
	if (r[REG_MODEL] != rd->model_id) {
		snprintf(d->error, sizeof d->error,
			 "%s: model id changed from %u to %u since open (another device on this unit id?)",
			 modbus_link_where(rd->link), rd->model_id, r[REG_MODEL]);
		return POWER_ERR_MODEL;
	}
	if (r[REG_PROTECTION] > 2 || r[REG_CV_CC] > 1) {
		snprintf(d->error, sizeof d->error,
			 "%s: unexpected protection %u (register 16) or CV/CC %u (register 17)",
			 modbus_link_where(rd->link), r[REG_PROTECTION], r[REG_CV_CC]);
		return POWER_ERR_IO;
	}
	const struct rd_model *m = rd->model;
	*st = (struct power_status){
		.v_set = r[REG_V_SET] / m->v_scale,
		.i_set = r[REG_I_SET] / m->i_scale,
		.v_out = r[REG_V_OUT] / m->v_scale,
		.i_out = r[REG_I_OUT] / m->i_scale,
		.v_in = r[REG_V_IN] / RD_V_IN_SCALE,
		.output_on = r[REG_OUTPUT] != 0,
		.mode = r[REG_CV_CC] ? POWER_MODE_CC : POWER_MODE_CV,
		.protection = r[REG_PROTECTION] == 1 ? POWER_PROT_OVP
			      : r[REG_PROTECTION] == 2 ? POWER_PROT_OCP : POWER_PROT_NONE,
		.model_id = rd->model_id,
	};
	return POWER_OK;
}

static int rd_set_limits(struct power_dev *d, const struct power_limits *want)
{
	struct rd *rd = d->priv;
	const struct rd_model *m = rd->model;
	int rc = write_scaled(d, REG_V_SET, "set voltage", "V", want->volts, m->v_scale);
	if (rc == POWER_OK)
		rc = write_scaled(d, REG_I_SET, "set current", "A", want->amps, m->i_scale);
	if (rc == POWER_OK && !isnan(want->ovp))
		rc = write_scaled(d, REG_M0_OVP, "set over-voltage protection", "V", want->ovp, m->v_scale);
	if (rc == POWER_OK && !isnan(want->ocp))
		rc = write_scaled(d, REG_M0_OCP, "set over-current protection", "A", want->ocp, m->i_scale);
	return rc;
}

static int rd_get_limits(struct power_dev *d, struct power_limits *got)
{
	struct rd *rd = d->priv;
	const struct rd_model *m = rd->model;
	uint16_t set[2], prot[2];
	int rc = modbus_link_read_registers(rd->link, REG_V_SET, 2, set);
	if (rc == MODBUS_LINK_OK)
		rc = modbus_link_read_registers(rd->link, REG_M0_OVP, 2, prot);
	if (rc != MODBUS_LINK_OK)
		return link_fail(d, rc);
	*got = (struct power_limits){
		.volts = set[0] / m->v_scale, .amps = set[1] / m->i_scale,
		.ovp = prot[0] / m->v_scale, .ocp = prot[1] / m->i_scale,
		.v_res = 1.0 / m->v_scale, .i_res = 1.0 / m->i_scale,
	};
	return POWER_OK;
}

const struct power_driver power_rd60xx = {
	.name = "rd60xx",
	.check_transport = modbus_link_check_transport,
	.open = rd_open,
	.set_voltage = rd_set_voltage,
	.set_current = rd_set_current,
	.output = rd_output,
	.status = rd_status,
	.set_limits = rd_set_limits,
	.get_limits = rd_get_limits,
	.close = rd_close,
};
