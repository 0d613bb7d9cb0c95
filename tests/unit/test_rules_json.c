/*
 * tests/unit/test_rules_json.c - the STIX 2.1 and MISP parsers as rule streams: pattern
 * grammar (OR, AND, FOLLOWEDBY, qualifiers, nesting, escapes), validity windows, URL
 * hosts, MISP flags and wrappers, broken input; real bundles and events from tests/data
 * with their counts; and the stalkerware-indicators cross-format check on the full files of
 * /work/shared/data when that copy is present. Run from the repository root.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/rules.h"

#ifndef SHARED
#define SHARED "/work/shared/data" /* -DSHARED=... to point elsewhere */
#endif
#define NOW 1780000000 /* 2026-05-28T20:26:40Z */

/* ---- what the sink saw ---- */

struct got {
	enum bw_trigger trig;
	char name[256]; /* text form, no trailing dot */
	char net[64];	/* "addr/prefix" */
	char ref[96];
	char title[96];
};

struct sink {
	struct got *r;
	size_t n, cap;
	int fail_at; /* return BW_ENOMEM on this call (1-based), 0: never */
};

static void wire_to_text(const uint8_t *w, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len && w[i]; i += 1u + w[i]) {
		if (o)
			out[o++] = '.';
		memcpy(out + o, w + i + 1, w[i]);
		o += w[i];
	}
	out[o] = '\0';
}

static int collect(void *ctx, const struct bw_rule *r)
{
	struct sink *s = ctx;
	struct got *g;

	if (s->fail_at && (int)s->n + 1 == s->fail_at)
		return BW_ENOMEM;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->r = realloc(s->r, s->cap * sizeof(*s->r));
		assert_non_null(s->r);
	}
	g = &s->r[s->n++];
	memset(g, 0, sizeof(*g));
	g->trig = r->trigger;
	assert_int_equal(r->action, BW_ACT_NXDOMAIN);
	assert_int_equal(r->line, 0);
	if (r->trigger == BW_TRIG_QNAME || r->trigger == BW_TRIG_WILDCARD) {
		assert_non_null(r->name);
		wire_to_text(r->name, r->name_len, g->name);
	} else {
		char a[INET6_ADDRSTRLEN];

		assert_int_equal(r->trigger, BW_TRIG_RESPONSE_IP);
		assert_non_null(inet_ntop(r->net.family, r->net.addr, a, sizeof(a)));
		snprintf(g->net, sizeof(g->net), "%s/%u", a, r->net.prefix);
	}
	if (r->ref)
		snprintf(g->ref, sizeof(g->ref), "%s", r->ref);
	if (r->title)
		snprintf(g->title, sizeof(g->title), "%s", r->title);
	return 0;
}

static void sink_reset(struct sink *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

/* Parses a NUL-terminated document; the sink is reset first. */
static int stix(struct sink *s, const char *doc, struct bw_parse_report *rep)
{
	sink_reset(s);
	return bw_parse_stix(doc, strlen(doc), NULL, NOW, collect, s, rep);
}

static int misp(struct sink *s, const char *doc, struct bw_parse_report *rep)
{
	sink_reset(s);
	return bw_parse_misp(doc, strlen(doc), NULL, false, collect, s, rep);
}

/* A one-indicator bundle around `pattern` (a JSON string body) and extra members. */
static int stix1(struct sink *s, const char *pattern, const char *extra,
		 struct bw_parse_report *rep)
{
	char doc[4096];
	int rc;

	snprintf(doc, sizeof(doc),
		 "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[{\"type\":\"indicator\","
		 "\"id\":\"indicator--1\",\"name\":\"test\",\"pattern\":\"%s\","
		 "\"pattern_type\":\"stix\",\"valid_from\":\"2020-01-01T00:00:00Z\"%s}]}",
		 pattern, extra ? extra : "");
	rc = stix(s, doc, rep);
	assert_false(rep->broken);
	return rc;
}

static bool has_name(const struct sink *s, enum bw_trigger t, const char *name)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].trig == t && !strcmp(s->r[i].name, name))
			return true;
	}
	return false;
}

static bool has_net(const struct sink *s, const char *net)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].trig == BW_TRIG_RESPONSE_IP && !strcmp(s->r[i].net, net))
			return true;
	}
	return false;
}

static bool has_domain(const struct sink *s, const char *name)
{
	return has_name(s, BW_TRIG_QNAME, name) && has_name(s, BW_TRIG_WILDCARD, name);
}

static size_t count_trig(const struct sink *s, enum bw_trigger t)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->r[i].trig == t;
	return n;
}

/* ---- STIX patterns ---- */

static void test_stix_or(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	assert_int_equal(stix1(&s,
			       "[domain-name:value = 'A.Example.' OR ipv4-addr:value = "
			       "'192.0.2.1' OR ipv6-addr:value = '2001:DB8::1']",
			       NULL, &rep),
			 0);
	assert_int_equal(s.n, 4);
	assert_true(has_domain(&s, "a.example"));
	assert_true(has_net(&s, "192.0.2.1/32"));
	assert_true(has_net(&s, "2001:db8::1/128"));
	assert_int_equal(rep.units, 1);
	assert_int_equal(rep.rules, 4);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(rep.skipped, 0);
	assert_false(rep.broken);
	assert_string_equal(s.r[0].ref, "indicator--1");
	assert_string_equal(s.r[0].title, "test");

	/* observations joined by OR, no spaces */
	stix1(&s, "[domain-name:value='a.example']OR[domain-name:value='b.example']", NULL, &rep);
	assert_int_equal(s.n, 4);
	assert_true(has_domain(&s, "b.example"));
	sink_reset(&s);
}

