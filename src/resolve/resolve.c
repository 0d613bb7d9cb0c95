/* resolve/resolve.c - libunbound backend in event mode (see resolve.h). */
#include "resolve/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unbound-event.h>
#include <unbound.h>
#include <unistd.h>

#include "dns/dns.h"

#define DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

struct bw_resolver {
	struct ub_ctx *ctx;
	struct event_base *base;
	bw_resolve_cb cb;
	bool in_query; /* inside ub_resolve_event: a result is kept for the caller */
	void *cur_arg; /* ... if it is for the query being started */
	/* a result delivered before ub_resolve_event returned (libunbound's own cache and
	 * local data answer that way), copied because libunbound's buffer is only valid
	 * during its callback */
	bool sync_done;
	int sync_err;
	int sync_sec;
	size_t sync_len;
	char sync_why[256];
	bool sync_has_why;
	unsigned pending; /* queries whose callback is still to come */
	uint8_t sync_pkt[BW_DNS_MAXMSG];
};

static int set_opt(struct ub_ctx *ctx, const char *name, const char *val, char *err, size_t errlen)
{
	int rc = ub_ctx_set_option(ctx, name, val);
	if (rc != 0) {
		snprintf(err, errlen, "resolver option %s %s: %s", name, val, ub_strerror(rc));
		return BW_EINVAL;
	}
	return 0;
}

/* One forward-zone: (or stub-zone:) clause of libunbound's config syntax. */
static void write_zone(FILE *f, const char *name, const struct bw_upstream *ups, size_t n,
		       bool tls, bool stub)
{
	const char *kind = stub ? "stub" : "forward";
	fprintf(f, "%s-zone:\n    name: \"%s\"\n", kind, name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "    %s-addr: %s%s%s\n", kind, ups[i].addr, ups[i].tls_name ? "#" : "",
			ups[i].tls_name ? ups[i].tls_name : "");
	if (tls)
		fprintf(f, "    %s-tls-upstream: yes\n", kind);
}

/*
 * Per-domain forwarding (resolver.forward-zones) and the special-use names handed to the
 * resolver (resolver.special-use: recurse). libunbound has no call for a forward zone, so
 * the clauses are written, in its own config syntax, to a private temporary file (mkstemp:
 * mode 0600) that ub_ctx_config() reads at once; the file is removed right after. Every
 * value was checked by the config loader (names: letters, digits, '-', '_'; addresses:
 * parsed IP addresses), so nothing in it can escape its quotes. Each zone also gets:
 *  - `local-zone: transparent`: libunbound serves some zones itself by default (the
 *    reverse zones of private networks, home.arpa, test., ...: RFC 6303) and would answer
 *    NXDOMAIN before forwarding; transparent turns that off at and below the zone;
 *  - `domain-insecure` (unless `insecure: false`): private zones have no DNSSEC chain from
 *    the root, whose signed denial would make their answers bogus.
 * In forward mode with forward zones, the root's forwarders are written as a "." zone too:
 * ub_ctx_set_tls() would turn TLS on for every upstream, plain forward zones included.
 * *fwd_done says the root's forwarders were written here. *tls: some zone uses TLS.
 */
