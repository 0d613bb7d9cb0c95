/*
 * telemetry/telemetry.h - what Bulwark keeps about queries, off the hot path: the query
 * log (SQLite), security events (JSON lines file, syslog, webhook) and infected-client
 * alerts, all under one privacy mode (telemetry.privacy; docs/privacy.md).
 *
 * How it flows: each worker owns one single-producer/single-consumer ring of records
 * (struct bw_tlm_record). When a query is answered the worker reserves a record, fills it
 * and commits it (bw_tlm_ring_reserve / bw_tlm_ring_commit below): no lock, no system
 * call, no allocation. The ring holds records in the spool's compact form (strings
 * without their padding: some 100 bytes instead of 820), so that a ring which wraps
 * touches 2 MiB instead of 13 (issue 21). One telemetry thread drains every ring, writes
 * rows in batched SQLite transactions, writes events, runs the alert detector and prunes
 * old rows. When a ring is full the record is dropped and counted; when a sink fails
 * (disk full, webhook down) its records are dropped and counted. DNS answers never wait.
 *
 * Owns: the rings, the telemetry thread, the SQLite connection, the events file, the
 * webhook thread and its bounded queue, the alert and top-N tables.
 * Borrows: the boot config (must outlive the telemetry object).
 *
 * Thread safety: bw_tlm_ring_reserve/commit are called by the ring's worker only.
 * bw_telemetry_alerts_json(), bw_telemetry_top_json() and bw_telemetry_stats() may be
 * called from any thread at any time between create and destroy. create, start, stop and
 * destroy are called from the main thread.
 */
#ifndef BW_TELEMETRY_H
#define BW_TELEMETRY_H

#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "base/base.h"
#include "conf/conf.h"

#define BW_TLM_NAME 64	/* feed, category and profile names (conf NAME_MAX_LEN) */
#define BW_TLM_RULE 264 /* the rule that matched, as text (a name fits whole) */
#define BW_TLM_CLIENT_NAME (BW_CLIENT_NAME_MAX + 1) /* a named client's name (conf.h) + NUL */

/* record flags */
#define BW_TLM_BLOCKED 0x01	/* the answer was changed (or withheld) by a rule */
#define BW_TLM_LOG_ONLY 0x02	/* a rule of a log-only feed matched; answered normally */
#define BW_TLM_ALLOWLISTED 0x04 /* an allowlist matched */
#define BW_TLM_PASSTHRU 0x08	/* a PASSTHRU rule matched */
#define BW_TLM_CACHE_HIT 0x10	/* answered from the packet cache */
#define BW_TLM_PAUSED 0x20	/* with LOG_ONLY: a rule matched, but the profile's blocking
				   was paused (bulwarkctl pause): answered normally */
#define BW_TLM_MATCHED 0x0f	/* any of the rule flags: the verdict fields are filled */

#define BW_TLM_NO_RCODE 0xff /* no answer was sent (DROP, or nothing to send) */

/* What the policy said about one query: filled by the pipeline only when a rule or an
 * allowlist matched (flags & BW_TLM_MATCHED), copied so it survives reloads. */
struct bw_tlm_verdict {
	uint8_t flags;
	uint8_t action;	 /* enum bw_action */
	uint8_t trigger; /* enum bw_trigger */
	int8_t feed;	 /* index in policy.feeds, -1: none */
	char feed_name[BW_TLM_NAME];
	char category[BW_TLM_NAME];
	char rule[BW_TLM_RULE];
};

