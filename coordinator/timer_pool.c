/* SPDX-License-Identifier: MIT */
/* Timer node pool: fixed-size chunks of nodes addressed by uint32 index. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Chunks never move, so growing copies nothing and never holds two copies
 * of the nodes; only the small array of chunk pointers is reallocated. A
 * chunk (1.25 MiB of wheel nodes) is malloc'd, not calloc'd: the allocator
 * maps it untouched and a page costs RSS only once a node on it is used.
 */

#define CHUNK_NODES (1u << TIMER_CHUNK_BITS)

int timer_pool_init(struct timer_pool *p, size_t node_size)
{
	*p = (struct timer_pool){ .free = TIMER_NIL, .size = (uint32_t)node_size };
	return 0;
}

void timer_pool_fini(struct timer_pool *p)
{
	for (uint32_t c = 0; c < p->nchunks; c++)
		free(p->chunks[c]);
	free(p->chunks);
	p->chunks = NULL;
	p->nchunks = 0;
}

uint32_t timer_pool_get(struct timer_pool *p)
{
	uint32_t i = p->free;

	if (i != TIMER_NIL) {
		p->free = timer_pool_at(p, i)->hnext;
		return i;
	}
	if (p->used >= TIMER_MAX_NODES)
		return TIMER_NIL;
	if (p->used == (size_t)p->nchunks * CHUNK_NODES) {
		char **chunks = realloc(p->chunks, (p->nchunks + 1) * sizeof(*chunks));
		char *c;

		if (!chunks)
			return TIMER_NIL;
		p->chunks = chunks;
		c = malloc((size_t)CHUNK_NODES * p->size);
		if (!c)
			return TIMER_NIL;
		p->chunks[p->nchunks++] = c;
	}
	return p->used++;
}

void timer_pool_put(struct timer_pool *p, uint32_t i)
{
	timer_pool_at(p, i)->hnext = p->free;
	p->free = i;
}
