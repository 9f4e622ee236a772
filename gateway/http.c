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


#include "http.h"
#include "request.h"
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
	struct http_conn *conns; /* the open connections, freed with the server */
};

struct http_conn {
	struct http_server *srv;
	struct http_conn *prev, *next; /* in srv->conns */
	int fd;
	ev_io io;
	ev_timer timer;
	char *in;            /* received bytes not parsed yet start at in + in_off */
	size_t in_len, in_cap, in_off;
	struct strbuf out;   /* response bytes not written yet start at out.s + out_off */
	size_t out_off;
	struct request_parser rp; /* the request being read */
	bool busy;           /* the handler has not answered yet */
	bool close_after;    /* no keep-alive: close once the response is out */
	bool gone;           /* the client went away while busy */
	bool timing;         /* the request timer runs (a request has begun) */
	bool linger;         /* after the response: read and drop input until EOF (conn_linger) */
};

static void conn_close(struct http_conn *c);
static void conn_process(struct http_conn *c);
static void conn_linger(struct http_conn *c);

/* How long an error response waits for the client to stop sending. */
#define LINGER_S 2.0

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
	request_parser_next(&c->rp);
	c->timing = false;
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
		if (c->linger)
			conn_linger(c);
		else
			conn_close(c);
		return false;
	}
	return true;
}

/* An error answered before the request was read (a body over the limit,
 * malformed HTTP) leaves the client still sending. Closing at once would
 * make the kernel reset the connection, and a reset discards the answer
 * before the client reads it (a proxy shows 502 instead of 413). So: end
 * our side, drop what still comes, close at EOF or after LINGER_S. */
static void conn_linger(struct http_conn *c)
{
	shutdown(c->fd, SHUT_WR);
	conn_watch(c, EV_READ);
	conn_arm_timer(c, LINGER_S);
}

static void conn_drain(struct http_conn *c)
{
	char scratch[16384];

	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c); /* EOF or error */
		return;
	}
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
	c->linger = true;
	conn_watch(c, 0);
	append_response(c, status, "application/json", body, (size_t)n, NULL);
	conn_flush(c);
}

void http_respond(struct http_request *req, int status, const char *content_type, const char *body,
		  size_t len, const char *extra_headers)
{
	struct http_conn *c = container_of(req, struct http_conn, rp.req);

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
	struct http_conn *c = container_of(req, struct http_conn, rp.req);
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

/* Parses what is buffered and hands over the next complete request. */
static void conn_process(struct http_conn *c)
{
	struct request_parser *rp = &c->rp;

	while (!c->busy && c->in_off < c->in_len) {
		c->in_off += request_parser_feed(rp, c->in + c->in_off, c->in_len - c->in_off);
		if (rp->error_status) {
			conn_fail(c, rp->error_status, rp->error_status == 400 ? "bad_request" : "too_large",
				  rp->error);
			return;
		}
		if (rp->started && !c->timing) {
			c->timing = true;
			conn_arm_timer(c, c->srv->limits.request_timeout);
		}
		if (rp->expect_continue && !rp->complete) {
			rp->expect_continue = false;
			strbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
			if (!conn_flush(c))
				return;
		}
		if (!rp->complete)
			break;
		c->close_after = !request_keep_alive(rp) || c->srv->stopping;
		rp->req.server = c->srv;
		c->busy = true;
		conn_arm_timer(c, 0);
		c->srv->handler(&rp->req, c->srv->arg); /* may answer at once, recursing here */
		return;
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (!c->busy && c->fd >= 0) {
		conn_watch(c, EV_READ);
		if (!rp->started)
			conn_arm_timer(c, c->srv->limits.idle_timeout);
	}
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = container_of(w, struct http_conn, io);

	if (c->linger && c->out.len == 0) {
		conn_drain(c);
		return;
	}
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

	if (c->rp.started && !c->busy && c->out.len == 0 && !c->linger)
		conn_fail(c, 408, "timeout", "request not received in time");
	else
		conn_close(c);
}

static void conn_free(struct http_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ev_io_stop(c->srv->loop, &c->io);
	ev_timer_stop(c->srv->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->srv->nopen--;
	request_parser_free(&c->rp);
	strbuf_free(&c->out);
	free(c->in);
	free(c);
}

static void conn_close(struct http_conn *c)
{
	if (c->busy) { /* the handler still holds the request */
		c->gone = true;
		conn_watch(c, 0);
		conn_arm_timer(c, 0);
		return;
	}
	conn_free(c);
}

/* ---------------------------------------------------------------- accept */

static void refuse(int fd)
{
	static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many open connections\"}}\n";
	char busy[256];
	int n = snprintf(busy, sizeof(busy), "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof(body) - 1, body);

	(void)!send(fd, busy, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
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
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nopen++;
		request_parser_init(&c->rp, s->limits.max_header, s->limits.max_body);
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
	/* Connections still open at exit, busy ones too: their calls are
	 * freed without answering (api_free_calls). */
	while (s->conns)
		conn_free(s->conns);
	free(s);
}
