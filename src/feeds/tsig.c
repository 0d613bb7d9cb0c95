/*
 * feeds/tsig.c - TSIG (RFC 8945) with OpenSSL's HMAC: signing requests and responses,
 * checking responses (multi-message transfers included) and signed requests (NOTIFY).
 *
 * Own code rather than libknot's: the whole of TSIG here is ~300 lines over OpenSSL's
 * EVP_MAC, the messages are already parsed by our own cursor, and libknot's TSIG works on
 * its knot_pkt_t, which would mean a second packet representation in the module.
 *
 * Digests (RFC 8945 4.3):
 *  - a request: the message (ARCOUNT without the TSIG) + the TSIG variables (key name,
 *    class ANY, TTL 0, algorithm, time signed, fudge, error, other length, other data);
 *  - the first response: request MAC (2-byte length + MAC) + the response (original ID,
 *    ARCOUNT - 1, TSIG removed) + the variables;
 *  - a later message of a transfer: previous MAC (length + MAC) + the unsigned messages
 *    since it, whole + this message without its TSIG + the timers (time signed, fudge).
 * Only full-length MACs are accepted (no truncation, RFC 8945 5.2.2.1 allows refusing it).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dns/dns.h"
#include "feeds/xfr.h"

enum { CLASS_ANY = 255, HDR = 12, MAX_MAC = 64 };

static const struct {
	const char *conf, *digest;
	uint8_t wire[16];
	size_t wire_len, mac_len;
} algs[] = {
	[BW_TSIG_SHA1] = {"hmac-sha1", "SHA1", "\x09hmac-sha1", 11, 20},
	[BW_TSIG_SHA256] = {"hmac-sha256", "SHA256", "\x0bhmac-sha256", 13, 32},
	[BW_TSIG_SHA512] = {"hmac-sha512", "SHA512", "\x0bhmac-sha512", 13, 64},
};

/* ---- keys ---- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 (whitespace ignored, padding optional); returns the length or -1. */
static long b64_decode(const char *s, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;
	bool pad = false;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			continue;
		if (*s == '=') {
			pad = true;
			continue;
		}
		int v = b64val((unsigned char)*s);
		if (v < 0 || pad)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)n;
}

int bw_tsig_key_init(struct bw_tsig_key *k, const char *name, const char *alg,
		     const char *secret_b64, const char **why)
{
	memset(k, 0, sizeof(*k));
	if (!name || !alg || !secret_b64) {
		*why = "TSIG key needs a name, an algorithm and a secret";
		return BW_EINVAL;
	}
	int n = bw_name_from_text(name, strlen(name), k->name);
	if (n <= 1) {
		*why = "bad TSIG key name";
		return BW_EINVAL;
	}
	k->name_len = (size_t)n;
	size_t i;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcasecmp(alg, algs[i].conf) == 0)
			break;
	if (i == sizeof(algs) / sizeof(algs[0])) {
		*why = "TSIG algorithm must be hmac-sha256, hmac-sha512 or hmac-sha1";
		return BW_EINVAL;
	}
	k->alg = (enum bw_tsig_alg)i;
	long len = b64_decode(secret_b64, k->secret, sizeof(k->secret));
	if (len <= 0) {
		*why = "TSIG secret is not base64 (1..128 bytes)";
		return BW_EINVAL;
	}
	k->secret_len = (size_t)len;
	return 0;
}

/* ---- HMAC ---- */

static EVP_MAC_CTX *mac_new(const struct bw_tsig_key *k)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[2];

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (!ctx)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)algs[k->alg].digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, k->secret, k->secret_len, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void mac_u16(EVP_MAC_CTX *ctx, uint16_t v)
{
	uint8_t b[2];
	bw_put16(b, v);
	EVP_MAC_update(ctx, b, 2);
}

static void mac_prior(EVP_MAC_CTX *ctx, const uint8_t *mac, size_t len)
{
	mac_u16(ctx, (uint16_t)len);
	EVP_MAC_update(ctx, mac, len);
}

