/*
 * policy/snapshot.h - the inside of a policy snapshot, shared by the files of the module:
 * rset.c (rule sets: tables, adding rules, reading them back), policy.c (snapshots made and
 * freed, accessors), build.c (a snapshot from the config), delta.c (overlays, compaction),
 * match.c (the hot path) and export.c. Not a public header: everything else goes through
 * policy.h. The layout is described in docs/internals/snapshot.md.
 *
 * A snapshot (struct bw_policy) is a reference to an immutable, reference-counted base
 * (struct core: names, tables, feed and profile definitions) plus an optional overlay (a
 * small struct rset of its own) that incremental changes write into. Both are read-only
 * once the snapshot is returned; any number of threads may match at once. The functions
 * below that write (rule sets, adders, new snapshots) are for the one thread building a
 * snapshot.
 */
#ifndef BW_POLICY_SNAPSHOT_H
#define BW_POLICY_SNAPSHOT_H

#include <stdatomic.h>

#include "policy/decisions.h"
#include "policy/policy.h"
#include "policy/rules.h"

#define MAX_FEEDS 64	 /* a profile is a 64-bit mask of feeds */
#define MAX_PROFILES 255 /* the allowlist table's owner byte: 0 global, k + 1 profile k */
#define WIRE_MAX 255
#define IPKEY_MAX 19 /* {trigger, family, prefix, address (4 or 16)} */
#define DEFAULT_TTL 300 /* a feed's TTL when none of its rules gave one */

/* A slot's action byte: bits 0-2 an enum bw_action (0: no rule of this kind), bit 3: the
 * rule carries data kept in the extras table (records, target, or a TTL of its own). */
#define ACT_MASK 0x07u
#define ACT_EXTRA 0x08u

/* One (key, feed): 12 bytes. In the name tables `a` is the exact rule (QNAME, NSDNAME) and
 * `b` the wildcard rule ("*.key"); in the IP table only `a` is used; in the allowlist table
 * `feed` is the owner (0 global, k + 1 profile k). len == 0 marks an empty slot. In an
 * overlay, a slot whose a and b are both 0 is a tombstone: it hides the base's slot. */
struct slot {
	uint32_t hash; /* low 32 bits of bw_hash(key, len, seed); index = hash & mask */
	uint32_t off;  /* key bytes in the rset's arena (shared by every slot of that key) */
	uint8_t len;
	uint8_t feed;
	uint8_t a, b;
};

struct table {
	struct slot *slots;
	uint32_t mask;
	size_t count;
};

/* Data of one rule that needs more than an action: keyed by (key offset, feed, kind). */
struct extra {
	uint64_t key; /* EXTRA_USED | off | feed << 32 | kind << 40; 0 = empty */
	uint32_t ttl;
	uint32_t data_off; /* LOCAL_DATA records, packed as struct bw_verdict says, in data */
	uint32_t data_len;
	uint32_t target_off; /* REDIRECT target (wire) in data */
	uint16_t n_rrs;
	uint8_t target_len;
	uint8_t target_wild;
};
#define EXTRA_USED (1ULL << 63)

struct xtable {
	struct extra *v;
	uint32_t mask;
	size_t count;
};

enum { TAB_QNAME = 0, TAB_NSD, TAB_IP, TAB_ALLOW, N_TAB };
enum { IPT_CLIENT = 0, IPT_RESP, IPT_NSIP, N_IPT };

/* A set of rules: the base's, or an overlay's. */
struct rset {
	uint8_t *arena; /* keys: lower-cased wire names, or IP keys */
	size_t arena_len, arena_cap;
	uint8_t *data; /* extras' records and targets */
	size_t data_len, data_cap;
	struct table tab[N_TAB];
	struct xtable x;
	uint64_t plens[N_IPT][2][3]; /* prefix lengths in use: [trigger][v4, v6] bits 0..128 */
	bool has_root[2];	     /* the root name is a key of TAB_QNAME / TAB_NSD */
};

