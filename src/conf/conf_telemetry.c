/*
 * conf/conf_telemetry.c - the `telemetry:` section: what is kept about queries.
 */
#include "conf/internal.h"

int cf_parse_telemetry(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"privacy", NULL};
	static const char *const modes[] = {"none", "blocked-only", "anonymized", "full", NULL};
	yaml_node_t *v;
	int rc, mode;

	if ((rc = cf_check_keys(c, m, "telemetry", keys)))
		return rc;
	if ((v = cf_get(c, m, "privacy"))) {
		if ((rc = cf_get_enum(c, v, "privacy", modes, &mode)))
			return rc;
		c->conf->telemetry.privacy = (enum bw_privacy)mode;
	}
	return 0;
}
