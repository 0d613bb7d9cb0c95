/*
 * policy/export.c - a feed's rules in effect (base + overlay) back to RPZ master-file text,
 * and the records of one RPZ owner, so that after IXFRs the last-good copy of a feed can be
 * rewritten from the live snapshot and a delta can find an owner's other records, without
 * keeping the zone a second time in memory.
 *
 * Each rule is written as the RPZ record that the RPZ parser turns back into the same rule
 * (bw_rpz_rr_rule()): QNAME "name", WILDCARD "*.name", NSDNAME "[*.]name.rpz-nsdname", IP
 * triggers "<prefix>.<reversed address>.rpz-ip|rpz-client-ip|rpz-nsip" (IPv6 with "zz" for
 * the longest run of two or more zero groups), each below the origin; actions as CNAME
 * ".", "*.", "rpz-passthru.", "rpz-drop.", "rpz-tcp-only.", the redirect target, or the
 * local-data records themselves.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"
#include "policy/snapshot.h"

/* ---- records as text ---- */

static bool put_name(FILE *f, const uint8_t *name, size_t len)
{
	char text[4 * 255 + 2];
	if (bw_name_to_text(name, len, text, sizeof(text)) < 0)
		return false;
	return fputs(text, f) >= 0;
}

/* The rdata of the common types in presentation form; false (nothing written): use the
 * generic form. */
static bool put_rdata(FILE *f, uint16_t type, const uint8_t *rd, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	int l1, l2;

	switch (type) {
	case 1: /* A */
		if (n != 4 || !inet_ntop(AF_INET, rd, a, sizeof(a)))
			return false;
		fprintf(f, "A %s", a);
		return true;
	case 28: /* AAAA */
		if (n != 16 || !inet_ntop(AF_INET6, rd, a, sizeof(a)))
			return false;
		fprintf(f, "AAAA %s", a);
		return true;
	case 2: case 5: case 12: case 39: /* NS CNAME PTR DNAME */
		if (bw_name_len(rd, n) != (int)n)
			return false;
		fputs(type == 2 ? "NS " : type == 5 ? "CNAME " : type == 12 ? "PTR " : "DNAME ", f);
		return put_name(f, rd, n);
	case 15: /* MX */
		if (n < 3 || bw_name_len(rd + 2, n - 2) != (int)(n - 2))
			return false;
		fprintf(f, "MX %u ", bw_get16(rd));
		return put_name(f, rd + 2, n - 2);
	case 6: /* SOA */
		l1 = bw_name_len(rd, n);
		if (l1 < 0)
			return false;
		l2 = bw_name_len(rd + l1, n - (size_t)l1);
		if (l2 < 0 || (size_t)l1 + (size_t)l2 + 20 != n)
			return false;
		fputs("SOA ", f);
		put_name(f, rd, (size_t)l1);
		fputc(' ', f);
		put_name(f, rd + l1, (size_t)l2);
		rd += l1 + l2;
		fprintf(f, " %u %u %u %u %u", bw_get32(rd), bw_get32(rd + 4), bw_get32(rd + 8),
			bw_get32(rd + 12), bw_get32(rd + 16));
		return true;
	case 16: /* TXT: character-strings, quoted, \DDD for anything odd */
		if (n == 0)
			return false;
		for (size_t i = 0; i < n; i += 1 + (size_t)rd[i])
			if (i + 1 + rd[i] > n)
				return false;
		fputs("TXT", f);
		for (size_t i = 0; i < n;) {
			size_t l = rd[i++];
			fputs(" \"", f);
			for (size_t j = 0; j < l; j++, i++) {
				uint8_t ch = rd[i];
				if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' || ch == ';')
					fprintf(f, "\\%03u", ch);
				else
					fputc(ch, f);
			}
			fputc('"', f);
		}
		return true;
	default:
		return false;
	}
}

int bw_rpz_write_rr(FILE *f, const uint8_t *owner, size_t owner_len, uint16_t type, uint32_t ttl,
		    const uint8_t *rdata, size_t rdlen)
{
	if (!put_name(f, owner, owner_len))
		return BW_EINVAL;
	fprintf(f, " %u IN ", ttl);
	if (!put_rdata(f, type, rdata, rdlen)) {
		/* RFC 3597 generic form, which libzscanner reads for every type */
		fprintf(f, "TYPE%u \\# %zu ", type, rdlen);
		for (size_t i = 0; i < rdlen; i++)
			fprintf(f, "%02x", rdata[i]);
	}
	fputc('\n', f);
	return ferror(f) ? BW_EIO : 0;
}

/* ---- rules as records ---- */

static size_t put_label(uint8_t *out, size_t n, const char *text)
{
	size_t l = strlen(text);
	out[n] = (uint8_t)l;
	memcpy(out + n + 1, text, l);
	return n + 1 + l;
}

