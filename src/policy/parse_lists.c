/*
 * policy/parse_lists.c - the text list formats (domains, hosts, wildcard, adblock) to rules,
 * and the report helper every parser shares.
 *
 * A feed is scanned in place, one line at a time: no allocation per line, a UTF-8 byte
 * order mark at the start is ignored, CRLF line ends are accepted, and a line longer than
 * MAX_LINE bytes is counted as bad without being looked at. Names go through
 * bw_feed_name_to_wire() (feed.c), so every list format accepts exactly the same names.
 *
 * What each format means (docs/feeds.md has the user's version):
 *  - domains, hosts: a listed name blocks itself and every name below it (QNAME + WILDCARD,
 *    NXDOMAIN). IP literals (an IPv4 address with leading zeros too: "10.0.0.07") and a
 *    hosts file's local names are skipped on purpose.
 *  - wildcard: "*.name" and a bare "name" both mean the name and everything below it.
 *    HaGeZi and urlhaus-filter publish the same list as domains, wildcard and adblock
 *    files and state that they hold the same names ("without subdomains": the wildcard
 *    folds the subdomains in), so the three formats must block the same thing. The
 *    RPZ-exact "subdomains only" meaning stays available in the rpz format.
 *  - adblock: the DNS subset of AdBlock / AdGuard syntax; see adblock_line().
 *
 * bw_feed_parse_stats() (the name-list API of the current snapshot) runs on these parsers.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>

#include "policy/rules.h"

#define MAX_LINE 4096
#define WIRE_MAX 255
#define LIST_TTL 300

struct lp {
	const char *label;
	bw_rule_sink sink;
	void *ctx;
	struct bw_parse_report *rep;
	unsigned long lineno;
	int err; /* sticky: the sink's error, which ends the parse */
};

typedef void (*line_fn)(struct lp *lp, const char *p, const char *end);

void bw_parse_report_bad(struct bw_parse_report *rep, const char *label, unsigned long where,
			 const char *reason)
{
	const unsigned keep = (unsigned)BW_ARRAY_LEN(rep->first_errors);

	rep->bad++;
	if (rep->n_errors >= keep)
		return;
	if (!reason)
		reason = "unusable";
	snprintf(rep->first_errors[rep->n_errors], sizeof(rep->first_errors[0]), "%s:%lu: %s",
		 label ? label : "-", where, reason);
	rep->n_errors++;
	if (label) /* no label: the caller does its own reporting (tools, fuzzing) */
		bw_warn("%s:%lu: %s", label, where, reason);
}

static void bad(struct lp *lp, const char *reason)
{
	bw_parse_report_bad(lp->rep, lp->label, lp->lineno, reason);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Next whitespace-separated token in [*pos, end); false when none is left. */
static bool next_token(const char **pos, const char *end, const char **tok, size_t *tlen)
{
	const char *p = *pos;

	while (p < end && is_space(*p))
		p++;
	if (p == end) {
		*pos = p;
		return false;
	}
	*tok = p;
	while (p < end && !is_space(*p))
		p++;
	*tlen = (size_t)(p - *tok);
	*pos = p;
	return true;
}

/* Four dot-separated groups of digits ("112.246.120.07", "1.2.3.400"): an IPv4 address in
 * a form inet_pton() refuses (leading zeros, which some tools read as octal; an octet over
 * 255). Never a host name: a name's last label is not all digits. */
static bool is_dotted_quad(const char *tok, size_t len)
{
	unsigned dots = 0, digits = 0;

	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '.') {
			if (digits == 0 || ++dots > 3)
				return false;
			digits = 0;
		} else if (tok[i] >= '0' && tok[i] <= '9') {
			digits++;
		} else {
			return false;
		}
	}
	return dots == 3 && digits > 0;
}

/* Does the token parse as an IPv4 or IPv6 address (inet_pton, no zone index)? */
static bool is_addr(const char *tok, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof(buf) || memchr(tok, '\0', len))
		return false;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

/* An IP literal where a name is expected: an address, or an IPv4 address written with
 * leading zeros. (A hosts line's address field is checked with is_addr(): strictly.) */
static bool is_ip(const char *tok, size_t len)
{
	return is_addr(tok, len) || is_dotted_quad(tok, len);
}

/* Names a hosts file maps for the machine itself; never blocking entries. */
static bool is_local_name(const char *tok, size_t len)
{
	static const char *const names[] = {
	    "localhost",     "localhost.localdomain", "local",	      "broadcasthost",
	    "ip6-localhost", "ip6-loopback",	      "ip6-localnet", "ip6-mcastprefix",
	    "ip6-allnodes",  "ip6-allrouters",	      "ip6-allhosts", "0.0.0.0",
	};

	if (len > 0 && tok[len - 1] == '.')
		len--;
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++) {
		if (strlen(names[i]) == len && strncasecmp(names[i], tok, len) == 0)
			return true;
	}
	return false;
}

