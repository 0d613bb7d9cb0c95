/*
 * feeds/store.c - the last good store (atomic writes, metadata), the safety checks and the
 * refresh schedule: the parts of the feed manager that are pure functions of their input.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feeds/feeds.h"
#include "policy/rules.h"

/* Last good copies are written in pieces of this size: a large feed in many short system
 * calls, not one long one that a worker on the same CPU may wait behind. */
#define STORE_PIECE (64 * 1024)

struct buf_writer {
	const char *buf;
	size_t len;
};

static int write_buf(FILE *f, void *ctx)
{
	const struct buf_writer *w = ctx;
	/* in pieces of the stream's buffer: stdio writes a large block in one system call */
	for (size_t off = 0; off < w->len;) {
		size_t n = w->len - off < STORE_PIECE ? w->len - off : STORE_PIECE;
		if (fwrite(w->buf + off, 1, n, f) != n)
			return BW_EIO;
		off += n;
	}
	return 0;
}

int bw_feeds_store(const char *path, const char *buf, size_t len)
{
	struct buf_writer w = {buf, len};
	return bw_feeds_store_with(path, write_buf, &w, NULL);
}

int bw_feeds_store_with(const char *path, int (*write_fn)(FILE *f, void *ctx), void *ctx,
			size_t *written)
{
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 16), *dirc = strdup(path);
	FILE *f = NULL;
	int fd = -1, rc = BW_ENOMEM, saved;

	if (!tmp || !dirc)
		goto out;
	memcpy(tmp, path, pl);
	memcpy(tmp + pl, ".tmp.XXXXXX", 12);
	rc = BW_EIO;
	if ((fd = mkstemp(tmp)) < 0)
		goto out;
	if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "w")))
		goto unlink;
	fd = -1; /* f owns it */
	setvbuf(f, NULL, _IOFBF, STORE_PIECE);
	if ((rc = write_fn(f, ctx)) != 0)
		goto unlink;
	rc = BW_EIO;
	off_t size = ftello(f);
	if (fflush(f) != 0 || ferror(f) || size < 0 || fsync(fileno(f)) != 0)
		goto unlink;
	int closed = fclose(f);
	f = NULL;
	if (closed != 0 || rename(tmp, path) != 0)
		goto unlink;
	/* the rename itself must survive a crash */
	int dfd = open(dirname(dirc), O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (written)
		*written = (size_t)size;
	rc = 0;
	goto out;
unlink:
	saved = errno;
	if (f)
		fclose(f);
	f = NULL;
	unlink(tmp);
	errno = saved;
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(dirc);
	return rc;
}

static void copy_str(json_t *o, const char *key, char *out, size_t outlen)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (s && strlen(s) < outlen)
		memcpy(out, s, strlen(s) + 1);
}

static int64_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int bw_feed_meta_save(const char *path, const struct bw_feed_meta *m)
{
	/* entries-unit: "names" since entries are counted as the policy counts them (before,
	 * a list's name counted twice: its exact and its wildcard rule) */
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I}", "version", 1,
			      "source", m->source, "etag", m->etag, "last-modified",
			      m->last_modified, "taxii-cursor", m->cursor, "fetched-at",
			      (json_int_t)m->fetched_at, "checked-at", (json_int_t)m->checked_at,
			      "entries", (json_int_t)m->entries, "entries-unit", "names", "size",
			      (json_int_t)m->size);
	if (!o)
		return BW_ENOMEM;
	if (m->has_serial &&
	    (json_object_set_new(o, "serial", json_integer(m->serial)) != 0 ||
	     json_object_set_new(o, "soa-refresh", json_integer(m->soa_refresh)) != 0 ||
	     json_object_set_new(o, "soa-retry", json_integer(m->soa_retry)) != 0 ||
	     json_object_set_new(o, "soa-expire", json_integer(m->soa_expire)) != 0)) {
		json_decref(o);
		return BW_ENOMEM;
	}
	char *text = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return BW_ENOMEM;
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite: add it back below */
	int rc = bw_feeds_store(path, text, n + 1);
	free(text);
	return rc;
}

