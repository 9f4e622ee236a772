/* SPDX-License-Identifier: MIT */
/* Server-Sent Events: the clients of GET /api/events and the ring of recent
 * events they read from, each at its own pace. */
#ifndef JW_GATEWAY_SSE_H
#define JW_GATEWAY_SSE_H

#include <stdint.h>

#include "api.h"
#include "feed.h"

struct sse;

struct sse_options {
	int ring_events;              /* events kept in memory */
	int max_job_events_per_s;     /* per client; beyond: dropped notices */
	double keepalive_s;
	int replay_max;               /* events replayed from the database */
};

struct sse *sse_new(struct gateway *gw, const struct sse_options *opt);
void sse_free(struct sse *s);

/* Takes over the connection of GET /api/events (answers the call). */
void sse_open(struct sse *s, struct call *call);

/* Formats an event once into the ring; sse_flush() sends what is new. */
void sse_publish(struct sse *s, const struct feed_event *ev);
/* A stats event (JSON object text) for every client that wants it. */
void sse_publish_stats(struct sse *s, const char *json);
void sse_flush(struct sse *s);

int sse_clients(const struct sse *s);
uint64_t sse_dropped_total(const struct sse *s);

#endif
