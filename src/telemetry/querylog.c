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
#include <string.h>

#include "telemetry/internal.h"

#define PRUNE_STEP 5000		  /* rows deleted per statement (also in the SQL below) */
#define PRUNE_ROUNDS 20		  /* statements per call at most */
#define NAME_MAP_SLOTS (1u << 16) /* the name -> id map (1.5 MiB); emptied when half full */
#define NAME_MAP_PROBE 64         /* slots looked at per name, at most */
#define WAL_PAGES 256		  /* checkpoint when the WAL holds this many pages (1 MiB) */
#define RETRY_MS 500		  /* while writes fail: how often to try again */

/*
 * Version 2: names in a table of their own, each row refers to its name by id (an index on
 * an integer instead of on text: an insert costs about 3 us instead of 8), and a view
 * `queries` with the columns of version 1 (docs/querylog.md), which every query reads.
 * Version 3: the named client's name (client_name, NULL: none or not kept), last in `log`
 * so that a version 2 file takes it with one ALTER TABLE; no index (it would cost every
 * insert; docs/querylog.md).
 */
#define SCHEMA_VERSION 3
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS names ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS log ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL," /* ms since the Unix epoch, UTC */
    " client TEXT NOT NULL,"  /* per the privacy mode */
    " profile TEXT NOT NULL,"
    " transport TEXT NOT NULL,"
    " name_id INTEGER NOT NULL," /* names.id */
    " type TEXT NOT NULL,"
    " rcode TEXT,"	      /* NULL: no answer sent */
    " verdict TEXT NOT NULL," /* allowed blocked log-only paused allowlisted passthru */
    " action TEXT,"
    " feed TEXT,"
    " category TEXT,"
    " rule TEXT,"
    " latency_us INTEGER NOT NULL,"
    " cache_hit INTEGER NOT NULL,"
    " client_name TEXT);" /* per the privacy mode: blocked-only and full only */
    "CREATE INDEX IF NOT EXISTS log_client ON log(client, time);"
    "CREATE INDEX IF NOT EXISTS log_name ON log(name_id, time);"
    "CREATE INDEX IF NOT EXISTS log_blocked ON log(time) WHERE verdict = 'blocked';"
    "CREATE VIEW IF NOT EXISTS queries AS SELECT log.id AS id, log.time AS time,"
    " log.client AS client, log.client_name AS client_name, log.profile AS profile,"
    " log.transport AS transport,"
    " names.name AS name, log.type AS type, log.rcode AS rcode, log.verdict AS verdict,"
    " log.action AS action, log.feed AS feed, log.category AS category, log.rule AS rule,"
    " log.latency_us AS latency_us, log.cache_hit AS cache_hit"
    " FROM log JOIN names ON names.id = log.name_id;";

/* A version 1 file (one table `queries` with the names in it): its rows move over */
static const char migrate_v1[] =
    "ALTER TABLE queries RENAME TO queries_v1;"
    "DROP INDEX IF EXISTS queries_client;"
    "DROP INDEX IF EXISTS queries_name;"
    "DROP INDEX IF EXISTS queries_blocked;"
    "%s" /* the schema */
    "INSERT OR IGNORE INTO names (name) SELECT DISTINCT name FROM queries_v1;"
    "INSERT INTO log (id, time, client, profile, transport, name_id, type, rcode, verdict,"
    " action, feed, category, rule, latency_us, cache_hit)"
    " SELECT q.id, q.time, q.client, q.profile, q.transport, n.id, q.type, q.rcode, q.verdict,"
    " q.action, q.feed, q.category, q.rule, q.latency_us, q.cache_hit"
    " FROM queries_v1 q JOIN names n ON n.name = q.name ORDER BY q.id;"
    "DROP TABLE queries_v1;";

/* A version 2 file: the column added (NULL in the rows there are), the view made anew */
static const char migrate_v2[] = "ALTER TABLE log ADD COLUMN client_name TEXT;"
				 "DROP VIEW IF EXISTS queries;"
				 "%s"; /* the schema */

/* Where the import from the spool (spool.c) stands, written in the same transaction as
 * the rows: after a crash the import goes on from there, no row twice, none missed.
 * Outside the schema version: a file without it is read from the spool's start. */
