/*
 * conf/yaml.c - the helpers every section parser shares: walking the libyaml document,
 * reading typed scalars (numbers, durations, booleans, enums, strings, paths, files),
 * addresses and names, and reporting `file:line:col: message` errors (conf/internal.h).
 *
 * Conventions: a key whose value is empty, "~" or "null" is treated as if it were absent
 * (its default applies); a quoted empty string is a real (and usually invalid) empty
 * string. Every helper returns 0 or the negative BW_E* it reported through cf_fail_at().
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "conf/internal.h"

/* ---- error reporting ---- */

static int cf_vfail(struct cf_ctx *c, const yaml_mark_t *mark, int code, const char *fmt, va_list ap)
{
	char msg[768];

	if (!c->err || !c->errlen)
		return code;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (mark)
		snprintf(c->err, c->errlen, "%s:%zu:%zu: %s", c->path, mark->line + 1,
			 mark->column + 1, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	return code;
}

int cf_fail_at(struct cf_ctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = cf_vfail(c, n ? &n->start_mark : NULL, code, fmt, ap);
	va_end(ap);
	return code;
}

int cf_fail_mark(struct cf_ctx *c, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = cf_vfail(c, mark, BW_EMALFORMED, fmt, ap);
	va_end(ap);
	return code;
}

int cf_fail_file(struct cf_ctx *c, const char *file, unsigned long line, int code,
		 const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!c->err || !c->errlen)
		return code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%lu: %s", file, line, msg);
	return code;
}

int cf_nomem(struct cf_ctx *c)
{
	return cf_fail_at(c, NULL, BW_ENOMEM, "out of memory");
}

/* ---- node access ---- */

yaml_node_t *cf_node(struct cf_ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

const char *cf_sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* An empty plain scalar, "~" or "null": YAML's null, treated as "not given". */
bool cf_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = cf_sval(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

const char *cf_type_name(yaml_node_type_t t)
{
	switch (t) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	default:
		return "a scalar";
	}
}

int cf_want_type(struct cf_ctx *c, const yaml_node_t *n, yaml_node_type_t t, const char *key)
{
	if (n->type != t)
		return cf_fail_at(c, n, BW_EINVAL, "expected %s for '%s', found %s", cf_type_name(t), key,
			       cf_type_name(n->type));
	if (t == YAML_SCALAR_NODE && strlen(cf_sval(n)) != n->data.scalar.length)
		return cf_fail_at(c, n, BW_EINVAL, "'%s' contains a NUL character", key);
	return 0;
}

int cf_want_scalar(struct cf_ctx *c, const yaml_node_t *n, const char *key, const char **out)
{
	int rc = cf_want_type(c, n, YAML_SCALAR_NODE, key);
	if (rc)
		return rc;
	*out = cf_sval(n);
	return 0;
}

/*
 * Checks every key of a mapping: a scalar, known, not repeated. `known` ends with NULL;
 * `where` names the mapping in messages ("server", "policy.feeds item").
 */
int cf_check_keys(struct cf_ctx *c, yaml_node_t *map, const char *where, const char *const *known)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	yaml_node_pair_t *top = map->data.mapping.pairs.top;

	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = cf_node(c, p->key);
		if (k->type != YAML_SCALAR_NODE)
			return cf_fail_at(c, k, BW_EINVAL, "expected a scalar key in %s, found %s",
				       where, cf_type_name(k->type));
		const char *name = cf_sval(k);
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *prev = cf_node(c, q->key);
			if (!strcmp(cf_sval(prev), name))
				return cf_fail_at(c, k, BW_EINVAL,
					       "duplicate key '%s' in %s (first given at line %zu)",
					       name, where, prev->start_mark.line + 1);
		}
		bool found = false;
		for (const char *const *kn = known; *kn; kn++)
			found = found || !strcmp(*kn, name);
		if (found)
			continue;

		char list[512];
		size_t used = 0;
		list[0] = '\0';
		for (const char *const *kn = known; *kn && used < sizeof(list); kn++) {
			int w = snprintf(list + used, sizeof(list) - used, "%s%s",
					 kn == known ? "" : ", ", *kn);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		return cf_fail_at(c, k, BW_EINVAL, "unknown key '%s' in %s (known: %s)", name, where,
			       list);
	}
	return 0;
}

/* The pair whose key is `key`, or NULL. Keys were checked by cf_check_keys() already. */
yaml_node_pair_t *cf_find_pair(struct cf_ctx *c, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		if (!strcmp(cf_sval(cf_node(c, p->key)), key))
			return p;
	}
	return NULL;
}

/* The value of `key`, or NULL when it is absent or null. */
yaml_node_t *cf_get(struct cf_ctx *c, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = cf_find_pair(c, map, key);
	if (!p)
		return NULL;
	yaml_node_t *v = cf_node(c, p->value);
	return cf_is_null(v) ? NULL : v;
}

