/* SPDX-License-Identifier: MIT */
/* Configuration values: parsing each key's type from text, and printing them back (SPEC §3). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "config.h"
#include "config_internal.h"

const struct cfg_key cfg_keys[] = {
#define JW_CFG_ROW(field, name, type, def, min, max, doc) { name, CFG_##type, def, min, max, doc },
	JW_CONFIG_KEYS(JW_CFG_ROW)
#undef JW_CFG_ROW
};
const int cfg_nkeys = (int)(sizeof(cfg_keys) / sizeof(cfg_keys[0]));

/* Where each key's value lives inside struct config, in table order. */
const size_t cfg_offsets[] = {
#define JW_CFG_OFFSET(field, name, type, def, min, max, doc) offsetof(struct config, field),
	JW_CONFIG_KEYS(JW_CFG_OFFSET)
#undef JW_CFG_OFFSET
};

_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) == CFG_NKEYS, "key count");

struct unit {
	const char *suffix;
	int64_t mult;
};

static const struct unit duration_units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	{ "ms", 1 },       { "", 1 },        { NULL, 0 },
};

static const struct unit size_units[] = {
	{ "GiB", 1 << 30 }, { "MiB", 1 << 20 }, { "KiB", 1 << 10 }, { "", 1 }, { "B", 1 }, { NULL, 0 },
};

static const char *const type_names[] = {
	[CFG_STR] = "string",  [CFG_INT] = "int",   [CFG_DOUBLE] = "number", [CFG_BOOL] = "bool",
	[CFG_MS] = "duration", [CFG_SIZE] = "size", [CFG_ENUM] = "enum",     [CFG_SECRET] = "secret",
};

const char *const cfg_source_names[] = { "default", "file", "env", "flag" };

/* Unit of the bounds of INT, MS and SIZE keys, for messages. */
const char *cfg_unit_name(enum cfg_type t)
{
	return t == CFG_MS ? " ms" : t == CFG_SIZE ? " bytes" : "";
}

/* A value --print-config and error messages must not show. */
bool cfg_value_is_secret(int k, const char *value)
{
	PQconninfoOption *opts;
	bool secret;

	if (cfg_keys[k].type == CFG_SECRET)
		return value[0] != '\0';
	if (strcmp(cfg_keys[k].name, "database.url") != 0)
		return false;
	opts = PQconninfoParse(value, NULL); /* keyword=value or URI; no defaults read */
	secret = !opts;                      /* unparsable: it might hold a password */
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			secret = true;
	PQconninfoFree(opts);
	return secret;
}

/* Digits followed by one of the units' suffixes; -ERANGE on int64 overflow. */
static int parse_scaled(const char *s, const struct unit *units, int64_t *ret)
{
	int64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (*p - '0');
	}
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(p, u->suffix) != 0)
			continue;
		if (v > INT64_MAX / u->mult)
			return -ERANGE;
		*ret = v * u->mult;
		return 0;
	}
	return -EINVAL;
}

int cfg_parse_duration_ms(const char *s, int64_t *ret_ms)
{
	return parse_scaled(s, duration_units, ret_ms) < 0 ? -EINVAL : 0;
}

int cfg_parse_size(const char *s, int64_t *ret_bytes)
{
	return parse_scaled(s, size_units, ret_bytes) < 0 ? -EINVAL : 0;
}

