/*
 * telemetry/telemetry.c - the telemetry thread: drains the workers' rings, writes the
 * query log (querylog.c), security events (file, syslog, webhook.c) and feeds the
 * infected-client detector (alerts.c) and the top-N tables. See telemetry.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "dns/dns.h"
#include "policy/policy.h"
#include "telemetry/internal.h"

#define PRUNE_EVERY_MS 60000
#define LOG_NICE 19	/* the query log thread's (see log_main) */
#define BATCH_MAX 20000 /* records per drain at most */
#define LOG_READ 256	/* records per read from the spool */
#define LOG_TX 20000	/* rows per transaction at most */

int bw_tlm_ring_init(struct bw_tlm_ring *r, unsigned size, enum bw_privacy privacy)
{
	uint64_t n = 64;
	while (n < size)
		n <<= 1;
	memset(r, 0, sizeof(*r));
	/* not touched until used: a ring that never wraps costs only what it held */
	r->buf = malloc(n * BW_TLM_REC_AVG);
	if (!r->buf)
		return BW_ENOMEM;
	r->mask = n - 1;
	r->bmask = n * BW_TLM_REC_AVG - 1;
	r->privacy = privacy;
	return 0;
}

void bw_tlm_ring_free(struct bw_tlm_ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

void bw_tlm_ring_commit(struct bw_tlm_ring *r)
{
	unsigned char enc[BW_TLM_REC_MAX];
	size_t n = bw_tlm_record_encode(&r->rec, enc);
	size_t at = (size_t)(r->wpos & r->bmask), first = BW_MIN(n, (size_t)r->bmask + 1 - at);
	memcpy(r->buf + at, enc, first); /* reserve saw room for BW_TLM_REC_MAX bytes */
	memcpy(r->buf, enc + first, n - first);
	r->wpos += n;
	atomic_store_explicit(&r->head, atomic_load_explicit(&r->head, memory_order_relaxed) + 1,
			      memory_order_release);
}

const struct bw_tlm_record *bw_tlm_ring_peek(struct bw_tlm_ring *r)
{
	if (r->out_len)
		return &r->out;
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (t == atomic_load_explicit(&r->head, memory_order_acquire))
		return NULL;
	uint64_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
	unsigned char enc[BW_TLM_REC_MAX];
	size_t at = (size_t)(pos & r->bmask), room = (size_t)r->bmask + 1 - at;
	uint16_t len;
	if (room >= 2) {
		memcpy(&len, r->buf + at, 2);
	} else {
		enc[0] = r->buf[at];
		enc[1] = r->buf[0];
		memcpy(&len, enc, 2);
	}
	size_t n = BW_MIN((size_t)len + 2, sizeof(enc)), first = BW_MIN(n, room);
	memcpy(enc, r->buf + at, first);
	memcpy(enc + first, r->buf, n - first);
	r->out_len = n;
	/* the producer encoded it: one that does not decode is a bug; it is skipped */
	if (bw_fails(bw_tlm_spool_decode(enc, n, &r->out) == (long)n)) {
		bw_tlm_ring_pop(r);
		return NULL;
	}
	return &r->out;
}

void bw_tlm_ring_pop(struct bw_tlm_ring *r)
{
	if (!r->out_len && !bw_tlm_ring_peek(r))
		return;
	atomic_store_explicit(&r->rpos,
			      atomic_load_explicit(&r->rpos, memory_order_relaxed) + r->out_len,
			      memory_order_release);
	r->out_len = 0;
	atomic_store_explicit(&r->tail, atomic_load_explicit(&r->tail, memory_order_relaxed) + 1,
			      memory_order_release);
}

void bw_tlm_client_text(const struct bw_tlm_record *rec, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	if (!rec->family || !inet_ntop(rec->family, rec->addr, a, sizeof(a))) {
		snprintf(out, cap, "unknown");
		return;
	}
	bool full = rec->prefix == (rec->family == AF_INET ? 32 : 128);
	if (full)
		snprintf(out, cap, "%s", a);
	else
		snprintf(out, cap, "%s/%u", a, rec->prefix);
}

const char *bw_tlm_type_text(uint16_t t, char *buf, size_t cap)
{
	static const struct {
		uint16_t t;
		const char *s;
	} names[] = {{1, "A"},	     {2, "NS"},	    {5, "CNAME"},	{6, "SOA"},    {12, "PTR"},
		     {13, "HINFO"},  {15, "MX"},    {16, "TXT"},	{28, "AAAA"},  {33, "SRV"},
		     {35, "NAPTR"},  {39, "DNAME"}, {43, "DS"},		{46, "RRSIG"}, {47, "NSEC"},
		     {48, "DNSKEY"}, {50, "NSEC3"}, {51, "NSEC3PARAM"}, {52, "TLSA"},  {64, "SVCB"},
		     {65, "HTTPS"},  {99, "SPF"},   {255, "ANY"},	{257, "CAA"}};
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
		if (names[i].t == t)
			return names[i].s;
	snprintf(buf, cap, "TYPE%u", t);
	return buf;
}

const char *bw_tlm_rcode_text(uint8_t rcode, char *buf, size_t cap)
{
	static const char *const names[] = {"NOERROR",	"FORMERR", "SERVFAIL",
					    "NXDOMAIN", "NOTIMP",  "REFUSED"};
	if (rcode == BW_TLM_NO_RCODE)
		return NULL;
	if (rcode < BW_ARRAY_LEN(names))
		return names[rcode];
	snprintf(buf, cap, "RCODE%u", rcode);
	return buf;
}

const char *bw_tlm_transport_text(uint8_t via, char *buf, size_t cap)
{
	switch (via) {
	case 0:
		return "udp";
	case 1:
		return "tcp";
	default: /* transports added later (DoT, DoH) name themselves here */
		snprintf(buf, cap, "transport-%u", via);
		return buf;
	}
}

const char *bw_tlm_verdict_text(const struct bw_tlm_record *rec)
{
	unsigned f = rec->v.flags;
	if (f & BW_TLM_BLOCKED)
		return "blocked";
	if (f & BW_TLM_PAUSED)
		return "paused";
	if (f & BW_TLM_LOG_ONLY)
		return "log-only";
	if (f & BW_TLM_ALLOWLISTED)
		return "allowlisted";
	if (f & BW_TLM_PASSTHRU)
		return "passthru";
	return "allowed";
}

const char *bw_tlm_action_text(const struct bw_tlm_record *rec)
{
	static const char *const names[] = {"allow",	"nxdomain",   "nodata",	  "drop",
					    "tcp-only", "local-data", "redirect", "passthru"};
	if (!(rec->v.flags & (BW_TLM_BLOCKED | BW_TLM_LOG_ONLY | BW_TLM_PASSTHRU)))
		return NULL;
	return rec->v.action < BW_ARRAY_LEN(names) ? names[rec->v.action] : NULL;
}

void bw_tlm_name_text(const struct bw_tlm_record *rec, char *out, size_t cap)
{
	if (!rec->qname_len || bw_name_to_text(rec->qname, rec->qname_len, out, cap) < 0) {
		snprintf(out, cap, ".");
		return;
	}
	size_t n = strlen(out);
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = 0; /* "example.org", as people write it */
}

void bw_tlm_iso_time(uint64_t ms, char *out, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* ---- the top-N tables: counts per key, capped ---- */

#define TOP_CAP 16384 /* slots; at most TOP_CAP/2 keys are counted */
#define TOP_PROBE 64  /* slots looked at per key: a key that finds none is untracked */

static void top_add(struct tlm_top *t, const char *key)
{
	if (!t->slots) {
		t->slots = calloc(TOP_CAP, sizeof(*t->slots));
		if (!t->slots)
			return;
		bw_hash_key_random(&t->key);
	}
	uint64_t h = bw_hash_keyed(key, strlen(key), &t->key);
	for (unsigned i = 0; i < TOP_PROBE; i++) {
		struct tlm_top_slot *s = &t->slots[(h + i) & (TOP_CAP - 1)];
		if (!s->key) {
			if (t->n >= TOP_CAP / 2) {
				t->untracked++;
				return;
			}
			s->key = strdup(key);
			if (!s->key)
				return;
			t->n++;
		} else if (strcmp(s->key, key)) {
			continue;
		}
		s->count++;
		return;
	}
	t->untracked++; /* a run of TOP_PROBE taken slots: bounded work per key */
}

static void top_free(struct tlm_top *t)
{
	for (unsigned i = 0; t->slots && i < TOP_CAP; i++)
		free(t->slots[i].key);
	free(t->slots);
	t->slots = NULL;
	t->n = 0;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct tlm_top_slot *x = *(const struct tlm_top_slot *const *)a;
	const struct tlm_top_slot *y = *(const struct tlm_top_slot *const *)b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The table's keys, most counted first: a heap array of *k slots (NULL: out of memory). */
static const struct tlm_top_slot **top_sorted(const struct tlm_top *t, size_t *k)
{
	const struct tlm_top_slot **v = malloc(t->n * sizeof(*v) + 1);
	*k = 0;
	if (!v)
		return NULL;
	for (unsigned i = 0; t->slots && i < TOP_CAP; i++)
		if (t->slots[i].key)
			v[(*k)++] = &t->slots[i];
	qsort(v, *k, sizeof(*v), slot_cmp);
	return v;
}

static int top_rows(const struct tlm_top *t, const char *kind, unsigned n, json_t *rows)
{
	if (!t->slots || !n)
		return 0;
	size_t k;
	const struct tlm_top_slot **v = top_sorted(t, &k);
	if (!v)
		return BW_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < k && i < n; i++) {
		json_t *row = json_pack("[ssI]", kind, v[i]->key, (json_int_t)v[i]->count);
		if (!row || json_array_append_new(rows, row)) {
			rc = BW_ENOMEM;
			break;
		}
	}
	free(v);
	return rc;
}

/* [{key: KEY, "count": N}] of the n most counted; NULL: out of memory. */
static json_t *top_list(const struct tlm_top *t, const char *key, unsigned n)
{
	json_t *a = json_array();
	size_t k = 0;
	const struct tlm_top_slot **v = t->slots ? top_sorted(t, &k) : NULL;
	if (!a || (t->slots && !v)) {
		json_decref(a);
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < k && i < n; i++) {
		json_t *o = json_pack("{s:s, s:I}", key, v[i]->key, "count",
				      (json_int_t)v[i]->count);
		if (!o || json_array_append_new(a, o)) {
			json_decref(a);
			a = NULL;
			break;
		}
	}
	free(v);
	return a;
}

/* ---- events ---- */

static bool watched_category(const struct bw_telemetry *t, const char *cat)
{
	const struct bw_conf *c = t->conf;
	if (!c->telemetry.n_alert_categories)
		return !strcmp(cat, "malware") || !strcmp(cat, "c2");
	for (size_t i = 0; i < c->telemetry.n_alert_categories; i++)
		if (!strcmp(c->telemetry.alert_categories[i], cat))
			return true;
	return false;
}

/* Hands one event line to the file, syslog and the webhook. Takes ownership of line. */
static void emit_event(struct bw_telemetry *t, char *line, bool alert)
{
	if (!line)
		return;
	if (t->events) {
		if (fputs(line, t->events) < 0 || fputc('\n', t->events) == EOF) {
			t->st.event_drops++;
			clearerr(t->events);
		} else {
			t->events_pending++;
		}
	}
	if (t->conf->telemetry.events_syslog)
		syslog(LOG_DAEMON | (alert ? LOG_WARNING : LOG_NOTICE), "%s", line);
	if (t->events || t->conf->telemetry.events_syslog)
		t->st.events++;
	if (t->webhook)
		bw_tlm_webhook_push(t->webhook, line); /* owns line now */
	else
		free(line);
}

static void flush_events(struct bw_telemetry *t)
{
	if (!t->events || !t->events_pending)
		return;
	if (fflush(t->events) != 0) {
		/* what stdio could not write is lost: count the whole batch */
		t->st.event_drops += t->events_pending;
		t->st.events -= BW_MIN(t->st.events, t->events_pending);
		clearerr(t->events);
	}
	t->events_pending = 0;
}

/* client: the address as text; client_name: the named client's, or NULL */
static void block_event(struct bw_telemetry *t, const struct bw_tlm_record *rec, const char *client,
			const char *client_name, const char *name)
{
	char tbuf[40], ty[16], tr[24], rc[16];
	bw_tlm_iso_time(rec->time_ms, tbuf, sizeof(tbuf));
	const char *rcode = bw_tlm_rcode_text(rec->rcode, rc, sizeof(rc));
	const char *action = bw_tlm_action_text(rec);
	/* s*: no client_name key when there is none (jansson >= 2.11) */
	json_t *o = json_pack("{s:s, s:s, s:s, s:s*, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}",
			      "event", bw_tlm_verdict_text(rec),
			      "time", tbuf, "client", client, "client_name", client_name,
			      "profile", rec->profile, "transport",
			      bw_tlm_transport_text(rec->transport, tr, sizeof(tr)), "name", name,
			      "type", bw_tlm_type_text(rec->qtype, ty, sizeof(ty)), "rcode", rcode,
			      "action", action, "feed", rec->v.feed_name, "category",
			      rec->v.category, "rule", rec->v.rule);
	if (!o)
		return;
	emit_event(t, json_dumps(o, JSON_COMPACT), false);
	json_decref(o);
}

/* The alert of the address client or, when client_name is not NULL, of that named client. */
static void alert_event(struct bw_telemetry *t, const char *client, const char *client_name)
{
	json_t *row = bw_tlm_alerts_row(t->alerts, client, client_name);
	if (!row)
		return;
	/* columns: client state hits first_seen last_seen domains feeds addresses */
	json_t *o = json_pack("{ss sO ss* sO sO sO sO sO sO}", "event", "alert", "client",
			      json_array_get(row, 0), "client_name", client_name, "hits",
			      json_array_get(row, 2), "first_seen", json_array_get(row, 3),
			      "last_seen", json_array_get(row, 4), "domains", json_array_get(row, 5),
			      "feeds", json_array_get(row, 6), "addresses", json_array_get(row, 7));
	json_decref(row);
	if (!o)
		return;
	const char *addrs = json_string_value(json_object_get(o, "addresses"));
	bw_warn("alert: client %s%s%s%s looks infected: %lld blocked queries to %s (feeds %s)",
		json_string_value(json_object_get(o, "client")), client_name ? " (" : "",
		client_name ? addrs : "", client_name ? ")" : "",
		(long long)json_integer_value(json_object_get(o, "hits")),
		json_string_value(json_object_get(o, "domains")),
		json_string_value(json_object_get(o, "feeds")));
	emit_event(t, json_dumps(o, JSON_COMPACT), true);
	json_decref(o);
}

void bw_telemetry_reopen_events(struct bw_telemetry *t)
{
	if (!t || !t->started || !t->conf->telemetry.events_file)
		return;
	FILE *f = fopen(t->conf->telemetry.events_file, "ae");
	if (!f) {
		bw_warn("telemetry: events file %s: %s (still writing the one open)",
			t->conf->telemetry.events_file, strerror(errno));
		return;
	}
	pthread_mutex_lock(&t->lock); /* the sinks are the telemetry thread's under this lock */
	flush_events(t);
	FILE *old = t->events;
	t->events = f;
	pthread_mutex_unlock(&t->lock);
	if (old && fclose(old) != 0)
		bw_warn("telemetry: events file: closing the old one: %s", strerror(errno));
}

void bw_telemetry_feed_event(struct bw_telemetry *t, const char *feed, const char *category,
			     const char *state, const char *reason)
{
	if (!t || !t->started)
		return;
	char tbuf[40];
	bw_tlm_iso_time(bw_tlm_now_ms(), tbuf, sizeof(tbuf));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s}", "event", "feed", "time", tbuf,
			      "feed", feed, "category", category, "state", state, "reason",
			      reason ? reason : "");
	if (!o)
		return;
	pthread_mutex_lock(&t->lock); /* the sinks are the telemetry thread's under this lock */
	emit_event(t, json_dumps(o, JSON_COMPACT), true);
	flush_events(t);
	pthread_mutex_unlock(&t->lock);
	json_decref(o);
}