static void emit(struct lp *lp, enum bw_trigger trig, const uint8_t *wire, size_t wlen,
		 enum bw_action action)
{
	struct bw_rule r = {
	    .trigger = trig,
	    .name = wire,
	    .name_len = wlen,
	    .action = action,
	    .ttl = LIST_TTL,
	    .line = lp->lineno,
	};

	if (lp->err)
		return;
	lp->err = lp->sink(lp->ctx, &r);
	if (!lp->err)
		lp->rep->rules++;
}

/*
 * One name token: the name alone (exact) or the name and everything below it.
 * Returns 1 when rules were emitted, 0 when skipped on purpose (IP literal), -1 when the
 * name is unusable (*reason set).
 */
static int take_name(struct lp *lp, const char *tok, size_t len, bool exact, enum bw_action action,
		     const char **reason)
{
	uint8_t wire[WIRE_MAX];

	if (is_ip(tok, len)) {
		lp->rep->skipped++;
		return 0;
	}
	size_t wlen = bw_feed_name_to_wire(tok, len, wire, reason);
	if (wlen == 0)
		return -1;
	emit(lp, BW_TRIG_QNAME, wire, wlen, action);
	if (!exact)
		emit(lp, BW_TRIG_WILDCARD, wire, wlen, action);
	return 1;
}

/* The part of a line before a '#' comment. */
static const char *comment_start(const char *p, const char *end)
{
	const char *hash = memchr(p, '#', (size_t)(end - p));

	return hash ? hash : end;
}

/* One name per line; `wildcard` also takes "*.name" (same meaning as "name"). */
static void one_name_line(struct lp *lp, const char *p, const char *end, bool wildcard)
{
	const char *tok, *extra, *reason;
	size_t tlen, elen;

	end = comment_start(p, end);
	if (!next_token(&p, end, &tok, &tlen))
		return;
	if (next_token(&p, end, &extra, &elen)) {
		bad(lp, "several tokens on one line");
		return;
	}
	if (wildcard && tlen > 2 && tok[0] == '*' && tok[1] == '.') {
		tok += 2;
		tlen -= 2;
	}
	if (take_name(lp, tok, tlen, false, BW_ACT_NXDOMAIN, &reason) < 0)
		bad(lp, reason);
}

static void domains_line(struct lp *lp, const char *p, const char *end)
{
	one_name_line(lp, p, end, false);
}

static void wildcard_line(struct lp *lp, const char *p, const char *end)
{
	one_name_line(lp, p, end, true);
}

/* "address name..." (comment already cut off): every name but the local ones. */
static void hosts_fields(struct lp *lp, const char *p, const char *end)
{
	const char *tok, *reason = NULL;
	size_t tlen;
	unsigned seen = 0;

	if (!next_token(&p, end, &tok, &tlen))
		return;
	if (!is_addr(tok, tlen)) {
		bad(lp, "first field is not an IP address");
		return;
	}
	while (next_token(&p, end, &tok, &tlen)) {
		const char *why;

		seen++;
		if (is_local_name(tok, tlen)) {
			lp->rep->skipped++;
			continue;
		}
		if (take_name(lp, tok, tlen, false, BW_ACT_NXDOMAIN, &why) < 0 && !reason)
			reason = why;
	}
	if (seen == 0)
		bad(lp, "no names after the address");
	else if (reason)
		bad(lp, reason); /* the line's good names are kept */
}

static void hosts_line(struct lp *lp, const char *p, const char *end)
{
	hosts_fields(lp, p, comment_start(p, end));
}

static bool starts_with(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* Element hiding, scriptlet, CSS and HTML filtering rules: "##", "#@#", "#?#", "#$#", "#%#"
 * (and their "#@" exceptions), "$$", "$@$". None of them is about DNS. */
static bool is_cosmetic(const char *p, const char *end)
{
	static const char *const marks[] = {"##",   "#@#",  "#?#",  "#$#", "#%#",
					    "#@?#", "#@$#", "#@%#", "$$",  "$@$"};

	for (const char *q = p; q < end; q++) {
		if (*q != '#' && *q != '$')
			continue;
		for (size_t i = 0; i < BW_ARRAY_LEN(marks); i++) {
			if (starts_with(q, end, marks[i]))
				return true;
		}
	}
	return false;
}

/* Is the modifier list (after '$') made only of "important"? Any other modifier narrows
 * or changes the rule in a way a plain DNS block cannot honour. */
static bool only_important(const char *p, const char *end)
{
	const char *comma;

	if (p == end)
		return false;
	for (; p <= end; p = comma + 1) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		const char *a = p, *b = comma;
		while (a < b && is_space(*a))
			a++;
		while (b > a && is_space(b[-1]))
			b--;
		if ((size_t)(b - a) != 9 || strncasecmp(a, "important", 9) != 0)
			return false;
		if (comma == end)
			break;
	}
	return true;
}

