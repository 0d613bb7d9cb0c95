/*
 * tests/unit/test_ratelimit.c - the rate-limit table (core/ratelimit.c): token bucket
 * arithmetic, "limited" said once per episode, prefix keys, a fixed memory whatever the
 * number of sources; and the config keys (server.rate-limit, server.rrl, a listener's and
 * a client's rate-limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/internal.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void test_bucket(void **state)
{
	(void)state;
	struct bw_ratelimit *r;
	assert_int_equal(bw_ratelimit_new(4096, &r), 0);
	/* a new key starts with a full bucket of `burst` */
	for (int i = 0; i < 5; i++)
		assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_PASS);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_LIMITED_FIRST);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_LIMITED);
	/* another key is not affected */
	assert_int_equal(bw_ratelimit_take(r, "b", 1, 10, 5), BW_RL_PASS);
	/* 10 a second: one token back after 100 ms; the episode goes on (not said again) */
	sleep_ms(130);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_PASS);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_LIMITED);
	/* a full bucket again (quiet for burst / rate = 0.5 s) but refused less than 10 s ago:
	 * the same episode (a flooder that pauses is said once) */
	sleep_ms(600);
	for (int i = 0; i < 5; i++)
		assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_PASS);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_LIMITED);
	/* 10 s without a refusal: the next one is news */
	sleep_ms(10100);
	for (int i = 0; i < 5; i++)
		assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_PASS);
	assert_int_equal(bw_ratelimit_take(r, "a", 1, 10, 5), BW_RL_LIMITED_FIRST);
	bw_ratelimit_free(r);
}

static void test_fixed_memory(void **state)
{
	(void)state;
	struct bw_ratelimit *r;
	assert_int_equal(bw_ratelimit_new(65536, &r), 0);
	size_t bytes = bw_ratelimit_bytes(r);
	assert_true(bytes >= 65536 * 16 && bytes <= 65536 * 16 + 16384);
	/* a flooder that keeps asking keeps its (empty) bucket while a million other sources
	 * come and go: each probe window evicts the one quiet longest */
	for (int i = 0; i < 3; i++)
		bw_ratelimit_take(r, "flooder", 7, 1, 3);
	assert_int_equal(bw_ratelimit_take(r, "flooder", 7, 1, 3), BW_RL_LIMITED_FIRST);
	unsigned kept = 0;
	for (uint32_t i = 0; i < 1000000; i++) {
		bw_ratelimit_take(r, &i, sizeof(i), 1, 3);
		if (i % 1000 == 0)
			kept += bw_ratelimit_take(r, "flooder", 7, 1, 3) == BW_RL_LIMITED;
	}
	assert_int_equal(kept, 1000);
	assert_int_equal(bw_ratelimit_bytes(r), bytes);
	bw_ratelimit_free(r);
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	return ss;
}

static void test_prefix_key(void **state)
{
	(void)state;
	uint8_t a[17], b[17];
	struct sockaddr_storage x = addr("192.0.2.77"), y = addr("192.0.2.200");
	assert_int_equal(bw_sockaddr_prefix((struct sockaddr *)&x, 24, 56, a), 5);
	assert_int_equal(bw_sockaddr_prefix((struct sockaddr *)&y, 24, 56, b), 5);
	assert_memory_equal(a, b, 5);
	assert_int_equal(a[4], 0);
	y = addr("::ffff:192.0.2.9"); /* v4-mapped: the same prefix */
	assert_int_equal(bw_sockaddr_prefix((struct sockaddr *)&y, 24, 56, b), 5);
	assert_memory_equal(a, b, 5);
	y = addr("192.0.3.77");
	bw_sockaddr_prefix((struct sockaddr *)&y, 24, 56, b);
	assert_memory_not_equal(a, b, 5);
	/* /25: the low half and the high half differ */
	x = addr("192.0.2.1"), y = addr("192.0.2.129");
	bw_sockaddr_prefix((struct sockaddr *)&x, 25, 56, a);
	bw_sockaddr_prefix((struct sockaddr *)&y, 25, 56, b);
	assert_memory_not_equal(a, b, 5);
	x = addr("2001:db8:1:2a00::1"), y = addr("2001:db8:1:2aff:ffff::5");
	assert_int_equal(bw_sockaddr_prefix((struct sockaddr *)&x, 24, 56, a), 17);
	bw_sockaddr_prefix((struct sockaddr *)&y, 24, 56, b);
	assert_memory_equal(a, b, 17);
	y = addr("2001:db8:1:2b00::1");
	bw_sockaddr_prefix((struct sockaddr *)&y, 24, 56, b);
	assert_memory_not_equal(a, b, 17);
	assert_int_equal(bw_sockaddr_prefix(NULL, 24, 56, a), 0);
}

