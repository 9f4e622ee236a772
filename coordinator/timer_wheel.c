/* SPDX-License-Identifier: MIT */
/* Hierarchical timing wheel: 11 levels of 64 slots, 1 ms per level-0 slot. */
#include <errno.h>
#include <stdlib.h>

#include "timer_impl.h"

/*
 * Level k has 64 slots of 64^k ms each; 11 levels cover 66 bits, so every
 * uint64 deadline has a place and no overflow list is needed.
 *
 * Placement. A node with deadline W > now goes to the level of the highest
 * base-64 digit in which W and now differ, in the slot named by W's digit
 * there. So W agrees with now on every digit above its level and its digit at
 * its level is greater than now's: every armed slot lies ahead of the clock,
 * the lowest set bit of a level's bitmap is its next slot, and all slots of a
 * lower level come before any slot of a higher one. The earliest slot of the
 * lowest non-empty level therefore starts no later than any deadline: that is
 * timer_next(), found with two ctz.
 *
 * Advancing. While that earliest slot starts at or before the target, move
 * the clock to its start and empty it: nodes whose deadline is that instant
 * fire, the others go to a lower level relative to the new clock (a cascade;
 * at most 11 per node). Empty slots cost nothing, so a jump of hours costs
 * only the slots that hold timers. Slots the clock has not reached stay
 * correctly placed, since the clock still agrees with them above their level.
 *
 * Order. Placement depends only on (W, clock), so all nodes with one deadline
 * share one slot; they enter it by append (new arming: highest seq) or by a
 * cascade that moves them together in list order, so a slot lists equal
 * deadlines in seq order, and they fire in that order. Slots fire in time
 * order as above. Deadlines at or before the clock when armed go to the
 * expired list, which is sorted when it fires; they all precede the wheel.
 */

#define WHEEL_BITS 6
#define WHEEL_SLOTS 64
#define WHEEL_LEVELS 11
#define WHEEL_EXPIRED ((size_t)WHEEL_LEVELS * WHEEL_SLOTS)

struct wheel {
	uint64_t now;
	uint64_t expired_min; /* <= every deadline on expired */
	unsigned levels;      /* bit k set iff bitmap[k] != 0 */
	uint64_t bitmap[WHEEL_LEVELS];
	struct timer_link expired; /* armed at or before the clock, unsorted */
	struct timer_link slots[WHEEL_LEVELS][WHEEL_SLOTS];
};

static void link_init(struct timer_link *head)
{
	head->next = head;
	head->prev = head;
}

static bool link_empty(const struct timer_link *head)
{
	return head->next == head;
}

