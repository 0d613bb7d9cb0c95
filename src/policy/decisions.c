/*
 * policy/decisions.c - local decisions (decisions.h): the set, its index, the file.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/decisions.h"

#define FILE_MAX ((size_t)16 << 20) /* 10,000 lines of at most ~370 bytes fit easily */

struct bw_decisions {
	atomic_uint refs;
	uint64_t seed;
	size_t n;
	struct bw_local_decision *v; /* n, in the order they were made */
	uint32_t *index;       /* open addressing: i + 1 into v, 0 empty */
	uint32_t mask;
};

/* ---- names, actions, times ---- */

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool bw_decision_name(const char *text, uint8_t wire[BW_DNS_MAXNAME], uint8_t *len, char *err,
		      size_t errlen)
{
	size_t n = text ? strlen(text) : 0, label = 0;
	if (n && text[n - 1] == '.')
		n--;
	if (n == 0) {
		snprintf(err, errlen, "a name is needed (not empty, not the root)");
		return false;
	}
	if (n > 253) {
		snprintf(err, errlen, "invalid name: longer than 253 characters");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '.') {
			if (label == 0)
				goto empty;
			label = 0;
			continue;
		}
		if (!name_char_ok(text[i])) {
			snprintf(err, errlen, "invalid name '%.*s': only letters, digits, '-', '_' "
				 "and dots between labels", (int)BW_MIN(n, (size_t)80), text);
			return false;
		}
		if (++label > 63) {
			snprintf(err, errlen, "invalid name: a label is longer than 63 characters");
			return false;
		}
	}
	if (label == 0)
		goto empty;
	int wl = bw_name_from_text(text, n, wire);
	if (wl <= 1) {
		snprintf(err, errlen, "invalid name '%.*s'", (int)BW_MIN(n, (size_t)80), text);
		return false;
	}
	*len = (uint8_t)wl;
	return true;
empty:
	snprintf(err, errlen, "invalid name '%.*s': an empty label", (int)BW_MIN(n, (size_t)80),
		 text);
	return false;
}

const char *bw_decision_text(const struct bw_local_decision *d, char *out, size_t cap)
{
	int n = bw_name_to_text(d->wire, d->len, out, cap);
	if (n <= 0) {
		snprintf(out, cap, "?");
		return out;
	}
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = 0;
	return out;
}

const char *bw_decision_action_name(enum bw_decision_action a)
{
	return a == BW_DECISION_BLOCK ? "block" : "allow";
}

bool bw_decision_action_parse(const char *text, enum bw_decision_action *a)
{
	if (!strcmp(text, "allow"))
		*a = BW_DECISION_ALLOW;
	else if (!strcmp(text, "block"))
		*a = BW_DECISION_BLOCK;
	else
		return false;
	return true;
}

const char *bw_decision_time(int64_t at, char *out, size_t cap)
{
	struct tm tm;
	time_t t = (time_t)at;
	if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, cap, "?");
	return out;
}

bool bw_decision_time_parse(const char *text, int64_t *at)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return false;
	*at = (int64_t)timegm(&tm);
	return true;
}

/* ---- the set ---- */

static struct bw_decisions *set_new(size_t cap)
{
	struct bw_decisions *d = calloc(1, sizeof(*d));
	size_t slots = 16;
	while (slots < cap * 2)
		slots *= 2;
	if (!d)
		return NULL;
	atomic_init(&d->refs, 1);
	struct bw_hash_key k;
	bw_hash_key_random(&k);
	d->seed = k.k0;
	d->v = calloc(cap ? cap : 1, sizeof(*d->v));
	d->index = calloc(slots, sizeof(*d->index));
	d->mask = (uint32_t)(slots - 1);
	if (!d->v || !d->index) {
		bw_decisions_unref(d);
		return NULL;
	}
	return d;
}

