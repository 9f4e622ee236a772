/* SPDX-License-Identifier: MIT */
/* The worker's shared state: the loop and lifecycle (worker.c), the running
 * jobs (running.c), claims and reports (claim.c), heartbeats (heartbeat.c)
 * and the lease guard (lease_guard.c). Nothing outside worker/ uses it. */
#ifndef JW_WORKER_IMPL_H
#define JW_WORKER_IMPL_H

#include <stdbool.h>

#include <ev.h>

#include "config.h"
#include "job.h"
#include "outcomes.h"
#include "pgconn.h"
#include "rand.h"
#include "strbuf.h"

enum phase {
	PHASE_RUNNING,   /* claiming and running */
	PHASE_DRAINING,  /* SIGTERM: no claims, running jobs may finish */
	PHASE_RELEASING, /* grace over: giving unfinished jobs back */
	PHASE_LEAVING,   /* deregistering */
	PHASE_DONE,
};

struct worker {
	struct ev_loop *loop;
	struct config *cfg;
	struct pgconn *db;
	struct pgconn *claim_db; /* claims while db is busy */
	struct job_env env;
	struct rng rng;
	char id[320];
	char host[256];
	char **queues;                  /* the queue names (owned by the caller) */
	int nqueues;
	struct strbuf queues_array;     /* the same as a PostgreSQL array: {q1,q2} */
	struct strbuf release_ids;      /* jobs given back at the end of the grace */
	struct strbuf release_attempts;

	enum phase phase;
	bool clean_exit;
	bool registered;
	bool releasing; /* the release statement is in flight */

	ev_prepare tick;
	ev_timer poll;
	ev_timer trail; /* the claims that follow each wake-up (on_trail) */
	int trail_step;
	ev_timer watchdog;
	ev_timer grace;

	/* running.c */
	struct job *jobs; /* running jobs, doubly linked */
	int running;

	/* claim.c: up to two claims in flight, one per connection: asked[0]
	 * on db, asked[1] on claim_db (0 = none); their slots are reserved. */
	int asked[2];
	double asked_at[2]; /* when each was sent (ev_now) */
	bool more_work;   /* the last claim was full, or a wake-up came */
	bool claim_again; /* a wake-up came while a claim was in flight */
	struct outcomes out;
	bool reporting; /* an outcome batch is in flight */

	/* heartbeat.c */
	ev_timer heartbeat;
	bool heartbeat_out;    /* a heartbeat is in flight, sent at heartbeat_sent */
	double heartbeat_sent;
	struct strbuf heartbeat_ids; /* parameter of the heartbeat */

	/* lease_guard.c */
	ev_timer lease_guard; /* on_lease_guard */
	ev_check lease_check; /* runs a due lease_guard first in each loop pass */
};

/* Sends sql on the main connection; a failure is logged, the result ignored.
 * what names the statement in the log. */
void worker_query_or_log(struct worker *w, const char *sql, int nparams, const char *const *params,
			 const char *what);

#endif
