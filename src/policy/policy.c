/*
 * policy/policy.c - the compiled policy snapshot: build from feeds, match, status.
 *
 * Layout (see docs/internals/snapshot.md): every distinct name is stored once, as a
 * lower-cased wire name, in one flat byte arena. Two open-addressing hash tables (linear
 * probing, power-of-two size, load at most 5/8) hold 12-byte slots {32-bit hash, arena
 * offset, feed index, wire length}: one for blocked names, one for the allowlist. A
 * match hashes the query name and each of its parent suffixes straight from the wire
 * bytes (a suffix of a wire name is a wire name) and probes both tables; it allocates
 * nothing and takes no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "dns/dns.h"
#include "policy/policy.h"

#define WIRE_MAX 255
#define TABLE_MIN 1024u
#define MAX_FEEDS 65535u

struct slot {
	uint32_t hash; /* low 32 bits of bw_hash(); the table index is hash & mask */
	uint32_t off;  /* offset of the wire name in the arena */
	uint16_t feed; /* lowest feed index that lists the name (0 in the allowlist) */
	uint16_t len;  /* wire length; 0 marks an empty slot */
};

struct table {
	struct slot *slots;
	uint32_t mask;
	size_t count;
};

struct bw_policy {
	uint64_t generation;
	uint64_t seed;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	struct table blocked, allow;
	struct bw_feed_status *feeds;
	size_t n_feeds;
};

/* ---- tables ---- */

static int table_init(struct table *t, size_t cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return BW_ENOMEM;
	t->mask = (uint32_t)(cap - 1);
	t->count = 0;
	return 0;
}

static const struct slot *table_find(const struct bw_policy *p, const struct table *t,
				     const uint8_t *name, size_t len, uint32_t h)
{
	uint32_t i = h & t->mask;

	for (;;) {
		const struct slot *s = &t->slots[i];
		if (s->len == 0)
			return NULL;
		if (s->hash == h && s->len == len && memcmp(p->arena + s->off, name, len) == 0)
			return s;
		i = (i + 1) & t->mask;
	}
}

static int table_grow(struct table *t)
{
	size_t cap = (size_t)t->mask + 1;
	struct slot *old = t->slots;

	if (cap >= (1ULL << 31))
		return BW_ENOMEM;
	struct slot *slots = calloc(cap * 2, sizeof(*slots));
	if (!slots)
		return BW_ENOMEM;
	uint32_t mask = (uint32_t)(cap * 2 - 1);
	for (size_t j = 0; j < cap; j++) {
		if (old[j].len == 0)
			continue;
		uint32_t i = old[j].hash & mask;
		while (slots[i].len != 0)
			i = (i + 1) & mask;
		slots[i] = old[j];
	}
	free(old);
	t->slots = slots;
	t->mask = mask;
	return 0;
}

static int arena_put(struct bw_policy *p, const uint8_t *name, size_t len, uint32_t *off)
{
	if (p->arena_len + len > p->arena_cap) {
		size_t cap = p->arena_cap ? p->arena_cap * 2 : 1 << 16;
		if (cap > UINT32_MAX)
			cap = UINT32_MAX;
		if (p->arena_len + len > cap)
			return BW_ENOMEM; /* offsets are 32 bits: 4 GiB of names at most */
		uint8_t *a = realloc(p->arena, cap);
		if (!a)
			return BW_ENOMEM;
		p->arena = a;
		p->arena_cap = cap;
	}
	*off = (uint32_t)p->arena_len;
	memcpy(p->arena + p->arena_len, name, len);
	p->arena_len += len;
	return 0;
}

/* Inserts name for feed unless already present (the earlier, lower feed keeps it).
 * *added tells whether it was new. */
static int table_insert(struct bw_policy *p, struct table *t, const uint8_t *name, size_t len,
			uint16_t feed, bool *added)
{
	uint32_t h = (uint32_t)bw_hash(name, len, p->seed);
	int err;

	*added = false;
	if (table_find(p, t, name, len, h))
		return 0;
	if ((t->count + 1) * 8 > ((size_t)t->mask + 1) * 5) {
		err = table_grow(t);
		if (err)
			return err;
	}
	uint32_t off;
	err = arena_put(p, name, len, &off);
	if (err)
		return err;
	uint32_t i = h & t->mask;
	while (t->slots[i].len != 0)
		i = (i + 1) & t->mask;
	t->slots[i] = (struct slot){.hash = h, .off = off, .feed = feed, .len = (uint16_t)len};
	t->count++;
	*added = true;
	return 0;
}

/* ---- build ---- */

struct build_ctx {
	struct bw_policy *p;
	uint16_t feed;
	size_t added;
	int err;
};

