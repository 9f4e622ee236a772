/* SPDX-License-Identifier: MIT */
/* jobwheel status (queues x states, workers) and jobwheel job ID (one job and its errors). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "util.h"

/* The job states in display order; QUEUES_SQL has one count column per state in this order. */
static const char *const states[] = { "blocked", "scheduled", "ready", "running", "succeeded", "dead", "cancelled" };

/* queue, paused, a count per state, oldest ready age in s (NULL: none ready).
 * A queue appears if it has jobs or a row in jobwheel.queues (paused once). */
static const char QUEUES_SQL[] =
	"WITH s AS (SELECT queue, state, jobs, oldest_age FROM jobwheel.queue_stats) "
	"SELECT q.queue, coalesce(bool_or(p.paused), false), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'blocked'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'scheduled'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'ready'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'running'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'succeeded'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'dead'), 0), "
	"coalesce(sum(s.jobs) FILTER (WHERE s.state = 'cancelled'), 0), "
	"round(extract(epoch FROM max(greatest(s.oldest_age, interval '0')) FILTER (WHERE s.state = 'ready')), 3) "
	"FROM (SELECT queue FROM s UNION SELECT name FROM jobwheel.queues) q "
	"LEFT JOIN s ON s.queue = q.queue LEFT JOIN jobwheel.queues p ON p.name = q.queue "
	"GROUP BY q.queue ORDER BY q.queue";

static const char WORKERS_SQL[] =
	"SELECT w.id, w.host, w.pid, w.state, array_to_string(w.queues, ','), to_json(w.queues), "
	"w.concurrency, round(greatest(extract(epoch FROM now() - w.heartbeat_at), 0), 3), coalesce(r.n, 0) "
	"FROM jobwheel.workers w LEFT JOIN (SELECT worker, count(*) AS n FROM jobwheel.jobs "
	"WHERE state = 'running' GROUP BY worker) r ON r.worker = w.id ORDER BY w.id";

static const char JOB_SQL[] =
	"SELECT id, queue, kind, state, attempt, max_attempts, priority, to_json(run_at) #>> '{}', "
	"to_json(created_at) #>> '{}', to_json(started_at) #>> '{}', to_json(finished_at) #>> '{}', "
	"worker, last_error, payload, result, unique_key, workflow_id, "
	"(SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', e.attempt, 'worker', e.worker, "
	"'at', e.at, 'error', e.error) ORDER BY e.id), '[]') FROM jobwheel.job_errors e WHERE e.job_id = j.id) "
	"FROM jobwheel.jobs j WHERE id = $1::bigint";

/* How a column of JOB_SQL appears in JSON and in the text listing. */
enum col_type { COL_TEXT, COL_NUM, COL_JSON };
static const struct {
	const char *name;
	enum col_type type;
} job_cols[] = {
	{ "id", COL_NUM }, { "queue", COL_TEXT }, { "kind", COL_TEXT }, { "state", COL_TEXT },
	{ "attempt", COL_NUM }, { "max_attempts", COL_NUM }, { "priority", COL_NUM },
	{ "run_at", COL_TEXT }, { "created_at", COL_TEXT }, { "started_at", COL_TEXT },
	{ "finished_at", COL_TEXT }, { "worker", COL_TEXT }, { "last_error", COL_TEXT },
	{ "payload", COL_JSON }, { "result", COL_JSON }, { "unique_key", COL_TEXT },
	{ "workflow_id", COL_NUM },
};

/* Prints s with control characters escaped, so that a value stays on one line. */
static void put_line(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

/* "850ms", "12.3s", "4m05s", "2h03m", "3d04h" */
static void fmt_age(double s, char *buf, size_t len)
{
	long long v = (long long)s;

	if (s < 1)
		snprintf(buf, len, "%dms", (int)(s * 1000));
	else if (s < 60)
		snprintf(buf, len, "%.1fs", s);
	else if (v < 3600)
		snprintf(buf, len, "%lldm%02llds", v / 60, v % 60);
	else if (v < 86400)
		snprintf(buf, len, "%lldh%02lldm", v / 3600, v % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", v / 86400, v % 86400 / 3600);
}

static cJSON *raw_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? cJSON_CreateNull() : cJSON_CreateRaw(PQgetvalue(res, row, col));
}

static cJSON *str_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? cJSON_CreateNull() : cJSON_CreateString(PQgetvalue(res, row, col));
}

/* Width of the widest value of column col, at least min. */
static int col_width(const PGresult *res, int col, int min)
{
	for (int i = 0; i < PQntuples(res); i++) {
		int n = PQgetlength(res, i, col);
		if (n > min)
			min = n;
	}
	return min;
}

