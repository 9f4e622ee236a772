/* SPDX-License-Identifier: MIT */
/* Exponential backoff with jitter (SPEC §4). */
#include <math.h>

#include "backoff.h"

int64_t backoff_ms(struct rng *r, int64_t base_ms, double factor, int attempt, int64_t cap_ms)
{
	double d;

	if (attempt < 1)
		attempt = 1;
	d = (double)base_ms * pow(factor, attempt - 1);
	if (d > (double)cap_ms)
		d = (double)cap_ms;
	d *= 0.8 + 0.4 * rng_unit(r);
	if (d > (double)cap_ms)
		d = (double)cap_ms;
	return (int64_t)llround(d);
}
