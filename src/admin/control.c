/*
 * admin/control.c - the control socket's thread: accept, read one line (at most 136 KiB,
 * within 2 s), run the command or action, write the JSON answer, close. One client at a
 * time. Also the action registry, its lock and the audit log (admin.h).
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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"

#define MAX_CMDS 32
#define MAX_ACTIONS 64
#define MAX_LINE (136 * 1024) /* a posted config: 64 KiB, escaped in JSON (core/actions.c) */
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
	struct bw_admin_action acts[MAX_ACTIONS];
	size_t n_acts;
	pthread_mutex_t lock; /* one command or action at a time */
	char *audit_path;
};

/* Whether a word command has this name: the word runs first (handle_peer), so an action
 * of the same name is reached only by a JSON request and help shows the word's line. */
static bool is_command(const struct bw_admin *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->cmds[i].name, name))
			return true;
	return false;
}

/* The table of words (each name once), and "actions": every action's route and role, as
 * the HTTP API serves them (docs/api.md; tests/e2e/test_api_docs.py reads it). */
static json_t *help_cmd(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	struct bw_admin *a = ctx;
	(void)argc, (void)argv, (void)err, (void)errlen;
	json_t *rows = json_array(), *acts = json_array();
	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(rows, json_pack("[s,s]", a->cmds[i].name, a->cmds[i].help));
	for (size_t i = 0; i < a->n_acts; i++) {
		const struct bw_admin_action *x = &a->acts[i];
		json_array_append_new(acts, json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b}", "name",
						      x->name, "method", x->method, "path",
						      x->path, "tail", x->tail, "role",
						      bw_role_name(x->role), "changes", x->changes));
		if (is_command(a, x->name))
			continue;
		char name[200];
		snprintf(name, sizeof(name), "%s%s%s", x->name, x->positional ? " " : "",
			 x->positional ? x->positional : "");
		json_array_append_new(rows, json_pack("[s,s]", name, x->help));
	}
	return json_pack("{s:[s,s], s:o, s:o}", "columns", "command", "what it does", "rows", rows,
			 "actions", acts);
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
	pthread_mutex_init(&a->lock, NULL);
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

int bw_admin_register_action(struct bw_admin *a, const struct bw_admin_action *act)
{
	if (a->n_acts == MAX_ACTIONS)
		return BW_ESPACE;
	a->acts[a->n_acts++] = *act;
	return 0;
}

const struct bw_admin_action *bw_admin_action_at(const struct bw_admin *a, size_t i)
{
	return i < a->n_acts ? &a->acts[i] : NULL;
}

int bw_admin_set_audit(struct bw_admin *a, const char *path)
{
	char *p = path ? strdup(path) : NULL;
	if (path && !p)
		return BW_ENOMEM;
	free(a->audit_path);
	a->audit_path = p;
	return 0;
}

/* One audit line: the file (JSON, appended) and syslog. The caller holds the lock. */
static void write_audit(struct bw_admin *a, const char *who, const char *what, json_t *args,
			const char *error)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	json_t *line = json_pack("{s:s, s:s, s:s, s:O?, s:b}", "time", when, "who",
				 who ? who : "?", "action", what, "args", args, "ok", !error);
	if (line && error)
		json_object_set_new(line, "error", json_string(error));
	char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!text)
		return;
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "bulwark admin: %s", text);
	if (a->audit_path) {
		int fd = open(a->audit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd >= 0) {
			size_t tl = strlen(text);
			text[tl] = '\n'; /* json_dumps left room: the NUL */
			ssize_t n = write(fd, text, tl + 1);
			(void)n;
			close(fd);
		}
	}
	free(text);
}

static void audit(struct bw_admin *a, const struct bw_admin_action *x,
		  const struct bw_admin_call *c, const json_t *res)
{
	const char *error = json_string_value(json_object_get(res, "error"));
	if (!error && !json_is_true(json_object_get(res, "ok")))
		error = "failed";
	write_audit(a, c->who, x->name, c->args, error);
}

void bw_admin_audit(struct bw_admin *a, const char *who, const char *what, json_t *args,
		    const char *error)
{
	pthread_mutex_lock(&a->lock);
	write_audit(a, who, what, args, error);
	pthread_mutex_unlock(&a->lock);
}

json_t *bw_admin_run(struct bw_admin *a, const char *name, struct bw_admin_call *call)
{
	const struct bw_admin_action *x = NULL;
	for (size_t i = 0; i < a->n_acts && !x; i++) {
		if (strcmp(a->acts[i].name, name) == 0)
			x = &a->acts[i];
	}
	if (!x) {
		char msg[200];
		snprintf(msg, sizeof(msg), "unknown action '%.100s' (try: help)", name);
		call->status = 404;
		return fail(msg);
	}
	json_t *res;
	pthread_mutex_lock(&a->lock);
	if (call->role < x->role) {
		call->status = 403;
		res = fail("this needs the admin role");
	} else {
		char err[512] = "";
		call->status = 0;
		json_t *r = x->fn(x->ctx, call, err, sizeof(err));
		if (r) {
			res = json_pack("{s:b, s:o}", "ok", 1, "result", r);
		} else {
			if (!call->status)
				call->status = 400;
			res = fail(err[0] ? err : "failed");
		}
	}
	if (x->changes)
		audit(a, x, call, res);
	pthread_mutex_unlock(&a->lock);
	return res;
}

