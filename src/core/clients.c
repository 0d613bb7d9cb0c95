/*
 * core/clients.c - who is asking: the named clients of the config (conf->clients) indexed
 * for the query path, and the profile choice that uses them.
 *
 * One open-addressing table holds every way to recognise a client: ClientIDs, MAC
 * addresses and networks (one key per network, its address masked to its prefix). Keys
 * come from whoever sends queries, so the table is hashed with a random SipHash key
 * (base.h) and probes are bounded by the load factor (at most half full). A network lookup
 * tries each prefix length configured, longest first: with 10,000 clients at /32 that is
 * one probe. Built with the policy state at start and on every reload; read-only after.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/internal.h"

enum key_kind { KEY_ID = 1, KEY_MAC = 2, KEY_V4 = 3, KEY_V6 = 4 };

/* 32 bytes: a ClientID is compared in the config (its entry and which of its IDs), a MAC
 * or a network in the slot. */
struct slot {
	uint64_t hash;   /* 0: empty */
	int32_t entry;   /* index into conf->clients.list */
	uint8_t kind, len;
	uint8_t key[18]; /* KEY_ID: the ID's index in the entry; else MAC, or address + prefix */
};

struct bw_clients {
	const struct bw_conf *conf;
	struct bw_hash_key hkey;
	struct slot *slots;
	size_t mask;
	uint8_t v4_prefixes[33], n_v4; /* prefix lengths in use, longest first */
	uint8_t v6_prefixes[129], n_v6;
	bool any_mac, any_id;
};

static uint64_t key_hash(const struct bw_clients *c, unsigned kind, const uint8_t *key, size_t len)
{
	uint8_t buf[1 + BW_CLIENT_ID_MAX];
	buf[0] = (uint8_t)kind;
	memcpy(buf + 1, key, len);
	uint64_t h = bw_hash_keyed(buf, len + 1, &c->hkey);
	return h ? h : 1;
}

/* Whether slot s holds key (kind, key, len). */
static bool slot_is(const struct bw_clients *c, const struct slot *s, unsigned kind,
		   const uint8_t *key, size_t len)
{
	if (s->kind != kind || s->len != len)
		return false;
	if (kind == KEY_ID)
		return !memcmp(c->conf->clients.list[s->entry].ids[s->key[0]], key, len);
	return !memcmp(s->key, key, len);
}

static int lookup(const struct bw_clients *c, unsigned kind, const uint8_t *key, size_t len)
{
	uint64_t h = key_hash(c, kind, key, len);
	for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
		const struct slot *s = &c->slots[i];
		if (!s->hash)
			return -1;
		if (s->hash == h && slot_is(c, s, kind, key, len))
			return s->entry;
	}
}

/* The first entry to name a key keeps it (the loader refuses duplicate IDs). `idx`: for
 * an ID, which of the entry's IDs it is. */
static void insert(struct bw_clients *c, unsigned kind, const uint8_t *key, size_t len, int entry,
		   size_t idx)
{
	uint64_t h = key_hash(c, kind, key, len);
	for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
		struct slot *s = &c->slots[i];
		if (s->hash == h && slot_is(c, s, kind, key, len))
			return;
		if (!s->hash) {
			*s = (struct slot){.hash = h, .entry = entry, .kind = (uint8_t)kind,
					   .len = (uint8_t)len};
			if (kind == KEY_ID)
				s->key[0] = (uint8_t)idx;
			else
				memcpy(s->key, key, len);
			return;
		}
	}
}

/* A network's key: bw_prefix_key's, then the prefix length. */
static size_t net_key(int family, const uint8_t *addr, unsigned prefix, uint8_t *out)
{
	size_t n = bw_prefix_key(family, addr, prefix, out);
	out[n] = (uint8_t)prefix;
	return n + 1;
}

static void add_prefix(uint8_t *list, uint8_t *n, uint8_t prefix)
{
	size_t i = 0;
	while (i < *n && list[i] > prefix)
		i++;
	if (i < *n && list[i] == prefix)
		return;
	memmove(list + i + 1, list + i, *n - i);
	list[i] = prefix;
	++*n;
}

