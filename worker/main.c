/* SPDX-License-Identifier: MIT */
/* jobwheel-worker: configuration, signals, and the loop (SPEC §6). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "addr_policy.h"
#include "config.h"
#include "http_client.h"
#include "jw_build_config.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define MAX_QUEUES 64

struct app {
	struct worker *worker;
	struct addr_policy *policy;   /* http.allow */
	struct http_client *http;     /* the worker's libcurl multi */
	struct config cfg;
	int argc;
	char **argv;
	int signals;
	ev_signal sigterm, sigint, sighup;
};

static const struct cfg_flag worker_flags[] = {
	{ "--queues", "worker.queues" },
	{ "--concurrency", "worker.concurrency" },
	{ NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: jobwheel-worker [--queues q1,q2] [--concurrency N] [options]\n\n"
		     "Claims jobs from PostgreSQL and runs them. Options and keys:\n");
	config_print_help(out);
}

/* Splits worker.queues in place into names; exits-worthy errors go to stderr. */
static int parse_queues(char *list, char **ret, int max)
{
	int n = 0;

	for (char *save = NULL, *q = strtok_r(list, ",", &save); q; q = strtok_r(NULL, ",", &save)) {
		while (*q == ' ')
			q++;
		for (char *e = q + strlen(q); e > q && e[-1] == ' ';)
			*--e = '\0';
		if (!name_valid(q)) {
			fprintf(stderr, "jobwheel-worker: worker.queues: \"%s\" is not a valid queue name "
					"(1-64 of a-z 0-9 _ . -)\n", q);
			return -1;
		}
		if (n == max) {
			fprintf(stderr, "jobwheel-worker: worker.queues: more than %d queues\n", max);
			return -1;
		}
		ret[n++] = q;
	}
	if (n == 0)
		fprintf(stderr, "jobwheel-worker: worker.queues: no queue given\n");
	return n > 0 ? n : -1;
}

static void on_stop(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct app *app = s->signum == SIGTERM ? container_of(s, struct app, sigterm)
					       : container_of(s, struct app, sigint);

	if (app->signals++ == 0) {
		worker_drain(app->worker);
		return;
	}
	log_warn("second signal: exiting now; unfinished jobs return after their lease expires");
	ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: re-read the configuration; only what is safe to change while
 * running is applied (log level and format, the email mock settings). */
static void on_reload(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct app *app = container_of(s, struct app, sighup);
	struct config fresh = { 0 };
	struct cfg_cli cli = { 0 };

	if (config_load(&fresh, "jobwheel-worker", app->argc, app->argv, worker_flags, &cli, stderr) < 0 ||
	    log_setup("jobwheel-worker", fresh.log_level, fresh.log_format) < 0) {
		log_error("SIGHUP: configuration not reloaded (see the error above)");
	} else {
		app->cfg.email_failure_rate = fresh.email_failure_rate;
		app->cfg.email_mock_latency_ms = fresh.email_mock_latency_ms;
		log_info("SIGHUP: configuration reloaded (log.*, email.failure_rate, email.mock_latency_ms)");
	}
	config_free(&fresh);
}

int main(int argc, char **argv)
{
	static struct app app;
	struct cfg_cli cli = { 0 };
	char *queues[MAX_QUEUES];
	char *queue_list = NULL;
	int nqueues, rc = 2;
	char err[256];
	struct ev_loop *loop;

	app.argc = argc;
	app.argv = argv;
	if (config_load(&app.cfg, "jobwheel-worker", argc, argv, worker_flags, &cli, stderr) < 0)
		goto out;
	if (cli.help || cli.version || cli.print_config) {
		if (cli.help)
			usage(stdout);
		else if (cli.version)
			printf("jobwheel-worker %s\n", JW_VERSION);
		else
			config_print(&app.cfg, stdout);
		rc = 0;
		goto out;
	}
	if (cli.nrest > 0) {
		fprintf(stderr, "jobwheel-worker: unexpected argument \"%s\" (see --help)\n", cli.rest[0]);
		goto out;
	}
	queue_list = strdup(app.cfg.worker_queues);
	if (!queue_list || (nqueues = parse_queues(queue_list, queues, MAX_QUEUES)) < 0)
		goto out;
	log_setup("jobwheel-worker", app.cfg.log_level, app.cfg.log_format);

	if (addr_policy_parse(app.cfg.http_allow, &app.policy, err, sizeof(err)) < 0) {
		fprintf(stderr, "jobwheel-worker: %s\n", err);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	loop = EV_DEFAULT;
	rc = 1;
	if (!(app.http = http_client_new(loop, app.policy))) {
		fprintf(stderr, "jobwheel-worker: out of memory\n");
		goto out;
	}
	app.worker = worker_new(loop, &app.cfg, queues, nqueues, app.http);
	if (!app.worker) {
		fprintf(stderr, "jobwheel-worker: out of memory\n");
		goto out;
	}
	ev_signal_init(&app.sigterm, on_stop, SIGTERM);
	ev_signal_init(&app.sigint, on_stop, SIGINT);
	ev_signal_init(&app.sighup, on_reload, SIGHUP);
	ev_signal_start(loop, &app.sigterm);
	ev_signal_start(loop, &app.sigint);
	ev_signal_start(loop, &app.sighup);

	worker_start(app.worker);
	ev_run(loop, 0);
	rc = worker_exit_status(app.worker);
	worker_free(app.worker);
out:
	http_client_free(app.http);
	addr_policy_free(app.policy);
	free(queue_list);
	config_free(&app.cfg);
	return rc;
}
