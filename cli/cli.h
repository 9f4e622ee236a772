/* SPDX-License-Identifier: MIT */
/* The jobwheel CLI: one file per command group, dispatched by cli/main.c. */
#ifndef JW_CLI_H
#define JW_CLI_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"

/* What every command gets: the configuration and its own arguments
 * (argv[0] is the command name, e.g. "enqueue"). */
struct cli_ctx {
	const struct config *cfg;
	int argc;
	char **argv;
	bool json; /* --json: machine-readable output */
};

/* Opens a blocking connection to database.url; on failure prints the reason
 * and returns NULL. */
PGconn *cli_connect(const struct cli_ctx *ctx);

/* Prints a failed statement's server error ("jobwheel enqueue: ERROR..."),
 * returns 1 (the exit status). */
int cli_sql_error(const char *cmd, PGconn *conn, PGresult *res);

/* Runs a statement without result rows (BEGIN, COMMIT...); on failure prints
 * the server's error as cli_sql_error() does and returns false. */
bool cli_exec(const char *cmd, PGconn *conn, const char *sql);

/* Each returns the process exit status: 0 ok, 1 runtime failure, 2 usage. */
int cmd_migrate(const struct cli_ctx *ctx);
int cmd_enqueue(const struct cli_ctx *ctx);
int cmd_status(const struct cli_ctx *ctx);
int cmd_job(const struct cli_ctx *ctx);
int cmd_dlq(const struct cli_ctx *ctx);
int cmd_schedule(const struct cli_ctx *ctx);
int cmd_token(const struct cli_ctx *ctx);
int cmd_bench(const struct cli_ctx *ctx);

/* jobwheel enqueue --batch (cli/enqueue_batch.c): one JSON job object per
 * line of stdin, all in one transaction; prints "enqueued N jobs" (--json:
 * the ids). Returns the exit status: 0, 1 (database error, a job the
 * database refuses), 2 (a line that is not a JSON object). */
int enqueue_batch(const struct cli_ctx *ctx);

/* jobwheel enqueue --workflow FILE (cli/workflow.c): submits the workflow in
 * FILE ("-": stdin) with jobwheel.submit_workflow() and prints its ids.
 * Returns the exit status: 0, 1 (unreadable file, database error), 2 (not a
 * JSON object, larger than 64 MiB). */
int enqueue_workflow(const struct cli_ctx *ctx, const char *path);

#endif