/* The variables after the message: all of them, or the timers only. */
static void mac_vars(EVP_MAC_CTX *ctx, const struct bw_tsig_key *k, int64_t t, uint16_t fudge,
		     uint16_t error, const uint8_t *other, uint16_t other_len, bool timers_only)
{
	uint8_t b[6];

	if (!timers_only) {
		EVP_MAC_update(ctx, k->name, k->name_len);
		mac_u16(ctx, CLASS_ANY);
		uint8_t ttl[4] = {0};
		EVP_MAC_update(ctx, ttl, 4);
		EVP_MAC_update(ctx, algs[k->alg].wire, algs[k->alg].wire_len);
	}
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)((uint64_t)t >> (40 - 8 * i));
	EVP_MAC_update(ctx, b, 6);
	mac_u16(ctx, fudge);
	if (!timers_only) {
		mac_u16(ctx, error);
		mac_u16(ctx, other_len);
		if (other_len)
			EVP_MAC_update(ctx, other, other_len);
	}
}

static size_t mac_final(EVP_MAC_CTX *ctx, uint8_t *out)
{
	size_t n = 0;
	if (!EVP_MAC_final(ctx, out, &n, MAX_MAC))
		n = 0;
	EVP_MAC_CTX_free(ctx);
	return n;
}

/* ---- finding and reading a TSIG ---- */

static void skip_rr(struct bw_cursor *c, uint16_t *type)
{
	uint8_t name[BW_DNS_MAXNAME];

	bw_name_unpack(c, name);
	*type = bw_cursor_u16(c);
	bw_cursor_skip(c, 6);
	uint16_t rdlen = bw_cursor_u16(c);
	bw_cursor_skip(c, rdlen);
}

long bw_tsig_find(const uint8_t *msg, size_t len)
{
	struct bw_cursor c;
	uint8_t name[BW_DNS_MAXNAME];
	uint16_t type = 0;
	size_t at = 0;

	if (len < HDR)
		return BW_EMALFORMED;
	bw_cursor_init(&c, msg, len);
	bw_cursor_skip(&c, 4);
	unsigned qd = bw_cursor_u16(&c), an = bw_cursor_u16(&c), ns = bw_cursor_u16(&c),
		 ar = bw_cursor_u16(&c);
	for (unsigned i = 0; i < qd && !c.error; i++) {
		bw_name_unpack(&c, name);
		bw_cursor_skip(&c, 4);
	}
	unsigned total = an + ns + ar;
	for (unsigned i = 0; i < total && !c.error; i++) {
		at = c.pos;
		skip_rr(&c, &type);
		if (type == BW_RR_TSIG && (i + 1 != total || ar == 0))
			return BW_EMALFORMED; /* a TSIG that is not the last additional record */
	}
	if (c.error || c.pos != len)
		return BW_EMALFORMED;
	return total > 0 && type == BW_RR_TSIG ? (long)at : 0;
}

struct tsig_rr {
	uint8_t name[BW_DNS_MAXNAME], alg[BW_DNS_MAXNAME];
	size_t name_len, alg_len;
	int64_t time;
	uint16_t fudge, mac_len, orig_id, error, other_len;
	const uint8_t *mac, *other;
};

static int read_tsig(const uint8_t *msg, size_t len, size_t off, struct tsig_rr *t)
{
	struct bw_cursor c;
	uint8_t raw[BW_DNS_MAXNAME];

	bw_cursor_init(&c, msg, len);
	c.pos = off;
	int n = bw_name_unpack(&c, raw);
	if (n < 0)
		return BW_EMALFORMED;
	bw_name_lower(t->name, raw, (size_t)n);
	t->name_len = (size_t)n;
	bw_cursor_skip(&c, 2); /* type */
	uint16_t cls = bw_cursor_u16(&c);
	bw_cursor_skip(&c, 4); /* TTL */
	uint16_t rdlen = bw_cursor_u16(&c);
	if (c.error || cls != CLASS_ANY || rdlen != len - c.pos)
		return BW_EMALFORMED;
	/* names in TSIG rdata are never compressed (RFC 8945 4.2) */
	int an = bw_name_len(msg + c.pos, rdlen);
	if (an < 0)
		return BW_EMALFORMED;
	bw_name_lower(t->alg, msg + c.pos, (size_t)an);
	t->alg_len = (size_t)an;
	bw_cursor_skip(&c, (size_t)an);
	uint64_t hi = bw_cursor_u16(&c), lo = bw_cursor_u32(&c);
	t->time = (int64_t)(hi << 32 | lo);
	t->fudge = bw_cursor_u16(&c);
	t->mac_len = bw_cursor_u16(&c);
	t->mac = bw_cursor_ptr(&c);
	bw_cursor_skip(&c, t->mac_len);
	t->orig_id = bw_cursor_u16(&c);
	t->error = bw_cursor_u16(&c);
	t->other_len = bw_cursor_u16(&c);
	t->other = bw_cursor_ptr(&c);
	bw_cursor_skip(&c, t->other_len);
	if (c.error || c.pos != len)
		return BW_EMALFORMED;
	return 0;
}

