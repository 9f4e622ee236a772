/* SPDX-License-Identifier: MIT */
/* Configuration: flag > environment > file > default, for every binary (SPEC §3). */
#ifndef JW_CONFIG_H
#define JW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config_keys.h"

/* Where a value came from, for --print-config and error messages. */
enum cfg_source { CFG_SRC_DEFAULT, CFG_SRC_FILE, CFG_SRC_ENV, CFG_SRC_FLAG };

enum cfg_type { CFG_STR, CFG_INT, CFG_DOUBLE, CFG_BOOL, CFG_MS, CFG_SIZE, CFG_ENUM, CFG_SECRET };

/* Value storage per type: STR/ENUM/SECRET -> char * (never NULL; "" when
 * unset, owned by the config); INT/MS/SIZE -> int64_t; DOUBLE -> double;
 * BOOL -> bool. */
#define JW_CFG_CTYPE_STR char *
#define JW_CFG_CTYPE_ENUM char *
#define JW_CFG_CTYPE_SECRET char *
#define JW_CFG_CTYPE_INT int64_t
#define JW_CFG_CTYPE_MS int64_t
#define JW_CFG_CTYPE_SIZE int64_t
#define JW_CFG_CTYPE_DOUBLE double
#define JW_CFG_CTYPE_BOOL bool

/* Number of keys: the size of every per-key array (== cfg_nkeys). */
#define JW_CFG_COUNT(field, name, type, def, min, max, doc) +1
enum { CFG_NKEYS = 0 JW_CONFIG_KEYS(JW_CFG_COUNT) };
#undef JW_CFG_COUNT

struct config {
#define JW_CFG_FIELD(field, name, type, def, min, max, doc) JW_CFG_CTYPE_##type field;
	JW_CONFIG_KEYS(JW_CFG_FIELD)
#undef JW_CFG_FIELD
	/* Per key, in table order: where its value came from, and (owned) for
	 * a file value "PATH:LINE", for an environment value the variable
	 * name, else NULL. */
	enum cfg_source source[CFG_NKEYS];
	char *source_where[CFG_NKEYS];
	char *config_path; /* file that was read, or NULL */
	char **cli_rest;   /* storage behind cfg_cli.rest */
};

/* One row of the key table, for code that walks all keys. */
struct cfg_key {
	const char *name;
	enum cfg_type type;
	const char *def;
	double min, max;
	const char *doc;
};
extern const struct cfg_key cfg_keys[];
extern const int cfg_nkeys;

/* A binary-specific short flag that sets a key: {"--queues", "worker.queues"}.
 * Both "--queues X" and "--queues=X" are accepted. */
struct cfg_flag {
	const char *flag;
	const char *key;
};

/* What config_load() found on the command line besides settings. */
struct cfg_cli {
	bool print_config; /* --print-config given: caller prints and exits 0 */
	bool help;         /* --help */
	bool version;      /* --version */
	int nrest;         /* arguments config did not consume, in order */
	char **rest;       /* (pointers into argv; array owned by the config) */
};

/* Loads the configuration.
 *   argv: common flags (--config PATH, --set k=v, --print-config, --help,
 *         --version, --log-level L, --log-format F) and the `flags` table
 *         (NULL-terminated, may be NULL) are consumed anywhere in argv
 *         before a "--"; everything else ("--" and all after it included)
 *         is returned in ret_cli->rest, in order, for the caller.
 *   environment: JOBWHEEL_SECTION_KEY for every key (dots -> '_', upper
 *         case), JOBWHEEL_CONFIG for the file, EMAIL_FAILURE_RATE for
 *         email.failure_rate (lower precedence than JOBWHEEL_EMAIL_FAILURE_RATE).
 *   file: --config PATH or $JOBWHEEL_CONFIG (empty = unset), else
 *         /etc/jobwheel/jobwheel.conf if it exists. `key = value` lines,
 *         '#' comments, optional `[section]` headers (then keys inside are
 *         relative: `concurrency = 4` under `[worker]`).
 * Returns 0 on success. On any error (unknown key, bad value, out of range,
 * missing named file, flag without value) writes one line naming the key and
 * its source to `err` (e.g. `jobwheel-worker: worker.concurrency = "abc"
 * (env:JOBWHEEL_WORKER_CONCURRENCY): not an integer`) and returns -EINVAL;
 * the caller exits 2; -ENOMEM without a message. `cfg` is overwritten (pass
 * it zeroed or config_free()d) and must be config_free()d in every case;
 * ret_cli is set only on success. Every source is checked, also where a
 * higher one overrides it. */
int config_load(struct config *cfg, const char *progname, int argc, char **argv,
		const struct cfg_flag *flags, struct cfg_cli *ret_cli, FILE *err);

/* Prints every key as `key = value    # source` (secrets as ********;
 * a database.url holding a password too). */
void config_print(const struct config *cfg, FILE *out);

/* Prints the common options and every key with its doc, for --help. */
void config_print_help(FILE *out);

/* Frees what config_load() allocated; accepts a zeroed struct. */
void config_free(struct config *cfg);

/* Parsers shared with other modules; 0 ok, -EINVAL when malformed or beyond
 * int64 (*ret untouched). Durations: plain number = ms, or with suffix
 * ms|s|m|h|d. Sizes: plain number = bytes, or B|KiB|MiB|GiB. */
int cfg_parse_duration_ms(const char *s, int64_t *ret_ms);
int cfg_parse_size(const char *s, int64_t *ret_bytes);

#endif
