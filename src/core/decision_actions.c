/*
 * core/decision_actions.c - the admin actions of local decisions and pauses (admin/admin.h;
 * docs/api.md, "Decisions and pause"): allow, block, unallow, unblock, decisions, pause,
 * resume, and the status helper. One code path for the HTTP API and bulwarkctl.
 */
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "admin/admin.h"
#include "core/internal.h"
#include "policy/decisions.h"

/* The name argument, validated (400 otherwise). */
static bool arg_name(struct bw_admin_call *c, uint8_t wire[BW_DNS_MAXNAME], uint8_t *len,
		     char *err, size_t errlen)
{
	const char *name = bw_admin_arg_str(c, "name", NULL);
	if (bw_decision_name(name, wire, len, err, errlen))
		return true;
	c->status = 400;
	return false;
}

static json_t *decision_json(const struct bw_local_decision *d)
{
	char name[4 * BW_DNS_MAXNAME + 2];
	return json_pack("{s:s, s:s, s:s, s:I}", "name", bw_decision_text(d, name, sizeof(name)),
			 "action", bw_decision_action_name(d->action), "by", d->who, "at",
			 (json_int_t)d->at);
}

/* allow / block: ctx is the server; the action from the action's own name. */
static json_t *decide(struct bw_server *s, enum bw_decision_action a, struct bw_admin_call *c,
		      char *err, size_t errlen)
{
	struct bw_local_decision d = {.action = a, .at = (int64_t)time(NULL)};
	uint64_t gen;
	if (!arg_name(c, d.wire, &d.len, err, errlen))
		return NULL;
	/* one line in the file: no control characters in who */
	snprintf(d.who, sizeof(d.who), "%s", c->who ? c->who : "?");
	for (char *p = d.who; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	int rc = bw_server_decide(s, &d, &gen, err, errlen);
	if (rc) {
		c->status = rc == BW_ESPACE ? 409 : 503;
		return NULL;
	}
	json_t *r = decision_json(&d);
	json_object_set_new(r, "policy_generation", json_integer((json_int_t)gen));
	return r;
}

static json_t *undecide(struct bw_server *s, enum bw_decision_action a, struct bw_admin_call *c,
			char *err, size_t errlen)
{
	uint8_t wire[BW_DNS_MAXNAME], len;
	struct bw_local_decision old;
	uint64_t gen;
	if (!arg_name(c, wire, &len, err, errlen))
		return NULL;
	int rc = bw_server_undecide(s, wire, len, (int)a, &old, &gen, err, errlen);
	if (rc) {
		c->status = rc == BW_ENOENT ? 404 : 503;
		return NULL;
	}
	json_t *r = decision_json(&old);
	json_object_set_new(r, "removed", json_true());
	json_object_set_new(r, "policy_generation", json_integer((json_int_t)gen));
	return r;
}

static json_t *allow_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return decide(ctx, BW_DECISION_ALLOW, c, err, errlen);
}

static json_t *block_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return decide(ctx, BW_DECISION_BLOCK, c, err, errlen);
}

static json_t *unallow_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return undecide(ctx, BW_DECISION_ALLOW, c, err, errlen);
}

static json_t *unblock_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return undecide(ctx, BW_DECISION_BLOCK, c, err, errlen);
}

static json_t *pauses_json(struct bw_server *s)
{
	static struct bw_pause p[256]; /* actions run one at a time (the admin's lock) */
	size_t n = bw_server_pauses(s, p, BW_ARRAY_LEN(p));
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I, s:s}", "profile", p[i].profile,
						   "until", (json_int_t)p[i].until, "by", p[i].by));
	return a;
}

static json_t *decisions_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)c;
	struct bw_decisions *d = bw_server_decisions(ctx);
	json_t *list = json_array();
	for (size_t i = 0; list && i < bw_decisions_count(d); i++)
		json_array_append_new(list, decision_json(bw_decisions_at(d, i)));
	bw_decisions_unref(d);
	json_t *r = json_pack("{s:o, s:i, s:o}", "decisions", list, "max", BW_DECISIONS_MAX,
			      "paused", pauses_json(ctx));
	if (!r)
		snprintf(err, errlen, "out of memory");
	return r;
}

