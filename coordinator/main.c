/* SPDX-License-Identifier: MIT */
/* jobwheel-coordinator: configuration, signals, and the loop (SPEC §8). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>

#include "config.h"
#include "coord.h"
#include "jw_build_config.h"
#include "log.h"
#include "util.h"

static const struct cfg_flag coordinator_flags[] = {
	{ "--timer", "coordinator.timer" },
	{ NULL, NULL },
};

struct app {
	struct coord coord;
	ev_signal sigterm, sigint;
};

static void on_stop(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct app *app = s->signum == SIGTERM ? container_of(s, struct app, sigterm)
					       : container_of(s, struct app, sigint);

	coord_stop(&app->coord); /* a second signal breaks the loop at once */
}

int main(int argc, char **argv)
{
	static struct app app;
	struct config cfg = { 0 };
	struct cfg_cli cli = { 0 };
	struct ev_loop *loop;
	int rc = 2;

	if (config_load(&cfg, "jobwheel-coordinator", argc, argv, coordinator_flags, &cli, stderr) < 0)
		goto out;
	if (cli.help) {
		printf("Usage: jobwheel-coordinator [--timer wheel|heap] [options]\n\n"
		       "Leads (one of any number of coordinators): delayed jobs, starvation daemon,\n"
		       "retention and cron. Options and keys:\n");
		config_print_help(stdout);
		rc = 0;
		goto out;
	}
	if (cli.version || cli.print_config) {
		if (cli.version)
			printf("jobwheel-coordinator %s\n", JW_VERSION);
		else
			config_print(&cfg, stdout);
		rc = 0;
		goto out;
	}
	if (cli.nrest > 0) {
		fprintf(stderr, "jobwheel-coordinator: unexpected argument \"%s\" (see --help)\n", cli.rest[0]);
		goto out;
	}
	log_setup("jobwheel-coordinator", cfg.log_level, cfg.log_format);
	signal(SIGPIPE, SIG_IGN);
	loop = EV_DEFAULT;
	rc = 1;
	if (coord_init(&app.coord, loop, &cfg) < 0) {
		fprintf(stderr, "jobwheel-coordinator: out of memory\n");
		goto out;
	}
	ev_signal_init(&app.sigterm, on_stop, SIGTERM);
	ev_signal_init(&app.sigint, on_stop, SIGINT);
	ev_signal_start(loop, &app.sigterm);
	ev_signal_start(loop, &app.sigint);
	coord_start(&app.coord);
	ev_run(loop, 0);
	coord_free(&app.coord);
	rc = 0;
out:
	config_free(&cfg);
	return rc;
}
