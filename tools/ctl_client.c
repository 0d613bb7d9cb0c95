/*
 * tools/ctl_client.c - `bulwarkctl client add|remove|list|setup`: named clients with a
 * ClientID (issue 18; docs/config.md "Clients"). These commands work on the config and the
 * clients file, not through the daemon: they need no running bulwark, and ask it to reload
 * afterwards when it runs (a removed ClientID stops working at that reload).
 * Every add and remove is written to syslog (authpriv.notice) with the acting user; the
 * ClientID never is.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl.h"

#define MAX_NETS 64

/* The config -c names (or the default): 0, or 1 with the loader's message printed. */
static int load(const struct ctl_opts *o, struct bw_conf **conf)
{
	char err[1024];
	const char *path = o->config ? o->config : BW_CONF_DEFAULT_PATH;
	if (bw_conf_load(path, conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 1;
	}
	return 0;
}

/* load(), but a clients-file the config names and that does not exist yet is made (empty)
 * first: *created, to remove if the add fails. */
static int load_for_add(const struct ctl_opts *o, struct bw_conf **conf, char **created)
{
	char err[1024];
	const char *path = o->config ? o->config : BW_CONF_DEFAULT_PATH;
	if (bw_conf_load(path, conf, err, sizeof(err)) == 0)
		return 0;
	if ((*created = ctl_clients_file_create(path)) &&
	    bw_conf_load(path, conf, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "bulwarkctl: %s\n", err);
	return 1;
}

static const struct bw_client_conf *find_client(const struct bw_conf *conf, const char *name,
						size_t *index)
{
	for (size_t i = 0; i < conf->clients.n; i++)
		if (!strcmp(conf->clients.list[i].name, name)) {
			if (index)
				*index = i;
			return &conf->clients.list[i];
		}
	return NULL;
}

void ctl_audit(const char *kind, const char *what, const char *name, const char *label,
	       const char *value)
{
	uid_t uid = getuid();
	struct passwd *pw = getpwuid(uid);
	const char *sudo = getenv("SUDO_USER");
	openlog("bulwarkctl", LOG_PID, LOG_AUTHPRIV);
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s %s: '%s'%s%s%s%s by uid %u (%s)%s%s", kind, what,
	       name, value ? " " : "", value ? label : "", value ? " " : "", value ? value : "",
	       (unsigned)uid, pw ? pw->pw_name : "?", sudo ? " via sudo from " : "",
	       sudo ? sudo : "");
	closelog();
}

/* syslog authpriv.notice: what was done to which client, by whom (never the ID). */
static void audit(const char *what, const char *name, const char *profile)
{
	ctl_audit("client", what, name, "profile", profile);
}

/* ---- asking the daemon to reload ---- */

/* The policy generation `status` reports, or 0. */
static unsigned long long generation(const char *sock, long timeout_s, bool *unreachable)
{
	json_t *r = ctl_request(sock, "status\n", timeout_s, unreachable), *row;
	unsigned long long g = 0;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(r, "result"), "rows"), i, row)
	{
		const char *k = json_string_value(json_array_get(row, 0));
		const char *v = json_string_value(json_array_get(row, 1));
		if (k && v && !strcmp(k, "policy") && sscanf(v, "policy generation %llu", &g) != 1)
			g = 0;
	}
	json_decref(r);
	return g;
}

/* When the daemon runs, asks it to reload and waits (up to 10 s) for a new policy
 * generation. Says what happened; true when it reloaded. */
