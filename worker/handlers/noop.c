/* SPDX-License-Identifier: MIT */
/* noop: succeeds at once; the benchmark kind. Echoes payload "echo" into the result. */
#include "job.h"

static void noop_start(struct job *job)
{
	const cJSON *echo = cJSON_GetObjectItemCaseSensitive(job->payload, "echo");
	cJSON *result = NULL;

	if (echo) {
		result = cJSON_CreateObject();
		if (result)
			cJSON_AddItemToObject(result, "echo", cJSON_Duplicate(echo, 1));
	}
	job_succeed(job, result);
}

const struct handler handler_noop = { .kind = "noop", .start = noop_start };
