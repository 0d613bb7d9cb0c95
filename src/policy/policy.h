/*
 * policy/policy.h - blocking policy: feeds compiled into one immutable snapshot, and the
 * match that decides a name's verdict.
 *
 * Owns: struct bw_policy (a compiled snapshot: a flat arena of lower-cased wire names,
 * an open-addressing table of (name, feed) slots holding the exact and wildcard actions,
 * an "extras" array for rules that carry data (local data, redirect targets), tables for
 * IP triggers keyed on (trigger, family, prefix, masked address), the allowlists and the
 * profiles; see docs/internals/snapshot.md). A snapshot made by bw_policy_apply_delta()
 * shares its base (reference-counted) and adds one overlay.
 * Borrows: the config while building; the feed parsers (rules.h) produce the rules.
 *
 * Semantics: RPZ (draft-vixie-dnsop-dns-rpz), for every feed format - see rules.h and the
 * precedence rules below. The allowlists win over every feed (an allowlisted name allows
 * itself and its subdomains). At most 64 feeds and 255 profiles.
 *
 * Thread safety: a built snapshot is immutable; bw_policy_match() may run on any number of
 * threads at once. Building runs on one thread (the reloader) beside the live snapshot.
 */
#ifndef BW_POLICY_H
#define BW_POLICY_H

#include <sys/socket.h>

#include "base/base.h"
#include "conf/conf.h"
#include "dns/dns.h"

enum bw_action {
	BW_ACT_ALLOW = 0, /* not listed, or allowlisted */
	BW_ACT_NXDOMAIN,
	BW_ACT_NODATA,
	BW_ACT_DROP,
	BW_ACT_TCP_ONLY,
	BW_ACT_LOCAL_DATA,
	BW_ACT_REDIRECT,
	BW_ACT_PASSTHRU,
};

/* The outcome of a match. Pointers point into the snapshot: valid while it is held. */
struct bw_verdict {
	enum bw_action action;
	uint16_t ede;          /* EDE code for blocked answers (15 Blocked), or 0xffff */
	int feed;              /* index of the feed whose rule won, -1 if none */
	const char *feed_name;
	const char *category;
	bool allowlisted;      /* an allowlist matched (action is ALLOW) */
	bool local;            /* a local decision (decisions.h) decided: an allow (allowlisted
				  set) or a block (NXDOMAIN, feed -1, feed_name "local") */
	bool log_only;         /* the feed is on trial (action log-only): answer normally */
	uint8_t trigger;       /* enum bw_trigger (rules.h) of the winning rule */
	const uint8_t *match;  /* the name (or ancestor, for wildcards) that matched; points
				  into the caller's name; NULL for address verdicts */
	size_t match_len;
	uint32_t ttl;          /* TTL for synthesized records */
	/* BW_ACT_LOCAL_DATA: n_rrs records packed as {type u16, ttl u32, rdlen u16, rdata}
	 * (network byte order) in data[0..data_len) */
	const uint8_t *data;
	size_t data_len;
	uint16_t n_rrs;
	/* BW_ACT_REDIRECT: CNAME target (wire, lower-cased); target_wildcard: the answer is
	 * <query name>.<target> */
	const uint8_t *target;
	size_t target_len;
	bool target_wildcard;
};

/* Per-feed load report, kept in the snapshot. */
struct bw_feed_status {
	char *name;
	char *category;
	size_t entries;     /* distinct names/networks this feed has rules for */
	size_t bad_lines;   /* lines the parser could not use */
	size_t skipped;     /* entries ignored on purpose (see struct bw_parse_report) */
	size_t ns_rules;    /* NSDNAME/NSIP rules among them: loaded, never matched (see
			       BW_POLICY_NS_UNENFORCED) */
	int load_error;     /* 0, or BW_E* if the file could not be read (previous version kept) */
	bool kept_previous; /* true when this feed's entries come from the previous snapshot */
	uint64_t file_mtime_ns; /* mtime of the file when loaded, for change detection */
	uint64_t file_size;
	/* Local files (docs/feeds.md, "Feed health"): a failed load has load_error
	 * BW_EMALFORMED; a version that shrank below min-ratio is held back (its rules left
	 * out, the previous ones kept) until accepted; a file that changed while it was read
	 * is read again at the next look. In each case `error` says why. */
	bool held_back;
	bool changing;
	size_t held_entries;     /* the held-back version's entries */
	size_t accepted_entries; /* entries of the last version applied (the shrink check's
				    reference) */
	char error[300];         /* why the feed failed, is held back or changing; "" if ok */
};

