/* SPDX-License-Identifier: MIT */
/* The gateway process's parts, shared by its modules. */
#ifndef JW_GATEWAY_H
#define JW_GATEWAY_H

#include <ev.h>

#include "config.h"

struct gateway {
	struct ev_loop *loop;
	const struct config *cfg;
	struct db_pool *db;          /* API requests */
	struct http_server *http;
	struct feed *feed;           /* change feed reader (own connection) */
	struct sse *sse;             /* SSE clients and the event ring */
	struct metrics *metrics;     /* counters fed by the feed */
	struct call *calls;          /* API calls in flight (api.c), freed at exit */
};

#endif
