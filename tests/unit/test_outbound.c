/* SPDX-License-Identifier: MIT */
/* Unit tests: outbound outcome classification, Retry-After, the address policy and webhook signatures. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "addr_policy.h"
#include "classify.h"
#include "signing.h"

static void test_classify_statuses(void **state)
{
	static const long retryable[] = { 408, 425, 429, 500, 502, 503, 504 };
	static const long permanent[] = { 400, 401, 403, 404, 405, 409, 410, 413, 422, 501, 505, 599, 301, 304 };

	(void)state;
	for (long s = 200; s < 300; s++)
		assert_int_equal(classify_transfer(CURLE_OK, s), OUTCOME_OK);
	for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++) {
		assert_true(classify_status_retryable(retryable[i]));
		assert_int_equal(classify_transfer(CURLE_OK, retryable[i]), OUTCOME_RETRYABLE);
	}
	for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
		assert_false(classify_status_retryable(permanent[i]));
		assert_int_equal(classify_transfer(CURLE_OK, permanent[i]), OUTCOME_PERMANENT);
	}
}

static void test_classify_curl_codes(void **state)
{
	static const CURLcode retryable[] = {
		CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
		CURLE_OPERATION_TIMEDOUT,   CURLE_SEND_ERROR,            CURLE_RECV_ERROR,
		CURLE_GOT_NOTHING,          CURLE_PARTIAL_FILE,          CURLE_SSL_CONNECT_ERROR,
		CURLE_HTTP2,                CURLE_HTTP2_STREAM,
	};
	static const CURLcode permanent[] = {
		CURLE_URL_MALFORMAT,  CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION,
		CURLE_SSL_CACERT_BADFILE, CURLE_TOO_MANY_REDIRECTS, CURLE_BAD_CONTENT_ENCODING,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++)
		assert_int_equal(classify_transfer(retryable[i], 0), OUTCOME_RETRYABLE);
	for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
		assert_int_equal(classify_transfer(permanent[i], 0), OUTCOME_PERMANENT);
}

static void test_retry_after_seconds(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(retry_after_parse("3", 0, &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(retry_after_parse(" 120 ", 0, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(retry_after_parse("0", 0, &ms), 0);
	assert_int_equal(ms, 0);
	ms = 42;
	assert_int_equal(retry_after_parse("-1", 0, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("abc", 0, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("", 0, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("3s", 0, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("99999999999999999999", 0, &ms), -EINVAL);
	assert_int_equal(ms, 42); /* untouched on failure */
}

static void test_retry_after_dates(void **state)
{
	/* 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example). */
	const time_t when = 784111777;
	int64_t ms = -1;

	(void)state;
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when - 90, &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", when - 5, &ms), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(retry_after_parse("Sun Nov  6 08:49:37 1994", when - 1, &ms), 0);
	assert_int_equal(ms, 1000);
	/* A date in the past means "now". */
	ms = -1;
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when + 3600, &ms), 0);
	assert_int_equal(ms, 0);
	ms = -1;
	assert_int_equal(retry_after_parse("Sun Nov  6 08:49:37 1994", when + 1, &ms), 0);
	assert_int_equal(ms, 0);
	/* Not GMT, a bad month, a bad hour. */
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 CET", when, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", when, &ms), -EINVAL);
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 25:49:37 GMT", when, &ms), -EINVAL);
}

static struct sockaddr_storage sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static void test_special_addresses(void **state)
{
	static const char *const special[] = { "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
					       "::1",       "fe80::1",  "fc00::1",    "::ffff:127.0.0.1", "0.0.0.0",
					       "100.64.0.1", "::ffff:169.254.169.254" };
	static const char *const public[] = { "8.8.8.8", "2001:4860::8888", "1.1.1.1", "172.32.0.1", "::ffff:8.8.8.8" };

	(void)state;
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		struct sockaddr_storage ss = sa_of(special[i]);
		if (!addr_is_special((struct sockaddr *)&ss))
			fail_msg("%s should be special", special[i]);
	}
	for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++) {
		struct sockaddr_storage ss = sa_of(public[i]);
		if (addr_is_special((struct sockaddr *)&ss))
			fail_msg("%s should not be special", public[i]);
	}
}

