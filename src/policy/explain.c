/*
 * policy/explain.c - why a name is (or is not) blocked: every rule of every feed that
 * matches, in precedence order, with its origin (file:line or STIX/MISP reference), and
 * the verdict the live snapshot gives. Used by `bulwark explain`; later by the API.
 *
 * The snapshot keeps no origins (it would cost memory on the query path), so explain
 * re-reads the feed files with the same parsers and keeps the rules that match.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dns/dns.h"
#include "guard/guard.h"
#include "policy/explain.h"
#include "policy/rules.h"

#define MAX_HITS 64

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

struct scan {
	const uint8_t *name;
	size_t len;
	const struct sockaddr *client;
	unsigned feed;
	struct hit hits[MAX_HITS];
	unsigned n;
	size_t post_rules; /* response-IP / NS rules: they need the answer */
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
	default:
		s->post_rules++;
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

int bw_policy_explain(const struct bw_conf *conf, const struct bw_policy *p, const char *name_text,
		      const struct sockaddr *client, int listener, FILE *out)
{
	uint8_t name[BW_DNS_MAXNAME];
	int len = bw_name_from_text(name_text, strlen(name_text), name);
	if (len <= 0) {
		fprintf(out, "'%s' is not a valid domain name\n", name_text);
		return BW_EINVAL;
	}
	char text[4 * BW_DNS_MAXNAME + 2];
	bw_name_to_text(name, (size_t)len, text, sizeof(text));
	unsigned profile = bw_policy_select_profile(p, conf, listener, client);
	const struct bw_profile_conf *pc =
		profile < conf->policy.n_profiles ? &conf->policy.profiles[profile] : NULL;
	char addr[BW_ADDRSTRLEN] = "(none)";
	bw_sockaddr_addr(client, addr, sizeof(addr));
	fprintf(out, "name:     %s\nclient:   %s\nprofile:  %s\n", text, addr,
		bw_policy_profile_name(p, profile));

	const char *which = NULL;
	bool allow = allowlisted(conf->policy.allowlist, conf->policy.n_allowlist, name,
				 (size_t)len, &which);
	if (!allow && pc)
		allow = allowlisted(pc->allowlist, pc->n_allowlist, name, (size_t)len, &which);
	if (allow)
		fprintf(out, "allowlist: %s matches: no feed applies\n", which);

	struct scan *s = calloc(1, sizeof(*s));
	if (!s)
		return BW_ENOMEM;
	s->name = name;
	s->len = (size_t)len;
	s->client = client;
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		const struct bw_feed_conf *f = &conf->policy.feeds[i];
		char *buf = NULL;
		size_t blen = 0;
		uint64_t mt, sz;
		if (bw_feed_read_file(f->file, &buf, &blen, &mt, &sz) != 0) {
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

	struct bw_verdict v;
	bool blocked = false;
	if (!allow) {
		if (client && bw_policy_has_client_rules(p, profile) &&
		    bw_policy_match_client(p, profile, client, &v)) {
			struct bw_verdict qv;
			bool qm = bw_policy_match_qname(p, profile, name, (size_t)len, &qv);
			blocked = !(qm && qv.feed < v.feed);
			if (!blocked)
				v = qv, blocked = true;
		} else {
			blocked = bw_policy_match_qname(p, profile, name, (size_t)len, &v);
		}
	}

	fprintf(out, "matching rules (%u), in precedence order:\n", s->n);
	bool winner_shown = false;
	for (unsigned i = 0; i < s->n; i++) {
		const struct hit *h = &s->hits[i];
		const struct bw_feed_conf *f = &conf->policy.feeds[h->feed];
		bool on = bw_policy_profile_has_feed(p, profile, h->feed);
		bool wins = !allow && on && !winner_shown && blocked && (int)h->feed == v.feed;
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
	if (s->post_rules)
		fprintf(out, "(%zu response-IP/NSDNAME/NSIP rules are checked against the answer "
			     "when the name is resolved)\n",
			s->post_rules);
	if (!blocked && !allow && bw_guard_explain(conf, text, profile, out) > 0) {
		free(s);
		return 1; /* the guard blocks it (it printed its verdict) */
	}
	if (!blocked || allow) {
		fprintf(out, "verdict:  resolve normally\n");
	} else {
		fprintf(out, "verdict:  %s%s by feed %s (%s)", bw_action_name(v.action),
			v.log_only ? " (log-only: answered normally)" : "", v.feed_name, v.category);
		if (v.ede != BW_EDE_NONE)
			fprintf(out, ", EDE %u \"blocked by %s (%s)\"", v.ede, v.feed_name, v.category);
		fputc('\n', out);
	}
	free(s);
	return blocked && !allow ? 1 : 0;
}
