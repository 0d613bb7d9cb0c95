/*
 * core/server.c - the server: creates the cache, the policy state and the workers;
 * starts and stops the worker threads; reloads the policy and swaps it atomically.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/internal.h"

static unsigned cpus_allowed(cpu_set_t *set)
{
	CPU_ZERO(set);
	if (sched_getaffinity(0, sizeof(*set), set) != 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, set);
	}
	unsigned n = (unsigned)CPU_COUNT(set);
	return n ? n : 1;
}

static void state_free(struct bw_state *st)
{
	if (!st)
		return;
	bw_policy_free(st->policy);
	bw_lookalike_free(st->lookalike);
	bw_clients_free(st->clients);
	bw_local_free(st->local);
	if (st->owns_conf)
		bw_conf_free(st->conf);
	free(st);
}

/* The feed manager counts feeds as the boot config lists them, and a reload may have
 * inserted, removed or reordered feeds since: the index in `conf` of the boot config's
 * feed `boot`, found by name (names are unique), or -1 when conf no longer has it. */
static int feed_now(const struct bw_server *s, const struct bw_conf *conf, unsigned boot)
{
	if (boot >= s->conf->policy.n_feeds)
		return -1;
	const char *name = s->conf->policy.feeds[boot].name;
	for (size_t i = 0; i < conf->policy.n_feeds; i++)
		if (!strcmp(conf->policy.feeds[i].name, name))
			return (int)i;
	return -1;
}

/* The manager's off mask (boot indices) as indices of conf's feeds. */
static uint64_t off_now(const struct bw_server *s, const struct bw_conf *conf)
{
	uint64_t mask = 0;
	for (unsigned b = 0; b < 64; b++) {
		int i = (s->feeds_off >> b & 1) ? feed_now(s, conf, b) : -1;
		if (i >= 0 && i < 64)
			mask |= 1ull << i;
	}
	return mask;
}

/* Security events for the local file feeds st's build found failed or held back
 * (docs/feeds.md, "Feed health") that prev did not have in that state for the same reason.
 * Fetched feeds are the feed manager's to report (bw_server_feed_event): their last good
 * copies were judged before they were stored, and "no copy yet" is not a failure. */
static void feed_events(struct bw_server *s, const struct bw_state *prev,
			const struct bw_state *st)
{
	size_t n = bw_policy_feed_count(st->policy);
	for (size_t i = 0; i < n; i++) {
		const struct bw_feed_status *f = bw_policy_feed_status(st->policy, i);
		if ((!f->load_error && !f->held_back) || i >= st->conf->policy.n_feeds ||
		    st->conf->policy.feeds[i].source != BW_FEED_SRC_FILE)
			continue;
		const struct bw_feed_status *p = NULL;
		size_t np = prev ? bw_policy_feed_count(prev->policy) : 0;
		for (size_t j = 0; j < np && !p; j++) {
			const struct bw_feed_status *c = bw_policy_feed_status(prev->policy, j);
			if (!strcmp(c->name, f->name))
				p = c;
		}
		if (p && p->load_error == f->load_error && p->held_back == f->held_back &&
		    !strcmp(p->error, f->error))
			continue; /* said already */
		bw_telemetry_feed_event(s->tlm, f->name, f->category,
					f->load_error ? "failed" : "held back", f->error);
	}
}

void bw_server_feed_event(void *ctx, unsigned feed, const char *state, const char *reason)
{
	struct bw_server *s = ctx;
	const struct bw_feed_conf *fc =
	    feed < s->conf->policy.n_feeds ? &s->conf->policy.feeds[feed] : NULL;
	if (fc)
		bw_telemetry_feed_event(s->tlm, fc->name, fc->category, state, reason);
}

/* Builds a new state from conf (owned by it when owns_conf) next to `prev`. On failure
 * returns NULL with *rcp the BW_E* why (BW_ENOMEM: out of memory) and conf stays with the
 * caller. */
