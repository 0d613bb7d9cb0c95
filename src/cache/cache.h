/*
 * cache/cache.h - the shared packet cache: finished wire answers keyed on the question.
 *
 * Owns: all entries (malloc'd on store, freed on eviction/expiry/destroy).
 * Shared by all workers; sharded by key hash, one mutex per shard, bounded in bytes
 * (the configured size is split evenly over the shards; a store that would exceed a
 * shard's budget evicts least-recently-used entries first). A hit takes the shard lock,
 * writes the response straight into the caller's buffer with bw_answer_write() (ID,
 * original case, aged TTLs), and releases the lock: no malloc, no global lock.
 *
 * Key: lower-cased qname, qtype, qclass, the DO and CD bits, profile and the policy
 * generation - never the ID, cookies or padding.
 *
 * Expired entries stay (until `stale_ttl` seconds past expiry, or evicted) so that an
 * answer can be served stale (RFC 8767) when the resolver fails.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef BW_CACHE_H
#define BW_CACHE_H

#include <string.h>

#include "base/base.h"
#include "dns/dns.h"

struct bw_cache;

struct bw_cache_key {
	const uint8_t *qname_lc;
	uint16_t qname_len;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t flags;      /* BW_CACHE_DO | BW_CACHE_CD | BW_CACHE_AD */
	uint16_t profile;
	uint64_t generation; /* policy generation */
	uint64_t hash;      /* filled by bw_cache_key_hash() */
};
/* Whether a and b name the same cache entry (the hash compared first, as a shortcut;
 * cache.c's key_equal() matches an entry against a key the same way). */
static inline bool bw_cache_key_same(const struct bw_cache_key *a, const struct bw_cache_key *b)
{
	return a->hash == b->hash && a->qname_len == b->qname_len && a->qtype == b->qtype &&
	       a->qclass == b->qclass && a->flags == b->flags && a->profile == b->profile &&
	       a->generation == b->generation && !memcmp(a->qname_lc, b->qname_lc, a->qname_len);
}
#define BW_CACHE_DO 1
#define BW_CACHE_CD 2
#define BW_CACHE_AD 4 /* the query set AD (RFC 6840: the answer's AD bit depends on it) */

/* Fills k->hash: SipHash-1-3 of the name under a random key drawn when the first cache
 * is created (clients choose the names; see bw_hash_keyed()), mixed with the other
 * fields. Call after bw_cache_create(). */
void bw_cache_key_hash(struct bw_cache_key *k);

struct bw_cache_config {
	uint64_t size;        /* bytes, entries and their bookkeeping included */
	unsigned shards;      /* 0 = auto (64) */
	unsigned buckets;     /* per shard, rounded up to a power of two; 0 = sized from size
				 (one per 512 bytes: tests set it to make chains long) */
	uint32_t min_ttl, max_ttl, max_neg_ttl, stale_ttl;
};

/* Returns NULL on out-of-memory. */
struct bw_cache *bw_cache_create(const struct bw_cache_config *cfg);
void bw_cache_destroy(struct bw_cache *c);

/*
 * Looks up k. On a fresh hit writes the response to q into out (see bw_answer_write,
 * `limit` is the client's size limit) and returns its length (> 0).
 * Returns BW_ENOENT on a miss, BW_ESTALE when the entry exists but expired (nothing
 * written) - unless `stale` is true, then an expired entry within the stale window is
 * written with TTL 30 and EDE 3 (Stale Answer) and its length returned.
 * `now` is bw_now_sec().
 */
int bw_cache_lookup(struct bw_cache *c, const struct bw_cache_key *k, const struct bw_query *q,
		    uint32_t now, bool stale, size_t limit, uint8_t *out, size_t cap);

/* The same; on a fresh hit also sets *ede to the entry's EDE code (BW_EDE_NONE for none),
 * which tells a cached policy answer (EDE 15-17) from a resolved one (telemetry). */
int bw_cache_lookup_ede(struct bw_cache *c, const struct bw_cache_key *k, const struct bw_query *q,
			uint32_t now, bool stale, size_t limit, uint8_t *out, size_t cap,
			uint16_t *ede);

/* Stores (meta, body) under k, replacing an older entry. The entry lives
 * clamp(meta->ttl, min_ttl, max_ttl) seconds (max_neg_ttl for NXDOMAIN/NODATA).
 * Answers with rcode other than NOERROR/NXDOMAIN, with TTL 0 after clamping, or with more
 * TTL fields than BW_ANSWER_MAXTTL are not stored (returns BW_EINVAL). An entry larger
 * than a shard's byte budget is not stored (BW_ESPACE); BW_ENOMEM if malloc fails. */
int bw_cache_store(struct bw_cache *c, const struct bw_cache_key *k,
		   const struct bw_answer_meta *meta, const uint8_t *body, uint32_t now);

struct bw_cache_stats {
	uint64_t entries, bytes, evictions, stores;
	uint64_t chain_evictions; /* evictions made by a full bucket (CHAIN_MAX): a steady
				     count means someone is trying to flood one bucket */
};
void bw_cache_stats(struct bw_cache *c, struct bw_cache_stats *out);
/* Drops every entry (used by tests and on explicit flush). */
void bw_cache_clear(struct bw_cache *c);

#endif
