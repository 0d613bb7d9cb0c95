/*
 * core/guard.c - the guard's place in the pipeline: look-alikes of protected domains and
 * newly seen registrable domains, for queries no feed matched and no allowlist passed, on
 * cache misses (docs/guard.md says why that is enough). Security events are, for now, log
 * lines at warning level in a stable format, at most GUARD_LOG_BURST a second per worker:
 *   guard: CLIENT NAME imitates PROTECTED (KIND)
 *   guard: CLIENT NAME newly-seen (REGISTRABLE first seen Ns ago)
 * struct bw_guard_result carries what the telemetry event will carry.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/internal.h"

#define GUARD_LOG_BURST 20      /* log lines per second per worker */
#define NSEEN_SAVE_MS 60000     /* write the newly-seen memory at most this often */
#define NSEEN_FILE "newly-seen.bin"

static _Thread_local uint64_t log_second;
static _Thread_local unsigned log_count, log_dropped;

/* true when this worker may log one more guard line now */
static bool log_allowed(void)
{
	uint64_t now = bw_now_ms() / 1000;
	if (now != log_second) {
		if (log_dropped)
			bw_warn("guard: %u event lines suppressed (rate limit)", log_dropped);
		log_second = now;
		log_count = 0;
		log_dropped = 0;
	}
	if (log_count >= GUARD_LOG_BURST) {
		log_dropped++;
		return false;
	}
	log_count++;
	return true;
}

enum bw_guard_outcome bw_core_guard(struct bw_worker *w, const struct bw_query *q,
				    unsigned profile, const struct sockaddr *peer,
				    struct bw_guard_result *r)
{
	const struct bw_state *st = w->state;
	struct bw_nseen *ns = w->srv->nseen;
	(void)peer; /* clients appear in security events, under the privacy mode, not here */
	memset(r, 0, sizeof(*r));
	if (!st->lookalike && !ns)
		return BW_GUARD_PASS;
	char name[BW_GUARD_NAME_MAX * 4];
	if (bw_name_to_text(q->qname_lc, q->qname_len, name, sizeof(name)) < 0)
		return BW_GUARD_PASS;
	size_t nl = strlen(name);
	if (nl && name[nl - 1] == '.')
		name[--nl] = 0;
	if (!nl)
		return BW_GUARD_PASS;
	if (st->lookalike && bw_lookalike_check(st->lookalike, name, &r->hit)) {
		r->lookalike = true;
		if (log_allowed()) {
			bw_warn("guard: %s imitates %s (%s)", name, r->hit.protected,
				bw_guard_kind_name(r->hit.kind));
		}
		if (r->hit.action == BW_GUARD_ACT_BLOCK) {
			snprintf(r->text, sizeof(r->text), "imitates %s (%s)", r->hit.protected,
				 bw_guard_kind_name(r->hit.kind));
			return BW_GUARD_BLOCK;
		}
		return BW_GUARD_ANSWER; /* alert: answered, not cached, so every query is seen */
	}
	if (!ns)
		return BW_GUARD_PASS;
	const char *reg = bw_registrable_domain(name);
	if (!reg)
		return BW_GUARD_PASS;
	uint64_t now = (uint64_t)time(NULL), first;
	const struct bw_conf *conf = st->conf;
	bw_nseen_observe(ns, reg, strlen(reg), now, &first);
	uint64_t age_ms = now > first ? (now - first) * 1000 : 0;
	if (age_ms >= conf->guard.nseen_window_ms)
		return BW_GUARD_PASS;
	/* warm-up: a young memory sees everything as new; it learns and says nothing */
	if ((now - bw_nseen_born(ns)) * 1000 < conf->guard.nseen_warmup_ms)
		return BW_GUARD_PASS;
	r->newly_seen = true;
	int act = conf->guard.nseen_action;
	if (conf->guard.nseen_profile_action && profile < BW_MAX(conf->policy.n_profiles, 1) &&
	    conf->guard.nseen_profile_action[profile] >= 0)
		act = conf->guard.nseen_profile_action[profile];
	if (log_allowed()) {
		bw_warn("guard: %s newly-seen (%s first seen %llus ago)", name, reg,
			(unsigned long long)(now - first));
	}
	switch (act) {
	case BW_NSEEN_BLOCK:
		snprintf(r->text, sizeof(r->text), "newly seen domain %s", reg);
		return BW_GUARD_BLOCK;
	case BW_NSEEN_SHORT_TTL:
		r->ttl = conf->guard.nseen_ttl ? conf->guard.nseen_ttl : 1;
		return BW_GUARD_ANSWER;
	default:
		return BW_GUARD_PASS;
	}
}

int bw_core_guard_init(struct bw_server *s, char *err, size_t errlen)
{
	const struct bw_conf *conf = s->conf;
	bw_registrable_domain("example.org"); /* loads the Public Suffix List now, not in a worker */
	if (!conf->guard.nseen)
		return 0;
	int rc = bw_nseen_new(conf->guard.nseen_memory, &s->nseen);
	if (rc) {
		snprintf(err, errlen, "cannot allocate the newly-seen memory");
		return rc;
	}
	size_t n = strlen(conf->server.state_dir) + sizeof(NSEEN_FILE) + 2;
	if (!(s->nseen_path = malloc(n))) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	snprintf(s->nseen_path, n, "%s/%s", conf->server.state_dir, NSEEN_FILE);
	rc = bw_nseen_load(s->nseen, s->nseen_path);
	if (rc == 0)
		bw_info("guard: newly-seen memory loaded from %s (%zu KiB, started %llus ago)",
			s->nseen_path, bw_nseen_bytes(s->nseen) / 1024,
			(unsigned long long)((uint64_t)time(NULL) - bw_nseen_born(s->nseen)));
	else if (rc == BW_ENOENT)
		bw_info("guard: newly-seen memory starts empty (%zu KiB): every domain is new "
			"during the warm-up", bw_nseen_bytes(s->nseen) / 1024);
	else
		bw_warn("guard: %s is unusable (%s): the newly-seen memory starts empty",
			s->nseen_path, bw_strerror(rc));
	s->nseen_saved_ms = bw_now_ms();
	return 0;
}

void bw_core_guard_save(struct bw_server *s, bool force)
{
	if (!s->nseen || (!force && bw_now_ms() - s->nseen_saved_ms < NSEEN_SAVE_MS))
		return;
	s->nseen_saved_ms = bw_now_ms();
	mkdir(s->conf->server.state_dir, 0750); /* may exist; an error shows on the write */
	int rc = bw_nseen_save(s->nseen, s->nseen_path);
	if (rc)
		bw_warn("guard: cannot write %s: %s", s->nseen_path, bw_strerror(rc));
}

void bw_core_guard_free(struct bw_server *s)
{
	bw_nseen_free(s->nseen);
	s->nseen = NULL;
	free(s->nseen_path);
	s->nseen_path = NULL;
}

void bw_server_tick(struct bw_server *s)
{
	bw_core_guard_save(s, false);
	bw_server_clock_check(s);
}
