/*
 * telemetry/alerts.c - infected-client detection: a client with `threshold` blocked
 * queries of a watched category (malware, c2) within `window` raises one alert, which
 * stays active (new hits update it, no new alert) until the client has had no such hit for
 * `clear-after`; then it shows as cleared. A client is a named client by its name, where
 * the privacy mode keeps names (so a roaming phone whose address changes is one client),
 * else its address as the privacy mode keeps it (192.0.2.0/24); the addresses an alert's
 * hits came from are listed with it.
 *
 * Per client the last `threshold` hit times are kept in a small circular buffer: the
 * alert fires when the oldest of them is within the window of the newest. A bounded
 * table (MAX_CLIENTS); when full, the stalest entry that is not an active alert goes.
 * Not thread-safe: the telemetry object serialises access.
 */
#include <stdlib.h>

#include "telemetry/internal.h"

#define MAX_CLIENTS 4096
#define MAX_KEPT 8 /* distinct domains and feeds listed per alert */

enum state { TRACKING = 0, ACTIVE, CLEARED };

struct client {
	char key[64];			/* the address, when the client has no name */
	char name[BW_TLM_CLIENT_NAME];	/* the client's name, or "" */
	enum state state;
	uint64_t *times; /* threshold entries, circular */
	unsigned next, filled;
	uint64_t hits; /* in this episode */
	uint64_t first_seen, last_seen, cleared_at;
	char *domains[MAX_KEPT];
	char *feeds[MAX_KEPT];
	char *addrs[MAX_KEPT]; /* the addresses of this episode's hits */
	unsigned n_domains, n_feeds, n_addrs;
	uint64_t more_domains, more_addrs; /* distinct ones beyond MAX_KEPT */
	uint64_t id;   /* the alert's, from when it was raised (0: none yet) */
	bool acked;    /* acknowledged by an operator (bw_tlm_alerts_ack) */
};

struct bw_tlm_alerts {
	unsigned threshold;
	uint64_t window_ms, clear_ms;
	struct client *c;
	unsigned n;
	unsigned active;
	uint64_t next_id;
};

struct bw_tlm_alerts *bw_tlm_alerts_create(unsigned threshold, uint64_t window_ms,
					   uint64_t clear_ms)
{
	struct bw_tlm_alerts *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->threshold = threshold ? threshold : 1;
	a->window_ms = window_ms;
	a->clear_ms = clear_ms;
	a->c = calloc(MAX_CLIENTS, sizeof(*a->c));
	if (!a->c) {
		free(a);
		return NULL;
	}
	return a;
}

static void episode_reset(struct client *c)
{
	for (unsigned i = 0; i < c->n_domains; i++)
		free(c->domains[i]);
	for (unsigned i = 0; i < c->n_feeds; i++)
		free(c->feeds[i]);
	for (unsigned i = 0; i < c->n_addrs; i++)
		free(c->addrs[i]);
	c->n_domains = c->n_feeds = c->n_addrs = 0;
	c->more_domains = c->more_addrs = 0;
	c->next = c->filled = 0;
	c->hits = 0;
	c->state = TRACKING;
}

static void client_free(struct client *c)
{
	episode_reset(c);
	free(c->times);
	memset(c, 0, sizeof(*c));
}

void bw_tlm_alerts_free(struct bw_tlm_alerts *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n; i++)
		client_free(&a->c[i]);
	free(a->c);
	free(a);
}

/* The entry of the client named `name`, or (name NULL or "") of the address `addr`. */
static struct client *find(struct bw_tlm_alerts *a, const char *addr, const char *name)
{
	bool named = name && *name;
	for (unsigned i = 0; i < a->n; i++) {
		const struct client *c = &a->c[i];
		if (named ? !strcmp(c->name, name) : !c->name[0] && !strcmp(c->key, addr))
			return &a->c[i];
	}
	return NULL;
}

