/*
 * policy/explain.c - why a name is (or is not) blocked: every rule of every feed that
 * matches, in precedence order, with its origin (file:line or STIX/MISP reference), and
 * the verdict. Used by `bulwark explain`; later by the API.
 *
 * The verdict comes from the decisions the pipeline itself takes (decide.c), in its
 * order: a CLIENT-IP rule, the QNAME rules, the guard, then the answer (its CNAME chain
 * and addresses, when a resolver is given to resolve the name), so explain says what an
 * answer says, EDE text included. The snapshot keeps no origins (it would cost memory on
 * the query path), so explain re-reads the feed files with the same parsers and keeps the
 * rules that match the name, or the CNAME target or address that decided.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dns/dns.h"
#include "guard/guard.h"
#include "policy/decisions.h"
#include "policy/explain.h"
#include "policy/rules.h"

#define MAX_HITS 64
#define FEEDS_MAX 64 /* the policy's own limit */

struct hit {
	unsigned feed;
	enum bw_trigger trigger;
	enum bw_action action;
	unsigned long line;
	char ref[96];
	char title[96];
	size_t match_len; /* name rules: length of the matched name (longer = more specific) */
	uint8_t prefix;   /* address rules */
};

#define MAX_ADDRS 32

struct scan {
	const uint8_t *name;
	size_t len;
	const struct sockaddr *client;
	struct sockaddr_storage addrs[MAX_ADDRS]; /* the answer's, for RESPONSE-IP rules */
	unsigned n_addrs;
	unsigned feed;
	struct hit hits[MAX_HITS];
	unsigned n;
	size_t ip_rules;                   /* RESPONSE-IP rules: they need the answer */
	size_t ns_rules[FEEDS_MAX]; /* NSDNAME/NSIP rules, per feed: not enforced */
};

static bool is_strict_ancestor(const uint8_t *anc, size_t alen, const uint8_t *name, size_t len)
{
	if (alen >= len)
		return false;
	/* walk name's suffixes on label boundaries */
	for (size_t off = 0; off < len && name[off]; off = bw_name_parent(name, off)) {
		if (off > 0 && len - off == alen && memcmp(name + off, anc, alen) == 0)
			return true;
	}
	return alen == 1 && anc[0] == 0; /* the root: "*." matches everything below it */
}

static int sink(void *ctx, const struct bw_rule *r)
{
	struct scan *s = ctx;
	bool match = false;
	size_t mlen = 0;
	switch (r->trigger) {
	case BW_TRIG_QNAME:
		match = r->name_len == s->len && memcmp(r->name, s->name, s->len) == 0;
		mlen = r->name_len;
		break;
	case BW_TRIG_WILDCARD:
		match = is_strict_ancestor(r->name, r->name_len, s->name, s->len);
		mlen = r->name_len;
		break;
	case BW_TRIG_CLIENT_IP:
		match = s->client && bw_cidr_match(&r->net, s->client);
		break;
	case BW_TRIG_RESPONSE_IP:
		s->ip_rules++;
		for (unsigned i = 0; i < s->n_addrs && !match; i++)
			match = bw_cidr_match(&r->net, (const struct sockaddr *)&s->addrs[i]);
		break;
	default: /* NSDNAME, NSIP */
		if (s->feed < FEEDS_MAX)
			s->ns_rules[s->feed]++;
		return 0;
	}
	if (!match || s->n >= MAX_HITS)
		return 0;
	struct hit *h = &s->hits[s->n++];
	memset(h, 0, sizeof(*h));
	h->feed = s->feed;
	h->trigger = r->trigger;
	h->action = r->action;
	h->line = r->line;
	h->match_len = mlen;
	h->prefix = r->net.prefix;
	if (r->ref)
		snprintf(h->ref, sizeof(h->ref), "%s", r->ref);
	if (r->title)
		snprintf(h->title, sizeof(h->title), "%s", r->title);
	return 0;
}

/* Precedence inside one feed: CLIENT-IP, then QNAME exact, then wildcards from the most
 * specific; PASSTHRU first among equals (AdBlock exceptions). */
