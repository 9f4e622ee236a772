/* SPDX-License-Identifier: MIT */
/* Routes of queues, workers and the dead-letter queue. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "strbuf.h"
#include "util.h"

#define MAX_REQUEUE_IDS 10000

static void on_json(struct call *call, PGresult *res)
{
	call_reply_row(call, res, 200, "result");
}

void route_list_queues(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call,
		 "WITH counts AS (SELECT queue, state, count(*) AS n FROM jobwheel.jobs GROUP BY queue, state), "
		 "names AS (SELECT queue FROM counts UNION SELECT name FROM jobwheel.queues) "
		 "SELECT json_build_object('queues', coalesce(json_agg(json_build_object("
		 "  'name', n.queue, 'paused', coalesce(q.paused, false), "
		 "  'counts', (SELECT json_object_agg(s, coalesce((SELECT c.n FROM counts c "
		 "             WHERE c.queue = n.queue AND c.state = s), 0) ORDER BY o) "
		 "             FROM unnest(ARRAY['blocked','scheduled','ready','running','succeeded','dead','cancelled']) "
		 "             WITH ORDINALITY u(s, o)), "
		 "  'throughput_per_s', (SELECT round(count(*) / 60.0, 2) FROM jobwheel.jobs j "
		 "             WHERE j.queue = n.queue AND j.state = 'succeeded' "
		 "               AND j.finished_at > now() - interval '60 seconds'), "
		 "  'oldest_ready_age_ms', (SELECT round(extract(epoch FROM now() - min(j.run_at)) * 1000)::bigint "
		 "             FROM jobwheel.jobs j WHERE j.queue = n.queue AND j.state = 'ready')) "
		 "  ORDER BY n.queue), '[]'))::text "
		 "FROM names n LEFT JOIN jobwheel.queues q ON q.name = n.queue",
		 0, NULL, on_json);
}

static void on_paused(struct call *call, PGresult *res)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"paused\":%s}", call->seg,
		 strstr(call->req->path, "/pause") ? "true" : "false");
	call_reply(call, 200, body, strlen(body));
}

static void set_paused(struct call *call, bool paused)
{
	if (!call_check_params(call, ""))
		return;
	if (!name_valid(call->seg)) {
		call_error(call, 400, "bad_request", "queue", "queue: \"%.64s\" is not a valid name", call->seg);
		return;
	}
	call_sql(call, paused ? "SELECT jobwheel.pause_queue($1)" : "SELECT jobwheel.resume_queue($1)", 1,
		 (const char *[]){ call->seg }, on_paused);
}

void route_pause_queue(struct call *call)
{
	set_paused(call, true);
}

void route_resume_queue(struct call *call)
{
	set_paused(call, false);
}

void route_list_workers(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call,
		 "SELECT json_build_object('workers', coalesce(json_agg(json_build_object("
		 "  'id', w.id, 'host', w.host, 'pid', w.pid, 'queues', w.queues, 'concurrency', w.concurrency, "
		 "  'state', w.state, 'started_at', w.started_at, 'heartbeat_at', w.heartbeat_at, "
		 "  'heartbeat_age_ms', round(extract(epoch FROM now() - w.heartbeat_at) * 1000)::bigint, "
		 "  'running', (SELECT count(*) FROM jobwheel.jobs j WHERE j.state = 'running' AND j.worker = w.id)) "
		 "  ORDER BY w.started_at, w.id), '[]'))::text "
		 "FROM jobwheel.workers w",
		 0, NULL, on_json);
}

void route_list_dlq(struct call *call)
{
	char queue[80], limit[24], before[24] = "";
	int64_t l = 50, b = 0;
	int hq, hb;

	if (!call_check_params(call, "queue,limit,before") ||
	    (hq = call_param_name(call, "queue", queue, sizeof(queue))) < 0 ||
	    call_param_int(call, "limit", 1, 1000, &l) < 0 || (hb = call_param_int(call, "before", 1, INT64_MAX, &b)) < 0)
		return;
	snprintf(limit, sizeof(limit), "%" PRId64, l);
	if (hb)
		snprintf(before, sizeof(before), "%" PRId64, b);
	call_sql(call,
		 "WITH page AS (SELECT * FROM jobwheel.dlq d WHERE ($1::text IS NULL OR d.queue = $1) "
		 "  AND ($2::bigint IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3::int) "
		 "SELECT json_build_object('jobs', coalesce(json_agg(json_build_object('id', d.id, 'queue', d.queue, "
		 "  'kind', d.kind, 'payload', d.payload, 'attempt', d.attempt, 'died_at', d.died_at, "
		 "  'last_error', d.last_error, 'errors', d.errors) ORDER BY d.id DESC), '[]'), "
		 "  'next_before', CASE WHEN count(*) = $3::int THEN min(d.id) END)::text FROM page d",
		 3, (const char *[]){ hq ? queue : NULL, hb ? before : NULL, limit }, on_json);
}

static void on_requeued(struct call *call, PGresult *res)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"requeued\":%s}", PQgetvalue(res, 0, 0));
	call_reply(call, 200, body, strlen(body));
}

void route_requeue_dlq(struct call *call)
{
	const cJSON *ids, *all, *queue, *f, *id;
	struct strbuf arr = { 0 };

	if (!call_check_params(call, "") || !call_parse_body(call))
		return;
	cJSON_ArrayForEach(f, call->body) {
		if (strcmp(f->string, "ids") && strcmp(f->string, "all") && strcmp(f->string, "queue")) {
			call_error(call, 400, "bad_request", f->string, "%s: unknown field", f->string);
			return;
		}
	}
	ids = cJSON_GetObjectItemCaseSensitive(call->body, "ids");
	all = cJSON_GetObjectItemCaseSensitive(call->body, "all");
	queue = cJSON_GetObjectItemCaseSensitive(call->body, "queue");
	if (!ids == !all) {
		call_error(call, 400, "bad_request", "ids", "give either ids (an array of job ids) or \"all\": true");
		return;
	}
	if (all && !cJSON_IsTrue(all)) {
		call_error(call, 400, "bad_request", "all", "all: must be true");
		return;
	}
	if (queue && (!all || !cJSON_IsString(queue) || !name_valid(queue->valuestring))) {
		call_error(call, 400, "bad_request", "queue", "queue: a valid queue name, with \"all\": true only");
		return;
	}
	if (all) {
		call_sql(call,
			 "SELECT count(*) FILTER (WHERE jobwheel.requeue(d.id)) FROM jobwheel.jobs d "
			 "WHERE d.state = 'dead' AND ($1::text IS NULL OR d.queue = $1)",
			 1, (const char *[]){ queue ? queue->valuestring : NULL }, on_requeued);
		return;
	}
	if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) < 1 || cJSON_GetArraySize(ids) > MAX_REQUEUE_IDS) {
		call_error(call, 400, "bad_request", "ids", "ids: must be an array of 1-%d job ids", MAX_REQUEUE_IDS);
		return;
	}
	pgarray_begin(&arr);
	cJSON_ArrayForEach(id, ids) {
		if (!cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble) || id->valuedouble < 1 ||
		    id->valuedouble > 9007199254740991.0) {
			strbuf_free(&arr);
			call_error(call, 400, "bad_request", "ids", "ids: must hold job ids (positive integers)");
			return;
		}
		pgarray_add_int(&arr, (int64_t)id->valuedouble);
	}
	pgarray_end(&arr);
	if (arr.oom) {
		strbuf_free(&arr);
		call_error(call, 500, "internal", NULL, "out of memory");
		return;
	}
	call_sql(call,
		 "SELECT count(*) FILTER (WHERE jobwheel.requeue(d.id)) FROM jobwheel.jobs d "
		 "WHERE d.state = 'dead' AND d.id = ANY ($1::bigint[])",
		 1, (const char *[]){ arr.s }, on_requeued);
	strbuf_free(&arr);
}
