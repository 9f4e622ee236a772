/* SPDX-License-Identifier: MIT */
/* A non-blocking libpq connection on a libev loop: queued queries with
 * callbacks, LISTEN notifications, and reconnection with backoff. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "pgconn.h"
#include "util.h"

#define CONNECT_TIMEOUT_S 10.0
#define RECONNECT_BASE_MS 100
#define RECONNECT_CAP_MS 5000

struct query {
	struct query *next;
	char *sql;
	int nparams;
	char **params;
	pgconn_result_fn cb;
	void *arg;
};

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_UP, CONN_WAITING };

struct pgconn {
	struct ev_loop *loop;
	char *conninfo;
	char *application_name;
	struct pgconn_callbacks cbs;
	void *arg;

	PGconn *pg;
	enum conn_state state;
	ev_io io;
	ev_timer timer; /* connect timeout, or reconnect delay */
	int failures;   /* consecutive failed connects, for the backoff */
	struct rng rng;

	struct query *head, *tail; /* head is in flight when sent */
	bool head_sent;
	PGresult *head_result;
	int pending;
};

static void conn_lost(struct pgconn *c, const char *why);
static void send_next(struct pgconn *c);

static void query_free(struct query *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q);
}

bool pgconn_result_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Watches the socket for read, and for write while libpq has output queued. */
static void watch(struct pgconn *c, int events)
{
	int fd = PQsocket(c->pg);

	if (ev_is_active(&c->io) && (c->io.fd != fd || (c->io.events & (EV_READ | EV_WRITE)) != events))
		ev_io_stop(c->loop, &c->io);
	if (!ev_is_active(&c->io) && fd >= 0) {
		ev_io_set(&c->io, fd, events);
		ev_io_start(c->loop, &c->io);
	}
}

static void schedule_reconnect(struct pgconn *c)
{
	int64_t ms = backoff_ms(&c->rng, RECONNECT_BASE_MS, 2, c->failures + 1, RECONNECT_CAP_MS);

	c->failures++;
	c->state = CONN_WAITING;
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, (double)ms / 1000.0, 0);
	ev_timer_start(c->loop, &c->timer);
}

/* Drops the queue: in-flight and unsent statements get a NULL result. */
static void fail_queue(struct pgconn *c)
{
	while (c->head) {
		struct query *q = c->head;
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		c->pending--;
		PQclear(c->head_result);
		c->head_result = NULL;
		c->head_sent = false;
		if (q->cb)
			q->cb(c, NULL, q->arg);
		query_free(q);
	}
}

static void conn_lost(struct pgconn *c, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", why && *why ? why : "connection lost");
	msg[strcspn(msg, "\n")] = '\0';
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	bool was_up = c->state == CONN_UP;
	PQfinish(c->pg);
	c->pg = NULL;
	schedule_reconnect(c);
	fail_queue(c);
	if (was_up && c->cbs.disconnected)
		c->cbs.disconnected(c, msg, c->arg);
	else if (!was_up)
		log_warn("database connection failed: %s (retrying)", msg);
}

static void deliver_notifies(struct pgconn *c)
{
	PGnotify *n;

	while (c->pg && (n = PQnotifies(c->pg)) != NULL) {
		if (c->cbs.notify)
			c->cbs.notify(c, n->relname, n->extra, c->arg);
		PQfreemem(n);
	}
}

/* Reads whatever results are complete and runs their callbacks. */
static void read_results(struct pgconn *c)
{
	if (!PQconsumeInput(c->pg)) {
		conn_lost(c, PQerrorMessage(c->pg));
		return;
	}
	while (c->head_sent && !PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);
		if (res) {
			/* keep the last result of the statement */
			PQclear(c->head_result);
			c->head_result = res;
			continue;
		}
		struct query *q = c->head;
		PGresult *final = c->head_result;
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		c->head_sent = false;
		c->head_result = NULL;
		c->pending--;
		if (q->cb)
			q->cb(c, final, q->arg);
		PQclear(final);
		query_free(q);
		if (!c->pg) /* the callback's own query lost the connection */
			return;
		send_next(c);
	}
	deliver_notifies(c);
	if (c->pg && PQstatus(c->pg) == CONNECTION_BAD)
		conn_lost(c, PQerrorMessage(c->pg));
}

