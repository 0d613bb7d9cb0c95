/*
 * conf/conf_cache.c - the `cache:` section: size, shards, TTL bounds and serve-stale.
 */
#include "conf/internal.h"

int cf_parse_cache(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {
	    "size", "shards", "min-ttl", "max-ttl", "max-negative-ttl", "serve-stale", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_check_keys(c, m, "cache", keys)))
		return rc;
	if ((v = cf_get(c, m, "size"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "size", &s)))
			return rc;
		rc = bw_parse_size(s, &conf->cache.size);
		if (rc)
			return cf_fail_at(c, v, rc,
				       "expected a size for 'size' (a number of bytes "
				       "with K, M or G, e.g. 256M), found '%s'",
				       s);
		if (conf->cache.size < (1u << 20))
			return cf_fail_at(c, v, BW_ERANGE,
				       "cache 'size' must be at least 1M, found %s", s);
	}
	if ((v = cf_get(c, m, "shards"))) {
		if ((rc = cf_get_auto_uint(c, v, "shards", 1, 1024, &conf->cache.shards)))
			return rc;
		unsigned sh = conf->cache.shards;
		if (sh & (sh - 1))
			return cf_fail_at(
			    c, v, BW_EINVAL,
			    "'shards' must be a power of two (1, 2, 4 ... 1024), found %u", sh);
	}
	if ((v = cf_get(c, m, "min-ttl")) &&
	    (rc = cf_get_duration_sec(c, v, "min-ttl", &conf->cache.min_ttl)))
		return rc;
	if ((v = cf_get(c, m, "max-ttl")) &&
	    (rc = cf_get_duration_sec(c, v, "max-ttl", &conf->cache.max_ttl)))
		return rc;
	if ((v = cf_get(c, m, "max-negative-ttl")) &&
	    (rc = cf_get_duration_sec(c, v, "max-negative-ttl", &conf->cache.max_neg_ttl)))
		return rc;
	if ((v = cf_get(c, m, "serve-stale")) &&
	    (rc = cf_get_duration_sec(c, v, "serve-stale", &conf->cache.stale_ttl)))
		return rc;
	if (conf->cache.min_ttl > conf->cache.max_ttl)
		return cf_fail_at(c, m, BW_EINVAL,
			       "cache 'min-ttl' (%us) is larger than 'max-ttl' (%us)",
			       (unsigned)conf->cache.min_ttl, (unsigned)conf->cache.max_ttl);
	return 0;
}
