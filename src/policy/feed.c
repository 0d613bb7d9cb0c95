/*
 * policy/feed.c - feed files to lower-cased wire names for the current snapshot
 * (blocking v1: `domains` and `hosts`), and the name syntax every list format shares.
 *
 * The parsing itself is the rule parsers' (parse_lists.c): bw_feed_parse_stats() runs
 * bw_parse_domains() / bw_parse_hosts() and hands the name of each QNAME rule to add(), so
 * the name lists and the rules always accept the same lines. Bad lines never abort a
 * parse; the first few of each parse are logged as "label:line: reason".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/rules.h"

#define MAX_FILE (1ULL << 30)

/* Ends the label that starts at out[lab] (its length byte) and runs to out[w - 1]. */
static bool close_label(uint8_t *out, size_t lab, size_t w, const char **reason)
{
	size_t l = w - lab - 1;
	if (l == 0) {
		*reason = "empty label";
		return false;
	}
	if (l > 63) {
		*reason = "label longer than 63 bytes";
		return false;
	}
	out[lab] = (uint8_t)l;
	return true;
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
			if (!close_label(out, lab, w, reason))
				return 0;
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
	if (!close_label(out, lab, w, reason))
		return 0;
	out[w++] = 0;
	return w;
}

/* A domains/hosts rule parse seen as a list of names: one name per QNAME rule. */
struct names_ctx {
	bw_feed_add_fn add;
	void *ctx;
	size_t names;
};

static int add_qname(void *ctx, const struct bw_rule *r)
{
	struct names_ctx *nc = ctx;

	if (r->trigger == BW_TRIG_QNAME) {
		nc->names++;
		nc->add(r->name, r->name_len, nc->ctx);
	}
	return 0;
}

void bw_feed_parse_stats(const char *buf, size_t len, enum bw_feed_format format, const char *label,
			 bw_feed_add_fn add, void *ctx, struct bw_feed_stats *st)
{
	struct names_ctx nc = {.add = add, .ctx = ctx};
	struct bw_parse_report rep;

	if (format == BW_FEED_HOSTS)
		bw_parse_hosts(buf, len, label, add_qname, &nc, &rep);
	else
		bw_parse_domains(buf, len, label, add_qname, &nc, &rep);
	st->lines = rep.units;
	st->names = nc.names;
	st->bad_lines = rep.bad;
	st->skipped = rep.skipped;
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
