/* net/tcp.c - DNS over TCP framing (RFC 7766): length-prefixed messages, pipelining with
 * out-of-order answers, idle timeout, caps on connections, in-flight queries and output. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns/dns.h"
#include "net/net.h"

struct bw_tcp_conn {
	struct bw_tcp_server *srv;
	struct bufferevent *bev; /* NULL once the connection is closed */
	struct bw_tcp_conn *prev, *next;
	unsigned inflight;     /* holds: queries being answered asynchronously */
	bool read_paused;
	bool eof;              /* client finished sending; close once answered */
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

struct bw_tcp_server {
	struct evconnlistener *lev;
	struct event_base *base;
	struct bw_tcp_opts opts;
	bw_tcp_msg_fn on_msg;
	void *ctx;
	struct bw_tcp_conn *conns; /* open connections (bev != NULL) */
	unsigned nconns;
	uint8_t msg[BW_DNS_MAXMSG];
};

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
	bufferevent_free(c->bev); /* closes the socket */
	c->bev = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
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

static void on_read(struct bufferevent *bev, void *arg)
{
	struct bw_tcp_conn *c = arg;
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

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)lev;
	struct bw_tcp_server *s = arg;
	if (s->nconns >= s->opts.max_conns) {
		close(fd);
		return;
	}
	struct bw_tcp_conn *c = calloc(1, sizeof(*c));
	if (!c) {
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
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	struct timeval idle = {s->opts.idle_ms / 1000, (s->opts.idle_ms % 1000) * 1000};
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_setwatermark(c->bev, EV_READ, 2, 2 + BW_DNS_MAXMSG);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
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
	s->lev = evconnlistener_new(base, on_accept, s, 0, -1, listen_fd);
	if (!s->lev) {
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
	while (s->conns) {
		struct bw_tcp_conn *c = s->conns;
		c->inflight = 0; /* the loop has stopped: no answer will come back */
		conn_close(c);
	}
	if (s->lev)
		evconnlistener_free(s->lev);
	free(s);
}

unsigned bw_tcp_server_conns(const struct bw_tcp_server *s)
{
	return s->nconns;
}

static void conn_write(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (!c->bev || len > BW_DNS_MAXMSG)
		return;
	uint8_t hdr[2];
	bw_put16(hdr, (uint16_t)len);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, hdr, 2);
	evbuffer_add(out, msg, len);
}

void bw_tcp_conn_hold(struct bw_tcp_conn *c)
{
	c->inflight++;
}

void bw_tcp_conn_answer(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	conn_write(c, msg, len);
	bw_tcp_conn_release(c);
}

void bw_tcp_conn_release(struct bw_tcp_conn *c)
{
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
	conn_write(c, msg, len);
}

const struct sockaddr *bw_tcp_conn_peer(const struct bw_tcp_conn *c, socklen_t *len)
{
	*len = c->peerlen;
	return (const struct sockaddr *)&c->peer;
}

int bw_tcp_conn_listener(const struct bw_tcp_conn *c)
{
	return c->srv->opts.listener_index;
}
