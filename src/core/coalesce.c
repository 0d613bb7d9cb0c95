/*
 * core/coalesce.c - one upstream resolution for a name that several workers miss at once.
 *
 * Each worker has its own libunbound context, whose mesh already merges the queries for
 * one name that reach that worker; a name asked of several workers at once (a popular
 * name just expired, a hundred devices waking up) would still be resolved once per
 * worker. The server's table (a mutex per stripe of buckets, held for a few pointer
 * steps) names, for every key being resolved, the query context resolving it: its owner.
 * A worker that misses a key another worker owns does not ask libunbound: it parks the
 * query in its own waiting list and sets its bit in the owner's waiter set. When the
 * owner's query ends (its answer is in the shared packet cache by then, unless it
 * failed), its worker posts the key's hash, and whether the upstream failed, to the
 * mailbox of every worker in the set and wakes it; that worker answers its parked
 * queries for the hash from the cache, with the owner's failure (SERVFAIL, or a stale
 * answer) when it failed, and the others (an answer the cache does not keep) join again:
 * they find a new owner or become one and ask libunbound themselves.
 *
 * Only hashes cross threads: a parked query never leaves its worker, so its timer, its
 * reply handle and its release stay single-threaded. A parked query whose timer fires
 * first is answered as any other (stale or SERVFAIL) and simply leaves its list.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* a lock per stripe of buckets: join and leave each touch one bucket, and every worker's
 * misses pass here */
#define STRIPES 64

struct bw_coalesce {
	pthread_mutex_t lock[STRIPES];
	size_t mask;
	struct bw_qctx **bucket;
};

static pthread_mutex_t *stripe(struct bw_coalesce *c, uint64_t hash)
{
	return &c->lock[(hash & c->mask) % STRIPES];
}

int bw_coalesce_new(size_t slots, struct bw_coalesce **out)
{
	size_t n = 64;
	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	struct bw_coalesce *c = calloc(1, sizeof(*c));
	if (!c || !(c->bucket = calloc(n, sizeof(*c->bucket)))) {
		free(c);
		return BW_ENOMEM;
	}
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	c->mask = n - 1;
	*out = c;
	return 0;
}

void bw_coalesce_free(struct bw_coalesce *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->lock[i]);
	free(c->bucket);
	free(c);
}

size_t bw_coalesce_bytes(const struct bw_coalesce *c)
{
	return c ? sizeof(*c) + (c->mask + 1) * sizeof(*c->bucket) : 0;
}

enum bw_join bw_coalesce_join(struct bw_coalesce *c, struct bw_qctx *x)
{
	unsigned me = x->w->index;
	struct bw_qctx **head = &c->bucket[x->s.key.hash & c->mask];
	enum bw_join r = BW_JOIN_OWNER;
	pthread_mutex_t *lock = stripe(c, x->s.key.hash);
	pthread_mutex_lock(lock);
	for (struct bw_qctx *y = *head; y; y = y->co_next) {
		if (!bw_cache_key_same(&y->s.key, &x->s.key))
			continue;
		r = BW_JOIN_LOCAL; /* the worker's own libunbound mesh merges these */
		if (y->w != x->w) {
			y->co_waiters[me / 64] |= 1ull << (me % 64);
			r = BW_JOIN_WAIT;
		}
		break;
	}
	if (r == BW_JOIN_OWNER) {
		memset(x->co_waiters, 0, sizeof(x->co_waiters));
		x->co_next = *head;
		*head = x;
		x->co_owner = true;
	}
	pthread_mutex_unlock(lock);
	return r;
}

void bw_coalesce_leave(struct bw_coalesce *c, struct bw_qctx *x,
		       uint64_t waiters[BW_COALESCE_WORDS])
{
	pthread_mutex_t *lock = stripe(c, x->s.key.hash);
	pthread_mutex_lock(lock);
	struct bw_qctx **p = &c->bucket[x->s.key.hash & c->mask];
	while (*p && *p != x)
		p = &(*p)->co_next;
	if (*p)
		*p = x->co_next;
	memcpy(waiters, x->co_waiters, sizeof(x->co_waiters));
	x->co_owner = false;
	x->co_next = NULL;
	pthread_mutex_unlock(lock);
}

