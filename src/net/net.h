/*
 * net/net.h - transports as wrap/unwrap layers: sockets for UDP listeners, and the TCP
 * framing layer (RFC 7766) that later transports (DoT, DoH) reuse.
 *
 * Owns: listening sockets it creates (closed by the caller), TCP connections (each with a
 * libevent bufferevent) until they close.
 * Borrows: the worker's event_base.
 *
 * The TCP layer hands the core one complete DNS message at a time (without the 2-byte
 * length) and takes answers back in any order: pipelining with out-of-order answers.
 * It enforces: a cap on connections per server with a share per client prefix (when full,
 * the least recently active idle connection makes room; see admit.c), an idle timeout, a
 * cap on queries in flight per connection (reading pauses at the cap) and a cap on
 * buffered output (reading pauses until the client reads). Partial reads and writes are
 * the bufferevent's job.
 *
 * Thread safety: a TCP server and its connections belong to one worker thread.
 */
#ifndef BW_NET_H
#define BW_NET_H

#include <event2/event.h>
#include <sys/socket.h>

#include "base/base.h"
#include "conf/conf.h"

/* Creates a non-blocking UDP socket bound to l (SO_REUSEPORT when reuseport, IPV6_V6ONLY
 * for IPv6, large buffers; bound to one address). With probe, first checks that no other
 * socket holds the address (the first worker's socket probes, the others join it).
 * Returns fd or -errno (-EADDRINUSE when another process listens there). */
int bw_net_udp_socket(const struct bw_listen *l, bool reuseport, bool probe);
/* Creates a non-blocking listening TCP socket bound to l; probe as above. */
int bw_net_tcp_socket(const struct bw_listen *l, bool reuseport, bool probe, int backlog);

struct bw_tcp_server;
struct bw_tls;

/* ---- TLS contexts (tls.c) ----
 * One per encrypted listener, shared by every worker: a certificate chain and key read
 * from files, TLS 1.2 and 1.3, session tickets, and ALPN ("dot" for DoT; "h2" then
 * "http/1.1" for DoH; "http/1.1" alone for the admin API). bw_tls_reload() re-reads the files and swaps the context: new
 * connections get the new certificate, open ones keep theirs. All functions are
 * thread-safe. */
enum bw_tls_kind {
	BW_TLS_DOT = 0,
	BW_TLS_DOH = 1,
	BW_TLS_HTTP1 = 2, /* ALPN "http/1.1" alone: the admin API (admin/http.c) */
};
int bw_tls_create(const char *cert, const char *key, enum bw_tls_kind kind,
		  struct bw_tls **out, char *err, size_t errlen);
/* Keeps the running context when the new files do not load (and says why in err). */
int bw_tls_reload(struct bw_tls *t, char *err, size_t errlen);
void bw_tls_free(struct bw_tls *t);
/* A TLS server bufferevent without its socket yet, which the caller sets (evhttp's
 * bevcb: admin/http.c). NULL when out of memory. */
struct bufferevent;
struct event_base;
struct bufferevent *bw_tls_bev_unbound(struct bw_tls *t, struct event_base *base);
/* Handshakes completed since start: full ones and resumed ones (tickets or cache). */
void bw_tls_stats(const struct bw_tls *t, uint64_t *full, uint64_t *resumed);

/* What the connection caps did, per stream listener kind; a worker's counters, kept by
 * its servers (the worker thread only). docs/internals/connections.md. */
struct bw_conn_stats {
	uint64_t refused_client; /* the client already held its share */
	uint64_t refused_full;   /* the listener was full and no connection was idle */
	uint64_t evicted;        /* idle connections closed to make room for a new one */
};

/* ---- the reply handle ----
 * What the core answers a query from a stream transport through, and asks about its
 * origin, without knowing the transport: a TCP or DoT connection (tcp.c) or one DoH
 * request (doh.c) puts a struct bw_reply first and fills ops. A query answered later
 * takes a hold: the handle then stays valid (even when the client goes away) until
 * bw_reply_answer() or bw_reply_release(). Worker thread only. */
