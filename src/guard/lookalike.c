/*
 * guard/lookalike.c - the look-alike index and its per-query check.
 *
 * At build time every protected registrable domain ("amnesty.org") yields its label
 * ("amnesty") and suffix ("org"), and an index of strings that imitate the label: every
 * edit-distance-1 typo of the kinds typosquatters use (the keyboard neighbours of three
 * layouts, bit flips, vowels, hyphens), ASCII homoglyphs up to two substitutions (rn for m,
 * 0 for o, vv for w...), the suffix folded into the label (amnesty-org, amnestyorg), and
 * the label glued to common words (amnestylogin, secureamnesty). A query then costs one
 * Public Suffix List lookup and a handful of hash lookups: its registrable label in the
 * variant index and the label set, its hyphen-separated tokens in the label set, the
 * label before it glued on (dot insertion), and the labels before the registrable domain
 * in the protected set (the protected name used as a subdomain). Only internationalised
 * labels go through ICU: punycode decoded (UTS #46), then the UTS #39 skeleton compared
 * with the protected labels' skeletons, then the label folded to ASCII (diacritics
 * dropped, each confusable character replaced by its prototype) and checked like an
 * ASCII label.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/uidna.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "base/base.h"
#include "guard/guard.h"

#define LABEL_MAX 64
#define HOMOGLYPH_CAP 50000 /* ASCII homoglyph variants kept per protected label */
#define SUBDOMAIN_LABELS 8  /* labels before the registrable domain looked at */
#define POPULAR_MAX 4000000 /* domains on a popular list, at most */

static const char *const kind_names[BW_GK_COUNT] = {
    "none",         "omission",      "repetition",    "transposition", "replacement",
    "insertion",    "vowel-swap",    "bitsquatting",  "hyphenation",   "addition",
    "homoglyph",    "idn-homoglyph", "dot-insertion", "tld-swap",      "added-label",
    "subdomain",    "combosquat",
};

const char *bw_guard_kind_name(enum bw_guard_kind k)
{
	return (unsigned)k < BW_GK_COUNT ? kind_names[k] : "unknown";
}

/* ---- a string-keyed hash table, built once, read-only afterwards ---- */

struct entry {
	uint64_t h;    /* 0 = empty */
	uint32_t off;  /* key in the arena */
	uint8_t len;
	uint8_t kind;
	uint32_t idx;  /* protected domain */
};

struct table {
	struct bw_hash_key key; /* looked up with names clients send: keyed */
	struct entry *e;
	size_t cap, n; /* cap: a power of two */
	char *keys;
	size_t klen, kcap;
};

static uint64_t key_hash(const struct table *t, const char *s, size_t len)
{
	uint64_t h = bw_hash_keyed(s, len, &t->key);
	return h ? h : 1;
}

static int table_grow(struct table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 256;
	if (!t->cap)
		bw_hash_key_random(&t->key); /* empty until now: nothing hashed under the old */
	struct entry *ne = calloc(ncap, sizeof(*ne));
	if (!ne)
		return BW_ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->e[i].h)
			continue;
		size_t j = t->e[i].h & (ncap - 1);
		while (ne[j].h)
			j = (j + 1) & (ncap - 1);
		ne[j] = t->e[i];
	}
	free(t->e);
	t->e = ne;
	t->cap = ncap;
	return 0;
}

static const struct entry *table_get(const struct table *t, const char *s, size_t len)
{
	if (!t->cap || len == 0 || len >= LABEL_MAX * 4)
		return NULL;
	uint64_t h = key_hash(t, s, len);
	for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
		const struct entry *e = &t->e[j];
		if (!e->h)
			return NULL;
		if (e->h == h && e->len == len && memcmp(t->keys + e->off, s, len) == 0)
			return e;
	}
}

/* Adds s unless it is there already (the first kind recorded wins). */
static int table_add(struct table *t, const char *s, size_t len, enum bw_guard_kind kind,
		     uint32_t idx)
{
	if (len == 0 || len > 255)
		return 0;
	if (table_get(t, s, len))
		return 0;
	if ((t->n + 1) * 4 > t->cap * 3) {
		int rc = table_grow(t);
		if (rc)
			return rc;
	}
	if (t->klen + len > t->kcap) {
		size_t ncap = t->kcap ? t->kcap * 2 : 4096;
		while (ncap < t->klen + len)
			ncap *= 2;
		if (ncap > UINT32_MAX)
			return BW_ENOMEM;
		char *nk = realloc(t->keys, ncap);
		if (!nk)
			return BW_ENOMEM;
		t->keys = nk;
		t->kcap = ncap;
	}
	memcpy(t->keys + t->klen, s, len);
	uint64_t h = key_hash(t, s, len);
	size_t j = h & (t->cap - 1);
	while (t->e[j].h)
		j = (j + 1) & (t->cap - 1);
	t->e[j] = (struct entry){.h = h, .off = (uint32_t)t->klen, .len = (uint8_t)len,
				 .kind = (uint8_t)kind, .idx = idx};
	t->klen += len;
	t->n++;
	return 0;
}

