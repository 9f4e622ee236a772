/* SPDX-License-Identifier: MIT */
/* LLM provider request bodies and response parsing (Gemini and OpenAI shapes). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "llm_provider.h"
#include "strbuf.h"

#define LLM_JSON_DEPTH 64

#define LLM_PROVIDERS(P) P(gemini) P(openrouter) P(groq)

int llm_provider_lookup(const struct config *cfg, const char *name, struct llm_provider *ret)
{
#define LLM_LOOKUP(n)                                                                                \
	if (!strcmp(name, #n)) {                                                                     \
		*ret = (struct llm_provider){                                                        \
			.name = #n,                                                                  \
			.api = strcmp(cfg->llm_provider_##n##_api, "gemini") ? LLM_API_OPENAI : LLM_API_GEMINI, \
			.base_url = cfg->llm_provider_##n##_base_url,                                \
			.model = cfg->llm_provider_##n##_model,                                      \
			.api_key_env = cfg->llm_provider_##n##_api_key_env,                          \
			.retries = cfg->llm_provider_##n##_retries,                                  \
			.timeout_ms = cfg->llm_provider_##n##_timeout_ms,                            \
		};                                                                                   \
		return 0;                                                                            \
	}
	LLM_PROVIDERS(LLM_LOOKUP)
#undef LLM_LOOKUP
	return -ENOENT;
}

int llm_request_parse(const cJSON *payload, struct llm_request *ret, char *err, size_t errlen)
{
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(payload, "messages"), *m, *t;
	int64_t max_tokens = 0;
	double temperature = -1;
	int i = 0;

	if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) < 1 || cJSON_GetArraySize(msgs) > LLM_MAX_MESSAGES) {
		snprintf(err, errlen, "messages: must be an array of 1..%d {\"role\", \"content\"} objects",
			 LLM_MAX_MESSAGES);
		return -EINVAL;
	}
	cJSON_ArrayForEach(m, msgs) {
		const char *role = NULL, *content = NULL;
		char e[128];

		if (!cJSON_IsObject(m) || json_get_string(m, "role", true, &role, e, sizeof(e)) < 0 ||
		    json_get_string(m, "content", true, &content, e, sizeof(e)) < 0 ||
		    (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
			snprintf(err, errlen,
				 "messages[%d]: must be {\"role\": \"system\"|\"user\"|\"assistant\", \"content\": string}",
				 i);
			return -EINVAL;
		}
		i++;
	}
	if (json_get_int(payload, "max_tokens", false, 1, 1000000, &max_tokens, err, errlen) < 0)
		return -EINVAL;
	t = cJSON_GetObjectItemCaseSensitive(payload, "temperature");
	if (t && !cJSON_IsNull(t)) {
		if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble > 2) {
			snprintf(err, errlen, "temperature: must be a number in 0..2");
			return -EINVAL;
		}
		temperature = t->valuedouble;
	}
	*ret = (struct llm_request){ .messages = msgs, .max_tokens = max_tokens, .temperature = temperature };
	return 0;
}

static cJSON *gemini_body(const struct llm_request *req)
{
	cJSON *root = cJSON_CreateObject(), *contents, *sys = NULL, *sys_parts = NULL, *gen = NULL;
	const cJSON *m;

	if (!root || !(contents = cJSON_AddArrayToObject(root, "contents")))
		goto fail;
	cJSON_ArrayForEach(m, req->messages) {
		const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
		const char *text = cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring;
		cJSON *part = cJSON_CreateObject(), *c, *parts;

		if (!part || !cJSON_AddStringToObject(part, "text", text)) {
			cJSON_Delete(part);
			goto fail;
		}
		if (!strcmp(role, "system")) {
			if (!sys && (!(sys = cJSON_AddObjectToObject(root, "systemInstruction")) ||
				     !(sys_parts = cJSON_AddArrayToObject(sys, "parts")))) {
				cJSON_Delete(part);
				goto fail;
			}
			cJSON_AddItemToArray(sys_parts, part);
			continue;
		}
		c = cJSON_CreateObject();
		if (!c) {
			cJSON_Delete(part);
			goto fail;
		}
		cJSON_AddItemToArray(contents, c);
		if (!cJSON_AddStringToObject(c, "role", strcmp(role, "assistant") ? "user" : "model") ||
		    !(parts = cJSON_AddArrayToObject(c, "parts"))) {
			cJSON_Delete(part);
			goto fail;
		}
		cJSON_AddItemToArray(parts, part);
	}
	if (req->max_tokens > 0 || req->temperature >= 0) {
		if (!(gen = cJSON_AddObjectToObject(root, "generationConfig")))
			goto fail;
		if (req->max_tokens > 0 && !cJSON_AddNumberToObject(gen, "maxOutputTokens", (double)req->max_tokens))
			goto fail;
		if (req->temperature >= 0 && !cJSON_AddNumberToObject(gen, "temperature", req->temperature))
			goto fail;
	}
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

static cJSON *openai_body(const struct llm_provider *p, const struct llm_request *req)
{
	cJSON *root = cJSON_CreateObject(), *msgs;

	if (!root || !cJSON_AddStringToObject(root, "model", p->model) ||
	    !(msgs = cJSON_Duplicate(req->messages, true)))
		goto fail;
	cJSON_AddItemToObject(root, "messages", msgs);
	if (req->max_tokens > 0 && !cJSON_AddNumberToObject(root, "max_tokens", (double)req->max_tokens))
		goto fail;
	if (req->temperature >= 0 && !cJSON_AddNumberToObject(root, "temperature", req->temperature))
		goto fail;
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

int llm_request_build(const struct llm_provider *p, const struct llm_request *req, char **ret_url,
		      char **ret_body)
{
	size_t blen = strlen(p->base_url);
	cJSON *root = p->api == LLM_API_GEMINI ? gemini_body(req) : openai_body(p, req);
	char *url = NULL, *body = NULL;
	int r;

	while (blen > 0 && p->base_url[blen - 1] == '/')
		blen--;
	if (p->api == LLM_API_GEMINI)
		r = asprintf(&url, "%.*s/models/%s:generateContent", (int)blen, p->base_url, p->model);
	else
		r = asprintf(&url, "%.*s/chat/completions", (int)blen, p->base_url);
	if (r < 0)
		url = NULL;
	body = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!url || !body) {
		free(url);
		free(body);
		return -ENOMEM;
	}
	*ret_url = url;
	*ret_body = body;
	return 0;
}

/* An "error" member: {"error": {"code", "status"?, "message"}} or {"error": "..."}. */
static int error_object(const cJSON *root, char *err, size_t errlen)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error"), *msg, *code, *status;

	if (!e || cJSON_IsNull(e))
		return 0;
	if (cJSON_IsString(e)) {
		snprintf(err, errlen, "error: %.200s", e->valuestring);
		return -EPROTO;
	}
	msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	code = cJSON_GetObjectItemCaseSensitive(e, "code");
	status = cJSON_GetObjectItemCaseSensitive(e, "status");
	snprintf(err, errlen, "error%s%.0f%s%.32s: %.200s", cJSON_IsNumber(code) ? " " : "",
		 cJSON_IsNumber(code) ? code->valuedouble : 0.0, cJSON_IsString(status) ? " " : "",
		 cJSON_IsString(status) ? status->valuestring : "",
		 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
	return -EPROTO;
}

