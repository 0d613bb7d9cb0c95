/*
 * core/blockpage.c - the block page (docs/blockpage.md): a plain-HTTP listener for the
 * people a feed's `action: redirect` sends to it. The browser asks for the blocked site,
 * so the Host header names it; the page says which name was blocked, by which feed and
 * category (looked up in the live policy, for the profile the visitor's address gets),
 * the configured explanation, and whom to ask for a review. It keeps nothing and logs
 * nothing about the visitor. evhttp on a thread and event loop of its own, like the
 * metrics endpoint; the live state is held in its own reader slot while it looks.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/internal.h"

struct bw_block_page {
	struct bw_server *srv;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct event *stop_ev;
	int stop_fd;
};

/* What the live policy says about a name. */
struct finding {
	bool blocked;
	char feed[128], category[64], profile[64];
};

/* The host name of a Host header, lower case, without port or final dot: false when it is
 * no DNS name (an address, empty, too long). */
static bool host_name(const char *host, char *out, size_t cap)
{
	if (!host || host[0] == '[')
		return false;
	size_t n = strcspn(host, ":");
	while (n && host[n - 1] == '.')
		n--;
	if (!n || n >= cap || n > 253)
		return false;
	bool alpha = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_') {
			out[0] = 0;
			return false;
		}
		alpha |= isalpha(ch) != 0;
		out[i] = (char)tolower(ch);
	}
	out[n] = 0;
	if (!alpha) /* 192.0.2.80 is the page's own address, not a blocked name */
		out[0] = 0;
	return alpha;
}

static bool match_profile(const struct bw_policy *p, unsigned profile, const uint8_t *lc,
			  size_t len, struct finding *f)
{
	struct bw_verdict v;
	if (!bw_policy_match_qname(p, profile, lc, len, &v) || v.action == BW_ACT_PASSTHRU ||
	    v.action == BW_ACT_ALLOW)
		return false;
	f->blocked = true;
	snprintf(f->feed, sizeof(f->feed), "%s", v.feed_name ? v.feed_name : "");
	snprintf(f->category, sizeof(f->category), "%s", v.category ? v.category : "");
	const char *pn = bw_policy_profile_name(p, profile);
	snprintf(f->profile, sizeof(f->profile), "%s", pn ? pn : "");
	return true;
}

/* The visitor's profile first; else any profile that blocks the name (the visitor may
 * have come by DoH or a ClientID, which an HTTP request does not show). */
static void look_up(const struct bw_state *st, const struct sockaddr *peer, const char *name,
		    struct finding *f)
{
	uint8_t wire[BW_DNS_MAXNAME], lc[BW_DNS_MAXNAME];
	int len = bw_name_from_text(name, strlen(name), wire);
	if (len <= 0)
		return;
	bw_name_lower(lc, wire, (size_t)len);
	enum bw_client_by by;
	struct bw_profile_ask ask = {
	    .client = peer ? bw_clients_by_addr(st->clients, NULL, peer, &by) : -1,
	    .minute = bw_clients_minute_now(),
	    .listener = -1,
	    .peer = peer,
	};
	unsigned mine = bw_choose_profile(st->policy, st->conf, &ask);
	if (!match_profile(st->policy, mine, lc, (size_t)len, f)) {
		unsigned n = bw_policy_profile_count(st->policy);
		for (unsigned i = 0; i < n && !f->blocked; i++)
			match_profile(st->policy, i, lc, (size_t)len, f);
	}
}

static void html(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(b, "&lt;", 4); break;
		case '>': evbuffer_add(b, "&gt;", 4); break;
		case '&': evbuffer_add(b, "&amp;", 5); break;
		case '"': evbuffer_add(b, "&quot;", 6); break;
		case '\'': evbuffer_add(b, "&#39;", 5); break;
		default: evbuffer_add(b, s, 1);
		}
	}
}

static const char style[] =
	"body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;"
	"color:#1b1b1b;line-height:1.5}h1{font-size:1.5em;color:#8a1c1c}"
	"code{background:#f2f2f2;padding:.1em .3em;word-break:break-all}"
	"dt{font-weight:bold}dd{margin:0 0 .5em 0}";

/* c is the live config: its texts (a reload changes them; one that took the section
 * away leaves the listener, which only a restart closes, with these words) */
