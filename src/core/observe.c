/*
 * core/observe.c - what the core tells the outside about itself: the metrics endpoint's
 * collect callback (workers' counters summed, cache, feeds) and dnstap messages.
 *
 * Scrapes never read a worker's live counters: the scraping thread asks every worker
 * (through its control eventfd) to copy its counters into `pub` under pub_lock, waits for
 * the copies (at most SCRAPE_WAIT_MS; a worker that did not answer by then contributes
 * its previous copy), then sums. Workers count with plain increments; nothing on the
 * query path is atomic or locked for metrics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/observe.h"

#define SCRAPE_WAIT_MS 500

/* ---- metrics ---- */

void bw_obs_publish(struct bw_worker *w)
{
	uint64_t req = atomic_load_explicit(&w->pub_req, memory_order_acquire);
	struct bw_server *s = w->srv;
	pthread_mutex_lock(&s->pub_lock);
	if (w->pub_done != req) {
		w->pub = w->stats;
		w->pub_done = req;
		pthread_cond_broadcast(&s->pub_cond);
	}
	pthread_mutex_unlock(&s->pub_lock);
}

void bw_obs_state_slots(struct bw_server *s, struct bw_state *st)
{
	const struct bw_policy *p = st->policy;
	size_t nf = bw_policy_feed_count(p);
	for (size_t i = 0; i < nf && i < BW_METRICS_MAX_FEEDS; i++) {
		const struct bw_feed_status *f = bw_policy_feed_status(p, i);
		st->feed_slot[i] = (uint8_t)bw_metrics_slot(&s->feed_slots, f->name, f->category);
	}
	unsigned np = bw_policy_profile_count(p);
	for (unsigned i = 0; i < np && i < 256; i++)
		st->profile_slot[i] =
		    (uint8_t)bw_metrics_slot(&s->profile_slots, bw_policy_profile_name(p, i), "");
}

static void add_stats(struct bw_metrics_sample *o, const struct bw_worker_stats *w)
{
	o->queries_udp += w->udp;
	o->queries_tcp += w->tcp;
	o->cache_hits += w->cache_hits;
	o->cache_misses += w->cache_misses;
	o->blocked_cname += w->blocked_cname;
	o->blocked_ip += w->blocked_ip;
	o->log_only += w->log_only;
	o->allowlisted += w->allowlisted;
	o->stale += w->stale;
	o->coalesced += w->coalesced;
	o->dropped += w->dropped;
	o->overload += w->overload;
	o->bogus += w->bogus;
	o->rate_limited += w->rate_limited;
	o->share_refused += w->share_refused;
	o->rrl_dropped += w->rrl_dropped;
	o->rrl_slipped += w->rrl_slipped;
	for (int k = 0; k < 2; k++) {
		o->client_id_refused[k] += w->client_id_refused[k];
		o->client_id_dropped[k] += w->client_id_dropped[k];
	}
	for (int k = 0; k < BW_METRICS_STREAMS; k++) {
		o->conn_refused_client[k] += w->conn[k].refused_client;
		o->conn_refused_full[k] += w->conn[k].refused_full;
		o->conn_evicted[k] += w->conn[k].evicted;
	}
	bw_metrics_counts_add(&o->c, &w->m);
}

