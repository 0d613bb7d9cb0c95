/*
 * main.c - the bulwark daemon: command line, start-up, signals (SIGTERM/SIGINT drain and
 * exit, SIGHUP reloads), and the feed file watcher tick.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "admin/admin.h"
#include "core/core.h"
#include "feeds/feeds.h"
#include "guard/guard.h"
#include "policy/explain.h"
#include "policy/rules.h"
#include "resolve/resolve.h"
#include "telemetry/metrics.h"
#include "telemetry/telemetry.h"

#ifndef BW_VERSION
#define BW_VERSION "0.1.0"
#endif

static const char usage[] =
	"Usage: bulwark [OPTIONS]\n"
	"       bulwark explain NAME [--client IP] [--type TYPE] [--no-resolve] [-c FILE]\n"
	"\n"
	"Bulwark is a protective DNS resolver: it resolves names for its clients (recursively,\n"
	"with DNSSEC validation, or by forwarding) and refuses to resolve the names listed by\n"
	"its threat-intelligence feeds, answering NXDOMAIN with an Extended DNS Error (15,\n"
	"Blocked) that names the feed.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE        configuration file (YAML; default: " BW_CONF_DEFAULT_PATH ").\n"
	"                           Every key is documented in docs/config.md.\n"
	"  -f, --foreground         stay in the foreground and log to stderr. Without it,\n"
	"                           bulwark detaches and logs to syslog (daemon facility).\n"
	"      --check-config FILE  load and validate FILE (syntax, keys, types, addresses,\n"
	"                           that referenced files exist), print what is wrong as\n"
	"                           FILE:LINE:COL: MESSAGE and exit; starts nothing. The\n"
	"                           feeds it can reach (local files, last good copies of\n"
	"                           fetched feeds) are parsed too: one that would fail to\n"
	"                           load (corrupt, or too many bad lines) is an error.\n"
	"  -p, --pidfile FILE       write the daemon's process id to FILE.\n"
	"  -d, --debug              log at debug level (overrides log.level).\n"
	"  -h, --help               show this help and exit.\n"
	"  -V, --version            show the version and exit.\n"
	"\n"
	"bulwark explain NAME: why NAME is or is not blocked. Loads the config and its feeds\n"
	"(no daemon is started), picks the profile the client would get, and prints every rule\n"
	"of every feed that matches NAME, in precedence order, with its file and line (or\n"
	"STIX/MISP reference). Then it takes the same decisions a query does, in the same\n"
	"order: a rule for the client's address, the name's rules, the look-alike guard, and,\n"
	"when nothing decided before resolution, the answer: it resolves NAME with the\n"
	"configured resolver and checks every CNAME target and address as the daemon does.\n"
	"It marks the rule that wins and prints the verdict with the Extended DNS Error the\n"
	"answer carries. NSDNAME/NSIP rules are listed as loaded but not enforced.\n"
	"  --client IP              the asking client's address (profile choice, CLIENT-IP\n"
	"                           rules); default: none, so the default profile applies.\n"
	"  --listener N             the listener (index in server.listen) it came in on.\n"
	"  --type TYPE              the query type whose answer is checked (A, AAAA, ...;\n"
	"                           default A).\n"
	"  --no-resolve             do not resolve: the answer is not checked (explain says\n"
	"                           what that leaves open).\n"
	"\n"
	"Signals:\n"
	"  SIGTERM, SIGINT  stop taking queries, answer those in flight (up to 3 s), exit 0.\n"
	"  SIGHUP           reload: re-read the config file and rebuild the policy (feeds,\n"
	"                   allowlist, access control) beside the running one, then swap it\n"
	"                   in atomically; queries are answered throughout. A config or feed\n"
	"                   that fails to load keeps the running version. Listeners, workers,\n"
	"                   resolver and cache settings take effect at the next start.\n"
	"                   The certificates of dot/doh listeners are re-read too: new\n"
	"                   connections get the new one, open ones keep theirs.\n"
	"  Feed files are also watched (policy.watch-interval) and reloaded when they change.\n"
	"  Fetched feeds (url:, taxii:) refresh on their own; `bulwarkctl feeds` shows them\n"
	"  (docs/feeds.md).\n"
	"\n"
	"Exit status:\n"
	"  0  clean exit, or a valid configuration with --check-config\n"
	"  1  start-up failed (cannot listen, resolver error, out of memory)\n"
	"  2  invalid command line or configuration\n"
	"\n"
	"Examples:\n"
	"  bulwark -f                          run on the shipped etc/bulwark.yaml\n"
	"  bulwark --check-config /etc/bulwark/bulwark.yaml\n"
	"  kdig @127.0.0.1 -p 5353 example.org  ask it something\n";

/* The control socket's `reload`: the main thread reloads, as for SIGHUP. */
static json_t *reload_cmd(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	(void)ctx, (void)argc, (void)argv, (void)err, (void)errlen;
	kill(getpid(), SIGHUP);
	return json_pack("{s:s}", "message", "reload requested (see the log for the outcome)");
}