void bw_telemetry_limit_event(struct bw_telemetry *t, const char *limit, int af,
			      const uint8_t *addr, unsigned prefix, unsigned rate)
{
	if (!t || !t->started)
		return;
	char tbuf[40], text[BW_ADDRSTRLEN], net[BW_ADDRSTRLEN + 8] = "";
	bw_tlm_iso_time(bw_tlm_now_ms(), tbuf, sizeof(tbuf));
	/* the prefix as the mode keeps addresses: never longer than /24 or /56 unless full */
	if (t->privacy != BW_PRIVACY_NONE) {
		unsigned cut = t->privacy == BW_PRIVACY_FULL ? prefix
			       : BW_MIN(prefix, af == AF_INET ? 24u : 56u);
		uint8_t key[17];
		bw_prefix_key(af, addr, cut, key); /* key[0] is the length, then the masked bytes */
		if (inet_ntop(af, key + 1, text, sizeof(text)))
			snprintf(net, sizeof(net), "%s/%u", text, cut);
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "event", "rate-limit", "time", tbuf, "limit",
			      limit, "rate", (json_int_t)rate);
	if (o && net[0])
		json_object_set_new(o, "prefix", json_string(net));
	if (!o)
		return;
	pthread_mutex_lock(&t->lock);
	emit_event(t, json_dumps(o, JSON_COMPACT), true);
	flush_events(t);
	pthread_mutex_unlock(&t->lock);
	json_decref(o);
}

