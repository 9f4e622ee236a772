/* SPDX-License-Identifier: MIT */
/* The SSE fan-out benchmark's report: latency percentiles per round and
 * overall, the summary lines, and the JSON line scripts read. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sse_fanout.h"

/*
 * The shape is kept stable: docs/BENCHMARKS.md's tables are read off the
 * text, and the last line is one JSON object for scripts, whose fields are
 * added, never renamed. A figure that could not be measured is -1.
 */

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;

	return a < c ? -1 : a > c;
}

/* Nearest-rank percentile of sorted V[0..n), in ms. */
static double pct_ms(const uint32_t *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return -1;
	k = (size_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1] / 1000.0;
}

/* Copy the received latencies of round R (or all rounds, R < 0) into OUT, sorted. */
static size_t collect(const struct bench *b, int r, uint32_t *out)
{
	size_t n = 0, from = r < 0 ? 0 : (size_t)r, to = r < 0 ? (size_t)b->o.rounds : (size_t)r + 1;

	for (size_t k = from; k < to; k++)
		for (size_t i = 0; i < (size_t)b->o.clients; i++) {
			uint32_t v = b->lat_us[k * (size_t)b->o.clients + i];

			if (v != MISSED)
				out[n++] = v;
		}
	qsort(out, n, sizeof(*out), cmp_u32);
	return n;
}

void report_print(const struct bench *b, const struct round_stat *rs, double ramp_s, double rounds_wall_s)
{
	size_t total = (size_t)b->o.rounds * (size_t)b->o.clients;
	uint32_t *v = malloc(total * sizeof(*v));
	long misses = 0, expected = 0;
	double gw_cpu = 0, cl_cpu = 0, window = 0;
	size_t n;

	if (!v) {
		fprintf(stderr, "sse_fanout: out of memory\n");
		return;
	}
	printf("round  job_id  clients  received  enqueue_ms  first_ms   p50_ms   p99_ms   max_ms\n");
	for (int r = 0; r < b->o.rounds; r++) {
		n = collect(b, r, v);
		printf("%5d %7" PRId64 " %8d %9d %11.2f %9.2f %8.2f %8.2f %8.2f\n", r + 1, rs[r].job_id,
		       rs[r].expected, rs[r].received, rs[r].enqueue_ms, rs[r].first_ms, pct_ms(v, n, 0.50),
		       pct_ms(v, n, 0.99), n ? v[n - 1] / 1000.0 : -1.0);
		misses += rs[r].expected - rs[r].received;
		expected += rs[r].expected;
		if (rs[r].gw_cpu_s >= 0)
			gw_cpu += rs[r].gw_cpu_s;
		cl_cpu += rs[r].client_cpu_s;
		window += rs[r].window_s;
	}
	n = collect(b, -1, v);
	printf("\nclients %d of %d connected (ramp-up %.2f s, %d connect failures, %d refused", b->streaming,
	       b->o.clients, ramp_s, b->connect_failures - b->bad_status, b->bad_status);
	if (b->bad_status)
		printf(", last status %d", b->last_status);
	printf(")\n");
	printf("path %s\n", b->o.path);
	printf("overall: %zu deliveries, %ld misses, %d disconnects; p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", n,
	       misses, b->disconnects, pct_ms(v, n, 0.50), pct_ms(v, n, 0.99), n ? v[n - 1] / 1000.0 : -1.0);
	if (window > 0)
		printf("CPU while delivering (commit → last client, %.3f s summed): gateway %.0f%%, this client "
		       "%.0f%% (of one core)\n",
		       window, gw_cpu / window * 100, cl_cpu / window * 100);
	if (b->o.gw_pid > 0)
		printf("gateway RSS: idle with clients %.1f MiB, peak sampled in rounds %.1f MiB, VmHWM %.1f MiB\n",
		       b->rss_idle_kib / 1024.0, b->rss_peak_kib / 1024.0, b->hwm_kib / 1024.0);
	if (b->first_error[0])
		printf("first error: %s\n", b->first_error);

	printf("{\"bench\":\"sse_fanout\",\"clients\":%d,\"requested\":%d,\"rounds\":%d,\"path\":\"%s\","
	       "\"deliveries\":%zu,\"expected\":%ld,\"misses\":%ld,\"disconnects\":%d,\"connect_failures\":%d,"
	       "\"refused\":%d,\"ramp_s\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
	       "\"rss_idle_kib\":%ld,\"rss_peak_kib\":%ld,\"rss_hwm_kib\":%ld,"
	       "\"gateway_cpu_pct\":%.1f,\"client_cpu_pct\":%.1f,\"rounds_wall_s\":%.2f,\"per_round\":[",
	       b->streaming, b->o.clients, b->o.rounds, b->o.path, n, expected, misses, b->disconnects,
	       b->connect_failures - b->bad_status, b->bad_status, ramp_s, pct_ms(v, n, 0.50), pct_ms(v, n, 0.99),
	       n ? v[n - 1] / 1000.0 : -1.0, b->rss_idle_kib, b->rss_peak_kib, b->hwm_kib,
	       window > 0 ? gw_cpu / window * 100 : -1.0, window > 0 ? cl_cpu / window * 100 : -1.0,
	       rounds_wall_s);
	for (int r = 0; r < b->o.rounds; r++) {
		size_t m = collect(b, r, v);

		printf("%s{\"job_id\":%" PRId64 ",\"expected\":%d,\"received\":%d,\"first_ms\":%.3f,"
		       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
		       r ? "," : "", rs[r].job_id, rs[r].expected, rs[r].received, rs[r].first_ms,
		       pct_ms(v, m, 0.50), pct_ms(v, m, 0.99), m ? v[m - 1] / 1000.0 : -1.0);
	}
	printf("]}\n");
	free(v);
}
