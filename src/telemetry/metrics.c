/*
 * telemetry/metrics.c - the Prometheus text exposition and its HTTP endpoint (libevent's
 * evhttp on a thread and event loop of its own, so a slow scraper never touches a worker).
 */
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/base.h"
#include "telemetry/metrics.h"

const uint64_t bw_metrics_lat_bounds_us[BW_METRICS_LAT_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};

void bw_metrics_counts_add(struct bw_metrics_counts *a, const struct bw_metrics_counts *b)
{
	for (unsigned i = 0; i < BW_ARRAY_LEN(a->rcode); i++)
		a->rcode[i] += b->rcode[i];
	for (unsigned i = 0; i < BW_ARRAY_LEN(a->profile); i++)
		a->profile[i] += b->profile[i];
	for (unsigned i = 0; i < BW_ARRAY_LEN(a->feed_blocked); i++)
		a->feed_blocked[i] += b->feed_blocked[i];
	for (unsigned i = 0; i < BW_ARRAY_LEN(a->lat_bucket); i++)
		a->lat_bucket[i] += b->lat_bucket[i];
	a->lat_sum_us += b->lat_sum_us;
	a->lat_count += b->lat_count;
	a->dnstap_sent += b->dnstap_sent;
	a->dnstap_dropped += b->dnstap_dropped;
	a->blocked_cached += b->blocked_cached;
}

/* ---- stable label slots ---- */

int bw_metrics_slots_init(struct bw_metrics_slots *s, unsigned cap)
{
	memset(s, 0, sizeof(*s));
	s->a = calloc(cap, sizeof(*s->a));
	s->b = calloc(cap, sizeof(*s->b));
	if (!s->a || !s->b || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s->a);
		free(s->b);
		s->a = s->b = NULL;
		return BW_ENOMEM;
	}
	s->cap = cap;
	return 0;
}

void bw_metrics_slots_free(struct bw_metrics_slots *s)
{
	if (!s->a)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->a);
	free(s->b);
	s->a = s->b = NULL;
}

unsigned bw_metrics_slot(struct bw_metrics_slots *s, const char *a, const char *b)
{
	char ka[BW_METRICS_LABEL_MAX], kb[BW_METRICS_LABEL_MAX];
	snprintf(ka, sizeof(ka), "%s", a ? a : "");
	snprintf(kb, sizeof(kb), "%s", b ? b : "");
	pthread_mutex_lock(&s->lock);
	unsigned i;
	for (i = 0; i < s->n; i++)
		if (!strcmp(s->a[i], ka) && !strcmp(s->b[i], kb))
			goto out;
	if (s->n + 1 < s->cap) {
		i = s->n++;
		memcpy(s->a[i], ka, sizeof(ka));
		memcpy(s->b[i], kb, sizeof(kb));
	} else {
		/* full: everything new shares the last slot */
		i = s->cap - 1;
		if (s->n < s->cap) {
			s->n = s->cap;
			snprintf(s->a[i], sizeof(s->a[i]), "_other");
			snprintf(s->b[i], sizeof(s->b[i]), "_other");
		}
	}
out:
	pthread_mutex_unlock(&s->lock);
	return i;
}

/* ---- text exposition ---- */

const char *bw_metrics_escape(const char *in, char *buf, size_t cap)
{
	size_t o = 0;
	for (; *in && o + 3 < cap; in++) {
		char ch = *in;
		if (ch == '\\' || ch == '"') {
			buf[o++] = '\\';
			buf[o++] = ch;
		} else if (ch == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = ch;
		}
	}
	buf[o] = 0;
	return buf;
}

