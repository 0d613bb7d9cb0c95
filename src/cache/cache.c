/*
 * cache/cache.c - the shared packet cache: sharded hash index, CLOCK eviction, byte budget.
 *
 * Layout: the cache is an array of shards (a power of two), each cache-line aligned with
 * its own mutex, a fixed bucket array (chaining through the entries, never resized), an
 * LRU-ordered ring of entries and its own counters. The low bits of the key hash pick the
 * shard, the high bits the bucket inside it, so the two never correlate.
 *
 * An entry is one malloc: the fixed part below, then the TTL offsets (nttl of them), the
 * lower-cased qname, the body and the EDE text (without NUL). The answer meta is stored
 * compactly (its head and only the used TTL offsets) and rebuilt on the stack on a hit:
 * a copy of 20 + 2 * nttl bytes, far cheaper than the cache misses the full 292-byte
 * struct would cost in every entry. See docs/internals/cache.md.
 */
#include "cache/cache.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

#define DEFAULT_SHARDS 64
#define MAX_SHARDS 4096
#define AUTO_SHARD_MIN (64 * 1024) /* auto mode: no shard smaller than this */
#define ENTRY_ESTIMATE 512         /* bytes per entry assumed when sizing buckets */
#define MIN_BUCKETS 16
#define STALE_TTL 30               /* TTL of answers served stale (RFC 8767) */
#define CHAIN_MAX 16               /* entries per bucket: a store into a full one evicts
				      the bucket's oldest, so a lookup compares at most this */

#define META_HEAD offsetof(struct bw_answer_meta, ttl_off)

struct link {
	struct link *prev, *next;
};

struct entry {
	struct link lru;       /* first member: a struct link * is a struct entry * */
	struct entry *hnext;   /* bucket chain */
	uint64_t hash;
	uint64_t generation;
	uint32_t inserted;     /* bw_now_sec() at store */
	uint32_t expiry;       /* inserted + clamped TTL */
	uint32_t stale_until;  /* expiry + stale_ttl: removed when found past this */
	uint32_t size;         /* bytes accounted to the shard */
	uint16_t qtype, qclass, profile;
	uint8_t qname_len;     /* 1..255 */
	uint8_t flags;         /* BW_CACHE_DO | BW_CACHE_CD */
	uint8_t ref;           /* CLOCK reference bit, set on hit */
	uint8_t nttl;          /* <= BW_ANSWER_MAXTTL */
	uint8_t ede_text_len;
	uint8_t meta_head[META_HEAD]; /* struct bw_answer_meta up to ttl_off */
	uint16_t ttl_off[];    /* nttl entries, then qname_lc, body, ede_text */
};

struct shard {
	alignas(64) pthread_mutex_t lock;
	struct entry **buckets;
	unsigned bucket_shift; /* bucket = hash >> bucket_shift */
	struct link lru;       /* next = most recent, prev = oldest (the CLOCK hand) */
	uint64_t budget;       /* bytes for entries */
	uint64_t bytes, entries, evictions, stores;
	uint64_t chain_evictions; /* of those evictions, the ones a full bucket made */
};

struct bw_cache {
	struct shard *shards;
	unsigned nshards;
	uint32_t min_ttl, max_ttl, max_neg_ttl, stale_ttl;
};

/* The names are the client's to choose: a keyed hash under a key drawn at start, so that
 * nobody can compute names that share a bucket (docs/internals/cache.md, "Hash flooding").
 * One key for the process: every cache's keys are hashed alike. */
static struct bw_hash_key key_secret;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_init(void)
{
	bw_hash_key_random(&key_secret);
}

void bw_cache_key_hash(struct bw_cache_key *k)
{
	uint64_t h = bw_hash_keyed(k->qname_lc, k->qname_len, &key_secret);
	h = bw_hash_mix(h ^ ((uint64_t)k->qtype << 48 | (uint64_t)k->qclass << 32 |
			     (uint64_t)k->flags << 16 | k->profile));
	h = bw_hash_mix(h + k->generation * 0x9e3779b97f4a7c15ULL);
	k->hash = h;
}

static inline const uint8_t *entry_qname(const struct entry *e)
{
	return (const uint8_t *)(e->ttl_off + e->nttl);
}

