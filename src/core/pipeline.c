/*
 * core/pipeline.c - the query pipeline: access control -> parse -> cache -> policy ->
 * resolve -> finalize. The cache comes before the policy because its key carries the
 * policy generation: a hit was produced under the same verdict (blocked answers are
 * cached too), so a hit costs one lookup, not one per label of the name. Each stage returns BW_STAGE_NEXT, DONE, ASYNC or DROP; the
 * asynchronous resolver resumes a query in bw_pipeline_resolved().
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/internal.h"

/* How long a blocked answer stays in the packet cache (clamped by cache.max-negative-ttl);
 * a new policy generation makes it unreachable anyway. */
#define BW_BLOCKED_TTL 3600
/* How long a client waits for a fresh answer before it gets a stale one (RFC 8767 5). */
#define BW_STALE_WAIT_MS 1800

/* Per-query working set for the synchronous part. */
struct job {
	struct bw_worker *w;
	const struct bw_origin *o;
	struct bw_query q;
	struct bw_verdict verdict;
	struct bw_cache_key key;
	size_t limit;
	bool stale_possible;
	uint8_t *out;
	size_t cap;
	size_t out_len;
};

static size_t answer_limit(const struct bw_query *q, enum bw_transport_kind via)
{
	if (via == BW_VIA_TCP)
		return BW_DNS_MAXMSG;
	return BW_MIN(q->udp_size, BW_UDP_MAX_ANSWER);
}

static void blocked_text(char *buf, size_t cap, const struct bw_verdict *v, const uint8_t *via,
			 size_t via_len)
{
	if (via) {
		char name[4 * BW_DNS_MAXNAME + 2];
		if (bw_name_to_text(via, via_len, name, sizeof(name)) < 0)
			name[0] = 0;
		snprintf(buf, cap, "blocked by %s (%s) via CNAME %s", v->feed_name, v->category,
			 name);
	} else {
		snprintf(buf, cap, "blocked by %s (%s)", v->feed_name, v->category);
	}
}

static enum bw_stage stage_error(struct job *j, uint16_t rcode, uint16_t ede, const char *text)
{
	int n = bw_answer_error(&j->q, rcode, ede, text, j->out, j->cap);
	if (n <= 0)
		return BW_STAGE_DROP;
	j->out_len = (size_t)n;
	return BW_STAGE_DONE;
}

/* Access control and parsing. */
static enum bw_stage stage_parse(struct job *j, const uint8_t *pkt, size_t len)
{
	struct bw_worker *w = j->w;
	enum bw_acl_action acl = bw_conf_acl_check(w->state->conf, j->o->peer);
	if (acl == BW_ACL_DROP) {
		w->stats.dropped++;
		return BW_STAGE_DROP;
	}
	int rc = bw_query_parse(pkt, len, &j->q);
	if (rc == BW_ESHORT) {
		w->stats.dropped++;
		return BW_STAGE_DROP;
	}
	j->limit = answer_limit(&j->q, j->o->via);
	if (acl == BW_ACL_REFUSE) {
		w->stats.refused++;
		if (rc != 0)
			j->q.qname_len = 0;
		return stage_error(j, BW_RCODE_REFUSED, BW_EDE_PROHIBITED, NULL);
	}
	if (rc == BW_ENOTSUP)
		return stage_error(j, BW_RCODE_NOTIMP, BW_EDE_NONE, NULL);
	if (rc != 0) {
		w->stats.formerr++;
		return stage_error(j, BW_RCODE_FORMERR, BW_EDE_NONE, NULL);
	}
	if (j->q.has_edns && j->q.edns_version != 0)
		return stage_error(j, BW_RCODE_BADVERS, BW_EDE_NONE, NULL);
	if (j->q.qclass != BW_C_IN || j->q.qtype == BW_T_AXFR || j->q.qtype == BW_T_IXFR ||
	    j->q.qtype == BW_T_OPT) {
		w->stats.refused++;
		return stage_error(j, BW_RCODE_REFUSED, BW_EDE_NONE, NULL);
	}
	return BW_STAGE_NEXT;
}

/* Policy before resolution: QNAME triggers, allowlist first. Runs on cache misses only:
 * the cache key carries the policy generation, so a cached answer (blocked answers
 * included) was produced under the same verdict. */
