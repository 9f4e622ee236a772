/* SPDX-License-Identifier: MIT */
/* exec: {"command": name, "args"?: [strings], "stdin"?: string} runs an
 * allow-listed program (exec.allow = name=/abs/path,...; exact name match).
 *
 * No shell: fork + execve(path, [name, args...]). The child gets its own
 * process group, default signal dispositions and an empty signal mask, the
 * stdin string on a pipe (then EOF), stdout and stderr on pipes, no other file
 * descriptors, and a scrubbed environment of exactly PATH=/usr/bin:/bin and
 * LANG=C.UTF-8 (nothing of the worker's environment, not even HOME). If execve
 * fails the child writes a line on stderr and ends in _exit(127).
 *
 * All I/O is non-blocking on ev_io watchers and the exit status comes from an
 * ev_child (the worker runs on EV_DEFAULT, which reaps children). Each of
 * stdout and stderr keeps its first 64 KiB; the rest is read and dropped
 * ("stdout_truncated"/"stderr_truncated": true). Invalid UTF-8 and NUL bytes
 * become U+FFFD so the result is valid JSON and valid jsonb.
 *
 * Result: {"exit_code", "stdout", "stderr", "stdout_truncated",
 * "stderr_truncated"}. Exit code != 0 fails the attempt (retryable) with
 * "exit N: <first line of stderr>"; death by a signal with "killed by signal
 * N". When the program exits, whatever it left running in its process group
 * is killed (SIGKILL).
 *
 * abort (timeout, cancel, shutdown) returns at once: the job lets go of the
 * run, which sends SIGTERM to the process group, SIGKILL 2 s later, and frees
 * itself once the child is reaped (no zombie, no blocking). Such aborted runs
 * sit on a static list (nothing else can reach them once the job is gone), so
 * that an exit of the worker before their SIGKILL sends it then (atexit). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"
#include "json.h"
#include "util.h"

#define EXEC_OUTPUT_MAX (64 * 1024) /* bytes kept of stdout and of stderr */
#define EXEC_MAX_ARGS 1024
#define EXEC_KILL_GRACE 2.0         /* seconds between SIGTERM and SIGKILL */
#define EXEC_FIRST_LINE_MAX 400     /* bytes of stderr quoted in the error */

static char *const exec_envp[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };

/* stdout or stderr of the child. */
struct exec_stream {
	ev_io io;
	int fd; /* -1 once at EOF or closed */
	char *buf;
	size_t len, cap;
	bool truncated;
};

struct exec_run {
	struct job *job; /* NULL once aborted: the run only reaps and kills */
	struct exec_run *prev, *next; /* on the aborted list */
	struct ev_loop *loop;
	pid_t pid;       /* also the process group id */
	ev_child child;
	ev_timer kill_timer;
	ev_io in;
	int in_fd;       /* -1 once stdin is written or given up */
	const char *in_data; /* the payload's stdin, owned by the job */
	size_t in_len, in_off;
	struct exec_stream out, err;
};

/* Aborted runs whose child is not reaped yet. */
static struct exec_run *aborted;

/* ------------------------------------------------------------ the child */

/* Only async-signal-safe calls from here to execve. */
static void write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));
	(void)n;
}

static void close_from(int lowfd, int maxfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	for (int fd = lowfd; fd < maxfd; fd++)
		close(fd);
}

static _Noreturn void child_run(const char *path, char *const argv[], int in_fd, int out_fd, int err_fd,
				int maxfd)
{
	struct sigaction dfl;
	sigset_t none;
	char num[16];
	int e, i = sizeof(num) - 1;

	setpgid(0, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and reserved ones */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* the pipe ends are >= 3 (make_pipe), so these never overwrite each other */
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	close_from(3, maxfd);
	execve(path, argv, exec_envp);
	e = errno;
	num[i] = '\0';
	do {
		num[--i] = (char)('0' + e % 10);
		e /= 10;
	} while (e > 0 && i > 0);
	write_str(2, "jobwheel exec: execve ");
	write_str(2, path);
	write_str(2, " failed: errno ");
	write_str(2, num + i);
	write_str(2, "\n");
	_exit(127);
}

/* ------------------------------------------------------------ helpers */

/* A close-on-exec pipe whose ends are both >= 3. */
static int make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	for (int k = 0; k < 2; k++) {
		if (fds[k] < 3) {
			int fd = fcntl(fds[k], F_DUPFD_CLOEXEC, 3);
			if (fd < 0) {
				int e = errno;
				close(fds[0]);
				close(fds[1]);
				return -e;
			}
			close(fds[k]);
			fds[k] = fd;
		}
	}
	return 0;
}