static inline const uint8_t *entry_body(const struct entry *e)
{
	return entry_qname(e) + e->qname_len;
}

static inline uint16_t entry_body_len(const struct entry *e)
{
	uint16_t len;
	memcpy(&len, e->meta_head + offsetof(struct bw_answer_meta, body_len), sizeof(len));
	return len;
}

static inline struct shard *shard_of(struct bw_cache *c, uint64_t hash)
{
	return &c->shards[hash & (c->nshards - 1)];
}

static inline struct entry **bucket_of(struct shard *s, uint64_t hash)
{
	return &s->buckets[hash >> s->bucket_shift];
}

static inline bool key_equal(const struct entry *e, const struct bw_cache_key *k)
{
	return e->hash == k->hash && e->qname_len == k->qname_len && e->qtype == k->qtype &&
	       e->qclass == k->qclass && e->flags == k->flags && e->profile == k->profile &&
	       e->generation == k->generation &&
	       memcmp(entry_qname(e), k->qname_lc, k->qname_len) == 0;
}

static struct entry *find(struct shard *s, const struct bw_cache_key *k)
{
	for (struct entry *e = *bucket_of(s, k->hash); e; e = e->hnext)
		if (key_equal(e, k))
			return e;
	return NULL;
}

static inline void lru_unlink(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

static inline void lru_push_front(struct link *head, struct link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

/* Takes e out of the index and the LRU ring; the caller frees it (outside the lock). */
static void unlink_entry(struct shard *s, struct entry *e)
{
	struct entry **pp = bucket_of(s, e->hash);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(&e->lru);
	s->bytes -= e->size;
	s->entries--;
}

static void free_chain(struct entry *e)
{
	while (e) {
		struct entry *next = e->hnext;
		free(e);
		e = next;
	}
}

/* Rebuilds the struct bw_answer_meta that bw_answer_write() reads. */
static inline void meta_load(struct bw_answer_meta *m, const struct entry *e)
{
	memcpy(m, e->meta_head, META_HEAD);
	memcpy(m->ttl_off, e->ttl_off, (size_t)e->nttl * sizeof(e->ttl_off[0]));
	memcpy(m->ede_text, entry_body(e) + entry_body_len(e), e->ede_text_len);
	m->ede_text[e->ede_text_len] = '\0';
}

static unsigned round_pow2(uint64_t v, unsigned max)
{
	unsigned n = 1;
	while (n < v && n < max)
		n <<= 1;
	return n;
}

struct bw_cache *bw_cache_create(const struct bw_cache_config *cfg)
{
	pthread_once(&key_once, key_init);
	struct bw_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->min_ttl = cfg->min_ttl;
	c->max_ttl = cfg->max_ttl;
	c->max_neg_ttl = cfg->max_neg_ttl;
	c->stale_ttl = cfg->stale_ttl;

	if (cfg->shards) {
		c->nshards = round_pow2(cfg->shards, MAX_SHARDS);
	} else {
		c->nshards = DEFAULT_SHARDS;
		while (c->nshards > 1 && cfg->size / c->nshards < AUTO_SHARD_MIN)
			c->nshards >>= 1;
	}
	/* aligned_alloc wants a size that is a multiple of the alignment: sizeof is */
	c->shards = aligned_alloc(alignof(struct shard), c->nshards * sizeof(struct shard));
	if (!c->shards)
		goto fail_cache;
	memset(c->shards, 0, c->nshards * sizeof(struct shard));

	uint64_t per_shard = cfg->size / c->nshards;
	unsigned nbuckets = MIN_BUCKETS, shift = 64 - 4;
	uint64_t want = cfg->buckets ? cfg->buckets : per_shard / ENTRY_ESTIMATE;
	while (nbuckets < want && nbuckets < (1u << 30)) {
		nbuckets <<= 1;
		shift--;
	}
	uint64_t bucket_bytes = (uint64_t)nbuckets * sizeof(struct entry *);

	unsigned i;
	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		s->buckets = calloc(nbuckets, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail_shards;
		if (pthread_mutex_init(&s->lock, NULL) != 0) {
			free(s->buckets);
			goto fail_shards;
		}
		s->bucket_shift = shift;
		s->lru.next = s->lru.prev = &s->lru;
		/* the bucket array is bookkeeping too: it comes out of the budget */
		s->budget = per_shard > bucket_bytes ? per_shard - bucket_bytes : 0;
	}
	return c;

fail_shards:
	while (i-- > 0) {
		pthread_mutex_destroy(&c->shards[i].lock);
		free(c->shards[i].buckets);
	}
	free(c->shards);
fail_cache:
	free(c);
	return NULL;
}

static struct entry *shard_take_all(struct shard *s)
{
	struct entry *list = NULL;
	struct link *l = s->lru.next;
	while (l != &s->lru) {
		struct entry *e = (struct entry *)l;
		l = l->next;
		e->hnext = list;
		list = e;
	}
	s->lru.next = s->lru.prev = &s->lru;
	memset(s->buckets, 0, ((size_t)1 << (64 - s->bucket_shift)) * sizeof(*s->buckets));
	s->bytes = 0;
	s->entries = 0;
	return list;
}

void bw_cache_clear(struct bw_cache *c)
{
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		struct entry *list = shard_take_all(s);
		pthread_mutex_unlock(&s->lock);
		free_chain(list);
	}
}

void bw_cache_destroy(struct bw_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		free_chain(shard_take_all(s));
		pthread_mutex_destroy(&s->lock);
		free(s->buckets);
	}
	free(c->shards);
	free(c);
}

