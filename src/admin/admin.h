/*
 * admin/admin.h - the control socket: a local unix stream socket on which bulwarkctl asks
 * the running daemon things (docs/feeds.md, "Status"; tools/bulwarkctl.c).
 *
 * Protocol: the client sends one line of words ("feeds", "feeds accept NAME", "reload")
 * and reads one JSON object, then the server closes: {"ok": true, "result": ...} or
 * {"ok": false, "error": "..."}. By convention a table result is
 * {"columns": [...], "rows": [[...], ...]} (bulwarkctl prints it as a table).
 * The socket is created with mode 0600 (owner only); a stale socket file is replaced, a
 * live one (another daemon) is left alone.
 *
 * Owns: the socket, its thread, the command registry (commands are registered before
 * bw_admin_start() and borrowed: their ctx must outlive the admin).
 * Thread safety: command functions run on the admin thread, one at a time.
 */
#ifndef BW_ADMIN_H
#define BW_ADMIN_H

#include <jansson.h>

#include "base/base.h"

struct bw_admin;

/* A command: argv[0] is the command's first word. Returns the result (a new reference), or
 * NULL with err set. */
typedef json_t *(*bw_admin_fn)(void *ctx, int argc, char **argv, char *err, size_t errlen);

int bw_admin_create(const char *path, struct bw_admin **out, char *err, size_t errlen);
/* cmd is the first word ("feeds"); the function sees every word. help: one line. */
int bw_admin_register(struct bw_admin *a, const char *cmd, const char *help, bw_admin_fn fn,
		      void *ctx);
/* Binds and starts the thread. Returns 0 or a negative BW_E* with err. */
int bw_admin_start(struct bw_admin *a, char *err, size_t errlen);
/* Runs one request line, as the socket does (for tests): a new JSON response. */
json_t *bw_admin_handle(struct bw_admin *a, const char *line);
void bw_admin_destroy(struct bw_admin *a); /* stops the thread, removes the socket */

#endif