/* One answered query, as the worker hands it over. Fixed size, no pointers. */
struct bw_tlm_record {
	uint64_t time_ms;    /* wall clock, milliseconds since the Unix epoch */
	uint32_t latency_us; /* from the query's arrival to its answer */
	uint16_t qtype;
	uint8_t rcode;	   /* of the answer sent, or BW_TLM_NO_RCODE */
	uint8_t transport; /* enum bw_transport_kind of the core (0 udp, 1 tcp, ...) */
	uint8_t family;	   /* AF_INET, AF_INET6 or 0 */
	uint8_t prefix;	   /* the client address's kept prefix: 32/128 (full), 24/56 */
	uint8_t qname_len;
	uint8_t worker;
	uint8_t addr[16]; /* client address, already truncated per the privacy mode */
	char profile[BW_TLM_NAME];
	uint8_t qname[255]; /* lower-cased wire name */
	/* the named client's name (`clients:`) where the privacy mode keeps it
	 * (bw_tlm_keeps_names), else "": 64 bytes of each record, 1 MiB per default ring */
	char client_name[BW_TLM_CLIENT_NAME];
	struct bw_tlm_verdict v;
};

/* The most bytes one encoded record takes (bw_tlm_record_encode), its length included. */
#define BW_TLM_REC_MAX                                                                             \
	(2 + 40 + 1 + BW_TLM_NAME + 255 + 1 + BW_TLM_NAME + 1 + BW_TLM_NAME + 2 + BW_TLM_RULE +    \
	 1 + BW_TLM_CLIENT_NAME)
/* Bytes of ring per record of telemetry.ring-size: a blocked query's record takes some
 * 100 bytes (a name, its rule, feed, category and profile), an allowed one some 70; long
 * names take more, and then fewer records fit (what does not fit is dropped and counted). */
#define BW_TLM_REC_AVG 128

/* A worker's ring: single producer (the worker), single consumer (the telemetry thread).
 * At most mask + 1 records, encoded in bmask + 1 bytes. */
struct bw_tlm_ring {
	_Alignas(64) _Atomic uint64_t head; /* records committed */
	uint64_t wpos;			    /* bytes written (the producer's) */
	uint64_t tail_cache, rpos_cache;    /* producer's last view of tail and rpos */
	_Atomic uint64_t dropped;	    /* written by the producer only */
	_Atomic uint64_t offered;	    /* records the worker tried to log */
	uint64_t mask;			    /* records at most, minus one */
	uint64_t bmask;			    /* bytes of buf, minus one */
	unsigned char *buf;
	enum bw_privacy privacy;
	struct bw_tlm_record rec;		 /* the producer's, from reserve to commit */
	_Alignas(64) _Atomic uint64_t tail; /* records consumed */
	_Atomic uint64_t rpos;		    /* bytes consumed */
	struct bw_tlm_record out;	    /* the consumer's: the record peek decoded */
	uint64_t out_len;		    /* its encoded length; 0: none decoded */
};

struct bw_telemetry;

/* Builds the telemetry object for nworkers rings (nothing is opened yet). Returns NULL on
 * out of memory. conf is borrowed. */
struct bw_telemetry *bw_telemetry_create(const struct bw_conf *conf, unsigned nworkers);
/* Opens the query log and the events file, starts the telemetry (and webhook) threads.
 * A sink that cannot be opened is logged and left off (its records are counted as
 * dropped): telemetry never stops the resolver from starting. Returns 0 or BW_EIO when
 * the thread cannot start. */
int bw_telemetry_start(struct bw_telemetry *t);
/* Drains what the rings hold, commits, stops the threads. Call after the workers stopped.
 * The webhook gets at most its timeout to finish. */
void bw_telemetry_stop(struct bw_telemetry *t);
void bw_telemetry_destroy(struct bw_telemetry *t);
/* The ring of worker i, or NULL when privacy is `none` (the worker then logs nothing). */
struct bw_tlm_ring *bw_telemetry_ring(struct bw_telemetry *t, unsigned i);
enum bw_privacy bw_telemetry_privacy(const struct bw_telemetry *t);