static void table_free(struct table *t)
{
	free(t->e);
	free(t->keys);
}

/* ---- the index ---- */

struct prot {
	char *reg;    /* registrable domain */
	size_t label_len; /* reg[0..label_len) is the label, reg + label_len + 1 the suffix */
	enum bw_guard_act action;
	bool no_tld_swap;
};

struct bw_lookalike {
	struct prot *p;
	size_t n;
	unsigned min_len;
	struct table exact;    /* protected registrable domains */
	struct table labels;   /* their labels */
	struct table variants; /* typos, homoglyphs, added labels, glued words -> kind */
	struct table skeletons; /* UTS #39 skeletons of the labels */
	struct table idn_only;  /* homoglyphs of labels shorter than min_len: IDN names only */
	struct table popular;   /* registrable domains never flagged (guard.popular) */
	USpoofChecker *spoof;
	UIDNA *idna;
	const UNormalizer2 *nfd;
};

/* Words glued to a protected label by combosquatters (secureamnesty, amnestylogin). With
 * a hyphen any word counts (amnesty-anything is a combosquat); without one only these. */
static const char *const combo_words[] = {
    "login", "signin", "logon", "signup", "secure", "security", "account", "accounts",
    "verify", "verification", "update", "support", "help", "service", "services", "online",
    "web", "mail", "email", "portal", "auth", "sso", "id", "my", "pay",
    "payment", "payments", "billing", "bank", "wallet", "cloud", "drive", "docs", "office",
    "team", "admin", "official", "access", "reset", "password", "confirm", "confirmation",
    "alert", "notice", "store", "shop", "donate", "donation", "vpn", "connect", "files",
    "share", "staff", "members", "user", "recovery", "unlock", "safe", "protect", "live",
    "check", "center", "desk", "hr", "intranet", "agree", "blue", "business", "cdn",
    "choose", "claim", "cl", "click", "download", "enroll", "find", "group", "http",
    "https", "https-www", "install", "mobile", "register", "ssl", "summary", "view", "ww",
    "www",
    NULL};

/* Keyboard rows of three layouts; neighbours are left/right and the touching keys of the
 * rows above and below. */
static const char *const layouts[3][4] = {
    {"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"},
    {"1234567890", "qwertzuiop", "asdfghjkl", "yxcvbnm"},
    {"1234567890", "azertyuiop", "qsdfghjklm", "wxcvbn"},
};

/* Writes the keyboard neighbours of c (all layouts, possibly repeated) into out. */
static size_t neighbours(char c, char *out)
{
	size_t n = 0;
	for (int l = 0; l < 3; l++) {
		for (int r = 0; r < 4; r++) {
			const char *row = layouts[l][r];
			const char *at = strchr(row, c);
			if (!at || !c)
				continue;
			int i = (int)(at - row);
			int rl = (int)strlen(row);
			if (i > 0)
				out[n++] = row[i - 1];
			if (i + 1 < rl)
				out[n++] = row[i + 1];
			if (r > 0) {
				const char *up = layouts[l][r - 1];
				int ul = (int)strlen(up);
				if (i < ul)
					out[n++] = up[i];
				if (i + 1 < ul)
					out[n++] = up[i + 1];
			}
			if (r < 3) {
				const char *dn = layouts[l][r + 1];
				int dl = (int)strlen(dn);
				if (i - 1 >= 0 && i - 1 < dl)
					out[n++] = dn[i - 1];
				if (i < dl)
					out[n++] = dn[i];
			}
		}
	}
	return n;
}

static bool dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* ASCII characters and pairs that look alike in the fonts browsers and mail use. */
static const struct {
	char c;
	const char *glyphs[4];
} ascii_glyphs[] = {
    {'0', {"o"}},         {'1', {"l", "i"}},        {'3', {"8"}},     {'6', {"9"}},
    {'8', {"3"}},         {'9', {"6"}},             {'b', {"d", "lb"}}, {'c', {"e"}},
    {'d', {"b", "cl", "dl"}}, {'e', {"c"}},         {'g', {"q"}},     {'h', {"lh"}},
    {'i', {"1", "l"}},    {'k', {"lk", "ik", "lc"}}, {'l', {"1", "i"}}, {'m', {"n", "nn", "rn", "rr"}},
    {'n', {"m", "r"}},    {'o', {"0"}},             {'q', {"g"}},     {'w', {"vv"}},
    {'u', {"v"}},         {'v', {"u"}},
};

