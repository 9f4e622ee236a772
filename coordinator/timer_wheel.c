/* SPDX-License-Identifier: MIT */
/* Hierarchical timing wheel: 11 levels of 64 slots, 1 ms per level-0 slot. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Level k has 64 slots of 64^k ms each; 11 levels cover 66 bits, since even
 * a deadline 1 ms ahead may differ from now in a high digit (a carry). The
 * wheel holds deadlines W with now < W <= now + UINT32_MAX, so a node keeps
 * W as its low 32 bits (W is now plus their distance from now's low 32
 * bits). Deadlines further off, or at or before the clock, go to a
 * side heap with 64-bit keys (timer_far.c); advance() fires from whichever
 * of the two is earlier, so a node never has to move between them.
 *
 * Placement. A node goes to the level of the highest base-64 digit in which
 * W and now differ, in the slot named by W's digit there. So W agrees with
 * now on every digit above its level and its digit at its level is greater
 * than now's: every armed slot lies ahead of the clock, the lowest set bit
 * of a level's bitmap is its next slot, and all slots of a lower level come
 * before any slot of a higher one. The earliest slot of the lowest non-empty
 * level therefore starts no later than any deadline: that is timer_next(),
 * found with two ctz. (It may be a dead node's slot: a little early, which
 * the API allows.)
 *
 * Advancing. While that earliest slot starts at or before the target, move
 * the clock to its start and empty it: nodes whose deadline is that instant
 * fire, the others go to a lower level relative to the new clock (a cascade;
 * at most 11 per node). Empty slots cost nothing, so a jump of hours costs
 * only the slots that hold timers. Slots the clock has not reached stay
 * correctly placed, since the clock still agrees with them above their level.
 *
 * Order. Placement depends only on (W, clock), so all live nodes with one
 * deadline share one slot and fire in one step; that step sorts them by id.
 * So slot lists need no order: singly linked, pushed at the head. Cancelled
 * nodes stay in their slot, dead, until the slot is emptied or swept.
 */

#define WHEEL_BITS 6
#define WHEEL_SLOTS 64
#define WHEEL_LEVELS 11
#define WHEEL_FAR (UINT32_MAX - 1) /* in next: the node is in the far heap */

struct wheel_node {
	struct timer_node n;
	uint32_t when; /* low 32 bits of the deadline */
	uint32_t next; /* slot list, due list, or WHEEL_FAR */
};

struct wheel {
	uint64_t now;
	unsigned levels; /* bit k set iff bitmap[k] != 0 */
	uint64_t bitmap[WHEEL_LEVELS];
	uint32_t slots[WHEEL_LEVELS][WHEEL_SLOTS]; /* list heads */
	struct timer_far far;
};

static struct wheel_node *wnode(const struct jw_timer *t, uint32_t i)
{
	return (struct wheel_node *)(void *)timer_at(t, i);
}

static bool wheel_near(const struct wheel *w, uint64_t when_ms)
{
	return when_ms > w->now && when_ms - w->now <= UINT32_MAX;
}

/* The deadline of a node on the wheel: it lies within 2^32 after now. */
static uint64_t wheel_when(const struct wheel *w, const struct wheel_node *n)
{
	return w->now + (uint32_t)(n->when - (uint32_t)w->now);
}

/* Start of `slot` at `level` in the lap of the wheel that holds `now`. */
static uint64_t wheel_slot_start(uint64_t now, unsigned level, unsigned slot)
{
	unsigned shift = level * WHEEL_BITS;
	uint64_t above = 0;

	if (shift + WHEEL_BITS < 64)
		above = now >> (shift + WHEEL_BITS) << (shift + WHEEL_BITS);
	return above | (uint64_t)slot << shift;
}

