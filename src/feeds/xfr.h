/*
 * feeds/xfr.h - RPZ secondary: zone transfers (AXFR, IXFR RFC 1995), TSIG (RFC 8945),
 * NOTIFY (RFC 1996), SOA timers and serial arithmetic (RFC 1982). The feeds module's second
 * header: the feed manager (feeds.h) calls these; nothing here keeps state between calls
 * beyond what the caller holds (struct bw_xfr_result, struct bw_tsig_ctx).
 *
 * Owns: the results it returns (bw_xfr_result_free()). Borrows: keys, addresses.
 * Transfers use blocking sockets with poll() timeouts: they run on the feed manager's
 * thread, never on a worker. Everything is reentrant; nothing is shared between calls.
 *
 * "Nothing partial": bw_xfr_fetch() either returns a whole, validated transfer (UPTODATE,
 * FULL or DELTA) or an error with nothing in the result. See docs/internals/xfr.md.
 */
#ifndef BW_FEEDS_XFR_H
#define BW_FEEDS_XFR_H

#include <stdio.h>
#include <sys/socket.h>

#include "base/base.h"
#include "policy/rules.h"

enum {
	BW_RR_SOA = 6,
	BW_RR_TSIG = 250,
	BW_RR_IXFR = 251,
	BW_RR_AXFR = 252,
	BW_OPCODE_NOTIFY = 4,
	BW_TSIG_BADSIG = 16,
	BW_TSIG_BADKEY = 17,
	BW_TSIG_BADTIME = 18,
	BW_TSIG_BADTRUNC = 22,
	BW_TSIG_FUDGE = 300,      /* seconds, RFC 8945 recommends 300 */
	BW_TSIG_MAX_UNSIGNED = 99 /* RFC 8945 5.3.1: unsigned messages in a row */
};

/* ---- serial arithmetic (RFC 1982, SERIAL_BITS 32) ---- */

/* -1: a < b, 0: equal, 1: a > b, 2: undefined (the two are exactly 2^31 apart; treated
 * as "not newer" by every caller). */
int bw_serial_cmp(uint32_t a, uint32_t b);
/* Is b strictly newer than a? (cmp(b, a) == 1) */
bool bw_serial_newer(uint32_t b, uint32_t a);

/* ---- TSIG (RFC 8945) ---- */

enum bw_tsig_alg { BW_TSIG_SHA1 = 0, BW_TSIG_SHA256, BW_TSIG_SHA512 };

struct bw_tsig_key {
	uint8_t name[255]; /* lower-cased wire name */
	size_t name_len;
	enum bw_tsig_alg alg;
	uint8_t secret[128];
	size_t secret_len;
};

/* A key from config: name ("xfr-key."), algorithm ("hmac-sha256", "hmac-sha1",
 * "hmac-sha512") and base64 secret. Returns 0, or BW_EINVAL with *why set. */
int bw_tsig_key_init(struct bw_tsig_key *k, const char *name, const char *alg,
		     const char *secret_b64, const char **why);

/* One signed exchange: a request signed with bw_tsig_sign(), then its response message(s)
 * checked with bw_tsig_verify() in order (multi-message transfers: each signed message
 * covers the previous MAC and the unsigned messages in between, RFC 8945 5.3.1). */
struct bw_tsig_ctx {
	const struct bw_tsig_key *key;
	uint8_t mac[64]; /* the previous MAC (request, then last signed response) */
	size_t mac_len;
	void *run;	   /* HMAC over unsigned messages since the last signed one */
	unsigned unsigned_run;
	unsigned verified; /* response messages checked so far */
	uint16_t error;	   /* TSIG error (BADSIG, BADKEY, BADTIME) of the last failure */
	int64_t time_signed; /* of the last signed message checked */
};

void bw_tsig_ctx_init(struct bw_tsig_ctx *c, const struct bw_tsig_key *key);
void bw_tsig_ctx_clear(struct bw_tsig_ctx *c);
/* Appends a TSIG RR to msg[0..*len) (cap bytes available), bumps ARCOUNT, keeps the MAC
 * for the response. `now` wall-clock seconds. With c->mac_len set (signing a response to a
 * signed request) the request's MAC is covered first. `error` the TSIG error to send (0).
 * Returns 0 or BW_ESPACE. */
int bw_tsig_sign(struct bw_tsig_ctx *c, uint8_t *msg, size_t *len, size_t cap, int64_t now,
		 uint16_t error);
/* Checks one response message of the exchange. Returns 0 (signed and good, or unsigned and
 * allowed there: not the first message, fewer than 100 in a row; `last` says it is the end
 * of the exchange, which must be signed), BW_EREFUSED with c->error = BADSIG / BADKEY /
 * BADTIME (bad MAC, unknown key or algorithm, time outside fudge; or the server's own TSIG
 * error), BW_EMALFORMED (garbled TSIG, not last, or unsigned where it must be signed). */
