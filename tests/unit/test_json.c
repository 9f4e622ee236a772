/* SPDX-License-Identifier: MIT */
/* Unit tests: JSON helpers and PostgreSQL array literals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "strbuf.h"

static cJSON *parse(const char *s)
{
	cJSON *v = NULL;
	char err[128];

	assert_int_equal(json_parse_object(s, strlen(s), 64, &v, err, sizeof(err)), 0);
	return v;
}

static void test_parse_rejects_with_reason(void **state)
{
	cJSON *v = NULL;
	char err[128];

	assert_int_equal(json_parse_object("{\"a\":", 5, 64, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not valid JSON"));
	assert_int_equal(json_parse_object("[1]", 3, 64, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "must be a JSON object");
	assert_int_equal(json_parse_object("{} {}", 5, 64, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not valid JSON at offset 3 (after the value)");
	assert_int_equal(json_parse_object("{\"a\":\"\0\"}", 9, 64, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_int_equal(json_parse_object(" {} \n", 5, 64, &v, err, sizeof(err)), 0);
	cJSON_Delete(v);
}

static void test_depth_limit(void **state)
{
	char deep[300];
	cJSON *v = NULL;
	char err[128];
	size_t n = 0;

	deep[n++] = '{';
	deep[n++] = '"';
	deep[n++] = 'a';
	deep[n++] = '"';
	deep[n++] = ':';
	for (int i = 0; i < 64; i++)
		deep[n++] = '[';
	for (int i = 0; i < 64; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_int_equal(json_parse_object(deep, n, 64, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "nested deeper than 64");
	assert_int_equal(json_parse_object(deep, n, 65, &v, err, sizeof(err)), 0);
	assert_int_equal(json_depth(v), 65);
	cJSON_Delete(v);
}

static void test_typed_fields(void **state)
{
	cJSON *v = parse("{\"s\":\"x\",\"i\":42,\"f\":1.5,\"b\":true,\"n\":null}");
	const char *s = NULL;
	int64_t i = 0;
	bool b = false;
	char err[128];

	assert_int_equal(json_get_string(v, "s", true, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "x");
	assert_int_equal(json_get_int(v, "i", true, 0, 100, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 42);
	assert_int_equal(json_get_bool(v, "b", true, &b, err, sizeof(err)), 0);
	assert_true(b);

	assert_int_equal(json_get_int(v, "f", true, 0, 100, &i, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f must be an integer");
	assert_int_equal(json_get_int(v, "i", true, 0, 10, &i, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "i must be between 0 and 10");
	assert_int_equal(json_get_string(v, "i", true, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "i must be a string");
	assert_int_equal(json_get_bool(v, "s", true, &b, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "s must be true or false");
	/* null and absent are the same: missing */
	assert_int_equal(json_get_string(v, "n", true, &s, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "n is required");
	s = "untouched";
	assert_int_equal(json_get_string(v, "zz", false, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "untouched");
	cJSON_Delete(v);
}

static void test_pgarray_literals(void **state)
{
	struct strbuf b = { 0 };

	pgarray_begin(&b);
	pgarray_end(&b);
	assert_string_equal(strbuf_str(&b), "{}");

	pgarray_begin(&b);
	pgarray_add_int(&b, 1);
	pgarray_add_int(&b, -9007199254740993LL);
	pgarray_end(&b);
	assert_string_equal(strbuf_str(&b), "{1,-9007199254740993}");

	pgarray_begin(&b);
	pgarray_add_text(&b, "a\"b\\c");
	pgarray_add_text(&b, NULL);
	pgarray_add_text(&b, "");
	pgarray_add_text(&b, "{\"k\": [1, 2]}");
	pgarray_end(&b);
	assert_string_equal(strbuf_str(&b), "{\"a\\\"b\\\\c\",NULL,\"\",\"{\\\"k\\\": [1, 2]}\"}");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rejects_with_reason),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_typed_fields),
		cmocka_unit_test(test_pgarray_literals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