static void close_pipe(int fds[2])
{
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0)
			close(fds[k]);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The path of name in exec.allow ("name=/abs/path,..."), copied into
 * ret_path. Returns 0, -ENOENT when name is not listed, -EINVAL when its path
 * is not absolute or too long. */
static int allow_lookup(const char *allow, const char *name, char *ret_path, size_t pathlen)
{
	size_t nlen = strlen(name);
	const char *p = allow ? allow : "";

	while (*p) {
		const char *end = strchr(p, ','), *eq;
		size_t elen, plen;

		if (!end)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		elen = (size_t)(end - p);
		while (elen > 0 && (p[elen - 1] == ' ' || p[elen - 1] == '\t'))
			elen--;
		eq = memchr(p, '=', elen);
		if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			plen = elen - nlen - 1;
			if (plen == 0 || eq[1] != '/' || plen >= pathlen)
				return -EINVAL;
			memcpy(ret_path, eq + 1, plen);
			ret_path[plen] = '\0';
			return 0;
		}
		p = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp, min;

	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0; /* NUL, continuation byte, 0xc0/0xc1, 0xf5.. */
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A NUL-terminated copy of s[0..n) that is valid UTF-8 without NUL bytes:
 * each invalid byte becomes U+FFFD. NULL when out of memory. */
static char *utf8_sanitize(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(n * 3 + 1), *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	while (i < n) {
		size_t len = utf8_seq(u + i, n - i);
		if (len) {
			memcpy(o, u + i, len);
			o += len;
			i += len;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

/* The first line of sanitized text s, cut at a character boundary to at most
 * EXEC_FIRST_LINE_MAX bytes, into buf (>= EXEC_FIRST_LINE_MAX + 1 bytes). */
static void first_line(const char *s, char *buf)
{
	size_t n = strcspn(s, "\n");

	if (n > EXEC_FIRST_LINE_MAX) {
		n = EXEC_FIRST_LINE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	while (n > 0 && s[n - 1] == '\r')
		n--;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* ------------------------------------------------------------ the run */

static void stream_close(struct exec_run *r, struct exec_stream *s)
{
	if (s->fd < 0)
		return;
	ev_io_stop(r->loop, &s->io);
	close(s->fd);
	s->fd = -1;
}

static void stdin_close(struct exec_run *r)
{
	if (r->in_fd < 0)
		return;
	ev_io_stop(r->loop, &r->in);
	close(r->in_fd);
	r->in_fd = -1;
}

static void run_free(struct exec_run *r)
{
	if (!r->job) { /* off the aborted list */
		if (r->prev)
			r->prev->next = r->next;
		else if (aborted == r)
			aborted = r->next;
		if (r->next)
			r->next->prev = r->prev;
	}
	ev_timer_stop(r->loop, &r->kill_timer);
	ev_child_stop(r->loop, &r->child);
	stdin_close(r);
	stream_close(r, &r->out);
	stream_close(r, &r->err);
	free(r->out.buf);
	free(r->err.buf);
	free(r);
}

/* Where the next read goes: the kept buffer, grown as needed, or NULL when
 * the bytes are to be dropped (over EXEC_OUTPUT_MAX, or out of memory). */
static char *stream_room(struct exec_stream *s, size_t *ret_room)
{
	if (s->len >= EXEC_OUTPUT_MAX)
		return NULL;
	if (s->len == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		char *nb;

		if (cap > EXEC_OUTPUT_MAX)
			cap = EXEC_OUTPUT_MAX;
		nb = realloc(s->buf, cap);
		if (!nb)
			return NULL;
		s->buf = nb;
		s->cap = cap;
	}
	*ret_room = s->cap - s->len;
	return s->buf + s->len;
}

/* Reads what is available; keeps up to EXEC_OUTPUT_MAX bytes. Closes the
 * stream at EOF or on an error. */
static void stream_read(struct exec_run *r, struct exec_stream *s)
{
	char drop[4096];

	for (int rounds = 0; s->fd >= 0 && rounds < 256; rounds++) {
		size_t room = sizeof(drop);
		char *dst = stream_room(s, &room);
		ssize_t n = read(s->fd, dst ? dst : drop, dst ? room : sizeof(drop));

		if (n > 0) {
			if (dst)
				s->len += (size_t)n;
			else
				s->truncated = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		stream_close(r, s); /* EOF or error */
	}
}

static void on_out(struct ev_loop *loop, ev_io *w, int revents)
{
	struct exec_stream *s = container_of(w, struct exec_stream, io);
	struct exec_run *r = container_of(s, struct exec_run, out);

	stream_read(r, s);
}

static void on_err(struct ev_loop *loop, ev_io *w, int revents)
{
	struct exec_stream *s = container_of(w, struct exec_stream, io);
	struct exec_run *r = container_of(s, struct exec_run, err);

	stream_read(r, s);
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
	struct exec_run *r = container_of(w, struct exec_run, in);

	while (r->in_off < r->in_len) {
		ssize_t n = write(r->in_fd, r->in_data + r->in_off, r->in_len - r->in_off);
		if (n > 0) {
			r->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* EPIPE: the program does not read its stdin */
	}
	stdin_close(r);
}

static void on_kill_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct exec_run *r = container_of(t, struct exec_run, kill_timer);

	kill(-r->pid, SIGKILL); /* freed when the child is reaped */
}

static void add_output(cJSON *result, const char *key, const char *flag, const struct exec_stream *s,
		       char **ret_text)
{
	char *text = utf8_sanitize(s->buf ? s->buf : "", s->len);

	cJSON_AddStringToObject(result, key, text ? text : "");
	cJSON_AddBoolToObject(result, flag, s->truncated);
	*ret_text = text;
}

static void on_child(struct ev_loop *loop, ev_child *c, int revents)
{
	struct exec_run *r = container_of(c, struct exec_run, child);
	struct job *job = r->job;
	int status = c->rstatus;
	char *out_text = NULL, *err_text = NULL, line[EXEC_FIRST_LINE_MAX + 1];
	cJSON *result;

	ev_child_stop(loop, c);
	kill(-r->pid, SIGKILL); /* what the program left running in its group */
	if (!job) { /* aborted earlier */
		run_free(r);
		return;
	}
	job->state = NULL;
	stdin_close(r);
	stream_read(r, &r->out); /* what the program wrote before it exited */
	stream_read(r, &r->err);
	result = cJSON_CreateObject();
	if (!result) {
		run_free(r);
		job_fail(job, "out of memory", true, 0);
		return;
	}
	cJSON_AddNumberToObject(result, "exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	add_output(result, "stdout", "stdout_truncated", &r->out, &out_text);
	add_output(result, "stderr", "stderr_truncated", &r->err, &err_text);
	run_free(r);
	first_line(err_text ? err_text : "", line);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		job_succeed(job, result);
		result = NULL;
	} else if (WIFEXITED(status)) {
		job_failf(job, true, "exit %d%s%s", WEXITSTATUS(status), line[0] ? ": " : "", line);
	} else {
		job_failf(job, true, "killed by signal %d%s%s", WIFSIGNALED(status) ? WTERMSIG(status) : 0,
			  line[0] ? ": " : "", line);
	}
	cJSON_Delete(result);
	free(out_text);
	free(err_text);
}

/* ------------------------------------------------------------ the handler */

static void exec_start(struct job *job)
{
	struct ev_loop *loop = job->env->loop;
	const char *command = NULL, *in_data = NULL;
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(job->payload, "args"), *a;
	char err[256], path[4096];
	char **argv = NULL;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int nargs = 0, rc, maxfd;
	struct exec_run *r = NULL;
	pid_t pid;

	if (json_get_string(job->payload, "command", true, &command, err, sizeof(err)) < 0 ||
	    json_get_string(job->payload, "stdin", false, &in_data, err, sizeof(err)) < 0) {
		job_failf(job, false, "payload: %s", err);
		return;
	}
	if (args && !cJSON_IsNull(args)) {
		if (!cJSON_IsArray(args)) {
			job_fail(job, "payload: args must be an array of strings", false, 0);
			return;
		}
		cJSON_ArrayForEach(a, args) {
			if (!cJSON_IsString(a)) {
				job_fail(job, "payload: args must be an array of strings", false, 0);
				return;
			}
			nargs++;
		}
		if (nargs > EXEC_MAX_ARGS) {
			job_failf(job, false, "payload: more than %d args", EXEC_MAX_ARGS);
			return;
		}
	}
	if (strlen(command) == 0 || strlen(command) > 255) {
		job_fail(job, "payload: command must be 1 to 255 bytes", false, 0);
		return;
	}
	rc = allow_lookup(job->env->cfg->exec_allow, command, path, sizeof(path));
	if (rc == -ENOENT) {
		job_failf(job, false, "command \"%s\" is not in exec.allow", command);
		return;
	}
	if (rc < 0) {
		job_failf(job, false, "exec.allow: the path of \"%s\" must be absolute (and under %zu bytes)", command,
			  sizeof(path));
		return;
	}
	if (!ev_is_default_loop(loop)) { /* ev_child works on the default loop only */
		job_fail(job, "exec needs the default event loop", false, 0);
		return;
	}
	argv = calloc((size_t)nargs + 2, sizeof(*argv));
	r = calloc(1, sizeof(*r));
	if (!argv || !r) {
		job_fail(job, "out of memory", true, 0);
		goto cleanup;
	}
	argv[0] = (char *)command;
	nargs = 1;
	if (args)
		cJSON_ArrayForEach(a, args)
			argv[nargs++] = a->valuestring;
	if ((rc = make_pipe(in)) < 0 || (rc = make_pipe(out)) < 0 || (rc = make_pipe(errp)) < 0 ||
	    (rc = set_nonblock(in[1])) < 0 || (rc = set_nonblock(out[0])) < 0 ||
	    (rc = set_nonblock(errp[0])) < 0) {
		job_failf(job, true, "exec: pipe: %s", strerror(-rc));
		goto cleanup;
	}
	maxfd = (int)sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	pid = fork();
	if (pid < 0) {
		job_failf(job, true, "exec: fork: %s", strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		child_run(path, argv, in[0], out[1], errp[1], maxfd);
	setpgid(pid, pid); /* also here, so that kill(-pid) works before the child runs */
	close(in[0]);
	close(out[1]);
	close(errp[1]);

	r->job = job;
	r->loop = loop;
	r->pid = pid;
	r->in_fd = in[1];
	r->in_data = in_data;
	r->in_len = in_data ? strlen(in_data) : 0;
	r->out.fd = out[0];
	r->err.fd = errp[0];
	ev_child_init(&r->child, on_child, pid, 0);
	ev_child_start(loop, &r->child);
	ev_timer_init(&r->kill_timer, on_kill_timer, EXEC_KILL_GRACE, 0);
	ev_io_init(&r->in, on_stdin, r->in_fd, EV_WRITE);
	ev_io_init(&r->out.io, on_out, r->out.fd, EV_READ);
	ev_io_init(&r->err.io, on_err, r->err.fd, EV_READ);
	ev_io_start(loop, &r->out.io);
	ev_io_start(loop, &r->err.io);
	if (r->in_len > 0)
		ev_io_start(loop, &r->in);
	else
		stdin_close(r);
	job->state = r;
	free(argv);
	return;

cleanup:
	close_pipe(in);
	close_pipe(out);
	close_pipe(errp);
	free(argv);
	free(r);
}

/* The worker exits: the aborted programs do not outlive it. */
static void kill_aborted(void)
{
	for (struct exec_run *r = aborted; r; r = r->next)
		kill(-r->pid, SIGKILL);
}

static void exec_abort(struct job *job)
{
	static bool atexit_done;

	struct exec_run *r = job->state;

	if (!r)
		return;
	job->state = NULL;
	r->job = NULL;
	stdin_close(r);
	stream_close(r, &r->out);
	stream_close(r, &r->err);
	kill(-r->pid, SIGTERM);
	ev_timer_start(r->loop, &r->kill_timer);
	r->next = aborted;
	if (aborted)
		aborted->prev = r;
	aborted = r;
	if (!atexit_done)
		atexit_done = atexit(kill_aborted) == 0;
}

const struct handler handler_exec = { .kind = "exec", .start = exec_start, .abort = exec_abort };
