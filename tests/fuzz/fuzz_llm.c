/* SPDX-License-Identifier: MIT */
/* Fuzz target: the first byte picks what the rest is: an LLM provider's
 * response body (success or error) in the Gemini or the OpenAI shape, for
 * llm_response_parse; or an llm job's payload, for llm_request_parse and
 * then llm_request_build for either shape. Bits 2-7 of the first byte size
 * the error buffer, so that truncated messages are exercised too. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "llm_provider.h"

static const struct llm_provider providers[] = {
	{ .name = "gemini",
	  .api = LLM_API_GEMINI,
	  .base_url = "https://generativelanguage.googleapis.com/v1beta/",
	  .model = "gemini-2.0-flash" },
	{ .name = "groq", .api = LLM_API_OPENAI, .base_url = "https://api.groq.com/openai/v1", .model = "llama" },
};

/* err holds a NUL-terminated message that fits errlen. */
static void check_message(const char *err, size_t errlen)
{
	CHECK(memchr(err, '\0', errlen) != NULL);
}

static void response(enum llm_api api, const char *body, size_t len, char *err, size_t errlen)
{
	char *text = NULL;
	cJSON *usage = NULL;
	int r = llm_response_parse(api, body, len, &text, &usage, err, errlen);

	if (r < 0) {
		CHECK(r == -EBADMSG || r == -EPROTO || r == -ENOMEM);
		CHECK(!text && !usage);
		check_message(err, errlen);
		return;
	}
	/* The text and usage with only the known counters, all numbers. */
	CHECK(text && cJSON_IsObject(usage) && cJSON_GetArraySize(usage) <= 3);
	for (const cJSON *u = usage->child; u; u = u->next)
		CHECK(cJSON_IsNumber(u) && (!strcmp(u->string, "prompt_tokens") ||
					    !strcmp(u->string, "completion_tokens") ||
					    !strcmp(u->string, "total_tokens")));
	free(text);
	cJSON_Delete(usage);
}

static void request(const char *body, size_t len, char *err, size_t errlen)
{
	struct llm_request req;
	char perr[128];
	cJSON *payload = NULL;

	if (json_parse_object(body, len, 64, &payload, perr, sizeof(perr)) < 0)
		return;
	if (llm_request_parse(payload, &req, err, errlen) < 0) {
		check_message(err, errlen);
	} else {
		CHECK(cJSON_GetArraySize(req.messages) >= 1 && cJSON_GetArraySize(req.messages) <= LLM_MAX_MESSAGES);
		for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
			char *url = NULL, *built = NULL;
			cJSON *back = NULL;

			if (llm_request_build(&providers[i], &req, &url, &built) < 0)
				continue;
			/* What goes out is one JSON object, no deeper than what came in. */
			CHECK(json_parse_object(built, strlen(built), 64, &back, perr, sizeof(perr)) == 0);
			cJSON_Delete(back);
			free(url);
			free(built);
		}
	}
	cJSON_Delete(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t errlen;
	char *body, *err;

	if (size < 1)
		return 0;
	errlen = (size_t)(data[0] >> 2) * 4 + 1; /* 1..253 */
	body = malloc(size);
	err = malloc(errlen); /* exactly errlen: ASan sees any overrun */
	CHECK(body && err);
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	err[0] = '\0';
	switch (data[0] & 3) {
	case 0: response(LLM_API_GEMINI, body, size - 1, err, errlen); break;
	case 1: response(LLM_API_OPENAI, body, size - 1, err, errlen); break;
	default: request(body, size - 1, err, errlen); break;
	}
	free(err);
	free(body);
	return 0;
}