struct bw_policy;

/*
 * Builds a new snapshot from the config's feeds and allowlist. `prev` (may be NULL) is
 * the live snapshot: a feed whose file cannot be read keeps the entries it had in prev
 * (matched by feed name) and says so in its status. Unusable lines are counted and the
 * first few are logged as "file:line: reason"; they never abort the load.
 * `generation` is stored and returned by bw_policy_generation() (used in cache keys).
 * Returns 0 and *out, or BW_ENOMEM (BW_EINVAL for a NULL conf or more than 64 feeds).
 */
int bw_policy_build(const struct bw_conf *conf, const struct bw_policy *prev, uint64_t generation,
		    struct bw_policy **out);
/* The same, leaving out the feeds whose bit (1 << index) is set in skip: they have no rules
 * (feeds/ stops an expired feed this way, when-expired: stop). */
int bw_policy_build_skip(const struct bw_conf *conf, const struct bw_policy *prev,
			 uint64_t generation, uint64_t skip, struct bw_policy **out);
/* The same; the local file feeds whose bit is set in accept are applied even when they
 * shrank below min-ratio (the operator's `bulwarkctl feeds accept`). */
int bw_policy_build_ex(const struct bw_conf *conf, const struct bw_policy *prev,
		       uint64_t generation, uint64_t skip, uint64_t accept, struct bw_policy **out);
void bw_policy_free(struct bw_policy *p);

/* Matches a lower-cased wire name (as bw_query.qname_lc) against profile 0 - not the
 * default profile: the daemon uses bw_policy_match_qname() (QNAME and
 * wildcard triggers, allowlists first). Always fills v; returns true when a rule matched
 * (v->action != BW_ACT_ALLOW, PASSTHRU included). */
bool bw_policy_match(const struct bw_policy *p, const uint8_t *name_lc, size_t len,
		     struct bw_verdict *v);

/* ---- rule engine (RPZ semantics; see rules.h and docs/internals/snapshot.md) ----
 * Precedence: feeds in configured order, the first feed with a matching rule wins; within
 * a feed CLIENT-IP, then QNAME (an exact name before wildcards, the most specific wildcard
 * first), then RESPONSE-IP, then NSDNAME, then NSIP. PASSTHRU is a winning rule that
 * allows. The global allowlist and the profile's allowlist win over every feed for names.
 * A profile enables a subset of the feeds; every match takes the profile index. */
unsigned bw_policy_profile_count(const struct bw_policy *p);
const char *bw_policy_profile_name(const struct bw_policy *p, unsigned profile);
/* Does the profile apply feed (index in policy.feeds)? */
bool bw_policy_profile_has_feed(const struct bw_policy *p, unsigned profile, unsigned feed);
/* The profile for a query: the listener's if it names one, else the first profile whose
 * clients contain the address, else the default. */
unsigned bw_policy_select_profile(const struct bw_policy *p, const struct bw_conf *conf,
				  int listener, const struct sockaddr *client);

bool bw_policy_match_qname(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			   size_t len, struct bw_verdict *v);
/* CLIENT-IP triggers. bw_policy_has_client_rules() is false when the profile has none, so
 * the caller can skip the lookup (and keep answering from the cache first). */
