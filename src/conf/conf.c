/*
 * conf/conf.c - loads the YAML configuration with libyaml's document API and validates it
 * into struct bw_conf: the top level (the section table, `log:`), the defaults, the
 * checks that need the whole document (profile names), and bw_conf_free().
 *
 * The whole file is composed into a libyaml document first; then each section is walked
 * with a table of known keys, so an unknown, duplicate or mistyped key is reported with the
 * line and column of the node that is wrong. The first error stops the load. The shared
 * helpers (typed scalars, errors) are in yaml.c; each section parses in a file of its own
 * (conf_<section>.c) that also lists its keys.
 */
#include "conf/conf.h"
#include "conf/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---- server ---- */

static int parse_listen_item(struct cf_ctx *c, yaml_node_t *m, struct bw_listen *l,
			     yaml_node_t **profile)
{
	static const char *const keys[] = {"address", "port", "transport", "profile",
					   "tls-cert", "tls-key", "tls-name", "sni", "doh-paths", NULL};
	static const char *const transports[] = {"dns", "dot", "doh", NULL};
	const char *where = "server.listen item";
	yaml_node_t *v;
	unsigned long port = 53;
	int rc;

	if (m->type != YAML_MAPPING_NODE)
		return cf_fail_at(c, m, BW_EINVAL,
			       "expected a mapping for each item of 'listen', "
			       "found %s",
			       cf_type_name(m->type));
	if ((rc = cf_check_keys(c, m, where, keys)))
		return rc;
	if ((rc = cf_need(c, m, "address", where, &v)))
		return rc;
	yaml_node_t *addr_node = v;
	if ((rc = cf_get_string(c, v, "address", &l->address)))
		return rc;
	if ((v = cf_get(c, m, "port")) && (rc = cf_get_uint(c, v, "port", 1, 65535, &port)))
		return rc;
	l->port = (uint16_t)port;
	l->profile = -1;
	if ((v = cf_get(c, m, "transport"))) {
		const char *s;
		int idx;
		if ((rc = cf_want_scalar(c, v, "transport", &s)))
			return rc;
		if (cf_get_enum(c, v, "transport", transports, &idx))
			return cf_fail_at(c, v, BW_ENOTSUP,
				       "transport '%s' is not supported (supported: dns, dot, doh)", s);
		l->transport = (enum bw_transport)idx;
		if (l->transport == BW_TRANSPORT_DOT && !cf_get(c, m, "port"))
			l->port = 853;
		if (l->transport == BW_TRANSPORT_DOH && !cf_get(c, m, "port"))
			l->port = 443;
	}
	if ((rc = cf_parse_listen_tls(c, m, l)))
		return rc;
	if ((v = cf_get(c, m, "profile"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "profile", &s)))
			return rc;
		*profile = v; /* checked against policy.profiles at the end */
	}
	if (cf_make_sockaddr(l->address, l->port, &l->addr, &l->addrlen))
		return cf_fail_at(c, addr_node, BW_EINVAL,
			       "invalid listen address '%s' (expected an IPv4 or IPv6 address)",
			       l->address);
	return 0;
}

static int parse_listen(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "listen")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return cf_fail_at(c, seq, BW_EINVAL, "'listen' must name at least one address");
	conf->server.listen = calloc(n, sizeof(*conf->server.listen));
	if (!conf->server.listen)
		return cf_nomem(c);
	c->listen_profile = calloc(n, sizeof(*c->listen_profile));
	if (!c->listen_profile)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = cf_seq_item(c, seq, i);
		struct bw_listen *l = &conf->server.listen[i];
		conf->server.n_listen = i + 1; /* so bw_conf_free() sees what was filled */
		if ((rc = parse_listen_item(c, item, l, &c->listen_profile[i])))
			return rc;
		for (size_t j = 0; j < i; j++) {
			struct bw_listen *o = &conf->server.listen[j];
			if (o->addrlen == l->addrlen && !memcmp(&o->addr, &l->addr, l->addrlen))
				return cf_fail_at(c, item, BW_EINVAL,
					       "address %s port %u is listed twice in 'listen'",
					       l->address, (unsigned)l->port);
		}
	}
	return 0;
}

