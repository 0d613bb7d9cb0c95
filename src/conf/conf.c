/*
 * conf/conf.c - loads the YAML configuration with libyaml's document API and validates it
 * into struct bw_conf: the top level (the section table, `log:`), the defaults, the
 * checks that need the whole document (profile names), and bw_conf_free().
 *
 * The whole file is composed into a libyaml document first; then each section is walked
 * with a table of known keys, so an unknown, duplicate or mistyped key is reported with the
 * line and column of the node that is wrong. The first error stops the load. The shared
 * helpers (typed scalars, errors) are in yaml.c; every other section parses in a file of
 * its own (conf_<section>.c) that also lists its keys.
 */
#include "conf/conf.h"
#include "conf/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <yaml.h>

/* ---- log ---- */

static int parse_log(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"level", "syslog", NULL};
	static const char *const levels[] = {"error", "warning", "info", "debug", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc, lvl;

	if ((rc = cf_check_keys(c, m, "log", keys)))
		return rc;
	if ((v = cf_get(c, m, "level"))) {
		if ((rc = cf_get_enum(c, v, "level", levels, &lvl)))
			return rc;
		conf->log.level = (enum bw_log_level)lvl;
	}
	if ((v = cf_get(c, m, "syslog")) && (rc = cf_get_bool(c, v, "syslog", &conf->log.syslog)))
		return rc;
	return 0;
}

/* ---- defaults ---- */

static const char *const default_acl[] = {
    "127.0.0.0/8",    "::1/128",	"10.0.0.0/8", "172.16.0.0/12",
    "192.168.0.0/16", "169.254.0.0/16", "fc00::/7",   "fe80::/10",
};

static void set_defaults(struct bw_conf *conf)
{
	conf->server.workers = 0;
	conf->server.tcp_max_conns = 1024;
	conf->server.tcp_client_v4_prefix = 32;
	conf->server.tcp_client_v6_prefix = 64;
	conf->server.tcp_idle_ms = 10000;
	conf->server.tcp_max_inflight = 64;
	conf->server.rl_prefix_v4 = 24;
	conf->server.rl_prefix_v6 = 56;
	conf->server.rl_table = 65536;
	conf->server.rrl_slip = 2;
	conf->server.rrl_table = 65536;
	conf->server.max_inflight = 4096;
	conf->resolver.mode = BW_RESOLVER_RECURSIVE;
	conf->resolver.dnssec = true;
	conf->resolver.qname_minimisation = true;
	conf->resolver.aggressive_nsec = true;
	conf->resolver.prefetch = true;
	conf->resolver.timeout_ms = 5000;
	conf->cache.size = 256ULL << 20;
	conf->cache.shards = 0;
	conf->cache.min_ttl = 0;
	conf->cache.max_ttl = 86400;
	conf->cache.max_neg_ttl = 3600;
	conf->cache.stale_ttl = 86400;
	conf->policy.watch_ms = 2000;
	conf->policy.compact_after = 65536;
	conf->log.level = BW_LOG_INFO;
	conf->log.syslog = false;
	conf->telemetry.privacy = BW_PRIVACY_BLOCKED_ONLY;
	conf->metrics.port = 9153;
	conf->dnstap.log_queries = true;
	conf->dnstap.log_responses = true;
	cf_telemetry_defaults(conf);
	cf_guard_defaults(conf);
	cf_local_defaults(conf);
}

/* The listeners and ACL when the config names none. */
static int fill_default_lists(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;

	if (!conf->server.state_dir && !(conf->server.state_dir = strdup(BW_CONF_DEFAULT_STATE_DIR)))
		return cf_nomem(c);
	if (conf->guard.popular_default && !conf->guard.popular) /* cf_guard_defaults' strdup */
		return cf_nomem(c);
	if (!conf->server.n_listen) {
		struct bw_listen *l = calloc(1, sizeof(*l));
		if (!l)
			return cf_nomem(c);
		conf->server.listen = l;
		conf->server.n_listen = 1;
		l->address = strdup("127.0.0.1");
		if (!l->address)
			return cf_nomem(c);
		l->port = 5353;
		l->transport = BW_TRANSPORT_DNS;
		l->profile = -1;
		bw_require(cf_make_sockaddr(l->address, l->port, &l->addr, &l->addrlen) == 0);
	}
	if (!c->acl_given) {
		size_t n = BW_ARRAY_LEN(default_acl);
		conf->server.acl = calloc(n, sizeof(*conf->server.acl));
		if (!conf->server.acl)
			return cf_nomem(c);
		for (size_t i = 0; i < n; i++) {
			bw_require(cf_parse_cidr(default_acl[i], &conf->server.acl[i].net) == 0);
			conf->server.acl[i].action = BW_ACL_ALLOW;
		}
		conf->server.n_acl = n;
	}
	if (!conf->policy.n_profiles) {
		struct bw_profile_conf *p = calloc(1, sizeof(*p));
		if (!p)
			return cf_nomem(c);
		conf->policy.profiles = p;
		conf->policy.n_profiles = 1;
		p->all_feeds = true;
		p->name = strdup("default");
		if (!p->name)
			return cf_nomem(c);
	}
	return 0;
}

