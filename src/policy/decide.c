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
static void consider(struct bw_answer_decision *d, const struct bw_verdict *v,
		     const struct bw_match *via)
{
	bool addr = via->kind == BW_MATCH_ADDRESS;
	bool had_addr = d->via.kind == BW_MATCH_ADDRESS;
	if (d->have && (v->feed > d->v.feed || (v->feed == d->v.feed && addr >= had_addr)))
		return;
	d->have = true;
	d->via = *via;
	d->v = *v;
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
	int af = family == 4 ? AF_INET : AF_INET6;
	if (!bw_policy_match_ip(a->p, a->profile, af, addr, &v))
		return false;
	struct bw_match m = {.kind = BW_MATCH_ADDRESS, .family = af};
	memcpy(m.addr, addr, family == 4 ? 4 : 16);
	consider(a->d, &v, &m);
	return false; /* look at every address: a lower feed may match another one */
}

bool bw_policy_decide_answer(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			     size_t len, bool deferred, const struct bw_chain *chain,
			     const struct bw_answer_meta *m, const uint8_t *body,
			     struct bw_answer_decision *d)
{
	struct bw_verdict v;
	memset(d, 0, sizeof(*d));
	if (deferred && bw_policy_match_qname(p, profile, name_lc, len, &v)) {
		struct bw_match q = {.kind = BW_MATCH_QNAME, .name = name_lc, .name_len = len};
		consider(d, &v, &q);
	}
	for (unsigned i = 0; chain && i < chain->n; i++) {
		if (chain->len[i] == len && !memcmp(chain->name[i], name_lc, len))
			continue; /* checked before resolution */
		if (!bw_policy_match_qname(p, profile, chain->name[i], chain->len[i], &v))
			continue;
		struct bw_match c = {
		    .kind = BW_MATCH_CNAME, .name = chain->name[i], .name_len = chain->len[i]};
		consider(d, &v, &c);
	}
	if (m && body) {
		struct addr_ctx a = {.p = p, .profile = profile, .d = d};
		bw_answer_addrs(m, body, one_addr, &a);
	}
	return d->have;
}

const char *bw_match_text(const struct bw_match *m, char *buf, size_t cap)
{
	char t[4 * BW_DNS_MAXNAME + 2];
	buf[0] = 0;
	if (!m)
		return buf;
	switch (m->kind) {
	case BW_MATCH_QNAME:
		break;
	case BW_MATCH_CNAME:
		if (bw_name_to_text(m->name, m->name_len, t, sizeof(t)) >= 0)
			snprintf(buf, cap, "CNAME %s", t);
		break;
	case BW_MATCH_ADDRESS:
		if (inet_ntop(m->family, m->addr, t, sizeof(t)))
			snprintf(buf, cap, "address %s", t);
		break;
	case BW_MATCH_CLIENT:
		snprintf(buf, cap, "client address");
		break;
	case BW_MATCH_GUARD:
		snprintf(buf, cap, "%s", m->text ? m->text : "");
		break;
	}
	return buf;
}

void bw_verdict_ede_text(const struct bw_verdict *v, const struct bw_match *via, char *buf,
			 size_t cap)
{
	char t[4 * BW_DNS_MAXNAME + 16];
	if (bw_match_text(via, t, sizeof(t))[0])
		snprintf(buf, cap, "blocked by %s (%s) via %s", v->feed_name, v->category, t);
	else
		snprintf(buf, cap, "blocked by %s (%s)", v->feed_name, v->category);
}
