/*
 * core/pipeline.c - the query pipeline: access control -> parse -> cache -> policy ->
 * resolve -> finalize. The cache comes before the policy because its key carries the
 * policy generation: a hit was produced under the same verdict (blocked answers are
 * cached too), so a hit costs one lookup, not one per label of the name. CLIENT-IP rules,
 * which depend on who asks, run before the cache. Each stage returns BW_STAGE_NEXT, DONE,
 * ASYNC or DROP; the asynchronous resolver resumes a query in bw_pipeline_resolved().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/internal.h"
#include "core/observe.h"
#include "policy/rules.h"

/* How long a blocked answer stays in the packet cache (clamped by cache.max-negative-ttl);
 * a new policy generation makes it unreachable anyway. */
#define BW_BLOCKED_TTL 3600
#define BW_OPCODE_NOTIFY_Q 4 /* RFC 1996 */
/* Answers to unknown or missing ClientIDs per second and worker (and the burst): the rest
 * get none, so a flood of made-up IDs costs little and reflects nothing. */
#define BW_ID_REFUSALS_PER_SEC 100
/* How long a client waits for a fresh answer before it gets a stale one (RFC 8767 5). */
#define BW_STALE_WAIT_MS 1800

/* Per-query working set for the synchronous part: the query's state, and where it came
 * from and its answer goes. */
struct job {
	struct bw_worker *w;
	const struct bw_origin *o;
	struct bw_qstate s;
	struct bw_verdict verdict;
	size_t limit;
	uint8_t *out;
	size_t cap;
	size_t out_len;
	bool parsed;     /* a valid question: the query is worth a telemetry record */
	bool cache_hit;
};

/* Telemetry: notes what the policy said about the query being handled (only matches
 * reach here, so this costs nothing for ordinary queries). */
static void tlm_note(struct bw_worker *w, const struct bw_verdict *v, unsigned flag,
		     const struct bw_match *via)
{
	struct bw_tlm_verdict *tv = w->tlm_cur;
	if (!tv)
		return;
	tv->flags = (uint8_t)((tv->flags & ~BW_TLM_MATCHED) | flag);
	tv->action = (uint8_t)v->action;
	tv->trigger = v->trigger;
	tv->feed = (int8_t)v->feed;
	const char *fname = v->feed_name ? v->feed_name : ""; /* "local": a local decision */
	const char *cat = v->category ? v->category : "";
	snprintf(tv->feed_name, sizeof(tv->feed_name), "%s", fname);
	snprintf(tv->category, sizeof(tv->category), "%s", cat);
	tv->rule[0] = 0;
	char via_text[4 * BW_DNS_MAXNAME + 16];
	if (bw_match_text(via, via_text, sizeof(via_text))[0]) {
		int n = snprintf(tv->rule, sizeof(tv->rule), "%s", via_text);
		if (n > 1 && (size_t)n < sizeof(tv->rule) && tv->rule[n - 1] == '.')
			tv->rule[n - 1] = 0; /* "CNAME x.example", as names are written in the log */
	} else if (v->match && v->match_len) {
		char name[4 * BW_DNS_MAXNAME + 2];
		if (bw_name_to_text(v->match, v->match_len, name, sizeof(name)) > 0) {
			size_t n = strlen(name), at = 0;
			if (n > 1 && name[n - 1] == '.')
				n--;
			if (v->trigger == BW_TRIG_WILDCARD) {
				memcpy(tv->rule, "*.", 2);
				at = 2;
			}
			n = BW_MIN(n, sizeof(tv->rule) - 1 - at);
			memcpy(tv->rule + at, name, n);
			tv->rule[at + n] = 0;
		}
	}
}

/* The name of the client a query is from (-1: none), for telemetry: only under the state
 * that matched it (the index is into that state's conf), and only where the privacy mode
 * keeps names, else NULL. */
static const char *tlm_client_name(const struct bw_worker *w, int client)
{
	const struct bw_conf *conf = w->state->conf;
	if (client < 0 || (size_t)client >= conf->clients.n || !bw_tlm_keeps_names(w->tlm->privacy))
		return NULL;
	return conf->clients.list[client].name;
}

/* Telemetry: hands one answered query to the worker's ring (a few stores and copies; a
 * full ring drops the record and counts it). Needs the policy state held. client_name:
 * the named client's (tlm_client_name, copied by a query that waited), or NULL. */
static void tlm_log(struct bw_worker *w, const struct bw_tlm_verdict *tv, const struct bw_query *q,
		    unsigned profile, enum bw_transport_kind via, const struct sockaddr *peer,
		    const char *client_name, uint64_t t_start, bool hit, const uint8_t *out,
		    size_t n)
{
	struct bw_tlm_ring *r = w->tlm;
	unsigned flags = tv->flags | (hit ? BW_TLM_CACHE_HIT : 0);
	if (!bw_tlm_wanted(r, flags))
		return;
	struct bw_tlm_record *rec = bw_tlm_ring_reserve(r);
	if (!rec)
		return;
	uint64_t now = bw_now_ns();
	rec->time_ms = bw_tlm_now_ms();
	rec->latency_us = (uint32_t)BW_MIN((now - t_start) / 1000u, UINT32_MAX);
	rec->qtype = q->qtype;
	rec->rcode = n >= 4 ? (uint8_t)(out[3] & 0x0f) : BW_TLM_NO_RCODE;
	rec->transport = (uint8_t)via;
	rec->worker = (uint8_t)w->index;
	bw_tlm_set_client(rec, peer, r->privacy);
	bw_tlm_set_client_name(rec, client_name, r->privacy);
	const char *pname = bw_policy_profile_name(w->state->policy, profile);
	size_t plen = pname ? strnlen(pname, sizeof(rec->profile) - 1) : 0;
	memcpy(rec->profile, pname ? pname : "", plen);
	rec->profile[plen] = 0;
	rec->qname_len = (uint8_t)q->qname_len;
	memcpy(rec->qname, q->qname_lc, q->qname_len);
	if (flags & BW_TLM_MATCHED)
		rec->v = *tv;
	rec->v.flags = (uint8_t)flags;
	bw_tlm_ring_commit(r);
}

static size_t answer_limit(const struct bw_query *q, enum bw_transport_kind via)
{
	if (via == BW_VIA_TCP)
		return BW_DNS_MAXMSG;
	return BW_MIN(q->udp_size, BW_UDP_MAX_ANSWER);
}

enum synth { SYNTH_NONE, SYNTH_ANSWER, SYNTH_DROP, SYNTH_TC };

/* What a matching rule does to the answer to q: SYNTH_ANSWER with (m, body) filled in,
 * SYNTH_DROP (say nothing), SYNTH_TC (UDP: come back over TCP) or SYNTH_NONE (resolve and
 * answer normally: PASSTHRU, log-only, TCP-only over TCP). */