static int apply_zones(struct ub_ctx *ctx, const struct bw_conf *conf, bool *fwd_done, bool *tls,
		       char *err, size_t errlen)
{
	const __typeof__(conf->resolver) *rc = &conf->resolver;
	bool recurse = false;
	for (int i = 0; i < BW_SU_COUNT; i++)
		recurse |= rc->special_recurse[i];
	*fwd_done = false;
	if (!rc->n_forward_zones && !recurse)
		return 0;
	const char *dir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/bulwark-zones-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		snprintf(err, errlen, "forward zones: cannot write a temporary file %s: %s", path,
			 strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return BW_EIO;
	}
	fprintf(f, "server:\n");
	for (int i = 0; i < BW_SU_COUNT; i++)
		if (rc->special_recurse[i])
			fprintf(f, "    local-zone: \"%s.\" nodefault\n", bw_special_use_names[i]);
	for (size_t i = 0; i < rc->n_forward_zones; i++) {
		const struct bw_forward_zone *z = &rc->forward_zones[i];
		fprintf(f, "    local-zone: \"%s.\" transparent\n", z->zone);
		if (z->insecure)
			fprintf(f, "    domain-insecure: \"%s.\"\n", z->zone);
	}
	for (size_t i = 0; i < rc->n_forward_zones; i++) {
		const struct bw_forward_zone *z = &rc->forward_zones[i];
		char name[300];
		snprintf(name, sizeof(name), "%s.", z->zone);
		write_zone(f, name, z->forward, z->n_forward, z->tls, z->stub);
		*tls |= z->tls;
	}
	if (rc->mode == BW_RESOLVER_FORWARD && rc->n_forward_zones) {
		/* libunbound wants one kind per zone: the root's upstreams are TLS when any is */
		bool root_tls = false;
		for (size_t i = 0; i < rc->n_forward; i++)
			root_tls |= rc->forward[i].tls;
		write_zone(f, ".", rc->forward, rc->n_forward, root_tls, false);
		*tls |= root_tls;
		*fwd_done = true;
	}
	int werr = ferror(f);
	if (fclose(f) != 0 || werr) {
		snprintf(err, errlen, "forward zones: cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return BW_EIO;
	}
	int r = ub_ctx_config(ctx, path);
	unlink(path);
	if (r != 0) {
		snprintf(err, errlen, "forward zones: libunbound refused them: %s", ub_strerror(r));
		return BW_EINVAL;
	}
	return 0;
}

/*
 * libunbound's own caches sit behind the packet cache, one set per worker: not a second
 * copy of every answer, but in recursive mode big enough for the delegations (the NS
 * sets and their addresses of every zone the workers resolve in), the DNSSEC keys and the
 * NSEC records that prove a zone unsigned. libunbound's library defaults are far below
 * its daemon's (1 MB of RRsets, 1 MB of keys, 100 kB of NSEC records): on bench/cold.sh's
 * 30,000 zones the worker fetched delegations again and again (0.7x what Unbound
 * answered), and once its 1 MB of keys was full it asked a TLD again for the DS record of
 * every site it had already proven unsigned (1.21 upstream queries per client query
 * against Unbound's 1.20; 20 DS queries instead of 384 with the sizes below; issue 21).
 * Recursive: of cache.size shared out between the `workers`, a quarter for RRsets, a
 * sixteenth for messages and as much for keys, a sixty-fourth for NSEC records; at least
 * 8, 4, 4 and 1 MB each (the daemon's defaults; 256M, one worker: 64, 16, 16 and 4 MB).
 * Forwarding has no delegations to keep: there the RRset and message caches would only
 * copy the packet cache, 15 MB of RSS per worker once full (issue 21): 1 MB each, keys
 * and NSEC records at libunbound's defaults. resolver.unbound-options can change them.
 */
struct ub_cache_sizes {
	char msg[24], rrset[24], key[24], neg[24];
};

static void cache_sizes(const struct bw_conf *conf, unsigned workers, struct ub_cache_sizes *s)
{
	if (conf->resolver.mode == BW_RESOLVER_FORWARD) {
		snprintf(s->msg, sizeof(s->msg), "1m");
		snprintf(s->rrset, sizeof(s->rrset), "1m");
		s->key[0] = s->neg[0] = 0;
		return;
	}
	uint64_t share = conf->cache.size / (workers ? workers : 1);
	const uint64_t mb = 1 << 20;
	snprintf(s->msg, sizeof(s->msg), "%llu", (unsigned long long)BW_MAX(share / 16, 4 * mb));
	snprintf(s->rrset, sizeof(s->rrset), "%llu", (unsigned long long)BW_MAX(share / 4, 8 * mb));
	snprintf(s->key, sizeof(s->key), "%llu", (unsigned long long)BW_MAX(share / 16, 4 * mb));
	snprintf(s->neg, sizeof(s->neg), "%llu", (unsigned long long)BW_MAX(share / 64, mb));
}

/*
 * Whether this host can reach the IPv6 internet: connect() on a UDP socket only looks the
 * route up (nothing is sent), to a.root-servers.net's IPv6 address; a route that leaves
 * with only a link-local source address does not count.
 */
static bool host_has_ipv6_route(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
	inet_pton(AF_INET6, "2001:503:ba3e::2:30", &sa.sin6_addr);
	struct sockaddr_in6 src;
	socklen_t len = sizeof(src);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		  getsockname(fd, (struct sockaddr *)&src, &len) == 0 &&
		  !IN6_IS_ADDR_UNSPECIFIED(&src.sin6_addr) && !IN6_IS_ADDR_LINKLOCAL(&src.sin6_addr);
	close(fd);
	return ok;
}

/*
 * resolver.ipv6: whether libunbound asks servers over IPv6 (its do-ip6). auto: in forward
 * mode yes (the upstreams are named: libunbound uses the addresses given); in recursive
 * mode yes where the host has a route to the IPv6 internet, or a forward zone names an IPv6
 * server. Without a route libunbound would still look up every name server's IPv6 address
 * and try it: on bench/cold.sh's internet 1.46 upstream queries per client query instead
 * of 1.16 (issue 21). *probed: the answer came from the route lookup.
 */
static bool want_ipv6(const struct bw_conf *conf, bool *probed)
{
	*probed = false;
	if (conf->resolver.ipv6 != BW_IPV6_AUTO)
		return conf->resolver.ipv6 == BW_IPV6_YES;
	if (conf->resolver.mode == BW_RESOLVER_FORWARD)
		return true;
	for (size_t i = 0; i < conf->resolver.n_forward_zones; i++) {
		const struct bw_forward_zone *z = &conf->resolver.forward_zones[i];
		for (size_t k = 0; k < z->n_forward; k++)
			if (strchr(z->forward[k].addr, ':'))
				return true;
	}
	*probed = true;
	return host_has_ipv6_route();
}

/* Says once, and again when it changes, what resolver.ipv6: auto found (each worker's
 * context asks at start, and again when a clock step renews it). */
static void note_ipv6(bool on)
{
	static atomic_int last = -1;
	if (atomic_exchange(&last, on) == on)
		return;
	if (on)
		bw_info("resolver: the host has a route to the IPv6 internet: asking name servers "
			"over IPv6 and IPv4 (resolver.ipv6: auto)");
	else
		bw_info("resolver: no route to the IPv6 internet: asking name servers over IPv4 "
			"only (resolver.ipv6: auto; set it to yes to use IPv6 anyway)");
}

static int apply_conf(struct ub_ctx *ctx, const struct bw_conf *conf, unsigned workers,
		      char *err, size_t errlen)
{
	const __typeof__(conf->resolver) *rc = &conf->resolver;
	int ret;
	bool validate = rc->dnssec;

	/* loopback upstreams are common (a local forwarder, test roots) */
	if ((ret = set_opt(ctx, "do-not-query-localhost:", "no", err, errlen)))
		return ret;
	if ((ret = set_opt(ctx, "module-config:", validate ? "validator iterator" : "iterator", err,
			   errlen)))
		return ret;
	if ((ret = set_opt(ctx, "qname-minimisation:", rc->qname_minimisation ? "yes" : "no", err,
			   errlen)))
		return ret;
	if ((ret = set_opt(ctx, "aggressive-nsec:", rc->aggressive_nsec ? "yes" : "no", err, errlen)))
		return ret;
	if ((ret = set_opt(ctx, "prefetch:", rc->prefetch ? "yes" : "no", err, errlen)))
		return ret;
	if ((ret = set_opt(ctx, "edns-buffer-size:", "1232", err, errlen)))
		return ret;
	struct ub_cache_sizes cs;
	cache_sizes(conf, workers, &cs);
	if ((ret = set_opt(ctx, "msg-cache-size:", cs.msg, err, errlen)) ||
	    (ret = set_opt(ctx, "rrset-cache-size:", cs.rrset, err, errlen)))
		return ret;
	if (cs.key[0] && ((ret = set_opt(ctx, "key-cache-size:", cs.key, err, errlen)) ||
			  (ret = set_opt(ctx, "neg-cache-size:", cs.neg, err, errlen))))
		return ret;
	/* as many queries in flight as the worker admits (server.max-inflight): past
	 * libunbound's default of 1,024 it would turn the worker's misses away, SERVFAIL */
	char nq[16];
	snprintf(nq, sizeof(nq), "%u", bw_max_inflight(conf));
	if ((ret = set_opt(ctx, "num-queries-per-thread:", nq, err, errlen)))
		return ret;
	/* and the sockets to ask with: libunbound's library default is 16 UDP ports (and 2
	 * TCP connections) per context, "within the ulimit of the user", where the daemon
	 * has 4,096 (and 10). 16 queries upstream at once, with every other one waiting for a
	 * port, is 320 a second at 50 ms of RTT: under load, recursion timed out and misses
	 * became SERVFAIL at 5 s (issue 21). bw_outgoing_range() is what the open-files
	 * limit is raised for (core/privs.c). */
	snprintf(nq, sizeof(nq), "%u", bw_outgoing_range(conf));
	if ((ret = set_opt(ctx, "outgoing-range:", nq, err, errlen)) ||
	    (ret = set_opt(ctx, "outgoing-num-tcp:", "10", err, errlen)))
		return ret;
	/* libunbound picks at random among the servers of a zone whose RTTs lie within 400 ms
	 * of the best: in practice, among all of them, a 150 ms server as often as a 5 ms one.
	 * 9 times in 10 it now asks the fastest it knows (the 10th explores, keeping the
	 * others' RTTs known), as BIND, Knot Resolver and PowerDNS Recursor do: on
	 * bench/cold.sh's internet the misses' p90 went from 99 to 62 ms and the p99 from
	 * 231 to 172 ms, and the CPU per answer fell by a fifth (fewer queries in flight). */
	if ((ret = set_opt(ctx, "fast-server-permil:", "900", err, errlen)) ||
	    (ret = set_opt(ctx, "fast-server-num:", "1", err, errlen)))
		return ret;
	bool probed;
	bool ip6 = want_ipv6(conf, &probed);
	if (probed)
		note_ipv6(ip6);
	if ((ret = set_opt(ctx, "do-ip6:", ip6 ? "yes" : "no", err, errlen)))
		return ret;
	/* the validator's reason for bogus answers ends up in EDE text and logs */
	if ((ret = set_opt(ctx, "val-log-level:", "2", err, errlen)))
		return ret;

	bool fwd_done = false, zones_tls = false;
	if ((ret = apply_zones(ctx, conf, &fwd_done, &zones_tls, err, errlen)))
		return ret;
	if (zones_tls) {
		const char *ca = rc->tls_ca_file ? rc->tls_ca_file
						 : "/etc/ssl/certs/ca-certificates.crt";
		if ((ret = set_opt(ctx, "tls-cert-bundle:", ca, err, errlen)))
			return ret;
	}
	if (rc->mode == BW_RESOLVER_FORWARD && !fwd_done) {
		bool tls = false;
		for (size_t i = 0; i < rc->n_forward; i++) {
			const struct bw_upstream *u = &rc->forward[i];
			char addr[300];
			if (u->tls_name)
				snprintf(addr, sizeof(addr), "%s#%s", u->addr, u->tls_name);
			else
				snprintf(addr, sizeof(addr), "%s", u->addr);
			int r = ub_ctx_set_fwd(ctx, addr);
			if (r != 0) {
				snprintf(err, errlen, "forward %s: %s", addr, ub_strerror(r));
				return BW_EINVAL;
			}
			tls |= u->tls;
		}
		if (tls) {
			ub_ctx_set_tls(ctx, 1);
			const char *ca = rc->tls_ca_file ? rc->tls_ca_file
							 : "/etc/ssl/certs/ca-certificates.crt";
			if (!zones_tls && (ret = set_opt(ctx, "tls-cert-bundle:", ca, err, errlen)))
				return ret;
		}
	} else if (rc->mode == BW_RESOLVER_RECURSIVE && rc->root_hints) {
		if ((ret = set_opt(ctx, "root-hints:", rc->root_hints, err, errlen)))
			return ret;
	}

	if (validate) {
		const char *ta = rc->trust_anchor;
		if (!ta && access(DEFAULT_TRUST_ANCHOR, R_OK) == 0)
			ta = DEFAULT_TRUST_ANCHOR;
		if (!ta) {
			snprintf(err, errlen,
				 "DNSSEC is on but no trust anchor: set resolver.trust-anchor "
				 "or install dns-root-data (%s)",
				 DEFAULT_TRUST_ANCHOR);
			return BW_EINVAL;
		}
		int r = ub_ctx_add_ta_file(ctx, ta);
		if (r != 0) {
			snprintf(err, errlen, "trust anchor %s: %s", ta, ub_strerror(r));
			return BW_EINVAL;
		}
	}

	for (size_t i = 0; i < rc->n_unbound_options; i++) {
		const char *line = rc->unbound_options[i];
		const char *colon = strchr(line, ':');
		if (!colon) {
			snprintf(err, errlen, "unbound option '%s': expected 'name: value'", line);
			return BW_EINVAL;
		}
		char name[128];
		size_t n = (size_t)(colon - line) + 1;
		if (n >= sizeof(name)) {
			snprintf(err, errlen, "unbound option '%s': name too long", line);
			return BW_EINVAL;
		}
		memcpy(name, line, n);
		name[n] = 0;
		const char *val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		if ((ret = set_opt(ctx, name, val, err, errlen)))
			return ret;
	}
	return 0;
}

/* Whether the config sends anything over TLS (resolver.forward, forward zones). */
static bool wants_tls(const struct bw_conf *conf)
{
	const struct bw_forward_zone *z = conf->resolver.forward_zones;
	for (size_t i = 0; conf->resolver.mode == BW_RESOLVER_FORWARD && i < conf->resolver.n_forward;
	     i++)
		if (conf->resolver.forward[i].tls)
			return true;
	for (size_t i = 0; i < conf->resolver.n_forward_zones; i++)
		for (size_t k = 0; k < z[i].n_forward; k++)
			if (z[i].forward[k].tls)
				return true;
	return false;
}

static bool has_tls;
static void probe_tls(void)
{
	struct ub_ctx *c = ub_ctx_create();
	struct ub_result *res = NULL;
	if (!c)
		return;
	int r = ub_ctx_set_fwd(c, "127.0.0.1@853");
	if (!r)
		r = ub_ctx_set_tls(c, 1);
	if (!r)
		r = ub_resolve(c, "localhost.", 1, 1, &res);
	has_tls = r == 0;
	if (res)
		ub_resolve_free(res);
	ub_ctx_delete(c);
}

/* Whether this libunbound can forward over TLS. Debian 12's is built with nettle instead of
 * OpenSSL: a context with a TLS upstream fails to initialise, and every query would be
 * SERVFAIL. Asked once, of a throwaway context that forwards over TLS: "localhost." is one
 * of libunbound's own local zones, answered without any traffic. */
static bool libunbound_has_tls(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, probe_tls);
	return has_tls;
}

