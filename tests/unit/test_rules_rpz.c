/*
 * tests/unit/test_rules_rpz.c - bw_parse_rpz(): every trigger and action on inline zones,
 * the master-file syntax libzscanner handles for us, bad records that do not stop the
 * parse, and real zones: BIND and Unbound test zones (tests/data/rpz), an urlhaus-filter
 * excerpt checked against the same list in hosts form, and, when ../shared/data exists,
 * HaGeZi's Pro++ mini zone (131,234 records). Run from the repository root.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/rules.h"

/* ---- a sink that keeps copies of the rules ---- */

struct cap_rule {
	enum bw_trigger trigger;
	bool nsdname_wildcard;
	char name[300]; /* text, "." for the root */
	struct bw_cidr net;
	enum bw_action action;
	char target[300];
	bool target_wildcard;
	size_t n_rrs;
	uint16_t rr_type;
	uint32_t rr_ttl;
	uint16_t rdlen;
	uint8_t rdata[64];
	uint32_t ttl;
	unsigned long line;
};

struct cap {
	struct cap_rule *r;
	size_t n, cap;
	size_t by_trig[6];
	size_t by_act[8];
	bool keep;	/* keep copies (off for the big zone: counts only) */
	size_t fail_at; /* return BW_ENOMEM on this rule (1-based), 0 = never */
};

static void wire_to_text(const uint8_t *w, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0;

	if (!w || len == 0) {
		out[0] = 0;
		return;
	}
	if (w[0] == 0) {
		snprintf(out, cap, ".");
		return;
	}
	while (i < len && w[i] != 0 && o + 70 < cap) {
		memcpy(out + o, w + i + 1, w[i]);
		o += w[i];
		out[o++] = '.';
		i += 1 + (size_t)w[i];
	}
	out[o] = 0;
}

/* Does the kept rule k have r's trigger? */
static bool same_trigger(const struct cap_rule *k, const struct bw_rule *r)
{
	char name[300];

	if (k->trigger != r->trigger || k->nsdname_wildcard != r->nsdname_wildcard)
		return false;
	if (r->trigger == BW_TRIG_CLIENT_IP || r->trigger == BW_TRIG_RESPONSE_IP ||
	    r->trigger == BW_TRIG_NSIP)
		return k->net.family == r->net.family && k->net.prefix == r->net.prefix &&
		       memcmp(k->net.addr, r->net.addr, sizeof(r->net.addr)) == 0;
	wire_to_text(r->name, r->name_len, name, sizeof(name));
	return strcmp(k->name, name) == 0;
}

static int cap_sink(void *ctx, const struct bw_rule *r)
{
	struct cap *c = ctx;

	/* as the snapshot builder: a CNAME beside other data of the same trigger (the parser
	 * leaves the owners that are not adjacent to the sink) */
	for (size_t i = 0; c->keep && r->cname_exclusive && i < c->n; i++) {
		if (same_trigger(&c->r[i], r) &&
		    (c->r[i].action != BW_ACT_LOCAL_DATA || r->action != BW_ACT_LOCAL_DATA))
			return BW_SINK_CONFLICT;
	}
	c->by_trig[r->trigger]++;
	c->by_act[r->action]++;
	if (c->fail_at && c->n + 1 == c->fail_at)
		return BW_ENOMEM;
	if (!c->keep) {
		c->n++;
		return 0;
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		assert_non_null(c->r);
	}
	struct cap_rule *k = &c->r[c->n++];
	memset(k, 0, sizeof(*k));
	k->trigger = r->trigger;
	k->nsdname_wildcard = r->nsdname_wildcard;
	wire_to_text(r->name, r->name_len, k->name, sizeof(k->name));
	k->net = r->net;
	k->action = r->action;
	wire_to_text(r->target, r->target_len, k->target, sizeof(k->target));
	k->target_wildcard = r->target_wildcard;
	k->n_rrs = r->n_rrs;
	if (r->n_rrs) {
		k->rr_type = r->rrs[0].type;
		k->rr_ttl = r->rrs[0].ttl;
		k->rdlen = r->rrs[0].rdlen;
		memcpy(k->rdata, r->rrs[0].rdata, r->rrs[0].rdlen < 64 ? r->rrs[0].rdlen : 64);
	}
	k->ttl = r->ttl;
	k->line = r->line;
	return 0;
}

static int parse(const char *text, struct cap *c, struct bw_parse_report *rep)
{
	memset(c, 0, sizeof(*c));
	c->keep = true;
	return bw_parse_rpz(text, strlen(text), "t.rpz", cap_sink, c, rep);
}

static const struct cap_rule *find(const struct cap *c, enum bw_trigger t, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->r[i].trigger == t && strcmp(c->r[i].name, name) == 0)
			return &c->r[i];
	return NULL;
}

