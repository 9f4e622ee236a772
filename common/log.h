/* SPDX-License-Identifier: MIT */
/* Logging: one line per event on stderr, text or JSON, with file:line. */
#ifndef JW_LOG_H
#define JW_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the program name, least severe level logged and format ("text" or
 * "json"). Returns -EINVAL for an unknown level or format. */
int log_setup(const char *progname, const char *level, const char *format);

bool log_enabled(enum log_level level);

void log_emit(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_debug(...) log_emit(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_emit(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_emit(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