/* The in-flight share against a plain array model, through many takes and puts (the
 * backward-shift deletion must keep every key findable). */
static void test_share(void **state)
{
	(void)state;
	struct bw_share sh;
	enum { KEYS = 300, ITEMS = 256 };
	assert_int_equal(bw_share_init(&sh, ITEMS), 0);
	unsigned model[KEYS] = {0}, held = 0;
	srand(7);
	for (int step = 0; step < 200000; step++) {
		unsigned k = (unsigned)rand() % KEYS;
		uint8_t key[5] = {4, (uint8_t)(k >> 8), (uint8_t)k, 0, 0};
		if (rand() % 2 && held < ITEMS) {
			bool ok = bw_share_take(&sh, key, sizeof(key), 3);
			assert_int_equal(ok, model[k] < 3);
			if (ok)
				model[k]++, held++;
		} else if (model[k]) {
			bw_share_put(&sh, key, sizeof(key));
			model[k]--, held--;
		}
	}
	/* every key's count is what the model says: it takes exactly 3 - count more */
	for (unsigned k = 0; k < KEYS; k++) {
		uint8_t key[5] = {4, (uint8_t)(k >> 8), (uint8_t)k, 0, 0};
		unsigned more = 0;
		while (bw_share_take(&sh, key, sizeof(key), 3))
			more++;
		assert_int_equal(more, 3 - model[k]);
	}
	bw_share_free(&sh);
}

static int load(const char *text, struct bw_conf **out, char *err, size_t errlen)
{
	char path[] = "/tmp/bw-test-rl-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = bw_conf_load(path, out, err, errlen);
	unlink(path);
	return rc;
}

static void test_config(void **state)
{
	(void)state;
	struct bw_conf *conf = NULL;
	char err[512] = "";
	assert_int_equal(load("server:\n"
			      "  listen:\n"
			      "    - { address: 127.0.0.1, port: 5399, rate-limit: { qps: 0 } }\n"
			      "    - { address: 127.0.0.1, port: 5400 }\n"
			      "  rate-limit: { qps: 100, burst: 300, prefix-v4: 28, prefix-v6: 48 }\n"
			      "  rrl: { responses-per-second: 20, slip: 3 }\n"
			      "clients-file: /dev/null\n"
			      "clients:\n"
			      "  - { name: g, rate-limit: { qps: 1000 } }\n"
			      "  - { name: a, match: [10.0.0.1], group: g }\n",
			      &conf, err, sizeof(err)),
			 0);
	assert_true(conf->server.rate.given);
	assert_int_equal(conf->server.rate.qps, 100);
	assert_int_equal(conf->server.rate.burst, 300);
	assert_int_equal(conf->server.rl_prefix_v4, 28);
	assert_int_equal(conf->server.rl_prefix_v6, 48);
	assert_int_equal(conf->server.rrl_rps, 20);
	assert_int_equal(conf->server.rrl_slip, 3);
	assert_true(conf->server.listen[0].rate.given);
	assert_int_equal(conf->server.listen[0].rate.qps, 0);
	assert_false(conf->server.listen[1].rate.given);
	assert_int_equal(conf->clients.list[1].rate.qps, 1000); /* from the group */
	bw_conf_free(conf);
	/* the defaults: off, /24 and /56, slip 2 */
	assert_int_equal(load("clients-file: /dev/null\n", &conf, err, sizeof(err)), 0);
	assert_int_equal(conf->server.rate.qps, 0);
	assert_int_equal(conf->server.rl_prefix_v4, 24);
	assert_int_equal(conf->server.rl_prefix_v6, 56);
	assert_int_equal(conf->server.rrl_rps, 0);
	assert_int_equal(conf->server.rrl_slip, 2);
	bw_conf_free(conf);
	assert_int_not_equal(load("server:\n  rate-limit: { qps: 10, prefix: 24 }\n", &conf, err,
				  sizeof(err)),
			     0);
	assert_non_null(strstr(err, ":2:26: unknown key 'prefix' in server.rate-limit"));
	assert_int_not_equal(load("server:\n  rrl: { slip: 11 }\n", &conf, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "slip"));
	assert_int_not_equal(load("server:\n  listen: [{ address: 127.0.0.1, rate-limit: "
				  "{ qps: 1, prefix-v4: 8 } }]\n",
				  &conf, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "unknown key 'prefix-v4' in server.listen item's rate-limit"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_fixed_memory),
	    cmocka_unit_test(test_prefix_key),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
