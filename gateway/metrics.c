/* SPDX-License-Identifier: MIT */
/* Counters and gauges of the gateway, kept from the change feed: /metrics
 * and the SSE `stats` event cost no query per scrape or per second. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "sse.h"
#include "strbuf.h"
#include "util.h"

#define NSTATES 7
/* Histogram bounds, seconds. */
static const double bounds[] = { 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
	uint64_t buckets[NBOUNDS]; /* not cumulative; summed when printed */
	uint64_t count;
	double sum;
};

struct queue_stat {
	char name[65];
	int64_t counts[NSTATES];
	uint64_t completions, completions_before; /* succeeded; the value at the last stats tick */
	struct histogram duration, pickup;
};

struct kind_stat {
	char queue[65], kind[65];
	uint64_t succeeded, failed, dead;
};

struct metrics {
	struct gateway *gw;
	ev_timer tick, resync;
	struct queue_stat *queues;
	int nqueues;
	struct kind_stat *kinds;
	int nkinds;
	struct pg_snapshot_info snap; /* of the last resync: events it saw are counted */
	bool have_snap, resyncing, synced;
	uint64_t events;
};

static int state_index(const char *state)
{
	for (int i = 0; job_states[i]; i++)
		if (!strcmp(job_states[i], state))
			return i;
	return -1;
}

static struct queue_stat *queue_stat(struct metrics *m, const char *name)
{
	struct queue_stat *q;

	for (int i = 0; i < m->nqueues; i++)
		if (!strcmp(m->queues[i].name, name))
			return &m->queues[i];
	if (strlen(name) >= sizeof(q->name))
		return NULL;
	q = realloc(m->queues, (size_t)(m->nqueues + 1) * sizeof(*q));
	if (!q)
		return NULL;
	m->queues = q;
	q = &m->queues[m->nqueues++];
	memset(q, 0, sizeof(*q));
	strcpy(q->name, name);
	return q;
}

static struct kind_stat *kind_stat(struct metrics *m, const char *queue, const char *kind)
{
	struct kind_stat *k;

	for (int i = 0; i < m->nkinds; i++)
		if (!strcmp(m->kinds[i].queue, queue) && !strcmp(m->kinds[i].kind, kind))
			return &m->kinds[i];
	if (strlen(queue) >= sizeof(k->queue) || strlen(kind) >= sizeof(k->kind))
		return NULL;
	k = realloc(m->kinds, (size_t)(m->nkinds + 1) * sizeof(*k));
	if (!k)
		return NULL;
	m->kinds = k;
	k = &m->kinds[m->nkinds++];
	memset(k, 0, sizeof(*k));
	strcpy(k->queue, queue);
	strcpy(k->kind, kind);
	return k;
}

static void observe(struct histogram *h, int64_t ms)
{
	double s = (double)ms / 1000.0;
	size_t i = 0;

	while (i < NBOUNDS && s > bounds[i])
		i++;
	if (i < NBOUNDS)
		h->buckets[i]++;
	h->count++;
	h->sum += s;
}

/* ---------------------------------------------------------------- snapshots */

int metrics_parse_snapshot(const char *text, struct pg_snapshot_info *ret)
{
	struct pg_snapshot_info s = { 0 };
	char *end;
	const char *p;

	errno = 0;
	s.xmin = strtoull(text, &end, 10);
	if (end == text || *end != ':')
		return -EINVAL;
	p = end + 1;
	s.xmax = strtoull(p, &end, 10);
	if (end == p || *end != ':' || errno)
		return -EINVAL;
	p = end + 1;
	while (*p) {
		uint64_t *xip = realloc(s.xip, (size_t)(s.nxip + 1) * sizeof(*xip));
		if (!xip) {
			free(s.xip);
			return -ENOMEM;
		}
		s.xip = xip;
		s.xip[s.nxip++] = strtoull(p, &end, 10);
		if (end == p || (*end && *end != ',')) {
			free(s.xip);
			return -EINVAL;
		}
		p = *end ? end + 1 : end;
	}
	*ret = s;
	return 0;
}

