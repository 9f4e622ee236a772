/* SPDX-License-Identifier: MIT */
/* Webhook signatures: HMAC-SHA256 of "TIMESTAMP.BODY", as Stripe does, so a
 * receiver can check both the sender and the freshness of a delivery. */
#ifndef JW_SIGNING_H
#define JW_SIGNING_H

#include <stddef.h>
#include <stdint.h>

/* Writes "t=UNIX,v1=HEX" for body at time t into out (at least 96 bytes).
 * Returns 0, or -EINVAL when out is too small or HMAC fails. */
int signing_header_value(const char *secret, size_t secret_len, int64_t t, const char *body, size_t body_len,
			 char *out, size_t outlen);

#endif
