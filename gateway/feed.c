/* SPDX-License-Identifier: MIT */
/* Follows jobwheel.events by (xid, id) and decodes its rows into events.
 * Rows of type 'jobs' hold one array per changed job (0005_feed.sql). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "feed.h"
#include "feed_row.h"
#include "log.h"
#include "pgconn.h"
#include "util.h"

#define FEED_ROWS 100     /* rows per read (~2 MB at most); a full page is read again at once */
#define REPLAY_ROWS 2000

#define FEED_COLUMNS "e.xid::text, e.id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), e.type, e.data::text"

struct replay {
	struct feed *feed;
	struct replay *next;
	uint64_t after_id;
	int max_events, sent;
	uint64_t skipped; /* events past max_events */
	feed_event_fn on_event;
	feed_replay_done_fn done;
	void *arg; /* NULL once forgotten */
};

struct feed {
	struct ev_loop *loop;
	struct pgconn *db;
	ev_timer poll;
	double poll_s;
	feed_event_fn on_event;
	feed_batch_fn on_batch;
	void *arg;
	bool have_head;      /* the start position is known */
	bool reading, again; /* a read is out; read again when it returns */
	char cursor_xid[24]; /* last row seen: (xid, id) */
	int64_t cursor_id;
	uint64_t cur_xid, k; /* transaction of the last row and its next event index */
	uint64_t live_from;  /* SSE id of the start position */
	struct replay *replays;
};

static enum feed_type type_of(const char *t)
{
	if (!strcmp(t, "jobs"))
		return FEED_JOB;
	if (!strcmp(t, "worker"))
		return FEED_WORKER;
	if (!strcmp(t, "dlq"))
		return FEED_DLQ;
	if (!strcmp(t, "coordinator"))
		return FEED_COORDINATOR;
	return FEED_NTYPES; /* other types are not relayed */
}

static uint64_t event_id(uint64_t xid, uint64_t k)
{
	uint64_t max_k = ((uint64_t)1 << FEED_ID_SHIFT) - 1;
	return (xid << FEED_ID_SHIFT) | (k < max_k ? k : max_k);
}

int feed_decode_row(const char *xid_text, const char *at, const char *type_text, const char *data, uint64_t *cur_xid,
		    uint64_t *k, feed_event_fn on_event, void *arg)
{
	enum feed_type type = type_of(type_text);
	struct feed_event ev = { .type = type, .at = at };
	struct feed_row row;
	struct feed_job job;
	char *end;
	int n = 0, rc;

	errno = 0;
	ev.xid = strtoull(xid_text, &end, 10);
	if (*end || errno || !xid_text[0] || ev.xid >= ((uint64_t)1 << (64 - FEED_ID_SHIFT)))
		return -EINVAL;
	if (ev.xid != *cur_xid) {
		*cur_xid = ev.xid;
		*k = 0;
	}
	if (type == FEED_NTYPES)
		return 0;
	if (type != FEED_JOB) {
		/* Re-printed compact, as job events are (jsonb's text has spaces). */
		cJSON *obj = cJSON_Parse(data);
		char *compact = obj ? cJSON_PrintUnformatted(obj) : NULL;
		cJSON_Delete(obj);
		if (!compact)
			return -EINVAL;
		ev.id = event_id(ev.xid, (*k)++);
		ev.data = compact;
		on_event(&ev, arg);
		free(compact);
		return 1;
	}
	if (feed_row_open(&row, data) < 0)
		return -EINVAL;
	while ((rc = feed_row_next(&row, &job)) > 0) {
		ev.id = event_id(ev.xid, (*k)++);
		ev.job = &job;
		on_event(&ev, arg);
		n++;
	}
	feed_row_close(&row);
	if (rc < 0)
		return -EINVAL;
	return n;
}

/* ---------------------------------------------------------------- live feed */

static void feed_read(struct feed *f);

static void on_rows(struct pgconn *c, PGresult *res, void *arg)
{
	struct feed *f = arg;
	int rows;

	f->reading = false;
	if (!res || !pgconn_result_ok(res)) {
		if (res)
			log_error("reading the change feed: %s", PQresultErrorMessage(res));
		return; /* the poll timer tries again */
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		if (feed_decode_row(PQgetvalue(res, i, 0), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
				    PQgetvalue(res, i, 4), &f->cur_xid, &f->k, f->on_event, f->arg) < 0)
			log_warn("change feed row %s is malformed; skipped", PQgetvalue(res, i, 1));
		snprintf(f->cursor_xid, sizeof(f->cursor_xid), "%s", PQgetvalue(res, i, 0));
		f->cursor_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
	if (f->on_batch)
		f->on_batch(f->arg);
	if (rows == FEED_ROWS || f->again) {
		f->again = false;
		feed_read(f);
	}
}

static void feed_read(struct feed *f)
{
	char id[24], limit[16];

	if (!f->have_head)
		return;
	if (f->reading) {
		f->again = true;
		return;
	}
	snprintf(id, sizeof(id), "%" PRId64, f->cursor_id);
	snprintf(limit, sizeof(limit), "%d", FEED_ROWS);
	if (pgconn_query(f->db, "SELECT " FEED_COLUMNS " FROM jobwheel.feed($1::xid8, $2, $3) e", 3,
			 (const char *[]){ f->cursor_xid, id, limit }, on_rows, f) == 0)
		f->reading = true;
}

static void on_head(struct pgconn *c, PGresult *res, void *arg)
{
	struct feed *f = arg;

	if (!res || !pgconn_result_ok(res) || PQntuples(res) != 1) {
		log_error("cannot read the change feed position: %s",
			  res ? PQresultErrorMessage(res) : "connection lost");
		return;
	}
	snprintf(f->cursor_xid, sizeof(f->cursor_xid), "%s", PQgetvalue(res, 0, 0));
	f->cursor_id = 0;
	f->live_from = event_id(strtoull(f->cursor_xid, NULL, 10), 0);
	f->have_head = true;
	log_info("following the change feed from transaction %s", f->cursor_xid);
	if (f->on_batch)
		f->on_batch(f->arg); /* replays that waited for the start position */
	feed_read(f);
}

static void on_connected(struct pgconn *c, void *arg)
{
	struct feed *f = arg;

	f->reading = false;
	pgconn_query(c, "LISTEN jobwheel_wake", 0, NULL, NULL, NULL);
	if (!f->have_head) /* after a reconnect, carry on from the cursor: nothing is lost */
		pgconn_query(c, "SELECT jobwheel.feed_head()::text", 0, NULL, on_head, f);
	else
		feed_read(f);
}

static void on_disconnected(struct pgconn *c, const char *why, void *arg)
{
	struct feed *f = arg;

	f->reading = false;
	log_warn("change feed connection lost: %s", why);
}

static void on_notify(struct pgconn *c, const char *channel, const char *payload, void *arg)
{
	feed_read(arg);
}

static const struct pgconn_callbacks feed_callbacks = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.notify = on_notify,
};

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	feed_read(container_of(t, struct feed, poll));
}