/* Counters, summed over the workers; for logs and metrics. */
struct bw_telemetry_stats {
	uint64_t records;	/* records the workers handed over (or tried to) */
	uint64_t ring_drops;	/* records dropped because a ring was full */
	uint64_t rows;		/* query log rows committed */
	uint64_t log_drops;	/* records the query log could not store (spool full, disk
				 * full, error) */
	uint64_t log_waiting;	/* records of this run in the spool, not yet in the log */
	uint64_t spool_bytes;	/* the spool's segment files */
	uint64_t events;	/* security events written (file/syslog) */
	uint64_t event_drops;	/* events the file could not take */
	uint64_t webhook_sent;	/* events the webhook accepted (2xx) */
	uint64_t webhook_drops; /* events dropped: queue full, or retries exhausted */
	uint64_t alerts;	/* alerts raised since start */
	uint64_t pruned;	/* rows removed by retention */
};
void bw_telemetry_stats(struct bw_telemetry *t, struct bw_telemetry_stats *out);
void bw_telemetry_log_stats(struct bw_telemetry *t);

/* Infected-client alerts, active ones first: {"columns": [...], "rows": [[...], ...]}.
 * Columns: client (a named client's name where the privacy mode keeps names, else its
 * address as the mode keeps it), state (active|cleared), hits, first_seen, last_seen (ISO
 * 8601 UTC), domains, feeds, addresses (comma-separated), id (alerts-ack, alerts-clear).
 * NULL on out of memory. */
json_t *bw_telemetry_alerts_json(struct bw_telemetry *t);
/* Reopens the events file (after logrotate moved it away): the lines written from now on
 * go to a file of that name again. Thread-safe; called on SIGHUP. NULL t is fine. */
void bw_telemetry_reopen_events(struct bw_telemetry *t);
/* A security event about a feed, not a query: {"event":"feed","time":...,"feed":...,
 * "category":...,"state":"failed"|"held back"|"expired","reason":...} to the events file,
 * syslog (warning) and the webhook, whatever the privacy mode (it names no client).
 * Thread-safe; dropped when the telemetry has not started (the server reports the feeds
 * that are failing when it starts). NULL t is fine. */
void bw_telemetry_feed_event(struct bw_telemetry *t, const char *feed, const char *category,
			     const char *state, const char *reason);
/* A security event about a client prefix that went over its limit: {"event":"rate-limit",
 * "time":..., "limit": "rate-limit"|"rrl", "prefix": "192.0.2.0/24", "rate": N} to the
 * events file, syslog and the webhook. The prefix is cut as the privacy mode keeps
 * addresses (at most /24 and /56 unless `full`) and left out under `none`. The caller
 * says it once per prefix and keeps the count bounded (core/pipeline.c rate_note: at
 * most 10 a worker per 10 s). addr: 4 or 16 bytes; prefix: the limiter's length. */
void bw_telemetry_limit_event(struct bw_telemetry *t, const char *limit, int af,
			      const uint8_t *addr, unsigned prefix, unsigned rate);
/* The n most blocked names and the n most blocked clients since start, in one table:
 * columns kind (name|client), value, blocked. A client is counted by its name where it
 * has one and the privacy mode keeps names, else by its address as the mode keeps it.
 * Empty under privacy `none`. */
json_t *bw_telemetry_top_json(struct bw_telemetry *t, unsigned n);
/* The same as objects, with the feeds that blocked most: {"names": [{"name", "count"}],
 * "clients": [{"client", "count"}], "feeds": [{"feed", "count"}]}. NULL: out of memory. */
json_t *bw_telemetry_top_objects(struct bw_telemetry *t, unsigned n);
/* The alerts as objects with their ids ({"alerts": [...]}, bw_tlm_alerts_objects), their
 * acknowledgement and removal (bw_tlm_alerts_ack, _clear). Thread-safe. */
json_t *bw_telemetry_alerts_objects(struct bw_telemetry *t);
int bw_telemetry_alerts_ack(struct bw_telemetry *t, uint64_t id);
unsigned bw_telemetry_alerts_clear(struct bw_telemetry *t, uint64_t id);

/* The admin actions (telemetry/actions.c; docs/api.md, "Data endpoints"): querylog, top,
 * alerts, alerts-ack, alerts-clear, and the words `alerts` and `top` that print them as
 * tables. Before bw_admin_start(); t outlives the admin. 0 or a negative BW_E*. */