int bw_clients_build(const struct bw_conf *conf, struct bw_clients **out)
{
	*out = NULL;
	size_t keys = 0;
	for (size_t i = 0; i < conf->clients.n; i++) {
		const struct bw_client_conf *cl = &conf->clients.list[i];
		keys += cl->n_ids + cl->n_macs + cl->n_nets;
	}
	if (!keys)
		return 0;
	tzset(); /* schedules use local time: read the zone now, on the main thread */
	struct bw_clients *c = calloc(1, sizeof(*c));
	size_t cap = 16;
	while (cap < 2 * keys)
		cap *= 2;
	if (!c || !(c->slots = calloc(cap, sizeof(*c->slots)))) {
		free(c);
		return BW_ENOMEM;
	}
	c->mask = cap - 1;
	c->conf = conf;
	bw_hash_key_random(&c->hkey);
	for (size_t i = 0; i < conf->clients.n; i++) {
		const struct bw_client_conf *cl = &conf->clients.list[i];
		for (size_t k = 0; k < cl->n_ids; k++)
			insert(c, KEY_ID, (const uint8_t *)cl->ids[k], strlen(cl->ids[k]), (int)i, k);
		for (size_t k = 0; k < cl->n_macs; k++)
			insert(c, KEY_MAC, cl->macs[k], 6, (int)i, 0);
		c->any_mac |= cl->n_macs > 0;
		c->any_id |= cl->n_ids > 0;
		for (size_t k = 0; k < cl->n_nets; k++) {
			const struct bw_cidr *n = &cl->nets[k];
			uint8_t key[18];
			size_t len = net_key(n->family, n->addr, n->prefix, key);
			bool v4 = n->family == AF_INET;
			insert(c, v4 ? KEY_V4 : KEY_V6, key, len, (int)i, 0);
			if (v4)
				add_prefix(c->v4_prefixes, &c->n_v4, n->prefix);
			else
				add_prefix(c->v6_prefixes, &c->n_v6, n->prefix);
		}
	}
	*out = c;
	return 0;
}

void bw_clients_free(struct bw_clients *c)
{
	if (!c)
		return;
	free(c->slots);
	free(c);
}

bool bw_clients_have_ids(const struct bw_clients *c)
{
	return c && c->any_id;
}

int bw_clients_by_id(const struct bw_clients *c, const char *id, size_t len)
{
	if (!c || !len || len > BW_CLIENT_ID_MAX)
		return -1;
	return lookup(c, KEY_ID, (const uint8_t *)id, len);
}

int bw_clients_by_addr(const struct bw_clients *c, const uint8_t *mac, const struct sockaddr *sa,
		       enum bw_client_by *by)
{
	*by = BW_CLIENT_BY_NONE;
	if (!c)
		return -1;
	int e;
	if (mac && c->any_mac && (e = lookup(c, KEY_MAC, mac, 6)) >= 0) {
		*by = BW_CLIENT_BY_MAC;
		return e;
	}
	uint8_t probe[17];
	size_t plen = bw_sockaddr_prefix(sa, 32, 128, probe); /* the whole address */
	if (!plen)
		return -1;
	bool v4 = probe[0] == 4;
	const uint8_t *prefixes = v4 ? c->v4_prefixes : c->v6_prefixes;
	size_t n = v4 ? c->n_v4 : c->n_v6;
	for (size_t i = 0; i < n; i++) {
		uint8_t key[18];
		size_t len = net_key(v4 ? AF_INET : AF_INET6, probe + 1, prefixes[i], key);
		if ((e = lookup(c, v4 ? KEY_V4 : KEY_V6, key, len)) >= 0) {
			*by = BW_CLIENT_BY_NET;
			return e;
		}
	}
	return -1;
}

static bool covers(const struct bw_client_schedule *s, unsigned day, unsigned minute)
{
	unsigned yesterday = (day + 6) % 7;
	if (s->from < s->to)
		return (s->days >> day & 1) && minute >= s->from && minute < s->to;
	/* overnight: from today's `from` to tomorrow's `to` */
	return ((s->days >> day & 1) && minute >= s->from) ||
	       ((s->days >> yesterday & 1) && minute < s->to);
}

