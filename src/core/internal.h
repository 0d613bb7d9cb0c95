/*
 * core/internal.h - what the core's files share: the server, the workers, in-flight
 * query contexts. Not for other modules.
 */
#ifndef BW_CORE_INTERNAL_H
#define BW_CORE_INTERNAL_H

#include <event2/event.h>
#include <pthread.h>
#include <sys/socket.h>

#include "cache/cache.h"
#include "core/core.h"
#include "dns/dns.h"
#include "guard/guard.h"
#include "local/local.h"
#include "net/net.h"
#include "policy/policy.h"
#include "resolve/resolve.h"
#include "telemetry/dnstap.h"
#include "telemetry/metrics.h"
#include "telemetry/telemetry.h"

#define BW_UDP_BATCH 64
#define BW_UDP_RBUF 4096     /* largest UDP query we take */
#define BW_UDP_SBUF 2048     /* room for an answer of BW_DNS_EDNS_SIZE bytes */
#define BW_UDP_MAX_ANSWER BW_DNS_EDNS_SIZE /* never send bigger UDP answers (no fragments) */

/* What the workers read for every query, published as one unit and swapped on reload. */
struct bw_state {
	struct bw_policy *policy;
	struct bw_conf *conf; /* the config the policy and ACL come from */
	bool owns_conf;       /* false for the boot config, owned by the server */
	uint64_t generation;
	/* in packet-cache keys: the generation of the last full build. A delta (IXFR) keeps
	 * it, so the cache survives; answers for the names the delta touches are not served
	 * from it (bw_policy_overlay_touches), nor CNAME or policy answers while a delta is
	 * in force */
	uint64_t cache_gen;
	/* stable metrics slots (telemetry/metrics.h) of this policy's feeds and profiles */
	uint8_t feed_slot[BW_METRICS_MAX_FEEDS];
	uint8_t profile_slot[256];
	struct bw_lookalike *lookalike; /* from conf->guard.protected; NULL when none */
	struct bw_clients *clients;     /* from conf->clients; NULL when none */
	struct bw_local *local; /* names answered here: conf's local records, the boot
				   config's forward zones and special-use names */
	/* profiles whose blocking is paused (bit k: profile k of policy; core/decisions.c).
	 * A pause or resume publishes a new state with a new cache_gen. */
	uint64_t paused[4];
};

static inline bool bw_state_paused(const struct bw_state *st, unsigned profile)
{
	return (st->paused[(profile >> 6) & 3] >> (profile & 63)) & 1;
}

/* The blocking rule that decided the current query, for dnstap's Policy (core/observe.c). */
struct bw_obs_note {
	bool set;
	uint8_t action, match; /* dnstap Policy.Action and Policy.Match */
	uint16_t value_len;
	char rule[BW_METRICS_LABEL_MAX]; /* "feed/category" */
	uint8_t value[BW_DNS_MAXNAME];   /* the matched name (wire) or address */
};

enum bw_transport_kind { BW_VIA_UDP = 0, BW_VIA_TCP = 1 };

/* Where a query came from and where its answer goes. */
struct bw_origin {
	enum bw_transport_kind via;
	int fd;                       /* UDP socket */
	struct bw_reply *reply;       /* stream transports (TCP, DoT, DoH): where the answer
					 goes (net.h) */
	const struct sockaddr *peer;
	socklen_t peerlen;
	int listener;
	const char *sni;      /* DoT/DoH: the TLS server name, or NULL */
	const char *doh_path; /* DoH: the path the request came to, or NULL */
	const char *client_id; /* DoH: the ClientID after the path, or NULL */
};

/* The query's state from its parse to its answer: what the synchronous stages decide
 * (pipeline.c's struct job holds one) and a query waiting on the resolver keeps (struct
 * bw_qctx holds one, copied whole when the query goes to the resolver). */
