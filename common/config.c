/* SPDX-License-Identifier: MIT */
/* Configuration: defaults, file, environment and flags into struct config (SPEC §3). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"

#define CFG_ENV_PREFIX   "JOBWHEEL_"
#define CFG_ENV_FILE     "JOBWHEEL_CONFIG"
#define CFG_ENV_ALIAS    "EMAIL_FAILURE_RATE" /* compatibility name of email.failure_rate */
#define CFG_LINE_MAX     65536                /* longest config file line accepted */

/* Where a value being loaded comes from: a flag ("--set"), an environment
 * variable (name is not NUL-terminated, hence len) or a file and line. */
struct origin {
	enum cfg_source src;
	const char *name;
	int len;
	int line;
};

struct loader {
	struct config *cfg;
	const char *prog;
	FILE *err;
};

/* A setting found on the command line, applied after file and environment. */
struct pending {
	int key;
	const char *value;
	const char *flag;
};

struct argscan {
	const char *config_path; /* --config, or NULL */
	struct pending *set;
	int nset;
	int nrest;
	bool print_config, help, version;
};

static bool is_string_type(enum cfg_type t)
{
	return t == CFG_STR || t == CFG_ENUM || t == CFG_SECRET;
}

static int key_find(const char *name, size_t len)
{
	for (int k = 0; k < cfg_nkeys; k++)
		if (strncmp(cfg_keys[k].name, name, len) == 0 && cfg_keys[k].name[len] == '\0')
			return k;
	return -1;
}

/* Whether the environment variable env[0..len) is JOBWHEEL_SECTION_KEY of key. */
static bool env_is(const char *env, size_t len, const char *key)
{
	size_t p = strlen(CFG_ENV_PREFIX);

	if (len != p + strlen(key) || strncmp(env, CFG_ENV_PREFIX, p) != 0)
		return false;
	for (size_t i = 0; key[i]; i++) {
		char c = key[i] == '.' ? '_' : (char)toupper((unsigned char)key[i]);
		if (env[p + i] != c)
			return false;
	}
	return true;
}

/* Prints s with control characters replaced, so that a message stays one line. */
static void put_clean(FILE *f, const char *s, int len)
{
	for (int i = 0; (len < 0 || i < len) && s[i]; i++)
		fputc(iscntrl((unsigned char)s[i]) ? '?' : s[i], f);
}

static void origin_print(FILE *f, const struct origin *o)
{
	fputs(cfg_source_names[o->src], f);
	if (o->src == CFG_SRC_FILE) {
		fputc(':', f);
		put_clean(f, o->name, -1);
		fprintf(f, ":%d", o->line);
	} else if (o->src == CFG_SRC_ENV) {
		fprintf(f, ":%.*s", o->len, o->name);
	} else if (o->src == CFG_SRC_FLAG) {
		fprintf(f, " %s", o->name);
	}
}

/* Writes one line "PROG: NAME = "VALUE" (SOURCE): REASON", or without the
 * value, or "PROG: SOURCE: REASON" without a name (namelen -1: up to NUL);
 * returns -EINVAL. */
__attribute__((format(printf, 6, 7))) static int report(const struct loader *ld, const char *name,
							int namelen, const char *value,
							const struct origin *o, const char *fmt, ...)
{
	va_list ap;

	if (!ld->err)
		return -EINVAL;
	fprintf(ld->err, "%s: ", ld->prog);
	if (name) {
		put_clean(ld->err, name, namelen);
		if (value) {
			fputs(" = \"", ld->err);
			put_clean(ld->err, value, -1);
			fputc('"', ld->err);
		}
		fputs(" (", ld->err);
	}
	origin_print(ld->err, o);
	fputs(name ? "): " : ": ", ld->err);
	va_start(ap, fmt);
	vfprintf(ld->err, fmt, ap);
	va_end(ap);
	fputc('\n', ld->err);
	return -EINVAL;
}

/* Checks value against key k's type and bounds (reporting what is wrong),
 * then stores it in the config with its origin. */
