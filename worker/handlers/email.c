/* SPDX-License-Identifier: MIT */
/* email: {"to", "subject", "body", "from"?}. Mock mode (email.mode=mock)
 * waits email.mock_latency_ms and fails with probability email.failure_rate,
 * drawn from the worker's seeded random source (email.mock_seed).
 * SMTP mode (email.mode=smtp) sends a text/plain UTF-8 message through
 * email.smtp_url on the worker's libcurl multi, under the same outbound
 * address policy as webhooks (http.allow); "to" may also be an array.
 * 4xx replies and transport errors are retried; 5xx replies, refused
 * logins and bad payloads are not. Result: {mode, message_id, to}. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classify.h"
#include "http_client.h"
#include "job.h"
#include "json.h"
#include "util.h"

struct email_state {
	ev_timer timer;
	struct job *job;
	bool fail;
};

static void email_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct email_state *st = container_of(w, struct email_state, timer);
	struct job *job = st->job;
	bool fail = st->fail;
	char message_id[96];
	cJSON *result;

	job->state = NULL;
	free(st);
	if (fail) {
		job_fail(job, "mock SMTP failure: 451 4.3.0 temporary local problem", true, 0);
		return;
	}
	snprintf(message_id, sizeof(message_id), "<%lld.%d@jobwheel.mock>", (long long)job->id, job->attempt);
	result = cJSON_CreateObject();
	if (result) {
		cJSON_AddStringToObject(result, "mode", "mock");
		cJSON_AddStringToObject(result, "message_id", message_id);
		cJSON_AddItemToObject(result, "to",
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job->payload, "to"), 1));
	}
	job_succeed(job, result);
}

static void mock_start(struct job *job)
{
	const struct config *cfg = job->env->cfg;
	const char *to = NULL, *subject = NULL, *body = NULL, *from = NULL;
	struct email_state *st;
	char err[256];

	if (json_get_string(job->payload, "to", true, &to, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "subject", true, &subject, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "body", true, &body, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "from", false, &from, err, sizeof(err)) < 0) {
		job_failf(job, false, "payload: %s", err);
		return;
	}
	if (!strchr(to, '@')) {
		job_failf(job, false, "payload: to must be an email address");
		return;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	st->fail = rng_unit(job->env->rng) < cfg->email_failure_rate;
	job->state = st;
	ev_timer_init(&st->timer, email_done, (double)cfg->email_mock_latency_ms / 1000.0, 0);
	ev_timer_start(job->env->loop, &st->timer);
}

static void mock_abort(struct job *job)
{
	struct email_state *st = job->state;

	if (!st)
		return;
	ev_timer_stop(job->env->loop, &st->timer);
	free(st);
	job->state = NULL;
}

/* ---------------------------------------------------------------- smtp mode */

#define SMTP_CONNECT_TIMEOUT_MS 10000
#define SMTP_TIMEOUT_MS 60000
#define SMTP_MAX_RCPT 100
#define SMTP_MAX_SUBJECT 2000 /* bytes, before encoding */
#define SMTP_MAX_LINE 998     /* RFC 5322 line limit, without CRLF */
#define SMTP_REPLY_KEEP 300   /* bytes of the server's error reply kept */

struct smtp_state {
	struct job *job;
	struct http_call *call;
	struct curl_slist *rcpt;
	char *msg; /* the whole message, CRLF line endings */
	size_t msg_len, msg_off;
	char message_id[256];
	long reply_code;                 /* last reply >= 400 from the server, 0 none */
	char reply[SMTP_REPLY_KEEP + 1]; /* its text */
};

/* A growing buffer; on allocation failure it stays failed. */
struct buf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;
		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_base64(struct buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);
		out[0] = tab[v >> 18 & 63];
		out[1] = tab[v >> 12 & 63];
		out[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[3] = i + 2 < n ? tab[v & 63] : '=';
		buf_add(b, out, 4);
	}
}

static void smtp_state_free(struct smtp_state *st)
{
	if (!st)
		return;
	curl_slist_free_all(st->rcpt);
	free(st->msg);
	free(st);
}

/* A bare address: something@domain, printable ASCII or UTF-8, no spaces,
 * brackets, commas or control characters (CR/LF would inject headers). */
