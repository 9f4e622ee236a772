/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 connections: accept, parse with http-parser, enforce limits,
 * answer one request at a time (pipelined ones wait in the input buffer). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "http.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

struct http_server {
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	struct http_limits limits;
	http_handler_fn handler;
	void *arg;
	int nopen; /* connections and detached streams */
	bool stopping;
};

enum hdr { HDR_OTHER, HDR_AUTHORIZATION, HDR_CONTENT_TYPE, HDR_LAST_EVENT_ID, HDR_EXPECT };

struct http_conn {
	struct http_server *srv;
	int fd;
	ev_io io;
	ev_timer timer;
	http_parser parser;
	char *in;            /* received bytes not parsed yet start at in + in_off */
	size_t in_len, in_cap, in_off;
	struct strbuf out;   /* response bytes not written yet start at out.s + out_off */
	size_t out_off;
	/* the request being read */
	struct strbuf url, field, value, body;
	struct strbuf authorization, content_type, last_event_id;
	enum hdr hdr;
	bool value_seen, expect_continue;
	size_t header_bytes;
	int error_status;    /* a limit was hit: answer this and close */
	bool started;        /* the first byte of a request has arrived */
	bool complete;       /* the request is whole and handed to the handler */
	bool busy;           /* the handler has not answered yet */
	bool close_after;    /* no keep-alive: close once the response is out */
	bool gone;           /* the client went away while busy */
	struct http_request req;
	char *path;
};

static void conn_close(struct http_conn *c);
static void conn_process(struct http_conn *c);

static void conn_arm_timer(struct http_conn *c, double seconds)
{
	ev_timer_stop(c->srv->loop, &c->timer);
	if (seconds > 0) {
		ev_timer_set(&c->timer, seconds, 0);
		ev_timer_start(c->srv->loop, &c->timer);
	}
}

static void conn_watch(struct http_conn *c, int events)
{
	if (c->io.events == events && ev_is_active(&c->io))
		return;
	ev_io_stop(c->srv->loop, &c->io);
	if (events) {
		ev_io_set(&c->io, c->fd, events);
		ev_io_start(c->srv->loop, &c->io);
	}
}

static void request_reset(struct http_conn *c)
{
	strbuf_reset(&c->url);
	strbuf_reset(&c->field);
	strbuf_reset(&c->value);
	strbuf_reset(&c->body);
	strbuf_reset(&c->authorization);
	strbuf_reset(&c->content_type);
	strbuf_reset(&c->last_event_id);
	free(c->path);
	c->path = NULL;
	c->hdr = HDR_OTHER;
	c->value_seen = c->expect_continue = false;
	c->header_bytes = 0;
	c->started = c->complete = false;
}

/* ---------------------------------------------------------------- output */

/* Writes what is pending; returns false when the connection was closed. */
static bool conn_flush(struct http_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.s + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_watch(c, EV_WRITE);
				conn_arm_timer(c, c->srv->limits.request_timeout);
				return true;
			}
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	strbuf_reset(&c->out);
	c->out_off = 0;
	if (c->close_after) {
		conn_close(c);
		return false;
	}
	return true;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

static void append_response(struct http_conn *c, int status, const char *content_type, const char *body,
			    size_t len, const char *extra_headers)
{
	strbuf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	if (content_type)
		strbuf_printf(&c->out, "Content-Type: %s\r\n", content_type);
	strbuf_printf(&c->out, "Content-Length: %zu\r\n", len);
	if (c->close_after)
		strbuf_puts(&c->out, "Connection: close\r\n");
	if (extra_headers)
		strbuf_puts(&c->out, extra_headers);
	strbuf_puts(&c->out, "\r\n");
	strbuf_append(&c->out, body, len);
}

/* An error found by the connection itself (limits, malformed HTTP): answer
 * in the API's error shape and close. */
static void conn_fail(struct http_conn *c, int status, const char *code, const char *message)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);

	c->close_after = true;
	conn_watch(c, 0);
	append_response(c, status, "application/json", body, (size_t)n, NULL);
	conn_flush(c);
}