static int parse_acl(struct cf_ctx *c, yaml_node_t *seq)
{
	static const char *const keys[] = {"network", "action", NULL};
	static const char *const actions[] = {"allow", "refuse", "drop", NULL};
	const char *where = "server.access-control item";
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "access-control")))
		return rc;
	c->acl_given = true;
	n = cf_seq_len(seq);
	if (n) {
		conf->server.acl = calloc(n, sizeof(*conf->server.acl));
		if (!conf->server.acl)
			return cf_nomem(c);
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = cf_seq_item(c, seq, i), *v;
		struct bw_acl_rule *r = &conf->server.acl[i];
		const char *s;
		int act;

		if (m->type != YAML_MAPPING_NODE)
			return cf_fail_at(c, m, BW_EINVAL,
				       "expected a mapping for each item of "
				       "'access-control', found %s",
				       cf_type_name(m->type));
		if ((rc = cf_check_keys(c, m, where, keys)))
			return rc;
		if ((rc = cf_need(c, m, "network", where, &v)) ||
		    (rc = cf_want_scalar(c, v, "network", &s)))
			return rc;
		if (cf_parse_cidr(s, &r->net))
			return cf_fail_at(c, v, BW_EINVAL,
				       "invalid network '%s' (expected an address or "
				       "address/prefix-length, e.g. 192.168.0.0/16 or fc00::/7)",
				       s);
		if ((rc = cf_need(c, m, "action", where, &v)) ||
		    (rc = cf_get_enum(c, v, "action", actions, &act)))
			return rc;
		r->action = (enum bw_acl_action)act;
		conf->server.n_acl = i + 1;
	}
	return 0;
}

static int parse_server(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {
	    "listen", "workers", "tcp-max-connections", "tcp-max-connections-per-client",
	    "tcp-client-ipv4-prefix", "tcp-client-ipv6-prefix", "tcp-idle-timeout",
	    "tcp-max-inflight", "max-inflight", "access-control", "state-dir", "control-socket",
	    "tls-handshake-timeout", "doh-max-streams", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_check_keys(c, m, "server", keys)))
		return rc;
	if ((v = cf_get(c, m, "listen")) && (rc = parse_listen(c, v)))
		return rc;
	if ((v = cf_get(c, m, "workers")) &&
	    (rc = cf_get_auto_uint(c, v, "workers", 1, 256, &conf->server.workers)))
		return rc;
	if ((v = cf_get(c, m, "tcp-max-connections")) &&
	    (rc = cf_get_unsigned(c, v, "tcp-max-connections", 1, 1000000,
			       &conf->server.tcp_max_conns)))
		return rc;
	if ((v = cf_get(c, m, "tcp-max-connections-per-client")) &&
	    (rc = cf_get_unsigned(c, v, "tcp-max-connections-per-client", 1, 1000000,
			       &conf->server.tcp_max_conns_per_client)))
		return rc;
	if (conf->server.tcp_max_conns_per_client > conf->server.tcp_max_conns)
		return cf_fail_at(c, v, BW_EINVAL,
				  "tcp-max-connections-per-client (%u) is more than "
				  "tcp-max-connections (%u)",
				  conf->server.tcp_max_conns_per_client, conf->server.tcp_max_conns);
	if ((v = cf_get(c, m, "tcp-client-ipv4-prefix")) &&
	    (rc = cf_get_unsigned(c, v, "tcp-client-ipv4-prefix", 1, 32,
			       &conf->server.tcp_client_v4_prefix)))
		return rc;
	if ((v = cf_get(c, m, "tcp-client-ipv6-prefix")) &&
	    (rc = cf_get_unsigned(c, v, "tcp-client-ipv6-prefix", 1, 128,
			       &conf->server.tcp_client_v6_prefix)))
		return rc;
	if ((v = cf_get(c, m, "tcp-idle-timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "tcp-idle-timeout", 1, 86400000,
				    &conf->server.tcp_idle_ms)))
		return rc;
	if ((v = cf_get(c, m, "tcp-max-inflight")) &&
	    (rc = cf_get_unsigned(c, v, "tcp-max-inflight", 1, 65535, &conf->server.tcp_max_inflight)))
		return rc;
	if ((v = cf_get(c, m, "max-inflight")) &&
	    (rc = cf_get_unsigned(c, v, "max-inflight", 1, 1000000, &conf->server.max_inflight)))
		return rc;
	if ((v = cf_get(c, m, "access-control")) && (rc = parse_acl(c, v)))
		return rc;
	if ((v = cf_get(c, m, "state-dir")) && (rc = cf_get_path(c, v, "state-dir", &conf->server.state_dir)))
		return rc;
	if ((v = cf_get(c, m, "control-socket")) &&
	    (rc = cf_get_path(c, v, "control-socket", &conf->server.control_socket)))
		return rc;
	if ((v = cf_get(c, m, "tls-handshake-timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "tls-handshake-timeout", 1, 600000,
				    &conf->server.tls_handshake_ms)))
		return rc;
	if ((v = cf_get(c, m, "doh-max-streams")) &&
	    (rc = cf_get_unsigned(c, v, "doh-max-streams", 1, 10000, &conf->server.doh_max_streams)))
		return rc;
	return 0;
}

