/* SPDX-License-Identifier: MIT */
/* One connection's request parser: http-parser callbacks assembling the
 * request line, the headers the gateway uses and the body, within limits.
 * No I/O here, so it is unit-tested and fuzzed as it runs. */
#ifndef JW_GATEWAY_REQUEST_H
#define JW_GATEWAY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "http.h"
#include "strbuf.h"

enum request_header { HDR_OTHER, HDR_AUTHORIZATION, HDR_CONTENT_TYPE, HDR_LAST_EVENT_ID, HDR_EXPECT };

struct request_parser {
	http_parser parser;
	size_t max_header, max_body;
	struct strbuf url, field, value, body;
	struct strbuf authorization, content_type, last_event_id;
	enum request_header hdr;
	bool value_seen;
	size_t header_bytes;
	bool started;         /* the first byte of a request has been parsed */
	bool complete;        /* a whole request is in req */
	bool expect_continue; /* the client waits for "100 Continue" */
	int error_status;     /* 400, 413 or 431: answer it and close */
	const char *error;    /* what the error is, for the answer */
	char *path;
	struct http_request req;
};

void request_parser_init(struct request_parser *rp, size_t max_header, size_t max_body);

/* Parses up to len bytes and returns how many it used: it stops after one
 * whole request (rp->complete, rp->req ready) or at an error
 * (rp->error_status). Call request_parser_next() before the next request. */
size_t request_parser_feed(struct request_parser *rp, const char *data, size_t len);

/* Whether the connection may stay open after the current request. */
bool request_keep_alive(const struct request_parser *rp);

/* Forgets the current request, for the next one on the connection. */
void request_parser_next(struct request_parser *rp);
void request_parser_free(struct request_parser *rp);

#endif
