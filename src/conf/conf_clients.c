/*
 * conf/conf_clients.c - named clients: the top-level `clients:` list and the clients file
 * (`clients-file:`, the list `bulwarkctl client add` keeps). Each entry names a client or a
 * group, says how its queries are recognised (addresses and networks, ClientIDs, MAC
 * addresses) and what they get (a profile, a schedule of profiles, extra allowlist and
 * feeds). Group references and profile names are resolved once the whole config is read
 * (cf_clients_finish); a client with its own lists gets a derived profile, PROFILE+NAME,
 * so that the per-query choice stays one profile index (docs/config.md "Clients").
 */
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "conf/internal.h"

#define MAX_SCHEDULE 16

/* What one entry wrote that can only be resolved at the end: names of a group and of
 * profiles, with where they were written (path + mark) for the messages. */
struct cf_client_raw {
	const char *path;
	yaml_mark_t mark; /* the entry */
	char *group;
	yaml_mark_t group_mark;
	char *profile;
	yaml_mark_t profile_mark;
	struct {
		char *profile;
		yaml_mark_t mark;
		uint8_t days;
		uint16_t from, to;
	} sched[MAX_SCHEDULE];
	size_t n_sched;
	bool has_sched;
	/* resolved (indexes): profiles as written, whose schedule and lists apply */
	int base_profile, sched_profile[MAX_SCHEDULE], sched_owner, list_owner;
	int state; /* resolution: 0 not yet, 1 in progress (cycle check), 2 done */
};

static int fail_raw(struct cf_ctx *c, const struct cf_client_raw *r, const yaml_mark_t *m,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_raw(struct cf_ctx *c, const struct cf_client_raw *r, const yaml_mark_t *m,
		    const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *saved = c->path;
	c->path = r->path;
	int rc = cf_fail_mark(c, m, "%s", msg);
	c->path = saved;
	return rc == BW_EMALFORMED ? BW_EINVAL : rc;
}

const char *bw_conf_client_name_problem(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > BW_CLIENT_NAME_MAX)
		return "must be 1 to 64 bytes long";
	if (s[0] == ' ' || s[n - 1] == ' ')
		return "must not start or end with a space";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' || ch == '/')
			return "must not hold control characters, quotes, '\\' or '/'";
	}
	return NULL;
}

/* A ClientID: one DNS label of letters, digits and '-', stored lower-case. */
static char *parse_id(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > BW_CLIENT_ID_MAX || s[0] == '-' || s[n - 1] == '-')
		return NULL;
	char *id = malloc(n + 1);
	if (!id)
		return NULL;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i < n && !isalnum(ch) && ch != '-') {
			free(id);
			return NULL;
		}
		id[i] = (char)tolower(ch);
	}
	return id;
}

static bool parse_mac(const char *s, uint8_t out[6])
{
	unsigned v[6];
	char sep[5], end;
	if (strlen(s) != 17 ||
	    sscanf(s, "%2x%c%2x%c%2x%c%2x%c%2x%c%2x%c", &v[0], &sep[0], &v[1], &sep[1], &v[2],
		   &sep[2], &v[3], &sep[3], &v[4], &sep[4], &v[5], &end) != 11)
		return false;
	for (int i = 0; i < 5; i++)
		if (sep[i] != ':' && sep[i] != '-')
			return false;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[3 * i]) || !isxdigit((unsigned char)s[3 * i + 1]))
			return false;
		out[i] = (uint8_t)v[i];
	}
	return true;
}

