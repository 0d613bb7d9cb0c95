/*
 * policy/policy.c - the policy snapshot: build from feeds (rules from the parsers in
 * rules.h), incremental deltas on an overlay, compaction, status and accessors. The match
 * itself is in match.c; the layout shared by both is in snapshot.h and described in
 * docs/internals/snapshot.md.
 *
 * Building runs on one thread (the reloader) beside the live snapshot; a returned snapshot
 * is never modified. Snapshots made by bw_policy_apply_delta() share their base with the
 * snapshot they came from (reference-counted), so they may be freed in any order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "policy/snapshot.h"

#define TABLE_MIN 16u
#define DEFAULT_TTL 300
#define MAX_KEY_BYTES UINT32_MAX /* arena and data offsets are 32 bits */

/* ---- tables ---- */

static size_t table_cap_for(size_t count)
{
	size_t cap = TABLE_MIN;

	while ((count + 1) * 8 > cap * 5)
		cap *= 2;
	return cap;
}

static int table_init(struct table *t, size_t cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return BW_ENOMEM;
	t->mask = (uint32_t)(cap - 1);
	t->count = 0;
	return 0;
}

/* Moves the slots into a table of `cap` slots, leaving out those of feed `drop` (-1:
 * none; only for the three rule tables). */
static int table_rehash(struct table *t, size_t cap, int drop)
{
	struct slot *old = t->slots;
	size_t old_cap = (size_t)t->mask + 1;

	if (cap > (1ULL << 32))
		return BW_ENOMEM;
	struct slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return BW_ENOMEM;
	uint32_t mask = (uint32_t)(cap - 1);
	size_t count = 0;
	for (size_t j = 0; j < old_cap; j++) {
		if (old[j].len == 0 || (drop >= 0 && old[j].feed == drop))
			continue;
		uint32_t i = old[j].hash & mask;
		while (slots[i].len != 0)
			i = (i + 1) & mask;
		slots[i] = old[j];
		count++;
	}
	free(old);
	t->slots = slots;
	t->mask = mask;
	t->count = count;
	return 0;
}

static int xtable_init(struct xtable *x, size_t cap)
{
	x->v = calloc(cap, sizeof(*x->v));
	if (!x->v)
		return BW_ENOMEM;
	x->mask = (uint32_t)(cap - 1);
	x->count = 0;
	return 0;
}

static struct extra *xtable_slot(const struct xtable *x, uint64_t key)
{
	uint32_t i = (uint32_t)bw_hash_mix(key) & x->mask;

	while (x->v[i].key != 0 && x->v[i].key != key)
		i = (i + 1) & x->mask;
	return &x->v[i];
}

const struct extra *bw_snap_extra(const struct rset *rs, uint64_t key)
{
	const struct extra *e = xtable_slot(&rs->x, key);

	return e->key == key ? e : NULL;
}

/* The extra of key, created empty if new. NULL: out of memory. */
static struct extra *xtable_get(struct xtable *x, uint64_t key)
{
	struct extra *e = xtable_slot(x, key);

	if (e->key == key)
		return e;
	if ((x->count + 1) * 2 > (size_t)x->mask + 1) {
		size_t cap = ((size_t)x->mask + 1) * 2;
		struct xtable nx;
		if (cap > (1ULL << 32) || xtable_init(&nx, cap))
			return NULL;
		for (size_t j = 0; j <= x->mask; j++) {
			if (x->v[j].key != 0)
				*xtable_slot(&nx, x->v[j].key) = x->v[j];
		}
		nx.count = x->count;
		free(x->v);
		*x = nx;
		e = xtable_slot(x, key);
	}
	memset(e, 0, sizeof(*e));
	e->key = key;
	x->count++;
	return e;
}

/* ---- rule sets ---- */

static int grow_bytes(uint8_t **buf, size_t *cap, size_t len, size_t more)
{
	if (len + more <= *cap)
		return 0;
	if (len + more > MAX_KEY_BYTES)
		return BW_ERANGE;
	size_t ncap = *cap ? *cap : 1 << 12;
	while (ncap < len + more)
		ncap *= 2;
	if (ncap > MAX_KEY_BYTES)
		ncap = MAX_KEY_BYTES;
	uint8_t *n = realloc(*buf, ncap);
	if (!n)
		return BW_ENOMEM;
	*buf = n;
	*cap = ncap;
	return 0;
}

static void shrink_bytes(uint8_t **buf, size_t *cap, size_t len)
{
	if (len == 0 || len == *cap)
		return;
	uint8_t *n = realloc(*buf, len);
	if (n) {
		*buf = n;
		*cap = len;
	}
}

static void rset_free(struct rset *rs)
{
	if (!rs)
		return;
	for (int t = 0; t < N_TAB; t++)
		free(rs->tab[t].slots);
	free(rs->x.v);
	free(rs->arena);
	free(rs->data);
}

/* caps: initial slot counts per table (0: the minimum). */
static int rset_init(struct rset *rs, const size_t *caps)
{
	memset(rs, 0, sizeof(*rs));
	for (int t = 0; t < N_TAB; t++) {
		if (table_init(&rs->tab[t], caps ? table_cap_for(caps[t]) : TABLE_MIN))
			return BW_ENOMEM;
	}
	return xtable_init(&rs->x, TABLE_MIN);
}

static int dup_bytes(uint8_t **dst, const uint8_t *src, size_t n)
{
	*dst = NULL;
	if (n == 0)
		return 0;
	*dst = malloc(n);
	if (!*dst)
		return BW_ENOMEM;
	memcpy(*dst, src, n);
	return 0;
}

static int rset_clone(struct rset *dst, const struct rset *src)
{
	*dst = *src;
	dst->arena = dst->data = NULL;
	dst->x.v = NULL;
	for (int t = 0; t < N_TAB; t++)
		dst->tab[t].slots = NULL;
	dst->arena_cap = src->arena_len;
	dst->data_cap = src->data_len;
	int err = dup_bytes(&dst->arena, src->arena, src->arena_len);
	err = err ? err : dup_bytes(&dst->data, src->data, src->data_len);
	for (int t = 0; t < N_TAB && !err; t++)
		err = dup_bytes((uint8_t **)&dst->tab[t].slots, (const uint8_t *)src->tab[t].slots,
				((size_t)src->tab[t].mask + 1) * sizeof(struct slot));
	err = err ? err
		  : dup_bytes((uint8_t **)&dst->x.v, (const uint8_t *)src->x.v,
			      ((size_t)src->x.mask + 1) * sizeof(struct extra));
	return err;
}

static size_t rset_memory(const struct rset *rs)
{
	size_t n = rs->arena_cap + rs->data_cap + ((size_t)rs->x.mask + 1) * sizeof(struct extra);

	for (int t = 0; t < N_TAB; t++)
		n += ((size_t)rs->tab[t].mask + 1) * sizeof(struct slot);
	return n;
}

/* ---- adding rules ---- */

/* Adds rules of one feed at a time to one rule set. */
struct adder {
	struct rset *rs;
	uint64_t seed;
	unsigned feed;
	struct feedinfo *fi; /* the feeds' TTLs; the first rule of a feed sets its TTL unless
				ttl_set */
	bool ttl_set;
	uint8_t *trig;		 /* per feed: triggers seen (or NULL) */
	size_t slots[MAX_FEEDS]; /* (key, feed) slots created, per feed */
	size_t new_keys;	 /* distinct rule keys created (allowlist excluded) */
	size_t rejected;	 /* rules the snapshot cannot hold (bad net, no data) */
	size_t ns_rules[MAX_FEEDS]; /* NSDNAME/NSIP rules stored, per feed: not enforced */
	/* the last key looked up: list formats emit QNAME and WILDCARD for the same name */
	int last_tab;
	unsigned last_feed;
	uint32_t last_idx;
	uint8_t last_len;
	uint8_t last_key[WIRE_MAX];
	/* records unpacked for re-adding a LOCAL_DATA rule */
	struct bw_rule_rr *rrs;
	size_t rrs_cap;
};

