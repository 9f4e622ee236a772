/* SPDX-License-Identifier: MIT */
/* The SSE ring: recent events, each formatted at most once, that every
 * client reads at its own pace through a sequence number. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "sse_ring.h"

const char *const sse_type_names[FEED_NTYPES] = { "job", "worker", "dlq", "coordinator", "stats" };

uint64_t sse_ring_tail(const struct sse_ring *s)
{
	return s->head - s->count;
}

struct ring_ev *sse_ring_at(const struct sse_ring *s, uint64_t seq)
{
	return s->ev[seq % s->cap];
}

/* ---------------------------------------------------------------- formatting */

void sse_format_event(struct strbuf *b, const struct feed_event *ev)
{
	strbuf_puts(b, "id: ");
	strbuf_append_u64(b, ev->id);
	strbuf_puts(b, "\nevent: ");
	strbuf_puts(b, sse_type_names[ev->type]);
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

static void ring_append(struct sse_ring *s, struct ring_ev *e)
{
	if (s->count == s->cap) {
		struct ring_ev *old = sse_ring_at(s, sse_ring_tail(s));
		if (old->type != FEED_STATS && old->id > s->evicted_id)
			s->evicted_id = old->id;
		ring_free_event(old);
		s->count--;
	}
	s->ev[s->head % s->cap] = e;
	if (e->type != FEED_JOB) {
		if (s->others_count == s->cap)
			s->others_count--;
		s->others[s->others_head++ % s->cap] = s->head;
		s->others_count++;
	}
	s->head++;
	s->count++;
	s->last_id = e->id;
	while (s->others_count && s->others[(s->others_head - s->others_count) % s->cap] < sse_ring_tail(s))
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

static void ring_push_job(struct sse_ring *s, const struct feed_event *ev)
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

void sse_ring_push_text(struct sse_ring *s, uint64_t id, enum feed_type type, const struct strbuf *text)
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
const char *sse_ring_text(struct ring_ev *e)
{
	struct feed_job j;
	struct feed_event ev;
	struct strbuf b = { 0 };

	if (e->text)
		return e->text;
	j = (struct feed_job){ .id = e->job_id, .workflow_id = e->workflow_id, .queue = e->queue, .kind = e->kind,
			       .state = e->state, .error = e->error, .attempt = e->attempt, .priority = e->priority };
	ev = (struct feed_event){ .id = e->id, .type = FEED_JOB, .at = e->at, .job = &j };
	sse_format_event(&b, &ev);
	if (b.oom) {
		strbuf_free(&b);
		return NULL;
	}
	e->text = b.s; /* the buffer is the event's now */
	e->len = (uint32_t)b.len;
	return e->text;
}

/* The first event at or after seq that is not a job event, or the head. */
uint64_t sse_ring_next_other(const struct sse_ring *s, uint64_t seq)
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

/* The ring position of the first event after last_id, or the head. */
uint64_t sse_ring_after(const struct sse_ring *s, uint64_t last_id)
{
	uint64_t lo = sse_ring_tail(s), hi = s->head;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (sse_ring_at(s, mid)->id <= last_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void sse_ring_publish(struct sse_ring *s, const struct feed_event *ev)
{
	struct strbuf b = { 0 };

	if (ev->type == FEED_JOB) {
		ring_push_job(s, ev);
		return;
	}
	sse_format_event(&b, ev);
	if (!b.oom)
		sse_ring_push_text(s, ev->id, ev->type, &b);
	strbuf_free(&b);
}

int sse_ring_init(struct sse_ring *s, uint64_t cap)
{
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->ev = calloc(cap, sizeof(s->ev[0]));
	s->others = calloc(cap, sizeof(s->others[0]));
	if (!s->ev || !s->others) {
		sse_ring_free(s);
		return -1;
	}
	return 0;
}

void sse_ring_free(struct sse_ring *s)
{
	while (s->ev && s->count) {
		ring_free_event(sse_ring_at(s, sse_ring_tail(s)));
		s->count--;
	}
	free(s->ev);
	free(s->others);
	s->ev = NULL;
	s->others = NULL;
}
