/*
 * admin/tokens.c - API tokens (admin.h): made from getrandom, kept only as SHA-256 hashes
 * in the tokens file, which bulwarkctl writes (temporary file, fsync, rename) and the
 * daemon re-reads when it changes. A presented token is hashed and compared with every
 * entry in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"

#define MAX_TOKENS 1024

const char *bw_role_name(enum bw_role r)
{
	return r == BW_ROLE_ADMIN ? "admin" : r == BW_ROLE_VIEWER ? "viewer" : "none";
}

enum bw_role bw_role_from_name(const char *s)
{
	if (!strcmp(s, "admin"))
		return BW_ROLE_ADMIN;
	if (!strcmp(s, "viewer"))
		return BW_ROLE_VIEWER;
	return BW_ROLE_NONE;
}

const char *bw_token_name_problem(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > BW_TOKEN_NAME_MAX)
		return "a token's name is 1 to 64 characters";
	if (s[0] == '-' || s[0] == '.')
		return "a token's name does not start with '-' or '.'";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return "a token's name holds only letters, digits, '.', '_' and '-'";
	}
	return NULL;
}

int bw_token_new(char out[BW_TOKEN_LEN + 1])
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[33] = {0}; /* 256 bits, and a zero byte so 43 characters come out whole */
	if (getrandom(raw, 32, 0) != 32)
		return BW_EIO;
	size_t o = strlen(BW_TOKEN_PREFIX);
	memcpy(out, BW_TOKEN_PREFIX, o);
	for (size_t i = 0; i < 33; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		for (int k = 3; k >= 0 && o < BW_TOKEN_LEN; k--)
			out[o++] = b64url[(v >> (6 * k)) & 63];
	}
	out[o] = 0;
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void bw_token_hash(const char *token, uint8_t hash[32])
{
	unsigned int len = 32;
	if (!EVP_Digest(token, strlen(token), hash, &len, EVP_sha256(), NULL))
		memset(hash, 0xff, 32); /* matches no stored hash (all-ones is not one) */
}

static bool unhex(const char *s, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

int bw_token_parse_line(const char *line, struct bw_token_entry *e)
{
	char name[BW_TOKEN_NAME_MAX + 2], role[16], hex[66];
	long long created;
	int used = 0;
	const char *p = line + strspn(line, " \t");
	if (!*p || *p == '#')
		return BW_ENOENT;
	if (sscanf(p, "%65s %15s %65s %lld %n", name, role, hex, &created, &used) != 4 ||
	    p[used] || bw_token_name_problem(name) || strlen(hex) != 64 || created < 0)
		return BW_EMALFORMED;
	memset(e, 0, sizeof(*e));
	if ((e->role = bw_role_from_name(role)) == BW_ROLE_NONE || !unhex(hex, e->hash))
		return BW_EMALFORMED;
	memcpy(e->name, name, strlen(name) + 1);
	e->created = created;
	return 0;
}

int bw_tokens_read(const char *path, struct bw_token_entry **out, size_t *n, char *err,
		   size_t errlen)
{
	*out = NULL;
	*n = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BW_EIO;
	}
	struct bw_token_entry *v = calloc(MAX_TOKENS, sizeof(*v));
	char line[512];
	unsigned long lineno = 0;
	int rc = v ? 0 : BW_ENOMEM;
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		int r = bw_token_parse_line(line, &v[*n]);
		if (r == BW_ENOENT)
			continue;
		if (r || *n + 1 == MAX_TOKENS) {
			snprintf(err, errlen, "%s:%lu: %s", path, lineno,
				 r ? "not NAME ROLE SHA256HEX CREATED" : "too many tokens");
			rc = BW_EMALFORMED;
		} else {
			(*n)++;
		}
	}
	fclose(f);
	if (rc == BW_ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc) {
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

/* ---- writing ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Who owns the new file: the old file's owner, else we do, with the group of the
 * directory (the daemon's, for the state directory), so that the daemon can read it. */
static void set_owner(const char *path, int fd)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash)
			slash[slash == dir] = 0;
		if (stat(slash ? dir : ".", &st) != 0)
			return;
		st.st_uid = getuid();
	}
	if (fchown(fd, st.st_uid, st.st_gid) != 0)
		bw_debug("tokens: cannot give %s to uid %u: %s", path, (unsigned)st.st_uid,
			 strerror(errno));
}