/* IP triggers: find by "addr/prefix" text */
static const struct cap_rule *find_net(const struct cap *c, enum bw_trigger t, int family,
				       const char *addr, unsigned prefix)
{
	uint8_t a[16] = {0};

	assert_int_equal(inet_pton(family, addr, a), 1);
	for (size_t i = 0; i < c->n; i++)
		if (c->r[i].trigger == t && c->r[i].net.family == family &&
		    c->r[i].net.prefix == prefix &&
		    memcmp(c->r[i].net.addr, a, family == AF_INET ? 4 : 16) == 0)
			return &c->r[i];
	return NULL;
}

static bool has_error(const struct bw_parse_report *rep, const char *needle)
{
	for (unsigned i = 0; i < rep->n_errors; i++)
		if (strstr(rep->first_errors[i], needle))
			return true;
	return false;
}

#define SOA "@ SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60\n  NS ns.rpz.test.\n"

/* ---- triggers and actions ---- */

static void test_qname_actions(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n"
				"$TTL 300\n" SOA "nx.example.com CNAME .\n" /* 5 */
				"*.nx.example.com CNAME .\n"
				"nodata.example.com CNAME *.\n"
				"pass.example.com CNAME rpz-passthru.\n"
				"drop.example.com CNAME rpz-drop.\n"
				"tcp.example.com CNAME rpz-tcp-only.\n" /* 10 */
				"redir.example.com 60 CNAME Walled.Garden.example.\n"
				"*.wc.example.com CNAME *.garden.example.\n"
				"legacy.example.com CNAME legacy.example.com.\n"
				"a.example.com A 192.0.2.1\n"
				"a.example.com AAAA 2001:db8::1\n" /* 15 */
				"a.example.com 42 TXT \"hello\"\n"
				"mx.example.com MX 10 Mail.example.com.\n"
				"* CNAME .\n"
				"UPPER.Example.COM CNAME .\n";
	struct bw_parse_report rep;
	struct cap c;
	const struct cap_rule *r;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(rep.skipped, 0);
	assert_int_equal(rep.rules, 15);
	assert_int_equal(c.n, 15);
	assert_int_equal(rep.units, 19);

	r = find(&c, BW_TRIG_QNAME, "nx.example.com.");
	assert_non_null(r);
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_int_equal(r->ttl, 300);
	assert_int_equal(r->line, 5);
	assert_int_equal(r->n_rrs, 0);
	r = find(&c, BW_TRIG_WILDCARD, "nx.example.com.");
	assert_non_null(r);
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "nodata.example.com.")->action, BW_ACT_NODATA);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "pass.example.com.")->action, BW_ACT_PASSTHRU);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "drop.example.com.")->action, BW_ACT_DROP);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "tcp.example.com.")->action, BW_ACT_TCP_ONLY);
	r = find(&c, BW_TRIG_QNAME, "redir.example.com.");
	assert_int_equal(r->action, BW_ACT_REDIRECT);
	assert_string_equal(r->target, "walled.garden.example.");
	assert_false(r->target_wildcard);
	assert_int_equal(r->ttl, 60);
	assert_int_equal(r->line, 11);
	r = find(&c, BW_TRIG_WILDCARD, "wc.example.com.");
	assert_int_equal(r->action, BW_ACT_REDIRECT);
	assert_true(r->target_wildcard);
	assert_string_equal(r->target, "garden.example.");
	assert_int_equal(find(&c, BW_TRIG_QNAME, "legacy.example.com.")->action, BW_ACT_PASSTHRU);

	/* local data: one rule per record, rdata as wire */
	size_t n_a = 0;
	for (size_t i = 0; i < c.n; i++) {
		r = &c.r[i];
		if (r->trigger != BW_TRIG_QNAME || strcmp(r->name, "a.example.com.") != 0)
			continue;
		n_a++;
		assert_int_equal(r->action, BW_ACT_LOCAL_DATA);
		assert_int_equal(r->n_rrs, 1);
		if (r->rr_type == 1) {
			assert_int_equal(r->rdlen, 4);
			assert_memory_equal(r->rdata, "\xc0\x00\x02\x01", 4);
			assert_int_equal(r->rr_ttl, 300);
		} else if (r->rr_type == 28) {
			assert_int_equal(r->rdlen, 16);
			assert_memory_equal(r->rdata, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01",
					    16);
		} else {
			assert_int_equal(r->rr_type, 16);
			assert_int_equal(r->rdlen, 6);
			assert_memory_equal(r->rdata, "\x05hello", 6);
			assert_int_equal(r->rr_ttl, 42);
			assert_int_equal(r->ttl, 42);
		}
	}
	assert_int_equal(n_a, 3);
	r = find(&c, BW_TRIG_QNAME, "mx.example.com.");
	assert_int_equal(r->rr_type, 15);
	assert_int_equal(r->rdlen, 2 + 18);
	/* names inside rdata are absolute, case as written */
	assert_memory_equal(r->rdata,
			    "\x00\x0a\x04Mail\x07"
			    "example\x03"
			    "com\x00",
			    20);
	r = find(&c, BW_TRIG_WILDCARD, ".");
	assert_non_null(r); /* "*" at the apex: everything */
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_non_null(find(&c, BW_TRIG_QNAME, "upper.example.com."));
	assert_int_equal(c.by_trig[BW_TRIG_QNAME], 12);
	assert_int_equal(c.by_trig[BW_TRIG_WILDCARD], 3);
	free(c.r);
}

