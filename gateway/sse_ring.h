/* SPDX-License-Identifier: MIT */
/* The SSE ring: the last ring_events events, in order, each formatted once
 * (job events when a client first sends them); clients read it through
 * sequence numbers, so a slow client costs a cursor, never a copy. */
#ifndef JW_GATEWAY_SSE_RING_H
#define JW_GATEWAY_SSE_RING_H

#include <stdint.h>

#include "feed.h"
#include "strbuf.h"

/* A job event keeps its fields and is formatted when a client first sends
 * it: most job events never reach any client whose budget is spent. */
struct ring_ev {
	uint64_t id;
	int64_t job_id, workflow_id, attempt, priority;
	uint32_t len;
	uint8_t type;
	char *text; /* the SSE text, NULL until formatted (job events) */
	const char *queue, *kind, *state, *error, *at; /* job events: in strings[] */
	char strings[];
};

struct sse_ring {
	struct ring_ev **ev;
	uint64_t cap, head;     /* events ever published; the ring holds [head - count, head) */
	uint64_t count;
	uint64_t last_id;       /* SSE id of the newest event */
	uint64_t evicted_id;    /* newest database event no longer in the ring */
	/* Sequence numbers of the ring's events that are not job events, in
	 * order: a client with no budget left skips the job events between
	 * two of them at once (most events are job events). */
	uint64_t *others;
	uint64_t others_head, others_count;
};

extern const char *const sse_type_names[FEED_NTYPES]; /* "job", "worker", ... */

int sse_ring_init(struct sse_ring *r, uint64_t cap); /* 0 or -1 (out of memory) */
void sse_ring_free(struct sse_ring *r);

/* Adds an event of the feed (job events keep their fields; others are
 * formatted now), or a ready-made event text (stats). */
void sse_ring_publish(struct sse_ring *r, const struct feed_event *ev);
void sse_ring_push_text(struct sse_ring *r, uint64_t id, enum feed_type type, const struct strbuf *text);

uint64_t sse_ring_tail(const struct sse_ring *r);
struct ring_ev *sse_ring_at(const struct sse_ring *r, uint64_t seq);
/* The SSE text of e, formatted on first use; NULL when out of memory. */
const char *sse_ring_text(struct ring_ev *e);
/* The first event at or after seq that is not a job event, or the head. */
uint64_t sse_ring_next_other(const struct sse_ring *r, uint64_t seq);
/* The position of the first event with an id above last_id, or the head. */
uint64_t sse_ring_after(const struct sse_ring *r, uint64_t last_id);

/* The SSE text of an event: "id: ...\nevent: ...\ndata: {...}\n\n". */
void sse_format_event(struct strbuf *b, const struct feed_event *ev);

#endif
