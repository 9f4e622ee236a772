/* SPDX-License-Identifier: MIT */
/* libFuzzer target: cron_parse on arbitrary bytes, and cron_next's invariants on what parses. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "fuzz.h"

/* Past cron_parse's 256-byte limit, so that the limit is exercised too. */
#define MAX_INPUT 300
/* 9000-01-01T00:00:00Z: below it a search never runs into the year-9999 end. */
#define CALM_MS INT64_C(221845392000000)

/* The day rule, on gmtime_r's fields: independent of cron.c's calendar. */
static bool day_matches(const struct cron_expr *e, const struct tm *tm)
{
	bool dom = e->mday >> tm->tm_mday & 1, dow = e->wday >> tm->tm_wday & 1;

	return (e->month >> (tm->tm_mon + 1) & 1) &&
	       (e->mday_star || e->wday_star ? dom && dow : dom || dow);
}

static bool matches(const struct cron_expr *e, int64_t t)
{
	time_t sec = (time_t)t;
	struct tm tm;

	CHECK(gmtime_r(&sec, &tm));
	return (e->second >> tm.tm_sec & 1) && (e->minute >> tm.tm_min & 1) &&
	       (e->hour >> tm.tm_hour & 1) && day_matches(e, &tm);
}

/* Whether any day of 2000-2027 matches: these 28 years put every date,
 * Feb 29 included, on every weekday, so none matching means never. */
static bool some_day_matches(const struct cron_expr *e)
{
	for (time_t t = 946684800; t < 1830297600; t += 86400) {
		struct tm tm;

		CHECK(gmtime_r(&t, &tm));
		if (day_matches(e, &tm))
			return true;
	}
	return false;
}

static void check_tick(const struct cron_expr *e, int64_t after, int64_t t)
{
	CHECK(t > after);
	if (e->every_ms > 0) {
		CHECK(t % e->every_ms == 0 && t - after <= e->every_ms);
	} else {
		CHECK(t % 1000 == 0);
		CHECK(matches(e, t / 1000));
	}
}

static void check_from(const struct cron_expr *e, int64_t after)
{
	int64_t t = cron_next(e, after), t2;

	if (t == -1) {
		/* Far from the year 9999, "never" means never, from any start. */
		if (after < CALM_MS && e->every_ms == 0) {
			CHECK(cron_next(e, 0) == -1);
			CHECK(!some_day_matches(e));
		}
		return;
	}
	check_tick(e, after, t);
	/* No tick was skipped: starting anywhere in (after, t) finds t again. */
	CHECK(cron_next(e, t - 1) == t);
	CHECK(cron_next(e, after + (t - after) / 2) == t);
	t2 = cron_next(e, t);
	if (t2 != -1)
		check_tick(e, t, t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 1970, 1999-12-31T23:59:59.999, 2024-02-29, 2099-12-31T23:59:59, 9999-12-31T23:59:59. */
	static const int64_t starts[] = { 0,
					  INT64_C(946684799999),
					  INT64_C(1709164800000),
					  INT64_C(4102444799000),
					  INT64_C(253402300799000) };
	char expr[MAX_INPUT + 1], err[128];
	struct cron_expr e;
	uint64_t hash = 1469598103934665603u;
	int r;

	if (size > MAX_INPUT)
		size = MAX_INPUT;
	memcpy(expr, data, size);
	expr[size] = '\0';
	err[0] = '\0';
	r = cron_parse(expr, &e, err, sizeof(err));
	if (r != 0) {
		/* A refusal always says why, in printable ASCII. */
		CHECK(r == -EINVAL && err[0] != '\0');
		for (const char *p = err; *p; p++)
			CHECK(*p >= ' ' && *p < 0x7f);
		return 0;
	}
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		check_from(&e, starts[i]);
	/* And a start the input picks, anywhere from 1900 to 2300 to the ms. */
	for (size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 1099511628211u;
	check_from(&e, (int64_t)(hash % UINT64_C(12623040000000)) - INT64_C(2208988800000));
	return 0;
}
