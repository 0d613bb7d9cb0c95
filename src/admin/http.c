/*
 * admin/http.c - the admin HTTP server (docs/api.md): libevent's evhttp on a thread and
 * event loop of its own (a slow client never touches a DNS worker), over TLS when
 * admin.tls-cert is set. /api/v1/ runs the registry's actions by method and path (and
 * login, logout, whoami, health); everything else is the dashboard's files.
 *
 * Hostile clients: request bodies over 64 KiB get 413 and headers over 16 KiB 400 from
 * evhttp; a connection idle for 10 s is closed; at most MAX_CONNS connections are open
 * (counted each second from the event loop's own events; past the cap the listener stops
 * accepting until some close, so the rest wait in the kernel's backlog).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "admin/internal.h"
#include "conf/conf.h"
#include "net/net.h"

#define MAX_CONNS 64
#define MAX_HEADERS 16384
#define IDLE_TIMEOUT_S 10

/* ---- answers ---- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return status >= 500 ? "Internal Server Error" : "Error";
	}
}

void http_headers(struct evhttp_request *req, bool api)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);
	evhttp_add_header(o, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(o, "Referrer-Policy", "no-referrer");
	evhttp_add_header(o, "X-Frame-Options", "DENY");
	evhttp_add_header(o, "Cache-Control", api ? "no-store" : "no-cache");
}

void http_send_json(struct evhttp_request *req, int status, json_t *res)
{
	char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
	json_decref(res);
	struct evbuffer *b = evbuffer_new();
	if (!text || !b) {
		free(text);
		if (b)
			evbuffer_free(b);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(b, text, strlen(text));
	evbuffer_add(b, "\n", 1);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json; charset=utf-8");
	evhttp_send_reply(req, status, reason(status), b);
	evbuffer_free(b);
}

void http_error(struct evhttp_request *req, int status, const char *msg)
{
	http_send_json(req, status, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

const char *http_peer(struct evhttp_request *req)
{
	char *addr = NULL;
	ev_uint16_t port;
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	if (c)
		evhttp_connection_get_peer(c, &addr, &port);
	return addr ? addr : "?";
}

/* ---- actions ---- */

static bool has_prefix(const char *s, const char *p)
{
	return !strncasecmp(s, p, strlen(p));
}

/* The request's query string, body and path tail into args; the raw body into *body.
 * 0, or the status to answer with msg. */
static int request_args(struct evhttp_request *req, json_t *args,
			char **body, size_t *len, char *msg, size_t msglen)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (bw_admin_query_args(q, args, msg, msglen))
		return 400;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	*len = evbuffer_get_length(in);
	if (*len) {
		if (!(*body = malloc(*len + 1))) {
			snprintf(msg, msglen, "out of memory");
			return 503;
		}
		evbuffer_copyout(in, *body, *len);
		(*body)[*len] = 0;
		const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
						    "Content-Type");
		if (!ct || has_prefix(ct, "application/json")) {
			if (bw_admin_body_args(*body, *len, args, msg, msglen))
				return 400;
		} else if (!has_prefix(ct, "text/yaml") && !has_prefix(ct, "application/yaml") &&
			   !has_prefix(ct, "application/x-yaml") && !has_prefix(ct, "text/plain")) {
			snprintf(msg, msglen, "send JSON (Content-Type: application/json) or, where "
					      "an endpoint takes it, YAML (text/yaml)");
			return 415;
		}
	}
	return 0;
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

/* Runs the action the caller routed to, as the token asking. */
static void run_action(struct bw_admin_http *h, struct evhttp_request *req,
		       const struct bw_admin_action *act, const char *tail,
		       const struct http_auth *au)
{
	char msg[512] = "", who[BW_TOKEN_NAME_MAX + 16], *body = NULL;
	size_t len = 0;
	json_t *args = json_object();
	int st = args ? request_args(req, args, &body, &len, msg, sizeof(msg)) : 503;
	if (!st && *tail && act->tail) {
		if (json_object_get(args, act->tail)) {
			snprintf(msg, sizeof(msg), "'%s' is given twice (in the path and elsewhere)",
				 act->tail);
			st = 400;
		} else {
			json_object_set_new(args, act->tail, json_string(tail));
		}
	}
	if (st) {
		http_error(req, st, msg[0] ? msg : "out of memory");
	} else {
		snprintf(who, sizeof(who), "token %s", au->tok.name);
		struct bw_admin_call call = {.args = args, .who = who, .role = au->tok.role,
					     .body = body, .body_len = len};
		json_t *res = bw_admin_run(h->adm, act->name, &call);
		bool ok = json_is_true(json_object_get(res, "ok"));
		http_send_json(req, ok ? 200 : call.status ? call.status : 400, res);
	}
	json_decref(args);
	free(body);
}

