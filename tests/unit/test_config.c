/* SPDX-License-Identifier: MIT */
/* Unit tests of the configuration loader: precedence, sources, errors, parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define PROG "jobwheel-test"
#define MAX_ARGS 32
#define MAX_FILES 4

struct fixture {
	struct config cfg;
	struct cfg_cli cli;
	char *err; /* what config_load wrote to err */
	size_t errlen;
	char *out; /* what config_print wrote */
	size_t outlen;
	char files[MAX_FILES][32];
	int nfiles;
};

static const struct cfg_flag worker_flags[] = {
	{ "--queues", "worker.queues" },
	{ "--concurrency", "worker.concurrency" },
	{ NULL, NULL },
};

/* Removes every JOBWHEEL_* variable and the alias, so that the test
 * environment cannot leak in, and reads no config file by default. */
static void clean_env(void)
{
	bool again = true;

	while (again) {
		again = false;
		for (char **e = environ; *e; e++) {
			const char *eq = strchr(*e, '=');
			char *name;

			if (strncmp(*e, "JOBWHEEL_", 9) != 0 || !eq)
				continue;
			name = strndup(*e, (size_t)(eq - *e));
			assert_non_null(name);
			unsetenv(name); /* changes environ: start over */
			free(name);
			again = true;
			break;
		}
	}
	unsetenv("EMAIL_FAILURE_RATE");
	setenv("JOBWHEEL_CONFIG", "/dev/null", 1);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	clean_env();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	config_free(&fx->cfg);
	for (int i = 0; i < fx->nfiles; i++)
		unlink(fx->files[i]);
	free(fx->err);
	free(fx->out);
	free(fx);
	clean_env();
	return 0;
}

