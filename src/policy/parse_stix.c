/*
 * policy/parse_stix.c - STIX 2.1 indicators -> rules, with a small recursive-descent parser
 * for STIX patterning; also bw_rule_emit_ioc(), the value -> rule step shared with MISP.
 *
 * Input: a bundle {"type":"bundle","objects":[...]}, a TAXII envelope {"objects":[...]}, a
 * bare array of objects or one object. Only objects of type "indicator" count (rep->units).
 * An indicator is skipped when revoked, when valid_until <= now, when valid_from > now, or
 * when its pattern_type is not "stix". Its pattern is parsed whole; a malformed pattern
 * makes the indicator bad (nothing of it is used).
 *
 * What a resolver can enforce alone: comparisons on domain-name:value (a value written with
 * a path or port, "evil.example:8080/x", stands for its host), url:value (its host),
 * ipv4-addr:value and ipv6-addr:value with "=", "IN (...)" or, for addresses, ISSUBSET,
 * that are joined to the rest by OR only, at every level. A comparison under an AND (in an
 * observation or between observations), a FOLLOWEDBY, a REPEATS qualifier, or a START/STOP
 * window that does not hold `now`, needs more than one query to be true: it is skipped and
 * counted (rep->skipped counts such comparisons, comparisons on other objects - files,
 * processes, custom "app:" - and whole skipped indicators). WITHIN is accepted and ignored.
 *
 * JSON: jansson's json_loadb() on at most BW_JSON_FEED_MAX bytes, with JSON_ALLOW_NUL (one
 * "\u0000" in a description must not make the feed unusable; lengths are explicit here).
 * Duplicate keys are accepted, jansson keeps the last one: refusing them would throw away a
 * whole feed for one sloppy object, and the feed's author controls its content anyway.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/rules.h"

#define RULE_TTL 300	  /* TTL of blocked answers synthesized from threat-intel feeds */
#define MAX_DEPTH 64	  /* nested brackets / parentheses in one pattern */
#define MAX_TERMS 100000u /* comparisons in one pattern */

/* ---- indicator values -> rules (shared with parse_misp.c) ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* "a.b.c.d", an IPv6 address, with "/prefix" when allowed; host bits are cleared. */
static bool parse_net(const char *s, size_t len, bool allow_prefix, struct bw_cidr *out)
{
	if (!allow_prefix && memchr(s, '/', len))
		return false;
	return bw_cidr_parse(s, len, out) == 0;
}

/* Text name -> lower-cased wire name (out: 256 bytes). Labels of [a-z0-9_-], 1..63 bytes;
 * one trailing dot allowed. Returns the wire length, or 0 with *reason. */
static size_t name_to_wire(const char *s, size_t len, uint8_t *out, const char **reason)
{
	size_t lab = 0, w = 1;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0) {
		*reason = "empty name";
		return 0;
	}
	if (len > 253) {
		*reason = "name too long";
		return 0;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			size_t l = w - lab - 1;

			if (l == 0 || l > 63) {
				*reason = l ? "label longer than 63 bytes" : "empty label";
				return 0;
			}
			out[lab] = (uint8_t)l;
			lab = w++;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			*reason = c >= 0x80 ? "non-ASCII name (IDNs must be punycode)"
					    : "invalid character in name";
			return 0;
		}
		out[w++] = c;
	}
	out[lab] = 0; /* the root label, where the next label would have started */
	return w;
}

/* Host part of a URL, with or without scheme: strips scheme, userinfo, port, path, query
 * and fragment. *bracketed is set for "[v6]" hosts. */