/* The value of a required key; a missing key is reported at the enclosing mapping. */
int cf_need(struct cf_ctx *c, yaml_node_t *map, const char *key, const char *where,
		yaml_node_t **out)
{
	yaml_node_pair_t *p = cf_find_pair(c, map, key);
	if (!p)
		return cf_fail_at(c, map, BW_EINVAL, "missing required key '%s' in %s", key, where);
	yaml_node_t *v = cf_node(c, p->value);
	if (cf_is_null(v))
		return cf_fail_at(c, cf_node(c, p->key), BW_EINVAL, "'%s' needs a value", key);
	*out = v;
	return 0;
}

size_t cf_seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *cf_seq_item(struct cf_ctx *c, const yaml_node_t *n, size_t i)
{
	return cf_node(c, n->data.sequence.items.start[i]);
}

/* ---- scalar values ---- */

/* A decimal unsigned integer: digits only, no sign, no spaces, no overflow. */
bool cf_parse_ulong(const char *s, unsigned long *out, const char **end)
{
	char *e;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &e, 10);
	if (errno == ERANGE)
		return false;
	*out = v;
	*end = e;
	return true;
}

int cf_get_uint(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
		    unsigned long hi, unsigned long *out)
{
	const char *s, *end;
	unsigned long v;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	if (!cf_parse_ulong(s, &v, &end) || *end)
		return cf_fail_at(c, n, BW_EINVAL, "expected a number for '%s', found '%s'", key, s);
	if (v < lo || v > hi)
		return cf_fail_at(c, n, BW_ERANGE, "'%s' must be between %lu and %lu, found %s", key,
			       lo, hi, s);
	*out = v;
	return 0;
}

int cf_get_unsigned(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
			unsigned long hi, unsigned *out)
{
	unsigned long v;
	int rc = cf_get_uint(c, n, key, lo, hi, &v);

	if (!rc)
		*out = (unsigned)v;
	return rc;
}

/* "auto" (stored as 0) or a number in lo..hi. */
int cf_get_auto_uint(struct cf_ctx *c, yaml_node_t *n, const char *key, unsigned long lo,
			 unsigned long hi, unsigned *out)
{
	if (n->type == YAML_SCALAR_NODE && !strcmp(cf_sval(n), "auto")) {
		*out = 0;
		return 0;
	}
	if (n->type == YAML_SCALAR_NODE) {
		const char *end;
		unsigned long v;
		if (!cf_parse_ulong(cf_sval(n), &v, &end) || *end)
			return cf_fail_at(c, n, BW_EINVAL,
				       "expected 'auto' or a number for '%s', found '%s'", key,
				       cf_sval(n));
	}
	return cf_get_unsigned(c, n, key, lo, hi, out);
}

int cf_get_bool(struct cf_ctx *c, yaml_node_t *n, const char *key, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	const char *s;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	for (size_t i = 0; i < BW_ARRAY_LEN(yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return cf_fail_at(c, n, BW_EINVAL,
		       "expected a boolean for '%s' (true/false, yes/no, on/off), found '%s'", key,
		       s);
}

/*
 * A duration in milliseconds: "30" (seconds), "1500ms", "10s", "5m", "2h", "1d".
 * The result must lie in lo_ms..hi_ms.
 */
int cf_get_duration_ms(struct cf_ctx *c, yaml_node_t *n, const char *key, uint64_t lo_ms,
			   uint64_t hi_ms, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
	    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
	};
	const char *s, *end;
	unsigned long v;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	if (!cf_parse_ulong(s, &v, &end))
		goto bad;
	for (size_t i = 0; i < BW_ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v > UINT64_MAX / units[i].ms)
			goto range;
		uint64_t ms = (uint64_t)v * units[i].ms;
		if (ms < lo_ms || ms > hi_ms)
			goto range;
		*out = ms;
		return 0;
	}
bad:
	return cf_fail_at(c, n, BW_EINVAL,
		       "expected a duration for '%s' (a number of seconds, or a number with "
		       "ms, s, m, h or d), found '%s'",
		       key, s);
range:
	return cf_fail_at(c, n, BW_ERANGE, "'%s' must be between %llums and %llums, found %s", key,
		       (unsigned long long)lo_ms, (unsigned long long)hi_ms, s);
}

int cf_get_duration_ms32(struct cf_ctx *c, yaml_node_t *n, const char *key, uint64_t lo_ms,
			     uint64_t hi_ms, unsigned *out)
{
	uint64_t ms;
	int rc = cf_get_duration_ms(c, n, key, lo_ms, BW_MIN(hi_ms, (uint64_t)UINT_MAX), &ms);

	if (!rc)
		*out = (unsigned)ms;
	return rc;
}

/* A duration stored in whole seconds (TTLs). */
int cf_get_duration_sec(struct cf_ctx *c, yaml_node_t *n, const char *key, uint32_t *out)
{
	uint64_t ms;
	int rc = cf_get_duration_ms(c, n, key, 0, (uint64_t)UINT32_MAX * 1000, &ms);

	if (rc)
		return rc;
	if (ms % 1000)
		return cf_fail_at(c, n, BW_EINVAL, "'%s' must be a whole number of seconds, found %s",
			       key, cf_sval(n));
	*out = (uint32_t)(ms / 1000);
	return 0;
}

