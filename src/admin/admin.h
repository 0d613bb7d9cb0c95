/*
 * admin/admin.h - the control socket: a local unix stream socket on which bulwarkctl asks
 * the running daemon things (docs/feeds.md, "Status"; tools/bulwarkctl.c).
 *
 * Protocol: the client sends one line of words ("feeds", "feeds accept NAME", "reload")
 * and reads one JSON object, then the server closes: {"ok": true, "result": ...} or
 * {"ok": false, "error": "..."}. By convention a table result is
 * {"columns": [...], "rows": [[...], ...]} (bulwarkctl prints it as a table). `help` lists
 * each word once (a word and an action of the same name: the word's line, as the word is
 * what runs) and, as "actions", every action's name, method, path, tail, role and changes.
 * The socket is created with mode 0600 (owner only); a stale socket file is replaced, a
 * live one (another daemon) is left alone.
 *
 * Owns: the socket, its thread, the command and action registries (commands are registered before
 * bw_admin_start() and borrowed: their ctx must outlive the admin).
 * Thread safety: commands and actions run one at a time, under one lock (the control
 * socket's thread and the HTTP server's thread both take it).
 *
 * Also in this module: the HTTP API and dashboard server (http*.c: its own thread and
 * event loop, docs/api.md), its request parsing (http_parse.c: pure functions, fuzzed by
 * tests/fuzz/fuzz_admin_http.c) and the API tokens file (tokens.c; bulwarkctl token).
 */
#ifndef BW_ADMIN_H
#define BW_ADMIN_H

#include <jansson.h>

#include "base/base.h"

struct bw_admin;

/* A command: argv[0] is the command's first word. Returns the result (a new reference), or
 * NULL with err set. */
typedef json_t *(*bw_admin_fn)(void *ctx, int argc, char **argv, char *err, size_t errlen);

int bw_admin_create(const char *path, struct bw_admin **out, char *err, size_t errlen);
/* cmd is the first word ("feeds"); the function sees every word. help: one line. */
int bw_admin_register(struct bw_admin *a, const char *cmd, const char *help, bw_admin_fn fn,
		      void *ctx);
/* Binds and starts the thread. Returns 0 or a negative BW_E* with err. */
int bw_admin_start(struct bw_admin *a, char *err, size_t errlen);
/* Runs one request line, as the socket does (for tests): a new JSON response. */
json_t *bw_admin_handle(struct bw_admin *a, const char *line);
void bw_admin_destroy(struct bw_admin *a); /* stops the thread, removes the socket */

/* ---- actions: the one code path of the HTTP API (/api/v1/) and bulwarkctl ----
 * An action has a name (the control socket's word and the audit log's), an HTTP route and
 * the role it needs. Its arguments are one JSON object: the HTTP query string, a JSON
 * body's members and a route's tail ("/api/v1/allow/NAME" gives "name"); on the control
 * socket the request line {"action": "allow", "args": {"name": "x"}} (bulwarkctl sends
 * it; the socket's peer is trusted as admin, its uid named in `who`). Actions run one at a
 * time (one lock for the socket and the HTTP server). An action that `changes` something
 * is written to the audit log (who, what, its arguments, the outcome) whether it worked
 * or not, and over HTTP needs the CSRF check. */
enum bw_role {
	BW_ROLE_NONE = 0,   /* the health check alone */
	BW_ROLE_VIEWER = 1, /* reads */
	BW_ROLE_ADMIN = 2,  /* reads and acts */
};

struct bw_admin_call {
	json_t *args;    /* borrowed; an object, never NULL; values are strings over HTTP
			    (bw_admin_arg_* read both strings and numbers) */
	const char *who; /* "token NAME" or "bulwarkctl (uid N)": for the audit and for
			    "local decision by WHO" */
	enum bw_role role;
	int status;      /* a failing action may set the HTTP status: 400 (default), 404,
			    409, 503 */
	const char *body; /* the raw request body (POST), or NULL; body_len bytes */
	size_t body_len;
};

