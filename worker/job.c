/* SPDX-License-Identifier: MIT */
/* How handlers report outcomes: the one path from a handler to the worker. */
#include <stdarg.h>
#include <stdio.h>

#include "job.h"

static void finish(struct job *job, struct job_outcome *o)
{
	if (job->finished) /* a handler bug; never report twice */
		return;
	job->finished = true;
	job->env->finished(job, o);
}

void job_succeed(struct job *job, cJSON *result)
{
	struct job_outcome o = { .ok = true, .result = result };

	if (job->finished) {
		cJSON_Delete(result);
		return;
	}
	finish(job, &o);
}

void job_fail(struct job *job, const char *error, bool retryable, int64_t retry_after_ms)
{
	struct job_outcome o = { .ok = false, .error = error, .retryable = retryable,
				 .retry_after_ms = retry_after_ms };
	finish(job, &o);
}

void job_failf(struct job *job, bool retryable, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	job_fail(job, msg, retryable, 0);
}
