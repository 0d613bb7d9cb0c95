/*
 * conf/conf_guard.c - the `guard:` section: protected domains whose look-alikes are
 * flagged, and the newly-seen domain memory (docs/config.md, docs/guard.md).
 * Parsed after `policy:` (section table order) so that profile names resolve.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/internal.h"

static const char *const nseen_actions[] = {"log", "short-ttl", "block", NULL};

void cf_guard_defaults(struct bw_conf *conf)
{
	conf->guard.min_length = 5;
	conf->guard.nseen_window_ms = 86400ULL * 1000;
	conf->guard.nseen_memory = 1000000;
	conf->guard.nseen_action = BW_NSEEN_LOG;
	conf->guard.nseen_ttl = 60;
	/* NULL with popular_default: no memory, a failed load (fill_default_lists), never the
	 * safety net silently off */
	conf->guard.popular = strdup(BW_GUARD_POPULAR_DEFAULT);
	conf->guard.popular_default = true;
}

void cf_free_guard(struct bw_conf *conf)
{
	for (size_t i = 0; i < conf->guard.n_protected; i++) {
		struct bw_guard_domain_conf *d = &conf->guard.protected[i];
		free(d->domain);
		for (size_t k = 0; k < d->n_owns; k++)
			free(d->owns[k]);
		free(d->owns);
		free(d->owns_file);
	}
	free(conf->guard.protected);
	free(conf->guard.popular);
	free(conf->guard.nseen_profile_action);
}

/* A domain name as the guard takes it: lower-cased, with a suffix. where: the place it
 * was read from for messages ("guard.protected", "guard.protected owns-file F:12"). */
static int guard_name(struct cf_ctx *c, yaml_node_t *v, const char *where, const char *s,
		      char **out)
{
	const char *problem = cf_name_problem(s);
	if (problem)
		return cf_fail_at(c, v, BW_EINVAL, "%s: '%s' %s", where, s, problem);
	if (!strchr(s, '.'))
		return cf_fail_at(c, v, BW_EINVAL,
				  "%s: '%s' is not a domain (a name with a suffix, like example.org)",
				  where, s);
	if (!(*out = strdup(s)))
		return cf_nomem(c);
	for (char *p = *out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t n = strlen(*out);
	if (n && (*out)[n - 1] == '.')
		(*out)[n - 1] = 0;
	if (!bw_registrable_domain(*out)) {
		free(*out);
		*out = NULL;
		return cf_fail_at(c, v, BW_EINVAL,
				  "%s: '%s' is a public suffix: it has no registrable domain%s",
				  where, s, strchr(where, ' ') ? "" : " to protect");
	}
	return 0;
}

static int guard_domain(struct cf_ctx *c, yaml_node_t *v, const char *key, char **out)
{
	const char *s;
	int rc;
	if ((rc = cf_want_scalar(c, v, key, &s)))
		return rc;
	return guard_name(c, v, "guard.protected", s, out);
}

#define OWNS_FILE_MAX 100000 /* names in one owns-file */

/* owns-file: one domain a line, '#' comments: appended to d->owns. */
static int read_owns_file(struct cf_ctx *c, yaml_node_t *v, struct bw_guard_domain_conf *d)
{
	char line[512], where[600];
	unsigned long lineno = 0;
	size_t cap = d->n_owns;
	int rc = 0;
	FILE *f = fopen(d->owns_file, "re");
	if (!f)
		return cf_fail_at(c, v, errno == ENOENT ? BW_ENOENT : BW_EIO,
				  "guard.protected owns-file: cannot read '%s': %s", d->owns_file,
				  strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = line + strspn(line, " \t");
		s[strcspn(s, " \t\r\n#")] = 0;
		if (!*s)
			continue;
		snprintf(where, sizeof(where), "guard.protected owns-file %s:%lu", d->owns_file,
			 lineno);
		if (d->n_owns >= OWNS_FILE_MAX) {
			rc = cf_fail_at(c, v, BW_EINVAL, "%s: more than %d names", where,
					OWNS_FILE_MAX);
			break;
		}
		if (d->n_owns == cap) {
			cap = cap ? cap * 2 : 64;
			char **no = realloc(d->owns, cap * sizeof(*no));
			if (!no) {
				rc = cf_nomem(c);
				break;
			}
			d->owns = no;
		}
		if ((rc = guard_name(c, v, where, s, &d->owns[d->n_owns])))
			break;
		d->n_owns++;
	}
	fclose(f);
	return rc;
}

/* A protected domain: "amnesty.org" (blocked look-alikes) or
 * {domain: X, action: alert, owns: [other domains], tld-swap: false}. */
static int parse_protected_item(struct cf_ctx *c, yaml_node_t *n, struct bw_guard_domain_conf *d)
{
	static const char *const keys[] = {"domain", "action", "owns", "owns-file", "tld-swap",
					   NULL};
	static const char *const actions[] = {"block", "alert", NULL};
	yaml_node_t *v = n;
	int rc;

	d->tld_swap = true;
	if (n->type == YAML_MAPPING_NODE) {
		if ((rc = cf_check_keys(c, n, "guard.protected item", keys)) ||
		    (rc = cf_need(c, n, "domain", "guard.protected item", &v)))
			return rc;
		yaml_node_t *a = cf_get(c, n, "action");
		if (a && (rc = cf_get_enum(c, a, "action", actions, &d->action)))
			return rc;
		if ((a = cf_get(c, n, "tld-swap")) && (rc = cf_get_bool(c, a, "tld-swap", &d->tld_swap)))
			return rc;
		if ((a = cf_get(c, n, "owns"))) {
			if ((rc = cf_want_type(c, a, YAML_SEQUENCE_NODE, "owns")))
				return rc;
			size_t k = cf_seq_len(a);
			if (k && !(d->owns = calloc(k, sizeof(*d->owns))))
				return cf_nomem(c);
			for (size_t i = 0; i < k; i++) {
				if ((rc = guard_domain(c, cf_seq_item(c, a, i), "owns", &d->owns[i])))
					return rc;
				d->n_owns = i + 1;
			}
		}
		if ((a = cf_get(c, n, "owns-file")) &&
		    ((rc = cf_get_file(c, a, "owns-file", "guard.protected owns-file", &d->owns_file)) ||
		     (rc = read_owns_file(c, a, d))))
			return rc;
	}
	return guard_domain(c, v, "domain", &d->domain);
}

static int parse_protected(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	int rc;
	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "protected")))
		return rc;
	size_t n = cf_seq_len(seq);
	if (!n)
		return 0;
	if (!(conf->guard.protected = calloc(n, sizeof(*conf->guard.protected))))
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		conf->guard.n_protected = i + 1; /* so cf_free_guard() sees what was filled */
		if ((rc = parse_protected_item(c, cf_seq_item(c, seq, i), &conf->guard.protected[i])))
			return rc;
	}
	return 0;
}

