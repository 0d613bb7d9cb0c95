/* net/tcp.c - DNS over TCP framing (RFC 7766): length-prefixed messages, pipelining with
 * out-of-order answers, idle timeout, caps on connections, in-flight queries and output.
 * With a TLS context the same framing runs over TLS: DNS over TLS (RFC 7858). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns/dns.h"
#include "net/internal.h"

/* A TCP or DoT connection; also the core's reply handle for its queries. */
struct bw_tcp_conn {
	struct bw_reply reply;     /* first: the core's handle */
	struct bw_tcp_server *srv;
	struct bw_stream io;       /* socket, TLS, timers, admission (stream.c) */
	unsigned inflight;         /* holds: queries being answered asynchronously */
	bool read_paused;
	bool eof;                  /* client finished sending; close once answered */
	bool pad;                  /* DoT: the client pads its queries, so we pad answers */
};

struct bw_tcp_server {
	struct bw_stream_listener ls; /* the socket; the open connections, caps and shares */
	struct bw_tcp_opts opts;
	bw_stream_msg_fn on_msg;
	void *ctx;
	uint8_t msg[BW_DNS_MAXMSG];
	uint8_t pad[BW_DNS_MAXMSG]; /* DoT: an answer being padded */
};

#define conn_of(l) ((struct bw_tcp_conn *)((char *)(l) - offsetof(struct bw_tcp_conn, io.link)))

static const struct bw_reply_ops reply_ops;

static void conn_free_if_done(struct bw_tcp_conn *c)
{
	if (!c->io.bev && c->inflight == 0)
		free(c);
}

static void conn_close(struct bw_tcp_conn *c)
{
	if (bw_stream_close(&c->io, &c->srv->ls.admit))
		conn_free_if_done(c);
}

/* Pause or resume reading according to the caps. */
static void conn_flow(struct bw_tcp_conn *c)
{
	if (!c->io.bev)
		return;
	size_t out = evbuffer_get_length(bufferevent_get_output(c->io.bev));
	bool over = c->inflight >= c->srv->opts.max_inflight ||
		    out >= c->srv->opts.stream.max_output;
	if (over && !c->read_paused) {
		bufferevent_disable(c->io.bev, EV_READ);
		c->read_paused = true;
	} else if (!over && c->read_paused && !c->eof) {
		bufferevent_enable(c->io.bev, EV_READ);
		c->read_paused = false;
		/* queries that arrived while paused are already buffered: look at them */
		if (evbuffer_get_length(bufferevent_get_input(c->io.bev)) >= 2)
			bufferevent_trigger(c->io.bev, EV_READ,
					    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
}

static void conn_maybe_finish(struct bw_tcp_conn *c)
{
	if (c->io.bev && c->eof && c->inflight == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->io.bev)) == 0)
		conn_close(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct bw_tcp_conn *c = arg;
	bw_stream_started(&c->io, c->srv->opts.stream.tls);
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
		if (s->opts.stream.tls && !c->pad && bw_dns_query_padded(s->msg, len))
			c->pad = true;
		bw_admit_touch(&s->ls.admit, &c->io.link);
		s->on_msg(&c->reply, s->msg, len, s->ctx);
		if (!c->io.bev)
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
		bw_stream_started(&c->io, c->srv->opts.stream.tls);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* half-close: answer what is in flight, then close */
		c->eof = true;
		bufferevent_disable(c->io.bev, EV_READ);
		if (c->inflight == 0 && evbuffer_get_length(bufferevent_get_output(c->io.bev)) == 0)
			conn_close(c);
		return;
	}
	/* error or timeout: idle connections are closed (RFC 7766 section 6.2.3) */
	if ((what & BEV_EVENT_TIMEOUT) && c->inflight > 0) {
		bufferevent_enable(c->io.bev, what & BEV_EVENT_READING ? EV_READ : EV_WRITE);
		return; /* still working on its queries */
	}
	conn_close(c);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_tcp_conn *c = arg;
	if (!c->io.handshake_done)
		conn_close(c);
}

/* The listener is full: closes victim if it is idle (nothing in flight, nothing unsent). */
static bool evict_idle(struct bw_admit_link *victim)
{
	struct bw_tcp_conn *c = conn_of(victim);
	if (c->inflight || !bw_stream_idle(&c->io))
		return false;
	conn_close(c);
	return true;
}

/* A new connection of server s (the stream base opens it). */
static void *conn_new(void *server)
{
	struct bw_tcp_conn *c = calloc(1, sizeof(*c));
	if (c) {
		c->reply.ops = &reply_ops;
		c->srv = server;
	}
	return c;
}

