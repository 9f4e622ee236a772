/* SPDX-License-Identifier: MIT */
/* Per-process circuit breakers in a static table, looked up by name. */
#include <stdio.h>
#include <string.h>

#include "breaker.h"
#include "log.h"

struct breaker {
	char name[64];
	enum breaker_state state;
	int failures;      /* consecutive */
	int64_t opened_at; /* ms, when it last opened */
	bool probing;      /* half-open: the probe is out */
};

static struct breaker table[BREAKER_MAX];
static int ntable;

struct breaker *breaker_get(const char *name)
{
	size_t len = strlen(name);

	if (len >= sizeof(table[0].name))
		return NULL;
	for (int i = 0; i < ntable; i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	if (ntable == BREAKER_MAX)
		return NULL;
	memset(&table[ntable], 0, sizeof(table[ntable]));
	memcpy(table[ntable].name, name, len + 1);
	return &table[ntable++];
}

static void set_state(struct breaker *b, enum breaker_state s)
{
	static const char *const names[] = { [BREAKER_CLOSED] = "closed", [BREAKER_OPEN] = "open",
					     [BREAKER_HALF_OPEN] = "half-open" };

	if (b->state == s)
		return;
	b->state = s;
	log_info("llm provider %s: circuit %s", b->name, names[s]);
}

enum breaker_verdict breaker_allow(struct breaker *b, int64_t now_ms, int64_t open_ms)
{
	switch (b->state) {
	case BREAKER_CLOSED:
		return BREAKER_PASS;
	case BREAKER_OPEN:
		if (now_ms - b->opened_at < open_ms)
			return BREAKER_DENY;
		set_state(b, BREAKER_HALF_OPEN);
		b->probing = true;
		return BREAKER_PROBE;
	case BREAKER_HALF_OPEN:
		if (b->probing)
			return BREAKER_DENY;
		b->probing = true;
		return BREAKER_PROBE;
	}
	return BREAKER_DENY;
}

void breaker_success(struct breaker *b)
{
	b->failures = 0;
	b->probing = false;
	set_state(b, BREAKER_CLOSED);
}

void breaker_failure(struct breaker *b, int64_t now_ms)
{
	if (b->failures < BREAKER_THRESHOLD)
		b->failures++;
	if (b->state == BREAKER_HALF_OPEN || (b->state == BREAKER_CLOSED && b->failures >= BREAKER_THRESHOLD)) {
		b->probing = false;
		b->opened_at = now_ms;
		set_state(b, BREAKER_OPEN);
	}
}

void breaker_release(struct breaker *b)
{
	b->probing = false;
}

enum breaker_state breaker_state(const struct breaker *b)
{
	return b->state;
}

void breaker_reset_all(void)
{
	memset(table, 0, sizeof(table));
	ntable = 0;
}