static uint32_t *slot_of(const struct bw_decisions *d, const uint8_t *wire, size_t len)
{
	uint32_t i = (uint32_t)bw_hash(wire, len, d->seed) & d->mask;
	for (;;) {
		uint32_t k = d->index[i];
		if (k == 0)
			return &d->index[i];
		const struct bw_local_decision *x = &d->v[k - 1];
		if (x->len == len && !memcmp(x->wire, wire, len))
			return &d->index[i];
		i = (i + 1) & d->mask;
	}
}

/* Appends dec to a set made with room for it, or replaces the decision on its name. */
static void set_add(struct bw_decisions *d, const struct bw_local_decision *dec)
{
	uint32_t *slot = slot_of(d, dec->wire, dec->len);
	if (*slot) {
		d->v[*slot - 1] = *dec;
		return;
	}
	d->v[d->n] = *dec;
	*slot = (uint32_t)++d->n;
}

/* A new set with room for cap decisions holding those of d (NULL: none) but skip (-1:
 * none). */
static struct bw_decisions *set_copy(const struct bw_decisions *d, size_t cap, long skip)
{
	struct bw_decisions *c = set_new(cap);
	for (size_t i = 0; c && d && i < d->n; i++)
		if ((long)i != skip)
			set_add(c, &d->v[i]);
	return c;
}

int bw_decisions_put(const struct bw_decisions *d, const struct bw_local_decision *dec,
		     struct bw_decisions **out)
{
	*out = NULL;
	size_t n = bw_decisions_count(d);
	bool known = bw_decisions_find(d, dec->wire, dec->len) != NULL;
	if (!known && n >= BW_DECISIONS_MAX)
		return BW_ESPACE;
	struct bw_decisions *c = set_copy(d, n + !known, -1);
	if (!c)
		return BW_ENOMEM;
	set_add(c, dec);
	*out = c;
	return 0;
}

int bw_decisions_drop(const struct bw_decisions *d, const uint8_t *wire, size_t len,
		      enum bw_decision_action action, struct bw_decisions **out)
{
	*out = NULL;
	const struct bw_local_decision *x = bw_decisions_find(d, wire, len);
	if (!x || x->action != action)
		return BW_ENOENT;
	if (d->n == 1)
		return 0;
	*out = set_copy(d, d->n - 1, (long)(x - d->v));
	return *out ? 0 : BW_ENOMEM;
}

size_t bw_decisions_count(const struct bw_decisions *d)
{
	return d ? d->n : 0;
}

const struct bw_local_decision *bw_decisions_at(const struct bw_decisions *d, size_t i)
{
	return d && i < d->n ? &d->v[i] : NULL;
}

const struct bw_local_decision *bw_decisions_find(const struct bw_decisions *d, const uint8_t *wire,
					    size_t len)
{
	if (!d || !d->n || len == 0 || len > BW_DNS_MAXNAME)
		return NULL;
	uint32_t k = *slot_of(d, wire, len);
	return k ? &d->v[k - 1] : NULL;
}

const struct bw_local_decision *bw_decisions_cover(const struct bw_decisions *d, const uint8_t *name_lc,
					     size_t len)
{
	if (!d || !d->n)
		return NULL;
	/* the name, then each parent (not the root), as long as the labels stay inside len */
	for (size_t pos = 0; pos < len && name_lc[pos] != 0 && pos + 1u + name_lc[pos] < len;
	     pos += 1u + name_lc[pos]) {
		const struct bw_local_decision *x = bw_decisions_find(d, name_lc + pos, len - pos);
		if (x)
			return x;
	}
	return NULL;
}

struct bw_decisions *bw_decisions_ref(struct bw_decisions *d)
{
	if (d)
		atomic_fetch_add(&d->refs, 1);
	return d;
}

void bw_decisions_unref(struct bw_decisions *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	free(d->v);
	free(d->index);
	free(d);
}

/* ---- the file ---- */

