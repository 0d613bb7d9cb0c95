/*
 * base/cidr.c - address prefixes: parsing "192.0.2.0/24" / "2001:db8::/32" (the config's
 * access control and profile clients, STIX indicators) and matching a client's address
 * against one, which runs on every query (access control, CLIENT-IP rules, profiles).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/base.h"

/* "10.0.0.0/8", "fc00::/7" or a bare address (a host route). Host bits are cleared. */
int bw_cidr_parse(const char *s, size_t len, struct bw_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned long plen = 0;

	if (alen == 0 || alen >= sizeof(buf) || memchr(s, '\0', alen))
		return BW_EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return BW_EINVAL;

	unsigned long max = out->family == AF_INET ? 32 : 128;
	if (slash) {
		size_t n = len - alen - 1;
		if (n == 0 || n > 10)
			return BW_EINVAL;
		for (size_t i = 0; i < n; i++) {
			char c = slash[1 + i];
			if (c < '0' || c > '9')
				return BW_EINVAL;
			plen = plen * 10 + (unsigned long)(c - '0');
		}
		if (plen > max)
			return BW_ERANGE;
	} else {
		plen = max;
	}
	out->prefix = (uint8_t)plen;
	for (unsigned bit = (unsigned)plen; bit < max; bit++)
		out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, b, bytes))
		return false;
	if (!bits)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - bits));
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

bool bw_cidr_match(const struct bw_cidr *net, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (!net || !sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		uint8_t a[4];
		if (net->family != AF_INET)
			return false;
		memcpy(a, &sin->sin_addr, 4);
		return prefix_equal(a, net->addr, BW_MIN(net->prefix, 32u));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		uint8_t a[16];
		memcpy(a, &sin6->sin6_addr, 16);
		if (net->family == AF_INET6)
			return prefix_equal(a, net->addr, BW_MIN(net->prefix, 128u));
		/* ::ffff:a.b.c.d from a dual-stack socket matches IPv4 rules. */
		if (net->family == AF_INET && !memcmp(a, v4mapped, sizeof(v4mapped)))
			return prefix_equal(a + 12, net->addr, BW_MIN(net->prefix, 32u));
	}
	return false;
}

size_t bw_prefix_key(int family, const uint8_t *addr, unsigned prefix, uint8_t key[17])
{
	size_t n = family == AF_INET ? 4 : 16;
	prefix = BW_MIN(prefix, (unsigned)n * 8);
	key[0] = (uint8_t)n;
	memset(key + 1, 0, n);
	memcpy(key + 1, addr, prefix / 8);
	if (prefix % 8)
		key[1 + prefix / 8] = (uint8_t)(addr[prefix / 8] & (0xff00u >> (prefix % 8)));
	return n + 1;
}

size_t bw_sockaddr_prefix(const struct sockaddr *sa, unsigned v4, unsigned v6, uint8_t key[17])
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa && sa->sa_family == AF_INET)
		return bw_prefix_key(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
				     v4, key);
	if (!sa || sa->sa_family != AF_INET6)
		return 0;
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (!memcmp(a, v4mapped, sizeof(v4mapped))) /* ::ffff:a.b.c.d is a.b.c.d */
		return bw_prefix_key(AF_INET, a + 12, v4, key);
	return bw_prefix_key(AF_INET6, a, v6, key);
}