struct bw_reply;
struct bw_reply_ops {
	void (*hold)(struct bw_reply *r);
	void (*answer)(struct bw_reply *r, const uint8_t *msg, size_t len); /* drops the hold */
	void (*release)(struct bw_reply *r);
	void (*send)(struct bw_reply *r, const uint8_t *msg, size_t len); /* no hold taken */
	const struct sockaddr *(*peer)(const struct bw_reply *r, socklen_t *len);
	int (*listener)(const struct bw_reply *r);
	const char *(*sni)(const struct bw_reply *r);
	const char *(*doh_path)(const struct bw_reply *r);
	const char *(*client_id)(const struct bw_reply *r); /* DoH: the path's ClientID */
};
struct bw_reply {
	const struct bw_reply_ops *ops;
};
/* A query from r will be answered later (asynchronously). */
static inline void bw_reply_hold(struct bw_reply *r)
{
	r->ops->hold(r);
}
/* Sends the answer (unless the client has gone) and drops the hold. */
static inline void bw_reply_answer(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	r->ops->answer(r, msg, len);
}
/* Drops a hold without answering. */
static inline void bw_reply_release(struct bw_reply *r)
{
	r->ops->release(r);
}
/* Sends the answer to a query answered at once (inside on_msg; no hold taken). */
static inline void bw_reply_send(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	r->ops->send(r, msg, len);
}
static inline const struct sockaddr *bw_reply_peer(const struct bw_reply *r, socklen_t *len)
{
	return r->ops->peer(r, len);
}
/* The listener (index in server.listen) the query came in on. */
static inline int bw_reply_listener(const struct bw_reply *r)
{
	return r->ops->listener(r);
}
/* The TLS server name the client asked for (DoT, DoH), or NULL. */
static inline const char *bw_reply_sni(const struct bw_reply *r)
{
	return r->ops->sni(r);
}
/* DoH: the request's path without the query string; NULL for other transports. */
static inline const char *bw_reply_doh_path(const struct bw_reply *r)
{
	return r->ops->doh_path(r);
}
/* DoH: the ClientID written after the path ("/dns-query/ID"), lower-cased; else NULL. */
static inline const char *bw_reply_client_id(const struct bw_reply *r)
{
	return r->ops->client_id(r);
}

/* Called for each complete message; the message is valid during the call only. */
typedef void (*bw_stream_msg_fn)(struct bw_reply *r, const uint8_t *msg, size_t len, void *ctx);

/* What every stream listener (TCP, DoT, DoH) bounds and passes through alike. */
struct bw_stream_limits {
	unsigned max_conns;    /* connections at once; when full, a new one takes the place
				  of the least recently active idle one, or is closed */
	unsigned max_per_client; /* connections one client prefix may hold; 0: max_conns/16 */
	uint8_t client_v4_prefix, client_v6_prefix; /* what one client is; 0: 32 and 64 */
	struct bw_conn_stats *stats; /* counters (borrowed; required) */
	unsigned idle_ms;      /* close after this long without a complete query */
	size_t max_output;     /* bytes of unsent answers before reading pauses */
	int listener_index;    /* passed through for profile selection */
	struct bw_tls *tls;    /* TLS on every connection (borrowed); NULL: plain TCP */
	unsigned handshake_ms; /* TLS: close connections that have not finished the
				  handshake in this time */
};

struct bw_tcp_opts {
	struct bw_stream_limits stream;
	unsigned max_inflight; /* queries accepted but not yet answered, per connection */
};

struct bw_tcp_server *bw_tcp_server_create(struct event_base *base, int listen_fd,
					   const struct bw_tcp_opts *opts, bw_stream_msg_fn on_msg,
					   void *ctx);
/* Stops accepting (used on shutdown); open connections stay until answered. */
void bw_tcp_server_stop_accepting(struct bw_tcp_server *s);
/* Closes every connection and frees the server (after the loop stops). */
void bw_tcp_server_destroy(struct bw_tcp_server *s);
unsigned bw_tcp_server_conns(const struct bw_tcp_server *s);


