/* SPDX-License-Identifier: MIT */
/* A small seedable PRNG (xoshiro128**-like splitmix64 stream) for jitter and
 * mock failure draws: seeded runs are reproducible in tests. */
#ifndef JW_RAND_H
#define JW_RAND_H

#include <stdint.h>

struct rng {
	uint64_t state;
};

/* seed 0 picks a seed from the clock and pid. */
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);

#endif
