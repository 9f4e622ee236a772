/* SPDX-License-Identifier: MIT */
/* Request handling: routing, auth, validation helpers, and the answer of an
 * API call (JSON bodies and the {"error": {...}} shape). */
#ifndef JW_GATEWAY_API_H
#define JW_GATEWAY_API_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "gateway.h"
#include "http.h"

enum scope { SCOPE_NONE, SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN };

struct call;
typedef void (*call_fn)(struct call *call);
typedef void (*call_result_fn)(struct call *call, PGresult *res);

/* One API request in flight; freed when it is answered. */
struct call {
	struct gateway *gw;
	struct http_request *req;
	call_fn handler;
	char *seg;        /* the {…} segment of the route's path, decoded */
	int64_t id;       /* seg as a job/workflow id, when the route takes one */
	cJSON *body;      /* the parsed body, for routes that take one */
	call_result_fn next;
	struct call *prev, *next_call; /* in gw->calls */
};

/* The http_handler_fn of the gateway: static files, health, metrics, API. */
void api_handle(struct http_request *req, void *gateway);

/* The route of method and path: its index (and the {…} segment in
 * *ret_seg, malloc'd, or NULL), -EPERM when only the method differs (405),
 * -ENOENT when there is none (404). */
int api_route_find(int method, const char *path, char **ret_seg);

/* Frees a call whose request was handed over (http_detach). */
void call_finish(struct call *call);

/* At exit: frees the calls still waiting for the database (their requests
 * are not answered; the server is going away). */
void api_free_calls(struct gateway *gw);

/* Answers and frees the call. */
void call_reply(struct call *call, int status, const char *json, size_t len);
void call_error(struct call *call, int status, const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Answers with the text of row 0, column 0 of res (a JSON document built by
 * the query), or 404 "what not found" when there is no row or it is NULL. */
void call_reply_row(struct call *call, PGresult *res, int status, const char *what);

/* Runs a statement for the call; next gets a successful result. Errors are
 * answered here: SQLSTATE 22xxx -> 400 (field from the error's COLUMN),
 * other refusals -> 422, lost connection -> 503. */
void call_sql(struct call *call, const char *sql, int nparams, const char *const *params, call_result_fn next);

/* Parses the JSON object body (415 if not application/json, 400 if
 * malformed); false when it answered. */
bool call_parse_body(struct call *call);

/* Refuses query parameters outside `allowed` (comma-separated; access_token
 * is always allowed); false when it answered. */
bool call_check_params(struct call *call, const char *allowed);
/* Query parameter helpers: 1 present (value in *ret / buf), 0 absent, -1
 * answered with 400 naming the parameter. */
int call_param_int(struct call *call, const char *name, int64_t min, int64_t max, int64_t *ret);
int call_param_name(struct call *call, const char *name, char *buf, size_t buflen);
int call_param_enum(struct call *call, const char *name, const char *const *words, const char **ret);

extern const char *const job_states[]; /* NULL-terminated */

/* Routes (routes_jobs.c, routes_admin.c). */
void route_enqueue(struct call *call);
void route_enqueue_batch(struct call *call);
void route_submit_workflow(struct call *call);
void route_list_jobs(struct call *call);
void route_get_job(struct call *call);
void route_cancel_job(struct call *call);
void route_retry_job(struct call *call);
void route_list_workflows(struct call *call);
void route_get_workflow(struct call *call);
void route_list_queues(struct call *call);
void route_pause_queue(struct call *call);
void route_resume_queue(struct call *call);
void route_list_workers(struct call *call);
void route_list_dlq(struct call *call);
void route_requeue_dlq(struct call *call);
void route_events(struct call *call);

#endif
