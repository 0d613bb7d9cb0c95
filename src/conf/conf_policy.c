/*
 * conf/conf_policy.c - the `policy:` section: the feed list (each item is conf_feeds.c),
 * the allowlist, the watch and compaction settings, and the profiles (which feeds and
 * categories apply to which clients). default-profile and listeners' profile names are
 * checked once the whole document is read (conf.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "conf/internal.h"

/*
 * A list of allowlist names into *out / *n (lower-cased, no trailing dot). `owner` starts
 * messages: "" for policy.allowlist, "profile 'x': " for a profile's.
 */
static bool in_strv(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i], s))
			return true;
	}
	return false;
}

/* A profile's `feeds:`: all, none, or a list of names from policy.feeds. */
static int parse_profile_feeds(struct cf_ctx *c, yaml_node_t *n, struct bw_profile_conf *p)
{
	const struct bw_conf *conf = c->conf;
	int rc;

	if (n->type == YAML_SCALAR_NODE) {
		const char *s;
		if ((rc = cf_want_scalar(c, n, "feeds", &s)))
			return rc;
		if (!strcmp(s, "all")) {
			p->all_feeds = true;
			return 0;
		}
		if (!strcmp(s, "none"))
			return 0;
		return cf_fail_at(c, n, BW_EINVAL,
			       "profile '%s': 'feeds' must be all, none or a list of feed names, "
			       "found '%s'",
			       p->name, s);
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return cf_fail_at(c, n, BW_EINVAL,
			       "profile '%s': 'feeds' must be all, none or a list of feed names, "
			       "found %s",
			       p->name, cf_type_name(n->type));
	size_t count = cf_seq_len(n);
	if (!count)
		return 0;
	p->feeds = calloc(count, sizeof(char *));
	if (!p->feeds)
		return cf_nomem(c);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *v = cf_seq_item(c, n, i);
		const char *s;
		bool known = false;

		if ((rc = cf_want_scalar(c, v, "feeds", &s)))
			return rc;
		for (size_t j = 0; j < conf->policy.n_feeds && !known; j++)
			known = !strcmp(conf->policy.feeds[j].name, s);
		if (!known)
			return cf_fail_at(c, v, BW_EINVAL,
				       "profile '%s': unknown feed '%s' (not in policy.feeds)",
				       p->name, s);
		if (in_strv(p->feeds, p->n_feeds, s))
			return cf_fail_at(c, v, BW_EINVAL, "profile '%s': feed '%s' is listed twice",
				       p->name, s);
		if (!(p->feeds[i] = strdup(s)))
			return cf_nomem(c);
		p->n_feeds = i + 1;
	}
	return 0;
}

/* A profile's `categories:`. A category no feed has is fine (a feed may come later). */
static int parse_profile_categories(struct cf_ctx *c, yaml_node_t *n, struct bw_profile_conf *p)
{
	int rc;

	if ((rc = cf_want_type(c, n, YAML_SEQUENCE_NODE, "categories")))
		return rc;
	size_t count = cf_seq_len(n);
	if (!count)
		return 0;
	p->categories = calloc(count, sizeof(char *));
	if (!p->categories)
		return cf_nomem(c);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *v = cf_seq_item(c, n, i);
		const char *s;

		if ((rc = cf_want_scalar(c, v, "categories", &s)))
			return rc;
		if (!cf_ident_ok(s))
			return cf_fail_at(
			    c, v, BW_EINVAL,
			    "profile '%s': category '%s' must be 1 to %d characters from "
			    "A-Z a-z 0-9 _ . -",
			    p->name, s, NAME_MAX_LEN);
		if (in_strv(p->categories, p->n_categories, s))
			return cf_fail_at(c, v, BW_EINVAL,
				       "profile '%s': category '%s' is listed twice", p->name, s);
		if (!(p->categories[i] = strdup(s)))
			return cf_nomem(c);
		p->n_categories = i + 1;
	}
	return 0;
}

static int parse_profile_clients(struct cf_ctx *c, yaml_node_t *n, struct bw_profile_conf *p)
{
	int rc;

	if ((rc = cf_want_type(c, n, YAML_SEQUENCE_NODE, "clients")))
		return rc;
	size_t count = cf_seq_len(n);
	if (!count)
		return 0;
	p->clients = calloc(count, sizeof(*p->clients));
	if (!p->clients)
		return cf_nomem(c);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *v = cf_seq_item(c, n, i);
		const char *s;

		if ((rc = cf_want_scalar(c, v, "clients", &s)))
			return rc;
		if (cf_parse_cidr(s, &p->clients[i]))
			return cf_fail_at(c, v, BW_EINVAL,
				       "profile '%s': invalid client network '%s' (expected an "
				       "address or address/prefix-length, e.g. 192.168.0.0/16 or "
				       "fc00::/7)",
				       p->name, s);
		p->n_clients = i + 1;
	}
	return 0;
}