/* bulwarkctl alerts | top [N] */
static json_t *alerts_cmd(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	(void)argv;
	if (argc > 1) {
		snprintf(err, errlen, "usage: alerts");
		return NULL;
	}
	return bw_telemetry_alerts_json(ctx);
}

static json_t *top_cmd(void *ctx, int argc, char **argv, char *err, size_t errlen)
{
	unsigned long n = 10;
	char *end;
	if (argc > 2 || (argc == 2 && ((n = strtoul(argv[1], &end, 10)) == 0 || *end || n > 1000))) {
		snprintf(err, errlen, "usage: top [N] (N from 1 to 1000, default 10)");
		return NULL;
	}
	return bw_telemetry_top_json(ctx, (unsigned)n);
}

/* bulwark_telemetry_dropped_total (every record the query log, events or webhook lost) and
 * the query log's backlog */
static void telemetry_metrics(void *ctx, struct bw_metrics_sample *out)
{
	struct bw_telemetry_stats st;
	bw_telemetry_stats(ctx, &st);
	out->have_telemetry = true;
	out->telemetry_dropped = st.ring_drops + st.log_drops + st.event_drops + st.webhook_drops;
	out->query_log_waiting = st.log_waiting;
	out->query_log_spool_bytes = st.spool_bytes;
}

/* --check-config: the feeds it can reach (local files, fetched feeds' last good copies)
 * parsed and judged as a load would judge them (docs/feeds.md, "Feed health"). Returns
 * how many would fail. */
static int check_feeds(const char *path, const struct bw_conf *conf)
{
	int bad = 0;
	bw_log_init(BW_LOG_ERR, false); /* the parsers' bad-line warnings: the reason says it */
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		const struct bw_feed_conf *fc = &conf->policy.feeds[i];
		uint64_t entries;
		char why[400];
		int rc = bw_feed_check_file(fc, &entries, why, sizeof(why));
		if (rc == 0) {
			printf("%s: feed %s: %s: %llu entries\n", path, fc->name, fc->file,
			       (unsigned long long)entries);
		} else if (rc == BW_ENOENT) {
			printf("%s: feed %s: no copy yet (%s)\n", path, fc->name, fc->file);
		} else {
			fprintf(stderr, "%s: feed %s: %s would fail to load: %s\n", path, fc->name,
				fc->file, rc == BW_ENOMEM ? "out of memory" : why);
			bad++;
		}
	}
	return bad;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return BW_EIO;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) == 0 ? 0 : BW_EIO;
}

/* explain's resolver: one blocking query on a resolver made from the config */
static int explain_resolve(void *ctx, const uint8_t *name, size_t len, uint16_t qtype,
			   uint8_t *pkt, size_t cap, size_t *pkt_len, char *err, size_t errlen)
{
	enum bw_sec sec;
	return bw_resolve_once(ctx, name, len, qtype, pkt, cap, pkt_len, &sec, err, errlen);
}

