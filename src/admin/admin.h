/*
 * admin/admin.h - the control socket: a local unix stream socket on which bulwarkctl asks
 * the running daemon things (docs/feeds.md, "Status"; tools/bulwarkctl.c).
 *
 * Protocol: the client sends one line of words ("feeds", "feeds accept NAME", "reload")
 * and reads one JSON object, then the server closes: {"ok": true, "result": ...} or
 * {"ok": false, "error": "..."}. By convention a table result is
 * {"columns": [...], "rows": [[...], ...]} (bulwarkctl prints it as a table).
 * The socket is created with mode 0600 (owner only); a stale socket file is replaced, a
 * live one (another daemon) is left alone.
 *
 * Owns: the socket, its thread, the command and action registries (commands are registered before
 * bw_admin_start() and borrowed: their ctx must outlive the admin).
 * Thread safety: commands and actions run one at a time, under one lock (the control
 * socket's thread and the HTTP server's thread both take it).
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

#endif
