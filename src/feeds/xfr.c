/*
 * feeds/xfr.c - zone transfers for RPZ feeds: SOA query, IXFR (RFC 1995) with fallback to
 * AXFR, over TCP with blocking sockets and poll() timeouts (the feed manager's thread).
 *
 * A transfer is read message by message; each record is copied, uncompressed, into the
 * result's arena and run through a small state machine that knows the shape of the stream:
 *
 *   AXFR           SOA(new) rr... SOA(new)
 *   IXFR, full     the same (a primary may answer IXFR with the whole zone)
 *   IXFR, delta    SOA(new) [SOA(from) del... SOA(to) add...]+ SOA(new)
 *   IXFR, current  SOA(ours) alone
 *
 * Checks: every message has our ID, QR, opcode QUERY, NOERROR, no TC, the question (if
 * any) is ours; every record is class IN and inside the zone; the first and last SOA are
 * the same; the difference sequences chain from our serial to the new one, each moving
 * forward (RFC 1982); the new serial is newer than ours (a rollback is refused); nothing
 * follows the final SOA; the connection does not end before it; TSIG on every signed
 * message. Any failure frees everything: the caller gets an error and no records.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "feeds/xfr.h"

enum {
	HDR = 12,
	CLASS_IN = 1,
	RCODE_FORMERR = 1,
	RCODE_SERVFAIL = 2,
	RCODE_NOTIMP = 4,
	CHUNK = 1 << 20,
	DEFAULT_TIMEOUT_MS = 10000,
};
#define DEFAULT_MAX_BYTES ((size_t)512 << 20)

/* ---- serial arithmetic (RFC 1982) ---- */

int bw_serial_cmp(uint32_t a, uint32_t b)
{
	if (a == b)
		return 0;
	uint32_t d = b - a;
	if (d == 0x80000000u)
		return 2;
	return d < 0x80000000u ? -1 : 1;
}

bool bw_serial_newer(uint32_t b, uint32_t a)
{
	return bw_serial_cmp(b, a) == 1;
}

/* ---- the result's arena ---- */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	uint8_t data[];
};

struct bw_xfr_mem {
	struct chunk *head;
	size_t total, cap;
};

static void *mem_alloc(struct bw_xfr_mem *m, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!m->head || m->head->cap - m->head->used < n) {
		size_t cap = n > CHUNK ? n : CHUNK;
		if (m->cap && m->total + cap > m->cap + CHUNK)
			return NULL;
		struct chunk *c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = m->head;
		c->used = 0;
		c->cap = cap;
		m->head = c;
		m->total += cap;
	}
	void *p = m->head->data + m->head->used;
	m->head->used += n;
	return p;
}

static void mem_free(struct bw_xfr_mem *m)
{
	if (!m)
		return;
	for (struct chunk *c = m->head, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(m);
}

static int rrset_add(struct bw_xfr_rrset *s, const struct bw_xfr_rr *rr)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct bw_xfr_rr *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return BW_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *rr;
	return 0;
}

void bw_xfr_result_free(struct bw_xfr_result *r)
{
	if (!r)
		return;
	free(r->zone.v);
	for (size_t i = 0; i < r->n_diffs; i++) {
		free(r->diffs[i].del.v);
		free(r->diffs[i].add.v);
	}
	free(r->diffs);
	mem_free(r->mem);
	memset(r, 0, sizeof(*r));
}

/* ---- records ---- */

/* Layout of the types whose rdata holds names that may be compressed: `pre` fixed bytes,
 * `names` names, then `post` fixed bytes (-1: whatever remains, copied). */
static bool rdata_layout(uint16_t type, unsigned *pre, unsigned *names, int *post)
{
	*pre = 0;
	*names = 1;
	*post = 0;
	switch (type) {
	case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12: case 39:
		return true; /* NS MD MF CNAME MB MG MR PTR DNAME */
	case 6: /* SOA */
		*names = 2;
		*post = 20;
		return true;
	case 14: case 17: /* MINFO RP */
		*names = 2;
		return true;
	case 15: case 18: case 21: case 36: /* MX AFSDB RT KX */
		*pre = 2;
		return true;
	case 26: /* PX */
		*pre = 2;
		*names = 2;
		return true;
	case 33: /* SRV */
		*pre = 6;
		return true;
	default:
		return false;
	}
}

