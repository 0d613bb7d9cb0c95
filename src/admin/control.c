/*
 * admin/control.c - the control socket's thread: accept, read one line (at most 4 KiB,
 * within 2 s), run the command, write the JSON answer, close. One client at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"

#define MAX_CMDS 32
#define MAX_LINE 4096
#define MAX_ARGS 32

struct cmd {
	char *name, *help;
	bw_admin_fn fn;
	void *ctx;
};

struct bw_admin {
	char *path;
	int fd;
	int wake[2];
	pthread_t thread;
	bool started, bound;
	struct cmd cmds[MAX_CMDS];
	size_t n;
};

static json_t *help_cmd(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	struct bw_admin *a = ctx;
	(void)argc, (void)argv, (void)err, (void)errlen;
	json_t *rows = json_array();
	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(rows, json_pack("[s,s]", a->cmds[i].name, a->cmds[i].help));
	return json_pack("{s:[s,s], s:o}", "columns", "command", "what it does", "rows", rows);
}

int bw_admin_create(const char *path, struct bw_admin **out, char *err, size_t errlen)
{
	struct bw_admin *a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path))) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	a->fd = -1;
	a->wake[0] = a->wake[1] = -1;
	bw_admin_register(a, "help", "list the commands", help_cmd, a);
	*out = a;
	return 0;
}

int bw_admin_register(struct bw_admin *a, const char *cmd, const char *help, bw_admin_fn fn,
		      void *ctx)
{
	if (a->n == MAX_CMDS)
		return BW_ESPACE;
	struct cmd *c = &a->cmds[a->n];
	if (!(c->name = strdup(cmd)) || !(c->help = strdup(help))) {
		free(c->name);
		return BW_ENOMEM;
	}
	c->fn = fn;
	c->ctx = ctx;
	a->n++;
	return 0;
}

static json_t *fail(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

json_t *bw_admin_handle(struct bw_admin *a, const char *line)
{
	char buf[MAX_LINE + 1], *argv[MAX_ARGS + 1], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok_r(buf, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == MAX_ARGS)
			return fail("too many words");
		argv[argc++] = w;
	}
	argv[argc] = NULL;
	if (!argc)
		return fail("empty request (try: help)");
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->cmds[i].name, argv[0]) != 0)
			continue;
		char err[512] = "";
		json_t *r = a->cmds[i].fn(a->cmds[i].ctx, argc, argv, err, sizeof(err));
		if (!r)
			return fail(err[0] ? err : "failed");
		return json_pack("{s:b, s:o}", "ok", 1, "result", r);
	}
	char msg[MAX_LINE + 64];
	snprintf(msg, sizeof(msg), "unknown command '%.100s' (try: help)", argv[0]);
	return fail(msg);
}

static void serve(struct bw_admin *a, int fd)
{
	char line[MAX_LINE + 1];
	size_t len = 0;
	uint64_t deadline = bw_now_ms() + 2000;

	while (len < MAX_LINE && !memchr(line, '\n', len)) {
		uint64_t now = bw_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		ssize_t n = read(fd, line + len, MAX_LINE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = 0;
	json_t *r = bw_admin_handle(a, line);
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	if (!text)
		return;
	size_t tl = strlen(text), off = 0;
	while (off < tl) {
		ssize_t n = send(fd, text + off, tl - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off == tl)
		send(fd, "\n", 1, MSG_NOSIGNAL);
	free(text);
}

static void *admin_main(void *arg)
{
	struct bw_admin *a = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = a->fd, .events = POLLIN},
				      {.fd = a->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve(a, c);
		close(c);
	}
	return NULL;
}

/* Creates the socket's directory (and its parents) when missing, mode 0750. */
static void make_parent(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(buf, sizeof(buf), "%s", path);
	char *slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return;
	*slash = 0;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(buf, 0750);
		*p = '/';
	}
	mkdir(buf, 0750);
}

int bw_admin_start(struct bw_admin *a, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(a->path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path %s is too long (at most %zu bytes)",
			 a->path, sizeof(sun.sun_path) - 1);
		return BW_EINVAL;
	}
	memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
	make_parent(a->path);
	if ((a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	/* a socket file left by a daemon that died is replaced; one a live daemon answers on
	 * is not */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(probe);
		snprintf(err, errlen, "control socket %s is in use by another process", a->path);
		return BW_EIO;
	}
	if (probe >= 0)
		close(probe);
	unlink(a->path);
	mode_t old = umask(0177); /* the socket is created 0600 */
	int rc = bind(a->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0)
		goto fail;
	a->bound = true;
	if (listen(a->fd, 16) != 0 || pipe2(a->wake, O_CLOEXEC) != 0)
		goto fail;
	if ((rc = pthread_create(&a->thread, NULL, admin_main, a)) != 0) {
		errno = rc;
		goto fail;
	}
	pthread_setname_np(a->thread, "bw-admin");
	a->started = true;
	return 0;
fail:
	snprintf(err, errlen, "control socket %s: %s", a->path, strerror(errno));
	return BW_EIO;
}

void bw_admin_destroy(struct bw_admin *a)
{
	if (!a)
		return;
	if (a->started) {
		ssize_t n = write(a->wake[1], "x", 1);
		(void)n;
		pthread_join(a->thread, NULL);
	}
	if (a->fd >= 0)
		close(a->fd);
	if (a->bound)
		unlink(a->path);
	for (int i = 0; i < 2; i++) {
		if (a->wake[i] >= 0)
			close(a->wake[i]);
	}
	for (size_t i = 0; i < a->n; i++) {
		free(a->cmds[i].name);
		free(a->cmds[i].help);
	}
	free(a->path);
	free(a);
}