static const char *const *glyphs_of(char c)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(ascii_glyphs); i++)
		if (ascii_glyphs[i].c == c)
			return ascii_glyphs[i].glyphs;
	return NULL;
}

/* One round of homoglyph mixing: for every window of s and every character in it, that
 * character replaced by each of its glyphs throughout the window. Results go to dst. */
static int mix(const char *s, size_t len, struct table *dst, size_t cap)
{
	char buf[LABEL_MAX * 4];
	for (size_t w = 1; w < len; w++) {
		for (size_t i = 0; i + w <= len; i++) {
			bool done[128] = {false};
			for (size_t k = i; k < i + w; k++) {
				unsigned char c = (unsigned char)s[k];
				if (c >= 128 || done[c])
					continue;
				done[c] = true;
				const char *const *g = glyphs_of((char)c);
				for (int gi = 0; g && gi < 4 && g[gi]; gi++) {
					size_t gl = strlen(g[gi]), o = 0;
					memcpy(buf, s, i);
					o = i;
					for (size_t m = i; m < i + w; m++) {
						if (o + 2 >= sizeof(buf))
							break;
						if ((unsigned char)s[m] == c) {
							memcpy(buf + o, g[gi], gl);
							o += gl;
						} else {
							buf[o++] = s[m];
						}
					}
					if (o + (len - i - w) >= sizeof(buf) || o + (len - i - w) >= LABEL_MAX)
						continue;
					memcpy(buf + o, s + i + w, len - i - w);
					o += len - i - w;
					if (dst->n >= cap)
						return 0;
					int rc = table_add(dst, buf, o, BW_GK_HOMOGLYPH, 0);
					if (rc)
						return rc;
				}
			}
		}
	}
	return 0;
}

static int add_homoglyphs(struct table *dst, const char *label, size_t len,
			  uint32_t idx)
{
	struct table r1 = {0}, r2 = {0};
	int rc = mix(label, len, &r1, HOMOGLYPH_CAP);
	for (size_t i = 0; rc == 0 && i < r1.cap; i++) {
		const struct entry *e = &r1.e[i];
		if (!e->h)
			continue;
		rc = table_add(dst, r1.keys + e->off, e->len, BW_GK_HOMOGLYPH, idx);
		if (rc == 0 && r2.n < HOMOGLYPH_CAP)
			rc = mix(r1.keys + e->off, e->len, &r2, HOMOGLYPH_CAP);
	}
	for (size_t i = 0; rc == 0 && i < r2.cap; i++) {
		const struct entry *e = &r2.e[i];
		if (e->h)
			rc = table_add(dst, r2.keys + e->off, e->len, BW_GK_HOMOGLYPH, idx);
	}
	table_free(&r1);
	table_free(&r2);
	return rc;
}

/* Every edit-distance-1 typo of label, by kind (the first kind that makes a string wins:
 * the order below is the order of the enum). */
