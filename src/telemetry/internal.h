/*
 * telemetry/internal.h - what the telemetry files share: the telemetry object, the query
 * log (querylog.c), the webhook sender (webhook.c) and the alert table (alerts.c).
 * Not for other modules.
 */
#ifndef BW_TELEMETRY_INTERNAL_H
#define BW_TELEMETRY_INTERNAL_H

#include <pthread.h>
#include <stdio.h>

#include "telemetry/telemetry.h"

struct tlm_top_slot {
	char *key;
	uint64_t count;
};
struct tlm_top {
	struct tlm_top_slot *slots; /* allocated on first use */
	struct bw_hash_key key;     /* drawn with the slots: clients choose the keys */
	unsigned n;
	uint64_t untracked; /* hits of keys that found the table full */
};

struct bw_tlm_querylog;
struct bw_tlm_webhook;

struct bw_telemetry {
	const struct bw_conf *conf;
	enum bw_privacy privacy;
	unsigned nworkers;
	struct bw_tlm_ring *rings;
	pthread_t thread;
	bool started;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool stopping;

	/* the query log: the telemetry thread writes records to the spool, the query log
	 * thread (log_main) moves them into SQLite and prunes; log is that thread's */
	struct bw_tlm_spool *spool;
	struct bw_tlm_querylog *log;
	pthread_t log_thread;
	bool log_started;
	_Atomic bool log_closing;      /* stop: import until caught up or log_deadline */
	_Atomic uint64_t log_deadline; /* bw_now_ms */

	/* the other sinks: touched by the telemetry thread only (pointers read under lock) */
	FILE *events;
	uint64_t events_pending; /* lines written since the last flush */
	struct bw_tlm_webhook *webhook;

	/* what readers on other threads see: under lock */
	pthread_mutex_t lock;
	struct bw_tlm_alerts *alerts;
	struct tlm_top top_names, top_clients, top_feeds; /* blocked queries */
	struct bw_telemetry_stats st; /* events, event_drops, alerts (others summed on read) */
};

/* The query log's file (telemetry.query-log, else STATE-DIR/querylog.sqlite): a heap
 * string, NULL on out of memory. */
char *bw_tlm_log_path(const struct bw_conf *conf);

/* text forms shared by the query log and the events */
const char *bw_tlm_type_text(uint16_t t, char *buf, size_t cap);
const char *bw_tlm_rcode_text(uint8_t rcode, char *buf, size_t cap); /* NULL: no answer */
const char *bw_tlm_transport_text(uint8_t via, char *buf, size_t cap);
const char *bw_tlm_verdict_text(const struct bw_tlm_record *rec);
const char *bw_tlm_action_text(const struct bw_tlm_record *rec); /* NULL: no rule */
void bw_tlm_name_text(const struct bw_tlm_record *rec, char *out, size_t cap);
void bw_tlm_iso_time(uint64_t ms, char *out, size_t cap);

/* spool.c: records on their way to the query log, in segment files (spool.c says how).
 * One writer thread (put, flush) and one reader thread (read, seek, consumed, wait);
 * stop_waits and stats from any thread. */
struct bw_tlm_spool;
struct bw_tlm_spool_pos {
	uint64_t seg, off; /* segment number (0: none) and byte offset in it */
};
struct bw_tlm_spool_stats {
	uint64_t bytes;		/* in segment files now */
	uint64_t spooled;	/* records written since open */
	uint64_t drops;		/* records not written: spool full, disk full, I/O error */
	uint64_t skipped_bytes; /* unreadable bytes skipped (a damaged or cut segment) */
	uint64_t read_new;	/* records read back that were written since open */
	uint64_t read_old;	/* records read back that an earlier run left */
};
struct bw_tlm_spool *bw_tlm_spool_open(const char *dir, uint64_t max_bytes, char *err,
				       size_t errlen);
