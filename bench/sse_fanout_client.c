/* SPDX-License-Identifier: MIT */
/* The SSE fan-out benchmark's client pool: N non-blocking connections on one
 * libev loop, the request they send, and the ramp-up that connects them. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/types.h>

#include "sse_fanout.h"
#include "util.h"

/*
 * A client counts as connected once it has read "HTTP/1.1 200" with a
 * text/event-stream content type (sse_fanout_stream.c decides); clients
 * connect in batches, each batch waiting for its headers, so the gateway's
 * listen backlog never overflows.
 */

void client_note_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
	va_end(ap);
}

void client_close(struct client *c, bool failure)
{
	struct bench *b = c->b;

	if (c->state == C_IDLE || c->state == C_CLOSED)
		return;
	ev_io_stop(b->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	if (c->state == C_STREAMING) {
		b->streaming--;
		b->disconnects++;
		if (b->in_round && c->got_round != b->round)
			b->remaining--;
	} else {
		b->pending--;
		if (failure)
			b->connect_failures++;
	}
	c->state = C_CLOSED;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = container_of(w, struct client, io);
	struct bench *b = c->b;

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		ssize_t k;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			client_note_error(b, "connect: %s", strerror(err));
			client_close(c, true);
			return;
		}
		k = send(c->fd, b->request + c->sent, b->request_len - c->sent, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (k < 0) {
			client_note_error(b, "send: %s", strerror(errno));
			client_close(c, true);
			return;
		}
		c->sent += (uint32_t)k;
		if (c->sent < b->request_len)
			return;
		c->state = C_HEADERS;
		ev_io_stop(loop, w);
		ev_io_set(w, c->fd, EV_READ);
		ev_io_start(loop, w);
		return;
	}

	for (;;) {
		ssize_t n = recv(c->fd, b->rbuf, sizeof(b->rbuf), 0);
		uint64_t t = now_ns();
		int r;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (c->state == C_HEADERS)
				client_note_error(b, "client %td: %s before the response headers", c - b->clients,
				                  n ? strerror(errno) : "EOF");
			client_close(c, true);
			return;
		}
		b->bytes += (uint64_t)n;
		r = stream_feed(b, c, (char *)b->rbuf, (size_t)n, t);
		if (r < 0) {
			if (c->state == C_STREAMING)
				client_note_error(b, "client %td: bad stream (%s)", c - b->clients, strerror(-r));
			client_close(c, true);
			return;
		}
		if ((size_t)n < sizeof(b->rbuf))
			return;
	}
}

static void client_connect(struct bench *b, struct client *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->b = b;
	c->state = C_CONNECTING;
	c->sent = 0;
	c->len = 0;
	c->chunked = 0;
	c->cs = CS_SIZE;
	c->chunk_left = 0;
	c->ev_type = T_NONE;
	c->data_id = -1;
	c->got_round = -1;
	c->fd = fd;
	b->pending++;
	if (fd < 0) {
		client_note_error(b, "socket: %s", strerror(errno));
		c->state = C_CLOSED;
		b->pending--;
		b->connect_failures++;
		return;
	}
	if (connect(fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) < 0 && errno != EINPROGRESS) {
		client_note_error(b, "connect: %s", strerror(errno));
		close(fd);
		c->state = C_CLOSED;
		b->pending--;
		b->connect_failures++;
		return;
	}
	ev_io_init(&c->io, client_cb, fd, EV_WRITE);
	ev_io_start(b->loop, &c->io);
}

bool client_run_until_zero(struct bench *b, const int *counter, uint64_t deadline_ns)
{
	while (*counter > 0) {
		if (now_ns() >= deadline_ns)
			return false;
		ev_run(b->loop, EVRUN_ONCE);
	}
	return true;
}

void client_run_for(struct bench *b, double seconds)
{
	uint64_t until = now_ns() + (uint64_t)(seconds * 1e9);

	while (now_ns() < until)
		ev_run(b->loop, EVRUN_ONCE);
}

#define REQUEST_FMT \
	"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s%s%s\r\n"

int client_build_request(struct bench *b)
{
	const char *ah = b->o.token ? "Authorization: Bearer " : "";
	const char *tok = b->o.token ? b->o.token : "";
	const char *crlf = b->o.token ? "\r\n" : "";
	int n = snprintf(NULL, 0, REQUEST_FMT, b->o.path, b->o.host, b->o.port, ah, tok, crlf);

	if (n < 0)
		return -EINVAL;
	free(b->request);
	b->request = malloc((size_t)n + 1);
	if (!b->request)
		return -ENOMEM;
	snprintf(b->request, (size_t)n + 1, REQUEST_FMT, b->o.path, b->o.host, b->o.port, ah, tok, crlf);
	b->request_len = (size_t)n;
	return 0;
}

/* Connect clients [from, to) and wait for their headers. */
static void connect_batch(struct bench *b, int from, int to)
{
	uint64_t deadline = now_ns() + (uint64_t)(b->o.connect_timeout_s * 1e9);

	for (int i = from; i < to; i++)
		client_connect(b, &b->clients[i]);
	if (!client_run_until_zero(b, &b->pending, deadline)) {
		client_note_error(b, "clients %d..%d: no response headers within %.1f s", from, to - 1,
		                  b->o.connect_timeout_s);
		for (int i = from; i < to; i++)
			if (b->clients[i].state == C_CONNECTING || b->clients[i].state == C_HEADERS)
				client_close(&b->clients[i], true);
	}
}

int client_ramp_up(struct bench *b, double *ret_ramp_s)
{
	uint64_t t_ramp = now_ns();
	int r;

	/* probe with one client: fall back to plain /api/events if the filters are refused */
	connect_batch(b, 0, 1);
	if (b->streaming == 0 && b->o.default_path && b->last_status == 400) {
		fprintf(stderr, "sse_fanout: %s refused (%s); falling back to /api/events\n", b->o.path,
		        b->first_error);
		b->o.path = "/api/events";
		b->first_error[0] = '\0';
		b->bad_status = b->connect_failures = 0;
		r = client_build_request(b);
		if (r < 0)
			return r;
		connect_batch(b, 0, 1);
	}
	if (b->streaming == 0) {
		fprintf(stderr, "sse_fanout: the first client could not subscribe: %s\n", b->first_error);
		return -EPROTO;
	}
	for (int i = 1; i < b->o.clients; i += b->o.batch) {
		int to = i + b->o.batch < b->o.clients ? i + b->o.batch : b->o.clients;

		connect_batch(b, i, to);
		if (to / 1000 != i / 1000)
			fprintf(stderr, "sse_fanout: %d clients connected, %d failed\n", b->streaming,
			        b->connect_failures);
	}
	*ret_ramp_s = (double)(now_ns() - t_ramp) / 1e9;
	fprintf(stderr, "sse_fanout: %d of %d clients connected in %.2f s\n", b->streaming, b->o.clients,
	        *ret_ramp_s);
	return 0;
}
