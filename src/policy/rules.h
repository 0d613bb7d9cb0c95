/*
 * policy/rules.h - the common output of every feed parser: a stream of rules (trigger +
 * action + origin) handed to a sink. Parsers know file formats; the snapshot builder knows
 * how to store and match rules. Neither knows the other.
 *
 * Semantics follow RPZ (draft-vixie-dnsop-dns-rpz), the reference for every format:
 *  - a QNAME trigger on "name" matches exactly that name; a WILDCARD trigger on "name"
 *    (written "*.name") matches every name strictly below it, not the name itself. List
 *    formats (domains, hosts, adblock "||name^") emit both, so the name and everything
 *    under it is covered, as before.
 *  - CLIENT_IP matches the client's address; RESPONSE_IP an A/AAAA address in the answer;
 *    NSDNAME / NSIP the name or address of a name server of the delegation.
 *  - actions are enum bw_action (policy.h); LOCAL_DATA carries records, REDIRECT a target.
 *
 * Thread safety: parsers are reentrant; a sink is called on the parser's thread.
 */
#ifndef BW_POLICY_RULES_H
#define BW_POLICY_RULES_H

#include "base/base.h"
#include "conf/conf.h"
#include "policy/policy.h"

enum bw_trigger {
	BW_TRIG_QNAME = 0, /* exact name */
	BW_TRIG_WILDCARD,  /* every name strictly below `name` */
	BW_TRIG_CLIENT_IP,
	BW_TRIG_RESPONSE_IP,
	BW_TRIG_NSDNAME, /* exact name server name (wildcard flag below for "*.") */
	BW_TRIG_NSIP,
};

/* One local-data record of a LOCAL_DATA rule (RPZ: any RR type at the trigger's owner). */
struct bw_rule_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	const uint8_t *rdata; /* uncompressed wire rdata; names inside are absolute */
};

struct bw_rule {
	enum bw_trigger trigger;
	bool nsdname_wildcard;    /* NSDNAME trigger written "*.name" */
	const uint8_t *name;      /* lower-cased wire name (QNAME, WILDCARD, NSDNAME) */
	size_t name_len;
	struct bw_cidr net;       /* CLIENT_IP, RESPONSE_IP, NSIP */
	enum bw_action action;
	const uint8_t *target;    /* REDIRECT: the CNAME target (wire, lower-cased) */
	size_t target_len;
	bool target_wildcard;     /* REDIRECT to "*.target": the answer is a CNAME to
				     <query name>.<target> (RPZ "CNAME *.example."); only
				     "CNAME *." alone means NODATA */
	const struct bw_rule_rr *rrs; /* LOCAL_DATA records (several per owner allowed) */
	size_t n_rrs;
	uint32_t ttl;             /* TTL of the synthesized answer */
	/* origin, for explain and logs */
	unsigned long line;       /* 1-based line in the feed file (RPZ: where the record
				     ends), 0 if not line-based */
	const char *ref;          /* e.g. STIX indicator id "indicator--...", or NULL */
	const char *title;        /* e.g. STIX indicator name, MISP event info, or NULL */
	bool cname_exclusive;     /* RPZ: the rule comes from a record of a zone, where a CNAME
				     stands alone at its owner: a sink that keeps rules by
				     trigger may refuse it with BW_SINK_CONFLICT when the same
				     trigger already has a rule and one of the two is not
				     LOCAL_DATA (a CNAME beside other data) */
};

/* Receives rules; returns 0 to go on, or a negative BW_E* to abort the parse (only for
 * fatal conditions such as out-of-memory: bad input never aborts). The rule and every
 * pointer in it are valid during the call only. */
typedef int (*bw_rule_sink)(void *ctx, const struct bw_rule *r);

/* A sink's answer to a cname_exclusive rule that conflicts with one taken before (RPZ:
 * CNAME and other data at one owner): the rule is not taken, the parser counts it as a bad
 * unit and goes on. The RPZ parser itself finds the conflicts between adjacent records of
 * an owner; those between records far apart are left to the sink. */
#define BW_SINK_CONFLICT 1

/* What a parse of one feed found. */
struct bw_parse_report {
	unsigned long units;   /* lines (text formats) or objects (JSON formats) looked at */
	size_t rules;          /* rules emitted */
	size_t bad;            /* units that could not be used */
	size_t skipped;        /* units ignored on purpose (comments excluded): e.g. AdBlock
				  rules with modifiers the DNS cannot enforce, expired STIX
				  indicators, MISP attributes without to_ids */
	char first_errors[5][160]; /* "label:line: reason" of the first few bad units */
	unsigned n_errors;
	size_t no_ids_events;  /* MISP: events that gave no rule only because none of their
				  blockable attributes has to_ids */
	bool broken;           /* structurally unusable (e.g. not JSON at all): the caller
				  keeps the previous version of the feed */
	bool too_big;          /* broken because compressed data expands past its limit */
};

/* Records a bad unit in the report: counts it and keeps the message among the first few. */
void bw_parse_report_bad(struct bw_parse_report *rep, const char *label, unsigned long where,
			 const char *reason);

