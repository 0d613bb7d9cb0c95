/*
 * policy/build.c - a snapshot built from the config: the feeds' rules (read by the parsers
 * of rules.h through feed_read.c) and the allowlists into a new base, each local file judged
 * by the feed health rules (health.c) and read again while it changes, a feed that fails or
 * is held back keeping its rules from the previous snapshot.
 *
 * Building runs on one thread (the reloader) beside the live snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "dns/dns.h"
#include "policy/snapshot.h"

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
		int err = bw_adder_find(ad, TAB_ALLOW, wire, wlen, true, &idx);
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

/* ---- one feed ---- */

enum fate { APPLY, FAIL, HOLD, CHANGING };

/* A feed being loaded into a new snapshot p, and what became of it. */
struct load {
	struct bw_policy *p;
	struct adder *ad;
	const struct bw_feed_conf *fc;
	unsigned idx;
	struct bw_feed_status *fs;    /* p's status of the feed */
	const struct bw_policy *prev; /* the previous snapshot, or NULL */
	int j;			      /* the feed's index in prev, or -1 */
	const struct bw_feed_status *ps; /* prev's status of it, or NULL */
	bool local;		      /* a local file (not a fetched feed's last good copy) */
	bool *dropped;		      /* set when rules were dropped: keys to count again */
	struct bw_parse_report rep;
	size_t rejected; /* ad->rejected before the (last) read */
	enum fate fate;
	int err, sys_errno;
};

/* Drops the rules read of the feed, if any. */
static int drop_read(struct load *l)
{
	if (!l->ad->slots[l->idx])
		return 0;
	int rc = bw_adder_drop_feed(l->ad, l->p->feed_trig, l->idx);
	if (rc)
		return rc;
	*l->dropped = true;
	return 0;
}

/* Reads the feed's file into the adder, again (at most READ_TRIES times) while it changes
 * under the read: l->err is the read's error, l->fate CHANGING when it did not settle.
 * Returns 0, or an error that fails the build (out of memory, the sink's error). */
static int read_feed(struct load *l)
{
	struct adder *ad = l->ad;
	const struct bw_feed_conf *fc = l->fc;
	struct bw_feed_status *fs = l->fs;
	int err, rc = 0;

	for (int tries = 1;; tries++) {
		ad->feed = l->idx;
		ad->ttl_set = false;
		ad->last_tab = -1;
		l->rejected = ad->rejected;
		memset(&l->rep, 0, sizeof(l->rep));
		/* two looks when a file changed under a live policy (the watcher's case); at
		 * start only the check across the read, so that a start does not wait */
		bool calm = !l->local || !l->prev || settled(fc->file);
		if (fc->file)
			err = bw_parse_feed_file(fc, bw_adder_sink, ad, &l->rep, &fs->file_mtime_ns,
						 &fs->file_size, &rc);
		else
			err = BW_ENOENT;
		l->sys_errno = errno;
		/* out of memory: the build fails, the live snapshot stays */
		if (err == BW_ENOMEM || rc < 0)
			return err == BW_ENOMEM ? err : rc;
		uint64_t m = 0, sz = 0;
		/* the file as it is now is the one that was opened: not changed while read */
		bool same = !l->local || err ||
			    (look(fc->file, &m, &sz) && m == fs->file_mtime_ns && sz == fs->file_size);
		if (calm && same)
			break;
		rc = drop_read(l);
		if (rc)
			return rc;
		if (tries == READ_TRIES) {
			l->fate = CHANGING;
			err = 0;
			break;
		}
		nap_ms(LOOK_GAP_MS);
	}
	l->err = err;
	/* a read error after some rules: drop them */
	if (err && ad->slots[l->idx]) {
		rc = drop_read(l);
		if (rc)
			return rc;
		ad->ttl_set = false;
	}
	return 0;
}

/* Judges what was read (rules.h bw_feed_health, bw_feed_shrunk for a local file): sets
 * l->fate FAIL or HOLD, and the status's error. accept: a shrunk local file applies. */
static void judge_feed(struct load *l, bool accept)
{
	const struct bw_feed_conf *fc = l->fc;
	struct bw_feed_status *fs = l->fs;
	const struct bw_feed_status *ps = l->ps;
	size_t entries = l->ad->slots[l->idx];

	if (l->fate == CHANGING) {
		snprintf(fs->error, sizeof(fs->error), "the file changed while it was read (being "
			 "written?): read again at the next look");
		fs->changing = true;
		fs->file_mtime_ns = fs->file_size = 0; /* the watcher's next look reads it */
	} else if (!l->err) {
		fs->bad_lines = l->rep.bad + (l->ad->rejected - l->rejected);
		fs->skipped = l->rep.skipped;
		enum bw_feed_health h = l->rep.broken ? BW_HEALTH_BROKEN
					: l->local ? bw_feed_health(fc, entries, fs->bad_lines, false)
						   : BW_HEALTH_OK;
		if (h != BW_HEALTH_OK) {
			l->err = BW_EMALFORMED;
			bw_feed_health_why(h, fc, entries, fs->bad_lines, &l->rep, fs->error,
					   sizeof(fs->error));
		} else if (l->local && ps && !accept &&
			   bw_feed_shrunk(fc, entries, ps->accepted_entries)) {
			l->fate = HOLD;
			fs->held_back = true;
			fs->held_entries = entries;
			snprintf(fs->error, sizeof(fs->error), "new version held back: %zu entries "
				 "against %zu in the last accepted version (min-ratio %.2f)",
				 entries, ps->accepted_entries, fc->min_ratio);
		}
	}
	if (l->err) {
		l->fate = FAIL;
		fs->load_error = l->err;
		if (l->err != BW_EMALFORMED) {
			fs->file_mtime_ns = fs->file_size = 0;
			snprintf(fs->error, sizeof(fs->error), "cannot read %s: %s",
				 fc->file ? fc->file : "(no file)",
				 l->err == BW_EIO ? strerror(l->sys_errno) : bw_strerror(l->err));
		} else if (l->rep.too_big) {
			snprintf(fs->error, sizeof(fs->error), "compressed data expands past its "
				 "size limit (a gzip bomb?)");
		}
	}
}

