/*
 * tests/unit/test_cache.c - unit tests for the packet cache (cache/cache.h).
 *
 * Answers are built by hand: one A record 192.0.2.1, TTL 300, owner compressed to the
 * question. Responses are checked byte by byte (ID, question case, aged TTL, OPT, EDE).
 * BW_CACHE_BENCH=1 in the environment also runs a hit-path micro-benchmark.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/cache.h"

#define T0 1000u

static const uint8_t a_body[16] = {
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 192, 0, 2, 1,
};

/* "www.Example.COM" -> wire form, original case. Returns the wire length. */
static uint16_t text_to_wire(const char *text, uint8_t *out)
{
	size_t n = 0;
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);
		out[n++] = (uint8_t)l;
		memcpy(out + n, text, l);
		n += l;
		text += l;
		if (*text == '.')
			text++;
	}
	out[n++] = 0;
	return (uint16_t)n;
}

static void make_query(struct bw_query *q, const char *name, uint16_t id, uint16_t qtype,
		       bool edns, bool do_bit)
{
	memset(q, 0, sizeof(*q));
	q->id = id;
	q->flags = BW_DNS_RD;
	q->qtype = qtype;
	q->qclass = BW_C_IN;
	q->qname_len = text_to_wire(name, q->qname);
	for (unsigned i = 0; i < q->qname_len; i++) {
		uint8_t ch = q->qname[i];
		q->qname_lc[i] = (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + 32) : ch;
	}
	q->has_edns = edns;
	q->do_bit = do_bit;
	q->udp_size = edns ? 1232 : 512;
}

static void make_key(struct bw_cache_key *k, const struct bw_query *q, uint16_t profile,
		     uint64_t gen)
{
	memset(k, 0, sizeof(*k));
	k->qname_lc = q->qname_lc;
	k->qname_len = q->qname_len;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->flags = (uint8_t)((q->do_bit ? BW_CACHE_DO : 0) | ((q->flags & BW_DNS_CD) ? BW_CACHE_CD : 0));
	k->profile = profile;
	k->generation = gen;
	bw_cache_key_hash(k);
}

static void make_a_meta(struct bw_answer_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->rcode = BW_RCODE_NOERROR;
	m->ede = BW_EDE_NONE;
	m->ancount = 1;
	m->body_len = sizeof(a_body);
	m->nttl = 1;
	m->ttl_off[0] = 6;
	m->ttl = 300;
}

static void make_neg_meta(struct bw_answer_meta *m, uint8_t rcode, uint32_t ttl)
{
	memset(m, 0, sizeof(*m));
	m->rcode = rcode;
	m->ede = BW_EDE_NONE;
	m->ttl = ttl;
}

static struct bw_cache *new_cache(uint64_t size, unsigned shards, uint32_t stale_ttl)
{
	struct bw_cache_config cfg = {
		.size = size, .shards = shards, .min_ttl = 0, .max_ttl = 86400,
		.max_neg_ttl = 3600, .stale_ttl = stale_ttl,
	};
	struct bw_cache *c = bw_cache_create(&cfg);
	assert_non_null(c);
	return c;
}

/* Offset of the answer record's TTL in a response to q. */
static size_t ttl_pos(const struct bw_query *q)
{
	return BW_DNS_HDR + q->qname_len + 4 + 6;
}

