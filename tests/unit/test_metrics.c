/*
 * tests/unit/test_metrics.c - unit tests for the Prometheus exposition formatter, the
 * latency histogram, the stable label slots (telemetry/metrics.h) and the dnstap address
 * truncation (telemetry/dnstap.h).
 *
 * The formatter's output is checked line by line by a strict reader of the text format:
 * every sample follows the HELP and TYPE of its family, no family or series twice, label
 * values escaped, counters end in _total, histogram buckets cumulative up to +Inf with
 * _count equal to the +Inf bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "telemetry/dnstap.h"
#include "telemetry/metrics.h"

/* The exposition of s as a NUL-terminated heap string. */
static char *format(const struct bw_metrics_sample *s)
{
	struct evbuffer *b = evbuffer_new();
	assert_non_null(b);
	assert_int_equal(bw_metrics_format(s, b), 0);
	size_t n = evbuffer_get_length(b);
	char *text = malloc(n + 1);
	assert_non_null(text);
	evbuffer_remove(b, text, n);
	text[n] = 0;
	evbuffer_free(b);
	return text;
}

#define MAXF 64
#define MAXS 1024

struct parsed {
	char fam[MAXF][64];
	char type[MAXF][16];
	unsigned nfam;
	char series[MAXS][512]; /* name{labels} */
	double val[MAXS];
	unsigned nser;
};