/* Reads one record at the cursor into the arena (names uncompressed). */
static int read_rr(struct bw_cursor *c, struct bw_xfr_mem *m, struct bw_xfr_rr *rr)
{
	uint8_t owner[BW_DNS_MAXNAME], buf[65535 + 2 * BW_DNS_MAXNAME];
	int olen = bw_name_unpack(c, owner);
	unsigned pre, names;
	int post;

	rr->type = bw_cursor_u16(c);
	rr->rclass = bw_cursor_u16(c);
	rr->ttl = bw_cursor_u32(c);
	uint16_t rdlen = bw_cursor_u16(c);
	if (c->error || olen < 0 || !bw_cursor_need(c, rdlen))
		return BW_EMALFORMED;
	size_t end = c->pos + rdlen, n = 0;
	if (rdata_layout(rr->type, &pre, &names, &post)) {
		struct bw_cursor rc = *c;
		rc.len = end; /* names must end within the rdata; pointers may go back */
		if (!bw_cursor_need(&rc, pre))
			return BW_EMALFORMED;
		memcpy(buf, bw_cursor_ptr(&rc), pre);
		bw_cursor_skip(&rc, pre);
		n = pre;
		for (unsigned i = 0; i < names; i++) {
			int l = bw_name_unpack(&rc, buf + n);
			if (l < 0)
				return BW_EMALFORMED;
			n += (size_t)l;
		}
		size_t rest = end - rc.pos;
		if (rc.error || (post >= 0 && rest != (size_t)post))
			return BW_EMALFORMED;
		memcpy(buf + n, c->base + rc.pos, rest);
		n += rest;
		if (n > 65535)
			return BW_EMALFORMED;
	} else {
		memcpy(buf, bw_cursor_ptr(c), rdlen);
		n = rdlen;
	}
	c->pos = end;
	uint8_t *p = mem_alloc(m, (size_t)olen + n);
	if (!p)
		return BW_ENOMEM;
	memcpy(p, owner, (size_t)olen);
	memcpy(p + olen, buf, n);
	rr->owner = p;
	rr->owner_len = (uint16_t)olen;
	rr->rdata = p + olen;
	rr->rdlen = (uint16_t)n;
	return 0;
}

static bool name_eq_ci(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		uint8_t x = a[i], y = b[i];
		x = (x >= 'A' && x <= 'Z') ? (uint8_t)(x + 32) : x;
		y = (y >= 'A' && y <= 'Z') ? (uint8_t)(y + 32) : y;
		if (x != y)
			return false;
	}
	return true;
}

/* Is the owner the zone or below it (on a label boundary)? */
static bool in_zone(const uint8_t *owner, size_t olen, const uint8_t *zone, size_t zlen)
{
	size_t i = 0;

	if (olen < zlen)
		return false;
	while (olen - i > zlen) {
		i += 1 + (size_t)owner[i];
		if (i > olen)
			return false;
	}
	return olen - i == zlen && name_eq_ci(owner + i, zlen, zone, zlen);
}

static bool soa_parse(const struct bw_xfr_rr *rr, struct bw_soa *soa)
{
	int l1 = bw_name_len(rr->rdata, rr->rdlen);
	if (l1 < 0)
		return false;
	int l2 = bw_name_len(rr->rdata + l1, rr->rdlen - (size_t)l1);
	if (l2 < 0 || (size_t)l1 + (size_t)l2 + 20 != rr->rdlen)
		return false;
	const uint8_t *p = rr->rdata + l1 + l2;
	soa->serial = bw_get32(p);
	soa->refresh = bw_get32(p + 4);
	soa->retry = bw_get32(p + 8);
	soa->expire = bw_get32(p + 12);
	soa->minimum = bw_get32(p + 16);
	return true;
}

/* ---- the stream ---- */

enum st { S_FIRST = 0, S_SECOND, S_AXFR, S_DEL, S_ADD, S_DONE };

struct run {
	struct bw_xfr_result *out;
	uint16_t qtype, id;
	uint32_t ours;
	enum st st;
	bool uptodate; /* IXFR answered with our SOA alone */
	bool want_axfr; /* IXFR answered with a newer SOA alone: ask for AXFR */
	struct bw_xfr_rr first; /* the first SOA */
	struct bw_tsig_ctx *tsig;
	int64_t now;
	size_t max_bytes;
	char *err;
	size_t errlen;
};

