/* net/tcp.c - DNS over TCP framing (RFC 7766): length-prefixed messages, pipelining with
 * out-of-order answers, idle timeout, caps on connections, in-flight queries and output.
 * With a TLS context the same framing runs over TLS: DNS over TLS (RFC 7858). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns/dns.h"
#include "net/internal.h"

struct bw_tcp_server {
	struct evconnlistener *lev;
	struct event_base *base;
	struct bw_tcp_opts opts;
	bw_tcp_msg_fn on_msg;
	void *ctx;
	struct bw_admit admit; /* the open connections (bev != NULL), caps and shares */
	uint8_t msg[BW_DNS_MAXMSG];
	uint8_t pad[BW_DNS_MAXMSG]; /* DoT: an answer being padded */
};

#define conn_of(l) ((struct bw_tcp_conn *)((char *)(l) - offsetof(struct bw_tcp_conn, link)))

static void conn_free_if_done(struct bw_tcp_conn *c)
{
	if (!c->bev && c->inflight == 0)
		free(c);
}

static void conn_close(struct bw_tcp_conn *c)
{
	struct bw_tcp_server *s = c->srv;
	if (!c->bev)
		return;
	if (c->hs_timer) {
		event_free(c->hs_timer);
		c->hs_timer = NULL;
	}
	bufferevent_free(c->bev); /* closes the socket (and frees the SSL) */
	c->bev = NULL;
	bw_admit_leave(&s->admit, &c->link);
	conn_free_if_done(c);
}

/* Pause or resume reading according to the caps. */
static void conn_flow(struct bw_tcp_conn *c)
{
	if (!c->bev)
		return;
	size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
	bool over = c->inflight >= c->srv->opts.max_inflight || out >= c->srv->opts.max_output;
	if (over && !c->read_paused) {
		bufferevent_disable(c->bev, EV_READ);
		c->read_paused = true;
	} else if (!over && c->read_paused && !c->eof) {
		bufferevent_enable(c->bev, EV_READ);
		c->read_paused = false;
		/* queries that arrived while paused are already buffered: look at them */
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) >= 2)
			bufferevent_trigger(c->bev, EV_READ,
					    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
}

static void conn_maybe_finish(struct bw_tcp_conn *c)
{
	if (c->bev && c->eof && c->inflight == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c);
}

/* DoT: the TLS handshake is done (the CONNECTED event, or the first read if libevent
 * delivers that first): from now on the idle timeout applies. Runs once. */