struct bw_resolver *bw_resolver_create(const struct bw_conf *conf, unsigned workers,
				       struct event_base *base, bw_resolve_cb cb, char *err,
				       size_t errlen)
{
	struct bw_resolver *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->base = base;
	r->cb = cb;
	r->ctx = ub_ctx_create_event(base);
	if (!r->ctx) {
		snprintf(err, errlen, "cannot create the libunbound context");
		goto fail;
	}
	if (apply_conf(r->ctx, conf, workers, err, errlen))
		goto fail;
	if (wants_tls(conf) && !libunbound_has_tls()) {
		snprintf(err, errlen,
			 "this libunbound cannot forward over TLS (Debian 12's is built with nettle, "
			 "without TLS): remove the tls:// upstreams (resolver.forward, "
			 "resolver.forward-zones), or run a local DoT forwarder and forward to it "
			 "over plain DNS");
		goto fail;
	}
	return r;
fail:
	if (r->ctx)
		ub_ctx_delete(r->ctx);
	free(r);
	return NULL;
}

void bw_resolver_destroy(struct bw_resolver *r)
{
	if (!r)
		return;
	ub_ctx_delete(r->ctx);
	free(r);
}

int bw_resolver_option(const struct bw_resolver *r, const char *name, char *out, size_t outlen)
{
	char *v = NULL;
	if (outlen)
		out[0] = 0;
	if (ub_ctx_get_option(r->ctx, name, &v) != 0 || !v) {
		free(v);
		return BW_EINVAL;
	}
	snprintf(out, outlen, "%s", v);
	free(v);
	return 0;
}