static int check_address(const char *what, const char *a, char *err, size_t errlen)
{
	const char *at = strrchr(a, '@');

	if (strpbrk(a, "\r\n")) {
		snprintf(err, errlen, "%s: must not contain CR or LF (header injection)", what);
		return -EINVAL;
	}
	for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
		if (*p <= ' ' || *p == 0x7f || strchr("<>,;\"()[]\\", *p)) {
			snprintf(err, errlen, "%s: must be a bare email address (user@domain)", what);
			return -EINVAL;
		}
	}
	if (!at || at == a || !at[1] || strlen(a) > 254) {
		snprintf(err, errlen, "%s: must be an email address", what);
		return -EINVAL;
	}
	return 0;
}

/* Appends the RFC 5322 date of now, in UTC (no locale involved). */
static void add_date(struct buf *b)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	char line[64];

	gmtime_r(&now, &tm);
	snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	buf_str(b, line);
}

/* Subject as it is when it is short printable ASCII, else as RFC 2047
 * encoded-words of at most 75 characters, folded, never splitting a UTF-8
 * sequence. */
static void add_subject(struct buf *b, const char *subject)
{
	size_t len = strlen(subject), i = 0;
	bool plain = len <= 900;

	for (const unsigned char *p = (const unsigned char *)subject; *p && plain; p++)
		plain = *p >= 0x20 && *p < 0x7f;
	if (plain || !len) {
		buf_str(b, "Subject: ");
		buf_str(b, subject);
		buf_str(b, "\r\n");
		return;
	}
	buf_str(b, "Subject:");
	while (i < len) {
		size_t n = len - i < 45 ? len - i : 45; /* 45 bytes -> 60 base64 chars; 12 for =?UTF-8?B??= */
		while (n > 1 && i + n < len && ((unsigned char)subject[i + n] & 0xc0) == 0x80)
			n--; /* do not end inside a multibyte sequence */
		buf_str(b, i ? "\r\n =?UTF-8?B?" : " =?UTF-8?B?");
		buf_base64(b, (const unsigned char *)subject + i, n);
		buf_str(b, "?=");
		i += n;
	}
	buf_str(b, "\r\n");
}

/* The body with CRLF line endings: 8bit when every line fits in 998 bytes,
 * else base64. libcurl dot-stuffs. */
static void add_body(struct buf *b, const char *body)
{
	size_t line = 0;
	bool fits = true;

	for (const char *p = body; *p && fits; p++) {
		line = *p == '\n' || *p == '\r' ? 0 : line + 1;
		fits = line <= SMTP_MAX_LINE;
	}
	if (!fits) {
		size_t len = strlen(body);
		buf_str(b, "Content-Transfer-Encoding: base64\r\n\r\n");
		for (size_t i = 0; i < len; i += 57) {
			buf_base64(b, (const unsigned char *)body + i, len - i < 57 ? len - i : 57);
			buf_str(b, "\r\n");
		}
		return;
	}
	buf_str(b, "Content-Transfer-Encoding: 8bit\r\n\r\n");
	for (const char *p = body; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			buf_add(b, "\r\n", 2);
			if (*p == '\r' && p[1] == '\n')
				p++;
		} else {
			buf_add(b, p, 1);
		}
	}
	if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2))
		buf_add(b, "\r\n", 2);
}

/* The domain of the sender for the Message-ID, when it is a plain host name. */
static const char *id_domain(const char *from)
{
	const char *d = strrchr(from, '@') + 1;

	for (const char *p = d; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return "jobwheel.invalid";
	return d;
}

static size_t smtp_read(char *dst, size_t size, size_t n, void *arg)
{
	struct smtp_state *st = arg;
	size_t len = size * n, left = st->msg_len - st->msg_off;

	if (len > left)
		len = left;
	memcpy(dst, st->msg + st->msg_off, len);
	st->msg_off += len;
	return len;
}

/* Keeps the server's last error reply (code >= 400) for the job's error:
 * later replies (the 221 to QUIT) do not overwrite it. Only what the
 * server sent is looked at, never what we sent (AUTH). */
static int smtp_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_state *st = arg;
	size_t n = size;

	(void)easy;
	if (type != CURLINFO_HEADER_IN || size < 3 || data[0] < '4' || data[0] > '5' ||
	    !isdigit((unsigned char)data[1]) || !isdigit((unsigned char)data[2]))
		return 0;
	while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	if (n > SMTP_REPLY_KEEP)
		n = SMTP_REPLY_KEEP;
	memcpy(st->reply, data, n);
	st->reply[n] = '\0';
	st->reply_code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
	return 0;
}

