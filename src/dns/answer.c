/*
 * dns/answer.c - answer bodies: built from an upstream response (bw_answer_from_wire),
 * synthesised (bw_answer_any), and written out for a particular query (bw_answer_write,
 * bw_answer_error).
 *
 * A body is the records after the question, without the OPT RR. Its names are either
 * uncompressed or end in a pointer into the question name, which always sits at offset
 * 12 with the same length as the query the body was built for, so the body can be copied
 * behind any question of that name (in any letter case) and its pointers stay valid.
 * See docs/internals/wire.md.
 */
#include "dns/dns.h"

#define EDNS_OPT_EDE 15
#define OPT_RR_LEN 11     /* root owner, type, class, TTL, RDLENGTH */
#define EDE_TEXT_MAX 1024 /* cap on the EXTRA-TEXT we put into an error answer */

/* RR types whose RDATA holds names we must decompress (obsolete RFC 1035 ones included
 * because RFC 3597 lets senders compress them) */
enum {
	T_MD = 3, T_MF = 4, T_MB = 7, T_MG = 8, T_MR = 9, T_MINFO = 14,
};

void bw_answer_meta_init(struct bw_answer_meta *meta)
{
	memset(meta, 0, sizeof(*meta));
	meta->ede = BW_EDE_NONE;
}

/* ---- a bounded writer; `err` is sticky like the cursor's ---- */
struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool err;
};

static inline void put(struct wbuf *w, const void *d, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = true;
		return;
	}
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

static inline void put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2];
	bw_put16(b, v);
	put(w, b, 2);
}

static inline void put32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];
	bw_put32(b, v);
	put(w, b, 4);
}

/* ---- the question we compress against ---- */
struct qctx {
	const uint8_t *lc; /* lower-cased question name */
	size_t len;
	size_t at;         /* where that name sits in the final message (12: the question) */
	uint8_t boundary[(BW_DNS_MAXNAME + 7) / 8]; /* bit set: a label starts here */
};

static void qctx_init(struct qctx *qc, const struct bw_query *q)
{
	qc->lc = q->qname_lc;
	qc->len = q->qname_len;
	qc->at = BW_DNS_HDR;
	memset(qc->boundary, 0, sizeof(qc->boundary));
	for (size_t o = 0; o < qc->len && q->qname_lc[o] != 0; o = bw_name_parent(q->qname_lc, o))
		qc->boundary[o >> 3] |= (uint8_t)(1u << (o & 7));
}

static inline bool qctx_is_label(const struct qctx *qc, size_t off)
{
	return (qc->boundary[off >> 3] >> (off & 7)) & 1;
}

/*
 * Writes an uncompressed name (len bytes, lc its lower-cased copy). With `compress`,
 * the longest suffix it shares with the question name on label boundaries is replaced
 * by a pointer into the question at offset 12.
 */
static void put_name(struct wbuf *w, const uint8_t *name, const uint8_t *lc, size_t len,
		     const struct qctx *qc, bool compress)
{
	if (compress) {
		for (size_t o = 0; name[o] != 0; o = bw_name_parent(name, o)) {
			size_t s = len - o;
			if (s > qc->len || !qctx_is_label(qc, qc->len - s))
				continue;
			if (memcmp(lc + o, qc->lc + qc->len - s, s) != 0)
				continue;
			put(w, name, o);
			put16(w, (uint16_t)(0xc000 | (qc->at + qc->len - s)));
			return;
		}
	}
	put(w, name, len);
}

/* Reads a (possibly compressed) name from the RDATA cursor and writes it back. */
static int copy_name(struct bw_cursor *rc, struct wbuf *w, const struct qctx *qc, bool compress,
		     uint8_t *lc_out, int *lc_len)
{
	uint8_t name[BW_DNS_MAXNAME], lc[BW_DNS_MAXNAME];
	int n = bw_name_unpack(rc, name);

	if (n < 0)
		return BW_EMALFORMED;
	bw_name_lower(lc, name, (size_t)n);
	put_name(w, name, lc, (size_t)n, qc, compress);
	if (lc_out) {
		memcpy(lc_out, lc, (size_t)n);
		*lc_len = n;
	}
	return 0;
}

