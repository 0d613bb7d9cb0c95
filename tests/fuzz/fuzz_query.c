/*
 * tests/fuzz/fuzz_query.c - fuzz target for bw_query_parse() and the answers built
 * from what it parsed (bw_answer_error, bw_answer_write, bw_answer_any).
 *
 * Besides memory safety it checks a few properties and traps when one fails: a parsed
 * question name survives the round trip through text form, and a response we write
 * for the query parses back as an answer to it.
 */
#include "dns/dns.h"
#include "fuzz.h"

#include <stdlib.h>


static uint8_t out[BW_DNS_MAXMSG];
static uint8_t body[BW_DNS_MAXMSG];

static void check_name_text(const struct bw_query *q)
{
	char text[4 * BW_DNS_MAXNAME + 1];
	uint8_t wire[BW_DNS_MAXNAME];

	int tl = bw_name_to_text(q->qname, q->qname_len, text, sizeof(text));
	CHECK(tl > 0);
	int wl = bw_name_from_text(text, (size_t)tl, wire);
	CHECK(wl == (int)q->qname_len);
	CHECK(memcmp(wire, q->qname_lc, (size_t)wl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_query q;
	struct bw_answer_meta meta, meta2;
	int rc = bw_query_parse(data, size, &q);

	if (rc == BW_ESHORT)
		return 0;
	CHECK(rc == 0 || rc == BW_EMALFORMED || rc == BW_ENOTSUP);
	if (rc != 0) {
		int n = bw_answer_error(&q, rc == BW_ENOTSUP ? BW_RCODE_NOTIMP : BW_RCODE_FORMERR,
					BW_EDE_NONE, NULL, out, sizeof(out));
		CHECK(n >= BW_DNS_HDR);
		return 0;
	}
	check_name_text(&q);
	CHECK(q.udp_size >= 512);

	int n = bw_answer_error(&q, q.edns_version ? BW_RCODE_BADVERS : BW_RCODE_NXDOMAIN,
				BW_EDE_BLOCKED, "fuzz feed (phishing)", out, sizeof(out));
	CHECK(n > 0);
	/* an answer with no records must read back as one */
	rc = bw_answer_from_wire(out, (size_t)n, &q, false, &meta2, body, sizeof(body), NULL);
	CHECK(rc == 0 && meta2.body_len == 0);

	bw_answer_meta_init(&meta);
	meta.rcode = BW_RCODE_NXDOMAIN;
	meta.ede = BW_EDE_FILTERED;
	memcpy(meta.ede_text, "x", 2);
	n = bw_answer_write(&q, &meta, body, 0, 0, q.udp_size, out, sizeof(out));
	CHECK(n > 0 && (size_t)n <= BW_MAX(q.udp_size, 512u));

	if (bw_answer_any(&q, &meta, body, sizeof(body)) == 0) {
		n = bw_answer_write(&q, &meta, body, 10, 0, q.udp_size, out, sizeof(out));
		CHECK(n > 0);
		if (!(bw_get16(out + 2) & BW_DNS_TC)) {
			rc = bw_answer_from_wire(out, (size_t)n, &q, true, &meta2, body,
						 sizeof(body), NULL);
			CHECK(rc == 0 && meta2.ancount == 1 && meta2.ttl == 3590);
		}
	}
	return 0;
}