static void test_stix_and(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	stix1(&s, "[domain-name:value = 'a.example' AND url:value = 'http://b.example/']", NULL,
	      &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 2);
	assert_int_equal(rep.bad, 0);

	stix1(&s, "[domain-name:value = 'a.example'] AND [domain-name:value = 'b.example']", NULL,
	      &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 2);

	stix1(&s, "[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b.example']",
	      NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 2);

	/* OR inside, AND outside: nothing usable */
	stix1(&s,
	      "[(domain-name:value='a.example' OR domain-name:value='b.example') AND "
	      "file:name='x']",
	      NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 3);

	/* AND inside, OR outside: the lone side is usable */
	stix1(&s,
	      "[domain-name:value='a.example' OR (domain-name:value='b.example' AND "
	      "file:name='x')]",
	      NULL, &rep);
	assert_int_equal(s.n, 2);
	assert_true(has_domain(&s, "a.example"));
	assert_int_equal(rep.skipped, 2);

	/* AND binds tighter than OR */
	stix1(&s,
	      "[domain-name:value='a.example' AND file:name='x' OR domain-name:value='c.example']",
	      NULL, &rep);
	assert_int_equal(s.n, 2);
	assert_true(has_domain(&s, "c.example"));
	assert_int_equal(rep.skipped, 2);
	sink_reset(&s);
}

static void test_stix_nested(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;
	char deep[1024];
	size_t o = 0;

	(void)state;
	stix1(&s,
	      "(([domain-name:value='a.example'] OR [domain-name:value='b.example']) OR "
	      "([ipv6-addr:value='2001:db8::1'] AND [domain-name:value='c.example']))",
	      NULL, &rep);
	assert_int_equal(s.n, 4);
	assert_true(has_domain(&s, "a.example"));
	assert_true(has_domain(&s, "b.example"));
	assert_false(has_domain(&s, "c.example"));
	assert_int_equal(rep.skipped, 2);
	assert_int_equal(rep.bad, 0);

	stix1(&s, "[((domain-name:value='a.example'))]", NULL, &rep);
	assert_int_equal(s.n, 2);

	/* too deep: bad, not a crash */
	for (int i = 0; i < 200; i++)
		deep[o++] = '(';
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "[domain-name:value='a.example']");
	for (int i = 0; i < 200 && o < sizeof(deep) - 1; i++)
		deep[o++] = ')';
	deep[o] = '\0';
	stix1(&s, deep, NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.bad, 1);
	sink_reset(&s);
}

static void test_stix_escapes(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	/* C "\\\\'" is JSON \\' is pattern \' ; C "\\\\\\\\" is JSON \\\\ is pattern \\ */
	stix1(&s,
	      "[url:value = 'http://evil.example/it\\\\'s\\\\\\\\x' OR domain-name:value = "
	      "'b.example']",
	      NULL, &rep);
	assert_false(rep.broken);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(s.n, 4);
	assert_true(has_domain(&s, "evil.example"));

	/* an escaped quote inside a name is a bad value, the pattern itself is fine */
	stix1(&s, "[domain-name:value = 'it\\\\'s.example' OR domain-name:value = 'b.example']",
	      NULL, &rep);
	assert_int_equal(rep.bad, 1);
	assert_int_equal(s.n, 2);
	assert_non_null(strstr(rep.first_errors[0], "indicator--1"));
	assert_non_null(strstr(rep.first_errors[0], "it's.example"));

	/* only \' and \\ are escapes */
	stix1(&s, "[domain-name:value = 'a\\\\x.example']", NULL, &rep);
	assert_false(rep.broken);
	assert_int_equal(rep.bad, 1);
	assert_int_equal(s.n, 0);
	assert_non_null(strstr(rep.first_errors[0], "invalid escape"));
	sink_reset(&s);
}

static void test_stix_operators(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	stix1(&s, "[domain-name:value IN ('a.example', 'b.example')]", NULL, &rep);
	assert_int_equal(s.n, 4);
	stix1(&s, "[domain-name:value NOT = 'a.example']", NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s,
	      "[domain-name:value != 'a.example' OR domain-name:value LIKE '%.example' OR "
	      "domain-name:value MATCHES '^a' OR domain-name:value = 'ok.example']",
	      NULL, &rep);
	assert_int_equal(s.n, 2);
	assert_int_equal(rep.skipped, 3);
	stix1(&s, "[ipv4-addr:value ISSUBSET '198.51.100.0/24' OR ipv4-addr:value = '10.1.2.3/8']",
	      NULL, &rep);
	assert_true(has_net(&s, "198.51.100.0/24"));
	assert_true(has_net(&s, "10.0.0.0/8"));
	stix1(&s, "[ipv4-addr:value = '10.1.2.3/33' OR ipv4-addr:value = '300.1.1.1']", NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.bad, 2);
	/* non-network objects, custom objects, quoted keys, list indexes, EXISTS */
	stix1(&s,
	      "[file:hashes.'SHA-256' = 'abc' OR app:id = 'com.x' OR process:name = 'x' OR "
	      "network-traffic:dst_ref.value = '1.2.3.4' OR "
	      "email-message:to_refs[*].value = 'a@b.example' OR EXISTS x-foo:bar[0] OR "
	      "file:size > 10 OR file:x = true]",
	      NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 8);
	assert_int_equal(rep.bad, 0);
	sink_reset(&s);
}

