/*
 * feeds/feeds.h - fetched feeds: keeps every `url:` and `taxii:` feed current, and keeps
 * protecting when a source is down, slow or sends garbage (docs/feeds.md).
 *
 * Owns: the feed manager (one thread, its own clock; sources fetch with libcurl easy calls
 * bounded by the feed's timeout, never on the query path), each feed's last good copy and
 * metadata in state-dir/feeds/ (written atomically: temp file, fsync, rename, fsync dir),
 * held-back versions (in memory), and the refresh schedule (jitter, exponential backoff).
 * Borrows: the boot config (outlives the manager); the server, through struct
 * bw_feeds_hooks, to rebuild the policy or apply a delta.
 *
 * Flow: a source fetches a version (FULL: a whole new file; DELTA: rules added/removed
 * plus the whole new file for the last good copy; NONE: not modified). The manager parses
 * and checks it (size, entries, parse errors, shrink against the last good) BEFORE it
 * replaces the last good copy; a version that shrinks below min-ratio is held back until
 * bw_feeds_accept(). Then it asks the server to apply it. Nothing partial is ever applied.
 * The policy reads the last good copy (the feed's `file` is set to it by the config
 * loader), so a restart without network blocks with the last good version.
 *
 * Thread safety: bw_feeds_status(), bw_feeds_accept() and bw_feeds_refresh() may be called
 * from any thread (the control socket's); the rest from the main thread.
 */
#ifndef BW_FEEDS_H
#define BW_FEEDS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/base.h"
#include "conf/conf.h"

struct bw_rule;
struct bw_feed_status;

/* What the manager asks of the server (core: bw_server_feeds_changed / _feed_delta).
 * Feeds are named by their index in the boot config (the manager's list); the server finds
 * the same feed by name in the running config, which a reload may have reordered. */
struct bw_feeds_hooks {
	void *ctx;
	/* A last good copy changed, or a feed expired or came back: rebuild the policy now.
	 * off_mask: feeds (by index) whose rules must be left out (when-expired: stop). */
	int (*rebuild)(void *ctx, uint64_t off_mask);
	/* Applies one feed's changes to the live policy (DELTA sources). */
	int (*delta)(void *ctx, unsigned feed, const struct bw_rule *adds, size_t n_adds,
		     const struct bw_rule *removes, size_t n_removes);
	/* DELTA sources: the feed's rules in effect in the live policy as RPZ text below
	 * origin with an SOA of `serial`, written to out, for its last good copy; and the records
	 * the live policy holds for one RPZ owner (an IXFR changes owners record by record).
	 * Both may be NULL: the XFR source then takes every IXFR as a full transfer. */
	int (*export_feed)(void *ctx, unsigned feed, const char *origin, uint32_t serial,
			   FILE *out, uint64_t *entries);
	/* After a DELTA is stored: folds the changes into a new base if they have grown past
	 * policy.compact-after (may be NULL). */
	void (*compact)(void *ctx);
	/* The live policy's status of a feed (may be NULL; core: bw_server_feed_live_status;
	 * name and category NULL), for `bulwarkctl feeds`; and, for local file feeds, the
	 * operator's accept of its held-back version (BW_ENOENT: nothing held back;
	 * core: bw_server_feed_file_accept). */
	int (*live_status)(void *ctx, unsigned feed, struct bw_feed_status *out);
	int (*file_accept)(void *ctx, unsigned feed, char *msg, size_t msglen);
	/* A fetched feed's version was held back or rejected, or the feed expired: a
	 * security event (may be NULL; core: bw_server_feed_event). state: "held back",
	 * "failed", "expired". */
	void (*event)(void *ctx, unsigned feed, const char *state, const char *reason);
	int (*owner_records)(void *ctx, unsigned feed, const uint8_t *origin, size_t origin_len,
			     const uint8_t *owner, size_t owner_len,
			     void (*emit)(void *ectx, uint16_t type, uint32_t ttl,
					  const uint8_t *rdata, uint16_t rdlen),
			     void *ectx);
};

/* ---- metadata kept beside each last good copy (NAME.meta, JSON) ---- */
struct bw_feed_meta {
	char etag[256];          /* HTTP validators for conditional GET, "" if none */
	char last_modified[64];
	char cursor[64];         /* TAXII: added_after for the next poll, "" = from the start */
	uint32_t serial;         /* RPZ by transfer: the zone serial; has_serial */
	bool has_serial;
	uint32_t soa_refresh, soa_retry, soa_expire; /* ... and its SOA timers (seconds) */
	int64_t fetched_at;      /* wall-clock seconds: when this version was fetched */
	int64_t checked_at;      /* last time the source answered (200 or 304) */
	uint64_t entries;        /* entries in this version (names, networks: rules.h
				    bw_entry_count) */
	bool entries_names;      /* entries counted so ("entries-unit": "names"; older
				    metadata counted rules: counted again at start) */
	uint64_t size;           /* bytes */
	char source[512];        /* the URL it came from, for people reading the file */
};
int bw_feed_meta_save(const char *path, const struct bw_feed_meta *m);
/* BW_ENOENT when there is none, BW_EMALFORMED when it is not ours. */
int bw_feed_meta_load(const char *path, struct bw_feed_meta *m);

