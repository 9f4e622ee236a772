/* SPDX-License-Identifier: MIT */
/* Outbound HTTP (and SMTP) on libcurl's multi interface driven by libev:
 * hundreds of transfers in flight per worker without threads, connections
 * reused, every transfer bounded in time and in the body it keeps, and
 * every connection checked against the address policy. */
#ifndef JW_HTTP_CLIENT_H
#define JW_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <ev.h>

#include "addr_policy.h"

#define HTTP_BODY_KEEP (64 * 1024) /* bytes of a response body kept */

struct http_client;
struct http_call;

struct http_result {
	CURLcode code;           /* libcurl's result */
	long status;             /* HTTP status, 0 without a response */
	const char *error;       /* what went wrong, "" when code is CURLE_OK */
	bool refused;            /* the address policy refused the destination */
	const char *body;        /* NUL-terminated, at most HTTP_BODY_KEEP bytes */
	size_t body_len;
	bool truncated;          /* the body was longer */
	int64_t retry_after_ms;  /* from a Retry-After header, -1 when none */
	int64_t duration_ms;
};

/* Called once when the transfer ends (not after http_call_abort). The
 * result is valid during the call only. */
typedef void (*http_done_fn)(struct http_call *call, const struct http_result *res, void *arg);

/* libcurl (and the TLS library under it) is set up on the first transfer,
 * not here: a worker that never runs an outbound kind does not pay for it
 * (about 2 MiB of resident memory). */
struct http_client *http_client_new(struct ev_loop *loop, const struct addr_policy *policy);
void http_client_free(struct http_client *c); /* aborts what is in flight */

/* A new easy handle for http_call_start(), libcurl set up first; NULL when
 * that fails (out of memory). */
CURL *http_client_easy(struct http_client *c);

/* Starts a transfer of url on an easy handle the caller has set up
 * (method, body, headers, timeouts, ...); the client adds its own callbacks
 * (body, headers, sockets, address policy) and takes the handle. Returns
 * the call, or NULL on failure (the handle is cleaned up). */
struct http_call *http_call_start(struct http_client *c, CURL *easy, const char *url, http_done_fn done,
				  void *arg);

/* Stops a transfer at once; done is not called. */
void http_call_abort(struct http_call *call);

/* The easy handle of a call, e.g. to read CURLINFO after it ended. */
CURL *http_call_easy(struct http_call *call);

#endif