void bw_tlm_spool_close(struct bw_tlm_spool *s);
/* Buffers one record; false when it is dropped (counted). */
bool bw_tlm_spool_put(struct bw_tlm_spool *s, const struct bw_tlm_record *rec);
/* Writes the buffered records and shows them to the reader. */
void bw_tlm_spool_flush(struct bw_tlm_spool *s);
/* The writer's last flush: closes its segment, so the reader can finish it and delete it. */
void bw_tlm_spool_end(struct bw_tlm_spool *s);
/* Reads up to max records; *pos is where reading stopped (commit it with their rows). */
size_t bw_tlm_spool_read(struct bw_tlm_spool *s, struct bw_tlm_record *out, size_t max,
			 struct bw_tlm_spool_pos *pos);
/* Goes on reading from pos (a committed position from an earlier run). */
void bw_tlm_spool_seek(struct bw_tlm_spool *s, struct bw_tlm_spool_pos pos);
/* The rows up to pos are committed: deletes the segments before pos.seg. */
void bw_tlm_spool_consumed(struct bw_tlm_spool *s, struct bw_tlm_spool_pos pos);
/* Waits up to ms for something to read; returns at once after bw_tlm_spool_stop_waits(). */
void bw_tlm_spool_wait(struct bw_tlm_spool *s, unsigned ms);
void bw_tlm_spool_stop_waits(struct bw_tlm_spool *s);
void bw_tlm_spool_stats(struct bw_tlm_spool *s, struct bw_tlm_spool_stats *out);

/* querylog.c: the SQLite query log. Used by the telemetry thread only, except _stats. */
struct bw_tlm_querylog *bw_tlm_querylog_open(const char *path, char *err, size_t errlen);
void bw_tlm_querylog_close(struct bw_tlm_querylog *l);
/* Opens a transaction (with the write lock); 0, BW_EAGAIN while another connection holds
 * the lock (nothing was written: try again later), or BW_EIO. */
int bw_tlm_querylog_begin(struct bw_tlm_querylog *l);
/* Adds a row to the open transaction (begun on the first row): client is the address as
 * text, client_name the named client's name (NULL: none), name the query name. */
void bw_tlm_querylog_add(struct bw_tlm_querylog *l, const struct bw_tlm_record *rec,
			 const char *client, const char *client_name, const char *name);
/* Commits the transaction; on failure its rows are counted as dropped. */
void bw_tlm_querylog_commit(struct bw_tlm_querylog *l);
/* Records pos as the spool position in the open transaction (begun if need be). */
void bw_tlm_querylog_set_position(struct bw_tlm_querylog *l, struct bw_tlm_spool_pos pos);
/* The last committed spool position ({0, 0}: none). */
struct bw_tlm_spool_pos bw_tlm_querylog_position(struct bw_tlm_querylog *l);
/* Deletes rows older than before_ms (a bounded number per call). */
void bw_tlm_querylog_prune(struct bw_tlm_querylog *l, uint64_t before_ms);
/* Thread-safe. */
void bw_tlm_querylog_stats(struct bw_tlm_querylog *l, uint64_t *rows, uint64_t *drops,
			   uint64_t *pruned);

/* webhook.c: a thread that POSTs event lines, with a bounded queue and retries. */
struct bw_tlm_webhook *bw_tlm_webhook_start(const char *url, unsigned timeout_ms, unsigned retries,
					    unsigned queue);
/* Takes ownership of line (malloc'd); drops it (counted) when the queue is full. */
void bw_tlm_webhook_push(struct bw_tlm_webhook *w, char *line);
/* Stops the thread (an attempt in progress may take up to its timeout). */
void bw_tlm_webhook_stop(struct bw_tlm_webhook *w, uint64_t *sent, uint64_t *drops);
void bw_tlm_webhook_free(struct bw_tlm_webhook *w);
void bw_tlm_webhook_stats(struct bw_tlm_webhook *w, uint64_t *sent, uint64_t *drops);

/* alerts.c: the alert table's row of the client named name, or (name NULL or "") of the
 * address client ([client, state, hits, first_seen, last_seen, domains, feeds,
 * addresses, id]), or NULL. */
json_t *bw_tlm_alerts_row(struct bw_tlm_alerts *a, const char *client, const char *name);

#endif
