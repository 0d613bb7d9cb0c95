/*
 * dns/synth.c - answers made up by policy (RPZ local data, CNAME redirects, NODATA,
 * TCP-only) and the walk over an answer's addresses for response-IP triggers.
 */
#include "dns/dns.h"

/* Writes one record whose owner is the question name (a pointer to offset 12). */
static bool put_rr(uint8_t *body, size_t cap, size_t *len, uint16_t type, uint16_t qclass,
		   uint32_t ttl, const uint8_t *rdata, size_t rdlen, struct bw_answer_meta *m)
{
	if (rdlen > 0xffff || 12 + rdlen > cap - *len || m->nttl >= BW_ANSWER_MAXTTL)
		return false;
	uint8_t *p = body + *len;
	bw_put16(p, 0xc00c);
	bw_put16(p + 2, type);
	bw_put16(p + 4, qclass);
	bw_put32(p + 6, ttl);
	bw_put16(p + 10, (uint16_t)rdlen);
	if (rdlen)
		memcpy(p + 12, rdata, rdlen);
	m->ttl_off[m->nttl++] = (uint16_t)(*len + 6);
	m->ttl = m->ancount ? BW_MIN(m->ttl, ttl) : ttl;
	m->ancount++;
	*len += 12 + rdlen;
	return true;
}

int bw_answer_synth_local(const struct bw_query *q, const uint8_t *rrs, size_t rrs_len,
			  uint16_t n_rrs, uint32_t neg_ttl, struct bw_answer_meta *m, uint8_t *body,
			  size_t cap)
{
	bw_answer_meta_init(m);
	m->rcode = BW_RCODE_NOERROR;
	size_t len = 0;
	/* a CNAME answers every type and excludes other data (RFC 1034 3.6.2) */
	bool has_cname = false;
	struct bw_cursor c;
	bw_cursor_init(&c, rrs, rrs_len);
	for (unsigned i = 0; i < n_rrs && !c.error; i++) {
		uint16_t type = bw_cursor_u16(&c);
		bw_cursor_skip(&c, 4);
		uint16_t rdlen = bw_cursor_u16(&c);
		bw_cursor_skip(&c, rdlen);
		if (type == BW_T_CNAME)
			has_cname = true;
	}
	if (c.error)
		return BW_EMALFORMED;
	bw_cursor_init(&c, rrs, rrs_len);
	for (unsigned i = 0; i < n_rrs; i++) {
		uint16_t type = bw_cursor_u16(&c);
		uint32_t ttl = bw_cursor_u32(&c);
		uint16_t rdlen = bw_cursor_u16(&c);
		const uint8_t *rdata = bw_cursor_ptr(&c);
		bw_cursor_skip(&c, rdlen);
		if (c.error)
			return BW_EMALFORMED;
		bool want = has_cname ? type == BW_T_CNAME
				      : (type == q->qtype || q->qtype == BW_T_ANY);
		if (want && !put_rr(body, cap, &len, type, q->qclass, ttl, rdata, rdlen, m))
			return BW_ESPACE;
	}
	if (!m->ancount)
		m->ttl = neg_ttl; /* NODATA: no record of that type at the name */
	m->body_len = (uint16_t)len;
	return 0;
}

int bw_answer_synth_cname(const struct bw_query *q, const uint8_t *target, size_t target_len,
			  bool wildcard, uint32_t ttl, struct bw_answer_meta *m, uint8_t *body,
			  size_t cap)
{
	uint8_t name[BW_DNS_MAXNAME];
	size_t len = target_len;
	bw_answer_meta_init(m);
	if (wildcard) {
		/* <query name>.<target>: the query's labels, then the target's */
		if (q->qname_len - 1 + target_len > BW_DNS_MAXNAME)
			return BW_ERANGE;
		memcpy(name, q->qname_lc, q->qname_len - 1u);
		memcpy(name + q->qname_len - 1, target, target_len);
		len = q->qname_len - 1u + target_len;
		target = name;
	}
	size_t off = 0;
	if (!put_rr(body, cap, &off, BW_T_CNAME, q->qclass, ttl, target, len, m))
		return BW_ESPACE;
	m->body_len = (uint16_t)off;
	return 0;
}

/* Skips a possibly compressed name without following pointers. */
static void skip_name(struct bw_cursor *c)
{
	for (;;) {
		uint8_t l = bw_cursor_u8(c);
		if (c->error || l == 0)
			return;
		if ((l & 0xc0) == 0xc0) {
			bw_cursor_skip(c, 1);
			return;
		}
		if (l & 0xc0) {
			c->error = BW_EMALFORMED;
			return;
		}
		bw_cursor_skip(c, l);
	}
}

int bw_answer_addrs(const struct bw_answer_meta *m, const uint8_t *body,
		    bool (*fn)(void *ctx, int family, const uint8_t *addr), void *ctx)
{
	struct bw_cursor c;
	bw_cursor_init(&c, body, m->body_len);
	for (unsigned i = 0; i < m->ancount; i++) {
		skip_name(&c);
		uint16_t type = bw_cursor_u16(&c);
		bw_cursor_skip(&c, 6);
		uint16_t rdlen = bw_cursor_u16(&c);
		const uint8_t *rdata = bw_cursor_ptr(&c);
		bw_cursor_skip(&c, rdlen);
		if (c.error)
			return BW_EMALFORMED;
		int fam = type == BW_T_A && rdlen == 4	    ? 4
			  : type == BW_T_AAAA && rdlen == 16 ? 6
							     : 0;
		if (fam && fn(ctx, fam, rdata))
			return 1;
	}
	return 0;
}