static int parse_match(struct cf_ctx *c, yaml_node_t *seq, struct bw_client_conf *cl)
{
	int rc;
	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "match")))
		return rc;
	size_t n = cf_seq_len(seq);
	if (!n)
		return cf_fail_at(c, seq, BW_EINVAL, "client '%s': 'match' is empty", cl->name);
	if (!(cl->nets = calloc(n, sizeof(*cl->nets))) || !(cl->ids = calloc(n, sizeof(char *))) ||
	    !(cl->macs = calloc(n, sizeof(*cl->macs))))
		return cf_nomem(c);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v = cf_seq_item(c, seq, i);
		const char *s;
		if ((rc = cf_want_scalar(c, v, "match", &s)))
			return rc;
		if (!strncmp(s, "id:", 3)) {
			if (cl->n_ids == 255)
				return cf_fail_at(c, v, BW_EINVAL,
						  "client '%s': at most 255 ClientIDs per client",
						  cl->name);
			if (!(cl->ids[cl->n_ids] = parse_id(s + 3)))
				return cf_fail_at(c, v, BW_EINVAL,
						  "client '%s': invalid ClientID '%s' (1 to 63 "
						  "letters, digits and '-', not first or last)",
						  cl->name, s + 3);
			cl->n_ids++;
		} else if (!strncmp(s, "mac:", 4)) {
			if (!parse_mac(s + 4, cl->macs[cl->n_macs]))
				return cf_fail_at(c, v, BW_EINVAL,
						  "client '%s': invalid MAC address '%s' (expected "
						  "six hex pairs, e.g. mac:02:00:5e:10:00:01)",
						  cl->name, s + 4);
			cl->n_macs++;
		} else {
			if (cf_parse_cidr(s, &cl->nets[cl->n_nets]))
				return cf_fail_at(c, v, BW_EINVAL,
						  "client '%s': '%s' is not an address, a network "
						  "(192.168.1.0/24), id:CLIENTID or mac:MAC",
						  cl->name, s);
			cl->n_nets++;
		}
	}
	return 0;
}

/* "HH:MM" -> minutes; "24:00" is the end of the day. */
static bool parse_hhmm(const char *s, uint16_t *out)
{
	unsigned h, m;
	char end;
	if (strlen(s) != 5 || s[2] != ':' || sscanf(s, "%2u:%2u%c", &h, &m, &end) != 2 ||
	    !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[3]) || m > 59 ||
	    h > 24 || (h == 24 && m))
		return false;
	*out = (uint16_t)(h * 60 + m);
	return true;
}

static int day_index(const char *s)
{
	static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	for (int i = 0; i < 7; i++)
		if (!strcasecmp(s, days[i]))
			return i;
	return -1;
}

/* One item of `days`: a day (mon), a range (mon-fri), weekdays, weekend or daily. */
static bool parse_days(const char *s, uint8_t *days)
{
	if (!strcasecmp(s, "daily")) {
		*days |= 0x7f;
		return true;
	}
	if (!strcasecmp(s, "weekdays")) {
		*days |= 0x1f;
		return true;
	}
	if (!strcasecmp(s, "weekend")) {
		*days |= 0x60;
		return true;
	}
	char a[4], b[4];
	if (strlen(s) == 3) {
		int d = day_index(s);
		if (d < 0)
			return false;
		*days |= (uint8_t)(1u << d);
		return true;
	}
	if (strlen(s) != 7 || s[3] != '-')
		return false;
	memcpy(a, s, 3), a[3] = 0;
	memcpy(b, s + 4, 3), b[3] = 0;
	int from = day_index(a), to = day_index(b);
	if (from < 0 || to < 0)
		return false;
	for (int d = from;; d = (d + 1) % 7) {
		*days |= (uint8_t)(1u << d);
		if (d == to)
			break;
	}
	return true;
}

