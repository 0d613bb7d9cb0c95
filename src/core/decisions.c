/*
 * core/decisions.c - local decisions and pauses on the server (core.h): their files in the
 * state directory, the new states that put them in force, and the end of pauses at their
 * time (from the main thread's tick). Everything that changes them runs under the state
 * lock; the workers only read the published state (its snapshot's decisions, its paused
 * bits).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"
#include "feeds/feeds.h"
#include "policy/decisions.h"

#define DECISIONS_FILE "local-decisions"
#define PAUSES_FILE "paused"

static char *state_file(const struct bw_conf *conf, const char *name)
{
	const char *dir = conf->server.state_dir ? conf->server.state_dir
						 : BW_CONF_DEFAULT_STATE_DIR;
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* ---- the files ---- */

/* Loads the decisions file into s->decisions (those in force stay when it is unreadable). */
static void decisions_load(struct bw_server *s)
{
	struct bw_decisions *d = NULL;
	size_t bad = 0;
	char err[512] = "";
	if (bw_decisions_load(s->decisions_path, &d, &bad, err, sizeof(err)) != 0) {
		bw_err("local decisions: %s: keeping the %zu in force", err,
		       bw_decisions_count(s->decisions));
		return;
	}
	if (bad)
		bw_warn("local decisions: %zu unusable line%s skipped (first: %s)", bad,
			bad == 1 ? "" : "s", err);
	if (d || s->decisions)
		bw_info("local decisions: %zu from %s", bw_decisions_count(d), s->decisions_path);
	bw_decisions_unref(s->decisions);
	s->decisions = d;
}

static int decisions_write(FILE *f, void *ctx)
{
	return bw_decisions_write(f, ctx);
}

static int pauses_write(FILE *f, void *ctx)
{
	const struct bw_server *s = ctx;
	char when[32];
	fprintf(f, "# Bulwark paused profiles: PROFILE UNTIL WHO, one a line (docs/decisions.md)\n");
	for (size_t i = 0; i < s->n_pauses; i++)
		fprintf(f, "%s %s %s\n", s->pauses[i].profile,
			bw_decision_time(s->pauses[i].until, when, sizeof(when)), s->pauses[i].by);
	return ferror(f) ? BW_EIO : 0;
}

/* The pauses of the file at path that are not over, at most cap: their count. */
static size_t pauses_read(const char *path, struct bw_pause *out, size_t cap)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char line[512];
	size_t n = 0;
	int64_t now = wall_now();
	while (f && n < cap && fgets(line, sizeof(line), f)) {
		char prof[64], when[32];
		int used = 0;
		struct bw_pause *p = &out[n];
		line[strcspn(line, "\r\n")] = 0;
		if (line[0] == '#' || sscanf(line, "%63s %31s %n", prof, when, &used) < 2 || !used ||
		    !bw_decision_time_parse(when, &p->until) || p->until <= now)
			continue;
		snprintf(p->profile, sizeof(p->profile), "%s", prof);
		snprintf(p->by, sizeof(p->by), "%s", line + used);
		n++;
	}
	if (f)
		fclose(f);
	return n;
}

static void next_resume_update(struct bw_server *s)
{
	int64_t next = 0;
	for (size_t i = 0; i < s->n_pauses; i++)
		if (!next || s->pauses[i].until < next)
			next = s->pauses[i].until;
	atomic_store(&s->next_resume, next);
}

int bw_core_decisions_init(struct bw_server *s, char *err, size_t errlen)
{
	s->decisions_path = state_file(s->conf, DECISIONS_FILE);
	s->pauses_path = state_file(s->conf, PAUSES_FILE);
	if (!s->decisions_path || !s->pauses_path) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	decisions_load(s);
	s->n_pauses = pauses_read(s->pauses_path, s->pauses, BW_ARRAY_LEN(s->pauses));
	char when[32];
	for (size_t i = 0; i < s->n_pauses; i++)
		bw_warn("blocking is PAUSED for profile %s until %s by %s (paused before the "
			"restart)", s->pauses[i].profile,
			bw_decision_time(s->pauses[i].until, when, sizeof(when)), s->pauses[i].by);
	next_resume_update(s);
	return 0;
}