static bool reload(const struct ctl_opts *o, const struct bw_conf *conf, bool quiet)
{
	const char *sock = o->socket ? o->socket : conf->server.control_socket;
	bool unreachable = false;
	unsigned long long g0 = generation(sock, o->timeout_s, &unreachable), g = g0;
	if (unreachable) {
		if (!quiet)
			printf("bulwark is not running (nothing answers on %s): the change applies "
			       "when it starts.\n", sock);
		return false;
	}
	json_t *r = ctl_request(sock, "reload\n", o->timeout_s, &unreachable);
	bool asked = json_is_true(json_object_get(r, "ok"));
	json_decref(r);
	if (!asked) {
		if (!quiet)
			printf("could not ask bulwark to reload: run `bulwarkctl reload` as root or "
			       "the daemon's user.\n");
		return false;
	}
	for (int i = 0; g == g0 && i < 100; i++) {
		nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
		g = generation(sock, o->timeout_s, &unreachable);
	}
	if (!quiet && g != g0)
		printf("bulwark reloaded (policy generation %llu): the change is in force.\n", g);
	else if (!quiet)
		printf("asked bulwark to reload, but it has not confirmed within 10s: see its "
		       "log (bulwarkctl reload retries).\n");
	return g != g0;
}

/* ---- add ---- */

static int check_add(const struct bw_conf *conf, const char *name, const char *profile,
		     char *const *nets, size_t n_nets)
{
	size_t i;
	if (find_client(conf, name, &i)) {
		fprintf(stderr, "bulwarkctl: a client named '%s' already exists (in %s)\n", name,
			i < conf->clients.n_inline ? conf->path : conf->clients.file);
		return 1;
	}
	for (i = 0; profile && i < conf->policy.n_profiles; i++)
		if (!strcmp(conf->policy.profiles[i].name, profile))
			break;
	if (profile && i == conf->policy.n_profiles) {
		fprintf(stderr, "bulwarkctl: unknown profile '%s' (profiles:", profile);
		for (i = 0; i < conf->policy.n_profiles; i++)
			if (!strchr(conf->policy.profiles[i].name, '+')) /* not a derived one */
				fprintf(stderr, " %s", conf->policy.profiles[i].name);
		fputs(")\n", stderr);
		return 1;
	}
	for (i = 0; i < n_nets; i++) {
		struct bw_cidr c;
		if (bw_cidr_parse(nets[i], strlen(nets[i]), &c) != 0) {
			fprintf(stderr, "bulwarkctl: --match '%s' is not an address or a network "
					"(192.0.2.7, 192.168.1.0/24, 2001:db8::/48)\n", nets[i]);
			return 1;
		}
	}
	return 0;
}

/* A new ClientID no client has yet (a collision of 128 random bits will not happen, but
 * the check costs nothing). */
static int new_id(const struct bw_conf *conf, char id[CTL_ID_LEN + 1])
{
	for (;;) {
		if (ctl_id_new(id) != 0) {
			perror("bulwarkctl: getrandom");
			return 1;
		}
		bool used = false;
		for (size_t i = 0; i < conf->clients.n; i++)
			for (size_t k = 0; k < conf->clients.list[i].n_ids; k++)
				used |= !strcmp(conf->clients.list[i].ids[k], id);
		if (!used)
			return 0;
	}
}

static int cmd_add(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"profile", required_argument, NULL, 'p'}, {"match", required_argument, NULL, 'm'},
		{"no-reload", no_argument, NULL, 'n'},     {"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	const char *profile = NULL;
	char *nets[MAX_NETS];
	size_t n_nets = 0;
	bool no_reload = false, json = o->json;
	int c;
	while ((c = getopt_long(argc, argv, "p:m:nj", opts, NULL)) != -1) {
		switch (c) {
		case 'p': profile = optarg; break;
		case 'm':
			if (n_nets == MAX_NETS) {
				fprintf(stderr, "bulwarkctl: at most %d --match\n", MAX_NETS);
				return 2;
			}
			nets[n_nets++] = optarg;
			break;
		case 'n': no_reload = true; break;
		case 'j': json = true; break;
		default: return 2;
		}
	}
	if (optind + 1 != argc) {
		fputs("bulwarkctl: usage: client add NAME [--profile P] [--match CIDR]... "
		      "[--no-reload]\n", stderr);
		return 2;
	}
	const char *name = argv[optind], *why = bw_conf_client_name_problem(name);
	if (why) {
		fprintf(stderr, "bulwarkctl: invalid client name: it %s\n", why);
		return 1;
	}
	struct bw_conf *conf = NULL;
	char id[CTL_ID_LEN + 1];
	char *created = NULL;
	int rc = load_for_add(o, &conf, &created);
	if (rc || (rc = check_add(conf, name, profile, nets, n_nets)) || (rc = new_id(conf, id)))
		goto out;
	struct ctl_entry e = {.name = name, .id = id, .profile = profile,
			      .nets = (const char *const *)nets, .n_nets = n_nets};
	if ((rc = ctl_clients_file_edit(conf, conf->path, &e, NULL)))
		goto out;
	audit("added", name, profile);
	if (json) {
		bool reloaded = !no_reload && reload(o, conf, true);
		json_t *j = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "id", id, "file",
				      conf->clients.file, "reloaded", reloaded);
		char *t = json_dumps(j, JSON_INDENT(2));
		printf("%s\n", t ? t : "{}");
		free(t), json_decref(j);
		goto out;
	}
	printf("Added client '%s' to %s.\nClientID: %s\n", name, conf->clients.file, id);
	printf("Set up the device: bulwarkctl client setup \"%s\"\n", name);
	if (!no_reload)
		reload(o, conf, false);
