/* SPDX-License-Identifier: MIT */
/* noop: succeeds at once; the benchmark kind. Copies payload "echo" into its
 * result, and with "echo_parents": true its parents' results too. */
#include "job.h"

static void noop_start(struct job *job)
{
	const cJSON *echo = cJSON_GetObjectItemCaseSensitive(job->payload, "echo");
	bool parents = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->payload, "echo_parents"));
	cJSON *result = NULL;

	if (echo || parents) {
		result = cJSON_CreateObject();
		if (result && echo)
			cJSON_AddItemToObject(result, "echo", cJSON_Duplicate(echo, 1));
		if (result && parents)
			cJSON_AddItemToObject(result, "parents",
					      job->parents ? cJSON_Duplicate(job->parents, 1) : cJSON_CreateObject());
	}
	job_succeed(job, result);
}

const struct handler handler_noop = { .kind = "noop", .start = noop_start };
