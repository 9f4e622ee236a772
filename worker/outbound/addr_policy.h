/* SPDX-License-Identifier: MIT */
/* Which addresses outbound calls may reach: public ones, plus the hosts and
 * networks of http.allow. Private, loopback, link-local (169.254.169.254,
 * the cloud metadata service) and other special ranges are refused unless
 * listed. Checked on the resolved address of every connection. */
#ifndef JW_ADDR_POLICY_H
#define JW_ADDR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct addr_policy;

/* Parses http.allow: comma-separated host names, IP addresses and CIDRs
 * ("127.0.0.1,10.0.0.0/8,::1,hooks.internal"). Returns 0 and a policy
 * (free with addr_policy_free), or -EINVAL with a message naming the bad
 * entry in err. An empty string allows no special address. */
int addr_policy_parse(const char *allow, struct addr_policy **ret, char *err, size_t errlen);
void addr_policy_free(struct addr_policy *p);

/* Whether a connection to sa may be opened, for a URL whose host is host
 * (as written in the URL, for name entries; may be NULL). */
bool addr_policy_allows(const struct addr_policy *p, const char *host, const struct sockaddr *sa);

/* Whether sa is in a special range (private, loopback, link-local, ...). */
bool addr_is_special(const struct sockaddr *sa);

#endif