static void test_hit_ages_and_restores(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 0);
	struct bw_query q1, q2;
	struct bw_cache_key k1, k2;
	struct bw_answer_meta m;
	uint8_t out[512];

	make_query(&q1, "www.example.com", 0x1111, BW_T_A, false, false);
	make_key(&k1, &q1, 0, 1);
	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &k1, &m, a_body, T0), 0);

	make_query(&q2, "WwW.ExAmPlE.cOm", 0xbeef, BW_T_A, false, false);
	make_key(&k2, &q2, 0, 1);
	assert_int_equal(k1.hash, k2.hash);

	int n = bw_cache_lookup(c, &k2, &q2, T0 + 100, false, 512, out, sizeof(out));
	assert_int_equal(n, BW_DNS_HDR + q2.qname_len + 4 + sizeof(a_body));
	assert_int_equal(bw_get16(out), 0xbeef);
	assert_true(bw_get16(out + 2) & BW_DNS_QR);
	assert_int_equal(bw_get16(out + 4), 1); /* qdcount */
	assert_int_equal(bw_get16(out + 6), 1); /* ancount */
	assert_memory_equal(out + BW_DNS_HDR, q2.qname, q2.qname_len);
	assert_int_equal(bw_get32(out + ttl_pos(&q2)), 200);
	assert_memory_equal(out + ttl_pos(&q2) + 6, a_body + 12, 4);

	/* the same entry, aged differently, for the first client */
	n = bw_cache_lookup(c, &k1, &q1, T0 + 299, false, 512, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(bw_get16(out), 0x1111);
	assert_memory_equal(out + BW_DNS_HDR, q1.qname, q1.qname_len);
	assert_int_equal(bw_get32(out + ttl_pos(&q1)), 1);

	/* now before the store (another thread's clock): age 0, not a huge TTL */
	n = bw_cache_lookup(c, &k1, &q1, T0 - 5, false, 512, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(bw_get32(out + ttl_pos(&q1)), 300);

	/* output buffer too small */
	assert_int_equal(bw_cache_lookup(c, &k1, &q1, T0, false, 512, out, 20), BW_ESPACE);

	struct bw_cache_stats st;
	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.stores, 1);
	assert_true(st.bytes > sizeof(a_body) + q1.qname_len);
	bw_cache_destroy(c);
}

static void test_miss(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 0);
	struct bw_query q;
	struct bw_cache_key k;
	struct bw_answer_meta m;
	uint8_t out[512];

	make_query(&q, "www.example.com", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, true, 512, out, sizeof(out)), BW_ENOENT);

	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	make_query(&q, "www.example.org", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, true, 512, out, sizeof(out)), BW_ENOENT);
	/* same hash, different name: the full key is compared */
	struct bw_cache_key k2;
	make_query(&q, "www.example.net", 1, BW_T_A, false, false);
	make_key(&k2, &q, 0, 1);
	k2.hash = k.hash;
	assert_int_equal(bw_cache_lookup(c, &k2, &q, T0, true, 512, out, sizeof(out)), BW_ENOENT);
	bw_cache_destroy(c);
}

static void test_key_fields(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 0);
	struct bw_query q;
	struct bw_cache_key base, k;
	struct bw_answer_meta m;
	uint8_t out[512];

	make_query(&q, "a.example", 7, BW_T_A, true, false);
	make_key(&base, &q, 3, 42);
	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &base, &m, a_body, T0), 0);
	assert_true(bw_cache_lookup(c, &base, &q, T0, false, 1232, out, sizeof(out)) > 0);

	k = base;
	k.flags |= BW_CACHE_DO;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	k = base;
	k.flags |= BW_CACHE_CD;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	k = base;
	k.qtype = BW_T_AAAA;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	k = base;
	k.qclass = 3;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	k = base;
	k.generation = 43;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	k = base;
	k.profile = 4;
	bw_cache_key_hash(&k);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);

	/* the hash alone decides nothing: same hash with a different field still misses */
	k = base;
	k.generation = 43;
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 1232, out, sizeof(out)), BW_ENOENT);
	bw_cache_destroy(c);
}

