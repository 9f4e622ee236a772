/* SPDX-License-Identifier: MIT */
/* Claiming jobs and reporting outcomes: what a loop iteration gathered goes
 * out in one statement (one commit) when there is both. */
#ifndef JW_CLAIM_H
#define JW_CLAIM_H

#include <stdbool.h>

struct worker;

/* Sends the outcomes waiting and a claim for the free slots, together when
 * there are both; the answers start the claimed jobs. Once per iteration. */
void claim_and_report(struct worker *w);

/* True while a claim is in flight. */
bool claim_in_flight(const struct worker *w);

#endif
