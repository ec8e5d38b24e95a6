/*
 * accept.c - the work order and answers files of `rig accept`, and its
 * text and JSON reports. No I/O with devices here (cmd/accept.c does that).
 */
#include "accept.h"
#include "json.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

const char *accept_status_name(enum accept_status s)
{
	return s == ACCEPT_PASS ? "pass" : s == ACCEPT_FAIL ? "fail" : "skipped";
}

struct accept_check *accept_add_check(struct accept_result *r, const char *name, enum accept_status st,
				      const char *code, const char *action_tech, const char *action_ops,
				      const char *fmt, ...)
{
	static struct accept_check spare;
	struct accept_check *c = r->n_checks < ACCEPT_MAX_CHECKS ? &r->checks[r->n_checks++] : &spare;
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->status = st;
	snprintf(c->code, sizeof c->code, "%s", code ? code : "");
	snprintf(c->action, sizeof c->action, "%s", action_tech ? action_tech : "");
	snprintf(c->action_ops, sizeof c->action_ops, "%s", action_ops ? action_ops : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
	return c;
}

/* ---- key: value files ---- */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Strips one pair of matching quotes around S. */
static char *unquote(char *s)
{
	size_t n = strlen(s);
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

struct kv_key {
	const char *name;
	char *dst;
};

static int read_kv(const char *path, const char *what, struct kv_key *keys, size_t n_keys, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open %s: %m", path, what);
		return -1;
	}
	char line[1024];
	int no = 0;
	while (fgets(line, sizeof line, f)) {
		no++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %zu bytes", path, no, sizeof line - 2);
			fclose(f);
			return -1;
		}
		char *s = trim(line);
		if (!*s || *s == '#' || !strcmp(s, "---"))
			continue;
		size_t k = strcspn(s, ":=");
		if (!s[k] || k == 0) {
			snprintf(err, errlen, "%s:%d: expected 'key: value' or 'key=value'", path, no);
			fclose(f);
			return -1;
		}
		s[k] = '\0';
		char *key = trim(s), *val = unquote(trim(s + k + 1));
		for (char *p = key; *p; p++)
			*p = (char)(*p == ' ' || *p == '-' ? '_' : tolower((unsigned char)*p));
		size_t i;
		for (i = 0; i < n_keys; i++)
			if (!strcmp(keys[i].name, key))
				break;
		if (i == n_keys) {
			char known[256] = "";
			for (size_t j = 0; j < n_keys; j++)
				snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "",
					 keys[j].name);
			snprintf(err, errlen, "%s:%d: unknown key '%.40s' in the %s (known: %s)", path, no, key, what, known);
			fclose(f);
			return -1;
		}
		if (strlen(val) >= ACCEPT_FIELD_MAX) {
			snprintf(err, errlen, "%s:%d: %s: value longer than %d bytes", path, no, keys[i].name,
				 ACCEPT_FIELD_MAX - 1);
			fclose(f);
			return -1;
		}
		snprintf(keys[i].dst, ACCEPT_FIELD_MAX, "%s", val);
	}
	fclose(f);
	return 0;
}

int accept_read_work_order(const char *path, struct accept_work_order *wo, char *err, size_t errlen)
{
	memset(wo, 0, sizeof *wo);
	struct kv_key keys[] = {
		{ "imei", wo->imei }, { "iccid", wo->iccid }, { "serial", wo->serial },
		{ "vehicle", wo->vehicle }, { "firmware", wo->firmware }, { "expected_firmware", wo->firmware },
	};
	if (read_kv(path, "work order", keys, sizeof keys / sizeof keys[0], err, errlen))
		return -1;
	snprintf(wo->source, sizeof wo->source, "work order %s", path);
	return 0;
}

int accept_read_answers(const char *path, struct accept_answers *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	struct kv_key keys[] = {
		{ "vehicle", a->vehicle }, { "mounting", a->mounting }, { "mounting_position", a->mounting },
		{ "antenna", a->antenna }, { "antenna_placement", a->antenna }, { "install_time", a->install_time },
	};
	return read_kv(path, "answers file", keys, sizeof keys / sizeof keys[0], err, errlen);
}

/* ---- text ---- */

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

