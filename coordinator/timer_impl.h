/* SPDX-License-Identifier: MIT */
/* Timer internals shared by the dispatcher (timer.c), its parts (timer_pool.c,
 * timer_map.c, timer_far.c) and the two structures (timer_wheel.c,
 * timer_heap.c); nothing outside coordinator/timer*.c uses it. */
#ifndef JW_TIMER_IMPL_H
#define JW_TIMER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer.h"

/*
 * Memory is the design constraint: the coordinator must hold 10^6 timers in
 * about 20 bytes each. So nodes live in arrays and refer to each other by
 * uint32 index (half a pointer), no list is doubly linked, and a cancel is
 * lazy: the node leaves the id map at once and is marked dead, and the
 * structure recycles it when it reaches it (or in a sweep, see timer.c).
 * A structure keeps deadlines as 32 bits where it can; the rare deadline
 * outside that window goes to a small side heap with 64-bit keys
 * (timer_far.c).
 */

#define TIMER_NIL UINT32_MAX        /* no node */
#define TIMER_DEAD (UINT32_MAX - 1) /* in hnext: cancelled, awaiting recycling */
#define TIMER_MAX_NODES (UINT32_MAX - 2)

/* The part of a node the dispatcher owns; a structure may append fields
 * (struct timer_ops.node_size). The id is split so that a node packs at
 * 4-byte alignment: an int64 would pad a 20-byte wheel node to 24. */
struct timer_node {
	uint32_t id_lo, id_hi;
	uint32_t hnext; /* map chain; free list; TIMER_DEAD once cancelled */
};

static inline int64_t timer_node_id(const struct timer_node *n)
{
	return (int64_t)((uint64_t)n->id_hi << 32 | n->id_lo);
}

static inline bool timer_node_dead(const struct timer_node *n)
{
	return n->hnext == TIMER_DEAD;
}

/* Fixed-size chunks of nodes, addressed by index (chunk << bits | slot).
 * Nodes are handed out by bumping `used`, so pages past it are never
 * touched and cost no RSS; recycled nodes go on a free list through hnext.
 * Chunks are kept until timer_free(): the set holds its peak node count. */
struct timer_pool {
	char **chunks;
	uint32_t nchunks;
	uint32_t used;
	uint32_t free; /* head of the free list, or TIMER_NIL */
	uint32_t size; /* bytes per node */
};

int timer_pool_init(struct timer_pool *p, size_t node_size);
void timer_pool_fini(struct timer_pool *p);
/* A fresh node's index, or TIMER_NIL when out of memory. */
uint32_t timer_pool_get(struct timer_pool *p);
void timer_pool_put(struct timer_pool *p, uint32_t i);

#define TIMER_CHUNK_BITS 16

static inline struct timer_node *timer_pool_at(const struct timer_pool *p, uint32_t i)
{
	char *c = p->chunks[i >> TIMER_CHUNK_BITS];

	return (struct timer_node *)(void *)(c + (size_t)(i & ((1u << TIMER_CHUNK_BITS) - 1)) * p->size);
}

/* id -> live node: a power-of-two array of chain heads, chained through the
 * nodes' hnext. Buckets are 4 bytes and the load is kept between 1 and 2,
 * about 2-4 bytes per timer, where open addressing with 4-byte slots needs
 * twice that to keep probe runs short. */
struct timer_map {
	uint32_t *heads;
	size_t mask; /* buckets - 1 */
	size_t len;
};

int timer_map_init(struct timer_map *m);
void timer_map_fini(struct timer_map *m);
/* The live node armed for id, or TIMER_NIL. */
uint32_t timer_map_find(const struct timer_map *m, const struct timer_pool *p, int64_t id);
/* Adds node i (whose id is not in the map). Cannot fail: if the table
 * cannot grow it just gets fuller. */
void timer_map_put(struct timer_map *m, const struct timer_pool *p, uint32_t i);
/* Removes node i, which must be in the map. */
void timer_map_del(struct timer_map *m, const struct timer_pool *p, uint32_t i);