bool metrics_snapshot_sees(const struct pg_snapshot_info *snap, uint64_t xid)
{
	if (xid < snap->xmin)
		return true;
	if (xid >= snap->xmax)
		return false;
	for (int i = 0; i < snap->nxip; i++)
		if (snap->xip[i] == xid)
			return false;
	return true;
}

/* ---------------------------------------------------------------- the feed */

void metrics_feed(struct metrics *m, const struct feed_event *ev)
{
	const struct feed_job *j = ev->job;
	struct queue_stat *q;
	struct kind_stat *k;
	int to, from;

	m->events++;
	if (ev->type != FEED_JOB)
		return;
	q = queue_stat(m, j->queue);
	k = kind_stat(m, j->queue, j->kind);
	to = state_index(j->state);
	from = j->old_state ? state_index(j->old_state) : -1;
	if (!q || !k || to < 0)
		return;
	if (m->have_snap && ev->xid >= m->snap.xmax) { /* past the snapshot: no more checks */
		free(m->snap.xip);
		memset(&m->snap, 0, sizeof(m->snap));
		m->have_snap = false;
	}
	if (!m->have_snap || !metrics_snapshot_sees(&m->snap, ev->xid)) {
		q->counts[to]++;
		if (from >= 0)
			q->counts[from]--;
	}
	if (!strcmp(j->state, "running") && j->ms >= 0)
		observe(&q->pickup, j->ms);
	if (from >= 0 && !strcmp(j->old_state, "running")) {
		if (j->ms >= 0)
			observe(&q->duration, j->ms);
		if (!strcmp(j->state, "succeeded")) {
			q->completions++;
			k->succeeded++;
		} else if (!strcmp(j->state, "scheduled") || !strcmp(j->state, "dead")) {
			k->failed++;
		}
	}
	if (!strcmp(j->state, "dead"))
		k->dead++;
}

/* ---------------------------------------------------------------- resync */

static void on_resync(struct pgconn *c, PGresult *res, void *arg)
{
	struct metrics *m = arg;
	struct pg_snapshot_info snap;
	cJSON *rows, *row;

	m->resyncing = false;
	if (!res || !pgconn_result_ok(res) || PQntuples(res) != 1 ||
	    metrics_parse_snapshot(PQgetvalue(res, 0, 0), &snap) < 0)
		return;
	rows = cJSON_Parse(PQgetvalue(res, 0, 1));
	if (!cJSON_IsArray(rows)) {
		free(snap.xip);
		cJSON_Delete(rows);
		return;
	}
	for (int i = 0; i < m->nqueues; i++)
		memset(m->queues[i].counts, 0, sizeof(m->queues[i].counts));
	cJSON_ArrayForEach(row, rows) {
		cJSON *queue = cJSON_GetArrayItem(row, 0), *state = cJSON_GetArrayItem(row, 1),
		      *n = cJSON_GetArrayItem(row, 2);
		struct queue_stat *q;
		int s;
		if (!cJSON_IsString(queue) || !cJSON_IsString(state) || !cJSON_IsNumber(n))
			continue;
		q = queue_stat(m, queue->valuestring);
		s = state_index(state->valuestring);
		if (q && s >= 0)
			q->counts[s] = (int64_t)n->valuedouble;
	}
	cJSON_Delete(rows);
	free(m->snap.xip);
	m->snap = snap;
	m->have_snap = m->synced = true;
}

static void resync(struct metrics *m)
{
	if (m->resyncing || !feed_live(m->gw->feed))
		return;
	if (feed_query(m->gw->feed,
		       "SELECT pg_current_snapshot()::text, "
		       "coalesce(json_agg(json_build_array(queue, state, n)), '[]')::text "
		       "FROM (SELECT queue, state, count(*) AS n FROM jobwheel.jobs GROUP BY queue, state) c",
		       on_resync, m) == 0)
		m->resyncing = true;
}

static void on_resync_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	resync(container_of(t, struct metrics, resync));
}

/* ---------------------------------------------------------------- stats */