/* What the config says about a feed, fixed for the life of a base. */
struct feedinfo {
	char *name, *category;
	enum bw_feed_action override;
	uint32_t ttl; /* TTL of the feed's rules unless a rule has its own */
	uint8_t redirect_data[2 * 8 + 4 + 16]; /* REDIRECT override: packed A and/or AAAA */
	uint16_t redirect_n;
	uint16_t redirect_len;
	uint8_t redirect_target[WIRE_MAX]; /* REDIRECT override to a name */
	uint8_t redirect_target_len;
};

struct core {
	atomic_uint refs;
	uint64_t seed;
	struct rset rs;
	struct feedinfo *feeds;
	size_t n_feeds;
	char **profile_names;
	size_t n_profiles;
	bool has_global_allow;
	bool *has_profile_allow; /* [n_profiles] */
};

struct profile {
	const char *name; /* owned by the core */
	uint64_t mask;	  /* enabled feeds */
	int min_feed;	  /* lowest enabled feed, or MAX_FEEDS: a hit from it ends a walk */
	int first_post;	  /* bw_policy_first_post_feed() */
	bool has_allow;	  /* the global or its own allowlist has names */
	bool has_client;  /* an enabled feed has CLIENT-IP rules */
};

struct bw_policy {
	uint64_t generation;
	struct core *base;
	struct rset *ov; /* overlay of incremental changes, or NULL */
	size_t n_feeds;
	struct bw_feed_status *status; /* name and category point into base->feeds */
	uint8_t *feed_trig;	       /* per feed: bit (1 << enum bw_trigger) when present */
	struct profile *profiles;
	unsigned n_profiles;
	unsigned default_profile;
	size_t entries; /* distinct keys (names and networks) with a live rule */
	struct bw_decisions *local; /* local decisions in force (a reference), or NULL */
};

/* Finds the next slot holding key after *i (start with *i = hash & mask). */
static inline const struct slot *slot_next(const struct rset *rs, const struct table *t,
					   uint32_t *i, uint32_t h, const uint8_t *key, size_t len)
{
	for (;;) {
		const struct slot *s = &t->slots[*i];
		if (s->len == 0)
			return NULL;
		*i = (*i + 1) & t->mask;
		if (s->hash == h && s->len == len && memcmp(rs->arena + s->off, key, len) == 0)
			return s;
	}
}

static inline uint64_t extra_key(uint32_t off, unsigned feed, unsigned kind)
{
	return EXTRA_USED | off | (uint64_t)feed << 32 | (uint64_t)kind << 40;
}

const struct extra *bw_snap_extra(const struct rset *rs, uint64_t key);
/* Builds the IP key of (trigger, family, address, prefix) in out; returns its length or 0. */
size_t bw_snap_ipkey(uint8_t *out, enum bw_trigger trig, int family, const uint8_t *addr,
		     unsigned prefix);

/* Rules read back out of a snapshot (rset.c), for export.c: every rule in effect (base
 * minus what the overlay hides, then the overlay) of one feed (-1: all), or those of one
 * slot of rs (the base's or the overlay's). The rule is valid during the call only. */
typedef int (*bw_snap_rule_fn)(void *ctx, unsigned feed, const struct bw_rule *r);
int bw_snap_each_rule(const struct bw_policy *p, int feed, bw_snap_rule_fn fn, void *ctx);
int bw_snap_slot_rules(const struct bw_policy *p, const struct rset *rs, int tab,
		       const struct slot *s, bw_snap_rule_fn fn, void *ctx);

/* ---- rule sets (rset.c) ---- */

