/*
 * feeds/manager.c - the feed manager thread: schedules fetches, runs the safety checks, stores
 * the last good copy, asks the server to apply it, holds back shrunken versions, watches
 * for expiry, and reports status.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "feeds/feeds.h"
#include "feeds/xfr.h"
#include "dns/dns.h"
#include "policy/rules.h"

struct held {
	char *buf;
	size_t len;
	struct bw_feed_meta meta;
	uint64_t bad;
};

struct feed {
	const struct bw_feed_conf *fc;
	unsigned index;
	const struct bw_feed_src_ops *src; /* NULL: a file feed (watched by the server) */
	char *meta_path;
	bool have_last;           /* a last good copy exists */
	struct bw_feed_meta last; /* its metadata */
	/* schedule and state; under m->lock */
	uint64_t next_ms;
	unsigned failures;
	char last_error[300];
	int64_t last_error_at;
	struct held *held;
	bool refresh_now, accept_req, expired;
	bool rejected;            /* the last version fetched failed its checks */
	bool notified;            /* the refresh was asked for by a NOTIFY */
	int accept_rc;
	char accept_msg[200];
};

struct bw_feeds {
	const struct bw_conf *conf;
	struct bw_feeds_hooks hooks;
	struct feed *feeds;
	size_t n;
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	pthread_t thread;
	bool started, stop, curl;
	atomic_bool cancel;       /* stop: abandon the fetch in flight */
	uint64_t off_mask;        /* feeds stopped because expired (when-expired: stop) */
	/* XFR feeds' zones, for NOTIFY (immutable once created) */
	struct bw_notify_zone *zones;
	struct bw_tsig_key *keys;
	struct feed **zone_feed;
	size_t n_zones;
};

static uint32_t rnd32(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)bw_now_ns();
	return r;
}

static char *path_join(const char *dir, const char *name, const char *ext)
{
	size_t n = strlen(dir) + strlen(name) + strlen(ext) + 3;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s%s", dir, name, ext);
	return p;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return BW_EINVAL;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return BW_EIO;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return BW_EIO;
	return 0;
}

/* ---- parsing a candidate ---- */
struct counter {
	struct bw_entry_count *ec;
	uint64_t max;
};

static int count_rule(void *ctx, const struct bw_rule *r)
{
	struct counter *c = ctx;
	int rc = bw_entry_count_add(c->ec, r);
	if (rc)
		return rc;
	if (bw_entry_count_get(c->ec) > c->max)
		return BW_ERANGE; /* over max-entries: no need to read on */
	return 0;
}

/* Parses buf as fc's format and runs the safety checks; why (may be NULL) says what a rejected
 * version's trouble is, with its first bad line. */
static enum bw_feed_check check(const struct feed *f, const char *buf, size_t len,
				uint64_t *entries, uint64_t *bad, bool ignore_shrink, char *why,
				size_t whylen)
{
	struct bw_parse_report rep;
	struct counter c = {.ec = bw_entry_count_new(), .max = f->fc->max_entries};
	struct bw_feed_check_input in = {.size = len, .have_last = f->have_last,
					 .last_entries = f->last.entries};

	memset(&rep, 0, sizeof(rep));
	*entries = *bad = 0;
	if (why)
		snprintf(why, whylen, "%s", bw_feed_check_str(BW_CHECK_TOO_BIG));
	if (len > f->fc->max_size) {
		bw_entry_count_free(c.ec);
		return BW_CHECK_TOO_BIG;
	}
	/* messages about the candidate name where it came from, not the last good copy */
	char label[600];
	struct bw_feed_conf fc = *f->fc;
	snprintf(label, sizeof(label), "feed %s, new version from %s", fc.name,
		 fc.url ? fc.url : fc.file);
	fc.file = label;
	int rc = c.ec ? bw_parse_feed(&fc, buf, len, count_rule, &c, &rep) : BW_ENOMEM;
	in.entries = bw_entry_count_get(c.ec);
	bw_entry_count_free(c.ec);
	in.bad = rep.bad;
	if (rep.too_big) /* compressed, and expands past max-size */
		in.size = f->fc->max_size + 1;
	in.broken = rep.broken || (rc < 0 && rc != BW_ERANGE);
	if (ignore_shrink)
		in.have_last = false;
	*entries = in.entries;
	*bad = rep.bad;
	enum bw_feed_check v = bw_feeds_check(f->fc, &in);
	if (why && v == BW_CHECK_BROKEN && rc == BW_ENOMEM)
		snprintf(why, whylen, "out of memory while checking it");
	else if (why && v == BW_CHECK_BROKEN)
		bw_feed_health_why(bw_feed_health(f->fc, in.entries, in.bad, in.broken), f->fc,
				   in.entries, in.bad, &rep, why, whylen);
	else if (why)
		snprintf(why, whylen, "%s", bw_feed_check_str(v));
	return v;
}

/* ---- applying ---- */

/* The new last good copy (len bytes) is on disk: its metadata next, then the server is
 * asked to apply it (unless a delta already did). */