/* The message up to its TSIG, with the original ID and ARCOUNT - 1. */
static void mac_message(EVP_MAC_CTX *ctx, const uint8_t *msg, size_t tsig_off, uint16_t orig_id)
{
	uint8_t hdr[HDR];

	memcpy(hdr, msg, HDR);
	bw_put16(hdr, orig_id);
	bw_put16(hdr + 10, (uint16_t)(bw_get16(msg + 10) - 1));
	EVP_MAC_update(ctx, hdr, HDR);
	EVP_MAC_update(ctx, msg + HDR, tsig_off - HDR);
}

static int64_t absdiff(int64_t a, int64_t b)
{
	return a > b ? a - b : b - a;
}

/* ---- contexts ---- */

void bw_tsig_ctx_init(struct bw_tsig_ctx *c, const struct bw_tsig_key *key)
{
	memset(c, 0, sizeof(*c));
	c->key = key;
}

void bw_tsig_ctx_clear(struct bw_tsig_ctx *c)
{
	if (c->run)
		EVP_MAC_CTX_free(c->run);
	c->run = NULL;
}

int bw_tsig_sign(struct bw_tsig_ctx *c, uint8_t *msg, size_t *len, size_t cap, int64_t now,
		 uint16_t error)
{
	const struct bw_tsig_key *k = c->key;
	size_t mlen = algs[k->alg].mac_len;
	size_t rdlen = algs[k->alg].wire_len + 6 + 2 + 2 + mlen + 6;
	size_t need = k->name_len + 10 + rdlen;
	uint8_t mac[MAX_MAC];

	if (*len < HDR || cap < *len || cap - *len < need)
		return BW_ESPACE;
	EVP_MAC_CTX *ctx = mac_new(k);
	if (!ctx)
		return BW_ENOMEM;
	if (c->mac_len)
		mac_prior(ctx, c->mac, c->mac_len);
	EVP_MAC_update(ctx, msg, *len);
	mac_vars(ctx, k, now, BW_TSIG_FUDGE, error, NULL, 0, false);
	if (mac_final(ctx, mac) != mlen)
		return BW_ENOMEM;

	uint8_t *p = msg + *len;
	memcpy(p, k->name, k->name_len);
	p += k->name_len;
	bw_put16(p, BW_RR_TSIG);
	bw_put16(p + 2, CLASS_ANY);
	bw_put32(p + 4, 0);
	bw_put16(p + 8, (uint16_t)rdlen);
	p += 10;
	memcpy(p, algs[k->alg].wire, algs[k->alg].wire_len);
	p += algs[k->alg].wire_len;
	for (int i = 0; i < 6; i++)
		*p++ = (uint8_t)((uint64_t)now >> (40 - 8 * i));
	bw_put16(p, BW_TSIG_FUDGE);
	bw_put16(p + 2, (uint16_t)mlen);
	p += 4;
	memcpy(p, mac, mlen);
	p += mlen;
	bw_put16(p, bw_get16(msg)); /* original ID */
	bw_put16(p + 2, error);
	bw_put16(p + 4, 0);
	p += 6;
	*len = (size_t)(p - msg);
	bw_put16(msg + 10, (uint16_t)(bw_get16(msg + 10) + 1));
	memcpy(c->mac, mac, mlen);
	c->mac_len = mlen;
	return 0;
}

/* Key name and algorithm of the TSIG are the context's key? */
static bool same_key(const struct bw_tsig_key *k, const struct tsig_rr *t)
{
	return t->name_len == k->name_len && memcmp(t->name, k->name, k->name_len) == 0 &&
	       t->alg_len == algs[k->alg].wire_len &&
	       memcmp(t->alg, algs[k->alg].wire, t->alg_len) == 0;
}

