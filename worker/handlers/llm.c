/* SPDX-License-Identifier: MIT */
/* llm: {"messages": [{"role", "content"}], "max_tokens"?, "temperature"?,
 * "chain"?: ["openrouter", ...]} walks a chain of providers (SPEC §9). Per
 * provider: skipped while its circuit breaker is open or without an API key;
 * retryable errors retry it with jittered backoff (Retry-After honoured up
 * to llm.max_retry_after_ms) on a loop timer, then fall through; 401/403/404
 * fall through at once; 400/422 fail the job for good. The result is
 * {"provider", "model", "text", "usage", "tried": [{"provider", "status",
 * "error", "ms"}]}. API keys come from the environment only and never
 * appear in logs, errors or results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "classify.h"
#include "http_client.h"
#include "job.h"
#include "llm_provider.h"
#include "strbuf.h"
#include "util.h"

#define LLM_MAX_CHAIN 8
#define LLM_BACKOFF_BASE_MS 500
#define LLM_CONNECT_TIMEOUT_MS 10000
#define LLM_ERROR_LEN 256

struct llm_state {
	struct job *job;
	ev_timer backoff;
	struct http_call *call;
	struct curl_slist *headers;
	char *url, *body;
	struct llm_request req;
	struct llm_provider chain[LLM_MAX_CHAIN];
	int nchain;
	int pos;                       /* chain[pos] is being tried */
	int64_t tries;                 /* requests sent to chain[pos] */
	struct breaker *breaker;       /* of chain[pos] */
	bool probe;                    /* the request out is the breaker's probe */
	const char *key;               /* getenv() of chain[pos]; never copied anywhere */
	cJSON *tried;
	char last_error[LLM_MAX_CHAIN][LLM_ERROR_LEN];
};

static void next_provider(struct llm_state *st);
static void send_request(struct llm_state *st);

static int64_t now_ms(const struct llm_state *st)
{
	return (int64_t)(ev_now(st->job->env->loop) * 1000.0);
}

static void request_free(struct llm_state *st)
{
	curl_slist_free_all(st->headers);
	free(st->url);
	free(st->body);
	st->headers = NULL;
	st->url = st->body = NULL;
}

static void state_free(struct llm_state *st)
{
	request_free(st);
	cJSON_Delete(st->tried);
	free(st);
}

/* Blanks every occurrence of the API key in s (a provider may echo it). */
static void redact(const struct llm_state *st, char *s)
{
	size_t klen = st->key ? strlen(st->key) : 0;
	char *p;

	if (klen < 4)
		return;
	while ((p = strstr(s, st->key)))
		memset(p, '*', klen);
}

static void add_tried(struct llm_state *st, const char *provider, long status, const char *error, int64_t ms)
{
	cJSON *t = cJSON_CreateObject();

	if (!t)
		return;
	cJSON_AddStringToObject(t, "provider", provider);
	cJSON_AddNumberToObject(t, "status", (double)status);
	if (error)
		cJSON_AddStringToObject(t, "error", error);
	else
		cJSON_AddNullToObject(t, "error");
	cJSON_AddNumberToObject(t, "ms", (double)ms);
	cJSON_AddItemToArray(st->tried, t);
}

/* Ends the job (st is freed). */
static void finish_fail(struct llm_state *st, bool retryable, const char *msg)
{
	struct job *job = st->job;

	job->state = NULL;
	state_free(st);
	job_fail(job, msg, retryable, 0);
}

static void all_failed(struct llm_state *st)
{
	struct strbuf b = { 0 };

	strbuf_puts(&b, "all LLM providers failed: ");
	for (int i = 0; i < st->nchain; i++)
		strbuf_printf(&b, "%s%s: %s", i ? "; " : "", st->chain[i].name, st->last_error[i]);
	finish_fail(st, true, b.oom ? "all LLM providers failed" : strbuf_str(&b));
	strbuf_free(&b);
}

static void fall_through(struct llm_state *st)
{
	st->pos++;
	next_provider(st);
}

static void backoff_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct llm_state *st = container_of(w, struct llm_state, backoff);

	(void)loop;
	(void)revents;
	/* the breaker may have opened meanwhile (other jobs' failures) */
	switch (breaker_allow(st->breaker, now_ms(st), st->job->env->cfg->llm_breaker_open_ms)) {
	case BREAKER_DENY:
		snprintf(st->last_error[st->pos], LLM_ERROR_LEN, "circuit open");
		add_tried(st, st->chain[st->pos].name, 0, "circuit open", 0);
		fall_through(st);
		return;
	case BREAKER_PROBE:
		st->probe = true;
		break;
	case BREAKER_PASS:
		break;
	}
	send_request(st);
}

