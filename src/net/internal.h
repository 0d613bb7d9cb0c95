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

enum conn_kind {
	CONN_STREAM = 0, /* a TCP or DoT connection: answers are length-prefixed */
	CONN_DOH = 1,    /* one DoH request (an HTTP/2 stream or an HTTP/1.1 request) */
};

/* Where an answer goes: the handle the core holds while it answers a query. */
struct bw_tcp_conn {
	enum conn_kind kind;
	struct bw_tcp_server *srv; /* CONN_STREAM */
	struct bufferevent *bev;   /* NULL once the connection is closed */
	struct bw_tcp_conn *prev, *next;
	unsigned inflight;         /* holds: queries being answered asynchronously */
	bool read_paused;
	bool eof;                  /* client finished sending; close once answered */
	bool pad;                  /* DoT: the client pads its queries, so we pad answers */
	bool handshake_done;
	struct event *hs_timer;    /* DoT: the TLS handshake deadline */
	struct sockaddr_storage peer;
	socklen_t peerlen;
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