static int rank(const struct hit *h)
{
	int r;
	switch (h->trigger) {
	case BW_TRIG_CLIENT_IP: r = 0 + (128 - h->prefix); break;
	case BW_TRIG_QNAME: r = 1000; break;
	case BW_TRIG_RESPONSE_IP: r = 3000 + (128 - h->prefix); break;
	default: r = 2000 + (255 - (int)h->match_len); break;
	}
	return r * 2 + (h->action == BW_ACT_PASSTHRU ? 0 : 1);
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->feed != y->feed)
		return x->feed < y->feed ? -1 : 1;
	return rank(x) - rank(y);
}

static const char *trigger_name(enum bw_trigger t)
{
	static const char *names[] = {"QNAME", "WILDCARD", "CLIENT-IP", "RESPONSE-IP", "NSDNAME",
				      "NSIP"};
	return (unsigned)t < BW_ARRAY_LEN(names) ? names[t] : "?";
}

const char *bw_action_name(enum bw_action a)
{
	static const char *names[] = {"ALLOW",	   "NXDOMAIN",	 "NODATA",   "DROP",
				      "TCP-ONLY",  "LOCAL-DATA", "REDIRECT", "PASSTHRU"};
	return (unsigned)a < BW_ARRAY_LEN(names) ? names[a] : "?";
}

static bool allowlisted(char *const *list, size_t n, const uint8_t *name, size_t len,
			const char **which)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t w[BW_DNS_MAXNAME];
		int wl = bw_name_from_text(list[i], strlen(list[i]), w);
		if (wl <= 0)
			continue;
		if (((size_t)wl == len && !memcmp(w, name, len)) ||
		    (is_strict_ancestor(w, (size_t)wl, name, len) && wl > 1)) {
			*which = list[i];
			return true;
		}
	}
	return false;
}

/* Reads every feed again with its parser and keeps the rules that match s's name,
 * client or addresses (and counts the rules that need the answer). */
static void scan_feeds(const struct bw_conf *conf, struct scan *s, FILE *out)
{
	s->n = 0;
	s->ip_rules = 0;
	memset(s->ns_rules, 0, sizeof(s->ns_rules));
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		const struct bw_feed_conf *f = &conf->policy.feeds[i];
		char *buf = NULL;
		size_t blen = 0;
		uint64_t mt, sz;
		if (bw_feed_read_file(f->file, &buf, &blen, &mt, &sz) != 0) {
			if (out)
				fprintf(out, "feed %s: cannot read %s\n", f->name, f->file);
			continue;
		}
		struct bw_parse_report rep;
		memset(&rep, 0, sizeof(rep));
		s->feed = (unsigned)i;
		bw_parse_feed(f, buf, blen, sink, s, &rep);
		free(buf);
	}
	qsort(s->hits, s->n, sizeof(s->hits[0]), hit_cmp);
}

/* The matching rules, the winner (winner_feed, when it is among them) marked. */
static void print_hits(const struct bw_conf *conf, const struct bw_policy *p, unsigned profile,
		       const struct scan *s, bool allow, int winner_feed, FILE *out)
{
	bool winner_shown = false;
	for (unsigned i = 0; i < s->n; i++) {
		const struct hit *h = &s->hits[i];
		const struct bw_feed_conf *f = &conf->policy.feeds[h->feed];
		bool on = bw_policy_profile_has_feed(p, profile, h->feed);
		bool wins = !allow && on && !winner_shown && (int)h->feed == winner_feed;
		winner_shown |= wins;
		fprintf(out, "  %s feed %s (%s) %s", wins ? "*" : "-", f->name, f->category, f->file);
		if (h->line)
			fprintf(out, ":%lu", h->line);
		fprintf(out, "  %s -> %s", trigger_name(h->trigger), bw_action_name(h->action));
		if (h->ref[0])
			fprintf(out, "  [%s%s%s]", h->ref, h->title[0] ? " " : "", h->title);
		if (!on)
			fprintf(out, "  (feed not in profile %s: ignored)", bw_policy_profile_name(p, profile));
		else if (allow)
			fprintf(out, "  (allowlisted: ignored)");
		else if (wins)
			fprintf(out, "  <- wins: first matching feed in configured order%s",
				h->trigger == BW_TRIG_WILDCARD ? ", most specific name" : "");
		fputc('\n', out);
	}
}

