/*
 * net/stream.c - the base every stream connection stands on (TCP, DoT, DoH): admission
 * (admit.c), the socket's bufferevent (plain, or TLS from the listener's context), the
 * TLS handshake deadline, the idle timeout, the read watermarks, and closing. The framing
 * layers (tcp.c: the two-byte length; doh.c: HTTP/2 and HTTP/1.1) sit on top and keep
 * only what is theirs: how messages are cut, answered and paced.
 */
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/internal.h"

int bw_stream_open(struct bw_stream *io, const struct bw_stream_setup *su, void *arg,
		   evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	if (bw_admit_enter(su->admit, &io->link, sa, su->evict) != 0) {
		close(fd);
		return BW_EREFUSED;
	}
	if (salen > 0 && (size_t)salen <= sizeof(io->peer)) {
		memcpy(&io->peer, sa, (size_t)salen);
		io->peerlen = (socklen_t)salen;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (su->tls) {
		io->bev = bw_tls_bev_new(su->tls, su->base, fd, su->tls_filter); /* fd is its */
		io->hs_timer = io->bev ? evtimer_new(su->base, su->on_handshake_timeout, arg)
				       : NULL;
	} else {
		io->bev = bufferevent_socket_new(su->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (!io->bev)
			close(fd);
		io->handshake_done = true;
	}
	if (!io->bev || (su->tls && !io->hs_timer)) {
		if (io->bev)
			bufferevent_free(io->bev);
		io->bev = NULL;
		bw_admit_leave(su->admit, &io->link);
		return BW_ENOMEM;
	}
	if (io->hs_timer) {
		unsigned ms = su->handshake_ms ? su->handshake_ms : 5000;
		struct timeval hs = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(io->hs_timer, &hs);
	}
	bufferevent_setcb(io->bev, su->on_read, su->on_write, su->on_event, arg);
	struct timeval idle = {su->idle_ms / 1000, (su->idle_ms % 1000) * 1000};
	bufferevent_set_timeouts(io->bev, &idle, &idle);
	bufferevent_setwatermark(io->bev, EV_READ, su->read_low, su->read_high);
	bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	return 0;
}

bool bw_stream_started(struct bw_stream *io, struct bw_tls *tls)
{
	if (io->handshake_done)
		return false;
	io->handshake_done = true;
	if (io->hs_timer) {
		event_free(io->hs_timer);
		io->hs_timer = NULL;
	}
	if (tls)
		bw_tls_count(tls, bufferevent_openssl_get_ssl(io->bev));
	return true;
}

bool bw_stream_close(struct bw_stream *io, struct bw_admit *a)
{
	if (!io->bev)
		return false;
	if (io->hs_timer) {
		event_free(io->hs_timer);
		io->hs_timer = NULL;
	}
	bufferevent_free(io->bev); /* closes the socket (and frees the SSL) */
	io->bev = NULL;
	bw_admit_leave(a, &io->link);
	return true;
}

bool bw_stream_idle(const struct bw_stream *io)
{
	return io->bev && evbuffer_get_length(bufferevent_get_output(io->bev)) == 0;
}

/* ---- listeners ---- */

int bw_stream_listener_adopt(struct bw_stream_listener *l, evutil_socket_t fd,
			     const struct sockaddr *sa, int salen)
{
	void *c = l->conn_new(l->layer);
	if (!c) {
		close(fd);
		return BW_ENOMEM;
	}
	struct bw_stream *io = (struct bw_stream *)((char *)c + l->io_offset);
	int rc = bw_stream_open(io, &l->setup, c, fd, sa, salen);
	if (rc != 0)
		free(c);
	return rc;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)lev;
	(void)bw_stream_listener_adopt(arg, fd, sa, salen);
}

int bw_stream_listen(struct bw_stream_listener *l, struct event_base *base, int listen_fd,
		     const char *transport, const struct bw_stream_limits *lim)
{
	struct bw_admit_opts ao = {
	    .transport = transport,
	    .max_conns = lim->max_conns,
	    .per_client = lim->max_per_client,
	    .v4_prefix = lim->client_v4_prefix,
	    .v6_prefix = lim->client_v6_prefix,
	    .stats = lim->stats,
	};
	l->setup.base = base;
	l->setup.admit = &l->admit;
	if (bw_admit_init(&l->admit, &ao) != 0)
		return BW_ENOMEM;
	l->lev = evconnlistener_new(base, on_accept, l, 0, -1, listen_fd);
	if (!l->lev) {
		bw_admit_free(&l->admit);
		return BW_ENOMEM;
	}
	return 0;
}

void bw_stream_listener_stop(struct bw_stream_listener *l)
{
	if (l->lev)
		evconnlistener_disable(l->lev);
}

struct bw_stream *bw_stream_listener_any(struct bw_stream_listener *l)
{
	if (!l->admit.tab || l->admit.ring.next == &l->admit.ring)
		return NULL;
	return (struct bw_stream *)((char *)l->admit.ring.next - offsetof(struct bw_stream, link));
}

void bw_stream_listener_free(struct bw_stream_listener *l)
{
	if (l->lev)
		evconnlistener_free(l->lev);
	l->lev = NULL;
	bw_admit_free(&l->admit);
}