struct bw_qstate {
	struct bw_query q;
	struct bw_cache_key key; /* key.qname_lc points into q.qname_lc */
	unsigned profile;
	int client;          /* conf->clients.list index, or -1 */
	bool stale_possible; /* the cache holds an expired answer for the key */
	bool passthru;       /* no policy after this (a PASSTHRU rule or an allowlist) */
	bool paused;         /* the profile's blocking is paused (bw_state_paused) */
	bool deferred;       /* the QNAME verdict waits for the answer (an earlier feed's
				address rule could win) */
	bool nocache;        /* guard alert / newly-seen short TTL: not stored in the cache */
	uint32_t ttl_override; /* answer TTLs set to this when not 0 (newly-seen short TTL) */
	/* a CNAME redirect (RPZ walled garden): we resolve the target and answer with the
	 * CNAME followed by the target's records */
	bool redirect;
	uint8_t rlen;
	uint8_t rname[BW_DNS_MAXNAME];
	uint64_t t_start_ns;      /* only when telemetry is on */
	struct bw_tlm_verdict tv; /* what the policy said, for telemetry (flags 0: nothing) */
};

/* A query waiting on the resolver. Preallocated per worker. */
/* Coalescing (coalesce.c) works for up to 64 * BW_COALESCE_WORDS workers. */
#define BW_COALESCE_WORDS 4
#define BW_WAIT_BUCKETS 64
#define BW_MAILBOX_SIZE 1024

struct bw_qctx {
	struct bw_resolver *resolver; /* first member: the resolver routes results by it */
	struct bw_worker *w;
	struct bw_qctx *next_free;
	struct event *timer;
	int ub_id;
	bool busy;
	bool answered;       /* a stale answer already went out; still resolving to refresh */
	bool shared;         /* counted in the worker's in-flight share (by peer's prefix) */
	struct bw_qstate s;
	/* coalescing (coalesce.c): as the owner of s.key in the server's table, its chain
	 * there and the workers waiting for it (under the table's lock); as a parked query,
	 * its place in the worker's waiting list (wait_pprev NULL: not parked) */
	bool co_owner;
	bool co_failed; /* the upstream failed: as the owner, for its waiters; parked, its owner's */
	struct bw_qctx *co_next;
	uint64_t co_waiters[BW_COALESCE_WORDS];
	struct bw_qctx *wait_next, **wait_pprev;
	uint32_t rttl;       /* a redirect's CNAME TTL and EDE text */
	char rtext[80];
	uint64_t deadline_ms;
	enum bw_transport_kind via;
	int fd;
	struct bw_reply *reply; /* held while the answer is awaited */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct bw_obs_note note; /* a redirect's rule, for dnstap */
	/* the named client's name for telemetry, copied under the state that matched it
	 * (s.client indexes that state's config, which a reload may free meanwhile); "" */
	char client_name[BW_TLM_CLIENT_NAME];
};

struct bw_udp_sock {
	struct bw_worker *w;
	int fd;
	int listener;
	struct event *ev;
};

/* ---- rate limiting (ratelimit.c): token buckets shared by the workers ---- */
struct bw_ratelimit;
enum bw_rl_verdict {
	BW_RL_PASS = 0,
	BW_RL_LIMITED_FIRST, /* over the limit, the first time since its bucket was full */
	BW_RL_LIMITED,
};
/* A table of about `size` keys (16 bytes each, fixed); 0 or BW_ENOMEM. */
int bw_ratelimit_new(size_t size, struct bw_ratelimit **out);
void bw_ratelimit_free(struct bw_ratelimit *r);
size_t bw_ratelimit_bytes(const struct bw_ratelimit *r);
/* Takes a token from key's bucket (rate a second, `burst` at most; a new key starts
 * full). Any thread. */
enum bw_rl_verdict bw_ratelimit_take(struct bw_ratelimit *r, const void *key, size_t len,
				     unsigned rate, unsigned burst);

/* The in-flight share (ratelimit.c): per worker, the resolver slots each client prefix
 * holds. Not thread-safe: one per worker. */
