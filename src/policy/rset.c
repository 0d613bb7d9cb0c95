/*
 * policy/rset.c - rule sets (struct rset, snapshot.h): the (key, feed) tables, the extras
 * table, the arenas, adding rules (the adder: every parser's sink while a snapshot is built
 * or changed), counting entries as the snapshot counts them, and reading rules back out
 * (for a feed's previous version, deltas, compaction and export). The match is in match.c.
 *
 * A rule set is written by one thread (the one building a snapshot); once its snapshot is
 * returned it is read-only.
 */
#include <netinet/in.h>
#include <stdlib.h>

#include "dns/dns.h"
#include "policy/snapshot.h"

#define TABLE_MIN 16u
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

void bw_rset_shrink(struct rset *rs)
{
	shrink_bytes(&rs->arena, &rs->arena_cap, rs->arena_len);
	shrink_bytes(&rs->data, &rs->data_cap, rs->data_len);
}

void bw_rset_free(struct rset *rs)
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
int bw_rset_init(struct rset *rs, const size_t *caps)
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

int bw_rset_clone(struct rset *dst, const struct rset *src)
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

size_t bw_rset_memory(const struct rset *rs)
{
	size_t n = rs->arena_cap + rs->data_cap + ((size_t)rs->x.mask + 1) * sizeof(struct extra);

	for (int t = 0; t < N_TAB; t++)
		n += ((size_t)rs->tab[t].mask + 1) * sizeof(struct slot);
	return n;
}

/* Distinct keys of the rule tables (each key's bytes are stored once per table). */
int bw_rset_count_keys(const struct rset *rs, size_t *out)
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

/* ---- adding rules ---- */

void bw_adder_init(struct adder *ad, struct rset *rs, uint64_t seed, struct feedinfo *fi)
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
int bw_adder_find(struct adder *ad, int tab, const uint8_t *key, size_t len, bool create,
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
size_t bw_snap_rule_key(const struct bw_rule *r, uint8_t *key, int *tab, int *field)
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
int bw_adder_add(struct adder *ad, const struct bw_rule *r)
{
	uint8_t key[WIRE_MAX];
	int tab, field;
	uint32_t idx;
	enum bw_action act = r->action == BW_ACT_ALLOW ? BW_ACT_PASSTHRU : r->action;
	size_t len = bw_snap_rule_key(r, key, &tab, &field);

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
	int err = bw_adder_find(ad, tab, key, len, true, &idx);
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

int bw_adder_sink(void *ctx, const struct bw_rule *r)
{
	return bw_adder_add(ctx, r);
}

int bw_adder_copy(void *ctx, unsigned feed, const struct bw_rule *r)
{
	(void)feed; /* the adder's feed: the feed's index in the new snapshot */
	return bw_adder_add(ctx, r);
}

/* Drops every rule of feed f from the rule tables (a feed found broken after some rules). */
int bw_adder_drop_feed(struct adder *ad, uint8_t *trig, unsigned f)
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
	size_t len = bw_snap_rule_key(r, key + 1, &tab, &field);

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

/* ---- reading rules back out of a rule set ---- */

/* Calls fn for each rule stored in slot s of table tab (dttl: the feed's TTL). */
int bw_rset_slot_rules(struct adder *tmp, const struct rset *rs, int tab, const struct slot *s,
		       uint32_t dttl, bw_snap_rule_fn fn, void *ctx)
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
int bw_snap_each_rule(const struct bw_policy *p, int only, bw_snap_rule_fn fn, void *ctx)
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
				err = bw_rset_slot_rules(&tmp, rs, tab, s,
							 p->base->feeds[s->feed].ttl, fn, ctx);
			}
		}
	}
	free(tmp.rrs);
	return err;
}

int bw_snap_slot_rules(const struct bw_policy *p, const struct rset *rs, int tab,
		       const struct slot *s, bw_snap_rule_fn fn, void *ctx)
{
	struct adder tmp = {0};
	int err = bw_rset_slot_rules(&tmp, rs, tab, s, p->base->feeds[s->feed].ttl, fn, ctx);
	free(tmp.rrs);
	return err;
}