static bool url_host(const char **s, size_t *len, bool *bracketed, const char **reason)
{
	const char *p = *s, *end = *s + *len, *at = NULL, *colon = NULL, *e;
	unsigned ncolon = 0;

	for (const char *q = p; q < end; q++) {
		char c = *q;

		if (c == ':' && q > p && end - q >= 3 && q[1] == '/' && q[2] == '/') {
			p = q + 3;
			break;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (q > p && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
			break;
	}
	if (p == *s && end - p >= 2 && p[0] == '/' && p[1] == '/')
		p += 2;
	for (e = p; e < end && *e != '/' && *e != '?' && *e != '#' && *e != '\\'; e++) {
		if (*e == '@')
			at = e;
	}
	if (at)
		p = at + 1;
	*bracketed = false;
	if (p < e && *p == '[') {
		const char *rb = memchr(p, ']', (size_t)(e - p));

		if (!rb || (rb + 1 < e && rb[1] != ':')) {
			*reason = "invalid [address] in URL";
			return false;
		}
		*bracketed = true;
		p++;
		e = rb;
	} else {
		for (const char *q = p; q < e; q++) {
			if (*q == ':') {
				ncolon++;
				if (!colon)
					colon = q;
			}
		}
		if (ncolon == 1) /* host:port; more colons: a bare IPv6 address */
			e = colon;
	}
	if (p == e) {
		*reason = "URL without host";
		return false;
	}
	*s = p;
	*len = (size_t)(e - p);
	return true;
}

/* Is a domain value written like a URL: with a path, query, fragment, user or port
 * ("evil.example/x", "evil.example:8080/x", "http://evil.example/")? Some feeds put such
 * values in domain-name; their host is the domain. An IPv6 address (two colons or more
 * before any '/') is not. */
static bool domain_has_url_parts(const char *s, size_t len)
{
	unsigned ncolon = 0;
	bool parts = false;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/' || s[i] == '?' || s[i] == '#' || s[i] == '@') {
			parts = true;
			break;
		}
		if (s[i] == ':')
			ncolon++;
	}
	return ncolon < 2 && (parts || ncolon == 1);
}

static int emit(bw_rule_sink sink, void *ctx, struct bw_parse_report *rep, const struct bw_rule *r)
{
	int rc = sink(ctx, r);

	if (rc < 0)
		return rc;
	rep->rules++;
	return 0;
}

int bw_rule_emit_ioc(enum bw_ioc_kind kind, const char *val, size_t len, const char *ref,
		     const char *title, bw_rule_sink sink, void *ctx, struct bw_parse_report *rep,
		     const char **reason)
{
	struct bw_rule r;
	uint8_t wire[256];
	bool bracketed = false, wild_only = false;
	int rc;

	trim(&val, &len);
	/* a domain with a path or port: its host, blocked as the domain it names */
	if ((kind == BW_IOC_URL || (kind == BW_IOC_DOMAIN && domain_has_url_parts(val, len))) &&
	    !url_host(&val, &len, &bracketed, reason))
		return 0;
	memset(&r, 0, sizeof(r));
	r.action = BW_ACT_NXDOMAIN;
	r.ttl = RULE_TTL;
	r.ref = ref;
	r.title = title;
	if (kind == BW_IOC_IP || bracketed || parse_net(val, len, false, &r.net)) {
		if (!parse_net(val, len, kind == BW_IOC_IP, &r.net)) {
			*reason = "invalid IP address";
			return 0;
		}
		r.trigger = BW_TRIG_RESPONSE_IP;
		rc = emit(sink, ctx, rep, &r);
		return rc < 0 ? rc : 1;
	}
	if (kind == BW_IOC_DOMAIN && len > 2 && val[0] == '*' && val[1] == '.') {
		wild_only = true;
		val += 2;
		len -= 2;
	}
	r.name_len = name_to_wire(val, len, wire, reason);
	if (r.name_len == 0)
		return 0;
	r.name = wire;
	if (!wild_only) {
		r.trigger = BW_TRIG_QNAME;
		rc = emit(sink, ctx, rep, &r);
		if (rc < 0)
			return rc;
	}
	r.trigger = BW_TRIG_WILDCARD;
	rc = emit(sink, ctx, rep, &r);
	return rc < 0 ? rc : 1;
}