/* ---- the thread ---- */

/* The record's client name where the mode keeps names (the worker cuts it already; a
 * record an earlier run left in the spool may come from another mode), else NULL. */
static const char *client_name(enum bw_privacy privacy, const struct bw_tlm_record *rec)
{
	return rec->client_name[0] && bw_tlm_keeps_names(privacy) ? rec->client_name : NULL;
}

static void handle(struct bw_telemetry *t, const struct bw_tlm_record *rec)
{
	char client[64], name[4 * 255 + 2];
	bool blocked = rec->v.flags & (BW_TLM_BLOCKED | BW_TLM_LOG_ONLY);
	if (!bw_tlm_wanted(&t->rings[0], rec->v.flags))
		return; /* the worker filters already; kept for rings shared by tests */
	if (t->spool)
		bw_tlm_spool_put(t->spool, rec); /* as it is: the text forms are made later */
	if (!blocked)
		return;
	const char *cname = client_name(t->privacy, rec);
	bw_tlm_client_text(rec, client, sizeof(client));
	bw_tlm_name_text(rec, name, sizeof(name));
	if (t->events || t->webhook || t->conf->telemetry.events_syslog)
		block_event(t, rec, client, cname, name);
	if (rec->v.flags & BW_TLM_BLOCKED) {
		top_add(&t->top_names, name);
		top_add(&t->top_clients, cname ? cname : client);
		if (rec->v.feed_name[0])
			top_add(&t->top_feeds, rec->v.feed_name);
		if (rec->v.category[0] && watched_category(t, rec->v.category) &&
		    bw_tlm_alerts_hit(t->alerts, client, cname, name, rec->v.feed_name,
				      rec->time_ms)) {
			t->st.alerts++;
			alert_event(t, client, cname);
		}
	}
}

