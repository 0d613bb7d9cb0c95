/*
 * tests/fuzz/fuzz_admin_http.c - the admin HTTP API's own request parsing
 * (admin/http_parse.c) and the tokens file's lines (admin/tokens.c) on arbitrary bytes.
 *
 * Input: a mode byte, then the text. Modes: 0 a query string into arguments, 1 a JSON
 * body into arguments, 2 a Cookie header, 3 a method and path routed over a small
 * registry (the method is the text up to the first space), 4 a dashboard file's path,
 * 5 a line of the tokens file.
 * Properties: arguments are an object of valid strings (query) or what the body held; a
 * cookie's value is non-empty, without ';'; a route's action has the method asked and
 * its path matches; a dashboard path has no segment starting with '.' (so no "." or
 * ".."), no "//", '%' or '\\'; a parsed token line has a valid name and role.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "fuzz.h"

static json_t *nop(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)ctx, (void)c, (void)err, (void)errlen;
	return json_object();
}

static struct bw_admin *registry(void)
{
	static struct bw_admin *a;
	static const struct bw_admin_action acts[] = {
	    {.name = "allow", .method = "POST", .path = "/api/v1/allow", .fn = nop},
	    {.name = "unallow", .method = "DELETE", .path = "/api/v1/allow/*", .tail = "name",
	     .fn = nop},
	    {.name = "status", .method = "GET", .path = "/api/v1/status", .fn = nop},
	    {.name = "querylog", .method = "GET", .path = "/api/v1/querylog", .fn = nop},
	};
	char err[100];
	if (!a && bw_admin_create("/nonexistent/fuzz.sock", &a, err, sizeof(err)) == 0)
		for (size_t i = 0; i < BW_ARRAY_LEN(acts); i++)
			bw_admin_register_action(a, &acts[i]);
	return a;
}

static void check_args(json_t *args)
{
	const char *k;
	json_t *v;
	CHECK(json_is_object(args));
	json_object_foreach(args, k, v) CHECK(k[0] != 0);
}

static void route(const char *text)
{
	char method[16] = "", tail[256], allow[128];
	const char *sp = strchr(text, ' ');
	if (!sp || sp - text >= (long)sizeof(method))
		return;
	memcpy(method, text, (size_t)(sp - text));
	const struct bw_admin_action *x = NULL;
	int st = bw_admin_route(registry(), method, sp + 1, &x, tail, sizeof(tail), allow,
				sizeof(allow));
	CHECK(st == 0 || st == 400 || st == 404 || st == 405);
	CHECK((st == 0) == (x != NULL));
	if (x) {
		CHECK(!strcmp(x->method, method));
		CHECK(!strncmp(x->path, sp + 1, strlen(x->path) - (x->tail ? 1 : 0)));
		CHECK(!x->tail == !tail[0]);
	}
	if (st == 405)
		CHECK(allow[0] != 0);
}

static void static_path(const char *text)
{
	char rel[256];
	if (bw_admin_static_path(text, rel, sizeof(rel)) != 0)
		return;
	CHECK(rel[0] != '/' && rel[0] != '.');
	/* no segment is "." or ".." ("a..b" is a name like any other) */
	CHECK(!strstr(rel, "/.") && !strstr(rel, "//") && !strchr(rel, '%') && !strchr(rel, '\\'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	char err[300], v[64];
	json_t *args = json_object();
	struct bw_token_entry e;
	switch (data[0] % 6) {
	case 0:
		if (bw_admin_query_args(text, args, err, sizeof(err)) == 0)
			check_args(args);
		break;
	case 1:
		if (bw_admin_body_args((const char *)data + 1, size - 1, args, err, sizeof(err)) == 0)
			check_args(args);
		break;
	case 2:
		if (bw_admin_cookie_get(text, "bulwark_session", v, sizeof(v)))
			CHECK(v[0] && !strchr(v, ';'));
		break;
	case 3: route(text); break;
	case 4: static_path(text); break;
	default:
		if (bw_token_parse_line(text, &e) == 0)
			CHECK(!bw_token_name_problem(e.name) && e.role != BW_ROLE_NONE);
		break;
	}
	json_decref(args);
	free(text);
	return 0;
}