static int parse_schedule_item(struct cf_ctx *c, yaml_node_t *m, const char *who,
			       struct cf_client_raw *r)
{
	static const char *const keys[] = {"profile", "days", "from", "to", NULL};
	yaml_node_t *v;
	const char *s;
	int rc;
	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "schedule item")) ||
	    (rc = cf_check_keys(c, m, "clients item's schedule item", keys)))
		return rc;
	size_t k = r->n_sched;
	if ((rc = cf_need(c, m, "profile", "schedule item", &v)) ||
	    (rc = cf_want_scalar(c, v, "profile", &s)))
		return rc;
	if (!(r->sched[k].profile = strdup(s)))
		return cf_nomem(c);
	r->sched[k].mark = v->start_mark;
	r->n_sched++;
	r->sched[k].days = 0x7f;
	if ((v = cf_get(c, m, "days"))) {
		r->sched[k].days = 0;
		bool seq = v->type == YAML_SEQUENCE_NODE;
		size_t n = seq ? cf_seq_len(v) : 1;
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *d = seq ? cf_seq_item(c, v, i) : v;
			if ((rc = cf_want_scalar(c, d, "days", &s)))
				return rc;
			if (!parse_days(s, &r->sched[k].days))
				return cf_fail_at(c, d, BW_EINVAL,
						  "client '%s': '%s' is not a day (mon ... sun, a "
						  "range mon-fri, weekdays, weekend or daily)",
						  who, s);
		}
	}
	uint16_t *t[2] = {&r->sched[k].from, &r->sched[k].to};
	const char *tk[2] = {"from", "to"};
	for (int i = 0; i < 2; i++) {
		*t[i] = (uint16_t)(i ? 24 * 60 : 0);
		if (!(v = cf_get(c, m, tk[i])))
			continue;
		if ((rc = cf_want_scalar(c, v, tk[i], &s)))
			return rc;
		if (!parse_hhmm(s, t[i]))
			return cf_fail_at(c, v, BW_EINVAL,
					  "client '%s': %s '%s' is not a time of day (HH:MM, "
					  "quoted, e.g. \"08:30\")",
					  who, tk[i], s);
	}
	if (r->sched[k].from == r->sched[k].to)
		return cf_fail_at(c, m, BW_EINVAL,
				  "client '%s': a schedule item's 'from' and 'to' are the same time",
				  who);
	return 0;
}

static int parse_entry(struct cf_ctx *c, yaml_node_t *m, struct bw_client_conf *cl,
		       struct cf_client_raw *r)
{
	static const char *const keys[] = {"name",	"match", "profile",    "group", "schedule",
					   "allowlist", "feeds", "rate-limit", NULL};
	yaml_node_t *v;
	const char *s, *why;
	int rc;
	if (m->type != YAML_MAPPING_NODE)
		return cf_fail_at(c, m, BW_EINVAL,
				  "expected a mapping for each client (name:, match:, profile:), "
				  "found %s",
				  cf_type_name(m->type));
	if ((rc = cf_check_keys(c, m, "clients item", keys)))
		return rc;
	r->path = c->path;
	r->mark = m->start_mark;
	cl->group = -1;
	cl->profile = -1;
	if ((rc = cf_need(c, m, "name", "clients item", &v)) ||
	    (rc = cf_get_string(c, v, "name", &cl->name)))
		return rc;
	if ((why = bw_conf_client_name_problem(cl->name)))
		return cf_fail_at(c, v, BW_EINVAL, "client name '%s' %s", cl->name, why);
	if ((v = cf_get(c, m, "match")) && (rc = parse_match(c, v, cl)))
		return rc;
	if ((v = cf_get(c, m, "group"))) {
		if ((rc = cf_want_scalar(c, v, "group", &s)))
			return rc;
		if (!(r->group = strdup(s)))
			return cf_nomem(c);
		r->group_mark = v->start_mark;
	}
	if ((v = cf_get(c, m, "profile"))) {
		if ((rc = cf_want_scalar(c, v, "profile", &s)))
			return rc;
		if (!(r->profile = strdup(s)))
			return cf_nomem(c);
		r->profile_mark = v->start_mark;
	}
	if ((v = cf_get(c, m, "schedule"))) {
		if ((rc = cf_want_type(c, v, YAML_SEQUENCE_NODE, "schedule")))
			return rc;
		if (cf_seq_len(v) > MAX_SCHEDULE)
			return cf_fail_at(c, v, BW_EINVAL, "client '%s': at most %d schedule items",
					  cl->name, MAX_SCHEDULE);
		r->has_sched = true;
		for (size_t i = 0; i < cf_seq_len(v); i++)
			if ((rc = parse_schedule_item(c, cf_seq_item(c, v, i), cl->name, r)))
				return rc;
	}
	char owner[BW_CLIENT_NAME_MAX + 16];
	snprintf(owner, sizeof(owner), "client '%s': ", cl->name);
	if ((v = cf_get(c, m, "allowlist")) &&
	    (rc = cf_parse_names(c, v, owner, &cl->allowlist, &cl->n_allowlist)))
		return rc;
	if ((v = cf_get(c, m, "feeds"))) {
		if ((rc = cf_want_type(c, v, YAML_SEQUENCE_NODE, "feeds")))
			return rc;
		size_t n = cf_seq_len(v);
		if (n && !(cl->feeds = calloc(n, sizeof(char *))))
			return cf_nomem(c);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *f = cf_seq_item(c, v, i);
			if ((rc = cf_want_scalar(c, f, "feeds", &s)))
				return rc;
			size_t k = 0;
			while (k < c->conf->policy.n_feeds && strcmp(c->conf->policy.feeds[k].name, s))
				k++;
			if (k == c->conf->policy.n_feeds)
				return cf_fail_at(c, f, BW_EINVAL,
						  "client '%s': no feed named '%s' in policy.feeds",
						  cl->name, s);
			if (!(cl->feeds[i] = strdup(s)))
				return cf_nomem(c);
			cl->n_feeds = i + 1;
		}
	}
	if ((v = cf_get(c, m, "rate-limit")) &&
	    (rc = cf_parse_rate(c, v, "clients item's rate-limit", &cl->rate)))
		return rc;
	if (!cl->n_nets && !cl->n_ids && !cl->n_macs && !r->profile && !r->has_sched &&
	    !cl->n_allowlist && !cl->n_feeds && !cl->rate.given)
		return cf_fail_at(c, m, BW_EINVAL,
				  "client '%s' neither matches queries nor gives anything to a "
				  "group (add match:, profile: or schedule:)",
				  cl->name);
	return 0;
}

