/*
 * admin/http_static.c - the dashboard's files (admin.www-dir) and Chart.js (from
 * Debian's libjs-chart.js, as /vendor/chart.js). Only GET and HEAD; only names
 * bw_admin_static_path() accepts; only regular files whose real path (symbolic links
 * resolved) is inside www-dir; at most MAX_FILE bytes. Anything else is 404, and says no
 * more than that.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/internal.h"

#define MAX_FILE (16 << 20)

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".woff2", "font/woff2"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".webmanifest", "application/manifest+json"},
	};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < BW_ARRAY_LEN(types); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* The real path of www-dir/rel when it is inside www-dir: 0, or -1. */
static int resolve(const char *www, const char *rel, char out[PATH_MAX])
{
	char root[PATH_MAX], want[PATH_MAX];
	if (!realpath(www, root) || (size_t)snprintf(want, sizeof(want), "%s/%s", root, rel) >=
					    sizeof(want))
		return -1;
	if (!realpath(want, out))
		return -1;
	size_t rl = strlen(root);
	return !strncmp(out, root, rl) && out[rl] == '/' ? 0 : -1;
}

static void not_found(struct evhttp_request *req)
{
	http_error(req, 404, "not found");
}

/* Sends the regular file at path (opened without following a link). */
static void send_file(struct evhttp_request *req, const char *path, const char *type)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		if (fd >= 0)
			close(fd);
		not_found(req);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b || evbuffer_add_file(b, fd, 0, st.st_size) != 0) { /* takes fd */
		if (b)
			evbuffer_free(b);
		else
			close(fd);
		http_error(req, 503, "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

void http_static(struct bw_admin_http *h, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		http_error(req, 405, "the dashboard's files are only read (GET)");
		return;
	}
	if (!strcmp(path, "/vendor/chart.js")) {
		send_file(req, BW_CHARTJS, "text/javascript; charset=utf-8");
		return;
	}
	char rel[256], real[PATH_MAX];
	if (bw_admin_static_path(path, rel, sizeof(rel)) != 0 || resolve(h->www_dir, rel, real)) {
		not_found(req);
		return;
	}
	send_file(req, real, content_type(real));
}
