/*
 * local/local.c - the table of names answered locally (see local.h): two open-addressing
 * hash tables of wire names, one for exact names (local records and the reverse names of
 * their addresses) and one for zones (forward zones and special-use names), looked up
 * suffix by suffix, from the longest. Records are packed the way the DNS module's
 * bw_answer_synth_local() takes them ({type, ttl, rdlen, rdata}), so answers are encoded
 * by dns/synth.c.
 */
#include "local/local.h"

#include <arpa/inet.h>
#include <stdlib.h>

enum ekind { E_RECORD = 0, E_FORWARD = 1, E_SPECIAL = 2 };

struct entry {
	uint32_t name_off; /* in l->names */
	uint32_t rr_off;   /* packed records in l->rrs (E_RECORD) */
	uint32_t rr_len, rr_cap;
	uint32_t line; /* first record's line in local-records-file (0: the config) */
	int32_t idx;   /* E_FORWARD: zone index; E_SPECIAL: enum bw_special_use */
	uint16_t n_rrs;
	uint8_t name_len;
	uint8_t kind;
	bool is_ptr; /* the reverse name of a local record's address */
	bool capped; /* more than BW_LOCAL_MAX_PER_NAME addresses (warned once) */
};

struct table {
	uint32_t *slots; /* entry index + 1; 0: empty */
	size_t mask;
};

struct bw_local {
	struct entry *e;
	size_t n_e, cap_e;
	uint8_t *names;
	size_t names_len, names_cap;
	uint8_t *rrs;
	size_t rrs_len;
	struct table records, zones;
	unsigned zone_labels; /* labels of the longest zone name: longer suffixes are skipped */
	uint32_t ttl;
	bool special_recurse[BW_SU_COUNT];
};

#define SEED 0x6c6f63616c6e6d73ull

static int table_init(struct table *t, size_t n)
{
	size_t size = 16;
	while (size < n * 2)
		size <<= 1;
	t->slots = calloc(size, sizeof(*t->slots));
	t->mask = size - 1;
	return t->slots ? 0 : BW_ENOMEM;
}

static const uint8_t *ename(const struct bw_local *l, const struct entry *e)
{
	return l->names + e->name_off;
}

/* The entry of name in t, or NULL. */
static const struct entry *table_find(const struct bw_local *l, const struct table *t,
				      const uint8_t *name, size_t len)
{
	for (size_t i = bw_hash(name, len, SEED) & t->mask;; i = (i + 1) & t->mask) {
		uint32_t s = t->slots[i];
		if (!s)
			return NULL;
		const struct entry *e = &l->e[s - 1];
		if (e->name_len == len && !memcmp(ename(l, e), name, len))
			return e;
	}
}

/* The index of name's entry in t, made (kind, idx) when new (*made set). */
static int table_add(struct bw_local *l, struct table *t, const uint8_t *name, size_t len,
		     enum ekind kind, int32_t idx, size_t *out, bool *made)
{
	size_t i = bw_hash(name, len, SEED) & t->mask;
	for (;; i = (i + 1) & t->mask) {
		uint32_t s = t->slots[i];
		if (!s)
			break;
		const struct entry *e = &l->e[s - 1];
		if (e->name_len == len && !memcmp(ename(l, e), name, len)) {
			*out = s - 1;
			*made = false;
			return 0;
		}
	}
	if (l->n_e == l->cap_e) {
		size_t ncap = l->cap_e ? l->cap_e * 2 : 16;
		struct entry *ne = realloc(l->e, ncap * sizeof(*ne));
		if (!ne)
			return BW_ENOMEM;
		l->e = ne;
		l->cap_e = ncap;
	}
	if (l->names_len + len > l->names_cap) {
		size_t ncap = l->names_cap ? l->names_cap * 2 : 1024;
		while (ncap < l->names_len + len)
			ncap *= 2;
		uint8_t *nn = realloc(l->names, ncap);
		if (!nn)
			return BW_ENOMEM;
		l->names = nn;
		l->names_cap = ncap;
	}
	if (l->n_e >= UINT32_MAX - 1 || l->names_len + len > UINT32_MAX)
		return BW_ERANGE;
	struct entry *e = &l->e[l->n_e];
	memset(e, 0, sizeof(*e));
	e->name_off = (uint32_t)l->names_len;
	e->name_len = (uint8_t)len;
	e->kind = (uint8_t)kind;
	e->idx = idx;
	memcpy(l->names + l->names_len, name, len);
	l->names_len += len;
	t->slots[i] = (uint32_t)(l->n_e + 1);
	*out = l->n_e++;
	*made = true;
	return 0;
}

static int wire(const char *text, uint8_t *out)
{
	int n = bw_name_from_text(text, strlen(text), out);
	return n > 0 ? n : BW_EINVAL;
}

