/* SPDX-License-Identifier: MIT */
/* The SSE fan-out benchmark's shared state: one struct bench, its clients,
 * and the modules that work on it (client pool, stream parser, measurement,
 * report). One thread: nothing here is locked. */
#ifndef JW_BENCH_SSE_FANOUT_H
#define JW_BENCH_SSE_FANOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <netinet/in.h>
#include <sys/types.h>

#include <ev.h>
#include <libpq-fe.h>

#define READ_BUF_SIZE (64 * 1024)
#define MAX_HEADER_BYTES 8192
#define MAX_LINE_BYTES (1024 * 1024)
#define TICK_S 0.02
#define MISSED UINT32_MAX /* lat_us of a client that did not get the round's marker */

enum client_state { C_IDLE, C_CONNECTING, C_HEADERS, C_STREAMING, C_CLOSED };
enum chunk_state { CS_SIZE, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_END };
enum sse_type { T_NONE, T_JOB, T_OTHER };

struct bench;

struct client {
	ev_io io;
	struct bench *b;
	int fd;
	uint8_t state;
	uint8_t chunked;
	uint8_t cs;
	uint8_t ev_type;
	uint32_t chunk_left;
	int64_t data_id;  /* "id" of the current event block's data, -1 if none */
	int32_t got_round; /* round whose marker this client has, -1 none */
	uint32_t sent;     /* request bytes written */
	/* header bytes while in C_HEADERS, then the carried partial SSE line */
	char *buf;
	uint32_t len, cap;
};

struct options {
	const char *host, *path, *token, *db, *queue, *kind;
	int port, clients, rounds, batch;
	double round_timeout_s, connect_timeout_s, gap_s;
	pid_t gw_pid;
	bool default_path;
};

struct round_stat {
	int64_t job_id;
	int expected, received;
	double enqueue_ms;   /* send → commit acknowledged */
	double first_ms, last_ms;
	double gw_cpu_s, client_cpu_s, window_s;
};

struct bench {
	struct options o;
	struct ev_loop *loop;
	ev_timer tick;
	struct client *clients;
	char *request;
	size_t request_len;
	struct sockaddr_in addr;

	/* ramp-up */
	int pending;     /* clients of the current batch still waiting for headers */
	int streaming;   /* clients connected now */
	int connect_failures, bad_status, disconnects;
	int last_status; /* status of the last refused client */
	char first_error[256];

	/* rounds */
	bool in_round;
	int round;
	int remaining;
	int64_t marker;
	uint64_t t_commit_ns, t_first_ns, t_last_ns;
	uint32_t *lat_us; /* rounds × clients */
	uint64_t job_events, other_events, bytes;

	/* gateway memory, KiB */
	long rss_idle_kib, rss_peak_kib, hwm_kib;

	unsigned char rbuf[READ_BUF_SIZE];
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------ client pool (sse_fanout_client.c) */

/* Keeps the first error of the run only: later ones are mostly its echoes. */
void client_note_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The GET request every client sends, from b->o; 0 or -ENOMEM/-EINVAL. */
int client_build_request(struct bench *b);
/* Connects all b->o.clients, b->o.batch at a time, after a probe with one
 * (which falls back to /api/events if the default path is refused with 400).
 * Sets *ret_ramp_s; -EPROTO when not even the first client could subscribe. */
int client_ramp_up(struct bench *b, double *ret_ramp_s);
/* Closes a client (no-op if never connected or closed); FAILURE counts a
 * client that had not yet streamed as a connect failure. */
void client_close(struct client *c, bool failure);
/* Runs the loop until *counter is 0 or DEADLINE_NS passes; false on timeout. */
bool client_run_until_zero(struct bench *b, const int *counter, uint64_t deadline_ns);
/* Runs the loop for SECONDS. */
void client_run_for(struct bench *b, double seconds);

/* --------------------------------------------- response parsing (sse_fanout_stream.c) */

/* N bytes just read by client C at time T (they may be overwritten): headers
 * while C_HEADERS, then the (possibly chunked) event stream. 0 or negative
 * errno-style code, after which the caller closes the client. */
int stream_feed(struct bench *b, struct client *c, char *p, size_t n, uint64_t t);

/* ------------------------------------------------ measurement (sse_fanout_measure.c) */

/* A job event with id ID reached client C at time T: its latency if it is
 * this round's marker and the first copy C got. */
void measure_delivery(struct bench *b, struct client *c, int64_t id, uint64_t t);
/* Samples the gateway's RSS every TICK_S while a round is on. */
void measure_start_sampling(struct bench *b);
/* Lets the gateway settle for a second with all clients connected, then
 * reads its idle RSS (the baseline of the peak); a failed read is reported. */
void measure_idle(struct bench *b);
/* Round R: enqueue the marker, wait for every streaming client (or the
 * round timeout), fill RS. 0, or -EIO if the enqueue failed (reported). */
int measure_round(struct bench *b, PGconn *pg, int r, struct round_stat *rs);

/* ------------------------------------------------------ report (sse_fanout_report.c) */

/* The per-round table, the summary lines and one JSON line, on stdout. */
void report_print(const struct bench *b, const struct round_stat *rs, double ramp_s, double rounds_wall_s);

#endif
