/*
 * tests/unit/test_feeds.c - the feed manager's pure parts: safety checks, the refresh schedule
 * (backoff and jitter), the atomic store, the metadata round trip, TAXII envelope parsing
 * (paging fields) and merging, and the config keys of fetched feeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "feeds/feeds.h"
#include "policy/rules.h"

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/bw-test-feeds-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1024];
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		struct stat sb;
		if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			rmtree(p);
		else
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct stat sb;
	assert_int_equal(fstat(fileno(f), &sb), 0);
	char *buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)sb.st_size, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* ---- safety checks ---- */

static struct bw_feed_conf check_conf(void)
{
	struct bw_feed_conf fc;
	memset(&fc, 0, sizeof(fc));
	fc.max_size = 1000;
	fc.max_entries = 100;
	fc.min_ratio = 0.5;
	return fc;
}

static void test_checks(void **state)
{
	(void)state;
	struct bw_feed_conf fc = check_conf();
	struct bw_feed_check_input in = {.size = 500, .entries = 50, .have_last = true,
					 .last_entries = 60};
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.size = 1001;
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_TOO_BIG);
	in.size = 1000;
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.entries = 101;
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_TOO_MANY);
	in.entries = 29; /* 29 < 0.5 x 60 */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_SHRUNK);
	in.entries = 30; /* exactly half: kept */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.entries = 0;
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_SHRUNK);
	fc.min_ratio = 0; /* never hold back */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	fc.min_ratio = 0.5;
	in.have_last = false; /* the first version cannot shrink */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.bad = 3; /* nothing usable among bad lines: an error page, not a feed */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_BROKEN);
	in.bad = 0;
	in.entries = 10;
	in.broken = true;
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_BROKEN);
	/* too large a share of bad lines (rules.h bw_feed_health; defaults: 10 bad, 0.5) */
	in.broken = false;
	in.entries = 10;
	in.bad = 11; /* 11 of 21 bad */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_BROKEN);
	in.bad = 10; /* 10 of 20: not more than half */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.entries = 2;
	in.bad = 9; /* most lines bad, but fewer than min-bad */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	fc.min_bad = 20;
	fc.max_bad_ratio = 0.1;
	in.entries = 90; /* under max-entries */
	in.bad = 19; /* under min-bad */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	in.bad = 120; /* 120 of 210: over 0.1 */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_BROKEN);
	fc.max_bad_ratio = 1; /* never for the share */
	assert_int_equal(bw_feeds_check(&fc, &in), BW_CHECK_OK);
	assert_string_equal(bw_feed_check_str(BW_CHECK_SHRUNK),
			    "shrank below min-ratio of the last good version");
}

/* ---- schedule ---- */

static void test_backoff_and_jitter(void **state)
{
	(void)state;
	/* success: the refresh interval, +-10% */
	assert_int_equal(bw_feeds_next_delay(60000, 0, 0), 54000);
	assert_true(bw_feeds_next_delay(60000, 0, UINT32_MAX) < 66000);
	assert_true(bw_feeds_next_delay(60000, 0, UINT32_MAX) >= 65990);
	assert_int_equal(bw_feeds_next_delay(60000, 0, 1u << 31), 60000);
	/* failures: refresh/8 doubling, capped at 4 x refresh; jitter at the midpoint is 0 */
	uint32_t mid = 1u << 31;
	assert_int_equal(bw_feeds_next_delay(3600000, 1, mid), 450000);
	assert_int_equal(bw_feeds_next_delay(3600000, 2, mid), 900000);
	assert_int_equal(bw_feeds_next_delay(3600000, 3, mid), 1800000);
	assert_int_equal(bw_feeds_next_delay(3600000, 5, mid), 7200000);
	assert_int_equal(bw_feeds_next_delay(3600000, 6, mid), 14400000);
	assert_int_equal(bw_feeds_next_delay(3600000, 40, mid), 14400000);
	/* at least a second between tries, even for short intervals */
	assert_int_equal(bw_feeds_next_delay(1000, 1, mid), 1000);
	assert_int_equal(bw_feeds_next_delay(1000, 3, mid), 4000);
	/* the jitter spreads: two different random values give two different delays */
	assert_true(bw_feeds_next_delay(60000, 1, 0) != bw_feeds_next_delay(60000, 1, 3u << 30));
}

