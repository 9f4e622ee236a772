/* SPDX-License-Identifier: MIT */
/* What every fuzz target shares: libFuzzer's entry point (also called by
 * fuzz_main.c, which replays a corpus without libFuzzer) and CHECK, an
 * assertion that stays in release builds: a broken invariant aborts, and
 * libFuzzer reports the input that broke it. */
#ifndef JW_FUZZ_H
#define JW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)            \
	do {                   \
		if (!(cond))   \
			abort(); \
	} while (0)

#endif