/* Appends the entries of a sequence to conf->clients (c->path and c->doc are the file
 * the sequence is in). */
static int parse_list(struct cf_ctx *c, yaml_node_t *seq)
{
	struct bw_conf *conf = c->conf;
	int rc;
	if ((rc = cf_want_type(c, seq, YAML_SEQUENCE_NODE, "clients")))
		return rc;
	size_t n = cf_seq_len(seq), base = conf->clients.n;
	if (!n)
		return 0;
	struct bw_client_conf *list = realloc(conf->clients.list, (base + n) * sizeof(*list));
	if (!list)
		return cf_nomem(c);
	conf->clients.list = list;
	struct cf_client_raw *raw = realloc(c->clients_raw, (base + n) * sizeof(*raw));
	if (!raw)
		return cf_nomem(c);
	c->clients_raw = raw;
	memset(list + base, 0, n * sizeof(*list));
	memset(raw + base, 0, n * sizeof(*raw));
	c->n_clients_raw = base + n;
	for (size_t i = 0; i < n; i++) {
		conf->clients.n = base + i + 1;
		if ((rc = parse_entry(c, cf_seq_item(c, seq, i), &list[base + i], &raw[base + i])))
			return rc;
	}
	return 0;
}

int cf_parse_clients(struct cf_ctx *c, yaml_node_t *seq)
{
	int rc = parse_list(c, seq);
	c->conf->clients.n_inline = c->conf->clients.n;
	return rc;
}