static void collect_locked(struct bw_server *s, struct bw_metrics_sample *o)
{

	/* the workers' counters: ask for fresh copies, wait a little, sum */
	pthread_mutex_lock(&s->pub_lock);
	uint64_t ticket = ++s->pub_ticket;
	for (unsigned i = 0; i < s->nworkers; i++) {
		atomic_store_explicit(&s->workers[i]->pub_req, ticket, memory_order_release);
		bw_worker_wake(s->workers[i]);
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)SCRAPE_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	for (;;) {
		unsigned done = 0;
		for (unsigned i = 0; i < s->nworkers; i++)
			done += s->workers[i]->pub_done >= ticket; /* or a later ask's copy */
		if (done == s->nworkers)
			break;
		if (pthread_cond_timedwait(&s->pub_cond, &s->pub_lock, &until) == ETIMEDOUT)
			break;
	}
	o->workers = s->nworkers;
	for (unsigned i = 0; i < s->nworkers; i++)
		add_stats(o, &s->workers[i]->pub);
	pthread_mutex_unlock(&s->pub_lock);

	/* slot labels */
	pthread_mutex_lock(&s->feed_slots.lock);
	o->n_feed_slots = s->feed_slots.n;
	for (unsigned i = 0; i < o->n_feed_slots; i++) {
		memcpy(o->feed_slot[i][0], s->feed_slots.a[i], BW_METRICS_LABEL_MAX);
		memcpy(o->feed_slot[i][1], s->feed_slots.b[i], BW_METRICS_LABEL_MAX);
	}
	pthread_mutex_unlock(&s->feed_slots.lock);
	pthread_mutex_lock(&s->profile_slots.lock);
	o->n_profile_slots = s->profile_slots.n;
	for (unsigned i = 0; i < o->n_profile_slots; i++)
		memcpy(o->profile_slot[i], s->profile_slots.a[i], BW_METRICS_LABEL_MAX);
	pthread_mutex_unlock(&s->profile_slots.lock);

	/* the cache */
	struct bw_cache_stats cs;
	bw_cache_stats(s->cache, &cs);
	o->cache_entries = cs.entries;
	o->cache_bytes = cs.bytes;
	o->cache_evictions = cs.evictions;
	o->cache_bucket_evictions = cs.chain_evictions;
	o->cache_capacity = s->conf->cache.size;
	o->rate_limit_table_bytes = bw_ratelimit_bytes(s->ratelimit) + bw_ratelimit_bytes(s->rrl);

	/* the live policy's feeds: held like a worker holds it, in the scraper's own slot */
	const struct bw_state *st = bw_snapref_acquire(&s->state_ref,
								s->nworkers + BW_READER_METRICS);
	o->policy_generation = st->generation;
	o->policy_entries = bw_policy_entries(st->policy);
	o->n_profiles = BW_MIN(bw_policy_profile_count(st->policy), BW_METRICS_PROFILE_SLOTS);
	for (unsigned k = 0; k < o->n_profiles; k++) {
		snprintf(o->profile_name[k], sizeof(o->profile_name[k]), "%s",
			 bw_policy_profile_name(st->policy, k));
		o->profile_paused[k] = bw_state_paused(st, k);
	}
	size_t nf = bw_policy_feed_count(st->policy);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double now_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	for (size_t i = 0; i < nf && i < BW_METRICS_MAX_FEEDS; i++) {
		const struct bw_feed_status *f = bw_policy_feed_status(st->policy, i);
		struct bw_metrics_feed *m = &o->feed[o->n_feeds++];
		snprintf(m->name, sizeof(m->name), "%s", f->name ? f->name : "");
		snprintf(m->category, sizeof(m->category), "%s", f->category ? f->category : "");
		m->entries = f->entries;
		m->age_sec = f->file_mtime_ns ? now_s - (double)f->file_mtime_ns / 1e9 : -1;
		if (m->age_sec < 0 && f->file_mtime_ns)
			m->age_sec = 0;
		m->failed = f->load_error != 0;
		m->kept_previous = f->kept_previous;
		m->state = m->failed ? "failed" : f->held_back ? "held-back"
			   : f->changing ? "changing" : "ok";
		snprintf(m->error, sizeof(m->error), "%s",
			 f->error[0] ? f->error : m->failed ? bw_strerror(f->load_error) : "");
		/* a fetched feed's rejected version: the policy still has the last good copy */
		if (!m->failed && s->feed_failed && f->name &&
		    s->feed_failed(s->feed_failed_ctx, f->name, m->error, sizeof(m->error))) {
			m->failed = true;
			m->state = "failed";
		}
	}
	bw_snapref_release(&s->state_ref, s->nworkers + BW_READER_METRICS);

	o->dnstap = s->dnstap != NULL;
	pthread_mutex_lock(&s->pub_lock);
	bw_metrics_telemetry_fn tlm = s->telemetry_stats;
	void *tlm_ctx = s->telemetry_stats_ctx;
	pthread_mutex_unlock(&s->pub_lock);
	if (tlm)
		tlm(tlm_ctx, o);
}