static int parse_profile(struct cf_ctx *c, yaml_node_t *m, struct bw_profile_conf *p)
{
	static const char *const keys[] = {"name",	"feeds",   "categories",
					   "allowlist", "clients", NULL};
	const char *where = "policy.profiles item";
	char owner[NAME_MAX_LEN + 16];
	yaml_node_t *v, *feeds, *cats;
	int rc;

	if (m->type != YAML_MAPPING_NODE)
		return cf_fail_at(c, m, BW_EINVAL,
			       "expected a mapping for each item of 'profiles', found %s",
			       cf_type_name(m->type));
	if ((rc = cf_check_keys(c, m, where, keys)))
		return rc;
	if ((rc = cf_need(c, m, "name", where, &v)) || (rc = cf_get_string(c, v, "name", &p->name)))
		return rc;
	if (!cf_ident_ok(p->name))
		return cf_fail_at(
		    c, v, BW_EINVAL,
		    "profile name '%s' must be 1 to %d characters from A-Z a-z 0-9 _ . -", p->name,
		    NAME_MAX_LEN);
	feeds = cf_get(c, m, "feeds");
	cats = cf_get(c, m, "categories");
	if (feeds && (rc = parse_profile_feeds(c, feeds, p)))
		return rc;
	if (cats && (rc = parse_profile_categories(c, cats, p)))
		return rc;
	if (cats && p->all_feeds)
		return cf_fail_at(c, cats, BW_EINVAL,
			       "profile '%s': 'categories' has no effect with 'feeds: all'",
			       p->name);
	if (!feeds && !cats)
		p->all_feeds = true;
	snprintf(owner, sizeof(owner), "profile '%s': ", p->name);
	if ((v = cf_get(c, m, "allowlist")) &&
	    (rc = cf_parse_names(c, v, owner, &p->allowlist, &p->n_allowlist)))
		return rc;
	if ((v = cf_get(c, m, "clients")) && (rc = parse_profile_clients(c, v, p)))
		return rc;
	return 0;
}

static int parse_profiles(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "profiles")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return cf_fail_at(c, seq, BW_EINVAL, "'profiles' must name at least one profile");
	conf->policy.profiles = calloc(n, sizeof(*conf->policy.profiles));
	if (!conf->policy.profiles)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = cf_seq_item(c, seq, i);
		struct bw_profile_conf *p = &conf->policy.profiles[i];
		conf->policy.n_profiles = i + 1;
		if ((rc = parse_profile(c, item, p)))
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(conf->policy.profiles[j].name, p->name))
				return cf_fail_at(c, item, BW_EINVAL, "duplicate profile name '%s'",
					       p->name);
		}
	}
	return 0;
}

int cf_parse_policy(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"feeds",	      "allowlist",	 "watch-interval",
					   "compact-after", "profiles",	 "default-profile",
					   NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_check_keys(c, m, "policy", keys)))
		return rc;
	/* Feeds first: profiles name them, wherever the keys are written. */
	if ((v = cf_get(c, m, "feeds")) && (rc = cf_parse_feeds(c, v)))
		return rc;
	if ((v = cf_get(c, m, "allowlist")) &&
	    (rc = cf_parse_names(c, v, "", &conf->policy.allowlist, &conf->policy.n_allowlist)))
		return rc;
	if ((v = cf_get(c, m, "watch-interval")) &&
	    (rc = cf_get_duration_ms32(c, v, "watch-interval", 0, 86400000, &conf->policy.watch_ms)))
		return rc;
	if ((v = cf_get(c, m, "compact-after")) &&
	    (rc = cf_get_unsigned(c, v, "compact-after", 1, 1ul << 30, &conf->policy.compact_after)))
		return rc;
	if ((v = cf_get(c, m, "profiles")) && (rc = parse_profiles(c, v)))
		return rc;
	if ((v = cf_get(c, m, "default-profile"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "default-profile", &s)))
			return rc;
		c->default_profile = v; /* checked once the profiles are complete */
	}
	return 0;
}
