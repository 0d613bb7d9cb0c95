/* ubmode.c - compare libunbound's two asynchronous modes on one worker loop.
 *
 * Build: cc -std=c17 -D_GNU_SOURCE -O2 -o /tmp/ubmode bench/ubmode.c -lunbound -levent -pthread
 *
 * Usage:
 *   ubmode event|async NAMES_FILE [N=20000] [W=200] [CACHE=64m] [FWD=127.0.0.1@5300]
 *     Resolves the first N lines of NAMES_FILE ("name TYPE", TYPE A or AAAA)
 *     with W queries outstanding, twice on one ub_ctx: pass "miss" (cold
 *     libunbound cache, every name goes to FWD) and pass "hit" (same names,
 *     answered from libunbound's cache).  One line per pass: wall time,
 *     queries/s, process CPU time (all threads, getrusage) per query,
 *     CPU seconds, seconds our threads sat runnable waiting for a CPU
 *     (runq_wait_s, /proc schedstat; exited threads not counted),
 *     callbacks run inside ub_resolve_* (sync_cb), context switches.
 *     CACHE sets msg-cache-size and rrset-cache-size ("default" keeps
 *     libunbound's 4m, which holds fewer than 20000 of these answers, so the
 *     second pass would miss again).
 *   ubmode probe [FWD]
 *     Shows what each mode hands back for NOERROR, NODATA, NXDOMAIN, CNAME.
 *
 *   event: ub_ctx_create_event(base) + ub_resolve_event; callbacks run on the
 *          caller's libevent loop, get the raw wire packet.
 *   async: ub_ctx_create + ub_ctx_async(ctx, 1) (libunbound's own thread) +
 *          ub_resolve_async; the caller's libevent loop watches ub_fd() and
 *          calls ub_process(), callbacks get a parsed struct ub_result.
 * Both: forward "." to FWD, do-not-query-localhost: no, module-config:
 * iterator, qname-minimisation: no, msg/rrset-cache-size CACHE.  New queries
 * are submitted by the loop after each loop iteration (as a worker would on
 * reading client queries).
 * Only sends traffic to FWD.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unbound-event.h>
#include <unbound.h>

struct q { char *name; int type; };

static struct q *qs;
static int nq, win;
static int next_q, inflight, done, ok, fail, nonoerr;
static int in_resolve, sync_cb; /* callbacks run inside the ub_resolve_* call */
static struct ub_ctx *ctx;
static int mode_event;

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s\n", what, err ? ub_strerror(err) : strerror(errno));
	exit(1);
}

static const char *cache_size = "64m";

static void setopts(struct ub_ctx *c, const char *fwd)
{
	int r;
	if (strcmp(cache_size, "default") != 0) {
		if ((r = ub_ctx_set_option(c, "msg-cache-size:", cache_size))) die("msg-cache-size", r);
		if ((r = ub_ctx_set_option(c, "rrset-cache-size:", cache_size))) die("rrset-cache-size", r);
	}
	if ((r = ub_ctx_set_option(c, "do-not-query-localhost:", "no"))) die("do-not-query-localhost", r);
	if ((r = ub_ctx_set_option(c, "module-config:", "iterator"))) die("module-config", r);
	if ((r = ub_ctx_set_option(c, "qname-minimisation:", "no"))) die("qname-minimisation", r);
	if ((r = ub_ctx_set_fwd(c, fwd))) die("ub_ctx_set_fwd", r);
}

static int pkt_rcode(const unsigned char *p, int len) { return len >= 12 ? (p[3] & 0x0f) : -1; }
static int pkt_ancount(const unsigned char *p, int len) { return len >= 12 ? (p[6] << 8 | p[7]) : -1; }

static void finish_one(int good, int rc)
{
	inflight--; done++;
	if (in_resolve) sync_cb++;
	if (good) ok++; else fail++;
	if (good && rc != 0) nonoerr++;
}