/* ---- store and metadata ---- */

static void test_atomic_store(void **state)
{
	(void)state;
	char *d = tmpdir(), path[512];
	size_t len;
	snprintf(path, sizeof(path), "%s/feed.txt", d);
	assert_int_equal(bw_feeds_store(path, "a.example\n", 10), 0);
	char *buf = slurp(path, &len);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "a.example\n", 10);
	free(buf);
	/* replaced whole; no temp file left beside it */
	assert_int_equal(bw_feeds_store(path, "b.example\nc.example\n", 20), 0);
	buf = slurp(path, &len);
	assert_int_equal(len, 20);
	assert_memory_equal(buf, "b.example\nc.example\n", 20);
	free(buf);
	assert_int_equal(count_files(d), 1);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	/* a directory that does not exist: an error, nothing written */
	snprintf(path, sizeof(path), "%s/nosuch/feed.txt", d);
	assert_int_equal(bw_feeds_store(path, "x", 1), BW_EIO);
	assert_int_equal(count_files(d), 1);
	rmtree(d);
	free(d);
}

static int write_many(FILE *f, void *ctx)
{
	int *lines = ctx;
	for (int i = 0; i < *lines; i++)
		if (fprintf(f, "name-%d.example\n", i) < 0)
			return BW_EIO;
	return 0;
}

static int write_then_fail(FILE *f, void *ctx)
{
	(void)ctx;
	fputs("half of a feed\n", f);
	return BW_EINVAL;
}

/* bw_feeds_store_with: streamed through more than one 64 KiB buffer; a writer that fails
 * leaves the last copy as it was and no temp file */
static void test_store_streamed(void **state)
{
	(void)state;
	char *d = tmpdir(), path[512];
	size_t len, written = 0;
	int lines = 20000;
	snprintf(path, sizeof(path), "%s/feed.rpz", d);
	assert_int_equal(bw_feeds_store_with(path, write_many, &lines, &written), 0);
	char *buf = slurp(path, &len);
	assert_int_equal(written, len);
	assert_true(len > 3 * 64 * 1024);
	assert_memory_equal(buf, "name-0.example\nname-1.example\n", 30);
	assert_memory_equal(buf + len - 19, "name-19999.example\n", 19);
	free(buf);
	written = 7;
	assert_int_equal(bw_feeds_store_with(path, write_then_fail, NULL, &written), BW_EINVAL);
	assert_int_equal(written, 7);
	buf = slurp(path, &len);
	assert_true(len > 3 * 64 * 1024);
	assert_memory_equal(buf, "name-0.example\n", 15);
	free(buf);
	assert_int_equal(count_files(d), 1);
	rmtree(d);
	free(d);
}