int bw_feed_meta_load(const char *path, struct bw_feed_meta *m)
{
	json_error_t jerr;

	memset(m, 0, sizeof(*m));
	json_t *o = json_load_file(path, 0, &jerr);
	if (!o)
		return access(path, F_OK) == 0 ? BW_EMALFORMED : BW_ENOENT;
	if (!json_is_object(o) || get_int(o, "version") != 1) {
		json_decref(o);
		return BW_EMALFORMED;
	}
	copy_str(o, "source", m->source, sizeof(m->source));
	copy_str(o, "etag", m->etag, sizeof(m->etag));
	copy_str(o, "last-modified", m->last_modified, sizeof(m->last_modified));
	copy_str(o, "taxii-cursor", m->cursor, sizeof(m->cursor));
	m->fetched_at = get_int(o, "fetched-at");
	m->checked_at = get_int(o, "checked-at");
	int64_t e = get_int(o, "entries"), s = get_int(o, "size");
	m->entries = e > 0 ? (uint64_t)e : 0;
	const char *unit = json_string_value(json_object_get(o, "entries-unit"));
	m->entries_names = unit && !strcmp(unit, "names");
	m->size = s > 0 ? (uint64_t)s : 0;
	json_t *serial = json_object_get(o, "serial");
	if (json_is_integer(serial) && json_integer_value(serial) >= 0 &&
	    json_integer_value(serial) <= 0xffffffffll) {
		m->has_serial = true;
		m->serial = (uint32_t)json_integer_value(serial);
		int64_t r = get_int(o, "soa-refresh"), t = get_int(o, "soa-retry"),
			x = get_int(o, "soa-expire");
		m->soa_refresh = r > 0 && r <= UINT32_MAX ? (uint32_t)r : 0;
		m->soa_retry = t > 0 && t <= UINT32_MAX ? (uint32_t)t : 0;
		m->soa_expire = x > 0 && x <= UINT32_MAX ? (uint32_t)x : 0;
	}
	json_decref(o);
	return 0;
}

enum bw_feed_check bw_feeds_check(const struct bw_feed_conf *fc,
				  const struct bw_feed_check_input *in)
{
	if (in->size > fc->max_size)
		return BW_CHECK_TOO_BIG;
	if (bw_feed_health(fc, in->entries, in->bad, in->broken) != BW_HEALTH_OK)
		return BW_CHECK_BROKEN;
	if (in->entries > fc->max_entries)
		return BW_CHECK_TOO_MANY;
	if (in->have_last && bw_feed_shrunk(fc, in->entries, in->last_entries))
		return BW_CHECK_SHRUNK;
	return BW_CHECK_OK;
}

const char *bw_feed_check_str(enum bw_feed_check v)
{
	switch (v) {
	case BW_CHECK_OK: return "ok";
	case BW_CHECK_TOO_BIG: return "larger than max-size";
	case BW_CHECK_TOO_MANY: return "more entries than max-entries";
	case BW_CHECK_BROKEN: return "unusable (corrupt, no usable entry, or too many bad entries)";
	case BW_CHECK_SHRUNK: return "shrank below min-ratio of the last good version";
	}
	return "?";
}

uint64_t bw_feeds_next_delay(unsigned refresh_ms, unsigned failures, uint32_t rnd)
{
	uint64_t d = refresh_ms;

	if (failures) {
		uint64_t base = refresh_ms / 8 < 1000 ? 1000 : refresh_ms / 8;
		unsigned shift = failures - 1 > 20 ? 20 : failures - 1;
		d = base << shift;
		if (d > 4ull * refresh_ms)
			d = 4ull * refresh_ms;
		if (d < 1000)
			d = 1000;
	}
	/* jitter: d x [0.9, 1.1) */
	uint64_t span = d / 5;
	return d - d / 10 + (span ? ((uint64_t)rnd * span) >> 32 : 0);
}
