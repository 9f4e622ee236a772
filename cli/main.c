/* SPDX-License-Identifier: MIT */
/* jobwheel: the command-line tool (SPEC §11). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "jw_build_config.h"
#include "migrate.h"

static const struct {
	const char *name;
	int (*run)(const struct cli_ctx *ctx);
	const char *help;
} commands[] = {
	{ "migrate", cmd_migrate, "migrate [--status]                 apply pending schema migrations" },
	{ "enqueue", cmd_enqueue, "enqueue KIND [--payload JSON] [--queue Q] [--priority N] [--delay 5s | --at TIME]\n"
				  "        [--depends-on ID,..] [--max-attempts N] [--unique-key K]   (prints the id)\n"
				  "  enqueue --batch < jobs.ndjson       one JSON job per line\n"
				  "  enqueue --workflow FILE.json        a whole DAG (docs/API.md); - reads stdin" },
	{ "status", cmd_status, "status                             queues x states, workers" },
	{ "job", cmd_job, "job ID                             one job with its attempts and errors" },
	{ "dlq", cmd_dlq, "dlq list | dlq requeue ID | dlq requeue --all [--queue Q]" },
	{ "token", cmd_token, "token create NAME --scope read|write|admin | token list | token revoke NAME   (API tokens)" },
	{ "schedule", cmd_schedule, "schedule add NAME CRON KIND [--payload JSON] [--queue Q] | schedule list | schedule rm NAME" },
	{ "bench", cmd_bench, "bench drain --jobs N --workers W --concurrency C" },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: jobwheel [options] COMMAND [args]   (--json for machine-readable output)\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].help);
	fprintf(out, "\n");
	config_print_help(out);
}

PGconn *cli_connect(const struct cli_ctx *ctx)
{
	const char *keys[] = { "application_name", "dbname", NULL };
	const char *vals[] = { "jobwheel-cli", ctx->cfg->database_url, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "jobwheel %s: cannot connect to the database: %s", ctx->argv[0], PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

int cli_sql_error(const char *cmd, PGconn *conn, PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	/* The SQL API prefixes its messages with "jobwheel: "; we name the command instead. */
	if (msg && strncmp(msg, "jobwheel: ", 10) == 0)
		msg += 10;
	if (msg)
		fprintf(stderr, "jobwheel %s: %s\n", cmd, msg);
	else
		fprintf(stderr, "jobwheel %s: %s", cmd, PQerrorMessage(conn));
	return 1;
}

bool cli_exec(const char *cmd, PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		cli_sql_error(cmd, conn, res);
	PQclear(res);
	return ok;
}

int cmd_migrate(const struct cli_ctx *ctx)
{
	bool status = false;
	PGconn *conn;
	int rc;

	for (int i = 1; i < ctx->argc; i++) {
		if (strcmp(ctx->argv[i], "--status") == 0) {
			status = true;
		} else {
			fprintf(stderr, "jobwheel migrate: unknown argument \"%s\" (usage: migrate [--status])\n",
				ctx->argv[i]);
			return 2;
		}
	}
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	if (status)
		rc = migrate_status(conn, stdout, stderr) < 0 ? 1 : 0;
	else
		rc = migrate_apply(conn, stdout, stderr) < 0 ? 1 : 0;
	PQfinish(conn);
	return rc;
}

int main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct cfg_cli cli = { 0 };
	struct cli_ctx ctx = { .cfg = &cfg };
	char *args[256];
	int rc = 2, nargs = 0;

	if (config_load(&cfg, "jobwheel", argc, argv, NULL, &cli, stderr) < 0)
		goto out;
	if (cli.version) {
		printf("jobwheel %s\n", JW_VERSION);
		rc = 0;
		goto out;
	}
	if (cli.print_config) {
		config_print(&cfg, stdout);
		rc = 0;
		goto out;
	}
	/* --json may stand anywhere; the rest is COMMAND and its arguments. */
	for (int i = 0; i < cli.nrest && nargs < (int)(sizeof(args) / sizeof(args[0])); i++) {
		if (strcmp(cli.rest[i], "--json") == 0)
			ctx.json = true;
		else
			args[nargs++] = cli.rest[i];
	}
	if (cli.help || nargs == 0) {
		usage(cli.help ? stdout : stderr);
		rc = cli.help ? 0 : 2;
		goto out;
	}
	ctx.argc = nargs;
	ctx.argv = args;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, args[0]) == 0) {
			rc = commands[i].run(&ctx);
			goto out;
		}
	}
	fprintf(stderr, "jobwheel: unknown command \"%s\" (see jobwheel --help)\n", args[0]);
out:
	config_free(&cfg);
	return rc;
}
