/*
 * tools/ctl_token.c - `bulwarkctl token create|list|revoke`: the API's tokens (docs/api.md)
 * in the config's admin.tokens-file, through admin/tokens.c. No daemon is needed: it
 * re-reads the file when it changes. The file is replaced atomically; two bulwarkctl runs
 * take turns (flock on the file's directory). Every create and revoke goes to syslog
 * (authpriv.notice) with the acting user; a token itself is printed once and never kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "conf/conf.h"
#include "ctl.h"

static void audit(const char *what, const char *name, const char *role)
{
	ctl_audit("token", what, name, "role", role);
}

/* The tokens file's directory, locked: the fd, or -1 (said). */
static int lock_dir(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir] = 0;
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		fprintf(stderr, "bulwarkctl: cannot open the directory of %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int load(const struct ctl_opts *o, char **path, struct bw_token_entry **e, size_t *n)
{
	char err[1024];
	struct bw_conf *conf = NULL;
	if (bw_conf_load(o->config ? o->config : BW_CONF_DEFAULT_PATH, &conf, err, sizeof(err))) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 1;
	}
	*path = strdup(conf->admin.tokens_file);
	bw_conf_free(conf);
	if (!*path) {
		fputs("bulwarkctl: out of memory\n", stderr);
		return 1;
	}
	if (bw_tokens_read(*path, e, n, err, sizeof(err))) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 1;
	}
	return 0;
}

static int save(const char *path, const struct bw_token_entry *e, size_t n)
{
	char err[1024];
	if (bw_tokens_write(path, e, n, err, sizeof(err))) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_create(const char *path, struct bw_token_entry **e, size_t *n, const char *name,
		      enum bw_role role)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*e)[i].name, name)) {
			fprintf(stderr, "bulwarkctl: a token named '%s' exists already (revoke it "
					"first)\n", name);
			return 1;
		}
	struct bw_token_entry *v = realloc(*e, (*n + 1) * sizeof(*v));
	char token[BW_TOKEN_LEN + 1];
	if (!v || bw_token_new(token)) {
		fputs(v ? "bulwarkctl: getrandom failed\n" : "bulwarkctl: out of memory\n", stderr);
		if (v)
			*e = v;
		return 1;
	}
	*e = v;
	struct bw_token_entry *t = &v[(*n)++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->role = role;
	t->created = (long long)time(NULL);
	bw_token_hash(token, t->hash);
	if (save(path, *e, *n))
		return 1;
	audit("created", name, bw_role_name(role));
	printf("%s\n", token); /* alone on stdout: TOKEN=$(bulwarkctl token create ...) */
	fprintf(stderr, "token '%s' (%s) created: it is shown only this once; keep it secret\n",
		name, bw_role_name(role));
	return 0;
}

static int cmd_revoke(const char *path, struct bw_token_entry *e, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(e[i].name, name))
			continue;
		memmove(&e[i], &e[i + 1], (*n - i - 1) * sizeof(*e));
		(*n)--;
		if (save(path, e, *n))
			return 1;
		audit("revoked", name, NULL);
		printf("token '%s' revoked: it no longer works, nor do its sessions\n", name);
		return 0;
	}
	fprintf(stderr, "bulwarkctl: no token named '%s' in %s\n", name, path);
	return 1;
}

static int cmd_list(const struct bw_token_entry *e, size_t n, bool json)
{
	json_t *rows = json_array();
	for (size_t i = 0; i < n; i++) {
		char when[32];
		struct tm tm;
		time_t t = (time_t)e[i].created;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		json_array_append_new(rows, json_pack("[s,s,s]", e[i].name, bw_role_name(e[i].role),
						       when));
	}
	json_t *r = json_pack("{s:[s,s,s], s:o}", "columns", "name", "role", "created", "rows",
			      rows);
	if (json) {
		char *t = json_dumps(r, JSON_COMPACT);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else {
		ctl_print_result(r);
	}
	json_decref(r);
	return 0;
}

/* token create NAME --role R: the options after NAME; 0 or 2. */
static int create_args(int argc, char **argv, enum bw_role *role)
{
	static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
					     {NULL, 0, NULL, 0}};
	int c;
	optind = 0; /* a fresh scan (glibc) */
	while ((c = getopt_long(argc, argv, "r:", opts, NULL)) != -1) {
		if (c != 'r' || (*role = bw_role_from_name(optarg)) == BW_ROLE_NONE) {
			fprintf(stderr, "bulwarkctl: token create NAME --role viewer|admin\n");
			return 2;
		}
	}
	return optind == argc ? 0 : 2;
}

int ctl_token_main(const struct ctl_opts *o, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	const char *name = argc > 2 ? argv[2] : NULL;
	enum bw_role role = BW_ROLE_VIEWER;
	bool ok = (!strcmp(sub, "list") && argc == 2) ||
		  (!strcmp(sub, "revoke") && argc == 3) ||
		  (!strcmp(sub, "create") && name && !create_args(argc - 2, argv + 2, &role));
	if (!ok) {
		fputs("usage: bulwarkctl token create NAME --role viewer|admin | token list | "
		      "token revoke NAME\n", stderr);
		return 2;
	}
	const char *why = name ? bw_token_name_problem(name) : NULL;
	if (why) {
		fprintf(stderr, "bulwarkctl: '%s': %s\n", name, why);
		return 2;
	}
	char *path = NULL;
	struct bw_token_entry *e = NULL;
	size_t n = 0;
	int rc = load(o, &path, &e, &n), dirfd = -1;
	if (!rc && strcmp(sub, "list") && (dirfd = lock_dir(path)) < 0)
		rc = 1;
	if (!rc && dirfd >= 0) { /* read again under the lock */
		free(e);
		char err[1024];
		if (bw_tokens_read(path, &e, &n, err, sizeof(err))) {
			fprintf(stderr, "bulwarkctl: %s\n", err);
			rc = 1;
		}
	}
	if (!rc)
		rc = !strcmp(sub, "list")	? cmd_list(e, n, o->json)
		     : !strcmp(sub, "revoke") ? cmd_revoke(path, e, &n, name)
					      : cmd_create(path, &e, &n, name, role);
	if (dirfd >= 0)
		close(dirfd);
	free(e);
	free(path);
	return rc;
}
