/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 server on libev: connections, request parsing by http-parser,
 * limits, keep-alive and pipelining; responses and hand-over of streams. */
#ifndef JW_HTTP_H
#define JW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

struct http_server;

struct http_limits {
	size_t max_header;      /* request line + headers, bytes (431 beyond) */
	size_t max_body;        /* body, bytes (413 beyond) */
	int max_connections;    /* open connections, streams included (503 beyond) */
	double idle_timeout;    /* seconds a kept-alive connection may wait */
	double request_timeout; /* seconds from a request's first byte to its end */
};

/* One request, complete. Owned by its connection; valid until http_respond()
 * or http_detach() is called on it, which the handler must do exactly once
 * (later, from a callback, is fine: the connection waits, and a client that
 * goes away meanwhile is cleaned up then). */
struct http_request {
	int method;          /* enum http_method of http_parser.h (HTTP_GET, ...) */
	const char *path;    /* percent-decoded path, without the query */
	const char *query;   /* raw query string without '?', or "" */
	const char *authorization, *content_type, *last_event_id; /* headers or NULL */
	const char *body;    /* NUL-terminated, body_len bytes ("" when none) */
	size_t body_len;
	struct http_server *server;
};

typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/* Listens on host:port (numeric IPv4/IPv6 address or "localhost") and calls
 * handler for every request. Returns 0, or a negative errno with a message
 * in err (bad address, bind failure). */
int http_server_start(struct http_server **ret, struct ev_loop *loop, const char *listen_addr,
		      const struct http_limits *limits, http_handler_fn handler, void *arg, char *err,
		      size_t errlen);

/* Stops accepting; open connections close when their response is sent. */
void http_server_stop(struct http_server *s);
/* Stops, and frees every connection still open, those whose handler has not
 * answered among them (the caller drops their requests without answering). */
void http_server_free(struct http_server *s);

/* Sends a whole response: status, Content-Type (may be NULL with len 0),
 * optional extra header lines (each ending in "\r\n") and the body. */
void http_respond(struct http_request *req, int status, const char *content_type, const char *body,
		  size_t len, const char *extra_headers);

/* Hands the connection over as a long-lived stream: the response head is
 * the caller's to write. Returns the socket (non-blocking, the caller now
 * owns and closes it and must call http_server_stream_closed() then), or -1
 * when the client is gone already (the request is finished either way). */
int http_detach(struct http_request *req);
void http_server_stream_closed(struct http_server *s);

/* The decoded value of query parameter `name` in `query` into buf; returns
 * 1 found, 0 absent, -EINVAL for bad escapes, -E2BIG if it does not fit. */
int http_query_param(const char *query, const char *name, char *buf, size_t buflen);

/* Reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

/* Whether the listen address is a loopback one (127.0.0.0/8, ::1, localhost). */
bool http_addr_is_loopback(const char *listen_addr);

#endif