static int bad(struct run *r, int code, const char *what)
{
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "%s: %s",
			 r->qtype == BW_RR_IXFR	  ? "IXFR"
			 : r->qtype == BW_RR_AXFR ? "AXFR"
						  : "SOA",
			 what);
	return code;
}

static int on_rr(struct run *r, const struct bw_xfr_rr *rr)
{
	struct bw_xfr_result *o = r->out;
	struct bw_soa soa = {0};
	bool is_soa = rr->type == BW_RR_SOA;
	char msg[96];

	if (rr->rclass != CLASS_IN)
		return bad(r, BW_EMALFORMED, "record of class other than IN");
	if (!in_zone(rr->owner, rr->owner_len, o->origin, o->origin_len))
		return bad(r, BW_EMALFORMED, "record outside the zone");
	if (is_soa) {
		if (!name_eq_ci(rr->owner, rr->owner_len, o->origin, o->origin_len))
			return bad(r, BW_EMALFORMED, "SOA not at the apex");
		if (!soa_parse(rr, &soa))
			return bad(r, BW_EMALFORMED, "garbled SOA");
	}
	switch (r->st) {
	case S_FIRST:
		if (!is_soa)
			return bad(r, BW_EMALFORMED, "first record is not the SOA");
		o->soa = soa;
		r->first = *rr;
		r->st = S_SECOND;
		return 0;
	case S_SECOND:
		if (is_soa && r->qtype == BW_RR_IXFR && soa.serial != o->soa.serial) {
			if (soa.serial != r->ours) {
				snprintf(msg, sizeof(msg),
					 "first difference starts at %u, we hold %u", soa.serial,
					 r->ours);
				return bad(r, BW_EMALFORMED, msg);
			}
			goto start_diff;
		}
		/* a whole zone: the first SOA is its first record (put first at the end) */
		o->kind = BW_XFR_FULL;
		r->st = S_AXFR;
		break;
	default:
		break;
	}
	switch (r->st) {
	case S_AXFR:
		if (is_soa) {
			if (soa.serial != o->soa.serial)
				return bad(r, BW_EMALFORMED, "last SOA differs from the first");
			r->st = S_DONE;
			return 0;
		}
		return rrset_add(&o->zone, rr) ? BW_ENOMEM : 0;
	case S_DEL:
		if (!is_soa)
			return rrset_add(&o->diffs[o->n_diffs - 1].del, rr) ? BW_ENOMEM : 0;
		{
			struct bw_xfr_diff *d = &o->diffs[o->n_diffs - 1];
			if (!bw_serial_newer(soa.serial, d->from)) {
				snprintf(msg, sizeof(msg), "difference goes back: %u -> %u",
					 d->from, soa.serial);
				return bad(r, BW_ERANGE, msg);
			}
			d->to = soa.serial;
			r->st = S_ADD;
		}
		return 0;
	case S_ADD:
		if (!is_soa)
			return rrset_add(&o->diffs[o->n_diffs - 1].add, rr) ? BW_ENOMEM : 0;
		if (soa.serial == o->soa.serial && o->diffs[o->n_diffs - 1].to == soa.serial) {
			r->st = S_DONE;
			return 0;
		}
		if (soa.serial != o->diffs[o->n_diffs - 1].to) {
			snprintf(msg, sizeof(msg), "gap in the chain: %u then %u",
				 o->diffs[o->n_diffs - 1].to, soa.serial);
			return bad(r, BW_EMALFORMED, msg);
		}
		goto start_diff;
	case S_DONE:
		return bad(r, BW_EMALFORMED, "records after the last SOA");
	default:
		return bad(r, BW_EMALFORMED, "bad state");
	}
start_diff:
	if (o->n_diffs % 16 == 0) {
		struct bw_xfr_diff *v = realloc(o->diffs, (o->n_diffs + 16) * sizeof(*v));
		if (!v)
			return BW_ENOMEM;
		o->diffs = v;
	}
	o->diffs[o->n_diffs++] = (struct bw_xfr_diff){.from = soa.serial, .to = soa.serial};
	o->kind = BW_XFR_DELTA;
	r->st = S_DEL;
	return 0;
}