int bw_client_schedule_at(const struct bw_client_conf *cl, unsigned minute_of_week)
{
	unsigned day = (minute_of_week / 1440) % 7, minute = minute_of_week % 1440;
	for (size_t i = 0; i < cl->n_schedule; i++)
		if (covers(&cl->schedule[i], day, minute))
			return (int)i;
	return -1;
}

int bw_client_profile_at(const struct bw_client_conf *cl, unsigned minute_of_week)
{
	int i = bw_client_schedule_at(cl, minute_of_week);
	return i >= 0 ? cl->schedule[i].profile : cl->profile;
}

void bw_client_schedule_text(const struct bw_client_schedule *s, char *out, size_t cap)
{
	static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	char days[40] = "daily";
	if ((s->days & 0x7f) != 0x7f) {
		size_t at = 0;
		days[0] = 0;
		for (int d = 0; d < 7;) {
			if (!(s->days >> d & 1)) {
				d++;
				continue;
			}
			int e = d;
			while (e + 1 < 7 && (s->days >> (e + 1) & 1))
				e++;
			at += (size_t)snprintf(days + at, sizeof(days) - at, "%s%s%s%s", at ? "," : "",
					       names[d], e > d ? "-" : "", e > d ? names[e] : "");
			d = e + 1;
		}
	}
	snprintf(out, cap, "%s %02u:%02u-%02u:%02u", days, s->from / 60u, s->from % 60u,
		 s->to / 60u, s->to % 60u);
}

int bw_clients_by_name(const struct bw_conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->clients.n; i++)
		if (!strcmp(conf->clients.list[i].name, name))
			return (int)i;
	return -1;
}

unsigned bw_clients_minute_now(void)
{
	static __thread time_t last = -1;
	static __thread unsigned minute;
	time_t now = time(NULL);
	if (now / 60 != last / 60 || last < 0) {
		struct tm tm;
		localtime_r(&now, &tm);
		/* tm_wday: 0 = Sunday; ours: 0 = Monday */
		minute = (unsigned)(((tm.tm_wday + 6) % 7) * 1440 + tm.tm_hour * 60 + tm.tm_min);
		last = now;
	}
	return minute;
}

bool bw_access_sni_client_id(const struct bw_conf *conf, int listener, const char *sni,
			     const char **id, size_t *len)
{
	if (!sni || listener < 0 || (size_t)listener >= conf->server.n_listen)
		return false;
	const struct bw_listen *l = &conf->server.listen[listener];
	for (size_t i = 0; i < l->n_sni; i++)
		if (!strcasecmp(l->sni[i].name, sni))
			return false; /* a server name of the `sni` map, not an ID */
	const char *tls_name = l->tls_name;
	const char *dot = strchr(sni, '.');
	if (!tls_name || !dot || dot == sni || (size_t)(dot - sni) > BW_CLIENT_ID_MAX)
		return false;
	size_t tl = strlen(tls_name);
	if (tl && tls_name[tl - 1] == '.')
		tl--;
	size_t rest = strlen(dot + 1);
	if (rest && dot[rest] == '.')
		rest--;
	if (rest != tl || strncasecmp(dot + 1, tls_name, tl))
		return false;
	*id = sni;
	*len = (size_t)(dot - sni);
	return true;
}

unsigned bw_choose_profile(const struct bw_policy *p, const struct bw_conf *conf,
			   const struct bw_profile_ask *ask)
{
	if (ask->client >= 0 && (size_t)ask->client < conf->clients.n) {
		int k = bw_client_profile_at(&conf->clients.list[ask->client], ask->minute);
		if (k >= 0 && (size_t)k < conf->policy.n_profiles)
			return (unsigned)k;
	}
	if (ask->sni || ask->doh_path) {
		/* encrypted transports: a DoH path or a TLS server name may pick the profile */
		int k = bw_access_transport_profile(conf, ask->listener, ask->sni, ask->doh_path);
		if (k >= 0)
			return (unsigned)k;
	}
	return bw_policy_select_profile(p, conf, ask->listener, ask->peer);
}