static void link_append(struct timer_link *head, struct timer_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static void link_unlink(struct timer_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

/* Moves a non-empty list from one sentinel to another, emptying `from`. */
static void link_move(struct timer_link *from, struct timer_link *to)
{
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	link_init(from);
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

static void wheel_place(struct wheel *w, struct timer_node *n)
{
	unsigned level, slot;

	if (n->when_ms <= w->now) {
		link_append(&w->expired, &n->link);
		n->pos = WHEEL_EXPIRED;
		if (n->when_ms < w->expired_min)
			w->expired_min = n->when_ms;
		return;
	}
	level = (unsigned)(63 - __builtin_clzll(n->when_ms ^ w->now)) / WHEEL_BITS;
	slot = (unsigned)(n->when_ms >> (level * WHEEL_BITS)) & (WHEEL_SLOTS - 1);
	link_append(&w->slots[level][slot], &n->link);
	n->pos = (size_t)level * WHEEL_SLOTS + slot;
	w->bitmap[level] |= UINT64_C(1) << slot;
	w->levels |= 1u << level;
}

static void wheel_clear_bit(struct wheel *w, unsigned level, unsigned slot)
{
	w->bitmap[level] &= ~(UINT64_C(1) << slot);
	if (!w->bitmap[level])
		w->levels &= ~(1u << level);
}

static bool node_link_before(struct timer_link *a, struct timer_link *b)
{
	const struct timer_node *na = timer_node_of(a), *nb = timer_node_of(b);

	return timer_before(na->when_ms, na->seq, nb->when_ms, nb->seq);
}

/* Bottom-up merge sort of a NULL-terminated chain through ->next (Simon
 * Tatham's list mergesort): O(n log n), no allocation, so advancing cannot
 * fail even when thousands of overdue timers were armed at once. */
static struct timer_link *chain_sort(struct timer_link *list)
{
	for (size_t run = 1;; run *= 2) {
		struct timer_link *p = list, *tail = NULL;
		size_t merges = 0;

		list = NULL;
		while (p) {
			struct timer_link *q = p;
			size_t psize = 0, qsize = run;

			merges++;
			while (psize < run && q) {
				psize++;
				q = q->next;
			}
			while (psize > 0 || (qsize > 0 && q)) {
				struct timer_link *e;

				if (psize > 0 && (qsize == 0 || !q || !node_link_before(q, p))) {
					e = p;
					p = p->next;
					psize--;
				} else {
					e = q;
					q = q->next;
					qsize--;
				}
				if (tail)
					tail->next = e;
				else
					list = e;
				tail = e;
			}
			p = q;
		}
		if (tail)
			tail->next = NULL;
		if (merges <= 1)
			return list;
	}
}

/* Fires the overdue timers due by now_ms in order; after a clock step
 * backwards some may stay, and they stay sorted. */
static size_t wheel_fire_expired(struct jw_timer *t, struct wheel *w, uint64_t now_ms,
				 timer_fire_fn fire, void *arg)
{
	struct timer_link *l;
	size_t fired = 0;

	w->expired.prev->next = NULL;
	l = chain_sort(w->expired.next);
	link_init(&w->expired);
	w->expired_min = UINT64_MAX;
	while (l && timer_node_of(l)->when_ms <= now_ms) {
		struct timer_link *next = l->next; /* expire recycles the node */

		timer_expire(t, timer_node_of(l), fire, arg);
		fired++;
		l = next;
	}
	if (l)
		w->expired_min = timer_node_of(l)->when_ms;
	while (l) {
		struct timer_link *next = l->next;

		link_append(&w->expired, l);
		l = next;
	}
	return fired;
}

static size_t wheel_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	struct wheel *w = t->impl;
	size_t fired = 0;

	if (!link_empty(&w->expired))
		fired += wheel_fire_expired(t, w, now_ms, fire, arg);
	while (w->levels) {
		unsigned level = (unsigned)__builtin_ctz(w->levels);
		unsigned slot = (unsigned)__builtin_ctzll(w->bitmap[level]);
		uint64_t start = wheel_slot_start(w->now, level, slot);
		struct timer_link due;

		if (start > now_ms)
			break;
		w->now = start;
		link_move(&w->slots[level][slot], &due);
		wheel_clear_bit(w, level, slot);
		while (!link_empty(&due)) {
			struct timer_node *n = timer_node_of(due.next);

			link_unlink(&n->link);
			if (n->when_ms == start) {
				timer_expire(t, n, fire, arg);
				fired++;
			} else {
				wheel_place(w, n); /* lands on a lower level */
			}
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
	unsigned level, slot;

	if (!link_empty(&w->expired))
		return w->expired_min;
	if (!w->levels)
		return UINT64_MAX;
	level = (unsigned)__builtin_ctz(w->levels);
	slot = (unsigned)__builtin_ctzll(w->bitmap[level]);
	return wheel_slot_start(w->now, level, slot);
}

static void wheel_insert(struct jw_timer *t, struct timer_node *n)
{
	wheel_place(t->impl, n);
}

static void wheel_remove(struct jw_timer *t, struct timer_node *n)
{
	struct wheel *w = t->impl;
	unsigned level, slot;

	link_unlink(&n->link);
	if (n->pos == WHEEL_EXPIRED) {
		/* Otherwise expired_min may stay below the true minimum, which
		 * timer_next() allows; the next advance recomputes it. */
		if (link_empty(&w->expired))
			w->expired_min = UINT64_MAX;
		return;
	}
	level = (unsigned)(n->pos / WHEEL_SLOTS);
	slot = (unsigned)(n->pos % WHEEL_SLOTS);
	if (link_empty(&w->slots[level][slot]))
		wheel_clear_bit(w, level, slot);
}

static int wheel_init(struct jw_timer *t, uint64_t now_ms)
{
	struct wheel *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->now = now_ms;
	w->expired_min = UINT64_MAX;
	link_init(&w->expired);
	for (unsigned k = 0; k < WHEEL_LEVELS; k++)
		for (unsigned s = 0; s < WHEEL_SLOTS; s++)
			link_init(&w->slots[k][s]);
	t->impl = w;
	return 0;
}

static void wheel_fini(struct jw_timer *t)
{
	free(t->impl);
	t->impl = NULL;
}

const struct timer_ops timer_wheel_ops = {
	.init = wheel_init,
	.fini = wheel_fini,
	.reserve = NULL, /* linking a node never allocates */
	.insert = wheel_insert,
	.remove = wheel_remove,
	.advance = wheel_advance,
	.next = wheel_next,
};