static void ub_done(void *arg, int rcode, void *packet, int packet_len, int sec, char *why_bogus,
		    int was_ratelimited)
{
	(void)was_ratelimited;
	/* `arg` is our query context, whose first member is the resolver (see resolve.h) */
	struct bw_resolver *r = *(struct bw_resolver **)arg;
	const uint8_t *pkt = packet;
	size_t len = packet_len > 0 ? (size_t)packet_len : 0;
	int err = 0;
	if (rcode != 0 || !pkt || len < BW_DNS_HDR || len > BW_DNS_MAXMSG) {
		err = rcode ? rcode : BW_RCODE_SERVFAIL;
		pkt = NULL;
		len = 0;
	}
	if (!r->in_query || arg != r->cur_arg) {
		r->pending--;
		r->cb(arg, err, pkt, len, (enum bw_sec)sec, why_bogus);
		return;
	}
	r->sync_done = true;
	r->sync_err = err;
	r->sync_sec = sec;
	r->sync_len = len;
	if (len)
		memcpy(r->sync_pkt, pkt, len);
	r->sync_has_why = why_bogus != NULL;
	if (why_bogus)
		snprintf(r->sync_why, sizeof(r->sync_why), "%s", why_bogus);
}

int bw_resolver_query(struct bw_resolver *r, const uint8_t *qname, size_t qname_len,
		      uint16_t qtype, uint16_t qclass, void *arg, int *id)
{
	char text[4 * BW_DNS_MAXNAME + 2];
	if (bw_name_to_text(qname, qname_len, text, sizeof(text)) < 0)
		return BW_EINVAL;
	r->in_query = true;
	r->cur_arg = arg;
	r->sync_done = false;
	int rc = ub_resolve_event(r->ctx, text, qtype, qclass, arg, ub_done, id);
	r->in_query = false;
	if (r->sync_done)
		return 1;
	if (rc != 0) {
		bw_debug("ub_resolve_event %s: %s", text, ub_strerror(rc));
		return BW_EIO;
	}
	r->pending++;
	return 0;
}

