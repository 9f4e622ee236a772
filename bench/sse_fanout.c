/* SPDX-License-Identifier: MIT */
/* Benchmark: N SSE clients on one gateway, latency of one job event to all of them. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <ev.h>
#include <libpq-fe.h>

/*
 * One thread, one libev loop, N non-blocking connections to GET /api/events.
 * A client counts as connected once it has read "HTTP/1.1 200" with a
 * text/event-stream content type; clients connect in batches, each batch
 * waiting for its headers, so the gateway's listen backlog never overflows.
 * Then, K times: enqueue one marker job (the INSERT is the event; no worker
 * runs, so it stays 'ready'), take the monotonic time after the commit, and
 * record for every client the time its `event: job` block with that id
 * arrives. The stream may be chunked; events may be split across reads and
 * chunks. Only the "id" number of the data line is read, the JSON is not
 * parsed.
 *
 * Latency includes this client's own work: one thread reads 10 000 sockets
 * in turn, so the last one is read a few tens of milliseconds after the
 * first even if the gateway wrote them all at once. The per-round "first"
 * figure (commit → first client) is the gateway's relay delay; "last −
 * first" is the spread of the fan-out on both sides.
 *
 * usage: see usage() below.
 */

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define READ_BUF_SIZE (64 * 1024)
#define MAX_HEADER_BYTES 8192
#define MAX_LINE_BYTES (1024 * 1024)
#define TICK_S 0.02
#define MISSED UINT32_MAX

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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of PID in seconds, or -1. */
static double cpu_pid_s(pid_t pid)
{
	char path[64], line[1024];
	unsigned long ut, st;
	FILE *f;
	char *p;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strrchr(line, ')')))
		return -1;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS and VmHWM of PID in KiB; 0 on success. */
static int rss_pid_kib(pid_t pid, long *ret_rss, long *ret_hwm)
{
	char path[64], line[256];
	long rss = -1, hwm = -1;
	FILE *f;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			rss = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			hwm = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	if (rss < 0 || hwm < 0)
		return -ENOENT;
	*ret_rss = rss;
	*ret_hwm = hwm;
	return 0;
}

static void sample_rss(struct bench *b)
{
	long rss, hwm;

	if (rss_pid_kib(b->o.gw_pid, &rss, &hwm) < 0)
		return;
	if (rss > b->rss_peak_kib)
		b->rss_peak_kib = rss;
	b->hwm_kib = hwm;
}

static void note_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
	va_end(ap);
}

static void client_close(struct client *c, bool failure)
{
	struct bench *b = c->b;

	if (c->state == C_IDLE || c->state == C_CLOSED)
		return;
	ev_io_stop(b->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	if (c->state == C_STREAMING) {
		b->streaming--;
		b->disconnects++;
		if (b->in_round && c->got_round != b->round)
			b->remaining--;
	} else {
		b->pending--;
		if (failure)
			b->connect_failures++;
	}
	c->state = C_CLOSED;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static int buf_append(struct client *c, const void *data, size_t n, size_t limit)
{
	if ((size_t)c->len + n > limit)
		return -E2BIG;
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 256;
		char *p;

		while (cap < c->len + n)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		p = realloc(c->buf, cap);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = (uint32_t)cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += (uint32_t)n;
	return 0;
}

static void deliver(struct bench *b, struct client *c, int64_t id, uint64_t t)
{
	b->job_events++;
	if (!b->in_round || id != b->marker || c->got_round == b->round)
		return;
	c->got_round = b->round;
	b->lat_us[(size_t)b->round * (size_t)b->o.clients + (size_t)(c - b->clients)] =
		(uint32_t)((t - b->t_commit_ns) / 1000);
	if (!b->t_first_ns)
		b->t_first_ns = t;
	b->t_last_ns = t;
	b->remaining--;
}

/* "id": N in a data line; -1 if absent. */
static int64_t find_id(const char *p, size_t n)
{
	static const char key[] = "\"id\"";
	const char *end = p + n, *q = memmem(p, n, key, sizeof(key) - 1);
	int64_t v = 0;

	if (!q)
		return -1;
	q += sizeof(key) - 1;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= end || *q++ != ':')
		return -1;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	while (q < end && *q >= '0' && *q <= '9' && v < INT64_MAX / 10)
		v = v * 10 + (*q++ - '0');
	return v;
}

/* One SSE line, without its "\n" (a trailing "\r" is dropped here). */
static void sse_line(struct bench *b, struct client *c, const char *p, size_t n, uint64_t t)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0) { /* blank line: dispatch the event */
		if (c->ev_type == T_JOB && c->data_id >= 0)
			deliver(b, c, c->data_id, t);
		else if (c->ev_type != T_NONE || c->data_id >= 0)
			b->other_events++;
		c->ev_type = T_NONE;
		c->data_id = -1;
		return;
	}
	if (n >= 6 && memcmp(p, "event:", 6) == 0) {
		p += 6, n -= 6;
		if (n && *p == ' ')
			p++, n--;
		c->ev_type = (n == 3 && memcmp(p, "job", 3) == 0) ? T_JOB : T_OTHER;
	} else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
		if (c->data_id < 0 && c->ev_type != T_OTHER)
			c->data_id = find_id(p + 5, n - 5);
	}
	/* id:, retry:, comments (": keepalive"): nothing to do */
}