static void wheel_place(struct jw_timer *t, struct wheel *w, uint32_t i, uint64_t when_ms)
{
	struct wheel_node *n = wnode(t, i);
	unsigned level = (unsigned)(63 - __builtin_clzll(when_ms ^ w->now)) / WHEEL_BITS;
	unsigned slot = (unsigned)(when_ms >> (level * WHEEL_BITS)) & (WHEEL_SLOTS - 1);

	n->when = (uint32_t)when_ms;
	n->next = w->slots[level][slot];
	w->slots[level][slot] = i;
	w->bitmap[level] |= UINT64_C(1) << slot;
	w->levels |= 1u << level;
}

static void wheel_clear_bit(struct wheel *w, unsigned level, unsigned slot)
{
	w->bitmap[level] &= ~(UINT64_C(1) << slot);
	if (!w->bitmap[level])
		w->levels &= ~(1u << level);
}

static bool id_before(const struct jw_timer *t, uint32_t a, uint32_t b)
{
	return timer_node_id(timer_at(t, a)) < timer_node_id(timer_at(t, b));
}

/* Bottom-up merge sort by id of a TIMER_NIL-terminated chain through next
 * (Simon Tatham's list mergesort): O(n log n), no allocation, so advancing
 * cannot fail even when thousands of timers share one deadline. */
static uint32_t chain_sort(const struct jw_timer *t, uint32_t list)
{
	for (size_t run = 1;; run *= 2) {
		uint32_t p = list, tail = TIMER_NIL;
		size_t merges = 0;

		list = TIMER_NIL;
		while (p != TIMER_NIL) {
			uint32_t q = p;
			size_t psize = 0, qsize = run;

			merges++;
			while (psize < run && q != TIMER_NIL) {
				psize++;
				q = wnode(t, q)->next;
			}
			while (psize > 0 || (qsize > 0 && q != TIMER_NIL)) {
				uint32_t e;

				if (psize > 0 && (qsize == 0 || q == TIMER_NIL || !id_before(t, q, p))) {
					e = p;
					p = wnode(t, p)->next;
					psize--;
				} else {
					e = q;
					q = wnode(t, q)->next;
					qsize--;
				}
				if (tail != TIMER_NIL)
					wnode(t, tail)->next = e;
				else
					list = e;
				tail = e;
			}
			p = q;
		}
		if (tail != TIMER_NIL)
			wnode(t, tail)->next = TIMER_NIL;
		if (merges <= 1)
			return list;
	}
}

/* Empties the slot starting at the clock: recycles the dead, pushes the
 * nodes due now onto *due, cascades the rest. */
static void wheel_empty_slot(struct jw_timer *t, struct wheel *w, unsigned level, unsigned slot,
			     uint32_t *due)
{
	uint32_t i = w->slots[level][slot];

	w->slots[level][slot] = TIMER_NIL;
	wheel_clear_bit(w, level, slot);
	while (i != TIMER_NIL) {
		struct wheel_node *n = wnode(t, i);
		uint32_t next = n->next;
		uint64_t when;

		if (timer_node_dead(&n->n)) {
			timer_recycle(t, i);
		} else if ((when = wheel_when(w, n)) == w->now) {
			n->next = *due;
			*due = i;
		} else {
			wheel_place(t, w, i, when); /* lands on a lower level */
		}
		i = next;
	}
}

static size_t wheel_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	struct wheel *w = t->impl;
	size_t fired = 0;

	for (;;) {
		unsigned level = 0, slot = 0;
		uint64_t at = UINT64_MAX, start = UINT64_MAX;
		uint32_t due = TIMER_NIL;
		bool any = false;

		if (w->levels) {
			level = (unsigned)__builtin_ctz(w->levels);
			slot = (unsigned)__builtin_ctzll(w->bitmap[level]);
			at = start = wheel_slot_start(w->now, level, slot);
			any = true;
		}
		if (w->far.len > 0 && w->far.v[0].when <= at) {
			at = w->far.v[0].when;
			any = true;
		}
		if (!any || at > now_ms)
			break;
		if (w->levels && start == at) {
			w->now = start;
			wheel_empty_slot(t, w, level, slot, &due);
		}
		/* Far timers due at the same instant join the same sort. */
		while (w->far.len > 0 && w->far.v[0].when == at) {
			uint32_t i = w->far.v[0].node;

			timer_far_pop(&w->far, &t->pool);
			wnode(t, i)->next = due;
			due = i;
			timer_far_clean(&w->far, t);
		}
		for (due = chain_sort(t, due); due != TIMER_NIL;) {
			uint32_t next = wnode(t, due)->next;

			timer_expire(t, due, at, fire, arg);
			fired++;
			due = next;
		}
	}
	/* A step backwards keeps the clock: placement must never move back. */
	if (now_ms > w->now)
		w->now = now_ms;
	return fired;
}

