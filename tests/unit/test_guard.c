/* test_guard.c - look-alike detection per kind (ASCII and IDN in several scripts), the
 * registrable domain, the newly-seen memory (observe, forget, save/load, corrupt files,
 * false-positive rate), and the guard: config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "conf/conf.h"
#include "guard/guard.h"

static struct bw_lookalike *g;

static int setup(void **state)
{
	(void)state;
	static char *apple_owns[] = {"apple.news"};
	static const struct bw_guard_protected p[] = {
	    {.domain = "amnesty.org", .action = BW_GUARD_ACT_BLOCK},
	    {.domain = "microsoft.com", .action = BW_GUARD_ACT_BLOCK},
	    {.domain = "apple.com", .action = BW_GUARD_ACT_ALERT, .owns = apple_owns, .n_owns = 1},
	    {.domain = "ngo.org", .action = BW_GUARD_ACT_BLOCK},
	    {.domain = "www.Google.com.", .action = BW_GUARD_ACT_BLOCK, .no_tld_swap = true},
	    {.domain = "example.co.uk", .action = BW_GUARD_ACT_BLOCK},
	};
	size_t bad = 99;
	return bw_lookalike_build(p, BW_ARRAY_LEN(p), 5, &g, &bad);
}

static int teardown(void **state)
{
	(void)state;
	bw_lookalike_free(g);
	return 0;
}

static int failures;

/* name must be flagged as kind, imitating prot (kind BW_GK_NONE: must not be flagged) */
static void expect(const char *name, enum bw_guard_kind kind, const char *prot)
{
	struct bw_guard_hit hit;
	bool got = bw_lookalike_check(g, name, &hit);
	if (kind == BW_GK_NONE) {
		if (got) {
			printf("  %s: flagged %s of %s, expected nothing\n", name,
			       bw_guard_kind_name(hit.kind), hit.protected);
			failures++;
		}
		return;
	}
	if (!got) {
		printf("  %s: not flagged, expected %s of %s\n", name, bw_guard_kind_name(kind), prot);
		failures++;
	} else if (hit.kind != kind || strcmp(hit.protected, prot) != 0) {
		printf("  %s: flagged %s of %s, expected %s of %s\n", name,
		       bw_guard_kind_name(hit.kind), hit.protected, bw_guard_kind_name(kind), prot);
		failures++;
	}
}

static void test_registrable(void **state)
{
	(void)state;
	assert_string_equal(bw_registrable_domain("www.amnesty.org"), "amnesty.org");
	assert_string_equal(bw_registrable_domain("a.b.example.co.uk"), "example.co.uk");
	assert_string_equal(bw_registrable_domain("ngo.org.co"), "ngo.org.co");
	assert_string_equal(bw_registrable_domain("x.evil.example"), "evil.example");
	assert_null(bw_registrable_domain("co.uk"));
	assert_null(bw_registrable_domain("org"));
}

static void test_build_errors(void **state)
{
	(void)state;
	struct bw_lookalike *x = NULL;
	size_t bad = 99;
	const struct bw_guard_protected p[] = {{.domain = "fine.org"}, {.domain = "co.uk"}};
	assert_int_equal(bw_lookalike_build(p, 2, 5, &x, &bad), BW_EINVAL);
	assert_null(x);
	assert_int_equal(bad, 1);
	assert_int_equal(bw_lookalike_build(p, 0, 5, &x, &bad), 0);
	assert_false(bw_lookalike_check(x, "fine.org", &(struct bw_guard_hit){0}));
	bw_lookalike_free(x);
}

static void test_exact_and_subdomains(void **state)
{
	(void)state;
	failures = 0;
	expect("amnesty.org", BW_GK_NONE, NULL);
	expect("www.amnesty.org", BW_GK_NONE, NULL);
	expect("LOGIN.Amnesty.Org.", BW_GK_NONE, NULL);
	expect("a.b.c.microsoft.com", BW_GK_NONE, NULL);
	expect("google.com", BW_GK_NONE, NULL);
	expect("apple.news", BW_GK_NONE, NULL);         /* owned */
	expect("www.apple.news", BW_GK_NONE, NULL);
	expect("wikipedia.org", BW_GK_NONE, NULL);
	expect("co.uk", BW_GK_NONE, NULL);
	expect("org", BW_GK_NONE, NULL);
	expect("", BW_GK_NONE, NULL);
	expect(".", BW_GK_NONE, NULL);
	assert_int_equal(failures, 0);
}