static struct client *add(struct bw_tlm_alerts *a, const char *addr, const char *name)
{
	struct client *c;
	if (a->n < MAX_CLIENTS) {
		c = &a->c[a->n];
	} else {
		/* evict the entry with the oldest last hit that is not an active alert */
		c = NULL;
		for (unsigned i = 0; i < a->n; i++)
			if (a->c[i].state != ACTIVE && (!c || a->c[i].last_seen < c->last_seen))
				c = &a->c[i];
		if (!c)
			return NULL;
		client_free(c);
	}
	c->times = calloc(a->threshold, sizeof(*c->times));
	if (!c->times)
		return NULL;
	if (name && *name)
		snprintf(c->name, sizeof(c->name), "%s", name);
	else
		snprintf(c->key, sizeof(c->key), "%s", addr);
	if (c == &a->c[a->n])
		a->n++;
	return c;
}

static void keep(char **list, unsigned *n, const char *s, uint64_t *more)
{
	if (!s || !*s)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(list[i], s))
			return;
	if (*n == MAX_KEPT) {
		if (more)
			(*more)++;
		return;
	}
	if ((list[*n] = strdup(s)))
		(*n)++;
}

bool bw_tlm_alerts_hit(struct bw_tlm_alerts *a, const char *client, const char *name,
		       const char *domain, const char *feed, uint64_t now_ms)
{
	struct client *c = find(a, client, name);
	if (!c && !(c = add(a, client, name)))
		return false;
	if (c->state == CLEARED ||
	    (c->state == TRACKING && c->filled && now_ms - c->last_seen > a->window_ms))
		episode_reset(c); /* a new episode */
	if (!c->hits)
		c->first_seen = now_ms;
	c->hits++;
	c->last_seen = now_ms;
	c->times[c->next] = now_ms;
	c->next = (c->next + 1) % a->threshold;
	if (c->filled < a->threshold)
		c->filled++;
	keep(c->domains, &c->n_domains, domain, &c->more_domains);
	keep(c->feeds, &c->n_feeds, feed, NULL);
	keep(c->addrs, &c->n_addrs, client, &c->more_addrs);
	if (c->state != TRACKING || c->filled < a->threshold)
		return false;
	uint64_t oldest = c->times[c->next]; /* the buffer is full: next is the oldest */
	if (now_ms - oldest > a->window_ms)
		return false;
	c->state = ACTIVE;
	c->id = ++a->next_id;
	c->acked = false;
	a->active++;
	return true;
}

/* Removes entry i (the last one takes its place). */
static void drop_entry(struct bw_tlm_alerts *a, unsigned i)
{
	client_free(&a->c[i]);
	a->c[i] = a->c[--a->n];
	memset(&a->c[a->n], 0, sizeof(a->c[a->n]));
}

unsigned bw_tlm_alerts_expire(struct bw_tlm_alerts *a, uint64_t now_ms)
{
	unsigned cleared = 0;
	for (unsigned i = 0; i < a->n; i++) {
		struct client *c = &a->c[i];
		if (c->state == ACTIVE && now_ms - c->last_seen >= a->clear_ms) {
			c->state = CLEARED;
			c->cleared_at = now_ms;
			a->active--;
			cleared++;
		}
	}
	/* tracking entries whose window has passed carry nothing: drop them */
	for (unsigned i = 0; i < a->n;) {
		struct client *c = &a->c[i];
		if (c->state == TRACKING && now_ms - c->last_seen > a->window_ms) {
			drop_entry(a, i);
			continue;
		}
		i++;
	}
	return cleared;
}

int bw_tlm_alerts_ack(struct bw_tlm_alerts *a, uint64_t id)
{
	for (unsigned i = 0; i < a->n; i++) {
		if (a->c[i].state != TRACKING && a->c[i].id == id) {
			a->c[i].acked = true;
			return 0;
		}
	}
	return BW_ENOENT;
}

unsigned bw_tlm_alerts_clear(struct bw_tlm_alerts *a, uint64_t id)
{
	unsigned n = 0;
	for (unsigned i = 0; i < a->n;) {
		struct client *c = &a->c[i];
		if (c->state != TRACKING && (!id || c->id == id)) {
			if (c->state == ACTIVE)
				a->active--;
			drop_entry(a, i);
			n++;
			continue;
		}
		i++;
	}
	return n;
}

unsigned bw_tlm_alerts_active(const struct bw_tlm_alerts *a)
{
	return a->active;
}