/* One line (NUL-terminated, no newline) into dec: NULL, or why not. */
static const char *parse_line(char *line, struct bw_local_decision *dec, char *why, size_t whylen)
{
	char *save = NULL, *act = strtok_r(line, " \t", &save);
	char *name = act ? strtok_r(NULL, " \t", &save) : NULL;
	char *when = name ? strtok_r(NULL, " \t", &save) : NULL;
	char *who = save;
	if (!when)
		return "expected: ACTION NAME TIME WHO";
	memset(dec, 0, sizeof(*dec));
	if (!bw_decision_action_parse(act, &dec->action))
		return "the action is neither allow nor block";
	if (!bw_decision_name(name, dec->wire, &dec->len, why, whylen))
		return why;
	if (!bw_decision_time_parse(when, &dec->at))
		return "the time is not YYYY-MM-DDTHH:MM:SSZ";
	while (who && (*who == ' ' || *who == '\t'))
		who++;
	snprintf(dec->who, sizeof(dec->who), "%s", who && *who ? who : "?");
	return NULL;
}

static void note_bad(size_t *bad, const char *label, unsigned long line, const char *why,
		     char *err, size_t errlen)
{
	if ((*bad)++ == 0)
		snprintf(err, errlen, "%s:%lu: %s", label, line, why);
}

int bw_decisions_parse(const char *buf, size_t len, const char *label, struct bw_decisions **out,
		       size_t *bad, char *err, size_t errlen)
{
	struct bw_decisions *d = set_new(BW_DECISIONS_MAX);
	char line[1024], why[200];
	unsigned long no = 0;
	*out = NULL;
	*bad = 0;
	if (!d)
		return BW_ENOMEM;
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(buf + at, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - (buf + at)) : len - at;
		const char *why_not = NULL;
		struct bw_local_decision dec;
		no++;
		if (ll >= sizeof(line)) {
			why_not = "line too long";
		} else {
			memcpy(line, buf + at, ll);
			line[ll] = 0;
			if (ll && line[ll - 1] == '\r')
				line[ll - 1] = 0;
			size_t sp = strspn(line, " \t");
			if (line[sp] == 0 || line[sp] == '#')
				goto next;
			why_not = parse_line(line + sp, &dec, why, sizeof(why));
			if (!why_not && d->n >= BW_DECISIONS_MAX && !bw_decisions_find(d, dec.wire, dec.len))
				why_not = "more than 10000 decisions (the cap)";
		}
		if (why_not)
			note_bad(bad, label, no, why_not, err, errlen);
		else
			set_add(d, &dec);
next:
		at += ll + 1;
	}
	if (d->n == 0) {
		bw_decisions_unref(d);
		d = NULL;
	}
	*out = d;
	return 0;
}

int bw_decisions_load(const char *path, struct bw_decisions **out, size_t *bad, char *err,
		      size_t errlen)
{
	*out = NULL;
	*bad = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BW_EIO;
	}
	char *buf = malloc(FILE_MAX);
	size_t n = buf ? fread(buf, 1, FILE_MAX, f) : 0;
	int rc = !buf ? BW_ENOMEM : ferror(f) ? BW_EIO : 0;
	if (rc == BW_EIO)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	fclose(f);
	if (!rc)
		rc = bw_decisions_parse(buf, n, path, out, bad, err, errlen);
	free(buf);
	return rc;
}

int bw_decisions_write(FILE *f, const struct bw_decisions *d)
{
	char name[4 * BW_DNS_MAXNAME + 2], when[32];
	fprintf(f, "# Bulwark local decisions: ACTION NAME TIME WHO, one a line (docs/decisions.md).\n"
		   "# Written by the daemon (bulwarkctl allow/block, the admin API); a hand edit\n"
		   "# takes effect at the next reload.\n");
	for (size_t i = 0; i < bw_decisions_count(d); i++) {
		const struct bw_local_decision *x = &d->v[i];
		fprintf(f, "%s %s %s %s\n", bw_decision_action_name(x->action),
			bw_decision_text(x, name, sizeof(name)),
			bw_decision_time(x->at, when, sizeof(when)), x->who);
	}
	return ferror(f) ? BW_EIO : 0;
}
