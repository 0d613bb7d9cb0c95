/*
 * tools/ctl_clients_file.c - the clients file that `bulwarkctl client add` and `client
 * remove` keep (docs/config.md, "The clients file"): read with libyaml's document API, one
 * entry appended or removed, emitted again with yaml_emitter, so entries and keys this
 * tool does not know are kept (comments are not: a header says the file is managed).
 *
 * The file holds access credentials (ClientIDs), so it is replaced, never rewritten in
 * place: a temporary file in its directory, mode 0640, owned like the old file, written,
 * fsynced and renamed over it. Two bulwarkctl runs take turns (flock on the directory).
 * The config is then loaded again; if it no longer loads, the old file is put back.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "conf/conf.h"
#include "ctl.h"

#define MAX_FILE (64u << 20)

static const char header[] =
    "# Bulwark's named clients, managed by `bulwarkctl client add` and `bulwarkctl client\n"
    "# remove` (entries and keys written by hand are kept, comments are not).\n"
    "# Each id: is an access credential: keep this file private (mode 0640).\n"
    "# Format: bulwark.yaml(5) (docs/config.md), section clients-file.\n";

/* What the edit keeps while it runs: the file as it was, to put back. */
struct old_file {
	bool exists;
	struct stat st;
	char *bytes;
	size_t len;
};

static int read_old(const char *path, struct old_file *old)
{
	memset(old, 0, sizeof(*old));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "bulwarkctl: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = 1;
	if (fstat(fd, &old->st) != 0 || !S_ISREG(old->st.st_mode) || old->st.st_size > MAX_FILE) {
		fprintf(stderr, "bulwarkctl: %s is not a regular file of at most 64 MiB\n", path);
		goto out;
	}
	size_t cap = (size_t)old->st.st_size;
	if (!(old->bytes = malloc(cap + 1))) {
		fputs("bulwarkctl: out of memory\n", stderr);
		goto out;
	}
	while (old->len < cap) {
		ssize_t n = read(fd, old->bytes + old->len, cap - old->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		old->len += (size_t)n;
	}
	old->bytes[old->len] = 0;
	old->exists = true;
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- the document ---- */

static int new_document(yaml_document_t *doc)
{
	if (!yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1))
		return -1;
	int root = yaml_document_add_mapping(doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	int key = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"clients", -1,
					   YAML_PLAIN_SCALAR_STYLE);
	int seq = yaml_document_add_sequence(doc, NULL, YAML_BLOCK_SEQUENCE_STYLE);
	if (!root || !key || !seq || !yaml_document_append_mapping_pair(doc, root, key, seq)) {
		yaml_document_delete(doc);
		return -1;
	}
	return 0;
}

static bool scalar_is(yaml_document_t *doc, int index, const char *s)
{
	yaml_node_t *n = yaml_document_get_node(doc, index);
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
	       !memcmp(n->data.scalar.value, s, n->data.scalar.length);
}

static bool is_null(yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (int i = 0; nulls[i]; i++)
		if (!strcmp((const char *)n->data.scalar.value, nulls[i]))
			return true;
	return false;
}

/* The index of the `clients:` sequence of doc (made when absent or empty), or 0 with the
 * problem printed. Indexes, not pointers: adding a node may move every node. */
static int clients_seq(yaml_document_t *doc, const char *path)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		fprintf(stderr, "bulwarkctl: %s: expected a mapping with one key, clients:; not "
				"changing it\n", path);
		return 0;
	}
	int root_index = (int)(root - doc->nodes.start) + 1;
	yaml_node_pair_t *p;
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++)
		if (scalar_is(doc, p->key, "clients"))
			break;
	if (p < root->data.mapping.pairs.top) {
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (v && v->type == YAML_SEQUENCE_NODE)
			return p->value;
		if (!v || !is_null(v)) {
			fprintf(stderr, "bulwarkctl: %s: clients: is not a list; not changing it\n",
				path);
			return 0;
		}
		size_t at = (size_t)(p - root->data.mapping.pairs.start);
		int seq = yaml_document_add_sequence(doc, NULL, YAML_BLOCK_SEQUENCE_STYLE);
		if (seq)
			yaml_document_get_node(doc, root_index)->data.mapping.pairs.start[at].value = seq;
		return seq;
	}
	int key = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"clients", -1,
					   YAML_PLAIN_SCALAR_STYLE);
	int seq = yaml_document_add_sequence(doc, NULL, YAML_BLOCK_SEQUENCE_STYLE);
	if (!key || !seq || !yaml_document_append_mapping_pair(doc, root_index, key, seq))
		return 0;
	return seq;
}

static int add_pair(yaml_document_t *doc, int map, const char *k, int value)
{
	int key = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)k, -1, YAML_PLAIN_SCALAR_STYLE);
	return key && value && yaml_document_append_mapping_pair(doc, map, key, value) ? 0 : -1;
}

static int add_str(yaml_document_t *doc, const char *s)
{
	return yaml_document_add_scalar(doc, NULL, (yaml_char_t *)s, -1, YAML_ANY_SCALAR_STYLE);
}