static void test_ttl_clamping(void **state)
{
	(void)state;
	struct bw_cache_config cfg = {
		.size = 1 << 20, .min_ttl = 60, .max_ttl = 1000, .max_neg_ttl = 600,
		.stale_ttl = 10000,
	};
	struct bw_cache *c = bw_cache_create(&cfg);
	assert_non_null(c);
	struct bw_query q;
	struct bw_cache_key k;
	struct bw_answer_meta m;
	uint8_t out[512];

	/* NXDOMAIN clamped down to max_neg_ttl */
	make_query(&q, "nx.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_neg_meta(&m, BW_RCODE_NXDOMAIN, 7200);
	assert_int_equal(bw_cache_store(c, &k, &m, NULL, T0), 0);
	int n = bw_cache_lookup(c, &k, &q, T0 + 599, false, 512, out, sizeof(out));
	assert_int_equal(n, BW_DNS_HDR + q.qname_len + 4);
	assert_int_equal(bw_get16(out + 2) & 0xf, BW_RCODE_NXDOMAIN);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 600, false, 512, out, sizeof(out)),
			 BW_ESTALE);

	/* NODATA (NOERROR, no answers) is negative too */
	make_query(&q, "nodata.example", 1, BW_T_AAAA, false, false);
	make_key(&k, &q, 0, 1);
	make_neg_meta(&m, BW_RCODE_NOERROR, 7200);
	assert_int_equal(bw_cache_store(c, &k, &m, NULL, T0), 0);
	assert_true(bw_cache_lookup(c, &k, &q, T0 + 599, false, 512, out, sizeof(out)) > 0);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 600, false, 512, out, sizeof(out)),
			 BW_ESTALE);

	/* negative TTL raised to min_ttl */
	make_query(&q, "short.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_neg_meta(&m, BW_RCODE_NXDOMAIN, 5);
	assert_int_equal(bw_cache_store(c, &k, &m, NULL, T0), 0);
	assert_true(bw_cache_lookup(c, &k, &q, T0 + 59, false, 512, out, sizeof(out)) > 0);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 60, false, 512, out, sizeof(out)),
			 BW_ESTALE);

	/* positive TTL clamped to max_ttl */
	make_query(&q, "long.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_a_meta(&m);
	m.ttl = 5000;
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	assert_true(bw_cache_lookup(c, &k, &q, T0 + 999, false, 512, out, sizeof(out)) > 0);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 1000, false, 512, out, sizeof(out)),
			 BW_ESTALE);

	/* min_ttl above the record TTL: the entry lives min_ttl, the written TTL floors at 0 */
	make_query(&q, "tiny.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_a_meta(&m);
	m.ttl = 10;
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	assert_true(bw_cache_lookup(c, &k, &q, T0 + 59, false, 512, out, sizeof(out)) > 0);
	bw_cache_destroy(c);
}

static void test_not_stored(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 0);
	struct bw_query q;
	struct bw_cache_key k;
	struct bw_answer_meta m;
	struct bw_cache_stats st;
	uint8_t out[512];

	make_query(&q, "fail.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_neg_meta(&m, BW_RCODE_SERVFAIL, 300);
	assert_int_equal(bw_cache_store(c, &k, &m, NULL, T0), BW_EINVAL);
	make_neg_meta(&m, BW_RCODE_REFUSED, 300);
	assert_int_equal(bw_cache_store(c, &k, &m, NULL, T0), BW_EINVAL);
	make_a_meta(&m);
	m.ttl = 0;
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), BW_EINVAL);
	/* a TTL offset outside the body */
	make_a_meta(&m);
	m.ttl_off[0] = 13;
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), BW_EINVAL);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, true, 512, out, sizeof(out)), BW_ENOENT);
	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.stores, 0);
	bw_cache_destroy(c);

	/* max_ttl 0 clamps every TTL to 0: nothing is stored */
	struct bw_cache_config cfg = { .size = 1 << 20, .max_ttl = 0, .max_neg_ttl = 0 };
	c = bw_cache_create(&cfg);
	assert_non_null(c);
	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), BW_EINVAL);
	bw_cache_destroy(c);

	/* an entry larger than the shard budget is refused */
	c = new_cache(64 * 1024, 1, 0);
	static uint8_t big[64 * 1024];
	make_a_meta(&m);
	m.body_len = 65000; /* more than the 64 KiB budget less the bucket array */
	assert_int_equal(bw_cache_store(c, &k, &m, big, T0), BW_ESPACE);
	bw_cache_destroy(c);
}

static void name_of(char *buf, size_t cap, unsigned i)
{
	snprintf(buf, cap, "host%u.example.com", i);
}

