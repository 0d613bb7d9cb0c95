/*
 * telemetry/dnstap.h - dnstap output: CLIENT_QUERY and CLIENT_RESPONSE messages (with the
 * Policy of blocked answers) as protobuf (src/telemetry/dnstap.proto) over Frame Streams
 * (libfstrm) to a unix socket or TCP collector. See docs/dnstap.md.
 *
 * Owns: the fstrm I/O thread, which connects, reconnects (every second while the
 * collector is away) and writes; one input queue per worker.
 * Borrows: nothing (identity and version are copied).
 *
 * Thread safety: bw_dnstap_send() may be called from any thread, but each queue index
 * by one thread only (the worker that owns it): the queues are single-producer. It never
 * blocks: when a queue is full (or the collector is away long enough to fill it) the
 * message is dropped and counted by the caller.
 *
 * Privacy (conf telemetry.privacy): none -> no message at all; blocked-only -> messages
 * of blocked queries only; blocked-only and anonymized -> client addresses truncated to
 * /24 (IPv4) and /56 (IPv6), no client port; full -> everything.
 */
#ifndef BW_TELEMETRY_DNSTAP_H
#define BW_TELEMETRY_DNSTAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct bw_conf;
struct bw_dnstap;

enum bw_dnstap_type { BW_DNSTAP_CLIENT_QUERY = 5, BW_DNSTAP_CLIENT_RESPONSE = 6 };

/* dnstap Policy.Action and Policy.Match values */
enum { BW_DNSTAP_NXDOMAIN = 1, BW_DNSTAP_NODATA = 2, BW_DNSTAP_DROP = 4, BW_DNSTAP_TRUNCATE = 5,
       BW_DNSTAP_LOCAL_DATA = 6 };
enum { BW_DNSTAP_MATCH_QNAME = 1, BW_DNSTAP_MATCH_CLIENT_IP = 2, BW_DNSTAP_MATCH_RESPONSE_IP = 3 };

struct bw_dnstap_policy {
	int action, match;
	const char *rule;     /* text, e.g. "feed/category" */
	const uint8_t *value; /* a wire name or 4/16 address bytes; CLIENT_IP: filled here */
	size_t value_len;
};

struct bw_dnstap_msg {
	enum bw_dnstap_type type;
	bool tcp;
	const struct sockaddr *client; /* AF_INET or AF_INET6 */
	const struct sockaddr *server; /* the listener's address, or NULL */
	const uint8_t *query;          /* CLIENT_QUERY: the query as received */
	size_t query_len;
	const uint8_t *response;       /* CLIENT_RESPONSE: the response as sent */
	size_t response_len;
	struct timespec qtime;         /* when the query came in (wall clock) */
	struct timespec rtime;         /* CLIENT_RESPONSE: when the response went out */
	const struct bw_dnstap_policy *policy; /* a blocked answer's rule, or NULL */
};

/* Starts the output thread for conf->dnstap with `queues` input queues. Returns NULL with
 * a message in err (a collector that is not there yet is no error: it is retried). */
struct bw_dnstap *bw_dnstap_create(const struct bw_conf *conf, unsigned queues, char *err,
				   size_t errlen);
/* Flushes what is queued (briefly) and stops the thread. NULL is fine. */
void bw_dnstap_destroy(struct bw_dnstap *d);

/* Does the privacy mode and the log-queries / log-responses settings let a message of
 * this type through (for a blocked query or not)? */
bool bw_dnstap_wants(const struct bw_dnstap *d, enum bw_dnstap_type type, bool blocked);
/* Encodes and queues m on queue `queue`. 0, or BW_ESPACE (queue full: dropped), BW_ENOMEM. */
int bw_dnstap_send(struct bw_dnstap *d, unsigned queue, const struct bw_dnstap_msg *m);

/* Truncates an address as the privacy mode says (/24, /56), in place. */
void bw_dnstap_truncate(int family, uint8_t *addr);

#endif
