/* SPDX-License-Identifier: MIT */
/* jobwheel enqueue: one job from flags (SPEC §11); --batch is in
 * enqueue_batch.c, --workflow in workflow.c. */
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