static int sse_feed(struct bench *b, struct client *c, const char *p, size_t n, uint64_t t)
{
	const char *end = p + n, *nl;
	int r;

	if (c->len) { /* finish the line carried over from the last read */
		nl = memchr(p, '\n', n);
		if (!nl)
			return buf_append(c, p, n, MAX_LINE_BYTES);
		r = buf_append(c, p, (size_t)(nl - p), MAX_LINE_BYTES);
		if (r < 0)
			return r;
		sse_line(b, c, c->buf, c->len, t);
		c->len = 0;
		p = nl + 1;
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return buf_append(c, p, (size_t)(end - p), MAX_LINE_BYTES);
		sse_line(b, c, p, (size_t)(nl - p), t);
		p = nl + 1;
	}
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Remove chunked framing in place; returns the payload length or a negative code. */
static ssize_t dechunk(struct client *c, char *p, size_t n)
{
	size_t i = 0, out = 0;

	while (i < n) {
		char ch = p[i];

		switch (c->cs) {
		case CS_SIZE:
			if (hexval(ch) >= 0) {
				if (c->chunk_left > (UINT32_MAX >> 4))
					return -EPROTO;
				c->chunk_left = c->chunk_left * 16 + (uint32_t)hexval(ch);
			} else if (ch == ';') {
				c->cs = CS_EXT;
			} else if (ch == '\r') {
				c->cs = CS_SIZE_LF;
			} else if (ch == '\n') {
				c->cs = c->chunk_left ? CS_DATA : CS_END;
			} else {
				return -EPROTO;
			}
			i++;
			break;
		case CS_EXT:
			if (ch == '\n')
				c->cs = c->chunk_left ? CS_DATA : CS_END;
			i++;
			break;
		case CS_SIZE_LF:
			if (ch != '\n')
				return -EPROTO;
			c->cs = c->chunk_left ? CS_DATA : CS_END;
			i++;
			break;
		case CS_DATA: {
			size_t k = n - i < c->chunk_left ? n - i : c->chunk_left;

			memmove(p + out, p + i, k);
			out += k, i += k;
			c->chunk_left -= (uint32_t)k;
			if (!c->chunk_left)
				c->cs = CS_DATA_CR;
			break;
		}
		case CS_DATA_CR:
			if (ch == '\r')
				c->cs = CS_DATA_LF;
			else if (ch == '\n')
				c->cs = CS_SIZE;
			else
				return -EPROTO;
			i++;
			break;
		case CS_DATA_LF:
			if (ch != '\n')
				return -EPROTO;
			c->cs = CS_SIZE;
			i++;
			break;
		case CS_END:
			return (ssize_t)out; /* the stream ended; the caller sees EOF next */
		}
	}
	return (ssize_t)out;
}

static int body_feed(struct bench *b, struct client *c, char *p, size_t n, uint64_t t)
{
	if (c->chunked) {
		ssize_t m = dechunk(c, p, n);

		if (m < 0)
			return (int)m;
		n = (size_t)m;
	}
	return n ? sse_feed(b, c, p, n, t) : 0;
}

/* Header value of NAME in the header block HDR (NUL-terminated), or NULL. */
static const char *header_value(const char *hdr, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name);
	const char *p = strstr(hdr, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			*ret_len = (size_t)(eol - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

static bool contains_ci(const char *v, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(v + i, needle, k) == 0)
			return true;
	return false;
}

/*
 * Header block complete in c->buf[0..hlen): accept or refuse the client.
 * The bytes after it are also the last ones of the read that completed it:
 * TAIL[0..tail_len), the body start.
 */
static int headers_done(struct bench *b, struct client *c, size_t hlen, char *tail, size_t tail_len, uint64_t t)
{
	char *body = c->buf + hlen;
	size_t vlen;
	const char *v;
	int status;

	body[-1] = '\0'; /* the last "\n" of "\r\n\r\n"; header_value stops at "\r\n\r" */
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	if (status != 200) {
		char *eol = strstr(c->buf, "\r\n");

		if (eol)
			*eol = '\0';
		b->bad_status++;
		b->last_status = status;
		note_error(b, "client %td: \"%s\" (body: %.120s)", c - b->clients, c->buf, body);
		return -EPROTO;
	}
	v = header_value(c->buf, "Content-Type", &vlen);
	if (!v || !contains_ci(v, vlen, "text/event-stream")) {
		b->bad_status++;
		b->last_status = status;
		note_error(b, "client %td: 200 without Content-Type: text/event-stream", c - b->clients);
		return -EPROTO;
	}
	v = header_value(c->buf, "Transfer-Encoding", &vlen);
	c->chunked = v && contains_ci(v, vlen, "chunked");
	c->state = C_STREAMING;
	b->pending--;
	b->streaming++;
	/* the header buffer becomes the carry of partial SSE lines */
	c->len = 0;
	return tail_len ? body_feed(b, c, tail, tail_len, t) : 0;
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = container_of(w, struct client, io);
	struct bench *b = c->b;

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		ssize_t k;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			note_error(b, "connect: %s", strerror(err));
			client_close(c, true);
			return;
		}
		k = send(c->fd, b->request + c->sent, b->request_len - c->sent, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (k < 0) {
			note_error(b, "send: %s", strerror(errno));
			client_close(c, true);
			return;
		}
		c->sent += (uint32_t)k;
		if (c->sent < b->request_len)
			return;
		c->state = C_HEADERS;
		ev_io_stop(loop, w);
		ev_io_set(w, c->fd, EV_READ);
		ev_io_start(loop, w);
		return;
	}

	for (;;) {
		ssize_t n = recv(c->fd, b->rbuf, sizeof(b->rbuf), 0);
		uint64_t t = now_ns();
		int r = 0;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (c->state == C_HEADERS)
				note_error(b, "client %td: %s before the response headers", c - b->clients,
				           n ? strerror(errno) : "EOF");
			client_close(c, true);
			return;
		}
		b->bytes += (uint64_t)n;
		if (c->state == C_HEADERS) {
			char *end;

			if (buf_append(c, b->rbuf, (size_t)n, MAX_HEADER_BYTES) < 0 ||
			    buf_append(c, "", 1, MAX_HEADER_BYTES + 1) < 0) {
				note_error(b, "client %td: response headers over %d bytes", c - b->clients,
				           MAX_HEADER_BYTES);
				client_close(c, true);
				return;
			}
			c->len--; /* the NUL is for strstr only */
			end = strstr(c->buf, "\r\n\r\n");
			if (end) {
				size_t hlen = (size_t)(end + 4 - c->buf), tail_len = c->len - hlen;

				r = headers_done(b, c, hlen, (char *)b->rbuf + n - tail_len, tail_len, t);
			}
		} else {
			r = body_feed(b, c, (char *)b->rbuf, (size_t)n, t);
		}
		if (r < 0) {
			if (c->state == C_STREAMING)
				note_error(b, "client %td: bad stream (%s)", c - b->clients, strerror(-r));
			client_close(c, true);
			return;
		}
		if ((size_t)n < sizeof(b->rbuf))
			return;
	}
}