static void test_stix_qualifiers(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	stix1(&s, "[domain-name:value = 'a.example'] WITHIN 300 SECONDS", NULL, &rep);
	assert_int_equal(s.n, 2);
	stix1(&s, "[domain-name:value = 'a.example'] REPEATS 5 TIMES", NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s,
	      "[domain-name:value = 'a.example'] START t'2000-01-01T00:00:00Z' STOP "
	      "t'2100-01-01T00:00:00Z'",
	      NULL, &rep);
	assert_int_equal(s.n, 2);
	stix1(&s,
	      "[domain-name:value = 'a.example'] START t'2000-01-01T00:00:00Z' STOP "
	      "t'2001-01-01T00:00:00Z' OR [domain-name:value = 'b.example']",
	      NULL, &rep);
	assert_int_equal(s.n, 2);
	assert_true(has_domain(&s, "b.example"));
	assert_int_equal(rep.skipped, 1);
	stix1(&s,
	      "([domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']) "
	      "REPEATS 2 TIMES WITHIN 10 SECONDS",
	      NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 2);
	stix1(&s, "[domain-name:value = 'a.example'] START t'bad' STOP t'2001-01-01T00:00:00Z'",
	      NULL, &rep);
	assert_int_equal(rep.bad, 1);
	sink_reset(&s);
}

static void test_stix_malformed(void **state)
{
	static const char *const bad_patterns[] = {
	    "[domain-name:value = 'a.example'",
	    "domain-name:value = 'a.example'",
	    "[domain-name:value = 'a.example]",
	    "[]",
	    "",
	    "[domain-name:value = 'a.example'] OR",
	    "[domain-name:value 'a.example']",
	    "[domain-name = 'a.example']",
	    "[domain-name:value = 'a.example'] junk",
	    "[domain-name:value IN ('a.example', ]",
	    "[file:hashes[x] = 'a']",
	    "[domain-name:value = 'a.example'] REPEATS TIMES",
	};
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_patterns) / sizeof(bad_patterns[0]); i++) {
		stix1(&s, bad_patterns[i], NULL, &rep);
		if (rep.bad != 1 || s.n != 0)
			fail_msg("pattern accepted: %s", bad_patterns[i]);
		assert_int_equal(rep.units, 1);
		assert_false(rep.broken);
		assert_non_null(strstr(rep.first_errors[0], "indicator--1: pattern: "));
	}
	/* no pattern at all */
	stix(&s, "{\"type\":\"indicator\",\"id\":\"indicator--2\"}", &rep);
	assert_int_equal(rep.bad, 1);
	sink_reset(&s);
}

static void test_stix_validity(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	/* valid_until in the past (also exactly now), revoked, valid_from in the future */
	stix1(&s, "[domain-name:value='a.example']",
	      ",\"valid_until\":\"2021-07-18T00:00:00.000Z\"", &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s, "[domain-name:value='a.example']",
	      ",\"valid_until\":\"2026-05-28T22:26:40+02:00\"", &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s, "[domain-name:value='a.example']",
	      ",\"valid_until\":\"2026-05-28T22:26:41+02:00\"", &rep);
	assert_int_equal(s.n, 2);
	stix1(&s, "[domain-name:value='a.example']", ",\"revoked\":true", &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s, "[domain-name:value='a.example']", ",\"revoked\":false", &rep);
	assert_int_equal(s.n, 2);
	stix(&s,
	     "{\"type\":\"indicator\",\"id\":\"indicator--3\",\"pattern\":\"[domain-name:value="
	     "'a.example']\",\"valid_from\":\"2099-12-31T23:59:59.123456Z\"}",
	     &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.skipped, 1);
	stix1(&s, "[domain-name:value='a.example']", ",\"valid_until\":\"2021-02-30T00:00:00Z\"",
	      &rep);
	assert_int_equal(rep.bad, 1);
	stix1(&s, "[domain-name:value='a.example']", ",\"valid_until\":\"yesterday\"", &rep);
	assert_int_equal(rep.bad, 1);
	stix1(&s, "[domain-name:value='a.example']", ",\"valid_until\":\"2100-01-01T00:00:00\"",
	      &rep);
	assert_int_equal(rep.bad, 1);
	/* other pattern languages are skipped; pattern_type may be absent */
	stix(&s,
	     "[{\"type\":\"indicator\",\"pattern_type\":\"snort\",\"pattern\":\"alert tcp any\"},"
	     "{\"type\":\"indicator\",\"pattern\":\"[domain-name:value='a.example']\"}]",
	     &rep);
	assert_int_equal(rep.units, 2);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.r[0].ref, "");
	sink_reset(&s);
}