static struct bw_state *state_build(struct bw_server *s, struct bw_conf *conf, bool owns_conf,
				    const struct bw_state *prev, int *rcp)
{
	*rcp = BW_ENOMEM;
	struct bw_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->conf = conf;
	st->owns_conf = owns_conf;
	st->generation = ++s->generation;
	st->cache_gen = st->generation;
	uint64_t t0 = bw_now_ns();
	if ((*rcp = bw_policy_build_ex(conf, prev ? prev->policy : NULL, st->generation,
				       off_now(s, conf), s->feeds_accept, &st->policy)) != 0) {
		free(st);
		return NULL;
	}
	bw_policy_set_decisions(st->policy, s->decisions);
	bw_core_pause_mask(s, st);
	bw_obs_state_slots(s, st);
	feed_events(s, prev, st);
	/* local records come with each config; forward zones and special-use names are the
	 * boot config's, as libunbound's are (resolver settings need a restart) */
	if ((*rcp = bw_guard_lookalike_build(conf, &st->lookalike)) != 0 ||
	    (*rcp = bw_clients_build(conf, &st->clients)) != 0 ||
	    (*rcp = bw_local_build(conf, s->conf, &st->local)) != 0) {
		bw_clients_free(st->clients);
		bw_lookalike_free(st->lookalike);
		bw_policy_free(st->policy);
		free(st);
		return NULL;
	}
	bw_info("policy generation %llu: %zu blocked names from %zu feeds in %.2fs",
		(unsigned long long)st->generation, bw_policy_entries(st->policy),
		bw_policy_feed_count(st->policy), (double)(bw_now_ns() - t0) / 1e9);
	if (conf->policy.n_feeds && !bw_policy_entries(st->policy))
		bw_err("NO THREAT FEED IS LOADED YET: %zu feed%s configured, none has entries "
		       "(fetched feeds without a copy yet, or empty files). Names are resolved "
		       "but nothing is blocked until a feed loads; see `bulwarkctl feeds`",
		       conf->policy.n_feeds, conf->policy.n_feeds == 1 ? "" : "s");
	return st;
}

