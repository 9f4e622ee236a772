/* SPDX-License-Identifier: MIT */
/* Timer id map: id -> live node, buckets chained through the nodes. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

#define MAP_MIN_BUCKETS 16
#define MAP_MAX_LOAD 2 /* timers per bucket before doubling */

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

int timer_map_init(struct timer_map *m)
{
	m->heads = malloc(MAP_MIN_BUCKETS * sizeof(*m->heads));
	if (!m->heads)
		return -ENOMEM;
	for (size_t b = 0; b < MAP_MIN_BUCKETS; b++)
		m->heads[b] = TIMER_NIL;
	m->mask = MAP_MIN_BUCKETS - 1;
	m->len = 0;
	return 0;
}

void timer_map_fini(struct timer_map *m)
{
	free(m->heads);
	m->heads = NULL;
}

uint32_t timer_map_find(const struct timer_map *m, const struct timer_pool *p, int64_t id)
{
	uint32_t i = m->heads[map_hash(id) & m->mask];

	while (i != TIMER_NIL) {
		const struct timer_node *n = timer_pool_at(p, i);

		if (timer_node_id(n) == id)
			return i;
		i = n->hnext;
	}
	return TIMER_NIL;
}

/* Doubles the buckets in place: realloc keeps the lower half (a large block
 * is remapped, not copied), and each chain splits between bucket b and
 * b + old size by one more hash bit, so no second table is ever built. */
static void map_grow(struct timer_map *m, const struct timer_pool *p)
{
	size_t old = m->mask + 1;
	uint32_t *heads;

	if (old > SIZE_MAX / 2 / sizeof(*heads))
		return;
	heads = realloc(m->heads, 2 * old * sizeof(*heads));
	if (!heads)
		return; /* fuller chains, still correct */
	m->heads = heads;
	m->mask = 2 * old - 1;
	for (size_t b = 0; b < old; b++) {
		uint32_t i = heads[b], lo = TIMER_NIL, hi = TIMER_NIL;

		while (i != TIMER_NIL) {
			struct timer_node *n = timer_pool_at(p, i);
			uint32_t next = n->hnext;

			if (map_hash(timer_node_id(n)) & old) {
				n->hnext = hi;
				hi = i;
			} else {
				n->hnext = lo;
				lo = i;
			}
			i = next;
		}
		heads[b] = lo;
		heads[b + old] = hi;
	}
}

void timer_map_put(struct timer_map *m, const struct timer_pool *p, uint32_t i)
{
	struct timer_node *n = timer_pool_at(p, i);
	size_t b;

	if (m->len >= (m->mask + 1) * MAP_MAX_LOAD)
		map_grow(m, p);
	b = map_hash(timer_node_id(n)) & m->mask;
	n->hnext = m->heads[b];
	m->heads[b] = i;
	m->len++;
}

void timer_map_del(struct timer_map *m, const struct timer_pool *p, uint32_t i)
{
	uint32_t *link = &m->heads[map_hash(timer_node_id(timer_pool_at(p, i))) & m->mask];

	while (*link != i)
		link = &timer_pool_at(p, *link)->hnext;
	*link = timer_pool_at(p, i)->hnext;
	m->len--;
}