static int add_typos(struct bw_lookalike *g, const char *l, size_t n, uint32_t idx)
{
	char b[LABEL_MAX + 2], nb[32];
	int rc = 0;
#define ADD(len, kind)                                                                     \
	do {                                                                               \
		if ((rc = table_add(&g->variants, b, (len), (kind), idx)))                 \
			return rc;                                                         \
	} while (0)
	for (size_t i = 0; i < n; i++) { /* omission */
		memcpy(b, l, i);
		memcpy(b + i, l + i + 1, n - i - 1);
		ADD(n - 1, BW_GK_OMISSION);
	}
	if (n + 1 >= LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) { /* repetition */
		memcpy(b, l, i + 1);
		memcpy(b + i + 1, l + i, n - i);
		ADD(n + 1, BW_GK_REPETITION);
	}
	for (size_t i = 0; i + 1 < n; i++) { /* transposition */
		memcpy(b, l, n);
		b[i] = l[i + 1];
		b[i + 1] = l[i];
		ADD(n, BW_GK_TRANSPOSITION);
	}
	for (size_t i = 0; i < n; i++) { /* replacement by a keyboard neighbour */
		size_t k = neighbours(l[i], nb);
		for (size_t j = 0; j < k; j++) {
			memcpy(b, l, n);
			b[i] = nb[j];
			ADD(n, BW_GK_REPLACEMENT);
		}
	}
	for (size_t i = 0; i < n; i++) { /* insertion of a keyboard neighbour */
		size_t k = neighbours(l[i], nb);
		for (size_t j = 0; j < k; j++) {
			memcpy(b, l, i);
			b[i] = nb[j];
			memcpy(b + i + 1, l + i, n - i);
			ADD(n + 1, BW_GK_INSERTION);
			memcpy(b, l, i + 1);
			b[i + 1] = nb[j];
			memcpy(b + i + 2, l + i + 1, n - i - 1);
			ADD(n + 1, BW_GK_INSERTION);
		}
	}
	for (size_t i = 0; i < n; i++) { /* vowel swap */
		if (!strchr("aeiouy", l[i]))
			continue;
		for (const char *v = "aeiouy"; *v; v++) {
			memcpy(b, l, n);
			b[i] = *v;
			ADD(n, BW_GK_VOWEL_SWAP);
		}
	}
	for (size_t i = 0; i < n; i++) { /* bit flips */
		for (int m = 0; m < 8; m++) {
			char c = (char)(l[i] ^ (1 << m));
			if (!dns_char(c))
				continue;
			memcpy(b, l, n);
			b[i] = c;
			ADD(n, BW_GK_BITSQUATTING);
		}
	}
	for (size_t i = 1; i < n; i++) { /* hyphenation */
		memcpy(b, l, i);
		b[i] = '-';
		memcpy(b + i + 1, l + i, n - i);
		ADD(n + 1, BW_GK_HYPHENATION);
	}
	for (const char *c = "abcdefghijklmnopqrstuvwxyz0123456789"; *c; c++) { /* addition */
		memcpy(b, l, n);
		b[n] = *c;
		ADD(n + 1, BW_GK_ADDITION);
	}
#undef ADD
	return 0;
}

/* The label and the suffix folded together (amnestyorg, amnesty-org, amnestyco for co.uk),
 * and the label glued to common words. */
static int add_combos(struct bw_lookalike *g, const struct prot *p, uint32_t idx)
{
	char b[256];
	const char *label = p->reg, *suffix = p->reg + p->label_len + 1;
	int ll = (int)p->label_len, n, rc;
	size_t first = strcspn(suffix, ".");
	char nodots[128], hyph[128];
	size_t k = 0;
	for (const char *s = suffix; *s && k + 1 < sizeof(nodots); s++)
		if (*s != '.')
			nodots[k++] = *s;
	nodots[k] = 0;
	snprintf(hyph, sizeof(hyph), "%s", suffix);
	for (char *s = hyph; *s; s++)
		if (*s == '.')
			*s = '-';
	const char *forms[][2] = {{"", nodots}, {"-", hyph}, {"", NULL}, {"-", NULL}};
	for (size_t i = 0; i < BW_ARRAY_LEN(forms); i++) {
		if (forms[i][1])
			n = snprintf(b, sizeof(b), "%.*s%s%s", ll, label, forms[i][0], forms[i][1]);
		else
			n = snprintf(b, sizeof(b), "%.*s%s%.*s", ll, label, forms[i][0], (int)first,
				     suffix);
		if (n > 0 && (size_t)n < sizeof(b) && (rc = table_add(&g->variants, b, (size_t)n,
								       BW_GK_ADDED_LABEL, idx)))
			return rc;
	}
	if (p->label_len < g->min_len)
		return 0;
	for (size_t i = 0; combo_words[i]; i++) {
		n = snprintf(b, sizeof(b), "%.*s%s", ll, label, combo_words[i]);
		if (n > 0 && (size_t)n < sizeof(b) &&
		    (rc = table_add(&g->variants, b, (size_t)n, BW_GK_COMBOSQUAT, idx)))
			return rc;
		n = snprintf(b, sizeof(b), "%s%.*s", combo_words[i], ll, label);
		if (n > 0 && (size_t)n < sizeof(b) &&
		    (rc = table_add(&g->variants, b, (size_t)n, BW_GK_COMBOSQUAT, idx)))
			return rc;
	}
	return 0;
}

/* The UTS #39 skeleton of a UTF-8 string, lower-cased, into out (UTF-8). */
static int skeleton(const struct bw_lookalike *g, const char *s, size_t len, char *out,
		    size_t cap)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t n = uspoof_getSkeletonUTF8(g->spoof, 0, s, (int32_t)len, out, (int32_t)cap, &st);
	if (U_FAILURE(st) || n < 0 || (size_t)n >= cap)
		return BW_EINVAL;
	out[n] = 0;
	for (int32_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return n;
}

/* Latin letters with hooks, small capitals and Cyrillic letters that look like an ASCII
 * letter but that neither decomposition nor the UTS #39 table maps to it. */