struct out {
	struct evbuffer *b;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (o->err)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->err = BW_ENOMEM;
	va_end(ap);
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void u64(struct out *o, const char *name, uint64_t v)
{
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

static const char *rcode_name(unsigned r)
{
	static const char *const names[16] = {
	    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
	    "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
	};
	return r < 16 ? names[r] : "OTHER";
}

/* Queries, answers, profiles and blocks. */
static void put_queries(struct out *o, const struct bw_metrics_sample *s)
{
	char e1[2 * BW_METRICS_LABEL_MAX + 4], e2[2 * BW_METRICS_LABEL_MAX + 4];
	const struct bw_metrics_counts *c = &s->c;

	family(o, "bulwark_workers", "gauge", "Worker threads answering queries.");
	u64(o, "bulwark_workers", s->workers);

	family(o, "bulwark_queries_total", "counter", "Queries received, by transport.");
	put(o, "bulwark_queries_total{transport=\"udp\"} %llu\n",
	    (unsigned long long)s->queries_udp);
	put(o, "bulwark_queries_total{transport=\"tcp\"} %llu\n",
	    (unsigned long long)s->queries_tcp);

	family(o, "bulwark_responses_total", "counter", "Responses sent, by response code.");
	for (unsigned r = 0; r < 16; r++)
		if (c->rcode[r] || r <= 5)
			put(o, "bulwark_responses_total{rcode=\"%s\"} %llu\n", rcode_name(r),
			    (unsigned long long)c->rcode[r]);

	family(o, "bulwark_profile_queries_total", "counter",
	       "Queries, by the policy profile selected for them.");
	for (unsigned i = 0; i < s->n_profile_slots && i < BW_METRICS_PROFILE_SLOTS; i++)
		put(o, "bulwark_profile_queries_total{profile=\"%s\"} %llu\n",
		    bw_metrics_escape(s->profile_slot[i], e1, sizeof(e1)),
		    (unsigned long long)c->profile[i]);

	family(o, "bulwark_blocked_total", "counter",
	       "Queries answered by a blocking rule, by feed and category.");
	for (unsigned i = 0; i < s->n_feed_slots && i < BW_METRICS_FEED_SLOTS; i++)
		put(o, "bulwark_blocked_total{feed=\"%s\",category=\"%s\"} %llu\n",
		    bw_metrics_escape(s->feed_slot[i][0], e1, sizeof(e1)),
		    bw_metrics_escape(s->feed_slot[i][1], e2, sizeof(e2)),
		    (unsigned long long)c->feed_blocked[i]);
	family(o, "bulwark_blocked_cached_total", "counter",
	       "Blocked answers served again from the cache (not counted in bulwark_blocked_total).");
	u64(o, "bulwark_blocked_cached_total", c->blocked_cached);
	family(o, "bulwark_blocked_after_resolution_total", "counter",
	       "Blocks decided on the answer, by what matched (a CNAME target or an address).");
	put(o, "bulwark_blocked_after_resolution_total{match=\"cname\"} %llu\n",
	    (unsigned long long)s->blocked_cname);
	put(o, "bulwark_blocked_after_resolution_total{match=\"address\"} %llu\n",
	    (unsigned long long)s->blocked_ip);
	family(o, "bulwark_log_only_total", "counter",
	       "Queries a feed on trial (log-only) matched, answered normally.");
	u64(o, "bulwark_log_only_total", s->log_only);
	family(o, "bulwark_allowlisted_total", "counter", "Queries an allowlist let through.");
	u64(o, "bulwark_allowlisted_total", s->allowlisted);

}

/* The packet cache. */
static void put_cache(struct out *o, const struct bw_metrics_sample *s)
{
	family(o, "bulwark_cache_hits_total", "counter", "Packet cache hits.");
	u64(o, "bulwark_cache_hits_total", s->cache_hits);
	family(o, "bulwark_cache_misses_total", "counter", "Packet cache misses.");
	u64(o, "bulwark_cache_misses_total", s->cache_misses);
	family(o, "bulwark_cache_entries", "gauge", "Answers in the packet cache.");
	u64(o, "bulwark_cache_entries", s->cache_entries);
	family(o, "bulwark_cache_bytes", "gauge", "Bytes the packet cache holds.");
	u64(o, "bulwark_cache_bytes", s->cache_bytes);
	family(o, "bulwark_cache_capacity_bytes", "gauge", "The packet cache's configured size.");
	u64(o, "bulwark_cache_capacity_bytes", s->cache_capacity);
	family(o, "bulwark_cache_evictions_total", "counter",
	       "Cache entries evicted to make room.");
	u64(o, "bulwark_cache_evictions_total", s->cache_evictions);
	family(o, "bulwark_cache_bucket_evictions_total", "counter",
	       "Of those, entries evicted because their hash bucket was full (a steady rise "
	       "means someone is trying to flood one bucket).");
	u64(o, "bulwark_cache_bucket_evictions_total", s->cache_bucket_evictions);
}

/* Stream connections refused or evicted (net/admit.c). */
static void put_connections(struct out *o, const struct bw_metrics_sample *s)
{
	static const char *const streams[BW_METRICS_STREAMS] = {"tcp", "dot", "doh"};
	family(o, "bulwark_connections_refused_total", "counter",
	       "Stream connections closed at accept: the client already held its share "
	       "(reason=\"client-share\") or the listener was full with no idle connection "
	       "to close (reason=\"full\").");
	for (int k = 0; k < BW_METRICS_STREAMS; k++) {
		put(o, "bulwark_connections_refused_total{transport=\"%s\",reason=\"client-share\"} "
			"%llu\n", streams[k], (unsigned long long)s->conn_refused_client[k]);
		put(o, "bulwark_connections_refused_total{transport=\"%s\",reason=\"full\"} %llu\n",
		    streams[k], (unsigned long long)s->conn_refused_full[k]);
	}
	family(o, "bulwark_connections_evicted_total", "counter",
	       "Idle stream connections closed to make room for a new one (RFC 7766 6.2.3).");
	for (int k = 0; k < BW_METRICS_STREAMS; k++)
		put(o, "bulwark_connections_evicted_total{transport=\"%s\"} %llu\n", streams[k],
		    (unsigned long long)s->conn_evicted[k]);
}

/* Queries refused for their ClientID, over their rate limit or RRL (core/pipeline.c,
 * core/ratelimit.c), and the fixed memory of the rate-limit tables. */
static void put_limits(struct out *o, const struct bw_metrics_sample *s)
{
	static const char *const why[2] = {"unknown", "missing"};
	family(o, "bulwark_client_id_refused_total", "counter",
	       "Queries answered REFUSED for their ClientID: one no client has "
	       "(reason=\"unknown\") or none on a listener that needs one (reason=\"missing\").");
	for (int k = 0; k < 2; k++)
		put(o, "bulwark_client_id_refused_total{reason=\"%s\"} %llu\n", why[k],
		    (unsigned long long)s->client_id_refused[k]);
	family(o, "bulwark_client_id_dropped_total", "counter",
	       "Of such queries, those left unanswered because too many came (more than 100 a "
	       "second per worker).");
	for (int k = 0; k < 2; k++)
		put(o, "bulwark_client_id_dropped_total{reason=\"%s\"} %llu\n", why[k],
		    (unsigned long long)s->client_id_dropped[k]);
	family(o, "bulwark_rate_limited_total", "counter",
	       "Queries over their client prefix's server.rate-limit (UDP: dropped; TCP, DoT, "
	       "DoH: REFUSED).");
	u64(o, "bulwark_rate_limited_total", s->rate_limited);
	family(o, "bulwark_rrl_answers_total", "counter",
	       "UDP answers over server.rrl's responses-per-second for their prefix and answer: "
	       "dropped, or sent truncated (action=\"slip\") so that real clients retry over TCP.");
	put(o, "bulwark_rrl_answers_total{action=\"drop\"} %llu\n",
	    (unsigned long long)s->rrl_dropped);
	put(o, "bulwark_rrl_answers_total{action=\"slip\"} %llu\n",
	    (unsigned long long)s->rrl_slipped);
	family(o, "bulwark_rate_limit_table_bytes", "gauge",
	       "Memory of the rate-limit and RRL tables: fixed at start, whatever the sources.");
	u64(o, "bulwark_rate_limit_table_bytes", s->rate_limit_table_bytes);
}

/* Stale answers, the resolver backend, DNSSEC, overload and drops. */
static void put_backend(struct out *o, const struct bw_metrics_sample *s)
{
	const struct bw_metrics_counts *c = &s->c;

	family(o, "bulwark_stale_answers_total", "counter",
	       "Expired answers served because the upstream failed (RFC 8767).");
	u64(o, "bulwark_stale_answers_total", s->stale);

	family(o, "bulwark_coalesced_total", "counter",
	       "Cache misses answered by another worker's resolution of the same name, "
	       "asked at the same time (one upstream resolution for both).");
	u64(o, "bulwark_coalesced_total", s->coalesced);

	family(o, "bulwark_backend_latency_seconds", "histogram",
	       "Time the resolver backend took to answer a cache miss.");
	uint64_t cum = 0;
	for (unsigned i = 0; i < BW_METRICS_LAT_BUCKETS; i++) {
		cum += c->lat_bucket[i];
		put(o, "bulwark_backend_latency_seconds_bucket{le=\"%g\"} %llu\n",
		    (double)bw_metrics_lat_bounds_us[i] / 1e6, (unsigned long long)cum);
	}
	cum += c->lat_bucket[BW_METRICS_LAT_BUCKETS];
	put(o, "bulwark_backend_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)cum);
	put(o, "bulwark_backend_latency_seconds_sum %.6f\n", (double)c->lat_sum_us / 1e6);
	put(o, "bulwark_backend_latency_seconds_count %llu\n", (unsigned long long)c->lat_count);
	family(o, "bulwark_dnssec_bogus_total", "counter",
	       "Answers that failed DNSSEC validation (SERVFAIL sent).");
	u64(o, "bulwark_dnssec_bogus_total", s->bogus);
	family(o, "bulwark_overload_total", "counter",
	       "Queries refused because too many were waiting on the resolver.");
	u64(o, "bulwark_overload_total", s->overload);
	family(o, "bulwark_inflight_share_refused_total", "counter",
	       "Queries refused (SERVFAIL) because their client already had "
	       "server.max-inflight-per-client queries waiting on the resolver.");
	u64(o, "bulwark_inflight_share_refused_total", s->share_refused);
	family(o, "bulwark_dropped_total", "counter",
	       "Queries dropped without an answer (access control, truncated, send failures).");
	u64(o, "bulwark_dropped_total", s->dropped);

}

/* The live policy and its feeds. */
static void put_feeds(struct out *o, const struct bw_metrics_sample *s)
{
	char e1[2 * BW_METRICS_LABEL_MAX + 4], e2[2 * BW_METRICS_LABEL_MAX + 4];
	char e3[2 * sizeof(s->feed[0].error) + 4];

	family(o, "bulwark_policy_generation", "gauge", "Generation of the live policy.");
	u64(o, "bulwark_policy_generation", s->policy_generation);
	family(o, "bulwark_policy_entries", "gauge", "Names and networks the live policy blocks.");
	u64(o, "bulwark_policy_entries", s->policy_entries);
	family(o, "bulwark_profile_paused", "gauge",
	       "1 while the profile's blocking is paused (bulwarkctl pause), else 0.");
	for (unsigned i = 0; i < s->n_profiles && i < BW_METRICS_PROFILE_SLOTS; i++)
		put(o, "bulwark_profile_paused{profile=\"%s\"} %d\n",
		    bw_metrics_escape(s->profile_name[i], e1, sizeof(e1)), s->profile_paused[i] ? 1 : 0);
	family(o, "bulwark_feed_entries", "gauge", "Rules a feed contributes to the live policy.");
	for (unsigned i = 0; i < s->n_feeds; i++)
		put(o, "bulwark_feed_entries{feed=\"%s\",category=\"%s\"} %llu\n",
		    bw_metrics_escape(s->feed[i].name, e1, sizeof(e1)),
		    bw_metrics_escape(s->feed[i].category, e2, sizeof(e2)),
		    (unsigned long long)s->feed[i].entries);
	family(o, "bulwark_feed_age_seconds", "gauge",
	       "Seconds since the feed data in use was last modified.");
	for (unsigned i = 0; i < s->n_feeds; i++)
		if (s->feed[i].age_sec >= 0)
			put(o, "bulwark_feed_age_seconds{feed=\"%s\"} %.0f\n",
			    bw_metrics_escape(s->feed[i].name, e1, sizeof(e1)), s->feed[i].age_sec);
	family(o, "bulwark_feed_load_failed", "gauge",
	       "1 when the feed's last load failed and its previous version is kept.");
	for (unsigned i = 0; i < s->n_feeds; i++)
		put(o, "bulwark_feed_load_failed{feed=\"%s\"} %d\n",
		    bw_metrics_escape(s->feed[i].name, e1, sizeof(e1)), s->feed[i].failed ? 1 : 0);
	family(o, "bulwark_feed_last_error_info", "gauge",
	       "Why a feed's last load failed (one series per failing feed, value 1).");
	for (unsigned i = 0; i < s->n_feeds; i++)
		if (s->feed[i].failed)
			put(o, "bulwark_feed_last_error_info{feed=\"%s\",error=\"%s\"} 1\n",
			    bw_metrics_escape(s->feed[i].name, e1, sizeof(e1)),
			    bw_metrics_escape(s->feed[i].error, e3, sizeof(e3)));
	family(o, "bulwark_feed_state", "gauge",
	       "A feed's state, one series per feed (value 1): ok, failed (its last load failed, "
	       "the previous version is kept), held-back (a local file that shrank below "
	       "min-ratio, waiting for `bulwarkctl feeds accept`) or changing (a local file "
	       "caught while being written, read again at the next look); reason: why.");
	for (unsigned i = 0; i < s->n_feeds; i++)
		put(o, "bulwark_feed_state{feed=\"%s\",state=\"%s\",reason=\"%s\"} 1\n",
		    bw_metrics_escape(s->feed[i].name, e1, sizeof(e1)),
		    s->feed[i].state ? s->feed[i].state : "ok",
		    bw_metrics_escape(s->feed[i].error, e3, sizeof(e3)));

}

/* dnstap and the query log, when they run. */
static void put_telemetry(struct out *o, const struct bw_metrics_sample *s)
{
	const struct bw_metrics_counts *c = &s->c;

	if (s->dnstap) {
		family(o, "bulwark_dnstap_messages_total", "counter",
		       "dnstap messages handed to the output thread.");
		u64(o, "bulwark_dnstap_messages_total", c->dnstap_sent);
		family(o, "bulwark_dnstap_dropped_total", "counter",
		       "dnstap messages dropped because the output queue was full.");
		u64(o, "bulwark_dnstap_dropped_total", c->dnstap_dropped);
	}
	if (s->have_telemetry) {
		family(o, "bulwark_telemetry_dropped_total", "counter",
		       "Query log and event records dropped because telemetry could not keep up.");
		u64(o, "bulwark_telemetry_dropped_total", s->telemetry_dropped);
		family(o, "bulwark_query_log_waiting", "gauge",
		       "Query log records in the spool, not yet written to the SQLite file.");
		u64(o, "bulwark_query_log_waiting", s->query_log_waiting);
		family(o, "bulwark_query_log_spool_bytes", "gauge",
		       "Bytes of the query log's spool files.");
		u64(o, "bulwark_query_log_spool_bytes", s->query_log_spool_bytes);
	}
}

int bw_metrics_format(const struct bw_metrics_sample *s, struct evbuffer *out)
{
	struct out o = {.b = out};
	put_queries(&o, s);
	put_cache(&o, s);
	put_connections(&o, s);
	put_limits(&o, s);
	put_backend(&o, s);
	put_feeds(&o, s);
	put_telemetry(&o, s);
	return o.err;
}

/* ---- the HTTP endpoint ---- */

struct bw_metrics_http {
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct event *stop_ev;
	int stop_fd;
	bw_metrics_collect_fn collect;
	void *ctx;
};

static void on_request(struct evhttp_request *req, void *arg)
{
	struct bw_metrics_http *h = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);

	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(hdr, "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	struct bw_metrics_sample *s = calloc(1, sizeof(*s));
	struct evbuffer *body = evbuffer_new();
	if (!s || !body) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		goto out;
	}
	h->collect(h->ctx, s);
	if (bw_metrics_format(s, body) != 0) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		goto out;
	}
	evhttp_add_header(hdr, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
out:
	if (body)
		evbuffer_free(body);
	free(s);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_metrics_http *h = arg;
	event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	struct bw_metrics_http *h = arg;
	event_base_dispatch(h->base);
	return NULL;
}

static void http_free(struct bw_metrics_http *h)
{
	if (h->http)
		evhttp_free(h->http);
	if (h->stop_ev)
		event_free(h->stop_ev);
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	if (h->base)
		event_base_free(h->base);
	free(h);
}

struct bw_metrics_http *bw_metrics_http_start(const struct sockaddr *addr, socklen_t addrlen,
					      bw_metrics_collect_fn collect, void *ctx,
					      char *err, size_t errlen)
{
	struct bw_metrics_http *h = calloc(1, sizeof(*h));
	int fd = -1;
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->stop_fd = -1;
	h->collect = collect;
	h->ctx = ctx;
	h->base = event_base_new();
	h->http = h->base ? evhttp_new(h->base) : NULL;
	h->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!h->http || h->stop_fd < 0) {
		snprintf(err, errlen, "metrics: cannot create the HTTP endpoint");
		goto fail;
	}
	h->stop_ev = event_new(h->base, h->stop_fd, EV_READ, on_stop, h);
	if (!h->stop_ev || event_add(h->stop_ev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, addr, addrlen) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "metrics: cannot listen: %s", strerror(errno));
		goto fail;
	}
	if (!evhttp_accept_socket_with_handle(h->http, fd)) {
		snprintf(err, errlen, "metrics: cannot accept on the listener");
		goto fail;
	}
	fd = -1; /* evhttp owns it now */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 4096);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_gencb(h->http, on_request, h);
	int rc = pthread_create(&h->thread, NULL, http_main, h);
	if (rc != 0) {
		snprintf(err, errlen, "metrics: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	pthread_setname_np(h->thread, "bw-metrics");
	return h;
fail:
	if (fd >= 0)
		close(fd);
	http_free(h);
	return NULL;
}

void bw_metrics_http_stop(struct bw_metrics_http *h)
{
	if (!h)
		return;
	uint64_t one = 1;
	if (write(h->stop_fd, &one, sizeof(one)) < 0)
		bw_warn("metrics: cannot stop the endpoint: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	http_free(h);
}
