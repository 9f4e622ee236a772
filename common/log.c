/* SPDX-License-Identifier: MIT */
/* Logging: one line per event on stderr, text or JSON, with file:line. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_progname = "jobwheel";
static enum log_level log_min = LOG_INFO;
static bool log_json;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_setup(const char *progname, const char *level, const char *format)
{
	int lvl = -1;

	for (int i = 0; i < 4; i++)
		if (strcmp(level, level_names[i]) == 0)
			lvl = i;
	if (lvl < 0 || (strcmp(format, "text") != 0 && strcmp(format, "json") != 0))
		return -EINVAL;
	log_progname = progname;
	log_min = (enum log_level)lvl;
	log_json = strcmp(format, "json") == 0;
	return 0;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t size, size_t len, const char *s)
{
	for (; *s && len + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, size - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	buf[len] = '\0';
	return len;
}

void log_emit(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	char msg[2048], out[4608], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int saved = errno;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

	if (log_json) {
		size_t len = (size_t)snprintf(out, sizeof(out),
					      "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"pid\":%d,"
					      "\"src\":\"%s:%d\",\"msg\":\"",
					      ts, level_names[level], log_progname, (int)getpid(), base, line);
		len = json_escape(out, sizeof(out) - 3, len, msg);
		snprintf(out + len, sizeof(out) - len, "\"}\n");
	} else {
		snprintf(out, sizeof(out), "%s %s[%d] %-5s %s (%s:%d)\n", ts, log_progname, (int)getpid(),
			 level_names[level], msg, base, line);
	}
	fputs(out, stderr);
	errno = saved;
}
