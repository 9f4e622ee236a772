/* SPDX-License-Identifier: MIT */
/* SSE fan-out. Each event is formatted once into a ring; every client keeps
 * a cursor into it and is written with writev at its own pace, so a slow
 * client costs a cursor, never a copy or a wait for the others. A client
 * that falls out of the ring, or past its job-event budget, skips events
 * and is told how many with a `dropped` notice. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "feed.h"
#include "json.h"
#include "log.h"
#include "sse.h"
#include "sse_ring.h"
#include "strbuf.h"
#include "util.h"

#define IOV_MAX_BATCH 64
#define PENDING_MAX (256 * 1024) /* private bytes of a client (replay, notices) */
#define STUCK_S 60.0             /* a client that takes no byte this long is closed */

struct sse_client {
	struct sse *s;
	struct sse_client *prev, *next;
	int fd;
	ev_io io;
	uint64_t next_seq;      /* next ring event to consider */
	uint32_t partial;       /* bytes of that event sent already */
	struct strbuf pending;  /* private bytes, sent before ring events */
	size_t pending_off;
	uint8_t types;          /* bit per enum feed_type */
	bool replaying, blocked;
	bool replay_wanted;     /* Last-Event-ID older than the ring: replay when the feed is up */
	bool filters_jobs;      /* queue, kind, job or workflow_id given */
	uint64_t replay_after;
	char *queue, *kind;
	int64_t job, workflow_id;
	double tokens;
	ev_tstamp refilled_at, progress_at;
	uint64_t dropped;
};

struct sse {
	struct gateway *gw;
	struct sse_options opt;
	struct sse_ring ring;
	struct sse_client *clients;
	int nclients;
	int replays_waiting;    /* clients with replay_wanted */
	uint64_t flushed_head;  /* head at the last sse_flush() */
	uint64_t dropped_total;
	ev_timer keepalive;
};

void sse_publish(struct sse *s, const struct feed_event *ev)
{
	sse_ring_publish(&s->ring, ev);
}

/* ---------------------------------------------------------------- clients */

static bool wanted(const struct sse_client *c, const struct ring_ev *e)
{
	if (!(c->types & (1u << e->type)))
		return false;
	if (e->type != FEED_JOB)
		return true;
	return (!c->queue || !strcmp(c->queue, e->queue)) && (!c->kind || !strcmp(c->kind, e->kind)) &&
	       (!c->job || c->job == e->job_id) && (!c->workflow_id || c->workflow_id == e->workflow_id);
}

static void client_close(struct sse_client *c)
{
	struct sse *s = c->s;

	feed_replay_forget(s->gw->feed, c);
	if (c->replay_wanted)
		s->replays_waiting--;
	ev_io_stop(s->gw->loop, &c->io);
	close(c->fd);
	http_server_stream_closed(s->gw->http);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nclients--;
	strbuf_free(&c->pending);
	free(c->queue);
	free(c->kind);
	free(c);
}

static void client_block(struct sse_client *c)
{
	c->blocked = true;
	ev_io_stop(c->s->gw->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
	ev_io_start(c->s->gw->loop, &c->io);
}

static void client_unblock(struct sse_client *c)
{
	c->blocked = false;
	ev_io_stop(c->s->gw->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ);
	ev_io_start(c->s->gw->loop, &c->io);
}

/* Sends buf from *off on: 1 all sent, 0 the socket is full (the client
 * waits for EV_WRITE), -1 the client is gone (closed and freed). */
static int send_rest(struct sse_client *c, const char *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(c->fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			client_block(c);
			return 0;
		}
		if (n < 0) {
			client_close(c);
			return -1;
		}
		*off += (size_t)n;
		c->progress_at = ev_now(c->s->gw->loop);
	}
	return 1;
}

/* Sends the private bytes; false when blocked or closed. */
static bool flush_pending(struct sse_client *c)
{
	if (send_rest(c, c->pending.s, c->pending.len, &c->pending_off) < 1)
		return false;
	strbuf_free(&c->pending); /* idle clients keep no buffer */
	c->pending_off = 0;
	return true;
}

/* Finishes the ring event a previous write left half sent, so that private
 * bytes (keepalives, notices) never land inside an event; false when
 * blocked or closed. */