/* The reverse name of an address (in-addr.arpa / ip6.arpa), wire form. */
static int reverse_name(const struct bw_local_record *r, uint8_t *out)
{
	char text[80];
	size_t at = 0;
	if (r->family == 4) {
		snprintf(text, sizeof(text), "%u.%u.%u.%u.in-addr.arpa", r->addr[3], r->addr[2],
			 r->addr[1], r->addr[0]);
	} else {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0; i--) {
			text[at++] = hex[r->addr[i] & 15];
			text[at++] = '.';
			text[at++] = hex[r->addr[i] >> 4];
			text[at++] = '.';
		}
		memcpy(text + at, "ip6.arpa", 9);
	}
	return wire(text, out);
}

static size_t alen(int family)
{
	return family == 4 ? 4 : 16;
}

static size_t labels(const uint8_t *name, size_t len)
{
	size_t n = 0;
	for (size_t off = 0; off < len && name[off]; off = bw_name_parent(name, off))
		n++;
	return n;
}

/* Appends one packed record {type, ttl, rdlen, rdata} to e (room was reserved). */
static void put_rr(struct bw_local *l, struct entry *e, uint16_t type, const uint8_t *rdata,
		   size_t rdlen)
{
	uint8_t *p = l->rrs + e->rr_off + e->rr_len;
	bw_put16(p, type);
	bw_put32(p + 2, l->ttl);
	bw_put16(p + 6, (uint16_t)rdlen);
	memcpy(p + 8, rdata, rdlen);
	e->rr_len += (uint32_t)(8 + rdlen);
	e->n_rrs++;
}

/* Has e a record of this type and data already? */
static bool has_rr(const struct bw_local *l, const struct entry *e, uint16_t type,
		   const uint8_t *rdata, size_t rdlen)
{
	for (size_t off = 0; off < e->rr_len;) {
		const uint8_t *p = l->rrs + e->rr_off + off;
		uint16_t len = bw_get16(p + 6);
		if (bw_get16(p) == type && len == rdlen && !memcmp(p + 8, rdata, rdlen))
			return true;
		off += 8u + len;
	}
	return false;
}

static int build_records(struct bw_local *l, const struct bw_conf *conf)
{
	const struct bw_local_record *recs = conf->local.records;
	size_t n = conf->local.n_records, idx, total = 0;
	uint8_t w[BW_DNS_MAXNAME], rv[BW_DNS_MAXNAME];
	bool made;
	int rc, wl, rl;

	if ((rc = table_init(&l->records, 2 * n)))
		return rc;
	/* first pass: the names, and the room their records need */
	for (size_t i = 0; i < n; i++) {
		if ((wl = wire(recs[i].name, w)) < 0 || (rl = reverse_name(&recs[i], rv)) < 0)
			return BW_EINVAL;
		if ((rc = table_add(l, &l->records, w, (size_t)wl, E_RECORD, -1, &idx, &made)))
			return rc;
		if (made)
			l->e[idx].line = recs[i].line;
		l->e[idx].rr_cap += (uint32_t)(8 + alen(recs[i].family));
		if ((rc = table_add(l, &l->records, rv, (size_t)rl, E_RECORD, -1, &idx, &made)))
			return rc;
		if (made) {
			l->e[idx].is_ptr = true;
			l->e[idx].line = recs[i].line;
			l->e[idx].rr_cap = (uint32_t)(8 + wl); /* the first name only */
		}
	}
	for (size_t i = 0; i < l->n_e; i++) {
		l->e[i].rr_off = (uint32_t)total;
		total += l->e[i].rr_cap;
		if (total > UINT32_MAX)
			return BW_ERANGE;
	}
	if (total && !(l->rrs = malloc(total)))
		return BW_ENOMEM;
	l->rrs_len = total;
	/* second pass: the records, in the config's order (a PTR names the first name) */
	for (size_t i = 0; i < n; i++) {
		const struct bw_local_record *r = &recs[i];
		uint16_t type = r->family == 4 ? BW_T_A : BW_T_AAAA;
		wl = wire(r->name, w);
		rl = reverse_name(r, rv);
		struct entry *e = (struct entry *)table_find(l, &l->records, w, (size_t)wl);
		if (e && !e->is_ptr && !has_rr(l, e, type, r->addr, alen(r->family))) {
			if (e->n_rrs < BW_LOCAL_MAX_PER_NAME)
				put_rr(l, e, type, r->addr, alen(r->family));
			else if (!e->capped && (e->capped = true))
				bw_warn(
				    "local records: %s has more than %d addresses; the first %d "
				    "are answered",
				    r->name, BW_LOCAL_MAX_PER_NAME, BW_LOCAL_MAX_PER_NAME);
		}
		e = (struct entry *)table_find(l, &l->records, rv, (size_t)rl);
		if (e && e->is_ptr && !e->n_rrs && e->rr_cap == 8u + (uint32_t)wl)
			put_rr(l, e, BW_T_PTR, w, (size_t)wl);
	}
	return 0;
}