static enum bw_stage stage_policy(struct job *j)
{
	struct bw_worker *w = j->w;
	if (!bw_policy_match(w->state->policy, j->q.qname_lc, j->q.qname_len, &j->verdict)) {
		if (j->verdict.allowlisted)
			w->stats.allowlisted++;
		return BW_STAGE_NEXT;
	}
	w->stats.blocked++;
	struct bw_answer_meta *m = &w->meta;
	bw_answer_meta_init(m);
	m->rcode = BW_RCODE_NXDOMAIN;
	m->ttl = BW_BLOCKED_TTL;
	m->ede = j->verdict.ede;
	blocked_text(m->ede_text, sizeof(m->ede_text), &j->verdict, NULL, 0);
	bw_cache_store(w->srv->cache, &j->key, m, w->body, bw_now_sec());
	int n = bw_answer_write(&j->q, m, w->body, 0, 0, j->limit, j->out, j->cap);
	if (n <= 0)
		return BW_STAGE_DROP;
	j->out_len = (size_t)n;
	return BW_STAGE_DONE;
}

static void make_key(struct bw_cache_key *k, const struct bw_query *q, uint64_t generation)
{
	k->qname_lc = q->qname_lc;
	k->qname_len = q->qname_len;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->flags = (uint8_t)((q->do_bit ? BW_CACHE_DO : 0) | ((q->flags & BW_DNS_CD) ? BW_CACHE_CD : 0) |
			     ((q->flags & BW_DNS_AD) ? 4 : 0));
	k->profile = 0;
	k->generation = generation;
	bw_cache_key_hash(k);
}

static enum bw_stage stage_cache(struct job *j)
{
	struct bw_worker *w = j->w;
	make_key(&j->key, &j->q, w->state->generation);
	int n = bw_cache_lookup(w->srv->cache, &j->key, &j->q, bw_now_sec(), false, j->limit,
				j->out, j->cap);
	if (n > 0) {
		w->stats.cache_hits++;
		j->out_len = (size_t)n;
		return BW_STAGE_DONE;
	}
	j->stale_possible = n == BW_ESTALE;
	w->stats.cache_misses++;
	return BW_STAGE_NEXT;
}

/* RFC 8482: QTYPE ANY gets a minimal answer (after the policy), never a full ANY. */
static enum bw_stage stage_any(struct job *j)
{
	struct bw_worker *w = j->w;
	if (j->q.qtype != BW_T_ANY)
		return BW_STAGE_NEXT;
	if (bw_answer_any(&j->q, &w->meta, w->body, sizeof(w->body)) != 0)
		return BW_STAGE_DROP;
	bw_cache_store(w->srv->cache, &j->key, &w->meta, w->body, bw_now_sec());
	int n = bw_answer_write(&j->q, &w->meta, w->body, 0, 0, j->limit, j->out, j->cap);
	if (n <= 0)
		return BW_STAGE_DROP;
	j->out_len = (size_t)n;
	return BW_STAGE_DONE;
}

static struct bw_qctx *qctx_get(struct bw_worker *w)
{
	struct bw_qctx *x = w->free_list;
	if (!x)
		return NULL;
	w->free_list = x->next_free;
	x->next_free = NULL;
	x->busy = true;
	w->inflight++;
	return x;
}

static void qctx_put(struct bw_qctx *x)
{
	struct bw_worker *w = x->w;
	x->busy = false;
	x->conn = NULL;
	x->next_free = w->free_list;
	w->free_list = x;
	w->inflight--;
	if (w->draining && w->inflight == 0)
		bw_worker_wake(w);
}

static size_t build_answer(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len,
			   enum bw_sec sec, const char *why_bogus, uint8_t *out, size_t cap);