static void committed(struct bw_feeds *m, struct feed *f, size_t len,
		      const struct bw_feed_meta *meta, bool delta_applied)
{
	int rc;
	if ((rc = bw_feed_meta_save(f->meta_path, meta)))
		bw_warn("feed %s: cannot write %s: %s", f->fc->name, f->meta_path, bw_strerror(rc));
	pthread_mutex_lock(&m->lock);
	f->last = *meta;
	f->have_last = true;
	f->rejected = false;
	bool was_off = m->off_mask & (1ull << f->index);
	m->off_mask &= ~(1ull << f->index);
	f->expired = false;
	uint64_t off = m->off_mask;
	pthread_mutex_unlock(&m->lock);
	bw_info("feed %s: new version applied: %llu entries, %zu bytes%s%s", f->fc->name,
		(unsigned long long)meta->entries, len, meta->etag[0] ? ", ETag " : "", meta->etag);
	if ((!delta_applied || was_off) && m->hooks.rebuild)
		m->hooks.rebuild(m->hooks.ctx, off);
}

static void store_failed(const struct feed *f)
{
	bw_err("feed %s: cannot write %s: %s", f->fc->name, f->fc->file, strerror(errno));
}

/* Replaces the last good copy with buf, then asks the server to apply it. Manager thread,
 * without the lock (only this thread writes a feed's last good copy). */
static int commit(struct bw_feeds *m, struct feed *f, const char *buf, size_t len,
		  const struct bw_feed_meta *meta, bool delta_applied)
{
	int rc = bw_feeds_store(f->fc->file, buf, len);
	if (rc) {
		store_failed(f);
		return rc;
	}
	committed(m, f, len, meta, delta_applied);
	return 0;
}

/* A security event (held back, failed, expired), once per change of state. */
static void feed_event(struct bw_feeds *m, struct feed *f, const char *state, const char *why)
{
	if (m->hooks.event)
		m->hooks.event(m->hooks.ctx, f->index, state, why);
}

static void set_error(struct bw_feeds *m, struct feed *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(struct bw_feeds *m, struct feed *f, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&m->lock);
	va_start(ap, fmt);
	vsnprintf(f->last_error, sizeof(f->last_error), fmt, ap);
	va_end(ap);
	f->last_error_at = time(NULL);
	pthread_mutex_unlock(&m->lock);
	bw_err("feed %s: %s", f->fc->name, f->last_error);
}

static void hold(struct bw_feeds *m, struct feed *f, char *buf, size_t len,
		 const struct bw_feed_meta *meta, uint64_t bad)
{
	struct held *h = calloc(1, sizeof(*h));
	if (!h) {
		free(buf);
		return;
	}
	h->buf = buf; /* owned by the held version now */
	h->len = len;
	h->meta = *meta;
	h->bad = bad;
	pthread_mutex_lock(&m->lock);
	bool again = f->held && f->held->meta.entries == meta->entries &&
		     f->held->len == len && !memcmp(f->held->buf, buf, len);
	if (f->held) {
		free(f->held->buf);
		free(f->held);
	}
	f->held = h;
	pthread_mutex_unlock(&m->lock);
	if (again)
		return;
	char why[200];
	snprintf(why, sizeof(why), "%llu entries against %llu in the last good version "
		 "(min-ratio %.2f)", (unsigned long long)meta->entries,
		 (unsigned long long)f->last.entries, f->fc->min_ratio);
	bw_warn("ALERT feed %s: new version held back: %s; still blocking with the last good "
		"version. Apply it with `bulwarkctl feeds accept %s`", f->fc->name, why,
		f->fc->name);
	feed_event(m, f, "held back", why);
}

/* Is buf the last good copy, byte for byte? */
static bool same_as_last(const struct feed *f, const char *buf, size_t len)
{
	char *old = NULL;
	size_t oldlen = 0;
	if (!f->have_last || len != f->last.size ||
	    bw_feed_read_file(f->fc->file, &old, &oldlen, NULL, NULL) != 0)
		return false;
	bool same = oldlen == len && memcmp(old, buf, len) == 0;
	free(old);
	return same;
}

static void reject(struct bw_feeds *m, struct feed *f, size_t len, uint64_t entries, uint64_t bad,
		   const char *why)
{
	pthread_mutex_lock(&m->lock);
	bool again = f->rejected;
	f->rejected = true; /* until a version passes, or the source goes back to the last good */
	pthread_mutex_unlock(&m->lock);
	set_error(m, f, "new version rejected (%zu bytes, %llu entries, %llu bad): %s; keeping the "
		  "last good version", len, (unsigned long long)entries, (unsigned long long)bad,
		  why);
	if (!again)
		feed_event(m, f, "failed", f->last_error);
}

struct export_job {
	struct bw_feeds *m;
	struct feed *f;
	uint32_t serial;
	uint64_t entries;
	bool failed; /* the export, not the writing */
};

static int export_to(FILE *out, void *ctx)
{
	struct export_job *j = ctx;
	int rc = j->m->hooks.export_feed(j->m->hooks.ctx, j->f->index, j->f->fc->zone, j->serial,
					 out, &j->entries);
	j->failed = rc != 0 && !ferror(out);
	return rc;
}

