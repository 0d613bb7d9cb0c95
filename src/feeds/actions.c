/*
 * feeds/actions.c - the feed manager's admin actions (admin/admin.h; docs/api.md, "Data
 * endpoints"): feeds (the status as objects), feeds-refresh and feeds-accept, over the
 * same functions as the control socket's word `feeds` (manager.c).
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "feeds/feeds.h"

/* A status cell: "-" (nothing) as null. */
static json_t *cell(json_t *v)
{
	if (json_is_string(v) && !strcmp(json_string_value(v), "-"))
		return json_null();
	return json_incref(v);
}

/* One row of bw_feeds_status() as an object: its columns (with '_' for '-'), and the
 * names the API promises: updated (last success), error (last error), held_back. */
static json_t *feed_object(json_t *cols, json_t *row)
{
	json_t *o = json_object();
	size_t i;
	json_t *col;
	json_array_foreach(cols, i, col) {
		char key[64];
		snprintf(key, sizeof(key), "%s", json_string_value(col));
		for (char *p = key; *p; p++)
			*p = *p == '-' ? '_' : *p;
		json_object_set_new(o, key, cell(json_array_get(row, i)));
	}
	json_t *held = json_object_get(o, "held_back");
	json_object_set(o, "held_version", held ? held : json_null());
	json_object_set_new(o, "held_back", json_boolean(held && !json_is_null(held)));
	json_object_set(o, "updated", json_object_get(o, "last_success"));
	json_object_set(o, "error", json_object_get(o, "last_error"));
	return o;
}

static json_t *feeds_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)c;
	json_t *t = bw_feeds_status(ctx);
	json_t *list = json_array();
	if (!t || !list) {
		json_decref(t);
		json_decref(list);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_t *cols = json_object_get(t, "columns"), *row;
	size_t i;
	json_array_foreach(json_object_get(t, "rows"), i, row)
		json_array_append_new(list, feed_object(cols, row));
	json_decref(t);
	return json_pack("{s:o}", "feeds", list);
}

/* refresh or accept feed `name`: {"name", "message"} */
static json_t *feed_do(struct bw_feeds *m, struct bw_admin_call *c, bool accept, char *err,
		       size_t errlen)
{
	const char *name = bw_admin_arg_str(c, "name", NULL);
	if (!name || !*name) {
		snprintf(err, errlen, "name: which feed");
		return NULL;
	}
	int rc = accept ? bw_feeds_accept(m, name, err, errlen)
			: bw_feeds_refresh(m, name, err, errlen);
	if (rc) {
		c->status = rc == BW_ENOENT ? 404 : 400;
		return NULL;
	}
	return json_pack("{s:s, s:s}", "name", name, "message", err);
}

static json_t *refresh_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return feed_do(ctx, c, false, err, errlen);
}

static json_t *accept_action(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	return feed_do(ctx, c, true, err, errlen);
}

int bw_feeds_register_actions(struct bw_feeds *m, struct bw_admin *adm)
{
	const struct bw_admin_action acts[] = {
	    {.name = "feeds", .method = "GET", .path = "/api/v1/feeds", .role = BW_ROLE_VIEWER,
	     .fn = feeds_action, .ctx = m,
	     .help = "every feed's status as objects (the word `feeds` prints a table)"},
	    {.name = "feeds-refresh", .method = "POST", .path = "/api/v1/feeds/refresh",
	     .role = BW_ROLE_ADMIN, .changes = true, .positional = "name", .fn = refresh_action,
	     .ctx = m, .help = "fetch feed NAME now"},
	    {.name = "feeds-accept", .method = "POST", .path = "/api/v1/feeds/accept",
	     .role = BW_ROLE_ADMIN, .changes = true, .positional = "name", .fn = accept_action,
	     .ctx = m, .help = "apply the held-back version of feed NAME"},
	};
	int rc = 0;
	for (size_t i = 0; i < BW_ARRAY_LEN(acts) && !rc; i++)
		rc = bw_admin_register_action(adm, &acts[i]);
	return rc;
}