bool bw_policy_has_client_rules(const struct bw_policy *p, unsigned profile);
bool bw_policy_match_client(const struct bw_policy *p, unsigned profile,
			    const struct sockaddr *client, struct bw_verdict *v);
/* RESPONSE-IP (an A/AAAA in the answer) and NSIP triggers: addr is 4 or 16 bytes. */
bool bw_policy_match_ip(const struct bw_policy *p, unsigned profile, int family,
			const uint8_t *addr, struct bw_verdict *v);
bool bw_policy_match_nsip(const struct bw_policy *p, unsigned profile, int family,
			  const uint8_t *addr, struct bw_verdict *v);
bool bw_policy_match_nsdname(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			     size_t len, struct bw_verdict *v);
/* The lowest feed index (in the profile) that has RESPONSE-IP, NSDNAME or NSIP rules, or
 * INT_MAX: a QNAME verdict from a later feed must wait for the answer, since an earlier
 * feed's IP rule would win over it. */
int bw_policy_first_post_feed(const struct bw_policy *p, unsigned profile);

/* ---- decisions (decide.c): the rule engine as the pipeline applies it to a query, in its
 * order; `bulwark explain` calls the same, so explain says what the answer does ---- */
/* Before the cache: does a CLIENT-IP rule decide for this client? (The allowlists, and a
 * QNAME rule of an earlier feed, come first: then it does not.) Fills v when true. */
bool bw_policy_decide_client(const struct bw_policy *p, unsigned profile,
			     const struct sockaddr *client, const uint8_t *name_lc, size_t len,
			     struct bw_verdict *v);
/* After a cache miss: what the QNAME and wildcard rules say. Always fills v. */
enum bw_decision {
	BW_DECIDE_NONE,        /* no rule: the guard, then resolve and check the answer */
	BW_DECIDE_ALLOWLISTED, /* resolve; no rule applies, not even to the answer */
	BW_DECIDE_PASSTHRU,    /* a PASSTHRU rule won: the same */
	BW_DECIDE_REDIRECT,    /* answer with a CNAME to v's target (and resolve that) */
	BW_DECIDE_DEFER,       /* v applies unless an earlier feed's rule matches the answer */
	BW_DECIDE_RULE,        /* v decides now (blocks, or log-only / TCP-only / ALLOW) */
};
enum bw_decision bw_policy_decide_qname(const struct bw_policy *p, unsigned profile,
					const uint8_t *name_lc, size_t len, struct bw_verdict *v);
/* After resolution: the query name when its verdict was deferred, every other name of the
 * answer's CNAME chain, every A/AAAA address of (m, body) (both may be NULL). The lowest
 * feed wins; in one feed a name before an address. True when a rule matched. */
/* What a verdict matched, when it was not the query name itself: typed, so that the
 * EDE, telemetry, dnstap and explain read fields and never parse text. */
enum bw_match_kind {
	BW_MATCH_QNAME = 0, /* the query name (or an ancestor, for wildcards): v->match */
	BW_MATCH_CNAME,     /* a name of the answer's CNAME chain: name */
	BW_MATCH_ADDRESS,   /* an A/AAAA address of the answer: family, addr */
	BW_MATCH_CLIENT,    /* the client's address (CLIENT-IP) */
	BW_MATCH_GUARD,     /* the look-alike guard or the newly-seen memory: text */
};
struct bw_match {
	enum bw_match_kind kind;
	const uint8_t *name; /* BW_MATCH_CNAME (and QNAME when deferred): wire, lower case */
	size_t name_len;
	int family;          /* BW_MATCH_ADDRESS: AF_INET or AF_INET6 */
	uint8_t addr[16];
	const char *text;    /* BW_MATCH_GUARD: "imitates x (kind)", "newly seen" */
};
/* The match as people read it: "", "CNAME x.example.", "address 192.0.2.1", "client
 * address", or the guard's text. Returns buf. */
const char *bw_match_text(const struct bw_match *m, char *buf, size_t cap);