/* Returns the result (a new reference: an object), or NULL with err set (and status). */
typedef json_t *(*bw_admin_action_fn)(void *ctx, struct bw_admin_call *call, char *err,
				      size_t errlen);

struct bw_admin_action {
	const char *name;   /* "allow"; unique */
	const char *method; /* "GET", "POST" or "DELETE" */
	const char *path;   /* "/api/v1/allow"; a path whose last segment is an asterisk
			       takes the rest of the request path as the argument named
			       by `tail` (DELETE .../allow/NAME) */
	const char *tail;   /* the argument a "*" fills ("name"), or NULL */
	const char *positional; /* bulwarkctl: the arguments its words fill, in order,
				   space-separated ("profile minutes"), or NULL; key=value
				   words fill any */
	enum bw_role role;  /* the least role that may call it */
	bool changes;       /* audited; CSRF-checked */
	const char *help;   /* one line */
	bw_admin_action_fn fn;
	void *ctx;          /* borrowed; outlives the admin */
};

/* Copies the description (the strings are borrowed: string literals). 0 or BW_ESPACE. */
int bw_admin_register_action(struct bw_admin *a, const struct bw_admin_action *act);
/* The registered actions, for the HTTP router: NULL past the end. */
const struct bw_admin_action *bw_admin_action_at(const struct bw_admin *a, size_t i);
/* Runs action `name` under the lock, audits it when it changes something: a new
 * {"ok": true, "result": R} or {"ok": false, "error": "..."} (call->status set: 403 when
 * call->role is below the action's, 404 for no such action). */
json_t *bw_admin_run(struct bw_admin *a, const char *name, struct bw_admin_call *call);
/* The audit log: one JSON line per state change, appended to path (mode 0640), and the
 * same to syslog (authpriv.notice). NULL: syslog only. */
int bw_admin_set_audit(struct bw_admin *a, const char *path);

/* Arguments: a string (a number is formatted), or def when absent. */
const char *bw_admin_arg_str(const struct bw_admin_call *c, const char *key, const char *def);
/* An integer in [lo, hi]: def when absent; false (with err) when not a number or out of
 * range. */
bool bw_admin_arg_int(const struct bw_admin_call *c, const char *key, long long def,
		      long long lo, long long hi, long long *out, char *err, size_t errlen);

/* An audit line for something that is not an action (a login, a failed login): as
 * bw_admin_run() writes for an action that changes something. args may be NULL; error
 * NULL when it worked. Takes the lock. */
void bw_admin_audit(struct bw_admin *a, const char *who, const char *what, json_t *args,
		    const char *error);

/* ---- the HTTP server (http.c) ---- */
struct bw_conf;
struct bw_admin_http;
/* Binds conf->admin's address (TLS when tls-cert is set), and starts the server's thread:
 * the API under /api/v1/ (actions of a, by method and path) and the dashboard's files.
 * Reads tokens from conf->admin.tokens_file (the caller sets a's audit log). conf is
 * borrowed for the call only. NULL with err when it cannot. */
struct bw_admin_http *bw_admin_http_start(struct bw_admin *a, const struct bw_conf *conf,
					  char *err, size_t errlen);
void bw_admin_http_stop(struct bw_admin_http *h); /* NULL is fine */

/* ---- request parsing (http_parse.c): pure, no I/O, no libevent ---- */
#define BW_ADMIN_MAX_BODY (64 * 1024) /* larger request bodies: 413 */
/* A query string ("name=a.example&limit=10", percent-decoded, '+' a space) added to args
 * as string members. 0, or BW_EMALFORMED with err (a bad escape, a NUL, text that is not
 * UTF-8, an empty or over-long key, a key given twice). */
int bw_admin_query_args(const char *query, json_t *args, char *err, size_t errlen);
/* A JSON body's members added to args: the body must be one JSON object; a member also in
 * args already, or one named "", is an error. 0, or BW_EMALFORMED with err. */
int bw_admin_body_args(const char *body, size_t len, json_t *args, char *err, size_t errlen);
/* The value of cookie `name` in a Cookie header ("a=1; bulwark_session=x"): copied into
 * out; false when absent, empty or longer than cap - 1. */