static void client_connect(struct bench *b, struct client *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->b = b;
	c->state = C_CONNECTING;
	c->sent = 0;
	c->len = 0;
	c->chunked = 0;
	c->cs = CS_SIZE;
	c->chunk_left = 0;
	c->ev_type = T_NONE;
	c->data_id = -1;
	c->got_round = -1;
	c->fd = fd;
	b->pending++;
	if (fd < 0) {
		note_error(b, "socket: %s", strerror(errno));
		c->state = C_CLOSED;
		b->pending--;
		b->connect_failures++;
		return;
	}
	if (connect(fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) < 0 && errno != EINPROGRESS) {
		note_error(b, "connect: %s", strerror(errno));
		close(fd);
		c->state = C_CLOSED;
		b->pending--;
		b->connect_failures++;
		return;
	}
	ev_io_init(&c->io, client_cb, fd, EV_WRITE);
	ev_io_start(b->loop, &c->io);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = container_of(w, struct bench, tick);

	if (b->in_round)
		sample_rss(b);
}

/* Run the loop until *counter is 0 or DEADLINE_NS passes; false on timeout. */
static bool run_until_zero(struct bench *b, const int *counter, uint64_t deadline_ns)
{
	while (*counter > 0) {
		if (now_ns() >= deadline_ns)
			return false;
		ev_run(b->loop, EVRUN_ONCE);
	}
	return true;
}

