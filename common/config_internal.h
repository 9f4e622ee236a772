/* SPDX-License-Identifier: MIT */
/* Internals shared by the config loader (config.c) and value layer (config_value.c). */
#ifndef JW_CONFIG_INTERNAL_H
#define JW_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CFG_DEFAULT_PATH "/etc/jobwheel/jobwheel.conf"
#define CFG_MASK         "********" /* shown instead of a secret value */

/* A value parsed by cfg_parse_value(): i for INT, MS and SIZE, d for DOUBLE,
 * b for BOOL; unused for string types. */
union cfg_value {
	int64_t i;
	double d;
	bool b;
};

/* Where each key's value lives inside struct config, in table order. */
extern const size_t cfg_offsets[CFG_NKEYS];

/* Names of enum cfg_source, as --print-config and messages show them. */
extern const char *const cfg_source_names[];

/* Key k's member of cfg; its C type is JW_CFG_CTYPE_<type> (config.h). */
static inline void *cfg_field(const struct config *cfg, int k)
{
	return (char *)cfg + cfg_offsets[k];
}

/* Unit of the bounds of INT, MS and SIZE keys, for messages: " ms",
 * " bytes" or "". */
const char *cfg_unit_name(enum cfg_type t);

/* Whether value of key k must not be shown (--print-config, error messages):
 * a non-empty SECRET, or a database.url holding a password or unparsable. */
bool cfg_value_is_secret(int k, const char *value);

/* Length of the allowed words of an ENUM key: its doc up to the first ':'. */
int cfg_enum_words_len(const char *doc);

/* Parses value as key k's type into *v (strings are checked only). Returns
 * NULL when valid, "" when out of range (or beyond int64), else what is
 * wrong; for ENUM "not one of ", to be followed by the allowed words. */
const char *cfg_parse_value(int k, const char *value, union cfg_value *v);

#endif
