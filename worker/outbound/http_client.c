/* SPDX-License-Identifier: MIT */
/* libcurl multi on libev: CURLMOPT_SOCKETFUNCTION puts an ev_io on each
 * socket libcurl wants watched, CURLMOPT_TIMERFUNCTION drives one ev_timer,
 * and finished transfers are collected after every action. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "classify.h"
#include "http_client.h"
#include "log.h"
#include "util.h"

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	const struct addr_policy *policy;
	struct http_call *calls; /* in flight */
};

struct http_call {
	struct http_client *client;
	struct http_call *prev, *next;
	CURL *easy;
	http_done_fn done;
	void *arg;
	char *host;              /* of the URL, for name entries of http.allow */
	char *body;
	size_t body_len;
	bool truncated, refused;
	int64_t retry_after_ms;
	ev_tstamp started;
	char errbuf[CURL_ERROR_SIZE];
};

struct sock_watch {
	ev_io io;
	struct http_client *client;
};

static void check_done(struct http_client *c);

/* ---------------------------------------------------------------- loop glue */

static void on_sock(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_watch *sw = container_of(w, struct sock_watch, io);
	struct http_client *c = sw->client;
	int running, flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(c->multi, w->fd, flags, &running);
	check_done(c);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct sock_watch *sw = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (sw) {
			ev_io_stop(c->loop, &sw->io);
			free(sw);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (!sw) {
		sw = calloc(1, sizeof(*sw));
		if (!sw)
			return -1;
		sw->client = c;
		ev_init(&sw->io, on_sock);
		curl_multi_assign(c->multi, s, sw);
	}
	ev_io_stop(c->loop, &sw->io);
	ev_io_set(&sw->io, s, (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
	ev_io_start(c->loop, &sw->io);
	return 0;
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_client *c = container_of(t, struct http_client, timer);
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) { /* 0: at once, but from the loop, not from inside libcurl */
		ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

/* ---------------------------------------------------------------- per call */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct http_call *call = arg;
	size_t len = size * n, room = HTTP_BODY_KEEP - call->body_len;

	if (len > room) {
		call->truncated = true;
		len = room;
	}
	if (len) {
		char *b = realloc(call->body, call->body_len + len + 1);
		if (!b)
			return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
		call->body = b;
		memcpy(call->body + call->body_len, data, len);
		call->body_len += len;
		call->body[call->body_len] = '\0';
	}
	return size * n; /* the rest is read and dropped */
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct http_call *call = arg;
	size_t len = size * n;

	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		char value[128];
		size_t vlen = len - 12 < sizeof(value) - 1 ? len - 12 : sizeof(value) - 1;
		int64_t ms;
		memcpy(value, data + 12, vlen);
		value[vlen] = '\0';
		if (retry_after_parse(value, time(NULL), &ms) == 0)
			call->retry_after_ms = ms;
	} else if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		call->retry_after_ms = -1; /* a new response (after 100 Continue) */
	}
	return len;
}

/* The address policy, on every connection libcurl opens. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct http_call *call = arg;

	if (!addr_policy_allows(call->client->policy, call->host, &addr->addr)) {
		call->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void call_unlink(struct http_call *call)
{
	struct http_client *c = call->client;

	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
}

static void call_free(struct http_call *call)
{
	curl_multi_remove_handle(call->client->multi, call->easy);
	curl_easy_cleanup(call->easy);
	curl_free(call->host);
	free(call->body);
	free(call);
}

static void check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct http_call *call = NULL;
		struct http_result res = { 0 };
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
		res.code = msg->data.result;
		curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &res.status);
		res.refused = call->refused;
		res.error = res.code == CURLE_OK ? ""
			    : call->refused ? "destination address refused by the outbound policy (see http.allow)"
			    : call->errbuf[0] ? call->errbuf
					      : curl_easy_strerror(res.code);
		res.body = call->body ? call->body : "";
		res.body_len = call->body_len;
		res.truncated = call->truncated;
		res.retry_after_ms = call->retry_after_ms;
		res.duration_ms = (int64_t)((ev_time() - call->started) * 1000.0);
		call_unlink(call);
		call->done(call, &res, call->arg);
		call_free(call);
	}
}

struct http_call *http_call_start(struct http_client *c, CURL *easy, const char *url, http_done_fn done,
				  void *arg)
{
	struct http_call *call = calloc(1, sizeof(*call));
	CURLU *u = curl_url();

	if (!call || !u) {
		free(call);
		curl_url_cleanup(u);
		curl_easy_cleanup(easy);
		return NULL;
	}
	/* The host as written in the URL: name entries of http.allow match it. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_HOST, &call->host, 0);
	curl_url_cleanup(u);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	call->client = c;
	call->easy = easy;
	call->done = done;
	call->arg = arg;
	call->retry_after_ms = -1;
	call->started = ev_time();
	curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, call);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
		curl_free(call->host);
		curl_easy_cleanup(easy);
		free(call);
		return NULL;
	}
	call->next = c->calls;
	if (call->next)
		call->next->prev = call;
	c->calls = call;
	return call;
}

void http_call_abort(struct http_call *call)
{
	call_unlink(call);
	call_free(call);
}

CURL *http_call_easy(struct http_call *call)
{
	return call->easy;
}

/* ---------------------------------------------------------------- lifetime */

struct http_client *http_client_new(struct ev_loop *loop, const struct addr_policy *policy)
{
	struct http_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->policy = policy;
	ev_init(&c->timer, on_timer);
	return c;
}

CURL *http_client_easy(struct http_client *c)
{
	if (!c->multi) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		c->multi = curl_multi_init();
		if (!c->multi) {
			curl_global_cleanup();
			return NULL;
		}
		curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
		curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
		curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
		curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
		curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
	}
	return curl_easy_init();
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	while (c->calls)
		http_call_abort(c->calls);
	ev_timer_stop(c->loop, &c->timer);
	if (c->multi) {
		curl_multi_cleanup(c->multi);
		curl_global_cleanup();
	}
	free(c);
}