static bool flush_partial(struct sse_client *c)
{
	struct sse *s = c->s;
	size_t off = c->partial;
	struct ring_ev *e;
	int rc;

	if (!c->partial)
		return true;
	if (c->next_seq < sse_ring_tail(&s->ring)) { /* the rest of it is gone: the stream cannot go on */
		client_close(c);
		return false;
	}
	e = sse_ring_at(&s->ring, c->next_seq);
	rc = send_rest(c, e->text, e->len, &off);
	if (rc == 0)
		c->partial = (uint32_t)off;
	if (rc < 1)
		return false;
	c->partial = 0;
	c->next_seq++;
	return true;
}

/* Refills the client's job-event budget (a token bucket of one second). */
static void refill(struct sse_client *c, ev_tstamp now)
{
	double rate = c->s->opt.max_job_events_per_s;

	c->tokens += (now - c->refilled_at) * rate;
	c->refilled_at = now;
	if (c->tokens > rate)
		c->tokens = rate;
}

/* Writes what the client is due, until it is up to date or its socket is
 * full. */
static void client_flush(struct sse_client *c)
{
	struct sse *s = c->s;
	ev_tstamp now = ev_now(s->gw->loop);

	if (c->replaying || c->blocked || !flush_partial(c) || !flush_pending(c))
		return;
	refill(c, now);
	for (;;) {
		struct iovec iov[IOV_MAX_BATCH];
		uint64_t seqs[IOV_MAX_BATCH], seq;
		int niov = 0, njob = 0;
		ssize_t n;

		if (c->next_seq < sse_ring_tail(&s->ring)) { /* fell out of the ring */
			c->dropped += sse_ring_tail(&s->ring) - c->next_seq;
			c->next_seq = sse_ring_tail(&s->ring);
		}
		for (seq = c->next_seq; seq < s->ring.head && niov < IOV_MAX_BATCH; seq++) {
			struct ring_ev *e = sse_ring_at(&s->ring, seq);
			if (e->type == FEED_JOB && !c->filters_jobs && (c->tokens < 1 || !(c->types & 1u << FEED_JOB))) {
				/* The run of job events up to the next other one is
				 * skipped whole: dropped (no budget) or unwanted. */
				uint64_t end = sse_ring_next_other(&s->ring, seq);
				if (c->types & 1u << FEED_JOB)
					c->dropped += end - seq;
				seq = end - 1;
				continue;
			}
			if (!wanted(c, e))
				continue;
			if (e->type == FEED_JOB) {
				if (c->tokens < 1) {
					c->dropped++;
					continue;
				}
				c->tokens -= 1;
			}
			if (!sse_ring_text(e)) {
				c->tokens += e->type == FEED_JOB;
				continue;
			}
			njob += e->type == FEED_JOB;
			iov[niov].iov_base = e->text;
			iov[niov].iov_len = e->len;
			seqs[niov++] = seq;
		}
		if (niov == 0) {
			c->next_seq = seq;
			return;
		}
		n = writev(c->fd, iov, niov);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->tokens += njob; /* not sent: not spent */
			client_block(c);
			return;
		}
		if (n < 0) {
			client_close(c);
			return;
		}
		c->progress_at = now;
		for (int i = 0; i < niov; i++) {
			if ((size_t)n >= iov[i].iov_len) {
				n -= (ssize_t)iov[i].iov_len;
				c->next_seq = seqs[i] + 1;
				c->partial = 0;
				continue;
			}
			/* Partly sent: resume inside this event; the rest of the
			 * batch is decided again (and its tokens refunded). */
			c->partial = (uint32_t)n;
			c->next_seq = seqs[i];
			for (int j = i + 1; j < niov; j++)
				c->tokens += sse_ring_at(&s->ring, seqs[j])->type == FEED_JOB;
			client_block(c);
			return;
		}
		c->next_seq = seq;
	}
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sse_client *c = container_of(w, struct sse_client, io);

	if (revents & EV_READ) {
		char buf[512];
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			client_close(c);
			return;
		}
	}
	if (revents & EV_WRITE) {
		client_unblock(c);
		client_flush(c);
	}
}

static void start_replay(struct sse_client *c);

void sse_flush(struct sse *s)
{
	struct sse_client *c = s->clients, *next;

	if (s->flushed_head == s->ring.head && !s->replays_waiting)
		return; /* nothing new (clients behind are woken by their sockets) */
	s->flushed_head = s->ring.head;
	for (; c; c = next) {
		next = c->next; /* c may close */
		if (c->replay_wanted)
			start_replay(c);
		client_flush(c);
	}
}