/* Drains every ring once; returns the number of records handled. */
static size_t drain(struct bw_telemetry *t)
{
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->nworkers; i++) {
		struct bw_tlm_ring *r = &t->rings[i];
		const struct bw_tlm_record *rec;
		while (n < BATCH_MAX && (rec = bw_tlm_ring_peek(r))) {
			handle(t, rec);
			bw_tlm_ring_pop(r);
			n++;
		}
	}
	flush_events(t);
	pthread_mutex_unlock(&t->lock);
	if (t->spool)
		bw_tlm_spool_flush(t->spool); /* outside the lock: a write() */
	return n;
}

static void housekeeping(struct bw_telemetry *t)
{
	uint64_t now = bw_tlm_now_ms();
	pthread_mutex_lock(&t->lock);
	bw_tlm_alerts_expire(t->alerts, now);
	pthread_mutex_unlock(&t->lock);
}

/* Commits the rows read from the spool up to at, with at as the spool position when it
 * moved (an empty transaction just lets go of the write lock); deletes the segments that
 * are done. */
static void log_commit(struct bw_telemetry *t, struct bw_tlm_spool_pos *done,
		       struct bw_tlm_spool_pos at)
{
	if (at.seg != done->seg || at.off != done->off)
		bw_tlm_querylog_set_position(t->log, at);
	bw_tlm_querylog_commit(t->log); /* a failed commit drops its rows: go on */
	if (at.seg != done->seg)
		bw_tlm_spool_consumed(t->spool, at);
	*done = at;
}