struct bw_answer_decision {
	bool have;
	struct bw_match via; /* QNAME (the query name, deferred), CNAME or ADDRESS */
	struct bw_verdict v;
};
bool bw_policy_decide_answer(const struct bw_policy *p, unsigned profile, const uint8_t *name_lc,
			     size_t len, bool deferred, const struct bw_chain *chain,
			     const struct bw_answer_meta *m, const uint8_t *body,
			     struct bw_answer_decision *d);
/* The EDE EXTRA-TEXT of a policy answer: "blocked by FEED (CATEGORY)", then " via WHAT"
 * when what matched was not the query name itself (via may be NULL). */
void bw_verdict_ede_text(const struct bw_verdict *v, const struct bw_match *via, char *buf,
			 size_t cap);
/* Why NSDNAME and NSIP rules are loaded but never match (said by explain, bulwarkctl feeds
 * and the start-up log). */
#define BW_POLICY_NS_UNENFORCED                                                                   \
	"Bulwark resolves through libunbound, which does not show the policy the name servers "  \
	"of a delegation"

/*
 * Incremental path (IXFR, small list updates): a new snapshot equal to `base` with one
 * feed's rules changed: `adds` added, `removes` removed (matched on trigger + name/net).
 * Does not rebuild the base: the changes go into an overlay consulted before the base
 * (which is shared, reference-counted); bw_policy_compact() later folds overlays into a
 * fresh base off the query path. Returns 0 and *out.
 */
struct bw_rule;
int bw_policy_apply_delta(const struct bw_policy *base, unsigned feed, const struct bw_rule *adds,
			  size_t n_adds, const struct bw_rule *removes, size_t n_removes,
			  uint64_t generation, struct bw_policy **out);
int bw_policy_compact(const struct bw_policy *p, uint64_t generation, struct bw_policy **out);

/* Local decisions (policy/decisions.h): a third layer of the snapshot over base and
 * overlay, shared by reference. bw_policy_set_decisions() puts d (NULL: none) into a
 * snapshot that is not published yet (a fresh build); bw_policy_with_decisions() makes a
 * new snapshot sharing p's base (its overlay copied) with d in force: no rebuild, the cost
 * of a delta. Deltas and compaction carry the decisions over. Returns 0 or BW_ENOMEM. */
struct bw_decisions;
struct bw_local_decision;
void bw_policy_set_decisions(struct bw_policy *p, struct bw_decisions *d);
int bw_policy_with_decisions(const struct bw_policy *p, struct bw_decisions *d,
			     uint64_t generation, struct bw_policy **out);
/* The decision that covers name_lc (the most specific), or NULL: for explain. */
const struct bw_local_decision *bw_policy_decision(const struct bw_policy *p, const uint8_t *name_lc,
					     size_t len);

/* Does the overlay (the changes bw_policy_apply_delta() made since the last full build)
 * hold a QNAME or wildcard rule, of any feed, added or removed, for name or one of its
 * ancestors? False for a full build. A packet-cache answer for such a name may predate the
 * change; everything else is as the full build said (see docs/internals/snapshot.md). */
bool bw_policy_overlay_touches(const struct bw_policy *p, const uint8_t *name_lc, size_t len);
bool bw_policy_has_overlay(const struct bw_policy *p);
/* Keys (names, networks) the overlay holds: what compaction would fold (0: none). */
size_t bw_policy_overlay_keys(const struct bw_policy *p);
/* Does the overlay change address triggers (response IP, client IP, NSIP) or NSDNAME? */
bool bw_policy_overlay_has_addr_rules(const struct bw_policy *p);
uint64_t bw_policy_generation(const struct bw_policy *p);
size_t bw_policy_entries(const struct bw_policy *p);       /* distinct blocked names */
size_t bw_policy_feed_count(const struct bw_policy *p);
size_t bw_policy_memory(const struct bw_policy *p); /* bytes held (a delta snapshot: with its base) */
const struct bw_feed_status *bw_policy_feed_status(const struct bw_policy *p, size_t i);

