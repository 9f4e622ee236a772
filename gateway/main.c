/* SPDX-License-Identifier: MIT */
/* jobwheel-gateway: configuration, the loopback guard, signals, and the
 * loop (SPEC §10). The HTTP side starts in http.c, requests in api.c, the
 * SSE relay in feed.c -> sse.c. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <ev.h>
#include <libpq-fe.h>

#include "api.h"
#include "config.h"
#include "db.h"
#include "feed.h"
#include "gateway.h"
#include "http.h"
#include "jw_build_config.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "sse.h"
#include "util.h"

#define METRICS_RESYNC_S 60.0
#define REPLAY_MAX 10000

static const struct cfg_flag gateway_flags[] = {
	{ "--listen", "gateway.listen" },
	{ NULL, NULL },
};

struct app {
	struct gateway gw;
	ev_signal sigterm, sigint;
	ev_timer watchdog;
	bool stopping;
};

static void on_stop(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct app *app = s->signum == SIGTERM ? container_of(s, struct app, sigterm)
					       : container_of(s, struct app, sigint);

	log_info("stopping");
	sdnotify_stopping();
	ev_break(loop, EVBREAK_ALL);
	app->stopping = true;
}

static void on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	sdnotify_watchdog();
}

static void on_feed_event(const struct feed_event *ev, void *arg)
{
	struct gateway *gw = arg;

	metrics_feed(gw->metrics, ev);
	sse_publish(gw->sse, ev);
}

static void on_feed_batch(void *arg)
{
	struct gateway *gw = arg;

	sse_flush(gw->sse);
}

/* While no token exists the API is open, so it may only listen on
 * loopback. Returns 0, or 2 (configuration) / 1 (database) after saying why. */
static int check_exposure(const struct config *cfg)
{
	PGconn *c;
	PGresult *r;
	int rc = 0;

	if (http_addr_is_loopback(cfg->gateway_listen))
		return 0;
	c = PQconnectdb(cfg->database_url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "jobwheel-gateway: cannot check for API tokens before listening on %s: %s",
			cfg->gateway_listen, PQerrorMessage(c));
		PQfinish(c);
		return 1;
	}
	r = PQexec(c, "SELECT jobwheel.token_scope(NULL)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "jobwheel-gateway: cannot check for API tokens: %s", PQerrorMessage(c));
		rc = 1;
	} else if (!PQgetisnull(r, 0, 0) && !strcmp(PQgetvalue(r, 0, 0), "open")) {
		fprintf(stderr,
			"jobwheel-gateway: gateway.listen = \"%s\" is not a loopback address, and no API token "
			"exists: the API would be open to the network. Create one first "
			"(jobwheel token create NAME --scope admin), or listen on 127.0.0.1.\n",
			cfg->gateway_listen);
		rc = 2;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* Feed results of a few MB come and go many times a second: keep such
 * blocks in the heap rather than mapping and faulting them in each time. */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

/* 10 000 SSE clients need as many descriptors: take what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static struct app app;
	struct gateway *gw = &app.gw;
	struct config cfg = { 0 };
	struct cfg_cli cli = { 0 };
	char err[256];
	int rc = 2;

	if (config_load(&cfg, "jobwheel-gateway", argc, argv, gateway_flags, &cli, stderr) < 0)
		goto out;
	if (cli.help) {
		printf("Usage: jobwheel-gateway [--listen HOST:PORT] [options]\n\n"
		       "Serves the REST API, Server-Sent Events, /metrics and the dashboard.\n"
		       "Options and keys:\n");
		config_print_help(stdout);
		rc = 0;
		goto out;
	}
	if (cli.version || cli.print_config) {
		if (cli.version)
			printf("jobwheel-gateway %s\n", JW_VERSION);
		else
			config_print(&cfg, stdout);
		rc = 0;
		goto out;
	}
	if (cli.nrest > 0) {
		fprintf(stderr, "jobwheel-gateway: unexpected argument \"%s\" (see --help)\n", cli.rest[0]);
		goto out;
	}
	log_setup("jobwheel-gateway", cfg.log_level, cfg.log_format);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	tune_malloc();
	rc = check_exposure(&cfg);
	if (rc)
		goto out;
	rc = 1;
	gw->loop = EV_DEFAULT;
	gw->cfg = &cfg;
	gw->db = db_pool_new(gw->loop, cfg.database_url, (int)cfg.gateway_db_pool);
	gw->feed = feed_new(gw->loop, cfg.database_url, (double)cfg.sse_poll_ms / 1000.0, on_feed_event, on_feed_batch,
			    gw);
	gw->sse = sse_new(gw, &(struct sse_options){
				      .ring_events = (int)cfg.sse_ring_events,
				      .max_job_events_per_s = (int)cfg.sse_max_job_events_per_s,
				      .keepalive_s = (double)cfg.sse_keepalive_ms / 1000.0,
				      .replay_max = REPLAY_MAX,
			      });
	gw->metrics = metrics_new(gw, METRICS_RESYNC_S);
	if (!gw->db || !gw->feed || !gw->sse || !gw->metrics) {
		fprintf(stderr, "jobwheel-gateway: out of memory\n");
		goto out;
	}
	if (http_server_start(&gw->http, gw->loop, cfg.gateway_listen,
			      &(struct http_limits){
				      .max_header = (size_t)cfg.gateway_max_header,
				      .max_body = (size_t)cfg.gateway_max_body,
				      .max_connections = (int)cfg.gateway_max_connections,
				      .idle_timeout = (double)cfg.gateway_idle_timeout_ms / 1000.0,
				      .request_timeout = (double)cfg.gateway_request_timeout_ms / 1000.0,
			      },
			      api_handle, gw, err, sizeof(err)) < 0) {
		fprintf(stderr, "jobwheel-gateway: %s\n", err);
		rc = strstr(err, "gateway.listen") ? 2 : 1;
		goto out;
	}
	feed_start(gw->feed);
	ev_signal_init(&app.sigterm, on_stop, SIGTERM);
	ev_signal_init(&app.sigint, on_stop, SIGINT);
	ev_signal_start(gw->loop, &app.sigterm);
	ev_signal_start(gw->loop, &app.sigint);
	if (sdnotify_watchdog_ms() > 0) {
		double every = (double)sdnotify_watchdog_ms() / 2000.0;
		ev_timer_init(&app.watchdog, on_watchdog, every, every);
		ev_timer_start(gw->loop, &app.watchdog);
	}
	log_info("listening on http://%s/ (dashboard at /, API under /api/)", cfg.gateway_listen);
	sdnotify_ready();
	ev_run(gw->loop, 0);
	rc = 0;
out:
	sse_free(gw->sse); /* closing a stream tells gw->http: free that last */
	http_server_free(gw->http);
	metrics_free(gw->metrics);
	feed_free(gw->feed);
	db_pool_free(gw->db); /* drops the queries of the calls in flight: */
	api_free_calls(gw);
	config_free(&cfg);
	return rc;
}
