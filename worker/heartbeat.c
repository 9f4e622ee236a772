/* SPDX-License-Identifier: MIT */
/* The heartbeat: renews leases, learns which jobs are no longer ours. */
#include <stdio.h>
#include <stdlib.h>

#include "heartbeat.h"
#include "lease_guard.h"
#include "log.h"
#include "running.h"
#include "util.h"
#include "worker_impl.h"

static void heartbeat_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	w->heartbeat_out = false;
	if (!res)
		return;
	if (!pgconn_result_ok(res)) {
		log_error("heartbeat failed: %s", PQresultErrorMessage(res));
		return;
	}
	lease_guard_arm(w, w->heartbeat_sent);
	/* Jobs the database says we no longer hold: cancelled while we were
	 * disconnected, or reclaimed after our lease ran out. */
	for (int i = 0; i < PQntuples(res); i++) {
		struct job *job = running_find(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (job) {
			log_warn("job %lld is no longer ours (cancelled or lease lost): aborting it",
				 (long long)job->id);
			running_abort(w, job);
		}
	}
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, heartbeat);
	char lease[24];
	const char *params[3] = { w->id, NULL, lease };

	if (!pgconn_is_connected(w->db) || w->heartbeat_out)
		return;
	pgarray_begin(&w->heartbeat_ids);
	for (struct job *j = w->jobs; j; j = j->next)
		pgarray_add_int(&w->heartbeat_ids, j->id);
	pgarray_end(&w->heartbeat_ids);
	params[1] = strbuf_str(&w->heartbeat_ids);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->cfg->worker_lease_ms);
	if (pgconn_query(w->db, "SELECT * FROM jobwheel.heartbeat($1, $2::bigint[], $3)", 3, params, heartbeat_done,
			 w) == 0) {
		w->heartbeat_out = true;
		w->heartbeat_sent = ev_now(loop);
	}
	/* Until the coordinator exists everywhere, workers also reclaim
	 * expired leases (of crashed workers); SKIP LOCKED keeps them apart. */
	worker_query_or_log(w, "SELECT jobwheel.expire_leases(1000)", 0, NULL, "expiring leases");
}

void heartbeat_init(struct worker *w)
{
	ev_timer_init(&w->heartbeat, on_heartbeat, 0, (double)w->cfg->worker_heartbeat_ms / 1000.0);
}

void heartbeat_start(struct worker *w)
{
	ev_timer_again(w->loop, &w->heartbeat);
}

void heartbeat_stop(struct worker *w)
{
	ev_timer_stop(w->loop, &w->heartbeat);
}
