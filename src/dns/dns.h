/*
 * dns/dns.h - the DNS wire format: strict zero-copy query parsing, names, EDNS(0), EDE,
 * and answer assembly.
 *
 * Owns: nothing beyond the caller's buffers. Every function works on memory the caller
 * passes in; nothing here allocates. All functions are thread-safe (no global state).
 *
 * Vocabulary:
 *  - a "query" (struct bw_query) is what we keep of a client's question: ID, flags, the
 *    question name in the client's original case and lower-cased, QTYPE/QCLASS, EDNS.
 *  - an "answer" is the part of a response after the question and without the OPT RR:
 *    the answer, authority and additional records, with compression pointers that are
 *    valid when the body is placed right after a question of the same name length
 *    (pointers only ever target the question name at offset 12 or earlier body bytes).
 *    struct bw_answer_meta describes it (rcode, flags, counts, where the TTLs are). The
 *    packet cache stores exactly (meta, body); bw_answer_write() turns it into a
 *    response for a particular query: ID, original-case question, aged TTLs, OPT, EDE,
 *    truncation.
 *
 * Limits are the protocol's: names up to 255 bytes, labels up to 63, messages up to
 * 65535 bytes. Parsing rejects the whole message when anything is odd (STYLE rule 16).
 */
#ifndef BW_DNS_H
#define BW_DNS_H

#include "base/base.h"

#define BW_DNS_HDR 12
#define BW_DNS_MAXNAME 255
#define BW_DNS_MAXLABELS 128
#define BW_DNS_EDNS_SIZE 1232 /* the UDP size we advertise (DNS flag day 2020) */
#define BW_DNS_MAXMSG 65535

/* header flags (second 16-bit word) */
#define BW_DNS_QR 0x8000
#define BW_DNS_AA 0x0400
#define BW_DNS_TC 0x0200
#define BW_DNS_RD 0x0100
#define BW_DNS_RA 0x0080
#define BW_DNS_AD 0x0020
#define BW_DNS_CD 0x0010
#define BW_DNS_OPCODE(f) (((f) >> 11) & 0xf)

enum bw_rcode {
	BW_RCODE_NOERROR = 0,
	BW_RCODE_FORMERR = 1,
	BW_RCODE_SERVFAIL = 2,
	BW_RCODE_NXDOMAIN = 3,
	BW_RCODE_NOTIMP = 4,
	BW_RCODE_REFUSED = 5,
	BW_RCODE_BADVERS = 16, /* extended: needs OPT */
};

enum bw_rrtype {
	BW_T_A = 1, BW_T_NS = 2, BW_T_CNAME = 5, BW_T_SOA = 6, BW_T_PTR = 12, BW_T_HINFO = 13,
	BW_T_MX = 15, BW_T_TXT = 16, BW_T_AAAA = 28, BW_T_SRV = 33, BW_T_DNAME = 39,
	BW_T_OPT = 41, BW_T_DS = 43, BW_T_RRSIG = 46, BW_T_NSEC = 47, BW_T_DNSKEY = 48,
	BW_T_NSEC3 = 50, BW_T_NSEC3PARAM = 51, BW_T_SVCB = 64, BW_T_HTTPS = 65,
	BW_T_IXFR = 251, BW_T_AXFR = 252, BW_T_ANY = 255,
};
#define BW_C_IN 1

/* Extended DNS Errors, RFC 8914 */
enum bw_ede {
	BW_EDE_NONE = 0xffff,
	BW_EDE_OTHER = 0,
	BW_EDE_DNSSEC_BOGUS = 6,
	BW_EDE_STALE_ANSWER = 3,
	BW_EDE_BLOCKED = 15,
	BW_EDE_CENSORED = 16,
	BW_EDE_FILTERED = 17,
	BW_EDE_PROHIBITED = 18,
	BW_EDE_NOT_READY = 14,
	BW_EDE_NO_REACHABLE_AUTHORITY = 22,
	BW_EDE_NETWORK_ERROR = 23,
};

/* What we keep of a client's query. Filled by bw_query_parse(); plain data, copyable. */
struct bw_query {
	uint16_t id;
	uint16_t flags;     /* header flags as received (RD and CD are echoed) */
	uint16_t qtype;
	uint16_t qclass;
	uint16_t qname_len; /* wire length including the root label; 0 if not parsed */
	uint8_t nlabels;    /* labels, not counting the root */
	bool has_edns;
	bool do_bit;
	bool has_padding;   /* the client sent an EDNS padding option (RFC 7830) */
	bool has_mac;       /* an EDNS option 65001 with 6 bytes: the MAC address a router
			       (dnsmasq add-mac) put in; anyone can claim one */
	uint8_t mac[6];
	uint8_t edns_version;
	uint16_t udp_size;  /* client's advertised UDP size (512 without EDNS, min 512) */
	uint8_t qname[BW_DNS_MAXNAME];    /* as received (uncompressed, original case) */
	uint8_t qname_lc[BW_DNS_MAXNAME]; /* lower-cased (ASCII A-Z only) */
};