static void test_stix_url_hosts(void **state)
{
	static const struct {
		const char *url, *host, *net;
	} cases[] = {
	    {"http://user:pw@Host.Example:8080/p?q#f", "host.example", NULL},
	    {"https://evil.example", "evil.example", NULL},
	    {"evil.example/path/x.php", "evil.example", NULL},
	    {"evil.example:443", "evil.example", NULL},
	    {"//evil.example/x", "evil.example", NULL},
	    {"hxxps://evil.example/x", "evil.example", NULL},
	    {"http://evil.example./", "evil.example", NULL},
	    {"https://[::1]:8080/x", NULL, "::1/128"},
	    {"http://[2001:db8::5]/", NULL, "2001:db8::5/128"},
	    {"http://192.0.2.7/x", NULL, "192.0.2.7/32"},
	    {"192.0.2.8:80/x", NULL, "192.0.2.8/32"},
	    {"ftp://a@b@files.example/", "files.example", NULL},
	};
	static const char *const bad_urls[] = {"http:///nohost", "http://[::1/", "http://[nope]/",
					       "http://bad host.example/", "http://"};
	struct sink s = {0};
	struct bw_parse_report rep;
	char pat[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(pat, sizeof(pat), "[url:value = '%s']", cases[i].url);
		stix1(&s, pat, NULL, &rep);
		if (rep.bad)
			fail_msg("%s: %s", cases[i].url, rep.first_errors[0]);
		if (cases[i].host) {
			assert_int_equal(s.n, 2);
			if (!has_domain(&s, cases[i].host))
				fail_msg("%s: got %s", cases[i].url, s.r[0].name);
		} else {
			assert_int_equal(s.n, 1);
			if (!has_net(&s, cases[i].net))
				fail_msg("%s: got %s", cases[i].url, s.r[0].net);
		}
	}
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		snprintf(pat, sizeof(pat), "[url:value = '%s']", bad_urls[i]);
		stix1(&s, pat, NULL, &rep);
		if (rep.bad != 1 || s.n != 0)
			fail_msg("accepted: %s", bad_urls[i]);
	}
	sink_reset(&s);
}

static void test_stix_domains(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	stix1(&s, "[domain-name:value = '*.wild.example']", NULL, &rep);
	assert_int_equal(s.n, 1);
	assert_true(has_name(&s, BW_TRIG_WILDCARD, "wild.example"));
	stix1(&s, "[domain-name:value = '192.0.2.9']", NULL, &rep);
	assert_true(has_net(&s, "192.0.2.9/32"));
	stix1(&s,
	      "[domain-name:value = 'b\\u00fccher.example' OR domain-name:value = '' OR "
	      "domain-name:value = 'a..example' OR domain-name:value = "
	      "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example']",
	      NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.bad, 4);
	assert_int_equal(rep.n_errors, 4);

	/* a domain written with a path or a port: its host is blocked (was: bad, resolved) */
	static const struct {
		const char *val, *host;
	} with_path[] = {
	    {"host.example/x", "host.example"},	     {"Host.Example:8080/x/y", "host.example"},
	    {"host.example:8080", "host.example"},   {"host.example/", "host.example"},
	    {"host.example?q=1", "host.example"},    {"http://host.example/x", "host.example"},
	    {"user@host.example/x", "host.example"},
	};
	char pat[256];
	for (size_t i = 0; i < sizeof(with_path) / sizeof(with_path[0]); i++) {
		snprintf(pat, sizeof(pat), "[domain-name:value = '%s']", with_path[i].val);
		stix1(&s, pat, NULL, &rep);
		if (rep.bad || s.n != 2 || !has_domain(&s, with_path[i].host))
			fail_msg("%s: %zu rules, %zu bad", with_path[i].val, s.n, rep.bad);
	}
	stix1(&s, "[domain-name:value = '*.wild.example/x']", NULL, &rep);
	assert_int_equal(s.n, 1);
	assert_true(has_name(&s, BW_TRIG_WILDCARD, "wild.example"));
	stix1(&s, "[domain-name:value = '192.0.2.9:80/x']", NULL, &rep);
	assert_int_equal(s.n, 1);
	assert_true(has_net(&s, "192.0.2.9/32"));
	/* an IPv6 address is not host:port; a value with no host stays bad */
	stix1(&s, "[domain-name:value = '2001:db8::9']", NULL, &rep);
	assert_true(has_net(&s, "2001:db8::9/128"));
	stix1(&s, "[domain-name:value = '/x' OR domain-name:value = ':80']", NULL, &rep);
	assert_int_equal(s.n, 0);
	assert_int_equal(rep.bad, 2);
	/* MISP domain attributes go the same way */
	misp(&s,
	     "{\"Event\":{\"info\":\"e\",\"Attribute\":[{\"type\":\"domain\",\"value\":"
	     "\"misp.example:443/login\",\"to_ids\":true}]}}",
	     &rep);
	assert_int_equal(s.n, 2);
	assert_true(has_domain(&s, "misp.example"));
	sink_reset(&s);
}

static void test_stix_shapes(void **state)
{
	static const char *const broken[] = {
	    "not json",
	    "",
	    "42",
	    "\"bundle\"",
	    "{\"foo\":1}",
	    "{\"type\":\"bundle\",\"objects\":5}",
	    "{\"type\":\"bundle\"}",
	    "[{\"type\":\"indicator\"",
	};
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	/* a bare array, one object, a TAXII envelope; other SDOs ignored; junk elements bad */
	stix(&s,
	     "[{\"type\":\"malware\",\"name\":\"x\"},{\"type\":\"indicator\",\"pattern\":"
	     "\"[domain-name:value='a.example']\"}, 5, {\"no\":\"type\"}]",
	     &rep);
	assert_int_equal(rep.units, 1);
	assert_int_equal(rep.rules, 2);
	assert_int_equal(rep.bad, 2);
	assert_false(rep.broken);
	stix(&s, "{\"type\":\"indicator\",\"pattern\":\"[domain-name:value='a.example']\"}", &rep);
	assert_int_equal(rep.rules, 2);
	stix(&s, "{\"type\":\"malware\",\"name\":\"x\"}", &rep);
	assert_int_equal(rep.units, 0);
	assert_false(rep.broken);
	stix(&s,
	     "{\"more\":false,\"objects\":[{\"type\":\"indicator\",\"pattern\":"
	     "\"[domain-name:value='a.example']\"}]}",
	     &rep);
	assert_int_equal(rep.rules, 2);
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		assert_int_equal(stix(&s, broken[i], &rep), 0);
		if (!rep.broken)
			fail_msg("not broken: %s", broken[i]);
		assert_int_equal(s.n, 0);
	}
	/* NUL inside a string does not break the document */
	stix(&s,
	     "[{\"type\":\"indicator\",\"description\":\"a\\u0000b\",\"pattern\":"
	     "\"[domain-name:value='a.example']\"}]",
	     &rep);
	assert_false(rep.broken);
	assert_int_equal(rep.rules, 2);
	sink_reset(&s);
}