void bw_core_decisions_reload(struct bw_server *s)
{
	decisions_load(s);
}

void bw_core_decisions_free(struct bw_server *s)
{
	bw_decisions_unref(s->decisions);
	s->decisions = NULL;
	free(s->decisions_path);
	free(s->pauses_path);
}

/* ---- decisions ---- */

/* Writes set d to the file and publishes it (state_lock held). */
static int decisions_apply(struct bw_server *s, struct bw_decisions *d, uint64_t *gen, char *err,
			   size_t errlen)
{
	if (bw_feeds_store_with(s->decisions_path, decisions_write, d, NULL) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", s->decisions_path, strerror(errno));
		return BW_EIO;
	}
	if (bw_core_republish(s, d, gen) != 0) {
		/* the file has it: the next reload puts it in force */
		snprintf(err, errlen, "out of memory (saved; in force after a reload)");
		return BW_ENOMEM;
	}
	bw_decisions_unref(s->decisions);
	s->decisions = bw_decisions_ref(d);
	return 0;
}

int bw_server_decide(struct bw_server *s, const struct bw_local_decision *dec, uint64_t *gen,
		     char *err, size_t errlen)
{
	struct bw_decisions *d = NULL;
	pthread_mutex_lock(&s->state_lock);
	int rc = bw_decisions_put(s->decisions, dec, &d);
	if (rc == BW_ESPACE)
		snprintf(err, errlen, "too many local decisions: the cap is %d; remove some first",
			 BW_DECISIONS_MAX);
	else if (rc)
		snprintf(err, errlen, "out of memory");
	else
		rc = decisions_apply(s, d, gen, err, errlen);
	pthread_mutex_unlock(&s->state_lock);
	bw_decisions_unref(d);
	if (!rc) {
		char name[4 * BW_DNS_MAXNAME + 2];
		bw_info("local decision: %s %s by %s (policy generation %llu)",
			bw_decision_action_name(dec->action), bw_decision_text(dec, name, sizeof(name)),
			dec->who, (unsigned long long)*gen);
	}
	return rc;
}

int bw_server_undecide(struct bw_server *s, const uint8_t *wire, size_t len, int action,
		       struct bw_local_decision *old, uint64_t *gen, char *err, size_t errlen)
{
	struct bw_decisions *d = NULL;
	enum bw_decision_action a = action == BW_DECISION_BLOCK ? BW_DECISION_BLOCK
								: BW_DECISION_ALLOW;
	pthread_mutex_lock(&s->state_lock);
	const struct bw_local_decision *x = bw_decisions_find(s->decisions, wire, len);
	int rc = x && x->action == a ? bw_decisions_drop(s->decisions, wire, len, a, &d) : BW_ENOENT;
	if (rc == BW_ENOENT)
		snprintf(err, errlen, "no local %s decision on this name (bulwarkctl decisions)",
			 bw_decision_action_name(a));
	else if (rc)
		snprintf(err, errlen, "out of memory");
	if (!rc)
		*old = *x; /* x lives in s->decisions, still held */
	if (!rc)
		rc = decisions_apply(s, d, gen, err, errlen);
	pthread_mutex_unlock(&s->state_lock);
	bw_decisions_unref(d);
	if (!rc) {
		char name[4 * BW_DNS_MAXNAME + 2];
		bw_info("local decision undone: %s %s (made by %s) (policy generation %llu)",
			bw_decision_action_name(a), bw_decision_text(old, name, sizeof(name)), old->who,
			(unsigned long long)*gen);
	}
	return rc;
}