int bw_tsig_verify(struct bw_tsig_ctx *c, const uint8_t *msg, size_t len, int64_t now, bool last);
/* Checks a signed request (NOTIFY) with c's key and keeps its MAC in c, so that the
 * response can be signed with bw_tsig_sign(). Returns as bw_tsig_verify(); BW_ENOENT when
 * the message has no TSIG. */
int bw_tsig_verify_request(struct bw_tsig_ctx *c, const uint8_t *msg, size_t len, int64_t now);
/* Offset of a TSIG RR that is the last record of msg, or 0 when there is none (the
 * message's ARCOUNT says how many records). Negative BW_E* when the message is garbled. */
long bw_tsig_find(const uint8_t *msg, size_t len);

/* ---- records of a transfer ---- */

/* One record, uncompressed: names inside rdata of the RFC 1035 types (NS, CNAME, SOA, PTR,
 * MX, ...) are expanded; the owner keeps the primary's case. */
struct bw_xfr_rr {
	const uint8_t *owner;
	uint16_t owner_len;
	uint16_t type, rclass;
	uint32_t ttl;
	uint16_t rdlen;
	const uint8_t *rdata;
};

struct bw_xfr_rrset {
	struct bw_xfr_rr *v;
	size_t n, cap;
};

/* One IXFR difference sequence: from serial `from` to `to`: `del` then `add` (the SOAs
 * themselves are not in the lists). */
struct bw_xfr_diff {
	uint32_t from, to;
	struct bw_xfr_rrset del, add;
};

struct bw_soa {
	uint32_t serial, refresh, retry, expire, minimum;
};

enum bw_xfr_kind { BW_XFR_NONE = 0, BW_XFR_UPTODATE, BW_XFR_FULL, BW_XFR_DELTA };

struct bw_xfr_mem; /* the result's arena */
struct bw_xfr_blocks;

struct bw_xfr_result {
	enum bw_xfr_kind kind;
	struct bw_soa soa;	   /* the primary's SOA (the zone's new one) */
	uint8_t origin[255];	   /* the zone's name, lower-cased wire */
	size_t origin_len;
	struct bw_xfr_rrset zone;  /* FULL: every record, the SOA first, in transfer order */
	struct bw_xfr_diff *diffs; /* DELTA: the chain, oldest first */
	size_t n_diffs;
	bool ixfr_was_full;	   /* FULL received in answer to an IXFR query */
	bool fell_back;		   /* IXFR failed, AXFR was used */
	size_t messages, bytes;	   /* wire messages and bytes received */
	char primary[64];	   /* address that served it */
	struct bw_xfr_mem *mem;
};

/* What bw_xfr_fetch() asks for. */
struct bw_xfr_req {
	const char *zone;		/* zone name, text */
	const struct sockaddr_storage *primaries;
	size_t n_primaries;		/* tried in order until one answers */
	const struct bw_tsig_key *key;	/* NULL: no TSIG */
	bool have_serial;		/* we hold the zone at `serial`: SOA check, then IXFR */
	uint32_t serial;
	bool axfr_only;			/* skip IXFR */
	bool skip_soa_check;		/* NOTIFY: go straight to IXFR */
	unsigned timeout_ms;		/* per read/connect (0: 10 s) */
	size_t max_bytes;		/* cap on the transfer (0: 512 MiB) */
	int64_t now;			/* wall-clock seconds for TSIG (0: time(NULL)) */
};

/* Fetches the zone. Returns 0 and a complete result, or a negative BW_E* with out->kind
 * BW_XFR_NONE and nothing allocated; err (errlen bytes, may be NULL) says why, e.g.
 * "127.0.0.1: IXFR: serial rollback 5 -> 3". BW_EREFUSED: TSIG failure or refused. */
int bw_xfr_fetch(const struct bw_xfr_req *req, struct bw_xfr_result *out, char *err,
		 size_t errlen);
/* Asks one primary for the zone's SOA (over TCP, TSIG when key). */
int bw_xfr_soa_query(const struct bw_xfr_req *req, const struct sockaddr_storage *primary,
		     struct bw_soa *soa, char *err, size_t errlen);
void bw_xfr_result_free(struct bw_xfr_result *r);

/* Parses one transfer stream given as its messages (each without the TCP length) in
 * order, as bw_xfr_fetch() does after the query: for tests and the fuzz target. `qtype`
 * IXFR or AXFR, `serial` ours for IXFR. TSIG checked when tsig != NULL. */
int bw_xfr_parse_stream(const char *zone, uint16_t qtype, uint32_t serial, uint16_t id,
			const uint8_t *const *msgs, const size_t *lens, size_t n,
			struct bw_tsig_ctx *tsig, int64_t now, struct bw_xfr_result *out,
			char *err, size_t errlen);