/* The RPZ owner of rule r below origin, wire; returns its length or 0 (too long). */
static size_t rule_owner(const struct bw_rule *r, const uint8_t *origin, size_t olen,
			 uint8_t *out)
{
	uint8_t w[600];
	size_t n = 0;
	char t[8];

	switch (r->trigger) {
	case BW_TRIG_WILDCARD:
		n = put_label(w, n, "*");
		/* fall through */
	case BW_TRIG_QNAME:
		memcpy(w + n, r->name, r->name_len - 1); /* without the root label */
		n += r->name_len - 1;
		break;
	case BW_TRIG_NSDNAME:
		if (r->nsdname_wildcard)
			n = put_label(w, n, "*");
		memcpy(w + n, r->name, r->name_len - 1);
		n += r->name_len - 1;
		n = put_label(w, n, "rpz-nsdname");
		break;
	default: { /* IP triggers */
		snprintf(t, sizeof(t), "%u", r->net.prefix);
		n = put_label(w, n, t);
		if (r->net.family == AF_INET) {
			for (int i = 3; i >= 0; i--) {
				snprintf(t, sizeof(t), "%u", r->net.addr[i]);
				n = put_label(w, n, t);
			}
		} else {
			unsigned g[8];
			int best = -1, best_len = 1;
			for (int i = 0; i < 8; i++)
				g[i] = (unsigned)r->net.addr[2 * i] << 8 | r->net.addr[2 * i + 1];
			for (int i = 0; i < 8;) { /* the longest run of 2+ zero groups */
				int j = i;
				while (j < 8 && g[j] == 0)
					j++;
				if (j - i > best_len) {
					best = i;
					best_len = j - i;
				}
				i = j > i ? j : i + 1;
			}
			for (int i = 7; i >= 0; i--) {
				if (best >= 0 && i >= best && i < best + best_len) {
					if (i == best)
						n = put_label(w, n, "zz");
					continue;
				}
				snprintf(t, sizeof(t), "%x", g[i]);
				n = put_label(w, n, t);
			}
		}
		n = put_label(w, n, r->trigger == BW_TRIG_CLIENT_IP   ? "rpz-client-ip"
				    : r->trigger == BW_TRIG_RESPONSE_IP ? "rpz-ip"
									: "rpz-nsip");
	}
	}
	if (n + olen > 255)
		return 0;
	memcpy(out, w, n);
	memcpy(out + n, origin, olen);
	return n + olen;
}

/* The record(s) of rule r: emit(ctx, type, ttl, rdata, rdlen) for each. */
typedef int (*rec_fn)(void *ctx, const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl,
		      const uint8_t *rdata, size_t rdlen);

static int rule_records(const struct bw_rule *r, const uint8_t *owner, size_t olen, rec_fn fn,
			void *ctx)
{
	uint8_t target[300];
	size_t tl = 0;

	switch (r->action) {
	case BW_ACT_NXDOMAIN:
		target[0] = 0;
		tl = 1;
		break;
	case BW_ACT_NODATA:
		tl = put_label(target, 0, "*");
		target[tl++] = 0;
		break;
	case BW_ACT_PASSTHRU:
		tl = put_label(target, 0, "rpz-passthru");
		target[tl++] = 0;
		break;
	case BW_ACT_DROP:
		tl = put_label(target, 0, "rpz-drop");
		target[tl++] = 0;
		break;
	case BW_ACT_TCP_ONLY:
		tl = put_label(target, 0, "rpz-tcp-only");
		target[tl++] = 0;
		break;
	case BW_ACT_REDIRECT:
		if (r->target_wildcard)
			tl = put_label(target, 0, "*");
		if (tl + r->target_len > 255)
			return 0;
		memcpy(target + tl, r->target, r->target_len);
		tl += r->target_len;
		break;
	case BW_ACT_LOCAL_DATA:
		for (size_t i = 0; i < r->n_rrs; i++) {
			int rc = fn(ctx, owner, olen, r->rrs[i].type, r->rrs[i].ttl, r->rrs[i].rdata,
				    r->rrs[i].rdlen);
			if (rc)
				return rc;
		}
		return 0;
	default:
		return 0;
	}
	return fn(ctx, owner, olen, 5 /* CNAME */, r->ttl, target, tl);
}

struct export_ctx {
	FILE *f;
	const uint8_t *origin;
	size_t olen;
	size_t skipped;
	/* owner lookup */
	const uint8_t *owner;
	size_t owner_len;
	bw_policy_rr_fn emit;
	void *emit_ctx;
};

static int write_rec(void *ctx, const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl,
		     const uint8_t *rdata, size_t rdlen)
{
	struct export_ctx *e = ctx;
	return bw_rpz_write_rr(e->f, owner, olen, type, ttl, rdata, rdlen);
}