static void copy_bytes(struct bw_cursor *rc, struct wbuf *w, size_t n)
{
	if (!bw_cursor_need(rc, n))
		return;
	put(w, bw_cursor_ptr(rc), n);
	bw_cursor_skip(rc, n);
}

static void chain_add(struct bw_chain *chain, const uint8_t *lc, size_t len)
{
	if (!chain)
		return;
	for (unsigned i = 0; i < chain->n; i++)
		if (chain->len[i] == len && memcmp(chain->name[i], lc, len) == 0)
			return;
	if (chain->n >= BW_CHAIN_MAX)
		return;
	chain->len[chain->n] = (uint8_t)len;
	memcpy(chain->name[chain->n], lc, len);
	chain->n++;
}

/* What one record told us beyond its bytes. */
struct rrinfo {
	uint8_t target[BW_DNS_MAXNAME]; /* CNAME/DNAME target, lower-cased */
	int target_len;                 /* 0: none */
	bool soa;
	uint32_t soa_minimum;
};

/*
 * Rewrites one record's RDATA from pkt[start, end) into w: names decompressed (and
 * recompressed against the question for the RFC 1035 types), the rest verbatim.
 */
static int copy_rdata(const uint8_t *pkt, size_t start, size_t end, uint16_t type,
		      struct wbuf *w, const struct qctx *qc, struct rrinfo *ri)
{
	struct bw_cursor rc = { .base = pkt, .len = end, .pos = start, .error = 0 };
	int r = 0;

	switch (type) {
	case BW_T_NS:
	case BW_T_PTR:
	case T_MD:
	case T_MF:
	case T_MB:
	case T_MG:
	case T_MR:
		r = copy_name(&rc, w, qc, true, NULL, NULL);
		break;
	case BW_T_CNAME:
		r = copy_name(&rc, w, qc, true, ri->target, &ri->target_len);
		break;
	case BW_T_DNAME: /* RFC 6672 2.5: the target is never sent compressed */
		r = copy_name(&rc, w, qc, false, ri->target, &ri->target_len);
		break;
	case BW_T_MX:
		copy_bytes(&rc, w, 2);
		r = copy_name(&rc, w, qc, true, NULL, NULL);
		break;
	case T_MINFO:
		r = copy_name(&rc, w, qc, true, NULL, NULL);
		if (r == 0)
			r = copy_name(&rc, w, qc, true, NULL, NULL);
		break;
	case BW_T_SOA:
		r = copy_name(&rc, w, qc, true, NULL, NULL);
		if (r == 0)
			r = copy_name(&rc, w, qc, true, NULL, NULL);
		if (r == 0 && bw_cursor_need(&rc, 20)) {
			ri->soa = true;
			ri->soa_minimum = bw_get32(bw_cursor_ptr(&rc) + 16);
		}
		copy_bytes(&rc, w, 20);
		break;
	case BW_T_SRV: /* RFC 2782: the target is not compressed */
		copy_bytes(&rc, w, 6);
		r = copy_name(&rc, w, qc, false, NULL, NULL);
		break;
	case BW_T_RRSIG: /* RFC 4034 3.1.7: the signer's name is not compressed */
		copy_bytes(&rc, w, 18);
		r = copy_name(&rc, w, qc, false, NULL, NULL);
		break;
	case BW_T_NSEC: /* RFC 4034 4.1.1: the next name is not compressed */
		r = copy_name(&rc, w, qc, false, NULL, NULL);
		break;
	default: /* RFC 3597: opaque */
		break;
	}
	if (r < 0 || rc.error)
		return BW_EMALFORMED;
	copy_bytes(&rc, w, rc.len - rc.pos); /* the rest of the RDATA, verbatim */
	return 0;
}

static inline bool is_dnssec_type(uint16_t type)
{
	return type == BW_T_RRSIG || type == BW_T_NSEC || type == BW_T_NSEC3;
}

