/*
 * conf/conf.h - the YAML configuration, loaded and validated into immutable structs.
 *
 * Owns: struct bw_conf and everything it points to (freed by bw_conf_free()).
 * A loaded config is never modified; a reload loads a new one and keeps the old one if
 * the new one fails (STYLE rule 6). Errors are reported as "file:line:col: message".
 * Every key is documented in docs/config.md.
 *
 * Thread safety: bw_conf_load() and bw_conf_free() are reentrant; a loaded struct may be
 * read from any thread.
 */
#ifndef BW_CONF_H
#define BW_CONF_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "base/base.h"

#ifndef BW_CONF_DEFAULT_PATH /* the Makefile sets it: CONF_PATH */
#define BW_CONF_DEFAULT_PATH "etc/bulwark.yaml"
#endif
#define BW_CONF_DEFAULT_STATE_DIR "/var/lib/bulwark"
#define BW_CONF_DEFAULT_USER "bulwark" /* the packaged system user */

enum bw_transport {
	BW_TRANSPORT_DNS = 0, /* UDP + TCP */
	BW_TRANSPORT_DOT = 1, /* DNS over TLS, RFC 7858 */
	BW_TRANSPORT_DOH = 2, /* DNS over HTTPS (HTTP/2 and HTTP/1.1), RFC 8484 */
};

/* A query rate limit: a token bucket per client prefix (server.rate-limit, a listener's,
 * a client's). */
struct bw_rate {
	bool given;     /* written here (else the next level's applies) */
	unsigned qps;   /* queries a second; 0: no limit */
	unsigned burst; /* bucket size; 0: as qps */
};

/* A name (TLS server name, DoH path) that selects a profile on an encrypted listener. */
struct bw_name_profile {
	char *name;
	int profile; /* index into policy.profiles, or -1: chosen as without the name */
};

struct bw_listen {
	char *address;                /* as written ("127.0.0.1", "::1") */
	uint16_t port;
	enum bw_transport transport;
	int profile;                  /* index into policy.profiles, or -1: choose by client */
	struct sockaddr_storage addr; /* address + port, ready for bind() */
	socklen_t addrlen;
	/* dot and doh only (conf_tls.c) */
	char *tls_cert, *tls_key;     /* PEM chain and key files, re-read on SIGHUP */
	char *tls_name;               /* the name the certificate is for; advertised by DDR */
	struct bw_name_profile *sni;  /* server name -> profile */
	size_t n_sni;
	struct bw_name_profile *doh_paths; /* doh: the paths served (default /dns-query) */
	size_t n_doh_paths;
	bool client_id_required;      /* dot/doh: answer only queries with a known ClientID */
	struct bw_rate rate;          /* rate-limit of this listener (given: overrides the
					 server's) */
};

enum bw_acl_action { BW_ACL_ALLOW = 0, BW_ACL_REFUSE = 1, BW_ACL_DROP = 2 };
struct bw_acl_rule {
	struct bw_cidr net;
	enum bw_acl_action action;
};

enum bw_resolver_mode { BW_RESOLVER_RECURSIVE = 0, BW_RESOLVER_FORWARD = 1 };
/* resolver.ipv6: whether libunbound asks servers over IPv6 (auto: where the host has a route) */
enum bw_resolver_ipv6 { BW_IPV6_AUTO = 0, BW_IPV6_YES = 1, BW_IPV6_NO = 2 };

struct bw_upstream {
	char *addr;     /* "192.0.2.53@53" as libunbound takes it (port after @) */
	bool tls;       /* written as "tls://addr@853#auth-name" */
	char *tls_name; /* expected certificate name (after '#'), or NULL */
};

/* resolver.forward-zones item: names at and below `zone` go to its servers (a stub zone
 * with `stub: true`), in either resolver mode (docs/config.md, "Local names"). */
struct bw_forward_zone {
	char *zone;                  /* lower-case, no trailing dot; never the root */
	struct bw_upstream *forward; /* at least one; all tls:// or none */
	size_t n_forward;
	bool tls;                    /* its upstreams are tls:// */
	bool insecure;               /* default true: no DNSSEC validation below the zone */
	bool stub;                   /* default false: ask an authoritative server (RD=0) */
};