/* ---- RFC 3339 timestamps ---- */

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "2021-07-18T00:00:00.000Z" or with a "+hh:mm"/"-hh:mm" offset -> seconds since 1970. */
static bool parse_time(const char *s, size_t len, int64_t *out)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	size_t i = 19;
	int64_t t;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return false;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == 20)
			return false;
	}
	if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
		/* UTC */
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return false;
		if (s[i] == '-') {
			oh = -oh;
			om = -om;
		}
	} else {
		return false;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	*out = t - (int64_t)oh * 3600 - (int64_t)om * 60;
	return true;
}

/* ---- STIX patterning ---- */

enum term_kind { T_OTHER = 0, T_DOMAIN, T_URL, T_IP };

struct term {
	enum term_kind kind;
	bool usable;  /* an operator a resolver can enforce on this value */
	bool blocked; /* needs more than this one observation to be true */
	size_t off;   /* decoded value in pat.vals */
	size_t len;
};

struct pat {
	const char *s;
	size_t len;
	size_t pos;
	int64_t now;
	const char *err; /* first error (static), NULL while fine */
	size_t err_pos;
	unsigned depth;
	char *vals; /* decoded string literals; capacity len + 1 (never longer decoded) */
	size_t vals_len;
	struct term *terms;
	size_t n;
	size_t cap;
	bool nomem;
};

enum lit_type { LIT_NONE = 0, LIT_STRING, LIT_TIME, LIT_OTHER };

static bool fail(struct pat *p, const char *msg)
{
	if (!p->err) {
		p->err = msg;
		p->err_pos = p->pos;
	}
	return false;
}

static bool is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static void skip_ws(struct pat *p)
{
	while (p->pos < p->len && is_space(p->s[p->pos]))
		p->pos++;
}

static bool accept_char(struct pat *p, char c)
{
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == c) {
		p->pos++;
		return true;
	}
	return false;
}

/* A keyword, case-insensitive, not followed by an identifier character. */
static bool accept_word(struct pat *p, const char *w)
{
	size_t n = strlen(w);

	skip_ws(p);
	if (p->len - p->pos < n || strncasecmp(p->s + p->pos, w, n) != 0)
		return false;
	if (p->pos + n < p->len && is_ident(p->s[p->pos + n]))
		return false;
	p->pos += n;
	return true;
}

static void block_range(struct pat *p, size_t from)
{
	for (size_t i = from; i < p->n; i++)
		p->terms[i].blocked = true;
}

static bool add_term(struct pat *p, enum term_kind kind, bool usable, size_t off, size_t len)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct term *t;

		if (p->n >= MAX_TERMS)
			return fail(p, "too many comparisons");
		t = realloc(p->terms, cap * sizeof(*t));
		if (!t) {
			p->nomem = true;
			return fail(p, "out of memory");
		}
		p->terms = t;
		p->cap = cap;
	}
	p->terms[p->n++] = (struct term){.kind = kind, .usable = usable, .off = off, .len = len};
	return true;
}

/* '...' with \' and \\ escapes, decoded into p->vals. */
static bool string_lit(struct pat *p, size_t *off, size_t *len)
{
	*off = p->vals_len;
	p->pos++; /* the opening quote */
	while (p->pos < p->len) {
		char c = p->s[p->pos++];

		if (c == '\'') {
			*len = p->vals_len - *off;
			return true;
		}
		if (c == '\\') {
			if (p->pos >= p->len || (p->s[p->pos] != '\'' && p->s[p->pos] != '\\'))
				return fail(p, "invalid escape in string");
			c = p->s[p->pos++];
		}
		p->vals[p->vals_len++] = c;
	}
	return fail(p, "unterminated string");
}

/* Any literal; strings (also t'', h'', b'') are decoded, numbers and booleans skipped. */
static enum lit_type literal(struct pat *p, size_t *off, size_t *len)
{
	char c;