/* One message of the stream: 0 (go on), 1 (the transfer is complete), or an error. */
static int on_message(struct run *r, const uint8_t *msg, size_t len)
{
	struct bw_xfr_result *o = r->out;
	struct bw_cursor c;
	uint8_t qname[BW_DNS_MAXNAME];
	struct bw_xfr_rr rr;
	char text[64];
	int rc;

	o->messages++;
	o->bytes += len;
	if (o->bytes > r->max_bytes)
		return bad(r, BW_ERANGE, "transfer larger than the limit");
	if (len < HDR)
		return bad(r, BW_EMALFORMED, "message shorter than a header");
	bw_cursor_init(&c, msg, len);
	uint16_t id = bw_cursor_u16(&c), flags = bw_cursor_u16(&c);
	unsigned qd = bw_cursor_u16(&c), an = bw_cursor_u16(&c);
	bw_cursor_skip(&c, 4);
	if (id != r->id)
		return bad(r, BW_EMALFORMED, "message with another ID");
	if (!(flags & 0x8000) || ((flags >> 11) & 15) != 0)
		return bad(r, BW_EMALFORMED, "not a response to a query");
	if (flags & 0x0200)
		return bad(r, BW_EMALFORMED, "truncated message (TC)");
	unsigned rcode = flags & 15;
	if (rcode != 0) {
		/* a TSIG-signed error tells BADKEY/BADSIG in the TSIG: check it first */
		if (r->tsig && bw_tsig_find(msg, len) > 0) {
			rc = bw_tsig_verify(r->tsig, msg, len, r->now, true);
			if (rc < 0 && r->tsig->error) {
				snprintf(text, sizeof(text), "TSIG error %u (rcode %u)",
					 r->tsig->error, rcode);
				return bad(r, BW_EREFUSED, text);
			}
		}
		snprintf(text, sizeof(text), "primary answered rcode %u", rcode);
		return bad(r, rcode == RCODE_NOTIMP || rcode == RCODE_FORMERR ||
				      rcode == RCODE_SERVFAIL
			       ? BW_ENOTSUP
			       : BW_EREFUSED,
			   text);
	}
	if (qd > 1 || (qd == 0 && o->messages == 1))
		return bad(r, BW_EMALFORMED, "bad question count");
	if (qd == 1) {
		int ql = bw_name_unpack(&c, qname);
		uint16_t qt = bw_cursor_u16(&c), qc = bw_cursor_u16(&c);
		if (c.error || ql < 0 || qt != r->qtype || qc != CLASS_IN ||
		    !name_eq_ci(qname, (size_t)ql, o->origin, o->origin_len))
			return bad(r, BW_EMALFORMED, "question is not ours");
	}
	if (an == 0)
		return bad(r, BW_EMALFORMED, "message without records");
	for (unsigned i = 0; i < an; i++) {
		if (r->st == S_DONE)
			return bad(r, BW_EMALFORMED, "records after the last SOA");
		rc = read_rr(&c, o->mem, &rr);
		if (rc == BW_ENOMEM)
			return bad(r, rc, "out of memory");
		if (rc)
			return bad(r, rc, "garbled record");
		rc = on_rr(r, &rr);
		if (rc)
			return rc;
	}
	/* authority and additional sections (OPT, TSIG) are not part of the zone; the TSIG
	 * check below walks them and fails on garbage */
	bool done = r->st == S_DONE;
	if (r->st == S_SECOND && r->qtype != BW_RR_AXFR && o->messages == 1) {
		/* our SOA alone: current; a newer one alone: the primary wants an AXFR */
		done = true;
		if (o->soa.serial == r->ours)
			r->uptodate = true;
		else
			r->want_axfr = true;
	}
	if (r->tsig) {
		rc = bw_tsig_verify(r->tsig, msg, len, r->now, done);
		if (rc < 0) {
			snprintf(text, sizeof(text), "TSIG check failed (error %u)",
				 r->tsig->error);
			return bad(r, rc == BW_EREFUSED ? BW_EREFUSED : BW_EMALFORMED, text);
		}
	} else if (bw_tsig_find(msg, len) < 0) {
		return bad(r, BW_EMALFORMED, "garbled message");
	}
	return done ? 1 : 0;
}

static void run_init(struct run *r, struct bw_xfr_result *out, uint16_t qtype, uint32_t ours,
		     uint16_t id, struct bw_tsig_ctx *tsig, int64_t now, size_t max_bytes,
		     char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->qtype = qtype;
	r->ours = ours;
	r->id = id;
	r->tsig = tsig;
	r->now = now;
	r->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
	r->err = err;
	r->errlen = errlen;
}