/* The query log thread: rows from the spool into SQLite, with the spool position in the
 * same transaction; old rows pruned. It runs at nice 19: under full load the worker and
 * the telemetry thread come first and the records wait in the spool (bounded by
 * telemetry.spool.size); the import catches up when the load eases. */
static void *log_main(void *arg)
{
	struct bw_telemetry *t = arg;
	struct bw_tlm_record *recs = malloc(LOG_READ * sizeof(*recs));
	if (!recs) {
		bw_err("telemetry: query log thread: out of memory; records stay in the spool");
		return NULL;
	}
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), LOG_NICE) != 0)
		bw_debug("telemetry: setpriority: %s", strerror(errno));
	struct bw_tlm_spool_pos done = bw_tlm_querylog_position(t->log), at = done;
	bw_tlm_spool_seek(t->spool, done);
	uint64_t next_prune = 0, in_tx = 0;
	struct bw_tlm_record last = {0}; /* the client of the last row, and its text: */
	char client[64] = "unknown";	 /* most rows come from the client before */
	for (;;) {
		if (bw_tlm_querylog_begin(t->log) == BW_EAGAIN) {
			/* someone else writes to the file: the records wait, none is lost */
			if (atomic_load(&t->log_closing))
				break;
			struct timespec pause = {1, 0};
			nanosleep(&pause, NULL);
			continue;
		}
		/* read before the records: the telemetry thread's last flush comes before the
		 * stop, so a read after seeing it takes them all (a stop seen only after an empty
		 * read would leave the last records to the next start) */
		bool closing = atomic_load(&t->log_closing);
		size_t n = bw_tlm_spool_read(t->spool, recs, LOG_READ, &at);
		for (size_t i = 0; i < n; i++) {
			char name[4 * 255 + 2];
			if (recs[i].family != last.family || recs[i].prefix != last.prefix ||
			    memcmp(recs[i].addr, last.addr, sizeof(last.addr))) {
				last = recs[i];
				bw_tlm_client_text(&recs[i], client, sizeof(client));
			}
			bw_tlm_name_text(&recs[i], name, sizeof(name));
			bw_tlm_querylog_add(t->log, &recs[i], client,
					    client_name(t->privacy, &recs[i]), name);
		}
		in_tx += n;
		if (n < LOG_READ || in_tx >= LOG_TX) { /* caught up, or a full transaction */
			log_commit(t, &done, at);
			in_tx = 0;
		}
		uint64_t mono = bw_now_ms();
		if (closing && (!n || mono >= atomic_load(&t->log_deadline)))
			break; /* caught up, or out of time: the rest waits for the next start */
		if (mono >= next_prune && !closing && !in_tx) { /* between transactions */
			uint64_t now = bw_tlm_now_ms();
			bw_tlm_querylog_prune(t->log,
					      now - BW_MIN(now, t->conf->telemetry.retention_ms));
			next_prune = mono + PRUNE_EVERY_MS;
		}
		if (n < LOG_READ && !closing)
			bw_tlm_spool_wait(t->spool, 1000);
	}
	log_commit(t, &done, at); /* the rows added since the last commit */
	free(recs);
	return NULL;
}

