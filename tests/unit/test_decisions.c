/*
 * tests/unit/test_decisions.c - local decisions (policy/decisions.h): name validation, the
 * set (replace, drop, the cap, the most specific cover), the file read back from what it
 * writes and its bad lines, and the snapshot layer: an allow over every feed, a block
 * with feed -1, the most specific decision winning, bw_policy_with_decisions() sharing
 * the rules, deltas and compaction carrying the decisions over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/decisions.h"
#include "policy/policy.h"
#include "policy/rules.h"

static struct bw_local_decision dec(const char *name, enum bw_decision_action a, const char *who)
{
	struct bw_local_decision d = {.action = a, .at = 1714564800}; /* 2024-05-01T12:00:00Z */
	char err[200];
	assert_true(bw_decision_name(name, d.wire, &d.len, err, sizeof(err)));
	snprintf(d.who, sizeof(d.who), "%s", who);
	return d;
}

static void test_names(void **state)
{
	(void)state;
	uint8_t w[BW_DNS_MAXNAME], len;
	char err[200], long_label[70], long_name[300];
	assert_true(bw_decision_name("Example.ORG.", w, &len, err, sizeof(err)));
	assert_int_equal(len, 13);
	assert_memory_equal(w, "\7example\3org", 13);
	assert_true(bw_decision_name("_dmarc.x-y.com", w, &len, err, sizeof(err)));
	assert_true(bw_decision_name("localhost", w, &len, err, sizeof(err)));
	memset(long_label, 'a', 64);
	long_label[64] = 0;
	for (int i = 0; i < 51; i++)
		memcpy(long_name + 5 * i, "abcd.", 5);
	memcpy(long_name + 255, "com", 4); /* 258 characters */
	const char *bad[] = {NULL, "", ".", "..", "a..b", ".a.b", "*.a.b", "a b.com", "a/b.com",
			     "b\303\244d.de", long_label, long_name, "a\tb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_false(bw_decision_name(bad[i], w, &len, err, sizeof(err)));
		assert_true(strstr(err, "invalid name") || strstr(err, "name is needed"));
	}
}

static void test_set(void **state)
{
	(void)state;
	struct bw_decisions *d0 = NULL, *d1, *d2, *d3;
	struct bw_local_decision a = dec("example.com", BW_DECISION_ALLOW, "token alice");
	struct bw_local_decision b = dec("evil.example.com", BW_DECISION_BLOCK, "token bob");
	assert_int_equal(bw_decisions_put(d0, &a, &d1), 0);
	assert_int_equal(bw_decisions_put(d1, &b, &d2), 0);
	assert_int_equal(bw_decisions_count(d1), 1); /* d1 unchanged by d2 */
	assert_int_equal(bw_decisions_count(d2), 2);
	/* the most specific decision covers */
	const struct bw_local_decision *x =
	    bw_decisions_cover(d2, (const uint8_t *)"\1x\4evil\7example\3com", 20);
	assert_non_null(x);
	assert_int_equal(x->action, BW_DECISION_BLOCK);
	x = bw_decisions_cover(d2, (const uint8_t *)"\3www\7example\3com", 17);
	assert_non_null(x);
	assert_int_equal(x->action, BW_DECISION_ALLOW);
	assert_null(bw_decisions_cover(d2, (const uint8_t *)"\3com", 5));
	assert_null(bw_decisions_cover(d2, (const uint8_t *)"\7example\3org", 13));
	/* a new decision on a name replaces the old one, either action */
	struct bw_local_decision a2 = dec("EVIL.example.com", BW_DECISION_ALLOW, "token carol");
	assert_int_equal(bw_decisions_put(d2, &a2, &d3), 0);
	assert_int_equal(bw_decisions_count(d3), 2);
	assert_string_equal(bw_decisions_at(d3, 1)->who, "token carol");
	/* undo: only the decision with that action */
	struct bw_decisions *d4 = NULL;
	assert_int_equal(bw_decisions_drop(d3, b.wire, b.len, BW_DECISION_BLOCK, &d4), BW_ENOENT);
	assert_int_equal(bw_decisions_drop(d3, b.wire, b.len, BW_DECISION_ALLOW, &d4), 0);
	assert_int_equal(bw_decisions_count(d4), 1);
	assert_null(bw_decisions_find(d4, b.wire, b.len));
	assert_non_null(bw_decisions_find(d4, a.wire, a.len));
	struct bw_decisions *d5 = (struct bw_decisions *)1;
	assert_int_equal(bw_decisions_drop(d4, a.wire, a.len, BW_DECISION_ALLOW, &d5), 0);
	assert_null(d5); /* none left */
	bw_decisions_unref(d1);
	bw_decisions_unref(d2);
	bw_decisions_unref(d3);
	bw_decisions_unref(d4);
}

