/* SPDX-License-Identifier: MIT */
/* Request parsing on http-parser: limits, the headers the gateway reads,
 * percent-decoding of the path and of query parameters. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"


static struct request_parser *conn_of(http_parser *p)
{
	return p->data;
}

static int header_budget(struct request_parser *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes > c->max_header) {
		c->error_status = 431;
		c->error = "request line and headers exceed gateway.max_header";
		return -1;
	}
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct request_parser *c = conn_of(p);

	c->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct request_parser *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	strbuf_append(&c->url, at, n);
	return 0;
}

static struct strbuf *wanted_header(struct request_parser *c)
{
	switch (c->hdr) {
	case HDR_AUTHORIZATION: return &c->authorization;
	case HDR_CONTENT_TYPE: return &c->content_type;
	case HDR_LAST_EVENT_ID: return &c->last_event_id;
	default: return NULL;
	}
}

/* A whole header has been read: keep what the gateway needs; refuse what
 * could frame the message differently here and in a proxy before us. */
static int header_done(struct request_parser *c)
{
	const char *f = strbuf_str(&c->field);

	/* "Content-Length : 5" (RFC 9112 §5.1: MUST be 400). */
	if (strpbrk(f, " \t")) {
		c->error_status = 400;
		c->error = "whitespace in a header name";
		return -1;
	}
	/* Only chunked is decoded; a body in another coding is not JSON. */
	if (!strcasecmp(f, "transfer-encoding") && strcasecmp(strbuf_str(&c->value), "chunked") != 0) {
		c->error_status = 400;
		c->error = "Transfer-Encoding other than chunked";
		return -1;
	}

	if (!strcasecmp(f, "authorization"))
		c->hdr = HDR_AUTHORIZATION;
	else if (!strcasecmp(f, "content-type"))
		c->hdr = HDR_CONTENT_TYPE;
	else if (!strcasecmp(f, "last-event-id"))
		c->hdr = HDR_LAST_EVENT_ID;
	else if (!strcasecmp(f, "expect"))
		c->hdr = HDR_EXPECT;
	else
		c->hdr = HDR_OTHER;
	if (c->hdr == HDR_EXPECT)
		c->expect_continue = !strcasecmp(strbuf_str(&c->value), "100-continue");
	else if (wanted_header(c)) {
		struct strbuf *b = wanted_header(c);
		strbuf_reset(b);
		strbuf_append(b, c->value.s ? c->value.s : "", c->value.len);
	}
	strbuf_reset(&c->field);
	strbuf_reset(&c->value);
	c->value_seen = false;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct request_parser *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	if (c->value_seen && header_done(c) < 0)
		return -1;
	strbuf_append(&c->field, at, n);
	return 0;
}

/* Whether s[0..n) holds a control character other than HTAB. */
static bool has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return true;
	return false;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct request_parser *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	/* http-parser checks every byte of a value but the first: a NUL there
	 * would cut the value short (RFC 9110 §5.5: reject). */
	if (has_ctl(at, n)) {
		c->error_status = 400;
		c->error = "control character in a header value";
		return -1;
	}
	c->value_seen = true;
	strbuf_append(&c->value, at, n);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct request_parser *c = conn_of(p);

	if (c->value_seen && header_done(c) < 0)
		return -1;
	if (p->content_length != ULLONG_MAX && p->content_length > c->max_body) {
		c->error_status = 413;
		c->error = "request body exceeds gateway.max_body";
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct request_parser *c = conn_of(p);

	if (c->body.len + n > c->max_body) {
		c->error_status = 413;
		c->error = "request body exceeds gateway.max_body";
		return -1;
	}
	strbuf_append(&c->body, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct request_parser *c = conn_of(p);

	c->complete = true;
	http_parser_pause(p, 1); /* one request at a time */
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes n bytes of s into out (at least n + 1 bytes); '+' is a
 * space when plus_space. Returns the length, or -EINVAL for a bad escape
 * or an encoded NUL. */
static int percent_decode(const char *s, size_t n, char *out, bool plus_space)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -EINVAL;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+' && plus_space) {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (int)o;
}

int http_query_param(const char *query, const char *name, char *buf, size_t buflen)
{
	size_t nlen = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			if (vlen + 1 > buflen)
				return -E2BIG;
			return percent_decode(p + nlen + 1, vlen, buf, true) < 0 ? -EINVAL : 1;
		}
		if (len == nlen && !strncmp(p, name, nlen)) {
			if (buflen < 1)
				return -E2BIG;
			buf[0] = '\0';
			return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Splits the URL into the decoded path and the raw query. */
static int request_prepare(struct request_parser *c)
{
	const char *url = strbuf_str(&c->url);
	const char *q = strchr(url, '?');
	size_t plen = q ? (size_t)(q - url) : strlen(url);

	if (plen == 0 || url[0] != '/')
		return -EINVAL;
	c->path = malloc(plen + 1);
	if (!c->path)
		return -ENOMEM;
	if (percent_decode(url, plen, c->path, false) < 0)
		return -EINVAL;
	c->req = (struct http_request){
		.method = (int)c->parser.method,
		.path = c->path,
		.query = q ? q + 1 : "",
		.authorization = c->authorization.len ? c->authorization.s : NULL,
		.content_type = c->content_type.len ? c->content_type.s : NULL,
		.last_event_id = c->last_event_id.len ? c->last_event_id.s : NULL,
		.body = strbuf_str(&c->body),
		.body_len = c->body.len,
	};
	return 0;
}

void request_parser_init(struct request_parser *rp, size_t max_header, size_t max_body)
{
	memset(rp, 0, sizeof(*rp));
	http_parser_init(&rp->parser, HTTP_REQUEST);
	rp->parser.data = rp;
	rp->max_header = max_header;
	rp->max_body = max_body;
}

size_t request_parser_feed(struct request_parser *rp, const char *data, size_t len)
{
	size_t n;
	enum http_errno err;

	if (rp->complete || rp->error_status)
		return 0;
	http_parser_pause(&rp->parser, 0);
	n = http_parser_execute(&rp->parser, &parser_settings, data, len);
	err = HTTP_PARSER_ERRNO(&rp->parser);
	if (rp->error_status)
		return n;
	if (err != HPE_OK && err != HPE_PAUSED) {
		rp->error_status = 400;
		rp->error = "malformed HTTP request";
		return n;
	}
	if (rp->complete && request_prepare(rp) < 0) {
		rp->complete = false;
		rp->error_status = 400;
		rp->error = "malformed request target";
	}
	return n;
}

bool request_keep_alive(const struct request_parser *rp)
{
	return http_should_keep_alive(&rp->parser);
}

void request_parser_next(struct request_parser *rp)
{
	strbuf_reset(&rp->url);
	strbuf_reset(&rp->field);
	strbuf_reset(&rp->value);
	strbuf_reset(&rp->body);
	strbuf_reset(&rp->authorization);
	strbuf_reset(&rp->content_type);
	strbuf_reset(&rp->last_event_id);
	free(rp->path);
	rp->path = NULL;
	rp->hdr = HDR_OTHER;
	rp->value_seen = rp->expect_continue = false;
	rp->header_bytes = 0;
	rp->started = rp->complete = false;
}

void request_parser_free(struct request_parser *rp)
{
	request_parser_next(rp);
	strbuf_free(&rp->url);
	strbuf_free(&rp->field);
	strbuf_free(&rp->value);
	strbuf_free(&rp->body);
	strbuf_free(&rp->authorization);
	strbuf_free(&rp->content_type);
	strbuf_free(&rp->last_event_id);
}
