/* SPDX-License-Identifier: MIT */
/* jobwheel dlq: list dead jobs, requeue some or all of them. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "util.h"

#define USAGE "usage: dlq list [--queue Q] [--limit N] | dlq requeue ID [ID..] | dlq requeue --all [--queue Q]"
#define LIST_DEFAULT 100
#define LIST_MAX 100000
#define ERROR_WIDTH 60 /* last_error characters shown by `dlq list` */

/* Newest first; $2 is the limit plus one, to tell whether more remain. */
static const char LIST_SQL[] =
	"SELECT id, queue, kind, attempt, to_char(died_at, 'YYYY-MM-DD HH24:MI:SSOF'), last_error, "
	"to_json(died_at) #>> '{}', payload, errors "
	"FROM jobwheel.dlq WHERE $1::text IS NULL OR queue = $1::text "
	"ORDER BY died_at DESC, id DESC LIMIT $2::int";

/* State read in the same statement: requeue() returns false without saying why. */
static const char REQUEUE_SQL[] =
	"SELECT jobwheel.requeue($1::bigint), (SELECT state FROM jobwheel.jobs WHERE id = $1::bigint)";

/* Ordered by id so that concurrent bulk requeues lock rows in one order. */
static const char REQUEUE_ALL_SQL[] =
	"SELECT count(*) FILTER (WHERE r) FROM (SELECT jobwheel.requeue(id) AS r FROM jobwheel.jobs "
	"WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1::text) ORDER BY id) s";

/* Options of the dlq subcommands; a field stays NULL when its flag is absent. */
struct dlq_args {
	const char *queue;
	const char *limit;
	long long limit_n; /* --limit, validated */
	bool all;
	char ids[256][24]; /* job ids, validated and normalised */
	int nids;
};

static int usage(const char *what, const char *arg)
{
	fprintf(stderr, "jobwheel dlq: %s%s%s%s\n" USAGE "\n", what, arg ? " \"" : "", arg ? arg : "",
		arg ? "\"" : "");
	return 2;
}

/* Decimal integer in [min, max] spanning all of s. */
static bool parse_int(const char *s, long long min, long long max, long long *ret)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || errno == ERANGE || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* Parses argv[2..] (flags anywhere, other words are ids); returns 0 or 2. */
static int parse_args(const struct cli_ctx *ctx, struct dlq_args *a)
{
	long long v;

	for (int i = 2; i < ctx->argc; i++) {
		const char *arg = ctx->argv[i];
		const char **dst = NULL;

		if (strcmp(arg, "--all") == 0) {
			a->all = true;
			continue;
		}
		if (strcmp(arg, "--queue") == 0 || strncmp(arg, "--queue=", 8) == 0)
			dst = &a->queue;
		else if (strcmp(arg, "--limit") == 0 || strncmp(arg, "--limit=", 8) == 0)
			dst = &a->limit;
		if (dst) {
			const char *eq = strchr(arg, '=');

			if (*dst)
				return usage("flag given twice:", arg);
			*dst = eq ? eq + 1 : (i + 1 < ctx->argc ? ctx->argv[++i] : NULL);
			if (!*dst)
				return usage("missing value for", arg);
			continue;
		}
		if (arg[0] == '-')
			return usage("unknown flag", arg);
		if (a->nids == (int)ARRAY_SIZE(a->ids))
			return usage("too many ids; use several calls or --all", NULL);
		if (!parse_int(arg, 1, INT64_MAX, &v))
			return usage("not a job id:", arg);
		snprintf(a->ids[a->nids++], sizeof(a->ids[0]), "%lld", v);
	}
	if (a->queue && !name_valid(a->queue))
		return usage("--queue: not a valid queue name (1-64 of a-z 0-9 _ . -):", a->queue);
	a->limit_n = LIST_DEFAULT;
	if (a->limit && !parse_int(a->limit, 1, LIST_MAX, &a->limit_n))
		return usage("--limit: not an integer in 1..100000:", a->limit);
	return 0;
}

/* Prints s on one line, control characters as spaces, cut after max bytes
 * (at a UTF-8 character boundary). */
static void put_short(const char *s, size_t max)
{
	size_t n = strlen(s);

	while (max < n && max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	for (size_t i = 0; i < n && i < max; i++)
		putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
	if (n > max)
		fputs("...", stdout);
}

static int list_json(const PGresult *res, int n)
{
	static const char *const names[] = { "id", "queue", "kind", "attempt", NULL, "last_error",
					     "died_at", "payload", "errors" };
	cJSON *root = cJSON_CreateArray();
	char *s;

	for (int i = 0; root && i < n; i++) {
		cJSON *job = cJSON_CreateObject();

		cJSON_AddItemToArray(root, job);
		for (int c = 0; job && c < (int)ARRAY_SIZE(names); c++) {
			const char *v = PQgetvalue(res, i, c);
			bool raw = c == 0 || c == 3 || c >= 7; /* numbers and jsonb */

			if (!names[c]) /* the display form of died_at */
				continue;
			if (PQgetisnull(res, i, c))
				cJSON_AddNullToObject(job, names[c]);
			else if (raw)
				cJSON_AddRawToObject(job, names[c], v);
			else
				cJSON_AddStringToObject(job, names[c], v);
		}
	}
	s = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!s) {
		fprintf(stderr, "jobwheel dlq: out of memory\n");
		return 1;
	}
	printf("%s\n", s);
	cJSON_free(s);
	return 0;
}