/* {name, match: ["id:ID", nets...], profile} appended to the sequence seq. */
static int append_entry(yaml_document_t *doc, int seq, const struct ctl_entry *e)
{
	char id[8 + BW_CLIENT_ID_MAX];
	snprintf(id, sizeof(id), "id:%s", e->id);
	int map = yaml_document_add_mapping(doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	int match = yaml_document_add_sequence(doc, NULL, YAML_FLOW_SEQUENCE_STYLE);
	if (!map || !match || add_pair(doc, map, "name", add_str(doc, e->name)) ||
	    add_pair(doc, map, "match", match) ||
	    !yaml_document_append_sequence_item(doc, match, add_str(doc, id)))
		return -1;
	for (size_t i = 0; i < e->n_nets; i++)
		if (!yaml_document_append_sequence_item(doc, match, add_str(doc, e->nets[i])))
			return -1;
	if (e->profile && add_pair(doc, map, "profile", add_str(doc, e->profile)))
		return -1;
	return yaml_document_append_sequence_item(doc, seq, map) ? 0 : -1;
}

/* Drops the entry named name from the sequence seq (its nodes are left unreachable: the
 * emitter writes only what the root reaches). 0, or -1 when there is none. */
static int remove_entry(yaml_document_t *doc, int seq, const char *name)
{
	yaml_node_t *s = yaml_document_get_node(doc, seq);
	yaml_node_item_t *items = s->data.sequence.items.start;
	size_t n = (size_t)(s->data.sequence.items.top - items);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = yaml_document_get_node(doc, items[i]);
		if (!m || m->type != YAML_MAPPING_NODE)
			continue;
		for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
		     p++) {
			if (scalar_is(doc, p->key, "name") && scalar_is(doc, p->value, name)) {
				memmove(items + i, items + i + 1, (n - i - 1) * sizeof(*items));
				s->data.sequence.items.top--;
				return 0;
			}
		}
	}
	return -1;
}

/* The old file's document, or a new one when there is none (or it is empty). */
static int load_document(const struct old_file *old, const char *path, yaml_document_t *doc)
{
	if (!old->exists)
		return new_document(doc) ? 1 : 0;
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)old->bytes, old->len);
	int rc = 0;
	if (!yaml_parser_load(&parser, doc)) {
		fprintf(stderr, "bulwarkctl: %s:%zu:%zu: %s; not changing it\n", path,
			parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			parser.problem ? parser.problem : "invalid YAML");
		rc = 1;
	} else if (!yaml_document_get_root_node(doc) ||
		   is_null(yaml_document_get_root_node(doc))) {
		yaml_document_delete(doc);
		rc = new_document(doc) ? 1 : 0;
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- writing ---- */

/* Who should own a new clients file: the config's owner, and the group the daemon runs as
 * (server.group, else server.user's group, else the packaged user's), so that the daemon,
 * which reloads without root, can read it. */
static void new_owner(const struct bw_conf *conf, const char *config_path, uid_t *uid,
		      gid_t *gid)
{
	struct stat st;
	*uid = getuid(), *gid = getgid();
	if (stat(config_path, &st) == 0)
		*uid = st.st_uid, *gid = st.st_gid;
	const char *user = conf->server.user ? conf->server.user : BW_CONF_DEFAULT_USER;
	struct group *g = conf->server.group ? getgrnam(conf->server.group) : NULL;
	struct passwd *pw = g ? NULL : getpwnam(user);
	if (g)
		*gid = g->gr_gid;
	else if (pw)
		*gid = pw->pw_gid;
}

struct writer {
	yaml_document_t *doc;     /* emitted (and freed), or NULL: write raw */
	const char *raw;
	size_t raw_len;
};

static int fill(FILE *f, struct writer *w)
{
	if (!w->doc)
		return fwrite(w->raw, 1, w->raw_len, f) == w->raw_len ? 0 : -1;
	yaml_emitter_t em;
	if (!yaml_emitter_initialize(&em)) {
		yaml_document_delete(w->doc);
		return -1;
	}
	fputs(header, f);
	yaml_emitter_set_output_file(&em, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	int ok = yaml_emitter_open(&em) && yaml_emitter_dump(&em, w->doc) &&
		 yaml_emitter_close(&em) && yaml_emitter_flush(&em);
	if (!ok)
		fprintf(stderr, "bulwarkctl: cannot write YAML: %s\n",
			em.problem ? em.problem : "?");
	yaml_emitter_delete(&em); /* the dump freed the document */
	w->doc = NULL;
	return ok ? 0 : -1;
}

/* path replaced by what w writes: a temporary file beside it, fsync, rename, fsync of the
 * directory (dirfd). */
static int replace(const char *path, int dirfd, uid_t uid, gid_t gid, mode_t mode,
		   struct writer *w)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 8);
	if (!tmp)
		return 1;
	memcpy(tmp, path, n);
	memcpy(tmp + n, ".XXXXXX", 8);
	int fd = mkostemp(tmp, O_CLOEXEC);
	FILE *f = NULL;
	if (fd < 0) {
		fprintf(stderr, "bulwarkctl: cannot create a file beside %s: %s\n", path,
			strerror(errno));
		free(tmp);
		return 1;
	}
	if (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w")))
		goto fail;
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_uid != uid || st.st_gid != gid) &&
	    fchown(fd, uid, gid) != 0)
		fprintf(stderr, "bulwarkctl: warning: cannot give %s to uid %u gid %u (%s): the "
				"daemon may not be able to read it\n",
			path, (unsigned)uid, (unsigned)gid, strerror(errno));
	if (fill(f, w) || fflush(f) != 0 || fsync(fd) != 0)
		goto fail;
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	if (rename(tmp, path) != 0)
		goto fail_closed;
	fsync(dirfd);
	free(tmp);
	return 0;
