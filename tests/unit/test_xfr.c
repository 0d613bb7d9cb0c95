/* Unit tests: feeds/xfr.h (serial arithmetic, TSIG against dnspython's vectors, transfer
 * stream validation, SOA timers, NOTIFY, IXFR to rule changes) and policy/export.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "dns/dns.h"
#include "feeds/xfr.h"
#include "policy/policy.h"
#include "policy/rules.h"

#include "xfr_vectors.h"

static struct bw_tsig_key key256;

static int setup(void **state)
{
	const char *why;
	(void)state;
	return bw_tsig_key_init(&key256, "xfr-key.", "hmac-sha256", V_SECRET, &why);
}

/* ---- serial arithmetic (RFC 1982) ---- */

static void test_serial(void **state)
{
	(void)state;
	assert_int_equal(bw_serial_cmp(1, 1), 0);
	assert_int_equal(bw_serial_cmp(1, 2), -1);
	assert_int_equal(bw_serial_cmp(2, 1), 1);
	assert_int_equal(bw_serial_cmp(0xffffffffu, 0), -1); /* wraps: 0 is after 2^32-1 */
	assert_int_equal(bw_serial_cmp(0, 0xffffffffu), 1);
	assert_int_equal(bw_serial_cmp(0, 0x7fffffffu), -1);
	assert_int_equal(bw_serial_cmp(0, 0x80000000u), 2); /* undefined */
	assert_int_equal(bw_serial_cmp(0x80000000u, 0), 2);
	assert_int_equal(bw_serial_cmp(0, 0x80000001u), 1);
	assert_true(bw_serial_newer(0, 0xffffffffu));
	assert_true(bw_serial_newer(5, 4));
	assert_false(bw_serial_newer(4, 5));
	assert_false(bw_serial_newer(4, 4));
	assert_false(bw_serial_newer(0x80000000u, 0));
}

/* ---- TSIG ---- */

static void test_tsig_keys(void **state)
{
	struct bw_tsig_key k;
	const char *why = NULL;
	(void)state;
	assert_int_equal(bw_tsig_key_init(&k, "k.", "hmac-md5", V_SECRET, &why), BW_EINVAL);
	assert_non_null(why);
	assert_int_equal(bw_tsig_key_init(&k, "k.", "hmac-sha256", "not*base64", &why), BW_EINVAL);
	assert_int_equal(bw_tsig_key_init(&k, "", "hmac-sha256", V_SECRET, &why), BW_EINVAL);
	assert_int_equal(bw_tsig_key_init(&k, "K.Example", "HMAC-SHA512", "YWJj", &why), 0);
	assert_int_equal(k.secret_len, 3);
	assert_memory_equal(k.secret, "abc", 3);
	assert_int_equal(k.alg, BW_TSIG_SHA512);
	assert_memory_equal(k.name, "\001k\007example", 10); /* lower-cased */
}

static void sign_like(const char *alg, const uint8_t *plain, size_t plen, const uint8_t *want,
		      size_t wlen)
{
	struct bw_tsig_key k;
	struct bw_tsig_ctx c;
	uint8_t buf[1024];
	size_t len = plen;
	const char *why;

	assert_int_equal(bw_tsig_key_init(&k, "xfr-key.", alg, V_SECRET, &why), 0);
	memcpy(buf, plain, plen);
	bw_tsig_ctx_init(&c, &k);
	assert_int_equal(bw_tsig_sign(&c, buf, &len, sizeof(buf), V_TIME, 0), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(buf, want, wlen); /* byte for byte what dnspython signs */
	/* and too small a buffer */
	len = plen;
	assert_int_equal(bw_tsig_sign(&c, buf, &len, plen + 10, V_TIME, 0), BW_ESPACE);
	bw_tsig_ctx_clear(&c);
}

static void test_tsig_sign_as_dnspython(void **state)
{
	(void)state;
	sign_like("hmac-sha256", v_req_plain_sha256, sizeof(v_req_plain_sha256), v_req_sha256,
		  sizeof(v_req_sha256));
	sign_like("hmac-sha1", v_req_plain_sha1, sizeof(v_req_plain_sha1), v_req_sha1,
		  sizeof(v_req_sha1));
	sign_like("hmac-sha512", v_req_plain_sha512, sizeof(v_req_plain_sha512), v_req_sha512,
		  sizeof(v_req_sha512));
}

static void test_tsig_verify_request(void **state)
{
	struct bw_tsig_ctx c;
	struct bw_tsig_key other;
	uint8_t m[sizeof(v_req_sha256)];
	const char *why;
	(void)state;

	bw_tsig_ctx_init(&c, &key256);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256), V_TIME), 0);
	assert_int_equal(c.mac_len, 32);
	/* time: within the fudge (300 s) or BADTIME */
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256),
						V_TIME + 300), 0);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256),
						V_TIME + 301), BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADTIME);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256),
						V_TIME - 301), BW_EREFUSED);
	/* a changed byte in the message: BADSIG */
	memcpy(m, v_req_sha256, sizeof(m));
	m[3] ^= 0x10;
	assert_int_equal(bw_tsig_verify_request(&c, m, sizeof(m), V_TIME), BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADSIG);
	/* another secret: BADSIG; another name or algorithm: BADKEY */
	assert_int_equal(bw_tsig_key_init(&other, "xfr-key.", "hmac-sha256", "YWJj", &why), 0);
	bw_tsig_ctx_init(&c, &other);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256), V_TIME),
			 BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADSIG);
	assert_int_equal(bw_tsig_key_init(&other, "other.", "hmac-sha256", V_SECRET, &why), 0);
	bw_tsig_ctx_init(&c, &other);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256), V_TIME),
			 BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADKEY);
	bw_tsig_ctx_init(&c, &key256);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha1, sizeof(v_req_sha1), V_TIME),
			 BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADKEY);
	/* unsigned; truncated */
	assert_int_equal(bw_tsig_verify_request(&c, v_req_plain_sha256,
						sizeof(v_req_plain_sha256), V_TIME), BW_ENOENT);
	assert_int_equal(bw_tsig_verify_request(&c, v_req_sha256, sizeof(v_req_sha256) - 1,
						V_TIME), BW_EMALFORMED);
}