static int type_from_text(const char *s, uint16_t *out)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {{"A", BW_T_A},	{"AAAA", BW_T_AAAA}, {"CNAME", BW_T_CNAME},
		     {"MX", BW_T_MX},	{"TXT", BW_T_TXT},   {"NS", BW_T_NS},
		     {"SRV", BW_T_SRV}, {"SOA", BW_T_SOA},   {"HTTPS", BW_T_HTTPS}};
	for (size_t i = 0; i < BW_ARRAY_LEN(types); i++)
		if (!strcasecmp(s, types[i].name)) {
			*out = types[i].type;
			return 0;
		}
	char *end;
	unsigned long v = strncasecmp(s, "TYPE", 4) ? 0 : strtoul(s + 4, &end, 10);
	if (!v || *end || v > 65535)
		return BW_EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int explain_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"client", required_argument, NULL, 'a'},
		{"listener", required_argument, NULL, 'l'},
		{"type", required_argument, NULL, 't'},
		{"no-resolve", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = BW_CONF_DEFAULT_PATH, *client = NULL, *type = "A";
	int listener = -1, c;
	bool resolve = true;
	uint16_t qtype = BW_T_A;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'a': client = optarg; break;
		case 'n': resolve = false; break;
		case 't':
			type = optarg;
			if (type_from_text(type, &qtype) != 0) {
				fprintf(stderr, "bulwark explain: unknown query type '%s'\n", type);
				return 2;
			}
			break;
		case 'l': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 65535) {
				fprintf(stderr, "bulwark explain: bad listener index '%s'\n", optarg);
				return 2;
			}
			listener = (int)v;
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		default: fputs("Try 'bulwark --help'.\n", stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		fputs("usage: bulwark explain NAME [--client IP] [--type TYPE] [--no-resolve] "
		      "[-c FILE]\n", stderr);
		return 2;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	const struct sockaddr *sa = NULL;
	if (client) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, client, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
		} else if (inet_pton(AF_INET6, client, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
		} else {
			fprintf(stderr, "bulwark explain: '%s' is not an IP address\n", client);
			return 2;
		}
		sa = (const struct sockaddr *)&ss;
	}
	char err[1024];
	struct bw_conf *conf = NULL;
	if (bw_conf_load(config, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (listener >= (int)conf->server.n_listen) {
		fprintf(stderr, "bulwark explain: there is no listener %d\n", listener);
		bw_conf_free(conf);
		return 2;
	}
	bw_log_init(BW_LOG_WARN, false);
	struct bw_policy *p = NULL;
	if (bw_policy_build(conf, NULL, 1, &p) != 0) {
		fprintf(stderr, "bulwark explain: cannot build the policy\n");
		bw_conf_free(conf);
		return 1;
	}
	printf("type:     %s\n", type);
	struct bw_explain_opts eo = {
	    .client = sa,
	    .listener = listener,
	    .qtype = qtype,
	    .resolve = resolve ? explain_resolve : NULL,
	    .resolve_ctx = conf,
	};
	int rc = bw_policy_explain(conf, p, argv[optind], &eo, stdout);
	bw_policy_free(p);
	bw_conf_free(conf);
	return rc < 0 ? 2 : 0;
}

struct args {
	const char *config, *check, *pidfile;
	bool foreground, debug;
};

/* The daemon's command line: -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", required_argument, NULL, 'C'},
		{"pidfile", required_argument, NULL, 'p'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	*a = (struct args){.config = BW_CONF_DEFAULT_PATH};
	int c;
	while ((c = getopt_long(argc, argv, "c:fp:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'f': a->foreground = true; break;
		case 'C': a->check = optarg; break;
		case 'p': a->pidfile = optarg; break;
		case 'd': a->debug = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': printf("bulwark %s\n", BW_VERSION); return 0;
		default: fputs("Try 'bulwark --help'.\n", stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwark: unexpected argument '%s'\nTry 'bulwark --help'.\n",
			argv[optind]);
		return 2;
	}
	return -1;
}

/* --check-config FILE: the config and the feeds it can reach. */
static int check_main(const char *path)
{
	char err[1024];
	struct bw_conf *conf = NULL;
	if (bw_conf_load(path, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	int bad = check_feeds(path, conf);
	if (!bad)
		printf("%s: configuration is valid\n", path);
	bw_conf_free(conf);
	return bad ? 2 : 0;
}

/* The control socket and its commands; NULL when it cannot be had (said in the log). */
static struct bw_admin *admin_start(const struct bw_conf *conf, struct bw_feeds *feeds,
				    struct bw_server *srv)
{
	char err[1024];
	struct bw_admin *adm = NULL;
	if (bw_admin_create(conf->server.control_socket, &adm, err, sizeof(err)) != 0)
		return NULL;
	bw_admin_register(adm, "feeds", "feeds | feeds accept NAME | feeds refresh NAME",
			  bw_feeds_command, feeds);
	bw_admin_register(adm, "reload", "reload the config and feeds (as SIGHUP)", reload_cmd,
			  NULL);
	bw_admin_register(adm, "alerts", "infected-looking clients (security alerts)", alerts_cmd,
			  bw_server_telemetry(srv));
	bw_admin_register(adm, "top", "top [N]: the most blocked names and clients", top_cmd,
			  bw_server_telemetry(srv));
	if (bw_admin_start(adm, err, sizeof(err)) != 0) {
		bw_warn("no control socket: %s", err);
		bw_admin_destroy(adm);
		return NULL;
	}
	return adm;
}

/* Tells systemd (Type=notify; nothing without NOTIFY_SOCKET) state, with the policy in
 * force as STATUS=. */
static void notify(struct bw_server *srv, const char *state)
{
	char status[200];
	bw_server_describe(srv, status, sizeof(status));
	sd_notifyf(0, "%s\nSTATUS=%s", state, status);
}

/* Signals (taken by sigtimedwait: every thread blocks them), the periodic tick, the feed
 * file watcher and systemd's watchdog, until SIGTERM or SIGINT. */
static void serve(struct bw_server *srv, const sigset_t *sigs, unsigned watch_ms)
{
	uint64_t next_watch = bw_now_ms() + watch_ms, watchdog_us = 0, next_ping = 0;
	if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
		watchdog_us = 0;
	for (;;) {
		struct timespec tick = {0, 250 * 1000 * 1000};
		int sig = sigtimedwait(sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			bw_info("signal %d: shutting down", sig);
			sd_notify(0, "STOPPING=1");
			return;
		}
		if (sig == SIGHUP) {
			bw_info("SIGHUP: reloading");
			sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
				   (unsigned long long)bw_now_ns() / 1000);
			bw_server_reload(srv);
			notify(srv, "READY=1");
		}
		if (watchdog_us && bw_now_ms() >= next_ping) {
			sd_notify(0, "WATCHDOG=1");
			next_ping = bw_now_ms() + watchdog_us / 2000;
		}
		bw_server_tick(srv);
		if (watch_ms && bw_now_ms() >= next_watch) {
			bw_server_watch(srv);
			next_watch = bw_now_ms() + watch_ms;
		}
	}
}

static void log_listeners(const struct bw_conf *conf)
{
	for (size_t i = 0; i < conf->server.n_listen; i++)
		bw_info("listening on %s port %u (%s)", conf->server.listen[i].address,
			(unsigned)conf->server.listen[i].port,
			conf->server.listen[i].transport == BW_TRANSPORT_DOT   ? "dot"
			: conf->server.listen[i].transport == BW_TRANSPORT_DOH ? "doh"
									       : "udp, tcp");
}

/* Builds, starts and runs the server on conf (which it takes over) until a stop signal. */
static int run(struct bw_conf *conf, const struct args *a)
{
	char err[1024];
	/* every thread inherits this mask: signals are taken by sigtimedwait() in serve() */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned watch_ms = conf->policy.watch_ms;
	struct bw_server *srv = NULL;
	if (bw_server_create(conf, &srv, err, sizeof(err)) != 0) {
		bw_err("%s", err);
		if (a->foreground)
			fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	if (!a->foreground && daemon(1, 0) != 0) {
		bw_err("cannot detach: %s", strerror(errno));
		bw_server_destroy(srv);
		return 1;
	}
	if (a->pidfile && write_pidfile(a->pidfile) != 0)
		bw_warn("cannot write pid file %s: %s", a->pidfile, strerror(errno));
	if (bw_server_drop_privileges(conf, err, sizeof(err)) != 0) {
		bw_err("%s", err);
		if (a->foreground)
			fprintf(stderr, "bulwark: %s\n", err);
		bw_server_destroy(srv);
		return 1;
	}
	/* the feed manager exists before the workers start (they pass it NOTIFYs); its thread
	 * starts once they answer */
	struct bw_feeds_hooks hooks = {.ctx = srv,
				       .rebuild = bw_server_feeds_changed,
				       .delta = bw_server_feed_delta,
				       .export_feed = bw_server_feed_export,
				       .compact = bw_server_feed_compact,
				       .owner_records = bw_server_feed_owner,
				       .live_status = bw_server_feed_live_status,
				       .file_accept = bw_server_feed_file_accept,
				       .event = bw_server_feed_event};
	struct bw_feeds *feeds = NULL;
	if (bw_feeds_create(conf, &hooks, &feeds, err, sizeof(err)) != 0) {
		bw_err("%s", err);
		if (a->foreground)
			fprintf(stderr, "bulwark: %s\n", err);
		bw_server_destroy(srv);
		return 1;
	}
	bw_server_set_notify(srv, bw_feeds_notify, feeds);
	bw_server_set_feed_failed(srv, bw_feeds_failed, feeds);
	bw_server_set_telemetry_stats(srv, telemetry_metrics, bw_server_telemetry(srv));
	if (bw_server_start(srv) != 0) {
		bw_feeds_destroy(feeds);
		bw_server_destroy(srv);
		return 1;
	}
	log_listeners(conf);
	/* fetched feeds (their last good copies are already loaded) and the control socket */
	if (bw_feeds_start(feeds) != 0) {
		bw_server_stop(srv, 0);
		bw_feeds_destroy(feeds);
		bw_server_destroy(srv);
		return 1;
	}
	struct bw_admin *adm = admin_start(conf, feeds, srv);
	notify(srv, "READY=1"); /* listeners bound, the policy loaded, privileges dropped */
	serve(srv, &sigs, watch_ms);
	bw_admin_destroy(adm);
	bw_feeds_destroy(feeds);
	bw_server_stop(srv, 3000);
	bw_server_log_stats(srv);
	bw_server_destroy(srv);
	if (a->pidfile)
		unlink(a->pidfile);
	bw_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		return explain_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "guard-check") == 0)
		return bw_guard_check_main(argc - 1, argv + 1);
	struct args a;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (a.check)
		return check_main(a.check);
	char err[1024];
	struct bw_conf *conf = NULL;
	if (bw_conf_load(a.config, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	bw_log_init(a.debug ? BW_LOG_DEBUG : conf->log.level, !a.foreground || conf->log.syslog);
	return run(conf, &a);
}