static const char position_sql[] = "CREATE TABLE IF NOT EXISTS spool_position ("
				   " id INTEGER PRIMARY KEY CHECK (id = 1),"
				   " segment INTEGER NOT NULL,"
				   " byte INTEGER NOT NULL);";

static const char insert_sql[] =
    "INSERT INTO log (time, client, profile, transport, name_id, type, rcode, verdict, "
    "action, feed, category, rule, latency_us, cache_hit, client_name) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

/* name -> names.id for the names seen lately (open addressing, the names copied) */
struct name_slot {
	uint64_t hash; /* 0: free */
	sqlite3_int64 id;
	char *name;
};

struct bw_tlm_querylog {
	sqlite3 *db;
	sqlite3_stmt *insert, *begin, *commit, *rollback, *prune;
	sqlite3_stmt *name_get, *name_put, *gc_window, *gc, *pos_get, *pos_put;
	struct name_slot *names; /* NAME_MAP_SLOTS */
	struct bw_hash_key names_key; /* the map's keys are names clients chose */
	size_t n_names;
	sqlite3_int64 gc_cursor; /* names.id the clean-up of unused names goes on from */
	bool gc_due, gc_running; /* rows were pruned since the pass began / a pass is on */
	bool in_tx;
	unsigned pending; /* rows in the open transaction */
	bool failing;	  /* the last commit failed: say so once until one succeeds */
	uint64_t retry_at; /* while failing: when to try the WAL again (bw_now_ms) */
	bool busy;	  /* another connection holds the write lock: said once */
	_Atomic uint64_t rows, drops, pruned;
};

static void add_atomic(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool has_table(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	bool yes = false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

/* The schema of this version, from an empty file or a version 1 or 2 file, in one
 * transaction. */
static int set_up_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int v = user_version(db);
	if (v > SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "%s: written by a newer version of bulwark (query log schema "
			 "%d, this one knows %d); move it away or set telemetry.query-log",
			 path, v, SCHEMA_VERSION);
		return SQLITE_ERROR;
	}
	if (v == SCHEMA_VERSION)
		return SQLITE_OK;
	bool v1 = has_table(db, "queries"), v2 = v == 2 && has_table(db, "log");
	size_t n = sizeof(migrate_v1) + sizeof(schema) + 64;
	char *sql = malloc(n);
	if (!sql)
		return SQLITE_NOMEM;
	int len = v1   ? snprintf(sql, n, migrate_v1, schema)
		  : v2 ? snprintf(sql, n, migrate_v2, schema)
		       : snprintf(sql, n, "%s", schema);
	snprintf(sql + len, n - (size_t)len, "PRAGMA user_version = %d;", SCHEMA_VERSION);
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s%s", path,
			 v1 || v2 ? "moving the rows to the new schema: " : "", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	} else if (v1) {
		bw_info(
		    "telemetry: query log %s: rows moved to schema version %d (names in a table "
		    "of their own; the view `queries` reads as before)",
		    path, SCHEMA_VERSION);
	} else if (v2) {
		bw_info("telemetry: query log %s: schema version %d (a column client_name: the "
			"named client's name)",
			path, SCHEMA_VERSION);
	}
	free(sql);
	return rc;
}