static void test_meta_round_trip(void **state)
{
	(void)state;
	char *d = tmpdir(), path[512];
	struct bw_feed_meta m, back;
	memset(&m, 0, sizeof(m));
	snprintf(m.etag, sizeof(m.etag), "W/\"5f-abc\"");
	snprintf(m.last_modified, sizeof(m.last_modified), "Sun, 22 Nov 2026 10:00:00 GMT");
	snprintf(m.cursor, sizeof(m.cursor), "2026-01-01T00:00:04.000Z");
	snprintf(m.source, sizeof(m.source), "https://feeds.example/list.txt");
	m.serial = 4000000000u;
	m.has_serial = true;
	m.fetched_at = 1795000000;
	m.checked_at = 1795000100;
	m.entries = 123456789012ull;
	m.size = 77;
	snprintf(path, sizeof(path), "%s/x.meta", d);
	assert_int_equal(bw_feed_meta_load(path, &back), BW_ENOENT);
	assert_int_equal(bw_feed_meta_save(path, &m), 0);
	assert_int_equal(bw_feed_meta_load(path, &back), 0);
	assert_string_equal(back.etag, m.etag);
	assert_string_equal(back.last_modified, m.last_modified);
	assert_string_equal(back.cursor, m.cursor);
	assert_string_equal(back.source, m.source);
	assert_true(back.has_serial);
	assert_int_equal(back.serial, m.serial);
	assert_int_equal(back.fetched_at, m.fetched_at);
	assert_int_equal(back.checked_at, m.checked_at);
	assert_int_equal(back.entries, m.entries);
	assert_int_equal(back.size, m.size);
	/* without a serial, none comes back */
	m.has_serial = false;
	assert_int_equal(bw_feed_meta_save(path, &m), 0);
	assert_int_equal(bw_feed_meta_load(path, &back), 0);
	assert_false(back.has_serial);
	/* not ours */
	assert_int_equal(bw_feeds_store(path, "{\"version\": 9}", 14), 0);
	assert_int_equal(bw_feed_meta_load(path, &back), BW_EMALFORMED);
	assert_int_equal(bw_feeds_store(path, "garbage", 7), 0);
	assert_int_equal(bw_feed_meta_load(path, &back), BW_EMALFORMED);
	rmtree(d);
	free(d);
}

/* ---- TAXII ---- */

static int envelope(const char *text, json_t **objs, bool *more, char *next, size_t nextlen)
{
	char err[200];
	return bw_taxii_envelope_parse(text, strlen(text), objs, more, next, nextlen, err,
				       sizeof(err));
}

static void test_taxii_envelope(void **state)
{
	(void)state;
	json_t *objs;
	bool more;
	char next[64];

	assert_int_equal(envelope("{\"more\": true, \"next\": \"p2\", \"objects\": ["
				  "{\"type\": \"indicator\", \"id\": \"indicator--1\"}]}",
				  &objs, &more, next, sizeof(next)),
			 0);
	assert_true(more);
	assert_string_equal(next, "p2");
	assert_int_equal(json_array_size(objs), 1);
	json_decref(objs);
	/* an empty envelope: no objects, no more */
	assert_int_equal(envelope("{}", &objs, &more, next, sizeof(next)), 0);
	assert_false(more);
	assert_string_equal(next, "");
	assert_int_equal(json_array_size(objs), 0);
	json_decref(objs);
	/* wrong types, not JSON, not an object, an object without id, too long a next */
	static const char *const bad[] = {
	    "{\"more\": \"yes\"}",
	    "{\"next\": 2}",
	    "{\"objects\": {}}",
	    "{\"objects\": [1]}",
	    "{\"objects\": [{\"type\": \"indicator\"}]}",
	    "[]",
	    "{\"more\": true",
	    "",
	    "{\"more\": true, \"more\": false}",
	    "{\"next\": \"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		objs = (json_t *)1;
		assert_int_equal(envelope(bad[i], &objs, &more, next, sizeof(next)), BW_EMALFORMED);
		assert_null(objs);
	}
	/* a NUL inside next */
	const char nul[] = "{\"next\": \"a\\u0000b\"}";
	assert_int_equal(envelope(nul, &objs, &more, next, sizeof(next)), BW_EMALFORMED);
}

