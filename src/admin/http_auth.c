/*
 * admin/http_auth.c - who asks the API (docs/api.md, "Authentication"): a token in
 * `Authorization: Bearer`, or the session cookie a login with a token gave. Sessions are
 * 128 random bits, kept in a fixed table (the oldest goes when it is full), end after
 * admin.session-minutes, at logout, or when their token is revoked. Requests made with
 * the cookie that change something carry the session's CSRF value in X-Bulwark-CSRF.
 * Failed logins (and wrong Bearer tokens) are counted per source address and in all:
 * past HTTP_FAILS_PER_ADDR (or HTTP_FAILS_GLOBAL) a minute, tokens are not even looked
 * at (429) until the minute is over.
 */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "admin/internal.h"

static time_t minute_now(void)
{
	return time(NULL) / 60;
}

/* ---- failed logins ---- */

static struct http_fails *fails_of(struct bw_admin_http *h, const char *addr, bool make)
{
	struct http_fails *oldest = &h->fails[0];
	for (size_t i = 0; i < HTTP_FAIL_SLOTS; i++) {
		struct http_fails *f = &h->fails[i];
		if (f->n && !strcmp(f->addr, addr))
			return f;
		if (!f->n || f->window < oldest->window)
			oldest = f;
	}
	if (!make)
		return NULL;
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->n = 0;
	oldest->window = minute_now();
	return oldest;
}

static bool limited(struct bw_admin_http *h, const char *addr)
{
	time_t now = minute_now();
	struct http_fails *f = fails_of(h, addr, false);
	if (h->all_fails.window == now && h->all_fails.n >= HTTP_FAILS_GLOBAL)
		return true;
	return f && f->window == now && f->n >= HTTP_FAILS_PER_ADDR;
}

static void count_failure(struct bw_admin_http *h, const char *addr)
{
	time_t now = minute_now();
	struct http_fails *f = fails_of(h, addr, true);
	if (f->window != now)
		f->window = now, f->n = 0;
	f->n++;
	if (h->all_fails.window != now)
		h->all_fails.window = now, h->all_fails.n = 0;
	h->all_fails.n++;
}

/* ---- sessions ---- */

static bool random_hex(char out[33])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		return false;
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return true;
}

static void session_end(struct http_session *s)
{
	explicit_bzero(s, sizeof(*s));
}

static struct http_session *session_new(struct bw_admin_http *h, const struct bw_token_entry *t)
{
	struct http_session *s = &h->sessions[0];
	for (size_t i = 0; i < HTTP_MAX_SESSIONS && s->id[0]; i++)
		if (!h->sessions[i].id[0] || h->sessions[i].expires < s->expires)
			s = &h->sessions[i];
	session_end(s);
	if (!random_hex(s->id) || !random_hex(s->csrf)) {
		session_end(s);
		return NULL;
	}
	memcpy(s->name, t->name, sizeof(s->name));
	memcpy(s->hash, t->hash, sizeof(s->hash));
	s->expires = time(NULL) + (time_t)h->session_s;
	return s;
}

/* The session whose id the cookie holds, still valid (its token too): with *tok. */
static struct http_session *session_find(struct bw_admin_http *h, const char *id,
					 struct bw_token_entry *tok, char *msg, size_t msglen)
{
	struct http_session *hit = NULL;
	if (strlen(id) != 32) {
		snprintf(msg, msglen, "this session is not known (log in again)");
		return NULL;
	}
	for (size_t i = 0; i < HTTP_MAX_SESSIONS; i++)
		if (h->sessions[i].id[0] && CRYPTO_memcmp(h->sessions[i].id, id, 32) == 0)
			hit = &h->sessions[i];
	if (!hit) {
		snprintf(msg, msglen, "this session is not known (log in again)");
	} else if (hit->expires <= time(NULL)) {
		snprintf(msg, msglen, "this session has expired (log in again)");
		session_end(hit);
		hit = NULL;
	} else if (!bw_tokens_still(h->tokens, hit->name, hit->hash, tok)) {
		snprintf(msg, msglen, "the token of this session was revoked");
		session_end(hit);
		hit = NULL;
	}
	return hit;
}

void http_auth_tick(struct bw_admin_http *h)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < HTTP_MAX_SESSIONS; i++)
		if (h->sessions[i].id[0] && h->sessions[i].expires <= now)
			session_end(&h->sessions[i]);
}

/* ---- who asks ---- */

static int bearer(struct bw_admin_http *h, struct evhttp_request *req, const char *value,
		  struct http_auth *out, char *msg, size_t msglen)
{
	const char *addr = http_peer(req);
	if (strncasecmp(value, "Bearer ", 7) != 0) {
		snprintf(msg, msglen, "Authorization must be: Bearer TOKEN");
		return 401;
	}
	if (limited(h, addr)) {
		snprintf(msg, msglen, "too many wrong tokens from %s: wait a minute", addr);
		return 429;
	}
	if (!bw_tokens_check(h->tokens, value + 7 + strspn(value + 7, " "), &out->tok)) {
		count_failure(h, addr);
		snprintf(msg, msglen, "unknown or revoked token");
		return 401;
	}
	return 0;
}