static void *tlm_main(void *arg)
{
	struct bw_telemetry *t = arg;
	uint64_t next_prune = 0;
	/* Normal priority: what this thread does per record is bounded and small (an append
	 * to the spool; text and JSON only for blocked records), and run late it drops records
	 * (full rings). SQLite, the costly part, runs at nice 19 on the query log thread. */
	for (;;) {
		size_t n = drain(t);
		uint64_t mono = bw_now_ms();
		if (mono >= next_prune) {
			housekeeping(t);
			next_prune =
			    mono + BW_MIN(PRUNE_EVERY_MS, t->conf->telemetry.alert_clear_ms);
		}
		pthread_mutex_lock(&t->wake_lock);
		bool stop = t->stopping;
		if (!stop && n < 64) {
			/* idle or light load: sleep; the rings hold what comes meanwhile */
			struct timespec ts;
			bw_deadline_ms(&ts, n ? 5 : 20);
			pthread_cond_timedwait(&t->wake, &t->wake_lock, &ts);
		}
		stop = t->stopping;
		pthread_mutex_unlock(&t->wake_lock);
		if (stop)
			break;
	}
	while (drain(t)) /* what the workers left */
		;
	if (t->spool)
		bw_tlm_spool_end(t->spool);
	return NULL;
}

/* ---- life cycle ---- */

struct bw_telemetry *bw_telemetry_create(const struct bw_conf *conf, unsigned nworkers)
{
	struct bw_telemetry *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->conf = conf;
	t->nworkers = nworkers;
	t->privacy = conf->telemetry.privacy;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->wake_lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	t->alerts =
	    bw_tlm_alerts_create(conf->telemetry.alert_threshold, conf->telemetry.alert_window_ms,
				 conf->telemetry.alert_clear_ms);
	t->rings = calloc(nworkers ? nworkers : 1, sizeof(*t->rings));
	if (!t->alerts || !t->rings)
		goto fail;
	if (t->privacy != BW_PRIVACY_NONE) {
		for (unsigned i = 0; i < nworkers; i++)
			if (bw_tlm_ring_init(&t->rings[i], conf->telemetry.ring_size, t->privacy))
				goto fail;
	}
	return t;
fail:
	bw_telemetry_destroy(t);
	return NULL;
}

char *bw_tlm_log_path(const struct bw_conf *conf)
{
	if (conf->telemetry.query_log)
		return strdup(conf->telemetry.query_log);
	const char *dir =
	    conf->server.state_dir ? conf->server.state_dir : BW_CONF_DEFAULT_STATE_DIR;
	size_t n = strlen(dir) + sizeof("/querylog.sqlite");
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s", dir, "/querylog.sqlite");
	return p;
}

/* The query log at path and its spool at path-spool; both or neither. */
static void open_log(struct bw_telemetry *t, const char *path)
{
	char err[512], dir[4096];
	/* its directory (the state directory, by default) may not be there yet when the
	 * daemon keeps root's identity: nothing else made it */
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0750); /* may exist; a real problem shows in the open below */
	}
	t->log = bw_tlm_querylog_open(path, err, sizeof(err));
	if (t->log) {
		snprintf(dir, sizeof(dir), "%s-spool", path);
		t->spool = bw_tlm_spool_open(dir, t->conf->telemetry.spool_size, err, sizeof(err));
		if (!t->spool) {
			bw_tlm_querylog_close(t->log);
			t->log = NULL;
		}
	}
	if (!t->log) {
		bw_warn("telemetry: query log off: %s", err);
		return;
	}
	struct bw_tlm_spool_stats ss;
	bw_tlm_spool_stats(t->spool, &ss);
	bw_info("telemetry: query log %s (privacy %s)%s", path,
		t->privacy == BW_PRIVACY_BLOCKED_ONLY ? "blocked-only"
		: t->privacy == BW_PRIVACY_ANONYMIZED ? "anonymized"
						      : "full",
		ss.bytes ? "; importing what an earlier run left in its spool" : "");
}