/* A DELTA (IXFR): applied to the live policy first (the changes are small and checked by
 * the source; the shrink check does not apply), then the live policy's rules of the feed
 * become its last good copy. Manager thread, without the lock. */
static bool apply_delta(struct bw_feeds *m, struct feed *f, struct bw_fetch *fx, int64_t now)
{
	uint64_t entries = 0, bad = 0;
	if (fx->buf) {
		/* the source sent the whole new version along: it is checked first (not for
		 * shrinking: a delta is an ordered step of the provider's own versioning) */
		char why[300];
		enum bw_feed_check v = check(f, fx->buf, fx->len, &entries, &bad, true, why,
						sizeof(why));
		if (v != BW_CHECK_OK) {
			reject(m, f, fx->len, entries, bad, why);
			return false;
		}
	}
	uint64_t t0 = bw_now_ns();
	int rc = m->hooks.delta ? m->hooks.delta(m->hooks.ctx, f->index, fx->adds, fx->n_adds,
						 fx->removes, fx->n_removes)
				: BW_EINVAL;
	if (rc) {
		set_error(m, f, "cannot apply the changes to serial %u: %s", fx->meta.serial,
			  bw_strerror(rc));
		return false;
	}
	double ms = (double)(bw_now_ns() - t0) / 1e6;
	bw_info("feed %s: changes to serial %u applied in %.1f ms (%zu rules in, %zu out)",
		f->fc->name, fx->meta.serial, ms, fx->n_adds, fx->n_removes);
	fx->meta.fetched_at = now;
	if (fx->buf) {
		fx->meta.entries = entries;
		fx->meta.size = fx->len;
		rc = commit(m, f, fx->buf, fx->len, &fx->meta, true);
	} else {
		/* the live policy's rules of the feed, streamed into the new last good copy */
		struct export_job j = {m, f, fx->meta.serial, 0, !m->hooks.export_feed};
		size_t len = 0;
		rc = j.failed ? BW_EINVAL : bw_feeds_store_with(f->fc->file, export_to, &j, &len);
		if (rc && j.failed) {
			/* the policy has the changes; the last good copy and its serial stay as
			 * they were, so the next transfer starts from there again */
			set_error(m, f, "cannot export serial %u for the last good copy: %s",
				  fx->meta.serial, bw_strerror(rc));
			return false;
		}
		if (rc) {
			store_failed(f);
		} else {
			fx->meta.entries = j.entries;
			fx->meta.size = len;
			committed(m, f, len, &fx->meta, true);
		}
	}
	if (rc == 0 && m->hooks.compact)
		m->hooks.compact(m->hooks.ctx);
	if (rc)
		set_error(m, f, "cannot store the new version in %s", f->fc->file);
	return rc == 0;
}

/* The refresh interval in ms: the configured one, or for a transferred zone without a
 * configured `refresh`, the zone's SOA refresh (retry after a failure), 1 s to 1 day. */
static unsigned refresh_ms(const struct feed *f)
{
	if (f->fc->source != BW_FEED_SRC_XFR || f->fc->refresh_given || !f->last.has_serial)
		return f->fc->refresh_ms;
	uint32_t s = f->failures && f->last.soa_retry ? f->last.soa_retry : f->last.soa_refresh;
	if (!s)
		return f->fc->refresh_ms;
	s = s < BW_XFR_MIN_INTERVAL ? BW_XFR_MIN_INTERVAL : s > BW_XFR_MAX_INTERVAL ? BW_XFR_MAX_INTERVAL : s;
	/* bw_feeds_next_delay() backs off from refresh/8 after failures: give it 8 x retry */
	return (f->failures && f->last.soa_retry ? 8 : 1) * s * 1000u;
}

/* Seconds after the last success when the feed counts as expired (0: never). */
static int64_t expire_s(const struct feed *f)
{
	if (f->fc->source == BW_FEED_SRC_XFR && !f->fc->expire_given && f->last.soa_expire)
		return f->last.soa_expire;
	return (int64_t)(f->fc->expire_ms / 1000);
}

/* One fetch of feed f, safety checks, commit. Manager thread, without the lock. Returns true on
 * success (the source answered and what it sent was applied, held or unchanged). */
