/*
 * core/actions.c - the server's admin actions (admin/admin.h; docs/api.md, "Data
 * endpoints"): `series` (the per-minute counts, telemetry.h), `why` (GET
 * /api/v1/explain: bulwark explain on the daemon's live policy and profile choice) and `check-config` (a posted YAML loaded
 * as the daemon would, nothing applied).
 *
 * Actions run on the admin thread, one at a time. The live state is held like a worker
 * holds it, in the admin thread's own reader slot (BW_READER_ADMIN): a reload swapping it
 * meanwhile waits for the release before it frees the old one.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/internal.h"
#include "policy/decisions.h"
#include "policy/explain.h"

#define CHECK_MAX (64 * 1024) /* bytes of posted YAML */

static const struct bw_state *hold(struct bw_server *s)
{
	return bw_snapref_acquire(&s->state_ref, s->nworkers + BW_READER_ADMIN);
}

static void drop(struct bw_server *s)
{
	bw_snapref_release(&s->state_ref, s->nworkers + BW_READER_ADMIN);
}

/* ---- series ---- */

static json_t *series_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	struct bw_server *s = ctx;
	long long minutes;
	if (!bw_admin_arg_int(c, "minutes", 60, 1, BW_SERIES_MINUTES, &minutes, err, errlen))
		return NULL;
	struct bw_series_profile prof[256];
	const struct bw_state *st = hold(s);
	unsigned n = bw_policy_profile_count(st->policy);
	if (n > 256)
		n = 256;
	for (unsigned i = 0; i < n; i++)
		prof[i] = (struct bw_series_profile){bw_policy_profile_name(st->policy, i),
						     st->profile_slot[i]};
	json_t *r = bw_series_json(s->series, (uint64_t)time(NULL), (unsigned)minutes, prof, n);
	drop(s);
	if (!r)
		snprintf(err, errlen, "out of memory");
	return r;
}

/* ---- explain ---- */

/* Who asks: an IP address, id:CLIENTID or a client's name, looked up in the live state. */
struct asker {
	struct sockaddr_storage ss;
	const struct sockaddr *sa;
	int client;
	char text[BW_CLIENT_NAME_MAX + 128];
};

static bool find_asker(const struct bw_state *st, const char *arg, struct asker *a, char *err,
		       size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->client = -1;
	if (!arg || !*arg)
		return true;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	const char *how = "by name";
	enum bw_client_by by;
	if (inet_pton(AF_INET, arg, &s4->sin_addr) == 1 ||
	    inet_pton(AF_INET6, arg, &s6->sin6_addr) == 1) {
		a->ss.ss_family = strchr(arg, ':') ? AF_INET6 : AF_INET;
		a->sa = (const struct sockaddr *)&a->ss;
		a->client = st->clients ? bw_clients_by_addr(st->clients, NULL, a->sa, &by) : -1;
		how = "by its address";
	} else if (!strncmp(arg, "id:", 3)) {
		char id[BW_CLIENT_ID_MAX + 1];
		size_t len = strlen(arg + 3);
		for (size_t i = 0; i < len && i < BW_CLIENT_ID_MAX; i++)
			id[i] = (char)tolower((unsigned char)arg[3 + i]);
		a->client = len <= BW_CLIENT_ID_MAX && st->clients
				    ? bw_clients_by_id(st->clients, id, len)
				    : -1;
		if (a->client < 0) {
			snprintf(err, errlen, "client: no client has that ClientID");
			return false;
		}
		how = "by its ClientID";
	} else if ((a->client = bw_clients_by_name(st->conf, arg)) < 0) {
		snprintf(err, errlen, "client: '%.100s' is not an IP address, id:CLIENTID or the "
				      "name of a configured client", arg);
		return false;
	}
	if (a->client >= 0)
		snprintf(a->text, sizeof(a->text), "%s (%s%s%s)",
			 st->conf->clients.list[a->client].name, how, a->sa ? " " : "",
			 a->sa ? arg : "");
	return true;
}

/* The explain text as an array of lines. */
static json_t *split_lines(const char *text)
{
	json_t *lines = json_array();
	for (const char *p = text; lines && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		json_array_append_new(lines, json_stringn(p, n));
		p += n + (nl ? 1 : 0);
	}
	return lines;
}

/* What the policy decided, typed (the text is explain's): the pipeline's first two
 * decisions, the client's address and then the name. */
struct outcome {
	const char *verdict; /* "blocked", "allowed", "local" */
	const char *feed, *category;
	char reason[600];
	json_t *decision; /* a local decision that decides: {"action", "by", "at"}, or NULL */
};

