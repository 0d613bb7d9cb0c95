/*
 * tests/unit/bench_policy.c - policy snapshot benchmark: build time, bytes per name and RSS
 * for 1M generated list names and for the bench data of ../shared (1M-name list, 2M-record
 * RPZ), match time, and deltas and compaction against a 10M-name base. Not a test (it
 * asserts nothing about time) and not run by `make test`. Build and run from the
 * repository root:
 *
 *   make build/libbulwark.a
 *   cc -std=c17 -D_GNU_SOURCE -O2 -g -Isrc -o build/tests/bench_policy \
 *       tests/unit/bench_policy.c build/libbulwark.a \
 *       $(pkg-config --libs libunbound libevent yaml-0.1 libzscanner) -ljansson -pthread
 *   build/tests/bench_policy [1m] [rpz] [rpzonly] [10m]   (no argument: 1m and rpz)
 *
 * `rpzonly` builds the RPZ alone, so that the peak RSS printed is that of the RPZ load.
 *
 * Generated feed files go to /tmp (bw-bench-1m.domains 27 MB, bw-bench-10m.domains 290 MB)
 * and are reused by later runs. The 10M run needs about 1 GB of memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "policy/policy.h"
#include "policy/rules.h"

#define RPZ_FILE "/dev/shm/dnsbench/data/policy-1m.rpz"
#define DOMAINS_FILE "/dev/shm/dnsbench/data/policy-1m.domains"

static const char *const words[] = {
    "alpha",  "bravo",	"charlie", "delta",  "echo",	"foxtrot",  "golf",    "hotel",
    "india",  "juliet", "kilo",	   "lima",   "mike",	"november", "oscar",   "papa",
    "quebec", "romeo",	"sierra",  "tango",  "uniform", "victor",   "whiskey", "xray",
    "yankee", "zulu",	"login",   "secure", "update",	"account",  "verify"};

/* The i-th generated name (the generator of docs/internals/snapshot.md). */
static int gen_name(char *out, size_t cap, size_t i)
{
	return snprintf(out, cap, "%zu-%s.example%zu.com", i,
			words[(i * 7919) % (sizeof(words) / sizeof(words[0]))], i % 50);
}

static const char *make_file(size_t n)
{
	static char path[64];
	struct stat sb;
	char name[96];

	snprintf(path, sizeof(path), "/tmp/bw-bench-%zum.domains", n / 1000000);
	if (stat(path, &sb) == 0 && sb.st_size > 0)
		return path;
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		gen_name(name, sizeof(name), i);
		fprintf(f, "%s\n", name);
	}
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	return path;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	return (double)bw_now_ns() / 1e9;
}

/* VmRSS or VmHWM from /proc/self/status, in MB. */
static double proc_mb(const char *key)
{
	char line[256];
	double kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			kb = strtod(line + strlen(key) + 1, NULL);
			break;
		}
	}
	fclose(f);
	return kb / 1024;
}

static struct bw_policy *build_one(const char *label, const char *file, enum bw_feed_format fmt,
				   size_t names)
{
	struct bw_feed_conf feed = {
	    .name = "bench", .category = "bench", .format = fmt, .file = (char *)file};
	struct bw_conf conf;
	struct bw_policy *p = NULL;

	memset(&conf, 0, sizeof(conf));
	conf.policy.feeds = &feed;
	conf.policy.n_feeds = 1;
	double rss0 = proc_mb("VmRSS"), c0 = cpu_s(), w0 = wall_s();
	int err = bw_policy_build(&conf, NULL, 1, &p);
	double c1 = cpu_s(), w1 = wall_s(), rss1 = proc_mb("VmRSS");
	if (err) {
		fprintf(stderr, "%s: build failed: %s\n", label, bw_strerror(err));
		exit(1);
	}
	const struct bw_feed_status *fs = bw_policy_feed_status(p, 0);
	size_t mem = bw_policy_memory(p);
	printf("%s: %zu names (%zu entries, %zu bad), build %.3f s wall, %.3f s CPU\n", label,
	       names, bw_policy_entries(p), fs->bad_lines, w1 - w0, c1 - c0);
	printf("%s: snapshot %.1f MB = %.1f bytes/name; RSS +%.1f MB (now %.1f MB, peak %.1f MB)\n",
	       label, (double)mem / 1e6, (double)mem / (double)bw_policy_entries(p), rss1 - rss0,
	       rss1, proc_mb("VmHWM"));
	return p;
}

/* ns per bw_policy_match_qname over generated names, half of them listed (subdomains). */
static void bench_match(const char *label, const struct bw_policy *p, size_t n_listed)
{
	enum { N = 1000000 };
	uint8_t(*w)[255] = malloc((size_t)N * 255);
	size_t *len = malloc(N * sizeof(*len));
	char name[128];
	size_t hits = 0;
	uint64_t x = 12345;

	if (!w || !len)
		exit(1);
	for (size_t i = 0; i < N; i++) {
		const char *reason;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t k = (size_t)(x % n_listed);
		char gen[96];
		gen_name(gen, sizeof(gen), k);
		if (i % 2) /* listed: a subdomain of a listed name */
			snprintf(name, sizeof(name), "www.%s", gen);
		else /* not listed: same labels under another TLD */
			snprintf(name, sizeof(name), "%s.net", gen);
		len[i] = bw_feed_name_to_wire(name, strlen(name), w[i], &reason);
	}
	struct bw_verdict v;
	double c0 = cpu_s(), w0 = wall_s();
	for (size_t i = 0; i < N; i++)
		hits += bw_policy_match_qname(p, 0, w[i], len[i], &v);
	double c1 = cpu_s(), w1 = wall_s();
	printf("%s: match %.0f ns wall, %.0f ns CPU per name (%zu of %d matched)\n", label,
	       (w1 - w0) * 1e9 / N, (c1 - c0) * 1e9 / N, hits, N);
	free(w);
	free(len);
}

