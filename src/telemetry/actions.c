/*
 * telemetry/actions.c - the telemetry's admin actions (admin/admin.h; docs/api.md, "Data
 * endpoints"): querylog (search.c), top, alerts, alerts-ack, alerts-clear; and the
 * control socket's words `alerts` and `top [N]`, which print the same data as tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "telemetry/internal.h"

static const char *privacy_name(enum bw_privacy p)
{
	switch (p) {
	case BW_PRIVACY_NONE: return "none";
	case BW_PRIVACY_BLOCKED_ONLY: return "blocked-only";
	case BW_PRIVACY_ANONYMIZED: return "anonymized";
	default: return "full";
	}
}

/* ---- querylog ---- */

/* The search's arguments: true, or false with err. */
static bool search_args(const struct bw_admin_call *c, struct bw_tlm_search *q, char *err,
			size_t errlen)
{
	long long limit, offset;
	if (!bw_admin_arg_int(c, "limit", 100, 1, BW_TLM_SEARCH_MAX, &limit, err, errlen) ||
	    !bw_admin_arg_int(c, "offset", 0, 0, BW_TLM_SEARCH_MAX_OFFSET, &offset, err, errlen))
		return false;
	*q = (struct bw_tlm_search){.client = bw_admin_arg_str(c, "client", NULL),
				    .feed = bw_admin_arg_str(c, "feed", NULL),
				    .since_ms = -1, .until_ms = -1, .limit = (unsigned)limit,
				    .offset = (unsigned)offset};
	if (q->client && !*q->client)
		q->client = NULL;
	if (q->feed && !*q->feed)
		q->feed = NULL;
	if (bw_tlm_name_pattern(bw_admin_arg_str(c, "name", NULL), &q->name) != 0) {
		snprintf(err, errlen, "name: a name, .SUFFIX or *.SUFFIX, or PREFIX* (no spaces)");
		return false;
	}
	const char *v = bw_admin_arg_str(c, "verdict", "all");
	if (!strcmp(v, "blocked"))
		q->verdict = BW_TLM_VERDICT_BLOCKED;
	else if (!strcmp(v, "allowed"))
		q->verdict = BW_TLM_VERDICT_ALLOWED;
	else if (strcmp(v, "all") != 0) {
		snprintf(err, errlen, "verdict: blocked, allowed or all");
		return false;
	}
	const char *since = bw_admin_arg_str(c, "since", NULL);
	const char *until = bw_admin_arg_str(c, "until", NULL);
	if ((since && bw_tlm_parse_time(since, &q->since_ms)) ||
	    (until && bw_tlm_parse_time(until, &q->until_ms))) {
		snprintf(err, errlen, "since, until: unix seconds or ISO 8601 "
				      "(2024-05-01T12:00:00Z)");
		return false;
	}
	return true;
}

static json_t *querylog_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	struct bw_telemetry *t = ctx;
	struct bw_tlm_search q;
	if (!search_args(c, &q, err, errlen))
		return NULL;
	json_t *rows = json_array();
	json_t *r = json_pack("{s:s, s:i, s:i, s:o}", "privacy", privacy_name(t->privacy), "limit",
			      (int)q.limit, "offset", (int)q.offset, "rows", rows);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (t->privacy == BW_PRIVACY_NONE || t->conf->telemetry.query_log_off) {
		json_object_set_new(r, "more", json_false());
		json_object_set_new(r, "message", json_string(
			t->privacy == BW_PRIVACY_NONE ? "privacy none: no query is kept"
						      : "the query log is off (query-log: off)"));
		return r;
	}
	char *path = bw_tlm_log_path(t->conf);
	bool more = false;
	int rc = path ? bw_tlm_search(path, t->privacy, &q, rows, &more, err, errlen) : BW_ENOMEM;
	free(path);
	if (rc) {
		c->status = rc == BW_EINVAL || rc == BW_ERANGE ? 400 : 503; /* ERANGE: too long */
		if (rc == BW_ENOMEM)
			snprintf(err, errlen, "out of memory");
		json_decref(r);
		return NULL;
	}
	json_object_set_new(r, "more", json_boolean(more));
	return r;
}

/* ---- top and alerts ---- */

static json_t *top_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	long long n;
	if (!bw_admin_arg_int(c, "n", 10, 1, 1000, &n, err, errlen))
		return NULL;
	json_t *r = bw_telemetry_top_objects(ctx, (unsigned)n);
	if (!r)
		snprintf(err, errlen, "out of memory");
	return r;
}