static void add_name(const uint8_t *name, size_t len, void *arg)
{
	struct build_ctx *c = arg;
	bool added;

	if (c->err)
		return;
	c->err = table_insert(c->p, &c->p->blocked, name, len, c->feed, &added);
	if (added)
		c->added++;
}

/* Re-inserts every name prev attributed to its feed `from`, as feed c->feed. */
static void copy_previous(struct build_ctx *c, const struct bw_policy *prev, uint16_t from)
{
	const struct table *t = &prev->blocked;

	for (size_t i = 0; i <= t->mask && !c->err; i++) {
		const struct slot *s = &t->slots[i];
		if (s->len != 0 && s->feed == from)
			add_name(prev->arena + s->off, s->len, c);
	}
}

static int find_prev_feed(const struct bw_policy *prev, const char *name)
{
	if (!prev)
		return -1;
	for (size_t i = 0; i < prev->n_feeds; i++) {
		if (strcmp(prev->feeds[i].name, name) == 0)
			return (int)i;
	}
	return -1;
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

static int load_feed(struct bw_policy *p, const struct bw_feed_conf *fc, uint16_t idx,
		     const struct bw_policy *prev)
{
	struct bw_feed_status *fs = &p->feeds[idx];
	struct build_ctx c = {.p = p, .feed = idx};
	uint64_t t0 = bw_now_ns();
	char *buf = NULL;
	size_t len = 0;

	fs->name = dup_str(fc->name);
	fs->category = dup_str(fc->category);
	if (!fs->name || !fs->category)
		return BW_ENOMEM;
	int err = fc->file
		      ? bw_feed_read_file(fc->file, &buf, &len, &fs->file_mtime_ns, &fs->file_size)
		      : BW_ENOENT;
	int sys_errno = errno;
	if (err == BW_ENOMEM)
		return err;
	if (err) {
		fs->load_error = err;
		int j = find_prev_feed(prev, fs->name);
		if (j >= 0) {
			copy_previous(&c, prev, (uint16_t)j);
			fs->kept_previous = true;
		}
		bw_err(
		    "feed %s: cannot read %s: %s; %s", fs->name, fc->file ? fc->file : "(no file)",
		    err == BW_EIO ? strerror(sys_errno) : bw_strerror(err),
		    j >= 0 ? "keeping the previous version" : "no previous version, feed is empty");
	} else {
		struct bw_feed_stats st;
		bw_feed_parse_stats(buf, len, fc->format, fc->file, add_name, &c, &st);
		free(buf);
		fs->bad_lines = st.bad_lines;
		fs->skipped = st.skipped;
	}
	if (c.err)
		return c.err;
	fs->entries = c.added;
	bw_info("feed %s (%s): %zu names, %zu bad lines, %.2fs", fs->name, fs->category,
		fs->entries, fs->bad_lines, (double)(bw_now_ns() - t0) / 1e9);
	return 0;
}

int bw_policy_build(const struct bw_conf *conf, const struct bw_policy *prev, uint64_t generation,
		    struct bw_policy **out)
{
	struct bw_policy *p = NULL;
	int err = BW_ENOMEM;

	*out = NULL;
	if (!conf || conf->policy.n_feeds > MAX_FEEDS)
		return BW_EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return BW_ENOMEM;
	p->generation = generation;
	p->seed = make_seed(generation);
	p->n_feeds = conf->policy.n_feeds;
	if (p->n_feeds) {
		p->feeds = calloc(p->n_feeds, sizeof(*p->feeds));
		if (!p->feeds)
			goto fail;
	}
	if (table_init(&p->blocked, TABLE_MIN) || table_init(&p->allow, 16))
		goto fail;

	for (size_t i = 0; i < conf->policy.n_allowlist; i++) {
		const char *s = conf->policy.allowlist[i], *reason;
		uint8_t wire[WIRE_MAX];
		bool added;

		if (!s)
			continue;
		size_t wlen = bw_feed_name_to_wire(s, strlen(s), wire, &reason);
		if (wlen == 0) {
			bw_warn("allowlist: \"%s\": %s", s, reason);
			continue;
		}
		err = table_insert(p, &p->allow, wire, wlen, 0, &added);
		if (err)
			goto fail;
	}
	for (size_t i = 0; i < p->n_feeds; i++) {
		err = load_feed(p, &conf->policy.feeds[i], (uint16_t)i, prev);
		if (err)
			goto fail;
	}
	if (p->arena_cap > p->arena_len && p->arena_len > 0) {
		uint8_t *a = realloc(p->arena, p->arena_len);
		if (a) {
			p->arena = a;
			p->arena_cap = p->arena_len;
		}
	}
	*out = p;
	return 0;
fail:
	bw_policy_free(p);
	return err ? err : BW_ENOMEM;
}

void bw_policy_free(struct bw_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->feeds && i < p->n_feeds; i++) {
		free(p->feeds[i].name);
		free(p->feeds[i].category);
	}
	free(p->feeds);
	free(p->blocked.slots);
	free(p->allow.slots);
	free(p->arena);
	free(p);
}