int bw_telemetry_start(struct bw_telemetry *t)
{
	const struct bw_conf *conf = t->conf;
	if (t->privacy == BW_PRIVACY_NONE) {
		bw_info("telemetry: privacy none: counters only, no query log, no events");
		return 0;
	}
	if (t->privacy == BW_PRIVACY_FULL)
		bw_warn("telemetry: privacy full: every query is logged with the client's full "
			"address; make sure the people using this resolver know (docs/privacy.md)");
	if (!conf->telemetry.query_log_off) {
		char *path = bw_tlm_log_path(conf);
		if (path) {
			open_log(t, path);
			free(path);
		}
	}
	if (conf->telemetry.events_file) {
		t->events = fopen(conf->telemetry.events_file, "ae");
		if (!t->events)
			bw_warn("telemetry: events file %s: %s (events not written)",
				conf->telemetry.events_file, strerror(errno));
	}
	if (conf->telemetry.webhook_url) {
		t->webhook = bw_tlm_webhook_start(
		    conf->telemetry.webhook_url, conf->telemetry.webhook_timeout_ms,
		    conf->telemetry.webhook_retries, conf->telemetry.webhook_queue);
		if (!t->webhook)
			bw_warn("telemetry: webhook %s could not start",
				conf->telemetry.webhook_url);
	}
	int rc = pthread_create(&t->thread, NULL, tlm_main, t);
	if (rc != 0) {
		bw_err("telemetry: cannot start its thread: %s", strerror(rc));
		return BW_EIO;
	}
	pthread_setname_np(t->thread, "bw-telemetry");
	t->started = true;
	if (t->log) {
		rc = pthread_create(&t->log_thread, NULL, log_main, t);
		if (rc != 0) {
			bw_err("telemetry: cannot start the query log thread: %s", strerror(rc));
			return BW_EIO;
		}
		pthread_setname_np(t->log_thread, "bw-querylog");
		t->log_started = true;
	}
	return 0;
}

/* The query log's and its spool's counters into out (under t->lock, t->log open). */
static void collect_log_stats(struct bw_telemetry *t, struct bw_telemetry_stats *out)
{
	struct bw_tlm_spool_stats ss;
	bw_tlm_querylog_stats(t->log, &out->rows, &out->log_drops, &out->pruned);
	bw_tlm_spool_stats(t->spool, &ss);
	out->log_drops += ss.drops;
	out->log_waiting = ss.spooled - BW_MIN(ss.spooled, ss.read_new);
	out->spool_bytes = ss.bytes;
}

/* Lets the query log thread import what the spool holds for up to spool.stop-wait, then
 * stops it; what is left is imported at the next start. */
static void stop_log(struct bw_telemetry *t)
{
	if (t->log_started) {
		atomic_store(&t->log_deadline, bw_now_ms() + t->conf->telemetry.spool_stop_wait_ms);
		atomic_store(&t->log_closing, true);
		bw_tlm_spool_stop_waits(t->spool);
		pthread_join(t->log_thread, NULL);
		t->log_started = false;
	}
	if (!t->log)
		return;
	pthread_mutex_lock(&t->lock);
	struct bw_tlm_querylog *log = t->log;
	struct bw_tlm_spool *spool = t->spool;
	collect_log_stats(t, &t->st);
	t->log = NULL;
	t->spool = NULL;
	pthread_mutex_unlock(&t->lock);
	if (t->st.log_waiting)
		bw_info("telemetry: %llu records wait in the query log's spool (%llu bytes); they "
			"are imported at the next start",
			(unsigned long long)t->st.log_waiting,
			(unsigned long long)t->st.spool_bytes);
	bw_tlm_querylog_close(log);
	bw_tlm_spool_close(spool);
}

void bw_telemetry_stop(struct bw_telemetry *t)
{
	if (!t || !t->started)
		return;
	pthread_mutex_lock(&t->wake_lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->wake_lock);
	pthread_join(t->thread, NULL);
	t->started = false;
	if (t->webhook) {
		struct bw_tlm_webhook *wh = t->webhook;
		uint64_t sent, drops;
		bw_tlm_webhook_stop(wh, &sent, &drops);
		pthread_mutex_lock(&t->lock);
		t->st.webhook_sent = sent;
		t->st.webhook_drops = drops;
		t->webhook = NULL;
		pthread_mutex_unlock(&t->lock);
		bw_tlm_webhook_free(wh);
	}
	stop_log(t);
	if (t->events) {
		if (fclose(t->events) != 0)
			t->st.event_drops += t->events_pending;
		t->events = NULL;
	}
}

