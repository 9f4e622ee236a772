/* SPDX-License-Identifier: MIT */
/* Unit tests of the gateway's parsers: HTTP requests (pipelining, limits,
 * decoding), routes, query parameters, job validation, feed rows and
 * snapshots. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "feed.h"
#include "json.h"
#include "metrics.h"
#include "request.h"
#include "validate.h"

static size_t feed_all(struct request_parser *rp, const char *s)
{
	return request_parser_feed(rp, s, strlen(s));
}

static void test_pipelined_requests_one_at_a_time(void **state)
{
	const char *two = "GET /api/jobs?limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n"
			  "POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			  "Content-Length: 15\r\n\r\n{\"kind\":\"noop\"}";
	struct request_parser rp;
	size_t n;

	request_parser_init(&rp, 16384, 65536);
	n = feed_all(&rp, two);
	assert_true(rp.complete);
	assert_true(n < strlen(two));
	assert_int_equal(rp.req.method, HTTP_GET);
	assert_string_equal(rp.req.path, "/api/jobs");
	assert_string_equal(rp.req.query, "limit=2");
	assert_string_equal(rp.req.authorization, "Bearer abc");
	assert_true(request_keep_alive(&rp));
	request_parser_next(&rp);
	n += request_parser_feed(&rp, two + n, strlen(two) - n);
	assert_int_equal(n, strlen(two));
	assert_true(rp.complete);
	assert_int_equal(rp.req.method, HTTP_POST);
	assert_string_equal(rp.req.content_type, "application/json");
	assert_string_equal(rp.req.body, "{\"kind\":\"noop\"}");
	request_parser_free(&rp);
}

static void test_byte_by_byte_and_chunked_body(void **state)
{
	const char *req = "POST /api/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
	struct request_parser rp;

	request_parser_init(&rp, 16384, 65536);
	for (size_t i = 0; req[i] && !rp.complete; i++)
		assert_int_equal(request_parser_feed(&rp, req + i, 1), 1);
	assert_true(rp.complete);
	assert_string_equal(rp.req.body, "{\"a\":1}");
	request_parser_free(&rp);
}

static void test_limits(void **state)
{
	struct request_parser rp;
	char big[3000];

	request_parser_init(&rp, 16384, 10);
	feed_all(&rp, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
	assert_int_equal(rp.error_status, 413);
	request_parser_free(&rp);

	request_parser_init(&rp, 16384, 10);
	feed_all(&rp, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n");
	assert_int_equal(rp.error_status, 413);
	request_parser_free(&rp);

	request_parser_init(&rp, 1024, 10);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	feed_all(&rp, "GET / HTTP/1.1\r\nX-Big: ");
	feed_all(&rp, big);
	assert_int_equal(rp.error_status, 431);
	request_parser_free(&rp);

	request_parser_init(&rp, 1024, 10);
	feed_all(&rp, "GARBAGE\r\n\r\n");
	assert_int_equal(rp.error_status, 400);
	request_parser_free(&rp);
}

static void test_path_decoding_and_expect(void **state)
{
	struct request_parser rp;

	request_parser_init(&rp, 16384, 65536);
	feed_all(&rp, "POST /api/queues/a%2Eb/pause HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
	assert_true(rp.expect_continue);
	assert_false(rp.complete);
	feed_all(&rp, "{}");
	assert_true(rp.complete);
	assert_string_equal(rp.req.path, "/api/queues/a.b/pause");
	request_parser_next(&rp);
	feed_all(&rp, "GET /a%00b HTTP/1.1\r\n\r\n");
	assert_int_equal(rp.error_status, 400);
	request_parser_free(&rp);
}

static void test_query_params(void **state)
{
	char buf[16];

	assert_int_equal(http_query_param("a=1&queue=x%2By+z&b", "queue", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "x+y z");
	assert_int_equal(http_query_param("a=1&b", "b", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "");
	assert_int_equal(http_query_param("ab=1", "a", buf, sizeof(buf)), 0);
	assert_int_equal(http_query_param("a=%zz", "a", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(http_query_param("a=%4", "a", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(http_query_param("a=0123456789abcdefg", "a", buf, sizeof(buf)), -E2BIG);
}

static void test_routes(void **state)
{
	char *seg = NULL;

	assert_true(api_route_find(HTTP_GET, "/api/jobs", &seg) >= 0);
	assert_null(seg);
	assert_true(api_route_find(HTTP_POST, "/api/jobs/batch", &seg) >= 0);
	assert_null(seg);
	assert_true(api_route_find(HTTP_POST, "/api/jobs/42/cancel", &seg) >= 0);
	assert_string_equal(seg, "42");
	free(seg);
	assert_true(api_route_find(HTTP_POST, "/api/queues/mail/resume", &seg) >= 0);
	assert_string_equal(seg, "mail");
	free(seg);
	assert_int_equal(api_route_find(HTTP_DELETE, "/api/jobs", &seg), -EPERM);
	assert_int_equal(api_route_find(HTTP_GET, "/api/nothing", &seg), -ENOENT);
	assert_int_equal(api_route_find(HTTP_GET, "/api/jobs/", &seg), -ENOENT);
	assert_int_equal(api_route_find(HTTP_GET, "/api/jobs/1/cancel/x", &seg), -ENOENT);
}

static int check(const char *json, struct problem *p)
{
	cJSON *v = cJSON_Parse(json);
	int rc;

	assert_non_null(v);
	rc = validate_job(v, 0, p);
	cJSON_Delete(v);
	return rc;
}

static void test_validate_job(void **state)
{
	struct problem p;

	assert_int_equal(check("{\"kind\":\"noop\",\"payload\":{},\"queue\":\"q.1\",\"priority\":-5,"
			       "\"run_at\":\"2026-11-27T12:00:00.5+01:00\",\"max_attempts\":3,\"depends_on\":[1,2],"
			       "\"unique_key\":\"k\",\"timeout_ms\":10,\"backoff_base_ms\":0,\"trigger\":\"all_done\"}",
			       &p),
			 0);
	assert_int_equal(check("{}", &p), -EINVAL);
	assert_string_equal(p.field, "kind");
	assert_int_equal(check("{\"kind\":\"Noop\"}", &p), -EINVAL);
	assert_string_equal(p.field, "kind");
	assert_int_equal(check("{\"kind\":\"noop\",\"prority\":1}", &p), -EINVAL);
	assert_string_equal(p.field, "prority");
	assert_string_equal(p.message, "unknown field");
	assert_int_equal(check("{\"kind\":\"noop\",\"priority\":1.5}", &p), -EINVAL);
	assert_string_equal(p.field, "priority");
	assert_int_equal(check("{\"kind\":\"noop\",\"max_attempts\":0}", &p), -EINVAL);
	assert_int_equal(check("{\"kind\":\"noop\",\"payload\":[]}", &p), -EINVAL);
	assert_string_equal(p.field, "payload");
	assert_int_equal(check("{\"kind\":\"noop\",\"run_at\":\"tomorrow\"}", &p), -EINVAL);
	assert_string_equal(p.field, "run_at");
	assert_int_equal(check("{\"kind\":\"noop\",\"run_at\":\"2026-11-27T12:00:00Z\",\"delay_ms\":5}", &p), -EINVAL);
	assert_int_equal(validate_rfc3339("2028-02-29T23:59:60.5-08:00"), 0);
	assert_int_equal(validate_rfc3339("2026-02-29T10:00:00Z"), -EINVAL);
	assert_int_equal(validate_rfc3339("2026-13-01T10:00:00Z"), -EINVAL);
	assert_int_equal(validate_rfc3339("2026-11-27T25:00:00Z"), -EINVAL);
	assert_int_equal(validate_rfc3339("2026-11-27T12:61:00Z"), -EINVAL);
	assert_int_equal(validate_rfc3339("2026-11-27T12:00:00"), -EINVAL);
	assert_int_equal(check("{\"kind\":\"noop\",\"depends_on\":[0]}", &p), -EINVAL);
	assert_string_equal(p.field, "depends_on");
	assert_int_equal(check("{\"kind\":\"noop\",\"trigger\":\"sometimes\"}", &p), -EINVAL);
}

static void test_validate_batch_and_workflow(void **state)
{
	cJSON *v = cJSON_Parse("{\"jobs\":[{\"kind\":\"a\"},{\"kind\":\"b\",\"queue\":\"BAD\"}]}");
	struct problem p;

	assert_int_equal(validate_batch(v, 10, &p), -EINVAL);
	assert_string_equal(p.field, "jobs[1].queue");
	cJSON_Delete(v);
	v = cJSON_Parse("{\"jobs\":[1]}");
	assert_int_equal(validate_batch(v, 10, &p), -EINVAL);
	assert_string_equal(p.field, "jobs[0]");
	cJSON_Delete(v);
	v = cJSON_Parse("{\"name\":\"w\",\"jobs\":[{\"key\":\"a\",\"kind\":\"x\"},"
			"{\"key\":\"b\",\"kind\":\"x\",\"depends_on\":[\"a\"]}]}");
	assert_int_equal(validate_workflow(v, 10, &p), 0);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"jobs\":[{\"kind\":\"x\"}]}");
	assert_int_equal(validate_workflow(v, 10, &p), -EINVAL);
	assert_string_equal(p.field, "jobs[0].key");
	cJSON_Delete(v);
}

struct collected {
	int n;
	uint64_t ids[8];
	char states[8][16];
};

static void collect(const struct feed_event *ev, void *arg)
{
	struct collected *c = arg;

	c->ids[c->n] = ev->id;
	snprintf(c->states[c->n], sizeof(c->states[0]), "%s", ev->type == FEED_JOB ? ev->job->state : "-");
	c->n++;
}

static void test_feed_rows(void **state)
{
	struct collected c = { 0 };
	uint64_t xid = 0, k = 0;

	assert_int_equal(feed_decode_row("7", "t", "jobs",
					 "[[1,\"q\",\"k\",\"ready\",0,0,null,null,null,null],"
					 "[2,\"q\",\"k\",\"running\",1,0,5,null,\"ready\",3]]",
					 &xid, &k, collect, &c),
			 2);
	assert_int_equal(feed_decode_row("7", "t", "worker", "{\"id\":\"w\"}", &xid, &k, collect, &c), 1);
	assert_int_equal(feed_decode_row("9", "t", "jobs", "[[3,\"q\",\"k\",\"dead\",4,0,null,\"boom\",\"running\",1]]",
					 &xid, &k, collect, &c),
			 1);
	assert_int_equal(c.n, 4);
	assert_true(c.ids[0] == ((uint64_t)7 << FEED_ID_SHIFT));
	assert_true(c.ids[2] == ((uint64_t)7 << FEED_ID_SHIFT) + 2);
	assert_true(c.ids[3] == ((uint64_t)9 << FEED_ID_SHIFT));
	assert_string_equal(c.states[1], "running");
	assert_int_equal(feed_decode_row("x", "t", "jobs", "[]", &xid, &k, collect, &c), -EINVAL);
	assert_int_equal(feed_decode_row("9", "t", "jobs", "[[1,\"q\",\"k\",\"ready\",0,0,null,null,null,null]"
					 "[2,\"q\",\"k\",\"ready\",0,0,null,null,null,null]]", &xid, &k, collect, &c),
			 -EINVAL); /* no comma between elements */
	assert_int_equal(feed_decode_row("9", "t", "jobs", "[[1,\"q\",\"k\"]]", &xid, &k, collect, &c), -EINVAL);
	assert_int_equal(feed_decode_row("9", "t", "jobs", " [ ] ", &xid, &k, collect, &c), 0);
	assert_int_equal(feed_decode_row("9", "t", "jobs", "{", &xid, &k, collect, &c), -EINVAL);
}

