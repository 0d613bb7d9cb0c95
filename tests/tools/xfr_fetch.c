/*
 * tests/tools/xfr_fetch.c - test tool for feeds/xfr.h against a real primary.
 *
 *   xfr_fetch [-k name:alg:base64] [-s serial] [-a] [-o zonefile] [-n now] ZONE ADDR[#PORT]...
 *       SOA check / IXFR / AXFR as bw_xfr_fetch() does; prints a summary:
 *         kind FULL|DELTA|UPTODATE serial N records N messages N [ixfr-was-full] [fell-back]
 *         diff FROM TO del N add N        (DELTA, one line per sequence)
 *         remove <rule> / add <rule>      (DELTA: the policy changes)
 *         rule <rule>                      (FULL: the rules of the zone text written)
 *       or "error: ..." and exit status 1 (nothing else printed).
 *       With -p LASTGOOD (a zone file, the feed's last good copy): the file is loaded as
 *       an RPZ feed into a policy snapshot, a DELTA is applied to it through
 *       bw_xfr_delta_rules() (the owner lookup: bw_policy_export_owner()) and
 *       bw_policy_apply_delta(), a FULL replaces it; the feed's rules in effect are then
 *       exported (bw_policy_export_feed()) to -e FILE and printed as "rule" lines.
 *   xfr_fetch notify [-k ...] ZONE PRIMARY FROM MSGFILE
 *       handles a captured NOTIFY as if received from FROM; prints
 *       "notify ok zone N serial S" and the response in hex, or "notify refused|bad".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "feeds/xfr.h"
#include "policy/policy.h"

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[128];
	unsigned port = 53;
	const char *h = strchr(s, '#');
	size_t n = h ? (size_t)(h - s) : strlen(s);

	if (n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = 0;
	if (h)
		port = (unsigned)strtoul(h + 1, NULL, 10);
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

static int parse_key(char *spec, struct bw_tsig_key *k)
{
	char *a = strchr(spec, ':');
	char *b = a ? strchr(a + 1, ':') : NULL;
	const char *why = NULL;

	if (!b)
		return -1;
	*a = *b = 0;
	if (bw_tsig_key_init(k, spec, a + 1, b + 1, &why) != 0) {
		fprintf(stderr, "key: %s\n", why);
		return -1;
	}
	return 0;
}

static const char *action_name(enum bw_action a)
{
	static const char *n[] = {"ALLOW",    "NXDOMAIN",   "NODATA",   "DROP",
				  "TCP_ONLY", "LOCAL_DATA", "REDIRECT", "PASSTHRU"};
	return (unsigned)a < 8 ? n[a] : "?";
}

static void print_rule(const char *tag, const struct bw_rule *r)
{
	static const char *trig[] = {"QNAME", "WILDCARD", "CLIENT_IP",
				     "RESPONSE_IP", "NSDNAME", "NSIP"};
	char text[1024] = "", tgt[1024] = "", addr[INET6_ADDRSTRLEN] = "";

	if (r->name)
		bw_name_to_text(r->name, r->name_len, text, sizeof(text));
	else if (r->net.family)
		snprintf(text, sizeof(text), "%s/%u",
			 inet_ntop(r->net.family, r->net.addr, addr, sizeof(addr)) ? addr : "?",
			 r->net.prefix);
	printf("%s %s%s %s %s", tag, trig[r->trigger], r->nsdname_wildcard ? "*" : "", text,
	       action_name(r->action));
	if (r->action == BW_ACT_REDIRECT && r->target) {
		bw_name_to_text(r->target, r->target_len, tgt, sizeof(tgt));
		printf(" %s%s", r->target_wildcard ? "*." : "", tgt);
	}
	if (r->action == BW_ACT_LOCAL_DATA && r->n_rrs)
		printf(" type %u rdlen %u", r->rrs[0].type, r->rrs[0].rdlen);
	printf("\n");
}

static int rule_sink(void *ctx, const struct bw_rule *r)
{
	(void)ctx;
	print_rule("rule", r);
	return 0;
}

struct owner_ctx {
	const struct bw_policy *p;
	uint8_t origin[255];
	size_t origin_len;
};

static int owner_lookup(void *ctx, const uint8_t *owner, size_t len, bw_xfr_rr_emit emit,
			void *ctx2)
{
	struct owner_ctx *o = ctx;
	return bw_policy_export_owner(o->p, 0, o->origin, o->origin_len, owner, len, emit, ctx2);
}

static struct bw_policy *load_policy(const char *path)
{
	struct bw_feed_conf fc = {.name = "xfr", .category = "malware", .format = BW_FEED_RPZ,
				  .file = (char *)path};
	struct bw_conf conf;
	struct bw_policy *p = NULL;

	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = &fc;
	conf.policy.n_feeds = 1;
	if (bw_policy_build(&conf, NULL, 1, &p) != 0)
		return NULL;
	return p;
}

/* -p mode: the policy after the transfer, exported and printed. */
static int policy_main(const char *lastgood, const char *exportfile, struct bw_xfr_result *r)
{
	struct bw_policy *p = load_policy(lastgood), *q = NULL;
	struct owner_ctx oc = {.p = p};
	int rc = 1;

	if (!p)
		return 1;
	memcpy(oc.origin, r->origin, r->origin_len);
	oc.origin_len = r->origin_len;
	if (r->kind == BW_XFR_DELTA) {
		struct bw_xfr_delta d;
		if (bw_xfr_delta_rules(r, owner_lookup, &oc, &d) != 0)
			goto out;
		printf("delta removes %zu adds %zu bad %zu\n", d.n_removes, d.n_adds, d.bad);
		rc = bw_policy_apply_delta(p, 0, d.adds, d.n_adds, d.removes, d.n_removes, 2, &q);
		bw_xfr_delta_free(&d);
		if (rc != 0)
			goto out;
	} else if (r->kind == BW_XFR_FULL) {
		FILE *f = fopen(lastgood, "w");
		if (!f)
			goto out;
		int wrc = bw_xfr_write_zone(r, f);
		fclose(f);
		if (wrc != 0)
			goto out;
		q = load_policy(lastgood);
		if (!q)
			goto out;
	}
	char origin[1024];
	bw_name_to_text(r->origin, r->origin_len, origin, sizeof(origin));
	FILE *f = fopen(exportfile, "w+");
	if (!f)
		goto out;
	char *text = NULL;
	long len = -1;
	if (bw_policy_export_feed(q ? q : p, 0, f, origin, r->soa.serial) == 0 && fflush(f) == 0)
		len = ftell(f);
	if (len >= 0 && (text = malloc((size_t)len + 1)) != NULL) {
		rewind(f);
		if (fread(text, 1, (size_t)len, f) != (size_t)len)
			len = -1;
	}
	fclose(f);
	if (len < 0 || !text) {
		free(text);
		goto out;
	}
	struct bw_parse_report rep;
	bw_parse_rpz(text, (size_t)len, "export", rule_sink, NULL, &rep);
	printf("rules %zu bad %zu\n", rep.rules, rep.bad);
	free(text);
	rc = 0;
out:
	bw_policy_free(q);
	bw_policy_free(p);
	return rc;
}