static bool run_feed(struct bw_feeds *m, struct feed *f)
{
	struct bw_fetch fx;
	memset(&fx, 0, sizeof(fx));
	fx.meta = f->last;
	fx.cancel = &m->cancel;
	fx.hooks = &m->hooks;
	fx.feed = f->index;
	fx.have_last = f->have_last;
	pthread_mutex_lock(&m->lock);
	fx.notified = f->notified;
	f->notified = false;
	pthread_mutex_unlock(&m->lock);
	int64_t now = time(NULL);
	bool ok = false;

	int rc = f->src->fetch(f->fc, f->fc->file, &fx);
	if (rc) {
		set_error(m, f, "fetch failed: %s", fx.err[0] ? fx.err : bw_strerror(rc));
		goto out;
	}
	fx.meta.checked_at = now;
	if (fx.kind == BW_FETCH_NONE) {
unchanged:
		bw_debug("feed %s: not modified", f->fc->name);
		pthread_mutex_lock(&m->lock);
		f->last.checked_at = now;
		f->rejected = false; /* the source serves the last good version again */
		memcpy(f->last.cursor, fx.meta.cursor, sizeof(f->last.cursor));
		struct bw_feed_meta copy = f->last;
		bool was_off = m->off_mask & (1ull << f->index);
		m->off_mask &= ~(1ull << f->index);
		f->expired = false;
		uint64_t off = m->off_mask;
		pthread_mutex_unlock(&m->lock);
		bw_feed_meta_save(f->meta_path, &copy);
		if (was_off && m->hooks.rebuild)
			m->hooks.rebuild(m->hooks.ctx, off);
		ok = true;
		goto out;
	}
	if (fx.kind == BW_FETCH_FULL && same_as_last(f, fx.buf, fx.len)) {
		/* e.g. a server without validators, or TAXII objects seen before */
		fx.kind = BW_FETCH_NONE;
		goto unchanged;
	}
	if (fx.kind == BW_FETCH_DELTA) {
		ok = apply_delta(m, f, &fx, now);
		goto out;
	}
	uint64_t entries, bad;
	char why[300];
	enum bw_feed_check v = check(f, fx.buf, fx.len, &entries, &bad, false, why, sizeof(why));
	fx.meta.entries = entries;
	fx.meta.size = fx.len;
	fx.meta.fetched_at = now;
	if (v == BW_CHECK_SHRUNK) {
		hold(m, f, fx.buf, fx.len, &fx.meta, bad); /* logs the alert */
		fx.buf = NULL;
		pthread_mutex_lock(&m->lock);
		snprintf(f->last_error, sizeof(f->last_error),
			 "new version held back: %llu entries, last good %llu",
			 (unsigned long long)entries, (unsigned long long)f->last.entries);
		f->last_error_at = now;
		pthread_mutex_unlock(&m->lock);
		ok = true;
		goto out;
	}
	if (v != BW_CHECK_OK) {
		reject(m, f, fx.len, entries, bad, why);
		goto out;
	}
	if (commit(m, f, fx.buf, fx.len, &fx.meta, false) != 0) {
		set_error(m, f, "cannot store the new version in %s", f->fc->file);
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	if (f->held) { /* a good version supersedes the held one */
		free(f->held->buf);
		free(f->held);
		f->held = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	ok = true;
out:
	if (f->src->release)
		f->src->release(&fx);
	free(fx.buf);
	return ok;
}

static void do_accept(struct bw_feeds *m, struct feed *f)
{
	pthread_mutex_lock(&m->lock);
	struct held *h = f->held;
	f->held = NULL;
	pthread_mutex_unlock(&m->lock);
	int rc = BW_ENOENT;
	char msg[200];
	if (!h) {
		snprintf(msg, sizeof(msg), "feed %s has no held-back version", f->fc->name);
	} else if ((rc = commit(m, f, h->buf, h->len, &h->meta, false)) != 0) {
		snprintf(msg, sizeof(msg), "cannot store the held-back version of %s", f->fc->name);
	} else {
		snprintf(msg, sizeof(msg), "feed %s: held-back version applied (%llu entries)",
			 f->fc->name, (unsigned long long)h->meta.entries);
		bw_info("%s (accepted by the operator)", msg);
		pthread_mutex_lock(&m->lock);
		f->last_error[0] = 0;
		pthread_mutex_unlock(&m->lock);
	}
	if (h) {
		free(h->buf);
		free(h);
	}
	pthread_mutex_lock(&m->lock);
	f->accept_rc = rc;
	snprintf(f->accept_msg, sizeof(f->accept_msg), "%s", msg);
	f->accept_req = false;
	pthread_cond_broadcast(&m->done);
	pthread_mutex_unlock(&m->lock);
}

/* Expiry: under the lock; returns true when the set of stopped feeds changed. */
static bool check_expiry(struct bw_feeds *m, int64_t now)
{
	bool changed = false;
	for (size_t i = 0; i < m->n; i++) {
		struct feed *f = &m->feeds[i];
		if (!f->src || !expire_s(f) || !f->have_last)
			continue;
		int64_t last = f->last.checked_at > f->last.fetched_at ? f->last.checked_at
									: f->last.fetched_at;
		bool exp = now - last > expire_s(f);
		if (exp && !f->expired) {
			f->expired = true;
			char why[200];
			snprintf(why, sizeof(why), "no successful fetch for %llds (expire %llus); %s",
				 (long long)(now - last), (unsigned long long)expire_s(f),
				 f->fc->expired_stop ? "its rules are dropped (when-expired: stop)"
						     : "still blocking with the last good version");
			bw_warn("ALERT feed %s: expired: %s", f->fc->name, why);
			feed_event(m, f, "expired", why);
			if (f->fc->expired_stop) {
				m->off_mask |= 1ull << f->index;
				changed = true;
			}
		}
	}
	return changed;
}

static void *manager_main(void *arg)
{
	struct bw_feeds *m = arg;

	/* Parsing a big version or writing the last good copy of a 1M-rule zone takes a
	 * second of CPU: never at the expense of the workers that answer queries. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
		bw_debug("feed manager: cannot lower its priority: %s", strerror(errno));

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		uint64_t now = bw_now_ms();
		struct feed *due = NULL;
		for (size_t i = 0; i < m->n && !due; i++) {
			struct feed *f = &m->feeds[i];
			if (f->accept_req) {
				pthread_mutex_unlock(&m->lock);
				do_accept(m, f);
				pthread_mutex_lock(&m->lock);
				now = bw_now_ms();
			}
			if (f->src && (f->refresh_now || f->next_ms <= now))
				due = f;
		}
		if (due) {
			due->refresh_now = false;
			due->next_ms = UINT64_MAX; /* in flight */
			pthread_mutex_unlock(&m->lock);
			bool ok = run_feed(m, due);
			pthread_mutex_lock(&m->lock);
			due->failures = ok ? 0 : due->failures + 1;
			if (ok && !due->held)
				due->last_error[0] = 0;
			due->next_ms = bw_now_ms() + bw_feeds_next_delay(refresh_ms(due),
									 due->failures, rnd32());
			continue;
		}
		if (check_expiry(m, time(NULL))) {
			uint64_t off = m->off_mask;
			pthread_mutex_unlock(&m->lock);
			if (m->hooks.rebuild)
				m->hooks.rebuild(m->hooks.ctx, off);
			pthread_mutex_lock(&m->lock);
			continue;
		}
		uint64_t wait = 1000;
		for (size_t i = 0; i < m->n; i++) {
			struct feed *f = &m->feeds[i];
			if (f->src && f->next_ms != UINT64_MAX && f->next_ms - now < wait)
				wait = f->next_ms > now ? f->next_ms - now : 0;
		}
		struct timespec ts;
		bw_deadline_ms(&ts, wait);
		pthread_cond_timedwait(&m->wake, &m->lock, &ts);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ---- NOTIFY ---- */

/* The zones of the XFR feeds, their primaries and keys, for bw_notify_handle(). */
static int make_zones(struct bw_feeds *m, char *err, size_t errlen)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += m->feeds[i].fc->source == BW_FEED_SRC_XFR;
	if (!n)
		return 0;
	m->zones = calloc(n, sizeof(*m->zones));
	m->keys = calloc(n, sizeof(*m->keys));
	m->zone_feed = calloc(n, sizeof(*m->zone_feed));
	if (!m->zones || !m->keys || !m->zone_feed) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		struct feed *f = &m->feeds[i];
		const struct bw_feed_conf *fc = f->fc;
		if (fc->source != BW_FEED_SRC_XFR)
			continue;
		struct bw_notify_zone *z = &m->zones[m->n_zones];
		uint8_t *wire = malloc(BW_DNS_MAXNAME);
		int len = wire ? bw_name_from_text(fc->zone, strlen(fc->zone), wire) : -1;
		if (len <= 0) {
			free(wire);
			snprintf(err, errlen, "feed %s: zone %s is not a usable name", fc->name,
				 fc->zone);
			return BW_EINVAL;
		}
		z->name = wire;
		z->name_len = (size_t)len;
		z->primaries = fc->primaries;
		z->n_primaries = fc->n_primaries;
		if (fc->tsig_name) {
			const char *why = NULL;
			if (bw_tsig_key_init(&m->keys[m->n_zones], fc->tsig_name, fc->tsig_alg,
					     fc->tsig_secret, &why) != 0) {
				snprintf(err, errlen, "feed %s: tsig key %s: %s", fc->name,
					 fc->tsig_name, why ? why : "unusable");
				return BW_EINVAL;
			}
			z->key = &m->keys[m->n_zones];
		}
		m->zone_feed[m->n_zones++] = f;
	}
	return 0;
}