bool bw_resolver_idle(const struct bw_resolver *r)
{
	return r->pending == 0;
}

void bw_resolver_sync_result(const struct bw_resolver *r, int *err, const uint8_t **pkt,
			     size_t *len, enum bw_sec *sec, const char **why_bogus)
{
	*err = r->sync_err;
	*pkt = r->sync_len ? r->sync_pkt : NULL;
	*len = r->sync_len;
	*sec = (enum bw_sec)r->sync_sec;
	*why_bogus = r->sync_has_why ? r->sync_why : NULL;
}

void bw_resolver_cancel(struct bw_resolver *r, int id)
{
	if (id && ub_cancel(r->ctx, id) == 0)
		r->pending--; /* its callback will not come */
}

/* ---- one blocking query, for tools (bulwark explain) ---- */

struct once {
	struct bw_resolver *r; /* first: see bw_resolver_query() */
	bool done;
	int err;
	enum bw_sec sec;
	uint8_t *out;
	size_t cap, len;
};

static void once_keep(struct once *o, int err, const uint8_t *pkt, size_t len, enum bw_sec sec)
{
	o->done = true;
	o->err = err;
	o->sec = sec;
	if (!err && pkt && len <= o->cap) {
		memcpy(o->out, pkt, len);
		o->len = len;
	} else if (!err) {
		o->err = BW_RCODE_SERVFAIL;
	}
}

