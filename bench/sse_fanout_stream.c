/* SPDX-License-Identifier: MIT */
/* The SSE fan-out benchmark's response parser: status and headers, chunked
 * framing, SSE lines; hands each job event's id to the measurement. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sse_fanout.h"

/*
 * Events may be split across reads and chunks: a partial line is carried in
 * c->buf, the chunk decoder keeps its state in the client. Only the "id"
 * number of a data line is read, the JSON is not parsed: at 10 000 clients
 * this thread's parsing is part of the measured latency.
 */

static int buf_append(struct client *c, const void *data, size_t n, size_t limit)
{
	if ((size_t)c->len + n > limit)
		return -E2BIG;
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 256;
		char *p;

		while (cap < c->len + n)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		p = realloc(c->buf, cap);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = (uint32_t)cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += (uint32_t)n;
	return 0;
}

/* "id": N in a data line; -1 if absent. */
static int64_t find_id(const char *p, size_t n)
{
	static const char key[] = "\"id\"";
	const char *end = p + n, *q = memmem(p, n, key, sizeof(key) - 1);
	int64_t v = 0;

	if (!q)
		return -1;
	q += sizeof(key) - 1;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= end || *q++ != ':')
		return -1;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	while (q < end && *q >= '0' && *q <= '9' && v < INT64_MAX / 10)
		v = v * 10 + (*q++ - '0');
	return v;
}

/* One SSE line, without its "\n" (a trailing "\r" is dropped here). */
static void sse_line(struct bench *b, struct client *c, const char *p, size_t n, uint64_t t)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0) { /* blank line: dispatch the event */
		if (c->ev_type == T_JOB && c->data_id >= 0)
			measure_delivery(b, c, c->data_id, t);
		else if (c->ev_type != T_NONE || c->data_id >= 0)
			b->other_events++;
		c->ev_type = T_NONE;
		c->data_id = -1;
		return;
	}
	if (n >= 6 && memcmp(p, "event:", 6) == 0) {
		p += 6, n -= 6;
		if (n && *p == ' ')
			p++, n--;
		c->ev_type = (n == 3 && memcmp(p, "job", 3) == 0) ? T_JOB : T_OTHER;
	} else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
		if (c->data_id < 0 && c->ev_type != T_OTHER)
			c->data_id = find_id(p + 5, n - 5);
	}
	/* id:, retry:, comments (": keepalive"): nothing to do */
}

