/*
 * core/ddr.c - Discovery of Designated Resolvers (RFC 9462): the answer to
 * `_dns.resolver.arpa` SVCB, one record per encrypted listener that names its
 * certificate's name (server.listen[].tls-name): ALPN, port, address hint and, for DoH,
 * the URI template path (RFC 9461).
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/internal.h"

/* _dns.resolver.arpa. in wire form */
static const uint8_t ddr_name[] = "\x04_dns\x08resolver\x04" "arpa";
#define DDR_TTL 300

bool bw_ddr_is_query(const struct bw_query *q)
{
	return q->qname_len == sizeof(ddr_name) && !memcmp(q->qname_lc, ddr_name, sizeof(ddr_name));
}

/* Appends one SvcParam (key, value) at *pos; false when it does not fit. */
static bool param(uint8_t *body, size_t cap, size_t *pos, uint16_t key, const void *v,
		  size_t vlen)
{
	if (*pos + 4 + vlen > cap || vlen > 0xffff)
		return false;
	bw_put16(body + *pos, key);
	bw_put16(body + *pos + 2, (uint16_t)vlen);
	memcpy(body + *pos + 4, v, vlen);
	*pos += 4 + vlen;
	return true;
}

static bool svcb(const struct bw_listen *l, uint16_t prio, struct bw_answer_meta *m,
		 uint8_t *body, size_t cap)
{
	uint8_t target[BW_DNS_MAXNAME];
	int tlen = bw_name_from_text(l->tls_name, strlen(l->tls_name), target);
	size_t pos = m->body_len;
	if (tlen < 0 || pos + 12 + 2 + (size_t)tlen > cap || m->nttl >= BW_ANSWER_MAXTTL)
		return false;
	uint8_t *r = body + pos;
	bw_put16(r, 0xc00c); /* the question name */
	bw_put16(r + 2, BW_T_SVCB);
	bw_put16(r + 4, BW_C_IN);
	m->ttl_off[m->nttl++] = (uint16_t)(pos + 6);
	r[6] = 0, r[7] = 0;
	bw_put16(r + 8, DDR_TTL);
	size_t rdlen_at = pos + 10;
	pos += 12;
	bw_put16(body + pos, prio);
	memcpy(body + pos + 2, target, (size_t)tlen);
	pos += 2 + (size_t)tlen;
	/* SvcParams in increasing key order: alpn(1), port(3), ipv4hint(4), dohpath(7),
	 * ipv6hint(6) comes before dohpath */
	static const uint8_t alpn_dot[] = "\x03" "dot";
	static const uint8_t alpn_doh[] = "\x02" "h2" "\x08" "http/1.1";
	bool dot = l->transport == BW_TRANSPORT_DOT;
	if (!param(body, cap, &pos, 1, dot ? alpn_dot : alpn_doh,
		   dot ? sizeof(alpn_dot) - 1 : sizeof(alpn_doh) - 1))
		return false;
	uint8_t port[2];
	bw_put16(port, l->port);
	if (!param(body, cap, &pos, 3, port, 2))
		return false;
	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
		if (sin->sin_addr.s_addr != htonl(INADDR_ANY) &&
		    !param(body, cap, &pos, 4, &sin->sin_addr, 4))
			return false;
	} else if (l->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
		if (!IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) &&
		    !param(body, cap, &pos, 6, &sin6->sin6_addr, 16))
			return false;
	}
	if (!dot && l->n_doh_paths) {
		char tpl[300];
		int n = snprintf(tpl, sizeof(tpl), "%s{?dns}", l->doh_paths[0].name);
		if (n < 0 || (size_t)n >= sizeof(tpl) || !param(body, cap, &pos, 7, tpl, (size_t)n))
			return false;
	}
	if (pos - rdlen_at - 2 > 0xffff)
		return false;
	bw_put16(body + rdlen_at, (uint16_t)(pos - rdlen_at - 2));
	m->body_len = (uint16_t)pos;
	m->ancount++;
	return true;
}

int bw_ddr_answer(const struct bw_conf *conf, const struct bw_query *q,
		  struct bw_answer_meta *m, uint8_t *body, size_t cap)
{
	bw_answer_meta_init(m);
	m->ttl = DDR_TTL;
	if (q->qtype != BW_T_SVCB)
		return 0; /* NODATA */
	uint16_t prio = 1;
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		const struct bw_listen *l = &conf->server.listen[i];
		if (l->transport == BW_TRANSPORT_DNS || !l->tls_name)
			continue;
		size_t keep_len = m->body_len;
		uint16_t keep_ttl = m->nttl;
		if (!svcb(l, prio, m, body, cap)) {
			m->body_len = (uint16_t)keep_len;
			m->nttl = keep_ttl;
			continue;
		}
		prio++;
	}
	return 0;
}
