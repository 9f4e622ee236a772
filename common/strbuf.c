/* SPDX-License-Identifier: MIT */
/* A growable string, and PostgreSQL array literals built with it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static bool reserve(struct strbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	char *s;

	if (b->oom)
		return false;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void strbuf_append(struct strbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void strbuf_puts(struct strbuf *b, const char *s)
{
	strbuf_append(b, s, strlen(s));
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void strbuf_append_u64(struct strbuf *b, uint64_t v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	strbuf_append(b, buf + i, sizeof(buf) - i);
}

void strbuf_append_i64(struct strbuf *b, int64_t v)
{
	if (v < 0) {
		strbuf_append(b, "-", 1);
		strbuf_append_u64(b, (uint64_t)0 - (uint64_t)v);
		return;
	}
	strbuf_append_u64(b, (uint64_t)v);
}

void strbuf_reset(struct strbuf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->s)
		b->s[0] = '\0';
}

void strbuf_free(struct strbuf *b)
{
	free(b->s);
	*b = (struct strbuf){ 0 };
}

const char *strbuf_str(const struct strbuf *b)
{
	return b->s ? b->s : "";
}

void pgarray_begin(struct strbuf *b)
{
	strbuf_reset(b);
	strbuf_puts(b, "{");
}

static void separator(struct strbuf *b)
{
	if (b->len > 1)
		strbuf_puts(b, ",");
}

void pgarray_add_text(struct strbuf *b, const char *s)
{
	separator(b);
	if (!s) {
		strbuf_puts(b, "NULL");
		return;
	}
	strbuf_puts(b, "\"");
	for (const char *p = s; *p; p++) {
		size_t run = strcspn(p, "\"\\");
		strbuf_append(b, p, run);
		p += run;
		if (!*p)
			break;
		strbuf_append(b, "\\", 1);
		strbuf_append(b, p, 1);
	}
	strbuf_puts(b, "\"");
}

void pgarray_add_int(struct strbuf *b, int64_t v)
{
	separator(b);
	strbuf_printf(b, "%lld", (long long)v);
}

void pgarray_end(struct strbuf *b)
{
	strbuf_puts(b, "}");
}

bool pgarray_next_int(const char **p, int64_t *ret)
{
	const char *s = *p;
	char *end;

	while (*s == '{' || *s == ',' || *s == ' ')
		s++;
	if (*s == '\0' || *s == '}')
		return false;
	long long v = strtoll(s, &end, 10);
	if (end == s)
		return false;
	*ret = (int64_t)v;
	*p = end;
	return true;
}