/* NSDNAME and NSIP rules are loaded (and exported), but the pipeline never sees the name
 * servers of a delegation: libunbound resolves and validates inside, and gives back the
 * answer only. Said wherever such rules appear, so nobody counts on them. */
static void print_unenforced(const struct bw_conf *conf, const struct scan *s, FILE *out)
{
	for (size_t i = 0; i < conf->policy.n_feeds && i < FEEDS_MAX; i++)
		if (s->ns_rules[i])
			fprintf(out, "feed %s: %zu NSDNAME/NSIP rules loaded, not enforced (%s)\n",
				conf->policy.feeds[i].name, s->ns_rules[i], BW_POLICY_NS_UNENFORCED);
}

struct answer_check {
	bool resolved;
	uint8_t pkt[BW_DNS_MAXMSG];
	size_t pkt_len;
	struct bw_query q;
	struct bw_answer_meta meta;
	uint8_t body[BW_DNS_MAXMSG];
	struct bw_chain chain;
	char err[256];
};

static bool keep_addr(void *ctx, int family, const uint8_t *addr)
{
	struct scan *s = ctx;
	if (s->n_addrs >= MAX_ADDRS)
		return true;
	struct sockaddr_storage *ss = &s->addrs[s->n_addrs++];
	memset(ss, 0, sizeof(*ss));
	if (family == 4) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, addr, 4);
	} else {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, addr, 16);
	}
	return false;
}

/* Resolves the name as the pipeline would on a cache miss, and parses the answer. */
static void resolve_answer(const struct bw_explain_opts *o, const uint8_t *name, size_t len,
			   struct answer_check *a)
{
	a->resolved = false;
	uint16_t qtype = o->qtype ? o->qtype : BW_T_A;
	if (o->resolve(o->resolve_ctx, name, len, qtype, a->pkt, sizeof(a->pkt), &a->pkt_len,
		       a->err, sizeof(a->err)) != 0)
		return;
	memset(&a->q, 0, sizeof(a->q));
	memcpy(a->q.qname, name, len);
	memcpy(a->q.qname_lc, name, len);
	a->q.qname_len = (uint16_t)len;
	a->q.qtype = qtype;
	a->q.qclass = 1;
	if (bw_answer_from_wire(a->pkt, a->pkt_len, &a->q, false, &a->meta, a->body,
				sizeof(a->body), &a->chain) != 0) {
		snprintf(a->err, sizeof(a->err), "the answer could not be parsed");
		return;
	}
	a->resolved = true;
}

/* Resolves and applies the answer decision (d->have false when nothing matched). */
static void check(const struct bw_policy *p, unsigned profile, const struct bw_explain_opts *o,
		  const uint8_t *name, size_t len, bool deferred, struct answer_check *a,
		  struct bw_answer_decision *d)
{
	memset(d, 0, sizeof(*d));
	resolve_answer(o, name, len, a);
	if (a->resolved)
		bw_policy_decide_answer(p, profile, name, len, deferred, &a->chain, &a->meta,
					a->body, d);
}

static void print_answer(const struct answer_check *a, FILE *out)
{
	char t[4 * BW_DNS_MAXNAME + 2];
	fprintf(out, "answer:   %s", a->meta.rcode == BW_RCODE_NXDOMAIN ? "NXDOMAIN" : "NOERROR");
	for (unsigned i = 1; i < a->chain.n; i++)
		if (bw_name_to_text(a->chain.name[i], a->chain.len[i], t, sizeof(t)) >= 0)
			fprintf(out, "%s %s", i == 1 ? ", CNAME chain to" : " ->", t);
	fputc('\n', out);
}

static bool blocks(const struct bw_verdict *v)
{
	return !v->log_only && v->action != BW_ACT_ALLOW && v->action != BW_ACT_PASSTHRU;
}

/* The final verdict line, with the EDE the answer carries. */
static void print_verdict(const struct bw_verdict *v, const struct bw_match *via, FILE *out)
{
	fprintf(out, "verdict:  %s%s by feed %s (%s)", bw_action_name(v->action),
		v->log_only ? " (log-only: answered normally)" : "", v->feed_name, v->category);
	if (v->ede != BW_EDE_NONE && blocks(v) && v->action != BW_ACT_DROP &&
	    v->action != BW_ACT_TCP_ONLY) { /* those two answer nothing, or nothing yet */
		char text[4 * BW_DNS_MAXNAME + 128];
		bw_verdict_ede_text(v, via, text, sizeof(text));
		fprintf(out, ", EDE %u \"%s\"", v->ede, text);
	}
	fputc('\n', out);
}