/* Signs the request as the client does, so the context holds its MAC. */
static void client_ctx(struct bw_tsig_ctx *c)
{
	uint8_t buf[512];
	size_t len = sizeof(v_req_plain_sha256);

	memcpy(buf, v_req_plain_sha256, len);
	bw_tsig_ctx_init(c, &key256);
	assert_int_equal(bw_tsig_sign(c, buf, &len, sizeof(buf), V_TIME, 0), 0);
}

static void test_tsig_multi_message(void **state)
{
	struct bw_tsig_ctx c;
	uint8_t m[sizeof(v_axfr1)];
	(void)state;

	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr0, sizeof(v_axfr0), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr1, sizeof(v_axfr1), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr2, sizeof(v_axfr2), V_TIME, true), 0);
	assert_int_equal(c.verified, 3);
	bw_tsig_ctx_clear(&c);
	/* out of order: the second message's MAC covers the first's */
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr1, sizeof(v_axfr1), V_TIME, false), BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr0, sizeof(v_axfr0), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr2, sizeof(v_axfr2), V_TIME, true), BW_EREFUSED);
	assert_int_equal(c.error, BW_TSIG_BADSIG);
	bw_tsig_ctx_clear(&c);
	/* a changed byte in the middle message */
	memcpy(m, v_axfr1, sizeof(m));
	m[sizeof(m) / 3] ^= 1;
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr0, sizeof(v_axfr0), V_TIME, false), 0);
	assert_int_not_equal(bw_tsig_verify(&c, m, sizeof(m), V_TIME, false), 0);
	bw_tsig_ctx_clear(&c);
	/* a different request MAC (another query): the first answer fails */
	bw_tsig_ctx_init(&c, &key256);
	memset(c.mac, 7, 32);
	c.mac_len = 32;
	assert_int_equal(bw_tsig_verify(&c, v_axfr0, sizeof(v_axfr0), V_TIME, false), BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
}

static void test_tsig_unsigned_intermediate(void **state)
{
	struct bw_tsig_ctx c;
	(void)state;

	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u0, sizeof(v_axfr_u0), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u1, sizeof(v_axfr_u1), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u2, sizeof(v_axfr_u2), V_TIME, true), 0);
	bw_tsig_ctx_clear(&c);
	/* the unsigned one must be covered: without it, the last MAC does not match */
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u0, sizeof(v_axfr_u0), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u2, sizeof(v_axfr_u2), V_TIME, true),
			 BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
	/* the first and the last must be signed */
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u1, sizeof(v_axfr_u1), V_TIME, false),
			 BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u0, sizeof(v_axfr_u0), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u1, sizeof(v_axfr_u1), V_TIME, true),
			 BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
	/* at most 99 unsigned in a row */
	client_ctx(&c);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u0, sizeof(v_axfr_u0), V_TIME, false), 0);
	for (int i = 0; i < 99; i++)
		assert_int_equal(bw_tsig_verify(&c, v_axfr_u1, sizeof(v_axfr_u1), V_TIME, false), 0);
	assert_int_equal(bw_tsig_verify(&c, v_axfr_u1, sizeof(v_axfr_u1), V_TIME, false),
			 BW_EREFUSED);
	bw_tsig_ctx_clear(&c);
}

/* ---- transfer streams ---- */

struct mb {
	uint8_t b[4096];
	size_t n;
	unsigned an;
};

static void mb_name(struct mb *m, const char *text)
{
	int l = bw_name_from_text(text, strlen(text), m->b + m->n);
	assert_true(l > 0);
	m->n += (size_t)l;
}

static void mb_start(struct mb *m, uint16_t id, uint16_t qtype, bool question)
{
	memset(m, 0, sizeof(*m));
	bw_put16(m->b, id);
	bw_put16(m->b + 2, 0x8400);
	m->n = 12;
	if (question) {
		bw_put16(m->b + 4, 1);
		mb_name(m, "rpz.test");
		bw_put16(m->b + m->n, qtype);
		bw_put16(m->b + m->n + 2, 1);
		m->n += 4;
	}
}