/* A retryable failure of chain[pos]: retry it later, or fall through. */
static void retry_or_fall_through(struct llm_state *st, int64_t retry_after_ms)
{
	const struct llm_provider *p = &st->chain[st->pos];
	int64_t max_ra = st->job->env->cfg->llm_max_retry_after_ms;
	double delay;

	if (st->tries > p->retries || retry_after_ms > max_ra) {
		fall_through(st);
		return;
	}
	delay = (double)LLM_BACKOFF_BASE_MS * (double)(1 << (st->tries - 1)) *
		(0.8 + 0.4 * rng_unit(st->job->env->rng));
	if (retry_after_ms > 0 && (double)retry_after_ms > delay)
		delay = (double)retry_after_ms;
	ev_timer_init(&st->backoff, backoff_done, delay / 1000.0, 0);
	ev_timer_start(st->job->env->loop, &st->backoff);
}

static void succeed(struct llm_state *st, char *text, cJSON *usage)
{
	struct job *job = st->job;
	const struct llm_provider *p = &st->chain[st->pos];
	cJSON *result = cJSON_CreateObject();

	if (!result || !cJSON_AddStringToObject(result, "provider", p->name) ||
	    !cJSON_AddStringToObject(result, "model", p->model) || !cJSON_AddStringToObject(result, "text", text)) {
		cJSON_Delete(result);
		cJSON_Delete(usage);
		free(text);
		finish_fail(st, true, "out of memory");
		return;
	}
	free(text);
	cJSON_AddItemToObject(result, "usage", usage);
	cJSON_AddItemToObject(result, "tried", st->tried);
	st->tried = NULL;
	job->state = NULL;
	state_free(st);
	job_succeed(job, result);
}

static void llm_done(struct http_call *call, const struct http_result *res, void *arg)
{
	struct llm_state *st = arg;
	const struct llm_provider *p = &st->chain[st->pos];
	char *err = st->last_error[st->pos];
	char *text = NULL;
	cJSON *usage = NULL;
	int64_t now = now_ms(st);

	(void)call;
	st->call = NULL;
	request_free(st);
	st->probe = false;
	if (res->code != CURLE_OK) {
		bool retry = !res->refused && classify_transfer(res->code, 0) == OUTCOME_RETRYABLE;
		snprintf(err, LLM_ERROR_LEN, "%s", res->error);
		redact(st, err);
		add_tried(st, p->name, 0, err, res->duration_ms);
		breaker_failure(st->breaker, now);
		if (retry)
			retry_or_fall_through(st, 0);
		else
			fall_through(st);
		return;
	}
	if (res->status >= 200 && res->status <= 299) {
		if (llm_response_parse(p->api, res->body, res->body_len, &text, &usage, err, LLM_ERROR_LEN) == 0) {
			add_tried(st, p->name, res->status, NULL, res->duration_ms);
			breaker_success(st->breaker);
			succeed(st, text, usage);
			return;
		}
		redact(st, err);
		add_tried(st, p->name, res->status, err, res->duration_ms);
		breaker_failure(st->breaker, now);
		retry_or_fall_through(st, 0);
		return;
	}
	snprintf(err, LLM_ERROR_LEN, "HTTP %ld: %.160s", res->status, res->body);
	redact(st, err);
	add_tried(st, p->name, res->status, err, res->duration_ms);
	if (res->status == 400 || res->status == 422) {
		char msg[LLM_ERROR_LEN + 64];

		breaker_success(st->breaker); /* the provider is up; the request is bad */
		snprintf(msg, sizeof(msg), "%s: %s", p->name, err);
		finish_fail(st, false, msg);
		return;
	}
	breaker_failure(st->breaker, now);
	if (classify_status_retryable(res->status))
		retry_or_fall_through(st, res->retry_after_ms);
	else
		fall_through(st); /* 401, 403, 404 and anything else unexpected */
}

static int add_header(struct llm_state *st, const char *name, const char *value)
{
	struct strbuf b = { 0 };
	struct curl_slist *l;

	strbuf_printf(&b, "%s: %s", name, value);
	l = b.oom || strpbrk(strbuf_str(&b), "\r\n") ? NULL : curl_slist_append(st->headers, strbuf_str(&b));
	/* the line may hold the key: wipe it */
	if (b.s)
		memset(b.s, 0, b.len);
	strbuf_free(&b);
	if (!l)
		return -1;
	st->headers = l;
	return 0;
}

static void send_request(struct llm_state *st)
{
	const struct llm_provider *p = &st->chain[st->pos];
	char *err = st->last_error[st->pos];
	CURL *easy;
	int r;

	st->tries++;
	r = llm_request_build(p, &st->req, &st->url, &st->body);
	if (r == 0)
		r = add_header(st, "Content-Type", "application/json");
	if (r == 0 && p->api == LLM_API_GEMINI) {
		r = add_header(st, "x-goog-api-key", st->key);
	} else if (r == 0) {
		struct strbuf b = { 0 };

		strbuf_printf(&b, "Bearer %s", st->key);
		r = b.oom ? -1 : add_header(st, "Authorization", strbuf_str(&b));
		if (b.s)
			memset(b.s, 0, b.len);
		strbuf_free(&b);
	}
	easy = r == 0 ? http_client_easy(st->job->env->http) : NULL;
	if (!easy) {
		snprintf(err, LLM_ERROR_LEN, "cannot set up the request");
		add_tried(st, p->name, 0, err, 0);
		request_free(st);
		if (st->probe)
			breaker_release(st->breaker);
		st->probe = false;
		fall_through(st);
		return;
	}
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, st->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(st->body));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, st->headers);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(p->timeout_ms < LLM_CONNECT_TIMEOUT_MS ? p->timeout_ms : LLM_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "jobwheel");
	st->call = http_call_start(st->job->env->http, easy, st->url, llm_done, st);
	if (!st->call) {
		snprintf(err, LLM_ERROR_LEN, "cannot start the transfer");
		add_tried(st, p->name, 0, err, 0);
		request_free(st);
		if (st->probe)
			breaker_release(st->breaker);
		st->probe = false;
		fall_through(st);
	}
}

