/* SPDX-License-Identifier: MIT */
/* Unit tests: LLM provider request bodies, response parsing and the circuit breaker. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "breaker.h"
#include "llm_provider.h"

static int parse(enum llm_api api, const char *body, char **text, cJSON **usage, char *err, size_t errlen)
{
	*text = NULL;
	*usage = NULL;
	return llm_response_parse(api, body, strlen(body), text, usage, err, errlen);
}

static double usage_num(const cJSON *u, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, key);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void test_gemini_text_and_usage(void **state)
{
	char *text, err[256];
	cJSON *usage;

	(void)state;
	assert_int_equal(parse(LLM_API_GEMINI,
			       "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello\"},"
			       "{\"text\":\", world\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":"
			       "{\"promptTokenCount\":7,\"candidatesTokenCount\":3,\"totalTokenCount\":10}}",
			       &text, &usage, err, sizeof(err)),
			 0);
	assert_string_equal(text, "Hello, world");
	assert_true(usage_num(usage, "prompt_tokens") == 7);
	assert_true(usage_num(usage, "completion_tokens") == 3);
	assert_true(usage_num(usage, "total_tokens") == 10);
	free(text);
	cJSON_Delete(usage);
}

static void test_openai_text_and_usage(void **state)
{
	char *text, err[256];
	cJSON *usage;

	(void)state;
	assert_int_equal(parse(LLM_API_OPENAI,
			       "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
			       "\"content\":\"Hi there\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
			       "\"total_tokens\":7}}",
			       &text, &usage, err, sizeof(err)),
			 0);
	assert_string_equal(text, "Hi there");
	assert_true(usage_num(usage, "total_tokens") == 7);
	free(text);
	cJSON_Delete(usage);
	/* no usage: an empty object */
	assert_int_equal(parse(LLM_API_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"\"}}]}", &text, &usage,
			       err, sizeof(err)),
			 0);
	assert_string_equal(text, "");
	assert_int_equal(cJSON_GetArraySize(usage), 0);
	free(text);
	cJSON_Delete(usage);
}

static void test_error_objects(void **state)
{
	char *text, err[256];
	cJSON *usage;

	(void)state;
	assert_int_equal(parse(LLM_API_GEMINI,
			       "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\",\"message\":\"overloaded\"}}", &text,
			       &usage, err, sizeof(err)),
			 -EPROTO);
	assert_null(text);
	assert_null(usage);
	assert_non_null(strstr(err, "503"));
	assert_non_null(strstr(err, "UNAVAILABLE"));
	assert_non_null(strstr(err, "overloaded"));
	/* an error object next to a valid-looking answer still fails */
	assert_int_equal(parse(LLM_API_OPENAI,
			       "{\"error\":{\"message\":\"rate limited\",\"code\":429},"
			       "\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
			       &text, &usage, err, sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "rate limited"));
	assert_int_equal(parse(LLM_API_OPENAI, "{\"error\":\"quota\"}", &text, &usage, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "quota"));
	/* "error": null is no error */
	assert_int_equal(parse(LLM_API_OPENAI, "{\"error\":null,\"choices\":[{\"message\":{\"content\":\"ok\"}}]}",
			       &text, &usage, err, sizeof(err)),
			 0);
	free(text);
	cJSON_Delete(usage);
}

static void test_missing_text(void **state)
{
	char *text, err[256];
	cJSON *usage;

	(void)state;
	assert_int_equal(parse(LLM_API_GEMINI, "{\"candidates\":[]}", &text, &usage, err, sizeof(err)), -EPROTO);
	assert_int_equal(parse(LLM_API_GEMINI, "{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}", &text, &usage, err,
			       sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "SAFETY"));
	assert_int_equal(parse(LLM_API_GEMINI, "{\"promptFeedback\":{\"blockReason\":\"OTHER\"}}", &text, &usage, err,
			       sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "OTHER"));
	assert_int_equal(parse(LLM_API_OPENAI, "{\"choices\":[{\"message\":{\"content\":null}}]}", &text, &usage, err,
			       sizeof(err)),
			 -EPROTO);
	assert_int_equal(parse(LLM_API_OPENAI, "{}", &text, &usage, err, sizeof(err)), -EPROTO);
	/* a Gemini answer is no OpenAI answer */
	assert_int_equal(parse(LLM_API_OPENAI, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}",
			       &text, &usage, err, sizeof(err)),
			 -EPROTO);
}

static void test_malformed(void **state)
{
	static const char *const bodies[] = { "", "not json", "{\"choices\":", "[1,2]", "\"text\"",
					      "{\"a\":1} trailing" };
	char *text, err[256];
	cJSON *usage;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(parse(LLM_API_GEMINI, bodies[i], &text, &usage, err, sizeof(err)), -EBADMSG);
		assert_int_equal(parse(LLM_API_OPENAI, bodies[i], &text, &usage, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, "malformed"));
		assert_null(text);
	}
}

static const char *const messages_json =
	"{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"},"
	"{\"role\":\"assistant\",\"content\":\"hello\"},{\"role\":\"user\",\"content\":\"more\"}],"
	"\"max_tokens\":50,\"temperature\":0.5}";