out:
	if (rc && created)
		unlink(created); /* nothing was added to the file made for it */
	free(created);
	bw_conf_free(conf);
	return rc;
}

/* ---- remove ---- */

static int cmd_remove(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"no-reload", no_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	bool no_reload = false, json = o->json;
	int c;
	while ((c = getopt_long(argc, argv, "nj", opts, NULL)) != -1) {
		if (c == 'n')
			no_reload = true;
		else if (c == 'j')
			json = true;
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fputs("bulwarkctl: usage: client remove NAME [--no-reload]\n", stderr);
		return 2;
	}
	const char *name = argv[optind];
	struct bw_conf *conf = NULL;
	size_t i;
	int rc = load(o, &conf);
	if (rc)
		return rc;
	rc = 1;
	if (!find_client(conf, name, &i))
		fprintf(stderr, "bulwarkctl: no client named '%s' (bulwarkctl client list)\n", name);
	else if (i < conf->clients.n_inline)
		fprintf(stderr, "bulwarkctl: client '%s' is written in %s itself, not in the "
				"clients file: remove it there, then bulwarkctl reload\n", name,
			conf->path);
	else
		rc = ctl_clients_file_edit(conf, conf->path, NULL, name);
	if (rc)
		goto out;
	audit("removed", name, NULL);
	if (json) {
		bool reloaded = !no_reload && reload(o, conf, true);
		json_t *j = json_pack("{s:s, s:s, s:b}", "name", name, "file", conf->clients.file,
				      "reloaded", reloaded);
		char *t = json_dumps(j, JSON_INDENT(2));
		printf("%s\n", t ? t : "{}");
		free(t), json_decref(j);
	} else {
		printf("Removed client '%s' from %s: its ClientID is revoked.\n", name,
		       conf->clients.file);
		if (!no_reload)
			reload(o, conf, false);
	}
out:
	bw_conf_free(conf);
	return rc;
}

/* ---- list ---- */

/* How a client matches: its networks, IDs (masked unless show) and MACs, comma-separated. */
static void match_text(const struct bw_client_conf *cl, bool show, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	for (size_t i = 0; i < cl->n_nets + cl->n_ids + cl->n_macs && n < cap; i++) {
		char item[128], addr[BW_ADDRSTRLEN];
		if (i < cl->n_nets) {
			const struct bw_cidr *c = &cl->nets[i];
			inet_ntop(c->family, c->addr, addr, sizeof(addr));
			snprintf(item, sizeof(item), "%s/%u", addr, c->prefix);
		} else if (i < cl->n_nets + cl->n_ids) {
			const char *id = cl->ids[i - cl->n_nets];
			char masked[16];
			ctl_id_mask(id, masked, sizeof(masked));
			snprintf(item, sizeof(item), "id:%s", show ? id : masked);
		} else {
			const uint8_t *m = cl->macs[i - cl->n_nets - cl->n_ids];
			snprintf(item, sizeof(item), "mac:%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
				 m[2], m[3], m[4], m[5]);
		}
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", item);
	}
}

