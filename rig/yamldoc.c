/* yamldoc.c - YAML documents with positioned errors (see yamldoc.h). */
#include "yamldoc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ydoc_load(struct ydoc *d, const char *path, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->file = path;
	d->err = err;
	d->errlen = errlen;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int ok = yaml_parser_load(&p, &d->doc);
	if (!ok) {
		yaml_mark_t m = p.problem_mark;
		snprintf(err, errlen, "%s:%zu:%zu: YAML syntax: %s%s%s", path, m.line + 1, m.column + 1,
			 p.problem ? p.problem : "unreadable",
			 p.context ? " " : "", p.context ? p.context : "");
	}
	yaml_parser_delete(&p);
	fclose(f);
	if (!ok)
		return -1;
	d->loaded = true;
	if (!yaml_document_get_root_node(&d->doc)) {
		snprintf(err, errlen, "%s:1:1: the file is empty", path);
		return -1;
	}
	return 0;
}

void ydoc_free(struct ydoc *d)
{
	if (d->loaded)
		yaml_document_delete(&d->doc);
	d->loaded = false;
}

yaml_node_t *ydoc_root(struct ydoc *d) { return yaml_document_get_root_node(&d->doc); }

int ydoc_fail(struct ydoc *d, const yaml_node_t *at, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t line = at ? at->start_mark.line + 1 : 1, col = at ? at->start_mark.column + 1 : 1;
	snprintf(d->err, d->errlen, "%s:%zu:%zu: %s%s%s", d->file, line, col,
		 path && *path ? path : "", path && *path ? ": " : "", msg);
	return -1;
}

const char *ydoc_keypath(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

const char *ydoc_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a value";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

const char *ydoc_pair(struct ydoc *d, yaml_node_t *n, int i, yaml_node_t **value)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	yaml_node_pair_t *pair = n->data.mapping.pairs.start + i;
	if (pair >= n->data.mapping.pairs.top)
		return NULL;
	*value = yaml_document_get_node(&d->doc, pair->value);
	return ydoc_scalar(yaml_document_get_node(&d->doc, pair->key));
}

int ydoc_map(struct ydoc *d, yaml_node_t *n, const char *path, const char *const *known)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return ydoc_fail(d, n, path, "expected a mapping (key: value), got %s", n ? kind_name(n) : "nothing");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
		const char *key = ydoc_scalar(k);
		if (!key)
			return ydoc_fail(d, k, path, "a key must be plain text");
		bool found = false;
		for (size_t i = 0; known[i]; i++)
			found |= strcmp(known[i], key) == 0;
		if (!found) {
			char list[256] = "";
			for (size_t i = 0; known[i]; i++) {
				strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
				strncat(list, known[i], sizeof list - strlen(list) - 1);
			}
			return ydoc_fail(d, k, path, "unknown key '%s' (known: %s)", key, list);
		}
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
			if (strcmp(ydoc_scalar(yaml_document_get_node(&d->doc, q->key)), key) == 0)
				return ydoc_fail(d, k, path, "key '%s' given twice", key);
	}
	return 0;
}

yaml_node_t *ydoc_get(struct ydoc *d, yaml_node_t *n, const char *key)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const char *k = ydoc_scalar(yaml_document_get_node(&d->doc, p->key));
		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(&d->doc, p->value);
	}
	return NULL;
}

int ydoc_seq(struct ydoc *d, yaml_node_t *n, const char *path)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return ydoc_fail(d, n, path, "expected a list, got %s", n ? kind_name(n) : "nothing");
	return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *ydoc_item(struct ydoc *d, yaml_node_t *seq, int i)
{
	return yaml_document_get_node(&d->doc, seq->data.sequence.items.start[i]);
}

int ydoc_str(struct ydoc *d, yaml_node_t *n, const char *path, char *out, size_t len)
{
	const char *s = ydoc_scalar(n);
	if (!s)
		return ydoc_fail(d, n, path, "expected a value, got %s", n ? kind_name(n) : "nothing");
	if (strlen(s) >= len)
		return ydoc_fail(d, n, path, "longer than %zu characters", len - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int ydoc_long(struct ydoc *d, yaml_node_t *n, const char *path, long min, long max, long *out)
{
	const char *s = ydoc_scalar(n);
	if (!s)
		return ydoc_fail(d, n, path, "expected a whole number, got %s", n ? kind_name(n) : "nothing");
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno)
		return ydoc_fail(d, n, path, "expected a whole number, got '%s'", s);
	if (v < min || v > max)
		return ydoc_fail(d, n, path, "%ld is outside %ld..%ld", v, min, max);
	*out = v;
	return 0;
}

int ydoc_double(struct ydoc *d, yaml_node_t *n, const char *path, double *out)
{
	const char *s = ydoc_scalar(n);
	if (!s)
		return ydoc_fail(d, n, path, "expected a number, got %s", n ? kind_name(n) : "nothing");
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return ydoc_fail(d, n, path, "expected a number, got '%s'", s);
	*out = v;
	return 0;
}

int ydoc_bool(struct ydoc *d, yaml_node_t *n, const char *path, bool *out)
{
	const char *s = ydoc_scalar(n);
	static const char *const yes[] = { "true", "yes", "on", NULL }, *const no[] = { "false", "no", "off", NULL };
	for (int i = 0; s && yes[i]; i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
	for (int i = 0; s && no[i]; i++)
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	return ydoc_fail(d, n, path, "expected true/false (or on/off), got '%s'", s ? s : "a non-value");
}