/* Writes a temporary config file and returns its path (removed by teardown). */
static const char *write_file(struct fixture *fx, const char *content)
{
	char *path;
	int fd;

	assert_true(fx->nfiles < MAX_FILES);
	path = fx->files[fx->nfiles++];
	strcpy(path, "/tmp/jwcfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

/* config_load with a NULL-terminated argument list after argv[0]. */
static int load(struct fixture *fx, ...)
{
	char *argv[MAX_ARGS] = { "jobwheel-test" };
	int argc = 1, r;
	va_list ap;
	FILE *err;

	va_start(ap, fx);
	for (char *a; (a = va_arg(ap, char *));) {
		assert_true(argc < MAX_ARGS);
		argv[argc++] = a;
	}
	va_end(ap);
	config_free(&fx->cfg);
	free(fx->err);
	fx->err = NULL;
	err = open_memstream(&fx->err, &fx->errlen);
	assert_non_null(err);
	r = config_load(&fx->cfg, PROG, argc, argv, worker_flags, &fx->cli, err);
	fclose(err);
	return r;
}

static const char *print(struct fixture *fx)
{
	FILE *out;

	free(fx->out);
	fx->out = NULL;
	out = open_memstream(&fx->out, &fx->outlen);
	assert_non_null(out);
	config_print(&fx->cfg, out);
	fclose(out);
	return fx->out;
}

static int key_index(const char *name)
{
	for (int k = 0; k < cfg_nkeys; k++)
		if (strcmp(cfg_keys[k].name, name) == 0)
			return k;
	fail_msg("no key %s", name);
	return -1;
}

/* Asserts that loading failed with exactly one line on err containing each
 * of the NULL-terminated fragments. */
static void assert_error(struct fixture *fx, int r, ...)
{
	va_list ap;

	assert_int_equal(r, -EINVAL);
	assert_non_null(fx->err);
	assert_true(fx->errlen > 0);
	assert_non_null(strchr(fx->err, '\n'));
	assert_string_equal(strchr(fx->err, '\n'), "\n");
	assert_int_equal(strncmp(fx->err, PROG ": ", strlen(PROG) + 2), 0);
	va_start(ap, r);
	for (const char *frag; (frag = va_arg(ap, const char *));) {
		if (!strstr(fx->err, frag))
			fail_msg("error line \"%s\" lacks \"%s\"", fx->err, frag);
	}
	va_end(ap);
}

static void test_defaults(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(load(fx, NULL), 0);
	assert_int_equal(fx->errlen, 0);
	for (int k = 0; k < cfg_nkeys; k++) {
		assert_int_equal(fx->cfg.source[k], CFG_SRC_DEFAULT);
		assert_null(fx->cfg.source_where[k]);
	}
	assert_string_equal(fx->cfg.database_url, "");
	assert_string_equal(fx->cfg.log_level, "info");
	assert_string_equal(fx->cfg.worker_queues, "default");
	assert_int_equal(fx->cfg.worker_concurrency, 16);
	assert_int_equal(fx->cfg.worker_lease_ms, 30000);
	assert_string_equal(fx->cfg.coordinator_timer, "wheel");
	assert_int_equal(fx->cfg.retention_succeeded, 7LL * 86400000);
	assert_int_equal(fx->cfg.retention_dead, 30LL * 86400000);
	assert_int_equal(fx->cfg.gateway_max_body, 1048576);
	assert_string_equal(fx->cfg.gateway_listen, "127.0.0.1:8080");
	assert_true(fx->cfg.email_failure_rate == 0.0);
	assert_string_equal(fx->cfg.config_path, "/dev/null");
	assert_false(fx->cli.print_config);
	assert_int_equal(fx->cli.nrest, 0);
}

/* Every default of the table is a valid value of its key, also when given
 * explicitly, and every string default is the stored value. */
static void test_every_default_valid(void **state)
{
	struct fixture *fx = *state;

	for (int k = 0; k < cfg_nkeys; k++) {
		char *arg;

		assert_true(asprintf(&arg, "%s=%s", cfg_keys[k].name, cfg_keys[k].def) > 0);
		if (load(fx, "--set", arg, NULL) != 0)
			fail_msg("default of %s rejected: %s", cfg_keys[k].name, fx->err);
		assert_int_equal(fx->cfg.source[k], CFG_SRC_FLAG);
		free(arg);
	}
}

/* No two keys share an environment name, and every ENUM lists its words. */
static void test_key_table(void **state)
{
	(void)state;
	for (int k = 0; k < cfg_nkeys; k++) {
		assert_non_null(strchr(cfg_keys[k].name, '.'));
		if (cfg_keys[k].type == CFG_ENUM)
			assert_non_null(strchr(cfg_keys[k].doc, ':'));
		for (int j = 0; j < k; j++) {
			const char *a = cfg_keys[k].name, *b = cfg_keys[j].name;
			size_t i = 0;

			while (a[i] && b[i] && (a[i] == b[i] || (strchr("._", a[i]) && strchr("._", b[i]))))
				i++;
			if (!a[i] && !b[i])
				fail_msg("%s and %s share an environment name", a, b);
		}
	}
}

static void test_precedence(void **state)
{
	struct fixture *fx = *state;
	const char *path = write_file(fx, "worker.concurrency = 4\n"
					  "worker.lease_ms = 5s\n"
					  "worker.poll_ms = 2000\n");

	setenv("JOBWHEEL_CONFIG", path, 1);
	setenv("JOBWHEEL_WORKER_CONCURRENCY", "8", 1);
	setenv("JOBWHEEL_WORKER_LEASE_MS", "7000", 1);
	assert_int_equal(load(fx, "--concurrency", "12", NULL), 0);
	assert_int_equal(fx->cfg.worker_concurrency, 12);
	assert_int_equal(fx->cfg.worker_lease_ms, 7000);
	assert_int_equal(fx->cfg.worker_poll_ms, 2000);
	assert_int_equal(fx->cfg.worker_heartbeat_ms, 10000);
	assert_string_equal(fx->cfg.config_path, path);

	/* --set and the short flag are the same level: the later one wins */
	assert_int_equal(load(fx, "--concurrency=12", "--set", "worker.concurrency=13", NULL), 0);
	assert_int_equal(fx->cfg.worker_concurrency, 13);

	/* without the flag, env; without env, file */
	assert_int_equal(load(fx, NULL), 0);
	assert_int_equal(fx->cfg.worker_concurrency, 8);
	unsetenv("JOBWHEEL_WORKER_CONCURRENCY");
	assert_int_equal(load(fx, NULL), 0);
	assert_int_equal(fx->cfg.worker_concurrency, 4);
	assert_int_equal(fx->cfg.worker_lease_ms, 7000);
}

static void test_print_sources(void **state)
{
	struct fixture *fx = *state;
	const char *path = write_file(fx, "# jobwheel\n\nworker.poll_ms = 2000\n");
	char *line;

	setenv("JOBWHEEL_WORKER_LEASE_MS", "7000", 1);
	assert_int_equal(load(fx, "--config", path, "--set", "worker.concurrency=12", "--print-config",
			      "--log-level", "debug", NULL),
			 0);
	assert_true(fx->cli.print_config);
	print(fx);
	assert_non_null(strstr(fx->out, "worker.concurrency = 12    # flag\n"));
	assert_non_null(strstr(fx->out, "log.level = debug    # flag\n"));
	assert_non_null(strstr(fx->out, "worker.lease_ms = 7000    # env:JOBWHEEL_WORKER_LEASE_MS\n"));
	assert_non_null(strstr(fx->out, "worker.heartbeat_ms = 10000    # default\n"));
	assert_non_null(strstr(fx->out, "retention.succeeded = 7d    # default\n"));
	assert_non_null(strstr(fx->out, "gateway.max_body = 1MiB    # default\n"));
	assert_non_null(strstr(fx->out, "email.failure_rate = 0    # default\n"));
	assert_true(asprintf(&line, "worker.poll_ms = 2000    # file:%s:3\n", path) > 0);
	assert_non_null(strstr(fx->out, line));
	free(line);
	assert_true(asprintf(&line, "%s:3", path) > 0);
	assert_string_equal(fx->cfg.source_where[key_index("worker.poll_ms")], line);
	free(line);
}

/* What --print-config prints reads back as the same configuration. */
static void test_print_round_trip(void **state)
{
	struct fixture *fx = *state;
	char *first, *a, *b;
	const char *path;

	assert_int_equal(load(fx, "--set", "retention.dead=90m", "--set", "gateway.max_body=1500",
			      "--set", "email.failure_rate=0.1", "--queues", "a,b", NULL),
			 0);
	first = strdup(print(fx));
	assert_non_null(first);
	path = write_file(fx, first);
	assert_int_equal(load(fx, "--config", path, NULL), 0);
	assert_int_equal(fx->cfg.retention_dead, 90 * 60000);
	assert_int_equal(fx->cfg.gateway_max_body, 1500);
	assert_true(fx->cfg.email_failure_rate == 0.1);
	assert_string_equal(fx->cfg.worker_queues, "a,b");
	/* same values line by line, only the sources differ */
	print(fx);
	for (a = first, b = fx->out; *a; a = strchr(a, '\n') + 1, b = strchr(b, '\n') + 1) {
		assert_int_equal(strcspn(a, "#"), strcspn(b, "#"));
		assert_memory_equal(a, b, strcspn(a, "#"));
	}
	assert_string_equal(b, "");
	free(first);
}

static void test_secret_masking(void **state)
{
	struct fixture *fx = *state;
	static const char *const with_password[] = {
		"postgresql://jw:hunter2@db1,db2/jobs?target_session_attrs=read-write",
		"host=a,b dbname=jobs user=jw password=hunter2 target_session_attrs=read-write",
	};
	static const char *plain = "postgresql://jw@db1:5432,db2:5433/jobs?target_session_attrs=read-write";

	for (int i = 0; i < 2; i++) {
		setenv("JOBWHEEL_DATABASE_URL", with_password[i], 1);
		assert_int_equal(load(fx, NULL), 0);
		assert_string_equal(fx->cfg.database_url, with_password[i]);
		print(fx);
		assert_non_null(strstr(fx->out, "database.url = ********    # env:JOBWHEEL_DATABASE_URL\n"));
		assert_null(strstr(fx->out, "hunter2"));
	}
	/* only the first '=' of --set separates the key */
	assert_int_equal(load(fx, "--set", "database.url=host=a,b dbname=jobs target_session_attrs=read-write",
			      NULL),
			 0);
	assert_string_equal(fx->cfg.database_url, "host=a,b dbname=jobs target_session_attrs=read-write");
	setenv("JOBWHEEL_DATABASE_URL", plain, 1);
	assert_int_equal(load(fx, NULL), 0);
	print(fx);
	assert_non_null(strstr(fx->out, plain));

	/* a malformed URL is an error that does not echo it */
	setenv("JOBWHEEL_DATABASE_URL", "host=a password=hunter2 port", 1);
	assert_error(fx, load(fx, NULL), "database.url", "(env:JOBWHEEL_DATABASE_URL)", "libpq", NULL);
	assert_null(strstr(fx->err, "hunter2"));
}

static void test_file_format(void **state)
{
	struct fixture *fx = *state;
	const char *path = write_file(fx, "# full-line comment\n"
					  "   # indented comment\n"
					  "\n"
					  "log.level = debug   # trailing comment\n"
					  "[worker]\n"
					  "concurrency = 4\n"
					  "\tqueues=a,b#c\n"
					  "log.format = json\n"
					  "[ email ]\n"
					  "from = Jobs <jobs@example.com> # sender\n"
					  "smtp_url =\n"
					  "http.allow=#lan\n");
	int k = key_index("worker.concurrency");

	assert_int_equal(load(fx, "--config", path, NULL), 0);
	assert_string_equal(fx->cfg.log_level, "debug");
	assert_int_equal(fx->cfg.worker_concurrency, 4);
	assert_int_equal(fx->cfg.source[k], CFG_SRC_FILE);
	assert_true(strlen(fx->cfg.source_where[k]) > 2);
	assert_string_equal(fx->cfg.source_where[k] + strlen(path), ":6");
	assert_string_equal(fx->cfg.worker_queues, "a,b#c");
	assert_string_equal(fx->cfg.log_format, "json");
	assert_string_equal(fx->cfg.email_from, "Jobs <jobs@example.com>");
	assert_string_equal(fx->cfg.http_allow, "#lan"); /* no whitespace before '#' */
	assert_string_equal(fx->cfg.email_smtp_url, "");
	/* '#' after whitespace starts a comment even right after '=' */
	path = write_file(fx, "[worker]\nlease_ms = #5\n");
	assert_error(fx, load(fx, "--config", path, NULL), "worker.lease_ms = \"\"", ":2)", "not a duration",
		     NULL);
}

struct bad {
	const char *file;   /* config file content, or NULL */
	const char *env[2]; /* NAME, value */
	const char *args[4];
	const char *frags[4]; /* must all appear in the error line */
};

/* clang-format off */
static const struct bad bad_inputs[] = {
	{ NULL, { "JOBWHEEL_WORKER_CONCURRENCY", "abc" }, { NULL },
	  { PROG ": worker.concurrency = \"abc\" (env:JOBWHEEL_WORKER_CONCURRENCY): not an integer\n" } },
	{ NULL, { "JOBWHEEL_WORKER_CONCURRENCY", "16abc" }, { NULL }, { "not an integer" } },
	{ NULL, { "JOBWHEEL_WORKER_CONCURENCY", "4" }, { NULL },
	  { "JOBWHEEL_WORKER_CONCURENCY", "(env:JOBWHEEL_WORKER_CONCURENCY)", "unknown key" } },
	{ NULL, { "EMAIL_FAILURE_RATE", "often" }, { NULL },
	  { "email.failure_rate = \"often\" (env:EMAIL_FAILURE_RATE): not a number" } },
	{ NULL, { "JOBWHEEL_EMAIL_FAILURE_RATE", "1.5" }, { NULL }, { "email.failure_rate", "out of range 0..1" } },
	{ NULL, { NULL }, { "--set", "worker.concurrency=5000" },
	  { PROG ": worker.concurrency = \"5000\" (flag --set): out of range 1..4096\n" } },
	{ NULL, { NULL }, { "--concurrency", "0" }, { "worker.concurrency = \"0\" (flag --concurrency)", "out of range" } },
	{ NULL, { NULL }, { "--concurrency" }, { "worker.concurrency (flag --concurrency): missing value" } },
	{ NULL, { NULL }, { "--config" }, { "(flag --config): missing value" } },
	{ NULL, { NULL }, { "--set" }, { "(flag --set): missing value" } },
	{ NULL, { NULL }, { "--set", "worker.concurrency" }, { "worker.concurrency (flag --set)", "key=value" } },
	{ NULL, { NULL }, { "--set", "worker.concurency=4" }, { "worker.concurency (flag --set): unknown key" } },
	{ NULL, { NULL }, { "--log-level", "verbose" },
	  { "log.level = \"verbose\" (flag --log-level): not one of debug|info|warn|error" } },
	{ NULL, { NULL }, { "--log-format=xml" }, { "log.format", "(flag --log-format)", "text|json" } },
	{ NULL, { NULL }, { "--set", "coordinator.timer=Wheel" }, { "coordinator.timer", "wheel|heap" } },
	{ NULL, { NULL }, { "--set", "worker.lease_ms=5x" }, { "worker.lease_ms = \"5x\"", "not a duration" } },
	{ NULL, { NULL }, { "--set", "worker.lease_ms=-1s" }, { "worker.lease_ms", "not a duration" } },
	{ NULL, { NULL }, { "--set", "worker.lease_ms=" }, { "worker.lease_ms = \"\"", "not a duration" } },
	{ NULL, { NULL }, { "--set", "worker.lease_ms=999" }, { "out of range 1000..86400000 ms" } },
	{ NULL, { NULL }, { "--set", "worker.lease_ms=2d" }, { "worker.lease_ms", "out of range" } },
	{ NULL, { NULL }, { "--set", "retention.dead=99999999999999999999" }, { "retention.dead", "out of range" } },
	{ NULL, { NULL }, { "--set", "gateway.max_body=1MB" }, { "gateway.max_body", "not a size" } },
	{ NULL, { NULL }, { "--set", "gateway.max_body=1023" }, { "out of range 1024..1073741824 bytes" } },
	{ NULL, { NULL }, { "--set", "email.failure_rate=nan" }, { "email.failure_rate", "not a number" } },
	{ NULL, { NULL }, { "--set", "email.failure_rate=+inf" }, { "email.failure_rate", "out of range" } },
	{ NULL, { NULL }, { "--set", "email.mock_seed=-1" }, { "email.mock_seed", "out of range 0..2147483647" } },
	{ NULL, { NULL }, { "--set", "worker.concurrency=9223372036854775808" }, { "out of range 1..4096" } },
	{ NULL, { NULL }, { "--set", "worker.concurrency= 4" }, { "not an integer" } },
	{ "worker.concurrency = 4\nworker.concurency = 4\n", { NULL }, { NULL },
	  { "worker.concurency (file:", ":2): unknown key" } },
	{ "[worker]\nconcurency = 4\n", { NULL }, { NULL }, { "worker.concurency (file:", ":2): unknown key" } },
	{ "[worker]\nconcurrency = many\n", { NULL }, { NULL },
	  { "worker.concurrency = \"many\" (file:", ":2): not an integer" } },
	{ "\nconcurrency 4\n", { NULL }, { NULL }, { ":2: expected \"key = value\"" } },
	{ "= 4\n", { NULL }, { NULL }, { ":1: missing key" } },
	{ "[worker\n", { NULL }, { NULL }, { ":1: malformed [section]" } },
	{ "[]\n", { NULL }, { NULL }, { ":1: malformed [section]" } },
	{ NULL, { "JOBWHEEL_CONFIG", "/nonexistent/jobwheel.conf" }, { NULL },
	  { "\"/nonexistent/jobwheel.conf\" (env:JOBWHEEL_CONFIG)", "No such file" } },
	{ NULL, { NULL }, { "--config", "/nonexistent/x.conf" },
	  { "config file = \"/nonexistent/x.conf\" (flag --config): No such file or directory" } },
	{ NULL, { NULL }, { "--config=/" }, { "config file = \"/\" (flag --config): read error" } },
};
/* clang-format on */

static void test_errors(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
		const struct bad *b = &bad_inputs[i];
		const char *a[4] = { b->args[0], b->args[1], b->args[2], b->args[3] };
		int r;

		clean_env();
		if (b->file)
			setenv("JOBWHEEL_CONFIG", write_file(fx, b->file), 1);
		if (b->env[0])
			setenv(b->env[0], b->env[1], 1);
		r = load(fx, a[0], a[1], a[2], a[3], NULL);
		if (r != -EINVAL)
			fail_msg("case %zu (%s) returned %d", i, b->frags[0], r);
		assert_error(fx, r, b->frags[0], b->frags[1], b->frags[2], b->frags[3], NULL);
		if (fx->nfiles == MAX_FILES) {
			for (int f = 0; f < fx->nfiles; f++)
				unlink(fx->files[f]);
			fx->nfiles = 0;
		}
	}
}

static void test_env_alias_and_ignored(void **state)
{
	struct fixture *fx = *state;
	int k = key_index("email.failure_rate");

	setenv("EMAIL_FAILURE_RATE", "0.25", 1);
	setenv("JOBWHEEL", "x", 1);        /* no underscore: not ours */
	setenv("JOBWHEELS_FOO", "x", 1);   /* another prefix */
	setenv("MY_JOBWHEEL_FOO", "x", 1); /* does not start with it */
	assert_int_equal(load(fx, NULL), 0);
	assert_true(fx->cfg.email_failure_rate == 0.25);
	assert_string_equal(fx->cfg.source_where[k], "EMAIL_FAILURE_RATE");
	print(fx);
	assert_non_null(strstr(fx->out, "email.failure_rate = 0.25    # env:EMAIL_FAILURE_RATE\n"));

	/* the JOBWHEEL_ name wins, and then the alias is not even read */
	setenv("JOBWHEEL_EMAIL_FAILURE_RATE", "0.5", 1);
	setenv("EMAIL_FAILURE_RATE", "garbage", 1);
	assert_int_equal(load(fx, NULL), 0);
	assert_true(fx->cfg.email_failure_rate == 0.5);
	assert_string_equal(fx->cfg.source_where[k], "JOBWHEEL_EMAIL_FAILURE_RATE");
	unsetenv("JOBWHEEL");
	unsetenv("JOBWHEELS_FOO");
	unsetenv("MY_JOBWHEEL_FOO");
}

static void test_rest_args(void **state)
{
	struct fixture *fx = *state;
	static const char *const want[] = { "enqueue", "--kind", "email", "--payload={}", "-v", "pos",
					    "--", "--set", "worker.concurrency=99" };

	assert_int_equal(load(fx, "enqueue", "--kind", "email", "--queues", "q1", "--payload={}",
			      "--set", "worker.concurrency=3", "-v", "--version", "pos", "--help",
			      "--", "--set", "worker.concurrency=99", NULL),
			 0);
	assert_string_equal(fx->cfg.worker_queues, "q1");
	assert_int_equal(fx->cfg.worker_concurrency, 3);
	assert_true(fx->cli.help);
	assert_true(fx->cli.version);
	assert_false(fx->cli.print_config);
	assert_int_equal(fx->cli.nrest, 9);
	for (int i = 0; i < 9; i++)
		assert_string_equal(fx->cli.rest[i], want[i]);

	assert_int_equal(load(fx, "--queues=q2,q3", "--queues-extra", NULL), 0);
	assert_string_equal(fx->cfg.worker_queues, "q2,q3");
	assert_int_equal(fx->cli.nrest, 1);
	assert_string_equal(fx->cli.rest[0], "--queues-extra");
}

static void test_config_file_choice(void **state)
{
	struct fixture *fx = *state;
	const char *path = write_file(fx, "[worker]\nconcurrency = 5\n");

	/* --config beats a broken $JOBWHEEL_CONFIG */
	setenv("JOBWHEEL_CONFIG", "/nonexistent/jobwheel.conf", 1);
	assert_int_equal(load(fx, "--config", path, NULL), 0);
	assert_int_equal(fx->cfg.worker_concurrency, 5);
	assert_string_equal(fx->cfg.config_path, path);

	/* no --config, no $JOBWHEEL_CONFIG: the default file may be missing */
	unsetenv("JOBWHEEL_CONFIG");
	if (access("/etc/jobwheel/jobwheel.conf", F_OK) == 0)
		skip();
	assert_int_equal(load(fx, NULL), 0);
	assert_null(fx->cfg.config_path);
	setenv("JOBWHEEL_CONFIG", "", 1); /* empty is unset */
	assert_int_equal(load(fx, NULL), 0);
	assert_null(fx->cfg.config_path);
}

static void test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{ "0", 0 },          { "500", 500 },         { "500ms", 500 },
		{ "30s", 30000 },    { "5m", 300000 },       { "2h", 7200000 },
		{ "7d", 604800000 }, { "0d", 0 },            { "9223372036854775807", INT64_MAX },
		{ "007s", 7000 },    { "106751991167d", 106751991167LL * 86400000 },
	};
	static const char *const bad[] = { "", "s", "ms", "5 s", " 5s", "5s ", "-5", "+5", "5.5s", "5S",
					   "5sec", "5ms5", "1e3", "0x10", "9223372036854775808",
					   "9223372036854775807d", "106751991168d" };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		assert_int_equal(cfg_parse_duration_ms(good[i].s, &v), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (cfg_parse_duration_ms(bad[i], &v) != -EINVAL)
			fail_msg("duration \"%s\" accepted", bad[i]);
		assert_int_equal(v, 42); /* untouched on failure */
	}
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		int64_t bytes;
	} good[] = {
		{ "0", 0 },         { "4096", 4096 },          { "4096B", 4096 },
		{ "64KiB", 65536 }, { "1MiB", 1048576 },       { "2GiB", 2147483648LL },
		{ "8589934591GiB", 8589934591LL << 30 },
	};
	static const char *const bad[] = { "", "B", "KiB", "1MB", "1k", "1K", "1 KiB", "-1", "1.5MiB",
					   "1kib", "8589934592GiB", "99999999999999999999" };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		assert_int_equal(cfg_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (cfg_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("size \"%s\" accepted", bad[i]);
		assert_int_equal(v, 42);
	}
}