static void mb_rr(struct mb *m, const char *owner, uint16_t type, const uint8_t *rd, size_t rdl)
{
	mb_name(m, owner);
	bw_put16(m->b + m->n, type);
	bw_put16(m->b + m->n + 2, 1);
	bw_put32(m->b + m->n + 4, 60);
	bw_put16(m->b + m->n + 8, (uint16_t)rdl);
	m->n += 10;
	memcpy(m->b + m->n, rd, rdl);
	m->n += rdl;
	m->an++;
	bw_put16(m->b + 6, (uint16_t)m->an);
}

static void mb_soa(struct mb *m, uint32_t serial)
{
	uint8_t rd[64];
	size_t n = 0;
	int l = bw_name_from_text("ns.rpz.test", 11, rd);
	n += (size_t)l;
	l = bw_name_from_text("h.rpz.test", 10, rd + n);
	n += (size_t)l;
	bw_put32(rd + n, serial);
	bw_put32(rd + n + 4, 3600);
	bw_put32(rd + n + 8, 600);
	bw_put32(rd + n + 12, 86400);
	bw_put32(rd + n + 16, 60);
	mb_rr(m, "rpz.test", BW_RR_SOA, rd, n + 20);
}

static void mb_cname(struct mb *m, const char *owner, const char *target)
{
	uint8_t rd[256];
	int l = bw_name_from_text(target, strlen(target), rd);
	if (strcmp(target, ".") == 0)
		rd[0] = 0, l = 1;
	mb_rr(m, owner, 5, rd, (size_t)l);
}

static void mb_a(struct mb *m, const char *owner, const char *addr)
{
	uint8_t a[4];
	inet_pton(AF_INET, addr, a);
	mb_rr(m, owner, 1, a, 4);
}

/* Parses one- or two-message streams; returns the code and fills r. */
static int parse(uint16_t qtype, uint32_t ours, struct mb *m1, struct mb *m2,
		 struct bw_xfr_result *r, char *err)
{
	const uint8_t *msgs[2] = {m1->b, m2 ? m2->b : NULL};
	size_t lens[2] = {m1->n, m2 ? m2->n : 0};
	return bw_xfr_parse_stream("rpz.test", qtype, ours, 0x1234, msgs, lens, m2 ? 2 : 1, NULL,
				   V_TIME, r, err, 128);
}

static int count_sink(void *ctx, const struct bw_rule *r)
{
	(void)r;
	(*(size_t *)ctx)++;
	return 0;
}

static void test_stream_axfr(void **state)
{
	struct mb m, m2;
	struct bw_xfr_result r;
	char err[128];
	(void)state;

	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_cname(&m, "nx.example.rpz.test", ".");
	mb_a(&m, "local.example.rpz.test", "192.0.2.1");
	mb_soa(&m, 7);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), 0);
	assert_int_equal(r.kind, BW_XFR_FULL);
	assert_int_equal(r.soa.serial, 7);
	assert_int_equal(r.zone.n, 3);
	assert_int_equal(r.zone.v[0].type, BW_RR_SOA);
	assert_int_equal(r.zone.v[2].type, 1);
	/* master-file text that the RPZ parser reads: 2 rules */
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	assert_int_equal(bw_xfr_write_zone(&r, f), 0);
	fclose(f);
	struct bw_parse_report rep;
	size_t count = 0;
	assert_int_equal(bw_parse_rpz(text, tlen, "t", count_sink, &count, &rep), 0);
	assert_int_equal(count, 2);
	assert_int_equal(rep.bad, 0);
	free(text);
	bw_xfr_result_free(&r);

	/* in two messages, the second without a question */
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_cname(&m, "nx.example.rpz.test", ".");
	mb_start(&m2, 0x1234, BW_RR_AXFR, false);
	mb_a(&m2, "local.example.rpz.test", "192.0.2.1");
	mb_soa(&m2, 7);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, &m2, &r, err), 0);
	assert_int_equal(r.zone.n, 3);
	bw_xfr_result_free(&r);
	/* the second message missing: truncated */
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	assert_int_equal(r.kind, BW_XFR_NONE);
	assert_null(r.zone.v);
	/* last SOA differs */
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_cname(&m, "nx.example.rpz.test", ".");
	mb_soa(&m, 8);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	/* records after the end */
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_soa(&m, 7);
	mb_cname(&m, "nx.example.rpz.test", ".");
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	/* a record outside the zone */
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_cname(&m, "nx.example.other.test", ".");
	mb_soa(&m, 7);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	assert_non_null(strstr(err, "outside"));
	/* another ID; a cut message; TC */
	mb_start(&m, 0x9999, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_soa(&m, 7);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_soa(&m, 7);
	m.n -= 3;
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	m.n += 3;
	m.b[2] |= 0x02;
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), BW_EMALFORMED);
	/* the zone SOA alone twice: an empty zone */
	mb_start(&m, 0x1234, BW_RR_AXFR, true);
	mb_soa(&m, 7);
	mb_soa(&m, 7);
	assert_int_equal(parse(BW_RR_AXFR, 0, &m, NULL, &r, err), 0);
	assert_int_equal(r.zone.n, 1);
	bw_xfr_result_free(&r);
}

