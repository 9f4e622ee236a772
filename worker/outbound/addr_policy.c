/* SPDX-License-Identifier: MIT */
/* The outbound address policy: special ranges refused, http.allow excepted. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr_policy.h"

struct net {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order */
	int bits;
};

struct addr_policy {
	struct net *nets;
	int nnets;
	char **hosts;
	int nhosts;
};

/* Ranges no job may reach unless allowed (RFC 6890 special-purpose). */
static const struct {
	int family;
	const char *addr;
	int bits;
} special[] = {
	{ AF_INET, "0.0.0.0", 8 },       { AF_INET, "10.0.0.0", 8 },      { AF_INET, "100.64.0.0", 10 },
	{ AF_INET, "127.0.0.0", 8 },     { AF_INET, "169.254.0.0", 16 },  { AF_INET, "172.16.0.0", 12 },
	{ AF_INET, "192.0.0.0", 24 },    { AF_INET, "192.168.0.0", 16 },  { AF_INET, "198.18.0.0", 15 },
	{ AF_INET, "224.0.0.0", 3 },     { AF_INET6, "::", 128 },         { AF_INET6, "::1", 128 },
	{ AF_INET6, "fc00::", 7 },       { AF_INET6, "fe80::", 10 },      { AF_INET6, "ff00::", 8 },
	{ AF_INET6, "64:ff9b::", 96 },   { AF_INET6, "2001:db8::", 32 },
};

static bool prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, net, (size_t)full))
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net[full]) & (0xff << (8 - rest))) == 0;
}

/* The address of sa as (family, bytes); IPv4-mapped IPv6 counts as IPv4. */
static int addr_bytes(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(out, a6->s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, a6->s6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

bool addr_is_special(const struct sockaddr *sa)
{
	unsigned char a[16], net[16];
	int family = addr_bytes(sa, a);

	if (family < 0)
		return true;
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		if (special[i].family != family)
			continue;
		inet_pton(family, special[i].addr, net);
		if (prefix_match(a, net, special[i].bits))
			return true;
	}
	return false;
}

static int parse_net(const char *s, struct net *ret)
{
	char buf[64], *slash;
	long bits;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, ret->addr) == 1)
		ret->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, ret->addr) == 1)
		ret->family = AF_INET6;
	else
		return -ENOENT; /* not an address: a host name */
	ret->bits = ret->family == AF_INET ? 32 : 128;
	if (slash) {
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || bits < 0 || bits > ret->bits)
			return -EINVAL;
		ret->bits = (int)bits;
	}
	return 0;
}

static bool host_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '.'))
			return false;
	return true;
}

int addr_policy_parse(const char *allow, struct addr_policy **ret, char *err, size_t errlen)
{
	struct addr_policy *p = calloc(1, sizeof(*p));
	char *copy = strdup(allow ? allow : ""), *save = NULL;

	if (!p || !copy) {
		free(p);
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct net n;
		int rc;
		while (*t == ' ')
			t++;
		for (char *e = t + strlen(t); e > t && e[-1] == ' ';)
			*--e = '\0';
		if (!*t)
			continue;
		rc = parse_net(t, &n);
		if (rc == 0) {
			struct net *nets = realloc(p->nets, (size_t)(p->nnets + 1) * sizeof(*nets));
			if (!nets)
				goto oom;
			p->nets = nets;
			p->nets[p->nnets++] = n;
		} else if (rc == -ENOENT && host_name_valid(t)) {
			char **hosts = realloc(p->hosts, (size_t)(p->nhosts + 1) * sizeof(*hosts));
			if (!hosts)
				goto oom;
			p->hosts = hosts;
			if (!(p->hosts[p->nhosts] = strdup(t)))
				goto oom;
			p->nhosts++;
		} else {
			snprintf(err, errlen, "http.allow: \"%s\" is not a host name, an IP address or a CIDR", t);
			free(copy);
			addr_policy_free(p);
			return -EINVAL;
		}
	}
	free(copy);
	*ret = p;
	return 0;
oom:
	free(copy);
	addr_policy_free(p);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

bool addr_policy_allows(const struct addr_policy *p, const char *host, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;

	if (!addr_is_special(sa))
		return true;
	for (int i = 0; host && i < p->nhosts; i++)
		if (!strcasecmp(p->hosts[i], host))
			return true;
	family = addr_bytes(sa, a);
	for (int i = 0; i < p->nnets; i++)
		if (p->nets[i].family == family && prefix_match(a, p->nets[i].addr, p->nets[i].bits))
			return true;
	return false;
}

void addr_policy_free(struct addr_policy *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nhosts; i++)
		free(p->hosts[i]);
	free(p->hosts);
	free(p->nets);
	free(p);
}
