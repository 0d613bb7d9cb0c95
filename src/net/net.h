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
 * It enforces: a cap on connections per server, an idle timeout, a cap on queries in
 * flight per connection (reading pauses at the cap) and a cap on buffered output (reading
 * pauses until the client reads). Partial reads and writes are the bufferevent's job.
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
struct bw_tcp_conn;

/* Called for each complete message; the message is valid during the call only. */
typedef void (*bw_tcp_msg_fn)(struct bw_tcp_conn *c, const uint8_t *msg, size_t len, void *ctx);

struct bw_tcp_opts {
	unsigned max_conns;    /* connections at once; further ones are closed at accept */
	unsigned idle_ms;      /* close after this long without a complete query */
	unsigned max_inflight; /* queries accepted but not yet answered, per connection */
	size_t max_output;     /* bytes of unsent answers before reading pauses */
	int listener_index;    /* passed through for profile selection */
};

struct bw_tcp_server *bw_tcp_server_create(struct event_base *base, int listen_fd,
					   const struct bw_tcp_opts *opts, bw_tcp_msg_fn on_msg,
					   void *ctx);
/* Stops accepting (used on shutdown); open connections stay until answered. */
void bw_tcp_server_stop_accepting(struct bw_tcp_server *s);
/* Closes every connection and frees the server (after the loop stops). */
void bw_tcp_server_destroy(struct bw_tcp_server *s);
unsigned bw_tcp_server_conns(const struct bw_tcp_server *s);

/* A query from c was taken for asynchronous answering: c stays allocated (even if the
 * client goes away) until bw_tcp_conn_release(). */
void bw_tcp_conn_hold(struct bw_tcp_conn *c);
/* Sends an answer on c (unless the client has gone) and drops the hold. */
void bw_tcp_conn_answer(struct bw_tcp_conn *c, const uint8_t *msg, size_t len);
/* Drops a hold without answering. */
void bw_tcp_conn_release(struct bw_tcp_conn *c);
/* Sends an answer for a query answered synchronously (inside on_msg, no hold taken). */
void bw_tcp_conn_send(struct bw_tcp_conn *c, const uint8_t *msg, size_t len);
const struct sockaddr *bw_tcp_conn_peer(const struct bw_tcp_conn *c, socklen_t *len);
/* The listener (index in server.listen) the connection came in on. */
int bw_tcp_conn_listener(const struct bw_tcp_conn *c);

#endif