static int build_zones(struct bw_local *l, const struct bw_conf *boot)
{
	size_t nz = boot->resolver.n_forward_zones, idx;
	uint8_t w[BW_DNS_MAXNAME];
	bool made;
	int rc, wl;

	if ((rc = table_init(&l->zones, nz + BW_SU_COUNT)))
		return rc;
	/* forward zones first: one of a special-use name's own name replaces it */
	for (size_t i = 0; i < nz; i++) {
		if ((wl = wire(boot->resolver.forward_zones[i].zone, w)) < 0)
			return BW_EINVAL;
		if ((rc = table_add(l, &l->zones, w, (size_t)wl, E_FORWARD, (int32_t)i, &idx,
				    &made)))
			return rc;
		l->zone_labels = BW_MAX(l->zone_labels, (unsigned)labels(w, (size_t)wl));
	}
	for (int s = 0; s < BW_SU_COUNT; s++) {
		wl = wire(bw_special_use_names[s], w);
		if ((rc = table_add(l, &l->zones, w, (size_t)wl, E_SPECIAL, s, &idx, &made)))
			return rc;
		l->zone_labels = BW_MAX(l->zone_labels, (unsigned)labels(w, (size_t)wl));
	}
	memcpy(l->special_recurse, boot->resolver.special_recurse, sizeof(l->special_recurse));
	return 0;
}

