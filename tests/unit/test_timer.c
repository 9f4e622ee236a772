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
#define BIT(n) (UINT64_C(1) << (n))

#define ADD(t, id, when) assert_int_equal(timer_add((t), (id), (when)), 0)
/* Advances to now; exactly the listed ids must fire, in that order. */
#define FIRES(t, now, ...)                                                     \
	expect_fire((t), (now), (const int64_t[]){ __VA_ARGS__ },              \
		    sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t))
#define NONE(t, now) expect_fire((t), (now), NULL, 0)

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

struct rec {
	struct {
		int64_t id;
		uint64_t when;
	} *v;
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
	r->v[r->n++].when = when_ms;
}

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
	assert_int_equal(timer_count(t), 0);
	assert_int_equal(timer_next(t), UINT64_MAX);
	return t;
}

/* 20000 timers on 5000 deadlines over 10 hours, fired by one jump (which
 * must not walk every millisecond): in deadline order, ties in id order. */
static void test_order_and_ties_across_jump(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	const uint64_t end = WALL_MS + 10 * HOUR_MS;
	struct rec r = { 0 };
	uint64_t seed = 1;
	const int64_t n = 20000;

	/* Ids armed in a scrambled order, so id order is not arming order. */
	for (int64_t i = 0; i < n; i++)
		ADD(t, (i * 7919) % n, WALL_MS + 1 + prng(&seed) % 5000 * 7199);
	ADD(t, n, end);
	ADD(t, n + 1, end + 1);
	assert_int_equal(timer_advance(t, end, rec_fire, &r), n + 1);
	for (size_t i = 1; i < r.n; i++)
		assert_true(r.v[i - 1].when < r.v[i].when ||
			    (r.v[i - 1].when == r.v[i].when && r.v[i - 1].id < r.v[i].id));
	assert_int_equal(r.v[r.n - 1].id, n);
	assert_int_equal(timer_count(t), 1);
	free(r.v);
	timer_free(t);

	/* Ties across levels and arming times: 30 and 10 wait on a high level
	 * while 20 joins the same deadline late and 10 is re-armed there; a
	 * tie is still fired in id order, whoever came first. */
	t = new_timer(state, 0);
	ADD(t, 30, 5000);
	ADD(t, 10, 5000);
	NONE(t, 4990);
	ADD(t, 20, 5000);
	ADD(t, 10, 5000);
	ADD(t, -5, 5000);
	FIRES(t, 5000, -5, 10, 20, 30);
	timer_free(t);
}

/* Deadlines on each side of level boundaries, up to UINT64_MAX: nothing at
 * when-1, exactly the one timer at when, alone or among the others. */
static void test_never_early_at_boundaries(void **state)
{
	static const uint64_t starts[] = { 0, BIT(32) - 70, WALL_MS, UINT64_MAX - BIT(40) };
	static const uint64_t offsets[] = {
		1, 63, 64, 65, 69, 70, 71, 4095, 4096, 4097, 262143, 262144, 262145,
		16777215, 16777216, 16777217, BIT(32) - 1, BIT(32), BIT(32) + 1, BIT(40),
	};
	const size_t nofs = sizeof(offsets) / sizeof(offsets[0]);

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct jw_timer *all = new_timer(state, starts[s]);

		for (size_t i = 0; i < nofs; i++) {
			struct jw_timer *t = new_timer(state, starts[s]);
			uint64_t w = starts[s] + offsets[i];

			ADD(t, 7, w);
			assert_true(timer_next(t) <= w);
			NONE(t, w - 1);
			assert_true(timer_next(t) <= w);
			FIRES(t, w, 7);
			assert_int_equal(timer_next(t), UINT64_MAX);
			timer_free(t);
			ADD(all, INT64_MAX - (int64_t)i, w);
		}
		for (size_t i = 0; i < nofs; i++) {
			NONE(all, starts[s] + offsets[i] - 1);
			FIRES(all, starts[s] + offsets[i], INT64_MAX - (int64_t)i);
		}
		timer_free(all);
	}
}