/* Parsers: each reads a whole feed held in memory (not NUL-terminated) and never aborts on
 * bad input. `label` (usually the file name) prefixes messages. `now` (wall-clock seconds)
 * is used by formats with validity windows (STIX). Return 0, or the sink's error. */
int bw_parse_domains(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		     struct bw_parse_report *rep);
int bw_parse_hosts(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		   struct bw_parse_report *rep);
int bw_parse_wildcard(const char *buf, size_t len, const char *label, bw_rule_sink sink,
		      void *ctx, struct bw_parse_report *rep);
int bw_parse_adblock(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		     struct bw_parse_report *rep);
int bw_parse_rpz(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		 struct bw_parse_report *rep);
/* The list formats (domains, hosts, wildcard, adblock) over a file read in pieces: the first
 * piece goes to the format's parser above, each later one (the text after a newline) to
 * bw_parse_list_more(), which goes on with the same report: lines are numbered from
 * rep->units + 1 and the counts add up. BW_EINVAL for another format. */
int bw_parse_list_more(enum bw_feed_format format, const char *buf, size_t len, const char *label,
		       bw_rule_sink sink, void *ctx, struct bw_parse_report *rep);

/* RPZ over a file read in pieces, so that the whole file need not be in memory:
 * bw_rpz_begin(), then bw_rpz_feed() on the text not yet consumed with more read after it,
 * then bw_rpz_end() (frees). A feed parses the lines of buf[0..len) up to the last one that
 * ends outside parentheses, quotes and comments and sets *used to their length (possibly
 * 0): the caller keeps the rest and passes it again, at the start of the next buffer, with
 * the text that follows. With `last` the whole buffer is parsed (the end of the file).
 * Line numbers, $ORIGIN, $TTL, the last owner and the apex carry over; the report
 * (cleared by bw_rpz_begin) adds up over the pieces as for one bw_parse_rpz() call, which
 * is the same thing on one buffer. Returns 0, BW_ENOMEM or the sink's error, after which
 * later feeds parse nothing. */
struct bw_rpz;
int bw_rpz_begin(struct bw_rpz **z, const char *label, bw_rule_sink sink, void *ctx,
		 struct bw_parse_report *rep);
int bw_rpz_feed(struct bw_rpz *z, const char *buf, size_t len, bool last, size_t *used);
void bw_rpz_end(struct bw_rpz *z);
/* One record of an RPZ zone whose apex is `apex` (lower-cased wire, like `owner`, both
 * absolute) to its rule, with the semantics above: the one conversion behind the zone-file
 * parser and zone transfers (feeds/xfr.h). rdata is uncompressed wire with absolute names.
 * Returns 1 with the rule in *r (its pointers into buf, owner and rdata: valid while they
 * are), 0 for a record at the apex (not policy), or -1 with *why (a static string). The
 * rule's line, ref, title and cname_exclusive are left 0 for the caller. */
struct bw_rpz_rr_buf {
	uint8_t name[256], target[256];
	struct bw_rule_rr rr;
};
int bw_rpz_rr_rule(const uint8_t *apex, size_t apex_len, const uint8_t *owner, size_t olen,
		   uint16_t type, uint32_t ttl, const uint8_t *rdata, size_t rdlen,
		   struct bw_rpz_rr_buf *buf, struct bw_rule *r, const char **why);
/* One record as a master-file line ("owner ttl IN TYPE rdata", absolute names; RFC 3597
 * "TYPEn \\# len hex" for types without a presentation form here), which bw_parse_rpz()
 * reads back. Defined in export.c. Returns 0, BW_EINVAL (bad owner) or BW_EIO. */
#include <stdio.h>
int bw_rpz_write_rr(FILE *f, const uint8_t *owner, size_t owner_len, uint16_t type, uint32_t ttl,
		    const uint8_t *rdata, size_t rdlen);
int bw_parse_stix(const char *buf, size_t len, const char *label, int64_t now, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep);
/* non_ids: use attributes without to_ids too (the feed's misp-include-non-ids). */
int bw_parse_misp(const char *buf, size_t len, const char *label, bool non_ids, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep);

/* Feed bytes to rules, the one place for every caller (feed_read.c): the parser of fc's
 * format (STIX validity windows: now) over a whole feed in memory, which may be
 * gzip-compressed (magic bytes 1f 8b; inflated as it is parsed, up to max-size for a
 * fetched feed, 1 GiB for a local file, 256 MiB for JSON). Compressed data that is
 * corrupt, truncated or expands past its limit makes the report broken (too_big for the
 * limit). Returns 0, the sink's error, or BW_ENOMEM. */
int bw_parse_feed(const struct bw_feed_conf *fc, const char *buf, size_t len, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep);
/* The same over the file fc->file, read in pieces (the text formats are parsed as they
 * come; the file is never in memory whole). Returns 0, or the errors of
 * bw_feed_read_file() (BW_EIO with errno, BW_ERANGE for a file over 1 GiB, BW_ENOMEM);
 * a read error after some rules leaves them given to the sink: the caller drops them.
 * *prc: the parse's result (0, or the sink's error); *mtime_ns and *size: the file's. */
