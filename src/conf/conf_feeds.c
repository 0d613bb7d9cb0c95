/*
 * conf/conf_feeds.c - the items of `policy.feeds`: every key of a feed item is listed and
 * parsed here: name, category, format, action and redirect, the source (`file:`, or
 * `url:`, `taxii:`, `primaries:` instead), the refresh schedule and the safety guards
 * (docs/feeds.md). A fetched feed's `file` becomes its last good copy,
 * state-dir/feeds/NAME.EXT, once state-dir is known (cf_feeds_finish()).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/internal.h"

#define DEF_REFRESH_MS (3600u * 1000u)
#define DEF_TIMEOUT_MS (60u * 1000u)
#define DEF_MAX_SIZE ((uint64_t)256 << 20)
#define DEF_MAX_ENTRIES 10000000ull
#define DEF_MAX_BAD_RATIO 0.5
#define DEF_MIN_BAD 10u
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

/* "192.0.2.1", "192.0.2.1@5353", "2001:db8::1", "[2001:db8::1]:53" is not accepted:
 * the port goes after '@' as for resolver.forward. */
static int parse_primaries(struct cf_ctx *c, yaml_node_t *seq, struct bw_feed_conf *f)
{
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "primaries")))
		return rc;
	size_t n = cf_seq_len(seq);
	if (!n || n > 16)
		return cf_fail_at(c, seq, BW_EINVAL, "feed '%s': 'primaries' lists 1 to 16 "
				  "addresses", f->name);
	if (!(f->primaries = calloc(n, sizeof(*f->primaries))))
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = cf_seq_item(c, seq, i);
		const char *s;
		if ((rc = cf_want_scalar(c, it, "primaries item", &s)))
			return rc;
		char addr[INET6_ADDRSTRLEN + 1];
		const char *at = strchr(s, '@');
		size_t alen = at ? (size_t)(at - s) : strlen(s);
		unsigned long port = 53;
		const char *end;
		if (alen >= sizeof(addr) ||
		    (at && (!cf_parse_ulong(at + 1, &port, &end) || *end || !port || port > 65535)))
			goto bad;
		memcpy(addr, s, alen);
		addr[alen] = '\0';
		socklen_t len;
		if (cf_make_sockaddr(addr, (uint16_t)port, &f->primaries[i], &len))
			goto bad;
		f->n_primaries = i + 1;
		continue;
bad:
		return cf_fail_at(c, it, BW_EINVAL, "feed '%s': primary '%s' is not an IP address "
				  "with an optional @port (192.0.2.1@53)", f->name, s);
	}
	return 0;
}

static int parse_tsig(struct cf_ctx *c, yaml_node_t *m, struct bw_feed_conf *f)
{
	static const char *const keys[] = {"name", "algorithm", "secret", NULL};
	static const char *const algs[] = {"hmac-sha1", "hmac-sha256", "hmac-sha512", NULL};
	yaml_node_t *v;
	int rc, idx;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "tsig")) ||
	    (rc = cf_check_keys(c, m, "tsig", keys)))
		return rc;
	if ((rc = cf_need(c, m, "name", "tsig", &v)) ||
	    (rc = cf_get_string(c, v, "name", &f->tsig_name)))
		return rc;
	const char *why = cf_name_problem(f->tsig_name);
	if (why)
		return cf_fail_at(c, v, BW_EINVAL, "tsig key name '%s' %s", f->tsig_name, why);
	f->tsig_alg = strdup("hmac-sha256");
	if (!f->tsig_alg)
		return cf_nomem(c);
	if ((v = cf_get(c, m, "algorithm"))) {
		if ((rc = cf_get_enum(c, v, "algorithm", algs, &idx)))
			return rc;
		free(f->tsig_alg);
		if (!(f->tsig_alg = strdup(algs[idx])))
			return cf_nomem(c);
	}
	if ((rc = cf_need(c, m, "secret", "tsig", &v)) ||
	    (rc = cf_get_string(c, v, "secret", &f->tsig_secret)))
		return rc;
	size_t len = strlen(f->tsig_secret), pad = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = f->tsig_secret[i];
		bool b64 = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			   (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
		if (ch == '=' && i + 2 >= len)
			pad++;
		else if (!b64 || pad)
			return cf_fail_at(c, v, BW_EINVAL, "tsig 'secret' must be base64 (as "
					  "keymgr/tsig-keygen print it)");
	}
	if (len < 4 || len % 4)
		return cf_fail_at(c, v, BW_EINVAL, "tsig 'secret' must be base64 (as "
				  "keymgr/tsig-keygen print it)");
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

