/*
 * guard/guard_conf.c - the guard built from the configuration, and `bulwark guard-check`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "conf/conf.h"
#include "guard/guard.h"

/* guard.popular into the index: once per policy build (start, SIGHUP). The shipped
 * default missing is a warning (the guard then flags more, never less); a file the config
 * names that cannot be read, or holds no domain, fails the build. */
static int load_popular(const struct bw_conf *conf, struct bw_lookalike *g)
{
	size_t count = 0, skipped = 0;
	const char *path = conf->guard.popular;
	if (!path)
		return 0;
	int rc = bw_lookalike_load_popular(g, path, &count, &skipped);
	if (rc == BW_ENOENT && conf->guard.popular_default) {
		bw_warn("guard: the shipped popular list %s is missing: popular domains that look "
			"like a protected one will be flagged (set guard.popular)", path);
		return 0;
	}
	if (rc == BW_EMALFORMED)
		bw_err("guard: popular list %s: no domain in it (%zu lines skipped)", path,
		       skipped);
	else if (rc)
		bw_err("guard: cannot read the popular list %s: %s", path, bw_strerror(rc));
	else if (skipped)
		bw_warn("guard: popular list %s: %zu domains, %zu lines that are not names skipped",
			path, count, skipped);
	return rc;
}

int bw_guard_lookalike_build(const struct bw_conf *conf, struct bw_lookalike **out)
{
	size_t n = conf->guard.n_protected, bad = 0;
	*out = NULL;
	if (!n)
		return 0;
	struct bw_guard_protected *p = calloc(n, sizeof(*p));
	if (!p)
		return BW_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		p[i].domain = conf->guard.protected[i].domain;
		p[i].action = (enum bw_guard_act)conf->guard.protected[i].action;
		p[i].owns = conf->guard.protected[i].owns;
		p[i].n_owns = conf->guard.protected[i].n_owns;
		p[i].no_tld_swap = !conf->guard.protected[i].tld_swap;
	}
	uint64_t t0 = bw_now_ns();
	int rc = bw_lookalike_build(p, n, conf->guard.min_length, out, &bad);
	if (rc == BW_EINVAL)
		bw_err("guard: protected domain '%s' has no registrable part (a public suffix?)",
		       p[bad].domain);
	else if (rc)
		bw_err("guard: cannot build the look-alike index: %s", bw_strerror(rc));
	else if ((rc = load_popular(conf, *out))) {
		bw_lookalike_free(*out);
		*out = NULL;
	} else
		bw_info("guard: %zu protected domains, %zu look-alike variants indexed, %zu popular "
			"domains never flagged, in %.2fs", n, bw_lookalike_variants(*out),
			bw_lookalike_popular(*out), (double)(bw_now_ns() - t0) / 1e9);
	free(p);
	return rc;
}

