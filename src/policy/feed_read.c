/*
 * policy/feed_read.c - feed bytes to rules: the one place that runs a feed's parser over
 * its data, whether the data is a file (a local feed, a fetched feed's last good copy) or
 * a buffer (a fetched version being checked, explain), plain or gzip-compressed.
 *
 * gzip (RFC 1952) is recognised by its magic bytes 1f 8b, never by a file name, and is
 * inflated as it is read (zlib), in pieces: the text formats are parsed piece by piece as
 * before, the JSON formats are gathered whole (their parsers need the whole text). What
 * the data may expand to is capped as it grows (expand_max()): a gzip bomb stops with an
 * error one piece past the cap, never after filling memory. Several members one after the
 * other are read as one stream (gzip -c a >f; gzip -c b >>f). Corrupt or truncated data,
 * bytes after the last member, or data expanding past the cap make the feed broken
 * (rep->broken; rep->too_big for the cap), with the reason reported as a bad unit: the
 * caller keeps the previous version.
 *
 * Thread safety: reentrant; everything lives on the caller's stack or heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "policy/rules.h"

/* Text formats are parsed in pieces of this size (grown only for one record or line longer
 * than that): a file is never in memory whole. */
#define PIECE ((size_t)4 << 20)
#define FILE_MAX ((uint64_t)1 << 30) /* as bw_feed_read_file() */
#define GZ_IN ((size_t)64 << 10)     /* compressed bytes read from a file at a time */

/* Where feed bytes come from, and the gzip layer over them. */
struct src {
	int fd;           /* >= 0: the file; else mem */
	const char *mem;  /* the buffer ... */
	size_t mem_len, mem_off;
	uint64_t left;    /* fd: bytes still to read (the size at open: a file that grows
			     meanwhile is read as it was) */
	bool gz, gz_init, member_end, eof;
	z_stream z;
	unsigned char *in; /* gz from a file: compressed input */
	uint64_t out, max; /* gz: bytes inflated so far, and the most allowed */
	int err;           /* sticky: BW_EIO (errno set), BW_ENOMEM, BW_EMALFORMED, BW_ERANGE */
	char why[160];     /* for BW_EMALFORMED and BW_ERANGE */
};

bool bw_feed_is_gzip(const char *buf, size_t len)
{
	return len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b;
}

static bool piecewise(enum bw_feed_format f)
{
	return f == BW_FEED_RPZ || f == BW_FEED_DOMAINS || f == BW_FEED_HOSTS ||
	       f == BW_FEED_WILDCARD || f == BW_FEED_ADBLOCK;
}

/* What compressed data may expand to: a fetched feed's max-size (what its version may be
 * after decompression, docs/config.md); a local file as much as a plain file may hold.
 * JSON is parsed whole, so never more than its parsers take. */
static uint64_t expand_max(const struct bw_feed_conf *fc)
{
	uint64_t max = fc->source != BW_FEED_SRC_FILE && fc->max_size ? fc->max_size : FILE_MAX;

	if (!piecewise(fc->format) && max > BW_JSON_FEED_MAX)
		max = BW_JSON_FEED_MAX;
	return max;
}

static ssize_t src_fail(struct src *s, int err, const char *fmt, const char *detail)
{
	s->err = err;
	snprintf(s->why, sizeof(s->why), fmt, detail ? detail : "");
	return -1;
}

/* Up to want raw bytes; 0 at the end, -1 on a read error. */
static ssize_t raw_read(struct src *s, void *buf, size_t want)
{
	if (s->fd < 0) {
		size_t n = s->mem_len - s->mem_off < want ? s->mem_len - s->mem_off : want;
		memcpy(buf, s->mem + s->mem_off, n);
		s->mem_off += n;
		return (ssize_t)n;
	}
	if (want > s->left)
		want = (size_t)s->left;
	for (;;) {
		ssize_t n = read(s->fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			s->err = BW_EIO;
			return -1;
		}
		s->left = n == 0 ? 0 : s->left - (uint64_t)n; /* 0: truncated meanwhile */
		return n;
	}
}

/* More compressed input for zlib; sets eof at the end. */
static int gz_refill(struct src *s)
{
	if (s->fd < 0) { /* the buffer is the input: no copy */
		size_t n = s->mem_len - s->mem_off;
		if (n > UINT_MAX)
			n = UINT_MAX;
		s->z.next_in = (unsigned char *)(uintptr_t)(s->mem + s->mem_off);
		s->z.avail_in = (unsigned)n;
		s->mem_off += n;
		s->eof = n == 0;
		return 0;
	}
	ssize_t n = raw_read(s, s->in, GZ_IN);
	if (n < 0)
		return -1;
	s->z.next_in = s->in;
	s->z.avail_in = (unsigned)n;
	s->eof = n == 0;
	return 0;
}

