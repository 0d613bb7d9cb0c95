/*
 * core/worker.c - one worker: an event loop with its own SO_REUSEPORT UDP and TCP
 * sockets, a libunbound context, a pool of in-flight query contexts and preallocated
 * batch buffers. UDP is read and answered in batches (recvmmsg/sendmmsg); nothing is
 * allocated per packet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/internal.h"

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct bw_udp_sock *u = arg;
	struct bw_worker *w = u->w;
	bw_worker_hold_state(w);
	/* a few batches per wake-up, then let the loop serve TCP and the resolver */
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < BW_UDP_BATCH; i++)
			w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->raddr[i]);
		int n = recvmmsg(fd, w->rmsg, BW_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		int ns = 0;
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &w->rmsg[i].msg_hdr;
			if (h->msg_flags & MSG_TRUNC) {
				w->stats.dropped++;
				continue;
			}
			struct bw_origin o = {
				.via = BW_VIA_UDP,
				.fd = fd,
				.peer = (const struct sockaddr *)&w->raddr[i],
				.peerlen = h->msg_namelen,
				.listener = u->listener,
			};
			w->stats.udp++;
			size_t len = bw_pipeline_query(w, &o, w->rbuf[i], w->rmsg[i].msg_len,
						       w->sbuf[ns], BW_UDP_SBUF);
			if (!len)
				continue;
			w->siov[ns].iov_len = len;
			w->smsg[ns].msg_hdr.msg_name = &w->raddr[i];
			w->smsg[ns].msg_hdr.msg_namelen = h->msg_namelen;
			ns++;
		}
		int sent = 0;
		while (sent < ns) {
			int r = sendmmsg(fd, w->smsg + sent, (unsigned)(ns - sent), MSG_DONTWAIT);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				w->stats.dropped += (uint64_t)(ns - sent);
				break;
			}
			sent += r;
		}
		if (n < BW_UDP_BATCH)
			break;
	}
	bw_worker_drop_state(w);
}

static void on_stream_msg(struct bw_reply *r, const uint8_t *msg, size_t len, void *ctx)
{
	struct bw_worker *w = ctx;
	socklen_t plen;
	const struct sockaddr *peer = bw_reply_peer(r, &plen);
	struct bw_origin o = {
		.via = BW_VIA_TCP,
		.fd = -1,
		.reply = r,
		.peer = peer,
		.peerlen = plen,
		.listener = bw_reply_listener(r),
		.sni = bw_reply_sni(r),
		.doh_path = bw_reply_doh_path(r),
		.client_id = bw_reply_client_id(r),
	};
	w->stats.tcp++;
	if (o.listener >= 0 && (size_t)o.listener < w->srv->conf->server.n_listen) {
		enum bw_transport t = w->srv->conf->server.listen[o.listener].transport;
		w->stats.dot += t == BW_TRANSPORT_DOT;
		w->stats.doh += t == BW_TRANSPORT_DOH;
	}
	bw_worker_hold_state(w);
	size_t n = bw_pipeline_query(w, &o, msg, len, w->out, sizeof(w->out));
	bw_worker_drop_state(w);
	if (n)
		bw_reply_send(r, w->out, n);
}

/* Draining: stop reading new queries; leave when nothing is in flight. */
static void drain_check(struct bw_worker *w)
{
	/* idle TCP clients do not hold up the exit; queries in flight do */
	if (w->inflight == 0)
		event_base_loopbreak(w->base);
}

/* Frees the replaced resolver once its queries are answered, and renews again if the
 * clock stepped meanwhile. Worker thread. */
static void renew_resolver(struct bw_worker *w);
static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	renew_resolver(arg);
}

static void renew_resolver(struct bw_worker *w)
{
	struct timeval second = {1, 0};
	if (w->old_resolver) {
		if (!bw_resolver_idle(w->old_resolver)) {
			evtimer_add(w->renew_timer, &second);
			return;
		}
		bw_resolver_destroy(w->old_resolver);
		w->old_resolver = NULL;
	}
	unsigned epoch = atomic_load(&w->srv->clock_epoch);
	if (epoch == w->clock_epoch)
		return;
	char err[512];
	struct bw_resolver *r = bw_resolver_create(w->srv->conf, w->srv->nworkers, w->base,
						   bw_pipeline_resolved,
						   err, sizeof(err));
	if (!r) {
		bw_warn("worker %u: cannot renew the resolver after the clock step: %s "
			"(its cache is kept; trying again in a second)", w->index, err);
		evtimer_add(w->renew_timer, &second);
		return;
	}
	w->clock_epoch = epoch;
	w->old_resolver = w->resolver; /* its queries still come back to it */
	w->resolver = r;
	evtimer_add(w->renew_timer, &second);
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct bw_worker *w = arg;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		bw_warn("worker %u: control read: %s", w->index, strerror(errno));
	bw_coalesce_deliver(w); /* other workers' resolutions our parked queries wait for */
	bw_obs_publish(w); /* a metrics scrape may be waiting for our counters */
	if (atomic_load(&w->srv->clock_epoch) != w->clock_epoch)
		renew_resolver(w);
	if (!atomic_load(&w->draining))
		return;
	if (!w->drain_started) {
		w->drain_started = true;
		struct timeval tv = {w->drain_ms / 1000, (w->drain_ms % 1000) * 1000};
		evtimer_add(w->drain_timer, &tv);
	}
	for (size_t i = 0; i < w->n_udp; i++)
		event_del(w->udp[i].ev);
	for (size_t i = 0; i < w->n_tcp; i++)
		bw_tcp_server_stop_accepting(w->tcp[i]);
	for (size_t i = 0; i < w->n_doh; i++)
		bw_doh_server_stop_accepting(w->doh[i]);
	drain_check(w);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_worker *w = arg;
	if (w->inflight)
		bw_warn("worker %u: %u queries still in flight at shutdown", w->index, w->inflight);
	event_base_loopbreak(w->base);
}