static void test_typos(void **state)
{
	(void)state;
	failures = 0;
	expect("amnsty.org", BW_GK_OMISSION, "amnesty.org");
	expect("amnnesty.org", BW_GK_REPETITION, "amnesty.org");
	expect("amnetsy.org", BW_GK_TRANSPOSITION, "amnesty.org");
	expect("amnwsty.org", BW_GK_REPLACEMENT, "amnesty.org");   /* e -> w (qwerty) */
	expect("amnesry.org", BW_GK_REPLACEMENT, "amnesty.org");   /* t -> r */
	expect("amneaty.org", BW_GK_REPLACEMENT, "amnesty.org");   /* s -> a */
	expect("amnedsty.org", BW_GK_INSERTION, "amnesty.org");
	expect("amnisty.org", BW_GK_VOWEL_SWAP, "amnesty.org");
	expect("amnes4y.org", BW_GK_BITSQUATTING, "amnesty.org");
	expect("amn-esty.org", BW_GK_HYPHENATION, "amnesty.org");
	expect("amnesty1.org", BW_GK_ADDITION, "amnesty.org");
	expect("www.micosoft.com", BW_GK_OMISSION, "microsoft.com");
	expect("mircosoft.net", BW_GK_TRANSPOSITION, "microsoft.com"); /* typo under any TLD */
	/* labels shorter than min-length (5) get no typo checks */
	expect("ngi.org", BW_GK_NONE, NULL);
	expect("nog.org", BW_GK_NONE, NULL);
	assert_int_equal(failures, 0);
}

static void test_ascii_homoglyphs(void **state)
{
	(void)state;
	failures = 0;
	expect("rnicrosoft.com", BW_GK_HOMOGLYPH, "microsoft.com"); /* rn for m */
	expect("micr0s0ft.com", BW_GK_HOMOGLYPH, "microsoft.com");  /* 0 for o */
	expect("micr0soft.com", BW_GK_REPLACEMENT, "microsoft.com"); /* 0 is o's neighbour */
	expect("rnicr0soft.com", BW_GK_HOMOGLYPH, "microsoft.com"); /* two at once */
	expect("arnnesty.org", BW_GK_HOMOGLYPH, "amnesty.org");
	expect("app1e.com", BW_GK_HOMOGLYPH, "apple.com");
	expect("g00gle.com", BW_GK_HOMOGLYPH, "google.com");
	assert_int_equal(failures, 0);
}

static void test_idn(void **state)
{
	(void)state;
	failures = 0;
	/* Cyrillic а (U+0430) in apple, as UTF-8 and as punycode */
	expect("\xd0\xb0pple.com", BW_GK_IDN_HOMOGLYPH, "apple.com");
	expect("xn--pple-43d.com", BW_GK_IDN_HOMOGLYPH, "apple.com");
	/* whole-script Cyrillic: аррӏе */
	expect("\xd0\xb0\xd1\x80\xd1\x80\xd3\x8f\xd0\xb5.com", BW_GK_IDN_HOMOGLYPH, "apple.com");
	/* Greek omicron (U+03BF) in microsoft */
	expect("micr\xce\xbfsoft.com", BW_GK_IDN_HOMOGLYPH, "microsoft.com");
	/* Armenian o (U+0585) twice in google */
	expect("g\xd6\x85\xd6\x85gle.com", BW_GK_IDN_HOMOGLYPH, "google.com");
	/* Latin with a diacritic: á (U+00E1), and a hooked n (U+A791) */
	expect("\xc3\xa1mnesty.org", BW_GK_IDN_HOMOGLYPH, "amnesty.org");
	expect("amn\xc3\xa9sty.net", BW_GK_IDN_HOMOGLYPH, "amnesty.org");
	expect("ar\xea\x9e\x91nesty.org", BW_GK_IDN_HOMOGLYPH, "amnesty.org");
	/* fullwidth letters fold too (UTS #46 would map them before the wire anyway) */
	expect("\xef\xbd\x8e\xef\xbd\x87\xef\xbd\x8f.org", BW_GK_IDN_HOMOGLYPH, "ngo.org");
	/* an IDN homoglyph of a short label counts (ASCII ng0 would not) */
	expect("\xc3\xb1go.org", BW_GK_IDN_HOMOGLYPH, "ngo.org");
	expect("ng0.org", BW_GK_NONE, NULL);
	/* genuine internationalised names that imitate nothing */
	expect("m\xc3\xbcnchen.de", BW_GK_NONE, NULL);
	expect("xn--mnchen-3ya.de", BW_GK_NONE, NULL);
	expect("\xe4\xbe\x8b\xe5\xad\x90.\xe4\xb8\xad\xe5\x9b\xbd", BW_GK_NONE, NULL);
	expect("xn--broken-punycode-!!.org", BW_GK_NONE, NULL);
	assert_int_equal(failures, 0);
}

