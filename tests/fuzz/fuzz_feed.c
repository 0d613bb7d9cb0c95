/*
 * tests/fuzz/fuzz_feed.c - feed parsers (domains and hosts) on arbitrary bytes.
 *
 * Every name handed to the callback must be a well-formed, lower-cased wire name.
 */
#include <stdlib.h>

#include "policy/policy.h"

static void check_name(const uint8_t *name, size_t len, void *ctx)
{
	size_t pos = 0;

	(void)ctx;
	if (len < 2 || len > 255)
		abort();
	while (name[pos] != 0) {
		uint8_t l = name[pos];
		if (l > 63 || pos + 1u + l >= len)
			abort();
		for (size_t i = pos + 1; i <= pos + l; i++) {
			if (name[i] >= 'A' && name[i] <= 'Z')
				abort();
		}
		pos += 1u + l;
	}
	if (pos != len - 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct bw_feed_stats st;

	if (!quiet) {
		bw_log_set_level(BW_LOG_ERR);
		quiet = true;
	}
	bw_feed_parse_stats((const char *)data, size, BW_FEED_DOMAINS, "fuzz", check_name, NULL,
			    &st);
	if (st.bad_lines > st.lines)
		abort();
	bw_feed_parse_stats((const char *)data, size, BW_FEED_HOSTS, "fuzz", check_name, NULL, &st);
	if (st.bad_lines > st.lines)
		abort();
	return 0;
}
