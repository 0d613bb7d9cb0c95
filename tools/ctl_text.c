/*
 * tools/ctl_text.c - bulwarkctl's pure helpers (tools/ctl.h): ClientIDs, client names, the
 * masked form of an ID, XML escaping for the Apple profile, UUIDs. No I/O but getrandom,
 * so tests/unit/test_ctl.c runs them as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ctl.h"

size_t ctl_base32(const unsigned char *bytes, size_t n, char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	size_t len = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | bytes[i]) & 0xfff; /* at most 4 + 8 bits are pending */
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[len++] = alphabet[(acc >> bits) & 31];
		}
	}
	if (bits)
		out[len++] = alphabet[(acc << (5 - bits)) & 31];
	out[len] = 0;
	return len;
}

/* n random bytes: getrandom may return fewer than asked (signals), so loop. */
static int random_bytes(unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

int ctl_id_new(char out[CTL_ID_LEN + 1])
{
	unsigned char raw[16];
	if (random_bytes(raw, sizeof(raw)))
		return -1;
	ctl_base32(raw, sizeof(raw), out);
	return 0;
}

bool ctl_host_ok(const char *host)
{
	size_t n = strlen(host), label = 0;
	if (!n || n > 253 || host[0] == '.' || host[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = host[i];
		if (ch == '.') {
			if (!label || host[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || (ch == '-' && label);
		if (!ok || ++label > 63)
			return false;
	}
	return host[n - 1] != '-';
}

void ctl_id_mask(const char *id, char *out, size_t cap)
{
	snprintf(out, cap, "%.4s\xe2\x80\xa6", id); /* U+2026 HORIZONTAL ELLIPSIS */
}

char *ctl_xml_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
			return NULL;
		n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '"' || *p == '\'' ? 6 : 1;
	}
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = s; *p; p++) {
		const char *rep = *p == '&'    ? "&amp;"
				  : *p == '<'  ? "&lt;"
				  : *p == '>'  ? "&gt;"
				  : *p == '"'  ? "&quot;"
				  : *p == '\'' ? "&apos;"
					       : NULL;
		if (rep) {
			memcpy(o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	return out;
}

int ctl_uuid_new(char out[37])
{
	unsigned char u[16];
	if (random_bytes(u, sizeof(u)))
		return -1;
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant RFC 4122 */
	snprintf(out, 37,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
	return 0;
}