static void test_stix_sink_error(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;
	const char *doc =
	    "[{\"type\":\"indicator\",\"pattern\":\"[domain-name:value='a.example' OR "
	    "domain-name:value='b.example']\"}]";

	(void)state;
	s.fail_at = 3;
	assert_int_equal(bw_parse_stix(doc, strlen(doc), NULL, NOW, collect, &s, &rep), BW_ENOMEM);
	assert_int_equal(rep.rules, 2);
	sink_reset(&s);
	s.fail_at = 1;
	doc = "{\"Event\":{\"Attribute\":[{\"type\":\"domain\",\"value\":\"a.example\","
	      "\"to_ids\":true}]}}";
	assert_int_equal(bw_parse_misp(doc, strlen(doc), NULL, false, collect, &s, &rep), BW_ENOMEM);
	sink_reset(&s);
}

/* ---- MISP ---- */

static void test_misp_flags(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	misp(&s,
	     "{\"Event\":{\"info\":\"ev\",\"Attribute\":["
	     "{\"uuid\":\"u1\",\"type\":\"domain\",\"value\":\"t1.example\",\"to_ids\":true},"
	     "{\"uuid\":\"u2\",\"type\":\"domain\",\"value\":\"t2.example\",\"to_ids\":\"1\"},"
	     "{\"uuid\":\"u3\",\"type\":\"domain\",\"value\":\"t3.example\",\"to_ids\":1},"
	     "{\"uuid\":\"u4\",\"type\":\"domain\",\"value\":\"t4.example\",\"to_ids\":\"true\"},"
	     "{\"uuid\":\"f1\",\"type\":\"domain\",\"value\":\"f1.example\",\"to_ids\":false},"
	     "{\"uuid\":\"f2\",\"type\":\"domain\",\"value\":\"f2.example\",\"to_ids\":\"0\"},"
	     "{\"uuid\":\"f3\",\"type\":\"domain\",\"value\":\"f3.example\",\"to_ids\":0},"
	     "{\"uuid\":\"f4\",\"type\":\"domain\",\"value\":\"f4.example\"},"
	     "{\"uuid\":\"f5\",\"type\":\"domain\",\"value\":\"f5.example\",\"to_ids\":true,"
	     "\"deleted\":true},"
	     "{\"uuid\":\"f6\",\"type\":\"domain\",\"value\":\"f6.example\",\"to_ids\":true,"
	     "\"deleted\":\"1\"},"
	     "{\"uuid\":\"u5\",\"type\":\"domain\",\"value\":\"t5.example\",\"to_ids\":true,"
	     "\"deleted\":false}]}}",
	     &rep);
	assert_int_equal(rep.units, 11);
	assert_int_equal(rep.skipped, 6);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(s.n, 10);
	for (int i = 1; i <= 5; i++) {
		char n[32];

		snprintf(n, sizeof(n), "t%d.example", i);
		assert_true(has_domain(&s, n));
	}
	assert_string_equal(s.r[0].ref, "u1");
	assert_string_equal(s.r[0].title, "ev");
	assert_int_equal(rep.no_ids_events, 0);
	sink_reset(&s);
}

/* An export without the IDS flags: no rules, but never silently (misp-include-non-ids). */
static void test_misp_non_ids(void **state)
{
	static const char doc[] =
	    "{\"response\":["
	    /* only to_ids false: said */
	    "{\"Event\":{\"info\":\"no ids\",\"Attribute\":["
	    "{\"type\":\"domain\",\"value\":\"a.example\",\"to_ids\":false},"
	    "{\"type\":\"md5\",\"value\":\"00\",\"to_ids\":false}],"
	    "\"Object\":[{\"Attribute\":[{\"type\":\"url\",\"value\":\"http://b.example/x\"}]}]}},"
	    /* one attribute with to_ids, unusable: not "only because of to_ids" */
	    "{\"Event\":{\"info\":\"bad ids\",\"Attribute\":["
	    "{\"type\":\"domain\",\"value\":\"bad name\",\"to_ids\":true},"
	    "{\"type\":\"domain\",\"value\":\"c.example\",\"to_ids\":false}]}},"
	    /* nothing blockable at all: nothing to say */
	    "{\"Event\":{\"info\":\"hashes\",\"Attribute\":["
	    "{\"type\":\"sha256\",\"value\":\"00\",\"to_ids\":false}]}},"
	    /* rules from to_ids, the rest without: fine */
	    "{\"Event\":{\"info\":\"mixed\",\"Attribute\":["
	    "{\"type\":\"domain\",\"value\":\"d.example\",\"to_ids\":true},"
	    "{\"type\":\"ip-dst\",\"value\":\"192.0.2.1\",\"to_ids\":false}]}}]}";
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	misp(&s, doc, &rep);
	assert_int_equal(rep.no_ids_events, 1);
	assert_int_equal(s.n, 2);
	assert_true(has_domain(&s, "d.example"));
	assert_int_equal(rep.units, 8);
	assert_int_equal(rep.skipped, 6);
	assert_int_equal(rep.bad, 1);

	sink_reset(&s);
	assert_int_equal(bw_parse_misp(doc, strlen(doc), NULL, true, collect, &s, &rep), 0);
	assert_int_equal(rep.no_ids_events, 0);
	assert_true(has_domain(&s, "a.example"));
	assert_true(has_domain(&s, "b.example"));
	assert_true(has_domain(&s, "c.example"));
	assert_true(has_domain(&s, "d.example"));
	assert_true(has_net(&s, "192.0.2.1/32"));
	assert_int_equal(s.n, 9);
	assert_int_equal(rep.skipped, 2); /* the hashes */
	assert_int_equal(rep.bad, 1);
	sink_reset(&s);
}