static void test_stream_ixfr(void **state)
{
	struct mb m;
	struct bw_xfr_result r;
	char err[128];
	(void)state;

	/* 1 -> 2 -> 3 */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 3);
	mb_soa(&m, 1);
	mb_cname(&m, "a.rpz.test", ".");
	mb_soa(&m, 2);
	mb_cname(&m, "b.rpz.test", ".");
	mb_soa(&m, 2);
	mb_soa(&m, 3);
	mb_cname(&m, "c.rpz.test", ".");
	mb_soa(&m, 3);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), 0);
	assert_int_equal(r.kind, BW_XFR_DELTA);
	assert_int_equal(r.n_diffs, 2);
	assert_int_equal(r.diffs[0].from, 1);
	assert_int_equal(r.diffs[0].to, 2);
	assert_int_equal(r.diffs[0].del.n, 1);
	assert_int_equal(r.diffs[0].add.n, 1);
	assert_int_equal(r.diffs[1].del.n, 0);
	assert_int_equal(r.diffs[1].add.n, 1);
	bw_xfr_result_free(&r);
	/* does not start at our serial */
	assert_int_equal(parse(BW_RR_IXFR, 5, &m, NULL, &r, err), BW_EMALFORMED);
	/* a gap: 1 -> 2, then 4 -> 5 */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 5);
	mb_soa(&m, 1);
	mb_soa(&m, 2);
	mb_soa(&m, 4);
	mb_soa(&m, 5);
	mb_soa(&m, 5);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_EMALFORMED);
	assert_non_null(strstr(err, "gap"));
	/* a sequence going back: 1 -> 0 */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 0);
	mb_soa(&m, 1);
	mb_soa(&m, 0);
	mb_soa(&m, 0);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_ERANGE);
	/* the chain ends short of the new serial (2 of 3), then the stream ends */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 3);
	mb_soa(&m, 1);
	mb_soa(&m, 2);
	mb_cname(&m, "b.rpz.test", ".");
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_EMALFORMED);
	/* up to date: our SOA alone */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 1);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), 0);
	assert_int_equal(r.kind, BW_XFR_UPTODATE);
	bw_xfr_result_free(&r);
	/* a newer SOA alone: AXFR needed */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 2);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_ENOTSUP);
	/* a full zone as the answer to IXFR; older than ours: a rollback */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 9);
	mb_cname(&m, "a.rpz.test", ".");
	mb_soa(&m, 9);
	assert_int_equal(parse(BW_RR_IXFR, 5, &m, NULL, &r, err), 0);
	assert_int_equal(r.kind, BW_XFR_FULL);
	bw_xfr_result_free(&r);
	assert_int_equal(parse(BW_RR_IXFR, 12, &m, NULL, &r, err), BW_ERANGE);
	assert_non_null(strstr(err, "rollback"));
	assert_int_equal(r.kind, BW_XFR_NONE);
	/* a serial that wraps: 0xffffffff -> 1 is forward */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 1);
	mb_soa(&m, 0xffffffffu);
	mb_soa(&m, 1);
	mb_soa(&m, 1);
	assert_int_equal(parse(BW_RR_IXFR, 0xffffffffu, &m, NULL, &r, err), 0);
	assert_int_equal(r.kind, BW_XFR_DELTA);
	bw_xfr_result_free(&r);
	/* an error rcode */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	m.b[3] |= 4; /* NOTIMP */
	mb_soa(&m, 1);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_ENOTSUP);
	m.b[3] = (uint8_t)((m.b[3] & 0xf0) | 5); /* REFUSED */
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), BW_EREFUSED);
}

static void test_stream_tsig(void **state)
{
	struct bw_tsig_ctx c;
	struct bw_xfr_result r;
	const uint8_t *msgs[3] = {v_axfr0, v_axfr1, v_axfr2};
	size_t lens[3] = {sizeof(v_axfr0), sizeof(v_axfr1), sizeof(v_axfr2)};
	char err[128];
	(void)state;

	client_ctx(&c);
	assert_int_equal(bw_xfr_parse_stream("rpz.test", BW_RR_AXFR, 0, 0x1234, msgs, lens, 3, &c,
					     V_TIME, &r, err, sizeof(err)),
			 0);
	assert_int_equal(r.kind, BW_XFR_FULL);
	assert_int_equal(r.zone.n, 8);
	bw_xfr_result_free(&r);
	bw_tsig_ctx_clear(&c);
	/* the last message missing */
	client_ctx(&c);
	assert_int_equal(bw_xfr_parse_stream("rpz.test", BW_RR_AXFR, 0, 0x1234, msgs, lens, 2, &c,
					     V_TIME, &r, err, sizeof(err)),
			 BW_EMALFORMED);
	bw_tsig_ctx_clear(&c);
	/* checked at another time: BADTIME, nothing returned */
	client_ctx(&c);
	assert_int_equal(bw_xfr_parse_stream("rpz.test", BW_RR_AXFR, 0, 0x1234, msgs, lens, 3, &c,
					     V_TIME + 1000, &r, err, sizeof(err)),
			 BW_EREFUSED);
	assert_int_equal(r.kind, BW_XFR_NONE);
	bw_tsig_ctx_clear(&c);
}