static void run_for(struct bench *b, double seconds)
{
	uint64_t until = now_ns() + (uint64_t)(seconds * 1e9);

	while (now_ns() < until)
		ev_run(b->loop, EVRUN_ONCE);
}

#define REQUEST_FMT \
	"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s%s%s\r\n"

static int build_request(struct bench *b)
{
	const char *ah = b->o.token ? "Authorization: Bearer " : "";
	const char *tok = b->o.token ? b->o.token : "";
	const char *crlf = b->o.token ? "\r\n" : "";
	int n = snprintf(NULL, 0, REQUEST_FMT, b->o.path, b->o.host, b->o.port, ah, tok, crlf);

	if (n < 0)
		return -EINVAL;
	free(b->request);
	b->request = malloc((size_t)n + 1);
	if (!b->request)
		return -ENOMEM;
	snprintf(b->request, (size_t)n + 1, REQUEST_FMT, b->o.path, b->o.host, b->o.port, ah, tok, crlf);
	b->request_len = (size_t)n;
	return 0;
}

/* Connect clients [from, to) and wait for their headers. */
static void connect_batch(struct bench *b, int from, int to)
{
	uint64_t deadline = now_ns() + (uint64_t)(b->o.connect_timeout_s * 1e9);

	for (int i = from; i < to; i++)
		client_connect(b, &b->clients[i]);
	if (!run_until_zero(b, &b->pending, deadline)) {
		note_error(b, "clients %d..%d: no response headers within %.1f s", from, to - 1,
		           b->o.connect_timeout_s);
		for (int i = from; i < to; i++)
			if (b->clients[i].state == C_CONNECTING || b->clients[i].state == C_HEADERS)
				client_close(&b->clients[i], true);
	}
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;

	return a < c ? -1 : a > c;
}

/* Nearest-rank percentile of sorted V[0..n), in ms. */
static double pct_ms(const uint32_t *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return -1;
	k = (size_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1] / 1000.0;
}

/* Copy the received latencies of round R (or all rounds, R < 0) into OUT, sorted. */
static size_t collect(const struct bench *b, int r, uint32_t *out)
{
	size_t n = 0, from = r < 0 ? 0 : (size_t)r, to = r < 0 ? (size_t)b->o.rounds : (size_t)r + 1;

	for (size_t k = from; k < to; k++)
		for (size_t i = 0; i < (size_t)b->o.clients; i++) {
			uint32_t v = b->lat_us[k * (size_t)b->o.clients + i];

			if (v != MISSED)
				out[n++] = v;
		}
	qsort(out, n, sizeof(*out), cmp_u32);
	return n;
}

static int enqueue_marker(struct bench *b, PGconn *pg, struct round_stat *rs)
{
	const char *params[2] = {b->o.kind, b->o.queue};
	uint64_t t0 = now_ns();
	PGresult *res = PQexecParams(pg, "SELECT jobwheel.enqueue($1, '{}'::jsonb, $2)", 2, NULL, params, NULL,
	                             NULL, 0);
	uint64_t t1 = now_ns();
	int r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fprintf(stderr, "sse_fanout: enqueue: %s", PQerrorMessage(pg));
		r = -EIO;
	} else {
		b->marker = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		b->t_commit_ns = t1;
		rs->job_id = b->marker;
		rs->enqueue_ms = (double)(t1 - t0) / 1e6;
	}
	PQclear(res);
	return r;
}

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

