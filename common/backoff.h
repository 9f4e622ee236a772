/* SPDX-License-Identifier: MIT */
/* Exponential backoff with jitter (SPEC §4): base * factor^(k-1) * [0.8, 1.2], capped. */
#ifndef JW_BACKOFF_H
#define JW_BACKOFF_H

#include <stdint.h>

#include "rand.h"

/* Delay in ms before retry `attempt` (1 = the first retry):
 * base_ms * factor^(attempt-1), times a uniform factor in [0.8, 1.2],
 * capped at cap_ms (after jitter). attempt < 1 counts as 1. The job retry
 * policy is backoff_ms(r, base, 5, attempt, 3600000); jobwheel.backoff()
 * in SQL computes the same for retries decided in the database. */
int64_t backoff_ms(struct rng *r, int64_t base_ms, double factor, int attempt, int64_t cap_ms);

#endif