static void notice_dropped(struct sse *s, struct sse_client *c)
{
	if (!c->dropped || c->pending.len > PENDING_MAX)
		return;
	strbuf_printf(&c->pending, "id: %" PRIu64 "\nevent: dropped\ndata: {\"dropped\":%" PRIu64 "}\n\n", s->ring.last_id,
		      c->dropped);
	s->dropped_total += c->dropped;
	c->dropped = 0;
}

void sse_publish_stats(struct sse *s, const char *json)
{
	struct strbuf b = { 0 };
	struct sse_client *c;

	for (c = s->clients; c; c = c->next)
		if (!c->replaying)
			notice_dropped(s, c);
	strbuf_printf(&b, "id: %" PRIu64 "\nevent: stats\ndata: %s\n\n", s->ring.last_id, json);
	if (!b.oom)
		sse_ring_push_text(&s->ring, s->ring.last_id, FEED_STATS, &b);
	strbuf_free(&b);
	sse_flush(s);
}

static void on_keepalive(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sse *s = container_of(t, struct sse, keepalive);
	struct sse_client *c = s->clients, *next;
	ev_tstamp now = ev_now(loop);

	for (; c; c = next) {
		next = c->next;
		if (c->blocked && now - c->progress_at > STUCK_S) {
			log_info("closing an SSE client that read nothing for %.0f s", STUCK_S);
			client_close(c);
			continue;
		}
		if (!c->pending.len && !c->replaying)
			strbuf_puts(&c->pending, ": keepalive\n\n");
		client_flush(c);
	}
}

/* ---------------------------------------------------------------- opening */

static void on_replay_event(const struct feed_event *ev, void *arg)
{
	struct sse_client *c = arg;
	struct strbuf b = { 0 };
	struct ring_ev probe = { .type = (uint8_t)ev->type };

	if (ev->type == FEED_JOB) {
		probe.job_id = ev->job->id;
		probe.workflow_id = ev->job->workflow_id;
		probe.queue = ev->job->queue;
		probe.kind = ev->job->kind;
	}
	if (!wanted(c, &probe))
		return;
	sse_format_event(&b, ev);
	strbuf_append(&c->pending, b.s, b.len);
	strbuf_free(&b);
}

static void on_replay_done(void *arg, uint64_t skipped, bool failed)
{
	struct sse_client *c = arg;

	c->replaying = false;
	c->dropped += skipped;
	if (failed)
		log_warn("SSE replay failed; the client continues with live events");
	notice_dropped(c->s, c);
	client_flush(c);
}

/* Replays from the database what came after replay_after and is no longer
 * in the ring; the client then reads the ring from the events that come
 * after the replay's end (the live cursor now). Until the feed is up, the
 * client waits (sse_flush() tries again after each batch). */
static void start_replay(struct sse_client *c)
{
	struct sse *s = c->s;

	c->replaying = true;
	if (feed_replay(s->gw->feed, c->replay_after, s->opt.replay_max, on_replay_event, on_replay_done, c) < 0) {
		if (!c->replay_wanted)
			s->replays_waiting++;
		c->replay_wanted = true;
		return;
	}
	if (c->replay_wanted)
		s->replays_waiting--;
	c->replay_wanted = false;
	c->next_seq = s->ring.head;
}

/* Parses the filters of GET /api/events into c; false when it answered. */
static bool parse_filters(struct call *call, struct sse_client *c, uint64_t *ret_last_id, bool *ret_has_last)
{
	char buf[256], *end;
	int64_t v;
	int rc;

	if (!call_check_params(call, "queue,kind,job,workflow_id,types,last_event_id"))
		return false;
	if ((rc = call_param_name(call, "queue", buf, sizeof(buf))) < 0)
		return false;
	if (rc && !(c->queue = strdup(buf)))
		goto oom;
	if ((rc = call_param_name(call, "kind", buf, sizeof(buf))) < 0)
		return false;
	if (rc && !(c->kind = strdup(buf)))
		goto oom;
	if (call_param_int(call, "job", 1, INT64_MAX, &c->job) < 0 ||
	    call_param_int(call, "workflow_id", 1, INT64_MAX, &c->workflow_id) < 0)
		return false;
	c->filters_jobs = c->queue || c->kind || c->job || c->workflow_id;
	c->types = (1u << FEED_NTYPES) - 1;
	rc = http_query_param(call->req->query, "types", buf, sizeof(buf));
	if (rc > 0) {
		char *save = NULL;
		c->types = 0;
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int i = 0;
			while (i < FEED_NTYPES && strcmp(t, sse_type_names[i]))
				i++;
			if (i == FEED_NTYPES) {
				call_error(call, 400, "bad_request", "types",
					   "types: \"%.32s\" is not one of job, worker, dlq, coordinator, stats", t);
				return false;
			}
			c->types |= (uint8_t)(1u << i);
		}
	} else if (rc < 0) {
		call_error(call, 400, "bad_request", "types", "types: too long or badly encoded");
		return false;
	}
	*ret_has_last = false;
	rc = http_query_param(call->req->query, "last_event_id", buf, sizeof(buf));
	if (rc > 0 || (rc == 0 && call->req->last_event_id)) {
		const char *text = rc > 0 ? buf : call->req->last_event_id;
		errno = 0;
		v = (int64_t)strtoull(text, &end, 10);
		/* Digits only: strtoull would also take spaces, '+' and a '-'
		 * that wraps around. */
		if (!isdigit((unsigned char)text[0]) || *end || errno) {
			call_error(call, 400, "bad_request", "last_event_id",
				   "Last-Event-ID: \"%.32s\" is not an event id of this stream", text);
			return false;
		}
		*ret_last_id = (uint64_t)v;
		*ret_has_last = true;
	}
	return true;
