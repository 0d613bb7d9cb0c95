/* tests/unit/test_base.c - base module: sizes, hashing, the wire cursor, snapshot swap. */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"

/* A deadline ms from now on the wall clock, nanoseconds normalised. */
static void test_deadline(void **state)
{
	(void)state;
	struct timespec before, d, after;
	for (uint64_t ms = 0; ms < 2500; ms += 7) {
		clock_gettime(CLOCK_REALTIME, &before);
		bw_deadline_ms(&d, ms);
		clock_gettime(CLOCK_REALTIME, &after);
		assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
		int64_t at = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
		int64_t lo = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec + (int64_t)ms * 1000000;
		int64_t hi = (int64_t)after.tv_sec * 1000000000 + after.tv_nsec + (int64_t)ms * 1000000;
		assert_true(at >= lo && at <= hi);
	}
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(bw_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(bw_parse_size("1234", &v), 0);
	assert_int_equal(v, 1234);
	assert_int_equal(bw_parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(bw_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(bw_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(bw_parse_size("1MB", &v), 0);
	assert_int_equal(v, 1ULL << 20);
	assert_int_equal(bw_parse_size("", &v), BW_EINVAL);
	assert_int_equal(bw_parse_size("-1", &v), BW_EINVAL);
	assert_int_equal(bw_parse_size("12T", &v), BW_EINVAL);
	assert_int_equal(bw_parse_size("1M2", &v), BW_EINVAL);
	assert_int_equal(bw_parse_size("99999999999999999999", &v), BW_ERANGE);
	assert_int_equal(bw_parse_size("18014398509481984G", &v), BW_ERANGE);
}

static void test_sockaddr_addr(void **state)
{
	(void)state;
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct sockaddr sx = {.sa_family = AF_UNIX};
	char out[BW_ADDRSTRLEN] = "untouched";
	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::53", &s6.sin6_addr);
	assert_true(bw_sockaddr_addr((struct sockaddr *)&s4, out, sizeof(out)));
	assert_string_equal(out, "192.0.2.1");
	assert_true(bw_sockaddr_addr((struct sockaddr *)&s6, out, sizeof(out)));
	assert_string_equal(out, "2001:db8::53");
	strcpy(out, "untouched");
	assert_false(bw_sockaddr_addr(&sx, out, sizeof(out)));
	assert_false(bw_sockaddr_addr(NULL, out, sizeof(out)));
	assert_string_equal(out, "untouched");
}

static void test_hash(void **state)
{
	(void)state;
	static const uint8_t a[17] = {3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm',
				      'p', 'l', 'e', 3, 'o', 'r', 'g', 0};
	/* deterministic, seed-dependent, sensitive to every byte and to the length */
	assert_true(bw_hash(a, 17, 1) == bw_hash(a, 17, 1));
	assert_true(bw_hash(a, 17, 1) != bw_hash(a, 17, 2));
	assert_true(bw_hash(a, 17, 1) != bw_hash(a, 16, 1));
	char b[32];
	for (size_t len = 1; len <= 24; len++) {
		for (size_t i = 0; i < len; i++) {
			memset(b, 'x', sizeof(b));
			uint64_t h0 = bw_hash(b, len, 7);
			b[i] = 'y';
			assert_true(bw_hash(b, len, 7) != h0);
		}
	}
	/* bytes past len never matter */
	memset(b, 'x', sizeof(b));
	uint64_t h = bw_hash(b, 5, 3);
	b[5] = 'z';
	assert_true(bw_hash(b, 5, 3) == h);
}

/* SipHash-1-3 against the reference implementation's outputs for key 0 and the messages
 * 00, 00 01, 00 01 02, ... (every length that takes another path: 0, under a word, one
 * word, a word and a tail, two words, two words and a tail) */
static void test_hash_keyed(void **state)
{
	(void)state;
	static const struct {
		size_t len;
		uint64_t h;
	} ref[] = {
	    {0, 0xd1fba762150c532cULL},  {1, 0x68a914128e01e473ULL},
	    {2, 0x010bac45c41e3669ULL},  {3, 0x4d4c9a4a8ef6e0adULL},
	    {7, 0x2f098ab0c751325aULL},  {8, 0xead411e67ebe2eeaULL},
	    {9, 0x75927f9d95124362ULL},  {15, 0xf30eb725bb91c9eaULL},
	    {16, 0x8972188433a5c5b7ULL}, {17, 0x4883c49a2c009c1dULL},
	    {20, 0x639e355ae68c0100ULL},
	};
	uint8_t msg[32];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	struct bw_hash_key zero = {0, 0};
	for (size_t i = 0; i < sizeof(ref) / sizeof(ref[0]); i++)
		assert_true(bw_hash_keyed(msg, ref[i].len, &zero) == ref[i].h);

	/* two random keys differ, and so do the hashes under them */
	struct bw_hash_key k1, k2;
	bw_hash_key_random(&k1);
	bw_hash_key_random(&k2);
	assert_true(k1.k0 != k2.k0 || k1.k1 != k2.k1);
	assert_true(bw_hash_keyed(msg, 20, &k1) != bw_hash_keyed(msg, 20, &k2));
	assert_true(bw_hash_keyed(msg, 20, &k1) == bw_hash_keyed(msg, 20, &k1));
}

static void test_cursor(void **state)
{
	(void)state;
	const uint8_t buf[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
	struct bw_cursor c;
	bw_cursor_init(&c, buf, sizeof(buf));
	assert_int_equal(bw_cursor_u16(&c), 0x1234);
	assert_int_equal(bw_cursor_left(&c), 3);
	assert_int_equal(bw_cursor_u32(&c), 0); /* only 3 left: error, nothing consumed */
	assert_int_equal(c.error, BW_EMALFORMED);
	assert_int_equal(bw_cursor_u8(&c), 0); /* sticky */
	assert_int_equal(bw_cursor_left(&c), 0);

	bw_cursor_init(&c, buf, sizeof(buf));
	bw_cursor_skip(&c, 4);
	assert_int_equal(bw_cursor_u8(&c), 0x9a);
	assert_int_equal(c.error, 0);
	bw_cursor_skip(&c, 1);
	assert_int_equal(c.error, BW_EMALFORMED);

	bw_cursor_init(&c, buf, sizeof(buf));
	bw_cursor_skip(&c, SIZE_MAX); /* no overflow in the bounds check */
	assert_int_equal(c.error, BW_EMALFORMED);
}

/* A reader keeps acquiring the current snapshot and checks it was not freed (the
 * writer poisons a snapshot before freeing it). */
struct snap {
	_Atomic int alive;
	int value;
};
static struct bw_snapref ref;
static _Atomic bool stop;
static _Atomic long reads;

static void *reader(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		struct snap *s = bw_snapref_acquire(&ref, slot);
		for (int i = 0; i < 50; i++)
			assert_int_equal(atomic_load(&s->alive), 1);
		bw_snapref_release(&ref, slot);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void test_snapref(void **state)
{
	(void)state;
	struct snap *first = calloc(1, sizeof(*first));
	first->alive = 1;
	bw_snapref_init(&ref, first, 2);
	pthread_t t[2];
	for (unsigned i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)i);
	while (atomic_load(&reads) == 0)
		usleep(100); /* readers are running */
	int i;
	for (i = 0; i < 2000 || atomic_load(&reads) < 20000; i++) {
		struct snap *next = calloc(1, sizeof(*next));
		next->alive = 1;
		next->value = i;
		struct snap *old = bw_snapref_swap(&ref, next);
		assert_non_null(old);
		atomic_store(&old->alive, 0); /* a reader still holding it would see this */
		free(old);
	}
	atomic_store(&stop, true);
	for (unsigned k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	assert_true(atomic_load(&reads) > 0);
	struct snap *last = atomic_load(&ref.current);
	assert_int_equal(last->value, i - 1);
	free(last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_hash_keyed),
		cmocka_unit_test(test_sockaddr_addr),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_snapref),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