struct bw_tlm_querylog *bw_tlm_querylog_open(const char *path, char *err, size_t errlen)
{
	struct bw_tlm_querylog *l = calloc(1, sizeof(*l));
	if (l)
		l->names = calloc(NAME_MAP_SLOTS, sizeof(*l->names));
	if (!l || !l->names) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bw_hash_key_random(&l->names_key);
	err[0] = 0;
	/* no allocation statistics: they take a global mutex on every allocation (an error
	 * if SQLite is already in use in this process, and harmless then) */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	int rc = sqlite3_open_v2(
	    path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(l->db, 50); /* readers never block WAL writers; a second writer may */
	rc = sqlite3_exec(l->db,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=OFF;"
			  /* SQLite's default page cache (2 MiB) and no memory map: the log is
			   * written, rarely read, and both filled towards 32 + 256 MiB of RSS as
			   * the file grew (issue 21); the kernel's page cache still holds it */
			  "PRAGMA cache_size=-2048; PRAGMA mmap_size=0;"
			  /* a small WAL, cut back after each checkpoint: a WAL of many small
			   * commits grows by some 15 KB a row, and at SQLite's default (1000
			   * pages, never truncated) it can take a small disk whole before its
			   * first checkpoint, which then has no room to run (write_failed) */
			  "PRAGMA wal_autocheckpoint=256;" /* WAL_PAGES */
			  "PRAGMA journal_size_limit=1048576;",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = set_up_schema(l->db, path, err, errlen);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(l->db, position_sql, NULL, NULL, NULL);
	struct {
		sqlite3_stmt **st;
		const char *sql;
	} stmts[] = {
	    {&l->insert, insert_sql},
	    {&l->begin, "BEGIN IMMEDIATE"}, /* the write lock now, or BUSY before any row */
	    {&l->commit, "COMMIT"},
	    {&l->rollback, "ROLLBACK"},
	    {&l->prune, "DELETE FROM log WHERE id IN (SELECT id FROM log ORDER BY id LIMIT 5000) "
			"AND time < ?1"},
	    {&l->name_get, "SELECT id FROM names WHERE name = ?1"},
	    {&l->name_put, "INSERT INTO names (name) VALUES (?1)"},
	    {&l->gc_window, "SELECT max(id), count(*) FROM (SELECT id FROM names WHERE id > ?1 "
			    "ORDER BY id LIMIT 5000)"},
	    {&l->gc, "DELETE FROM names WHERE id > ?1 AND id <= ?2 AND NOT EXISTS "
		     "(SELECT 1 FROM log WHERE log.name_id = names.id)"},
	    {&l->pos_get, "SELECT segment, byte FROM spool_position WHERE id = 1"},
	    {&l->pos_put, "INSERT OR REPLACE INTO spool_position (id, segment, byte) "
			  "VALUES (1, ?1, ?2)"},
	};
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]) && rc == SQLITE_OK; i++)
		rc = sqlite3_prepare_v2(l->db, stmts[i].sql, -1, stmts[i].st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	return l;
fail:
	if (!err[0])
		snprintf(err, errlen, "%s: %s", path,
			 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
	bw_tlm_querylog_close(l);
	return NULL;
}

/* The map from names to ids is only a cache of the names table: emptied when full, and
 * whenever ids it holds may be gone (a rolled back transaction, the clean-up). */
static void names_forget(struct bw_tlm_querylog *l)
{
	for (size_t i = 0; i < NAME_MAP_SLOTS && l->n_names; i++) {
		if (l->names[i].hash) {
			free(l->names[i].name);
			l->n_names--;
		}
	}
	memset(l->names, 0, NAME_MAP_SLOTS * sizeof(*l->names));
	l->n_names = 0;
}

void bw_tlm_querylog_close(struct bw_tlm_querylog *l)
{
	if (!l)
		return;
	if (l->in_tx)
		bw_tlm_querylog_commit(l);
	sqlite3_stmt *all[] = {l->insert, l->begin,    l->commit,   l->rollback,
			       l->prune,  l->name_get, l->name_put, l->gc_window,
			       l->gc,	  l->pos_get,  l->pos_put};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(l->db);
	if (l->names)
		names_forget(l);
	free(l->names);
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

/* names.id of name: from the map, else from the table (added there if new). -1: error. */
static sqlite3_int64 name_id(struct bw_tlm_querylog *l, const char *name)
{
	const size_t mask = NAME_MAP_SLOTS - 1;
	uint64_t h = bw_hash_keyed(name, strlen(name), &l->names_key) | 1;
	size_t i = h & mask;
	unsigned probe = 0;
	for (; l->names[i].hash; i = (i + 1) & mask) {
		if (l->names[i].hash == h && strcmp(l->names[i].name, name) == 0)
			return l->names[i].id;
		if (++probe == NAME_MAP_PROBE)
			break; /* a long run: the name is looked up in the file, not remembered */
	}
	sqlite3_int64 id = -1;
	sqlite3_bind_text(l->name_get, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(l->name_get) == SQLITE_ROW)
		id = sqlite3_column_int64(l->name_get, 0);
	sqlite3_reset(l->name_get);
	if (id < 0) {
		sqlite3_bind_text(l->name_put, 1, name, -1, SQLITE_STATIC);
		if (step(l->name_put) == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(l->db);
	}
	if (id < 0)
		return -1;
	if (l->n_names >= NAME_MAP_SLOTS / 2) {
		names_forget(l);
		i = h & mask;
	}
	if (l->names[i].hash)
		return id;
	char *copy = strdup(name);
	if (copy) {
		l->names[i] = (struct name_slot){.hash = h, .id = id, .name = copy};
		l->n_names++;
	}
	return id;
}

/* A write failed (disk full, I/O error): say so once, and write nothing more until the
 * WAL has been checkpointed and cut back (wal_released). Going on writing would put the
 * frames of transactions that fail again into the space freed meanwhile, so the
 * checkpoint, which needs a little room in the main file, would never get it, and the
 * WAL, never reset, would keep every byte it ever had: logging would stay broken after
 * the space came back (tests/faults/test_disk_full.py showed it: a 4 MiB state disk
 * taken whole by the WAL after 767 rows, never a row more). */
static void write_failed(struct bw_tlm_querylog *l)
{
	if (!l->failing)
		bw_warn("telemetry: query log: %s (rows are dropped until it recovers)",
			sqlite3_errmsg(l->db));
	l->failing = true;
	l->retry_at = bw_now_ms() + RETRY_MS;
}

/* While failing: every RETRY_MS, checkpoint the WAL into the main file and truncate it
 * (which frees its space), before any new frame goes into it. True: writes may go on. */
static bool wal_released(struct bw_tlm_querylog *l)
{
	if (!l->failing)
		return true;
	uint64_t now = bw_now_ms();
	if (now < l->retry_at)
		return false;
	int rc = sqlite3_wal_checkpoint_v2(l->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY) /* busy: a reader; not a lack of space */
		return true;
	l->retry_at = now + RETRY_MS;
	return false;
}

/* One row could not be written: counted; if SQLite rolled the whole transaction back
 * (disk full), its rows are lost too, and the names it added. */
static void row_failed(struct bw_tlm_querylog *l)
{
	add_atomic(&l->drops, 1);
	if (!l->in_tx || !sqlite3_get_autocommit(l->db))
		return;
	add_atomic(&l->drops, l->pending);
	names_forget(l);
	l->pending = 0;
	l->in_tx = false;
	write_failed(l);
}

int bw_tlm_querylog_begin(struct bw_tlm_querylog *l)
{
	if (l->in_tx)
		return 0;
	if (!wal_released(l))
		return BW_EIO; /* the disk is still full: the record is dropped, counted */
	int rc = step(l->begin);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (!l->busy)
			bw_warn("telemetry: query log: %s (another program writes to it); "
				"records wait in the spool",
				sqlite3_errmsg(l->db));
		l->busy = true;
		return BW_EAGAIN;
	}
	if (rc != SQLITE_DONE)
		return BW_EIO;
	if (l->busy)
		bw_info("telemetry: query log writable again");
	l->busy = false;
	l->in_tx = true;
	return 0;
}

static bool begin(struct bw_tlm_querylog *l)
{
	return bw_tlm_querylog_begin(l) == 0;
}

void bw_tlm_querylog_add(struct bw_tlm_querylog *l, const struct bw_tlm_record *rec,
			 const char *client, const char *client_name, const char *name)
{
	char ty[16], rc_buf[16], tr[24];
	if (!begin(l)) {
		add_atomic(&l->drops, 1);
		return;
	}
	sqlite3_int64 nid = name_id(l, name);
	if (nid < 0) {
		row_failed(l);
		return;
	}
	sqlite3_stmt *s = l->insert;
	bool matched = rec->v.flags & BW_TLM_MATCHED;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)rec->time_ms);
	text(s, 2, client);
	sqlite3_bind_text(s, 3, rec->profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, bw_tlm_transport_text(rec->transport, tr, sizeof(tr)), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, nid);
	sqlite3_bind_text(s, 6, bw_tlm_type_text(rec->qtype, ty, sizeof(ty)), -1, SQLITE_STATIC);
	text(s, 7, bw_tlm_rcode_text(rec->rcode, rc_buf, sizeof(rc_buf)));
	sqlite3_bind_text(s, 8, bw_tlm_verdict_text(rec), -1, SQLITE_STATIC);
	text(s, 9, bw_tlm_action_text(rec));
	text(s, 10, matched ? rec->v.feed_name : NULL);
	text(s, 11, matched ? rec->v.category : NULL);
	text(s, 12, matched ? rec->v.rule : NULL);
	sqlite3_bind_int64(s, 13, rec->latency_us);
	sqlite3_bind_int(s, 14, (rec->v.flags & BW_TLM_CACHE_HIT) ? 1 : 0);
	text(s, 15, client_name);
	if (step(s) == SQLITE_DONE) /* every parameter is bound each time: no clearing */
		l->pending++;
	else
		row_failed(l);
}

