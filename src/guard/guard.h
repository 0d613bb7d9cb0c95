/*
 * guard/guard.h - catching what no list has caught yet: look-alikes of protected domains
 * (typosquats, homoglyphs and IDN confusables, TLD swaps, added labels, combosquats, the
 * protected name as a subdomain of another domain) and newly seen registrable domains.
 * docs/internals/guard.md describes the mechanism; docs/config.md the `guard:` keys.
 *
 * Owns: struct bw_lookalike (an immutable index built once from the protected domains,
 * freed by bw_lookalike_free()) and struct bw_nseen (the newly-seen memory: a bounded
 * table of fingerprints with first/last-seen hours, persisted in the state directory).
 * Borrows nothing after construction: the protected names are copied.
 *
 * Thread safety: a built bw_lookalike is read-only; bw_lookalike_check() may run on any
 * number of threads at once. bw_nseen_observe() may run concurrently on every worker (each
 * slot is one atomic 64-bit word; a lost race forgets one observation, never corrupts).
 * bw_nseen_save() may run beside observers (it copies a slightly moving picture).
 * The Public Suffix List lookups it uses (bw_registrable_domain) are base/suffix.c.
 */
#ifndef BW_GUARD_H
#define BW_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BW_GUARD_NAME_MAX 256 /* text names, with the terminating NUL */

/* What a look-alike does to imitate a protected domain. */
enum bw_guard_kind {
	BW_GK_NONE = 0,
	BW_GK_OMISSION,      /* amnsty: a letter left out */
	BW_GK_REPETITION,    /* amnnesty: a letter doubled */
	BW_GK_TRANSPOSITION, /* amnetsy: two neighbours swapped */
	BW_GK_REPLACEMENT,   /* amnwsty: a keyboard neighbour (qwerty, qwertz, azerty) */
	BW_GK_INSERTION,     /* amnedsty: a keyboard neighbour added */
	BW_GK_VOWEL_SWAP,    /* amnista: one vowel for another */
	BW_GK_BITSQUATTING,  /* amnes4y: one bit of one character flipped */
	BW_GK_HYPHENATION,   /* amn-esty: a hyphen added */
	BW_GK_ADDITION,      /* amnesty1: a character appended */
	BW_GK_HOMOGLYPH,     /* arnnesty, amnesty with 0 for o: ASCII characters that look alike */
	BW_GK_IDN_HOMOGLYPH, /* аpple.com with a Cyrillic а: UTS #39 confusable skeleton */
	BW_GK_DOT_INSERTION, /* amn.esty.org: the label split by a dot */
	BW_GK_TLD_SWAP,      /* amnesty.net, amnesty.org.co: same label, other suffix */
	BW_GK_ADDED_LABEL,   /* amnesty-org.com, amnestyorg.org: the suffix folded in */
	BW_GK_SUBDOMAIN,     /* amnesty.org.evil.example: the protected name under another */
	BW_GK_COMBOSQUAT,    /* amnesty-login.net, secureamnesty.com: label plus words */
	BW_GK_COUNT
};

enum bw_guard_act { BW_GUARD_ACT_BLOCK = 0, BW_GUARD_ACT_ALERT = 1 };

/* One protected domain as configured. */
struct bw_guard_protected {
	const char *domain;     /* text; its registrable domain is what is protected */
	enum bw_guard_act action;
	char *const *owns;      /* the organisation's other domains: never flagged */
	size_t n_owns;
	bool no_tld_swap;       /* the same label under another suffix is not flagged */
};

/* Why a name that would imitate a protected domain is not flagged after all. */
enum bw_guard_exempt {
	BW_GX_NONE = 0,
	BW_GX_POPULAR, /* its registrable domain is on the popular list (guard.popular) */
	BW_GX_HOSTING, /* the protected label under a hosting suffix of the Public Suffix
			* List's private section (apple.github.io): not a TLD swap */
};

/* A detection: what the name does and which protected domain it imitates. This is what
 * a security event carries. */
struct bw_guard_hit {
	enum bw_guard_kind kind;
	enum bw_guard_act action;
	unsigned index;        /* into the protected list given to bw_lookalike_build() */
	const char *protected; /* the protected registrable domain (owned by the index) */
	/* set when bw_lookalike_check() returns false for a name that imitates a protected
	 * domain but is exempt (kind, index and protected then say what it would have been);
	 * BW_GX_NONE otherwise */
	enum bw_guard_exempt exempt;
};

/* "omission", "idn-homoglyph", ... (stable: logs and events use it). */
const char *bw_guard_kind_name(enum bw_guard_kind k);

/* ---- look-alikes ---- */
struct bw_lookalike;

