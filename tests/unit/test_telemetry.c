/*
 * tests/unit/test_telemetry.c - unit tests for telemetry/telemetry.h: the per-worker ring
 * (wrap, full, drop counting, a producer and a consumer on two threads), the privacy
 * truncation of client addresses, the infected-client detector (threshold, window,
 * deduplication, clearing; named clients as one client), the JSON tables handed to
 * bulwarkctl, through a real telemetry object with its thread, named clients' names by
 * privacy mode (log, events, alerts, top), and the query log's schema (version 1 and 2
 * files moved over, names by id, names pruned with their rows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dns/dns.h"
#include "telemetry/internal.h" /* bw_tlm_iso_time */

static void fill(struct bw_tlm_record *r, uint32_t tag)
{
	memset(r, 0, sizeof(*r));
	r->latency_us = tag;
}

static void test_ring_wrap_full_drop(void **state)
{
	(void)state;
	struct bw_tlm_ring r;
	assert_int_equal(bw_tlm_ring_init(&r, 100, BW_PRIVACY_FULL), 0);
	assert_int_equal(r.mask, 127); /* rounded up to a power of two */
	uint32_t next_in = 0, next_out = 0;
	/* several laps around the ring, consuming a little less than is produced */
	for (int lap = 0; lap < 10; lap++) {
		for (int i = 0; i < 100; i++) {
			struct bw_tlm_record *rec = bw_tlm_ring_reserve(&r);
			if (!rec)
				continue;
			fill(rec, next_in++);
			bw_tlm_ring_commit(&r);
		}
		for (int i = 0; i < 90; i++) {
			const struct bw_tlm_record *rec = bw_tlm_ring_peek(&r);
			assert_non_null(rec);
			assert_int_equal(rec->latency_us, next_out++); /* in order, none lost */
			bw_tlm_ring_pop(&r);
		}
	}
	/* the backlog grew by 10 a lap until the ring (128) was full: what did not fit was
	 * dropped and counted, never overwritten */
	uint64_t dropped = atomic_load(&r.dropped), offered = atomic_load(&r.offered);
	assert_int_equal(offered, 1000);
	assert_int_equal(next_in + dropped, 1000);
	assert_true(dropped > 0);
	unsigned left = 0;
	while (bw_tlm_ring_peek(&r)) {
		assert_int_equal(bw_tlm_ring_peek(&r)->latency_us, next_out++);
		bw_tlm_ring_pop(&r);
		left++;
	}
	assert_int_equal(next_out, next_in);
	assert_int_equal(left, next_in - 900); /* 900 were consumed during the laps */
	bw_tlm_ring_free(&r);
}

static void test_ring_exactly_full(void **state)
{
	(void)state;
	struct bw_tlm_ring r;
	assert_int_equal(bw_tlm_ring_init(&r, 64, BW_PRIVACY_FULL), 0);
	for (int i = 0; i < 64; i++) {
		struct bw_tlm_record *rec = bw_tlm_ring_reserve(&r);
		assert_non_null(rec);
		fill(rec, (uint32_t)i);
		bw_tlm_ring_commit(&r);
	}
	assert_null(bw_tlm_ring_reserve(&r));
	assert_int_equal(atomic_load(&r.dropped), 1);
	bw_tlm_ring_pop(&r); /* one slot free again */
	struct bw_tlm_record *rec = bw_tlm_ring_reserve(&r);
	assert_non_null(rec);
	fill(rec, 64);
	bw_tlm_ring_commit(&r);
	assert_int_equal(bw_tlm_ring_peek(&r)->latency_us, 1);
	assert_int_equal(atomic_load(&r.dropped), 1);
	bw_tlm_ring_free(&r);
}

/* Records are kept encoded (strings without their padding): long ones take more of the
 * ring, cross its end whole, and come out as they went in. */
static void test_ring_long_records_wrap(void **state)
{
	(void)state;
	struct bw_tlm_ring r;
	assert_int_equal(bw_tlm_ring_init(&r, 64, BW_PRIVACY_FULL), 0); /* 8 KiB of ring */
	unsigned in = 0, out = 0, fitted = 0;
	for (int lap = 0; lap < 50; lap++) {
		for (int i = 0; i < 20; i++) {
			struct bw_tlm_record *rec = bw_tlm_ring_reserve(&r);
			if (!rec)
				break;
			fill(rec, in);
			rec->qname_len = (uint8_t)(1 + (in * 37) % 255);
			memset(rec->qname, 'a' + (int)(in % 26), rec->qname_len);
			rec->v.flags = BW_TLM_BLOCKED;
			snprintf(rec->v.feed_name, sizeof(rec->v.feed_name), "feed%u", in);
			memset(rec->v.rule, 'r', (in * 53) % (BW_TLM_RULE - 1));
			rec->v.rule[(in * 53) % (BW_TLM_RULE - 1)] = 0;
			bw_tlm_ring_commit(&r);
			in++;
			fitted++;
		}
		for (int i = 0; i < 9; i++) {
			const struct bw_tlm_record *rec = bw_tlm_ring_peek(&r);
			if (!rec)
				break;
			assert_int_equal(rec->latency_us, out);
			assert_int_equal(rec->qname_len, 1 + (out * 37) % 255);
			assert_int_equal(rec->qname[rec->qname_len - 1], 'a' + (int)(out % 26));
			char want[BW_TLM_NAME];
			snprintf(want, sizeof(want), "feed%u", out);
			assert_string_equal(rec->v.feed_name, want);
			assert_int_equal(strlen(rec->v.rule), (out * 53) % (BW_TLM_RULE - 1));
			bw_tlm_ring_pop(&r);
			out++;
		}
	}
	assert_true(out > 300); /* many laps around the 8 KiB */
	assert_true(atomic_load(&r.dropped) > 0);
	assert_int_equal(atomic_load(&r.offered), fitted + atomic_load(&r.dropped));
	bw_tlm_ring_free(&r);
}

#define SPSC_N 300000u
static void *consumer(void *arg)
{
	struct bw_tlm_ring *r = arg;
	uint32_t expect = 0;
	uint64_t bad = 0;
	for (;;) { /* until the last value, which the producer always delivers */
		const struct bw_tlm_record *rec = bw_tlm_ring_peek(r);
		if (!rec)
			continue;
		/* records arrive in increasing order; gaps only where the producer dropped */
		if (rec->latency_us < expect || rec->qtype != (uint16_t)rec->latency_us)
			bad++;
		expect = rec->latency_us + 1;
		bw_tlm_ring_pop(r);
		if (expect == SPSC_N)
			break;
	}
	return (void *)(uintptr_t)bad;
}

