/*
 * conf/conf_feeds.c - a feed item's source keys: `url:` or `taxii:` instead of `file:`,
 * the refresh schedule and the safety guards (docs/feeds.md). A URL or TAXII feed's
 * `file` becomes its last good copy, state-dir/feeds/NAME.EXT, once state-dir is known.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conf/internal.h"

#define DEF_REFRESH_MS (3600u * 1000u)
#define DEF_TIMEOUT_MS (60u * 1000u)
#define DEF_MAX_SIZE ((uint64_t)256 << 20)
#define DEF_MAX_ENTRIES 10000000ull
#define DEF_EXPIRE_MS (7ull * 86400 * 1000)

static const char *const format_ext[] = {"txt", "hosts", "txt", "txt", "rpz", "json", "json"};

static int get_url(struct cf_ctx *c, yaml_node_t *v, const char *key, char **out)
{
	int rc = cf_get_string(c, v, key, out);
	if (rc)
		return rc;
	if (strncmp(*out, "http://", 7) && strncmp(*out, "https://", 8))
		return cf_fail_at(c, v, BW_EINVAL, "'%s' must be an http:// or https:// URL, found '%s'",
			       key, *out);
	for (const char *p = *out; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return cf_fail_at(c, v, BW_EINVAL, "'%s' must not contain spaces or control "
				       "characters", key);
	}
	return 0;
}

static int parse_taxii(struct cf_ctx *c, yaml_node_t *m, struct bw_feed_conf *f)
{
	static const char *const keys[] = {"url", "collection", "username", "password",
					   "token-file", NULL};
	yaml_node_t *v;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "taxii")) ||
	    (rc = cf_check_keys(c, m, "taxii", keys)))
		return rc;
	if ((rc = cf_need(c, m, "url", "taxii", &v)) || (rc = get_url(c, v, "url", &f->url)))
		return rc;
	if ((rc = cf_need(c, m, "collection", "taxii", &v)) ||
	    (rc = cf_get_string(c, v, "collection", &f->taxii_collection)))
		return rc;
	for (const char *p = f->taxii_collection; *p; p++) {
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return cf_fail_at(c, v, BW_EINVAL, "taxii 'collection' must be an id of "
				       "A-Z a-z 0-9 - _ . characters, found '%s'",
				       f->taxii_collection);
	}
	return 0;
}

/* username/password/token-file: in the taxii mapping for TAXII, at the item for URLs. */
static int parse_auth(struct cf_ctx *c, yaml_node_t *m, struct bw_feed_conf *f)
{
	yaml_node_t *v, *u = cf_get(c, m, "username"), *pw = cf_get(c, m, "password");
	int rc;

	if (!u != !pw)
		return cf_fail_at(c, u ? u : pw, BW_EINVAL, "feed '%s': 'username' and 'password' "
				  "go together", f->name);
	if (u && ((rc = cf_get_string(c, u, "username", &f->username)) ||
		  (rc = cf_get_string(c, pw, "password", &f->password))))
		return rc;
	if ((v = cf_get(c, m, "token-file"))) {
		if (u)
			return cf_fail_at(c, v, BW_EINVAL, "feed '%s': 'token-file' or 'username' "
				       "and 'password', not both", f->name);
		if ((rc = cf_get_file(c, v, "token-file", "taxii token-file", &f->token_file)))
			return rc;
	}
	return 0;
}

int cf_parse_feed_source(struct cf_ctx *c, yaml_node_t *m, yaml_node_t *file_node,
			 struct bw_feed_conf *f)
{
	static const char *const when[] = {"keep-blocking", "stop", NULL};
	yaml_node_t *url = cf_get(c, m, "url"), *taxii = cf_get(c, m, "taxii"), *v;
	int rc, n = !!file_node + !!url + !!taxii;