static const char *arg_profile(struct bw_admin_call *c, char *err, size_t errlen)
{
	const char *p = bw_admin_arg_str(c, "profile", NULL);
	if (!p || !*p) {
		snprintf(err, errlen, "a profile is needed");
		c->status = 400;
		return NULL;
	}
	return p;
}

/* pause PROFILE MINUTES: minutes 1..1440; or seconds=N (1..86400) instead, for scripts. */
static json_t *pause_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	long long n;
	const char *profile = arg_profile(c, err, errlen);
	if (!profile)
		return NULL;
	bool by_seconds = bw_admin_arg_str(c, "seconds", NULL) != NULL;
	if (!by_seconds && !bw_admin_arg_str(c, "minutes", NULL)) {
		snprintf(err, errlen, "minutes is needed (1 to %d)", BW_PAUSE_MAX_MINUTES);
		c->status = 400;
		return NULL;
	}
	if (!(by_seconds ? bw_admin_arg_int(c, "seconds", 0, 1, BW_PAUSE_MAX_MINUTES * 60, &n, err,
					    errlen)
			 : bw_admin_arg_int(c, "minutes", 0, 1, BW_PAUSE_MAX_MINUTES, &n, err,
					    errlen))) {
		c->status = 400;
		return NULL;
	}
	unsigned seconds = (unsigned)(by_seconds ? n : n * 60);
	struct bw_pause p;
	uint64_t gen;
	int rc = bw_server_pause(ctx, profile, seconds, c->who ? c->who : "?", &p, &gen,
				 err, errlen);
	if (rc) {
		c->status = rc == BW_ENOENT ? 404 : 503;
		return NULL;
	}
	return json_pack("{s:s, s:I, s:s, s:I}", "profile", p.profile, "until", (json_int_t)p.until,
			 "by", p.by, "policy_generation", (json_int_t)gen);
}

static json_t *resume_fn(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	uint64_t gen;
	const char *profile = arg_profile(c, err, errlen);
	if (!profile)
		return NULL;
	int rc = bw_server_resume(ctx, profile, c->who ? c->who : "?", &gen, err, errlen);
	if (rc) {
		c->status = rc == BW_ENOENT ? 404 : 503;
		return NULL;
	}
	return json_pack("{s:s, s:b, s:I}", "profile", profile, "resumed", 1, "policy_generation",
			 (json_int_t)gen);
}

void bw_server_paused_json(struct bw_server *s, json_t *out)
{
	json_t *p = pauses_json(s);
	if (!p)
		return;
	if (json_array_size(p))
		json_object_set_new(out, "protection", json_string("paused"));
	json_object_set_new(out, "paused", p);
}

int bw_server_register_decision_actions(struct bw_server *s, struct bw_admin *adm)
{
	const struct bw_admin_action acts[] = {
	    {"allow", "POST", "/api/v1/allow", NULL, "name", BW_ROLE_ADMIN, true,
	     "allow NAME and its subdomains now, over every feed (undo: unallow)", allow_fn, s},
	    {"block", "POST", "/api/v1/block", NULL, "name", BW_ROLE_ADMIN, true,
	     "block NAME and its subdomains now, in every profile (undo: unblock)", block_fn, s},
	    {"unallow", "DELETE", "/api/v1/allow/*", "name", "name", BW_ROLE_ADMIN, true,
	     "take the local allow of NAME away", unallow_fn, s},
	    {"unblock", "DELETE", "/api/v1/block/*", "name", "name", BW_ROLE_ADMIN, true,
	     "take the local block of NAME away", unblock_fn, s},
	    {"decisions", "GET", "/api/v1/decisions", NULL, NULL, BW_ROLE_VIEWER, false,
	     "the local decisions (allow/block) and the paused profiles", decisions_fn, s},
	    {"pause", "POST", "/api/v1/pause", NULL, "profile minutes", BW_ROLE_ADMIN, true,
	     "pause blocking for PROFILE for MINUTES (1-1440; or seconds=N)", pause_fn, s},
	    {"resume", "POST", "/api/v1/resume", NULL, "profile", BW_ROLE_ADMIN, true,
	     "resume blocking for PROFILE now", resume_fn, s},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(acts); i++) {
		int rc = bw_admin_register_action(adm, &acts[i]);
		if (rc)
			return rc;
	}
	return 0;
}