static enum synth synth_verdict(struct bw_worker *w, const struct bw_query *q,
				enum bw_transport_kind via, const struct bw_verdict *v,
				const struct bw_match *match, struct bw_answer_meta *m, uint8_t *body,
				size_t cap)
{
	uint32_t ttl = v->ttl ? v->ttl : BW_BLOCKED_TTL;
	int rc = 0;
	if (v->log_only) {
		char name[4 * BW_DNS_MAXNAME + 2];
		if (bw_name_to_text(q->qname_lc, q->qname_len, name, sizeof(name)) < 0)
			name[0] = 0;
		char t[4 * BW_DNS_MAXNAME + 16];
		bw_match_text(match, t, sizeof(t));
		bw_info("log-only: %s matched feed %s (%s)%s%s", name, v->feed_name, v->category,
			t[0] ? " via " : "", t);
		w->stats.log_only++;
		tlm_note(w, v, BW_TLM_LOG_ONLY, match);
		return SYNTH_NONE;
	}
	switch (v->action) {
	case BW_ACT_ALLOW:
	case BW_ACT_PASSTHRU:
		tlm_note(w, v, v->action == BW_ACT_PASSTHRU ? BW_TLM_PASSTHRU : 0, match);
		return SYNTH_NONE;
	case BW_ACT_DROP:
		bw_obs_block(w, q, v, match);
		tlm_note(w, v, BW_TLM_BLOCKED, match);
		return SYNTH_DROP;
	case BW_ACT_TCP_ONLY:
		if (via == BW_VIA_TCP)
			return SYNTH_NONE;
		tlm_note(w, v, BW_TLM_BLOCKED, match);
		return SYNTH_TC;
	case BW_ACT_NXDOMAIN:
	case BW_ACT_NODATA:
		bw_answer_meta_init(m);
		m->rcode = v->action == BW_ACT_NXDOMAIN ? BW_RCODE_NXDOMAIN : BW_RCODE_NOERROR;
		m->ttl = ttl;
		break;
	case BW_ACT_LOCAL_DATA:
		rc = bw_answer_synth_local(q, v->data, v->data_len, v->n_rrs, ttl, m, body, cap);
		break;
	case BW_ACT_REDIRECT:
		rc = bw_answer_synth_cname(q, v->target, v->target_len, v->target_wildcard, ttl, m,
					   body, cap);
		break;
	}
	if (rc != 0) {
		/* unusable local data (e.g. a wildcard redirect too long for this name) */
		bw_answer_meta_init(m);
		m->rcode = BW_RCODE_NXDOMAIN;
		m->ttl = ttl;
	}
	m->ede = v->ede;
	bw_verdict_ede_text(v, match, m->ede_text, sizeof(m->ede_text));
	bw_obs_block(w, q, v, match);
	tlm_note(w, v, BW_TLM_BLOCKED, match);
	return SYNTH_ANSWER;
}

/* An empty answer with TC set: the client retries over TCP (RPZ TCP-only). */
static size_t tc_answer(const struct bw_query *q, uint8_t *out, size_t cap)
{
	int n = bw_answer_error(q, BW_RCODE_NOERROR, BW_EDE_NONE, NULL, out, cap);
	if (n <= 0)
		return 0;
	out[2] |= BW_DNS_TC >> 8;
	return (size_t)n;
}

/* The end of every synchronous answer: n bytes written into j->out (n <= 0: nothing could
 * be written, so nothing is sent). */
static enum bw_stage answered(struct job *j, int n)
{
	if (n <= 0)
		return BW_STAGE_DROP;
	j->out_len = (size_t)n;
	return BW_STAGE_DONE;
}

/* The answer made of (w->meta, w->body), for j's client. */
static enum bw_stage write_answer(struct job *j)
{
	struct bw_worker *w = j->w;
	return answered(j, bw_answer_write(&j->s.q, &w->meta, w->body, 0, 0, j->limit, j->out,
					   j->cap));
}

static enum bw_stage stage_error(struct job *j, uint16_t rcode, uint16_t ede, const char *text)
{
	return answered(j, bw_answer_error(&j->s.q, rcode, ede, text, j->out, j->cap));
}

/* A stage's outcome for a policy verdict's synth result: NEXT (resolve), DROP, the TC
 * answer, or the synthesized answer written for j (and cached when `cache`: answers that
 * depend on the client are not). */
static enum bw_stage synth_stage(struct job *j, enum synth r, bool cache)
{
	struct bw_worker *w = j->w;
	switch (r) {
	case SYNTH_NONE:
		return BW_STAGE_NEXT;
	case SYNTH_DROP:
		return BW_STAGE_DROP;
	case SYNTH_TC:
		j->out_len = tc_answer(&j->s.q, j->out, j->cap);
		return j->out_len ? BW_STAGE_DONE : BW_STAGE_DROP;
	case SYNTH_ANSWER:
		break;
	}
	if (cache)
		bw_cache_store(w->srv->cache, &j->s.key, &w->meta, w->body, bw_now_sec());
	return write_answer(j);
}

/* What a query says about its ClientID. */
enum client_id { ID_NONE, ID_KNOWN, ID_UNKNOWN, ID_MISSING };

/* The ClientID of a query (the DoH path's, else the TLS server name's first label) and the
 * client it names (*client, else -1). A listener with `client-id: required` needs one. */
static enum client_id client_id(struct bw_worker *w, const struct bw_origin *o, int *client)
{
	const struct bw_conf *conf = w->state->conf;
	const char *id = o->client_id;
	size_t len = id ? strlen(id) : 0;
	char lc[BW_CLIENT_ID_MAX + 1];
	*client = -1;
	if (!id && o->sni && bw_clients_have_ids(w->state->clients) &&
	    bw_access_sni_client_id(conf, o->listener, o->sni, &id, &len)) {
		for (size_t i = 0; i < len; i++)
			lc[i] = (char)(id[i] >= 'A' && id[i] <= 'Z' ? id[i] + 32 : id[i]);
		id = lc;
	}
	if (id) {
		*client = bw_clients_by_id(w->state->clients, id, len);
		return *client >= 0 ? ID_KNOWN : ID_UNKNOWN;
	}
	if (o->listener >= 0 && (size_t)o->listener < conf->server.n_listen &&
	    conf->server.listen[o->listener].client_id_required)
		return ID_MISSING;
	return ID_NONE;
}

/* A query with an unknown ClientID, or none where one is required: REFUSED, at most
 * BW_ID_REFUSALS_PER_SEC per worker (a burst as big); past that, no answer. */
static enum bw_stage refuse_client_id(struct job *j, enum client_id id, int parse_rc)
{
	struct bw_worker *w = j->w;
	uint64_t now = bw_now_ns();
	double tokens = w->id_refusal_tokens +
			(double)(now - w->id_refusal_ns) * BW_ID_REFUSALS_PER_SEC / 1e9;
	w->id_refusal_ns = now;
	w->id_refusal_tokens = BW_MIN(tokens, (double)BW_ID_REFUSALS_PER_SEC);
	unsigned k = id == ID_UNKNOWN ? 0 : 1;
	if (w->id_refusal_tokens < 1) {
		w->stats.client_id_dropped[k]++;
		return BW_STAGE_DROP;
	}
	w->id_refusal_tokens -= 1;
	w->stats.client_id_refused[k]++;
	if (parse_rc != 0)
		j->s.q.qname_len = 0;
	return stage_error(j, BW_RCODE_REFUSED, BW_EDE_PROHIBITED,
			   id == ID_UNKNOWN ? "unknown ClientID" : "this service needs a ClientID");
}