static void test_zone_syntax(void **state)
{
	(void)state;
	static const char z[] = "; a comment line\n"
				"$TTL 1h\n"
				"$ORIGIN RPZ.Test.\n"
				"@\tIN\tSOA\tns admin (\n" /* 4 */
				"\t\t2024010101 ; serial\n"
				"\t\t3600 600 86400 60 )\n"
				"\tIN\tNS\tns\n"
				"\n"
				"ns\tA\t192.0.2.53 ; glue: a QNAME trigger like any other\n" /* 9 */
				"$ORIGIN example.net.rpz.test.\n"
				"www\tCNAME\t. ; comment after a record\n"
				"mail 2m A 192.0.2.2\n"
				"     AAAA 2001:db8::2\n" /* 13: owner continues */
				"txt ( TXT\n"
				"      \"a\" \"b\" )\n" /* 15 */
				"$ORIGIN rpz.test.\n"
				"abs.example.org.rpz.test. CNAME .\n"
				"rel.example.org CNAME target\n"; /* relative target */
	struct bw_parse_report rep;
	struct cap c;
	const struct cap_rule *r;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(c.n, 7);
	r = find(&c, BW_TRIG_QNAME, "ns.");
	assert_non_null(r);
	assert_int_equal(r->action, BW_ACT_LOCAL_DATA);
	assert_int_equal(r->line, 9);
	assert_int_equal(r->ttl, 3600);
	r = find(&c, BW_TRIG_QNAME, "www.example.net.");
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_int_equal(r->line, 11);
	r = find(&c, BW_TRIG_QNAME, "mail.example.net.");
	assert_int_equal(r->ttl, 120);
	assert_int_equal(r->rr_type, 1);
	size_t n_mail = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (strcmp(c.r[i].name, "mail.example.net.") != 0)
			continue;
		n_mail++;
		if (c.r[i].rr_type == 28)
			assert_int_equal(c.r[i].line, 13);
	}
	assert_int_equal(n_mail, 2);
	r = find(&c, BW_TRIG_QNAME, "txt.example.net.");
	assert_int_equal(r->rr_type, 16);
	assert_int_equal(r->rdlen, 4);
	assert_int_equal(r->line, 15); /* the line on which the record ends */
	assert_non_null(find(&c, BW_TRIG_QNAME, "abs.example.org."));
	r = find(&c, BW_TRIG_QNAME, "rel.example.org.");
	assert_int_equal(r->action, BW_ACT_REDIRECT);
	assert_string_equal(r->target, "target.rpz.test.");
	free(c.r);
}

static void test_ip_triggers(void **state)
{
	(void)state;
	static const char z[] =
	    "$ORIGIN rpz.test.\n" SOA "32.4.3.2.1.rpz-ip CNAME .\n"
	    "24.0.2.0.192.rpz-client-ip CNAME .\n"
	    "16.0.0.168.192.rpz-nsip CNAME .\n"
	    "128.1.zz.db8.2001.rpz-ip CNAME .\n"
	    "48.zz.aa.db8.2001.RPZ-IP CNAME .\n"
	    "128.124.0.0.cc.bb.aa.db8.2001.rpz-ip CNAME .\n" /* not canonical: ok */
	    "128.1.2.3.4.5.6.7.8.rpz-ip CNAME .\n"
	    "64.zz.2001.rpz-ip CNAME .\n"
	    "128.1.zz.rpz-ip CNAME .\n"
	    "32.2.7.168.192.rpz-ip A 1.1.1.1\n"
	    "32.1.4.168.192.rpz-ip CNAME 32.1.4.168.192.\n" /* legacy passthru */
	    "32.1.4.168.192.rpz-client-ip CNAME 32.1.4.168.192.rpz-client-ip.\n"
	    /* bad ones, line 17 on */
	    "33.4.3.2.1.rpz-ip CNAME .\n"
	    "1000.4.0.53.10.rpz-client-ip A 10.53.0.1\n"
	    "0.0.0.0.0.rpz-ip CNAME .\n"
	    "24.1.2.0.192.rpz-ip CNAME .\n"
	    "32.256.2.0.192.rpz-ip CNAME .\n"
	    "32.1.2.3.rpz-ip CNAME .\n"
	    "128.1.zz.2.zz.2001.rpz-ip CNAME .\n"
	    "129.zz.2001.rpz-ip CNAME .\n"
	    "128.12345.zz.2001.rpz-ip CNAME .\n"
	    "128.g.zz.2001.rpz-ip CNAME .\n"
	    "rpz-ip CNAME .\n"
	    "32.*.3.2.1.rpz-ip CNAME .\n"
	    "64.1.zz.2001.rpz-ip CNAME .\n" /* host bits, v6 */
	    "128.1.2.3.4.5.6.7.8.9.rpz-ip CNAME .\n"
	    "x.rpz-nsip CNAME .\n";
	struct bw_parse_report rep;
	struct cap c;
	const struct cap_rule *r;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 12);
	assert_int_equal(rep.bad, 15);
	assert_true(has_error(&rep, "t.rpz:17: rpz IP trigger"));
	r = find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET, "1.2.3.4", 32);
	assert_non_null(r);
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_non_null(find_net(&c, BW_TRIG_CLIENT_IP, AF_INET, "192.0.2.0", 24));
	assert_non_null(find_net(&c, BW_TRIG_NSIP, AF_INET, "192.168.0.0", 16));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "2001:db8::1", 128));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "2001:db8:aa::", 48));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "2001:db8:aa:bb:cc::124", 128));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "8:7:6:5:4:3:2:1", 128));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "2001::", 64));
	assert_non_null(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET6, "::1", 128));
	r = find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET, "192.168.7.2", 32);
	assert_int_equal(r->action, BW_ACT_LOCAL_DATA);
	assert_int_equal(find_net(&c, BW_TRIG_RESPONSE_IP, AF_INET, "192.168.4.1", 32)->action,
			 BW_ACT_PASSTHRU);
	assert_int_equal(find_net(&c, BW_TRIG_CLIENT_IP, AF_INET, "192.168.4.1", 32)->action,
			 BW_ACT_PASSTHRU);
	assert_int_equal(c.by_trig[BW_TRIG_RESPONSE_IP], 9);
	free(c.r);
}

