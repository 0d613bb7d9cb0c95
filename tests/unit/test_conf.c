/*
 * tests/unit/test_conf.c - unit tests for conf/: loading, defaults, every error class with
 * its line:column, forward addresses, relative paths, feed formats and actions, profiles
 * and access control.
 *
 * Run from the repository root (fixtures are under tests/unit/conf/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h" /* bw_access_check: the per-query ACL lookup lives in core */

#define FIX "tests/unit/conf/"

static char tmp_path[64];
static int mismatches; /* expect_*() report every mismatch, then the test fails once */

/* Writes text to a fresh temporary file and loads it. */
static int load_text(const char *text, struct bw_conf **out, char *err, size_t errlen)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/bw-test-conf-XXXXXX.yaml");
	int fd = mkstemps(tmp_path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	int rc = bw_conf_load(tmp_path, out, err, errlen);
	unlink(tmp_path);
	return rc;
}

/* Loads text, expects failure, and checks the message after the file name. */
static void expect_error(const char *text, const char *want)
{
	struct bw_conf *conf = (struct bw_conf *)1;
	char err[1024];
	int rc = load_text(text, &conf, err, sizeof(err));
	if (rc == 0 || conf != NULL || strncmp(err, tmp_path, strlen(tmp_path)) ||
	    strcmp(err + strlen(tmp_path), want)) {
		print_error("yaml:\n%s\nwant: %s\ngot (rc %d): %s\n", text, want, rc, err);
		mismatches++;
	}
}

static void expect_file_error(const char *file, const char *want)
{
	struct bw_conf *conf = (struct bw_conf *)1;
	char err[1024];
	int rc = bw_conf_load(file, &conf, err, sizeof(err));
	if (rc == 0 || conf != NULL || strcmp(err, want)) {
		print_error("file %s\nwant: %s\ngot (rc %d): %s\n", file, want, rc, err);
		mismatches++;
	}
}

static struct bw_conf *load_ok_text(const char *text)
{
	struct bw_conf *conf = NULL;
	char err[1024];
	int rc = load_text(text, &conf, err, sizeof(err));
	if (rc) {
		print_error("unexpected error %d: %s\n", rc, err);
		fail();
	}
	assert_non_null(conf);
	return conf;
}

static struct bw_conf *load_ok_file(const char *path)
{
	struct bw_conf *conf = NULL;
	char err[1024];
	int rc = bw_conf_load(path, &conf, err, sizeof(err));
	if (rc) {
		print_error("unexpected error %d: %s\n", rc, err);
		fail();
	}
	assert_non_null(conf);
	return conf;
}

static void check_defaults(const struct bw_conf *c)
{
	assert_int_equal(c->server.n_listen, 1);
	assert_string_equal(c->server.listen[0].address, "127.0.0.1");
	assert_int_equal(c->server.listen[0].port, 5353);
	assert_int_equal(c->server.listen[0].transport, BW_TRANSPORT_DNS);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->server.listen[0].addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 5353);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(c->server.listen[0].addrlen, sizeof(struct sockaddr_in));
	assert_int_equal(c->server.listen[0].profile, -1);
	assert_int_equal(c->server.workers, 0);
	assert_int_equal(c->server.tcp_max_conns, 1024);
	assert_int_equal(c->server.tcp_max_conns_per_client, 0); /* tcp_max_conns / 16 */
	assert_int_equal(c->server.tcp_client_v4_prefix, 32);
	assert_int_equal(c->server.tcp_client_v6_prefix, 64);
	assert_int_equal(c->server.tcp_idle_ms, 10000);
	assert_int_equal(c->server.tcp_max_inflight, 64);
	assert_int_equal(c->server.max_inflight, 4096);
	assert_int_equal(c->server.n_acl, 8);
	assert_int_equal(c->resolver.mode, BW_RESOLVER_RECURSIVE);
	assert_true(c->resolver.dnssec);
	assert_int_equal(c->resolver.n_forward, 0);
	assert_null(c->resolver.forward);
	assert_null(c->resolver.root_hints);
	assert_null(c->resolver.trust_anchor);
	assert_null(c->resolver.tls_ca_file);
	assert_true(c->resolver.qname_minimisation);
	assert_true(c->resolver.aggressive_nsec);
	assert_true(c->resolver.prefetch);
	assert_int_equal(c->resolver.ipv6, BW_IPV6_AUTO);
	assert_int_equal(c->resolver.timeout_ms, 5000);
	assert_int_equal(c->resolver.n_unbound_options, 0);
	assert_int_equal(c->cache.size, 256ULL << 20);
	assert_int_equal(c->cache.shards, 0);
	assert_int_equal(c->cache.min_ttl, 0);
	assert_int_equal(c->cache.max_ttl, 86400);
	assert_int_equal(c->cache.max_neg_ttl, 3600);
	assert_int_equal(c->cache.stale_ttl, 86400);
	assert_int_equal(c->policy.n_feeds, 0);
	assert_int_equal(c->policy.n_allowlist, 0);
	assert_int_equal(c->policy.watch_ms, 2000);
	assert_int_equal(c->policy.compact_after, 65536);
	assert_string_equal(c->server.state_dir, BW_CONF_DEFAULT_STATE_DIR);
	assert_int_equal(c->telemetry.privacy, BW_PRIVACY_BLOCKED_ONLY);
	/* One profile named "default" that blocks with every feed. */
	assert_int_equal(c->policy.n_profiles, 1);
	assert_string_equal(c->policy.profiles[0].name, "default");
	assert_true(c->policy.profiles[0].all_feeds);
	assert_int_equal(c->policy.profiles[0].n_feeds, 0);
	assert_int_equal(c->policy.profiles[0].n_categories, 0);
	assert_int_equal(c->policy.profiles[0].n_allowlist, 0);
	assert_int_equal(c->policy.profiles[0].n_clients, 0);
	assert_int_equal(c->policy.default_profile, 0);
	assert_int_equal(c->log.level, BW_LOG_INFO);
	assert_false(c->log.syslog);
}

/* ---- loading ---- */

