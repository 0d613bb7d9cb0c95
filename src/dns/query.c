/*
 * dns/query.c - strict parsing of a client's query into struct bw_query.
 *
 * One pass through a bounded cursor: header, the single question (never compressed),
 * then the additional section, where at most one OPT RR is understood and any other
 * record (TSIG, ...) is checked for shape and skipped. Anything odd rejects the whole
 * message; nothing is read past `len` and nothing is allocated.
 */
#include "dns/dns.h"

#define EDNS_OPT_PADDING 12
#define EDNS_OPT_MAC 65001 /* dnsmasq's add-mac: the client's MAC address, 6 bytes */

static void query_reset(struct bw_query *q)
{
	q->id = 0;
	q->flags = 0;
	q->qtype = 0;
	q->qclass = 0;
	q->qname_len = 0;
	q->nlabels = 0;
	q->has_edns = false;
	q->do_bit = false;
	q->has_padding = false;
	q->has_mac = false;
	q->edns_version = 0;
	q->udp_size = 512;
}

/* The question name: plain labels only, copied in both cases. */
static int parse_qname(struct bw_cursor *c, struct bw_query *q)
{
	size_t n = 0;
	unsigned labels = 0;

	for (;;) {
		uint8_t l = bw_cursor_u8(c);
		if (c->error)
			return c->error;
		if (l > 63) /* compression pointer or 0x40/0x80 label type */
			return BW_EMALFORMED;
		if (n + 1 + l > BW_DNS_MAXNAME || !bw_cursor_need(c, l))
			return BW_EMALFORMED;
		q->qname[n] = l;
		q->qname_lc[n] = l;
		memcpy(q->qname + n + 1, bw_cursor_ptr(c), l);
		bw_name_lower(q->qname_lc + n + 1, bw_cursor_ptr(c), l);
		bw_cursor_skip(c, l);
		n += 1 + (size_t)l;
		if (l == 0)
			break;
		labels++;
	}
	q->qname_len = (uint16_t)n;
	q->nlabels = (uint8_t)labels; /* at most 127 labels fit in 255 bytes */
	return 0;
}

/* EDNS options: TLVs that must exactly fill the RDATA. */
static int parse_options(struct bw_query *q, const uint8_t *p, size_t len)
{
	while (len > 0) {
		if (len < 4)
			return BW_EMALFORMED;
		uint16_t code = bw_get16(p);
		uint16_t olen = bw_get16(p + 2);
		if (olen > len - 4)
			return BW_EMALFORMED;
		if (code == EDNS_OPT_PADDING)
			q->has_padding = true;
		else if (code == EDNS_OPT_MAC && olen == 6) {
			memcpy(q->mac, p + 4, 6);
			q->has_mac = true;
		}
		p += 4 + olen;
		len -= 4 + (size_t)olen;
	}
	return 0;
}

static int parse_additional(struct bw_cursor *c, struct bw_query *q, uint16_t arcount)
{
	uint8_t owner[BW_DNS_MAXNAME];

	for (unsigned i = 0; i < arcount; i++) {
		int olen = bw_name_unpack(c, owner);
		uint16_t type = bw_cursor_u16(c);
		uint16_t klass = bw_cursor_u16(c);
		uint32_t ttl = bw_cursor_u32(c);
		uint16_t rdlen = bw_cursor_u16(c);
		if (olen < 0 || c->error || !bw_cursor_need(c, rdlen))
			return BW_EMALFORMED;
		const uint8_t *rdata = bw_cursor_ptr(c);
		bw_cursor_skip(c, rdlen);
		if (type != BW_T_OPT)
			continue;
		if (q->has_edns || olen != 1)
			return BW_EMALFORMED;
		q->has_edns = true;
		q->udp_size = BW_MAX(klass, 512);
		q->edns_version = (uint8_t)(ttl >> 16);
		q->do_bit = (ttl & 0x8000) != 0;
		if (parse_options(q, rdata, rdlen) < 0)
			return BW_EMALFORMED;
	}
	return 0;
}

int bw_query_parse(const uint8_t *pkt, size_t len, struct bw_query *q)
{
	struct bw_cursor c;

	query_reset(q);
	if (len < BW_DNS_HDR)
		return BW_ESHORT;
	bw_cursor_init(&c, pkt, len);
	q->id = bw_cursor_u16(&c);
	q->flags = bw_cursor_u16(&c);
	uint16_t qdcount = bw_cursor_u16(&c);
	uint16_t ancount = bw_cursor_u16(&c);
	uint16_t nscount = bw_cursor_u16(&c);
	uint16_t arcount = bw_cursor_u16(&c);
	if (q->flags & BW_DNS_QR)
		return BW_ESHORT;
	if (BW_DNS_OPCODE(q->flags) != 0)
		return BW_ENOTSUP;
	if (qdcount != 1 || ancount != 0 || nscount != 0)
		return BW_EMALFORMED;
	if (parse_qname(&c, q) < 0)
		goto fail_question;
	q->qtype = bw_cursor_u16(&c);
	q->qclass = bw_cursor_u16(&c);
	if (c.error)
		goto fail_question;
	/* from here on the question is sound and may be echoed in the FORMERR answer */
	if (parse_additional(&c, q, arcount) < 0)
		goto fail_edns;
	if (bw_cursor_left(&c) != 0) /* trailing bytes */
		goto fail_edns;
	return 0;
fail_question:
	q->qname_len = 0;
	q->nlabels = 0;
	q->qtype = 0;
	q->qclass = 0;
fail_edns:
	/* the FORMERR answer carries no OPT: what we read of it is not trustworthy */
	q->has_edns = false;
	q->do_bit = false;
	q->has_padding = false;
	q->has_mac = false;
	q->edns_version = 0;
	q->udp_size = 512;
	return BW_EMALFORMED;
}
