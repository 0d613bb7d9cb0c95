/*
 * tests/unit/test_rules_lists.c - the text list parsers (domains, hosts, wildcard, adblock)
 * as rule streams: each format's syntax, the report, and the cross-format equivalences of
 * real lists (tests/data excerpts always; the full HaGeZi and urlhaus-filter files of
 * /work/shared/data when that copy is present). Run from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/rules.h"

#ifndef SHARED
#define SHARED "/work/shared/data" /* the Makefile passes ../shared/data */
#endif

typedef int (*parse_fn)(const char *buf, size_t len, const char *label, bw_rule_sink sink,
			void *ctx, struct bw_parse_report *rep);

/* ---- a set of wire names (open addressing; entries are heap copies, byte 0 = length) ---- */

struct nset {
	uint8_t **slot;
	size_t cap, n;
};

static uint64_t hash_name(const uint8_t *w, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ w[i]) * 1099511628211ULL;
	return h;
}

static bool slot_is(const uint8_t *e, const uint8_t *w, size_t len)
{
	return e[0] == len && memcmp(e + 1, w, len) == 0;
}

static bool nset_has(const struct nset *s, const uint8_t *w, size_t len)
{
	if (s->cap == 0)
		return false;
	for (size_t i = hash_name(w, len) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (slot_is(s->slot[i], w, len))
			return true;
	}
}

static void nset_add(struct nset *s, const uint8_t *w, size_t len)
{
	if (nset_has(s, w, len))
		return;
	if (2 * (s->n + 1) > s->cap) {
		struct nset bigger = {.cap = s->cap ? 2 * s->cap : 1024};

		bigger.slot = calloc(bigger.cap, sizeof(*bigger.slot));
		assert_non_null(bigger.slot);
		for (size_t i = 0; i < s->cap; i++) {
			uint8_t *e = s->slot[i];
			if (!e)
				continue;
			size_t j = hash_name(e + 1, e[0]) & (bigger.cap - 1);
			while (bigger.slot[j])
				j = (j + 1) & (bigger.cap - 1);
			bigger.slot[j] = e;
		}
		bigger.n = s->n;
		free(s->slot);
		*s = bigger;
	}
	size_t i = hash_name(w, len) & (s->cap - 1);
	while (s->slot[i])
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = malloc(len + 1);
	assert_non_null(s->slot[i]);
	s->slot[i][0] = (uint8_t)len;
	memcpy(s->slot[i] + 1, w, len);
	s->n++;
}

