/*
 * policy/parse_rpz.c - RPZ zone files (draft-vixie-dnsop-dns-rpz) to rules.
 *
 * The master-file syntax ($ORIGIN, $TTL, relative names, parentheses, comments, every RR
 * type) is left to libzscanner (Knot DNS), driven one record at a time with
 * zs_parse_record(): in that mode $INCLUDE comes back to us instead of being opened, and a
 * feed must never make the resolver read local files. Each record becomes at most one rule:
 *
 *  - the zone's origin (apex) is the owner of the first record, which must be the SOA; if it
 *    is not, the $ORIGIN in effect for that record is used and the record is reported once.
 *    Records at the apex (SOA, NS, anything else) are not policy; a second SOA is bad.
 *  - the owner relative to the apex is the trigger: "name" QNAME, "*.name" WILDCARD, "*"
 *    WILDCARD on the root (everything), "<prefix>.<reversed ip>.rpz-client-ip" CLIENT_IP,
 *    "...rpz-ip" RESPONSE_IP, "...rpz-nsip" NSIP, "[*.]name.rpz-nsdname" NSDNAME.
 *    Glue of the zone's own name servers below the apex is a QNAME trigger like any other
 *    (BIND does the same).
 *  - the record is the action: CNAME "." NXDOMAIN, "*." NODATA, "rpz-passthru." (or the
 *    legacy CNAME to the trigger's own name) PASSTHRU, "rpz-drop." DROP, "rpz-tcp-only."
 *    TCP_ONLY, "*.name" REDIRECT to <qname>.name (target_wildcard), any other name
 *    REDIRECT; any other type is LOCAL_DATA carrying that one record.
 *
 * Bad records (syntax, out-of-zone owner, bad IP encoding, CNAME beside other data) are
 * counted with their line and the parse goes on, also after libzscanner's fatal errors
 * (unbalanced parentheses, a stray CR): the scanner is restarted on the next line with the
 * $ORIGIN and $TTL it had (more than MAX_RESTARTS such errors: the report says "broken").
 * A record's line is the line on which it ends.
 *
 * A CNAME beside other data at one owner is found here among the adjacent records of the
 * owner; records of an owner that are far apart are left to the sink (BW_SINK_CONFLICT in
 * rules.h: the snapshot builder holds every trigger anyway), so the parser keeps no table
 * of owners. The text may come in pieces (bw_rpz_begin/feed/end): each piece ends after a
 * line that ends outside parentheses, quotes and comments, and the scanner starts on it
 * with the $ORIGIN, $TTL and last owner it had, as after a fatal error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <libzscanner/scanner.h>

#include "policy/rules.h"

enum {
	RR_NS = 2,
	RR_CNAME = 5,
	RR_SOA = 6,
	CLASS_IN = 1,
	DEFAULT_TTL = 3600, /* when the file has neither $TTL nor a TTL on the record */
	MAX_LABELS = 128,
	/* each fatal scanner error costs a restart (zs_init clears ~200 KiB): a file with
	 * this many is not a zone, it is broken */
	MAX_RESTARTS = 1000,
};

#define CONFLICT "CNAME and other data at the same owner"

/* Records of one owner that are adjacent (the usual layout) are checked for CNAME beside
 * other data here, with the last owner and what it held; the sink refuses with
 * BW_SINK_CONFLICT the records of an owner seen earlier (the snapshot builder does: it has
 * the owner's trigger anyway), and the conflict is reported the same way. */
enum { OWN_CNAME = 1, OWN_OTHER = 2 };

/* Where a piece of text may be cut: the scan state at scan_pos of the text not consumed. */
struct cutter {
	size_t scan_pos; /* bytes of the remainder already scanned */
	size_t last_cut; /* end of the last safe line within them (0: none) */
	unsigned depth;	 /* open parentheses */
	bool quote, comment, escape;
};

