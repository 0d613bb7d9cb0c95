/*
 * core/access.c - the per-query lookups in the running config: the access-control action
 * for a client's address and the profile an encrypted transport selects (DoH path, TLS
 * server name). The config module parses the rules; the pipeline asks these.
 */
#include <stdio.h>
#include <strings.h>

#include "core/core.h"

enum bw_acl_action bw_access_check(const struct bw_conf *conf, const struct sockaddr *sa)
{
	for (size_t i = 0; conf && i < conf->server.n_acl; i++) {
		if (bw_cidr_match(&conf->server.acl[i].net, sa))
			return conf->server.acl[i].action;
	}
	return BW_ACL_REFUSE;
}

int bw_access_transport_profile(const struct bw_conf *conf, int listener, const char *sni,
			      const char *path)
{
	if (listener < 0 || (size_t)listener >= conf->server.n_listen)
		return -1;
	const struct bw_listen *l = &conf->server.listen[listener];
	for (size_t i = 0; path && i < l->n_doh_paths; i++)
		if (!strcmp(l->doh_paths[i].name, path) && l->doh_paths[i].profile >= 0)
			return l->doh_paths[i].profile;
	for (size_t i = 0; sni && i < l->n_sni; i++)
		if (!strcasecmp(l->sni[i].name, sni))
			return l->sni[i].profile;
	return -1;
}
