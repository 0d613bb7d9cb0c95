/*
 * net/admit.c - who may open a stream connection (TCP, DoT, DoH): the connection cap, a
 * per-client share of it, and eviction of idle connections when the listener is full.
 *
 * One struct bw_admit per stream listener per worker. It keeps the listener's open
 * connections in a ring ordered by activity (a connection moves to the front when a
 * query completes on it) and counts them per client prefix in a small open-addressed
 * table keyed by SipHash under a random key (clients choose their addresses). When the
 * listener is full, the least recently active idle connection is closed to make room
 * (RFC 7766 section 6.2.3 lets a server close idle connections under pressure); a client
 * that already holds its share is refused. Both are counted and logged at most once per
 * LOG_EVERY_MS. docs/internals/connections.md.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

#define EVICT_SCAN 64	   /* least recently active connections looked at for an idle one */
#define LOG_EVERY_MS 10000 /* refusal/eviction log lines, per listener and worker */
#define TABLE_MIN 64

/* The client prefix of peer (bw_sockaddr_prefix); unix sockets and the like: one client. */
static void client_of(unsigned v4, unsigned v6, const struct sockaddr *peer,
		      struct bw_admit_client *out)
{
	uint8_t key[17];
	memset(out, 0, sizeof(*out));
	size_t n = bw_sockaddr_prefix(peer, v4, v6, key);
	out->family = n && key[0] == 4 ? 4 : 6;
	if (n)
		memcpy(out->prefix, key + 1, key[0]);
}

static size_t slot_of(const struct bw_admit *a, const struct bw_admit_client *c)
{
	return (size_t)bw_hash_keyed(c->prefix, 17, &a->key) & (a->cap - 1);
}

static bool same_client(const struct bw_admit_client *x, const struct bw_admit_client *y)
{
	return x->family == y->family && memcmp(x->prefix, y->prefix, 16) == 0;
}

/* The slot of client c, or the free slot where it would go. */
static struct bw_admit_client *find(struct bw_admit *a, const struct bw_admit_client *c)
{
	size_t i = slot_of(a, c);
	while (a->tab[i].family && !same_client(&a->tab[i], c))
		i = (i + 1) & (a->cap - 1);
	return &a->tab[i];
}

static int grow(struct bw_admit *a)
{
	size_t ncap = a->cap ? a->cap * 2 : TABLE_MIN;
	struct bw_admit_client *old = a->tab, *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return BW_ENOMEM;
	size_t ocap = a->cap;
	a->tab = nt;
	a->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].family)
			*find(a, &old[i]) = old[i];
	free(old);
	return 0;
}

/* Backward-shift deletion keeps every probe run unbroken without tombstones. */
static void table_remove(struct bw_admit *a, struct bw_admit_client *slot)
{
	size_t mask = a->cap - 1, hole = (size_t)(slot - a->tab);
	a->tab[hole].family = 0;
	for (size_t j = (hole + 1) & mask; a->tab[j].family; j = (j + 1) & mask) {
		size_t home = slot_of(a, &a->tab[j]);
		/* move j into the hole unless its home lies cyclically in (hole, j] */
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		a->tab[hole] = a->tab[j];
		a->tab[j].family = 0;
		hole = j;
	}
	a->clients--;
}

int bw_admit_init(struct bw_admit *a, const struct bw_admit_opts *o)
{
	memset(a, 0, sizeof(*a));
	a->transport = o->transport;
	a->max_conns = o->max_conns ? o->max_conns : 1024;
	a->per_client = o->per_client ? o->per_client : BW_MAX(1u, a->max_conns / 16);
	a->v4_prefix = o->v4_prefix ? o->v4_prefix : 32;
	a->v6_prefix = o->v6_prefix ? o->v6_prefix : 64;
	a->stats = o->stats;
	a->ring.next = a->ring.prev = &a->ring;
	bw_hash_key_random(&a->key);
	return grow(a);
}