int http_authenticate(struct bw_admin_http *h, struct evhttp_request *req,
		      struct http_auth *out, char *msg, size_t msglen)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *authz = evhttp_find_header(in, "Authorization");
	const char *cookie = evhttp_find_header(in, "Cookie");
	char id[64];
	int st = 401;
	memset(out, 0, sizeof(*out));
	if (authz)
		st = bearer(h, req, authz, out, msg, msglen);
	else if (cookie && bw_admin_cookie_get(cookie, HTTP_SESSION_COOKIE, id, sizeof(id)))
		st = (out->session = session_find(h, id, &out->tok, msg, msglen)) ? 0 : 401;
	else
		snprintf(msg, msglen, "this needs an API token: send Authorization: Bearer TOKEN, "
				      "or log in (POST /api/v1/login)");
	if (st == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"bulwark\"");
	else if (st == 429) /* as a refused login says it (docs/api.md, "Errors") */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
	return st;
}

bool http_csrf_ok(struct evhttp_request *req, const struct http_auth *au)
{
	if (!au->session)
		return true;
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), HTTP_CSRF_HEADER);
	return v && strlen(v) == 32 && CRYPTO_memcmp(v, au->session->csrf, 32) == 0;
}

/* ---- login, logout, whoami ---- */

static void set_cookie(struct bw_admin_http *h, struct evhttp_request *req, const char *id,
		       unsigned max_age)
{
	char c[200];
	snprintf(c, sizeof(c), "%s=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict%s",
		 HTTP_SESSION_COOKIE, id, max_age, h->tls ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
}

static json_t *who_json(const struct bw_token_entry *t, const struct http_session *s)
{
	return json_pack("{s:b, s:{s:s, s:s, s:s?}}", "ok", 1, "result", "name", t->name, "role",
			 bw_role_name(t->role), "csrf", s ? s->csrf : NULL);
}

/* The "token" of a login's JSON body, or NULL with msg. */
static char *login_token(struct evhttp_request *req, char *msg, size_t msglen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_t *args = json_object();
	char *token = NULL;
	const char *body = (const char *)evbuffer_pullup(in, -1);
	if (args && bw_admin_body_args(body ? body : "", len, args, msg, msglen) == 0) {
		const char *t = json_string_value(json_object_get(args, "token"));
		if (!t)
			snprintf(msg, msglen, "send {\"token\": \"bwk_...\"}");
		else
			token = strdup(t);
	}
	json_decref(args);
	return token;
}

void http_login(struct bw_admin_http *h, struct evhttp_request *req)
{
	char msg[300], who[128];
	const char *addr = http_peer(req);
	if (limited(h, addr)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
		http_error(req, 429, "too many failed logins: wait a minute and try again");
		return;
	}
	char *token = login_token(req, msg, sizeof(msg));
	if (!token) {
		http_error(req, 400, msg);
		return;
	}
	struct bw_token_entry t;
	bool ok = bw_tokens_check(h->tokens, token, &t);
	explicit_bzero(token, strlen(token));
	free(token);
	json_t *from = json_pack("{s:s}", "from", addr);
	if (!ok) {
		count_failure(h, addr);
		snprintf(who, sizeof(who), "login from %s", addr);
		bw_admin_audit(h->adm, who, "login", from, "unknown or revoked token");
		json_decref(from);
		http_error(req, 401, "unknown or revoked token");
		return;
	}
	struct http_session *s = session_new(h, &t);
	snprintf(who, sizeof(who), "token %s", t.name);
	bw_admin_audit(h->adm, who, "login", from, s ? NULL : "no random bytes");
	json_decref(from);
	if (!s) {
		http_error(req, 503, "cannot make a session now");
		return;
	}
	set_cookie(h, req, s->id, h->session_s);
	http_send_json(req, 200, who_json(&t, s));
}

void http_logout(struct bw_admin_http *h, struct evhttp_request *req)
{
	struct http_auth au;
	char msg[300], who[128];
	int st = http_authenticate(h, req, &au, msg, sizeof(msg));
	if (st) {
		http_error(req, st, msg);
		return;
	}
	if (!http_csrf_ok(req, &au)) {
		http_error(req, 403, "logout needs the " HTTP_CSRF_HEADER " header of your session");
		return;
	}
	snprintf(who, sizeof(who), "token %s", au.tok.name);
	bw_admin_audit(h->adm, who, "logout", NULL, NULL);
	if (au.session) {
		session_end(au.session);
		set_cookie(h, req, "", 0);
	}
	http_send_json(req, 200, json_pack("{s:b, s:{s:s}}", "ok", 1, "result", "message",
					   "logged out"));
}

void http_whoami(struct bw_admin_http *h, struct evhttp_request *req)
{
	struct http_auth au;
	char msg[300];
	int st = http_authenticate(h, req, &au, msg, sizeof(msg));
	if (st)
		http_error(req, st, msg);
	else
		http_send_json(req, 200, who_json(&au.tok, au.session));
}
