/*
 * policy/policy.c - the policy snapshot as an object: its base (struct core) and its
 * snapshots made and freed, the profiles' derived fields, status and accessors.
 * Building is in build.c, incremental deltas and compaction in delta.c, the rule sets in
 * rset.c, the match in match.c; the layout shared by all of them is in snapshot.h and
 * described in docs/internals/snapshot.md.
 *
 * A returned snapshot is never modified. Snapshots made by bw_policy_apply_delta() share
 * their base with the snapshot they came from (reference-counted), so they may be freed in
 * any order.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "policy/snapshot.h"

/* ---- snapshots ---- */

static void core_release(struct core *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	bw_rset_free(&c->rs);
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
		bw_rset_free(p->ov);
		free(p->ov);
	}
	free(p->status);
	free(p->feed_trig);
	free(p->profiles);
	bw_decisions_unref(p->local);
	core_release(p->base);
	free(p);
}

void bw_policy_set_decisions(struct bw_policy *p, struct bw_decisions *d)
{
	bw_decisions_unref(p->local);
	p->local = bw_decisions_count(d) ? bw_decisions_ref(d) : NULL;
}

const struct bw_local_decision *bw_policy_decision(const struct bw_policy *p, const uint8_t *name_lc,
					     size_t len)
{
	return p ? bw_decisions_cover(p->local, name_lc, len) : NULL;
}

/* A core with n_feeds feeds and n_profiles profiles (names and strings not filled). */
struct core *bw_snap_core_new(size_t n_feeds, size_t n_profiles, uint64_t seed,
			      const size_t *caps)
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
	if (!c->feeds || !c->profile_names || !c->has_profile_allow || bw_rset_init(&c->rs, caps)) {
		core_release(c);
		return NULL;
	}
	return c;
}

/* A snapshot on core c (the reference is taken over). */
struct bw_policy *bw_snap_new(struct core *c, uint64_t generation)
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
void bw_snap_profiles_update(struct bw_policy *p)
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
	size_t n = sizeof(*p) + sizeof(*c) + bw_rset_memory(&c->rs);
	n += c->n_feeds * (sizeof(*c->feeds) + sizeof(*p->status) + 1);
	n += c->n_profiles * (sizeof(*p->profiles) + sizeof(char *) + 1);
	for (size_t i = 0; i < c->n_feeds; i++)
		n += strlen(c->feeds[i].name) + strlen(c->feeds[i].category) + 2;
	for (size_t k = 0; k < c->n_profiles; k++)
		n += strlen(c->profile_names[k]) + 1;
	if (p->ov)
		n += sizeof(*p->ov) + bw_rset_memory(p->ov);
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
