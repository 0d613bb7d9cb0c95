/*
 * telemetry/metrics.h - Prometheus metrics: the per-worker counter block, stable label
 * slots for feeds and profiles, the text exposition formatter (format 0.0.4) and the
 * local HTTP endpoint (`/metrics`) that serves it. See docs/metrics.md.
 *
 * Owns: the HTTP endpoint's thread, event loop and listener.
 * Borrows: nothing; what to expose comes from the collect callback, which the core
 * implements (it sums the workers' published counters, reads the cache and the feeds).
 *
 * Thread safety: struct bw_metrics_counts belongs to one worker, which alone writes it
 * (plain increments; the core copies it out under a lock when a scrape asks).
 * bw_metrics_slot*() take the slot table's lock and may be called from any thread.
 * bw_metrics_format() is pure. The collect callback runs on the endpoint's thread.
 */
#ifndef BW_TELEMETRY_METRICS_H
#define BW_TELEMETRY_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define BW_METRICS_FEED_SLOTS 128   /* (feed, category) pairs seen since start; last = other */
#define BW_METRICS_PROFILE_SLOTS 64 /* profiles seen since start; the last slot = other */
#define BW_METRICS_LABEL_MAX 96     /* longest label value kept (longer: cut) */
#define BW_METRICS_LAT_BUCKETS 13   /* finite buckets of the backend latency histogram */
#define BW_METRICS_MAX_FEEDS 64     /* feeds in one policy (the policy's limit) */

/* Upper bounds of the latency buckets, in microseconds (+Inf comes after them). */
extern const uint64_t bw_metrics_lat_bounds_us[BW_METRICS_LAT_BUCKETS];

/* What a worker counts beyond the core's own counters. Plain uint64_t only (copied whole). */
struct bw_metrics_counts {
	uint64_t rcode[16];                      /* responses sent, by header RCODE */
	uint64_t profile[BW_METRICS_PROFILE_SLOTS]; /* queries, by profile slot */
	uint64_t feed_blocked[BW_METRICS_FEED_SLOTS]; /* blocks, by (feed, category) slot */
	uint64_t lat_bucket[BW_METRICS_LAT_BUCKETS + 1]; /* not cumulative; last = +Inf */
	uint64_t lat_sum_us, lat_count;
	uint64_t dnstap_sent, dnstap_dropped;
	uint64_t blocked_cached; /* blocked answers served again from the packet cache */
};

static inline void bw_metrics_observe_us(struct bw_metrics_counts *c, uint64_t us)
{
	unsigned i = 0;
	while (i < BW_METRICS_LAT_BUCKETS && us > bw_metrics_lat_bounds_us[i])
		i++;
	c->lat_bucket[i]++;
	c->lat_sum_us += us;
	c->lat_count++;
}

/* Adds every counter of b to a. */
void bw_metrics_counts_add(struct bw_metrics_counts *a, const struct bw_metrics_counts *b);

/*
 * Stable label slots: a feed (name, category) or a profile (name, "") keeps its slot for
 * the life of the process, so per-worker arrays indexed by slot stay right across reloads
 * that add, remove or reorder feeds. When the table is full, new keys share the last slot
 * (exported as "_other").
 */
struct bw_metrics_slots {
	pthread_mutex_t lock;
	unsigned n, cap;
	char (*a)[BW_METRICS_LABEL_MAX];
	char (*b)[BW_METRICS_LABEL_MAX];
};
int bw_metrics_slots_init(struct bw_metrics_slots *s, unsigned cap);
void bw_metrics_slots_free(struct bw_metrics_slots *s);
/* The slot of (a, b), taken now if new. */
unsigned bw_metrics_slot(struct bw_metrics_slots *s, const char *a, const char *b);

/* Per-feed state as loaded (from the live policy). */
struct bw_metrics_feed {
	char name[BW_METRICS_LABEL_MAX], category[BW_METRICS_LABEL_MAX];
	uint64_t entries;
	double age_sec;      /* now - the loaded file's mtime; < 0 when unknown */
	bool failed;         /* the last load failed (the previous version is kept) */
	bool kept_previous;
	const char *state;   /* "ok", "failed", "held-back" or "changing" (static) */
	char error[300];     /* why, when not ok (failed, held back, changing) */
};

