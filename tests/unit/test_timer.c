/* SPDX-License-Identifier: MIT */
/* Unit tests: both timer structures (wheel and heap) behave identically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "timer.h"

/* Every test runs once per structure; the kind arrives as the prestate. */
static enum timer_kind kinds[] = { TIMER_WHEEL, TIMER_HEAP };

#define WALL_MS UINT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define HOUR_MS UINT64_C(3600000)

static enum timer_kind kind_of(void **state)
{
	return *(enum timer_kind *)*state;
}

/* splitmix64: fixed seeds keep every run identical. */
static uint64_t prng(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

struct fired {
	int64_t id;
	uint64_t when;
};

struct rec {
	struct fired *v;
	size_t n, cap;
};

static void rec_fire(int64_t id, uint64_t when_ms, void *arg)
{
	struct rec *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	r->v[r->n].id = id;
	r->v[r->n].when = when_ms;
	r->n++;
}

/* Advances and checks that exactly the listed ids fired, in that order. */
static void expect_fire(struct jw_timer *t, uint64_t now, const int64_t *ids, size_t n)
{
	struct rec r = { 0 };

	assert_int_equal(timer_advance(t, now, rec_fire, &r), n);
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r.v[i].id, ids[i]);
	free(r.v);
}

static struct jw_timer *new_timer(void **state, uint64_t now)
{
	struct jw_timer *t = timer_new(kind_of(state), now);

	assert_non_null(t);
	return t;
}

static void test_deadline_order_and_ties(void **state)
{
	struct jw_timer *t = new_timer(state, 1000);
	uint64_t seed = 1, when[300];
	int64_t expect[300];
	size_t n = 0;

	/* 300 timers on 50 distinct deadlines spread over levels 0..2. */
	for (int64_t i = 0; i < 300; i++) {
		when[i] = 1001 + prng(&seed) % 50 * 97;
		assert_int_equal(timer_add(t, i, when[i]), 0);
	}
	/* Expected: by deadline, then by insertion order (a stable pass). */
	for (uint64_t w = 1001; w <= 1001 + 49 * 97; w += 97)
		for (int64_t i = 0; i < 300; i++)
			if (when[i] == w)
				expect[n++] = i;
	assert_int_equal(n, 300);
	expect_fire(t, 1001 + 49 * 97, expect, n);
	timer_free(t);

	/* Ties across levels: 1 and 2 wait on a high level while 3 joins the
	 * same deadline late; re-arming 1 makes it the newest of the three. */
	t = new_timer(state, 0);
	assert_int_equal(timer_add(t, 1, 5000), 0);
	assert_int_equal(timer_add(t, 2, 5000), 0);
	expect_fire(t, 4990, NULL, 0);
	assert_int_equal(timer_add(t, 3, 5000), 0);
	assert_int_equal(timer_add(t, 1, 5000), 0);
	expect_fire(t, 5000, (const int64_t[]){ 2, 3, 1 }, 3);
	timer_free(t);
}

/* Deadlines on each side of level boundaries: nothing at when-1, exactly
 * the one timer at when, whether alone or sharing the set with the others. */
static void test_never_early_at_boundaries(void **state)
{
	static const uint64_t starts[] = { 0, (UINT64_C(1) << 32) - 70, WALL_MS, UINT64_C(1) << 50 };
	static const uint64_t offsets[] = {
		1, 63, 64, 65, 69, 70, 71, 4095, 4096, 4097, 262143, 262144, 262145,
		16777215, 16777216, 16777217, (UINT64_C(1) << 32) - 1, UINT64_C(1) << 32,
		(UINT64_C(1) << 32) + 1, UINT64_C(1) << 40,
	};
	const size_t nofs = sizeof(offsets) / sizeof(offsets[0]);

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct jw_timer *all = new_timer(state, starts[s]);

		for (size_t i = 0; i < nofs; i++) {
			struct jw_timer *t = new_timer(state, starts[s]);
			uint64_t w = starts[s] + offsets[i];

			assert_int_equal(timer_add(t, 7, w), 0);
			assert_true(timer_next(t) <= w);
			expect_fire(t, w - 1, NULL, 0);
			assert_true(timer_next(t) <= w);
			expect_fire(t, w, (const int64_t[]){ 7 }, 1);
			assert_int_equal(timer_next(t), UINT64_MAX);
			timer_free(t);
			assert_int_equal(timer_add(all, (int64_t)i, w), 0);
		}
		for (size_t i = 0; i < nofs; i++) {
			uint64_t w = starts[s] + offsets[i];

			expect_fire(all, w - 1, NULL, 0);
			expect_fire(all, w, (const int64_t[]){ (int64_t)i }, 1);
		}
		assert_int_equal(timer_count(all), 0);
		timer_free(all);
	}
}

