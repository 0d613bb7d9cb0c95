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
	else
		bw_info("guard: %zu protected domains, %zu look-alike variants indexed in %.2fs",
			n, bw_lookalike_variants(*out), (double)(bw_now_ns() - t0) / 1e9);
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
	const char *reg = bw_guard_registrable(name);
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
			if (block) {
				fprintf(out, "verdict:  NXDOMAIN by the guard, EDE 15 \"imitates %s (%s)\"\n",
					hit.protected, bw_guard_kind_name(hit.kind));
				bw_lookalike_free(g);
				return 1;
			}
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
