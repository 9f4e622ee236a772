/* SPDX-License-Identifier: MIT */
/* Schema migrations: numbered SQL files embedded at build time, applied in order. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

/* Any constant works; it only has to be the same for every host. */
#define MIGRATE_LOCK_KEY "74726590117"

static const char bootstrap_sql[] =
	"SET client_min_messages = warning;" /* no "already exists, skipping" notices */
	"CREATE SCHEMA IF NOT EXISTS jobwheel;"
	"CREATE TABLE IF NOT EXISTS jobwheel.schema_migrations ("
	"  version int PRIMARY KEY, name text NOT NULL,"
	"  applied_at timestamptz NOT NULL DEFAULT now())";

/* Runs a command; on failure prints what and why to err. */
static bool exec_ok(PGconn *conn, const char *sql, const char *what, FILE *err)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(err, "jobwheel migrate: %s: %s", what, PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

/* Returns the highest applied version, or -1 on error. Requires the lock. */
static int applied_version(PGconn *conn, FILE *err)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM jobwheel.schema_migrations");
	int v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		v = atoi(PQgetvalue(res, 0, 0));
	else
		fprintf(err, "jobwheel migrate: reading schema_migrations: %s", PQerrorMessage(conn));
	PQclear(res);
	return v;
}

static int apply_one(PGconn *conn, const struct migration *m, FILE *err)
{
	char version[16];
	const char *params[2] = { version, m->name };
	PGresult *res;

	if (!exec_ok(conn, "BEGIN", "BEGIN", err))
		return -1;
	if (!exec_ok(conn, m->sql, m->name, err))
		goto fail;
	snprintf(version, sizeof(version), "%d", m->version);
	res = PQexecParams(conn, "INSERT INTO jobwheel.schema_migrations (version, name) VALUES ($1, $2)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(err, "jobwheel migrate: recording %s: %s", m->name, PQerrorMessage(conn));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	return exec_ok(conn, "COMMIT", "COMMIT", err) ? 0 : -1;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

int migrate_apply(PGconn *conn, FILE *out, FILE *err)
{
	int rc = -1, current;

	if (!exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock", err))
		return -1;
	if (!exec_ok(conn, bootstrap_sql, "creating schema jobwheel", err))
		goto unlock;
	current = applied_version(conn, err);
	if (current < 0)
		goto unlock;
	for (int i = 0; i < migrations_count; i++) {
		if (migrations[i].version <= current)
			continue;
		if (apply_one(conn, &migrations[i], err) < 0)
			goto unlock;
		fprintf(out, "applied %s\n", migrations[i].name);
	}
	rc = 0;
unlock:
	PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return rc;
}

int migrate_status(PGconn *conn, FILE *out, FILE *err)
{
	PGresult *res = PQexec(conn, "SELECT version, name, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
				     "FROM jobwheel.schema_migrations ORDER BY version");
	int pending = 0;
	bool have_table = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!have_table && strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE) ?: "", "42P01") != 0) {
		fprintf(err, "jobwheel migrate: reading schema_migrations: %s", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < migrations_count; i++) {
		const char *at = NULL;
		for (int r = 0; have_table && r < PQntuples(res); r++)
			if (atoi(PQgetvalue(res, r, 0)) == migrations[i].version)
				at = PQgetvalue(res, r, 2);
		if (at) {
			fprintf(out, "applied  %s  %s\n", migrations[i].name, at);
		} else {
			fprintf(out, "pending  %s\n", migrations[i].name);
			pending++;
		}
	}
	PQclear(res);
	return pending;
}