static void test_extreme_deadlines(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	assert_int_equal(timer_add(t, 1, UINT64_MAX), 0);
	assert_int_equal(timer_add(t, 2, UINT64_MAX - 1), 0);
	assert_int_equal(timer_add(t, 3, UINT64_C(1) << 63), 0);
	assert_int_equal(timer_add(t, 4, (UINT64_C(1) << 60) + 5), 0);
	assert_int_equal(timer_add(t, INT64_MIN, UINT64_MAX), 0);
	expect_fire(t, UINT64_MAX - 1, (const int64_t[]){ 4, 3, 2 }, 3);
	expect_fire(t, UINT64_MAX, (const int64_t[]){ 1, INT64_MIN }, 2);
	timer_free(t);

	t = new_timer(state, UINT64_MAX);
	assert_int_equal(timer_add(t, INT64_MAX, UINT64_MAX), 0);
	expect_fire(t, UINT64_MAX, (const int64_t[]){ INT64_MAX }, 1);
	timer_free(t);
}

static void test_cancel(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	assert_int_equal(timer_add(t, 1, 100), 0);
	assert_int_equal(timer_add(t, 2, 200), 0);
	assert_int_equal(timer_add(t, 3, 300), 0);
	assert_true(timer_cancel(t, 2));
	assert_false(timer_cancel(t, 2));
	assert_false(timer_cancel(t, 42));
	assert_int_equal(timer_count(t), 2);
	expect_fire(t, 1000, (const int64_t[]){ 1, 3 }, 2);
	assert_false(timer_cancel(t, 1)); /* already fired */

	/* Cancel then re-arm: fires once, at the new deadline. */
	assert_int_equal(timer_add(t, 2, 1500), 0);
	assert_true(timer_cancel(t, 2));
	assert_int_equal(timer_add(t, 2, 1600), 0);
	expect_fire(t, 1599, NULL, 0);
	expect_fire(t, 1600, (const int64_t[]){ 2 }, 1);

	/* Cancelling an overdue timer before the advance that would fire it. */
	assert_int_equal(timer_add(t, 4, 10), 0);
	assert_int_equal(timer_add(t, 5, 20), 0);
	assert_true(timer_cancel(t, 4));
	expect_fire(t, 2000, (const int64_t[]){ 5 }, 1);
	assert_int_equal(timer_count(t), 0);

	/* timer_next() follows cancels; within the current 64 ms lap the
	 * wheel is exact too (the clock is 2000 = 31 * 64 + 16), so both kinds
	 * must answer 2020 then 2030. */
	assert_int_equal(timer_add(t, 6, 2010), 0);
	assert_int_equal(timer_add(t, 7, 2020), 0);
	assert_int_equal(timer_add(t, 8, 2030), 0);
	assert_true(timer_cancel(t, 6));
	assert_int_equal(timer_next(t), 2020);
	assert_true(timer_cancel(t, 7));
	assert_int_equal(timer_next(t), 2030);
	timer_free(t);
}