/* A per-feed ratio key from 0 to 1 (min-ratio, max-bad-ratio); *out stays when absent. */
static int get_ratio(struct cf_ctx *c, yaml_node_t *m, const char *key, const char *zero_one,
		     double *out)
{
	yaml_node_t *v = cf_get(c, m, key);
	const char *s;
	char *end;
	int rc;

	if (!v)
		return 0;
	if ((rc = cf_want_scalar(c, v, key, &s)))
		return rc;
	double r = strtod(s, &end);
	if (end == s || *end || !(r >= 0 && r <= 1))
		return cf_fail_at(c, v, BW_EINVAL, "'%s' must be a number from 0 to 1 (%s), "
				  "found '%s'", key, zero_one, s);
	*out = r;
	return 0;
}

/* `primaries:` (RPZ by zone transfer) with its `zone` and `tsig`. */
static int parse_xfr_source(struct cf_ctx *c, yaml_node_t *m, yaml_node_t *prim,
			    struct bw_feed_conf *f)
{
	yaml_node_t *v;
	int rc;

	f->source = BW_FEED_SRC_XFR;
	if (f->format != BW_FEED_RPZ)
		return cf_fail_at(c, prim, BW_EINVAL, "feed '%s': a feed with 'primaries' "
				  "has 'format: rpz'", f->name);
	if ((rc = parse_primaries(c, prim, f)))
		return rc;
	if ((rc = cf_need(c, m, "zone", "policy.feeds item with 'primaries'", &v)) ||
	    (rc = cf_get_string(c, v, "zone", &f->zone)))
		return rc;
	size_t zl = strlen(f->zone);
	if (zl > 1 && f->zone[zl - 1] == '.')
		f->zone[zl - 1] = '\0';
	const char *why = cf_name_problem(f->zone);
	if (why)
		return cf_fail_at(c, v, BW_EINVAL, "feed '%s': zone '%s' %s", f->name,
				  f->zone, why);
	if ((v = cf_get(c, m, "tsig")) && (rc = parse_tsig(c, v, f)))
		return rc;
	f->refresh_ms = 60u * 1000u; /* until the zone's SOA says otherwise */
	f->timeout_ms = 10u * 1000u;
	return 0;
}

/* The keys of fetched feeds only: refresh, timeout, max-size, max-entries, expire,
 * when-expired, ca-file. */
static int parse_fetched_keys(struct cf_ctx *c, yaml_node_t *m, struct bw_feed_conf *f)
{
	static const char *const when[] = {"keep-blocking", "stop", NULL};
	yaml_node_t *v;
	int rc;

	if ((v = cf_get(c, m, "refresh"))) {
		if ((rc = cf_get_duration_ms32(c, v, "refresh", 1000, 7ull * 86400 * 1000,
					       &f->refresh_ms)))
			return rc;
		f->refresh_given = true;
	}
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
	if ((v = cf_get(c, m, "expire"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "expire", &s)))
			return rc;
		f->expire_given = true;
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
	return 0;
}

/* A feed item's source keys (url, taxii, primaries, refresh, health and shrink guards),
 * after its `file` (file_node: the `file` value or NULL). */