void bw_server_sample(struct bw_server *s, struct bw_metrics_sample *o)
{
	pthread_mutex_lock(&s->sample_lock);
	collect_locked(s, o);
	pthread_mutex_unlock(&s->sample_lock);
}

static void collect(void *ctx, struct bw_metrics_sample *o)
{
	bw_server_sample(ctx, o);
}

/* ---- the series (telemetry.h): once a minute, the workers' counters ---- */

static void series_totals(struct bw_server *s, struct bw_series_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < s->nworkers; i++) {
		const struct bw_worker_stats *w = &s->workers[i]->pub;
		t->queries += w->queries;
		t->blocked += w->blocked + w->m.blocked_cached;
		t->cache_hits += w->cache_hits;
		t->transport[BW_SERIES_UDP] += w->udp;
		t->transport[BW_SERIES_TCP] += w->tcp - BW_MIN(w->tcp, w->dot + w->doh);
		t->transport[BW_SERIES_DOT] += w->dot;
		t->transport[BW_SERIES_DOH] += w->doh;
		for (unsigned p = 0; p < BW_SERIES_MAX_PROFILES && p < BW_METRICS_PROFILE_SLOTS; p++)
			t->profile[p] += w->m.profile[p];
	}
}

void bw_obs_series_tick(struct bw_server *s)
{
	if (!s->series || !s->started)
		return;
	uint64_t now = (uint64_t)time(NULL);
	pthread_mutex_lock(&s->pub_lock);
	if (s->series_ticket) {
		/* asked at an earlier tick: wait for every worker's copy, up to 2 s (a worker
		 * that has not copied by then counts in the next minute) */
		unsigned done = 0;
		for (unsigned i = 0; i < s->nworkers; i++)
			done += s->workers[i]->pub_done >= s->series_ticket;
		if (done < s->nworkers && now < s->series_at + 2) {
			pthread_mutex_unlock(&s->pub_lock);
			return;
		}
		struct bw_series_totals t;
		series_totals(s, &t);
		bw_series_sample(s->series, s->series_at, &t);
		s->series_ticket = 0;
	} else if (bw_series_due(s->series, now)) {
		s->series_ticket = ++s->pub_ticket;
		s->series_at = now;
		for (unsigned i = 0; i < s->nworkers; i++) {
			atomic_store_explicit(&s->workers[i]->pub_req, s->series_ticket,
					      memory_order_release);
			bw_worker_wake(s->workers[i]);
		}
	}
	pthread_mutex_unlock(&s->pub_lock);
}

void bw_server_set_feed_failed(struct bw_server *s,
			       bool (*fn)(void *ctx, const char *feed, char *why, size_t whylen),
			       void *ctx)
{
	s->feed_failed = fn;
	s->feed_failed_ctx = ctx;
}

void bw_server_set_telemetry_stats(struct bw_server *s,
				   void (*fn)(void *ctx, struct bw_metrics_sample *out), void *ctx)
{
	pthread_mutex_lock(&s->pub_lock);
	s->telemetry_stats = fn;
	s->telemetry_stats_ctx = ctx;
	pthread_mutex_unlock(&s->pub_lock);
}