/* The clients file: a YAML mapping with one key, `clients:`, a list as in the config. */
static int load_file(struct cf_ctx *c)
{
	const char *path = c->conf->clients.file;
	struct cf_ctx fc = *c;
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;

	fc.path = path;
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT && !c->clients_file_given)
			return 0; /* the default file: none yet */
		return cf_fail_at(&fc, NULL, BW_EIO, "cannot open the clients file: %s",
				  strerror(errno));
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return cf_nomem(c);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = cf_fail_mark(&fc, &parser.problem_mark, "%s",
				  parser.problem ? parser.problem : "invalid YAML");
		goto out;
	}
	fc.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && !cf_is_null(root)) {
		static const char *const keys[] = {"clients", NULL};
		if (root->type != YAML_MAPPING_NODE)
			rc = cf_fail_at(&fc, root, BW_EINVAL,
					"expected a mapping with one key, clients:, found %s",
					cf_type_name(root->type));
		else if (!(rc = cf_check_keys(&fc, root, "the clients file", keys))) {
			yaml_node_t *v = cf_get(&fc, root, "clients");
			if (v)
				rc = parse_list(&fc, v);
		}
	}
	c->clients_raw = fc.clients_raw;
	c->n_clients_raw = fc.n_clients_raw;
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

static int find_profile(struct cf_ctx *c, const struct cf_client_raw *r, const char *name,
			const yaml_mark_t *m, int *out)
{
	const struct bw_conf *conf = c->conf;
	for (size_t k = 0; k < conf->policy.n_profiles; k++)
		if (!strcmp(conf->policy.profiles[k].name, name)) {
			*out = (int)k;
			return 0;
		}
	return fail_raw(c, r, m, "unknown profile '%s' (see policy.profiles)", name);
}

/* The profile that is `base` plus the lists of entry `owner`, made once per pair. */
struct derived {
	int base, owner, index;
};