static void keep_error(const struct feed_event *ev, void *arg)
{
	snprintf(arg, 64, "%s", ev->job->error);
}

static void test_feed_row_strings(void **state)
{
	char error[64] = "";
	uint64_t xid = 0, k = 0;

	assert_int_equal(feed_decode_row("1", "t", "jobs",
					 "[[1, \"q\", \"k\", \"dead\", 1, 0, null, "
					 "\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\", \"running\", 5]]",
					 &xid, &k, keep_error, error),
			 1);
	assert_string_equal(error, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(feed_decode_row("1", "t", "jobs", "[[1,\"q\",\"k\",\"dead\",1,0,null,\"\\u0000\",null,null]]",
					 &xid, &k, keep_error, error),
			 -EINVAL);
}

static void test_snapshot(void **state)
{
	struct pg_snapshot_info s;

	assert_int_equal(metrics_parse_snapshot("10:20:12,15", &s), 0);
	assert_true(metrics_snapshot_sees(&s, 9));
	assert_true(metrics_snapshot_sees(&s, 11));
	assert_false(metrics_snapshot_sees(&s, 12));
	assert_false(metrics_snapshot_sees(&s, 20));
	free(s.xip);
	assert_int_equal(metrics_parse_snapshot("10:20:", &s), 0);
	assert_int_equal(s.nxip, 0);
	assert_int_equal(metrics_parse_snapshot("10-20", &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_requests_one_at_a_time),
		cmocka_unit_test(test_byte_by_byte_and_chunked_body),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_path_decoding_and_expect),
		cmocka_unit_test(test_query_params),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_validate_job),
		cmocka_unit_test(test_validate_batch_and_workflow),
		cmocka_unit_test(test_feed_rows),
		cmocka_unit_test(test_feed_row_strings),
		cmocka_unit_test(test_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
