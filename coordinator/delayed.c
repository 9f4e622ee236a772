/* SPDX-License-Identifier: MIT */
/* Delayed jobs and retries: the leader keeps every scheduled job due within
 * coordinator.horizon_ms in a timer (wheel or heap) and makes each ready at
 * its run_at.
 *
 * It learns of jobs in two ways, neither a poll per job:
 *   - the horizon: scheduled_between(loaded_until, now + horizon) as time
 *     advances (index on run_at);
 *   - the cursor: every coordinator.cursor_ms, scheduled_since(xid) returns
 *     jobs made scheduled by transactions at or after the xmin of the
 *     previous read's snapshot (index on sched_xid), i.e. new delayed jobs
 *     and retries inside the horizon. Nothing that commits late is missed;
 *     a row read twice just re-arms the same timer.
 * At expiry it promotes the fired ids in batches with promote_ids(), which
 * wakes the workers of their queues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"
#include "util.h"

#define PROMOTE_BATCH 5000
#define READ_LIMIT 100000

static void arm_fire_timer(struct coord *c);

/* A read answered (next_xid, db_now_ms, ids, run_at_ms): take the cursor,
 * align our clock with the database's (assuming the answer was made half
 * way through the round trip), arm the jobs. Returns how many, or -1. */
static int read_result(struct coord *c, PGresult *res, int64_t sent_wall_ms, int64_t *ret_last_ms)
{
	int64_t *ids = NULL, *ms = NULL;
	int n, m;

	if (!res || !pgconn_result_ok(res) || PQntuples(res) != 1) {
		if (res)
			log_error("reading scheduled jobs failed: %s", PQresultErrorMessage(res));
		return -1;
	}
	snprintf(c->cursor, sizeof(c->cursor), "%s", PQgetvalue(res, 0, 0));
	/* Trust the sample with the shortest round trip (its midpoint is the
	 * tightest estimate), NTP-style; take any sample after 10 s so that a
	 * drifting clock is followed. A read that queued behind a burst of
	 * promotions would otherwise skew the offset by half its wait. */
	int64_t recv_wall_ms = coord_wall_ms(), rtt = recv_wall_ms - sent_wall_ms;
	if (rtt <= c->clock_rtt_ms || recv_wall_ms - c->clock_sampled_ms > 10000) {
		c->clock_offset_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10) - (sent_wall_ms + recv_wall_ms) / 2;
		c->clock_rtt_ms = rtt;
		c->clock_sampled_ms = recv_wall_ms;
	}
	if (PQgetisnull(res, 0, 2))
		return 0;
	n = coord_parse_ids(PQgetvalue(res, 0, 2), &ids);
	m = coord_parse_ids(PQgetvalue(res, 0, 3), &ms);
	for (int i = 0; i < n && i < m; i++)
		if (timer_add(c->timer, ids[i], (uint64_t)ms[i]) < 0)
			log_error("out of memory arming job %lld; the maintenance pass will promote it",
				  (long long)ids[i]);
	if (m > 0 && ret_last_ms)
		*ret_last_ms = ms[m - 1];
	free(ids);
	free(ms);
	return n < m ? n : m;
}

struct read_ctx {
	struct coord *c;
	int64_t sent_wall_ms;
	int64_t until_ms;
};

static void horizon_read(struct pgconn *db, PGresult *res, void *arg)
{
	struct read_ctx *r = arg;
	struct coord *c = r->c;
	int64_t last_ms = 0;
	int n;

	c->reading = false;
	if (c->leader && (n = read_result(c, res, r->sent_wall_ms, &last_ms)) >= 0) {
		/* A full page leaves jobs below until: go on from the last run_at
		 * loaded next time (rows come in run_at order; re-arming is harmless). */
		c->loaded_until_ms = n >= READ_LIMIT ? last_ms : r->until_ms;
		arm_fire_timer(c);
	}
	free(r);
}

static void cursor_read(struct pgconn *db, PGresult *res, void *arg)
{
	struct read_ctx *r = arg;
	struct coord *c = r->c;

	c->reading = false;
	if (c->leader && read_result(c, res, r->sent_wall_ms, NULL) >= 0)
		arm_fire_timer(c);
	free(r);
}

static void send_read(struct coord *c, bool horizon)
{
	char a[32], b[32], limit[16];
	const char *params[3] = { a, b, limit };
	struct read_ctx *r;

	if (!c->leader || c->reading || !pgconn_is_connected(c->db))
		return;
	if (!horizon && !*c->cursor)
		return; /* the first horizon read sets the cursor */
	r = malloc(sizeof(*r));
	if (!r)
		return;
	r->c = c;
	r->sent_wall_ms = coord_wall_ms();
	r->until_ms = coord_db_now_ms(c) + c->cfg->coordinator_horizon_ms;
	snprintf(limit, sizeof(limit), "%d", READ_LIMIT);
	if (horizon) {
		snprintf(a, sizeof(a), "%lld", (long long)c->loaded_until_ms);
		snprintf(b, sizeof(b), "%lld", (long long)r->until_ms);
	} else {
		snprintf(a, sizeof(a), "%s", c->cursor);
		snprintf(b, sizeof(b), "%lld", (long long)c->loaded_until_ms);
	}
	if (pgconn_query(c->db,
			 horizon ? "SELECT * FROM jobwheel.scheduled_between($1, $2, $3)"
				 : "SELECT * FROM jobwheel.scheduled_since($1::xid8, $2, $3)",
			 3, params, horizon ? horizon_read : cursor_read, r) == 0)
		c->reading = true;
	else
		free(r);
}