static void test_cap(void **state)
{
	(void)state;
	struct bw_decisions *n;
	/* fill to the cap through the file parser, then one more name is refused */
	size_t cap = (size_t)BW_DECISIONS_MAX * 48 + 64, bad = 0, at = 0;
	char *buf = malloc(cap), err[300];
	assert_non_null(buf);
	for (int i = 0; i <= BW_DECISIONS_MAX; i++)
		at += (size_t)snprintf(buf + at, cap - at, "block n%d.example 2024-05-01T12:00:00Z t\n", i);
	struct bw_decisions *full = NULL;
	assert_int_equal(bw_decisions_parse(buf, at, "f", &full, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(err, "f:10001: more than 10000"));
	assert_int_equal(bw_decisions_count(full), BW_DECISIONS_MAX);
	struct bw_local_decision more = dec("one-more.example", BW_DECISION_ALLOW, "t");
	assert_int_equal(bw_decisions_put(full, &more, &n), BW_ESPACE);
	struct bw_local_decision again = dec("n5.example", BW_DECISION_ALLOW, "t");
	assert_int_equal(bw_decisions_put(full, &again, &n), 0); /* a known name: replaced */
	assert_int_equal(bw_decisions_count(n), BW_DECISIONS_MAX);
	bw_decisions_unref(n);
	bw_decisions_unref(full);
	free(buf);
}

static void test_file(void **state)
{
	(void)state;
	struct bw_decisions *d1 = NULL, *d2 = NULL, *back = NULL;
	struct bw_local_decision a = dec("example.com", BW_DECISION_ALLOW, "bulwarkctl (uid 0)");
	struct bw_local_decision b = dec("evil.example", BW_DECISION_BLOCK, "token ops team");
	assert_int_equal(bw_decisions_put(NULL, &a, &d1), 0);
	assert_int_equal(bw_decisions_put(d1, &b, &d2), 0);
	char *text = NULL;
	size_t len = 0, bad = 9;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(bw_decisions_write(f, d2), 0);
	fclose(f);
	assert_non_null(strstr(text, "\nallow example.com 2024-05-01T12:00:00Z bulwarkctl (uid 0)\n"));
	assert_non_null(strstr(text, "\nblock evil.example 2024-05-01T12:00:00Z token ops team\n"));
	char err[300] = "";
	assert_int_equal(bw_decisions_parse(text, len, "x", &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(bw_decisions_count(back), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct bw_local_decision *p = bw_decisions_at(d2, i), *q = bw_decisions_at(back, i);
		assert_int_equal(p->action, q->action);
		assert_int_equal(p->len, q->len);
		assert_memory_equal(p->wire, q->wire, p->len);
		assert_string_equal(p->who, q->who);
		assert_int_equal(p->at, q->at);
	}
	bw_decisions_unref(back);
	/* bad lines are skipped and counted, the first one said; later lines win */
	const char *mixed = "# comment\n\n"
			    "allow a.example 2024-05-01T12:00:00Z x\n"
			    "deny b.example 2024-05-01T12:00:00Z x\n"
			    "block *.c.example 2024-05-01T12:00:00Z x\n"
			    "block d.example yesterday x\n"
			    "block e.example\n"
			    "block a.example 2024-05-02T00:00:00Z y\r\n";
	assert_int_equal(bw_decisions_parse(mixed, strlen(mixed), "m", &back, &bad, err,
					    sizeof(err)), 0);
	assert_int_equal(bad, 4);
	assert_string_equal(err, "m:4: the action is neither allow nor block");
	assert_int_equal(bw_decisions_count(back), 1);
	assert_int_equal(bw_decisions_at(back, 0)->action, BW_DECISION_BLOCK);
	assert_string_equal(bw_decisions_at(back, 0)->who, "y");
	bw_decisions_unref(back);
	/* nothing usable: no set; a missing file: no decision */
	assert_int_equal(bw_decisions_parse("# x\n", 4, "e", &back, &bad, err, sizeof(err)), 0);
	assert_null(back);
	assert_int_equal(bw_decisions_load("/nonexistent/local-decisions", &back, &bad, err,
					   sizeof(err)), 0);
	assert_null(back);
	free(text);
	bw_decisions_unref(d1);
	bw_decisions_unref(d2);
}

/* ---- in the snapshot ---- */

static char tmpdir[64];

static struct bw_policy *build_two(void)
{
	static char f0[128], f1[128];
	snprintf(f0, sizeof(f0), "%s/a.domains", tmpdir);
	snprintf(f1, sizeof(f1), "%s/b.domains", tmpdir);
	FILE *f = fopen(f0, "w");
	fputs("evil.example\nbad.example\n", f);
	fclose(f);
	f = fopen(f1, "w");
	fputs("other.example\n", f);
	fclose(f);
	static struct bw_feed_conf feeds[2];
	feeds[0] = (struct bw_feed_conf){.name = "a", .category = "malware",
					 .format = BW_FEED_DOMAINS, .file = f0};
	feeds[1] = (struct bw_feed_conf){.name = "b", .category = "phishing",
					 .format = BW_FEED_DOMAINS, .file = f1};
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = feeds;
	conf.policy.n_feeds = 2;
	struct bw_policy *p = NULL;
	assert_int_equal(bw_policy_build(&conf, NULL, 1, &p), 0);
	return p;
}

static bool match(const struct bw_policy *p, const char *text, struct bw_verdict *v)
{
	uint8_t w[BW_DNS_MAXNAME];
	int len = bw_name_from_text(text, strlen(text), w);
	assert_true(len > 0);
	return bw_policy_match(p, w, (size_t)len, v);
}

static void test_snapshot(void **state)
{
	(void)state;
	struct bw_verdict v;
	struct bw_decisions *d1 = NULL, *d2 = NULL, *d3 = NULL;
	struct bw_local_decision allow = dec("evil.example", BW_DECISION_ALLOW, "token a");
	struct bw_local_decision block = dec("fine.example", BW_DECISION_BLOCK, "token b");
	struct bw_local_decision inner = dec("x.evil.example", BW_DECISION_BLOCK, "token c");
	assert_int_equal(bw_decisions_put(NULL, &allow, &d1), 0);
	assert_int_equal(bw_decisions_put(d1, &block, &d2), 0);
	assert_int_equal(bw_decisions_put(d2, &inner, &d3), 0);

	struct bw_policy *p0 = build_two(), *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
	assert_true(match(p0, "www.evil.example", &v));
	assert_int_equal(bw_policy_with_decisions(p0, d2, 2, &p1), 0);
	assert_int_equal(bw_policy_generation(p1), 2);
	assert_int_equal(bw_policy_entries(p1), bw_policy_entries(p0)); /* the same rules */
	/* p0 is unchanged; p1: the allow wins over the feed, name and subdomains */
	assert_true(match(p0, "evil.example", &v));
	assert_false(match(p1, "evil.example", &v));
	assert_true(v.allowlisted && v.local);
	assert_string_equal(v.feed_name, "local");
	assert_false(match(p1, "www.evil.example", &v));
	assert_true(v.local);
	assert_true(match(p1, "bad.example", &v)); /* not covered */
	assert_false(v.local);
	/* the block: NXDOMAIN + EDE 15 by "local", feed -1 (before every feed) */
	assert_true(match(p1, "a.fine.example", &v));
	assert_true(v.local);
	assert_int_equal(v.action, BW_ACT_NXDOMAIN);
	assert_int_equal(v.ede, 15);
	assert_int_equal(v.feed, -1);
	assert_int_equal(v.trigger, BW_TRIG_WILDCARD);
	char text[200];
	bw_verdict_ede_text(&v, NULL, text, sizeof(text));
	assert_string_equal(text, "blocked by local (local)");
	assert_int_equal(bw_policy_decide_qname(p1, 0, (const uint8_t *)"\4fine\7example", 14, &v),
			 BW_DECIDE_RULE);
	/* the most specific decision wins */
	assert_int_equal(bw_policy_with_decisions(p1, d3, 3, &p2), 0);
	assert_true(match(p2, "a.x.evil.example", &v));
	assert_false(match(p2, "y.evil.example", &v));
	const struct bw_local_decision *who =
	    bw_policy_decision(p2, (const uint8_t *)"\1a\1x\4evil\7example", 18);
	assert_non_null(who);
	assert_string_equal(who->who, "token c");
	/* a delta and a compaction carry the decisions over */
	struct bw_rule r = {.trigger = BW_TRIG_QNAME, .name = (const uint8_t *)"\4evil\7example",
			    .name_len = 14, .action = BW_ACT_NXDOMAIN};
	assert_int_equal(bw_policy_apply_delta(p2, 1, &r, 1, NULL, 0, 4, &p3), 0);
	assert_false(match(p3, "evil.example", &v));
	assert_true(v.local);
	assert_int_equal(bw_policy_compact(p3, 5, &p4), 0);
	assert_false(match(p4, "evil.example", &v));
	assert_true(match(p4, "a.fine.example", &v));
	assert_true(v.local);
	/* no decisions: the snapshot as built */
	bw_policy_free(p1);
	assert_int_equal(bw_policy_with_decisions(p4, NULL, 6, &p1), 0);
	assert_true(match(p1, "evil.example", &v));
	assert_false(v.local);
	assert_null(bw_policy_decision(p1, (const uint8_t *)"\4evil\7example", 14));
	/* freed in any order: the set lives as long as a snapshot holds it */
	bw_decisions_unref(d1);
	bw_decisions_unref(d2);
	bw_decisions_unref(d3);
	bw_policy_free(p2);
	assert_false(match(p4, "evil.example", &v));
	bw_policy_free(p0);
	bw_policy_free(p1);
	bw_policy_free(p3);
	bw_policy_free(p4);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bw-test-decisions-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),    cmocka_unit_test(test_set),
	    cmocka_unit_test(test_cap),      cmocka_unit_test(test_file),
	    cmocka_unit_test(test_snapshot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