static int set_value(struct loader *ld, int k, const char *value, const struct origin *o)
{
	const struct cfg_key *key = &cfg_keys[k];
	const char *shown = cfg_value_is_secret(k, value) ? CFG_MASK : value, *why;
	void *field = cfg_field(ld->cfg, k);
	union cfg_value v = { 0 };
	char *copy = NULL, *where = NULL;

	why = cfg_parse_value(k, value, &v);
	if (why && why[0])
		return report(ld, key->name, -1, shown, o, "%s%.*s", why,
			      key->type == CFG_ENUM ? cfg_enum_words_len(key->doc) : 0, key->doc);
	if (why && key->type == CFG_DOUBLE)
		return report(ld, key->name, -1, shown, o, "out of range %g..%g", key->min, key->max);
	if (why)
		return report(ld, key->name, -1, shown, o, "out of range %lld..%lld%s", (long long)key->min,
			      (long long)key->max, cfg_unit_name(key->type));
	if (o->src == CFG_SRC_FILE && asprintf(&where, "%s:%d", o->name, o->line) < 0)
		return -ENOMEM;
	if (o->src == CFG_SRC_ENV && !(where = strndup(o->name, (size_t)o->len)))
		return -ENOMEM;
	if (is_string_type(key->type) && !(copy = strdup(value))) {
		free(where);
		return -ENOMEM;
	}

	if (is_string_type(key->type)) {
		free(*(char **)field);
		*(char **)field = copy;
	} else if (key->type == CFG_DOUBLE) {
		*(double *)field = v.d;
	} else if (key->type == CFG_BOOL) {
		*(bool *)field = v.b;
	} else {
		*(int64_t *)field = v.i;
	}
	free(ld->cfg->source_where[k]);
	ld->cfg->source_where[k] = where;
	ld->cfg->source[k] = o->src;
	return 0;
}

/* Matches argv[*i] against a flag taking a value, as "--flag V" or
 * "--flag=V"; *ret_value is NULL when the value is missing. */
static bool match_flag(int argc, char **argv, int *i, const char *flag, const char **ret_value)
{
	size_t n = strlen(flag);
	const char *a = argv[*i];

	if (strncmp(a, flag, n) != 0 || (a[n] != '=' && a[n] != '\0'))
		return false;
	if (a[n] == '=')
		*ret_value = a + n + 1;
	else
		*ret_value = *i + 1 < argc ? argv[++*i] : NULL;
	return true;
}

/* Queues "key=value" of a flag (the key keylen long) for after the
 * environment. */
static int push_setting(struct loader *ld, struct argscan *sc, const char *flag, const char *key,
			size_t keylen, const char *value)
{
	struct origin o = { .src = CFG_SRC_FLAG, .name = flag };
	int k = key ? key_find(key, keylen) : -1;

	if (!key || !value)
		return report(ld, key ? key : flag, key ? (int)keylen : -1, NULL, &o, "missing value");
	if (k < 0)
		return report(ld, key, (int)keylen, NULL, &o, "unknown key");
	sc->set[sc->nset++] = (struct pending){ k, value, flag };
	return 0;
}

/* Splits the argument of "--set section.key=value". */
static int push_set(struct loader *ld, struct argscan *sc, const char *arg)
{
	struct origin o = { .src = CFG_SRC_FLAG, .name = "--set" };
	const char *eq = arg ? strchr(arg, '=') : NULL;

	if (arg && !eq)
		return report(ld, arg, -1, NULL, &o, "expected section.key=value");
	return push_setting(ld, sc, "--set", arg, arg ? (size_t)(eq - arg) : 0, eq ? eq + 1 : NULL);
}

/* Sorts argv into common flags, the binary's flags and the rest. */
static int scan_argv(struct loader *ld, int argc, char **argv, const struct cfg_flag *flags,
		     struct argscan *sc)
{
	struct origin cfgflag = { .src = CFG_SRC_FLAG, .name = "--config" };
	size_t n = argc > 1 ? (size_t)argc : 1;
	bool ended = false;
	const char *v;
	int r = 0;