static bool name_ok(const char *s, size_t n)
{
	if (!n || !(s[0] == '_' || s[0] == ':' || (s[0] | 32) >= 'a') || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Checks "{a="x",b="y"}" from *p (escapes \\ \" \n only); moves *p past it. */
static void check_labels(const char **p)
{
	const char *s = *p;
	assert_true(*s == '{');
	s++;
	while (*s != '}') {
		const char *k = s;
		while (*s && *s != '=')
			s++;
		assert_true(name_ok(k, (size_t)(s - k)));
		assert_true(s[0] == '=' && s[1] == '"');
		s += 2;
		while (*s != '"') {
			assert_true(*s && *s != '\n');
			if (*s == '\\') {
				s++;
				assert_true(*s == '\\' || *s == '"' || *s == 'n');
			}
			s++;
		}
		s++;
		if (*s == ',')
			s++;
		else
			assert_true(*s == '}');
	}
	*p = s + 1;
}

static void parse(const char *text, struct parsed *o)
{
	memset(o, 0, sizeof(*o));
	const char *cur_fam = NULL, *cur_type = NULL;
	bool helped = false;
	char help_of[64] = "";
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
		const char *end = strchr(line, '\n');
		size_t len = (size_t)(end - line);
		char buf[600];
		assert_true(len > 0 && len < sizeof(buf));
		memcpy(buf, line, len);
		buf[len] = 0;
		if (!strncmp(buf, "# HELP ", 7)) {
			char *sp = strchr(buf + 7, ' ');
			assert_non_null(sp);
			assert_true(strlen(sp + 1) > 0);
			snprintf(help_of, sizeof(help_of), "%.*s", (int)(sp - (buf + 7)), buf + 7);
			helped = true;
			continue;
		}
		if (!strncmp(buf, "# TYPE ", 7)) {
			char name[64], type[16];
			assert_int_equal(sscanf(buf + 7, "%63s %15s", name, type), 2);
			assert_true(helped && !strcmp(name, help_of));
			helped = false;
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
				    !strcmp(type, "histogram"));
			for (unsigned i = 0; i < o->nfam; i++)
				assert_string_not_equal(o->fam[i], name);
			assert_true(o->nfam < MAXF);
			snprintf(o->fam[o->nfam], sizeof(o->fam[0]), "%s", name);
			snprintf(o->type[o->nfam], sizeof(o->type[0]), "%s", type);
			cur_fam = o->fam[o->nfam];
			cur_type = o->type[o->nfam];
			o->nfam++;
			continue;
		}
		assert_true(buf[0] != '#');
		assert_non_null(cur_fam);
		/* name, optional labels, one space, value */
		const char *p = buf;
		while (*p && *p != '{' && *p != ' ')
			p++;
		size_t nlen = (size_t)(p - buf);
		assert_true(name_ok(buf, nlen));
		if (!strcmp(cur_type, "histogram")) {
			size_t fl = strlen(cur_fam);
			assert_true(nlen > fl && !strncmp(buf, cur_fam, fl));
			const char *suf = buf + fl;
			assert_true(!strncmp(suf, "_bucket", 7) || !strncmp(suf, "_sum", 4) ||
				    !strncmp(suf, "_count", 6));
		} else {
			assert_true(nlen == strlen(cur_fam) && !strncmp(buf, cur_fam, nlen));
			if (!strcmp(cur_type, "counter"))
				assert_true(nlen > 6 && !strncmp(buf + nlen - 6, "_total", 6));
		}
		if (*p == '{')
			check_labels(&p);
		assert_true(*p == ' ');
		char *vend;
		double v = strtod(p + 1, &vend); /* numbers, +Inf, NaN */
		assert_true(*vend == 0 && vend > p + 1);
		if (strcmp(cur_type, "gauge"))
			assert_true(v >= 0);
		size_t slen = (size_t)(p - buf);
		for (unsigned i = 0; i < o->nser; i++)
			assert_false(strlen(o->series[i]) == slen && !strncmp(o->series[i], buf, slen));
		assert_true(o->nser < MAXS);
		snprintf(o->series[o->nser], sizeof(o->series[0]), "%.*s", (int)slen, buf);
		o->val[o->nser++] = v;
	}
}

static double get(const struct parsed *o, const char *series)
{
	for (unsigned i = 0; i < o->nser; i++)
		if (!strcmp(o->series[i], series))
			return o->val[i];
	fail_msg("no series %s", series);
	return -1;
}

static bool has(const struct parsed *o, const char *prefix)
{
	for (unsigned i = 0; i < o->nser; i++)
		if (!strncmp(o->series[i], prefix, strlen(prefix)))
			return true;
	return false;
}

static struct bw_metrics_sample *sample(void)
{
	struct bw_metrics_sample *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->workers = 3;
	s->queries_udp = 10;
	s->queries_tcp = 2;
	s->c.rcode[0] = 7;
	s->c.rcode[3] = 5;
	s->n_feed_slots = 2;
	snprintf(s->feed_slot[0][0], BW_METRICS_LABEL_MAX, "urlhaus");
	snprintf(s->feed_slot[0][1], BW_METRICS_LABEL_MAX, "malware");
	snprintf(s->feed_slot[1][0], BW_METRICS_LABEL_MAX, "we\"ird\\feed\nname");
	snprintf(s->feed_slot[1][1], BW_METRICS_LABEL_MAX, "phishing");
	s->c.feed_blocked[0] = 4;
	s->c.feed_blocked[1] = 1;
	s->n_profile_slots = 1;
	snprintf(s->profile_slot[0], BW_METRICS_LABEL_MAX, "default");
	s->c.profile[0] = 12;
	s->n_feeds = 2;
	snprintf(s->feed[0].name, BW_METRICS_LABEL_MAX, "urlhaus");
	snprintf(s->feed[0].category, BW_METRICS_LABEL_MAX, "malware");
	s->feed[0].entries = 1234;
	s->feed[0].age_sec = 60;
	snprintf(s->feed[1].name, BW_METRICS_LABEL_MAX, "scam");
	snprintf(s->feed[1].category, BW_METRICS_LABEL_MAX, "phishing");
	s->feed[1].failed = true;
	s->feed[1].age_sec = -1;
	snprintf(s->feed[1].error, BW_METRICS_LABEL_MAX, "file \"x\" not found");
	return s;
}

static void test_exposition_is_strict(void **state)
{
	(void)state;
	struct bw_metrics_sample *s = sample();
	bw_metrics_observe_us(&s->c, 300);     /* 0.0005 */
	bw_metrics_observe_us(&s->c, 700);     /* 0.001 */
	bw_metrics_observe_us(&s->c, 30000);   /* 0.05 */
	bw_metrics_observe_us(&s->c, 9000000); /* +Inf */
	char *text = format(s);
	struct parsed *o = malloc(sizeof(*o));
	assert_non_null(o);
	parse(text, o);

	assert_true(get(o, "bulwark_workers") == 3);
	assert_true(get(o, "bulwark_queries_total{transport=\"udp\"}") == 10);
	assert_true(get(o, "bulwark_responses_total{rcode=\"NXDOMAIN\"}") == 5);
	assert_true(get(o, "bulwark_profile_queries_total{profile=\"default\"}") == 12);
	assert_true(get(o, "bulwark_blocked_total{feed=\"urlhaus\",category=\"malware\"}") == 4);
	/* escaping: " -> \", \ -> \\, newline -> \n */
	assert_true(get(o, "bulwark_blocked_total{feed=\"we\\\"ird\\\\feed\\nname\","
			   "category=\"phishing\"}") == 1);
	assert_true(get(o, "bulwark_feed_entries{feed=\"urlhaus\",category=\"malware\"}") == 1234);
	assert_true(get(o, "bulwark_feed_age_seconds{feed=\"urlhaus\"}") == 60);
	assert_false(has(o, "bulwark_feed_age_seconds{feed=\"scam\"}")); /* unknown: left out */
	assert_true(get(o, "bulwark_feed_load_failed{feed=\"scam\"}") == 1);
	assert_true(get(o, "bulwark_feed_load_failed{feed=\"urlhaus\"}") == 0);
	assert_true(get(o, "bulwark_feed_last_error_info{feed=\"scam\",error=\"file \\\"x\\\" not "
			   "found\"}") == 1);

	/* the histogram: cumulative, +Inf == _count, _sum in seconds */
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"0.0005\"}") == 1);
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"0.001\"}") == 2);
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"0.025\"}") == 2);
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"0.05\"}") == 3);
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"5\"}") == 3);
	assert_true(get(o, "bulwark_backend_latency_seconds_bucket{le=\"+Inf\"}") == 4);
	assert_true(get(o, "bulwark_backend_latency_seconds_count") == 4);
	double sum = get(o, "bulwark_backend_latency_seconds_sum");
	assert_true(sum > 9.030999 && sum < 9.031001);
	double prev = 0;
	unsigned nb = 0;
	for (unsigned i = 0; i < o->nser; i++) {
		if (strncmp(o->series[i], "bulwark_backend_latency_seconds_bucket", 38))
			continue;
		if (strstr(o->series[i], "+Inf"))
			continue;
		assert_true(o->val[i] >= prev);
		prev = o->val[i];
		nb++;
	}
	assert_int_equal(nb, BW_METRICS_LAT_BUCKETS);

	/* not connected: not exported */
	assert_false(has(o, "bulwark_telemetry_dropped_total"));
	assert_false(has(o, "bulwark_query_log_"));
	assert_false(has(o, "bulwark_dnstap_"));
	free(text);

	s->have_telemetry = true;
	s->telemetry_dropped = 9;
	s->query_log_waiting = 12;
	s->query_log_spool_bytes = 4096;
	s->dnstap = true;
	s->c.dnstap_sent = 100;
	s->c.dnstap_dropped = 2;
	text = format(s);
	parse(text, o);
	assert_true(get(o, "bulwark_telemetry_dropped_total") == 9);
	assert_true(get(o, "bulwark_query_log_waiting") == 12);
	assert_true(get(o, "bulwark_query_log_spool_bytes") == 4096);
	assert_true(get(o, "bulwark_dnstap_messages_total") == 100);
	assert_true(get(o, "bulwark_dnstap_dropped_total") == 2);
	free(text);
	free(o);
	free(s);
}

