/* SPDX-License-Identifier: MIT */
/* Vacuums jobwheel.jobs while jobs are being finished, on the leader's
 * maintenance connection.
 *
 * A claimed job's entry at the front of jobs_claim_idx is marked dead by
 * the first scan that finds it so, but stays on its page until VACUUM
 * (B-tree pages are cleaned on insertion only, and no job is inserted at
 * the front), and every claim reads those pages from the start: 500 000
 * such entries cost 4.3 ms a claim against 0.13 ms after a 373 ms VACUUM.
 * Autovacuum comes at most once a minute (autovacuum_naptime), so a queue
 * draining 20 000 jobs/s would slow down between its visits.
 *
 * So once a second: when the statistics count VACUUM_DEAD_TUPLES dead row
 * versions (two per finished job) and no long transaction holds the xmin
 * horizon (a vacuum could remove nothing), VACUUM. INDEX_CLEANUP ON: with a
 * long history the dead rows are under 2 % of the table and VACUUM would
 * otherwise leave the indexes alone. Not while another vacuum (or ANALYZE)
 * holds the table's lock, and SKIP_LOCKED should one take it meanwhile:
 * never wait behind an autovacuum, nor warn each second. A slow vacuum
 * pushes the next one back (struct backoff), and a maintenance round waits
 * behind a vacuum in flight on the shared connection. The coordinator
 * connects as the tables' owner; under any other role VACUUM only warns. */
#include <stdio.h>

#include "coord.h"
#include "log.h"
#include "util.h"

#define VACUUM_CHECK_S 1.0
#define VACUUM_DEAD_TUPLES "50000"

static void vacuumed(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	c->vacuuming = false;
	backoff_ended(&c->vacuum_backoff, ev_now(c->loop));
	if (res && !pgconn_result_ok(res))
		log_error("vacuum of jobwheel.jobs failed: %s", PQresultErrorMessage(res));
	else if (res)
		log_debug("vacuumed jobwheel.jobs in %.0f ms", c->vacuum_backoff.took * 1000);
}

static void checked(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	if (!res || !pgconn_result_ok(res) || PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't') {
		if (res && !pgconn_result_ok(res))
			log_error("checking whether jobwheel.jobs needs a vacuum failed: %s",
				  PQresultErrorMessage(res));
		c->vacuuming = false;
		return;
	}
	backoff_began(&c->vacuum_backoff, ev_now(c->loop));
	if (pgconn_query(c->maint, "VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) jobwheel.jobs", 0, NULL, vacuumed, c) < 0)
		c->vacuuming = false;
}

static void on_vacuum_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, vacuum_timer);

	if (!c->leader || c->vacuuming || !pgconn_is_connected(c->maint))
		return;
	if (!backoff_due(&c->vacuum_backoff, ev_now(loop)))
		return;
	if (pgconn_query(c->maint,
			 "SELECT n_dead_tup >= " VACUUM_DEAD_TUPLES " AND NOT jobwheel._horizon_held()"
			 " AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'jobwheel.jobs'::regclass"
			 "                 AND mode = 'ShareUpdateExclusiveLock')"
			 " FROM pg_stat_user_tables WHERE relid = 'jobwheel.jobs'::regclass",
			 0, NULL, checked, c) == 0)
		c->vacuuming = true;
}

void vacuum_init(struct coord *c)
{
	ev_timer_init(&c->vacuum_timer, on_vacuum_timer, VACUUM_CHECK_S, VACUUM_CHECK_S);
}

void vacuum_start(struct coord *c)
{
	c->vacuum_backoff.took = 0;
	ev_timer_again(c->loop, &c->vacuum_timer);
}

void vacuum_stop(struct coord *c)
{
	ev_timer_stop(c->loop, &c->vacuum_timer);
}
