/*
 * conf/conf_local.c - the top-level keys of the names Bulwark answers itself:
 * `local-records` (name -> address or list of addresses), `local-records-file` (a hosts
 * file: ADDRESS NAME [NAME...], '#' comments) and `local-ttl`. The file is read here, at
 * every load (start, reload, --check-config), so a bad line stops the load with
 * `file:line: what is wrong` and a reload keeps the running records.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "conf/internal.h"

#define LOCAL_FILE_MAX_RECORDS 1000000 /* addresses in local-records-file */

void cf_local_defaults(struct bw_conf *conf)
{
	conf->local.ttl = 300;
}

void cf_free_local(struct bw_conf *conf)
{
	for (size_t i = 0; i < conf->local.n_records; i++)
		free(conf->local.records[i].name);
	free(conf->local.records);
	free(conf->local.file);
}

/* An IPv4 or IPv6 address into r; false when s is neither. */
static bool parse_addr(const char *s, struct bw_local_record *r)
{
	if (inet_pton(AF_INET, s, r->addr) == 1) {
		r->family = 4;
		return true;
	}
	if (inet_pton(AF_INET6, s, r->addr) == 1) {
		r->family = 6;
		return true;
	}
	return false;
}

/* Appends name -> r's address (the local module merges a name's records, drops
 * repeated addresses and keeps at most 32 per name). */
static int add_record(struct cf_ctx *c, size_t *cap, const char *name,
		      const struct bw_local_record *r)
{
	struct bw_conf *conf = c->conf;
	if (conf->local.n_records == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct bw_local_record *n = realloc(conf->local.records, ncap * sizeof(*n));
		if (!n)
			return cf_nomem(c);
		conf->local.records = n;
		*cap = ncap;
	}
	struct bw_local_record *d = &conf->local.records[conf->local.n_records];
	*d = *r;
	if (!(d->name = cf_canon_name(name)))
		return cf_nomem(c);
	conf->local.n_records++;
	return 0;
}

/* local-records: { nas.home.arpa: 192.168.1.10, printer.lan: [ 192.168.1.20, "fd00::20" ] } */
static int parse_records(struct cf_ctx *c, yaml_node_t *m, size_t *cap)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = cf_node(c, p->key), *v = cf_node(c, p->value);
		const char *name, *why;
		int rc;

		if ((rc = cf_want_scalar(c, k, "local-records", &name)))
			return rc;
		if ((why = cf_name_problem(name)))
			return cf_fail_at(c, k, BW_EINVAL, "local-records: name '%s' %s", name,
					  why);
		for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
			const char *o = cf_sval(cf_node(c, q->key));
			size_t a = strlen(o), b = strlen(name);
			a -= a && o[a - 1] == '.';
			b -= b && name[b - 1] == '.';
			if (a == b && !strncasecmp(o, name, a))
				return cf_fail_at(
				    c, k, BW_EINVAL,
				    "local-records: name '%s' is given twice (list its "
				    "addresses under one key)",
				    name);
		}
		if (cf_is_null(v))
			return cf_fail_at(c, k, BW_EINVAL, "local-records: '%s' needs an address",
					  name);
		size_t n = v->type == YAML_SEQUENCE_NODE ? cf_seq_len(v) : 1;
		if (v->type == YAML_SEQUENCE_NODE && !n)
			return cf_fail_at(c, v, BW_EINVAL, "local-records: '%s' lists no address",
					  name);
		if (v->type == YAML_MAPPING_NODE)
			return cf_fail_at(c, v, BW_EINVAL,
					  "local-records: '%s': expected an address or a list of "
					  "addresses, found a mapping",
					  name);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *a = v->type == YAML_SEQUENCE_NODE ? cf_seq_item(c, v, i) : v;
			struct bw_local_record r = {0};
			const char *s;
			if ((rc = cf_want_scalar(c, a, "local-records", &s)))
				return rc;
			if (!parse_addr(s, &r))
				return cf_fail_at(
				    c, a, BW_EINVAL,
				    "local-records: '%s' is not an IPv4 or IPv6 address "
				    "(for %s)",
				    s, name);
			if ((rc = add_record(c, cap, name, &r)))
				return rc;
		}
	}
	return 0;
}

/* local-records-file: `ADDRESS NAME [NAME...]` lines, '#' comments; errors `file:line:`. */
static int read_hosts(struct cf_ctx *c, yaml_node_t *v, size_t *cap)
{
	const char *path = c->conf->local.file;
	char line[4096];
	unsigned long lineno = 0;
	size_t from_file = 0;
	int rc = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return cf_fail_at(c, v, errno == ENOENT ? BW_ENOENT : BW_EIO,
				  "local-records-file: cannot read '%s': %s", path,
				  strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			rc = cf_fail_file(c, path, lineno, BW_EINVAL,
					  "line longer than %zu characters", sizeof(line) - 2);
			break;
		}
		line[strcspn(line, "#\r\n")] = 0;
		char *save = NULL, *addr = strtok_r(line, " \t", &save);
		if (!addr)
			continue;
		struct bw_local_record r = {.line = (unsigned)BW_MIN(lineno, UINT32_MAX)};
		if (!parse_addr(addr, &r)) {
			rc = cf_fail_file(c, path, lineno, BW_EINVAL,
					  "'%s' is not an IPv4 or IPv6 address (lines are ADDRESS "
					  "NAME [NAME...])",
					  addr);
			break;
		}
		char *name = strtok_r(NULL, " \t", &save);
		if (!name) {
			rc = cf_fail_file(c, path, lineno, BW_EINVAL, "no name after '%s'", addr);
			break;
		}
		for (; name && !rc; name = strtok_r(NULL, " \t", &save)) {
			const char *why = cf_name_problem(name);
			if (why) {
				rc = cf_fail_file(c, path, lineno, BW_EINVAL, "name '%s' %s", name,
						  why);
				break;
			}
			if (++from_file > LOCAL_FILE_MAX_RECORDS) {
				rc = cf_fail_file(c, path, lineno, BW_EINVAL,
						  "more than %d records", LOCAL_FILE_MAX_RECORDS);
				break;
			}
			rc = add_record(c, cap, name, &r);
		}
		if (rc)
			break;
	}
	if (!rc && ferror(f))
		rc = cf_fail_file(c, path, lineno + 1, BW_EIO, "read error");
	fclose(f);
	return rc;
}

int cf_parse_local(struct cf_ctx *c, yaml_node_t *root)
{
	struct bw_conf *conf = c->conf;
	yaml_node_t *v, *file;
	size_t cap = 0;
	int rc;

	if ((v = cf_get(c, root, "local-ttl")) &&
	    (rc = cf_get_duration_sec(c, v, "local-ttl", &conf->local.ttl)))
		return rc;
	if ((v = cf_get(c, root, "local-records")) &&
	    ((rc = cf_want_type(c, v, YAML_MAPPING_NODE, "local-records")) ||
	     (rc = parse_records(c, v, &cap))))
		return rc;
	if ((file = cf_get(c, root, "local-records-file")) &&
	    ((rc = cf_get_file(c, file, "local-records-file", "local-records-file",
			       &conf->local.file)) ||
	     (rc = read_hosts(c, file, &cap))))
		return rc;
	return 0;
}