void bw_telemetry_destroy(struct bw_telemetry *t)
{
	if (!t)
		return;
	bw_telemetry_stop(t);
	for (unsigned i = 0; t->rings && i < t->nworkers; i++)
		bw_tlm_ring_free(&t->rings[i]);
	free(t->rings);
	bw_tlm_alerts_free(t->alerts);
	top_free(&t->top_names);
	top_free(&t->top_clients);
	top_free(&t->top_feeds);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->wake_lock);
	pthread_cond_destroy(&t->wake);
	free(t);
}

struct bw_tlm_ring *bw_telemetry_ring(struct bw_telemetry *t, unsigned i)
{
	if (!t || t->privacy == BW_PRIVACY_NONE || i >= t->nworkers)
		return NULL;
	return &t->rings[i];
}

enum bw_privacy bw_telemetry_privacy(const struct bw_telemetry *t)
{
	return t->privacy;
}

void bw_telemetry_stats(struct bw_telemetry *t, struct bw_telemetry_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&t->lock);
	*out = t->st;
	if (t->log)
		collect_log_stats(t, out);
	if (t->webhook)
		bw_tlm_webhook_stats(t->webhook, &out->webhook_sent, &out->webhook_drops);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; t->privacy != BW_PRIVACY_NONE && i < t->nworkers; i++) {
		out->records += atomic_load_explicit(&t->rings[i].offered, memory_order_relaxed);
		out->ring_drops += atomic_load_explicit(&t->rings[i].dropped, memory_order_relaxed);
	}
}

void bw_telemetry_log_stats(struct bw_telemetry *t)
{
	if (!t)
		return;
	struct bw_telemetry_stats s;
	bw_telemetry_stats(t, &s);
	bw_info("telemetry: records %llu, dropped %llu (rings full), query log rows %llu "
		"(dropped %llu, pruned %llu, waiting in the spool %llu), events %llu (dropped "
		"%llu), webhook sent %llu (dropped %llu), alerts %llu",
		(unsigned long long)s.records, (unsigned long long)s.ring_drops,
		(unsigned long long)s.rows, (unsigned long long)s.log_drops,
		(unsigned long long)s.pruned, (unsigned long long)s.log_waiting,
		(unsigned long long)s.events, (unsigned long long)s.event_drops,
		(unsigned long long)s.webhook_sent, (unsigned long long)s.webhook_drops,
		(unsigned long long)s.alerts);
}

static json_t *table(const char *const *cols)
{
	json_t *c = json_array();
	for (size_t i = 0; c && cols[i]; i++)
		json_array_append_new(c, json_string(cols[i]));
	json_t *o = c ? json_pack("{so so}", "columns", c, "rows", json_array()) : NULL;
	return o;
}

json_t *bw_telemetry_alerts_json(struct bw_telemetry *t)
{
	pthread_mutex_lock(&t->lock);
	json_t *o = bw_tlm_alerts_json(t->alerts);
	pthread_mutex_unlock(&t->lock);
	return o;
}

json_t *bw_telemetry_top_json(struct bw_telemetry *t, unsigned n)
{
	static const char *const cols[] = {"kind", "value", "blocked", NULL};
	json_t *o = table(cols);
	if (!o)
		return NULL;
	json_t *rows = json_object_get(o, "rows");
	pthread_mutex_lock(&t->lock);
	int rc = top_rows(&t->top_names, "name", n, rows);
	if (!rc)
		rc = top_rows(&t->top_clients, "client", n, rows);
	pthread_mutex_unlock(&t->lock);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *bw_telemetry_top_objects(struct bw_telemetry *t, unsigned n)
{
	pthread_mutex_lock(&t->lock);
	json_t *o = json_pack("{s:o*, s:o*, s:o*}", "names", top_list(&t->top_names, "name", n),
			      "clients", top_list(&t->top_clients, "client", n), "feeds",
			      top_list(&t->top_feeds, "feed", n));
	pthread_mutex_unlock(&t->lock);
	if (o && json_object_size(o) != 3) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

json_t *bw_telemetry_alerts_objects(struct bw_telemetry *t)
{
	pthread_mutex_lock(&t->lock);
	json_t *a = bw_tlm_alerts_objects(t->alerts);
	pthread_mutex_unlock(&t->lock);
	return a ? json_pack("{s:o}", "alerts", a) : NULL;
}

int bw_telemetry_alerts_ack(struct bw_telemetry *t, uint64_t id)
{
	pthread_mutex_lock(&t->lock);
	int rc = bw_tlm_alerts_ack(t->alerts, id);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

unsigned bw_telemetry_alerts_clear(struct bw_telemetry *t, uint64_t id)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = bw_tlm_alerts_clear(t->alerts, id);
	pthread_mutex_unlock(&t->lock);
	return n;
}