static void test_nsdname(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n" SOA "ns1.Example.com.rpz-nsdname CNAME .\n"
				"*.sub.example.com.rpz-nsdname CNAME garden.example.\n"
				"*.rpz-nsdname CNAME rpz-passthru.\n"
				"rpz-nsdname CNAME .\n"	       /* bad */
				"a.*.b.rpz-nsdname CNAME .\n"; /* bad */
	struct bw_parse_report rep;
	struct cap c;
	const struct cap_rule *r;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(rep.bad, 2);
	r = find(&c, BW_TRIG_NSDNAME, "ns1.example.com.");
	assert_non_null(r);
	assert_false(r->nsdname_wildcard);
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	r = find(&c, BW_TRIG_NSDNAME, "sub.example.com.");
	assert_true(r->nsdname_wildcard);
	assert_int_equal(r->action, BW_ACT_REDIRECT);
	r = find(&c, BW_TRIG_NSDNAME, ".");
	assert_true(r->nsdname_wildcard);
	free(c.r);
}

/* ---- what is ignored and what is bad ---- */

static void test_out_of_zone_and_apex(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n" SOA "@ A 192.0.2.1\n" /* apex data: skipped */
				"evil.com. CNAME .\n"			    /* 5: outside */
				"xrpz.test. CNAME .\n"			    /* outside */
				"a\\001rpz.test. CNAME .\n" /* suffix inside a label: outside */
				"rpz.test.evil. CNAME .\n"  /* outside */
				"ok CNAME .\n"
				"x CH TXT \"class\"\n"	   /* not IN */
				"@ SOA a. b. 2 3 4 5 6\n"; /* second SOA */
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 1);
	assert_non_null(find(&c, BW_TRIG_QNAME, "ok."));
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(rep.bad, 6);
	assert_true(has_error(&rep, "t.rpz:5: owner name outside the zone"));
	free(c.r);
}

static void test_no_soa(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n"
				"a CNAME .\n"
				"b.rpz.test. CNAME .\n"
				"c.other. CNAME .\n";
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 2); /* origin taken from $ORIGIN */
	assert_non_null(find(&c, BW_TRIG_QNAME, "a."));
	assert_non_null(find(&c, BW_TRIG_QNAME, "b."));
	assert_int_equal(rep.bad, 2); /* once for the missing SOA, once for c.other. */
	assert_true(has_error(&rep, "t.rpz:2: first record is not the SOA"));
	free(c.r);

	/* empty input and comments only: nothing at all */
	assert_int_equal(parse("", &c, &rep), 0);
	assert_int_equal(rep.bad + rep.rules + c.n, 0);
	assert_int_equal(parse("; nothing\n\n", &c, &rep), 0);
	assert_int_equal(rep.bad + rep.rules + c.n, 0);
	assert_int_equal(rep.units, 2);
}