static const struct {
	uint32_t cp;
	char ascii;
} look_alike_letters[] = {
    {0x0251, 'a'}, {0x0259, 'a'}, {0x0250, 'a'}, {0x0299, 'b'}, {0x0253, 'b'}, {0x0185,
    'b'}, {0x044c, 'b'}, {0x0188, 'c'}, {0x1d04, 'c'}, {0x0257, 'd'}, {0x0111, 'd'},
    {0x0256, 'd'}, {0x0501, 'd'}, {0x0247, 'e'}, {0x0192, 'f'}, {0x0262, 'g'}, {0x0261,
    'g'}, {0x01e5, 'g'}, {0x050d, 'g'}, {0x0127, 'h'}, {0x0266, 'h'}, {0x2c68, 'h'},
    {0x04bb, 'h'}, {0x0131, 'i'}, {0x0269, 'i'}, {0x0268, 'i'}, {0x026a, 'i'}, {0x0456,
    'i'}, {0x029d, 'j'}, {0x0249, 'j'}, {0x0458, 'j'}, {0x2c6a, 'k'}, {0x1d0b, 'k'},
    {0x043a, 'k'}, {0x026b, 'l'}, {0x0142, 'l'}, {0x04cf, 'l'}, {0x1d0d, 'm'}, {0x0271,
    'm'}, {0x043c, 'm'}, {0xa791, 'n'}, {0x1d0f, 'o'}, {0x01bf, 'p'}, {0x01a5, 'p'},
    {0x0440, 'p'}, {0x02a0, 'q'}, {0x051b, 'q'}, {0x0280, 'r'}, {0x027c, 'r'}, {0x027d,
    'r'}, {0x024d, 'r'}, {0x027e, 'r'}, {0x0282, 's'}, {0xa731, 's'}, {0x0455, 's'},
    {0x0167, 't'}, {0x01ab, 't'}, {0x0442, 't'}, {0x1d1c, 'u'}, {0x0289, 'u'}, {0x2c71,
    'v'}, {0x1d8c, 'v'}, {0x2c74, 'v'}, {0x1d20, 'v'}, {0x0475, 'v'}, {0x2c73, 'w'},
    {0x1d21, 'w'}, {0x051d, 'w'}, {0x028f, 'y'}, {0x01b4, 'y'}, {0x024f, 'y'}, {0x1eff,
    'y'}, {0x0443, 'y'}, {0x0290, 'z'}, {0x1d22, 'z'}, {0x01b6, 'z'}, {0x2c6c, 'z'},
    {0x01bb, '2'}, {0x01bd, '5'},
};

static char letter_fold(UChar32 c)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(look_alike_letters); i++)
		if (look_alike_letters[i].cp == (uint32_t)c)
			return look_alike_letters[i].ascii;
	return 0;
}

/* Appends the ASCII form of code point c to out: the character without its diacritics,
 * else its confusable prototype without diacritics. false when there is none. */
static bool fold_char(const struct bw_lookalike *g, UChar32 c, char *out, size_t *o, size_t cap)
{
	UChar in[64], tmp[64], sk[64];
	int32_t inl = 0;
	UBool err = false;
	char lf = letter_fold(c);
	if (lf) {
		if (*o + 1 >= cap)
			return false;
		out[(*o)++] = lf;
		return true;
	}
	U16_APPEND(in, inl, 64, c, err);
	if (err)
		return false;
	for (int pass = 0; pass < 2; pass++) {
		UErrorCode st = U_ZERO_ERROR;
		int32_t n = unorm2_normalize(g->nfd, in, inl, tmp, 64, &st);
		if (U_FAILURE(st))
			return false;
		size_t save = *o;
		bool ascii = true;
		for (int32_t i = 0; i < n && ascii; i++) {
			UChar32 d = tmp[i];
			if (u_charType(d) == U_NON_SPACING_MARK)
				continue;
			d = u_tolower(d);
			if (d >= 128 || *o + 1 >= cap) {
				ascii = false;
				break;
			}
			out[(*o)++] = (char)d;
		}
		if (ascii)
			return true;
		*o = save;
		if (pass == 1)
			return false;
		st = U_ZERO_ERROR;
		int32_t skl = uspoof_getSkeleton(g->spoof, 0, in, inl, sk, 64, &st);
		if (U_FAILURE(st) || skl <= 0 || skl > 60)
			return false;
		memcpy(in, sk, (size_t)skl * sizeof(UChar)); /* skl <= 60 < 64 */
		inl = skl; /* second pass normalises the prototype */
	}
	return false;
}

