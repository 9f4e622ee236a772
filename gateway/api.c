/* SPDX-License-Identifier: MIT */
/* The request entry point: route table, token check, and the helpers every
 * route answers with. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "api.h"
#include "db.h"
#include "feed.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "static.h"
#include "util.h"

#define JSON_MAX_DEPTH 64

const char *const job_states[] = { "blocked", "scheduled", "ready", "running", "succeeded", "dead", "cancelled",
				   NULL };

struct route {
	int method;
	const char *pattern; /* "{…}" matches one path segment */
	enum scope scope;
	call_fn fn;
	bool takes_id;       /* the {…} segment is a job or workflow id */
};

/* Literal routes before the ones with a {…} segment in the same place. */
static const struct route routes[] = {
	{ HTTP_POST, "/api/jobs/batch", SCOPE_WRITE, route_enqueue_batch, false },
	{ HTTP_POST, "/api/jobs", SCOPE_WRITE, route_enqueue, false },
	{ HTTP_GET, "/api/jobs", SCOPE_READ, route_list_jobs, false },
	{ HTTP_GET, "/api/jobs/{id}", SCOPE_READ, route_get_job, true },
	{ HTTP_POST, "/api/jobs/{id}/cancel", SCOPE_WRITE, route_cancel_job, true },
	{ HTTP_POST, "/api/jobs/{id}/retry", SCOPE_WRITE, route_retry_job, true },
	{ HTTP_POST, "/api/workflows", SCOPE_WRITE, route_submit_workflow, false },
	{ HTTP_GET, "/api/workflows", SCOPE_READ, route_list_workflows, false },
	{ HTTP_GET, "/api/workflows/{id}", SCOPE_READ, route_get_workflow, true },
	{ HTTP_GET, "/api/queues", SCOPE_READ, route_list_queues, false },
	{ HTTP_POST, "/api/queues/{name}/pause", SCOPE_ADMIN, route_pause_queue, false },
	{ HTTP_POST, "/api/queues/{name}/resume", SCOPE_ADMIN, route_resume_queue, false },
	{ HTTP_GET, "/api/workers", SCOPE_READ, route_list_workers, false },
	{ HTTP_GET, "/api/dlq", SCOPE_READ, route_list_dlq, false },
	{ HTTP_POST, "/api/dlq/requeue", SCOPE_ADMIN, route_requeue_dlq, false },
	{ HTTP_GET, "/api/events", SCOPE_READ, route_events, false },
};

/* ---------------------------------------------------------------- answers */

static struct call *call_new(struct gateway *gw, struct http_request *req)
{
	struct call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	call->gw = gw;
	call->req = req;
	call->next_call = gw->calls;
	if (gw->calls)
		gw->calls->prev = call;
	gw->calls = call;
	return call;
}

void call_finish(struct call *call)
{
	if (call->prev)
		call->prev->next_call = call->next_call;
	else
		call->gw->calls = call->next_call;
	if (call->next_call)
		call->next_call->prev = call->prev;
	cJSON_Delete(call->body);
	free(call->seg);
	free(call);
}

void call_reply(struct call *call, int status, const char *json, size_t len)
{
	http_respond(call->req, status, "application/json", json, len, "Cache-Control: no-store\r\n");
	call_finish(call);
}

static void reply_error(struct http_request *req, int status, const char *code, const char *field,
			const char *message, const char *extra_headers)
{
	cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
	char *text;

	cJSON_AddStringToObject(err, "code", code);
	cJSON_AddStringToObject(err, "message", message);
	if (field)
		cJSON_AddStringToObject(err, "field", field);
	text = cJSON_PrintUnformatted(root);
	if (text)
		http_respond(req, status, "application/json", text, strlen(text), extra_headers);
	else
		http_respond(req, 500, NULL, "", 0, NULL);
	free(text);
	cJSON_Delete(root);
}

void call_error(struct call *call, int status, const char *code, const char *field, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	reply_error(call->req, status, code, field, message, NULL);
	call_finish(call);
}