static void test_syntax_errors_go_on(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n" SOA "good1 CNAME .\n"
				"bad1 A 1.2.3\n" /* 5 */
				"good2 CNAME .\n"
				"bad2 A 1.2.3.4 )\n" /* 7: fatal for libzscanner */
				"good3 CNAME .\n"
				"bad3 BOGUSTYPE x\n"	 /* 9 */
				"$INCLUDE /etc/passwd\n" /* 10: never followed */
				"good4 CNAME .\n"
				"bad4 A 1.2.3.4\r\x01\n" /* 12: stray CR */
				"good5 TYPE65280 \\# 2 abcd\n"
				"bad5 ( A\n" /* unclosed to the end */
				"good6 CNAME .\n";
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse(z, &c, &rep), 0);
	for (int i = 1; i <= 5; i++) {
		char n[32];
		snprintf(n, sizeof(n), "good%d.", i);
		assert_non_null(find(&c, BW_TRIG_QNAME, n));
	}
	assert_int_equal(find(&c, BW_TRIG_QNAME, "good5.")->rr_type, 65280);
	assert_null(find(&c, BW_TRIG_QNAME, "good6.")); /* swallowed by the open parenthesis */
	assert_int_equal(c.n, 5);
	assert_int_equal(rep.bad, 6);
	assert_true(has_error(&rep, "t.rpz:5: zone syntax"));
	assert_true(has_error(&rep, "t.rpz:7: zone syntax"));
	assert_true(has_error(&rep, "t.rpz:9: zone syntax"));
	assert_true(has_error(&rep, "t.rpz:10: $INCLUDE"));
	assert_true(has_error(&rep, "t.rpz:12: zone syntax"));
	/* bad5's open parenthesis swallows good6 and counts once (rep.bad above) */
	assert_int_equal(find(&c, BW_TRIG_QNAME, "good4.")->line, 11);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "good5.")->line, 13);
	assert_false(rep.broken);
	free(c.r);

	/* thousands of fatal errors: not a zone, the report says broken */
	size_t cap = 64 + 1100 * 16, o = 0;
	char *many = malloc(cap);
	assert_non_null(many);
	o += (size_t)snprintf(many, cap, "@ SOA a. b. 1 2 3 4 5\n");
	for (int i = 0; i < 1100; i++)
		o += (size_t)snprintf(many + o, cap - o, "x A 1.2.3.4 )\n");
	assert_int_equal(parse(many, &c, &rep), 0);
	assert_true(rep.broken);
	assert_int_equal(rep.bad, 1001);
	free(c.r);
	free(many);
}

static void test_conflicts(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\n" SOA "x CNAME .\n"
				"x A 192.0.2.1\n" /* 5 */
				"y A 192.0.2.1\n"
				"y TXT \"ok\"\n"
				"z CNAME .\n"
				"z CNAME *.\n" /* 9: second CNAME */
				"Y CNAME .\n"; /* 10: same owner as y */
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(rep.bad, 3);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "x.")->action, BW_ACT_NXDOMAIN);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "z.")->action, BW_ACT_NXDOMAIN);
	assert_true(has_error(&rep, "t.rpz:5: CNAME and other data"));
	assert_true(has_error(&rep, "t.rpz:10: CNAME and other data"));
	free(c.r);
}

static void test_crlf_and_sink_abort(void **state)
{
	(void)state;
	static const char z[] = "$ORIGIN rpz.test.\r\n@ SOA a. b. 1 2 3 4 5\r\n"
				"a CNAME .\r\nb CNAME .\r\nc CNAME .";
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse(z, &c, &rep), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(rep.units, 5);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "c.")->line, 5);
	free(c.r);

	memset(&c, 0, sizeof(c));
	c.keep = true;
	c.fail_at = 2;
	assert_int_equal(bw_parse_rpz(z, strlen(z), "t.rpz", cap_sink, &c, &rep), BW_ENOMEM);
	assert_int_equal(c.n, 1);
	free(c.r);
}

/* ---- real zones ---- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = 0;
	*len = (size_t)n;
	return buf;
}

struct expect {
	const char *file;
	size_t trig[6]; /* QNAME WILDCARD CLIENT_IP RESPONSE_IP NSDNAME NSIP */
	size_t act[8];	/* ALLOW NXDOMAIN NODATA DROP TCP_ONLY LOCAL_DATA REDIRECT PASSTHRU */
	size_t bad;
};

/*
 * Counts as the shared data README states them (its "policy RRs" by trigger and action),
 * except where its counting script and RPZ disagree, each noted:
 *  [g] the glue "ns A 127.0.0.1" below "@ SOA root.ns ns ..." is a QNAME local-data rule
 *      for "ns." here (BIND treats every non-apex name as a trigger); the README leaves it out.
 *  [w] the README counts "*.name" owners under qname; here they are WILDCARD.
 *  [p] prefix length 1000 is rejected (bad), the README counts the record.
 *  [c] the AAAA line continues the owner 32.2.7.168.192.rpz-ip; the README gives it to qname.
 *  [u] Unbound files hold two zones separated by "; ---- zone file" lines: each is parsed on
 *      its own; the README counts the NS records at the second zone's apex (2 RRs) as
 *      policy, and the deliberate duplicate "a CNAME *." is a conflict (bad) here.
 */