/* The special-use names (RFC 6761, 6762, 7686, 8375) and what resolver.special-use
 * says for each: answered by Bulwark (the default) or handed to the resolver. */
enum bw_special_use {
	BW_SU_LOCALHOST = 0, /* RFC 6761 6.3: A 127.0.0.1, AAAA ::1 */
	BW_SU_INVALID,       /* RFC 6761 6.4: NXDOMAIN */
	BW_SU_TEST,          /* RFC 6761 6.2: NXDOMAIN */
	BW_SU_LOCAL,         /* RFC 6762 22.1: NXDOMAIN (multicast DNS) */
	BW_SU_ONION,         /* RFC 7686 2: NXDOMAIN */
	BW_SU_HOME_ARPA,     /* RFC 8375 4 (RFC 6303 locally served zone): NXDOMAIN */
	BW_SU_COUNT,
};
/* their names, in the enum's order (conf_resolver.c) */
extern const char *const bw_special_use_names[BW_SU_COUNT + 1];

/* One name -> address of local-records or local-records-file (one per address). */
struct bw_local_record {
	char *name;       /* lower-case, no trailing dot */
	int family;       /* 4 or 6 */
	uint8_t addr[16]; /* 4 or 16 bytes */
	unsigned line;    /* its line in local-records-file; 0: local-records in the config */
};

enum bw_feed_format {
	BW_FEED_DOMAINS = 0,
	BW_FEED_HOSTS = 1,
	BW_FEED_WILDCARD = 2,
	BW_FEED_ADBLOCK = 3,
	BW_FEED_RPZ = 4,
	BW_FEED_STIX = 5,
	BW_FEED_MISP = 6,
};

/* Per-feed override of what its rules do (`action:` key). */
enum bw_feed_action {
	BW_FEED_ACT_GIVEN = 0, /* as the feed says (RPZ actions; lists: NXDOMAIN) */
	BW_FEED_ACT_NXDOMAIN,
	BW_FEED_ACT_NODATA,
	BW_FEED_ACT_DROP,
	BW_FEED_ACT_LOG_ONLY,  /* answer normally, but report the match (trial a feed) */
	BW_FEED_ACT_REDIRECT,  /* answer with the feed's `redirect:` target (block page) */
};

enum bw_feed_source {
	BW_FEED_SRC_FILE = 0, /* `file:` - a local file, watched */
	BW_FEED_SRC_URL,      /* `url:` - HTTP(S), any format */
	BW_FEED_SRC_TAXII,    /* `taxii:` - a TAXII 2.1 collection (STIX) */
	BW_FEED_SRC_XFR,      /* `primaries:` - an RPZ zone by AXFR/IXFR, kept fresh by NOTIFY */
};

struct bw_feed_conf {
	char *name;
	char *category;
	enum bw_feed_format format;
	char *file;
	enum bw_feed_action action;
	/* BW_FEED_ACT_REDIRECT: an IPv4 and/or IPv6 address answered for A/AAAA queries
	 * (others get NODATA), or a name answered as a CNAME. */
	bool redirect_has_v4, redirect_has_v6;
	uint8_t redirect_v4[4], redirect_v6[16];
	char *redirect_name; /* text, e.g. "blocked.example.org", or NULL */
	bool misp_non_ids;   /* format misp: use attributes without to_ids too (default off) */
	/* Where the feed comes from (docs/feeds.md; conf_feeds.c). For URL and TAXII feeds
	 * `file` is the last good copy in state-dir/feeds/ (it may not exist yet). */
	enum bw_feed_source source;
	char *url;              /* URL: the list; TAXII: the API root */
	char *taxii_collection; /* TAXII collection id */
	char *username, *password; /* HTTP basic authentication, or NULL */
	char *token_file;       /* bearer token, read from this file at each fetch, or NULL */
	char *ca_file;          /* CA bundle for HTTPS; NULL = the system's */
	unsigned refresh_ms;    /* default 1h */
	unsigned timeout_ms;    /* whole transfer; default 60s */
	uint64_t max_size;      /* bytes after decompression; default 256M */
	uint64_t max_entries;   /* entries (names, networks: as the policy counts them);
				   default 10M */
	double min_ratio;       /* hold back a version with fewer entries than this times the
				   last good's (file feeds too); default 0.5, 0 = never */
	/* Feed health, every feed (policy/rules.h bw_feed_health): a version with at least
	 * min_bad bad units, more than max_bad_ratio of them bad, is a failed load */
	double max_bad_ratio;   /* default 0.5; 1 = never fails for its share of bad units */
	uint64_t min_bad;       /* default 10 */
	uint64_t expire_ms;     /* last success older than this = expired; default 7d, 0 = never */
	bool expired_stop;      /* when-expired: stop (drop the rules); default keep-blocking */
	/* XFR: the RPZ zone and where to transfer it from (docs/feeds.md) */
	char *zone;             /* zone name, text, no trailing dot */
	struct sockaddr_storage *primaries; /* tried in order; NOTIFY accepted only from these */
	size_t n_primaries;
	char *tsig_name, *tsig_alg, *tsig_secret; /* TSIG key (RFC 8945), or NULL: none */
	bool refresh_given;     /* `refresh:` was written (XFR: else the zone's SOA refresh) */
	bool expire_given;      /* `expire:` was written (XFR: else the zone's SOA expire) */
};