struct bw_admin;
int bw_telemetry_register_actions(struct bw_telemetry *t, struct bw_admin *adm);

/* ---- the series (series.c): per-minute counts of the last 24 h, in memory ----
 * Sampled from cumulative counters once a minute by the main thread (the core's tick), so
 * it costs the query path nothing; read by the admin thread (GET /api/v1/series). A fixed
 * ring of BW_SERIES_MINUTES uint32 per column; a profile's column is allocated when it
 * first counts (at most max_profiles). Thread-safe: one sampler, any readers. */
#define BW_SERIES_MINUTES 1440
#define BW_SERIES_MAX_PROFILES 64 /* telemetry/metrics.h BW_METRICS_PROFILE_SLOTS */
enum { BW_SERIES_UDP, BW_SERIES_TCP, BW_SERIES_DOT, BW_SERIES_DOH, BW_SERIES_TRANSPORTS };
/* Cumulative counts since start, summed over the workers; profiles by stable slot. */
struct bw_series_totals {
	uint64_t queries, blocked, cache_hits;
	uint64_t transport[BW_SERIES_TRANSPORTS];
	uint64_t profile[BW_SERIES_MAX_PROFILES];
};
struct bw_series_profile {
	const char *name;
	unsigned slot;
};
struct bw_series;
struct bw_series *bw_series_create(unsigned max_profiles); /* NULL: out of memory */
void bw_series_free(struct bw_series *s);
/* Whether now_s (wall clock, s) is in another minute than the last sample's. */
bool bw_series_due(const struct bw_series *s, uint64_t now_s);
/* Samples the totals at now_s: what they grew by since the last sample is the count of the
 * minute that just ended (minutes without a sample in between count 0). The first sample
 * only sets the baseline. */
void bw_series_sample(struct bw_series *s, uint64_t now_s, const struct bw_series_totals *t);
/* {"resolution": 60, "start", "queries", "blocked", "cache_hits", "by_transport": {"udp",
 * "tcp", "dot", "doh"}, "by_profile": {NAME: [...]}}: the `minutes` (1 to
 * BW_SERIES_MINUTES) complete minutes before now_s's, oldest first. NULL: out of memory
 * or minutes out of range. */
json_t *bw_series_json(struct bw_series *s, uint64_t now_s, unsigned minutes,
		       const struct bw_series_profile *profiles, size_t n_profiles);

/* ---- the hot path (inline) ---- */

/* Reserves the record to fill; NULL when the ring is full (the record is counted as
 * dropped). The record is the caller's until bw_tlm_ring_commit(). */