static void test_shipped_config(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok_file(BW_CONF_DEFAULT_PATH);
	assert_string_equal(c->path, BW_CONF_DEFAULT_PATH);
	assert_true(c->server.n_listen >= 1);
	assert_string_equal(c->server.listen[0].address, "127.0.0.1");
	assert_int_equal(c->server.listen[0].port, 5353);
	assert_int_equal(c->resolver.mode, BW_RESOLVER_RECURSIVE);
	assert_true(c->resolver.dnssec);
	assert_int_equal(c->cache.size, 256ULL << 20);
	/* Free public threat feeds, fetched over HTTPS into the state directory. */
	static const struct {
		const char *name, *category;
		enum bw_feed_format format;
	} feeds[] = {
	    {"urlhaus", "malware", BW_FEED_HOSTS},	{"threatfox", "c2", BW_FEED_HOSTS},
	    {"hagezi-tif", "malware", BW_FEED_WILDCARD}, {"phishing-database", "phishing", BW_FEED_DOMAINS},
	    {"scamblocklist", "scam", BW_FEED_HOSTS},	{"stalkerware", "stalkerware", BW_FEED_DOMAINS},
	    {"amnesty-pegasus", "spyware", BW_FEED_STIX},
	};
	assert_int_equal(c->policy.n_feeds, BW_ARRAY_LEN(feeds) + 2);
	for (size_t i = 0; i < BW_ARRAY_LEN(feeds); i++) {
		const struct bw_feed_conf *f = &c->policy.feeds[i];
		assert_string_equal(f->name, feeds[i].name);
		assert_string_equal(f->category, feeds[i].category);
		assert_int_equal(f->format, feeds[i].format);
		assert_int_equal(f->source, BW_FEED_SRC_URL);
		assert_true(!strncmp(f->url, "https://", 8));
		assert_non_null(strstr(f->file, "state/feeds/"));
		assert_int_equal(c->policy.feeds[i].action, BW_FEED_ACT_GIVEN);
		assert_null(c->policy.feeds[i].redirect_name);
	}
	/* ... and two small local examples, watched files */
	const struct bw_feed_conf *lf = &c->policy.feeds[BW_ARRAY_LEN(feeds)];
	assert_string_equal(lf[0].file, "etc/feeds/malware.domains");
	assert_int_equal(lf[0].format, BW_FEED_DOMAINS);
	assert_string_equal(lf[0].category, "malware");
	assert_string_equal(lf[1].file, "etc/feeds/phishing.hosts");
	assert_int_equal(lf[1].format, BW_FEED_HOSTS);
	assert_string_equal(lf[1].category, "phishing");
	assert_int_equal(lf[0].source, BW_FEED_SRC_FILE);
	assert_int_equal(lf[1].source, BW_FEED_SRC_FILE);
	/* The shipped ACL is the default one, written out. */
	assert_int_equal(c->server.n_acl, 8);
	for (size_t i = 0; i < c->server.n_listen; i++)
		assert_int_equal(c->server.listen[i].profile, -1);

	/* The three tiers; protected is the default. */
	assert_int_equal(c->policy.n_profiles, 3);
	const struct bw_profile_conf *p = c->policy.profiles;
	assert_string_equal(p[0].name, "private");
	assert_false(p[0].all_feeds);
	assert_int_equal(p[0].n_feeds, 0);
	assert_int_equal(p[0].n_categories, 0);
	assert_string_equal(p[1].name, "protected");
	assert_false(p[1].all_feeds);
	assert_int_equal(p[1].n_feeds, 0);
	const char *threats[] = {"malware", "phishing", "c2", "scam", "stalkerware", "spyware",
				 "adult"};
	assert_int_equal(p[1].n_categories, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(p[1].categories[i], threats[i]);
	assert_string_equal(p[2].name, "family");
	assert_false(p[2].all_feeds);
	assert_int_equal(p[2].n_categories, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(p[2].categories[i], threats[i]);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(p[i].n_allowlist, 0);
		assert_int_equal(p[i].n_clients, 0);
	}
	assert_int_equal(c->policy.default_profile, 1);
	bw_conf_free(c);
}

static void test_defaults(void **state)
{
	(void)state;
	const char *files[] = {FIX "empty.yaml", FIX "comments.yaml"};
	for (size_t i = 0; i < BW_ARRAY_LEN(files); i++) {
		struct bw_conf *c = load_ok_file(files[i]);
		check_defaults(c);
		bw_conf_free(c);
	}
	/* Empty sections, empty values and a bare document marker mean defaults too. */
	const char *texts[] = {
	    "",
	    "---\n",
	    "server:\nresolver:\ncache:\npolicy:\nlog:\n",
	    "server:\n  listen:\n  workers: ~\n  access-control: null\npolicy: { feeds: }\n",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(texts); i++) {
		struct bw_conf *c = load_ok_text(texts[i]);
		check_defaults(c);
		bw_conf_free(c);
	}
}

static void test_full(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok_file(FIX "full.yaml");

	assert_int_equal(c->server.n_listen, 3);
	assert_string_equal(c->server.listen[1].address, "::1");
	assert_int_equal(c->server.listen[1].port, 5301);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->server.listen[1].addr;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 5301);
	assert_int_equal(c->server.listen[1].addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(c->server.listen[0].profile, -1);
	assert_int_equal(c->server.listen[1].profile, 1); /* kids, defined under policy */
	assert_int_equal(c->server.listen[2].profile, -1);
	assert_string_equal(c->server.listen[2].address, "0.0.0.0");
	assert_int_equal(c->server.listen[2].port, 53);
	assert_int_equal(c->server.workers, 3);
	assert_int_equal(c->server.tcp_max_conns, 100);
	assert_int_equal(c->server.tcp_max_conns_per_client, 10);
	assert_int_equal(c->server.tcp_client_v4_prefix, 24);
	assert_int_equal(c->server.tcp_client_v6_prefix, 56);
	assert_int_equal(c->server.tcp_idle_ms, 1500);
	assert_int_equal(c->server.tcp_max_inflight, 8);
	assert_int_equal(c->server.max_inflight, 1000);
	assert_int_equal(c->server.n_acl, 4);
	assert_int_equal(c->server.acl[0].action, BW_ACL_DROP);
	assert_int_equal(c->server.acl[0].net.prefix, 32);
	assert_int_equal(c->server.acl[1].action, BW_ACL_REFUSE);
	assert_int_equal(c->server.acl[3].net.family, AF_INET6);
	assert_int_equal(c->server.acl[3].net.prefix, 32);

	assert_int_equal(c->resolver.mode, BW_RESOLVER_FORWARD);
	assert_false(c->resolver.dnssec);
	assert_int_equal(c->resolver.n_forward, 5);
	assert_string_equal(c->resolver.forward[0].addr, "192.0.2.53@53");
	assert_false(c->resolver.forward[0].tls);
	assert_null(c->resolver.forward[0].tls_name);
	assert_string_equal(c->resolver.forward[1].addr, "192.0.2.54@5353");
	assert_string_equal(c->resolver.forward[2].addr, "2001:db8::1@53");
	assert_false(c->resolver.forward[2].tls);
	assert_string_equal(c->resolver.forward[3].addr, "9.9.9.9@853");
	assert_true(c->resolver.forward[3].tls);
	assert_string_equal(c->resolver.forward[3].tls_name, "dns.quad9.net");
	assert_string_equal(c->resolver.forward[4].addr, "2001:db8::2@8853");
	assert_true(c->resolver.forward[4].tls);
	assert_null(c->resolver.forward[4].tls_name);
	assert_string_equal(c->resolver.trust_anchor, FIX "feeds/a.domains");
	assert_string_equal(c->resolver.root_hints, FIX "feeds/b.hosts");
	assert_null(c->resolver.tls_ca_file);
	assert_false(c->resolver.qname_minimisation);
	assert_false(c->resolver.aggressive_nsec);
	assert_false(c->resolver.prefetch);
	assert_int_equal(c->resolver.ipv6, BW_IPV6_NO);
	assert_int_equal(c->resolver.timeout_ms, 120000);
	assert_int_equal(c->resolver.n_unbound_options, 2);
	assert_string_equal(c->resolver.unbound_options[0], "outgoing-range: 4096");
	assert_string_equal(c->resolver.unbound_options[1], "so-rcvbuf: 4m");

	assert_int_equal(c->cache.size, 64ULL << 20);
	assert_int_equal(c->cache.shards, 16);
	assert_int_equal(c->cache.min_ttl, 30);
	assert_int_equal(c->cache.max_ttl, 7200);
	assert_int_equal(c->cache.max_neg_ttl, 300);
	assert_int_equal(c->cache.stale_ttl, 0);

	assert_int_equal(c->policy.n_feeds, 2);
	assert_string_equal(c->policy.feeds[0].name, "bad-stuff");
	assert_string_equal(c->policy.feeds[0].category, "malware");
	assert_int_equal(c->policy.feeds[0].format, BW_FEED_DOMAINS);
	assert_string_equal(c->policy.feeds[0].file, FIX "feeds/a.domains");
	assert_int_equal(c->policy.feeds[0].action, BW_FEED_ACT_LOG_ONLY);
	assert_false(c->policy.feeds[0].redirect_has_v4);
	assert_false(c->policy.feeds[0].redirect_has_v6);
	assert_null(c->policy.feeds[0].redirect_name);
	assert_string_equal(c->policy.feeds[1].name, "phish_1.x");
	assert_int_equal(c->policy.feeds[1].format, BW_FEED_HOSTS);
	assert_string_equal(c->policy.feeds[1].file, FIX "feeds/b.hosts");
	assert_int_equal(c->policy.feeds[1].action, BW_FEED_ACT_REDIRECT);
	assert_true(c->policy.feeds[1].redirect_has_v4);
	assert_memory_equal(c->policy.feeds[1].redirect_v4, ((uint8_t[]){192, 0, 2, 80}), 4);
	assert_true(c->policy.feeds[1].redirect_has_v6);
	assert_memory_equal(
	    c->policy.feeds[1].redirect_v6,
	    ((uint8_t[]){0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}), 16);
	assert_null(c->policy.feeds[1].redirect_name);
	assert_int_equal(c->policy.n_allowlist, 3);
	assert_string_equal(c->policy.allowlist[0], "example.org");
	assert_string_equal(c->policy.allowlist[1], "partner.example");
	assert_string_equal(c->policy.allowlist[2], "_dmarc.example.net");
	assert_int_equal(c->policy.watch_ms, 0);
	assert_int_equal(c->policy.compact_after, 1000);
	assert_non_null(strstr(c->server.state_dir, "/conf/state"));
	assert_int_equal(c->telemetry.privacy, BW_PRIVACY_ANONYMIZED);

	assert_int_equal(c->policy.n_profiles, 2);
	const struct bw_profile_conf *p = c->policy.profiles;
	assert_string_equal(p[0].name, "staff");
	assert_false(p[0].all_feeds);
	assert_int_equal(p[0].n_feeds, 1);
	assert_string_equal(p[0].feeds[0], "phish_1.x");
	assert_int_equal(p[0].n_categories, 0);
	assert_int_equal(p[0].n_allowlist, 0);
	assert_int_equal(p[0].n_clients, 2);
	assert_int_equal(p[0].clients[0].family, AF_INET);
	assert_int_equal(p[0].clients[0].prefix, 25);
	assert_int_equal(p[0].clients[1].family, AF_INET6);
	assert_int_equal(p[0].clients[1].prefix, 48);
	assert_string_equal(p[1].name, "kids");
	assert_false(p[1].all_feeds);
	assert_int_equal(p[1].n_feeds, 1);
	assert_string_equal(p[1].feeds[0], "bad-stuff");
	assert_int_equal(p[1].n_categories, 2);
	assert_string_equal(p[1].categories[0], "phishing");
	assert_string_equal(p[1].categories[1], "adult");
	assert_int_equal(p[1].n_allowlist, 1);
	assert_string_equal(p[1].allowlist[0], "school.example");
	assert_int_equal(p[1].n_clients, 1);
	assert_int_equal(p[1].clients[0].addr[3], 128);
	assert_int_equal(c->policy.default_profile, 1);

	assert_int_equal(c->log.level, BW_LOG_DEBUG);
	assert_true(c->log.syslog);
	bw_conf_free(c);
}

static void test_relative_paths(void **state)
{
	(void)state;
	char cwd[PATH_MAX], abs[PATH_MAX + 64], text[PATH_MAX + 200];

	/* Relative to the config's directory (checked in test_full); a config named without
	 * a directory keeps the names as written, relative to the working directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(FIX), 0);
	struct bw_conf *c = load_ok_file("full.yaml");
	assert_string_equal(c->policy.feeds[0].file, "feeds/a.domains");
	bw_conf_free(c);
	assert_int_equal(chdir(cwd), 0);

	/* Through "./" and "../" the directory part is kept as written. */
	c = load_ok_file("./" FIX "../conf/full.yaml");
	assert_string_equal(c->policy.feeds[1].file, "./" FIX "../conf/feeds/b.hosts");
	bw_conf_free(c);

	/* Absolute names stay as they are. */
	snprintf(abs, sizeof(abs), "%s/" FIX "feeds/a.domains", cwd);
	snprintf(text, sizeof(text),
		 "policy:\n  feeds:\n    - { name: a, category: c, file: \"%s\" }\n", abs);
	c = load_ok_text(text);
	assert_string_equal(c->policy.feeds[0].file, abs);
	bw_conf_free(c);
}

static void test_forward(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok_text("resolver:\n  mode: forward\n  forward:\n"
					 "    - 192.0.2.1\n"
					 "    - 192.0.2.2@5300\n"
					 "    - 2001:db8::53\n"
					 "    - \"2001:db8::54@54\"\n"
					 "    - tls://192.0.2.3\n"
					 "    - TLS://192.0.2.4@8853#Resolver.Example.\n"
					 "    - \"tls://2001:db8::5#dns.example\"\n");
	assert_int_equal(c->resolver.n_forward, 7);
	const char *addr[] = {"192.0.2.1@53",	 "192.0.2.2@5300", "2001:db8::53@53",
			      "2001:db8::54@54", "192.0.2.3@853",  "192.0.2.4@8853",
			      "2001:db8::5@853"};
	const bool tls[] = {false, false, false, false, true, true, true};
	for (size_t i = 0; i < BW_ARRAY_LEN(addr); i++) {
		assert_string_equal(c->resolver.forward[i].addr, addr[i]);
		assert_int_equal(c->resolver.forward[i].tls, tls[i]);
	}
	assert_null(c->resolver.forward[4].tls_name);
	assert_string_equal(c->resolver.forward[5].tls_name, "Resolver.Example.");
	assert_string_equal(c->resolver.forward[6].tls_name, "dns.example");
	bw_conf_free(c);

	/* resolver.ipv6: auto, or yes/no in any spelling a boolean has */
	const struct {
		const char *text;
		enum bw_resolver_ipv6 want;
	} ip6[] = {{"auto", BW_IPV6_AUTO}, {"yes", BW_IPV6_YES}, {"true", BW_IPV6_YES},
		   {"on", BW_IPV6_YES},     {"no", BW_IPV6_NO},   {"false", BW_IPV6_NO},
		   {"off", BW_IPV6_NO}};
	for (size_t i = 0; i < BW_ARRAY_LEN(ip6); i++) {
		char text[64];
		snprintf(text, sizeof(text), "resolver:\n  ipv6: %s\n", ip6[i].text);
		c = load_ok_text(text);
		assert_int_equal(c->resolver.ipv6, ip6[i].want);
		bw_conf_free(c);
	}

	const char *pre = "resolver:\n  mode: forward\n  forward:\n    - ";
	struct {
		const char *item, *want;
	} bad[] = {
	    {"192.0.2.1@0", ":4:7: forward address '192.0.2.1@0': port must be a number "
			    "between 1 and 65535"},
	    {"192.0.2.1@65536", ":4:7: forward address '192.0.2.1@65536': port must be a "
				"number between 1 and 65535"},
	    {"192.0.2.1@", ":4:7: forward address '192.0.2.1@': port must be a number "
			   "between 1 and 65535"},
	    {"dns.example@53", ":4:7: forward address 'dns.example@53': 'dns.example' is "
			       "not an IPv4 or IPv6 address (write addr@port, e.g. "
			       "192.0.2.53@53 or tls://9.9.9.9@853#dns.quad9.net)"},
	    {"\"192.0.2.1#name\"", ":4:7: forward address '192.0.2.1#name': '#name' is only "
				   "used with tls://"},
	    {"https://192.0.2.1", ":4:7: forward address 'https://192.0.2.1': only tls:// "
				  "may prefix an address"},
	    {"\"tls://192.0.2.1#bad..name\"",
	     ":4:7: forward address "
	     "'tls://192.0.2.1#bad..name': TLS name 'bad..name' has an empty label"},
	    {"{ a: b }", ":4:7: expected a scalar for 'forward', found a mapping"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		char text[256];
		snprintf(text, sizeof(text), "%s%s\n", pre, bad[i].item);
		expect_error(text, bad[i].want);
	}
}

/* ---- errors, each with its position ---- */

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_file_error(FIX "bad-syntax.yaml",
			  FIX "bad-syntax.yaml:3:20: mapping values are not allowed in this "
			      "context");
	expect_error("server:\n\tworkers: 2\n",
		     ":2:1: found character that cannot start any token (while scanning for the "
		     "next token that starts at line 2)");
	expect_error("server: { workers: 2\nlog: {}\n",
		     ":2:4: did not find expected ',' or '}' (while parsing a flow mapping that "
		     "starts at line 1)");
	expect_error("log:\n  level: \"info\n",
		     ":3:1: found unexpected end of stream (while scanning a quoted scalar that "
		     "starts at line 2)");
	expect_error("log: *nothing\n", ":1:6: found undefined alias");
	expect_file_error(FIX "bad-two-docs.yaml",
			  FIX "bad-two-docs.yaml:2:1: the file holds more than one YAML "
			      "document (remove '---')");
	expect_error("log:\n  level: \"\xff\"\n", ": invalid leading UTF-8 octet at byte 15");
	expect_file_error("tests/unit/conf", "tests/unit/conf: cannot open: Is a directory");
	expect_file_error(FIX "no-such-file.yaml",
			  FIX "no-such-file.yaml: cannot open: No such file or directory");
}

static void test_key_errors(void **state)
{
	(void)state;
	expect_error("bogus: 1\n", ":1:1: unknown key 'bogus' in the top level (known: server, "
				   "resolver, cache, policy, log, telemetry, metrics, dnstap, guard, "
				   "local-records, local-records-file, local-ttl, clients, clients-file, "
				   "block-page, admin)");
	/* admin: only loopback without TLS; both TLS files or neither */
	expect_error("admin:\n  listen: \"192.0.2.1@8080\"\n",
		     ":2:11: admin.listen: 192.0.2.1 is not a loopback address, and the API carries "
		     "access tokens and session cookies: set tls-cert and tls-key to listen there "
		     "over HTTPS, or listen on 127.0.0.1 or ::1");
	expect_error("admin: { listen: \"127.0.0.1@0\" }\n",
		     ":1:18: admin.listen: '127.0.0.1@0' must be address@port with a port between 1 "
		     "and 65535 (e.g. 127.0.0.1@8080)");
	expect_error("admin: { session-minutes: 0 }\n",
		     ":1:27: 'session-minutes' must be between 1 and 10080, found 0");
	expect_error("server:\n  workers: 2\n  foo: 1\n",
		     ":3:3: unknown key 'foo' in server (known: listen, workers, "
		     "tcp-max-connections, tcp-max-connections-per-client, tcp-client-ipv4-prefix, "
		     "tcp-client-ipv6-prefix, tcp-idle-timeout, tcp-max-inflight, max-inflight, "
		     "max-inflight-per-client, access-control, state-dir, control-socket, tls-handshake-timeout, "
		     "doh-max-streams, user, group, rate-limit, rrl)");
	expect_error("server:\n  listen:\n    - { address: 127.0.0.1, prot: 53 }\n",
		     ":3:29: unknown key 'prot' in server.listen item (known: address, port, "
		     "transport, profile, rate-limit, tls-cert, tls-key, tls-name, sni, doh-paths, client-id)");
	expect_error("cache:\n  Size: 1G\n", ":2:3: unknown key 'Size' in cache (known: size, "
					     "shards, min-ttl, max-ttl, max-negative-ttl, "
					     "serve-stale)");
	expect_error("log:\n  level: info\n  syslog: no\n  level: debug\n",
		     ":4:3: duplicate key 'level' in log (first given at line 2)");
	expect_error("log: info\nlog: {}\n",
		     ":2:1: duplicate key 'log' in the top level (first given at line 1)");
	expect_error("? [a, b]\n: 1\n", ":1:3: expected a scalar key in the top level, found a "
					"sequence");
}

static void test_type_errors(void **state)
{
	(void)state;
	expect_error("- server\n", ":1:1: expected a mapping (server:, resolver:, ...) at the "
				   "top level, found a sequence");
	expect_error("server: [1]\n", ":1:9: expected a mapping for 'server', found a sequence");
	expect_error("log: debug\n", ":1:6: expected a mapping for 'log', found a scalar");
	expect_error("server:\n  listen: 127.0.0.1\n",
		     ":2:11: expected a sequence for 'listen', found a scalar");
	expect_error("server:\n  listen:\n    - 127.0.0.1\n",
		     ":3:7: expected a mapping for each item of 'listen', found a scalar");
	expect_error("resolver:\n  dnssec: [true]\n",
		     ":2:11: expected a scalar for 'dnssec', found a sequence");
	expect_error("policy:\n  allowlist: example.org\n",
		     ":2:14: expected a sequence for 'allowlist', found a scalar");
	expect_error("log:\n  level: \"in\\0fo\"\n", ":2:10: 'level' contains a NUL character");
}

static void test_value_errors(void **state)
{
	(void)state;
	struct {
		const char *text, *want;
	} cases[] = {
	    {"server:\n  workers: 0\n", ":2:12: 'workers' must be between 1 and 256, found 0"},
	    {"server:\n  workers: 257\n", ":2:12: 'workers' must be between 1 and 256, found 257"},
	    {"server:\n  workers: -1\n",
	     ":2:12: expected 'auto' or a number for 'workers', found '-1'"},
	    {"server:\n  workers: 4x\n",
	     ":2:12: expected 'auto' or a number for 'workers', found '4x'"},
	    {"server:\n  tcp-max-inflight: 99999999999999999999999\n",
	     ":2:21: expected a number for 'tcp-max-inflight', found "
	     "'99999999999999999999999'"},
	    {"server:\n  tcp-max-connections: 10\n  tcp-max-connections-per-client: 11\n",
	     ":3:35: tcp-max-connections-per-client (11) is more than tcp-max-connections (10)"},
	    {"server:\n  tcp-client-ipv6-prefix: 129\n",
	     ":2:27: 'tcp-client-ipv6-prefix' must be between 1 and 128, found 129"},
	    {"server:\n  tcp-max-connections: \" 5\"\n",
	     ":2:24: expected a number for 'tcp-max-connections', found ' 5'"},
	    {"server:\n  tcp-idle-timeout: 10x\n",
	     ":2:21: expected a duration for 'tcp-idle-timeout' (a number of seconds, or a "
	     "number with ms, s, m, h or d), found '10x'"},
	    {"server:\n  tcp-idle-timeout: 0\n",
	     ":2:21: 'tcp-idle-timeout' must be between 1ms and 86400000ms, found 0"},
	    {"resolver:\n  timeout: 2h\n",
	     ":2:12: 'timeout' must be between 1ms and 3600000ms, found 2h"},
	    {"cache:\n  min-ttl: 1500ms\n",
	     ":2:12: 'min-ttl' must be a whole number of seconds, found 1500ms"},
	    {"cache:\n  min-ttl: 2h\n  max-ttl: 1h\n",
	     ":2:3: cache 'min-ttl' (7200s) is larger than 'max-ttl' (3600s)"},
	    {"cache:\n  size: 512K\n", ":2:9: cache 'size' must be at least 1M, found 512K"},
	    {"cache:\n  size: lots\n", ":2:9: expected a size for 'size' (a number of bytes "
				       "with K, M or G, e.g. 256M), found 'lots'"},
	    {"cache:\n  shards: 3\n",
	     ":2:11: 'shards' must be a power of two (1, 2, 4 ... 1024), found 3"},
	    {"cache:\n  shards: 2048\n", ":2:11: 'shards' must be between 1 and 1024, found 2048"},
	    {"resolver:\n  dnssec: maybe\n",
	     ":2:11: expected a boolean for 'dnssec' (true/false, yes/no, on/off), found "
	     "'maybe'"},
	    {"resolver:\n  ipv6: maybe\n",
	     ":2:9: invalid ipv6 'maybe' (expected one of: auto, yes, no, true, false, on, off)"},
	    {"resolver:\n  mode: iterative\n",
	     ":2:9: invalid mode 'iterative' (expected one of: recursive, forward)"},
	    {"log:\n  level: warn\n",
	     ":2:10: invalid level 'warn' (expected one of: error, warning, info, debug)"},
	    {"resolver:\n  unbound-options: [ \"outgoing-range 4096\" ]\n",
	     ":2:22: unbound option 'outgoing-range 4096' is not of the form 'name: value'"},
	    {"policy:\n  allowlist: [ good.example, \"bad..example\" ]\n",
	     ":2:30: allowlist name 'bad..example' has an empty label"},
	    {"policy:\n  allowlist: [ \"*.example\" ]\n",
	     ":2:16: allowlist name '*.example' has a character that is not a letter, digit, "
	     "'-' or '_' (write international names in their xn-- form)"},
	    {"policy:\n  allowlist: [ \".\" ]\n", ":2:16: allowlist name '.' is empty"},
	    {"policy:\n  allowlist: [ "
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example ]\n",
	     ":2:16: allowlist name "
	     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example' has a "
	     "label longer than 63 characters"},
	    {"policy:\n  compact-after: 0\n",
	     ":2:18: 'compact-after' must be between 1 and 1073741824, found 0"},
	    {"policy:\n  watch-interval: soon\n",
	     ":2:19: expected a duration for 'watch-interval' (a number of seconds, or a number "
	     "with ms, s, m, h or d), found 'soon'"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++)
		expect_error(cases[i].text, cases[i].want);
}

static void test_listen_errors(void **state)
{
	(void)state;
	struct {
		const char *text, *want;
	} cases[] = {
	    {"server:\n  listen:\n    - { address: 127.0.0.1, port: 70000 }\n",
	     ":3:35: 'port' must be between 1 and 65535, found 70000"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, port: 0 }\n",
	     ":3:35: 'port' must be between 1 and 65535, found 0"},
	    {"server:\n  listen:\n    - { address: 300.1.1.1 }\n",
	     ":3:18: invalid listen address '300.1.1.1' (expected an IPv4 or IPv6 address)"},
	    {"server:\n  listen:\n    - { address: \"\" }\n", ":3:18: 'address' must not be empty"},
	    {"server:\n  listen:\n    - { port: 53 }\n",
	     ":3:7: missing required key 'address' in server.listen item"},
	    {"server:\n  listen:\n    - port: 53\n      address:\n",
	     ":4:7: 'address' needs a value"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, transport: quic }\n",
	     ":3:40: transport 'quic' is not supported (supported: dns, dot, doh)"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, transport: dot }\n",
	     ":3:7: missing required key 'tls-cert' in server.listen item (dot)"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, sni: { a.example: x } }\n",
	     ":3:34: 'sni' is only for encrypted listeners (transport: dot or doh)"},
	    {"server:\n  listen: []\n", ":2:11: 'listen' must name at least one address"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, port: 53 }\n"
	     "    - { address: 127.0.0.1, port: 53 }\n",
	     ":4:7: address 127.0.0.1 port 53 is listed twice in 'listen'"},
	    {"server:\n  access-control:\n    - { network: 10.0.0.0/33, action: allow }\n",
	     ":3:18: invalid network '10.0.0.0/33' (expected an address or "
	     "address/prefix-length, e.g. 192.168.0.0/16 or fc00::/7)"},
	    {"server:\n  access-control:\n    - { network: \"fc00::/129\", action: allow }\n",
	     ":3:18: invalid network 'fc00::/129' (expected an address or "
	     "address/prefix-length, e.g. 192.168.0.0/16 or fc00::/7)"},
	    {"server:\n  access-control:\n    - { network: 10.0.0.0/x, action: allow }\n",
	     ":3:18: invalid network '10.0.0.0/x' (expected an address or "
	     "address/prefix-length, e.g. 192.168.0.0/16 or fc00::/7)"},
	    {"server:\n  access-control:\n    - { network: 10.0.0.0/8, action: permit }\n",
	     ":3:38: invalid action 'permit' (expected one of: allow, refuse, drop)"},
	    {"server:\n  access-control:\n    - { network: 10.0.0.0/8 }\n",
	     ":3:7: missing required key 'action' in server.access-control item"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++)
		expect_error(cases[i].text, cases[i].want);
}

