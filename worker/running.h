/* SPDX-License-Identifier: MIT */
/* The jobs a worker runs: started from claimed rows, kept in a list until
 * their handler reports or they are aborted. */
#ifndef JW_RUNNING_H
#define JW_RUNNING_H

#include <stdint.h>

#include <libpq-fe.h>

#include "job.h"

struct worker;

/* Starts the job in row `row` of a claim's result (columns CLAIM_COLUMNS,
 * outcomes.h). Out of memory: logs it and leaves the lease to expire. */
void running_start(struct worker *w, PGresult *res, int row);

/* env->finished: keeps the outcome for the next report and frees the job. */
void running_finished(struct job *job, struct job_outcome *outcome);

/* Stops a running job and reports nothing (cancelled, lost, shutdown);
 * frees it. */
void running_abort(struct worker *w, struct job *job);

/* The running job with that id, or NULL. */
struct job *running_find(struct worker *w, int64_t id);

#endif
