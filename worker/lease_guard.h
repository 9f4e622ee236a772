/* SPDX-License-Identifier: MIT */
/* The lease guard: gives the running jobs up, reporting nothing, once no
 * heartbeat has confirmed their leases for as long as they surely last. */
#ifndef JW_LEASE_GUARD_H
#define JW_LEASE_GUARD_H

#include <stdbool.h>

#include "config.h"

struct worker;

void lease_guard_init(struct worker *w);
void lease_guard_start(struct worker *w);
void lease_guard_stop(struct worker *w);

/* How long after a heartbeat (or a claim) is sent the database surely still
 * holds every job it covers, in seconds. */
double lease_guard_held_for_s(const struct config *cfg);

/* The jobs were confirmed ours at `confirmed_at` (ev_now time): give them up
 * if nothing confirms them again in time. */
void lease_guard_arm(struct worker *w, double confirmed_at);

/* True when the guard is armed (a claim need not arm it again). */
bool lease_guard_armed(const struct worker *w);

#endif
