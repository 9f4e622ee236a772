/* SPDX-License-Identifier: MIT */
/* Side heap of timers with 64-bit deadlines, for what does not fit 32 bits. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * A structure keeps a deadline in 32 bits as an offset from its clock, so it
 * sends here the deadlines 2^32 ms (49 days) or more ahead and, for the
 * heap, those already past. Nothing moves between the two: a structure
 * compares its own earliest with this heap's top and fires the smaller, so
 * order holds without re-arming anything when the clock comes close.
 */

#define FAR_ARITY 4
#define FAR_MIN_CAP 16

static bool far_before(const struct timer_pool *p, const struct timer_far_ent *a,
		       const struct timer_far_ent *b)
{
	return timer_before(p, a->when, a->node, b->when, b->node);
}

static void far_sift_down(struct timer_far *f, const struct timer_pool *p, size_t i,
			  struct timer_far_ent e)
{
	for (;;) {
		size_t first = i * FAR_ARITY + 1, best, end;

		if (first >= f->len)
			break;
		best = first;
		end = f->len - first > FAR_ARITY ? first + FAR_ARITY : f->len;
		for (size_t c = first + 1; c < end; c++)
			if (far_before(p, &f->v[c], &f->v[best]))
				best = c;
		if (!far_before(p, &f->v[best], &e))
			break;
		f->v[i] = f->v[best];
		i = best;
	}
	f->v[i] = e;
}

int timer_far_reserve(struct timer_far *f)
{
	struct timer_far_ent *v;
	size_t cap;

	if (f->len < f->cap)
		return 0;
	cap = f->cap ? f->cap * 2 : FAR_MIN_CAP;
	if (cap > SIZE_MAX / sizeof(*v))
		return -ENOMEM;
	v = realloc(f->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	f->v = v;
	f->cap = cap;
	return 0;
}

void timer_far_push(struct timer_far *f, const struct timer_pool *p, uint64_t when, uint32_t node)
{
	struct timer_far_ent e = { .when = when, .node = node };
	size_t i = f->len++;

	while (i > 0) {
		size_t parent = (i - 1) / FAR_ARITY;

		if (!far_before(p, &e, &f->v[parent]))
			break;
		f->v[i] = f->v[parent];
		i = parent;
	}
	f->v[i] = e;
}

void timer_far_pop(struct timer_far *f, const struct timer_pool *p)
{
	if (--f->len > 0)
		far_sift_down(f, p, 0, f->v[f->len]);
}

void timer_far_clean(struct timer_far *f, struct jw_timer *t)
{
	while (f->len > 0 && timer_node_dead(timer_at(t, f->v[0].node))) {
		uint32_t i = f->v[0].node;

		timer_far_pop(f, &t->pool);
		timer_recycle(t, i);
	}
}

void timer_far_sweep(struct timer_far *f, struct jw_timer *t)
{
	size_t kept = 0;

	for (size_t i = 0; i < f->len; i++) {
		if (timer_node_dead(timer_at(t, f->v[i].node)))
			timer_recycle(t, f->v[i].node);
		else
			f->v[kept++] = f->v[i];
	}
	f->len = kept;
	/* Floyd's heapify: O(n), no allocation. */
	for (size_t i = kept / FAR_ARITY + 1; i-- > 0;)
		if (i < kept)
			far_sift_down(f, &t->pool, i, f->v[i]);
}

void timer_far_fini(struct timer_far *f)
{
	free(f->v);
	f->v = NULL;
	f->len = f->cap = 0;
}