static void test_ring_two_threads(void **state)
{
	(void)state;
	struct bw_tlm_ring r;
	assert_int_equal(bw_tlm_ring_init(&r, 1024, BW_PRIVACY_FULL), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, consumer, &r), 0);
	uint32_t last = 0;
	for (uint32_t i = 0; i < SPSC_N; i++) {
		struct bw_tlm_record *rec = bw_tlm_ring_reserve(&r);
		if (!rec)
			continue;
		rec->latency_us = i;
		rec->qtype = (uint16_t)i;
		bw_tlm_ring_commit(&r);
		last = i;
	}
	if (last != SPSC_N - 1) { /* the consumer stops at the last value: make sure it comes */
		struct bw_tlm_record *rec;
		while (!(rec = bw_tlm_ring_reserve(&r)))
			;
		rec->latency_us = SPSC_N - 1;
		rec->qtype = (uint16_t)(SPSC_N - 1);
		bw_tlm_ring_commit(&r);
	}
	void *bad;
	pthread_join(th, &bad);
	assert_int_equal((uintptr_t)bad, 0);
	bw_tlm_ring_free(&r);
}

static void client(const char *addr, enum bw_privacy p, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	struct bw_tlm_record rec;
	bw_tlm_set_client(&rec, (struct sockaddr *)&ss, p);
	bw_tlm_client_text(&rec, out, cap);
}

static void test_privacy_truncation(void **state)
{
	(void)state;
	char t[64];
	client("192.0.2.77", BW_PRIVACY_FULL, t, sizeof(t));
	assert_string_equal(t, "192.0.2.77");
	client("192.0.2.77", BW_PRIVACY_ANONYMIZED, t, sizeof(t));
	assert_string_equal(t, "192.0.2.0/24");
	client("192.0.2.77", BW_PRIVACY_BLOCKED_ONLY, t, sizeof(t));
	assert_string_equal(t, "192.0.2.0/24");
	client("2001:db8:aaaa:bbcc:1:2:3:4", BW_PRIVACY_FULL, t, sizeof(t));
	assert_string_equal(t, "2001:db8:aaaa:bbcc:1:2:3:4");
	client("2001:db8:aaaa:bbcc:1:2:3:4", BW_PRIVACY_ANONYMIZED, t, sizeof(t));
	assert_string_equal(t, "2001:db8:aaaa:bb00::/56");
	client("2001:db8:aaaa:bbff:ffff::1", BW_PRIVACY_BLOCKED_ONLY, t, sizeof(t));
	assert_string_equal(t, "2001:db8:aaaa:bb00::/56");
	/* what the worker keeps in the record is already truncated, not just the text */
	struct sockaddr_storage ss = {.ss_family = AF_INET};
	inet_pton(AF_INET, "10.1.2.3", &((struct sockaddr_in *)&ss)->sin_addr);
	struct bw_tlm_record rec;
	bw_tlm_set_client(&rec, (struct sockaddr *)&ss, BW_PRIVACY_ANONYMIZED);
	assert_int_equal(rec.addr[3], 0);
	assert_int_equal(rec.prefix, 24);
}

static void test_wanted(void **state)
{
	(void)state;
	struct bw_tlm_ring r = {.privacy = BW_PRIVACY_BLOCKED_ONLY};
	assert_false(bw_tlm_wanted(&r, 0));
	assert_false(bw_tlm_wanted(&r, BW_TLM_CACHE_HIT | BW_TLM_ALLOWLISTED));
	assert_true(bw_tlm_wanted(&r, BW_TLM_BLOCKED));
	assert_true(bw_tlm_wanted(&r, BW_TLM_LOG_ONLY));
	r.privacy = BW_PRIVACY_ANONYMIZED;
	assert_true(bw_tlm_wanted(&r, 0));
	r.privacy = BW_PRIVACY_FULL;
	assert_true(bw_tlm_wanted(&r, BW_TLM_CACHE_HIT));
}

#define MIN_MS 60000ull

static void test_alert_threshold_window_dedup_clear(void **state)
{
	(void)state;
	uint64_t t0 = 1700000000000ull;
	struct bw_tlm_alerts *a = bw_tlm_alerts_create(3, 10 * MIN_MS, 30 * MIN_MS);
	assert_non_null(a);
	assert_non_null(a);
	/* two hits, then the third only after the window: no alert */
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "a.example", "f1", t0));
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "b.example", "f1", t0 + MIN_MS));
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "a.example", "f1", t0 + 12 * MIN_MS));
	assert_int_equal(bw_tlm_alerts_active(a), 0);
	/* another client's hits do not count for this one */
	assert_false(bw_tlm_alerts_hit(a, "10.0.1.0/24", NULL, "c.example", "f2", t0 + 12 * MIN_MS));
	/* hits at 12 and 13 min plus one at 14: three within 10 min -> one alert */
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "c.example", "f2", t0 + 13 * MIN_MS));
	assert_true(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "c.example", "f2", t0 + 14 * MIN_MS));
	assert_int_equal(bw_tlm_alerts_active(a), 1);
	/* deduplicated while active */
	for (int i = 0; i < 10; i++)
		assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "d.example", "f1",
					       t0 + 15 * MIN_MS + (uint64_t)i));
	json_t *j = bw_tlm_alerts_json(a);
	assert_non_null(j);
	json_t *rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), 1);
	json_t *r0 = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_array_get(r0, 0)), "10.0.0.0/24");
	assert_string_equal(json_string_value(json_array_get(r0, 1)), "active");
	/* the episode began with the hit at 12 min (the earlier ones fell out of the window) */
	assert_int_equal(json_integer_value(json_array_get(r0, 2)), 13);
	assert_string_equal(json_string_value(json_array_get(r0, 5)),
			    "a.example,c.example,d.example");
	assert_string_equal(json_string_value(json_array_get(r0, 6)), "f1,f2");
	char first[40];
	bw_tlm_iso_time(t0 + 12 * MIN_MS, first, sizeof(first));
	assert_string_equal(json_string_value(json_array_get(r0, 3)), first);
	json_decref(j);
	/* not cleared before clear-after has passed since the last hit, cleared after */
	assert_int_equal(bw_tlm_alerts_expire(a, t0 + 40 * MIN_MS), 0);
	assert_int_equal(bw_tlm_alerts_expire(a, t0 + 46 * MIN_MS), 1);
	assert_int_equal(bw_tlm_alerts_active(a), 0);
	j = bw_tlm_alerts_json(a);
	assert_non_null(j);
	r0 = json_array_get(json_object_get(j, "rows"), 0);
	assert_string_equal(json_string_value(json_array_get(r0, 1)), "cleared");
	json_decref(j);
	/* a new episode raises a new alert */
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "e.example", "f1", t0 + 50 * MIN_MS));
	assert_false(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "e.example", "f1", t0 + 50 * MIN_MS + 1));
	assert_true(bw_tlm_alerts_hit(a, "10.0.0.0/24", NULL, "e.example", "f1", t0 + 50 * MIN_MS + 2));
	bw_tlm_alerts_free(a);
}

