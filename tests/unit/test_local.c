/*
 * tests/unit/test_local.c - unit tests for local names: the config keys (forward-zones,
 * special-use, local-records, local-records-file, local-ttl) with their errors, and the
 * local/ table: precedence (record, forward zone, special-use name), the answers it
 * encodes (A/AAAA, PTR, NODATA, NXDOMAIN, localhost) and case-insensitive names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "local/local.h"

static char dir[64];
static char conf_path[128];
static int mismatches;

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bw-test-local-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(conf_path, sizeof(conf_path), "%s/bulwark.yaml", dir);
	mismatches = 0;
	return 0;
}

static int remove_dir(void **state)
{
	(void)state;
	char path[160];
	snprintf(path, sizeof(path), "%s/hosts", dir);
	unlink(path);
	unlink(conf_path);
	rmdir(dir);
	if (mismatches)
		print_error("%d error message(s) differ\n", mismatches);
	return mismatches ? -1 : 0;
}

static void write_file(const char *name, const char *text)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int load(const char *text, struct bw_conf **out, char *err, size_t errlen)
{
	write_file("bulwark.yaml", text);
	return bw_conf_load(conf_path, out, err, errlen);
}

static struct bw_conf *load_ok(const char *text)
{
	struct bw_conf *c = NULL;
	char err[1024];
	if (load(text, &c, err, sizeof(err))) {
		print_error("unexpected error: %s\n", err);
		fail();
	}
	return c;
}

/* Expects the load to fail with `want` after "<config path>" (want starts with ':') or,
 * for errors about the hosts file, with "<dir>/hosts" then want. */
static void expect_error(const char *text, bool in_hosts, const char *want)
{
	struct bw_conf *c = NULL;
	char err[1024], prefix[200];
	int rc = load(text, &c, err, sizeof(err));
	if (in_hosts)
		snprintf(prefix, sizeof(prefix), "%s/hosts", dir);
	else
		snprintf(prefix, sizeof(prefix), "%s", conf_path);
	if (rc == 0 || c || strncmp(err, prefix, strlen(prefix)) ||
	    strcmp(err + strlen(prefix), want)) {
		print_error("yaml:\n%s\nwant: %s%s\ngot (rc %d): %s\n", text, prefix, want, rc, err);
		mismatches++;
	}
	bw_conf_free(c);
}

/* ---- config ---- */

static void test_conf_forward_zones(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok("resolver:\n"
				    "  forward-zones:\n"
				    "    - { zone: Corp.Example., forward: [ 192.0.2.10, "
				    "\"192.0.2.11@5353\" ] }\n"
				    "    - zone: 168.192.in-addr.arpa\n"
				    "      forward: [ \"tls://192.0.2.1#dc.corp.example\" ]\n"
				    "      insecure: false\n"
				    "      stub: true\n"
				    "  special-use: { test: recurse, localhost: local }\n");
	assert_int_equal(c->resolver.n_forward_zones, 2);
	const struct bw_forward_zone *z = c->resolver.forward_zones;
	assert_string_equal(z[0].zone, "corp.example");
	assert_int_equal(z[0].n_forward, 2);
	assert_string_equal(z[0].forward[0].addr, "192.0.2.10@53");
	assert_string_equal(z[0].forward[1].addr, "192.0.2.11@5353");
	assert_true(z[0].insecure);
	assert_false(z[0].stub);
	assert_false(z[0].tls);
	assert_string_equal(z[1].zone, "168.192.in-addr.arpa");
	assert_true(z[1].tls);
	assert_string_equal(z[1].forward[0].addr, "192.0.2.1@853");
	assert_string_equal(z[1].forward[0].tls_name, "dc.corp.example");
	assert_false(z[1].insecure);
	assert_true(z[1].stub);
	assert_true(c->resolver.special_recurse[BW_SU_TEST]);
	assert_false(c->resolver.special_recurse[BW_SU_LOCALHOST]);
	assert_false(c->resolver.special_recurse[BW_SU_ONION]);
	assert_int_equal(c->local.ttl, 300);
	bw_conf_free(c);
}

