/*
 * policy/match.c - the hot path: QNAME, NSDNAME and IP trigger matches, and the choice of a
 * profile. Nothing here allocates, takes a lock or writes anything but the verdict.
 *
 * A name is looked up by its suffixes (a suffix of a wire name on a label boundary is a
 * wire name): all of them are hashed first and their slots prefetched, so the cache misses
 * overlap, then probed most specific first. Every probe looks at the overlay (if any)
 * first: a feed that has an overlay slot for the key hides the base's slot of that feed.
 */
#include <limits.h>
#include <netinet/in.h>

#include "dns/dns.h"
#include "policy/snapshot.h"

struct hit {
	int feed; /* MAX_FEEDS: none yet */
	uint8_t act;
	uint8_t kind; /* extras kind: table * 2 + (0 exact | 1 wildcard) */
	uint8_t trig;
	const struct rset *rs;
	const struct slot *s;
	size_t pos; /* where the matched suffix starts in the name */
};

struct suffixes {
	uint32_t hash[WIRE_MAX / 2 + 1];
	uint8_t start[WIRE_MAX / 2 + 1];
	size_t n;
};

static inline uint64_t bit(unsigned feed)
{
	return 1ULL << feed;
}

static const struct profile *get_profile(const struct bw_policy *p, unsigned profile)
{
	if (profile >= p->n_profiles)
		profile = p->default_profile;
	return &p->profiles[profile];
}

/* Hashes the name and each parent (the root only when `root` and the name is well formed)
 * and prefetches their slots in the tables given. A label that would run past len ends
 * the walk: a malformed name matches less, never reads out of bounds. */
static void hash_suffixes(const struct bw_policy *p, const uint8_t *name, size_t len, bool root,
			  int tab, bool allow, struct suffixes *sf)
{
	const struct rset *base = &p->base->rs, *ov = p->ov;
	uint64_t seed = p->base->seed;
	size_t pos = 0;

	sf->n = 0;
	while (pos < len && name[pos] != 0 && pos + 1u + name[pos] < len) {
		uint32_t h = (uint32_t)bw_hash(name + pos, len - pos, seed);
		sf->hash[sf->n] = h;
		sf->start[sf->n++] = (uint8_t)pos;
		__builtin_prefetch(&base->tab[tab].slots[h & base->tab[tab].mask]);
		if (allow)
			__builtin_prefetch(
			    &base->tab[TAB_ALLOW].slots[h & base->tab[TAB_ALLOW].mask]);
		if (ov)
			__builtin_prefetch(&ov->tab[tab].slots[h & ov->tab[tab].mask]);
		pos += 1u + name[pos];
	}
	if (root && pos == len - 1 && name[pos] == 0) {
		sf->hash[sf->n] = (uint32_t)bw_hash(name + pos, 1, seed);
		sf->start[sf->n++] = (uint8_t)pos;
	}
}

static bool allowed(const struct bw_policy *p, unsigned profile, const uint8_t *key, size_t len,
		    uint32_t h)
{
	const struct rset *rs = &p->base->rs;
	const struct table *t = &rs->tab[TAB_ALLOW];
	uint32_t i = h & t->mask;
	const struct slot *s;

	while ((s = slot_next(rs, t, &i, h, key, len))) {
		if (s->feed == 0 || s->feed == profile + 1)
			return true;
	}
	return false;
}

/* Offers every slot of key (overlay first, then the base minus what the overlay hides). */
static void probe(const struct bw_policy *p, uint64_t mask, int tab, const uint8_t *key, size_t len,
		  uint32_t h, bool wild, size_t pos, struct hit *best)
{
	const struct rset *sets[2] = {p->ov, &p->base->rs};
	uint64_t shadow = 0;

	for (int k = 0; k < 2; k++) {
		const struct rset *rs = sets[k];
		if (!rs)
			continue;
		const struct table *t = &rs->tab[tab];
		uint32_t i = h & t->mask;
		const struct slot *s;
		while ((s = slot_next(rs, t, &i, h, key, len))) {
			uint64_t b = bit(s->feed);
			if (k == 0)
				shadow |= b;
			else if (shadow & b)
				continue;
			if (!(mask & b) || s->feed >= best->feed)
				continue;
			uint8_t act = wild ? s->b : s->a;
			if ((act & ACT_MASK) == 0)
				continue;
			best->feed = s->feed;
			best->act = act;
			best->kind = (uint8_t)(tab * 2 + wild);
			best->rs = rs;
			best->s = s;
			best->pos = pos;
		}
	}
}