/* A version not applied: what was read goes, the rules of prev's version (if any) stay. */
static int keep_previous(struct load *l)
{
	struct adder *ad = l->ad;
	int rc;

	if (ad->slots[l->idx]) { /* what was read is not applied */
		rc = drop_read(l);
		if (rc)
			return rc;
		ad->ttl_set = false;
	}
	if (l->ps) {
		ad->fi[l->idx].ttl = l->prev->base->feeds[l->j].ttl;
		ad->ttl_set = true;
		rc = bw_snap_each_rule(l->prev, l->j, bw_adder_copy, ad);
		if (rc)
			return rc;
		l->fs->kept_previous = true;
	}
	l->fs->accepted_entries = l->ps ? l->ps->accepted_entries : 0;
	return 0;
}

/* Says what became of a version not applied. */
static void log_fate(const struct load *l)
{
	const struct bw_feed_conf *fc = l->fc;
	const struct bw_feed_status *fs = l->fs, *ps = l->ps;
	const char *keep = ps ? "keeping the previous version" : "no previous version, feed is empty";
	/* said once per version of the file: a rebuild for another feed reads it again */
	bool again = ps && ps->file_mtime_ns == fs->file_mtime_ns &&
		     ps->file_size == fs->file_size && ps->held_back == fs->held_back &&
		     ps->load_error == fs->load_error;
	int err = l->err;

	if (l->fate == FAIL) /* a local file's failure is an alert, said once per version */
		bw_log(again && l->local ? BW_LOG_INFO : BW_LOG_ERR, "%sfeed %s: %s %s: %s; %s",
		       l->local && !again ? "ALERT " : "", fs->name,
		       err == BW_EMALFORMED ? "unusable" : "cannot read",
		       fc->file ? fc->file : "(no file)",
		       err == BW_EIO		? strerror(l->sys_errno)
		       : err == BW_EMALFORMED ? fs->error
					      : bw_strerror(err), keep);
	else if (l->fate == HOLD)
		bw_log(again ? BW_LOG_INFO : BW_LOG_WARN, "%sfeed %s: %s: %s; %s. Apply it with "
		       "`bulwarkctl feeds accept %s`", again ? "" : "ALERT ", fs->name, fc->file,
		       fs->error, keep, fs->name);
	else if (l->fate == CHANGING)
		bw_warn("feed %s: %s: %s; %s", fs->name, fc->file, fs->error, keep);
}

/* Loads feed idx into the new snapshot. A local file is judged before it is applied
 * (rules.h bw_feed_health, bw_feed_shrunk; read again while it changes): a failed,
 * held-back or changing version leaves the feed with the rules it had in prev. A fetched
 * feed's file is its last good copy, judged by the feed manager before it was stored.
 * accept: apply a local file even if it shrank (`bulwarkctl feeds accept`). */
static int load_feed(struct bw_policy *p, struct adder *ad, const struct bw_feed_conf *fc,
		     unsigned idx, const struct bw_policy *prev, bool accept, bool *dropped)
{
	struct load l = {.p = p, .ad = ad, .fc = fc, .idx = idx, .fs = &p->status[idx],
			 .prev = prev, .dropped = dropped, .fate = APPLY};
	struct bw_feed_status *fs = l.fs;
	uint64_t t0 = bw_now_ns();
	int rc;

	l.local = fc->source == BW_FEED_SRC_FILE && fc->file;
	l.j = find_prev_feed(prev, fs->name);
	l.ps = l.j >= 0 ? &prev->status[l.j] : NULL;
	l.rejected = ad->rejected;
	if ((rc = read_feed(&l)) != 0)
		return rc;
	judge_feed(&l, accept);
	if (l.fate != APPLY) {
		if ((rc = keep_previous(&l)) != 0)
			return rc;
	} else {
		fs->accepted_entries = ad->slots[idx];
	}
	log_fate(&l);
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

/* ---- build ---- */

/* Sizes the name table once from the feeds' file sizes, so that a big feed does not end its
 * build with a doubling (old and new table at once: the peak of a load or reload). The
 * bytes per name are on the high side for each format, so the estimate stays at or below
 * the real count; the power-of-two rounding covers the rest. */
static void size_caps(const struct bw_conf *conf, size_t caps[N_TAB])
{
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
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
	size_t caps[N_TAB] = {0};
	size_caps(conf, caps);
	struct core *c = bw_snap_core_new(n_feeds, n_prof, make_seed(generation), caps);
	if (!c)
		return BW_ENOMEM;
	p = bw_snap_new(c, generation); /* p owns c now */
	if (!p)
		return BW_ENOMEM;
	bw_adder_init(&ad, &c->rs, c->seed, c->feeds);
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
		err = bw_rset_count_keys(&c->rs, &p->entries);
		if (err)
			goto fail;
	}
	bw_rset_shrink(&c->rs);
	bw_snap_profiles_update(p);
	free(ad.rrs);
	*out = p;
	return 0;
fail:
	free(ad.rrs);
	bw_policy_free(p);
	return err ? err : BW_ENOMEM;
}
