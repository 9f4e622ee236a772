/* SPDX-License-Identifier: MIT */
/* HMAC-SHA256 webhook signatures on OpenSSL's libcrypto. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "signing.h"

int signing_header_value(const char *secret, size_t secret_len, int64_t t, const char *body, size_t body_len,
			 char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char prefix[32];
	int plen = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", t);
	unsigned char *msg = malloc((size_t)plen + body_len);
	int n;

	if (!msg)
		return -ENOMEM;
	memcpy(msg, prefix, (size_t)plen);
	memcpy(msg + plen, body, body_len);
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg, (size_t)plen + body_len, mac, &maclen)) {
		free(msg);
		return -EINVAL;
	}
	free(msg);
	n = snprintf(out, outlen, "t=%" PRId64 ",v1=", t);
	if (n < 0 || (size_t)n + maclen * 2 + 1 > outlen)
		return -EINVAL;
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(out + n + i * 2, 3, "%02x", mac[i]);
	return 0;
}
