/* SPDX-License-Identifier: MIT */
/* The worker: claims jobs, runs their handlers on the loop, reports outcomes
 * in batches, heartbeats, and drains on shutdown.
 *
 * Everything happens on one libev loop. An ev_prepare watcher runs once per
 * loop iteration, after all callbacks: it sends the outcomes gathered in that
 * iteration and a claim for as many jobs as there are free slots, together in
 * one statement (one transaction, one commit). So a cycle of no-op jobs costs
 * one statement, whatever its size. A second connection lets a claim go out
 * while the first is still busy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "log.h"
#include "outcomes.h"
#include "pgconn.h"
#include "sdnotify.h"
#include "strbuf.h"
#include "util.h"
#include "worker.h"

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
	struct strbuf heartbeat_ids;    /* parameter of the heartbeat */
	struct strbuf release_ids;      /* jobs given back at the end of the grace */
	struct strbuf release_attempts;

	enum phase phase;
	bool clean_exit;
	bool registered;

	struct job *jobs; /* running jobs, doubly linked */
	int running;

	/* Up to two claims in flight, one per connection: asked[0] on db,
	 * asked[1] on claim_db (0 = none); their slots are reserved. */
	int asked[2];
	double asked_at[2]; /* when each was sent (ev_now) */
	bool more_work;   /* the last claim was full, or a wake-up came */
	bool claim_again; /* a wake-up came while a claim was in flight */

	struct outcomes out;
	bool reporting; /* an outcome batch is in flight */
	bool releasing; /* the release statement is in flight */

	ev_prepare tick;
	ev_timer poll;
	ev_timer trail; /* the claims that follow each wake-up (on_trail) */
	int trail_step;
	ev_timer heartbeat;
	bool heartbeat_out;    /* a heartbeat is in flight, sent at heartbeat_sent */
	double heartbeat_sent;
	ev_timer lease_guard;  /* on_lease_guard */
	ev_timer watchdog;
	ev_timer grace;
};

static void leave(struct worker *w);

/* ------------------------------------------------------------------ jobs */

static struct worker *worker_of(const struct job *job)
{
	return container_of(job->env, struct worker, env);
}

static void job_destroy(struct worker *w, struct job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		w->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	ev_timer_stop(w->loop, &job->timeout);
	w->running--;
	cJSON_Delete(job->payload);
	cJSON_Delete(job->parents);
	free(job->queue);
	free(job->kind);
	free(job);
}

/* env->finished: a handler reported; keep the outcome for the next flush. */
static void job_finished(struct job *job, struct job_outcome *o)
{
	struct worker *w = worker_of(job);

	if (o->ok)
		log_debug("job %lld (%s) attempt %d succeeded", (long long)job->id, job->kind, job->attempt);
	else
		log_info("job %lld (%s) attempt %d/%d failed%s: %s", (long long)job->id, job->kind, job->attempt,
			 job->max_attempts, o->retryable ? "" : " (not retryable)", o->error);
	if (outcomes_add(&w->out, job->id, job->attempt, o) < 0)
		log_error("job %lld: out of memory recording its outcome; its lease will expire",
			  (long long)job->id);
	cJSON_Delete(o->result);
	job_destroy(w, job);
}

/* Stops a running job and reports nothing (cancelled, lost, shutdown). */
static void job_abort(struct worker *w, struct job *job)
{
	job->finished = true;
	if (job->handler && job->handler->abort)
		job->handler->abort(job);
	job_destroy(w, job);
}

static void job_timed_out(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct job *job = container_of(t, struct job, timeout);

	if (job->handler && job->handler->abort)
		job->handler->abort(job);
	job_fail(job, "timeout", true, 0);
}