static void test_tld_and_labels(void **state)
{
	(void)state;
	failures = 0;
	expect("amnesty.net", BW_GK_TLD_SWAP, "amnesty.org");
	expect("ngo.org.co", BW_GK_TLD_SWAP, "ngo.org");
	expect("www.example.com", BW_GK_TLD_SWAP, "example.co.uk");
	expect("google.de", BW_GK_NONE, NULL); /* tld-swap off for google.com */
	expect("ngo-org.com", BW_GK_ADDED_LABEL, "ngo.org");
	expect("ngoorg.org", BW_GK_ADDED_LABEL, "ngo.org");
	expect("amnesty-org.com", BW_GK_ADDED_LABEL, "amnesty.org");
	expect("example-co-uk.com", BW_GK_ADDED_LABEL, "example.co.uk");
	expect("ngo.org.evil.example", BW_GK_SUBDOMAIN, "ngo.org");
	expect("login.amnesty.org.secure-site.net", BW_GK_SUBDOMAIN, "amnesty.org");
	expect("amn.esty.org", BW_GK_DOT_INSERTION, "amnesty.org");
	expect("micro.soft.com", BW_GK_DOT_INSERTION, "microsoft.com");
	assert_int_equal(failures, 0);
}

static void test_combosquats(void **state)
{
	(void)state;
	failures = 0;
	expect("ngo-donate.com", BW_GK_COMBOSQUAT, "ngo.org");
	expect("login-ngo.net", BW_GK_COMBOSQUAT, "ngo.org");
	expect("amnesty-secure-login.org", BW_GK_COMBOSQUAT, "amnesty.org");
	expect("secureamnesty.com", BW_GK_COMBOSQUAT, "amnesty.org");
	expect("microsoftlogin.com", BW_GK_COMBOSQUAT, "microsoft.com");
	expect("appleid-verify.com", BW_GK_NONE, NULL); /* no token is a protected label */
	expect("pineapple.com", BW_GK_NONE, NULL);
	expect("applebees.com", BW_GK_NONE, NULL);
	expect("ngold.org", BW_GK_NONE, NULL);
	assert_int_equal(failures, 0);
}

static void test_actions(void **state)
{
	(void)state;
	struct bw_guard_hit hit;
	assert_true(bw_lookalike_check(g, "app1e.com", &hit));
	assert_int_equal(hit.action, BW_GUARD_ACT_ALERT);
	assert_int_equal(hit.index, 2);
	assert_true(bw_lookalike_check(g, "amnesty.net", &hit));
	assert_int_equal(hit.action, BW_GUARD_ACT_BLOCK);
	assert_int_equal(hit.index, 0);
	assert_string_equal(bw_guard_kind_name(BW_GK_COMBOSQUAT), "combosquat");
	assert_string_equal(bw_guard_kind_name(BW_GK_IDN_HOMOGLYPH), "idn-homoglyph");
	assert_true(bw_lookalike_variants(g) > 1000);
	assert_int_equal(bw_lookalike_count(g), 6);
}

/* ---- newly seen ---- */

