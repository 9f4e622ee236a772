/* SPDX-License-Identifier: MIT */
/* jobwheel enqueue: one job from flags, or many as NDJSON on stdin (SPEC §11);
 * --workflow is in workflow.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "json.h"
#include "strbuf.h"
#include "util.h"

#define BATCH_CHUNK 1000               /* jobs per jobwheel.enqueue_batch() call, at most */
#define BATCH_CHUNK_BYTES (1024 * 1024) /* or about this much JSON */
#define BATCH_MAX_LINE (1024 * 1024)   /* bytes per input line, like gateway.max_body */
#define JOB_MAX_DEPTH 65               /* a job object around a payload nested 64 deep */
#define USAGE                                                                                     \
	"usage: enqueue KIND [--payload JSON] [--queue Q] [--priority N] [--delay 5s | --at TIME]\n" \
	"         [--depends-on ID,..] [--max-attempts N] [--unique-key K] [--timeout-ms N]\n"      \
	"         [--backoff-base-ms N] [--trigger all_success|all_done]\n"                         \
	"       enqueue --batch < jobs.ndjson   (one JSON job object per line)\n"                   \
	"       enqueue --workflow FILE.json    (a DAG of jobs, docs/API.md; FILE - is stdin)\n"    \
	"         prints \"workflow N: K jobs\", then one \"KEY ID\" line per job;\n"               \
	"         with --json: {\"workflow_id\": N, \"jobs\": {\"KEY\": ID, ...}}"

enum opt_type { OPT_TEXT, OPT_JSON, OPT_INT, OPT_DELAY, OPT_IDS };

/* A flag of `enqueue KIND` and the named argument of jobwheel.enqueue() it
 * becomes: "NAME => PREFIX$n SUFFIX". */
static const struct opt {
	const char *flag, *name, *prefix, *suffix;
	enum opt_type type;
} opts[] = {
	{ "--payload", "payload", "", "::jsonb", OPT_JSON },
	{ "--queue", "queue", "", "::text", OPT_TEXT },
	{ "--priority", "priority", "", "::int", OPT_INT },
	{ "--delay", "run_at", "now() + ", "::bigint * interval '1 millisecond'", OPT_DELAY },
	{ "--at", "run_at", "", "::timestamptz", OPT_TEXT },
	{ "--depends-on", "depends_on", "", "::bigint[]", OPT_IDS },
	{ "--max-attempts", "max_attempts", "", "::int", OPT_INT },
	{ "--unique-key", "unique_key", "", "::text", OPT_TEXT },
	{ "--timeout-ms", "timeout_ms", "", "::int", OPT_INT },
	{ "--backoff-base-ms", "backoff_base_ms", "", "::int", OPT_INT },
	{ "--trigger", "trigger", "", "::text", OPT_TEXT },
};

struct enqueue_req {
	const char *kind;
	const char *param[ARRAY_SIZE(opts)]; /* value sent to the server; NULL: flag absent */
	char num[ARRAY_SIZE(opts)][24];      /* normalised integers behind param[] */
	struct strbuf ids;                   /* --depends-on as an array literal */
	const char *workflow;                /* --workflow FILE */
};