/* Bounds are inclusive, in the unit the key stores. */
static void test_bounds(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(load(fx, "--set", "worker.lease_ms=1s", "--set", "worker.concurrency=1", NULL), 0);
	assert_int_equal(fx->cfg.worker_lease_ms, 1000);
	assert_int_equal(load(fx, "--set", "worker.lease_ms=24h", "--concurrency", "4096", NULL), 0);
	assert_int_equal(fx->cfg.worker_lease_ms, 86400000);
	assert_int_equal(fx->cfg.worker_concurrency, 4096);
	assert_int_equal(load(fx, "--set", "worker.lease_ms=86400001", NULL), -EINVAL);
	assert_int_equal(load(fx, "--set", "gateway.max_body=1GiB", "--set", "email.failure_rate=1", NULL),
			 0);
	assert_int_equal(fx->cfg.gateway_max_body, 1073741824);
	assert_true(fx->cfg.email_failure_rate == 1.0);
	assert_int_equal(load(fx, "--set", "gateway.max_body=1073741825", NULL), -EINVAL);
	assert_int_equal(load(fx, "--set", "email.failure_rate=-0.01", NULL), -EINVAL);
	assert_int_equal(load(fx, "--set", "worker.shutdown_grace_ms=0", NULL), 0);
	assert_int_equal(fx->cfg.worker_shutdown_grace_ms, 0);
}

static void test_help_lists_keys(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(out);
	config_print_help(out);
	fclose(out);
	for (int k = 0; k < cfg_nkeys; k++)
		assert_non_null(strstr(buf, cfg_keys[k].name));
	assert_non_null(strstr(buf, "--print-config"));
	free(buf);
}

static void test_free_zeroed(void **state)
{
	struct config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	config_free(&cfg);
	config_free(&cfg);
	config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_default_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_masking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_alias_and_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rest_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_file_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_duration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_lists_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_zeroed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
