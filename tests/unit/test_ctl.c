/* tests/unit/test_ctl.c - bulwarkctl's pure helpers (tools/ctl_text.c): base32, ClientIDs,
 * client names, host names, the masked ID, XML escaping, UUIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "ctl.h"

/* RFC 4648 section 10 vectors, lower-case and without padding */
static void test_base32_vectors(void **state)
{
	(void)state;
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const out[] = {"", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb",
					  "mzxw6ytboi"};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char buf[32];
		size_t n = ctl_base32((const unsigned char *)in[i], strlen(in[i]), buf);
		assert_string_equal(buf, out[i]);
		assert_int_equal(n, strlen(out[i]));
	}
	unsigned char ones[16];
	memset(ones, 0xff, sizeof(ones));
	char buf[32];
	assert_int_equal(ctl_base32(ones, sizeof(ones), buf), 26);
	assert_string_equal(buf, "77777777777777777777777774"); /* last 3 bits padded */
}

static void test_id_new(void **state)
{
	(void)state;
	char a[CTL_ID_LEN + 1], b[CTL_ID_LEN + 1];
	assert_int_equal(ctl_id_new(a), 0);
	assert_int_equal(ctl_id_new(b), 0);
	assert_int_equal(strlen(a), 26);
	assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyz234567"), 26);
	assert_int_equal(strspn(b, "abcdefghijklmnopqrstuvwxyz234567"), 26);
	assert_string_not_equal(a, b);
	/* 128 bits: the last character carries 3 bits, so it is one of a e i m q u y 4 */
	assert_non_null(strchr("aeimquy4", a[25]));
}

static void test_name_problem(void **state)
{
	(void)state;
	assert_null(bw_conf_client_name_problem("alice-phone"));
	assert_null(bw_conf_client_name_problem("Anna's laptop"));
	assert_null(bw_conf_client_name_problem("caf\xc3\xa9"));
	char longest[65];
	memset(longest, 'x', 64), longest[64] = 0;
	assert_null(bw_conf_client_name_problem(longest));
	static const char *const bad[] = {"", "a\"b", "a/b", "a\\b", "a\nb", "a\tb", "\x7f",
					  " lead", "trail ",
					  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_non_null(bw_conf_client_name_problem(bad[i]));
}

static void test_host_ok(void **state)
{
	(void)state;
	assert_true(ctl_host_ok("dns.example"));
	assert_true(ctl_host_ok("a-b.c1.example"));
	assert_true(ctl_host_ok("192.0.2.1"));
	static const char *const bad[] = {"", ".", "a..b", "-a.b", "a-.b", "a.b.", "a/b",
					  "a b", "a\"b", "a:443", "dns.example/x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ctl_host_ok(bad[i]));
}

static void test_id_mask(void **state)
{
	(void)state;
	char out[16];
	ctl_id_mask("abcdefgh", out, sizeof(out));
	assert_string_equal(out, "abcd\xe2\x80\xa6");
	ctl_id_mask("ab", out, sizeof(out));
	assert_string_equal(out, "ab\xe2\x80\xa6");
}

static void test_xml_escape(void **state)
{
	(void)state;
	char *s = ctl_xml_escape("a<b>&\"c'd");
	assert_non_null(s); /* NULL: out of memory */
	assert_string_equal(s, "a&lt;b&gt;&amp;&quot;c&apos;d");
	free(s);
	s = ctl_xml_escape("https://dns.example/dns-query/abc");
	assert_non_null(s); /* NULL: out of memory */
	assert_string_equal(s, "https://dns.example/dns-query/abc");
	free(s);
	s = ctl_xml_escape("");
	assert_non_null(s); /* NULL: out of memory */
	assert_string_equal(s, "");
	free(s);
	assert_null(ctl_xml_escape("bell\a")); /* XML 1.0 cannot carry it */
}

static void test_uuid(void **state)
{
	(void)state;
	char a[37], b[37];
	assert_int_equal(ctl_uuid_new(a), 0);
	assert_int_equal(ctl_uuid_new(b), 0);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89AB", a[19]));
	assert_int_equal(strspn(a, "0123456789ABCDEF-"), 36);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base32_vectors), cmocka_unit_test(test_id_new),
		cmocka_unit_test(test_name_problem),   cmocka_unit_test(test_host_ok),
		cmocka_unit_test(test_id_mask),	       cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_uuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