	sc->set = calloc(n, sizeof(*sc->set));
	ld->cfg->cli_rest = calloc(n, sizeof(char *));
	if (!sc->set || !ld->cfg->cli_rest)
		return -ENOMEM;
	for (int i = 1; i < argc && r == 0; i++) {
		const char *a = argv[i];
		const struct cfg_flag *fl = flags;

		if (ended || strcmp(a, "--") == 0) {
			ended = true;
			ld->cfg->cli_rest[sc->nrest++] = argv[i];
		} else if (strcmp(a, "--print-config") == 0) {
			sc->print_config = true;
		} else if (strcmp(a, "--help") == 0) {
			sc->help = true;
		} else if (strcmp(a, "--version") == 0) {
			sc->version = true;
		} else if (match_flag(argc, argv, &i, "--config", &v)) {
			if (!v)
				r = report(ld, "config file", -1, NULL, &cfgflag, "missing value");
			sc->config_path = v;
		} else if (match_flag(argc, argv, &i, "--set", &v)) {
			r = push_set(ld, sc, v);
		} else if (match_flag(argc, argv, &i, "--log-level", &v)) {
			r = push_setting(ld, sc, "--log-level", "log.level", strlen("log.level"), v);
		} else if (match_flag(argc, argv, &i, "--log-format", &v)) {
			r = push_setting(ld, sc, "--log-format", "log.format", strlen("log.format"), v);
		} else {
			while (fl && fl->flag && !match_flag(argc, argv, &i, fl->flag, &v))
				fl++;
			if (fl && fl->flag)
				r = push_setting(ld, sc, fl->flag, fl->key, strlen(fl->key), v);
			else
				ld->cfg->cli_rest[sc->nrest++] = argv[i];
		}
	}
	return r;
}

