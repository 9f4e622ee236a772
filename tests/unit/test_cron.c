/* SPDX-License-Identifier: MIT */
/* Unit tests: cron parsing, error messages and next-tick times against known UTC dates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* "2024-02-29T13:05:09Z" or "...09.250Z" as milliseconds since the epoch. */
static int64_t iso(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0, n = 0;

	if (sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 6)
		fail_msg("bad test date %s", s);
	if (s[n] == '.')
		sscanf(s + n + 1, "%3d", &ms);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* The tick after `after` as an ISO string, or "never", for readable failures. */
static const char *next_iso(const char *expr, const char *after, char *buf, size_t size)
{
	struct cron_expr e;
	char err[128];
	int64_t t;

	if (cron_parse(expr, &e, err, sizeof(err)) != 0)
		fail_msg("\"%s\" did not parse: %s", expr, err);
	t = cron_next(&e, iso(after));
	if (t == -1) {
		snprintf(buf, size, "never");
	} else {
		time_t sec = (time_t)(t / 1000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
		if (t % 1000)
			snprintf(buf + n, size - n, ".%03dZ", (int)(t % 1000));
		else
			snprintf(buf + n, size - n, "Z");
	}
	return buf;
}

struct next_case {
	const char *expr, *after, *want;
};

static void check_next(const struct next_case *c, size_t n)
{
	char buf[64];

	for (size_t i = 0; i < n; i++) {
		const char *got = next_iso(c[i].expr, c[i].after, buf, sizeof(buf));
		if (strcmp(got, c[i].want) != 0)
			fail_msg("\"%s\" after %s: got %s, want %s", c[i].expr, c[i].after, got,
				 c[i].want);
	}
}

static void test_fields(void **state)
{
	/* 2024-01-01 is a Monday. */
	static const struct next_case c[] = {
		{ "* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z" },
		{ "* * * * *", "2024-01-01T00:00:59.999Z", "2024-01-01T00:01:00Z" },
		{ "*/15 * * * *", "2024-01-01T10:07:00Z", "2024-01-01T10:15:00Z" },
		{ "*/15 * * * *", "2024-01-01T10:45:00Z", "2024-01-01T11:00:00Z" },
		{ "5-10,30 * * * *", "2024-01-01T10:10:00Z", "2024-01-01T10:30:00Z" },
		{ "5-10,30 * * * *", "2024-01-01T10:30:00Z", "2024-01-01T11:05:00Z" },
		{ "10-40/15 * * * *", "2024-01-01T10:26:00Z", "2024-01-01T10:40:00Z" },
		{ "50/5 * * * *", "2024-01-01T10:56:00Z", "2024-01-01T11:50:00Z" },
		{ "0 9-17/2 * * MON-FRI", "2024-01-05T17:00:00Z", "2024-01-08T09:00:00Z" },
		{ "0 9-17/2 * * MON-FRI", "2024-01-08T09:00:00Z", "2024-01-08T11:00:00Z" },
		{ "0 0 1 jan,JUL *", "2024-02-10T00:00:00Z", "2024-07-01T00:00:00Z" },
		{ "0 0 1 Mar-May *", "2024-05-01T00:00:00Z", "2025-03-01T00:00:00Z" },
		{ "0 12 * * sun", "2024-01-01T00:00:00Z", "2024-01-07T12:00:00Z" },
		{ "0 12 * * 7", "2024-01-01T00:00:00Z", "2024-01-07T12:00:00Z" },
		{ "0 12 * * 5-7", "2024-01-05T12:00:00Z", "2024-01-06T12:00:00Z" },
		{ "0 12 * * 5-7", "2024-01-07T12:00:00Z", "2024-01-12T12:00:00Z" },
		{ "30 4 1,15 * *", "2024-01-15T04:30:00Z", "2024-02-01T04:30:00Z" },
		/* Six fields: leading seconds. */
		{ "*/10 * * * * *", "2024-01-01T00:00:05Z", "2024-01-01T00:00:10Z" },
		{ "*/10 * * * * *", "2024-01-01T00:00:50Z", "2024-01-01T00:01:00Z" },
		{ "30 0 0 * * *", "2024-01-01T00:00:30Z", "2024-01-02T00:00:30Z" },
		{ "15,45 30 8 * * *", "2024-01-01T08:30:15.001Z", "2024-01-01T08:30:45Z" },
	};
	check_next(c, ARRAY_LEN(c));
}

static void test_macros(void **state)
{
	static const struct next_case c[] = {
		{ "@hourly", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z" },
		{ "@hourly", "2024-01-01T10:59:59.999Z", "2024-01-01T11:00:00Z" },
		{ "@daily", "2024-01-01T00:00:00.001Z", "2024-01-02T00:00:00Z" },
		{ "@midnight", "2024-01-01T23:59:59Z", "2024-01-02T00:00:00Z" },
		{ "@weekly", "2024-01-03T08:00:00Z", "2024-01-07T00:00:00Z" },
		{ "@monthly", "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z" },
		{ "@yearly", "2024-06-15T00:00:00Z", "2025-01-01T00:00:00Z" },
		{ "@annually", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z" },
		{ "@minutely", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z" },
		{ "@DAILY", "2024-01-01T12:00:00Z", "2024-01-02T00:00:00Z" },
	};
	check_next(c, ARRAY_LEN(c));
}

/* Vixie cron: both day fields restricted -> either fires; a field starting
 * with '*' (even stepped) leaves the other in charge, so both must match. */
static void test_day_or_rule(void **state)
{
	static const struct next_case c[] = {
		{ "0 0 13 * FRI", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z" },
		{ "0 0 13 * FRI", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z" },
		{ "0 0 13 * FRI", "2024-01-13T00:00:00Z", "2024-01-19T00:00:00Z" },
		{ "0 0 13 * *", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z" },
		{ "0 0 * * FRI", "2024-01-06T00:00:00Z", "2024-01-12T00:00:00Z" },
		{ "0 0 */2 * FRI", "2024-01-05T00:00:00Z", "2024-01-19T00:00:00Z" },
		{ "0 0 1 * */7", "2024-01-01T00:00:00Z", "2024-09-01T00:00:00Z" },
		/* No 31st in February, but Mondays: the OR rule fires. */
		{ "0 0 31 2 MON", "2024-01-01T00:00:00Z", "2024-02-05T00:00:00Z" },
	};
	check_next(c, ARRAY_LEN(c));
}

static void test_calendar_edges(void **state)
{
	static const struct next_case c[] = {
		{ "0 0 29 2 *", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z" },
		{ "0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z" },
		/* 2100 is not a leap year: eight years between Feb 29s. */
		{ "0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z" },
		{ "0 0 29 2 *", "2000-01-01T00:00:00Z", "2000-02-29T00:00:00Z" },
		/* Feb 29 that is a Sunday: eight years away, found fast. */
		{ "0 0 29 2 */7", "2024-01-01T00:00:00Z", "2032-02-29T00:00:00Z" },
		{ "0 0 31 * *", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z" },
		{ "0 0 31 * *", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z" },
		{ "0 0 31 * *", "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z" },
		{ "0 0 1 * *", "2024-12-15T00:00:00Z", "2025-01-01T00:00:00Z" },
		{ "0 0 30 * *", "2023-01-30T00:00:00Z", "2023-03-30T00:00:00Z" },
		{ "* * * * * *", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z" },
		{ "* * * * *", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z" },
		{ "59 59 23 31 12 *", "2024-12-31T23:59:59Z", "2025-12-31T23:59:59Z" },
		{ "59 59 23 31 12 *", "2024-12-31T23:59:58.500Z", "2024-12-31T23:59:59Z" },
		{ "0 0 1 1 *", "1969-06-01T00:00:00Z", "1970-01-01T00:00:00Z" },
		{ "0 0 1 1 *", "1899-06-01T00:00:00Z", "1900-01-01T00:00:00Z" },
		{ "0 0 1 1 *", "9998-06-01T00:00:00Z", "9999-01-01T00:00:00Z" },
		{ "0 0 1 1 *", "9999-06-01T00:00:00Z", "never" },
	};
	check_next(c, ARRAY_LEN(c));
}

static void test_every(void **state)
{
	static const struct next_case c[] = {
		{ "@every 10s", "2024-01-01T00:00:03Z", "2024-01-01T00:00:10Z" },
		{ "@every 10s", "2024-01-01T00:00:10Z", "2024-01-01T00:00:20Z" },
		{ "@every 10s", "2024-01-01T00:00:09.999Z", "2024-01-01T00:00:10Z" },
		{ "@every 10s", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z" },
		{ "@every 10s", "1969-12-31T23:59:45Z", "1969-12-31T23:59:50Z" },
		/* 5400 s divides 2024-01-01T00:00Z (1704067200 s since the epoch). */
		{ "@every 1h30m", "2024-01-01T00:00:00Z", "2024-01-01T01:30:00Z" },
		{ "@every 1h30m", "2024-01-01T01:00:00Z", "2024-01-01T01:30:00Z" },
		{ "@every 1h30m", "2024-01-01T01:30:00Z", "2024-01-01T03:00:00Z" },
		{ "@every 1d", "2024-01-01T12:00:00Z", "2024-01-02T00:00:00Z" },
		{ "@every 1500ms", "1970-01-01T00:00:01Z", "1970-01-01T00:00:01.500Z" },
		{ "@EVERY 90m", "2024-01-01T00:00:00Z", "2024-01-01T01:30:00Z" },
	};
	struct cron_expr e;

	check_next(c, ARRAY_LEN(c));
	assert_int_equal(cron_parse("@every 1h30m", &e, NULL, 0), 0);
	assert_int_equal(e.every_ms, 5400000);
	assert_int_equal(cron_parse("@every 1d2h3m4s5ms", &e, NULL, 0), 0);
	assert_int_equal(e.every_ms, 93784005);
	assert_int_equal(cron_parse("@every 99999999ms", &e, NULL, 0), 0);
	assert_int_equal(e.every_ms, 99999999);
	assert_int_equal(cron_parse("@every 31622400000ms", &e, NULL, 0), 0);
	assert_int_equal(e.every_ms, INT64_C(366) * 86400000);
	assert_int_equal(cron_parse("@every 366d", &e, NULL, 0), 0);
	assert_int_equal(e.every_ms, INT64_C(366) * 86400000);
	assert_int_equal(cron_next(&e, INT64_MAX - 1000), -1);
}

static void test_impossible(void **state)
{
	static const struct next_case c[] = {
		{ "0 0 30 2 *", "2024-01-01T00:00:00Z", "never" },
		{ "0 0 31 2,4,6,9,11 *", "2024-01-01T00:00:00Z", "never" },
		{ "0 0 30,31 feb *", "2024-01-01T00:00:00Z", "never" },
		{ "0 0 31 4 */2", "2024-01-01T00:00:00Z", "never" },
	};
	struct cron_expr e = { 0 };

	check_next(c, ARRAY_LEN(c));
	/* Extreme starts: the search covers years 1-9999, @every any int64. */
	assert_int_equal(cron_parse("0 0 1 1 *", &e, NULL, 0), 0);
	assert_int_equal(cron_next(&e, INT64_MIN), INT64_C(-62135596800000)); /* 0001-01-01 */
	assert_int_equal(cron_next(&e, INT64_MAX), -1);
	assert_int_equal(cron_parse("@every 7s", &e, NULL, 0), 0);
	assert_true(cron_next(&e, INT64_MIN) > INT64_MIN);
	assert_int_equal(cron_next(&e, INT64_MIN) % 7000, 0);
	memset(&e, 0, sizeof(e));
	/* A zeroed struct (never parsed) matches nothing rather than looping. */
	assert_int_equal(cron_next(&e, 0), -1);
}

/* Parsed sets, for the corners that next-tick cases do not pin down. */
static void test_parsed_sets(void **state)
{
	struct cron_expr e;

	assert_int_equal(cron_parse("1/20 * * * 1/2", &e, NULL, 0), 0);
	assert_true(e.minute == ((1u << 1) | (1u << 21) | (UINT64_C(1) << 41)));
	assert_int_equal(e.wday, 0x2a); /* Mon, Wed, Fri: a/n stops at Saturday */
	assert_int_equal(e.second, 1);
	assert_int_equal(cron_parse("* * * * 0-7", &e, NULL, 0), 0);
	assert_int_equal(e.wday, 0x7f);
	assert_int_equal(cron_parse("* * * * 5-7", &e, NULL, 0), 0);
	assert_int_equal(e.wday, 0x61);
	assert_int_equal(cron_parse(" \t0 0 1 * *\n", &e, NULL, 0), 0);
	assert_int_equal(e.mday, 2);
	assert_false(e.mday_star);
	assert_true(e.wday_star);
	assert_int_equal(cron_parse("* * */2 * *", &e, NULL, 0), 0);
	assert_true(e.mday_star);
	assert_int_equal(e.mday, 0xaaaaaaaa);
	assert_int_equal(cron_parse("* * * * *", &e, NULL, 0), 0);
	assert_true(e.minute == (UINT64_C(1) << 60) - 1);
	assert_int_equal(e.hour, 0xffffff);
	assert_int_equal(e.month, 0x1ffe);
	assert_int_equal(e.every_ms, 0);
}

struct bad_case {
	const char *expr, *msg;
};

static void test_bad_expressions(void **state)
{
	static const struct bad_case c[] = {
		{ "", "empty expression" },
		{ " \t\n", "empty expression" },
		{ "* * * *", "expected 5 or 6 fields, got 4" },
		{ "0 0 * * * * junk", "expected 5 or 6 fields, got 7" },
		{ "60 * * * * *", "second field: 60 is out of range 0-59" },
		{ "61 * * * *", "minute field: 61 is out of range 0-59" },
		{ "99999999999999999999 * * * *",
		  "minute field: 99999999999999999999 is out of range 0-59" },
		{ "* 24 * * *", "hour field: 24 is out of range 0-23" },
		{ "* * 0 * *", "day-of-month field: 0 is out of range 1-31" },
		{ "* * 32 * *", "day-of-month field: 32 is out of range 1-31" },
		{ "* * * 13 *", "month field: 13 is out of range 1-12" },
		{ "* * * * 8", "day-of-week field: 8 is out of range 0-7" },
		{ "* */0 * * *", "hour field: bad step \"*/0\"" },
		{ "*/61 * * * *", "minute field: bad step \"*/61\"" },
		{ "*/ * * * *", "minute field: bad step \"*/\"" },
		{ "*/5/2 * * * *", "minute field: bad step \"*/5/2\"" },
		{ "* * * * */x", "day-of-week field: bad step \"*/x\"" },
		{ "5-1 * * * *", "minute field: bad range \"5-1\": start is after end" },
		{ "* * * * FRI-MON", "day-of-week field: bad range \"FRI-MON\": start is after end" },
		{ "* * * foo *", "month field: unknown name \"foo\"" },
		{ "* * * * monday", "day-of-week field: unknown name \"monday\"" },
		{ "* * * * jan", "day-of-week field: unknown name \"jan\"" },
		{ "abc * * * *", "minute field: bad value \"abc\"" },
		{ "* * L * *", "day-of-month field: bad value \"L\"" },
		{ "-5 * * * *", "minute field: bad value \"-5\"" },
		{ "5- * * * *", "minute field: bad value \"5-\"" },
		{ "* ? * * *", "hour field: bad value \"?\"" },
		{ "1,,2 * * * *", "minute field: empty list item in \"1,,2\"" },
		{ "1, * * * *", "minute field: empty list item in \"1,\"" },
		{ "5x * * * *", "minute field: unexpected \"x\" in \"5x\"" },
		{ "*-5 * * * *", "minute field: unexpected \"-5\" in \"*-5\"" },
		{ "* * * * 5#2", "day-of-week field: unexpected \"#2\" in \"5#2\"" },
		{ "0 0 * * * junk", "day-of-week field: unknown name \"junk\"" },
		{ "\x01\xff * * * *", "minute field: bad value \"??\"" },
		{ "@sometimes", "unknown macro \"@sometimes\"" },
		{ "@", "unknown macro \"@\"" },
		{ "@daily 5", "@daily: unexpected \"5\" after the macro" },
		{ "@every", "@every: missing duration" },
		{ "@every 10x", "@every: bad duration \"10x\"" },
		{ "@every 10", "@every: bad duration \"10\"" },
		{ "@every h", "@every: bad duration \"h\"" },
		{ "@every 1.5h", "@every: bad duration \"1.5h\"" },
		{ "@every 0s", "@every: duration \"0s\" must be at least 1s" },
		{ "@every 999ms", "@every: duration \"999ms\" must be at least 1s" },
		{ "@every 367d", "@every: duration \"367d\" must be at most 366d" },
		{ "@every 366d1ms", "@every: duration \"366d1ms\" must be at most 366d" },
		{ "@every 31622400001ms", "@every: duration \"31622400001ms\" must be at most 366d" },
		{ "@every 99999999999999999999d",
		  "@every: duration \"99999999999999999999d\" must be at most 366d" },
		{ "@every 1h 30m", "@every: unexpected \"30m\" after the duration" },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,x * * * *",
		  "minute field: bad value \"x\"" },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20, * * * *",
		  "minute field: empty list item in \"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,...\"" },
	};
	char err[128], big[300];
	struct cron_expr e, before;

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		e = before;
		err[0] = '\0';
		if (cron_parse(c[i].expr, &e, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" parsed", c[i].expr);
		if (strcmp(err, c[i].msg) != 0)
			fail_msg("\"%s\": got '%s', want '%s'", c[i].expr, err, c[i].msg);
		assert_memory_equal(&e, &before, sizeof(e)); /* untouched on failure */
	}

	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 250, "* * * * *", 9);
	assert_int_equal(cron_parse(big, &e, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "expression is longer than 256 bytes");
	big[256] = '\0'; /* "* * * *" at 250..256 exactly: four fields, under the cap */
	assert_int_equal(cron_parse(big, &e, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "expected 5 or 6 fields, got 3");

	/* Short or missing error buffers are fine. */
	assert_int_equal(cron_parse("61 * * * *", &e, err, 8), -EINVAL);
	assert_string_equal(err, "minute ");
	assert_int_equal(cron_parse("61 * * * *", &e, NULL, 0), -EINVAL);
	assert_int_equal(cron_parse(NULL, &e, err, sizeof(err)), -EINVAL);
	assert_int_equal(cron_parse("* * * * *", NULL, err, sizeof(err)), -EINVAL);
}

/* Whether the day and month of second t match e, by gmtime_r: an oracle
 * independent of cron.c's calendar arithmetic. */
static bool matches_day(const struct cron_expr *e, time_t t)
{
	struct tm tm;
	bool dom, dow;

	gmtime_r(&t, &tm);
	dom = e->mday >> tm.tm_mday & 1;
	dow = e->wday >> tm.tm_wday & 1;
	return (e->month >> (tm.tm_mon + 1) & 1) &&
	       (e->mday_star || e->wday_star ? dom && dow : dom || dow);
}

static bool matches_time(const struct cron_expr *e, time_t t)
{
	int64_t sod = ((int64_t)t % 86400 + 86400) % 86400;

	return (e->second >> sod % 60 & 1) && (e->minute >> sod / 60 % 60 & 1) &&
	       (e->hour >> sod / 3600 & 1);
}

static bool matches(const struct cron_expr *e, time_t t)
{
	return matches_time(e, t) && matches_day(e, t);
}

/* The first five-field tick in [from, end) seconds, or -1, by a plain scan:
 * gmtime_r once a day, then minute by minute through days that match. */
static time_t scan(const struct cron_expr *e, time_t from, time_t end)
{
	for (time_t m = (from + 59) / 60 * 60; m < end;) {
		if (!matches_day(e, m)) {
			m = (m / 86400 + 1) * 86400;
			continue;
		}
		for (time_t day_end = (m / 86400 + 1) * 86400; m < day_end && m < end; m += 60)
			if (matches_time(e, m))
				return m;
	}
	return -1;
}

/* Random five-field expressions against a scan of 60 days. */
static void test_against_scan(void **state)
{
	static const char *const pick[5][6] = {
		{ "*", "0", "*/7", "5-10", "0,30,59", "45/5" },
		{ "*", "0", "23", "*/5", "9-17", "1,13" },
		{ "*", "1", "31", "*/10", "13-15", "29" },
		{ "*", "2", "2,3", "*/3", "feb-apr", "12" },
		{ "*", "0", "7", "mon-fri", "*/3", "sat,3" },
	};
	unsigned seed = 12345;
	char expr[128];
	struct cron_expr e;

	for (int round = 0; round < 500; round++) {
		int k[5];
		for (int f = 0; f < 5; f++) {
			seed = seed * 1103515245 + 12345;
			k[f] = (int)(seed >> 16) % 6;
		}
		snprintf(expr, sizeof(expr), "%s %s %s %s %s", pick[0][k[0]], pick[1][k[1]],
			 pick[2][k[2]], pick[3][k[3]], pick[4][k[4]]);
		assert_int_equal(cron_parse(expr, &e, NULL, 0), 0);
		seed = seed * 1103515245 + 12345;
		int64_t after = iso("2023-11-01T00:00:00Z") + (int64_t)(seed % 400) * 86400000 +
				(int64_t)(seed >> 8) % 86400000;
		int64_t got = cron_next(&e, after);
		time_t from = (time_t)(after / 1000 + 1);
		time_t want = scan(&e, from, from + 60 * 86400);
		if (want >= 0 && got != (int64_t)want * 1000)
			fail_msg("\"%s\" after %lld: got %lld, want %lld", expr, (long long)after,
				 (long long)got, (long long)want * 1000);
		if (want < 0 && got >= 0 && got < ((int64_t)from + 60 * 86400) * 1000)
			fail_msg("\"%s\" after %lld: got %lld, scan found none", expr,
				 (long long)after, (long long)got);
	}
}

/* Consecutive ticks of a year of a dense expression, each checked by the oracle. */
static void test_chain(void **state)
{
	static const char *const exprs[] = { "0 0 */5 * * *", "7 0 0 */3 * mon", "@hourly",
					     "0 30 2 29-31 * *" };
	struct cron_expr e;

	for (size_t i = 0; i < ARRAY_LEN(exprs); i++) {
		int64_t t = iso("2023-12-31T00:00:00Z"), end = iso("2025-01-02T00:00:00Z");
		assert_int_equal(cron_parse(exprs[i], &e, NULL, 0), 0);
		while (t < end) {
			int64_t next = cron_next(&e, t);
			assert_true(next > t && next % 1000 == 0);
			assert_true(matches(&e, (time_t)(next / 1000)));
			assert_int_equal(cron_next(&e, next - 1), next);
			t = next;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),        cmocka_unit_test(test_macros),
		cmocka_unit_test(test_day_or_rule),   cmocka_unit_test(test_calendar_edges),
		cmocka_unit_test(test_every),         cmocka_unit_test(test_impossible),
		cmocka_unit_test(test_parsed_sets),   cmocka_unit_test(test_bad_expressions),
		cmocka_unit_test(test_against_scan),  cmocka_unit_test(test_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