/* ---- match (hot path) ---- */

bool bw_policy_match(const struct bw_policy *p, const uint8_t *name_lc, size_t len,
		     struct bw_verdict *v)
{
	uint32_t hash[WIRE_MAX / 2];
	uint8_t start[WIRE_MAX / 2];
	size_t n = 0, pos = 0;
	int best = -1;

	*v = (struct bw_verdict){.action = BW_ACT_ALLOW, .ede = BW_EDE_NONE, .feed = -1};
	if (!p || !name_lc || len == 0 || len > WIRE_MAX)
		return false;
	bool check_allow = p->allow.count > 0;

	/* Hash the name itself and each parent down to the TLD (never the root), and start
	 * loading their slots so that the cache misses overlap. A label that would run past
	 * len ends the walk: a malformed name matches less, never reads out of bounds. */
	while (pos < len && name_lc[pos] != 0 && pos + 1u + name_lc[pos] < len) {
		uint32_t h = (uint32_t)bw_hash(name_lc + pos, len - pos, p->seed);
		hash[n] = h;
		start[n++] = (uint8_t)pos;
		__builtin_prefetch(&p->blocked.slots[h & p->blocked.mask]);
		if (check_allow)
			__builtin_prefetch(&p->allow.slots[h & p->allow.mask]);
		pos += 1u + name_lc[pos];
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *suffix = name_lc + start[i];
		size_t slen = len - start[i];

		if (check_allow && table_find(p, &p->allow, suffix, slen, hash[i])) {
			v->allowlisted = true;
			return false;
		}
		if (best != 0) {
			const struct slot *s = table_find(p, &p->blocked, suffix, slen, hash[i]);
			if (s && (best < 0 || s->feed < best))
				best = s->feed; /* ties keep the more specific name */
			if (best == 0 && !check_allow)
				break;
		}
	}
	if (best < 0)
		return false;
	v->action = BW_ACT_NXDOMAIN;
	v->ede = BW_EDE_BLOCKED;
	v->feed = best;
	v->feed_name = p->feeds[best].name;
	v->category = p->feeds[best].category;
	return true;
}

/* ---- accessors ---- */

uint64_t bw_policy_generation(const struct bw_policy *p)
{
	return p ? p->generation : 0;
}

size_t bw_policy_entries(const struct bw_policy *p)
{
	return p ? p->blocked.count : 0;
}

size_t bw_policy_feed_count(const struct bw_policy *p)
{
	return p ? p->n_feeds : 0;
}

size_t bw_policy_memory(const struct bw_policy *p)
{
	if (!p)
		return 0;
	size_t n = sizeof(*p) + p->arena_cap + p->n_feeds * sizeof(*p->feeds);
	n += ((size_t)p->blocked.mask + 1) * sizeof(struct slot);
	n += ((size_t)p->allow.mask + 1) * sizeof(struct slot);
	for (size_t i = 0; i < p->n_feeds; i++)
		n += strlen(p->feeds[i].name) + strlen(p->feeds[i].category) + 2;
	return n;
}

const struct bw_feed_status *bw_policy_feed_status(const struct bw_policy *p, size_t i)
{
	if (!p || i >= p->n_feeds)
		return NULL;
	return &p->feeds[i];
}

bool bw_policy_files_changed(const struct bw_policy *p, const struct bw_conf *conf)
{
	if (!p || !conf)
		return false;
	if (conf->policy.n_feeds != p->n_feeds)
		return true;
	for (size_t i = 0; i < p->n_feeds; i++) {
		const struct bw_feed_conf *fc = &conf->policy.feeds[i];
		const struct bw_feed_status *fs = &p->feeds[i];
		struct stat sb;

		if (strcmp(fs->name, fc->name ? fc->name : "") != 0)
			return true;
		if (!fc->file || stat(fc->file, &sb) < 0) {
			if (fs->load_error == 0)
				return true; /* it was readable and is gone */
			continue;
		}
		if (fs->load_error != 0)
			return true; /* it failed and is back */
		uint64_t mtime =
		    (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
		if (mtime != fs->file_mtime_ns || (uint64_t)sb.st_size != fs->file_size)
			return true;
	}
	return false;
}