struct share_slot;
struct bw_share {
	struct bw_hash_key hkey;
	struct share_slot *slots;
	size_t mask;
};
/* For up to max_items keys held at once; 0 or BW_ENOMEM. */
int bw_share_init(struct bw_share *s, unsigned max_items);
void bw_share_free(struct bw_share *s);
/* Counts one more for key unless it holds `limit` already (then false). */
bool bw_share_take(struct bw_share *s, const uint8_t *key, size_t len, unsigned limit);
/* Gives back one that bw_share_take counted. */
void bw_share_put(struct bw_share *s, const uint8_t *key, size_t len);

/* ---- coalescing (coalesce.c): one resolution for a key several workers miss ---- */
struct bw_coalesce;
/* A table for about `slots` keys in flight (workers * max-inflight); 0 or BW_ENOMEM. */
int bw_coalesce_new(size_t slots, struct bw_coalesce **out);
void bw_coalesce_free(struct bw_coalesce *c);
size_t bw_coalesce_bytes(const struct bw_coalesce *c);
enum bw_join {
	BW_JOIN_OWNER, /* nobody resolves x's key: x does, and is in the table until it leaves */
	BW_JOIN_LOCAL, /* a query of x's own worker does: libunbound's mesh merges them */
	BW_JOIN_WAIT,  /* another worker's query does: park x (its worker's bit is set) */
};
/* Any thread. */
enum bw_join bw_coalesce_join(struct bw_coalesce *c, struct bw_qctx *x);
/* The owner x leaves the table; the workers that waited for it into waiters. */
void bw_coalesce_leave(struct bw_coalesce *c, struct bw_qctx *x,
		       uint64_t waiters[BW_COALESCE_WORDS]);
/* Posts hash to every worker in waiters and wakes those whose mailbox was empty. */
void bw_coalesce_notify(struct bw_server *s, const uint64_t waiters[BW_COALESCE_WORDS],
			uint64_t hash, bool failed);
/* Worker thread: into / out of the worker's waiting list. */
void bw_coalesce_park(struct bw_qctx *x);
void bw_coalesce_unpark(struct bw_qctx *x);
/* Worker thread: the parked queries whose owners posted to the mailbox, each handed to
 * bw_pipeline_unparked(). */
void bw_coalesce_deliver(struct bw_worker *w);
/* What owners in other workers post (any thread): the key's hash, whether the upstream
 * failed. Past BW_MAILBOX_SIZE only `overflow` is set (the worker then looks at every
 * parked query). post returns whether the mailbox was empty (the worker needs a wake). */
struct bw_mail {
	uint64_t hash;
	bool failed;
};
struct bw_mailbox {
	pthread_mutex_t lock;
	size_t n;
	bool overflow;
	struct bw_mail msg[BW_MAILBOX_SIZE];
};
bool bw_mailbox_post(struct bw_mailbox *m, uint64_t hash, bool failed);
size_t bw_mailbox_take(struct bw_mailbox *m, struct bw_mail *out, bool *overflow);

struct bw_worker_stats {
	uint64_t queries, udp, tcp, cache_hits, cache_misses, blocked, blocked_cname, blocked_ip,
		log_only, allowlisted, servfail, stale, formerr, refused, dropped, resolved,
		overload, bogus;
	uint64_t coalesced; /* misses answered by another worker's resolution of the name */
	uint64_t client_id_refused[2], client_id_dropped[2]; /* [0] unknown ID, [1] missing */
	uint64_t rate_limited, rrl_dropped, rrl_slipped, rate_limit_logged;
	uint64_t share_refused; /* over server.max-inflight-per-client */
	uint64_t dot, doh;      /* of the tcp ones: over DoT, over DoH (the series) */
	struct bw_metrics_counts m; /* by rcode, profile, feed; backend latency; dnstap */
	struct bw_conn_stats conn[BW_METRICS_STREAMS]; /* by BW_METRICS_STREAM_* */
};

struct bw_worker {
	unsigned index;
	struct bw_server *srv;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct bw_resolver *resolver;
	/* after the wall clock stepped (bw_server_clock_check): the resolver being replaced,
	 * freed once its last query has its answer; the step count it was renewed for */
	struct bw_resolver *old_resolver;
	struct event *renew_timer;
	unsigned clock_epoch;
	struct bw_udp_sock *udp;
	size_t n_udp;
	struct bw_tcp_server **tcp; /* TCP and DoT */
	size_t n_tcp;
	struct bw_doh_server **doh;
	size_t n_doh;
	struct event *ctl_ev; /* wakes the worker from the main thread (eventfd) */
	int ctl_fd;
	struct event *drain_timer;
	_Atomic bool draining; /* set by the main thread, then the worker is woken */
	unsigned drain_ms;
	bool drain_started;