struct bw_qctx *bw_worker_qctx_new(struct bw_worker *w)
{
	if (w->pool_used == w->max_inflight)
		return NULL;
	struct bw_qctx *x = &w->pool[w->pool_used];
	x->w = w;
	x->timer = evtimer_new(w->base, bw_pipeline_timeout, x);
	if (!x->timer)
		return NULL;
	w->pool_used++;
	return x;
}

void bw_worker_wake(struct bw_worker *w)
{
	uint64_t one = 1;
	if (write(w->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		bw_warn("worker %u: wake: %s", w->index, strerror(errno));
}

void *bw_worker_main(void *arg)
{
	struct bw_worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

/* The limits every stream listener of this worker shares (TCP, DoT, DoH), with the
 * counters of its kind (BW_METRICS_STREAM_*). */
static struct bw_stream_limits stream_limits(struct bw_worker *w, size_t listener, int kind)
{
	const struct bw_conf *conf = w->srv->conf;
	return (struct bw_stream_limits){
	    .max_conns = bw_tcp_max_conns(conf),
	    .max_per_client = conf->server.tcp_max_conns_per_client,
	    .client_v4_prefix = (uint8_t)conf->server.tcp_client_v4_prefix,
	    .client_v6_prefix = (uint8_t)conf->server.tcp_client_v6_prefix,
	    .stats = &w->stats.conn[kind],
	    .idle_ms = conf->server.tcp_idle_ms ? conf->server.tcp_idle_ms : 10000,
	    .listener_index = (int)listener,
	    .handshake_ms = conf->server.tls_handshake_ms ? conf->server.tls_handshake_ms : 5000,
	};
}

/* A TCP or DoT listener's options (kind: BW_METRICS_STREAM_TCP or _DOT). */
static struct bw_tcp_opts tcp_opts(struct bw_worker *w, size_t listener, int kind)
{
	return (struct bw_tcp_opts){
	    .stream = stream_limits(w, listener, kind),
	    .max_inflight = w->srv->conf->server.tcp_max_inflight,
	};
}

/* A DoT or DoH listener of this worker (TCP only, TLS from the server's context). */
static int start_encrypted(struct bw_worker *w, const struct bw_listen *l, size_t i, char *err,
			   size_t errlen)
{
	const struct bw_conf *conf = w->srv->conf;
	int fd = bw_net_tcp_socket(l, true, w->index == 0, 256);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s %s port %u: %s",
			 l->transport == BW_TRANSPORT_DOT ? "dot" : "doh", l->address, l->port,
			 strerror(-fd));
		return BW_EIO;
	}
	if (l->transport == BW_TRANSPORT_DOT) {
		struct bw_tcp_opts o = tcp_opts(w, i, BW_METRICS_STREAM_DOT);
		o.stream.tls = w->srv->tls[i];
		w->tcp[w->n_tcp] = bw_tcp_server_create(w->base, fd, &o, on_stream_msg, w);
		if (!w->tcp[w->n_tcp]) {
			close(fd);
			snprintf(err, errlen, "out of memory");
			return BW_ENOMEM;
		}
		w->n_tcp++;
		return 0;
	}
	const char *paths[64];
	size_t n = BW_MIN(l->n_doh_paths, sizeof(paths) / sizeof(paths[0]));
	for (size_t k = 0; k < n; k++)
		paths[k] = l->doh_paths[k].name;
	struct bw_doh_opts o = {
		.stream = stream_limits(w, i, BW_METRICS_STREAM_DOH),
		.max_streams = conf->server.doh_max_streams ? conf->server.doh_max_streams : 100,
		.paths = paths,
		.n_paths = n,
	};
	o.stream.tls = w->srv->tls[i];
	w->doh[w->n_doh] = bw_doh_server_create(w->base, fd, &o, on_stream_msg, w);
	if (!w->doh[w->n_doh]) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	w->n_doh++;
	return 0;
}

int bw_worker_init(struct bw_server *s, unsigned index, char *err, size_t errlen)
{
	const struct bw_conf *conf = s->conf;
	struct bw_worker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	s->workers[index] = w; /* owned by the server from here on */
	w->index = index;
	w->srv = s;
	w->ctl_fd = -1;
	w->tlm = bw_telemetry_ring(s->tlm, index);
	pthread_mutex_init(&w->mailbox.lock, NULL);

	struct event_config *ec = event_config_new();
	if (ec) {
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
		w->base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (!w->base) {
		snprintf(err, errlen, "cannot create an event loop");
		return BW_ENOMEM;
	}

	/* batch buffers: point every message header at its own buffers once */
	for (int i = 0; i < BW_UDP_BATCH; i++) {
		w->riov[i].iov_base = w->rbuf[i];
		w->riov[i].iov_len = BW_UDP_RBUF;
		w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmsg[i].msg_hdr.msg_iovlen = 1;
		w->rmsg[i].msg_hdr.msg_name = &w->raddr[i];
		w->siov[i].iov_base = w->sbuf[i];
		w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
		w->smsg[i].msg_hdr.msg_iovlen = 1;
	}

	w->resolver = bw_resolver_create(conf, s->nworkers, w->base, bw_pipeline_resolved, err,
					 errlen);
	if (!w->resolver)
		return BW_EINVAL;

	w->max_inflight = bw_max_inflight(conf);
	w->pool = calloc(w->max_inflight, sizeof(*w->pool));
	if (!w->pool || bw_share_init(&w->share, w->max_inflight)) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	/* the pool's contexts are set up as the load first needs them (bw_worker_qctx_new):
	 * calloc's untouched pages cost no memory, 4096 set-up ones 8 MB */

	w->udp = calloc(conf->server.n_listen, sizeof(*w->udp));
	w->tcp = calloc(conf->server.n_listen, sizeof(*w->tcp));
	w->doh = calloc(conf->server.n_listen, sizeof(*w->doh));
	if (!w->udp || !w->tcp || !w->doh) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		const struct bw_listen *l = &conf->server.listen[i];
		if (l->transport != BW_TRANSPORT_DNS) {
			int rc = start_encrypted(w, l, i, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		int fd = bw_net_udp_socket(l, true, index == 0);
		if (fd < 0) {
			snprintf(err, errlen, "listen udp %s port %u: %s", l->address, l->port,
				 strerror(-fd));
			return BW_EIO;
		}
		struct bw_udp_sock *u = &w->udp[w->n_udp++];
		u->w = w;
		u->fd = fd;
		u->listener = (int)i;
		u->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_udp, u);
		if (!u->ev || event_add(u->ev, NULL) != 0) {
			snprintf(err, errlen, "out of memory");
			return BW_ENOMEM;
		}
		fd = bw_net_tcp_socket(l, true, index == 0, 256);
		if (fd < 0) {
			snprintf(err, errlen, "listen tcp %s port %u: %s", l->address, l->port,
				 strerror(-fd));
			return BW_EIO;
		}
		struct bw_tcp_opts o = tcp_opts(w, i, BW_METRICS_STREAM_TCP);
		o.stream.handshake_ms = 0;
		w->tcp[w->n_tcp] = bw_tcp_server_create(w->base, fd, &o, on_stream_msg, w);
		if (!w->tcp[w->n_tcp]) {
			close(fd);
			snprintf(err, errlen, "out of memory");
			return BW_ENOMEM;
		}
		w->n_tcp++;
	}

	w->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->ctl_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return BW_EIO;
	}
	w->ctl_ev = event_new(w->base, w->ctl_fd, EV_READ | EV_PERSIST, on_ctl, w);
	w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
	w->renew_timer = evtimer_new(w->base, on_renew_timer, w);
	if (!w->ctl_ev || !w->drain_timer || !w->renew_timer ||
	    event_add(w->ctl_ev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	return 0;
}

void bw_worker_free(struct bw_worker *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_tcp; i++)
		bw_tcp_server_destroy(w->tcp[i]);
	for (size_t i = 0; i < w->n_doh; i++)
		bw_doh_server_destroy(w->doh[i]);
	free(w->doh);
	for (size_t i = 0; i < w->n_udp; i++) {
		if (w->udp[i].ev)
			event_free(w->udp[i].ev);
		close(w->udp[i].fd);
	}
	free(w->udp);
	free(w->tcp);
	/* the resolver first: it owns events on the base and may hold query contexts */
	bw_resolver_destroy(w->resolver);
	bw_resolver_destroy(w->old_resolver);
	if (w->renew_timer)
		event_free(w->renew_timer);
	if (w->pool) {
		for (unsigned i = 0; i < w->pool_used; i++) {
			if (w->pool[i].timer)
				event_free(w->pool[i].timer);
		}
		free(w->pool);
	}
	bw_share_free(&w->share);
	if (w->ctl_ev)
		event_free(w->ctl_ev);
	if (w->drain_timer)
		event_free(w->drain_timer);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	if (w->base)
		event_base_free(w->base);
	pthread_mutex_destroy(&w->mailbox.lock);
	free(w);
}

void bw_worker_begin_drain(struct bw_worker *w, unsigned drain_ms)
{
	/* the base has no locks: the worker arms its drain timer itself, in on_ctl() */
	w->drain_ms = drain_ms;
	atomic_store(&w->draining, true);
	bw_worker_wake(w);
}
