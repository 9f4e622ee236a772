/* SPDX-License-Identifier: MIT */
/* Fuzz target: a config file and a command line, as config_load reads them.
 * The bytes before the first NUL are the file's text (read through a memfd
 * named by --config); the NUL-separated pieces after it are argv. What loads
 * is printed (--print-config) and read back, and must come back the same. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"
#include "fuzz.h"

/* The worker's flags, so that a binary's own table is parsed too. */
static const struct cfg_flag flags[] = {
	{ "--queues", "worker.queues" },
	{ "--concurrency", "worker.concurrency" },
	{ NULL, NULL },
};

static int memfd = -1;
static char path[64];         /* /proc/self/fd/N of memfd */
static char config_arg[80];   /* --config=PATH */

/* The memfd, and an environment without JOBWHEEL_* variables: a setting
 * there would outrank the file when the printed config is read back. */
static void setup(void)
{
	char name[256];
	bool again = true;

	if (memfd >= 0)
		return;
	memfd = memfd_create("jobwheel.conf", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	snprintf(config_arg, sizeof(config_arg), "--config=%s", path);
	while (again) {
		again = false;
		for (char **e = environ; *e; e++) {
			size_t n = strcspn(*e, "=");
			if ((strncmp(*e, "JOBWHEEL_", 9) && strncmp(*e, "EMAIL_FAILURE_RATE=", 19)) ||
			    n >= sizeof(name))
				continue;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			again = true;
			break;
		}
	}
}

/* Makes the memfd hold exactly len bytes of text. */
static void set_file(const char *text, size_t len)
{
	size_t off = 0;

	CHECK(ftruncate(memfd, 0) == 0);
	while (off < len) {
		ssize_t n = pwrite(memfd, text + off, len - off, (off_t)off);
		CHECK(n > 0);
		off += (size_t)n;
	}
}

/* config_load with its messages caught: -EINVAL says why in exactly one
 * line, success says nothing. */
static int load(struct config *cfg, int argc, char **argv, struct cfg_cli *cli)
{
	char *msg = NULL;
	size_t len = 0;
	FILE *err = open_memstream(&msg, &len);
	int r;

	CHECK(err);
	r = config_load(cfg, "jobwheel-fuzz", argc, argv, flags, cli, err);
	CHECK(fclose(err) == 0);
	if (r == 0)
		CHECK(len == 0);
	else if (r == -EINVAL)
		CHECK(len > 0 && msg[len - 1] == '\n' && memchr(msg, '\n', len) == msg + len - 1);
	else
		CHECK(r == -ENOMEM);
	free(msg);
	return r;
}

/* Whether a string value survives the file syntax: no comment, line break
 * or whitespace that trimming would eat. */
static bool file_safe(const char *s)
{
	size_t n = strlen(s);

	return !strpbrk(s, "#\n") && (n == 0 || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1])));
}

/* Prints cfg, reads the text back as a file, and compares every key:
 * --print-config must show what the loader would read in again. Secrets
 * (masked) are left out of the text. */
static void check_round_trip(const struct config *cfg)
{
	char *argv[] = { "jobwheel-fuzz", config_arg, NULL };
	char *text = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	struct config back;
	FILE *f;
	int k = 0;

	for (int i = 0; i < cfg_nkeys; i++) {
		enum cfg_type t = cfg_keys[i].type;
		if ((t == CFG_STR || t == CFG_ENUM || t == CFG_SECRET) && !file_safe(*(char **)cfg_field(cfg, i)))
			return;
	}
	f = open_memstream(&text, &len);
	CHECK(f);
	config_print(cfg, f);
	CHECK(fclose(f) == 0);
	/* One line per key, in table order (no value holds a line break);
	 * the masked ones are left out. */
	out = malloc(len + 1);
	CHECK(out);
	for (char *line = text, *nl; line < text + len; line = nl + 1, k++) {
		enum cfg_type t;

		nl = memchr(line, '\n', (size_t)(text + len - line));
		CHECK(nl && k < cfg_nkeys);
		t = cfg_keys[k].type;
		if ((t == CFG_STR || t == CFG_ENUM || t == CFG_SECRET) &&
		    cfg_value_is_secret(k, *(char *const *)cfg_field(cfg, k)))
			continue;
		memcpy(out + olen, line, (size_t)(nl + 1 - line));
		olen += (size_t)(nl + 1 - line);
	}
	CHECK(k == cfg_nkeys);
	set_file(out, olen);
	CHECK(load(&back, 2, argv, NULL) == 0);
	for (k = 0; k < cfg_nkeys; k++) {
		const void *a = cfg_field(cfg, k), *b = cfg_field(&back, k);

		switch (cfg_keys[k].type) {
		case CFG_STR:
		case CFG_ENUM:
		case CFG_SECRET:
			if (!cfg_value_is_secret(k, *(char *const *)a))
				CHECK(!strcmp(*(char *const *)a, *(char *const *)b));
			break;
		case CFG_DOUBLE:
			CHECK(*(const double *)a == *(const double *)b);
			break;
		case CFG_BOOL:
			CHECK(*(const bool *)a == *(const bool *)b);
			break;
		default:
			CHECK(*(const int64_t *)a == *(const int64_t *)b);
			break;
		}
	}
	config_free(&back);
	free(out);
	free(text);
}

/* The exported value parsers on one argument. */
static void check_values(const char *s)
{
	int64_t v = -1;

	if (cfg_parse_duration_ms(s, &v) == 0)
		CHECK(v >= 0 && isdigit((unsigned char)s[0]));
	v = -1;
	if (cfg_parse_size(s, &v) == 0)
		CHECK(v >= 0 && isdigit((unsigned char)s[0]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t flen = nul ? (size_t)(nul - data) : size, alen = nul ? size - flen - 1 : 0;
	char *args = malloc(alen + 1), **argv = NULL;
	bool after_config = false;
	struct cfg_cli cli;
	struct config cfg;
	int argc = 2;

	setup();
	CHECK(args);
	set_file((const char *)data, flen);
	memcpy(args, data + flen + (nul ? 1 : 0), alen);
	args[alen] = '\0';
	argv = calloc(alen + 4, sizeof(*argv));
	CHECK(argv);
	argv[0] = "jobwheel-fuzz";
	argv[1] = config_arg; /* never the default /etc/jobwheel/jobwheel.conf */
	/* Every piece, with every path --config could take swapped for the
	 * memfd: the fuzzer must not open files of its choosing. */
	for (size_t i = 0; nul && i <= alen; i += strlen(args + i) + 1) {
		char *a = args + i;

		check_values(a);
		if (after_config)
			argv[argc++] = path;
		else if (!strncmp(a, "--config=", 9) && a[9])
			argv[argc++] = config_arg;
		else
			argv[argc++] = a;
		after_config = !strcmp(a, "--config");
	}
	argv[argc] = NULL;
	if (load(&cfg, argc, argv, &cli) == 0) {
		/* What config did not consume is the rest, in order. */
		CHECK(cli.nrest >= 0 && cli.nrest < argc);
		for (int i = 0, j = 1; i < cli.nrest; i++, j++) {
			while (j < argc && argv[j] != cli.rest[i])
				j++;
			CHECK(j < argc);
		}
		check_round_trip(&cfg);
	}
	config_free(&cfg);
	free(argv);
	free(args);
	return 0;
}