fail:
	if (f)
		fclose(f);
	else
		close(fd);
fail_closed:
	fprintf(stderr, "bulwarkctl: cannot write %s: %s\n", path, strerror(errno));
	if (w->doc)
		yaml_document_delete(w->doc);
	unlink(tmp);
	free(tmp);
	return 1;
}

/* The directory of path, opened and locked against another bulwarkctl: the fd, or -1. */
static int lock_dir(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		fprintf(stderr, "bulwarkctl: cannot open the directory %s: %s\n", dir,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The config loads with the new file; else the old one is put back (or the new one
 * removed, when there was none). 0, or 1 with the reason printed. */
static int check_or_restore(const char *config_path, const char *path, int dirfd,
			    struct old_file *old)
{
	char err[1024];
	struct bw_conf *conf = NULL;
	if (bw_conf_load(config_path, &conf, err, sizeof(err)) == 0) {
		bw_conf_free(conf);
		return 0;
	}
	fprintf(stderr, "bulwarkctl: the config does not load with the changed clients file: "
			"%s\n", err);
	if (!old->exists) {
		unlink(path);
		fprintf(stderr, "bulwarkctl: %s removed again\n", path);
		return 1;
	}
	struct writer w = {.raw = old->bytes, .raw_len = old->len};
	if (replace(path, dirfd, old->st.st_uid, old->st.st_gid, old->st.st_mode & 07777, &w) == 0)
		fprintf(stderr, "bulwarkctl: %s put back as it was\n", path);
	return 1;
}

/* The clients-file the config names, resolved as the loader does (relative to the
 * config's directory): a heap string, or NULL when it names none (or cannot be read). */
static char *named_file(const char *config_path)
{
	FILE *f = fopen(config_path, "rb");
	yaml_parser_t parser;
	yaml_document_t doc;
	char *out = NULL;
	if (!f)
		return NULL;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return NULL;
	}
	yaml_parser_set_input_file(&parser, f);
	if (yaml_parser_load(&parser, &doc)) {
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		for (yaml_node_pair_t *p = root && root->type == YAML_MAPPING_NODE
					       ? root->data.mapping.pairs.start
					       : NULL;
		     p && p < root->data.mapping.pairs.top; p++) {
			yaml_node_t *v = yaml_document_get_node(&doc, p->value);
			if (!scalar_is(&doc, p->key, "clients-file") || v->type != YAML_SCALAR_NODE ||
			    !v->data.scalar.length)
				continue;
			const char *name = (const char *)v->data.scalar.value, *slash;
			slash = strrchr(config_path, '/');
			int dl = name[0] == '/' || !slash ? 0 : (int)(slash - config_path + 1);
			if (asprintf(&out, "%.*s%s", dl, config_path, name) < 0)
				out = NULL;
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return out;
}

char *ctl_clients_file_create(const char *config_path)
{
	char *path = named_file(config_path);
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640) : -1;
	if (fd < 0) {
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

int ctl_clients_file_edit(const struct bw_conf *conf, const char *config_path,
			  const struct ctl_entry *e, const char *remove)
{
	const char *path = conf->clients.file;
	struct old_file old;
	yaml_document_t doc;
	int dirfd = lock_dir(path), rc = 1;
	if (dirfd < 0)
		return 1;
	if (read_old(path, &old) || load_document(&old, path, &doc))
		goto out;
	int seq = clients_seq(&doc, path);
	if (!seq || (e && append_entry(&doc, seq, e))) {
		if (seq)
			fputs("bulwarkctl: out of memory\n", stderr);
		yaml_document_delete(&doc);
		goto out;
	}
	if (remove && remove_entry(&doc, seq, remove)) {
		fprintf(stderr, "bulwarkctl: no client named '%s' in %s\n", remove, path);
		yaml_document_delete(&doc);
		goto out;
	}
	uid_t uid;
	gid_t gid;
	if (old.exists && old.len) /* not ctl_clients_file_create's empty file */
		uid = old.st.st_uid, gid = old.st.st_gid;
	else
		new_owner(conf, config_path, &uid, &gid);
	struct writer w = {.doc = &doc};
	if (replace(path, dirfd, uid, gid, 0640, &w))
		goto out;
	rc = check_or_restore(config_path, path, dirfd, &old);
out:
	free(old.bytes);
	close(dirfd); /* and the lock with it */
	return rc;
}