static void test_conf_errors(void **state)
{
	(void)state;
	expect_error("resolver:\n  forward-zones:\n    - { zone: corp.example }\n", false,
		     ":3:7: missing required key 'forward' in resolver.forward-zones item");
	expect_error("resolver:\n  forward-zones:\n    - { zone: corp.example, forward: [] }\n",
		     false,
		     ":3:38: forward-zones: zone 'corp.example' lists no server (e.g. forward: [ "
		     "192.0.2.10@53 ])");
	expect_error("resolver:\n  forward-zones:\n    - { zone: \"bad..name\", forward: [ "
		     "192.0.2.1 ] }\n",
		     false, ":3:15: forward-zones: zone 'bad..name' has an empty label");
	expect_error("resolver:\n  forward-zones:\n    - { zone: ., forward: [ 192.0.2.1 ] }\n",
		     false,
		     ":3:15: forward-zones: the root zone cannot be a forward zone (use 'mode: "
		     "forward' and 'forward' to forward every name)");
	expect_error("resolver:\n  forward-zones:\n"
		     "    - { zone: corp.example, forward: [ 192.0.2.1 ] }\n"
		     "    - { zone: CORP.example., forward: [ 192.0.2.2 ] }\n",
		     false, ":4:15: forward-zones: zone 'corp.example' is listed twice");
	expect_error("resolver:\n  forward-zones:\n"
		     "    - { zone: corp.example, forward: [ 192.0.2.1, \"tls://192.0.2.2\" ] }\n",
		     false,
		     ":3:51: forward-zones: zone 'corp.example' mixes tls:// and plain servers "
		     "(write one kind per zone)");
	expect_error("resolver:\n  forward-zones:\n"
		     "    - { zone: corp.example, forward: [ dc.corp.example ] }\n",
		     false,
		     ":3:40: forward address 'dc.corp.example': 'dc.corp.example' is not an IPv4 "
		     "or IPv6 address (write addr@port, e.g. 192.0.2.53@53 or "
		     "tls://9.9.9.9@853#dns.quad9.net)");
	expect_error("resolver:\n  forward-zones:\n"
		     "    - { zone: corp.example, forward: [ 192.0.2.1 ], via: x }\n",
		     false,
		     ":3:53: unknown key 'via' in resolver.forward-zones item (known: zone, "
		     "forward, insecure, stub)");
	expect_error("resolver:\n  special-use: { test: forward }\n", false,
		     ":2:24: invalid test 'forward' (expected one of: local, recurse)");
	expect_error("resolver:\n  special-use: { example: recurse }\n", false,
		     ":2:18: unknown key 'example' in resolver.special-use (known: localhost, "
		     "invalid, test, local, onion, home.arpa)");
	expect_error("local-records:\n  nas.lan: 192.168.1.300\n", false,
		     ":2:12: local-records: '192.168.1.300' is not an IPv4 or IPv6 address (for "
		     "nas.lan)");
	expect_error("local-records:\n  \"nas lan\": 192.168.1.3\n", false,
		     ":2:3: local-records: name 'nas lan' has a character that is not a letter, "
		     "digit, '-' or '_' (write international names in their xn-- form)");
	expect_error("local-records:\n  nas.lan: 192.168.1.3\n  NAS.lan.: 192.168.1.4\n", false,
		     ":3:3: local-records: name 'NAS.lan.' is given twice (list its addresses "
		     "under one key)");
	expect_error("local-records:\n  nas.lan: []\n", false,
		     ":2:12: local-records: 'nas.lan' lists no address");
	expect_error("local-records:\n  nas.lan:\n", false,
		     ":2:3: local-records: 'nas.lan' needs an address");
	expect_error("local-records: [ nas.lan ]\n", false,
		     ":1:16: expected a mapping for 'local-records', found a sequence");
	expect_error("local-ttl: 1500ms\n", false,
		     ":1:12: 'local-ttl' must be a whole number of seconds, found 1500ms");
	char want[300];
	snprintf(want, sizeof(want),
		 ":1:21: local-records-file: cannot read '%s/missing-hosts': No such file or "
		 "directory",
		 dir);
	expect_error("local-records-file: missing-hosts\n", false, want);
}