static const struct expect real[] = {
    {"bind/rpzrecurse_ns2_db.clientip1", {1, 0, 2}, {0, 0, 0, 0, 0, 3}, 0},	/* [g] */
    {"bind/rpzrecurse_ns2_db.clientip21", {1, 0, 2}, {0, 1, 0, 0, 0, 2}, 0},	/* [g] */
    {"bind/rpzrecurse_ns2_db.log3", {1, 0, 3}, {0, 0, 0, 0, 0, 4}, 0},		/* [g] */
    {"bind/rpzrecurse_ns2_db.invalidprefixlength", {1}, {0, 0, 0, 0, 0, 1}, 1}, /* [g][p] */
    {"bind/rpzrecurse_ns2_db.passthru", {2, 1}, {0, 0, 0, 0, 0, 1, 0, 2}, 0},	/* [w] */
    {"bind/rpzrecurse_ns2_db.given", {3}, {0, 2, 0, 0, 0, 1}, 0},
    {"bind/rpzrecurse_ns2_db.wildcard1", {2, 1}, {0, 2, 0, 0, 0, 1}, 0}, /* [g][w] */
    {"bind/rpzrecurse_ns2_db.wildcard3", {1, 1}, {0, 1, 0, 0, 0, 1}, 0}, /* [g][w] */
    {"bind/rpzrecurse_ns3_policy.db", {0, 0, 0, 0, 1, 1}, {0, 2}, 0},
    {"bind/rpz_ns9_rpz.db", {3}, {0, 0, 3}, 0},
    {"bind/rpz_ns3_wild-cname.db.in", {0, 1}, {0, 0, 0, 0, 0, 0, 1}, 0}, /* [w] */
    {"bind/rpz_ns3_evil-cname.db.in", {1}, {0, 0, 0, 0, 0, 0, 1}, 0},
    {"bind/rpz_ns3_mixed-case-rpz-1.db.in", {1}, {0, 1}, 0},
    {"bind/rpz_ns3_outofzone.db.in", {2}, {0, 2}, 0}, /* no $ORIGIN: the apex is "." */
    {"bind/rpz_ns2_bl.tld2.db.in", {2, 0, 0, 1}, {0, 1, 0, 0, 0, 2}, 0},
    {"bind/rpz_ns6_bl.tld2s.db.in", {2, 0, 0, 2}, {0, 0, 0, 0, 0, 4}, 0}, /* [c] */
    {"unbound/rpz_clientip.zone", {0, 0, 7}, {0, 1, 1, 1, 1, 2, 0, 1}, 0},
    {"unbound/rpz_nsdname.zone", {0, 0, 0, 0, 7}, {0, 1, 1, 1, 1, 2, 0, 1}, 0},
    {"unbound/rpz_nsip.zone", {0, 0, 0, 0, 0, 7}, {0, 1, 1, 1, 1, 2, 0, 1}, 0},
    {"unbound/rpz_respip.zone", {0, 0, 0, 14}, {0, 2, 2, 2, 1, 5, 0, 2}, 0}, /* [u] */
    {"unbound/rpz_qname.zone", {10, 2}, {0, 2, 1, 1, 1, 3, 2, 2}, 1},	     /* [u] */
    {"unbound/rpz_rootwc.zone", {7, 3}, {0, 2, 1, 1, 0, 3, 2, 1}, 1},	     /* [u] */
};

static void test_real_zones(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		const struct expect *e = &real[i];
		char path[256];
		size_t len, bad = 0;
		struct cap c = {0}, all = {0};
		struct bw_parse_report rep;

		snprintf(path, sizeof(path), "tests/data/rpz/%s", e->file);
		char *buf = read_file(path, &len);
		/* [u]: one parse per zone */
		const char *sep = "\n; ---- zone file";
		size_t start = 0;
		while (start < len) {
			const char *next = strstr(buf + start + 1, sep);
			size_t end = next ? (size_t)(next - buf) + 1 : len;
			memset(&c, 0, sizeof(c));
			assert_int_equal(
			    bw_parse_rpz(buf + start, end - start, path, cap_sink, &c, &rep), 0);
			for (unsigned k = 0; k < rep.n_errors; k++)
				print_message("  %s\n", rep.first_errors[k]);
			bad += rep.bad;
			for (int k = 0; k < 6; k++)
				all.by_trig[k] += c.by_trig[k];
			for (int k = 0; k < 8; k++)
				all.by_act[k] += c.by_act[k];
			start = end;
		}
		print_message("%s: trig %zu %zu %zu %zu %zu %zu act %zu %zu %zu %zu %zu %zu %zu "
			      "bad %zu\n",
			      e->file, all.by_trig[0], all.by_trig[1], all.by_trig[2],
			      all.by_trig[3], all.by_trig[4], all.by_trig[5], all.by_act[1],
			      all.by_act[2], all.by_act[3], all.by_act[4], all.by_act[5],
			      all.by_act[6], all.by_act[7], bad);
		assert_memory_equal(all.by_trig, e->trig, sizeof(e->trig));
		assert_memory_equal(all.by_act, e->act, sizeof(e->act));
		assert_int_equal(bad, e->bad);
		free(buf);
	}
}