void http_respond(struct http_request *req, int status, const char *content_type, const char *body,
		  size_t len, const char *extra_headers)
{
	struct http_conn *c = container_of(req, struct http_conn, req);

	c->busy = false;
	if (c->gone) {
		conn_close(c);
		return;
	}
	append_response(c, status, content_type, body, len, extra_headers);
	if (c->out.oom) {
		conn_close(c);
		return;
	}
	request_reset(c);
	if (conn_flush(c) && c->out.len == 0)
		conn_process(c); /* the next pipelined request, if any */
}

int http_detach(struct http_request *req)
{
	struct http_conn *c = container_of(req, struct http_conn, req);
	int fd = c->fd;

	c->busy = false;
	if (c->gone) {
		conn_close(c);
		return -1;
	}
	c->fd = -1; /* conn_close leaves it open, and the count to the stream */
	c->srv->nopen++;
	conn_close(c);
	return fd;
}

void http_server_stream_closed(struct http_server *s)
{
	s->nopen--;
}

/* ---------------------------------------------------------------- parsing */

static struct http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int header_budget(struct http_conn *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes > c->srv->limits.max_header) {
		c->error_status = 431;
		return -1;
	}
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = conn_of(p);

	if (!c->started) {
		c->started = true;
		conn_arm_timer(c, c->srv->limits.request_timeout);
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	strbuf_append(&c->url, at, n);
	return 0;
}

static struct strbuf *wanted_header(struct http_conn *c)
{
	switch (c->hdr) {
	case HDR_AUTHORIZATION: return &c->authorization;
	case HDR_CONTENT_TYPE: return &c->content_type;
	case HDR_LAST_EVENT_ID: return &c->last_event_id;
	default: return NULL;
	}
}

static void header_done(struct http_conn *c)
{
	const char *f = strbuf_str(&c->field);

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
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	if (c->value_seen)
		header_done(c);
	strbuf_append(&c->field, at, n);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);

	if (header_budget(c, n) < 0)
		return -1;
	c->value_seen = true;
	strbuf_append(&c->value, at, n);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);

	if (c->value_seen)
		header_done(c);
	if (p->content_length != ULLONG_MAX && p->content_length > c->srv->limits.max_body) {
		c->error_status = 413;
		return -1;
	}
	if (c->expect_continue)
		strbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);

	if (c->body.len + n > c->srv->limits.max_body) {
		c->error_status = 413;
		return -1;
	}
	strbuf_append(&c->body, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);

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
static int request_prepare(struct http_conn *c)
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
		.server = c->srv,
	};
	return 0;
}

