/* SPDX-License-Identifier: MIT */
/* jobwheel enqueue --workflow FILE: submits a DAG of jobs in one call (SPEC §7, §11). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "json.h"

#define WORKFLOW_MAX_SIZE (64u * 1024 * 1024) /* bytes of a workflow file */
#define WORKFLOW_MAX_DEPTH 67                 /* a payload nested 64 deep, in a job, in "jobs", in the spec */
#define READ_FIRST (64u * 1024)               /* first read buffer, doubled as needed */

/* One row per job, in id order, which is the order of the file's "jobs":
 * the whole answer (for --json), the workflow id, the key, the job id. */
static const char submit_sql[] =
	"SELECT w.spec::text, w.spec->>'workflow_id', j.key, j.value"
	" FROM jobwheel.submit_workflow($1::jsonb) AS w(spec), jsonb_each_text(w.spec->'jobs') AS j"
	" ORDER BY j.value::bigint";

/* Reads all of path ("-": stdin), at most WORKFLOW_MAX_SIZE bytes. Returns 0
 * with *ret_buf (NUL-terminated, caller frees) and *ret_len; -EFBIG when the
 * file is larger, -ENOMEM, or the -errno of open/read. */
static int read_all(const char *path, char **ret_buf, size_t *ret_len)
{
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int rc = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			/* room for one byte over the limit, to tell "too large" from "exactly the limit" */
			size_t ncap = cap ? cap * 2 : READ_FIRST;
			char *nbuf;

			if (ncap > WORKFLOW_MAX_SIZE + 1)
				ncap = WORKFLOW_MAX_SIZE + 1;
			nbuf = realloc(buf, ncap + 1); /* + the NUL */
			if (!nbuf) {
				rc = -ENOMEM;
				break;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > WORKFLOW_MAX_SIZE) {
			rc = -EFBIG;
			break;
		}
	}
	if (!is_stdin)
		close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* Checks that s[0..len) is one JSON object nested at most WORKFLOW_MAX_DEPTH
 * deep; the server checks the rest. Returns 0, or -EINVAL with a reason. */
static int check_spec(const char *s, size_t len, char *err, size_t errlen)
{
	cJSON *v = NULL;
	int rc = json_parse_object(s, len, WORKFLOW_MAX_DEPTH, &v, err, errlen);

	cJSON_Delete(v);
	return rc;
}

/* "workflow N: K jobs", then one "KEY ID" line per job, keys padded to one width. */
static void print_ids(const PGresult *res)
{
	int n = PQntuples(res), width = 0;

	for (int i = 0; i < n; i++)
		if (PQgetlength(res, i, 2) > width)
			width = PQgetlength(res, i, 2);
	printf("workflow %s: %d job%s\n", PQgetvalue(res, 0, 1), n, n == 1 ? "" : "s");
	for (int i = 0; i < n; i++)
		printf("%-*s %s\n", width, PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
}

int enqueue_workflow(const struct cli_ctx *ctx, const char *path)
{
	const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
	char *text = NULL, err[128];
	PGresult *res = NULL;
	PGconn *conn = NULL;
	size_t len = 0;
	int r, rc = 2;

	r = read_all(path, &text, &len);
	if (r == -EFBIG) {
		fprintf(stderr, "jobwheel enqueue: %s: larger than %u MiB\n", name, WORKFLOW_MAX_SIZE >> 20);
		goto cleanup;
	}
	if (r < 0) {
		fprintf(stderr, "jobwheel enqueue: %s: %s\n", name, strerror(-r));
		rc = 1;
		goto cleanup;
	}
	if (check_spec(text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "jobwheel enqueue: %s: %s\n", name, err);
		goto cleanup;
	}
	rc = 1;
	conn = cli_connect(ctx);
	if (!conn)
		goto cleanup;
	res = PQexecParams(conn, submit_sql, 1, NULL, (const char *const[]){ text }, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
		cli_sql_error("enqueue", conn, res);
		goto cleanup;
	}
	if (ctx->json)
		printf("%s\n", PQgetvalue(res, 0, 0));
	else
		print_ids(res);
	rc = 0;
cleanup:
	PQclear(res);
	PQfinish(conn);
	free(text);
	return rc;
}