static void adder_init(struct adder *ad, struct rset *rs, uint64_t seed, struct feedinfo *fi)
{
	memset(ad, 0, sizeof(*ad));
	ad->rs = rs;
	ad->seed = seed;
	ad->fi = fi;
	ad->last_tab = -1;
}

/* Finds the slot of (key, ad->feed) in table tab, or creates it (when `create`) with no
 * rule. The key bytes are stored once per table: a new feed's slot for a known key shares
 * its arena bytes. Returns 0 and *idx, BW_ENOENT (not there, !create) or an error. */
static int find_slot(struct adder *ad, int tab, const uint8_t *key, size_t len, bool create,
		     uint32_t *idx)
{
	struct rset *rs = ad->rs;
	struct table *t = &rs->tab[tab];
	unsigned feed = ad->feed;

	if (ad->last_tab == tab && ad->last_feed == feed && ad->last_len == len &&
	    memcmp(ad->last_key, key, len) == 0) {
		*idx = ad->last_idx;
		return 0;
	}
	if (create && (t->count + 1) * 8 > ((size_t)t->mask + 1) * 5) {
		int err = table_rehash(t, ((size_t)t->mask + 1) * 2, -1);
		if (err)
			return err;
		ad->last_tab = -1;
	}
	uint32_t h = (uint32_t)bw_hash(key, len, ad->seed);
	uint32_t i = h & t->mask;
	int64_t off = -1;
	for (;;) {
		struct slot *s = &t->slots[i];
		if (s->len == 0)
			break;
		if (s->hash == h && s->len == len && memcmp(rs->arena + s->off, key, len) == 0) {
			if (s->feed == feed)
				goto found;
			off = s->off;
		}
		i = (i + 1) & t->mask;
	}
	if (!create)
		return BW_ENOENT;
	if (off < 0) {
		int err = grow_bytes(&rs->arena, &rs->arena_cap, rs->arena_len, len);
		if (err)
			return err;
		off = (int64_t)rs->arena_len;
		memcpy(rs->arena + rs->arena_len, key, len);
		rs->arena_len += len;
		if (tab != TAB_ALLOW)
			ad->new_keys++;
	}
	t->slots[i] = (struct slot){
	    .hash = h, .off = (uint32_t)off, .len = (uint8_t)len, .feed = (uint8_t)feed};
	t->count++;
	if (tab != TAB_ALLOW)
		ad->slots[feed]++;
	if (len == 1 && (tab == TAB_QNAME || tab == TAB_NSD))
		rs->has_root[tab] = true;
found:
	ad->last_tab = tab;
	ad->last_feed = feed;
	ad->last_len = (uint8_t)len;
	memcpy(ad->last_key, key, len);
	ad->last_idx = i;
	*idx = i;
	return 0;
}

/* Is name a well-formed wire name of exactly len bytes? */
static bool name_ok(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	if (!name || len == 0 || len > WIRE_MAX)
		return false;
	while (pos < len && name[pos] != 0)
		pos += 1u + name[pos];
	return pos == len - 1;
}

size_t bw_snap_ipkey(uint8_t *out, enum bw_trigger trig, int family, const uint8_t *addr,
		     unsigned prefix)
{
	size_t alen = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;

	if (alen == 0 || prefix > alen * 8)
		return 0;
	out[0] = (uint8_t)trig;
	out[1] = family == AF_INET ? 4 : 6;
	out[2] = (uint8_t)prefix;
	memcpy(out + 3, addr, alen);
	for (size_t b = 0; b < alen; b++) {
		size_t first = b * 8;
		if (first >= prefix)
			out[3 + b] = 0;
		else if (first + 8 > prefix)
			out[3 + b] &= (uint8_t)(0xff00u >> (prefix - first));
	}
	return 3 + alen;
}

static int ipt_of(enum bw_trigger t)
{
	return t == BW_TRIG_CLIENT_IP ? IPT_CLIENT : t == BW_TRIG_RESPONSE_IP ? IPT_RESP : IPT_NSIP;
}

/* Where a rule lives: its table, key and field (0: exact / IP, 1: wildcard). Returns the
 * key length, 0 when the rule cannot be stored. */
static size_t rule_key(const struct bw_rule *r, uint8_t *key, int *tab, int *field)
{
	switch (r->trigger) {
	case BW_TRIG_QNAME:
	case BW_TRIG_WILDCARD:
	case BW_TRIG_NSDNAME:
		if (!name_ok(r->name, r->name_len))
			return 0;
		memcpy(key, r->name, r->name_len);
		*tab = r->trigger == BW_TRIG_NSDNAME ? TAB_NSD : TAB_QNAME;
		*field = r->trigger == BW_TRIG_WILDCARD ||
			 (r->trigger == BW_TRIG_NSDNAME && r->nsdname_wildcard);
		return r->name_len;
	case BW_TRIG_CLIENT_IP:
	case BW_TRIG_RESPONSE_IP:
	case BW_TRIG_NSIP:
		*tab = TAB_IP;
		*field = 0;
		return bw_snap_ipkey(key, r->trigger, r->net.family, r->net.addr, r->net.prefix);
	}
	return 0;
}

/* ---- counting entries as the snapshot stores them (rules.h bw_entry_count) ---- */

struct bw_entry_count {
	uint64_t *h;   /* open addressing on the keyed hash of (table, key); 0 = empty */
	size_t mask, n;
	struct bw_hash_key key;
};

struct bw_entry_count *bw_entry_count_new(void)
{
	struct bw_entry_count *c = calloc(1, sizeof(*c));
	if (!c || !(c->h = calloc(1024, sizeof(*c->h)))) {
		free(c);
		return NULL;
	}
	c->mask = 1023;
	bw_hash_key_random(&c->key);
	return c;
}

void bw_entry_count_free(struct bw_entry_count *c)
{
	if (c)
		free(c->h);
	free(c);
}

uint64_t bw_entry_count_get(const struct bw_entry_count *c)
{
	return c ? c->n : 0;
}

static void count_put(uint64_t *h, size_t mask, uint64_t v)
{
	size_t i = (size_t)v & mask;
	while (h[i] && h[i] != v)
		i = (i + 1) & mask;
	h[i] = v;
}

int bw_entry_count_add(struct bw_entry_count *c, const struct bw_rule *r)
{
	uint8_t key[WIRE_MAX + 1];
	int tab, field;
	size_t len = rule_key(r, key + 1, &tab, &field);

	if (len == 0)
		return 0; /* the snapshot would not store it either */
	key[0] = (uint8_t)tab; /* a name's exact and wildcard rules are one entry */
	uint64_t v = bw_hash_keyed(key, len + 1, &c->key) | 1;
	size_t i = (size_t)v & c->mask;
	while (c->h[i]) {
		if (c->h[i] == v)
			return 0;
		i = (i + 1) & c->mask;
	}
	c->h[i] = v;
	if (++c->n * 2 > c->mask) { /* at most half full */
		size_t cap = (c->mask + 1) * 2;
		uint64_t *nh = calloc(cap, sizeof(*nh));
		if (!nh)
			return BW_ENOMEM;
		for (size_t k = 0; k <= c->mask; k++)
			if (c->h[k])
				count_put(nh, cap - 1, c->h[k]);
		free(c->h);
		c->h = nh;
		c->mask = cap - 1;
	}
	return 0;
}

