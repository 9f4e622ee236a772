/* SPDX-License-Identifier: MIT */
/* Outcome classification and Retry-After parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

bool classify_status_retryable(long status)
{
	return status == 408 || status == 425 || status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

enum outcome_class classify_transfer(CURLcode code, long status)
{
	switch (code) {
	case CURLE_OK:
		if (status >= 200 && status < 300)
			return OUTCOME_OK;
		return classify_status_retryable(status) ? OUTCOME_RETRYABLE : OUTCOME_PERMANENT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR: /* the TLS handshake failed: often transient */
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return OUTCOME_RETRYABLE;
	default:
		/* Malformed URL, unsupported protocol, bad certificate
		 * (CURLE_PEER_FAILED_VERIFICATION), ... (An address the policy
		 * refuses surfaces as CURLE_COULDNT_CONNECT; http_client.c flags
		 * it and the result says so before anyone classifies it.) */
		return OUTCOME_PERMANENT;
	}
}

/* Longest delay honoured, in either form: beyond it the value is refused. */
#define RETRY_AFTER_MAX_S (365LL * 24 * 3600)

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int month_of(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (!strncmp(s, months[i], 3))
			return i;
	return -1;
}

/* HTTP-date in its three forms (RFC 9110 §5.6.7), always GMT. */
static int parse_http_date(const char *s, time_t *ret)
{
	struct tm tm = { 0 };
	char mon[4] = "", wday[16] = "", tz[4] = "";
	int day, year, h, m, sec, n = 0;

	if (sscanf(s, "%15[A-Za-z], %d %3s %d %d:%d:%d %3s%n", wday, &day, mon, &year, &h, &m, &sec, tz, &n) == 8 &&
	    !s[n] && !strcmp(tz, "GMT")) {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	} else if (sscanf(s, "%15[A-Za-z], %d-%3s-%d %d:%d:%d %3s%n", wday, &day, mon, &year, &h, &m, &sec, tz, &n) ==
			   8 &&
		   !s[n] && !strcmp(tz, "GMT")) {
		year += year < 70 ? 2000 : year < 100 ? 1900 : 0; /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
	} else if (sscanf(s, "%3s %3s %d %d:%d:%d %d%n", wday, mon, &day, &h, &m, &sec, &year, &n) == 7 && !s[n]) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
	} else {
		return -EINVAL;
	}
	tm.tm_mon = month_of(mon);
	if (tm.tm_mon < 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1970 || year > 9999)
		return -EINVAL;
	tm.tm_mday = day;
	tm.tm_year = year - 1900;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*ret = timegm(&tm);
	return 0;
}

int retry_after_parse(const char *value, time_t now, int64_t *ret_ms)
{
	const char *s = value;
	time_t when;

	while (*s == ' ' || *s == '\t')
		s++;
	if (isdigit((unsigned char)*s)) {
		char *end;
		long long secs;
		errno = 0;
		secs = strtoll(s, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno || *end || secs < 0 || secs > RETRY_AFTER_MAX_S)
			return -EINVAL;
		*ret_ms = secs * 1000;
		return 0;
	}
	{
		char buf[64];
		size_t n = strcspn(s, "\r\n");
		if (n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, n);
		while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
			n--;
		buf[n] = '\0';
		if (parse_http_date(buf, &when) < 0 || (when > now && when - now > RETRY_AFTER_MAX_S))
			return -EINVAL;
	}
	*ret_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
	return 0;
}