static void run_1m(void)
{
	const char *file = make_file(1000000);
	struct bw_policy *p = build_one("1m domains", file, BW_FEED_DOMAINS, 1000000);

	bench_match("1m domains", p, 1000000);
	bw_policy_free(p);
}

/* The benchmark data of ../shared/bench: the same 1M names as a list and as RPZ (only the
 * RPZ with `list`: its peak RSS is then its own). */
static void run_rpz(bool list)
{
	struct stat sb;

	if (!list) {
		/* the peak RSS of the RPZ build alone */
	} else if (stat(DOMAINS_FILE, &sb) == 0) {
		struct bw_policy *p =
		    build_one("bench 1m domains", DOMAINS_FILE, BW_FEED_DOMAINS, 1000000);
		bw_policy_free(p);
	} else {
		printf("domains: %s not found, skipped\n", DOMAINS_FILE);
	}
	if (stat(RPZ_FILE, &sb) != 0) {
		printf("rpz: %s not found, skipped\n", RPZ_FILE);
		return;
	}
	struct bw_policy *p = build_one("bench 2m-record rpz", RPZ_FILE, BW_FEED_RPZ, 1000000);
	bw_policy_free(p);
}

/* Rules for `n` names from index `from` (QNAME + WILDCARD each: 2n rules). */
static struct bw_rule *delta_rules(size_t from, size_t n, uint8_t (*names)[255])
{
	struct bw_rule *r = calloc(2 * n, sizeof(*r));
	char text[96];

	if (!r)
		exit(1);
	for (size_t i = 0; i < n; i++) {
		const char *reason;
		gen_name(text, sizeof(text), from + i * 7);
		size_t len = bw_feed_name_to_wire(text, strlen(text), names[i], &reason);
		for (int t = 0; t < 2; t++) {
			struct bw_rule *x = &r[2 * i + (size_t)t];
			x->trigger = t ? BW_TRIG_WILDCARD : BW_TRIG_QNAME;
			x->name = names[i];
			x->name_len = len;
			x->action = BW_ACT_NXDOMAIN;
			x->ttl = 300;
		}
	}
	return r;
}

static void run_10m(void)
{
	const size_t n = 10000000, k = 250; /* 250 names = 500 rules each way */
	const char *file = make_file(n);
	struct bw_policy *p = build_one("10m domains", file, BW_FEED_DOMAINS, n);
	static uint8_t add_names[2][250][255], rem_names[2][250][255];
	struct bw_policy *q1, *q2, *c;

	for (int round = 0; round < 2; round++) {
		struct bw_rule *adds = delta_rules(n + (size_t)round * 10000, k, add_names[round]);
		struct bw_rule *rems = delta_rules((size_t)round * 5000000, k, rem_names[round]);
		const struct bw_policy *from = round ? q1 : p;
		struct bw_policy **to = round ? &q2 : &q1;
		double c0 = cpu_s(), w0 = wall_s();
		int err = bw_policy_apply_delta(from, 0, adds, 2 * k, rems, 2 * k, 2 + round, to);
		double c1 = cpu_s(), w1 = wall_s();
		if (err) {
			fprintf(stderr, "delta: %s\n", bw_strerror(err));
			exit(1);
		}
		printf("10m delta %d (%zu adds + %zu removes%s): %.2f ms wall, %.2f ms CPU, "
		       "entries %zu, overlay+base %.1f MB\n",
		       round + 1, 2 * k, 2 * k, round ? ", stacked" : "", (w1 - w0) * 1e3,
		       (c1 - c0) * 1e3, bw_policy_entries(*to),
		       (double)bw_policy_memory(*to) / 1e6);
		free(adds);
		free(rems);
	}
	struct bw_verdict v;
	if (!bw_policy_match(q2, add_names[1][3], 1 + strlen((char *)add_names[1][3]), &v) ||
	    bw_policy_match(q2, rem_names[0][3], 1 + strlen((char *)rem_names[0][3]), &v)) {
		fprintf(stderr, "delta: wrong answers\n");
		exit(1);
	}
	bench_match("10m + 2 deltas", q2, n);
	double c0 = cpu_s(), w0 = wall_s();
	int err = bw_policy_compact(q2, 10, &c);
	double c1 = cpu_s(), w1 = wall_s();
	if (err) {
		fprintf(stderr, "compact: %s\n", bw_strerror(err));
		exit(1);
	}
	printf("10m compact: %.2f s wall, %.2f s CPU, entries %zu, %.1f MB, peak RSS %.0f MB\n",
	       w1 - w0, c1 - c0, bw_policy_entries(c), (double)bw_policy_memory(c) / 1e6,
	       proc_mb("VmHWM"));
	bw_policy_free(p);
	bw_policy_free(q1);
	bw_policy_free(q2);
	bw_policy_free(c);
}

int main(int argc, char **argv)
{
	bw_log_set_level(BW_LOG_ERR);
	if (argc < 2) {
		run_1m();
		run_rpz(true);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "1m") == 0)
			run_1m();
		else if (strcmp(argv[i], "rpz") == 0)
			run_rpz(true);
		else if (strcmp(argv[i], "rpzonly") == 0)
			run_rpz(false);
		else if (strcmp(argv[i], "10m") == 0)
			run_10m();
		else
			fprintf(stderr, "unknown run %s (1m, rpz, rpzonly, 10m)\n", argv[i]);
	}
	return 0;
}
