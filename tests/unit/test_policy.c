/*
 * tests/unit/test_policy.c - feed parsers, snapshot build and match, reload fallback,
 * change detection, real feed excerpts from tests/data (run from the repository root), and
 * the rule engine: RPZ precedence, actions and overrides, profiles, IP and NSDNAME
 * triggers, broken feeds, incremental deltas and compaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy/rules.h"

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
	struct bw_feed_conf feeds[] = {
	    {.name = "malware", .category = "malware", .format = BW_FEED_DOMAINS, .file = f}};
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
	struct bw_feed_conf feeds[] = {
	    {.name = "ads", .category = "ads", .format = BW_FEED_DOMAINS, .file = f}};
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
	struct bw_feed_conf feeds[] = {
	    {.name = "first", .category = "phishing", .format = BW_FEED_DOMAINS, .file = f0},
	    {.name = "second", .category = "malware", .format = BW_FEED_HOSTS, .file = f1}};
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
	/* every feed keeps its own entry for a name listed by several (a profile without the
	 * first feed still finds the second) */
	assert_int_equal(bw_policy_feed_status(p, 1)->entries, 4);
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
	struct bw_feed_conf feeds[] = {
	    {.name = "c", .category = "c", .format = BW_FEED_HOSTS, .file = f}};
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
	struct bw_feed_conf feeds[] = {
	    {.name = "keep", .category = "malware", .format = BW_FEED_DOMAINS, .file = f0},
	    {.name = "other", .category = "phishing", .format = BW_FEED_DOMAINS, .file = f1}};
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
	struct bw_feed_conf feeds[] = {
	    {.name = "w", .category = "w", .format = BW_FEED_DOMAINS, .file = f}};
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
	conf.policy.n_feeds = 1;

	/* a fetched feed's file is its last good copy, written and published by the feed
	 * manager (an IXFR's changes reach the policy before the copy): never a change */
	feeds[0].source = BW_FEED_SRC_XFR;
	free(write_file("w.domains", "three.example\nfour.example\n"));
	assert_false(bw_policy_files_changed(p3, &conf));
	feeds[0].source = BW_FEED_SRC_FILE;
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
    {.name = "urlhaus",
     .category = "malware",
     .format = BW_FEED_DOMAINS,
     .file = "tests/data/urlhaus-filter_2025-07-19.domains.txt"},
    {.name = "urlhaus-hosts",
     .category = "malware",
     .format = BW_FEED_HOSTS,
     .file = "tests/data/urlhaus-filter_2025-07-19.hosts"},
    {.name = "stalkerware",
     .category = "stalkerware",
     .format = BW_FEED_DOMAINS,
     .file = "tests/data/stalkerware_2023-05-31.domains.txt"},
    {.name = "scam",
     .category = "phishing",
     .format = BW_FEED_HOSTS,
     .file = "tests/data/scamblocklist_2026-08-22.hosts"},
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
	    {.name = "malware",
	     .category = "malware",
	     .format = BW_FEED_DOMAINS,
	     .file = "etc/feeds/malware.domains"},
	    {.name = "phishing",
	     .category = "phishing",
	     .format = BW_FEED_HOSTS,
	     .file = "etc/feeds/phishing.hosts"},
	};
	struct bw_policy *p = build(feeds, 2, NULL, 0, NULL);

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(bw_policy_feed_status(p, i)->load_error, 0);
		assert_int_equal(bw_policy_feed_status(p, i)->bad_lines, 0);
	}
	/* 200 names each; one scam host is also in the malware excerpt: it counts for both
	 * feeds, once among the distinct names */
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, 200);
	assert_int_equal(bw_policy_feed_status(p, 1)->entries, 200);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries +
			     bw_policy_feed_status(p, 1)->entries,
			 bw_policy_entries(p) + 1);
	bw_policy_free(p);
}

/* ---- rules (RPZ semantics) ---- */

#define MAX_RULES 96

/* Rules made by hand, with their names and records kept alive beside them. */
struct rules {
	struct bw_rule r[MAX_RULES];
	uint8_t names[MAX_RULES][255];
	uint8_t targets[MAX_RULES][255];
	struct bw_rule_rr rrs[MAX_RULES];
	uint8_t rdata[MAX_RULES][16];
	size_t n;
};

/* Text name to wire; "." is the root. */
static size_t wire_any(const char *text, uint8_t *out)
{
	if (strcmp(text, ".") == 0) {
		out[0] = 0;
		return 1;
	}
	return wire(text, out);
}

static struct bw_rule *rule_name(struct rules *rs, enum bw_trigger t, const char *name,
				 enum bw_action a)
{
	assert_true(rs->n < MAX_RULES);
	struct bw_rule *r = &rs->r[rs->n];
	memset(r, 0, sizeof(*r));
	r->trigger = t;
	r->name_len = wire_any(name, rs->names[rs->n]);
	r->name = rs->names[rs->n];
	r->action = a;
	r->ttl = 300;
	rs->n++;
	return r;
}

static void set_net(struct bw_cidr *net, const char *cidr)
{
	char buf[64];
	const char *slash = strchr(cidr, '/');

	assert_non_null(slash);
	size_t n = (size_t)(slash - cidr);
	memcpy(buf, cidr, n);
	buf[n] = 0;
	memset(net, 0, sizeof(*net));
	net->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(net->family, buf, net->addr), 1);
	net->prefix = (uint8_t)strtoul(slash + 1, NULL, 10);
}

static struct bw_rule *rule_net(struct rules *rs, enum bw_trigger t, const char *cidr,
				enum bw_action a)
{
	assert_true(rs->n < MAX_RULES);
	struct bw_rule *r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	r->trigger = t;
	set_net(&r->net, cidr);
	r->action = a;
	r->ttl = 300;
	return r;
}

/* A LOCAL_DATA rule with one A or AAAA record (TTL 60). */
static struct bw_rule *rule_local(struct rules *rs, enum bw_trigger t, const char *name,
				  const char *ip)
{
	struct bw_rule *r = rule_name(rs, t, name, BW_ACT_LOCAL_DATA);
	size_t i = rs->n - 1;
	bool v6 = strchr(ip, ':') != NULL;

	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, ip, rs->rdata[i]), 1);
	rs->rrs[i] = (struct bw_rule_rr){
	    .type = v6 ? 28 : 1, .ttl = 60, .rdlen = v6 ? 16 : 4, .rdata = rs->rdata[i]};
	r->rrs = &rs->rrs[i];
	r->n_rrs = 1;
	return r;
}

static struct bw_rule *rule_redirect(struct rules *rs, enum bw_trigger t, const char *name,
				     const char *target, bool wild)
{
	struct bw_rule *r = rule_name(rs, t, name, BW_ACT_REDIRECT);
	size_t i = rs->n - 1;

	r->target_len = wire_any(target, rs->targets[i]);
	r->target = rs->targets[i];
	r->target_wildcard = wild;
	return r;
}

/* A config of n empty domains feeds named f0, f1, ... (category c0, c1, ...). */
struct tconf {
	struct bw_conf conf;
	struct bw_feed_conf feeds[MAX_RULES + 2];
	char names[MAX_RULES + 2][2][24];
	char *empty;
};

static void tconf_init(struct tconf *t, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->empty = write_file("empty.domains", "");
	for (size_t i = 0; i < n; i++) {
		snprintf(t->names[i][0], sizeof(t->names[i][0]), "f%zu", i);
		snprintf(t->names[i][1], sizeof(t->names[i][1]), "c%zu", i);
		t->feeds[i] = (struct bw_feed_conf){.name = t->names[i][0],
						    .category = t->names[i][1],
						    .format = BW_FEED_DOMAINS,
						    .file = t->empty};
	}
	t->conf.policy.feeds = t->feeds;
	t->conf.policy.n_feeds = n;
}

/* The snapshot of conf plus the rules of each feed: built, then one delta per feed on top,
 * then (when `compact`) folded into a fresh base. Intermediate snapshots are freed at once,
 * before the ones made from them. */
static struct bw_policy *with_rules(const struct bw_conf *conf, const struct rules *per_feed,
				    size_t n, bool compact)
{
	struct bw_policy *p = NULL, *q;

	assert_int_equal(bw_policy_build(conf, NULL, 1, &p), 0);
	for (size_t f = 0; f < n; f++) {
		if (per_feed[f].n == 0)
			continue;
		assert_int_equal(bw_policy_apply_delta(p, (unsigned)f, per_feed[f].r, per_feed[f].n,
						       NULL, 0, 2 + f, &q),
				 0);
		bw_policy_free(p);
		p = q;
	}
	if (compact) {
		assert_int_equal(bw_policy_compact(p, 100, &q), 0);
		bw_policy_free(p);
		p = q;
	}
	return p;
}

/* Matches a text name; v->match points into a static buffer, valid until the next call. */
static bool qmatch(const struct bw_policy *p, unsigned profile, const char *text,
		   struct bw_verdict *v)
{
	static uint8_t w[255];
	size_t n = wire_any(text, w);

	return bw_policy_match_qname(p, profile, w, n, v);
}

static void assert_match_name(const struct bw_verdict *v, const char *text)
{
	uint8_t w[255];
	size_t n = wire_any(text, w);

	assert_int_equal(v->match_len, n);
	assert_memory_equal(v->match, w, n);
}

static struct rules rs_a[4];

