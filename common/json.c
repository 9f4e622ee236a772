/* SPDX-License-Identifier: MIT */
/* JSON helpers on cJSON: bounded parsing and typed field access. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "strbuf.h"

int json_depth(const cJSON *v)
{
	int deepest = 0;

	/* cJSON itself refuses input nested over CJSON_NESTING_LIMIT (1000),
	 * which bounds this recursion. */
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 0;
	for (const cJSON *child = v->child; child; child = child->next) {
		int d = json_depth(child);
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

/* The offset of the first \u0000 escape in s, or -1. (Backslashes occur
 * only in strings in valid JSON; each escapes the character after it.) */
static ptrdiff_t nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
			return (ptrdiff_t)i;
		i++;
	}
	return -1;
}

int json_parse_object(const char *s, size_t len, int max_depth, cJSON **ret_obj, char *err, size_t errlen)
{
	/* A NUL inside would end the text early for cJSON and for libpq; an
	 * escaped one would end the decoded string early (and jsonb refuses it). */
	const char *end = memchr(s, '\0', len);
	ptrdiff_t escaped = end ? -1 : nul_escape(s, len);
	cJSON *v = end || escaped >= 0 ? NULL : cJSON_ParseWithLengthOpts(s, len, &end, 0);

	if (escaped >= 0) {
		snprintf(err, errlen, "\\u0000 at offset %td: strings cannot hold a NUL character", escaped);
		return -EINVAL;
	}
	if (!v) {
		snprintf(err, errlen, "not valid JSON at offset %td", end ? end - s : (ptrdiff_t)0);
		return -EINVAL;
	}
	while (end < s + len && strchr(" \t\r\n", *end))
		end++;
	if (end != s + len)
		snprintf(err, errlen, "not valid JSON at offset %td (after the value)", end - s);
	else if (!cJSON_IsObject(v))
		snprintf(err, errlen, "must be a JSON object");
	else if (json_depth(v) > max_depth)
		snprintf(err, errlen, "nested deeper than %d", max_depth);
	else {
		*ret_obj = v;
		return 0;
	}
	cJSON_Delete(v);
	return -EINVAL;
}

static const cJSON *field(const cJSON *obj, const char *key, bool required, int *rc, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*rc = 0;
	if (!v || cJSON_IsNull(v)) {
		if (required) {
			snprintf(err, errlen, "%s is required", key);
			*rc = -ENOENT;
		}
		return NULL;
	}
	return v;
}

int json_get_string(const cJSON *obj, const char *key, bool required, const char **ret, char *err,
		    size_t errlen)
{
	int rc;
	const cJSON *v = field(obj, key, required, &rc, err, errlen);

	if (!v)
		return rc;
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "%s must be a string", key);
		return -EINVAL;
	}
	*ret = v->valuestring;
	return 0;
}

int json_get_int(const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
		 int64_t *ret, char *err, size_t errlen)
{
	int rc;
	const cJSON *v = field(obj, key, required, &rc, err, errlen);

	if (!v)
		return rc;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
		snprintf(err, errlen, "%s must be an integer", key);
		return -EINVAL;
	}
	if (v->valuedouble < (double)min || v->valuedouble > (double)max) {
		snprintf(err, errlen, "%s must be between %lld and %lld", key, (long long)min, (long long)max);
		return -EINVAL;
	}
	*ret = (int64_t)v->valuedouble;
	return 0;
}

int json_get_bool(const cJSON *obj, const char *key, bool required, bool *ret, char *err, size_t errlen)
{
	int rc;
	const cJSON *v = field(obj, key, required, &rc, err, errlen);

	if (!v)
		return rc;
	if (!cJSON_IsBool(v)) {
		snprintf(err, errlen, "%s must be true or false", key);
		return -EINVAL;
	}
	*ret = cJSON_IsTrue(v);
	return 0;
}

void json_append_string(struct strbuf *b, const char *s)
{
	strbuf_append(b, "\"", 1);
	while (*s) {
		size_t run = 0;
		unsigned char ch;
		while ((ch = (unsigned char)s[run]) && ch != '"' && ch != '\\' && ch >= 0x20 && ch != 0x7f)
			run++;
		strbuf_append(b, s, run); /* the plain stretch in one go */
		s += run;
		if (!*s)
			break;
		ch = (unsigned char)*s++;
		if (ch == '"' || ch == '\\') {
			char esc[2] = { '\\', (char)ch };
			strbuf_append(b, esc, 2);
		} else {
			strbuf_printf(b, "\\u%04x", ch);
		}
	}
	strbuf_append(b, "\"", 1);
}

/* ---------------------------------------------------------------- members */

/* JSON's whitespace. (cJSON also skips the other bytes up to 0x20 as
 * whitespace; PostgreSQL's parser does not, so neither do we.) */
static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* p is at a '"': returns the position after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end && *p != '"'; p++)
		if (*p == '\\')
			p++;
	return p < end ? p + 1 : end;
}

/* Returns the position after the value that starts at p. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') { /* number, true, false, null */
		while (p < end && *p != ',' && *p != '}' && *p != ']' && (unsigned char)*p > 0x20)
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			p = skip_string(p, end);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return end;
}

int json_object_members(const char *s, size_t len, struct json_member *m, int max)
{
	const char *end = s + len, *p = skip_space(s, end);
	int n = 0;

	if (p == end || *p != '{')
		return -1;
	p = skip_space(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	for (;;) {
		if (p == end || *p != '"' || n == max)
			return -1;
		const char *key_end = skip_string(p, end);
		m[n].key = p + 1;
		m[n].key_len = (size_t)(key_end - p - 2);
		p = skip_space(key_end, end);
		if (p == end || *p != ':')
			return -1;
		p = skip_space(p + 1, end);
		if (p == end || !*p || !strchr("\"{[-0123456789tfn", *p))
			return -1;
		m[n].val = p;
		p = skip_value(p, end);
		m[n].val_len = (size_t)(p - m[n].val);
		n++;
		p = skip_space(p, end);
		if (p < end && *p == '}')
			return n;
		if (p == end || *p != ',')
			return -1;
		p = skip_space(p + 1, end);
	}
}