struct bw_decisions *bw_server_decisions(struct bw_server *s)
{
	pthread_mutex_lock(&s->state_lock);
	struct bw_decisions *d = bw_decisions_ref(s->decisions);
	pthread_mutex_unlock(&s->state_lock);
	return d;
}

/* ---- pauses ---- */

void bw_core_pause_mask(const struct bw_server *s, struct bw_state *st)
{
	unsigned n = bw_policy_profile_count(st->policy);
	memset(st->paused, 0, sizeof(st->paused));
	for (size_t i = 0; i < s->n_pauses; i++)
		for (unsigned k = 0; k < n && k < 256; k++)
			if (!strcmp(bw_policy_profile_name(st->policy, k), s->pauses[i].profile))
				st->paused[k >> 6] |= 1ull << (k & 63);
}

static struct bw_pause *pause_find(struct bw_server *s, const char *profile)
{
	for (size_t i = 0; i < s->n_pauses; i++)
		if (!strcmp(s->pauses[i].profile, profile))
			return &s->pauses[i];
	return NULL;
}

static bool profile_known(struct bw_server *s, const char *profile)
{
	const struct bw_state *cur = atomic_load(&s->state_ref.current);
	for (unsigned k = 0; k < bw_policy_profile_count(cur->policy); k++)
		if (!strcmp(bw_policy_profile_name(cur->policy, k), profile))
			return true;
	return false;
}

/* Writes the pauses and publishes them; on failure the pauses are put back as they were
 * (saved) and the file rewritten. state_lock held. */
static int pauses_apply(struct bw_server *s, const struct bw_pause *saved, size_t n_saved,
			uint64_t *gen, char *err, size_t errlen)
{
	int rc = 0;
	if (bw_feeds_store_with(s->pauses_path, pauses_write, s, NULL) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", s->pauses_path, strerror(errno));
		rc = BW_EIO;
	} else if (bw_core_republish(s, s->decisions, gen) != 0) {
		snprintf(err, errlen, "out of memory");
		rc = BW_ENOMEM;
	}
	if (rc) {
		memcpy(s->pauses, saved, n_saved * sizeof(*saved));
		s->n_pauses = n_saved;
		bw_feeds_store_with(s->pauses_path, pauses_write, s, NULL);
	}
	next_resume_update(s);
	return rc;
}

int bw_server_pause(struct bw_server *s, const char *profile, unsigned seconds, const char *by,
		    struct bw_pause *out, uint64_t *gen, char *err, size_t errlen)
{
	static struct bw_pause saved[BW_ARRAY_LEN(((struct bw_server *)0)->pauses)];
	int rc = BW_ENOENT;
	pthread_mutex_lock(&s->state_lock);
	if (!profile_known(s, profile)) {
		snprintf(err, errlen, "no profile '%s' in the running configuration", profile);
		goto out;
	}
	size_t n_saved = s->n_pauses;
	memcpy(saved, s->pauses, n_saved * sizeof(*saved));
	struct bw_pause *p = pause_find(s, profile);
	if (!p)
		p = &s->pauses[s->n_pauses++]; /* room: one per profile, at most 255 */
	snprintf(p->profile, sizeof(p->profile), "%s", profile);
	snprintf(p->by, sizeof(p->by), "%s", by);
	p->until = wall_now() + seconds;
	*out = *p;
	rc = pauses_apply(s, saved, n_saved, gen, err, errlen);
out:
	pthread_mutex_unlock(&s->state_lock);
	if (!rc) {
		char when[32];
		bw_warn("blocking PAUSED for profile %s until %s by %s: no feed applies to its "
			"queries until then (bulwarkctl resume %s)", profile,
			bw_decision_time(out->until, when, sizeof(when)), by, profile);
	}
	return rc;
}

/* Takes pause i away (state_lock held). */
static void pause_remove(struct bw_server *s, size_t i)
{
	s->pauses[i] = s->pauses[--s->n_pauses];
}