static void smtp_done(struct http_call *call, const struct http_result *res, void *arg)
{
	struct smtp_state *st = arg;
	struct job *job = st->job;
	CURL *easy = http_call_easy(call);
	long code = st->reply_code ? st->reply_code : res->status;
	bool retry;
	cJSON *result;

	/* The handle outlives st by a little: nothing of st may be used then. */
	curl_easy_setopt(easy, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, NULL);
	curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, NULL);
	job->state = NULL;
	if (res->code != CURLE_OK) {
		if (res->refused || res->code == CURLE_LOGIN_DENIED)
			retry = false;
		else if (code >= 400 && code <= 599)
			retry = code < 500;
		else
			retry = classify_transfer(res->code, 0) == OUTCOME_RETRYABLE;
		if (st->reply_code)
			job_failf(job, retry, "SMTP %s (%s)", st->reply, res->error);
		else
			job_failf(job, retry, "SMTP: %s", res->error);
		smtp_state_free(st);
		return;
	}
	result = cJSON_CreateObject();
	if (result) {
		cJSON_AddStringToObject(result, "mode", "smtp");
		cJSON_AddStringToObject(result, "message_id", st->message_id);
		cJSON_AddItemToObject(result, "to",
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job->payload, "to"), 1));
	}
	smtp_state_free(st);
	job_succeed(job, result);
}

/* Recipients from "to": one address or an array of them. */
static int smtp_recipients(struct smtp_state *st, const cJSON *to, struct buf *hdr, char *err, size_t errlen)
{
	const cJSON *v;
	int n = 0;

	if (cJSON_IsString(to)) {
		if (check_address("payload: to", to->valuestring, err, errlen) < 0)
			return -EINVAL;
		buf_str(hdr, to->valuestring);
		st->rcpt = curl_slist_append(NULL, to->valuestring);
		if (!st->rcpt) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		return 0;
	}
	if (!cJSON_IsArray(to) || cJSON_GetArraySize(to) < 1 || cJSON_GetArraySize(to) > SMTP_MAX_RCPT) {
		snprintf(err, errlen, "payload: to: must be an address or an array of 1..%d addresses", SMTP_MAX_RCPT);
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, to) {
		struct curl_slist *l;
		if (!cJSON_IsString(v)) {
			snprintf(err, errlen, "payload: to: must be an address or an array of addresses");
			return -EINVAL;
		}
		if (check_address("payload: to", v->valuestring, err, errlen) < 0)
			return -EINVAL;
		buf_str(hdr, n++ ? ", " : "");
		buf_str(hdr, v->valuestring);
		l = curl_slist_append(st->rcpt, v->valuestring);
		if (!l) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		st->rcpt = l;
	}
	return 0;
}

/* Checks the payload, builds the message and sets the transfer up; NULL
 * with *err on a bad payload or configuration (not retried). */