int bw_guard_check_main(int argc, char **argv)
{
	const char *config = BW_CONF_DEFAULT_PATH;
	char err[512], line[1024];
	struct bw_conf *conf = NULL;
	struct bw_lookalike *g = NULL;
	int c;
	while ((c = getopt(argc, argv, "c:")) != -1) {
		if (c != 'c') {
			fputs("usage: bulwark guard-check [-c FILE] < names\n", stderr);
			return 2;
		}
		config = optarg;
	}
	bw_log_init(BW_LOG_WARN, false);
	if (bw_conf_load(config, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (bw_guard_lookalike_build(conf, &g) != 0) {
		bw_conf_free(conf);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = 0;
		struct bw_guard_hit hit;
		if (line[0] && g && bw_lookalike_check(g, line, &hit))
			printf("%s\t%s\t%s\n", line, bw_guard_kind_name(hit.kind), hit.protected);
	}
	bw_lookalike_free(g);
	bw_conf_free(conf);
	return 0;
}

static void explain_nseen(const struct bw_conf *conf, const char *name, unsigned profile,
			  FILE *out, int *blocked)
{
	const char *reg = bw_registrable_domain(name);
	static const char *const acts[] = {"log", "short-ttl", "block"};
	if (!reg) {
		fprintf(out, "newly-seen: %s has no registrable domain: not tracked\n", name);
		return;
	}
	struct bw_nseen *ns = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/newly-seen.bin", conf->server.state_dir);
	if (bw_nseen_new(conf->guard.nseen_memory, &ns) != 0)
		return;
	int rc = bw_nseen_load(ns, path);
	uint64_t now = (uint64_t)time(NULL), first = now;
	int act = conf->guard.nseen_action;
	if (conf->guard.nseen_profile_action && profile < BW_MAX(conf->policy.n_profiles, 1) &&
	    conf->guard.nseen_profile_action[profile] >= 0)
		act = conf->guard.nseen_profile_action[profile];
	if (rc != 0) {
		fprintf(out, "newly-seen: no usable memory in %s (%s): %s would be new\n", path,
			bw_strerror(rc), reg);
	} else if (!bw_nseen_peek(ns, reg, strlen(reg), now, &first)) {
		fprintf(out, "newly-seen: %s was never resolved here: its next query is new\n", reg);
	} else {
		uint64_t age = now > first ? now - first : 0;
		bool is_new = age * 1000 < conf->guard.nseen_window_ms;
		bool warm = (now - bw_nseen_born(ns)) * 1000 < conf->guard.nseen_warmup_ms;
		fprintf(out, "newly-seen: %s first seen about %llus ago (window %llus)%s%s\n", reg,
			(unsigned long long)age,
			(unsigned long long)(conf->guard.nseen_window_ms / 1000),
			is_new ? ": new" : ": known",
			is_new && warm ? ", but the memory is warming up: not flagged" : "");
		if (is_new && !warm) {
			fprintf(out, "newly-seen action: %s\n", acts[act]);
			if (act == BW_NSEEN_BLOCK)
				*blocked = 1;
		}
	}
	bw_nseen_free(ns);
}

/* Words brands use for their own infrastructure: a look-alike made of the protected label
 * and one of these (apple-dns.net, cdn-apple.com, ssl-images-amazon.com) is more often the
 * brand's own than an attacker's, so explain points at owns: instead of only blocking. */
static const char *const infra_words[] = {
    "dns", "cdn", "static", "img", "image", "images", "media", "assets", "usercontent",
    "content", "api", "apis", "edge", "analytics", "ads", "adsystem", "corp", "data",
    "metrics", "telemetry", "stats", "video", "cache", "cloudkit", "mapkit", "hardware",
    "net", "dss", "studies", "ssl", "storage", "mail", NULL};

static bool infra_word(const char *s, size_t n)
{
	for (size_t i = 0; infra_words[i]; i++)
		if (strlen(infra_words[i]) == n && memcmp(infra_words[i], s, n) == 0)
			return true;
	return false;
}

/* Why reg (the registrable domain of a name that imitates hit->protected) may be the
 * brand's own: writes the reason into buf, or returns false. */
static bool looks_owned(const char *reg, const struct bw_guard_hit *hit, char *buf, size_t cap)
{
	const char *prot = hit->protected;
	size_t pl = strcspn(prot, "."), rl = strcspn(reg, ".");
	const char *suffix = reg + rl + (reg[rl] ? 1 : 0);
	const char *last = strrchr(reg, '.');
	if (hit->kind == BW_GK_TLD_SWAP && last && strlen(last + 1) == 2) {
		snprintf(buf, cap, "the same name under the national suffix .%s", suffix);
		return true;
	}
	if (hit->kind != BW_GK_COMBOSQUAT && hit->kind != BW_GK_ADDED_LABEL)
		return false;
	/* every token besides the protected label is an infrastructure word */
	bool any = false;
	for (size_t s = 0; s < rl;) {
		size_t t = s;
		while (t < rl && reg[t] != '-')
			t++;
		const char *tok = reg + s;
		size_t tl = t - s;
		if (tl == pl && memcmp(tok, prot, pl) == 0) {
			;
		} else if (tl > pl && memcmp(tok, prot, pl) == 0 && infra_word(tok + pl, tl - pl)) {
			any = true; /* glued after: facebookmail */
		} else if (tl > pl && memcmp(tok + tl - pl, prot, pl) == 0 &&
			   infra_word(tok, tl - pl)) {
			any = true; /* glued before: cdnapple */
		} else if (infra_word(tok, tl)) {
			any = true;
		} else {
			return false;
		}
		s = t + 1;
	}
	if (any)
		snprintf(buf, cap, "the name is %.*s plus words of a service's own infrastructure "
			 "(CDN, DNS, static content, APIs)", (int)pl, prot);
	return any;
}

/* What explain adds when the guard fires on a name that is popular or looks like the
 * protected brand's own infrastructure: the way to say it is theirs. */
static void explain_hint(const struct bw_conf *conf, const char *lc,
			 const struct bw_guard_hit *hit, FILE *out)
{
	char why[256];
	const char *reg = bw_registrable_domain(lc);
	if (!reg)
		return;
	if (hit->exempt == BW_GX_POPULAR) {
		fprintf(out, "guard:    %s would imitate %s (%s), but %s is on the popular list "
			     "(%s): not flagged\n", lc, hit->protected, bw_guard_kind_name(hit->kind),
			reg, conf->guard.popular);
	} else if (hit->exempt == BW_GX_HOSTING) {
		fprintf(out, "guard:    %s is %.*s under %s, a hosting suffix (Public Suffix List, "
			     "private section): not a TLD swap of %s\n", lc,
			(int)strcspn(reg, "."), reg, reg + strcspn(reg, ".") + 1, hit->protected);
		return;
	} else if (looks_owned(reg, hit, why, sizeof(why))) {
		fprintf(out, "guard:    %s may be %s's own: %s\n", reg, hit->protected, why);
	} else {
		return;
	}
	fprintf(out, "guard:    if %s belongs to %s's owner, add it to owns: (or owns-file:) of "
		     "%s in guard.protected\n", reg, hit->protected, hit->protected);
}

int bw_guard_explain(const struct bw_conf *conf, const char *name, unsigned profile, FILE *out)
{
	struct bw_lookalike *g = NULL;
	struct bw_guard_hit hit;
	char lc[BW_GUARD_NAME_MAX];
	int blocked = 0;
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	if (n >= sizeof(lc))
		return BW_EINVAL;
	for (size_t i = 0; i < n; i++)
		lc[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	lc[n] = 0;
	if (conf->guard.n_protected) {
		int rc = bw_guard_lookalike_build(conf, &g);
		if (rc)
			return rc;
		if (bw_lookalike_check(g, lc, &hit)) {
			bool block = hit.action == BW_GUARD_ACT_BLOCK;
			fprintf(out, "guard:    imitates %s (%s): %s\n", hit.protected,
				bw_guard_kind_name(hit.kind),
				block ? "block" : "alert (answered, with a security event)");
			explain_hint(conf, lc, &hit, out);
			if (block) {
				fprintf(out, "verdict:  NXDOMAIN by the guard, EDE 15 \"imitates %s (%s)\"\n",
					hit.protected, bw_guard_kind_name(hit.kind));
				bw_lookalike_free(g);
				return 1;
			}
		} else if (hit.exempt != BW_GX_NONE) {
			explain_hint(conf, lc, &hit, out);
		} else {
			fprintf(out, "guard:    imitates none of the %zu protected domains\n",
				conf->guard.n_protected);
		}
		bw_lookalike_free(g);
	}
	if (conf->guard.nseen)
		explain_nseen(conf, lc, profile, out, &blocked);
	if (blocked)
		fprintf(out, "verdict:  NXDOMAIN by the guard, EDE 15 \"newly seen domain\"\n");
	return blocked;
}
