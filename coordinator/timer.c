/* SPDX-License-Identifier: MIT */
/* Timer dispatcher: the public timer_* API over a wheel or a heap, plus the
 * id map and node pool both structures share. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

#define MAP_MIN_CAP 16
#define POOL_FIRST_CHUNK 64
#define POOL_MAX_CHUNK 65536

struct timer_pool_chunk {
	struct timer_pool_chunk *next;
	struct timer_node nodes[];
};

/* Job ids are sequential, so mix them before masking: the splitmix64
 * finaliser spreads consecutive keys over the whole table. */
static size_t map_hash(int64_t id)
{
	uint64_t x = (uint64_t)id;

	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return (size_t)x;
}

static struct timer_map_ent *map_find(const struct timer_map *m, int64_t id)
{
	size_t mask, i;

	if (m->cap == 0)
		return NULL;
	mask = m->cap - 1;
	for (i = map_hash(id) & mask; m->ents[i].node; i = (i + 1) & mask)
		if (m->ents[i].id == id)
			return &m->ents[i];
	return NULL;
}

/* Stores into a table known to hold room and not to hold id. */
static void map_put(struct timer_map *m, int64_t id, struct timer_node *n)
{
	size_t mask = m->cap - 1, i;

	for (i = map_hash(id) & mask; m->ents[i].node; i = (i + 1) & mask)
		;
	m->ents[i].id = id;
	m->ents[i].node = n;
	m->len++;
}

/* Keeps the load at or below 3/4 after one more insert: linear probing
 * stays at a few probes per lookup there. */
static int map_reserve_one(struct timer_map *m)
{
	struct timer_map old = *m;
	size_t cap;

	if ((m->len + 1) <= m->cap / 4 * 3)
		return 0;
	cap = m->cap ? m->cap * 2 : MAP_MIN_CAP;
	if (cap < m->cap || cap > SIZE_MAX / sizeof(*m->ents))
		return -ENOMEM;
	m->ents = calloc(cap, sizeof(*m->ents));
	if (!m->ents) {
		*m = old;
		return -ENOMEM;
	}
	m->cap = cap;
	m->len = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.ents[i].node)
			map_put(m, old.ents[i].id, old.ents[i].node);
	free(old.ents);
	return 0;
}

/* Backward-shift deletion: pulls later members of the probe run into the
 * hole unless that would move them before their home slot. */
static void map_delete(struct timer_map *m, struct timer_map_ent *e)
{
	size_t mask = m->cap - 1;
	size_t hole = (size_t)(e - m->ents), j = hole;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!m->ents[j].node)
			break;
		home = map_hash(m->ents[j].id) & mask;
		/* Leave it if its home lies cyclically in (hole, j]. */
		if (hole <= j ? (hole < home && home <= j) : (hole < home || home <= j))
			continue;
		m->ents[hole] = m->ents[j];
		hole = j;
	}
	m->ents[hole].node = NULL;
	m->len--;
}

/* Threads a new chunk onto the free list, lowest address first out. */
static int pool_grow(struct timer_pool *p)
{
	size_t n = p->next_chunk ? p->next_chunk : POOL_FIRST_CHUNK;
	struct timer_pool_chunk *c = malloc(sizeof(*c) + n * sizeof(c->nodes[0]));

	if (!c)
		return -ENOMEM;
	c->next = p->chunks;
	p->chunks = c;
	for (size_t i = n; i-- > 0;) {
		c->nodes[i].link.next = p->free;
		p->free = &c->nodes[i].link;
	}
	p->next_chunk = n < POOL_MAX_CHUNK ? n * 2 : n;
	return 0;
}

static struct timer_node *pool_get(struct timer_pool *p)
{
	struct timer_link *l;

	if (!p->free && pool_grow(p) < 0)
		return NULL;
	l = p->free;
	p->free = l->next;
	return timer_node_of(l);
}

static void pool_put(struct timer_pool *p, struct timer_node *n)
{
	n->link.next = p->free;
	p->free = &n->link;
}

static void pool_release(struct timer_pool *p)
{
	while (p->chunks) {
		struct timer_pool_chunk *c = p->chunks;

		p->chunks = c->next;
		free(c);
	}
	p->free = NULL;
}

void timer_expire(struct jw_timer *t, struct timer_node *n, timer_fire_fn fire, void *arg)
{
	map_delete(&t->map, map_find(&t->map, n->id));
	fire(n->id, n->when_ms, arg);
	pool_put(&t->pool, n);
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
	if (t->ops->init(t, now_ms) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

int timer_add(struct jw_timer *t, int64_t id, uint64_t when_ms)
{
	struct timer_map_ent *e = map_find(&t->map, id);
	struct timer_node *n;
	int r;

	if (e) {
		/* A move is a new arming: it takes a new sequence number, so it
		 * fires after timers already armed for the same deadline. Removing
		 * first leaves room for the insert, which then cannot fail. */
		n = e->node;
		t->ops->remove(t, n);
		n->when_ms = when_ms;
		n->seq = t->seq++;
		t->ops->insert(t, n);
		return 0;
	}
	/* Everything that can fail happens before anything visible changes:
	 * a grown map or a spare pool node is not a change the caller sees. */
	r = map_reserve_one(&t->map);
	if (r < 0)
		return r;
	if (t->ops->reserve) {
		r = t->ops->reserve(t, t->map.len + 1);
		if (r < 0)
			return r;
	}
	n = pool_get(&t->pool);
	if (!n)
		return -ENOMEM;
	n->id = id;
	n->when_ms = when_ms;
	n->seq = t->seq++;
	map_put(&t->map, id, n);
	t->ops->insert(t, n);
	return 0;
}

bool timer_cancel(struct jw_timer *t, int64_t id)
{
	struct timer_map_ent *e = map_find(&t->map, id);
	struct timer_node *n;

	if (!e)
		return false;
	n = e->node;
	t->ops->remove(t, n);
	map_delete(&t->map, e);
	pool_put(&t->pool, n);
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
	free(t->map.ents);
	pool_release(&t->pool);
	free(t);
}