static void test_eviction(void **state)
{
	(void)state;
	const uint64_t budget = 64 * 1024;
	struct bw_cache *c = new_cache(budget, 1, 0);
	struct bw_query q, q0;
	struct bw_cache_key k, k0;
	struct bw_answer_meta m;
	struct bw_cache_stats st;
	uint8_t out[512];
	char name[64];

	make_a_meta(&m);
	name_of(name, sizeof(name), 0);
	make_query(&q0, name, 1, BW_T_A, false, false);
	make_key(&k0, &q0, 0, 1);
	for (unsigned i = 0; i < 5000; i++) {
		name_of(name, sizeof(name), i);
		make_query(&q, name, 1, BW_T_A, false, false);
		make_key(&k, &q, 0, 1);
		assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
		bw_cache_stats(c, &st);
		assert_true(st.bytes <= budget);
		/* a client keeps asking for host0 */
		if (i % 16 == 0)
			assert_true(bw_cache_lookup(c, &k0, &q0, T0, false, 512, out, sizeof(out)) > 0);
	}
	bw_cache_stats(c, &st);
	assert_true(st.evictions > 0);
	assert_int_equal(st.stores, 5000);
	assert_int_equal(st.entries + st.evictions, 5000);
	assert_true(st.bytes <= budget);
	assert_true(st.bytes > budget / 2);

	/* the oldest unused entry is gone, the recently used one and the newest stay */
	name_of(name, sizeof(name), 1);
	make_query(&q, name, 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0, false, 512, out, sizeof(out)), BW_ENOENT);
	assert_true(bw_cache_lookup(c, &k0, &q0, T0, false, 512, out, sizeof(out)) > 0);
	name_of(name, sizeof(name), 4999);
	make_query(&q, name, 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	assert_true(bw_cache_lookup(c, &k, &q, T0, false, 512, out, sizeof(out)) > 0);

	bw_cache_clear(c);
	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(bw_cache_lookup(c, &k0, &q0, T0, false, 512, out, sizeof(out)), BW_ENOENT);
	assert_int_equal(bw_cache_store(c, &k0, &m, a_body, T0), 0);
	assert_true(bw_cache_lookup(c, &k0, &q0, T0, false, 512, out, sizeof(out)) > 0);
	bw_cache_destroy(c);
}

/* Finds the EDE option in the OPT RR that follows `pos` (the end of the body). */
static void check_opt_ede(const uint8_t *out, int n, size_t pos, uint16_t code)
{
	assert_true((size_t)n >= pos + 11);
	assert_int_equal(out[pos], 0);                   /* root owner */
	assert_int_equal(bw_get16(out + pos + 1), BW_T_OPT);
	size_t rdlen = bw_get16(out + pos + 9);
	assert_int_equal((size_t)n, pos + 11 + rdlen);
	size_t o = pos + 11;
	bool found = false;
	while (o + 4 <= pos + 11 + rdlen) {
		uint16_t opt = bw_get16(out + o), olen = bw_get16(out + o + 2);
		if (opt == 15) {
			assert_true(olen >= 2);
			assert_int_equal(bw_get16(out + o + 4), code);
			found = true;
		}
		o += 4 + olen;
	}
	assert_true(found);
}

