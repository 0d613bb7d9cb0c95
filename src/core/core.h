/*
 * core/core.h - the server: worker threads (one per core, each with its own event loop,
 * SO_REUSEPORT sockets and preallocated buffers) and the query pipeline (pipeline.c):
 * parse and access control -> client rules -> cache -> QNAME rules and the guard -> resolve
 * -> the answer's rules (CNAME chain, addresses) -> cache store, answer. The policy's
 * decisions are policy/decide.c, shared with `bulwark explain`. The pipeline's lookups in
 * the running config (access control, the profile a transport selects) are access.c.
 *
 * Owns: the workers, their sockets and resolvers, the shared packet cache, and the
 * published policy state (policy snapshot + the config it was built from), swapped
 * atomically on reload while workers keep answering.
 * Borrows: nothing; bw_server_create() takes ownership of the config.
 *
 * Thread safety: bw_server_* functions are called from the main thread only, except
 * bw_server_feeds_changed() and bw_server_feed_delta() (the feed manager's thread; they
 * serialize with reload and watch); workers run on their own threads between
 * bw_server_start() and bw_server_stop().
 */
#ifndef BW_CORE_H
#define BW_CORE_H

#include <stdio.h>
#include <sys/socket.h>

#include "base/base.h"
#include "conf/conf.h"

/* Result of a pipeline stage (STYLE rule 3). */
enum bw_stage { BW_STAGE_NEXT = 0, BW_STAGE_DONE, BW_STAGE_ASYNC, BW_STAGE_DROP };

struct bw_server;

/* Builds everything (cache, policy, sockets bound, resolvers) without starting threads.
 * Takes ownership of conf (also on failure). Returns 0 or a negative BW_E* with a message
 * in err. */
int bw_server_create(struct bw_conf *conf, struct bw_server **out, char *err, size_t errlen);
/* Starts the worker threads. */
int bw_server_start(struct bw_server *s);
/* Reloads: re-reads the config file (policy.*, server.access-control take effect; other
 * sections need a restart) and rebuilds the policy beside the live one, then swaps.
 * On a config error the running state is kept. Returns 0 or a negative BW_E*. */
int bw_server_reload(struct bw_server *s);
/* Rebuilds the policy if a feed file changed since the live snapshot was built. */
void bw_server_watch(struct bw_server *s);
/* Periodic housekeeping from the main thread's tick (writes the newly-seen memory, ends
 * pauses whose time has come). */
void bw_server_tick(struct bw_server *s);
/* Stops accepting, lets in-flight queries finish (up to drain_ms), joins the workers. */
void bw_server_stop(struct bw_server *s, unsigned drain_ms);
void bw_server_destroy(struct bw_server *s);
/* Logs per-worker counters summed. */
void bw_server_log_stats(struct bw_server *s);
/* For the feed manager (feeds/feeds.h), from its thread: rebuild the policy now (a last
 * good copy changed), leaving out the feeds in off_mask (bit = index); apply one feed's
 * delta to the live policy (bw_policy_apply_delta). Both serialize with reload and watch.
 * ctx is the server. Return 0 or a negative BW_E*. */
struct bw_rule;
int bw_server_feeds_changed(void *ctx, uint64_t off_mask);
/* For the feed manager's transfer source: one feed's rules in the live policy as RPZ text
 * (the last good copy after an IXFR), and one RPZ owner's records in it (what an IXFR
 * changes). Both read the live state under the state lock. */
/* Feed manager hook: when the changes applied by deltas (the policy's overlay) hold
 * policy.compact-after keys or more, builds a fresh base with them folded in (off the query
 * path, under the state lock) and publishes it with a new cache generation. */
void bw_server_feed_compact(void *ctx);
int bw_server_feed_export(void *ctx, unsigned feed, const char *origin, uint32_t serial,
			  FILE *out, uint64_t *entries);
int bw_server_feed_owner(void *ctx, unsigned feed, const uint8_t *origin, size_t origin_len,
			 const uint8_t *owner, size_t owner_len,
			 void (*emit)(void *ectx, uint16_t type, uint32_t ttl, const uint8_t *rdata,
				      uint16_t rdlen),
			 void *ectx);
/* For the feed manager's status of any feed and accept of local file feeds (docs/feeds.md,
 * "Feed health"): the live policy's status of feed `feed` (copied; its name and category
 * set to NULL), and the operator's accept of its held-back version: a rebuild that applies the
 * file even though it shrank. accept returns BW_ENOENT when nothing is held back, with
 * msg saying so or what was applied. */
struct bw_feed_status;
int bw_server_feed_live_status(void *ctx, unsigned feed, struct bw_feed_status *out);
int bw_server_feed_file_accept(void *ctx, unsigned feed, char *msg, size_t msglen);
/* The feed manager's security events (a fetched version held back or rejected, a feed
 * expired) to the telemetry's events file, syslog and webhook. Any thread. */
void bw_server_feed_event(void *ctx, unsigned feed, const char *state, const char *reason);
/* Opcode NOTIFY queries go to fn (any worker thread) instead of being answered NOTIMP;
 * fn writes the answer into resp and returns its length, 0 for none. Set before
 * bw_server_start(). Access control does not apply: fn checks the sender itself. */