/* The TLS contexts of dot/doh listeners, shared by the workers. */
static int tls_create(struct bw_server *s, char *err, size_t errlen)
{
	const struct bw_conf *conf = s->conf;
	s->tls = calloc(conf->server.n_listen, sizeof(*s->tls));
	if (!s->tls) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		const struct bw_listen *l = &conf->server.listen[i];
		if (l->transport == BW_TRANSPORT_DNS)
			continue;
		int rc = bw_tls_create(l->tls_cert, l->tls_key,
				       l->transport == BW_TRANSPORT_DOT ? BW_TLS_DOT : BW_TLS_DOH,
				       &s->tls[i], err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static void tls_reload(struct bw_server *s)
{
	char err[512];
	for (size_t i = 0; s->tls && i < s->conf->server.n_listen; i++) {
		if (s->tls[i] && bw_tls_reload(s->tls[i], err, sizeof(err)) != 0)
			bw_err("reload: keeping the old certificate of %s port %u: %s",
			       s->conf->server.listen[i].address, s->conf->server.listen[i].port, err);
	}
}

int bw_server_create(struct bw_conf *conf, struct bw_server **out, char *err, size_t errlen)
{
	struct bw_server *s = calloc(1, sizeof(*s));
	if (!s) {
		bw_conf_free(conf);
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	s->conf = conf;
	pthread_mutex_init(&s->state_lock, NULL);
	int rc = BW_ENOMEM;

	struct bw_cache_config cc = {
		.size = conf->cache.size,
		.shards = conf->cache.shards,
		.min_ttl = conf->cache.min_ttl,
		.max_ttl = conf->cache.max_ttl,
		.max_neg_ttl = conf->cache.max_neg_ttl,
		.stale_ttl = conf->cache.stale_ttl,
	};
	s->cache = bw_cache_create(&cc);
	if (!s->cache) {
		snprintf(err, errlen, "cannot allocate the cache");
		goto fail;
	}
	/* made whatever the config says, so that a reload can turn limits on (1 MB each) */
	if (bw_ratelimit_new(conf->server.rl_table, &s->ratelimit) ||
	    bw_ratelimit_new(conf->server.rrl_table, &s->rrl)) {
		snprintf(err, errlen, "cannot allocate the rate-limit tables");
		goto fail;
	}

	cpu_set_t set;
	unsigned ncpu = cpus_allowed(&set);
	s->nworkers = conf->server.workers ? conf->server.workers : ncpu;
	if (s->nworkers > BW_SNAPREF_MAX_READERS - BW_READERS_EXTRA)
		s->nworkers = BW_SNAPREF_MAX_READERS - BW_READERS_EXTRA;
	bw_server_raise_fd_limit(conf, s->nworkers);
	rc = bw_obs_server_init(s, err, errlen);
	if (rc != 0)
		goto fail;
	if ((rc = bw_core_decisions_init(s, err, errlen)) != 0)
		goto fail;
	rc = BW_ENOMEM;

	struct bw_state *st = state_build(s, conf, false, NULL, &rc);
	if (!st) {
		snprintf(err, errlen, "cannot build the policy: %s", bw_strerror(rc));
		goto fail;
	}
	bw_snapref_init(&s->state_ref, st, s->nworkers + BW_READERS_EXTRA);
	rc = BW_ENOMEM;
	s->tlm = bw_telemetry_create(conf, s->nworkers);
	if (!s->tlm) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = bw_core_guard_init(s, err, errlen)) != 0)
		goto fail;
	rc = BW_ENOMEM;

	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	/* one worker's libunbound mesh merges its own queries for a name: the table is for
	 * names asked of several workers at once */
	if (!s->workers ||
	    (s->nworkers > 1 && s->nworkers <= 64 * BW_COALESCE_WORDS &&
	     bw_coalesce_new((size_t)s->nworkers * bw_max_inflight(conf), &s->coalesce) != 0)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = tls_create(s, err, errlen)) != 0)
		goto fail;
	rc = BW_ENOMEM;
	for (unsigned i = 0; i < s->nworkers; i++) {
		rc = bw_worker_init(s, i, err, errlen);
		if (rc != 0)
			goto fail;
	}
	rc = bw_obs_server_start(s, err, errlen); /* the metrics endpoint, if configured */
	if (rc != 0 || (rc = bw_block_page_start(s, err, errlen)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	bw_server_destroy(s);
	return rc;
}

int bw_server_start(struct bw_server *s)
{
	cpu_set_t set;
	unsigned ncpu = cpus_allowed(&set);
	int cpus[CPU_SETSIZE];
	unsigned k = 0;
	if (bw_telemetry_start(s->tlm) != 0)
		return BW_EIO;
	/* the feeds that failed or were held back before the events file was open */
	feed_events(s, NULL, atomic_load(&s->state_ref.current));
	for (int c = 0; c < CPU_SETSIZE && k < ncpu; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct bw_worker *w = s->workers[i];
		int rc = pthread_create(&w->thread, NULL, bw_worker_main, w);
		if (rc != 0) {
			bw_err("cannot start worker %u: %s", i, strerror(rc));
			return BW_EIO;
		}
		w->started = true;
		char name[16];
		snprintf(name, sizeof(name), "bw-worker-%u", i % 1000);
		pthread_setname_np(w->thread, name);
		/* one worker per core: pin when there are no more workers than cores */
		if (s->nworkers <= k && k > 1) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpus[i], &one);
			pthread_setaffinity_np(w->thread, sizeof(one), &one);
		}
	}
	s->started = true;
	bw_info("started %u worker%s", s->nworkers, s->nworkers == 1 ? "" : "s");
	return 0;
}

static void publish(struct bw_server *s, struct bw_state *next)
{
	struct bw_state *old = bw_snapref_swap(&s->state_ref, next);
	state_free(old);
}

