/*
 * telemetry/querylog.c - the query log: one SQLite file in WAL mode, rows inserted in one
 * transaction per drain of the rings, old rows pruned in bounded steps. The schema is
 * documented in docs/querylog.md (keep both in step).
 *
 * Rows are appended in time order (to within the few milliseconds of one drain), so the
 * rowid order is the time order: pruning walks the oldest rowids and needs no index on
 * time, which would cost every insert.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "telemetry/internal.h"

#define PRUNE_STEP 5000 /* rows deleted per statement (also in the SQL below) */
#define PRUNE_ROUNDS 20 /* statements per call at most */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS queries ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL," /* ms since the Unix epoch, UTC */
    " client TEXT NOT NULL,"  /* per the privacy mode */
    " profile TEXT NOT NULL,"
    " transport TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " rcode TEXT,"	      /* NULL: no answer sent */
    " verdict TEXT NOT NULL," /* allowed blocked log-only allowlisted passthru */
    " action TEXT,"
    " feed TEXT,"
    " category TEXT,"
    " rule TEXT,"
    " latency_us INTEGER NOT NULL,"
    " cache_hit INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS queries_client ON queries(client, time);"
    "CREATE INDEX IF NOT EXISTS queries_name ON queries(name, time);"
    "CREATE INDEX IF NOT EXISTS queries_blocked ON queries(time) WHERE verdict = 'blocked';";

static const char insert_sql[] =
    "INSERT INTO queries (time, client, profile, transport, name, type, rcode, verdict, "
    "action, feed, category, rule, latency_us, cache_hit) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

struct bw_tlm_querylog {
	sqlite3 *db;
	sqlite3_stmt *insert, *begin, *commit, *rollback, *prune;
	bool in_tx;
	unsigned pending; /* rows in the open transaction */
	bool failing;	  /* the last commit failed: say so once until one succeeds */
	_Atomic uint64_t rows, drops, pruned;
};

static void add_atomic(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct bw_tlm_querylog *bw_tlm_querylog_open(const char *path, char *err, size_t errlen)
{
	struct bw_tlm_querylog *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int rc = sqlite3_open_v2(
	    path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(l->db, 50); /* readers never block WAL writers; a second writer may */
	rc = sqlite3_exec(l->db,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-32768;",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(l->db, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db, insert_sql, -1, &l->insert, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db, "BEGIN", -1, &l->begin, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db, "COMMIT", -1, &l->commit, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db, "ROLLBACK", -1, &l->rollback, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db,
					"DELETE FROM queries WHERE id IN (SELECT id FROM queries "
					"ORDER BY id LIMIT 5000) AND time < ?1",
					-1, &l->prune, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	return l;
fail:
	snprintf(err, errlen, "%s: %s", path, l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
	bw_tlm_querylog_close(l);
	return NULL;
}

void bw_tlm_querylog_close(struct bw_tlm_querylog *l)
{
	if (!l)
		return;
	if (l->in_tx)
		bw_tlm_querylog_commit(l);
	sqlite3_finalize(l->insert);
	sqlite3_finalize(l->begin);
	sqlite3_finalize(l->commit);
	sqlite3_finalize(l->rollback);
	sqlite3_finalize(l->prune);
	sqlite3_close(l->db);
	free(l);
}

static int step(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc;
}

static void text(sqlite3_stmt *s, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC); /* bound until the step below */
	else
		sqlite3_bind_null(s, i);
}

void bw_tlm_querylog_add(struct bw_tlm_querylog *l, const struct bw_tlm_record *rec,
			 const char *client, const char *name)
{
	char ty[16], rc_buf[16], tr[24];
	if (!l->in_tx) {
		if (step(l->begin) != SQLITE_DONE) {
			add_atomic(&l->drops, 1);
			return;
		}
		l->in_tx = true;
	}
	sqlite3_stmt *s = l->insert;
	bool matched = rec->v.flags & BW_TLM_MATCHED;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)rec->time_ms);
	text(s, 2, client);
	sqlite3_bind_text(s, 3, rec->profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, bw_tlm_transport_text(rec->transport, tr, sizeof(tr)), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(s, 5, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, bw_tlm_type_text(rec->qtype, ty, sizeof(ty)), -1, SQLITE_STATIC);
	text(s, 7, bw_tlm_rcode_text(rec->rcode, rc_buf, sizeof(rc_buf)));
	sqlite3_bind_text(s, 8, bw_tlm_verdict_text(rec), -1, SQLITE_STATIC);
	text(s, 9, bw_tlm_action_text(rec));
	text(s, 10, matched ? rec->v.feed_name : NULL);
	text(s, 11, matched ? rec->v.category : NULL);
	text(s, 12, matched ? rec->v.rule : NULL);
	sqlite3_bind_int64(s, 13, rec->latency_us);
	sqlite3_bind_int(s, 14, (rec->v.flags & BW_TLM_CACHE_HIT) ? 1 : 0);
	if (step(s) == SQLITE_DONE) {
		l->pending++;
	} else {
		add_atomic(&l->drops, 1);
		if (sqlite3_get_autocommit(l->db)) {
			/* SQLite rolled the transaction back (disk full): its rows are lost */
			add_atomic(&l->drops, l->pending);
			l->pending = 0;
			l->in_tx = false;
			if (!l->failing)
				bw_warn("telemetry: query log: %s (rows are dropped until it "
					"recovers)",
					sqlite3_errmsg(l->db));
			l->failing = true;
		}
	}
	sqlite3_clear_bindings(s);
}

void bw_tlm_querylog_commit(struct bw_tlm_querylog *l)
{
	if (!l->in_tx)
		return;
	l->in_tx = false;
	int rc = step(l->commit);
	if (rc == SQLITE_DONE) {
		add_atomic(&l->rows, l->pending);
		if (l->failing)
			bw_info("telemetry: query log writes again");
		l->failing = false;
	} else {
		/* disk full, I/O error: these rows are lost, the resolver goes on */
		if (!l->failing)
			bw_warn("telemetry: query log: %s (rows are dropped until it recovers)",
				sqlite3_errmsg(l->db));
		l->failing = true;
		add_atomic(&l->drops, l->pending);
		if (!sqlite3_get_autocommit(l->db))
			step(l->rollback);
	}
	l->pending = 0;
}

void bw_tlm_querylog_prune(struct bw_tlm_querylog *l, uint64_t before_ms)
{
	if (l->in_tx)
		bw_tlm_querylog_commit(l);
	for (int i = 0; i < PRUNE_ROUNDS; i++) {
		sqlite3_bind_int64(l->prune, 1, (sqlite3_int64)before_ms);
		int rc = step(l->prune);
		if (rc != SQLITE_DONE)
			return;
		int n = sqlite3_changes(l->db);
		add_atomic(&l->pruned, (uint64_t)n);
		if (n < PRUNE_STEP)
			return;
	}
}

void bw_tlm_querylog_stats(struct bw_tlm_querylog *l, uint64_t *rows, uint64_t *drops,
			   uint64_t *pruned)
{
	*rows = atomic_load_explicit(&l->rows, memory_order_relaxed);
	*drops = atomic_load_explicit(&l->drops, memory_order_relaxed);
	*pruned = atomic_load_explicit(&l->pruned, memory_order_relaxed);
}
