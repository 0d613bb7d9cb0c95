/*
 * net/internal.h - what the transport files share: connection admission (admit.c) and
 * the TLS contexts' internals (tls.c). Not for other modules.
 */
#ifndef BW_NET_INTERNAL_H
#define BW_NET_INTERNAL_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "net/net.h"

#define BW_PAD_BLOCK 468 /* RFC 8467 recommended response block size */

/* ---- admission (admit.c): connection caps, per-client shares, idle eviction ---- */
struct bw_admit_client {
	uint8_t prefix[16]; /* the address masked to the client prefix */
	uint8_t family;     /* 0: a free slot; 4 or 6 */
	uint32_t conns;
};
/* In every stream connection: its place in the activity ring and its client. */
struct bw_admit_link {
	struct bw_admit_link *prev, *next;
	struct bw_admit_client client;
};
struct bw_admit_opts {
	const char *transport;  /* "tcp", "dot", "doh": for the log */
	unsigned max_conns;     /* 0: 1024 */
	unsigned per_client;    /* 0: max_conns / 16, at least 1 */
	uint8_t v4_prefix;      /* the client prefix; 0: 32 */
	uint8_t v6_prefix;      /* 0: 64 */
	struct bw_conn_stats *stats; /* counters, the worker's (never NULL) */
};
struct bw_admit {
	const char *transport;
	unsigned max_conns, per_client;
	uint8_t v4_prefix, v6_prefix;
	unsigned n;                  /* connections entered */
	struct bw_admit_link ring;   /* next: the most recently active; prev: the least */
	struct bw_admit_client *tab; /* connections per client: open addressing */
	size_t cap, clients;
	struct bw_hash_key key;
	struct bw_conn_stats *stats;
	uint64_t logged_ms, unlogged;
};
int bw_admit_init(struct bw_admit *a, const struct bw_admit_opts *o);
void bw_admit_free(struct bw_admit *a);
/*
 * A new connection from peer, whose link is l: 0 when it may stay (l is then in the ring
 * and counted), BW_EREFUSED when its client already holds per_client connections, BW_ESPACE
 * when the listener is full and none of the EVICT_SCAN least recently active connections
 * could be closed, BW_ENOMEM. When full, evict() is offered those connections, least
 * recently active first: it closes one that is idle (calling bw_admit_leave() for it)
 * and returns true, or returns false to leave it. Refusals and evictions are counted in
 * stats and logged (at most one line per 10 s).
 */
int bw_admit_enter(struct bw_admit *a, struct bw_admit_link *l, const struct sockaddr *peer,
		   bool (*evict)(struct bw_admit_link *victim));
/* The connection closed (once; a link that never entered is ignored). */
void bw_admit_leave(struct bw_admit *a, struct bw_admit_link *l);
/* A query completed on the connection: it becomes the most recently active. */
void bw_admit_touch(struct bw_admit *a, struct bw_admit_link *l);

/* ---- the stream base (stream.c): what every stream connection shares ---- */
struct bw_stream {
	struct bufferevent *bev;   /* NULL once closed */
	struct event *hs_timer;    /* TLS: the handshake deadline, while it runs */
	bool handshake_done;       /* always true without TLS */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct bw_admit_link link; /* in the listener's admission ring */
};
/* How a listener sets up its connections (fixed per listener). */
struct bw_stream_setup {
	struct event_base *base;
	struct bw_admit *admit;
	struct bw_tls *tls;     /* NULL: plain TCP */
	bool tls_filter;        /* bw_tls_bev_new()'s filter */
	unsigned handshake_ms;  /* TLS: 0 = 5 s */
	unsigned idle_ms;
	size_t read_low, read_high; /* the read watermarks */
	bool (*evict)(struct bw_admit_link *victim); /* see bw_admit_enter() */
	event_callback_fn on_handshake_timeout;
	bufferevent_data_cb on_read, on_write;
	bufferevent_event_cb on_event;
};
/* A new connection on fd from sa (fd is taken over: closed on failure), its callbacks'
 * argument arg (the framing layer's connection, which holds io): admitted, with a
 * bufferevent (TLS when su->tls), the handshake deadline, the idle timeout and the
 * watermarks set, reading. 0, BW_EREFUSED (not admitted: counted and logged by admit.c)
 * or BW_ENOMEM. */