static int parse_feed_source(struct cf_ctx *c, yaml_node_t *m, yaml_node_t *file_node,
			     struct bw_feed_conf *f)
{
	yaml_node_t *url = cf_get(c, m, "url"), *taxii = cf_get(c, m, "taxii"), *v;
	yaml_node_t *prim = cf_get(c, m, "primaries");
	int rc, n = !!file_node + !!url + !!taxii + !!prim;

	f->refresh_ms = DEF_REFRESH_MS;
	f->timeout_ms = DEF_TIMEOUT_MS;
	f->max_size = DEF_MAX_SIZE;
	f->max_entries = DEF_MAX_ENTRIES;
	f->min_ratio = 0.5;
	f->max_bad_ratio = DEF_MAX_BAD_RATIO;
	f->min_bad = DEF_MIN_BAD;
	f->expire_ms = DEF_EXPIRE_MS;
	if (n != 1)
		return cf_fail_at(c, m, BW_EINVAL, "feed '%s': give exactly one of 'file', 'url', "
				  "'taxii' or 'primaries'", f->name);
	static const char *const xfr_only[] = {"zone", "tsig", NULL};
	for (size_t i = 0; !prim && xfr_only[i]; i++) {
		if ((v = cf_get(c, m, xfr_only[i])))
			return cf_fail_at(c, v, BW_EINVAL, "feed '%s': '%s' is for feeds with "
					  "'primaries' (RPZ by zone transfer)", f->name, xfr_only[i]);
	}
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
	} else if (prim && (rc = parse_xfr_source(c, m, prim, f))) {
		return rc;
	}
	/* feed health and the shrink guard: every feed (docs/feeds.md, "Feed health") */
	if ((rc = get_ratio(c, m, "min-ratio", "0 = never hold back", &f->min_ratio)) ||
	    (rc = get_ratio(c, m, "max-bad-ratio", "1 = never fail for bad units",
			    &f->max_bad_ratio)))
		return rc;
	if ((v = cf_get(c, m, "min-bad"))) {
		unsigned long n_bad;
		if ((rc = cf_get_uint(c, v, "min-bad", 1, 1000000000ul, &n_bad)))
			return rc;
		f->min_bad = n_bad;
	}
	/* the keys below only make sense for fetched feeds */
	static const char *const fetched[] = {"refresh", "timeout", "max-size", "max-entries",
					      "expire", "when-expired", "ca-file", NULL};
	if (f->source == BW_FEED_SRC_FILE) {
		for (size_t i = 0; fetched[i]; i++) {
			if ((v = cf_get(c, m, fetched[i])))
				return cf_fail_at(c, v, BW_EINVAL, "feed '%s': '%s' is for fetched "
						  "feeds ('url', 'taxii', 'primaries')", f->name,
						  fetched[i]);
		}
		return 0;
	}
	if ((rc = parse_fetched_keys(c, m, f)))
		return rc;
	if (f->source == BW_FEED_SRC_URL && (rc = parse_auth(c, m, f)))
		return rc;
	return 0;
}

