/* SPDX-License-Identifier: MIT */
/* Cron expressions: parsing fields, macros and @every, and finding the next UTC tick (SPEC §8). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cron.h"

#define CRON_MAX_LEN 256
#define EVERY_MIN_MS INT64_C(1000)
#define EVERY_MAX_MS (INT64_C(366) * 86400000)
/* Numbers stop growing here: above every limit, 366 days in ms included. */
#define NUM_SATURATE INT64_C(100000000000)
/* Quoted input in messages is cut here so that err stays readable. */
#define QUOTE_MAX 40
/* Years 1-9999: days_from_civil is exact for them and results fit easily. */
#define MIN_SEC INT64_C(-62135596800)
#define MAX_YEAR 9999
/* The Gregorian calendar repeats every 400 years, so a search this long
 * finds a tick if there is one; cron_next rules out impossible expressions
 * before searching, so this bound is a safety net, not the usual cost. */
#define SEARCH_YEARS 400

/* ASCII classes whatever the locale; arguments are evaluated twice. */
#define IS_SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))

struct field_def {
	const char *name;
	int min, max; /* accepted values */
	int last;     /* end of '*' and of "a/n": below max only for day-of-week, whose 7 is an
		       * alias of Sunday (so "1/2" is Mon,Wed,Fri, not Sunday too) */
	const char *const *names; /* three-letter names of min, min+1, ... */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

enum { F_SEC, F_MIN, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const struct field_def fields[F_COUNT] = {
	[F_SEC] = { "second", 0, 59, 59, NULL },        [F_MIN] = { "minute", 0, 59, 59, NULL },
	[F_HOUR] = { "hour", 0, 23, 23, NULL },         [F_MDAY] = { "day-of-month", 1, 31, 31, NULL },
	[F_MONTH] = { "month", 1, 12, 12, month_names }, [F_WDAY] = { "day-of-week", 0, 7, 6, day_names },
};

/* Five-field macros spelled as six fields so they share one parser. */
static const struct {
	const char *name, *fields;
} macros[] = {
	{ "@yearly", "0 0 0 1 1 *" }, { "@annually", "0 0 0 1 1 *" }, { "@monthly", "0 0 0 1 * *" },
	{ "@weekly", "0 0 0 * * 0" }, { "@daily", "0 0 0 * * *" },    { "@midnight", "0 0 0 * * *" },
	{ "@hourly", "0 0 * * * *" }, { "@minutely", "0 * * * * *" },
};

struct tok {
	const char *s;
	size_t len;
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* User text for a message: bounded, and printable whatever bytes came in. */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
	buf[n] = '\0';
	if (n < len && n >= 3)
		memcpy(buf + n - 3, "...", 3);
	return buf;
}

/* Splits s on whitespace into at most max tokens; returns how many there are. */
static int tokenize(const char *s, struct tok *toks, int max)
{
	int n = 0;

	for (;;) {
		while (IS_SPACE(*s))
			s++;
		if (!*s)
			return n;
		const char *start = s;
		while (*s && !IS_SPACE(*s))
			s++;
		if (n < max)
			toks[n] = (struct tok){ start, (size_t)(s - start) };
		n++;
	}
}

/* Digits at *p; advances *p. Saturates, so huge numbers stay out of range. */
static int64_t read_num(const char **p, const char *end)
{
	int64_t v = 0;

	for (; *p < end && IS_DIGIT(**p); (*p)++)
		v = v < NUM_SATURATE ? v * 10 + (**p - '0') : NUM_SATURATE;
	return v;
}

/* A number, or a name where the field has names, at *p inside item
 * [s, end); advances *p. */
static int parse_value(const struct field_def *f, const char *s, const char **p, const char *end,
		       int *ret, char *err, size_t errlen)
{
	const char *start = *p;
	char q[QUOTE_MAX];
	int64_t v = -1;

	if (*p < end && IS_DIGIT(**p)) {
		v = read_num(p, end);
		if (v < f->min || v > f->max)
			return fail(err, errlen, "%s field: %s is out of range %d-%d", f->name,
				    quote(q, sizeof(q), start, (size_t)(*p - start)), f->min, f->max);
	} else if (*p < end && IS_ALPHA(**p) && f->names) {
		while (*p < end && IS_ALPHA(**p))
			(*p)++;
		for (int i = 0; f->names[i] && *p - start == 3; i++)
			if (strncasecmp(start, f->names[i], 3) == 0)
				v = f->min + i;
		if (v < 0)
			return fail(err, errlen, "%s field: unknown name \"%s\"", f->name,
				    quote(q, sizeof(q), start, (size_t)(*p - start)));
	} else {
		return fail(err, errlen, "%s field: bad value \"%s\"", f->name,
			    quote(q, sizeof(q), s, (size_t)(end - s)));
	}
	*ret = (int)v;
	return 0;
}

/* One list item [s, end): '*', a or a-b, optionally followed by /step. */
static int parse_item(const struct field_def *f, const char *s, const char *end, uint64_t *mask,
		      char *err, size_t errlen)
{
	char q[QUOTE_MAX], q2[QUOTE_MAX];
	const char *p = s;
	int lo = f->min, hi = f->last, r;
	int64_t step = 1;

	if (*p == '*') {
		p++;
	} else {
		if ((r = parse_value(f, s, &p, end, &lo, err, errlen)) < 0)
			return r;
		hi = lo;
		if (p < end && *p == '-') {
			p++;
			if ((r = parse_value(f, s, &p, end, &hi, err, errlen)) < 0)
				return r;
			if (lo > hi)
				return fail(err, errlen, "%s field: bad range \"%s\": start is after end",
					    f->name, quote(q, sizeof(q), s, (size_t)(end - s)));
		} else if (p < end && *p == '/') {
			hi = f->last; /* "a/n" is "a-last/n", as in cronie */
		}
	}
	if (p < end && *p == '/') {
		const char *digits = ++p;
		step = read_num(&p, end);
		if (p == digits || p != end || step < 1 || step > f->last - f->min + 1)
			return fail(err, errlen, "%s field: bad step \"%s\"", f->name,
				    quote(q, sizeof(q), s, (size_t)(end - s)));
	}
	if (p != end)
		return fail(err, errlen, "%s field: unexpected \"%s\" in \"%s\"", f->name,
			    quote(q, sizeof(q), p, (size_t)(end - p)),
			    quote(q2, sizeof(q2), s, (size_t)(end - s)));
	for (int v = lo; v <= hi; v += (int)step)
		*mask |= UINT64_C(1) << v;
	return 0;
}

/* A comma-separated list into *mask; *star when it starts with '*'. */
static int parse_field(const struct field_def *f, struct tok t, uint64_t *mask, bool *star,
		       char *err, size_t errlen)
{
	const char *s = t.s, *end = t.s + t.len;
	char q[QUOTE_MAX];

	*mask = 0;
	/* Vixie cron's rule: a day field is "restricted" unless it starts with
	 * '*', so a stepped star leaves the other day field in charge too. */
	*star = *s == '*';
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma ? comma : end;
		if (item_end == s)
			return fail(err, errlen, "%s field: empty list item in \"%s\"", f->name,
				    quote(q, sizeof(q), t.s, t.len));
		int r = parse_item(f, s, item_end, mask, err, errlen);
		if (r < 0)
			return r;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

static int parse_fields(const struct tok *toks, int n, struct cron_expr *c, char *err, size_t errlen)
{
	uint64_t masks[F_COUNT];
	bool star[F_COUNT];
	int first = n == 6 ? F_SEC : F_MIN;

	masks[F_SEC] = 1; /* five fields fire at second 0 */
	for (int i = first; i < F_COUNT; i++) {
		int r = parse_field(&fields[i], toks[i - first], &masks[i], &star[i], err, errlen);
		if (r < 0)
			return r;
	}
	masks[F_WDAY] = (masks[F_WDAY] | masks[F_WDAY] >> 7) & 0x7f; /* 7 is Sunday */
	*c = (struct cron_expr){ .second = masks[F_SEC], .minute = masks[F_MIN],
				 .hour = (uint32_t)masks[F_HOUR], .mday = (uint32_t)masks[F_MDAY],
				 .month = (uint16_t)masks[F_MONTH], .wday = (uint8_t)masks[F_WDAY],
				 .mday_star = star[F_MDAY], .wday_star = star[F_WDAY] };
	return 0;
}

/* "1h30m"-style durations; sums saturate just above the maximum. */
static int parse_duration(struct tok t, int64_t *ret)
{
	static const char units[] = "smhd";
	static const int64_t unit_ms[] = { 1000, 60000, 3600000, 86400000 };
	const char *p = t.s, *end = t.s + t.len;
	int64_t total = 0;

	while (p < end) {
		const char *digits = p;
		int64_t n = read_num(&p, end);
		if (p == digits || p == end)
			return -EINVAL;
		bool ms = end - p >= 2 && p[0] == 'm' && p[1] == 's';
		const char *u = ms ? NULL : memchr(units, *p, 4);
		if (!ms && !u)
			return -EINVAL;
		int64_t mult = ms ? 1 : unit_ms[u - units];
		p += ms ? 2 : 1;
		total = n > EVERY_MAX_MS / mult ? EVERY_MAX_MS + 1 : total + n * mult;
		if (total > EVERY_MAX_MS)
			total = EVERY_MAX_MS + 1; /* saturate: 256 bytes of "366d" must not overflow */
	}
	*ret = total;
	return 0;
}

static int parse_macro(const struct tok *toks, int n, struct cron_expr *c, char *err, size_t errlen)
{
	char q[QUOTE_MAX], q2[QUOTE_MAX];
	struct tok six[6];

	if (toks[0].len == 6 && strncasecmp(toks[0].s, "@every", 6) == 0) {
		if (n < 2)
			return fail(err, errlen, "@every: missing duration");
		if (n > 2)
			return fail(err, errlen, "@every: unexpected \"%s\" after the duration",
				    quote(q, sizeof(q), toks[2].s, toks[2].len));
		quote(q, sizeof(q), toks[1].s, toks[1].len);
		if (parse_duration(toks[1], &c->every_ms) < 0)
			return fail(err, errlen, "@every: bad duration \"%s\"", q);
		if (c->every_ms < EVERY_MIN_MS)
			return fail(err, errlen, "@every: duration \"%s\" must be at least 1s", q);
		if (c->every_ms > EVERY_MAX_MS)
			return fail(err, errlen, "@every: duration \"%s\" must be at most 366d", q);
		return 0;
	}
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (toks[0].len != strlen(macros[i].name) ||
		    strncasecmp(toks[0].s, macros[i].name, toks[0].len) != 0)
			continue;
		if (n > 1)
			return fail(err, errlen, "%s: unexpected \"%s\" after the macro", macros[i].name,
				    quote(q, sizeof(q), toks[1].s, toks[1].len));
		tokenize(macros[i].fields, six, 6);
		return parse_fields(six, 6, c, err, errlen);
	}
	return fail(err, errlen, "unknown macro \"%s\"", quote(q2, sizeof(q2), toks[0].s, toks[0].len));
}

int cron_parse(const char *expr, struct cron_expr *ret, char *err, size_t errlen)
{
	struct cron_expr c = { 0 };
	struct tok toks[7];
	int n, r;

	if (!ret)
		return fail(err, errlen, "no place to store the expression");
	if (!expr)
		return fail(err, errlen, "empty expression");
	if (strnlen(expr, CRON_MAX_LEN + 1) > CRON_MAX_LEN)
		return fail(err, errlen, "expression is longer than %d bytes", CRON_MAX_LEN);
	n = tokenize(expr, toks, 7);
	if (n == 0)
		return fail(err, errlen, "empty expression");
	if (toks[0].s[0] == '@')
		r = parse_macro(toks, n, &c, err, errlen);
	else if (n != 5 && n != 6)
		r = fail(err, errlen, "expected 5 or 6 fields, got %d", n);
	else
		r = parse_fields(toks, n, &c, err, errlen);
	if (r < 0)
		return r;
	*ret = c;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
	static const int len[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : len[m - 1];
}

/* Smallest set bit of mask in [from, max], or -1. */
static int next_bit(uint64_t mask, int from, int max)
{
	if (from > max)
		return -1;
	mask >>= from;
	if (!mask)
		return -1;
	int b = from + __builtin_ctzll(mask);
	return b <= max ? b : -1;
}

static bool day_matches(const struct cron_expr *c, int mday, int wday)
{
	bool dom = c->mday >> mday & 1, dow = c->wday >> wday & 1;

	return c->mday_star || c->wday_star ? dom && dow : dom || dow;
}

/* First matching day >= d in the month, or -1. */
static int next_day(const struct cron_expr *c, int y, int m, int d)
{
	int64_t first = days_from_civil(y, m, 1);
	int wday1 = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday */

	for (int n = days_in_month(y, m); d <= n; d++)
		if (day_matches(c, d, (wday1 + d - 1) % 7))
			return d;
	return -1;
}

/* Whether some day can ever match. Every date, Feb 29 included, falls on
 * each weekday within 400 years, so only month lengths can rule days out. */
static bool can_fire(const struct cron_expr *c)
{
	bool either = !c->mday_star && !c->wday_star;

	if (!c->second || !c->minute || !c->hour || !c->month)
		return false;
	if (either && c->wday)
		return true; /* every month has every weekday */
	for (int m = 1; m <= 12; m++)
		if ((c->month >> m & 1) && next_bit(c->mday, 1, m == 2 ? 29 : days_in_month(1, m)) > 0)
			return either || c->wday;
	return false;
}

enum { T_YEAR, T_MONTH, T_DAY, T_HOUR, T_MIN, T_SEC, T_COUNT };

/* Moves t to the start of the next unit at level: 1:00:00 after 0:59:59. */
static void carry(int *t, int level)
{
	t[level]++;
	for (int i = level + 1; i < T_COUNT; i++)
		t[i] = i <= T_DAY ? 1 : 0;
}

/* Moves t forward to value v at level, and to the start of that unit. */
static void settle(int *t, int level, int v)
{
	if (t[level] != v) {
		t[level] = v - 1;
		carry(t, level);
	}
}

/* The first matching value >= t[level] in the unit above it, or -1. */
static int next_at(const struct cron_expr *c, const int *t, int level)
{
	switch (level) {
	case T_MONTH:
		return next_bit(c->month, t[T_MONTH], 12);
	case T_DAY:
		return next_day(c, t[T_YEAR], t[T_MONTH], t[T_DAY]);
	case T_HOUR:
		return next_bit(c->hour, t[T_HOUR], 23);
	case T_MIN:
		return next_bit(c->minute, t[T_MIN], 59);
	default:
		return next_bit(c->second, t[T_SEC], 59);
	}
}

int64_t cron_next(const struct cron_expr *e, int64_t after_ms)
{
	struct cron_expr c = *e;
	int64_t sec, sod;
	int t[T_COUNT], last_year;

	if (c.every_ms > 0) {
		int64_t q = after_ms / c.every_ms - (after_ms % c.every_ms < 0);
		return q < INT64_MAX / c.every_ms - 1 ? (q + 1) * c.every_ms : -1;
	}
	/* Bits outside the fields' ranges would never match: drop them. */
	c.second &= (UINT64_C(1) << 60) - 1;
	c.minute &= (UINT64_C(1) << 60) - 1;
	c.hour &= (UINT32_C(1) << 24) - 1;
	c.mday &= ~UINT32_C(1);
	c.month &= 0x1ffe;
	c.wday &= 0x7f;
	if (!can_fire(&c))
		return -1;
	sec = after_ms / 1000 - (after_ms % 1000 < 0) + 1; /* first whole second after */
	if (sec < MIN_SEC)
		sec = MIN_SEC;
	if (sec >= days_from_civil(MAX_YEAR + 1, 1, 1) * 86400)
		return -1;
	sod = (sec % 86400 + 86400) % 86400;
	civil_from_days((sec - sod) / 86400, &t[T_YEAR], &t[T_MONTH], &t[T_DAY]);
	t[T_HOUR] = (int)(sod / 3600);
	t[T_MIN] = (int)(sod / 60 % 60);
	t[T_SEC] = (int)(sod % 60);
	last_year = t[T_YEAR] + SEARCH_YEARS < MAX_YEAR ? t[T_YEAR] + SEARCH_YEARS : MAX_YEAR;
	/* From the month down, each field settles on its next match or, having
	 * none left, carries into the unit above (resetting those below) and
	 * that unit is looked at again. So months, days, hours and minutes
	 * that cannot match are skipped whole; a month or hour pushed past its
	 * end finds no match and carries in turn. */
	for (int level = T_MONTH; t[T_YEAR] <= last_year;) {
		int v = next_at(&c, t, level);
		if (v < 0) {
			carry(t, level - 1);
			level = level - 1 > T_YEAR ? level - 1 : T_MONTH;
		} else if (level < T_SEC) {
			settle(t, level++, v);
		} else {
			return (days_from_civil(t[T_YEAR], t[T_MONTH], t[T_DAY]) * 86400 +
				t[T_HOUR] * 3600 + t[T_MIN] * 60 + v) * 1000;
		}
	}
	return -1;
}