static void test_misp_types(void **state)
{
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	misp(&s,
	     "{\"Event\":{\"info\":\"ev\",\"Attribute\":["
	     "{\"type\":\"hostname\",\"value\":\"h.example\",\"to_ids\":true},"
	     "{\"type\":\"url\",\"value\":\"https://u.example:8443/x\",\"to_ids\":true},"
	     "{\"type\":\"url\",\"value\":\"http://[2001:db8::7]:8080/\",\"to_ids\":true},"
	     "{\"type\":\"domain|ip\",\"value\":\"d.example|192.0.2.3\",\"to_ids\":true},"
	     "{\"type\":\"ip-dst\",\"value\":\"198.51.100.0/24\",\"to_ids\":true},"
	     "{\"type\":\"ip-dst|port\",\"value\":\"203.0.113.9|443\",\"to_ids\":true},"
	     "{\"type\":\"ip-src\",\"value\":\"203.0.113.10\",\"to_ids\":true},"
	     "{\"type\":\"sha256\",\"value\":\"abcd\",\"to_ids\":true},"
	     "{\"type\":\"domain\",\"value\":\"bad name.example\",\"to_ids\":true},"
	     "{\"type\":\"domain|ip\",\"value\":\"nobar.example\",\"to_ids\":true},"
	     "{\"type\":\"domain|ip\",\"value\":\"half.example|999.1.1.1\",\"to_ids\":true},"
	     "{\"type\":\"domain\",\"to_ids\":true}"
	     "]}}",
	     &rep);
	assert_int_equal(rep.units, 12);
	assert_int_equal(rep.skipped, 2);
	assert_int_equal(rep.bad, 4);
	assert_true(has_domain(&s, "h.example"));
	assert_true(has_domain(&s, "u.example"));
	assert_true(has_net(&s, "2001:db8::7/128"));
	assert_true(has_domain(&s, "d.example"));
	assert_true(has_net(&s, "192.0.2.3/32"));
	assert_true(has_net(&s, "198.51.100.0/24"));
	assert_true(has_net(&s, "203.0.113.9/32"));
	assert_false(has_net(&s, "203.0.113.10/32"));
	assert_true(has_domain(&s, "half.example"));
	assert_int_equal(s.n, 2 + 2 + 1 + 3 + 1 + 1 + 2);
	assert_int_equal(rep.rules, s.n);
	sink_reset(&s);
}

static void test_misp_shapes(void **state)
{
	static const char *const broken[] = {
	    "not json", "", "42", "{\"foo\":1}", "{\"response\":5}", "{\"Event\":[]}", "null",
	};
	struct sink s = {0};
	struct bw_parse_report rep;

	(void)state;
	/* API export with two events; attributes inside objects; deleted object */
	misp(&s,
	     "{\"response\":[{\"Event\":{\"info\":\"one\",\"Attribute\":[{\"type\":\"domain\","
	     "\"value\":\"one.example\",\"to_ids\":true}]}},{\"Event\":{\"info\":\"two\","
	     "\"Object\":[{\"name\":\"domain-ip\",\"Attribute\":[{\"type\":\"domain\",\"value\":"
	     "\"two.example\",\"to_ids\":true}]},{\"deleted\":true,\"Attribute\":[{\"type\":"
	     "\"domain\",\"value\":\"gone.example\",\"to_ids\":true}]}]}}]}",
	     &rep);
	assert_int_equal(rep.units, 3);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(s.n, 4);
	assert_true(has_domain(&s, "one.example"));
	assert_true(has_domain(&s, "two.example"));
	assert_string_equal(s.r[0].title, "one");
	assert_string_equal(s.r[2].title, "two");
	/* a bare array of events, wrapped or not, and a junk element */
	misp(&s,
	     "[{\"Event\":{\"Attribute\":[{\"type\":\"domain\",\"value\":\"a.example\","
	     "\"to_ids\":true}]}},{\"info\":\"bare\",\"Attribute\":[{\"type\":\"domain\","
	     "\"value\":\"b.example\",\"to_ids\":true}]}, 7]",
	     &rep);
	assert_int_equal(s.n, 4);
	assert_int_equal(rep.bad, 1);
	assert_string_equal(s.r[0].title, "");
	assert_string_equal(s.r[2].title, "bare");
	/* a bare event at the top */
	misp(&s, "{\"info\":\"x\",\"Attribute\":[]}", &rep);
	assert_false(rep.broken);
	assert_int_equal(rep.units, 0);
	/* Attribute not an array, attribute not an object */
	misp(&s, "{\"Event\":{\"Attribute\":{\"type\":\"domain\"}}}", &rep);
	assert_int_equal(rep.bad, 1);
	misp(&s, "{\"Event\":{\"Attribute\":[1,\"x\"],\"Object\":[3]}}", &rep);
	assert_int_equal(rep.bad, 3);
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		assert_int_equal(misp(&s, broken[i], &rep), 0);
		if (!rep.broken)
			fail_msg("not broken: %s", broken[i]);
	}
	sink_reset(&s);
}

