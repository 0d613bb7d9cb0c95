/*
 * feeds/xfr_rules.c - what a transfer becomes: master-file text (FULL: the last-good copy
 * that the RPZ file parser loads) and rule removes/adds (DELTA: bw_policy_apply_delta()),
 * both through the RPZ parser's one record-to-rule conversion (bw_rpz_rr_rule()).
 * Also the SOA timers, a pure function.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "feeds/xfr.h"

/* ---- master-file text ---- */

int bw_xfr_write_rr(FILE *f, const uint8_t *owner, size_t owner_len, uint16_t type,
		    uint32_t ttl, const uint8_t *rdata, size_t rdlen)
{
	return bw_rpz_write_rr(f, owner, owner_len, type, ttl, rdata, rdlen);
}

int bw_xfr_write_zone(const struct bw_xfr_result *r, FILE *f)
{
	if (r->kind != BW_XFR_FULL)
		return BW_EINVAL;
	fprintf(f, "; zone transfer from %s, serial %u\n", r->primary, r->soa.serial);
	for (size_t i = 0; i < r->zone.n; i++) {
		const struct bw_xfr_rr *rr = &r->zone.v[i];
		int rc = bw_xfr_write_rr(f, rr->owner, rr->owner_len, rr->type, rr->ttl, rr->rdata,
					 rr->rdlen);
		if (rc)
			return rc;
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : BW_EIO;
}

/* ---- IXFR to rule changes ---- */

struct orr { /* one record of an owner in the state being computed */
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	const uint8_t *rdata;
};

struct owner {
	uint8_t name[255]; /* lower-cased */
	size_t len;
	struct orr *v;
	size_t n, cap;
};

struct work {
	struct owner *o;
	size_t n, cap;
	struct bw_xfr_blocks *mem;
	int err;
};

/* the rules' data: small blocks, freed together */
struct blk {
	struct blk *next;
	uint8_t data[];
};
struct bw_xfr_blocks {
	struct blk *head;
};

static void *alloc(struct bw_xfr_blocks *m, size_t n)
{
	struct blk *b = malloc(sizeof(*b) + (n ? n : 1));
	if (!b)
		return NULL;
	b->next = m->head;
	m->head = b;
	return b->data;
}

static void mem_release(struct bw_xfr_blocks *m)
{
	if (!m)
		return;
	for (struct blk *b = m->head, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	free(m);
}

static struct owner *owner_get(struct work *w, const uint8_t *name, size_t len)
{
	uint8_t lc[255];

	bw_name_lower(lc, name, len);
	for (size_t i = 0; i < w->n; i++) /* IXFR deltas are small; a linear scan will do */
		if (w->o[i].len == len && memcmp(w->o[i].name, lc, len) == 0)
			return &w->o[i];
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct owner *v = realloc(w->o, cap * sizeof(*v));
		if (!v)
			return NULL;
		w->o = v;
		w->cap = cap;
	}
	struct owner *o = &w->o[w->n++];
	memset(o, 0, sizeof(*o));
	memcpy(o->name, lc, len);
	o->len = len;
	return o;
}

static bool same_rr(const struct orr *a, uint16_t type, const uint8_t *rd, uint16_t rdlen)
{
	return a->type == type && a->rdlen == rdlen && memcmp(a->rdata, rd, rdlen) == 0;
}

static int owner_add(struct work *w, struct owner *o, uint16_t type, uint32_t ttl,
		     const uint8_t *rd, uint16_t rdlen, bool copy)
{
	for (size_t i = 0; i < o->n; i++)
		if (same_rr(&o->v[i], type, rd, rdlen)) {
			o->v[i].ttl = ttl; /* the same record again: its TTL may change */
			return 0;
		}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 4;
		struct orr *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			return BW_ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	if (copy) {
		uint8_t *p = alloc(w->mem, rdlen);
		if (!p)
			return BW_ENOMEM;
		memcpy(p, rd, rdlen);
		rd = p;
	}
	o->v[o->n++] = (struct orr){.type = type, .ttl = ttl, .rdlen = rdlen, .rdata = rd};
	return 0;
}

static void owner_del(struct owner *o, uint16_t type, const uint8_t *rd, uint16_t rdlen)
{
	for (size_t i = 0; i < o->n; i++)
		if (same_rr(&o->v[i], type, rd, rdlen)) {
			o->v[i] = o->v[--o->n];
			return;
		}
}

struct emit_ctx {
	struct work *w;
	struct owner *o;
};

static void on_current(void *ctx2, uint16_t type, uint32_t ttl, const uint8_t *rdata,
		       uint16_t rdlen)
{
	struct emit_ctx *e = ctx2;
	if (owner_add(e->w, e->o, type, ttl, rdata, rdlen, true) != 0)
		e->w->err = BW_ENOMEM;
}

/* Copies a rule's pointed-to data into the arena so it outlives the conversion buffer. */
static int keep_rule(struct bw_xfr_blocks *m, struct bw_rule *r)
{
	if (r->name) {
		uint8_t *p = alloc(m, r->name_len);
		if (!p)
			return BW_ENOMEM;
		memcpy(p, r->name, r->name_len);
		r->name = p;
	}
	if (r->target) {
		uint8_t *p = alloc(m, r->target_len);
		if (!p)
			return BW_ENOMEM;
		memcpy(p, r->target, r->target_len);
		r->target = p;
	}
	if (r->rrs) {
		struct bw_rule_rr *rr = alloc(m, sizeof(*rr));
		if (!rr)
			return BW_ENOMEM;
		*rr = r->rrs[0];
		r->rrs = rr;
	}
	return 0;
}

static int push(struct bw_rule **v, size_t *n, size_t *cap, const struct bw_rule *r)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct bw_rule *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return BW_ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *r;
	return 0;
}