/* A profile: which feeds apply to a query, chosen per query (see docs/config.md). */
struct bw_profile_conf {
	char *name;
	bool all_feeds;       /* "feeds: all" (default when neither feeds nor categories given) */
	char **categories;    /* block feeds of these categories ... */
	size_t n_categories;
	char **feeds;         /* ... and these feeds by name */
	size_t n_feeds;
	char **allowlist;     /* extra allowlist of this profile (the global one applies too) */
	size_t n_allowlist;
	struct bw_cidr *clients; /* clients that get this profile (after the listener's) */
	size_t n_clients;
};

/* Named clients (`clients:` and the clients file; docs/config.md "Clients"). */
#define BW_CLIENT_ID_MAX 63   /* a ClientID is one DNS label: [a-z0-9-], 1 to 63 */
#define BW_CLIENT_NAME_MAX 64 /* bytes of a client's name */
struct bw_client_schedule {
	uint8_t days;        /* bit d: day d (0 = Monday .. 6 = Sunday) */
	uint16_t from, to;   /* minutes after midnight, local time; to < from: overnight */
	int profile;         /* index into policy.profiles */
};
struct bw_client_conf {
	char *name;
	struct bw_cidr *nets; /* match: addresses and networks */
	size_t n_nets;
	char **ids;           /* match: ClientIDs (lower-case) */
	size_t n_ids;
	uint8_t (*macs)[6];   /* match: MAC addresses (EDNS option 65001, as dnsmasq adds) */
	size_t n_macs;
	int group;            /* index of the entry this one inherits from, or -1 */
	/* What the client gets; -1 / 0: inherited from the group, else the usual choice.
	 * profile and each schedule item's profile already include the client's own lists
	 * (a derived profile "PROFILE+NAME" when it has any). */
	int profile;
	struct bw_client_schedule *schedule; /* first item that covers the time wins */
	size_t n_schedule;
	char **allowlist;     /* extra names this client never has blocked */
	size_t n_allowlist;
	char **feeds;         /* extra feeds this client is blocked with (block lists) */
	size_t n_feeds;
	struct bw_rate rate;  /* its own rate-limit, else its group's (given: overrides the
				 listener's and the server's) */
};

enum bw_privacy {
	BW_PRIVACY_NONE = 0,     /* counters only */
	BW_PRIVACY_BLOCKED_ONLY, /* blocked queries only, client truncated to /24 and /56 */
	BW_PRIVACY_ANONYMIZED,   /* all queries, client truncated */
	BW_PRIVACY_FULL,         /* all queries, full client address (explicit opt-in) */
};

/* guard: look-alikes of protected domains and newly seen domains (docs/guard.md) */
enum bw_nseen_action { BW_NSEEN_LOG = 0, BW_NSEEN_SHORT_TTL = 1, BW_NSEEN_BLOCK = 2 };
struct bw_guard_domain_conf {
	char *domain;
	int action; /* enum bw_guard_act (guard/guard.h): 0 block, 1 alert */
	char **owns; /* the organisation's other domains (never flagged) */
	size_t n_owns;
	bool tld_swap; /* flag the label under other suffixes; default true */
	char *owns_file; /* owns-file: its names are in owns too (NULL: none) */
};

