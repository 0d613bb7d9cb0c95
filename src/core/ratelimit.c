/*
 * core/ratelimit.c - token buckets keyed by who asks (an address prefix, or a prefix and
 * an answer for response-rate limiting), shared by the workers.
 *
 * Memory is fixed when the table is made: `size` slots of 16 bytes in 64 shards, each
 * with its own lock, held for a few loads and stores. A key probes 4 slots of its shard;
 * a new key takes an empty one, else one that is not being limited, with the most tokens
 * left, quiet longest: spoofed random sources push out each other, never a flooder that
 * is spending its burst or held back, and never grow the table. Keys are hashed with a random SipHash key (base.h), so nobody can aim many
 * prefixes at one shard. Tokens are kept in thousandths so that rates below one a second
 * and bursts work without floating point.
 */
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

#define SHARDS 64
#define PROBES 4

/* rl_slot.key: the hash's top 46 bits, then the second of its last refusal (16 bits,
 * wrapping), whether it is in a limited episode, and whether the slot is used. An episode
 * ends when the bucket is full again and the last refusal is 10 s old: a flooder that
 * pauses now and then is one episode, said once. */
#define KEY_USED 1u
#define KEY_LIMITED 2u
#define KEY_SEC_SHIFT 2
#define KEY_SEC_MASK ((uint64_t)0xffff << KEY_SEC_SHIFT)
#define KEY_HASH_MASK (~(uint64_t)0 << 18)
#define EPISODE_QUIET_S 10

struct rl_slot {
	uint64_t key;     /* hash of the key with KEY_USED (and KEY_LIMITED), 0: empty */
	uint32_t last_ms; /* when tokens were last counted (ms since the table was made) */
	int32_t tokens;   /* in thousandths */
};

struct rl_shard {
	pthread_mutex_t lock;
	struct rl_slot *slots;
} __attribute__((aligned(64)));

struct bw_ratelimit {
	struct bw_hash_key hkey;
	uint64_t t0_ns;
	size_t mask; /* slots per shard - 1 */
	struct rl_shard shards[SHARDS];
};

int bw_ratelimit_new(size_t size, struct bw_ratelimit **out)
{
	*out = NULL;
	size_t per = 16;
	while (per * SHARDS < size)
		per *= 2;
	struct bw_ratelimit *r = calloc(1, sizeof(*r));
	if (!r)
		return BW_ENOMEM;
	bw_hash_key_random(&r->hkey);
	r->t0_ns = bw_now_ns();
	r->mask = per - 1;
	for (size_t i = 0; i < SHARDS; i++) {
		pthread_mutex_init(&r->shards[i].lock, NULL);
		if (!(r->shards[i].slots = calloc(per, sizeof(struct rl_slot)))) {
			bw_ratelimit_free(r);
			return BW_ENOMEM;
		}
	}
	*out = r;
	return 0;
}

void bw_ratelimit_free(struct bw_ratelimit *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		free(r->shards[i].slots);
		pthread_mutex_destroy(&r->shards[i].lock);
	}
	free(r);
}

size_t bw_ratelimit_bytes(const struct bw_ratelimit *r)
{
	return r ? sizeof(*r) + SHARDS * (r->mask + 1) * sizeof(struct rl_slot) : 0;
}

/* Whether slot a is a better one to give away than b: empty first, then one that is not
 * limited, then the one with more tokens left (a full bucket loses nothing when its key
 * comes back: one-off sources, spoofed or not, push out each other, never a flooder
 * that is spending its burst or being held back; keys arrive many to the millisecond, so
 * age alone ties), then the one quiet longest. */
static bool better_victim(const struct rl_slot *a, const struct rl_slot *b, uint32_t now_ms)
{
	if (!a->key || !b->key)
		return !a->key && b->key;
	bool la = a->key & KEY_LIMITED, lb = b->key & KEY_LIMITED;
	if (la != lb)
		return lb;
	if (a->tokens != b->tokens)
		return a->tokens > b->tokens;
	return (uint32_t)(now_ms - a->last_ms) > (uint32_t)(now_ms - b->last_ms);
}

/* The slot for h in shard s: its own, else the best of the probed ones to give away
 * (reset: a key seen for the first time has a full bucket). */
static struct rl_slot *slot_for(struct bw_ratelimit *r, struct rl_shard *s, uint64_t h,
				uint32_t now_ms, int32_t full, bool *fresh)
{
	struct rl_slot *victim = NULL;
	for (size_t k = 0; k < PROBES; k++) {
		struct rl_slot *sl = &s->slots[(h + k) & r->mask];
		if ((sl->key & KEY_HASH_MASK) == (h & KEY_HASH_MASK) && sl->key) {
			*fresh = false;
			return sl;
		}
		if (!victim || better_victim(sl, victim, now_ms))
			victim = sl;
	}
	*fresh = true;
	*victim = (struct rl_slot){.key = h, .last_ms = now_ms, .tokens = full};
	return victim;
}

