/* SPDX-License-Identifier: MIT */
/* A small pool of non-blocking database connections for API requests, so
 * that one slow query never holds up the others (or the SSE relay). */
#ifndef JW_GATEWAY_DB_H
#define JW_GATEWAY_DB_H

#include <stdbool.h>

#include "pgconn.h"

struct db_pool;

/* Creates and starts n connections. Returns NULL on allocation failure. */
struct db_pool *db_pool_new(struct ev_loop *loop, const char *conninfo, int n);

/* Queues a statement on the connected connection with the fewest statements
 * waiting. Returns 0, -ENOTCONN when none is connected (cb not called), or
 * -ENOMEM. The callback is as pgconn's (res NULL: connection lost). */
int db_query(struct db_pool *p, const char *sql, int nparams, const char *const *params, pgconn_result_fn cb,
	     void *arg);

/* At least one connection is up. */
bool db_ready(const struct db_pool *p);

void db_pool_free(struct db_pool *p);

#endif
