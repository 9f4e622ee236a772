/* SPDX-License-Identifier: MIT */
/* Outcomes of finished attempts, reported in one statement per batch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outcomes.h"

/* Both kinds of outcome in one statement: one transaction, one commit. */
static const char report_sql[] =
	"SELECT jobwheel.complete_many($1::bigint[], $2::int[], $3::jsonb[]),"
	" jobwheel.fail_many($4::bigint[], $5::int[], $6::text[], $7::boolean[], $8::bigint[])";

/* The same, followed by a claim ($9..$12), still one transaction. */
const char outcomes_report_and_claim_sql[] =
	"SELECT " CLAIM_COLUMNS " FROM jobwheel.report_and_claim("
	"$1::bigint[], $2::int[], $3::jsonb[], $4::bigint[], $5::int[], $6::text[], $7::boolean[], $8::bigint[],"
	" $9, $10::text[], $11, $12)";

int outcomes_add(struct outcomes *o, int64_t id, int attempt, const struct job_outcome *jo)
{
	struct outcome *e;
	char *text = NULL;

	if (o->n == o->cap) {
		int cap = o->cap ? o->cap * 2 : 64;
		struct outcome *v = realloc(o->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	if (jo->ok && jo->result)
		text = cJSON_PrintUnformatted(jo->result);
	else if (!jo->ok)
		text = strdup(jo->error ? jo->error : "unknown error");
	if ((jo->ok && jo->result && !text) || (!jo->ok && !text))
		return -ENOMEM;
	e = &o->v[o->n++];
	*e = (struct outcome){ .id = id, .attempt = attempt, .ok = jo->ok, .text = text,
			       .retryable = jo->retryable, .retry_after_ms = jo->retry_after_ms };
	return 0;
}

int outcomes_waiting(const struct outcomes *o)
{
	return o->n - o->inflight;
}

const char *outcomes_begin_send(struct outcomes *o, const char *ret_params[8])
{
	struct strbuf *p = o->params;

	for (int i = 0; i < 8; i++)
		pgarray_begin(&p[i]);
	for (int i = 0; i < o->n; i++) {
		const struct outcome *e = &o->v[i];
		if (e->ok) {
			pgarray_add_int(&p[0], e->id);
			pgarray_add_int(&p[1], e->attempt);
			pgarray_add_text(&p[2], e->text);
		} else {
			pgarray_add_int(&p[3], e->id);
			pgarray_add_int(&p[4], e->attempt);
			pgarray_add_text(&p[5], e->text);
			pgarray_add_text(&p[6], e->retryable ? "t" : "f");
			if (e->retry_after_ms > 0)
				pgarray_add_int(&p[7], e->retry_after_ms);
			else
				pgarray_add_text(&p[7], NULL);
		}
	}
	for (int i = 0; i < 8; i++) {
		pgarray_end(&p[i]);
		if (p[i].oom)
			return NULL;
		ret_params[i] = strbuf_str(&p[i]);
	}
	o->inflight = o->n;
	return report_sql;
}

void outcomes_sent(struct outcomes *o)
{
	for (int i = 0; i < o->inflight; i++)
		free(o->v[i].text);
	memmove(o->v, o->v + o->inflight, (size_t)(o->n - o->inflight) * sizeof(*o->v));
	o->n -= o->inflight;
	o->inflight = 0;
}

void outcomes_unsent(struct outcomes *o)
{
	o->inflight = 0;
}

void outcomes_free(struct outcomes *o)
{
	for (int i = 0; i < o->n; i++)
		free(o->v[i].text);
	free(o->v);
	for (int i = 0; i < 8; i++)
		strbuf_free(&o->params[i]);
	*o = (struct outcomes){ 0 };
}