static void test_resolver_errors(void **state)
{
	(void)state;
	expect_error("resolver:\n  mode: forward\n",
		     ":2:3: mode is forward but 'forward' lists no upstream (e.g. forward: [ "
		     "192.0.2.53@53 ])");
	expect_error("resolver:\n  mode: forward\n  forward: []\n",
		     ":3:12: mode is forward but 'forward' lists no upstream (e.g. forward: [ "
		     "192.0.2.53@53 ])");
	expect_error("resolver:\n  forward: [ 192.0.2.1 ]\n",
		     ":2:12: 'forward' is only used with 'mode: forward' (mode is recursive)");
	char want[256];
	snprintf(want, sizeof(want),
		 ":2:17: trust-anchor: cannot read '/tmp/nope.key': No "
		 "such file or directory");
	expect_error("resolver:\n  trust-anchor: nope.key\n", want);
	expect_error("resolver:\n  root-hints: /\n",
		     ":2:15: root-hints: cannot read '/': Is a directory");
}

static void test_feed_errors(void **state)
{
	(void)state;
	expect_file_error(FIX "bad-feed-missing.yaml",
			  FIX "bad-feed-missing.yaml:4:46: feed 'gone': cannot read '" FIX
			      "feeds/does-not-exist.txt': No such file or directory");
	expect_file_error(FIX "bad-feed-dup.yaml",
			  FIX "bad-feed-dup.yaml:4:7: duplicate feed name 'one'");
	expect_file_error(FIX "bad-feed-format.yaml",
			  FIX "bad-feed-format.yaml:5:15: feed 'csvfeed': format 'csv' is not "
			      "supported (supported: domains, hosts, wildcard, adblock, rpz, stix, "
			      "misp)");
	expect_file_error(FIX "bad-feed-noname.yaml",
			  FIX "bad-feed-noname.yaml:3:7: missing required key 'name' in "
			      "policy.feeds item");
	expect_error("policy:\n  feeds:\n    - { name: a, file: x }\n",
		     ":3:7: missing required key 'category' in policy.feeds item");
	expect_error("policy:\n  feeds:\n    - { name: a, category: c }\n",
		     ":3:7: feed 'a': give exactly one of 'file', 'url', 'taxii' or 'primaries'");
	expect_error("policy:\n  feeds:\n    - { name: \"a b\", category: c, file: x }\n",
		     ":3:15: feed name 'a b' must be 1 to 64 characters from A-Z a-z 0-9 _ . -");
	expect_error("policy:\n  feeds:\n    - { name: a, category: \"c/d\", file: x }\n",
		     ":3:28: feed 'a': category 'c/d' must be 1 to 64 characters from A-Z a-z "
		     "0-9 _ . -");
	expect_error("policy:\n  feeds:\n    - { name: a, category: c, fil: x }\n",
		     ":3:31: unknown key 'fil' in policy.feeds item (known: name, category, "
		     "format, file, action, redirect, url, taxii, refresh, timeout, max-size, "
		     "max-entries, min-ratio, expire, when-expired, ca-file, username, password, "
		     "token-file, primaries, zone, tsig, misp-include-non-ids, max-bad-ratio, "
		     "min-bad)");
	expect_error("policy:\n  feeds: { name: a }\n",
		     ":2:10: expected a sequence for 'feeds', found a mapping");
}

