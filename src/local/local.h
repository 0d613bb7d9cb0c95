/*
 * local/local.h - the names Bulwark answers itself, so that a network's local names keep
 * working behind a protective resolver: local records (`local-records`,
 * `local-records-file`: A/AAAA for the names, PTR for their addresses), the special-use
 * names answered as their RFCs say (localhost RFC 6761 6.3; invalid, test RFC 6761; local
 * RFC 6762 22.1; onion RFC 7686; home.arpa RFC 8375), and which names a forward zone
 * covers (those are resolved, by the zone's servers: resolve/resolve.c configures
 * libunbound; this table only knows them so that they win over a special-use name and so
 * that `bulwark explain` can say where a name goes).
 *
 * Precedence, for a query name: a local record (exact name); else the most specific of
 * the forward zones and special-use names that contain it (a forward zone wins over a
 * special-use name of the same name: `home.arpa` forwarded to the router); a special-use
 * name set to `recurse` (resolver.special-use) is resolved like any other name.
 *
 * Owns: struct bw_local, an immutable table built from a config (the records) and the
 * boot config (forward zones and special-use: libunbound reads them at start only).
 * Borrows nothing after bw_local_build() returns.
 *
 * Thread safety: a built table is read-only; any number of threads may look names up.
 * Lookups allocate nothing.
 */
#ifndef BW_LOCAL_H
#define BW_LOCAL_H

#include <stdio.h>

#include "conf/conf.h"
#include "dns/dns.h"

struct bw_local;

#define BW_LOCAL_MAX_PER_NAME 32 /* addresses kept per name (more are dropped, logged) */

/* Builds the table from conf (local records, local-ttl) and boot (resolver.forward-zones
 * and resolver.special-use; may be conf). Returns 0 or BW_ENOMEM / BW_EINVAL. */
int bw_local_build(const struct bw_conf *conf, const struct bw_conf *boot, struct bw_local **out);
void bw_local_free(struct bw_local *l);

enum bw_local_kind {
	BW_LOCAL_NONE = 0, /* nothing local: resolve as usual */
	BW_LOCAL_RECORD,   /* a local record, or the PTR of a local record's address */
	BW_LOCAL_SPECIAL,  /* a special-use name: answered here (special_recurse: resolved) */
	BW_LOCAL_FORWARD,  /* under a forward zone: resolved by its servers */
};

struct bw_local_hit {
	enum bw_local_kind kind;
	int index;	   /* SPECIAL: enum bw_special_use; FORWARD: index in
			      boot->resolver.forward_zones; else -1 */
	bool recurse;	   /* SPECIAL: resolver.special-use says recurse (not answered here) */
	const void *entry; /* RECORD: the table's entry (bw_local_answer) */
};

/* What the table says about a lower-cased wire name. */
enum bw_local_kind bw_local_find(const struct bw_local *l, const uint8_t *name, size_t len,
				 struct bw_local_hit *hit);

/*
 * The answer to q when Bulwark answers it itself (a local record, a special-use name not
 * set to recurse): returns 1 with (m, body) filled (RA is set by bw_answer_write; AA is
 * set; TTL local-ttl), 0 when q is resolved as usual, or BW_ESPACE.
 * Records: A/AAAA of the name (other types: NOERROR without records); PTR of an address.
 * localhost and below: A 127.0.0.1, AAAA ::1, other types NOERROR without records.
 * invalid, test, local, onion and below: NXDOMAIN; home.arpa below its apex: NXDOMAIN
 * (the apex itself: NOERROR without records, a locally served empty zone, RFC 6303).
 */
int bw_local_answer(const struct bw_local *l, const struct bw_query *q, struct bw_answer_meta *m,
		    uint8_t *body, size_t cap);

/* For `bulwark explain`: writes what the table says about a lower-cased wire name (local
 * record with its addresses and origin, special-use name, forward zone and its servers)
 * as explain's "local:" lines. Returns 1 when the name is answered here (explain stops),
 * 0 otherwise. */
int bw_local_explain(const struct bw_local *l, const struct bw_conf *conf,
		     const struct bw_conf *boot, const uint8_t *name, size_t len, FILE *out);

#endif