/* The rate a query is limited to: its client's, else its listener's, else the server's. */
static const struct bw_rate *rate_for(const struct bw_conf *conf, int listener, int client)
{
	if (client >= 0 && conf->clients.list[client].rate.given)
		return &conf->clients.list[client].rate;
	if (listener >= 0 && (size_t)listener < conf->server.n_listen &&
	    conf->server.listen[listener].rate.given)
		return &conf->server.listen[listener].rate;
	return &conf->server.rate;
}

/* Says once, when a prefix first goes over its limit, that it did; at most 10 lines per
 * worker and 10 s (spoofed sources make many prefixes), the rest counted. */
static void rate_note(struct bw_worker *w, const uint8_t *key, const char *what, unsigned rate)
{
	uint64_t now = bw_now_ns();
	if (now - w->rl_log_ns > 10ull * 1000000000u) {
		if (w->rl_log_quiet)
			bw_warn("%s: %u more prefixes went over their limit in the last 10 s",
				what, w->rl_log_quiet);
		w->rl_log_ns = now;
		w->rl_log_n = w->rl_log_quiet = 0;
	}
	if (w->rl_log_n >= 10) {
		w->rl_log_quiet++;
		return;
	}
	w->rl_log_n++;
	w->stats.rate_limit_logged++;
	char text[BW_ADDRSTRLEN];
	int af = key[0] == 4 ? AF_INET : AF_INET6;
	if (!inet_ntop(af, key + 1, text, sizeof(text)))
		snprintf(text, sizeof(text), "?");
	const struct bw_conf *conf = w->srv->conf; /* the prefix lengths: read at start */
	unsigned plen = af == AF_INET ? conf->server.rl_prefix_v4 : conf->server.rl_prefix_v6;
	bw_warn("%s: %s/%u went over %u a second", what, text, plen, rate);
	bw_telemetry_limit_event(w->srv->tlm, what, af, key + 1, plen, rate);
}

/* server.rate-limit: whether this query is over its prefix's rate. */
static bool rate_limited(struct job *j)
{
	struct bw_worker *w = j->w;
	const struct bw_conf *conf = w->state->conf;
	const struct bw_rate *r = rate_for(conf, j->o->listener, j->s.client);
	if (!r->qps)
		return false;
	uint8_t key[17];
	size_t len = bw_sockaddr_prefix(j->o->peer, w->srv->conf->server.rl_prefix_v4,
					     w->srv->conf->server.rl_prefix_v6, key);
	if (!len)
		return false;
	enum bw_rl_verdict v = bw_ratelimit_take(w->srv->ratelimit, key, len, r->qps,
						 r->burst ? r->burst : r->qps);
	if (v == BW_RL_PASS)
		return false;
	w->stats.rate_limited++;
	if (v == BW_RL_LIMITED_FIRST)
		rate_note(w, key, "rate-limit", r->qps);
	return true;
}

enum rrl { RRL_SEND, RRL_DROP, RRL_SLIP };

/* server.rrl: an answer over UDP (rcode `rcode`) that the same prefix got too often this
 * second is dropped, or every slip-th one sent truncated instead (TC: a real client retries
 * over TCP, a spoofed victim gets no amplification). */
static enum rrl rrl_check(struct bw_worker *w, const struct sockaddr *peer,
			  const struct bw_query *q, unsigned rcode)
{
	const struct bw_conf *conf = w->srv->conf; /* read at start: no state held here */
	if (!conf->server.rrl_rps || !q->qname_len)
		return RRL_SEND;
	uint8_t key[17 + BW_DNS_MAXNAME + 3];
	size_t n = bw_sockaddr_prefix(peer, conf->server.rl_prefix_v4,
					   conf->server.rl_prefix_v6, key);
	if (!n)
		return RRL_SEND;
	memcpy(key + n, q->qname_lc, q->qname_len);
	n += q->qname_len;
	key[n++] = (uint8_t)(q->qtype >> 8);
	key[n++] = (uint8_t)q->qtype;
	key[n++] = (uint8_t)rcode; /* NXDOMAIN floods of random names are one answer */
	enum bw_rl_verdict v = bw_ratelimit_take(w->srv->rrl, key, n, conf->server.rrl_rps,
						 conf->server.rrl_rps);
	if (v == BW_RL_PASS)
		return RRL_SEND;
	if (v == BW_RL_LIMITED_FIRST)
		rate_note(w, key, "rrl", conf->server.rrl_rps);
	if (conf->server.rrl_slip && ++w->rrl_slip_n % conf->server.rrl_slip == 0) {
		w->stats.rrl_slipped++;
		return RRL_SLIP;
	}
	w->stats.rrl_dropped++;
	return RRL_DROP;
}

/* Access control and parsing. */
static enum bw_stage stage_parse(struct job *j, const uint8_t *pkt, size_t len)
{
	struct bw_worker *w = j->w;
	if (len >= BW_DNS_HDR && ((pkt[2] >> 3) & 0xf) == BW_OPCODE_NOTIFY_Q && w->srv->notify) {
		/* RPZ by transfer: the feed manager checks the sender (a primary, TSIG) and
		 * answers; what it does not answer (no such zones) is treated as any query */
		j->out_len = w->srv->notify(w->srv->notify_ctx, j->o->peer, pkt, len, j->out,
					    BW_MIN(j->cap, (size_t)512));
		if (j->out_len)
			return BW_STAGE_DONE;
	}
	const struct bw_conf *conf = w->state->conf;
	enum bw_acl_action acl = bw_access_check(conf, j->o->peer);
	if (acl == BW_ACL_DROP) {
		w->stats.dropped++;
		return BW_STAGE_DROP;
	}
	enum client_id id = client_id(w, j->o, &j->s.client);
	int rc = bw_query_parse(pkt, len, &j->s.q);
	if (rc == BW_ESHORT) {
		w->stats.dropped++;
		return BW_STAGE_DROP;
	}
	j->limit = answer_limit(&j->s.q, j->o->via);
	if (id == ID_UNKNOWN || id == ID_MISSING)
		return refuse_client_id(j, id, rc);
	if (acl == BW_ACL_REFUSE && id != ID_KNOWN) {
		w->stats.refused++;
		if (rc != 0)
			j->s.q.qname_len = 0;
		return stage_error(j, BW_RCODE_REFUSED, BW_EDE_PROHIBITED, NULL);
	}
	if (rc == BW_ENOTSUP)
		return stage_error(j, BW_RCODE_NOTIMP, BW_EDE_NONE, NULL);
	if (rc != 0) {
		w->stats.formerr++;
		return stage_error(j, BW_RCODE_FORMERR, BW_EDE_NONE, NULL);
	}
	if (j->s.q.has_edns && j->s.q.edns_version != 0)
		return stage_error(j, BW_RCODE_BADVERS, BW_EDE_NONE, NULL);
	if (j->s.q.qclass != BW_C_IN || j->s.q.qtype == BW_T_AXFR || j->s.q.qtype == BW_T_IXFR ||
	    j->s.q.qtype == BW_T_OPT) {
		w->stats.refused++;
		return stage_error(j, BW_RCODE_REFUSED, BW_EDE_NONE, NULL);
	}
	if (bw_ddr_is_query(&j->s.q)) {
		/* RFC 9462: our own encrypted endpoints, whatever the policy says */
		bw_ddr_answer(conf, &j->s.q, &w->meta, w->body, sizeof(w->body));
		return write_answer(j);
	}
	if (j->s.client < 0 && w->state->clients) {
		enum bw_client_by by;
		j->s.client = bw_clients_by_addr(w->state->clients,
						 j->s.q.has_mac ? j->s.q.mac : NULL, j->o->peer, &by);
	}
	if (rate_limited(j)) {
		if (j->o->via == BW_VIA_UDP)
			return BW_STAGE_DROP;
		return stage_error(j, BW_RCODE_REFUSED, BW_EDE_OTHER, "rate limited");
	}
	struct bw_profile_ask ask = {
	    .client = j->s.client,
	    .minute = j->s.client >= 0 ? bw_clients_minute_now() : 0,
	    .listener = j->o->listener,
	    .peer = j->o->peer,
	    .sni = j->o->sni,
	    .doh_path = j->o->doh_path,
	};
	j->s.profile = bw_choose_profile(w->state->policy, conf, &ask);
	bw_obs_profile(w, j->s.profile);
	j->parsed = true;
	return BW_STAGE_NEXT;
}

