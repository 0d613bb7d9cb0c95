/*
 * net/internal.h - what the transport files share: the answer handle the core holds
 * (struct bw_tcp_conn) and the hooks between the TCP/DoT layer and the DoH layer.
 * Not for other modules.
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

enum conn_kind {
	CONN_STREAM = 0, /* a TCP or DoT connection: answers are length-prefixed */
	CONN_DOH = 1,    /* one DoH request (an HTTP/2 stream or an HTTP/1.1 request) */
};

/* Where an answer goes: the handle the core holds while it answers a query. */
struct bw_tcp_conn {
	enum conn_kind kind;
	struct bw_tcp_server *srv; /* CONN_STREAM */
	struct bufferevent *bev;   /* NULL once the connection is closed */
	unsigned inflight;         /* holds: queries being answered asynchronously */
	bool read_paused;
	bool eof;                  /* client finished sending; close once answered */
	bool pad;                  /* DoT: the client pads its queries, so we pad answers */
	bool handshake_done;
	struct event *hs_timer;    /* DoT: the TLS handshake deadline */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct bw_admit_link link; /* CONN_STREAM */
};

/* doh.c: the handle of a DoH request (kind CONN_DOH) */
void bw_doh_req_hold(struct bw_tcp_conn *h);
void bw_doh_req_answer(struct bw_tcp_conn *h, const uint8_t *msg, size_t len);
void bw_doh_req_release(struct bw_tcp_conn *h);
const struct sockaddr *bw_doh_req_peer(const struct bw_tcp_conn *h, socklen_t *len);
int bw_doh_req_listener(const struct bw_tcp_conn *h);
const char *bw_doh_req_sni(const struct bw_tcp_conn *h);
const char *bw_doh_req_path(const struct bw_tcp_conn *h);

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