void bw_tlm_querylog_set_position(struct bw_tlm_querylog *l, struct bw_tlm_spool_pos pos)
{
	if (!begin(l))
		return;
	sqlite3_bind_int64(l->pos_put, 1, (sqlite3_int64)pos.seg);
	sqlite3_bind_int64(l->pos_put, 2, (sqlite3_int64)pos.off);
	step(l->pos_put); /* a failure fails the commit too */
}

struct bw_tlm_spool_pos bw_tlm_querylog_position(struct bw_tlm_querylog *l)
{
	struct bw_tlm_spool_pos pos = {0, 0};
	if (sqlite3_step(l->pos_get) == SQLITE_ROW) {
		pos.seg = (uint64_t)sqlite3_column_int64(l->pos_get, 0);
		pos.off = (uint64_t)sqlite3_column_int64(l->pos_get, 1);
	}
	sqlite3_reset(l->pos_get);
	return pos;
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
		write_failed(l);
		add_atomic(&l->drops, l->pending);
		if (!sqlite3_get_autocommit(l->db))
			step(l->rollback);
		names_forget(l); /* the names this transaction added are gone with it */
	}
	l->pending = 0;
}

/* Names no row refers to any more (their rows were pruned) are deleted in windows of
 * 5000 ids (in the SQL of gc_window), a bounded number per call; a pass over the whole
 * table starts after rows were pruned. Returns the names deleted. */
