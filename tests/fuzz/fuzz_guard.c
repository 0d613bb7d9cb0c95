/*
 * tests/fuzz/fuzz_guard.c - fuzz target for the guard's parsers of untrusted bytes: query
 * names through bw_lookalike_check() (punycode decoding, UTF-8, the registrable domain)
 * and the newly-seen memory file through bw_nseen_load().
 *
 * The first byte picks: even = a name, odd = a memory file. Properties: a flagged name
 * names a kind and one of the protected domains; a protected domain's subdomain is never
 * flagged; a file loads or is refused as malformed, nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "fuzz.h"
#include "guard/guard.h"

static struct bw_lookalike *g;
static struct bw_nseen *ns;

static void init(void)
{
	static const struct bw_guard_protected p[] = {
	    {.domain = "amnesty.org"}, {.domain = "microsoft.com"}, {.domain = "apple.com"},
	    {.domain = "ngo.org"},     {.domain = "example.co.uk"},
	};
	CHECK(bw_lookalike_build(p, BW_ARRAY_LEN(p), 5, &g, NULL) == 0);
	CHECK(bw_nseen_new(1024, &ns) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g)
		init();
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		char name[300], sub[320];
		size_t n = BW_MIN(size - 1, sizeof(name) - 1);
		memcpy(name, data + 1, n);
		name[n] = 0;
		struct bw_guard_hit hit;
		if (bw_lookalike_check(g, name, &hit)) {
			CHECK(hit.kind > BW_GK_NONE && hit.kind < BW_GK_COUNT);
			CHECK(hit.index < 5 && hit.protected != NULL);
		}
		/* the fuzzed label as a subdomain of a protected domain: never flagged */
		if (n && !memchr(name, '.', n) && n < 64) {
			snprintf(sub, sizeof(sub), "%s.amnesty.org", name);
			CHECK(!bw_lookalike_check(g, sub, &hit));
		}
		return 0;
	}
	char path[] = "/tmp/bw-fuzz-nseen-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	ssize_t w = write(fd, data + 1, size - 1);
	close(fd);
	if (w == (ssize_t)(size - 1)) {
		int rc = bw_nseen_load(ns, path);
		CHECK(rc == 0 || rc == BW_EMALFORMED);
	}
	unlink(path);
	return 0;
}