/* ---- SOA timers ---- */

static void test_timers(void **state)
{
	struct bw_soa soa = {.serial = 1, .refresh = 3600, .retry = 600, .expire = 86400};
	struct bw_xfr_timers t;
	(void)state;

	bw_xfr_timers(&soa, 1000, 0, 1500, 60, &t);
	assert_int_equal(t.next_check, 1000 + 3600);
	assert_int_equal(t.expires_at, 1000 + 86400);
	assert_false(t.expired);
	/* a failure after the success: retry interval */
	bw_xfr_timers(&soa, 1000, 2000, 2100, 60, &t);
	assert_int_equal(t.next_check, 2000 + 600);
	assert_false(t.expired);
	bw_xfr_timers(&soa, 1000, 90000, 1000 + 86400, 60, &t);
	assert_true(t.expired);
	/* clamps: refresh 0 -> 1 s, 10 days -> 1 day; expire below refresh -> refresh */
	soa.refresh = 0;
	bw_xfr_timers(&soa, 1000, 0, 1000, 60, &t);
	assert_int_equal(t.next_check, 1001);
	soa.refresh = 864000;
	soa.retry = 0;
	soa.expire = 10;
	bw_xfr_timers(&soa, 1000, 0, 1000, 60, &t);
	assert_int_equal(t.next_check, 1000 + 86400);
	assert_int_equal(t.expires_at, 1000 + 86400);
	soa.expire = 0xffffffffu;
	bw_xfr_timers(&soa, 1000, 0, 1000, 60, &t);
	assert_int_equal(t.expires_at, 1000 + 28 * 86400);
	/* never loaded: now, then every fallback retry; expired */
	bw_xfr_timers(NULL, 0, 0, 500, 60, &t);
	assert_int_equal(t.next_check, 500);
	assert_true(t.expired);
	bw_xfr_timers(NULL, 0, 450, 500, 60, &t);
	assert_int_equal(t.next_check, 510);
}

/* ---- NOTIFY ---- */

static void test_notify(void **state)
{
	struct sockaddr_storage prim = {0};
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(4444)};
	struct sockaddr_in6 from6 = {.sin6_family = AF_INET6};
	uint8_t zone[255], resp[1024];
	size_t rlen, zi;
	uint32_t serial;
	bool has;
	(void)state;

	struct sockaddr_in *p4 = (struct sockaddr_in *)&prim;
	p4->sin_family = AF_INET;
	p4->sin_port = htons(53);
	inet_pton(AF_INET, "127.0.0.1", &p4->sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &from.sin_addr);
	int zl = bw_name_from_text("rpz.test", 8, zone);
	struct bw_notify_zone z[2] = {
	    {.name = (const uint8_t *)"\005other\004test", .name_len = 12, .primaries = &prim,
	     .n_primaries = 1},
	    {.name = zone, .name_len = (size_t)zl, .primaries = &prim, .n_primaries = 1,
	     .key = &key256}};

	/* signed, from the primary (another port): accepted, answered signed */
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify,
					  sizeof(v_notify), V_TIME, resp, sizeof(resp), &rlen, &zi,
					  &serial, &has),
			 0);
	assert_int_equal(zi, 1);
	assert_true(has);
	assert_int_equal(serial, 5);
	assert_int_equal(bw_get16(resp), 0x4321);
	assert_int_equal(resp[2] & 0xfe, 0x80 | 0x20 | 0x04); /* QR, opcode 4, AA */
	assert_int_equal(resp[3] & 0x0f, 0);
	assert_int_equal(bw_get16(resp + 4), 1);
	assert_int_equal(bw_get16(resp + 10), 1); /* the TSIG */
	/* the response's TSIG covers the request MAC: check it as a client would */
	struct bw_tsig_ctx c;
	bw_tsig_ctx_init(&c, &key256);
	assert_int_equal(bw_tsig_verify_request(&c, v_notify, sizeof(v_notify), V_TIME), 0);
	assert_int_equal(bw_tsig_verify(&c, resp, rlen, V_TIME, true), 0);
	bw_tsig_ctx_clear(&c);
	/* a v4 primary seen as v4-mapped v6 */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &from6.sin6_addr);
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from6, v_notify,
					  sizeof(v_notify), V_TIME, resp, sizeof(resp), &rlen, &zi,
					  &serial, &has),
			 0);
	/* too late: refused, NOTAUTH */
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify,
					  sizeof(v_notify), V_TIME + 400, resp, sizeof(resp), &rlen,
					  &zi, &serial, &has),
			 BW_EREFUSED);
	assert_int_equal(resp[3] & 0x0f, 9);
	/* unsigned to a keyed zone: refused */
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify_plain,
					  sizeof(v_notify_plain), V_TIME, resp, sizeof(resp), &rlen,
					  &zi, &serial, &has),
			 BW_EREFUSED);
	/* from another address: REFUSED */
	inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify,
					  sizeof(v_notify), V_TIME, resp, sizeof(resp), &rlen, &zi,
					  &serial, &has),
			 BW_EREFUSED);
	assert_int_equal(resp[3] & 0x0f, 5);
	assert_true(rlen > 12);
	/* a zone we do not serve: NOTAUTH */
	inet_pton(AF_INET, "127.0.0.1", &from.sin_addr);
	assert_int_equal(bw_notify_handle(z, 1, (struct sockaddr *)&from, v_notify,
					  sizeof(v_notify), V_TIME, resp, sizeof(resp), &rlen, &zi,
					  &serial, &has),
			 BW_EREFUSED);
	/* unsigned to a zone without a key: accepted, unsigned answer */
	z[1].key = NULL;
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify_plain,
					  sizeof(v_notify_plain), V_TIME, resp, sizeof(resp), &rlen,
					  &zi, &serial, &has),
			 0);
	assert_int_equal(bw_get16(resp + 10), 0);
	/* not a NOTIFY (a query): no answer at all */
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_req_plain_sha256,
					  sizeof(v_req_plain_sha256), V_TIME, resp, sizeof(resp),
					  &rlen, &zi, &serial, &has),
			 BW_EMALFORMED);
	assert_int_equal(rlen, 0);
	/* garbled: FORMERR */
	assert_int_equal(bw_notify_handle(z, 2, (struct sockaddr *)&from, v_notify_plain, 20,
					  V_TIME, resp, sizeof(resp), &rlen, &zi, &serial, &has),
			 BW_EMALFORMED);
	assert_int_equal(rlen, 12);
	assert_int_equal(resp[3] & 0x0f, 1);
}

