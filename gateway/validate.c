/* SPDX-License-Identifier: MIT */
/* Request body validation (mirrors jobwheel._job_problem in SQL, so a bad
 * field is named before the database is asked). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "validate.h"

static int fail(struct problem *p, const char *prefix, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct problem *p, const char *prefix, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(p->field, sizeof(p->field), "%s%s", prefix, field);
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool is_int_in(const cJSON *v, double lo, double hi)
{
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
	       v->valuedouble <= hi;
}

/* Reads n digits as a number; -1 if they are not all digits. */
static int number(const char **s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*s)[i]))
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	return v;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int validate_rfc3339(const char *s)
{
	int year, month, day, hour, minute, second;

	if ((year = number(&s, 4)) < 1 || *s++ != '-' || (month = number(&s, 2)) < 1 || month > 12 ||
	    *s++ != '-' || (day = number(&s, 2)) < 1 || day > days_in_month(year, month))
		return -EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	if ((hour = number(&s, 2)) < 0 || hour > 23 || *s++ != ':' || (minute = number(&s, 2)) < 0 || minute > 59 ||
	    *s++ != ':' || (second = number(&s, 2)) < 0 || second > 60)
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z')
		return s[1] ? -EINVAL : 0;
	if (*s != '+' && *s != '-')
		return -EINVAL;
	s++;
	if ((hour = number(&s, 2)) < 0 || hour > 15 || *s++ != ':' || (minute = number(&s, 2)) < 0 || minute > 59)
		return -EINVAL;
	return *s ? -EINVAL : 0;
}

struct int_field {
	const char *name;
	double lo, hi;
};

static const struct int_field int_fields[] = {
	{ "priority", -2147483648.0, 2147483647.0 },
	{ "max_attempts", 1, 1000 },
	{ "timeout_ms", 1, 2147483647.0 },
	{ "backoff_base_ms", 0, 3600000 },
	{ "delay_ms", 0, 315360000000.0 },
};

static const char *const job_fields[] = { "kind", "payload", "queue", "priority", "run_at", "delay_ms",
					  "max_attempts", "depends_on", "unique_key", "timeout_ms",
					  "backoff_base_ms", "trigger", NULL };

