/* SPDX-License-Identifier: MIT */
/* Fuzz target: a change feed row as the gateway reads it (the 'jobs'
 * scanner, and other types' JSON), then the SSE id arithmetic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "fuzz.h"

static void sink(const struct feed_event *ev, void *arg)
{
	size_t *n = arg;

	*n += ev->type == FEED_JOB ? strlen(ev->job->queue) + strlen(ev->job->state) : strlen(ev->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	uint64_t xid = 0, k = 0;
	size_t n = 0;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1); /* the first byte picks the row type */
	text[size - 1] = '\0';
	feed_decode_row("42", "2026-11-27T00:00:00.000Z", data[0] & 1 ? "worker" : "jobs", text, &xid, &k, sink, &n);
	free(text);
	return 0;
}