/* ---- DNS over HTTPS (doh.c) ----
 * A DoH listener: TLS, then HTTP/2 (nghttp2) or HTTP/1.1 by ALPN. Each request becomes
 * one call of on_msg with its own reply handle (held, answered and released exactly as
 * a TCP connection's); the answer goes back on the request's stream.
 * Bounded: connections (max_conns), the handshake time, idle time, concurrent streams
 * per connection, header bytes per request, request body size, the rate of new streams
 * (rapid reset) and unsent output per connection. */
struct bw_doh_server;
struct bw_doh_opts {
	struct bw_stream_limits stream; /* .tls is required */
	unsigned max_streams;  /* HTTP/2 concurrent streams per connection */
	const char *const *paths; /* the paths served (the array is copied; the strings are
				     borrowed for the server's life) */
	size_t n_paths;
};
struct bw_doh_server *bw_doh_server_create(struct event_base *base, int listen_fd,
					   const struct bw_doh_opts *opts, bw_stream_msg_fn on_msg,
					   void *ctx);
void bw_doh_server_stop_accepting(struct bw_doh_server *s);
void bw_doh_server_destroy(struct bw_doh_server *s);
unsigned bw_doh_server_conns(const struct bw_doh_server *s);

/* ---- DoH request decoding (doh_req.c), pure functions for the fuzz target ---- */
#define BW_HTTP_MAX_HEAD 8192 /* request line + headers, HTTP/1.1 and HTTP/2 alike */

/* An HTTP request as the decoder sees it (strings not NUL-terminated). */
struct bw_doh_request {
	const char *method;
	size_t method_len;
	const char *target; /* path and query string ("/dns-query?dns=...") */
	size_t target_len;
	const char *ctype;  /* content-type, or NULL */
	size_t ctype_len;
	const uint8_t *body;
	size_t body_len;
	bool body_too_large; /* more than 65535 bytes were sent (and not kept) */
};
/*
 * Decodes a DoH request (RFC 8484) into a DNS message: GET with ?dns= (base64url, no
 * padding) or POST with content-type application/dns-message. The path (without the
 * query string) must be one of `paths`, or one of them followed by "/CLIENTID" (1 to 63
 * letters, digits and '-'); *path_idx says which, and client_id holds the ID lower-cased
 * ("" when none). Returns the HTTP status:
 * 200 (msg[0..*msg_len) filled), 400 malformed, 404 unknown path, 405 method, 413 too
 * large, 415 media type.
 */
#define BW_DOH_ID_MAX 63
int bw_doh_decode(const struct bw_doh_request *r, const char *const *paths, size_t n_paths,
		  size_t *path_idx, char client_id[BW_DOH_ID_MAX + 1], uint8_t *msg, size_t cap,
		  size_t *msg_len);

/* A parsed HTTP/1.1 request head. */
struct bw_http1_head {
	const char *method, *target, *ctype;
	size_t method_len, target_len, ctype_len;
	size_t content_length;
	bool has_length;
	bool close; /* "Connection: close" */
};
/* Parses the request head at buf[0..len): returns its length (through the blank line)
 * when complete, 0 when more bytes are needed, or a negative HTTP status to answer
 * before closing (-400 malformed, -431 head too large, -501 transfer codings,
 * -505 not HTTP/1.1, -413 content-length over 65535). Strict: CRLF line ends, no
 * obsolete line folding, one content-length. */
int bw_http1_parse(const char *buf, size_t len, struct bw_http1_head *h);

/* The smallest TTL of the answer and authority records of a response (what the
 * cache-control max-age of its DoH answer says), 0 when it has none or is malformed. */
uint32_t bw_dns_min_ttl(const uint8_t *msg, size_t len);
/* Pads a response in place to a multiple of `block` bytes with an EDNS padding option
 * (RFC 7830) in its OPT record; nothing when it has no OPT. Returns the new length. */
size_t bw_dns_pad(uint8_t *msg, size_t len, size_t cap, size_t block);
/* Does the query carry an EDNS padding option? */
bool bw_dns_query_padded(const uint8_t *msg, size_t len);

#endif