	struct bw_qctx *pool;         /* max_inflight of them; [0, pool_used) set up */
	unsigned pool_used;
	struct bw_qctx *free_list;
	unsigned inflight, max_inflight;

	const struct bw_state *state; /* held while handling a batch or a callback */
	unsigned state_depth;         /* holds nest: a callback may run inside a batch */

	struct bw_worker_stats stats;
	double id_refusal_tokens; /* ClientID refusals left (pipeline.c refuse_client_id) */
	uint64_t id_refusal_ns;
	uint64_t rl_log_ns;           /* rate-limit lines: this 10 s window's start */
	unsigned rl_log_n, rl_log_quiet; /* lines written in it, prefixes not said */
	unsigned rrl_slip_n;          /* limited answers counted for server.rrl.slip */
	struct bw_share share;        /* resolver slots held per client prefix */
	struct bw_qctx *waiting[BW_WAIT_BUCKETS]; /* parked queries (coalesce.c), by hash */
	struct bw_mailbox mailbox;    /* hashes whose owners finished (coalesce.c) */
	/* a copy of stats for the metrics endpoint, made on request (core/observe.c) */
	struct bw_worker_stats pub;  /* under srv->pub_lock */
	uint64_t pub_done;           /* under srv->pub_lock */
	_Atomic uint64_t pub_req;
	struct bw_obs_note note;     /* the current query's blocking rule, for dnstap */
	struct bw_tlm_ring *tlm;         /* this worker's telemetry ring, NULL: privacy none */
	struct bw_tlm_verdict *tlm_cur;  /* where the query being handled notes its verdict */

	/* UDP batch buffers */
	struct mmsghdr rmsg[BW_UDP_BATCH], smsg[BW_UDP_BATCH];
	struct iovec riov[BW_UDP_BATCH], siov[BW_UDP_BATCH];
	struct sockaddr_storage raddr[BW_UDP_BATCH];
	uint8_t rbuf[BW_UDP_BATCH][BW_UDP_RBUF];
	uint8_t sbuf[BW_UDP_BATCH][BW_UDP_SBUF];
	/* scratch for answers built off the batch path */
	uint8_t out[BW_DNS_MAXMSG + 1];
	uint8_t body[BW_DNS_MAXMSG + 1];
	struct bw_answer_meta meta;
	struct bw_chain chain;
};

