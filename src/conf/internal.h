/*
 * conf/internal.h - what the config loader's files share: the load context and the
 * helpers that walk the YAML document and report `file:line:col: message` errors.
 * Not for other modules (they see struct bw_conf in conf.h).
 *
 * Each section but the two keys of `log:` (conf.c) lives in its own file
 * (conf_<section>.c) that lists its keys and parses them: it provides
 *   int cf_parse_<section>(struct cf_ctx *c, yaml_node_t *map);
 * declared below, and one line in the section table of conf.c (parse_root). The helpers
 * declared here are yaml.c.
 * Every helper returns 0 or the negative BW_E* it reported through cf_fail_at().
 */
#ifndef BW_CONF_INTERNAL_H
#define BW_CONF_INTERNAL_H

#include <stdarg.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf.h"

#define NAME_MAX_LEN 64 /* feed names and categories */

struct cf_ctx {
	const char *path; /* the config file, for messages */
	char *dir;	  /* its directory with a trailing '/', or NULL for "." */
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	struct bw_conf *conf;
	bool acl_given; /* access-control was written (even as an empty list) */
	/* Profile names are resolved once the whole document is read (policy may come after
	 * server): the `profile` value of each listener (NULL: none), and default-profile. */
	yaml_node_t **listen_profile;
	yaml_node_t *default_profile;
	/* profile names of listeners' sni and doh-paths maps (conf_tls.c), resolved likewise */
	struct cf_pending_profile {
		yaml_node_t *node;
		int *out;
	} *tls_profiles;
	size_t n_tls_profiles;
	/* clients (conf_clients.c): what each entry wrote that is resolved at the end */
	struct cf_client_raw *clients_raw;
	size_t n_clients_raw;
	bool clients_file_given;
};