static bool is_blocking(enum bw_action a)
{
	return a == BW_ACT_NXDOMAIN || a == BW_ACT_NODATA || a == BW_ACT_DROP ||
	       a == BW_ACT_LOCAL_DATA || a == BW_ACT_REDIRECT;
}

/* Fills v from the winning slot, with the feed's action override applied. */
static void fill(const struct bw_policy *p, const struct hit *h, const uint8_t *name,
		 struct bw_verdict *v)
{
	const struct feedinfo *fi = &p->base->feeds[h->feed];
	enum bw_action act = (enum bw_action)(h->act & ACT_MASK);
	const struct extra *e = NULL;

	if (h->act & ACT_EXTRA)
		e = bw_snap_extra(h->rs, extra_key(h->s->off, h->s->feed, h->kind));
	v->feed = h->feed;
	v->feed_name = fi->name;
	v->category = fi->category;
	v->trigger = h->trig;
	v->ttl = e ? e->ttl : fi->ttl;
	if (name) {
		v->match = name + h->pos;
		v->match_len = h->s->len;
	}
	if (is_blocking(act)) {
		switch (fi->override) {
		case BW_FEED_ACT_NXDOMAIN:
			act = BW_ACT_NXDOMAIN;
			e = NULL;
			break;
		case BW_FEED_ACT_NODATA:
			act = BW_ACT_NODATA;
			e = NULL;
			break;
		case BW_FEED_ACT_DROP:
			act = BW_ACT_DROP;
			e = NULL;
			break;
		case BW_FEED_ACT_REDIRECT:
			e = NULL;
			if (fi->redirect_target_len) {
				act = BW_ACT_REDIRECT;
				v->target = fi->redirect_target;
				v->target_len = fi->redirect_target_len;
			} else {
				act = BW_ACT_LOCAL_DATA;
				v->data = fi->redirect_data;
				v->data_len = fi->redirect_len;
				v->n_rrs = fi->redirect_n;
			}
			break;
		case BW_FEED_ACT_LOG_ONLY:
			v->log_only = true;
			break;
		case BW_FEED_ACT_GIVEN:
			break;
		}
	} else if (fi->override == BW_FEED_ACT_LOG_ONLY) {
		v->log_only = true;
	}
	v->action = act;
	v->ede = is_blocking(act) ? BW_EDE_BLOCKED : BW_EDE_NONE;
	if (e && act == BW_ACT_LOCAL_DATA) {
		v->data = h->rs->data + e->data_off;
		v->data_len = e->data_len;
		v->n_rrs = e->n_rrs;
	} else if (e && act == BW_ACT_REDIRECT) {
		v->target = h->rs->data + e->target_off;
		v->target_len = e->target_len;
		v->target_wildcard = e->target_wild != 0;
	}
}

static void verdict_init(struct bw_verdict *v)
{
	*v = (struct bw_verdict){.action = BW_ACT_ALLOW, .ede = BW_EDE_NONE, .feed = -1};
}

/* TTL of a local block: short, since it may be undone (a client keeps the NXDOMAIN) */
#define LOCAL_TTL 60

/* A local decision on the suffix of name at pos (decisions.h): it wins over every feed.
 * An allow is an allowlist hit (no rule: false); a block an NXDOMAIN whose feed is -1,
 * lower than any feed, so the precedence checks of decide.c let it win. */
static bool local_verdict(const struct bw_local_decision *d, const uint8_t *name, size_t pos,
			  struct bw_verdict *v)
{
	v->local = true;
	v->feed_name = "local";
	v->category = "local";
	v->match = name + pos;
	v->match_len = d->len;
	v->trigger = pos ? BW_TRIG_WILDCARD : BW_TRIG_QNAME;
	if (d->action == BW_DECISION_ALLOW) {
		v->allowlisted = true;
		return false;
	}
	v->action = BW_ACT_NXDOMAIN;
	v->ede = BW_EDE_BLOCKED;
	v->ttl = LOCAL_TTL;
	return true;
}

static bool has_root(const struct bw_policy *p, int tab)
{
	return p->base->rs.has_root[tab] || (p->ov && p->ov->has_root[tab]);
}