typedef size_t (*bw_notify_fn)(void *ctx, const struct sockaddr *from, const uint8_t *msg,
			       size_t len, uint8_t *resp, size_t cap);
void bw_server_set_notify(struct bw_server *s, bw_notify_fn fn, void *ctx);
int bw_server_feed_delta(void *ctx, unsigned feed, const struct bw_rule *adds, size_t n_adds,
			 const struct bw_rule *removes, size_t n_removes);
/* Who judges fetched versions (the feed manager: bw_feeds_failed), for /metrics: fn(ctx,
 * feed name, why, whylen) is true when the feed's last fetched version failed its checks
 * (the last good copy stays in force), with why. Set before bw_server_start(). */
void bw_server_set_feed_failed(struct bw_server *s,
			       bool (*fn)(void *ctx, const char *feed, char *why, size_t whylen),
			       void *ctx);
/* Connects the telemetry counters (records dropped by the query log and events, the query
 * log's backlog) to the metrics endpoint: fn fills the telemetry fields of a sample
 * (bw_metrics_telemetry_fn in telemetry/metrics.h) on the endpoint's thread. NULL
 * disconnects it. Any time after bw_server_create(). */
struct bw_metrics_sample;
void bw_server_set_telemetry_stats(struct bw_server *s,
				   void (*fn)(void *ctx, struct bw_metrics_sample *out), void *ctx);
/* One sample of what the metrics endpoint exports (the workers' counters summed, the
 * cache, the live policy's feeds): for the API's status (main.c). Any thread, one at a
 * time (a lock); it may wait up to half a second for busy workers. */
void bw_server_sample(struct bw_server *s, struct bw_metrics_sample *out);
/* The config the server runs on (watch interval etc.). */
const struct bw_conf *bw_server_conf(const struct bw_server *s);
/* The telemetry object (query log, events, alerts; telemetry/telemetry.h): for the
 * control socket (bw_telemetry_alerts_json, bw_telemetry_top_json) and metrics
 * (bw_telemetry_stats). Valid from bw_server_create() to bw_server_destroy(). */
struct bw_telemetry *bw_server_telemetry(struct bw_server *s);

/* The server's admin actions (core/actions.c; docs/api.md, "Data endpoints"): series,
 * why (GET /api/v1/explain) and check-config. Before bw_admin_start(). 0 or BW_ESPACE. */
struct bw_admin;
int bw_server_register_actions(struct bw_server *s, struct bw_admin *adm);

/* ---- local decisions and pauses (decisions.c; docs/decisions.md) ----
 * Local decisions (policy/decisions.h) are kept in server.state-dir/local-decisions,
 * loaded at start and at each reload, and put in force by a new snapshot that shares the
 * live one's rules (bw_policy_with_decisions: no rebuild) with a new cache generation, so
 * the next answer follows them. A pause turns a profile's blocking off until a time
 * (kept in state-dir/paused, so a restart keeps it); bw_server_tick() ends it then. Each
 * change publishes a new state under the state lock; any thread (the admin's). */
struct bw_local_decision;
struct bw_decisions;
/* Puts d in force (replacing a decision on its name), after writing the file. *gen: the
 * new policy generation. BW_ESPACE at the cap, BW_EIO (file), BW_ENOMEM; err says. */
int bw_server_decide(struct bw_server *s, const struct bw_local_decision *d, uint64_t *gen,
		     char *err, size_t errlen);
/* Takes the `action` decision on wire away (the removed one in *old). BW_ENOENT: none. */
int bw_server_undecide(struct bw_server *s, const uint8_t *wire, size_t len, int action,
		       struct bw_local_decision *old, uint64_t *gen, char *err, size_t errlen);
/* The decisions in force (a reference: bw_decisions_unref() it; NULL: none). */
struct bw_decisions *bw_server_decisions(struct bw_server *s);

#define BW_PAUSE_MAX_MINUTES 1440
struct bw_pause {
	char profile[64];
	int64_t until; /* Unix seconds */
	char by[96];   /* who paused it ("token NAME", "bulwarkctl (uid N)") */
};
/* Pauses the blocking of profile (a name of the running config) until now + seconds
 * (1 s .. BW_PAUSE_MAX_MINUTES), again if it is paused already. BW_ENOENT: no such profile. */
int bw_server_pause(struct bw_server *s, const char *profile, unsigned seconds, const char *by,
		    struct bw_pause *out, uint64_t *gen, char *err, size_t errlen);
/* Ends a pause now; BW_ENOENT when the profile is not paused. */
int bw_server_resume(struct bw_server *s, const char *profile, const char *by, uint64_t *gen,
		     char *err, size_t errlen);
/* The pauses in force (at most cap), for status: their count. */
size_t bw_server_pauses(struct bw_server *s, struct bw_pause *out, size_t cap);
/* "blocking is paused for profile X until TIME by WHO" when profile is paused (for
 * explain), else false. */
bool bw_server_pause_text(struct bw_server *s, const char *profile, char *buf, size_t cap);
/* For `bulwark explain` (no daemon at hand): the decisions of the state directory's file
 * put into p (a snapshot not published; nothing when unreadable), and a pause from the
 * pause file. */