int bw_server_resume(struct bw_server *s, const char *profile, const char *by, uint64_t *gen,
		     char *err, size_t errlen)
{
	static struct bw_pause saved[BW_ARRAY_LEN(((struct bw_server *)0)->pauses)];
	int rc = BW_ENOENT;
	pthread_mutex_lock(&s->state_lock);
	struct bw_pause *p = pause_find(s, profile);
	if (!p) {
		snprintf(err, errlen, "profile '%s' is not paused", profile);
		goto out;
	}
	size_t n_saved = s->n_pauses;
	memcpy(saved, s->pauses, n_saved * sizeof(*saved));
	pause_remove(s, (size_t)(p - s->pauses));
	rc = pauses_apply(s, saved, n_saved, gen, err, errlen);
out:
	pthread_mutex_unlock(&s->state_lock);
	if (!rc)
		bw_warn("blocking RESUMED for profile %s by %s", profile, by);
	return rc;
}

void bw_core_pause_tick(struct bw_server *s)
{
	static struct bw_pause saved[BW_ARRAY_LEN(((struct bw_server *)0)->pauses)];
	int64_t next = atomic_load(&s->next_resume), now = wall_now();
	if (!next || now < next)
		return;
	char err[300];
	uint64_t gen;
	pthread_mutex_lock(&s->state_lock);
	size_t n_saved = s->n_pauses;
	memcpy(saved, s->pauses, n_saved * sizeof(*saved));
	for (size_t i = s->n_pauses; i-- > 0;) {
		if (s->pauses[i].until > now)
			continue;
		bw_warn("blocking RESUMED for profile %s: the pause by %s is over",
			s->pauses[i].profile, s->pauses[i].by);
		pause_remove(s, i);
	}
	if (pauses_apply(s, saved, n_saved, &gen, err, sizeof(err)) != 0) {
		/* the pauses stay as they were; the next tick tries again */
		bw_err("cannot end the pause: %s; trying again", err);
	}
	pthread_mutex_unlock(&s->state_lock);
}

size_t bw_server_pauses(struct bw_server *s, struct bw_pause *out, size_t cap)
{
	pthread_mutex_lock(&s->state_lock);
	size_t n = BW_MIN(s->n_pauses, cap);
	memcpy(out, s->pauses, n * sizeof(*out));
	pthread_mutex_unlock(&s->state_lock);
	return n;
}

static bool pause_text(const struct bw_pause *p, size_t n, const char *profile, char *buf,
		       size_t cap)
{
	char when[32];
	for (size_t i = 0; i < n; i++) {
		if (strcmp(p[i].profile, profile))
			continue;
		snprintf(buf, cap, "blocking is paused for profile %s until %s by %s", profile,
			 bw_decision_time(p[i].until, when, sizeof(when)), p[i].by);
		return true;
	}
	return false;
}

bool bw_server_pause_text(struct bw_server *s, const char *profile, char *buf, size_t cap)
{
	pthread_mutex_lock(&s->state_lock);
	bool r = pause_text(s->pauses, s->n_pauses, profile, buf, cap);
	pthread_mutex_unlock(&s->state_lock);
	return r;
}

void bw_decisions_file_apply(const struct bw_conf *conf, struct bw_policy *p)
{
	struct bw_decisions *d = NULL;
	size_t bad;
	char err[300];
	char *path = state_file(conf, DECISIONS_FILE);
	if (path && bw_decisions_load(path, &d, &bad, err, sizeof(err)) == 0)
		bw_policy_set_decisions(p, d);
	bw_decisions_unref(d);
	free(path);
}

bool bw_pause_file_text(const struct bw_conf *conf, const char *profile, char *buf, size_t cap)
{
	struct bw_pause p[16];
	char *path = state_file(conf, PAUSES_FILE);
	size_t n = pauses_read(path, p, BW_ARRAY_LEN(p));
	free(path);
	return pause_text(p, n, profile, buf, cap);
}
