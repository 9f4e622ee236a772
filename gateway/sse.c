/* SPDX-License-Identifier: MIT */
/* SSE fan-out. Each event is formatted once into a ring; every client keeps
 * a cursor into it and is written with writev at its own pace, so a slow
 * client costs a cursor, never a copy or a wait for the others. A client
 * that falls out of the ring, or past its job-event budget, skips events
 * and is told how many with a `dropped` notice. */
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
#include "strbuf.h"
#include "util.h"

#define IOV_MAX_BATCH 64
#define PENDING_MAX (256 * 1024) /* private bytes of a client (replay, notices) */
#define STUCK_S 60.0             /* a client that takes no byte this long is closed */

/* A job event keeps its fields and is formatted when a client first sends
 * it: most job events never reach any client whose budget is spent. */
struct ring_ev {
	uint64_t id;
	int64_t job_id, workflow_id, attempt, priority;
	uint32_t len;
	uint8_t type;
	char *text; /* the SSE text, NULL until formatted (job events) */
	const char *queue, *kind, *state, *error, *at; /* job events: in strings[] */
	char strings[];
};

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
	struct ring_ev **ring;
	uint64_t cap, head;     /* events ever published; the ring holds [head - count, head) */
	uint64_t count;
	uint64_t last_id;
	uint64_t evicted_id;    /* newest database event no longer in the ring */
	/* Sequence numbers of the ring's events that are not job events, in
	 * order: a client with no budget left skips the job events between
	 * two of them at once (most events are job events). */
	uint64_t *others;
	uint64_t others_head, others_count;
	struct sse_client *clients;
	int nclients;
	int replays_waiting;    /* clients with replay_wanted */
	uint64_t flushed_head;  /* head at the last sse_flush() */
	uint64_t dropped_total;
	ev_timer keepalive;
};

static const char *const type_names[FEED_NTYPES] = { "job", "worker", "dlq", "coordinator", "stats" };

static uint64_t ring_tail(const struct sse *s)
{
	return s->head - s->count;
}

static struct ring_ev *ring_at(const struct sse *s, uint64_t seq)
{
	return s->ring[seq % s->cap];
}

/* ---------------------------------------------------------------- formatting */

static void format_event(struct strbuf *b, const struct feed_event *ev)
{
	strbuf_puts(b, "id: ");
	strbuf_append_u64(b, ev->id);
	strbuf_puts(b, "\nevent: ");
	strbuf_puts(b, type_names[ev->type]);
	strbuf_puts(b, "\ndata: ");
	if (ev->type == FEED_JOB) { /* by hand: tens of thousands a second */
		const struct feed_job *j = ev->job;
		strbuf_puts(b, "{\"id\":");
		strbuf_append_i64(b, j->id);
		strbuf_puts(b, ",\"queue\":");
		json_append_string(b, j->queue);
		strbuf_puts(b, ",\"kind\":");
		json_append_string(b, j->kind);
		strbuf_puts(b, ",\"state\":");
		json_append_string(b, j->state);
		strbuf_puts(b, ",\"attempt\":");
		strbuf_append_i64(b, j->attempt);
		strbuf_puts(b, ",\"priority\":");
		strbuf_append_i64(b, j->priority);
		strbuf_puts(b, ",\"at\":");
		json_append_string(b, ev->at);
		if (j->workflow_id) {
			strbuf_puts(b, ",\"workflow_id\":");
			strbuf_append_i64(b, j->workflow_id);
		}
		if (j->error) {
			strbuf_puts(b, ",\"error\":");
			json_append_string(b, j->error);
		}
		strbuf_puts(b, "}");
	} else {
		strbuf_puts(b, ev->data);
	}
	strbuf_puts(b, "\n\n");
}

static void ring_free_event(struct ring_ev *e)
{
	if (e->text != e->strings)
		free(e->text);
	free(e);
}

static void ring_append(struct sse *s, struct ring_ev *e)
{
	if (s->count == s->cap) {
		struct ring_ev *old = ring_at(s, ring_tail(s));
		if (old->type != FEED_STATS && old->id > s->evicted_id)
			s->evicted_id = old->id;
		ring_free_event(old);
		s->count--;
	}
	s->ring[s->head % s->cap] = e;
	if (e->type != FEED_JOB) {
		if (s->others_count == s->cap)
			s->others_count--;
		s->others[s->others_head++ % s->cap] = s->head;
		s->others_count++;
	}
	s->head++;
	s->count++;
	s->last_id = e->id;
	while (s->others_count && s->others[(s->others_head - s->others_count) % s->cap] < ring_tail(s))
		s->others_count--;
}

/* Copies src after *at in e->strings; returns the copy (NULL for NULL). */
static const char *keep(char **at, const char *src)
{
	char *dst = *at;
	size_t n;

	if (!src)
		return NULL;
	n = strlen(src) + 1;
	memcpy(dst, src, n);
	*at += n;
	return dst;
}

