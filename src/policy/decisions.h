/*
 * policy/decisions.h - local decisions: names an administrator allowed or blocked by hand
 * (`bulwarkctl allow NAME`, POST /api/v1/allow; docs/decisions.md). A decision covers the
 * name and every name below it. An allow wins over every feed (as the allowlist does); a
 * block answers NXDOMAIN with EDE 15 "blocked by local (local)" in every profile. Where a
 * decision and the config's allowlist cover a name, the most specific of them wins (at the
 * same name, the allowlist).
 *
 * Owns: struct bw_decisions, an immutable, reference-counted set of at most
 * BW_DECISIONS_MAX decisions (in the order they were made) with a hash index on the wire
 * name. A change makes a new set (bw_decisions_put/_drop) beside the old one. A policy
 * snapshot holds a reference to the set in force (bw_policy_set_decisions(); match.c looks
 * at it before the allowlists), so the server swaps it like any snapshot.
 * The file: one decision per line, "ACTION NAME TIME WHO" (TIME in ISO 8601 UTC, WHO the
 * rest of the line), '#' comments; the server replaces it whole (temporary file, fsync,
 * rename).
 *
 * Thread safety: a set is immutable; any thread may read it; ref/unref are atomic.
 */
#ifndef BW_POLICY_DECISIONS_H
#define BW_POLICY_DECISIONS_H

#include <stdio.h>

#include "base/base.h"
#include "dns/dns.h"

#define BW_DECISIONS_MAX 10000 /* the cap: docs/decisions.md (said as "10000" in messages) */
#define BW_DECISION_WHO_MAX 96     /* bytes of "who", NUL included */
#define BW_DECISION_NAME_TEXT 254  /* a name as text, without the trailing dot, + NUL */

enum bw_decision_action { BW_DECISION_ALLOW = 0, BW_DECISION_BLOCK = 1 };

struct bw_local_decision {
	enum bw_decision_action action;
	uint8_t len;                  /* of wire */
	uint8_t wire[BW_DNS_MAXNAME]; /* lower-cased wire name */
	char who[BW_DECISION_WHO_MAX]; /* "token NAME", "bulwarkctl (uid N)" */
	int64_t at;                   /* when, Unix seconds */
};

struct bw_decisions;

/* A name as the API takes it: letters, digits, '-' and '_', labels of 1 to 63, at most
 * 253 characters, an optional trailing dot; not the root, not a wildcard (a decision covers
 * the subdomains anyway). Fills wire (lower case) and *len; false with the reason in err. */
bool bw_decision_name(const char *text, uint8_t wire[BW_DNS_MAXNAME], uint8_t *len, char *err,
		      size_t errlen);
/* The name as text, lower case, no trailing dot. Returns out. */
const char *bw_decision_text(const struct bw_local_decision *d, char *out, size_t cap);
/* "allow" / "block"; from text: false when neither. */
const char *bw_decision_action_name(enum bw_decision_action a);
bool bw_decision_action_parse(const char *text, enum bw_decision_action *a);
/* TIME as the file and explain write it: "2024-05-01T12:00:00Z". Returns out. */
const char *bw_decision_time(int64_t at, char *out, size_t cap);
bool bw_decision_time_parse(const char *text, int64_t *at); /* that form back */

/* Parses the file's text (not NUL-terminated): *out is the set (NULL: no decision), *bad
 * the lines that could not be used (skipped; the first one's "label:line: reason" in err).
 * A later line for the same name replaces an earlier one; lines past BW_DECISIONS_MAX are
 * bad. Returns 0 or BW_ENOMEM. */
int bw_decisions_parse(const char *buf, size_t len, const char *label, struct bw_decisions **out,
		       size_t *bad, char *err, size_t errlen);
/* The same on a file; a file that does not exist is no decision (0, *out NULL). BW_EIO
 * (errno) when it cannot be read. */
int bw_decisions_load(const char *path, struct bw_decisions **out, size_t *bad, char *err,
		      size_t errlen);
/* Writes the set (NULL: none) as the file's text (the caller replaces the file atomically:
 * core/decisions.c). 0 or BW_EIO. */
int bw_decisions_write(FILE *f, const struct bw_decisions *d);

/* A new set: d with dec added, replacing a decision on the same name (either action).
 * BW_ESPACE when d holds BW_DECISIONS_MAX already and dec is a new name; BW_ENOMEM. */
int bw_decisions_put(const struct bw_decisions *d, const struct bw_local_decision *dec,
		     struct bw_decisions **out);
/* A new set: d without the `action` decision on wire (NULL when none is left). BW_ENOENT
 * when d has no such decision. */
int bw_decisions_drop(const struct bw_decisions *d, const uint8_t *wire, size_t len,
		      enum bw_decision_action action, struct bw_decisions **out);

size_t bw_decisions_count(const struct bw_decisions *d); /* NULL: 0 */
const struct bw_local_decision *bw_decisions_at(const struct bw_decisions *d, size_t i);
/* The decision on exactly this name, or NULL. */
const struct bw_local_decision *bw_decisions_find(const struct bw_decisions *d, const uint8_t *wire,
					    size_t len);
/* The most specific decision that covers name_lc (the name or an ancestor), or NULL. */
const struct bw_local_decision *bw_decisions_cover(const struct bw_decisions *d, const uint8_t *name_lc,
					     size_t len);

struct bw_decisions *bw_decisions_ref(struct bw_decisions *d); /* NULL-safe */
void bw_decisions_unref(struct bw_decisions *d);                /* frees with the last */

#endif