static int parse_int(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)*s) && *s != '-' && *s != '+')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	if (!isdigit((unsigned char)*s) && !strchr("+-.", *s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *const words[] = { "true", "yes", "on", "1", "false", "no", "off", "0" };

	for (int i = 0; i < 8; i++) {
		if (strcasecmp(s, words[i]) == 0) {
			*ret = i < 4;
			return 0;
		}
	}
	return -EINVAL;
}

/* Length of the allowed words of an ENUM key: its doc up to the first ':'. */
int cfg_enum_words_len(const char *doc)
{
	const char *colon = strchr(doc, ':');

	return colon ? (int)(colon - doc) : (int)strlen(doc);
}

static bool enum_allows(const char *doc, const char *s)
{
	size_t n = strlen(s);
	const char *w = doc, *end = doc + cfg_enum_words_len(doc);

	while (n > 0 && w < end) {
		const char *bar = memchr(w, '|', (size_t)(end - w));
		const char *wend = bar ? bar : end;
		if ((size_t)(wend - w) == n && strncmp(w, s, n) == 0)
			return true;
		w = wend + 1;
	}
	return false;
}

/* Parses value as key k's type into *v (strings are checked only); NULL,
 * "" when out of range, or what is wrong. */
const char *cfg_parse_value(int k, const char *value, union cfg_value *v)
{
	const struct cfg_key *key = &cfg_keys[k];
	PQconninfoOption *opts;
	int r = 0;

	switch (key->type) {
	case CFG_ENUM:
		return enum_allows(key->doc, value) ? NULL : "not one of ";
	case CFG_STR:
	case CFG_SECRET:
		if (strcmp(key->name, "database.url") != 0)
			return NULL;
		opts = PQconninfoParse(value, NULL);
		PQconninfoFree(opts);
		return opts ? NULL : "not a libpq connection string or URI";
	case CFG_BOOL:
		return parse_bool(value, &v->b) < 0 ? "not a boolean (true|false|yes|no|on|off|1|0)" : NULL;
	case CFG_DOUBLE:
		if ((r = parse_double(value, &v->d)) == -EINVAL)
			return "not a number";
		return r < 0 || v->d < key->min || v->d > key->max ? "" : NULL;
	case CFG_INT:
		if ((r = parse_int(value, &v->i)) == -EINVAL)
			return "not an integer";
		break;
	case CFG_MS:
		if ((r = parse_scaled(value, duration_units, &v->i)) == -EINVAL)
			return "not a duration (e.g. 500ms, 30s, 5m, 7d)";
		break;
	case CFG_SIZE:
		if ((r = parse_scaled(value, size_units, &v->i)) == -EINVAL)
			return "not a size (e.g. 4096, 64KiB, 1MiB)";
		break;
	}
	return r < 0 || (double)v->i < key->min || (double)v->i > key->max ? "" : NULL;
}

/* Largest unit that divides v exactly, for durations and sizes. */
static void print_scaled(FILE *out, int64_t v, const struct unit *units)
{
	for (const struct unit *u = units; v != 0 && u->suffix; u++) {
		if (v % u->mult == 0) {
			fprintf(out, "%lld%s", (long long)(v / u->mult), u->suffix);
			return;
		}
	}
	fputs("0", out);
}

static void print_value(FILE *out, const struct config *cfg, int k)
{
	const struct cfg_key *key = &cfg_keys[k];
	const void *field = cfg_field(cfg, k);
	const char *s;
	size_t n = strlen(key->name);
	char buf[32];
	double d;

	switch (key->type) {
	case CFG_STR:
	case CFG_ENUM:
	case CFG_SECRET:
		s = *(char *const *)field ? *(char *const *)field : "";
		fputs(cfg_value_is_secret(k, s) ? CFG_MASK : s, out);
		break;
	case CFG_INT:
		fprintf(out, "%lld", (long long)*(const int64_t *)field);
		break;
	case CFG_MS:
		if (n > 3 && strcmp(key->name + n - 3, "_ms") == 0)
			fprintf(out, "%lld", (long long)*(const int64_t *)field);
		else
			print_scaled(out, *(const int64_t *)field, duration_units);
		break;
	case CFG_SIZE:
		print_scaled(out, *(const int64_t *)field, size_units);
		break;
	case CFG_DOUBLE:
		d = *(const double *)field;
		snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, sizeof(buf), "%.17g", d);
		fputs(buf, out);
		break;
	case CFG_BOOL:
		fputs(*(const bool *)field ? "true" : "false", out);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	for (int k = 0; k < cfg_nkeys; k++) {
		const char *where = cfg->source_where[k];

		fprintf(out, "%s = ", cfg_keys[k].name);
		print_value(out, cfg, k);
		fprintf(out, "    # %s%s%s\n", cfg_source_names[cfg->source[k]], where ? ":" : "",
			where ? where : "");
	}
}

void config_print_help(FILE *out)
{
	fputs("Common options:\n"
	      "  --config PATH          config file (default $JOBWHEEL_CONFIG, else " CFG_DEFAULT_PATH ")\n"
	      "  --set KEY=VALUE        set any key below; repeatable\n"
	      "  --print-config         print every effective key and its source, then exit\n"
	      "  --log-level LEVEL      debug|info|warn|error (log.level)\n"
	      "  --log-format FORMAT    text|json (log.format)\n"
	      "  --help                 this help\n"
	      "  --version              print the version\n"
	      "\nKeys (precedence: flag > JOBWHEEL_SECTION_KEY > config file > default):\n",
	      out);
	for (int k = 0; k < cfg_nkeys; k++) {
		const struct cfg_key *key = &cfg_keys[k];

		fprintf(out, "  %-28s %s, default \"%s\"", key->name, type_names[key->type], key->def);
		if (key->type == CFG_DOUBLE)
			fprintf(out, ", %g..%g", key->min, key->max);
		else if (key->type == CFG_INT || key->type == CFG_MS || key->type == CFG_SIZE)
			fprintf(out, ", %lld..%lld%s", (long long)key->min, (long long)key->max,
				cfg_unit_name(key->type));
		fprintf(out, ": %s\n", key->doc);
	}
}