	skip_ws(p);
	if (p->pos >= p->len) {
		fail(p, "literal expected");
		return LIT_NONE;
	}
	c = p->s[p->pos];
	if (c == '\'')
		return string_lit(p, off, len) ? LIT_STRING : LIT_NONE;
	if ((c == 't' || c == 'h' || c == 'b') && p->pos + 1 < p->len && p->s[p->pos + 1] == '\'') {
		p->pos++;
		if (!string_lit(p, off, len))
			return LIT_NONE;
		return c == 't' ? LIT_TIME : LIT_OTHER;
	}
	if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
		size_t start = ++p->pos;

		while (p->pos < p->len &&
		       ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '.'))
			p->pos++;
		if (p->pos == start && (c == '-' || c == '+')) {
			fail(p, "invalid number");
			return LIT_NONE;
		}
		return LIT_OTHER;
	}
	if (accept_word(p, "true") || accept_word(p, "false"))
		return LIT_OTHER;
	fail(p, "literal expected");
	return LIT_NONE;
}

/* object-type:component(.component | [n] | [*])*; returns the term kind for the path. */
static bool object_path(struct pat *p, enum term_kind *kind)
{
	static const struct {
		const char *path;
		enum term_kind kind;
	} known[] = {
	    {"domain-name:value", T_DOMAIN},
	    {"url:value", T_URL},
	    {"ipv4-addr:value", T_IP},
	    {"ipv6-addr:value", T_IP},
	};
	size_t start, off, len;

	skip_ws(p);
	start = p->pos;
	while (p->pos < p->len && is_ident(p->s[p->pos]))
		p->pos++;
	if (p->pos == start || p->pos >= p->len || p->s[p->pos] != ':')
		return fail(p, "object path expected");
	p->pos++;
	for (bool first = true;; first = false) {
		if (!first) {
			if (p->pos < p->len && p->s[p->pos] == '[') {
				size_t d = ++p->pos;

				if (p->pos < p->len && p->s[p->pos] == '*') {
					p->pos++;
				} else {
					if (p->pos < p->len && p->s[p->pos] == '-')
						d = ++p->pos;
					while (p->pos < p->len && p->s[p->pos] >= '0' &&
					       p->s[p->pos] <= '9')
						p->pos++;
					if (p->pos == d)
						return fail(p, "invalid list index");
				}
				if (p->pos >= p->len || p->s[p->pos] != ']')
					return fail(p, "']' expected after list index");
				p->pos++;
				continue;
			}
			if (p->pos >= p->len || p->s[p->pos] != '.')
				break;
			p->pos++;
		}
		if (p->pos < p->len && p->s[p->pos] == '\'') {
			if (!string_lit(p, &off, &len))
				return false;
			p->vals_len = off; /* the key is not a value: forget it */
			continue;
		}
		size_t c0 = p->pos;
		while (p->pos < p->len && is_ident(p->s[p->pos]))
			p->pos++;
		if (p->pos == c0)
			return fail(p, "property name expected");
	}
	*kind = T_OTHER;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t n = strlen(known[i].path);

		if (p->pos - start == n && memcmp(p->s + start, known[i].path, n) == 0)
			*kind = known[i].kind;
	}
	return true;
}

static bool comp_or(struct pat *p);