int bw_parse_feed_file(const struct bw_feed_conf *fc, bw_rule_sink sink, void *ctx,
		       struct bw_parse_report *rep, uint64_t *mtime_ns, uint64_t *size, int *prc);
/* Does buf start with the gzip magic bytes? */
bool bw_feed_is_gzip(const char *buf, size_t len);

/* ---- feed health (health.c): when a parse is a failed load, and when a version shrank ----
 * One rule for every feed, local file or fetched (docs/feeds.md, "Feed health"). A parse is
 * a FAILED load when it is broken (rep->broken: not JSON, corrupt gzip, ...), when it
 * gave no entry at all while it had bad units, or when it has at least fc->min_bad bad
 * units and more than fc->max_bad_ratio of its units (entries + bad) are bad. A conf not
 * made by the loader (min_bad 0) gets the defaults: 10 and 0.5. */
enum bw_feed_health {
	BW_HEALTH_OK = 0,
	BW_HEALTH_BROKEN,   /* structurally unusable */
	BW_HEALTH_NO_ENTRY, /* not one entry, only bad units */
	BW_HEALTH_TOO_BAD,  /* too large a share of bad units */
};
enum bw_feed_health bw_feed_health(const struct bw_feed_conf *fc, uint64_t entries, uint64_t bad,
				   bool broken);
/* The reason, for logs and status: what failed, with the first bad unit's "file:line:
 * reason" from rep (may be NULL). */
void bw_feed_health_why(enum bw_feed_health h, const struct bw_feed_conf *fc, uint64_t entries,
			uint64_t bad, const struct bw_parse_report *rep, char *out, size_t outlen);
/* The shrink check: has a version with `entries` fewer than fc->min_ratio times the
 * `last` entries of the last accepted one (min_ratio 0: never; last 0: never)? An empty
 * version counts as a shrink. */
bool bw_feed_shrunk(const struct bw_feed_conf *fc, uint64_t entries, uint64_t last);
/* `bulwark --check-config`: parses the feed's file as a load would (a fetched feed: its
 * last good copy, if there is one) and judges it by bw_feed_health(). Returns 0 (with
 * *entries), BW_ENOENT (a fetched feed without a copy: nothing to check), BW_EMALFORMED
 * (a failed load) or BW_EIO (unreadable) with why, or BW_ENOMEM. */
int bw_feed_check_file(const struct bw_feed_conf *fc, uint64_t *entries, char *why,
		       size_t whylen);

/* ---- entries, counted as the snapshot counts them (rset.c) ----
 * A feed's "entries" everywhere (logs, metadata, metrics, bulwarkctl, max-entries) are the
 * distinct keys it has rules for: a name (its exact and its wildcard rule are one entry,
 * as a list line's two rules are), a name server name, a network. A counter is a set of
 * 64-bit keyed hashes (SipHash under a random key: a feed cannot aim collisions at it),
 * 16-32 bytes an entry while it is counted. Not thread-safe; one per parse. */
struct bw_entry_count;
struct bw_entry_count *bw_entry_count_new(void); /* NULL: out of memory */
void bw_entry_count_free(struct bw_entry_count *c);
/* Counts r's key once. Returns 0 or BW_ENOMEM. */
int bw_entry_count_add(struct bw_entry_count *c, const struct bw_rule *r);
uint64_t bw_entry_count_get(const struct bw_entry_count *c);

/* ---- shared by the threat-intel parsers (parse_stix.c, parse_misp.c) ---- */

/* Largest JSON feed accepted: the parsed tree takes several times the text. */
#define BW_JSON_FEED_MAX ((size_t)256 << 20)

enum bw_ioc_kind {
	BW_IOC_DOMAIN, /* "name" or "*.name": QNAME + WILDCARD (WILDCARD only for "*.") */
	BW_IOC_URL,    /* the URL's host: a name as DOMAIN, an IP literal as a /32 or /128 */
	BW_IOC_IP,     /* "a.b.c.d", "v6", optionally "/prefix": one RESPONSE_IP rule */
};

/* Emits the NXDOMAIN rules for one indicator value (not NUL-terminated; a domain that is an
 * IP literal becomes an IP rule). Counts emitted rules in rep->rules. Returns 1 when rules
 * were emitted, 0 when the value is unusable (*reason: a static string), or the sink's
 * negative error. Defined in parse_stix.c. */
int bw_rule_emit_ioc(enum bw_ioc_kind kind, const char *val, size_t len, const char *ref,
		     const char *title, bw_rule_sink sink, void *ctx, struct bw_parse_report *rep,
		     const char **reason);

/* Starts a JSON feed's report (zeroed) and parses the text with jansson (size-capped, NUL
 * bytes allowed, last duplicate key wins). Returns the tree (json_decref() it), or NULL
 * with the feed marked broken and the reason reported. `kind` names the format in
 * messages ("STIX", "MISP"). Defined in parse_stix.c. */
struct json_t;
struct json_t *bw_json_feed_load(const char *buf, size_t len, const char *label, const char *kind,
				 struct bw_parse_report *rep);

#endif
