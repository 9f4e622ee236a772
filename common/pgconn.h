/* SPDX-License-Identifier: MIT */
/* A non-blocking libpq connection on a libev loop: queued queries with
 * callbacks, LISTEN notifications, and reconnection with backoff. */
#ifndef JW_PGCONN_H
#define JW_PGCONN_H

#include <stdbool.h>

#include <ev.h>
#include <libpq-fe.h>

struct pgconn;

/* A query's result: res is the final PGresult of the statement (tuples,
 * command or error; owned by pgconn and cleared after the callback), or NULL
 * if the connection was lost before the result arrived (the statement may or
 * may not have committed). */
typedef void (*pgconn_result_fn)(struct pgconn *c, PGresult *res, void *arg);

struct pgconn_callbacks {
	/* The connection is up (first time or after a reconnect): set up
	 * LISTENs and session state here. */
	void (*connected)(struct pgconn *c, void *arg);
	/* The connection was lost; pgconn reconnects by itself. */
	void (*disconnected)(struct pgconn *c, const char *why, void *arg);
	/* A NOTIFY on a channel this session LISTENs to. */
	void (*notify)(struct pgconn *c, const char *channel, const char *payload, void *arg);
};

/* Creates a connection object; nothing happens before pgconn_start().
 * conninfo is a libpq string or URI (multi-host ones too); TCP keepalives
 * and application_name are defaulted before it, so the string can override
 * them. Returns NULL on allocation failure. */
struct pgconn *pgconn_new(struct ev_loop *loop, const char *conninfo, const char *application_name,
			  const struct pgconn_callbacks *cbs, void *arg);

/* Starts connecting (asynchronously); after a loss it reconnects with
 * jittered exponential backoff (100 ms .. 5 s) until pgconn_free(). */
void pgconn_start(struct pgconn *c);

/* Queues one parameterised statement (text parameters, text results).
 * Statements run one after another in queue order, each in its own implicit
 * transaction. params are copied. Returns 0, -ENOTCONN when not connected
 * (the callback is not called), or -ENOMEM. */
int pgconn_query(struct pgconn *c, const char *sql, int nparams, const char *const *params,
		 pgconn_result_fn cb, void *arg);

bool pgconn_is_connected(const struct pgconn *c);

/* Number of statements queued or in flight. */
int pgconn_pending(const struct pgconn *c);

/* Closes the connection; queued statements' callbacks are not called. */
void pgconn_free(struct pgconn *c);

/* Convenience for result callbacks: true for TUPLES_OK / COMMAND_OK. */
bool pgconn_result_ok(const PGresult *res);

#endif