static int cmd_list(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"show-ids", no_argument, NULL, 'i'}, {"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	bool show = false, json = o->json;
	int c;
	while ((c = getopt_long(argc, argv, "ij", opts, NULL)) != -1) {
		if (c == 'i')
			show = true;
		else if (c == 'j')
			json = true;
		else
			return 2;
	}
	if (optind != argc) {
		fputs("bulwarkctl: usage: client list [--show-ids]\n", stderr);
		return 2;
	}
	struct bw_conf *conf = NULL;
	if (load(o, &conf))
		return 1;
	json_t *rows = json_array();
	for (size_t i = 0; i < conf->clients.n; i++) {
		const struct bw_client_conf *cl = &conf->clients.list[i];
		char match[4096];
		match_text(cl, show, match, sizeof(match));
		const char *profile = cl->profile >= 0 ? conf->policy.profiles[cl->profile].name
				      : cl->n_schedule ? "(schedule)"
							 : "-";
		json_array_append_new(rows, json_pack("[s,s,s,s]", cl->name, profile, match,
						      i < conf->clients.n_inline ? "config"
										 : "clients file"));
	}
	json_t *r = json_pack("{s:[s,s,s,s], s:o}", "columns", "name", "profile", "match",
			      "defined in", "rows", rows);
	if (json) {
		json_t *all = json_pack("{s:b, s:O}", "ok", 1, "result", r);
		char *t = json_dumps(all, JSON_COMPACT);
		printf("%s\n", t ? t : "{}");
		free(t), json_decref(all);
	} else {
		ctl_print_result(r);
	}
	json_decref(r);
	bw_conf_free(conf);
	return 0;
}

/* ---- setup ---- */

static int cmd_setup(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'H'},	     {"mobileconfig", required_argument, NULL, 'M'},
		{"sign-cert", required_argument, NULL, 'C'}, {"sign-key", required_argument, NULL, 'K'},
		{"qr", required_argument, NULL, 'Q'},	     {"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_setup_opts so = {.json = o->json};
	int c;
	while ((c = getopt_long(argc, argv, "H:M:C:K:Q:j", opts, NULL)) != -1) {
		switch (c) {
		case 'H': so.host = optarg; break;
		case 'M': so.mobileconfig = optarg; break;
		case 'C': so.sign_cert = optarg; break;
		case 'K': so.sign_key = optarg; break;
		case 'Q': so.qr = optarg; break;
		case 'j': so.json = true; break;
		default: return 2;
		}
	}
	const char *bad = optind + 1 != argc ? "client setup NAME [options]"
			  : !so.sign_cert != !so.sign_key ? "--sign-cert and --sign-key go together"
			  : so.sign_cert && !so.mobileconfig ? "--sign-cert signs the --mobileconfig"
			  : so.json && so.qr && !strcmp(so.qr, "-") ? "--qr - draws in the terminal, "
								      "not with --json"
			  : so.host && !ctl_host_ok(so.host) ? "--host: not a host name"
								 : NULL;
	if (bad) {
		fprintf(stderr, "bulwarkctl: %s\n", bad);
		return 2;
	}
	struct bw_conf *conf = NULL;
	if (load(o, &conf))
		return 1;
	int rc = ctl_setup(conf, argv[optind], &so);
	bw_conf_free(conf);
	return rc;
}

int ctl_client_main(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct ctl_opts *, int, char **);
	} cmds[] = {{"add", cmd_add}, {"remove", cmd_remove}, {"list", cmd_list},
		    {"setup", cmd_setup}};
	if (argc < 2) {
		fputs("bulwarkctl: client: add, remove, list or setup?\nTry 'bulwarkctl --help'.\n",
		      stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name)) {
			optind = 0; /* getopt_long again, on the subcommand's words */
			return cmds[i].fn(o, argc - 1, argv + 1);
		}
	fprintf(stderr, "bulwarkctl: unknown client command '%s' (add, remove, list, setup)\n",
		argv[1]);
	return 2;
}