/* CLIENT-IP triggers: they depend on who asks, so they run before the cache (only for
 * profiles that have such rules) and their answers are not cached. */
static enum bw_stage stage_client(struct job *j)
{
	struct bw_worker *w = j->w;
	struct bw_verdict v;
	/* a paused profile (bulwarkctl pause): no rule applies; one load per query */
	if (bw_state_paused(w->state, j->s.profile)) {
		j->s.paused = true;
		return BW_STAGE_NEXT;
	}
	/* most profiles have no CLIENT-IP rule: one call says so, before the cache */
	if (!bw_policy_has_client_rules(w->state->policy, j->s.profile) ||
	    !bw_policy_decide_client(w->state->policy, j->s.profile, j->o->peer, j->s.q.qname_lc,
				     j->s.q.qname_len, &v))
		return BW_STAGE_NEXT;
	static const struct bw_match client = {.kind = BW_MATCH_CLIENT};
	enum synth r = synth_verdict(w, &j->s.q, j->o->via, &v, &client, &w->meta,
				     w->body, sizeof(w->body));
	if (r == SYNTH_NONE && v.action == BW_ACT_PASSTHRU) {
		/* PASSTHRU for this client: resolve without policy, and keep the answer out of
		 * the cache the profile's other clients are answered from (it may be a listed
		 * name's real address) */
		j->s.passthru = true;
		j->s.nocache = true;
	}
	return synth_stage(j, r, false);
}

/* A CNAME redirect to a walled garden is only useful when the client also gets the
 * garden's address (as BIND answers): resolve the target instead of the query name and
 * answer with the CNAME followed by the target's records. Not for CNAME or ANY queries,
 * which the CNAME alone answers. Returns 0 when the query goes on to resolve the target. */
static int prepare_redirect(struct job *j)
{
	const struct bw_verdict *v = &j->verdict;
	if (j->s.q.qtype == BW_T_CNAME || j->s.q.qtype == BW_T_ANY)
		return BW_EINVAL;
	size_t len = v->target_len;
	if (v->target_wildcard) {
		len = j->s.q.qname_len - 1u + v->target_len;
		if (len > BW_DNS_MAXNAME)
			return BW_ERANGE;
		memcpy(j->s.rname, j->s.q.qname_lc, j->s.q.qname_len - 1u);
		memcpy(j->s.rname + j->s.q.qname_len - 1, v->target, v->target_len);
	} else {
		if (len > BW_DNS_MAXNAME)
			return BW_ERANGE;
		memcpy(j->s.rname, v->target, len);
	}
	j->s.rlen = (uint8_t)len;
	j->s.redirect = true;
	j->s.passthru = true; /* the garden's own answer is not policed again */
	bw_obs_block(j->w, &j->s.q, v, NULL);
	tlm_note(j->w, v, BW_TLM_BLOCKED, NULL);
	return 0;
}

/* The guard (look-alikes, newly-seen) for a name no feed matched: a block is answered and
 * cached like a feed's; an alert or a short TTL is resolved but not cached, so that every
 * query raises its event again (docs/guard.md). */
static enum bw_stage stage_guard(struct job *j)
{
	struct bw_worker *w = j->w;
	struct bw_guard_result r;
	enum bw_guard_outcome g = bw_core_guard(w, &j->s.q, j->s.profile, j->o->peer, &r);
	if (w->tlm_cur && (r.lookalike || r.newly_seen)) {
		/* a security event: blocked, or answered and reported (alert, newly seen) */
		struct bw_verdict gv = {.action = g == BW_GUARD_BLOCK ? BW_ACT_NXDOMAIN : BW_ACT_ALLOW,
					.feed = -1};
		char rule[120];
		if (r.lookalike)
			snprintf(rule, sizeof(rule), "imitates %s (%s)", r.hit.protected,
				 bw_guard_kind_name(r.hit.kind));
		else
			snprintf(rule, sizeof(rule), "newly seen");
		struct bw_match m = {.kind = BW_MATCH_GUARD, .text = rule};
		tlm_note(w, &gv, g == BW_GUARD_BLOCK ? BW_TLM_BLOCKED : BW_TLM_LOG_ONLY, &m);
		snprintf(w->tlm_cur->feed_name, sizeof(w->tlm_cur->feed_name), "guard");
		snprintf(w->tlm_cur->category, sizeof(w->tlm_cur->category), "%s",
			 r.lookalike ? "look-alike" : "newly-seen");
	}
	switch (g) {
	case BW_GUARD_PASS:
		return BW_STAGE_NEXT;
	case BW_GUARD_ANSWER:
		j->s.nocache = true;
		j->s.ttl_override = r.ttl;
		return BW_STAGE_NEXT;
	case BW_GUARD_BLOCK:
		break;
	}
	bw_answer_meta_init(&w->meta);
	w->meta.rcode = BW_RCODE_NXDOMAIN;
	w->meta.ttl = BW_BLOCKED_TTL;
	w->meta.ede = BW_EDE_BLOCKED;
	snprintf(w->meta.ede_text, sizeof(w->meta.ede_text), "%s", r.text);
	w->stats.blocked++;
	return synth_stage(j, SYNTH_ANSWER, true);
}

/* A query of a paused profile after a cache miss: answered as if no feed listed anything
 * (no rule, no guard, nothing checked in the answer). A name a rule would have blocked is
 * logged as "paused" (a log-only match, so blocked-only logging keeps it) and not cached,
 * so that each query for it is logged while the pause lasts. */
static enum bw_stage stage_paused(struct job *j)
{
	struct bw_worker *w = j->w;
	j->s.passthru = true;
	if (bw_policy_decide_qname(w->state->policy, j->s.profile, j->s.q.qname_lc,
				   j->s.q.qname_len, &j->verdict) != BW_DECIDE_NONE &&
	    !j->verdict.allowlisted && !j->verdict.log_only && j->verdict.action != BW_ACT_ALLOW &&
	    j->verdict.action != BW_ACT_PASSTHRU) {
		tlm_note(w, &j->verdict, BW_TLM_LOG_ONLY | BW_TLM_PAUSED, NULL);
		j->s.nocache = true;
	}
	return BW_STAGE_NEXT;
}