static CURL *smtp_prepare(struct job *job, struct smtp_state *st, char *err, size_t errlen)
{
	const struct config *cfg = job->env->cfg;
	const char *subject = NULL, *body = NULL, *from = NULL, *user = NULL, *password = NULL;
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(job->payload, "to");
	int64_t timeout_ms = SMTP_TIMEOUT_MS;
	struct buf b = { 0 };
	CURL *easy;

	char why[200];

	if (!to) {
		snprintf(err, errlen, "payload: to: required");
		return NULL;
	}
	if (json_get_string(job->payload, "subject", true, &subject, why, sizeof(why)) < 0 ||
	    json_get_string(job->payload, "body", true, &body, why, sizeof(why)) < 0 ||
	    json_get_string(job->payload, "from", false, &from, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "payload: %s", why);
		return NULL;
	}
	if (!from || !from[0])
		from = cfg->email_from;
	if (!from[0]) {
		snprintf(err, errlen, "no sender: set \"from\" in the payload or email.from");
		return NULL;
	}
	if (check_address("from", from, err, errlen) < 0)
		return NULL;
	if (strpbrk(subject, "\r\n")) {
		snprintf(err, errlen, "payload: subject: must not contain CR or LF (header injection)");
		return NULL;
	}
	if (strlen(subject) > SMTP_MAX_SUBJECT) {
		snprintf(err, errlen, "payload: subject: longer than %d bytes", SMTP_MAX_SUBJECT);
		return NULL;
	}
	if (strncmp(cfg->email_smtp_url, "smtp://", 7) && strncmp(cfg->email_smtp_url, "smtps://", 8)) {
		snprintf(err, errlen, "email.smtp_url must start with smtp:// or smtps://");
		return NULL;
	}
	if (cfg->email_smtp_user_env[0]) {
		user = getenv(cfg->email_smtp_user_env);
		password = cfg->email_smtp_password_env[0] ? getenv(cfg->email_smtp_password_env) : "";
		if (!user || !password) {
			snprintf(err, errlen, "%s names %s, which is not set",
				 user ? "email.smtp_password_env" : "email.smtp_user_env",
				 user ? cfg->email_smtp_password_env : cfg->email_smtp_user_env);
			return NULL;
		}
	}

	snprintf(st->message_id, sizeof(st->message_id), "<%lld.%d.%016llx@%s>", (long long)job->id, job->attempt,
		 (unsigned long long)rng_next(job->env->rng), id_domain(from));
	add_date(&b);
	buf_str(&b, "From: ");
	buf_str(&b, from);
	buf_str(&b, "\r\nTo: ");
	if (smtp_recipients(st, to, &b, err, errlen) < 0) {
		free(b.data);
		return NULL;
	}
	buf_str(&b, "\r\n");
	add_subject(&b, subject);
	buf_str(&b, "Message-ID: ");
	buf_str(&b, st->message_id);
	buf_str(&b, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n");
	add_body(&b, body);
	if (b.failed || !(easy = http_client_easy(job->env->http))) {
		free(b.data);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->msg = b.data;
	st->msg_len = b.len;

	if (job->timeout_ms > 0 && job->timeout_ms < timeout_ms)
		timeout_ms = job->timeout_ms;
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(easy, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, st->rcpt);
	curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, smtp_read);
	curl_easy_setopt(easy, CURLOPT_READDATA, st);
	curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st->msg_len);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < SMTP_CONNECT_TIMEOUT_MS ? timeout_ms : SMTP_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, smtp_debug);
	curl_easy_setopt(easy, CURLOPT_DEBUGDATA, st);
	curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L); /* feeds smtp_debug; nothing is printed */
	if (user) {
		/* libcurl copies them; they are neither logged nor kept here. */
		curl_easy_setopt(easy, CURLOPT_USERNAME, user);
		curl_easy_setopt(easy, CURLOPT_PASSWORD, password);
	}
	return easy;
}

static void smtp_start(struct job *job)
{
	struct smtp_state *st = calloc(1, sizeof(*st));
	char err[256] = "";
	CURL *easy;

	if (!st) {
		job_fail(job, "out of memory", true, 0);
		return;
	}
	st->job = job;
	easy = smtp_prepare(job, st, err, sizeof(err));
	if (!easy) {
		smtp_state_free(st);
		if (!strcmp(err, "out of memory"))
			job_fail(job, err, true, 0);
		else
			job_failf(job, false, "%s", err);
		return;
	}
	job->state = st;
	st->call = http_call_start(job->env->http, easy, job->env->cfg->email_smtp_url, smtp_done, st);
	if (!st->call) {
		job->state = NULL;
		smtp_state_free(st);
		job_fail(job, "cannot start the transfer", true, 0);
	}
}

/* ---------------------------------------------------------------- the kind */

static bool smtp_mode(const struct job *job)
{
	const char *mode = job->env->cfg->email_mode;

	return mode && strcmp(mode, "smtp") == 0; /* NULL in a zeroed test configuration */
}

static void email_start(struct job *job)
{
	if (smtp_mode(job))
		smtp_start(job);
	else
		mock_start(job);
}

static void email_abort(struct job *job)
{
	struct smtp_state *st = job->state;

	if (!smtp_mode(job)) {
		mock_abort(job);
		return;
	}
	if (!st)
		return;
	http_call_abort(st->call); /* stops the transfer at once; no callback */
	smtp_state_free(st);
	job->state = NULL;
}

const struct handler handler_email = { .kind = "email", .start = email_start, .abort = email_abort };