/* The shipped popular list (guard.popular's default): DATADIR is set by the Makefile (the
 * checkout's etc/ by default; /usr/share/bulwark for an installed package). */
#ifndef BW_DATADIR
#define BW_DATADIR "etc"
#endif
#define BW_GUARD_POPULAR_DEFAULT BW_DATADIR "/guard/popular-domains.txt"
/* The dashboard's static files (admin.www-dir's default): the checkout's www/ by default;
 * a package sets WWWDIR=/usr/share/bulwark/www. */
#ifndef BW_WWWDIR
#define BW_WWWDIR "www"
#endif

struct bw_conf {
	char *path; /* the file this was loaded from */

	struct {
		struct bw_listen *listen;
		size_t n_listen;
		unsigned workers;          /* 0 = auto: one per CPU we may run on */
		unsigned tcp_max_conns;    /* per worker; default 1024 */
		unsigned tcp_max_conns_per_client; /* per worker and client prefix; 0 (the
						      default): tcp_max_conns / 16, at least 1 */
		unsigned tcp_client_v4_prefix;     /* what one client is: default /32 */
		unsigned tcp_client_v6_prefix;     /* and /64 */
		unsigned tcp_idle_ms;      /* default 10000 (RFC 7766 suggests seconds) */
		unsigned tcp_max_inflight; /* pipelined queries per connection; default 64 */
		unsigned max_inflight;     /* queries waiting on the resolver, per worker; 4096 */
		unsigned max_inflight_per_client; /* of those, one client prefix's (the tcp-
						     client prefixes); 0: max_inflight / 4 */
		unsigned tls_handshake_ms; /* dot/doh: finish the TLS handshake within; 5000 */
		unsigned doh_max_streams;  /* doh: concurrent HTTP/2 streams per connection; 100 */
		struct bw_acl_rule *acl;   /* first match wins; no match = refuse */
		size_t n_acl;
		char *state_dir;           /* feeds' last good copies, cursors, newly-seen
					      memory; default BW_CONF_DEFAULT_STATE_DIR */
		char *control_socket;      /* bulwarkctl's unix socket; default
					      state-dir/control.sock */
		char *user;                /* started as root: drop to this user once the
					      listeners are bound; NULL: BW_CONF_DEFAULT_USER
					      if it exists (docs/config.md) */
		char *group;               /* NULL: the user's own group */
		/* rate-limit: queries per client prefix (core/ratelimit.c); qps 0 = off */
		struct bw_rate rate;
		unsigned rl_prefix_v4, rl_prefix_v6; /* what one client is: /24 and /56 */
		unsigned rl_table;         /* prefixes tracked (memory: 16 bytes each); 65536 */
		/* rrl: identical UDP answers per prefix and second (responses 0 = off) */
		unsigned rrl_rps;
		unsigned rrl_slip;         /* every Nth limited answer goes out truncated; 2 */
		unsigned rrl_table;        /* (prefix, answer) pairs tracked; 65536 */
	} server;

	struct {
		enum bw_resolver_mode mode;
		bool dnssec;
		struct bw_upstream *forward; /* forward mode only */
		size_t n_forward;
		char *root_hints;    /* recursive mode; NULL = libunbound's built-in hints */
		char *trust_anchor;  /* file with the root DS/DNSKEY; NULL = built-in root KSK */
		char *tls_ca_file;   /* CA bundle for TLS upstreams; default the system bundle */
		bool qname_minimisation; /* default true */
		bool aggressive_nsec;    /* default true */
		bool prefetch;           /* default true */
		enum bw_resolver_ipv6 ipv6; /* default auto */
		unsigned timeout_ms;     /* give up on a query after this long; default 5000 */
		char **unbound_options;  /* raw "name: value" lines for libunbound, advanced */
		size_t n_unbound_options;
		struct bw_forward_zone *forward_zones; /* per-domain forwarding; none by default */
		size_t n_forward_zones;
		bool special_recurse[BW_SU_COUNT]; /* special-use name handed to the resolver
						      (`recurse`); default false: answered */
	} resolver;