/*
 * Builds the index for n protected domains. min_len: typosquat, ASCII homoglyph and
 * unhyphenated combosquat checks apply to protected labels of at least this many
 * characters (short labels have too many innocent neighbours); IDN confusables, TLD swaps,
 * added labels, hyphenated combosquats and subdomain use apply to every length.
 * Returns 0, BW_EINVAL (a name that is not a domain or has no registrable part; *bad is
 * its index) or BW_ENOMEM.
 */
int bw_lookalike_build(const struct bw_guard_protected *p, size_t n, unsigned min_len,
		       struct bw_lookalike **out, size_t *bad);
void bw_lookalike_free(struct bw_lookalike *g);

/*
 * Loads the popular list: registrable domains the guard never flags, however much they
 * look like a protected one (a shipped cut of a popularity list, see docs/guard.md). One
 * name a line, or "RANK,NAME" as Tranco publishes it; '#' starts a comment; a name with
 * labels before its registrable domain counts as that domain; a line that is not a name
 * is skipped and counted in *skipped. Call once after bw_lookalike_build(), before any
 * bw_lookalike_check(). Returns 0, BW_ENOENT / BW_EIO (cannot read path), BW_EMALFORMED
 * (no domain at all in a non-empty file) or BW_ENOMEM; *count is the number of domains.
 */
int bw_lookalike_load_popular(struct bw_lookalike *g, const char *path, size_t *count,
			      size_t *skipped);
size_t bw_lookalike_popular(const struct bw_lookalike *g); /* domains on the popular list */
size_t bw_lookalike_count(const struct bw_lookalike *g); /* protected domains */
size_t bw_lookalike_variants(const struct bw_lookalike *g); /* precomputed index entries */

/*
 * Does name (text, any case, trailing dot optional, punycode or UTF-8) imitate a protected
 * domain? Exact protected domains and their subdomains never do, nor names whose
 * registrable domain is on the popular list (hit->exempt says so), nor the protected
 * label under a private-section suffix of the Public Suffix List (not a TLD swap). A name made of ASCII
 * without "xn--" costs one registrable-domain lookup and a few hash lookups; only
 * internationalised names go through ICU.
 */
bool bw_lookalike_check(const struct bw_lookalike *g, const char *name, struct bw_guard_hit *hit);

/* The index for conf->guard.protected (BW_EINVAL: a protected name has no registrable
 * part, logged). *out stays NULL when nothing is protected. */
struct bw_conf;
int bw_guard_lookalike_build(const struct bw_conf *conf, struct bw_lookalike **out);

/* `bulwark guard-check [-c FILE]`: reads names from stdin, one a line, and prints
 * "NAME<TAB>KIND<TAB>PROTECTED" for each look-alike (for tests and operators checking a
 * list of names at once). Returns the exit status. */
int bw_guard_check_main(int argc, char **argv);

/* For `bulwark explain`: writes the guard's verdict on name (text) under conf: the
 * look-alike check, and what the newly-seen memory saved in conf->server.state_dir knows
 * of its registrable domain (read only). Returns 1 when the guard blocks the name, 0 when
 * it does not, or a negative BW_E*. */
int bw_guard_explain(const struct bw_conf *conf, const char *name, unsigned profile, FILE *out);

/* ---- newly seen registrable domains ---- */
struct bw_nseen;

/* A memory for about `capacity` registrable domains (rounded up to a power of two). */
int bw_nseen_new(size_t capacity, struct bw_nseen **out);
void bw_nseen_free(struct bw_nseen *ns);
/*
 * Records that the registrable domain regdom (lower-case text) was resolved at now_s (unix
 * seconds). Returns true when it was known already, with *first_s the (hour-rounded) unix
 * time it was first seen; false when this is the first time (or it was forgotten: a
 * domain is forgotten when its bucket is full and it is the least recently seen there).
 * A new domain is mistaken for a known one with probability at most 16 / 2^32 (one
 * 32-bit fingerprint compared with the 16 of its two buckets).
 */
bool bw_nseen_observe(struct bw_nseen *ns, const char *regdom, size_t len, uint64_t now_s,
		      uint64_t *first_s);
/* The same without recording anything (explain). */
bool bw_nseen_peek(const struct bw_nseen *ns, const char *regdom, size_t len, uint64_t now_s,
		   uint64_t *first_s);
/* When the memory started (unix seconds): a fresh memory sees everything as new. */
uint64_t bw_nseen_born(const struct bw_nseen *ns);
size_t bw_nseen_bytes(const struct bw_nseen *ns);
/* Atomically writes the memory to path (temp file, fsync, rename). */
int bw_nseen_save(const struct bw_nseen *ns, const char *path);
/* Loads a memory saved by bw_nseen_save() of the same capacity: 0, BW_ENOENT (no file),
 * BW_EMALFORMED (wrong size, magic or checksum: the memory stays fresh). */
int bw_nseen_load(struct bw_nseen *ns, const char *path);

#endif
