/* SPDX-License-Identifier: MIT */
/* Routes of jobs and workflows: enqueue, batch, workflows, listing, one
 * job, cancel and retry. Each is one parameterised statement that returns
 * the JSON answer, built by PostgreSQL. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "validate.h"

#define MAX_BATCH 10000
#define LIMIT_MAX 1000
#define LIMIT_DEFAULT 50

/* The JOB object of docs/API.md, of a row aliased j. */
#define JOB_JSON                                                                                   \
	"json_build_object('id', j.id, 'queue', j.queue, 'kind', j.kind, 'state', j.state, "         \
	"'priority', j.priority, 'attempt', j.attempt, 'max_attempts', j.max_attempts, "              \
	"'run_at', j.run_at, 'created_at', j.created_at, 'started_at', j.started_at, "                \
	"'finished_at', j.finished_at, 'last_error', j.last_error, 'workflow_id', j.workflow_id)"

static void reply_problem(struct call *call, const struct problem *p)
{
	call_error(call, 400, "bad_request", p->field[0] ? p->field : NULL, "%s%s%s", p->field,
		   p->field[0] ? ": " : "", p->message);
}

/* The body re-printed from what was validated (a duplicate key in the raw
 * text could otherwise mean another value to PostgreSQL). */
static char *body_text(struct call *call, const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);

	if (!s)
		call_error(call, 500, "internal", NULL, "out of memory");
	return s;
}

static void on_created(struct call *call, PGresult *res)
{
	call_reply_row(call, res, 201, "job");
}

void route_enqueue(struct call *call)
{
	struct problem p;
	char *job;

	if (!call_check_params(call, "") || !call_parse_body(call))
		return;
	if (validate_job(call->body, 0, &p) < 0) {
		reply_problem(call, &p);
		return;
	}
	job = body_text(call, call->body);
	if (!job)
		return;
	call_sql(call,
		 "SELECT json_build_object('id', e.id, 'state', jobwheel.job_state(e.id))::text "
		 "FROM jobwheel.enqueue_batch(jsonb_build_array($1::jsonb)) e(id)",
		 1, (const char *[]){ job }, on_created);
	free(job);
}

void route_enqueue_batch(struct call *call)
{
	struct problem p;
	char *jobs;

	if (!call_check_params(call, "") || !call_parse_body(call))
		return;
	if (validate_batch(call->body, MAX_BATCH, &p) < 0) {
		reply_problem(call, &p);
		return;
	}
	jobs = body_text(call, cJSON_GetObjectItemCaseSensitive(call->body, "jobs"));
	if (!jobs)
		return;
	call_sql(call,
		 "SELECT json_build_object('ids', json_agg(e.id ORDER BY e.n))::text "
		 "FROM jobwheel.enqueue_batch($1::jsonb) WITH ORDINALITY e(id, n)",
		 1, (const char *[]){ jobs }, on_created);
	free(jobs);
}

void route_submit_workflow(struct call *call)
{
	struct problem p;
	char *spec;

	if (!call_check_params(call, "") || !call_parse_body(call))
		return;
	if (validate_workflow(call->body, MAX_BATCH, &p) < 0) {
		reply_problem(call, &p);
		return;
	}
	spec = body_text(call, call->body);
	if (!spec)
		return;
	call_sql(call, "SELECT jobwheel.submit_workflow($1::jsonb)::text", 1, (const char *[]){ spec }, on_created);
	free(spec);
}

static void on_page(struct call *call, PGresult *res)
{
	call_reply_row(call, res, 200, "page");
}

/* limit and before of a paged list; false when it answered. */
static bool page_params(struct call *call, char *limit, char *before, size_t len)
{
	int64_t l = LIMIT_DEFAULT, b = 0;
	int rc;

	if (call_param_int(call, "limit", 1, LIMIT_MAX, &l) < 0)
		return false;
	rc = call_param_int(call, "before", 1, INT64_MAX, &b);
	if (rc < 0)
		return false;
	snprintf(limit, len, "%" PRId64, l);
	if (rc > 0)
		snprintf(before, len, "%" PRId64, b);
	return true;
}

void route_list_jobs(struct call *call)
{
	char queue[80], kind[80], limit[24], before[24] = "", wf[24] = "";
	const char *state = NULL;
	int64_t workflow_id;
	int hq, hk, hw;

	if (!call_check_params(call, "state,queue,kind,workflow_id,limit,before") ||
	    call_param_enum(call, "state", job_states, &state) < 0 ||
	    (hq = call_param_name(call, "queue", queue, sizeof(queue))) < 0 ||
	    (hk = call_param_name(call, "kind", kind, sizeof(kind))) < 0 ||
	    (hw = call_param_int(call, "workflow_id", 1, INT64_MAX, &workflow_id)) < 0 ||
	    !page_params(call, limit, before, sizeof(limit)))
		return;
	if (hw)
		snprintf(wf, sizeof(wf), "%" PRId64, workflow_id);
	call_sql(call,
		 "WITH page AS (SELECT * FROM jobwheel.jobs j "
		 "  WHERE ($1::text IS NULL OR j.state = $1) AND ($2::text IS NULL OR j.queue = $2) "
		 "    AND ($3::text IS NULL OR j.kind = $3) AND ($4::bigint IS NULL OR j.workflow_id = $4) "
		 "    AND ($5::bigint IS NULL OR j.id < $5) "
		 "  ORDER BY j.id DESC LIMIT $6::int) "
		 "SELECT json_build_object('jobs', coalesce(json_agg(" JOB_JSON " ORDER BY j.id DESC), '[]'), "
		 "  'next_before', CASE WHEN count(*) = $6::int THEN min(j.id) END)::text FROM page j",
		 6,
		 (const char *[]){ state, hq ? queue : NULL, hk ? kind : NULL, hw ? wf : NULL,
				   before[0] ? before : NULL, limit },
		 on_page);
}

