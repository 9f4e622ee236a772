/* SPDX-License-Identifier: MIT */
/* Benchmark: the floor of pickup latency on this machine, with raw SQL and no job queue. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/*
 * The least any LISTEN/NOTIFY queue can do between "enqueue" and "started":
 * a producer process commits INSERT + NOTIFY (durable, one transaction,
 * created = now()), a listener process blocked in poll() wakes on the
 * notification and runs one UPDATE that sets started = now(). No function,
 * no trigger, no claim query, no rate limit, no batching. Every hop a real
 * queue has is here once: commit flush, signal to the listening backend,
 * backend → client, client → backend. What jobwheel adds on top of this is
 * its own cost; what this takes is the machine's.
 *
 * One job at a time, GAP_MS apart, so every hop starts from idle, as in
 * bench/suite/pickup.py. Prints started - created in milliseconds, one
 * sample per line.
 *
 * usage: pickup_floor CONNINFO N GAP_MS
 */

static PGconn *connect_or_die(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pickup_floor: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void exec_or_die(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		fprintf(stderr, "pickup_floor: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

/* Wakes on every notification and marks what is waiting as started, until "stop". */
static void listen_and_start(const char *conninfo)
{
	PGconn *c = connect_or_die(conninfo);
	exec_or_die(c, "LISTEN pickup_floor");
	for (;;) {
		struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		if (!PQconsumeInput(c))
			_exit(1);
		PGnotify *n;
		bool stop = false;
		while ((n = PQnotifies(c)) != NULL) {
			stop = stop || strcmp(n->extra, "stop") == 0;
			PQfreemem(n);
		}
		if (stop)
			break;
		exec_or_die(c, "UPDATE pickup_floor SET started = now() WHERE started IS NULL");
	}
	PQfinish(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 4 || atoi(argv[2]) <= 0 || atoi(argv[3]) < 0) {
		fprintf(stderr, "usage: pickup_floor CONNINFO N GAP_MS\n");
		return 2;
	}
	const char *conninfo = argv[1];
	int n = atoi(argv[2]);
	struct timespec gap = { .tv_sec = atoi(argv[3]) / 1000, .tv_nsec = atoi(argv[3]) % 1000 * 1000000L };

	PGconn *c = connect_or_die(conninfo);
	exec_or_die(c, "SET client_min_messages = warning");
	exec_or_die(c, "DROP TABLE IF EXISTS pickup_floor");
	exec_or_die(c, "CREATE TABLE pickup_floor (id bigserial PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(),"
		       " started timestamptz)");

	/* The listener must be listening before the first notification. */
	pid_t child = fork();
	if (child < 0) {
		perror("pickup_floor: fork");
		return 1;
	}
	if (child == 0)
		listen_and_start(conninfo);
	PGresult *r;
	do {
		r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN pickup_floor'");
		bool listening = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
		PQclear(r);
		if (listening)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
	} while (waitpid(child, NULL, WNOHANG) == 0);

	for (int i = 0; i < n; i++) {
		nanosleep(&gap, NULL);
		exec_or_die(c, "INSERT INTO pickup_floor DEFAULT VALUES; NOTIFY pickup_floor");
	}
	/* Every row started (or the listener died): then stop it. */
	for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
		r = PQexec(c, "SELECT count(*) FROM pickup_floor WHERE started IS NULL");
		bool done = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) == 0;
		PQclear(r);
		if (done)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
	}
	exec_or_die(c, "NOTIFY pickup_floor, 'stop'");
	int status;
	waitpid(child, &status, 0);

	r = PQexec(c, "SELECT extract(epoch FROM started - created) * 1000 FROM pickup_floor WHERE started IS NOT NULL"
		      " ORDER BY id");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n) {
		fprintf(stderr, "pickup_floor: %d of %d rows started\n", PQntuples(r), n);
		return 1;
	}
	for (int i = 0; i < n; i++)
		printf("%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	exec_or_die(c, "DROP TABLE pickup_floor");
	PQfinish(c);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
