/*
 * policy/health.c - the feed health rule (rules.h): when the parse of a feed version is a
 * failed load rather than a version to apply, and when a version shrank too far to be
 * applied without an operator's word. Used by the snapshot builder for local files and by
 * the feed manager for fetched versions, so both judge alike.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy/rules.h"

#define DEF_MIN_BAD 10
#define DEF_MAX_BAD_RATIO 0.5

enum bw_feed_health bw_feed_health(const struct bw_feed_conf *fc, uint64_t entries, uint64_t bad,
				   bool broken)
{
	uint64_t min_bad = fc->min_bad ? fc->min_bad : DEF_MIN_BAD;
	double ratio = fc->min_bad ? fc->max_bad_ratio : DEF_MAX_BAD_RATIO;

	if (broken)
		return BW_HEALTH_BROKEN;
	if (entries == 0 && bad > 0)
		return BW_HEALTH_NO_ENTRY;
	if (bad >= min_bad && (double)bad > ratio * (double)(entries + bad))
		return BW_HEALTH_TOO_BAD;
	return BW_HEALTH_OK;
}

void bw_feed_health_why(enum bw_feed_health h, const struct bw_feed_conf *fc, uint64_t entries,
			uint64_t bad, const struct bw_parse_report *rep, char *out, size_t outlen)
{
	char first[200] = "";
	uint64_t min_bad = fc->min_bad ? fc->min_bad : DEF_MIN_BAD;
	double ratio = fc->min_bad ? fc->max_bad_ratio : DEF_MAX_BAD_RATIO;

	/* a broken parse says why last (the gzip layer's reason); otherwise the first bad */
	if (rep && rep->n_errors)
		snprintf(first, sizeof(first), "; %s %s", h == BW_HEALTH_BROKEN ? "at" : "first bad:",
			 rep->first_errors[h == BW_HEALTH_BROKEN ? rep->n_errors - 1 : 0]);
	switch (h) {
	case BW_HEALTH_OK:
		snprintf(out, outlen, "ok");
		break;
	case BW_HEALTH_BROKEN:
		snprintf(out, outlen, "unusable data (corrupt or cut short)%s", first);
		break;
	case BW_HEALTH_NO_ENTRY:
		snprintf(out, outlen, "no usable entry, %llu bad%s", (unsigned long long)bad, first);
		break;
	case BW_HEALTH_TOO_BAD:
		snprintf(out, outlen, "%llu of %llu entries bad (%.0f%%, over max-bad-ratio %.2f; "
			 "min-bad %llu)%s", (unsigned long long)bad,
			 (unsigned long long)(entries + bad),
			 100.0 * (double)bad / (double)(entries + bad), ratio,
			 (unsigned long long)min_bad, first);
		break;
	}
}

bool bw_feed_shrunk(const struct bw_feed_conf *fc, uint64_t entries, uint64_t last)
{
	return last > 0 && fc->min_ratio > 0 && (double)entries < fc->min_ratio * (double)last;
}

static int count_sink(void *ctx, const struct bw_rule *r)
{
	return bw_entry_count_add(ctx, r);
}

int bw_feed_check_file(const struct bw_feed_conf *fc, uint64_t *entries, char *why,
		       size_t whylen)
{
	struct bw_parse_report rep;
	int prc = 0;

	*entries = 0;
	why[0] = '\0';
	if (fc->source != BW_FEED_SRC_FILE && access(fc->file, F_OK) != 0)
		return BW_ENOENT; /* a fetched feed without a last good copy yet */
	struct bw_entry_count *ec = bw_entry_count_new();
	if (!ec)
		return BW_ENOMEM;
	int err = bw_parse_feed_file(fc, count_sink, ec, &rep, NULL, NULL, &prc);
	int sys_errno = errno;
	*entries = bw_entry_count_get(ec);
	bw_entry_count_free(ec);
	if (err == BW_ENOMEM || prc < 0)
		return BW_ENOMEM;
	if (err) {
		snprintf(why, whylen, "cannot read %s: %s", fc->file,
			 err == BW_EIO ? strerror(sys_errno) : bw_strerror(err));
		return BW_EIO;
	}
	enum bw_feed_health h = bw_feed_health(fc, *entries, rep.bad, rep.broken);
	if (h == BW_HEALTH_OK)
		return 0;
	bw_feed_health_why(h, fc, *entries, rep.bad, &rep, why, whylen);
	return BW_EMALFORMED;
}
