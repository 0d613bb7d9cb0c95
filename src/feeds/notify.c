/*
 * feeds/notify.c - NOTIFY (RFC 1996) for RPZ feeds: accepted only from the zone's
 * primaries (address; port ignored, a primary sends from any port), TSIG-checked when the
 * feed has a key, and answered. The caller triggers an immediate IXFR for the zone.
 */
#include <netinet/in.h>
#include <string.h>

#include "dns/dns.h"
#include "feeds/xfr.h"

enum { HDR = 12, CLASS_IN = 1, RCODE_FORMERR = 1, RCODE_REFUSED = 5, RCODE_NOTAUTH = 9 };

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	const uint8_t *pa, *pb;
	size_t n;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (a->sa_family == AF_INET6 && b->ss_family == AF_INET) {
		/* a v4 primary seen on a dual-stack socket */
		pa = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
		pb = (const uint8_t *)&((const struct sockaddr_in *)b)->sin_addr;
		return memcmp(pa, mapped, 12) == 0 && memcmp(pa + 12, pb, 4) == 0;
	}
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET) {
		pa = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
		pb = (const uint8_t *)&((const struct sockaddr_in *)b)->sin_addr;
		n = 4;
	} else if (a->sa_family == AF_INET6) {
		pa = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
		pb = ((const struct sockaddr_in6 *)b)->sin6_addr.s6_addr;
		n = 16;
	} else {
		return false;
	}
	return memcmp(pa, pb, n) == 0;
}

/* Header + question of the response; rcode. Returns the length or 0. */
static size_t answer_head(const uint8_t *msg, size_t qend, uint16_t rcode, bool aa,
			  uint8_t *resp, size_t cap)
{
	if (qend > cap)
		return 0;
	memcpy(resp, msg, qend);
	uint16_t flags = (uint16_t)(0x8000 | (BW_OPCODE_NOTIFY << 11) | (aa ? 0x0400 : 0) |
				    (bw_get16(msg + 2) & 0x0100) | rcode);
	bw_put16(resp + 2, flags);
	bw_put16(resp + 4, qend > HDR ? 1 : 0);
	bw_put16(resp + 6, 0);
	bw_put16(resp + 8, 0);
	bw_put16(resp + 10, 0);
	return qend;
}

int bw_notify_handle(const struct bw_notify_zone *zones, size_t n_zones,
		     const struct sockaddr *from, const uint8_t *msg, size_t len, int64_t now,
		     uint8_t *resp, size_t cap, size_t *resp_len, size_t *zone_index,
		     uint32_t *serial, bool *has_serial)
{
	struct bw_cursor c;
	uint8_t qname[BW_DNS_MAXNAME], lc[BW_DNS_MAXNAME], owner[BW_DNS_MAXNAME];
	struct bw_tsig_ctx tsig;

	*resp_len = 0;
	*has_serial = false;
	*serial = 0;
	*zone_index = SIZE_MAX;
	if (len < HDR)
		return BW_EMALFORMED;
	bw_cursor_init(&c, msg, len);
	bw_cursor_skip(&c, 2);
	uint16_t flags = bw_cursor_u16(&c);
	unsigned qd = bw_cursor_u16(&c), an = bw_cursor_u16(&c);
	bw_cursor_skip(&c, 4);
	if ((flags & 0x8000) || ((flags >> 11) & 15) != BW_OPCODE_NOTIFY)
		return BW_EMALFORMED; /* a response, or not a NOTIFY: never answered */
	long tsig_off = bw_tsig_find(msg, len);
	int ql = qd == 1 ? bw_name_unpack(&c, qname) : -1;
	uint16_t qt = bw_cursor_u16(&c), qc = bw_cursor_u16(&c);
	size_t qend = c.pos;
	if (tsig_off < 0 || qd != 1 || ql < 0 || c.error || qc != CLASS_IN || qt != BW_RR_SOA) {
		/* FORMERR with the header only (the question may be the garbled part) */
		*resp_len = answer_head(msg, HDR, RCODE_FORMERR, false, resp, cap);
		return BW_EMALFORMED;
	}
	bw_name_lower(lc, qname, (size_t)ql);
	size_t zi;
	for (zi = 0; zi < n_zones; zi++)
		if (zones[zi].name_len == (size_t)ql && memcmp(zones[zi].name, lc, (size_t)ql) == 0)
			break;
	if (zi == n_zones) {
		*resp_len = answer_head(msg, qend, RCODE_NOTAUTH, false, resp, cap);
		return BW_EREFUSED;
	}
	const struct bw_notify_zone *z = &zones[zi];
	bool from_primary = false;
	for (size_t i = 0; i < z->n_primaries && !from_primary; i++)
		from_primary = same_addr(from, &z->primaries[i]);
	if (!from_primary) {
		*resp_len = answer_head(msg, qend, RCODE_REFUSED, false, resp, cap);
		return BW_EREFUSED;
	}
	if (z->key) {
		bw_tsig_ctx_init(&tsig, z->key);
		int rc = bw_tsig_verify_request(&tsig, msg, len, now);
		if (rc != 0) {
			/* unsigned, wrong key, bad MAC or time: NOTAUTH, unsigned (RFC 8945 5.2
			 * would sign BADTIME answers; a primary retries either way) */
			*resp_len = answer_head(msg, qend, RCODE_NOTAUTH, false, resp, cap);
			return BW_EREFUSED;
		}
	}
	/* the optional SOA in the answer section: the serial hint */
	if (an >= 1) {
		int ol = bw_name_unpack(&c, owner);
		uint16_t t = bw_cursor_u16(&c);
		bw_cursor_skip(&c, 6);
		uint16_t rdlen = bw_cursor_u16(&c);
		if (!c.error && ol == ql && t == BW_RR_SOA && bw_cursor_need(&c, rdlen)) {
			struct bw_cursor rc = c;
			uint8_t n1[BW_DNS_MAXNAME];
			size_t end = c.pos + rdlen;
			rc.len = end;
			bw_name_unpack(&rc, n1);
			bw_name_unpack(&rc, n1);
			if (!rc.error && end - rc.pos == 20) {
				*serial = bw_get32(rc.base + rc.pos);
				*has_serial = true;
			}
		}
	}
	size_t n = answer_head(msg, qend, 0, true, resp, cap);
	if (n == 0)
		return BW_ESPACE;
	if (z->key) {
		int rc = bw_tsig_sign(&tsig, resp, &n, cap, now, 0);
		bw_tsig_ctx_clear(&tsig);
		if (rc)
			return rc;
	}
	*resp_len = n;
	*zone_index = zi;
	return 0;
}
