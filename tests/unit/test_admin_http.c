/*
 * tests/unit/test_admin_http.c - the HTTP API's own parsing (admin/http_parse.c): query
 * strings, JSON bodies, cookies, routes with a tail, 404 and 405 with Allow, dashboard
 * file paths; and the tokens (admin/tokens.c): new tokens, lines of the file, writing and
 * reading it, the daemon's view seeing a change and a revocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void test_query(void **state)
{
	(void)state;
	char err[200];
	json_t *a = json_object();
	assert_int_equal(bw_admin_query_args("name=a.example&verdict=blocked&q=x+y%2Fz&flag", a,
					     err, sizeof(err)), 0);
	assert_string_equal(str(a, "name"), "a.example");
	assert_string_equal(str(a, "q"), "x y/z");
	assert_string_equal(str(a, "flag"), "");
	assert_int_equal(bw_admin_query_args("&&", a, err, sizeof(err)), 0);
	static const char *const bad[] = {"name=1", "x=%zz", "x=%4", "x=%00", "x=%0a", "=1",
					  "a%20b=1", "x=%ff%fe", NULL};
	for (int i = 0; bad[i]; i++) {
		json_t *b = json_object();
		json_object_set_new(b, "name", json_string("given"));
		assert_int_not_equal(bw_admin_query_args(bad[i], b, err, sizeof(err)), 0);
		json_decref(b);
	}
	json_decref(a);
}

static void test_body(void **state)
{
	(void)state;
	char err[200];
	json_t *a = json_object();
	json_object_set_new(a, "limit", json_string("5"));
	const char *ok = "{\"name\": \"x.example\", \"minutes\": 10, \"all\": true}";
	assert_int_equal(bw_admin_body_args(ok, strlen(ok), a, err, sizeof(err)), 0);
	assert_string_equal(str(a, "name"), "x.example");
	assert_int_equal(json_integer_value(json_object_get(a, "minutes")), 10);
	static const char *const bad[] = {"{", "[1]", "\"s\"", "{\"limit\": 1}",
					  "{\"a\": 1, \"a\": 2}", "", NULL};
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(bw_admin_body_args(bad[i], strlen(bad[i]), a, err, sizeof(err)),
				 BW_EMALFORMED);
		assert_true(err[0] != 0);
	}
	json_decref(a);
}

static void test_cookie(void **state)
{
	(void)state;
	char v[40];
	assert_true(bw_admin_cookie_get("a=1; bulwark_session=abc; c=3", "bulwark_session", v,
					sizeof(v)));
	assert_string_equal(v, "abc");
	assert_true(bw_admin_cookie_get("bulwark_session=x ", "bulwark_session", v, sizeof(v)));
	assert_string_equal(v, "x");
	assert_false(bw_admin_cookie_get("xbulwark_session=abc", "bulwark_session", v, sizeof(v)));
	assert_false(bw_admin_cookie_get("bulwark_session=", "bulwark_session", v, sizeof(v)));
	assert_false(bw_admin_cookie_get("bulwark_session", "bulwark_session", v, sizeof(v)));
	assert_false(bw_admin_cookie_get("bulwark_session=0123456789012345678901234567890123456789",
					 "bulwark_session", v, sizeof(v)));
	assert_false(bw_admin_cookie_get("", "bulwark_session", v, sizeof(v)));
}

static json_t *nop(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)ctx, (void)c, (void)err, (void)errlen;
	return json_object();
}

static void test_route(void **state)
{
	(void)state;
	struct bw_admin *a = NULL;
	char err[200], tail[64], allow[64];
	assert_int_equal(bw_admin_create("/tmp/unused.sock", &a, err, sizeof(err)), 0);
	static const struct bw_admin_action acts[] = {
	    {.name = "allow", .method = "POST", .path = "/api/v1/allow", .fn = nop},
	    {.name = "unallow", .method = "DELETE", .path = "/api/v1/allow/*", .tail = "name",
	     .fn = nop},
	    {.name = "status", .method = "GET", .path = "/api/v1/status", .fn = nop},
	};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(bw_admin_register_action(a, &acts[i]), 0);
	const struct bw_admin_action *x;
	assert_int_equal(bw_admin_route(a, "POST", "/api/v1/allow", &x, tail, sizeof(tail), allow,
					sizeof(allow)), 0);
	assert_string_equal(x->name, "allow");
	assert_string_equal(tail, "");
	assert_int_equal(bw_admin_route(a, "DELETE", "/api/v1/allow/b%2Dad.example", &x, tail,
					sizeof(tail), allow, sizeof(allow)), 0);
	assert_string_equal(x->name, "unallow");
	assert_string_equal(tail, "b-ad.example");
	assert_int_equal(bw_admin_route(a, "GET", "/api/v1/allow", &x, tail, sizeof(tail), allow,
					sizeof(allow)), 405);
	assert_string_equal(allow, "POST");
	assert_int_equal(bw_admin_route(a, "DELETE", "/api/v1/allow/", &x, tail, sizeof(tail),
					allow, sizeof(allow)), 404);
	assert_int_equal(bw_admin_route(a, "DELETE", "/api/v1/allow/%00", &x, tail, sizeof(tail),
					allow, sizeof(allow)), 400);
	assert_int_equal(bw_admin_route(a, "GET", "/api/v1/statusx", &x, tail, sizeof(tail), allow,
					sizeof(allow)), 404);
	bw_admin_destroy(a);
}

static void test_static_path(void **state)
{
	(void)state;
	char rel[256];
	assert_int_equal(bw_admin_static_path("/", rel, sizeof(rel)), 0);
	assert_string_equal(rel, "index.html");
	assert_int_equal(bw_admin_static_path("/assets/app.v2.js", rel, sizeof(rel)), 0);
	assert_string_equal(rel, "assets/app.v2.js");
	static const char *const bad[] = {"/..", "/../etc/passwd", "/assets/../x", "/.env",
					  "//x", "/a//b", "/a/", "/%2e%2e/x", "/a\\b", "/a b",
					  "/a/b/c/d/e", "", "x", "/assets/.", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(bw_admin_static_path(bad[i], rel, sizeof(rel)), BW_ENOENT);
}

static void test_token_lines(void **state)
{
	(void)state;
	char t1[BW_TOKEN_LEN + 1], t2[BW_TOKEN_LEN + 1];
	assert_int_equal(bw_token_new(t1), 0);
	assert_int_equal(bw_token_new(t2), 0);
	assert_int_equal(strlen(t1), BW_TOKEN_LEN);
	assert_memory_equal(t1, BW_TOKEN_PREFIX, 4);
	assert_string_not_equal(t1, t2);
	assert_int_equal(strspn(t1 + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789-_"), 43);
	struct bw_token_entry e;
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	char line[200];
	snprintf(line, sizeof(line), "ops-1 admin %s 1700000000", hex);
	assert_int_equal(bw_token_parse_line(line, &e), 0);
	assert_string_equal(e.name, "ops-1");
	assert_int_equal(e.role, BW_ROLE_ADMIN);
	assert_int_equal(e.hash[1], 0x11);
	assert_int_equal(bw_token_parse_line("  # comment", &e), BW_ENOENT);
	assert_int_equal(bw_token_parse_line("", &e), BW_ENOENT);
	snprintf(line, sizeof(line), "ops root %s 1", hex);
	assert_int_equal(bw_token_parse_line(line, &e), BW_EMALFORMED);
	snprintf(line, sizeof(line), "ops viewer %s 1 extra", hex);
	assert_int_equal(bw_token_parse_line(line, &e), BW_EMALFORMED);
	snprintf(line, sizeof(line), "-x viewer %s 1", hex);
	assert_int_equal(bw_token_parse_line(line, &e), BW_EMALFORMED);
	assert_int_equal(bw_token_parse_line("ops viewer 0011 1", &e), BW_EMALFORMED);
}

static void test_tokens_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-tokens-XXXXXX", path[100], err[300];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/admin-tokens", dir);
	char tok[BW_TOKEN_LEN + 1];
	assert_int_equal(bw_token_new(tok), 0);
	struct bw_token_entry e = {.name = "ann", .role = BW_ROLE_VIEWER, .created = 5};
	bw_token_hash(tok, e.hash);
	struct bw_tokens *t = bw_tokens_open(path);
	assert_non_null(t);
	struct bw_token_entry got;
	assert_false(bw_tokens_check(t, tok, &got)); /* no file: no token */
	assert_int_equal(bw_tokens_write(path, &e, 1, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	sleep(1); /* the daemon's view looks at most once a second */
	assert_true(bw_tokens_check(t, tok, &got));
	assert_string_equal(got.name, "ann");
	assert_false(bw_tokens_check(t, "bwk_wrong", &got));
	assert_true(bw_tokens_still(t, "ann", e.hash, &got));
	struct bw_token_entry *all;
	size_t n;
	assert_int_equal(bw_tokens_read(path, &all, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(all[0].hash, e.hash, 32);
	free(all);
	assert_int_equal(bw_tokens_write(path, NULL, 0, err, sizeof(err)), 0); /* revoked */
	sleep(1);
	assert_false(bw_tokens_check(t, tok, &got));
	assert_false(bw_tokens_still(t, "ann", e.hash, &got));
	bw_tokens_free(t);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query),      cmocka_unit_test(test_body),
	    cmocka_unit_test(test_cookie),     cmocka_unit_test(test_route),
	    cmocka_unit_test(test_static_path), cmocka_unit_test(test_token_lines),
	    cmocka_unit_test(test_tokens_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