static void render(struct evbuffer *b, const struct bw_conf *c, const char *name,
		   const struct finding *f)
{
	const char *title = c->block_page.title ? c->block_page.title : "This site was blocked";
	const char *text = c->block_page.text ? c->block_page.text
					      : "Your network's protective DNS service stopped "
						"this visit.";
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, "
			       "initial-scale=1\"><title>");
	html(b, f->blocked ? title : "Protective DNS");
	evbuffer_add_printf(b, "</title><style>%s</style></head><body>\n<h1>", style);
	if (!f->blocked) {
		evbuffer_add_printf(b, "Protective DNS</h1>\n<p>This page is shown when your "
				       "network's protective DNS service stops a visit to a "
				       "dangerous site. ");
		if (name[0]) {
			evbuffer_add_printf(b, "<code>");
			html(b, name);
			evbuffer_add_printf(b, "</code> is not blocked now.");
		}
		evbuffer_add_printf(b, "</p>\n");
	} else {
		html(b, title);
		evbuffer_add_printf(b, "</h1>\n<p>");
		html(b, text);
		evbuffer_add_printf(b, "</p>\n<dl><dt>Site</dt><dd><code>");
		html(b, name);
		evbuffer_add_printf(b, "</code></dd><dt>Listed by</dt><dd>");
		html(b, f->feed[0] ? f->feed : "a block list");
		if (f->category[0]) {
			evbuffer_add_printf(b, " (");
			html(b, f->category);
			evbuffer_add_printf(b, ")");
		}
		evbuffer_add_printf(b, "</dd></dl>\n");
	}
	if (c->block_page.contact) {
		evbuffer_add_printf(b, "<p>To ask for a review: ");
		html(b, c->block_page.contact);
		evbuffer_add_printf(b, "</p>\n");
	}
	evbuffer_add_printf(b, "</body></html>\n");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct bw_block_page *bp = arg;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		/* evhttp_send_error() would drop the Allow header */
		struct evbuffer *b = evbuffer_new();
		evhttp_add_header(out, "Allow", "GET, HEAD");
		evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
		if (b)
			evbuffer_add_printf(b, "only GET and HEAD here\n");
		evhttp_send_reply(req, 405, "Method Not Allowed", b);
		if (b)
			evbuffer_free(b);
		return;
	}
	struct evbuffer *body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	char name[256] = "";
	struct finding f = {0};
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	/* the live state (its policy, and its config's texts) held while the page is made */
	struct bw_server *s = bp->srv;
	unsigned slot = s->nworkers + BW_READER_BLOCK_PAGE;
	const struct bw_state *st = bw_snapref_acquire(&s->state_ref, slot);
	if (host_name(host, name, sizeof(name))) {
		struct evhttp_connection *conn = evhttp_request_get_connection(req);
		look_up(st, conn ? evhttp_connection_get_addr(conn) : NULL, name, &f);
	}
	render(body, st->conf, name, &f);
	bw_snapref_release(&s->state_ref, slot);
	evhttp_add_header(out, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "Content-Security-Policy",
			  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	/* 403: the request was understood and refused; browsers show the page */
	evhttp_send_reply(req, f.blocked ? 403 : HTTP_OK, f.blocked ? "Forbidden" : "OK", body);
	evbuffer_free(body);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct bw_block_page *bp = arg;
	event_base_loopbreak(bp->base);
}

static void *page_main(void *arg)
{
	struct bw_block_page *bp = arg;
	event_base_dispatch(bp->base);
	return NULL;
}

static void page_free(struct bw_block_page *bp)
{
	if (bp->http)
		evhttp_free(bp->http);
	if (bp->stop_ev)
		event_free(bp->stop_ev);
	if (bp->stop_fd >= 0)
		close(bp->stop_fd);
	if (bp->base)
		event_base_free(bp->base);
	free(bp);
}

/* The listening socket, bound now (port 80 needs the privileges the daemon still has). */
static int page_listen(struct bw_block_page *bp, const struct bw_conf *c, char *err,
		       size_t errlen)
{
	int one = 1, fd = socket(c->block_page.addr.ss_family,
				 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&c->block_page.addr, c->block_page.addrlen) != 0 ||
	    listen(fd, 128) != 0 || !evhttp_accept_socket_with_handle(bp->http, fd)) {
		snprintf(err, errlen, "block page: cannot listen on %s port %u: %s",
			 c->block_page.address, (unsigned)c->block_page.port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return BW_EIO;
	}
	return 0;
}

int bw_block_page_start(struct bw_server *s, char *err, size_t errlen)
{
	const struct bw_conf *c = s->conf;
	if (!c->block_page.enabled)
		return 0;
	struct bw_block_page *bp = calloc(1, sizeof(*bp));
	if (!bp) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	bp->srv = s;
	bp->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	bp->base = event_base_new();
	bp->http = bp->base ? evhttp_new(bp->base) : NULL;
	bp->stop_ev = bp->base && bp->stop_fd >= 0
			      ? event_new(bp->base, bp->stop_fd, EV_READ, on_stop, bp)
			      : NULL;
	if (!bp->http || !bp->stop_ev || event_add(bp->stop_ev, NULL) != 0) {
		snprintf(err, errlen, "block page: out of memory");
		page_free(bp);
		return BW_ENOMEM;
	}
	int rc = page_listen(bp, c, err, errlen);
	if (rc) {
		page_free(bp);
		return rc;
	}
	evhttp_set_allowed_methods(bp->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_headers_size(bp->http, 8192);
	evhttp_set_max_body_size(bp->http, 0);
	evhttp_set_timeout(bp->http, 10);
	evhttp_set_gencb(bp->http, on_request, bp);
	if ((rc = pthread_create(&bp->thread, NULL, page_main, bp)) != 0) {
		snprintf(err, errlen, "block page: cannot start a thread: %s", strerror(rc));
		page_free(bp);
		return BW_EIO;
	}
	pthread_setname_np(bp->thread, "bw-blockpage");
	s->block_page = bp;
	bw_info("block page on http://%s%s%s:%u/", strchr(c->block_page.address, ':') ? "[" : "",
		c->block_page.address, strchr(c->block_page.address, ':') ? "]" : "",
		(unsigned)c->block_page.port);
	return 0;
}

void bw_block_page_stop(struct bw_server *s)
{
	struct bw_block_page *bp = s->block_page;
	if (!bp)
		return;
	uint64_t one = 1;
	if (write(bp->stop_fd, &one, sizeof(one)) < 0)
		bw_warn("block page: cannot stop: %s", strerror(errno));
	pthread_join(bp->thread, NULL);
	page_free(bp);
	s->block_page = NULL;
}
