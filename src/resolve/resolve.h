/*
 * resolve/resolve.h - the resolver backend: libunbound in-process, in event mode on the
 * calling worker's libevent loop.
 *
 * Owns: one struct ub_ctx per worker (created by bw_resolver_create on that worker's
 * event_base; recursive with DNSSEC validation, QNAME minimisation, aggressive NSEC and
 * prefetch, or forwarding to upstreams, optionally over TLS; per-domain forward and stub
 * zones and the special-use names handed to it, resolver.forward-zones and special-use,
 * written as libunbound config clauses to a private temporary file read at creation).
 * Borrows: the config (read at creation only) and the event_base.
 *
 * Why event mode: the answer comes back on the worker's own loop (no thread hop, no
 * pipe, no locking), as a wire packet we can cache directly. See docs/ARCHITECTURE.md.
 *
 * Thread safety: a resolver belongs to the thread that runs its event_base.
 */
#ifndef BW_RESOLVE_H
#define BW_RESOLVE_H

#include <event2/event.h>

#include "base/base.h"
#include "conf/conf.h"

struct bw_resolver;

/* DNSSEC result of an answer */
enum bw_sec { BW_SEC_INSECURE = 0, BW_SEC_BOGUS = 1, BW_SEC_SECURE = 2 };

/*
 * Result callback, called on the worker's loop for results that come later (not for
 * those bw_resolver_query() returns 1 for).
 *   err: 0 with pkt/len the full response packet from the resolver (valid only during
 *        the call); or a DNS rcode (SERVFAIL) with pkt NULL when resolution failed.
 *   sec: enum bw_sec; why_bogus: validator's reason text or NULL.
 */
typedef void (*bw_resolve_cb)(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
			      const char *why_bogus);

/* Creates the backend on base, one of `workers` (they share out libunbound's cache
 * budget); every result goes to cb. On failure returns NULL and a message in err. */
struct bw_resolver *bw_resolver_create(const struct bw_conf *conf, unsigned workers,
				       struct event_base *base, bw_resolve_cb cb, char *err,
				       size_t errlen);
void bw_resolver_destroy(struct bw_resolver *r);

/*
 * Starts resolving (qname_lc wire form, qtype, qclass). Returns 0 when the answer will
 * come to the callback; 1 when it is already there (libunbound answered from its own
 * cache or local data): fetch it with bw_resolver_sync_result(), no callback follows. `arg` is handed back to the
 * callback and must point to an object whose first member is `struct bw_resolver *`
 * equal to r (the result is routed through it). Returns 0 and an id usable with
 * bw_resolver_cancel() (the callback then runs later on the loop, exactly once unless the
 * query is cancelled first), 1 (see above), or a negative BW_E*.
 */
int bw_resolver_query(struct bw_resolver *r, const uint8_t *qname, size_t qname_len,
		      uint16_t qtype, uint16_t qclass, void *arg, int *id);
void bw_resolver_cancel(struct bw_resolver *r, int id);
/* No query of r is waiting for its callback: r can be destroyed without losing one. */
bool bw_resolver_idle(const struct bw_resolver *r);
/* The result of the last bw_resolver_query() that returned 1 (same meaning as the
 * callback's arguments); valid until the next bw_resolver_query(). */
void bw_resolver_sync_result(const struct bw_resolver *r, int *err, const uint8_t **pkt,
			     size_t *len, enum bw_sec *sec, const char **why_bogus);

/* What libunbound has for option `name` (without the colon: "key-cache-size") in r's
 * context, as text in out (sizes in bytes); 0, or BW_EINVAL for an option it does not
 * know (out is then empty). For tests and diagnostics. */
int bw_resolver_option(const struct bw_resolver *r, const char *name, char *out, size_t outlen);

/* One query, blocking, on a resolver of its own made from conf and freed before it
 * returns (for tools: `bulwark explain`; never in a worker). Waits resolver.timeout at
 * most. Returns 0 with the response packet in out[0..*out_len) and its DNSSEC result, or
 * a negative BW_E* with the reason in err (SERVFAIL, no answer in time, bad config). */
int bw_resolve_once(const struct bw_conf *conf, const uint8_t *qname, size_t qname_len,
		    uint16_t qtype, uint8_t *out, size_t cap, size_t *out_len, enum bw_sec *sec,
		    char *err, size_t errlen);

#endif
