/*
 * tools/bulwarkctl.c - asks a running bulwark daemon things over its control socket
 * (admin/admin.h): one request line out, one JSON answer back, printed as a table.
 * `bulwarkctl client ...` works on the config and its clients file instead (ctl_client.c),
 * `bulwarkctl token ...` on the API's tokens file (ctl_token.c; tools/ctl.h lists the
 * parts).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "ctl.h"

static const char usage[] =
	"Usage: bulwarkctl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS...]\n"
	"       bulwarkctl [-c CONFIG] client add NAME [--profile PROFILE] [--match CIDR]...\n"
	"       bulwarkctl [-c CONFIG] client remove NAME\n"
	"       bulwarkctl [-c CONFIG] client list [--show-ids]\n"
	"       bulwarkctl [-c CONFIG] client setup NAME [--host HOST] [--qr FILE.png|-]\n"
	"                  [--mobileconfig FILE [--sign-cert PEM --sign-key PEM]]\n"
	"       bulwarkctl [-c CONFIG] token create NAME --role viewer|admin\n"
	"       bulwarkctl [-c CONFIG] [--json] token list\n"
	"       bulwarkctl [-c CONFIG] token revoke NAME\n"
	"\n"
	"Asks the running bulwark daemon over its control socket (a unix socket, mode 0600,\n"
	"so run it as the daemon's user or root) and prints the answer. The client commands\n"
	"manage named clients in the config's clients file instead, and the token commands\n"
	"the HTTP API's tokens; neither needs a daemon.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH   the control socket. Default: server.control-socket of the\n"
	"                      config (-c), else " BW_CONF_DEFAULT_STATE_DIR "/control.sock.\n"
	"  -c, --config FILE   the daemon's config, to find the socket and the clients file\n"
	"                      (default: " BW_CONF_DEFAULT_PATH ").\n"
	"  -j, --json          print the daemon's JSON answer as it is.\n"
	"  -t, --timeout SECS  give up after this long (default 30).\n"
	"  -h, --help          show this help and exit.\n"
	"\n"
	"Commands:\n"
	"  status              the daemon's version, the user it runs as, how long it has\n"
	"                      been up, and the policy in force (generation, blocked\n"
	"                      names, feeds; whether some failed or are held back).\n"
	"  feeds               every feed: name, source, format, version (ETag, serial or\n"
	"                      TAXII cursor), entries, last success, last error, next\n"
	"                      refresh, held-back version, state (ok, failed, failing,\n"
	"                      held back, expired, no copy yet; local files: file,\n"
	"                      failed, held back, changing), notes (rules that are\n"
	"                      loaded but not enforced: NSDNAME/NSIP).\n"
	"  feeds accept NAME   apply the version of feed NAME (fetched, or a local file)\n"
	"                      that was held back because it shrank below min-ratio of\n"
	"                      the last good version.\n"
	"  feeds refresh NAME  fetch feed NAME now.\n"
	"  reload              reload the config and feeds (as SIGHUP). Written to the\n"
	"                      audit log (admin.audit-log) like every change.\n"
	"  alerts              infected-looking clients: a client that hit malware/c2\n"
	"                      feeds at least telemetry.alerts.threshold times within the\n"
	"                      window (client, state, hits, first and last seen, domains,\n"
	"                      feeds, addresses, id). Clients are shown as the privacy mode\n"
	"                      keeps them: a client named in clients: by its name under\n"
	"                      blocked-only and full (one alert wherever it roams, with\n"
	"                      the addresses it came from), else by its address.\n"
	"  top [N]             the N (default 10) most blocked names and clients since start\n"
	"                      (clients by name or address, as for alerts).\n"
	"  alerts-ack ID       acknowledge alert ID (the id column of `alerts`).\n"
	"  alerts-clear ID|all remove alert ID, or every alert; a client still hitting\n"
	"                      malware/c2 names raises a new one.\n"
	"  series [MINUTES]    per-minute counts of the last MINUTES (default 60, at most\n"
	"                      1440): queries, blocked, cache hits, by transport (udp, tcp,\n"
	"                      dot, doh) and by profile, oldest first.\n"
	"  querylog [KEY=VALUE...]  search the query log, newest first: client=ADDRESS|NAME,\n"
	"                      name=NAME (exact), name=.SUFFIX or name=*.SUFFIX (the name\n"
	"                      and every name under it), name=PREFIX*, verdict=blocked|\n"
	"                      allowed|all, feed=FEED, since= and until= (unix seconds or\n"
	"                      ISO 8601), limit= (default 100, at most 1000), offset=.\n"
	"                      Only what telemetry.privacy keeps comes back (no client\n"
	"                      address outside full, no allowed queries under\n"
	"                      blocked-only, nothing under none).\n"
	"  why NAME [CLIENT] [TYPE]  why the running daemon blocks NAME or not: its live\n"
	"                      policy and profile choice (reloads included), the lines of\n"
	"                      `bulwark explain --no-resolve` and one plain sentence. CLIENT:\n"
	"                      an address, id:CLIENTID or a client's name.\n"
	"  feeds-refresh NAME, feeds-accept NAME  as feeds refresh/accept, written to the\n"
	"                      audit log.\n"
	"  check-config FILE|- have the daemon check FILE (at most 64 KiB) as it would load\n"
	"                      it, applying nothing: \"posted: configuration is valid\" or\n"
	"                      posted:LINE:COL: what is wrong (exit status 1).\n"
	"  allow NAME          allow NAME and its subdomains now, over every feed (a false\n"
	"                      positive). In force for the next query, kept in the state\n"
	"                      directory (local-decisions), audited. At most 10000.\n"
	"  block NAME          block NAME and its subdomains now, in every profile\n"
	"                      (NXDOMAIN, EDE 15 \"blocked by local (local)\").\n"
	"  unallow NAME        take the allow of NAME away: the feeds decide again.\n"
	"  unblock NAME        take the block of NAME away.\n"
	"  decisions           the local decisions (name, allow or block, by whom, when)\n"
	"                      and the paused profiles.\n"
	"  pause PROFILE MINUTES\n"
	"                      pause blocking for PROFILE for MINUTES (1 to 1440): its\n"
	"                      queries are answered as if no feed listed anything; it\n"
	"                      resumes by itself then. seconds=N instead of MINUTES, for\n"
	"                      scripts. Logged, audited, shown by explain and metrics.\n"
	"  resume PROFILE      end the pause of PROFILE now.\n"
	"  help                the commands and actions this daemon knows (every action of\n"
	"                      the HTTP API, docs/api.md, is a command: KEY=VALUE words\n"
	"                      give its arguments).\n"
	"\n"
	"Client commands:\n"
	"A named client is a device the resolver knows wherever it is: by a ClientID in its\n"
	"DoH URL (https://TLS-NAME/dns-query/ID) or DoT server name (ID.TLS-NAME), so a\n"
	"phone keeps its profile on any network. The ID is the device's credential. add and\n"
	"remove edit the clients file (clients-file in the config, default clients.yaml\n"
	"beside it; mode 0640, replaced atomically, checked by loading the config, put back\n"
	"if that fails), log to syslog (authpriv) who did it (never the ID), and ask a\n"
	"running daemon to reload so the change is in force at once.\n"
	"\n"
	"  client add NAME     make a ClientID (128 random bits, 26 characters a-z 2-7),\n"
	"                      add the client with it and print it. NAME: 1 to 64 bytes,\n"
	"                      no control characters, double quotes, '\\' or '/'.\n"
	"    --profile PROFILE   the client's profile (one of policy.profiles); without\n"
	"                        it the listener or the network chooses.\n"
	"    --match CIDR        also match queries from this address or network\n"
	"                        (repeatable).\n"
	"    --no-reload         do not ask the daemon to reload.\n"
	"  client remove NAME  remove the client: its ClientID stops working at the reload\n"
	"                      this asks for (--no-reload: at the next one). Clients\n"
	"                      written in the config itself are removed there.\n"
	"  client list         every named client: name, profile, how it matches (IDs\n"
	"                      shown as their first 4 characters), where it is defined\n"
	"                      (config or clients file).\n"
	"    --show-ids          show the whole IDs.\n"
	"  client setup NAME   what the device needs: the DoH URL, the DoT host name, and\n"
	"                      where Android (Private DNS), iOS and macOS (a profile),\n"
	"                      Windows 11, Firefox and Chrome take them. The host is the\n"
	"                      tls-name of the config's DoH (else DoT) listener.\n"
	"    --host HOST         use this host name instead (a TLS proxy in front).\n"
	"    --mobileconfig FILE write an Apple configuration profile (DNS Settings, DoH;\n"
	"                        DoT when there is no DoH listener) for iOS and macOS.\n"
	"    --sign-cert PEM     sign it (CMS, DER) with this certificate and the chain\n"
	"    --sign-key PEM      that follows it in the file, and this key.\n"
	"    --qr FILE.png       write a QR code of the DoH URL as a PNG; --qr - draws it\n"
	"                        in the terminal.\n"
	"\n"
	"Files written (the clients file, profiles, QR codes) hold the ID: keep them private.\n"
	"The client commands take --json too.\n"
	"\n"
	"Token commands:\n"
	"The HTTP API and dashboard (admin: in the config; docs/api.md) let in only the\n"
	"holders of a token. The tokens file (admin.tokens-file, default\n"
	"STATE-DIR/admin-tokens, mode 0640) keeps each token's name, role, SHA-256 and\n"
	"creation time, never the token; the daemon re-reads it within a second of a\n"
	"change. Each create and revoke is logged to syslog (authpriv) with who did it.\n"
	"\n"
	"  token create NAME   make a token (bwk_ and 43 random characters: 256 bits) and\n"
	"                      print it alone on stdout, once: it cannot be shown again.\n"
	"                      NAME: 1 to 64 letters, digits, '.', '_', '-'.\n"
	"    --role ROLE         viewer (reads: status, logs, alerts) or admin (also acts:\n"
	"                        allow, block, pause, reload...). Default viewer.\n"
	"  token list          every token: name, role, when it was made (never a token\n"
	"                      or its hash).\n"
	"  token revoke NAME   remove the token: requests with it, and the dashboard\n"
	"                      sessions logged in with it, are refused from then on.\n"
	"\n"
	"Exit status: 0 done; 1 the daemon refused or failed (its message is printed), or a\n"
	"client command was refused (a duplicate name, an unknown profile: the files are\n"
	"left as they were); 2 bad command line; 3 cannot reach the daemon.\n"
	"\n"
	"Examples:\n"
	"  bulwarkctl status\n"
	"  bulwarkctl feeds\n"
	"  bulwarkctl alerts\n"
	"  bulwarkctl top 20\n"
	"  bulwarkctl querylog verdict=blocked name=*.example.com since=2024-05-01\n"
	"  bulwarkctl why evil.example 192.168.1.37\n"
	"  bulwarkctl check-config /etc/bulwark/bulwark.yaml.new\n"
	"  bulwarkctl -s /var/lib/bulwark/control.sock feeds accept urlhaus\n"
	"  bulwarkctl client add alice-phone --profile family\n"
	"  bulwarkctl client setup alice-phone --qr -\n"
	"  bulwarkctl client setup alice-phone --mobileconfig alice.mobileconfig\n"
	"  bulwarkctl client remove alice-phone\n"
	"  bulwarkctl token create dashboard --role admin\n"
	"  bulwarkctl token revoke dashboard\n";

/* Columns a UTF-8 text takes: one per character (continuation bytes do not count). */
static int text_width(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int cell_width(json_t *v)
{
	if (json_is_string(v))
		return text_width(json_string_value(v));
	char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	int n = t ? text_width(t) : 0;
	free(t);
	return n;
}

static void print_cell(json_t *v, int width, bool last)
{
	char *t = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	const char *s = json_is_string(v) ? json_string_value(v) : t ? t : "?";
	fputs(s, stdout);
	if (!last)
		printf("%*s", width - text_width(s) + 2, "");
	free(t);
}

/* {"columns": [...], "rows": [[...]]} as aligned columns; anything else as JSON. */
void ctl_print_result(json_t *r)
{
	json_t *cols = json_object_get(r, "columns"), *rows = json_object_get(r, "rows");
	json_t *msg = json_object_get(r, "message");
	if (json_is_string(msg) && json_object_size(r) == 1) {
		printf("%s\n", json_string_value(msg));
		return;
	}
	if (!json_is_array(cols) || !json_is_array(rows)) {
		char *t = json_dumps(r, JSON_INDENT(2) | JSON_ENCODE_ANY);
		printf("%s\n", t ? t : "");
		free(t);
		return;
	}
	size_t nc = json_array_size(cols), i, j;
	int *w = calloc(nc ? nc : 1, sizeof(*w));
	if (!w)
		return;
	json_t *row, *v;
	json_array_foreach(cols, j, v) w[j] = cell_width(v);
	json_array_foreach(rows, i, row)
	{
		json_array_foreach(row, j, v)
		{
			if (j < nc && cell_width(v) > w[j])
				w[j] = cell_width(v);
		}
	}
	json_array_foreach(cols, j, v)
	{
		char up[128];
		snprintf(up, sizeof(up), "%s", json_string_value(v) ? json_string_value(v) : "");
		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		printf("%-*s%s", j + 1 == nc ? 0 : w[j], up, j + 1 == nc ? "" : "  ");
	}
	putchar('\n');
	json_array_foreach(rows, i, row)
	{
		json_array_foreach(row, j, v)
		{
			if (j < nc)
				print_cell(v, w[j], j + 1 == nc);
		}
		putchar('\n');
	}
	free(w);
}

/* The command line's command as one line for the daemon ("feeds accept x\n"): its length,
 * or 0 when it does not fit or has spaces inside an argument. */
static size_t command_line(int argc, char **argv, int first, char *line, size_t cap)
{
	size_t len = 0;
	for (int i = first; i < argc; i++) {
		int n = snprintf(line + len, cap - len, "%s%s", i > first ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= cap - len - 1 || strpbrk(argv[i], " \t\r\n"))
			return 0;
		len += (size_t)n;
	}
	line[len++] = '\n';
	return len;
}

/* The control socket: -s, else the config's (-c, or the default config if it loads), else
 * the default state directory's. Returns 0, or the exit status. */
static int socket_path(const char *sock, const char *config, char *path, size_t cap)
{
	if (sock) {
		snprintf(path, cap, "%s", sock);
		return 0;
	}
	const char *cf = config ? config : BW_CONF_DEFAULT_PATH;
	struct bw_conf *conf = NULL;
	char err[1024];
	if (bw_conf_load(cf, &conf, err, sizeof(err)) == 0) {
		snprintf(path, cap, "%s", conf->server.control_socket);
		bw_conf_free(conf);
	} else if (config) {
		fprintf(stderr, "bulwarkctl: %s\n", err);
		return 2;
	} else {
		snprintf(path, cap, "%s/control.sock", BW_CONF_DEFAULT_STATE_DIR);
	}
	return 0;
}

/* Sends line on a new connection to path: the connected socket, or -1 (said on stderr,
 * but for nothing listening there when unreachable is given: *unreachable is set). */
static int send_command(const char *path, const char *line, size_t len, bool *unreachable)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "bulwarkctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		if (unreachable && (errno == ENOENT || errno == ECONNREFUSED)) {
			*unreachable = true;
			if (fd >= 0)
				close(fd);
			return -1;
		}
		fprintf(stderr, "bulwarkctl: cannot connect to %s: %s (is bulwark running?)\n",
			path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "bulwarkctl: cannot send to %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The daemon's whole answer (until it closes), NUL-terminated, at most 64 MiB, within
 * timeout_s: a heap buffer, or NULL (said on stderr). */
static char *read_answer(int fd, const char *path, long timeout_s)
{
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap);
	uint64_t deadline = bw_now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		if (!buf) {
			fputs("bulwarkctl: out of memory\n", stderr);
			return NULL;
		}
		if (got + 1 == cap) {
			if (cap >= (64u << 20)) {
				fputs("bulwarkctl: answer too large\n", stderr);
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				free(buf);
			buf = nb;
			cap *= 2;
			continue;
		}
		uint64_t now = bw_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0) {
			fprintf(stderr, "bulwarkctl: no answer from %s within %lds\n", path, timeout_s);
			free(buf);
			return NULL;
		}
		ssize_t n = read(fd, buf + got, cap - got - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	return buf;
}

json_t *ctl_request(const char *path, const char *line, long timeout_s, bool *unreachable)
{
	*unreachable = false;
	int fd = send_command(path, line, strlen(line), unreachable);
	if (fd < 0)
		return NULL;
	char *buf = read_answer(fd, path, timeout_s);
	close(fd);
	json_t *r = buf ? json_loads(buf, 0, NULL) : NULL;
	free(buf);
	return r;
}

/* Prints the answer (the result, or the raw JSON with -j): the exit status. */
static int show_answer(const char *buf, bool json)
{
	json_error_t jerr;
	json_t *r = json_loads(buf, 0, &jerr);
	if (!r || !json_is_object(r)) {
		fprintf(stderr, "bulwarkctl: the daemon's answer is not JSON: %s\n", jerr.text);
		json_decref(r);
		return 3;
	}
	int rc = 0;
	if (json_is_true(json_object_get(r, "ok"))) {
		if (json)
			fputs(buf, stdout);
		else
			ctl_print_result(json_object_get(r, "result"));
	} else {
		const char *e = json_string_value(json_object_get(r, "error"));
		if (json)
			fputs(buf, stdout);
		fprintf(stderr, "bulwarkctl: %s\n", e ? e : "failed");
		rc = 1;
	}
	json_decref(r);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},	  {"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},	  {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *config = NULL;
	bool json = false;
	long timeout_s = 30;
	int c;
	while ((c = getopt_long(argc, argv, "+s:c:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'c': config = optarg; break;
		case 'j': json = true; break;
		case 't': {
			char *end;
			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 1 || timeout_s > 3600) {
				fprintf(stderr, "bulwarkctl: bad timeout '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		default: fputs("Try 'bulwarkctl --help'.\n", stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs("bulwarkctl: no command\nTry 'bulwarkctl --help'.\n", stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "client")) {
		struct ctl_opts o = {.config = config, .socket = sock, .json = json,
				     .timeout_s = timeout_s};
		return ctl_client_main(&o, argc - optind, argv + optind);
	}
	if (!strcmp(argv[optind], "token")) {
		struct ctl_opts o = {.config = config, .socket = sock, .json = json,
				     .timeout_s = timeout_s};
		return ctl_token_main(&o, argc - optind, argv + optind);
	}
	char line[4096] = "";
	size_t len = command_line(argc, argv, optind, line, sizeof(line));
	if (!len) {
		fputs("bulwarkctl: arguments too long or with spaces\n", stderr);
		return 2;
	}

	char path[512];
	int rc = socket_path(sock, config, path, sizeof(path));
	if (rc)
		return rc;
	if (!strcmp(argv[optind], "check-config") && argc - optind == 2 &&
	    !strchr(argv[optind + 1], '='))
		return ctl_check_config(path, argv[optind + 1], json, timeout_s);
	int fd = send_command(path, line, len, NULL);
	if (fd < 0)
		return 3;
	char *buf = read_answer(fd, path, timeout_s);
	close(fd);
	if (!buf)
		return 3;
	rc = show_answer(buf, json);
	free(buf);
	return rc;
}
