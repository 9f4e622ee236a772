/* SPDX-License-Identifier: MIT */
/* The starvation daemon and retention, on the leader's maintenance
 * connection. Every statement here is safe to run twice (SKIP LOCKED,
 * fenced updates, deletes of old rows), so it needs no leader fence and
 * never delays the timer's promotions on the leader connection. */
#include <stdio.h>
#include <stdlib.h>

#include "coord.h"
#include "log.h"
#include "util.h"

#define PRUNE_BATCH 10000

static void maint_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	c->maint_busy = false;
	backoff_ended(&c->maint_backoff, ev_now(c->loop));
	if (!res)
		return;
	if (!pgconn_result_ok(res)) {
		log_error("maintenance failed: %s", PQresultErrorMessage(res));
		return;
	}
	const char *names[] = { "expired lease(s)", "lost worker(s)", "hung job(s) failed", "job(s) aged",
				"due job(s) promoted late" };
	for (int i = 0; i < 5; i++)
		if (atoi(PQgetvalue(res, 0, i)) > 0)
			log_info("maintenance: %s %s", PQgetvalue(res, 0, i), names[i]);
}

/* Expired leases, lost workers, hung jobs, priority aging, and a safety net
 * for due jobs the timer did not know of. A slow round pushes the next one
 * back (struct backoff): while a long transaction holds the xmin horizon,
 * the scans of running jobs take 0.4 s a round after 3 minutes at 10 000
 * jobs/s. */
static void on_maint_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, maint_timer);
	char stale[24], lease[24], wait[24];
	const char *params[3] = { stale, lease, wait };

	if (!c->leader || c->maint_busy || !pgconn_is_connected(c->maint))
		return;
	if (!backoff_due(&c->maint_backoff, ev_now(loop)))
		return;
	/* A worker is lost after three missed heartbeats. */
	snprintf(stale, sizeof(stale), "%lld", (long long)(3 * c->cfg->worker_heartbeat_ms));
	snprintf(lease, sizeof(lease), "%lld", (long long)c->cfg->worker_lease_ms);
	snprintf(wait, sizeof(wait), "%lld", (long long)c->cfg->starvation_max_wait_ms);
	if (pgconn_query(c->maint,
			 "SELECT jobwheel.expire_leases(1000), jobwheel.mark_lost_workers($1),"
			 " jobwheel.fail_hung($2), jobwheel.age_priorities($3), jobwheel.promote_due(1000)",
			 3, params, maint_done, c) == 0) {
		c->maint_busy = true;
		backoff_began(&c->maint_backoff, ev_now(loop));
	}
}

static void send_prune(struct coord *c);

static void pruned(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	if (!res || !pgconn_result_ok(res)) {
		if (res)
			log_error("retention failed: %s", PQresultErrorMessage(res));
		c->pruning = false;
		return;
	}
	int jobs = atoi(PQgetvalue(res, 0, 0)), events = atoi(PQgetvalue(res, 0, 1));
	c->pruned_run += jobs;
	/* One short transaction per batch; go on while batches come back full. */
	if ((jobs == PRUNE_BATCH || events == PRUNE_BATCH) && c->leader) {
		send_prune(c);
		return;
	}
	if (c->pruned_run > 0)
		log_info("retention: pruned %lld finished job(s)", (long long)c->pruned_run);
	c->pruning = false;
}

static void send_prune(struct coord *c)
{
	char succ[24], dead[24], events[24];
	const char *params[3] = { succ, dead, events };

	snprintf(succ, sizeof(succ), "%lld", (long long)c->cfg->retention_succeeded);
	snprintf(dead, sizeof(dead), "%lld", (long long)c->cfg->retention_dead);
	snprintf(events, sizeof(events), "%lld", (long long)c->cfg->retention_events);
	if (pgconn_query(c->maint, "SELECT jobwheel.prune($1, $2, " "10000" "), jobwheel.prune_events($3, 10000)",
			 3, params, pruned, c) < 0)
		c->pruning = false;
}

static void on_retention_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, retention_timer);

	if (!c->leader || c->pruning || !pgconn_is_connected(c->maint))
		return;
	c->pruning = true;
	c->pruned_run = 0;
	send_prune(c);
}

void maint_init(struct coord *c)
{
	ev_timer_init(&c->maint_timer, on_maint_timer, 0, (double)c->cfg->coordinator_maintenance_ms / 1000.0);
	ev_timer_init(&c->retention_timer, on_retention_timer, 0,
		      (double)c->cfg->coordinator_retention_ms / 1000.0);
}

void maint_start(struct coord *c)
{
	ev_timer_again(c->loop, &c->maint_timer);
	ev_timer_again(c->loop, &c->retention_timer);
	c->maint_backoff.took = 0; /* a new term starts with a round at once */
	on_maint_timer(c->loop, &c->maint_timer, 0);
}

void maint_stop(struct coord *c)
{
	ev_timer_stop(c->loop, &c->maint_timer);
	ev_timer_stop(c->loop, &c->retention_timer);
}
