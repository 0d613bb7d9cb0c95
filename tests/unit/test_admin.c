/*
 * tests/unit/test_admin.c - the admin action registry (admin/admin.h): words mapped to
 * positional and KEY=VALUE arguments, the JSON request line, roles (403), unknown actions
 * (404), argument readers, the audit log's line for a change (also for a failure), and help
 * (each name once; every action's route).
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

static json_t *status_word(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	(void)ctx, (void)argc, (void)argv, (void)err, (void)errlen;
	return json_pack("{s:s}", "message", "the word");
}

/* A word command and an action of the same name (status): help lists the name once, with
 * the word's line (the word is what `bulwarkctl status` runs); "actions" has every action's
 * route, the one behind the word too. */
static void test_help_lists_each_name_once(void **state)
{
	(void)state;
	struct bw_admin *a = make(NULL);
	struct bw_admin_action st = {.name = "status", .method = "GET", .path = "/api/v1/status",
				     .role = BW_ROLE_VIEWER, .help = "the action's line",
				     .fn = echo};
	struct bw_admin_action un = {.name = "unallow", .method = "DELETE",
				     .path = "/api/v1/allow/*", .tail = "name",
				     .positional = "name", .role = BW_ROLE_ADMIN, .changes = true,
				     .help = "undo", .fn = echo};
	assert_int_equal(bw_admin_register(a, "status", "the word's line", status_word, NULL), 0);
	assert_int_equal(bw_admin_register_action(a, &st), 0);
	assert_int_equal(bw_admin_register_action(a, &un), 0);
	json_t *r = bw_admin_handle(a, "help\n");
	json_t *res = json_object_get(r, "result"), *row, *x;
	size_t i;
	int status = 0, pause = 0, help = 0;
	json_array_foreach(json_object_get(res, "rows"), i, row) {
		const char *name = json_string_value(json_array_get(row, 0));
		const char *what = json_string_value(json_array_get(row, 1));
		if (!strcmp(name, "status")) {
			status++;
			assert_string_equal(what, "the word's line");
		}
		pause += !strcmp(name, "pause profile minutes");
		help += !strcmp(name, "help");
	}
	assert_int_equal(status, 1);
	assert_int_equal(pause, 1);
	assert_int_equal(help, 1);
	/* the word still runs for `status`; the action is there for {"action": "status"} */
	json_t *w = bw_admin_handle(a, "status\n");
	assert_string_equal(result_str(w, "message"), "the word");
	json_decref(w);
	json_t *acts = json_object_get(res, "actions");
	assert_int_equal(json_array_size(acts), 3);
	json_array_foreach(acts, i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		if (!strcmp(name, "unallow")) {
			assert_string_equal(json_string_value(json_object_get(x, "method")), "DELETE");
			assert_string_equal(json_string_value(json_object_get(x, "path")),
					    "/api/v1/allow/*");
			assert_string_equal(json_string_value(json_object_get(x, "tail")), "name");
			assert_string_equal(json_string_value(json_object_get(x, "role")), "admin");
			assert_true(json_is_true(json_object_get(x, "changes")));
		} else if (!strcmp(name, "status")) {
			assert_true(json_is_null(json_object_get(x, "tail")));
			assert_string_equal(json_string_value(json_object_get(x, "role")), "viewer");
		}
	}
	json_decref(r);
	bw_admin_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_roles_and_audit),
		cmocka_unit_test(test_help_lists_each_name_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