/* Starts chain[pos] or the first usable provider after it; fails the
 * attempt when none is left. */
static void next_provider(struct llm_state *st)
{
	const struct config *cfg = st->job->env->cfg;

	for (; st->pos < st->nchain; st->pos++) {
		const struct llm_provider *p = &st->chain[st->pos];
		char *err = st->last_error[st->pos];
		enum breaker_verdict v;

		st->tries = 0;
		st->probe = false;
		st->key = NULL;
		st->breaker = breaker_get(p->name);
		v = st->breaker ? breaker_allow(st->breaker, now_ms(st), cfg->llm_breaker_open_ms) : BREAKER_DENY;
		if (v == BREAKER_DENY) {
			snprintf(err, LLM_ERROR_LEN, "circuit open");
			add_tried(st, p->name, 0, err, 0);
			continue;
		}
		st->key = p->api_key_env[0] ? getenv(p->api_key_env) : NULL;
		if (!st->key || !st->key[0]) {
			if (v == BREAKER_PROBE)
				breaker_release(st->breaker);
			st->key = NULL;
			snprintf(err, LLM_ERROR_LEN, "no API key");
			add_tried(st, p->name, 0, err, 0);
			continue;
		}
		st->probe = v == BREAKER_PROBE;
		send_request(st);
		return;
	}
	all_failed(st);
}

/* The chain: payload "chain" (array of names) or llm.chain.default. */
static int parse_chain(struct llm_state *st, const struct job *job, char *err, size_t errlen)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(job->payload, "chain"), *v;
	const char *s = job->env->cfg->llm_chain_default;
	char name[64];

	st->nchain = 0;
	if (c && !cJSON_IsNull(c)) {
		if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) < 1 || cJSON_GetArraySize(c) > LLM_MAX_CHAIN) {
			snprintf(err, errlen, "payload: chain: must be an array of 1..%d provider names", LLM_MAX_CHAIN);
			return -EINVAL;
		}
		cJSON_ArrayForEach(v, c) {
			if (!cJSON_IsString(v) ||
			    llm_provider_lookup(job->env->cfg, v->valuestring, &st->chain[st->nchain]) < 0) {
				snprintf(err, errlen, "payload: chain: %.64s: not a provider (gemini, openrouter, groq)",
					 cJSON_IsString(v) ? v->valuestring : "?");
				return -EINVAL;
			}
			st->nchain++;
		}
		return 0;
	}
	while (*s) {
		size_t n = strcspn(s, ",");
		size_t a = 0, b = n;

		while (a < b && (s[a] == ' ' || s[a] == '\t'))
			a++;
		while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
			b--;
		if (b > a) {
			if (b - a >= sizeof(name) || st->nchain == LLM_MAX_CHAIN) {
				snprintf(err, errlen, "llm.chain.default: too long");
				return -EINVAL;
			}
			memcpy(name, s + a, b - a);
			name[b - a] = '\0';
			if (llm_provider_lookup(job->env->cfg, name, &st->chain[st->nchain]) < 0) {
				snprintf(err, errlen, "llm.chain.default: %s: not a provider (gemini, openrouter, groq)",
					 name);
				return -EINVAL;
			}
			st->nchain++;
		}
		s += n + (s[n] == ',');
	}
	if (st->nchain == 0) {
		snprintf(err, errlen, "llm.chain.default: no provider");
		return -EINVAL;
	}
	return 0;
}

static void llm_start(struct job *job)
{
	struct llm_state *st = calloc(1, sizeof(*st));
	char err[256], perr[200];

	if (!st || !(st->tried = cJSON_CreateArray())) {
		free(st);
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	if (llm_request_parse(job->payload, &st->req, perr, sizeof(perr)) < 0) {
		state_free(st);
		job_failf(job, false, "payload: %s", perr);
		return;
	}
	if (parse_chain(st, job, err, sizeof(err)) < 0) {
		state_free(st);
		job_fail(job, err, false, 0);
		return;
	}
	job->state = st;
	next_provider(st);
}

static void llm_abort(struct job *job)
{
	struct llm_state *st = job->state;

	if (!st)
		return;
	ev_timer_stop(job->env->loop, &st->backoff);
	if (st->call)
		http_call_abort(st->call);
	if (st->probe)
		breaker_release(st->breaker);
	state_free(st);
	job->state = NULL;
}

const struct handler handler_llm = { .kind = "llm", .start = llm_start, .abort = llm_abort };