enum bw_rl_verdict bw_ratelimit_take(struct bw_ratelimit *r, const void *key, size_t len,
				     unsigned rate, unsigned burst)
{
	uint64_t h = (bw_hash_keyed(key, len, &r->hkey) & KEY_HASH_MASK) | KEY_USED;
	uint32_t now_ms = (uint32_t)((bw_now_ns() - r->t0_ns) / 1000000u);
	int64_t full = (int64_t)BW_MAX(burst, 1u) * 1000;
	if (full > INT32_MAX)
		full = INT32_MAX;
	struct rl_shard *s = &r->shards[h >> 58];
	pthread_mutex_lock(&s->lock);
	bool fresh;
	struct rl_slot *sl = slot_for(r, s, h, now_ms, (int32_t)full, &fresh);
	int64_t t = sl->tokens;
	if (!fresh) {
		/* a thousandth of a token per millisecond per query a second */
		uint64_t add = (uint64_t)(uint32_t)(now_ms - sl->last_ms) * rate;
		t = add >= (uint64_t)full ? full : BW_MIN(full, t + (int64_t)add);
	}
	sl->last_ms = now_ms;
	uint16_t now_s = (uint16_t)(now_ms / 1000);
	uint16_t refused_s = (uint16_t)((sl->key & KEY_SEC_MASK) >> KEY_SEC_SHIFT);
	if (t >= full && (uint16_t)(now_s - refused_s) >= EPISODE_QUIET_S)
		sl->key &= ~(uint64_t)KEY_LIMITED; /* quiet long enough: a later refusal is news */
	enum bw_rl_verdict v = BW_RL_PASS;
	if (t >= 1000) {
		t -= 1000;
	} else {
		v = sl->key & KEY_LIMITED ? BW_RL_LIMITED : BW_RL_LIMITED_FIRST;
		sl->key = (sl->key & ~KEY_SEC_MASK) | KEY_LIMITED |
			  ((uint64_t)now_s << KEY_SEC_SHIFT);
	}
	sl->tokens = (int32_t)t;
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* ---- the in-flight share: per worker, how many of its resolver slots each client holds ---- */

/* 32 bytes; an open-addressing table with twice as many slots as the worker has query
 * contexts, so it never fills (each context counts in one slot at most). */
struct share_slot {
	uint64_t hash; /* 0: empty */
	uint32_t count;
	uint8_t len;
	uint8_t key[17];
};

int bw_share_init(struct bw_share *s, unsigned max_items)
{
	size_t cap = 16;
	while (cap < 2 * (size_t)max_items)
		cap *= 2;
	if (!(s->slots = calloc(cap, sizeof(*s->slots))))
		return BW_ENOMEM;
	s->mask = cap - 1;
	bw_hash_key_random(&s->hkey);
	return 0;
}

void bw_share_free(struct bw_share *s)
{
	free(s->slots);
	s->slots = NULL;
}

static struct share_slot *share_find(struct bw_share *s, const uint8_t *key, size_t len,
				     uint64_t h)
{
	for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
		struct share_slot *sl = &s->slots[i];
		if (!sl->hash || (sl->hash == h && sl->len == len && !memcmp(sl->key, key, len)))
			return sl;
	}
}

bool bw_share_take(struct bw_share *s, const uint8_t *key, size_t len, unsigned limit)
{
	uint64_t h = bw_hash_keyed(key, len, &s->hkey) | 1;
	struct share_slot *sl = share_find(s, key, len, h);
	if (sl->hash && sl->count >= limit)
		return false;
	if (!sl->hash) {
		sl->hash = h;
		sl->len = (uint8_t)len;
		memcpy(sl->key, key, len);
		sl->count = 0;
	}
	sl->count++;
	return true;
}

void bw_share_put(struct bw_share *s, const uint8_t *key, size_t len)
{
	uint64_t h = bw_hash_keyed(key, len, &s->hkey) | 1;
	struct share_slot *sl = share_find(s, key, len, h);
	if (!sl->hash || --sl->count)
		return;
	/* empty now: remove it, shifting back the entries that probed past it (linear
	 * probing's deletion without tombstones) */
	size_t i = (size_t)(sl - s->slots);
	for (size_t j = (i + 1) & s->mask; s->slots[j].hash; j = (j + 1) & s->mask) {
		size_t home = s->slots[j].hash & s->mask;
		/* j may move to i when its home is not within (i, j] (cyclically) */
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].hash = 0;
}
