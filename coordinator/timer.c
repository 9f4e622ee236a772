/* SPDX-License-Identifier: MIT */
/* Timer dispatcher: the public timer_* API over a wheel or a heap, with the
 * id map and node pool both structures share. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Cancelling is lazy (see timer_impl.h): a dead node waits in its structure
 * until reached. So that cancels and moves of far-off timers cannot pile up
 * garbage without bound, a sweep recycles every dead node once they
 * outnumber the live ones: O(n) work after at least n cancels, O(1)
 * amortised, and never more than twice the live nodes held.
 */
#define SWEEP_MIN_DEAD 1024

void timer_expire(struct jw_timer *t, uint32_t i, uint64_t when_ms, timer_fire_fn fire, void *arg)
{
	int64_t id = timer_node_id(timer_at(t, i));

	timer_map_del(&t->map, &t->pool, i);
	fire(id, when_ms, arg);
	timer_pool_put(&t->pool, i);
}

void timer_recycle(struct jw_timer *t, uint32_t i)
{
	timer_pool_put(&t->pool, i);
	t->dead--;
}

/* Takes live node i out of the map and leaves it dead in its structure. */
static void kill(struct jw_timer *t, uint32_t i)
{
	timer_map_del(&t->map, &t->pool, i);
	timer_at(t, i)->hnext = TIMER_DEAD;
	t->dead++;
	if (t->ops->killed)
		t->ops->killed(t, i);
	if (t->dead >= SWEEP_MIN_DEAD && t->dead > t->map.len)
		t->ops->sweep(t);
}

struct jw_timer *timer_new(enum timer_kind kind, uint64_t now_ms)
{
	struct jw_timer *t;

	if (kind != TIMER_WHEEL && kind != TIMER_HEAP)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ops = kind == TIMER_WHEEL ? &timer_wheel_ops : &timer_heap_ops;
	timer_pool_init(&t->pool, t->ops->node_size);
	if (timer_map_init(&t->map) < 0)
		goto fail;
	if (t->ops->init(t, now_ms) < 0)
		goto fail;
	return t;
fail:
	timer_map_fini(&t->map);
	free(t);
	return NULL;
}

int timer_add(struct jw_timer *t, int64_t id, uint64_t when_ms)
{
	uint32_t old = timer_map_find(&t->map, &t->pool, id), i;
	struct timer_node *n;
	int r;

	/* Re-reading a job re-arms it where it is; with ties in id order that
	 * is no change at all, so make none (and no garbage). */
	if (old != TIMER_NIL && t->ops->armed_at && t->ops->armed_at(t, old, when_ms))
		return 0;
	/* A move arms a new node and kills the old one, in this order so that
	 * a failure changes nothing. */
	i = timer_pool_get(&t->pool);
	if (i == TIMER_NIL)
		return -ENOMEM;
	n = timer_at(t, i);
	n->id_lo = (uint32_t)(uint64_t)id;
	n->id_hi = (uint32_t)((uint64_t)id >> 32);
	n->hnext = TIMER_NIL;
	r = t->ops->insert(t, i, when_ms);
	if (r < 0) {
		timer_pool_put(&t->pool, i);
		return r;
	}
	timer_map_put(&t->map, &t->pool, i);
	if (old != TIMER_NIL)
		kill(t, old);
	return 0;
}

bool timer_cancel(struct jw_timer *t, int64_t id)
{
	uint32_t i = timer_map_find(&t->map, &t->pool, id);

	if (i == TIMER_NIL)
		return false;
	kill(t, i);
	return true;
}

size_t timer_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	return t->ops->advance(t, now_ms, fire, arg);
}

uint64_t timer_next(const struct jw_timer *t)
{
	if (t->map.len == 0)
		return UINT64_MAX;
	return t->ops->next(t);
}

size_t timer_count(const struct jw_timer *t)
{
	return t->map.len;
}

const char *timer_kind_name(enum timer_kind kind)
{
	switch (kind) {
	case TIMER_WHEEL:
		return "wheel";
	case TIMER_HEAP:
		return "heap";
	}
	return "unknown";
}

void timer_free(struct jw_timer *t)
{
	if (!t)
		return;
	t->ops->fini(t);
	timer_map_fini(&t->map);
	timer_pool_fini(&t->pool);
	free(t);
}
