/*
 * tests/fuzz/fuzz_answer.c - fuzz target for bw_answer_from_wire() and bw_answer_write().
 *
 * The input is an upstream response. The query it answers is taken from the input's own
 * question when that is readable (so every real response in the corpus is a match),
 * otherwise a fixed www.example.com/A query is used. The low bits of the message ID pick
 * the knobs: 1 dnssec_ok, 2 the query had EDNS, 4 DO, 8 the client's name case is
 * flipped. Properties checked: a body written out and parsed again gives the same body
 * and meta (the recompression is stable), and truncation respects the limit.
 */
#include "dns/dns.h"
#include "fuzz.h"


static uint8_t out[BW_DNS_MAXMSG];
static uint8_t body[BW_DNS_MAXMSG];
static uint8_t body2[BW_DNS_MAXMSG];

static void make_query(const uint8_t *data, size_t size, struct bw_query *q)
{
	static const uint8_t fixed[] = { 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
					 3, 'c', 'o', 'm', 0 };
	uint16_t knobs = size >= 2 ? bw_get16(data) : 0;
	struct bw_cursor c;
	int n = -1;

	memset(q, 0, sizeof(*q));
	q->id = 0x4242;
	q->flags = BW_DNS_RD;
	q->qtype = BW_T_A;
	q->qclass = BW_C_IN;
	q->udp_size = 1232;
	q->has_edns = knobs & 2;
	q->do_bit = knobs & 4;
	if (size >= BW_DNS_HDR) {
		bw_cursor_init(&c, data, size);
		c.pos = BW_DNS_HDR;
		n = bw_name_unpack(&c, q->qname);
		uint16_t t = bw_cursor_u16(&c), k = bw_cursor_u16(&c);
		if (n > 0 && !c.error) {
			q->qtype = t;
			q->qclass = k;
		} else {
			n = -1;
		}
	}
	if (n < 0) {
		n = sizeof(fixed);
		memcpy(q->qname, fixed, sizeof(fixed));
	}
	q->qname_len = (uint16_t)n;
	for (size_t o = 0; q->qname[o] != 0; o = bw_name_parent(q->qname, o))
		q->nlabels++;
	if (knobs & 8)
		for (int i = 0; i < n; i++)
			if ((q->qname[i] | 0x20) >= 'a' && (q->qname[i] | 0x20) <= 'z')
				q->qname[i] ^= 0x20;
	bw_name_lower(q->qname_lc, q->qname, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_query q;
	struct bw_answer_meta meta, meta2;
	struct bw_chain chain;
	uint16_t knobs = size >= 2 ? bw_get16(data) : 0;

	make_query(data, size, &q);
	int rc = bw_answer_from_wire(data, size, &q, knobs & 1, &meta, body, sizeof(body), &chain);
	CHECK(rc == 0 || rc == BW_EMALFORMED || rc == BW_ESPACE);
	if (rc != 0)
		return 0;
	CHECK(meta.nttl <= BW_ANSWER_MAXTTL && chain.n <= BW_CHAIN_MAX);

	/* round trip: write at full size, read back, expect the same body */
	int n = bw_answer_write(&q, &meta, body, 0, 0, BW_DNS_MAXMSG, out, sizeof(out));
	CHECK(n > 0 || n == BW_ESPACE);
	if (n > 0) {
		rc = bw_answer_from_wire(out, (size_t)n, &q, true, &meta2, body2, sizeof(body2),
					 NULL);
		CHECK(rc == 0);
		CHECK(meta2.body_len == meta.body_len);
		CHECK(memcmp(body, body2, meta.body_len) == 0);
		CHECK(meta2.ancount == meta.ancount && meta2.nscount == meta.nscount &&
		      meta2.arcount == meta.arcount && meta2.nttl == meta.nttl &&
		      meta2.ttl == meta.ttl && meta2.rcode == meta.rcode);
	}

	/* aged, then truncated to a small limit */
	n = bw_answer_write(&q, &meta, body, 30, 0, 512, out, sizeof(out));
	CHECK(n > 0 && n <= 512);
	n = bw_answer_write(&q, &meta, body, 0, 30, 100, out, sizeof(out));
	CHECK(n > 0);
	CHECK(n <= 100 || (bw_get16(out + 2) & BW_DNS_TC));
	return 0;
}