/* The decisions before resolution, as the pipeline takes them. */
struct pre {
	struct bw_verdict v;
	const struct bw_match *via; /* the client's address, or NULL */
	bool decided;               /* v decides (or a PASSTHRU lets it through) */
	bool deferred;              /* v decides unless an earlier feed matches the answer */
	bool allow;                 /* an allowlist: no rule applies */
	bool check_answer;          /* the answer's names and addresses may still decide */
};

static void decide_pre(const struct bw_policy *p, unsigned profile, const struct sockaddr *client,
		       const uint8_t *name, size_t len, struct pre *r)
{
	static const struct bw_match by_client = {.kind = BW_MATCH_CLIENT};
	memset(r, 0, sizeof(*r));
	r->check_answer = true;
	if (bw_policy_decide_client(p, profile, client, name, len, &r->v) && !r->v.log_only) {
		r->decided = true; /* before the cache, for this client only */
		r->via = &by_client;
		r->check_answer = !blocks(&r->v) && r->v.action != BW_ACT_PASSTHRU;
		return;
	}
	switch (bw_policy_decide_qname(p, profile, name, len, &r->v)) {
	case BW_DECIDE_ALLOWLISTED:
		r->allow = true;
		r->check_answer = false;
		break;
	case BW_DECIDE_PASSTHRU:
		r->decided = true;
		r->check_answer = false;
		break;
	case BW_DECIDE_DEFER:
		r->deferred = true;
		break;
	case BW_DECIDE_REDIRECT:
	case BW_DECIDE_RULE:
		r->decided = true;
		r->check_answer = !blocks(&r->v);
		break;
	case BW_DECIDE_NONE:
		break;
	}
}

static void print_allowlist(const struct bw_conf *conf, const struct bw_profile_conf *pc,
			    const uint8_t *name, size_t len, FILE *out)
{
	const char *which = NULL;
	if (allowlisted(conf->policy.allowlist, conf->policy.n_allowlist, name, len, &which) ||
	    (pc && allowlisted(pc->allowlist, pc->n_allowlist, name, len, &which)))
		fprintf(out, "allowlist: %s matches: no feed applies\n", which);
	else
		fprintf(out, "allowlist: a local allow rule matches: no feed applies\n");
}

/* A local decision that covers the name: who made it and when (it decides). */
static void print_decision(const struct bw_policy *p, const uint8_t *name, size_t len, FILE *out)
{
	const struct bw_local_decision *d = bw_policy_decision(p, name, len);
	char text[4 * BW_DNS_MAXNAME + 2], when[32];
	if (!d)
		return;
	fprintf(out, "decision: local decision by %s at %s: %s %s (the name and its subdomains)\n",
		d->who, bw_decision_time(d->at, when, sizeof(when)),
		bw_decision_action_name(d->action), bw_decision_text(d, text, sizeof(text)));
}

/* The answer, and the rules of the CNAME target or address that decided (d). */
static void explain_answer(const struct bw_conf *conf, const struct bw_policy *p,
			   unsigned profile, struct scan *s, const struct answer_check *a,
			   const struct bw_answer_decision *d, FILE *out)
{
	if (!a->resolved) {
		fprintf(out, "answer:   not checked (%s): a CNAME target or an address of the "
			     "answer could still block it\n", a->err);
		return;
	}
	print_answer(a, out);
	if (!d->have || d->via.kind == BW_MATCH_QNAME)
		return;
	bool by_addr = d->via.kind == BW_MATCH_ADDRESS;
	s->n_addrs = 0;
	if (by_addr)
		bw_answer_addrs(&a->meta, a->body, keep_addr, s);
	s->name = by_addr ? (const uint8_t *)"" : d->via.name;
	s->len = by_addr ? 0 : d->via.name_len;
	s->client = NULL;
	scan_feeds(conf, s, NULL);
	char t[4 * BW_DNS_MAXNAME + 16];
	fprintf(out, "rules matching the answer's %s:\n", bw_match_text(&d->via, t, sizeof(t)));
	print_hits(conf, p, profile, s, false, d->v.feed, out);
}