/* One comparison, "(comparison expression)" or EXISTS path. */
static bool comp_test(struct pat *p)
{
	enum term_kind kind;
	enum lit_type lt;
	bool neg, eq = false, in = false, subset = false;
	size_t off = 0, len = 0;

	if (accept_char(p, '(')) {
		if (++p->depth > MAX_DEPTH)
			return fail(p, "nested too deeply");
		if (!comp_or(p))
			return false;
		p->depth--;
		return accept_char(p, ')') || fail(p, "')' expected");
	}
	if (accept_word(p, "EXISTS"))
		return object_path(p, &kind) && add_term(p, T_OTHER, false, 0, 0);
	if (!object_path(p, &kind))
		return false;
	neg = accept_word(p, "NOT");
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '=') {
		p->pos += (p->pos + 1 < p->len && p->s[p->pos + 1] == '=') ? 2 : 1;
		eq = true;
	} else if (p->len - p->pos >= 2 &&
		   (!memcmp(p->s + p->pos, "!=", 2) || !memcmp(p->s + p->pos, "<>", 2) ||
		    !memcmp(p->s + p->pos, "<=", 2) || !memcmp(p->s + p->pos, ">=", 2))) {
		p->pos += 2;
	} else if (p->pos < p->len && (p->s[p->pos] == '<' || p->s[p->pos] == '>')) {
		p->pos++;
	} else if (accept_word(p, "IN")) {
		in = true;
	} else if (accept_word(p, "ISSUBSET")) {
		subset = true;
	} else if (!accept_word(p, "LIKE") && !accept_word(p, "MATCHES") &&
		   !accept_word(p, "ISSUPERSET")) {
		return fail(p, "comparison operator expected");
	}
	if (in) {
		if (!accept_char(p, '('))
			return fail(p, "'(' expected after IN");
		do {
			lt = literal(p, &off, &len);
			if (lt == LIT_NONE)
				return false;
			if (!add_term(p, kind, !neg && lt == LIT_STRING, off, len))
				return false;
		} while (accept_char(p, ','));
		return accept_char(p, ')') || fail(p, "')' expected after IN list");
	}
	lt = literal(p, &off, &len);
	if (lt == LIT_NONE)
		return false;
	return add_term(p, kind, !neg && lt == LIT_STRING && (eq || (subset && kind == T_IP)), off,
			len);
}

static bool comp_and(struct pat *p)
{
	size_t from = p->n;
	bool any = false;

	if (!comp_test(p))
		return false;
	while (accept_word(p, "AND")) {
		any = true;
		if (!comp_test(p))
			return false;
	}
	if (any)
		block_range(p, from);
	return true;
}

static bool comp_or(struct pat *p)
{
	if (!comp_and(p))
		return false;
	while (accept_word(p, "OR")) {
		if (!comp_and(p))
			return false;
	}
	return true;
}

static bool obs_followedby(struct pat *p);

static bool time_lit(struct pat *p, int64_t *t)
{
	size_t off, len;

	if (literal(p, &off, &len) != LIT_TIME)
		return fail(p, "t'timestamp' expected");
	return parse_time(p->vals + off, len, t) || fail(p, "invalid timestamp");
}

static bool int_lit(struct pat *p)
{
	size_t start;

	skip_ws(p);
	start = p->pos;
	while (p->pos < p->len &&
	       ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '.'))
		p->pos++;
	return p->pos > start || fail(p, "number expected");
}

/* [comparisons] or (observations), then any qualifiers. */
static bool obs_qualified(struct pat *p)
{
	size_t from = p->n;

	if (accept_char(p, '[')) {
		if (!comp_or(p))
			return false;
		if (!accept_char(p, ']'))
			return fail(p, "']' expected");
	} else if (accept_char(p, '(')) {
		if (++p->depth > MAX_DEPTH)
			return fail(p, "nested too deeply");
		if (!obs_followedby(p))
			return false;
		p->depth--;
		if (!accept_char(p, ')'))
			return fail(p, "')' expected");
	} else {
		return fail(p, "'[' expected");
	}
	for (;;) {
		if (accept_word(p, "WITHIN")) {
			if (!int_lit(p) ||
			    !(accept_word(p, "SECONDS") || fail(p, "SECONDS expected")))
				return false;
		} else if (accept_word(p, "REPEATS")) {
			if (!int_lit(p) || !(accept_word(p, "TIMES") || fail(p, "TIMES expected")))
				return false;
			block_range(p, from);
		} else if (accept_word(p, "START")) {
			int64_t t0, t1;

			if (!time_lit(p, &t0))
				return false;
			if (!accept_word(p, "STOP"))
				return fail(p, "STOP expected");
			if (!time_lit(p, &t1))
				return false;
			if (p->now < t0 || p->now >= t1)
				block_range(p, from);
		} else {
			return true;
		}
	}
}