static int result_start(struct bw_xfr_result *out, const char *zone, size_t max_bytes)
{
	memset(out, 0, sizeof(*out));
	int n = bw_name_from_text(zone, strlen(zone), out->origin);
	if (n < 1)
		return BW_EINVAL;
	out->origin_len = (size_t)n;
	out->mem = calloc(1, sizeof(*out->mem));
	if (!out->mem)
		return BW_ENOMEM;
	out->mem->cap = max_bytes ? 3 * max_bytes : 3 * DEFAULT_MAX_BYTES;
	return 0;
}

/* The first SOA of a full zone: kept separately while reading; put at zone.v[0]. */
static int keep_first_soa(struct bw_xfr_result *o, const struct bw_xfr_rr *soa)
{
	if (rrset_add(&o->zone, soa) != 0)
		return BW_ENOMEM;
	memmove(o->zone.v + 1, o->zone.v, (o->zone.n - 1) * sizeof(o->zone.v[0]));
	o->zone.v[0] = *soa;
	return 0;
}

/* ---- shared by the TCP path and bw_xfr_parse_stream ---- */

struct stream_state {
	struct run r;
};

static int feed_message(struct stream_state *s, const uint8_t *msg, size_t len)
{
	return on_message(&s->r, msg, len);
}

static int stream_finish(struct stream_state *s, bool have_serial)
{
	struct bw_xfr_result *o = s->r.out;

	if (o->kind == BW_XFR_FULL) {
		if (keep_first_soa(o, &s->r.first) != 0)
			return BW_ENOMEM;
	}
	if (s->r.uptodate) {
		o->kind = BW_XFR_UPTODATE;
		return 0;
	}
	if (s->r.want_axfr)
		return bad(&s->r, BW_ENOTSUP, "primary sent its SOA alone: AXFR needed");
	char msg[96];
	if (have_serial && !bw_serial_newer(o->soa.serial, s->r.ours)) {
		if (o->soa.serial == s->r.ours) {
			o->kind = BW_XFR_UPTODATE;
			return 0;
		}
		snprintf(msg, sizeof(msg), "serial rollback: we hold %u, primary sent %u",
			 s->r.ours, o->soa.serial);
		return bad(&s->r, BW_ERANGE, msg);
	}
	return 0;
}

int bw_xfr_parse_stream(const char *zone, uint16_t qtype, uint32_t serial, uint16_t id,
			const uint8_t *const *msgs, const size_t *lens, size_t n,
			struct bw_tsig_ctx *tsig, int64_t now, struct bw_xfr_result *out,
			char *err, size_t errlen)
{
	struct stream_state s = {0};
	int rc = result_start(out, zone, 0);

	if (rc)
		return rc;
	run_init(&s.r, out, qtype, serial, id, tsig, now, 0, err, errlen);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = feed_message(&s, msgs[i], lens[i]);
	if (rc == 0)
		rc = bad(&s.r, BW_EMALFORMED, "stream ended before the last SOA");
	else if (rc == 1 && n > 0 && out->messages != n)
		rc = bad(&s.r, BW_EMALFORMED, "messages after the last SOA");
	if (rc == 1)
		rc = stream_finish(&s, qtype == BW_RR_IXFR);
	if (rc < 0)
		bw_xfr_result_free(out);
	return rc < 0 ? rc : 0;
}

/* ---- TCP ---- */

static int wait_fd(int fd, short ev, int64_t deadline_ms)
{
	int64_t left = deadline_ms - (int64_t)bw_now_ms();
	if (left <= 0)
		return BW_EAGAIN;
	struct pollfd p = {.fd = fd, .events = ev};
	int n = poll(&p, 1, (int)(left > 600000 ? 600000 : left));
	if (n < 0 && errno == EINTR)
		return 0;
	if (n == 0)
		return BW_EAGAIN;
	return n < 0 ? BW_EIO : 0;
}