size_t bw_feeds_notify(void *ctx, const struct sockaddr *from, const uint8_t *msg, size_t len,
		       uint8_t *resp, size_t cap)
{
	struct bw_feeds *m = ctx;
	size_t resp_len = 0, zi = 0;
	uint32_t serial = 0;
	bool has_serial = false;

	if (!m || !m->n_zones)
		return 0;
	int rc = bw_notify_handle(m->zones, m->n_zones, from, msg, len, time(NULL), resp, cap,
				  &resp_len, &zi, &serial, &has_serial);
	if (rc == 0) {
		struct feed *f = m->zone_feed[zi];
		pthread_mutex_lock(&m->lock);
		bool news = !has_serial || !f->last.has_serial ||
			    bw_serial_newer(serial, f->last.serial);
		if (news) {
			f->refresh_now = true;
			f->notified = true;
			pthread_cond_broadcast(&m->wake);
		}
		pthread_mutex_unlock(&m->lock);
		if (has_serial)
			bw_info("feed %s: NOTIFY for serial %u: %s", f->fc->name, serial,
				news ? "transfer scheduled" : "already current");
		else
			bw_info("feed %s: NOTIFY: transfer scheduled", f->fc->name);
	} else if (rc == BW_EREFUSED) {
		char addr[BW_ADDRSTRLEN] = "?";
		bw_sockaddr_addr(from, addr, sizeof(addr));
		bw_warn("NOTIFY from %s refused (not a primary of a zone we transfer, or TSIG "
			"failed)", addr);
	}
	return resp_len;
}

