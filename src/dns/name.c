/*
 * dns/name.c - domain names in wire form: length, lower-casing, decompression, and the
 * conversions to and from presentation (text) form.
 *
 * Decompression accepts a pointer only when it targets a position strictly before the
 * start of the label run being read (the name's first byte, or the previous pointer's
 * target), and not inside the 12-byte header. The start of each run therefore strictly
 * decreases, so loops are impossible; the jump cap is a second fence.
 */
#include <stdlib.h>
#include <strings.h>

#include "dns/dns.h"

#define MAX_JUMPS 128

static inline uint8_t lower(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + ('a' - 'A')) : ch;
}

void bw_name_lower(uint8_t *out, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = lower(name[i]);
}

int bw_name_len(const uint8_t *p, size_t max)
{
	size_t off = 0;

	for (;;) {
		if (off >= max)
			return BW_EMALFORMED;
		uint8_t l = p[off];
		if (l == 0)
			break;
		if (l > 63) /* pointers and the 0x40/0x80 label types */
			return BW_EMALFORMED;
		off += 1 + (size_t)l;
		if (off >= BW_DNS_MAXNAME) /* the root byte still has to fit */
			return BW_EMALFORMED;
	}
	return (int)(off + 1);
}

int bw_name_unpack(struct bw_cursor *c, uint8_t *out)
{
	size_t pos, run_start, after = 0, n = 0;
	unsigned jumps = 0;

	if (c->error)
		return c->error;
	pos = c->pos;
	run_start = pos;
	for (;;) {
		if (pos >= c->len)
			goto fail;
		uint8_t l = c->base[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= c->len)
				goto fail;
			size_t target = ((size_t)(l & 0x3f) << 8) | c->base[pos + 1];
			if (target < BW_DNS_HDR || target >= run_start || ++jumps > MAX_JUMPS)
				goto fail;
			if (after == 0)
				after = pos + 2;
			pos = target;
			run_start = target;
			continue;
		}
		if (l > 63) /* 0x40 and 0x80: extended and reserved label types */
			goto fail;
		if (n + 1 + l > BW_DNS_MAXNAME || (size_t)l + 1 > c->len - pos)
			goto fail;
		memcpy(out + n, c->base + pos, (size_t)l + 1);
		n += (size_t)l + 1;
		pos += (size_t)l + 1;
		if (l == 0)
			break;
	}
	c->pos = after ? after : pos;
	return (int)n;
fail:
	c->error = BW_EMALFORMED;
	return BW_EMALFORMED;
}

int bw_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789";
	size_t off = 0, n = 0;

	if (len == 0 || len > BW_DNS_MAXNAME)
		return BW_EMALFORMED;
	if (name[0] == 0) {
		if (cap < 2)
			return BW_ESPACE;
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	while (name[off] != 0) {
		uint8_t l = name[off];
		if (l > 63 || off + 1 + (size_t)l >= len)
			return BW_EMALFORMED;
		for (size_t i = off + 1; i <= off + l; i++) {
			uint8_t ch = name[i];
			if (ch == '.' || ch == '\\') {
				if (cap - n < 3)
					return BW_ESPACE;
				out[n++] = '\\';
				out[n++] = (char)ch;
			} else if (ch > 0x20 && ch < 0x7f) {
				if (cap - n < 2)
					return BW_ESPACE;
				out[n++] = (char)ch;
			} else {
				if (cap - n < 5)
					return BW_ESPACE;
				out[n++] = '\\';
				out[n++] = digits[ch / 100];
				out[n++] = digits[ch / 10 % 10];
				out[n++] = digits[ch % 10];
			}
		}
		if (cap - n < 2)
			return BW_ESPACE;
		out[n++] = '.';
		off += 1 + (size_t)l;
	}
	out[n] = '\0';
	return (int)n;
}

static inline bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

int bw_name_from_text(const char *text, size_t tlen, uint8_t *out)
{
	size_t i = 0, n = 1, label = 0, cur = 0; /* label: offset of the current length byte */
	bool closed = false;

	if (tlen == 0)
		return BW_EMALFORMED;
	if (tlen == 1 && text[0] == '.') {
		out[0] = 0;
		return 1;
	}
	out[0] = 0;
	while (i < tlen) {
		uint8_t ch;
		if (text[i] == '.') {
			if (cur == 0) /* empty label: leading dot or ".." */
				return BW_EMALFORMED;
			out[label] = (uint8_t)cur;
			if (++i == tlen) { /* the optional trailing dot */
				closed = true;
				break;
			}
			if (n > BW_DNS_MAXNAME - 2)
				return BW_EMALFORMED;
			label = n;
			out[n++] = 0;
			cur = 0;
			continue;
		}
		if (text[i] == '\\') {
			if (tlen - i < 2)
				return BW_EMALFORMED;
			if (is_digit(text[i + 1])) {
				const char *d = text + i + 1;
				if (tlen - i < 4 || !is_digit(d[1]) || !is_digit(d[2]))
					return BW_EMALFORMED;
				unsigned v = (unsigned)(d[0] - '0') * 100 +
					     (unsigned)(d[1] - '0') * 10 + (unsigned)(d[2] - '0');
				if (v > 255)
					return BW_EMALFORMED;
				ch = (uint8_t)v;
				i += 4;
			} else {
				ch = (uint8_t)text[i + 1];
				i += 2;
			}
		} else {
			ch = (uint8_t)text[i++];
		}
		/* label <= 63; the name plus this byte plus the root <= 255 */
		if (cur == 63 || n > BW_DNS_MAXNAME - 2)
			return BW_EMALFORMED;
		out[n++] = lower(ch);
		cur++;
	}
	if (!closed)
		out[label] = (uint8_t)cur;
	out[n++] = 0;
	return (int)n;
}

int bw_type_from_text(const char *s, uint16_t *out)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {{"A", BW_T_A},	{"AAAA", BW_T_AAAA}, {"CNAME", BW_T_CNAME},
		     {"MX", BW_T_MX},	{"TXT", BW_T_TXT},   {"NS", BW_T_NS},
		     {"SRV", BW_T_SRV}, {"SOA", BW_T_SOA},   {"HTTPS", BW_T_HTTPS}};
	for (size_t i = 0; i < BW_ARRAY_LEN(types); i++)
		if (!strcasecmp(s, types[i].name)) {
			*out = types[i].type;
			return 0;
		}
	char *end;
	unsigned long v = strncasecmp(s, "TYPE", 4) ? 0 : strtoul(s + 4, &end, 10);
	if (!v || *end || v > 65535)
		return BW_EINVAL;
	*out = (uint16_t)v;
	return 0;
}
