/*
 * tests/unit/test_admin_data.c - the pieces of the admin API's data actions that need no
 * daemon (telemetry/telemetry.h): the per-minute series ring (what a minute counts, gaps,
 * the 24 h wrap, profile columns), the query log's name patterns and the SQL each maps to
 * (run on an in-memory SQLite table), and the time arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry.h"

#define T0 (1700000000ULL / 60 * 60) /* a minute's start */

static long long at(json_t *arr, size_t i)
{
	return (long long)json_integer_value(json_array_get(arr, i));
}

static void test_series_minutes(void **state)
{
	(void)state;
	struct bw_series *s = bw_series_create(4);
	assert_non_null(s);
	/* counted since the daemon started, before the first sample: the first minute's */
	struct bw_series_totals t = {.queries = 100, .blocked = 10};
	assert_true(bw_series_due(s, T0));
	bw_series_sample(s, T0, &t);
	assert_false(bw_series_due(s, T0 + 59));
	t.queries += 7, t.blocked += 2, t.cache_hits = 3, t.transport[BW_SERIES_DOT] = 5;
	t.profile[1] = 7;
	bw_series_sample(s, T0 + 60, &t); /* minute T0 counted 100 + 7 */
	t.queries += 4;
	bw_series_sample(s, T0 + 3 * 60 + 1, &t); /* two minutes late: T0+1 and T0+2 */
	struct bw_series_profile prof[] = {{"default", 0}, {"family", 1}, {"big", 9}};
	json_t *o = bw_series_json(s, T0 + 3 * 60 + 30, 4, prof, 3);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "start")), T0 - 60);
	assert_int_equal(json_integer_value(json_object_get(o, "resolution")), 60);
	json_t *q = json_object_get(o, "queries");
	assert_int_equal(json_array_size(q), 4);
	assert_int_equal(at(q, 0), 0); /* before the first sample */
	assert_int_equal(at(q, 1), 107);
	assert_int_equal(at(q, 2), 0); /* no sample ended it: 0 */
	assert_int_equal(at(q, 3), 4); /* what grew until the late sample */
	assert_int_equal(at(json_object_get(o, "blocked"), 1), 12);
	assert_int_equal(at(json_object_get(o, "cache_hits"), 1), 3);
	json_t *bt = json_object_get(o, "by_transport");
	assert_int_equal(at(json_object_get(bt, "dot"), 1), 5);
	assert_int_equal(json_array_size(json_object_get(bt, "doh")), 4);
	json_t *bp = json_object_get(o, "by_profile");
	assert_int_equal(at(json_object_get(bp, "family"), 1), 7);
	assert_int_equal(at(json_object_get(bp, "default"), 1), 0);   /* never counted */
	assert_int_equal(at(json_object_get(bp, "big"), 1), 0);       /* beyond max_profiles */
	json_decref(o);
	assert_null(bw_series_json(s, T0, 0, prof, 1));
	assert_null(bw_series_json(s, T0, BW_SERIES_MINUTES + 1, prof, 1));
	bw_series_free(s);
}

static void test_series_wraps_after_a_day(void **state)
{
	(void)state;
	struct bw_series *s = bw_series_create(1);
	assert_non_null(s);
	struct bw_series_totals t = {0};
	bw_series_sample(s, T0, &t);
	for (unsigned m = 1; m <= BW_SERIES_MINUTES + 10; m++) {
		t.queries += m;
		bw_series_sample(s, T0 + m * 60, &t);
	}
	uint64_t now = T0 + (BW_SERIES_MINUTES + 10) * 60 + 5;
	json_t *o = bw_series_json(s, now, BW_SERIES_MINUTES, NULL, 0);
	json_t *q = json_object_get(o, "queries");
	assert_int_equal(json_array_size(q), BW_SERIES_MINUTES);
	/* minute T0+k counted k+1: the oldest shown is T0+10+1-1... */
	for (size_t i = 0; i < BW_SERIES_MINUTES; i++)
		assert_int_equal(at(q, i), 11 + (long long)i);
	json_decref(o);
	/* a day without a sample: everything is old */
	bw_series_sample(s, now + 2 * 86400, &t);
	o = bw_series_json(s, now + 2 * 86400 + 60, BW_SERIES_MINUTES, NULL, 0);
	q = json_object_get(o, "queries");
	for (size_t i = 0; i < BW_SERIES_MINUTES; i++)
		assert_int_equal(at(q, i), 0);
	json_decref(o);
	bw_series_free(s);
}