/* The pauses in force, copied before the state is held: bw_server_pauses() takes the
 * state lock, which a writer may hold while it waits for our reader slot. */
struct pauses {
	struct bw_pause p[16];
	size_t n;
};

/* "blocking of profile X is paused until TIME by WHO" into buf when it is; else false. */
static bool paused_text(const struct pauses *ps, const char *profile, char *buf, size_t cap)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (strcmp(ps->p[i].profile, profile) != 0)
			continue;
		char when[32];
		snprintf(buf, cap, "blocking of profile %s is paused until %s by %s", profile,
			 bw_decision_time(ps->p[i].until, when, sizeof(when)), ps->p[i].by);
		return true;
	}
	return false;
}

/* A local decision on the name (or a parent) decides before any feed: the outcome. */
static bool local_decision(const struct bw_state *st, const uint8_t *wire, int len,
			   const char *name, struct outcome *o)
{
	const struct bw_local_decision *d =
	    len > 0 ? bw_policy_decision(st->policy, wire, (size_t)len) : NULL;
	if (!d)
		return false;
	char when[32], text[BW_DECISION_NAME_TEXT];
	bool block = d->action == BW_DECISION_BLOCK;
	bw_decision_time(d->at, when, sizeof(when));
	o->verdict = block ? "blocked" : "allowed";
	o->feed = block ? "local" : NULL;
	o->category = block ? "local" : NULL;
	snprintf(o->reason, sizeof(o->reason), "%s: a local decision by %s at %s %s %s%s.",
		 block ? "Blocked" : "Allowed", d->who, when, block ? "blocks" : "allows",
		 bw_decision_text(d, text, sizeof(text)),
		 strcmp(text, name) ? " and the names under it" : "");
	o->decision = json_pack("{s:s, s:s, s:s, s:s}", "action",
				bw_decision_action_name(d->action), "name", text, "by", d->who,
				"at", when);
	return true;
}

static void reason_text(struct outcome *o, const struct bw_verdict *v, enum bw_decision d,
			bool by_client, bool blocked, const char *name, const char *profile,
			bool unchecked)
{
	bool has_feed = v->feed >= 0 && v->feed_name;
	o->verdict = blocked ? "blocked" : "allowed";
	o->feed = has_feed ? v->feed_name : NULL;
	o->category = has_feed ? v->category : NULL;
	const char *cat = o->category ? o->category : "?";
	if (blocked && !has_feed)
		snprintf(o->reason, sizeof(o->reason),
			 "Blocked: Bulwark's guard judged %s suspicious (a look-alike of a protected "
			 "domain, or newly seen) for profile %s.", name, profile);
	else if (blocked && d == BW_DECIDE_REDIRECT)
		snprintf(o->reason, sizeof(o->reason),
			 "Redirected: listed by feed %s (%s) for profile %s, which sends it to "
			 "another name.", o->feed, cat, profile);
	else if (blocked && by_client)
		snprintf(o->reason, sizeof(o->reason), "Blocked: the address of the client that "
			 "asks is listed by feed %s (%s) for profile %s.", o->feed, cat, profile);
	else if (blocked)
		snprintf(o->reason, sizeof(o->reason), "Blocked: listed by feed %s (%s) for "
			 "profile %s.", o->feed, cat, profile);
	else if (d == BW_DECIDE_ALLOWLISTED)
		snprintf(o->reason, sizeof(o->reason), "Allowed: %s is on an allowlist, so no "
			 "feed applies to it (profile %s).", name, profile);
	else if (has_feed && v->log_only)
		snprintf(o->reason, sizeof(o->reason), "Allowed: listed by feed %s (%s), but that "
			 "feed only logs (on trial), so it is answered normally (profile %s).",
			 o->feed, cat, profile);
	else if (has_feed)
		snprintf(o->reason, sizeof(o->reason), "Allowed: feed %s (%s) lets it through "
			 "(profile %s).", o->feed, cat, profile);
	else
		snprintf(o->reason, sizeof(o->reason), "Allowed: no feed used by profile %s "
			 "lists %s.%s", profile, name, unchecked ? " Its answer was not checked "
			 "here: an address or CNAME rule could still block it when it is resolved."
			 : "");
}

