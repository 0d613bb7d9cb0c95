/*
 * tools/ctl_check.c - `bulwarkctl check-config FILE|-`: sends the file to the running
 * daemon's check-config action (the JSON request line of admin/admin.h), which loads it
 * as the daemon would, applying nothing, and prints the verdict: "posted: configuration
 * is valid", or each error as posted:LINE:COL: MESSAGE on stderr (exit 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CHECK_MAX (64 * 1024) /* what the daemon checks at most (core/actions.c) */

/* The file's bytes (heap, NUL-terminated) or NULL (said on stderr). */
static char *slurp(const char *file, size_t *len)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "bulwarkctl: %s: cannot open\n", file);
		return NULL;
	}
	char *buf = malloc(CHECK_MAX + 2);
	*len = buf ? fread(buf, 1, CHECK_MAX + 1, f) : 0;
	if (f != stdin)
		fclose(f);
	if (!buf || *len > CHECK_MAX) {
		fprintf(stderr, "bulwarkctl: %s: %s\n", file,
			buf ? "larger than 64 KiB, the most the daemon checks" : "out of memory");
		free(buf);
		return NULL;
	}
	buf[*len] = 0;
	return buf;
}

/* Prints the check's result: the exit status (0 valid, 1 not). */
static int show(json_t *res, bool json)
{
	if (json) {
		char *t = json_dumps(res, JSON_COMPACT);
		printf("%s\n", t ? t : "");
		free(t);
	}
	json_t *r = json_object_get(res, "result");
	if (!json_is_true(json_object_get(res, "ok"))) {
		const char *e = json_string_value(json_object_get(res, "error"));
		fprintf(stderr, "bulwarkctl: %s\n", e ? e : "failed");
		return 1;
	}
	bool valid = json_is_true(json_object_get(r, "valid"));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r, "errors"), i, e)
		fprintf(stderr, "%s\n", json_string_value(e));
	if (valid && !json)
		printf("posted: configuration is valid\n");
	return valid ? 0 : 1;
}

int ctl_check_config(const char *socket_path, const char *file, bool json, long timeout_s)
{
	size_t len;
	char *text = slurp(file, &len);
	if (!text)
		return 2;
	json_t *req = json_pack("{s:s, s:{s:s%}}", "action", "check-config", "args", "yaml",
				text, len);
	free(text);
	char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!line) {
		fprintf(stderr, "bulwarkctl: %s: not text the daemon can take (UTF-8)\n", file);
		return 2;
	}
	size_t n = strlen(line);
	char *with_nl = realloc(line, n + 2);
	if (!with_nl) {
		free(line);
		return 1;
	}
	memcpy(with_nl + n, "\n", 2);
	bool unreachable;
	json_t *res = ctl_request(socket_path, with_nl, timeout_s, &unreachable);
	free(with_nl);
	if (!res) {
		if (unreachable)
			fprintf(stderr, "bulwarkctl: nothing listens on %s (is bulwark running?)\n",
				socket_path);
		return 3;
	}
	int rc = show(res, json);
	json_decref(res);
	return rc;
}
