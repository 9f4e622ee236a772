/* SPDX-License-Identifier: MIT */
/* The built-in kinds. A new kind is one file under handlers/ plus one line here. */
#include <string.h>

#include "job.h"

extern const struct handler handler_noop, handler_sleep, handler_fail, handler_email, handler_http,
	handler_llm, handler_exec;

const struct handler *const handlers[] = {
	&handler_noop,
	&handler_sleep,
	&handler_fail,
	&handler_email,
	&handler_http,
	&handler_llm,
	&handler_exec,
	NULL,
};

const struct handler *handler_lookup(const char *kind)
{
	for (int i = 0; handlers[i]; i++)
		if (strcmp(handlers[i]->kind, kind) == 0)
			return handlers[i];
	return NULL;
}
