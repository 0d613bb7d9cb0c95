/*
 * core/observe.h - the pipeline's hooks into metrics and dnstap (core/observe.c).
 * Each is one call at a point of the pipeline; the counting is a few plain increments on
 * the worker's own counters, and with dnstap off the rest costs one branch.
 * Not for other modules.
 */
#ifndef BW_CORE_OBSERVE_H
#define BW_CORE_OBSERVE_H

#include "core/internal.h"

void bw_obs_note_block(struct bw_worker *w, const struct bw_query *q,
		       const struct bw_verdict *v, const struct bw_match *via);
void bw_obs_dnstap_sync(struct bw_worker *w, const struct bw_origin *o, const uint8_t *pkt,
			size_t len, const uint8_t *ans, size_t alen);
void bw_obs_dnstap_async(struct bw_qctx *x, const uint8_t *ans, size_t alen);

/* A profile was selected for a query (state held). */
static inline void bw_obs_profile(struct bw_worker *w, unsigned profile)
{
	w->stats.m.profile[w->state->profile_slot[profile & 255]]++;
}

/* A blocking rule decided the answer to q (state held). `via` is what matched when it
 * was not the query name (NULL: the query name). */
static inline void bw_obs_block(struct bw_worker *w, const struct bw_query *q,
				const struct bw_verdict *v, const struct bw_match *via)
{
	w->stats.blocked++;
	if (v->feed >= 0 && v->feed < BW_METRICS_MAX_FEEDS)
		w->stats.m.feed_blocked[w->state->feed_slot[v->feed]]++;
	if (w->srv->dnstap)
		bw_obs_note_block(w, q, v, via);
}

/* The synchronous part of a query is over: ans (alen bytes) goes out now, or ans is NULL
 * (nothing to send now: dropped, or waiting on the resolver). */
static inline void bw_obs_query(struct bw_worker *w, const struct bw_origin *o,
				const uint8_t *pkt, size_t len, const uint8_t *ans, size_t alen)
{
	if (ans && alen > 3)
		w->stats.m.rcode[ans[3] & 15]++;
	if (w->srv->dnstap)
		bw_obs_dnstap_sync(w, o, pkt, len, ans, alen);
}

/* The resolver answered x (for the latency histogram). */
static inline void bw_obs_backend(struct bw_qctx *x)
{
	if (x->s.t_start_ns)
		bw_metrics_observe_us(&x->w->stats.m, (bw_now_ns() - x->s.t_start_ns) / 1000);
}

/* An answer to the asynchronous query x goes out (alen 0: none). */
static inline void bw_obs_answer(struct bw_qctx *x, const uint8_t *ans, size_t alen)
{
	if (!x->answered && alen > 3)
		x->w->stats.m.rcode[ans[3] & 15]++;
	if (x->w->srv->dnstap)
		bw_obs_dnstap_async(x, ans, alen);
}

#endif