static uint64_t names_gc(struct bw_tlm_querylog *l, int rounds)
{
	uint64_t deleted = 0;
	for (int i = 0; i < rounds && l->gc_running; i++) {
		sqlite3_int64 hi = 0, n = 0;
		sqlite3_bind_int64(l->gc_window, 1, l->gc_cursor);
		if (sqlite3_step(l->gc_window) == SQLITE_ROW) {
			hi = sqlite3_column_int64(l->gc_window, 0);
			n = sqlite3_column_int64(l->gc_window, 1);
		}
		sqlite3_reset(l->gc_window);
		if (n == 0) { /* past the last name: the pass is over */
			l->gc_running = false;
			l->gc_cursor = 0;
			break;
		}
		sqlite3_bind_int64(l->gc, 1, l->gc_cursor);
		sqlite3_bind_int64(l->gc, 2, hi);
		if (step(l->gc) != SQLITE_DONE)
			break;
		deleted += (uint64_t)sqlite3_changes(l->db);
		l->gc_cursor = hi;
	}
	if (deleted)
		names_forget(l);
	return deleted;
}

void bw_tlm_querylog_prune(struct bw_tlm_querylog *l, uint64_t before_ms)
{
	if (l->in_tx)
		bw_tlm_querylog_commit(l);
	if (!wal_released(l))
		return; /* no frames into a full disk (write_failed) */
	for (int i = 0; i < PRUNE_ROUNDS; i++) {
		sqlite3_bind_int64(l->prune, 1, (sqlite3_int64)before_ms);
		int rc = step(l->prune);
		if (rc != SQLITE_DONE)
			break;
		int n = sqlite3_changes(l->db);
		add_atomic(&l->pruned, (uint64_t)n);
		if (n > 0)
			l->gc_due = true;
		if (n < PRUNE_STEP)
			break;
	}
	if (l->gc_due && !l->gc_running) {
		l->gc_due = false;
		l->gc_running = true;
		l->gc_cursor = 0;
	}
	names_gc(l, PRUNE_ROUNDS);
}

void bw_tlm_querylog_stats(struct bw_tlm_querylog *l, uint64_t *rows, uint64_t *drops,
			   uint64_t *pruned)
{
	*rows = atomic_load_explicit(&l->rows, memory_order_relaxed);
	*drops = atomic_load_explicit(&l->drops, memory_order_relaxed);
	*pruned = atomic_load_explicit(&l->pruned, memory_order_relaxed);
}