int bw_stream_open(struct bw_stream *io, const struct bw_stream_setup *su, void *arg,
		   evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* The TLS handshake finished (the CONNECTED event or the first read, whichever libevent
 * delivers first): the deadline goes, the idle timeout alone applies, the handshake is
 * counted in tls's statistics. True the first time only. */
bool bw_stream_started(struct bw_stream *io, struct bw_tls *tls);
/* Closes the socket and leaves the admission ring a. False when closed already. */
bool bw_stream_close(struct bw_stream *io, struct bw_admit *a);
/* Open, with nothing waiting to be sent. */
bool bw_stream_idle(const struct bw_stream *io);

/* A stream listener: the listening socket, its admission and the setup of its connections.
 * The framing layer fills setup's callbacks and gives conn_new, which allocates one of its
 * connections (with a struct bw_stream at io_offset) for a new socket, or NULL. */
struct bw_stream_listener {
	struct evconnlistener *lev;
	struct bw_admit admit;
	struct bw_stream_setup setup; /* .base and .admit are set by bw_stream_listen() */
	void *(*conn_new)(void *layer);
	size_t io_offset;
	void *layer;
};
/* Starts accepting on listen_fd (taken over only on success), admitting connections
 * within lim's connection limits (transport names them in the log). 0 or BW_ENOMEM. */
int bw_stream_listen(struct bw_stream_listener *l, struct event_base *base, int listen_fd,
		     const char *transport, const struct bw_stream_limits *lim);
void bw_stream_listener_stop(struct bw_stream_listener *l);
/* A connected socket fd from sa, opened as if the listener had accepted it (on_accept does
 * exactly this; tests and fuzz targets give a socketpair's end): fd is taken over in every
 * case. 0, BW_EREFUSED or BW_ENOMEM. */
int bw_stream_listener_adopt(struct bw_stream_listener *l, evutil_socket_t fd,
			     const struct sockaddr *sa, int salen);
/* The next open connection (its struct bw_stream), to close them all; NULL: none left. */
struct bw_stream *bw_stream_listener_any(struct bw_stream_listener *l);
/* After every connection is closed. */
void bw_stream_listener_free(struct bw_stream_listener *l);

/* ---- tests and fuzzing (doh.c) ---- */
/* A connection of s from peer that needs no socket and no TLS (tests/fuzz/fuzz_doh_conn.c
 * gives one end of a bufferevent pair): bev is taken over in every case (freed when the
 * connection closes, or at once on failure); the handshake counts as done, ALPN as having
 * chosen HTTP/2 when h2 (the server's SETTINGS are queued), HTTP/1.1 otherwise. From then
 * on bev's callbacks drive it exactly as a socket's would. 0, BW_EREFUSED, BW_ESPACE or
 * BW_ENOMEM. */
int bw_doh_conn_adopt(struct bw_doh_server *s, struct bufferevent *bev,
		      const struct sockaddr *peer, socklen_t peerlen, bool h2);

/* A connected socket fd (tests/fuzz/fuzz_tcp_conn.c: a socketpair's end) from sa as a new
 * connection of s, exactly as if s had accepted it: fd is taken over in every case. 0,
 * BW_EREFUSED or BW_ENOMEM. (tcp.c) */
int bw_tcp_conn_adopt(struct bw_tcp_server *s, evutil_socket_t fd, const struct sockaddr *sa,
		      socklen_t salen);

/* tls.c */
/* A new server-side SSL from the current context (thread-safe), or NULL. */
SSL *bw_tls_new_ssl(struct bw_tls *t);
/* A TLS server bufferevent on socket fd (taken over: closed on failure and on free), or
 * NULL. With filter, TLS runs as a filter over a socket bufferevent (large socket reads
 * and writes: DoT, whose clients send a TLS record per query, gains twice the throughput);
 * without, OpenSSL works on the socket directly (DoH over HTTP/2 measured faster so; see
 * docs/internals/encrypted.md). */
struct bufferevent *bw_tls_bev_new(struct bw_tls *t, struct event_base *base, int fd,
				   bool filter);
/* Counts a finished handshake (full or resumed) for the statistics. */
void bw_tls_count(struct bw_tls *t, SSL *ssl);

#endif