static int put_entries(int fd, const struct bw_token_entry *e, size_t n)
{
	static const char head[] =
	    "# Bulwark's API tokens (admin.tokens-file), managed by `bulwarkctl token`.\n"
	    "# NAME ROLE SHA256-OF-TOKEN CREATED-UNIX-TIME; the tokens themselves are not kept.\n";
	if (write_all(fd, head, sizeof(head) - 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char line[256], hex[65];
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", e[i].hash[k]);
		int len = snprintf(line, sizeof(line), "%s %s %s %lld\n", e[i].name,
				   bw_role_name(e[i].role), hex, e[i].created);
		if (len < 0 || (size_t)len >= sizeof(line) || write_all(fd, line, (size_t)len))
			return -1;
	}
	return 0;
}

int bw_tokens_write(const char *path, const struct bw_token_entry *e, size_t n, char *err,
		    size_t errlen)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return BW_EIO;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file beside %s: %s", path, strerror(errno));
		return BW_EIO;
	}
	set_owner(path, fd);
	if (fchmod(fd, 0640) != 0 || put_entries(fd, e, n) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return BW_EIO;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		return BW_EIO;
	}
	return 0;
}

/* ---- the daemon's copy ---- */

struct bw_tokens {
	char *path;
	struct bw_token_entry *e;
	size_t n;
	time_t looked;   /* when the file was last stat()ed */
	struct stat st;  /* what it was then (st_ino 0: absent) */
	bool read_once;
};

struct bw_tokens *bw_tokens_open(const char *path)
{
	struct bw_tokens *t = calloc(1, sizeof(*t));
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return NULL;
	}
	return t;
}

void bw_tokens_free(struct bw_tokens *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->path);
	free(t);
}

/* Re-reads the file when its inode, size or mtime changed (at most once a second). A
 * file that no longer reads keeps no token: nobody gets in with a half-written file. */
static void refresh(struct bw_tokens *t)
{
	time_t now = time(NULL);
	if (now == t->looked)
		return;
	t->looked = now;
	struct stat st = {0};
	if (stat(t->path, &st) != 0)
		memset(&st, 0, sizeof(st));
	if (st.st_ino == t->st.st_ino && st.st_size == t->st.st_size &&
	    st.st_mtim.tv_sec == t->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == t->st.st_mtim.tv_nsec && t->read_once)
		return;
	t->st = st;
	t->read_once = true;
	char err[512];
	struct bw_token_entry *e = NULL;
	size_t n = 0;
	int rc = bw_tokens_read(t->path, &e, &n, err, sizeof(err));
	if (rc) {
		bw_warn("admin: no API token is accepted until the tokens file reads: %s", err);
	} else if (st.st_mode & S_IWOTH) {
		bw_warn("admin: %s is writable by anyone: no API token is accepted until it is "
			"not (chmod 0640)", t->path);
		n = 0;
	}
	free(t->e);
	t->e = e;
	t->n = n;
}

bool bw_tokens_check(struct bw_tokens *t, const char *token, struct bw_token_entry *out)
{
	uint8_t h[32];
	refresh(t);
	bw_token_hash(token, h);
	size_t hit = t->n;
	for (size_t i = 0; i < t->n; i++) /* every entry, whichever matches */
		if (CRYPTO_memcmp(h, t->e[i].hash, 32) == 0)
			hit = i;
	if (hit == t->n)
		return false;
	*out = t->e[hit];
	return true;
}

bool bw_tokens_still(struct bw_tokens *t, const char *name, const uint8_t hash[32],
		     struct bw_token_entry *out)
{
	refresh(t);
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].name, name) && CRYPTO_memcmp(hash, t->e[i].hash, 32) == 0) {
			*out = t->e[i];
			return true;
		}
	return false;
}

size_t bw_tokens_count(struct bw_tokens *t)
{
	refresh(t);
	return t->n;
}