static struct job *find_job(struct worker *w, int64_t id)
{
	for (struct job *j = w->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static void start_job(struct worker *w, PGresult *res, int row)
{
	struct job *job = calloc(1, sizeof(*job));

	if (!job) {
		log_error("out of memory starting a job; its lease will expire");
		return;
	}
	job->env = &w->env;
	job->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	job->attempt = atoi(PQgetvalue(res, row, 1));
	job->max_attempts = atoi(PQgetvalue(res, row, 2));
	job->queue = strdup(PQgetvalue(res, row, 3));
	job->kind = strdup(PQgetvalue(res, row, 4));
	job->payload = cJSON_Parse(PQgetvalue(res, row, 5));
	job->timeout_ms = strtoll(PQgetvalue(res, row, 6), NULL, 10);
	job->parents = PQgetisnull(res, row, 7) ? NULL : cJSON_Parse(PQgetvalue(res, row, 7));
	job->handler = job->kind ? handler_lookup(job->kind) : NULL;

	job->next = w->jobs;
	if (w->jobs)
		w->jobs->prev = job;
	w->jobs = job;
	w->running++;
	ev_timer_init(&job->timeout, job_timed_out, (double)job->timeout_ms / 1000.0, 0);
	ev_timer_start(w->loop, &job->timeout);

	if (!job->queue || !job->kind || !job->payload) {
		job_fail(job, "out of memory", true, 0);
	} else if (!job->handler) {
		/* Retryable: during a rolling deploy another worker may know it. */
		job_failf(job, true, "unknown kind %s: no handler in this worker", job->kind);
	} else {
		log_debug("job %lld (%s) attempt %d started", (long long)job->id, job->kind, job->attempt);
		job->handler->start(job); /* may finish and free the job at once */
	}
}

/* ----------------------------------------------------------- lease guard */

/* How long after a heartbeat is sent the database surely still holds every
 * job this worker runs: a lease past half its length was renewed by it, a
 * younger one has half or more left (jobwheel.heartbeat), and the worker
 * counts as lost 3 heartbeats later. Minus a margin. */
static double held_for_s(const struct config *cfg)
{
	double lease = (double)cfg->worker_lease_ms / 2000.0, lost = 3.0 * (double)cfg->worker_heartbeat_ms / 1000.0;
	double held = lease < lost ? lease : lost;

	return held * 0.95;
}

/* No heartbeat came back in time (the database is unreachable, or the
 * network to it is cut and TCP has not noticed): the leases of the running
 * jobs may have expired and the jobs be running again elsewhere. Give them
 * up now, reporting nothing, so that no job ever runs twice at once. */
static void on_lease_guard(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, lease_guard);

	if (!w->jobs)
		return;
	log_warn("no heartbeat confirmed for %.1f s: giving up %d running job(s), which may be reclaimed "
		 "(leases of %lld ms)", held_for_s(w->cfg), w->running, (long long)w->cfg->worker_lease_ms);
	while (w->jobs)
		job_abort(w, w->jobs);
}

/* The jobs were confirmed ours at `confirmed_at` (ev_now time): give them up
 * if nothing confirms them again in time. */
static void lease_guard_arm(struct worker *w, double confirmed_at)
{
	ev_timer_stop(w->loop, &w->lease_guard);
	ev_timer_set(&w->lease_guard, confirmed_at + held_for_s(w->cfg) - ev_now(w->loop), 0);
	ev_timer_start(w->loop, &w->lease_guard);
}

/* ------------------------------------------------------- claim and report */

static bool claiming(const struct worker *w)
{
	return w->asked[0] || w->asked[1];
}

static void claim_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;
	int i = db == w->db ? 0 : 1, *slot = &w->asked[i], asked = *slot, n;
	double sent = w->asked_at[i];

	*slot = 0;
	if (!res) {
		w->more_work = true; /* claim again after the reconnect */
		return;
	}
	if (!pgconn_result_ok(res)) {
		log_error("claim failed: %s", PQresultErrorMessage(res));
		return; /* the poll timer tries again */
	}
	n = PQntuples(res);
	/* An answer that took longer than the leases surely last (the worker
	 * was frozen, the network slow): the jobs may be running elsewhere by
	 * now. Leave them to expire and be retried rather than run them twice. */
	if (n > 0 && ev_now(w->loop) - sent >= held_for_s(w->cfg)) {
		log_warn("a claim of %d job(s) was answered after %.1f s: not starting them (their leases may have "
			 "expired)", n, ev_now(w->loop) - sent);
		return;
	}
	for (int k = 0; k < n; k++)
		start_job(w, res, k);
	/* Fresh leases, counted from when the claim was sent. */
	if (n > 0 && !ev_is_active(&w->lease_guard))
		lease_guard_arm(w, sent);
	/* A full batch means there may be more; so does a wake-up during the claim. */
	w->more_work = w->more_work || w->claim_again || n == asked;
	w->claim_again = false;
}

