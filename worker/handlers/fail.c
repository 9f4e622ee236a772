/* SPDX-License-Identifier: MIT */
/* fail: {"message": s, "retryable": bool, "retry_after_ms"?: N} always fails. */
#include "job.h"
#include "json.h"

static void fail_start(struct job *job)
{
	const char *message = "failed on purpose";
	bool retryable = true;
	int64_t retry_after_ms = 0;
	char err[256];

	if (json_get_string(job->payload, "message", false, &message, err, sizeof(err)) < 0 ||
	    json_get_bool(job->payload, "retryable", false, &retryable, err, sizeof(err)) < 0 ||
	    json_get_int(job->payload, "retry_after_ms", false, 0, 86400000, &retry_after_ms, err,
			 sizeof(err)) < 0) {
		job_failf(job, false, "payload: %s", err);
		return;
	}
	job_fail(job, message, retryable, retry_after_ms);
}

const struct handler handler_fail = { .kind = "fail", .start = fail_start };