int bw_server_reload(struct bw_server *s)
{
	char err[1024];
	struct bw_conf *conf = NULL;
	tls_reload(s); /* certificates first: they do not depend on the new config */
	bw_telemetry_reopen_events(s->tlm); /* logrotate moved it away, perhaps */
	int rc = bw_conf_load(s->conf->path, &conf, err, sizeof(err));
	if (rc != 0) {
		bw_err("reload failed, keeping the running configuration: %s", err);
		return rc;
	}
	pthread_mutex_lock(&s->state_lock);
	bw_core_decisions_reload(s); /* a hand edit of the file */
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	struct bw_state *st = state_build(s, conf, true, cur, &rc);
	if (!st) {
		pthread_mutex_unlock(&s->state_lock);
		bw_err("reload failed, keeping the running configuration: cannot build the "
		       "policy: %s", bw_strerror(rc));
		bw_conf_free(conf);
		return rc;
	}
	bw_log_set_level(conf->log.level);
	publish(s, st);
	pthread_mutex_unlock(&s->state_lock);
	bw_info("reloaded %s", s->conf->path);
	return 0;
}

/* Rebuilds on the live state's config; state_lock held. */
static int rebuild_locked(struct bw_server *s)
{
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	/* same config as the live state: the new state owns it if the old one did, and the
	 * old one gives it up below */
	int rc;
	struct bw_state *st = state_build(s, cur->conf, cur->owns_conf, cur, &rc);
	if (!st) {
		bw_err("feed rebuild failed, keeping the running policy: %s", bw_strerror(rc));
		return rc;
	}
	struct bw_state *old = bw_snapref_swap(&s->state_ref, st);
	old->owns_conf = false; /* the conf moved to the new state */
	state_free(old);
	return 0;
}

void bw_server_watch(struct bw_server *s)
{
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	if (bw_policy_files_changed(cur->policy, cur->conf)) {
		bw_info("feed files changed: rebuilding the policy");
		rebuild_locked(s);
	}
	pthread_mutex_unlock(&s->state_lock);
}

int bw_server_feeds_changed(void *ctx, uint64_t off_mask)
{
	struct bw_server *s = ctx;
	pthread_mutex_lock(&s->state_lock);
	s->feeds_off = off_mask;
	int rc = rebuild_locked(s);
	pthread_mutex_unlock(&s->state_lock);
	return rc;
}

int bw_server_feed_live_status(void *ctx, unsigned feed, struct bw_feed_status *out)
{
	struct bw_server *s = ctx;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	int now = feed_now(s, cur->conf, feed);
	const struct bw_feed_status *st =
	    now < 0 ? NULL : bw_policy_feed_status(cur->policy, (size_t)now);
	if (st) {
		*out = *st;
		out->name = out->category = NULL; /* the snapshot's, not ours to keep */
	}
	pthread_mutex_unlock(&s->state_lock);
	return st ? 0 : BW_ENOENT;
}

int bw_server_feed_file_accept(void *ctx, unsigned feed, char *msg, size_t msglen)
{
	struct bw_server *s = ctx;
	int rc = BW_ENOENT;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	int now = feed_now(s, cur->conf, feed);
	const struct bw_feed_status *st =
	    now < 0 ? NULL : bw_policy_feed_status(cur->policy, (size_t)now);
	if (!st || !st->held_back) {
		snprintf(msg, msglen, "feed %s has no held-back version", st ? st->name : "?");
		goto out;
	}
	s->feeds_accept = 1ull << now; /* for this one build (an index of the running conf) */
	rc = rebuild_locked(s);
	s->feeds_accept = 0;
	if (rc) {
		snprintf(msg, msglen, "cannot rebuild the policy: %s", bw_strerror(rc));
		goto out;
	}
	cur = atomic_load(&s->state_ref.current);
	st = bw_policy_feed_status(cur->policy, (size_t)now);
	if (st->held_back || st->load_error || st->changing) {
		/* the file changed again since it was held back */
		snprintf(msg, msglen, "feed %s: not applied: %s", st->name, st->error);
		rc = BW_ENOENT;
	} else {
		snprintf(msg, msglen, "feed %s: held-back version applied (%zu entries)", st->name,
			 st->entries);
		bw_info("%s (accepted by the operator)", msg);
	}
out:
	pthread_mutex_unlock(&s->state_lock);
	return rc;
}

