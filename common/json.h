/* SPDX-License-Identifier: MIT */
/* JSON helpers on cJSON: bounded parsing and typed field access that names
 * the offending field in its error message. */
#ifndef JW_JSON_H
#define JW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Parses len bytes as exactly one JSON object (whitespace around it allowed,
 * no NUL byte) nested at most max_depth deep. Returns 0 and *ret_obj (caller
 * frees with cJSON_Delete), or -EINVAL with a message in err ("not valid JSON
 * at offset 12", "... (after the value)", "nested deeper than 64", "must be
 * a JSON object"). */
int json_parse_object(const char *s, size_t len, int max_depth, cJSON **ret_obj, char *err, size_t errlen);

/* Containers nested in a JSON value: scalars 0, {} and [] 1, {"a":[1]} 2. */
int json_depth(const cJSON *v);

/* Typed access to obj[key]. When the field is absent: -ENOENT if required
 * (message "KEY is required"), else 0 with *ret untouched. Wrong type or out
 * of range: -EINVAL with a message naming the key. */
int json_get_string(const cJSON *obj, const char *key, bool required, const char **ret, char *err,
		    size_t errlen);
int json_get_int(const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
		 int64_t *ret, char *err, size_t errlen);
int json_get_bool(const cJSON *obj, const char *key, bool required, bool *ret, char *err, size_t errlen);

/* A member of a JSON object as spans of the input text: the key without its
 * quotes (escapes left as they are), the value as written. */
struct json_member {
	const char *key, *val;
	size_t key_len, val_len;
};

/* Splits s[0..len), a JSON object that json_parse_object() accepted, into
 * its top-level members, without decoding anything (a number keeps every
 * digit). Returns how many, or -1 if there are more than max or if a byte
 * that is not JSON whitespace (a control byte, which cJSON skips) stands
 * between them. */
int json_object_members(const char *s, size_t len, struct json_member *m, int max);

struct strbuf;
/* Appends s as a JSON string literal, quotes included (control characters
 * escaped as \u00XX; PostgreSQL text is valid UTF-8 already). */
void json_append_string(struct strbuf *b, const char *s);

#endif