int bw_obs_server_init(struct bw_server *s, char *err, size_t errlen)
{
	if (bw_metrics_slots_init(&s->feed_slots, BW_METRICS_FEED_SLOTS) != 0 ||
	    bw_metrics_slots_init(&s->profile_slots, BW_METRICS_PROFILE_SLOTS) != 0 ||
	    pthread_mutex_init(&s->pub_lock, NULL) != 0 ||
	    pthread_mutex_init(&s->sample_lock, NULL) != 0 ||
	    pthread_cond_init(&s->pub_cond, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	if (!(s->series = bw_series_create(BW_METRICS_PROFILE_SLOTS))) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	if (s->conf->dnstap.enabled) {
		s->dnstap = bw_dnstap_create(s->conf, s->nworkers, err, errlen);
		if (!s->dnstap)
			return BW_EIO;
	}
	return 0;
}

int bw_obs_server_start(struct bw_server *s, char *err, size_t errlen)
{
	const struct bw_conf *c = s->conf;
	if (!c->metrics.enabled)
		return 0;
	s->metrics = bw_metrics_http_start((const struct sockaddr *)&c->metrics.addr,
					   c->metrics.addrlen, collect, s, err, errlen);
	if (!s->metrics)
		return BW_EIO;
	bw_info("metrics on http://%s%s%s:%u/metrics", strchr(c->metrics.address, ':') ? "[" : "",
		c->metrics.address, strchr(c->metrics.address, ':') ? "]" : "",
		(unsigned)c->metrics.port);
	return 0;
}

void bw_obs_server_stop(struct bw_server *s)
{
	bw_metrics_http_stop(s->metrics);
	s->metrics = NULL;
}

void bw_obs_server_free(struct bw_server *s)
{
	bw_obs_server_stop(s);
	bw_dnstap_destroy(s->dnstap);
	s->dnstap = NULL;
	bw_series_free(s->series);
	s->series = NULL;
	bw_metrics_slots_free(&s->feed_slots);
	bw_metrics_slots_free(&s->profile_slots);
	if (s->feed_slots.cap) {
		pthread_mutex_destroy(&s->pub_lock);
		pthread_mutex_destroy(&s->sample_lock);
		pthread_cond_destroy(&s->pub_cond);
	}
}

/* ---- dnstap ---- */

void bw_obs_note_block(struct bw_worker *w, const struct bw_query *q,
		       const struct bw_verdict *v, const struct bw_match *via)
{
	struct bw_obs_note *n = &w->note;
	n->set = true;
	switch (v->action) {
	case BW_ACT_NXDOMAIN: n->action = BW_DNSTAP_NXDOMAIN; break;
	case BW_ACT_NODATA: n->action = BW_DNSTAP_NODATA; break;
	case BW_ACT_DROP: n->action = BW_DNSTAP_DROP; break;
	case BW_ACT_TCP_ONLY: n->action = BW_DNSTAP_TRUNCATE; break;
	default: n->action = BW_DNSTAP_LOCAL_DATA; break; /* local data, CNAME redirect */
	}
	snprintf(n->rule, sizeof(n->rule), "%s/%s", v->feed_name ? v->feed_name : "",
		 v->category ? v->category : "");
	n->value_len = 0;
	switch (via ? via->kind : BW_MATCH_QNAME) {
	case BW_MATCH_QNAME:
	case BW_MATCH_GUARD:
		n->match = BW_DNSTAP_MATCH_QNAME;
		memcpy(n->value, q->qname_lc, q->qname_len);
		n->value_len = q->qname_len;
		break;
	case BW_MATCH_CLIENT:
		n->match = BW_DNSTAP_MATCH_CLIENT_IP; /* the value is the (truncated) client */
		break;
	case BW_MATCH_ADDRESS:
		n->match = BW_DNSTAP_MATCH_RESPONSE_IP;
		n->value_len = via->family == AF_INET ? 4 : 16;
		memcpy(n->value, via->addr, n->value_len);
		break;
	case BW_MATCH_CNAME: /* RPZ treats a CNAME target as a new query name */
		n->match = BW_DNSTAP_MATCH_QNAME;
		n->value_len = (uint16_t)BW_MIN(via->name_len, sizeof(n->value));
		memcpy(n->value, via->name, n->value_len);
		break;
	}
}

/* Wall-clock time of a monotonic instant (ns). */
static struct timespec wall_of(uint64_t mono_ns, const struct timespec *now_wall)
{
	uint64_t now_mono = bw_now_ns();
	uint64_t ago = now_mono > mono_ns ? now_mono - mono_ns : 0;
	uint64_t wall = (uint64_t)now_wall->tv_sec * 1000000000ull + (uint64_t)now_wall->tv_nsec;
	wall = wall > ago ? wall - ago : 0;
	return (struct timespec){(time_t)(wall / 1000000000ull), (long)(wall % 1000000000ull)};
}

static void dt_send(struct bw_worker *w, const struct bw_dnstap_msg *m)
{
	if (bw_dnstap_send(w->srv->dnstap, w->index, m) == 0)
		w->stats.m.dnstap_sent++;
	else
		w->stats.m.dnstap_dropped++;
}

static void note_policy(const struct bw_obs_note *n, struct bw_dnstap_policy *p)
{
	p->action = n->action;
	p->match = n->match;
	p->rule = n->rule;
	p->value = n->value;
	p->value_len = n->value_len;
}

void bw_obs_dnstap_sync(struct bw_worker *w, const struct bw_origin *o, const uint8_t *pkt,
			size_t len, const uint8_t *ans, size_t alen)
{
	struct bw_dnstap *d = w->srv->dnstap;
	bool blocked = w->note.set;
	struct bw_dnstap_policy pol;
	struct bw_dnstap_msg m = {
	    .tcp = o->via == BW_VIA_TCP,
	    .client = o->peer,
	    .policy = blocked ? &pol : NULL,
	};
	if (blocked)
		note_policy(&w->note, &pol);
	if (o->listener >= 0 && (size_t)o->listener < w->srv->conf->server.n_listen)
		m.server = (const struct sockaddr *)&w->srv->conf->server.listen[o->listener].addr;
	clock_gettime(CLOCK_REALTIME, &m.qtime);
	if (bw_dnstap_wants(d, BW_DNSTAP_CLIENT_QUERY, blocked)) {
		m.type = BW_DNSTAP_CLIENT_QUERY;
		m.query = pkt;
		m.query_len = len;
		dt_send(w, &m);
	}
	if (ans && alen && bw_dnstap_wants(d, BW_DNSTAP_CLIENT_RESPONSE, blocked)) {
		m.type = BW_DNSTAP_CLIENT_RESPONSE;
		m.query = NULL;
		m.query_len = 0;
		m.response = ans;
		m.response_len = alen;
		m.rtime = m.qtime;
		dt_send(w, &m);
	}
	w->note.set = false;
}

void bw_obs_dnstap_async(struct bw_qctx *x, const uint8_t *ans, size_t alen)
{
	struct bw_worker *w = x->w;
	const struct bw_obs_note *n = w->note.set ? &w->note : x->note.set ? &x->note : NULL;
	struct bw_dnstap_policy pol;
	if (!x->answered && alen && bw_dnstap_wants(w->srv->dnstap, BW_DNSTAP_CLIENT_RESPONSE, n)) {
		struct bw_dnstap_msg m = {
		    .type = BW_DNSTAP_CLIENT_RESPONSE,
		    .tcp = x->via == BW_VIA_TCP,
		    .client = (const struct sockaddr *)&x->peer,
		    .response = ans,
		    .response_len = alen,
		    .policy = n ? &pol : NULL,
		};
		if (n)
			note_policy(n, &pol);
		clock_gettime(CLOCK_REALTIME, &m.rtime);
		m.qtime = x->s.t_start_ns ? wall_of(x->s.t_start_ns, &m.rtime) : m.rtime;
		dt_send(w, &m);
	}
	w->note.set = false;
}