/* Up to want inflated bytes (fewer only at the end); 0 at the end, -1 on an error. */
static ssize_t gz_read(struct src *s, char *buf, size_t want)
{
	if (want > UINT_MAX)
		want = UINT_MAX;
	s->z.next_out = (unsigned char *)buf;
	s->z.avail_out = (unsigned)want;
	while (s->z.avail_out > 0) {
		if (s->z.avail_in == 0 && !s->eof && gz_refill(s) < 0)
			return -1;
		if (s->member_end) {
			if (s->z.avail_in == 0) {
				if (s->eof)
					break; /* the end, after a whole member */
				continue;
			}
			if (s->z.next_in[0] != 0x1f) /* another member, or junk */
				return src_fail(s, BW_EMALFORMED,
						"gzip: data after the end of the compressed stream%s",
						NULL);
			inflateReset(&s->z);
			s->member_end = false;
		}
		int zr = inflate(&s->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			s->member_end = true;
		else if (zr == Z_BUF_ERROR && s->eof && s->z.avail_in == 0)
			return src_fail(s, BW_EMALFORMED, "gzip: truncated data%s", NULL);
		else if (zr == Z_MEM_ERROR)
			return src_fail(s, BW_ENOMEM, "gzip: out of memory%s", NULL);
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return src_fail(s, BW_EMALFORMED, "gzip: corrupt data: %s",
					s->z.msg ? s->z.msg : "unknown error");
		uint64_t got = s->out + (want - s->z.avail_out);
		if (got > s->max) {
			char lim[32];
			snprintf(lim, sizeof(lim), "%llu", (unsigned long long)s->max);
			return src_fail(s, BW_ERANGE, "gzip: data expands past the limit of %s bytes",
					lim);
		}
	}
	size_t n = want - s->z.avail_out;
	s->out += n;
	return (ssize_t)n;
}

/* Fills buf with up to want feed bytes (fewer only at the end); -1 on an error. */
static ssize_t src_fill(struct src *s, char *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n = s->gz ? gz_read(s, buf + got, want - got)
				  : raw_read(s, buf + got, want - got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Starts the gzip layer when the data starts with its magic (first: the first bytes). */
static int src_start(struct src *s, const char *first, size_t flen, uint64_t max)
{
	s->max = max;
	if (!bw_feed_is_gzip(first, flen))
		return 0;
	if (s->fd >= 0 && !(s->in = malloc(GZ_IN)))
		return BW_ENOMEM;
	if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
		return BW_ENOMEM;
	s->gz = s->gz_init = true;
	return 0;
}

static void src_end(struct src *s)
{
	if (s->gz_init)
		inflateEnd(&s->z);
	free(s->in);
}

static int parse_plain(const struct bw_feed_conf *fc, const char *buf, size_t len,
		       bw_rule_sink sink, void *ctx, struct bw_parse_report *rep)
{
	const char *label = fc->file;

	switch (fc->format) {
	case BW_FEED_DOMAINS:
		return bw_parse_domains(buf, len, label, sink, ctx, rep);
	case BW_FEED_HOSTS:
		return bw_parse_hosts(buf, len, label, sink, ctx, rep);
	case BW_FEED_WILDCARD:
		return bw_parse_wildcard(buf, len, label, sink, ctx, rep);
	case BW_FEED_ADBLOCK:
		return bw_parse_adblock(buf, len, label, sink, ctx, rep);
	case BW_FEED_RPZ:
		return bw_parse_rpz(buf, len, label, sink, ctx, rep);
	case BW_FEED_STIX:
		return bw_parse_stix(buf, len, label, (int64_t)time(NULL), sink, ctx, rep);
	case BW_FEED_MISP:
		return bw_parse_misp(buf, len, label, fc->misp_non_ids, sink, ctx, rep);
	}
	rep->broken = true;
	return 0;
}

/* Parses the complete part of buf[0..have) (all of it when `last`) and sets *used to its
 * length: an RPZ zone up to a line that ends outside parentheses and quotes (z), a list up
 * to its last newline. */
static int parse_piece(const struct bw_feed_conf *fc, struct bw_rpz *z, bw_rule_sink sink,
		       void *ctx, struct bw_parse_report *rep, const char *buf, size_t have,
		       bool last, bool first, size_t *used)
{
	if (z)
		return bw_rpz_feed(z, buf, have, last, used);
	const char *nl = last || have == 0 ? NULL : memrchr(buf, '\n', have);
	*used = last ? have : nl ? (size_t)(nl - buf) + 1 : 0;
	if (first)
		return parse_plain(fc, buf, *used, sink, ctx, rep);
	return bw_parse_list_more(fc->format, buf, *used, fc->file, sink, ctx, rep);
}

/* Runs fc's parser over everything s gives. Returns 0, BW_EIO (errno) or BW_ENOMEM for the
 * reading; *prc: the parse's result (0, or the sink's error). Unusable data (gzip errors,
 * over the cap) is a broken feed, not a read error. */
static int parse_src(const struct bw_feed_conf *fc, struct src *s, bw_rule_sink sink, void *ctx,
		     struct bw_parse_report *rep, int *prc)
{
	struct bw_rpz *z = NULL;
	char *buf = NULL;
	size_t cap = PIECE, have = 0;
	bool first = true;
	int err = 0;

	*prc = 0;
	memset(rep, 0, sizeof(*rep));
	if (s->fd >= 0 && !s->gz && s->left + 1 < cap)
		cap = (size_t)s->left + 1;
	if (!(buf = malloc(cap)) ||
	    (fc->format == BW_FEED_RPZ && bw_rpz_begin(&z, fc->file, sink, ctx, rep) != 0)) {
		err = BW_ENOMEM;
		goto out;
	}
	for (;;) {
		if (have == cap) { /* JSON, or one record longer than the buffer */
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				err = BW_ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		size_t want = cap - have, used;
		ssize_t n = src_fill(s, buf + have, want);
		if (n < 0)
			break;
		have += (size_t)n;
		bool last = (size_t)n < want;
		if (!piecewise(fc->format)) {
			if (last)
				*prc = parse_plain(fc, buf, have, sink, ctx, rep);
		} else {
			*prc = parse_piece(fc, z, sink, ctx, rep, buf, have, last, first, &used);
			first = first && used == 0;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		if (*prc || last)
			break;
	}
	if (s->err == BW_EMALFORMED || s->err == BW_ERANGE) {
		rep->broken = true;
		rep->too_big = s->err == BW_ERANGE;
		/* the reason the whole version is unusable is kept and said, even after the
		 * first few bad lines (a bomb's lines may fill them) */
		if (rep->n_errors == sizeof(rep->first_errors) / sizeof(rep->first_errors[0]))
			rep->n_errors--;
		bw_parse_report_bad(rep, fc->file, rep->units, s->why);
	} else if (s->err) {
		err = s->err;
	}
out:
	bw_rpz_end(z);
	free(buf);
	return err;
}

int bw_parse_feed(const struct bw_feed_conf *fc, const char *buf, size_t len, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep)
{
	struct src s = {.fd = -1, .mem = buf, .mem_len = len};
	int prc, err;

	if (!bw_feed_is_gzip(buf, len))
		return parse_plain(fc, buf, len, sink, ctx, rep);
	if ((err = src_start(&s, buf, len, expand_max(fc))) == 0)
		err = parse_src(fc, &s, sink, ctx, rep, &prc);
	src_end(&s);
	return err ? err : prc;
}

int bw_parse_feed_file(const struct bw_feed_conf *fc, bw_rule_sink sink, void *ctx,
		       struct bw_parse_report *rep, uint64_t *mtime_ns, uint64_t *size, int *prc)
{
	struct src s = {.fd = -1};
	struct stat sb;
	char magic[2];
	int err = BW_EIO;

	*prc = 0;
	memset(rep, 0, sizeof(*rep));
	s.fd = open(fc->file, O_RDONLY | O_CLOEXEC);
	if (s.fd < 0)
		return BW_EIO;
	if (fstat(s.fd, &sb) < 0)
		goto out;
	if (!S_ISREG(sb.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	if ((uint64_t)sb.st_size > FILE_MAX) {
		err = BW_ERANGE;
		goto out;
	}
	s.left = (uint64_t)sb.st_size;
	ssize_t m = pread(s.fd, magic, sizeof(magic), 0); /* the offset stays at 0 */
	if (m < 0)
		goto out;
	if ((err = src_start(&s, magic, (size_t)m, expand_max(fc))) != 0 ||
	    (err = parse_src(fc, &s, sink, ctx, rep, prc)) != 0)
		goto out;
	if (mtime_ns)
		*mtime_ns =
		    (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
	if (size)
		*size = (uint64_t)sb.st_size;
	err = 0;
out:
	src_end(&s);
	int saved = errno;
	close(s.fd);
	errno = saved;
	return err;
}