void bw_admit_free(struct bw_admit *a)
{
	free(a->tab);
	a->tab = NULL;
	a->cap = 0;
}

static void ring_unlink(struct bw_admit_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = l;
}

static void ring_push_front(struct bw_admit *a, struct bw_admit_link *l)
{
	l->next = a->ring.next;
	l->prev = &a->ring;
	a->ring.next->prev = l;
	a->ring.next = l;
}

/* The log line, at most once per LOG_EVERY_MS; the counts say what happened in between.
 * The client is shown as its /24 or /56 whatever the counting prefix: logs are kept, and
 * the people behind the addresses are who this protects. */
static void note(struct bw_admit *a, const struct sockaddr *peer, const char *what)
{
	a->unlogged++;
	uint64_t now = bw_now_ms();
	if (a->logged_ms && now - a->logged_ms < LOG_EVERY_MS)
		return;
	struct bw_admit_client c;
	client_of(24, 56, peer, &c);
	char addr[64] = "?";
	if (c.family == 4)
		inet_ntop(AF_INET, c.prefix, addr, sizeof(addr));
	else
		inet_ntop(AF_INET6, c.prefix, addr, sizeof(addr));
	bw_warn("%s: %s (client %s/%u); %llu connection(s) refused or closed this way in the "
		"last %us on this worker (tcp-max-connections %u, tcp-max-connections-per-client "
		"%u)",
		a->transport, what, addr, c.family == 4 ? 24u : 56u,
		(unsigned long long)a->unlogged, LOG_EVERY_MS / 1000, a->max_conns, a->per_client);
	a->unlogged = 0;
	a->logged_ms = now;
}

int bw_admit_enter(struct bw_admit *a, struct bw_admit_link *l, const struct sockaddr *peer,
		   bool (*evict)(struct bw_admit_link *victim))
{
	struct bw_admit_client c;
	client_of(a->v4_prefix, a->v6_prefix, peer, &c);
	struct bw_admit_client *slot = find(a, &c);
	if (slot->family && slot->conns >= a->per_client) {
		a->stats->refused_client++;
		note(a, peer, "refused a connection: the client holds its share of connections");
		return BW_EREFUSED;
	}
	if (a->n >= a->max_conns) {
		/* the least recently active first: one of them that has nothing in flight goes */
		struct bw_admit_link *v = a->ring.prev;
		bool made_room = false;
		for (unsigned k = 0; k < EVICT_SCAN && v != &a->ring && !made_room; k++) {
			struct bw_admit_link *prev = v->prev;
			made_room = evict(v); /* calls bw_admit_leave(v) when it closes */
			v = prev;
		}
		if (!made_room) {
			a->stats->refused_full++;
			note(a, peer, "refused a connection: every connection is busy");
			return BW_ESPACE;
		}
		a->stats->evicted++;
		note(a, peer, "closed an idle connection to make room for a new one");
		slot = find(a, &c); /* the table may have shifted */
	}
	if (!slot->family) {
		if ((a->clients + 1) * 2 > a->cap) {
			if (grow(a))
				return BW_ENOMEM;
			slot = find(a, &c);
		}
		*slot = c;
		a->clients++;
	}
	slot->conns++;
	l->client = c;
	ring_push_front(a, l);
	a->n++;
	return 0;
}

void bw_admit_leave(struct bw_admit *a, struct bw_admit_link *l)
{
	if (l->next == l || !l->next)
		return; /* never entered, or left already */
	ring_unlink(l);
	a->n--;
	struct bw_admit_client *slot = find(a, &l->client);
	if (slot->family && --slot->conns == 0)
		table_remove(a, slot);
}

void bw_admit_touch(struct bw_admit *a, struct bw_admit_link *l)
{
	if (a->ring.next == l || l->next == l || !l->next)
		return;
	ring_unlink(l);
	ring_push_front(a, l);
}