static bool obs_and(struct pat *p)
{
	size_t from = p->n;
	bool any = false;

	if (!obs_qualified(p))
		return false;
	while (accept_word(p, "AND")) {
		any = true;
		if (!obs_qualified(p))
			return false;
	}
	if (any)
		block_range(p, from);
	return true;
}

static bool obs_or(struct pat *p)
{
	if (!obs_and(p))
		return false;
	while (accept_word(p, "OR")) {
		if (!obs_and(p))
			return false;
	}
	return true;
}

static bool obs_followedby(struct pat *p)
{
	size_t from = p->n;
	bool any = false;

	if (!obs_or(p))
		return false;
	while (accept_word(p, "FOLLOWEDBY")) {
		any = true;
		if (!obs_or(p))
			return false;
	}
	if (any)
		block_range(p, from);
	return true;
}

/* ---- indicators ---- */

struct stix {
	const char *label;
	int64_t now;
	bw_rule_sink sink;
	void *ctx;
	struct bw_parse_report *rep;
};

static void bad(struct stix *st, size_t where, const char *id, const char *what, const char *val,
		size_t vlen)
{
	char msg[160];

	if (val)
		snprintf(msg, sizeof(msg), "%s: '%.*s': %s", id, (int)(vlen > 60 ? 60 : vlen), val,
			 what);
	else
		snprintf(msg, sizeof(msg), "%s: %s", id, what);
	for (char *c = msg; *c; c++) { /* feed text must not forge log lines */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}
	bw_parse_report_bad(st->rep, st->label, where, msg);
}

/* Optional timestamp member: 1 present and parsed, 0 absent, -1 invalid. */
static int time_member(json_t *o, const char *key, int64_t *t)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_string(v) || !parse_time(json_string_value(v), json_string_length(v), t))
		return -1;
	return 1;
}

static const char *string_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int indicator(struct stix *st, json_t *o, size_t where)
{
	struct bw_parse_report *rep = st->rep;
	const char *id = string_member(o, "id"), *name = string_member(o, "name");
	const char *idt = id ? id : "indicator without id";
	json_t *pattern = json_object_get(o, "pattern"),
	       *ptype = json_object_get(o, "pattern_type");
	struct pat p;
	int64_t t;
	int r, rc = 0;

	rep->units++;
	if (json_is_true(json_object_get(o, "revoked"))) {
		rep->skipped++;
		return 0;
	}
	if (ptype && (!json_is_string(ptype) || strcmp(json_string_value(ptype), "stix") != 0)) {
		rep->skipped++;
		return 0;
	}
	r = time_member(o, "valid_until", &t);
	if (r < 0) {
		bad(st, where, idt, "invalid valid_until", NULL, 0);
		return 0;
	}
	if (r > 0 && t <= st->now) {
		rep->skipped++;
		return 0;
	}
	r = time_member(o, "valid_from", &t);
	if (r < 0) {
		bad(st, where, idt, "invalid valid_from", NULL, 0);
		return 0;
	}
	if (r > 0 && t > st->now) {
		rep->skipped++;
		return 0;
	}
	if (!json_is_string(pattern)) {
		bad(st, where, idt, "no pattern", NULL, 0);
		return 0;
	}

	memset(&p, 0, sizeof(p));
	p.s = json_string_value(pattern);
	p.len = json_string_length(pattern);
	p.now = st->now;
	p.vals = malloc(p.len + 1);
	if (!p.vals)
		return BW_ENOMEM;
	if (obs_followedby(&p)) {
		skip_ws(&p);
		if (p.pos != p.len)
			fail(&p, "unexpected text after the pattern");
	}
	if (p.nomem) {
		rc = BW_ENOMEM;
		goto out;
	}
	if (p.err) {
		char what[80];

		snprintf(what, sizeof(what), "pattern: %s at offset %zu", p.err, p.err_pos);
		bad(st, where, idt, what, NULL, 0);
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		static const enum bw_ioc_kind kinds[] = {
		    [T_DOMAIN] = BW_IOC_DOMAIN, [T_URL] = BW_IOC_URL, [T_IP] = BW_IOC_IP};
		const struct term *tm = &p.terms[i];
		const char *reason = NULL;

		if (tm->kind == T_OTHER || !tm->usable || tm->blocked) {
			rep->skipped++;
			continue;
		}
		r = bw_rule_emit_ioc(kinds[tm->kind], p.vals + tm->off, tm->len, id, name, st->sink,
				     st->ctx, rep, &reason);
		if (r < 0) {
			rc = r;
			goto out;
		}
		if (r == 0)
			bad(st, where, idt, reason, p.vals + tm->off, tm->len);
	}
out:
	free(p.terms);
	free(p.vals);
	return rc;
}