void call_reply_row(struct call *call, PGresult *res, int status, const char *what)
{
	if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
		call_error(call, 404, "not_found", NULL, "%s not found", what);
		return;
	}
	call_reply(call, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

/* "jobwheel: queue: \"Bad\" is not a valid name" -> the message without the
 * "jobwheel: " prefix, which is noise over HTTP. */
static const char *sql_message(const PGresult *res)
{
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (!m)
		return "database error";
	if (!strncmp(m, "jobwheel: ", 10))
		m += 10;
	return m;
}

/* A 400 for a bad value the database found. enqueue_batch() says which
 * element: "jobs[3]: jobwheel: depends_on: ..." -> field "jobs[3].depends_on". */
static void sql_field_error(struct call *call, const PGresult *res)
{
	const char *column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME), *m = sql_message(res);
	char field[96];
	int element, n = 0;

	if (sscanf(m, "jobs[%d]: %n", &element, &n) == 1 && n > 0) {
		m += n;
		if (!strncmp(m, "jobwheel: ", 10))
			m += 10;
		if (call->handler == route_enqueue) { /* one job, sent as a batch of one */
			call_error(call, 400, "bad_request", column, "%s", m);
			return;
		}
		if (column)
			snprintf(field, sizeof(field), "jobs[%d].%s", element, column);
		else
			snprintf(field, sizeof(field), "jobs[%d]", element);
		call_error(call, 400, "bad_request", field, "%s: %s", field, column && !strncmp(m, column, strlen(column)) &&
			   m[strlen(column)] == ':' ? m + strlen(column) + 2 : m);
		return;
	}
	call_error(call, 400, "bad_request", column, "%s", m);
}

static void on_call_result(struct pgconn *conn, PGresult *res, void *arg)
{
	struct call *call = arg;
	const char *state;

	if (!res) {
		call_error(call, 503, "unavailable", NULL, "the database connection was lost; try again");
		return;
	}
	if (pgconn_result_ok(res)) {
		call->next(call, res);
		return;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && !strncmp(state, "22", 2))
		sql_field_error(call, res);
	else if (state && (!strcmp(state, "P0002") || !strncmp(state, "23", 2) || !strcmp(state, "0A000") ||
			   !strcmp(state, "P0001") || !strcmp(state, "42P17")))
		call_error(call, 422, "unprocessable", PQresultErrorField(res, PG_DIAG_COLUMN_NAME), "%s",
			   sql_message(res));
	else {
		log_error("query failed: %s", PQresultErrorMessage(res));
		call_error(call, 500, "internal", NULL, "internal error");
	}
}

void call_sql(struct call *call, const char *sql, int nparams, const char *const *params, call_result_fn next)
{
	int rc;

	call->next = next;
	rc = db_query(call->gw->db, sql, nparams, params, on_call_result, call);
	if (rc == -ENOTCONN)
		call_error(call, 503, "unavailable", NULL, "the database is not reachable");
	else if (rc < 0)
		call_error(call, 500, "internal", NULL, "out of memory");
}

/* ---------------------------------------------------------------- input */

bool call_parse_body(struct call *call)
{
	const char *ct = call->req->content_type;
	char err[160];

	if (!ct || strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		call_error(call, 415, "unsupported_media_type", NULL, "the body must be application/json");
		return false;
	}
	if (json_parse_object(call->req->body, call->req->body_len, JSON_MAX_DEPTH, &call->body, err, sizeof(err)) <
	    0) {
		call_error(call, 400, "bad_request", NULL, "body: %s", err);
		return false;
	}
	return true;
}

bool call_check_params(struct call *call, const char *allowed)
{
	const char *p = call->req->query;

	while (*p) {
		size_t len = strcspn(p, "=&");
		const char *a = allowed;
		bool ok = len == 12 && !strncmp(p, "access_token", 12);
		while (!ok && *a) {
			size_t alen = strcspn(a, ",");
			ok = alen == len && !strncmp(a, p, len);
			a += alen + (a[alen] == ',');
		}
		if (!ok) {
			call_error(call, 400, "bad_request", NULL, "unknown query parameter \"%.*s\" (allowed: %s)",
				   (int)(len > 64 ? 64 : len), p, allowed);
			return false;
		}
		p += strcspn(p, "&");
		if (*p == '&')
			p++;
	}
	return true;
}