int bw_policy_explain(const struct bw_conf *conf, const struct bw_policy *p, const char *name_text,
		      const struct bw_explain_opts *o, FILE *out)
{
	uint8_t name[BW_DNS_MAXNAME];
	int len = bw_name_from_text(name_text, strlen(name_text), name);
	if (len <= 0) {
		fprintf(out, "'%s' is not a valid domain name\n", name_text);
		return BW_EINVAL;
	}
	for (int i = 0; i < len; i++) /* the pipeline matches lower-cased names */
		name[i] = (uint8_t)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	char text[4 * BW_DNS_MAXNAME + 2];
	bw_name_to_text(name, (size_t)len, text, sizeof(text));
	unsigned profile = o->profile >= 0 && (size_t)o->profile < conf->policy.n_profiles
				   ? (unsigned)o->profile
				   : bw_policy_select_profile(p, conf, o->listener, o->client);
	const struct bw_profile_conf *pc =
		profile < conf->policy.n_profiles ? &conf->policy.profiles[profile] : NULL;
	char addr[BW_ADDRSTRLEN] = "(none)";
	bw_sockaddr_addr(o->client, addr, sizeof(addr));
	fprintf(out, "name:     %s\nclient:   %s\nprofile:  %s\n", text,
		o->client_text ? o->client_text : addr, bw_policy_profile_name(p, profile));

	struct scan *s = calloc(1, sizeof(*s));
	struct answer_check *a = calloc(1, sizeof(*a));
	if (!s || !a) {
		free(s);
		free(a);
		return BW_ENOMEM;
	}
	s->name = name;
	s->len = (size_t)len;
	s->client = o->client;
	scan_feeds(conf, s, out);

	/* the decisions, in the pipeline's order (core/pipeline.c) */
	struct pre pr;
	struct bw_answer_decision d = {0};
	decide_pre(p, profile, o->client, name, (size_t)len, &pr);
	if (o->paused)
		fprintf(out, "paused:   %s: no feed applies\n", o->paused);
	if (pr.v.local)
		print_decision(p, name, (size_t)len, out);
	else if (pr.allow)
		print_allowlist(conf, pc, name, (size_t)len, out);
	/* a deferred verdict is only known with the answer: resolve before saying who wins */
	if (pr.check_answer && o->resolve && pr.deferred)
		check(p, profile, o, name, (size_t)len, true, a, &d);
	bool by_answer = d.have && d.via.kind != BW_MATCH_QNAME; /* a CNAME target, an address */
	int winner = pr.deferred && by_answer ? -1 : pr.decided || pr.deferred ? pr.v.feed : -1;
	fprintf(out, "matching rules (%u), in precedence order:\n", s->n);
	print_hits(conf, p, profile, s, pr.allow, winner, out);
	print_unenforced(conf, s, out);

	int rc = 0;
	if (o->paused) {
		fprintf(out, "verdict:  resolve normally (blocking is paused)\n");
		goto done;
	}
	if (!pr.decided && !pr.allow && !pr.deferred &&
	    bw_guard_explain(conf, text, profile, out) > 0) {
		rc = 1; /* the guard blocks it (it printed its verdict) */
		goto done;
	}
	if (pr.check_answer && o->resolve) {
		if (!pr.deferred)
			check(p, profile, o, name, (size_t)len, false, a, &d);
		explain_answer(conf, p, profile, s, a, &d, out);
	} else if (pr.check_answer && s->ip_rules) {
		fprintf(out, "answer:   not checked (explain --no-resolve): %zu response-IP rules "
			     "and CNAME targets could still block it\n", s->ip_rules);
	}
	if (d.have) {
		print_verdict(&d.v, &d.via, out);
		rc = blocks(&d.v);
	} else if (pr.decided || pr.deferred) {
		print_verdict(&pr.v, pr.via, out);
		rc = blocks(&pr.v);
	} else {
		fprintf(out, "verdict:  resolve normally%s\n",
			pr.v.local ? " (allowed by a local decision)" : pr.allow ? " (allowlisted)" : "");
	}
done:
	free(a);
	free(s);
	return rc;
}