struct bw_rpz {
	zs_scanner_t *zs;
	const char *label;
	bw_rule_sink sink;
	void *ctx;
	struct bw_parse_report *rep;
	int err; /* the sink's error (or ENOMEM): ends the parse */
	uint8_t apex[ZS_MAX_DNAME_LENGTH + 1];
	size_t apex_len;
	bool have_apex;
	unsigned long last_bad; /* a line counts as bad once */
	bool bad_multiline;	/* the last bad record left a parenthesis open */
	uint8_t last_owner[ZS_MAX_DNAME_LENGTH + 1]; /* lower-cased, of the last rule */
	size_t last_owner_len;
	unsigned last_flags; /* OWN_* the last owner holds */
	/* streaming */
	unsigned long line; /* line number of the next piece's first line */
	unsigned long restarts;
	bool started; /* the scanner has run: its state carries over */
	bool done;    /* broken or failed: the rest is not parsed */
	bool cr;      /* the text has CRs (a copy without those of CRLF is parsed) */
	char *copy;
	size_t copy_cap;
	struct cutter cut;
};

/* A trigger decoded from an owner name. */
struct trig {
	const uint8_t *lab[MAX_LABELS]; /* labels of the part left of the apex, wire (len byte) */
	size_t n;
	const uint8_t *part; /* that part, wire, not terminated */
	size_t part_len;
};

static void bad(struct bw_rpz *z, unsigned long line, const char *reason)
{
	if (line != 0 && line == z->last_bad)
		return;
	z->last_bad = line;
	bw_parse_report_bad(z->rep, z->label, line, reason);
}

static void lower_name(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = src[i];
		dst[i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
	}
}

/* Wire length of a name in rdata, or 0 if it is not a whole name within len. */
static size_t wire_name_len(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (p[i] == 0)
			return i + 1;
		if (p[i] > 63)
			return 0;
		i += 1 + (size_t)p[i];
	}
	return 0;
}

static bool label_is(const uint8_t *lab, const char *text)
{
	size_t n = strlen(text);

	return lab[0] == n && memcmp(lab + 1, text, n) == 0;
}

static bool name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* ---- IP triggers ---- */