json_t *bw_json_feed_load(const char *buf, size_t len, const char *label, const char *kind,
			  struct bw_parse_report *rep)
{
	json_error_t jerr;
	char msg[160];
	memset(rep, 0, sizeof(*rep));
	if (len > BW_JSON_FEED_MAX) {
		rep->broken = true;
		snprintf(msg, sizeof(msg), "%s feed larger than the 256 MiB limit", kind);
		bw_parse_report_bad(rep, label, 0, msg);
		return NULL;
	}
	json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, &jerr);
	if (!root) {
		rep->broken = true;
		snprintf(msg, sizeof(msg), "not JSON: %.140s", jerr.text);
		bw_parse_report_bad(rep, label, (unsigned long)(jerr.line > 0 ? jerr.line : 0),
				    msg);
	}
	return root;
}

int bw_parse_stix(const char *buf, size_t len, const char *label, int64_t now, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep)
{
	struct stix st = {.label = label, .now = now, .sink = sink, .ctx = ctx, .rep = rep};
	json_t *root, *objs = NULL;
	int rc = 0;

	root = bw_json_feed_load(buf, len, label, "STIX", rep);
	if (!root)
		return 0;
	if (json_is_array(root)) {
		objs = root;
	} else if (json_is_object(root)) {
		json_t *type = json_object_get(root, "type");
		json_t *o = json_object_get(root, "objects");

		if (json_is_array(o) &&
		    (!type || (json_is_string(type) && !strcmp(json_string_value(type), "bundle"))))
			objs = o; /* bundle, or a TAXII 2.1 envelope */
		else if (json_is_string(type) && strcmp(json_string_value(type), "bundle") != 0)
			objs = NULL; /* one object */
		else
			goto broken;
	} else {
		goto broken;
	}

	if (!objs) {
		if (!strcmp(json_string_value(json_object_get(root, "type")), "indicator"))
			rc = indicator(&st, root, 0);
	} else {
		size_t i;
		json_t *o;

		json_array_foreach(objs, i, o)
		{
			json_t *type = json_object_get(o, "type");

			if (!json_is_object(o) || !json_is_string(type)) {
				bw_parse_report_bad(rep, label, i, "not a STIX object");
				continue;
			}
			if (strcmp(json_string_value(type), "indicator") != 0)
				continue;
			rc = indicator(&st, o, i);
			if (rc < 0)
				break;
		}
	}
	json_decref(root);
	return rc;

broken:
	rep->broken = true;
	bw_parse_report_bad(rep, label, 0, "not a STIX bundle, array or object");
	json_decref(root);
	return 0;
}
