/* SPDX-License-Identifier: MIT */
/* Cron expressions (UTC): 5 fields, 6 with leading seconds, @hourly-style
 * macros, and @every DURATION. */
#ifndef JW_CRON_H
#define JW_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron_expr {
	/* Field sets as bitmasks: bit n set = value n allowed. */
	uint64_t second;  /* 0-59 */
	uint64_t minute;  /* 0-59 */
	uint32_t hour;    /* 0-23 */
	uint32_t mday;    /* 1-31 */
	uint16_t month;   /* 1-12 */
	uint8_t wday;     /* 0-6, Sunday = 0 (7 is accepted as Sunday) */
	bool mday_star;   /* day-of-month started with '*' (stepped or not) */
	bool wday_star;   /* day-of-week started with '*'; see the day rule below */
	int64_t every_ms; /* > 0 for @every: ticks at multiples of it since the epoch */
};

/* Parses expr (NUL-terminated, at most 256 bytes) into *ret. Accepts:
 *   "m h dom mon dow" and "s m h dom mon dow": numbers, '*', ranges a-b,
 *   steps '*' or a-b followed by /n, and a/n meaning a up to the field's
 *   end (6 for day-of-week); lists a,b,c; month names jan..dec and day
 *   names sun..sat (any case); day-of-week 7 is Sunday. Five fields fire
 *   at second 0.
 *   Days as in Vixie cron: when day-of-month and day-of-week both are
 *   restricted (neither starts with '*'), a day matching either fires;
 *   otherwise a day must match both.
 *   @yearly @annually @monthly @weekly @daily @midnight @hourly @minutely
 *   (any case), and @every DURATION: units ms s m h d, combined as in 1h30m,
 *   from 1s to 366d; ticks at multiples of it since the epoch, so that every
 *   coordinator agrees on them (the field sets are then 0).
 * Returns 0, or -EINVAL with *ret untouched and a message naming the bad
 * field in err (err may be NULL), e.g.
 * "minute field: 61 is out of range 0-59", "expected 5 or 6 fields, got 4",
 * "@every: duration \"0s\" must be at least 1s". */
int cron_parse(const char *expr, struct cron_expr *ret, char *err, size_t errlen);

/* The first tick strictly after after_ms (milliseconds since the Unix epoch,
 * UTC). Ticks fall on whole seconds (or multiples of every_ms). Returns -1
 * if the expression can never fire (e.g. "0 0 30 2 *"), which is known
 * without searching, or if the tick would fall after the year 9999.
 * Skips whole months, days and hours, so even rare ticks (Feb 29 on a
 * Sunday) take microseconds. */
int64_t cron_next(const struct cron_expr *e, int64_t after_ms);

#endif