/* ---- feed formats and actions ---- */

/* One feed in block style: extra keys start at line 6, indented 6 (values at column 15 for
 * "action:", 17 for "redirect:"). */
#define FEED "policy:\n  feeds:\n    - name: a\n      category: c\n      file: /dev/null\n"

static void test_feed_formats(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum bw_feed_format format;
	} formats[] = {
	    {"domains", BW_FEED_DOMAINS}, {"hosts", BW_FEED_HOSTS}, {"wildcard", BW_FEED_WILDCARD},
	    {"adblock", BW_FEED_ADBLOCK}, {"rpz", BW_FEED_RPZ},	    {"stix", BW_FEED_STIX},
	    {"misp", BW_FEED_MISP},
	};
	char text[256];

	for (size_t i = 0; i < BW_ARRAY_LEN(formats); i++) {
		snprintf(text, sizeof(text), FEED "      format: %s\n", formats[i].name);
		struct bw_conf *c = load_ok_text(text);
		assert_int_equal(c->policy.feeds[0].format, formats[i].format);
		assert_int_equal(c->policy.feeds[0].action, BW_FEED_ACT_GIVEN);
		bw_conf_free(c);
	}
	expect_error(FEED "      format: RPZ\n",
		     ":6:15: feed 'a': format 'RPZ' is not supported (supported: domains, hosts, "
		     "wildcard, adblock, rpz, stix, misp)");
	expect_error(FEED "      format: [ rpz ]\n",
		     ":6:15: expected a scalar for 'format', found a sequence");

	/* misp-include-non-ids: off by default, MISP feeds only */
	struct bw_conf *c = load_ok_text(FEED "      format: misp\n");
	assert_false(c->policy.feeds[0].misp_non_ids);
	bw_conf_free(c);
	c = load_ok_text(FEED "      format: misp\n      misp-include-non-ids: true\n");
	assert_true(c->policy.feeds[0].misp_non_ids);
	bw_conf_free(c);
	expect_error(FEED "      format: stix\n      misp-include-non-ids: true\n",
		     ":7:29: feed 'a': 'misp-include-non-ids' is for 'format: misp'");
}

