/* SPDX-License-Identifier: MIT */
/* Outcomes of finished attempts, gathered between flushes and reported to
 * the database in one statement per batch (complete_many + fail_many). */
#ifndef JW_OUTCOMES_H
#define JW_OUTCOMES_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "strbuf.h"

struct outcome {
	int64_t id;
	int attempt;
	bool ok;
	char *text; /* ok: result JSON or NULL; !ok: the error message */
	bool retryable;
	int64_t retry_after_ms;
};

struct outcomes {
	struct outcome *v;
	int n, cap;
	int inflight; /* v[0 .. inflight) are being sent */
	struct strbuf params[8];
};

/* Records a job's outcome (copies what it needs). 0 or -ENOMEM. */
int outcomes_add(struct outcomes *o, int64_t id, int attempt, const struct job_outcome *jo);

/* Outcomes waiting to be sent (not in flight). */
int outcomes_waiting(const struct outcomes *o);

/* Marks every waiting outcome in flight and returns the statement and its 8
 * parameters (valid until the next call), or NULL when out of memory. */
const char *outcomes_begin_send(struct outcomes *o, const char *ret_params[8]);

/* The columns of a claimed job, as start_job() reads them: parents holds
 * {"parent id": result} for jobs that have parents. */
#define CLAIM_COLUMNS                                                                                      \
	"id, attempt, max_attempts, queue, kind, payload, timeout_ms,"                                      \
	" CASE WHEN depends_on IS NULL THEN NULL ELSE jobwheel.parent_results(depends_on) END"

/* report_and_claim: the 8 parameters of outcomes_begin_send(), then the 4
 * of a claim (worker, queues, n, lease_ms); its rows are claimed jobs. */
extern const char outcomes_report_and_claim_sql[];

/* The statement in flight committed: forget its outcomes. */
void outcomes_sent(struct outcomes *o);

/* The connection dropped before an answer: send them again later. The
 * completions are fenced by (id, attempt), so a repeat changes nothing. */
void outcomes_unsent(struct outcomes *o);

void outcomes_free(struct outcomes *o);

#endif