int bw_local_build(const struct bw_conf *conf, const struct bw_conf *boot, struct bw_local **out)
{
	struct bw_local *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l)
		return BW_ENOMEM;
	l->ttl = conf->local.ttl;
	if ((rc = build_records(l, conf)) || (rc = build_zones(l, boot))) {
		bw_local_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void bw_local_free(struct bw_local *l)
{
	if (!l)
		return;
	free(l->e);
	free(l->names);
	free(l->rrs);
	free(l->records.slots);
	free(l->zones.slots);
	free(l);
}

enum bw_local_kind bw_local_find(const struct bw_local *l, const uint8_t *name, size_t len,
				 struct bw_local_hit *hit)
{
	hit->kind = BW_LOCAL_NONE;
	hit->index = -1;
	hit->recurse = false;
	hit->entry = NULL;
	if (!l || !len)
		return BW_LOCAL_NONE;
	const struct entry *e = table_find(l, &l->records, name, len);
	if (e) {
		hit->entry = e;
		return hit->kind = BW_LOCAL_RECORD;
	}
	size_t n = labels(name, len);
	for (size_t off = 0; off < len && name[off]; off = bw_name_parent(name, off), n--) {
		if (n > l->zone_labels)
			continue;
		if (!(e = table_find(l, &l->zones, name + off, len - off)))
			continue;
		hit->index = e->idx;
		hit->entry = e;
		if (e->kind == E_FORWARD)
			return hit->kind = BW_LOCAL_FORWARD;
		hit->recurse = l->special_recurse[e->idx];
		return hit->kind = BW_LOCAL_SPECIAL;
	}
	return BW_LOCAL_NONE;
}

int bw_local_answer(const struct bw_local *l, const struct bw_query *q, struct bw_answer_meta *m,
		    uint8_t *body, size_t cap)
{
	struct bw_local_hit h;
	int rc = 0;

	switch (bw_local_find(l, q->qname_lc, q->qname_len, &h)) {
	case BW_LOCAL_NONE:
	case BW_LOCAL_FORWARD:
		return 0;
	case BW_LOCAL_RECORD: {
		const struct entry *e = h.entry;
		rc = bw_answer_synth_local(q, l->rrs + e->rr_off, e->rr_len, e->n_rrs, l->ttl, m,
					   body, cap);
		break;
	}
	case BW_LOCAL_SPECIAL:
		if (h.recurse)
			return 0;
		if (h.index == BW_SU_LOCALHOST) {
			/* RFC 6761 6.3: the loopback addresses, negative for other types */
			static const uint8_t v4[4] = {127, 0, 0, 1};
			static const uint8_t v6[16] = {[15] = 1};
			uint8_t rrs[8 + 4 + 8 + 16];
			bw_put16(rrs, BW_T_A);
			bw_put32(rrs + 2, l->ttl);
			bw_put16(rrs + 6, 4);
			memcpy(rrs + 8, v4, 4);
			bw_put16(rrs + 12, BW_T_AAAA);
			bw_put32(rrs + 14, l->ttl);
			bw_put16(rrs + 18, 16);
			memcpy(rrs + 20, v6, 16);
			rc = bw_answer_synth_local(q, rrs, sizeof(rrs), 2, l->ttl, m, body, cap);
			break;
		}
		bw_answer_meta_init(m);
		m->ttl = l->ttl;
		/* home.arpa is a locally served (empty) zone: its apex exists (RFC 8375 4,
		 * RFC 6303 3); the other names do not exist (RFC 6761 6.2, 6.4, RFC 6762 22.1,
		 * RFC 7686 2) */
		const struct entry *z = h.entry;
		bool apex = z->name_len == q->qname_len;
		m->rcode =
		    h.index == BW_SU_HOME_ARPA && apex ? BW_RCODE_NOERROR : BW_RCODE_NXDOMAIN;
		rc = 0;
		break;
	}
	if (rc)
		return rc;
	m->flags |= BW_DNS_AA;
	return 1;
}

/* ---- explain ---- */

static void print_rrs(const struct bw_local *l, const struct entry *e, FILE *out)
{
	for (size_t off = 0, i = 0; off < e->rr_len; i++) {
		const uint8_t *p = l->rrs + e->rr_off + off;
		uint16_t type = bw_get16(p), len = bw_get16(p + 6);
		char text[4 * BW_DNS_MAXNAME + 2];
		if (type == BW_T_A || type == BW_T_AAAA)
			inet_ntop(type == BW_T_A ? AF_INET : AF_INET6, p + 8, text, sizeof(text));
		else if (bw_name_to_text(p + 8, len, text, sizeof(text)) < 0)
			text[0] = 0;
		fprintf(out, "%s%s %s", i ? ", " : "",
			type == BW_T_A	    ? "A"
			: type == BW_T_AAAA ? "AAAA"
					    : "PTR",
			text);
		off += 8u + len;
	}
}

int bw_local_explain(const struct bw_local *l, const struct bw_conf *conf,
		     const struct bw_conf *boot, const uint8_t *name, size_t len, FILE *out)
{
	static const char *const rfc[BW_SU_COUNT] = {"RFC 6761 6.3", "RFC 6761 6.4",
						     "RFC 6761 6.2", "RFC 6762 22.1",
						     "RFC 7686",     "RFC 8375"};
	struct bw_local_hit h;

	switch (bw_local_find(l, name, len, &h)) {
	case BW_LOCAL_NONE:
		return 0;
	case BW_LOCAL_RECORD: {
		const struct entry *e = h.entry;
		fprintf(out, "local:    %s (",
			e->is_ptr ? "the address of a local record" : "a local record");
		if (e->line && conf->local.file)
			fprintf(out, "local-records-file %s:%u", conf->local.file, e->line);
		else
			fprintf(out, "local-records");
		fprintf(out, "): ");
		print_rrs(l, e, out);
		fprintf(out, "\nverdict:  answered locally (TTL %u), no policy applies\n", l->ttl);
		return 1;
	}
	case BW_LOCAL_SPECIAL: {
		const char *s = bw_special_use_names[h.index];
		if (h.recurse) {
			fprintf(out,
				"local:    under the special-use name %s. (%s), which "
				"resolver.special-use hands to the resolver\n",
				s, rfc[h.index]);
			return 0;
		}
		fprintf(out, "local:    under the special-use name %s. (%s)\n", s, rfc[h.index]);
		if (h.index == BW_SU_LOCALHOST)
			fprintf(out, "verdict:  answered locally: A 127.0.0.1, AAAA ::1 (TTL %u)\n",
				l->ttl);
		else if (h.index == BW_SU_HOME_ARPA &&
			 ((const struct entry *)h.entry)->name_len == len)
			fprintf(out, "verdict:  answered locally: NOERROR, no records (TTL %u)\n",
				l->ttl);
		else
			fprintf(out, "verdict:  answered locally: NXDOMAIN (TTL %u)\n", l->ttl);
		return 1;
	}
	case BW_LOCAL_FORWARD: {
		const struct bw_forward_zone *z = &boot->resolver.forward_zones[h.index];
		fprintf(out, "local:    under forward zone %s: %s to", z->zone,
			z->stub ? "asked (stub)" : "forwarded");
		for (size_t i = 0; i < z->n_forward; i++) {
			const struct bw_upstream *u = &z->forward[i];
			fprintf(out, "%s %s%s%s%s", i ? "," : "", u->tls ? "tls://" : "", u->addr,
				u->tls_name ? "#" : "", u->tls_name ? u->tls_name : "");
		}
		fprintf(out, "%s\n",
			z->insecure && boot->resolver.dnssec
			    ? " (DNSSEC not validated below it: insecure)"
			    : "");
		return 0;
	}
	}
	return 0;
}