static void test_feed_actions(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum bw_feed_action action;
	} actions[] = {
	    {"given", BW_FEED_ACT_GIVEN},	{"nxdomain", BW_FEED_ACT_NXDOMAIN},
	    {"nodata", BW_FEED_ACT_NODATA},	{"drop", BW_FEED_ACT_DROP},
	    {"log-only", BW_FEED_ACT_LOG_ONLY},
	};
	char text[256];

	for (size_t i = 0; i < BW_ARRAY_LEN(actions); i++) {
		snprintf(text, sizeof(text), FEED "      action: %s\n", actions[i].name);
		struct bw_conf *c = load_ok_text(text);
		assert_int_equal(c->policy.feeds[0].action, actions[i].action);
		assert_false(c->policy.feeds[0].redirect_has_v4);
		assert_false(c->policy.feeds[0].redirect_has_v6);
		assert_null(c->policy.feeds[0].redirect_name);
		bw_conf_free(c);
	}
	/* An empty action is the default. */
	struct bw_conf *c = load_ok_text(FEED "      action:\n");
	assert_int_equal(c->policy.feeds[0].action, BW_FEED_ACT_GIVEN);
	bw_conf_free(c);

	/* redirect: one scalar or a list; one IPv4 and/or one IPv6 address, or one name. */
	c = load_ok_text(FEED "      action: redirect\n      redirect: 192.0.2.1\n");
	const struct bw_feed_conf *f = &c->policy.feeds[0];
	assert_int_equal(f->action, BW_FEED_ACT_REDIRECT);
	assert_true(f->redirect_has_v4);
	assert_memory_equal(f->redirect_v4, ((uint8_t[]){192, 0, 2, 1}), 4);
	assert_false(f->redirect_has_v6);
	assert_null(f->redirect_name);
	bw_conf_free(c);

	c = load_ok_text(FEED "      action: redirect\n      redirect: \"2001:db8::1\"\n");
	f = &c->policy.feeds[0];
	assert_false(f->redirect_has_v4);
	assert_true(f->redirect_has_v6);
	assert_memory_equal(f->redirect_v6,
			    ((uint8_t[]){0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}),
			    16);
	assert_null(f->redirect_name);
	bw_conf_free(c);

	c = load_ok_text(FEED "      action: redirect\n      redirect:\n        - \"::\"\n"
			      "        - 0.0.0.0\n");
	f = &c->policy.feeds[0];
	assert_true(f->redirect_has_v4);
	assert_true(f->redirect_has_v6);
	assert_memory_equal(f->redirect_v4, ((uint8_t[4]){0}), 4);
	assert_memory_equal(f->redirect_v6, ((uint8_t[16]){0}), 16);
	bw_conf_free(c);

	c = load_ok_text(FEED "      action: redirect\n      redirect: Blocked.Example.ORG.\n");
	f = &c->policy.feeds[0];
	assert_false(f->redirect_has_v4);
	assert_false(f->redirect_has_v6);
	assert_string_equal(f->redirect_name, "blocked.example.org");
	bw_conf_free(c);

	c = load_ok_text(FEED "      action: redirect\n      redirect: [ block-page.example ]\n");
	assert_string_equal(c->policy.feeds[0].redirect_name, "block-page.example");
	bw_conf_free(c);
}