static void test_readd_moves(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	assert_int_equal(timer_add(t, 7, 500), 0);
	assert_int_equal(timer_add(t, 7, 100), 0);
	assert_int_equal(timer_count(t), 1);
	assert_true(timer_next(t) <= 100);
	expect_fire(t, 100, (const int64_t[]){ 7 }, 1);
	expect_fire(t, 1000, NULL, 0);

	assert_int_equal(timer_add(t, 8, 1100), 0);
	assert_int_equal(timer_add(t, 8, 1900), 0);
	expect_fire(t, 1899, NULL, 0);
	expect_fire(t, 1900, (const int64_t[]){ 8 }, 1);

	/* Moving into the past makes it due at the next advance. */
	assert_int_equal(timer_add(t, 9, 5000), 0);
	assert_int_equal(timer_add(t, 9, 50), 0);
	expect_fire(t, 1900, (const int64_t[]){ 9 }, 1);
	timer_free(t);
}

static void test_past_deadlines(void **state)
{
	struct jw_timer *t = new_timer(state, 10000);

	assert_int_equal(timer_add(t, 1, 9000), 0);
	assert_int_equal(timer_add(t, 2, 0), 0);
	assert_int_equal(timer_add(t, 3, 10000), 0);
	assert_int_equal(timer_add(t, 4, 9000), 0);
	assert_int_equal(timer_next(t), 0);
	/* An advance that does not move the clock still fires them. */
	expect_fire(t, 10000, (const int64_t[]){ 2, 1, 4, 3 }, 4);

	/* Overdue ones come before due ones in the same advance. */
	assert_int_equal(timer_add(t, 5, 10005), 0);
	assert_int_equal(timer_add(t, 6, 5), 0);
	expect_fire(t, 10010, (const int64_t[]){ 6, 5 }, 2);
	timer_free(t);
}

/* A 10-hour jump in one call: everything due fires, in order. */
static void test_clock_jump_forward(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	const uint64_t end = WALL_MS + 10 * HOUR_MS;
	struct rec r = { 0 };
	uint64_t seed = 2;
	const int64_t n = 20000;

	for (int64_t i = 0; i < n; i++)
		assert_int_equal(timer_add(t, i, WALL_MS + 1 + prng(&seed) % (10 * HOUR_MS)), 0);
	assert_int_equal(timer_add(t, n, end), 0);
	assert_int_equal(timer_add(t, n + 1, end + 1), 0);
	assert_int_equal(timer_advance(t, end, rec_fire, &r), n + 1);
	for (size_t i = 1; i < r.n; i++)
		assert_true(r.v[i - 1].when <= r.v[i].when);
	assert_int_equal(r.v[r.n - 1].id, n);
	assert_int_equal(timer_count(t), 1);
	free(r.v);
	timer_free(t);
}

/* A step backwards fires nothing and keeps the clock; deadlines are still
 * compared with the now_ms passed, so nothing fires early either. */
static void test_clock_step_backwards(void **state)
{
	struct jw_timer *t = new_timer(state, 10000);

	assert_int_equal(timer_add(t, 1, 20000), 0);
	expect_fire(t, 15000, NULL, 0);
	expect_fire(t, 5000, NULL, 0);
	assert_true(timer_next(t) <= 20000);
	assert_int_equal(timer_add(t, 2, 12000), 0);
	assert_int_equal(timer_add(t, 3, 13000), 0);
	expect_fire(t, 11999, NULL, 0);
	expect_fire(t, 12000, (const int64_t[]){ 2 }, 1);
	assert_true(timer_next(t) > 12000 && timer_next(t) <= 13000);
	expect_fire(t, 13000, (const int64_t[]){ 3 }, 1);
	expect_fire(t, 19999, NULL, 0);
	expect_fire(t, 20000, (const int64_t[]){ 1 }, 1);
	timer_free(t);
}

/* timer_next() is never later than the earliest deadline (the heap is
 * exact), and UINT64_MAX when empty, across random adds/cancels/advances. */