static void decide(const struct bw_state *st, unsigned profile, const struct asker *a,
		   const char *name, bool blocked, bool unchecked, struct outcome *o)
{
	uint8_t wire[BW_DNS_MAXNAME];
	int len = bw_name_from_text(name, strlen(name), wire);
	struct bw_verdict v = {.feed = -1};
	enum bw_decision d = BW_DECIDE_NONE;
	bool by_client = false;
	if (local_decision(st, wire, len, name, o))
		return;
	if (len > 0) {
		by_client = a->sa && bw_policy_decide_client(st->policy, profile, a->sa, wire,
							     (size_t)len, &v) && !v.log_only;
		if (!by_client) {
			memset(&v, 0, sizeof(v));
			v.feed = -1;
			d = bw_policy_decide_qname(st->policy, profile, wire, (size_t)len, &v);
		}
	}
	reason_text(o, &v, d, by_client, blocked, name,
		    bw_policy_profile_name(st->policy, profile), unchecked);
}

/* Names Bulwark answers itself (local records, special-use names) never reach the
 * policy: 1 with the text written when name is one, else 0. */
static int explain_local(struct bw_server *s, const struct bw_state *st, const char *name,
			 FILE *out)
{
	uint8_t wire[BW_DNS_MAXNAME];
	int len = bw_name_from_text(name, strlen(name), wire);
	struct bw_local_hit hit;
	if (len <= 0 || !st->local)
		return 0;
	enum bw_local_kind k = bw_local_find(st->local, wire, (size_t)len, &hit);
	if (k != BW_LOCAL_RECORD && !(k == BW_LOCAL_SPECIAL && !hit.recurse))
		return 0;
	fprintf(out, "name:     %s\n", name);
	bw_local_explain(st->local, st->conf, s->conf, wire, (size_t)len, out);
	return 1;
}

static json_t *explain_result(const char *name, struct outcome *o, const char *profile,
			      const char *text)
{
	json_t *r = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:o}", "name", name, "verdict",
			      o->verdict, "feed", o->feed, "category", o->category, "profile",
			      profile, "reason", o->reason, "lines", split_lines(text));
	if (r && o->decision)
		json_object_set(r, "decision", o->decision);
	json_decref(o->decision);
	o->decision = NULL;
	return r;
}

/* Explains name under the held state st into text (a memstream's buffer). */
static json_t *explain_held(struct bw_server *s, const struct bw_state *st, const char *name,
			    const struct asker *a, uint16_t qtype, const struct pauses *ps,
			    char *err, size_t errlen)
{
	char *text = NULL;
	size_t tlen = 0;
	FILE *out = open_memstream(&text, &tlen);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct bw_profile_ask ask = {.client = a->client, .minute = bw_clients_minute_now(),
				     .listener = -1, .peer = a->sa};
	unsigned profile = bw_choose_profile(st->policy, st->conf, &ask);
	const char *pname = bw_policy_profile_name(st->policy, profile);
	struct outcome o = {0};
	char paused[300];
	bool is_paused = paused_text(ps, pname, paused, sizeof(paused));
	int rc = 0;
	if (explain_local(s, st, name, out)) {
		o.verdict = "local";
		snprintf(o.reason, sizeof(o.reason), "Answered by Bulwark itself: %s is a local "
			 "name (a local record or a special-use name), no feed applies.", name);
	} else {
		struct bw_explain_opts eo = {.client = a->sa,
					     .client_text = a->text[0] ? a->text : NULL,
					     .profile = (int)profile, .listener = -1,
					     .qtype = qtype, .paused = is_paused ? paused : NULL};
		rc = bw_policy_explain(st->conf, st->policy, name, &eo, out);
	}
	fclose(out);
	json_t *r = NULL;
	if (rc < 0)
		snprintf(err, errlen, "name: '%.100s' is not a valid domain name", name);
	else {
		if (!o.verdict && is_paused && rc != 1) {
			o.verdict = "allowed";
			snprintf(o.reason, sizeof(o.reason), "Allowed: %s, so no feed applies.",
				 paused);
		}
		if (!o.verdict)
			decide(st, profile, a, name, rc == 1, text && strstr(text, "not checked"),
			       &o);
		r = explain_result(name, &o, pname, text ? text : "");
		if (!r)
			snprintf(err, errlen, "out of memory");
	}
	free(text);
	return r;
}

static json_t *explain_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	struct bw_server *s = ctx;
	const char *name = bw_admin_arg_str(c, "name", NULL);
	const char *type = bw_admin_arg_str(c, "type", "A");
	uint16_t qtype;
	if (!name || !*name || strlen(name) > 4 * BW_DNS_MAXNAME) {
		snprintf(err, errlen, "name: which name to explain (name=example.com)");
		return NULL;
	}
	if (bw_type_from_text(type, &qtype) != 0) {
		snprintf(err, errlen, "type: unknown query type '%.40s'", type);
		return NULL;
	}
	struct pauses ps;
	ps.n = bw_server_pauses(s, ps.p, BW_ARRAY_LEN(ps.p));
	const struct bw_state *st = hold(s);
	struct asker a;
	json_t *r = NULL;
	if (find_asker(st, bw_admin_arg_str(c, "client", NULL), &a, err, errlen))
		r = explain_held(s, st, name, &a, qtype, &ps, err, errlen);
	drop(s);
	return r;
}