/* ---- resolver ---- */

/* "192.0.2.53", "192.0.2.53@5353", "2001:db8::1@53", "tls://9.9.9.9@853#dns.quad9.net" */
static int parse_upstream(struct cf_ctx *c, yaml_node_t *n, struct bw_upstream *u)
{
	char buf[512], addr[sizeof(buf) + 8];
	const char *s;
	char *at, *hash;
	unsigned long port;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc;

	if ((rc = cf_want_scalar(c, n, "forward", &s)))
		return rc;
	if (strlen(s) >= sizeof(buf))
		return cf_fail_at(c, n, BW_EINVAL, "forward address is too long");
	memcpy(buf, s, strlen(s) + 1);
	char *p = buf;
	if (!strncasecmp(p, "tls://", 6)) {
		u->tls = true;
		p += 6;
	} else if (strstr(p, "://")) {
		return cf_fail_at(c, n, BW_ENOTSUP,
			       "forward address '%s': only tls:// may prefix an address", s);
	}
	if ((hash = strchr(p, '#'))) {
		*hash = '\0';
		hash++;
		if (!u->tls)
			return cf_fail_at(c, n, BW_EINVAL,
				       "forward address '%s': '#name' is only used with tls://", s);
		const char *why = cf_name_problem(hash);
		if (why)
			return cf_fail_at(c, n, BW_EINVAL, "forward address '%s': TLS name '%s' %s", s,
				       hash, why);
		u->tls_name = strdup(hash);
		if (!u->tls_name)
			return cf_nomem(c);
	}
	port = u->tls ? 853 : 53;
	if ((at = strrchr(p, '@'))) {
		const char *end;
		*at = '\0';
		if (!cf_parse_ulong(at + 1, &port, &end) || *end || port < 1 || port > 65535)
			return cf_fail_at(c, n, BW_EINVAL,
				       "forward address '%s': port must be a number between 1 and "
				       "65535",
				       s);
	}
	if (cf_make_sockaddr(p, (uint16_t)port, &ss, &sslen))
		return cf_fail_at(
		    c, n, BW_EINVAL,
		    "forward address '%s': '%s' is not an IPv4 or IPv6 address "
		    "(write addr@port, e.g. 192.0.2.53@53 or tls://9.9.9.9@853#dns.quad9.net)",
		    s, p);
	snprintf(addr, sizeof(addr), "%s@%lu", p, port);
	u->addr = strdup(addr);
	return u->addr ? 0 : cf_nomem(c);
}

static int parse_forward(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "forward")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return 0;
	conf->resolver.forward = calloc(n, sizeof(*conf->resolver.forward));
	if (!conf->resolver.forward)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		conf->resolver.n_forward = i + 1;
		if ((rc = parse_upstream(c, cf_seq_item(c, seq, i), &conf->resolver.forward[i])))
			return rc;
	}
	return 0;
}