struct bw_tcp_server *bw_tcp_server_create(struct event_base *base, int listen_fd,
					   const struct bw_tcp_opts *opts, bw_stream_msg_fn on_msg,
					   void *ctx)
{
	struct bw_tcp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->opts = *opts;
	if (!s->opts.stream.max_output)
		s->opts.stream.max_output = 256 * 1024;
	if (!s->opts.max_inflight)
		s->opts.max_inflight = 64;
	s->on_msg = on_msg;
	s->ctx = ctx;
	s->ls.setup = (struct bw_stream_setup){
	    .tls = opts->stream.tls,
	    .tls_filter = true, /* DoT: large socket reads (docs/internals/encrypted.md) */
	    .handshake_ms = opts->stream.handshake_ms,
	    .idle_ms = opts->stream.idle_ms,
	    .read_low = 2,
	    .read_high = 2 + BW_DNS_MAXMSG,
	    .evict = evict_idle,
	    .on_handshake_timeout = on_handshake_timeout,
	    .on_read = on_read,
	    .on_write = on_write,
	    .on_event = on_event,
	};
	s->ls.conn_new = conn_new;
	s->ls.io_offset = offsetof(struct bw_tcp_conn, io);
	s->ls.layer = s;
	if (bw_stream_listen(&s->ls, base, listen_fd, opts->stream.tls ? "dot" : "tcp",
			     &s->opts.stream) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

int bw_tcp_conn_adopt(struct bw_tcp_server *s, evutil_socket_t fd, const struct sockaddr *sa,
		      socklen_t salen)
{
	return bw_stream_listener_adopt(&s->ls, fd, sa, (int)salen);
}

void bw_tcp_server_stop_accepting(struct bw_tcp_server *s)
{
	bw_stream_listener_stop(&s->ls);
}

void bw_tcp_server_destroy(struct bw_tcp_server *s)
{
	if (!s)
		return;
	for (struct bw_stream *io; (io = bw_stream_listener_any(&s->ls));) {
		struct bw_tcp_conn *c = conn_of(&io->link);
		c->inflight = 0; /* the loop has stopped: no answer will come back */
		conn_close(c);
	}
	bw_stream_listener_free(&s->ls);
	free(s);
}

unsigned bw_tcp_server_conns(const struct bw_tcp_server *s)
{
	return s->ls.admit.n;
}

static void conn_write(struct bw_tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (!c->io.bev || len > BW_DNS_MAXMSG)
		return;
	uint8_t hdr[2];
	struct evbuffer *out = bufferevent_get_output(c->io.bev);
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

/* ---- the reply handle ---- */

static struct bw_tcp_conn *conn_of_reply(const struct bw_reply *r)
{
	return (struct bw_tcp_conn *)r; /* the handle is the first member */
}

static void reply_hold(struct bw_reply *r)
{
	conn_of_reply(r)->inflight++;
}

static void reply_release(struct bw_reply *r)
{
	struct bw_tcp_conn *c = conn_of_reply(r);
	if (c->inflight)
		c->inflight--;
	if (!c->io.bev) {
		conn_free_if_done(c);
		return;
	}
	conn_flow(c);
	conn_maybe_finish(c);
}

static void reply_answer(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	conn_write(conn_of_reply(r), msg, len);
	reply_release(r);
}

static void reply_send(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	conn_write(conn_of_reply(r), msg, len);
}

static const struct sockaddr *reply_peer(const struct bw_reply *r, socklen_t *len)
{
	const struct bw_tcp_conn *c = conn_of_reply(r);
	*len = c->io.peerlen;
	return (const struct sockaddr *)&c->io.peer;
}

static int reply_listener(const struct bw_reply *r)
{
	return conn_of_reply(r)->srv->opts.stream.listener_index;
}

static const char *reply_sni(const struct bw_reply *r)
{
	const struct bw_tcp_conn *c = conn_of_reply(r);
	if (!c->srv->opts.stream.tls || !c->io.bev)
		return NULL;
	return SSL_get_servername(bufferevent_openssl_get_ssl(c->io.bev), TLSEXT_NAMETYPE_host_name);
}

static const char *reply_no_text(const struct bw_reply *r)
{
	(void)r;
	return NULL;
}

static const struct bw_reply_ops reply_ops = {
    .hold = reply_hold,
    .answer = reply_answer,
    .release = reply_release,
    .send = reply_send,
    .peer = reply_peer,
    .listener = reply_listener,
    .sni = reply_sni,
    .doh_path = reply_no_text,
    .client_id = reply_no_text,
};