static void ev_cb(void *arg, int rcode, void *pkt, int len, int sec, char *why, int rl)
{
	(void)arg; (void)sec; (void)why; (void)rl;
	if (rcode != 0 || !pkt) { finish_one(0, rcode); return; }
	/* a worker would copy/patch the packet into its reply here; we read the header */
	finish_one(pkt_ancount(pkt, len) > 0, pkt_rcode(pkt, len));
}

static void as_cb(void *arg, int err, struct ub_result *res)
{
	(void)arg;
	if (err || !res) { finish_one(0, err); if (res) ub_resolve_free(res); return; }
	finish_one(res->rcode == 0 && res->havedata, res->rcode);
	ub_resolve_free(res);
}

static void fd_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	int r = ub_process(ctx);
	if (r) die("ub_process", r);
}

static void refill(void)
{
	while (inflight < win && next_q < nq) {
		struct q *q = &qs[next_q++];
		inflight++;
		in_resolve = 1;
		int r = mode_event ? ub_resolve_event(ctx, q->name, q->type, 1, NULL, ev_cb, NULL)
		                   : ub_resolve_async(ctx, q->name, q->type, 1, NULL, as_cb, NULL);
		in_resolve = 0;
		if (r) die("resolve", r);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* sum of run_delay (time runnable but waiting for a CPU) over our threads */
static double run_delay(void)
{
	double t = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300];
		unsigned long long on, wait;
		if (e->d_name[0] == '.') continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fscanf(f, "%llu %llu", &on, &wait) == 2) t += wait / 1e9;
		if (f) fclose(f);
	}
	if (d) closedir(d);
	return t;
}

static void run_pass(struct event_base *base, const char *mode, const char *pass)
{
	next_q = inflight = done = ok = fail = nonoerr = sync_cb = 0;
	struct rusage r0, ru;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = now(), c0 = cpu(), d0 = run_delay();
	refill();
	while (done < nq) {
		if (event_base_loop(base, EVLOOP_ONCE) < 0) die("event_base_loop", 0);
		refill();
	}
	double wall = now() - t0, c = cpu() - c0, rd = run_delay() - d0;
	getrusage(RUSAGE_SELF, &ru);
	printf("mode=%s pass=%s n=%d w=%d cache=%s wall_s=%.3f qps=%.0f cpu_us_per_q=%.2f cpu_s=%.3f runq_wait_s=%.3f ok=%d fail=%d non_noerror=%d sync_cb=%d vcsw=%ld ivcsw=%ld maxrss_kb=%ld\n",
	       mode, pass, nq, win, cache_size, wall, nq / wall, c * 1e6 / nq, c, rd, ok, fail, nonoerr, sync_cb,
	       ru.ru_nvcsw - r0.ru_nvcsw, ru.ru_nivcsw - r0.ru_nivcsw, ru.ru_maxrss);
	fflush(stdout);
}

static void load(const char *file, int n)
{
	FILE *f = fopen(file, "r");
	if (!f) die(file, 0);
	qs = calloc(n, sizeof *qs);
	char name[512], type[32];
	while (nq < n && fscanf(f, "%511s %31s", name, type) == 2) {
		qs[nq].name = strdup(name);
		qs[nq].type = strcmp(type, "AAAA") == 0 ? 28 : strcmp(type, "TXT") == 0 ? 16 : 1;
		nq++;
	}
	fclose(f);
	if (nq < n) fprintf(stderr, "warning: only %d names\n", nq);
}

/* ---- probe: what do the callbacks see for NOERROR / NODATA / NXDOMAIN ---- */
static int probe_left;
static void probe_ev_cb(void *arg, int rcode, void *pkt, int len, int sec, char *why, int rl)
{
	(void)why; (void)rl;
	const unsigned char *p = pkt;
	printf("event  %-28s cb_rcode=%d sec=%d pkt_len=%d", (char *)arg, rcode, sec, len);
	if (p && len >= 12)
		printf(" hdr: id=%u qr=%d aa=%d rd=%d ra=%d rcode=%d qd=%d an=%d ns=%d ar=%d",
		       p[0] << 8 | p[1], p[2] >> 7, (p[2] >> 2) & 1, p[2] & 1, p[3] >> 7, p[3] & 15,
		       p[4] << 8 | p[5], p[6] << 8 | p[7], p[8] << 8 | p[9], p[10] << 8 | p[11]);
	printf("\n");
	probe_left--;
}
static void probe_as_cb(void *arg, int err, struct ub_result *r)
{
	printf("async  %-28s err=%d", (char *)arg, err);
	if (r) {
		const unsigned char *p = r->answer_packet;
		printf(" rcode=%d havedata=%d nxdomain=%d answer_len=%d hdr_rcode=%d an=%d",
		       r->rcode, r->havedata, r->nxdomain, r->answer_len,
		       pkt_rcode(p, r->answer_len), pkt_ancount(p, r->answer_len));
		ub_resolve_free(r);
	}
	printf("\n");
	probe_left--;
}

