/* SPDX-License-Identifier: MIT */
/* jobwheel token: create, list and revoke the gateway's API tokens (SPEC §10, jobwheel.tokens). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "cli.h"

#define USAGE                                                                                              \
	"usage: jobwheel token create NAME --scope read|write|admin\n"                                     \
	"       jobwheel token list\n"                                                                     \
	"       jobwheel token revoke NAME"

#define TOKEN_PREFIX "jw_"
#define TOKEN_BYTES 32 /* 256 random bits */
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + 2 * TOKEN_BYTES)

/* create_token() stores only the SHA-256 of $3. */
static const char CREATE_SQL[] = "SELECT jobwheel.create_token($1, $2, $3)";

/* Never the hash: a list shows what a token is, not what it was. */
static const char LIST_SQL[] =
	"SELECT name, scope, to_char(created_at, 'YYYY-MM-DD HH24:MI:SSOF'), "
	"coalesce('revoked ' || to_char(revoked_at, 'YYYY-MM-DD HH24:MI:SSOF'), 'active') "
	"FROM jobwheel.tokens ORDER BY created_at, id";

static const char LIST_JSON_SQL[] =
	"SELECT coalesce(json_agg(json_build_object('id', id, 'name', name, 'scope', scope, "
	"'created_at', created_at, 'revoked_at', revoked_at, 'active', revoked_at IS NULL) "
	"ORDER BY created_at, id), '[]') FROM jobwheel.tokens";

static int usage(const char *what, const char *arg)
{
	fprintf(stderr, "jobwheel token: %s%s%s%s\n%s\n", what, arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "",
		USAGE);
	return 2;
}

/* Runs one statement; prints the server's error and its hint. Returns the result or NULL. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	const char *hint;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		cli_sql_error("token", conn, res);
		hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
		if (hint)
			fprintf(stderr, "hint: %s\n", hint);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Fills buf with "jw_" and 64 lowercase hex digits of fresh randomness.
 * Returns 0, or a negative errno from getrandom(2). */
static int token_generate(char buf[static TOKEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[TOKEN_BYTES];
	size_t got = 0;
	char *p = buf;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			explicit_bzero(raw, sizeof(raw));
			return err;
		}
		got += (size_t)n;
	}
	memcpy(p, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	p += sizeof(TOKEN_PREFIX) - 1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		*p++ = hex[raw[i] >> 4];
		*p++ = hex[raw[i] & 0xf];
	}
	*p = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

static int create(const struct cli_ctx *ctx)
{
	const char *name = NULL, *scope = NULL;
	char token[TOKEN_LEN + 1];
	const char *params[3];
	PGresult *res = NULL;
	PGconn *conn;
	int rc = 1, r;

	for (int i = 2; i < ctx->argc; i++) {
		const char *arg = ctx->argv[i];

		if (strcmp(arg, "--scope") == 0 || strncmp(arg, "--scope=", 8) == 0) {
			if (scope)
				return usage("flag given twice:", "--scope");
			scope = arg[7] == '=' ? arg + 8 : (i + 1 < ctx->argc ? ctx->argv[++i] : NULL);
			if (!scope)
				return usage("missing value for", arg);
		} else if (arg[0] == '-') {
			return usage("unknown flag", arg);
		} else if (!name) {
			name = arg;
		} else {
			return usage("unexpected argument", arg);
		}
	}
	if (!name)
		return usage("create needs a NAME", NULL);
	if (!scope)
		return usage("create needs --scope read|write|admin", NULL);
	if (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0 && strcmp(scope, "admin") != 0)
		return usage("--scope must be read, write or admin, not", scope);

	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	r = token_generate(token);
	if (r < 0) {
		fprintf(stderr, "jobwheel token: cannot read random bytes: %s\n", strerror(-r));
	} else {
		params[0] = name;
		params[1] = scope;
		params[2] = token;
		res = run(conn, CREATE_SQL, 3, params);
	}
	if (res) {
		/* name passed create_token()'s check ([a-z0-9_.-]{1,64}): nothing to escape. */
		if (ctx->json)
			printf("{\"id\":%s,\"name\":\"%s\",\"scope\":\"%s\",\"token\":\"%s\"}\n",
			       PQgetvalue(res, 0, 0), name, scope, token);
		else
			printf("token \"%s\" (scope %s) created; it is shown only this once:\n%s\n", name, scope,
			       token);
		fflush(stdout);
		PQclear(res);
		rc = 0;
	}
	explicit_bzero(token, sizeof(token));
	PQfinish(conn);
	return rc;
}

