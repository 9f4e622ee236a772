/* SPDX-License-Identifier: MIT */
/* The heartbeat: every worker.heartbeat_ms, renews the leases of the running
 * jobs, aborts those the database says are no longer this worker's, and
 * confirms the rest to the lease guard. */
#ifndef JW_HEARTBEAT_H
#define JW_HEARTBEAT_H

struct worker;

void heartbeat_init(struct worker *w);
void heartbeat_start(struct worker *w);
void heartbeat_stop(struct worker *w);

#endif