/* ---- rules ---- */

static void describe(const struct bw_rule *r, char *out, size_t cap)
{
	char name[1024] = "", tgt[1024] = "", a[64] = "", rd[600] = "";

	if (r->name)
		bw_name_to_text(r->name, r->name_len, name, sizeof(name));
	if (r->net.family)
		inet_ntop(r->net.family, r->net.addr, a, sizeof(a));
	if (r->target)
		bw_name_to_text(r->target, r->target_len, tgt, sizeof(tgt));
	for (size_t i = 0; i < r->n_rrs; i++) {
		size_t n = strlen(rd);
		snprintf(rd + n, sizeof(rd) - n, "%u/%u/", r->rrs[i].type, r->rrs[i].ttl);
		for (size_t k = 0; k < r->rrs[i].rdlen && strlen(rd) + 3 < sizeof(rd); k++) {
			n = strlen(rd);
			snprintf(rd + n, sizeof(rd) - n, "%02x", r->rrs[i].rdata[k]);
		}
	}
	snprintf(out, cap, "%d%d %s %s/%u %d %s%s %s", r->trigger, r->nsdname_wildcard, name, a,
		 r->net.prefix, r->action, r->target_wildcard ? "*." : "", tgt, rd);
}

struct coll {
	char s[64][700];
	size_t n;
};

static int coll_sink(void *ctx, const struct bw_rule *r)
{
	struct coll *c = ctx;
	assert_true(c->n < 64);
	describe(r, c->s[c->n++], sizeof(c->s[0]));
	return 0;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void collect(const char *text, size_t len, struct coll *c)
{
	struct bw_parse_report rep;
	memset(c, 0, sizeof(*c));
	assert_int_equal(bw_parse_rpz(text, len, "t", coll_sink, c, &rep), 0);
	assert_int_equal(rep.bad, 0);
	qsort(c->s, c->n, sizeof(c->s[0]), cmpstr);
}

static const char *RPZ = "$ORIGIN rpz.test.\n$TTL 60\n"
			 "@ SOA ns.rpz.test. h.rpz.test. 1 3600 600 86400 60\n"
			 "@ NS ns.rpz.test.\n"
			 "nx.example CNAME .\n"
			 "nodata.example CNAME *.\n"
			 "*.wild.example CNAME .\n"
			 "* CNAME rpz-passthru.\n"
			 "pass.example CNAME rpz-passthru.\n"
			 "drop.example CNAME rpz-drop.\n"
			 "tcp.example CNAME rpz-tcp-only.\n"
			 "local.example 30 A 192.0.2.1\n"
			 "local.example 30 A 192.0.2.2\n"
			 "local.example 40 TXT \"hello \\\"world\\\"\" \"two\"\n"
			 "local.example MX 10 mail.example.\n"
			 "local.example TYPE65280 \\# 3 010203\n"
			 "v6.example AAAA 2001:db8::5\n"
			 "redir.example CNAME walled.garden.\n"
			 "wredir.example CNAME *.garden.\n"
			 "32.1.2.0.192.rpz-ip CNAME .\n"
			 "24.0.2.0.192.rpz-client-ip CNAME rpz-drop.\n"
			 "ns.bad.example.rpz-nsdname CNAME .\n"
			 "*.bad.example.rpz-nsdname CNAME .\n"
			 "32.5.2.0.192.rpz-nsip CNAME .\n"
			 "128.1.zz.db8.2001.rpz-ip CNAME .\n"
			 "112.zz.8.7.6.5.4.3.2.rpz-client-ip CNAME .\n"
			 "128.8.7.6.5.4.3.2.1.rpz-nsip CNAME rpz-passthru.\n";

static struct bw_policy *build_rpz(const char *text, char *path)
{
	struct bw_feed_conf fc = {.name = "rpz", .category = "malware", .format = BW_FEED_RPZ,
				  .file = path};
	struct bw_conf conf;
	struct bw_policy *p = NULL;

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = &fc;
	conf.policy.n_feeds = 1;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p), 0);
	return p;
}

