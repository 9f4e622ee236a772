/* SPDX-License-Identifier: MIT */
/* email: {"to", "subject", "body", "from"?}. Mock mode (email.mode=mock)
 * waits email.mock_latency_ms and fails with probability email.failure_rate,
 * drawn from the worker's seeded random source (email.mock_seed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "json.h"
#include "util.h"

struct email_state {
	ev_timer timer;
	struct job *job;
	bool fail;
};

static void email_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct email_state *st = container_of(w, struct email_state, timer);
	struct job *job = st->job;
	bool fail = st->fail;
	char message_id[96];
	cJSON *result;

	job->state = NULL;
	free(st);
	if (fail) {
		job_fail(job, "mock SMTP failure: 451 4.3.0 temporary local problem", true, 0);
		return;
	}
	snprintf(message_id, sizeof(message_id), "<%lld.%d@jobwheel.mock>", (long long)job->id, job->attempt);
	result = cJSON_CreateObject();
	if (result) {
		cJSON_AddStringToObject(result, "mode", "mock");
		cJSON_AddStringToObject(result, "message_id", message_id);
		cJSON_AddItemToObject(result, "to",
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job->payload, "to"), 1));
	}
	job_succeed(job, result);
}

static void email_start(struct job *job)
{
	const struct config *cfg = job->env->cfg;
	const char *to = NULL, *subject = NULL, *body = NULL, *from = NULL;
	struct email_state *st;
	char err[256];

	if (json_get_string(job->payload, "to", true, &to, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "subject", true, &subject, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "body", true, &body, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "from", false, &from, err, sizeof(err)) < 0) {
		job_failf(job, false, "payload: %s", err);
		return;
	}
	if (!strchr(to, '@')) {
		job_failf(job, false, "payload: to must be an email address");
		return;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	st->fail = rng_unit(job->env->rng) < cfg->email_failure_rate;
	job->state = st;
	ev_timer_init(&st->timer, email_done, (double)cfg->email_mock_latency_ms / 1000.0, 0);
	ev_timer_start(job->env->loop, &st->timer);
}

static void email_abort(struct job *job)
{
	struct email_state *st = job->state;

	if (!st)
		return;
	ev_timer_stop(job->env->loop, &st->timer);
	free(st);
	job->state = NULL;
}

const struct handler handler_email = { .kind = "email", .start = email_start, .abort = email_abort };
