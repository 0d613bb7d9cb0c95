/*
 * admin/http_parse.c - the parts of an API request Bulwark reads itself, as pure
 * functions (admin.h): the query string into arguments, a JSON body into arguments, a
 * cookie from the Cookie header, the route (method and path to an action, with the path's
 * tail) and a dashboard file's path. No I/O: the fuzzer (tests/fuzz/fuzz_admin_http.c)
 * and the unit tests call them as the server does.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"

#define MAX_KEY 64
#define MAX_VALUE 4096
#define MAX_STATIC_SEGMENTS 4
#define MAX_STATIC_PATH 255

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* in[0..len) percent-decoded into out (cap bytes, NUL-terminated), '+' a space when plus.
 * The decoded length, or -1: a bad escape, a NUL or other control byte, too long. */
static long decode(const char *in, size_t len, bool plus, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)in[i];
		if (ch == '%') {
			if (i + 2 >= len || hexval(in[i + 1]) < 0 || hexval(in[i + 2]) < 0)
				return -1;
			ch = hexval(in[i + 1]) * 16 + hexval(in[i + 2]);
			i += 2;
		} else if (ch == '+' && plus) {
			ch = ' ';
		}
		if (ch < 0x20 || ch == 0x7f || o + 1 >= cap)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = 0;
	return (long)o;
}

static bool key_ok(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++) {
		char c = *k;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* One "key=value" (or "key") of a query string. */
static int query_pair(const char *p, size_t len, json_t *args, char *err, size_t errlen)
{
	char key[MAX_KEY + 1], value[MAX_VALUE + 1];
	const char *eq = memchr(p, '=', len);
	size_t kl = eq ? (size_t)(eq - p) : len;
	if (decode(p, kl, true, key, sizeof(key)) < 0 || !key_ok(key)) {
		snprintf(err, errlen, "query string: bad parameter name '%.*s'",
			 (int)(kl > 40 ? 40 : kl), p);
		return BW_EMALFORMED;
	}
	const char *v = eq ? eq + 1 : p + len;
	long vl = decode(v, (size_t)(p + len - v), true, value, sizeof(value));
	if (vl < 0) {
		snprintf(err, errlen, "query string: the value of '%s' is badly encoded, has "
				      "control characters or is too long", key);
		return BW_EMALFORMED;
	}
	if (json_object_get(args, key)) {
		snprintf(err, errlen, "query string: '%s' is given twice", key);
		return BW_EMALFORMED;
	}
	json_t *s = json_stringn(value, (size_t)vl);
	if (!s) {
		snprintf(err, errlen, "query string: the value of '%s' is not UTF-8", key);
		return BW_EMALFORMED;
	}
	json_object_set_new(args, key, s);
	return 0;
}

int bw_admin_query_args(const char *query, json_t *args, char *err, size_t errlen)
{
	if (!query)
		return 0;
	const char *p = query;
	while (*p) {
		size_t len = strcspn(p, "&");
		int rc = len ? query_pair(p, len, args, err, errlen) : 0;
		if (rc)
			return rc;
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

int bw_admin_body_args(const char *body, size_t len, json_t *args, char *err, size_t errlen)
{
	json_error_t je;
	json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!obj) {
		snprintf(err, errlen, "the body is not valid JSON: %s (line %d, column %d)", je.text,
			 je.line, je.column);
		return BW_EMALFORMED;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		snprintf(err, errlen, "the body must be a JSON object ({\"name\": ...})");
		return BW_EMALFORMED;
	}
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(obj, key, v)
	{
		if (!key[0]) {
			snprintf(err, errlen, "the body has a member without a name");
			rc = BW_EMALFORMED;
			break;
		}
		if (json_object_get(args, key)) {
			snprintf(err, errlen, "'%.64s' is given twice (in the body and the URL)", key);
			rc = BW_EMALFORMED;
			break;
		}
		json_object_set(args, key, v);
	}
	json_decref(obj);
	return rc;
}

bool bw_admin_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = header;
	while (p && *p) {
		p += strspn(p, " \t;");
		size_t len = strcspn(p, ";");
		const char *eq = memchr(p, '=', len);
		if (eq && (size_t)(eq - p) == nl && !memcmp(p, name, nl)) {
			size_t vl = len - nl - 1;
			while (vl && (eq[vl] == ' ' || eq[vl] == '\t'))
				vl--;
			if (!vl || vl >= cap)
				return false;
			memcpy(out, eq + 1, vl);
			out[vl] = 0;
			return true;
		}
		p += len;
	}
	return false;
}

/* Whether path matches pattern: the same, or pattern ends in "/ *" (no space) and path continues
 * after its prefix with at least one byte (the raw tail into *tail). */
static bool route_match(const char *pattern, const char *path, const char **tail)
{
	size_t pl = strlen(pattern);
	*tail = NULL;
	if (pl >= 2 && !strcmp(pattern + pl - 2, "/*")) {
		if (strncmp(path, pattern, pl - 1) || !path[pl - 1])
			return false;
		*tail = path + pl - 1;
		return true;
	}
	return !strcmp(pattern, path);
}

static void allow_add(char *allow, size_t cap, const char *method)
{
	if (strstr(allow, method))
		return;
	size_t n = strlen(allow);
	snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", method);
}

int bw_admin_route(const struct bw_admin *a, const char *method, const char *path,
		   const struct bw_admin_action **act, char *tail, size_t tailcap, char *allow,
		   size_t allowcap)
{
	const struct bw_admin_action *x;
	const char *raw;
	bool path_known = false;
	*act = NULL;
	tail[0] = allow[0] = 0;
	for (size_t i = 0; (x = bw_admin_action_at(a, i)); i++) {
		if (!x->path || !route_match(x->path, path, &raw))
			continue;
		path_known = true;
		allow_add(allow, allowcap, x->method);
		if (strcmp(x->method, method) != 0 || *act)
			continue;
		if (raw && decode(raw, strlen(raw), false, tail, tailcap) <= 0)
			return 400;
		*act = x;
	}
	if (*act)
		return 0;
	return path_known ? 405 : 404;
}

/* One segment of a dashboard file's path: letters, digits, '-', '_', '.', not first. */
static bool segment_ok(const char *s, size_t len)
{
	if (!len || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

int bw_admin_static_path(const char *path, char *rel, size_t cap)
{
	if (!path || path[0] != '/')
		return BW_ENOENT;
	if (!strcmp(path, "/"))
		path = "/index.html";
	size_t len = strlen(path + 1);
	if (len > MAX_STATIC_PATH || len + 1 > cap)
		return BW_ENOENT;
	const char *p = path + 1;
	for (int seg = 0; *p || seg == 0; seg++) {
		size_t sl = strcspn(p, "/");
		if (seg == MAX_STATIC_SEGMENTS || !segment_ok(p, sl))
			return BW_ENOENT;
		p += sl;
		if (*p == '/' && !*++p)
			return BW_ENOENT; /* a trailing slash: a directory */
	}
	memcpy(rel, path + 1, len + 1);
	return 0;
}