static void test_redirect_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {FEED "      action: block\n",
	     ":6:15: invalid action 'block' (expected one of: given, nxdomain, nodata, drop, "
	     "log-only, redirect)"},
	    {FEED "      action: redirect\n",
	     ":6:15: feed 'a': 'action: redirect' needs 'redirect' (an IPv4 and/or IPv6 address, "
	     "or a name)"},
	    {FEED "      action: redirect\n      redirect:\n",
	     ":6:15: feed 'a': 'action: redirect' needs 'redirect' (an IPv4 and/or IPv6 address, "
	     "or a name)"},
	    {FEED "      redirect: 192.0.2.1\n",
	     ":6:17: feed 'a': 'redirect' is only used with 'action: redirect'"},
	    {FEED "      action: nxdomain\n      redirect: 192.0.2.1\n",
	     ":7:17: feed 'a': 'redirect' is only used with 'action: redirect'"},
	    {FEED "      action: redirect\n      redirect: [ 192.0.2.1, 192.0.2.2 ]\n",
	     ":7:30: feed 'a': 'redirect' has more than one IPv4 address"},
	    {FEED "      action: redirect\n      redirect: [ \"::1\", \"::2\" ]\n",
	     ":7:26: feed 'a': 'redirect' has more than one IPv6 address"},
	    {FEED "      action: redirect\n      redirect: [ a.example, 192.0.2.1 ]\n",
	     ":7:30: feed 'a': 'redirect' is either one name or addresses (at most one IPv4 and "
	     "one IPv6), not both"},
	    {FEED "      action: redirect\n      redirect: [ \"::1\", a.example ]\n",
	     ":7:26: feed 'a': 'redirect' is either one name or addresses (at most one IPv4 and "
	     "one IPv6), not both"},
	    {FEED "      action: redirect\n      redirect: [ a.example, b.example ]\n",
	     ":7:30: feed 'a': 'redirect' has more than one name"},
	    {FEED "      action: redirect\n      redirect: bad..example\n",
	     ":7:17: feed 'a': redirect name 'bad..example' has an empty label"},
	    {FEED "      action: redirect\n      redirect: \"*.example\"\n",
	     ":7:17: feed 'a': redirect name '*.example' has a character that is not a letter, "
	     "digit, '-' or '_' (write international names in their xn-- form)"},
	    {FEED "      action: redirect\n      redirect: \"\"\n",
	     ":7:17: feed 'a': redirect name '' is empty"},
	    {FEED "      action: redirect\n      redirect: 192.0.2.300\n",
	     ":7:17: feed 'a': redirect '192.0.2.300' is not a valid IPv4 address"},
	    {FEED "      action: redirect\n      redirect: \"2001:db8::g\"\n",
	     ":7:17: feed 'a': redirect '2001:db8::g' is not a valid IPv6 address"},
	    {FEED "      action: redirect\n      redirect: []\n",
	     ":7:17: feed 'a': 'redirect' lists no address or name"},
	    {FEED "      action: redirect\n      redirect: { v4: 192.0.2.1 }\n",
	     ":7:17: expected an address, a name or a list of them for 'redirect', found a "
	     "mapping"},
	    {FEED "      action: redirect\n      redirect: [ [ 192.0.2.1 ] ]\n",
	     ":7:19: expected a scalar for 'redirect', found a sequence"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++)
		expect_error(cases[i].text, cases[i].want);
}

/* ---- profiles ---- */