oom:
	call_error(call, 500, "internal", NULL, "out of memory");
	return false;
}

/* Whether every event after last_id is in the ring (or still to come): the
 * gateway followed the feed from before it, and none after it was evicted. */
static bool in_ring(const struct sse *s, uint64_t last_id)
{
	uint64_t from = feed_live_from(s->gw->feed);

	return from && last_id + 1 >= from && last_id >= s->ring.evicted_id;
}

void sse_open(struct sse *s, struct call *call)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				   "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
				   "retry: 2000\n\n";
	struct sse_client *c = calloc(1, sizeof(*c));
	uint64_t last_id = 0;
	bool has_last = false;
	int fd;

	if (!c) {
		call_error(call, 500, "internal", NULL, "out of memory");
		return;
	}
	if (!parse_filters(call, c, &last_id, &has_last)) {
		free(c->queue);
		free(c->kind);
		free(c);
		return;
	}
	fd = http_detach(call->req);
	call_finish(call);
	if (fd < 0) {
		free(c->queue);
		free(c->kind);
		free(c);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->tokens = s->opt.max_job_events_per_s;
	c->refilled_at = c->progress_at = ev_now(s->gw->loop);
	strbuf_append(&c->pending, head, sizeof(head) - 1);
	c->next_seq = s->ring.head;
	if (has_last && in_ring(s, last_id)) {
		c->next_seq = sse_ring_after(&s->ring, last_id);
	} else if (has_last) {
		c->replaying = true;
		c->replay_after = last_id;
	}
	c->next = s->clients;
	if (c->next)
		c->next->prev = c;
	s->clients = c;
	s->nclients++;
	ev_io_init(&c->io, on_client_io, fd, EV_READ);
	ev_io_start(s->gw->loop, &c->io);
	if (c->replaying)
		start_replay(c);
	client_flush(c);
}

/* ---------------------------------------------------------------- lifetime */

struct sse *sse_new(struct gateway *gw, const struct sse_options *opt)
{
	struct sse *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->gw = gw;
	s->opt = *opt;
	if (sse_ring_init(&s->ring, (uint64_t)opt->ring_events) < 0) {
		free(s);
		return NULL;
	}
	ev_timer_init(&s->keepalive, on_keepalive, opt->keepalive_s, opt->keepalive_s);
	ev_timer_start(gw->loop, &s->keepalive);
	return s;
}

void sse_free(struct sse *s)
{
	if (!s)
		return;
	ev_timer_stop(s->gw->loop, &s->keepalive);
	while (s->clients)
		client_close(s->clients);
	sse_ring_free(&s->ring);
	free(s);
}

int sse_clients(const struct sse *s)
{
	return s->nclients;
}

uint64_t sse_dropped_total(const struct sse *s)
{
	return s->dropped_total;
}

void route_events(struct call *call)
{
	/* Before the feed has its start position, "from now on" has no
	 * meaning yet: the client retries (and /readyz says not ready). */
	if (!feed_live(call->gw->feed) && !call->req->last_event_id &&
	    http_query_param(call->req->query, "last_event_id", (char[2]){ 0 }, 2) == 0) {
		call_error(call, 503, "unavailable", NULL, "the event stream is starting; retry in a moment");
		return;
	}
	sse_open(call->gw->sse, call);
}
