/* SPDX-License-Identifier: MIT */
/* The worker: claims jobs, runs their handlers on the loop, reports outcomes
 * in batches, heartbeats, and drains on shutdown. */
#ifndef JW_WORKER_H
#define JW_WORKER_H

#include <ev.h>

#include "config.h"

struct worker;

/* Creates a worker for cfg and the queue names (both must outlive it; the
 * names already validated). Returns NULL on allocation failure. */
struct worker *worker_new(struct ev_loop *loop, struct config *cfg, char **queues, int nqueues,
			  struct http_client *http);

/* Connects and starts working; returns at once (the loop does the rest). */
void worker_start(struct worker *w);

/* First stage of shutdown: stop claiming, let running jobs finish for
 * worker.shutdown_grace_ms, then give the rest back without spending an
 * attempt, deregister and break the loop. */
void worker_drain(struct worker *w);

/* True once the worker has finished draining (or never started). */
bool worker_done(const struct worker *w);

/* Exit status the worker wants: 0 after a clean drain, 1 otherwise. */
int worker_exit_status(const struct worker *w);

void worker_free(struct worker *w);

#endif
