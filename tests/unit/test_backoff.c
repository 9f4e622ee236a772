/* SPDX-License-Identifier: MIT */
/* Unit tests: retry backoff ranges and the seeded random source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"
#include "rand.h"

/* Retry k of the job policy lies in [0.8, 1.2] x base x 5^(k-1). */
static void test_job_policy_ranges(void **state)
{
	struct rng r;
	const int64_t expect[] = { 1000, 5000, 25000, 125000, 625000 };

	rng_seed(&r, 42);
	for (int k = 1; k <= 5; k++) {
		int64_t lo = INT64_MAX, hi = 0;
		for (int i = 0; i < 20000; i++) {
			int64_t d = backoff_ms(&r, 1000, 5, k, 3600000);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_in_range(lo, expect[k - 1] * 8 / 10, expect[k - 1] * 82 / 100);
		assert_in_range(hi, expect[k - 1] * 118 / 100, expect[k - 1] * 12 / 10);
	}
}

static void test_cap(void **state)
{
	struct rng r;

	rng_seed(&r, 7);
	for (int i = 0; i < 1000; i++) {
		int64_t d = backoff_ms(&r, 1000, 5, 30, 3600000);
		assert_in_range(d, 2880000, 3600000);
	}
}

static void test_attempt_below_one_counts_as_first(void **state)
{
	struct rng r;

	rng_seed(&r, 3);
	assert_in_range(backoff_ms(&r, 200, 5, 0, 3600000), 160, 240);
	assert_in_range(backoff_ms(&r, 200, 5, -4, 3600000), 160, 240);
}

static void test_seed_is_reproducible(void **state)
{
	struct rng a, b;

	rng_seed(&a, 99);
	rng_seed(&b, 99);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rng_next(&a), rng_next(&b));
}

static void test_unit_interval(void **state)
{
	struct rng r;
	double sum = 0;

	rng_seed(&r, 1);
	for (int i = 0; i < 100000; i++) {
		double u = rng_unit(&r);
		assert_true(u >= 0.0 && u < 1.0);
		sum += u;
	}
	assert_in_range((int64_t)(sum / 1000), 49, 51); /* mean ~0.5 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_policy_ranges),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_attempt_below_one_counts_as_first),
		cmocka_unit_test(test_seed_is_reproducible),
		cmocka_unit_test(test_unit_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