/* A new state st for the live state cur's config (st->conf set, st->policy built): the
 * guard's index and the conf move over to it, and it is published. state_lock held. */
static void publish_successor(struct bw_server *s, const struct bw_state *cur,
			      struct bw_state *st)
{
	bw_core_pause_mask(s, st);
	bw_obs_state_slots(s, st);
	st->lookalike = cur->lookalike;
	st->clients = cur->clients;
	st->local = cur->local;
	struct bw_state *old = bw_snapref_swap(&s->state_ref, st);
	old->owns_conf = false; /* the conf, the indexes and the local names moved to the new
				   state */
	old->lookalike = NULL;
	old->clients = NULL;
	old->local = NULL;
	state_free(old);
}

int bw_core_republish(struct bw_server *s, struct bw_decisions *d, uint64_t *gen)
{
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	struct bw_state *st = calloc(1, sizeof(*st));
	if (!st)
		return BW_ENOMEM;
	st->conf = cur->conf;
	st->owns_conf = cur->owns_conf;
	st->generation = ++s->generation;
	if (bw_policy_with_decisions(cur->policy, d, st->generation, &st->policy) != 0) {
		free(st);
		return BW_ENOMEM;
	}
	/* the verdicts of some names (decisions) or of a whole profile (pauses) changed:
	 * cached answers made before must not be served */
	st->cache_gen = st->generation;
	publish_successor(s, cur, st);
	*gen = st->generation;
	return 0;
}

int bw_server_feed_delta(void *ctx, unsigned feed, const struct bw_rule *adds, size_t n_adds,
			 const struct bw_rule *removes, size_t n_removes)
{
	struct bw_server *s = ctx;
	int rc = BW_ENOMEM;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	int now = feed_now(s, cur->conf, feed);
	struct bw_state *st = now < 0 ? NULL : calloc(1, sizeof(*st));
	if (now < 0) {
		rc = BW_ENOENT; /* a reload removed the feed: its changes go nowhere */
		bw_warn("feed %s: not in the running configuration any more: changes not applied",
			s->conf->policy.feeds[feed].name);
	}
	if (!st)
		goto out;
	st->conf = cur->conf;
	st->owns_conf = cur->owns_conf;
	st->generation = ++s->generation;
	rc = bw_policy_apply_delta(cur->policy, (unsigned)now, adds, n_adds, removes, n_removes,
				   st->generation, &st->policy);
	if (rc) {
		free(st);
		goto out;
	}
	/* address and name-server rules can change any cached answer: those start afresh */
	st->cache_gen = bw_policy_overlay_has_addr_rules(st->policy) ? st->generation
								     : cur->cache_gen;
	publish_successor(s, cur, st);
out:
	pthread_mutex_unlock(&s->state_lock);
	return rc;
}

void bw_server_feed_compact(void *ctx)
{
	struct bw_server *s = ctx;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	size_t keys = bw_policy_overlay_keys(cur->policy);
	if (keys == 0 || keys < cur->conf->policy.compact_after) {
		pthread_mutex_unlock(&s->state_lock);
		return;
	}
	uint64_t t0 = bw_now_ns();
	struct bw_state *st = calloc(1, sizeof(*st));
	if (!st || bw_policy_compact(cur->policy, s->generation + 1, &st->policy) != 0) {
		free(st);
		pthread_mutex_unlock(&s->state_lock);
		bw_warn("policy: cannot fold %zu changed keys into a new base (out of memory); "
			"the changes stay in force as they are", keys);
		return;
	}
	st->conf = cur->conf;
	st->owns_conf = cur->owns_conf;
	uint64_t gen = st->generation = ++s->generation;
	/* a cached answer may predate a change the overlay made, and only the overlay knew
	 * which names it touched: the cache starts afresh (once per compact-after changes) */
	st->cache_gen = gen;
	publish_successor(s, cur, st);
	pthread_mutex_unlock(&s->state_lock);
	bw_info("policy generation %llu: %zu changed keys from transfers folded into a new base in "
		"%.2fs (the packet cache starts afresh)", (unsigned long long)gen, keys,
		(double)(bw_now_ns() - t0) / 1e9);
}