struct bw_policy;
void bw_decisions_file_apply(const struct bw_conf *conf, struct bw_policy *p);
bool bw_pause_file_text(const struct bw_conf *conf, const char *profile, char *buf, size_t cap);
/* The actions allow, block, unallow, unblock, decisions, pause and resume (admin/admin.h),
 * and the helper the status action calls: "protection" ("on" | "paused") and "paused":
 * [{"profile", "until", "by"}] added to a status result. 0 or BW_ESPACE. */
struct bw_admin;
int bw_server_register_decision_actions(struct bw_server *s, struct bw_admin *adm);
struct json_t;
void bw_server_paused_json(struct bw_server *s, struct json_t *out);

/* One line on the policy in force ("policy generation 4: 167478 blocked names from 9
 * feeds"), for systemd's STATUS= and `bulwarkctl status`. Any thread (takes the state lock). */
void bw_server_describe(struct bw_server *s, char *buf, size_t cap);

/* Started as root: becomes server.user (or the packaged user, when it exists), with no
 * capability and no_new_privs, after handing it the state directory; then names each feed
 * file and certificate it cannot read (privs.c). Call once the server is created (every
 * listener bound) and before it starts. Not root: does nothing. 0, or BW_EINVAL / BW_EIO
 * with the reason in err. */
int bw_server_drop_privileges(const struct bw_conf *conf, char *err, size_t errlen);

/* ---- per-query lookups in the running config (access.c); any thread, read-only ---- */
/* The profile an encrypted transport selects for listener `listener` by DoH path and TLS
 * server name (either may be NULL), the path first: an index into policy.profiles, or -1
 * when neither selects one. */
int bw_access_transport_profile(const struct bw_conf *conf, int listener, const char *sni,
			      const char *path);
/* The ACL action for a client address: the first matching rule, else BW_ACL_REFUSE. */
enum bw_acl_action bw_access_check(const struct bw_conf *conf, const struct sockaddr *sa);
/* The ClientID a TLS server name carries: "<id>.<tls-name>" where tls-name is the
 * listener's (case-insensitive); *id points into sni, *len bytes (not lower-cased). */
bool bw_access_sni_client_id(const struct bw_conf *conf, int listener, const char *sni,
			     const char **id, size_t *len);

/* ---- named clients (clients.c): conf->clients indexed for the query path ---- */
struct bw_clients;
enum bw_client_by { BW_CLIENT_BY_NONE = 0, BW_CLIENT_BY_ID, BW_CLIENT_BY_MAC, BW_CLIENT_BY_NET };
/* Indexes conf's clients (kept by reference: conf must outlive it). *out is NULL when no
 * client matches anything. 0 or BW_ENOMEM. */
int bw_clients_build(const struct bw_conf *conf, struct bw_clients **out);
void bw_clients_free(struct bw_clients *c);
/* Whether any client has a ClientID (else TLS server names are never read as IDs). */
bool bw_clients_have_ids(const struct bw_clients *c);
/* The client (index into conf->clients.list) with this ClientID (lower-case), or -1. */
int bw_clients_by_id(const struct bw_clients *c, const char *id, size_t len);
/* The client a query is from by its MAC (EDNS option, may be NULL) or else the longest
 * network that holds its address; -1 when none. *by says which matched. */
int bw_clients_by_addr(const struct bw_clients *c, const uint8_t *mac, const struct sockaddr *sa,
		       enum bw_client_by *by);
/* The profile a client gets at minute_of_week (0 = Monday 00:00 local time): the first
 * schedule item that covers it, else its profile; -1 when it names none. */
int bw_client_profile_at(const struct bw_client_conf *cl, unsigned minute_of_week);
/* Which schedule item that is (index into cl->schedule), or -1: none covers it. */
int bw_client_schedule_at(const struct bw_client_conf *cl, unsigned minute_of_week);
/* A schedule item as people write it: "mon-fri 08:00-15:00", "daily 22:00-06:00",
 * "mon,wed,sat-sun 00:00-24:00". */
void bw_client_schedule_text(const struct bw_client_schedule *s, char *out, size_t cap);
/* The client (or group) of that name (exact), or -1. Not for the query path: a scan. */
int bw_clients_by_name(const struct bw_conf *conf, const char *name);
/* The local minute of the week now (localtime_r once a minute per thread). */
unsigned bw_clients_minute_now(void);

/* What the profile choice looks at. */
struct bw_profile_ask {
	int client;            /* conf->clients.list index, or -1 */
	unsigned minute;       /* of the week, for the client's schedule */
	int listener;          /* -1: none */
	const struct sockaddr *peer;
	const char *sni, *doh_path;
};
struct bw_policy;
/* The profile a query gets, most specific first: its client's (with the schedule), the DoH
 * path's or TLS server name's, the listener's, the first profile whose networks hold the
 * address, the default profile. The pipeline and `bulwark explain` both ask this. */
unsigned bw_choose_profile(const struct bw_policy *p, const struct bw_conf *conf,
			   const struct bw_profile_ask *ask);

#endif