static void test_next_never_later(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	uint64_t seed = 3, now = WALL_MS, when[64];
	bool armed[64] = { false };

	assert_int_equal(timer_next(t), UINT64_MAX);
	for (int op = 0; op < 20000; op++) {
		uint64_t r = prng(&seed), min = UINT64_MAX;
		int64_t id = (int64_t)(r % 64);
		struct rec fired = { 0 };

		if (r % 7 == 0) {
			assert_int_equal(timer_cancel(t, id), armed[id]);
			armed[id] = false;
		} else if (r % 7 < 4) {
			when[id] = now - 50 + (r >> 8) % (UINT64_C(1) << ((r >> 40) % 36));
			assert_int_equal(timer_add(t, id, when[id]), 0);
			armed[id] = true;
		} else {
			now += (r >> 8) % (UINT64_C(1) << ((r >> 40) % 24));
			timer_advance(t, now, rec_fire, &fired);
			for (size_t i = 0; i < fired.n; i++) {
				assert_true(armed[fired.v[i].id]);
				assert_true(fired.v[i].when <= now);
				armed[fired.v[i].id] = false;
			}
			free(fired.v);
			/* All that was due fired: a caller sleeping until
			 * timer_next() cannot spin. */
			assert_true(timer_next(t) > now);
		}
		for (int i = 0; i < 64; i++)
			if (armed[i] && when[i] < min)
				min = when[i];
		assert_true(timer_next(t) <= min);
		if (kind_of(state) == TIMER_HEAP || min == UINT64_MAX)
			assert_int_equal(timer_next(t), min);
	}
	timer_free(t);
}

struct driver {
	uint64_t now;
	size_t fired;
};

static void driver_fire(int64_t id, uint64_t when_ms, void *arg)
{
	struct driver *d = arg;

	(void)id;
	assert_int_equal(when_ms, d->now); /* neither early nor late */
	d->fired++;
}

/* A caller that sleeps until timer_next() and advances there fires every
 * timer exactly at its deadline, even years away. */
static void test_driver_loop_is_exact(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	struct driver d = { .now = WALL_MS };
	uint64_t seed = 4;
	size_t loops = 0;
	const size_t n = 3000;

	for (size_t i = 0; i < n; i++) {
		uint64_t r = prng(&seed);

		assert_int_equal(timer_add(t, (int64_t)i, WALL_MS + 1 + r % (UINT64_C(1) << (r >> 58))), 0);
	}
	while (timer_count(t) > 0) {
		uint64_t next = timer_next(t);

		assert_true(next > d.now);
		d.now = next;
		timer_advance(t, next, driver_fire, &d);
		assert_true(++loops <= 12 * n);
	}
	assert_int_equal(d.fired, n);
	timer_free(t);
}

enum { ARMED, CANCELLED, FIRED };

struct bulk {
	unsigned char *st;
	uint64_t *when;
	int64_t base;
	uint64_t prev_now, now, last;
};

static void bulk_fire(int64_t id, uint64_t when_ms, void *arg)
{
	struct bulk *b = arg;
	size_t i = (size_t)(id - b->base);

	assert_int_equal(b->st[i], ARMED);
	assert_int_equal(when_ms, b->when[i]);
	assert_true(when_ms <= b->now);                            /* not early */
	assert_true(when_ms > b->prev_now || when_ms <= WALL_MS);  /* not late */
	assert_true(when_ms >= b->last);                           /* in order */
	b->st[i] = FIRED;
	b->last = when_ms;
}

/* N random timers (10^5, or 10^6 with JW_SLOW_TESTS set: the large size
 * is too slow under valgrind) with some overdue and some years away; a
 * random third is cancelled and some are moved while the clock runs in
 * random steps. Every other timer fires exactly once, in deadline order,
 * at the first advance that reaches it. */