static inline struct bw_tlm_record *bw_tlm_ring_reserve(struct bw_tlm_ring *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_store_explicit(&r->offered,
			      atomic_load_explicit(&r->offered, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (h - r->tail_cache > r->mask || r->wpos - r->rpos_cache + BW_TLM_REC_MAX > r->bmask + 1) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		r->rpos_cache = atomic_load_explicit(&r->rpos, memory_order_acquire);
		if (h - r->tail_cache > r->mask ||
		    r->wpos - r->rpos_cache + BW_TLM_REC_MAX > r->bmask + 1) {
			atomic_store_explicit(
			    &r->dropped,
			    atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
			    memory_order_relaxed);
			return NULL;
		}
	}
	return &r->rec;
}
/* Encodes the reserved record into the ring and hands it to the consumer. */
void bw_tlm_ring_commit(struct bw_tlm_ring *r);
/* Consumer side: the oldest committed record, or NULL when empty; bw_tlm_ring_pop()
 * releases it. */
const struct bw_tlm_record *bw_tlm_ring_peek(struct bw_tlm_ring *r);
void bw_tlm_ring_pop(struct bw_tlm_ring *r);
/* Ring for tests and tools: size rounded up to a power of two. 0 or BW_ENOMEM. */
int bw_tlm_ring_init(struct bw_tlm_ring *r, unsigned size, enum bw_privacy privacy);
void bw_tlm_ring_free(struct bw_tlm_ring *r);

/* Should a query with these verdict flags be logged under the ring's mode? Under
 * blocked-only, only blocked and log-only matches are. */
static inline bool bw_tlm_wanted(const struct bw_tlm_ring *r, unsigned flags)
{
	return r->privacy != BW_PRIVACY_BLOCKED_ONLY ||
	       (flags & (BW_TLM_BLOCKED | BW_TLM_LOG_ONLY));
}

/* Whether the mode keeps the name of a named client: `blocked-only` (only blocked queries
 * are kept, and which device it was is the point of a security event) and `full`; never
 * `anonymized`, where a name would turn every kept lookup into one person's diary, nor
 * `none` (docs/privacy.md). */
static inline bool bw_tlm_keeps_names(enum bw_privacy privacy)
{
	return privacy == BW_PRIVACY_BLOCKED_ONLY || privacy == BW_PRIVACY_FULL;
}

/* The record's client name as the privacy mode allows: name (NULL: none) or "". */
static inline void bw_tlm_set_client_name(struct bw_tlm_record *rec, const char *name,
					  enum bw_privacy privacy)
{
	size_t n = name && bw_tlm_keeps_names(privacy)
		       ? strnlen(name, sizeof(rec->client_name) - 1)
		       : 0;
	if (n)
		memcpy(rec->client_name, name, n);
	rec->client_name[n] = 0;
}

/* The client address as the privacy mode allows: full under `full`, else the /24 (IPv4)
 * or /56 (IPv6) network. */
static inline void bw_tlm_set_client(struct bw_tlm_record *rec, const struct sockaddr *sa,
				     enum bw_privacy privacy)
{
	memset(rec->addr, 0, sizeof(rec->addr));
	rec->family = 0;
	rec->prefix = 0;
	if (!sa)
		return;
	bool full = privacy == BW_PRIVACY_FULL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		memcpy(rec->addr, &s4->sin_addr, 4);
		rec->family = AF_INET;
		rec->prefix = full ? 32 : 24;
		if (!full)
			rec->addr[3] = 0;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(rec->addr, &s6->sin6_addr, 16);
		rec->family = AF_INET6;
		rec->prefix = full ? 128 : 56;
		if (!full) {
			memset(rec->addr + 7, 0, 9); /* keep 7 bytes: the /56 */
		}
	}
}

/* Wall clock in milliseconds (the log's time column). */
static inline uint64_t bw_tlm_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- pieces exposed for unit tests ---- */

/* Query log search (search.c; GET /api/v1/querylog). A name pattern: "example.org"
 * (exact), ".example.org" or "*.example.org" (the name and every name under it),
 * "exam*" (prefix); "" or "*": any. */
enum bw_tlm_name_kind { BW_TLM_NAME_ANY = 0, BW_TLM_NAME_EXACT, BW_TLM_NAME_SUFFIX, BW_TLM_NAME_PREFIX };
struct bw_tlm_name_pattern {
	enum bw_tlm_name_kind kind;
	char value[256]; /* lower-cased, without the wildcard or a trailing dot */
};
/* 0, or BW_EINVAL (empty after the wildcard, too long, spaces, control characters or
 * another '*'). */
int bw_tlm_name_pattern(const char *in, struct bw_tlm_name_pattern *out);
/* The pattern's SQL condition on the `queries` view's column name, with the value as the
 * parameter :name ("" for any). */
const char *bw_tlm_name_sql(enum bw_tlm_name_kind kind);
/* Unix seconds ("1714564800") or ISO 8601 ("2024-05-01", "2024-05-01T12:00:00Z",
 * "...T12:00:00.250+02:00"; no zone: UTC) to ms since the epoch. 0 or BW_EINVAL. */