static void test_taxii_merge(void **state)
{
	(void)state;
	json_error_t jerr;
	json_t *first = json_loads("[{\"type\":\"indicator\",\"id\":\"i--1\",\"modified\":\"2026-01-01T00:00:00Z\",\"v\":1},"
				   "{\"type\":\"indicator\",\"id\":\"i--2\",\"modified\":\"2026-01-01T00:00:00Z\",\"v\":1}]",
				   0, &jerr);
	assert_non_null(first);
	size_t len;
	char *b1 = bw_taxii_merge(NULL, 0, first, &len);
	assert_non_null(b1);
	json_t *bundle = json_loads(b1, 0, &jerr);
	assert_string_equal(json_string_value(json_object_get(bundle, "type")), "bundle");
	assert_int_equal(json_array_size(json_object_get(bundle, "objects")), 2);
	json_decref(bundle);
	/* a newer i--1 replaces it; an older i--2 does not; i--3 is added */
	json_t *second = json_loads("[{\"type\":\"indicator\",\"id\":\"i--1\",\"modified\":\"2026-02-01T00:00:00Z\",\"v\":2},"
				    "{\"type\":\"indicator\",\"id\":\"i--2\",\"modified\":\"2025-01-01T00:00:00Z\",\"v\":0},"
				    "{\"type\":\"indicator\",\"id\":\"i--3\",\"v\":1}]",
				    0, &jerr);
	char *b2 = bw_taxii_merge(b1, len, second, &len);
	assert_non_null(b2);
	bundle = json_loads(b2, 0, &jerr);
	json_t *objs = json_object_get(bundle, "objects");
	assert_int_equal(json_array_size(objs), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(objs, 0), "id")), "i--1");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(objs, 0), "v")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(objs, 1), "v")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(objs, 2), "id")), "i--3");
	json_decref(bundle);
	/* a last good copy that is not a bundle: no merge */
	assert_null(bw_taxii_merge("[1]", 3, second, &len));
	free(b1);
	free(b2);
	json_decref(first);
	json_decref(second);
}

/* ---- config ---- */

static int load(const char *dir, const char *yaml, struct bw_conf **conf, char *err, size_t errlen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	return bw_conf_load(path, conf, err, errlen);
}