static enum bw_stage stage_resolve(struct job *j)
{
	struct bw_worker *w = j->w;
	struct bw_qctx *x = qctx_get(w);
	if (!x) {
		w->stats.overload++;
		return stage_error(j, BW_RCODE_SERVFAIL, BW_EDE_OTHER, "resolver overloaded");
	}
	x->q = j->q;
	x->key = j->key;
	x->key.qname_lc = x->q.qname_lc;
	x->via = j->o->via;
	x->fd = j->o->fd;
	x->conn = j->o->conn;
	memcpy(&x->peer, j->o->peer, j->o->peerlen);
	x->peerlen = j->o->peerlen;
	x->t_start_ns = 0;
	x->ub_id = 0;
	x->answered = false;
	if (x->via == BW_VIA_TCP)
		bw_tcp_conn_hold(x->conn);
	const struct bw_conf *conf = w->srv->conf;
	unsigned ms = conf->resolver.timeout_ms ? conf->resolver.timeout_ms : 5000;
	x->deadline_ms = bw_now_ms() + ms;
	/* RFC 8767 client response timer: with a stale answer in hand, wait at most 1.8 s */
	x->stale_possible = j->stale_possible && conf->cache.stale_ttl;
	if (x->stale_possible && ms > BW_STALE_WAIT_MS)
		ms = BW_STALE_WAIT_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(x->timer, &tv);
	int rc = bw_resolver_query(w->resolver, x->q.qname_lc, x->q.qname_len, x->q.qtype,
				   x->q.qclass, x, &x->ub_id);
	if (rc == 0)
		return BW_STAGE_ASYNC;
	evtimer_del(x->timer);
	enum bw_stage st;
	if (rc == 1) {
		/* answered at once (libunbound's own cache): reply in this batch */
		int err;
		const uint8_t *pkt;
		size_t plen;
		enum bw_sec sec;
		const char *why;
		bw_resolver_sync_result(w->resolver, &err, &pkt, &plen, &sec, &why);
		j->out_len = build_answer(x, err, pkt, plen, sec, why, j->out, j->cap);
		st = j->out_len ? BW_STAGE_DONE : BW_STAGE_DROP;
	} else {
		w->stats.servfail++;
		st = stage_error(j, BW_RCODE_SERVFAIL, BW_EDE_OTHER, "resolver unavailable");
	}
	if (x->via == BW_VIA_TCP)
		bw_tcp_conn_release(x->conn);
	qctx_put(x);
	return st;
}