/* Parses what is buffered and hands over the next complete request. */
static void conn_process(struct http_conn *c)
{
	while (!c->busy && c->in_off < c->in_len) {
		size_t n;
		enum http_errno err;

		http_parser_pause(&c->parser, 0);
		n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_off, c->in_len - c->in_off);
		c->in_off += n;
		err = HTTP_PARSER_ERRNO(&c->parser);
		if (c->error_status == 431) {
			conn_fail(c, 431, "too_large", "request line and headers exceed gateway.max_header");
			return;
		}
		if (c->error_status == 413) {
			conn_fail(c, 413, "too_large", "request body exceeds gateway.max_body");
			return;
		}
		if (err != HPE_OK && err != HPE_PAUSED) {
			conn_fail(c, 400, "bad_request", "malformed HTTP request");
			return;
		}
		if (c->out.len && !conn_flush(c)) /* 100 Continue */
			return;
		if (!c->complete)
			break;
		c->close_after = !http_should_keep_alive(&c->parser) || c->srv->stopping;
		if (request_prepare(c) < 0) {
			conn_fail(c, 400, "bad_request", "malformed request target");
			return;
		}
		c->busy = true;
		conn_arm_timer(c, 0);
		c->srv->handler(&c->req, c->srv->arg); /* may answer at once, recursing here */
		return;
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (!c->busy && c->fd >= 0) {
		conn_watch(c, EV_READ);
		if (!c->started)
			conn_arm_timer(c, c->srv->limits.idle_timeout);
	}
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = container_of(w, struct http_conn, io);

	if (revents & EV_WRITE) {
		if (conn_flush(c) && c->out.len == 0 && !c->busy)
			conn_process(c);
		return;
	}
	/* Read at most what one request may need, plus room for pipelining. */
	if (c->in_cap - c->in_len < 4096) {
		size_t limit = c->srv->limits.max_header + c->srv->limits.max_body + 65536;
		size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
		char *in;
		if (c->in_off > 0) { /* compact before growing */
			memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		}
		if (c->in_cap - c->in_len < 4096) {
			if (cap > limit) {
				conn_fail(c, 413, "too_large", "request exceeds the gateway's limits");
				return;
			}
			in = realloc(c->in, cap);
			if (!in) {
				conn_close(c);
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF or error: a busy connection waits for its handler. */
		if (c->busy) {
			c->gone = true;
			conn_watch(c, 0);
		} else {
			conn_close(c);
		}
		return;
	}
	if (c->busy) { /* pipelined: parse after the answer; stop reading till then */
		conn_watch(c, 0);
		return;
	}
	conn_process(c);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conn *c = container_of(t, struct http_conn, timer);

	if (c->started && !c->busy && c->out.len == 0)
		conn_fail(c, 408, "timeout", "request not received in time");
	else
		conn_close(c);
}

static void conn_close(struct http_conn *c)
{
	if (c->busy) { /* the handler still holds the request */
		c->gone = true;
		conn_watch(c, 0);
		conn_arm_timer(c, 0);
		return;
	}
	ev_io_stop(c->srv->loop, &c->io);
	ev_timer_stop(c->srv->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->srv->nopen--;
	request_reset(c);
	strbuf_free(&c->url);
	strbuf_free(&c->field);
	strbuf_free(&c->value);
	strbuf_free(&c->body);
	strbuf_free(&c->authorization);
	strbuf_free(&c->content_type);
	strbuf_free(&c->last_event_id);
	strbuf_free(&c->out);
	free(c->in);
	free(c);
}

/* ---------------------------------------------------------------- accept */

static void refuse(int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
				   "Content-Length: 75\r\nConnection: close\r\n\r\n"
				   "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many open connections\"}}\n";
	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_server *s = container_of(w, struct http_server, accept_io);

	for (int i = 0; i < 256; i++) {
		struct http_conn *c;
		int one = 1;
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("accept: %s (raise the open files limit)", strerror(errno));
			return;
		}
		if (s->nopen >= s->limits.max_connections) {
			refuse(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->srv = s;
		c->fd = fd;
		s->nopen++;
		http_parser_init(&c->parser, HTTP_REQUEST);
		c->parser.data = c;
		ev_io_init(&c->io, on_conn_io, fd, EV_READ);
		ev_init(&c->timer, on_conn_timer);
		ev_io_start(loop, &c->io);
		conn_arm_timer(c, s->limits.idle_timeout);
	}
}

static int parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	char *end;
	long port;
	size_t hlen;

	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - addr);
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		host[hlen - 1] = '\0';
		memset(a6, 0, sizeof(*a6));
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a6);
		return 0;
	}
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		memset(a4, 0, sizeof(*a4));
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (!strcmp(host, "localhost"))
			a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a4);
	}
	return 0;
}

bool http_addr_is_loopback(const char *listen_addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (parse_listen(listen_addr, &ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

int http_server_start(struct http_server **ret, struct ev_loop *loop, const char *listen_addr,
		      const struct http_limits *limits, http_handler_fn handler, void *arg, char *err,
		      size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct http_server *s;
	int one = 1, fd;

	if (parse_listen(listen_addr, &ss, &len) < 0) {
		snprintf(err, errlen, "gateway.listen = \"%s\": not HOST:PORT with a numeric address", listen_addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", listen_addr, strerror(e));
		close(fd);
		return -e;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->loop = loop;
	s->fd = fd;
	s->limits = *limits;
	s->handler = handler;
	s->arg = arg;
	ev_io_init(&s->accept_io, on_accept, fd, EV_READ);
	ev_io_start(loop, &s->accept_io);
	*ret = s;
	return 0;
}

void http_server_stop(struct http_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	ev_io_stop(s->loop, &s->accept_io);
	close(s->fd);
	s->fd = -1;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	http_server_stop(s);
	free(s);
}
