/* SPDX-License-Identifier: MIT */
/* jobwheel enqueue --batch: one JSON job object per line of stdin, all in
 * one transaction (SPEC §11).
 *
 * Jobs go in chunks of up to BATCH_CHUNK lines. A chunk of plain jobs (see
 * plain_job()) is written with COPY straight into jobwheel.jobs, which costs
 * the server about 60 % of enqueue_batch() per job: that function has to
 * parse a jsonb array and pick every job apart, COPY reads columns. The
 * table's CHECK constraints and integer types check what COPY writes, as
 * they check enqueue_batch()'s INSERT. Every other chunk, and every chunk
 * under --json (which prints the ids COPY cannot return), goes through
 * jobwheel.enqueue_batch().
 *
 * A chunk is sent without waiting for its answer: the server inserts it
 * while the next one is read and checked, and its answer is collected
 * before the next one goes out. A COPY that fails has aborted the
 * transaction; its chunk then goes through enqueue_batch() in a transaction
 * of its own, rolled back too, only for the message that names the line
 * and the field. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "strbuf.h"
#include "util.h"

#define BATCH_CHUNK 1000               /* jobs per statement, at most */
#define BATCH_CHUNK_BYTES (1024 * 1024) /* or about this much JSON */
#define BATCH_MAX_LINE (1024 * 1024)   /* bytes per input line, like gateway.max_body */
#define JOB_MAX_DEPTH 65               /* a job object around a payload nested 64 deep */

/* The columns a plain job fills, and the value of each when the job leaves
 * it out: the column defaults of jobwheel.jobs (migrations/0001_schema.sql),
 * which enqueue_batch() applies too. */
enum column_type {
	NAME,    /* a JSON string without escapes: copied as written */
	OBJECT,  /* a JSON object: copied as written, parsed by jsonb */
	INTEGER, /* a JSON integer of up to 10 digits: cast by COPY */
};
static const struct column {
	const char *name, *absent;
	enum column_type type;
} columns[] = {
	{ "kind", NULL, NAME },           { "payload", "{}", OBJECT },       { "queue", "default", NAME },
	{ "priority", "0", INTEGER },     { "max_attempts", "4", INTEGER }, { "timeout_ms", "300000", INTEGER },
	{ "backoff_base_ms", "1000", INTEGER },
};
enum { KIND, PAYLOAD, QUEUE }; /* their index in columns[] */

#define COPY_SQL                                                                                  \
	"COPY jobwheel.jobs (kind, payload, queue, priority, max_attempts, timeout_ms, backoff_base_ms) " \
	"FROM STDIN"

struct chunk {
	struct strbuf json;    /* the jobs as a JSON array, for enqueue_batch() */
	struct strbuf copy;    /* the same jobs as COPY text rows, while plain */
	bool plain;            /* every job so far is plain */
	int line[BATCH_CHUNK]; /* input line of each job */
	int n;                 /* jobs in the chunk */
};

struct batch {
	const struct cli_ctx *ctx;
	PGconn *conn;
	struct chunk chunk[2]; /* the one being filled, and the one in flight */
	int cur;               /* index of the one being filled */
	bool in_flight;        /* chunk[!cur] was sent, its answer not yet read */
	bool copied;           /* ... and went by COPY */
	long total;
	struct strbuf ids;     /* for --json: "1,2,3" */
	char **queues;         /* the queues of the jobs sent by COPY, to wake at the end */
	int nqueues;
	bool oom;
};

/* ---------------------------------------------------------------- plain jobs */

static bool has_type(const struct json_member *m, enum column_type type)
{
	size_t i = m->val[0] == '-';

	switch (type) {
	case NAME:
		return m->val[0] == '"' && !memchr(m->val, '\\', m->val_len);
	case OBJECT:
		return m->val[0] == '{';
	case INTEGER:
		if (i == m->val_len || m->val_len - i > 10)
			return false;
		for (; i < m->val_len; i++)
			if (m->val[i] < '0' || m->val[i] > '9')
				return false;
		return true;
	}
	return false;
}

/* Appends s[0..len) to a COPY text row, escaping what the format reserves. */
static void copy_append(struct strbuf *b, const char *s, size_t len)
{
	const char *run = s;

	for (const char *p = s; p < s + len; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : *p == '\n' ? "\\n" : NULL;
		if (!esc)
			continue;
		strbuf_append(b, run, (size_t)(p - run));
		strbuf_puts(b, esc);
		run = p + 1;
	}
	strbuf_append(b, run, (size_t)(s + len - run));
}

/* A job is plain when it has a kind, no field outside columns[], each given
 * once with its column's type, nothing but JSON between them: then its row
 * needs no decoding, only copying. Appends the row to row and returns true,
 * with the job's queue in *ret_queue; else false (row then holds a partial
 * row). */
