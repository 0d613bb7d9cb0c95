/*
 * tests/unit/test_admin.c - the admin action registry (admin/admin.h): words mapped to
 * positional and KEY=VALUE arguments, the JSON request line, roles (403), unknown actions
 * (404), argument readers, and the audit log's line for a change (also for a failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"

static json_t *echo(void *ctx, struct bw_admin_call *c, char *err, size_t errlen)
{
	(void)ctx;
	long long n;
	if (!bw_admin_arg_int(c, "minutes", 5, 1, 60, &n, err, errlen))
		return NULL;
	return json_pack("{s:s, s:s, s:I, s:s}", "profile", bw_admin_arg_str(c, "profile", "-"),
			 "note", bw_admin_arg_str(c, "note", "-"), "minutes", (json_int_t)n, "who",
			 c->who);
}

static struct bw_admin *make(const char *audit_path)
{
	struct bw_admin *a = NULL;
	char err[200];
	assert_int_equal(bw_admin_create("/tmp/unused.sock", &a, err, sizeof(err)), 0);
	struct bw_admin_action x = {.name = "pause", .method = "POST", .path = "/api/v1/pause",
				    .positional = "profile minutes", .role = BW_ROLE_ADMIN,
				    .changes = true, .help = "pause", .fn = echo};
	assert_int_equal(bw_admin_register_action(a, &x), 0);
	assert_int_equal(bw_admin_set_audit(a, audit_path), 0);
	return a;
}

static const char *result_str(json_t *r, const char *key)
{
	return json_string_value(json_object_get(json_object_get(r, "result"), key));
}

static void test_words(void **state)
{
	(void)state;
	struct bw_admin *a = make(NULL);
	json_t *r = bw_admin_handle(a, "pause family 10 note=lunch\n");
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_string_equal(result_str(r, "profile"), "family");
	assert_string_equal(result_str(r, "note"), "lunch");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"),
							     "minutes")), 10);
	assert_non_null(strstr(result_str(r, "who"), "bulwarkctl (uid "));
	json_decref(r);
	r = bw_admin_handle(a, "pause a 1 extra");
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "too many"));
	json_decref(r);
	r = bw_admin_handle(a, "pause a 999");
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "out of range"));
	json_decref(r);
	r = bw_admin_handle(a, "{\"action\": \"pause\", \"args\": {\"profile\": \"x\", \"minutes\": 3}}");
	assert_string_equal(result_str(r, "profile"), "x");
	json_decref(r);
	r = bw_admin_handle(a, "{\"action\": 5}");
	assert_false(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	bw_admin_destroy(a);
}

static void test_roles_and_audit(void **state)
{
	(void)state;
	char path[] = "/tmp/bw-test-audit-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct bw_admin *a = make(path);
	json_t *args = json_pack("{s:s}", "profile", "p");
	struct bw_admin_call c = {.args = args, .who = "token ann", .role = BW_ROLE_VIEWER};
	json_t *r = bw_admin_run(a, "pause", &c);
	assert_int_equal(c.status, 403);
	json_decref(r);
	c.role = BW_ROLE_ADMIN;
	r = bw_admin_run(a, "pause", &c);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	r = bw_admin_run(a, "nope", &c);
	assert_int_equal(c.status, 404);
	json_decref(r);
	json_decref(args);
	bw_admin_destroy(a);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[1000];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "who")), "token ann");
		assert_string_equal(json_string_value(json_object_get(j, "action")), "pause");
		/* the refused try is audited too */
		assert_int_equal(json_is_true(json_object_get(j, "ok")), n == 1);
		json_decref(j);
		n++;
	}
	fclose(f);
	unlink(path);
	assert_int_equal(n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_roles_and_audit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
