/* SPDX-License-Identifier: MIT */
/* A claimed job as handlers see it, and the handler interface. */
#ifndef JW_JOB_H
#define JW_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "config.h"
#include "rand.h"

struct job;

/* What a finished attempt reports. */
struct job_outcome {
	bool ok;
	cJSON *result;          /* ok: the job's result, or NULL */
	const char *error;      /* !ok: message kept in jobwheel.job_errors */
	bool retryable;         /* !ok: false sends the job straight to dead */
	int64_t retry_after_ms; /* !ok: next run no earlier than this; 0 = backoff only */
};

/* What handlers may use: the loop, the configuration, a random source. */
struct job_env {
	struct ev_loop *loop;
	const struct config *cfg;
	struct rng *rng;
	struct http_client *http; /* outbound transfers (worker/outbound/http_client.h) */
	/* Called once per job with its outcome (the worker reports it). */
	void (*finished)(struct job *job, struct job_outcome *outcome);
};

/* A kind's implementation; one file per kind under worker/handlers/. */
struct handler {
	const char *kind;
	/* Starts the job without blocking; the handler calls job_succeed() or
	 * job_fail() exactly once, now or later from the loop. */
	void (*start)(struct job *job);
	/* Stops a started, unfinished job (timeout, cancel, shutdown): release
	 * everything; no job_succeed()/job_fail() afterwards. May be NULL for
	 * kinds that always finish inside start(). */
	void (*abort)(struct job *job);
};

struct job {
	const struct job_env *env;
	const struct handler *handler;
	int64_t id;
	int attempt;
	int max_attempts;
	int64_t timeout_ms;
	char *queue;
	char *kind;
	cJSON *payload; /* a JSON object */
	cJSON *parents; /* {"parent id": result} for a job with parents, else NULL */
	void *state;    /* the handler's own, freed by it */
	bool finished;

	/* owned by the worker */
	struct job *prev, *next;
	ev_timer timeout;
};

/* Reports success; takes ownership of result (may be NULL). */
void job_succeed(struct job *job, cJSON *result);

/* Reports a failed attempt. error is copied. retry_after_ms > 0: the next
 * attempt runs no earlier than that (an HTTP Retry-After). */
void job_fail(struct job *job, const char *error, bool retryable, int64_t retry_after_ms);

/* job_fail() with a printf-formatted message. */
void job_failf(struct job *job, bool retryable, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The handler of a kind, or NULL (worker/handlers/registry.c). */
const struct handler *handler_lookup(const char *kind);

/* Every registered handler, NULL-terminated. */
extern const struct handler *const handlers[];

#endif
