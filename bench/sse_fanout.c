/* SPDX-License-Identifier: MIT */
/* Benchmark: N SSE clients on one gateway, latency of one job event to all of them. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/resource.h>

#include "sse_fanout.h"

/*
 * One thread, one libev loop, N non-blocking connections to GET /api/events
 * (sse_fanout_client.c), connected in batches. Then, K times: enqueue one
 * marker job, and record for every client the time its `event: job` block
 * with that id arrives (sse_fanout_measure.c; the stream is parsed by
 * sse_fanout_stream.c). At the end, the figures (sse_fanout_report.c).
 * This file is the driver: options, limits, setup, and the order of it all.
 *
 * usage: see usage() below.
 */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sse_fanout --port PORT --db CONNINFO [options]\n"
	        "  --host ADDR            gateway address (127.0.0.1)\n"
	        "  --port PORT            gateway port\n"
	        "  --clients N            SSE clients (1000)\n"
	        "  --rounds K             marker jobs, one at a time (20)\n"
	        "  --db CONNINFO          the gateway's database (libpq URL)\n"
	        "  --queue Q              queue of the marker jobs (fanout)\n"
	        "  --kind KIND            kind of the marker jobs (noop)\n"
	        "  --path PATH            request path (/api/events?types=job&queue=Q)\n"
	        "  --token TOKEN          send Authorization: Bearer TOKEN\n"
	        "  --gateway-pid PID      read the gateway's RSS and CPU from /proc\n"
	        "  --batch N              clients connecting at once (128)\n"
	        "  --connect-timeout S    per batch (10)\n"
	        "  --round-timeout S      wait for all clients per round (10)\n"
	        "  --gap S                pause between rounds (0.5)\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},          {"port", required_argument, NULL, 'p'},
		{"clients", required_argument, NULL, 'n'},       {"rounds", required_argument, NULL, 'k'},
		{"db", required_argument, NULL, 'd'},            {"queue", required_argument, NULL, 'q'},
		{"kind", required_argument, NULL, 'K'},          {"path", required_argument, NULL, 'P'},
		{"token", required_argument, NULL, 't'},         {"gateway-pid", required_argument, NULL, 'g'},
		{"batch", required_argument, NULL, 'b'},         {"connect-timeout", required_argument, NULL, 'C'},
		{"round-timeout", required_argument, NULL, 'R'}, {"gap", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0},
	};
	static char default_path[512];
	int ch;

	*o = (struct options){.host = "127.0.0.1", .queue = "fanout", .kind = "noop", .clients = 1000,
	                      .rounds = 20, .batch = 128, .connect_timeout_s = 10, .round_timeout_s = 10,
	                      .gap_s = 0.5};
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = atoi(optarg); break;
		case 'n': o->clients = atoi(optarg); break;
		case 'k': o->rounds = atoi(optarg); break;
		case 'd': o->db = optarg; break;
		case 'q': o->queue = optarg; break;
		case 'K': o->kind = optarg; break;
		case 'P': o->path = optarg; break;
		case 't': o->token = optarg; break;
		case 'g': o->gw_pid = (pid_t)atoi(optarg); break;
		case 'b': o->batch = atoi(optarg); break;
		case 'C': o->connect_timeout_s = atof(optarg); break;
		case 'R': o->round_timeout_s = atof(optarg); break;
		case 'G': o->gap_s = atof(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind != argc || o->port <= 0 || o->port > 65535 || !o->db || o->clients < 1 ||
	    o->clients > 1000000 || o->rounds < 1 || o->rounds > 100000 || o->batch < 1 ||
	    o->connect_timeout_s <= 0 || o->round_timeout_s <= 0 || o->gap_s < 0)
		return -EINVAL;
	if (!o->path) {
		/* queue names in this bench are plain identifiers: no URL encoding needed */
		snprintf(default_path, sizeof(default_path), "/api/events?types=job&queue=%s", o->queue);
		o->path = default_path;
		o->default_path = true;
	}
	return 0;
}

static int raise_nofile(int clients)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)clients + 32;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_max < need) {
		fprintf(stderr,
		        "sse_fanout: RLIMIT_NOFILE hard limit is %llu, %d clients need %llu: raise it "
		        "(ulimit -Hn, /etc/security/limits.conf) or use fewer clients\n",
		        (unsigned long long)rl.rlim_max, clients, (unsigned long long)need);
		return -EMFILE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct round_stat *rs = NULL;
	PGconn *pg = NULL;
	uint64_t t_rounds;
	double ramp_s;
	int rc = 1;

	if (!b)
		return 1;
	if (parse_options(argc, argv, &b->o) < 0) {
		usage(stderr);
		goto cleanup;
	}
	if (raise_nofile(b->o.clients) < 0)
		goto cleanup;
	signal(SIGPIPE, SIG_IGN);
	b->addr.sin_family = AF_INET;
	b->addr.sin_port = htons((uint16_t)b->o.port);
	if (inet_pton(AF_INET, b->o.host, &b->addr.sin_addr) != 1) {
		fprintf(stderr, "sse_fanout: --host must be an IPv4 address: %s\n", b->o.host);
		goto cleanup;
	}
	b->clients = calloc((size_t)b->o.clients, sizeof(*b->clients));
	b->lat_us = malloc((size_t)b->o.rounds * (size_t)b->o.clients * sizeof(*b->lat_us));
	rs = calloc((size_t)b->o.rounds, sizeof(*rs));
	if (!b->clients || !b->lat_us || !rs) {
		fprintf(stderr, "sse_fanout: out of memory\n");
		goto cleanup;
	}
	memset(b->lat_us, 0xff, (size_t)b->o.rounds * (size_t)b->o.clients * sizeof(*b->lat_us));
	pg = PQconnectdb(b->o.db);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "sse_fanout: %s", PQerrorMessage(pg));
		goto cleanup;
	}
	b->loop = ev_default_loop(EVFLAG_AUTO);
	if (!b->loop || client_build_request(b) < 0) {
		fprintf(stderr, "sse_fanout: cannot set up the event loop\n");
		goto cleanup;
	}
	measure_start_sampling(b);
	if (client_ramp_up(b, &ramp_s) < 0)
		goto cleanup;
	measure_idle(b);

	t_rounds = now_ns();
	for (int r = 0; r < b->o.rounds; r++)
		if (measure_round(b, pg, r, &rs[r]) < 0)
			goto cleanup;
	report_print(b, rs, ramp_s, (double)(now_ns() - t_rounds) / 1e9);
	rc = 0;
cleanup:
	if (b->clients)
		for (int i = 0; i < b->o.clients; i++)
			client_close(&b->clients[i], false);
	PQfinish(pg);
	free(b->clients);
	free(b->lat_us);
	free(b->request);
	free(rs);
	free(b);
	return rc;
}