static void test_alert_threshold_one(void **state)
{
	(void)state;
	struct bw_tlm_alerts *a = bw_tlm_alerts_create(1, MIN_MS, MIN_MS);
	assert_non_null(a);
	assert_true(bw_tlm_alerts_hit(a, "192.0.2.1", NULL, "x.example", "f", 1000));
	assert_false(bw_tlm_alerts_hit(a, "192.0.2.1", NULL, "x.example", "f", 2000));
	assert_true(bw_tlm_alerts_hit(a, "192.0.2.2", NULL, "x.example", "f", 2000));
	assert_int_equal(bw_tlm_alerts_active(a), 2);
	bw_tlm_alerts_free(a);
}

/* A named client is one client whatever its address (a phone that roams); its alert
 * lists the addresses its hits came from. A name never mixes with an address key. */
static void test_alert_by_client_name(void **state)
{
	(void)state;
	struct bw_tlm_alerts *a = bw_tlm_alerts_create(3, 10 * MIN_MS, 30 * MIN_MS);
	assert_non_null(a);
	assert_false(bw_tlm_alerts_hit(a, "192.0.2.0/24", "Amira's phone", "a.example", "f", 1000));
	assert_false(bw_tlm_alerts_hit(a, "198.51.100.0/24", "Amira's phone", "b.example", "f",
				       2000));
	/* the same network without a name, and a client named like an address: others */
	assert_false(bw_tlm_alerts_hit(a, "192.0.2.0/24", NULL, "c.example", "f", 2500));
	assert_false(bw_tlm_alerts_hit(a, "192.0.2.0/24", "192.0.2.0/24", "c.example", "f", 2600));
	assert_true(bw_tlm_alerts_hit(a, "203.0.113.0/24", "Amira's phone", "a.example", "f", 3000));
	assert_int_equal(bw_tlm_alerts_active(a), 1);
	json_t *j = bw_tlm_alerts_json(a);
	assert_non_null(j);
	json_t *cols = json_object_get(j, "columns");
	assert_int_equal(json_array_size(cols), 9); /* ..., addresses, id */
	assert_string_equal(json_string_value(json_array_get(cols, 7)), "addresses");
	json_t *rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), 1);
	json_t *r0 = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_array_get(r0, 0)), "Amira's phone");
	assert_int_equal(json_integer_value(json_array_get(r0, 2)), 3);
	assert_string_equal(json_string_value(json_array_get(r0, 5)), "a.example,b.example");
	assert_string_equal(json_string_value(json_array_get(r0, 7)),
			    "192.0.2.0/24,198.51.100.0/24,203.0.113.0/24");
	json_decref(j);
	j = bw_tlm_alerts_row(a, "203.0.113.0/24", "Amira's phone");
	assert_non_null(j);
	json_decref(j);
	assert_null(bw_tlm_alerts_row(a, "203.0.113.0/24", NULL)); /* no such address client */
	bw_tlm_alerts_free(a);
}

/* A whole telemetry object with its thread: records go in through the rings, the tables
 * come out as JSON. No sink is configured (query-log off). */
static void push_named(struct bw_tlm_ring *r, const char *ip, const char *client_name,
		       const char *name, const char *feed, const char *cat, unsigned flags);
static void push(struct bw_tlm_ring *r, const char *ip, const char *name, const char *feed,
		 const char *cat, unsigned flags)
{
	push_named(r, ip, NULL, name, feed, cat, flags);
}

/* client_name is written as it is, whatever the mode (as a record an earlier run spooled) */
static void push_named(struct bw_tlm_ring *r, const char *ip, const char *client_name,
		       const char *name, const char *feed, const char *cat, unsigned flags)
{
	struct bw_tlm_record *rec = bw_tlm_ring_reserve(r);
	assert_non_null(rec);
	if (!rec)
		return;
	memset(rec, 0, sizeof(*rec));
	struct sockaddr_storage ss = {.ss_family = AF_INET};
	inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr);
	bw_tlm_set_client(rec, (struct sockaddr *)&ss, r->privacy);
	rec->time_ms = bw_tlm_now_ms();
	rec->qtype = 1;
	rec->rcode = 3;
	int n = bw_name_from_text(name, strlen(name), rec->qname);
	assert_true(n > 0);
	rec->qname_len = (uint8_t)n;
	snprintf(rec->profile, sizeof(rec->profile), "default");
	rec->v.flags = (uint8_t)flags;
	rec->v.action = 1;
	rec->v.feed = 0;
	snprintf(rec->v.feed_name, sizeof(rec->v.feed_name), "%s", feed);
	snprintf(rec->v.category, sizeof(rec->v.category), "%s", cat);
	snprintf(rec->client_name, sizeof(rec->client_name), "%s", client_name ? client_name : "");
	bw_tlm_ring_commit(r);
}