/* Strips whitespace around s[0..len) in place and NUL-terminates it. */
static char *trim(char *s, size_t len)
{
	s[len] = '\0';
	while (isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* Strips a comment ('#' at the start or after whitespace) and surrounding
 * whitespace, in place. */
static char *clean_line(char *s)
{
	for (char *c = s; *c; c++) {
		if (*c == '#' && (c == s || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	}
	return trim(s, strlen(s));
}

/* One "key = value" line, relative to section (may be NULL). */
static int file_setting(struct loader *ld, const char *section, char *s, const struct origin *o)
{
	char *eq = strchr(s, '='), *key, *value, *full = NULL;
	int k, r;

	if (!eq)
		return report(ld, NULL, -1, NULL, o, "expected \"key = value\" or \"[section]\"");
	value = trim(eq + 1, strlen(eq + 1));
	key = trim(s, (size_t)(eq - s));
	if (!key[0])
		return report(ld, NULL, -1, NULL, o, "missing key before '='");
	if (section && asprintf(&full, "%s.%s", section, key) < 0)
		return -ENOMEM;
	k = key_find(full ? full : key, strlen(full ? full : key));
	if (k < 0 && full && strchr(key, '.'))
		k = key_find(key, strlen(key)); /* fully qualified inside a section */
	if (k < 0)
		r = report(ld, full ? full : key, -1, NULL, o, "unknown key");
	else
		r = set_value(ld, k, value, o);
	free(full);
	return r;
}

static int file_lines(struct loader *ld, FILE *f, const char *path)
{
	struct origin o = { .src = CFG_SRC_FILE, .name = path };
	char *line = NULL, *s, *section = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
		o.line++;
		if (n > CFG_LINE_MAX) {
			r = report(ld, NULL, -1, NULL, &o, "line longer than %d bytes", CFG_LINE_MAX);
			break;
		}
		s = clean_line(line);
		if (!s[0])
			continue;
		if (s[0] != '[') {
			r = file_setting(ld, section, s, &o);
			continue;
		}
		if (s[strlen(s) - 1] != ']' || !(s = trim(s + 1, strlen(s) - 2))[0] || strpbrk(s, "[]= \t")) {
			r = report(ld, NULL, -1, NULL, &o, "malformed [section] header");
			break;
		}
		free(section);
		if (!(section = strdup(s)))
			r = -ENOMEM;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(section);
	free(line);
	return r;
}

/* Reads the file named by --config, else $JOBWHEEL_CONFIG, else the default
 * (which may be missing). */
static int load_file(struct loader *ld, const char *flag_path)
{
	struct origin by = { .src = CFG_SRC_FLAG, .name = "--config" };
	const char *path = flag_path, *env = getenv(CFG_ENV_FILE);
	FILE *f;
	int r;

	if (!path && env && env[0]) {
		path = env;
		by = (struct origin){ .src = CFG_SRC_ENV,
				      .name = CFG_ENV_FILE,
				      .len = (int)strlen(CFG_ENV_FILE) };
	} else if (!path) {
		path = CFG_DEFAULT_PATH;
		by = (struct origin){ .src = CFG_SRC_DEFAULT };
	}
	f = fopen(path, "re");
	if (!f) {
		if (by.src == CFG_SRC_DEFAULT && errno == ENOENT)
			return 0;
		return report(ld, "config file", -1, path, &by, "%s", strerror(errno));
	}
	r = file_lines(ld, f, path);
	if (r == -EIO)
		r = report(ld, "config file", -1, path, &by, "read error: %s", strerror(errno));
	fclose(f);
	if (r == 0 && !(ld->cfg->config_path = strdup(path)))
		r = -ENOMEM;
	return r;
}

/* JOBWHEEL_SECTION_KEY for every key, after the compatibility alias. */
static int load_env(struct loader *ld)
{
	size_t plen = strlen(CFG_ENV_PREFIX);
	const char *alias = getenv(CFG_ENV_ALIAS);
	int alias_key = key_find("email.failure_rate", strlen("email.failure_rate"));
	int r = 0;

	if (alias && alias_key >= 0 && !getenv("JOBWHEEL_EMAIL_FAILURE_RATE")) {
		struct origin o = { .src = CFG_SRC_ENV,
				    .name = CFG_ENV_ALIAS,
				    .len = (int)strlen(CFG_ENV_ALIAS) };
		r = set_value(ld, alias_key, alias, &o);
	}
	for (char **e = environ; r == 0 && *e; e++) {
		const char *eq = strchr(*e, '=');
		struct origin o = { .src = CFG_SRC_ENV, .name = *e };
		int k = -1;

		if (strncmp(*e, CFG_ENV_PREFIX, plen) != 0 || !eq ||
		    strncmp(*e, CFG_ENV_FILE "=", strlen(CFG_ENV_FILE) + 1) == 0)
			continue;
		o.len = (int)(eq - *e);
		for (int j = 0; j < cfg_nkeys && k < 0; j++)
			if (env_is(*e, (size_t)o.len, cfg_keys[j].name))
				k = j;
		r = k < 0 ? report(ld, *e, o.len, NULL, &o, "unknown key") : set_value(ld, k, eq + 1, &o);
	}
	return r;
}

int config_load(struct config *cfg, const char *progname, int argc, char **argv, const struct cfg_flag *flags,
		struct cfg_cli *ret_cli, FILE *err)
{
	struct loader ld = { cfg, progname ? progname : "jobwheel", err };
	struct origin def = { .src = CFG_SRC_DEFAULT };
	struct argscan sc = { 0 };
	int r = 0;

	memset(cfg, 0, sizeof(*cfg));
	for (int k = 0; k < cfg_nkeys && r == 0; k++)
		r = set_value(&ld, k, cfg_keys[k].def, &def);
	if (r == 0)
		r = scan_argv(&ld, argc, argv, flags, &sc);
	if (r == 0)
		r = load_file(&ld, sc.config_path);
	if (r == 0)
		r = load_env(&ld);
	for (int i = 0; i < sc.nset && r == 0; i++) {
		struct origin o = { .src = CFG_SRC_FLAG, .name = sc.set[i].flag };
		r = set_value(&ld, sc.set[i].key, sc.set[i].value, &o);
	}
	if (r == 0 && ret_cli) {
		ret_cli->print_config = sc.print_config;
		ret_cli->help = sc.help;
		ret_cli->version = sc.version;
		ret_cli->nrest = sc.nrest;
		ret_cli->rest = cfg->cli_rest;
	}
	free(sc.set);
	return r;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (int k = 0; k < cfg_nkeys; k++) {
		if (is_string_type(cfg_keys[k].type))
			free(*(char **)cfg_field(cfg, k));
		free(cfg->source_where[k]);
	}
	free(cfg->config_path);
	free(cfg->cli_rest);
	memset(cfg, 0, sizeof(*cfg));
}