/* Policy before resolution: QNAME triggers, allowlists first. Runs on cache misses only:
 * the cache key carries the profile and the policy generation, so a cached answer
 * (policy answers included) was produced under the same verdict. */
static enum bw_stage stage_policy(struct job *j)
{
	struct bw_worker *w = j->w;
	const struct bw_policy *pol = w->state->policy;
	if (j->s.paused)
		return stage_paused(j);
	if (j->s.passthru)
		return BW_STAGE_NEXT;
	switch (bw_policy_decide_qname(pol, j->s.profile, j->s.q.qname_lc, j->s.q.qname_len,
				       &j->verdict)) {
	case BW_DECIDE_NONE:
		return stage_guard(j);
	case BW_DECIDE_ALLOWLISTED:
		w->stats.allowlisted++;
		tlm_note(w, &j->verdict, BW_TLM_ALLOWLISTED, NULL);
		j->s.passthru = true; /* the allowlist wins over every trigger */
		return BW_STAGE_NEXT;
	case BW_DECIDE_PASSTHRU:
		j->s.passthru = true;
		tlm_note(w, &j->verdict, BW_TLM_PASSTHRU, NULL);
		return BW_STAGE_NEXT;
	case BW_DECIDE_REDIRECT:
		if (prepare_redirect(j) == 0)
			return BW_STAGE_NEXT;
		/* a CNAME or ANY query, or no room for the target: the CNAME alone answers */
		if (j->verdict.feed <= bw_policy_first_post_feed(pol, j->s.profile))
			break;
		/* fall through */
	case BW_DECIDE_DEFER:
		j->s.deferred = true; /* an earlier feed's response-IP rule may still win */
		return BW_STAGE_NEXT;
	case BW_DECIDE_RULE:
		break;
	}
	enum synth r = synth_verdict(w, &j->s.q, j->o->via, &j->verdict, NULL, &w->meta, w->body,
				     sizeof(w->body));
	return synth_stage(j, r, true);
}

static void make_key(struct bw_cache_key *k, const struct bw_query *q, unsigned profile,
		     uint64_t generation)
{
	k->qname_lc = q->qname_lc;
	k->qname_len = q->qname_len;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->flags = (uint8_t)((q->do_bit ? BW_CACHE_DO : 0) | ((q->flags & BW_DNS_CD) ? BW_CACHE_CD : 0) |
			     ((q->flags & BW_DNS_AD) ? BW_CACHE_AD : 0));
	k->profile = (uint16_t)profile;
	k->generation = generation;
	bw_cache_key_hash(k);
}

/* Is the first answer record of msg (as the cache wrote it: the question uncompressed,
 * then the answer) a CNAME, for a query that did not ask for one? */
static bool answer_is_cname(const uint8_t *msg, size_t len, const struct bw_query *q)
{
	size_t off = BW_DNS_HDR + q->qname_len + 4;
	if (q->qtype == BW_T_CNAME || len < off + 2 || !(msg[6] | msg[7]))
		return false;
	if ((msg[off] & 0xc0) == 0xc0)
		off += 2;
	else {
		int nl = bw_name_len(msg + off, len - off);
		if (nl <= 0)
			return false;
		off += (size_t)nl;
	}
	return off + 2 <= len && msg[off] == 0 && msg[off + 1] == BW_T_CNAME;
}

/* Telemetry: a cached policy answer's rule, for the log (blocked queries only). */
static void note_cached_policy(struct bw_worker *w, unsigned profile, const struct bw_query *q)
{
	struct bw_verdict v;
	if (bw_policy_match_qname(w->state->policy, profile, q->qname_lc, q->qname_len, &v) &&
	    !v.log_only)
		tlm_note(w, &v, BW_TLM_BLOCKED, NULL);
	else
		w->tlm_cur->flags |= BW_TLM_BLOCKED; /* a CNAME or address rule */
}

static enum bw_stage stage_cache(struct job *j)
{
	struct bw_worker *w = j->w;
	make_key(&j->s.key, &j->s.q, j->s.profile, w->state->cache_gen);
	if (j->s.passthru)
		return BW_STAGE_NEXT; /* a client PASSTHRU must not see policy answers */
	const struct bw_policy *pol = w->state->policy;
	bool delta = bw_policy_has_overlay(pol);
	if (delta && bw_policy_overlay_touches(pol, j->s.q.qname_lc, j->s.q.qname_len)) {
		w->stats.cache_misses++; /* an IXFR changed a rule for this name since the
					    cached answer was made: decide afresh */
		return BW_STAGE_NEXT;
	}
	uint16_t ede = BW_EDE_NONE;
	int n = bw_cache_lookup_ede(w->srv->cache, &j->s.key, &j->s.q, bw_now_sec(), false, j->limit,
				    j->out, j->cap, &ede);
	/* EDE 15-17: an answer the policy made */
	bool policy_answer = ede == BW_EDE_BLOCKED || ede == BW_EDE_CENSORED || ede == BW_EDE_FILTERED;
	if (n > 0 && delta && (policy_answer || answer_is_cname(j->out, (size_t)n, &j->s.q))) {
		/* a chain's target may be what the IXFR changed, and a policy answer may rest on
		 * a rule it removed: decided again (libunbound's own cache makes this cheap) */
		n = BW_ENOENT;
	}
	if (n > 0) {
		w->stats.cache_hits++;
		w->stats.m.blocked_cached += policy_answer;
		j->out_len = (size_t)n;
		j->cache_hit = true;
		if (w->tlm_cur && policy_answer)
			note_cached_policy(w, j->s.profile, &j->s.q);
		return BW_STAGE_DONE;
	}
	j->s.stale_possible = n == BW_ESTALE;
	w->stats.cache_misses++;
	return BW_STAGE_NEXT;
}

/* Names answered here (local/local.h: local records, special-use names): on cache misses,
 * before the policy (the admin's own data wins over feeds), cached like a policy answer. */
static enum bw_stage stage_local(struct job *j)
{
	struct bw_worker *w = j->w;
	if (bw_local_answer(w->state->local, &j->s.q, &w->meta, w->body, sizeof(w->body)) <= 0)
		return BW_STAGE_NEXT;
	return synth_stage(j, SYNTH_ANSWER, true);
}

/* RFC 8482: QTYPE ANY gets a minimal answer (after the policy), never a full ANY. */
static enum bw_stage stage_any(struct job *j)
{
	struct bw_worker *w = j->w;
	if (j->s.q.qtype != BW_T_ANY)
		return BW_STAGE_NEXT;
	if (bw_answer_any(&j->s.q, &w->meta, w->body, sizeof(w->body)) != 0)
		return BW_STAGE_DROP;
	if (!j->s.nocache)
		bw_cache_store(w->srv->cache, &j->s.key, &w->meta, w->body, bw_now_sec());
	return write_answer(j);
}

static struct bw_qctx *qctx_get(struct bw_worker *w)
{
	struct bw_qctx *x = w->free_list;
	if (x)
		w->free_list = x->next_free;
	else if (!(x = bw_worker_qctx_new(w)))
		return NULL;
	x->next_free = NULL;
	x->busy = true;
	w->inflight++;
	return x;
}