/* Writes buf to path atomically: a temp file in the same directory, fsync, rename over
 * path, fsync the directory. Never leaves a partial path behind. */
int bw_feeds_store(const char *path, const char *buf, size_t len);
/* The same with the content written by write_fn into a buffered stream (64 KiB writes);
 * a nonzero return from it (or a write error) leaves path as it was. *written (may be
 * NULL): the bytes stored. */
int bw_feeds_store_with(const char *path, int (*write_fn)(FILE *f, void *ctx), void *ctx,
			size_t *written);

/* ---- safety checks: is a fetched version fit to store and apply? ---- */
enum bw_feed_check {
	BW_CHECK_OK = 0,
	BW_CHECK_TOO_BIG,     /* over max-size: rejected */
	BW_CHECK_TOO_MANY,    /* over max-entries: rejected */
	BW_CHECK_BROKEN,      /* unparsable, or not one usable entry among bad ones, or too
				 many bad ones (rules.h bw_feed_health): rejected */
	BW_CHECK_SHRUNK,      /* fewer than min-ratio x last good entries: held back */
};
struct bw_feed_check_input {
	uint64_t size, entries, bad; /* entries: as rules.h bw_entry_count counts them */
	bool broken;
	bool have_last;       /* there is a last good version ... */
	uint64_t last_entries; /* ... with this many entries */
};
enum bw_feed_check bw_feeds_check(const struct bw_feed_conf *fc,
				  const struct bw_feed_check_input *in);
const char *bw_feed_check_str(enum bw_feed_check v);

/* Delay before the next fetch, in ms: after a success (failures == 0) the refresh interval;
 * after n consecutive failures max(1s, refresh/8) x 2^(n-1), at most 4 x refresh. Both with
 * +-10% jitter from rnd (uniform 32-bit). */
uint64_t bw_feeds_next_delay(unsigned refresh_ms, unsigned failures, uint32_t rnd);

/* ---- sources ----
 * A source fetches one version. The manager owns scheduling, safety checks, the store and
 * status. */
enum bw_fetch_kind { BW_FETCH_NONE = 0, BW_FETCH_FULL, BW_FETCH_DELTA };
struct bw_fetch {
	enum bw_fetch_kind kind;
	char *buf;                 /* FULL and DELTA: the whole new version (heap; the manager
				      takes it) */
	size_t len;
	const struct bw_rule *adds, *removes; /* DELTA: valid until release() */
	size_t n_adds, n_removes;
	struct bw_feed_meta meta;  /* the new validators / cursor / serial (starts as last's) */
	char err[256];             /* why the fetch failed */
	void *priv;                /* the source's, for release() */
	const atomic_bool *cancel; /* set by the manager when the daemon stops: give up */
	/* set by the manager for the source */
	const struct bw_feeds_hooks *hooks; /* the server's (owner_records for IXFR) */
	unsigned feed;             /* the feed's index in the policy */
	bool have_last;            /* the last good copy exists (and meta describes it) */
	bool notified;             /* a NOTIFY asked for this fetch: skip the SOA check */
};
struct bw_feed_src_ops {
	const char *kind; /* "url", "taxii" (and "xfr" later) */
	/* Fetches; last_good: the feed's current last good copy path (may not exist).
	 * out->meta starts as the last good metadata. Returns 0 or a negative BW_E* with
	 * out->err set. Runs on the manager thread; must honour fc->timeout_ms. */
	int (*fetch)(const struct bw_feed_conf *fc, const char *last_good, struct bw_fetch *out);
	void (*release)(struct bw_fetch *f); /* may be NULL */
};
extern const struct bw_feed_src_ops bw_feed_src_url;
extern const struct bw_feed_src_ops bw_feed_src_taxii;
/* RPZ by zone transfer (source_xfr.c): SOA check, IXFR (DELTA; buf NULL, the manager has
 * the server export the result) or AXFR (FULL), TSIG when the feed has a key. */
extern const struct bw_feed_src_ops bw_feed_src_xfr;

