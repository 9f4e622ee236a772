/* SPDX-License-Identifier: MIT */
/* Circuit breakers per named dependency (LLM providers), per worker process:
 * closed -> open after BREAKER_THRESHOLD consecutive failures -> half-open
 * after the open period (one probe let through) -> closed on its success,
 * open again on its failure. Times are monotonic milliseconds. */
#ifndef JW_BREAKER_H
#define JW_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#define BREAKER_THRESHOLD 5       /* consecutive failures that open a breaker */
#define BREAKER_OPEN_MS 30000     /* default open period (llm.breaker_open_ms) */
#define BREAKER_MAX 16            /* named breakers per process */

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

/* What breaker_allow() decided about one request. */
enum breaker_verdict {
	BREAKER_PASS,  /* closed: go ahead */
	BREAKER_PROBE, /* half-open: go ahead as the one probe; report its outcome */
	BREAKER_DENY,  /* open (or a probe is already out): skip the dependency */
};

struct breaker;

/* The breaker of name (at most 63 bytes), created closed on first use in a
 * static per-process table. NULL when the table is full. */
struct breaker *breaker_get(const char *name);

/* Whether a request may go out now; open_ms is the open period. */
enum breaker_verdict breaker_allow(struct breaker *b, int64_t now_ms, int64_t open_ms);

/* Outcome of a request that breaker_allow() let through. */
void breaker_success(struct breaker *b);
void breaker_failure(struct breaker *b, int64_t now_ms);

/* A probe that ended without an outcome (job aborted): another may go. */
void breaker_release(struct breaker *b);

enum breaker_state breaker_state(const struct breaker *b);

/* Forgets every breaker (unit tests). */
void breaker_reset_all(void);

#endif