int call_param_int(struct call *call, const char *name, int64_t min, int64_t max, int64_t *ret)
{
	char buf[32], *end;
	long long v;
	int rc = http_query_param(call->req->query, name, buf, sizeof(buf));

	if (rc == 0)
		return 0;
	errno = 0;
	v = rc > 0 ? strtoll(buf, &end, 10) : 0;
	if (rc < 0 || !buf[0] || *end || errno || v < min || v > max) {
		call_error(call, 400, "bad_request", name, "%s: must be an integer in %lld..%lld", name,
			   (long long)min, (long long)max);
		return -1;
	}
	*ret = v;
	return 1;
}

int call_param_name(struct call *call, const char *name, char *buf, size_t buflen)
{
	int rc = http_query_param(call->req->query, name, buf, buflen);

	if (rc == 0)
		return 0;
	if (rc < 0 || !name_valid(buf)) {
		call_error(call, 400, "bad_request", name, "%s: not a valid name (1-64 of a-z 0-9 _ . -)", name);
		return -1;
	}
	return 1;
}

int call_param_enum(struct call *call, const char *name, const char *const *words, const char **ret)
{
	char buf[32];
	int rc = http_query_param(call->req->query, name, buf, sizeof(buf));

	if (rc == 0)
		return 0;
	for (int i = 0; rc > 0 && words[i]; i++) {
		if (!strcmp(buf, words[i])) {
			*ret = words[i];
			return 1;
		}
	}
	call_error(call, 400, "bad_request", name, "%s: not one of the allowed values", name);
	return -1;
}

/* ---------------------------------------------------------------- routing */

/* Whether path matches pattern; the {…} segment is copied to *ret_seg. */
static bool route_match(const char *pattern, const char *path, char **ret_seg)
{
	const char *seg = NULL;
	size_t seglen = 0;

	while (*pattern && *path) {
		if (*pattern == '{') {
			seg = path;
			seglen = strcspn(path, "/");
			path += seglen;
			pattern = strchr(pattern, '}') + 1;
			if (seglen == 0)
				return false;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	if (*pattern || *path)
		return false;
	if (seg && ret_seg)
		*ret_seg = strndup(seg, seglen);
	return true;
}

int api_route_find(int method, const char *path, char **ret_seg)
{
	bool path_matched = false;

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (!route_match(routes[i].pattern, path, NULL))
			continue;
		path_matched = true;
		if (routes[i].method != method)
			continue;
		*ret_seg = NULL;
		route_match(routes[i].pattern, path, ret_seg);
		return (int)i;
	}
	return path_matched ? -EPERM : -ENOENT;
}

static enum scope scope_of(const char *s)
{
	if (!s)
		return SCOPE_NONE;
	if (!strcmp(s, "admin") || !strcmp(s, "open"))
		return SCOPE_ADMIN;
	if (!strcmp(s, "write"))
		return SCOPE_WRITE;
	if (!strcmp(s, "read"))
		return SCOPE_READ;
	return SCOPE_NONE;
}

static const char *scope_name(enum scope s)
{
	return s == SCOPE_ADMIN ? "admin" : s == SCOPE_WRITE ? "write" : "read";
}

static void on_scope(struct call *call, PGresult *res)
{
	const struct route *r = NULL;
	const char *granted = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (routes[i].fn == call->handler)
			r = &routes[i];
	if (granted && !strcmp(granted, "open") && !http_addr_is_loopback(call->gw->cfg->gateway_listen))
		granted = NULL; /* all tokens revoked on a public address: stay closed */
	if (!granted) {
		reply_error(call->req, 401, "unauthorized", NULL,
			    "a valid token is required (Authorization: Bearer TOKEN; see jobwheel token create)",
			    "WWW-Authenticate: Bearer\r\n");
		call_finish(call);
		return;
	}
	if (scope_of(granted) < r->scope) {
		call_error(call, 403, "forbidden", NULL, "this needs a token with scope %s; yours is %s",
			   scope_name(r->scope), granted);
		return;
	}
	call->handler(call);
}

/* The token of the request: the Bearer header, or for the event stream
 * only (EventSource cannot send headers) ?access_token=; elsewhere a token
 * in the URL would end up in access logs. */
static const char *request_token(struct http_request *req, call_fn handler, char *buf, size_t buflen)
{
	const char *a = req->authorization;

	if (a && !strncasecmp(a, "Bearer ", 7)) {
		a += 7;
		while (*a == ' ')
			a++;
		return a;
	}
	if (handler == route_events && http_query_param(req->query, "access_token", buf, buflen) > 0)
		return buf;
	return NULL;
}

/* Ready: the database answers and the change feed has its start position
 * (so a stream opened from now on misses nothing). */
static void on_ready(struct call *call, PGresult *res)
{
	static const char ok[] = "{\"status\":\"ready\"}";

	if (!feed_live(call->gw->feed)) {
		call_error(call, 503, "unavailable", NULL, "the change feed is not followed yet");
		return;
	}
	call_reply(call, 200, ok, sizeof(ok) - 1);
}

/* "GET, POST": the methods of the routes of path, for a 405's Allow. */
static void allowed_methods(const char *path, char *buf, size_t len)
{
	bool get = false, post = false;

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (!route_match(routes[i].pattern, path, NULL))
			continue;
		get |= routes[i].method == HTTP_GET;
		post |= routes[i].method == HTTP_POST;
	}
	snprintf(buf, len, "Allow: %s%s%s\r\n", get ? "GET" : "", get && post ? ", " : "", post ? "POST" : "");
}