static int tcp_connect(const struct sockaddr_storage *ss, unsigned timeout_ms)
{
	socklen_t sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return BW_EIO;
	if (connect(fd, (const struct sockaddr *)ss, sl) != 0 && errno != EINPROGRESS)
		goto fail;
	int64_t deadline = (int64_t)bw_now_ms() + timeout_ms;
	int rc = wait_fd(fd, POLLOUT, deadline);
	if (rc != 0) {
		if (rc == BW_EAGAIN)
			errno = ETIMEDOUT;
		goto fail;
	}
	int soerr = 0;
	socklen_t el = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0)
		goto fail;
	if (soerr != 0) {
		errno = soerr; /* the caller's message names it (not connect()'s EINPROGRESS) */
		goto fail;
	}
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return BW_EIO;
}

static int io_all(int fd, uint8_t *buf, size_t len, bool wr, unsigned timeout_ms)
{
	size_t done = 0;

	while (done < len) {
		int64_t deadline = (int64_t)bw_now_ms() + timeout_ms;
		ssize_t n = wr ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
			       : recv(fd, buf + done, len - done, 0);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return BW_ESHORT; /* closed */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return BW_EIO;
		int rc = wait_fd(fd, wr ? POLLOUT : POLLIN, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char a[BW_ADDRSTRLEN] = "?";
	unsigned port = 0;

	bw_sockaddr_addr((const struct sockaddr *)ss, a, sizeof(a));
	if (ss->ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	else if (ss->ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	snprintf(out, cap, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

static int64_t wall_now(const struct bw_xfr_req *req)
{
	return req->now ? req->now : (int64_t)time(NULL);
}

/* Builds a query (SOA, AXFR, or IXFR with our SOA in the authority section) into buf[2..)
 * after the TCP length; signs it. Returns the message length or a negative error. */
static int build_query(const struct bw_xfr_req *req, uint16_t qtype, uint16_t id,
		       const uint8_t *zone, size_t zlen, struct bw_tsig_ctx *tsig, uint8_t *buf,
		       size_t cap)
{
	uint8_t *m = buf + 2;
	size_t n = HDR;

	memset(m, 0, HDR);
	bw_put16(m, id);
	bw_put16(m + 4, 1);
	memcpy(m + n, zone, zlen);
	n += zlen;
	bw_put16(m + n, qtype);
	bw_put16(m + n + 2, CLASS_IN);
	n += 4;
	if (qtype == BW_RR_IXFR) {
		bw_put16(m + 8, 1);
		memcpy(m + n, zone, zlen);
		n += zlen;
		bw_put16(m + n, BW_RR_SOA);
		bw_put16(m + n + 2, CLASS_IN);
		bw_put32(m + n + 4, 0);
		bw_put16(m + n + 8, 22);
		n += 10;
		m[n++] = 0; /* MNAME . */
		m[n++] = 0; /* RNAME . */
		bw_put32(m + n, req->serial);
		memset(m + n + 4, 0, 16);
		n += 20;
	}
	if (tsig) {
		int rc = bw_tsig_sign(tsig, m, &n, cap - 2, wall_now(req), 0);
		if (rc)
			return rc;
	}
	bw_put16(buf, (uint16_t)n);
	return (int)n;
}

/* One exchange with one primary: query qtype, read the whole answer. */
static int exchange(const struct bw_xfr_req *req, const struct sockaddr_storage *primary,
		    uint16_t qtype, struct bw_xfr_result *out, char *err, size_t errlen)
{
	unsigned tmo = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	struct stream_state s = {0};
	struct bw_tsig_ctx tsig;
	uint8_t *buf = NULL;
	uint16_t id;
	int fd = -1, rc;

	rc = result_start(out, req->zone, req->max_bytes);
	if (rc) {
		snprintf(err, errlen, "bad zone name");
		return rc;
	}
	addr_text(primary, out->primary, sizeof(out->primary));
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)bw_now_ns();
	if (req->key)
		bw_tsig_ctx_init(&tsig, req->key);
	run_init(&s.r, out, qtype, req->serial, id, req->key ? &tsig : NULL, wall_now(req),
		 req->max_bytes, err, errlen);
	buf = malloc(65537);
	if (!buf) {
		rc = BW_ENOMEM;
		goto done;
	}
	int qlen = build_query(req, qtype, id, out->origin, out->origin_len,
			       req->key ? &tsig : NULL, buf, 65537);
	if (qlen < 0) {
		rc = qlen;
		goto done;
	}
	fd = tcp_connect(primary, tmo);
	if (fd < 0) {
		rc = fd;
		snprintf(err, errlen, "cannot connect: %s", strerror(errno));
		goto done;
	}
	rc = io_all(fd, buf, (size_t)qlen + 2, true, tmo);
	while (rc == 0) {
		rc = io_all(fd, buf, 2, false, tmo);
		if (rc)
			break;
		size_t len = bw_get16(buf);
		rc = io_all(fd, buf, len, false, tmo);
		if (rc)
			break;
		rc = feed_message(&s, buf, len);
	}
	if (rc == BW_ESHORT || rc == BW_EIO || rc == BW_EAGAIN) {
		snprintf(err, errlen, "%s: connection %s before the end of the transfer",
			 qtype == BW_RR_IXFR ? "IXFR" : qtype == BW_RR_AXFR ? "AXFR" : "SOA",
			 rc == BW_EAGAIN ? "timed out" : "closed");
		rc = rc == BW_EAGAIN ? BW_EAGAIN : BW_EIO;
	}
	if (rc == 1) {
		if (qtype == BW_RR_SOA) {
			rc = 0;
		} else {
			rc = stream_finish(&s, req->have_serial);
		}
	}
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (req->key)
		bw_tsig_ctx_clear(&tsig);
	if (rc < 0)
		bw_xfr_result_free(out);
	return rc < 0 ? rc : 0;
}

int bw_xfr_soa_query(const struct bw_xfr_req *req, const struct sockaddr_storage *primary,
		     struct bw_soa *soa, char *err, size_t errlen)
{
	struct bw_xfr_result r;
	/* an SOA query is read as a one-message stream: SOA alone, then done (IXFR rules) */
	struct bw_xfr_req q = *req;
	q.have_serial = false;
	q.serial = 0;
	int rc = exchange(&q, primary, BW_RR_SOA, &r, err, errlen);
	if (rc == 0) {
		*soa = r.soa;
		bw_xfr_result_free(&r);
	}
	return rc;
}

static int fetch_one(const struct bw_xfr_req *req, const struct sockaddr_storage *primary,
		     struct bw_xfr_result *out, char *err, size_t errlen)
{
	int rc;

	if (req->have_serial && !req->skip_soa_check) {
		struct bw_soa soa;
		rc = bw_xfr_soa_query(req, primary, &soa, err, errlen);
		if (rc)
			return rc;
		if (soa.serial == req->serial || !bw_serial_newer(soa.serial, req->serial)) {
			if (soa.serial != req->serial) {
				snprintf(err, errlen,
					 "SOA: serial rollback: we hold %u, primary has %u",
					 req->serial, soa.serial);
				return BW_ERANGE;
			}
			memset(out, 0, sizeof(*out));
			out->kind = BW_XFR_UPTODATE;
			out->soa = soa;
			int n = bw_name_from_text(req->zone, strlen(req->zone), out->origin);
			out->origin_len = n > 0 ? (size_t)n : 0;
			addr_text(primary, out->primary, sizeof(out->primary));
			return 0;
		}
	}
	if (req->have_serial && !req->axfr_only) {
		rc = exchange(req, primary, BW_RR_IXFR, out, err, errlen);
		if (rc == 0) {
			out->ixfr_was_full = out->kind == BW_XFR_FULL;
			return 0;
		}
		/* TSIG failures, refusals and rollbacks are final; the rest tries AXFR */
		if (rc == BW_EREFUSED || rc == BW_ERANGE || rc == BW_ENOMEM)
			return rc;
		char a[64];
		addr_text(primary, a, sizeof(a));
		bw_warn("xfr %s from %s: %s; trying AXFR", req->zone, a, err);
	}
	rc = exchange(req, primary, BW_RR_AXFR, out, err, errlen);
	if (rc == 0)
		out->fell_back = req->have_serial && !req->axfr_only;
	return rc;
}

int bw_xfr_fetch(const struct bw_xfr_req *req, struct bw_xfr_result *out, char *err,
		 size_t errlen)
{
	char dummy[8];
	int rc = BW_EINVAL;

	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < req->n_primaries; i++) {
		char a[64];
		rc = fetch_one(req, &req->primaries[i], out, err, errlen);
		if (rc == 0)
			return 0;
		addr_text(&req->primaries[i], a, sizeof(a));
		bw_warn("xfr %s from %s failed: %s", req->zone, a, err);
		if (rc == BW_ERANGE || rc == BW_ENOMEM)
			break; /* a rollback is not fixed by asking another primary */
	}
	return rc;
}