static inline uint32_t sat_add(uint32_t a, uint32_t b)
{
	return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

int bw_cache_lookup(struct bw_cache *c, const struct bw_cache_key *k, const struct bw_query *q,
		    uint32_t now, bool stale, size_t limit, uint8_t *out, size_t cap)
{
	return bw_cache_lookup_ede(c, k, q, now, stale, limit, out, cap, NULL);
}

int bw_cache_lookup_ede(struct bw_cache *c, const struct bw_cache_key *k, const struct bw_query *q,
			uint32_t now, bool stale, size_t limit, uint8_t *out, size_t cap,
			uint16_t *ede)
{
	struct shard *s = shard_of(c, k->hash);
	struct bw_answer_meta m;
	struct entry *dead = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, k);
	if (!e) {
		rc = BW_ENOENT;
	} else if (BW_LIKELY(now < e->expiry)) {
		if (!e->ref)
			e->ref = 1; /* no store when already set: keeps the line clean */
		uint32_t age = now > e->inserted ? now - e->inserted : 0;
		meta_load(&m, e);
		if (ede)
			*ede = m.ede;
		rc = bw_answer_write(q, &m, entry_body(e), age, 0, limit, out, cap);
	} else if (now < e->stale_until) {
		if (stale) {
			meta_load(&m, e);
			m.ede = BW_EDE_STALE_ANSWER;
			m.ede_text[0] = '\0';
			rc = bw_answer_write(q, &m, entry_body(e), 0, STALE_TTL, limit, out, cap);
		} else {
			rc = BW_ESTALE;
		}
	} else {
		unlink_entry(s, e);
		dead = e;
		rc = BW_ENOENT;
	}
	pthread_mutex_unlock(&s->lock);
	free(dead);
	return rc;
}

static bool is_negative(const struct bw_answer_meta *meta)
{
	return meta->rcode == BW_RCODE_NXDOMAIN ||
	       (meta->rcode == BW_RCODE_NOERROR && meta->ancount == 0);
}

static int check_meta(const struct bw_answer_meta *meta)
{
	if (meta->rcode != BW_RCODE_NOERROR && meta->rcode != BW_RCODE_NXDOMAIN)
		return BW_EINVAL;
	if (meta->ttl == 0 || meta->nttl > BW_ANSWER_MAXTTL)
		return BW_EINVAL;
	for (unsigned i = 0; i < meta->nttl; i++)
		if (meta->ttl_off[i] > meta->body_len || meta->body_len - meta->ttl_off[i] < 4)
			return BW_EINVAL;
	return 0;
}

/* Makes room for `need` bytes: CLOCK second chance from the oldest end. Victims are
 * chained on *victims for the caller to free outside the lock. */