static void test_tables_json(void **state)
{
	(void)state;
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.telemetry.privacy = BW_PRIVACY_ANONYMIZED;
	conf.telemetry.query_log_off = true;
	conf.telemetry.ring_size = 256;
	conf.telemetry.alert_threshold = 2;
	conf.telemetry.alert_window_ms = 10 * MIN_MS;
	conf.telemetry.alert_clear_ms = 60 * MIN_MS;
	conf.telemetry.retention_ms = 86400000;
	struct bw_telemetry *t = bw_telemetry_create(&conf, 2);
	assert_non_null(t);
	json_t *j = bw_telemetry_top_json(t, 5);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 0);
	json_t *cols = json_object_get(j, "columns");
	assert_int_equal(json_array_size(cols), 3);
	assert_string_equal(json_string_value(json_array_get(cols, 0)), "kind");
	json_decref(j);

	assert_int_equal(bw_telemetry_start(t), 0);
	struct bw_tlm_ring *r0 = bw_telemetry_ring(t, 0), *r1 = bw_telemetry_ring(t, 1);
	assert_non_null(r0);
	assert_non_null(r1);
	assert_null(bw_telemetry_ring(t, 2));
	push(r0, "10.0.0.5", "evil.example", "urlhaus", "malware", BW_TLM_BLOCKED);
	push(r1, "10.0.0.9", "evil.example", "urlhaus", "malware", BW_TLM_BLOCKED);
	push(r1, "10.0.7.1", "phish.example", "scam", "phishing", BW_TLM_BLOCKED);
	push(r0, "10.0.7.2", "fine.example", "", "", 0); /* allowed: not in the top tables */
	push(r0, "10.0.7.3", "trial.example", "t", "malware", BW_TLM_LOG_ONLY);
	bw_telemetry_stop(t); /* drains the rings */

	j = bw_telemetry_top_json(t, 5);
	json_t *rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), 4);
	const struct {
		const char *kind, *value;
		int count;
	} want[4] = {{"name", "evil.example", 2},
		     {"name", "phish.example", 1},
		     {"client", "10.0.0.0/24", 2},
		     {"client", "10.0.7.0/24", 1}};
	for (size_t i = 0; i < 4; i++) {
		json_t *row = json_array_get(rows, i);
		assert_string_equal(json_string_value(json_array_get(row, 0)), want[i].kind);
		assert_string_equal(json_string_value(json_array_get(row, 1)), want[i].value);
		assert_int_equal(json_integer_value(json_array_get(row, 2)), want[i].count);
	}
	json_decref(j);
	j = bw_telemetry_top_json(t, 1); /* n limits each kind */
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 2);
	json_decref(j);

	/* two malware hits from 10.0.0.0/24 (threshold 2): one alert */
	j = bw_telemetry_alerts_json(t);
	cols = json_object_get(j, "columns");
	assert_int_equal(json_array_size(cols), 9); /* ..., addresses, id */
	assert_string_equal(json_string_value(json_array_get(cols, 0)), "client");
	rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 0)),
			    "10.0.0.0/24");
	assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 5)),
			    "evil.example");
	json_decref(j);

	struct bw_telemetry_stats s;
	bw_telemetry_stats(t, &s);
	assert_int_equal(s.records, 5);
	assert_int_equal(s.ring_drops, 0);
	assert_int_equal(s.alerts, 1);
	assert_int_equal(s.rows, 0);
	bw_telemetry_destroy(t);
}

static void test_privacy_none_has_no_rings(void **state)
{
	(void)state;
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.telemetry.privacy = BW_PRIVACY_NONE;
	conf.telemetry.ring_size = 64;
	conf.telemetry.alert_threshold = 1;
	struct bw_telemetry *t = bw_telemetry_create(&conf, 4);
	assert_non_null(t);
	assert_int_equal(bw_telemetry_start(t), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_null(bw_telemetry_ring(t, i));
	json_t *j = bw_telemetry_alerts_json(t);
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 0);
	json_decref(j);
	bw_telemetry_destroy(t);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	char *buf = calloc(1, 1 << 16);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void remove_dir(const char *dir);
static sqlite3 *raw_db(const char *path);
static long long scalar(sqlite3 *db, const char *sql);

/* A named client's name reaches the query log, the events, the alerts and the top table
 * under blocked-only and full, and nowhere under anonymized, not even from a record that
 * carries one (as a record an earlier run left in the spool may). */
static void run_names(enum bw_privacy privacy, const char *dir)
{
	char qlog[128], events[128];
	snprintf(qlog, sizeof(qlog), "%s/q%d.sqlite", dir, (int)privacy);
	snprintf(events, sizeof(events), "%s/ev%d.jsonl", dir, (int)privacy);
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.telemetry.privacy = privacy;
	conf.telemetry.query_log = qlog;
	conf.telemetry.events_file = events;
	conf.telemetry.ring_size = 256;
	conf.telemetry.spool_size = 1 << 20;
	conf.telemetry.spool_stop_wait_ms = 5000;
	conf.telemetry.alert_threshold = 2;
	conf.telemetry.alert_window_ms = 10 * MIN_MS;
	conf.telemetry.alert_clear_ms = 60 * MIN_MS;
	conf.telemetry.retention_ms = 86400000;
	struct bw_telemetry *t = bw_telemetry_create(&conf, 1);
	assert_non_null(t);
	assert_int_equal(bw_telemetry_start(t), 0);
	struct bw_tlm_ring *r = bw_telemetry_ring(t, 0);
	/* the phone from two networks, then an unnamed client */
	push_named(r, "10.0.0.5", "Amira's phone", "evil.example", "urlhaus", "malware",
		   BW_TLM_BLOCKED);
	push_named(r, "10.9.0.5", "Amira's phone", "evil.example", "urlhaus", "malware",
		   BW_TLM_BLOCKED);
	push_named(r, "10.7.0.1", NULL, "phish.example", "scam", "phishing", BW_TLM_BLOCKED);
	bw_telemetry_stop(t);
	bool kept = bw_tlm_keeps_names(privacy);

	json_t *j = bw_telemetry_alerts_json(t);
	json_t *rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), kept ? 1 : 0); /* anonymized: two networks */
	if (kept)
		assert_string_equal(json_string_value(json_array_get(json_array_get(rows, 0), 0)),
				    "Amira's phone");
	json_decref(j);
	j = bw_telemetry_top_json(t, 5);
	char *top = json_dumps(j, JSON_COMPACT);
	assert_true(!strstr(top, "Amira") == !kept);
	free(top);
	json_decref(j);
	bw_telemetry_destroy(t);

	char *ev = read_all(events);
	assert_true(!strstr(ev, "\"client_name\":\"Amira's phone\"") == !kept);
	if (!kept)
		assert_null(strstr(ev, "Amira"));
	if (kept) /* the alert: by name, with both addresses, cut as the mode says */
		assert_non_null(strstr(ev, privacy == BW_PRIVACY_FULL
					       ? "\"addresses\":\"10.0.0.5,10.9.0.5\""
					       : "\"addresses\":\"10.0.0.0/24,10.9.0.0/24\""));
	free(ev);
	char *raw = read_all(qlog); /* the file's bytes (the WAL is checkpointed at close) */
	assert_true(!memmem(raw, 1 << 16, "Amira", 5) == !kept);
	free(raw);
	sqlite3 *db = raw_db(qlog);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries WHERE client_name = "
				    "'Amira''s phone'"),
			 kept ? 2 : 0);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries WHERE client_name IS NULL"),
			 kept ? 1 : 3);
	sqlite3_close(db);
}

