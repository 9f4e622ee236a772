/* SPDX-License-Identifier: MIT */
/* The worker's loop and lifecycle: connects and registers, follows wake-ups
 * and cancellations, drives claims and reports once per loop iteration, and
 * drains on shutdown. Its parts: running jobs (running.c), claims and reports
 * (claim.c), heartbeats (heartbeat.c), the lease guard (lease_guard.c).
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

#include "claim.h"
#include "heartbeat.h"
#include "lease_guard.h"
#include "log.h"
#include "running.h"
#include "sdnotify.h"
#include "util.h"
#include "worker.h"
#include "worker_impl.h"

static void leave(struct worker *w);

/* ------------------------------------------------------------- lifecycle */

static void ignore_result(struct pgconn *db, PGresult *res, void *arg)
{
	const char *what = arg;

	if (res && !pgconn_result_ok(res))
		log_error("%s failed: %s", what, PQresultErrorMessage(res));
}

void worker_query_or_log(struct worker *w, const char *sql, int nparams, const char *const *params,
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
		running_abort(w, w->jobs);
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
	worker_query_or_log(w, "SELECT jobwheel.set_worker_state($1, 'stopping')", 1, params, "marking the worker stopping");
	ev_timer_set(&w->grace, (double)w->cfg->worker_shutdown_grace_ms / 1000.0, 0);
	ev_timer_start(w->loop, &w->grace);
}

/* Once per loop iteration, after every callback of that iteration. */
static void on_tick(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = container_of(p, struct worker, tick);

	if (!pgconn_is_connected(w->db) || !w->registered || w->phase == PHASE_LEAVING || w->phase == PHASE_DONE)
		return;
	claim_and_report(w);
	if (w->phase != PHASE_RUNNING)
		maybe_finish(w);
}

/* ----------------------------------------------------- timers and signals */

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, poll);

	/* Fallback for a missed wake-up, and for delayed jobs and retries when
	 * no coordinator runs: make due jobs ready, then look for work. */
	worker_query_or_log(w, "SELECT jobwheel.promote_due(1000)", 0, NULL, "promoting due jobs");
	w->more_work = true;
}

/* Producers notify a queue at most once per 10 ms (jobwheel._wake): a job
 * made ready just after a wake-up sends none, and the claim that wake-up
 * caused may have run before that job committed. So every wake-up is
 * followed by four more claims, 3, 6, 9 and 12 ms later: a job whose
 * producer skipped its notification waits at most about 3 ms for the next
 * one, and the last comes after the window, when every producer that
 * skipped has committed. (A later wake-up starts the schedule again, and
 * claims itself.) Delayed jobs due 6 ms apart started p99 9.4 ms late with
 * claims at 5 and 12 ms, 5.4-5.9 ms with these; a trailing claim that finds
 * nothing costs one index probe. */
static const double wake_trail_gap_s[] = { 0.003, 0.003, 0.003, 0.003 }; /* 3, 6, 9, 12 ms */

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
	worker_query_or_log(w, "LISTEN jobwheel_wake", 0, NULL, "LISTEN jobwheel_wake");
	worker_query_or_log(w, "LISTEN jobwheel_cancel", 0, NULL, "LISTEN jobwheel_cancel");
	pgconn_query(db, "SELECT jobwheel.register_worker($1, $2, $3, $4::text[], $5)", 5, params, registered, w);
	if (w->phase != PHASE_RUNNING) {
		const char *id[1] = { w->id };
		worker_query_or_log(w, "SELECT jobwheel.set_worker_state($1, 'stopping')", 1, id, "marking the worker stopping");
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
		if (claim_in_flight(w))
			w->claim_again = true;
		trail_restart(w);
	} else if (strcmp(channel, "jobwheel_cancel") == 0) {
		struct job *job = running_find(w, strtoll(payload, NULL, 10));
		if (job) {
			log_info("job %lld cancelled: aborting it", (long long)job->id);
			running_abort(w, job);
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
	w->env = (struct job_env){ .loop = loop, .cfg = cfg, .rng = &w->rng, .http = http, .finished = running_finished };
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
	heartbeat_init(w);
	lease_guard_init(w);
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
	heartbeat_start(w);
	lease_guard_start(w);
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
		running_abort(w, w->jobs);
	ev_prepare_stop(w->loop, &w->tick);
	ev_timer_stop(w->loop, &w->poll);
	ev_timer_stop(w->loop, &w->trail);
	heartbeat_stop(w);
	lease_guard_stop(w);
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
