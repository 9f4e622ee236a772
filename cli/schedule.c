/* SPDX-License-Identifier: MIT */
/* jobwheel schedule: add, list and remove cron schedules (jobwheel.schedules). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cron.h"

#define USAGE                                                                                              \
	"usage: jobwheel schedule add NAME CRON KIND [--payload JSON] [--queue Q]\n"                       \
	"       jobwheel schedule list\n"                                                                  \
	"       jobwheel schedule rm NAME"

static int usage(const char *what, const char *arg)
{
	fprintf(stderr, "jobwheel schedule: %s%s%s%s\n%s\n", what, arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "",
		USAGE);
	return 2;
}

/* Runs one statement; prints the server's error. Returns the result or NULL. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		cli_sql_error("schedule", conn, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

static int add(const struct cli_ctx *ctx)
{
	const char *params[5] = { NULL, NULL, NULL, "{}", "default" };
	struct cron_expr expr;
	char err[256];
	int npos = 0;
	PGconn *conn;
	PGresult *res;

	for (int i = 2; i < ctx->argc; i++) {
		const char *arg = ctx->argv[i];
		if (strcmp(arg, "--payload") == 0 || strcmp(arg, "--queue") == 0) {
			if (i + 1 >= ctx->argc)
				return usage("missing value after", arg);
			params[arg[2] == 'p' ? 3 : 4] = ctx->argv[++i];
		} else if (strncmp(arg, "--", 2) == 0) {
			return usage("unknown flag", arg);
		} else if (npos < 3) {
			params[npos++] = arg;
		} else {
			return usage("unexpected argument", arg);
		}
	}
	if (npos < 3)
		return usage("add needs NAME, CRON and KIND", NULL);
	/* The same parser the coordinator runs: refuse what it could not run. */
	if (cron_parse(params[1], &expr, err, sizeof(err)) < 0) {
		fprintf(stderr, "jobwheel schedule: cron \"%s\": %s\n", params[1], err);
		return 2;
	}
	cJSON *payload = cJSON_Parse(params[3]);
	bool object = cJSON_IsObject(payload);
	cJSON_Delete(payload);
	if (!object)
		return usage("--payload must be a JSON object:", params[3]);
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	res = run(conn, "SELECT jobwheel.schedule($1, $2, $3, $4::jsonb, $5)", 5, params);
	PQclear(res);
	PQfinish(conn);
	if (!res)
		return 1;
	printf("schedule %s: %s -> %s on queue %s\n", params[0], params[1], params[2], params[4]);
	return 0;
}

static int list(const struct cli_ctx *ctx)
{
	PGconn *conn = cli_connect(ctx);
	PGresult *res;

	if (!conn)
		return 1;
	res = run(conn,
		  ctx->json ? "SELECT coalesce(json_agg(json_build_object('name', name, 'cron', cron, 'kind', kind,"
			      " 'queue', queue, 'payload', payload, 'last_tick', last_tick, 'last_job_id', last_job_id)"
			      " ORDER BY name), '[]') FROM jobwheel.schedules"
			    : "SELECT name, cron, kind, queue, coalesce(to_char(last_tick, 'YYYY-MM-DD HH24:MI:SS'), '-'),"
			      " coalesce(last_job_id::text, '-') FROM jobwheel.schedules ORDER BY name",
		  0, NULL);
	PQfinish(conn);
	if (!res)
		return 1;
	if (ctx->json) {
		printf("%s\n", PQgetvalue(res, 0, 0));
	} else {
		printf("%-24s %-20s %-12s %-12s %-20s %s\n", "NAME", "CRON", "KIND", "QUEUE", "LAST TICK (UTC)",
		       "LAST JOB");
		for (int r = 0; r < PQntuples(res); r++)
			printf("%-24s %-20s %-12s %-12s %-20s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
			       PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
			       PQgetvalue(res, r, 5));
	}
	PQclear(res);
	return 0;
}

static int rm(const struct cli_ctx *ctx)
{
	const char *params[1];
	PGconn *conn;
	PGresult *res;
	bool found;

	if (ctx->argc != 3)
		return usage("rm needs exactly one NAME", NULL);
	params[0] = ctx->argv[2];
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	res = run(conn, "SELECT jobwheel.unschedule($1)", 1, params);
	PQfinish(conn);
	if (!res)
		return 1;
	found = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!found) {
		fprintf(stderr, "jobwheel schedule: no schedule named \"%s\"\n", params[0]);
		return 1;
	}
	printf("removed schedule %s\n", params[0]);
	return 0;
}

int cmd_schedule(const struct cli_ctx *ctx)
{
	const char *sub = ctx->argc > 1 ? ctx->argv[1] : "";

	if (strcmp(sub, "add") == 0)
		return add(ctx);
	if (strcmp(sub, "list") == 0 && ctx->argc == 2)
		return list(ctx);
	if (strcmp(sub, "rm") == 0)
		return rm(ctx);
	return usage("unknown subcommand", sub);
}
