/* SPDX-License-Identifier: MIT */
/* Timers for delayed jobs: one interface, two structures (a hierarchical
 * timing wheel and a min-heap), chosen by coordinator.timer. */
#ifndef JW_TIMER_H
#define JW_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum timer_kind { TIMER_WHEEL, TIMER_HEAP };

struct jw_timer;

/* Called for each expired timer, in deadline order (ties in id order, not
 * arming order: that needs no per-timer sequence number), from inside
 * timer_advance(). It must not call timer_add/cancel on the same timer
 * set. */
typedef void (*timer_fire_fn)(int64_t id, uint64_t when_ms, void *arg);

/* A timer set whose clock starts at now_ms (milliseconds, any epoch; the
 * coordinator uses wall-clock ms since 1970 because run_at is wall time).
 * Returns NULL on allocation failure. */
struct jw_timer *timer_new(enum timer_kind kind, uint64_t now_ms);

/* Arms timer `id` (unique key, e.g. a job id) for when_ms, any uint64. A
 * deadline at or before the current time fires at the next timer_advance().
 * Arming an id that is already armed moves it (re-arming it at the same
 * deadline changes nothing). Returns 0, or -ENOMEM (nothing changed). At
 * most about 2^32 timers can be held at once. */
int timer_add(struct jw_timer *t, int64_t id, uint64_t when_ms);

/* Disarms `id`; returns false if it was not armed. Lazy: the timer stops
 * counting at once and its memory is reclaimed when its deadline comes or
 * in a sweep once cancelled timers outnumber armed ones. Amortised O(1)
 * for the wheel, O(log n) for the heap. Cannot fail. */
bool timer_cancel(struct jw_timer *t, int64_t id);

/* Moves the clock to now_ms and fires every timer due at or before it.
 * Never fires a timer early; a now_ms earlier than the current clock (a
 * clock step backwards) fires nothing and keeps the clock. Returns the
 * number fired. */
size_t timer_advance(struct jw_timer *t, uint64_t now_ms, timer_fire_fn fire, void *arg);

/* The earliest deadline armed, or UINT64_MAX when empty. The heap is exact.
 * The wheel may answer earlier than the true deadline (the start of the
 * slot holding it, or a cancelled timer's slot), never later, so a caller
 * that sleeps until then and calls timer_advance() never fires late. */
uint64_t timer_next(const struct jw_timer *t);

size_t timer_count(const struct jw_timer *t);

/* "wheel" or "heap". */
const char *timer_kind_name(enum timer_kind kind);

void timer_free(struct jw_timer *t);

#endif