/* Two feeds; profile items start at line 6. */
#define PROF                                                                                       \
	"policy:\n  feeds:\n    - { name: a, category: malware, file: /dev/null }\n"               \
	"    - { name: b, category: phishing, file: /dev/null }\n  profiles:\n"

static void test_profiles(void **state)
{
	(void)state;
	struct bw_conf *c =
	    load_ok_text(PROF "    - { name: everything }\n"
			      "    - { name: all2, feeds: all }\n"
			      "    - { name: nothing, feeds: none }\n"
			      "    - { name: empty, feeds: [] }\n"
			      "    - { name: some, feeds: [ b, a ] }\n"
			      "    - { name: cats, categories: [ phishing, adult ] }\n"
			      "    - { name: mixed, feeds: none, categories: [ malware ] }\n"
			      "    - { name: nulls, feeds: ~, categories: }\n"
			      "    - name: Open_1.x\n"
			      "      feeds: [ a ]\n"
			      "      allowlist: [ Good.Example., b.example ]\n"
			      "      clients: [ 10.1.2.3/16, \"fd00::/8\", 192.0.2.1 ]\n");
	const struct bw_profile_conf *p = c->policy.profiles;
	assert_int_equal(c->policy.n_profiles, 9);
	assert_int_equal(c->policy.default_profile, 0); /* the first one */

	const bool all[] = {true, true, false, false, false, false, false, true, false};
	const size_t nf[] = {0, 0, 0, 0, 2, 0, 0, 0, 1}, nc[] = {0, 0, 0, 0, 0, 2, 1, 0, 0};
	for (size_t i = 0; i < 9; i++) {
		if (p[i].all_feeds != all[i] || p[i].n_feeds != nf[i] ||
		    p[i].n_categories != nc[i]) {
			print_error("profile %s: all %d feeds %zu categories %zu\n", p[i].name,
				    p[i].all_feeds, p[i].n_feeds, p[i].n_categories);
			fail();
		}
	}
	assert_string_equal(p[0].name, "everything");
	assert_string_equal(p[4].feeds[0], "b");
	assert_string_equal(p[4].feeds[1], "a");
	assert_string_equal(p[5].categories[0], "phishing");
	assert_string_equal(p[5].categories[1], "adult"); /* no feed has it yet: fine */
	assert_string_equal(p[6].categories[0], "malware");
	assert_string_equal(p[8].name, "Open_1.x");
	assert_string_equal(p[8].feeds[0], "a");
	assert_int_equal(p[8].n_allowlist, 2);
	assert_string_equal(p[8].allowlist[0], "good.example");
	assert_string_equal(p[8].allowlist[1], "b.example");
	assert_int_equal(p[8].n_clients, 3);
	assert_int_equal(p[8].clients[0].family, AF_INET);
	assert_int_equal(p[8].clients[0].prefix, 16);
	assert_memory_equal(p[8].clients[0].addr, ((uint8_t[]){10, 1, 0, 0}), 4);
	assert_int_equal(p[8].clients[1].family, AF_INET6);
	assert_int_equal(p[8].clients[1].prefix, 8);
	assert_int_equal(p[8].clients[2].prefix, 32);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.200.1", &sin.sin_addr);
	assert_true(bw_cidr_match(&p[8].clients[0], (struct sockaddr *)&sin));
	/* The global allowlist is not touched by a profile's. */
	assert_int_equal(c->policy.n_allowlist, 0);
	for (size_t i = 0; i < c->server.n_listen; i++)
		assert_int_equal(c->server.listen[i].profile, -1);
	bw_conf_free(c);

	/* Listeners name profiles that are defined later in the file; default-profile too. */
	c = load_ok_text("server:\n  listen:\n"
			 "    - { address: 127.0.0.1, port: 53, profile: kids }\n"
			 "    - { address: 127.0.0.1, port: 54, profile: ~ }\n"
			 "    - { address: 127.0.0.1, port: 55, profile: staff }\n"
			 "policy:\n  default-profile: kids\n"
			 "  profiles: [ { name: staff }, { name: kids, feeds: none } ]\n");
	assert_int_equal(c->server.listen[0].profile, 1);
	assert_int_equal(c->server.listen[1].profile, -1);
	assert_int_equal(c->server.listen[2].profile, 0);
	assert_int_equal(c->policy.default_profile, 1);
	bw_conf_free(c);

	/* Without profiles, the implicit one is called "default" and may be named. */
	c = load_ok_text("server:\n  listen:\n    - { address: 127.0.0.1, profile: default }\n"
			 "policy:\n  default-profile: default\n  profiles:\n");
	assert_int_equal(c->policy.n_profiles, 1);
	assert_string_equal(c->policy.profiles[0].name, "default");
	assert_true(c->policy.profiles[0].all_feeds);
	assert_int_equal(c->server.listen[0].profile, 0);
	assert_int_equal(c->policy.default_profile, 0);
	bw_conf_free(c);
}

static void test_profile_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {PROF "    - { name: x }\n    - { name: x, feeds: none }\n",
	     ":7:7: duplicate profile name 'x'"},
	    {PROF "    - { name: x, feeds: [ a, c ] }\n",
	     ":6:30: profile 'x': unknown feed 'c' (not in policy.feeds)"},
	    {PROF "    - { name: x, feeds: [ a, a ] }\n",
	     ":6:30: profile 'x': feed 'a' is listed twice"},
	    {PROF "    - { name: x, feeds: a }\n",
	     ":6:25: profile 'x': 'feeds' must be all, none or a list of feed names, found 'a'"},
	    {PROF "    - { name: x, feeds: { a: 1 } }\n",
	     ":6:25: profile 'x': 'feeds' must be all, none or a list of feed names, found a "
	     "mapping"},
	    {PROF "    - { name: x, feeds: [ [ a ] ] }\n",
	     ":6:27: expected a scalar for 'feeds', found a sequence"},
	    {PROF "    - { name: x, feeds: all, categories: [ malware ] }\n",
	     ":6:42: profile 'x': 'categories' has no effect with 'feeds: all'"},
	    {PROF "    - { name: x, categories: malware }\n",
	     ":6:30: expected a sequence for 'categories', found a scalar"},
	    {PROF "    - { name: x, categories: [ \"a/b\" ] }\n",
	     ":6:32: profile 'x': category 'a/b' must be 1 to 64 characters from A-Z a-z 0-9 _ "
	     ". -"},
	    {PROF "    - { name: x, categories: [ c2, c2 ] }\n",
	     ":6:36: profile 'x': category 'c2' is listed twice"},
	    {PROF "    - { feeds: all }\n",
	     ":6:7: missing required key 'name' in policy.profiles item"},
	    {PROF "    - { name: \"a b\" }\n",
	     ":6:15: profile name 'a b' must be 1 to 64 characters from A-Z a-z 0-9 _ . -"},
	    {PROF "    - { name: x, feed: all }\n",
	     ":6:18: unknown key 'feed' in policy.profiles item (known: name, feeds, "
	     "categories, allowlist, clients)"},
	    {PROF "    - { name: x, clients: [ 10.0.0.0/33 ] }\n",
	     ":6:29: profile 'x': invalid client network '10.0.0.0/33' (expected an address or "
	     "address/prefix-length, e.g. 192.168.0.0/16 or fc00::/7)"},
	    {PROF "    - { name: x, clients: 10.0.0.0/8 }\n",
	     ":6:27: expected a sequence for 'clients', found a scalar"},
	    {PROF "    - { name: x, allowlist: [ bad..example ] }\n",
	     ":6:31: profile 'x': allowlist name 'bad..example' has an empty label"},
	    {PROF "    - x\n", ":6:7: expected a mapping for each item of 'profiles', found a "
			       "scalar"},
	    {"policy:\n  profiles: []\n", ":2:13: 'profiles' must name at least one profile"},
	    {"policy:\n  profiles: { name: x }\n",
	     ":2:13: expected a sequence for 'profiles', found a mapping"},
	    {"policy:\n  default-profile: kids\n",
	     ":2:20: unknown default-profile 'kids' (profiles: default)"},
	    {"policy:\n  default-profile: [ kids ]\n",
	     ":2:20: expected a scalar for 'default-profile', found a sequence"},
	    {"policy:\n  profiles: [ { name: a }, { name: b } ]\n  default-profile: c\n",
	     ":3:20: unknown default-profile 'c' (profiles: a, b)"},
	    /* A listener's profile is checked once policy has been read, at its own place. */
	    {"server:\n  listen:\n    - { address: 127.0.0.1, profile: kids }\n"
	     "policy:\n  profiles: [ { name: adults } ]\n",
	     ":3:38: unknown listener profile 'kids' (profiles: adults)"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1 }\n"
	     "    - address: \"::1\"\n      profile: family\n",
	     ":5:16: unknown listener profile 'family' (profiles: default)"},
	    {"server:\n  listen:\n    - { address: 127.0.0.1, profile: [ a ] }\n",
	     ":3:38: expected a scalar for 'profile', found a sequence"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++)
		expect_error(cases[i].text, cases[i].want);
}

