/*
 * conf/conf_resolver.c - the `resolver:` section: recursive or forwarding mode, upstreams
 * (plain or tls://), DNSSEC and its trust anchor, root hints, unbound-options, per-domain
 * forwarding (forward-zones) and what happens to the special-use names (special-use).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "conf/internal.h"

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

const char *const bw_special_use_names[BW_SU_COUNT + 1] = {
    "localhost", "invalid", "test", "local", "onion", "home.arpa", NULL};

void cf_free_forward_zones(struct bw_conf *conf)
{
	for (size_t i = 0; i < conf->resolver.n_forward_zones; i++) {
		struct bw_forward_zone *z = &conf->resolver.forward_zones[i];
		free(z->zone);
		for (size_t k = 0; k < z->n_forward; k++) {
			free(z->forward[k].addr);
			free(z->forward[k].tls_name);
		}
		free(z->forward);
	}
	free(conf->resolver.forward_zones);
}

/* { zone: corp.example, forward: [ "192.0.2.10@53" ], insecure: true, stub: false } */
static int parse_forward_zone(struct cf_ctx *c, yaml_node_t *m, struct bw_forward_zone *z)
{
	static const char *const keys[] = {"zone", "forward", "insecure", "stub", NULL};
	const struct bw_conf *conf = c->conf;
	yaml_node_t *v, *fwd;
	const char *s, *why;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "forward-zones item")) ||
	    (rc = cf_check_keys(c, m, "resolver.forward-zones item", keys)) ||
	    (rc = cf_need(c, m, "zone", "resolver.forward-zones item", &v)) ||
	    (rc = cf_want_scalar(c, v, "zone", &s)))
		return rc;
	if (!strcmp(s, "."))
		return cf_fail_at(c, v, BW_EINVAL,
				  "forward-zones: the root zone cannot be a forward zone (use "
				  "'mode: forward' and 'forward' to forward every name)");
	if ((why = cf_name_problem(s)))
		return cf_fail_at(c, v, BW_EINVAL, "forward-zones: zone '%s' %s", s, why);
	if (!(z->zone = cf_canon_name(s)))
		return cf_nomem(c);
	for (size_t i = 0; i < conf->resolver.n_forward_zones - 1; i++)
		if (!strcmp(conf->resolver.forward_zones[i].zone, z->zone))
			return cf_fail_at(c, v, BW_EINVAL,
					  "forward-zones: zone '%s' is listed twice", z->zone);
	if ((rc = cf_need(c, m, "forward", "resolver.forward-zones item", &fwd)) ||
	    (rc = cf_want_type(c, fwd, YAML_SEQUENCE_NODE, "forward")))
		return rc;
	if (!(n = cf_seq_len(fwd)))
		return cf_fail_at(c, fwd, BW_EINVAL,
				  "forward-zones: zone '%s' lists no server (e.g. forward: [ "
				  "192.0.2.10@53 ])",
				  z->zone);
	if (!(z->forward = calloc(n, sizeof(*z->forward))))
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = cf_seq_item(c, fwd, i);
		z->n_forward = i + 1;
		if ((rc = parse_upstream(c, item, &z->forward[i])))
			return rc;
		if (i && z->forward[i].tls != z->tls)
			return cf_fail_at(c, item, BW_EINVAL,
					  "forward-zones: zone '%s' mixes tls:// and plain servers "
					  "(write one kind per zone)",
					  z->zone);
		z->tls = z->forward[i].tls;
	}
	z->insecure = true;
	if ((v = cf_get(c, m, "insecure")) && (rc = cf_get_bool(c, v, "insecure", &z->insecure)))
		return rc;
	if ((v = cf_get(c, m, "stub")) && (rc = cf_get_bool(c, v, "stub", &z->stub)))
		return rc;
	return 0;
}

static int parse_forward_zones(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "forward-zones")))
		return rc;
	if (!(n = cf_seq_len(seq)))
		return 0;
	conf->resolver.forward_zones = calloc(n, sizeof(*conf->resolver.forward_zones));
	if (!conf->resolver.forward_zones)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		conf->resolver.n_forward_zones = i + 1;
		struct bw_forward_zone *z = &conf->resolver.forward_zones[i];
		if ((rc = parse_forward_zone(c, cf_seq_item(c, seq, i), z)))
			return rc;
	}
	return 0;
}

/* { test: recurse, localhost: local, ... } */
static int parse_special_use(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const values[] = {"local", "recurse", NULL};
	int rc, val;

	if ((rc = cf_check_keys(c, m, "resolver.special-use", bw_special_use_names)))
		return rc;
	for (int i = 0; i < BW_SU_COUNT; i++) {
		yaml_node_t *v = cf_get(c, m, bw_special_use_names[i]);
		if (!v)
			continue;
		if ((rc = cf_get_enum(c, v, bw_special_use_names[i], values, &val)))
			return rc;
		c->conf->resolver.special_recurse[i] = val == 1;
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

int cf_parse_resolver(struct cf_ctx *c, yaml_node_t *m)
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
					   "ipv6",
					   "timeout",
					   "unbound-options",
					   "forward-zones",
					   "special-use",
					   NULL};
	static const char *const modes[] = {"recursive", "forward", NULL};
	/* auto, then yes and no in each of the spellings booleans accept */
	static const char *const ipv6[] = {"auto", "yes", "no", "true", "false", "on", "off", NULL};
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
	if ((v = cf_get(c, m, "ipv6"))) {
		int val;
		if ((rc = cf_get_enum(c, v, "ipv6", ipv6, &val)))
			return rc;
		conf->resolver.ipv6 = val == 0 ? BW_IPV6_AUTO : val % 2 ? BW_IPV6_YES : BW_IPV6_NO;
	}
	if ((v = cf_get(c, m, "timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "timeout", 1, 3600000, &conf->resolver.timeout_ms)))
		return rc;
	if ((v = cf_get(c, m, "unbound-options")) && (rc = parse_unbound_options(c, v)))
		return rc;
	if ((v = cf_get(c, m, "forward-zones")) && (rc = parse_forward_zones(c, v)))
		return rc;
	if ((v = cf_get(c, m, "special-use")) &&
	    ((rc = cf_want_type(c, v, YAML_MAPPING_NODE, "special-use")) ||
	     (rc = parse_special_use(c, v))))
		return rc;
	return 0;
}