struct bw_server {
	struct bw_conf *conf; /* boot config: listeners, workers, resolver, cache */
	struct bw_cache *cache;
	struct bw_snapref state_ref; /* -> struct bw_state */
	uint64_t generation;
	struct bw_worker **workers;
	unsigned nworkers;
	struct bw_coalesce *coalesce; /* keys in flight, with 2 to 256 workers, or NULL */
	struct bw_telemetry *tlm; /* query log, events, alerts (telemetry/) */
	struct bw_tls **tls; /* per listener: the TLS context of dot/doh listeners, or NULL */
	struct bw_ratelimit *ratelimit; /* server.rate-limit (any level has a qps), or NULL */
	struct bw_ratelimit *rrl;       /* server.rrl, or NULL */
	bool started;
	/* state building and publishing: the main thread (reload, watch) and the feed
	 * manager (bw_server_feeds_changed, bw_server_feed_delta) take turns */
	pthread_mutex_t state_lock;
	uint64_t feeds_off; /* feeds left out of the policy (expired, when-expired: stop) */
	uint64_t feeds_accept; /* local files applied even if they shrank, for one build */
	bw_notify_fn notify; /* opcode NOTIFY (RPZ by transfer), or NULL: NOTIMP */
	void *notify_ctx;
	/* telemetry (core/observe.c) */
	struct bw_metrics_slots feed_slots, profile_slots;
	struct bw_metrics_http *metrics;
	struct bw_block_page *block_page; /* core/blockpage.c, or NULL */
	pthread_mutex_t pub_lock;
	pthread_mutex_t sample_lock; /* one collect() at a time: it reads the policy in the
					scraper's reader slot (bw_server_sample) */
	pthread_cond_t pub_cond;
	uint64_t pub_ticket;
	bw_metrics_telemetry_fn telemetry_stats; /* set by whoever owns the query log, or NULL */
	bool (*feed_failed)(void *ctx, const char *feed, char *why, size_t whylen); /* or NULL */
	void *feed_failed_ctx;
	void *telemetry_stats_ctx;
	struct bw_dnstap *dnstap; /* NULL when dnstap is off */
	/* the per-minute series (telemetry.h), sampled by the main thread's tick: a publish
	 * is asked for at a minute's start and read at the next tick (observe.c) */
	struct bw_series *series;
	uint64_t series_ticket; /* pub_ticket of the publish asked for, 0: none pending */
	uint64_t series_at;     /* wall clock (s) of that request */
	struct bw_nseen *nseen;  /* newly-seen memory (guard.newly-seen), or NULL */
	char *nseen_path;        /* its file in server.state-dir */
	/* wall-clock steps (bw_server_clock_check, main thread): the count workers renew
	 * their resolvers for, and the wall clock's offset from the monotonic one */
	_Atomic unsigned clock_epoch;
	int64_t clock_offset_ns;
	uint64_t nseen_saved_ms; /* when it was last written */
	/* local decisions and pauses (decisions.c), under state_lock */
	struct bw_decisions *decisions; /* in force (a reference), or NULL */
	char *decisions_path;           /* state-dir/local-decisions */
	char *pauses_path;              /* state-dir/paused */
	struct bw_pause pauses[256];    /* the profiles paused now (by name) */
	size_t n_pauses;
	_Atomic int64_t next_resume;    /* the earliest pause end (Unix s), 0: none */
};

/* decisions.c: loads the decisions and pauses (create; reload: the decisions again) */
int bw_core_decisions_init(struct bw_server *s, char *err, size_t errlen);
void bw_core_decisions_reload(struct bw_server *s);
void bw_core_decisions_free(struct bw_server *s);
/* Fills st->paused for st->policy's profiles from the pauses (state_lock held). */
void bw_core_pause_mask(const struct bw_server *s, struct bw_state *st);
void bw_core_pause_tick(struct bw_server *s);
/* server.c: publishes a successor of the live state with decisions d in force and a new
 * cache generation (state_lock held); its generation in *gen. 0 or BW_ENOMEM. */
int bw_core_republish(struct bw_server *s, struct bw_decisions *d, uint64_t *gen);

/* observe.c */
int bw_obs_server_init(struct bw_server *s, char *err, size_t errlen);
/* Reader slots of state_ref after the workers' (0 .. nworkers-1): the threads that hold
 * the live state besides them. */
enum {
	BW_READER_METRICS = 0,
	BW_READER_BLOCK_PAGE = 1,
	BW_READER_ADMIN = 2, /* the admin thread's actions (core/actions.c) */
	BW_READERS_EXTRA = 3
};

/* The block page (core/blockpage.c): started with the metrics endpoint, before the
 * privileges are dropped (it may listen on port 80). */
int bw_block_page_start(struct bw_server *s, char *err, size_t errlen);
void bw_block_page_stop(struct bw_server *s);

int bw_obs_server_start(struct bw_server *s, char *err, size_t errlen);
void bw_obs_server_stop(struct bw_server *s);
void bw_obs_server_free(struct bw_server *s);
/* Fills the metrics slots of a new state (main thread). */
void bw_obs_state_slots(struct bw_server *s, struct bw_state *st);
/* Worker side of a scrape: copies stats to pub when asked. */
void bw_obs_publish(struct bw_worker *w);
/* The main thread's tick: samples the workers' counters into the series once a minute
 * (asks for copies, reads them at the next tick: it never waits). */
void bw_obs_series_tick(struct bw_server *s);

