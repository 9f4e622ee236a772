/* SPDX-License-Identifier: MIT */
/* Timer internals shared by the dispatcher (timer.c) and the two structures
 * (timer_wheel.c, timer_heap.c); nothing outside coordinator/timer*.c uses it. */
#ifndef JW_TIMER_IMPL_H
#define JW_TIMER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer.h"

/* Intrusive circular doubly-linked list link; a list head is a sentinel. */
struct timer_link {
	struct timer_link *next;
	struct timer_link *prev;
};

/* One armed timer. Nodes come from the set's pool and are owned by the set
 * from timer_add() until they fire or are cancelled. */
struct timer_node {
	struct timer_link link; /* wheel: slot or expired list; pool: free list */
	uint64_t when_ms;
	uint64_t seq; /* insertion order, breaks deadline ties */
	int64_t id;
	size_t pos; /* wheel: level * 64 + slot (or expired); heap: array index */
};

/* What a structure provides. The dispatcher owns the id map, the node pool
 * and the insertion sequence; a structure only orders nodes in time. */
struct timer_ops {
	/* Allocates t->impl with its clock at now_ms. 0 or -ENOMEM. */
	int (*init)(struct jw_timer *t, uint64_t now_ms);
	/* Frees t->impl (not the nodes, which the pool owns). */
	void (*fini)(struct jw_timer *t);
	/* Makes room so that the next insert of one more node cannot fail.
	 * 0 or -ENOMEM (nothing changed). May be NULL if insert never fails. */
	int (*reserve)(struct jw_timer *t, size_t armed);
	void (*insert)(struct jw_timer *t, struct timer_node *n);
	void (*remove)(struct jw_timer *t, struct timer_node *n);
	/* Hands every node due at or before now_ms to timer_expire(), in
	 * (when_ms, seq) order, and returns how many. */
	size_t (*advance)(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg);
	uint64_t (*next)(const struct jw_timer *t);
};

/* id -> node, open addressing with linear probing and backward-shift
 * deletion (no tombstones, so lookups stay short after many cancels). */
struct timer_map_ent {
	int64_t id;
	struct timer_node *node; /* NULL = empty */
};

struct timer_map {
	struct timer_map_ent *ents;
	size_t cap; /* power of two, or 0 */
	size_t len;
};

/* Nodes are carved from chunks and recycled through a free list: arming and
 * firing millions of timers then costs no malloc/free each. The chunks are
 * kept until timer_free(), so the set holds its peak node memory. */
struct timer_pool_chunk;

struct timer_pool {
	struct timer_pool_chunk *chunks;
	struct timer_link *free;
	size_t next_chunk; /* nodes in the next chunk; grows geometrically */
};

struct jw_timer {
	const struct timer_ops *ops;
	void *impl;
	struct timer_map map;
	struct timer_pool pool;
	uint64_t seq;
};

extern const struct timer_ops timer_wheel_ops;
extern const struct timer_ops timer_heap_ops;

/* Called by a structure's advance() for each due node after unlinking it:
 * forgets the id, calls fire and recycles the node. */
void timer_expire(struct jw_timer *t, struct timer_node *n, timer_fire_fn fire, void *arg);

static inline struct timer_node *timer_node_of(struct timer_link *l)
{
	return (struct timer_node *)(void *)((char *)l - offsetof(struct timer_node, link));
}

static inline bool timer_before(uint64_t when_a, uint64_t seq_a, uint64_t when_b, uint64_t seq_b)
{
	return when_a < when_b || (when_a == when_b && seq_a < seq_b);
}

#endif