static void test_hosts_file(void **state)
{
	(void)state;
	write_file("hosts", "# office names\n"
			    "\n"
			    "192.168.1.10  nas.home.arpa NAS.lan   # the NAS\n"
			    "fd00::10\tnas.home.arpa\n"
			    "192.168.1.10 nas.home.arpa\n");
	struct bw_conf *c = load_ok("local-records: { printer.lan: [ 192.168.1.20 ] }\n"
				    "local-records-file: hosts\nlocal-ttl: 60\n");
	assert_int_equal(c->local.ttl, 60);
	assert_int_equal(c->local.n_records, 5);
	const struct bw_local_record *r = c->local.records;
	assert_string_equal(r[0].name, "printer.lan");
	assert_int_equal(r[0].line, 0);
	assert_string_equal(r[1].name, "nas.home.arpa");
	assert_int_equal(r[1].family, 4);
	assert_int_equal(r[1].line, 3);
	assert_string_equal(r[2].name, "nas.lan");
	assert_int_equal(r[3].family, 6);
	assert_int_equal(r[3].line, 4);
	char want[200];
	snprintf(want, sizeof(want), "%s/hosts", dir);
	assert_string_equal(c->local.file, want);
	bw_conf_free(c);

	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"192.168.1.300 nas.lan\n",
	     ":1: '192.168.1.300' is not an IPv4 or IPv6 address (lines are ADDRESS NAME "
	     "[NAME...])"},
	    {"# ok\n192.168.1.3\n", ":2: no name after '192.168.1.3'"},
	    {"192.168.1.3 nas..lan\n", ":1: name 'nas..lan' has an empty label"},
	    {"nas.lan 192.168.1.3\n",
	     ":1: 'nas.lan' is not an IPv4 or IPv6 address (lines are ADDRESS NAME [NAME...])"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		write_file("hosts", bad[i].text);
		expect_error("local-records-file: hosts\n", true, bad[i].want);
	}
}

/* ---- the table ---- */

static struct bw_query query(const char *name, uint16_t qtype)
{
	struct bw_query q;
	memset(&q, 0, sizeof(q));
	int n = bw_name_from_text(name, strlen(name), q.qname);
	assert_true(n > 0);
	q.qname_len = (uint16_t)n;
	bw_name_lower(q.qname_lc, q.qname, (size_t)n);
	q.qtype = qtype;
	q.qclass = BW_C_IN;
	return q;
}

static enum bw_local_kind find(const struct bw_local *l, const char *name,
			       struct bw_local_hit *h)
{
	struct bw_query q = query(name, BW_T_A);
	return bw_local_find(l, q.qname_lc, q.qname_len, h);
}

/* Answers q; returns 1 (answered) or 0, with the answer's meta and body. */
static int answer(const struct bw_local *l, const char *name, uint16_t qtype,
		  struct bw_answer_meta *m, uint8_t *body)
{
	struct bw_query q = query(name, qtype);
	return bw_local_answer(l, &q, m, body, 4096);
}

static const char *const TABLE_CONF =
    "resolver:\n"
    "  forward-zones:\n"
    "    - { zone: corp.example, forward: [ 192.0.2.10 ] }\n"
    "    - { zone: home.arpa, forward: [ 192.168.1.1 ] }\n"
    "    - { zone: lab.test, forward: [ 192.0.2.12 ] }\n"
    "  special-use: { invalid: recurse }\n"
    "local-records:\n"
    "  nas.home.arpa: [ 192.168.1.10, \"fd00::10\" ]\n"
    "  printer.corp.example: 192.168.1.20\n"
    "  nas2.lan: 192.168.1.10\n"
    "  many.lan: [ 10.0.0.1, 10.0.0.1, 10.0.0.2 ]\n"
    "local-ttl: 120\n";

