/* SPDX-License-Identifier: MIT */
/* Checks of request bodies before any SQL: a job object and a workflow
 * spec, with the rules of jobwheel.enqueue_batch / submit_workflow. */
#ifndef JW_GATEWAY_VALIDATE_H
#define JW_GATEWAY_VALIDATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Where a problem is: the field name (e.g. "priority", "jobs[3].kind"),
 * and what is wrong with it. */
struct problem {
	char field[96];
	char message[256];
};

/* 0 when `job` is a valid job object for POST /api/jobs, else -EINVAL with
 * *ret filled. in_workflow: "key" is required and depends_on holds keys. */
int validate_job(const cJSON *job, int in_workflow, struct problem *ret);

/* {"jobs": [job, ...]} of POST /api/jobs/batch, at most max_jobs jobs. */
int validate_batch(const cJSON *body, int max_jobs, struct problem *ret);

/* {"name"?, "jobs": [job with key, ...]} of POST /api/workflows. */
int validate_workflow(const cJSON *spec, int max_jobs, struct problem *ret);

/* An RFC 3339 timestamp: 2026-11-27T23:07:51Z, fractions and offsets too. */
int validate_rfc3339(const char *s);

#endif