static void list_text(const PGresult *res)
{
	int n = PQntuples(res), w = 4; /* NAME */
	bool active = false;

	for (int i = 0; i < n; i++) {
		if (PQgetlength(res, i, 0) > w)
			w = PQgetlength(res, i, 0);
		active = active || strcmp(PQgetvalue(res, i, 3), "active") == 0;
	}
	if (n > 0)
		printf("%-*s  %-5s  %-22s  %s\n", w, "NAME", "SCOPE", "CREATED AT", "STATUS");
	for (int i = 0; i < n; i++)
		printf("%-*s  %-5s  %-22s  %s\n", w, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
	if (!active)
		printf("no active token: the API is open (jobwheel token create NAME --scope read|write|admin)\n");
}

static int list(const struct cli_ctx *ctx)
{
	PGconn *conn;
	PGresult *res;

	if (ctx->argc > 2)
		return usage("list takes no arguments, got", ctx->argv[2]);
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	res = run(conn, ctx->json ? LIST_JSON_SQL : LIST_SQL, 0, NULL);
	PQfinish(conn);
	if (!res)
		return 1;
	if (ctx->json)
		printf("%s\n", PQgetvalue(res, 0, 0));
	else
		list_text(res);
	PQclear(res);
	return 0;
}

static int revoke(const struct cli_ctx *ctx)
{
	const char *params[1];
	bool revoked, open = false;
	PGconn *conn;
	PGresult *res;

	if (ctx->argc < 3)
		return usage("revoke needs a NAME", NULL);
	if (ctx->argv[2][0] == '-')
		return usage("unknown flag", ctx->argv[2]);
	if (ctx->argc > 3)
		return usage("unexpected argument", ctx->argv[3]);
	params[0] = ctx->argv[2];
	conn = cli_connect(ctx);
	if (!conn)
		return 1;
	res = run(conn, "SELECT jobwheel.revoke_token($1)", 1, params);
	if (!res) {
		PQfinish(conn);
		return 1;
	}
	revoked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	/* A later statement, so that it sees the revocation. */
	if (revoked) {
		res = run(conn, "SELECT jobwheel.token_scope(NULL) = 'open'", 0, NULL);
		open = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
	}
	PQfinish(conn);
	if (!revoked) {
		fprintf(stderr, "jobwheel token: no active token named \"%s\"\n", params[0]);
		return 1;
	}
	if (ctx->json)
		printf("{\"name\":\"%s\",\"revoked\":true}\n", params[0]); /* an active token's name: no escaping */
	else
		printf("revoked token %s\n", params[0]);
	if (open)
		fprintf(stderr, "jobwheel token: warning: that was the last active token; the API is open "
				"(no token needed) until one is created\n");
	return 0;
}

int cmd_token(const struct cli_ctx *ctx)
{
	const char *sub = ctx->argc > 1 ? ctx->argv[1] : "";

	if (strcmp(sub, "create") == 0)
		return create(ctx);
	if (strcmp(sub, "list") == 0)
		return list(ctx);
	if (strcmp(sub, "revoke") == 0)
		return revoke(ctx);
	return usage(*sub ? "unknown subcommand" : "missing subcommand", *sub ? sub : NULL);
}