/* Is the last label all digits? Then s was meant as an IPv4 address, not a host name. */
static bool numeric_tld(const char *s)
{
	size_t len = strlen(s);

	if (len && s[len - 1] == '.')
		len--;
	size_t start = len;
	while (start && s[start - 1] != '.')
		start--;
	if (start == len)
		return false;
	for (size_t i = start; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* One item of a feed's `redirect:` (an address or a name), merged into f. */
static int parse_redirect_item(struct cf_ctx *c, yaml_node_t *n, struct bw_feed_conf *f)
{
	const char *s, *why;
	uint8_t a[16];
	int rc = cf_want_scalar(c, n, "redirect", &s);

	if (rc)
		return rc;
	int family = inet_pton(AF_INET, s, a) == 1    ? AF_INET
		     : inet_pton(AF_INET6, s, a) == 1 ? AF_INET6
						      : 0;
	if (family && f->redirect_name)
		goto mixed;
	if (family == AF_INET) {
		if (f->redirect_has_v4)
			return cf_fail_at(c, n, BW_EINVAL,
				       "feed '%s': 'redirect' has more than one IPv4 address",
				       f->name);
		memcpy(f->redirect_v4, a, 4);
		f->redirect_has_v4 = true;
		return 0;
	}
	if (family == AF_INET6) {
		if (f->redirect_has_v6)
			return cf_fail_at(c, n, BW_EINVAL,
				       "feed '%s': 'redirect' has more than one IPv6 address",
				       f->name);
		memcpy(f->redirect_v6, a, 16);
		f->redirect_has_v6 = true;
		return 0;
	}
	if (strchr(s, ':'))
		return cf_fail_at(c, n, BW_EINVAL,
			       "feed '%s': redirect '%s' is not a valid IPv6 address", f->name, s);
	if (numeric_tld(s))
		return cf_fail_at(c, n, BW_EINVAL,
			       "feed '%s': redirect '%s' is not a valid IPv4 address", f->name, s);
	if ((why = cf_name_problem(s)))
		return cf_fail_at(c, n, BW_EINVAL, "feed '%s': redirect name '%s' %s", f->name, s,
			       why);
	if (f->redirect_name)
		return cf_fail_at(c, n, BW_EINVAL, "feed '%s': 'redirect' has more than one name",
			       f->name);
	if (f->redirect_has_v4 || f->redirect_has_v6)
		goto mixed;
	f->redirect_name = cf_canon_name(s);
	return f->redirect_name ? 0 : cf_nomem(c);
mixed:
	return cf_fail_at(c, n, BW_EINVAL,
		       "feed '%s': 'redirect' is either one name or addresses (at most one IPv4 "
		       "and one IPv6), not both",
		       f->name);
}

/* `redirect:` - one scalar or a list of them. */
static int parse_redirect(struct cf_ctx *c, yaml_node_t *n, struct bw_feed_conf *f)
{
	int rc;

	if (n->type == YAML_SCALAR_NODE)
		return parse_redirect_item(c, n, f);
	if (n->type != YAML_SEQUENCE_NODE)
		return cf_fail_at(c, n, BW_EINVAL,
			       "expected an address, a name or a list of them for 'redirect', "
			       "found %s",
			       cf_type_name(n->type));
	if (!cf_seq_len(n))
		return cf_fail_at(c, n, BW_EINVAL, "feed '%s': 'redirect' lists no address or name",
			       f->name);
	for (size_t i = 0; i < cf_seq_len(n); i++) {
		if ((rc = parse_redirect_item(c, cf_seq_item(c, n, i), f)))
			return rc;
	}
	return 0;
}

static int parse_feed(struct cf_ctx *c, yaml_node_t *m, struct bw_feed_conf *f)
{
	static const char *const keys[] = {"name",   "category", "format", "file",
					   "action", "redirect",
					   "url", "taxii", "refresh", "timeout", "max-size",
					   "max-entries", "min-ratio", "expire", "when-expired",
					   "ca-file", "username", "password", "token-file",
					   "primaries", "zone", "tsig", "misp-include-non-ids",
					   "max-bad-ratio", "min-bad", NULL};
	/* In the order of enum bw_feed_format and enum bw_feed_action. */
	static const char *const formats[] = {"domains", "hosts", "wildcard", "adblock",
					      "rpz",	 "stix",  "misp",     NULL};
	static const char *const actions[] = {"given",	  "nxdomain", "nodata", "drop",
					      "log-only", "redirect", NULL};
	const char *where = "policy.feeds item";
	char what[NAME_MAX_LEN + 16];
	yaml_node_t *v, *act, *redir;
	int rc;

	if (m->type != YAML_MAPPING_NODE)
		return cf_fail_at(c, m, BW_EINVAL,
			       "expected a mapping for each item of 'feeds', "
			       "found %s",
			       cf_type_name(m->type));
	if ((rc = cf_check_keys(c, m, where, keys)))
		return rc;
	if ((rc = cf_need(c, m, "name", where, &v)) || (rc = cf_get_string(c, v, "name", &f->name)))
		return rc;
	if (!cf_ident_ok(f->name))
		return cf_fail_at(c, v, BW_EINVAL,
			       "feed name '%s' must be 1 to %d characters from "
			       "A-Z a-z 0-9 _ . -",
			       f->name, NAME_MAX_LEN);
	if ((rc = cf_need(c, m, "category", where, &v)) ||
	    (rc = cf_get_string(c, v, "category", &f->category)))
		return rc;
	if (!cf_ident_ok(f->category))
		return cf_fail_at(c, v, BW_EINVAL,
			       "feed '%s': category '%s' must be 1 to %d "
			       "characters from A-Z a-z 0-9 _ . -",
			       f->name, f->category, NAME_MAX_LEN);
	if ((v = cf_get(c, m, "format"))) {
		const char *s;
		int idx;
		if ((rc = cf_want_scalar(c, v, "format", &s)))
			return rc;
		if (cf_get_enum(c, v, "format", formats, &idx))
			return cf_fail_at(c, v, BW_ENOTSUP,
				       "feed '%s': format '%s' is not supported (supported: "
				       "domains, hosts, wildcard, adblock, rpz, stix, misp)",
				       f->name, s);
		f->format = (enum bw_feed_format)idx;
	}
	if ((v = cf_get(c, m, "misp-include-non-ids"))) {
		if (f->format != BW_FEED_MISP)
			return cf_fail_at(c, v, BW_EINVAL, "feed '%s': 'misp-include-non-ids' is "
					  "for 'format: misp'", f->name);
		if ((rc = cf_get_bool(c, v, "misp-include-non-ids", &f->misp_non_ids)))
			return rc;
	}
	snprintf(what, sizeof(what), "feed '%s'", f->name);
	if ((v = cf_get(c, m, "file")) && (rc = cf_get_file(c, v, "file", what, &f->file)))
		return rc;
	if ((rc = parse_feed_source(c, m, v, f)))
		return rc;
	if ((act = cf_get(c, m, "action"))) {
		int idx;
		if ((rc = cf_get_enum(c, act, "action", actions, &idx)))
			return rc;
		f->action = (enum bw_feed_action)idx;
	}
	redir = cf_get(c, m, "redirect");
	if (redir && f->action != BW_FEED_ACT_REDIRECT)
		return cf_fail_at(c, redir, BW_EINVAL,
			       "feed '%s': 'redirect' is only used with 'action: redirect'",
			       f->name);
	if (!redir && f->action == BW_FEED_ACT_REDIRECT)
		return cf_fail_at(c, act, BW_EINVAL,
			       "feed '%s': 'action: redirect' needs 'redirect' (an IPv4 and/or "
			       "IPv6 address, or a name)",
			       f->name);
	if (redir && (rc = parse_redirect(c, redir, f)))
		return rc;
	return 0;
}

int cf_parse_feeds(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "feeds")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return 0;
	conf->policy.feeds = calloc(n, sizeof(*conf->policy.feeds));
	if (!conf->policy.feeds)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = cf_seq_item(c, seq, i);
		struct bw_feed_conf *f = &conf->policy.feeds[i];
		conf->policy.n_feeds = i + 1;
		if ((rc = parse_feed(c, item, f)))
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(conf->policy.feeds[j].name, f->name))
				return cf_fail_at(c, item, BW_EINVAL, "duplicate feed name '%s'",
					       f->name);
		}
	}
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

void cf_free_feed(struct bw_feed_conf *f)
{
	free(f->name);
	free(f->category);
	free(f->file);
	free(f->redirect_name);
	free(f->url);
	free(f->taxii_collection);
	free(f->username);
	free(f->password);
	free(f->token_file);
	free(f->ca_file);
	free(f->zone);
	free(f->primaries);
	free(f->tsig_name);
	free(f->tsig_alg);
	if (f->tsig_secret)
		memset(f->tsig_secret, 0, strlen(f->tsig_secret));
	free(f->tsig_secret);
}