static void test_stale(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 100);
	struct bw_query q, qe;
	struct bw_cache_key k;
	struct bw_answer_meta m;
	struct bw_cache_stats st;
	uint8_t out[512];

	make_query(&q, "stale.example", 9, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);

	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 300, false, 512, out, sizeof(out)),
			 BW_ESTALE);
	int n = bw_cache_lookup(c, &k, &q, T0 + 300, true, 512, out, sizeof(out));
	assert_int_equal(n, BW_DNS_HDR + q.qname_len + 4 + sizeof(a_body));
	assert_int_equal(bw_get32(out + ttl_pos(&q)), 30);

	/* the same with EDNS: an OPT RR carrying EDE 3 */
	make_query(&qe, "Stale.Example", 10, BW_T_A, true, false);
	n = bw_cache_lookup(c, &k, &qe, T0 + 399, true, 1232, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(bw_get16(out), 10);
	assert_int_equal(bw_get16(out + 10), 1); /* arcount: the OPT */
	assert_memory_equal(out + BW_DNS_HDR, qe.qname, qe.qname_len);
	assert_int_equal(bw_get32(out + ttl_pos(&qe)), 30);
	check_opt_ede(out, n, BW_DNS_HDR + qe.qname_len + 4 + sizeof(a_body),
		      BW_EDE_STALE_ANSWER);

	/* a fresh hit with EDNS carries no EDE */
	struct bw_cache_key k2;
	struct bw_query q2;
	make_query(&q2, "fresh.example", 11, BW_T_A, true, false);
	make_key(&k2, &q2, 0, 1);
	assert_int_equal(bw_cache_store(c, &k2, &m, a_body, T0), 0);
	n = bw_cache_lookup(c, &k2, &q2, T0 + 1, true, 1232, out, sizeof(out));
	assert_true(n > 0);
	size_t pos = BW_DNS_HDR + q2.qname_len + 4 + sizeof(a_body);
	assert_int_equal((size_t)n, pos + 11); /* empty OPT */

	/* past the stale window: removed when found */
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 400, true, 512, out, sizeof(out)),
			 BW_ENOENT);
	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 400, false, 512, out, sizeof(out)),
			 BW_ENOENT);
	bw_cache_destroy(c);

	/* stale_ttl 0: expired is gone */
	c = new_cache(1 << 20, 0, 0);
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	assert_int_equal(bw_cache_lookup(c, &k, &q, T0 + 300, true, 512, out, sizeof(out)),
			 BW_ENOENT);
	bw_cache_destroy(c);
}

static void test_replace(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(1 << 20, 0, 0);
	struct bw_query q;
	struct bw_cache_key k;
	struct bw_answer_meta m;
	struct bw_cache_stats st;
	uint8_t out[512], body2[16];

	make_query(&q, "replace.example", 1, BW_T_A, false, false);
	make_key(&k, &q, 0, 1);
	make_a_meta(&m);
	assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	bw_cache_stats(c, &st);
	uint64_t bytes1 = st.bytes;

	memcpy(body2, a_body, sizeof(body2));
	body2[15] = 2;
	m.ttl = 600;
	bw_put32(body2 + 6, 600);
	assert_int_equal(bw_cache_store(c, &k, &m, body2, T0 + 10), 0);
	int n = bw_cache_lookup(c, &k, &q, T0 + 310, false, 512, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(out[ttl_pos(&q) + 9], 2);
	assert_int_equal(bw_get32(out + ttl_pos(&q)), 300);

	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.stores, 2);
	assert_int_equal(st.bytes, bytes1);
	assert_int_equal(st.evictions, 0);
	bw_cache_destroy(c);
}

/* ---- concurrency smoke test ---- */
#define NTHREADS 4
#define NKEYS 2048
static const uint64_t cache_size = 128 * 1024;

struct worker {
	struct bw_cache *c;
	unsigned seed;
	unsigned long ops, hits, bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bw_answer_meta m;
	struct bw_query q;
	struct bw_cache_key k;
	uint8_t out[512];
	char name[64];
	uint64_t start = bw_now_ns();
	uint32_t x = w->seed;

	make_a_meta(&m);
	for (;;) {
		uint64_t el = bw_now_ns() - start;
		if (el > 1000000000ull)
			break;
		/* the clock runs 500 times faster than real time: entries expire and go stale */
		uint32_t now = T0 + (uint32_t)(el / 2000000);
		for (unsigned j = 0; j < 64; j++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			unsigned key = x % NKEYS;
			name_of(name, sizeof(name), key);
			make_query(&q, name, (uint16_t)x, (key & 1) ? BW_T_AAAA : BW_T_A,
				   x & 2, false);
			make_key(&k, &q, 0, 1);
			int n = bw_cache_lookup(w->c, &k, &q, now, x & 4, 1232, out, sizeof(out));
			if (n > 0) {
				w->hits++;
				if (bw_get16(out) != q.id ||
				    memcmp(out + BW_DNS_HDR, q.qname, q.qname_len) != 0)
					w->bad++;
			} else if (n == BW_ENOENT || n == BW_ESTALE) {
				if (bw_cache_store(w->c, &k, &m, a_body, now) != 0)
					w->bad++;
			} else {
				w->bad++;
			}
			w->ops++;
		}
	}
	return NULL;
}