int bw_answer_from_wire(const uint8_t *pkt, size_t len, const struct bw_query *q,
			bool dnssec_ok, struct bw_answer_meta *meta, uint8_t *body, size_t cap,
			struct bw_chain *chain)
{
	return bw_answer_from_wire_at(pkt, len, q, dnssec_ok, BW_DNS_HDR, meta, body, cap, chain);
}

int bw_answer_from_wire_at(const uint8_t *pkt, size_t len, const struct bw_query *q,
			   bool dnssec_ok, size_t name_at, struct bw_answer_meta *meta,
			   uint8_t *body, size_t cap, struct bw_chain *chain)
{
	struct bw_cursor c;
	struct qctx qc;
	struct rrinfo ri;
	uint8_t name[BW_DNS_MAXNAME], lc[BW_DNS_MAXNAME];
	struct wbuf w = { .p = body, .len = 0, .cap = BW_MIN(cap, BW_DNS_MAXMSG), .err = false };
	uint16_t count[3], copied[3] = { 0, 0, 0 };
	uint32_t min_ttl = UINT32_MAX, neg_ttl = UINT32_MAX;
	bool ttl_overflow = false, seen_opt = false;
	int n;

	bw_answer_meta_init(meta);
	if (chain)
		chain->n = 0;
	if (q->qname_len == 0 || q->qname_len > BW_DNS_MAXNAME)
		return BW_EINVAL;
	bw_cursor_init(&c, pkt, len);
	bw_cursor_skip(&c, 2); /* ID */
	uint16_t flags = bw_cursor_u16(&c);
	uint16_t qdcount = bw_cursor_u16(&c);
	for (int s = 0; s < 3; s++)
		count[s] = bw_cursor_u16(&c);
	if (c.error || qdcount != 1)
		return BW_EMALFORMED;

	/* the question must be the one we asked */
	n = bw_name_unpack(&c, name);
	uint16_t qtype = bw_cursor_u16(&c);
	uint16_t qclass = bw_cursor_u16(&c);
	if (n < 0 || c.error || (size_t)n != q->qname_len || qtype != q->qtype ||
	    qclass != q->qclass)
		return BW_EMALFORMED;
	bw_name_lower(lc, name, (size_t)n);
	if (memcmp(lc, q->qname_lc, (size_t)n) != 0)
		return BW_EMALFORMED;
	qctx_init(&qc, q);
	if (name_at < BW_DNS_HDR || name_at + q->qname_len > 0x3fff)
		return BW_EINVAL;
	qc.at = name_at;

	for (int s = 0; s < 3; s++) {
		for (unsigned i = 0; i < count[s]; i++) {
			n = bw_name_unpack(&c, name);
			uint16_t type = bw_cursor_u16(&c);
			uint16_t klass = bw_cursor_u16(&c);
			uint32_t ttl = bw_cursor_u32(&c);
			uint16_t rdlen = bw_cursor_u16(&c);
			if (n < 0 || c.error || !bw_cursor_need(&c, rdlen))
				return BW_EMALFORMED;
			size_t rdstart = c.pos;
			bw_cursor_skip(&c, rdlen);
			bw_name_lower(lc, name, (size_t)n);
			if (type == BW_T_OPT) { /* the upstream's OPT: ours is added when written */
				if (s != 2 || seen_opt || n != 1)
					return BW_EMALFORMED;
				seen_opt = true;
				continue;
			}
			if (s == 0)
				chain_add(chain, lc, (size_t)n);
			if (is_dnssec_type(type) && !dnssec_ok && type != q->qtype)
				continue;
			if (ttl & 0x80000000u) /* RFC 2181 8: treat as 0 */
				ttl = 0;

			put_name(&w, name, lc, (size_t)n, &qc, true);
			put16(&w, type);
			put16(&w, klass);
			if (!w.err) {
				if (meta->nttl < BW_ANSWER_MAXTTL)
					meta->ttl_off[meta->nttl++] = (uint16_t)w.len;
				else
					ttl_overflow = true;
			}
			put32(&w, ttl);
			size_t rdlen_off = w.len;
			put16(&w, 0);
			ri.target_len = 0;
			ri.soa = false;
			ri.soa_minimum = 0;
			if (copy_rdata(pkt, rdstart, rdstart + rdlen, type, &w, &qc, &ri) < 0)
				return BW_EMALFORMED;
			if (w.err)
				return BW_ESPACE;
			bw_put16(body + rdlen_off, (uint16_t)(w.len - rdlen_off - 2));

			copied[s]++;
			min_ttl = BW_MIN(min_ttl, ttl);
			if (s == 0 && ri.target_len > 0)
				chain_add(chain, ri.target, (size_t)ri.target_len);
			if (s == 1 && ri.soa && neg_ttl == UINT32_MAX) {
				uint32_t m = (ri.soa_minimum & 0x80000000u) ? 0 : ri.soa_minimum;
				neg_ttl = BW_MIN(ttl, m);
			}
		}
	}
	if (c.pos != len) /* trailing bytes */
		return BW_EMALFORMED;

	meta->rcode = (uint8_t)(flags & 0xf);
	meta->ancount = copied[0];
	meta->nscount = copied[1];
	meta->arcount = copied[2];
	meta->body_len = (uint16_t)w.len;
	if (min_ttl == UINT32_MAX) /* no records */
		min_ttl = 0;
	/* RFC 2308 5: a SOA in the authority section bounds how long the negative part
	 * (NXDOMAIN, NODATA, also after a CNAME chain) may be cached */
	if (neg_ttl != UINT32_MAX)
		min_ttl = BW_MIN(min_ttl, neg_ttl);
	meta->ttl = ttl_overflow ? 0 : min_ttl;
	return 0;
}