static void probe(const char *fwd)
{
	static const struct { const char *label, *name; int type; } t[] = {
		{"NOERROR www.example.com/A", "www.example.com", 1},
		{"NODATA  www.example.com/TXT", "www.example.com", 16},
		{"CNAME   foo.example.net/A", "foo.example.net", 1},
		{"NXDOMAIN nx.bench-cdn/A", "nx.bench-cdn", 1},
	};
	int n = sizeof t / sizeof t[0], r;
	struct event_base *base = event_base_new();
	struct ub_ctx *c = ub_ctx_create_event(base);
	if (!c) die("ub_ctx_create_event", 0);
	setopts(c, fwd);
	for (int pass = 0; pass < 2; pass++) { /* 2nd pass: from libunbound's cache */
		probe_left = n;
		for (int i = 0; i < n; i++)
			if ((r = ub_resolve_event(c, t[i].name, t[i].type, 1, (void *)t[i].label, probe_ev_cb, NULL)))
				die("ub_resolve_event", r);
		while (probe_left > 0) event_base_loop(base, EVLOOP_ONCE);
		if (pass == 0) printf("-- again (cached) --\n");
	}
	ub_ctx_delete(c);
	event_base_free(base);
	c = ub_ctx_create();
	setopts(c, fwd);
	if ((r = ub_ctx_async(c, 1))) die("ub_ctx_async", r);
	probe_left = n;
	for (int i = 0; i < n; i++)
		if ((r = ub_resolve_async(c, t[i].name, t[i].type, 1, (void *)t[i].label, probe_as_cb, NULL)))
			die("ub_resolve_async", r);
	while (probe_left > 0) ub_wait(c);
	ub_ctx_delete(c);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
		probe(argc > 2 ? argv[2] : "127.0.0.1@5300");
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "event") && strcmp(argv[1], "async"))) {
		fprintf(stderr, "usage: %s event|async NAMES_FILE [N] [W] [CACHE] [FWD] | probe [FWD]\n", argv[0]);
		return 2;
	}
	mode_event = strcmp(argv[1], "event") == 0;
	int n = argc > 3 ? atoi(argv[3]) : 20000;
	win = argc > 4 ? atoi(argv[4]) : 200;
	if (argc > 5) cache_size = argv[5];
	const char *fwd = argc > 6 ? argv[6] : "127.0.0.1@5300";
	load(argv[2], n);

	struct event_base *base = event_base_new();
	if (!base) die("event_base_new", 0);
	struct event *fdev = NULL;
	int r;
	if (mode_event) {
		if (!(ctx = ub_ctx_create_event(base))) die("ub_ctx_create_event", 0);
		setopts(ctx, fwd);
	} else {
		if (!(ctx = ub_ctx_create())) die("ub_ctx_create", 0);
		setopts(ctx, fwd);
		if ((r = ub_ctx_async(ctx, 1))) die("ub_ctx_async", r);
		fdev = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST, fd_cb, NULL);
		event_add(fdev, NULL);
	}
	run_pass(base, argv[1], "miss");
	run_pass(base, argv[1], "hit");
	if (fdev) event_free(fdev);
	ub_ctx_delete(ctx);
	event_base_free(base);
	for (int i = 0; i < nq; i++) free(qs[i].name);
	free(qs);
	return 0;
}
