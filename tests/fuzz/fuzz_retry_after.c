/* SPDX-License-Identifier: MIT */
/* Fuzz target: a Retry-After header value as libcurl hands it over (after
 * "Retry-After:", line end included), through retry_after_parse at a few
 * fixed clocks. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classify.h"
#include "fuzz.h"

/* http_client.c copies at most 127 bytes of the value; a few more here. */
#define MAX_VALUE 200
#define YEAR_MS   (INT64_C(365) * 24 * 3600 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 1970, RFC 9110's Sun, 06 Nov 1994 08:49:37 GMT, 2026-11-27, 2100-01-01. */
	static const time_t nows[] = { 0, 784111777, 1795737600, 4102444800 };
	char value[MAX_VALUE + 1];
	int64_t prev = -1; /* the delay at the previous, earlier clock; -1: refused */

	if (size > MAX_VALUE)
		size = MAX_VALUE;
	memcpy(value, data, size);
	value[size] = '\0';
	for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
		int64_t ms = -42;
		int r = retry_after_parse(value, nows[i], &ms);

		/* A refusal leaves *ret_ms alone; a delay is whole seconds,
		 * never negative, and at most a year in either form. */
		CHECK(r == 0 || (r == -EINVAL && ms == -42));
		if (r == 0)
			CHECK(ms >= 0 && ms % 1000 == 0 && ms <= YEAR_MS);
		/* As the clock moves on, a delay only shrinks. */
		if (prev >= 0)
			CHECK(r == 0 && ms <= prev);
		prev = r == 0 ? ms : -1;
	}
	return 0;
}
