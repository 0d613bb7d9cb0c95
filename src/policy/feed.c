/*
 * policy/feed.c - feed file formats (blocking v1: `domains` and `hosts`) to lower-cased
 * wire names.
 *
 * The whole file is read into memory once and scanned line by line in place: no
 * allocation per line, and a line longer than MAX_LINE is counted as bad and skipped
 * without being copied. Bad lines never abort a parse; the first MAX_LOGGED of each parse
 * are logged as "label:line: reason".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

#define MAX_LINE 4096
#define MAX_LOGGED 5
#define MAX_FILE (1ULL << 30)
#define WIRE_MAX 255

struct parser {
	const char *label;
	bw_feed_add_fn add;
	void *ctx;
	struct bw_feed_stats *st;
	unsigned long lineno;
};

static void bad(struct parser *ps, const char *reason)
{
	if (ps->label && ps->st->bad_lines < MAX_LOGGED)
		bw_warn("%s:%lu: %s", ps->label, ps->lineno, reason);
	ps->st->bad_lines++;
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

/* Does the token parse as an IPv4 or IPv6 address (inet_pton, no zone index)? */
static bool is_ip(const char *tok, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof(buf) || memchr(tok, '\0', len))
		return false;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

size_t bw_feed_name_to_wire(const char *text, size_t len, uint8_t *out, const char **reason)
{
	size_t lab = 0, w = 1;

	if (len > 0 && text[len - 1] == '.')
		len--;
	if (len == 0) {
		*reason = "empty name";
		return 0;
	}
	if (len > 253) {
		*reason = "name longer than 255 bytes in wire form";
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '.') {
			size_t l = w - lab - 1;
			if (l == 0) {
				*reason = "empty label";
				return 0;
			}
			if (l > 63) {
				*reason = "label longer than 63 bytes";
				return 0;
			}
			out[lab] = (uint8_t)l;
			lab = w++;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			if (c == '*')
				*reason = "wildcards are not supported";
			else if (c >= 0x80)
				*reason = "non-ASCII character (write IDNs as punycode)";
			else
				*reason = "invalid character in name";
			return 0;
		}
		out[w++] = c;
	}
	size_t l = w - lab - 1;
	if (l == 0) {
		*reason = "empty label";
		return 0;
	}
	if (l > 63) {
		*reason = "label longer than 63 bytes";
		return 0;
	}
	out[lab] = (uint8_t)l;
	out[w++] = 0;
	return w;
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

/* One name token: 1 added, 0 skipped on purpose, -1 unusable (*reason set). */
static int take_name(struct parser *ps, const char *tok, size_t len, const char **reason)
{
	uint8_t wire[WIRE_MAX];

	if (is_ip(tok, len)) {
		ps->st->skipped++;
		return 0;
	}
	size_t wlen = bw_feed_name_to_wire(tok, len, wire, reason);
	if (wlen == 0)
		return -1;
	ps->st->names++;
	ps->add(wire, wlen, ps->ctx);
	return 1;
}

static void parse_domains_line(struct parser *ps, const char *p, const char *end)
{
	const char *tok, *extra, *reason;
	size_t tlen, elen;

	if (!next_token(&p, end, &tok, &tlen))
		return;
	if (next_token(&p, end, &extra, &elen)) {
		bad(ps, "several tokens on one line");
		return;
	}
	if (take_name(ps, tok, tlen, &reason) < 0)
		bad(ps, reason);
}

static void parse_hosts_line(struct parser *ps, const char *p, const char *end)
{
	const char *tok, *reason = NULL;
	size_t tlen;
	unsigned seen = 0;

	if (!next_token(&p, end, &tok, &tlen))
		return;
	if (!is_ip(tok, tlen)) {
		bad(ps, "first field is not an IP address");
		return;
	}
	while (next_token(&p, end, &tok, &tlen)) {
		seen++;
		if (is_local_name(tok, tlen)) {
			ps->st->skipped++;
			continue;
		}
		const char *why;
		if (take_name(ps, tok, tlen, &why) < 0 && !reason)
			reason = why;
	}
	if (seen == 0)
		bad(ps, "no names after the address");
	else if (reason)
		bad(ps, reason); /* the line's good names are kept */
}

void bw_feed_parse_stats(const char *buf, size_t len, enum bw_feed_format format, const char *label,
			 bw_feed_add_fn add, void *ctx, struct bw_feed_stats *st)
{
	struct parser ps = {.label = label, .add = add, .ctx = ctx, .st = st};
	const char *p = buf, *end = buf + len;

	memset(st, 0, sizeof(*st));
	if (!buf)
		return;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		ps.lineno++;
		if (eol - p > MAX_LINE) {
			bad(&ps, "line longer than 4096 bytes");
		} else {
			const char *hash = memchr(p, '#', (size_t)(eol - p));
			const char *stop = hash ? hash : eol;
			if (format == BW_FEED_HOSTS)
				parse_hosts_line(&ps, p, stop);
			else
				parse_domains_line(&ps, p, stop);
		}
		p = nl ? nl + 1 : end;
	}
	st->lines = ps.lineno;
}

long bw_feed_parse_buf(const char *buf, size_t len, enum bw_feed_format format, const char *label,
		       bw_feed_add_fn add, void *ctx)
{
	struct bw_feed_stats st;

	bw_feed_parse_stats(buf, len, format, label, add, ctx, &st);
	return (long)st.bad_lines;
}

int bw_feed_read_file(const char *path, char **buf, size_t *len, uint64_t *mtime_ns, uint64_t *size)
{
	struct stat sb;
	char *data = NULL;
	size_t got = 0;
	int err = BW_EIO, fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return BW_EIO;
	if (fstat(fd, &sb) < 0)
		goto fail;
	if (!S_ISREG(sb.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((uint64_t)sb.st_size > MAX_FILE) {
		err = BW_ERANGE;
		goto fail;
	}
	size_t want = (size_t)sb.st_size;
	data = malloc(want + 1);
	if (!data) {
		err = BW_ENOMEM;
		goto fail;
	}
	while (got < want) {
		ssize_t n = read(fd, data + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break; /* truncated while we read: take what is there */
		got += (size_t)n;
	}
	data[got] = '\0';
	close(fd);
	*buf = data;
	*len = got;
	if (mtime_ns)
		*mtime_ns =
		    (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
	if (size)
		*size = (uint64_t)sb.st_size;
	return 0;
fail:
	free(data);
	int saved = errno;
	close(fd);
	errno = saved;
	return err;
}

long bw_feed_parse_file(const char *path, enum bw_feed_format format, bw_feed_add_fn add, void *ctx)
{
	char *buf;
	size_t len;
	int err = bw_feed_read_file(path, &buf, &len, NULL, NULL);

	if (err)
		return err;
	long bad_lines = bw_feed_parse_buf(buf, len, format, path, add, ctx);
	free(buf);
	return bad_lines;
}