static void test_nseen_basic(void **state)
{
	(void)state;
	struct bw_nseen *ns;
	uint64_t first;
	assert_int_equal(bw_nseen_new(1000, &ns), 0);
	uint64_t t0 = bw_nseen_born(ns);
	assert_false(bw_nseen_observe(ns, "example.org", 11, t0 + 10, &first));
	assert_true(bw_nseen_observe(ns, "example.org", 11, t0 + 7200, &first));
	assert_int_equal(first, t0); /* hour-rounded: first seen in hour 0 */
	assert_true(bw_nseen_observe(ns, "example.org", 11, t0 + 99999, &first));
	assert_int_equal(first, t0);
	assert_false(bw_nseen_observe(ns, "example.net", 11, t0 + 7200, &first));
	assert_int_equal(first, t0 + 7200);
	bw_nseen_free(ns);
}

/* A full memory forgets the least recently seen, stays within its size, and mistakes
 * few new domains for known ones. */
static void test_nseen_bounded_and_fp(void **state)
{
	(void)state;
	struct bw_nseen *ns;
	uint64_t first;
	char name[64];
	assert_int_equal(bw_nseen_new(1 << 16, &ns), 0);
	assert_int_equal(bw_nseen_bytes(ns), (1 << 16) * 8);
	uint64_t t0 = bw_nseen_born(ns);
	for (int i = 0; i < 40000; i++) {
		int n = snprintf(name, sizeof(name), "known%d.example", i);
		bw_nseen_observe(ns, name, (size_t)n, t0 + 3600, &first);
	}
	size_t remembered = 0, fp = 0;
	for (int i = 0; i < 40000; i++) {
		int n = snprintf(name, sizeof(name), "known%d.example", i);
		remembered += bw_nseen_observe(ns, name, (size_t)n, t0 + 7200, &first);
	}
	for (int i = 0; i < 200000; i++) {
		int n = snprintf(name, sizeof(name), "never%d.test", i);
		fp += bw_nseen_observe(ns, name, (size_t)n, t0 + 7200, &first) ? 1 : 0;
	}
	printf("  remembered %zu of 40000 (61%% load), %zu false 'seen' of 200000 new\n",
	       remembered, fp);
	assert_true(remembered > 39900);
	assert_true(fp < 5); /* expected about 200000 * 16 / 2^32 = 0.0007 */
	/* 200000 new names overflowed the 65536 slots: the table is full, still bounded */
	assert_int_equal(bw_nseen_bytes(ns), (1 << 16) * 8);
	bw_nseen_free(ns);
}

static void test_nseen_persist(void **state)
{
	(void)state;
	struct bw_nseen *a, *b, *c;
	uint64_t first;
	char path[] = "/tmp/bw-test-nseen-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(bw_nseen_new(4096, &a), 0);
	assert_int_equal(bw_nseen_new(4096, &b), 0);
	assert_int_equal(bw_nseen_new(8192, &c), 0);
	assert_int_equal(bw_nseen_load(b, path), BW_ENOENT);
	uint64_t t0 = bw_nseen_born(a);
	bw_nseen_observe(a, "kept.example", 12, t0 + 3 * 3600, &first);
	assert_int_equal(bw_nseen_save(a, path), 0);
	assert_int_equal(bw_nseen_load(b, path), 0);
	assert_int_equal(bw_nseen_born(b), t0);
	assert_true(bw_nseen_observe(b, "kept.example", 12, t0 + 5 * 3600, &first));
	assert_int_equal(first, t0 + 3 * 3600);
	assert_false(bw_nseen_observe(b, "other.example", 13, t0 + 5 * 3600, &first));
	/* another size: refused, the memory stays fresh */
	assert_int_equal(bw_nseen_load(c, path), BW_EMALFORMED);
	assert_false(bw_nseen_observe(c, "kept.example", 12, t0 + 5 * 3600, &first));
	/* a flipped byte: refused by the checksum */
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, 100, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, 100, SEEK_SET);
	fputc(ch ^ 0x40, f);
	fclose(f);
	struct bw_nseen *d;
	assert_int_equal(bw_nseen_new(4096, &d), 0);
	assert_int_equal(bw_nseen_load(d, path), BW_EMALFORMED);
	/* truncated */
	assert_int_equal(truncate(path, 40), 0);
	assert_int_equal(bw_nseen_load(d, path), BW_EMALFORMED);
	unlink(path);
	bw_nseen_free(a);
	bw_nseen_free(b);
	bw_nseen_free(c);
	bw_nseen_free(d);
}