static json_t *alerts_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)c;
	json_t *r = bw_telemetry_alerts_objects(ctx);
	if (!r)
		snprintf(err, errlen, "out of memory");
	return r;
}

static json_t *ack_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	long long id;
	if (!json_object_get(c->args, "id")) {
		snprintf(err, errlen, "id: which alert (its id, from `alerts`)");
		return NULL;
	}
	if (!bw_admin_arg_int(c, "id", 0, 1, INT64_MAX, &id, err, errlen))
		return NULL;
	if (bw_telemetry_alerts_ack(ctx, (uint64_t)id) != 0) {
		c->status = 404;
		snprintf(err, errlen, "no alert has the id %lld", id);
		return NULL;
	}
	return json_pack("{s:I, s:b}", "id", (json_int_t)id, "acknowledged", 1);
}

static json_t *clear_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	const char *all_text = bw_admin_arg_str(c, "all", NULL);
	const char *id_text = bw_admin_arg_str(c, "id", NULL);
	bool all = all_text && !strcmp(all_text, "yes"); /* all=no is not all */
	long long id = 0;
	if (id_text && !strcmp(id_text, "all"))
		all = true;
	else if (!bw_admin_arg_int(c, "id", 0, 0, INT64_MAX, &id, err, errlen))
		return NULL;
	if (!all && !id) {
		snprintf(err, errlen, "id: which alert (its id), or all=yes for every alert");
		return NULL;
	}
	unsigned n = bw_telemetry_alerts_clear(ctx, all ? 0 : (uint64_t)id);
	if (!all && !n) {
		c->status = 404;
		snprintf(err, errlen, "no alert has the id %lld", id);
		return NULL;
	}
	return json_pack("{s:i}", "cleared", (int)n);
}

/* ---- the words: tables, as before ---- */

static json_t *alerts_words(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	(void)argv;
	if (argc > 1) {
		snprintf(err, errlen, "usage: alerts (acknowledge: alerts-ack ID; remove: "
				      "alerts-clear ID|all)");
		return NULL;
	}
	return bw_telemetry_alerts_json(ctx);
}

static json_t *top_words(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	unsigned long n = 10;
	char *end;
	if (argc > 2 || (argc == 2 && ((n = strtoul(argv[1], &end, 10)) == 0 || *end || n > 1000))) {
		snprintf(err, errlen, "usage: top [N] (N from 1 to 1000, default 10)");
		return NULL;
	}
	return bw_telemetry_top_json(ctx, (unsigned)n);
}

int bw_telemetry_register_actions(struct bw_telemetry *t, struct bw_admin *adm)
{
	const struct bw_admin_action acts[] = {
	    {.name = "querylog", .method = "GET", .path = "/api/v1/querylog",
	     .role = BW_ROLE_VIEWER, .fn = querylog_action, .ctx = t,
	     .help = "search the query log: client= name= (.suffix, prefix*) verdict= "
		     "feed= since= until= limit= offset= (only what the privacy mode keeps)"},
	    {.name = "top", .method = "GET", .path = "/api/v1/top", .role = BW_ROLE_VIEWER,
	     .positional = "n", .fn = top_action, .ctx = t,
	     .help = "the most blocked names, clients and feeds as objects (the word `top` "
		     "prints a table)"},
	    {.name = "alerts", .method = "GET", .path = "/api/v1/alerts",
	     .role = BW_ROLE_VIEWER, .fn = alerts_action, .ctx = t,
	     .help = "alerts as objects with ids (the word `alerts` prints a table)"},
	    {.name = "alerts-ack", .method = "POST", .path = "/api/v1/alerts/ack",
	     .role = BW_ROLE_ADMIN, .changes = true, .positional = "id", .fn = ack_action,
	     .ctx = t, .help = "acknowledge alert ID"},
	    {.name = "alerts-clear", .method = "POST", .path = "/api/v1/alerts/clear",
	     .role = BW_ROLE_ADMIN, .changes = true, .positional = "id", .fn = clear_action,
	     .ctx = t, .help = "remove alert ID (all: every alert)"},
	};
	int rc = 0;
	for (size_t i = 0; i < BW_ARRAY_LEN(acts) && !rc; i++)
		rc = bw_admin_register_action(adm, &acts[i]);
	if (!rc)
		rc = bw_admin_register(adm, "alerts", "infected-looking clients (security alerts)",
				       alerts_words, t);
	if (!rc)
		rc = bw_admin_register(adm, "top", "top [N]: the most blocked names and clients",
				       top_words, t);
	return rc;
}
