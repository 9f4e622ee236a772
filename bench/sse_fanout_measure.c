/* SPDX-License-Identifier: MIT */
/* The SSE fan-out benchmark's measurement: one round (marker job, latency of
 * every client), the gateway's memory and the CPU of both sides. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>

#include "sse_fanout.h"
#include "util.h"

/*
 * The marker's INSERT is the event: no worker runs, so the job stays
 * 'ready' and nothing else of the job path is in the figure. Latency runs
 * from the monotonic time right after the commit returns to the read that
 * completed the client's `event: job` block, so it includes this client's
 * own work: one thread reads 10 000 sockets in turn. The per-round "first"
 * figure (commit → first client) is the gateway's relay delay; "last −
 * first" is the spread of the fan-out on both sides.
 */

static double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of PID in seconds, or -1. */
static double cpu_pid_s(pid_t pid)
{
	char path[64], line[1024];
	unsigned long ut, st;
	FILE *f;
	char *p;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strrchr(line, ')')))
		return -1;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS and VmHWM of PID in KiB; 0 on success. */
static int rss_kib(pid_t pid, long *ret_rss, long *ret_hwm)
{
	char path[64], line[256];
	long rss = -1, hwm = -1;
	FILE *f;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			rss = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			hwm = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	if (rss < 0 || hwm < 0)
		return -ENOENT;
	*ret_rss = rss;
	*ret_hwm = hwm;
	return 0;
}

static void sample_rss(struct bench *b)
{
	long rss, hwm;

	if (rss_kib(b->o.gw_pid, &rss, &hwm) < 0)
		return;
	if (rss > b->rss_peak_kib)
		b->rss_peak_kib = rss;
	b->hwm_kib = hwm;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = container_of(w, struct bench, tick);

	if (b->in_round)
		sample_rss(b);
}

void measure_start_sampling(struct bench *b)
{
	ev_timer_init(&b->tick, tick_cb, TICK_S, TICK_S);
	ev_timer_start(b->loop, &b->tick);
}

void measure_idle(struct bench *b)
{
	/* let the gateway settle (stream preambles, replays) before measuring idle memory */
	client_run_for(b, 1.0);
	if (b->o.gw_pid > 0 && rss_kib(b->o.gw_pid, &b->rss_idle_kib, &b->hwm_kib) < 0)
		fprintf(stderr, "sse_fanout: cannot read /proc/%d/status\n", (int)b->o.gw_pid);
	b->rss_peak_kib = b->rss_idle_kib;
}

void measure_delivery(struct bench *b, struct client *c, int64_t id, uint64_t t)
{
	b->job_events++;
	if (!b->in_round || id != b->marker || c->got_round == b->round)
		return;
	c->got_round = b->round;
	b->lat_us[(size_t)b->round * (size_t)b->o.clients + (size_t)(c - b->clients)] =
		(uint32_t)((t - b->t_commit_ns) / 1000);
	if (!b->t_first_ns)
		b->t_first_ns = t;
	b->t_last_ns = t;
	b->remaining--;
}


static int enqueue_marker(struct bench *b, PGconn *pg, struct round_stat *rs)
{
	const char *params[2] = {b->o.kind, b->o.queue};
	uint64_t t0 = now_ns();
	PGresult *res = PQexecParams(pg, "SELECT jobwheel.enqueue($1, '{}'::jsonb, $2)", 2, NULL, params, NULL,
	                             NULL, 0);
	uint64_t t1 = now_ns();
	int r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fprintf(stderr, "sse_fanout: enqueue: %s", PQerrorMessage(pg));
		r = -EIO;
	} else {
		b->marker = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		b->t_commit_ns = t1;
		rs->job_id = b->marker;
		rs->enqueue_ms = (double)(t1 - t0) / 1e6;
	}
	PQclear(res);
	return r;
}

int measure_round(struct bench *b, PGconn *pg, int r, struct round_stat *rs)
{
	double gw0, cl0;
	uint64_t deadline;

	client_run_for(b, b->o.gap_s);
	b->round = r;
	b->t_first_ns = b->t_last_ns = 0;
	gw0 = cpu_pid_s(b->o.gw_pid);
	cl0 = cpu_self_s();
	if (enqueue_marker(b, pg, rs) < 0)
		return -EIO;
	b->in_round = true;
	b->remaining = b->streaming;
	rs->expected = b->streaming;
	deadline = b->t_commit_ns + (uint64_t)(b->o.round_timeout_s * 1e9);
	client_run_until_zero(b, &b->remaining, deadline);
	b->in_round = false;
	rs->received = 0;
	for (int i = 0; i < b->o.clients; i++)
		rs->received += b->clients[i].got_round == r;
	rs->first_ms = b->t_first_ns ? (double)(b->t_first_ns - b->t_commit_ns) / 1e6 : -1;
	rs->last_ms = b->t_last_ns ? (double)(b->t_last_ns - b->t_commit_ns) / 1e6 : -1;
	rs->window_s = (double)(now_ns() - b->t_commit_ns) / 1e9;
	rs->gw_cpu_s = gw0 >= 0 ? cpu_pid_s(b->o.gw_pid) - gw0 : -1;
	rs->client_cpu_s = cpu_self_s() - cl0;
	sample_rss(b);
	fprintf(stderr, "sse_fanout: round %d: job %" PRId64 ", %d/%d clients, last after %.1f ms\n", r + 1,
	        rs->job_id, rs->received, rs->expected, rs->last_ms);
	return 0;
}
