/*
 * tests/fuzz/fuzz_xfr.c - fuzz target for the zone-transfer and NOTIFY parsers
 * (feeds/xfr.h): bw_xfr_parse_stream(), bw_tsig_verify(), bw_notify_handle(), and on a
 * good transfer bw_xfr_write_zone() + the RPZ parser and bw_xfr_delta_rules().
 *
 * Input: one mode byte, then TCP-framed messages (2-byte length, message), as a primary
 * sends them. Mode bits 0-1: 0 AXFR, 1 IXFR from serial 1, 2 NOTIFY (the first message,
 * from 127.0.0.1, zone rpz.test with or without the key: bit 2), 3 the same stream checked
 * with TSIG (key xfr-key., hmac-sha256, the request's MAC 32 bytes of 0x5a, so the seeds of
 * gen_xfr_tsig_corpus.py verify, one message or a chain, and a fuzzed one reaches past the
 * check; the time is 1700000000). The query ID is taken from the first message, so
 * captured answers are accepted. The zone is rpz.test. Properties: a successful transfer
 * has a kind and records consistent with it; a failure leaves nothing in the result; the
 * zone text written can be parsed; a NOTIFY answer is never longer than cap.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/xfr.h"
#include "fuzz.h"

#define MAX_MSGS 64

static int count_sink(void *ctx, const struct bw_rule *r)
{
	(void)r;
	(*(size_t *)ctx)++;
	return 0;
}

static int no_lookup(void *ctx, const uint8_t *owner, size_t len, bw_xfr_rr_emit emit,
		     void *ctx2)
{
	static const uint8_t a[4] = {192, 0, 2, 1};
	(void)ctx;
	(void)owner;
	(void)len;
	emit(ctx2, 1, 60, a, 4);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bw_tsig_key key;
	static bool have_key;
	const uint8_t *msgs[MAX_MSGS];
	size_t lens[MAX_MSGS], n = 0, pos = 1;
	char err[128];

	if (!have_key) {
		const char *why;
		have_key = bw_tsig_key_init(&key, "xfr-key.", "hmac-sha256",
					    "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==",
					    &why) == 0;
		bw_log_init(BW_LOG_ERR, false);
		bw_log_set_level(BW_LOG_ERR);
	}
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	while (pos + 2 <= size && n < MAX_MSGS) {
		size_t l = bw_get16(data + pos);
		pos += 2;
		if (l > size - pos)
			l = size - pos;
		msgs[n] = data + pos;
		lens[n++] = l;
		pos += l;
	}
	if (n == 0)
		return 0;

	if ((mode & 3) == 2) {
		struct sockaddr_storage prim = {0};
		struct sockaddr_in *p4 = (struct sockaddr_in *)&prim;
		p4->sin_family = AF_INET;
		inet_pton(AF_INET, "127.0.0.1", &p4->sin_addr);
		struct sockaddr_in from = *p4;
		uint8_t resp[512];
		size_t rlen = 0, zi = 0;
		uint32_t serial = 0;
		bool has = false;
		struct bw_notify_zone z = {.name = (const uint8_t *)"\003rpz\004test",
					   .name_len = 10,
					   .primaries = &prim,
					   .n_primaries = 1,
					   .key = (mode & 4) ? &key : NULL};
		int rc = bw_notify_handle(&z, 1, (struct sockaddr *)&from, msgs[0], lens[0],
					  1700000000, resp, sizeof(resp), &rlen, &zi, &serial, &has);
		CHECK(rlen <= sizeof(resp));
		CHECK(rc != 0 || (zi == 0 && rlen >= 12));
		return 0;
	}

	uint16_t qtype = (mode & 3) == 1 ? BW_RR_IXFR : BW_RR_AXFR;
	uint16_t id = lens[0] >= 2 ? bw_get16(msgs[0]) : 0;
	struct bw_tsig_ctx tc, *tsig = NULL;
	if ((mode & 3) == 3) {
		bw_tsig_ctx_init(&tc, &key);
		/* the request MAC gen_xfr_tsig_corpus.py signs its seeds against */
		memset(tc.mac, 0x5a, 32);
		tc.mac_len = 32;
		tsig = &tc;
	}
	struct bw_xfr_result r;
	int rc = bw_xfr_parse_stream("rpz.test", qtype, 1, id, msgs, lens, n, tsig, 1700000000, &r,
				     err, sizeof(err));
	if (tsig)
		bw_tsig_ctx_clear(tsig);
	if (rc != 0) {
		CHECK(r.kind == BW_XFR_NONE && r.zone.v == NULL && r.diffs == NULL);
		return 0;
	}
	CHECK(r.kind == BW_XFR_FULL || r.kind == BW_XFR_DELTA || r.kind == BW_XFR_UPTODATE);
	if (r.kind == BW_XFR_FULL) {
		CHECK(r.zone.n >= 1 && r.zone.v[0].type == BW_RR_SOA);
		char *text = NULL;
		size_t tlen = 0, rules = 0;
		FILE *f = open_memstream(&text, &tlen);
		CHECK(f != NULL);
		CHECK(bw_xfr_write_zone(&r, f) == 0);
		fclose(f);
		struct bw_parse_report rep;
		bw_parse_rpz(text, tlen, "fuzz", count_sink, &rules, &rep);
		free(text);
	} else if (r.kind == BW_XFR_DELTA) {
		CHECK(r.n_diffs >= 1 && r.diffs[0].from == 1);
		CHECK(r.diffs[r.n_diffs - 1].to == r.soa.serial);
		struct bw_xfr_delta d;
		if (bw_xfr_delta_rules(&r, no_lookup, NULL, &d) == 0)
			bw_xfr_delta_free(&d);
	}
	bw_xfr_result_free(&r);
	return 0;
}
