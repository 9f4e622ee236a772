/* SPDX-License-Identifier: MIT */
/* Benchmark: timing wheel vs min-heap, insert/cancel/expire ns per operation. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timer.h"

/*
 * For each N: N timers at random deadlines over a 60 s window (sequential
 * ids, as job ids are), cancel a random half, then advance in 1 ms steps
 * through the window. Insert and cancel are per call; expire is the whole
 * 60 000-step walk divided by the timers fired, so at small N it is
 * dominated by the cost of the empty ticks, not of firing. Cancels are lazy,
 * so expire also pays for recycling the cancelled half.
 * Small N are repeated so each figure covers at least 10^5 timers.
 *
 * usage: timer_bench [max-N]   (default 10^7)
 */

#define WINDOW_MS 60000
#define START_MS UINT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MIN_TIMED_OPS 100000

struct result {
	double insert_ns, cancel_ns, expire_ns;
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void count_fire(int64_t id, uint64_t when_ms, void *arg)
{
	(void)id;
	(void)when_ms;
	++*(size_t *)arg;
}

/* One full insert / cancel / expire cycle; adds the elapsed ns to *res. */
static int run_once(enum timer_kind kind, size_t n, const uint64_t *when, const uint32_t *victims,
		    struct result *res)
{
	struct jw_timer *t = timer_new(kind, START_MS);
	size_t fired = 0;
	double t0, t1, t2, t3;

	if (!t)
		return -ENOMEM;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		int r = timer_add(t, (int64_t)i, when[i]);

		if (r < 0) {
			timer_free(t);
			return r;
		}
	}
	t1 = now_ns();
	for (size_t i = 0; i < n / 2; i++)
		timer_cancel(t, (int64_t)victims[i]);
	t2 = now_ns();
	for (uint64_t ms = 1; ms <= WINDOW_MS; ms++)
		timer_advance(t, START_MS + ms, count_fire, &fired);
	t3 = now_ns();
	timer_free(t);
	if (fired != n - n / 2) {
		fprintf(stderr, "timer_bench: %s fired %zu of %zu\n", timer_kind_name(kind), fired,
			n - n / 2);
		return -EINVAL;
	}
	res->insert_ns += t1 - t0;
	res->cancel_ns += t2 - t1;
	res->expire_ns += t3 - t2;
	return 0;
}

static int bench_size(size_t n)
{
	static const enum timer_kind kinds[] = { TIMER_WHEEL, TIMER_HEAP };
	uint64_t *when = malloc(n * sizeof(*when));
	uint32_t *victims = malloc(n * sizeof(*victims));
	size_t reps = n >= MIN_TIMED_OPS ? 1 : MIN_TIMED_OPS / n;
	uint64_t seed = 42;
	int r = 0;

	if (!when || !victims) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		when[i] = START_MS + 1 + splitmix(&seed) % WINDOW_MS;
		victims[i] = (uint32_t)i;
	}
	/* The first n/2 of a Fisher-Yates shuffle: a random half, in random order. */
	for (size_t i = 0; i < n / 2; i++) {
		size_t j = i + splitmix(&seed) % (n - i);
		uint32_t tmp = victims[i];

		victims[i] = victims[j];
		victims[j] = tmp;
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct result res = { 0 };

		for (size_t rep = 0; rep < reps && r == 0; rep++)
			r = run_once(kinds[k], n, when, victims, &res);
		if (r < 0)
			goto cleanup;
		printf("| %zu | %s | %.1f | %.1f | %.1f |\n", n, timer_kind_name(kinds[k]),
		       res.insert_ns / (double)(reps * n), res.cancel_ns / (double)(reps * (n / 2)),
		       res.expire_ns / (double)(reps * (n - n / 2)));
		fflush(stdout);
	}
cleanup:
	free(when);
	free(victims);
	return r;
}

int main(int argc, char **argv)
{
	unsigned long long max_n = 10000000;

	if (argc > 2 || (argc == 2 && (sscanf(argv[1], "%llu", &max_n) != 1 || max_n < 1000 ||
				       max_n > UINT32_MAX))) {
		fprintf(stderr, "usage: %s [max-N]   (1000 <= max-N <= %" PRIu32 ")\n", argv[0],
			UINT32_MAX);
		return 2;
	}
	printf("| N | structure | insert ns/op | cancel ns/op | expire ns/op |\n");
	printf("|---|---|---|---|---|\n");
	for (unsigned long long n = 1000; n <= max_n; n *= 10) {
		int r = bench_size((size_t)n);

		if (r < 0) {
			fprintf(stderr, "timer_bench: N=%llu: %s\n", n, strerror(-r));
			return 1;
		}
	}
	return 0;
}
