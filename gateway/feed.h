/* SPDX-License-Identifier: MIT */
/* The change feed reader: follows jobwheel.events (migrations/0005_feed.sql)
 * on its own connection and hands each event over, in order, once. */
#ifndef JW_GATEWAY_FEED_H
#define JW_GATEWAY_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "pgconn.h"

enum feed_type { FEED_JOB, FEED_WORKER, FEED_DLQ, FEED_COORDINATOR, FEED_STATS, FEED_NTYPES };

/* One job's state change. */
struct feed_job {
	int64_t id, workflow_id;  /* workflow_id 0: none */
	const char *queue, *kind, *state;
	const char *old_state;    /* NULL when the job was inserted */
	const char *error;        /* NULL when none */
	int64_t attempt, priority;
	int64_t ms;               /* pickup or run time, -1 when not known */
};

struct feed_event {
	uint64_t id;              /* the SSE id: xid * 2^20 + index in its transaction */
	uint64_t xid;
	enum feed_type type;
	const char *at;           /* RFC 3339, UTC */
	const char *data;         /* the JSON of non-job events */
	const struct feed_job *job;
};

#define FEED_ID_SHIFT 20

/* Called for every event; pointers are valid during the call only. */
typedef void (*feed_event_fn)(const struct feed_event *ev, void *arg);
/* Called after each read of the feed, with or without events (a good
 * moment to flush clients). */
typedef void (*feed_batch_fn)(void *arg);

struct feed;

/* Reads the feed every poll_ms (and at once after a wake-up NOTIFY of the
 * job path), from the position where it starts: events committed before
 * that are left to replay. */
struct feed *feed_new(struct ev_loop *loop, const char *conninfo, double poll_s, feed_event_fn on_event,
		      feed_batch_fn on_batch, void *arg);
void feed_start(struct feed *f);
void feed_free(struct feed *f);

/* Runs a statement on the feed's connection, between two reads: its
 * snapshot sees every row the feed handed over before, which is what makes
 * counts taken there consistent with the events that follow. */
int feed_query(struct feed *f, const char *sql, pgconn_result_fn cb, void *arg);

/* The SSE id below which events are not relayed live (they committed
 * before the gateway started following the feed), or 0 while unknown. */
uint64_t feed_live_from(const struct feed *f);

/* Whether the feed has its start position (events flow). */
bool feed_live(const struct feed *f);

/* Replays the events with SSE ids after `after_id` that the live feed has
 * passed already (so: committed, and before the live events), at most
 * `max_events` of them, then calls done(arg, skipped, failed) (skipped:
 * events left out past max_events, at least 1 when there were more).
 * Returns 0 or a negative errno (done not called). */
typedef void (*feed_replay_done_fn)(void *arg, uint64_t skipped, bool failed);
int feed_replay(struct feed *f, uint64_t after_id, int max_events, feed_event_fn on_event,
		feed_replay_done_fn done, void *arg);

/* Cancels the callbacks of replays still running for arg (a client that
 * went away). */
void feed_replay_forget(struct feed *f, void *arg);

/* Decodes one row of the feed query (columns xid, id, at, type, data); for
 * unit tests and fuzzing. *k is the index of the next event within
 * transaction *cur_xid, carried from row to row. Returns the number of
 * events, or -EINVAL for a malformed row. */
int feed_decode_row(const char *xid, const char *at, const char *type, const char *data, uint64_t *cur_xid,
		    uint64_t *k, feed_event_fn on_event, void *arg);

#endif