/* ---- error reporting: "path:line:col: message" into c->err; returns code ---- */
int cf_fail_at(struct cf_ctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cf_fail_mark(struct cf_ctx *c, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cf_nomem(struct cf_ctx *c);
/* "file:line: message" about a line of a file the config names (local-records-file). */
int cf_fail_file(struct cf_ctx *c, const char *file, unsigned long line, int code,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- node access ---- */
yaml_node_t *cf_node(struct cf_ctx *c, int idx);
const char *cf_sval(const yaml_node_t *n);
/* An empty plain scalar, "~" or "null": YAML's null, treated as "not given". */
bool cf_is_null(const yaml_node_t *n);
const char *cf_type_name(yaml_node_type_t t);
int cf_want_type(struct cf_ctx *c, const yaml_node_t *n, yaml_node_type_t t, const char *key);
int cf_want_scalar(struct cf_ctx *c, const yaml_node_t *n, const char *key, const char **out);
/* Checks every key of a mapping: a scalar, known, not repeated. `known` ends with NULL;
 * `where` names the mapping in messages ("server", "policy.feeds item"). */
int cf_check_keys(struct cf_ctx *c, yaml_node_t *map, const char *where, const char *const *known);
/* The pair whose key is `key`, or NULL. Keys were checked by cf_check_keys() already. */
yaml_node_pair_t *cf_find_pair(struct cf_ctx *c, yaml_node_t *map, const char *key);
/* The value of `key`, or NULL when it is absent or null. */
yaml_node_t *cf_get(struct cf_ctx *c, yaml_node_t *map, const char *key);
/* The value of a required key; a missing key is reported at the enclosing mapping. */
int cf_need(struct cf_ctx *c, yaml_node_t *map, const char *key, const char *where,
	    yaml_node_t **out);
size_t cf_seq_len(const yaml_node_t *n);
yaml_node_t *cf_seq_item(struct cf_ctx *c, const yaml_node_t *n, size_t i);

/* ---- scalar values ---- */
/* A decimal unsigned integer: digits only, no sign, no spaces, no overflow. */
bool cf_parse_ulong(const char *s, unsigned long *out, const char **end);
int cf_get_uint(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
		unsigned long hi, unsigned long *out);
int cf_get_unsigned(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
		    unsigned long hi, unsigned *out);
/* "auto" (stored as 0) or a number in lo..hi. */
int cf_get_auto_uint(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
		     unsigned long hi, unsigned *out);
int cf_get_bool(struct cf_ctx *c, yaml_node_t *n, const char *key, bool *out);
/* A duration in milliseconds: "30" (seconds), "1500ms", "10s", "5m", "2h", "1d", in
 * lo_ms..hi_ms. */
int cf_get_duration_ms(struct cf_ctx *c, yaml_node_t *n, const char *key, uint64_t lo_ms,
		       uint64_t hi_ms, uint64_t *out);
int cf_get_duration_ms32(struct cf_ctx *c, yaml_node_t *n, const char *key, uint64_t lo_ms,
			 uint64_t hi_ms, unsigned *out);
/* A duration stored in whole seconds (TTLs). */
int cf_get_duration_sec(struct cf_ctx *c, yaml_node_t *n, const char *key, uint32_t *out);
/* One of `names` (NULL-terminated); *out is its index. */
int cf_get_enum(struct cf_ctx *c, yaml_node_t *n, const char *key, const char *const *names,
		int *out);
int cf_get_string(struct cf_ctx *c, yaml_node_t *n, const char *key, char **out);
/* A file name: relative names are taken from the config file's directory; the file must
 * be readable. `what` names it in messages ("feed 'x'", "trust-anchor"). */
int cf_get_file(struct cf_ctx *c, yaml_node_t *n, const char *key, const char *what, char **out);

/* A path, relative names taken from the config file's directory; need not exist. */
int cf_get_path(struct cf_ctx *c, yaml_node_t *n, const char *key, char **out);

/* ---- addresses and names ---- */
int cf_make_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
		     socklen_t *len);
int cf_parse_cidr(const char *s, struct bw_cidr *out);
/* NULL if s is a plausible host name, else what is wrong with it. */
const char *cf_name_problem(const char *s);
/* A copy of a checked name, lower-cased, without its trailing dot; NULL when out of memory. */
char *cf_canon_name(const char *s);
/* A sequence of names (an allowlist): each checked, lower-cased, without its trailing dot;
 * `owner` prefixes messages ("profile 'x': "). */
int cf_parse_names(struct cf_ctx *c, yaml_node_t *seq, const char *owner, char ***out,
		   size_t *n_out);
/* Feed names and categories: [A-Za-z0-9_.-]+, at most NAME_MAX_LEN characters. */
bool cf_ident_ok(const char *s);

/* ---- sections, each in its own file with its keys (conf_<section>.c) ---- */
int cf_parse_server(struct cf_ctx *c, yaml_node_t *m);    /* conf_server.c */
/* The dot/doh keys of a server.listen item (conf_tls.c): their names, which the item's
 * key check includes, and their parsing; `m` was key-checked already. */
#define CF_LISTEN_TLS_NKEYS 6
extern const char *const cf_listen_tls_keys[CF_LISTEN_TLS_NKEYS + 1];
int cf_parse_listen_tls(struct cf_ctx *c, yaml_node_t *m, struct bw_listen *l);
void cf_free_listen_tls(struct bw_listen *l);
/* A rate-limit mapping, { qps: N, burst: N } (conf_server.c); `where` names it. */
int cf_parse_rate(struct cf_ctx *c, yaml_node_t *m, const char *where, struct bw_rate *out);
int cf_parse_resolver(struct cf_ctx *c, yaml_node_t *m);  /* conf_resolver.c */
void cf_free_forward_zones(struct bw_conf *conf);
/* conf_local.c: local-records, local-records-file and local-ttl, keys of the top level */
int cf_parse_local(struct cf_ctx *c, yaml_node_t *root);
void cf_local_defaults(struct bw_conf *conf);
void cf_free_local(struct bw_conf *conf);
int cf_parse_cache(struct cf_ctx *c, yaml_node_t *m);     /* conf_cache.c */
int cf_parse_policy(struct cf_ctx *c, yaml_node_t *m);    /* conf_policy.c */
/* conf_feeds.c: the policy.feeds list; cf_feeds_finish() once state-dir is known;
 * cf_free_feed() frees what one item points to. */
int cf_parse_feeds(struct cf_ctx *c, yaml_node_t *seq);
int cf_feeds_finish(struct cf_ctx *c);
void cf_free_feed(struct bw_feed_conf *f);
int cf_parse_telemetry(struct cf_ctx *c, yaml_node_t *m); /* conf_telemetry.c */
void cf_telemetry_defaults(struct bw_conf *conf);
void cf_telemetry_free(struct bw_conf *conf);
int cf_parse_metrics(struct cf_ctx *c, yaml_node_t *m);   /* conf_metrics.c */
/* "addr@port" (the port required): the address into *addr (malloc'd), the port into *port. */
int cf_get_addr_port(struct cf_ctx *c, yaml_node_t *n, const char *key, char **addr,
		     uint16_t *port);
int cf_parse_block_page(struct cf_ctx *c, yaml_node_t *m); /* conf_blockpage.c */
int cf_parse_dnstap(struct cf_ctx *c, yaml_node_t *m);    /* conf_metrics.c */
/* conf_clients.c: the `clients:` list; cf_clients_finish() reads the clients file and
 * resolves groups and profile names once the profiles are complete. */
int cf_parse_clients(struct cf_ctx *c, yaml_node_t *seq);
int cf_clients_finish(struct cf_ctx *c);
void cf_clients_free_raw(struct cf_ctx *c);
void cf_clients_free(struct bw_conf *conf);
int cf_parse_guard(struct cf_ctx *c, yaml_node_t *m);     /* conf_guard.c */
void cf_guard_defaults(struct bw_conf *conf);
void cf_free_guard(struct bw_conf *conf);

#endif