static void test_export_roundtrip(void **state)
{
	char path[] = "/tmp/bw-test-xfr-XXXXXX";
	int fd = mkstemp(path);
	struct coll *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char *text = NULL;
	size_t tlen = 0;
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	struct bw_policy *p = build_rpz(RPZ, path);
	FILE *f = open_memstream(&text, &tlen);
	assert_int_equal(bw_policy_export_feed(p, 0, f, "rpz.test.", 42), 0);
	fclose(f);
	collect(RPZ, strlen(RPZ), a);
	collect(text, tlen, b);
	assert_int_equal(a->n, 23);
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->s[i], b->s[i]);
	assert_int_equal(bw_policy_export_feed(p, 1, stdout, "rpz.test.", 1), BW_EINVAL);

	/* the export follows deltas: nx.example goes, new.example comes */
	struct bw_rpz_rr_buf buf;
	struct bw_rule rm, add;
	const char *why;
	uint8_t origin[255], o1[255], o2[255];
	int ol = bw_name_from_text("rpz.test", 8, origin);
	int l1 = bw_name_from_text("nx.example.rpz.test", 19, o1);
	int l2 = bw_name_from_text("new.example.rpz.test", 20, o2);
	static const uint8_t dot[] = {0};
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o1, (size_t)l1, 5, 60, dot, 1, &buf,
					&rm, &why), 1);
	struct bw_rpz_rr_buf buf2;
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o2, (size_t)l2, 5, 60, dot, 1, &buf2,
					&add, &why), 1);
	struct bw_policy *q = NULL;
	assert_int_equal(bw_policy_apply_delta(p, 0, &add, 1, &rm, 1, 2, &q), 0);
	free(text);
	text = NULL;
	f = open_memstream(&text, &tlen);
	assert_int_equal(bw_policy_export_feed(q, 0, f, "rpz.test.", 43), 0);
	fclose(f);
	assert_null(strstr(text, "\nnx.example.rpz.test."));
	assert_non_null(strstr(text, "\nnew.example.rpz.test. "));
	collect(text, tlen, b);
	assert_int_equal(b->n, 23);
	free(text);
	bw_policy_free(q);
	bw_policy_free(p);
	unlink(path);
	free(a);
	free(b);
}

/* ---- IXFR to rule changes ---- */

struct lookup_ctx {
	struct bw_policy *p;
};

static int lookup(void *ctx, const uint8_t *owner, size_t len, bw_xfr_rr_emit emit, void *ctx2)
{
	struct lookup_ctx *l = ctx;
	uint8_t origin[255];
	int ol = bw_name_from_text("rpz.test", 8, origin);
	return bw_policy_export_owner(l->p, 0, origin, (size_t)ol, owner, len, emit, ctx2);
}