size_t bw_pipeline_query(struct bw_worker *w, const struct bw_origin *o, const uint8_t *pkt,
			 size_t len, uint8_t *out, size_t cap)
{
	struct job j;
	j.w = w;
	j.o = o;
	j.out = out;
	j.cap = cap;
	j.out_len = 0;
	j.stale_possible = false;
	w->stats.queries++;

	enum bw_stage st = stage_parse(&j, pkt, len);
	if (st == BW_STAGE_NEXT)
		st = stage_cache(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_policy(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_any(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_resolve(&j);
	return st == BW_STAGE_DONE ? j.out_len : 0;
}

/* ---- asynchronous part ---- */

static void deliver(struct bw_qctx *x, const uint8_t *msg, size_t len)
{
	if (x->answered) {
		/* the client already has a (stale) answer */
		if (x->via == BW_VIA_TCP)
			bw_tcp_conn_release(x->conn);
		return;
	}
	if (x->via == BW_VIA_UDP) {
		if (len && sendto(x->fd, msg, len, MSG_DONTWAIT, (struct sockaddr *)&x->peer,
				  x->peerlen) < 0)
			bw_debug("sendto: %s", strerror(errno));
	} else if (len) {
		bw_tcp_conn_answer(x->conn, msg, len);
	} else {
		bw_tcp_conn_release(x->conn);
	}
}

/* Upstream failed: a stale answer if we have one (RFC 8767), else SERVFAIL + EDE. */
static size_t fail_answer(struct bw_qctx *x, uint16_t ede, const char *text, uint8_t *out,
			  size_t cap)
{
	struct bw_worker *w = x->w;
	size_t limit = answer_limit(&x->q, x->via);
	int n = 0;
	if (w->srv->conf->cache.stale_ttl)
		n = bw_cache_lookup(w->srv->cache, &x->key, &x->q, bw_now_sec(), true, limit, out,
				    cap);
	if (n > 0) {
		w->stats.stale++;
		return (size_t)n;
	}
	w->stats.servfail++;
	n = bw_answer_error(&x->q, BW_RCODE_SERVFAIL, ede, text, out, cap);
	return n > 0 ? (size_t)n : 0;
}

/* Policy after resolution: every name of the answer's CNAME chain. */
static bool post_policy(struct bw_qctx *x, struct bw_answer_meta *m)
{
	struct bw_worker *w = x->w;
	const struct bw_chain *c = &w->chain;
	for (unsigned i = 0; i < c->n; i++) {
		if (c->len[i] == x->q.qname_len && !memcmp(c->name[i], x->q.qname_lc, c->len[i]))
			continue; /* checked before resolution */
		struct bw_verdict v;
		if (!bw_policy_match(w->state->policy, c->name[i], c->len[i], &v))
			continue;
		w->stats.blocked_cname++;
		uint32_t ttl = m->ttl;
		bw_answer_meta_init(m);
		m->rcode = BW_RCODE_NXDOMAIN;
		m->ttl = ttl;
		m->ede = v.ede;
		blocked_text(m->ede_text, sizeof(m->ede_text), &v, c->name[i], c->len[i]);
		return true;
	}
	return false;
}

/* Turns the resolver's result for x into the answer to send, in out. Returns its length
 * (0: nothing to send). Needs the policy state held. */
static size_t build_answer(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len,
			   enum bw_sec sec, const char *why_bogus, uint8_t *out, size_t cap)
{
	struct bw_worker *w = x->w;
	size_t limit = answer_limit(&x->q, x->via);
	struct bw_answer_meta *m = &w->meta;

	if (err)
		return fail_answer(x, BW_EDE_NO_REACHABLE_AUTHORITY, "upstream unreachable", out,
				   cap);
	int rc = bw_answer_from_wire(pkt, len, &x->q, x->q.do_bit, m, w->body, sizeof(w->body),
				     &w->chain);
	if (rc != 0)
		return fail_answer(x, BW_EDE_NETWORK_ERROR, "malformed upstream answer", out, cap);
	if (sec == BW_SEC_BOGUS && !(x->q.flags & BW_DNS_CD)) {
		w->stats.bogus++;
		w->stats.servfail++;
		char text[sizeof(m->ede_text)];
		snprintf(text, sizeof(text), "%s", why_bogus ? why_bogus : "validation failed");
		int n = bw_answer_error(&x->q, BW_RCODE_SERVFAIL, BW_EDE_DNSSEC_BOGUS, text, out,
					cap);
		return n > 0 ? (size_t)n : 0;
	}
	if (m->rcode == BW_RCODE_SERVFAIL)
		return fail_answer(x, BW_EDE_NO_REACHABLE_AUTHORITY, "upstream failure", out, cap);
	m->secure = (uint8_t)sec;
	if (sec == BW_SEC_SECURE && (x->q.do_bit || (x->q.flags & BW_DNS_AD)))
		m->flags |= BW_DNS_AD;
	post_policy(x, m);
	bw_cache_store(w->srv->cache, &x->key, m, w->body, bw_now_sec());
	w->stats.resolved++;
	int n = bw_answer_write(&x->q, m, w->body, 0, 0, limit, out, cap);
	return n > 0 ? (size_t)n : 0;
}

static void finish(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
		   const char *why_bogus)
{
	struct bw_worker *w = x->w;
	size_t n = 0;
	bw_worker_hold_state(w);
	if (!(x->answered && err)) /* a late failure after a stale answer changes nothing */
		n = build_answer(x, err, pkt, len, sec, why_bogus, w->out, sizeof(w->out));
	bw_worker_drop_state(w);
	deliver(x, w->out, n);
	qctx_put(x);
}

void bw_pipeline_resolved(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
			  const char *why_bogus)
{
	struct bw_qctx *x = arg;
	if (!x->busy)
		return; /* timed out and already answered */
	x->ub_id = 0;
	evtimer_del(x->timer);
	finish(x, err, pkt, len, sec, why_bogus);
}

void bw_pipeline_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_qctx *x = arg;
	struct bw_worker *w = x->w;
	if (!x->busy)
		return;
	uint64_t now = bw_now_ms();
	if (!x->answered && x->stale_possible && now < x->deadline_ms) {
		/* answer stale now, keep resolving until the deadline to refresh the cache */
		size_t limit = answer_limit(&x->q, x->via);
		int n = bw_cache_lookup(w->srv->cache, &x->key, &x->q, bw_now_sec(), true, limit,
					w->out, sizeof(w->out));
		if (n > 0) {
			w->stats.stale++;
			if (x->via == BW_VIA_UDP)
				deliver(x, w->out, (size_t)n);
			else
				bw_tcp_conn_send(x->conn, w->out, (size_t)n);
			x->answered = true;
			uint64_t left = x->deadline_ms - now;
			struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
			evtimer_add(x->timer, &tv);
			return;
		}
	}
	bw_resolver_cancel(x->resolver, x->ub_id);
	x->ub_id = 0;
	finish(x, BW_RCODE_SERVFAIL, NULL, 0, BW_SEC_INSECURE, NULL);
}