static int parse_unbound_options(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "unbound-options")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return 0;
	conf->resolver.unbound_options = calloc(n, sizeof(char *));
	if (!conf->resolver.unbound_options)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v = cf_seq_item(c, seq, i);
		const char *s;
		size_t k = 0;

		if ((rc = cf_want_scalar(c, v, "unbound-options", &s)))
			return rc;
		while (isalnum((unsigned char)s[k]) || s[k] == '-')
			k++;
		if (!k || s[k] != ':')
			return cf_fail_at(c, v, BW_EINVAL,
				       "unbound option '%s' is not of the form 'name: value'", s);
		conf->resolver.n_unbound_options = i + 1;
		conf->resolver.unbound_options[i] = strdup(s);
		if (!conf->resolver.unbound_options[i])
			return cf_nomem(c);
	}
	return 0;
}

static int parse_resolver(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"mode",
					   "dnssec",
					   "forward",
					   "root-hints",
					   "trust-anchor",
					   "tls-ca-file",
					   "qname-minimisation",
					   "aggressive-nsec",
					   "prefetch",
					   "timeout",
					   "unbound-options",
					   NULL};
	static const char *const modes[] = {"recursive", "forward", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v, *fwd;
	int rc, mode;

	if ((rc = cf_check_keys(c, m, "resolver", keys)))
		return rc;
	if ((v = cf_get(c, m, "mode"))) {
		if ((rc = cf_get_enum(c, v, "mode", modes, &mode)))
			return rc;
		conf->resolver.mode = (enum bw_resolver_mode)mode;
	}
	if ((v = cf_get(c, m, "dnssec")) && (rc = cf_get_bool(c, v, "dnssec", &conf->resolver.dnssec)))
		return rc;
	if ((fwd = cf_get(c, m, "forward")) && (rc = parse_forward(c, fwd)))
		return rc;
	if (conf->resolver.mode == BW_RESOLVER_FORWARD && !conf->resolver.n_forward)
		return cf_fail_at(c, fwd ? fwd : m, BW_EINVAL,
			       "mode is forward but 'forward' lists no upstream "
			       "(e.g. forward: [ 192.0.2.53@53 ])");
	if (conf->resolver.mode == BW_RESOLVER_RECURSIVE && conf->resolver.n_forward)
		return cf_fail_at(c, fwd, BW_EINVAL,
			       "'forward' is only used with 'mode: forward' (mode is recursive)");
	if ((v = cf_get(c, m, "root-hints")) &&
	    (rc = cf_get_file(c, v, "root-hints", "root-hints", &conf->resolver.root_hints)))
		return rc;
	if ((v = cf_get(c, m, "trust-anchor")) &&
	    (rc = cf_get_file(c, v, "trust-anchor", "trust-anchor", &conf->resolver.trust_anchor)))
		return rc;
	if ((v = cf_get(c, m, "tls-ca-file")) &&
	    (rc = cf_get_file(c, v, "tls-ca-file", "tls-ca-file", &conf->resolver.tls_ca_file)))
		return rc;
	if ((v = cf_get(c, m, "qname-minimisation")) &&
	    (rc = cf_get_bool(c, v, "qname-minimisation", &conf->resolver.qname_minimisation)))
		return rc;
	if ((v = cf_get(c, m, "aggressive-nsec")) &&
	    (rc = cf_get_bool(c, v, "aggressive-nsec", &conf->resolver.aggressive_nsec)))
		return rc;
	if ((v = cf_get(c, m, "prefetch")) &&
	    (rc = cf_get_bool(c, v, "prefetch", &conf->resolver.prefetch)))
		return rc;
	if ((v = cf_get(c, m, "timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "timeout", 1, 3600000, &conf->resolver.timeout_ms)))
		return rc;
	if ((v = cf_get(c, m, "unbound-options")) && (rc = parse_unbound_options(c, v)))
		return rc;
	return 0;
}

/* ---- cache ---- */

static int parse_cache(struct cf_ctx *c, yaml_node_t *m)
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

/* ---- policy ---- */

/* A copy of a checked name, lower-cased, without its trailing dot; NULL when out of memory. */
static char *canon_name(const char *s)
{
	char *name = strdup(s);

	if (!name)
		return NULL;
	size_t len = strlen(name);
	if (len && name[len - 1] == '.')
		name[--len] = '\0';
	for (size_t k = 0; k < len; k++)
		name[k] = (char)tolower((unsigned char)name[k]);
	return name;
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
	f->redirect_name = canon_name(s);
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
	if ((rc = cf_parse_feed_source(c, m, v, f)))
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

static int parse_feeds(struct cf_ctx *c, yaml_node_t *seq)
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

/*
 * A list of allowlist names into *out / *n (lower-cased, no trailing dot). `owner` starts
 * messages: "" for policy.allowlist, "profile 'x': " for a profile's.
 */
static int parse_names(struct cf_ctx *c, yaml_node_t *seq, const char *owner, char ***out,
		       size_t *n_out)
{
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "allowlist")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return 0;
	*out = calloc(n, sizeof(char *));
	if (!*out)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v = cf_seq_item(c, seq, i);
		const char *s, *why;

		if ((rc = cf_want_scalar(c, v, "allowlist", &s)))
			return rc;
		if ((why = cf_name_problem(s)))
			return cf_fail_at(c, v, BW_EINVAL, "%sallowlist name '%s' %s", owner, s, why);
		if (!((*out)[i] = canon_name(s)))
			return cf_nomem(c);
		*n_out = i + 1;
	}
	return 0;
}

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
	    (rc = parse_names(c, v, owner, &p->allowlist, &p->n_allowlist)))
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

static int parse_policy(struct cf_ctx *c, yaml_node_t *m)
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
	if ((v = cf_get(c, m, "feeds")) && (rc = parse_feeds(c, v)))
		return rc;
	if ((v = cf_get(c, m, "allowlist")) &&
	    (rc = parse_names(c, v, "", &conf->policy.allowlist, &conf->policy.n_allowlist)))
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
}