/* The +Inf bucket holds every observation; check it through the text. */
static void test_inf_bucket_equals_count(void **state)
{
	(void)state;
	struct bw_metrics_sample *s = sample();
	for (uint64_t us = 1; us < 20000000; us = us * 3 + 1)
		bw_metrics_observe_us(&s->c, us);
	char *text = format(s);
	const char *inf = strstr(text, "bulwark_backend_latency_seconds_bucket{le=\"+Inf\"} ");
	const char *cnt = strstr(text, "\nbulwark_backend_latency_seconds_count ");
	assert_non_null(inf);
	assert_non_null(cnt);
	unsigned long a = strtoul(inf + strlen("bulwark_backend_latency_seconds_bucket{le=\"+Inf\"} "),
				  NULL, 10);
	unsigned long b = strtoul(cnt + strlen("\nbulwark_backend_latency_seconds_count "), NULL, 10);
	assert_int_equal(a, b);
	assert_int_equal(b, s->c.lat_count);
	free(text);
	free(s);
}

static void test_counts_add(void **state)
{
	(void)state;
	struct bw_metrics_counts a = {0}, b = {0};
	a.rcode[2] = 1;
	b.rcode[2] = 2;
	b.feed_blocked[BW_METRICS_FEED_SLOTS - 1] = 5;
	b.profile[3] = 7;
	bw_metrics_observe_us(&b, 100);
	b.dnstap_dropped = 4;
	bw_metrics_counts_add(&a, &b);
	bw_metrics_counts_add(&a, &b);
	assert_int_equal(a.rcode[2], 5);
	assert_int_equal(a.feed_blocked[BW_METRICS_FEED_SLOTS - 1], 10);
	assert_int_equal(a.profile[3], 14);
	assert_int_equal(a.lat_bucket[0], 2);
	assert_int_equal(a.lat_count, 2);
	assert_int_equal(a.lat_sum_us, 200);
	assert_int_equal(a.dnstap_dropped, 8);
}