const char *bw_admin_arg_str(const struct bw_admin_call *c, const char *key, const char *def)
{
	static _Thread_local char num[32];
	json_t *v = json_object_get(c->args, key);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return num;
	}
	return def;
}

bool bw_admin_arg_int(const struct bw_admin_call *c, const char *key, long long def,
		      long long lo, long long hi, long long *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(c->args, key);
	long long n = def;
	if (json_is_integer(v)) {
		n = (long long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (!*s || *end || errno) {
			snprintf(err, errlen, "%s: '%.60s' is not a number", key, s);
			return false;
		}
	} else if (v) {
		snprintf(err, errlen, "%s: not a number", key);
		return false;
	}
	if (n < lo || n > hi) {
		snprintf(err, errlen, "%s: %lld is out of range (%lld to %lld)", key, n, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

/* {"action": NAME, "args": {...}} from the socket's peer (an admin). */
static json_t *handle_action(struct bw_admin *a, const char *line, unsigned uid)
{
	json_error_t je;
	json_t *req = json_loads(line, 0, &je);
	const char *name = json_string_value(json_object_get(req, "action"));
	json_t *args = json_object_get(req, "args");
	if (!name || (args && !json_is_object(args))) {
		json_decref(req);
		return fail("a JSON request is {\"action\": NAME, \"args\": {...}}");
	}
	json_t *empty = args ? NULL : json_object();
	char who[64];
	snprintf(who, sizeof(who), "bulwarkctl (uid %u)", uid);
	struct bw_admin_call call = {.args = args ? args : empty, .who = who,
				     .role = BW_ROLE_ADMIN};
	json_t *r = bw_admin_run(a, name, &call);
	json_decref(empty);
	json_decref(req);
	return r;
}

/* An action asked for in words (bulwarkctl allow example.com): KEY=VALUE words fill any
 * argument, the others the action's positional ones in order. */
static json_t *action_words(struct bw_admin *a, const struct bw_admin_action *x, int argc,
			    char **argv, unsigned uid)
{
	char pos[200] = "", *save = NULL;
	snprintf(pos, sizeof(pos), "%s", x->positional ? x->positional : "");
	char *next = strtok_r(pos, " ", &save);
	json_t *args = json_object();
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq && eq != argv[i]) {
			*eq = 0;
			json_object_set_new(args, argv[i], json_string(eq + 1));
			continue;
		}
		if (!next) {
			json_decref(args);
			char msg[300];
			snprintf(msg, sizeof(msg), "%s: too many arguments (it takes: %s)", x->name,
				 x->positional ? x->positional : "none");
			return fail(msg);
		}
		json_object_set_new(args, next, json_string(argv[i]));
		next = strtok_r(NULL, " ", &save);
	}
	char who[64];
	snprintf(who, sizeof(who), "bulwarkctl (uid %u)", uid);
	struct bw_admin_call call = {.args = args, .who = who, .role = BW_ROLE_ADMIN};
	json_t *r = bw_admin_run(a, x->name, &call);
	json_decref(args);
	return r;
}

static json_t *handle_peer(struct bw_admin *a, const char *line, unsigned uid)
{
	char buf[MAX_LINE + 1], *argv[MAX_ARGS + 1], *save = NULL;
	int argc = 0;

	if (line[strspn(line, " \t")] == '{')
		return handle_action(a, line, uid);

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
		pthread_mutex_lock(&a->lock);
		json_t *r = a->cmds[i].fn(a->cmds[i].ctx, argc, argv, err, sizeof(err));
		pthread_mutex_unlock(&a->lock);
		if (!r)
			return fail(err[0] ? err : "failed");
		return json_pack("{s:b, s:o}", "ok", 1, "result", r);
	}
	for (size_t i = 0; i < a->n_acts; i++) {
		if (strcmp(a->acts[i].name, argv[0]) == 0)
			return action_words(a, &a->acts[i], argc, argv, uid);
	}
	char msg[MAX_LINE + 64];
	snprintf(msg, sizeof(msg), "unknown command '%.100s' (try: help)", argv[0]);
	return fail(msg);
}

json_t *bw_admin_handle(struct bw_admin *a, const char *line)
{
	return handle_peer(a, line, (unsigned)getuid());
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
	struct ucred cred = {.uid = (uid_t)-1};
	socklen_t cl = sizeof(cred);
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
	json_t *r = handle_peer(a, line, (unsigned)cred.uid);
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
	pthread_mutex_destroy(&a->lock);
	free(a->audit_path);
	free(a->path);
	free(a);
}