static bool plain_job(const char *line, size_t len, struct strbuf *row, const char **ret_queue, size_t *ret_queue_len)
{
	struct json_member m[ARRAY_SIZE(columns) + 1];
	const struct json_member *given[ARRAY_SIZE(columns)] = { NULL };
	int n = json_object_members(line, len, m, (int)ARRAY_SIZE(m));

	if (n < 0)
		return false;
	for (int i = 0; i < n; i++) {
		size_t k = 0;
		while (k < ARRAY_SIZE(columns) &&
		       !(strlen(columns[k].name) == m[i].key_len && !memcmp(columns[k].name, m[i].key, m[i].key_len)))
			k++;
		if (k == ARRAY_SIZE(columns) || given[k] || !has_type(&m[i], columns[k].type))
			return false; /* another field (or an escaped name), one given twice, or of another type */
		given[k] = &m[i];
	}
	if (!given[KIND])
		return false;
	for (size_t k = 0; k < ARRAY_SIZE(columns); k++) {
		const char *s = given[k] ? given[k]->val : columns[k].absent;
		size_t slen = given[k] ? given[k]->val_len : strlen(s);
		if (given[k] && columns[k].type == NAME) { /* without the quotes */
			s++;
			slen -= 2;
		}
		if (k == QUEUE) {
			*ret_queue = s;
			*ret_queue_len = slen;
		}
		if (k > 0)
			strbuf_puts(row, "\t");
		copy_append(row, s, slen);
	}
	strbuf_puts(row, "\n");
	return true;
}

/* Remembers a queue of the jobs sent by COPY (a few distinct ones, usually
 * the one of the previous job). */
static void note_queue(struct batch *b, const char *q, size_t len)
{
	char **grown;

	for (int i = b->nqueues - 1; i >= 0; i--)
		if (strlen(b->queues[i]) == len && !memcmp(b->queues[i], q, len))
			return;
	grown = realloc(b->queues, (size_t)(b->nqueues + 1) * sizeof(*grown));
	if (!grown || !(grown[b->nqueues] = strndup(q, len))) {
		b->queues = grown ? grown : b->queues;
		b->oom = true;
		return;
	}
	b->queues = grown;
	b->nqueues++;
}

/* Wakes the workers of the queues COPY filled (enqueue_batch() wakes its own). */
static int wake_queues(struct batch *b)
{
	struct strbuf arr = { 0 };
	const char *params[1];
	PGresult *res;
	int rc = 0;

	if (b->nqueues == 0)
		return 0;
	pgarray_begin(&arr);
	for (int i = 0; i < b->nqueues; i++)
		pgarray_add_text(&arr, b->queues[i]);
	pgarray_end(&arr);
	params[0] = strbuf_str(&arr);
	res = PQexecParams(b->conn, "SELECT jobwheel._wake(q) FROM unnest($1::text[]) q", 1, NULL, params, NULL,
			   NULL, 0);
	if (arr.oom || PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = cli_sql_error("enqueue", b->conn, res);
	PQclear(res);
	strbuf_free(&arr);
	return rc;
}

/* ---------------------------------------------------------------- chunks */

/* Sends chunk c's JSON array to enqueue_batch(); false if it could not be sent. */
static bool send_function(struct batch *b, const struct chunk *c)
{
	const char *params[1] = { strbuf_str(&c->json) };

	return PQsendQueryParams(b->conn, "SELECT id FROM jobwheel.enqueue_batch($1::jsonb) AS id", 1, NULL, params,
				 NULL, NULL, 0);
}

/* Prints the error of enqueue_batch()'s answer res to chunk c, by input line. */
static void report_error(struct batch *b, const struct chunk *c, PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	int idx = -1, off = 0;

	/* enqueue_batch() errors start "jobs[I]: " */
	if (msg && sscanf(msg, "jobs[%d]: %n", &idx, &off) == 1 && off > 0 && idx >= 0 && idx < c->n)
		fprintf(stderr, "jobwheel enqueue: line %d: %s\n", c->line[idx], msg + off);
	else if (msg)
		fprintf(stderr, "jobwheel enqueue: lines %d-%d: %s\n", c->line[0], c->line[c->n - 1], msg);
	else
		cli_sql_error("enqueue", b->conn, res);
}

/* A COPY of chunk c failed with copy_res: asks enqueue_batch(), in a
 * transaction rolled back, which line and field are wrong; reports the
 * COPY's own error if it finds nothing. */
static void explain_copy_error(struct batch *b, const struct chunk *c, PGresult *copy_res)
{
	PGresult *res = NULL;
	bool explained = false;

	if (cli_exec("enqueue", b->conn, "ROLLBACK") && cli_exec("enqueue", b->conn, "BEGIN") &&
	    send_function(b, c)) {
		res = PQgetResult(b->conn);
		explained = PQresultStatus(res) != PGRES_TUPLES_OK;
		if (explained)
			report_error(b, c, res);
		PQclear(res);
		while ((res = PQgetResult(b->conn)) != NULL)
			PQclear(res);
	}
	if (!explained)
		cli_sql_error("enqueue", b->conn, copy_res);
}

/* Sends chunk c's rows with COPY; returns 0 or the exit status 1, having
 * said why. */
static int send_copy(struct batch *b, struct chunk *c)
{
	PGresult *res, *extra;

	if (!PQsendQuery(b->conn, COPY_SQL))
		return cli_sql_error("enqueue", b->conn, NULL);
	res = PQgetResult(b->conn);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		while ((extra = PQgetResult(b->conn)) != NULL)
			PQclear(extra);
		explain_copy_error(b, c, res);
		PQclear(res);
		return 1;
	}
	PQclear(res);
	if (PQputCopyData(b->conn, c->copy.s, (int)c->copy.len) != 1 || PQputCopyEnd(b->conn, NULL) != 1)
		return cli_sql_error("enqueue", b->conn, NULL);
	return 0;
}

