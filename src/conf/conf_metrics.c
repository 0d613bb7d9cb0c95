/*
 * conf/conf_metrics.c - the `metrics:` section (Prometheus endpoint) and the `dnstap:`
 * section (dnstap collector). Both are off unless their section is written.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/un.h>

#include "conf/internal.h"

int cf_get_addr_port(struct cf_ctx *c, yaml_node_t *n, const char *key, char **addr,
			 uint16_t *port)
{
	const char *s;
	int rc;
	if ((rc = cf_want_scalar(c, n, key, &s)))
		return rc;
	const char *at = strrchr(s, '@');
	unsigned long p;
	const char *end;
	if (!at || !cf_parse_ulong(at + 1, &p, &end) || *end || p < 1 || p > 65535)
		return cf_fail_at(c, n, BW_EINVAL,
			       "%s: '%s' must be address@port with a port between 1 and 65535 "
			       "(e.g. 127.0.0.1@6000)",
			       key, s);
	char *a = strndup(s, (size_t)(at - s));
	if (!a)
		return cf_nomem(c);
	struct sockaddr_storage ss;
	socklen_t len;
	if (cf_make_sockaddr(a, (uint16_t)p, &ss, &len)) {
		rc = cf_fail_at(c, n, BW_EINVAL, "%s: '%s' is not an IPv4 or IPv6 address", key, a);
		free(a);
		return rc;
	}
	free(*addr);
	*addr = a;
	*port = (uint16_t)p;
	return 0;
}

int cf_parse_metrics(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"enable", "address", "port", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	unsigned long port;
	int rc;

	if ((rc = cf_check_keys(c, m, "metrics", keys)))
		return rc;
	conf->metrics.enabled = true;
	if ((v = cf_get(c, m, "enable")) && (rc = cf_get_bool(c, v, "enable", &conf->metrics.enabled)))
		return rc;
	if ((v = cf_get(c, m, "address")) &&
	    (rc = cf_get_string(c, v, "address", &conf->metrics.address)))
		return rc;
	if ((v = cf_get(c, m, "port"))) {
		if ((rc = cf_get_uint(c, v, "port", 1, 65535, &port)))
			return rc;
		conf->metrics.port = (uint16_t)port;
	}
	if (!conf->metrics.address && !(conf->metrics.address = strdup("127.0.0.1")))
		return cf_nomem(c);
	if (cf_make_sockaddr(conf->metrics.address, conf->metrics.port, &conf->metrics.addr,
			     &conf->metrics.addrlen))
		return cf_fail_at(c, v ? v : m, BW_EINVAL,
			       "metrics.address: '%s' is not an IPv4 or IPv6 address",
			       conf->metrics.address);
	return 0;
}

int cf_parse_dnstap(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"socket",      "tcp",           "identity", "version",
					   "log-queries", "log-responses", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v, *sock, *tcp;
	int rc;

	if ((rc = cf_check_keys(c, m, "dnstap", keys)))
		return rc;
	sock = cf_get(c, m, "socket");
	tcp = cf_get(c, m, "tcp");
	if (sock && tcp)
		return cf_fail_at(c, tcp, BW_EINVAL,
			       "dnstap: give either 'socket' (a unix socket) or 'tcp', not both");
	if (!sock && !tcp)
		return cf_fail_at(c, m, BW_EINVAL,
			       "dnstap: say where to send messages: 'socket: /path' (unix socket) "
			       "or 'tcp: address@port'");
	if (sock && (rc = cf_get_path(c, sock, "socket", &conf->dnstap.socket)))
		return rc;
	if (sock && strlen(conf->dnstap.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cf_fail_at(c, sock, BW_EINVAL,
			       "dnstap.socket: '%s' is too long for a unix socket (at most %zu "
			       "bytes)",
			       conf->dnstap.socket, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (tcp && (rc = cf_get_addr_port(c, tcp, "tcp", &conf->dnstap.tcp_address,
				       &conf->dnstap.tcp_port)))
		return rc;
	if ((v = cf_get(c, m, "identity")) &&
	    (rc = cf_get_string(c, v, "identity", &conf->dnstap.identity)))
		return rc;
	if ((v = cf_get(c, m, "version")) &&
	    (rc = cf_get_string(c, v, "version", &conf->dnstap.version)))
		return rc;
	if ((v = cf_get(c, m, "log-queries")) &&
	    (rc = cf_get_bool(c, v, "log-queries", &conf->dnstap.log_queries)))
		return rc;
	if ((v = cf_get(c, m, "log-responses")) &&
	    (rc = cf_get_bool(c, v, "log-responses", &conf->dnstap.log_responses)))
		return rc;
	conf->dnstap.enabled = true;
	return 0;
}
