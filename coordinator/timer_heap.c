/* SPDX-License-Identifier: MIT */
/* 4-ary min-heap of timers ordered by (deadline, insertion sequence). */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Four children per node halve the depth of a binary heap, and the four
 * siblings compared on the way down sit in one or two cache lines. Entries
 * carry a copy of the key so comparisons never touch the nodes; each node
 * keeps its index (pos) so a cancel removes it in O(log n).
 */

#define HEAP_ARITY 4
#define HEAP_MIN_CAP 64

struct heap_ent {
	uint64_t when_ms;
	uint64_t seq;
	struct timer_node *node;
};

struct heap {
	struct heap_ent *v;
	size_t len;
	size_t cap;
};

static bool ent_before(const struct heap_ent *a, const struct heap_ent *b)
{
	return timer_before(a->when_ms, a->seq, b->when_ms, b->seq);
}

static void heap_set(struct heap *h, size_t i, struct heap_ent e)
{
	h->v[i] = e;
	e.node->pos = i;
}

/* Moves the hole at i up until e fits, then stores e there. */
static void heap_sift_up(struct heap *h, size_t i, struct heap_ent e)
{
	while (i > 0) {
		size_t parent = (i - 1) / HEAP_ARITY;

		if (!ent_before(&e, &h->v[parent]))
			break;
		heap_set(h, i, h->v[parent]);
		i = parent;
	}
	heap_set(h, i, e);
}

/* Moves the hole at i down until e fits, then stores e there. */
static void heap_sift_down(struct heap *h, size_t i, struct heap_ent e)
{
	for (;;) {
		size_t first = i * HEAP_ARITY + 1, best, end;

		if (first >= h->len)
			break;
		best = first;
		end = h->len - first > HEAP_ARITY ? first + HEAP_ARITY : h->len;
		for (size_t c = first + 1; c < end; c++)
			if (ent_before(&h->v[c], &h->v[best]))
				best = c;
		if (!ent_before(&h->v[best], &e))
			break;
		heap_set(h, i, h->v[best]);
		i = best;
	}
	heap_set(h, i, e);
}

/* Fills the hole at i with the last entry. */
static void heap_delete_at(struct heap *h, size_t i)
{
	struct heap_ent last = h->v[--h->len];

	if (i == h->len)
		return;
	if (i > 0 && ent_before(&last, &h->v[(i - 1) / HEAP_ARITY]))
		heap_sift_up(h, i, last);
	else
		heap_sift_down(h, i, last);
}

static int heap_reserve(struct jw_timer *t, size_t armed)
{
	struct heap *h = t->impl;
	struct heap_ent *v;
	size_t cap = h->cap ? h->cap : HEAP_MIN_CAP;

	if (armed <= h->cap)
		return 0;
	while (cap < armed) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	if (cap > SIZE_MAX / sizeof(*v))
		return -ENOMEM;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

/* The dispatcher reserved room first, so this cannot fail. */
static void heap_insert(struct jw_timer *t, struct timer_node *n)
{
	struct heap *h = t->impl;
	struct heap_ent e = { .when_ms = n->when_ms, .seq = n->seq, .node = n };

	heap_sift_up(h, h->len++, e);
}

static void heap_remove(struct jw_timer *t, struct timer_node *n)
{
	heap_delete_at(t->impl, n->pos);
}

static size_t heap_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	struct heap *h = t->impl;
	size_t fired = 0;

	/* No clock of its own: "due" is when_ms <= now_ms, which also makes a
	 * step backwards fire nothing that was not already due at now_ms. */
	while (h->len > 0 && h->v[0].when_ms <= now_ms) {
		struct timer_node *n = h->v[0].node;

		heap_delete_at(h, 0);
		timer_expire(t, n, fire, arg);
		fired++;
	}
	return fired;
}

static uint64_t heap_next(const struct jw_timer *t)
{
	const struct heap *h = t->impl;

	return h->len ? h->v[0].when_ms : UINT64_MAX;
}

static int heap_init(struct jw_timer *t, uint64_t now_ms)
{
	struct heap *h = calloc(1, sizeof(*h));

	(void)now_ms;
	if (!h)
		return -ENOMEM;
	t->impl = h;
	return 0;
}

static void heap_fini(struct jw_timer *t)
{
	struct heap *h = t->impl;

	if (h)
		free(h->v);
	free(h);
	t->impl = NULL;
}

const struct timer_ops timer_heap_ops = {
	.init = heap_init,
	.fini = heap_fini,
	.reserve = heap_reserve,
	.insert = heap_insert,
	.remove = heap_remove,
	.advance = heap_advance,
	.next = heap_next,
};
