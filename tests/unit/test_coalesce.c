/*
 * tests/unit/test_coalesce.c - the coalescing table (core/coalesce.c): the first query for
 * a key owns it, a query of the owner's worker is left to that worker's libunbound, one of
 * another worker waits and is named among the owner's waiters; the owner leaving frees
 * the key; keys differ by every field; the mailbox says when a wake is needed and
 * overflows into "look at everything"; parking keeps a worker's list consistent.
 * (Answering parked queries is the daemon's: tests/e2e/test_coalesce.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static struct bw_worker *worker(unsigned index)
{
	struct bw_worker *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->index = index;
	pthread_mutex_init(&w->mailbox.lock, NULL);
	return w;
}

static void query(struct bw_qctx *x, struct bw_worker *w, const char *name, uint16_t qtype)
{
	memset(x, 0, sizeof(*x));
	x->w = w;
	size_t n = strlen(name);
	memcpy(x->s.q.qname_lc, name, n);
	x->s.key.qname_lc = x->s.q.qname_lc;
	x->s.key.qname_len = (uint16_t)n;
	x->s.key.qtype = qtype;
	x->s.key.qclass = 1;
	/* the hash as the cache would make it: equal keys, equal hashes; a collision between
	 * different keys is made on purpose below */
	x->s.key.hash = 0x1234;
}

static void test_join_leave(void **state)
{
	(void)state;
	struct bw_coalesce *c = NULL;
	assert_int_equal(bw_coalesce_new(8, &c), 0);
	assert_non_null(c);
	assert_true(bw_coalesce_bytes(c) > 0);
	struct bw_worker *w0 = worker(0), *w1 = worker(1), *w70 = worker(70);
	struct bw_qctx *q = calloc(6, sizeof(*q));
	assert_non_null(q);
	query(&q[0], w0, "\3www\7example\3org", 1);
	query(&q[1], w0, "\3www\7example\3org", 1);
	query(&q[2], w1, "\3www\7example\3org", 1);
	query(&q[3], w70, "\3www\7example\3org", 1);
	query(&q[4], w1, "\3www\7example\3org", 28); /* same hash, another type */
	query(&q[5], w1, "\3www\7example\3net", 1);  /* same hash, another name */

	assert_int_equal(bw_coalesce_join(c, &q[0]), BW_JOIN_OWNER);
	assert_true(q[0].co_owner);
	assert_int_equal(bw_coalesce_join(c, &q[1]), BW_JOIN_LOCAL);
	assert_false(q[1].co_owner);
	assert_int_equal(bw_coalesce_join(c, &q[2]), BW_JOIN_WAIT);
	assert_int_equal(bw_coalesce_join(c, &q[3]), BW_JOIN_WAIT);
	assert_int_equal(bw_coalesce_join(c, &q[4]), BW_JOIN_OWNER);
	assert_int_equal(bw_coalesce_join(c, &q[5]), BW_JOIN_OWNER);

	uint64_t waiters[BW_COALESCE_WORDS];
	bw_coalesce_leave(c, &q[0], waiters);
	assert_false(q[0].co_owner);
	assert_int_equal(waiters[0], 1ull << 1); /* worker 1, not the owner's own */
	assert_int_equal(waiters[1], 1ull << (70 - 64));
	assert_int_equal(waiters[2] | waiters[3], 0);
	/* the key is free: the next query for it owns it, with nobody waiting yet */
	assert_int_equal(bw_coalesce_join(c, &q[2]), BW_JOIN_OWNER);
	bw_coalesce_leave(c, &q[2], waiters);
	assert_int_equal(waiters[0] | waiters[1] | waiters[2] | waiters[3], 0);
	/* leaving from the middle of a chain keeps the rest */
	bw_coalesce_leave(c, &q[4], waiters);
	assert_int_equal(bw_coalesce_join(c, &q[3]), BW_JOIN_OWNER); /* not q[5]'s name */
	bw_coalesce_leave(c, &q[5], waiters);
	assert_int_equal(waiters[0] | waiters[1], 0);
	assert_int_equal(bw_coalesce_join(c, &q[5]), BW_JOIN_OWNER);
	assert_int_equal(bw_coalesce_join(c, &q[2]), BW_JOIN_WAIT); /* q[3] still owns it */
	bw_coalesce_leave(c, &q[3], waiters);
	assert_int_equal(waiters[0], 1ull << 1);
	bw_coalesce_leave(c, &q[5], waiters);
	free(q);
	free(w0);
	free(w1);
	free(w70);
	bw_coalesce_free(c);
}

static void test_mailbox(void **state)
{
	(void)state;
	struct bw_worker *w = worker(0);
	struct bw_mail got[BW_MAILBOX_SIZE];
	bool overflow = true;
	assert_int_equal(bw_mailbox_take(&w->mailbox, got, &overflow), 0);
	assert_false(overflow);
	assert_true(bw_mailbox_post(&w->mailbox, 7, false)); /* empty: wake it */
	assert_false(bw_mailbox_post(&w->mailbox, 8, true)); /* a wake is pending */
	assert_int_equal(bw_mailbox_take(&w->mailbox, got, &overflow), 2);
	assert_int_equal(got[0].hash, 7);
	assert_false(got[0].failed);
	assert_int_equal(got[1].hash, 8);
	assert_true(got[1].failed);
	assert_false(overflow);
	for (unsigned i = 0; i < BW_MAILBOX_SIZE + 5; i++)
		bw_mailbox_post(&w->mailbox, i, false);
	assert_int_equal(bw_mailbox_take(&w->mailbox, got, &overflow), BW_MAILBOX_SIZE);
	assert_true(overflow);
	assert_true(bw_mailbox_post(&w->mailbox, 1, false)); /* taken: empty again */
	pthread_mutex_destroy(&w->mailbox.lock);
	free(w);
}

static void test_park(void **state)
{
	(void)state;
	struct bw_worker *w = worker(0);
	struct bw_qctx q[3];
	for (int i = 0; i < 3; i++) {
		query(&q[i], w, "\1a", 1);
		bw_coalesce_park(&q[i]);
		assert_non_null(q[i].wait_pprev);
	}
	bw_coalesce_unpark(&q[1]); /* the middle one */
	assert_null(q[1].wait_pprev);
	bw_coalesce_unpark(&q[1]); /* twice: nothing */
	size_t n = 0;
	for (size_t b = 0; b < BW_WAIT_BUCKETS; b++)
		for (struct bw_qctx *x = w->waiting[b]; x; x = x->wait_next)
			n++;
	assert_int_equal(n, 2);
	bw_coalesce_unpark(&q[2]);
	bw_coalesce_unpark(&q[0]);
	for (size_t b = 0; b < BW_WAIT_BUCKETS; b++)
		assert_null(w->waiting[b]);
	pthread_mutex_destroy(&w->mailbox.lock);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_join_leave),
	    cmocka_unit_test(test_mailbox),
	    cmocka_unit_test(test_park),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