/* The listeners and ACL when the config names none. */
static int fill_default_lists(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;

	if (!conf->server.state_dir && !(conf->server.state_dir = strdup(BW_CONF_DEFAULT_STATE_DIR)))
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
	static const char *const keys[] = {"server", "resolver", "cache",     "policy",
					   "log",    "telemetry", "metrics", "dnstap",
					   "guard",  NULL};
	static const struct {
		const char *key;
		int (*fn)(struct cf_ctx *, yaml_node_t *);
	} sections[] = {
	    {"server", parse_server}, {"resolver", parse_resolver}, {"cache", parse_cache},
	    {"policy", parse_policy}, {"log", parse_log},
	    {"telemetry", cf_parse_telemetry},
	    {"metrics", cf_parse_metrics}, {"dnstap", cf_parse_dnstap},
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
	return 0;
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
	if ((rc = resolve_profiles(&c)))
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
	cf_telemetry_free(conf);
	cf_free_guard(conf);
	for (size_t i = 0; i < conf->resolver.n_forward; i++) {
		free(conf->resolver.forward[i].addr);
		free(conf->resolver.forward[i].tls_name);
	}
	free(conf->resolver.forward);
	free(conf->resolver.root_hints);
	free(conf->resolver.trust_anchor);
	free(conf->resolver.tls_ca_file);
	free_strv(conf->resolver.unbound_options, conf->resolver.n_unbound_options);
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		free(conf->policy.feeds[i].name);
		free(conf->policy.feeds[i].category);
		free(conf->policy.feeds[i].file);
		free(conf->policy.feeds[i].redirect_name);
		cf_feed_source_free(&conf->policy.feeds[i]);
	}
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
	free(conf->dnstap.socket);
	free(conf->dnstap.tcp_address);
	free(conf->dnstap.identity);
	free(conf->dnstap.version);
	free(conf->path);
	free(conf);
}