int bw_server_feed_export(void *ctx, unsigned feed, const char *origin, uint32_t serial,
			  FILE *out, uint64_t *entries)
{
	struct bw_server *s = ctx;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	int now = feed_now(s, cur->conf, feed);
	int rc = now < 0 ? BW_ENOENT
			 : bw_policy_export_feed(cur->policy, (unsigned)now, out, origin, serial);
	const struct bw_feed_status *st =
	    now < 0 ? NULL : bw_policy_feed_status(cur->policy, (size_t)now);
	*entries = st ? st->entries : 0;
	pthread_mutex_unlock(&s->state_lock);
	return rc;
}

int bw_server_feed_owner(void *ctx, unsigned feed, const uint8_t *origin, size_t origin_len,
			 const uint8_t *owner, size_t owner_len,
			 void (*emit)(void *ectx, uint16_t type, uint32_t ttl, const uint8_t *rdata,
				      uint16_t rdlen),
			 void *ectx)
{
	struct bw_server *s = ctx;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	int now = feed_now(s, cur->conf, feed);
	int rc = now < 0 ? BW_ENOENT
			 : bw_policy_export_owner(cur->policy, (unsigned)now, origin, origin_len,
						  owner, owner_len, emit, ectx);
	pthread_mutex_unlock(&s->state_lock);
	return rc;
}

void bw_server_set_notify(struct bw_server *s, bw_notify_fn fn, void *ctx)
{
	s->notify = fn;
	s->notify_ctx = ctx;
}

void bw_server_stop(struct bw_server *s, unsigned drain_ms)
{
	bw_obs_server_stop(s);
	bw_block_page_stop(s);
	if (!s->started)
		return;
	for (unsigned i = 0; i < s->nworkers; i++)
		bw_worker_begin_drain(s->workers[i], drain_ms);
	for (unsigned i = 0; i < s->nworkers; i++) {
		if (s->workers[i]->started)
			pthread_join(s->workers[i]->thread, NULL);
		s->workers[i]->started = false;
	}
	bw_telemetry_stop(s->tlm); /* after the workers: it drains what they left */
	s->started = false;
}

void bw_server_log_stats(struct bw_server *s)
{
	struct bw_worker_stats t = {0};
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		if (!s->workers[i])
			continue;
		const struct bw_worker_stats *w = &s->workers[i]->stats;
		t.queries += w->queries;
		t.udp += w->udp;
		t.tcp += w->tcp;
		t.cache_hits += w->cache_hits;
		t.cache_misses += w->cache_misses;
		t.blocked += w->blocked;
		t.blocked_cname += w->blocked_cname;
		t.servfail += w->servfail;
		t.stale += w->stale;
		t.formerr += w->formerr;
		t.refused += w->refused;
		t.dropped += w->dropped;
		t.overload += w->overload;
		t.bogus += w->bogus;
	}
	bw_info("queries %llu (udp %llu, tcp %llu), cache hits %llu, misses %llu, blocked %llu "
		"(+%llu by CNAME), servfail %llu (bogus %llu, overload %llu), stale %llu, formerr "
		"%llu, refused %llu, dropped %llu",
		(unsigned long long)t.queries, (unsigned long long)t.udp, (unsigned long long)t.tcp,
		(unsigned long long)t.cache_hits, (unsigned long long)t.cache_misses,
		(unsigned long long)t.blocked, (unsigned long long)t.blocked_cname,
		(unsigned long long)t.servfail, (unsigned long long)t.bogus,
		(unsigned long long)t.overload, (unsigned long long)t.stale,
		(unsigned long long)t.formerr, (unsigned long long)t.refused,
		(unsigned long long)t.dropped);
	bw_telemetry_log_stats(s->tlm);
}