bool bw_admin_cookie_get(const char *header, const char *name, char *out, size_t cap);
/* The action for method and path (the raw request path, without the query): 0 with *act
 * (and, for a path ending in "*", the percent-decoded rest in tail; "" otherwise); 404
 * when no action has the path; 405 when some have it with other methods (their methods,
 * comma-separated, in allow); 400 when the tail is badly encoded. */
int bw_admin_route(const struct bw_admin *a, const char *method, const char *path,
		   const struct bw_admin_action **act, char *tail, size_t tailcap, char *allow,
		   size_t allowcap);
/* A dashboard file's path under www-dir for a request path: "/" is "index.html",
 * "/app.js" "app.js", "/assets/x.css" "assets/x.css". 0, or BW_ENOENT for anything else:
 * "..", ".", hidden names, '%' or '\\', empty segments, control characters, more than 4
 * segments or 255 bytes. */
int bw_admin_static_path(const char *path, char *rel, size_t cap);

/* ---- API tokens (tokens.c) ----
 * The tokens file (admin.tokens-file): one token a line, "NAME ROLE SHA256HEX CREATED",
 * NAME [A-Za-z0-9_.-]{1,64}, ROLE viewer or admin, the SHA-256 of the token in hex, the
 * Unix time it was made; '#' comments and blank lines. Mode 0640. A token is "bwk_" and 43
 * base64url characters (256 random bits); only its hash is kept. */
#define BW_TOKEN_PREFIX "bwk_"
#define BW_TOKEN_LEN 47     /* the prefix and 43 characters */
#define BW_TOKEN_NAME_MAX 64
struct bw_token_entry {
	char name[BW_TOKEN_NAME_MAX + 1];
	enum bw_role role;
	uint8_t hash[32];
	long long created;
};
/* A new token (getrandom): out has room for BW_TOKEN_LEN + 1 bytes. 0 or BW_EIO. */
int bw_token_new(char out[BW_TOKEN_LEN + 1]);
void bw_token_hash(const char *token, uint8_t hash[32]);
const char *bw_role_name(enum bw_role r); /* "viewer", "admin", "none" */
/* "viewer" or "admin"; BW_ROLE_NONE for anything else */
enum bw_role bw_role_from_name(const char *s);
/* NULL when s is a good token name, else what is wrong with it */
const char *bw_token_name_problem(const char *s);
/* One line of the file (no newline): 0 with e, BW_ENOENT for a comment or blank line,
 * BW_EMALFORMED. */
int bw_token_parse_line(const char *line, struct bw_token_entry *e);
/* The whole file: *out (heap, *n entries; an absent file is none). 0, or BW_EIO /
 * BW_EMALFORMED with err ("FILE:LINE: what"). */
int bw_tokens_read(const char *path, struct bw_token_entry **out, size_t *n, char *err,
		   size_t errlen);
/* Replaces the file with these entries: a temporary file beside it (mode 0640, the old
 * file's owner, else the directory's group), fsync, rename. 0, or BW_EIO with err. */
int bw_tokens_write(const char *path, const struct bw_token_entry *e, size_t n, char *err,
		    size_t errlen);

/* The daemon's view of the file: re-read when it changes (looked at at most once a
 * second). One thread only (the HTTP server's). */
struct bw_tokens;
struct bw_tokens *bw_tokens_open(const char *path); /* NULL: out of memory */
void bw_tokens_free(struct bw_tokens *t);
/* The entry whose hash is the token's (compared in constant time): true with *e. */
bool bw_tokens_check(struct bw_tokens *t, const char *token, struct bw_token_entry *e);
/* Whether the entry named name with this hash is still there (a session's token not
 * revoked): true with *e (its role now). */
bool bw_tokens_still(struct bw_tokens *t, const char *name, const uint8_t hash[32],
		     struct bw_token_entry *e);
/* How many tokens the file holds now. */
size_t bw_tokens_count(struct bw_tokens *t);

#endif