/* ---- config ---- */

static int load(const char *text, struct bw_conf **out, char *err, size_t errlen, char *path)
{
	strcpy(path, "/tmp/bw-test-guard-XXXXXX.yaml");
	int fd = mkstemps(path, 5);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	close(fd);
	int rc = bw_conf_load(path, out, err, errlen);
	unlink(path);
	return rc;
}

static void test_conf(void **state)
{
	(void)state;
	struct bw_conf *c = NULL;
	char err[512], path[64];
	assert_int_equal(load("server: {listen: [{address: 127.0.0.1, port: 5353}]}\n", &c, err,
			      sizeof(err), path), 0);
	assert_int_equal(c->guard.n_protected, 0);
	assert_false(c->guard.nseen);
	assert_int_equal(c->guard.min_length, 5);
	bw_conf_free(c);

	const char *full = "policy:\n"
			   "  profiles:\n"
			   "    - {name: staff}\n"
			   "    - {name: kids}\n"
			   "guard:\n"
			   "  min-length: 4\n"
			   "  protected:\n"
			   "    - Amnesty.org\n"
			   "    - {domain: apple.com, action: alert, owns: [apple.news], tld-swap: false}\n"
			   "  newly-seen:\n"
			   "    window: 2d\n"
			   "    memory: 5000\n"
			   "    action: short-ttl\n"
			   "    short-ttl: 30\n"
			   "    profiles: {kids: block}\n";
	assert_int_equal(load(full, &c, err, sizeof(err), path), 0);
	assert_int_equal(c->guard.n_protected, 2);
	assert_string_equal(c->guard.protected[0].domain, "amnesty.org");
	assert_int_equal(c->guard.protected[0].action, 0);
	assert_true(c->guard.protected[0].tld_swap);
	assert_int_equal(c->guard.protected[1].action, 1);
	assert_false(c->guard.protected[1].tld_swap);
	assert_int_equal(c->guard.protected[1].n_owns, 1);
	assert_string_equal(c->guard.protected[1].owns[0], "apple.news");
	assert_int_equal(c->guard.min_length, 4);
	assert_true(c->guard.nseen);
	assert_int_equal(c->guard.nseen_window_ms, 2 * 86400000ULL);
	assert_int_equal(c->guard.nseen_warmup_ms, 2 * 86400000ULL);
	assert_int_equal(c->guard.nseen_memory, 5000);
	assert_int_equal(c->guard.nseen_action, BW_NSEEN_SHORT_TTL);
	assert_int_equal(c->guard.nseen_ttl, 30);
	assert_non_null(c->guard.nseen_profile_action);
	assert_int_equal(c->guard.nseen_profile_action[0], -1);
	assert_int_equal(c->guard.nseen_profile_action[1], BW_NSEEN_BLOCK);
	struct bw_lookalike *x = NULL;
	assert_int_equal(bw_guard_lookalike_build(c, &x), 0);
	struct bw_guard_hit hit;
	assert_true(bw_lookalike_check(x, "amnesty.net", &hit));
	assert_false(bw_lookalike_check(x, "apple.net", &hit)); /* tld-swap: false */
	assert_false(bw_lookalike_check(x, "apple.news", &hit));
	bw_lookalike_free(x);
	bw_conf_free(c);

	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"guard:\n  protected: [org]\n", ":2:15: guard.protected: 'org' is not a domain"},
	    {"guard:\n  protected: [a.org, Co.UK]\n",
	     ":2:22: guard.protected: 'Co.UK' is a public suffix: it has no registrable domain"},
	    {"guard:\n  protected:\n    - {domain: a.org, owns: [github.io]}\n",
	     ":3:30: guard.protected: 'github.io' is a public suffix"},
	    {"guard:\n  protected:\n    - {domain: a.org, action: maybe}\n", ":3:31: invalid action 'maybe'"},
	    {"guard:\n  protected:\n    - {action: alert}\n", ":3:7: "},
	    {"guard:\n  newly-seen: {profiles: {nobody: block}}\n",
	     ":2:27: guard.newly-seen.profiles: there is no profile 'nobody'"},
	    {"guard:\n  newly-seen: {window: 500ms}\n", ":2:24: "},
	    {"guard:\n  colour: red\n", ":2:3: "},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		c = NULL;
		int rc = load(bad[i].text, &c, err, sizeof(err), path);
		if (rc == 0 || c || !strstr(err, bad[i].want)) {
			printf("  config %zu: got '%s', want '...%s...'\n", i, rc ? err : "success",
			       bad[i].want);
			bw_conf_free(c);
			fail();
		}
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The popular list: its domains (and names below them) are never flagged, and the check
 * says what they would have been; the same label under a private-section suffix of the
 * Public Suffix List (hosting, CDN) is not a TLD swap. */