void bw_server_destroy(struct bw_server *s)
{
	if (!s)
		return;
	if (s->started)
		bw_server_stop(s, 0);
	for (unsigned i = 0; s->workers && i < s->nworkers; i++)
		bw_worker_free(s->workers[i]);
	free(s->workers);
	bw_block_page_stop(s);
	bw_obs_server_free(s);
	bw_telemetry_destroy(s->tlm);
	for (size_t i = 0; s->tls && i < s->conf->server.n_listen; i++) {
		uint64_t full, resumed;
		if (!s->tls[i])
			continue;
		bw_tls_stats(s->tls[i], &full, &resumed);
		bw_info("%s port %u: %llu full TLS handshakes, %llu resumed",
			s->conf->server.listen[i].address, s->conf->server.listen[i].port,
			(unsigned long long)full, (unsigned long long)resumed);
		bw_tls_free(s->tls[i]);
	}
	free(s->tls);
	state_free(atomic_load(&s->state_ref.current));
	bw_core_guard_save(s, true);
	bw_core_guard_free(s);
	bw_core_decisions_free(s);
	bw_cache_destroy(s->cache);
	bw_ratelimit_free(s->ratelimit);
	bw_ratelimit_free(s->rrl);
	bw_coalesce_free(s->coalesce);
	bw_conf_free(s->conf);
	pthread_mutex_destroy(&s->state_lock);
	free(s);
}

const struct bw_conf *bw_server_conf(const struct bw_server *s)
{
	return s->conf;
}

struct bw_telemetry *bw_server_telemetry(struct bw_server *s)
{
	return s->tlm;
}

void bw_server_describe(struct bw_server *s, char *buf, size_t cap)
{
	pthread_mutex_lock(&s->state_lock);
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	size_t n = bw_policy_feed_count(cur->policy), failed = 0;
	for (size_t i = 0; i < n && i < cur->conf->policy.n_feeds; i++) {
		const struct bw_feed_status *f = bw_policy_feed_status(cur->policy, i);
		/* local files; a fetched feed without a copy yet is the feed manager's to say */
		if (cur->conf->policy.feeds[i].source == BW_FEED_SRC_FILE)
			failed += f->load_error || f->held_back;
	}
	snprintf(buf, cap, "policy generation %llu: %zu blocked names from %zu feeds%s",
		 (unsigned long long)cur->generation, bw_policy_entries(cur->policy), n,
		 failed ? " (some failed or held back: bulwarkctl feeds)" : "");
	pthread_mutex_unlock(&s->state_lock);
}

/* The wall clock's offset from the monotonic clock, in ns. */
static int64_t clock_offset_ns(void)
{
	struct timespec rt, mono;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return ((int64_t)rt.tv_sec - (int64_t)mono.tv_sec) * 1000000000LL +
	       ((int64_t)rt.tv_nsec - (int64_t)mono.tv_nsec);
}

void bw_server_clock_check(struct bw_server *s)
{
	int64_t off = clock_offset_ns();
	if (!s->clock_offset_ns) {
		s->clock_offset_ns = off;
		return;
	}
	int64_t step = off - s->clock_offset_ns;
	s->clock_offset_ns = off;
	if (step > -10000000000LL && step < 10000000000LL) /* NTP's slewing, or none */
		return;
	bw_warn("the wall clock stepped by %+lld s: the resolvers start with empty caches "
		"(libunbound dates its records by the wall clock; Bulwark's own cache does not)",
		(long long)(step / 1000000000LL));
	atomic_fetch_add(&s->clock_epoch, 1);
	for (unsigned i = 0; i < s->nworkers; i++)
		bw_worker_wake(s->workers[i]);
}