/* ---- access control ---- */

static struct sockaddr_storage sa_of(const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return ss;
}

static enum bw_acl_action acl(const struct bw_conf *c, const char *addr)
{
	struct sockaddr_storage ss = sa_of(addr);
	return bw_access_check(c, (const struct sockaddr *)&ss);
}

static void test_acl_default(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok_text("");
	const char *allowed[] = {"127.0.0.1",	    "127.255.255.254",	"::1",
				 "10.1.2.3",	    "172.16.0.1",	"172.31.255.255",
				 "192.168.1.1",	    "169.254.9.9",	"fd12:3456::1",
				 "fc00::1",	    "fe80::1",		"febf::1",
				 "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:192.168.0.1"};
	const char *refused[] = {
	    "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "11.0.0.1",   "2001:db8::1",
	    "::2",     "fec0::1",    "::ffff:8.8.8.8", "::10.0.0.1",  "::ffff:0:0", "0.0.0.0"};
	for (size_t i = 0; i < BW_ARRAY_LEN(allowed); i++) {
		if (acl(c, allowed[i]) != BW_ACL_ALLOW) {
			print_error("%s should be allowed\n", allowed[i]);
			fail();
		}
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(refused); i++) {
		if (acl(c, refused[i]) != BW_ACL_REFUSE) {
			print_error("%s should be refused\n", refused[i]);
			fail();
		}
	}
	bw_conf_free(c);
}

static void test_acl_rules(void **state)
{
	(void)state;
	struct bw_conf *c =
	    load_ok_text("server:\n  access-control:\n"
			 "    - { network: 192.0.2.7, action: drop }\n"
			 "    - { network: 192.0.2.9/25, action: refuse }\n"
			 "    - { network: 192.0.2.0/23, action: allow }\n"
			 "    - { network: \"2001:db8:0:1::/63\", action: drop }\n"
			 "    - { network: \"2001:db8::/32\", action: allow }\n"
			 "    - { network: \"::ffff:198.51.100.0/120\", action: allow }\n");
	assert_int_equal(c->server.n_acl, 6);
	/* host bits are cleared: 192.0.2.9/25 is stored as 192.0.2.0/25 */
	assert_int_equal(c->server.acl[1].net.addr[3], 0);
	assert_int_equal(acl(c, "192.0.2.7"), BW_ACL_DROP);
	assert_int_equal(acl(c, "::ffff:192.0.2.7"), BW_ACL_DROP);
	assert_int_equal(acl(c, "192.0.2.8"), BW_ACL_REFUSE);
	assert_int_equal(acl(c, "192.0.2.127"), BW_ACL_REFUSE);
	assert_int_equal(acl(c, "192.0.2.128"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "192.0.3.255"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "::ffff:192.0.3.1"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "192.0.4.0"), BW_ACL_REFUSE); /* no match */
	assert_int_equal(acl(c, "127.0.0.1"), BW_ACL_REFUSE); /* the default list is replaced */
	assert_int_equal(acl(c, "2001:db8:0:1::5"), BW_ACL_DROP);
	assert_int_equal(acl(c, "2001:db8:0:0::5"), BW_ACL_DROP);
	assert_int_equal(acl(c, "2001:db8:0:2::5"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "2001:db9::1"), BW_ACL_REFUSE);
	/* an IPv6 rule over the mapped range matches mapped clients, not plain IPv4 ones */
	assert_int_equal(acl(c, "::ffff:198.51.100.3"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "198.51.100.3"), BW_ACL_REFUSE);
	bw_conf_free(c);

	/* An explicit empty list refuses everyone. */
	c = load_ok_text("server:\n  access-control: []\n");
	assert_int_equal(c->server.n_acl, 0);
	assert_int_equal(acl(c, "127.0.0.1"), BW_ACL_REFUSE);
	bw_conf_free(c);

	/* /0 matches everything of its family. */
	c = load_ok_text("server:\n  access-control:\n"
			 "    - { network: 0.0.0.0/0, action: allow }\n");
	assert_int_equal(acl(c, "203.0.113.1"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "::ffff:203.0.113.1"), BW_ACL_ALLOW);
	assert_int_equal(acl(c, "2001:db8::1"), BW_ACL_REFUSE);
	bw_conf_free(c);
}

static void test_cidr_match(void **state)
{
	(void)state;
	struct bw_cidr net = {.family = AF_INET, .addr = {10, 0, 0, 0}, .prefix = 8};
	struct sockaddr_storage ss = sa_of("10.200.0.1");
	assert_true(bw_cidr_match(&net, (struct sockaddr *)&ss));
	ss = sa_of("::ffff:10.200.0.1");
	assert_true(bw_cidr_match(&net, (struct sockaddr *)&ss));
	ss = sa_of("::ffff:11.0.0.1");
	assert_false(bw_cidr_match(&net, (struct sockaddr *)&ss));
	ss = sa_of("9.255.255.255");
	assert_false(bw_cidr_match(&net, (struct sockaddr *)&ss));

	struct bw_cidr six = {.family = AF_INET6, .addr = {0xfe, 0x80}, .prefix = 10};
	ss = sa_of("febf:ffff::1");
	assert_true(bw_cidr_match(&six, (struct sockaddr *)&ss));
	ss = sa_of("fec0::1");
	assert_false(bw_cidr_match(&six, (struct sockaddr *)&ss));
	ss = sa_of("10.0.0.1");
	assert_false(bw_cidr_match(&six, (struct sockaddr *)&ss));

	struct sockaddr other = {.sa_family = AF_UNIX};
	assert_false(bw_cidr_match(&net, &other));
	assert_false(bw_cidr_match(&net, NULL));
	assert_int_equal(bw_access_check(NULL, &other), BW_ACL_REFUSE);
}

static int reset_mismatches(void **state)
{
	(void)state;
	mismatches = 0;
	return 0;
}

static int check_mismatches(void **state)
{
	(void)state;
	if (mismatches)
		print_error("%d error message(s) differ\n", mismatches);
	return mismatches ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_shipped_config, reset_mismatches,
					    check_mismatches),
	    cmocka_unit_test_setup_teardown(test_defaults, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_full, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_relative_paths, reset_mismatches,
					    check_mismatches),
	    cmocka_unit_test_setup_teardown(test_forward, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_syntax_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_key_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_type_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_value_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_listen_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_resolver_errors, reset_mismatches,
					    check_mismatches),
	    cmocka_unit_test_setup_teardown(test_feed_errors, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_feed_formats, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_feed_actions, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_redirect_errors, reset_mismatches,
					    check_mismatches),
	    cmocka_unit_test_setup_teardown(test_profiles, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_profile_errors, reset_mismatches,
					    check_mismatches),
	    cmocka_unit_test_setup_teardown(test_acl_default, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_acl_rules, reset_mismatches, check_mismatches),
	    cmocka_unit_test_setup_teardown(test_cidr_match, reset_mismatches, check_mismatches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
