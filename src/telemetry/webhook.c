/*
 * telemetry/webhook.c - security events POSTed as JSON to a webhook (libcurl), from a
 * thread of its own with a bounded queue: when the endpoint is slow or down, the queue
 * fills and further events are dropped and counted; the telemetry thread never waits.
 * Each event is tried 1 + retries times (timeout each, backoff 0.5 s doubling up to 8 s);
 * a 2xx status is success.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "telemetry/internal.h"

struct bw_tlm_webhook {
	char *url;
	unsigned timeout_ms, retries, cap;
	char **q; /* circular queue of cap lines */
	unsigned head, n;
	bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	_Atomic uint64_t sent, drops;
	bool failing;
};

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* Waits ms or until stop; returns true when stopping. Called with lock held. */
static bool nap(struct bw_tlm_webhook *w, unsigned ms)
{
	struct timespec ts;
	bw_deadline_ms(&ts, ms);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) == 0)
		;
	return w->stop;
}

static bool post(struct bw_tlm_webhook *w, CURL *c, const char *line)
{
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, line);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	bool ok = rc == CURLE_OK && status >= 200 && status < 300;
	if (!ok && !w->failing)
		bw_warn("telemetry: webhook %s: %s", w->url,
			rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 2xx");
	if (ok && w->failing)
		bw_info("telemetry: webhook %s accepts events again", w->url);
	w->failing = !ok;
	return ok;
}

static void *wh_main(void *arg)
{
	struct bw_tlm_webhook *w = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, w->url);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)w->timeout_ms);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c, CURLOPT_USERAGENT, "bulwark");
	}
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && !w->n)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		char *line = w->q[w->head];
		w->q[w->head] = NULL;
		w->head = (w->head + 1) % w->cap;
		w->n--;
		bool ok = false;
		unsigned backoff = 500;
		for (unsigned attempt = 0; c && attempt <= w->retries; attempt++) {
			if (attempt && nap(w, backoff))
				break;
			backoff = BW_MIN(backoff * 2, 8000u);
			pthread_mutex_unlock(&w->lock);
			ok = post(w, c, line);
			pthread_mutex_lock(&w->lock);
			if (ok || w->stop)
				break;
		}
		atomic_fetch_add(ok ? &w->sent : &w->drops, 1);
		free(line);
	}
	pthread_mutex_unlock(&w->lock);
	curl_slist_free_all(hdr);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

struct bw_tlm_webhook *bw_tlm_webhook_start(const char *url, unsigned timeout_ms, unsigned retries,
					    unsigned queue)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct bw_tlm_webhook *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->url = strdup(url);
	w->timeout_ms = timeout_ms;
	w->retries = retries;
	w->cap = queue ? queue : 1;
	w->q = calloc(w->cap, sizeof(*w->q));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (!w->url || !w->q)
		goto fail;
	pthread_once(&once, curl_init_once);
	if (pthread_create(&w->thread, NULL, wh_main, w) != 0)
		goto fail;
	pthread_setname_np(w->thread, "bw-webhook");
	w->started = true;
	return w;
fail:
	bw_tlm_webhook_free(w);
	return NULL;
}

void bw_tlm_webhook_push(struct bw_tlm_webhook *w, char *line)
{
	pthread_mutex_lock(&w->lock);
	if (w->n == w->cap || w->stop) {
		pthread_mutex_unlock(&w->lock);
		atomic_fetch_add(&w->drops, 1);
		free(line);
		return;
	}
	w->q[(w->head + w->n) % w->cap] = line;
	w->n++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void bw_tlm_webhook_stop(struct bw_tlm_webhook *w, uint64_t *sent, uint64_t *drops)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	/* what is still queued is not sent */
	while (w->n) {
		free(w->q[w->head]);
		w->q[w->head] = NULL;
		w->head = (w->head + 1) % w->cap;
		w->n--;
		atomic_fetch_add(&w->drops, 1);
	}
	bw_tlm_webhook_stats(w, sent, drops);
}

void bw_tlm_webhook_free(struct bw_tlm_webhook *w)
{
	if (!w)
		return;
	uint64_t s, d;
	bw_tlm_webhook_stop(w, &s, &d);
	free(w->q);
	free(w->url);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

void bw_tlm_webhook_stats(struct bw_tlm_webhook *w, uint64_t *sent, uint64_t *drops)
{
	*sent = atomic_load(&w->sent);
	*drops = atomic_load(&w->drops);
}