int bw_tlm_parse_time(const char *s, int64_t *ms);
#define BW_TLM_SEARCH_MAX 1000	       /* rows per search */
#define BW_TLM_SEARCH_MAX_OFFSET 100000 /* rows skipped, at most */
enum { BW_TLM_VERDICT_ALL = 0, BW_TLM_VERDICT_BLOCKED, BW_TLM_VERDICT_ALLOWED };
struct bw_tlm_search {
	const char *client; /* an address (cut as the mode keeps it), a network as the log
			       writes it, or a client's name; NULL: any */
	struct bw_tlm_name_pattern name;
	int verdict;	     /* BW_TLM_VERDICT_*; allowed: anything not blocked */
	const char *feed;    /* NULL: any */
	int64_t since_ms, until_ms; /* [since, until); -1: open */
	unsigned limit, offset;
};
/* Runs q on the query log at path (read-only) as the privacy mode in force keeps things
 * (see search.c): rows appended to `rows` newest first, *more when more match. 0, or
 * with err: BW_EINVAL (limit/offset), BW_ERANGE (over its time cap), BW_EIO. */
int bw_tlm_search(const char *path, enum bw_privacy privacy, const struct bw_tlm_search *q,
		  json_t *rows, bool *more, char *err, size_t errlen);

/* The client key used in logs, events and alerts: "192.0.2.7", "192.0.2.0/24",
 * "2001:db8:0:100::/56". */
void bw_tlm_client_text(const struct bw_tlm_record *rec, char *out, size_t cap);

/* Writes rec in the spool's form (its 2-byte length, then the fields; spool.c) at out
 * (BW_TLM_REC_MAX bytes); returns the bytes written. */
size_t bw_tlm_record_encode(const struct bw_tlm_record *rec, unsigned char *out);
/* One record of the query log's spool (spool.c) from buf (n bytes): returns the bytes it
 * took, 0 when buf holds less than a whole record, -1 when it is not a valid record. */
long bw_tlm_spool_decode(const unsigned char *buf, size_t n, struct bw_tlm_record *rec);

/* The infected-client detector on its own (the telemetry thread owns one). */
struct bw_tlm_alerts;
struct bw_tlm_alerts *bw_tlm_alerts_create(unsigned threshold, uint64_t window_ms,
					   uint64_t clear_ms);
void bw_tlm_alerts_free(struct bw_tlm_alerts *a);
/* Records one hit of a watched category at now_ms from address client (as the privacy
 * mode keeps it) of the client named name (NULL or "": none). A named client's hits count
 * together whatever their address; others by address. Returns true when this hit raises a
 * new alert for the client (not while one is active: deduplicated until it clears). */
bool bw_tlm_alerts_hit(struct bw_tlm_alerts *a, const char *client, const char *name,
		       const char *domain, const char *feed, uint64_t now_ms);
/* Clears alerts whose client has had no hit for clear_ms; returns how many cleared. */
unsigned bw_tlm_alerts_expire(struct bw_tlm_alerts *a, uint64_t now_ms);
/* The table (see bw_telemetry_alerts_json). */
json_t *bw_tlm_alerts_json(struct bw_tlm_alerts *a);
/* The alerts as objects, active ones first: [{"id", "client", "state", "hits", "first",
 * "last", "names", "feeds", "addresses", "more_names", "acknowledged"}]. An alert's id is
 * given when it is raised (a new episode of the same client gets a new one). */
json_t *bw_tlm_alerts_objects(struct bw_tlm_alerts *a);
/* Marks alert id acknowledged: 0, or BW_ENOENT when there is none of that id. */
int bw_tlm_alerts_ack(struct bw_tlm_alerts *a, uint64_t id);
/* Removes alert id (0: every alert) and what its client's hits were counting: a client
 * still infected raises a new alert after `threshold` new hits. Returns how many. */
unsigned bw_tlm_alerts_clear(struct bw_tlm_alerts *a, uint64_t id);
unsigned bw_tlm_alerts_active(const struct bw_tlm_alerts *a);

#endif