/* caps: initial slot counts per table (NULL: the minimum). */
int bw_rset_init(struct rset *rs, const size_t *caps);
void bw_rset_free(struct rset *rs); /* what rs holds, not rs */
int bw_rset_clone(struct rset *dst, const struct rset *src);
size_t bw_rset_memory(const struct rset *rs);
/* Gives back the arenas' unused capacity (a rule set that is done growing). */
void bw_rset_shrink(struct rset *rs);
/* Distinct keys of the rule tables (each key's bytes are stored once per table). */
int bw_rset_count_keys(const struct rset *rs, size_t *out);
/* Calls fn for each rule stored in slot s of table tab of rs (dttl: the feed's TTL); tmp
 * lends its record buffer (free tmp->rrs after). */
struct adder;
int bw_rset_slot_rules(struct adder *tmp, const struct rset *rs, int tab, const struct slot *s,
		       uint32_t dttl, bw_snap_rule_fn fn, void *ctx);
/* Where a rule lives: its table, key and field (0: exact / IP, 1: wildcard). Returns the
 * key length, 0 when the rule cannot be stored. */
size_t bw_snap_rule_key(const struct bw_rule *r, uint8_t *key, int *tab, int *field);

/* Adds rules of one feed at a time to one rule set. */
struct adder {
	struct rset *rs;
	uint64_t seed;
	unsigned feed;
	struct feedinfo *fi; /* the feeds' TTLs; the first rule of a feed sets its TTL unless
				ttl_set */
	bool ttl_set;
	uint8_t *trig;		 /* per feed: triggers seen (or NULL) */
	size_t slots[MAX_FEEDS]; /* (key, feed) slots created, per feed */
	size_t new_keys;	 /* distinct rule keys created (allowlist excluded) */
	size_t rejected;	 /* rules the snapshot cannot hold (bad net, no data) */
	size_t ns_rules[MAX_FEEDS]; /* NSDNAME/NSIP rules stored, per feed: not enforced */
	/* the last key looked up: list formats emit QNAME and WILDCARD for the same name */
	int last_tab;
	unsigned last_feed;
	uint32_t last_idx;
	uint8_t last_len;
	uint8_t last_key[WIRE_MAX];
	/* records unpacked for re-adding a LOCAL_DATA rule */
	struct bw_rule_rr *rrs;
	size_t rrs_cap;
};

static inline uint8_t *field_of(struct slot *s, int field)
{
	return field ? &s->b : &s->a;
}

void bw_adder_init(struct adder *ad, struct rset *rs, uint64_t seed, struct feedinfo *fi);
/* Finds the slot of (key, ad->feed) in table tab, or creates it (when `create`) with no
 * rule. Returns 0 and *idx, BW_ENOENT (not there, !create) or an error. */
int bw_adder_find(struct adder *ad, int tab, const uint8_t *key, size_t len, bool create,
		  uint32_t *idx);
/* Adds one rule for feed ad->feed: 0, BW_SINK_CONFLICT or an error. */
int bw_adder_add(struct adder *ad, const struct bw_rule *r);
/* bw_adder_add() as a bw_rule_sink (ctx: the adder), for the parsers. */
int bw_adder_sink(void *ctx, const struct bw_rule *r);
/* bw_adder_add() as a bw_snap_rule_fn (ctx: the adder): the rule goes to ad->feed, whatever
 * feed it was read from. */
int bw_adder_copy(void *ctx, unsigned feed, const struct bw_rule *r);
/* Drops every rule of feed f from the rule tables (a feed found broken after some rules). */
int bw_adder_drop_feed(struct adder *ad, uint8_t *trig, unsigned f);

/* ---- snapshots (policy.c) ---- */

/* A core with n_feeds feeds and n_profiles profiles (names and strings not filled). */
struct core *bw_snap_core_new(size_t n_feeds, size_t n_profiles, uint64_t seed,
			      const size_t *caps);
/* A snapshot on core c (the reference is taken over, even on failure). NULL: no memory. */
struct bw_policy *bw_snap_new(struct core *c, uint64_t generation);
/* Fills the profiles' derived fields from their masks and the feeds' triggers. */
void bw_snap_profiles_update(struct bw_policy *p);

#endif