static void api_action(struct bw_admin_http *h, struct evhttp_request *req, const char *path)
{
	const struct bw_admin_action *act;
	char tail[1024], allow[128], msg[300];
	const char *method = method_name(evhttp_request_get_command(req));
	int st = bw_admin_route(h->adm, method, path, &act, tail, sizeof(tail), allow,
				sizeof(allow));
	if (st == 405) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		snprintf(msg, sizeof(msg), "%s is not allowed here (allowed: %s)", method, allow);
		http_error(req, 405, msg);
		return;
	}
	if (st) {
		http_error(req, st, st == 404 ? "no such API endpoint (see docs/api.md)"
					      : "the path is badly encoded");
		return;
	}
	struct http_auth au;
	if ((st = http_authenticate(h, req, &au, msg, sizeof(msg)))) {
		http_error(req, st, msg);
		return;
	}
	if (act->changes && !http_csrf_ok(req, &au)) {
		http_error(req, 403, "this change needs the " HTTP_CSRF_HEADER " header of your "
				     "session (from login or whoami)");
		return;
	}
	run_action(h, req, act, tail, &au);
}

/* The endpoints that are not actions: 0 when it was one of them (answered). */
static int api_builtin(struct bw_admin_http *h, struct evhttp_request *req, const char *path)
{
	static const struct {
		const char *path, *method;
		void (*fn)(struct bw_admin_http *, struct evhttp_request *);
	} builtin[] = {{"/api/v1/login", "POST", http_login},
		       {"/api/v1/logout", "POST", http_logout},
		       {"/api/v1/whoami", "GET", http_whoami},
		       {"/api/v1/health", "GET", NULL}};
	const char *method = method_name(evhttp_request_get_command(req));
	for (size_t i = 0; i < BW_ARRAY_LEN(builtin); i++) {
		if (strcmp(path, builtin[i].path))
			continue;
		if (strcmp(method, builtin[i].method)) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  builtin[i].method);
			http_error(req, 405, "wrong method for this endpoint");
		} else if (builtin[i].fn) {
			builtin[i].fn(h, req);
		} else {
			http_send_json(req, 200, json_pack("{s:b, s:{s:s}}", "ok", 1, "result",
							   "status", "ok"));
		}
		return 0;
	}
	return -1;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct bw_admin_http *h = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	bool api = path && !strncmp(path, "/api/", 5);
	http_headers(req, api);
	if (!path || !*path)
		http_error(req, 400, "no path");
	else if (!api)
		http_static(h, req, path);
	else if (api_builtin(h, req, path) != 0)
		api_action(h, req, path);
}

/* ---- connections ---- */

struct fd_count {
	int skip[2];
	int fds[MAX_CONNS * 4];
	unsigned n;
};

static int count_fd(const struct event_base *b, const struct event *ev, void *arg)
{
	(void)b;
	struct fd_count *c = arg;
	int fd = event_get_fd(ev);
	if (fd < 0 || fd == c->skip[0] || fd == c->skip[1])
		return 0;
	for (unsigned i = 0; i < c->n; i++)
		if (c->fds[i] == fd)
			return 0;
	if (c->n == BW_ARRAY_LEN(c->fds))
		return 1;
	c->fds[c->n++] = fd;
	return 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct bw_admin_http *h = arg;
	struct fd_count c = {.skip = {evhttp_bound_socket_get_fd(h->bound), h->stop_fd}};
	event_base_foreach_event(h->base, count_fd, &c);
	h->conns = c.n;
	struct evconnlistener *l = evhttp_bound_socket_get_listener(h->bound);
	if (h->paused && h->conns < MAX_CONNS) {
		evconnlistener_enable(l);
		h->paused = false;
	}
	http_auth_tick(h);
}

/* evhttp asks for each new connection's bufferevent: TLS when configured. */
static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
	struct bw_admin_http *h = arg;
	if (++h->conns >= MAX_CONNS && !h->paused) {
		evconnlistener_disable(evhttp_bound_socket_get_listener(h->bound));
		h->paused = true;
	}
	if (!h->tls)
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct bufferevent *bev = bw_tls_bev_unbound(h->tls, base);
	if (!bev) /* evhttp would go on in plain HTTP: the client's TLS handshake fails */
		bw_warn("admin: out of memory for a TLS connection");
	return bev;
}

