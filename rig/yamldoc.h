/*
 * yamldoc.h - YAML documents with positions, for rack and scenario files.
 *
 * libyaml loads the document; these helpers read typed values from it and
 * turn every problem into "file:line:column: key.path: what is wrong", the
 * one error format all of the rig's files share. Unknown and duplicate keys
 * are errors.
 */
#ifndef TRACKRIG_YAMLDOC_H
#define TRACKRIG_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

struct ydoc {
	yaml_document_t doc;
	bool loaded;
	const char *file;
	char *err;
	size_t errlen;
};

/* Loads PATH. Returns 0, or -1 with the parser's message and position in ERR
 * (which must outlive D: later helpers write their errors there too). */
int ydoc_load(struct ydoc *d, const char *path, char *err, size_t errlen);
void ydoc_free(struct ydoc *d);

yaml_node_t *ydoc_root(struct ydoc *d);

/* Writes "file:line:col: PATH: message" into the error buffer; returns -1. */
int ydoc_fail(struct ydoc *d, const yaml_node_t *at, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Checks that N is a mapping whose keys are all in KNOWN (NULL-terminated),
 * each once. */
int ydoc_map(struct ydoc *d, yaml_node_t *n, const char *path, const char *const *known);

/* The value under KEY in mapping N, or NULL. */
yaml_node_t *ydoc_get(struct ydoc *d, yaml_node_t *n, const char *key);

/* Checks that N is a sequence; returns its length or -1. */
int ydoc_seq(struct ydoc *d, yaml_node_t *n, const char *path);
yaml_node_t *ydoc_item(struct ydoc *d, yaml_node_t *seq, int i);

/* Typed scalars. Each returns 0, or -1 with a positioned error. */
int ydoc_str(struct ydoc *d, yaml_node_t *n, const char *path, char *out, size_t len);
int ydoc_long(struct ydoc *d, yaml_node_t *n, const char *path, long min, long max, long *out);
int ydoc_double(struct ydoc *d, yaml_node_t *n, const char *path, double *out);
int ydoc_bool(struct ydoc *d, yaml_node_t *n, const char *path, bool *out);

/* Formats a key path ("slots[2].console") into BUF. Key paths only label
 * error messages, so one cut short is acceptable. Returns BUF. */
const char *ydoc_keypath(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The scalar text of N, or NULL when N is not a scalar. */
const char *ydoc_scalar(const yaml_node_t *n);

/* The key text of the I-th pair of mapping N (NULL past the end) and its value. */
const char *ydoc_pair(struct ydoc *d, yaml_node_t *n, int i, yaml_node_t **value);

#endif
