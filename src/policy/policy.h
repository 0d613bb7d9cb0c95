/*
 * policy/policy.h - blocking policy: feeds compiled into one immutable snapshot, and the
 * match that decides a name's verdict.
 *
 * Owns: struct bw_policy (a compiled snapshot: flat name arena + open-addressing hash
 * table on lower-cased wire names, one table for blocked names, one for the allowlist).
 * Borrows: the config's feed list while building.
 *
 * Semantics (blocking v1): a listed name blocks itself and every subdomain; the
 * allowlist wins over every feed (an allowlisted name allows itself and its subdomains);
 * feeds apply in configured order and the first feed (lowest index) that lists the name
 * or one of its parents is the one reported.
 *
 * Thread safety: a built snapshot is immutable; bw_policy_match() may run on any number of
 * threads at once. Building runs on one thread (the reloader) beside the live snapshot.
 */
#ifndef BW_POLICY_H
#define BW_POLICY_H

#include "base/base.h"
#include "conf/conf.h"

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

struct bw_verdict {
	enum bw_action action;
	uint16_t ede;         /* EDE code for blocked answers (BW_EDE_BLOCKED) */
	int feed;             /* index of the feed that matched, -1 if none */
	const char *feed_name; /* points into the snapshot; valid while it is held */
	const char *category;
	bool allowlisted;     /* the allowlist matched (action is ALLOW) */
};

/* Per-feed load report, kept in the snapshot. */
struct bw_feed_status {
	char *name;
	char *category;
	size_t entries;     /* distinct names this feed contributed */
	size_t bad_lines;   /* lines the parser could not use */
	size_t skipped;     /* entries ignored on purpose: IP literals (IP triggers are not
			       supported yet) and hosts-file names such as localhost */
	int load_error;     /* 0, or BW_E* if the file could not be read (previous version kept) */
	bool kept_previous; /* true when this feed's entries come from the previous snapshot */
	uint64_t file_mtime_ns; /* mtime of the file when loaded, for change detection */
	uint64_t file_size;
};

struct bw_policy;

/*
 * Builds a new snapshot from the config's feeds and allowlist. `prev` (may be NULL) is
 * the live snapshot: a feed whose file cannot be read keeps the entries it had in prev
 * (matched by feed name) and says so in its status. Unusable lines are counted and the
 * first few are logged as "file:line: reason"; they never abort the load.
 * `generation` is stored and returned by bw_policy_generation() (used in cache keys).
 * Returns 0 and *out, or BW_ENOMEM (BW_EINVAL for a NULL conf or more than 65535 feeds).
 */
int bw_policy_build(const struct bw_conf *conf, const struct bw_policy *prev, uint64_t generation,
		    struct bw_policy **out);
void bw_policy_free(struct bw_policy *p);

/* Matches a lower-cased wire name (as bw_query.qname_lc). Always fills v; returns true
 * when the name is blocked (v->action != BW_ACT_ALLOW). */
bool bw_policy_match(const struct bw_policy *p, const uint8_t *name_lc, size_t len,
		     struct bw_verdict *v);

uint64_t bw_policy_generation(const struct bw_policy *p);
size_t bw_policy_entries(const struct bw_policy *p);       /* distinct blocked names */
size_t bw_policy_feed_count(const struct bw_policy *p);
size_t bw_policy_memory(const struct bw_policy *p); /* bytes held by the snapshot */
const struct bw_feed_status *bw_policy_feed_status(const struct bw_policy *p, size_t i);

/*
 * Has any feed file changed (mtime or size) since p was built, or a feed that failed
 * become readable? Cheap: one stat() per feed. Used by the file watcher.
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