/* The key a query's client holds its in-flight share by (tcp-client-ipv4/6-prefix). */
static size_t share_key(const struct bw_worker *w, const struct sockaddr *peer, uint8_t key[17])
{
	const struct bw_conf *conf = w->srv->conf;
	return bw_sockaddr_prefix(peer, conf->server.tcp_client_v4_prefix,
				       conf->server.tcp_client_v6_prefix, key);
}

/* The share of the worker's resolver slots one client may hold. */
static unsigned share_limit(const struct bw_worker *w)
{
	unsigned n = w->srv->conf->server.max_inflight_per_client;
	return n ? n : BW_MAX(w->max_inflight / 4, 1u);
}

static void qctx_put(struct bw_qctx *x)
{
	struct bw_worker *w = x->w;
	if (x->co_owner) {
		/* the answer is in the cache by now (unless it failed): tell who waited */
		uint64_t waiters[BW_COALESCE_WORDS];
		bw_coalesce_leave(w->srv->coalesce, x, waiters);
		bw_coalesce_notify(w->srv, waiters, x->s.key.hash, x->co_failed);
	}
	bw_coalesce_unpark(x);
	if (x->shared) {
		uint8_t key[17];
		size_t n = share_key(w, (const struct sockaddr *)&x->peer, key);
		bw_share_put(&w->share, key, n);
		x->shared = false;
	}
	x->busy = false;
	x->reply = NULL;
	x->next_free = w->free_list;
	w->free_list = x;
	w->inflight--;
	if (w->draining && w->inflight == 0)
		bw_worker_wake(w);
}

static size_t build_answer(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len,
			   enum bw_sec sec, const char *why_bogus, uint8_t *out, size_t cap);

/* Starts x's resolution: behind another worker's for the same key (coalesce.c), or by
 * libunbound. Returns 0 (the answer comes later), 1 (libunbound answered at once:
 * bw_resolver_sync_result) or an error. */
static int start_resolution(struct bw_qctx *x)
{
	struct bw_worker *w = x->w;
	/* a redirect resolves its target instead of the query name */
	const uint8_t *name = x->s.redirect ? x->s.rname : x->s.q.qname_lc;
	size_t name_len = x->s.redirect ? x->s.rlen : x->s.q.qname_len;
	x->resolver = w->resolver; /* the current one: an old one may still finish others */
	/* only what the cache will hold under the key can be handed from worker to worker */
	if (w->srv->coalesce && !x->s.redirect && !x->s.nocache &&
	    bw_coalesce_join(w->srv->coalesce, x) == BW_JOIN_WAIT) {
		bw_coalesce_park(x);
		return 0;
	}
	return bw_resolver_query(w->resolver, name, name_len, x->s.q.qtype, x->s.q.qclass, x,
				 &x->ub_id);
}

static enum bw_stage stage_resolve(struct job *j)
{
	struct bw_worker *w = j->w;
	/* one client's flood of names nobody asked before must not take every slot */
	uint8_t key[17];
	size_t klen = share_key(w, j->o->peer, key);
	if (klen && !bw_share_take(&w->share, key, klen, share_limit(w))) {
		w->stats.share_refused++;
		return stage_error(j, BW_RCODE_SERVFAIL, BW_EDE_OTHER, "too many queries in flight");
	}
	struct bw_qctx *x = qctx_get(w);
	if (!x) {
		if (klen)
			bw_share_put(&w->share, key, klen);
		w->stats.overload++;
		return stage_error(j, BW_RCODE_SERVFAIL, BW_EDE_OTHER, "resolver overloaded");
	}
	x->shared = klen > 0;
	x->s = j->s; /* the query's state, whole (the telemetry verdict included) */
	x->s.key.qname_lc = x->s.q.qname_lc;
	x->via = j->o->via;
	x->fd = j->o->fd;
	x->reply = j->o->reply;
	memcpy(&x->peer, j->o->peer, j->o->peerlen);
	x->peerlen = j->o->peerlen;
	x->note = w->note;
	/* the client's name while the state that matched it is held: a reload may free that
	 * config before the answer comes */
	const char *cname = w->tlm ? tlm_client_name(w, j->s.client) : NULL;
	size_t cn = cname ? strnlen(cname, sizeof(x->client_name) - 1) : 0;
	if (cn)
		memcpy(x->client_name, cname, cn);
	x->client_name[cn] = 0;
	x->ub_id = 0;
	x->answered = false;
	x->co_failed = false;
	if (j->s.redirect) {
		x->rttl = j->verdict.ttl ? j->verdict.ttl : BW_BLOCKED_TTL;
		bw_verdict_ede_text(&j->verdict, NULL, x->rtext, sizeof(x->rtext));
	}
	if (x->via == BW_VIA_TCP)
		bw_reply_hold(x->reply);
	const struct bw_conf *conf = w->srv->conf;
	unsigned ms = conf->resolver.timeout_ms ? conf->resolver.timeout_ms : 5000;
	x->deadline_ms = bw_now_ms() + ms;
	/* RFC 8767 client response timer: with a stale answer in hand, wait at most 1.8 s */
	x->s.stale_possible = j->s.stale_possible && conf->cache.stale_ttl;
	if (x->s.stale_possible && ms > BW_STALE_WAIT_MS)
		ms = BW_STALE_WAIT_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(x->timer, &tv);
	int rc = start_resolution(x);
	if (rc == 0)
		return BW_STAGE_ASYNC;
	evtimer_del(x->timer);
	enum bw_stage st;
	if (rc == 1) {
		/* answered at once (libunbound's own cache): reply in this batch */
		int err;
		const uint8_t *pkt;
		size_t plen;
		enum bw_sec sec;
		const char *why;
		bw_resolver_sync_result(w->resolver, &err, &pkt, &plen, &sec, &why);
		j->out_len = build_answer(x, err, pkt, plen, sec, why, j->out, j->cap);
		st = j->out_len ? BW_STAGE_DONE : BW_STAGE_DROP;
	} else {
		w->stats.servfail++;
		st = stage_error(j, BW_RCODE_SERVFAIL, BW_EDE_OTHER, "resolver unavailable");
	}
	if (x->via == BW_VIA_TCP)
		bw_reply_release(x->reply);
	qctx_put(x);
	return st;
}

