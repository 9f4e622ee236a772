/* SPDX-License-Identifier: MIT */
/* One classification of outbound outcomes for every kind: retryable or not,
 * and when to try again (Retry-After). */
#ifndef JW_CLASSIFY_H
#define JW_CLASSIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

enum outcome_class {
	OUTCOME_OK,            /* a 2xx (or the kind's expected status) */
	OUTCOME_RETRYABLE,     /* transport errors, 408, 425, 429, 500, 502, 503, 504 */
	OUTCOME_PERMANENT,     /* other 4xx/5xx, malformed URL, bad certificate, refused address */
};

/* Classifies a finished transfer: code is libcurl's result, status the HTTP
 * status (0 when none). */
enum outcome_class classify_transfer(CURLcode code, long status);

/* Whether an HTTP status alone is worth retrying (408, 425, 429, 500, 502-504). */
bool classify_status_retryable(long status);

/* Parses a Retry-After value, delay-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime), relative to now. Returns 0 and the delay in ms
 * (0 for a date in the past), or -EINVAL (also for a delay of over a year,
 * in either form). */
int retry_after_parse(const char *value, time_t now, int64_t *ret_ms);

#endif