/* ---- check-config ---- */

/* The directory a posted config is written to: the running config's (relative file names
 * then mean what they mean there) when the daemon may write there, else its state dir. */
static void check_dir(const struct bw_conf *conf, char *out, size_t cap)
{
	const char *slash = conf->path ? strrchr(conf->path, '/') : NULL;
	if (slash) {
		snprintf(out, cap, "%.*s", (int)(slash - conf->path), conf->path);
		if (access(out, W_OK | X_OK) == 0)
			return;
	}
	snprintf(out, cap, "%s", conf->server.state_dir ? conf->server.state_dir
							: BW_CONF_DEFAULT_STATE_DIR);
}

/* Writes len bytes of text to a new private file in dir: its path in path, 0 or errno. */
static int write_temp(const char *dir, const char *text, size_t len, char *path, size_t cap)
{
	snprintf(path, cap, "%s/.bulwark-check-XXXXXX", dir);
	int fd = mkstemp(path); /* mode 0600 */
	if (fd < 0)
		return errno;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			unlink(path);
			return e;
		}
		off += (size_t)n;
	}
	return close(fd) == 0 ? 0 : errno;
}

/* msg with every occurrence of the temp file's path replaced by "posted". */
static json_t *posted_message(const char *msg, const char *path)
{
	char out[2048];
	size_t n = 0, pl = strlen(path);
	for (const char *p = msg; *p && n + 8 < sizeof(out);) {
		if (!strncmp(p, path, pl)) {
			n += (size_t)snprintf(out + n, sizeof(out) - n, "posted");
			p += pl;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = 0;
	return json_string(out);
}

static json_t *check_config_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	struct bw_server *s = ctx;
	const char *text = c->body;
	size_t len = c->body_len;
	if (!text || !len) {
		text = bw_admin_arg_str(c, "yaml", NULL);
		len = text ? strlen(text) : 0;
	}
	if (!text || !len) {
		snprintf(err, errlen, "post the YAML to check as the request body (or as \"yaml\")");
		return NULL;
	}
	if (len > CHECK_MAX) {
		c->status = 413;
		snprintf(err, errlen, "the posted config is %zu bytes; at most 64 KiB (%d bytes) "
			 "are checked", len, CHECK_MAX);
		return NULL;
	}
	char dir[1024], path[1100];
	check_dir(s->conf, dir, sizeof(dir));
	int e = write_temp(dir, text, len, path, sizeof(path));
	if (e) {
		c->status = 503;
		snprintf(err, errlen, "cannot write a temporary file in %s: %s", dir, strerror(e));
		return NULL;
	}
	char msg[1024];
	struct bw_conf *conf = NULL;
	int rc = bw_conf_load(path, &conf, msg, sizeof(msg));
	bw_conf_free(conf);
	json_t *errors = json_array();
	if (rc != 0)
		json_array_append_new(errors, posted_message(msg, path));
	unlink(path);
	return json_pack("{s:b, s:o}", "valid", rc == 0, "errors", errors);
}

int bw_server_register_actions(struct bw_server *s, struct bw_admin *adm)
{
	const struct bw_admin_action acts[] = {
	    {.name = "series", .method = "GET", .path = "/api/v1/series", .role = BW_ROLE_VIEWER,
	     .positional = "minutes", .fn = series_action, .ctx = s,
	     .help = "per-minute counts of the last N minutes (default 60, at most 1440): "
		     "queries, blocked, cache hits, by transport and by profile"},
	    {.name = "why", .method = "GET", .path = "/api/v1/explain",
	     .role = BW_ROLE_VIEWER, .positional = "name client type", .fn = explain_action,
	     .ctx = s,
	     .help = "why a name is blocked or not, on the running daemon's policy (client: "
		     "an address, id:CLIENTID or a client's name)"},
	    {.name = "check-config", .method = "POST", .path = "/api/v1/check-config",
	     .role = BW_ROLE_ADMIN, .fn = check_config_action, .ctx = s,
	     .help = "check a posted config (YAML, at most 64 KiB) as the daemon would load "
		     "it; nothing is applied"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(acts); i++) {
		int rc = bw_admin_register_action(adm, &acts[i]);
		if (rc)
			return rc;
	}
	return 0;
}