/* Equal deadlines at the very top fire in id order; a set whose clock
 * starts at UINT64_MAX still fires. */
static void test_extreme_deadlines(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	ADD(t, 1, UINT64_MAX);
	ADD(t, 3, BIT(63));
	ADD(t, INT64_MIN, UINT64_MAX);
	FIRES(t, UINT64_MAX, 3, INT64_MIN, 1);
	timer_free(t);
	t = new_timer(state, UINT64_MAX);
	ADD(t, 2, UINT64_MAX);
	FIRES(t, UINT64_MAX, 2);
	timer_free(t);
}

static void test_cancel_and_count(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	ADD(t, 1, 100);
	ADD(t, 2, 200);
	ADD(t, 3, 300);
	ADD(t, 1, 100); /* re-arming does not count twice */
	assert_int_equal(timer_count(t), 3);
	assert_true(timer_cancel(t, 2));
	assert_false(timer_cancel(t, 2));
	assert_false(timer_cancel(t, 42));
	assert_int_equal(timer_count(t), 2);
	FIRES(t, 1000, 1, 3);
	assert_int_equal(timer_count(t), 0);
	assert_false(timer_cancel(t, 1)); /* already fired */

	/* Cancel then re-arm: fires once, at the new deadline. */
	ADD(t, 2, 1500);
	assert_true(timer_cancel(t, 2));
	ADD(t, 2, 1600);
	NONE(t, 1599);
	FIRES(t, 1600, 2);

	/* Cancelling an overdue timer before the advance that would fire it. */
	ADD(t, 4, 10);
	ADD(t, 5, 20);
	assert_true(timer_cancel(t, 4));
	FIRES(t, 2000, 5);

	/* timer_next() follows cancels: exactly for the heap; the wheel may
	 * still answer a cancelled timer's slot (a lazy cancel leaves it
	 * there), which is early, never late. */
	ADD(t, 6, 2010);
	ADD(t, 7, 2020);
	ADD(t, 8, 2030);
	assert_true(timer_cancel(t, 6));
	if (kind_of(state) == TIMER_HEAP)
		assert_int_equal(timer_next(t), 2020);
	assert_true(timer_next(t) > 2000 && timer_next(t) <= 2020);
	NONE(t, 2019);
	assert_int_equal(timer_next(t), 2020);
	assert_true(timer_cancel(t, 7));
	if (kind_of(state) == TIMER_HEAP)
		assert_int_equal(timer_next(t), 2030);
	assert_true(timer_cancel(t, 8));
	assert_int_equal(timer_next(t), UINT64_MAX);
	timer_free(t);
	timer_free(NULL);
	assert_string_equal(timer_kind_name(kind_of(state)),
			    kind_of(state) == TIMER_WHEEL ? "wheel" : "heap");
}

static void test_readd_moves(void **state)
{
	struct jw_timer *t = new_timer(state, 0);

	ADD(t, 7, 500);
	ADD(t, 7, 100);
	assert_int_equal(timer_count(t), 1);
	assert_true(timer_next(t) <= 100);
	FIRES(t, 100, 7);
	NONE(t, 1000);
	ADD(t, 8, 1100);
	ADD(t, 8, 1900);
	NONE(t, 1899);
	FIRES(t, 1900, 8);
	/* Moving into the past makes it due at the next advance. */
	ADD(t, 9, 5000);
	ADD(t, 9, 50);
	FIRES(t, 1900, 9);
	timer_free(t);
}

static void test_past_deadlines(void **state)
{
	struct jw_timer *t = new_timer(state, 10000);

	ADD(t, 1, 9000);
	ADD(t, 2, 0);
	ADD(t, 3, 10000);
	ADD(t, 4, 9000);
	assert_int_equal(timer_next(t), 0);
	/* An advance that does not move the clock still fires them. */
	FIRES(t, 10000, 2, 1, 4, 3);
	/* Overdue ones come before due ones in the same advance. */
	ADD(t, 5, 10005);
	ADD(t, 6, 5);
	FIRES(t, 10010, 6, 5);
	timer_free(t);
}

/* A step backwards fires nothing and keeps the clock; deadlines are still
 * compared with the now_ms passed, so nothing fires early either. */