static uint64_t wheel_next(const struct jw_timer *t)
{
	const struct wheel *w = t->impl;
	uint64_t at = UINT64_MAX;

	if (w->levels) {
		unsigned level = (unsigned)__builtin_ctz(w->levels);
		unsigned slot = (unsigned)__builtin_ctzll(w->bitmap[level]);

		at = wheel_slot_start(w->now, level, slot);
	}
	if (w->far.len > 0 && w->far.v[0].when < at)
		at = w->far.v[0].when;
	return at;
}

static int wheel_insert(struct jw_timer *t, uint32_t i, uint64_t when_ms)
{
	struct wheel *w = t->impl;
	int r;

	if (wheel_near(w, when_ms)) {
		wheel_place(t, w, i, when_ms);
		return 0;
	}
	r = timer_far_reserve(&w->far);
	if (r < 0)
		return r;
	wnode(t, i)->next = WHEEL_FAR;
	timer_far_push(&w->far, &t->pool, when_ms, i);
	return 0;
}

static bool wheel_armed_at(const struct jw_timer *t, uint32_t i, uint64_t when_ms)
{
	const struct wheel *w = t->impl;
	const struct wheel_node *n = wnode(t, i);

	return n->next != WHEEL_FAR && wheel_near(w, when_ms) && wheel_when(w, n) == when_ms;
}

static void wheel_killed(struct jw_timer *t, uint32_t i)
{
	struct wheel *w = t->impl;

	(void)i;
	timer_far_clean(&w->far, t);
}

static void wheel_sweep(struct jw_timer *t)
{
	struct wheel *w = t->impl;

	for (unsigned k = 0; k < WHEEL_LEVELS; k++) {
		for (unsigned s = 0; s < WHEEL_SLOTS; s++) {
			uint32_t *link = &w->slots[k][s];

			while (*link != TIMER_NIL) {
				uint32_t i = *link;
				struct wheel_node *n = wnode(t, i);

				if (timer_node_dead(&n->n)) {
					*link = n->next;
					timer_recycle(t, i);
				} else {
					link = &n->next;
				}
			}
			if (w->slots[k][s] == TIMER_NIL && (w->bitmap[k] >> s & 1))
				wheel_clear_bit(w, k, s);
		}
	}
	timer_far_sweep(&w->far, t);
}

static int wheel_init(struct jw_timer *t, uint64_t now_ms)
{
	struct wheel *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->now = now_ms;
	for (unsigned k = 0; k < WHEEL_LEVELS; k++)
		for (unsigned s = 0; s < WHEEL_SLOTS; s++)
			w->slots[k][s] = TIMER_NIL;
	t->impl = w;
	return 0;
}

static void wheel_fini(struct jw_timer *t)
{
	struct wheel *w = t->impl;

	if (w)
		timer_far_fini(&w->far);
	free(w);
	t->impl = NULL;
}

const struct timer_ops timer_wheel_ops = {
	.node_size = sizeof(struct wheel_node),
	.init = wheel_init,
	.fini = wheel_fini,
	.insert = wheel_insert,
	.armed_at = wheel_armed_at,
	.killed = wheel_killed,
	.sweep = wheel_sweep,
	.advance = wheel_advance,
	.next = wheel_next,
};