static uint8_t *field_of(struct slot *s, int field)
{
	return field ? &s->b : &s->a;
}

/* Sets the data of (key at off, feed, kind) from r; `merge` appends r's records to those
 * already there (LOCAL_DATA of one trigger is one answer). */
static int set_extra(struct adder *ad, uint32_t off, int kind, const struct bw_rule *r, bool merge)
{
	struct rset *rs = ad->rs;
	struct extra *e = xtable_get(&rs->x, extra_key(off, ad->feed, (unsigned)kind));
	int err;

	if (!e)
		return BW_ENOMEM;
	if (!merge) {
		uint64_t key = e->key;
		memset(e, 0, sizeof(*e));
		e->key = key;
		e->ttl = r->ttl;
	}
	if (r->action == BW_ACT_LOCAL_DATA) {
		size_t need = 0, n = r->n_rrs;
		if (e->n_rrs + n > UINT16_MAX)
			n = UINT16_MAX - e->n_rrs;
		for (size_t i = 0; i < n; i++)
			need += 8u + r->rrs[i].rdlen;
		if (merge && e->data_off + e->data_len != rs->data_len) {
			/* not the last data written: move it to the end first */
			err =
			    grow_bytes(&rs->data, &rs->data_cap, rs->data_len, e->data_len + need);
			if (err)
				return err;
			memcpy(rs->data + rs->data_len, rs->data + e->data_off, e->data_len);
			e->data_off = (uint32_t)rs->data_len;
			rs->data_len += e->data_len;
		} else {
			err = grow_bytes(&rs->data, &rs->data_cap, rs->data_len, need);
			if (err)
				return err;
			if (!merge)
				e->data_off = (uint32_t)rs->data_len;
		}
		uint8_t *w = rs->data + rs->data_len;
		for (size_t i = 0; i < n; i++) {
			const struct bw_rule_rr *rr = &r->rrs[i];
			bw_put16(w, rr->type);
			bw_put32(w + 2, rr->ttl);
			bw_put16(w + 6, rr->rdlen);
			if (rr->rdlen)
				memcpy(w + 8, rr->rdata, rr->rdlen);
			w += 8u + rr->rdlen;
		}
		rs->data_len += need;
		e->data_len += (uint32_t)need;
		e->n_rrs = (uint16_t)(e->n_rrs + n);
	} else if (r->action == BW_ACT_REDIRECT) {
		err = grow_bytes(&rs->data, &rs->data_cap, rs->data_len, r->target_len);
		if (err)
			return err;
		memcpy(rs->data + rs->data_len, r->target, r->target_len);
		e->target_off = (uint32_t)rs->data_len;
		e->target_len = (uint8_t)r->target_len;
		e->target_wild = r->target_wildcard;
		rs->data_len += r->target_len;
	}
	return 0;
}

/* Adds one rule for feed ad->feed. Same (key, feed, trigger) twice: PASSTHRU wins over
 * anything, LOCAL_DATA records merge into one answer, otherwise the first rule stays; a
 * cname_exclusive rule that would meet a rule of another kind is refused with
 * BW_SINK_CONFLICT (the parser counts it). */
static int add_rule(struct adder *ad, const struct bw_rule *r)
{
	uint8_t key[WIRE_MAX];
	int tab, field;
	uint32_t idx;
	enum bw_action act = r->action == BW_ACT_ALLOW ? BW_ACT_PASSTHRU : r->action;
	size_t len = rule_key(r, key, &tab, &field);

	if (len == 0 || act > BW_ACT_PASSTHRU ||
	    (act == BW_ACT_LOCAL_DATA && (r->n_rrs == 0 || !r->rrs)) ||
	    (act == BW_ACT_REDIRECT && !name_ok(r->target, r->target_len))) {
		ad->rejected++;
		return 0;
	}
	if (r->trigger == BW_TRIG_NSDNAME || r->trigger == BW_TRIG_NSIP)
		ad->ns_rules[ad->feed]++;
	if (ad->fi && !ad->ttl_set) {
		ad->fi[ad->feed].ttl = r->ttl;
		ad->ttl_set = true;
	}
	uint32_t dttl = ad->fi ? ad->fi[ad->feed].ttl : DEFAULT_TTL;
	int err = find_slot(ad, tab, key, len, true, &idx);
	if (err)
		return err;
	struct slot *s = &ad->rs->tab[tab].slots[idx];
	uint8_t *f = field_of(s, field);
	unsigned cur = *f & ACT_MASK;
	bool extra = act == BW_ACT_LOCAL_DATA || act == BW_ACT_REDIRECT || r->ttl != dttl;
	bool merge = false;

	/* RPZ: a CNAME stands alone at its owner (the first record of the owner stays) */
	if (r->cname_exclusive && cur != 0 &&
	    (cur != BW_ACT_LOCAL_DATA || act != BW_ACT_LOCAL_DATA))
		return BW_SINK_CONFLICT;
	if (cur == 0 || (act == BW_ACT_PASSTHRU && cur != BW_ACT_PASSTHRU)) {
		*f = (uint8_t)(act | (extra ? ACT_EXTRA : 0));
	} else if (cur == BW_ACT_LOCAL_DATA && act == BW_ACT_LOCAL_DATA) {
		merge = true;
	} else {
		return 0; /* the first rule stays */
	}
	if (tab == TAB_IP) {
		int fam = r->net.family == AF_INET6;
		ad->rs->plens[ipt_of(r->trigger)][fam][r->net.prefix / 64] |=
		    1ULL << (r->net.prefix % 64);
	}
	if (ad->trig)
		ad->trig[ad->feed] |= (uint8_t)(1u << r->trigger);
	if (extra || merge)
		return set_extra(ad, s->off, tab * 2 + field, r, merge);
	return 0;
}

static int sink_add(void *ctx, const struct bw_rule *r)
{
	return add_rule(ctx, r);
}

/* ---- reading rules back out of a rule set ---- */

typedef int (*rule_fn)(void *ctx, unsigned feed, const struct bw_rule *r);

/* Calls fn for each rule stored in slot s of table tab (dttl: the feed's TTL). */
static int slot_rules(struct adder *tmp, const struct rset *rs, int tab, const struct slot *s,
		      uint32_t dttl, rule_fn fn, void *ctx)
{
	const uint8_t *key = rs->arena + s->off;

	for (int field = 0; field < 2; field++) {
		uint8_t act = field ? s->b : s->a;
		struct bw_rule r = {0};

		if ((act & ACT_MASK) == 0)
			continue;
		r.action = (enum bw_action)(act & ACT_MASK);
		r.ttl = dttl;
		if (tab == TAB_IP) {
			r.trigger = (enum bw_trigger)key[0];
			r.net.family = key[1] == 4 ? AF_INET : AF_INET6;
			r.net.prefix = key[2];
			memcpy(r.net.addr, key + 3, s->len - 3u);
		} else {
			r.name = key;
			r.name_len = s->len;
			if (tab == TAB_QNAME)
				r.trigger = field ? BW_TRIG_WILDCARD : BW_TRIG_QNAME;
			else
				r.trigger = BW_TRIG_NSDNAME, r.nsdname_wildcard = field;
		}
		const struct extra *e =
		    act & ACT_EXTRA
			? bw_snap_extra(rs, extra_key(s->off, s->feed, (unsigned)(tab * 2 + field)))
			: NULL;
		if (e) {
			r.ttl = e->ttl;
			if (r.action == BW_ACT_LOCAL_DATA) {
				if (e->n_rrs > tmp->rrs_cap) {
					struct bw_rule_rr *n =
					    realloc(tmp->rrs, e->n_rrs * sizeof(*n));
					if (!n)
						return BW_ENOMEM;
					tmp->rrs = n;
					tmp->rrs_cap = e->n_rrs;
				}
				const uint8_t *d = rs->data + e->data_off;
				for (size_t i = 0; i < e->n_rrs; i++) {
					tmp->rrs[i] = (struct bw_rule_rr){.type = bw_get16(d),
									  .ttl = bw_get32(d + 2),
									  .rdlen = bw_get16(d + 6),
									  .rdata = d + 8};
					d += 8u + tmp->rrs[i].rdlen;
				}
				r.rrs = tmp->rrs;
				r.n_rrs = e->n_rrs;
			} else if (r.action == BW_ACT_REDIRECT) {
				r.target = rs->data + e->target_off;
				r.target_len = e->target_len;
				r.target_wildcard = e->target_wild;
			}
		}
		int err = fn(ctx, s->feed, &r);
		if (err)
			return err;
	}
	return 0;
}