static void list_text(const PGresult *res, int n, bool more)
{
	int w[3] = { 2, 5, 4 }; /* id, queue, kind */

	if (n == 0) {
		printf("the dead-letter queue is empty\n");
		return;
	}
	for (int i = 0; i < n; i++)
		for (int c = 0; c < 3; c++)
			if (PQgetlength(res, i, c) > w[c])
				w[c] = PQgetlength(res, i, c);
	printf("%*s  %-*s  %-*s  %8s  %-22s  %s\n", w[0], "ID", w[1], "QUEUE", w[2], "KIND", "ATTEMPTS", "DIED AT",
	       "LAST ERROR");
	for (int i = 0; i < n; i++) {
		printf("%*s  %-*s  %-*s  %8s  %-22s  ", w[0], PQgetvalue(res, i, 0), w[1], PQgetvalue(res, i, 1), w[2],
		       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       PQgetisnull(res, i, 4) ? "-" : PQgetvalue(res, i, 4));
		put_short(PQgetisnull(res, i, 5) ? "-" : PQgetvalue(res, i, 5), ERROR_WIDTH);
		putchar('\n');
	}
	if (more)
		printf("(more dead jobs: raise --limit)\n");
}

static int dlq_list(const struct cli_ctx *ctx, const struct dlq_args *a, PGconn *conn)
{
	long long limit = a->limit_n;
	const char *params[2];
	char limbuf[24];
	PGresult *res;
	int rc = 1, n;

	snprintf(limbuf, sizeof(limbuf), "%lld", limit + 1);
	params[0] = a->queue;
	params[1] = limbuf;
	res = PQexecParams(conn, LIST_SQL, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = cli_sql_error("dlq", conn, res);
		goto cleanup;
	}
	n = PQntuples(res) > limit ? (int)limit : PQntuples(res);
	if (ctx->json) {
		rc = list_json(res, n);
	} else {
		list_text(res, n, PQntuples(res) > limit);
		rc = 0;
	}
cleanup:
	PQclear(res);
	return rc;
}

/* Requeues every listed id in one transaction, or none of them. Returns the exit status. */
static int requeue_ids(const struct dlq_args *a, PGconn *conn, long long *ret_n)
{
	if (!cli_exec("dlq", conn, "BEGIN"))
		return 1;
	for (int i = 0; i < a->nids; i++) {
		const char *params[1] = { a->ids[i] };
		PGresult *res;
		bool dup = false;

		for (int j = 0; j < i; j++)
			dup = dup || strcmp(a->ids[i], a->ids[j]) == 0;
		if (dup)
			continue;
		res = PQexecParams(conn, REQUEUE_SQL, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			cli_sql_error("dlq", conn, res);
			PQclear(res);
			return 1; /* the caller's PQfinish rolls back */
		}
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
			fprintf(stderr, "jobwheel dlq: job %s is %s, not dead or cancelled; nothing was requeued\n",
				a->ids[i], PQgetvalue(res, 0, 1));
			PQclear(res);
			return 1;
		}
		PQclear(res);
		(*ret_n)++;
	}
	return cli_exec("dlq", conn, "COMMIT") ? 0 : 1;
}

static int requeue_all(const struct dlq_args *a, PGconn *conn, long long *ret_n)
{
	const char *params[1] = { a->queue };
	PGresult *res = PQexecParams(conn, REQUEUE_ALL_SQL, 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		*ret_n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		rc = cli_sql_error("dlq", conn, res);
	PQclear(res);
	return rc;
}

int cmd_dlq(const struct cli_ctx *ctx)
{
	struct dlq_args a = { 0 };
	const char *sub = ctx->argc > 1 ? ctx->argv[1] : "";
	bool list = strcmp(sub, "list") == 0;
	long long n = 0;
	PGconn *conn;
	int rc;

	if (!list && strcmp(sub, "requeue") != 0)
		return usage(*sub ? "unknown subcommand" : "missing subcommand", *sub ? sub : NULL);
	rc = parse_args(ctx, &a);
	if (rc)
		return rc;
	if (list && (a.all || a.nids))
		return usage("list takes no ids and no --all", NULL);
	if (!list && a.limit)
		return usage("requeue takes no --limit", NULL);
	if (!list && a.all == (a.nids > 0))
		return usage(a.all ? "requeue: give ids or --all, not both" : "requeue: give job ids or --all", NULL);
	if (!list && a.queue && !a.all)
		return usage("requeue: --queue goes with --all", NULL);
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	if (list)
		rc = dlq_list(ctx, &a, conn);
	else
		rc = a.all ? requeue_all(&a, conn, &n) : requeue_ids(&a, conn, &n);
	if (!list && rc == 0) {
		if (ctx->json)
			printf("{\"requeued\":%lld}\n", n);
		else
			printf("requeued %lld\n", n);
	}
	PQfinish(conn);
	return rc;
}