/*
 * Parses a query message. Returns:
 *   0              a well-formed query; *q filled.
 *   BW_ESHORT      fewer than 12 bytes, or QR set (a response): drop silently.
 *   BW_EMALFORMED  the header parsed (q->id, q->flags valid, qname_len may be 0) but the
 *                  rest did not: answer FORMERR.
 *   BW_ENOTSUP     opcode is not QUERY: answer NOTIMP.
 * q->edns_version != 0 with 0 return: the caller answers BADVERS.
 * Rules: QDCOUNT must be 1, ANCOUNT and NSCOUNT 0; the question name must not be
 * compressed; the additional section may hold at most one OPT (owner root) and other
 * records (e.g. TSIG) which are skipped; unknown EDNS options are ignored; trailing
 * bytes after the counted records are an error.
 */
int bw_query_parse(const uint8_t *pkt, size_t len, struct bw_query *q);

/* ---- names (wire form, uncompressed) ---- */
/* Lower-cases an uncompressed wire name of length len into out (same length). */
void bw_name_lower(uint8_t *out, const uint8_t *name, size_t len);
/* Length of an uncompressed wire name at p (bounded by max), or a negative BW_E*. */
int bw_name_len(const uint8_t *p, size_t max);
/* Reads a possibly compressed name at the cursor, writing it uncompressed into out
 * (BW_DNS_MAXNAME bytes). Pointers must point strictly backwards and loops are
 * impossible. Returns the uncompressed length, or a negative BW_E* (cursor error set). */
int bw_name_unpack(struct bw_cursor *c, uint8_t *out);
/* Text form ("www.example.org." with \DDD escapes) of a wire name; returns the text
 * length or BW_ESPACE. "." for the root. out needs at most 4*255+1 bytes. */
int bw_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap);
/* Parses a text name ("example.org", trailing dot optional) into lower-cased wire form.
 * Returns the wire length or a negative BW_E* (empty labels, label > 63, name > 255). */
int bw_name_from_text(const char *text, size_t tlen, uint8_t *out);
/* A query type as people write it ("A", "aaaa", "HTTPS", "TYPE65"): 0 with *out, or
 * BW_EINVAL. */
int bw_type_from_text(const char *s, uint16_t *out);
/* Next suffix: given a wire name, the offset of its parent (skipping the first label);
 * returns len for the root. */
static inline size_t bw_name_parent(const uint8_t *name, size_t off)
{
	return off + 1 + name[off];
}

/* ---- answers ---- */
#define BW_ANSWER_MAXTTL 96 /* TTL fields tracked for ageing; more records: not cached */
struct bw_answer_meta {
	uint8_t rcode;      /* 4-bit rcode */
	uint8_t secure;     /* 0 insecure, 1 bogus, 2 secure (DNSSEC validation result) */
	uint16_t flags;     /* extra header flags to set: BW_DNS_AD, BW_DNS_AA */
	uint16_t ancount, nscount, arcount; /* arcount excludes the OPT we add */
	uint16_t ede;       /* EDE code to attach (BW_EDE_NONE for none) */
	uint16_t body_len;
	uint16_t nttl;      /* number of TTL fields in ttl_off */
	uint32_t ttl;       /* TTL for caching (min of all, RFC 2308 rule for negatives) */
	uint16_t ttl_off[BW_ANSWER_MAXTTL]; /* offsets of 32-bit TTL fields within the body */
	char ede_text[80];  /* EDE EXTRA-TEXT, NUL-terminated ("" for none) */
};

/* Names found in the answer section for the policy's post-check: every owner name and
 * every CNAME/DNAME target, lower-cased wire form. */
#define BW_CHAIN_MAX 16
struct bw_chain {
	uint8_t n;
	uint8_t len[BW_CHAIN_MAX];
	uint8_t name[BW_CHAIN_MAX][BW_DNS_MAXNAME];
};