static void test_name_patterns(void **state)
{
	(void)state;
	struct bw_tlm_name_pattern p;
	assert_int_equal(bw_tlm_name_pattern("Evil.Example.", &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_EXACT);
	assert_string_equal(p.value, "evil.example");
	assert_int_equal(bw_tlm_name_pattern(".example", &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_SUFFIX);
	assert_string_equal(p.value, "example");
	assert_int_equal(bw_tlm_name_pattern("*.Example.org", &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_SUFFIX);
	assert_string_equal(p.value, "example.org");
	assert_int_equal(bw_tlm_name_pattern("ev*", &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_PREFIX);
	assert_string_equal(p.value, "ev");
	assert_int_equal(bw_tlm_name_pattern("*", &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_ANY);
	assert_int_equal(bw_tlm_name_pattern(NULL, &p), 0);
	assert_int_equal(p.kind, BW_TLM_NAME_ANY);
	const char *bad[] = {"*.", ".", "a b", "a*b*", "x\ty", "*x.org", "a'--*x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bw_tlm_name_pattern(bad[i], &p), BW_EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(bw_tlm_name_pattern(longname, &p), BW_EINVAL);
	assert_string_equal(bw_tlm_name_sql(BW_TLM_NAME_ANY), "");
}

/* The names of the table matched by pattern, comma-separated, in table order. */
static void matches(sqlite3 *db, const char *pattern, char *out, size_t cap)
{
	struct bw_tlm_name_pattern p;
	assert_int_equal(bw_tlm_name_pattern(pattern, &p), 0);
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT name FROM queries WHERE 1%s ORDER BY rowid",
		 bw_tlm_name_sql(p.kind));
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int i = sqlite3_bind_parameter_index(st, ":name");
	assert_true(p.kind == BW_TLM_NAME_ANY ? i == 0 : i > 0);
	if (i > 0)
		sqlite3_bind_text(st, i, p.value, -1, SQLITE_STATIC);
	size_t n = 0;
	out[0] = 0;
	while (sqlite3_step(st) == SQLITE_ROW)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
				      (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void test_name_sql(void **state)
{
	(void)state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE queries (name TEXT);"
				      "INSERT INTO queries VALUES ('example.org'), ('www.example.org'),"
				      " ('badexample.org'), ('a.b.example.org'), ('example.org.evil'),"
				      " ('_dmarc.example.org'), ('ex%ample.org'), ('evil.test');",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	char got[512];
	matches(db, "example.org", got, sizeof(got));
	assert_string_equal(got, "example.org");
	/* a suffix: the name and every name under it, not a longer label */
	matches(db, ".example.org", got, sizeof(got));
	assert_string_equal(got, "example.org,www.example.org,a.b.example.org,_dmarc.example.org");
	matches(db, "*.example.org", got, sizeof(got));
	assert_string_equal(got, "example.org,www.example.org,a.b.example.org,_dmarc.example.org");
	/* a prefix, with no LIKE wildcards in the value ('_' and '%' are plain) */
	matches(db, "ex*", got, sizeof(got));
	assert_string_equal(got, "example.org,example.org.evil,ex%ample.org");
	matches(db, "_d*", got, sizeof(got));
	assert_string_equal(got, "_dmarc.example.org");
	matches(db, "ex%*", got, sizeof(got));
	assert_string_equal(got, "ex%ample.org");
	/* a hostile value is a value */
	matches(db, "x'or'1'='1", got, sizeof(got));
	assert_string_equal(got, "");
	matches(db, "*", got, sizeof(got));
	assert_non_null(strstr(got, "evil.test"));
	sqlite3_close(db);
}

static void test_times(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(bw_tlm_parse_time("1714564800", &ms), 0);
	assert_int_equal(ms, 1714564800000LL);
	assert_int_equal(bw_tlm_parse_time("2024-05-01T12:00:00Z", &ms), 0);
	assert_int_equal(ms, 1714564800000LL);
	assert_int_equal(bw_tlm_parse_time("2024-05-01T12:00:00", &ms), 0);
	assert_int_equal(ms, 1714564800000LL);
	assert_int_equal(bw_tlm_parse_time("2024-05-01T14:00:00.250+02:00", &ms), 0);
	assert_int_equal(ms, 1714564800250LL);
	assert_int_equal(bw_tlm_parse_time("2024-05-01T11:30-0030", &ms), 0);
	assert_int_equal(ms, 1714564800000LL);
	assert_int_equal(bw_tlm_parse_time("2024-05-01", &ms), 0);
	assert_int_equal(ms, 1714521600000LL);
	const char *bad[] = {"", "yesterday", "2024-05-01T", "2024-05-01Tnoon", "12abc",
			     "2024-05-01T12:00:00Zjunk", "-5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bw_tlm_parse_time(bad[i], &ms), BW_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_series_minutes),
		cmocka_unit_test(test_series_wraps_after_a_day),
		cmocka_unit_test(test_name_patterns),
		cmocka_unit_test(test_name_sql),
		cmocka_unit_test(test_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
