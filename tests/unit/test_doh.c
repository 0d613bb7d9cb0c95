/*
 * tests/unit/test_doh.c - unit tests for the DoH request decoding (RFC 8484 statuses,
 * base64url), the strict HTTP/1.1 head parser, EDNS padding (RFC 7830/8467) and the
 * smallest-TTL scan that sets cache-control.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "net/net.h"

static const char *const paths[] = {"/dns-query", "/dns-query/family"};

/* www.example.com A, ID 0, no EDNS; base64url of it without padding */
static const uint8_t q_www[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
				0x00, 0x00, 0x03, 'w',  'w',  'w',  0x07, 'e',  'x',  'a',
				'm',  'p',  'l',  'e',  0x03, 'c',  'o',  'm',  0x00, 0x00,
				0x01, 0x00, 0x01};
#define Q_WWW_B64 "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"

static char last_id[BW_DOH_ID_MAX + 1];

static int dec(const char *method, const char *target, const char *ctype, const void *body,
	       size_t body_len, size_t *idx, uint8_t *msg, size_t *len)
{
	struct bw_doh_request r = {
		.method = method,
		.method_len = strlen(method),
		.target = target,
		.target_len = strlen(target),
		.ctype = ctype,
		.ctype_len = ctype ? strlen(ctype) : 0,
		.body = body,
		.body_len = body_len,
	};
	return bw_doh_decode(&r, paths, 2, idx, last_id, msg, BW_DNS_MAXMSG, len);
}

static void test_decode(void **state)
{
	(void)state;
	static uint8_t msg[BW_DNS_MAXMSG];
	size_t idx = 9, len = 0;
	assert_int_equal(dec("GET", "/dns-query?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg, &len),
			 200);
	assert_int_equal(idx, 0);
	assert_int_equal(len, sizeof(q_www));
	assert_memory_equal(msg, q_www, sizeof(q_www));
	assert_int_equal(dec("GET", "/dns-query/family?a=b&dns=" Q_WWW_B64 "&c", NULL, NULL, 0,
			     &idx, msg, &len),
			 200);
	assert_int_equal(idx, 1);
	assert_int_equal(dec("POST", "/dns-query", "application/dns-message", q_www,
			     sizeof(q_www), &idx, msg, &len),
			 200);
	assert_memory_equal(msg, q_www, sizeof(q_www));
	assert_int_equal(dec("POST", "/dns-query", "Application/DNS-Message; x=1", q_www,
			     sizeof(q_www), &idx, msg, &len),
			 200);
	/* statuses */
	assert_int_equal(dec("GET", "/other?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg, &len), 404);
	assert_int_equal(dec("GET", "/dns-query/?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg, &len),
			 404);
	/* a ClientID after a served path: one label, lower-cased; anything else is 404 */
	assert_int_equal(dec("GET", "/dns-query/Ab3-x9?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg,
			     &len),
			 200);
	assert_string_equal(last_id, "ab3-x9");
	assert_int_equal(dec("GET", "/dns-query?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg, &len),
			 200);
	assert_string_equal(last_id, "");
	static const char *const bad_ids[] = {
	    "/dns-query/-a", "/dns-query/a-", "/dns-query/a.b", "/dns-query/a/b", "/dns-query/a%20",
	    "/dns-query/\x01", "/dns-query/a b", "/dns-query//a",
	    "/dns-query/0123456789012345678901234567890123456789012345678901234567890123"};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		char t[160];
		snprintf(t, sizeof(t), "%s?dns=%s", bad_ids[i], Q_WWW_B64);
		assert_int_equal(dec("GET", t, NULL, NULL, 0, &idx, msg, &len), 404);
	}
	/* 63 characters is the most */
	assert_int_equal(dec("GET",
			     "/dns-query/012345678901234567890123456789012345678901234567890123456789012"
			     "?dns=" Q_WWW_B64,
			     NULL, NULL, 0, &idx, msg, &len),
			 200);
	assert_int_equal(dec("PUT", "/dns-query", NULL, NULL, 0, &idx, msg, &len), 405);
	assert_int_equal(dec("HEAD", "/dns-query?dns=" Q_WWW_B64, NULL, NULL, 0, &idx, msg, &len),
			 405);
	assert_int_equal(dec("GET", "/dns-query", NULL, NULL, 0, &idx, msg, &len), 400);
	assert_int_equal(dec("GET", "/dns-query?dns=", NULL, NULL, 0, &idx, msg, &len), 400);
	assert_int_equal(dec("GET", "/dns-query?dns=" Q_WWW_B64 "=", NULL, NULL, 0, &idx, msg,
			     &len),
			 400); /* padding is not allowed */
	assert_int_equal(dec("GET", "/dns-query?dns=" Q_WWW_B64 "&dns=" Q_WWW_B64, NULL, NULL, 0,
			     &idx, msg, &len),
			 400);
	assert_int_equal(dec("GET", "/dns-query?dns=AAAA", NULL, NULL, 0, &idx, msg, &len), 400);
	assert_int_equal(dec("GET", "/dns-query?dns=A+/=", NULL, NULL, 0, &idx, msg, &len), 400);
	assert_int_equal(dec("POST", "/dns-query", "text/plain", q_www, sizeof(q_www), &idx, msg,
			     &len),
			 415);
	assert_int_equal(dec("POST", "/dns-query", NULL, q_www, sizeof(q_www), &idx, msg, &len),
			 415);
	assert_int_equal(dec("POST", "/dns-query", "application/dns-messagex", q_www,
			     sizeof(q_www), &idx, msg, &len),
			 415);
	assert_int_equal(dec("POST", "/dns-query", "application/dns-message", q_www, 5, &idx, msg,
			     &len),
			 400);
	struct bw_doh_request big = {.method = "POST", .method_len = 4, .target = "/dns-query",
				     .target_len = 10, .ctype = "application/dns-message",
				     .ctype_len = 23, .body_too_large = true};
	assert_int_equal(bw_doh_decode(&big, paths, 2, &idx, last_id, msg, BW_DNS_MAXMSG, &len),
			 413);
	/* a GET whose message would be over 65535 bytes */
	static char target[100000];
	memcpy(target, "/dns-query?dns=", 15);
	memset(target + 15, 'A', 87400);
	target[15 + 87400] = '\0';
	assert_int_equal(dec("GET", target, NULL, NULL, 0, &idx, msg, &len), 413);
}

static int parse(const char *s, struct bw_http1_head *h)
{
	return bw_http1_parse(s, strlen(s), h);
}

static void test_http1(void **state)
{
	(void)state;
	struct bw_http1_head h;
	const char *req = "POST /dns-query HTTP/1.1\r\nHost: a\r\ncontent-type:  application/"
			  "dns-message \r\nContent-Length: 33\r\nConnection: keep-alive, Close\r\n"
			  "\r\nBODY";
	int rc = parse(req, &h);
	assert_int_equal(rc, (int)strlen(req) - 4);
	assert_int_equal(h.method_len, 4);
	assert_memory_equal(h.method, "POST", 4);
	assert_int_equal(h.target_len, 10);
	assert_int_equal(h.ctype_len, 23);
	assert_memory_equal(h.ctype, "application/dns-message", 23);
	assert_true(h.has_length);
	assert_int_equal(h.content_length, 33);
	assert_true(h.close);
	/* incomplete */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &h), 0);
	/* errors */
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &h), -400); /* no Host */
	assert_int_equal(parse("GET / HTTP/1.0\r\nHost: a\r\n\r\n", &h), -505);
	assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\nHost: a\n\n", &h), 0); /* bare LF: never ends */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", &h), -400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			       &h),
			 -501);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
			       "Content-Length: 1\r\n\r\n",
			       &h),
			 -400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &h),
			 -400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65536\r\n\r\n", &h),
			 -413);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
			       "99999999999999999999999999\r\n\r\n",
			       &h),
			 -413);
	static char huge[BW_HTTP_MAX_HEAD + 100];
	memset(huge, 'a', sizeof(huge) - 1);
	memcpy(huge, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(bw_http1_parse(huge, sizeof(huge) - 1, &h), -431);
}