	f->refresh_ms = DEF_REFRESH_MS;
	f->timeout_ms = DEF_TIMEOUT_MS;
	f->max_size = DEF_MAX_SIZE;
	f->max_entries = DEF_MAX_ENTRIES;
	f->min_ratio = 0.5;
	f->expire_ms = DEF_EXPIRE_MS;
	if (n != 1)
		return cf_fail_at(c, m, BW_EINVAL, "feed '%s': give exactly one of 'file', 'url' "
				  "or 'taxii'", f->name);
	if (url) {
		f->source = BW_FEED_SRC_URL;
		if ((rc = get_url(c, url, "url", &f->url)))
			return rc;
	} else if (taxii) {
		f->source = BW_FEED_SRC_TAXII;
		if (f->format != BW_FEED_STIX)
			return cf_fail_at(c, taxii, BW_EINVAL, "feed '%s': a 'taxii' feed has "
					  "'format: stix'", f->name);
		if ((rc = parse_taxii(c, taxii, f)) || (rc = parse_auth(c, taxii, f)))
			return rc;
	}
	/* the keys below only make sense for fetched feeds */
	static const char *const fetched[] = {"refresh", "timeout", "max-size", "max-entries",
					      "min-ratio", "expire", "when-expired", "ca-file",
					      NULL};
	if (f->source == BW_FEED_SRC_FILE) {
		for (size_t i = 0; fetched[i]; i++) {
			if ((v = cf_get(c, m, fetched[i])))
				return cf_fail_at(c, v, BW_EINVAL, "feed '%s': '%s' is for 'url' and "
						  "'taxii' feeds", f->name, fetched[i]);
		}
		return 0;
	}
	if ((v = cf_get(c, m, "refresh")) &&
	    (rc = cf_get_duration_ms32(c, v, "refresh", 1000, 7ull * 86400 * 1000, &f->refresh_ms)))
		return rc;
	if ((v = cf_get(c, m, "timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "timeout", 100, 3600ull * 1000, &f->timeout_ms)))
		return rc;
	if ((v = cf_get(c, m, "max-size"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "max-size", &s)))
			return rc;
		if (bw_parse_size(s, &f->max_size) || !f->max_size || f->max_size > ((uint64_t)1 << 30))
			return cf_fail_at(c, v, BW_EINVAL, "expected a size from 1 to 1G for "
					  "'max-size' (bytes, K, M or G), found '%s'", s);
	}
	if ((v = cf_get(c, m, "max-entries"))) {
		unsigned long n_ent;
		if ((rc = cf_get_uint(c, v, "max-entries", 1, 1000000000ul, &n_ent)))
			return rc;
		f->max_entries = n_ent;
	}
	if ((v = cf_get(c, m, "min-ratio"))) {
		const char *s;
		char *end;
		if ((rc = cf_want_scalar(c, v, "min-ratio", &s)))
			return rc;
		double r = strtod(s, &end);
		if (end == s || *end || !(r >= 0 && r <= 1))
			return cf_fail_at(c, v, BW_EINVAL, "'min-ratio' must be a number from 0 to "
					  "1 (0 = never hold back), found '%s'", s);
		f->min_ratio = r;
	}
	if ((v = cf_get(c, m, "expire"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "expire", &s)))
			return rc;
		if (!strcmp(s, "never"))
			f->expire_ms = 0;
		else if ((rc = cf_get_duration_ms(c, v, "expire", 1000, 3650ull * 86400 * 1000,
						  &f->expire_ms)))
			return rc;
	}
	if ((v = cf_get(c, m, "when-expired"))) {
		int idx;
		if ((rc = cf_get_enum(c, v, "when-expired", when, &idx)))
			return rc;
		f->expired_stop = idx == 1;
	}
	if ((v = cf_get(c, m, "ca-file")) &&
	    (rc = cf_get_file(c, v, "ca-file", "feed ca-file", &f->ca_file)))
		return rc;
	if (f->source == BW_FEED_SRC_URL && (rc = parse_auth(c, m, f)))
		return rc;
	return 0;
}

int cf_feeds_finish(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;
	const char *sd = conf->server.state_dir;

	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		struct bw_feed_conf *f = &conf->policy.feeds[i];
		if (f->source == BW_FEED_SRC_FILE || f->file)
			continue;
		size_t n = strlen(sd) + strlen(f->name) + 16;
		if (!(f->file = malloc(n)))
			return cf_nomem(c);
		snprintf(f->file, n, "%s/feeds/%s.%s", sd, f->name, format_ext[f->format]);
	}
	if (!conf->server.control_socket) {
		size_t n = strlen(sd) + 16;
		if (!(conf->server.control_socket = malloc(n)))
			return cf_nomem(c);
		snprintf(conf->server.control_socket, n, "%s/control.sock", sd);
	}
	return 0;
}

void cf_feed_source_free(struct bw_feed_conf *f)
{
	free(f->url);
	free(f->taxii_collection);
	free(f->username);
	free(f->password);
	free(f->token_file);
	free(f->ca_file);
}
