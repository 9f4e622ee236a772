/* SPDX-License-Identifier: MIT */
/* Unit tests: the handler registry and the synchronous kinds' outcomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"

static struct job_outcome last;
static int reports;
static char last_error[256];

static void record(struct job *job, struct job_outcome *o)
{
	reports++;
	last = *o;
	snprintf(last_error, sizeof(last_error), "%s", o->error ? o->error : "");
	last.error = last_error;
	cJSON_Delete(o->result);
	last.result = NULL;
}

static int run(const char *kind, const char *payload)
{
	struct config cfg = { 0 };
	struct rng r;
	struct job_env env = { .loop = NULL, .cfg = &cfg, .rng = &r, .finished = record };
	struct job job = { .env = &env, .id = 1, .attempt = 1, .max_attempts = 4 };

	rng_seed(&r, 1);
	job.handler = handler_lookup(kind);
	assert_non_null(job.handler);
	job.payload = cJSON_Parse(payload);
	reports = 0;
	job.handler->start(&job);
	cJSON_Delete(job.payload);
	return reports;
}

static void test_lookup(void **state)
{
	const char *kinds[] = { "noop", "sleep", "fail", "email" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct handler *h = handler_lookup(kinds[i]);
		assert_non_null(h);
		assert_string_equal(h->kind, kinds[i]);
		assert_non_null(h->start);
	}
	assert_null(handler_lookup("nope"));
	assert_null(handler_lookup(""));
}

static void test_kinds_are_unique(void **state)
{
	for (int i = 0; handlers[i]; i++)
		for (int j = i + 1; handlers[j]; j++)
			assert_string_not_equal(handlers[i]->kind, handlers[j]->kind);
}

static void test_noop_succeeds_at_once(void **state)
{
	assert_int_equal(run("noop", "{}"), 1);
	assert_true(last.ok);
}

static void test_fail_outcomes(void **state)
{
	assert_int_equal(run("fail", "{\"message\":\"boom\",\"retryable\":false}"), 1);
	assert_false(last.ok);
	assert_false(last.retryable);
	assert_string_equal(last.error, "boom");

	assert_int_equal(run("fail", "{\"retry_after_ms\":1500}"), 1);
	assert_true(last.retryable);
	assert_int_equal(last.retry_after_ms, 1500);

	assert_int_equal(run("fail", "{\"retryable\":\"yes\"}"), 1);
	assert_false(last.retryable);
	assert_string_equal(last.error, "payload: retryable must be true or false");
}

static void test_bad_payloads_are_not_retryable(void **state)
{
	assert_int_equal(run("sleep", "{}"), 1);
	assert_false(last.retryable);
	assert_string_equal(last.error, "payload: ms is required");

	assert_int_equal(run("email", "{\"to\":\"a@b\",\"subject\":\"s\"}"), 1);
	assert_false(last.retryable);
	assert_string_equal(last.error, "payload: body is required");

	assert_int_equal(run("email", "{\"to\":\"nobody\",\"subject\":\"s\",\"body\":\"b\"}"), 1);
	assert_string_equal(last.error, "payload: to must be an email address");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_kinds_are_unique),
		cmocka_unit_test(test_noop_succeeds_at_once),
		cmocka_unit_test(test_fail_outcomes),
		cmocka_unit_test(test_bad_payloads_are_not_retryable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