static void test_precedence(void **state)
{
	struct tconf t;
	struct bw_verdict v;

	(void)state;
	memset(rs_a, 0, sizeof(rs_a));
	tconf_init(&t, 2);
	rule_name(&rs_a[0], BW_TRIG_QNAME, "a.b.test", BW_ACT_NODATA);
	rule_name(&rs_a[0], BW_TRIG_WILDCARD, "b.test", BW_ACT_DROP);
	rule_name(&rs_a[0], BW_TRIG_WILDCARD, "test", BW_ACT_NXDOMAIN);
	rule_name(&rs_a[0], BW_TRIG_WILDCARD, "x.org", BW_ACT_NODATA);
	rule_name(&rs_a[1], BW_TRIG_QNAME, "x.org", BW_ACT_NXDOMAIN);
	rule_name(&rs_a[1], BW_TRIG_QNAME, "y.x.org", BW_ACT_NXDOMAIN);
	rule_name(&rs_a[1], BW_TRIG_WILDCARD, ".", BW_ACT_TCP_ONLY);
	rule_name(&rs_a[1], BW_TRIG_QNAME, ".", BW_ACT_DROP);
	for (int compact = 0; compact < 2; compact++) {
		struct bw_policy *p = with_rules(&t.conf, rs_a, 2, compact);

		/* an exact rule beats the wildcards of its feed */
		assert_true(qmatch(p, 0, "a.b.test", &v));
		assert_int_equal(v.feed, 0);
		assert_int_equal(v.action, BW_ACT_NODATA);
		assert_int_equal(v.trigger, BW_TRIG_QNAME);
		assert_match_name(&v, "a.b.test");
		/* the most specific wildcard wins */
		assert_true(qmatch(p, 0, "c.a.b.test", &v));
		assert_int_equal(v.action, BW_ACT_DROP);
		assert_int_equal(v.trigger, BW_TRIG_WILDCARD);
		assert_match_name(&v, "b.test");
		/* a wildcard does not match its own name */
		assert_true(qmatch(p, 0, "b.test", &v));
		assert_int_equal(v.action, BW_ACT_NXDOMAIN);
		assert_match_name(&v, "test");
		assert_true(qmatch(p, 0, "test", &v));
		assert_int_equal(v.feed, 1); /* only the root wildcard of feed 1 */
		assert_int_equal(v.action, BW_ACT_TCP_ONLY);
		assert_int_equal(v.ede, 0xffff);
		assert_match_name(&v, ".");
		/* feed order: the first feed's wildcard beats the second feed's exact name */
		assert_true(qmatch(p, 0, "y.x.org", &v));
		assert_int_equal(v.feed, 0);
		assert_int_equal(v.action, BW_ACT_NODATA);
		assert_true(qmatch(p, 0, "x.org", &v));
		assert_int_equal(v.feed, 1);
		assert_int_equal(v.action, BW_ACT_NXDOMAIN);
		assert_int_equal(v.trigger, BW_TRIG_QNAME);
		/* the root wildcard matches everything, the root itself only by its exact rule */
		assert_true(qmatch(p, 0, "anything.example.com", &v));
		assert_int_equal(v.action, BW_ACT_TCP_ONLY);
		assert_true(qmatch(p, 0, ".", &v));
		assert_int_equal(v.action, BW_ACT_DROP);
		assert_int_equal(v.trigger, BW_TRIG_QNAME);
		/* profile 0 is the implicit "default" with all feeds */
		assert_int_equal(bw_policy_profile_count(p), 1);
		assert_string_equal(bw_policy_profile_name(p, 0), "default");
		assert_null(bw_policy_profile_name(p, 1));
		assert_int_equal(bw_policy_first_post_feed(p, 0), INT_MAX);
		assert_false(bw_policy_has_client_rules(p, 0));
		bw_policy_free(p);
	}
	free(t.empty);
}

static void test_actions(void **state)
{
	struct tconf t;
	struct bw_verdict v;

	(void)state;
	memset(rs_a, 0, sizeof(rs_a));
	tconf_init(&t, 1);
	struct rules *r = &rs_a[0];
	rule_name(r, BW_TRIG_QNAME, "nx.test", BW_ACT_NXDOMAIN);
	rule_name(r, BW_TRIG_QNAME, "nodata.test", BW_ACT_NODATA);
	rule_name(r, BW_TRIG_QNAME, "drop.test", BW_ACT_DROP);
	rule_name(r, BW_TRIG_QNAME, "tcp.test", BW_ACT_TCP_ONLY);
	rule_name(r, BW_TRIG_QNAME, "pass.test", BW_ACT_PASSTHRU);
	rule_name(r, BW_TRIG_QNAME, "ttl.test", BW_ACT_NXDOMAIN)->ttl = 42;
	rule_local(r, BW_TRIG_QNAME, "ld.test", "192.0.2.1");
	rule_local(r, BW_TRIG_QNAME, "ld.test", "192.0.2.2");
	rule_local(r, BW_TRIG_WILDCARD, "ld.test", "192.0.2.9"); /* another trigger: apart */
	rule_local(r, BW_TRIG_QNAME, "ld.test", "2001:db8::1");
	rule_redirect(r, BW_TRIG_QNAME, "redir.test", "walled.example.org", false);
	rule_redirect(r, BW_TRIG_WILDCARD, "wr.test", "garden.example", true);
	rule_name(r, BW_TRIG_QNAME, "first.test", BW_ACT_NODATA);
	rule_name(r, BW_TRIG_QNAME, "first.test", BW_ACT_NXDOMAIN); /* the first rule stays */
	rule_local(r, BW_TRIG_QNAME, "ldpass.test", "192.0.2.3");
	rule_name(r, BW_TRIG_QNAME, "ldpass.test", BW_ACT_PASSTHRU);
	rule_name(r, BW_TRIG_QNAME, "passld.test", BW_ACT_PASSTHRU);
	rule_local(r, BW_TRIG_QNAME, "passld.test", "192.0.2.4");
	for (int compact = 0; compact < 2; compact++) {
		struct bw_policy *p = with_rules(&t.conf, rs_a, 1, compact);
		static const struct {
			const char *name;
			enum bw_action act;
			uint16_t ede;
		} want[] = {
		    {"nx.test", BW_ACT_NXDOMAIN, 15},
		    {"nodata.test", BW_ACT_NODATA, 15},
		    {"drop.test", BW_ACT_DROP, 15},
		    {"tcp.test", BW_ACT_TCP_ONLY, 0xffff},
		    {"pass.test", BW_ACT_PASSTHRU, 0xffff},
		    {"ld.test", BW_ACT_LOCAL_DATA, 15},
		    {"redir.test", BW_ACT_REDIRECT, 15},
		    {"x.wr.test", BW_ACT_REDIRECT, 15},
		    {"first.test", BW_ACT_NODATA, 15},
		    {"ldpass.test", BW_ACT_PASSTHRU, 0xffff},
		    {"passld.test", BW_ACT_PASSTHRU, 0xffff},
		};
		for (size_t i = 0; i < BW_ARRAY_LEN(want); i++) {
			assert_true(qmatch(p, 0, want[i].name, &v)); /* PASSTHRU included */
			assert_int_equal(v.action, want[i].act);
			assert_int_equal(v.ede, want[i].ede);
			assert_int_equal(v.feed, 0);
			assert_string_equal(v.feed_name, "f0");
			assert_string_equal(v.category, "c0");
			assert_false(v.log_only);
			assert_false(v.allowlisted);
		}
		assert_true(qmatch(p, 0, "nx.test", &v));
		assert_int_equal(v.ttl, 300);
		assert_null(v.data);
		assert_null(v.target);
		assert_true(qmatch(p, 0, "ttl.test", &v));
		assert_int_equal(v.ttl, 42);
		assert_false(qmatch(p, 0, "www.nx.test", &v)); /* QNAME only: exact */

		/* local data of one trigger merged into one answer, in order */
		assert_true(qmatch(p, 0, "ld.test", &v));
		assert_int_equal(v.n_rrs, 3);
		assert_int_equal(v.data_len, 12 + 12 + 24);
		static const uint8_t ld[] = {0, 1,  0, 0, 0, 60, 0, 4,	192,  0,    2,	  1,
					     0, 1,  0, 0, 0, 60, 0, 4,	192,  0,    2,	  2,
					     0, 28, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8};
		assert_memory_equal(v.data, ld, sizeof(ld));
		assert_int_equal(v.data[v.data_len - 1], 1);
		assert_true(qmatch(p, 0, "sub.ld.test", &v));
		assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
		assert_int_equal(v.trigger, BW_TRIG_WILDCARD);
		assert_int_equal(v.n_rrs, 1);
		assert_int_equal(v.data_len, 12);
		assert_int_equal(v.data[11], 9);

		uint8_t w[255];
		assert_true(qmatch(p, 0, "redir.test", &v));
		assert_int_equal(v.target_len, wire("walled.example.org", w));
		assert_memory_equal(v.target, w, v.target_len);
		assert_false(v.target_wildcard);
		assert_true(qmatch(p, 0, "a.b.wr.test", &v));
		assert_int_equal(v.target_len, wire("garden.example", w));
		assert_memory_equal(v.target, w, v.target_len);
		assert_true(v.target_wildcard);
		assert_false(qmatch(p, 0, "wr.test", &v));
		bw_policy_free(p);
	}
	free(t.empty);
}

