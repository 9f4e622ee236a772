/* SPDX-License-Identifier: MIT */
/* The lease guard: no job runs on a lease that may have expired. */
#include "lease_guard.h"
#include "log.h"
#include "running.h"
#include "util.h"
#include "worker_impl.h"

/* A lease past half its length was renewed by the heartbeat, a younger one
 * has half or more left (jobwheel.heartbeat), and the worker counts as lost
 * 3 heartbeats later. Minus a margin. */
double lease_guard_held_for_s(const struct config *cfg)
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
		 "(leases of %lld ms)", lease_guard_held_for_s(w->cfg), w->running, (long long)w->cfg->worker_lease_ms);
	while (w->jobs)
		running_abort(w, w->jobs);
}

/* At the start of every loop pass: a guard that fell due runs before any
 * other callback of the pass.
 *
 * After the process was frozen (SIGSTOP, a paused VM) longer than the
 * leases last, the first loop pass after it holds every timer and socket
 * that fell due meanwhile, and libev runs the timers in deadline order: a
 * handler's timer due before the guard's would finish its job (reported,
 * and accepted while the database has not reclaimed it) or start an
 * outbound call, all on a lease that may have expired, before the guard
 * gave the job up. A check watcher runs once the loop has read the clock
 * and queued the pass's timers and sockets, and at the highest priority
 * it runs before any of them; aborting the jobs stops their watchers, and
 * a stopped watcher's pending callback is dropped. Not covered: a freeze
 * in the middle of a pass, whose remaining callbacks were queued before
 * it; the next pass runs the guard. */
static void on_pass(struct ev_loop *loop, ev_check *c, int revents)
{
	struct worker *w = container_of(c, struct worker, lease_check);

	if (ev_clear_pending(loop, &w->lease_guard))
		on_lease_guard(loop, &w->lease_guard, EV_TIMER);
}

void lease_guard_arm(struct worker *w, double confirmed_at)
{
	ev_timer_stop(w->loop, &w->lease_guard);
	ev_timer_set(&w->lease_guard, confirmed_at + lease_guard_held_for_s(w->cfg) - ev_now(w->loop), 0);
	ev_timer_start(w->loop, &w->lease_guard);
}

bool lease_guard_armed(const struct worker *w)
{
	return ev_is_active(&w->lease_guard);
}

void lease_guard_init(struct worker *w)
{
	ev_timer_init(&w->lease_guard, on_lease_guard, 0, 0);
	ev_check_init(&w->lease_check, on_pass);
	ev_set_priority(&w->lease_check, EV_MAXPRI);
}

void lease_guard_start(struct worker *w)
{
	ev_check_start(w->loop, &w->lease_check);
}

void lease_guard_stop(struct worker *w)
{
	ev_check_stop(w->loop, &w->lease_check);
	ev_timer_stop(w->loop, &w->lease_guard);
}