struct feed *feed_new(struct ev_loop *loop, const char *conninfo, double poll_s, feed_event_fn on_event,
		      feed_batch_fn on_batch, void *arg)
{
	struct feed *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->loop = loop;
	f->poll_s = poll_s;
	f->on_event = on_event;
	f->on_batch = on_batch;
	f->arg = arg;
	f->db = pgconn_new(loop, conninfo, "jobwheel-gateway feed", &feed_callbacks, f);
	if (!f->db) {
		free(f);
		return NULL;
	}
	ev_timer_init(&f->poll, on_poll, poll_s, poll_s);
	return f;
}

void feed_start(struct feed *f)
{
	pgconn_start(f->db);
	ev_timer_start(f->loop, &f->poll);
}

int feed_query(struct feed *f, const char *sql, pgconn_result_fn cb, void *arg)
{
	return pgconn_query(f->db, sql, 0, NULL, cb, arg);
}

uint64_t feed_live_from(const struct feed *f)
{
	return f->have_head ? f->live_from : 0;
}

bool feed_live(const struct feed *f)
{
	return f->have_head && pgconn_is_connected(f->db);
}

/* ---------------------------------------------------------------- replay */

static void replay_event(const struct feed_event *ev, void *arg)
{
	struct replay *r = arg;

	if (ev->id <= r->after_id || !r->arg)
		return;
	if (r->sent >= r->max_events) {
		r->skipped++;
		return;
	}
	r->sent++;
	r->on_event(ev, r->arg);
}

static void replay_unlink(struct replay *r)
{
	struct replay **p = &r->feed->replays;

	while (*p && *p != r)
		p = &(*p)->next;
	if (*p)
		*p = r->next;
}

static void on_replay_rows(struct pgconn *c, PGresult *res, void *arg)
{
	struct replay *r = arg;
	uint64_t cur_xid = 0, k = 0;
	bool failed = !res || !pgconn_result_ok(res);

	replay_unlink(r);
	if (!failed) {
		int rows = PQntuples(res);
		for (int i = 0; i < rows && r->arg; i++)
			feed_decode_row(PQgetvalue(res, i, 0), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
					PQgetvalue(res, i, 4), &cur_xid, &k, replay_event, r);
		if (rows == REPLAY_ROWS && !r->skipped)
			r->skipped = 1; /* at least */
	}
	if (r->arg)
		r->done(r->arg, r->skipped, failed);
	free(r);
}

int feed_replay(struct feed *f, uint64_t after_id, int max_events, feed_event_fn on_event,
		feed_replay_done_fn done, void *arg)
{
	struct replay *r;
	char from_xid[24], to_id[24], limit[16];
	int rc;

	if (!f->have_head)
		return -EAGAIN;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct replay){ .feed = f, .after_id = after_id, .max_events = max_events, .on_event = on_event,
			      .done = done, .arg = arg };
	/* From the start of the transaction of after_id, so that event indexes
	 * within it count as the live feed counted them. */
	snprintf(from_xid, sizeof(from_xid), "%" PRIu64, after_id >> FEED_ID_SHIFT);
	snprintf(to_id, sizeof(to_id), "%" PRId64, f->cursor_id);
	snprintf(limit, sizeof(limit), "%d", REPLAY_ROWS);
	rc = pgconn_query(f->db,
			  "SELECT " FEED_COLUMNS " FROM jobwheel.events e "
			  "WHERE (e.xid, e.id) >= ($1::xid8, 0) AND (e.xid, e.id) <= ($2::xid8, $3::bigint) "
			  "ORDER BY e.xid, e.id LIMIT $4",
			  4, (const char *[]){ from_xid, f->cursor_xid, to_id, limit }, on_replay_rows, r);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->next = f->replays;
	f->replays = r;
	return 0;
}

void feed_replay_forget(struct feed *f, void *arg)
{
	for (struct replay *r = f->replays; r; r = r->next)
		if (r->arg == arg)
			r->arg = NULL;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	ev_timer_stop(f->loop, &f->poll);
	pgconn_free(f->db); /* queued callbacks are not called */
	while (f->replays) {
		struct replay *r = f->replays;
		f->replays = r->next;
		free(r);
	}
	free(f);
}