/* An internationalised label (UTF-8) folded to ASCII; false when it cannot be. */
static bool fold_label(const struct bw_lookalike *g, const char *s, size_t len, char *out,
		       size_t cap)
{
	UChar u[LABEL_MAX * 2];
	int32_t ul = 0;
	UErrorCode st = U_ZERO_ERROR;
	u_strFromUTF8(u, LABEL_MAX * 2, &ul, s, (int32_t)len, &st);
	if (U_FAILURE(st) || ul >= LABEL_MAX * 2)
		return false;
	size_t o = 0;
	for (int32_t i = 0; i < ul;) {
		UChar32 c;
		U16_NEXT(u, i, ul, c);
		if (c < 128) {
			if (o + 1 >= cap)
				return false;
			out[o++] = (char)tolower(c);
		} else if (!fold_char(g, c, out, &o, cap)) {
			return false;
		}
	}
	out[o] = 0;
	return o > 0;
}

void bw_lookalike_free(struct bw_lookalike *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->p[i].reg);
	free(g->p);
	table_free(&g->exact);
	table_free(&g->labels);
	table_free(&g->variants);
	table_free(&g->skeletons);
	table_free(&g->idn_only);
	table_free(&g->popular);
	if (g->spoof)
		uspoof_close(g->spoof);
	if (g->idna)
		uidna_close(g->idna);
	free(g);
}

size_t bw_lookalike_count(const struct bw_lookalike *g)
{
	return g ? g->n : 0;
}

size_t bw_lookalike_variants(const struct bw_lookalike *g)
{
	return g ? g->variants.n : 0;
}

size_t bw_lookalike_popular(const struct bw_lookalike *g)
{
	return g ? g->popular.n : 0;
}

/* One line of a popular list into its registrable domain (lower case) in out: false when
 * the line is not a name. "RANK,NAME" lines (Tranco's format) give NAME. */
static bool popular_line(char *line, char *out, size_t cap, const char **reg)
{
	char *s = line, *e;
	while (*s == ' ' || *s == '\t')
		s++;
	char *comma = strchr(s, ',');
	if (comma) {
		for (char *d = s; d < comma; d++)
			if (!isdigit((unsigned char)*d))
				return false;
		s = comma + 1;
	}
	for (e = s; *e && *e != ' ' && *e != '\t' && *e != '\r' && *e != '\n' && *e != '#'; e++)
		;
	size_t n = (size_t)(e - s);
	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = (char)tolower((unsigned char)s[i]);
		if (!dns_char(c) && c != '.' && c != '_')
			return false;
		out[i] = c;
	}
	out[n] = 0;
	if (out[0] == '.' || strstr(out, ".."))
		return false;
	return (*reg = bw_registrable_domain(out)) != NULL;
}

int bw_lookalike_load_popular(struct bw_lookalike *g, const char *path, size_t *count,
			      size_t *skipped)
{
	char line[1024], name[BW_GUARD_NAME_MAX];
	const char *reg;
	size_t lines = 0;
	int rc = 0;
	*count = *skipped = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? BW_ENOENT : BW_EIO;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		if (n && line[n - 1] != '\n' && !feof(f)) { /* longer than any name: skip it */
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			(*skipped)++;
			continue;
		}
		char *s = line + strspn(line, " \t\r\n");
		if (!*s || *s == '#')
			continue;
		lines++;
		if (!popular_line(s, name, sizeof(name), &reg)) {
			(*skipped)++;
			continue;
		}
		if (g->popular.n >= POPULAR_MAX)
			break;
		if ((rc = table_add(&g->popular, reg, strlen(reg), BW_GK_NONE, 0)))
			break;
	}
	if (rc == 0 && ferror(f))
		rc = BW_EIO;
	fclose(f);
	*count = g->popular.n;
	if (rc == 0 && lines && !g->popular.n)
		rc = BW_EMALFORMED;
	return rc;
}

/* Lower-cases name into buf without a trailing dot; false when it does not fit. */
static bool lower_name(const char *name, char *buf, size_t cap)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[n] = 0;
	return true;
}