static void test_client_names_by_privacy(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-names-XXXXXX";
	assert_non_null(mkdtemp(dir));
	run_names(BW_PRIVACY_BLOCKED_ONLY, dir);
	run_names(BW_PRIVACY_FULL, dir);
	run_names(BW_PRIVACY_ANONYMIZED, dir);
	remove_dir(dir);
	/* what the worker writes into the record */
	struct bw_tlm_record rec;
	memset(&rec, 'x', sizeof(rec));
	bw_tlm_set_client_name(&rec, "Amira's phone", BW_PRIVACY_ANONYMIZED);
	assert_string_equal(rec.client_name, "");
	bw_tlm_set_client_name(&rec, "Amira's phone", BW_PRIVACY_NONE);
	assert_string_equal(rec.client_name, "");
	bw_tlm_set_client_name(&rec, "Amira's phone", BW_PRIVACY_BLOCKED_ONLY);
	assert_string_equal(rec.client_name, "Amira's phone");
	bw_tlm_set_client_name(&rec, NULL, BW_PRIVACY_FULL);
	assert_string_equal(rec.client_name, "");
	char longest[BW_CLIENT_NAME_MAX + 1];
	memset(longest, 'n', BW_CLIENT_NAME_MAX);
	longest[BW_CLIENT_NAME_MAX] = 0;
	bw_tlm_set_client_name(&rec, longest, BW_PRIVACY_FULL);
	assert_string_equal(rec.client_name, longest); /* a name of 64 bytes fits whole */
}

/* ---- the `telemetry:` config section ---- */

static int load_text(const char *text, struct bw_conf **out, char *err, size_t errlen, char *path,
		     size_t pathlen)
{
	snprintf(path, pathlen, "/tmp/bw-test-tlm-XXXXXX.yaml");
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	int rc = bw_conf_load(path, out, err, errlen);
	unlink(path);
	return rc;
}

static void test_conf_keys(void **state)
{
	(void)state;
	char err[1024], path[64];
	struct bw_conf *c = NULL;
	assert_int_equal(
	    load_text("server: { state-dir: /srv/bw }\n", &c, err, sizeof(err), path, sizeof(path)),
	    0);
	/* defaults */
	assert_int_equal(c->telemetry.privacy, BW_PRIVACY_BLOCKED_ONLY);
	assert_null(c->telemetry.query_log);
	assert_false(c->telemetry.query_log_off);
	assert_int_equal(c->telemetry.retention_ms, 7 * 86400000ull);
	assert_int_equal(c->telemetry.ring_size, 16384);
	assert_int_equal(c->telemetry.spool_size, 1ull << 30);
	assert_int_equal(c->telemetry.spool_stop_wait_ms, 5000);
	assert_int_equal(c->telemetry.alert_threshold, 5);
	assert_int_equal(c->telemetry.alert_window_ms, 600000);
	assert_int_equal(c->telemetry.alert_clear_ms, 3600000);
	assert_int_equal(c->telemetry.n_alert_categories, 0);
	assert_null(c->telemetry.webhook_url);
	bw_conf_free(c);

	c = NULL;
	int rc = load_text(
	    "telemetry:\n"
	    "  privacy: anonymized\n"
	    "  query-log: /var/log/q.sqlite\n"
	    "  retention: 2d\n"
	    "  ring-size: 1000\n"
	    "  spool: { size: 64M, stop-wait: 30s }\n"
	    "  events:\n"
	    "    file: /var/log/ev.jsonl\n"
	    "    syslog: true\n"
	    "    webhook: { url: \"https://h.example/x\", timeout: 2s, retries: 0, queue: 7 }\n"
	    "  alerts: { categories: [malware, c2, botnet], threshold: 3, window: 5m, "
	    "clear-after: 2h }\n",
	    &c, err, sizeof(err), path, sizeof(path));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(c->telemetry.privacy, BW_PRIVACY_ANONYMIZED);
	assert_string_equal(c->telemetry.query_log, "/var/log/q.sqlite");
	assert_int_equal(c->telemetry.retention_ms, 2 * 86400000ull);
	assert_int_equal(c->telemetry.ring_size, 1024);
	assert_int_equal(c->telemetry.spool_size, 64ull << 20);
	assert_int_equal(c->telemetry.spool_stop_wait_ms, 30000);
	assert_string_equal(c->telemetry.events_file, "/var/log/ev.jsonl");
	assert_true(c->telemetry.events_syslog);
	assert_string_equal(c->telemetry.webhook_url, "https://h.example/x");
	assert_int_equal(c->telemetry.webhook_timeout_ms, 2000);
	assert_int_equal(c->telemetry.webhook_retries, 0);
	assert_int_equal(c->telemetry.webhook_queue, 7);
	assert_int_equal(c->telemetry.n_alert_categories, 3);
	assert_string_equal(c->telemetry.alert_categories[2], "botnet");
	assert_int_equal(c->telemetry.alert_threshold, 3);
	assert_int_equal(c->telemetry.alert_window_ms, 300000);
	assert_int_equal(c->telemetry.alert_clear_ms, 7200000);
	bw_conf_free(c);

	c = NULL;
	assert_int_equal(
	    load_text("telemetry: { query-log: off }\n", &c, err, sizeof(err), path, sizeof(path)),
	    0);
	assert_true(c->telemetry.query_log_off);
	bw_conf_free(c);
}

static void expect_error(const char *text, const char *want)
{
	char err[1024], path[64];
	struct bw_conf *c = NULL;
	int rc = load_text(text, &c, err, sizeof(err), path, sizeof(path));
	assert_true(rc < 0);
	assert_null(c);
	size_t n = strlen(path);
	if (strncmp(err, path, n) || strcmp(err + n, want))
		print_error("want %s%s\ngot  %s\n", path, want, err);
	assert_string_equal(err + n, want);
}