static void test_gemini_request(void **state)
{
	struct llm_provider p = { .name = "gemini", .api = LLM_API_GEMINI, .base_url = "http://h/v1beta/",
				  .model = "gemini-2.0-flash" };
	struct llm_request req;
	cJSON *payload = cJSON_Parse(messages_json), *body, *contents, *gen;
	char *url, *text, err[128];

	(void)state;
	assert_int_equal(llm_request_parse(payload, &req, err, sizeof(err)), 0);
	assert_int_equal(llm_request_build(&p, &req, &url, &text), 0);
	assert_string_equal(url, "http://h/v1beta/models/gemini-2.0-flash:generateContent");
	body = cJSON_Parse(text);
	assert_non_null(body);
	contents = cJSON_GetObjectItem(body, "contents");
	assert_int_equal(cJSON_GetArraySize(contents), 3);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(contents, 0), "role")->valuestring, "user");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(contents, 1), "role")->valuestring, "model");
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(contents, 2), "parts"), 0),
				    "text")
			->valuestring,
		"more");
	assert_string_equal(
		cJSON_GetObjectItem(
			cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "systemInstruction"), "parts"), 0),
			"text")
			->valuestring,
		"be brief");
	gen = cJSON_GetObjectItem(body, "generationConfig");
	assert_true(cJSON_GetObjectItem(gen, "maxOutputTokens")->valuedouble == 50);
	assert_true(cJSON_GetObjectItem(gen, "temperature")->valuedouble == 0.5);
	assert_null(cJSON_GetObjectItem(body, "model"));
	cJSON_Delete(body);
	free(url);
	free(text);
	cJSON_Delete(payload);
}

static void test_openai_request(void **state)
{
	struct llm_provider p = { .name = "groq", .api = LLM_API_OPENAI, .base_url = "http://h/openai/v1",
				  .model = "llama" };
	struct llm_request req;
	cJSON *payload = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"), *body;
	char *url, *text, err[128];

	(void)state;
	assert_int_equal(llm_request_parse(payload, &req, err, sizeof(err)), 0);
	assert_int_equal(llm_request_build(&p, &req, &url, &text), 0);
	assert_string_equal(url, "http://h/openai/v1/chat/completions");
	body = cJSON_Parse(text);
	assert_string_equal(cJSON_GetObjectItem(body, "model")->valuestring, "llama");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(body, "messages")), 1);
	assert_null(cJSON_GetObjectItem(body, "max_tokens"));
	assert_null(cJSON_GetObjectItem(body, "temperature"));
	cJSON_Delete(body);
	free(url);
	free(text);
	cJSON_Delete(payload);
}

static void test_bad_payloads(void **state)
{
	static const char *const bad[] = {
		"{}",
		"{\"messages\":[]}",
		"{\"messages\":\"hi\"}",
		"{\"messages\":[{\"role\":\"user\"}]}",
		"{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
		"{\"messages\":[{\"role\":\"user\",\"content\":1}]}",
		"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
		"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
		"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
	};
	struct llm_request req;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *p = cJSON_Parse(bad[i]);
		assert_non_null(p);
		err[0] = '\0';
		assert_int_equal(llm_request_parse(p, &req, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		cJSON_Delete(p);
	}
}

static void test_breaker(void **state)
{
	struct breaker *b;

	(void)state;
	breaker_reset_all();
	b = breaker_get("gemini");
	assert_non_null(b);
	assert_ptr_equal(breaker_get("gemini"), b);
	for (int i = 0; i < BREAKER_THRESHOLD - 1; i++) {
		assert_int_equal(breaker_allow(b, 0, 1000), BREAKER_PASS);
		breaker_failure(b, 0);
	}
	breaker_success(b); /* a success resets the count */
	for (int i = 0; i < BREAKER_THRESHOLD; i++) {
		assert_int_equal(breaker_allow(b, 100, 1000), BREAKER_PASS);
		breaker_failure(b, 100);
	}
	assert_int_equal(breaker_state(b), BREAKER_OPEN);
	assert_int_equal(breaker_allow(b, 500, 1000), BREAKER_DENY);
	/* half-open: one probe, the others still skip */
	assert_int_equal(breaker_allow(b, 1100, 1000), BREAKER_PROBE);
	assert_int_equal(breaker_state(b), BREAKER_HALF_OPEN);
	assert_int_equal(breaker_allow(b, 1100, 1000), BREAKER_DENY);
	breaker_failure(b, 1200); /* the probe failed: open again */
	assert_int_equal(breaker_state(b), BREAKER_OPEN);
	assert_int_equal(breaker_allow(b, 2100, 1000), BREAKER_DENY);
	assert_int_equal(breaker_allow(b, 2200, 1000), BREAKER_PROBE);
	breaker_release(b); /* an abandoned probe lets another go */
	assert_int_equal(breaker_allow(b, 2200, 1000), BREAKER_PROBE);
	breaker_success(b);
	assert_int_equal(breaker_state(b), BREAKER_CLOSED);
	assert_int_equal(breaker_allow(b, 2300, 1000), BREAKER_PASS);
	/* independent per name */
	assert_int_equal(breaker_state(breaker_get("groq")), BREAKER_CLOSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gemini_text_and_usage), cmocka_unit_test(test_openai_text_and_usage),
		cmocka_unit_test(test_error_objects),        cmocka_unit_test(test_missing_text),
		cmocka_unit_test(test_malformed),            cmocka_unit_test(test_gemini_request),
		cmocka_unit_test(test_openai_request),       cmocka_unit_test(test_bad_payloads),
		cmocka_unit_test(test_breaker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