/* A decimal label of 1..3 digits; returns false if it is not one. */
static bool dec_label(const uint8_t *lab, unsigned *v)
{
	if (lab[0] < 1 || lab[0] > 3)
		return false;
	*v = 0;
	for (unsigned i = 1; i <= lab[0]; i++) {
		if (lab[i] < '0' || lab[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(lab[i] - '0');
	}
	return true;
}

static bool hex_label(const uint8_t *lab, unsigned *v)
{
	if (lab[0] < 1 || lab[0] > 4)
		return false;
	*v = 0;
	for (unsigned i = 1; i <= lab[0]; i++) {
		uint8_t c = lab[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		*v = *v * 16 + d;
	}
	return true;
}

/* Decodes "<prefix>.<address, reversed>" (lab[0..n), lower-cased): IPv4 "32.4.3.2.1" is
 * 1.2.3.4/32; IPv6 groups come in reverse order and "zz" stands for a run of zero groups
 * ("128.1.zz.db8.2001" is 2001:db8::1/128). Uncompressed zero groups are accepted, as BIND
 * does; set bits after the prefix length are not. */
static const char *decode_ip(const uint8_t *const *lab, size_t n, struct bw_cidr *net)
{
	unsigned prefix, v;
	bool zz = false;

	memset(net, 0, sizeof(*net));
	if (n < 2)
		return "rpz IP trigger without an address";
	if (!dec_label(lab[0], &prefix))
		return "rpz IP trigger: bad prefix length";
	for (size_t i = 1; i < n; i++)
		zz |= label_is(lab[i], "zz");
	if (n == 5 && !zz) {
		net->family = AF_INET;
		for (size_t i = 1; i < 5; i++) {
			if (!dec_label(lab[i], &v) || v > 255)
				return "rpz IP trigger: bad IPv4 address";
			net->addr[4 - i] = (uint8_t)v;
		}
		if (prefix < 1 || prefix > 32)
			return "rpz IP trigger: IPv4 prefix length out of 1..32";
	} else {
		uint16_t g[8] = {0};
		size_t ng = 0, zpos = SIZE_MAX;
		for (size_t i = n - 1; i >= 1; i--) { /* most significant group first */
			if (label_is(lab[i], "zz")) {
				if (zpos != SIZE_MAX)
					return "rpz IP trigger: more than one zz";
				zpos = ng;
				continue;
			}
			if (ng == 8 || !hex_label(lab[i], &v))
				return "rpz IP trigger: bad IPv6 address";
			g[ng++] = (uint16_t)v;
		}
		if (zpos == SIZE_MAX ? ng != 8 : ng > 7)
			return "rpz IP trigger: bad IPv6 address";
		if (zpos != SIZE_MAX) { /* open the gap of zero groups at zpos */
			size_t gap = 8 - ng;
			memmove(g + zpos + gap, g + zpos, (ng - zpos) * sizeof(g[0]));
			memset(g + zpos, 0, gap * sizeof(g[0]));
		}
		net->family = AF_INET6;
		for (size_t i = 0; i < 8; i++) {
			net->addr[2 * i] = (uint8_t)(g[i] >> 8);
			net->addr[2 * i + 1] = (uint8_t)g[i];
		}
		if (prefix < 1 || prefix > 128)
			return "rpz IP trigger: IPv6 prefix length out of 1..128";
	}
	size_t bits = net->family == AF_INET ? 32 : 128;
	for (size_t b = prefix; b < bits; b++)
		if (net->addr[b / 8] & (0x80u >> (b % 8)))
			return "rpz IP trigger: address has bits set after the prefix length";
	net->prefix = (uint8_t)prefix;
	return NULL;
}

/* ---- records ---- */

/* Fills *r's trigger from the owner's part left of the apex. Returns NULL or the reason
 * the owner is unusable. `buf` (256 bytes) receives the trigger name. */
static const char *decode_trigger(struct trig *t, struct bw_rule *r, uint8_t *buf,
				  const uint8_t **self, size_t *self_len)
{
	const uint8_t *last = t->lab[t->n - 1];
	size_t skip = 0, keep = t->n;

	*self = NULL;
	if (label_is(last, "rpz-client-ip") || label_is(last, "rpz-ip") ||
	    label_is(last, "rpz-nsip")) {
		r->trigger = label_is(last, "rpz-ip")	  ? BW_TRIG_RESPONSE_IP
			     : label_is(last, "rpz-nsip") ? BW_TRIG_NSIP
							  : BW_TRIG_CLIENT_IP;
		/* the legacy passthru "CNAME <address part>." names the owner without the
		 * rpz-* label */
		*self_len = (size_t)(last - t->part);
		memcpy(buf, t->part, *self_len);
		buf[(*self_len)++] = 0;
		*self = buf;
		return decode_ip(t->lab, t->n - 1, &r->net);
	}
	if (label_is(last, "rpz-nsdname")) {
		r->trigger = BW_TRIG_NSDNAME;
		keep = t->n - 1;
	} else {
		r->trigger = BW_TRIG_QNAME;
	}
	if (keep == 0)
		return "rpz-nsdname trigger without a name";
	if (label_is(t->lab[0], "*")) {
		skip = 1;
		if (r->trigger == BW_TRIG_NSDNAME)
			r->nsdname_wildcard = true;
		else
			r->trigger = BW_TRIG_WILDCARD;
	}
	for (size_t i = skip; i < keep; i++)
		if (label_is(t->lab[i], "*"))
			return "wildcard label not leftmost";
	/* the name is lab[skip..keep): empty (the root) for "*" and "*.rpz-nsdname" */
	size_t to = keep < t->n ? (size_t)(t->lab[keep] - t->part) : t->part_len;
	size_t from = skip < keep ? (size_t)(t->lab[skip] - t->part) : to;
	memcpy(buf, t->part + from, to - from);
	buf[to - from] = 0;
	r->name = buf;
	r->name_len = to - from + 1;
	return NULL;
}

/* Decides the action of a CNAME record; `target` is lower-cased wire. */
static void cname_action(struct bw_rule *r, const uint8_t *target, size_t tlen,
			 const uint8_t *owner, size_t owner_len, const struct trig *t,
			 const uint8_t *self, size_t self_len)
{
	static const uint8_t nodata[] = {1, '*', 0};
	uint8_t trig_abs[ZS_MAX_DNAME_LENGTH + 1];

	memcpy(trig_abs, t->part, t->part_len);
	trig_abs[t->part_len] = 0;
	if (tlen == 1) {
		r->action = BW_ACT_NXDOMAIN;
	} else if (name_eq(target, tlen, nodata, sizeof(nodata))) {
		r->action = BW_ACT_NODATA;
	} else if (label_is(target, "rpz-passthru") && tlen == 14) {
		r->action = BW_ACT_PASSTHRU;
	} else if (label_is(target, "rpz-drop") && tlen == 10) {
		r->action = BW_ACT_DROP;
	} else if (label_is(target, "rpz-tcp-only") && tlen == 14) {
		r->action = BW_ACT_TCP_ONLY;
	} else if (name_eq(target, tlen, trig_abs, t->part_len + 1) ||
		   name_eq(target, tlen, owner, owner_len) ||
		   (self && name_eq(target, tlen, self, self_len))) {
		r->action = BW_ACT_PASSTHRU; /* legacy: CNAME to the trigger itself */
	} else if (target[0] == 1 && target[1] == '*') {
		r->action = BW_ACT_REDIRECT;
		r->target_wildcard = true;
		r->target = target + 2;
		r->target_len = tlen - 2;
	} else {
		r->action = BW_ACT_REDIRECT;
		r->target = target;
		r->target_len = tlen;
	}
}

int bw_rpz_rr_rule(const uint8_t *apex, size_t apex_len, const uint8_t *owner, size_t olen,
		   uint16_t type, uint32_t ttl, const uint8_t *rdata, size_t rdlen,
		   struct bw_rpz_rr_buf *buf, struct bw_rule *r, const char **why)
{
	struct trig t;
	const uint8_t *self;
	size_t self_len = 0;

	memset(r, 0, sizeof(*r));
	*why = NULL;
	if (name_eq(owner, olen, apex, apex_len))
		return 0;
	/* under the apex: ends with it, on a label boundary */
	if (olen <= apex_len || memcmp(owner + olen - apex_len, apex, apex_len) != 0) {
		*why = "owner name outside the zone";
		return -1;
	}
	t.part = owner;
	t.part_len = olen - apex_len;
	t.n = 0;
	size_t i = 0;
	while (i < t.part_len && t.n < MAX_LABELS && owner[i] != 0) {
		t.lab[t.n++] = owner + i;
		i += 1 + (size_t)owner[i];
	}
	if (i != t.part_len) { /* the apex matched inside a label */
		*why = "owner name outside the zone";
		return -1;
	}
	*why = decode_trigger(&t, r, buf->name, &self, &self_len);
	if (*why)
		return -1;
	if (type == RR_CNAME) {
		size_t tlen = wire_name_len(rdata, rdlen);
		if (tlen == 0 || tlen != rdlen) {
			*why = "bad CNAME target";
			return -1;
		}
		lower_name(buf->target, rdata, tlen);
		cname_action(r, buf->target, tlen, owner, olen, &t, self, self_len);
	} else {
		/* One rule per record: the snapshot builder merges the records of one trigger
		 * into one answer. */
		buf->rr = (struct bw_rule_rr){
			.type = type, .ttl = ttl, .rdlen = (uint16_t)rdlen, .rdata = rdata};
		r->action = BW_ACT_LOCAL_DATA;
		r->rrs = &buf->rr;
		r->n_rrs = 1;
	}
	r->ttl = ttl;
	return 1;
}

static void on_record(struct bw_rpz *z, unsigned long line)
{
	zs_scanner_t *s = z->zs;
	uint8_t owner[ZS_MAX_DNAME_LENGTH + 1];
	size_t olen = s->r_owner_length;
	struct bw_rule r = {0};
	struct bw_rpz_rr_buf buf;
	const char *why;

	if (olen < 1 || olen > ZS_MAX_DNAME_LENGTH) {
		bad(z, line, "bad owner name");
		return;
	}
	lower_name(owner, s->r_owner, olen);
	if (s->r_class != CLASS_IN) {
		bad(z, line, "class is not IN");
		return;
	}
	if (!z->have_apex) {
		z->have_apex = true;
		if (s->r_type == RR_SOA) {
			memcpy(z->apex, owner, olen);
			z->apex_len = olen;
			/* "rpz.example. SOA ..." with no $ORIGIN before it: relative names that
			 * follow are relative to the zone, as when a server loads the file under
			 * the zone's name */
			if (s->zone_origin_length == 1 && olen > 1) {
				memcpy(s->zone_origin, s->r_owner, olen);
				s->zone_origin_length = (uint32_t)olen;
			}
			return;
		}
		size_t alen = s->zone_origin_length;
		if (alen < 1 || alen > ZS_MAX_DNAME_LENGTH) { /* cannot happen: the root */
			alen = 1;
			s->zone_origin[0] = 0;
		}
		lower_name(z->apex, s->zone_origin, alen);
		z->apex_len = alen;
		bad(z, line, "first record is not the SOA: zone origin taken from $ORIGIN");
		z->last_bad = 0; /* the record itself is judged on its own below */
	} else if (s->r_type == RR_SOA) {
		bad(z, line, "SOA other than the first record");
		return;
	}
	int got = bw_rpz_rr_rule(z->apex, z->apex_len, owner, olen, s->r_type, s->r_ttl,
				 s->r_data, s->r_data_length, &buf, &r, &why);
	if (got == 0) {
		if (s->r_type != RR_NS)
			z->rep->skipped++;
		return;
	}
	if (got < 0) {
		bad(z, line, why);
		return;
	}
	unsigned want = s->r_type == RR_CNAME ? OWN_CNAME : OWN_OTHER;
	if (!name_eq(owner, olen, z->last_owner, z->last_owner_len)) {
		memcpy(z->last_owner, owner, olen);
		z->last_owner_len = olen;
		z->last_flags = 0;
	} else if ((z->last_flags & OWN_CNAME) || (want == OWN_CNAME && z->last_flags)) {
		bad(z, line, CONFLICT);
		return;
	}
	z->last_flags |= want;
	r.line = line;
	r.cname_exclusive = true;
	z->rep->rules++;
	int rc = z->sink(z->ctx, &r);
	if (rc == BW_SINK_CONFLICT) {
		z->rep->rules--;
		bad(z, line, CONFLICT);
	} else if (rc < 0) {
		z->err = rc;
	}
}

/* ---- the scanner loop ---- */

/* Starts (or restarts, after a fatal error) the scanner on text[off..len) at `line`,
 * keeping the $ORIGIN, $TTL and last owner of the previous run. */
static int scanner_start(struct bw_rpz *z, const char *text, size_t len, size_t off,
			 unsigned long line, bool restart)
{
	zs_scanner_t *s = z->zs;
	uint8_t origin[sizeof(s->zone_origin)], last_owner[sizeof(s->r_owner)];
	uint32_t origin_len = 0, ttl = DEFAULT_TTL, last_owner_len = 0;

	if (restart) {
		origin_len = s->zone_origin_length;
		memcpy(origin, s->zone_origin, sizeof(origin));
		ttl = s->default_ttl;
		last_owner_len = s->r_owner_length;
		memcpy(last_owner, s->r_owner, sizeof(last_owner));
		zs_deinit(s);
	}
	if (zs_init(s, ".", CLASS_IN, ttl) != 0)
		return BW_ENOMEM;
	if (restart) {
		s->zone_origin_length = origin_len;
		memcpy(s->zone_origin, origin, sizeof(origin));
		s->r_owner_length = last_owner_len;
		memcpy(s->r_owner, last_owner, sizeof(last_owner));
	}
	s->line_counter = line;
	if (zs_set_input_string(s, text + off, len - off) != 0)
		return BW_ENOMEM;
	return 0;
}

/* Offset of the start of line `want` (1-based), moving the cursor (*pos at *line) forward;
 * len if the text has no such line. */
static size_t line_start(const char *text, size_t len, size_t *pos, unsigned long *line,
			 unsigned long want)
{
	while (*line < want && *pos < len) {
		const char *nl = memchr(text + *pos, '\n', len - *pos);
		if (!nl) {
			*pos = len;
			break;
		}
		*pos = (size_t)(nl - text) + 1;
		(*line)++;
	}
	return *line < want ? len : *pos;
}

/* Parses text[0..len), whose first line is line z->line, continuing the scanner's state. */
static int run(struct bw_rpz *z, const char *text, size_t len)
{
	zs_scanner_t *s = z->zs;
	size_t cur_pos = 0, start_off = 0;
	unsigned long cur_line = z->line;
	char msg[128];
	int rc;

	rc = scanner_start(z, text, len, 0, z->line, z->started);
	z->started = true;
	while (rc == 0 && z->err == 0) {
		if (zs_parse_record(s) != 0 || (s->state == ZS_STATE_ERROR && s->error.fatal)) {
			/* fatal for libzscanner: count the line (unless it is the open parenthesis
			 * of a record already counted), restart after it */
			unsigned long line = (unsigned long)s->line_counter;
			snprintf(msg, sizeof(msg), "zone syntax: %s", zs_strerror(s->error.code));
			if (s->error.code != ZS_UNCLOSED_MULTILINE || !z->bad_multiline)
				bad(z, line, msg);
			size_t off = line_start(text, len, &cur_pos, &cur_line, line + 1);
			if (off <= start_off) /* no progress: skip one more line */
				off = line_start(text, len, &cur_pos, &cur_line, cur_line + 1);
			if (off >= len || off <= start_off)
				break;
			if (++z->restarts > MAX_RESTARTS) {
				z->rep->broken = true;
				break;
			}
			start_off = off;
			rc = scanner_start(z, text, len, off, cur_line, true);
			continue;
		}
		switch (s->state) {
		case ZS_STATE_DATA:
			z->bad_multiline = false;
			on_record(z, (unsigned long)s->line_counter);
			break;
		case ZS_STATE_ERROR:
			snprintf(msg, sizeof(msg), "zone syntax: %s", zs_strerror(s->error.code));
			bad(z, (unsigned long)s->line_counter, msg);
			z->bad_multiline = s->multiline;
			break;
		case ZS_STATE_INCLUDE:
			bad(z, (unsigned long)s->line_counter, "$INCLUDE is not supported");
			break;
		default: /* EOF, STOP */
			return rc;
		}
	}
	return rc ? rc : z->err;
}

/* Scans the remainder buf[0..len) on from where the last call stopped; returns the end of
 * its last line that ends outside parentheses, quotes and comments (0: none yet). Escapes
 * (\X) are skipped; a quote left open by a line is taken as running on (no cut there). */
/* The bytes that change the cutter's state; everything else is skipped in a tight loop
 * (find_cut looks at every byte of the file). */
static const bool cut_special[256] = {
	['\n'] = true, ['\\'] = true, ['"'] = true, [';'] = true, ['('] = true, [')'] = true,
};

static size_t find_cut(struct cutter *c, const char *buf, size_t len)
{
	for (size_t i = c->scan_pos; i < len; i++) {
		if (c->comment && !c->escape) {
			const char *nl = memchr(buf + i, '\n', len - i);
			if (!nl)
				break;
			i = (size_t)(nl - buf);
		} else if (!c->escape) {
			while (i < len && !cut_special[(unsigned char)buf[i]])
				i++;
			if (i == len)
				break;
		}
		char ch = buf[i];

		if (c->escape) {
			c->escape = false;
			if (ch != '\n')
				continue;
		}
		if (ch == '\n') {
			c->comment = false;
			if (c->depth == 0 && !c->quote)
				c->last_cut = i + 1;
			continue;
		}
		if (c->comment)
			continue;
		if (ch == '\\') {
			c->escape = true;
		} else if (ch == '"') {
			c->quote = !c->quote;
		} else if (c->quote) {
			continue;
		} else if (ch == ';') {
			c->comment = true;
		} else if (ch == '(') {
			c->depth++;
		} else if (ch == ')' && c->depth > 0) {
			c->depth--;
		}
	}
	c->scan_pos = len;
	return c->last_cut;
}

/* Parses one piece of whole lines. */
static int parse_piece(struct bw_rpz *z, const char *buf, size_t len)
{
	const char *text = buf;
	size_t tlen = len;

	for (size_t i = 0; i < len;) { /* lines looked at */
		const char *nl = memchr(buf + i, '\n', len - i);
		z->rep->units++;
		i = nl ? (size_t)(nl - buf) + 1 : len;
	}
	/* libzscanner stops at a CR: accept CRLF files by dropping the CR of each CRLF (a
	 * piece ends with a whole line, so a CRLF is never split) */
	if (len > 0 && (z->cr || memchr(buf, '\r', len))) {
		z->cr = true;
		if (z->copy_cap < len) {
			char *n = realloc(z->copy, len);
			if (!n)
				return BW_ENOMEM;
			z->copy = n;
			z->copy_cap = len;
		}
		tlen = 0;
		for (size_t i = 0; i < len; i++)
			if (buf[i] != '\r' || i + 1 >= len || buf[i + 1] != '\n')
				z->copy[tlen++] = buf[i];
		text = z->copy;
	}
	int rc = run(z, text ? text : "", tlen);
	z->line = z->rep->units + 1;
	return rc;
}

int bw_rpz_begin(struct bw_rpz **out, const char *label, bw_rule_sink sink, void *ctx,
		 struct bw_parse_report *rep)
{
	struct bw_rpz *z = calloc(1, sizeof(*z));

	*out = NULL;
	memset(rep, 0, sizeof(*rep));
	if (!z)
		return BW_ENOMEM;
	z->zs = malloc(sizeof(*z->zs)); /* ~200 KiB: never on the stack */
	if (!z->zs) {
		free(z);
		return BW_ENOMEM;
	}
	z->label = label;
	z->sink = sink;
	z->ctx = ctx;
	z->rep = rep;
	z->line = 1;
	*out = z;
	return 0;
}

int bw_rpz_feed(struct bw_rpz *zp, const char *buf, size_t len, bool last, size_t *used)
{
	struct bw_rpz *z = zp;
	size_t n = len;
	int rc;

	*used = 0;
	if (len > 0 && !buf)
		return BW_EINVAL;
	if (!last) {
		n = find_cut(&z->cut, buf, len);
		if (n == 0)
			return 0;
	}
	*used = n;
	/* the rest was scanned from a line start outside everything: go on from its end */
	if (last)
		memset(&z->cut, 0, sizeof(z->cut));
	else
		z->cut.scan_pos -= n;
	z->cut.last_cut = 0;
	if (z->done || (n == 0 && z->started))
		return 0;
	rc = parse_piece(z, buf, n);
	if (rc || z->rep->broken)
		z->done = true;
	return rc;
}

void bw_rpz_end(struct bw_rpz *zp)
{
	struct bw_rpz *z = zp;

	if (!z)
		return;
	if (z->started)
		zs_deinit(z->zs);
	free(z->zs);
	free(z->copy);
	free(z);
}

int bw_parse_rpz(const char *buf, size_t len, const char *label, bw_rule_sink sink, void *ctx,
		 struct bw_parse_report *rep)
{
	struct bw_rpz *z;
	size_t used;

	int rc = bw_rpz_begin(&z, label, sink, ctx, rep);
	if (rc)
		return rc;
	rc = bw_rpz_feed(z, buf, len, true, &used);
	bw_rpz_end(z);
	return rc;
}
