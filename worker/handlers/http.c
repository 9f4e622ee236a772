/* SPDX-License-Identifier: MIT */
/* http (webhooks): {"method"?, "url", "headers"?, "body"?, "timeout_ms"?,
 * "expect"?: [lo, hi]}. One transfer on the worker's libcurl multi; the
 * result is {status, body (at most 64 KiB), duration_ms}. Retryable:
 * transport errors, 408, 425, 429, 5xx (with Retry-After); other statuses
 * outside `expect` are not. With http.signing_secret_env set, the body is
 * signed like Stripe's webhooks: X-Jobwheel-Signature: t=UNIX,v1=HEX of
 * HMAC-SHA256(secret, "UNIX.BODY"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "classify.h"
#include "http_client.h"
#include "job.h"
#include "json.h"
#include "signing.h"

#define HTTP_CONNECT_TIMEOUT_MS 10000
#define HTTP_DEFAULT_TIMEOUT_MS 30000

struct http_state {
	struct job *job;
	struct http_call *call;
	struct curl_slist *headers;
	char *body;
	long expect_lo, expect_hi;
};

static void state_free(struct http_state *st)
{
	curl_slist_free_all(st->headers);
	free(st->body);
	free(st);
}

static void http_done(struct http_call *call, const struct http_result *res, void *arg)
{
	struct http_state *st = arg;
	struct job *job = st->job;
	cJSON *result;
	bool expected = res->code == CURLE_OK && res->status >= st->expect_lo && res->status <= st->expect_hi;
	long lo = st->expect_lo, hi = st->expect_hi;

	job->state = NULL;
	state_free(st);
	if (res->code != CURLE_OK) {
		bool retry = !res->refused && classify_transfer(res->code, 0) == OUTCOME_RETRYABLE;
		job_failf(job, retry, "%s", res->error);
		return;
	}
	if (!expected) {
		bool retry = classify_status_retryable(res->status);
		char msg[512];
		snprintf(msg, sizeof(msg), "HTTP %ld (expected %ld..%ld): %.300s", res->status, lo, hi, res->body);
		job_fail(job, msg, retry, retry && res->retry_after_ms > 0 ? res->retry_after_ms : 0);
		return;
	}
	result = cJSON_CreateObject();
	if (result) {
		cJSON_AddNumberToObject(result, "status", (double)res->status);
		cJSON_AddStringToObject(result, "body", res->body);
		cJSON_AddNumberToObject(result, "duration_ms", (double)res->duration_ms);
		if (res->truncated)
			cJSON_AddTrueToObject(result, "truncated");
	}
	job_succeed(job, result);
}

/* The request body: a string as it is, anything else as JSON. */
static char *request_body(const cJSON *body, bool *ret_json)
{
	*ret_json = !cJSON_IsString(body);
	return cJSON_IsString(body) ? strdup(body->valuestring) : cJSON_PrintUnformatted(body);
}

static int add_header(struct http_state *st, const char *name, const char *value)
{
	char line[4096];
	struct curl_slist *l;

	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line) || strpbrk(line, "\r\n"))
		return -1;
	l = curl_slist_append(st->headers, line);
	if (!l)
		return -1;
	st->headers = l;
	return 0;
}

/* Checks the payload and sets the transfer up; NULL with *err on a bad
 * payload (the job is not retried). */
static CURL *prepare(struct job *job, struct http_state *st, const char **ret_url, char *err, size_t errlen)
{
	const cJSON *p = job->payload, *v, *h;
	const char *method = NULL, *url = NULL;
	int64_t timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
	bool has_type = false, json = false;
	CURL *easy;

	if (json_get_string(p, "url", true, &url, err, errlen) < 0 ||
	    json_get_string(p, "method", false, &method, err, errlen) < 0 ||
	    json_get_int(p, "timeout_ms", false, 1, 3600000, &timeout_ms, err, errlen) < 0)
		return NULL;
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		snprintf(err, errlen, "url: must start with http:// or https://");
		return NULL;
	}
	v = cJSON_GetObjectItemCaseSensitive(p, "expect");
	st->expect_lo = 200;
	st->expect_hi = 299;
	if (v) {
		const cJSON *lo = cJSON_GetArrayItem(v, 0), *hi = cJSON_GetArrayItem(v, 1);
		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
		    lo->valuedouble < 100 || hi->valuedouble > 599 || lo->valuedouble > hi->valuedouble) {
			snprintf(err, errlen, "expect: must be [lo, hi] with 100 <= lo <= hi <= 599");
			return NULL;
		}
		st->expect_lo = (long)lo->valuedouble;
		st->expect_hi = (long)hi->valuedouble;
	}
	h = cJSON_GetObjectItemCaseSensitive(p, "headers");
	if (h && !cJSON_IsObject(h)) {
		snprintf(err, errlen, "headers: must be an object of strings");
		return NULL;
	}
	cJSON_ArrayForEach(v, h) {
		if (!cJSON_IsString(v) || add_header(st, v->string, v->valuestring) < 0) {
			snprintf(err, errlen, "headers: %.64s: must be a one-line string", v->string);
			return NULL;
		}
		has_type |= !strcasecmp(v->string, "Content-Type");
	}
	v = cJSON_GetObjectItemCaseSensitive(p, "body");
	if (v && !cJSON_IsNull(v)) {
		st->body = request_body(v, &json);
		if (!st->body) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
	}
	if (!method)
		method = st->body ? "POST" : "GET";
	if (json && !has_type && add_header(st, "Content-Type", "application/json") < 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (job->env->cfg->http_signing_secret_env[0]) {
		const char *secret = getenv(job->env->cfg->http_signing_secret_env);
		char sig[128];
		if (!secret || !secret[0]) {
			snprintf(err, errlen, "http.signing_secret_env names %s, which is not set",
				 job->env->cfg->http_signing_secret_env);
			return NULL;
		}
		if (signing_header_value(secret, strlen(secret), (int64_t)time(NULL), st->body ? st->body : "",
					 st->body ? strlen(st->body) : 0, sig, sizeof(sig)) < 0 ||
		    add_header(st, "X-Jobwheel-Signature", sig) < 0) {
			snprintf(err, errlen, "cannot sign the request");
			return NULL;
		}
	}
	easy = http_client_easy(job->env->http);
	if (!easy) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	if (st->body) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, st->body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(st->body));
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, st->headers);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < HTTP_CONNECT_TIMEOUT_MS ? timeout_ms : HTTP_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "jobwheel");
	*ret_url = url;
	return easy;
}

static void http_start(struct job *job)
{
	struct http_state *st = calloc(1, sizeof(*st));
	const char *url = NULL;
	char err[256];
	CURL *easy;

	if (!st) {
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	easy = prepare(job, st, &url, err, sizeof(err));
	if (!easy) {
		state_free(st);
		job_failf(job, false, "payload: %s", err);
		return;
	}
	job->state = st;
	st->call = http_call_start(job->env->http, easy, url, http_done, st);
	if (!st->call) {
		job->state = NULL;
		state_free(st);
		job_fail(job, "cannot start the transfer", true, 0);
	}
}

static void http_abort(struct job *job)
{
	struct http_state *st = job->state;

	if (!st)
		return;
	http_call_abort(st->call); /* stops the transfer at once; no callback */
	state_free(st);
	job->state = NULL;
}

const struct handler handler_http = { .kind = "http", .start = http_start, .abort = http_abort };