static void ring_push_job(struct sse *s, const struct feed_event *ev)
{
	const struct feed_job *j = ev->job;
	size_t n = strlen(j->queue) + strlen(j->kind) + strlen(j->state) + strlen(ev->at) + 4 +
		   (j->error ? strlen(j->error) + 1 : 0);
	struct ring_ev *e = malloc(sizeof(*e) + n);
	char *at;

	if (!e) {
		log_error("out of memory: an SSE event is lost");
		return;
	}
	*e = (struct ring_ev){ .id = ev->id, .type = FEED_JOB, .job_id = j->id, .workflow_id = j->workflow_id,
			       .attempt = j->attempt, .priority = j->priority };
	at = e->strings;
	e->queue = keep(&at, j->queue);
	e->kind = keep(&at, j->kind);
	e->state = keep(&at, j->state);
	e->at = keep(&at, ev->at);
	e->error = keep(&at, j->error);
	ring_append(s, e);
}

static void ring_push_text(struct sse *s, uint64_t id, enum feed_type type, const struct strbuf *text)
{
	struct ring_ev *e = malloc(sizeof(*e) + text->len + 1);

	if (!e) {
		log_error("out of memory: an SSE event is lost");
		return;
	}
	*e = (struct ring_ev){ .id = id, .type = (uint8_t)type, .len = (uint32_t)text->len };
	memcpy(e->strings, text->s, text->len + 1);
	e->text = e->strings;
	ring_append(s, e);
}

/* The SSE text of e, formatted on first use; NULL when out of memory. */
static const char *ring_text(struct ring_ev *e)
{
	struct feed_job j;
	struct feed_event ev;
	struct strbuf b = { 0 };

	if (e->text)
		return e->text;
	j = (struct feed_job){ .id = e->job_id, .workflow_id = e->workflow_id, .queue = e->queue, .kind = e->kind,
			       .state = e->state, .error = e->error, .attempt = e->attempt, .priority = e->priority };
	ev = (struct feed_event){ .id = e->id, .type = FEED_JOB, .at = e->at, .job = &j };
	format_event(&b, &ev);
	if (b.oom) {
		strbuf_free(&b);
		return NULL;
	}
	e->text = b.s; /* the buffer is the event's now */
	e->len = (uint32_t)b.len;
	return e->text;
}

/* The first event at or after seq that is not a job event, or the head. */
static uint64_t next_other(const struct sse *s, uint64_t seq)
{
	uint64_t lo = s->others_head - s->others_count, hi = s->others_head;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (s->others[mid % s->cap] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->others_head ? s->others[lo % s->cap] : s->head;
}

void sse_publish(struct sse *s, const struct feed_event *ev)
{
	struct strbuf b = { 0 };

	if (ev->type == FEED_JOB) {
		ring_push_job(s, ev);
		return;
	}
	format_event(&b, ev);
	if (!b.oom)
		ring_push_text(s, ev->id, ev->type, &b);
	strbuf_free(&b);
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
	if (c->next_seq < ring_tail(s)) { /* the rest of it is gone: the stream cannot go on */
		client_close(c);
		return false;
	}
	e = ring_at(s, c->next_seq);
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

		if (c->next_seq < ring_tail(s)) { /* fell out of the ring */
			c->dropped += ring_tail(s) - c->next_seq;
			c->next_seq = ring_tail(s);
		}
		for (seq = c->next_seq; seq < s->head && niov < IOV_MAX_BATCH; seq++) {
			struct ring_ev *e = ring_at(s, seq);
			if (e->type == FEED_JOB && !c->filters_jobs && (c->tokens < 1 || !(c->types & 1u << FEED_JOB))) {
				/* The run of job events up to the next other one is
				 * skipped whole: dropped (no budget) or unwanted. */
				uint64_t end = next_other(s, seq);
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
			if (!ring_text(e)) {
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
				c->tokens += ring_at(s, seqs[j])->type == FEED_JOB;
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

	if (s->flushed_head == s->head && !s->replays_waiting)
		return; /* nothing new (clients behind are woken by their sockets) */
	s->flushed_head = s->head;
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
	strbuf_printf(&c->pending, "id: %" PRIu64 "\nevent: dropped\ndata: {\"dropped\":%" PRIu64 "}\n\n", s->last_id,
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
	strbuf_printf(&b, "id: %" PRIu64 "\nevent: stats\ndata: %s\n\n", s->last_id, json);
	if (!b.oom)
		ring_push_text(s, s->last_id, FEED_STATS, &b);
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
	format_event(&b, ev);
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
	c->next_seq = s->head;
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
			while (i < FEED_NTYPES && strcmp(t, type_names[i]))
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
		if (!*text || *end || errno || text[0] == '-') {
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

	return from && last_id + 1 >= from && last_id >= s->evicted_id;
}

/* The ring position of the first event after last_id, or the head. */
static uint64_t ring_after(const struct sse *s, uint64_t last_id)
{
	uint64_t lo = ring_tail(s), hi = s->head;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ring_at(s, mid)->id <= last_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
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
	c->next_seq = s->head;
	if (has_last && in_ring(s, last_id)) {
		c->next_seq = ring_after(s, last_id);
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
	s->cap = (uint64_t)opt->ring_events;
	s->ring = calloc(s->cap, sizeof(s->ring[0]));
	s->others = calloc(s->cap, sizeof(s->others[0]));
	if (!s->ring || !s->others) {
		free(s->ring);
		free(s->others);
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
	while (s->count) {
		ring_free_event(ring_at(s, ring_tail(s)));
		s->count--;
	}
	free(s->ring);
	free(s->others);
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