/* Writes the zone of a FULL result as master-file text (absolute names, one record a line,
 * RFC 3597 "\# len hex" for types without a presentation form here) that bw_parse_rpz()
 * loads. Returns 0 or BW_EIO. */
int bw_xfr_write_zone(const struct bw_xfr_result *r, FILE *f);
/* One record in that form (for the export and tests). */
int bw_xfr_write_rr(FILE *f, const uint8_t *owner, size_t owner_len, uint16_t type,
		    uint32_t ttl, const uint8_t *rdata, size_t rdlen);

/* ---- IXFR to policy deltas ----
 * The owners touched by a DELTA result become rule removes and adds for
 * bw_policy_apply_delta(): for every owner name that has a deleted or added record, every
 * trigger of the owner is removed (a remove clears the trigger whatever its action) and
 * the owner's records after the change are added back. The owner's records after the
 * change are its records before it (from `lookup`: the feed's current records of that
 * owner, e.g. from the last-good zone file or bw_policy_export_owner()) minus the deleted,
 * plus the added. So a LOCAL_DATA owner with several records keeps the others when one is
 * deleted, and a CNAME replaced by A is a remove + an add.
 */
struct bw_xfr_delta {
	struct bw_rule *adds, *removes;
	size_t n_adds, n_removes;
	size_t bad;		 /* records that make no rule (bad trigger encodings, ...) */
	struct bw_xfr_blocks *mem; /* what the rules point into */
};
/* The current records of one owner (lower-cased wire, absolute) of the feed: calls
 * emit(ctx2, type, ttl, rdata, rdlen) for each. May be NULL (the owners are taken as new). */
typedef void (*bw_xfr_rr_emit)(void *ctx2, uint16_t type, uint32_t ttl, const uint8_t *rdata,
			       uint16_t rdlen);
typedef int (*bw_xfr_owner_lookup)(void *ctx, const uint8_t *owner, size_t owner_len,
				   bw_xfr_rr_emit emit, void *ctx2);
int bw_xfr_delta_rules(const struct bw_xfr_result *r, bw_xfr_owner_lookup lookup, void *ctx,
		       struct bw_xfr_delta *out);
void bw_xfr_delta_free(struct bw_xfr_delta *d);

/* ---- NOTIFY (RFC 1996) ---- */

/* A zone the secondary accepts NOTIFY for. */
struct bw_notify_zone {
	const uint8_t *name; /* lower-cased wire */
	size_t name_len;
	const struct sockaddr_storage *primaries;
	size_t n_primaries;
	const struct bw_tsig_key *key; /* NULL: unsigned NOTIFY accepted from the primaries */
};

/* Handles a NOTIFY query from `from`: checks opcode, question (SOA, IN, a listed zone),
 * source address (one of the zone's primaries, port ignored) and TSIG when the zone has a
 * key. On success writes the response (same ID, QR, AA, opcode NOTIFY, question echoed,
 * TSIG-signed when the request was) into resp (cap bytes), sets *zone_index and, when the
 * NOTIFY carries an SOA in its answer section, *serial and *has_serial. Returns 0, or
 * BW_EMALFORMED (not a NOTIFY: no answer), BW_EREFUSED (unknown zone / not a primary / TSIG
 * failed: *resp_len > 0 when a REFUSED or NOTAUTH answer was written, to be sent). */
int bw_notify_handle(const struct bw_notify_zone *zones, size_t n_zones,
		     const struct sockaddr *from, const uint8_t *msg, size_t len, int64_t now,
		     uint8_t *resp, size_t cap, size_t *resp_len, size_t *zone_index,
		     uint32_t *serial, bool *has_serial);

/* ---- SOA timers (RFC 1035 3.3.13, RFC 1996) ----
 * refresh and retry are clamped to [BW_XFR_MIN_INTERVAL, BW_XFR_MAX_INTERVAL] (1 s .. 1
 * day), expire to [max(refresh, retry), 4 weeks]. */
#define BW_XFR_MIN_INTERVAL 1
#define BW_XFR_MAX_INTERVAL 86400
#define BW_XFR_MAX_EXPIRE (28 * 86400)
struct bw_xfr_timers {
	int64_t next_check; /* when to query the SOA next */
	int64_t expires_at; /* when the zone's data goes stale (0: never loaded) */
	bool expired;	    /* now >= expires_at: the feed must be treated as stale */
};
/* last_success: when the zone was last confirmed current (loaded or SOA equal), 0 never;
 * last_failure: the last failed attempt after it, 0 none. soa: the zone's SOA (NULL when
 * never loaded: retry interval of `fallback_retry`). Pure function of its inputs. */
void bw_xfr_timers(const struct bw_soa *soa, int64_t last_success, int64_t last_failure,
		   int64_t now, uint32_t fallback_retry, struct bw_xfr_timers *out);

#endif