static void test_popular_and_hosting(void **state)
{
	(void)state;
	char path[] = "/tmp/bw-test-popular-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	write_file(path, "# a comment\n"
			 "1,apple.com.cn\n"   /* Tranco's RANK,NAME */
			 "www.Apple-DNS.net.\n" /* counts as its registrable domain */
			 "not a name\n"
			 "\n"
			 "amnesty.de  # trailing comment\n");
	size_t count = 0, skipped = 0;
	struct bw_guard_hit hit;
	assert_int_equal(bw_lookalike_load_popular(g, path, &count, &skipped), 0);
	assert_int_equal(count, 3);
	assert_int_equal(skipped, 1);
	assert_int_equal(bw_lookalike_popular(g), 3);
	assert_false(bw_lookalike_check(g, "www.apple.com.cn", &hit));
	assert_int_equal(hit.exempt, BW_GX_POPULAR);
	assert_int_equal(hit.kind, BW_GK_TLD_SWAP);
	assert_string_equal(hit.protected, "apple.com");
	assert_false(bw_lookalike_check(g, "apple-dns.net", &hit));
	assert_int_equal(hit.exempt, BW_GX_POPULAR);
	assert_int_equal(hit.kind, BW_GK_COMBOSQUAT);
	assert_false(bw_lookalike_check(g, "amnesty.de", &hit));
	/* not on the list: still flagged, exempt cleared */
	assert_true(bw_lookalike_check(g, "apple.cn", &hit));
	assert_int_equal(hit.exempt, BW_GX_NONE);
	assert_true(bw_lookalike_check(g, "amnesty.fr", &hit));
	/* hosting suffixes (private section) are not TLD swaps; ICANN ones are */
	assert_false(bw_lookalike_check(g, "amnesty.github.io", &hit));
	assert_int_equal(hit.exempt, BW_GX_HOSTING);
	assert_false(bw_lookalike_check(g, "www.amnesty.blogspot.com", &hit));
	assert_int_equal(hit.exempt, BW_GX_HOSTING);
	assert_false(bw_lookalike_check(g, "microsoft.azurewebsites.net", &hit));
	assert_true(bw_lookalike_check(g, "amnesty.org.co", &hit));
	assert_int_equal(hit.kind, BW_GK_TLD_SWAP);
	/* other kinds still apply under a hosting suffix */
	assert_true(bw_lookalike_check(g, "amnesty-login.github.io", &hit));
	assert_int_equal(hit.kind, BW_GK_COMBOSQUAT);
	assert_true(bw_lookalike_check(g, "rnicrosoft.cloudfront.net", &hit));
	/* a file with lines but no domain is an error, a missing one too */
	write_file(path, "not a name\n1,\n");
	struct bw_lookalike *x = NULL;
	static const struct bw_guard_protected one = {.domain = "amnesty.org"};
	assert_int_equal(bw_lookalike_build(&one, 1, 5, &x, NULL), 0);
	assert_int_equal(bw_lookalike_load_popular(x, path, &count, &skipped), BW_EMALFORMED);
	unlink(path);
	assert_int_equal(bw_lookalike_load_popular(x, path, &count, &skipped), BW_ENOENT);
	bw_lookalike_free(x);
}