/* Stream listeners, for the connection counters: tcp, dot, doh. */
enum { BW_METRICS_STREAM_TCP, BW_METRICS_STREAM_DOT, BW_METRICS_STREAM_DOH, BW_METRICS_STREAMS };

/* One scrape's worth of numbers (summed over workers). */
struct bw_metrics_sample {
	unsigned workers;
	uint64_t queries_udp, queries_tcp;
	uint64_t cache_hits, cache_misses;
	uint64_t blocked_cname, blocked_ip, log_only, allowlisted, stale, dropped, overload,
		bogus;
	uint64_t coalesced; /* misses answered by another worker's resolution */
	struct bw_metrics_counts c;
	/* labels of the slots in use */
	unsigned n_feed_slots, n_profile_slots;
	char feed_slot[BW_METRICS_FEED_SLOTS][2][BW_METRICS_LABEL_MAX];
	char profile_slot[BW_METRICS_PROFILE_SLOTS][BW_METRICS_LABEL_MAX];
	/* cache */
	uint64_t cache_entries, cache_bytes, cache_capacity, cache_evictions, cache_bucket_evictions;
	/* stream connections (net/admit.c), by BW_METRICS_STREAM_* */
	uint64_t conn_refused_client[BW_METRICS_STREAMS], conn_refused_full[BW_METRICS_STREAMS],
		conn_evicted[BW_METRICS_STREAMS];
	/* queries with an unknown ClientID [0] or none where one is required [1] */
	uint64_t client_id_refused[2], client_id_dropped[2];
	/* rate limiting (server.rate-limit, server.rrl) */
	uint64_t rate_limited, rrl_dropped, rrl_slipped, rate_limit_table_bytes;
	uint64_t share_refused; /* over server.max-inflight-per-client */
	/* policy */
	uint64_t policy_generation, policy_entries;
	/* the live policy's profiles (the first BW_METRICS_PROFILE_SLOTS) and whether their
	 * blocking is paused (bulwarkctl pause) */
	unsigned n_profiles;
	char profile_name[BW_METRICS_PROFILE_SLOTS][BW_METRICS_LABEL_MAX];
	bool profile_paused[BW_METRICS_PROFILE_SLOTS];
	unsigned n_feeds;
	struct bw_metrics_feed feed[BW_METRICS_MAX_FEEDS];
	/* telemetry */
	bool dnstap;
	bool have_telemetry; /* the telemetry counters are connected (see below) */
	uint64_t telemetry_dropped;     /* records the query log, events or webhook lost */
	uint64_t query_log_waiting;     /* records in the query log's spool, not yet in the file */
	uint64_t query_log_spool_bytes; /* the spool's files */
};

/*
 * Writes the Prometheus text exposition (format 0.0.4) of s into out (a struct evbuffer).
 * Returns 0, or BW_ENOMEM.
 */
struct evbuffer;
int bw_metrics_format(const struct bw_metrics_sample *s, struct evbuffer *out);
/* Escapes a label value (\\, \", \n) into buf; returns buf. */
const char *bw_metrics_escape(const char *in, char *buf, size_t cap);

/*
 * The telemetry counters (records the query log / events could not keep, the query log's
 * backlog): a function the server may connect, which fills the telemetry fields of out and
 * sets have_telemetry. While none is connected, those metrics are not exported. The
 * function is called from the endpoint's thread.
 */
typedef void (*bw_metrics_telemetry_fn)(void *ctx, struct bw_metrics_sample *out);

/* ---- the HTTP endpoint ---- */
typedef void (*bw_metrics_collect_fn)(void *ctx, struct bw_metrics_sample *out);
struct bw_metrics_http;
/* Binds addr and starts the endpoint's thread. collect() fills a zeroed sample per scrape.
 * Returns NULL with a message in err. */
struct bw_metrics_http *bw_metrics_http_start(const struct sockaddr *addr, socklen_t addrlen,
					      bw_metrics_collect_fn collect, void *ctx,
					      char *err, size_t errlen);
/* Stops the thread and closes the listener. NULL is fine. */
void bw_metrics_http_stop(struct bw_metrics_http *h);

#endif