static void test_conf_errors(void **state)
{
	(void)state;
	expect_error("telemetry:\n  retention: 10s\n",
		     ":2:14: 'retention' must be between 60000ms and 316224000000ms, found 10s");
	expect_error("telemetry:\n  events: { webhook: { url: ftp://x } }\n",
		     ":2:29: 'url' must start with http:// or https://");
	expect_error("telemetry:\n  events: { webhook: { timeout: 1s } }\n",
		     ":2:22: missing required key 'url' in telemetry.events.webhook");
	expect_error("telemetry:\n  alerts: { threshold: 0 }\n",
		     ":2:24: 'threshold' must be between 1 and 1000, found 0");
	expect_error("telemetry:\n  alerts: { categories: [\"bad cat\"] }\n",
		     ":2:26: category 'bad cat': use letters, digits, '_', '.', '-'");
	expect_error("telemetry:\n  ring-sise: 10\n",
		     ":2:3: unknown key 'ring-sise' in telemetry (known: privacy, query-log, "
		     "retention, ring-size, spool, events, alerts)");
	expect_error("telemetry:\n  spool: { size: 10K }\n",
		     ":2:18: expected a size from 1M to 1024G for 'size' (a number of bytes with "
		     "K, M or G, e.g. 1G), found '10K'");
	expect_error("telemetry:\n  spool: { stop-wait: 2h }\n",
		     ":2:23: 'stop-wait' must be between 0ms and 3600000ms, found 2h");
}

/* ---- the query log (querylog.c) ---- */

static sqlite3 *raw_db(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static long long scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void log_row(struct bw_tlm_querylog *l, uint64_t time_ms, const char *name)
{
	struct bw_tlm_record r;
	memset(&r, 0, sizeof(r));
	r.time_ms = time_ms;
	r.qtype = 1;
	r.latency_us = 7;
	strcpy(r.profile, "default");
	bw_tlm_querylog_add(l, &r, "192.0.2.0/24", NULL, name);
}

static void remove_dir(const char *dir)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Rows through the view `queries`; one id per name; a file of version 1 (one table with
 * the names in it) has its rows moved over; a newer version's file is refused. */
static void test_querylog_schema(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-qlog-XXXXXX", path[128], err[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v1.sqlite", dir);
	sqlite3 *db = raw_db(path);
	assert_int_equal(
	    sqlite3_exec(db,
			 "CREATE TABLE queries (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
			 " client TEXT NOT NULL, profile TEXT NOT NULL, transport TEXT NOT NULL,"
			 " name TEXT NOT NULL, type TEXT NOT NULL, rcode TEXT, verdict TEXT NOT NULL,"
			 " action TEXT, feed TEXT, category TEXT, rule TEXT,"
			 " latency_us INTEGER NOT NULL, cache_hit INTEGER NOT NULL);"
			 "CREATE INDEX queries_name ON queries(name, time);"
			 "INSERT INTO queries VALUES (1, 100, 'c', 'default', 'udp', 'a.example', 'A',"
			 " 'NXDOMAIN', 'blocked', 'nxdomain', 'f', 'malware', 'a.example', 5, 0);"
			 "INSERT INTO queries VALUES (2, 200, 'c', 'default', 'udp', 'b.example', 'A',"
			 " 'NOERROR', 'allowed', NULL, NULL, NULL, NULL, 6, 1);"
			 "INSERT INTO queries VALUES (3, 300, 'c', 'default', 'tcp', 'a.example', 'AAAA',"
			 " 'NOERROR', 'allowed', NULL, NULL, NULL, NULL, 7, 0);",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	struct bw_tlm_querylog *l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	log_row(l, 400, "a.example"); /* a name the old rows have: its id again */
	log_row(l, 500, "c.example");
	bw_tlm_querylog_commit(l);
	bw_tlm_querylog_close(l);

	db = raw_db(path);
	assert_int_equal(scalar(db, "PRAGMA user_version"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'queries_v1'"),
			 0);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries"), 5);
	assert_int_equal(scalar(db, "SELECT count(*) FROM names"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries WHERE name = 'a.example'"), 3);
	assert_int_equal(scalar(db, "SELECT time FROM queries WHERE name = 'b.example'"), 200);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries WHERE name = 'a.example' AND "
				    "verdict = 'blocked' AND feed = 'f' AND rule = 'a.example'"),
			 1);
	assert_int_equal(scalar(db, "SELECT latency_us FROM queries WHERE id = 5"), 7);
	/* the "by name" question goes through the indexes, not a scan of the rows */
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT * FROM queries "
						"WHERE name = 'a.example'", -1, &st, NULL),
			 SQLITE_OK);
	bool log_by_index = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		if (strstr(d, "log USING") && strstr(d, "log_name"))
			log_by_index = true;
		assert_null(strstr(d, "SCAN log"));
	}
	sqlite3_finalize(st);
	assert_true(log_by_index);
	/* a newer schema is not touched */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(bw_tlm_querylog_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "newer version"));
	db = raw_db(path);
	assert_int_equal(scalar(db, "SELECT count(*) FROM log"), 5);
	sqlite3_close(db);

	/* retention: old rows go, and then the names no row uses */
	snprintf(path, sizeof(path), "%s/new.sqlite", dir);
	l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	log_row(l, 1000, "old.example");
	log_row(l, 1001, "both.example");
	log_row(l, 5000, "both.example");
	log_row(l, 5001, "new.example");
	bw_tlm_querylog_prune(l, 2000);
	log_row(l, 6000, "old.example"); /* after the clean-up: a new id, not the deleted one */
	bw_tlm_querylog_commit(l);
	uint64_t rows, drops, pruned;
	bw_tlm_querylog_stats(l, &rows, &drops, &pruned);
	assert_int_equal(rows, 5);
	assert_int_equal(drops, 0);
	assert_int_equal(pruned, 2);
	bw_tlm_querylog_close(l);
	db = raw_db(path);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM log"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM names"), 3);
	assert_int_equal(scalar(db, "SELECT time FROM queries WHERE name = 'old.example'"), 6000);
	sqlite3_close(db);

	remove_dir(dir);
}