static void conn_started(struct bw_tcp_conn *c)
{
	if (c->handshake_done)
		return;
	c->handshake_done = true;
	if (c->hs_timer) {
		event_free(c->hs_timer);
		c->hs_timer = NULL;
	}
	if (c->srv->opts.tls)
		bw_tls_count(c->srv->opts.tls, bufferevent_openssl_get_ssl(c->bev));
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct bw_tcp_conn *c = arg;
	conn_started(c);
	struct bw_tcp_server *s = c->srv;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		if (c->inflight >= s->opts.max_inflight)
			break;
		uint8_t hdr[2];
		if (evbuffer_copyout(in, hdr, 2) < 2)
			break;
		size_t len = bw_get16(hdr);
		if (evbuffer_get_length(in) < 2 + len)
			break;
		evbuffer_drain(in, 2);
		if (evbuffer_remove(in, s->msg, len) != (int)len) {
			conn_close(c);
			return;
		}
		if (len == 0)
			continue;
		if (s->opts.tls && !c->pad && bw_dns_query_padded(s->msg, len))
			c->pad = true;
		bw_admit_touch(&s->admit, &c->link);
		s->on_msg(c, s->msg, len, s->ctx);
		if (!c->bev)
			return; /* closed inside the callback */
	}
	conn_flow(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct bw_tcp_conn *c = arg;
	conn_flow(c);
	conn_maybe_finish(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct bw_tcp_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		conn_started(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* half-close: answer what is in flight, then close */
		c->eof = true;
		bufferevent_disable(c->bev, EV_READ);
		if (c->inflight == 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_close(c);
		return;
	}
	/* error or timeout: idle connections are closed (RFC 7766 section 6.2.3) */
	if ((what & BEV_EVENT_TIMEOUT) && c->inflight > 0) {
		bufferevent_enable(c->bev, what & BEV_EVENT_READING ? EV_READ : EV_WRITE);
		return; /* still working on its queries */
	}
	conn_close(c);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_tcp_conn *c = arg;
	if (!c->handshake_done)
		conn_close(c);
}

/* The listener is full: closes victim if it is idle (nothing in flight, nothing unsent). */
static bool evict_idle(struct bw_admit_link *victim)
{
	struct bw_tcp_conn *c = conn_of(victim);
	if (!c->bev || c->inflight || evbuffer_get_length(bufferevent_get_output(c->bev)))
		return false;
	conn_close(c);
	return true;
}

/* A connection that could not be set up: out of the counts, then freed. */
static void conn_abandon(struct bw_tcp_conn *c)
{
	bw_admit_leave(&c->srv->admit, &c->link);
	free(c);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)lev;
	struct bw_tcp_server *s = arg;
	struct bw_tcp_conn *c = calloc(1, sizeof(*c));
	if (!c || bw_admit_enter(&s->admit, &c->link, sa, evict_idle) != 0) {
		free(c);
		close(fd);
		return;
	}
	c->srv = s;
	if (salen > 0 && (size_t)salen <= sizeof(c->peer)) {
		memcpy(&c->peer, sa, (size_t)salen);
		c->peerlen = (socklen_t)salen;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->opts.tls) {
		c->bev = bw_tls_bev_new(s->opts.tls, s->base, fd, true);
		if (!c->bev) {
			conn_abandon(c);
			return;
		}
		unsigned ms = s->opts.handshake_ms ? s->opts.handshake_ms : 5000;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		c->hs_timer = evtimer_new(s->base, on_handshake_timeout, c);
		if (!c->hs_timer) {
			bufferevent_free(c->bev);
			conn_abandon(c);
			return;
		}
		evtimer_add(c->hs_timer, &tv);
	} else {
		c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
		c->handshake_done = true;
	}
	if (!c->bev) {
		close(fd);
		conn_abandon(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	struct timeval idle = {s->opts.idle_ms / 1000, (s->opts.idle_ms % 1000) * 1000};
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_setwatermark(c->bev, EV_READ, 2, 2 + BW_DNS_MAXMSG);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct bw_tcp_server *bw_tcp_server_create(struct event_base *base, int listen_fd,
					   const struct bw_tcp_opts *opts, bw_tcp_msg_fn on_msg,
					   void *ctx)
{
	struct bw_tcp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->base = base;
	s->opts = *opts;
	if (!s->opts.max_output)
		s->opts.max_output = 256 * 1024;
	if (!s->opts.max_inflight)
		s->opts.max_inflight = 64;
	s->on_msg = on_msg;
	s->ctx = ctx;
	struct bw_admit_opts ao = {
	    .transport = opts->tls ? "dot" : "tcp",
	    .max_conns = opts->max_conns,
	    .per_client = opts->max_per_client,
	    .v4_prefix = opts->client_v4_prefix,
	    .v6_prefix = opts->client_v6_prefix,
	    .stats = opts->stats,
	};
	if (bw_admit_init(&s->admit, &ao) != 0) {
		free(s);
		return NULL;
	}
	s->lev = evconnlistener_new(base, on_accept, s, 0, -1, listen_fd);
	if (!s->lev) {
		bw_admit_free(&s->admit);
		free(s);
		return NULL;
	}
	return s;
}

void bw_tcp_server_stop_accepting(struct bw_tcp_server *s)
{
	if (s->lev)
		evconnlistener_disable(s->lev);
}

void bw_tcp_server_destroy(struct bw_tcp_server *s)
{
	if (!s)
		return;
	while (s->admit.ring.next != &s->admit.ring) {
		struct bw_tcp_conn *c = conn_of(s->admit.ring.next);
		c->inflight = 0; /* the loop has stopped: no answer will come back */
		conn_close(c);
	}
	if (s->lev)
		evconnlistener_free(s->lev);
	bw_admit_free(&s->admit);
	free(s);
}

unsigned bw_tcp_server_conns(const struct bw_tcp_server *s)
{
	return s->admit.n;
}

static void conn_write(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (!c->bev || len > BW_DNS_MAXMSG)
		return;
	uint8_t hdr[2];
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (c->pad) {
		/* RFC 8467: the client pads, so answers are padded to 468-byte blocks */
		uint8_t *buf = c->srv->pad;
		memcpy(buf, msg, len);
		len = bw_dns_pad(buf, len, BW_DNS_MAXMSG, BW_PAD_BLOCK);
		msg = buf;
	}
	bw_put16(hdr, (uint16_t)len);
	evbuffer_add(out, hdr, 2);
	evbuffer_add(out, msg, len);
}

void bw_tcp_conn_hold(struct bw_tcp_conn *c)
{
	if (c->kind == CONN_DOH) {
		bw_doh_req_hold(c);
		return;
	}
	c->inflight++;
}

void bw_tcp_conn_answer(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (c->kind == CONN_DOH) {
		bw_doh_req_answer(c, msg, len);
		return;
	}
	conn_write(c, msg, len);
	bw_tcp_conn_release(c);
}

void bw_tcp_conn_release(struct bw_tcp_conn *c)
{
	if (c->kind == CONN_DOH) {
		bw_doh_req_release(c);
		return;
	}
	if (c->inflight)
		c->inflight--;
	if (!c->bev) {
		conn_free_if_done(c);
		return;
	}
	conn_flow(c);
	conn_maybe_finish(c);
}

void bw_tcp_conn_send(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (c->kind == CONN_DOH) {
		/* synchronous answer: as an asynchronous one, with its own hold */
		bw_doh_req_hold(c);
		bw_doh_req_answer(c, msg, len);
		return;
	}
	conn_write(c, msg, len);
}

const struct sockaddr *bw_tcp_conn_peer(const struct bw_tcp_conn *c, socklen_t *len)
{
	if (c->kind == CONN_DOH)
		return bw_doh_req_peer(c, len);
	*len = c->peerlen;
	return (const struct sockaddr *)&c->peer;
}

int bw_tcp_conn_listener(const struct bw_tcp_conn *c)
{
	if (c->kind == CONN_DOH)
		return bw_doh_req_listener(c);
	return c->srv->opts.listener_index;
}

const char *bw_tcp_conn_sni(const struct bw_tcp_conn *c)
{
	if (c->kind == CONN_DOH)
		return bw_doh_req_sni(c);
	if (!c->srv->opts.tls || !c->bev)
		return NULL;
	return SSL_get_servername(bufferevent_openssl_get_ssl(c->bev), TLSEXT_NAMETYPE_host_name);
}

const char *bw_tcp_conn_doh_path(const struct bw_tcp_conn *c)
{
	return c->kind == CONN_DOH ? bw_doh_req_path(c) : NULL;
}