static int check_job(const cJSON *job, int in_workflow, const char *prefix, struct problem *p)
{
	const cJSON *f, *v;

	if (!cJSON_IsObject(job))
		return fail(p, prefix, in_workflow ? "" : "", "must be a JSON object");
	cJSON_ArrayForEach(f, job) {
		bool known = in_workflow && !strcmp(f->string, "key");
		for (int i = 0; !known && job_fields[i]; i++)
			known = !strcmp(f->string, job_fields[i]);
		if (!known)
			return fail(p, prefix, f->string, "unknown field");
	}
	v = cJSON_GetObjectItemCaseSensitive(job, "kind");
	if (!v)
		return fail(p, prefix, "kind", "is required");
	if (!cJSON_IsString(v) || !name_valid(v->valuestring))
		return fail(p, prefix, "kind", "must be a name of 1-64 of a-z 0-9 _ . -");
	v = cJSON_GetObjectItemCaseSensitive(job, "queue");
	if (v && (!cJSON_IsString(v) || !name_valid(v->valuestring)))
		return fail(p, prefix, "queue", "must be a name of 1-64 of a-z 0-9 _ . -");
	v = cJSON_GetObjectItemCaseSensitive(job, "payload");
	if (v && !cJSON_IsObject(v))
		return fail(p, prefix, "payload", "must be a JSON object");
	for (size_t i = 0; i < ARRAY_SIZE(int_fields); i++) {
		v = cJSON_GetObjectItemCaseSensitive(job, int_fields[i].name);
		if (v && !cJSON_IsNull(v) && !is_int_in(v, int_fields[i].lo, int_fields[i].hi))
			return fail(p, prefix, int_fields[i].name, "must be an integer in %.0f..%.0f", int_fields[i].lo,
				    int_fields[i].hi);
	}
	v = cJSON_GetObjectItemCaseSensitive(job, "run_at");
	if (v && !cJSON_IsNull(v)) {
		if (cJSON_GetObjectItemCaseSensitive(job, "delay_ms"))
			return fail(p, prefix, "run_at", "give run_at or delay_ms, not both");
		if (!cJSON_IsString(v) || validate_rfc3339(v->valuestring) < 0)
			return fail(p, prefix, "run_at", "must be an RFC 3339 timestamp (2026-11-27T12:00:00Z)");
	}
	v = cJSON_GetObjectItemCaseSensitive(job, "trigger");
	if (v && (!cJSON_IsString(v) || (strcmp(v->valuestring, "all_success") && strcmp(v->valuestring, "all_done"))))
		return fail(p, prefix, "trigger", "must be all_success or all_done");
	v = cJSON_GetObjectItemCaseSensitive(job, "unique_key");
	if (v && !cJSON_IsNull(v) && (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 255))
		return fail(p, prefix, "unique_key", "must be a string of 1-255 bytes");
	if (in_workflow) {
		v = cJSON_GetObjectItemCaseSensitive(job, "key");
		if (!v)
			return fail(p, prefix, "key", "is required");
		if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 128 ||
		    strpbrk(v->valuestring, " \t\r\n"))
			return fail(p, prefix, "key", "must be a string of 1-128 characters without spaces");
	}
	v = cJSON_GetObjectItemCaseSensitive(job, "depends_on");
	if (v && !cJSON_IsNull(v)) {
		const cJSON *d;
		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 10000)
			return fail(p, prefix, "depends_on", "must be an array of at most 10000 %s",
				    in_workflow ? "keys" : "job ids");
		cJSON_ArrayForEach(d, v) {
			if (in_workflow ? !cJSON_IsString(d) : !is_int_in(d, 1, 9007199254740991.0))
				return fail(p, prefix, "depends_on", "must hold %s",
					    in_workflow ? "keys (strings)" : "job ids (positive integers)");
		}
	}
	return 0;
}

int validate_job(const cJSON *job, int in_workflow, struct problem *ret)
{
	return check_job(job, in_workflow, "", ret);
}

static int check_jobs_array(const cJSON *body, int max_jobs, int in_workflow, struct problem *ret)
{
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(body, "jobs"), *j;
	int i = 0;

	if (!jobs)
		return fail(ret, "", "jobs", "is required");
	if (!cJSON_IsArray(jobs) || cJSON_GetArraySize(jobs) < 1 || cJSON_GetArraySize(jobs) > max_jobs)
		return fail(ret, "", "jobs", "must be an array of 1-%d job objects", max_jobs);
	cJSON_ArrayForEach(j, jobs) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "jobs[%d].", i++);
		if (check_job(j, in_workflow, prefix, ret) < 0) {
			if (!cJSON_IsObject(j)) /* "jobs[3]." -> "jobs[3]" */
				ret->field[strlen(ret->field) - 1] = '\0';
			return -EINVAL;
		}
	}
	return 0;
}

int validate_batch(const cJSON *body, int max_jobs, struct problem *ret)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, body) {
		if (strcmp(f->string, "jobs"))
			return fail(ret, "", f->string, "unknown field");
	}
	return check_jobs_array(body, max_jobs, 0, ret);
}

int validate_workflow(const cJSON *spec, int max_jobs, struct problem *ret)
{
	const cJSON *f, *name = cJSON_GetObjectItemCaseSensitive(spec, "name");

	cJSON_ArrayForEach(f, spec) {
		if (strcmp(f->string, "jobs") && strcmp(f->string, "name"))
			return fail(ret, "", f->string, "unknown field");
	}
	if (name && !cJSON_IsNull(name) && (!cJSON_IsString(name) || strlen(name->valuestring) > 200))
		return fail(ret, "", "name", "must be a string of at most 200 bytes");
	return check_jobs_array(spec, max_jobs, 1, ret);
}