/* QNAME (tab TAB_QNAME, allowlists first) or NSDNAME (TAB_NSD) on a name. */
static bool match_name(const struct bw_policy *p, unsigned profile, int tab, const uint8_t *name,
		       size_t len, struct bw_verdict *v)
{
	struct suffixes sf;
	struct hit best = {.feed = MAX_FEEDS};

	verdict_init(v);
	if (!p || !name || len == 0 || len > WIRE_MAX)
		return false;
	if (profile >= p->n_profiles)
		profile = p->default_profile;
	const struct profile *pr = get_profile(p, profile);
	bool check_allow = tab == TAB_QNAME && pr->has_allow;
	const struct bw_decisions *local = tab == TAB_QNAME ? p->local : NULL;
	if (pr->mask == 0 && !check_allow && !local)
		return false;
	hash_suffixes(p, name, len, has_root(p, tab), tab, check_allow, &sf);
	for (size_t i = 0; i < sf.n; i++) {
		const uint8_t *key = name + sf.start[i];
		size_t klen = len - sf.start[i];

		const struct bw_local_decision *d = local ? bw_decisions_find(local, key, klen) : NULL;
		if (d)
			return local_verdict(d, name, sf.start[i], v);
		if (check_allow && klen > 1 && allowed(p, profile, key, klen, sf.hash[i])) {
			v->allowlisted = true;
			return false;
		}
		if (best.feed > pr->min_feed) {
			probe(p, pr->mask, tab, key, klen, sf.hash[i], i > 0, sf.start[i], &best);
		} else if (!check_allow && !local) {
			break;
		}
	}
	if (best.feed == MAX_FEEDS)
		return false;
	if (tab == TAB_QNAME)
		best.trig = best.kind & 1 ? BW_TRIG_WILDCARD : BW_TRIG_QNAME;
	else
		best.trig = BW_TRIG_NSDNAME;
	fill(p, &best, name, v);
	return true;
}

bool bw_policy_match_qname(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			   size_t len, struct bw_verdict *v)
{
	return match_name(p, profile, TAB_QNAME, name_lc, len, v);
}

bool bw_policy_match(const struct bw_policy *p, const uint8_t *name_lc, size_t len,
		     struct bw_verdict *v)
{
	return match_name(p, 0, TAB_QNAME, name_lc, len, v);
}

bool bw_policy_match_nsdname(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			     size_t len, struct bw_verdict *v)
{
	return match_name(p, profile, TAB_NSD, name_lc, len, v);
}

/* Highest set bit of the 129-bit map at or below `from`, or -1. */
static int prev_len(const uint64_t *bits, int from)
{
	while (from >= 0) {
		int w = from / 64;
		uint64_t m = bits[w];
		if (from % 64 != 63)
			m &= (2ULL << (from % 64)) - 1;
		if (m)
			return w * 64 + 63 - __builtin_clzll(m);
		from = w * 64 - 1;
	}
	return -1;
}

static bool match_ip(const struct bw_policy *p, unsigned profile, enum bw_trigger trig, int ipt,
		     int family, const uint8_t *addr, struct bw_verdict *v)
{
	struct hit best = {.feed = MAX_FEEDS};
	uint8_t key[IPKEY_MAX];
	uint64_t bits[3];

	verdict_init(v);
	if (!p || !addr || (family != AF_INET && family != AF_INET6))
		return false;
	const struct profile *pr = get_profile(p, profile);
	int fam = family == AF_INET6;
	for (int w = 0; w < 3; w++) {
		bits[w] = p->base->rs.plens[ipt][fam][w];
		if (p->ov)
			bits[w] |= p->ov->plens[ipt][fam][w];
	}
	if (pr->mask == 0)
		return false;
	int plen = fam ? 128 : 32;
	while ((plen = prev_len(bits, plen)) >= 0 && best.feed > pr->min_feed) {
		size_t klen = bw_snap_ipkey(key, trig, family, addr, (unsigned)plen);
		uint32_t h = (uint32_t)bw_hash(key, klen, p->base->seed);
		probe(p, pr->mask, TAB_IP, key, klen, h, false, 0, &best);
		plen--;
	}
	if (best.feed == MAX_FEEDS)
		return false;
	best.trig = (uint8_t)trig;
	fill(p, &best, NULL, v);
	return true;
}