static void test_concurrency(void **state)
{
	(void)state;
	struct bw_cache *c = new_cache(cache_size, 4, 60);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	struct bw_cache_stats st;

	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .c = c, .seed = 0x9e3779b9u * (i + 1) };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	unsigned long ops = 0, hits = 0, bad = 0;
	/* every thread joined before any assertion: a failed one leaves the function, and
	 * threads still running would read w[] from a dead stack frame */
	for (unsigned i = 0; i < NTHREADS; i++) {
		bool joined = pthread_join(th[i], NULL) == 0;
		bad += joined ? w[i].bad : 1;
		ops += w[i].ops;
		hits += w[i].hits;
	}
	if (bad)
		bw_cache_destroy(c);
	assert_int_equal(bad, 0);
	bw_cache_stats(c, &st);
	print_message("concurrency: %lu ops, %lu hits, %llu stores, %llu evictions, %llu entries\n",
		      ops, hits, (unsigned long long)st.stores, (unsigned long long)st.evictions,
		      (unsigned long long)st.entries);
	assert_true(ops > 0 && hits > 0);
	assert_true(st.bytes <= cache_size);
	assert_true(st.entries <= NKEYS);
	assert_true(st.entries + st.evictions <= st.stores);
	bw_cache_destroy(c);
}

/* ---- micro-benchmark: BW_CACHE_BENCH=1 ----
 * Per hit: fill a query struct from a compact name table (what bw_query_parse() leaves
 * in a hot stack struct), build and hash the key, look up. The baseline does the same
 * fill and calls bw_answer_write() on a hot (meta, body): the difference is the cache's
 * own cost (hash, lock, index, entry misses, meta rebuild). */
#define BENCH_KEYS 100000

struct bench_name {
	uint8_t wire[31];
	uint8_t len;
};

static inline void bench_query(struct bw_query *q, const struct bench_name *n, uint16_t id)
{
	q->id = id;
	q->flags = BW_DNS_RD;
	q->qtype = BW_T_A;
	q->qclass = BW_C_IN;
	q->qname_len = n->len;
	q->has_edns = true;
	q->do_bit = false;
	q->udp_size = 1232;
	memcpy(q->qname, n->wire, sizeof(n->wire));
	memcpy(q->qname_lc, n->wire, sizeof(n->wire));
}

static double bench_run(struct bw_cache *c, const struct bench_name *names, const uint32_t *order,
			unsigned nkeys, uint64_t gen, bool baseline, long *sink)
{
	const unsigned total = 500000;
	struct bw_answer_meta m;
	struct bw_query q;
	struct bw_cache_key k;
	uint8_t out[512];

	make_a_meta(&m);
	memset(&q, 0, sizeof(q));
	uint64_t best = UINT64_MAX;
	for (unsigned rep = 0; rep < 9; rep++) { /* the best of 9: the machine is shared */
	uint64_t t0 = bw_now_ns();
	for (unsigned i = 0, j = 0; i < total; i++, j = j + 1 == nkeys ? 0 : j + 1) {
		bench_query(&q, &names[order[j]], (uint16_t)i);
		if (baseline) {
			*sink += bw_answer_write(&q, &m, a_body, 10, 0, 1232, out, sizeof(out));
			continue;
		}
		k.qname_lc = q.qname_lc;
		k.qname_len = q.qname_len;
		k.qtype = q.qtype;
		k.qclass = q.qclass;
		k.flags = 0;
		k.profile = 0;
		k.generation = gen;
		bw_cache_key_hash(&k);
		*sink += bw_cache_lookup(c, &k, &q, T0 + 10, false, 1232, out, sizeof(out));
	}
	best = BW_MIN(best, bw_now_ns() - t0);
	}
	return (double)best / total;
}