static void test_clock_step_backwards(void **state)
{
	struct jw_timer *t = new_timer(state, 10000);

	ADD(t, 1, 20000);
	NONE(t, 15000);
	NONE(t, 5000);
	assert_true(timer_next(t) <= 20000);
	ADD(t, 2, 12000);
	ADD(t, 3, 13000);
	NONE(t, 11999);
	FIRES(t, 12000, 2);
	assert_true(timer_next(t) > 12000 && timer_next(t) <= 13000);
	FIRES(t, 13000, 3);
	NONE(t, 19999);
	FIRES(t, 20000, 1);
	timer_free(t);
}

/* timer_next() is never later than the earliest deadline (the heap is
 * exact), and after an advance it is later than the clock (a caller that
 * sleeps until then cannot spin), across random adds/cancels/advances. */
static void test_next_never_later(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	uint64_t seed = 3, now = WALL_MS, when[64];
	bool armed[64] = { false };

	for (int op = 0; op < 20000; op++) {
		uint64_t r = prng(&seed), min = UINT64_MAX;
		int64_t id = (int64_t)(r % 64);
		struct rec fired = { 0 };

		if (r % 7 == 0) {
			assert_int_equal(timer_cancel(t, id), armed[id]);
			armed[id] = false;
		} else if (r % 7 < 4) {
			when[id] = now - 50 + (r >> 8) % BIT((r >> 40) % 36);
			ADD(t, id, when[id]);
			armed[id] = true;
		} else {
			now += (r >> 8) % BIT((r >> 40) % 24);
			timer_advance(t, now, rec_fire, &fired);
			for (size_t i = 0; i < fired.n; i++) {
				assert_true(armed[fired.v[i].id] && fired.v[i].when <= now);
				armed[fired.v[i].id] = false;
			}
			free(fired.v);
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

/* A caller that sleeps until timer_next() and advances there fires every
 * timer exactly at its deadline (never early, never late), even years away,
 * with few spurious wake-ups. */
static void test_driver_loop_is_exact(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	uint64_t seed = 4, now = WALL_MS;
	size_t loops = 0, fired = 0;
	const size_t n = 3000;

	for (size_t i = 0; i < n; i++) {
		uint64_t r = prng(&seed);

		ADD(t, (int64_t)i, WALL_MS + 1 + r % BIT(r >> 58));
	}
	while (timer_count(t) > 0) {
		struct rec r = { 0 };

		assert_true(timer_next(t) > now);
		now = timer_next(t);
		timer_advance(t, now, rec_fire, &r);
		for (size_t i = 0; i < r.n; i++)
			assert_int_equal(r.v[i].when, now);
		fired += r.n;
		free(r.v);
		assert_true(++loops <= 12 * n);
	}
	assert_int_equal(fired, n);
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
	assert_true(when_ms <= b->now);                           /* not early */
	assert_true(when_ms > b->prev_now || when_ms <= WALL_MS); /* not late */
	assert_true(when_ms >= b->last);                          /* in order */
	b->st[i] = FIRED;
	b->last = when_ms;
}

/* N random timers over an hour (N = 10^5; 10^6 with JW_SLOW_TESTS set,
 * too slow for the valgrind runs), 1% overdue and 1% years away; a random
 * third is cancelled while the clock runs in random steps, some after they
 * fired. Every other timer fires exactly once, in deadline order, at the
 * first advance that reaches it. */
static void test_random_bulk(void **state)
{
	const size_t n = getenv("JW_SLOW_TESTS") ? 1000000 : 100000, steps = 2000;
	struct jw_timer *t = new_timer(state, WALL_MS);
	struct bulk b = { .base = -(int64_t)n / 2, .now = WALL_MS, .prev_now = WALL_MS };
	uint64_t seed = 5;
	size_t armed = n;

	b.st = calloc(n, 1);
	b.when = calloc(n, sizeof(*b.when));
	assert_true(b.st && b.when);
	for (size_t i = 0; i < n; i++) {
		uint64_t r = prng(&seed);

		b.when[i] = r % 100 == 0 ? WALL_MS - (r >> 8) % HOUR_MS
			  : r % 100 == 1 ? WALL_MS + (r >> 20)
					 : WALL_MS + r % HOUR_MS;
		ADD(t, b.base + (int64_t)i, b.when[i]);
	}
	for (size_t step = 0; step < steps; step++) {
		/* Deadlines are random, so cancelling in index order is too. */
		for (size_t i = step * n / steps; i < (step + 1) * n / steps; i++) {
			if (i % 3)
				continue;
			assert_int_equal(timer_cancel(t, b.base + (int64_t)i), b.st[i] == ARMED);
			armed -= b.st[i] == ARMED;
			b.st[i] = b.st[i] == ARMED ? CANCELLED : b.st[i];
		}
		b.prev_now = b.now;
		b.now += prng(&seed) % 3600;
		armed -= timer_advance(t, b.now, bulk_fire, &b);
		assert_int_equal(timer_count(t), armed);
	}
	b.prev_now = b.now;
	b.now = UINT64_MAX;
	assert_int_equal(timer_advance(t, b.now, bulk_fire, &b), armed);
	assert_int_equal(timer_count(t), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(b.st[i] == FIRED || (i % 3 == 0 && b.st[i] == CANCELLED));
	free(b.st);
	free(b.when);
	timer_free(t);
}

/* Lazy cancel: a cancelled or moved timer stays in its structure, dead,
 * until reached. Re-arming the same id there (same slot, same deadline,
 * another deadline, back again) must fire it exactly once, at the last
 * deadline armed, and never fire the dead copies. */
static void test_lazy_cancel_rearm(void **state)
{
	struct jw_timer *t = new_timer(state, 1000);

	ADD(t, 5, 3000);
	assert_true(timer_cancel(t, 5));
	ADD(t, 5, 3000); /* same id, same slot as its dead copy */
	ADD(t, 5, 3000); /* re-arming where it is */
	assert_int_equal(timer_count(t), 1);
	ADD(t, 6, 3000);
	ADD(t, 6, 3500);
	ADD(t, 6, 3000); /* moved away and back: two dead copies */
	ADD(t, 7, 2500);
	ADD(t, 7, 4000);
	assert_int_equal(timer_count(t), 3);
	NONE(t, 2999);
	FIRES(t, 3000, 5, 6);
	NONE(t, 3999);
	FIRES(t, 4000, 7);
	assert_int_equal(timer_count(t), 0);
	assert_int_equal(timer_next(t), UINT64_MAX);

	/* The same with overdue and far deadlines (the side heap). */
	ADD(t, 8, 10);
	assert_true(timer_cancel(t, 8));
	ADD(t, 8, 20);
	ADD(t, 9, 4000 + BIT(40));
	assert_true(timer_cancel(t, 9));
	ADD(t, 9, 4000 + BIT(40));
	ADD(t, 10, 4000 + BIT(40));
	ADD(t, 10, 4100);
	assert_int_equal(timer_next(t), 20);
	FIRES(t, 4000, 8);
	FIRES(t, 4100, 10);
	assert_int_equal(timer_next(t), 4000 + BIT(40));
	NONE(t, 3999 + BIT(40));
	FIRES(t, 4000 + BIT(40), 9);
	assert_int_equal(timer_count(t), 0);
	timer_free(t);
}

/* Many moves of a few timers make dead nodes faster than deadlines reap
 * them; sweeps recycle them, and the live timers are unaffected. */
static void test_churn_sweeps(void **state)
{
	struct jw_timer *t = new_timer(state, WALL_MS);
	struct rec r = { 0 };
	uint64_t seed = 6;

	for (int64_t id = 0; id < 100; id++)
		ADD(t, id, WALL_MS + HOUR_MS + (uint64_t)id);
	for (int round = 0; round < 50000; round++) {
		int64_t id = (int64_t)(prng(&seed) % 50);

		ADD(t, id, WALL_MS + HOUR_MS + (uint64_t)round % 7 * BIT(36));
		if (round % 3 == 0)
			assert_true(timer_cancel(t, id));
		ADD(t, id, WALL_MS + HOUR_MS + (uint64_t)id);
	}
	assert_int_equal(timer_count(t), 100);
	NONE(t, WALL_MS + HOUR_MS - 1);
	assert_int_equal(timer_advance(t, UINT64_MAX, rec_fire, &r), 100);
	for (size_t i = 0; i < r.n; i++) {
		assert_int_equal(r.v[i].id, (int64_t)i);
		assert_int_equal(r.v[i].when, WALL_MS + HOUR_MS + i);
	}
	free(r.v);
	timer_free(t);
}

/* Deadlines on both sides of the 32-bit window a structure keeps inline
 * (2^32 ms ahead of its clock), fired in order with near ones; a tie
 * between one armed while far and one armed once near fires in id order. */
static void test_far_deadlines(void **state)
{
	static const uint64_t ofs[] = { BIT(32) - 2, BIT(32) - 1, BIT(32), BIT(32) + 1,
					BIT(33),     BIT(45),     BIT(62) };
	const size_t nofs = sizeof(ofs) / sizeof(ofs[0]);
	struct jw_timer *t = new_timer(state, WALL_MS);
	const uint64_t tie = WALL_MS + BIT(32) + 100;

	for (size_t i = 0; i < nofs; i++)
		ADD(t, (int64_t)(100 + i), WALL_MS + ofs[i]);
	ADD(t, 9, tie); /* far now */
	ADD(t, 1, WALL_MS + 5);
	FIRES(t, WALL_MS + 200, 1);
	ADD(t, 4, tie);  /* within the window now */
	ADD(t, 12, tie);
	for (size_t i = 0, tied = 0; i < nofs; i++) {
		uint64_t w = WALL_MS + ofs[i];

		if (w > tie && !tied++) {
			NONE(t, tie - 1);
			FIRES(t, tie, 4, 9, 12);
		}
		assert_true(timer_next(t) <= w);
		NONE(t, w - 1);
		FIRES(t, w, (int64_t)(100 + i));
	}
	assert_int_equal(timer_count(t), 0);
	timer_free(t);
}

/* The memory bar's size: 10^6 timers with sequential ids over ten minutes
 * an hour ahead, as the coordinator holds them; all fire once, in order. */
static void test_million(void **state)
{
	const size_t n = 1000000;
	struct jw_timer *t = new_timer(state, WALL_MS);
	struct bulk b = { .base = 1, .now = WALL_MS, .prev_now = WALL_MS };
	size_t fired = 0;

	b.st = calloc(n, 1);
	b.when = calloc(n, sizeof(*b.when));
	assert_true(b.st && b.when);
	for (size_t i = 0; i < n; i++) {
		b.when[i] = WALL_MS + HOUR_MS + i * 600000 / n;
		ADD(t, b.base + (int64_t)i, b.when[i]);
	}
	assert_int_equal(timer_count(t), n);
	assert_true(timer_next(t) <= WALL_MS + HOUR_MS);
	for (uint64_t now = WALL_MS + HOUR_MS - 1000; fired < n; now += 997) {
		b.prev_now = b.now;
		b.now = now;
		fired += timer_advance(t, now, bulk_fire, &b);
	}
	assert_int_equal(timer_count(t), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(b.st[i], FIRED);
	free(b.st);
	free(b.when);
	timer_free(t);
}

#define BOTH(f) \
	{ #f "/wheel", f, NULL, NULL, &kinds[0] }, { #f "/heap", f, NULL, NULL, &kinds[1] }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_order_and_ties_across_jump),
		BOTH(test_never_early_at_boundaries),
		BOTH(test_extreme_deadlines),
		BOTH(test_cancel_and_count),
		BOTH(test_readd_moves),
		BOTH(test_past_deadlines),
		BOTH(test_clock_step_backwards),
		BOTH(test_next_never_later),
		BOTH(test_driver_loop_is_exact),
		BOTH(test_random_bulk),
		BOTH(test_lazy_cancel_rearm),
		BOTH(test_churn_sweeps),
		BOTH(test_far_deadlines),
		BOTH(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