/* Does the overlay have a slot (live or tombstone) for key and feed? */
static bool ov_has(const struct rset *ov, int tab, const uint8_t *key, size_t len, uint32_t h,
		   unsigned feed)
{
	const struct table *t = &ov->tab[tab];
	uint32_t i = h & t->mask;
	const struct slot *s;

	while ((s = slot_next(ov, t, &i, h, key, len))) {
		if (s->feed == feed)
			return true;
	}
	return false;
}

/* Calls fn for every rule in effect in p (the base minus what the overlay hides, then the
 * overlay), of feed `only` or of all feeds (-1). */
static int each_rule(const struct bw_policy *p, int only, rule_fn fn, void *ctx)
{
	const struct rset *base = &p->base->rs, *ov = p->ov;
	struct adder tmp = {0};
	int err = 0;

	for (int tab = 0; tab < TAB_ALLOW && !err; tab++) {
		for (int k = 0; k < 2 && !err; k++) {
			const struct rset *rs = k == 0 ? base : ov;
			if (!rs)
				continue;
			const struct table *t = &rs->tab[tab];
			for (size_t i = 0; i <= t->mask && !err; i++) {
				const struct slot *s = &t->slots[i];
				if (s->len == 0 || (only >= 0 && s->feed != only))
					continue;
				if (k == 0 && ov &&
				    ov_has(ov, tab, rs->arena + s->off, s->len, s->hash, s->feed))
					continue;
				err = slot_rules(&tmp, rs, tab, s, p->base->feeds[s->feed].ttl, fn,
						 ctx);
			}
		}
	}
	free(tmp.rrs);
	return err;
}

/* ---- snapshots ---- */

static void core_release(struct core *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	rset_free(&c->rs);
	for (size_t i = 0; c->feeds && i < c->n_feeds; i++) {
		free(c->feeds[i].name);
		free(c->feeds[i].category);
	}
	free(c->feeds);
	for (size_t i = 0; c->profile_names && i < c->n_profiles; i++)
		free(c->profile_names[i]);
	free(c->profile_names);
	free(c->has_profile_allow);
	free(c);
}

void bw_policy_free(struct bw_policy *p)
{
	if (!p)
		return;
	if (p->ov) {
		rset_free(p->ov);
		free(p->ov);
	}
	free(p->status);
	free(p->feed_trig);
	free(p->profiles);
	core_release(p->base);
	free(p);
}

static char *dup_str(const char *s)
{
	return strdup(s ? s : "");
}

static uint64_t make_seed(uint64_t generation)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = bw_now_ns();
	return bw_hash_mix(seed ^ generation);
}

/* A core with n_feeds feeds and n_profiles profiles (names and strings not filled). */
static struct core *core_new(size_t n_feeds, size_t n_profiles, uint64_t seed, const size_t *caps)
{
	struct core *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->seed = seed;
	c->n_feeds = n_feeds;
	c->n_profiles = n_profiles;
	c->feeds = calloc(n_feeds ? n_feeds : 1, sizeof(*c->feeds));
	c->profile_names = calloc(n_profiles, sizeof(*c->profile_names));
	c->has_profile_allow = calloc(n_profiles, sizeof(*c->has_profile_allow));
	if (!c->feeds || !c->profile_names || !c->has_profile_allow || rset_init(&c->rs, caps)) {
		core_release(c);
		return NULL;
	}
	return c;
}

/* A snapshot on core c (the reference is taken over). */
static struct bw_policy *snap_new(struct core *c, uint64_t generation)
{
	struct bw_policy *p = calloc(1, sizeof(*p));

	if (!p) {
		core_release(c);
		return NULL;
	}
	p->base = c;
	p->generation = generation;
	p->n_feeds = c->n_feeds;
	p->n_profiles = (unsigned)c->n_profiles;
	p->status = calloc(c->n_feeds ? c->n_feeds : 1, sizeof(*p->status));
	p->feed_trig = calloc(c->n_feeds ? c->n_feeds : 1, 1);
	p->profiles = calloc(c->n_profiles, sizeof(*p->profiles));
	if (!p->status || !p->feed_trig || !p->profiles) {
		bw_policy_free(p);
		return NULL;
	}
	for (size_t i = 0; i < c->n_feeds; i++) {
		p->status[i].name = c->feeds[i].name;
		p->status[i].category = c->feeds[i].category;
	}
	for (size_t k = 0; k < c->n_profiles; k++)
		p->profiles[k].name = c->profile_names[k];
	return p;
}

/* Fills the profiles' derived fields from their masks and the feeds' triggers. */
static void profiles_update(struct bw_policy *p)
{
	const uint8_t post = 1u << BW_TRIG_RESPONSE_IP | 1u << BW_TRIG_NSDNAME | 1u << BW_TRIG_NSIP;

	for (unsigned k = 0; k < p->n_profiles; k++) {
		struct profile *pr = &p->profiles[k];
		pr->min_feed = pr->mask ? __builtin_ctzll(pr->mask) : MAX_FEEDS;
		pr->first_post = INT_MAX;
		pr->has_client = false;
		pr->has_allow = p->base->has_global_allow || p->base->has_profile_allow[k];
		for (size_t f = 0; f < p->n_feeds; f++) {
			if (!(pr->mask & (1ULL << f)))
				continue;
			if (p->feed_trig[f] & (1u << BW_TRIG_CLIENT_IP))
				pr->has_client = true;
			if ((p->feed_trig[f] & post) && pr->first_post == INT_MAX)
				pr->first_post = (int)f;
		}
	}
}

/* ---- build ---- */

static bool has_str(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] && s && strcmp(v[i], s) == 0)
			return true;
	}
	return false;
}

static uint64_t profile_mask(const struct bw_conf *conf, size_t k)
{
	size_t n = conf->policy.n_feeds;
	uint64_t all = n >= 64 ? ~0ULL : (1ULL << n) - 1, mask = 0;

	if (conf->policy.n_profiles == 0)
		return all;
	const struct bw_profile_conf *pc = &conf->policy.profiles[k];
	if (pc->all_feeds)
		return all;
	for (size_t f = 0; f < n; f++) {
		const struct bw_feed_conf *fc = &conf->policy.feeds[f];
		if (has_str(pc->categories, pc->n_categories, fc->category) ||
		    has_str(pc->feeds, pc->n_feeds, fc->name))
			mask |= 1ULL << f;
	}
	return mask;
}