static int fail(struct bw_tsig_ctx *c, uint16_t error)
{
	c->error = error;
	return BW_EREFUSED;
}

int bw_tsig_verify(struct bw_tsig_ctx *c, const uint8_t *msg, size_t len, int64_t now, bool last)
{
	const struct bw_tsig_key *k = c->key;
	struct tsig_rr t;
	uint8_t mac[MAX_MAC];
	long off = bw_tsig_find(msg, len);

	if (off < 0)
		return BW_EMALFORMED;
	if (off == 0) {
		/* unsigned: only between signed messages of a transfer */
		if (c->verified == 0 || last || ++c->unsigned_run > BW_TSIG_MAX_UNSIGNED)
			return fail(c, BW_TSIG_BADSIG);
		if (!c->run)
			return BW_ENOMEM;
		EVP_MAC_update(c->run, msg, len);
		return 0;
	}
	if (read_tsig(msg, len, (size_t)off, &t) != 0)
		return BW_EMALFORMED;
	if (!same_key(k, &t))
		return fail(c, BW_TSIG_BADKEY);
	if (t.error != 0) /* the server's verdict on our request (its MAC is empty then) */
		return fail(c, t.error);
	if (t.mac_len != algs[k->alg].mac_len)
		return fail(c, BW_TSIG_BADSIG);
	EVP_MAC_CTX *ctx;
	if (c->verified == 0) {
		ctx = mac_new(k);
		if (!ctx)
			return BW_ENOMEM;
		mac_prior(ctx, c->mac, c->mac_len);
	} else {
		ctx = c->run;
		c->run = NULL;
		if (!ctx)
			return BW_ENOMEM;
	}
	mac_message(ctx, msg, (size_t)off, t.orig_id);
	mac_vars(ctx, k, t.time, t.fudge, t.error, t.other, t.other_len, c->verified > 0);
	size_t n = mac_final(ctx, mac);
	if (n != t.mac_len || CRYPTO_memcmp(mac, t.mac, n) != 0)
		return fail(c, BW_TSIG_BADSIG);
	if (absdiff(now, t.time) > t.fudge)
		return fail(c, BW_TSIG_BADTIME);
	memcpy(c->mac, mac, n);
	c->mac_len = n;
	c->time_signed = t.time;
	c->verified++;
	c->unsigned_run = 0;
	if (!last) { /* the next digest starts with this MAC */
		c->run = mac_new(k);
		if (!c->run)
			return BW_ENOMEM;
		mac_prior(c->run, c->mac, c->mac_len);
	}
	return 0;
}

int bw_tsig_verify_request(struct bw_tsig_ctx *c, const uint8_t *msg, size_t len, int64_t now)
{
	const struct bw_tsig_key *k = c->key;
	struct tsig_rr t;
	uint8_t mac[MAX_MAC];
	long off = bw_tsig_find(msg, len);

	c->mac_len = 0;
	if (off < 0)
		return BW_EMALFORMED;
	if (off == 0)
		return BW_ENOENT;
	if (read_tsig(msg, len, (size_t)off, &t) != 0)
		return BW_EMALFORMED;
	if (!same_key(k, &t))
		return fail(c, BW_TSIG_BADKEY);
	if (t.mac_len != algs[k->alg].mac_len)
		return fail(c, BW_TSIG_BADSIG);
	EVP_MAC_CTX *ctx = mac_new(k);
	if (!ctx)
		return BW_ENOMEM;
	mac_message(ctx, msg, (size_t)off, t.orig_id);
	mac_vars(ctx, k, t.time, t.fudge, t.error, t.other, t.other_len, false);
	size_t n = mac_final(ctx, mac);
	if (n != t.mac_len || CRYPTO_memcmp(mac, t.mac, n) != 0)
		return fail(c, BW_TSIG_BADSIG);
	if (absdiff(now, t.time) > t.fudge)
		return fail(c, BW_TSIG_BADTIME);
	memcpy(c->mac, mac, n);
	c->mac_len = n;
	c->time_signed = t.time;
	return 0;
}
