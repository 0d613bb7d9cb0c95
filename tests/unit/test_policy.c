/*
 * tests/unit/test_policy.c - feed parsers, snapshot build and match, reload fallback,
 * change detection, and real feed excerpts from tests/data (run from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

/* ---- helpers ---- */

struct wname {
	uint8_t len;
	uint8_t b[255];
};

struct names {
	struct wname *v;
	size_t n, cap;
};

static void collect(const uint8_t *name, size_t len, void *ctx)
{
	struct names *ns = ctx;

	assert_true(len > 0 && len <= 255);
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
		assert_non_null(ns->v);
	}
	ns->v[ns->n].len = (uint8_t)len;
	memcpy(ns->v[ns->n].b, name, len);
	ns->n++;
}

static int wname_cmp(const void *a, const void *b)
{
	const struct wname *x = a, *y = b;

	if (x->len != y->len)
		return x->len - y->len;
	return memcmp(x->b, y->b, x->len);
}

static bool names_has(const struct names *ns, const uint8_t *w, size_t len)
{
	struct wname key = {.len = (uint8_t)len};

	memcpy(key.b, w, len);
	return bsearch(&key, ns->v, ns->n, sizeof(*ns->v), wname_cmp) != NULL;
}

/* Text name to wire for queries, through the module's own converter. */
static size_t wire(const char *text, uint8_t *out)
{
	const char *reason = NULL;
	size_t n = bw_feed_name_to_wire(text, strlen(text), out, &reason);

	assert_int_not_equal(n, 0);
	return n;
}

/* Matches a text name (lower-cased first, as the DNS parser does). */
static bool match(const struct bw_policy *p, const char *text, struct bw_verdict *v)
{
	uint8_t w[255];
	size_t n = wire(text, w);

	return bw_policy_match(p, w, n, v);
}

static char tmpdir[64];

