/* SPDX-License-Identifier: MIT */
/* Cron: the leader keeps every schedule's next tick and fires it with
 * jobwheel.fire_schedule(), whose conditional update lets each tick fire
 * once across restarts and fail-overs. After downtime only the latest missed
 * tick fires. Schedules are reloaded on NOTIFY jobwheel_schedules and every
 * minute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"
#include "util.h"

#define RELOAD_S 60.0

static void arm_cron_timer(struct coord *c);
static void load(struct coord *c);

static void clear(struct coord *c)
{
	for (int i = 0; i < c->nschedules; i++)
		free(c->schedules[i].name);
	free(c->schedules);
	c->schedules = NULL;
	c->nschedules = 0;
}

static void loaded(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;
	int n;

	c->cron_loading = false;
	if (!res || !pgconn_result_ok(res) || !c->leader) {
		if (res && !pgconn_result_ok(res))
			log_error("loading schedules failed: %s", PQresultErrorMessage(res));
		return;
	}
	clear(c);
	n = PQntuples(res);
	c->schedules = calloc((size_t)(n ? n : 1), sizeof(*c->schedules));
	if (!c->schedules) {
		log_error("out of memory loading %d schedule(s)", n);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct schedule *s = &c->schedules[c->nschedules];
		char err[256];
		if (cron_parse(PQgetvalue(res, i, 1), &s->expr, err, sizeof(err)) < 0) {
			log_error("schedule %s: %s; skipped", PQgetvalue(res, i, 0), err);
			continue;
		}
		s->name = strdup(PQgetvalue(res, i, 0));
		if (!s->name)
			continue;
		/* The first tick after the later of the last fired tick and the
		 * schedule's last change: an edit never revives old ticks. */
		s->next_ms = cron_next(&s->expr, strtoll(PQgetvalue(res, i, 2), NULL, 10));
		c->nschedules++;
	}
	log_debug("loaded %d schedule(s)", c->nschedules);
	if (c->cron_reload) {
		c->cron_reload = false;
		load(c);
	}
	arm_cron_timer(c);
}

static void load(struct coord *c)
{
	if (c->cron_loading) {
		c->cron_reload = true; /* changed while loading: load again after */
		return;
	}
	if (pgconn_query(c->db,
			 "SELECT name, cron, (extract(epoch FROM greatest(last_tick, updated_at)) * 1000)::bigint"
			 " FROM jobwheel.schedules",
			 0, NULL, loaded, c) == 0)
		c->cron_loading = true;
}

static void fired(struct pgconn *db, PGresult *res, void *arg)
{
	char *name = arg;

	if (res && !pgconn_result_ok(res))
		log_error("firing schedule %s failed: %s", name, PQresultErrorMessage(res));
	else if (res && !PQgetisnull(res, 0, 0))
		log_info("schedule %s fired: job %s", name, PQgetvalue(res, 0, 0));
	free(name);
}

/* The latest tick at or before now, given that `due` (<= now) is one. After
 * downtime that is the only tick to fire. Looks back over windows growing
 * fourfold from 1 s, so the walk covers a few windows' worth of ticks
 * whatever the downtime, then walks forward to the last tick before now. */
static int64_t latest_due(const struct cron_expr *e, int64_t due, int64_t now)
{
	int64_t tick = due, later;

	for (int64_t back = 1000; now - back > due; back *= 4) {
		int64_t t = cron_next(e, now - back);
		if (t >= 0 && t <= now) {
			tick = t;
			break;
		}
	}
	while ((later = cron_next(e, tick)) >= 0 && later <= now)
		tick = later;
	return tick;
}

static void fire(struct coord *c, struct schedule *s, int64_t now)
{
	int64_t tick = latest_due(&s->expr, s->next_ms, now);
	char at[32];
	const char *params[2] = { s->name, at };
	char *name;

	snprintf(at, sizeof(at), "%lld", (long long)tick);
	name = strdup(s->name);
	if (name && pgconn_query(c->db, "SELECT jobwheel.fire_schedule($1, to_timestamp($2::bigint / 1000.0))", 2,
				 params, fired, name) < 0)
		free(name);
	s->next_ms = cron_next(&s->expr, tick);
}

static void on_cron_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, cron_timer);
	int64_t now = coord_db_now_ms(c);
	int due = 0;

	if (!c->leader)
		return;
	for (int i = 0; i < c->nschedules; i++) {
		if (c->schedules[i].next_ms >= 0 && c->schedules[i].next_ms <= now) {
			fire(c, &c->schedules[i], now);
			due++;
		}
	}
	if (due)
		arm_cron_timer(c);
	else
		load(c); /* woke for the periodic reload; loaded() re-arms */
}

/* Sleeps until the next tick of any schedule, or the periodic reload. */
static void arm_cron_timer(struct coord *c)
{
	int64_t now = coord_db_now_ms(c), next = now + (int64_t)(RELOAD_S * 1000);

	for (int i = 0; i < c->nschedules; i++)
		if (c->schedules[i].next_ms >= 0 && c->schedules[i].next_ms < next)
			next = c->schedules[i].next_ms;
	ev_timer_stop(c->loop, &c->cron_timer);
	ev_now_update(c->loop);
	ev_timer_set(&c->cron_timer, next > now ? (double)(next - now) / 1000.0 : 0, 0);
	ev_timer_start(c->loop, &c->cron_timer);
}

void cron_init(struct coord *c)
{
	ev_timer_init(&c->cron_timer, on_cron_timer, 0, 0);
}

void cron_start(struct coord *c)
{
	load(c);
}

void cron_changed(struct coord *c)
{
	load(c);
}

void cron_stop(struct coord *c)
{
	ev_timer_stop(c->loop, &c->cron_timer);
	clear(c);
}

void cron_free(struct coord *c)
{
	cron_stop(c);
}
