/*
 * tests/fuzz/fuzz_gzip.c - gzip-compressed feeds (policy/feed_read.c) on arbitrary bytes.
 *
 * Input: one byte that picks the format, then the feed data (usually a gzip stream). The
 * data goes through bw_parse_feed() as a fetched feed with a 1 MiB max-size, so a bomb is
 * cut short quickly. Checks: a result that is 0 (the sink never fails); too_big only with
 * broken; and, when zlib alone inflates the data as one whole member within the limit,
 * exactly the rules and counts of parsing the inflated text directly.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "policy/rules.h"

#define LIMIT ((size_t)1 << 20)

struct digest {
	size_t n;
	uint64_t sum;
};

static int digest_rule(void *ctx, const struct bw_rule *r)
{
	struct digest *d = ctx;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; r->name && i < r->name_len; i++)
		h = (h ^ r->name[i]) * 1099511628211ULL;
	h = (h ^ ((uint64_t)r->trigger << 8 | (uint64_t)r->action)) * 1099511628211ULL;
	h = (h ^ ((uint64_t)r->line << 32 | r->ttl)) * 1099511628211ULL;
	d->sum += h;
	d->n++;
	return 0;
}

/* zlib on its own: the whole input as exactly one gzip member, inflated within LIMIT. */
static char *inflate_one(const uint8_t *data, size_t size, size_t *out_len)
{
	z_stream z;
	char *out = malloc(LIMIT + 1);
	int zr;

	if (!out)
		abort();
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		abort();
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (unsigned)size;
	z.next_out = (unsigned char *)out;
	z.avail_out = (unsigned)LIMIT + 1;
	zr = inflate(&z, Z_FINISH);
	*out_len = z.total_out;
	inflateEnd(&z);
	if (zr != Z_STREAM_END || z.avail_in != 0 || *out_len > LIMIT) {
		free(out);
		return NULL;
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum bw_feed_format formats[] = {BW_FEED_DOMAINS, BW_FEED_HOSTS,
						      BW_FEED_ADBLOCK, BW_FEED_RPZ, BW_FEED_STIX};
	static bool quiet;
	struct bw_parse_report rep, plain_rep;
	struct digest d = {0}, pd = {0};

	if (!quiet) {
		bw_log_set_level(BW_LOG_ERR);
		quiet = true;
	}
	if (size < 1 || size > 1000000)
		return 0;
	struct bw_feed_conf fc = {.name = "fuzz",
				  .format = formats[data[0] % (sizeof(formats) / sizeof(formats[0]))],
				  .source = BW_FEED_SRC_URL,
				  .max_size = LIMIT};
	data++;
	size--;
	if (bw_parse_feed(&fc, (const char *)data, size, digest_rule, &d, &rep) != 0)
		abort();
	if (rep.too_big && !rep.broken)
		abort();
	if (!bw_feed_is_gzip((const char *)data, size))
		return 0;
	size_t len;
	char *text = inflate_one(data, size, &len);
	if (!text)
		return 0;
	/* a gzip stream that zlib alone takes whole: the same as the text it holds (unless
	 * that text is itself gzip: inflated once only) */
	memset(&plain_rep, 0, sizeof(plain_rep));
	if (bw_parse_feed(&fc, text, len, digest_rule, &pd, &plain_rep) != 0)
		abort();
	if (!bw_feed_is_gzip(text, len)) {
		if (rep.broken != plain_rep.broken || d.n != pd.n || d.sum != pd.sum ||
		    rep.units != plain_rep.units || rep.rules != plain_rep.rules ||
		    rep.bad != plain_rep.bad || rep.skipped != plain_rep.skipped)
			abort();
	}
	free(text);
	return 0;
}