static int usage_copy(cJSON *usage, const cJSON *from, const char *from_key, const char *to_key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, from_key);

	if (!cJSON_IsNumber(v))
		return 0;
	return cJSON_AddNumberToObject(usage, to_key, v->valuedouble) ? 0 : -ENOMEM;
}

static int gemini_text(const cJSON *root, struct strbuf *text, char *err, size_t errlen)
{
	const cJSON *cand = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "candidates"), 0);
	const cJSON *parts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cand, "content"),
							      "parts");
	const cJSON *list = cJSON_IsArray(parts) ? parts : NULL, *part, *t;
	bool found = false;

	cJSON_ArrayForEach(part, list) {
		t = cJSON_GetObjectItemCaseSensitive(part, "text");
		if (cJSON_IsString(t)) {
			strbuf_puts(text, t->valuestring);
			found = true;
		}
	}
	if (!found) {
		const cJSON *reason = cJSON_GetObjectItemCaseSensitive(cand, "finishReason");
		const cJSON *block = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(root, "promptFeedback"), "blockReason");
		snprintf(err, errlen, "no text in the response%s%.64s",
			 cJSON_IsString(reason) ? " (finishReason " : cJSON_IsString(block) ? " (blockReason " : "",
			 cJSON_IsString(reason) ? reason->valuestring : cJSON_IsString(block) ? block->valuestring : "");
		if (cJSON_IsString(reason) || cJSON_IsString(block))
			strncat(err, ")", errlen - strlen(err) - 1);
		return -EPROTO;
	}
	return 0;
}

static int openai_text(const cJSON *root, struct strbuf *text, char *err, size_t errlen)
{
	const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "message"),
							  "content");

	if (!cJSON_IsString(c)) {
		snprintf(err, errlen, "no text in the response");
		return -EPROTO;
	}
	strbuf_puts(text, c->valuestring);
	return 0;
}

int llm_response_parse(enum llm_api api, const char *body, size_t len, char **ret_text, cJSON **ret_usage,
		       char *err, size_t errlen)
{
	cJSON *root = NULL, *usage = NULL;
	struct strbuf text = { 0 };
	char perr[128];
	int r;

	if (json_parse_object(body, len, LLM_JSON_DEPTH, &root, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "malformed response: %s", perr);
		return -EBADMSG;
	}
	r = error_object(root, err, errlen);
	if (r == 0)
		r = api == LLM_API_GEMINI ? gemini_text(root, &text, err, errlen) : openai_text(root, &text, err, errlen);
	if (r == 0) {
		const cJSON *u;
		usage = cJSON_CreateObject();
		if (!usage) {
			r = -ENOMEM;
		} else if (api == LLM_API_GEMINI) {
			u = cJSON_GetObjectItemCaseSensitive(root, "usageMetadata");
			if (usage_copy(usage, u, "promptTokenCount", "prompt_tokens") < 0 ||
			    usage_copy(usage, u, "candidatesTokenCount", "completion_tokens") < 0 ||
			    usage_copy(usage, u, "totalTokenCount", "total_tokens") < 0)
				r = -ENOMEM;
		} else {
			u = cJSON_GetObjectItemCaseSensitive(root, "usage");
			if (usage_copy(usage, u, "prompt_tokens", "prompt_tokens") < 0 ||
			    usage_copy(usage, u, "completion_tokens", "completion_tokens") < 0 ||
			    usage_copy(usage, u, "total_tokens", "total_tokens") < 0)
				r = -ENOMEM;
		}
		if (r == 0 && text.oom)
			r = -ENOMEM;
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
	}
	cJSON_Delete(root);
	if (r < 0) {
		cJSON_Delete(usage);
		strbuf_free(&text);
		return r;
	}
	if (!text.s && !(text.s = strdup(""))) {
		cJSON_Delete(usage);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*ret_text = text.s;
	*ret_usage = usage;
	return 0;
}