static void test_passthru_exception(void **state)
{
	char *f0 = write_file("ex.adblock", "||ads.example^\n@@||ads.example^\n"
					    "@@||ok.example^\n||ok.example^\n||other.example^\n");
	char *f1 = write_file("ex.domains", "ads.example\nok.example\nmore.other.example\n");
	struct bw_feed_conf feeds[] = {
	    {.name = "adblock", .category = "ads", .format = BW_FEED_ADBLOCK, .file = f0},
	    {.name = "later", .category = "ads", .format = BW_FEED_DOMAINS, .file = f1}};
	struct bw_policy *p = build(feeds, 2, NULL, 0, NULL);
	struct bw_verdict v;

	(void)state;
	assert_int_equal(bw_policy_feed_status(p, 0)->bad_lines, 0);
	const char *passed[] = {"ads.example", "www.ads.example", "ok.example", "x.ok.example"};
	for (size_t i = 0; i < BW_ARRAY_LEN(passed); i++) {
		assert_true(match(p, passed[i], &v));
		assert_int_equal(v.action, BW_ACT_PASSTHRU); /* the exception wins in its feed, */
		assert_int_equal(v.feed, 0);		     /* and its feed comes first */
		assert_int_equal(v.ede, 0xffff);
	}
	assert_true(match(p, "more.other.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.feed, 0);
	bw_policy_free(p);
	free(f0);
	free(f1);
}

static void test_rpz_file(void **state)
{
	char *f = write_file("t.rpz", "$TTL 60\n"
				      "$ORIGIN rpz.test.\n"
				      "@ SOA localhost. root.localhost. 1 3600 600 86400 60\n"
				      "  NS localhost.\n"
				      "nx.example CNAME .\n"
				      "*.nx.example CNAME .\n"
				      "nodata.example CNAME *.\n"
				      "pass.example CNAME rpz-passthru.\n"
				      "drop.example CNAME rpz-drop.\n"
				      "tcp.example CNAME rpz-tcp-only.\n"
				      "ld.example A 192.0.2.1\n"
				      "ld.example A 192.0.2.2\n"
				      "ld.example 300 TXT \"hello\"\n"
				      "redir.example CNAME walled.example.org.\n"
				      "*.wr.example CNAME *.garden.example.\n"
				      "24.0.2.0.192.rpz-ip CNAME .\n"
				      "32.3.2.1.10.rpz-client-ip CNAME rpz-drop.\n"
				      "ns.evil.example.rpz-nsdname CNAME .\n"
				      "32.1.100.51.198.rpz-nsip CNAME .\n");
	struct bw_feed_conf feeds[] = {
	    {.name = "rpz", .category = "malware", .format = BW_FEED_RPZ, .file = f}};
	struct bw_policy *p = build(feeds, 1, NULL, 0, NULL);
	struct bw_verdict v;
	uint8_t w[255];

	(void)state;
	assert_int_equal(bw_policy_feed_status(p, 0)->bad_lines, 0);
	assert_true(match(p, "nx.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.ttl, 60);
	assert_true(match(p, "a.nx.example", &v));
	assert_true(match(p, "nodata.example", &v));
	assert_int_equal(v.action, BW_ACT_NODATA);
	assert_true(match(p, "pass.example", &v));
	assert_int_equal(v.action, BW_ACT_PASSTHRU);
	assert_true(match(p, "drop.example", &v));
	assert_int_equal(v.action, BW_ACT_DROP);
	assert_true(match(p, "tcp.example", &v));
	assert_int_equal(v.action, BW_ACT_TCP_ONLY);
	assert_true(match(p, "ld.example", &v));
	assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
	assert_int_equal(v.n_rrs, 3);
	assert_int_equal(v.data_len, 12 + 12 + 8 + 6);
	assert_int_equal(bw_get16(v.data + 24), 16); /* TXT */
	assert_int_equal(bw_get32(v.data + 26), 300);
	assert_true(match(p, "redir.example", &v));
	assert_int_equal(v.action, BW_ACT_REDIRECT);
	assert_int_equal(v.target_len, wire("walled.example.org", w));
	assert_true(match(p, "x.wr.example", &v));
	assert_int_equal(v.action, BW_ACT_REDIRECT);
	assert_true(v.target_wildcard);
	assert_false(match(p, "example", &v));

	uint8_t a4[4] = {192, 0, 2, 77}, ns4[4] = {198, 51, 100, 1};
	assert_true(bw_policy_match_ip(p, 0, AF_INET, a4, &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.trigger, BW_TRIG_RESPONSE_IP);
	assert_true(bw_policy_match_nsip(p, 0, AF_INET, ns4, &v));
	assert_int_equal(v.trigger, BW_TRIG_NSIP);
	assert_false(bw_policy_match_ip(p, 0, AF_INET, ns4, &v));
	assert_true(bw_policy_has_client_rules(p, 0));
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	assert_true(bw_policy_match_client(p, 0, (struct sockaddr *)&sin, &v));
	assert_int_equal(v.action, BW_ACT_DROP);
	assert_int_equal(v.trigger, BW_TRIG_CLIENT_IP);
	assert_true(bw_policy_match_nsdname(p, 0, w, wire("ns.evil.example", w), &v));
	assert_int_equal(v.trigger, BW_TRIG_NSDNAME);
	assert_int_equal(bw_policy_first_post_feed(p, 0), 0);
	bw_policy_free(p);
	free(f);
}

/* An RPZ file larger than the piece the builder reads at a time: records in parentheses
 * across lines, a $TTL change and a conflict far from its CNAME come out as from one piece. */
static void test_rpz_file_pieces(void **state)
{
	enum { N = 200000 };
	size_t cap = (size_t)N * 40 + 4096, o = 0;
	char *text = malloc(cap);
	struct bw_verdict v;
	struct stat sb;

	(void)state;
	assert_non_null(text);
	o += (size_t)snprintf(text + o, cap - o,
			      "$TTL 60\n$ORIGIN rpz.test.\n@ SOA localhost. "
			      "root.localhost. 1 3600 600 86400 60\n"
			      "m.example A 192.0.2.1\n");
	for (int i = 0; i < N; i++) {
		if (i == N / 2)
			o += (size_t)snprintf(text + o, cap - o, "$TTL 99\n");
		if (i % 10000 == 7)
			o += (size_t)snprintf(text + o, cap - o,
					      "t%d.example TXT ( \"a ; (\"\n  \"b\" ) ; ) \"\n", i);
		o += (size_t)snprintf(text + o, cap - o, "n%07d.example CNAME .\n", i);
	}
	o += (size_t)snprintf(text + o, cap - o,
			      "n0000005.example A 192.0.2.1\n"
			      "m.example TXT \"two\"\n");
	assert_true(o > ((size_t)4 << 20) + 100000);
	char *f = write_file("big.rpz", text);
	struct bw_feed_conf feeds[] = {
	    {.name = "rpz", .category = "malware", .format = BW_FEED_RPZ, .file = f}};
	struct bw_policy *p = build(feeds, 1, NULL, 0, NULL);
	const struct bw_feed_status *fs = bw_policy_feed_status(p, 0);
	assert_int_equal(fs->bad_lines, 1); /* n0000005's A beside its CNAME */
	assert_int_equal(fs->entries, N + N / 10000 + 1);
	assert_int_equal(stat(f, &sb), 0);
	assert_int_equal(fs->file_size, (uint64_t)sb.st_size);
	assert_true(match(p, "n0000005.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.ttl, 60);
	assert_true(match(p, "n0199999.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.ttl, 99);
	assert_true(match(p, "t190007.example", &v));
	assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
	assert_int_equal(v.n_rrs, 1);
	assert_true(match(p, "m.example", &v));
	assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
	assert_int_equal(v.n_rrs, 2);
	bw_policy_free(p);
	free(f);
	free(text);
}

/* ---- list files in pieces ---- */

struct lrules {
	char text[64][300]; /* "trigger action line name" of each rule */
	size_t n;
};

static int lrules_sink(void *ctx, const struct bw_rule *r)
{
	struct lrules *l = ctx;
	char name[256] = "";

	assert_true(l->n < 64);
	for (size_t i = 0; i < r->name_len && i + 1 < sizeof(name); i++)
		name[i] = r->name[i] >= 0x20 ? (char)r->name[i] : '.';
	snprintf(l->text[l->n++], sizeof(l->text[0]), "%d %d %lu %s", r->trigger, r->action,
		 r->line, name);
	return 0;
}

static int parse_list(enum bw_feed_format f, const char *buf, size_t len, struct lrules *l,
		      struct bw_parse_report *rep)
{
	switch (f) {
	case BW_FEED_HOSTS:
		return bw_parse_hosts(buf, len, NULL, lrules_sink, l, rep);
	case BW_FEED_WILDCARD:
		return bw_parse_wildcard(buf, len, NULL, lrules_sink, l, rep);
	case BW_FEED_ADBLOCK:
		return bw_parse_adblock(buf, len, NULL, lrules_sink, l, rep);
	default:
		return bw_parse_domains(buf, len, NULL, lrules_sink, l, rep);
	}
}

/* A list cut after any two of its newlines gives what the whole list gives: rules with
 * their lines, and the report. */
static void test_list_pieces(void **state)
{
	static const char text[] = "\xef\xbb\xbf# comment\n"
				   "a.example\n"
				   "0.0.0.0 b.example\r\n"
				   "*.c.example\n"
				   "||d.example^\n"
				   "bad name!\n"
				   "\n"
				   "@@||e.example^\n"
				   "127.0.0.1 localhost\n"
				   "f.example # trailing\n"
				   "||g.example^$third-party\n"
				   "last.example";
	static const enum bw_feed_format fmts[] = {BW_FEED_DOMAINS, BW_FEED_HOSTS, BW_FEED_WILDCARD,
						   BW_FEED_ADBLOCK};
	size_t len = strlen(text), cuts[16], n_cuts = 0;

	(void)state;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			cuts[n_cuts++] = i + 1;
	for (size_t k = 0; k < BW_ARRAY_LEN(fmts); k++) {
		static struct lrules whole, pieces;
		struct bw_parse_report r1, r2;

		memset(&whole, 0, sizeof(whole));
		assert_int_equal(parse_list(fmts[k], text, len, &whole, &r1), 0);
		for (size_t i = 0; i < n_cuts; i++) {
			for (size_t j = i; j < n_cuts; j++) {
				size_t a = cuts[i], b = cuts[j];
				memset(&pieces, 0, sizeof(pieces));
				assert_int_equal(parse_list(fmts[k], text, a, &pieces, &r2), 0);
				assert_int_equal(bw_parse_list_more(fmts[k], text + a, b - a, NULL,
								    lrules_sink, &pieces, &r2),
						 0);
				assert_int_equal(bw_parse_list_more(fmts[k], text + b, len - b,
								    NULL, lrules_sink, &pieces,
								    &r2),
						 0);
				assert_int_equal(whole.n, pieces.n);
				for (size_t m = 0; m < whole.n; m++)
					assert_string_equal(whole.text[m], pieces.text[m]);
				assert_int_equal(r1.units, r2.units);
				assert_int_equal(r1.rules, r2.rules);
				assert_int_equal(r1.bad, r2.bad);
				assert_int_equal(r1.skipped, r2.skipped);
				assert_int_equal(r1.n_errors, r2.n_errors);
				for (unsigned e = 0; e < r1.n_errors; e++)
					assert_string_equal(r1.first_errors[e], r2.first_errors[e]);
			}
		}
	}
	struct bw_parse_report rep;
	assert_int_equal(bw_parse_list_more(BW_FEED_RPZ, "x", 1, NULL, lrules_sink, NULL, &rep),
			 BW_EINVAL);
}

/* A domains file larger than the piece the builder reads at a time. */
static void test_list_file_pieces(void **state)
{
	enum { N = 300000 };
	size_t cap = (size_t)N * 24 + 64, o = 0;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < N; i++) {
		if (i % 100000 == 99999)
			o += (size_t)snprintf(text + o, cap - o, "bad name %d\n", i);
		o += (size_t)snprintf(text + o, cap - o, "n%07d.example\n", i);
	}
	assert_true(o > ((size_t)4 << 20) + 100000);
	char *f = write_file("big.domains", text);
	struct bw_feed_conf feeds[] = {
	    {.name = "d", .category = "ads", .format = BW_FEED_DOMAINS, .file = f}};
	struct bw_policy *p = build(feeds, 1, NULL, 0, NULL);
	struct bw_verdict v;
	assert_int_equal(bw_policy_feed_status(p, 0)->bad_lines, 3);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, N);
	assert_true(match(p, "n0299999.example", &v));
	assert_true(match(p, "www.n0000000.example", &v));
	bw_policy_free(p);
	free(f);
	free(text);
}

static void test_ip_triggers(void **state)
{
	struct tconf t;
	struct bw_verdict v;
	char *second = "f1";
	struct bw_profile_conf profiles[2] = {{.name = "all", .all_feeds = true},
					      {.name = "second", .feeds = &second, .n_feeds = 1}};

	(void)state;
	memset(rs_a, 0, sizeof(rs_a));
	tconf_init(&t, 2);
	t.conf.policy.profiles = profiles;
	t.conf.policy.n_profiles = 2;
	struct rules *r = &rs_a[0];
	rule_net(r, BW_TRIG_CLIENT_IP, "10.0.0.0/8", BW_ACT_DROP);
	rule_net(r, BW_TRIG_CLIENT_IP, "10.1.0.0/16", BW_ACT_PASSTHRU);
	rule_net(r, BW_TRIG_CLIENT_IP, "10.1.2.3/32", BW_ACT_NXDOMAIN);
	rule_net(r, BW_TRIG_CLIENT_IP, "2001:db8:c::/48", BW_ACT_NODATA);
	rule_net(r, BW_TRIG_RESPONSE_IP, "192.0.2.0/24", BW_ACT_NXDOMAIN);
	rule_net(r, BW_TRIG_RESPONSE_IP, "192.0.2.128/25", BW_ACT_NODATA);
	rule_net(r, BW_TRIG_RESPONSE_IP, "2001:db8::/32", BW_ACT_NODATA);
	rule_net(r, BW_TRIG_RESPONSE_IP, "2001:db8:1::/48", BW_ACT_DROP);
	rule_net(r, BW_TRIG_RESPONSE_IP, "2001:db8:1::1/128", BW_ACT_NXDOMAIN);
	rule_net(r, BW_TRIG_RESPONSE_IP, "2001:db8:1:2:3:4:5:6/127", BW_ACT_TCP_ONLY);
	rule_net(r, BW_TRIG_NSIP, "198.51.100.0/24", BW_ACT_NXDOMAIN);
	r = &rs_a[1];
	rule_net(r, BW_TRIG_RESPONSE_IP, "203.0.113.7/32", BW_ACT_NXDOMAIN);
	rule_net(r, BW_TRIG_RESPONSE_IP, "192.0.2.5/32", BW_ACT_DROP);
	rule_net(r, BW_TRIG_RESPONSE_IP, "0.0.0.0/0", BW_ACT_NODATA);
	rule_net(r, BW_TRIG_RESPONSE_IP, "10.0.0.0/32", BW_ACT_NODATA); /* /33: not stored */
	r->r[r->n - 1].net.prefix = 33;
	for (int compact = 0; compact < 2; compact++) {
		struct bw_policy *p = with_rules(&t.conf, rs_a, 2, compact);
		struct sockaddr_in sin = {.sin_family = AF_INET};
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
		uint8_t a[16];
		static const struct {
			const char *ip;
			enum bw_action act;
		} clients[] = {{"10.9.9.9", BW_ACT_DROP},
			       {"10.1.9.9", BW_ACT_PASSTHRU},
			       {"10.1.2.3", BW_ACT_NXDOMAIN},
			       {"11.0.0.1", BW_ACT_ALLOW}};
		for (size_t i = 0; i < BW_ARRAY_LEN(clients); i++) {
			inet_pton(AF_INET, clients[i].ip, &sin.sin_addr);
			assert_int_equal(bw_policy_match_client(p, 0, (struct sockaddr *)&sin, &v),
					 clients[i].act != BW_ACT_ALLOW);
			assert_int_equal(v.action, clients[i].act);
			/* the same client on a dual-stack socket */
			char mapped[64];
			snprintf(mapped, sizeof(mapped), "::ffff:%s", clients[i].ip);
			inet_pton(AF_INET6, mapped, &sin6.sin6_addr);
			bw_policy_match_client(p, 0, (struct sockaddr *)&sin6, &v);
			assert_int_equal(v.action, clients[i].act);
		}
		inet_pton(AF_INET6, "2001:db8:c::99", &sin6.sin6_addr);
		assert_true(bw_policy_match_client(p, 0, (struct sockaddr *)&sin6, &v));
		assert_int_equal(v.action, BW_ACT_NODATA);
		assert_int_equal(v.trigger, BW_TRIG_CLIENT_IP);
		assert_int_equal(v.ede, 15);
		assert_string_equal(v.feed_name, "f0");

		static const struct {
			const char *ip;
			int feed;
			enum bw_action act;
		} resp[] = {
		    {"192.0.2.5", 0, BW_ACT_NXDOMAIN}, /* feed 0's /24 beats feed 1's /32 */
		    {"192.0.2.200", 0, BW_ACT_NODATA}, /* the longer prefix in a feed */
		    {"203.0.113.7", 1, BW_ACT_NXDOMAIN},
		    {"8.8.8.8", 1, BW_ACT_NODATA}, /* 0.0.0.0/0 */
		    {"2001:db8:2::1", 0, BW_ACT_NODATA},
		    {"2001:db8:1::2", 0, BW_ACT_DROP},
		    {"2001:db8:1::1", 0, BW_ACT_NXDOMAIN},
		    {"2001:db8:1:2:3:4:5:7", 0, BW_ACT_TCP_ONLY},
		    {"2001:db8:1:2:3:4:5:8", 0, BW_ACT_DROP},
		    {"2001:db9::1", -1, BW_ACT_ALLOW},
		};
		for (size_t i = 0; i < BW_ARRAY_LEN(resp); i++) {
			int fam = strchr(resp[i].ip, ':') ? AF_INET6 : AF_INET;
			inet_pton(fam, resp[i].ip, a);
			assert_int_equal(bw_policy_match_ip(p, 0, fam, a, &v), resp[i].feed >= 0);
			assert_int_equal(v.feed, resp[i].feed);
			assert_int_equal(v.action, resp[i].act);
			if (resp[i].feed >= 0)
				assert_int_equal(v.trigger, BW_TRIG_RESPONSE_IP);
		}
		inet_pton(AF_INET, "198.51.100.20", a);
		assert_true(bw_policy_match_nsip(p, 0, AF_INET, a, &v));
		assert_int_equal(v.trigger, BW_TRIG_NSIP);
		inet_pton(AF_INET, "10.1.2.3", a); /* a client rule is not a response rule */
		assert_true(bw_policy_match_ip(p, 0, AF_INET, a, &v));
		assert_int_equal(v.feed, 1);
		assert_false(bw_policy_match_ip(p, 0, AF_UNIX, a, &v));

		/* profile "second" has only feed 1 */
		assert_true(bw_policy_has_client_rules(p, 0));
		assert_false(bw_policy_has_client_rules(p, 1));
		assert_int_equal(bw_policy_first_post_feed(p, 0), 0);
		assert_int_equal(bw_policy_first_post_feed(p, 1), 1);
		inet_pton(AF_INET, "192.0.2.5", a);
		assert_true(bw_policy_match_ip(p, 1, AF_INET, a, &v));
		assert_int_equal(v.feed, 1);
		assert_int_equal(v.action, BW_ACT_DROP);
		inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
		assert_false(bw_policy_match_client(p, 1, (struct sockaddr *)&sin, &v));
		bw_policy_free(p);
	}
	free(t.empty);
}

static void test_nsdname(void **state)
{
	struct tconf t;
	struct bw_verdict v;
	uint8_t w[255];

	(void)state;
	memset(rs_a, 0, sizeof(rs_a));
	tconf_init(&t, 2);
	rule_name(&rs_a[1], BW_TRIG_NSDNAME, "ns.evil.test", BW_ACT_NXDOMAIN);
	rule_name(&rs_a[1], BW_TRIG_NSDNAME, "bad-ns.test", BW_ACT_DROP)->nsdname_wildcard = true;
	rule_name(&rs_a[0], BW_TRIG_QNAME, "plain.test", BW_ACT_NXDOMAIN);
	for (int compact = 0; compact < 2; compact++) {
		struct bw_policy *p = with_rules(&t.conf, rs_a, 2, compact);

		assert_true(bw_policy_match_nsdname(p, 0, w, wire("ns.evil.test", w), &v));
		assert_int_equal(v.action, BW_ACT_NXDOMAIN);
		assert_int_equal(v.trigger, BW_TRIG_NSDNAME);
		assert_int_equal(v.feed, 1);
		assert_false(bw_policy_match_nsdname(p, 0, w, wire("x.ns.evil.test", w), &v));
		assert_true(bw_policy_match_nsdname(p, 0, w, wire("ns1.bad-ns.test", w), &v));
		assert_int_equal(v.action, BW_ACT_DROP);
		assert_false(bw_policy_match_nsdname(p, 0, w, wire("bad-ns.test", w), &v));
		assert_false(bw_policy_match_nsdname(p, 0, w, wire("plain.test", w), &v));
		assert_false(qmatch(p, 0, "ns.evil.test", &v)); /* not a QNAME rule */
		assert_int_equal(bw_policy_first_post_feed(p, 0), 1);
		bw_policy_free(p);
	}
	free(t.empty);
}

static void test_action_override(void **state)
{
	char *blk = write_file("ov.domains", "blocked.example\n");
	char *ab = write_file("ov.adblock", "||blocked.example^\n@@||ok.blocked.example^\n");
	struct bw_feed_conf feeds[] = {
	    {.name = "nodata",
	     .category = "a",
	     .format = BW_FEED_ADBLOCK,
	     .file = ab,
	     .action = BW_FEED_ACT_NODATA},
	    {.name = "drop",
	     .category = "b",
	     .format = BW_FEED_DOMAINS,
	     .file = blk,
	     .action = BW_FEED_ACT_DROP},
	    {.name = "trial",
	     .category = "c",
	     .format = BW_FEED_DOMAINS,
	     .file = blk,
	     .action = BW_FEED_ACT_LOG_ONLY},
	    {.name = "page",
	     .category = "d",
	     .format = BW_FEED_DOMAINS,
	     .file = blk,
	     .action = BW_FEED_ACT_REDIRECT,
	     .redirect_has_v4 = true,
	     .redirect_has_v6 = true,
	     .redirect_v4 = {192, 0, 2, 80},
	     .redirect_v6 = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x80}},
	    {.name = "cname",
	     .category = "e",
	     .format = BW_FEED_DOMAINS,
	     .file = blk,
	     .action = BW_FEED_ACT_REDIRECT,
	     .redirect_name = "Block.Example.ORG"},
	    {.name = "nx",
	     .category = "f",
	     .format = BW_FEED_ADBLOCK,
	     .file = ab,
	     .action = BW_FEED_ACT_NXDOMAIN},
	};
	struct bw_profile_conf profiles[6];
	char *names[6];
	struct bw_conf conf;
	struct bw_verdict v;
	struct bw_policy *p = NULL;
	uint8_t w[255];

	(void)state;
	memset(&conf, 0, sizeof(conf));
	memset(profiles, 0, sizeof(profiles));
	for (size_t i = 0; i < 6; i++) { /* one profile per feed */
		names[i] = feeds[i].name;
		profiles[i] = (struct bw_profile_conf){
		    .name = feeds[i].name, .feeds = &names[i], .n_feeds = 1};
	}
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 6;
	conf.policy.profiles = profiles;
	conf.policy.n_profiles = 6;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p), 0);

	assert_true(qmatch(p, 0, "x.blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_NODATA);
	assert_int_equal(v.ede, 15);
	assert_true(qmatch(p, 0, "ok.blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_PASSTHRU); /* not overridden */
	assert_true(qmatch(p, 5, "ok.blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_PASSTHRU);
	assert_true(qmatch(p, 5, "blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_true(qmatch(p, 1, "blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_DROP);
	assert_int_equal(v.feed, 1);
	assert_false(v.log_only);

	assert_true(qmatch(p, 2, "blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_true(v.log_only);
	assert_string_equal(v.feed_name, "trial");

	assert_true(qmatch(p, 3, "www.blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_LOCAL_DATA);
	assert_int_equal(v.ede, 15);
	assert_int_equal(v.n_rrs, 2);
	assert_int_equal(v.data_len, 12 + 24);
	assert_int_equal(bw_get16(v.data), 1);
	assert_memory_equal(v.data + 8, feeds[3].redirect_v4, 4);
	assert_int_equal(bw_get16(v.data + 12), 28);
	assert_memory_equal(v.data + 20, feeds[3].redirect_v6, 16);

	assert_true(qmatch(p, 4, "blocked.example", &v));
	assert_int_equal(v.action, BW_ACT_REDIRECT);
	assert_int_equal(v.target_len, wire("block.example.org", w));
	assert_memory_equal(v.target, w, v.target_len);
	assert_false(v.target_wildcard);
	bw_policy_free(p);
	free(blk);
	free(ab);
}

static void test_profiles(void **state)
{
	char *f0 = write_file("pr0.domains", "p.example\nshared.example\n");
	char *f1 = write_file("pr1.domains", "m.example\nshared.example\n");
	char *f2 = write_file("pr2.domains", "a.example\ng.example\nsafe.m.example\n");
	struct bw_feed_conf feeds[] = {
	    {.name = "phish", .category = "phishing", .format = BW_FEED_DOMAINS, .file = f0},
	    {.name = "mal", .category = "malware", .format = BW_FEED_DOMAINS, .file = f1},
	    {.name = "ads", .category = "ads", .format = BW_FEED_DOMAINS, .file = f2}};
	char *malware = "malware", *ads = "ads", *allow_a = "a.example", *g = "g.example";
	struct bw_cidr tenner, v6net;
	set_net(&tenner, "10.0.0.0/8");
	set_net(&v6net, "2001:db8::/32");
	struct bw_cidr nets[2] = {tenner, v6net};
	struct bw_profile_conf profiles[] = {
	    {.name = "all", .all_feeds = true},
	    {.name = "malware-only",
	     .categories = &malware,
	     .n_categories = 1,
	     .clients = nets,
	     .n_clients = 2},
	    {.name = "ads", .feeds = &ads, .n_feeds = 1, .allowlist = &allow_a, .n_allowlist = 1},
	    {.name = "none"},
	};
	struct bw_listen listen[2] = {{.profile = 2}, {.profile = -1}};
	struct bw_conf conf;
	struct bw_verdict v;
	struct bw_policy *p = NULL;

	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 3;
	conf.policy.profiles = profiles;
	conf.policy.n_profiles = 4;
	conf.policy.default_profile = 3;
	conf.policy.allowlist = &g;
	conf.policy.n_allowlist = 1;
	conf.server.listen = listen;
	conf.server.n_listen = 2;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p), 0);
	assert_int_equal(bw_policy_profile_count(p), 4);
	assert_string_equal(bw_policy_profile_name(p, 1), "malware-only");

	assert_true(qmatch(p, 0, "shared.example", &v));
	assert_int_equal(v.feed, 0);
	assert_true(qmatch(p, 1, "shared.example", &v)); /* feed 0 off: feed 1 is found */
	assert_int_equal(v.feed, 1);
	assert_string_equal(v.category, "malware");
	assert_false(qmatch(p, 1, "p.example", &v));
	assert_false(v.allowlisted);
	assert_true(qmatch(p, 1, "www.m.example", &v));
	assert_true(qmatch(p, 1, "safe.m.example", &v)); /* feed 2's name, but feed 1 covers it */
	assert_false(qmatch(p, 2, "m.example", &v));
	/* a profile's own allowlist */
	assert_true(qmatch(p, 0, "a.example", &v));
	assert_false(qmatch(p, 2, "x.a.example", &v));
	assert_true(v.allowlisted);
	/* the global one, in every profile */
	for (unsigned k = 0; k < 4; k++) {
		assert_false(qmatch(p, k, "g.example", &v));
		assert_true(v.allowlisted);
	}
	assert_false(qmatch(p, 3, "shared.example", &v));
	assert_false(qmatch(p, 99, "shared.example", &v)); /* out of range: the default */

	/* choosing a profile: listener, then clients, then the default */
	struct sockaddr_in ten = {.sin_family = AF_INET}, other = {.sin_family = AF_INET};
	struct sockaddr_in6 six = {.sin6_family = AF_INET6};
	inet_pton(AF_INET, "10.1.2.3", &ten.sin_addr);
	inet_pton(AF_INET, "192.0.2.1", &other.sin_addr);
	inet_pton(AF_INET6, "2001:db8::5", &six.sin6_addr);
	assert_int_equal(bw_policy_select_profile(p, &conf, 0, (struct sockaddr *)&ten), 2);
	assert_int_equal(bw_policy_select_profile(p, &conf, 1, (struct sockaddr *)&ten), 1);
	assert_int_equal(bw_policy_select_profile(p, &conf, 1, (struct sockaddr *)&six), 1);
	assert_int_equal(bw_policy_select_profile(p, &conf, 1, (struct sockaddr *)&other), 3);
	assert_int_equal(bw_policy_select_profile(p, &conf, -1, NULL), 3);
	assert_int_equal(bw_policy_select_profile(p, &conf, 7, (struct sockaddr *)&other), 3);
	bw_policy_free(p);
	free(f0);
	free(f1);
	free(f2);
}

static void test_limits(void **state)
{
	struct tconf t;
	struct bw_policy *p = NULL;

	(void)state;
	tconf_init(&t, 65);
	assert_int_equal(bw_policy_build(&t.conf, NULL, 1, &p), BW_EINVAL);
	assert_null(p);
	t.conf.policy.n_feeds = 64;
	assert_int_equal(bw_policy_build(&t.conf, NULL, 1, &p), 0);
	assert_int_equal(bw_policy_feed_count(p), 64);
	struct bw_policy *q = NULL;
	struct bw_rule r = {.trigger = BW_TRIG_QNAME,
			    .name = (const uint8_t *)"\1x\0",
			    .name_len = 3,
			    .action = BW_ACT_NXDOMAIN,
			    .ttl = 300};
	assert_int_equal(bw_policy_apply_delta(p, 64, &r, 1, NULL, 0, 2, &q), BW_EINVAL);
	assert_int_equal(bw_policy_apply_delta(p, 63, &r, 1, NULL, 0, 2, &q), 0);
	struct bw_verdict v;
	assert_true(bw_policy_match(q, r.name, r.name_len, &v));
	assert_int_equal(v.feed, 63);
	bw_policy_free(q);
	bw_policy_free(p);
	free(t.empty);
}

static void test_broken_feed(void **state)
{
	char *good = write_file("b.domains", "kept.example\n");
	char *bad = write_file("b.json", "this is not JSON at all");
	struct bw_feed_conf feeds[] = {
	    {.name = "intel", .category = "c2", .format = BW_FEED_DOMAINS, .file = good}};
	struct bw_conf conf;
	struct bw_verdict v;

	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 1;
	struct bw_policy *p1 = build(feeds, 1, NULL, 0, NULL);
	/* the same feed now points at a file its parser finds unusable */
	feeds[0].format = BW_FEED_STIX;
	feeds[0].file = bad;
	struct bw_policy *p2 = build(feeds, 1, NULL, 0, p1);
	bw_policy_free(p1);
	const struct bw_feed_status *fs = bw_policy_feed_status(p2, 0);
	assert_int_equal(fs->load_error, BW_EMALFORMED);
	assert_true(fs->kept_previous);
	assert_int_equal(fs->entries, 1);
	assert_true(match(p2, "www.kept.example", &v));
	assert_string_equal(v.feed_name, "intel");
	/* unusable but unchanged: no rebuild until the file changes */
	assert_false(bw_policy_files_changed(p2, &conf));
	free(write_file("b.json", "still not JSON, but longer"));
	assert_true(bw_policy_files_changed(p2, &conf));
	bw_policy_free(p2);
	free(good);
	free(bad);
}

/* ---- incremental changes ---- */

static struct rules rs_d[3];

static void test_delta(void **state)
{
	char buf[64 * 100 + 1], *o = buf;
	struct bw_verdict v;
	struct bw_policy *p0, *p1, *p2, *p3, *c;

	(void)state;
	for (int i = 0; i < 100; i++)
		o += snprintf(o, 64, "n%d.example\n", i);
	char *f0 = write_file("d0.domains", buf);
	char *f1 = write_file("d1.domains", "shared.example\n");
	struct bw_feed_conf feeds[] = {
	    {.name = "d", .category = "x", .format = BW_FEED_DOMAINS, .file = f0},
	    {.name = "e", .category = "y", .format = BW_FEED_DOMAINS, .file = f1}};
	p0 = build(feeds, 2, NULL, 0, NULL);
	assert_int_equal(bw_policy_entries(p0), 101);

	memset(rs_d, 0, sizeof(rs_d));
	struct rules *add = &rs_d[0], *rem = &rs_d[1];
	rule_name(add, BW_TRIG_QNAME, "new.example", BW_ACT_NXDOMAIN);
	rule_name(add, BW_TRIG_WILDCARD, "new.example", BW_ACT_NXDOMAIN);
	rule_name(add, BW_TRIG_QNAME, "shared.example", BW_ACT_NODATA);
	rule_local(add, BW_TRIG_QNAME, "n5.example", "192.0.2.5");    /* NXDOMAIN stays first */
	rule_name(add, BW_TRIG_QNAME, "n6.example", BW_ACT_PASSTHRU); /* PASSTHRU wins */
	rule_name(rem, BW_TRIG_QNAME, "n1.example", BW_ACT_NXDOMAIN);
	rule_name(rem, BW_TRIG_WILDCARD, "n2.example", BW_ACT_NXDOMAIN);
	rule_name(rem, BW_TRIG_QNAME, "absent.example", BW_ACT_NXDOMAIN);
	assert_int_equal(bw_policy_apply_delta(p0, 0, add->r, add->n, rem->r, rem->n, 8, &p1), 0);
	assert_int_equal(bw_policy_generation(p1), 8);
	assert_int_equal(bw_policy_entries(p1), 102); /* + new.example */
	assert_int_equal(bw_policy_feed_status(p1, 0)->entries, 102);
	assert_true(match(p1, "x.new.example", &v));
	assert_true(match(p1, "new.example", &v));
	assert_false(match(p1, "n1.example", &v));
	assert_true(match(p1, "x.n1.example", &v));
	assert_true(match(p1, "n2.example", &v));
	assert_false(match(p1, "x.n2.example", &v));
	assert_true(match(p1, "n5.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_true(match(p1, "n6.example", &v));
	assert_int_equal(v.action, BW_ACT_PASSTHRU);
	assert_true(match(p1, "x.n6.example", &v));
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_true(match(p1, "shared.example", &v));
	assert_int_equal(v.feed, 0);
	assert_int_equal(v.action, BW_ACT_NODATA);
	/* the base snapshot is unchanged */
	assert_false(match(p0, "new.example", &v));
	assert_true(match(p0, "n1.example", &v));
	assert_true(match(p0, "shared.example", &v));
	assert_int_equal(v.feed, 1);

	/* a second delta stacks on the first */
	rem = &rs_d[2];
	rule_name(rem, BW_TRIG_WILDCARD, "n1.example", BW_ACT_NXDOMAIN);
	assert_int_equal(bw_policy_apply_delta(p1, 0, NULL, 0, rem->r, rem->n, 9, &p2), 0);
	assert_int_equal(bw_policy_entries(p2), 101);
	assert_int_equal(bw_policy_feed_status(p2, 0)->entries, 101);
	assert_false(match(p2, "x.n1.example", &v));
	assert_true(match(p2, "new.example", &v));
	assert_true(match(p1, "x.n1.example", &v));

	/* and one for the other feed, with the older snapshots freed first */
	bw_policy_free(p0);
	bw_policy_free(p1);
	struct rules *rem1 = &rs_d[0];
	memset(rem1, 0, sizeof(*rem1));
	rule_name(rem1, BW_TRIG_QNAME, "shared.example", BW_ACT_NXDOMAIN);
	rule_name(rem1, BW_TRIG_WILDCARD, "shared.example", BW_ACT_NXDOMAIN);
	assert_int_equal(bw_policy_apply_delta(p2, 1, NULL, 0, rem1->r, rem1->n, 10, &p3), 0);
	assert_int_equal(bw_policy_feed_status(p3, 1)->entries, 0);
	assert_int_equal(bw_policy_entries(p3), 101); /* shared.example is still feed 0's */
	assert_true(match(p3, "shared.example", &v));
	assert_int_equal(v.feed, 0);
	assert_false(match(p3, "x.shared.example", &v));
	bw_policy_free(p2);

	/* the overlay holds shared.example's two keys (QNAME and wildcard) and the others the
	 * earlier deltas changed; compaction leaves none */
	assert_true(bw_policy_overlay_keys(p3) >= 2);
	assert_int_equal(bw_policy_compact(p3, 11, &c), 0);
	assert_int_equal(bw_policy_overlay_keys(c), 0);
	assert_false(bw_policy_has_overlay(c));
	assert_int_equal(bw_policy_generation(c), 11);
	assert_int_equal(bw_policy_entries(c), bw_policy_entries(p3));
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(bw_policy_feed_status(c, i)->entries,
				 bw_policy_feed_status(p3, i)->entries);
	assert_true(bw_policy_memory(c) > 0);
	const char *probe[] = {"new.example", "x.new.example", "n1.example",	 "x.n1.example",
			       "n2.example",  "x.n2.example",  "shared.example", "x.shared.example",
			       "n5.example",  "n6.example",    "x.n6.example",	 "n99.example"};
	for (size_t i = 0; i < BW_ARRAY_LEN(probe); i++) {
		struct bw_verdict a, b;
		assert_int_equal(match(p3, probe[i], &a), match(c, probe[i], &b));
		assert_int_equal(a.action, b.action);
		assert_int_equal(a.feed, b.feed);
	}
	bw_policy_free(p3);
	bw_policy_free(c);
	free(f0);
	free(f1);
}

/* A delta gives the same answers as a rebuild from the changed file. */
static void test_delta_vs_rebuild(void **state)
{
	static char a[300 * 32], b[400 * 32];
	static struct rules add, rem;
	char *oa = a, *ob = b, name[64];
	struct bw_policy *p, *q, *r;

	(void)state;
	memset(&add, 0, sizeof(add));
	memset(&rem, 0, sizeof(rem));
	for (int i = 0; i < 300; i++) {
		oa += snprintf(oa, 32, "||n%d.example^\n", i);
		if (i >= 20)
			ob += snprintf(ob, 32, "||n%d.example^\n", i);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		rule_name(&rem, BW_TRIG_QNAME, name, BW_ACT_NXDOMAIN);
		rule_name(&rem, BW_TRIG_WILDCARD, name, BW_ACT_NXDOMAIN);
		snprintf(name, sizeof(name), "m%d.example", i);
		rule_name(&add, BW_TRIG_QNAME, name, BW_ACT_NXDOMAIN);
		rule_name(&add, BW_TRIG_WILDCARD, name, BW_ACT_NXDOMAIN);
		ob += snprintf(ob, 32, "||m%d.example^\n", i);
		if (i < 10) { /* exact only, and an exception below a listed name */
			snprintf(name, sizeof(name), "k%d.example", i);
			rule_name(&add, BW_TRIG_QNAME, name, BW_ACT_NXDOMAIN);
			ob += snprintf(ob, 32, "|k%d.example^\n", i);
			snprintf(name, sizeof(name), "ok.n%d.example", 100 + i);
			rule_name(&add, BW_TRIG_QNAME, name, BW_ACT_PASSTHRU);
			rule_name(&add, BW_TRIG_WILDCARD, name, BW_ACT_PASSTHRU);
			ob += snprintf(ob, 32, "@@||ok.n%d.example^\n", 100 + i);
		}
	}
	char *fa = write_file("r.adblock", a);
	struct bw_feed_conf feeds[] = {
	    {.name = "ab", .category = "ads", .format = BW_FEED_ADBLOCK, .file = fa}};
	p = build(feeds, 1, NULL, 0, NULL);
	assert_int_equal(bw_policy_apply_delta(p, 0, add.r, add.n, rem.r, rem.n, 2, &q), 0);
	free(write_file("r.adblock", b));
	r = build(feeds, 1, NULL, 0, NULL);
	assert_int_equal(bw_policy_entries(q), bw_policy_entries(r));
	assert_int_equal(bw_policy_feed_status(q, 0)->entries,
			 bw_policy_feed_status(r, 0)->entries);
	static const char *const fmt[] = {"n%d.example",    "x.n%d.example",   "m%d.example",
					  "x.m%d.example",  "k%d.example",     "x.k%d.example",
					  "ok.n%d.example", "a.ok.n%d.example"};
	for (int i = 0; i < 320; i++) {
		for (size_t k = 0; k < BW_ARRAY_LEN(fmt); k++) {
			struct bw_verdict x, y;
			snprintf(name, sizeof(name), fmt[k], i);
			assert_int_equal(match(q, name, &x), match(r, name, &y));
			assert_int_equal(x.action, y.action);
			assert_int_equal(x.trigger, y.trigger);
		}
	}
	bw_policy_free(p);
	bw_policy_free(q);
	bw_policy_free(r);
	free(fa);
}

/* xorshift, for reproducible random changes */
static uint64_t rnd_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void same_verdict(const struct bw_verdict *a, const struct bw_verdict *b)
{
	assert_int_equal(a->action, b->action);
	assert_int_equal(a->feed, b->feed);
	assert_int_equal(a->trigger, b->trigger);
	assert_int_equal(a->allowlisted, b->allowlisted);
	assert_int_equal(a->ttl, b->ttl);
	assert_int_equal(a->match_len, b->match_len);
	assert_int_equal(a->n_rrs, b->n_rrs);
	assert_int_equal(a->data_len, b->data_len);
	if (a->data_len)
		assert_memory_equal(a->data, b->data, a->data_len);
	assert_int_equal(a->target_len, b->target_len);
	if (a->target_len)
		assert_memory_equal(a->target, b->target, a->target_len);
}

static void test_compact_equivalence(void **state)
{
	enum { NAMES = 600, ROUNDS = 12 };
	static char text[NAMES * 32];
	static struct rules add, rem;
	char *o = text, *o1;
	char name[64];
	char *allow = "n7.example";
	size_t seen[BW_ACT_PASSTHRU + 1] = {0};
	struct bw_profile_conf profiles[] = {
	    {.name = "all", .all_feeds = true},
	    {.name = "odd", .feeds = (char *[]){"f1"}, .n_feeds = 1}};

	(void)state;
	for (int i = 0; i < NAMES; i++)
		o += snprintf(o, 32, "n%d.example\n", i);
	char *f0 = write_file("eq0.domains", text);
	o1 = text;
	for (int i = 0; i < NAMES; i += 3)
		o1 += snprintf(o1, 32, "n%d.example\n", i);
	char *f1 = write_file("eq1.domains", text);
	struct bw_feed_conf feeds[] = {
	    {.name = "f0", .category = "x", .format = BW_FEED_DOMAINS, .file = f0},
	    {.name = "f1", .category = "y", .format = BW_FEED_DOMAINS, .file = f1}};
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 2;
	conf.policy.profiles = profiles;
	conf.policy.n_profiles = 2;
	conf.policy.allowlist = &allow;
	conf.policy.n_allowlist = 1;
	struct bw_policy *p = NULL, *q, *c;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p), 0);

	static const enum bw_action acts[] = {BW_ACT_NXDOMAIN, BW_ACT_NODATA, BW_ACT_DROP,
					      BW_ACT_PASSTHRU, BW_ACT_TCP_ONLY};
	for (int round = 0; round < ROUNDS; round++) {
		memset(&add, 0, sizeof(add));
		memset(&rem, 0, sizeof(rem));
		for (int i = 0; i < 30; i++) {
			struct rules *r = i % 2 ? &add : &rem;
			snprintf(name, sizeof(name), "n%d.example", (int)(rnd() % (NAMES + 50)));
			enum bw_trigger t = rnd() % 2 ? BW_TRIG_QNAME : BW_TRIG_WILDCARD;
			uint64_t kind = rnd() % 8;
			if (kind == 0 && r == &add) {
				rule_local(r, t, name, rnd() % 2 ? "192.0.2.1" : "2001:db8::7");
			} else if (kind == 1 && r == &add) {
				rule_redirect(r, t, name, "garden.example", rnd() % 2);
			} else if (kind == 2) {
				char net[64];
				snprintf(net, sizeof(net), "10.%d.0.0/%d", (int)(rnd() % 4),
					 (int)(8 + 8 * (rnd() % 3)));
				rule_net(r, BW_TRIG_RESPONSE_IP, net, BW_ACT_NXDOMAIN);
			} else {
				rule_name(r, t, name, acts[rnd() % BW_ARRAY_LEN(acts)])->ttl =
				    rnd() % 4 ? 300 : 30;
			}
		}
		unsigned feed = (unsigned)(rnd() % 2);
		assert_int_equal(
		    bw_policy_apply_delta(p, feed, add.r, add.n, rem.r, rem.n, 2 + round, &q), 0);
		bw_policy_free(p);
		p = q;
	}
	assert_int_equal(bw_policy_compact(p, 99, &c), 0);
	assert_int_equal(bw_policy_entries(c), bw_policy_entries(p));
	for (int i = 0; i < NAMES + 60; i++) {
		static const char *const fmt[] = {"n%d.example", "x.n%d.example",
						  "a.b.n%d.example"};
		for (size_t k = 0; k < BW_ARRAY_LEN(fmt); k++) {
			uint8_t w[255];
			snprintf(name, sizeof(name), fmt[k], i);
			size_t n = wire(name, w);
			for (unsigned prof = 0; prof < 2; prof++) {
				struct bw_verdict a, b;
				assert_int_equal(bw_policy_match_qname(p, prof, w, n, &a),
						 bw_policy_match_qname(c, prof, w, n, &b));
				same_verdict(&a, &b);
				seen[a.action]++;
			}
		}
	}
	/* the changes made every kind of answer */
	for (int act = BW_ACT_ALLOW; act <= BW_ACT_PASSTHRU; act++)
		assert_true(seen[act] > 0);
	for (int i = 0; i < 4 * 256; i++) {
		uint8_t a4[4] = {10, (uint8_t)(i / 256), (uint8_t)i, 1};
		struct bw_verdict a, b;
		assert_int_equal(bw_policy_match_ip(p, 0, AF_INET, a4, &a),
				 bw_policy_match_ip(c, 0, AF_INET, a4, &b));
		same_verdict(&a, &b);
	}
	/* a compacted snapshot takes deltas like any other */
	assert_int_equal(bw_policy_apply_delta(c, 0, NULL, 0, NULL, 0, 100, &q), 0);
	bw_policy_free(c);
	bw_policy_free(p);
	bw_policy_free(q);
	free(f0);
	free(f1);
}


/* ---- feed health (health.c) and entries (bw_entry_count) ---- */

static void test_feed_health_rule(void **state)
{
	struct bw_feed_conf fc = {.name = "h", .min_ratio = 0.5, .max_bad_ratio = 0.5,
				  .min_bad = 10};
	char why[300];

	(void)state;
	assert_int_equal(bw_feed_health(&fc, 100, 0, false), BW_HEALTH_OK);
	assert_int_equal(bw_feed_health(&fc, 100, 5, true), BW_HEALTH_BROKEN);
	assert_int_equal(bw_feed_health(&fc, 0, 1, false), BW_HEALTH_NO_ENTRY);
	assert_int_equal(bw_feed_health(&fc, 0, 0, false), BW_HEALTH_OK); /* empty: a shrink */
	assert_int_equal(bw_feed_health(&fc, 2, 1, false), BW_HEALTH_OK); /* a typo in 3 lines */
	assert_int_equal(bw_feed_health(&fc, 2, 9, false), BW_HEALTH_OK); /* under min-bad */
	assert_int_equal(bw_feed_health(&fc, 9, 10, false), BW_HEALTH_TOO_BAD);
	assert_int_equal(bw_feed_health(&fc, 10, 10, false), BW_HEALTH_OK); /* exactly half */
	assert_int_equal(bw_feed_health(&fc, 524, 3700, false), BW_HEALTH_TOO_BAD);
	fc.max_bad_ratio = 1;
	assert_int_equal(bw_feed_health(&fc, 524, 3700, false), BW_HEALTH_OK);
	/* a conf not from the loader (min-bad 0) gets the defaults */
	struct bw_feed_conf zero = {.name = "z"};
	assert_int_equal(bw_feed_health(&zero, 9, 10, false), BW_HEALTH_TOO_BAD);
	assert_int_equal(bw_feed_health(&zero, 2, 1, false), BW_HEALTH_OK);
	struct bw_parse_report rep = {.bad = 10, .n_errors = 1};
	snprintf(rep.first_errors[0], sizeof(rep.first_errors[0]), "f.txt:3: invalid character");
	bw_feed_health_why(BW_HEALTH_TOO_BAD, &zero, 9, 10, &rep, why, sizeof(why));
	assert_string_equal(why, "10 of 19 entries bad (53%, over max-bad-ratio 0.50; min-bad 10); "
				 "first bad: f.txt:3: invalid character");
	/* the shrink guard */
	assert_false(bw_feed_shrunk(&fc, 50, 100));
	assert_true(bw_feed_shrunk(&fc, 49, 100));
	assert_true(bw_feed_shrunk(&fc, 0, 100)); /* emptied */
	assert_false(bw_feed_shrunk(&fc, 0, 0));  /* nothing to compare with */
	fc.min_ratio = 0;
	assert_false(bw_feed_shrunk(&fc, 0, 100));
}

static int count_into(void *ctx, const struct bw_rule *r)
{
	return bw_entry_count_add(ctx, r);
}

/* Entries mean one thing: a list's name is one entry (its exact and wildcard rule), as
 * the snapshot stores it; the count equals bw_feed_status.entries. */
static void test_entry_count(void **state)
{
	static const char list[] = "a.example\nb.example\nb.example\nc.example\n#x\nbad..name\n";
	static const char rpz[] = "$TTL 60\n@ SOA ns. h. 1 1 1 1 1\n@ NS ns.\n"
				  "x.example CNAME .\n*.x.example CNAME .\ny.example CNAME .\n"
				  "32.1.2.0.192.rpz-ip CNAME .\n";
	struct bw_feed_conf fc = {.name = "l", .category = "c", .format = BW_FEED_DOMAINS};
	struct bw_parse_report rep;
	struct bw_entry_count *c = bw_entry_count_new();

	(void)state;
	assert_non_null(c);
	assert_int_equal(bw_parse_feed(&fc, list, strlen(list), count_into, c, &rep), 0);
	assert_int_equal(rep.rules, 8); /* two rules a name ... */
	assert_int_equal(bw_entry_count_get(c), 3); /* ... one entry a name */
	bw_entry_count_free(c);
	fc.file = write_file("count.domains", list);
	struct bw_policy *p = build(&fc, 1, NULL, 0, NULL);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, 3);
	bw_policy_free(p);
	free(fc.file);

	fc.format = BW_FEED_RPZ;
	fc.file = NULL;
	assert_non_null(c = bw_entry_count_new());
	assert_int_equal(bw_parse_feed(&fc, rpz, strlen(rpz), count_into, c, &rep), 0);
	assert_int_equal(bw_entry_count_get(c), 3); /* x (exact + wildcard), y, the network */
	bw_entry_count_free(c);
	fc.file = write_file("count.rpz", rpz);
	p = build(&fc, 1, NULL, 0, NULL);
	assert_int_equal(bw_policy_feed_status(p, 0)->entries, 3);
	bw_policy_free(p);
	free(fc.file);

	/* many: the set grows */
	assert_non_null(c = bw_entry_count_new());
	for (int i = 0; i < 5000; i++) {
		uint8_t w[64];
		char name[32];
		const char *why;
		snprintf(name, sizeof(name), "n%d.example", i % 3000);
		size_t n = bw_feed_name_to_wire(name, strlen(name), w, &why);
		struct bw_rule r = {.trigger = BW_TRIG_QNAME, .name = w, .name_len = n,
				    .action = BW_ACT_NXDOMAIN};
		assert_int_equal(bw_entry_count_add(c, &r), 0);
	}
	assert_int_equal(bw_entry_count_get(c), 3000);
	bw_entry_count_free(c);
}

/* A local file is judged before it is applied: a failed load and a shrunk version keep the
 * previous rules and say why; an accepted shrink is applied. */
static void test_file_health(void **state)
{
	char big[4096] = "";
	for (int i = 0; i < 100; i++) {
		char line[40];
		snprintf(line, sizeof(line), "name%d.example\n", i);
		strcat(big, line);
	}
	char *f = write_file("health.domains", big);
	struct bw_feed_conf fc = {.name = "h", .category = "malware", .format = BW_FEED_DOMAINS,
				  .file = f, .min_ratio = 0.5, .max_bad_ratio = 0.5, .min_bad = 10};
	struct bw_conf conf;
	struct bw_verdict v;
	struct bw_policy *p1 = NULL, *p2 = NULL, *p3 = NULL;

	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = &fc;
	conf.policy.n_feeds = 1;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p1), 0);
	const struct bw_feed_status *fs = bw_policy_feed_status(p1, 0);
	assert_int_equal(fs->entries, 100);
	assert_int_equal(fs->accepted_entries, 100);

	/* garbage: a failed load, the previous rules stay, the first bad line is named */
	char junk[2000];
	for (size_t i = 0; i < sizeof(junk) - 1; i++)
		junk[i] = (i % 17 == 16) ? '\n' : (char)('!' + (i * 7) % 60);
	junk[sizeof(junk) - 1] = 0;
	free(write_file("health.domains", junk));
	assert_int_equal(bw_policy_build(&conf, p1, 2, &p2), 0);
	fs = bw_policy_feed_status(p2, 0);
	assert_int_equal(fs->load_error, BW_EMALFORMED);
	assert_true(fs->kept_previous);
	assert_int_equal(fs->entries, 100);
	assert_non_null(strstr(fs->error, "health.domains:1: "));
	assert_true(match(p2, "name7.example", &v));
	assert_true(bw_policy_files_changed(p2, &conf) == false); /* no rebuild loop */

	/* a tenth of it: held back; emptied: held back */
	free(write_file("health.domains", "name1.example\nname2.example\n"));
	assert_int_equal(bw_policy_build(&conf, p2, 3, &p3), 0);
	fs = bw_policy_feed_status(p3, 0);
	assert_int_equal(fs->load_error, 0);
	assert_true(fs->held_back);
	assert_int_equal(fs->held_entries, 2);
	assert_int_equal(fs->entries, 100);
	assert_int_equal(fs->accepted_entries, 100);
	assert_non_null(strstr(fs->error, "held back: 2 entries against 100"));
	assert_true(match(p3, "name50.example", &v));
	bw_policy_free(p1);
	free(write_file("health.domains", ""));
	assert_int_equal(bw_policy_build(&conf, p3, 4, &p1), 0);
	fs = bw_policy_feed_status(p1, 0);
	assert_true(fs->held_back);
	assert_int_equal(fs->held_entries, 0);
	assert_true(match(p1, "name50.example", &v));

	/* accepted by the operator: applied */
	bw_policy_free(p2);
	free(write_file("health.domains", "name1.example\nname2.example\n"));
	assert_int_equal(bw_policy_build_ex(&conf, p1, 5, 0, 1, &p2), 0);
	fs = bw_policy_feed_status(p2, 0);
	assert_false(fs->held_back);
	assert_int_equal(fs->entries, 2);
	assert_int_equal(fs->accepted_entries, 2);
	assert_string_equal(fs->error, "");
	assert_false(match(p2, "name50.example", &v));
	assert_true(match(p2, "name2.example", &v));
	bw_policy_free(p1);
	bw_policy_free(p3);

	/* caught mid-write (a writer appends every 20 ms for a second): not applied, read
	 * again at the next look (its recorded mtime is 0: a change for the watcher) */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *w = fopen(f, "w");
		for (int i = 0; w && i < 50; i++) {
			fprintf(w, "slow%d.example\n", i);
			fflush(w);
			usleep(20000);
		}
		_exit(0);
	}
	usleep(50000);
	assert_int_equal(bw_policy_build(&conf, p2, 6, &p1), 0);
	fs = bw_policy_feed_status(p1, 0);
	assert_true(fs->changing);
	assert_int_equal(fs->file_mtime_ns, 0);
	assert_int_equal(fs->entries, 2); /* the previous version's */
	assert_true(match(p1, "name2.example", &v));
	assert_true(bw_policy_files_changed(p1, &conf));
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_int_equal(bw_policy_build(&conf, p1, 7, &p3), 0);
	fs = bw_policy_feed_status(p3, 0);
	assert_false(fs->changing);
	assert_int_equal(fs->entries, 50);
	bw_policy_free(p1);
	bw_policy_free(p2);
	bw_policy_free(p3);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_to_wire),
	    cmocka_unit_test(test_parse_domains),
	    cmocka_unit_test(test_parse_hosts),
	    cmocka_unit_test(test_parse_long_line),
	    cmocka_unit_test(test_parse_file_errors),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_allowlist),
	    cmocka_unit_test(test_feed_order),
	    cmocka_unit_test(test_case_insensitive),
	    cmocka_unit_test(test_previous_fallback),
	    cmocka_unit_test(test_files_changed),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_real_data),
	    cmocka_unit_test(test_shipped_feeds),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_actions),
	    cmocka_unit_test(test_passthru_exception),
	    cmocka_unit_test(test_rpz_file),
	    cmocka_unit_test(test_rpz_file_pieces),
	    cmocka_unit_test(test_list_pieces),
	    cmocka_unit_test(test_list_file_pieces),
	    cmocka_unit_test(test_ip_triggers),
	    cmocka_unit_test(test_nsdname),
	    cmocka_unit_test(test_action_override),
	    cmocka_unit_test(test_profiles),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_broken_feed),
	    cmocka_unit_test(test_feed_health_rule),
	    cmocka_unit_test(test_entry_count),
	    cmocka_unit_test(test_file_health),
	    cmocka_unit_test(test_delta),
	    cmocka_unit_test(test_compact_equivalence),
	    cmocka_unit_test(test_delta_vs_rebuild),
	};

	bw_log_set_level(BW_LOG_ERR);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