/* A version 2 file (before client names) gets the column; its rows keep theirs. */
static void test_querylog_v2_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-qlog-XXXXXX", path[128], err[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v2.sqlite", dir);
	sqlite3 *db = raw_db(path);
	assert_int_equal(
	    sqlite3_exec(
		db,
		"CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
		"CREATE TABLE log (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
		" client TEXT NOT NULL, profile TEXT NOT NULL, transport TEXT NOT NULL,"
		" name_id INTEGER NOT NULL, type TEXT NOT NULL, rcode TEXT, verdict TEXT NOT NULL,"
		" action TEXT, feed TEXT, category TEXT, rule TEXT, latency_us INTEGER NOT NULL,"
		" cache_hit INTEGER NOT NULL);"
		"CREATE INDEX log_client ON log(client, time);"
		"CREATE INDEX log_name ON log(name_id, time);"
		"CREATE INDEX log_blocked ON log(time) WHERE verdict = 'blocked';"
		"CREATE VIEW queries AS SELECT log.id AS id, log.time AS time,"
		" log.client AS client, log.profile AS profile, log.transport AS transport,"
		" names.name AS name, log.type AS type, log.rcode AS rcode, log.verdict AS verdict,"
		" log.action AS action, log.feed AS feed, log.category AS category,"
		" log.rule AS rule, log.latency_us AS latency_us, log.cache_hit AS cache_hit"
		" FROM log JOIN names ON names.id = log.name_id;"
		"INSERT INTO names VALUES (1, 'a.example');"
		"INSERT INTO log VALUES (1, 100, '192.0.2.0/24', 'default', 'udp', 1, 'A',"
		" 'NXDOMAIN', 'blocked', 'nxdomain', 'f', 'malware', 'a.example', 5, 0);"
		"PRAGMA user_version = 2;",
		NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	struct bw_tlm_querylog *l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	struct bw_tlm_record r;
	memset(&r, 0, sizeof(r));
	r.time_ms = 200;
	r.qtype = 1;
	strcpy(r.profile, "default");
	bw_tlm_querylog_add(l, &r, "192.0.2.0/24", "Amira's phone", "a.example");
	bw_tlm_querylog_commit(l);
	bw_tlm_querylog_close(l);
	db = raw_db(path);
	assert_int_equal(scalar(db, "PRAGMA user_version"), 3);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries"), 2);
	assert_int_equal(scalar(db, "SELECT time FROM queries WHERE client_name IS NULL"), 100);
	assert_int_equal(scalar(db, "SELECT time FROM queries WHERE client_name = 'Amira''s phone'"),
			 200);
	assert_int_equal(scalar(db, "SELECT count(*) FROM queries WHERE name = 'a.example' AND "
				    "feed = 'f'"),
			 1);
	sqlite3_close(db);
	/* opened again: nothing more to do */
	l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	bw_tlm_querylog_close(l);
	remove_dir(dir);
}

/* ---- the spool (spool.c) ---- */

static void spool_rec(struct bw_tlm_record *r, unsigned i, bool blocked)
{
	memset(r, 0, sizeof(*r));
	r->time_ms = 1700000000000ull + i;
	r->latency_us = 100 + i;
	r->qtype = blocked ? 28 : 1;
	r->rcode = blocked ? 3 : 0;
	r->transport = (uint8_t)(i % 2);
	r->family = AF_INET;
	r->prefix = 24;
	r->addr[0] = 192;
	r->addr[2] = 2;
	r->worker = (uint8_t)(i % 3);
	strcpy(r->profile, i % 2 ? "staff" : "default");
	char name[64];
	snprintf(name, sizeof(name), "host%u.example.org", i);
	int n = bw_name_from_text(name, strlen(name), r->qname);
	assert_true(n > 0);
	r->qname_len = (uint8_t)n;
	if (blocked) {
		r->v.flags = BW_TLM_BLOCKED | BW_TLM_CACHE_HIT;
		r->v.action = 1;
		r->v.feed = 2;
		strcpy(r->v.feed_name, "urlhaus");
		strcpy(r->v.category, "malware");
		snprintf(r->v.rule, sizeof(r->v.rule), "*.%s", name);
	}
	if (i % 3 == 2) /* a named client's record, blocked or not */
		snprintf(r->client_name, sizeof(r->client_name), "client %u's laptop", i);
}

static void assert_same_rec(const struct bw_tlm_record *a, const struct bw_tlm_record *b)
{
	assert_int_equal(a->time_ms, b->time_ms);
	assert_int_equal(a->latency_us, b->latency_us);
	assert_int_equal(a->qtype, b->qtype);
	assert_int_equal(a->rcode, b->rcode);
	assert_int_equal(a->transport, b->transport);
	assert_int_equal(a->family, b->family);
	assert_int_equal(a->prefix, b->prefix);
	assert_int_equal(a->worker, b->worker);
	assert_memory_equal(a->addr, b->addr, sizeof(a->addr));
	assert_string_equal(a->profile, b->profile);
	assert_int_equal(a->qname_len, b->qname_len);
	assert_memory_equal(a->qname, b->qname, a->qname_len);
	assert_int_equal(a->v.flags, b->v.flags);
	assert_int_equal(a->v.action, b->v.action);
	assert_int_equal(a->v.feed, b->v.feed);
	assert_string_equal(a->v.feed_name, b->v.feed_name);
	assert_string_equal(a->v.category, b->v.category);
	assert_string_equal(a->v.rule, b->v.rule);
	assert_string_equal(a->client_name, b->client_name);
}

static int count_segments(const char *dir)
{
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "exit $(ls %s/*.seg 2>/dev/null | wc -l)", dir);
	int rc = system(cmd);
	return WEXITSTATUS(rc);
}

/* Records come back as they went in, in order; nothing is read before it is flushed; a
 * restart reads on from the committed position; finished segments are deleted. */