/* ---- HTTP (http.c), shared by the url and taxii sources ---- */
struct bw_http_req {
	const char *url;
	const char *ca_file;      /* NULL = system bundle */
	unsigned timeout_ms;
	uint64_t max_size;        /* body bytes after decoding */
	const char *etag, *last_modified; /* conditional GET, NULL or "" = none */
	const char *username, *password;  /* basic */
	const char *bearer;       /* Authorization: Bearer */
	const char *accept;       /* Accept header or NULL */
	const atomic_bool *cancel; /* when it becomes true, the transfer is abandoned */
};
struct bw_http_resp {
	long status;              /* 200, 304, ...; 0 = no HTTP answer */
	char *body;               /* heap, NUL-terminated; free() it */
	size_t len;
	char etag[256], last_modified[64];
	char date_added_last[64]; /* TAXII X-TAXII-Date-Added-Last */
	char effective_url[512];
};
/* Returns 0 with resp filled for any HTTP answer (check status), or a negative BW_E* with
 * err: cannot connect, TLS failure, timeout, transfer cut short (BW_EMALFORMED), over
 * max_size (BW_ERANGE). */
int bw_http_get(const struct bw_http_req *req, struct bw_http_resp *resp, char *err, size_t errlen);

/* ---- TAXII 2.1 (taxii.c) ---- */
/* Parses an envelope (the objects endpoint's answer): *objects (a new reference to the
 * "objects" array, possibly empty; json_decref() it), *more and *next (copied into next,
 * "" if absent). Returns 0, or BW_EMALFORMED with err. */
int bw_taxii_envelope_parse(const char *buf, size_t len, json_t **objects, bool *more,
			    char *next, size_t nextlen, char *err, size_t errlen);
/* Merges objects into the bundle text old (NULL/0 = none): an object replaces one with the
 * same id unless it is older ("modified"). Returns a new bundle text (heap) or NULL. */
char *bw_taxii_merge(const char *old, size_t oldlen, json_t *objects, size_t *outlen);

/* ---- the manager ---- */
struct bw_feeds;
/* Loads every fetched feed's metadata (no network), creates state-dir/feeds. conf is
 * borrowed and must outlive the manager. Returns 0, or a negative BW_E* with err. */
int bw_feeds_create(const struct bw_conf *conf, const struct bw_feeds_hooks *hooks,
		    struct bw_feeds **out, char *err, size_t errlen);
int bw_feeds_start(struct bw_feeds *m);
void bw_feeds_destroy(struct bw_feeds *m); /* stops the thread first */
/* {"columns": [...], "rows": [[...], ...]}, one row per feed (file feeds included). */
json_t *bw_feeds_status(struct bw_feeds *m);
/* Applies the held-back version of feed name. Returns 0, BW_ENOENT (no such feed or
 * nothing held back; err says which). Waits until it is applied. */
int bw_feeds_accept(struct bw_feeds *m, const char *name, char *err, size_t errlen);
/* Did the last version fetched for feed name fail its checks (rejected: broken, too many
 * bad lines, too big; the last good copy stays in force)? Then true, with the reason in
 * why. False for other feeds and after a success. Thread-safe; for /metrics. */
bool bw_feeds_failed(void *m, const char *name, char *why, size_t whylen);
/* Fetches feed name now. BW_ENOENT for no such fetched feed. */
int bw_feeds_refresh(struct bw_feeds *m, const char *name, char *err, size_t errlen);
/* Replaces the source of fetched feed name (before bw_feeds_start): how a new source kind
 * plugs in without touching the manager, and how tests run it without a network. */
int bw_feeds_set_source(struct bw_feeds *m, const char *name, const struct bw_feed_src_ops *src);
/* One fetch of feed name on the calling thread, with the checks, store and apply as the
 * manager thread does them; for tools and tests, never while the thread runs. Returns 0
 * when the source answered and the outcome was applied, held back or unchanged;
 * BW_EIO when the fetch failed or the version was rejected (see the status). */
int bw_feeds_poll(struct bw_feeds *m, const char *name);

/* A NOTIFY (RFC 1996) that reached a listener, from any worker thread: answers it when it
 * names an XFR feed's zone and comes from one of its primaries (TSIG-checked when the feed
 * has a key), and schedules an immediate transfer. Writes the answer into resp and
 * returns its length, or 0 when nothing is to be sent. Never blocks on the network. */
size_t bw_feeds_notify(void *ctx, const struct sockaddr *from, const uint8_t *msg, size_t len,
		       uint8_t *resp, size_t cap);

/* The control socket's `feeds` command (admin/admin.h bw_admin_fn; ctx: the manager):
 * "feeds" (status table), "feeds accept NAME", "feeds refresh NAME". */
json_t *bw_feeds_command(void *ctx, int argc, char **argv, char *err, size_t errlen);
/* The admin actions (feeds/actions.c; docs/api.md, "Data endpoints"): feeds (the status
 * as objects), feeds-refresh and feeds-accept. Before bw_admin_start(); m outlives the
 * admin. 0 or BW_ESPACE. */
struct bw_admin;
int bw_feeds_register_actions(struct bw_feeds *m, struct bw_admin *adm);

#endif
