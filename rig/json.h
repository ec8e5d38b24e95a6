/*
 * json.h - a small streaming JSON writer.
 *
 * Every string goes through json_str(), which escapes quotes, backslashes and
 * control characters, so nothing a device says can break the document.
 * Commas are placed by the writer: callers only open, add and close.
 */
#ifndef TRACKRIG_JSON_H
#define TRACKRIG_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json {
	FILE *out;
	int depth;
	bool first[JSON_MAX_DEPTH]; /* no member written yet at this depth */
	bool pretty;
};

void json_init(struct json *j, FILE *out, bool pretty);
void json_obj_begin(struct json *j, const char *key);  /* key NULL inside arrays / at top */
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *val);  /* NULL writes null */
void json_int(struct json *j, const char *key, int64_t val);
void json_num(struct json *j, const char *key, double val);      /* NaN/inf write null */
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);
/* Ends the document with a newline. */
void json_end(struct json *j);

/* Writes S as a JSON string literal (with quotes) to OUT. */
void json_write_string(FILE *out, const char *s);

#endif