/* The OPT RR (and EDE option) we append; returns its length. */
static size_t opt_len(uint16_t ede, size_t text_len)
{
	return OPT_RR_LEN + (ede != BW_EDE_NONE ? 4 + 2 + text_len : 0);
}

static void put_opt(struct wbuf *w, uint8_t ext_rcode, bool do_bit, uint16_t ede, const char *text,
		    size_t text_len)
{
	uint8_t b[OPT_RR_LEN + 6];

	b[0] = 0;
	bw_put16(b + 1, BW_T_OPT);
	bw_put16(b + 3, BW_DNS_EDNS_SIZE);
	bw_put32(b + 5, ((uint32_t)ext_rcode << 24) | (do_bit ? 0x8000u : 0));
	if (ede == BW_EDE_NONE) {
		bw_put16(b + 9, 0);
		put(w, b, OPT_RR_LEN);
		return;
	}
	bw_put16(b + 9, (uint16_t)(6 + text_len));
	bw_put16(b + 11, EDNS_OPT_EDE);
	bw_put16(b + 13, (uint16_t)(2 + text_len));
	bw_put16(b + 15, ede);
	put(w, b, sizeof(b));
	put(w, text, text_len);
}

static void put_header(struct wbuf *w, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
		       uint16_t ns, uint16_t ar)
{
	uint8_t b[BW_DNS_HDR];

	bw_put16(b, id);
	bw_put16(b + 2, flags);
	bw_put16(b + 4, qd);
	bw_put16(b + 6, an);
	bw_put16(b + 8, ns);
	bw_put16(b + 10, ar);
	put(w, b, sizeof(b));
}

static void put_question(struct wbuf *w, const struct bw_query *q)
{
	put(w, q->qname, q->qname_len);
	put16(w, q->qtype);
	put16(w, q->qclass);
}