static void test_table_precedence(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok(TABLE_CONF);
	struct bw_local *l = NULL;
	struct bw_local_hit h;
	assert_int_equal(bw_local_build(c, c, &l), 0);

	assert_int_equal(find(l, "NAS.Home.Arpa.", &h), BW_LOCAL_RECORD);
	assert_int_equal(find(l, "printer.corp.example", &h), BW_LOCAL_RECORD);
	assert_int_equal(find(l, "dc.corp.example", &h), BW_LOCAL_FORWARD);
	assert_int_equal(h.index, 0);
	assert_int_equal(find(l, "corp.example", &h), BW_LOCAL_FORWARD);
	assert_int_equal(find(l, "router.home.arpa", &h), BW_LOCAL_FORWARD);
	assert_int_equal(h.index, 1);
	/* a forward zone below a special-use name wins there, not beside it */
	assert_int_equal(find(l, "x.lab.test", &h), BW_LOCAL_FORWARD);
	assert_int_equal(h.index, 2);
	assert_int_equal(find(l, "x.test", &h), BW_LOCAL_SPECIAL);
	assert_int_equal(h.index, BW_SU_TEST);
	assert_false(h.recurse);
	assert_int_equal(find(l, "nothing.invalid", &h), BW_LOCAL_SPECIAL);
	assert_true(h.recurse);
	assert_int_equal(find(l, "Localhost", &h), BW_LOCAL_SPECIAL);
	assert_int_equal(h.index, BW_SU_LOCALHOST);
	assert_int_equal(find(l, "a.b.localhost", &h), BW_LOCAL_SPECIAL);
	assert_int_equal(find(l, "printer.local", &h), BW_LOCAL_SPECIAL);
	assert_int_equal(h.index, BW_SU_LOCAL);
	assert_int_equal(find(l, "xyz.onion", &h), BW_LOCAL_SPECIAL);
	assert_int_equal(find(l, "example.org", &h), BW_LOCAL_NONE);
	assert_int_equal(find(l, "localhost.example.org", &h), BW_LOCAL_NONE);
	assert_int_equal(find(l, "arpa", &h), BW_LOCAL_NONE);
	assert_int_equal(find(l, ".", &h), BW_LOCAL_NONE);
	/* reverse names of the records' addresses */
	assert_int_equal(find(l, "10.1.168.192.in-addr.arpa", &h), BW_LOCAL_RECORD);
	assert_int_equal(find(l, "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f."
				 "ip6.arpa",
			      &h),
			 BW_LOCAL_RECORD);
	assert_int_equal(find(l, "11.1.168.192.in-addr.arpa", &h), BW_LOCAL_NONE);
	bw_local_free(l);
	bw_conf_free(c);
}

/* The rdata of the i-th answer record of a body built by synth (owner: a pointer). */
static const uint8_t *rdata(const uint8_t *body, unsigned i, uint16_t *type, uint16_t *len,
			    uint32_t *ttl)
{
	const uint8_t *p = body;
	for (unsigned k = 0;; k++) {
		*type = bw_get16(p + 2);
		*ttl = bw_get32(p + 6);
		*len = bw_get16(p + 10);
		if (k == i)
			return p + 12;
		p += 12 + *len;
	}
}

