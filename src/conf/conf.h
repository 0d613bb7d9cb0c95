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

#define BW_CONF_DEFAULT_PATH "etc/bulwark.yaml"
#define BW_CONF_DEFAULT_STATE_DIR "/var/lib/bulwark"

enum bw_transport {
	BW_TRANSPORT_DNS = 0, /* UDP + TCP */
	BW_TRANSPORT_DOT = 1, /* DNS over TLS, RFC 7858 */
	BW_TRANSPORT_DOH = 2, /* DNS over HTTPS (HTTP/2 and HTTP/1.1), RFC 8484 */
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
};

/* A CIDR prefix for access control: family AF_INET or AF_INET6, address bytes in network
 * order (4 or 16 used), prefix length. */
struct bw_cidr {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

enum bw_acl_action { BW_ACL_ALLOW = 0, BW_ACL_REFUSE = 1, BW_ACL_DROP = 2 };
struct bw_acl_rule {
	struct bw_cidr net;
	enum bw_acl_action action;
};

enum bw_resolver_mode { BW_RESOLVER_RECURSIVE = 0, BW_RESOLVER_FORWARD = 1 };

struct bw_upstream {
	char *addr;     /* "192.0.2.53@53" as libunbound takes it (port after @) */
	bool tls;       /* written as "tls://addr@853#auth-name" */
	char *tls_name; /* expected certificate name (after '#'), or NULL */
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

enum bw_privacy {
	BW_PRIVACY_NONE = 0,     /* counters only */
	BW_PRIVACY_BLOCKED_ONLY, /* blocked queries only, client truncated to /24 and /56 */
	BW_PRIVACY_ANONYMIZED,   /* all queries, client truncated */
	BW_PRIVACY_FULL,         /* all queries, full client address (explicit opt-in) */
};

struct bw_conf {
	char *path; /* the file this was loaded from */

	struct {
		struct bw_listen *listen;
		size_t n_listen;
		unsigned workers;          /* 0 = auto: one per CPU we may run on */
		unsigned tcp_max_conns;    /* per worker; default 1024 */
		unsigned tcp_idle_ms;      /* default 10000 (RFC 7766 suggests seconds) */
		unsigned tcp_max_inflight; /* pipelined queries per connection; default 64 */
		unsigned max_inflight;     /* queries waiting on the resolver, per worker; 4096 */
		unsigned tls_handshake_ms; /* dot/doh: finish the TLS handshake within; 5000 */
		unsigned doh_max_streams;  /* doh: concurrent HTTP/2 streams per connection; 100 */
		struct bw_acl_rule *acl;   /* first match wins; no match = refuse */
		size_t n_acl;
		char *state_dir;           /* feeds' last good copies, cursors, newly-seen
					      memory; default BW_CONF_DEFAULT_STATE_DIR */
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
		unsigned timeout_ms;     /* give up on a query after this long; default 5000 */
		char **unbound_options;  /* raw "name: value" lines for libunbound, advanced */
		size_t n_unbound_options;
	} resolver;

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
		struct bw_profile_conf *profiles; /* at least one: when none is configured, one
						     named "default" with all feeds */
		size_t n_profiles;
		unsigned default_profile;   /* index: for clients no rule selects */
	} policy;

	/* What is kept about queries (docs/privacy.md); governs the query log, dnstap and
	 * security events alike. */
	struct {
		enum bw_privacy privacy; /* default BW_PRIVACY_BLOCKED_ONLY */
	} telemetry;

	struct {
		enum bw_log_level level; /* default info */
		bool syslog;             /* default false (stderr) */
	} log;
};

/*
 * Loads and validates path. On failure returns a negative BW_E* and writes
 * "path:line:col: message" (or "path: message" without a position) into err.
 * Relative file names inside the config (feeds, root hints, trust anchor) are resolved
 * against the config file's directory. Referenced files must exist and be readable.
 */
int bw_conf_load(const char *path, struct bw_conf **out, char *err, size_t errlen);
void bw_conf_free(struct bw_conf *conf);

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host route) from s[0..len)
 * (not NUL-terminated); host bits past the prefix are cleared. Returns 0, BW_EINVAL (not
 * an address, bad prefix syntax) or BW_ERANGE (prefix longer than the family allows). */
int bw_cidr_parse(const char *s, size_t len, struct bw_cidr *out);
/* Does the address (AF_INET/AF_INET6 sockaddr) match the CIDR? */
bool bw_cidr_match(const struct bw_cidr *net, const struct sockaddr *sa);
/* The profile an encrypted transport selects for listener `listener` by DoH path and TLS
 * server name (either may be NULL), the path first: an index into policy.profiles, or -1
 * when neither selects one. */
int bw_conf_transport_profile(const struct bw_conf *conf, int listener, const char *sni,
			      const char *path);
/* The ACL action for a client address: the first matching rule, else BW_ACL_REFUSE. */
enum bw_acl_action bw_conf_acl_check(const struct bw_conf *conf, const struct sockaddr *sa);

#endif