bool bw_policy_match_ip(const struct bw_policy *p, unsigned profile, int family,
			const uint8_t *addr, struct bw_verdict *v)
{
	return match_ip(p, profile, BW_TRIG_RESPONSE_IP, IPT_RESP, family, addr, v);
}

bool bw_policy_match_nsip(const struct bw_policy *p, unsigned profile, int family,
			  const uint8_t *addr, struct bw_verdict *v)
{
	return match_ip(p, profile, BW_TRIG_NSIP, IPT_NSIP, family, addr, v);
}

bool bw_policy_match_client(const struct bw_policy *p, unsigned profile,
			    const struct sockaddr *client, struct bw_verdict *v)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t a[16];

	verdict_init(v);
	if (!p || !client)
		return false;
	if (client->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)client)->sin_addr, 4);
		return match_ip(p, profile, BW_TRIG_CLIENT_IP, IPT_CLIENT, AF_INET, a, v);
	}
	if (client->sa_family != AF_INET6)
		return false;
	memcpy(a, &((const struct sockaddr_in6 *)client)->sin6_addr, 16);
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) /* dual-stack socket: IPv4 rules */
		return match_ip(p, profile, BW_TRIG_CLIENT_IP, IPT_CLIENT, AF_INET, a + 12, v);
	return match_ip(p, profile, BW_TRIG_CLIENT_IP, IPT_CLIENT, AF_INET6, a, v);
}

bool bw_policy_has_client_rules(const struct bw_policy *p, unsigned profile)
{
	return p && get_profile(p, profile)->has_client;
}

int bw_policy_first_post_feed(const struct bw_policy *p, unsigned profile)
{
	return p ? get_profile(p, profile)->first_post : INT_MAX;
}

unsigned bw_policy_profile_count(const struct bw_policy *p)
{
	return p ? p->n_profiles : 0;
}

const char *bw_policy_profile_name(const struct bw_policy *p, unsigned profile)
{
	if (!p || profile >= p->n_profiles)
		return NULL;
	return p->profiles[profile].name;
}

bool bw_policy_profile_has_feed(const struct bw_policy *p, unsigned profile, unsigned feed)
{
	if (!p || profile >= p->n_profiles || feed >= MAX_FEEDS)
		return false;
	return (p->profiles[profile].mask >> feed) & 1;
}

unsigned bw_policy_select_profile(const struct bw_policy *p, const struct bw_conf *conf,
				  int listener, const struct sockaddr *client)
{
	if (!p)
		return 0;
	unsigned n = p->n_profiles;
	if (conf && listener >= 0 && (size_t)listener < conf->server.n_listen) {
		int k = conf->server.listen[listener].profile;
		if (k >= 0 && (unsigned)k < n)
			return (unsigned)k;
	}
	if (conf && client) {
		for (size_t k = 0; k < conf->policy.n_profiles && k < n; k++) {
			const struct bw_profile_conf *pc = &conf->policy.profiles[k];
			for (size_t c = 0; c < pc->n_clients; c++) {
				if (bw_cidr_match(&pc->clients[c], client))
					return (unsigned)k;
			}
		}
	}
	return p->default_profile;
}

bool bw_policy_overlay_touches(const struct bw_policy *p, const uint8_t *name, size_t len)
{
	const struct rset *ov = p->ov;
	if (!ov)
		return false;
	if (ov->has_root[TAB_QNAME])
		return true;
	const struct table *t = &ov->tab[TAB_QNAME];
	size_t pos = 0;
	while (pos < len && name[pos] != 0 && pos + 1u + name[pos] < len) {
		uint32_t h = (uint32_t)bw_hash(name + pos, len - pos, p->base->seed);
		uint32_t i = h & t->mask;
		if (slot_next(ov, t, &i, h, name + pos, len - pos))
			return true;
		pos += 1u + name[pos];
	}
	return false;
}

bool bw_policy_overlay_has_addr_rules(const struct bw_policy *p)
{
	const struct rset *ov = p->ov;
	return ov && (ov->tab[TAB_IP].count || ov->tab[TAB_NSD].count || ov->has_root[TAB_NSD]);
}

bool bw_policy_has_overlay(const struct bw_policy *p)
{
	return p->ov != NULL;
}

size_t bw_policy_overlay_keys(const struct bw_policy *p)
{
	size_t n = 0;
	for (int t = 0; p->ov && t < N_TAB; t++)
		n += p->ov->tab[t].count;
	return n;
}
