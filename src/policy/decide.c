/*
 * policy/decide.c - the decisions a query goes through, in the order the pipeline takes
 * them: a CLIENT-IP rule (before the cache), the QNAME rules (after a cache miss), then
 * the answer (every name of its CNAME chain, every address). The pipeline (core/) and
 * `bulwark explain` both call these, so explain says what the answer does.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"
#include "policy/policy.h"

bool bw_policy_decide_client(const struct bw_policy *p, unsigned profile,
			     const struct sockaddr *client, const uint8_t *name_lc, size_t len,
			     struct bw_verdict *v)
{
	struct bw_verdict qv;
	if (!client || !bw_policy_has_client_rules(p, profile) ||
	    !bw_policy_match_client(p, profile, client, v))
		return false;
	/* the allowlists, or a QNAME rule of an earlier feed, still come first */
	bool qm = bw_policy_match_qname(p, profile, name_lc, len, &qv);
	return !(qv.allowlisted || (qm && qv.feed < v->feed));
}

enum bw_decision bw_policy_decide_qname(const struct bw_policy *p, unsigned profile,
					const uint8_t *name_lc, size_t len, struct bw_verdict *v)
{
	if (!bw_policy_match_qname(p, profile, name_lc, len, v))
		return v->allowlisted ? BW_DECIDE_ALLOWLISTED : BW_DECIDE_NONE;
	if (v->action == BW_ACT_PASSTHRU)
		return BW_DECIDE_PASSTHRU;
	if (v->action == BW_ACT_REDIRECT && !v->log_only)
		return BW_DECIDE_REDIRECT;
	if (v->feed > bw_policy_first_post_feed(p, profile))
		return BW_DECIDE_DEFER; /* an earlier feed's response-IP rule would win */
	return BW_DECIDE_RULE;
}

/* The best post-resolution match so far: lowest feed first; within a feed a name rule
 * (the query name, or a CNAME target, which RPZ treats as a new query name) before an
 * address rule. */
static void consider(struct bw_answer_decision *d, const struct bw_verdict *v, const uint8_t *name,
		     size_t len, const char *via)
{
	bool addr = name == NULL;
	if (d->have && (v->feed > d->v.feed || (v->feed == d->v.feed && addr >= d->by_address)))
		return;
	d->have = true;
	d->by_address = addr;
	d->name = name;
	d->name_len = len;
	d->v = *v;
	snprintf(d->via, sizeof(d->via), "%s", via ? via : "");
}

struct addr_ctx {
	const struct bw_policy *p;
	unsigned profile;
	struct bw_answer_decision *d;
};

static bool one_addr(void *ctx, int family, const uint8_t *addr)
{
	struct addr_ctx *a = ctx;
	struct bw_verdict v;
	if (!bw_policy_match_ip(a->p, a->profile, family == 4 ? AF_INET : AF_INET6, addr, &v))
		return false;
	char text[INET6_ADDRSTRLEN + 8] = "address ";
	inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, text + 8, sizeof(text) - 8);
	consider(a->d, &v, NULL, 0, text);
	return false; /* look at every address: a lower feed may match another one */
}

bool bw_policy_decide_answer(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			     size_t len, bool deferred, const struct bw_chain *chain,
			     const struct bw_answer_meta *m, const uint8_t *body,
			     struct bw_answer_decision *d)
{
	struct bw_verdict v;
	memset(d, 0, sizeof(*d));
	if (deferred && bw_policy_match_qname(p, profile, name_lc, len, &v))
		consider(d, &v, name_lc, len, NULL);
	for (unsigned i = 0; chain && i < chain->n; i++) {
		if (chain->len[i] == len && !memcmp(chain->name[i], name_lc, len))
			continue; /* checked before resolution */
		if (!bw_policy_match_qname(p, profile, chain->name[i], chain->len[i], &v))
			continue;
		char text[4 * BW_DNS_MAXNAME + 8] = "CNAME ";
		if (bw_name_to_text(chain->name[i], chain->len[i], text + 6, sizeof(text) - 6) < 0)
			text[0] = 0;
		consider(d, &v, chain->name[i], chain->len[i], text);
	}
	if (m && body) {
		struct addr_ctx a = {.p = p, .profile = profile, .d = d};
		bw_answer_addrs(m, body, one_addr, &a);
	}
	return d->have;
}

void bw_verdict_ede_text(const struct bw_verdict *v, const char *via, char *buf, size_t cap)
{
	if (via && *via)
		snprintf(buf, cap, "blocked by %s (%s) via %s", v->feed_name, v->category, via);
	else
		snprintf(buf, cap, "blocked by %s (%s)", v->feed_name, v->category);
}