	/* Names Bulwark answers itself (local/local.h): local-records, then the lines of
	 * local-records-file, in that order (a name may have several records). */
	struct {
		struct bw_local_record *records;
		size_t n_records;
		char *file;   /* local-records-file, or NULL (re-read on every reload) */
		uint32_t ttl; /* local-ttl: TTL of local answers; default 300 */
	} local;

	struct {
		uint64_t size;          /* bytes; default 256M */
		unsigned shards;        /* 0 = auto */
		uint32_t min_ttl;       /* default 0 */
		uint32_t max_ttl;       /* default 86400 */
		uint32_t max_neg_ttl;   /* default 3600 */
		uint32_t stale_ttl;     /* how long past expiry an answer may be served stale
					   when upstreams fail (RFC 8767); default 86400, 0 = off */
	} cache;

	struct {
		struct bw_feed_conf *feeds; /* in configured order: first match wins */
		size_t n_feeds;
		char **allowlist;           /* names (and their subdomains) never blocked */
		size_t n_allowlist;
		unsigned watch_ms;          /* poll feed files for changes; default 2000, 0 = off */
		unsigned compact_after;     /* fold IXFR changes into a new base past this many
					     * changed keys; default 65536 */
		struct bw_profile_conf *profiles; /* at least one: when none is configured, one
						     named "default" with all feeds */
		size_t n_profiles;
		unsigned default_profile;   /* index: for clients no rule selects */
	} policy;

	/* What is kept about queries (docs/privacy.md); governs the query log, dnstap and
	 * security events alike. */
	struct {
		enum bw_privacy privacy; /* default BW_PRIVACY_BLOCKED_ONLY */
		char *query_log;         /* SQLite file; NULL = <state-dir>/querylog.sqlite */
		bool query_log_off;      /* `query-log: off` */
		uint64_t retention_ms;   /* query log rows older than this are pruned; 7d */
		unsigned ring_size;      /* records per worker ring (power of two); 16384 */
		uint64_t spool_size;     /* bytes the query log's spool may hold; 1G */
		unsigned spool_stop_wait_ms; /* at stop, import from the spool this long; 5s */
		char *events_file;       /* JSON lines of security events, or NULL */
		bool events_syslog;      /* security events to syslog too; default false */
		char *webhook_url;       /* POST each event as JSON, or NULL */
		unsigned webhook_timeout_ms; /* per attempt; 5s */
		unsigned webhook_retries;    /* extra attempts; 3 */
		unsigned webhook_queue;      /* events waiting to be sent; 1000 */
		char **alert_categories;     /* feed categories that mean an infected client;
						NULL = malware, c2 */
		size_t n_alert_categories;
		unsigned alert_threshold;    /* hits within the window that raise an alert; 5 */
		uint64_t alert_window_ms;    /* 10m */
		uint64_t alert_clear_ms;     /* an alert clears after this long without hits; 1h */
	} telemetry;

	/* Prometheus exposition on a local HTTP endpoint (docs/metrics.md); off by default. */
	struct {
		bool enabled;                 /* a metrics: section that does not say enable: false */
		char *address;                /* default 127.0.0.1 */
		uint16_t port;                /* default 9153 */
		struct sockaddr_storage addr;
		socklen_t addrlen;
	} metrics;

	/* The admin HTTP API and dashboard (admin/admin.h, docs/api.md); off unless an
	 * `admin:` section is written. tokens_file and audit_log always have a value
	 * (bulwarkctl token works without the section). */
	struct {
		bool enabled;
		char *address;                /* from listen: "127.0.0.1@8080" (the default) */
		uint16_t port;
		struct sockaddr_storage addr;
		socklen_t addrlen;
		char *tls_cert, *tls_key;     /* PEM files, both or neither; required when the
						 address is not loopback */
		char *www_dir;                /* the dashboard's files; default BW_WWWDIR */
		unsigned session_minutes;     /* a login's cookie lasts; default 480 */
		char *audit_log;              /* default state-dir/audit.log */
		char *tokens_file;            /* default state-dir/admin-tokens */
	} admin;

