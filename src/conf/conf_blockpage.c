/*
 * conf/conf_blockpage.c - the `block-page:` section: where the block page listens and
 * what it says (docs/blockpage.md). Off unless the section is written.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"

#define TEXT_MAX 2000 /* title, text and contact: each at most this many bytes */

static int get_text(struct cf_ctx *c, yaml_node_t *m, const char *key, char **out)
{
	yaml_node_t *v = cf_get(c, m, key);
	int rc;
	if (!v)
		return 0;
	if ((rc = cf_get_string(c, v, key, out)))
		return rc;
	if (strlen(*out) > TEXT_MAX)
		return cf_fail_at(c, v, BW_EINVAL, "block-page.%s: longer than %d bytes", key,
				  TEXT_MAX);
	return 0;
}

int cf_parse_block_page(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"listen", "title", "text", "contact", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_check_keys(c, m, "block-page", keys)))
		return rc;
	if (!(v = cf_get(c, m, "listen")))
		return cf_fail_at(c, m, BW_EINVAL,
				  "block-page: listen is required: the address and port of the "
				  "page (the address your redirect feeds send people to), e.g. "
				  "192.0.2.80@80");
	if ((rc = cf_get_addr_port(c, v, "listen", &conf->block_page.address,
				   &conf->block_page.port)))
		return rc;
	cf_make_sockaddr(conf->block_page.address, conf->block_page.port, &conf->block_page.addr,
			 &conf->block_page.addrlen);
	if ((rc = get_text(c, m, "title", &conf->block_page.title)) ||
	    (rc = get_text(c, m, "text", &conf->block_page.text)) ||
	    (rc = get_text(c, m, "contact", &conf->block_page.contact)))
		return rc;
	if (!conf->block_page.title &&
	    !(conf->block_page.title = strdup("This site was blocked to protect you")))
		return cf_nomem(c);
	if (!conf->block_page.text &&
	    !(conf->block_page.text = strdup(
		  "Your network's protective DNS service stopped this visit because the site "
		  "is listed as dangerous: it may steal passwords, spread malicious software or "
		  "control infected devices. If you think it is safe and you need it, ask your "
		  "administrator to review it, and give them the name and the list below.")))
		return cf_nomem(c);
	conf->block_page.enabled = true;
	return 0;
}
