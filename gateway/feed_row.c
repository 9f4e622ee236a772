/* SPDX-License-Identifier: MIT */
/* A scanner for the arrays of a 'jobs' feed row: numbers, strings (JSON
 * escapes decoded in place, so no allocation per job) and nulls. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed_row.h"

enum value_kind { V_NULL, V_NUM, V_STR };

struct value {
	enum value_kind kind;
	double num;
	const char *str;
};

static void skip_ws(struct feed_row *r)
{
	while (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r')
		r->p++;
}

static int hex4(const char *s, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Decodes the string at r->p (after its opening quote) in place. The
 * decoded text is never longer than the escaped one, so it ends, with its
 * NUL, at or before the closing quote. */
static int scan_string(struct feed_row *r, const char **ret)
{
	char *in = r->p, *out = r->p;

	*ret = out;
	for (;;) {
		unsigned cp, lo;
		char c = *in++;
		if (c == '\0')
			return -EINVAL;
		if (c == '"')
			break;
		if (c != '\\') {
			*out++ = c;
			continue;
		}
		c = *in++;
		switch (c) {
		case '"': case '\\': case '/': *out++ = c; break;
		case 'b': *out++ = '\b'; break;
		case 'f': *out++ = '\f'; break;
		case 'n': *out++ = '\n'; break;
		case 'r': *out++ = '\r'; break;
		case 't': *out++ = '\t'; break;
		case 'u':
			if (hex4(in, &cp) < 0)
				return -EINVAL;
			in += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && in[0] == '\\' && in[1] == 'u' && hex4(in + 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				in += 6;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd; /* a lone surrogate */
			}
			if (cp == 0)
				return -EINVAL; /* PostgreSQL text holds no NUL */
			out = put_utf8(out, cp);
			break;
		default:
			return -EINVAL;
		}
	}
	*out = '\0';
	r->p = in;
	return 0;
}

static int scan_value(struct feed_row *r, struct value *v)
{
	skip_ws(r);
	if (*r->p == '"') {
		r->p++;
		v->kind = V_STR;
		return scan_string(r, &v->str);
	}
	if (!strncmp(r->p, "null", 4)) {
		r->p += 4;
		v->kind = V_NULL;
		return 0;
	}
	if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
		char *end;
		v->num = strtod(r->p, &end);
		if (end == r->p)
			return -EINVAL;
		r->p = end;
		v->kind = V_NUM;
		return 0;
	}
	return -EINVAL;
}

/* Expects ch (after white space) and steps over it. */
static int expect(struct feed_row *r, char ch)
{
	skip_ws(r);
	if (*r->p != ch)
		return -EINVAL;
	r->p++;
	return 0;
}

int feed_row_open(struct feed_row *r, const char *data)
{
	r->text = strdup(data);
	if (!r->text)
		return -ENOMEM;
	r->p = r->text;
	r->started = false;
	if (expect(r, '[') < 0) {
		feed_row_close(r);
		return -EINVAL;
	}
	return 0;
}

static int64_t as_int(const struct value *v, int64_t dflt)
{
	return v->kind == V_NUM && v->num > -9.2e18 && v->num < 9.2e18 ? (int64_t)v->num : dflt;
}

static const char *as_str(const struct value *v)
{
	return v->kind == V_STR ? v->str : NULL;
}

int feed_row_next(struct feed_row *r, struct feed_job *job)
{
	struct value v[10];

	skip_ws(r);
	if (*r->p == ']')
		return 0;
	if (r->started && expect(r, ',') < 0)
		return -EINVAL;
	r->started = true;
	if (expect(r, '[') < 0)
		return -EINVAL;
	for (int i = 0; i < 10; i++)
		if ((i && expect(r, ',') < 0) || scan_value(r, &v[i]) < 0)
			return -EINVAL;
	if (expect(r, ']') < 0)
		return -EINVAL;
	*job = (struct feed_job){
		.id = as_int(&v[0], 0),
		.queue = as_str(&v[1]),
		.kind = as_str(&v[2]),
		.state = as_str(&v[3]),
		.attempt = as_int(&v[4], 0),
		.priority = as_int(&v[5], 0),
		.workflow_id = as_int(&v[6], 0),
		.error = as_str(&v[7]),
		.old_state = as_str(&v[8]),
		.ms = as_int(&v[9], -1),
	};
	if (!job->queue || !job->kind || !job->state)
		return -EINVAL;
	return 1;
}

void feed_row_close(struct feed_row *r)
{
	free(r->text);
	r->text = r->p = NULL;
}
