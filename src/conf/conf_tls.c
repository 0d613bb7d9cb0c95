/*
 * conf/conf_tls.c - the keys of encrypted listeners (server.listen items with
 * `transport: dot` or `transport: doh`): certificate and key files, the name DDR
 * advertises, and the maps that select a profile by TLS server name or DoH path.
 */
#include <stdlib.h>
#include <strings.h>

#include "conf/internal.h"

#define PATH_MAX_LEN 256

static int pend_profile(struct cf_ctx *c, yaml_node_t *n, int *out)
{
	struct cf_pending_profile *p =
	    realloc(c->tls_profiles, (c->n_tls_profiles + 1) * sizeof(*p));
	if (!p)
		return cf_nomem(c);
	c->tls_profiles = p;
	p[c->n_tls_profiles].node = n;
	p[c->n_tls_profiles].out = out;
	c->n_tls_profiles++;
	return 0;
}

static const char *path_problem(const char *s)
{
	size_t len = strlen(s);
	if (s[0] != '/')
		return "must start with '/'";
	if (len > PATH_MAX_LEN)
		return "is too long (at most 256 characters)";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#' || ch == '%')
			return "may hold only printable ASCII without '?', '#', '%' or spaces";
	}
	return NULL;
}

/* name -> profile (or null) mapping; kind "sni" or "doh-paths" */
static int parse_map(struct cf_ctx *c, yaml_node_t *m, const char *key,
		     struct bw_name_profile **out, size_t *n_out)
{
	int rc;
	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, key)))
		return rc;
	size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
	if (!n)
		return cf_fail_at(c, m, BW_EINVAL, "'%s' must name at least one %s", key,
			       strcmp(key, "sni") ? "path" : "server name");
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];
		yaml_node_t *k = cf_node(c, p->key), *v = cf_node(c, p->value);
		const char *s, *why;
		if ((rc = cf_want_scalar(c, k, key, &s)))
			return rc;
		if (strcmp(key, "sni") ? (why = path_problem(s)) != NULL
				       : (why = cf_name_problem(s)) != NULL)
			return cf_fail_at(c, k, BW_EINVAL, "%s '%s' %s", key, s, why);
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp((*out)[j].name, s))
				return cf_fail_at(c, k, BW_EINVAL, "%s '%s' is listed twice", key,
					       s);
		(*out)[i].name = strdup(s);
		(*out)[i].profile = -1;
		*n_out = i + 1;
		if (!(*out)[i].name)
			return cf_nomem(c);
		if (v && !cf_is_null(v)) {
			if ((rc = cf_want_scalar(c, v, key, &s)))
				return rc;
			if ((rc = pend_profile(c, v, &(*out)[i].profile)))
				return rc;
		}
	}
	return 0;
}

const char *const cf_listen_tls_keys[CF_LISTEN_TLS_NKEYS + 1] = {
    "tls-cert", "tls-key", "tls-name", "sni", "doh-paths", "client-id", NULL};

int cf_parse_listen_tls(struct cf_ctx *c, yaml_node_t *m, struct bw_listen *l)
{
	const char *const *tls_keys = cf_listen_tls_keys;
	bool encrypted = l->transport != BW_TRANSPORT_DNS;
	yaml_node_t *v;
	int rc;

	for (size_t i = 0; tls_keys[i]; i++) {
		v = cf_get(c, m, tls_keys[i]);
		if (!v)
			continue;
		if (!encrypted)
			return cf_fail_at(c, v, BW_EINVAL,
				       "'%s' is only for encrypted listeners (transport: dot "
				       "or doh)",
				       tls_keys[i]);
		if (l->transport == BW_TRANSPORT_DOT && !strcmp(tls_keys[i], "doh-paths"))
			return cf_fail_at(c, v, BW_EINVAL,
				       "'doh-paths' is only for transport: doh");
	}
	if (!encrypted)
		return 0;
	const char *where = l->transport == BW_TRANSPORT_DOT ? "server.listen item (dot)"
							     : "server.listen item (doh)";
	if ((rc = cf_need(c, m, "tls-cert", where, &v)) ||
	    (rc = cf_get_file(c, v, "tls-cert", "tls-cert", &l->tls_cert)))
		return rc;
	if ((rc = cf_need(c, m, "tls-key", where, &v)) ||
	    (rc = cf_get_file(c, v, "tls-key", "tls-key", &l->tls_key)))
		return rc;
	if ((v = cf_get(c, m, "tls-name"))) {
		const char *s, *why;
		if ((rc = cf_want_scalar(c, v, "tls-name", &s)))
			return rc;
		if ((why = cf_name_problem(s)))
			return cf_fail_at(c, v, BW_EINVAL, "tls-name '%s' %s", s, why);
		if (!(l->tls_name = strdup(s)))
			return cf_nomem(c);
	}
	if ((v = cf_get(c, m, "sni")) && (rc = parse_map(c, v, "sni", &l->sni, &l->n_sni)))
		return rc;
	if ((v = cf_get(c, m, "client-id"))) {
		static const char *const modes[] = {"optional", "required", NULL};
		int mode;
		if ((rc = cf_get_enum(c, v, "client-id", modes, &mode)))
			return rc;
		l->client_id_required = mode == 1;
	}
	if (l->transport != BW_TRANSPORT_DOH)
		return 0;
	if ((v = cf_get(c, m, "doh-paths")))
		return parse_map(c, v, "doh-paths", &l->doh_paths, &l->n_doh_paths);
	l->doh_paths = calloc(1, sizeof(*l->doh_paths));
	if (!l->doh_paths || !(l->doh_paths[0].name = strdup("/dns-query")))
		return cf_nomem(c);
	l->doh_paths[0].profile = -1;
	l->n_doh_paths = 1;
	return 0;
}

static void free_map(struct bw_name_profile *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

void cf_free_listen_tls(struct bw_listen *l)
{
	free(l->tls_cert);
	free(l->tls_key);
	free(l->tls_name);
	free_map(l->sni, l->n_sni);
	free_map(l->doh_paths, l->n_doh_paths);
}