/* Reads the answer to the chunk in flight; returns 0 or the exit status 1. */
static int batch_wait(struct batch *b)
{
	struct chunk *c = &b->chunk[!b->cur];
	int rc = 1;
	PGresult *res, *extra;

	if (!b->in_flight)
		return 0;
	b->in_flight = false;
	res = PQgetResult(b->conn);
	while ((extra = PQgetResult(b->conn)) != NULL) /* drain to the end of the query */
		PQclear(extra);
	if (b->copied) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK || atoi(PQcmdTuples(res)) != c->n) {
			explain_copy_error(b, c, res);
			goto cleanup;
		}
	} else {
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != c->n) {
			report_error(b, c, res);
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
	}
	b->total += c->n;
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

static void chunk_reset(struct chunk *c)
{
	strbuf_reset(&c->json);
	strbuf_reset(&c->copy);
	c->plain = true;
	c->n = 0;
}

/* Sends the chunk being filled (after the answer to the previous one) and
 * starts the next; returns 0 or the exit status 1. */
static int batch_flush(struct batch *b)
{
	struct chunk *c = &b->chunk[b->cur];
	int rc;

	if (c->n == 0)
		return 0;
	if (!b->conn) {
		b->conn = cli_connect(b->ctx);
		if (!b->conn || !cli_exec("enqueue", b->conn, "BEGIN"))
			return 1;
	}
	if ((rc = batch_wait(b)) != 0)
		return rc;
	strbuf_puts(&c->json, "]");
	if (c->json.oom || c->copy.oom || b->oom) {
		fprintf(stderr, "jobwheel enqueue: out of memory\n");
		return 1;
	}
	b->copied = c->plain && !b->ctx->json;
	if (b->copied && (rc = send_copy(b, c)) != 0)
		return rc;
	if (!b->copied && !send_function(b, c))
		return cli_sql_error("enqueue", b->conn, NULL);
	b->in_flight = true;
	b->cur = !b->cur;
	chunk_reset(&b->chunk[b->cur]);
	return 0;
}

/* Validates a non-blank line, adds it to the chunk; returns 0 or the exit status. */
static int batch_add(struct batch *b, const char *line, size_t len, int lineno)
{
	struct chunk *c = &b->chunk[b->cur];
	char err[128] = "longer than 1 MiB";
	cJSON *parsed = NULL;
	int rc;

	if (len > BATCH_MAX_LINE || json_parse_object(line, len, JOB_MAX_DEPTH, &parsed, err, sizeof(err)) < 0) {
		/* an error in the chunk in flight comes from earlier lines: it goes first */
		if ((rc = batch_wait(b)) != 0)
			return rc;
		fprintf(stderr, "jobwheel enqueue: line %d: %s\n", lineno, err);
		return 2;
	}
	cJSON_Delete(parsed);
	strbuf_puts(&c->json, c->n ? "," : "[");
	strbuf_append(&c->json, line, len);
	if (c->plain && !b->ctx->json) {
		const char *queue = NULL;
		size_t queue_len = 0;
		c->plain = plain_job(line, len, &c->copy, &queue, &queue_len);
		if (c->plain)
			note_queue(b, queue, queue_len);
	}
	c->line[c->n++] = lineno;
	return c->n == BATCH_CHUNK || c->json.len >= BATCH_CHUNK_BYTES ? batch_flush(b) : 0;
}

int enqueue_batch(const struct cli_ctx *ctx)
{
	struct batch batch = { .ctx = ctx }, *b = &batch;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	chunk_reset(&b->chunk[0]);
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
	if (rc == 0 && b->oom) {
		fprintf(stderr, "jobwheel enqueue: out of memory\n");
		rc = 1;
	}
	if (rc == 0 && b->conn)
		rc = wake_queues(b);
	if (rc == 0 && b->conn && !cli_exec("enqueue", b->conn, "COMMIT"))
		rc = 1;
	if (rc == 0 && ctx->json)
		printf("{\"ids\":[%s]}\n", strbuf_str(&b->ids));
	else if (rc == 0)
		printf("enqueued %ld jobs\n", b->total);
	PQfinish(b->conn); /* without COMMIT, closing rolls everything back */
	for (int i = 0; i < 2; i++) {
		strbuf_free(&b->chunk[i].json);
		strbuf_free(&b->chunk[i].copy);
	}
	for (int i = 0; i < b->nqueues; i++)
		free(b->queues[i]);
	free(b->queues);
	strbuf_free(&b->ids);
	free(line);
	return rc;
}
