/* SPDX-License-Identifier: MIT */
/* jobwheel bench drain: enqueue N no-op jobs, start W workers, report jobs/s. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_WORKERS 64

struct drain_opts {
	long jobs;
	int workers;
	int concurrency;
	const char *worker_bin;
};

static int parse_long(const char *flag, const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s ? s : "", &end, 10);
	if (!s || errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "jobwheel bench drain: %s must be an integer in %ld..%ld\n", flag, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* The worker binary: --worker-bin, else beside this one (installed), else
 * in the build tree (build/cli/jobwheel -> build/worker/jobwheel-worker). */
static const char *find_worker(char *buf, size_t size)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return "jobwheel-worker";
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(buf, size, "%s/jobwheel-worker", self);
	if (access(buf, X_OK) == 0)
		return buf;
	snprintf(buf, size, "%s/../worker/jobwheel-worker", self);
	return access(buf, X_OK) == 0 ? buf : "jobwheel-worker";
}

static PGresult *exec1(PGconn *conn, const char *sql, const char *p1, const char *p2)
{
	const char *params[2] = { p1, p2 };
	return PQexecParams(conn, sql, p2 ? 2 : p1 ? 1 : 0, NULL, params, NULL, NULL, 0);
}

static int spawn_workers(const struct cli_ctx *ctx, const struct drain_opts *o, const char *queue, pid_t *pids)
{
	char conc[16], url[4096];

	snprintf(conc, sizeof(conc), "%d", o->concurrency);
	snprintf(url, sizeof(url), "database.url=%s", ctx->cfg->database_url);
	for (int i = 0; i < o->workers; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return -errno;
		if (pids[i] == 0) {
			execl(o->worker_bin, "jobwheel-worker", "--set", url, "--queues", queue, "--concurrency", conc,
			      "--log-level", "warn", (char *)NULL);
			fprintf(stderr, "jobwheel bench drain: cannot run %s: %s\n", o->worker_bin, strerror(errno));
			_exit(127);
		}
	}
	return 0;
}

static void stop_workers(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
}

static int drain(const struct cli_ctx *ctx, const struct drain_opts *o)
{
	char queue[64], njobs[24];
	pid_t pids[MAX_WORKERS] = { 0 };
	PGconn *conn = cli_connect(ctx);
	PGresult *res;
	int rc = 1;
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	if (!conn)
		return 1;
	snprintf(queue, sizeof(queue), "bench.%d", (int)getpid());
	snprintf(njobs, sizeof(njobs), "%ld", o->jobs);
	res = exec1(conn, "INSERT INTO jobwheel.jobs (kind, queue) SELECT 'noop', $1 FROM generate_series(1, $2::int)",
		    queue, njobs);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = cli_sql_error("bench", conn, res);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	PQclear(exec1(conn, "ANALYZE jobwheel.jobs", NULL, NULL));

	if (spawn_workers(ctx, o, queue, pids) < 0) {
		fprintf(stderr, "jobwheel bench drain: fork: %s\n", strerror(errno));
		goto out;
	}
	/* Waiting is polling here on purpose: the bench watches from outside,
	 * through the partial indexes, like an operator would. */
	for (;;) {
		res = exec1(conn,
			    "SELECT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready' AND queue = $1)"
			    " OR EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'running' AND queue = $1)",
			    queue, NULL);
		bool busy = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		bool failed = PQresultStatus(res) != PGRES_TUPLES_OK;
		if (failed)
			cli_sql_error("bench", conn, res);
		PQclear(res);
		if (failed)
			goto out;
		if (!busy)
			break;
		for (int i = 0; i < o->workers; i++) {
			if (waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
				fprintf(stderr, "jobwheel bench drain: worker %d exited early\n", (int)pids[i]);
				pids[i] = 0;
				goto out;
			}
		}
		nanosleep(&pause, NULL);
	}
	res = exec1(conn,
		    "SELECT count(*) FILTER (WHERE state = 'succeeded'),"
		    " extract(epoch FROM max(finished_at) - min(started_at)) FROM jobwheel.jobs WHERE queue = $1",
		    queue, NULL);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		long done = atol(PQgetvalue(res, 0, 0));
		double secs = atof(PQgetvalue(res, 0, 1));
		double rate = secs > 0 ? (double)done / secs : 0;
		if (ctx->json)
			printf("{\"system\":\"jobwheel\",\"jobs\":%ld,\"workers\":%d,\"concurrency\":%d,"
			       "\"succeeded\":%ld,\"seconds\":%.3f,\"drain_per_s\":%.0f}\n",
			       o->jobs, o->workers, o->concurrency, done, secs, rate);
		else
			printf("drained %ld/%ld no-op jobs with %d worker(s) x %d in %.3f s: %.0f jobs/s\n", done,
			       o->jobs, o->workers, o->concurrency, secs, rate);
		rc = done == o->jobs ? 0 : 1;
	} else {
		rc = cli_sql_error("bench", conn, res);
	}
	PQclear(res);
out:
	stop_workers(pids, o->workers);
	/* Leave the database as it was found. */
	PQclear(exec1(conn, "DELETE FROM jobwheel.jobs WHERE queue = $1", queue, NULL));
	PQfinish(conn);
	return rc;
}

int cmd_bench(const struct cli_ctx *ctx)
{
	struct drain_opts o = { .jobs = 100000, .workers = 2, .concurrency = 64 };
	char bin[PATH_MAX];
	long v;

	if (ctx->argc < 2 || strcmp(ctx->argv[1], "drain") != 0) {
		fprintf(stderr, "usage: jobwheel bench drain [--jobs N] [--workers W] [--concurrency C] [--worker-bin PATH]\n");
		return 2;
	}
	o.worker_bin = find_worker(bin, sizeof(bin));
	for (int i = 2; i < ctx->argc; i += 2) { /* FLAG VALUE pairs */
		const char *flag = ctx->argv[i], *val = i + 1 < ctx->argc ? ctx->argv[i + 1] : NULL;
		if (strcmp(flag, "--jobs") == 0 && parse_long(flag, val, 1, 100000000, &v) == 0)
			o.jobs = v;
		else if (strcmp(flag, "--workers") == 0 && parse_long(flag, val, 1, MAX_WORKERS, &v) == 0)
			o.workers = (int)v;
		else if (strcmp(flag, "--concurrency") == 0 && parse_long(flag, val, 1, 4096, &v) == 0)
			o.concurrency = (int)v;
		else if (strcmp(flag, "--worker-bin") == 0 && val)
			o.worker_bin = val;
		else {
			if (strncmp(flag, "--", 2) != 0 || !strstr(" --jobs --workers --concurrency --worker-bin", flag))
				fprintf(stderr, "jobwheel bench drain: unknown argument \"%s\"\n", flag);
			return 2;
		}
	}
	return drain(ctx, &o);
}
