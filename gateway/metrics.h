/* SPDX-License-Identifier: MIT */
/* What the gateway counts: jobs per queue and state (exact at each resync,
 * then followed from the change feed), completions, failures, duration and
 * pickup histograms; served at /metrics and sent as SSE `stats` each second. */
#ifndef JW_GATEWAY_METRICS_H
#define JW_GATEWAY_METRICS_H

#include "feed.h"
#include "gateway.h"
#include "http.h"

struct metrics *metrics_new(struct gateway *gw, double resync_s);
void metrics_free(struct metrics *m);

/* Counts one event of the live feed. */
void metrics_feed(struct metrics *m, const struct feed_event *ev);

/* Answers GET /metrics (Prometheus text exposition format 0.0.4). */
void metrics_serve(struct gateway *gw, struct http_request *req);

/* Parses "xmin:xmax:xip,xip" (pg_snapshot text); 0 or -EINVAL. For tests. */
struct pg_snapshot_info {
	uint64_t xmin, xmax;
	uint64_t *xip;
	int nxip;
};
int metrics_parse_snapshot(const char *text, struct pg_snapshot_info *ret);
bool metrics_snapshot_sees(const struct pg_snapshot_info *snap, uint64_t xid);

#endif