/*
 * Has any local feed file (`file:`) changed (mtime or size) since p was built, or a feed
 * that failed become readable? A fetched feed's file is its last good copy, which only the
 * feed manager writes and publishes: never a change here. Cheap: one stat() per feed.
 * Used by the file watcher.
 */
bool bw_policy_files_changed(const struct bw_policy *p, const struct bw_conf *conf);

/* Loads one feed file into a callback, for tools and tests: calls add(name_lc, len, ctx)
 * for every usable name; returns the number of bad lines, or a negative BW_E* if the file
 * cannot be read. `label` prefixes "label:line: reason" messages (first 5 logged). */
typedef void (*bw_feed_add_fn)(const uint8_t *name_lc, size_t len, void *ctx);
long bw_feed_parse_file(const char *path, enum bw_feed_format format, bw_feed_add_fn add,
			void *ctx);
/* Same, over a buffer (used by the fuzz target). */
long bw_feed_parse_buf(const char *buf, size_t len, enum bw_feed_format format, const char *label,
		       bw_feed_add_fn add, void *ctx);

/* ---- export (export.c): a feed's rules in effect back to RPZ text ----
 * bw_policy_export_feed() writes feed `feed`'s rules in effect (base + overlay, i.e. after
 * deltas) as an RPZ zone below `origin` (an SOA with `serial` first), which the RPZ parser
 * reads back into the same rules: the last-good copy of an IXFR-fed feed, rewritten from
 * the live snapshot. Feeds of other formats export the same way (as RPZ). Returns 0,
 * BW_EINVAL or BW_EIO. bw_policy_export_owner() calls emit for each record of one RPZ
 * owner (lower-cased absolute wire below origin) that the feed's rules hold: the lookup an
 * IXFR delta needs (feeds/xfr.h bw_xfr_delta_rules()). Rules of other feed formats come
 * back as their RPZ records. */
#include <stdio.h>
int bw_policy_export_feed(const struct bw_policy *p, unsigned feed, FILE *f, const char *origin,
			  uint32_t serial);
typedef void (*bw_policy_rr_fn)(void *ctx, uint16_t type, uint32_t ttl, const uint8_t *rdata,
				uint16_t rdlen);
int bw_policy_export_owner(const struct bw_policy *p, unsigned feed, const uint8_t *origin,
			   size_t origin_len, const uint8_t *owner, size_t owner_len,
			   bw_policy_rr_fn emit, void *ctx);

/* ---- lower level, used by the snapshot builder and tools ---- */

/* What one parse saw. */
struct bw_feed_stats {
	unsigned long lines; /* lines read, blank and comment lines included */
	size_t names;        /* add() calls (duplicates included) */
	size_t bad_lines;
	size_t skipped;      /* IP literals and hosts-file local names, ignored on purpose */
};
/* bw_feed_parse_buf() with the full counts; label may be NULL (nothing is logged). */
void bw_feed_parse_stats(const char *buf, size_t len, enum bw_feed_format format, const char *label,
			 bw_feed_add_fn add, void *ctx, struct bw_feed_stats *st);

/* Reads a whole regular file into a new heap buffer (*buf, *len; free() it) with the
 * mtime and size seen by fstat() on the same descriptor. Returns 0, BW_EIO (errno set),
 * BW_ERANGE (over 1 GiB) or BW_ENOMEM. */
int bw_feed_read_file(const char *path, char **buf, size_t *len, uint64_t *mtime_ns,
		      uint64_t *size);

/* Text name ("Example.org" or "example.org.") to a lower-cased wire name in out (at least
 * 255 bytes). Accepts [A-Za-z0-9_-] labels of 1..63 bytes; no wildcards, no root. Returns
 * the wire length, or 0 with *reason set (a static string) when the name is unusable. */
size_t bw_feed_name_to_wire(const char *text, size_t len, uint8_t *out, const char **reason);

#endif