static void test_conf_keys(void **state)
{
	(void)state;
	char *d = tmpdir(), err[1024];
	struct bw_conf *conf = NULL;
	int rc = load(d,
		      "server: { state-dir: st }\n"
		      "policy:\n  feeds:\n"
		      "    - { name: a, category: c, url: \"https://x.example/a.txt\", refresh: 5m,\n"
		      "        timeout: 10s, max-size: 1M, max-entries: 1000, min-ratio: 0.25,\n"
		      "        expire: 2d, when-expired: stop, max-bad-ratio: 0.2, min-bad: 3 }\n"
		      "    - { name: f, category: c, file: c.yaml, min-ratio: 0.8, max-bad-ratio: 1 }\n"
		      "    - name: t\n      category: apt\n      format: stix\n"
		      "      taxii: { url: \"https://t.example/api/\", collection: c-1,\n"
		      "               username: u, password: p }\n",
		      &conf, err, sizeof(err));
	assert_int_equal(rc, 0);
	const struct bw_feed_conf *a = &conf->policy.feeds[0], *t = &conf->policy.feeds[2];
	const struct bw_feed_conf *lf = &conf->policy.feeds[1];
	assert_true(lf->min_ratio == 0.8); /* the shrink check and health: file feeds too */
	assert_true(lf->max_bad_ratio == 1);
	assert_int_equal(lf->min_bad, 10);
	char want[600];
	assert_int_equal(a->source, BW_FEED_SRC_URL);
	snprintf(want, sizeof(want), "%s/st/feeds/a.txt", d);
	assert_string_equal(a->file, want);
	assert_int_equal(a->refresh_ms, 300000);
	assert_int_equal(a->timeout_ms, 10000);
	assert_int_equal(a->max_size, 1 << 20);
	assert_int_equal(a->max_entries, 1000);
	assert_true(a->min_ratio == 0.25);
	assert_true(a->max_bad_ratio == 0.2);
	assert_int_equal(a->min_bad, 3);
	assert_int_equal(a->expire_ms, 2ull * 86400 * 1000);
	assert_true(a->expired_stop);
	assert_int_equal(t->source, BW_FEED_SRC_TAXII);
	snprintf(want, sizeof(want), "%s/st/feeds/t.json", d);
	assert_string_equal(t->file, want);
	assert_string_equal(t->taxii_collection, "c-1");
	assert_string_equal(t->username, "u");
	assert_true(t->min_ratio == 0.5); /* defaults */
	assert_true(t->max_bad_ratio == 0.5);
	assert_int_equal(t->min_bad, 10);
	assert_int_equal(t->refresh_ms, 3600000);
	assert_false(t->expired_stop);
	snprintf(want, sizeof(want), "%s/st/control.sock", d);
	assert_string_equal(conf->server.control_socket, want);
	bw_conf_free(conf);

	static const struct {
		const char *yaml, *msg;
	} bad[] = {
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"ftp://x/a\" }\n",
	     "'url' must be an http:// or https:// URL"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"https://x/a\", "
	     "taxii: { url: \"https://x/\", collection: c } }\n",
	     "give exactly one of 'file', 'url', 'taxii' or 'primaries'"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, taxii: { url: \"https://x/\", "
	     "collection: c } }\n",
	     "a 'taxii' feed has 'format: stix'"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, file: c.yaml, refresh: 1m }\n",
	     "'refresh' is for fetched feeds ('url', 'taxii', 'primaries')"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"https://x/a\", min-ratio: 2 }\n",
	     "'min-ratio' must be a number from 0 to 1"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, file: c.yaml, max-bad-ratio: x }\n",
	     "'max-bad-ratio' must be a number from 0 to 1 (1 = never fail for bad units)"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, file: c.yaml, min-bad: 0 }\n",
	     "min-bad"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"https://x/a\", username: u }\n",
	     "'username' and 'password' go together"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"https://x/a\", "
	     "when-expired: maybe }\n",
	     "when-expired"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, format: stix, taxii: { url: "
	     "\"https://x/\", collection: \"a/b\" } }\n",
	     "taxii 'collection' must be an id"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, primaries: [ 192.0.2.1 ] }\n",
	     "a feed with 'primaries' has 'format: rpz'"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, format: rpz, primaries: [ 192.0.2.1 ] }\n",
	     "missing required key 'zone'"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, format: rpz, zone: rpz.test, "
	     "primaries: [ \"192.0.2.1@99999\" ] }\n",
	     "primary '192.0.2.1@99999' is not an IP address"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, format: rpz, zone: rpz.test, "
	     "primaries: [ 192.0.2.1 ], tsig: { name: k, algorithm: hmac-md5, secret: AAAA } }\n",
	     "invalid algorithm 'hmac-md5'"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, format: rpz, zone: rpz.test, "
	     "primaries: [ 192.0.2.1 ], tsig: { name: k, secret: \"not base64!\" } }\n",
	     "tsig 'secret' must be base64"},
	    {"policy:\n  feeds:\n    - { name: a, category: c, url: \"https://x/a\", zone: z }\n",
	     "'zone' is for feeds with 'primaries'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf = NULL;
		rc = load(d, bad[i].yaml, &conf, err, sizeof(err));
		if (rc == 0 || !strstr(err, bad[i].msg))
			fail_msg("case %zu: rc %d, got '%s', want '%s'", i, rc, err, bad[i].msg);
		assert_null(conf);
	}
	rmtree(d);
	free(d);
}

/* ---- the manager, with a scripted source (no network) ---- */

struct step {
	int rc;
	enum bw_fetch_kind kind;
	const char *text;
	size_t n_adds;
};
static const struct step *script;
static size_t script_pos;
static int rebuilds, deltas;
static uint64_t last_off;
static size_t last_delta_adds;

static int fake_fetch(const struct bw_feed_conf *fc, const char *last_good, struct bw_fetch *out)
{
	static struct bw_rule rule;
	(void)fc, (void)last_good;
	const struct step *st = &script[script_pos++];
	if (st->rc) {
		snprintf(out->err, sizeof(out->err), "scripted failure");
		return st->rc;
	}
	out->kind = st->kind;
	if (st->text) {
		out->buf = strdup(st->text);
		out->len = strlen(st->text);
	}
	snprintf(out->meta.etag, sizeof(out->meta.etag), "\"v%zu\"", script_pos);
	out->adds = &rule;
	out->n_adds = st->n_adds;
	return 0;
}

static const struct bw_feed_src_ops fake = {.kind = "fake", .fetch = fake_fetch};