int bw_answer_write(const struct bw_query *q, const struct bw_answer_meta *meta,
		    const uint8_t *body, uint32_t age, uint32_t ttl_override, size_t limit,
		    uint8_t *out, size_t cap)
{
	struct wbuf w = { .p = out, .len = 0, .cap = BW_MIN(cap, BW_DNS_MAXMSG), .err = false };
	size_t text_len = 0, opt = 0;
	uint16_t flags;

	if (q->qname_len == 0 || q->qname_len > BW_DNS_MAXNAME)
		return BW_EINVAL;
	if (q->has_edns) {
		if (meta->ede != BW_EDE_NONE)
			text_len = strnlen(meta->ede_text, sizeof(meta->ede_text));
		opt = opt_len(meta->ede, text_len);
	}
	/* opcode 0; of meta->flags only AA and AD mean something here */
	flags = (uint16_t)(BW_DNS_QR | BW_DNS_RA | (meta->flags & (BW_DNS_AA | BW_DNS_AD)) |
			   (q->flags & (BW_DNS_RD | BW_DNS_CD)) | (meta->rcode & 0xf));
	size_t full = BW_DNS_HDR + q->qname_len + 4 + (size_t)meta->body_len + opt;
	if (full > limit) {
		put_header(&w, q->id, flags | BW_DNS_TC, 1, 0, 0, q->has_edns ? 1 : 0);
		put_question(&w, q);
	} else {
		put_header(&w, q->id, flags, 1, meta->ancount, meta->nscount,
			   (uint16_t)(meta->arcount + (q->has_edns ? 1 : 0)));
		put_question(&w, q);
		size_t at = w.len;
		put(&w, body, meta->body_len);
		if (w.err)
			return BW_ESPACE;
		uint8_t *b = out + at;
		for (unsigned i = 0; i < meta->nttl && i < BW_ANSWER_MAXTTL; i++) {
			size_t off = meta->ttl_off[i];
			if (bw_fails(off + 4 <= meta->body_len))
				continue;
			uint32_t t = ttl_override;
			if (t == 0) {
				t = bw_get32(b + off);
				t = t > age ? t - age : 0;
			}
			bw_put32(b + off, t);
		}
	}
	if (q->has_edns)
		put_opt(&w, (uint8_t)(meta->rcode >> 4), q->do_bit, meta->ede, meta->ede_text,
			text_len);
	if (w.err)
		return BW_ESPACE;
	return (int)w.len;
}

int bw_answer_error(const struct bw_query *q, uint16_t rcode, uint16_t ede, const char *ede_text,
		    uint8_t *out, size_t cap)
{
	struct wbuf w = { .p = out, .len = 0, .cap = BW_MIN(cap, BW_DNS_MAXMSG), .err = false };
	bool question = q->qname_len != 0 && q->qname_len <= BW_DNS_MAXNAME;
	size_t text_len = 0;

	if (ede_text == NULL)
		ede_text = "";
	if (ede != BW_EDE_NONE)
		text_len = strnlen(ede_text, EDE_TEXT_MAX);
	/* the opcode is echoed (RFC 1035 4.1.1), so a NOTIMP answer matches its query */
	uint16_t echo = q->flags & (0x7800 | BW_DNS_RD | BW_DNS_CD);
	uint16_t flags = (uint16_t)(BW_DNS_QR | BW_DNS_RA | echo | (rcode & 0xf));
	put_header(&w, q->id, flags, question ? 1 : 0, 0, 0, q->has_edns ? 1 : 0);
	if (question)
		put_question(&w, q);
	if (q->has_edns)
		put_opt(&w, (uint8_t)(rcode >> 4), q->do_bit, ede, ede_text, text_len);
	if (w.err)
		return BW_ESPACE;
	return (int)w.len;
}

int bw_answer_any(const struct bw_query *q, struct bw_answer_meta *meta, uint8_t *body,
		  size_t cap)
{
	static const uint8_t rdata[] = { 7, 'R', 'F', 'C', '8', '4', '8', '2', 0 };
	struct wbuf w = { .p = body, .len = 0, .cap = cap, .err = false };

	bw_answer_meta_init(meta);
	put16(&w, 0xc000 | BW_DNS_HDR); /* the question name */
	put16(&w, BW_T_HINFO);
	put16(&w, q->qclass);
	put32(&w, 3600);
	put16(&w, sizeof(rdata));
	put(&w, rdata, sizeof(rdata));
	if (w.err)
		return BW_ESPACE;
	meta->ancount = 1;
	meta->nttl = 1;
	meta->ttl_off[0] = 6;
	meta->ttl = 3600;
	meta->body_len = (uint16_t)w.len;
	return 0;
}