/* The index of the profile named by scalar n; `what` names the reference in messages. */
static int profile_index(struct cf_ctx *c, yaml_node_t *n, const char *what, size_t *out)
{
	const struct bw_conf *conf = c->conf;
	const char *s = cf_sval(n);
	char list[512];
	size_t used = 0;

	for (size_t i = 0; i < conf->policy.n_profiles; i++) {
		if (!strcmp(conf->policy.profiles[i].name, s)) {
			*out = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (size_t i = 0; i < conf->policy.n_profiles && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
				 conf->policy.profiles[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return cf_fail_at(c, n, BW_EINVAL, "unknown %s '%s' (profiles: %s)", what, s, list);
}

/* Profile names used before policy.profiles was read: listeners' and default-profile. */
static int resolve_profiles(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;
	size_t idx;
	int rc;

	for (size_t i = 0; c->listen_profile && i < conf->server.n_listen; i++) {
		if (!c->listen_profile[i])
			continue;
		if ((rc = profile_index(c, c->listen_profile[i], "listener profile", &idx)))
			return rc;
		conf->server.listen[i].profile = (int)idx;
	}
	for (size_t i = 0; i < c->n_tls_profiles; i++) {
		if ((rc = profile_index(c, c->tls_profiles[i].node, "profile", &idx)))
			return rc;
		*c->tls_profiles[i].out = (int)idx;
	}
	conf->policy.default_profile = 0;
	if (c->default_profile) {
		if ((rc = profile_index(c, c->default_profile, "default-profile", &idx)))
			return rc;
		conf->policy.default_profile = (unsigned)idx;
	}
	return 0;
}

/* ---- the document ---- */

static int syntax_error(struct cf_ctx *c, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return cf_nomem(c);
	case YAML_READER_ERROR:
		return cf_fail_at(c, NULL, BW_EMALFORMED, "%s at byte %zu", problem,
			       p->problem_offset);
	default:
		if (p->context)
			return cf_fail_mark(c, &p->problem_mark, "%s (%s that starts at line %zu)",
					 problem, p->context, p->context_mark.line + 1);
		return cf_fail_mark(c, &p->problem_mark, "%s", problem);
	}
}

static int parse_root(struct cf_ctx *c, yaml_node_t *root)
{
	static const char *const keys[] = {"server",	    "resolver",
					   "cache",	    "policy",
					   "log",	    "telemetry",
					   "metrics",	    "dnstap",
					   "guard",	    "local-records",
					   "local-records-file", "local-ttl",
					   "clients",	    "clients-file",
					   "block-page",    NULL};
	static const struct {
		const char *key;
		int (*fn)(struct cf_ctx *, yaml_node_t *);
	} sections[] = {
	    {"server", cf_parse_server}, {"resolver", cf_parse_resolver}, {"cache", cf_parse_cache},
	    {"policy", cf_parse_policy}, {"log", parse_log},
	    {"telemetry", cf_parse_telemetry},
	    {"metrics", cf_parse_metrics}, {"dnstap", cf_parse_dnstap},
	    {"block-page", cf_parse_block_page},
	    {"guard", cf_parse_guard}, /* after policy: it names profiles */
	};
	int rc;

	if (root->type != YAML_MAPPING_NODE)
		return cf_fail_at(c, root, BW_EINVAL,
			       "expected a mapping (server:, resolver:, ...) at the top level, "
			       "found %s",
			       cf_type_name(root->type));
	if ((rc = cf_check_keys(c, root, "the top level", keys)))
		return rc;
	for (size_t i = 0; i < BW_ARRAY_LEN(sections); i++) {
		yaml_node_t *v = cf_get(c, root, sections[i].key);
		if (!v)
			continue;
		if ((rc = cf_want_type(c, v, YAML_MAPPING_NODE, sections[i].key)))
			return rc;
		if ((rc = sections[i].fn(c, v)))
			return rc;
	}
	yaml_node_t *v;
	if ((v = cf_get(c, root, "clients-file"))) {
		if ((rc = cf_get_path(c, v, "clients-file", &c->conf->clients.file)))
			return rc;
		c->clients_file_given = true;
	}
	/* a sequence, after policy: it names feeds (profiles are resolved at the end) */
	if ((v = cf_get(c, root, "clients")) && (rc = cf_parse_clients(c, v)))
		return rc;
	return cf_parse_local(c, root); /* the local-* keys of the top level */
}

/* The directory part of path with a trailing '/', or NULL when there is none. */
static int set_dir(struct cf_ctx *c)
{
	const char *slash = strrchr(c->path, '/');

	if (!slash)
		return 0;
	size_t len = (size_t)(slash - c->path) + 1;
	c->dir = malloc(len + 1);
	if (!c->dir)
		return cf_nomem(c);
	memcpy(c->dir, c->path, len);
	c->dir[len] = '\0';
	return 0;
}

int bw_conf_load(const char *path, struct bw_conf **out, char *err, size_t errlen)
{
	struct cf_ctx c = {.path = path, .err = err, .errlen = errlen};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool parser_ok = false, doc_ok = false;
	FILE *f = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	c.conf = calloc(1, sizeof(*c.conf));
	if (!c.conf)
		return cf_nomem(&c);
	set_defaults(c.conf);
	c.conf->path = strdup(path);
	if (!c.conf->path) {
		rc = cf_nomem(&c);
		goto fail;
	}
	if ((rc = set_dir(&c)))
		goto fail;

	struct stat st;
	int e = 0;
	f = fopen(path, "rb");
	if (!f)
		e = errno;
	else if (fstat(fileno(f), &st))
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	if (e) {
		rc = cf_fail_at(&c, NULL, e == ENOENT ? BW_ENOENT : BW_EIO, "cannot open: %s",
			     strerror(e));
		goto fail;
	}
	if (!yaml_parser_initialize(&parser)) {
		rc = cf_nomem(&c);
		goto fail;
	}
	parser_ok = true;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = syntax_error(&c, &parser);
		goto fail;
	}
	doc_ok = true;
	c.doc = &doc;

	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root) {
		rc = 0;
		/* A second document in the same file is a mistake, not something to ignore. */
		if (!yaml_parser_load(&parser, &extra)) {
			rc = syntax_error(&c, &parser);
			goto fail;
		}
		yaml_node_t *more = yaml_document_get_root_node(&extra);
		if (more)
			rc = cf_fail_mark(&c, &extra.start_mark,
				       "the file holds more than one YAML document (remove '---')");
		yaml_document_delete(&extra);
		if (rc)
			goto fail;
	}
	if (root && !cf_is_null(root) && (rc = parse_root(&c, root)))
		goto fail;
	if ((rc = fill_default_lists(&c)) || (rc = cf_feeds_finish(&c)))
		goto fail;
	if ((rc = resolve_profiles(&c)) || (rc = cf_clients_finish(&c)))
		goto fail;

	*out = c.conf;
	c.conf = NULL; /* the caller owns it now */
	rc = 0;
fail:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	free(c.dir);
	free(c.listen_profile);
	free(c.tls_profiles);
	cf_clients_free_raw(&c);
	bw_conf_free(c.conf);
	return rc;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void bw_conf_free(struct bw_conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		free(conf->server.listen[i].address);
		cf_free_listen_tls(&conf->server.listen[i]);
	}
	free(conf->server.listen);
	free(conf->server.acl);
	free(conf->server.state_dir);
	free(conf->server.control_socket);
	free(conf->server.user);
	free(conf->server.group);
	cf_telemetry_free(conf);
	cf_free_guard(conf);
	cf_clients_free(conf);
	for (size_t i = 0; i < conf->resolver.n_forward; i++) {
		free(conf->resolver.forward[i].addr);
		free(conf->resolver.forward[i].tls_name);
	}
	free(conf->resolver.forward);
	free(conf->resolver.root_hints);
	free(conf->resolver.trust_anchor);
	free(conf->resolver.tls_ca_file);
	free_strv(conf->resolver.unbound_options, conf->resolver.n_unbound_options);
	cf_free_forward_zones(conf);
	cf_free_local(conf);
	for (size_t i = 0; i < conf->policy.n_feeds; i++)
		cf_free_feed(&conf->policy.feeds[i]);
	free(conf->policy.feeds);
	free_strv(conf->policy.allowlist, conf->policy.n_allowlist);
	for (size_t i = 0; i < conf->policy.n_profiles; i++) {
		struct bw_profile_conf *p = &conf->policy.profiles[i];
		free(p->name);
		free_strv(p->categories, p->n_categories);
		free_strv(p->feeds, p->n_feeds);
		free_strv(p->allowlist, p->n_allowlist);
		free(p->clients);
	}
	free(conf->policy.profiles);
	free(conf->metrics.address);
	free(conf->block_page.address);
	free(conf->block_page.title);
	free(conf->block_page.text);
	free(conf->block_page.contact);
	free(conf->dnstap.socket);
	free(conf->dnstap.tcp_address);
	free(conf->dnstap.identity);
	free(conf->dnstap.version);
	free(conf->path);
	free(conf);
}