static int add_allow(struct adder *ad, char *const *names, size_t n, unsigned owner, bool *any)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = names[i], *reason;
		uint8_t wire[WIRE_MAX];
		uint32_t idx;

		if (!s)
			continue;
		size_t wlen = bw_feed_name_to_wire(s, strlen(s), wire, &reason);
		if (wlen == 0) {
			bw_warn("allowlist: \"%s\": %s", s, reason);
			continue;
		}
		ad->feed = owner;
		int err = find_slot(ad, TAB_ALLOW, wire, wlen, true, &idx);
		if (err)
			return err;
		*any = true;
	}
	return 0;
}

static int find_prev_feed(const struct bw_policy *prev, const char *name)
{
	if (!prev)
		return -1;
	for (size_t i = 0; i < prev->n_feeds; i++) {
		if (strcmp(prev->status[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static int copy_rule(void *ctx, unsigned feed, const struct bw_rule *r)
{
	(void)feed; /* the adder's feed: the feed's index in the new snapshot */
	return add_rule(ctx, r);
}

/* Drops every rule of feed f from the rule tables (a feed found broken after some rules). */
static int drop_feed(struct adder *ad, uint8_t *trig, unsigned f)
{
	for (int tab = 0; tab < TAB_ALLOW; tab++) {
		struct table *t = &ad->rs->tab[tab];
		int err = table_rehash(t, (size_t)t->mask + 1, (int)f);
		if (err)
			return err;
	}
	ad->last_tab = -1;
	ad->slots[f] = 0;
	trig[f] = 0;
	return 0;
}

/* Distinct keys of the rule tables (each key's bytes are stored once per table). */
static int count_keys(const struct rset *rs, size_t *out)
{
	uint64_t *seen = calloc(rs->arena_len / 64 + 1, sizeof(*seen));
	size_t n = 0;

	if (!seen)
		return BW_ENOMEM;
	for (int tab = 0; tab < TAB_ALLOW; tab++) {
		const struct table *t = &rs->tab[tab];
		for (size_t i = 0; i <= t->mask; i++) {
			const struct slot *s = &t->slots[i];
			if (s->len == 0 || ((s->a | s->b) & ACT_MASK) == 0)
				continue;
			uint64_t b = 1ULL << (s->off % 64);
			if (!(seen[s->off / 64] & b)) {
				seen[s->off / 64] |= b;
				n++;
			}
		}
	}
	free(seen);
	*out = n;
	return 0;
}

/* ---- local files: caught mid-write? (docs/feeds.md, "Feed health") ---- */

#define SETTLE_NS (2ULL * 1000000000ULL) /* a file written this recently is looked at twice */
#define LOOK_GAP_MS 100                  /* ... this far apart */
#define READ_TRIES 3                     /* reads of a changing file before the next look */

static bool look(const char *path, uint64_t *mtime_ns, uint64_t *size)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return false;
	*mtime_ns = (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
	*size = (uint64_t)sb.st_size;
	return true;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Is the file at rest: not written in the last SETTLE_NS, or the same size and mtime at
 * two looks LOOK_GAP_MS apart? A file that cannot be looked at is left to the read. */
static bool settled(const char *path)
{
	uint64_t m1, s1, m2, s2;
	struct timespec now;

	if (!look(path, &m1, &s1) || clock_gettime(CLOCK_REALTIME, &now) != 0)
		return true;
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	if (m1 + SETTLE_NS < now_ns)
		return true;
	nap_ms(LOOK_GAP_MS);
	return look(path, &m2, &s2) && m1 == m2 && s1 == s2;
}

enum fate { APPLY, FAIL, HOLD, CHANGING };

/* Loads feed idx into the new snapshot. A local file is judged before it is applied
 * (rules.h bw_feed_health, bw_feed_shrunk; read again while it changes): a failed,
 * held-back or changing version leaves the feed with the rules it had in prev. A fetched
 * feed's file is its last good copy, judged by the feed manager before it was stored.
 * accept: apply a local file even if it shrank (`bulwarkctl feeds accept`). */
static int load_feed(struct bw_policy *p, struct adder *ad, const struct bw_feed_conf *fc,
		     unsigned idx, const struct bw_policy *prev, bool accept, bool *dropped)
{
	struct bw_feed_status *fs = &p->status[idx];
	struct bw_parse_report rep;
	uint64_t t0 = bw_now_ns();
	bool local = fc->source == BW_FEED_SRC_FILE && fc->file;
	int j = find_prev_feed(prev, fs->name);
	const struct bw_feed_status *ps = j >= 0 ? &prev->status[j] : NULL;
	size_t rejected = ad->rejected;
	enum fate fate = APPLY;
	int err, rc = 0, sys_errno = 0;

	for (int tries = 1;; tries++) {
		ad->feed = idx;
		ad->ttl_set = false;
		ad->last_tab = -1;
		rejected = ad->rejected;
		memset(&rep, 0, sizeof(rep));
		/* two looks when a file changed under a live policy (the watcher's case); at
		 * start only the check across the read, so that a start does not wait */
		bool calm = !local || !prev || settled(fc->file);
		if (fc->file)
			err = bw_parse_feed_file(fc, sink_add, ad, &rep, &fs->file_mtime_ns,
						 &fs->file_size, &rc);
		else
			err = BW_ENOENT;
		sys_errno = errno;
		/* out of memory: the build fails, the live snapshot stays */
		if (err == BW_ENOMEM || rc < 0)
			return err == BW_ENOMEM ? err : rc;
		uint64_t m = 0, sz = 0;
		/* the file as it is now is the one that was opened: not changed while read */
		bool same = !local || err ||
			    (look(fc->file, &m, &sz) && m == fs->file_mtime_ns && sz == fs->file_size);
		if (calm && same)
			break;
		if (ad->slots[idx]) {
			rc = drop_feed(ad, p->feed_trig, idx);
			if (rc)
				return rc;
			*dropped = true;
		}
		if (tries == READ_TRIES) {
			fate = CHANGING;
			err = 0;
			break;
		}
		nap_ms(LOOK_GAP_MS);
	}
	/* a read error after some rules: drop them */
	if (err && ad->slots[idx]) {
		rc = drop_feed(ad, p->feed_trig, idx);
		if (rc)
			return rc;
		*dropped = true;
		ad->ttl_set = false;
	}
	size_t entries = ad->slots[idx];
	if (fate == CHANGING) {
		snprintf(fs->error, sizeof(fs->error), "the file changed while it was read (being "
			 "written?): read again at the next look");
		fs->changing = true;
		fs->file_mtime_ns = fs->file_size = 0; /* the watcher's next look reads it */
	} else if (!err) {
		fs->bad_lines = rep.bad + (ad->rejected - rejected);
		fs->skipped = rep.skipped;
		enum bw_feed_health h = rep.broken ? BW_HEALTH_BROKEN
					: local	   ? bw_feed_health(fc, entries, fs->bad_lines, false)
						   : BW_HEALTH_OK;
		if (h != BW_HEALTH_OK) {
			err = BW_EMALFORMED;
			bw_feed_health_why(h, fc, entries, fs->bad_lines, &rep, fs->error,
					   sizeof(fs->error));
		} else if (local && ps && !accept &&
			   bw_feed_shrunk(fc, entries, ps->accepted_entries)) {
			fate = HOLD;
			fs->held_back = true;
			fs->held_entries = entries;
			snprintf(fs->error, sizeof(fs->error), "new version held back: %zu entries "
				 "against %zu in the last accepted version (min-ratio %.2f)",
				 entries, ps->accepted_entries, fc->min_ratio);
		}
	}
	if (err) {
		fate = FAIL;
		fs->load_error = err;
		if (err != BW_EMALFORMED) {
			fs->file_mtime_ns = fs->file_size = 0;
			snprintf(fs->error, sizeof(fs->error), "cannot read %s: %s",
				 fc->file ? fc->file : "(no file)",
				 err == BW_EIO ? strerror(sys_errno) : bw_strerror(err));
		} else if (rep.too_big) {
			snprintf(fs->error, sizeof(fs->error), "compressed data expands past its "
				 "size limit (a gzip bomb?)");
		}
	}
	if (fate != APPLY) {
		if (ad->slots[idx]) { /* what was read is not applied */
			rc = drop_feed(ad, p->feed_trig, idx);
			if (rc)
				return rc;
			*dropped = true;
			ad->ttl_set = false;
		}
		if (ps) {
			ad->fi[idx].ttl = prev->base->feeds[j].ttl;
			ad->ttl_set = true;
			rc = each_rule(prev, j, copy_rule, ad);
			if (rc)
				return rc;
			fs->kept_previous = true;
		}
		fs->accepted_entries = ps ? ps->accepted_entries : 0;
	} else {
		fs->accepted_entries = entries;
	}
	const char *keep = ps ? "keeping the previous version" : "no previous version, feed is empty";
	/* said once per version of the file: a rebuild for another feed reads it again */
	bool again = ps && ps->file_mtime_ns == fs->file_mtime_ns &&
		     ps->file_size == fs->file_size && ps->held_back == fs->held_back &&
		     ps->load_error == fs->load_error;
	if (fate == FAIL) /* a local file's failure is an alert, said once per version */
		bw_log(again && local ? BW_LOG_INFO : BW_LOG_ERR, "%sfeed %s: %s %s: %s; %s",
		       local && !again ? "ALERT " : "", fs->name,
		       err == BW_EMALFORMED ? "unusable" : "cannot read",
		       fc->file ? fc->file : "(no file)",
		       err == BW_EIO		? strerror(sys_errno)
		       : err == BW_EMALFORMED ? fs->error
					      : bw_strerror(err), keep);
	else if (fate == HOLD)
		bw_log(again ? BW_LOG_INFO : BW_LOG_WARN, "%sfeed %s: %s: %s; %s. Apply it with "
		       "`bulwarkctl feeds accept %s`", again ? "" : "ALERT ", fs->name, fc->file,
		       fs->error, keep, fs->name);
	else if (fate == CHANGING)
		bw_warn("feed %s: %s: %s; %s", fs->name, fc->file, fs->error, keep);
	if (!ad->ttl_set)
		ad->fi[idx].ttl = DEFAULT_TTL;
	fs->entries = ad->slots[idx];
	fs->ns_rules = ad->ns_rules[idx];
	bw_info("feed %s (%s): %zu entries, %zu bad, %zu skipped, %.2fs", fs->name, fs->category,
		fs->entries, fs->bad_lines, fs->skipped, (double)(bw_now_ns() - t0) / 1e9);
	if (fs->ns_rules)
		bw_warn("feed %s: %zu NSDNAME/NSIP rules loaded, not enforced (%s)", fs->name,
			fs->ns_rules, BW_POLICY_NS_UNENFORCED);
	return 0;
}

/* The feed's REDIRECT override as ready-made verdict data. */
static void feed_redirect(struct feedinfo *fi, const struct bw_feed_conf *fc)
{
	uint8_t *w = fi->redirect_data;

	if (fc->action != BW_FEED_ACT_REDIRECT)
		return;
	if (fc->redirect_name) {
		const char *reason;
		size_t n = bw_feed_name_to_wire(fc->redirect_name, strlen(fc->redirect_name),
						fi->redirect_target, &reason);
		if (n) {
			fi->redirect_target_len = (uint8_t)n;
			return;
		}
		bw_warn("feed %s: redirect \"%s\": %s", fi->name, fc->redirect_name, reason);
	}
	if (fc->redirect_has_v4) {
		bw_put16(w, BW_T_A);
		bw_put32(w + 2, fi->ttl);
		bw_put16(w + 6, 4);
		memcpy(w + 8, fc->redirect_v4, 4);
		w += 12;
		fi->redirect_n++;
	}
	if (fc->redirect_has_v6) {
		bw_put16(w, BW_T_AAAA);
		bw_put32(w + 2, fi->ttl);
		bw_put16(w + 6, 16);
		memcpy(w + 8, fc->redirect_v6, 16);
		w += 24;
		fi->redirect_n++;
	}
	fi->redirect_len = (uint16_t)(w - fi->redirect_data);
	if (fi->redirect_n == 0) {
		bw_warn("feed %s: action redirect without a target: blocking with NXDOMAIN",
			fi->name);
		fi->override = BW_FEED_ACT_NXDOMAIN;
	}
}

/* A feed left out (bw_policy_build_skip): no rules; its file's mtime and size are kept so
 * that the file watcher does not take it for a change. */
static void skip_feed(struct bw_policy *p, struct adder *ad, const struct bw_feed_conf *fc,
		      unsigned idx)
{
	struct bw_feed_status *fs = &p->status[idx];
	struct stat sb;

	ad->fi[idx].ttl = DEFAULT_TTL;
	if (fc->file && stat(fc->file, &sb) == 0) {
		fs->file_mtime_ns =
		    (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
		fs->file_size = (uint64_t)sb.st_size;
	}
	bw_warn("feed %s (%s): left out (expired, when-expired: stop): 0 entries", fs->name,
		fs->category);
}

int bw_policy_build(const struct bw_conf *conf, const struct bw_policy *prev, uint64_t generation,
		    struct bw_policy **out)
{
	return bw_policy_build_skip(conf, prev, generation, 0, out);
}

int bw_policy_build_skip(const struct bw_conf *conf, const struct bw_policy *prev,
			 uint64_t generation, uint64_t skip, struct bw_policy **out)
{
	return bw_policy_build_ex(conf, prev, generation, skip, 0, out);
}

int bw_policy_build_ex(const struct bw_conf *conf, const struct bw_policy *prev,
		       uint64_t generation, uint64_t skip, uint64_t accept, struct bw_policy **out)
{
	struct bw_policy *p = NULL;
	struct adder ad;
	bool dropped = false;
	int err = BW_ENOMEM;

	*out = NULL;
	if (!conf)
		return BW_EINVAL;
	size_t n_feeds = conf->policy.n_feeds;
	size_t n_prof = conf->policy.n_profiles ? conf->policy.n_profiles : 1;
	if (n_feeds > MAX_FEEDS) {
		bw_err("policy: %zu feeds configured, at most %d are supported", n_feeds,
		       MAX_FEEDS);
		return BW_EINVAL;
	}
	if (n_prof > MAX_PROFILES) {
		bw_err("policy: %zu profiles configured, at most %d are supported", n_prof,
		       MAX_PROFILES);
		return BW_EINVAL;
	}
	/* Size the name table once from the feeds' file sizes, so that a big feed does not end
	 * its build with a doubling (old and new table at once: the peak of a load or reload).
	 * The bytes per name are on the high side for each format, so the estimate stays at
	 * or below the real count; the power-of-two rounding covers the rest. */
	size_t caps[N_TAB] = {0};
	for (size_t i = 0; i < n_feeds; i++) {
		static const unsigned bytes_per_name[] = {
			[BW_FEED_DOMAINS] = 24, [BW_FEED_HOSTS] = 32, [BW_FEED_WILDCARD] = 26,
			[BW_FEED_ADBLOCK] = 26, [BW_FEED_RPZ] = 64,   [BW_FEED_STIX] = 0,
			[BW_FEED_MISP] = 0,
		};
		const struct bw_feed_conf *fc = &conf->policy.feeds[i];
		unsigned per = (unsigned)fc->format < BW_ARRAY_LEN(bytes_per_name)
				       ? bytes_per_name[fc->format]
				       : 0;
		struct stat sb;
		if (per && stat(fc->file, &sb) == 0 && sb.st_size > 0)
			caps[TAB_QNAME] += (size_t)sb.st_size / per;
	}
	struct core *c = core_new(n_feeds, n_prof, make_seed(generation), caps);
	if (!c)
		return BW_ENOMEM;
	p = snap_new(c, generation); /* p owns c now */
	if (!p)
		return BW_ENOMEM;
	adder_init(&ad, &c->rs, c->seed, c->feeds);
	ad.trig = p->feed_trig;
	for (size_t i = 0; i < n_feeds; i++) {
		const struct bw_feed_conf *fc = &conf->policy.feeds[i];
		c->feeds[i].name = dup_str(fc->name);
		c->feeds[i].category = dup_str(fc->category);
		if (!c->feeds[i].name || !c->feeds[i].category)
			goto fail;
		c->feeds[i].override = fc->action;
		p->status[i].name = c->feeds[i].name;
		p->status[i].category = c->feeds[i].category;
	}
	for (size_t k = 0; k < n_prof; k++) {
		const struct bw_profile_conf *pc =
		    conf->policy.n_profiles ? &conf->policy.profiles[k] : NULL;
		c->profile_names[k] = dup_str(pc && pc->name ? pc->name : "default");
		if (!c->profile_names[k])
			goto fail;
		p->profiles[k].name = c->profile_names[k];
		p->profiles[k].mask = profile_mask(conf, k);
		if (pc) {
			for (size_t f = 0; f < pc->n_feeds; f++) {
				if (find_prev_feed(p, pc->feeds[f]) < 0)
					bw_warn("profile %s: no feed named %s", c->profile_names[k],
						pc->feeds[f]);
			}
			err = add_allow(&ad, pc->allowlist, pc->n_allowlist, (unsigned)k + 1,
					&c->has_profile_allow[k]);
			if (err)
				goto fail;
		}
	}
	p->default_profile =
	    conf->policy.default_profile < n_prof ? conf->policy.default_profile : 0;
	err = add_allow(&ad, conf->policy.allowlist, conf->policy.n_allowlist, 0,
			&c->has_global_allow);
	if (err)
		goto fail;

	for (size_t i = 0; i < n_feeds; i++) {
		if (skip & (1ull << i)) {
			skip_feed(p, &ad, &conf->policy.feeds[i], (unsigned)i);
			feed_redirect(&c->feeds[i], &conf->policy.feeds[i]);
			continue;
		}
		err = load_feed(p, &ad, &conf->policy.feeds[i], (unsigned)i, prev,
				(accept >> i) & 1, &dropped);
		if (err)
			goto fail;
		feed_redirect(&c->feeds[i], &conf->policy.feeds[i]);
	}
	p->entries = ad.new_keys;
	if (dropped) {
		err = count_keys(&c->rs, &p->entries);
		if (err)
			goto fail;
	}
	shrink_bytes(&c->rs.arena, &c->rs.arena_cap, c->rs.arena_len);
	shrink_bytes(&c->rs.data, &c->rs.data_cap, c->rs.data_len);
	profiles_update(p);
	free(ad.rrs);
	*out = p;
	return 0;
fail:
	free(ad.rrs);
	bw_policy_free(p);
	return err ? err : BW_ENOMEM;
}

/* ---- incremental changes ---- */

/* Feeds with a live rule on key in p (the overlay hides the base per feed). */
static uint64_t live_feeds(const struct bw_policy *p, int tab, const uint8_t *key, size_t len,
			   uint32_t h)
{
	const struct rset *sets[2] = {p->ov, &p->base->rs};
	uint64_t shadow = 0, live = 0;

	for (int k = 0; k < 2; k++) {
		const struct rset *rs = sets[k];
		const struct table *t = &rs->tab[tab];
		uint32_t i = h & t->mask;
		const struct slot *s;
		while ((s = slot_next(rs, t, &i, h, key, len))) {
			uint64_t b = 1ULL << s->feed;
			if (k == 0)
				shadow |= b;
			else if (shadow & b)
				continue;
			if ((s->a | s->b) & ACT_MASK)
				live |= b;
		}
	}
	return live;
}

/* Makes sure the overlay has a slot for (key, ad->feed), a copy of the base's if any. */
static int materialize(struct bw_policy *q, struct adder *ad, int tab, const uint8_t *key,
		       size_t len, uint32_t h)
{
	const struct rset *base = &q->base->rs;
	const struct table *t = &base->tab[tab];
	uint32_t idx, i = h & t->mask;
	const struct slot *s;

	int err = find_slot(ad, tab, key, len, false, &idx);
	if (err != BW_ENOENT)
		return err;
	err = find_slot(ad, tab, key, len, true, &idx);
	if (err)
		return err;
	while ((s = slot_next(base, t, &i, h, key, len))) {
		if (s->feed == ad->feed)
			return slot_rules(ad, base, tab, s, q->base->feeds[s->feed].ttl, copy_rule,
					  ad);
	}
	return 0;
}

/* One add or remove on q's overlay, keeping the counts. */
static int delta_one(struct bw_policy *q, struct adder *ad, const struct bw_rule *r, bool add)
{
	uint8_t key[WIRE_MAX];
	int tab, field;
	uint32_t idx;
	size_t len = rule_key(r, key, &tab, &field);

	if (len == 0) {
		ad->rejected++;
		return 0;
	}
	uint32_t h = (uint32_t)bw_hash(key, len, ad->seed);
	uint64_t before = live_feeds(q, tab, key, len, h);
	int err = materialize(q, ad, tab, key, len, h);
	if (err)
		return err;
	if (add) {
		err = add_rule(ad, r);
		if (err == BW_SINK_CONFLICT) {
			ad->rejected++;
			err = 0;
		}
	} else {
		err = find_slot(ad, tab, key, len, false, &idx);
		if (!err)
			*field_of(&ad->rs->tab[tab].slots[idx], field) = 0;
	}
	if (err)
		return err;
	uint64_t after = live_feeds(q, tab, key, len, h), b = 1ULL << ad->feed;
	struct bw_feed_status *fs = &q->status[ad->feed];
	if ((after & b) && !(before & b))
		fs->entries++;
	else if (!(after & b) && (before & b) && fs->entries > 0)
		fs->entries--;
	if (after && !before)
		q->entries++;
	else if (!after && before && q->entries > 0)
		q->entries--;
	return 0;
}

/* A new snapshot sharing p's base, with copies of p's small per-snapshot arrays. */
static struct bw_policy *snap_share(const struct bw_policy *p, uint64_t generation)
{
	atomic_fetch_add(&p->base->refs, 1);
	struct bw_policy *q = snap_new(p->base, generation);

	if (!q)
		return NULL;
	memcpy(q->status, p->status, p->n_feeds * sizeof(*p->status));
	memcpy(q->feed_trig, p->feed_trig, p->n_feeds);
	memcpy(q->profiles, p->profiles, p->n_profiles * sizeof(*p->profiles));
	q->default_profile = p->default_profile;
	q->entries = p->entries;
	return q;
}

int bw_policy_apply_delta(const struct bw_policy *base, unsigned feed, const struct bw_rule *adds,
			  size_t n_adds, const struct bw_rule *removes, size_t n_removes,
			  uint64_t generation, struct bw_policy **out)
{
	struct adder ad;
	int err = BW_ENOMEM;

	*out = NULL;
	if (!base || feed >= base->n_feeds || (n_adds && !adds) || (n_removes && !removes))
		return BW_EINVAL;
	struct bw_policy *q = snap_share(base, generation);
	if (!q)
		return BW_ENOMEM;
	q->ov = calloc(1, sizeof(*q->ov));
	if (!q->ov)
		goto fail;
	err = base->ov ? rset_clone(q->ov, base->ov) : rset_init(q->ov, NULL);
	if (err)
		goto fail;
	adder_init(&ad, q->ov, q->base->seed, q->base->feeds);
	ad.ttl_set = true; /* the feed's TTL is the base's */
	ad.trig = q->feed_trig;
	ad.feed = feed;
	for (size_t i = 0; i < n_removes && !err; i++)
		err = delta_one(q, &ad, &removes[i], false);
	for (size_t i = 0; i < n_adds && !err; i++)
		err = delta_one(q, &ad, &adds[i], true);
	free(ad.rrs);
	if (err)
		goto fail;
	if (ad.rejected)
		bw_warn("feed %s: %zu changed rules the snapshot cannot hold", q->status[feed].name,
			ad.rejected);
	profiles_update(q);
	*out = q;
	return 0;
fail:
	bw_policy_free(q);
	return err;
}

static int compact_rule(void *ctx, unsigned feed, const struct bw_rule *r)
{
	struct adder *ad = ctx;

	ad->feed = feed;
	return add_rule(ad, r);
}

int bw_policy_compact(const struct bw_policy *p, uint64_t generation, struct bw_policy **out)
{
	const struct core *oc;
	struct bw_policy *q = NULL;
	struct adder ad;
	size_t caps[N_TAB];
	int err = BW_ENOMEM;

	*out = NULL;
	if (!p)
		return BW_EINVAL;
	oc = p->base;
	for (int t = 0; t < N_TAB; t++)
		caps[t] = oc->rs.tab[t].count + (p->ov ? p->ov->tab[t].count : 0);
	/* The same seed and (usually) the same table sizes: walking the old tables in order
	 * then writes the new ones in order too, instead of at random. */
	struct core *c = core_new(oc->n_feeds, oc->n_profiles, oc->seed, caps);
	if (!c)
		return BW_ENOMEM;
	q = snap_new(c, generation); /* q owns c now */
	if (!q)
		return BW_ENOMEM;
	adder_init(&ad, &c->rs, c->seed, c->feeds);
	ad.ttl_set = true;
	ad.trig = q->feed_trig;
	for (size_t i = 0; i < oc->n_feeds; i++) {
		c->feeds[i] = oc->feeds[i];
		c->feeds[i].name = strdup(oc->feeds[i].name);
		c->feeds[i].category = strdup(oc->feeds[i].category);
		if (!c->feeds[i].name || !c->feeds[i].category)
			goto fail;
	}
	for (size_t k = 0; k < oc->n_profiles; k++) {
		c->profile_names[k] = strdup(oc->profile_names[k]);
		if (!c->profile_names[k])
			goto fail;
		q->profiles[k].name = c->profile_names[k];
		c->has_profile_allow[k] = oc->has_profile_allow[k];
	}
	c->has_global_allow = oc->has_global_allow;
	const struct table *at = &oc->rs.tab[TAB_ALLOW];
	for (size_t i = 0; i <= at->mask; i++) {
		const struct slot *s = &at->slots[i];
		uint32_t idx;
		if (s->len == 0)
			continue;
		ad.feed = s->feed;
		err = find_slot(&ad, TAB_ALLOW, oc->rs.arena + s->off, s->len, true, &idx);
		if (err)
			goto fail;
	}
	err = each_rule(p, -1, compact_rule, &ad);
	if (err)
		goto fail;
	for (size_t i = 0; i < q->n_feeds; i++) {
		q->status[i] = p->status[i];
		q->status[i].name = c->feeds[i].name;
		q->status[i].category = c->feeds[i].category;
		q->status[i].entries = ad.slots[i];
	}
	for (unsigned k = 0; k < q->n_profiles; k++)
		q->profiles[k].mask = p->profiles[k].mask;
	q->default_profile = p->default_profile;
	q->entries = ad.new_keys;
	shrink_bytes(&c->rs.arena, &c->rs.arena_cap, c->rs.arena_len);
	shrink_bytes(&c->rs.data, &c->rs.data_cap, c->rs.data_len);
	profiles_update(q);
	free(ad.rrs);
	*out = q;
	return 0;
fail:
	free(ad.rrs);
	bw_policy_free(q);
	return err ? err : BW_ENOMEM;
}

/* ---- accessors ---- */

uint64_t bw_policy_generation(const struct bw_policy *p)
{
	return p ? p->generation : 0;
}

size_t bw_policy_entries(const struct bw_policy *p)
{
	return p ? p->entries : 0;
}

size_t bw_policy_feed_count(const struct bw_policy *p)
{
	return p ? p->n_feeds : 0;
}

size_t bw_policy_memory(const struct bw_policy *p)
{
	if (!p)
		return 0;
	const struct core *c = p->base;
	size_t n = sizeof(*p) + sizeof(*c) + rset_memory(&c->rs);
	n += c->n_feeds * (sizeof(*c->feeds) + sizeof(*p->status) + 1);
	n += c->n_profiles * (sizeof(*p->profiles) + sizeof(char *) + 1);
	for (size_t i = 0; i < c->n_feeds; i++)
		n += strlen(c->feeds[i].name) + strlen(c->feeds[i].category) + 2;
	for (size_t k = 0; k < c->n_profiles; k++)
		n += strlen(c->profile_names[k]) + 1;
	if (p->ov)
		n += sizeof(*p->ov) + rset_memory(p->ov);
	return n;
}

const struct bw_feed_status *bw_policy_feed_status(const struct bw_policy *p, size_t i)
{
	if (!p || i >= p->n_feeds)
		return NULL;
	return &p->status[i];
}

bool bw_policy_files_changed(const struct bw_policy *p, const struct bw_conf *conf)
{
	if (!p || !conf)
		return false;
	if (conf->policy.n_feeds != p->n_feeds)
		return true;
	for (size_t i = 0; i < p->n_feeds; i++) {
		const struct bw_feed_conf *fc = &conf->policy.feeds[i];
		const struct bw_feed_status *fs = &p->status[i];
		struct stat sb;

		if (strcmp(fs->name, fc->name ? fc->name : "") != 0)
			return true;
		/* a fetched feed's file is the feed manager's last good copy: the manager
		 * publishes what it writes (a rebuild, or an IXFR's changes before the copy is
		 * rewritten), so the copy changing on disk is no news */
		if (fc->source != BW_FEED_SRC_FILE)
			continue;
		if (!fc->file || stat(fc->file, &sb) < 0) {
			if (fs->load_error == 0)
				return true; /* it was readable and is gone */
			continue;
		}
		if (fs->load_error != 0 && fs->file_mtime_ns == 0)
			return true; /* it could not be read and is back */
		/* loaded, or read but unusable (kept with its mtime: only a new version counts) */
		uint64_t mtime =
		    (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
		if (mtime != fs->file_mtime_ns || (uint64_t)sb.st_size != fs->file_size)
			return true;
	}
	return false;
}

/* ---- for export.c (snapshot.h) ---- */

int bw_snap_each_rule(const struct bw_policy *p, int feed, bw_snap_rule_fn fn, void *ctx)
{
	return each_rule(p, feed, fn, ctx);
}

int bw_snap_slot_rules(const struct bw_policy *p, const struct rset *rs, int tab,
		       const struct slot *s, bw_snap_rule_fn fn, void *ctx)
{
	struct adder tmp = {0};
	int err = slot_rules(&tmp, rs, tab, s, p->base->feeds[s->feed].ttl, fn, ctx);
	free(tmp.rrs);
	return err;
}