	/* The block page (docs/blockpage.md): an HTTP listener that tells a person sent to it
	 * by `action: redirect` which name was blocked, by which feed, and whom to ask; off
	 * by default. */
	struct {
		bool enabled;        /* a block-page: section */
		char *address;       /* from listen: ADDRESS@PORT */
		uint16_t port;
		struct sockaddr_storage addr;
		socklen_t addrlen;
		char *title;         /* the page's heading */
		char *text;          /* what it says under the blocked name */
		char *contact;       /* how to ask for a review, or NULL */
	} block_page;

	/* dnstap (fstrm + protobuf) to a collector (docs/dnstap.md); off by default. */
	struct {
		bool enabled;        /* socket or tcp given */
		char *socket;        /* unix socket path, or NULL */
		char *tcp_address;   /* or a TCP collector: address and port */
		uint16_t tcp_port;
		char *identity;      /* default: the host name */
		char *version;       /* default: "bulwark <version>" (NULL here) */
		bool log_queries;    /* CLIENT_QUERY; default true */
		bool log_responses;  /* CLIENT_RESPONSE; default true */
	} dnstap;

	struct {
		struct bw_guard_domain_conf *protected; /* look-alikes of these are flagged */
		size_t n_protected;
		unsigned min_length;      /* typo checks for labels this long; default 5 */
		bool nseen;               /* newly-seen domains; default false */
		uint64_t nseen_window_ms; /* first seen less than this ago = new; default 1d */
		uint64_t nseen_warmup_ms; /* flag nothing until the memory is this old; = window */
		bool nseen_warmup_given;
		unsigned nseen_memory;    /* domains remembered; default 1000000 */
		enum bw_nseen_action nseen_action; /* default log */
		uint32_t nseen_ttl;       /* short-ttl: the TTL answered; default 60 */
		int *nseen_profile_action; /* per profile: an enum bw_nseen_action or -1 (default);
					      NULL when none is given */
		char *popular;            /* popular registrable domains never flagged (a file);
					     NULL: none. Default: BW_GUARD_POPULAR_DEFAULT */
		bool popular_default;     /* popular is the default: missing = a warning */
	} guard;

	struct {
		struct bw_client_conf *list; /* `clients:`, then the clients file's */
		size_t n;
		size_t n_inline;             /* how many of them `clients:` wrote */
		char *file;                  /* clients-file; default clients.yaml beside the
						config (a missing file: no clients) */
	} clients;

	struct {
		enum bw_log_level level; /* default info */
		bool syslog;             /* default false (stderr) */
	} log;
};

/* server.max-inflight: the queries each worker may have waiting on the resolver */
static inline unsigned bw_max_inflight(const struct bw_conf *c)
{
	return c->server.max_inflight ? c->server.max_inflight : 4096;
}

/* server.tcp-max-connections: the connections each stream listener of a worker holds */
static inline unsigned bw_tcp_max_conns(const struct bw_conf *c)
{
	return c->server.tcp_max_conns ? c->server.tcp_max_conns : 1024;
}

/* The UDP sockets each worker's libunbound may ask upstream with at once (its
 * outgoing-range): max-inflight, at least the 4,096 of Unbound's daemon. */
static inline unsigned bw_outgoing_range(const struct bw_conf *c)
{
	return bw_max_inflight(c) > 4096 ? bw_max_inflight(c) : 4096;
}

/*
 * Loads and validates path. On failure returns a negative BW_E* and writes
 * "path:line:col: message" (or "path: message" without a position) into err.
 * Relative file names inside the config (feeds, root hints, trust anchor) are resolved
 * against the config file's directory. Referenced files must exist and be readable.
 */
int bw_conf_load(const char *path, struct bw_conf **out, char *err, size_t errlen);
void bw_conf_free(struct bw_conf *conf);

/* NULL if s can be a client's name (`clients:` name: 1 to 64 bytes, no control characters,
 * quotes, '\\' or '/', no space at either end), else what is wrong with it. */
const char *bw_conf_client_name_problem(const char *s);

#endif
