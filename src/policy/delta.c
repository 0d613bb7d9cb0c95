/*
 * policy/delta.c - incremental changes and compaction: bw_policy_apply_delta() writes a
 * feed's added and removed rules into an overlay (a small rule set of the new snapshot,
 * over the base it shares with the old one), and bw_policy_compact() folds base and overlay
 * into a fresh base (docs/internals/snapshot.md, "Incremental changes: overlay and
 * compaction"). Both make a new snapshot beside the one they read, which stays unchanged;
 * the server calls them on the feed manager's hooks, under its state lock.
 */
#include <stdlib.h>

#include "policy/snapshot.h"

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

	int err = bw_adder_find(ad, tab, key, len, false, &idx);
	if (err != BW_ENOENT)
		return err;
	err = bw_adder_find(ad, tab, key, len, true, &idx);
	if (err)
		return err;
	while ((s = slot_next(base, t, &i, h, key, len))) {
		if (s->feed == ad->feed)
			return bw_rset_slot_rules(ad, base, tab, s, q->base->feeds[s->feed].ttl,
						  bw_adder_copy, ad);
	}
	return 0;
}

/* One add or remove on q's overlay, keeping the counts. */
static int delta_one(struct bw_policy *q, struct adder *ad, const struct bw_rule *r, bool add)
{
	uint8_t key[WIRE_MAX];
	int tab, field;
	uint32_t idx;
	size_t len = bw_snap_rule_key(r, key, &tab, &field);

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
		err = bw_adder_add(ad, r);
		if (err == BW_SINK_CONFLICT) {
			ad->rejected++;
			err = 0;
		}
	} else {
		err = bw_adder_find(ad, tab, key, len, false, &idx);
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
	struct bw_policy *q = bw_snap_new(p->base, generation);

	if (!q)
		return NULL;
	memcpy(q->status, p->status, p->n_feeds * sizeof(*p->status));
	memcpy(q->feed_trig, p->feed_trig, p->n_feeds);
	memcpy(q->profiles, p->profiles, p->n_profiles * sizeof(*p->profiles));
	q->default_profile = p->default_profile;
	q->entries = p->entries;
	q->local = bw_decisions_ref(p->local);
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
	err = base->ov ? bw_rset_clone(q->ov, base->ov) : bw_rset_init(q->ov, NULL);
	if (err)
		goto fail;
	bw_adder_init(&ad, q->ov, q->base->seed, q->base->feeds);
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
	bw_snap_profiles_update(q);
	*out = q;
	return 0;
fail:
	bw_policy_free(q);
	return err;
}

/* ---- local decisions: a new snapshot, the same rules ---- */

int bw_policy_with_decisions(const struct bw_policy *p, struct bw_decisions *d,
			     uint64_t generation, struct bw_policy **out)
{
	*out = NULL;
	if (!p)
		return BW_EINVAL;
	struct bw_policy *q = snap_share(p, generation);
	if (!q)
		return BW_ENOMEM;
	if (p->ov && (!(q->ov = calloc(1, sizeof(*q->ov))) || bw_rset_clone(q->ov, p->ov) != 0)) {
		bw_policy_free(q);
		return BW_ENOMEM;
	}
	bw_policy_set_decisions(q, d);
	*out = q;
	return 0;
}

/* ---- compaction ---- */

static int compact_rule(void *ctx, unsigned feed, const struct bw_rule *r)
{
	struct adder *ad = ctx;

	ad->feed = feed;
	return bw_adder_add(ad, r);
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
	struct core *c = bw_snap_core_new(oc->n_feeds, oc->n_profiles, oc->seed, caps);
	if (!c)
		return BW_ENOMEM;
	q = bw_snap_new(c, generation); /* q owns c now */
	if (!q)
		return BW_ENOMEM;
	bw_adder_init(&ad, &c->rs, c->seed, c->feeds);
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
		err = bw_adder_find(&ad, TAB_ALLOW, oc->rs.arena + s->off, s->len, true, &idx);
		if (err)
			goto fail;
	}
	err = bw_snap_each_rule(p, -1, compact_rule, &ad);
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
	q->local = bw_decisions_ref(p->local);
	bw_rset_shrink(&c->rs);
	bw_snap_profiles_update(q);
	free(ad.rrs);
	*out = q;
	return 0;
fail:
	free(ad.rrs);
	bw_policy_free(q);
	return err ? err : BW_ENOMEM;
}
