/*
 * conf/conf_admin.c - the `admin:` section: where the HTTP API and the dashboard listen,
 * their TLS certificate, the dashboard's files, how long a login lasts, the audit log and
 * the tokens file (docs/config.md, docs/api.md). Off unless the section is written; the
 * tokens file and audit log get their defaults either way (bulwarkctl token uses them).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/internal.h"

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: only this machine can connect. */
static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(a))
		return true;
	return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

/* listen: "address@port" */
static int parse_listen(struct cf_ctx *c, yaml_node_t *n)
{
	struct bw_conf *conf = c->conf;
	const char *s;
	int rc;
	if ((rc = cf_want_scalar(c, n, "admin.listen", &s)))
		return rc;
	const char *at = strrchr(s, '@'), *end;
	unsigned long port;
	if (!at || !cf_parse_ulong(at + 1, &port, &end) || *end || port < 1 || port > 65535)
		return cf_fail_at(c, n, BW_EINVAL,
				  "admin.listen: '%s' must be address@port with a port between 1 "
				  "and 65535 (e.g. 127.0.0.1@8080)",
				  s);
	char *addr = strndup(s, (size_t)(at - s));
	if (!addr)
		return cf_nomem(c);
	free(conf->admin.address);
	conf->admin.address = addr;
	conf->admin.port = (uint16_t)port;
	if (cf_make_sockaddr(addr, (uint16_t)port, &conf->admin.addr, &conf->admin.addrlen))
		return cf_fail_at(c, n, BW_EINVAL,
				  "admin.listen: '%s' is not an IPv4 or IPv6 address", addr);
	return 0;
}

static int parse_paths(struct cf_ctx *c, yaml_node_t *m)
{
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;
	if ((v = cf_get(c, m, "tls-cert")) &&
	    (rc = cf_get_file(c, v, "tls-cert", "admin.tls-cert", &conf->admin.tls_cert)))
		return rc;
	if ((v = cf_get(c, m, "tls-key")) &&
	    (rc = cf_get_file(c, v, "tls-key", "admin.tls-key", &conf->admin.tls_key)))
		return rc;
	if ((v = cf_get(c, m, "www-dir")) &&
	    (rc = cf_get_path(c, v, "www-dir", &conf->admin.www_dir)))
		return rc;
	if ((v = cf_get(c, m, "audit-log")) &&
	    (rc = cf_get_path(c, v, "audit-log", &conf->admin.audit_log)))
		return rc;
	if ((v = cf_get(c, m, "tokens-file")) &&
	    (rc = cf_get_path(c, v, "tokens-file", &conf->admin.tokens_file)))
		return rc;
	return 0;
}

int cf_parse_admin(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"listen",	"tls-cert",  "tls-key",	    "www-dir",
					   "session-minutes", "audit-log", "tokens-file", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v, *listen = cf_get(c, m, "listen");
	int rc;

	if ((rc = cf_check_keys(c, m, "admin", keys)))
		return rc;
	conf->admin.enabled = true;
	if (listen && (rc = parse_listen(c, listen)))
		return rc;
	if (!conf->admin.address) {
		if (!(conf->admin.address = strdup("127.0.0.1")))
			return cf_nomem(c);
		conf->admin.port = 8080;
		bw_require(cf_make_sockaddr("127.0.0.1", 8080, &conf->admin.addr,
					    &conf->admin.addrlen) == 0);
	}
	if ((rc = parse_paths(c, m)))
		return rc;
	if ((v = cf_get(c, m, "session-minutes")) &&
	    (rc = cf_get_unsigned(c, v, "session-minutes", 1, 10080, &conf->admin.session_minutes)))
		return rc;
	if (!conf->admin.tls_cert != !conf->admin.tls_key)
		return cf_fail_at(c, m, BW_EINVAL,
				  "admin: give both tls-cert and tls-key (a certificate and its "
				  "private key), or neither");
	if (!conf->admin.tls_cert && !is_loopback(&conf->admin.addr))
		return cf_fail_at(c, listen ? listen : m, BW_EINVAL,
				  "admin.listen: %s is not a loopback address, and the API carries "
				  "access tokens and session cookies: set tls-cert and tls-key to "
				  "listen there over HTTPS, or listen on 127.0.0.1 or ::1",
				  conf->admin.address);
	return 0;
}

/* dir/name into *out unless it is set already. */
static int default_path(struct cf_ctx *c, char **out, const char *dir, const char *name)
{
	if (*out)
		return 0;
	if (asprintf(out, "%s%s%s", dir, dir[0] ? "/" : "", name) < 0) {
		*out = NULL;
		return cf_nomem(c);
	}
	return 0;
}

int cf_admin_finish(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;
	const char *sd = conf->server.state_dir;
	int rc;
	if ((rc = default_path(c, &conf->admin.audit_log, sd, "audit.log")) ||
	    (rc = default_path(c, &conf->admin.tokens_file, sd, "admin-tokens")) ||
	    (rc = default_path(c, &conf->admin.www_dir, "", BW_WWWDIR)))
		return rc;
	return 0;
}

void cf_admin_free(struct bw_conf *conf)
{
	free(conf->admin.address);
	free(conf->admin.tls_cert);
	free(conf->admin.tls_key);
	free(conf->admin.www_dir);
	free(conf->admin.audit_log);
	free(conf->admin.tokens_file);
}