void bw_xfr_delta_free(struct bw_xfr_delta *d)
{
	if (!d)
		return;
	free(d->adds);
	free(d->removes);
	mem_release(d->mem);
	memset(d, 0, sizeof(*d));
}

int bw_xfr_delta_rules(const struct bw_xfr_result *r, bw_xfr_owner_lookup lookup, void *ctx,
		       struct bw_xfr_delta *out)
{
	struct work w = {0};
	size_t cap_add = 0, cap_rm = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (r->kind != BW_XFR_DELTA)
		return BW_EINVAL;
	w.mem = calloc(1, sizeof(*w.mem));
	if (!w.mem)
		return BW_ENOMEM;
	/* 1. every owner touched, with its records before the change */
	for (size_t d = 0; d < r->n_diffs && rc == 0; d++)
		for (int pass = 0; pass < 2 && rc == 0; pass++) {
			const struct bw_xfr_rrset *s = pass ? &r->diffs[d].add : &r->diffs[d].del;
			for (size_t i = 0; i < s->n && rc == 0; i++) {
				size_t before = w.n;
				struct owner *o = owner_get(&w, s->v[i].owner, s->v[i].owner_len);
				if (!o) {
					rc = BW_ENOMEM;
					break;
				}
				if (w.n != before && lookup) {
					struct emit_ctx e = {&w, o};
					rc = lookup(ctx, o->name, o->len, on_current, &e);
					if (rc == 0)
						rc = w.err;
				}
			}
		}
	/* 2. the differences in order: deletions then additions of each */
	for (size_t d = 0; d < r->n_diffs && rc == 0; d++) {
		const struct bw_xfr_diff *df = &r->diffs[d];
		for (size_t i = 0; i < df->del.n; i++) {
			const struct bw_xfr_rr *x = &df->del.v[i];
			owner_del(owner_get(&w, x->owner, x->owner_len), x->type, x->rdata,
				  x->rdlen);
		}
		for (size_t i = 0; i < df->add.n && rc == 0; i++) {
			const struct bw_xfr_rr *x = &df->add.v[i];
			rc = owner_add(&w, owner_get(&w, x->owner, x->owner_len), x->type, x->ttl,
				       x->rdata, x->rdlen, false);
		}
	}
	/* 3. per owner: remove its trigger, add back what it holds now */
	for (size_t i = 0; i < w.n && rc == 0; i++) {
		struct owner *o = &w.o[i];
		struct bw_rpz_rr_buf buf;
		struct bw_rule rule;
		const char *why;
		static const uint8_t dot[] = {0};
		/* the trigger alone (any record type gives it): a CNAME "." to the owner */
		int got = bw_rpz_rr_rule(r->origin, r->origin_len, o->name, o->len, 5, 0, dot, 1,
					 &buf, &rule, &why);
		if (got == 0)
			continue; /* the apex: not policy */
		if (got < 0) {
			out->bad += o->n;
			continue;
		}
		rule.cname_exclusive = true;
		rc = keep_rule(w.mem, &rule);
		if (rc == 0)
			rc = push(&out->removes, &out->n_removes, &cap_rm, &rule);
		for (size_t k = 0; k < o->n && rc == 0; k++) {
			got = bw_rpz_rr_rule(r->origin, r->origin_len, o->name, o->len, o->v[k].type,
					     o->v[k].ttl, o->v[k].rdata, o->v[k].rdlen, &buf,
					     &rule, &why);
			if (got <= 0) {
				out->bad++;
				continue;
			}
			rule.cname_exclusive = true;
			rc = keep_rule(w.mem, &rule);
			if (rc == 0)
				rc = push(&out->adds, &out->n_adds, &cap_add, &rule);
		}
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.o[i].v);
	free(w.o);
	out->mem = w.mem;
	if (rc)
		bw_xfr_delta_free(out);
	return rc;
}

/* ---- SOA timers ---- */

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void bw_xfr_timers(const struct bw_soa *soa, int64_t last_success, int64_t last_failure,
		   int64_t now, uint32_t fallback_retry, struct bw_xfr_timers *out)
{
	int64_t refresh, retry, expire;

	memset(out, 0, sizeof(*out));
	if (!soa || last_success == 0) {
		/* never loaded: try again every retry interval after a failure, now otherwise */
		retry = clamp(fallback_retry, BW_XFR_MIN_INTERVAL, BW_XFR_MAX_INTERVAL);
		out->next_check = last_failure ? last_failure + retry : now;
		out->expired = true;
		return;
	}
	refresh = clamp(soa->refresh, BW_XFR_MIN_INTERVAL, BW_XFR_MAX_INTERVAL);
	retry = clamp(soa->retry, BW_XFR_MIN_INTERVAL, BW_XFR_MAX_INTERVAL);
	expire = clamp(soa->expire, refresh > retry ? refresh : retry, BW_XFR_MAX_EXPIRE);
	out->expires_at = last_success + expire;
	out->expired = now >= out->expires_at;
	if (last_failure > last_success)
		out->next_check = last_failure + retry;
	else
		out->next_check = last_success + refresh;
}