static void report_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	w->reporting = false;
	if (!res) {
		outcomes_unsent(&w->out); /* resent after the reconnect */
		return;
	}
	if (!pgconn_result_ok(res)) {
		/* Not expected (fenced writes do not fail); keep them for a retry. */
		log_error("reporting outcomes failed: %s", PQresultErrorMessage(res));
		outcomes_unsent(&w->out);
		return;
	}
	outcomes_sent(&w->out);
}

static void report_and_claim_done(struct pgconn *db, PGresult *res, void *arg)
{
	report_done(db, res, arg);
	claim_done(db, res, arg);
}

/* How many jobs to claim now, or 0: the free slots not reserved by a claim
 * in flight. */
static int claim_size(const struct worker *w)
{
	int free_slots = (int)w->cfg->worker_concurrency - w->running - w->asked[0] - w->asked[1];

	if (w->phase != PHASE_RUNNING || !w->more_work)
		return 0;
	return free_slots > 0 ? free_slots : 0;
}

/* Where a claim goes: the main connection when idle; else the claim
 * connection, so that a claim never waits for the WAL flush of a report or
 * of another claim; else behind the report. NULL: both claims are out. */
static struct pgconn *claim_connection(struct worker *w, int **ret_slot)
{
	if (!w->asked[0] && pgconn_pending(w->db) == 0) {
		*ret_slot = &w->asked[0];
		return w->db;
	}
	if (!w->asked[1] && pgconn_is_connected(w->claim_db)) {
		*ret_slot = &w->asked[1];
		return w->claim_db;
	}
	if (!w->asked[0]) {
		*ret_slot = &w->asked[0];
		return w->db;
	}
	return NULL;
}

/* Sends what this loop iteration gathered: outcomes and a claim go in one
 * statement (one commit) when there are both; otherwise whichever there is. */
static void report_and_claim(struct worker *w)
{
	const char *params[12];
	const char *sql = NULL;
	char n[16], lease[24];
	const char *claim_params[4] = { w->id, strbuf_str(&w->queues_array), n, lease };
	int want = claim_size(w), *slot;
	bool report = !w->reporting && outcomes_waiting(&w->out) > 0;
	struct pgconn *db;

	if (report && !(sql = outcomes_begin_send(&w->out, params))) {
		log_error("out of memory building the outcome batch");
		report = false;
	}
	snprintf(n, sizeof(n), "%d", want);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->cfg->worker_lease_ms);
	if (report && want > 0 && !w->asked[0]) {
		memcpy(params + 8, claim_params, sizeof(claim_params));
		if (pgconn_query(w->db, outcomes_report_and_claim_sql, 12, params, report_and_claim_done, w) < 0) {
			outcomes_unsent(&w->out);
			return;
		}
		w->reporting = true;
		w->asked[0] = want;
		w->asked_at[0] = ev_now(w->loop);
		w->more_work = false;
		return;
	}
	if (report) {
		if (pgconn_query(w->db, sql, 8, params, report_done, w) < 0) {
			outcomes_unsent(&w->out);
			return;
		}
		w->reporting = true;
	}
	db = want > 0 ? claim_connection(w, &slot) : NULL;
	if (db && pgconn_query(db, "SELECT " CLAIM_COLUMNS " FROM jobwheel.claim($1, $2::text[], $3, $4)", 4,
			       claim_params, claim_done, w) == 0) {
		*slot = want;
		w->asked_at[slot - w->asked] = ev_now(w->loop);
		w->more_work = false;
	}
}

/* ------------------------------------------------------------- lifecycle */

static void ignore_result(struct pgconn *db, PGresult *res, void *arg)
{
	const char *what = arg;

	if (res && !pgconn_result_ok(res))
		log_error("%s failed: %s", what, PQresultErrorMessage(res));
}