/* ---- real data ---- */

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* Reads a file; ".gz" files through gzip -dc into a temporary file. */
static char *read_data(const char *path, size_t *len)
{
	size_t pl = strlen(path);
	char tmp[] = "/tmp/bw-test-json-XXXXXX", cmd[1024];
	char *buf;
	int fd;

	if (pl < 3 || strcmp(path + pl - 3, ".gz") != 0)
		return read_all(path, len);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > '%s'", path, tmp);
	assert_int_equal(system(cmd), 0);
	buf = read_all(tmp, len);
	unlink(tmp);
	close(fd);
	return buf;
}

typedef int (*json_parse_fn)(const char *buf, size_t len, struct sink *s,
			     struct bw_parse_report *rep);

static int run_stix(const char *buf, size_t len, struct sink *s, struct bw_parse_report *rep)
{
	return bw_parse_stix(buf, len, NULL, NOW, collect, s, rep);
}

static int run_misp(const char *buf, size_t len, struct sink *s, struct bw_parse_report *rep)
{
	return bw_parse_misp(buf, len, NULL, false, collect, s, rep);
}

struct expect {
	const char *path;
	json_parse_fn parse;
	unsigned long units;
	size_t rules, qname, ip, bad, skipped, distinct;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct QNAME names of a parse, sorted (pointers into s). */
static char **names_of(const struct sink *s, size_t *n)
{
	char **v = calloc(s->n + 1, sizeof(*v));
	size_t k = 0, u = 0;

	assert_non_null(v);
	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].trig == BW_TRIG_QNAME)
			v[k++] = s->r[i].name;
	}
	qsort(v, k, sizeof(*v), cmp_str);
	for (size_t i = 0; i < k; i++) {
		if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
			v[u++] = v[i];
	}
	*n = u;
	return v;
}

static void check_file(const struct expect *e, struct sink *s)
{
	struct bw_parse_report rep;
	size_t len, nd;
	char *buf = read_data(e->path, &len);
	char **names;

	if (!buf)
		fail_msg("cannot read %s", e->path);
	sink_reset(s);
	assert_int_equal(e->parse(buf, len, s, &rep), 0);
	free(buf);
	names = names_of(s, &nd);
	free(names);
	printf("  %s: units %lu rules %zu (qname %zu, ip %zu) bad %zu skipped %zu distinct %zu\n",
	       e->path, rep.units, rep.rules, count_trig(s, BW_TRIG_QNAME),
	       count_trig(s, BW_TRIG_RESPONSE_IP), rep.bad, rep.skipped, nd);
	assert_false(rep.broken);
	assert_int_equal(rep.units, e->units);
	assert_int_equal(rep.rules, e->rules);
	assert_int_equal(s->n, e->rules);
	assert_int_equal(count_trig(s, BW_TRIG_QNAME), e->qname);
	assert_int_equal(count_trig(s, BW_TRIG_WILDCARD), e->qname);
	assert_int_equal(count_trig(s, BW_TRIG_RESPONSE_IP), e->ip);
	assert_int_equal(rep.bad, e->bad);
	assert_int_equal(rep.skipped, e->skipped);
	assert_int_equal(nd, e->distinct);
}

/*
 * Expected counts, from the shared README's per-file term counts:
 *  poisonivy: 25 domain-name terms (one is 'domain autuo.xicp.net', not a name: bad), 40
 *    ipv4-addr terms, 2 file terms (skipped), all joined by OR;
 *  apt1: 3 domain-name, 4 ipv4-addr (/15 CIDRs), 3 file, 4 x509 (two AND pairs): skipped 7;
 *  migros: 359 url terms: 352 host names (257 distinct), 7 bare IPv4 addresses (the README's
 *    264 distinct hosts);
 *  glupteba: 270 domain + 4 domain|ip (274 names, 272 distinct; 4 IPs) + 40 ip-dst, 7
 *    other (filename|sha1, regkey) skipped.
 */
static void test_real_local(void **state)
{
	static const struct expect files[] = {
	    {"tests/data/stix/oasis_poisonivy.json", run_stix, 25, 88, 24, 40, 1, 2, 24},
	    {"tests/data/stix/oasis_apt1.json", run_stix, 12, 10, 3, 4, 0, 7, 3},
	    {"tests/data/stix/oasis_indicator-for-malicious-url.json", run_stix, 1, 2, 1, 0, 0, 0,
	     1},
	    {"tests/data/stix/migros-threat-feed_2026-01-22.stix.json", run_stix, 359, 711, 352, 7,
	     0, 0, 257},
	    {"tests/data/misp/eset_glupteba.misp-event.json", run_misp, 321, 592, 274, 44, 0, 7,
	     272},
	};
	struct sink s = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		check_file(&files[i], &s);
	sink_reset(&s);
}

static bool have_shared(void)
{
	static bool said;
	struct stat st;

	if (stat(SHARED "/README.md", &st) == 0)
		return true;
	if (!said)
		printf("skipped: " SHARED " not present\n");
	said = true;
	return false;
}

/*
 * Full bundles: stalkerware 1,447 domain-name terms (1,300 distinct), the rest file and
 * app: patterns; one domain-name value is an IP literal ('178.63.71.15'), which becomes a
 * RESPONSE_IP rule here, so 1,446 names (1,299 distinct) and 1 address; amnesty 1,438 domain-name
 * terms + 111 process/email/file; mvt 569 + 16; stalkerware MISP 922 to_ids domain attributes (913
 * distinct) of 5,522.
 */
