/* SPDX-License-Identifier: MIT */
/* Reads the job list of a 'jobs' feed row without building a JSON tree:
 * the row is PostgreSQL's text of a jsonb array of fixed-shape arrays
 * [id, queue, kind, state, attempt, priority, workflow_id, error,
 * old_state, ms], and tens of thousands of them pass per second. */
#ifndef JW_FEED_ROW_H
#define JW_FEED_ROW_H

#include <stdbool.h>

#include "feed.h"

struct feed_row {
	char *text; /* a copy of the row, decoded in place */
	char *p;
	bool started; /* an element was read: the next needs a comma */
};

/* Starts reading data (copied). Returns 0, -ENOMEM, or -EINVAL when it is
 * not a JSON array. */
int feed_row_open(struct feed_row *r, const char *data);

/* The next job: 1 (strings of *job point into r, valid until the next
 * call), 0 at the end, -EINVAL for malformed input (reading stops). */
int feed_row_next(struct feed_row *r, struct feed_job *job);

void feed_row_close(struct feed_row *r);

#endif