static void nset_free(struct nset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* Is every name of a also in b? */
static bool nset_subset(const struct nset *a, const struct nset *b)
{
	for (size_t i = 0; i < a->cap; i++) {
		if (a->slot[i] && !nset_has(b, a->slot[i] + 1, a->slot[i][0]))
			return false;
	}
	return true;
}

static bool nset_equal(const struct nset *a, const struct nset *b)
{
	return a->n == b->n && nset_subset(a, b);
}

/* ---- collecting rules ---- */

struct seen {
	char text[256]; /* presentation form, no trailing dot */
	enum bw_trigger trigger;
	enum bw_action action;
	unsigned long line;
};

struct col {
	struct nset qname, wild; /* names of NXDOMAIN rules, by trigger */
	struct nset pass;	 /* names of PASSTHRU rules (any trigger) */
	size_t n_rules;
	struct seen v[64]; /* the first rules, for syntax tests */
	size_t fail_after; /* > 0: the sink fails on call number fail_after + 1 */
};

/* Checks what every emitted rule must be, and returns its presentation form. */
static void check_rule(const struct bw_rule *r, char *text, size_t cap)
{
	size_t pos = 0, t = 0;

	assert_true(r->trigger == BW_TRIG_QNAME || r->trigger == BW_TRIG_WILDCARD);
	assert_true(r->action == BW_ACT_NXDOMAIN || r->action == BW_ACT_PASSTHRU);
	assert_int_equal(r->ttl, 300);
	assert_true(r->line >= 1);
	assert_non_null(r->name);
	assert_true(r->name_len >= 2 && r->name_len <= 255);
	assert_null(r->ref);
	assert_null(r->title);
	assert_int_equal(r->n_rrs, 0);
	while (r->name[pos] != 0) {
		uint8_t l = r->name[pos];
		assert_true(l <= 63 && pos + 1u + l < r->name_len);
		for (size_t i = pos + 1; i <= pos + l; i++) {
			uint8_t c = r->name[i];
			assert_true((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
				    c == '_');
			if (t + 2 < cap)
				text[t++] = (char)c;
		}
		pos += 1u + l;
		if (r->name[pos] != 0 && t + 2 < cap)
			text[t++] = '.';
	}
	assert_int_equal(pos, r->name_len - 1);
	text[t] = '\0';
}

static int collect(void *ctx, const struct bw_rule *r)
{
	struct col *c = ctx;
	char text[256];

	if (c->fail_after && c->n_rules == c->fail_after)
		return BW_ENOMEM;
	check_rule(r, text, sizeof(text));
	if (c->n_rules < BW_ARRAY_LEN(c->v)) {
		struct seen *s = &c->v[c->n_rules];
		snprintf(s->text, sizeof(s->text), "%s", text);
		s->trigger = r->trigger;
		s->action = r->action;
		s->line = r->line;
	}
	c->n_rules++;
	if (r->action == BW_ACT_PASSTHRU)
		nset_add(&c->pass, r->name, r->name_len);
	else if (r->trigger == BW_TRIG_QNAME)
		nset_add(&c->qname, r->name, r->name_len);
	else
		nset_add(&c->wild, r->name, r->name_len);
	return 0;
}

static void col_free(struct col *c)
{
	nset_free(&c->qname);
	nset_free(&c->wild);
	nset_free(&c->pass);
}

static int parse_str(parse_fn fn, const char *s, struct col *c, struct bw_parse_report *rep)
{
	return fn(s, strlen(s), "t", collect, c, rep);
}

static void assert_rule(const struct col *c, size_t i, enum bw_trigger trig, const char *name,
			enum bw_action action, unsigned long line)
{
	assert_true(i < c->n_rules);
	assert_string_equal(c->v[i].text, name);
	assert_int_equal(c->v[i].trigger, trig);
	assert_int_equal(c->v[i].action, action);
	assert_int_equal(c->v[i].line, line);
}

/* name and subdomains (rules i and i + 1) */
static void assert_tree(const struct col *c, size_t i, const char *name, enum bw_action action,
			unsigned long line)
{
	assert_rule(c, i, BW_TRIG_QNAME, name, action, line);
	assert_rule(c, i + 1, BW_TRIG_WILDCARD, name, action, line);
}

/* ---- syntax ---- */

static void test_domains_syntax(void **state)
{
	struct bw_parse_report rep;
	struct col c = {0};

	(void)state;
	assert_int_equal(parse_str(bw_parse_domains,
				   "\xef\xbb\xbf# header\r\nExample.ORG.\r\n\r\n  a.b-c_d  # note\n"
				   "1.2.3.4\n2001:db8::1\nno-newline.org",
				   &c, &rep),
			 0);
	assert_int_equal(c.n_rules, 6);
	assert_tree(&c, 0, "example.org", BW_ACT_NXDOMAIN, 2);
	assert_tree(&c, 2, "a.b-c_d", BW_ACT_NXDOMAIN, 4);
	assert_tree(&c, 4, "no-newline.org", BW_ACT_NXDOMAIN, 7);
	assert_int_equal(rep.units, 7);
	assert_int_equal(rep.rules, 6);
	assert_int_equal(rep.skipped, 2); /* IP literals */
	assert_int_equal(rep.bad, 0);
	assert_int_equal(rep.n_errors, 0);
	assert_false(rep.broken);
	col_free(&c);

	memset(&c, 0, sizeof(c));
	assert_int_equal(parse_str(bw_parse_domains,
				   "a.org b.org\n*.x.org\nbad!name\nx..org\nh\xc3\xa9.org\n.\n"
				   "ok.org\n",
				   &c, &rep),
			 0);
	assert_int_equal(rep.bad, 6);
	assert_int_equal(rep.n_errors, 5);
	assert_string_equal(rep.first_errors[0], "t:1: several tokens on one line");
	assert_string_equal(rep.first_errors[1], "t:2: wildcards are not supported");
	assert_string_equal(rep.first_errors[2], "t:3: invalid character in name");
	assert_string_equal(rep.first_errors[3], "t:4: empty label");
	assert_string_equal(rep.first_errors[4],
			    "t:5: non-ASCII character (write IDNs as punycode)");
	assert_int_equal(c.n_rules, 2);
	assert_tree(&c, 0, "ok.org", BW_ACT_NXDOMAIN, 7);
	col_free(&c);

	/* IPv4 addresses that inet_pton() refuses are still addresses, never names */
	memset(&c, 0, sizeof(c));
	assert_int_equal(parse_str(bw_parse_domains,
				   "112.246.120.07\n010.001.002.003\n1.2.3.400\n1.2.3.4.5\n"
				   "1.2.3.x07\n07.example\n",
				   &c, &rep),
			 0);
	assert_int_equal(rep.skipped, 3);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(c.n_rules, 6); /* five groups, a letter: names as before */
	assert_tree(&c, 0, "1.2.3.4.5", BW_ACT_NXDOMAIN, 4);
	assert_tree(&c, 2, "1.2.3.x07", BW_ACT_NXDOMAIN, 5);
	assert_tree(&c, 4, "07.example", BW_ACT_NXDOMAIN, 6);
	col_free(&c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(parse_str(bw_parse_hosts,
				   "0.0.0.0 112.246.120.07 a.org\n127.000.000.001 b.org\n", &c,
				   &rep),
			 0);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(rep.bad, 1); /* the address field itself stays strict */
	assert_string_equal(rep.first_errors[0], "t:2: first field is not an IP address");
	assert_int_equal(c.n_rules, 2);
	assert_tree(&c, 0, "a.org", BW_ACT_NXDOMAIN, 1);
	col_free(&c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(parse_str(bw_parse_adblock, "||112.246.120.07^\n", &c, &rep), 0);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(c.n_rules, 0);
	col_free(&c);

	/* nothing at all */
	memset(&c, 0, sizeof(c));
	assert_int_equal(bw_parse_domains(NULL, 0, "t", collect, &c, &rep), 0);
	assert_int_equal(rep.units, 0);
	assert_int_equal(bw_parse_domains("", 0, "t", collect, &c, &rep), 0);
	assert_int_equal(rep.units, 0);
	assert_int_equal(c.n_rules, 0);
}

static void test_hosts_syntax(void **state)
{
	struct bw_parse_report rep;
	struct col c = {0};

	(void)state;
	assert_int_equal(parse_str(bw_parse_hosts,
				   "# hosts\n0.0.0.0 a.org B.org # c\r\n127.0.0.1 localhost\n"
				   "::1 ip6-localhost ip6-loopback\nnot-an-ip a.org\n0.0.0.0\n"
				   "0.0.0.0 good.org bad!\n0.0.0.0 0.0.0.0\n",
				   &c, &rep),
			 0);
	assert_int_equal(c.n_rules, 6);
	assert_tree(&c, 0, "a.org", BW_ACT_NXDOMAIN, 2);
	assert_tree(&c, 2, "b.org", BW_ACT_NXDOMAIN, 2);
	assert_tree(&c, 4, "good.org", BW_ACT_NXDOMAIN, 7);
	assert_int_equal(rep.units, 8);
	assert_int_equal(rep.skipped, 4); /* localhost, ip6-localhost, ip6-loopback, 0.0.0.0 */
	assert_int_equal(rep.bad, 3);
	assert_string_equal(rep.first_errors[0], "t:5: first field is not an IP address");
	assert_string_equal(rep.first_errors[1], "t:6: no names after the address");
	assert_string_equal(rep.first_errors[2], "t:7: invalid character in name");
	col_free(&c);
}

static void test_wildcard_syntax(void **state)
{
	struct bw_parse_report rep;
	struct col c = {0};

	(void)state;
	assert_int_equal(parse_str(bw_parse_wildcard,
				   "# wildcard\n*.a.org\nb.org # bare\r\n*.1.2.3.4\n*.\n*\n"
				   "*.*.c.org\nx.*.org\n*.d.org e.org\n*.F.Org.\n",
				   &c, &rep),
			 0);
	/* "*.name" and "name" both cover the name and everything below it (docs/feeds.md) */
	assert_int_equal(c.n_rules, 6);
	assert_tree(&c, 0, "a.org", BW_ACT_NXDOMAIN, 2);
	assert_tree(&c, 2, "b.org", BW_ACT_NXDOMAIN, 3);
	assert_tree(&c, 4, "f.org", BW_ACT_NXDOMAIN, 10);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(rep.bad, 5);
	assert_int_equal(rep.units, 10);
	assert_string_equal(rep.first_errors[0], "t:5: wildcards are not supported");
	assert_string_equal(rep.first_errors[4], "t:9: several tokens on one line");
	col_free(&c);
}

static void test_adblock_syntax(void **state)
{
	struct bw_parse_report rep;
	struct col c = {0};

	(void)state;
	assert_int_equal(parse_str(bw_parse_adblock,
				   "[Adblock Plus 2.0]\n"	     /* 1 */
				   "! comment\n"		     /* 2 */
				   "# comment\n"		     /* 3 */
				   "||a.org^\n"			     /* 4 */
				   "||B.org^$important\n"	     /* 5 */
				   "|c.org^\n"			     /* 6 */
				   "@@||d.org^\n"		     /* 7 */
				   "@@|e.org^\n"		     /* 8 */
				   "f.org\n"			     /* 9 */
				   "g.org^\n"			     /* 10 */
				   "||actor^\n"			     /* 11 */
				   "  ||h.org^|  \r\n"		     /* 12 */
				   "0.0.0.0 i.org\n"		     /* 13 */
				   "j.org # note\n"		     /* 14 */
				   "||k.org\n"			     /* 15 */
				   "||l.org^$Important,important\n", /* 16 */
				   &c, &rep),
			 0);
	assert_int_equal(rep.bad, 0);
	assert_int_equal(rep.skipped, 0);
	assert_int_equal(rep.units, 16);
	size_t i = 0;
	assert_tree(&c, i, "a.org", BW_ACT_NXDOMAIN, 4), i += 2;
	assert_tree(&c, i, "b.org", BW_ACT_NXDOMAIN, 5), i += 2;
	assert_rule(&c, i++, BW_TRIG_QNAME, "c.org", BW_ACT_NXDOMAIN, 6);
	assert_tree(&c, i, "d.org", BW_ACT_PASSTHRU, 7), i += 2;
	assert_rule(&c, i++, BW_TRIG_QNAME, "e.org", BW_ACT_PASSTHRU, 8);
	assert_tree(&c, i, "f.org", BW_ACT_NXDOMAIN, 9), i += 2;
	assert_tree(&c, i, "g.org", BW_ACT_NXDOMAIN, 10), i += 2;
	assert_tree(&c, i, "actor", BW_ACT_NXDOMAIN, 11), i += 2;
	assert_tree(&c, i, "h.org", BW_ACT_NXDOMAIN, 12), i += 2;
	assert_tree(&c, i, "i.org", BW_ACT_NXDOMAIN, 13), i += 2;
	assert_tree(&c, i, "j.org", BW_ACT_NXDOMAIN, 14), i += 2;
	assert_tree(&c, i, "k.org", BW_ACT_NXDOMAIN, 15), i += 2;
	assert_tree(&c, i, "l.org", BW_ACT_NXDOMAIN, 16), i += 2;
	assert_int_equal(c.n_rules, i);
	assert_int_equal(rep.rules, i);
	col_free(&c);

	/* what DNS cannot enforce is skipped, not bad */
	static const char *const skipped[] = {
	    "||x.org^$third-party",
	    "||x.org^$domain=y.com",
	    "||x.org^$denyallow=y.com|z.com",
	    "||x.org^$client=192.168.0.1",
	    "||x.org^$dnstype=AAAA",
	    "||x.org^$dnsrewrite=NXDOMAIN",
	    "||x.org^$all",
	    "||x.org^$important,badfilter",
	    "||x.org^$",
	    "||x.org/path",
	    "||x.org/ads.js^$script",
	    "||x.org:8080^",
	    "|https://x.org/",
	    "||ads*.x.org^",
	    "@@||*-go.x.net^",
	    "||adservice.google.*^",
	    "/ads[0-9]+\\.x\\.org/",
	    "/banner/ad.js",
	    "x.org##.banner",
	    "x.org#@#.banner",
	    "x.org#?#div:has(> a)",
	    "x.org#$#body { color: red }",
	    "x.org#%#//scriptlet('abort')",
	    "x.org$$script[tag-content=\"ad\"]",
	    "##.ad-banner",
	    "#@#.ad-banner",
	    "||1.2.3.4^",
	    "||x.org^foo",
	    "||[2001:db8::1]^",
	};
	for (size_t k = 0; k < BW_ARRAY_LEN(skipped); k++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(parse_str(bw_parse_adblock, skipped[k], &c, &rep), 0);
		if (rep.skipped != 1 || rep.bad != 0 || c.n_rules != 0)
			fail_msg("not skipped: %s", skipped[k]);
		col_free(&c);
	}

	/* garbage is bad */
	static const char *const bad[] = {
	    "||bad!name^",   "||^",	      "@@", "@@||", "||a..b^", "||ex ample.org^", "|",
	    "h\xc3\xa9.org", "||-x\x01.org^",
	};
	for (size_t k = 0; k < BW_ARRAY_LEN(bad); k++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(parse_str(bw_parse_adblock, bad[k], &c, &rep), 0);
		if (rep.bad != 1 || rep.skipped != 0 || c.n_rules != 0)
			fail_msg("not bad: %s", bad[k]);
		assert_int_equal(rep.n_errors, 1);
		assert_true(strncmp(rep.first_errors[0], "t:1: ", 5) == 0);
		col_free(&c);
	}
}

static void test_long_lines(void **state)
{
	static char buf[4097 + 1 + 4096 + 1 + 16];
	parse_fn fns[] = {bw_parse_domains, bw_parse_hosts, bw_parse_wildcard, bw_parse_adblock};
	struct bw_parse_report rep;

	(void)state;
	/* line 1: 4097 bytes (too long); line 2: 4096 bytes (read, an unusable name); line 3 */
	memset(buf, 'a', 4097);
	buf[4097] = '\n';
	memset(buf + 4098, 'b', 4096);
	buf[4098 + 4096] = '\n';
	memcpy(buf + 4098 + 4097, "0.0.0.0 ok.org\n", 15);
	size_t len = 4098 + 4097 + 15;
	for (size_t k = 0; k < BW_ARRAY_LEN(fns); k++) {
		struct col c = {0};
		assert_int_equal(fns[k](buf, len, "t", collect, &c, &rep), 0);
		assert_int_equal(rep.units, 3);
		assert_true(rep.bad >= 2);
		assert_string_equal(rep.first_errors[0], "t:1: line longer than 4096 bytes");
		assert_true(strncmp(rep.first_errors[1], "t:2: ", 5) == 0);
		col_free(&c);
	}
}

static void test_sink_error(void **state)
{
	struct bw_parse_report rep;
	struct col c = {.fail_after = 3};

	(void)state;
	assert_int_equal(parse_str(bw_parse_adblock, "||a.org^\n||b.org^\n||c.org^\n", &c, &rep),
			 BW_ENOMEM);
	assert_int_equal(rep.rules, 3);
	assert_int_equal(c.n_rules, 3);
	col_free(&c);
}

static void test_report_bad(void **state)
{
	struct bw_parse_report rep = {0};
	char label[400];

	(void)state;
	memset(label, 'L', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	for (unsigned long i = 1; i <= 7; i++)
		bw_parse_report_bad(&rep, label, i, "a reason");
	assert_int_equal(rep.bad, 7);
	assert_int_equal(rep.n_errors, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(strlen(rep.first_errors[i]), sizeof(rep.first_errors[i]) - 1);
		assert_true(rep.first_errors[i][0] == 'L');
	}
	memset(&rep, 0, sizeof(rep));
	bw_parse_report_bad(&rep, NULL, 3, NULL);
	assert_string_equal(rep.first_errors[0], "-:3: unusable");
}

/* ---- real data ---- */

static char *slurp(const char *path, bool gz, size_t *len)
{
	char cmd[1024];
	FILE *f;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);

	assert_non_null(buf);
	if (gz) {
		snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
		f = popen(cmd, "r");
	} else {
		f = fopen(path, "rb");
	}
	if (!f)
		fail_msg("cannot read %s", path);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	if (gz)
		assert_int_equal(pclose(f), 0);
	else
		fclose(f);
	*len = n;
	return buf;
}

/* Parses a file into c; asserts no bad line; the name set is c->qname. */
static void load(parse_fn fn, const char *path, struct col *c, struct bw_parse_report *rep)
{
	size_t len, n = strlen(path);
	bool gz = n > 3 && strcmp(path + n - 3, ".gz") == 0;
	char *buf = slurp(path, gz, &len);

	memset(c, 0, sizeof(*c));
	assert_int_equal(fn(buf, len, path, collect, c, rep), 0);
	free(buf);
	if (rep->bad)
		fail_msg("%s: %zu bad lines, first: %s", path, rep->bad, rep->first_errors[0]);
	assert_int_equal(rep->rules, c->n_rules);
}

/* A list format's rules: every NXDOMAIN name has both triggers (name + subdomains). */
static void assert_trees(const struct col *c)
{
	assert_true(nset_equal(&c->qname, &c->wild));
}

/* tests/data: the same urlhaus-filter names in four formats */
static void test_excerpts_equivalent(void **state)
{
	struct col dom, wild, agh, hosts;
	struct bw_parse_report rep;

	(void)state;
	load(bw_parse_domains, "tests/data/urlhaus-filter_2025-07-19.domains.txt", &dom, &rep);
	assert_int_equal(dom.qname.n, 1900);
	assert_int_equal(rep.skipped, 100); /* IP literals */
	assert_trees(&dom);
	load(bw_parse_wildcard, "tests/data/urlhaus-filter_2025-07-19.wildcard.txt", &wild, &rep);
	assert_int_equal(rep.skipped, 100);
	assert_trees(&wild);
	load(bw_parse_adblock, "tests/data/urlhaus-filter_2025-07-19.agh.adblock.txt", &agh, &rep);
	assert_int_equal(rep.skipped, 100);
	assert_trees(&agh);
	load(bw_parse_hosts, "tests/data/urlhaus-filter_2025-07-19.hosts", &hosts, &rep);
	assert_int_equal(hosts.qname.n, 1994);
	assert_trees(&hosts);

	assert_true(nset_equal(&dom.qname, &wild.qname));
	assert_true(nset_equal(&dom.qname, &agh.qname));
	assert_true(nset_subset(&dom.qname, &hosts.qname));
	col_free(&dom);
	col_free(&wild);
	col_free(&agh);
	col_free(&hosts);
}

/* The name-list API of the current snapshot sees the same names as the rule parsers. */
static void add_name(const uint8_t *name, size_t len, void *ctx)
{
	nset_add(ctx, name, len);
}

static void test_feed_api_same(void **state)
{
	struct col c;
	struct bw_parse_report rep;
	struct nset names = {0};

	(void)state;
	load(bw_parse_hosts, "tests/data/scamblocklist_2026-08-22.hosts", &c, &rep);
	assert_true(bw_feed_parse_file("tests/data/scamblocklist_2026-08-22.hosts", BW_FEED_HOSTS,
				       add_name, &names) == 0);
	assert_true(c.qname.n > 1000);
	assert_true(nset_equal(&c.qname, &names));
	col_free(&c);
	nset_free(&names);
}

/* tests/data: AdBlock edge cases from real lists */
static void test_adblock_real(void **state)
{
	struct col c;
	struct bw_parse_report rep;

	(void)state;
	/* 129 rules on TLDs ("||actor^") and public suffixes ("||us.kg^") */
	load(bw_parse_adblock, "tests/data/hagezi_spam-tlds_2026-08-15.adblock.txt", &c, &rep);
	assert_int_equal(c.qname.n, 129);
	assert_int_equal(rep.skipped, 0);
	assert_trees(&c);
	size_t tlds = 0;
	for (size_t i = 0; i < c.qname.cap; i++) {
		const uint8_t *e = c.qname.slot[i];
		if (e && e[1] + 2 == e[0]) /* one label */
			tlds++;
	}
	assert_int_equal(tlds, 119); /* and 10 public suffixes such as co.com, us.kg */
	assert_true(nset_has(&c.qname, (const uint8_t *)"\5actor", 7));
	col_free(&c);

	/* exceptions: 928 entries, 67 of them with '*' in the host (skipped) */
	load(bw_parse_adblock, "tests/data/hagezi_whitelist-referral_2026-08-15.adblock.txt", &c,
	     &rep);
	assert_int_equal(rep.skipped, 67);
	assert_int_equal(c.qname.n + c.wild.n, 0);
	assert_int_equal(c.pass.n, 928 - 67);
	assert_int_equal(rep.rules, 2 * (928 - 67));
	col_free(&c);

	/* browser syntax: every rule has $all (and half have URL paths): nothing for DNS */
	load(bw_parse_adblock, "tests/data/urlhaus-filter_2025-07-19.ag.adblock.head.txt", &c,
	     &rep);
	assert_int_equal(rep.skipped, 100);
	assert_int_equal(c.n_rules, 0);
	col_free(&c);
}

/* /work/shared/data: the relations its README verified */
static bool have_shared(void)
{
	struct stat sb;

	if (stat(SHARED "/README.md", &sb) == 0)
		return true;
	print_message("skipped: " SHARED " not present\n");
	return false;
}

#define HZ SHARED "/blocklists/hagezi/"
#define UH SHARED "/blocklists/urlhaus-filter/"

static void test_shared_tif_mini(void **state)
{
	struct col dom, wild, adb;
	struct bw_parse_report rep;

	(void)state;
	if (!have_shared())
		return;
	load(bw_parse_domains, HZ "hagezi_tif.mini_2026-08-15.domains.txt.gz", &dom, &rep);
	load(bw_parse_wildcard, HZ "hagezi_tif.mini_2026-08-15.wildcard.txt.gz", &wild, &rep);
	load(bw_parse_adblock, HZ "hagezi_tif.mini_2026-08-15.adblock.txt.gz", &adb, &rep);
	assert_int_equal(dom.qname.n, 167478);
	assert_trees(&dom);
	assert_trees(&wild);
	assert_trees(&adb);
	assert_true(nset_equal(&dom.qname, &wild.qname));
	assert_true(nset_equal(&dom.qname, &adb.qname));
	col_free(&dom);
	col_free(&wild);
	col_free(&adb);
}

static void test_shared_pro_plus_mini(void **state)
{
	struct col dom, adb;
	struct bw_parse_report rep;

	(void)state;
	if (!have_shared())
		return;
	load(bw_parse_domains, HZ "hagezi_pro.plus.mini_2026-08-15.domains.txt.gz", &dom, &rep);
	load(bw_parse_adblock, HZ "hagezi_pro.plus.mini_2026-08-15.adblock.txt.gz", &adb, &rep);
	assert_int_equal(dom.qname.n, 65617);
	assert_true(nset_equal(&dom.qname, &adb.qname));
	assert_trees(&adb);
	col_free(&dom);
	col_free(&adb);
}

/* Is one of the strict parents of name (wire) in `tree`? */
static bool below(const struct nset *tree, const uint8_t *w, size_t len)
{
	size_t pos = 1u + w[0];

	while (pos < len && w[pos] != 0) {
		if (nset_has(tree, w + pos, len - pos))
			return true;
		pos += 1u + w[pos];
	}
	return false;
}

static void test_shared_light(void **state)
{
	struct col hosts, comp, dom, adb;
	struct bw_parse_report rep;

	(void)state;
	if (!have_shared())
		return;
	load(bw_parse_hosts, HZ "hagezi_light_2026-08-15.hosts.gz", &hosts, &rep);
	load(bw_parse_hosts, HZ "hagezi_light_2026-08-15.hosts-compressed.gz", &comp, &rep);
	load(bw_parse_domains, HZ "hagezi_light_2026-08-15.domains.txt.gz", &dom, &rep);
	load(bw_parse_adblock, HZ "hagezi_light_2026-08-15.adblock.txt", &adb, &rep);
	assert_int_equal(hosts.qname.n, 86359);
	assert_true(nset_equal(&hosts.qname, &comp.qname));
	assert_true(nset_equal(&hosts.qname, &dom.qname));
	assert_int_equal(adb.qname.n, 40961);
	assert_trees(&adb);
	/* adblock folds subdomains into their parent: it blocks every hosts name */
	assert_true(nset_subset(&adb.qname, &hosts.qname));
	for (size_t i = 0; i < hosts.qname.cap; i++) {
		const uint8_t *e = hosts.qname.slot[i];
		if (e)
			assert_true(nset_has(&adb.qname, e + 1, e[0]) ||
				    below(&adb.wild, e + 1, e[0]));
	}
	col_free(&hosts);
	col_free(&comp);
	col_free(&dom);
	col_free(&adb);
}

static void test_shared_urlhaus(void **state)
{
	struct col dom, wild, agh, hosts;
	struct bw_parse_report rep;

	(void)state;
	if (!have_shared())
		return;
	load(bw_parse_domains, UH "urlhaus-filter_2025-07-19.domains.txt", &dom, &rep);
	assert_int_equal(rep.skipped, 23079); /* IPv4 literals */
	load(bw_parse_wildcard, UH "urlhaus-filter_2025-07-19.wildcard.txt", &wild, &rep);
	assert_int_equal(rep.skipped, 23079);
	load(bw_parse_adblock, UH "urlhaus-filter_2025-07-19.agh.adblock.txt", &agh, &rep);
	assert_int_equal(rep.skipped, 23079);
	load(bw_parse_hosts, UH "urlhaus-filter_2025-07-19.hosts", &hosts, &rep);
	assert_int_equal(dom.qname.n, 2689);
	assert_true(nset_equal(&dom.qname, &wild.qname));
	assert_true(nset_equal(&dom.qname, &agh.qname));
	assert_true(nset_equal(&dom.qname, &hosts.qname));
	assert_trees(&wild);
	assert_trees(&agh);
	col_free(&dom);
	col_free(&wild);
	col_free(&agh);
	col_free(&hosts);
}

/* ---- gzip-compressed feeds (feed_read.c) ---- */

/* Every rule folded into an order-independent digest. */
struct digest {
	size_t n;
	uint64_t sum;
};

static int digest_rule(void *ctx, const struct bw_rule *r)
{
	struct digest *d = ctx;
	uint64_t h = r->name ? hash_name(r->name, r->name_len) : 0;

	h = (h ^ ((uint64_t)r->trigger << 8 | (uint64_t)r->action)) * 1099511628211ULL;
	h = (h ^ ((uint64_t)r->line << 32 | r->ttl)) * 1099511628211ULL;
	d->sum += h;
	d->n++;
	return 0;
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* gzip(1)'s compression of buf (an independent producer), in memory. */
static char *gzip_of(const char *dir, const char *buf, size_t len, size_t *gzlen)
{
	char plain[512], cmd[1200];

	snprintf(plain, sizeof(plain), "%s/plain", dir);
	write_file(plain, buf, len);
	snprintf(cmd, sizeof(cmd), "gzip -nf '%s'", plain);
	assert_int_equal(system(cmd), 0);
	snprintf(plain, sizeof(plain), "%s/plain.gz", dir);
	char *gz = slurp(plain, false, gzlen);
	unlink(plain);
	return gz;
}

static void parse_mem(const struct bw_feed_conf *fc, const char *buf, size_t len,
		      struct digest *d, struct bw_parse_report *rep)
{
	memset(d, 0, sizeof(*d));
	assert_int_equal(bw_parse_feed(fc, buf, len, digest_rule, d, rep), 0);
}

static void assert_same(const struct digest *a, const struct bw_parse_report *ra,
			const struct digest *b, const struct bw_parse_report *rb)
{
	assert_false(rb->broken);
	assert_int_equal(a->n, b->n);
	assert_true(a->sum == b->sum);
	assert_int_equal(ra->units, rb->units);
	assert_int_equal(ra->rules, rb->rules);
	assert_int_equal(ra->bad, rb->bad);
	assert_int_equal(ra->skipped, rb->skipped);
}

/* A compressed feed, in memory or in a file, in one gzip member or several, gives exactly
 * the rules of the plain one, in every format (real excerpts of tests/data). */
static void test_gzip_same_rules(void **state)
{
	static const struct {
		const char *path;
		enum bw_feed_format format;
	} feeds[] = {
	    {"tests/data/urlhaus-filter_2025-07-19.domains.txt", BW_FEED_DOMAINS},
	    {"tests/data/urlhaus-filter_2025-07-19.hosts", BW_FEED_HOSTS},
	    {"tests/data/urlhaus-filter_2025-07-19.wildcard.txt", BW_FEED_WILDCARD},
	    {"tests/data/urlhaus-filter_2025-07-19.agh.adblock.txt", BW_FEED_ADBLOCK},
	    {"tests/data/rpz/urlhaus-filter_2025-07-19.head1011.rpz", BW_FEED_RPZ},
	    {"tests/data/stix/oasis_poisonivy.json", BW_FEED_STIX},
	    {"tests/data/misp/eset_glupteba.misp-event.json", BW_FEED_MISP},
	};
	char dir[] = "/tmp/bw-test-gz-XXXXXX", gzpath[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(gzpath, sizeof(gzpath), "%s/feed.txt", dir); /* no .gz: the magic decides */
	for (size_t i = 0; i < BW_ARRAY_LEN(feeds); i++) {
		struct bw_feed_conf fc = {.name = "gz", .format = feeds[i].format,
					  .file = (char *)feeds[i].path};
		struct bw_parse_report rp, rg;
		struct digest dp, dg;
		size_t len, gzlen, half, l1, l2;
		char *plain = slurp(feeds[i].path, false, &len);
		char *gz = gzip_of(dir, plain, len, &gzlen);
		int prc;

		assert_true(bw_feed_is_gzip(gz, gzlen));
		assert_false(bw_feed_is_gzip(plain, len));
		parse_mem(&fc, plain, len, &dp, &rp);
		assert_true(dp.n > 0);
		parse_mem(&fc, gz, gzlen, &dg, &rg);
		assert_same(&dp, &rp, &dg, &rg);

		/* from a file, read in pieces */
		write_file(gzpath, gz, gzlen);
		fc.file = gzpath;
		memset(&dg, 0, sizeof(dg));
		assert_int_equal(bw_parse_feed_file(&fc, digest_rule, &dg, &rg, NULL, NULL, &prc), 0);
		assert_int_equal(prc, 0);
		assert_same(&dp, &rp, &dg, &rg);

		/* two members cut in the middle of a line (gzip -c a >f; gzip -c b >>f) */
		half = len / 2 + 3;
		char *m1 = gzip_of(dir, plain, half, &l1), *m2 = gzip_of(dir, plain + half,
									len - half, &l2);
		char *both = malloc(l1 + l2);
		assert_non_null(both);
		memcpy(both, m1, l1);
		memcpy(both + l1, m2, l2);
		parse_mem(&fc, both, l1 + l2, &dg, &rg);
		assert_same(&dp, &rp, &dg, &rg);
		free(m1);
		free(m2);
		free(both);
		free(gz);
		free(plain);
	}
	unlink(gzpath);
	rmdir(dir);
}

/* Corrupt, truncated or trailing data, and a bomb: the feed is broken, with a reason. */
static void test_gzip_broken(void **state)
{
	char dir[] = "/tmp/bw-test-gz-XXXXXX", path[512];
	struct bw_feed_conf fc = {.name = "gz", .format = BW_FEED_DOMAINS, .file = "t"};
	struct bw_parse_report rep;
	struct digest d;
	size_t len, gzlen;
	int prc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	char *plain = slurp("tests/data/urlhaus-filter_2025-07-19.domains.txt", false, &len);
	char *gz = gzip_of(dir, plain, len, &gzlen);

	parse_mem(&fc, gz, gzlen - 9, &d, &rep); /* truncated */
	assert_true(rep.broken);
	assert_false(rep.too_big);
	assert_non_null(strstr(rep.first_errors[rep.n_errors - 1], "gzip: truncated data"));

	char *junk = malloc(gzlen + 4);
	assert_non_null(junk);
	memcpy(junk, gz, gzlen);
	memcpy(junk + gzlen, "junk", 4);
	parse_mem(&fc, junk, gzlen + 4, &d, &rep);
	assert_true(rep.broken);
	assert_non_null(strstr(rep.first_errors[rep.n_errors - 1], "after the end"));
	memcpy(junk, gz, gzlen);
	junk[gzlen / 2] ^= 0x55; /* a flipped byte: bad deflate data or a CRC mismatch */
	parse_mem(&fc, junk, gzlen, &d, &rep);
	assert_true(rep.broken);
	assert_non_null(strstr(rep.first_errors[rep.n_errors - 1], "gzip: corrupt data"));
	free(junk);

	/* a bomb: 64 MiB of names from a ~100 KiB file, for a fetched feed of max-size 1M */
	size_t big = (size_t)64 << 20;
	char *bomb = malloc(big);
	assert_non_null(bomb);
	for (size_t i = 0; i < big; i += 16)
		memcpy(bomb + i, "bomb.example.o\n\n", 16);
	size_t bomblen;
	char *bgz = gzip_of(dir, bomb, big, &bomblen);
	free(bomb);
	assert_true(bomblen < big / 100);
	fc.source = BW_FEED_SRC_URL;
	fc.max_size = (uint64_t)1 << 20;
	parse_mem(&fc, bgz, bomblen, &d, &rep);
	assert_true(rep.broken);
	assert_true(rep.too_big);
	assert_non_null(strstr(rep.first_errors[rep.n_errors - 1],
			       "gzip: data expands past the limit of 1048576 bytes"));
	assert_true(d.n <= 2 * ((5u << 20) / 16)); /* stopped within a piece of the limit */
	/* the same from a file; and JSON's own limit for a local file */
	snprintf(path, sizeof(path), "%s/bomb", dir);
	write_file(path, bgz, bomblen);
	fc.file = path;
	assert_int_equal(bw_parse_feed_file(&fc, digest_rule, &d, &rep, NULL, NULL, &prc), 0);
	assert_true(rep.broken && rep.too_big);
	fc.source = BW_FEED_SRC_FILE;
	fc.max_size = 0;
	assert_int_equal(bw_parse_feed_file(&fc, digest_rule, &d, &rep, NULL, NULL, &prc), 0);
	assert_false(rep.broken); /* a local file may expand to 1 GiB */
	unlink(path);
	free(bgz);
	free(gz);
	free(plain);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_domains_syntax),  cmocka_unit_test(test_hosts_syntax),
	    cmocka_unit_test(test_wildcard_syntax), cmocka_unit_test(test_adblock_syntax),
	    cmocka_unit_test(test_long_lines),	    cmocka_unit_test(test_sink_error),
	    cmocka_unit_test(test_report_bad),	    cmocka_unit_test(test_excerpts_equivalent),
	    cmocka_unit_test(test_feed_api_same),   cmocka_unit_test(test_adblock_real),
	    cmocka_unit_test(test_shared_tif_mini), cmocka_unit_test(test_shared_pro_plus_mini),
	    cmocka_unit_test(test_shared_light),    cmocka_unit_test(test_shared_urlhaus),
	    cmocka_unit_test(test_gzip_same_rules), cmocka_unit_test(test_gzip_broken),
	};

	bw_log_set_level(BW_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