static void make_room(struct shard *s, uint64_t need, uint32_t now, struct entry **victims)
{
	while (s->bytes + need > s->budget && s->lru.prev != &s->lru) {
		struct entry *e = (struct entry *)s->lru.prev;
		if (e->ref && now < e->stale_until) {
			e->ref = 0;
			lru_unlink(&e->lru);
			lru_push_front(&s->lru, &e->lru);
			continue;
		}
		unlink_entry(s, e);
		s->evictions++;
		e->hnext = *victims;
		*victims = e;
	}
}

/* Keeps a bucket under CHAIN_MAX entries before one more goes in: entries go in at the
 * head, so the last one is the bucket's oldest. Under a random key this almost never
 * happens (the mean chain is about 2); it bounds what a lucky set of names can cost. */
static void chain_trim(struct shard *s, struct entry **b, struct entry **victims)
{
	unsigned n = 0;
	struct entry *last = NULL;
	for (struct entry *e = *b; e; e = e->hnext) {
		n++;
		last = e;
	}
	if (n < CHAIN_MAX)
		return;
	unlink_entry(s, last);
	s->evictions++;
	s->chain_evictions++;
	last->hnext = *victims;
	*victims = last;
}

int bw_cache_store(struct bw_cache *c, const struct bw_cache_key *k,
		   const struct bw_answer_meta *meta, const uint8_t *body, uint32_t now)
{
	int rc = check_meta(meta);
	if (rc)
		return rc;
	if (k->qname_len == 0 || k->qname_len > BW_DNS_MAXNAME)
		return BW_EINVAL;

	uint32_t ttl = BW_MAX(meta->ttl, c->min_ttl);
	ttl = BW_MIN(ttl, is_negative(meta) ? c->max_neg_ttl : c->max_ttl);
	if (ttl == 0)
		return BW_EINVAL;

	size_t text_len = strnlen(meta->ede_text, sizeof(meta->ede_text) - 1);
	size_t size = sizeof(struct entry) + (size_t)meta->nttl * sizeof(uint16_t) +
		      k->qname_len + meta->body_len + text_len;
	struct shard *s = shard_of(c, k->hash);
	if (size > s->budget)
		return BW_ESPACE;

	struct entry *e = malloc(size);
	if (!e)
		return BW_ENOMEM;
	e->hash = k->hash;
	e->generation = k->generation;
	e->inserted = now;
	e->expiry = sat_add(now, ttl);
	e->stale_until = sat_add(e->expiry, c->stale_ttl);
	e->size = (uint32_t)size;
	e->qtype = k->qtype;
	e->qclass = k->qclass;
	e->profile = k->profile;
	e->qname_len = (uint8_t)k->qname_len;
	e->flags = k->flags;
	e->ref = 0;
	e->nttl = (uint8_t)meta->nttl;
	e->ede_text_len = (uint8_t)text_len;
	memcpy(e->meta_head, meta, META_HEAD);
	memcpy(e->ttl_off, meta->ttl_off, (size_t)meta->nttl * sizeof(uint16_t));
	uint8_t *p = (uint8_t *)(e->ttl_off + e->nttl);
	memcpy(p, k->qname_lc, k->qname_len);
	p += k->qname_len;
	if (meta->body_len)
		memcpy(p, body, meta->body_len);
	p += meta->body_len;
	memcpy(p, meta->ede_text, text_len);

	struct entry *victims = NULL;
	pthread_mutex_lock(&s->lock);
	struct entry *old = find(s, k);
	if (old) {
		unlink_entry(s, old);
		old->hnext = victims;
		victims = old;
	}
	make_room(s, size, now, &victims);
	struct entry **b = bucket_of(s, e->hash);
	chain_trim(s, b, &victims);
	e->hnext = *b;
	*b = e;
	lru_push_front(&s->lru, &e->lru);
	s->bytes += size;
	s->entries++;
	s->stores++;
	pthread_mutex_unlock(&s->lock);
	free_chain(victims);
	return 0;
}

void bw_cache_stats(struct bw_cache *c, struct bw_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		out->entries += s->entries;
		out->bytes += s->bytes;
		out->evictions += s->evictions;
		out->stores += s->stores;
		out->chain_evictions += s->chain_evictions;
		pthread_mutex_unlock(&s->lock);
	}
}