static int export_rule(void *ctx, unsigned feed, const struct bw_rule *r)
{
	struct export_ctx *e = ctx;
	uint8_t owner[255];

	(void)feed;
	size_t olen = rule_owner(r, e->origin, e->olen, owner);
	if (olen == 0) {
		e->skipped++;
		return 0;
	}
	return rule_records(r, owner, olen, write_rec, e);
}

int bw_policy_export_feed(const struct bw_policy *p, unsigned feed, FILE *f, const char *origin,
			  uint32_t serial)
{
	uint8_t o[255];
	int ol = bw_name_from_text(origin, strlen(origin), o);

	if (!p || feed >= p->n_feeds || ol < 1)
		return BW_EINVAL;
	struct export_ctx e = {.f = f, .origin = o, .olen = (size_t)ol};
	/* an apex SOA first, so the text is a zone the RPZ parser reads with this origin */
	uint8_t soa[2 + 20] = {0};
	bw_put32(soa + 2, serial);
	bw_put32(soa + 6, 3600);
	bw_put32(soa + 10, 600);
	bw_put32(soa + 14, 86400);
	bw_put32(soa + 18, 60);
	fprintf(f, "; rules of feed %s in effect, written by bulwark\n", p->status[feed].name);
	int rc = bw_rpz_write_rr(f, o, (size_t)ol, 6, 60, soa, sizeof(soa));
	if (rc == 0)
		rc = bw_snap_each_rule(p, (int)feed, export_rule, &e);
	if (rc == 0 && (fflush(f) != 0 || ferror(f)))
		rc = BW_EIO;
	if (rc == 0 && e.skipped)
		bw_warn("export of feed %s: %zu rules too long for origin %s", p->status[feed].name,
			e.skipped, origin);
	return rc;
}

/* ---- one owner's records ---- */

static int emit_rec(void *ctx, const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl,
		    const uint8_t *rdata, size_t rdlen)
{
	struct export_ctx *e = ctx;
	(void)owner;
	(void)olen;
	e->emit(e->emit_ctx, type, ttl, rdata, (uint16_t)rdlen);
	return 0;
}

struct one_rule {
	struct export_ctx *e;
	const struct bw_rule *want;
};

static int owner_rule(void *ctx, unsigned feed, const struct bw_rule *r)
{
	struct one_rule *o = ctx;
	(void)feed;
	/* the slot holds the exact and the wildcard rule of a name: only the owner's */
	if (r->trigger != o->want->trigger || r->nsdname_wildcard != o->want->nsdname_wildcard)
		return 0;
	return rule_records(r, o->e->owner, o->e->owner_len, emit_rec, o->e);
}

int bw_policy_export_owner(const struct bw_policy *p, unsigned feed, const uint8_t *origin,
			   size_t origin_len, const uint8_t *owner, size_t owner_len,
			   bw_policy_rr_fn emit, void *ctx)
{
	struct bw_rpz_rr_buf buf;
	struct bw_rule r;
	const char *why;
	static const uint8_t dot[] = {0};
	uint8_t key[WIRE_MAX];
	size_t klen;
	int tab;

	if (!p || feed >= p->n_feeds)
		return BW_EINVAL;
	if (bw_rpz_rr_rule(origin, origin_len, owner, owner_len, 5, 0, dot, 1, &buf, &r, &why) !=
	    1)
		return 0; /* the apex or not a trigger: no rules */
	if (r.trigger == BW_TRIG_QNAME || r.trigger == BW_TRIG_WILDCARD) {
		tab = TAB_QNAME;
		memcpy(key, r.name, r.name_len);
		klen = r.name_len;
	} else if (r.trigger == BW_TRIG_NSDNAME) {
		tab = TAB_NSD;
		memcpy(key, r.name, r.name_len);
		klen = r.name_len;
	} else {
		tab = TAB_IP;
		klen = bw_snap_ipkey(key, r.trigger, r.net.family, r.net.addr, r.net.prefix);
		if (klen == 0)
			return 0;
	}
	struct export_ctx e = {
	    .owner = owner, .owner_len = owner_len, .emit = emit, .emit_ctx = ctx};
	struct one_rule one = {&e, &r};
	uint32_t h = (uint32_t)bw_hash(key, klen, p->base->seed);
	/* the overlay's slot of (key, feed) hides the base's, tombstones included */
	for (int k = 0; k < 2; k++) {
		const struct rset *rs = k == 0 ? p->ov : &p->base->rs;
		if (!rs)
			continue;
		const struct table *t = &rs->tab[tab];
		if (!t->slots)
			continue;
		uint32_t i = h & t->mask;
		const struct slot *s;
		while ((s = slot_next(rs, t, &i, h, key, klen)))
			if (s->feed == feed)
				return bw_snap_slot_rules(p, rs, tab, s, owner_rule, &one);
	}
	return 0;
}