/* One of `names` (NULL-terminated); *out is its index. */
int cf_get_enum(struct cf_ctx *c, yaml_node_t *n, const char *key, const char *const *names,
		    int *out)
{
	const char *s;
	char list[256];
	size_t used = 0;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	for (int i = 0; names[i]; i++) {
		if (!strcmp(names[i], s)) {
			*out = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (int i = 0; names[i] && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return cf_fail_at(c, n, BW_EINVAL, "invalid %s '%s' (expected one of: %s)", key, s, list);
}

int cf_get_string(struct cf_ctx *c, yaml_node_t *n, const char *key, char **out)
{
	const char *s;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	if (!*s)
		return cf_fail_at(c, n, BW_EINVAL, "'%s' must not be empty", key);
	*out = strdup(s);
	return *out ? 0 : cf_nomem(c);
}

int cf_get_path(struct cf_ctx *c, yaml_node_t *n, const char *key, char **out)
{
	const char *s;
	char *p;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	if (!*s)
		return cf_fail_at(c, n, BW_EINVAL, "'%s' must not be empty", key);
	if (s[0] == '/' || !c->dir) {
		p = strdup(s);
	} else {
		size_t dl = strlen(c->dir), sl = strlen(s);
		p = malloc(dl + sl + 1);
		if (p) {
			memcpy(p, c->dir, dl);
			memcpy(p + dl, s, sl + 1);
		}
	}
	if (!p)
		return cf_nomem(c);
	*out = p;
	return 0;
}

/*
 * A file name: relative names are taken from the config file's directory; the file must
 * be readable. `what` names it in messages ("feed 'x'", "trust-anchor").
 */
int cf_get_file(struct cf_ctx *c, yaml_node_t *n, const char *key, const char *what, char **out)
{
	const char *s;
	char *p;
	int rc = cf_want_scalar(c, n, key, &s);

	if (rc)
		return rc;
	if (!*s)
		return cf_fail_at(c, n, BW_EINVAL, "%s: '%s' must not be empty", what, key);
	if ((rc = cf_get_path(c, n, key, &p)))
		return rc;

	int err = 0;
	int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
	} else {
		struct stat st;
		if (fstat(fd, &st))
			err = errno;
		else if (S_ISDIR(st.st_mode))
			err = EISDIR;
		close(fd);
	}
	if (err) {
		rc = cf_fail_at(c, n, err == ENOENT ? BW_ENOENT : BW_EIO, "%s: cannot read '%s': %s",
			     what, p, strerror(err));
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- addresses ---- */

int cf_make_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return BW_EINVAL;
}

int cf_parse_cidr(const char *s, struct bw_cidr *out)
{
	return bw_cidr_parse(s, strlen(s), out);
}

/* ---- names ---- */

/* NULL if s is a plausible host name, else what is wrong with it. */
const char *cf_name_problem(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len && s[len - 1] == '.')
		len--;
	if (!len)
		return "is empty";
	if (len > 253)
		return "is longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (!label)
				return "has an empty label";
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return "has a character that is not a letter, digit, '-' or '_' "
			       "(write international names in their xn-- form)";
		if (++label > 63)
			return "has a label longer than 63 characters";
	}
	return NULL;
}

/* A copy of a checked name, lower-cased, without its trailing dot; NULL when out of memory. */
char *cf_canon_name(const char *s)
{
	char *name = strdup(s);

	if (!name)
		return NULL;
	size_t len = strlen(name);
	if (len && name[len - 1] == '.')
		name[--len] = '\0';
	for (size_t k = 0; k < len; k++)
		name[k] = (char)tolower((unsigned char)name[k]);
	return name;
}

/* Feed names and categories: [A-Za-z0-9_.-]+, at most NAME_MAX_LEN characters. */
bool cf_ident_ok(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
			return false;
	}
	return true;
}

/* A list of names (allowlists): checked, lower-cased, without trailing dots. */
int cf_parse_names(struct cf_ctx *c, yaml_node_t *seq, const char *owner, char ***out,
		   size_t *n_out)
{
	size_t n;
	int rc;

	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "allowlist")))
		return rc;
	n = cf_seq_len(seq);
	if (!n)
		return 0;
	*out = calloc(n, sizeof(char *));
	if (!*out)
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v = cf_seq_item(c, seq, i);
		const char *s, *why;

		if ((rc = cf_want_scalar(c, v, "allowlist", &s)))
			return rc;
		if ((why = cf_name_problem(s)))
			return cf_fail_at(c, v, BW_EINVAL, "%sallowlist name '%s' %s", owner, s, why);
		if (!((*out)[i] = cf_canon_name(s)))
			return cf_nomem(c);
		*n_out = i + 1;
	}
	return 0;
}