/* ---- public ---- */

int bw_feeds_create(const struct bw_conf *conf, const struct bw_feeds_hooks *hooks,
		    struct bw_feeds **out, char *err, size_t errlen)
{
	struct bw_feeds *m = calloc(1, sizeof(*m));
	size_t fetched = 0;
	char dir[4096];

	if (!m || !(m->feeds = calloc(conf->policy.n_feeds + 1, sizeof(*m->feeds)))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	m->conf = conf;
	if (hooks)
		m->hooks = *hooks;
	m->n = conf->policy.n_feeds;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->done, NULL);
	snprintf(dir, sizeof(dir), "%s/feeds", conf->server.state_dir);
	for (size_t i = 0; i < m->n; i++) {
		struct feed *f = &m->feeds[i];
		f->fc = &conf->policy.feeds[i];
		f->index = (unsigned)i;
		if (f->fc->source == BW_FEED_SRC_FILE)
			continue;
		fetched++;
		f->src = f->fc->source == BW_FEED_SRC_TAXII ? &bw_feed_src_taxii
			 : f->fc->source == BW_FEED_SRC_XFR ? &bw_feed_src_xfr
							    : &bw_feed_src_url;
		if (!(f->meta_path = path_join(dir, f->fc->name, ".meta"))) {
			bw_feeds_destroy(m);
			snprintf(err, errlen, "out of memory");
			return BW_ENOMEM;
		}
		f->have_last = access(f->fc->file, R_OK) == 0;
		int rc = bw_feed_meta_load(f->meta_path, &f->last);
		if (rc && rc != BW_ENOENT)
			bw_warn("feed %s: %s is unusable, ignoring it", f->fc->name, f->meta_path);
		if (!f->have_last) {
			memset(&f->last, 0, sizeof(f->last));
			bw_err("feed %s: no copy yet (%s): the feed is empty until the first "
			       "successful fetch from %s", f->fc->name, f->fc->file,
			       f->fc->url ? f->fc->url : f->fc->zone);
		} else if (rc || !f->last.entries_names) {
			/* a last good copy without metadata (restored from a backup without it),
			 * or with entries counted as rules (before "entries-unit"): count its
			 * entries once */
			char *buf;
			size_t len;
			uint64_t e, bad;
			if (bw_feed_read_file(f->fc->file, &buf, &len, NULL, NULL) == 0) {
				f->have_last = false;
				check(f, buf, len, &e, &bad, true, NULL, 0);
				f->have_last = true;
				f->last.entries = e;
				f->last.entries_names = true;
				f->last.size = len;
				free(buf);
			}
		}
	}
	if (fetched && mkdir_p(dir) != 0) {
		snprintf(err, errlen, "cannot create the feed state directory %s: %s", dir,
			 strerror(errno));
		bw_feeds_destroy(m);
		return BW_EIO;
	}
	if (fetched)
		m->curl = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	size_t copies = 0;
	for (size_t i = 0; i < m->n; i++)
		copies += m->feeds[i].src && m->feeds[i].have_last;
	if (fetched && !copies)
		bw_err("NO THREAT FEED IS LOADED YET: none of the %zu feeds to fetch has a copy; "
		       "they load as soon as their sources answer (see `bulwarkctl feeds`)",
		       fetched);
	int rc = make_zones(m, err, errlen);
	if (rc) {
		bw_feeds_destroy(m);
		return rc;
	}
	*out = m;
	return 0;
}

int bw_feeds_start(struct bw_feeds *m)
{
	uint64_t now = bw_now_ms();
	bool any = false;
	for (size_t i = 0; i < m->n; i++) {
		m->feeds[i].next_ms = now; /* fetch every feed once at start */
		any |= m->feeds[i].src != NULL;
	}
	if (!any)
		return 0;
	int rc = pthread_create(&m->thread, NULL, manager_main, m);
	if (rc) {
		bw_err("cannot start the feed manager: %s", strerror(rc));
		return BW_EIO;
	}
	pthread_setname_np(m->thread, "bw-feeds");
	m->started = true;
	return 0;
}

void bw_feeds_destroy(struct bw_feeds *m)
{
	if (!m)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		atomic_store(&m->cancel, true);
		pthread_cond_broadcast(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	for (size_t i = 0; i < m->n; i++) {
		struct feed *f = &m->feeds[i];
		free(f->meta_path);
		if (f->held) {
			free(f->held->buf);
			free(f->held);
		}
	}
	if (m->curl)
		curl_global_cleanup();
	for (size_t i = 0; i < m->n_zones; i++)
		free((void *)m->zones[i].name);
	if (m->keys)
		memset(m->keys, 0, m->n_zones * sizeof(*m->keys));
	free(m->zones);
	free(m->keys);
	free(m->zone_feed);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->done);
	free(m->feeds);
	free(m);
}