/* profiles: { NAME: log | short-ttl | block, ... } */
static int parse_nseen_profiles(struct cf_ctx *c, yaml_node_t *m)
{
	struct bw_conf *conf = c->conf;
	size_t np = conf->policy.n_profiles ? conf->policy.n_profiles : 1;
	int rc;
	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "profiles")))
		return rc;
	if (!(conf->guard.nseen_profile_action = malloc(np * sizeof(int))))
		return cf_nomem(c);
	for (size_t i = 0; i < np; i++)
		conf->guard.nseen_profile_action[i] = -1;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cf_node(c, p->key), *v = cf_node(c, p->value);
		const char *name;
		int act;
		if ((rc = cf_want_scalar(c, k, "profile name", &name)))
			return rc;
		size_t idx = np;
		for (size_t i = 0; i < conf->policy.n_profiles; i++)
			if (strcmp(conf->policy.profiles[i].name, name) == 0)
				idx = i;
		if (!conf->policy.n_profiles && strcmp(name, "default") == 0)
			idx = 0;
		if (idx == np)
			return cf_fail_at(c, k, BW_EINVAL,
					  "guard.newly-seen.profiles: there is no profile '%s'", name);
		if ((rc = cf_get_enum(c, v, name, nseen_actions, &act)))
			return rc;
		conf->guard.nseen_profile_action[idx] = act;
	}
	return 0;
}

static int parse_nseen(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"enabled", "window", "warm-up", "memory", "action",
					   "short-ttl", "profiles", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc, act;
	unsigned long mem;

	if ((rc = cf_check_keys(c, m, "guard.newly-seen", keys)))
		return rc;
	conf->guard.nseen = true; /* a newly-seen section turns it on unless it says not */
	if ((v = cf_get(c, m, "enabled")) && (rc = cf_get_bool(c, v, "enabled", &conf->guard.nseen)))
		return rc;
	if ((v = cf_get(c, m, "window")) &&
	    (rc = cf_get_duration_ms(c, v, "window", 1000, 3650 * 86400000ULL,
				     &conf->guard.nseen_window_ms)))
		return rc;
	if ((v = cf_get(c, m, "warm-up"))) {
		if ((rc = cf_get_duration_ms(c, v, "warm-up", 0, 3650 * 86400000ULL,
					     &conf->guard.nseen_warmup_ms)))
			return rc;
		conf->guard.nseen_warmup_given = true;
	}
	if ((v = cf_get(c, m, "memory"))) {
		if ((rc = cf_get_uint(c, v, "memory", 1024, 1UL << 30, &mem)))
			return rc;
		conf->guard.nseen_memory = (unsigned)mem;
	}
	if ((v = cf_get(c, m, "action"))) {
		if ((rc = cf_get_enum(c, v, "action", nseen_actions, &act)))
			return rc;
		conf->guard.nseen_action = (enum bw_nseen_action)act;
	}
	if ((v = cf_get(c, m, "short-ttl")) &&
	    (rc = cf_get_duration_sec(c, v, "short-ttl", &conf->guard.nseen_ttl)))
		return rc;
	if ((v = cf_get(c, m, "profiles")) && (rc = parse_nseen_profiles(c, v)))
		return rc;
	return 0;
}

int cf_parse_guard(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"protected", "min-length", "newly-seen", "popular",
					   NULL};
	yaml_node_t *v;
	int rc;

	if ((rc = cf_check_keys(c, m, "guard", keys)))
		return rc;
	if ((v = cf_get(c, m, "protected")) && (rc = parse_protected(c, v)))
		return rc;
	if ((v = cf_get(c, m, "min-length")) &&
	    (rc = cf_get_unsigned(c, v, "min-length", 1, 63, &c->conf->guard.min_length)))
		return rc;
	if ((v = cf_get(c, m, "popular")) && !cf_is_null(v)) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "popular", &s)))
			return rc;
		free(c->conf->guard.popular);
		c->conf->guard.popular = NULL;
		c->conf->guard.popular_default = false;
		if (strcmp(s, "none") != 0 &&
		    (rc = cf_get_file(c, v, "popular", "guard", &c->conf->guard.popular)))
			return rc;
	}
	if ((v = cf_get(c, m, "newly-seen"))) {
		if ((rc = cf_want_type(c, v, YAML_MAPPING_NODE, "newly-seen")) ||
		    (rc = parse_nseen(c, v)))
			return rc;
	}
	if (!c->conf->guard.nseen_warmup_given)
		c->conf->guard.nseen_warmup_ms = c->conf->guard.nseen_window_ms;
	return 0;
}