static void append_counts(struct strbuf *b, const struct queue_stat *q)
{
	strbuf_puts(b, "{");
	for (int s = 0; s < NSTATES; s++)
		strbuf_printf(b, "%s\"%s\":%" PRId64, s ? "," : "", job_states[s], q->counts[s] > 0 ? q->counts[s] : 0);
	strbuf_puts(b, "}");
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct metrics *m = container_of(t, struct metrics, tick);
	struct strbuf b = { 0 };
	char at[32];
	struct timespec ts;
	struct tm tm;

	if (!m->synced)
		resync(m); /* the first counts as soon as the feed is up */
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf_printf(&b, "{\"at\":\"%s.%03ldZ\",\"queues\":[", at, ts.tv_nsec / 1000000);
	for (int i = 0; i < m->nqueues; i++) {
		struct queue_stat *q = &m->queues[i];
		strbuf_printf(&b, "%s{\"name\":\"%s\",\"counts\":", i ? "," : "", q->name);
		append_counts(&b, q);
		strbuf_printf(&b, ",\"completions_per_s\":%" PRIu64 "}", q->completions - q->completions_before);
		q->completions_before = q->completions;
	}
	strbuf_puts(&b, "]}");
	if (!b.oom)
		sse_publish_stats(m->gw->sse, b.s);
	strbuf_free(&b);
}

/* ---------------------------------------------------------------- /metrics */

struct scrape {
	struct gateway *gw;
	struct http_request *req;
};