static cJSON *status_json(const PGresult *qs, const PGresult *ws)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *queues = cJSON_AddArrayToObject(root, "queues");
	cJSON *workers = cJSON_AddArrayToObject(root, "workers");

	for (int i = 0; queues && i < PQntuples(qs); i++) {
		cJSON *q = cJSON_CreateObject();
		cJSON *counts;

		cJSON_AddItemToArray(queues, q);
		cJSON_AddItemToObject(q, "queue", str_or_null(qs, i, 0));
		cJSON_AddBoolToObject(q, "paused", strcmp(PQgetvalue(qs, i, 1), "t") == 0);
		counts = cJSON_AddObjectToObject(q, "counts");
		for (size_t k = 0; counts && k < ARRAY_SIZE(states); k++)
			cJSON_AddItemToObject(counts, states[k], raw_or_null(qs, i, 2 + (int)k));
		cJSON_AddItemToObject(q, "oldest_ready_s", raw_or_null(qs, i, 2 + (int)ARRAY_SIZE(states)));
	}
	for (int i = 0; workers && i < PQntuples(ws); i++) {
		cJSON *w = cJSON_CreateObject();

		cJSON_AddItemToArray(workers, w);
		cJSON_AddItemToObject(w, "id", str_or_null(ws, i, 0));
		cJSON_AddItemToObject(w, "host", str_or_null(ws, i, 1));
		cJSON_AddItemToObject(w, "pid", raw_or_null(ws, i, 2));
		cJSON_AddItemToObject(w, "state", str_or_null(ws, i, 3));
		cJSON_AddItemToObject(w, "queues", raw_or_null(ws, i, 5));
		cJSON_AddItemToObject(w, "concurrency", raw_or_null(ws, i, 6));
		cJSON_AddItemToObject(w, "heartbeat_age_s", raw_or_null(ws, i, 7));
		cJSON_AddItemToObject(w, "running_jobs", raw_or_null(ws, i, 8));
	}
	return root;
}

/* Prints s upper-cased, left-aligned (width > 0) or right-aligned (width < 0). */
static void put_header(const char *s, int width)
{
	int pad = width < 0 ? -width - (int)strlen(s) : width - (int)strlen(s);

	for (; width < 0 && pad > 0; pad--)
		putchar(' ');
	for (; *s; s++)
		putchar(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
	for (; width > 0 && pad > 0; pad--)
		putchar(' ');
}

static void queues_text(const PGresult *qs)
{
	int nstates = (int)ARRAY_SIZE(states), wq = col_width(qs, 0, 5), w[ARRAY_SIZE(states)];
	char age[32];

	if (PQntuples(qs) == 0) {
		printf("no queues yet\n");
		return;
	}
	put_header("queue", wq);
	printf("  PAUSED");
	for (int k = 0; k < nstates; k++) {
		w[k] = col_width(qs, 2 + k, (int)strlen(states[k]));
		putchar(' ');
		put_header(states[k], -w[k] - 1);
	}
	printf("  OLDEST READY\n");
	for (int i = 0; i < PQntuples(qs); i++) {
		printf("%-*s  %-6s", wq, PQgetvalue(qs, i, 0), strcmp(PQgetvalue(qs, i, 1), "t") == 0 ? "yes" : "no");
		for (int k = 0; k < nstates; k++)
			printf("  %*s", w[k], PQgetvalue(qs, i, 2 + k));
		if (PQgetisnull(qs, i, 2 + nstates))
			snprintf(age, sizeof(age), "-");
		else
			fmt_age(strtod(PQgetvalue(qs, i, 2 + nstates), NULL), age, sizeof(age));
		printf("  %12s\n", age);
	}
}

static void workers_text(const PGresult *ws)
{
	int wi = col_width(ws, 0, 6), wh = col_width(ws, 1, 4), wq = col_width(ws, 4, 6);
	char age[32];

	if (PQntuples(ws) == 0) {
		printf("no workers\n");
		return;
	}
	printf("%-*s  %-*s  %7s  %-8s  %-*s  %9s  %s\n", wi, "WORKER", wh, "HOST", "PID", "STATE", wq, "QUEUES",
	       "HEARTBEAT", "RUNNING");
	for (int i = 0; i < PQntuples(ws); i++) {
		fmt_age(strtod(PQgetvalue(ws, i, 7), NULL), age, sizeof(age));
		printf("%-*s  %-*s  %7s  %-8s  %-*s  %9s  %s/%s\n", wi, PQgetvalue(ws, i, 0), wh, PQgetvalue(ws, i, 1),
		       PQgetvalue(ws, i, 2), PQgetvalue(ws, i, 3), wq, PQgetvalue(ws, i, 4), age,
		       PQgetvalue(ws, i, 8), PQgetvalue(ws, i, 6));
	}
}

/* Runs sql; on failure reports it and returns NULL. */
static PGresult *query(PGconn *conn, const char *cmd, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)
		return res;
	cli_sql_error(cmd, conn, res);
	PQclear(res);
	return NULL;
}

