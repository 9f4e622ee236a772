/* SPDX-License-Identifier: MIT */
/* The jobs a worker runs: start, timeout, outcome, abort. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "running.h"
#include "util.h"
#include "worker_impl.h"

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

void running_finished(struct job *job, struct job_outcome *o)
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

void running_abort(struct worker *w, struct job *job)
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

struct job *running_find(struct worker *w, int64_t id)
{
	for (struct job *j = w->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

void running_start(struct worker *w, PGresult *res, int row)
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
