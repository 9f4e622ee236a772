/* SPDX-License-Identifier: MIT */
/* 4-ary min-heap of timers ordered by (deadline, id), with lazy cancel. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Four children per node halve the depth of a binary heap, and the four
 * siblings compared on the way down sit in one cache line. An entry is 8
 * bytes: the node index and the deadline's low 32 bits, which with the
 * heap's clock give the deadline for any W with now <= W <= now + UINT32_MAX
 * (the clock only moves once everything due by then has fired, so entries
 * stay in that window). Other deadlines go to the far heap (timer_far.c) and
 * advance() pops whichever top is earlier.
 *
 * Cancel is lazy: a dead entry stays until it reaches the top, where it is
 * popped at once (so timer_next() is exact) in O(log n), or until a sweep.
 * Entries keep no back-pointer, which saves 4 bytes a node.
 */

#define HEAP_ARITY 4
#define HEAP_MIN_CAP 64

struct heap_ent {
	uint32_t when; /* low 32 bits of the deadline */
	uint32_t node;
};

struct heap {
	uint64_t now;
	struct heap_ent *v;
	size_t len, cap;
	struct timer_far far;
};

/* Distance from the clock: orders entries as their deadlines would. */
static uint32_t ent_dist(const struct heap *h, struct heap_ent e)
{
	return e.when - (uint32_t)h->now;
}

static bool ent_before(const struct jw_timer *t, const struct heap *h, struct heap_ent a,
		       struct heap_ent b)
{
	uint32_t da = ent_dist(h, a), db = ent_dist(h, b);

	if (da != db)
		return da < db;
	return timer_node_id(timer_at(t, a.node)) < timer_node_id(timer_at(t, b.node));
}

static void heap_sift_down(const struct jw_timer *t, struct heap *h, size_t i, struct heap_ent e)
{
	for (;;) {
		size_t first = i * HEAP_ARITY + 1, best, end;

		if (first >= h->len)
			break;
		best = first;
		end = h->len - first > HEAP_ARITY ? first + HEAP_ARITY : h->len;
		for (size_t c = first + 1; c < end; c++)
			if (ent_before(t, h, h->v[c], h->v[best]))
				best = c;
		if (!ent_before(t, h, h->v[best], e))
			break;
		h->v[i] = h->v[best];
		i = best;
	}
	h->v[i] = e;
}

static void heap_pop(const struct jw_timer *t, struct heap *h)
{
	if (--h->len > 0)
		heap_sift_down(t, h, 0, h->v[h->len]);
}

/* Pops dead entries off both tops, so each top is live or absent. */
static void heap_clean(struct jw_timer *t, struct heap *h)
{
	while (h->len > 0 && timer_node_dead(timer_at(t, h->v[0].node))) {
		uint32_t i = h->v[0].node;

		heap_pop(t, h);
		timer_recycle(t, i);
	}
	timer_far_clean(&h->far, t);
}

static int heap_insert(struct jw_timer *t, uint32_t i, uint64_t when_ms)
{
	struct heap *h = t->impl;
	struct heap_ent e = { .when = (uint32_t)when_ms, .node = i };
	size_t pos;
	int r;

	if (when_ms < h->now || when_ms - h->now > UINT32_MAX) {
		r = timer_far_reserve(&h->far);
		if (r < 0)
			return r;
		timer_far_push(&h->far, &t->pool, when_ms, i);
		return 0;
	}
	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
		struct heap_ent *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		/* A large block grows by remapping: no copy, no second array. */
		v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	for (pos = h->len++; pos > 0; pos = (pos - 1) / HEAP_ARITY) {
		size_t parent = (pos - 1) / HEAP_ARITY;

		if (!ent_before(t, h, e, h->v[parent]))
			break;
		h->v[pos] = h->v[parent];
	}
	h->v[pos] = e;
	return 0;
}

static size_t heap_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	struct heap *h = t->impl;
	size_t fired = 0;

	for (;;) {
		bool near = h->len > 0;
		uint64_t when = near ? h->now + ent_dist(h, h->v[0]) : UINT64_MAX;
		uint32_t i;

		if (h->far.len > 0 && (!near || timer_before(&t->pool, h->far.v[0].when,
							     h->far.v[0].node, when, h->v[0].node))) {
			near = false;
			when = h->far.v[0].when;
		} else if (!near) {
			break;
		}
		if (when > now_ms)
			break;
		if (near) {
			i = h->v[0].node;
			heap_pop(t, h);
		} else {
			i = h->far.v[0].node;
			timer_far_pop(&h->far, &t->pool);
		}
		timer_expire(t, i, when, fire, arg);
		fired++;
		heap_clean(t, h);
	}
	/* Everything due by now_ms has fired, so every entry stays ahead of the
	 * new clock. A step backwards keeps the clock. */
	if (now_ms > h->now)
		h->now = now_ms;
	return fired;
}

static uint64_t heap_next(const struct jw_timer *t)
{
	const struct heap *h = t->impl;
	uint64_t when = h->len > 0 ? h->now + ent_dist(h, h->v[0]) : UINT64_MAX;

	if (h->far.len > 0 && h->far.v[0].when < when)
		when = h->far.v[0].when;
	return when;
}

static void heap_killed(struct jw_timer *t, uint32_t i)
{
	(void)i;
	heap_clean(t, t->impl);
}

static void heap_sweep(struct jw_timer *t)
{
	struct heap *h = t->impl;
	size_t kept = 0;

	for (size_t k = 0; k < h->len; k++) {
		if (timer_node_dead(timer_at(t, h->v[k].node)))
			timer_recycle(t, h->v[k].node);
		else
			h->v[kept++] = h->v[k];
	}
	h->len = kept;
	/* Floyd's heapify: O(n), no allocation. */
	for (size_t k = kept / HEAP_ARITY + 1; k-- > 0;)
		if (k < kept)
			heap_sift_down(t, h, k, h->v[k]);
	timer_far_sweep(&h->far, t);
}

static int heap_init(struct jw_timer *t, uint64_t now_ms)
{
	struct heap *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->now = now_ms;
	t->impl = h;
	return 0;
}

static void heap_fini(struct jw_timer *t)
{
	struct heap *h = t->impl;

	if (h) {
		free(h->v);
		timer_far_fini(&h->far);
	}
	free(h);
	t->impl = NULL;
}

const struct timer_ops timer_heap_ops = {
	.node_size = sizeof(struct timer_node),
	.init = heap_init,
	.fini = heap_fini,
	.insert = heap_insert,
	.armed_at = NULL, /* an entry's place is unknown without a back-pointer */
	.killed = heap_killed,
	.sweep = heap_sweep,
	.advance = heap_advance,
	.next = heap_next,
};