static int on_rebuild(void *ctx, uint64_t off)
{
	(void)ctx;
	rebuilds++;
	last_off = off;
	return 0;
}

static int on_delta(void *ctx, unsigned feed, const struct bw_rule *adds, size_t n_adds,
		    const struct bw_rule *removes, size_t n_removes)
{
	(void)ctx, (void)adds, (void)removes, (void)n_removes;
	assert_int_equal(feed, 1);
	deltas++;
	last_delta_adds = n_adds;
	return 0;
}

/* The status row of feed `name` as "state|entries|held-back|last-error". */
static void row_of(struct bw_feeds *m, const char *name, char *out, size_t outlen)
{
	json_t *t = bw_feeds_status(m), *row;
	size_t i;
	out[0] = 0;
	json_array_foreach(json_object_get(t, "rows"), i, row)
	{
		if (strcmp(json_string_value(json_array_get(row, 0)), name) != 0)
			continue;
		snprintf(out, outlen, "%s|%lld|%s|%s", json_string_value(json_array_get(row, 9)),
			 (long long)json_integer_value(json_array_get(row, 4)),
			 json_string_value(json_array_get(row, 8)),
			 json_string_value(json_array_get(row, 6)));
	}
	json_decref(t);
}

static void test_manager(void **state)
{
	(void)state;
	char *d = tmpdir(), err[1024], row[1024], path[600];
	struct bw_conf *conf = NULL;
	FILE *f;
	snprintf(path, sizeof(path), "%s/local.txt", d);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_int_equal(load(d,
			      "server: { state-dir: st }\n"
			      "policy:\n  feeds:\n"
			      "    - { name: local, category: c, file: local.txt }\n"
			      "    - { name: a, category: c, url: \"https://x.example/a.txt\" }\n",
			      &conf, err, sizeof(err)),
			 0);
	static const struct step steps[] = {
	    {.kind = BW_FETCH_FULL, .text = "a.example\nb.example\nc.example\n"},
	    {.kind = BW_FETCH_NONE},
	    {.kind = BW_FETCH_FULL, .text = "a.example\n"},                  /* shrinks: held */
	    {.kind = BW_FETCH_FULL, .text = "<html>\n<body>oops</body>\n"}, /* unusable */
	    {.rc = BW_EIO},                                                  /* source down */
	    {.kind = BW_FETCH_DELTA, .text = "a.example\nd.example\n", .n_adds = 1},
	    {.kind = BW_FETCH_FULL, .text = "a.example\nd.example\n"},      /* the same */
	};
	script = steps;
	script_pos = 0;
	struct bw_feeds_hooks hooks = {.rebuild = on_rebuild, .delta = on_delta};
	struct bw_feeds *m = NULL;
	assert_int_equal(bw_feeds_create(conf, &hooks, &m, err, sizeof(err)), 0);
	assert_int_equal(bw_feeds_set_source(m, "a", &fake), 0);
	assert_int_equal(bw_feeds_set_source(m, "local", &fake), BW_EINVAL);
	row_of(m, "a", row, sizeof(row));
	assert_string_equal(row, "no copy yet|0|-|-");
	row_of(m, "local", row, sizeof(row));
	assert_string_equal(row, "file|0|-|-");
	rebuilds = deltas = 0;

	/* 1: first version: stored, applied */
	assert_int_equal(bw_feeds_poll(m, "a"), 0);
	assert_int_equal(rebuilds, 1);
	size_t len;
	char *text = slurp(conf->policy.feeds[1].file, &len);
	assert_string_equal(text, "a.example\nb.example\nc.example\n");
	free(text);
	snprintf(path, sizeof(path), "%s/st/feeds/a.meta", d);
	struct bw_feed_meta meta;
	assert_int_equal(bw_feed_meta_load(path, &meta), 0);
	assert_int_equal(meta.entries, 3); /* names, not rules (two a name) */
	assert_true(meta.entries_names);
	assert_string_equal(meta.etag, "\"v1\"");
	row_of(m, "a", row, sizeof(row));
	assert_string_equal(row, "ok|3|-|-");
	/* 2: not modified: nothing to do */
	assert_int_equal(bw_feeds_poll(m, "a"), 0);
	assert_int_equal(rebuilds, 1);
	/* 3: shrunk below half: held back, the last good copy stays */
	assert_int_equal(bw_feeds_poll(m, "a"), 0);
	assert_int_equal(rebuilds, 1);
	row_of(m, "a", row, sizeof(row));
	assert_non_null(strstr(row, "held back|3|1 entries (fetched "));
	text = slurp(conf->policy.feeds[1].file, &len);
	assert_string_equal(text, "a.example\nb.example\nc.example\n");
	free(text);
	/* 4: an HTML page instead of the list: rejected, the held version stays held */
	assert_int_equal(bw_feeds_poll(m, "a"), BW_EIO);
	row_of(m, "a", row, sizeof(row));
	assert_non_null(strstr(row, "|3|1 entries"));
	assert_non_null(strstr(row, "rejected"));
	assert_int_equal(rebuilds, 1);
	char why[300];
	assert_true(bw_feeds_failed(m, "a", why, sizeof(why))); /* for /metrics */
	assert_non_null(strstr(why, "new version rejected"));
	assert_non_null(strstr(why, "no usable entry"));
	assert_false(bw_feeds_failed(m, "local", why, sizeof(why)));
	/* 5: source down: reported, nothing changes */
	assert_int_equal(bw_feeds_poll(m, "a"), BW_EIO);
	row_of(m, "a", row, sizeof(row));
	assert_non_null(strstr(row, "fetch failed: scripted failure"));
	/* accept: the held version is applied */
	assert_int_equal(bw_feeds_accept(m, "a", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "held-back version applied (1 entries)"));
	assert_false(bw_feeds_failed(m, "a", why, sizeof(why)));
	assert_int_equal(rebuilds, 2);
	text = slurp(conf->policy.feeds[1].file, &len);
	assert_string_equal(text, "a.example\n");
	free(text);
	assert_int_equal(bw_feeds_accept(m, "a", err, sizeof(err)), BW_ENOENT);
	assert_int_equal(bw_feeds_accept(m, "zz", err, sizeof(err)), BW_ENOENT);
	assert_string_equal(err, "no feed named zz");
	/* 6: a delta: applied through the delta hook, no rebuild, the copy is the whole
	 * new version */
	assert_int_equal(bw_feeds_poll(m, "a"), 0);
	assert_int_equal(deltas, 1);
	assert_int_equal(last_delta_adds, 1);
	assert_int_equal(rebuilds, 2);
	text = slurp(conf->policy.feeds[1].file, &len);
	assert_string_equal(text, "a.example\nd.example\n");
	free(text);
	row_of(m, "a", row, sizeof(row));
	assert_string_equal(row, "ok|2|-|-");
	/* 7: the same bytes again: not modified */
	assert_int_equal(bw_feeds_poll(m, "a"), 0);
	assert_int_equal(rebuilds, 2);
	assert_int_equal(script_pos, 7);
	/* nothing but the copies and their metadata in the state directory */
	snprintf(path, sizeof(path), "%s/st/feeds", d);
	assert_int_equal(count_files(path), 2);
	bw_feeds_destroy(m);

	/* a restart: the metadata and the copy are found without any fetch */
	assert_int_equal(bw_feeds_create(conf, &hooks, &m, err, sizeof(err)), 0);
	row_of(m, "a", row, sizeof(row));
	assert_string_equal(row, "ok|2|-|-");
	bw_feeds_destroy(m);
	bw_conf_free(conf);
	rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checks),	    cmocka_unit_test(test_backoff_and_jitter),
	    cmocka_unit_test(test_atomic_store),
	    cmocka_unit_test(test_store_streamed),
	    cmocka_unit_test(test_meta_round_trip),
	    cmocka_unit_test(test_taxii_envelope),  cmocka_unit_test(test_taxii_merge),
	    cmocka_unit_test(test_conf_keys),	    cmocka_unit_test(test_manager),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
