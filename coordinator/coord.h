/* SPDX-License-Identifier: MIT */
/* The coordinator's shared state: leadership (leader.c), delayed jobs
 * (delayed.c), the starvation daemon and retention (maintenance.c), vacuums
 * (vacuum.c), cron (cron_runner.c). One libev loop; everything below runs
 * on it. */
#ifndef JW_COORD_H
#define JW_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"
#include "cron.h"
#include "pgconn.h"
#include "strbuf.h"
#include "timer.h"

/* A housekeeping task that backs off when it is slow: the next run waits
 * SLOW_BACKOFF times the last one's duration (maintenance.c, vacuum.c). While
 * a long transaction holds the xmin horizon their scans walk every dead
 * index entry left since it began, and they must not take the claims' CPU. */
#define SLOW_BACKOFF 10
struct backoff {
	ev_tstamp began, took; /* the last run */
};

static inline bool backoff_due(const struct backoff *b, ev_tstamp now)
{
	return now - b->began >= SLOW_BACKOFF * b->took;
}

static inline void backoff_began(struct backoff *b, ev_tstamp now)
{
	b->began = now;
}

static inline void backoff_ended(struct backoff *b, ev_tstamp now)
{
	b->took = now - b->began;
}

struct schedule {
	char *name;
	struct cron_expr expr;
	int64_t next_ms; /* next tick to fire, database clock */
};

struct coord {
	struct ev_loop *loop;
	struct config *cfg;
	char id[320];
	char host[256];

	/* The leader lock lives on `db`'s session, and every action that must
	 * happen once (promotions, cron ticks) runs on it. `maint` carries
	 * housekeeping that is safe to run twice, so a long prune never delays
	 * a timer. */
	struct pgconn *db;
	struct pgconn *maint;
	bool leader;
	bool trying; /* a try_lead is in flight */
	bool stopping;
	ev_timer lead_timer; /* heartbeat; followers try to lead */

	/* delayed.c */
	enum timer_kind timer_kind;
	struct jw_timer *timer;
	int64_t clock_offset_ms; /* database clock minus ours */
	int64_t clock_rtt_ms;    /* round trip of the sample behind it */
	int64_t clock_sampled_ms;
	int64_t loaded_until_ms; /* scheduled jobs due before this are in the timer */
	char cursor[32];         /* xid8 of the scheduled-job cursor; "" = none yet */
	bool reading;            /* a cursor or horizon read is in flight */
	int promoting;           /* promote statements in flight */
	struct strbuf fired;     /* ids fired, waiting to be promoted */
	int nfired;
	ev_timer fire_timer;
	ev_timer cursor_timer;
	ev_timer horizon_timer;
	int64_t promoted_total;

	/* maintenance.c */
	bool maint_busy;
	struct backoff maint_backoff;
	bool pruning;
	int64_t pruned_run;
	ev_timer maint_timer;
	ev_timer retention_timer;

	/* vacuum.c */
	bool vacuuming;
	struct backoff vacuum_backoff;
	ev_timer vacuum_timer;

	/* cron_runner.c */
	struct schedule *schedules;
	int nschedules;
	bool cron_loading;
	bool cron_reload;
	ev_timer cron_timer;
};

/* This host's wall clock, and the database's as this process estimates it,
 * in ms since the epoch. */
int64_t coord_wall_ms(void);
int64_t coord_db_now_ms(const struct coord *c);

/* Parses a text value of bigint[] into a fresh array; returns the count, or
 * -1 when out of memory. *ret must be freed. */
int coord_parse_ids(const char *s, int64_t **ret);

/* leader.c */
int coord_init(struct coord *c, struct ev_loop *loop, struct config *cfg);
void coord_start(struct coord *c);
void coord_stop(struct coord *c); /* resign, deregister, break the loop */
void coord_free(struct coord *c);

/* delayed.c: the timer of scheduled jobs; active while leading. */
int delayed_init(struct coord *c);
void delayed_start(struct coord *c);
void delayed_stop(struct coord *c);
void delayed_free(struct coord *c);

/* maintenance.c: starvation daemon and retention; active while leading. */
void maint_init(struct coord *c);
void maint_start(struct coord *c);
void maint_stop(struct coord *c);

/* vacuum.c: vacuums jobwheel.jobs while jobs are being finished; active while leading. */
void vacuum_init(struct coord *c);
void vacuum_start(struct coord *c);
void vacuum_stop(struct coord *c);

/* cron_runner.c: schedules; active while leading. */
void cron_init(struct coord *c);
void cron_start(struct coord *c);
void cron_stop(struct coord *c);
void cron_changed(struct coord *c); /* NOTIFY jobwheel_schedules */
void cron_free(struct coord *c);

#endif