static void test_spool_round_trip_and_restart(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-spool-XXXXXX", err[256];
	assert_non_null(mkdtemp(dir));
	struct bw_tlm_spool *s = bw_tlm_spool_open(dir, 1 << 30, err, sizeof(err));
	assert_non_null(s);
	struct bw_tlm_record in[40], out[64];
	struct bw_tlm_spool_pos pos;
	for (unsigned i = 0; i < 40; i++) {
		spool_rec(&in[i], i, i % 4 == 1);
		assert_true(bw_tlm_spool_put(s, &in[i]));
	}
	assert_int_equal(bw_tlm_spool_read(s, out, 64, &pos), 0); /* not flushed yet */
	bw_tlm_spool_flush(s);
	assert_int_equal(bw_tlm_spool_read(s, out, 25, &pos), 25);
	for (unsigned i = 0; i < 25; i++)
		assert_same_rec(&in[i], &out[i]);
	struct bw_tlm_spool_pos at25 = pos;
	assert_int_equal(pos.seg, 1);
	assert_int_equal(bw_tlm_spool_read(s, out, 64, &pos), 15);
	assert_same_rec(&in[39], &out[14]);
	assert_int_equal(bw_tlm_spool_read(s, out, 64, &pos), 0);
	struct bw_tlm_spool_stats st;
	bw_tlm_spool_stats(s, &st);
	assert_int_equal(st.spooled, 40);
	assert_int_equal(st.read_new, 40);
	assert_int_equal(st.drops, 0);
	bw_tlm_spool_close(s);

	/* a restart: only the first 25 were committed; the writer starts segment 2 */
	s = bw_tlm_spool_open(dir, 1 << 30, err, sizeof(err));
	assert_non_null(s);
	bw_tlm_spool_seek(s, at25);
	for (unsigned i = 0; i < 3; i++)
		assert_true(bw_tlm_spool_put(s, &in[i]));
	bw_tlm_spool_flush(s);
	assert_int_equal(count_segments(dir), 2);
	assert_int_equal(bw_tlm_spool_read(s, out, 64, &pos), 18); /* 15 old, then 3 new */
	assert_same_rec(&in[25], &out[0]);
	assert_same_rec(&in[2], &out[17]);
	assert_int_equal(pos.seg, 2);
	bw_tlm_spool_stats(s, &st);
	assert_int_equal(st.read_old, 15);
	assert_int_equal(st.read_new, 3);
	bw_tlm_spool_consumed(s, pos); /* segment 1 is done */
	assert_int_equal(count_segments(dir), 1);
	bw_tlm_spool_close(s);

	remove_dir(dir);
}

/* A segment cut by a crash, and one with garbage: the whole records are read, the rest is
 * skipped and counted; the size cap drops records and counts them. */
static void test_spool_damage_and_cap(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-spool-XXXXXX", err[256], path[128];
	assert_non_null(mkdtemp(dir));
	struct bw_tlm_spool *s = bw_tlm_spool_open(dir, 1 << 30, err, sizeof(err));
	assert_non_null(s);
	struct bw_tlm_record in[3], out[8];
	struct bw_tlm_spool_pos pos;
	for (unsigned i = 0; i < 3; i++) {
		spool_rec(&in[i], i, i == 1);
		assert_true(bw_tlm_spool_put(s, &in[i]));
	}
	bw_tlm_spool_flush(s);
	bw_tlm_spool_close(s);
	snprintf(path, sizeof(path), "%s/0000000000000001.seg", dir);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_int_equal(ftruncate(fileno(f), size - 5), 0); /* the third record cut */
	fclose(f);
	snprintf(path, sizeof(path), "%s/0000000000000002.seg", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite("bwspool1\x10\x00garbage", 1, 17, f), 17);
	fclose(f);
	s = bw_tlm_spool_open(dir, 1 << 30, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(bw_tlm_spool_read(s, out, 8, &pos), 2);
	assert_same_rec(&in[1], &out[1]);
	assert_int_equal(bw_tlm_spool_read(s, out, 8, &pos), 0);
	assert_int_equal(pos.seg, 3);
	struct bw_tlm_spool_stats st;
	bw_tlm_spool_stats(s, &st);
	assert_true(st.skipped_bytes > 9);
	bw_tlm_spool_consumed(s, pos);
	assert_int_equal(count_segments(dir), 0);
	assert_int_equal(st.bytes, (uint64_t)size - 5 + 17);
	bw_tlm_spool_close(s);

	/* a cap of 300 bytes: what is buffered counts too */
	s = bw_tlm_spool_open(dir, 300, err, sizeof(err));
	assert_non_null(s);
	unsigned kept = 0;
	for (unsigned i = 0; i < 10; i++)
		kept += bw_tlm_spool_put(s, &in[0]);
	assert_true(kept >= 3 && kept < 10);
	bw_tlm_spool_flush(s);
	bw_tlm_spool_stats(s, &st);
	assert_int_equal(st.drops, 10 - kept);
	assert_int_equal(st.spooled, kept);
	assert_int_equal(bw_tlm_spool_read(s, out, 8, &pos), kept);
	bw_tlm_spool_close(s);

	/* the decoder: short input wants more, bad lengths are refused */
	unsigned char buf[8] = {3, 0, 1, 2, 3};
	assert_int_equal(bw_tlm_spool_decode(buf, 1, &out[0]), 0);
	assert_int_equal(bw_tlm_spool_decode(buf, 5, &out[0]), -1); /* shorter than any record */

	remove_dir(dir);
}

/* The spool position is kept in the query log, in the rows' transaction. */
static void test_querylog_position(void **state)
{
	(void)state;
	char dir[] = "/tmp/bw-test-qlog-XXXXXX", path[128], err[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q.sqlite", dir);
	struct bw_tlm_querylog *l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	struct bw_tlm_spool_pos p = bw_tlm_querylog_position(l);
	assert_int_equal(p.seg, 0);
	log_row(l, 100, "a.example");
	bw_tlm_querylog_set_position(l, (struct bw_tlm_spool_pos){7, 1234});
	bw_tlm_querylog_commit(l);
	bw_tlm_querylog_close(l);
	l = bw_tlm_querylog_open(path, err, sizeof(err));
	assert_non_null(l);
	p = bw_tlm_querylog_position(l);
	assert_int_equal(p.seg, 7);
	assert_int_equal(p.off, 1234);
	bw_tlm_querylog_close(l);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_wrap_full_drop),
	    cmocka_unit_test(test_ring_exactly_full),
	    cmocka_unit_test(test_ring_long_records_wrap),
	    cmocka_unit_test(test_ring_two_threads),
	    cmocka_unit_test(test_privacy_truncation),
	    cmocka_unit_test(test_wanted),
	    cmocka_unit_test(test_alert_threshold_window_dedup_clear),
	    cmocka_unit_test(test_alert_threshold_one),
	    cmocka_unit_test(test_alert_by_client_name),
	    cmocka_unit_test(test_tables_json),
	    cmocka_unit_test(test_privacy_none_has_no_rings),
	    cmocka_unit_test(test_client_names_by_privacy),
	    cmocka_unit_test(test_conf_keys),
	    cmocka_unit_test(test_conf_errors),
	    cmocka_unit_test(test_querylog_schema),
	    cmocka_unit_test(test_querylog_v2_file),
	    cmocka_unit_test(test_spool_round_trip_and_restart),
	    cmocka_unit_test(test_spool_damage_and_cap),
	    cmocka_unit_test(test_querylog_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