/* A 4-ary min-heap of (64-bit deadline, node) ordered by (deadline, id):
 * deadlines a structure cannot keep in 32 bits, and the heap structure's
 * overdue ones. Rare, so 16 bytes an entry is fine. Dead entries are left
 * in place until popped or swept. */
struct timer_far_ent {
	uint64_t when;
	uint32_t node;
};

struct timer_far {
	struct timer_far_ent *v;
	size_t len, cap;
};

/* Room for one more push, so that the push cannot fail. 0 or -ENOMEM. */
int timer_far_reserve(struct timer_far *f);
void timer_far_push(struct timer_far *f, const struct timer_pool *p, uint64_t when, uint32_t node);
void timer_far_pop(struct timer_far *f, const struct timer_pool *p);
/* Pops and recycles dead entries at the top, so the top is live or none. */
void timer_far_clean(struct timer_far *f, struct jw_timer *t);
/* Recycles every dead entry and rebuilds the heap in O(n). */
void timer_far_sweep(struct timer_far *f, struct jw_timer *t);
void timer_far_fini(struct timer_far *f);

/* What a structure provides. The dispatcher owns the id map and the node
 * pool; a structure only orders nodes in time. */
struct timer_ops {
	size_t node_size; /* >= sizeof(struct timer_node) */
	/* Allocates t->impl with its clock at now_ms. 0 or -ENOMEM. */
	int (*init)(struct jw_timer *t, uint64_t now_ms);
	/* Frees t->impl (not the nodes, which the pool owns). */
	void (*fini)(struct jw_timer *t);
	/* Orders node i (id set, not yet in the map) for when_ms. 0, or
	 * -ENOMEM with nothing changed. */
	int (*insert)(struct jw_timer *t, uint32_t i, uint64_t when_ms);
	/* Optional: true if live node i is armed for exactly when_ms, so that
	 * re-arming it there can be a no-op instead of making garbage. */
	bool (*armed_at)(const struct jw_timer *t, uint32_t i, uint64_t when_ms);
	/* Node i was just marked dead. A structure that answers next() from
	 * heap tops pops dead tops here, so next() stays exact. May be NULL. */
	void (*killed)(struct jw_timer *t, uint32_t i);
	/* Recycles every dead node it holds (with timer_recycle()). */
	void (*sweep)(struct jw_timer *t);
	/* Hands every live node due at or before now_ms to timer_expire(), in
	 * (deadline, id) order, and returns how many. */
	size_t (*advance)(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg);
	/* The earliest live deadline or earlier; UINT64_MAX only if empty. */
	uint64_t (*next)(const struct jw_timer *t);
};

struct jw_timer {
	const struct timer_ops *ops;
	void *impl;
	struct timer_map map;
	struct timer_pool pool;
	size_t dead; /* cancelled nodes still held by the structure */
};

extern const struct timer_ops timer_wheel_ops;
extern const struct timer_ops timer_heap_ops;

/* Called by a structure's advance() for each due live node after taking it
 * out: forgets the id, calls fire and recycles the node. */
void timer_expire(struct jw_timer *t, uint32_t i, uint64_t when_ms, timer_fire_fn fire, void *arg);

/* Called by a structure for a dead node it has taken out. */
void timer_recycle(struct jw_timer *t, uint32_t i);

static inline struct timer_node *timer_at(const struct jw_timer *t, uint32_t i)
{
	return timer_pool_at(&t->pool, i);
}

/* Deadline ties fire in id order: deterministic, and it needs no insertion
 * sequence number (8 bytes a timer) and lets the wheel's lists be
 * unordered. */
static inline bool timer_before(const struct timer_pool *p, uint64_t when_a, uint32_t a,
				uint64_t when_b, uint32_t b)
{
	if (when_a != when_b)
		return when_a < when_b;
	return timer_node_id(timer_pool_at(p, a)) < timer_node_id(timer_pool_at(p, b));
}

#endif