size_t bw_pipeline_query(struct bw_worker *w, const struct bw_origin *o, const uint8_t *pkt,
			 size_t len, uint8_t *out, size_t cap)
{
	struct job j;
	j.w = w;
	j.o = o;
	j.out = out;
	j.cap = cap;
	j.out_len = 0;
	j.s.stale_possible = false;
	j.s.passthru = false;
	j.s.paused = false;
	j.s.deferred = false;
	j.s.redirect = false;
	j.s.nocache = false;
	j.s.ttl_override = 0;
	j.s.profile = 0;
	j.s.client = -1;
	j.s.tv.flags = 0;
	j.parsed = false;
	j.cache_hit = false;
	struct bw_tlm_verdict *tlm_prev = w->tlm_cur;
	if (w->tlm) {
		j.s.t_start_ns = bw_now_ns();
		w->tlm_cur = &j.s.tv;
	}
	w->stats.queries++;

	enum bw_stage st = stage_parse(&j, pkt, len);
	if (st == BW_STAGE_NEXT)
		st = stage_client(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_cache(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_local(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_policy(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_any(&j);
	if (st == BW_STAGE_NEXT)
		st = stage_resolve(&j);
	if (st == BW_STAGE_DONE && o->via == BW_VIA_UDP && j.parsed && j.out_len >= BW_DNS_HDR) {
		enum rrl r = rrl_check(w, o->peer, &j.s.q, out[3] & 0x0f);
		if (r == RRL_SLIP)
			j.out_len = tc_answer(&j.s.q, out, cap);
		if (r == RRL_DROP || !j.out_len)
			st = BW_STAGE_DROP;
	}
	bw_obs_query(w, o, pkt, len, st == BW_STAGE_DONE ? out : NULL, j.out_len);
	if (w->tlm) {
		if (j.parsed && st != BW_STAGE_ASYNC)
			tlm_log(w, &j.s.tv, &j.s.q, j.s.profile, o->via, o->peer,
				tlm_client_name(w, j.s.client), j.s.t_start_ns, j.cache_hit, out,
				st == BW_STAGE_DONE ? j.out_len : 0);
		w->tlm_cur = tlm_prev;
	}
	return st == BW_STAGE_DONE ? j.out_len : 0;
}

/* ---- asynchronous part ---- */

static void deliver(struct bw_qctx *x, const uint8_t *msg, size_t len)
{
	if (x->answered) {
		/* the client already has a (stale) answer */
		if (x->via == BW_VIA_TCP)
			bw_reply_release(x->reply);
		return;
	}
	if (x->via == BW_VIA_UDP) {
		uint8_t tc[BW_DNS_HDR + BW_DNS_MAXNAME + 4 + 64];
		enum rrl r = len >= BW_DNS_HDR ? rrl_check(x->w, (struct sockaddr *)&x->peer, &x->s.q,
							   msg[3] & 0x0f)
					       : RRL_SEND;
		if (r == RRL_DROP)
			return;
		if (r == RRL_SLIP) {
			len = tc_answer(&x->s.q, tc, sizeof(tc));
			msg = tc;
		}
		if (len && sendto(x->fd, msg, len, MSG_DONTWAIT, (struct sockaddr *)&x->peer,
				  x->peerlen) < 0)
			bw_debug("sendto: %s", strerror(errno));
	} else if (len) {
		bw_reply_answer(x->reply, msg, len);
	} else {
		bw_reply_release(x->reply);
	}
}

/* A stale answer for x from the cache (RFC 8767: TTL 30, EDE 3) into out; its length, or 0
 * when serve-stale is off or nothing usable is cached. */
static size_t stale_answer(struct bw_qctx *x, uint8_t *out, size_t cap)
{
	struct bw_worker *w = x->w;
	if (!w->srv->conf->cache.stale_ttl)
		return 0;
	int n = bw_cache_lookup(w->srv->cache, &x->s.key, &x->s.q, bw_now_sec(), true,
				answer_limit(&x->s.q, x->via), out, cap);
	if (n <= 0)
		return 0;
	w->stats.stale++;
	return (size_t)n;
}

/* Upstream failed: a stale answer if we have one (RFC 8767), else SERVFAIL + EDE. */
static size_t fail_answer(struct bw_qctx *x, uint16_t ede, const char *text, uint8_t *out,
			  size_t cap)
{
	x->co_failed = true; /* what the queries parked behind it will answer too */
	size_t n = stale_answer(x, out, cap);
	if (n)
		return n;
	x->w->stats.servfail++;
	int r = bw_answer_error(&x->s.q, BW_RCODE_SERVFAIL, ede, text, out, cap);
	return r > 0 ? (size_t)r : 0;
}

/* Policy after resolution: the query name when its verdict was deferred, every name of
 * the answer's CNAME chain, every A/AAAA address. Rewrites (m, body) when a rule wins.
 * Returns the synth result. */
static enum synth post_policy(struct bw_qctx *x, struct bw_answer_meta *m, uint8_t *body,
			      size_t cap)
{
	struct bw_worker *w = x->w;
	struct bw_answer_decision d;
	if (x->s.passthru ||
	    !bw_policy_decide_answer(w->state->policy, x->s.profile, x->s.q.qname_lc, x->s.q.qname_len,
				     x->s.deferred, &w->chain, m, body, &d))
		return SYNTH_NONE;
	enum synth r = synth_verdict(w, &x->s.q, x->via, &d.v, &d.via, m, body, cap);
	if (r != SYNTH_NONE) {
		if (d.via.kind == BW_MATCH_ADDRESS)
			w->stats.blocked_ip++;
		else if (d.via.kind == BW_MATCH_CNAME)
			w->stats.blocked_cname++;
	}
	return r;
}

/* The answer to a redirected query: the CNAME to the target, then (when the target
 * resolved and validated) the target's own records, compressed against the target name
 * inside the CNAME's RDATA. The rcode is the target's (a CNAME into a name that does not
 * exist is an NXDOMAIN, RFC 6604). */
static size_t redirect_answer(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len,
			      enum bw_sec sec, uint8_t *out, size_t cap)
{
	struct bw_worker *w = x->w;
	struct bw_answer_meta *m = &w->meta;
	if (bw_answer_synth_cname(&x->s.q, x->s.rname, x->s.rlen, false, x->rttl, m, w->body,
				  sizeof(w->body)) != 0)
		return 0;
	size_t head = m->body_len;
	if (!err && !(sec == BW_SEC_BOGUS && !(x->s.q.flags & BW_DNS_CD))) {
		struct bw_query tq = x->s.q;
		memcpy(tq.qname, x->s.rname, x->s.rlen);
		memcpy(tq.qname_lc, x->s.rname, x->s.rlen);
		tq.qname_len = x->s.rlen;
		/* header, question, then the CNAME record: owner pointer, type, class, TTL and
		 * RDLENGTH (12 bytes) before its RDATA, the target name */
		size_t at = BW_DNS_HDR + x->s.q.qname_len + 4u + 12u;
		struct bw_answer_meta t;
		if (bw_answer_from_wire_at(pkt, len, &tq, x->s.q.do_bit, at, &t, w->body + head,
					   sizeof(w->body) - head, NULL) == 0 &&
		    m->nttl + t.nttl <= BW_ANSWER_MAXTTL) {
			m->rcode = t.rcode;
			m->ancount = (uint16_t)(m->ancount + t.ancount);
			m->nscount = t.nscount;
			m->arcount = t.arcount;
			for (unsigned i = 0; i < t.nttl; i++)
				m->ttl_off[m->nttl++] = (uint16_t)(t.ttl_off[i] + head);
			if (t.ttl)
				m->ttl = BW_MIN(m->ttl, t.ttl);
			m->body_len = (uint16_t)(head + t.body_len);
		}
	}
	m->ede = BW_EDE_BLOCKED;
	snprintf(m->ede_text, sizeof(m->ede_text), "%s", x->rtext);
	if (!err)
		bw_cache_store(w->srv->cache, &x->s.key, m, w->body, bw_now_sec());
	int n = bw_answer_write(&x->s.q, m, w->body, 0, 0, answer_limit(&x->s.q, x->via), out, cap);
	return n > 0 ? (size_t)n : 0;
}

/* Turns the resolver's result for x into the answer to send, in out. Returns its length
 * (0: nothing to send). Needs the policy state held. */
static size_t build_answer(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len,
			   enum bw_sec sec, const char *why_bogus, uint8_t *out, size_t cap)
{
	struct bw_worker *w = x->w;
	size_t limit = answer_limit(&x->s.q, x->via);
	struct bw_answer_meta *m = &w->meta;

	if (x->s.redirect)
		return redirect_answer(x, err, pkt, len, sec, out, cap);
	if (err)
		return fail_answer(x, BW_EDE_NO_REACHABLE_AUTHORITY, "upstream unreachable", out,
				   cap);
	int rc = bw_answer_from_wire(pkt, len, &x->s.q, x->s.q.do_bit, m, w->body, sizeof(w->body),
				     &w->chain);
	if (rc != 0)
		return fail_answer(x, BW_EDE_NETWORK_ERROR, "malformed upstream answer", out, cap);
	if (sec == BW_SEC_BOGUS && !(x->s.q.flags & BW_DNS_CD)) {
		w->stats.bogus++;
		w->stats.servfail++;
		char text[sizeof(m->ede_text)];
		snprintf(text, sizeof(text), "%s", why_bogus ? why_bogus : "validation failed");
		int n = bw_answer_error(&x->s.q, BW_RCODE_SERVFAIL, BW_EDE_DNSSEC_BOGUS, text, out,
					cap);
		return n > 0 ? (size_t)n : 0;
	}
	if (m->rcode == BW_RCODE_SERVFAIL)
		return fail_answer(x, BW_EDE_NO_REACHABLE_AUTHORITY, "upstream failure", out, cap);
	m->secure = (uint8_t)sec;
	if (sec == BW_SEC_SECURE && (x->s.q.do_bit || (x->s.q.flags & BW_DNS_AD)))
		m->flags |= BW_DNS_AD;
	switch (post_policy(x, m, w->body, sizeof(w->body))) {
	case SYNTH_DROP:
		return 0;
	case SYNTH_TC:
		return tc_answer(&x->s.q, out, cap);
	case SYNTH_NONE:
	case SYNTH_ANSWER:
		break;
	}
	if (!x->s.nocache)
		bw_cache_store(w->srv->cache, &x->s.key, m, w->body, bw_now_sec());
	w->stats.resolved++;
	int n = bw_answer_write(&x->s.q, m, w->body, 0, x->s.ttl_override, limit, out, cap);
	return n > 0 ? (size_t)n : 0;
}

static void finish(struct bw_qctx *x, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
		   const char *why_bogus)
{
	struct bw_worker *w = x->w;
	size_t n = 0;
	struct bw_tlm_verdict *tlm_prev = w->tlm_cur;
	if (w->tlm)
		w->tlm_cur = &x->s.tv;
	bw_worker_hold_state(w);
	if (!(x->answered && err)) /* a late failure after a stale answer changes nothing */
		n = build_answer(x, err, pkt, len, sec, why_bogus, w->out, sizeof(w->out));
	if (w->tlm) {
		if (!x->answered) /* else logged when the stale answer went out */
			tlm_log(w, &x->s.tv, &x->s.q, x->s.profile, x->via,
				(const struct sockaddr *)&x->peer, x->client_name, x->s.t_start_ns,
				false, w->out, n);
		w->tlm_cur = tlm_prev;
	}
	bw_worker_drop_state(w);
	bw_obs_answer(x, w->out, n);
	deliver(x, w->out, n);
	qctx_put(x);
}

void bw_pipeline_resolved(void *arg, int err, const uint8_t *pkt, size_t len, enum bw_sec sec,
			  const char *why_bogus)
{
	struct bw_qctx *x = arg;
	if (!x->busy)
		return; /* timed out and already answered */
	x->ub_id = 0;
	evtimer_del(x->timer);
	bw_obs_backend(x);
	finish(x, err, pkt, len, sec, why_bogus);
}

void bw_pipeline_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bw_qctx *x = arg;
	struct bw_worker *w = x->w;
	if (!x->busy)
		return;
	uint64_t now = bw_now_ms();
	if (!x->answered && x->s.stale_possible && now < x->deadline_ms) {
		/* answer stale now, keep resolving until the deadline to refresh the cache */
		size_t n = stale_answer(x, w->out, sizeof(w->out));
		if (n) {
			bw_obs_answer(x, w->out, n);
			if (x->via == BW_VIA_UDP)
				deliver(x, w->out, n);
			else
				bw_reply_send(x->reply, w->out, n);
			x->answered = true;
			if (w->tlm) {
				bw_worker_hold_state(w);
				tlm_log(w, &x->s.tv, &x->s.q, x->s.profile, x->via,
					(const struct sockaddr *)&x->peer, x->client_name,
					x->s.t_start_ns, false, w->out, n);
				bw_worker_drop_state(w);
			}
			uint64_t left = x->deadline_ms - now;
			struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
			evtimer_add(x->timer, &tv);
			return;
		}
	}
	bw_resolver_cancel(x->resolver, x->ub_id);
	x->ub_id = 0;
	finish(x, BW_RCODE_SERVFAIL, NULL, 0, BW_SEC_INSECURE, NULL);
}

void bw_pipeline_unparked(struct bw_qctx *x)
{
	struct bw_worker *w = x->w;
	if (!x->busy)
		return;
	uint16_t ede = BW_EDE_NONE;
	bw_worker_hold_state(w);
	int n = bw_cache_lookup_ede(w->srv->cache, &x->s.key, &x->s.q, bw_now_sec(), false,
				    answer_limit(&x->s.q, x->via), w->out, sizeof(w->out), &ede);
	if (n <= 0 && x->co_failed) {
		/* the upstream failed for the owner: the same failure, at once (a stale answer,
		 * else SERVFAIL) rather than another worker's turn at it */
		bw_worker_drop_state(w);
		evtimer_del(x->timer);
		finish(x, BW_RCODE_SERVFAIL, NULL, 0, BW_SEC_INSECURE, NULL);
		return;
	}
	if (n <= 0) {
		/* an answer the cache does not keep: on our own, or behind a new owner */
		bw_worker_drop_state(w);
		int rc = start_resolution(x);
		if (rc == 0)
			return;
		int err = BW_RCODE_SERVFAIL;
		const uint8_t *pkt = NULL;
		size_t len = 0;
		enum bw_sec sec = BW_SEC_INSECURE;
		const char *why = NULL;
		if (rc == 1)
			bw_resolver_sync_result(w->resolver, &err, &pkt, &len, &sec, &why);
		evtimer_del(x->timer);
		finish(x, err, pkt, len, sec, why);
		return;
	}
	evtimer_del(x->timer);
	w->stats.coalesced++;
	if (w->tlm && !x->answered) {
		struct bw_tlm_verdict *tlm_prev = w->tlm_cur;
		w->tlm_cur = &x->s.tv;
		if (ede == BW_EDE_BLOCKED || ede == BW_EDE_CENSORED || ede == BW_EDE_FILTERED)
			note_cached_policy(w, x->s.profile, &x->s.q);
		tlm_log(w, &x->s.tv, &x->s.q, x->s.profile, x->via, (const struct sockaddr *)&x->peer,
			x->client_name, x->s.t_start_ns, false, w->out, (size_t)n);
		w->tlm_cur = tlm_prev;
	}
	bw_worker_drop_state(w);
	bw_obs_answer(x, w->out, (size_t)n);
	deliver(x, w->out, (size_t)n);
	qctx_put(x);
}