/* an A response with EDNS (OPT last), TTLs 300 and 60 */
static const uint8_t r_edns[] = {
	0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 'a',
	0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01,
	0x2c, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x3c, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x02, 0x00, 0x00, 0x29, 0x04, 0xd0,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

static void test_pad_and_ttl(void **state)
{
	(void)state;
	static uint8_t buf[BW_DNS_MAXMSG];
	assert_int_equal(bw_dns_min_ttl(r_edns, sizeof(r_edns)), 60);
	assert_int_equal(bw_dns_min_ttl(r_edns, sizeof(r_edns) - 20), 0); /* truncated */
	memcpy(buf, r_edns, sizeof(r_edns));
	size_t n = bw_dns_pad(buf, sizeof(r_edns), sizeof(buf), 468);
	assert_int_equal(n, 468);
	/* OPT RDLEN now covers the padding option: code 12, length 468 - len - 4 */
	size_t opt_rdlen_at = sizeof(r_edns) - 2;
	assert_int_equal(bw_get16(buf + opt_rdlen_at), 468 - sizeof(r_edns));
	assert_int_equal(bw_get16(buf + sizeof(r_edns)), 12);
	assert_int_equal(bw_get16(buf + sizeof(r_edns) + 2), 468 - sizeof(r_edns) - 4);
	assert_int_equal(bw_dns_min_ttl(buf, n), 60); /* still parses */
	/* no room: unchanged */
	memcpy(buf, r_edns, sizeof(r_edns));
	assert_int_equal(bw_dns_pad(buf, sizeof(r_edns), 100, 468), sizeof(r_edns));
	/* no OPT: unchanged */
	memcpy(buf, r_edns, sizeof(r_edns) - 11);
	buf[11] = 0; /* ARCOUNT 0 */
	assert_int_equal(bw_dns_pad(buf, sizeof(r_edns) - 11, sizeof(buf), 468),
			 sizeof(r_edns) - 11);
	/* a query with a padding option is seen as padded; one without is not */
	const uint8_t q_pad[] = {0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
				 0x00, 0x01, 0x01, 'a',  0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
				 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
				 0x00, 0x0c, 0x00, 0x02, 0x00, 0x00};
	assert_true(bw_dns_query_padded(q_pad, sizeof(q_pad)));
	assert_false(bw_dns_query_padded(q_www, sizeof(q_www)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_http1),
		cmocka_unit_test(test_pad_and_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
