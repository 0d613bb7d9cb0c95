/*
 * tests/unit/test_resolve.c - unit tests for resolve/: the libunbound options a worker's
 * context gets from the config (its cache sizes, shared out between the workers; forward
 * mode's small caches; resolver.unbound-options applied last). No query is sent: a
 * context is only created and asked what it has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "resolve/resolve.h"

static void never_called(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
			 const char *why_bogus)
{
	(void)arg, (void)err, (void)pkt, (void)len, (void)sec, (void)why_bogus;
	fail_msg("no query was sent");
}

static struct bw_conf *load_text(const char *text)
{
	char path[] = "/tmp/bw-test-resolve-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	struct bw_conf *conf = NULL;
	char err[512];
	int rc = bw_conf_load(path, &conf, err, sizeof(err));
	unlink(path);
	if (rc)
		fail_msg("config: %s", err);
	return conf;
}

struct want {
	const char *option, *value;
};

/* Reads option name[i] into got[i] (rc[i]: bw_resolver_option()'s return) from a context
 * made from yaml for one of `workers`; everything is freed before it returns, also when
 * the context cannot be made (out of memory in the allocation sweep): then it fails. */
static void read_options(const char *yaml, unsigned workers, const char *const *name, size_t n,
			 char (*got)[64], int *rc)
{
	struct bw_conf *conf = load_text(yaml);
	struct event_base *base = event_base_new();
	char err[512] = "";
	struct bw_resolver *r =
		base ? bw_resolver_create(conf, workers, base, never_called, err, sizeof(err)) : NULL;
	for (size_t i = 0; r && i < n; i++)
		rc[i] = bw_resolver_option(r, name[i], got[i], sizeof(got[i]));
	bw_resolver_destroy(r);
	if (base)
		event_base_free(base);
	bw_conf_free(conf);
	if (!r)
		fail_msg("bw_resolver_create: %s", err);
}

/* A context made from yaml for one of `workers` has every option of want[] as given. */
static void expect_options(const char *yaml, unsigned workers, const struct want *want, size_t n)
{
	const char *name[8];
	char got[8][64];
	int rc[8], bad = 0;
	assert_true(n <= BW_ARRAY_LEN(name));
	for (size_t i = 0; i < n; i++)
		name[i] = want[i].option;
	read_options(yaml, workers, name, n, got, rc);
	for (size_t i = 0; i < n; i++) {
		if (rc[i] || strcmp(got[i], want[i].value)) {
			print_error("%u worker(s), %s: want %s, got '%s' (rc %d)\nyaml:\n%s\n",
				    workers, want[i].option, want[i].value, got[i], rc[i], yaml);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static const char recursive[] = "resolver:\n  mode: recursive\n  dnssec: false\n"
				"cache: { size: 256M }\n";

/* Recursive: of cache.size per worker, a quarter for RRsets, a sixteenth for messages and
 * keys, a sixty-fourth for NSEC records (issue 21: libunbound's library defaults of 1 MB
 * of keys and 100 kB of NSEC made it ask TLDs again for the DS records of sites it had
 * already proven unsigned). */
static void test_recursive_cache_sizes(void **state)
{
	(void)state;
	static const struct want one[] = {
		{"rrset-cache-size", "67108864"}, /* 64 MB */
		{"msg-cache-size", "16777216"},	  /* 16 MB */
		{"key-cache-size", "16777216"},	  /* 16 MB */
		{"neg-cache-size", "4194304"},	  /* 4 MB */
	};
	expect_options(recursive, 1, one, BW_ARRAY_LEN(one));
	static const struct want four[] = {
		{"rrset-cache-size", "16777216"},
		{"msg-cache-size", "4194304"},
		{"key-cache-size", "4194304"},
		{"neg-cache-size", "1048576"},
	};
	expect_options(recursive, 4, four, BW_ARRAY_LEN(four));
}

/* However many workers share cache.size, none gets less than the Unbound daemon's
 * defaults: 8 MB of RRsets, 4 MB of messages and keys, 1 MB of NSEC records. */
static void test_recursive_cache_floors(void **state)
{
	(void)state;
	static const struct want floor[] = {
		{"rrset-cache-size", "8388608"},
		{"msg-cache-size", "4194304"},
		{"key-cache-size", "4194304"},
		{"neg-cache-size", "1048576"},
	};
	expect_options(recursive, 64, floor, BW_ARRAY_LEN(floor));
}

/* Forwarding keeps no delegations: 1 MB of RRsets and messages (the packet cache in front
 * holds the answers), keys and NSEC records at libunbound's own defaults. */
static void test_forward_cache_sizes(void **state)
{
	(void)state;
	static const struct want fwd[] = {
		{"rrset-cache-size", "1048576"},
		{"msg-cache-size", "1048576"},
		{"key-cache-size", "1048576"},
		{"neg-cache-size", "102400"},
	};
	expect_options("resolver:\n  mode: forward\n  dnssec: false\n"
		       "  forward: [ 127.0.0.1@5300 ]\ncache: { size: 256M }\n",
		       1, fwd, BW_ARRAY_LEN(fwd));
}

/* resolver.unbound-options come last: an expert's value wins over Bulwark's. */
static void test_unbound_options_win(void **state)
{
	(void)state;
	static const struct want own[] = {
		{"key-cache-size", "2097152"},
		{"neg-cache-size", "4194304"},
		{"fast-server-permil", "500"},
	};
	expect_options("resolver:\n  mode: recursive\n  dnssec: false\n"
		       "  unbound-options: [ \"key-cache-size: 2m\", \"fast-server-permil: 500\" ]\n"
		       "cache: { size: 256M }\n",
		       1, own, BW_ARRAY_LEN(own));
}

static void test_unknown_option(void **state)
{
	(void)state;
	const char *name[] = {"no-such-option"};
	char got[1][64] = {"x"};
	int rc[1] = {0};
	read_options(recursive, 1, name, 1, got, rc);
	assert_int_equal(rc[0], BW_EINVAL);
	assert_string_equal(got[0], "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recursive_cache_sizes),
		cmocka_unit_test(test_recursive_cache_floors),
		cmocka_unit_test(test_forward_cache_sizes),
		cmocka_unit_test(test_unbound_options_win),
		cmocka_unit_test(test_unknown_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