/* The urlhaus-filter RPZ excerpt (head -1011: 1,000 records) names the same hosts, in the
 * same order, as the first 1,000 entries of the hosts excerpt of the same list. */
static void test_urlhaus_equivalence(void **state)
{
	(void)state;
	size_t len, hlen, n = 0;
	char *buf = read_file("tests/data/rpz/urlhaus-filter_2025-07-19.head1011.rpz", &len);
	char *hosts = read_file("tests/data/urlhaus-filter_2025-07-19.hosts", &hlen);
	struct bw_parse_report rep;
	struct cap c = {.keep = true};

	assert_int_equal(bw_parse_rpz(buf, len, "urlhaus.rpz", cap_sink, &c, &rep), 0);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(c.n, 1000);
	assert_int_equal(c.by_trig[BW_TRIG_QNAME], 1000);
	assert_int_equal(c.by_act[BW_ACT_NXDOMAIN], 1000);
	char *p = hosts, *end = hosts + hlen;
	while (p < end && n < 1000) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (ll > 8 && memcmp(p, "0.0.0.0 ", 8) == 0) {
			char name[300];
			snprintf(name, sizeof(name), "%.*s.", (int)(ll - 8), p + 8);
			assert_string_equal(c.r[n].name, name);
			assert_int_equal(c.r[n].trigger, BW_TRIG_QNAME);
			n++;
		}
		p += ll + 1;
	}
	assert_int_equal(n, 1000);
	free(c.r);
	free(buf);
	free(hosts);
}

/* HaGeZi Pro++ mini (2026-08-15): 65,617 names, each as "name" and "*.name". */
static void test_hagezi_big(void **state)
{
	(void)state;
	/* the team's shared data: $BW_SHARED_DATA, else ../shared/data beside the checkout */
#ifndef SHARED
#define SHARED "../shared/data"
#endif
	const char *dirs[] = {getenv("BW_SHARED_DATA"), SHARED, "../shared/data"};
	char gz[512] = "", tmp[] = "/tmp/bw-rpz-XXXXXX", cmd[1200];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !gz[0]; i++) {
		if (!dirs[i])
			continue;
		snprintf(gz, sizeof(gz),
			 "%s/blocklists/hagezi/hagezi_pro.plus.mini_2026-08-15.rpz.gz", dirs[i]);
		if (access(gz, R_OK) != 0)
			gz[0] = 0;
	}
	if (!gz[0]) {
		print_message("skipped: %s not present\n", SHARED);
		return;
	}
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > '%s'", gz, tmp);
	assert_int_equal(system(cmd), 0);
	size_t len;
	char *buf = read_file(tmp, &len);
	unlink(tmp);

	struct bw_parse_report rep;
	struct cap c = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(bw_parse_rpz(buf, len, "hagezi.rpz", cap_sink, &c, &rep), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message(
	    "hagezi pro++ mini: %zu bytes, %lu lines, %zu rules (%zu qname, %zu wildcard), "
	    "%zu bad, parsed in %.1f ms\n",
	    len, rep.units, rep.rules, c.by_trig[BW_TRIG_QNAME], c.by_trig[BW_TRIG_WILDCARD],
	    rep.bad, ms);
	assert_int_equal(c.by_trig[BW_TRIG_QNAME], 65617);
	assert_int_equal(c.by_trig[BW_TRIG_WILDCARD], 65617);
	assert_int_equal(c.by_act[BW_ACT_NXDOMAIN], 131234);
	assert_int_equal(rep.rules, 131234);
	assert_int_equal(rep.bad, 0);
	free(buf);
}

/* ---- streaming: pieces of a file give what the whole file gives ---- */

/* Parses text as the snapshot builder reads a file: a buffer of `piece` bytes (grown when one
 * record does not fit), the rest of each feed passed again before what is read next. */
static int parse_pieces(const char *text, size_t len, size_t piece, const char *label,
			struct cap *c, struct bw_parse_report *rep)
{
	struct bw_rpz *z;
	size_t cap = piece, have = 0, off = 0;
	char *buf = malloc(cap);
	int rc;