static void test_random_bulk(void **state)
{
	const size_t n = getenv("JW_SLOW_TESTS") ? 1000000 : 100000;
	struct jw_timer *t = new_timer(state, WALL_MS);
	struct bulk b = { .base = -(int64_t)n / 2, .now = WALL_MS, .prev_now = WALL_MS };
	unsigned char *doomed = calloc(n, 1);
	uint64_t seed = 5;
	size_t armed = n, cancelled = 0, ndoomed = 0;

	b.st = calloc(n, 1);
	b.when = calloc(n, sizeof(*b.when));
	assert_non_null(doomed);
	assert_non_null(b.st);
	assert_non_null(b.when);
	for (size_t i = 0; i < n; i++) {
		uint64_t r = prng(&seed);

		b.when[i] = WALL_MS + r % HOUR_MS;
		if (r % 100 == 0)
			b.when[i] = WALL_MS - (r >> 8) % HOUR_MS;
		else if (r % 100 == 1)
			b.when[i] = WALL_MS + (r >> 20);
		doomed[i] = (r >> 7) % 3 == 0;
		ndoomed += doomed[i];
		assert_int_equal(timer_add(t, b.base + (int64_t)i, b.when[i]), 0);
	}
	assert_int_equal(timer_count(t), n);
	while (b.now < WALL_MS + HOUR_MS) {
		/* Cancel doomed or move others among a few random timers. */
		for (size_t k = 0; k < n / 400 + 1; k++) {
			size_t i = prng(&seed) % n;

			if (b.st[i] != ARMED)
				continue;
			if (doomed[i]) {
				assert_true(timer_cancel(t, b.base + (int64_t)i));
				b.st[i] = CANCELLED;
				armed--;
				cancelled++;
			} else if (prng(&seed) % 16 == 0) {
				b.when[i] = b.now + 1 + prng(&seed) % HOUR_MS;
				assert_int_equal(timer_add(t, b.base + (int64_t)i, b.when[i]), 0);
			}
		}
		b.prev_now = b.now;
		b.now += prng(&seed) % 4000;
		armed -= timer_advance(t, b.now, bulk_fire, &b);
		assert_int_equal(timer_count(t), armed);
	}
	/* The rest of the doomed third; those already fired are gone. */
	for (size_t i = 0; i < n; i++) {
		if (!doomed[i] || b.st[i] == CANCELLED)
			continue;
		assert_int_equal(timer_cancel(t, b.base + (int64_t)i), b.st[i] == ARMED);
		if (b.st[i] == ARMED) {
			armed--;
			cancelled++;
			b.st[i] = CANCELLED;
		}
	}
	assert_int_equal(timer_count(t), armed);
	b.prev_now = b.now;
	b.now = UINT64_MAX;
	armed -= timer_advance(t, b.now, bulk_fire, &b);
	assert_int_equal(armed, 0);
	assert_int_equal(timer_count(t), 0);
	assert_true(cancelled > ndoomed / 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(b.st[i], doomed[i] && b.st[i] == CANCELLED ? CANCELLED : FIRED);
	free(doomed);
	free(b.st);
	free(b.when);
	timer_free(t);
}

static void test_count_and_names(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	assert_int_equal(timer_count(t), 0);
	assert_int_equal(timer_add(t, 1, 10), 0);
	assert_int_equal(timer_add(t, 2, 20), 0);
	assert_int_equal(timer_add(t, 1, 30), 0);
	assert_int_equal(timer_count(t), 2);
	assert_true(timer_cancel(t, 2));
	assert_int_equal(timer_count(t), 1);
	expect_fire(t, 30, (const int64_t[]){ 1 }, 1);
	assert_int_equal(timer_count(t), 0);
	assert_int_equal(timer_next(t), UINT64_MAX);
	timer_free(t);
	timer_free(NULL);

	assert_string_equal(timer_kind_name(kind_of(state)),
			    kind_of(state) == TIMER_WHEEL ? "wheel" : "heap");
}

#define BOTH(f) \
	{ #f "/wheel", f, NULL, NULL, &kinds[0] }, { #f "/heap", f, NULL, NULL, &kinds[1] }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_deadline_order_and_ties),
		BOTH(test_never_early_at_boundaries),
		BOTH(test_extreme_deadlines),
		BOTH(test_cancel),
		BOTH(test_readd_moves),
		BOTH(test_past_deadlines),
		BOTH(test_clock_jump_forward),
		BOTH(test_clock_step_backwards),
		BOTH(test_next_never_later),
		BOTH(test_driver_loop_is_exact),
		BOTH(test_random_bulk),
		BOTH(test_count_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
