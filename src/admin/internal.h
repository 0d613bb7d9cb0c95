/*
 * admin/internal.h - what the HTTP server's files share (not for other modules):
 *   http.c         the server: thread, listener, TLS, connection cap, routing, replies
 *   http_auth.c    tokens and sessions: login, logout, whoami, who asks, CSRF, the
 *                  failed-login limit
 *   http_static.c  the dashboard's files and Chart.js
 * Everything here runs on the server's one thread: nothing is locked.
 */
#ifndef BW_ADMIN_INTERNAL_H
#define BW_ADMIN_INTERNAL_H

#include <event2/http.h>
#include <pthread.h>
#include <time.h>

#include "admin/admin.h"

#define HTTP_MAX_SESSIONS 256
#define HTTP_FAIL_SLOTS 256     /* source addresses whose failed logins are counted */
#define HTTP_FAILS_PER_ADDR 5   /* failed logins a minute from one address */
#define HTTP_FAILS_GLOBAL 30    /* and from all addresses together */
#define HTTP_SESSION_COOKIE "bulwark_session"
#define HTTP_CSRF_HEADER "X-Bulwark-CSRF"

struct http_session {
	char id[33];   /* 128 random bits in hex: the cookie's value; "" = free slot */
	char csrf[33]; /* the X-Bulwark-CSRF value */
	char name[BW_TOKEN_NAME_MAX + 1];
	uint8_t hash[32]; /* the token it was made with: revoking the token ends it */
	time_t expires;
};

struct http_fails {
	char addr[64];
	time_t window; /* the minute counted */
	unsigned n;
};

struct bw_admin_http {
	struct bw_admin *adm;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev, *tick_ev;
	int stop_fd;
	struct bw_tls *tls; /* NULL: plain HTTP (loopback) */
	struct bw_tokens *tokens;
	char *www_dir;
	unsigned session_s;
	unsigned conns; /* connections open (counted each second) and accepted since */
	bool paused;    /* the listener, while conns is at the cap */
	struct http_session sessions[HTTP_MAX_SESSIONS];
	struct http_fails fails[HTTP_FAIL_SLOTS], all_fails;
};

/* Who asks: a token, by the Authorization header or a session's cookie. */
struct http_auth {
	struct bw_token_entry tok;
	struct http_session *session; /* the cookie's session, or NULL (Bearer) */
};

/* ---- http.c ---- */
/* The security headers (and Cache-Control: no-store for the API). */
void http_headers(struct evhttp_request *req, bool api);
/* Sends {"ok": true, "result": result} (taken) with 200, or the registry's answer `res`
 * (taken) with status. */
void http_send_json(struct evhttp_request *req, int status, json_t *res);
/* {"ok": false, "error": msg} with status. */
void http_error(struct evhttp_request *req, int status, const char *msg);
/* The client's address as text ("127.0.0.1"), or "?". */
const char *http_peer(struct evhttp_request *req);

/* ---- http_auth.c ---- */
/* 0 with *out, or the status to answer (401, 429) with the reason in msg. */
int http_authenticate(struct bw_admin_http *h, struct evhttp_request *req,
		      struct http_auth *out, char *msg, size_t msglen);
/* A request made with the cookie that changes something carries the session's CSRF
 * value; Bearer requests need not. */
bool http_csrf_ok(struct evhttp_request *req, const struct http_auth *au);
void http_login(struct bw_admin_http *h, struct evhttp_request *req);
void http_logout(struct bw_admin_http *h, struct evhttp_request *req);
void http_whoami(struct bw_admin_http *h, struct evhttp_request *req);
/* Drops expired sessions and old failure counts (each second). */
void http_auth_tick(struct bw_admin_http *h);

/* ---- http_static.c ---- */
#ifndef BW_CHARTJS
#define BW_CHARTJS "/usr/share/javascript/chart.js/chart.min.js" /* libjs-chart.js */
#endif
void http_static(struct bw_admin_http *h, struct evhttp_request *req, const char *path);

#endif