/* guard.c: the guard's verdict for a query no feed matched and no allowlist passed
 * (look-alike, then newly-seen). Cache misses only: see docs/guard.md. */
enum bw_guard_outcome {
	BW_GUARD_PASS = 0, /* nothing to do */
	BW_GUARD_BLOCK,    /* NXDOMAIN + EDE 15 with text: cached like any blocked answer */
	BW_GUARD_ANSWER,   /* resolve and answer, but do not cache (alert, short TTL) */
};
struct bw_guard_result {
	bool lookalike;           /* hit is filled */
	struct bw_guard_hit hit;  /* kind and protected domain: what a security event carries */
	bool newly_seen;          /* the registrable domain was first seen within the window */
	uint32_t ttl;             /* BW_GUARD_ANSWER with a short TTL: the TTL, else 0 */
	char text[80];            /* EDE EXTRA-TEXT of BW_GUARD_BLOCK */
};
enum bw_guard_outcome bw_core_guard(struct bw_worker *w, const struct bw_query *q,
				    unsigned profile, const struct sockaddr *peer,
				    struct bw_guard_result *r);
/* Builds the newly-seen memory from the boot config (loads its file); writes it when
 * `force` or when the last write is older than a minute. */
int bw_core_guard_init(struct bw_server *s, char *err, size_t errlen);
void bw_core_guard_save(struct bw_server *s, bool force);
void bw_core_guard_free(struct bw_server *s);

/* worker.c */
int bw_worker_init(struct bw_server *s, unsigned index, char *err, size_t errlen);
void bw_worker_free(struct bw_worker *w);
void *bw_worker_main(void *arg);
void bw_worker_wake(struct bw_worker *w);
/* The next query context of the pool never used yet, set up; NULL when all are (or out of
 * memory). Worker thread. */
struct bw_qctx *bw_worker_qctx_new(struct bw_worker *w);
/* The main thread's tick: a wall-clock step of more than 10 s makes every worker renew its
 * resolver, whose cache (libunbound's) keeps TTLs in wall-clock time. */
void bw_server_clock_check(struct bw_server *s);
/* From the main thread: stop taking queries, finish in-flight ones within drain_ms. */
void bw_worker_begin_drain(struct bw_worker *w, unsigned drain_ms);

/* privs.c: the soft limit on open files raised to what the workers may hold (before the
 * privilege drop: root may raise the hard limit too) */
void bw_server_raise_fd_limit(const struct bw_conf *conf, unsigned nworkers);

/* ddr.c: Discovery of Designated Resolvers (RFC 9462) */
bool bw_ddr_is_query(const struct bw_query *q);
/* The answer (meta, body) to a _dns.resolver.arpa query: SVCB records for the encrypted
 * listeners that have a tls-name, NODATA for other types. Returns 0. */
int bw_ddr_answer(const struct bw_conf *conf, const struct bw_query *q,
		  struct bw_answer_meta *m, uint8_t *body, size_t cap);

/* pipeline.c: handles one query; writes an immediate answer into out and returns its
 * length, or returns 0 when there is nothing to send now (dropped, or asynchronous). */
size_t bw_pipeline_query(struct bw_worker *w, const struct bw_origin *o, const uint8_t *pkt,
			 size_t len, uint8_t *out, size_t cap);
/* the resolver's callback */
void bw_pipeline_resolved(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
			  const char *why_bogus);
void bw_pipeline_timeout(evutil_socket_t fd, short what, void *arg);
/* A parked query whose owner finished (coalesce.c): answered from the cache, or sent on
 * its own way when its answer is not there. */
void bw_pipeline_unparked(struct bw_qctx *x);

static inline const struct bw_state *bw_worker_hold_state(struct bw_worker *w)
{
	if (w->state_depth++ == 0)
		w->state = bw_snapref_acquire(&w->srv->state_ref, w->index);
	return w->state;
}
static inline void bw_worker_drop_state(struct bw_worker *w)
{
	if (--w->state_depth == 0) {
		w->state = NULL;
		bw_snapref_release(&w->srv->state_ref, w->index);
	}
}

#endif