/* Prints cJSON compactly on one line; returns the exit status. */
static int print_json(const char *cmd, cJSON *root)
{
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	if (!s) {
		fprintf(stderr, "jobwheel %s: out of memory\n", cmd);
		return 1;
	}
	printf("%s\n", s);
	cJSON_free(s);
	return 0;
}

int cmd_status(const struct cli_ctx *ctx)
{
	PGresult *begin = NULL, *qs = NULL, *ws = NULL;
	PGconn *conn;
	int rc = 1;

	if (ctx->argc > 1) {
		fprintf(stderr, "jobwheel status: unexpected argument \"%s\" (usage: status [--json])\n", ctx->argv[1]);
		return 2;
	}
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	/* One snapshot for both tables: running counts agree with the workers'. */
	begin = query(conn, "status", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
	if (!begin)
		goto cleanup;
	qs = query(conn, "status", QUEUES_SQL, 0, NULL);
	ws = qs ? query(conn, "status", WORKERS_SQL, 0, NULL) : NULL;
	if (!ws)
		goto cleanup;
	if (ctx->json) {
		rc = print_json("status", status_json(qs, ws));
	} else {
		queues_text(qs);
		putchar('\n');
		workers_text(ws);
		rc = 0;
	}
cleanup:
	PQclear(begin);
	PQclear(qs);
	PQclear(ws);
	PQfinish(conn); /* ends the read-only transaction */
	return rc;
}

static int job_json(const PGresult *res)
{
	cJSON *root = cJSON_CreateObject();
	int ncols = (int)ARRAY_SIZE(job_cols);

	for (int c = 0; root && c < ncols; c++)
		cJSON_AddItemToObject(root, job_cols[c].name,
				      job_cols[c].type == COL_TEXT ? str_or_null(res, 0, c) : raw_or_null(res, 0, c));
	if (root)
		cJSON_AddItemToObject(root, "errors", raw_or_null(res, 0, ncols));
	return print_json("job", root);
}

static int job_text(const PGresult *res)
{
	cJSON *errors = cJSON_Parse(PQgetvalue(res, 0, (int)ARRAY_SIZE(job_cols)));
	const cJSON *e;
	int ww = 6; /* worker column */

	for (int c = 0; c < (int)ARRAY_SIZE(job_cols); c++) {
		if (c == 5) /* max_attempts: shown as attempt N/M */
			continue;
		printf("%-13s", job_cols[c].name);
		if (c == 4)
			printf("%s/%s", PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5));
		else
			put_line(PQgetisnull(res, 0, c) ? "-" : PQgetvalue(res, 0, c));
		putchar('\n');
	}
	if (!cJSON_IsArray(errors) || cJSON_GetArraySize(errors) == 0) {
		printf("errors       none\n");
		cJSON_Delete(errors);
		return 0;
	}
	cJSON_ArrayForEach(e, errors) {
		const cJSON *worker = cJSON_GetObjectItemCaseSensitive(e, "worker");

		if (cJSON_IsString(worker) && (int)strlen(worker->valuestring) > ww)
			ww = (int)strlen(worker->valuestring);
	}
	printf("\nATTEMPT  %-*s  %-32s  ERROR\n", ww, "WORKER", "AT");
	cJSON_ArrayForEach(e, errors) {
		const cJSON *attempt = cJSON_GetObjectItemCaseSensitive(e, "attempt");
		const cJSON *worker = cJSON_GetObjectItemCaseSensitive(e, "worker");
		const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "at");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");

		printf("%7d  %-*s  %-32s  ", cJSON_IsNumber(attempt) ? attempt->valueint : 0, ww,
		       cJSON_IsString(worker) ? worker->valuestring : "-", cJSON_IsString(at) ? at->valuestring : "-");
		put_line(cJSON_IsString(err) ? err->valuestring : "-");
		putchar('\n');
	}
	cJSON_Delete(errors);
	return 0;
}

int cmd_job(const struct cli_ctx *ctx)
{
	const char *params[1];
	PGresult *res = NULL;
	PGconn *conn;
	char *end, idbuf[24];
	long long id;
	int rc = 1;

	if (ctx->argc != 2) {
		fprintf(stderr, "jobwheel job: usage: job ID [--json]\n");
		return 2;
	}
	errno = 0;
	id = strtoll(ctx->argv[1], &end, 10);
	if (ctx->argv[1][0] < '0' || ctx->argv[1][0] > '9' || *end || errno == ERANGE || id < 1) {
		fprintf(stderr, "jobwheel job: \"%s\" is not a job id (a positive integer)\n", ctx->argv[1]);
		return 2;
	}
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	params[0] = idbuf;
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	res = query(conn, "job", JOB_SQL, 1, params);
	if (!res)
		goto cleanup;
	if (PQntuples(res) == 0)
		fprintf(stderr, "jobwheel job: job %lld does not exist\n", id);
	else
		rc = ctx->json ? job_json(res) : job_text(res);
cleanup:
	PQclear(res);
	PQfinish(conn);
	return rc;
}