static void flush_output(struct pgconn *c)
{
	int r = PQflush(c->pg);

	if (r < 0)
		conn_lost(c, PQerrorMessage(c->pg));
	else
		watch(c, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void send_next(struct pgconn *c)
{
	struct query *q = c->head;

	if (c->state != CONN_UP || !q || c->head_sent)
		return;
	if (!PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL, NULL,
			       0)) {
		conn_lost(c, PQerrorMessage(c->pg));
		return;
	}
	c->head_sent = true;
	flush_output(c);
}

static void on_connected(struct pgconn *c)
{
	ev_timer_stop(c->loop, &c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		conn_lost(c, PQerrorMessage(c->pg));
		return;
	}
	c->state = CONN_UP;
	c->failures = 0;
	watch(c, EV_READ);
	if (c->cbs.connected)
		c->cbs.connected(c, c->arg);
}

/* Advances the asynchronous connect by one step. */
static void poll_connect(struct pgconn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		on_connected(c);
		break;
	default:
		conn_lost(c, PQerrorMessage(c->pg));
		break;
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgconn *c = container_of(w, struct pgconn, io);

	if (c->state == CONN_CONNECTING) {
		poll_connect(c);
		return;
	}
	if (revents & EV_WRITE) {
		flush_output(c);
		if (!c->pg)
			return;
	}
	if (revents & EV_READ)
		read_results(c);
}

static void begin_connect(struct pgconn *c)
{
	/* Our defaults come first: the user's conninfo (expanded from dbname)
	 * overrides them. Keepalives make a dead server or a cut network
	 * visible within ~15 s instead of the kernel's two hours. */
	const char *keys[] = { "application_name", "keepalives", "keepalives_idle", "keepalives_interval",
			       "keepalives_count", "tcp_user_timeout", "dbname", NULL };
	const char *vals[] = { c->application_name, "1", "5", "2", "3", "15000", c->conninfo, NULL };

	c->pg = PQconnectStartParams(keys, vals, 1);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_lost(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = CONN_CONNECTING;
	ev_timer_set(&c->timer, CONNECT_TIMEOUT_S, 0);
	ev_timer_start(c->loop, &c->timer);
	poll_connect(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgconn *c = container_of(w, struct pgconn, timer);

	if (c->state == CONN_CONNECTING)
		conn_lost(c, "connect timed out");
	else if (c->state == CONN_WAITING)
		begin_connect(c);
}

struct pgconn *pgconn_new(struct ev_loop *loop, const char *conninfo, const char *application_name,
			  const struct pgconn_callbacks *cbs, void *arg)
{
	struct pgconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->conninfo = strdup(conninfo ? conninfo : "");
	c->application_name = strdup(application_name ? application_name : "jobwheel");
	if (!c->conninfo || !c->application_name) {
		pgconn_free(c);
		return NULL;
	}
	c->loop = loop;
	c->cbs = *cbs;
	c->arg = arg;
	rng_seed(&c->rng, 0);
	ev_io_init(&c->io, io_cb, -1, EV_READ);
	ev_timer_init(&c->timer, timer_cb, 0, 0);
	return c;
}

void pgconn_start(struct pgconn *c)
{
	if (c->state == CONN_IDLE)
		begin_connect(c);
}

int pgconn_query(struct pgconn *c, const char *sql, int nparams, const char *const *params,
		 pgconn_result_fn cb, void *arg)
{
	struct query *q;

	if (c->state != CONN_UP)
		return -ENOTCONN;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->sql = strdup(sql);
	q->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
	if (!q->sql || (nparams && !q->params))
		goto oom;
	q->nparams = nparams;
	for (int i = 0; i < nparams; i++)
		if (params[i] && !(q->params[i] = strdup(params[i])))
			goto oom;
	q->cb = cb;
	q->arg = arg;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->pending++;
	send_next(c);
	return 0;
oom:
	query_free(q);
	return -ENOMEM;
}

bool pgconn_is_connected(const struct pgconn *c)
{
	return c->state == CONN_UP;
}

int pgconn_pending(const struct pgconn *c)
{
	return c->pending;
}

void pgconn_free(struct pgconn *c)
{
	if (!c)
		return;
	if (c->loop) {
		ev_io_stop(c->loop, &c->io);
		ev_timer_stop(c->loop, &c->timer);
	}
	while (c->head) {
		struct query *q = c->head;
		c->head = q->next;
		query_free(q);
	}
	PQclear(c->head_result);
	PQfinish(c->pg);
	free(c->conninfo);
	free(c->application_name);
	free(c);
}