static int sse_feed(struct bench *b, struct client *c, const char *p, size_t n, uint64_t t)
{
	const char *end = p + n, *nl;
	int r;

	if (c->len) { /* finish the line carried over from the last read */
		nl = memchr(p, '\n', n);
		if (!nl)
			return buf_append(c, p, n, MAX_LINE_BYTES);
		r = buf_append(c, p, (size_t)(nl - p), MAX_LINE_BYTES);
		if (r < 0)
			return r;
		sse_line(b, c, c->buf, c->len, t);
		c->len = 0;
		p = nl + 1;
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return buf_append(c, p, (size_t)(end - p), MAX_LINE_BYTES);
		sse_line(b, c, p, (size_t)(nl - p), t);
		p = nl + 1;
	}
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Remove chunked framing in place; returns the payload length or a negative code. */
static ssize_t dechunk(struct client *c, char *p, size_t n)
{
	size_t i = 0, out = 0;

	while (i < n) {
		char ch = p[i];

		switch (c->cs) {
		case CS_SIZE:
			if (hexval(ch) >= 0) {
				if (c->chunk_left > (UINT32_MAX >> 4))
					return -EPROTO;
				c->chunk_left = c->chunk_left * 16 + (uint32_t)hexval(ch);
			} else if (ch == ';') {
				c->cs = CS_EXT;
			} else if (ch == '\r') {
				c->cs = CS_SIZE_LF;
			} else if (ch == '\n') {
				c->cs = c->chunk_left ? CS_DATA : CS_END;
			} else {
				return -EPROTO;
			}
			i++;
			break;
		case CS_EXT:
			if (ch == '\n')
				c->cs = c->chunk_left ? CS_DATA : CS_END;
			i++;
			break;
		case CS_SIZE_LF:
			if (ch != '\n')
				return -EPROTO;
			c->cs = c->chunk_left ? CS_DATA : CS_END;
			i++;
			break;
		case CS_DATA: {
			size_t k = n - i < c->chunk_left ? n - i : c->chunk_left;

			memmove(p + out, p + i, k);
			out += k, i += k;
			c->chunk_left -= (uint32_t)k;
			if (!c->chunk_left)
				c->cs = CS_DATA_CR;
			break;
		}
		case CS_DATA_CR:
			if (ch == '\r')
				c->cs = CS_DATA_LF;
			else if (ch == '\n')
				c->cs = CS_SIZE;
			else
				return -EPROTO;
			i++;
			break;
		case CS_DATA_LF:
			if (ch != '\n')
				return -EPROTO;
			c->cs = CS_SIZE;
			i++;
			break;
		case CS_END:
			return (ssize_t)out; /* the stream ended; the caller sees EOF next */
		}
	}
	return (ssize_t)out;
}

static int body_feed(struct bench *b, struct client *c, char *p, size_t n, uint64_t t)
{
	if (c->chunked) {
		ssize_t m = dechunk(c, p, n);

		if (m < 0)
			return (int)m;
		n = (size_t)m;
	}
	return n ? sse_feed(b, c, p, n, t) : 0;
}

/* Header value of NAME in the header block HDR (NUL-terminated), or NULL. */
static const char *header_value(const char *hdr, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name);
	const char *p = strstr(hdr, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			*ret_len = (size_t)(eol - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

static bool contains_ci(const char *v, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(v + i, needle, k) == 0)
			return true;
	return false;
}

/*
 * Header block complete in c->buf[0..hlen): accept or refuse the client.
 * The bytes after it are also the last ones of the read that completed it:
 * TAIL[0..tail_len), the body start.
 */
static int headers_done(struct bench *b, struct client *c, size_t hlen, char *tail, size_t tail_len, uint64_t t)
{
	char *body = c->buf + hlen;
	size_t vlen;
	const char *v;
	int status;

	body[-1] = '\0'; /* the last "\n" of "\r\n\r\n"; header_value stops at "\r\n\r" */
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	if (status != 200) {
		char *eol = strstr(c->buf, "\r\n");

		if (eol)
			*eol = '\0';
		b->bad_status++;
		b->last_status = status;
		client_note_error(b, "client %td: \"%s\" (body: %.120s)", c - b->clients, c->buf, body);
		return -EPROTO;
	}
	v = header_value(c->buf, "Content-Type", &vlen);
	if (!v || !contains_ci(v, vlen, "text/event-stream")) {
		b->bad_status++;
		b->last_status = status;
		client_note_error(b, "client %td: 200 without Content-Type: text/event-stream", c - b->clients);
		return -EPROTO;
	}
	v = header_value(c->buf, "Transfer-Encoding", &vlen);
	c->chunked = v && contains_ci(v, vlen, "chunked");
	c->state = C_STREAMING;
	b->pending--;
	b->streaming++;
	/* the header buffer becomes the carry of partial SSE lines */
	c->len = 0;
	return tail_len ? body_feed(b, c, tail, tail_len, t) : 0;
}

int stream_feed(struct bench *b, struct client *c, char *p, size_t n, uint64_t t)
{
	char *end;

	if (c->state != C_HEADERS)
		return body_feed(b, c, p, n, t);
	if (buf_append(c, p, n, MAX_HEADER_BYTES) < 0 || buf_append(c, "", 1, MAX_HEADER_BYTES + 1) < 0) {
		client_note_error(b, "client %td: response headers over %d bytes", c - b->clients, MAX_HEADER_BYTES);
		return -E2BIG;
	}
	c->len--; /* the NUL is for strstr only */
	end = strstr(c->buf, "\r\n\r\n");
	if (end) {
		size_t hlen = (size_t)(end + 4 - c->buf), tail_len = c->len - hlen;

		return headers_done(b, c, hlen, p + n - tail_len, tail_len, t);
	}
	return 0;
}