/* Prints "jobwheel enqueue: MESSAGE" (and the usage); returns the exit status 2. */
static int bad_args(bool usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_args(bool usage, const char *fmt, ...)
{
	va_list ap;

	fputs("jobwheel enqueue: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(usage ? "\n" USAGE "\n" : "\n", stderr);
	return 2;
}

/* Whole-string decimal integer in [min, max]: 0, -EINVAL, -ERANGE. */
static int parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (!((*s >= '0' && *s <= '9') || ((*s == '-' || *s == '+') && s[1] >= '0' && s[1] <= '9')))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* Checks that s[0..len) is exactly one JSON object nested at most max_depth
 * deep; else -EINVAL and a reason in err. */
static int check_object(const char *s, size_t len, int max_depth, char *err, size_t errlen)
{
	cJSON *v = NULL;
	int rc = json_parse_object(s, len, max_depth, &v, err, errlen);

	cJSON_Delete(v);
	return rc;
}

/* Validates and stores the value of opts[k]; returns 0 or the exit status. */
static int set_opt(struct enqueue_req *req, size_t k, const char *val)
{
	const struct opt *o = &opts[k];
	char err[128], *end = NULL;
	int64_t v = 0;
	int r;

	if (req->param[k])
		return bad_args(false, "%s given twice", o->flag);
	switch (o->type) {
	case OPT_JSON:
		if (check_object(val, strlen(val), JOB_MAX_DEPTH - 1, err, sizeof(err)) < 0)
			return bad_args(false, "%s: %s", o->flag, err);
		break;
	case OPT_INT:
		if ((r = parse_int(val, INT32_MIN, INT32_MAX, &v)) < 0)
			return bad_args(false, r == -ERANGE ? "%s: \"%s\" is out of range" : "%s: \"%s\" is not an integer",
					o->flag, val);
		break;
	case OPT_DELAY:
		if (cfg_parse_duration_ms(val, &v) < 0)
			return bad_args(false, "%s: \"%s\" is not a duration (e.g. 500ms, 5s, 5m, 2h, 1d)", o->flag, val);
		break;
	case OPT_IDS:
		pgarray_begin(&req->ids);
		for (const char *p = val;; p = end + 1) {
			errno = 0;
			v = *p >= '0' && *p <= '9' ? strtoll(p, &end, 10) : 0;
			if (v < 1 || errno == ERANGE || (*end != ',' && *end != '\0'))
				return bad_args(false, "%s: \"%s\" is not a comma-separated list of job ids", o->flag, val);
			pgarray_add_int(&req->ids, v);
			if (!*end)
				break;
		}
		pgarray_end(&req->ids);
		val = strbuf_str(&req->ids);
		break;
	case OPT_TEXT:
		break;
	}
	if (o->type == OPT_INT || o->type == OPT_DELAY) {
		snprintf(req->num[k], sizeof(req->num[k]), "%lld", (long long)v);
		val = req->num[k];
	}
	req->param[k] = val;
	return 0;
}

/* Sorts argv into KIND, --batch, --workflow and flags; returns 0 or the exit status. */
static int parse_args(const struct cli_ctx *ctx, struct enqueue_req *req, bool *ret_batch)
{
	bool batch = false, flags = false, ended = false;
	int rc;

	for (int i = 1; i < ctx->argc; i++) {
		const char *a = ctx->argv[i], *val = NULL;
		size_t k;

		if (!ended && strcmp(a, "--") == 0) {
			ended = true;
			continue;
		}
		if (ended || a[0] != '-' || a[1] == '\0') {
			if (req->kind)
				return bad_args(true, "unexpected argument \"%s\" (KIND is \"%s\")", a, req->kind);
			req->kind = a;
			continue;
		}
		if (strcmp(a, "--batch") == 0) {
			batch = true;
			continue;
		}
		if (strncmp(a, "--workflow", 10) == 0 && (a[10] == '\0' || a[10] == '=')) {
			if (req->workflow)
				return bad_args(false, "--workflow given twice");
			req->workflow = a[10] == '=' ? a + 11 : (i + 1 < ctx->argc ? ctx->argv[++i] : NULL);
			if (!req->workflow || !*req->workflow)
				return bad_args(false, "--workflow needs a value");
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(opts); k++) {
			size_t n = strlen(opts[k].flag);

			if (strncmp(a, opts[k].flag, n) == 0 && (a[n] == '\0' || a[n] == '=')) {
				val = a[n] == '=' ? a + n + 1 : (i + 1 < ctx->argc ? ctx->argv[++i] : NULL);
				break;
			}
		}
		if (k == ARRAY_SIZE(opts))
			return bad_args(true, "unknown flag \"%s\"", a);
		if (!val)
			return bad_args(false, "%s needs a value", opts[k].flag);
		if ((rc = set_opt(req, k, val)) != 0)
			return rc;
		flags = true;
	}
	if (req->workflow && (batch || req->kind || flags))
		return bad_args(true, "--workflow reads every job from FILE: no KIND, --batch or job flags");
	if (batch && (req->kind || flags))
		return bad_args(true, "--batch reads every job from stdin: no KIND or job flags");
	if (!batch && !req->workflow && !req->kind)
		return bad_args(true, "missing KIND");
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		for (size_t j = k + 1; j < ARRAY_SIZE(opts); j++)
			if (req->param[k] && req->param[j] && strcmp(opts[k].name, opts[j].name) == 0)
				return bad_args(false, "%s and %s cannot be used together", opts[k].flag, opts[j].flag);
	*ret_batch = batch;
	return 0;
}

/* Reports a failed enqueue; a date/time error (SQLSTATE 22007 bad format,
 * 22008 overflow, 22009 bad time zone) names --at or --delay. Returns 1. */
static int enqueue_error(const struct enqueue_req *req, PGconn *conn, PGresult *res)
{
	const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	size_t k = 0;

	while (k < ARRAY_SIZE(opts) && !(req->param[k] && strcmp(opts[k].name, "run_at") == 0))
		k++;
	if (k == ARRAY_SIZE(opts) || !code || !msg || strncmp(code, "2200", 4) != 0 || code[4] == '\0' ||
	    !strchr("789", code[4]))
		return cli_sql_error("enqueue", conn, res);
	fprintf(stderr, "jobwheel enqueue: %s: %s\n", opts[k].flag, msg);
	return 1;
}

static int enqueue_one(const struct cli_ctx *ctx, const struct enqueue_req *req)
{
	const char *params[1 + ARRAY_SIZE(opts)] = { req->kind };
	struct strbuf sql = { 0 };
	PGresult *res = NULL;
	PGconn *conn = NULL;
	int n = 1, rc = 1;

	/* Named arguments for the flags given only: the SQL function keeps the defaults. */
	strbuf_puts(&sql, "SELECT jobwheel.enqueue(kind => $1::text");
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
		if (!req->param[k])
			continue;
		params[n++] = req->param[k];
		strbuf_printf(&sql, ", %s => %s$%d%s", opts[k].name, opts[k].prefix, n, opts[k].suffix);
	}
	strbuf_puts(&sql, ")");
	if (sql.oom || req->ids.oom) {
		fprintf(stderr, "jobwheel enqueue: out of memory\n");
		goto cleanup;
	}
	conn = cli_connect(ctx);
	if (!conn)
		goto cleanup;
	res = PQexecParams(conn, strbuf_str(&sql), n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		rc = enqueue_error(req, conn, res);
		goto cleanup;
	}
	printf(ctx->json ? "{\"id\":%s}\n" : "%s\n", PQgetvalue(res, 0, 0));
	rc = 0;
cleanup:
	PQclear(res);
	PQfinish(conn);
	strbuf_free(&sql);
	return rc;
}

/* --batch: jobs accumulate in a JSON array, sent every BATCH_CHUNK jobs (or
 * BATCH_CHUNK_BYTES), all inside one transaction opened with the first
 * chunk. A chunk is sent without waiting for its answer: the server inserts
 * it while the next one is read and checked, and its answer is collected
 * before the next one goes out. Chunks stay moderate: PostgreSQL parses a
 * jsonb array of 10^5 elements markedly slower per job than a few of 10^3,
 * and 5 000 jobs a call measured no faster than 1 000. */
struct chunk {
	struct strbuf json;
	int line[BATCH_CHUNK]; /* input line of each job in json */
	int n;                 /* jobs in json */
};

struct batch {
	const struct cli_ctx *ctx;
	PGconn *conn;
	struct chunk chunk[2]; /* the one being filled, and the one in flight */
	int cur;               /* index of the one being filled */
	bool in_flight;        /* chunk[!cur] was sent, its answer not yet read */
	long total;
	struct strbuf ids;     /* for --json: "1,2,3" */
};

static bool exec_ok(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		cli_sql_error("enqueue", conn, res);
	PQclear(res);
	return ok;
}

/* Reads the answer to the chunk in flight; returns 0 or the exit status 1. */
static int batch_wait(struct batch *b)
{
	struct chunk *c = &b->chunk[!b->cur];
	const char *msg;
	int rc = 1, idx = -1, off = 0;
	PGresult *res, *extra;

	if (!b->in_flight)
		return 0;
	b->in_flight = false;
	res = PQgetResult(b->conn);
	while ((extra = PQgetResult(b->conn)) != NULL) /* drain to the end of the query */
		PQclear(extra);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != c->n) {
		/* enqueue_batch() errors start "jobs[I]: ": report the input line */
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (msg && sscanf(msg, "jobs[%d]: %n", &idx, &off) == 1 && off > 0 && idx >= 0 && idx < c->n)
			fprintf(stderr, "jobwheel enqueue: line %d: %s\n", c->line[idx], msg + off);
		else if (msg)
			fprintf(stderr, "jobwheel enqueue: lines %d-%d: %s\n", c->line[0], c->line[c->n - 1], msg);
		else
			cli_sql_error("enqueue", b->conn, res);
		goto cleanup;
	}
	for (int i = 0; b->ctx->json && i < c->n; i++) {
		strbuf_puts(&b->ids, b->ids.len ? "," : "");
		strbuf_puts(&b->ids, PQgetvalue(res, i, 0));
	}
	if (b->ids.oom) {
		fprintf(stderr, "jobwheel enqueue: out of memory\n");
		goto cleanup;
	}
	b->total += c->n;
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

/* Sends the chunk being filled (after the answer to the previous one) and
 * starts the next; returns 0 or the exit status 1. */
static int batch_flush(struct batch *b)
{
	struct chunk *c = &b->chunk[b->cur];
	const char *params[1];
	int rc;

	if (c->n == 0)
		return 0;
	if (!b->conn) {
		b->conn = cli_connect(b->ctx);
		if (!b->conn || !exec_ok(b->conn, "BEGIN"))
			return 1;
	}
	if ((rc = batch_wait(b)) != 0)
		return rc;
	strbuf_puts(&c->json, "]");
	if (c->json.oom) {
		fprintf(stderr, "jobwheel enqueue: out of memory\n");
		return 1;
	}
	params[0] = strbuf_str(&c->json);
	if (!PQsendQueryParams(b->conn, "SELECT id FROM jobwheel.enqueue_batch($1::jsonb) AS id", 1, NULL,
			       params, NULL, NULL, 0))
		return cli_sql_error("enqueue", b->conn, NULL);
	b->in_flight = true;
	b->cur = !b->cur;
	strbuf_reset(&b->chunk[b->cur].json);
	b->chunk[b->cur].n = 0;
	return 0;
}

/* Validates a non-blank line, adds it to the chunk; returns 0 or the exit status. */
static int batch_add(struct batch *b, const char *line, size_t len, int lineno)
{
	struct chunk *c = &b->chunk[b->cur];
	char err[128] = "longer than 1 MiB";
	int rc;

	if (len > BATCH_MAX_LINE || check_object(line, len, JOB_MAX_DEPTH, err, sizeof(err)) < 0) {
		/* an error in the chunk in flight comes from earlier lines: it goes first */
		if ((rc = batch_wait(b)) != 0)
			return rc;
		fprintf(stderr, "jobwheel enqueue: line %d: %s\n", lineno, err);
		return 2;
	}
	strbuf_puts(&c->json, c->n ? "," : "[");
	strbuf_append(&c->json, line, len);
	c->line[c->n++] = lineno;
	return c->n == BATCH_CHUNK || c->json.len >= BATCH_CHUNK_BYTES ? batch_flush(b) : 0;
}

static int enqueue_batch(const struct cli_ctx *ctx)
{
	struct batch batch = { .ctx = ctx }, *b = &batch;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
		size_t n = (size_t)len;

		lineno++;
		while (n > 0 && strchr(" \t\r\n", line[n - 1]))
			n--;
		if (n > 0)
			rc = batch_add(b, line, n, lineno);
	}
	if (rc == 0 && ferror(stdin)) {
		fprintf(stderr, "jobwheel enqueue: reading stdin: %s\n", strerror(errno));
		rc = 1;
	}
	if (rc == 0)
		rc = batch_flush(b);
	if (rc == 0)
		rc = batch_wait(b);
	if (rc == 0 && b->conn && !exec_ok(b->conn, "COMMIT"))
		rc = 1;
	if (rc == 0 && ctx->json)
		printf("{\"ids\":[%s]}\n", strbuf_str(&b->ids));
	else if (rc == 0)
		printf("enqueued %ld jobs\n", b->total);
	PQfinish(b->conn); /* without COMMIT, closing rolls everything back */
	strbuf_free(&b->chunk[0].json);
	strbuf_free(&b->chunk[1].json);
	strbuf_free(&b->ids);
	free(line);
	return rc;
}

int cmd_enqueue(const struct cli_ctx *ctx)
{
	struct enqueue_req req = { 0 };
	bool batch = false;
	int rc = parse_args(ctx, &req, &batch);

	if (rc == 0 && req.workflow)
		rc = enqueue_workflow(ctx, req.workflow);
	else if (rc == 0)
		rc = batch ? enqueue_batch(ctx) : enqueue_one(ctx, &req);
	strbuf_free(&req.ids);
	return rc;
}