static void on_cursor_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	send_read(container_of(t, struct coord, cursor_timer), false);
}

static void on_horizon_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	send_read(container_of(t, struct coord, horizon_timer), true);
}

/* ---------------------------------------------------------------- expiry */

static void flush_fired(struct coord *c);

static void promoted(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	c->promoting--;
	if (c->leader)
		flush_fired(c); /* what fired while this batch was out goes next */
	if (!res || !pgconn_result_ok(res)) {
		/* The jobs stay scheduled; the next leader, or the maintenance
		 * pass's promote_due(), makes them ready. */
		if (res)
			log_error("promoting due jobs failed: %s", PQresultErrorMessage(res));
		return;
	}
	/* Still in the future by the database's clock: arm again, 1 ms on. */
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		int64_t at = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		int64_t now = coord_db_now_ms(c);
		timer_add(c->timer, id, (uint64_t)(at > now ? at : now + 1));
	}
	if (PQntuples(res))
		arm_fire_timer(c);
}

/* Sends the fired ids as one promotion, unless one is out already: then they
 * wait for it and go together. At a burst of due jobs this turns one
 * statement per millisecond into one per round trip. */
static void flush_fired(struct coord *c)
{
	const char *params[1];

	if (c->nfired == 0 || c->promoting > 0)
		return;
	pgarray_end(&c->fired);
	params[0] = strbuf_str(&c->fired);
	if (!c->fired.oom &&
	    pgconn_query(c->db, "SELECT * FROM jobwheel.promote_ids($1::bigint[])", 1, params, promoted, c) == 0)
		c->promoting++;
	c->promoted_total += c->nfired;
	c->nfired = 0;
	pgarray_begin(&c->fired);
}

static void on_fire(int64_t id, uint64_t when_ms, void *arg)
{
	struct coord *c = arg;

	pgarray_add_int(&c->fired, id);
	if (++c->nfired == PROMOTE_BATCH)
		flush_fired(c); /* the first batch goes out while we gather the rest */
}

static void on_fire_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, fire_timer);

	if (!c->leader)
		return;
	timer_advance(c->timer, (uint64_t)coord_db_now_ms(c), on_fire, c);
	flush_fired(c);
	arm_fire_timer(c);
}

/* Sleeps until the earliest deadline (on the database clock). */
static void arm_fire_timer(struct coord *c)
{
	uint64_t next = timer_next(c->timer);
	double delay;

	ev_timer_stop(c->loop, &c->fire_timer);
	if (next == UINT64_MAX || !c->leader)
		return;
	ev_now_update(c->loop);
	int64_t wait = (int64_t)next - coord_db_now_ms(c);
	delay = wait > 0 ? (double)wait / 1000.0 : 0;
	ev_timer_set(&c->fire_timer, delay, 0);
	ev_timer_start(c->loop, &c->fire_timer);
}

/* ---------------------------------------------------------------- lifecycle */

int delayed_init(struct coord *c)
{
	c->timer = timer_new(c->timer_kind, 0);
	if (!c->timer)
		return -1;
	pgarray_begin(&c->fired);
	ev_timer_init(&c->fire_timer, on_fire_timer, 0, 0);
	ev_timer_init(&c->cursor_timer, on_cursor_timer, 0, (double)c->cfg->coordinator_cursor_ms / 1000.0);
	/* Extend the horizon well before its end: ten times per horizon, at most every second. */
	double extend = (double)c->cfg->coordinator_horizon_ms / 10000.0;
	ev_timer_init(&c->horizon_timer, on_horizon_timer, 0, extend < 1.0 ? extend : 1.0);
	return 0;
}

void delayed_start(struct coord *c)
{
	/* A fresh timer: whatever the previous term knew may be stale. */
	timer_free(c->timer);
	c->timer = timer_new(c->timer_kind, (uint64_t)coord_db_now_ms(c));
	c->loaded_until_ms = 0;
	c->cursor[0] = '\0';
	c->reading = false;
	if (!c->timer) {
		log_error("out of memory creating the timer");
		return;
	}
	ev_timer_again(c->loop, &c->cursor_timer);
	ev_timer_again(c->loop, &c->horizon_timer);
	send_read(c, true);
}

void delayed_stop(struct coord *c)
{
	ev_timer_stop(c->loop, &c->fire_timer);
	ev_timer_stop(c->loop, &c->cursor_timer);
	ev_timer_stop(c->loop, &c->horizon_timer);
	c->nfired = 0;
	pgarray_begin(&c->fired);
}

void delayed_free(struct coord *c)
{
	delayed_stop(c);
	timer_free(c->timer);
	c->timer = NULL;
	strbuf_free(&c->fired);
}