static void print_histogram(struct strbuf *b, const char *name, const char *queue, const struct histogram *h)
{
	uint64_t cum = 0;

	for (size_t i = 0; i < NBOUNDS; i++) {
		cum += h->buckets[i];
		strbuf_printf(b, "%s_bucket{queue=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, queue, bounds[i], cum);
	}
	strbuf_printf(b, "%s_bucket{queue=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, queue, h->count);
	strbuf_printf(b, "%s_sum{queue=\"%s\"} %.6f\n%s_count{queue=\"%s\"} %" PRIu64 "\n", name, queue, h->sum, name,
		      queue, h->count);
}

static void on_workers(struct pgconn *c, PGresult *res, void *arg)
{
	struct scrape *sc = arg;
	struct metrics *m = sc->gw->metrics;
	struct strbuf b = { 0 };
	bool db_up = res && pgconn_result_ok(res);

	strbuf_printf(&b, "# HELP jobwheel_database_up Whether the gateway reaches PostgreSQL.\n"
			  "# TYPE jobwheel_database_up gauge\njobwheel_database_up %d\n", db_up);
	strbuf_puts(&b, "# HELP jobwheel_jobs Jobs by queue and state.\n# TYPE jobwheel_jobs gauge\n");
	for (int i = 0; i < m->nqueues; i++)
		for (int s = 0; s < NSTATES; s++)
			strbuf_printf(&b, "jobwheel_jobs{queue=\"%s\",state=\"%s\"} %" PRId64 "\n", m->queues[i].name,
				      job_states[s], m->queues[i].counts[s] > 0 ? m->queues[i].counts[s] : 0);
	strbuf_puts(&b, "# HELP jobwheel_job_completions_total Jobs that succeeded, since the gateway started.\n"
			"# TYPE jobwheel_job_completions_total counter\n");
	for (int i = 0; i < m->nkinds; i++)
		strbuf_printf(&b, "jobwheel_job_completions_total{queue=\"%s\",kind=\"%s\"} %" PRIu64 "\n",
			      m->kinds[i].queue, m->kinds[i].kind, m->kinds[i].succeeded);
	strbuf_puts(&b, "# HELP jobwheel_job_failures_total Failed attempts, since the gateway started.\n"
			"# TYPE jobwheel_job_failures_total counter\n");
	for (int i = 0; i < m->nkinds; i++)
		strbuf_printf(&b, "jobwheel_job_failures_total{queue=\"%s\",kind=\"%s\"} %" PRIu64 "\n",
			      m->kinds[i].queue, m->kinds[i].kind, m->kinds[i].failed);
	strbuf_puts(&b, "# HELP jobwheel_jobs_dead_total Jobs that went to the DLQ, since the gateway started.\n"
			"# TYPE jobwheel_jobs_dead_total counter\n");
	for (int i = 0; i < m->nkinds; i++)
		strbuf_printf(&b, "jobwheel_jobs_dead_total{queue=\"%s\",kind=\"%s\"} %" PRIu64 "\n",
			      m->kinds[i].queue, m->kinds[i].kind, m->kinds[i].dead);
	strbuf_puts(&b, "# HELP jobwheel_job_duration_seconds Run time of finished attempts.\n"
			"# TYPE jobwheel_job_duration_seconds histogram\n");
	for (int i = 0; i < m->nqueues; i++)
		print_histogram(&b, "jobwheel_job_duration_seconds", m->queues[i].name, &m->queues[i].duration);
	strbuf_puts(&b, "# HELP jobwheel_pickup_latency_seconds From run_at to the start of an attempt.\n"
			"# TYPE jobwheel_pickup_latency_seconds histogram\n");
	for (int i = 0; i < m->nqueues; i++)
		print_histogram(&b, "jobwheel_pickup_latency_seconds", m->queues[i].name, &m->queues[i].pickup);
	if (db_up) {
		strbuf_puts(&b, "# HELP jobwheel_workers Workers by state.\n# TYPE jobwheel_workers gauge\n");
		for (int s = 0; s < 3; s++) {
			static const char *const wstates[] = { "active", "stopping", "lost" };
			const char *n = "0";
			for (int r = 0; r < PQntuples(res); r++)
				if (!strcmp(PQgetvalue(res, r, 0), wstates[s]))
					n = PQgetvalue(res, r, 1);
			strbuf_printf(&b, "jobwheel_workers{state=\"%s\"} %s\n", wstates[s], n);
		}
	}
	strbuf_printf(&b,
		      "# HELP jobwheel_sse_clients Connected SSE clients.\n# TYPE jobwheel_sse_clients gauge\n"
		      "jobwheel_sse_clients %d\n"
		      "# HELP jobwheel_sse_events_dropped_total Job events skipped for slow SSE clients.\n"
		      "# TYPE jobwheel_sse_events_dropped_total counter\njobwheel_sse_events_dropped_total %" PRIu64 "\n"
		      "# HELP jobwheel_feed_events_total Change feed events relayed.\n"
		      "# TYPE jobwheel_feed_events_total counter\njobwheel_feed_events_total %" PRIu64 "\n",
		      sse_clients(sc->gw->sse), sse_dropped_total(sc->gw->sse), m->events);
	if (b.oom)
		http_respond(sc->req, 500, NULL, "", 0, NULL);
	else
		http_respond(sc->req, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len, NULL);
	strbuf_free(&b);
	free(sc);
}

void metrics_serve(struct gateway *gw, struct http_request *req)
{
	struct scrape *sc = calloc(1, sizeof(*sc));

	if (!sc) {
		http_respond(req, 500, NULL, "", 0, NULL);
		return;
	}
	sc->gw = gw;
	sc->req = req;
	if (db_query(gw->db, "SELECT state, count(*) FROM jobwheel.workers GROUP BY state", 0, NULL, on_workers, sc) <
	    0)
		on_workers(NULL, NULL, sc);
}

/* ---------------------------------------------------------------- lifetime */

struct metrics *metrics_new(struct gateway *gw, double resync_s)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->gw = gw;
	ev_timer_init(&m->tick, on_tick, 1.0, 1.0);
	ev_timer_init(&m->resync, on_resync_timer, resync_s, resync_s);
	ev_timer_start(gw->loop, &m->tick);
	ev_timer_start(gw->loop, &m->resync);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	ev_timer_stop(m->gw->loop, &m->tick);
	ev_timer_stop(m->gw->loop, &m->resync);
	free(m->snap.xip);
	free(m->queues);
	free(m->kinds);
	free(m);
}