static char *write_file(const char *name, const char *content)
{
	char *path = malloc(256);

	assert_non_null(path);
	snprintf(path, 256, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	return path;
}

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bw-test-policy-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct bw_policy *build(struct bw_feed_conf *feeds, size_t n, char **allow, size_t n_allow,
			       const struct bw_policy *prev)
{
	struct bw_conf conf;
	struct bw_policy *p = NULL;

	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = n;
	conf.policy.allowlist = allow;
	conf.policy.n_allowlist = n_allow;
	assert_int_equal(bw_policy_build(&conf, prev, 7, &p), 0);
	assert_non_null(p);
	return p;
}

/* ---- names ---- */

static void test_name_to_wire(void **state)
{
	uint8_t w[255];
	const char *r;
	char long_label[70], long_name[300];

	(void)state;
	assert_int_equal(bw_feed_name_to_wire("Example.ORG", 11, w, &r), 13);
	assert_memory_equal(w, "\7example\3org", 13);
	assert_int_equal(bw_feed_name_to_wire("example.org.", 12, w, &r), 13);
	assert_int_equal(bw_feed_name_to_wire("_dmarc.x-y.com", 14, w, &r), 16);
	assert_int_equal(bw_feed_name_to_wire("com", 3, w, &r), 5);
	assert_int_equal(bw_feed_name_to_wire("", 0, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire(".", 1, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire("a..b", 4, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire(".a.b", 4, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire("a.b..", 5, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire("*.a.b", 5, w, &r), 0);
	assert_string_equal(r, "wildcards are not supported");
	assert_int_equal(bw_feed_name_to_wire("b\303\244d.de", 7, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire("a/b.com", 7, w, &r), 0);
	assert_int_equal(bw_feed_name_to_wire("a\0b.com", 7, w, &r), 0);

	memset(long_label, 'a', 63);
	memcpy(long_label + 63, ".com", 5);
	assert_int_equal(bw_feed_name_to_wire(long_label, strlen(long_label), w, &r), 69);
	memset(long_label, 'a', 64);
	memcpy(long_label + 64, ".com", 5);
	assert_int_equal(bw_feed_name_to_wire(long_label, strlen(long_label), w, &r), 0);

	/* 253 text bytes is the longest name (255 in wire form) */
	for (int i = 0; i < 300; i += 2) {
		long_name[i] = 'a';
		long_name[i + 1] = '.';
	}
	assert_int_equal(bw_feed_name_to_wire(long_name, 253, w, &r), 255);
	assert_int_equal(bw_feed_name_to_wire(long_name, 254, w, &r), 255); /* trailing dot */
	assert_int_equal(bw_feed_name_to_wire(long_name, 255, w, &r), 0);
}

/* ---- parsers ---- */

static void test_parse_domains(void **state)
{
	static const char feed[] = "# a comment\n"
				   "\n"
				   "Evil.Example.COM\r\n"
				   "  spaced.example.net   \t\n"
				   "trailing.example.org # trailing comment\n"
				   "fqdn.example.\n"
				   "two tokens.example\n"
				   "bad..name\n"
				   "*.wild.example\n"
				   "192.0.2.1\n"
				   "2001:db8::1\n"
				   "   # indented comment\r\n"
				   "\r\n"
				   "last.example"; /* no final newline */
	struct names ns = {0};
	struct bw_feed_stats st;
	uint8_t w[255];

	(void)state;
	bw_feed_parse_stats(feed, sizeof(feed) - 1, BW_FEED_DOMAINS, "t", collect, &ns, &st);
	assert_int_equal(ns.n, 5);
	assert_int_equal(st.names, 5);
	assert_int_equal(st.bad_lines, 3);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.lines, 14);
	qsort(ns.v, ns.n, sizeof(*ns.v), wname_cmp);
	assert_true(names_has(&ns, w, wire("evil.example.com", w)));
	assert_true(names_has(&ns, w, wire("spaced.example.net", w)));
	assert_true(names_has(&ns, w, wire("trailing.example.org", w)));
	assert_true(names_has(&ns, w, wire("fqdn.example", w)));
	assert_true(names_has(&ns, w, wire("last.example", w)));
	assert_int_equal(
	    bw_feed_parse_buf(feed, sizeof(feed) - 1, BW_FEED_DOMAINS, NULL, collect, &ns), 3);
	free(ns.v);
}

static void test_parse_hosts(void **state)
{
	static const char feed[] =
	    "# hosts\n"
	    "127.0.0.1 localhost\n"
	    "127.0.0.1\tlocalhost.localdomain local\n"
	    "255.255.255.255 broadcasthost\n"
	    "::1 ip6-localhost ip6-loopback\n"
	    "0.0.0.0 0.0.0.0\n"
	    "0.0.0.0 One.Example.com two.example.com\tthree.example.com # c\r\n"
	    "127.0.0.1 four.example.com.\n"
	    ":: five.example.com\n"
	    "192.0.2.7 six.example.com\n"
	    "0.0.0.0\n"				   /* bad: no names */
	    "0.0.0.0 # only a comment\n"	   /* bad: no names */
	    "notanip seven.example.com\n"	   /* bad: not an IP */
	    "999.1.1.1 eight.example.com\n"	   /* bad: not an IP */
	    "0.0.0.0 nine.example.com bad..name\n" /* bad, nine kept */
	    "ten.example.com\n";		   /* bad: domains line */
	struct names ns = {0};
	struct bw_feed_stats st;
	uint8_t w[255];

	(void)state;
	bw_feed_parse_stats(feed, sizeof(feed) - 1, BW_FEED_HOSTS, "t", collect, &ns, &st);
	assert_int_equal(st.bad_lines, 6);
	assert_int_equal(ns.n, 7);
	assert_int_equal(st.skipped, 7);
	qsort(ns.v, ns.n, sizeof(*ns.v), wname_cmp);
	const char *want[] = {"one.example.com",  "two.example.com",  "three.example.com",
			      "four.example.com", "five.example.com", "six.example.com",
			      "nine.example.com"};
	for (size_t i = 0; i < BW_ARRAY_LEN(want); i++)
		assert_true(names_has(&ns, w, wire(want[i], w)));
	assert_false(names_has(&ns, w, wire("localhost", w)));
	free(ns.v);
}

static void test_parse_long_line(void **state)
{
	size_t n = 100000;
	char *buf = malloc(n + 64);
	struct names ns = {0};
	struct bw_feed_stats st;

	(void)state;
	assert_non_null(buf);
	size_t off = (size_t)snprintf(buf, 64, "a.example\n");
	memset(buf + off, 'x', n);
	off += n;
	off += (size_t)snprintf(buf + off, 64, "\nb.example\n");
	bw_feed_parse_stats(buf, off, BW_FEED_DOMAINS, "long", collect, &ns, &st);
	assert_int_equal(ns.n, 2);
	assert_int_equal(st.bad_lines, 1);
	bw_feed_parse_stats(buf, off, BW_FEED_HOSTS, "long", collect, &ns, &st);
	assert_int_equal(st.bad_lines, 3);

	/* exactly 4096 bytes is still a line; 4097 is not */
	memset(buf, ' ', 4096);
	memcpy(buf, "c.example", 9);
	buf[4096] = '\n';
	ns.n = 0;
	bw_feed_parse_stats(buf, 4097, BW_FEED_DOMAINS, NULL, collect, &ns, &st);
	assert_int_equal(ns.n, 1);
	memset(buf, ' ', 4097);
	memcpy(buf, "c.example", 9);
	bw_feed_parse_stats(buf, 4097, BW_FEED_DOMAINS, NULL, collect, &ns, &st);
	assert_int_equal(st.bad_lines, 1);
	free(buf);
	free(ns.v);
}

static void test_parse_file_errors(void **state)
{
	struct names ns = {0};

	(void)state;
	assert_true(bw_feed_parse_file("/nonexistent/feed", BW_FEED_DOMAINS, collect, &ns) < 0);
	assert_true(bw_feed_parse_file("/tmp", BW_FEED_DOMAINS, collect, &ns) < 0);
	assert_int_equal(ns.n, 0);
	/* a BOM at the start is not part of the first name */
	char *path = write_file("bom.txt", "\357\273\277bom.example\n");
	assert_int_equal(bw_feed_parse_file(path, BW_FEED_DOMAINS, collect, &ns), 0);
	assert_int_equal(ns.n, 1);
	free(path);
	free(ns.v);
}

/* ---- match ---- */

static void test_match(void **state)
{
	char *f = write_file("m.domains", "bad.example.com\nEvil.ORG\n");
	struct bw_feed_conf feeds[] = {{"malware", "malware", BW_FEED_DOMAINS, f}};
	struct bw_policy *p = build(feeds, 1, NULL, 0, NULL);
	struct bw_verdict v;

	(void)state;
	assert_int_equal(bw_policy_entries(p), 2);
	assert_int_equal(bw_policy_feed_count(p), 1);
	assert_int_equal(bw_policy_generation(p), 7);
	assert_true(bw_policy_memory(p) > 0);

	assert_true(match(p, "bad.example.com", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.ede, 15);
	assert_int_equal(v.feed, 0);
	assert_string_equal(v.feed_name, "malware");
	assert_string_equal(v.category, "malware");
	assert_false(v.allowlisted);

	assert_true(match(p, "www.bad.example.com", &v));
	assert_true(match(p, "a.b.c.bad.example.com", &v));
	assert_true(match(p, "evil.org", &v));
	assert_true(match(p, "x.evil.org", &v));
	assert_false(match(p, "example.com", &v)); /* parent of a listed name */
	assert_int_equal(v.action, BW_ACT_ALLOW);
	assert_int_equal(v.feed, -1);
	assert_null(v.feed_name);
	assert_false(match(p, "com", &v));
	assert_false(match(p, "notbad.example.com", &v)); /* not a label boundary */
	assert_false(match(p, "bad.example.com.evil", &v));
	assert_false(match(p, "evil.org.example", &v));

	/* the match takes lower-cased input only */
	const uint8_t *upper = (const uint8_t *)"\4EVIL\3org",
		      *lower = (const uint8_t *)"\4evil\3org";
	assert_false(bw_policy_match(p, upper, 10, &v));
	assert_true(bw_policy_match(p, lower, 10, &v));

	/* malformed or degenerate input never reads out of bounds or matches */
	assert_false(bw_policy_match(p, (const uint8_t *)"", 1, &v));
	assert_false(bw_policy_match(p, lower, 9, &v));
	assert_false(bw_policy_match(p, (const uint8_t *)"\77evil", 5, &v));
	assert_false(bw_policy_match(p, NULL, 0, &v));
	assert_false(bw_policy_match(NULL, lower, 10, &v));
	bw_policy_free(p);
	free(f);
}

static void test_allowlist(void **state)
{
	char *f = write_file("a.domains", "example.com\nad.tracker.net\nok.example.org\n");
	struct bw_feed_conf feeds[] = {{"ads", "ads", BW_FEED_DOMAINS, f}};
	char *allow[] = {"good.example.com", "tracker.net", "ok.example.org"};
	struct bw_policy *p = build(feeds, 1, allow, 3, NULL);
	struct bw_verdict v;

	(void)state;
	assert_true(match(p, "example.com", &v));
	assert_true(match(p, "www.example.com", &v));
	assert_false(match(p, "good.example.com", &v));
	assert_true(v.allowlisted);
	assert_int_equal(v.action, BW_ACT_ALLOW);
	assert_int_equal(v.feed, -1);
	assert_false(match(p, "deep.sub.good.example.com", &v));
	assert_true(v.allowlisted);
	assert_false(match(p, "ad.tracker.net", &v)); /* parent allowlisted */
	assert_true(v.allowlisted);
	assert_false(match(p, "ok.example.org", &v)); /* the same name in both */
	assert_true(v.allowlisted);
	assert_false(match(p, "other.example.net", &v));
	assert_false(v.allowlisted);
	assert_true(match(p, "notgood.example.com", &v));
	assert_false(v.allowlisted);
	assert_int_equal(bw_policy_entries(p), 3);
	bw_policy_free(p);
	free(f);
}

static void test_feed_order(void **state)
{
	char *f0 = write_file("o0.domains", "same.com\nsub.parent.com\nchild.p2.com\n");
	char *f1 = write_file("o1.hosts", "0.0.0.0 same.com other.com\n0.0.0.0 parent.com\n"
					  "0.0.0.0 p2.com\n");
	struct bw_feed_conf feeds[] = {{"first", "phishing", BW_FEED_DOMAINS, f0},
				       {"second", "malware", BW_FEED_HOSTS, f1}};
	struct bw_policy *p = build(feeds, 2, NULL, 0, NULL);
	struct bw_verdict v;

	(void)state;
	assert_true(match(p, "same.com", &v));
	assert_int_equal(v.feed, 0);
	assert_string_equal(v.feed_name, "first");
	assert_string_equal(v.category, "phishing");
	assert_true(match(p, "other.com", &v));
	assert_int_equal(v.feed, 1);
	assert_string_equal(v.category, "malware");
	/* first feed lists the child, second the parent */
	assert_true(match(p, "x.sub.parent.com", &v));
	assert_int_equal(v.feed, 0);
	assert_true(match(p, "sub.parent.com", &v));
	assert_int_equal(v.feed, 0);
	assert_true(match(p, "other.parent.com", &v));
	assert_int_equal(v.feed, 1);
	assert_true(match(p, "child.p2.com", &v));
	assert_int_equal(v.feed, 0);

	assert_int_equal(bw_policy_entries(p), 6);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, 3);
	assert_int_equal(bw_policy_feed_status(p, 1)->entries, 3); /* same.com went to feed 0 */
	assert_null(bw_policy_feed_status(p, 2));
	bw_policy_free(p);

	/* reversed order: the other feed is reported */
	struct bw_feed_conf rev[] = {feeds[1], feeds[0]};
	p = build(rev, 2, NULL, 0, NULL);
	assert_true(match(p, "same.com", &v));
	assert_string_equal(v.feed_name, "second");
	assert_true(match(p, "x.sub.parent.com", &v));
	assert_int_equal(v.feed, 0);
	bw_policy_free(p);
	free(f0);
	free(f1);
}

static void test_case_insensitive(void **state)
{
	char *f = write_file("c.hosts", "0.0.0.0 MiXeD.ExAmPlE.CoM\n");
	struct bw_feed_conf feeds[] = {{"c", "c", BW_FEED_HOSTS, f}};
	char *allow[] = {"Safe.MIXED.example.com"};
	struct bw_policy *p = build(feeds, 1, allow, 1, NULL);
	struct bw_verdict v;

	(void)state;
	assert_true(match(p, "WWW.Mixed.Example.Com", &v)); /* wire() lower-cases */
	assert_false(match(p, "safe.mixed.example.com", &v));
	assert_true(v.allowlisted);
	bw_policy_free(p);
	free(f);
}

static void test_previous_fallback(void **state)
{
	char *f0 = write_file("keep.domains", "kept.example\nalso.kept.example\nsolo.example\n");
	char *f1 = write_file("other.domains", "other.example\nkept.example\n");
	struct bw_feed_conf feeds[] = {{"keep", "malware", BW_FEED_DOMAINS, f0},
				       {"other", "phishing", BW_FEED_DOMAINS, f1}};
	struct bw_verdict v;

	(void)state;
	struct bw_policy *p1 = build(feeds, 2, NULL, 0, NULL);
	assert_int_equal(bw_policy_entries(p1), 4);
	assert_int_equal(unlink(f0), 0);

	/* the file is gone: its entries come from p1 */
	struct bw_policy *p2 = build(feeds, 2, NULL, 0, p1);
	const struct bw_feed_status *fs = bw_policy_feed_status(p2, 0);
	assert_int_not_equal(fs->load_error, 0);
	assert_true(fs->kept_previous);
	assert_int_equal(fs->entries, 3);
	assert_int_equal(bw_policy_feed_status(p2, 1)->load_error, 0);
	assert_false(bw_policy_feed_status(p2, 1)->kept_previous);
	assert_true(match(p2, "x.also.kept.example", &v));
	assert_int_equal(v.feed, 0);
	assert_true(match(p2, "kept.example", &v));
	assert_int_equal(v.feed, 0);
	assert_true(match(p2, "other.example", &v));
	assert_int_equal(v.feed, 1);
	bw_policy_free(p1);

	/* and again from p2 (a second reload while the file is still missing), with the feed
	 * moved to another position */
	struct bw_feed_conf moved[] = {feeds[1], feeds[0]};
	struct bw_policy *p3 = build(moved, 2, NULL, 0, p2);
	assert_true(bw_policy_feed_status(p3, 1)->kept_previous);
	assert_true(match(p3, "www.solo.example", &v));
	assert_int_equal(v.feed, 1);
	assert_string_equal(v.feed_name, "keep");
	assert_true(match(p3, "also.kept.example", &v));
	assert_int_equal(v.feed, 0); /* its parent is now listed first, by "other" */
	assert_int_equal(bw_policy_entries(p3), 4);
	bw_policy_free(p3);

	/* no previous snapshot: the feed is empty, and says so */
	struct bw_policy *p4 = build(feeds, 2, NULL, 0, NULL);
	fs = bw_policy_feed_status(p4, 0);
	assert_int_not_equal(fs->load_error, 0);
	assert_false(fs->kept_previous);
	assert_int_equal(fs->entries, 0);
	assert_false(match(p4, "solo.example", &v));
	assert_true(match(p4, "kept.example", &v));
	assert_int_equal(v.feed, 1);
	bw_policy_free(p4);
	bw_policy_free(p2);
	free(f0);
	free(f1);
}

static void test_files_changed(void **state)
{
	char *f = write_file("w.domains", "one.example\n");
	struct bw_feed_conf feeds[] = {{"w", "w", BW_FEED_DOMAINS, f}};
	struct bw_conf conf;

	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 1;
	struct bw_policy *p = build(feeds, 1, NULL, 0, NULL);
	assert_true(bw_policy_feed_status(p, 0)->file_size == 12);
	assert_true(bw_policy_feed_status(p, 0)->file_mtime_ns != 0);
	assert_false(bw_policy_files_changed(p, &conf));

	free(write_file("w.domains", "one.example\ntwo.example\n")); /* size changes */
	assert_true(bw_policy_files_changed(p, &conf));
	struct bw_policy *p2 = build(feeds, 1, NULL, 0, p);
	bw_policy_free(p);
	assert_false(bw_policy_files_changed(p2, &conf));
	assert_int_equal(bw_policy_entries(p2), 2);

	assert_int_equal(unlink(f), 0); /* gone */
	assert_true(bw_policy_files_changed(p2, &conf));
	struct bw_policy *p3 = build(feeds, 1, NULL, 0, p2);
	bw_policy_free(p2);
	assert_false(bw_policy_files_changed(p3, &conf)); /* still gone: nothing new */
	assert_int_equal(bw_policy_entries(p3), 2);

	free(write_file("w.domains", "three.example\n")); /* back */
	assert_true(bw_policy_files_changed(p3, &conf));

	/* a different feed list is a change */
	conf.policy.n_feeds = 0;
	assert_true(bw_policy_files_changed(p3, &conf));
	bw_policy_free(p3);
	free(f);
}

static void test_empty(void **state)
{
	struct bw_policy *p = build(NULL, 0, NULL, 0, NULL);
	struct bw_verdict v;

	(void)state;
	assert_int_equal(bw_policy_entries(p), 0);
	assert_false(match(p, "example.com", &v));
	assert_int_equal(v.feed, -1);
	bw_policy_free(p);
	bw_policy_free(NULL);
}

/* ---- real feed excerpts ---- */

static struct bw_feed_conf real_feeds[] = {
    {"urlhaus", "malware", BW_FEED_DOMAINS, "tests/data/urlhaus-filter_2025-07-19.domains.txt"},
    {"urlhaus-hosts", "malware", BW_FEED_HOSTS, "tests/data/urlhaus-filter_2025-07-19.hosts"},
    {"stalkerware", "stalkerware", BW_FEED_DOMAINS,
     "tests/data/stalkerware_2023-05-31.domains.txt"},
    {"scam", "phishing", BW_FEED_HOSTS, "tests/data/scamblocklist_2026-08-22.hosts"},
};

static void test_real_data(void **state)
{
	struct names listed = {0}, top = {0};
	struct bw_verdict v;
	size_t n_real = BW_ARRAY_LEN(real_feeds);

	(void)state;
	struct bw_policy *p = build(real_feeds, n_real, NULL, 0, NULL);
	for (size_t i = 0; i < n_real; i++) {
		const struct bw_feed_status *fs = bw_policy_feed_status(p, i);
		assert_int_equal(fs->load_error, 0);
		assert_int_equal(fs->bad_lines, 0);
		assert_true(fs->entries > 0 || i == 1); /* the hosts list repeats the domains */
		size_t before = listed.n;
		long bad =
		    bw_feed_parse_file(real_feeds[i].file, real_feeds[i].format, collect, &listed);
		assert_int_equal(bad, 0);
		assert_true(listed.n - before >= 400);
	}
	assert_int_equal(bw_policy_feed_status(p, 0)->skipped, 100); /* the IPv4 lines */

	/* every listed name is blocked, by the first feed that lists it */
	for (size_t i = 0; i < listed.n; i++) {
		assert_true(bw_policy_match(p, listed.v[i].b, listed.v[i].len, &v));
		assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	}
	qsort(listed.v, listed.n, sizeof(*listed.v), wname_cmp);
	size_t distinct = 0;
	for (size_t i = 0; i < listed.n; i++)
		distinct += i == 0 || wname_cmp(&listed.v[i - 1], &listed.v[i]) != 0;
	assert_int_equal(bw_policy_entries(p), distinct);

	/* popular names: blocked exactly when they or a parent are listed */
	assert_int_equal(bw_feed_parse_file("tests/data/tranco-top10k_20250115.head2000.txt",
					    BW_FEED_DOMAINS, collect, &top),
			 0);
	assert_true(top.n >= 1990);
	size_t expect_blocked = 0, parents = 0;
	for (size_t i = 0; i < listed.n; i++) {
		/* popular parents of listed names (wixsite.com, duckdns.org): the real test
		 * that a child never blocks its parent */
		struct wname *l = &listed.v[i];
		for (size_t j = 0; j < top.n; j++) {
			size_t tl = top.v[j].len;
			if (tl < l->len && memcmp(l->b + l->len - tl, top.v[j].b, tl) == 0 &&
			    l->b[0] != 0) {
				parents++;
				break;
			}
		}
	}
	assert_true(parents > 0);
	for (size_t i = 0; i < top.n; i++) {
		const uint8_t *w = top.v[i].b;
		size_t len = top.v[i].len, pos = 0;
		bool expect = false;

		while (w[pos] != 0 && !expect) {
			expect = names_has(&listed, w + pos, len - pos);
			pos += 1u + w[pos];
		}
		expect_blocked += expect;
		assert_int_equal(bw_policy_match(p, w, len, &v), expect);
	}
	print_message("real data: %zu listed names (%zu distinct), %zu of %zu top names listed, "
		      "%zu listed names under a top name\n",
		      listed.n, distinct, expect_blocked, top.n, parents);
	bw_policy_free(p);
	free(listed.v);
	free(top.v);
}

static void test_shipped_feeds(void **state)
{
	struct bw_feed_conf feeds[] = {
	    {"malware", "malware", BW_FEED_DOMAINS, "etc/feeds/malware.domains"},
	    {"phishing", "phishing", BW_FEED_HOSTS, "etc/feeds/phishing.hosts"},
	};
	struct bw_policy *p = build(feeds, 2, NULL, 0, NULL);

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(bw_policy_feed_status(p, i)->load_error, 0);
		assert_int_equal(bw_policy_feed_status(p, i)->bad_lines, 0);
	}
	/* 200 names each; one scam host is also in the malware excerpt, so it counts there */
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, 200);
	assert_true(bw_policy_feed_status(p, 1)->entries >= 190);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries +
			     bw_policy_feed_status(p, 1)->entries,
			 bw_policy_entries(p));
	bw_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_to_wire),      cmocka_unit_test(test_parse_domains),
	    cmocka_unit_test(test_parse_hosts),	      cmocka_unit_test(test_parse_long_line),
	    cmocka_unit_test(test_parse_file_errors), cmocka_unit_test(test_match),
	    cmocka_unit_test(test_allowlist),	      cmocka_unit_test(test_feed_order),
	    cmocka_unit_test(test_case_insensitive),  cmocka_unit_test(test_previous_fallback),
	    cmocka_unit_test(test_files_changed),     cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_real_data),	      cmocka_unit_test(test_shipped_feeds),
	};

	bw_log_set_level(BW_LOG_ERR);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