static void print_results(struct bench *b, const struct round_stat *rs, double ramp_s, double rounds_wall_s)
{
	size_t total = (size_t)b->o.rounds * (size_t)b->o.clients;
	uint32_t *v = malloc(total * sizeof(*v));
	long misses = 0, expected = 0;
	double gw_cpu = 0, cl_cpu = 0, window = 0;
	size_t n;

	if (!v) {
		fprintf(stderr, "sse_fanout: out of memory\n");
		return;
	}
	printf("round  job_id  clients  received  enqueue_ms  first_ms   p50_ms   p99_ms   max_ms\n");
	for (int r = 0; r < b->o.rounds; r++) {
		n = collect(b, r, v);
		printf("%5d %7" PRId64 " %8d %9d %11.2f %9.2f %8.2f %8.2f %8.2f\n", r + 1, rs[r].job_id,
		       rs[r].expected, rs[r].received, rs[r].enqueue_ms, rs[r].first_ms, pct_ms(v, n, 0.50),
		       pct_ms(v, n, 0.99), n ? v[n - 1] / 1000.0 : -1.0);
		misses += rs[r].expected - rs[r].received;
		expected += rs[r].expected;
		if (rs[r].gw_cpu_s >= 0)
			gw_cpu += rs[r].gw_cpu_s;
		cl_cpu += rs[r].client_cpu_s;
		window += rs[r].window_s;
	}
	n = collect(b, -1, v);
	printf("\nclients %d of %d connected (ramp-up %.2f s, %d connect failures, %d refused", b->streaming,
	       b->o.clients, ramp_s, b->connect_failures - b->bad_status, b->bad_status);
	if (b->bad_status)
		printf(", last status %d", b->last_status);
	printf(")\n");
	printf("path %s\n", b->o.path);
	printf("overall: %zu deliveries, %ld misses, %d disconnects; p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", n,
	       misses, b->disconnects, pct_ms(v, n, 0.50), pct_ms(v, n, 0.99), n ? v[n - 1] / 1000.0 : -1.0);
	if (window > 0)
		printf("CPU while delivering (commit → last client, %.3f s summed): gateway %.0f%%, this client "
		       "%.0f%% (of one core)\n",
		       window, gw_cpu / window * 100, cl_cpu / window * 100);
	if (b->o.gw_pid > 0)
		printf("gateway RSS: idle with clients %.1f MiB, peak sampled in rounds %.1f MiB, VmHWM %.1f MiB\n",
		       b->rss_idle_kib / 1024.0, b->rss_peak_kib / 1024.0, b->hwm_kib / 1024.0);
	if (b->first_error[0])
		printf("first error: %s\n", b->first_error);

	printf("{\"bench\":\"sse_fanout\",\"clients\":%d,\"requested\":%d,\"rounds\":%d,\"path\":\"%s\","
	       "\"deliveries\":%zu,\"expected\":%ld,\"misses\":%ld,\"disconnects\":%d,\"connect_failures\":%d,"
	       "\"refused\":%d,\"ramp_s\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
	       "\"rss_idle_kib\":%ld,\"rss_peak_kib\":%ld,\"rss_hwm_kib\":%ld,"
	       "\"gateway_cpu_pct\":%.1f,\"client_cpu_pct\":%.1f,\"rounds_wall_s\":%.2f,\"per_round\":[",
	       b->streaming, b->o.clients, b->o.rounds, b->o.path, n, expected, misses, b->disconnects,
	       b->connect_failures - b->bad_status, b->bad_status, ramp_s, pct_ms(v, n, 0.50), pct_ms(v, n, 0.99),
	       n ? v[n - 1] / 1000.0 : -1.0, b->rss_idle_kib, b->rss_peak_kib, b->hwm_kib,
	       window > 0 ? gw_cpu / window * 100 : -1.0, window > 0 ? cl_cpu / window * 100 : -1.0,
	       rounds_wall_s);
	for (int r = 0; r < b->o.rounds; r++) {
		size_t m = collect(b, r, v);

		printf("%s{\"job_id\":%" PRId64 ",\"expected\":%d,\"received\":%d,\"first_ms\":%.3f,"
		       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
		       r ? "," : "", rs[r].job_id, rs[r].expected, rs[r].received, rs[r].first_ms,
		       pct_ms(v, m, 0.50), pct_ms(v, m, 0.99), m ? v[m - 1] / 1000.0 : -1.0);
	}
	printf("]}\n");
	free(v);
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct round_stat *rs = NULL;
	PGconn *pg = NULL;
	uint64_t t_ramp, t_rounds;
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
	if (!b->loop || build_request(b) < 0) {
		fprintf(stderr, "sse_fanout: cannot set up the event loop\n");
		goto cleanup;
	}
	ev_timer_init(&b->tick, tick_cb, TICK_S, TICK_S);
	ev_timer_start(b->loop, &b->tick);

	/* probe with one client: fall back to plain /api/events if the filters are refused */
	t_ramp = now_ns();
	connect_batch(b, 0, 1);
	if (b->streaming == 0 && b->o.default_path && b->last_status == 400) {
		fprintf(stderr, "sse_fanout: %s refused (%s); falling back to /api/events\n", b->o.path,
		        b->first_error);
		b->o.path = "/api/events";
		b->first_error[0] = '\0';
		b->bad_status = b->connect_failures = 0;
		if (build_request(b) < 0)
			goto cleanup;
		connect_batch(b, 0, 1);
	}
	if (b->streaming == 0) {
		fprintf(stderr, "sse_fanout: the first client could not subscribe: %s\n", b->first_error);
		goto cleanup;
	}
	for (int i = 1; i < b->o.clients; i += b->o.batch) {
		int to = i + b->o.batch < b->o.clients ? i + b->o.batch : b->o.clients;

		connect_batch(b, i, to);
		if (to / 1000 != i / 1000)
			fprintf(stderr, "sse_fanout: %d clients connected, %d failed\n", b->streaming,
			        b->connect_failures);
	}
	ramp_s = (double)(now_ns() - t_ramp) / 1e9;
	fprintf(stderr, "sse_fanout: %d of %d clients connected in %.2f s\n", b->streaming, b->o.clients, ramp_s);

	/* let the gateway settle (stream preambles, replays) before measuring idle memory */
	run_for(b, 1.0);
	if (b->o.gw_pid > 0 && rss_pid_kib(b->o.gw_pid, &b->rss_idle_kib, &b->hwm_kib) < 0)
		fprintf(stderr, "sse_fanout: cannot read /proc/%d/status\n", (int)b->o.gw_pid);
	b->rss_peak_kib = b->rss_idle_kib;

	t_rounds = now_ns();
	for (int r = 0; r < b->o.rounds; r++) {
		double gw0, cl0;
		uint64_t deadline;

		run_for(b, b->o.gap_s);
		b->round = r;
		b->t_first_ns = b->t_last_ns = 0;
		gw0 = cpu_pid_s(b->o.gw_pid);
		cl0 = cpu_self_s();
		if (enqueue_marker(b, pg, &rs[r]) < 0)
			goto cleanup;
		b->in_round = true;
		b->remaining = b->streaming;
		rs[r].expected = b->streaming;
		deadline = b->t_commit_ns + (uint64_t)(b->o.round_timeout_s * 1e9);
		run_until_zero(b, &b->remaining, deadline);
		b->in_round = false;
		rs[r].received = 0;
		for (int i = 0; i < b->o.clients; i++)
			rs[r].received += b->clients[i].got_round == r;
		rs[r].first_ms = b->t_first_ns ? (double)(b->t_first_ns - b->t_commit_ns) / 1e6 : -1;
		rs[r].last_ms = b->t_last_ns ? (double)(b->t_last_ns - b->t_commit_ns) / 1e6 : -1;
		rs[r].window_s = (double)(now_ns() - b->t_commit_ns) / 1e9;
		rs[r].gw_cpu_s = gw0 >= 0 ? cpu_pid_s(b->o.gw_pid) - gw0 : -1;
		rs[r].client_cpu_s = cpu_self_s() - cl0;
		sample_rss(b);
		fprintf(stderr, "sse_fanout: round %d: job %" PRId64 ", %d/%d clients, last after %.1f ms\n", r + 1,
		        rs[r].job_id, rs[r].received, rs[r].expected, rs[r].last_ms);
	}
	print_results(b, rs, ramp_s, (double)(now_ns() - t_rounds) / 1e9);
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