int bw_lookalike_build(const struct bw_guard_protected *p, size_t n, unsigned min_len,
		       struct bw_lookalike **out, size_t *bad)
{
	struct bw_lookalike *g = calloc(1, sizeof(*g));
	int rc = BW_ENOMEM;
	UErrorCode st = U_ZERO_ERROR;
	*out = NULL;
	if (!g)
		return BW_ENOMEM;
	g->min_len = min_len;
	g->spoof = uspoof_open(&st);
	if (U_SUCCESS(st))
		g->idna = uidna_openUTS46(UIDNA_DEFAULT, &st);
	if (U_SUCCESS(st))
		g->nfd = unorm2_getNFKDInstance(&st);
	if (U_FAILURE(st))
		goto fail;
	uspoof_setChecks(g->spoof, USPOOF_CONFUSABLE, &st);
	if (n && !(g->p = calloc(n, sizeof(*g->p))))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char lc[BW_GUARD_NAME_MAX];
		const char *reg;
		if (!lower_name(p[i].domain, lc, sizeof(lc)) || !(reg = bw_registrable_domain(lc))) {
			if (bad)
				*bad = i;
			rc = BW_EINVAL;
			goto fail;
		}
		if (!(g->p[g->n].reg = strdup(reg)))
			goto fail;
		g->p[g->n].label_len = strcspn(reg, ".");
		g->p[g->n].action = p[i].action;
		g->p[g->n].no_tld_swap = p[i].no_tld_swap;
		g->n++;
	}
	/* the organisations' other domains: exact names that are never flagged */
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < p[i].n_owns; k++) {
			char lc[BW_GUARD_NAME_MAX];
			const char *reg;
			if (!lower_name(p[i].owns[k], lc, sizeof(lc)) || !(reg = bw_registrable_domain(lc))) {
				if (bad)
					*bad = i;
				rc = BW_EINVAL;
				goto fail;
			}
			if ((rc = table_add(&g->exact, reg, strlen(reg), BW_GK_NONE, (uint32_t)i)))
				goto fail;
		}
	}
	/* exact names and labels first, so that no variant shadows one */
	for (size_t i = 0; i < g->n; i++) {
		struct prot *q = &g->p[i];
		if ((rc = table_add(&g->exact, q->reg, strlen(q->reg), BW_GK_NONE, (uint32_t)i)) ||
		    (rc = table_add(&g->labels, q->reg, q->label_len, BW_GK_TLD_SWAP, (uint32_t)i)))
			goto fail;
		char sk[LABEL_MAX * 8];
		int sl = skeleton(g, q->reg, q->label_len, sk, sizeof(sk));
		if (sl > 0 && (rc = table_add(&g->skeletons, sk, (size_t)sl, BW_GK_IDN_HOMOGLYPH,
					      (uint32_t)i)))
			goto fail;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct prot *q = &g->p[i];
		if ((rc = add_combos(g, q, (uint32_t)i)))
			goto fail;
		if (q->label_len >= LABEL_MAX)
			continue;
		if (q->label_len < min_len) {
			/* an internationalised name that folds to a homoglyph of a short label
			 * is suspicious; an ASCII one (ng0) is too often innocent */
			if ((rc = add_homoglyphs(&g->idn_only, q->reg, q->label_len, (uint32_t)i)))
				goto fail;
			continue;
		}
		if ((rc = add_typos(g, q->reg, q->label_len, (uint32_t)i)) ||
		    (rc = add_homoglyphs(&g->variants, q->reg, q->label_len, (uint32_t)i)))
			goto fail;
	}
	*out = g;
	return 0;
fail:
	bw_lookalike_free(g);
	return rc;
}

static bool hit_from(const struct bw_lookalike *g, const struct entry *e, enum bw_guard_kind kind,
		     struct bw_guard_hit *hit)
{
	hit->kind = kind;
	hit->index = e->idx;
	hit->protected = g->p[e->idx].reg;
	hit->action = g->p[e->idx].action;
	return true;
}

/* The checks on a registrable label (ASCII): a variant, the same label under another
 * suffix, or a hyphen-separated token that is a protected label. suffix: the public
 * suffix the label is under (the same label under a private-section suffix is not a TLD
 * swap: hit->exempt says so). */
static bool check_label(const struct bw_lookalike *g, const char *l, size_t len,
			const char *suffix, struct bw_guard_hit *hit)
{
	const struct entry *e;
	if ((e = table_get(&g->labels, l, len))) {
		if (g->p[e->idx].no_tld_swap)
			return false;
		if (!bw_suffix_is_icann(suffix)) {
			hit_from(g, e, BW_GK_TLD_SWAP, hit);
			hit->exempt = BW_GX_HOSTING;
			return false;
		}
		return hit_from(g, e, BW_GK_TLD_SWAP, hit);
	}
	if ((e = table_get(&g->variants, l, len)))
		return hit_from(g, e, (enum bw_guard_kind)e->kind, hit);
	if (!memchr(l, '-', len))
		return false;
	for (size_t s = 0; s < len;) {
		size_t t = s;
		while (t < len && l[t] != '-')
			t++;
		if ((e = table_get(&g->labels, l + s, t - s)))
			return hit_from(g, e, BW_GK_COMBOSQUAT, hit);
		s = t + 1;
	}
	return false;
}

static bool is_idn(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 128)
			return true;
	return len >= 4 && memmem(s, len, "xn--", 4) != NULL;
}