void api_handle(struct http_request *req, void *arg)
{
	struct gateway *gw = arg;
	struct call *call;
	int i;
	char tokbuf[256];
	const char *token;
	char *seg = NULL;

	if (strncmp(req->path, "/api/", 5) && strcmp(req->path, "/api")) {
		if (req->method == HTTP_GET && !strcmp(req->path, "/healthz")) {
			static const char ok[] = "{\"status\":\"ok\"}";
			http_respond(req, 200, "application/json", ok, sizeof(ok) - 1, NULL);
		} else if (req->method == HTTP_GET && !strcmp(req->path, "/metrics")) {
			metrics_serve(gw, req);
		} else if (req->method == HTTP_GET && !strcmp(req->path, "/readyz")) {
			call = call_new(gw, req);
			if (!call) {
				http_respond(req, 500, NULL, "", 0, NULL);
				return;
			}
			call_sql(call, "SELECT 1", 0, NULL, on_ready);
		} else if (req->method == HTTP_GET) {
			static_serve(gw->cfg->gateway_web_root, req);
		} else {
			reply_error(req, 405, "method_not_allowed", NULL, "only GET is served here", "Allow: GET\r\n");
		}
		return;
	}
	i = api_route_find(req->method, req->path, &seg);
	if (i >= 0) {
		const struct route *r = &routes[i];
		call = strchr(r->pattern, '{') && !seg ? NULL : call_new(gw, req);
		if (!call) {
			free(seg);
			http_respond(req, 500, NULL, "", 0, NULL);
			return;
		}
		call->handler = r->fn;
		call->seg = seg;
		if (r->takes_id) {
			char *end;
			errno = 0;
			call->id = strtoll(seg, &end, 10);
			if (*end || errno || call->id < 1 || seg[0] == '+') {
				call_error(call, 400, "bad_request", "id", "id: \"%.32s\" is not a positive integer", seg);
				return;
			}
		}
		token = request_token(req, r->fn, tokbuf, sizeof(tokbuf));
		call_sql(call, "SELECT jobwheel.token_scope($1)", 1, (const char *[]){ token }, on_scope);
		return;
	}
	if (i == -EPERM) {
		char allow[32];
		allowed_methods(req->path, allow, sizeof(allow));
		reply_error(req, 405, "method_not_allowed", NULL, "method not allowed for this route", allow);
	} else
		reply_error(req, 404, "not_found", NULL, "no such route", NULL);
}

void api_free_calls(struct gateway *gw)
{
	while (gw->calls)
		call_finish(gw->calls);
}