static void query_or_log(struct worker *w, const char *sql, int nparams, const char *const *params,
			 const char *what)
{
	if (pgconn_query(w->db, sql, nparams, params, ignore_result, (void *)what) < 0)
		log_debug("%s skipped: database not connected", what);
}

static void left(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	if (!res) /* lost the connection: deregister after the reconnect */
		return;
	if (!pgconn_result_ok(res))
		log_error("deregistering failed: %s", PQresultErrorMessage(res));
	w->phase = PHASE_DONE;
	w->clean_exit = pgconn_result_ok(res);
	log_info("worker %s stopped", w->id);
	ev_break(w->loop, EVBREAK_ALL);
}

static void leave(struct worker *w)
{
	const char *params[1] = { w->id };

	w->phase = PHASE_LEAVING;
	pgconn_query(w->db, "SELECT jobwheel.deregister_worker($1)", 1, params, left, w);
}

static void released(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	w->releasing = false;
	if (!res)
		return; /* sent again after the reconnect, see maybe_finish() */
	if (!pgconn_result_ok(res))
		log_error("releasing jobs failed: %s", PQresultErrorMessage(res));
	else
		log_info("gave %s unfinished job(s) back to their queues", PQgetvalue(res, 0, 0));
	leave(w);
}

/* Gives the aborted jobs back without spending an attempt. */
static void send_release(struct worker *w)
{
	const char *params[2] = { strbuf_str(&w->release_ids), strbuf_str(&w->release_attempts) };

	if (pgconn_query(w->db, "SELECT jobwheel.release_many($1::bigint[], $2::int[])", 2, params, released, w) == 0)
		w->releasing = true;
}

/* Drives shutdown forward once outcomes are out. */
static void maybe_finish(struct worker *w)
{
	if (w->reporting || outcomes_waiting(&w->out) > 0)
		return;
	if (w->phase == PHASE_DRAINING && w->running == 0)
		leave(w);
	else if (w->phase == PHASE_RELEASING && !w->releasing)
		send_release(w);
}

static void grace_over(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, grace);

	if (w->phase != PHASE_DRAINING)
		return;
	log_warn("shutdown grace over: giving %d running job(s) back", w->running);
	pgarray_begin(&w->release_ids);
	pgarray_begin(&w->release_attempts);
	while (w->jobs) {
		pgarray_add_int(&w->release_ids, w->jobs->id);
		pgarray_add_int(&w->release_attempts, w->jobs->attempt);
		job_abort(w, w->jobs);
	}
	pgarray_end(&w->release_ids);
	pgarray_end(&w->release_attempts);
	w->phase = PHASE_RELEASING;
}

void worker_drain(struct worker *w)
{
	const char *params[1] = { w->id };

	if (w->phase != PHASE_RUNNING)
		return;
	log_info("draining: %d job(s) running, grace %lld ms", w->running,
		 (long long)w->cfg->worker_shutdown_grace_ms);
	sdnotify_stopping();
	w->phase = PHASE_DRAINING;
	ev_timer_stop(w->loop, &w->poll);
	ev_timer_stop(w->loop, &w->trail);
	query_or_log(w, "SELECT jobwheel.set_worker_state($1, 'stopping')", 1, params, "marking the worker stopping");
	ev_timer_set(&w->grace, (double)w->cfg->worker_shutdown_grace_ms / 1000.0, 0);
	ev_timer_start(w->loop, &w->grace);
}

/* Once per loop iteration, after every callback of that iteration. */
static void on_tick(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = container_of(p, struct worker, tick);

	if (!pgconn_is_connected(w->db) || !w->registered || w->phase == PHASE_LEAVING || w->phase == PHASE_DONE)
		return;
	report_and_claim(w);
	if (w->phase != PHASE_RUNNING)
		maybe_finish(w);
}

/* ----------------------------------------------------- timers and signals */

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, poll);

	/* Fallback for a missed wake-up, and for delayed jobs and retries when
	 * no coordinator runs: make due jobs ready, then look for work. */
	query_or_log(w, "SELECT jobwheel.promote_due(1000)", 0, NULL, "promoting due jobs");
	w->more_work = true;
}