static void test_real_shared(void **state)
{
	static const struct expect files[] = {
	    {SHARED "/stix/stalkerware-indicators_2023-05-31.stix2.json.gz", run_stix, 5046, 2893,
	     1446, 1, 0, 3599, 1299},
	    {SHARED "/stix/amnesty_nso-pegasus_2021-07-18.stix2.json.gz", run_stix, 1549, 2876,
	     1438, 0, 0, 111, 1438},
	    {SHARED "/stix/mvt_intellexa-predator.stix2.json", run_stix, 585, 1138, 569, 0, 0, 16,
	     569},
	    {SHARED "/misp/stalkerware-indicators_2023-05-31.misp-event.json.gz", run_misp, 5522,
	     1844, 922, 0, 0, 4600, 913},
	};
	struct sink s = {0};

	(void)state;
	if (!have_shared())
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		check_file(&files[i], &s);
	sink_reset(&s);
}

/* Is every name of `sub` in `super` (both sorted, distinct)? */
static size_t missing(char **sub, size_t nsub, char **super, size_t nsuper)
{
	size_t miss = 0;

	for (size_t i = 0; i < nsub; i++) {
		if (!bsearch(&sub[i], super, nsuper, sizeof(*super), cmp_str))
			miss++;
	}
	return miss;
}

/*
 * The README's cross-format relation: stalkerware STIX has 1,300 distinct domains, the MISP
 * event 913, the plain list 844; the plain list is a subset of both (the JSON files also
 * carry domains the plain list leaves out: 456 and 69). Documented difference: the STIX
 * "domain" 178.63.71.15 is an IP literal and becomes an IP rule, so 1,299 and 455 here.
 */
static void test_cross_format(void **state)
{
	struct sink ss = {0}, sm = {0};
	struct bw_parse_report rep;
	char *buf, **vs, **vm, **vd, *line, *next;
	size_t len, ns, nm, nd = 0, cap = 1024;

	(void)state;
	if (!have_shared())
		return;
	buf = read_data(SHARED "/stix/stalkerware-indicators_2023-05-31.stix2.json.gz", &len);
	assert_non_null(buf);
	assert_int_equal(bw_parse_stix(buf, len, NULL, NOW, collect, &ss, &rep), 0);
	free(buf);
	buf = read_data(SHARED "/misp/stalkerware-indicators_2023-05-31.misp-event.json.gz", &len);
	assert_non_null(buf);
	assert_int_equal(bw_parse_misp(buf, len, NULL, false, collect, &sm, &rep), 0);
	free(buf);
	vs = names_of(&ss, &ns);
	vm = names_of(&sm, &nm);

	buf = read_data(
	    SHARED "/blocklists/stalkerware-indicators/stalkerware_2023-05-31.domains.txt", &len);
	assert_non_null(buf);
	buf = realloc(buf, len + 1);
	assert_non_null(buf);
	buf[len] = '\0';
	vd = malloc(cap * sizeof(*vd));
	assert_non_null(vd);
	for (line = buf; *line; line = next) {
		next = line + strcspn(line, "\r\n");
		if (*next)
			*next++ = '\0';
		for (char *c = line; *c; c++) {
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		}
		if (!*line || *line == '#')
			continue;
		if (nd == cap) {
			cap *= 2;
			vd = realloc(vd, cap * sizeof(*vd));
			assert_non_null(vd);
		}
		vd[nd++] = line;
	}
	qsort(vd, nd, sizeof(*vd), cmp_str);

	printf("  stalkerware: stix %zu, misp %zu, plain %zu distinct domains; plain not in stix "
	       "%zu, not in misp %zu; stix not in plain %zu, misp not in plain %zu\n",
	       ns, nm, nd, missing(vd, nd, vs, ns), missing(vd, nd, vm, nm),
	       missing(vs, ns, vd, nd), missing(vm, nm, vd, nd));
	assert_int_equal(ns, 1299);
	assert_int_equal(nm, 913);
	assert_int_equal(nd, 844);
	assert_int_equal(missing(vd, nd, vs, ns), 0);
	assert_int_equal(missing(vd, nd, vm, nm), 0);
	assert_int_equal(missing(vs, ns, vd, nd), 455);
	assert_int_equal(missing(vm, nm, vd, nd), 69);
	free(vs);
	free(vm);
	free(vd);
	free(buf);
	sink_reset(&ss);
	sink_reset(&sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stix_or),	   cmocka_unit_test(test_stix_and),
	    cmocka_unit_test(test_stix_nested),	   cmocka_unit_test(test_stix_escapes),
	    cmocka_unit_test(test_stix_operators), cmocka_unit_test(test_stix_qualifiers),
	    cmocka_unit_test(test_stix_malformed), cmocka_unit_test(test_stix_validity),
	    cmocka_unit_test(test_stix_url_hosts), cmocka_unit_test(test_stix_domains),
	    cmocka_unit_test(test_stix_shapes),	   cmocka_unit_test(test_stix_sink_error),
	    cmocka_unit_test(test_misp_flags),	   cmocka_unit_test(test_misp_non_ids),
	    cmocka_unit_test(test_misp_types),
	    cmocka_unit_test(test_misp_shapes),	   cmocka_unit_test(test_real_local),
	    cmocka_unit_test(test_real_shared),	   cmocka_unit_test(test_cross_format),
	};

	bw_log_set_level(BW_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