static bool allows(const struct addr_policy *p, const char *host, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);

	return addr_policy_allows(p, host, (struct sockaddr *)&ss);
}

static void test_allow_lists(void **state)
{
	struct addr_policy *p = NULL;
	char err[256] = "";

	(void)state;
	/* Empty: public only. */
	assert_int_equal(addr_policy_parse("", &p, err, sizeof(err)), 0);
	assert_true(allows(p, "example.com", "8.8.8.8"));
	assert_false(allows(p, "127.0.0.1", "127.0.0.1"));
	assert_false(allows(p, "metadata", "169.254.169.254"));
	addr_policy_free(p);
	p = NULL;

	assert_int_equal(addr_policy_parse("127.0.0.1, 10.0.0.0/8 ,fd00::/8,hooks.internal", &p, err, sizeof(err)), 0);
	assert_true(allows(p, "127.0.0.1", "127.0.0.1"));
	assert_false(allows(p, "127.0.0.2", "127.0.0.2")); /* a single IP is a /32 */
	assert_true(allows(p, NULL, "::ffff:127.0.0.1"));  /* IPv4-mapped counts as IPv4 */
	assert_true(allows(p, "x", "10.200.3.4"));
	assert_true(allows(p, "x", "11.0.0.1")); /* public anyway */
	assert_false(allows(p, "x", "192.168.1.1"));
	assert_true(allows(p, "x", "fd12::1"));
	assert_false(allows(p, "x", "fc00::1"));
	assert_true(allows(p, "hooks.internal", "192.168.7.7")); /* a name entry covers what it resolves to */
	assert_true(allows(p, "HOOKS.INTERNAL", "192.168.7.7"));
	assert_false(allows(p, "other.internal", "192.168.7.7"));
	assert_false(allows(p, NULL, "169.254.169.254"));
	assert_true(allows(p, "anything", "8.8.8.8"));
	addr_policy_free(p);
	p = NULL;

	assert_int_equal(addr_policy_parse("169.254.0.0/16", &p, err, sizeof(err)), 0);
	assert_true(allows(p, NULL, "169.254.169.254"));
	addr_policy_free(p);
	addr_policy_free(NULL);
}

static void test_allow_list_errors(void **state)
{
	static const char *const bad[] = { "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x", "bad_host!", "a b" };
	struct addr_policy *p = NULL;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char list[128];
		snprintf(list, sizeof(list), "127.0.0.1,%s", bad[i]);
		err[0] = '\0';
		assert_int_equal(addr_policy_parse(list, &p, err, sizeof(err)), -EINVAL);
		assert_null(p);
		if (!strstr(err, bad[i]))
			fail_msg("the error for %s does not name it: %s", bad[i], err);
		assert_non_null(strstr(err, "http.allow"));
	}
}

static void test_signing_vector(void **state)
{
	/* Expected values computed with:
	 * python3 -c "import hmac,hashlib;print(hmac.new(b'whsec_test',
	 *   b'1700000000.{\"hello\":\"world\"}',hashlib.sha256).hexdigest())"
	 * and the same with the message b'1700000000.' (an empty body). */
	const char *body = "{\"hello\":\"world\"}";
	char out[128];

	(void)state;
	assert_int_equal(signing_header_value("whsec_test", 10, 1700000000, body, strlen(body), out, sizeof(out)), 0);
	assert_string_equal(out, "t=1700000000,v1=f592bbf3951cfc94e560eecfb5d9dd4da6b0fff2e626235f8ab4b54860925d0b");
	assert_int_equal(signing_header_value("whsec_test", 10, 1700000000, "", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "t=1700000000,v1=5967f3c560522fa40cf2876ebc3c3a08551dd6959aaade3b413460591895bdcc");
	/* Too small a buffer: refused, not truncated. */
	assert_int_equal(signing_header_value("whsec_test", 10, 1700000000, "", 0, out, 40), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_statuses),  cmocka_unit_test(test_classify_curl_codes),
		cmocka_unit_test(test_retry_after_seconds), cmocka_unit_test(test_retry_after_dates),
		cmocka_unit_test(test_special_addresses),  cmocka_unit_test(test_allow_lists),
		cmocka_unit_test(test_allow_list_errors),  cmocka_unit_test(test_signing_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
