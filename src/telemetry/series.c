/*
 * telemetry/series.c - per-minute counts for the last 24 hours (telemetry.h, "the
 * series"): a fixed ring of BW_SERIES_MINUTES slots per column, filled from cumulative
 * counters sampled once a minute (the difference to the previous sample goes to the
 * minute that just ended). Fixed columns are allocated at creation, a profile's column
 * when it first counts something, at most max_profiles of them.
 *
 * One writer (the main thread's tick) and any readers, under one mutex held for a copy.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry.h"

enum { COL_QUERIES, COL_BLOCKED, COL_CACHE_HITS, COL_TRANSPORT, N_FIXED = COL_TRANSPORT + BW_SERIES_TRANSPORTS };

struct bw_series {
	pthread_mutex_t lock;
	uint64_t last_minute; /* the minute of the last sample (0: none yet) */
	struct bw_series_totals prev;
	uint32_t *fixed[N_FIXED];
	uint32_t *profile[BW_SERIES_MAX_PROFILES]; /* NULL until the profile counts */
	unsigned max_profiles;
};

static const char *const transport_names[BW_SERIES_TRANSPORTS] = {"udp", "tcp", "dot", "doh"};

struct bw_series *bw_series_create(unsigned max_profiles)
{
	struct bw_series *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->max_profiles = max_profiles < BW_SERIES_MAX_PROFILES ? max_profiles
								 : BW_SERIES_MAX_PROFILES;
	for (int i = 0; i < N_FIXED; i++) {
		if (!(s->fixed[i] = calloc(BW_SERIES_MINUTES, sizeof(uint32_t)))) {
			bw_series_free(s);
			return NULL;
		}
	}
	return s;
}

void bw_series_free(struct bw_series *s)
{
	if (!s)
		return;
	for (int i = 0; i < N_FIXED; i++)
		free(s->fixed[i]);
	for (unsigned i = 0; i < BW_SERIES_MAX_PROFILES; i++)
		free(s->profile[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* now - before, as a minute's count (counters only grow; a reset counts from zero) */
static uint32_t delta(uint64_t now, uint64_t before)
{
	uint64_t d = now >= before ? now - before : now;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* Zeroes the slots of the minutes after `from` up to and including `to` (at most a ring). */
static void clear_minutes(struct bw_series *s, uint64_t from, uint64_t to)
{
	uint64_t n = to - from > BW_SERIES_MINUTES ? BW_SERIES_MINUTES : to - from;
	for (uint64_t m = to - n + 1; m <= to; m++) {
		size_t k = m % BW_SERIES_MINUTES;
		for (int i = 0; i < N_FIXED; i++)
			s->fixed[i][k] = 0;
		for (unsigned p = 0; p < s->max_profiles; p++)
			if (s->profile[p])
				s->profile[p][k] = 0;
	}
}

static void put(struct bw_series *s, size_t k, const struct bw_series_totals *t)
{
	const struct bw_series_totals *o = &s->prev;
	s->fixed[COL_QUERIES][k] = delta(t->queries, o->queries);
	s->fixed[COL_BLOCKED][k] = delta(t->blocked, o->blocked);
	s->fixed[COL_CACHE_HITS][k] = delta(t->cache_hits, o->cache_hits);
	for (int i = 0; i < BW_SERIES_TRANSPORTS; i++)
		s->fixed[COL_TRANSPORT + i][k] = delta(t->transport[i], o->transport[i]);
	for (unsigned p = 0; p < s->max_profiles; p++) {
		uint32_t d = delta(t->profile[p], o->profile[p]);
		if (!s->profile[p] && d)
			s->profile[p] = calloc(BW_SERIES_MINUTES, sizeof(uint32_t));
		if (s->profile[p])
			s->profile[p][k] = d; /* out of memory: that profile is not charted */
	}
}

bool bw_series_due(const struct bw_series *s, uint64_t now_s)
{
	return now_s / 60 != s->last_minute;
}

void bw_series_sample(struct bw_series *s, uint64_t now_s, const struct bw_series_totals *t)
{
	uint64_t minute = now_s / 60;
	pthread_mutex_lock(&s->lock);
	if (s->last_minute && minute > s->last_minute) {
		/* what was counted since the last sample belongs to the minute that ended */
		clear_minutes(s, s->last_minute, minute - 1);
		put(s, (size_t)((minute - 1) % BW_SERIES_MINUTES), t);
	}
	if (!s->last_minute) {
		/* the first sample: the counters began at zero when the daemon started, and
		 * what they counted since (the first queries may come before this) belongs to
		 * this minute */
		memset(&s->prev, 0, sizeof(s->prev));
		s->last_minute = minute;
	} else if (minute > s->last_minute) {
		s->prev = *t;
		s->last_minute = minute;
	}
	pthread_mutex_unlock(&s->lock);
}

/* values of column col for the n minutes ending before `end` (the current minute) */
static json_t *column(const struct bw_series *s, const uint32_t *col, uint64_t end, unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < n; i++) {
		uint64_t m = end - n + i;
		/* minutes not yet sampled (before the first sample, or the current one) are 0 */
		bool have = col && s->last_minute && m < s->last_minute &&
			    s->last_minute - m <= BW_SERIES_MINUTES;
		if (json_array_append_new(a, json_integer(have ? col[m % BW_SERIES_MINUTES] : 0))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int set_col(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new(o, key, v) : -1;
}

json_t *bw_series_json(struct bw_series *s, uint64_t now_s, unsigned minutes,
		       const struct bw_series_profile *profiles, size_t n_profiles)
{
	if (minutes < 1 || minutes > BW_SERIES_MINUTES)
		return NULL;
	uint64_t end = now_s / 60; /* the current minute, not complete: left out */
	json_t *o = json_pack("{s:i, s:I, s:{}, s:{}}", "resolution", 60, "start",
			      (json_int_t)((end - minutes) * 60), "by_transport", "by_profile");
	if (!o)
		return NULL;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	rc |= set_col(o, "queries", column(s, s->fixed[COL_QUERIES], end, minutes));
	rc |= set_col(o, "blocked", column(s, s->fixed[COL_BLOCKED], end, minutes));
	rc |= set_col(o, "cache_hits", column(s, s->fixed[COL_CACHE_HITS], end, minutes));
	json_t *bt = json_object_get(o, "by_transport"), *bp = json_object_get(o, "by_profile");
	for (int i = 0; i < BW_SERIES_TRANSPORTS; i++)
		rc |= set_col(bt, transport_names[i],
			      column(s, s->fixed[COL_TRANSPORT + i], end, minutes));
	for (size_t i = 0; i < n_profiles; i++) {
		unsigned slot = profiles[i].slot;
		const uint32_t *col = slot < s->max_profiles ? s->profile[slot] : NULL;
		rc |= set_col(bp, profiles[i].name, column(s, col, end, minutes));
	}
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}