void accept_write_text(FILE *f, const struct accept_result *r)
{
	fprintf(f, "INSTALL ACCEPTANCE: %s\n\n", r->pass ? "PASS" : "FAIL");
	if (*r->slot)
		fprintf(f, "station   %s, slot %s, console %s\n", or_dash(r->station), r->slot, r->port);
	else
		fprintf(f, "console   %s\n", r->port);
	fprintf(f, "operator  %s   run %lld   %s .. %s\n", or_dash(r->operator_), (long long)r->run_id,
		or_dash(r->started), or_dash(r->finished));
	fprintf(f, "device    %s %s, IMEI %s, ICCID %s, serial %s, firmware %s\n", or_dash(r->vendor), or_dash(r->model),
		or_dash(r->imei), or_dash(r->iccid), or_dash(r->serial), or_dash(r->firmware));
	fprintf(f, "expected  (%s) IMEI %s, ICCID %s, serial %s, vehicle %s, firmware %s\n", or_dash(r->wo.source),
		or_dash(r->wo.imei), or_dash(r->wo.iccid), or_dash(r->wo.serial), or_dash(r->wo.vehicle),
		or_dash(r->wo.firmware));
	fprintf(f, "install   vehicle %s, mounting %s, antenna %s, installed %s\n", or_dash(r->ans.vehicle),
		or_dash(r->ans.mounting), or_dash(r->ans.antenna), or_dash(r->ans.install_time));
	if (r->have_supply)
		fprintf(f, "supply    %.2f V, %.3f A\n", r->supply_v, r->supply_a);
	if (r->gnss_measured)
		fprintf(f, "gnss      mode %d, satellites %d used / %d visible, hdop %.1f, ttff %.1f s (%s), fix age %.1f s, "
			   "dispatch %s\n",
			r->gnss_mode, r->satellites_used, r->satellites_visible, r->hdop, r->ttff_s, or_dash(r->ttff_source),
			r->fix_age_s, or_dash(r->verdict));
	for (int i = 0; i < r->n_verdict_reasons; i++)
		fprintf(f, "          %s\n", r->verdict_reasons[i]);
	if (r->have_status)
		fprintf(f, "cellular  %s, operator %s, signal %d/5, data %s, record %s\n",
			r->registered ? "registered" : "NOT registered", or_dash(r->operator_code), r->signal,
			r->data_link ? "up" : "down", r->record_received ? "received" : "NOT received");
	fprintf(f, "\n%-10s %-8s %s\n", "CHECK", "RESULT", "DETAIL");
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		char st[16];
		snprintf(st, sizeof st, "%s", accept_status_name(c->status));
		for (char *p = st; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		fprintf(f, "%-10s %-8s %s\n", c->name, st, c->detail);
	}
	bool any = false;
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		if (c->status != ACCEPT_FAIL)
			continue;
		if (!any)
			fprintf(f, "\nACTIONS\n");
		any = true;
		fprintf(f, "- %s [%s]: %s\n", c->name, or_dash(c->code), or_dash(c->action));
		if (*c->action_ops)
			fprintf(f, "  ops: %s\n", c->action_ops);
	}
	fprintf(f, "\nresult: %s\n", r->pass ? "PASS" : "FAIL");
}

/* ---- JSON ---- */

static void num_or_null(struct json *j, const char *key, double v)
{
	json_num(j, key, v); /* NaN writes null */
}

void accept_write_json(FILE *f, const struct accept_result *r)
{
	struct json j;
	json_init(&j, f, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "command", "accept");
	json_str(&j, "result", r->pass ? "pass" : "fail");
	json_int(&j, "run_id", r->run_id);
	json_str(&j, "station", r->station);
	json_str(&j, "slot", *r->slot ? r->slot : NULL);
	json_str(&j, "port", r->port);
	json_str(&j, "operator", r->operator_);
	json_str(&j, "started", r->started);
	json_str(&j, "finished", r->finished);
	json_obj_begin(&j, "device");
	json_bool(&j, "identified", r->identified);
	json_str(&j, "imei", r->imei);
	json_str(&j, "iccid", r->iccid);
	json_str(&j, "serial", r->serial);
	json_str(&j, "vendor", r->vendor);
	json_str(&j, "model", r->model);
	json_str(&j, "firmware", r->firmware);
	json_obj_end(&j);
	json_obj_begin(&j, "expected");
	json_str(&j, "source", r->wo.source);
	json_str(&j, "imei", r->wo.imei);
	json_str(&j, "iccid", r->wo.iccid);
	json_str(&j, "serial", r->wo.serial);
	json_str(&j, "vehicle", r->wo.vehicle);
	json_str(&j, "firmware", r->wo.firmware);
	json_obj_end(&j);
	json_obj_begin(&j, "install");
	json_str(&j, "vehicle", r->ans.vehicle);
	json_str(&j, "mounting", r->ans.mounting);
	json_str(&j, "antenna", r->ans.antenna);
	json_str(&j, "install_time", r->ans.install_time);
	json_obj_end(&j);
	json_obj_begin(&j, "supply");
	json_bool(&j, "measured", r->have_supply);
	num_or_null(&j, "volts", r->have_supply ? r->supply_v : NAN);
	num_or_null(&j, "amps", r->have_supply ? r->supply_a : NAN);
	json_obj_end(&j);
	json_obj_begin(&j, "gnss");
	json_bool(&j, "measured", r->gnss_measured);
	if (*r->gnss_error)
		json_str(&j, "error", r->gnss_error);
	json_int(&j, "mode", r->gnss_mode);
	json_int(&j, "satellites_used", r->satellites_used);
	json_int(&j, "satellites_visible", r->satellites_visible);
	num_or_null(&j, "hdop", r->hdop);
	num_or_null(&j, "ttff_s", r->ttff_s);
	json_str(&j, "ttff_source", r->ttff_source);
	num_or_null(&j, "fix_age_s", r->fix_age_s);
	num_or_null(&j, "position_error_m", r->position_error_m);
	json_str(&j, "dispatch_verdict", r->verdict);
	json_arr_begin(&j, "verdict_reasons");
	for (int i = 0; i < r->n_verdict_reasons; i++)
		json_str(&j, NULL, r->verdict_reasons[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_begin(&j, "cellular");
	json_bool(&j, "measured", r->have_status);
	json_bool(&j, "registered", r->registered);
	json_bool(&j, "data_link", r->data_link);
	json_int(&j, "signal", r->signal);
	json_str(&j, "operator", r->operator_code);
	json_bool(&j, "record_received", r->record_received);
	num_or_null(&j, "record_after_s", r->record_received ? r->record_after_s : NAN);
	num_or_null(&j, "record_limit_s", r->record_limit_s);
	json_obj_end(&j);
	json_arr_begin(&j, "checks");
	for (int i = 0; i < r->n_checks; i++) {
		const struct accept_check *c = &r->checks[i];
		json_obj_begin(&j, NULL);
		json_str(&j, "name", c->name);
		json_str(&j, "result", accept_status_name(c->status));
		json_str(&j, "detail", c->detail);
		if (*c->code)
			json_str(&j, "reason_code", c->code);
		if (c->status == ACCEPT_FAIL) {
			json_str(&j, "action_technician", c->action);
			json_str(&j, "action_ops", c->action_ops);
		}
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
}