static void test_delta_rules(void **state)
{
	char path[] = "/tmp/bw-test-xfr-XXXXXX";
	int fd = mkstemp(path);
	struct mb m;
	struct bw_xfr_result r;
	struct bw_xfr_delta d;
	char err[128], s[700];
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	struct bw_policy *p = build_rpz(RPZ, path);
	/* 1 -> 2: local.example loses A 192.0.2.2; nx.example becomes a DROP; new A owner;
	 * drop.example goes */
	mb_start(&m, 0x1234, BW_RR_IXFR, true);
	mb_soa(&m, 2);
	mb_soa(&m, 1);
	mb_a(&m, "local.example.rpz.test", "192.0.2.2");
	mb_cname(&m, "nx.example.rpz.test", ".");
	mb_cname(&m, "drop.example.rpz.test", "rpz-drop");
	mb_soa(&m, 2);
	mb_cname(&m, "nx.example.rpz.test", "rpz-drop");
	mb_a(&m, "New.Example.rpz.test", "192.0.2.9");
	mb_soa(&m, 2);
	assert_int_equal(parse(BW_RR_IXFR, 1, &m, NULL, &r, err), 0);
	struct lookup_ctx l = {p};
	assert_int_equal(bw_xfr_delta_rules(&r, lookup, &l, &d), 0);
	assert_int_equal(d.n_removes, 4); /* local, nx, drop, new */
	assert_int_equal(d.bad, 0);
	/* local.example keeps 192.0.2.1, TXT, MX and TYPE65280; nx: DROP; new: A */
	assert_int_equal(d.n_adds, 4 + 1 + 1);
	size_t local = 0, nx = 0, nw = 0;
	for (size_t i = 0; i < d.n_adds; i++) {
		describe(&d.adds[i], s, sizeof(s));
		if (strstr(s, " local.example. "))
			local++, assert_null(strstr(s, "c0000202"));
		if (strstr(s, " nx.example. "))
			nx++, assert_int_equal(d.adds[i].action, BW_ACT_DROP);
		if (strstr(s, " new.example. "))
			nw++, assert_int_equal(d.adds[i].action, BW_ACT_LOCAL_DATA);
	}
	assert_int_equal(local, 4);
	assert_int_equal(nx, 1);
	assert_int_equal(nw, 1);
	/* applied: the policy now answers as the new zone would */
	struct bw_policy *q = NULL;
	assert_int_equal(bw_policy_apply_delta(p, 0, d.adds, d.n_adds, d.removes, d.n_removes, 2,
					       &q),
			 0);
	struct bw_verdict v;
	uint8_t n[255];
	int nl = bw_name_from_text("nx.example", 10, n);
	assert_true(bw_policy_match(q, n, (size_t)nl, &v));
	assert_int_equal(v.action, BW_ACT_DROP);
	nl = bw_name_from_text("drop.example", 12, n); /* only the zone's "*" PASSTHRU left */
	assert_true(bw_policy_match(q, n, (size_t)nl, &v));
	assert_int_equal(v.action, BW_ACT_PASSTHRU);
	assert_int_equal(v.trigger, BW_TRIG_WILDCARD);
	assert_true(bw_policy_match(p, n, (size_t)nl, &v));
	assert_int_equal(v.action, BW_ACT_DROP);
	nl = bw_name_from_text("local.example", 13, n);
	assert_true(bw_policy_match(q, n, (size_t)nl, &v));
	assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
	assert_int_equal(v.n_rrs, 4);
	/* without a lookup the owner's other records would be lost: documented, visible */
	bw_xfr_delta_free(&d);
	assert_int_equal(bw_xfr_delta_rules(&r, NULL, NULL, &d), 0);
	assert_int_equal(d.n_adds, 2);
	bw_xfr_delta_free(&d);
	bw_xfr_result_free(&r);
	bw_policy_free(q);
	bw_policy_free(p);
	unlink(path);
}

static void test_rr_rule_kinds(void **state)
{
	struct bw_rpz_rr_buf buf;
	struct bw_rule r;
	const char *why;
	uint8_t origin[255], o[255], rd[255];
	int ol = bw_name_from_text("rpz.test", 8, origin);
	(void)state;
#define OWNER(t) bw_name_from_text(t, strlen(t), o)
	int l = OWNER("32.4.3.2.1.rpz-client-ip.rpz.test");
	rd[0] = 0;
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o, (size_t)l, 5, 60, rd, 1, &buf, &r,
					&why), 1);
	assert_int_equal(r.trigger, BW_TRIG_CLIENT_IP);
	assert_int_equal(r.net.prefix, 32);
	assert_int_equal(r.net.addr[0], 1);
	assert_int_equal(r.action, BW_ACT_NXDOMAIN);
	/* the apex: not policy; outside; bad IP encoding */
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, origin, (size_t)ol, 1, 60, rd, 4, &buf,
					&r, &why), 0);
	l = OWNER("www.example.org");
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o, (size_t)l, 5, 60, rd, 1, &buf, &r,
					&why), -1);
	l = OWNER("33.4.3.2.1.rpz-ip.rpz.test");
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o, (size_t)l, 5, 60, rd, 1, &buf, &r,
					&why), -1);
	assert_non_null(why);
	/* a CNAME with a garbled target */
	l = OWNER("x.rpz.test");
	rd[0] = 5;
	assert_int_equal(bw_rpz_rr_rule(origin, (size_t)ol, o, (size_t)l, 5, 60, rd, 2, &buf, &r,
					&why), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_tsig_keys),
	    cmocka_unit_test(test_tsig_sign_as_dnspython),
	    cmocka_unit_test(test_tsig_verify_request),
	    cmocka_unit_test(test_tsig_multi_message),
	    cmocka_unit_test(test_tsig_unsigned_intermediate),
	    cmocka_unit_test(test_stream_axfr),
	    cmocka_unit_test(test_stream_ixfr),
	    cmocka_unit_test(test_stream_tsig),
	    cmocka_unit_test(test_timers),
	    cmocka_unit_test(test_notify),
	    cmocka_unit_test(test_rr_rule_kinds),
	    cmocka_unit_test(test_export_roundtrip),
	    cmocka_unit_test(test_delta_rules),
	};
	bw_log_init(BW_LOG_ERR, false);
	return cmocka_run_group_tests(tests, setup, NULL);
}