/* Producers notify a queue at most once per 10 ms (jobwheel._wake): a job
 * made ready just after a wake-up sends none, and the claim that wake-up
 * caused may have run before that job committed. So every wake-up is
 * followed by two more claims, 5 and 12 ms later: a job whose producer
 * skipped its notification in the first half of the window is started by
 * the first, one in the second half by the second (its producer has
 * committed by then), so none waits more than about 7 ms for want of a
 * wake-up. (A later wake-up starts the schedule again, and claims itself.) */
static const double wake_trail_gap_s[] = { 0.005, 0.007 }; /* 5 ms, then 5 + 7 = 12 ms */

static void on_trail(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, trail);

	w->more_work = true;
	if (++w->trail_step < (int)ARRAY_SIZE(wake_trail_gap_s)) {
		ev_timer_set(t, wake_trail_gap_s[w->trail_step], 0);
		ev_timer_start(loop, t);
	}
}

/* Starts the trailing claims of a wake-up over. */
static void trail_restart(struct worker *w)
{
	ev_timer_stop(w->loop, &w->trail);
	w->trail_step = 0;
	ev_timer_set(&w->trail, wake_trail_gap_s[0], 0);
	ev_timer_start(w->loop, &w->trail);
}

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
		struct job *job = find_job(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (job) {
			log_warn("job %lld is no longer ours (cancelled or lease lost): aborting it",
				 (long long)job->id);
			job_abort(w, job);
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
	query_or_log(w, "SELECT jobwheel.expire_leases(1000)", 0, NULL, "expiring leases");
}

static void on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	sdnotify_watchdog();
}

/* ------------------------------------------------------------- database */

static void registered(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	if (!res || !pgconn_result_ok(res)) {
		if (res)
			log_error("registering the worker failed: %s", PQresultErrorMessage(res));
		return;
	}
	if (!w->registered)
		log_info("worker %s ready: queues %s, concurrency %lld", w->id, w->cfg->worker_queues,
			 (long long)w->cfg->worker_concurrency);
	w->registered = true;
	w->more_work = true;
	sdnotify_ready();
}

static void on_connected(struct pgconn *db, void *arg)
{
	struct worker *w = arg;
	char pid[16], conc[16];
	const char *params[5] = { w->id, w->host, pid, strbuf_str(&w->queues_array), conc };

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(conc, sizeof(conc), "%lld", (long long)w->cfg->worker_concurrency);
	query_or_log(w, "LISTEN jobwheel_wake", 0, NULL, "LISTEN jobwheel_wake");
	query_or_log(w, "LISTEN jobwheel_cancel", 0, NULL, "LISTEN jobwheel_cancel");
	pgconn_query(db, "SELECT jobwheel.register_worker($1, $2, $3, $4::text[], $5)", 5, params, registered, w);
	if (w->phase != PHASE_RUNNING) {
		const char *id[1] = { w->id };
		query_or_log(w, "SELECT jobwheel.set_worker_state($1, 'stopping')", 1, id, "marking the worker stopping");
		if (w->phase == PHASE_LEAVING)
			leave(w);
	}
}

static void on_disconnected(struct pgconn *db, const char *why, void *arg)
{
	struct worker *w = arg;

	log_warn("database connection lost: %s; reconnecting (%d job(s) keep running)", why, w->running);
}

static bool serves_queue(const struct worker *w, const char *queue)
{
	for (int i = 0; i < w->nqueues; i++)
		if (strcmp(w->queues[i], queue) == 0)
			return true;
	return false;
}

static void on_notify(struct pgconn *db, const char *channel, const char *payload, void *arg)
{
	struct worker *w = arg;

	if (strcmp(channel, "jobwheel_wake") == 0 && serves_queue(w, payload)) {
		/* Claim now (a second claim may go out on the other connection),
		 * and again when a claim in flight returns: it may have missed it. */
		w->more_work = true;
		if (claiming(w))
			w->claim_again = true;
		trail_restart(w);
	} else if (strcmp(channel, "jobwheel_cancel") == 0) {
		struct job *job = find_job(w, strtoll(payload, NULL, 10));
		if (job) {
			log_info("job %lld cancelled: aborting it", (long long)job->id);
			job_abort(w, job);
		}
	}
}