static int notify_main(int argc, char **argv, struct bw_tsig_key *key, int64_t now)
{
	struct sockaddr_storage primary, from;
	uint8_t zone[255], msg[65535], resp[65535];

	if (argc != 4 || parse_addr(argv[1], &primary) || parse_addr(argv[2], &from)) {
		fprintf(stderr, "usage: xfr_fetch notify [-k key] ZONE PRIMARY FROM MSGFILE\n");
		return 2;
	}
	int zl = bw_name_from_text(argv[0], strlen(argv[0]), zone);
	FILE *f = fopen(argv[3], "rb");
	if (zl < 1 || !f)
		return 2;
	size_t len = fread(msg, 1, sizeof(msg), f);
	fclose(f);
	struct bw_notify_zone z = {.name = zone,
				   .name_len = (size_t)zl,
				   .primaries = &primary,
				   .n_primaries = 1,
				   .key = key};
	size_t rlen = 0, zi = 0;
	uint32_t serial = 0;
	bool has = false;
	int rc = bw_notify_handle(&z, 1, (struct sockaddr *)&from, msg, len, now, resp,
				  sizeof(resp), &rlen, &zi, &serial, &has);
	if (rc == 0)
		printf("notify ok zone %zu serial %s%u\n", zi, has ? "" : "none ", serial);
	else
		printf("notify %s (%s)\n", rc == BW_EREFUSED ? "refused" : "bad", bw_strerror(rc));
	printf("response ");
	for (size_t i = 0; i < rlen; i++)
		printf("%02x", resp[i]);
	printf("\n");
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct bw_tsig_key key;
	struct bw_xfr_req req = {0};
	struct sockaddr_storage prim[8];
	const char *zonefile = NULL, *lastgood = NULL, *exportfile = NULL;
	bool have_key = false, notify = false;
	char err[256];
	int i = 1;

	bw_log_init(BW_LOG_ERR, false);
	if (i < argc && strcmp(argv[i], "notify") == 0) {
		notify = true;
		i++;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (i + 1 >= argc)
			return 2;
		if (strcmp(argv[i], "-k") == 0) {
			if (parse_key(argv[++i], &key) != 0)
				return 2;
			have_key = true;
		} else if (strcmp(argv[i], "-s") == 0) {
			req.have_serial = true;
			req.serial = (uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-a") == 0) {
			req.axfr_only = true;
		} else if (strcmp(argv[i], "-o") == 0) {
			zonefile = argv[++i];
		} else if (strcmp(argv[i], "-p") == 0) {
			lastgood = argv[++i];
		} else if (strcmp(argv[i], "-e") == 0) {
			exportfile = argv[++i];
		} else if (strcmp(argv[i], "-n") == 0) {
			req.now = strtoll(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-t") == 0) {
			req.timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			return 2;
		}
	}
	if (notify)
		return notify_main(argc - i, argv + i, have_key ? &key : NULL,
				   req.now ? req.now : (int64_t)time(NULL));
	if (argc - i < 2 || argc - i > 9) {
		fprintf(stderr, "usage: xfr_fetch [-k name:alg:secret] [-s serial] [-a] [-o file] "
				"ZONE ADDR[#PORT]...\n");
		return 2;
	}
	req.zone = argv[i++];
	for (size_t n = 0; i < argc; i++, n++) {
		if (parse_addr(argv[i], &prim[n]) != 0)
			return 2;
		req.n_primaries = n + 1;
	}
	req.primaries = prim;
	req.key = have_key ? &key : NULL;

	struct bw_xfr_result r;
	int rc = bw_xfr_fetch(&req, &r, err, sizeof(err));
	if (rc) {
		printf("error: %s (%s)\n", err, bw_strerror(rc));
		return 1;
	}
	size_t records = r.kind == BW_XFR_FULL ? r.zone.n : 0;
	for (size_t d = 0; d < r.n_diffs; d++)
		records += r.diffs[d].del.n + r.diffs[d].add.n;
	printf("kind %s serial %u records %zu messages %zu%s%s\n",
	       r.kind == BW_XFR_FULL ? "FULL" : r.kind == BW_XFR_DELTA ? "DELTA" : "UPTODATE",
	       r.soa.serial, records, r.messages, r.ixfr_was_full ? " ixfr-was-full" : "",
	       r.fell_back ? " fell-back" : "");
	if (lastgood && exportfile) {
		int prc = policy_main(lastgood, exportfile, &r);
		bw_xfr_result_free(&r);
		return prc;
	}
	if (r.kind == BW_XFR_FULL) {
		char *text = NULL;
		size_t tlen = 0;
		FILE *m = open_memstream(&text, &tlen);
		if (!m || bw_xfr_write_zone(&r, m) != 0)
			return 1;
		fclose(m);
		if (zonefile) {
			FILE *f = fopen(zonefile, "w");
			if (!f)
				return 1;
			fwrite(text, 1, tlen, f);
			fclose(f);
		}
		struct bw_parse_report rep;
		bw_parse_rpz(text, tlen, "xfr", rule_sink, NULL, &rep);
		printf("rules %zu bad %zu\n", rep.rules, rep.bad);
		free(text);
	} else if (r.kind == BW_XFR_DELTA) {
		struct bw_xfr_delta d;
		for (size_t k = 0; k < r.n_diffs; k++)
			printf("diff %u %u del %zu add %zu\n", r.diffs[k].from, r.diffs[k].to,
			       r.diffs[k].del.n, r.diffs[k].add.n);
		if (bw_xfr_delta_rules(&r, NULL, NULL, &d) != 0)
			return 1;
		for (size_t k = 0; k < d.n_removes; k++)
			print_rule("remove", &d.removes[k]);
		for (size_t k = 0; k < d.n_adds; k++)
			print_rule("add", &d.adds[k]);
		bw_xfr_delta_free(&d);
	}
	bw_xfr_result_free(&r);
	return 0;
}