static void once_cb(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
		    const char *why_bogus)
{
	(void)why_bogus;
	struct once *o = arg;
	once_keep(o, err, pkt, len, sec);
	event_base_loopbreak(o->r->base);
}

static void once_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int bw_resolve_once(const struct bw_conf *conf, const uint8_t *qname, size_t qname_len,
		    uint16_t qtype, uint8_t *out, size_t cap, size_t *out_len, enum bw_sec *sec,
		    char *err, size_t errlen)
{
	struct event_base *base = event_base_new();
	struct event *timer = base ? evtimer_new(base, once_timeout, base) : NULL;
	struct once o = {.out = out, .cap = cap};
	int rc = BW_ENOMEM, id = 0;
	if (!timer) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	o.r = bw_resolver_create(conf, 1, base, once_cb, err, errlen);
	if (!o.r) {
		rc = BW_EINVAL;
		goto out;
	}
	rc = bw_resolver_query(o.r, qname, qname_len, qtype, 1, &o, &id);
	if (rc == 1) {
		const uint8_t *pkt;
		size_t len;
		int e;
		const char *why;
		enum bw_sec s;
		bw_resolver_sync_result(o.r, &e, &pkt, &len, &s, &why);
		once_keep(&o, e, pkt, len, s);
	} else if (rc == 0) {
		unsigned ms = conf->resolver.timeout_ms ? conf->resolver.timeout_ms : 5000;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(timer, &tv);
		event_base_dispatch(base);
		if (!o.done)
			bw_resolver_cancel(o.r, id);
	} else {
		snprintf(err, errlen, "cannot start the query: %s", bw_strerror(rc));
		goto out;
	}
	if (!o.done) {
		snprintf(err, errlen, "no answer within %u ms (resolver.timeout)",
			 conf->resolver.timeout_ms ? conf->resolver.timeout_ms : 5000);
		rc = BW_EAGAIN;
	} else if (o.err) {
		snprintf(err, errlen, "the resolver answered %s", o.err == BW_RCODE_SERVFAIL
									? "SERVFAIL"
									: "with an error");
		rc = BW_EIO;
	} else {
		*out_len = o.len;
		*sec = o.sec;
		rc = 0;
	}
out:
	bw_resolver_destroy(o.r);
	if (timer)
		event_free(timer);
	if (base)
		event_base_free(base);
	return rc;
}