/* ---- a worker's side: its parked queries and its mailbox ---- */

static struct bw_qctx **wait_head(struct bw_worker *w, uint64_t hash)
{
	return &w->waiting[(hash >> 32) % BW_WAIT_BUCKETS];
}

void bw_coalesce_park(struct bw_qctx *x)
{
	struct bw_qctx **head = wait_head(x->w, x->s.key.hash);
	x->wait_next = *head;
	if (*head)
		(*head)->wait_pprev = &x->wait_next;
	x->wait_pprev = head;
	*head = x;
}

void bw_coalesce_unpark(struct bw_qctx *x)
{
	if (!x->wait_pprev)
		return;
	*x->wait_pprev = x->wait_next;
	if (x->wait_next)
		x->wait_next->wait_pprev = x->wait_pprev;
	x->wait_pprev = NULL;
	x->wait_next = NULL;
}

bool bw_mailbox_post(struct bw_mailbox *m, uint64_t hash, bool failed)
{
	pthread_mutex_lock(&m->lock);
	bool was_empty = m->n == 0 && !m->overflow;
	if (m->n < BW_MAILBOX_SIZE)
		m->msg[m->n++] = (struct bw_mail){hash, failed};
	else
		m->overflow = true; /* the worker looks at every parked query instead */
	pthread_mutex_unlock(&m->lock);
	return was_empty;
}

size_t bw_mailbox_take(struct bw_mailbox *m, struct bw_mail *out, bool *overflow)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->n;
	memcpy(out, m->msg, n * sizeof(*out));
	*overflow = m->overflow;
	m->n = 0;
	m->overflow = false;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void bw_coalesce_notify(struct bw_server *s, const uint64_t waiters[BW_COALESCE_WORDS],
			uint64_t hash, bool failed)
{
	for (unsigned k = 0; k < BW_COALESCE_WORDS; k++)
		for (uint64_t bits = waiters[k]; bits; bits &= bits - 1) {
			unsigned i = k * 64 + (unsigned)__builtin_ctzll(bits);
			if (i < s->nworkers && bw_mailbox_post(&s->workers[i]->mailbox, hash, failed))
				bw_worker_wake(s->workers[i]);
		}
}

/* Detaches the parked queries for one hash (every parked query when all) into a list
 * linked by wait_next, each told whether its owner failed: answering one may park it
 * again, in the same buckets. */
static struct bw_qctx *detach(struct bw_worker *w, uint64_t hash, bool failed, bool all,
			      struct bw_qctx *list)
{
	for (size_t b = 0; b < BW_WAIT_BUCKETS; b++) {
		if (!all && b != (hash >> 32) % BW_WAIT_BUCKETS)
			continue;
		for (struct bw_qctx *x = w->waiting[b], *next; x; x = next) {
			next = x->wait_next;
			if (!all && x->s.key.hash != hash)
				continue;
			bw_coalesce_unpark(x);
			x->co_failed = failed;
			x->wait_next = list;
			list = x;
		}
	}
	return list;
}

void bw_coalesce_deliver(struct bw_worker *w)
{
	struct bw_mail mail[BW_MAILBOX_SIZE];
	bool all;
	size_t n = bw_mailbox_take(&w->mailbox, mail, &all);
	struct bw_qctx *list = NULL;
	if (all) /* some posts were lost: the cache says which owners are done */
		list = detach(w, 0, false, true, NULL);
	for (size_t i = 0; !all && i < n; i++)
		list = detach(w, mail[i].hash, mail[i].failed, false, list);
	while (list) {
		struct bw_qctx *x = list;
		list = x->wait_next;
		x->wait_next = NULL;
		bw_pipeline_unparked(x);
	}
}