static void on_claim_db_lost(struct pgconn *db, const char *why, void *arg)
{
	log_debug("claim connection lost: %s; reconnecting", why);
}

/* ---------------------------------------------------------------- public */

struct worker *worker_new(struct ev_loop *loop, struct config *cfg, char **queues, int nqueues,
			  struct http_client *http)
{
	static const struct pgconn_callbacks cbs = {
		.connected = on_connected,
		.disconnected = on_disconnected,
		.notify = on_notify,
	};
	static const struct pgconn_callbacks claim_cbs = { .disconnected = on_claim_db_lost };
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->loop = loop;
	w->cfg = cfg;
	w->queues = queues;
	w->nqueues = nqueues;
	rng_seed(&w->rng, (uint64_t)cfg->email_mock_seed);
	w->env = (struct job_env){ .loop = loop, .cfg = cfg, .rng = &w->rng, .http = http, .finished = job_finished };
	if (gethostname(w->host, sizeof(w->host) - 1) < 0)
		snprintf(w->host, sizeof(w->host), "unknown");
	if (*cfg->worker_name)
		snprintf(w->id, sizeof(w->id), "%s", cfg->worker_name);
	else
		snprintf(w->id, sizeof(w->id), "%s:%d:%04x", w->host, (int)getpid(),
			 (unsigned)(rng_next(&w->rng) & 0xffff));
	pgarray_begin(&w->queues_array);
	for (int i = 0; i < nqueues; i++)
		pgarray_add_text(&w->queues_array, queues[i]);
	pgarray_end(&w->queues_array);
	w->db = pgconn_new(loop, cfg->database_url, "jobwheel-worker", &cbs, w);
	w->claim_db = pgconn_new(loop, cfg->database_url, "jobwheel-worker-claims", &claim_cbs, w);
	if (!w->db || !w->claim_db || w->queues_array.oom) {
		worker_free(w);
		return NULL;
	}
	ev_prepare_init(&w->tick, on_tick);
	ev_timer_init(&w->poll, on_poll, 0, (double)cfg->worker_poll_ms / 1000.0);
	ev_timer_init(&w->trail, on_trail, 0, 0);
	ev_timer_init(&w->heartbeat, on_heartbeat, 0, (double)cfg->worker_heartbeat_ms / 1000.0);
	ev_timer_init(&w->lease_guard, on_lease_guard, 0, 0);
	ev_timer_init(&w->grace, grace_over, 0, 0);
	int64_t wd = sdnotify_watchdog_ms();
	ev_timer_init(&w->watchdog, on_watchdog, 0, wd > 0 ? (double)wd / 2000.0 : 0);
	if (wd > 0)
		ev_timer_again(loop, &w->watchdog);
	return w;
}

void worker_start(struct worker *w)
{
	ev_prepare_start(w->loop, &w->tick);
	ev_timer_again(w->loop, &w->poll);
	ev_timer_again(w->loop, &w->heartbeat);
	pgconn_start(w->db);
	pgconn_start(w->claim_db);
}

bool worker_done(const struct worker *w)
{
	return w->phase == PHASE_DONE;
}

int worker_exit_status(const struct worker *w)
{
	return w->phase == PHASE_DONE && w->clean_exit ? 0 : 1;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	while (w->jobs)
		job_abort(w, w->jobs);
	ev_prepare_stop(w->loop, &w->tick);
	ev_timer_stop(w->loop, &w->poll);
	ev_timer_stop(w->loop, &w->trail);
	ev_timer_stop(w->loop, &w->heartbeat);
	ev_timer_stop(w->loop, &w->lease_guard);
	ev_timer_stop(w->loop, &w->watchdog);
	ev_timer_stop(w->loop, &w->grace);
	pgconn_free(w->db);
	pgconn_free(w->claim_db);
	outcomes_free(&w->out);
	strbuf_free(&w->queues_array);
	strbuf_free(&w->heartbeat_ids);
	strbuf_free(&w->release_ids);
	strbuf_free(&w->release_attempts);
	free(w);
}