static char *join(char *const *list, unsigned n, uint64_t more)
{
	size_t len = 1 + 32;
	for (unsigned i = 0; i < n; i++)
		len += strlen(list[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t at = 0;
	s[0] = 0;
	for (unsigned i = 0; i < n; i++)
		at += (size_t)snprintf(s + at, len - at, "%s%s", i ? "," : "", list[i]);
	if (more)
		snprintf(s + at, len - at, ",+%llu more", (unsigned long long)more);
	return s;
}

static json_t *row(const struct client *c)
{
	char first[40], last[40];
	bw_tlm_iso_time(c->first_seen, first, sizeof(first));
	bw_tlm_iso_time(c->last_seen, last, sizeof(last));
	char *domains = join(c->domains, c->n_domains, c->more_domains);
	char *feeds = join(c->feeds, c->n_feeds, 0);
	char *addrs = join(c->addrs, c->n_addrs, c->more_addrs);
	json_t *r = NULL;
	if (domains && feeds && addrs)
		r = json_pack("[ssIsssssI]", c->name[0] ? c->name : c->key,
			      c->state == ACTIVE ? "active" : "cleared", (json_int_t)c->hits, first,
			      last, domains, feeds, addrs, (json_int_t)c->id);
	free(domains);
	free(feeds);
	free(addrs);
	return r;
}

json_t *bw_tlm_alerts_row(struct bw_tlm_alerts *a, const char *client, const char *name)
{
	struct client *c = find(a, client, name);
	return c ? row(c) : NULL;
}

static int cmp_last(const void *x, const void *y)
{
	const struct client *a = *(const struct client *const *)x;
	const struct client *b = *(const struct client *const *)y;
	if ((a->state == ACTIVE) != (b->state == ACTIVE))
		return a->state == ACTIVE ? -1 : 1;
	if (a->last_seen != b->last_seen)
		return a->last_seen > b->last_seen ? -1 : 1;
	return strcmp(a->name[0] ? a->name : a->key, b->name[0] ? b->name : b->key);
}

/* Appends one item per alert, active ones first, to arr: 0, or -1 (out of memory). */
static int each_alert(const struct bw_tlm_alerts *a, json_t *(*item)(const struct client *),
		      json_t *arr)
{
	const struct client **v = malloc((a->n + 1) * sizeof(*v));
	if (!v)
		return -1;
	unsigned k = 0;
	for (unsigned i = 0; i < a->n; i++)
		if (a->c[i].state != TRACKING)
			v[k++] = &a->c[i];
	qsort(v, k, sizeof(*v), cmp_last);
	int rc = 0;
	for (unsigned i = 0; i < k && !rc; i++) {
		json_t *x = item(v[i]);
		rc = !x || json_array_append_new(arr, x) ? -1 : 0;
	}
	free(v);
	return rc;
}

json_t *bw_tlm_alerts_json(struct bw_tlm_alerts *a)
{
	json_t *o = json_pack("{s[sssssssss] s[]}", "columns", "client", "state", "hits",
			      "first_seen", "last_seen", "domains", "feeds", "addresses", "id",
			      "rows");
	if (o && each_alert(a, row, json_object_get(o, "rows")) != 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *list(char *const *items, unsigned n)
{
	json_t *l = json_array();
	for (unsigned i = 0; l && i < n; i++)
		json_array_append_new(l, json_string(items[i]));
	return l;
}

static json_t *object(const struct client *c)
{
	char first[40], last[40];
	bw_tlm_iso_time(c->first_seen, first, sizeof(first));
	bw_tlm_iso_time(c->last_seen, last, sizeof(last));
	return json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:I, s:b}", "id",
			 (json_int_t)c->id, "client", c->name[0] ? c->name : c->key, "state",
			 c->state == ACTIVE ? "active" : "cleared", "hits", (json_int_t)c->hits,
			 "first", first, "last", last, "names", list(c->domains, c->n_domains),
			 "feeds", list(c->feeds, c->n_feeds), "addresses",
			 list(c->addrs, c->n_addrs), "more_names", (json_int_t)c->more_domains,
			 "acknowledged", c->acked);
}

json_t *bw_tlm_alerts_objects(struct bw_tlm_alerts *a)
{
	json_t *arr = json_array();
	if (arr && each_alert(a, object, arr) != 0) {
		json_decref(arr);
		arr = NULL;
	}
	return arr;
}