/* ---- the thread ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct bw_admin_http *h = arg;
	event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	struct bw_admin_http *h = arg;
	event_base_dispatch(h->base);
	return NULL;
}

static void http_free(struct bw_admin_http *h)
{
	if (h->http)
		evhttp_free(h->http);
	if (h->stop_ev)
		event_free(h->stop_ev);
	if (h->tick_ev)
		event_free(h->tick_ev);
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	if (h->base)
		event_base_free(h->base);
	bw_tls_free(h->tls);
	bw_tokens_free(h->tokens);
	free(h->www_dir);
	explicit_bzero(h->sessions, sizeof(h->sessions));
	free(h);
}

/* The listening socket, handed to evhttp. */
static int listen_on(struct bw_admin_http *h, const struct bw_conf *conf, char *err,
		     size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&conf->admin.addr;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, sa, conf->admin.addrlen) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "admin: cannot listen on %s port %u: %s", conf->admin.address,
			 (unsigned)conf->admin.port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return BW_EIO;
	}
	if (!(h->bound = evhttp_accept_socket_with_handle(h->http, fd))) {
		close(fd);
		snprintf(err, errlen, "admin: cannot accept on the listener");
		return BW_EIO;
	}
	return 0;
}

static int setup(struct bw_admin_http *h, const struct bw_conf *conf, char *err, size_t errlen)
{
	h->session_s = conf->admin.session_minutes * 60u;
	h->base = event_base_new();
	h->http = h->base ? evhttp_new(h->base) : NULL;
	h->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h->tokens = bw_tokens_open(conf->admin.tokens_file);
	h->www_dir = strdup(conf->admin.www_dir);
	if (!h->http || h->stop_fd < 0 || !h->tokens || !h->www_dir ||
	    !(h->stop_ev = event_new(h->base, h->stop_fd, EV_READ, on_stop, h)) ||
	    !(h->tick_ev = event_new(h->base, -1, EV_PERSIST, on_tick, h)) ||
	    event_add(h->stop_ev, NULL) != 0 ||
	    event_add(h->tick_ev, &(struct timeval){.tv_sec = 1}) != 0) {
		snprintf(err, errlen, "admin: out of memory");
		return BW_ENOMEM;
	}
	if (conf->admin.tls_cert) {
		char e[512];
		if (bw_tls_create(conf->admin.tls_cert, conf->admin.tls_key, BW_TLS_HTTP1, &h->tls,
				  e, sizeof(e)) != 0) {
			snprintf(err, errlen, "admin: %s", e);
			return BW_EINVAL;
		}
	}
	evhttp_set_bevcb(h->http, new_conn, h);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						 EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_headers_size(h->http, MAX_HEADERS);
	evhttp_set_max_body_size(h->http, BW_ADMIN_MAX_BODY);
	evhttp_set_timeout(h->http, IDLE_TIMEOUT_S);
	evhttp_set_gencb(h->http, on_request, h);
	return listen_on(h, conf, err, errlen);
}

struct bw_admin_http *bw_admin_http_start(struct bw_admin *a, const struct bw_conf *conf,
					  char *err, size_t errlen)
{
	struct bw_admin_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->adm = a;
	h->stop_fd = -1;
	err[0] = 0;
	if (setup(h, conf, err, errlen) != 0)
		goto fail;
	if (!bw_tokens_count(h->tokens)) /* before the thread: it owns the tokens then */
		bw_warn("admin: no API token yet: make one with `bulwarkctl token create NAME "
			"--role admin` (%s)", conf->admin.tokens_file);
	int rc = pthread_create(&h->thread, NULL, http_main, h);
	if (rc != 0) {
		snprintf(err, errlen, "admin: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	pthread_setname_np(h->thread, "bw-http");
	return h;
fail:
	if (!err[0])
		snprintf(err, errlen, "admin: out of memory");
	http_free(h);
	return NULL;
}

void bw_admin_http_stop(struct bw_admin_http *h)
{
	if (!h)
		return;
	uint64_t one = 1;
	if (write(h->stop_fd, &one, sizeof(one)) < 0)
		bw_warn("admin: cannot stop the HTTP server: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	http_free(h);
}