/* owns-file: domains declared in bulk; guard.popular: a file or none */
static void test_conf_files(void **state)
{
	(void)state;
	struct bw_conf *c = NULL;
	char err[512], path[64], text[512];
	char owns[] = "/tmp/bw-test-owns-XXXXXX", pop[] = "/tmp/bw-test-pop-XXXXXX";
	int fd = mkstemp(owns);
	assert_true(fd >= 0);
	close(fd);
	fd = mkstemp(pop);
	assert_true(fd >= 0);
	close(fd);
	write_file(owns, "# Apple's\napple-dns.net\n  Apple.CN  # national\n\ncdn-apple.com\n");
	write_file(pop, "apple.co\n");
	snprintf(text, sizeof(text), "guard:\n  popular: %s\n  protected:\n"
		 "    - {domain: apple.com, owns: [apple.news], owns-file: %s}\n", pop, owns);
	assert_int_equal(load(text, &c, err, sizeof(err), path), 0);
	assert_string_equal(c->guard.popular, pop);
	assert_int_equal(c->guard.protected[0].n_owns, 4);
	assert_string_equal(c->guard.protected[0].owns[0], "apple.news");
	assert_string_equal(c->guard.protected[0].owns[2], "apple.cn");
	struct bw_lookalike *x = NULL;
	struct bw_guard_hit hit;
	assert_int_equal(bw_guard_lookalike_build(c, &x), 0);
	assert_int_equal(bw_lookalike_popular(x), 1);
	assert_false(bw_lookalike_check(x, "apple.cn", &hit));
	assert_int_equal(hit.exempt, BW_GX_NONE); /* owned, not exempt */
	assert_false(bw_lookalike_check(x, "www.cdn-apple.com", &hit));
	assert_false(bw_lookalike_check(x, "apple.co", &hit));
	assert_int_equal(hit.exempt, BW_GX_POPULAR);
	assert_true(bw_lookalike_check(x, "apple.de", &hit));
	bw_lookalike_free(x);
	bw_conf_free(c);

	/* the default is the shipped list; none turns it off */
	assert_int_equal(load("guard:\n  protected: [apple.com]\n", &c, err, sizeof(err), path), 0);
	assert_true(c->guard.popular_default);
	assert_non_null(strstr(c->guard.popular, "/guard/popular-domains.txt"));
	bw_conf_free(c);
	assert_int_equal(load("guard:\n  popular: none\n  protected: [apple.com]\n", &c, err,
			      sizeof(err), path), 0);
	assert_null(c->guard.popular);
	bw_conf_free(c);

	/* a bad name in the owns-file: its file and line */
	write_file(owns, "apple-dns.net\nco.uk\n");
	snprintf(text, sizeof(text), "guard:\n  protected:\n    - {domain: apple.com, owns-file: %s}\n",
		 owns);
	c = NULL;
	assert_int_not_equal(load(text, &c, err, sizeof(err), path), 0);
	char want[128];
	snprintf(want, sizeof(want), "owns-file %s:2: 'co.uk' is a public suffix", owns);
	if (!strstr(err, want))
		printf("  got '%s', want '...%s...'\n", err, want);
	assert_non_null(strstr(err, want));
	unlink(owns);
	unlink(pop);
	assert_int_not_equal(load(text, &c, err, sizeof(err), path), 0);
	assert_non_null(strstr(err, "owns-file"));
	snprintf(text, sizeof(text), "guard:\n  popular: %s\n", pop);
	assert_int_not_equal(load(text, &c, err, sizeof(err), path), 0);
	assert_non_null(strstr(err, "cannot read"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registrable),
	    cmocka_unit_test(test_build_errors),
	    cmocka_unit_test(test_exact_and_subdomains),
	    cmocka_unit_test(test_typos),
	    cmocka_unit_test(test_ascii_homoglyphs),
	    cmocka_unit_test(test_idn),
	    cmocka_unit_test(test_tld_and_labels),
	    cmocka_unit_test(test_combosquats),
	    cmocka_unit_test(test_actions),
	    cmocka_unit_test(test_popular_and_hosting),
	    cmocka_unit_test(test_nseen_basic),
	    cmocka_unit_test(test_nseen_bounded_and_fp),
	    cmocka_unit_test(test_nseen_persist),
	    cmocka_unit_test(test_conf),
	    cmocka_unit_test(test_conf_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