static void on_job(struct call *call, PGresult *res)
{
	call_reply_row(call, res, 200, "job");
}

void route_get_job(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call,
		 "SELECT (to_jsonb(" JOB_JSON ") || jsonb_build_object("
		 "  'payload', j.payload, 'result', j.result, 'unique_key', j.unique_key, "
		 "  'timeout_ms', j.timeout_ms, 'worker', j.worker, "
		 "  'errors', (SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', e.attempt, 'worker', e.worker, "
		 "             'at', e.at, 'error', e.error) ORDER BY e.id), '[]') "
		 "             FROM jobwheel.job_errors e WHERE e.job_id = j.id), "
		 "  'parents', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'kind', p.kind, "
		 "              'state', p.state) ORDER BY p.id), '[]') "
		 "              FROM jobwheel.jobs p WHERE p.id = ANY (j.depends_on)), "
		 "  'children', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'kind', c.kind, "
		 "              'state', c.state) ORDER BY c.id), '[]') "
		 "              FROM jobwheel.jobs c WHERE j.has_children AND c.depends_on @> ARRAY[j.id] "
		 "                AND c.depends_on IS NOT NULL)))::text "
		 "FROM jobwheel.jobs j WHERE j.id = $1",
		 1, (const char *[]){ call->seg }, on_job);
}

/* Result of cancel/retry: (done, state before) or no row. */
static void on_state_change(struct call *call, PGresult *res, const char *verb, const char *new_state)
{
	char body[96];

	if (PQntuples(res) < 1) {
		call_error(call, 404, "not_found", NULL, "job %s not found", call->seg);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t")) {
		call_error(call, 409, "conflict", NULL, "job %s is %s: it cannot be %s", call->seg,
			   PQgetvalue(res, 0, 1), verb);
		return;
	}
	snprintf(body, sizeof(body), "{\"id\":%s,\"state\":\"%s\"}", call->seg, new_state);
	call_reply(call, 200, body, strlen(body));
}

static void on_cancelled(struct call *call, PGresult *res)
{
	on_state_change(call, res, "cancelled", "cancelled");
}

static void on_retried(struct call *call, PGresult *res)
{
	on_state_change(call, res, "retried (only dead and cancelled jobs can)", "ready");
}

void route_cancel_job(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call, "SELECT jobwheel.cancel(j.id), j.state FROM jobwheel.jobs j WHERE j.id = $1", 1,
		 (const char *[]){ call->seg }, on_cancelled);
}

void route_retry_job(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call, "SELECT jobwheel.requeue(j.id), j.state FROM jobwheel.jobs j WHERE j.id = $1", 1,
		 (const char *[]){ call->seg }, on_retried);
}

void route_list_workflows(struct call *call)
{
	char limit[24], before[24] = "";

	if (!call_check_params(call, "limit,before") || !page_params(call, limit, before, sizeof(limit)))
		return;
	call_sql(call,
		 "WITH page AS (SELECT * FROM jobwheel.workflow_status w "
		 "  WHERE ($1::bigint IS NULL OR w.id < $1) ORDER BY w.id DESC LIMIT $2::int) "
		 "SELECT json_build_object('workflows', coalesce(json_agg(json_build_object('id', w.id, "
		 "  'name', w.name, 'created_at', w.created_at, 'state', w.state, 'jobs', w.jobs, "
		 "  'succeeded', w.succeeded, 'dead', w.dead, 'cancelled', w.cancelled, 'active', w.active) "
		 "  ORDER BY w.id DESC), '[]'), "
		 "  'next_before', CASE WHEN count(*) = $2::int THEN min(w.id) END)::text FROM page w",
		 2, (const char *[]){ before[0] ? before : NULL, limit }, on_page);
}

static void on_workflow(struct call *call, PGresult *res)
{
	call_reply_row(call, res, 200, "workflow");
}

void route_get_workflow(struct call *call)
{
	if (!call_check_params(call, ""))
		return;
	call_sql(call,
		 "SELECT json_build_object('id', w.id, 'name', w.name, 'created_at', w.created_at, "
		 "  'state', w.state, 'jobs', (SELECT coalesce(json_agg(json_build_object('id', j.id, "
		 "    'kind', j.kind, 'state', j.state, 'depends_on', coalesce(j.depends_on, '{}')) ORDER BY j.id), '[]') "
		 "    FROM jobwheel.jobs j WHERE j.workflow_id = w.id))::text "
		 "FROM jobwheel.workflow_status w WHERE w.id = $1",
		 1, (const char *[]){ call->seg }, on_workflow);
}
