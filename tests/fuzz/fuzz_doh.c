/*
 * tests/fuzz/fuzz_doh.c - fuzz target for the DoH request decoding: the HTTP/1.1 request
 * head parser (bw_http1_parse), the RFC 8484 decoder (bw_doh_decode) and the DNS touches
 * of encrypted transports (bw_dns_pad, bw_dns_min_ttl, bw_dns_query_padded).
 *
 * The first byte picks how the rest is read:
 *   even: an HTTP/1.1 request (head, then body), decoded as the DoH server does;
 *   odd:  four fields separated by '\n': method, target, content-type, body (as HTTP/2
 *         delivers them), decoded; and the whole input as a DNS response to pad.
 * Properties checked (trap when broken): the parser never claims more bytes than it got
 * and returns only the statuses it documents; the decoder returns only documented
 * statuses and a 200 carries a DNS message of 12..65535 bytes; padding yields a multiple
 * of the block or leaves the message alone, and never shrinks it.
 */
#include <string.h>

#include "dns/dns.h"
#include "fuzz.h"
#include "net/net.h"

static uint8_t msg[BW_DNS_MAXMSG];
static uint8_t padbuf[BW_DNS_MAXMSG];
static const char *const paths[] = {"/dns-query", "/dns-query/family", "/q"};

static void check_status(int st)
{
	CHECK(st == 200 || st == 400 || st == 404 || st == 405 || st == 413 || st == 415);
}

static void decode(const struct bw_doh_request *r)
{
	size_t idx = 99, len = 0;
	char id[BW_DOH_ID_MAX + 1];
	int st = bw_doh_decode(r, paths, 3, &idx, id, msg, sizeof(msg), &len);
	check_status(st);
	if (st == 200) {
		CHECK(idx < 3);
		CHECK(len >= BW_DNS_HDR && len <= BW_DNS_MAXMSG);
		(void)bw_dns_query_padded(msg, len);
	} else {
		CHECK(len == 0);
	}
}

static void http1(const char *buf, size_t size)
{
	struct bw_http1_head h;
	int rc = bw_http1_parse(buf, size, &h);
	if (rc < 0) {
		CHECK(rc == -400 || rc == -413 || rc == -431 || rc == -501 || rc == -505);
		return;
	}
	if (rc == 0) {
		CHECK(size < BW_HTTP_MAX_HEAD);
		return;
	}
	CHECK((size_t)rc <= size && rc <= BW_HTTP_MAX_HEAD);
	CHECK(h.method_len > 0 && h.target_len > 0 && h.target[0] == '/');
	CHECK(h.content_length <= BW_DNS_MAXMSG);
	size_t body = size - (size_t)rc;
	if (h.has_length && h.content_length < body)
		body = h.content_length;
	struct bw_doh_request r = {
		.method = h.method,
		.method_len = h.method_len,
		.target = h.target,
		.target_len = h.target_len,
		.ctype = h.ctype,
		.ctype_len = h.ctype_len,
		.body = (const uint8_t *)buf + rc,
		.body_len = body,
	};
	decode(&r);
}

static const char *field(const char **p, const char *end, size_t *len)
{
	const char *s = *p;
	const char *nl = memchr(s, '\n', (size_t)(end - s));
	const char *e = nl ? nl : end;
	*len = (size_t)(e - s);
	*p = nl ? nl + 1 : end;
	return s;
}

static void fields(const char *buf, size_t size)
{
	const char *p = buf, *end = buf + size;
	struct bw_doh_request r = {0};
	r.method = field(&p, end, &r.method_len);
	r.target = field(&p, end, &r.target_len);
	r.ctype = field(&p, end, &r.ctype_len);
	r.body = (const uint8_t *)p;
	r.body_len = (size_t)(end - p);
	r.body_too_large = r.ctype_len == 1;
	decode(&r);

	/* the whole input as a response to pad */
	size_t n = size < sizeof(padbuf) ? size : sizeof(padbuf);
	memcpy(padbuf, buf, n);
	size_t m = bw_dns_pad(padbuf, n, sizeof(padbuf), 468);
	CHECK(m == n || (m > n && m % 468 == 0));
	(void)bw_dns_min_ttl(padbuf, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0)
		http1((const char *)data + 1, size - 1);
	else
		fields((const char *)data + 1, size - 1);
	return 0;
}
