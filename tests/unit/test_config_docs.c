/* SPDX-License-Identifier: MIT */
/* Every configuration key is documented in docs/CONFIGURATION.md (PgBouncer's optscan idea). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* Reads $JW_SOURCE_ROOT/docs/CONFIGURATION.md into a NUL-terminated buffer. */
static int read_docs(void **state)
{
	const char *root = getenv("JW_SOURCE_ROOT");
	char *path, *buf = NULL;
	size_t len = 0;
	FILE *f, *mem;
	int c;

	if (!root || !root[0]) {
		fprintf(stderr, "JW_SOURCE_ROOT is not set\n");
		return -1;
	}
	if (asprintf(&path, "%s/docs/CONFIGURATION.md", root) < 0)
		return -1;
	f = fopen(path, "re");
	if (!f)
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
	free(path);
	if (!f)
		return -1;
	mem = open_memstream(&buf, &len);
	if (mem) {
		while ((c = fgetc(f)) != EOF)
			fputc(c, mem);
		fclose(mem);
	}
	fclose(f);
	*state = buf;
	return buf ? 0 : -1;
}

static int free_docs(void **state)
{
	free(*state);
	return 0;
}

/* Each key appears in backticks, e.g. `worker.concurrency`. */
static void test_every_key_documented(void **state)
{
	const char *docs = *state;
	int missing = 0;

	for (int k = 0; k < cfg_nkeys; k++) {
		char *quoted;

		assert_true(asprintf(&quoted, "`%s`", cfg_keys[k].name) > 0);
		if (!strstr(docs, quoted)) {
			print_error("docs/CONFIGURATION.md does not document %s\n", quoted);
			missing++;
		}
		free(quoted);
	}
	assert_int_equal(missing, 0);
}

/* The environment name of each key appears too (JOBWHEEL_WORKER_CONCURRENCY
 * for worker.concurrency), at least for the ones SPEC §3 names. */
static void test_env_names_documented(void **state)
{
	static const char *const names[] = { "JOBWHEEL_WORKER_CONCURRENCY", "JOBWHEEL_DATABASE_URL",
					     "JOBWHEEL_CONFIG", "EMAIL_FAILURE_RATE", "--print-config" };
	const char *docs = *state;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(docs, names[i]))
			fail_msg("docs/CONFIGURATION.md does not mention %s", names[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_env_names_documented),
	};

	return cmocka_run_group_tests(tests, read_docs, free_docs);
}