static struct feed *find(struct bw_feeds *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		if (!strcmp(m->feeds[i].fc->name, name))
			return &m->feeds[i];
	}
	return NULL;
}

int bw_feeds_accept(struct bw_feeds *m, const char *name, char *err, size_t errlen)
{
	struct feed *f = find(m, name);
	if (!f) {
		snprintf(err, errlen, "no feed named %s", name);
		return BW_ENOENT;
	}
	if (!f->src) {
		/* a local file: its held-back version is the file itself, which the server's
		 * policy build left out; accepting is a rebuild that applies it */
		if (!m->hooks.file_accept) {
			snprintf(err, errlen, "feed %s has no held-back version", name);
			return BW_ENOENT;
		}
		return m->hooks.file_accept(m->hooks.ctx, f->index, err, errlen);
	}
	pthread_mutex_lock(&m->lock);
	if (!f->held) {
		pthread_mutex_unlock(&m->lock);
		snprintf(err, errlen, "feed %s has no held-back version", name);
		return BW_ENOENT;
	}
	if (!m->started) { /* no manager thread (tests): apply here */
		pthread_mutex_unlock(&m->lock);
		do_accept(m, f);
		pthread_mutex_lock(&m->lock);
	} else {
		f->accept_req = true;
		pthread_cond_broadcast(&m->wake);
		while (f->accept_req)
			pthread_cond_wait(&m->done, &m->lock);
	}
	int rc = f->accept_rc;
	snprintf(err, errlen, "%s", f->accept_msg);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

bool bw_feeds_failed(void *ctx, const char *name, char *why, size_t whylen)
{
	struct bw_feeds *m = ctx;
	struct feed *f = m ? find(m, name) : NULL;
	if (!f || !f->src)
		return false;
	pthread_mutex_lock(&m->lock);
	bool failed = f->rejected;
	if (failed)
		snprintf(why, whylen, "%s", f->last_error);
	pthread_mutex_unlock(&m->lock);
	return failed;
}

int bw_feeds_refresh(struct bw_feeds *m, const char *name, char *err, size_t errlen)
{
	struct feed *f = find(m, name);
	if (!f || !f->src) {
		snprintf(err, errlen, f ? "feed %s is a file feed" : "no feed named %s", name);
		return BW_ENOENT;
	}
	pthread_mutex_lock(&m->lock);
	f->refresh_now = true;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	snprintf(err, errlen, "feed %s: refresh scheduled", name);
	return 0;
}

int bw_feeds_set_source(struct bw_feeds *m, const char *name, const struct bw_feed_src_ops *src)
{
	struct feed *f = find(m, name);
	if (!f || !f->src || m->started)
		return BW_EINVAL;
	f->src = src;
	return 0;
}

int bw_feeds_poll(struct bw_feeds *m, const char *name)
{
	struct feed *f = find(m, name);
	if (!f || !f->src || m->started)
		return BW_EINVAL;
	bool ok = run_feed(m, f);
	f->failures = ok ? 0 : f->failures + 1;
	if (ok && !f->held)
		f->last_error[0] = 0;
	return ok ? 0 : BW_EIO;
}

static json_t *time_str(int64_t t)
{
	char buf[40];
	struct tm tm;
	time_t tt = (time_t)t;
	if (!t || !gmtime_r(&tt, &tm))
		return json_string("never");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* What a person should know of a feed's rules that its state does not say. */
static const char *feed_notes(const struct bw_feed_status *st, char *buf, size_t cap)
{
	if (!st || !st->ns_rules)
		return "-";
	snprintf(buf, cap, "%zu NSDNAME/NSIP rules loaded, not enforced", st->ns_rules);
	return buf;
}

/* A local file feed's row: its state in the live policy (policy.h struct bw_feed_status):
 * "file" when its last load was applied, "failed", "held back" or "changing". */
static void file_row(json_t *rows, const struct bw_feed_conf *fc, const char *src,
		     const char *format, const struct bw_feed_status *st)
{
	char ver[60] = "-", held[120] = "-";
	if (st->file_mtime_ns) {
		struct tm tm;
		time_t tt = (time_t)(st->file_mtime_ns / 1000000000ULL);
		if (gmtime_r(&tt, &tm))
			strftime(ver, sizeof(ver), "modified %Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (st->held_back)
		snprintf(held, sizeof(held), "%zu entries (file)", st->held_entries);
	const char *state = st->load_error ? "failed"
			    : st->held_back ? "held back"
			    : st->changing  ? "changing"
					    : "file";
	char notes[160];
	json_array_append_new(rows, json_pack("[s,s,s,s,I,s,s,s,s,s,s]", fc->name, src, format, ver,
					      (json_int_t)st->entries, "-",
					      st->error[0] ? st->error : "-", "watched", held,
					      state, feed_notes(st, notes, sizeof(notes))));
}

json_t *bw_feeds_status(struct bw_feeds *m)
{
	json_t *rows = json_array();
	json_t *t = json_pack("{s:[s,s,s,s,s,s,s,s,s,s,s], s:o}", "columns", "name", "source",
			      "format", "version", "entries", "last-success", "last-error",
			      "next-refresh", "held-back", "state", "notes", "rows", rows);
	static const char *const formats[] = {"domains", "hosts", "wildcard", "adblock",
					      "rpz",     "stix",  "misp"};
	if (!t)
		return NULL;
	/* local files: as the live policy has them (taken before the lock: the server's lock
	 * may be held by a rebuild for a while) */
	struct bw_feed_status *fst = calloc(m->n + 1, sizeof(*fst));
	bool *have = calloc(m->n + 1, sizeof(*have));
	for (size_t i = 0; fst && have && i < m->n; i++)
		have[i] = m->hooks.live_status &&
			  m->hooks.live_status(m->hooks.ctx, m->feeds[i].index, &fst[i]) == 0;
	uint64_t now = bw_now_ms();
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		struct feed *f = &m->feeds[i];
		const struct bw_feed_conf *fc = f->fc;
		char src[600], ver[300], next[40], held[120], state[40];
		if (!f->src) {
			snprintf(src, sizeof(src), "file %s", fc->file);
			if (!have || !have[i]) {
				json_array_append_new(rows, json_pack("[s,s,s,s,s,s,s,s,s,s,s]",
					fc->name, src, formats[fc->format], "-", "-", "-", "-",
					"watched", "-", "file", "-"));
				continue;
			}
			file_row(rows, fc, src, formats[fc->format], &fst[i]);
			continue;
		}
		if (fc->source == BW_FEED_SRC_TAXII)
			snprintf(src, sizeof(src), "taxii %s collection %s", fc->url,
				 fc->taxii_collection);
		else if (fc->source == BW_FEED_SRC_XFR)
			snprintf(src, sizeof(src), "zone %s from %zu primar%s%s", fc->zone,
				 fc->n_primaries, fc->n_primaries == 1 ? "y" : "ies",
				 fc->tsig_name ? ", TSIG" : "");
		else
			snprintf(src, sizeof(src), "%s", fc->url);
		if (f->last.has_serial)
			snprintf(ver, sizeof(ver), "serial %u", f->last.serial);
		else if (f->last.cursor[0])
			snprintf(ver, sizeof(ver), "cursor %s", f->last.cursor);
		else if (f->last.etag[0])
			snprintf(ver, sizeof(ver), "etag %s", f->last.etag);
		else if (f->last.last_modified[0])
			snprintf(ver, sizeof(ver), "modified %s", f->last.last_modified);
		else
			snprintf(ver, sizeof(ver), "-");
		if (f->next_ms == UINT64_MAX || f->refresh_now)
			snprintf(next, sizeof(next), "now");
		else
			snprintf(next, sizeof(next), "in %llus",
				 (unsigned long long)((f->next_ms > now ? f->next_ms - now : 0) + 999) /
				     1000);
		if (f->held) {
			char when[40] = "?";
			struct tm tm;
			time_t tt = (time_t)f->held->meta.fetched_at;
			if (gmtime_r(&tt, &tm))
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			snprintf(held, sizeof(held), "%llu entries (fetched %s)",
				 (unsigned long long)f->held->meta.entries, when);
		} else
			snprintf(held, sizeof(held), "-");
		snprintf(state, sizeof(state), "%s",
			 !f->have_last ? "no copy yet"
			 : (m->off_mask >> f->index) & 1 ? "expired, stopped"
			 : f->expired ? "expired, keeps blocking"
			 : f->held ? "held back"
			 : f->rejected ? "failed"
			 : f->failures ? "failing"
			 : "ok");
		int64_t success = f->last.checked_at > f->last.fetched_at ? f->last.checked_at
									  : f->last.fetched_at;
		char notes[160];
		json_t *row = json_pack("[s,s,s,s,I,o,s,s,s,s,s]", fc->name, src, formats[fc->format],
					ver, (json_int_t)(f->have_last ? f->last.entries : 0),
					time_str(success), f->last_error[0] ? f->last_error : "-",
					next, held, state,
					feed_notes(have && have[i] ? &fst[i] : NULL, notes,
						   sizeof(notes)));
		json_array_append_new(rows, row);
	}
	pthread_mutex_unlock(&m->lock);
	free(fst);
	free(have);
	return t;
}

json_t *bw_feeds_command(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	struct bw_feeds *m = ctx;

	if (argc == 1 || (argc == 2 && !strcmp(argv[1], "status")))
		return bw_feeds_status(m);
	if (argc == 3 && (!strcmp(argv[1], "accept") || !strcmp(argv[1], "refresh"))) {
		int rc = argv[1][0] == 'a' ? bw_feeds_accept(m, argv[2], err, errlen)
					   : bw_feeds_refresh(m, argv[2], err, errlen);
		if (rc)
			return NULL;
		return json_pack("{s:s}", "message", err);
	}
	snprintf(err, errlen, "usage: feeds [status] | feeds accept NAME | feeds refresh NAME");
	return NULL;
}
