/* SPDX-License-Identifier: MIT */
/* A growable string, and PostgreSQL array literals built with it. */
#ifndef JW_STRBUF_H
#define JW_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *s;      /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	bool oom;     /* an append failed: the content is incomplete */
};

void strbuf_append(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal integers, without printf (hot paths). */
void strbuf_append_i64(struct strbuf *b, int64_t v);
void strbuf_append_u64(struct strbuf *b, uint64_t v);
void strbuf_reset(struct strbuf *b);
void strbuf_free(struct strbuf *b);
/* The content, "" when empty. */
const char *strbuf_str(const struct strbuf *b);

/* PostgreSQL array literal: call pgarray_begin, then an add per element,
 * then pgarray_end: {1,2} or {"a\"b",NULL}. */
void pgarray_begin(struct strbuf *b);
void pgarray_add_text(struct strbuf *b, const char *s); /* NULL -> NULL */
void pgarray_add_int(struct strbuf *b, int64_t v);
void pgarray_end(struct strbuf *b);

/* Reads the next integer of a PostgreSQL integer array literal ("{1,2,3}"),
 * advancing *p; returns false at the end (or on anything else). */
bool pgarray_next_int(const char **p, int64_t *ret);

#endif
