/*
 * feeds/source_xfr.c - the `primaries:` source: an RPZ zone kept by zone transfer
 * (feeds/xfr.h). One fetch asks the primaries for the zone's SOA (skipped after a NOTIFY),
 * then transfers: IXFR from the serial of the last good copy, AXFR when there is none or
 * the primary cannot do IXFR. An IXFR comes back as a DELTA (rule removes/adds for the
 * live policy, built against the records the live policy holds for each changed owner);
 * an AXFR as a FULL version (the zone as master-file text). A transfer that fails any
 * check (TSIG, serial rollback, cut short, garbled) returns an error and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feeds.h"
#include "feeds/xfr.h"

struct xfr_priv {
	struct bw_xfr_result res;
	struct bw_xfr_delta delta;
	bool have_delta;
};

struct lookup_ctx {
	const struct bw_fetch *f;
	const uint8_t *origin;
	size_t origin_len;
};

static int lookup_owner(void *ctx, const uint8_t *owner, size_t owner_len, bw_xfr_rr_emit emit,
			void *ctx2)
{
	struct lookup_ctx *l = ctx;
	return l->f->hooks->owner_records(l->f->hooks->ctx, l->f->feed, l->origin, l->origin_len,
					  owner, owner_len, emit, ctx2);
}

static void keep_soa(struct bw_fetch *out, const struct bw_soa *soa)
{
	out->meta.serial = soa->serial;
	out->meta.has_serial = true;
	out->meta.soa_refresh = soa->refresh;
	out->meta.soa_retry = soa->retry;
	out->meta.soa_expire = soa->expire;
}

static void xfr_release(struct bw_fetch *f)
{
	struct xfr_priv *p = f->priv;
	if (!p)
		return;
	if (p->have_delta)
		bw_xfr_delta_free(&p->delta);
	bw_xfr_result_free(&p->res);
	free(p);
	f->priv = NULL;
	f->adds = f->removes = NULL;
	f->n_adds = f->n_removes = 0;
}

static int xfr_fetch(const struct bw_feed_conf *fc, const char *last_good, struct bw_fetch *out)
{
	struct bw_tsig_key key;
	const char *why = NULL;
	(void)last_good;

	if (fc->tsig_name && bw_tsig_key_init(&key, fc->tsig_name, fc->tsig_alg,
					      fc->tsig_secret, &why) != 0) {
		snprintf(out->err, sizeof(out->err), "tsig key %s: %s", fc->tsig_name,
			 why ? why : "unusable");
		return BW_EINVAL;
	}
	struct xfr_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return BW_ENOMEM;
	bool can_ixfr = out->have_last && out->meta.has_serial && out->hooks &&
			out->hooks->owner_records && out->hooks->export_feed;
	struct bw_xfr_req req = {
	    .zone = fc->zone,
	    .primaries = fc->primaries,
	    .n_primaries = fc->n_primaries,
	    .key = fc->tsig_name ? &key : NULL,
	    .have_serial = can_ixfr,
	    .serial = out->meta.serial,
	    .skip_soa_check = out->notified && can_ixfr,
	    .timeout_ms = fc->timeout_ms,
	    .max_bytes = fc->max_size,
	};
	int rc = bw_xfr_fetch(&req, &p->res, out->err, sizeof(out->err));
	memset(&key, 0, sizeof(key));
	if (rc) {
		free(p);
		return rc;
	}
	out->priv = p;
	snprintf(out->meta.source, sizeof(out->meta.source), "%s from %s", fc->zone,
		 p->res.primary);
	switch (p->res.kind) {
	case BW_XFR_UPTODATE:
		out->kind = BW_FETCH_NONE;
		keep_soa(out, &p->res.soa);
		return 0;
	case BW_XFR_FULL: {
		FILE *mf = open_memstream(&out->buf, &out->len);
		if (!mf) {
			rc = BW_ENOMEM;
			break;
		}
		rc = bw_xfr_write_zone(&p->res, mf);
		if (fclose(mf) != 0 && !rc)
			rc = BW_EIO;
		if (rc) {
			free(out->buf);
			out->buf = NULL;
			snprintf(out->err, sizeof(out->err), "cannot write the transferred zone");
			break;
		}
		out->kind = BW_FETCH_FULL;
		keep_soa(out, &p->res.soa);
		bw_info("feed %s: %s of %s serial %u from %s: %zu records, %zu messages, %zu bytes",
			fc->name, p->res.ixfr_was_full ? "IXFR (as a full zone)" : "AXFR", fc->zone,
			p->res.soa.serial, p->res.primary, p->res.zone.n, p->res.messages,
			p->res.bytes);
		return 0;
	}
	case BW_XFR_DELTA: {
		struct lookup_ctx l = {out, p->res.origin, p->res.origin_len};
		rc = bw_xfr_delta_rules(&p->res, lookup_owner, &l, &p->delta);
		if (rc) {
			snprintf(out->err, sizeof(out->err), "IXFR to serial %u: cannot turn the "
				 "changes into rules", p->res.soa.serial);
			break;
		}
		p->have_delta = true;
		out->kind = BW_FETCH_DELTA;
		out->adds = p->delta.adds;
		out->n_adds = p->delta.n_adds;
		out->removes = p->delta.removes;
		out->n_removes = p->delta.n_removes;
		uint32_t from = out->meta.serial;
		keep_soa(out, &p->res.soa);
		/* each name the IXFR touches has its rules replaced: one remove (its trigger)
		 * and the rules of the records it holds now */
		bw_info("feed %s: IXFR of %s %u -> %u from %s: %zu sequences, %zu names changed, "
			"%zu rules for them now%s", fc->name, fc->zone, from, p->res.soa.serial,
			p->res.primary, p->res.n_diffs, p->delta.n_removes, p->delta.n_adds,
			p->delta.bad ? " (some records make no rule)" : "");
		return 0;
	}
	default:
		snprintf(out->err, sizeof(out->err), "transfer returned nothing");
		rc = BW_EMALFORMED;
		break;
	}
	xfr_release(out);
	return rc;
}

const struct bw_feed_src_ops bw_feed_src_xfr = {"xfr", xfr_fetch, xfr_release};