/*
 * Turns a complete upstream response (e.g. from libunbound) into (meta, body) for the
 * query q: checks that the question matches q (case-insensitively), copies the
 * answer/authority/additional records, decompressing every name and recompressing it
 * only against the question name, drops the OPT RR, and drops DNSSEC records
 * (RRSIG, NSEC, NSEC3) unless `dnssec_ok` or they are what q asked for. Records the
 * parser cannot understand make the whole message malformed. Fills meta (counts,
 * rcode from the packet, ttl offsets, minimum TTL; for NXDOMAIN/NODATA the RFC 2308
 * negative TTL min(SOA TTL, SOA MINIMUM)) and chain (may be NULL).
 * Returns 0, BW_EMALFORMED, or BW_ESPACE if body (cap bytes) is too small.
 */
int bw_answer_from_wire(const uint8_t *pkt, size_t len, const struct bw_query *q,
			bool dnssec_ok, struct bw_answer_meta *meta, uint8_t *body, size_t cap,
			struct bw_chain *chain);

/* Same, for a body that will not follow the question directly: the name q asked about
 * (uncompressed) sits at offset name_at of the final message and names are compressed
 * against it there. Used to append the answer for a CNAME redirect's target after the
 * synthesized CNAME record, whose RDATA holds that name. */
int bw_answer_from_wire_at(const uint8_t *pkt, size_t len, const struct bw_query *q,
			   bool dnssec_ok, size_t name_at, struct bw_answer_meta *meta,
			   uint8_t *body, size_t cap, struct bw_chain *chain);

/*
 * Writes the response to q from (meta, body) into out:
 *   header: q's ID, QR, RD and CD echoed from q, RA, meta->flags, meta->rcode;
 *   question: q's original-case name, qtype, qclass;
 *   body with every TTL field reduced by `age` seconds (not below 0), or set to
 *   `ttl_override` when it is not 0 (serve-stale answers use 30);
 *   an OPT RR when the query had EDNS: UDP size BW_DNS_EDNS_SIZE, DO echoed, version 0,
 *   an EDE option when meta->ede != BW_EDE_NONE.
 * If the result is larger than `limit` (the client's UDP size, or 65535 for TCP), writes
 * instead a truncated response: header with TC=1 and all section counts 0 except the
 * question (and the OPT). Returns the length written, or BW_ESPACE if out is too small.
 */
int bw_answer_write(const struct bw_query *q, const struct bw_answer_meta *meta,
		    const uint8_t *body, uint32_t age, uint32_t ttl_override, size_t limit,
		    uint8_t *out, size_t cap);

/*
 * Writes an answer with no records: rcode (may be extended, e.g. BADVERS), optional EDE
 * (code + text) when the query had EDNS. Used for blocked names (NXDOMAIN + EDE 15),
 * SERVFAIL, REFUSED, NOTIMP and FORMERR. If q->qname_len is 0 (question unparsed) the
 * question section is empty. Returns length or BW_ESPACE.
 */
int bw_answer_error(const struct bw_query *q, uint16_t rcode, uint16_t ede, const char *ede_text,
		    uint8_t *out, size_t cap);

/* Fills meta/body with the RFC 8482 minimal answer to QTYPE ANY: one HINFO "RFC8482" ""
 * record for the question name (TTL 3600). Returns 0 or BW_ESPACE. */
int bw_answer_any(const struct bw_query *q, struct bw_answer_meta *meta, uint8_t *body,
		  size_t cap);

/* ---- answers made up by policy (synth.c) ---- */
/* Local data for q from packed records {type u16, ttl u32, rdlen u16, rdata} (owner: the
 * question name): the records of q's type, or the CNAME if there is one; none -> NODATA
 * with TTL neg_ttl. Returns 0, BW_EMALFORMED (bad packing) or BW_ESPACE. */
int bw_answer_synth_local(const struct bw_query *q, const uint8_t *rrs, size_t rrs_len,
			  uint16_t n_rrs, uint32_t neg_ttl, struct bw_answer_meta *m, uint8_t *body,
			  size_t cap);
/* A CNAME from the question name to target (wire); with wildcard, to <qname>.<target>. */
int bw_answer_synth_cname(const struct bw_query *q, const uint8_t *target, size_t target_len,
			  bool wildcard, uint32_t ttl, struct bw_answer_meta *m, uint8_t *body,
			  size_t cap);
/* Calls fn(ctx, 4 or 6, address bytes) for every A/AAAA record of the answer section of a
 * body; stops and returns 1 when fn returns true, 0 after the last, BW_EMALFORMED. */
int bw_answer_addrs(const struct bw_answer_meta *m, const uint8_t *body,
		    bool (*fn)(void *ctx, int family, const uint8_t *addr), void *ctx);

/* Initialises meta to an empty NOERROR answer with no EDE. */
void bw_answer_meta_init(struct bw_answer_meta *meta);

#endif