static void test_table_answers(void **state)
{
	(void)state;
	struct bw_conf *c = load_ok(TABLE_CONF);
	struct bw_local *l = NULL;
	struct bw_answer_meta m;
	uint8_t body[4096];
	uint16_t type, len;
	uint32_t ttl;
	const uint8_t *d;
	assert_int_equal(bw_local_build(c, c, &l), 0);

	/* A and AAAA of a record */
	assert_int_equal(answer(l, "nas.HOME.arpa", BW_T_A, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NOERROR);
	assert_true(m.flags & BW_DNS_AA);
	assert_int_equal(m.ancount, 1);
	d = rdata(body, 0, &type, &len, &ttl);
	assert_int_equal(type, BW_T_A);
	assert_int_equal(ttl, 120);
	assert_memory_equal(d, ((uint8_t[]){192, 168, 1, 10}), 4);
	assert_int_equal(answer(l, "nas.home.arpa", BW_T_AAAA, &m, body), 1);
	assert_int_equal(m.ancount, 1);
	d = rdata(body, 0, &type, &len, &ttl);
	assert_int_equal(type, BW_T_AAAA);
	assert_int_equal(len, 16);
	assert_int_equal(d[0], 0xfd);
	assert_int_equal(d[15], 0x10);
	/* another type: NOERROR, no records */
	assert_int_equal(answer(l, "nas.home.arpa", BW_T_MX, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NOERROR);
	assert_int_equal(m.ancount, 0);
	assert_int_equal(m.ttl, 120);
	/* a repeated address is answered once */
	assert_int_equal(answer(l, "many.lan", BW_T_A, &m, body), 1);
	assert_int_equal(m.ancount, 2);
	/* PTR: the first name listed for the address */
	assert_int_equal(answer(l, "10.1.168.192.IN-ADDR.arpa", BW_T_PTR, &m, body), 1);
	assert_int_equal(m.ancount, 1);
	d = rdata(body, 0, &type, &len, &ttl);
	assert_int_equal(type, BW_T_PTR);
	uint8_t want[BW_DNS_MAXNAME];
	int wl = bw_name_from_text("nas.home.arpa", 13, want);
	assert_int_equal(len, wl);
	assert_memory_equal(d, want, (size_t)wl);
	/* special-use names */
	assert_int_equal(answer(l, "localhost", BW_T_A, &m, body), 1);
	d = rdata(body, 0, &type, &len, &ttl);
	assert_int_equal(m.ancount, 1);
	assert_memory_equal(d, ((uint8_t[]){127, 0, 0, 1}), 4);
	assert_int_equal(answer(l, "www.localhost", BW_T_AAAA, &m, body), 1);
	d = rdata(body, 0, &type, &len, &ttl);
	assert_int_equal(type, BW_T_AAAA);
	assert_memory_equal(d, ((uint8_t[16]){[15] = 1}), 16);
	assert_int_equal(answer(l, "localhost", BW_T_TXT, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NOERROR);
	assert_int_equal(m.ancount, 0);
	const char *nx[] = {"x.test", "test", "printer.local", "abc.onion"};
	for (size_t i = 0; i < BW_ARRAY_LEN(nx); i++) {
		assert_int_equal(answer(l, nx[i], BW_T_A, &m, body), 1);
		assert_int_equal(m.rcode, BW_RCODE_NXDOMAIN);
		assert_int_equal(m.ancount, 0);
		assert_int_equal(m.ttl, 120);
		assert_true(m.flags & BW_DNS_AA);
	}
	/* resolved: forward zones, special-use set to recurse, everything else */
	assert_int_equal(answer(l, "dc.corp.example", BW_T_A, &m, body), 0);
	assert_int_equal(answer(l, "router.home.arpa", BW_T_A, &m, body), 0);
	assert_int_equal(answer(l, "x.invalid", BW_T_A, &m, body), 0);
	assert_int_equal(answer(l, "example.org", BW_T_A, &m, body), 0);
	bw_local_free(l);
	bw_conf_free(c);

	/* home.arpa not forwarded: NXDOMAIN below, NOERROR at the apex (RFC 6303) */
	c = load_ok("local-records: { nas.home.arpa: 192.168.1.10 }\n");
	assert_int_equal(bw_local_build(c, c, &l), 0);
	assert_int_equal(answer(l, "home.arpa", BW_T_SOA, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NOERROR);
	assert_int_equal(answer(l, "other.home.arpa", BW_T_A, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NXDOMAIN);
	assert_int_equal(answer(l, "nas.home.arpa", BW_T_A, &m, body), 1);
	assert_int_equal(m.rcode, BW_RCODE_NOERROR);
	assert_int_equal(m.ancount, 1);
	bw_local_free(l);
	bw_conf_free(c);

	/* the records are the config's, the zones the boot config's */
	struct bw_conf *boot = load_ok("resolver:\n  special-use: { test: recurse }\n");
	c = load_ok("local-records: { a.lan: 10.0.0.1 }\n");
	assert_int_equal(bw_local_build(c, boot, &l), 0);
	assert_int_equal(answer(l, "x.test", BW_T_A, &m, body), 0);
	assert_int_equal(answer(l, "a.lan", BW_T_A, &m, body), 1);
	bw_local_free(l);
	bw_conf_free(c);
	bw_conf_free(boot);
}

static void test_table_cap(void **state)
{
	(void)state;
	char text[8192];
	size_t at = (size_t)snprintf(text, sizeof(text), "local-records:\n  big.lan: [ ");
	for (int i = 0; i < 40; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at, "%s10.0.0.%d", i ? ", " : "",
				       i + 1);
	snprintf(text + at, sizeof(text) - at, " ]\n");
	struct bw_conf *c = load_ok(text);
	struct bw_local *l = NULL;
	struct bw_answer_meta m;
	uint8_t body[4096];
	bw_log_init(BW_LOG_ERR, false); /* the warning about the 8 addresses left out */
	assert_int_equal(bw_local_build(c, c, &l), 0);
	assert_int_equal(answer(l, "big.lan", BW_T_A, &m, body), 1);
	assert_int_equal(m.ancount, BW_LOCAL_MAX_PER_NAME);
	/* every address still has its PTR */
	assert_int_equal(answer(l, "40.0.0.10.in-addr.arpa", BW_T_PTR, &m, body), 1);
	assert_int_equal(m.ancount, 1);
	bw_local_free(l);
	bw_conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_conf_forward_zones, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(test_conf_errors, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(test_hosts_file, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(test_table_precedence, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(test_table_answers, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(test_table_cap, make_dir, remove_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