static void test_slots_stable_and_capped(void **state)
{
	(void)state;
	struct bw_metrics_slots s;
	assert_int_equal(bw_metrics_slots_init(&s, 4), 0);
	assert_int_equal(bw_metrics_slot(&s, "a", "x"), 0);
	assert_int_equal(bw_metrics_slot(&s, "b", "x"), 1);
	assert_int_equal(bw_metrics_slot(&s, "a", "y"), 2); /* same feed, other category */
	assert_int_equal(bw_metrics_slot(&s, "a", "x"), 0); /* stable */
	assert_int_equal(bw_metrics_slot(&s, "c", "x"), 3); /* full: the shared last slot */
	assert_int_equal(bw_metrics_slot(&s, "d", "x"), 3);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.a[3], "_other");
	assert_int_equal(bw_metrics_slot(&s, "b", "x"), 1);
	bw_metrics_slots_free(&s);
}

static void test_escape(void **state)
{
	(void)state;
	char buf[16];
	assert_string_equal(bw_metrics_escape("a\"b\\c\nd", buf, sizeof(buf)), "a\\\"b\\\\c\\nd");
	/* cut, never past the buffer, never half an escape */
	assert_string_equal(bw_metrics_escape("\"\"\"\"\"\"\"\"\"\"", buf, 8), "\\\"\\\"\\\"");
}

static void test_truncate(void **state)
{
	(void)state;
	uint8_t v4[4] = {192, 0, 2, 77};
	bw_dnstap_truncate(AF_INET, v4);
	assert_memory_equal(v4, ((uint8_t[]){192, 0, 2, 0}), 4);
	uint8_t v6[16];
	memset(v6, 0xff, sizeof(v6));
	bw_dnstap_truncate(AF_INET6, v6);
	for (int i = 0; i < 16; i++)
		assert_int_equal(v6[i], i < 7 ? 0xff : 0); /* /56: seven bytes kept */
}

/* Loads the YAML text from a temporary file. */
static struct bw_conf *load(const char *yaml, char *err, size_t errlen)
{
	char path[] = "/tmp/bw-test-metrics-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	struct bw_conf *c = NULL;
	int rc = bw_conf_load(path, &c, err, errlen);
	unlink(path);
	return rc == 0 ? c : NULL;
}

static void test_conf_sections(void **state)
{
	(void)state;
	char err[512];
	struct bw_conf *c = load("log: { level: info }\n", err, sizeof(err));
	assert_non_null(c);
	assert_false(c->metrics.enabled); /* both off unless written */
	assert_false(c->dnstap.enabled);
	bw_conf_free(c);

	c = load("metrics: { port: 9999 }\ndnstap: { socket: tap.sock, identity: n1 }\n", err,
		 sizeof(err));
	assert_non_null(c);
	assert_true(c->metrics.enabled);
	assert_string_equal(c->metrics.address, "127.0.0.1"); /* loopback by default */
	assert_int_equal(c->metrics.port, 9999);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->metrics.addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9999);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_true(c->dnstap.enabled);
	assert_string_equal(c->dnstap.socket, "/tmp/tap.sock"); /* next to the config file */
	assert_string_equal(c->dnstap.identity, "n1");
	assert_null(c->dnstap.version);
	assert_true(c->dnstap.log_queries && c->dnstap.log_responses);
	bw_conf_free(c);

	c = load("metrics: { enable: false, address: '::1' }\n"
		 "dnstap: { tcp: '::1@6000', log-responses: false }\n",
		 err, sizeof(err));
	assert_non_null(c);
	assert_false(c->metrics.enabled);
	assert_int_equal(c->metrics.port, 9153);
	assert_int_equal(c->metrics.addr.ss_family, AF_INET6);
	assert_string_equal(c->dnstap.tcp_address, "::1");
	assert_int_equal(c->dnstap.tcp_port, 6000);
	assert_null(c->dnstap.socket);
	assert_true(c->dnstap.log_queries);
	assert_false(c->dnstap.log_responses);
	bw_conf_free(c);

	assert_null(load("dnstap: { tcp: '127.0.0.1@0' }\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":1:16: tcp: '127.0.0.1@0' must be address@port"));
	assert_null(load("metrics: { port: 70000 }\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":1:18:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_is_strict),
		cmocka_unit_test(test_inf_bucket_equals_count),
		cmocka_unit_test(test_counts_add),
		cmocka_unit_test(test_slots_stable_and_capped),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_conf_sections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
