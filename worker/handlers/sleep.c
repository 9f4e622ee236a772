/* SPDX-License-Identifier: MIT */
/* sleep: {"ms": N} succeeds after N ms, on a loop timer (never sleep(3)). */
#include <stdlib.h>

#include "job.h"
#include "json.h"
#include "util.h"

struct sleep_state {
	ev_timer timer;
	struct job *job;
};

static void sleep_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sleep_state *st = container_of(w, struct sleep_state, timer);
	struct job *job = st->job;

	job->state = NULL;
	free(st);
	job_succeed(job, NULL);
}

static void sleep_start(struct job *job)
{
	int64_t ms = 0;
	char err[256];
	struct sleep_state *st;

	if (json_get_int(job->payload, "ms", true, 0, 86400000, &ms, err, sizeof(err)) < 0) {
		job_failf(job, false, "payload: %s", err);
		return;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	job->state = st;
	ev_timer_init(&st->timer, sleep_done, (double)ms / 1000.0, 0);
	ev_timer_start(job->env->loop, &st->timer);
}

static void sleep_abort(struct job *job)
{
	struct sleep_state *st = job->state;

	if (!st)
		return;
	ev_timer_stop(job->env->loop, &st->timer);
	free(st);
	job->state = NULL;
}

const struct handler handler_sleep = { .kind = "sleep", .start = sleep_start, .abort = sleep_abort };