/*
 * AdBlock / AdGuard, DNS subset:
 *   ||name^        name and everything below it       (QNAME + WILDCARD, NXDOMAIN)
 *   |name^         exactly name                       (QNAME)
 *   name, name^    name and everything below it
 *   @@ + any of those: the same triggers with PASSTHRU (an exception)
 *   $important     ignored; any other modifier: skipped
 *   address name   hosts syntax (AdGuard Home accepts it)
 *   ! comment, # comment, [Adblock Plus 2.0] header: ignored, not counted
 * Skipped on purpose (rep->skipped): other modifiers, URL paths or schemes, '*' in the host,
 * regular expressions (/.../), cosmetic and HTML rules, IP literals.
 * Anything else that is not a valid name is bad.
 */
static void adblock_line(struct lp *lp, const char *p, const char *end)
{
	enum bw_action action = BW_ACT_NXDOMAIN;
	bool exact = false;
	const char *reason;

	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end || *p == '!')
		return;
	if (*p == '[' && end[-1] == ']')
		return;
	if (*p == '#') { /* "# comment", unless a generic cosmetic rule such as "##.ad" */
		bool generic = end - p > 2 && p[1] == '#' && p[2] != '#' && !is_space(p[2]);
		if (generic || (end - p > 1 && p[1] != '#' && is_cosmetic(p, end)))
			lp->rep->skipped++;
		return;
	}
	if (is_cosmetic(p, end) || *p == '/') {
		lp->rep->skipped++;
		return;
	}
	/* a trailing "  # comment" */
	for (const char *q = p + 1; q < end; q++) {
		if (*q == '#' && is_space(q[-1])) {
			end = q;
			while (end > p && is_space(end[-1]))
				end--;
			break;
		}
	}
	for (const char *q = p; q < end; q++) {
		if (is_space(*q)) {
			hosts_fields(lp, p, end);
			return;
		}
	}
	if (starts_with(p, end, "@@")) {
		action = BW_ACT_PASSTHRU;
		p += 2;
	}
	if (starts_with(p, end, "||")) {
		p += 2;
	} else if (starts_with(p, end, "|")) {
		exact = true;
		p++;
	}
	const char *dollar = memchr(p, '$', (size_t)(end - p));
	if (dollar) {
		if (!only_important(dollar + 1, end)) {
			lp->rep->skipped++;
			return;
		}
		end = dollar;
	}
	if (end > p && end[-1] == '|') /* end anchor */
		end--;
	const char *caret = memchr(p, '^', (size_t)(end - p));
	if (caret) {
		if (caret + 1 != end) { /* "^" inside a URL pattern */
			lp->rep->skipped++;
			return;
		}
		end = caret;
	}
	for (const char *q = p; q < end; q++) {
		if (*q == '/' || *q == ':' || *q == '*' || *q == '?' || *q == '=' || *q == '&' ||
		    *q == '|') {
			lp->rep->skipped++; /* a URL, a port, or a pattern inside the host */
			return;
		}
	}
	if (p == end) {
		bad(lp, "rule without a name");
		return;
	}
	if (take_name(lp, p, (size_t)(end - p), exact, action, &reason) < 0)
		bad(lp, reason);
}

/* `more`: buf continues the text of the parse that rep reports (bw_parse_list_more()). */
static int scan(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		struct bw_parse_report *rep, line_fn fn, bool more)
{
	struct lp lp = {.label = label, .sink = sink, .ctx = ctx, .rep = rep};
	const char *p = buf, *end = buf + len;

	if (more)
		lp.lineno = rep->units;
	else
		memset(rep, 0, sizeof(*rep));
	if (!buf)
		return 0;
	if (!more && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
		p += 3;
	while (p < end && !lp.err) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		lp.lineno++;
		if (eol - p > MAX_LINE)
			bad(&lp, "line longer than 4096 bytes");
		else
			fn(&lp, p, eol);
		p = nl ? nl + 1 : end;
	}
	rep->units = lp.lineno;
	return lp.err;
}

int bw_parse_domains(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		     struct bw_parse_report *rep)
{
	return scan(buf, len, label, sink, ctx, rep, domains_line, false);
}

int bw_parse_hosts(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		   struct bw_parse_report *rep)
{
	return scan(buf, len, label, sink, ctx, rep, hosts_line, false);
}

int bw_parse_wildcard(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		      struct bw_parse_report *rep)
{
	return scan(buf, len, label, sink, ctx, rep, wildcard_line, false);
}

int bw_parse_adblock(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		     struct bw_parse_report *rep)
{
	return scan(buf, len, label, sink, ctx, rep, adblock_line, false);
}

int bw_parse_list_more(enum bw_feed_format format, const char *buf, size_t len, const char *label,
		       bw_rule_sink sink, void *ctx, struct bw_parse_report *rep)
{
	line_fn fn = format == BW_FEED_DOMAINS	  ? domains_line
		     : format == BW_FEED_HOSTS	  ? hosts_line
		     : format == BW_FEED_WILDCARD ? wildcard_line
		     : format == BW_FEED_ADBLOCK  ? adblock_line
						  : NULL;

	if (!fn)
		return BW_EINVAL;
	return scan(buf, len, label, sink, ctx, rep, fn, true);
}