	assert_non_null(buf);
	memset(c, 0, sizeof(*c));
	c->keep = true;
	assert_int_equal(bw_rpz_begin(&z, label, cap_sink, c, rep), 0);
	for (;;) {
		size_t n = len - off < cap - have ? len - off : cap - have, used;
		memcpy(buf + have, text + off, n);
		have += n;
		off += n;
		rc = bw_rpz_feed(z, buf, have, off == len, &used);
		if (rc || off == len)
			break;
		assert_true(used <= have);
		assert_true(used == 0 || buf[used - 1] == '\n');
		memmove(buf, buf + used, have - used);
		have -= used;
		if (have == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	bw_rpz_end(z);
	free(buf);
	return rc;
}

static void same_parse(const char *text, size_t len, size_t piece)
{
	struct bw_parse_report r1, r2;
	struct cap c1, c2;

	memset(&c1, 0, sizeof(c1));
	c1.keep = true;
	/* no label: nothing logged */
	assert_int_equal(bw_parse_rpz(text, len, NULL, cap_sink, &c1, &r1), 0);
	assert_int_equal(parse_pieces(text, len, piece, NULL, &c2, &r2), 0);
	assert_int_equal(c1.n, c2.n);
	for (size_t i = 0; i < c1.n; i++)
		assert_memory_equal(&c1.r[i], &c2.r[i], sizeof(c1.r[i]));
	assert_int_equal(r1.units, r2.units);
	assert_int_equal(r1.rules, r2.rules);
	assert_int_equal(r1.bad, r2.bad);
	assert_int_equal(r1.skipped, r2.skipped);
	assert_int_equal(r1.broken, r2.broken);
	assert_int_equal(r1.n_errors, r2.n_errors);
	for (unsigned k = 0; k < r1.n_errors; k++)
		assert_string_equal(r1.first_errors[k], r2.first_errors[k]);
	free(c1.r);
	free(c2.r);
}

static void test_stream(void **state)
{
	(void)state;
	/* state that must carry from piece to piece: $TTL, $ORIGIN, the apex, the owner of
	 * records without one, the line count, CRLF, quotes and comments holding "(" ";" */
	static const char z[] = "$TTL 120\n"
				"$ORIGIN rpz.test.\n"
				"@ IN SOA ns admin (\n"
				"  1 ; serial ( \"\n"
				"  3600 600 86400 60 )\n"
				"  NS ns\n"
				"a CNAME .\n"
				"  TXT \"q ( ; \\\" x\"\n" /* 8: conflict with the CNAME */
				"b 30 A 192.0.2.1\n"
				"  A 192.0.2.2 ; a comment with ( and \"\n"
				"c TXT ( \"multi\"\n"
				"  \"line\" )\n"
				"$TTL 77\r\n"
				"d CNAME rpz-drop.\r\n"
				"$ORIGIN sub.rpz.test.\n"
				"e CNAME .\n"
				"f A 1.2.3.4 )\n" /* fatal: restarted after */
				"g CNAME *.\n"
				"  A 192.0.2.9\n"
				"$ORIGIN rpz.test.\n"
				"a A 192.0.2.3\n" /* 21: conflict, far from the CNAME */
				"b A 192.0.2.4\n"
				"24.0.2.0.192.rpz-ip CNAME .\n"
				"i.j TXT \"semi;colon\" \"paren(\"\n"
				"k 5 CNAME rpz-passthru.\n"
				"l CNAME x.example.\n"
				"last CNAME .";
	size_t len = strlen(z);
	struct bw_parse_report rep;
	struct cap c;

	assert_int_equal(parse_pieces(z, len, 16, "t.rpz", &c, &rep), 0);
	assert_int_equal(rep.units, 27);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "b.")->n_rrs, 1);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "d.")->ttl, 77);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "e.sub.")->line, 16);
	assert_int_equal(find(&c, BW_TRIG_QNAME, "last.")->line, 27);
	assert_true(has_error(&rep, "t.rpz:8: CNAME and other data"));
	assert_true(has_error(&rep, "t.rpz:21: CNAME and other data"));
	free(c.r);
	for (size_t piece = 1; piece <= 64; piece++)
		same_parse(z, len, piece);
	same_parse(z, len, 4096);

	/* the real zones and the urlhaus excerpt, in small pieces */
	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		char path[256];
		size_t flen;
		snprintf(path, sizeof(path), "tests/data/rpz/%s", real[i].file);
		char *buf = read_file(path, &flen);
		same_parse(buf, flen, 8);
		same_parse(buf, flen, 100);
		free(buf);
	}
	size_t flen;
	char *buf = read_file("tests/data/rpz/urlhaus-filter_2025-07-19.head1011.rpz", &flen);
	same_parse(buf, flen, 333);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qname_actions),	 cmocka_unit_test(test_zone_syntax),
	    cmocka_unit_test(test_ip_triggers),		 cmocka_unit_test(test_nsdname),
	    cmocka_unit_test(test_out_of_zone_and_apex), cmocka_unit_test(test_no_soa),
	    cmocka_unit_test(test_syntax_errors_go_on),	 cmocka_unit_test(test_conflicts),
	    cmocka_unit_test(test_crlf_and_sink_abort),	 cmocka_unit_test(test_real_zones),
	    cmocka_unit_test(test_urlhaus_equivalence),	 cmocka_unit_test(test_hagezi_big),
	    cmocka_unit_test(test_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
