/* net/doh_req.c - DoH request decoding (RFC 8484), a strict HTTP/1.1 request-head parser,
 * and the DNS message touches encrypted transports need: the smallest TTL (cache-control)
 * and EDNS padding (RFC 7830, RFC 8467). Pure functions over caller buffers. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"
#include "net/net.h"

/* ---- base64url (RFC 4648 section 5), no padding ---- */

static int b64url_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* Returns the decoded length, -400 for bad input, -413 when it does not fit. */
static long b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	if (len % 4 == 1)
		return -400;
	size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (need > cap)
		return -413;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);
		if (v < 0)
			return -400;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* the leftover bits must be zero (canonical encoding) */
	if (bits && (acc & ((1u << bits) - 1)))
		return -400;
	return (long)n;
}

static bool ctype_is_dns(const char *s, size_t len)
{
	static const char want[] = "application/dns-message";
	size_t n = sizeof(want) - 1;
	if (!s || len < n || strncasecmp(s, want, n))
		return false;
	/* parameters may follow */
	size_t i = n;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == len || s[i] == ';';
}

/* A ClientID after a served path: one DNS label, letters, digits and '-'. */
static bool client_id_ok(const char *s, size_t len)
{
	if (!len || len > BW_DOH_ID_MAX || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Which served path the target's path is: one of `paths` exactly (first, so that a served
 * path is never taken for another one's ClientID), else one of them followed by
 * "/CLIENTID" (copied lower-case into client_id). */
static bool match_path(const char *path, size_t plen, const char *const *paths, size_t n_paths,
		       size_t *path_idx, char client_id[BW_DOH_ID_MAX + 1])
{
	for (size_t i = 0; i < n_paths; i++)
		if (strlen(paths[i]) == plen && !memcmp(paths[i], path, plen)) {
			*path_idx = i;
			return true;
		}
	for (size_t i = 0; i < n_paths; i++) {
		size_t n = strlen(paths[i]);
		if (plen <= n + 1 || memcmp(paths[i], path, n) || path[n] != '/' ||
		    !client_id_ok(path + n + 1, plen - n - 1))
			continue;
		*path_idx = i;
		for (size_t k = n + 1; k < plen; k++)
			client_id[k - n - 1] = (char)tolower((unsigned char)path[k]);
		client_id[plen - n - 1] = 0;
		return true;
	}
	return false;
}

int bw_doh_decode(const struct bw_doh_request *r, const char *const *paths, size_t n_paths,
		  size_t *path_idx, char client_id[BW_DOH_ID_MAX + 1], uint8_t *msg, size_t cap,
		  size_t *msg_len)
{
	*msg_len = 0;
	client_id[0] = 0;
	if (!r->target || !r->target_len || r->target[0] != '/')
		return 400;
	const char *q = memchr(r->target, '?', r->target_len);
	size_t plen = q ? (size_t)(q - r->target) : r->target_len;
	if (!match_path(r->target, plen, paths, n_paths, path_idx, client_id))
		return 404;
	if (r->method_len == 4 && !memcmp(r->method, "POST", 4)) {
		if (!ctype_is_dns(r->ctype, r->ctype_len))
			return 415;
		if (r->body_too_large || r->body_len > BW_DNS_MAXMSG || r->body_len > cap)
			return 413;
		if (r->body_len < BW_DNS_HDR)
			return 400;
		memcpy(msg, r->body, r->body_len);
		*msg_len = r->body_len;
		return 200;
	}
	if (!(r->method_len == 3 && !memcmp(r->method, "GET", 3)))
		return 405;
	if (!q)
		return 400;
	const char *p = q + 1, *end = r->target + r->target_len;
	const char *val = NULL;
	size_t vlen = 0;
	while (p <= end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		if (e - p >= 4 && !memcmp(p, "dns=", 4)) {
			if (val)
				return 400; /* two dns parameters */
			val = p + 4;
			vlen = (size_t)(e - val);
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	if (!val || !vlen)
		return 400;
	size_t lim = cap < BW_DNS_MAXMSG ? cap : BW_DNS_MAXMSG;
	long n = b64url_decode(val, vlen, msg, lim);
	if (n < 0)
		return (int)-n;
	if ((size_t)n < BW_DNS_HDR)
		return 400;
	*msg_len = (size_t)n;
	return 200;
}

/* ---- HTTP/1.1 request heads ---- */

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool has_token(const char *v, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - s == tl && !strncasecmp(v + s, tok, tl))
			return true;
	}
	return false;
}

int bw_http1_parse(const char *buf, size_t len, struct bw_http1_head *h)
{
	memset(h, 0, sizeof(*h));
	size_t lim = len < BW_HTTP_MAX_HEAD ? len : BW_HTTP_MAX_HEAD;
	size_t end = 0;
	for (size_t i = 0; i + 3 < lim; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n') {
			end = i + 4;
			break;
		}
	}
	if (!end)
		return len >= BW_HTTP_MAX_HEAD ? -431 : 0;

	/* request line: method SP target SP HTTP/1.1 CRLF */
	size_t i = 0;
	h->method = buf;
	while (i < end && is_tchar((unsigned char)buf[i]))
		i++;
	h->method_len = i;
	if (!h->method_len || buf[i] != ' ')
		return -400;
	h->target = buf + ++i;
	while (i < end && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	h->target_len = (size_t)(buf + i - h->target);
	if (!h->target_len || buf[i] != ' ' || h->target[0] != '/')
		return -400;
	i++;
	if (end - i < 10 || memcmp(buf + i, "HTTP/1.", 7))
		return -400;
	if (buf[i + 7] != '1' || buf[i + 8] != '\r' || buf[i + 9] != '\n')
		return -505;
	i += 10;

	bool host = false;
	while (i < end - 2) {
		/* a header field: name ":" OWS value OWS CRLF; no folding */
		size_t ns = i;
		while (i < end && is_tchar((unsigned char)buf[i]))
			i++;
		size_t nlen = i - ns;
		if (!nlen || buf[i] != ':')
			return -400;
		i++;
		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		size_t vs = i;
		while (i < end && buf[i] != '\r') {
			unsigned char ch = (unsigned char)buf[i];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -400;
			i++;
		}
		if (i + 1 >= end || buf[i + 1] != '\n')
			return -400;
		size_t ve = i;
		while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
			ve--;
		i += 2;
		const char *name = buf + ns, *val = buf + vs;
		size_t vlen = ve - vs;
		if (nlen == 14 && !strncasecmp(name, "content-length", 14)) {
			if (h->has_length || !vlen)
				return -400;
			size_t v = 0;
			for (size_t k = 0; k < vlen; k++) {
				if (val[k] < '0' || val[k] > '9')
					return -400;
				v = v * 10 + (size_t)(val[k] - '0');
				if (v > BW_DNS_MAXMSG)
					return -413;
			}
			h->content_length = v;
			h->has_length = true;
		} else if (nlen == 17 && !strncasecmp(name, "transfer-encoding", 17)) {
			return -501;
		} else if (nlen == 12 && !strncasecmp(name, "content-type", 12)) {
			if (h->ctype)
				return -400;
			h->ctype = val;
			h->ctype_len = vlen;
		} else if (nlen == 10 && !strncasecmp(name, "connection", 10)) {
			if (has_token(val, vlen, "close"))
				h->close = true;
		} else if (nlen == 4 && !strncasecmp(name, "host", 4)) {
			if (host)
				return -400;
			host = true;
		}
	}
	if (!host)
		return -400; /* RFC 9112 3.2: a request without Host is bad */
	return (int)end;
}

/* ---- DNS message touches ---- */

static void skip_name(struct bw_cursor *c)
{
	for (int n = 0; n < 128; n++) {
		uint8_t l = bw_cursor_u8(c);
		if (c->error || l == 0)
			return;
		if ((l & 0xc0) == 0xc0) {
			bw_cursor_skip(c, 1);
			return;
		}
		if (l & 0xc0) {
			c->error = BW_EMALFORMED;
			return;
		}
		bw_cursor_skip(c, l);
	}
	c->error = BW_EMALFORMED;
}

uint32_t bw_dns_min_ttl(const uint8_t *msg, size_t len)
{
	struct bw_cursor c;
	bw_cursor_init(&c, msg, len);
	bw_cursor_skip(&c, 4);
	uint16_t qd = bw_cursor_u16(&c), an = bw_cursor_u16(&c), ns = bw_cursor_u16(&c);
	bw_cursor_skip(&c, 2);
	for (unsigned i = 0; i < qd && !c.error; i++) {
		skip_name(&c);
		bw_cursor_skip(&c, 4);
	}
	uint32_t min = UINT32_MAX;
	for (unsigned i = 0; i < (unsigned)an + ns && !c.error; i++) {
		skip_name(&c);
		bw_cursor_skip(&c, 4);
		uint32_t ttl = bw_cursor_u32(&c);
		uint16_t rdlen = bw_cursor_u16(&c);
		bw_cursor_skip(&c, rdlen);
		if (!c.error && ttl < min)
			min = ttl;
	}
	if (c.error || min == UINT32_MAX)
		return 0;
	return min > 0x7fffffff ? 0 : min;
}

size_t bw_dns_pad(uint8_t *msg, size_t len, size_t cap, size_t block)
{
	struct bw_cursor c;
	bw_cursor_init(&c, msg, len);
	bw_cursor_skip(&c, 4);
	uint16_t qd = bw_cursor_u16(&c), an = bw_cursor_u16(&c), ns = bw_cursor_u16(&c),
		 ar = bw_cursor_u16(&c);
	for (unsigned i = 0; i < qd && !c.error; i++) {
		skip_name(&c);
		bw_cursor_skip(&c, 4);
	}
	size_t rdlen_at = 0, rdata_end = 0;
	unsigned total = (unsigned)an + ns + ar;
	for (unsigned i = 0; i < total && !c.error; i++) {
		skip_name(&c);
		uint16_t type = bw_cursor_u16(&c);
		bw_cursor_skip(&c, 6);
		size_t at = c.pos;
		uint16_t rdlen = bw_cursor_u16(&c);
		bw_cursor_skip(&c, rdlen);
		if (!c.error && type == BW_T_OPT && i >= (unsigned)an + ns) {
			rdlen_at = at;
			rdata_end = c.pos;
		}
	}
	if (c.error || c.pos != len || !rdlen_at || block == 0)
		return len;
	size_t pad = (block - (len + 4) % block) % block;
	size_t grow = 4 + pad;
	size_t rdlen = bw_get16(msg + rdlen_at);
	if (len + grow > cap || rdlen + grow > 0xffff)
		return len;
	memmove(msg + rdata_end + grow, msg + rdata_end, len - rdata_end);
	uint8_t *o = msg + rdata_end;
	bw_put16(o, 12); /* PADDING */
	bw_put16(o + 2, (uint16_t)pad);
	memset(o + 4, 0, pad);
	bw_put16(msg + rdlen_at, (uint16_t)(rdlen + grow));
	return len + grow;
}

bool bw_dns_query_padded(const uint8_t *msg, size_t len)
{
	struct bw_query q;
	return bw_query_parse(msg, len, &q) == 0 && q.has_padding;
}
