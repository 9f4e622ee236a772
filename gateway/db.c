/* SPDX-License-Identifier: MIT */
/* The gateway's connection pool: least-loaded dispatch over pgconns. */
#include <errno.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"

struct db_pool {
	int n;
	struct pgconn *conns[];
};

static void on_disconnected(struct pgconn *c, const char *why, void *arg)
{
	log_warn("database connection lost: %s", why);
}

/* Timestamps in answers are RFC 3339 in UTC (json_build_object prints them
 * in the session's time zone). */
static void on_connected(struct pgconn *c, void *arg)
{
	pgconn_query(c, "SET TimeZone = 'UTC'", 0, NULL, NULL, NULL);
}

static const struct pgconn_callbacks pool_callbacks = { .connected = on_connected,
							 .disconnected = on_disconnected };

struct db_pool *db_pool_new(struct ev_loop *loop, const char *conninfo, int n)
{
	struct db_pool *p = calloc(1, sizeof(*p) + (size_t)n * sizeof(p->conns[0]));

	if (!p)
		return NULL;
	p->n = n;
	for (int i = 0; i < n; i++) {
		p->conns[i] = pgconn_new(loop, conninfo, "jobwheel-gateway", &pool_callbacks, p);
		if (!p->conns[i]) {
			db_pool_free(p);
			return NULL;
		}
		pgconn_start(p->conns[i]);
	}
	return p;
}

int db_query(struct db_pool *p, const char *sql, int nparams, const char *const *params, pgconn_result_fn cb,
	     void *arg)
{
	struct pgconn *best = NULL;

	for (int i = 0; i < p->n; i++) {
		if (pgconn_is_connected(p->conns[i]) &&
		    (!best || pgconn_pending(p->conns[i]) < pgconn_pending(best)))
			best = p->conns[i];
	}
	if (!best)
		return -ENOTCONN;
	return pgconn_query(best, sql, nparams, params, cb, arg);
}

bool db_ready(const struct db_pool *p)
{
	for (int i = 0; i < p->n; i++)
		if (pgconn_is_connected(p->conns[i]))
			return true;
	return false;
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		pgconn_free(p->conns[i]);
	free(p);
}
