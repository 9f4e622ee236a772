/* SPDX-License-Identifier: MIT */
/* LLM provider APIs: the configured providers, and request bodies and
 * response parsing for the two API shapes (Gemini generateContent and the
 * OpenAI-compatible chat/completions of OpenRouter and Groq). No I/O here. */
#ifndef JW_LLM_PROVIDER_H
#define JW_LLM_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"

#define LLM_MAX_MESSAGES 256

enum llm_api { LLM_API_GEMINI, LLM_API_OPENAI };

/* One provider's settings (llm.provider.NAME.*); strings point into the config. */
struct llm_provider {
	const char *name;
	enum llm_api api;
	const char *base_url;
	const char *model;
	const char *api_key_env;
	int64_t retries;
	int64_t timeout_ms;
};

/* The settings of the provider called name. Returns 0, or -ENOENT for a
 * name that is not a configured provider. */
int llm_provider_lookup(const struct config *cfg, const char *name, struct llm_provider *ret);

/* What a request asks: the validated payload of an llm job. */
struct llm_request {
	const cJSON *messages; /* [{"role": "system"|"user"|"assistant", "content": string}], non-empty */
	int64_t max_tokens;    /* 0 = provider default */
	double temperature;    /* < 0 = provider default */
};

/* Checks payload's messages, max_tokens and temperature (not chain) and
 * fills *ret (pointing into payload). Returns 0, or -EINVAL with err. */
int llm_request_parse(const cJSON *payload, struct llm_request *ret, char *err, size_t errlen);

/* The URL and JSON body of a request to provider p. Returns 0 with both
 * malloc'ed, or -ENOMEM. */
int llm_request_build(const struct llm_provider *p, const struct llm_request *req, char **ret_url,
		      char **ret_body);

/* Parses a 2xx response body of the given API shape. Returns 0 with
 * *ret_text (malloc'ed) and *ret_usage ({"prompt_tokens", "completion_tokens",
 * "total_tokens"} as far as known; caller deletes), or with a message in err:
 * -EBADMSG for a body that is not a JSON object, -EPROTO for an "error"
 * object or no text. */
int llm_response_parse(enum llm_api api, const char *body, size_t len, char **ret_text, cJSON **ret_usage,
		       char *err, size_t errlen);

#endif
