/*
 * conf/conf_server.c - the `server:` section: listeners (their dot/doh keys are
 * conf_tls.c), workers, TCP limits, access control, state-dir, the control socket.
 * Listeners' profile names are checked once policy.profiles is read (conf.c).
 */
#include <stdlib.h>

#include "conf/internal.h"

static int parse_listen_item(struct cf_ctx *c, yaml_node_t *m, struct bw_listen *l,
			     yaml_node_t **profile)
{
	static const char *const own_keys[] = {"address", "port", "transport", "profile",
					       "rate-limit"};
	const char *keys[BW_ARRAY_LEN(own_keys) + CF_LISTEN_TLS_NKEYS + 1]; /* + conf_tls.c's */
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
	memcpy(keys, own_keys, sizeof(own_keys));
	memcpy(keys + BW_ARRAY_LEN(own_keys), cf_listen_tls_keys, sizeof(cf_listen_tls_keys));
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
	if ((v = cf_get(c, m, "rate-limit")) &&
	    (rc = cf_parse_rate(c, v, "server.listen item's rate-limit", &l->rate)))
		return rc;
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

/* { qps, burst } and, for server.rate-limit (server != NULL), the prefix lengths and the
 * table size. */
static int parse_rate_keys(struct cf_ctx *c, yaml_node_t *m, const char *where,
			   struct bw_rate *out, struct bw_conf *server)
{
	static const char *const rate_keys[] = {"qps", "burst", NULL};
	static const char *const server_keys[] = {"qps",       "burst",	     "prefix-v4",
						  "prefix-v6", "table-size", NULL};
	yaml_node_t *v;
	int rc;
	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "rate-limit")) ||
	    (rc = cf_check_keys(c, m, where, server ? server_keys : rate_keys)))
		return rc;
	out->given = true;
	if ((v = cf_get(c, m, "qps")) && (rc = cf_get_unsigned(c, v, "qps", 0, 10000000, &out->qps)))
		return rc;
	if ((v = cf_get(c, m, "burst")) &&
	    (rc = cf_get_unsigned(c, v, "burst", 0, 10000000, &out->burst)))
		return rc;
	if (!server)
		return 0;
	if ((v = cf_get(c, m, "prefix-v4")) &&
	    (rc = cf_get_unsigned(c, v, "prefix-v4", 8, 32, &server->server.rl_prefix_v4)))
		return rc;
	if ((v = cf_get(c, m, "prefix-v6")) &&
	    (rc = cf_get_unsigned(c, v, "prefix-v6", 16, 128, &server->server.rl_prefix_v6)))
		return rc;
	if ((v = cf_get(c, m, "table-size")) &&
	    (rc = cf_get_unsigned(c, v, "table-size", 1024, 1u << 26, &server->server.rl_table)))
		return rc;
	return 0;
}

int cf_parse_rate(struct cf_ctx *c, yaml_node_t *m, const char *where, struct bw_rate *out)
{
	return parse_rate_keys(c, m, where, out, NULL);
}

static int parse_rrl(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"responses-per-second", "slip", "table-size", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;
	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "rrl")) ||
	    (rc = cf_check_keys(c, m, "server.rrl", keys)))
		return rc;
	if ((v = cf_get(c, m, "responses-per-second")) &&
	    (rc = cf_get_unsigned(c, v, "responses-per-second", 0, 10000000, &conf->server.rrl_rps)))
		return rc;
	if ((v = cf_get(c, m, "slip")) &&
	    (rc = cf_get_unsigned(c, v, "slip", 0, 10, &conf->server.rrl_slip)))
		return rc;
	if ((v = cf_get(c, m, "table-size")) &&
	    (rc = cf_get_unsigned(c, v, "table-size", 1024, 1u << 26, &conf->server.rrl_table)))
		return rc;
	return 0;
}

int cf_parse_server(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {
	    "listen", "workers", "tcp-max-connections", "tcp-max-connections-per-client",
	    "tcp-client-ipv4-prefix", "tcp-client-ipv6-prefix", "tcp-idle-timeout",
	    "tcp-max-inflight", "max-inflight", "max-inflight-per-client", "access-control",
	    "state-dir", "control-socket",
	    "tls-handshake-timeout", "doh-max-streams", "user", "group", "rate-limit", "rrl", NULL};
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
	if ((v = cf_get(c, m, "max-inflight-per-client")) &&
	    (rc = cf_get_unsigned(c, v, "max-inflight-per-client", 1, 1000000,
				  &conf->server.max_inflight_per_client)))
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
	if ((v = cf_get(c, m, "user")) && (rc = cf_get_string(c, v, "user", &conf->server.user)))
		return rc;
	if ((v = cf_get(c, m, "group")) && (rc = cf_get_string(c, v, "group", &conf->server.group)))
		return rc;
	if ((v = cf_get(c, m, "rate-limit")) &&
	    (rc = parse_rate_keys(c, v, "server.rate-limit", &conf->server.rate, conf)))
		return rc;
	if ((v = cf_get(c, m, "rrl")) && (rc = parse_rrl(c, v)))
		return rc;
	return 0;
}