/* An internationalised label: its skeleton, then its ASCII folding. */
static bool check_idn_label(const struct bw_lookalike *g, const char *l, size_t len,
			    const char *suffix, struct bw_guard_hit *hit)
{
	char u[LABEL_MAX * 4 + 1], sk[LABEL_MAX * 8], fold[LABEL_MAX * 2];
	const char *ul = l;
	int32_t un = (int32_t)len;
	if (len >= 4 && memcmp(l, "xn--", 4) == 0) {
		UErrorCode st = U_ZERO_ERROR;
		UIDNAInfo info = UIDNA_INFO_INITIALIZER;
		un = uidna_labelToUnicodeUTF8(g->idna, l, (int32_t)len, u, (int32_t)sizeof(u) - 1,
					      &info, &st);
		if (U_FAILURE(st) || un <= 0 || un >= (int32_t)sizeof(u))
			return false;
		u[un] = 0;
		ul = u;
	}
	const struct entry *e;
	int sl = skeleton(g, ul, (size_t)un, sk, sizeof(sk));
	if (sl > 0 && (e = table_get(&g->skeletons, sk, (size_t)sl)))
		return hit_from(g, e, BW_GK_IDN_HOMOGLYPH, hit);
	if (!fold_label(g, ul, (size_t)un, fold, sizeof(fold)))
		return false;
	size_t fl = strlen(fold);
	if (check_label(g, fold, fl, suffix, hit)) {
		hit->kind = BW_GK_IDN_HOMOGLYPH;
		return true;
	}
	if ((e = table_get(&g->idn_only, fold, fl)))
		return hit_from(g, e, BW_GK_IDN_HOMOGLYPH, hit);
	return false;
}

/* The check proper on lc (lower case, no trailing dot) and its registrable domain. */
static bool check_name(const struct bw_lookalike *g, const char *lc, const char *reg,
		       struct bw_guard_hit *hit)
{
	const struct entry *e;
	size_t ll = strcspn(reg, ".");
	const char *suffix = reg[ll] ? reg + ll + 1 : reg + ll;
	bool found = is_idn(reg, ll) ? check_idn_label(g, reg, ll, suffix, hit)
				     : check_label(g, reg, ll, suffix, hit);
	if (found)
		return true;
	if (reg == lc)
		return false;
	/* the labels before the registrable domain: lc[0 .. pre) without the dot */
	size_t pre = (size_t)(reg - lc) - 1;
	/* dot insertion: the label just before glued to the registrable label */
	size_t ps = pre;
	while (ps > 0 && lc[ps - 1] != '.')
		ps--;
	char glued[LABEL_MAX * 2];
	if (pre - ps + ll < sizeof(glued)) {
		memcpy(glued, lc + ps, pre - ps);
		memcpy(glued + (pre - ps), reg, ll); /* not (glued + pre) - ps: past the end */
		if ((e = table_get(&g->labels, glued, pre - ps + ll)))
			return hit_from(g, e, BW_GK_DOT_INSERTION, hit);
	}
	/* the protected name used as a subdomain: any run of labels in lc[0 .. pre) */
	size_t starts[SUBDOMAIN_LABELS], ns = 0;
	for (size_t i = 0; i < pre && ns < SUBDOMAIN_LABELS; i++)
		if (i == 0 || lc[i - 1] == '.')
			starts[ns++] = i;
	for (size_t a = 0; a < ns; a++) {
		for (size_t end = starts[a]; end <= pre; end++) {
			if (end != pre && lc[end] != '.')
				continue;
			if ((e = table_get(&g->exact, lc + starts[a], end - starts[a])))
				return hit_from(g, e, BW_GK_SUBDOMAIN, hit);
		}
	}
	return false;
}

bool bw_lookalike_check(const struct bw_lookalike *g, const char *name, struct bw_guard_hit *hit)
{
	char lc[BW_GUARD_NAME_MAX];
	hit->exempt = BW_GX_NONE;
	if (!g || !g->n || !lower_name(name, lc, sizeof(lc)))
		return false;
	const char *reg = bw_registrable_domain(lc);
	if (!reg)
		return false;
	size_t rlen = strlen(reg);
	if (table_get(&g->exact, reg, rlen))
		return false; /* a protected domain or one of its subdomains */
	if (!check_name(g, lc, reg, hit))
		return false;
	if (g->popular.n && table_get(&g->popular, reg, rlen)) {
		hit->exempt = BW_GX_POPULAR; /* a popular domain: never flagged */
		return false;
	}
	hit->exempt = BW_GX_NONE; /* a later check hit after a hosting-suffix label */
	return true;
}