static void bench_keys(unsigned nkeys)
{
	struct bw_cache *c = new_cache(256ull << 20, 0, 86400);
	struct bench_name *names = calloc(nkeys, sizeof(*names));
	uint32_t *order = malloc(nkeys * sizeof(*order));
	assert_non_null(names);
	assert_non_null(order);
	struct bw_answer_meta m;
	struct bw_query q;
	struct bw_cache_key k;
	char text[64];

	make_a_meta(&m);
	for (unsigned i = 0; i < nkeys; i++) {
		snprintf(text, sizeof(text), "www.host%u.example.com", i);
		names[i].len = (uint8_t)text_to_wire(text, names[i].wire);
		bench_query(&q, &names[i], 0);
		make_key(&k, &q, 0, 1);
		assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
		order[i] = i;
	}
	uint32_t x = 12345;
	for (unsigned i = nkeys - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		unsigned j = x % (i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	long sink = 0;
	double base = bench_run(c, names, order, nkeys, 1, true, &sink);
	double hit = bench_run(c, names, order, nkeys, 1, false, &sink);
	double miss = bench_run(c, names, order, nkeys, 2, false, &sink);
	print_message("bench %6u keys: hit %.1f ns, baseline (fill + bw_answer_write) %.1f ns, "
		      "cache's share %.1f ns, miss %.1f ns (sink %ld)\n",
		      nkeys, hit, base, hit - base, miss, sink);
	free(order);
	free(names);
	bw_cache_destroy(c);
}

/* Not a test (tests never assert a time): run only with BW_CACHE_BENCH=1. */
static void bench(void **state)
{
	(void)state;
	bench_keys(1000);
	bench_keys(BENCH_KEYS);
}

/* ---- hash flooding (docs/internals/cache.md) ---- */

/* The cache's key hash before it was keyed: bw_hash() of the name with a fixed seed. */
#define OLD_SEED 0x62756c7761726bULL
#define GOLDEN 0x9e3779b97f4a7c15ULL
#define BLOCK_ADD 0x2545f4914f6cdd1dULL

static uint64_t mul_inverse(uint64_t a)
{
	uint64_t x = a; /* Newton: each step doubles the correct low bits (a is odd) */
	for (int i = 0; i < 6; i++)
		x *= 2 - a * x;
	return x;
}

static uint64_t mix_inverse(uint64_t h)
{
	h ^= h >> 33;
	h *= mul_inverse(0xc4ceb9fe1a85ec53ULL);
	h ^= h >> 33;
	h *= mul_inverse(0xff51afd7ed558ccdULL);
	h ^= h >> 33;
	return h;
}

static uint64_t rotr64(uint64_t h, unsigned b)
{
	return h >> b | h << (64 - b);
}

/*
 * Wire names of 24 bytes (one 22-byte label: three 8-byte words, no tail) whose old hash
 * is target's, computed as the attack did: the first word is chosen (a counter), the last
 * is fixed, and the middle one is solved for by running bw_hash's steps backwards. Words
 * with upper-case letters are skipped (the cache sees names lower-cased).
 */
static unsigned old_collisions(uint64_t target, uint8_t (*out)[24], unsigned want)
{
	const uint64_t ginv = mul_inverse(GOLDEN);
	uint8_t name[24];
	memset(name, 'x', sizeof(name));
	name[0] = 22;
	name[23] = 0;
	uint64_t w3;
	memcpy(&w3, name + 16, 8);
	uint64_t h3 = mix_inverse(target); /* the state after the last word */
	uint64_t h2 = rotr64(h3 * ginv, 27) ^ bw_hash_mix(w3 + BLOCK_ADD);
	unsigned n = 0;
	for (uint64_t ctr = 0; n < want && ctr < 16ull * want; ctr++) {
		for (int i = 1; i < 8; i++)
			name[i] = (uint8_t)('a' + (ctr >> (4 * (i - 1)) & 15));
		uint64_t w1, h = OLD_SEED ^ (24 * GOLDEN);
		memcpy(&w1, name, 8);
		h ^= bw_hash_mix(w1 + BLOCK_ADD);
		h = (h << 27 | h >> 37) * GOLDEN;
		uint64_t w2 = mix_inverse(rotr64(h2 * ginv, 27) ^ h) - BLOCK_ADD;
		memcpy(name + 8, &w2, 8);
		bool upper = false;
		for (int i = 8; i < 16; i++)
			upper |= name[i] >= 'A' && name[i] <= 'Z';
		if (upper)
			continue;
		memcpy(out[n++], name, sizeof(name));
	}
	return n;
}

/* Names that all shared one bucket chain under the old hash are spread by the keyed one:
 * a lookup of any name compares against a short chain, whatever the attacker sends. */
static void test_hash_flood(void **state)
{
	(void)state;
	enum { N = 4000 };
	static uint8_t names[N][24];
	static const uint8_t victim[] = "\3www\7example\3com"; /* 17 bytes with the root */
	uint64_t target = bw_hash(victim, sizeof(victim), OLD_SEED);
	assert_int_equal(old_collisions(target, names, N), N);
	/* the attack works on the old function: every name has the victim's hash */
	for (unsigned i = 0; i < N; i++)
		assert_true(bw_hash(names[i], 24, OLD_SEED) == target);

	struct bw_cache *c = new_cache(64u << 20, 1, 0);
	struct bw_answer_meta m;
	make_a_meta(&m);
	struct bw_cache_key k = {.qtype = BW_T_A, .qclass = 1, .generation = 1};
	uint64_t first = 0;
	unsigned same = 0;
	for (unsigned i = 0; i < N; i++) {
		k.qname_lc = names[i];
		k.qname_len = 24;
		bw_cache_key_hash(&k);
		if (i == 0)
			first = k.hash;
		same += k.hash == first;
		assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	}
	assert_int_equal(same, 1);
	struct bw_cache_stats st;
	bw_cache_stats(c, &st);
	assert_int_equal(st.entries, N);
	assert_int_equal(st.chain_evictions, 0); /* no bucket came near CHAIN_MAX */
	bw_cache_destroy(c);
}

/* Even names that do share buckets (here: 16 buckets for 2,000 names) never make a chain
 * longer than CHAIN_MAX (16): the bucket's oldest entry makes room. */
static void test_chain_bound(void **state)
{
	(void)state;
	struct bw_cache_config cfg = {
	    .size = 64u << 20, .shards = 1, .buckets = 16, .max_ttl = 86400,
	    .max_neg_ttl = 3600,
	};
	struct bw_cache *c = bw_cache_create(&cfg);
	assert_non_null(c);
	struct bw_answer_meta m;
	make_a_meta(&m);
	struct bw_query q;
	struct bw_cache_key k;
	char text[64];
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(text, sizeof(text), "host%u.example.org", i);
		make_query(&q, text, 1, BW_T_A, false, false);
		make_key(&k, &q, 0, 1);
		assert_int_equal(bw_cache_store(c, &k, &m, a_body, T0), 0);
	}
	struct bw_cache_stats st;
	bw_cache_stats(c, &st);
	assert_true(st.entries <= 16 * 16);
	assert_int_equal(st.entries + st.chain_evictions, 2000);
	assert_int_equal(st.evictions, st.chain_evictions);
	/* the newest name of all is there */
	uint8_t out[512];
	assert_true(bw_cache_lookup(c, &k, &q, T0 + 1, false, 512, out, sizeof(out)) > 0);
	bw_cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_ages_and_restores),
		cmocka_unit_test(test_miss),
		cmocka_unit_test(test_key_fields),
		cmocka_unit_test(test_ttl_clamping),
		cmocka_unit_test(test_not_stored),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_concurrency),
		cmocka_unit_test(test_hash_flood),
		cmocka_unit_test(test_chain_bound),
	};
	const struct CMUnitTest benches[] = {
		cmocka_unit_test(bench),
	};
	if (getenv("BW_CACHE_BENCH"))
		return cmocka_run_group_tests(benches, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