static char **strv_cat(char *const *a, size_t na, char *const *b, size_t nb, size_t *n)
{
	char **v = calloc(na + nb ? na + nb : 1, sizeof(char *));
	if (!v)
		return NULL;
	*n = 0;
	for (size_t i = 0; i < na + nb; i++) {
		if (!(v[i] = strdup(i < na ? a[i] : b[i - na]))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	*n = na + nb;
	return v;
}

static int derive(struct cf_ctx *c, struct derived **dv, size_t *ndv, int base, int owner,
		  int *out)
{
	struct bw_conf *conf = c->conf;
	for (size_t i = 0; i < *ndv; i++)
		if ((*dv)[i].base == base && (*dv)[i].owner == owner) {
			*out = (*dv)[i].index;
			return 0;
		}
	const struct bw_client_conf *cl = &conf->clients.list[owner];
	if (conf->policy.n_profiles >= 255)
		return fail_raw(c, &c->clients_raw[owner], &c->clients_raw[owner].mark,
				"client '%s': too many profiles (at most 255, counting one per "
				"client or group with its own allowlist or feeds and profile)",
				cl->name);
	struct bw_profile_conf *ps =
	    realloc(conf->policy.profiles, (conf->policy.n_profiles + 1) * sizeof(*ps));
	struct derived *d = realloc(*dv, (*ndv + 1) * sizeof(*d));
	if (ps)
		conf->policy.profiles = ps;
	if (d)
		*dv = d;
	if (!ps || !d)
		return cf_nomem(c);
	const struct bw_profile_conf *b = &conf->policy.profiles[base];
	struct bw_profile_conf *p = &conf->policy.profiles[conf->policy.n_profiles];
	memset(p, 0, sizeof(*p));
	conf->policy.n_profiles++;
	char name[NAME_MAX_LEN * 2 + 2];
	size_t at = (size_t)snprintf(name, sizeof(name), "%s+", b->name);
	for (const char *s = cl->name; *s && at + 1 < sizeof(name); s++)
		name[at++] = isalnum((unsigned char)*s) || strchr("_.-", *s) ? *s : '_';
	name[at] = 0;
	p->all_feeds = b->all_feeds;
	if (!(p->name = strdup(name)) ||
	    !(p->categories = strv_cat(b->categories, b->n_categories, NULL, 0, &p->n_categories)) ||
	    !(p->feeds = strv_cat(b->feeds, b->n_feeds, cl->feeds, cl->n_feeds, &p->n_feeds)) ||
	    !(p->allowlist = strv_cat(b->allowlist, b->n_allowlist, cl->allowlist,
				      cl->n_allowlist, &p->n_allowlist)))
		return cf_nomem(c);
	int *ga = conf->guard.nseen_profile_action;
	if (ga) {
		int *g = realloc(ga, conf->policy.n_profiles * sizeof(int));
		if (!g)
			return cf_nomem(c);
		g[conf->policy.n_profiles - 1] = g[base];
		conf->guard.nseen_profile_action = g;
	}
	(*dv)[*ndv] = (struct derived){base, owner, (int)conf->policy.n_profiles - 1};
	++*ndv;
	*out = (int)conf->policy.n_profiles - 1;
	return 0;
}

/* Resolves entry i, its group first: the base profile and schedule (its own, else its
 * group's), whose lists apply (its own, else its group's), then the final profiles (a
 * derived one where lists apply; members of a group share the group's). */
static int resolve(struct cf_ctx *c, size_t i, struct derived **dv, size_t *ndv)
{
	struct bw_conf *conf = c->conf;
	struct cf_client_raw *r = &c->clients_raw[i];
	struct bw_client_conf *cl = &conf->clients.list[i];
	const struct cf_client_raw *gr = NULL;
	int rc;
	if (r->state == 2)
		return 0;
	if (r->state == 1)
		return fail_raw(c, r, &r->group_mark, "client '%s': its groups form a loop",
				cl->name);
	r->state = 1;
	if (r->group) {
		size_t k = 0;
		while (k < conf->clients.n && strcmp(conf->clients.list[k].name, r->group))
			k++;
		if (k == conf->clients.n)
			return fail_raw(c, r, &r->group_mark,
					"client '%s': no client or group named '%s'", cl->name,
					r->group);
		if ((rc = resolve(c, k, dv, ndv)))
			return rc;
		cl->group = (int)k;
		gr = &c->clients_raw[k];
	}
	r->base_profile = gr ? gr->base_profile : -1;
	if (r->profile && (rc = find_profile(c, r, r->profile, &r->profile_mark, &r->base_profile)))
		return rc;
	for (size_t k = 0; k < r->n_sched; k++)
		if ((rc = find_profile(c, r, r->sched[k].profile, &r->sched[k].mark,
				       &r->sched_profile[k])))
			return rc;
	r->sched_owner = r->has_sched ? (int)i : gr ? gr->sched_owner : -1;
	if (!cl->rate.given && cl->group >= 0)
		cl->rate = conf->clients.list[cl->group].rate;
	r->list_owner = cl->n_allowlist || cl->n_feeds ? (int)i : gr ? gr->list_owner : -1;

	const struct cf_client_raw *so = r->sched_owner >= 0 ? &c->clients_raw[r->sched_owner] : NULL;
	if (so && so->n_sched) {
		if (!(cl->schedule = calloc(so->n_sched, sizeof(*cl->schedule))))
			return cf_nomem(c);
		cl->n_schedule = so->n_sched;
		for (size_t k = 0; k < so->n_sched; k++)
			cl->schedule[k] = (struct bw_client_schedule){
			    .days = so->sched[k].days, .from = so->sched[k].from,
			    .to = so->sched[k].to, .profile = so->sched_profile[k]};
	}
	cl->profile = r->base_profile;
	if (r->list_owner >= 0) {
		if (cl->profile < 0 && !cl->n_schedule)
			return fail_raw(c, r, &r->mark,
					"client '%s': an allowlist or feeds needs a profile (or a "
					"schedule) to add to",
					cl->name);
		if (cl->profile >= 0 &&
		    (rc = derive(c, dv, ndv, cl->profile, r->list_owner, &cl->profile)))
			return rc;
		for (size_t k = 0; k < cl->n_schedule; k++)
			if ((rc = derive(c, dv, ndv, cl->schedule[k].profile, r->list_owner,
					 &cl->schedule[k].profile)))
				return rc;
	}
	r->state = 2;
	return 0;
}

/* Duplicate names and ClientIDs: sorted, so 10,000 clients cost n log n, not n^2. */
struct str_ref {
	const char *s;
	size_t entry;
};
static int ref_cmp(const void *a, const void *b)
{
	const struct str_ref *x = a, *y = b;
	int d = strcmp(x->s, y->s);
	return d ? d : (x->entry > y->entry) - (x->entry < y->entry);
}

/* ids: check the ClientIDs, else the names. Reported at the later entry of a pair. */
static int check_unique(struct cf_ctx *c, bool ids)
{
	const struct bw_conf *conf = c->conf;
	size_t n = 0;
	for (size_t i = 0; i < conf->clients.n; i++)
		n += ids ? conf->clients.list[i].n_ids : 1;
	if (n < 2)
		return 0;
	struct str_ref *v = malloc(n * sizeof(*v));
	if (!v)
		return cf_nomem(c);
	n = 0;
	for (size_t i = 0; i < conf->clients.n; i++) {
		const struct bw_client_conf *cl = &conf->clients.list[i];
		if (!ids)
			v[n++] = (struct str_ref){cl->name, i};
		for (size_t k = 0; ids && k < cl->n_ids; k++)
			v[n++] = (struct str_ref){cl->ids[k], i};
	}
	qsort(v, n, sizeof(*v), ref_cmp);
	int rc = 0;
	for (size_t i = 1; i < n && !rc; i++) {
		if (strcmp(v[i].s, v[i - 1].s))
			continue;
		size_t a = v[i - 1].entry, b = v[i].entry;
		const struct cf_client_raw *r = &c->clients_raw[b];
		if (ids)
			rc = fail_raw(c, r, &r->mark, "client '%s': ClientID '%s' is already client '%s''s",
				      conf->clients.list[b].name, v[i].s, conf->clients.list[a].name);
		else
			rc = fail_raw(c, r, &r->mark, "duplicate client name '%s'", v[i].s);
	}
	free(v);
	return rc;
}

int cf_clients_finish(struct cf_ctx *c)
{
	struct bw_conf *conf = c->conf;
	int rc;
	if (!conf->clients.file) {
		/* default: clients.yaml beside the config */
		size_t dl = c->dir ? strlen(c->dir) : 0;
		if (!(conf->clients.file = malloc(dl + sizeof("clients.yaml"))))
			return cf_nomem(c);
		memcpy(conf->clients.file, c->dir ? c->dir : "", dl);
		memcpy(conf->clients.file + dl, "clients.yaml", sizeof("clients.yaml"));
	}
	if ((rc = load_file(c)))
		return rc;
	if ((rc = check_unique(c, false)) || (rc = check_unique(c, true)))
		return rc;
	struct derived *dv = NULL;
	size_t ndv = 0;
	for (size_t i = 0; i < conf->clients.n && !rc; i++)
		rc = resolve(c, i, &dv, &ndv);
	free(dv);
	return rc;
}

void cf_clients_free_raw(struct cf_ctx *c)
{
	for (size_t i = 0; c->clients_raw && i < c->n_clients_raw; i++) {
		struct cf_client_raw *r = &c->clients_raw[i];
		free(r->group);
		free(r->profile);
		for (size_t k = 0; k < r->n_sched; k++)
			free(r->sched[k].profile);
	}
	free(c->clients_raw);
	c->clients_raw = NULL;
	c->n_clients_raw = 0;
}

void cf_clients_free(struct bw_conf *conf)
{
	for (size_t i = 0; i < conf->clients.n; i++) {
		struct bw_client_conf *cl = &conf->clients.list[i];
		free(cl->name);
		free(cl->nets);
		for (size_t k = 0; k < cl->n_ids; k++)
			free(cl->ids[k]);
		free(cl->ids);
		free(cl->macs);
		free(cl->schedule);
		for (size_t k = 0; k < cl->n_allowlist; k++)
			free(cl->allowlist[k]);
		free(cl->allowlist);
		for (size_t k = 0; k < cl->n_feeds; k++)
			free(cl->feeds[k]);
		free(cl->feeds);
	}
	free(conf->clients.list);
	free(conf->clients.file);
}
